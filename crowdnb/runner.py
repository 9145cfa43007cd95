"""Run the study: execute the notebooks with papermill into a run directory.

The study is a chain of notebooks (``notebooks/NN_name.ipynb``), each one a
*stage*. A stage declares its inputs in two places a reader can see: its
``parameters`` cell (typed literals, one comment each) and the stages whose
outputs it reads, listed in the notebook's metadata as
``{"crowdnb": {"upstream": [...]}}``. Every stage writes only its own folder,
``<run_dir>/<stage>/``.

The runner executes the stages in order and skips a stage whose *key* has not
changed since it last finished. The key is a hash of the notebook's cells, the
parameters passed to it and the keys of its upstream stages, so changing a
parameter reruns that stage and the stages downstream of it, and nothing
else. (The key does not cover the code of the ``crowdnb`` library: after
changing it, rerun the stages it affects with ``--force``.) When a stage finishes, the runner writes its record
(``<run_dir>/<stage>/_stage.json``: key, parameters, start time, execution
time) and the executed notebook (``<run_dir>/notebooks/<stage>.ipynb``, then
copied to the book's folder of executed notebooks). Both are written
atomically and the record is removed before a stage runs again, so an
interrupted run resumes at the first stage without a record.

Parameters come from, in increasing precedence: the notebook's own defaults,
the parameter file's ``common`` section (every notebook that declares the
name), its section named after the stage, ``-p name=value`` on the command
line (every notebook that declares the name) and ``-p stage.name=value``
(that notebook only). Values are checked against the type of the literal in
the parameters cell.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from .errors import DataError, ParameterError
from .files import atomic_path, read_json, stable_hash, write_json

__all__ = [
    "PROJECT_ROOT",
    "STAGE_RECORD",
    "SUMMARY_FILE",
    "Parameter",
    "Stage",
    "StageOutcome",
    "discover_stages",
    "load_param_file",
    "parse_override",
    "resolve_parameters",
    "stage_key",
    "read_stage_record",
    "run_study",
    "register_cli",
]

# The repository holding the notebooks and parameter files (the package is
# installed editable, so this is the checkout).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
STAGE_RECORD = "_stage.json"
# Written by a notebook's last cell (crowdnb.book.write_summary): its presence
# tells downstream notebooks that the stage finished.
SUMMARY_FILE = "summary.json"
NOTEBOOK_FOLDER = "notebooks"
KERNEL_NAME = "python3"
# Parameters the runner sets itself; they never enter a stage's key because
# they say where the run is, not what it computes.
RUNNER_PARAMETERS = ("run_dir",)
_TOP_LEVEL_KEYS = ("run", "extends", "common")
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's ``parameters`` cell (as papermill reads it)."""

    name: str
    type_name: str
    default: str
    help: str


@dataclass(frozen=True)
class Stage:
    """A notebook of the study and what it declares."""

    name: str
    path: Path
    upstream: tuple[str, ...]
    parameters: dict[str, Parameter] = field(hash=False)
    source_hash: str = ""  # of the cells as discovered (see _notebook_source_hash)

    def defaults(self) -> dict[str, Any]:
        """The parameters cell's values (its literals; the source text where not a literal)."""
        values = {}
        for name, param in self.parameters.items():
            try:
                values[name] = ast.literal_eval(param.default)
            except (ValueError, SyntaxError):
                values[name] = param.default
        return values


@dataclass
class StageOutcome:
    """What the runner did with one stage."""

    stage: str
    status: str  # "executed" or "skipped"
    key: str
    duration_s: float


# ---------------------------------------------------------------------------
# Stages and their parameters
# ---------------------------------------------------------------------------


def _read_notebook(path: Path):
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read notebook ({exc})") from None


def _inspect(path: Path) -> dict[str, Parameter]:
    import papermill

    try:
        found = papermill.inspect_notebook(str(path))
    except ValueError as exc:
        raise DataError(f"{path}: cannot read its parameters cell ({exc})") from None
    return {
        name: Parameter(name, p["inferred_type_name"], p["default"], p["help"])
        for name, p in found.items()
    }


def discover_stages(notebooks_dir: str | os.PathLike) -> list[Stage]:
    """The study's stages: every ``*.ipynb`` in ``notebooks_dir``, in name order.

    Raises
    ------
    DataError
        When the folder holds no notebook, or a notebook names an upstream
        stage that does not exist or does not come before it.
    """
    notebooks_dir = Path(notebooks_dir)
    paths = sorted(notebooks_dir.glob("*.ipynb"))
    if not paths:
        raise DataError(f"{notebooks_dir}: no notebooks (*.ipynb) found")
    stages: list[Stage] = []
    for path in paths:
        nb = _read_notebook(path)
        upstream = tuple(nb.metadata.get("crowdnb", {}).get("upstream", []))
        earlier = {s.name for s in stages}
        for name in upstream:
            if name not in earlier:
                raise DataError(
                    f"{path}: upstream stage {name!r} is not a notebook that comes before it "
                    f"in {notebooks_dir}"
                )
        stages.append(Stage(path.stem, path, upstream, _inspect(path), _notebook_source_hash(nb)))
    return stages


def _notebook_source_hash(nb) -> str:
    # Outputs and execution counts never enter the key; cell tags do, because
    # they change what the book shows.
    cells = [
        (cell.cell_type, cell.source, sorted(cell.metadata.get("tags", [])))
        for cell in nb.cells
    ]
    return stable_hash({"cells": cells, "crowdnb": nb.metadata.get("crowdnb", {})})


def stage_key(stage: Stage, parameters: Mapping[str, Any], upstream_keys: Mapping[str, str]) -> str:
    """The cache key of a stage: notebook cells, parameters and upstream keys."""
    return stable_hash(
        {
            "notebook": stage.source_hash,
            "parameters": {k: v for k, v in parameters.items() if k not in RUNNER_PARAMETERS},
            "upstream": dict(upstream_keys),
        }
    )


def _check_type(value: Any, param: Parameter, *, where: str) -> Any:
    expected = _TYPES.get(param.type_name.split("[")[0].strip())
    if expected is None:
        return value  # an untyped parameter takes any literal
    if param.type_name == "float" and isinstance(value, str):
        # YAML 1.1 reads 1e-4 (no dot) as a string; it is a float to anyone else.
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) and bool not in expected:
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ParameterError(
            f"{where}: parameter {param.name!r} must be {param.type_name} "
            f"(the notebook's default is {param.default}), got {value!r}"
        )
    return float(value) if param.type_name == "float" else value


def parse_override(text: str) -> tuple[str | None, str, str]:
    """Split a ``-p`` argument into (stage or None, name, raw value text).

    ``name=value`` applies to every notebook declaring ``name``;
    ``stage.name=value`` to that stage only (``stage`` may be a unique
    prefix such as ``04``).
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParameterError(f"-p {text!r}: expected name=value (e.g. -p epochs=3)")
    scope, dot, short = name.rpartition(".")
    if dot:
        if not short.isidentifier():
            raise ParameterError(f"-p {text!r}: {short!r} is not a parameter name")
        return scope, short, value
    if not name.isidentifier():
        raise ParameterError(f"-p {text!r}: {name!r} is not a parameter name")
    return None, name, value


def _parse_value(raw: str, param: Parameter | None) -> Any:
    # A str parameter takes the text as written (so -p source_path=2024 stays
    # "2024"); anything else is read as a YAML literal (3, 1e-4, true, [a, b]).
    if param is not None and param.type_name == "str":
        return raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return value


def load_param_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a parameter file (YAML), following ``extends:`` to its base file.

    The file has an optional ``run`` (the run's name: its folder under
    ``runs/``), ``extends`` (a parameter file, relative to this one, whose
    values this one overrides), ``common`` (parameters for every notebook that
    declares them) and one section per stage.
    """
    path = Path(path)
    seen: list[Path] = []
    layers: list[dict[str, Any]] = []
    while True:
        if path.resolve() in seen:
            raise DataError(f"{path}: 'extends' loops back to a file already read")
        seen.append(path.resolve())
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise DataError(f"{path}: parameter file not found") from None
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: a parameter file is a mapping of sections")
        for section, values in data.items():
            if section not in ("run", "extends") and not isinstance(values, dict):
                raise DataError(f"{path}: section {section!r} must be a mapping of name: value")
        layers.append(data)
        if not data.get("extends"):
            break
        path = path.parent / str(data["extends"])
    merged: dict[str, Any] = {}
    for data in reversed(layers):
        for section, values in data.items():
            if isinstance(values, dict):
                merged.setdefault(section, {}).update(values)
            else:
                merged[section] = values
    merged.pop("extends", None)
    return merged


def _match_stage(stages: Sequence[Stage], name: str, *, where: str) -> Stage:
    exact = [s for s in stages if s.name == name]
    if exact:
        return exact[0]
    matches = [s for s in stages if s.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(s.name for s in stages)
    if not matches:
        raise ParameterError(f"{where}: no stage {name!r} (stages: {names})")
    raise ParameterError(
        f"{where}: {name!r} matches several stages ({', '.join(s.name for s in matches)})"
    )


def resolve_parameters(
    stages: Sequence[Stage],
    *,
    file_params: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    run_dir: str | os.PathLike,
    where: str = "parameter file",
) -> dict[str, dict[str, Any]]:
    """The parameters to pass to each stage (only those that differ from nothing).

    Returns ``{stage name: {parameter: value}}`` holding ``run_dir`` (absolute)
    for every stage that declares it and every value set by the file or the
    overrides; the notebook's own defaults apply to the rest.

    Raises
    ------
    ParameterError
        For a parameter no notebook declares (the message names it and lists
        the declared ones), a value of the wrong type, or an unknown stage.
    """
    file_params = dict(file_params or {})
    resolved: dict[str, dict[str, Any]] = {s.name: {} for s in stages}
    by_name = {s.name: s for s in stages}
    declared = sorted({p for s in stages for p in s.parameters})

    def unknown(name: str, scope: str) -> ParameterError:
        return ParameterError(
            f"{scope}: unknown parameter {name!r}: no notebook declares it "
            f"(declared: {', '.join(declared)})"
        )

    def set_value(stage: Stage, name: str, value: Any, scope: str) -> None:
        if name in RUNNER_PARAMETERS:
            raise ParameterError(
                f"{scope}: {name} is set by the runner; choose the run directory with --run-dir "
                "(or `run: NAME` in the parameter file, for runs/NAME)"
            )
        param = stage.parameters.get(name)
        if param is None:
            raise ParameterError(
                f"{scope}: unknown parameter {name!r} for stage {stage.name} "
                f"(it declares: {', '.join(stage.parameters) or 'nothing'})"
            )
        resolved[stage.name][name] = _check_type(value, param, where=f"{scope} ({stage.name})")

    for section in file_params:
        if section not in _TOP_LEVEL_KEYS and section not in by_name:
            raise ParameterError(
                f"{where}: unknown section {section!r} (use run, extends, common or a stage: "
                f"{', '.join(by_name)})"
            )
    for name, value in (file_params.get("common") or {}).items():
        targets = [s for s in stages if name in s.parameters]
        if not targets:
            raise unknown(name, f"{where}, common")
        for stage in targets:
            set_value(stage, name, value, f"{where}, common")
    for stage in stages:
        for name, value in (file_params.get(stage.name) or {}).items():
            set_value(stage, name, value, f"{where}, {stage.name}")

    scoped = []
    for text in overrides:
        scope, name, raw = parse_override(text)
        if scope is not None:
            scoped.append((scope, name, raw, text))
            continue
        targets = [s for s in stages if name in s.parameters]
        if not targets:
            raise unknown(name, f"-p {text}")
        for stage in targets:
            set_value(stage, name, _parse_value(raw, stage.parameters[name]), f"-p {text}")
    for scope, name, raw, text in scoped:
        stage = _match_stage(stages, scope, where=f"-p {text}")
        set_value(stage, name, _parse_value(raw, stage.parameters.get(name)), f"-p {text}")

    run_dir = str(Path(run_dir).resolve())
    for stage in stages:
        if "run_dir" in stage.parameters:
            resolved[stage.name]["run_dir"] = run_dir
    return resolved


# ---------------------------------------------------------------------------
# Records and execution
# ---------------------------------------------------------------------------


def read_stage_record(run_dir: str | os.PathLike, stage: str) -> dict[str, Any] | None:
    """The record the runner wrote when ``stage`` last finished, or None."""
    path = Path(run_dir) / stage / STAGE_RECORD
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except DataError:
        return None  # a damaged record means the stage must run again


def _kernel_name() -> str:
    """A kernel that runs this interpreter (the venv's python, with crowdnb)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        exe = spec.argv[0]
        # jupyter_client replaces a bare "python" with the running interpreter.
        if exe in {"python", "python3", f"python3.{sys.version_info[1]}"}:
            return KERNEL_NAME
        if Path(exe).exists() and os.path.samefile(exe, sys.executable):
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(prefix=sys.prefix, kernel_name="crowdnb", display_name="Python (crowdnb)")
    return "crowdnb"


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.is_file() and dst.read_bytes() == src.read_bytes():
        return
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _sync_book(run_dir: Path, stages: Sequence[Stage], book_dir: Path) -> None:
    # The book shows one run: every finished stage of this run, and nothing
    # left over from another run.
    book_dir.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        executed = run_dir / NOTEBOOK_FOLDER / f"{stage.name}.ipynb"
        target = book_dir / f"{stage.name}.ipynb"
        if read_stage_record(run_dir, stage.name) is not None and executed.is_file():
            _copy_if_changed(executed, target)
        else:
            target.unlink(missing_ok=True)


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _execute(
    stage: Stage,
    parameters: Mapping[str, Any],
    key: str,
    upstream_keys: Mapping[str, str],
    *,
    run_dir: Path,
    kernel_name: str,
    progress: bool,
) -> float:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    stage_dir = run_dir / stage.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    # Forget that the stage finished before touching it: if this execution
    # fails or is interrupted, the stage is unfinished, for the runner and for
    # downstream notebooks alike.
    (stage_dir / STAGE_RECORD).unlink(missing_ok=True)
    (stage_dir / SUMMARY_FILE).unlink(missing_ok=True)
    executed = run_dir / NOTEBOOK_FOLDER / f"{stage.name}.ipynb"
    failed = executed.with_name(f"{stage.name}.failed.ipynb")
    executed.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)
    started = _utc_now()
    t0 = time.perf_counter()
    with atomic_path(executed) as tmp:
        try:
            papermill.execute_notebook(
                str(stage.path),
                str(tmp),
                parameters=dict(parameters),
                kernel_name=kernel_name,
                progress_bar=progress,
            )
        except PapermillExecutionError as exc:
            shutil.copyfile(tmp, failed)
            raise DataError(
                f"stage {stage.name} stopped: {exc.ename}: {exc.evalue} "
                f"(the executed notebook, with the traceback, is {failed})"
            ) from None
    duration = time.perf_counter() - t0
    write_json(
        stage_dir / STAGE_RECORD,
        {
            "stage": stage.name,
            "key": key,
            "notebook": str(stage.path),
            # every value the notebook ran with, and which of them the run set
            "parameters": {**stage.defaults(), **parameters},
            "set": sorted(parameters),
            "upstream": dict(upstream_keys),
            "started_utc": started,
            "finished_utc": _utc_now(),
            "duration_s": round(duration, 3),
            "kernel": kernel_name,
            "python": sys.executable,
        },
    )
    return duration


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_study(
    *,
    params_file: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    only: Sequence[str] | None = None,
    run_dir: str | os.PathLike | None = None,
    notebooks_dir: str | os.PathLike = PROJECT_ROOT / "notebooks",
    book_dir: str | os.PathLike | None = PROJECT_ROOT / "book" / "executed",
    force: bool = False,
    progress: bool = True,
    verbose: bool = True,
) -> list[StageOutcome]:
    """Execute the study's notebooks, skipping stages that are up to date.

    Parameters
    ----------
    params_file : path-like or None
        Parameter file (YAML). None: every notebook's defaults.
    overrides : iterable of str
        ``name=value`` or ``stage.name=value`` (see :func:`parse_override`).
    only : sequence of str or None
        Run only these stages (names or unique prefixes such as ``04``). Their
        upstream stages must have finished already, in this run directory.
    run_dir : path-like or None
        The run directory. None: ``runs/<run>`` in the project, where ``run``
        is the parameter file's ``run`` (``default`` if it has none).
    notebooks_dir : path-like
        Where the stage notebooks are.
    book_dir : path-like or None
        Folder of executed notebooks the book is built from, synchronised with
        this run at the end; None leaves it alone.
    force : bool
        Execute the selected stages even when they are up to date.
    progress : bool
        Show papermill's progress bar per notebook.
    verbose : bool
        Print one line per stage.

    Returns
    -------
    outcomes : list of StageOutcome
        One per selected stage, in execution order.

    Raises
    ------
    ParameterError
        For an unknown parameter or stage, or a value of the wrong type.
    DataError
        When a selected stage's upstream stage has not finished, or a notebook
        stops with an error (the message gives the error and the path of the
        executed notebook holding the traceback).
    """
    stages = discover_stages(notebooks_dir)
    file_params = load_param_file(params_file) if params_file is not None else {}
    if run_dir is None:
        run_dir = PROJECT_ROOT / "runs" / str(file_params.get("run", "default"))
    run_dir = Path(run_dir).resolve()
    resolved = resolve_parameters(
        stages,
        file_params=file_params,
        overrides=list(overrides),
        run_dir=run_dir,
        where=str(params_file) if params_file is not None else "parameters",
    )
    if only:
        selected = {_match_stage(stages, name, where="--only").name for name in only}
    else:
        selected = {s.name for s in stages}

    run_dir.mkdir(parents=True, exist_ok=True)
    kernel_name: str | None = None
    keys: dict[str, str] = {}
    outcomes: list[StageOutcome] = []
    try:
        for stage in stages:
            record = read_stage_record(run_dir, stage.name)
            if stage.name not in selected:
                if record is not None:
                    keys[stage.name] = record["key"]
                continue
            missing = [u for u in stage.upstream if u not in keys]
            if missing:
                raise DataError(
                    f"stage {stage.name} needs {', '.join(missing)}, which has not run in "
                    f"{run_dir}: run `crowdnb run --only {' '.join(missing)}` first "
                    "(with the same parameters), or run the whole study without --only"
                )
            upstream_keys = {u: keys[u] for u in stage.upstream}
            key = stage_key(stage, resolved[stage.name], upstream_keys)
            executed = run_dir / NOTEBOOK_FOLDER / f"{stage.name}.ipynb"
            if not force and record is not None and record.get("key") == key and executed.is_file():
                keys[stage.name] = key
                outcomes.append(StageOutcome(stage.name, "skipped", key, 0.0))
                if verbose:
                    _say(f"crowdnb run: {stage.name}: up to date, skipped")
                continue
            if kernel_name is None:
                kernel_name = _kernel_name()
            if verbose:
                _say(f"crowdnb run: {stage.name}: executing ...")
            duration = _execute(
                stage,
                resolved[stage.name],
                key,
                upstream_keys,
                run_dir=run_dir,
                kernel_name=kernel_name,
                progress=progress,
            )
            keys[stage.name] = key
            outcomes.append(StageOutcome(stage.name, "executed", key, duration))
            if verbose:
                _say(f"crowdnb run: {stage.name}: done in {duration:.1f} s")
    finally:
        if book_dir is not None:
            _sync_book(run_dir, stages, Path(book_dir))
    if verbose:
        ran = sum(o.status == "executed" for o in outcomes)
        _say(f"crowdnb run: {ran} stage(s) executed, {len(outcomes) - ran} up to date; "
             f"outputs in {run_dir}")
    return outcomes


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _cli(args: argparse.Namespace) -> int:
    run_study(
        params_file=args.params,
        overrides=args.p or (),
        only=args.only,
        run_dir=args.run_dir,
        notebooks_dir=args.notebooks,
        book_dir=None if args.no_book else args.book_dir,
        force=args.force,
        progress=not args.no_progress,
    )
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to the ``crowdnb`` command line."""
    parser = subparsers.add_parser(
        "run",
        help="execute the study's notebooks into a run directory",
        description=(
            "Execute the study's notebooks with papermill into a run directory, skipping "
            "stages whose notebook, parameters and upstream stages have not changed. "
            "An interrupted run resumes at the first unfinished stage."
        ),
    )
    parser.add_argument("--params", metavar="FILE", default=None,
                        help="parameter file (YAML), e.g. params/default.yaml")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK", default=None,
                        help="run only these stages (names or prefixes such as 04); "
                             "their upstream stages must have run")
    parser.add_argument("-p", action="append", metavar="NAME=VALUE",
                        help="set a parameter in every notebook that declares it "
                             "(or STAGE.NAME=VALUE for one notebook); repeatable")
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="run directory (default: runs/<run> from the parameter file)")
    parser.add_argument("--notebooks", metavar="DIR", default=str(PROJECT_ROOT / "notebooks"),
                        help="folder of stage notebooks (default: %(default)s)")
    parser.add_argument("--book-dir", metavar="DIR",
                        default=str(PROJECT_ROOT / "book" / "executed"),
                        help="folder of executed notebooks the book is built from "
                             "(default: %(default)s)")
    parser.add_argument("--no-book", action="store_true",
                        help="leave the book's folder of executed notebooks alone")
    parser.add_argument("--force", action="store_true",
                        help="execute the selected stages even when they are up to date "
                             "(e.g. after changing the crowdnb library, which keys do not cover)")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide papermill's per-cell progress bar")
    parser.set_defaults(func=_cli)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crowdnb.runner``: the ``run`` subcommand on its own."""
    from .errors import CrowdnbError

    parser = argparse.ArgumentParser(prog="crowdnb")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_cli(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "run":
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CrowdnbError as exc:
        print(f"crowdnb run: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
