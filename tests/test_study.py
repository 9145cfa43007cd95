"""The study as a whole: its notebooks, its table of contents, and a smoke run.

The slow test runs every notebook with ``params/smoke.yaml`` through the real
``crowdnb run`` command, in a temporary run directory, and builds the book
with warnings as errors from a temporary copy of the book's sources, so the
repository's tree is never touched.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from conftest import worker_jobs
from crowdnb.workflow.stages import discover_stages, load_param_file, resolve_parameters

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STAGES = [p.stem for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
TYPES = {"str", "int", "float", "bool", "list"}
# Calls through which a notebook reads another stage's outputs.
READS = re.compile(r"(?:require_stage|read_summary)\(run_dir, \"(\d\d_[a-z_]+)\"\)")
COLLECTION = re.compile(r"collection_folder\(run_dir, ")


def _notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_is_stored_clean_with_one_documented_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "stored with outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    (stage,) = [s for s in discover_stages(NOTEBOOKS) if s.name == path.stem]
    assert "run_dir" in stage.parameters
    for param in stage.parameters.values():
        assert param.type_name in TYPES, f"{param.name} has no simple type annotation"
        assert param.help.strip(), f"{param.name} has no comment"
        assert isinstance(ast.literal_eval(param.default), eval(param.type_name)), param.name
    # Every assignment line of the cell was understood by papermill (a "=" in
    # a comment makes papermill skip the line).
    lines = [line for line in tagged[0].source.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) == len(stage.parameters)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_declares_every_stage_it_reads_as_upstream(path):
    # The workflow's inputs follow the declared upstream stages: a stage read
    # but not declared would not rerun when that stage changes.
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    read = set(READS.findall(source))
    if COLLECTION.search(source):
        read.add("01_data_collection")
    declared = set(nb.metadata["crowdnb"]["upstream"])
    assert read <= declared, f"reads {sorted(read - declared)} without declaring them"
    assert path.stem not in read


def test_toc_holds_every_chapter_and_existing_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert [f for f in files if f.startswith("book/executed/")] == [f"book/executed/{s}" for s in STAGES]
    for page in files:
        if not page.startswith("book/executed/"):
            assert (ROOT / f"{page}.md").is_file(), page


def test_parameter_files_name_only_declared_parameters():
    stages = discover_stages(NOTEBOOKS)
    for path in sorted((ROOT / "params").glob("*.yaml")):
        resolved = resolve_parameters(stages, file_params=load_param_file(path), where=str(path))
        assert set(resolved) == set(STAGES)


def test_the_readme_draws_the_pipeline_the_notebooks_declare():
    from crowdnb.workflow.stages import stage_mermaid

    drawn = stage_mermaid(discover_stages(NOTEBOOKS))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{drawn}```" in readme, "paste into README.md:\n" + drawn


def test_a_range_can_name_a_library_registry():
    # Chapter 2's freq_scale is checked against crowdnb.config.FREQ_SCALES itself, so a
    # representation added there is accepted without editing the notebook.
    from crowdnb.config import FREQ_SCALES
    from crowdnb.errors import ParameterError

    stages = discover_stages(NOTEBOOKS)
    for name in FREQ_SCALES:
        resolved = resolve_parameters(stages, overrides=[f"02_preprocessing.freq_scale={name}"])
        assert resolved["02_preprocessing"].values["freq_scale"] == name
    with pytest.raises(ParameterError, match="must be one of mel, bark"):
        resolve_parameters(stages, overrides=["02_preprocessing.freq_scale=chroma"])


# ---------------------------------------------------------------------------
# The helpers the notebooks share


def test_require_stage_names_the_missing_stage_and_how_to_run_it(tmp_path):
    from crowdnb import DataError
    from crowdnb.workflow.stageio import read_summary, require_stage, write_summary

    with pytest.raises(DataError) as info:
        require_stage(tmp_path, "03_spectrogram_generation")
    assert "stage 03_spectrogram_generation has not run" in str(info.value)
    assert "crowdnb run" in str(info.value)
    assert "crowdnb run --only 03_spectrogram_generation" in str(info.value)
    write_summary(tmp_path, "03_spectrogram_generation", {"n_images": 6})
    assert require_stage(tmp_path, "03_spectrogram_generation") == tmp_path / "03_spectrogram_generation"
    assert read_summary(tmp_path, "03_spectrogram_generation") == {"n_images": 6}


# ---------------------------------------------------------------------------
# The smoke study


def _text(html: str) -> str:
    """A page's text: tags removed, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def _book_sources(target: Path) -> Path:
    # The repository without what is generated or installed: the pages may
    # include files from anywhere in it (e.g. the AudioSet mapping).
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "_build", "executed", "__pycache__", "*.egg-info",
        ".pytest_cache", ".ipynb_checkpoints"))
    return target


def _reference(tmp_path: Path) -> list[str]:
    """Chapter 1's realism-check parameters: the project's calibration recordings where this
    machine has them ($CROWDNB_REALCAL, a folder with manifest.csv), else a reference rendered
    here (the smoke corpus with another seed: its clips table is a CSV list of files).

    Of the calibration recordings, the shortest of each emotion: a smoke's worth of real audio
    (all of them cost the smoke study a minute, on the critical path of ``make test``).
    """
    realcal = os.environ.get("CROWDNB_REALCAL")
    if realcal and (Path(realcal) / "manifest.csv").is_file():
        manifest = pd.read_csv(Path(realcal) / "manifest.csv")
        emotions = manifest[manifest["proposed_label"].isin(["joy", "anger", "neutral"])]
        shortest = emotions.sort_values("duration_s").groupby("proposed_label").head(1)
        # A CSV list names files under its own folder: link the chosen ones there.
        folder = tmp_path / "realcal"
        for name in shortest["file"]:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).symlink_to(Path(realcal).resolve() / name)
        shortest.to_csv(folder / "reference.csv", index=False)
        return ["-p", f"01.reference_dir={folder / 'reference.csv'}",
                "-p", "01.reference_path_column=file", "-p", "01.reference_label_column=proposed_label"]
    from crowdnb.synth import synthesize

    folder = synthesize(tmp_path / "reference", preset="smoke", seed=1, study="emotions",
                        progress=False)["emotions"]
    return ["-p", f"01.reference_dir={folder / 'clips.csv'}"]


@pytest.mark.slow
@pytest.mark.timeout(3600)  # thirteen chapters and a book on 2 cores: about 12 minutes alone
def test_smoke_study_runs_every_notebook_and_builds_the_book(tmp_path):
    run_dir = tmp_path / "runs" / "smoke"
    sources = _book_sources(tmp_path / "sources")
    command = [sys.executable, "-m", "crowdnb.cli", "run", "--params", str(sources / "params" / "smoke.yaml"),
               "--run-dir", str(run_dir), "--project", str(sources), "--quiet", "--publish",
               *worker_jobs(), *_reference(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr[-4000:]
    for stage in STAGES:
        record = json.loads((run_dir / stage / "_stage.json").read_text())
        assert record["duration_s"] > 0
        assert (sources / "book" / "executed" / f"{stage}.ipynb").is_file()

    # Nothing changed: nothing executes. (The timeouts catch a hang, not slowness:
    # planning alone took over 300 s once, with a CI run's workers and others
    # sharing 2 cores at a load of 8.)
    second = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "0 stage job(s) executed, the rest was up to date" in second.stderr  # nor copied

    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    build = subprocess.run(
        [str(jupyter_book), "build", "--warningiserror", "--keep-going",
         "--path-output", str(tmp_path / "out"), str(sources)],
        capture_output=True, text=True, timeout=1200,
    )
    assert build.returncode == 0, (build.stdout + build.stderr)[-6000:]
    html = tmp_path / "out" / "_build" / "html"
    for stage in STAGES:
        assert (html / "book" / "executed" / f"{stage}.html").is_file()

    # No page shows this machine's paths or a Python warning's text (tqdm's IProgress one).
    # Nor unrendered markup in its prose: a glue role or directive, Markdown bold or a fence
    # that reached the page as text (code cells, shown or folded, are left out).
    for page_file in sorted((html / "book" / "executed").glob("*.html")) + [html / "book" / "intro.html"]:
        raw = page_file.read_text(encoding="utf-8")
        page = _text(raw)
        for leak in ("site-packages", "Please update jupyter and ipywidgets", "/root/", "URLError"):
            assert leak not in page, (page_file.name, leak)
        prose = _text(re.sub(r"<pre.*?</pre>", "", raw, flags=re.S))
        for markup in ("{glue", "```", "**", "{cite"):
            assert markup not in prose, (page_file.name, markup)
    # The pretrained-weights box is generated from the metrics, on every training page.
    metrics = json.loads((run_dir / "04_random_split_training" / "metrics.json").read_text())
    info = metrics["weights_info"]
    expected = ("Pretrained ImageNet weights were NOT used" if not metrics["pretrained"] else
                f"{info['title']} instead of AlexNet" if info["network"] != info["network_asked"]
                else "ImageNet-pretrained weights")
    for stage in ("04_random_split_training", "05_clip_split_training", "06_goal_nogoal_study",
                  "07_results", "12_pretraining"):
        page = (html / "book" / "executed" / f"{stage}.html").read_text(encoding="utf-8")
        assert expected in page, stage
    # Glued numbers reached the prose (a missing key fails the build above).
    # The results page quotes this run's accuracy and interval in its sentence, not
    # just somewhere on the page.
    # ... and the verdict chosen by its numbers (a constant classifier is called that).
    from crowdnb.experiments import experiment_numbers
    from crowdnb.report import verdict

    from crowdnb.claims import claim_table, claims_paragraph, gather_evidence

    results = _text((html / "book" / "executed" / "07_results.html").read_text(encoding="utf-8"))
    numbers = experiment_numbers(metrics)
    assert f"Emotions, random split: accuracy {numbers['accuracy']:.3f}; the paper: 1." in results
    # its test against chance, Holm-adjusted over the page's tests, as the claim table's
    evidence = gather_evidence(run_dir)
    adjusted = {**numbers, "p_holm": evidence["p_holm"]["emotions_random above chance"],
                "holm_m": len(evidence["p_holm"])}
    said = _text(verdict(adjusted, name="Its network", interval="clip").replace("**", ""))
    assert said in results
    # the claim-by-claim verdict, on the results page and, in one paragraph, in the introduction
    # (Sphinx turns straight quotes into curly ones)
    plain = results.replace("\u2018", "'").replace("\u2019", "'")
    claims = claim_table(evidence)
    for row in claims.to_dict("records"):
        assert _text(f"{row['verdict']}: {row['why']}") in plain, row["key"]
    intro = _text((html / "book" / "intro.html").read_text(encoding="utf-8"))
    assert _text(claims_paragraph(claims).replace("**", "")) in intro.replace("\u2019", "'")
    chapter = _text((html / "book" / "executed" / "04_random_split_training.html").read_text(
        encoding="utf-8"))
    assert _text(verdict(numbers, name="The network of this chapter",
                         interval="clip").replace("**", "")) in chapter
    assert "Diagnostics: a final training loss of" in chapter
    for page in (results, chapter):  # no path of this machine, no Python warning text
        assert "/root/" not in page and str(Path.home()) + "/" not in page
        assert "Warning:" not in page and "warnings.warn" not in page
    # The guard gap's effect is computed and worded on chapter 4's page.
    assert "in balanced accuracy (plain minus guard gap; 95 % paired" in chapter
    # The baselines stand on the same splits, their comparisons chosen by the numbers.
    baselines = _text((html / "book" / "executed" / "08_baselines.html").read_text(
        encoding="utf-8")).replace("\u2019", "'")  # Sphinx's smart quotes ("the paper's method")
    table = pd.read_csv(run_dir / "08_baselines" / "baselines.csv")
    assert set(table["key"]) == {"emotions_random", "emotions_clip", "goal_random", "goal_clip"}
    for method in ("constant classifier", "MFCC statistics + logistic regression",
                   "small CNN on the log-mel matrix", "AlexNet, random init., paper recipe",
                   "AlexNet, random init., from-scratch recipe"):
        assert method in set(table["method"]) and method in baselines, method
    # one answer per training set: one class for every block of a single split
    constant = table[(table["method"] == "constant classifier") & table["key"].str.endswith("random")]
    assert constant["degenerate"].all() and (constant["majority_share"] == 1.0).all()
    # the network against MFCC + LR on the same blocks: a paired test, worded from its numbers
    from crowdnb.experiments import paired_effect

    effect = paired_effect(pd.read_csv(run_dir / "04_random_split_training" / "predictions.csv"),
                           pd.read_csv(run_dir / "08_baselines" / "emotions_random" /
                                       "mfcc_predictions.csv"))
    assert (f"{effect['balanced_accuracy']['difference']:+.3f} in balanced accuracy on the same "
            f"{effect['n_test']} test blocks") in baselines
    assert "Holm-adjusted over the 12 comparisons of this page" in baselines
    assert "/root/" not in baselines and "Warning:" not in baselines
    # The ablations chapter draws every variant and shows the smoke sweep's table, its
    # sentences chosen from that table.
    from crowdnb.ablations import ablation_table
    from crowdnb.report import ablation_findings

    ablations = _text((html / "book" / "executed" / "09_ablations.html").read_text(
        encoding="utf-8")).replace("\u2019", "'")  # Sphinx's smart quotes
    sweep_dir = run_dir / "smoke_ablations"  # a --run-dir outside runs/ holds its sweeps
    shown = pd.read_csv(run_dir / "09_ablations" / "ablations.csv")
    assert shown["point"].tolist() == ["paper", "grey"]
    again = ablation_table(pd.read_csv(sweep_dir / "results.csv"), sweep_dir)
    for line in ablation_findings(again).replace("**", "").splitlines():
        assert _text(line.removeprefix("- ")) in ablations, line
    assert "These numbers come from the sweep smoke_ablations" in ablations
    assert "/root/" not in ablations and "Warning:" not in ablations
    # Chapter 1 shows the realism check against the reference it was given, its
    # sentences chosen by the check's numbers.
    from crowdnb.experiments import score_numbers

    collection = _text((html / "book" / "executed" / "01_data_collection.html").read_text(
        encoding="utf-8"))
    check = json.loads((run_dir / "01_data_collection" / "realism" / "summary.json").read_text())
    scores = json.loads((run_dir / "01_data_collection" / "realism" / "metrics.json").read_text())
    assert f"Reference: {check['reference']['clips']} real recording(s)" in collection
    from crowdnb.baselines import BASELINES

    from crowdnb.realism import IMAGE_NETWORKS

    assert set(scores) == {*BASELINES, *(name for name, _, _ in IMAGE_NETWORKS)}
    for method, scored in scores.items():
        assert method in collection
        if method != "constant classifier":
            said = verdict(score_numbers(scored), name=f"{method} (trained on synthetic blocks only)",
                           units="real blocks")
            assert _text(said.replace("**", "")) in collection, method
    assert "Where the synthetic blocks differ most from the real ones" in collection
    assert "/root/" not in collection and "Warning:" not in collection
    # What ImageNet pretraining buys: every method on the chapters' own splits, the
    # weights checked on photographs, and each paired difference worded from effects.csv.
    from crowdnb.report import paired_sentence

    pretraining = _text((html / "book" / "executed" / "12_pretraining.html").read_text(
        encoding="utf-8")).replace("\u2019", "'")
    scores13 = pd.read_csv(run_dir / "12_pretraining" / "scores.csv")
    assert set(scores13["key"]) == {"emotions_random", "emotions_clip", "goal_random", "goal_clip"}
    probe = f"{info['title']} frozen + logistic regression"
    assert (scores13["method"] == probe).sum() == 4 and probe in pretraining
    # smoke.yaml trains the chapters' network from random weights on the random splits
    # (AlexNet from random weights trains in chapter 8 there)
    randoms = scores13[scores13["method"].str.endswith("from random weights")]
    assert set(randoms["key"]) == {"emotions_random", "goal_random"}
    assert randoms["method"].nunique() == 1
    assert "chelsea.png (a cat)" in pretraining and "Egyptian cat" in pretraining
    for row in pd.read_csv(run_dir / "12_pretraining" / "effects.csv").to_dict("records"):
        assert _text(paired_sentence(row)) in pretraining, row
    assert "/root/" not in pretraining and "Warning:" not in pretraining and "URLError" not in pretraining
    # The recipe is worded once, from this run's values, on every training page.
    for stage in ("04_random_split_training", "05_clip_split_training", "06_goal_nogoal_study"):
        page = (html / "book" / "executed" / f"{stage}.html").read_text(encoding="utf-8")
        assert "The training recipe as it ran: stochastic gradient descent" in page, stage
        assert f"for {metrics['params']['epochs']} epochs" in page, stage


def test_only_some_stages_still_plans_the_sweeps_of_the_others(tmp_path):
    # smoke.yaml shows a sweep in the ablations chapter; running chapter 1 alone
    # must still give every job its inputs (it once failed with a KeyError).
    from crowdnb.workflow.plan import plan_from_config

    plan = plan_from_config({"project": str(ROOT), "runs_root": str(tmp_path), "run": "smoke",
                             "params_file": str(ROOT / "params" / "smoke.yaml"),
                             "only": ["01_data_collection"]})
    assert plan.inputs("smoke", "09_ablations")["sweeps"] == ["smoke_ablations/results.csv"]
    assert not any(t.startswith("smoke_ablations/") for t in plan.targets)


def test_the_sweep_points_run_only_what_they_change(tmp_path):
    # The smoke sweep's "paper" point is the main run (every stage copied, whatever
    # the command line sets), "grey" shares chapter 1; the ablations' points share
    # chapter 1 with full.yaml's main run and run chapters 2-4 each.
    from crowdnb.workflow.plan import plan_from_config

    def copied(params: str, *overrides: str):
        plan = plan_from_config({"project": str(ROOT), "runs_root": str(tmp_path), "run": "main",
                                 "params_file": str(ROOT / "params" / params),
                                 "overrides": list(overrides)}, write=False)
        return {key: (donor.run if (donor := plan.donor(*key)) else None) for key in plan.jobs
                if key[0] != "main"}

    (tmp_path / "reference.csv").write_text("path,label\n")
    smoke = copied("smoke.yaml", f"01.reference_dir={tmp_path / 'reference.csv'}", "epochs=2")
    assert {key: run for key, run in smoke.items() if run} == {
        **{("smoke_ablations/paper", s): "main" for s in ("01_data_collection", "02_preprocessing",
                                                          "03_spectrogram_generation",
                                                          "04_random_split_training")},
        ("smoke_ablations/grey", "01_data_collection"): "main"}
    full = copied("full.yaml")
    ablations = {point for (point, stage) in full if point.startswith("ablations/")}
    assert len(ablations) == 10
    for point in ablations:
        assert full[(point, "01_data_collection")] == "main", point
        assert full[(point, "04_random_split_training")] is None, point
    assert all(run is None for (point, stage), run in full.items() if point.startswith("seeds/")
               and stage != "01_data_collection")


def test_sweep_files_resolve_for_every_point():
    from crowdnb.workflow.plan import _typed_overrides, load_sweep

    stages = discover_stages(NOTEBOOKS)
    names = {s.name for s in stages}
    sweeps = sorted((ROOT / "params" / "sweeps").glob("*.yaml"))
    assert sweeps
    for path in sweeps:
        spec = load_sweep(path)
        assert set(spec.stages) <= names, path
        base = load_param_file(spec.base)
        for point, overrides in spec.points.items():
            resolved = resolve_parameters(stages, file_params=base,
                                          typed_overrides=_typed_overrides(overrides),
                                          where=f"{path}, {point}")
            for key in overrides:
                assert any(key.rpartition(".")[2] in v.set for v in resolved.values()), key


def test_changing_the_network_reruns_the_training_chapters_and_what_reads_them(tmp_path):
    """Snakemake reruns a job whose parameters changed, and everything downstream of it:
    a new network changes the parameters of the three training chapters only."""
    from crowdnb.workflow.plan import plan_from_config

    def parameters(overrides):
        plan = plan_from_config({"project": str(ROOT), "runs_root": str(tmp_path), "run": "default",
                                 "params_file": str(ROOT / "params" / "default.yaml"),
                                 "overrides": overrides})
        return {stage: plan.parameters_json("default", stage) for stage in STAGES}

    before = parameters([])
    assert before == parameters(["network=alexnet"])  # the default value changes nothing
    after = parameters(["network=efficientnet_lite0"])
    changed = sorted(stage for stage in STAGES if before[stage] != after[stage])
    assert changed == ["04_random_split_training", "05_clip_split_training", "06_goal_nogoal_study"]
