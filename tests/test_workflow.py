"""The study's pipeline on Snakemake: what reruns, locks, interruptions, sweeps.

The project here is a throwaway one (``conftest.make_project``): four tiny
notebooks (``a_source`` -> ``b_middle`` -> ``c_end``, and ``d_side`` beside
them) with the project's real ``Snakefile``. Which jobs ran is what ``crowdnb
run`` returns (the stage records it updated); what they computed is in their
summaries. Tests that run stages start from a copy of one finished run
(``finished``, or ``finished_pair`` cut to ``a_source`` -> ``b_middle``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import nbformat
import pytest
from conftest import (
    ROOT,
    drop_stages,
    make_project,
    release_stage,
    run_stages,
    stage_values,
    stages_that_would_run,
    start_run,
    wait_for_last_cell,
    wait_for_start,
    wait_for_unlock,
    write_stage_notebook,
)
from conftest import WORKFLOW_PARAMETERS as PARAMETERS

from crowdnb.errors import DataError, ParameterError
from crowdnb.workflow.plan import load_sweep
from crowdnb.workflow.run import _executor_settings, run_study
from crowdnb.workflow.stages import (
    code_files,
    discover_stages,
    load_param_file,
    parse_override,
    resolve_parameters,
)


# ---------------------------------------------------------------------------
# Stages and parameters (no kernel)


@pytest.fixture
def stages(tmp_path):
    return discover_stages(make_project(tmp_path / "p") / "notebooks")


def test_parse_override_splits_scope_name_and_value():
    assert parse_override("epochs=3") == (None, "epochs", "3")
    assert parse_override("04.epochs=3") == ("04", "epochs", "3")
    assert parse_override("label=a=b") == (None, "label", "a=b")
    for bad in ("epochs", "=3", "not a name=3", "04.3x=1"):
        with pytest.raises(ParameterError):
            parse_override(bad)


def test_values_include_defaults_and_setting_a_default_changes_nothing(stages):
    plain = resolve_parameters(stages)
    assert plain["b_middle"].values == {"seed": 0, "scale": 1.0, "label": "x", "stop": False,
                                        "sleep_s": 0.0}
    again = resolve_parameters(stages, overrides=["scale=1.0", "n=2"])
    assert {k: v.values for k, v in again.items()} == {k: v.values for k, v in plain.items()}
    assert again["b_middle"].set == ("scale",)


def test_overrides_are_typed_by_the_parameter_cell_literal(stages):
    resolved = resolve_parameters(stages, overrides=["n=5", "scale=1e-4", "label=2024", "stop=true"])
    assert resolved["a_source"].values["n"] == 5 and resolved["d_side"].values["n"] == 5
    assert resolved["b_middle"].values["scale"] == pytest.approx(1e-4)
    assert resolved["b_middle"].values["label"] == "2024"  # a str parameter keeps the text
    assert resolved["b_middle"].values["stop"] is True
    assert resolve_parameters(stages, overrides=["scale=2"])["b_middle"].values["scale"] == 2.0


def test_stage_scoped_override_applies_to_that_stage_only(stages):
    resolved = resolve_parameters(stages, overrides=["d_side.n=1", "n=4"])
    assert resolved["a_source"].values["n"] == 4 and resolved["d_side"].values["n"] == 1
    assert resolve_parameters(stages, overrides=["d.n=1"])["d_side"].values["n"] == 1


@pytest.mark.parametrize(
    "override, words",
    [
        ("epochz=3", ["'epochz'", "no notebook declares it", "scale"]),
        ("n=three", ["'n'", "int", "'three'"]),
        ("n=2.5", ["'n'", "int"]),
        ("n=0", ["'n'", "a_source", ">= 1", "got 0"]),
        ("stop=maybe", ["'stop'", "bool (true or false)", "'maybe'"]),
        ("stop=yes", ["'stop'", "bool (true or false)", "'yes'"]),
        ("scale=fast", ["'scale'", "float"]),
        ("scale=-1", ["'scale'", "0 < x < 100"]),
        ("label=z", ["'label'", "one of x, y, 2024"]),
        ("c_end.n=1", ["'n'", "c_end"]),
        ("zz.n=1", ["no stage 'zz'"]),
        ("run_dir=/elsewhere", ["run_dir is set by the workflow", "--run-dir"]),
    ],
)
def test_bad_override_names_the_parameter(stages, override, words):
    with pytest.raises(ParameterError) as info:
        resolve_parameters(stages, overrides=[override])
    for word in words:
        assert word in str(info.value)


def test_parameter_file_sections_extends_and_unknown_names(stages, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("run: base\ncommon:\n  seed: 3\na_source:\n  n: 4\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nrun: child\nb_middle:\n  scale: 0.5\n")
    params = load_param_file(child)
    assert params["run"] == "child" and params["a_source"] == {"n": 4}
    resolved = resolve_parameters(stages, file_params=params)
    assert resolved["a_source"].values["seed"] == 3 and resolved["b_middle"].values["seed"] == 3
    assert resolved["b_middle"].values["scale"] == 0.5
    resolved = resolve_parameters(stages, file_params=params, overrides=["seed=7"])
    assert resolved["a_source"].values["seed"] == 7
    with pytest.raises(ParameterError, match="'epochs'"):
        resolve_parameters(stages, file_params={"a_source": {"epochs": 1}})
    with pytest.raises(ParameterError, match="'lr'.*no notebook declares it"):
        resolve_parameters(stages, file_params={"common": {"lr": 1}})
    with pytest.raises(ParameterError, match="unknown section 'training'"):
        resolve_parameters(stages, file_params={"training": {"n": 1}})
    with pytest.raises(ParameterError, match="'n'.*int"):
        resolve_parameters(stages, file_params={"a_source": {"n": "2"}})
    (tmp_path / "yes.yaml").write_text("b_middle:\n  stop: yes\n")
    with pytest.raises(ParameterError, match="bool"):
        resolve_parameters(stages, file_params=load_param_file(tmp_path / "yes.yaml"))
    with pytest.raises(DataError, match="not found"):
        load_param_file(tmp_path / "missing.yaml")


def test_stages_come_in_dependency_order_not_name_order(tmp_path):
    project = make_project(tmp_path / "p")

    def declare(name, upstream):
        path = project / "notebooks" / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        nb.metadata["crowdnb"] = {**nb.metadata.get("crowdnb", {}), "upstream": upstream}
        nbformat.write(nb, path)

    declare("a_source", ["d_side"])
    declare("d_side", [])
    assert [s.name for s in discover_stages(project / "notebooks")] == [
        "d_side", "a_source", "b_middle", "c_end"]
    declare("d_side", ["c_end"])
    with pytest.raises(DataError, match="form a cycle"):
        discover_stages(project / "notebooks")
    declare("d_side", ["z_missing"])
    with pytest.raises(DataError, match="upstream stage 'z_missing' is not another notebook"):
        discover_stages(project / "notebooks")


def test_code_inputs_follow_imports_through_the_package(tmp_path):
    project = make_project(tmp_path / "p")
    package = ROOT / "crowdnb"
    b = {p.relative_to(package).as_posix() for p in code_files(project / "notebooks" / "b_middle.ipynb", package)}
    d = {p.relative_to(package).as_posix() for p in code_files(project / "notebooks" / "d_side.ipynb", package)}
    assert {"splits.py", "errors.py", "__init__.py", "workflow/stageio.py"} <= b
    assert "clips.py" in d and "clips.py" not in b and "splits.py" not in d
    assert not any(name.startswith("synth/") for name in b | d)


def test_sweep_file_expands_points_and_grid(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("sweep: s\nbase: base.yaml\nstages: [c_end]\n"
                     "points:\n  plain: {}\n  double: {b_middle.scale: 2.0}\ngrid:\n  seed: [0, 1]\n")
    spec = load_sweep(sweep)
    assert list(spec.points) == ["plain-seed0", "plain-seed1", "double-seed0", "double-seed1"]
    assert spec.points["double-seed1"] == {"b_middle.scale": 2.0, "seed": 1}
    sweep.write_text("sweep: s\nbase: base.yaml\nstages: [c_end]\ncommon: {b_middle.scale: 3.0, seed: 4}\n"
                     "points:\n  plain: {}\n  double: {b_middle.scale: 2.0}\n")
    spec = load_sweep(sweep)  # a point's own value wins over the common one
    assert spec.points == {"plain": {"b_middle.scale": 3.0, "seed": 4},
                           "double": {"b_middle.scale": 2.0, "seed": 4}}
    sweep.write_text("sweep: s\nbase: base.yaml\nstages: [c_end]\ncommon: [seed]\n")
    with pytest.raises(DataError, match="'common' must map"):
        load_sweep(sweep)
    sweep.write_text("sweep: ../out\nbase: base.yaml\nstages: [c_end]\n")
    with pytest.raises(ParameterError, match="one folder name under runs/"):
        load_sweep(sweep)


# ---------------------------------------------------------------------------
# What reruns (each executed job starts a kernel: a second or two)


def test_second_run_and_default_values_execute_nothing(finished):
    project, first = finished
    assert first == sorted(PARAMETERS)
    assert stage_values(project, "c_end") == [0.0, 1.0]
    assert (project / "book" / "executed" / "c_end.ipynb").is_file()
    record = json.loads((project / "runs" / "default" / "b_middle" / "_stage.json").read_text())
    assert record["duration_s"] > 0 and record["parameters"]["scale"] == 1.0
    assert run_stages(project) == []
    assert run_stages(project, overrides=["scale=1.0", "n=2"]) == []  # the values they had


def test_changed_parameter_reruns_that_stage_and_downstream_only(finished):
    project, _ = finished
    assert run_stages(project, overrides=["scale=2"]) == ["b_middle", "c_end"]
    assert stage_values(project, "c_end") == [0.0, 2.0]
    record = json.loads((project / "runs" / "default" / "b_middle" / "_stage.json").read_text())
    assert record["set"] == ["scale"]
    write_stage_notebook(project / "notebooks", "d_side", extra="# a comment\n")
    # (a dry run decides as a run does; the last change needs no execution to show)
    assert stages_that_would_run(project, overrides=["scale=2"]) == ["d_side"]


def test_editing_a_library_file_reruns_the_stages_that_import_it(finished):
    # b_middle imports crowdnb.splits; a_source and d_side (crowdnb.clips) do not.
    # (c_end, downstream of b_middle, is left out: it would only rerun after it.)
    project = drop_stages(finished[0], ["c_end"])
    source = ROOT / "crowdnb" / "splits.py"
    original = source.read_bytes()
    os.utime(source)  # touched, not changed: its checksum is the one recorded
    assert run_stages(project) == []
    try:
        source.write_bytes(original + b"\n# an edit\n")
        assert run_stages(project) == ["b_middle"]
    finally:
        source.write_bytes(original)
    # the edit undone is a change again (a dry run decides as a run does, and
    # executes nothing: the job would only repeat the one above)
    assert stages_that_would_run(project) == ["b_middle"]


def test_files_read_from_outside_the_run_are_inputs(finished, tmp_path):
    project, _ = finished
    data = tmp_path / "recordings"
    data.mkdir()
    (data / "manifest.csv").write_text("url,label\n")
    assert run_stages(project, overrides=[f"data_path={data}"]) == ["d_side"]
    (data / "two.wav").write_bytes(b"2")  # a new file in a folder source
    assert run_stages(project, overrides=[f"data_path={data}"]) == ["d_side"]
    assert stage_values(project, "d_side")[-1] == 2
    (data / "manifest.csv").write_text("url,label\nhttp://127.0.0.1/x.wav,joy\n")  # edited in place
    # (a dry run decides as a run does; the last change needs no execution to show)
    assert stages_that_would_run(project, overrides=[f"data_path={data}"]) == ["d_side"]
    with pytest.raises(ParameterError, match="'data_path'.*does not exist"):
        run_stages(project, overrides=[f"data_path={tmp_path / 'nowhere'}"])


def test_the_audio_a_csv_list_names_are_inputs_too(finished, tmp_path):
    project, _ = finished
    data = tmp_path / "listed"
    (data / "audio").mkdir(parents=True)
    (data / "audio" / "one.wav").write_bytes(b"1")
    (data / "list.csv").write_text("file,label\naudio/one.wav,joy\nhttp://127.0.0.1/x.wav,joy\n")
    override = [f"data_path={data / 'list.csv'}"]
    assert run_stages(project, overrides=override) == ["d_side"]
    assert run_stages(project, overrides=override) == []
    (data / "audio" / "other.wav").write_bytes(b"2")  # not in the list: not an input
    assert run_stages(project, overrides=override) == []
    (data / "audio" / "one.wav").write_bytes(b"one, edited")  # a listed file changed in place
    # (a dry run decides as a run does; the last change needs no execution to show)
    assert stages_that_would_run(project, overrides=override) == ["d_side"]


def test_deleting_an_output_reruns_its_stage(finished):
    # (c_end, downstream of b_middle, is left out: it would only rerun after it)
    project = drop_stages(finished[0], ["c_end"])
    (project / "runs" / "default" / "b_middle" / "model.pt").unlink()
    ran = run_stages(project)
    assert ran == ["b_middle"]  # not a_source upstream, not d_side beside it
    assert (project / "runs" / "default" / "b_middle" / "model.pt").is_file()


def test_dry_run_says_why_and_runs_nothing(finished, capfd):
    project, _ = finished
    outcome = run_study(project=project, overrides=["scale=3"], dry_run=True)
    err = capfd.readouterr().err
    assert "crowdnb run: would run b_middle (parameters changed)" in err
    assert "crowdnb run: would run c_end (a stage it reads runs first)" in err
    assert outcome["would_run"] == [("default", "b_middle"), ("default", "c_end")]
    assert outcome["executed"] == []
    assert stage_values(project, "c_end") == [0.0, 1.0]


def test_only_runs_the_named_stages_and_needs_their_upstream(tmp_path):
    project = make_project(tmp_path / "p")
    with pytest.raises(ParameterError, match="stage.s. a_source must run first"):
        run_stages(project, only=["b_middle"])
    assert not (project / "runs" / "default" / "b_middle" / "summary.json").exists()
    assert run_stages(project, only=["a"]) == ["a_source"]
    assert run_stages(project, only=["b_middle", "c"]) == ["b_middle", "c_end"]
    assert not (project / "book" / "executed" / "d_side.ipynb").exists()


def test_failed_stage_keeps_its_traceback_and_resumes(finished_pair):
    project = finished_pair
    run_dir = project / "runs" / "default"
    with pytest.raises(DataError):
        run_stages(project, overrides=["b_middle.stop=true", "scale=4"])
    failed = run_dir / "notebooks" / "b_middle.failed.ipynb"
    assert failed.is_file() and "stopped on purpose" in failed.read_text()
    # the last good results stay, and so does the book's page of them
    assert stage_values(project, "b_middle") == [0.0, 1.0]
    assert (project / "book" / "executed" / "b_middle.ipynb").is_file()
    assert run_stages(project, overrides=["scale=4"]) == ["b_middle"]
    assert stage_values(project, "b_middle") == [0.0, 4.0]
    assert not failed.exists()


# ---------------------------------------------------------------------------
# Locks, interruptions, sweeps, executors


def test_a_second_concurrent_run_is_refused(finished_pair):
    project = finished_pair
    # b_middle waits until released (at most 900 s): the first run is alive
    # however long the second takes to start, and ends as soon as it is let go.
    first = start_run(project, "-p", "sleep_s=900", "-p", "scale=5")
    try:
        wait_for_start(project, "b_middle")
        second = subprocess.run([sys.executable, "-m", "crowdnb.cli", "run", "--quiet"], cwd=project,
                                capture_output=True, text=True, timeout=600)
        assert second.returncode == 1
        assert "being written by another `crowdnb run` (pid" in second.stderr
        assert second.stderr.count("\n") <= 2  # one clear line, no traceback
    finally:
        release_stage(project)
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert stage_values(project, "b_middle") == [0.0, 5.0]


def test_a_killed_run_leaves_no_stray_file_and_resumes(finished_pair):
    project = finished_pair
    before = {p.relative_to(project) for p in project.rglob("*") if ".snakemake" not in p.parts}
    process = start_run(project, "-p", "sleep_s=30", "-p", "scale=6")
    wait_for_last_cell(project, "b_middle")  # killed mid-cell, its kernel alive
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    wait_for_unlock(project)  # the kernel, in a session of its own, ends with its parent
    assert run_stages(project, overrides=["scale=6"]) == ["b_middle"]
    assert stage_values(project, "b_middle") == [0.0, 6.0]
    after = {p.relative_to(project) for p in project.rglob("*") if ".snakemake" not in p.parts}
    assert after == before  # the same files, nothing half-written or temporary left over
    assert not list(project.rglob("*.failed.ipynb"))


def test_a_sweep_runs_its_points_in_parallel_and_gathers_them(finished):
    project, _ = finished
    sweep = project / "params" / "scales.yaml"
    sweep.write_text("sweep: scales\nbase: base.yaml\nstages: [b_middle]\n"
                     "points:\n  one: {b_middle.scale: 1.0}\n  three: {scale: 3.0}\n")
    (project / "params" / "base.yaml").write_text("common:\n  seed: 1\n")
    outcome = run_study(project=project, sweep=sweep, jobs=2, quiet=True)
    # the points' a_source run with the same values: the second point copies the first's
    assert sorted(outcome["executed"]) == [("scales/one", "a_source"), ("scales/one", "b_middle"),
                                           ("scales/three", "b_middle")]
    assert outcome["copied"] == [("scales/three", "a_source")]
    import pandas as pd

    table = pd.read_csv(project / "runs" / "scales" / "results.csv")
    assert table["point"].tolist() == ["one", "three"]
    assert "b_middle.values" not in table.columns  # lists are left out, scalars kept
    table = table.set_index("point")
    assert table.loc["three", "scale"] == 3.0 and table.loc["one", "b_middle.scale"] == 1.0
    assert stage_values(project, "b_middle", run="scales/three") == [0.0, 3.0]
    assert not (project / "runs" / "scales" / "three" / "c_end").exists()
    assert run_study(project=project, sweep=sweep, jobs=2, quiet=True)["executed"] == []


def test_a_sweep_point_costs_what_it_adds(finished, capfd):
    # A point with the main run's values is the main run: its stages are copied
    # from the main run's, as is every stage a point shares with it upstream of
    # what it changes; the large files are hard links, the records say where from.
    project, _ = finished
    (project / "params" / "main.yaml").write_text("run: default\n")
    sweep = project / "params" / "scales.yaml"
    sweep.write_text("sweep: scales\nbase: main.yaml\nstages: [b_middle]\n"
                     "points:\n  same: {}\n  three: {scale: 3.0}\n")
    outcome = run_study(project=project, params_file=project / "params" / "main.yaml",
                        sweep=sweep)
    assert outcome["executed"] == [("scales/three", "b_middle")]
    assert sorted(outcome["copied"]) == [("scales/same", "a_source"), ("scales/same", "b_middle"),
                                         ("scales/three", "a_source")]
    runs = project / "runs"
    for point, stage in outcome["copied"]:
        record = json.loads((runs / point / stage / "_stage.json").read_text())
        assert record["copied_from"] == "default" and record["run"] == point.split("/")[1]
        assert (runs / point / "notebooks" / f"{stage}.ipynb").is_file()
    model, original = runs / "scales/same/b_middle/model.pt", runs / "default/b_middle/model.pt"
    assert os.path.samefile(model, original)  # no second copy of a checkpoint
    assert stage_values(project, "b_middle", run="scales/three") == [0.0, 3.0]
    assert "the same job as the main run's: its results copied" in capfd.readouterr().err
    # up to date afterwards, and a copy follows what it copied: a new main run copies again
    again = run_study(project=project, params_file=project / "params" / "main.yaml",
                      sweep=sweep, quiet=True)
    assert again["executed"] == [] and again["copied"] == []
    changed = run_study(project=project, params_file=project / "params" / "main.yaml",
                        sweep=sweep, overrides=["b_middle.scale=2.0"], quiet=True)
    assert sorted(changed["executed"]) == [("default", "b_middle"), ("default", "c_end")]
    assert changed["copied"] == [("scales/same", "b_middle")]  # "three" sets its own scale
    assert stage_values(project, "b_middle", run="scales/same") == [0.0, 2.0]


def test_an_executor_plugin_gets_its_options_and_plans_the_jobs(finished, capfd):
    project, _ = finished
    pytest.importorskip("snakemake_executor_plugin_slurm")
    _, settings = _executor_settings("slurm", ["--slurm-qos", "high", "--slurm-no-account"])
    assert settings.qos == "high" and settings.no_account is True
    with pytest.raises(ParameterError, match="unknown option.*--slurm-bogus"):
        _executor_settings("slurm", ["--slurm-bogus", "1"])
    with pytest.raises(ParameterError, match="no such Snakemake executor plugin"):
        _executor_settings("no-such-cluster", [])
    run_study(project=project, force=True, dry_run=True, executor="slurm", jobs=10,
              executor_args=["--slurm-qos", "high"])
    err = capfd.readouterr().err
    assert "would run b_middle (forced)" in err and "dry run" in err


def test_ctrl_c_stops_with_one_line_and_no_traceback(finished_pair):
    project = finished_pair
    process = start_run(project, "-p", "sleep_s=30", "-p", "scale=7")
    wait_for_last_cell(project, "b_middle")  # interrupted mid-cell, its kernel alive
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "crowdnb run: interrupted; what finished is kept, rerun to resume" in err
    assert err.strip().count("\n") == 0, err  # that line alone, no Snakemake report
    assert stage_values(project, "b_middle") == [0.0, 1.0]  # the last good results, untouched
    assert "Traceback" not in err and "zmq" not in err.lower()
    # the kernel's own stderr (ZMQ and TCP notices, its traceback when it is shut
    # down mid-cell) goes to the stage's kernel log, not to the terminal
    assert "IPKernelApp" not in err
    assert (project / "runs" / "default" / "notebooks" / "b_middle.kernel.log").is_file()
    assert run_stages(project, overrides=["scale=7"]) == ["b_middle"]


def test_a_second_clone_sharing_the_environment_writes_only_into_itself(finished, tmp_path):
    # The project is the folder the command stands in, not the one crowdnb was
    # installed from: a second clone's run never touches the first clone.
    first, _ = finished
    second = tmp_path / "second"
    # a clone without results, of one stage: its run writes all a run writes
    shutil.copytree(first, second, symlinks=True, ignore=shutil.ignore_patterns(
        "runs", "book", "b_middle.ipynb", "c_end.ipynb", "d_side.ipynb"))
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "-m", "crowdnb.cli", "run", "--quiet"],
                          cwd=second / "notebooks", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    assert (second / "runs" / "default" / "a_source" / "summary.json").is_file()
    assert (second / "book" / "executed" / "a_source.ipynb").is_file()
    outside = subprocess.run([sys.executable, "-m", "crowdnb.cli", "run", "--dry-run"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert outside.returncode != 0 and "not inside a crowdnb project" in outside.stderr
    assert "Traceback" not in outside.stderr


@pytest.mark.parametrize("name", ["../elsewhere", "/tmp/x", "a/b", ".."])
def test_a_run_name_that_leaves_runs_is_refused(finished, tmp_path, name):
    project, _ = finished
    params = tmp_path / "p.yaml"
    params.write_text(f"run: {json.dumps(name)}\n")
    before = sorted(p for p in project.rglob("*"))
    with pytest.raises(ParameterError, match="must be one folder name under runs/"):
        run_study(project=project, params_file=params)
    assert sorted(p for p in project.rglob("*")) == before  # nothing made, here or elsewhere
    assert not (project / "elsewhere").exists()


def test_the_pipeline_table_and_graph_come_from_the_declarations(stages):
    import matplotlib.pyplot as plt

    from crowdnb.plots import plot_stage_graph
    from crowdnb.workflow.stages import stage_table

    table = stage_table(stages).set_index("stage")
    assert table.loc["a_source", "reads"] == "-" and table.loc["a_source", "depth"] == 0
    assert table.loc["c_end", "reads"] == "b_middle" and table.loc["c_end", "depth"] == 2
    assert table.loc["b_middle", "writes"] == "summary.json, model.pt"
    fig, ax = plt.subplots()
    where = plot_stage_graph(table.reset_index(), ax=ax)
    # a box per stage, and three arrows: a_source -> b_middle -> c_end, a_source -> d_side
    from matplotlib.text import Annotation

    arrows = [t for t in ax.texts if isinstance(t, Annotation)]
    assert where["c_end"][0] == 2.0 and len(ax.texts) - len(arrows) == len(table)
    assert len(arrows) == 3
    plt.close(fig)
