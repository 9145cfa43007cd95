"""The study's stages: what each notebook declares, and the values it runs with.

A stage is a notebook of ``notebooks/``, named by its file (``04_random_split_training``).
It declares, where a reader can see it:

- its **parameters**: the cell tagged ``parameters``, one typed literal per
  line with a comment (``epochs: int = 6  # passes over the training images``),
  which papermill reads (``papermill --help-notebook``);
- in the notebook's metadata, under ``crowdnb``:

  ``upstream``   the stages whose outputs it reads (they run first);
  ``inputs``     parameters that name files read from outside the run
                 (``{"source_path": "path", "weights": "weights"}``): their
                 files are inputs of the stage, so editing or adding one reruns it;
  ``outputs``    files it writes besides ``summary.json`` (``["model.pt"]``),
                 relative to its folder: deleting one reruns the stage;
  ``sweeps``     parameters that name a sweep file whose aggregated results it shows;
  ``ranges``     allowed values, checked before the stage starts
                 (``{"epochs": ">= 1", "test_fraction": "0 < x < 1",
                 "source": "synthetic | folder"}``), or a library registry's names
                 (``"freq_scale": "in crowdnb.config.FREQ_SCALES"``: a new entry there
                 is allowed without editing the notebook; the module must import
                 without torch, as planning a run imports it);
  ``threads``    the most CPU threads it can use (default 1).

Parameters resolve from, in increasing precedence: the notebook's defaults,
the parameter file's ``common`` section (every stage that declares the name),
its section named after a stage, ``-p name=value`` (every stage that declares
it) and ``-p stage.name=value`` (that stage; a unique prefix such as ``04``
works). Values are checked against the literal's type and the declared range.
"""

from __future__ import annotations

import ast
import functools
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import DataError, ParameterError
from ..files import load_yaml

__all__ = [
    "Parameter",
    "Stage",
    "StageValues",
    "discover_stages",
    "stage_table",
    "load_param_file",
    "parse_override",
    "resolve_parameters",
    "code_files",
    "RUNNER_PARAMETERS",
]

# Parameters the workflow sets itself: where the run and the shared cache of
# computed data are, not what the stage computes.
RUNNER_PARAMETERS = ("run_dir", "cache_dir")
INPUT_KINDS = ("path", "weights")
_TOP_LEVEL_KEYS = ("run", "extends", "common")
_METADATA_KEYS = {"upstream", "inputs", "outputs", "sweeps", "ranges", "threads"}
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
    """One entry of a notebook's ``parameters`` cell, as papermill reads it."""

    name: str
    type_name: str
    default: str  # the literal's source text
    help: str
    range: str = ""  # from the notebook's metadata, e.g. ">= 1"

    @property
    def default_value(self) -> Any:
        try:
            return ast.literal_eval(self.default)
        except (ValueError, SyntaxError):
            return self.default


@dataclass(frozen=True)
class Stage:
    """A notebook of the study and what it declares (see the module docstring)."""

    name: str
    path: Path
    parameters: dict[str, Parameter] = field(hash=False)
    upstream: tuple[str, ...] = ()
    inputs: dict[str, str] = field(default_factory=dict, hash=False)
    outputs: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()
    threads: int = 1

    def defaults(self) -> dict[str, Any]:
        """The parameters cell's values."""
        return {name: p.default_value for name, p in self.parameters.items()}


@dataclass(frozen=True)
class StageValues:
    """The values one stage runs with."""

    values: dict[str, Any]  # every parameter: defaults, then what was set
    set: tuple[str, ...]  # the names a parameter file or the command line set


# ---------------------------------------------------------------------------
# Discovery


def _read_notebook(path: Path):
    try:
        return _parsed_notebook(Path(path), Path(path).stat().st_mtime_ns)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read notebook ({exc})") from None


def without_iri_grammar() -> None:
    """Keep this process from importing ``rfc3987_syntax``: 2 s, 5 s on a busy machine.

    Reading a notebook imports nbformat, which imports jsonschema; jsonschema
    imports rfc3987_syntax where it is installed (jupyter-book's dependencies
    bring it) to check the "iri" string format, and that package compiles
    its grammar on import, in ``crowdnb run`` and again in every stage job.
    Notebooks have no "iri" field: with the import refused, jsonschema leaves
    that one format unchecked and validates the rest as before. Called by
    the workflow's commands (``crowdnb run``, a stage job) before anything
    imports jsonschema; ``import crowdnb`` leaves a user's process as it is.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


@functools.lru_cache(maxsize=64)
def _parsed_notebook(path: Path, mtime_ns: int):
    """A notebook, read once per process and version (discovery and the code inputs both
    read every stage's notebook); callers only read it."""
    import nbformat

    return nbformat.read(path, as_version=4)


def _inspect(path: Path, ranges: Mapping[str, str]) -> dict[str, Parameter]:
    import papermill

    try:
        found = papermill.inspect_notebook(str(path))
    except ValueError as exc:
        raise DataError(f"{path}: cannot read its parameters cell ({exc})") from None
    unknown = sorted(set(ranges) - set(found))
    if unknown:
        raise DataError(f"{path}: metadata crowdnb.ranges names undeclared parameter(s) "
                        f"{', '.join(unknown)}")
    parameters = {}
    for name, p in found.items():
        param = Parameter(name, p["inferred_type_name"], p["default"], p["help"],
                          str(ranges.get(name, "")))
        if param.range:
            _check_range(param.default_value, param, where=f"{path} (its default)")
        parameters[name] = param
    return parameters


def _metadata(nb, path: Path) -> dict[str, Any]:
    meta = dict(nb.metadata.get("crowdnb", {}))
    unknown = sorted(set(meta) - _METADATA_KEYS)
    if unknown:
        raise DataError(f"{path}: unknown crowdnb metadata key(s) {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(_METADATA_KEYS))})")
    return meta


def discover_stages(notebooks_dir: str | os.PathLike) -> list[Stage]:
    """The study's stages: every ``*.ipynb`` in ``notebooks_dir``, upstream stages first.

    A stage's ``upstream`` may name any other notebook of the folder: the
    stages come in the order their dependencies allow, ties in name order.

    Raises
    ------
    DataError
        When the folder holds no notebook, a notebook cannot be read, names an
        upstream stage that is not another notebook, the upstream declarations
        form a cycle, or a notebook declares inputs,
        sweeps or ranges for parameters it does not have.
    """
    notebooks_dir = Path(notebooks_dir)
    paths = sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not paths:
        raise DataError(f"{notebooks_dir}: no notebooks (*.ipynb) found")
    stages: list[Stage] = []
    for path in paths:
        nb = _read_notebook(path)
        meta = _metadata(nb, path)
        parameters = _inspect(path, meta.get("ranges", {}))
        upstream = tuple(meta.get("upstream", []))
        names = {p.stem for p in paths} - {path.stem}
        for name in upstream:
            if name not in names:
                raise DataError(f"{path}: upstream stage {name!r} is not another notebook in "
                                f"{notebooks_dir}")
        inputs = dict(meta.get("inputs", {}))
        for name, kind in inputs.items():
            if name not in parameters or kind not in INPUT_KINDS:
                raise DataError(f"{path}: crowdnb.inputs: {name!r} must be a parameter of the "
                                f"notebook and its kind one of {', '.join(INPUT_KINDS)}")
        sweeps = tuple(meta.get("sweeps", []))
        for name in sweeps:
            if name not in parameters or parameters[name].type_name != "str":
                raise DataError(f"{path}: crowdnb.sweeps: {name!r} must be a str parameter")
        if "run_dir" not in parameters:
            raise DataError(f"{path}: its parameters cell must declare run_dir (the run "
                            "directory the workflow passes in)")
        threads = meta.get("threads", 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise DataError(f"{path}: crowdnb.threads must be a positive integer")
        stages.append(Stage(
            name=path.stem, path=path.resolve(), parameters=parameters, upstream=upstream,
            inputs=inputs, outputs=tuple(meta.get("outputs", [])), sweeps=sweeps,
            threads=threads,
        ))
    return _in_dependency_order(stages, notebooks_dir)


def stage_table(stages: Sequence[Stage]) -> "pd.DataFrame":
    """The pipeline as a table, from the notebooks' own declarations (the book draws it).

    Returns
    -------
    pd.DataFrame
        One row per stage, in run order: ``stage``, ``reads`` (its upstream
        stages), ``writes`` (its declared outputs besides ``summary.json``),
        ``parameters`` (those of its parameters cell), ``depth`` (the longest
        chain of stages it waits for: 0 for a stage that reads none).
    """
    import pandas as pd

    depth: dict[str, int] = {}
    for stage in stages:  # run order: every upstream stage is already placed
        depth[stage.name] = 1 + max((depth[u] for u in stage.upstream), default=-1)
    return pd.DataFrame([{"stage": s.name, "reads": ", ".join(s.upstream) or "-",
                          "writes": ", ".join(("summary.json",) + s.outputs),
                          "parameters": ", ".join(p for p in s.parameters if p != "run_dir"),
                          "depth": depth[s.name]} for s in stages])


def stage_mermaid(stages: Sequence[Stage]) -> str:
    """The pipeline as a Mermaid flowchart (the README's drawing), from the same declarations.

    One node per stage (its name) in run order, and an arrow from each upstream
    stage to the stage that reads it, except where a longer path of arrows
    already leads there (the transitive reduction: the order is the same, the
    drawing readable). GitHub draws it where the README shows.
    """
    reach: dict[str, set[str]] = {}  # every stage a stage waits for, directly or not
    for stage in stages:  # run order: upstream stages come first
        reach[stage.name] = set(stage.upstream).union(*(reach[u] for u in stage.upstream))
    lines = ["flowchart LR"]
    lines += [f"    {s.name}[{s.name}]" for s in stages]
    lines += [f"    {u} --> {s.name}" for s in stages for u in s.upstream
              if not any(u in reach[other] for other in s.upstream if other != u)]
    return "\n".join(lines) + "\n"


def _in_dependency_order(stages: list[Stage], notebooks_dir: Path) -> list[Stage]:
    """The stages with every upstream stage before the stages that read it; ties in name order.

    Raises
    ------
    DataError
        When the upstream declarations form a cycle.
    """
    waiting = {s.name: set(s.upstream) for s in stages}
    by_name = {s.name: s for s in stages}
    ordered: list[Stage] = []
    while waiting:
        ready = sorted(name for name, needs in waiting.items() if not needs)
        if not ready:
            cycle = ", ".join(sorted(waiting))
            raise DataError(f"{notebooks_dir}: the upstream declarations of {cycle} form a cycle")
        ordered.append(by_name[ready[0]])
        del waiting[ready[0]]
        for needs in waiting.values():
            needs.discard(ready[0])
    return ordered


# ---------------------------------------------------------------------------
# Values


def _check_type(value: Any, param: Parameter, *, where: str) -> Any:
    expected = _TYPES.get(param.type_name.split("[")[0].strip())
    if expected is None:
        return value  # an untyped parameter takes any literal
    ok = isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected)
    if isinstance(value, float) and param.type_name == "int":
        ok = False
    if not ok:
        kind = "bool (true or false)" if param.type_name == "bool" else param.type_name
        raise ParameterError(
            f"{where}: parameter {param.name!r} must be {kind} "
            f"(the notebook's default is {param.default}), got {value!r}")
    value = float(value) if param.type_name == "float" else value
    if param.range:
        _check_range(value, param, where=where)
    return value


_COMPARISON = re.compile(r"^(>=|>|<=|<)\s*(\S+)$")
_BETWEEN = re.compile(r"^(\S+)\s*(<=|<)\s*x\s*(<=|<)\s*(\S+)$")
_OPERATORS = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b,
              "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}


def _registry_choices(spec: str, name: str) -> list[str]:
    """The names of the registry ``in <module>.<NAME>`` names (a mapping or a sequence)."""
    import importlib

    module, _, attribute = spec.removeprefix("in ").strip().rpartition(".")
    try:
        return [str(c) for c in getattr(importlib.import_module(module), attribute)]
    except (ImportError, AttributeError, ValueError, TypeError):
        raise DataError(f"{name}: range {spec!r} names no registry (use 'in package.module.NAME')") \
            from None


def _check_range(value: Any, param: Parameter, *, where: str) -> None:
    """``value`` against the declared range: ``>= 1``, ``0 < x < 1``, ``a | b | c``
    or ``in crowdnb.module.REGISTRY`` (one of its names)."""
    spec = param.range.strip()
    if spec.startswith("in ") or "|" in spec:
        choices = (_registry_choices(spec, param.name) if spec.startswith("in ")
                   else [c.strip() for c in spec.split("|")])
        if str(value) not in choices:
            raise ParameterError(f"{where}: parameter {param.name!r} must be one of "
                                 f"{', '.join(choices)}, got {value!r}")
        return
    tests = []
    if match := _COMPARISON.match(spec):
        tests.append((match.group(1), float(match.group(2))))
    elif match := _BETWEEN.match(spec):
        low_op = {"<": ">", "<=": ">="}[match.group(2)]
        tests += [(low_op, float(match.group(1))), (match.group(3), float(match.group(4)))]
    else:
        raise DataError(f"{param.name}: range {spec!r} is not understood "
                        "(use '>= 1', '0 < x < 1', 'a | b' or 'in package.module.NAME')")
    number = float(value)
    if math.isnan(number) or not all(_OPERATORS[op](number, bound) for op, bound in tests):
        text = spec if "x" in spec else f"{spec}"
        raise ParameterError(f"{where}: parameter {param.name!r} must be {text}, got {value!r}")


def parse_override(text: str) -> tuple[str | None, str, str]:
    """Split a ``-p`` argument into (stage or None, name, raw value text).

    ``name=value`` applies to every stage declaring ``name``;
    ``stage.name=value`` to that stage only (``stage`` may be a unique prefix).
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


def _parse_value(raw: str, param: Parameter | None, *, where: str) -> Any:
    # A str parameter takes the text as written (so -p source_path=2024 stays
    # "2024"); anything else is read as a YAML literal (3, 1e-4, true, [a, b]).
    if param is not None and param.type_name == "str":
        return raw
    return load_yaml(raw, where=where) if raw.strip() else ""


def load_param_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a parameter file (YAML), following ``extends:`` to its base file.

    The file has an optional ``run`` (the run's name: its folder under
    ``runs/``), ``extends`` (a parameter file, relative to this one, whose
    values this one overrides), ``common`` (parameters for every stage that
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
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{path}: parameter file not found") from None
        except (IsADirectoryError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read the parameter file ({exc})") from None
        data = load_yaml(text, where=str(path)) or {}
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


def match_stage(stages: Sequence[Stage], name: str, *, where: str) -> Stage:
    """The stage called ``name``, or the only one whose name starts with it."""
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
        f"{where}: {name!r} matches several stages ({', '.join(s.name for s in matches)})")


def resolve_parameters(
    stages: Sequence[Stage],
    *,
    file_params: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    typed_overrides: Iterable[tuple[str | None, str, Any]] = (),
    where: str = "parameter file",
) -> dict[str, StageValues]:
    """The values every stage runs with (``run_dir`` aside, which the workflow sets).

    ``typed_overrides`` are ``(stage or None, name, value)`` with values
    already typed (a sweep point's), applied last, like ``-p``.

    Returns
    -------
    dict
        ``{stage name: StageValues}``: every parameter's value (the notebook's
        default unless set) and which names were set. Setting a parameter to
        its default gives the same values as not setting it.

    Raises
    ------
    ParameterError
        For a parameter no stage declares (the message lists the declared
        ones), a value of the wrong type or out of its range, or an unknown
        stage or section.
    """
    file_params = dict(file_params or {})
    chosen: dict[str, dict[str, Any]] = {s.name: {} for s in stages}
    by_name = {s.name: s for s in stages}
    declared = sorted({p for s in stages for p in s.parameters} - set(RUNNER_PARAMETERS))

    def unknown(name: str, scope: str) -> ParameterError:
        return ParameterError(f"{scope}: unknown parameter {name!r}: no notebook declares it "
                              f"(declared: {', '.join(declared)})")

    def set_value(stage: Stage, name: str, value: Any, scope: str) -> None:
        if name in RUNNER_PARAMETERS:
            raise ParameterError(
                f"{scope}: {name} is set by the workflow; choose the run directory with "
                "--run-dir (or `run: NAME` in the parameter file, for runs/NAME; the cache is "
                "runs/.cache beside it)")
        param = stage.parameters.get(name)
        if param is None:
            raise ParameterError(
                f"{scope}: unknown parameter {name!r} for stage {stage.name} "
                f"(it declares: {', '.join(p for p in stage.parameters if p not in RUNNER_PARAMETERS)})")
        chosen[stage.name][name] = _check_type(value, param, where=f"{scope} ({stage.name})")

    for section in file_params:
        if section not in _TOP_LEVEL_KEYS and section not in by_name:
            raise ParameterError(
                f"{where}: unknown section {section!r} (use run, extends, common or a stage: "
                f"{', '.join(by_name)})")
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
            set_value(stage, name, _parse_value(raw, stage.parameters[name], where=f"-p {text}"),
                      f"-p {text}")
    for scope, name, raw, text in scoped:
        stage = match_stage(stages, scope, where=f"-p {text}")
        set_value(stage, name, _parse_value(raw, stage.parameters.get(name), where=f"-p {text}"),
                  f"-p {text}")

    for scope, name, value in typed_overrides:
        label = f"{scope + '.' if scope else ''}{name}"
        if scope is None:
            targets = [s for s in stages if name in s.parameters]
            if not targets:
                raise unknown(name, f"{where}: {label}")
        else:
            targets = [match_stage(stages, scope, where=f"{where}: {label}")]
        for stage in targets:
            set_value(stage, name, value, f"{where}: {label}")

    resolved = {}
    for stage in stages:
        values = {k: v for k, v in stage.defaults().items() if k not in RUNNER_PARAMETERS}
        values.update(chosen[stage.name])
        resolved[stage.name] = StageValues(values, tuple(sorted(chosen[stage.name])))
    return resolved


# ---------------------------------------------------------------------------
# The library code a stage runs


def _imported_modules(tree: ast.AST, package: str) -> set[str]:
    """Absolute names of the modules an AST imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            # `from crowdnb import audio` imports the module crowdnb.audio
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _module_file(name: str, root: Path, top: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != top:
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _notebook_code(path: Path) -> str:
    nb = _read_notebook(path)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            # IPython magics and shell escapes are not Python
            lines += [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def code_files(notebook: str | os.PathLike, package_dir: str | os.PathLike) -> list[Path]:
    """The source files of the package that a notebook runs: its imports, followed.

    Every ``import``/``from ... import`` of the package in the notebook's code
    cells, then of those modules, transitively (an import inside a function
    counts too), plus the ``__init__.py`` of every package on the way. These
    are the stage's code inputs: editing one reruns the stages that use it.

    Parameters
    ----------
    notebook : path-like
    package_dir : path-like
        The folder of the package (``crowdnb/``).

    Returns
    -------
    list of Path
        Sorted, absolute.
    """
    root = Path(package_dir).resolve()
    top = root.name
    try:
        tree = ast.parse(_notebook_code(Path(notebook)))
    except SyntaxError as exc:
        raise DataError(f"{notebook}: a code cell is not valid Python ({exc})") from None
    pending = {n for n in _imported_modules(tree, top) if n.split(".")[0] == top}
    seen: dict[str, Path] = {}
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = _module_file(name, root, top)
        if path is None:
            continue  # a name imported from a module, not a module
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        parents = [".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))]
        pending.update(p for p in parents if p not in seen)
        pending.update(n for n in _file_imports(path, package, path.stat().st_mtime_ns)
                       if n.split(".")[0] == top and n not in seen)
    return sorted(set(seen.values()))


@functools.lru_cache(maxsize=None)
def _file_imports(path: Path, package: str, mtime_ns: int) -> frozenset[str]:
    """:func:`_imported_modules` of a source file, parsed once per process and version.

    Every stage's notebook imports much the same modules: planning a run
    follows them for each stage, and a file is read again only when it changed
    (``mtime_ns`` is part of the key).
    """
    return frozenset(_imported_modules(ast.parse(path.read_text(encoding="utf-8")), package))
