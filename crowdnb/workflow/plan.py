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

Where runs live: the project's ``runs/`` is a folder of runs (``runs/<run>/``,
``runs/<sweep>/<point>/``) that shares one Snakemake state, one cache and one
lock folder (``runs/.snakemake``, ``runs/.cache``, ``runs/.crowdnb``). A run
given its own folder (``crowdnb run --run-dir DIR``) is self-contained: DIR is
the working directory, its main run is DIR itself (named :data:`SELF_RUN`,
with no prefix in paths) and its sweeps, cache and state are inside it.

What Snakemake records of a job is independent of where the project, the
package and the run are: the job's sources (notebook, the package's files it
imports, the files it reads from outside the run) enter as one manifest of
their checksums inside the run (``.crowdnb/sources/<stage>.json``, rewritten
only when a checksum changes), parameters that name files of the project are
given relative to it, and the rules' commands name the interpreter and the
project through the plan, not in their text.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
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
    "SELF_RUN",
    "run_prefix",
]


def run_prefix(run: str) -> str:
    """The prefix of a run's paths in the working directory (``""`` for :data:`SELF_RUN`)."""
    return "" if run in (SELF_RUN, "") else f"{run.rstrip('/')}/"


def _run_key(run: str) -> str:
    """A run's name from a ``{run}`` wildcard value (``"default/"``, or ``""`` for the self run)."""
    return run.rstrip("/") or SELF_RUN

SUMMARY_FILE = "summary.json"
STAGE_RECORD = "_stage.json"
RESULTS_FILE = "results.csv"
NOTEBOOK_FOLDER = "notebooks"
# Library versions, rewritten only when they change: an input of every stage,
# so that another torch (or numpy, or crowdnb) reruns the study.
ENVIRONMENT_FILE = ".crowdnb/environment.json"
# The checksums of a job's sources, inside its run: what Snakemake sees of them.
SOURCES_FOLDER = ".crowdnb/sources"
# The main run of a self-contained run folder: the working directory itself.
SELF_RUN = "."
FAILED_KEY = "failed"  # in a source manifest: the job's last execution failed
_SPECIAL_WEIGHTS = ("imagenet", "none", "scratch")
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
        return f"{run_prefix(self.run)}{self.stage.name}"


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
    verbose: bool = False
    _code: dict[str, list[str]] = field(default_factory=dict)
    _sums: dict[str, str] = field(default_factory=dict)
    _prints: dict[tuple[str, str], str] = field(default_factory=dict)
    _donors: dict[tuple[str, str], tuple[str, str]] | None = None

    # -- names and patterns ---------------------------------------------------

    @property
    def runs(self) -> list[str]:
        return sorted({run for run, _ in self.jobs})

    @property
    def run_pattern(self) -> str:
        return _runs_pattern(self.runs)

    @property
    def sweep_pattern(self) -> str:
        return "|".join(re.escape(s) for s in self.sweeps) or "(?!)"

    def stage_run_pattern(self, stage: Stage, *, copied: bool) -> str:
        """The runs whose job of ``stage`` executes (or, with ``copied``, copies another's)."""
        runs = [run for (run, name) in self.jobs
                if name == stage.name and (self.donor(run, name) is not None) == copied]
        return _runs_pattern(runs)

    @staticmethod
    def rule_name(stage: Stage, *, copied: bool = False) -> str:
        return f"{'copy' if copied else 'stage'}_{stage.name}"

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def outputs(self, stage: Stage, run: str = "{run}") -> dict[str, Any]:
        """A stage's output files (Snakemake patterns with ``{run}`` by default).

        As patterns they are flagged ``update``: Snakemake does not delete them
        before the job, which keeps the last good results until the stage has
        new ones (:func:`crowdnb.workflow.execute.execute_stage` swaps them in).
        """
        prefix = "{run}" if run == "{run}" else run_prefix(run)
        out = {"summary": f"{prefix}{stage.name}/{SUMMARY_FILE}",
               "record": f"{prefix}{stage.name}/{STAGE_RECORD}",
               "notebook": f"{prefix}{NOTEBOOK_FOLDER}/{stage.name}.ipynb"}
        out.update({f"declared_{i}": f"{prefix}{stage.name}/{rel}"
                    for i, rel in enumerate(stage.outputs)})
        if run == "{run}":
            from snakemake.ioflags import update

            out = {key: update(path) for key, path in out.items()}
        return out

    # -- what one job reads -----------------------------------------------------

    def job(self, run: str, stage: str) -> StageJob:
        try:
            return self.jobs[(_run_key(run), stage)]
        except KeyError:
            raise DataError(f"stage {stage} is not part of run {run!r} in this plan") from None

    def code(self, stage: Stage) -> list[str]:
        if stage.name not in self._code:
            import crowdnb

            package_dir = Path(crowdnb.__file__).parent
            self._code[stage.name] = [str(p) for p in code_files(stage.path, package_dir)]
        return self._code[stage.name]

    def inputs(self, run: str, stage_name: str) -> dict[str, Any]:
        """Every input of one job: its sources' checksums, the environment, upstream outputs, sweeps.

        ``sources`` stands for the notebook, the package files it imports and
        the files it reads from outside the run (see :meth:`sources`).
        """
        job = self.job(run, stage_name)
        prefix = run_prefix(job.run)
        inputs: dict[str, Any] = {
            "sources": self.sources_file(job),
            "environment": ENVIRONMENT_FILE,
            "upstream": [f"{prefix}{u}/{SUMMARY_FILE}" for u in job.stage.upstream],
            "sweeps": [f"{self.sweeps[s].name}/{RESULTS_FILE}" for s in self.sweeps_of(job)],
        }
        return inputs

    # -- jobs that another job of the plan computes already --------------------

    def donor(self, run: str, stage_name: str) -> StageJob | None:
        """The job whose results this job copies, or None when it executes its notebook.

        Two jobs of one stage compute the same results when they run with the
        same values and read the same results upstream (their upstream jobs
        compute the same, recursively): the sources, the environment and the
        files from outside the run are then the same too. The first such job of
        the plan (the main run's, then the sweep points' in their order)
        executes; the others copy its folder. So a sweep point costs what it
        adds: the ablations' points share chapter 1, and a point with the main
        run's values is the main run.
        """
        if self._donors is None:
            first: dict[str, tuple[str, str]] = {}
            self._donors = {}
            for key in self.jobs:
                fingerprint = self._fingerprint(*key)
                if fingerprint in first:
                    self._donors[key] = first[fingerprint]
                else:
                    first[fingerprint] = key
        key = self._donors.get((_run_key(run), stage_name))
        return self.jobs[key] if key is not None else None

    def _copied(self, run: str, stage_name: str) -> StageJob:
        donor = self.donor(run, stage_name)
        if donor is None:
            raise DataError(f"stage {stage_name} of run {run!r} executes; it copies nothing")
        return donor

    def _fingerprint(self, run: str, stage_name: str) -> str:
        key = (run, stage_name)
        if key not in self._prints:
            job = self.jobs[key]
            text = json.dumps([stage_name, self.parameters_json(run, stage_name),
                               [self._fingerprint(run, u) for u in job.stage.upstream]])
            self._prints[key] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self._prints[key]

    def copy_inputs(self, run: str, stage_name: str) -> dict[str, Any]:
        """What a copying job reads: the outputs of the job it copies.

        And its own run's upstream summaries (copies as well, by definition):
        a run's folder holds every stage its targets need, copied or executed.
        """
        donor = self._copied(run, stage_name)
        prefix = run_prefix(_run_key(run))
        return {**self.outputs(donor.stage, donor.run),
                "upstream": [f"{prefix}{u}/{SUMMARY_FILE}" for u in donor.stage.upstream]}

    def sources_file(self, job: StageJob) -> str:
        """Where a job's source manifest is, relative to the working directory."""
        return f"{run_prefix(job.run)}{SOURCES_FOLDER}/{job.stage.name}.json"

    def _name(self, path: str | os.PathLike) -> str:
        # A file of the project (or of the package's parent folder) by its name
        # in there, so that the manifest does not change when they move.
        path = Path(path).resolve()
        import crowdnb

        for root in (self.project.root, Path(crowdnb.__file__).resolve().parent.parent):
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return str(path)

    def sources(self, job: StageJob, *, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The checksums of a job's sources: ``{"notebook": ..., "code": ..., "files": ...}``.

        ``previous`` is the manifest written last time: an external file whose
        size and modification time are those it had then keeps its checksum
        (recordings can be many; they are read again only when they changed).
        """
        hints = (previous or {}).get("stat", {})
        old_files = (previous or {}).get("files", {})
        files, stat = {}, {}
        for path in job.external:
            name, info = self._name(path), os.stat(path)
            stat[name] = [info.st_size, info.st_mtime_ns]
            known = old_files.get(name)
            files[name] = known if known and hints.get(name) == stat[name] else self._checksum(path)
        return {
            "notebook": {self._name(job.stage.path): self._checksum(job.stage.path)},
            "code": {self._name(p): self._checksum(p) for p in self.code(job.stage)},
            "files": files,
            "stat": stat,  # not compared: a hint for the next invocation
        }

    def _checksum(self, path: str | os.PathLike) -> str:
        from ..files import sha256_file

        key = str(path)
        if key not in self._sums:
            self._sums[key] = sha256_file(path)
        return self._sums[key]

    def mark_failed(self, run: str, stage_name: str) -> None:
        """Note in a job's source manifest that its last execution failed.

        Called after Snakemake has finished with the job: it records a failed
        job's parameters and inputs as if it had produced the (restored) last
        good results, so a changed manifest is what makes the job run again.
        The stage's next execution removes the note when it starts.
        """
        path = self.runs_root / self.sources_file(self.job(run, stage_name))
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        manifest[FAILED_KEY] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with atomic_write(path, encoding="utf-8") as fh:
            fh.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    def write_sources(self) -> None:
        """Write every job's source manifest whose checksums changed (or that is missing)."""
        for job in self.jobs.values():
            path = self.runs_root / self.sources_file(job)
            previous = None
            if path.is_file():
                try:
                    previous = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    previous = None
            manifest = self.sources(job, previous=previous)
            compared = ("notebook", "code", "files")
            if previous is not None and all(previous.get(k) == manifest[k] for k in compared):
                continue
            with atomic_write(path, encoding="utf-8") as fh:
                fh.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

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
        parameter's value (defaults included; a path as the project's file
        name when it is one, absolute otherwise), so setting a parameter to
        the value it had changes nothing, and moving the project changes
        nothing either.
        """
        job = self.job(run, stage_name)
        values = dict(job.values)
        for parameter in (*job.stage.sweeps, *job.stage.inputs):
            text = str(values.get(parameter) or "")
            if text and text not in _SPECIAL_WEIGHTS:
                path = self._resolve_path(text).resolve()
                values[parameter] = (path.relative_to(self.project.root).as_posix()
                                     if path.is_relative_to(self.project.root) else str(path))
        return json.dumps(values, sort_keys=True)

    @property
    def execute_options(self) -> str:
        """Options of every stage job that are not part of what it computes."""
        return "" if self.verbose else "--quiet"

    # The commands name the interpreter and the project through PLAN (Snakemake
    # fills the braces from the Snakefile's globals when a job starts): Snakemake
    # reruns a job whose command text changed, and another clone, virtual
    # environment or folder is no change to what a stage computes.
    @property
    def execute_command(self) -> str:
        """The shell command of every stage's rule (Snakemake fills the braces)."""
        return ('{PLAN.python:q} -m crowdnb.workflow.execute stage --project {PLAN.project.root:q} '
                '--stage {params.stage} --run={wildcards.run:q} --threads {threads} '
                '--parameters {params.parameters:q} {PLAN.execute_options}')

    @property
    def copy_command(self) -> str:
        """The shell command of the rules that copy a job's results from the job computing them."""
        return ('{PLAN.python:q} -m crowdnb.workflow.execute copy --stage {params.stage} '
                '--run={wildcards.run:q} --donor={params.donor:q} {PLAN.execute_options}')

    def donor_run(self, run: str, stage_name: str) -> str:
        """The run (folder, relative to the working directory) of the job a job copies."""
        return self._copied(run, stage_name).run

    @property
    def aggregate_command(self) -> str:
        return ('{PLAN.python:q} -m crowdnb.workflow.execute aggregate --sweep-file '
                '{params.sweep_file:q} --output {output:q} {input:q}')

    def sweep_inputs(self, sweep: str) -> list[str]:
        """The summaries a sweep's table gathers: each point's target stages."""
        spec = self.sweeps[sweep]
        return [f"{spec.run_name(p)}/{s}/{SUMMARY_FILE}" for p in spec.points for s in spec.stages]


def _runs_pattern(runs: Sequence[str]) -> str:
    """A ``{run}`` wildcard's pattern for these runs: their prefixes, slash included
    (empty for a self-contained run's own); matching nothing for no run."""
    if not runs:
        return "(?!)"
    return "|".join(re.escape(run_prefix(r)) for r in runs) or "(?:)"


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


def plan_from_config(config: Mapping[str, Any], *, write: bool = True) -> Plan:
    """The plan of one invocation, from the config ``crowdnb run`` passes to Snakemake.

    With ``write`` (the Snakefile's call), the environment record and each
    job's source checksums are written into the runs; ``crowdnb run`` plans
    first without writing, so that a refused run leaves nothing behind.

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
    plan = Plan(project, runs_root, stages, jobs, sweeps, targets, config.get("run"),
                verbose=bool(config.get("verbose")))

    def add_sweep(path: Path) -> Sweep:
        spec = load_sweep(path)
        if spec.name in sweeps:
            return spec
        if spec.name == plan.main_run:
            raise ParameterError(f"{path}: sweep {spec.name!r} has the main run's name; "
                                 "a sweep's folder under runs/ must be its own")
        if plan.main_run == SELF_RUN and spec.name in {*names, NOTEBOOK_FOLDER}:
            raise ParameterError(f"{path}: sweep {spec.name!r} would share its folder in "
                                 f"{runs_root} with the run's own {spec.name}/; rename the sweep")
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
    if write:
        write_environment(runs_root)
        plan.write_sources()
    return plan
