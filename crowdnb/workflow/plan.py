"""From parameter files to the jobs of one invocation: the plan the Snakefile reads.

A *run* is one execution of the study's stages into ``runs/<run>/``, with
the values of a parameter file and ``-p`` overrides. A *sweep* is a family of
runs, one per *point*, under ``runs/<sweep>/<point>/``, plus one table that
gathers their results (``runs/<sweep>/results.csv``). A sweep file::

    sweep: ablations              # its folder under runs/
    base: ../default.yaml         # the parameter file every point starts from
    stages: [04_random_split_training]   # what each point runs (and what that needs)
    common:                       # optional: overrides every point shares
      guard_gap: false
    points:                       # named points, each a set of overrides
      paper: {}
      bark: {02_preprocessing.freq_scale: bark}
    grid:                         # optional: crossed with every point
      seed: [0, 1, 2]

A key is a parameter name (every stage declaring it) or ``stage.name``. Each
point's values are its base file's, then the command line's ``-p``, then the
point's own (after ``common``). A stage can show a sweep: a parameter it lists under
``crowdnb.sweeps`` names the sweep file, and the sweep's table becomes one of
its inputs, so its points run first.

:func:`plan_from_config` is what the Snakefile calls with Snakemake's
``config``; every path in the plan is relative to the runs folder (the
workflow's working directory) or absolute.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import DataError, ParameterError
from ..files import atomic_write, load_yaml
from .project import Project, check_run_name
from .stages import Stage, code_files, discover_stages, load_param_file, resolve_parameters

__all__ = [
    "Plan",
    "StageJob",
    "Sweep",
    "plan_from_config",
    "load_sweep",
    "SUMMARY_FILE",
    "STAGE_RECORD",
    "RESULTS_FILE",
    "ENVIRONMENT_FILE",
]

SUMMARY_FILE = "summary.json"
STAGE_RECORD = "_stage.json"
RESULTS_FILE = "results.csv"
NOTEBOOK_FOLDER = "notebooks"
# Library versions, rewritten only when they change: an input of every stage,
# so that another torch (or numpy, or crowdnb) reruns the study.
ENVIRONMENT_FILE = ".crowdnb/environment.json"
_SWEEP_KEYS = {"sweep", "base", "stages", "common", "points", "grid"}


@dataclass(frozen=True)
class StageJob:
    """One stage of one run: the values it runs with and the files it reads."""

    run: str
    stage: Stage
    values: dict[str, Any] = field(hash=False)
    set: tuple[str, ...] = ()
    external: tuple[str, ...] = ()  # absolute paths of files read from outside the run

    @property
    def folder(self) -> str:
        return f"{self.run}/{self.stage.name}"


@dataclass(frozen=True)
class Sweep:
    """A sweep file, expanded: its points and the overrides of each."""

    name: str
    path: Path
    base: Path
    stages: tuple[str, ...]
    points: dict[str, dict[str, Any]] = field(hash=False)

    def run_name(self, point: str) -> str:
        return f"{self.name}/{point}"


def _point_label(values: Mapping[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        text = re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_") or "x"
        parts.append(f"{key.rpartition('.')[2]}{text}")
    return "-".join(parts)


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read a sweep file (see the module docstring).

    Raises
    ------
    DataError
        When the file is missing or malformed.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DataError(f"{path}: sweep file not found")
    data = load_yaml(path.read_text(encoding="utf-8"), where=str(path)) or {}
    if not isinstance(data, dict):
        raise DataError(f"{path}: a sweep file is a mapping (sweep, base, stages, common, points, "
                        "grid)")
    unknown = sorted(set(data) - _SWEEP_KEYS)
    if unknown:
        raise DataError(f"{path}: unknown key(s) {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(_SWEEP_KEYS))})")
    name = check_run_name(data.get("sweep"), where=f"{path}: sweep")
    if not data.get("base"):
        raise DataError(f"{path}: 'base' must name the parameter file every point starts from")
    base = (path.parent / str(data["base"])).resolve()
    stages = data.get("stages") or []
    if isinstance(stages, str):
        stages = [stages]
    if not stages or not all(isinstance(s, str) for s in stages):
        raise DataError(f"{path}: 'stages' must list the stages each point runs")
    points = data.get("points") or {"base": {}}
    if not isinstance(points, dict) or not all(isinstance(v or {}, dict) for v in points.values()):
        raise DataError(f"{path}: 'points' must map point names to overrides")
    common = data.get("common") or {}
    if not isinstance(common, dict):
        raise DataError(f"{path}: 'common' must map parameters to the values every point shares")
    if "grid" in data and not data["grid"]:  # crossed with nothing, it would add nothing
        raise DataError(f"{path}: 'grid' is empty; map parameters to lists of values "
                        "(grid: {seed: [0, 1, 2]}), or leave 'grid' out")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise DataError(f"{path}: 'grid' must map parameters to non-empty lists of values")
    expanded: dict[str, dict[str, Any]] = {}
    for point, overrides in points.items():
        check_run_name(str(point), where=f"{path}: point")
        for combination in itertools.product(*grid.values()):
            cell = dict(zip(grid, combination))
            label = str(point) if not cell else f"{point}-{_point_label(cell)}"
            if label in expanded:
                raise DataError(f"{path}: two points are both named {label!r}")
            expanded[label] = {**common, **(overrides or {}), **cell}
    return Sweep(name=name, path=path, base=base, stages=tuple(stages), points=expanded)


def _typed_overrides(overrides: Mapping[str, Any]) -> list[tuple[str | None, str, Any]]:
    out = []
    for key, value in overrides.items():
        scope, dot, name = str(key).rpartition(".")
        out.append((scope if dot else None, name, value))
    return out


def _input_files(kind: str, value: Any, *, stage: str, name: str, root: Path) -> list[str]:
    """The files a path-like parameter makes the stage read (absolute)."""
    from ..weights import imagenet_weights_file

    text = str(value).strip()
    if kind == "weights" and text in ("imagenet", "none", "scratch"):
        hub = imagenet_weights_file()
        return [str(hub)] if text == "imagenet" and hub.is_file() else []
    if not text:
        return []
    path = Path(os.path.expanduser(text))
    path = path if path.is_absolute() else root / path
    if path.is_file():
        return [str(path.resolve()), *_listed_files(path)]
    if path.is_dir():
        return sorted(str(p.resolve()) for p in path.rglob("*")
                      if p.is_file() and not any(part.startswith(".")
                                                 for part in p.relative_to(path).parts))
    raise ParameterError(f"{stage}: parameter {name!r} names {text!r}, which does not exist")


# What a list of recordings names: the audio the collectors read (audio.py's
# libsndfile formats, and those it hands to ffmpeg).
_LISTED_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                    ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64", ".m4a", ".aac", ".mp4",
                    ".webm", ".wma")


def _listed_files(path: Path) -> list[str]:
    """The local audio files a CSV list names (absolute, or relative to its folder).

    A recordings list is read with the files it names, so editing one of them
    is a change of the stage's input, as editing a file of a folder is.
    """
    import csv

    if path.suffix.lower() != ".csv":
        return []
    found = set()
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            for cell in row:
                cell = cell.strip()
                if "://" in cell or not cell.lower().endswith(_LISTED_SUFFIXES):
                    continue
                named = Path(os.path.expanduser(cell))
                named = named if named.is_absolute() else path.parent / named
                if named.is_file():
                    found.add(str(named.resolve()))
    return sorted(found)


@dataclass
class Plan:
    """Every job of one invocation, as the Snakefile needs them."""

    project: Project
    runs_root: Path
    stages: list[Stage]
    jobs: dict[tuple[str, str], StageJob]
    sweeps: dict[str, Sweep]
    targets: list[str]
    main_run: str | None
    python: str = sys.executable
    _code: dict[str, list[str]] = field(default_factory=dict)

    # -- names and patterns ---------------------------------------------------

    @property
    def runs(self) -> list[str]:
        return sorted({run for run, _ in self.jobs})

    @property
    def run_pattern(self) -> str:
        return "|".join(re.escape(r) for r in self.runs) or "(?!)"

    @property
    def sweep_pattern(self) -> str:
        return "|".join(re.escape(s) for s in self.sweeps) or "(?!)"

    @staticmethod
    def rule_name(stage: Stage) -> str:
        return f"stage_{stage.name}"

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def outputs(self, stage: Stage, run: str = "{run}") -> dict[str, str]:
        """A stage's output files (Snakemake patterns with ``{run}`` by default)."""
        out = {"summary": f"{run}/{stage.name}/{SUMMARY_FILE}",
               "record": f"{run}/{stage.name}/{STAGE_RECORD}",
               "notebook": f"{run}/{NOTEBOOK_FOLDER}/{stage.name}.ipynb"}
        out.update({f"declared_{i}": f"{run}/{stage.name}/{rel}"
                    for i, rel in enumerate(stage.outputs)})
        return out

    # -- what one job reads -----------------------------------------------------

    def job(self, run: str, stage: str) -> StageJob:
        try:
            return self.jobs[(run, stage)]
        except KeyError:
            raise DataError(f"stage {stage} is not part of run {run!r} in this plan") from None

    def code(self, stage: Stage) -> list[str]:
        if stage.name not in self._code:
            import crowdnb

            package_dir = Path(crowdnb.__file__).parent
            self._code[stage.name] = [str(p) for p in code_files(stage.path, package_dir)]
        return self._code[stage.name]

    def inputs(self, run: str, stage_name: str) -> dict[str, Any]:
        """Every input of one job: notebook, upstream outputs, code, environment, files, sweeps."""
        job = self.job(run, stage_name)
        stage = job.stage
        inputs: dict[str, Any] = {
            "notebook": self._local(stage.path),
            "environment": ENVIRONMENT_FILE,
            "code": self.code(stage),
            "upstream": [f"{run}/{u}/{SUMMARY_FILE}" for u in stage.upstream],
            "external": [self._local(p) for p in job.external],
            "sweeps": [f"{self.sweeps[s].name}/{RESULTS_FILE}" for s in self.sweeps_of(job)],
        }
        return inputs

    def _local(self, path: str | os.PathLike) -> str:
        # Files of the project are named relative to the runs folder, so that
        # a project moved or copied as a whole stays up to date.
        path = Path(path)
        if path.is_relative_to(self.project.root):
            return os.path.relpath(path, self.runs_root)
        return str(path)

    def sweeps_of(self, job: StageJob) -> list[str]:
        """The sweeps a job shows (the names of those its sweep parameters name)."""
        names = []
        for parameter in job.stage.sweeps:
            value = str(job.values.get(parameter) or "")
            if value:
                names.append(load_sweep(self._resolve_path(value)).name)
        return names

    def _resolve_path(self, value: str) -> Path:
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else self.project.root / path

    def parameters_json(self, run: str, stage_name: str) -> str:
        """The values a job runs with, as one JSON text (Snakemake's ``params``).

        Snakemake reruns a job when this text changes: it holds every
        parameter's value (defaults included, paths made absolute), so setting
        a parameter to the value it had changes nothing.
        """
        job = self.job(run, stage_name)
        values = dict(job.values)
        for parameter in (*job.stage.sweeps, *job.stage.inputs):
            text = str(values.get(parameter) or "")
            if text and text not in ("imagenet", "none", "scratch"):
                values[parameter] = str(self._resolve_path(text).resolve())
        return json.dumps(values, sort_keys=True)

    @property
    def execute_command(self) -> str:
        """The shell command of every stage's rule (Snakemake fills the braces)."""
        # The project is named relative to the runs folder: Snakemake reruns a
        # job whose command changed, and moving the project as a whole is no change.
        project = os.path.relpath(self.project.root, self.runs_root)
        return (f'"{self.python}" -m crowdnb.workflow.execute stage --project "{project}" '
                '--stage {params.stage} --run {wildcards.run:q} --threads {threads} '
                '--parameters {params.parameters:q}')

    @property
    def aggregate_command(self) -> str:
        return (f'"{self.python}" -m crowdnb.workflow.execute aggregate --sweep-file '
                '{params.sweep_file:q} --output {output:q} {input:q}')

    def sweep_inputs(self, sweep: str) -> list[str]:
        """The summaries a sweep's table gathers: each point's target stages."""
        spec = self.sweeps[sweep]
        return [f"{spec.run_name(p)}/{s}/{SUMMARY_FILE}" for p in spec.points for s in spec.stages]


def _jobs_for_run(run: str, stages: Sequence[Stage], resolved, wanted: Sequence[str],
                  root: Path) -> dict[tuple[str, str], StageJob]:
    by_name = {s.name: s for s in stages}
    needed: set[str] = set()
    pending = list(wanted)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(by_name[name].upstream)
    jobs = {}
    for stage in stages:
        if stage.name not in needed:
            continue
        values = resolved[stage.name]
        external: list[str] = []
        for parameter, kind in stage.inputs.items():
            external += _input_files(kind, values.values[parameter], stage=stage.name,
                                     name=parameter, root=root)
        jobs[(run, stage.name)] = StageJob(run, stage, values.values, values.set, tuple(external))
    return jobs


def write_environment(runs_root: Path) -> Path:
    """Write the library versions to the environment file, only when they changed."""
    from ..provenance import library_versions

    path = runs_root / ENVIRONMENT_FILE
    text = json.dumps(library_versions(), indent=2, sort_keys=True) + "\n"
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        with atomic_write(path, encoding="utf-8") as fh:
            fh.write(text)
    return path


def plan_from_config(config: Mapping[str, Any]) -> Plan:
    """The plan of one invocation, from the config ``crowdnb run`` passes to Snakemake.

    Parameters
    ----------
    config : mapping
        ``project`` (the project folder), ``runs_root`` (the folder of runs,
        the workflow's working directory), ``run`` (the main run's name, or
        None for a sweep alone), ``params_file`` (or None), ``overrides``
        (``-p`` texts), ``sweep`` (a sweep file to run on its own, or None)
        and ``only`` (stages of the main run to target, or empty for all).

    Raises
    ------
    ParameterError, DataError
        For anything wrong in the parameters, the notebooks or the sweeps.
    """
    project = Project(Path(config["project"]).resolve())
    runs_root = Path(config["runs_root"]).resolve()
    stages = discover_stages(project.notebooks)
    names = [s.name for s in stages]
    overrides = list(config.get("overrides") or [])
    jobs: dict[tuple[str, str], StageJob] = {}
    sweeps: dict[str, Sweep] = {}
    targets: list[str] = []
    plan = Plan(project, runs_root, stages, jobs, sweeps, targets, config.get("run"))

    def add_sweep(path: Path) -> Sweep:
        spec = load_sweep(path)
        if spec.name in sweeps:
            return spec
        if spec.name == plan.main_run:
            raise ParameterError(f"{path}: sweep {spec.name!r} has the main run's name; "
                                 "a sweep's folder under runs/ must be its own")
        unknown = [s for s in spec.stages if s not in names]
        if unknown:
            raise ParameterError(f"{path}: stages: no stage {', '.join(unknown)} "
                                 f"(stages: {', '.join(names)})")
        base = load_param_file(spec.base)
        # A point shows no sweep of its own: the command line's sweep parameters
        # (`-p seed_sweep=...`, for the main run) do not reach it.
        no_sweeps = [(s.name, name, "") for s in stages for name in s.sweeps]
        for point, point_overrides in spec.points.items():
            where = f"{path}, point {point}"
            resolved = resolve_parameters(
                stages, file_params=base, overrides=overrides,
                typed_overrides=[*no_sweeps, *_typed_overrides(point_overrides)], where=where)
            run = spec.run_name(point)
            point_jobs = _jobs_for_run(run, stages, resolved, spec.stages, project.root)
            for job in point_jobs.values():
                if plan.sweeps_of(job):
                    raise ParameterError(f"{where}: stage {job.stage.name} shows a sweep; a "
                                         "sweep's points cannot run sweeps of their own")
            jobs.update(point_jobs)
        sweeps[spec.name] = spec
        return spec

    if plan.main_run is not None:
        run = str(plan.main_run)
        params_file = config.get("params_file")
        file_params = load_param_file(params_file) if params_file else {}
        resolved = resolve_parameters(stages, file_params=file_params, overrides=overrides,
                                      where=str(params_file or "parameters"))
        only = list(config.get("only") or names)
        jobs.update(_jobs_for_run(run, stages, resolved, names, project.root))
        for name in only:
            targets.extend(plan.outputs(plan.stage(name), run).values())
        # Every stage's sweeps, not only those of the targeted stages: each job's
        # inputs name them, whichever stages this invocation runs.
        for (job_run, _), job in list(jobs.items()):
            if job_run == run:
                for parameter in job.stage.sweeps:
                    if job.values.get(parameter):
                        add_sweep(plan._resolve_path(str(job.values[parameter])))
    if config.get("sweep"):
        spec = add_sweep(Path(config["sweep"]))
        targets.append(f"{spec.name}/{RESULTS_FILE}")
    write_environment(runs_root)
    return plan
