"""The study runner: caching by key, parameters, upstream checks, resuming.

The stages here are tiny throwaway notebooks written by the test: each one
appends a line to its own ``executions.txt`` (so a test can count how often it
really ran) and writes its ``summary.json`` through crowdnb.book.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from crowdnb.errors import DataError, ParameterError
from crowdnb.runner import (
    STAGE_RECORD,
    discover_stages,
    load_param_file,
    parse_override,
    resolve_parameters,
    run_study,
)

PARAMETERS = {
    "a_source": 'run_dir: str = "runs/test"  # the run directory\n'
                'seed: int = 0  # random seed\n'
                'n: int = 2  # how many values to write\n',
    "b_middle": 'run_dir: str = "runs/test"  # the run directory\n'
                'seed: int = 0  # random seed\n'
                'scale: float = 1.0  # multiplies the values\n'
                'label: str = "x"  # a name\n'
                'stop: bool = False  # raise before finishing\n',
    "c_end": 'run_dir: str = "runs/test"  # the run directory\n',
    "d_side": 'run_dir: str = "runs/test"  # the run directory\n'
              'n: int = 2  # also declared by a_source\n',
}
UPSTREAM = {"a_source": [], "b_middle": ["a_source"], "c_end": ["b_middle"], "d_side": ["a_source"]}
BODY = {
    "a_source": "values = list(range(n))",
    "b_middle": (
        "a = book.read_summary(run_dir, 'a_source')\n"
        "if stop:\n    raise RuntimeError('stopped on purpose')\n"
        "values = [v * scale for v in a['values']]"
    ),
    "c_end": "values = book.read_summary(run_dir, 'b_middle')['values']",
    "d_side": "values = book.read_summary(run_dir, 'a_source')['values'][:n]",
}


def _write_notebook(folder: Path, name: str, *, extra: str = "") -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS[name])
    params.metadata["tags"] = ["parameters"]
    body = (
        "from pathlib import Path\n"
        "from crowdnb import book\n"
        f"{BODY[name]}\n"
        f"out = book.stage_dir(run_dir, '{name}')\n"
        "with open(out / 'executions.txt', 'a') as fh:\n"
        "    fh.write('ran\\n')\n"
        f"book.write_summary(run_dir, '{name}', {{'values': values}})\n"
        f"{extra}"
    )
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), params,
                nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["crowdnb"] = {"upstream": UPSTREAM[name]}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def study(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in PARAMETERS:
        _write_notebook(notebooks, name)
    return notebooks


@pytest.fixture(scope="module")
def _finished_run(tmp_path_factory):
    # One complete run of the throwaway study, copied by the tests that start
    # from a finished run: kernels take a second or two each to start.
    root = tmp_path_factory.mktemp("finished")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    for name in PARAMETERS:
        _write_notebook(notebooks, name)
    outcome = _run(notebooks, root)
    return root, outcome


@pytest.fixture
def finished(_finished_run, tmp_path):
    """(notebooks folder, outcome of the first run) of a copy of a finished run."""
    root, outcome = _finished_run
    for part in ("notebooks", "run", "book"):
        shutil.copytree(root / part, tmp_path / part)
    return tmp_path / "notebooks", outcome


def _run(study: Path, tmp_path: Path, **kwargs):
    kwargs.setdefault("run_dir", tmp_path / "run")
    kwargs.setdefault("book_dir", tmp_path / "book" / "executed")
    outcomes = run_study(notebooks_dir=study, progress=False, verbose=False, **kwargs)
    return {o.stage: o.status for o in outcomes}


def _executions(run_dir: Path, stage: str) -> int:
    path = run_dir / stage / "executions.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _values(run_dir: Path, stage: str):
    return json.loads((run_dir / stage / "summary.json").read_text())["values"]


# ---------------------------------------------------------------------------
# Parameters (no kernel needed)


def test_parse_override_splits_scope_name_and_value():
    assert parse_override("epochs=3") == (None, "epochs", "3")
    assert parse_override("04.epochs=3") == ("04", "epochs", "3")
    assert parse_override("label=a=b") == (None, "label", "a=b")
    for bad in ("epochs", "=3", "not a name=3", "04.3x=1"):
        with pytest.raises(ParameterError):
            parse_override(bad)


def test_overrides_are_typed_by_the_parameter_cell_literal(study, tmp_path):
    stages = discover_stages(study)
    resolved = resolve_parameters(
        stages, overrides=["n=5", "scale=1e-4", "label=2024", "stop=true"], run_dir="r"
    )
    assert resolved["a_source"]["n"] == 5 and resolved["d_side"]["n"] == 5
    assert resolved["b_middle"]["scale"] == pytest.approx(1e-4)
    assert isinstance(resolved["b_middle"]["scale"], float)
    assert resolved["b_middle"]["label"] == "2024"  # a str parameter keeps the text
    assert resolved["b_middle"]["stop"] is True
    assert resolved["c_end"] == {"run_dir": str((Path("r")).resolve())}
    # An int literal accepted by a float parameter becomes a float.
    assert resolve_parameters(stages, overrides=["scale=2"], run_dir="r")["b_middle"]["scale"] == 2.0


def test_stage_scoped_override_applies_to_that_stage_only(study):
    stages = discover_stages(study)
    resolved = resolve_parameters(stages, overrides=["d_side.n=1", "n=4"], run_dir="r")
    assert resolved["a_source"]["n"] == 4
    assert resolved["d_side"]["n"] == 1  # the scoped value wins over the global one
    resolved = resolve_parameters(stages, overrides=["d.n=1"], run_dir="r")  # unique prefix
    assert resolved["d_side"]["n"] == 1 and "n" not in resolve_parameters(
        stages, overrides=[], run_dir="r")["a_source"]


@pytest.mark.parametrize(
    "override, words",
    [
        ("epochz=3", ["'epochz'", "no notebook declares it", "scale"]),
        ("n=three", ["'n'", "int", "'three'"]),
        ("n=2.5", ["'n'", "int"]),
        ("stop=maybe", ["'stop'", "bool"]),
        ("scale=fast", ["'scale'", "float"]),
        ("c_end.n=1", ["'n'", "c_end"]),
        ("zz.n=1", ["no stage 'zz'"]),
        ("run_dir=/elsewhere", ["run_dir is set by the runner", "--run-dir"]),
    ],
)
def test_bad_override_names_the_parameter(study, override, words):
    stages = discover_stages(study)
    with pytest.raises(ParameterError) as info:
        resolve_parameters(stages, overrides=[override], run_dir="r")
    for word in words:
        assert word in str(info.value)


def test_parameter_file_sections_extends_and_unknown_names(study, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("run: base\ncommon:\n  seed: 3\na_source:\n  n: 4\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nrun: child\nb_middle:\n  scale: 0.5\n")
    params = load_param_file(child)
    assert params["run"] == "child" and params["a_source"] == {"n": 4}
    stages = discover_stages(study)
    resolved = resolve_parameters(stages, file_params=params, run_dir="r")
    assert resolved["a_source"]["seed"] == 3 and resolved["b_middle"]["seed"] == 3
    assert resolved["b_middle"]["scale"] == 0.5
    # The command line wins over the file.
    resolved = resolve_parameters(stages, file_params=params, overrides=["seed=7"], run_dir="r")
    assert resolved["a_source"]["seed"] == 7
    with pytest.raises(ParameterError, match="'epochs'"):
        resolve_parameters(stages, file_params={"a_source": {"epochs": 1}}, run_dir="r")
    with pytest.raises(ParameterError, match="'lr'.*no notebook declares it"):
        resolve_parameters(stages, file_params={"common": {"lr": 1}}, run_dir="r")
    with pytest.raises(ParameterError, match="unknown section 'training'"):
        resolve_parameters(stages, file_params={"training": {"n": 1}}, run_dir="r")
    with pytest.raises(ParameterError, match="'n'.*int"):
        resolve_parameters(stages, file_params={"a_source": {"n": "2"}}, run_dir="r")
    with pytest.raises(DataError, match="not found"):
        load_param_file(tmp_path / "missing.yaml")


def test_upstream_must_come_before(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    path = _write_notebook(folder, "a_source")
    nb = nbformat.read(path, as_version=4)
    nb.metadata["crowdnb"] = {"upstream": ["z_later"]}
    nbformat.write(nb, path)
    with pytest.raises(DataError, match="upstream stage 'z_later'"):
        discover_stages(folder)


# ---------------------------------------------------------------------------
# Execution (each executed stage starts a kernel: about a second)


def test_second_run_executes_nothing(finished, tmp_path):
    study, first = finished
    run_dir = tmp_path / "run"
    assert first == dict.fromkeys(PARAMETERS, "executed")
    assert _values(run_dir, "c_end") == [0.0, 1.0]
    for name in PARAMETERS:
        assert (run_dir / "notebooks" / f"{name}.ipynb").is_file()
        assert (tmp_path / "book" / "executed" / f"{name}.ipynb").is_file()
        record = json.loads((run_dir / name / STAGE_RECORD).read_text())
        assert record["duration_s"] > 0 and record["parameters"]["run_dir"].endswith("run")
    second = _run(study, tmp_path)
    assert second == dict.fromkeys(PARAMETERS, "skipped")
    assert all(_executions(run_dir, name) == 1 for name in PARAMETERS)
    # The executed notebook carries the injected parameters.
    executed = nbformat.read(run_dir / "notebooks" / "a_source.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_changed_parameter_reruns_that_stage_and_downstream_only(finished, tmp_path):
    study, _ = finished
    run_dir = tmp_path / "run"
    outcome = _run(study, tmp_path, overrides=["scale=2"])
    assert outcome == {"a_source": "skipped", "b_middle": "executed", "c_end": "executed",
                       "d_side": "skipped"}
    assert _values(run_dir, "c_end") == [0.0, 2.0]
    # Changing the notebook's source is a change too.
    _write_notebook(study, "d_side", extra="# a comment\n")
    outcome = _run(study, tmp_path, overrides=["scale=2"])
    assert outcome == {"a_source": "skipped", "b_middle": "skipped", "c_end": "skipped",
                       "d_side": "executed"}


def test_only_runs_the_named_stages_and_needs_their_upstream(study, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(DataError) as info:
        _run(study, tmp_path, only=["b_middle"])
    message = str(info.value)
    assert "b_middle needs a_source" in message and "has not run" in message
    assert "--only a_source" in message
    assert _executions(run_dir, "b_middle") == 0
    assert _run(study, tmp_path, only=["a"]) == {"a_source": "executed"}
    assert _run(study, tmp_path, only=["b_middle", "c"]) == {"b_middle": "executed",
                                                             "c_end": "executed"}
    # The book shows this run's finished stages only.
    assert not (tmp_path / "book" / "executed" / "d_side.ipynb").exists()


def test_notebook_stops_with_a_clear_message_when_upstream_output_is_missing(finished, tmp_path):
    study, _ = finished
    run_dir = tmp_path / "run"
    (run_dir / "a_source" / "summary.json").unlink()  # outputs gone, record kept
    with pytest.raises(DataError) as info:
        _run(study, tmp_path, only=["b_middle"], force=True)
    message = str(info.value)
    assert "stage b_middle stopped: DataError: stage a_source has not run" in message
    assert "crowdnb run --only a_source" in message
    failed = run_dir / "notebooks" / "b_middle.failed.ipynb"
    assert failed.is_file() and str(failed) in message
    assert not (run_dir / "notebooks" / "b_middle.ipynb").exists()


def test_interrupted_run_resumes_at_the_first_unfinished_stage(finished, tmp_path):
    study, _ = finished
    run_dir = tmp_path / "run"
    with pytest.raises(DataError, match="RuntimeError: stopped on purpose"):
        _run(study, tmp_path, overrides=["b_middle.stop=true", "scale=4"])
    assert not (run_dir / "b_middle" / STAGE_RECORD).exists()
    assert not (run_dir / "b_middle" / "summary.json").exists()
    # The stage after the failure did not run; the book no longer shows either.
    assert _executions(run_dir, "c_end") == 1
    assert not (tmp_path / "book" / "executed" / "b_middle.ipynb").exists()
    outcome = _run(study, tmp_path, overrides=["scale=4"])
    assert outcome == {"a_source": "skipped", "b_middle": "executed", "c_end": "executed",
                       "d_side": "skipped"}
    assert _values(run_dir, "c_end") == [0.0, 4.0]
    assert _executions(run_dir, "a_source") == 1


def test_keyboard_interrupt_leaves_the_stage_unfinished(finished, tmp_path, monkeypatch):
    import papermill

    study, _ = finished
    run_dir = tmp_path / "run"
    real = papermill.execute_notebook

    def interrupted(input_path, output_path, **kwargs):
        if Path(input_path).stem == "b_middle":
            Path(output_path).write_text("{half written")
            raise KeyboardInterrupt
        return real(input_path, output_path, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(study, tmp_path, overrides=["scale=3"])
    # No record, no summary, no half-written notebook: the stage will run again.
    assert not (run_dir / "b_middle" / STAGE_RECORD).exists()
    assert not (run_dir / "b_middle" / "summary.json").exists()
    assert not (run_dir / "notebooks" / "b_middle.ipynb").exists()
    assert not list((run_dir / "notebooks").glob(".*tmp*"))
    monkeypatch.setattr(papermill, "execute_notebook", real)
    assert _run(study, tmp_path, overrides=["scale=3"]) == {
        "a_source": "skipped", "b_middle": "executed", "c_end": "executed", "d_side": "skipped"}
    assert _values(run_dir, "c_end") == [0.0, 3.0]


def test_cli_reports_unknown_parameter(study, tmp_path, capsys):
    from crowdnb.runner import main

    status = main(["--notebooks", str(study), "--run-dir", str(tmp_path / "run"),
                   "--no-book", "-p", "epochz=1"])
    assert status == 1
    err = capsys.readouterr().err
    assert "error:" in err and "'epochz'" in err
