"""``crowdnb run``: resolve the parameter files, and let Snakemake run what is stale.

The command is a thin layer over Snakemake's API: it finds the project from
where you stand, names the run (``runs/<run>/``, from the parameter file's
``run``, or a folder of its own with ``--run-dir``), checks the parameters
before anything starts, takes the run's lock, and hands the project's
``Snakefile`` to Snakemake with the parameter file and the overrides as
config. After a successful run of the project's own runs it copies the
executed notebooks to the book's folder (``book/executed/``); a run with
``--run-dir`` changes the book only with ``--publish``.

What it prints: one line per stage job (what ran, why, how long), one line
for a failure (which stage, its error, where its executed notebook and its
kernel's log are), and a closing line; Snakemake's own report only with
``--verbose`` (it is always in ``.snakemake/log/`` of the working directory).

Where a run writes: a run of the project's ``runs/`` shares that folder's
state (``runs/.snakemake``, ``runs/.crowdnb``, ``runs/.cache``) with its
other runs and sweeps; a run given ``--run-dir DIR`` keeps everything in DIR,
its sweeps and that state included (see :mod:`.plan`).

Locks: see :mod:`.locks`. A second run on the same run directory is refused
with the first one's process id, also while a stage or kernel of a run whose
``crowdnb run`` was killed is still alive.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from ..errors import CrowdnbError, DataError, ParameterError
from ..files import atomic_path
from ..provenance import usable_cores
from .execute import error_file, restore_interrupted
from .locks import hold_run_locks
from .plan import (FAILED_KEY, NOTEBOOK_FOLDER, SELF_RUN, STAGE_RECORD, SUMMARY_FILE, Plan, plan_from_config,
                   run_prefix)
from .project import Project, check_run_name, find_project
from .stages import (discover_stages, load_param_file, match_stage, parse_override,
                     without_iri_grammar)

__all__ = ["run_study", "RunOutcome", "register_cli"]


class RunOutcome(dict):
    """What ``run_study`` did: ``{"executed": [(run, stage), ...], "run_dir": ..., ...}``.

    ``copied`` lists the jobs that copied the results of an identical job of
    the invocation instead of executing (a sweep point sharing the main run's
    stages); ``would_run`` the jobs a dry run found stale; all in the same form.
    """


def _absolute_path_overrides(stages, overrides: Sequence[str]) -> list[str]:
    """``-p`` values of path parameters, made absolute from where the command runs."""
    path_names = {n for s in stages for n in (*s.inputs, *s.sweeps)}
    out = []
    for text in overrides:
        scope, name, raw = parse_override(text)
        value = raw.strip()
        if name in path_names and value and value not in ("imagenet", "none", "scratch") \
                and not os.path.isabs(os.path.expanduser(value)):
            value = str(Path(value).resolve())
            text = f"{scope + '.' if scope else ''}{name}={value}"
        out.append(text)
    return out


def _locate(project: Project, run_dir, main_run_name: str | None) -> tuple[Path, str | None]:
    """The working directory and the main run's name in it.

    ``--run-dir`` directly under the project's ``runs/`` is a run of that
    folder of runs; anywhere else it is a self-contained run folder
    (:data:`~crowdnb.workflow.plan.SELF_RUN`).
    """
    if run_dir is None:
        return project.runs, main_run_name
    run_path = Path(run_dir).expanduser().resolve()
    if run_path.parent == project.runs:
        return project.runs, check_run_name(run_path.name, where="--run-dir")
    if run_path == project.runs or project.runs.is_relative_to(run_path):
        raise ParameterError(f"--run-dir {run_dir}: the project's folder of runs, or a folder "
                             "holding it, is not a run's folder; name a folder of its own")
    return run_path, SELF_RUN


def _run_folder(runs_root: Path, run: str) -> Path:
    return runs_root / run_prefix(run) if run != SELF_RUN else runs_root


def _check_writable(folder: Path) -> None:
    """Refuse a run folder with a file or folder this process cannot write, naming it."""
    if not folder.exists():
        return
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".snakemake"]
        for path in (root, *(os.path.join(root, f) for f in files)):
            if not os.path.islink(path) and not os.access(path, os.W_OK):
                raise DataError(
                    f"{path}: cannot be written (it is read-only); make the run folder writable "
                    f"(chmod -R u+w {folder}) or run into another folder with --run-dir")


def _stages_to_run_first(plan: Plan, selected: Sequence[str], run: str) -> list[str]:
    """The upstream stages of ``selected`` that have not finished in ``run``, in stage order."""
    folder = _run_folder(plan.runs_root, run)
    by_name = {s.name: s for s in plan.stages}
    missing, pending, seen = set(), [u for name in selected for u in by_name[name].upstream], set()
    while pending:
        name = pending.pop()
        if name in seen or name in selected:
            continue
        seen.add(name)
        if not ((folder / name / SUMMARY_FILE).is_file() and (folder / name / STAGE_RECORD).is_file()):
            missing.add(name)
            pending.extend(by_name[name].upstream)
    return [s.name for s in plan.stages if s.name in missing]


def _remove_stale_snakemake_locks(runs_root: Path, names: Sequence[str]) -> bool:
    """Remove Snakemake's lock files that protect only runs this process holds.

    Called when Snakemake refuses to start while this process holds the lock
    of every run it asked for: no live ``crowdnb run`` can be writing them, so
    a lock naming their files was left by a run that was killed.
    """
    folder = runs_root / ".snakemake" / "locks"
    removed = False
    for lock in sorted(folder.glob("*.output.lock")) if folder.is_dir() else []:
        lines = [ln.strip() for ln in lock.read_text(encoding="utf-8").splitlines() if ln.strip()]
        mine = [ln for ln in lines if SELF_RUN in names
                or any(ln.startswith(f"{n}/") for n in names)]
        if mine and len(mine) == len(lines):
            index = lock.name.split(".")[0]
            for part in ("input", "output"):
                (folder / f"{index}.{part}.lock").unlink(missing_ok=True)
            removed = True
    return removed


def _check_settings_together(plan: Plan, *, params_file: str | os.PathLike | None) -> None:
    """Check the settings each job's parameters give together, as its library code will.

    The notebooks' declared ranges check each parameter alone (``hop_s > 0``);
    a job whose parameters are preprocessing settings
    (:class:`crowdnb.config.PreprocessConfig`) is also checked as
    :func:`crowdnb.dataset.preprocess` checks them before it reads a clip:
    ``low_hz`` below ``high_hz`` and below 0.95 x Nyquist, ``fmin`` below
    Nyquist, a block at least one window long, ... (Here, not in the plan:
    the plan's imports are code inputs of every stage.)

    Raises
    ------
    ParameterError
        Naming the parameter file (or the sweep file and point), the stage
        and the settings.
    """
    from ..config import PreprocessConfig

    names = set(PreprocessConfig().flat())
    for (run, stage), job in plan.jobs.items():
        values = {k: v for k, v in job.values.items() if k in names}
        if not values:
            continue
        from ..dataset import check_settings  # seconds to import: only where a job needs it

        try:
            check_settings(PreprocessConfig.from_flat(**values))
        except ParameterError as exc:
            if run == plan.main_run:
                where = str(params_file or "parameters")
            else:
                sweep, _, point = run.partition("/")
                where = f"{plan.sweeps[sweep].path}, point {point}"
            raise ParameterError(f"{where}, stage {stage}: {exc}") from None


def _sync_book(run_dir: Path, stages, book_dir: Path) -> None:
    # The book shows one run: every finished stage of this run, nothing of another.
    book_dir.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        executed = run_dir / NOTEBOOK_FOLDER / f"{stage.name}.ipynb"
        target = book_dir / f"{stage.name}.ipynb"
        if (run_dir / stage.name / STAGE_RECORD).is_file() and executed.is_file():
            if not (target.is_file() and target.read_bytes() == executed.read_bytes()):
                with atomic_path(target) as tmp:
                    shutil.copyfile(executed, tmp)
        else:
            target.unlink(missing_ok=True)
    names = {f"{stage.name}.ipynb" for stage in stages}
    for stale in book_dir.glob("*.ipynb"):  # a stage renamed or removed since
        if stale.name not in names:
            stale.unlink()


def _executor_settings(executor: str, executor_args: Sequence[str]):
    """The settings of an executor plugin, parsed from its own command-line options."""
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    registry = ExecutorPluginRegistry()
    try:
        plugin = registry.get_plugin(executor)
    except Exception as exc:  # the registry raises its own error type
        raise ParameterError(
            f"--executor {executor}: no such Snakemake executor plugin is installed ({exc}); "
            f"for a Slurm cluster: pip install 'crowdnb[slurm]'") from None
    parser = argparse.ArgumentParser(prog=f"crowdnb run --executor {executor}", add_help=False)
    plugin.register_cli_args(parser, "executor")
    try:
        namespace, unknown = parser.parse_known_args(list(executor_args))
    except SystemExit:
        raise ParameterError(f"--executor {executor}: cannot read its options "
                             f"{' '.join(executor_args)}") from None
    if unknown:
        known = sorted(a for action in parser._actions for a in action.option_strings)
        raise ParameterError(f"--executor {executor}: unknown option(s) {' '.join(unknown)} "
                             f"(its options: {', '.join(known) or 'none'})")
    return plugin, plugin.get_settings(namespace)


def run_study(
    *,
    params_file: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    only: Sequence[str] | None = None,
    sweep: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    project: str | os.PathLike | None = None,
    book: bool | None = None,
    force: bool = False,
    dry_run: bool = False,
    jobs: int | None = None,
    executor: str = "local",
    executor_args: Sequence[str] = (),
    quiet: bool = False,
    verbose: bool = False,
) -> RunOutcome:
    """Run the study's stages that are stale, through Snakemake.

    Parameters
    ----------
    params_file : path-like or None
        Parameter file (YAML); None: every notebook's defaults.
    overrides : sequence of str
        ``name=value`` or ``stage.name=value``.
    only : sequence of str or None
        Run only these stages (names or unique prefixes); their upstream
        stages must have run.
    sweep : path-like or None
        A sweep file to run (its points and its table). With no parameter
        file, only the sweep runs.
    run_dir : path-like or None
        The run's folder; None: ``runs/<run>`` of the project, ``run`` from
        the parameter file (``default`` when it has none). A folder outside
        the project's ``runs/`` holds everything the run writes.
    project : path-like or None
        The project folder; None: found from the current directory upwards.
    book : bool or None
        Copy the run's executed notebooks to the book's folder afterwards;
        None: only for a run of the project's ``runs/`` named by the
        parameter file (no ``run_dir``).
    force : bool
        Execute the selected stages even when they are up to date.
    dry_run : bool
        Say what would run and why; run nothing.
    jobs : int >= 1 or None
        Jobs at a time: local CPU cores to use (None: all this process may
        use, :func:`crowdnb.provenance.usable_cores`), or, with a cluster
        executor, jobs submitted at a time.
    executor, executor_args : str, sequence of str
        A Snakemake executor plugin (``slurm``, ...) and its options
        (``--slurm-...``); ``local`` runs here.
    quiet : bool
        Print only errors and the closing line.
    verbose : bool
        Print Snakemake's own report as well (its job listing, its logs).

    Returns
    -------
    RunOutcome
        ``executed`` (the (run, stage) jobs that ran), ``would_run`` (those
        a dry run found stale), ``run_dir``, ``runs_root``.

    Raises
    ------
    ParameterError, DataError
        For bad parameters, notebooks or sweeps (before anything runs), a
        run folder that cannot be written, ``only`` stages whose upstream
        stages have not run, a run locked by another process, or a stage that
        stopped (the message names it, its executed notebook with the
        traceback, and its kernel's log).
    """
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ParameterError(f"jobs (--jobs) must be a whole number of at least 1, got {jobs!r}")
    project_ = find_project(project)
    stages = discover_stages(project_.notebooks)
    file_params = load_param_file(params_file) if params_file is not None else {}
    if run_dir is None and params_file is None and sweep is not None:
        runs_root, main_run = project_.runs, None
    else:
        runs_root, main_run = _locate(project_, run_dir, check_run_name(
            file_params.get("run", "default"),
            where=f"{params_file}: run" if params_file else "run") if run_dir is None else None)
    if book is None:
        book = run_dir is None
    selected = [match_stage(stages, name, where="--only").name for name in (only or [])]
    config = {
        "project": str(project_.root),
        "runs_root": str(runs_root),
        "run": main_run,
        "params_file": str(Path(params_file).resolve()) if params_file is not None else "",
        "overrides": _absolute_path_overrides(stages, overrides),
        "sweep": str(Path(sweep).resolve()) if sweep is not None else "",
        "only": selected,
        "verbose": bool(verbose),
    }
    where = _run_folder(runs_root, main_run) if main_run else runs_root
    if not dry_run:
        _check_writable(where)
    # Every parameter is checked here, before Snakemake starts anything.
    try:
        plan = plan_from_config(config, write=False)
    except PermissionError as exc:
        raise DataError(f"{exc.filename}: cannot be written ({exc.strerror}); make the run folder "
                        "writable or run into another folder with --run-dir") from None
    _check_settings_together(plan, params_file=params_file)
    # ... and every job's inputs (a notebook that does not parse, a missing input
    # file), so that the error is ours, in one line, not Snakemake's wrapper of it
    for run, stage in plan.jobs:
        plan.inputs(run, stage)
    if selected and main_run:
        first = _stages_to_run_first(plan, selected, main_run)
        if first:
            raise ParameterError(
                f"--only {' '.join(selected)}: stage(s) {', '.join(first)} must run first "
                f"(no finished results of them in {where}); add them to --only, or leave "
                "--only out to run everything that is stale")
    lock_names = [] if dry_run else ([main_run] if main_run else []) + sorted(plan.sweeps)
    runs_root.mkdir(parents=True, exist_ok=True)
    with hold_run_locks(runs_root, lock_names, where=where):
        if not dry_run:  # results set aside by stage jobs killed outright go back first
            for run in {run for run, _ in plan.jobs}:
                restore_interrupted(_run_folder(runs_root, run))
        try:
            updated, would_run = _snakemake(
                project_, runs_root, config, plan, selected=selected, force=force,
                dry_run=dry_run, jobs=jobs, executor=executor, executor_args=executor_args,
                quiet=quiet, verbose=verbose, lock_names=lock_names)
        finally:
            # also after a failure: the book never shows a stage the run has not finished
            if main_run and book and not dry_run:
                _sync_book(_run_folder(runs_root, main_run), stages, project_.book_executed)
    finished = sorted({(str(Path(f).parent.parent), Path(f).parent.name)
                       for f in updated if Path(f).name == STAGE_RECORD and not dry_run})
    copied = [job for job in finished if plan.donor(*job) is not None]
    executed = [job for job in finished if job not in copied]
    outcome = RunOutcome(executed=executed, copied=copied, would_run=would_run,
                         runs_root=runs_root,
                         run_dir=_run_folder(runs_root, main_run) if main_run else None)
    shown = where if main_run else runs_root / next(iter(plan.sweeps))
    if dry_run:
        _say(f"crowdnb run: dry run: {len(would_run)} stage job(s) would run in {shown}, "
             "nothing ran" if would_run else
             f"crowdnb run: dry run: nothing to do, {shown} is up to date")
    else:
        also = f", {len(copied)} copied from identical jobs" if copied else ""
        _say(f"crowdnb run: {len(executed)} stage job(s) executed{also}, the rest was up to "
             f"date; outputs in {shown}")
    return outcome


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Snakemake's reasons for running a job, in the study's words (by their first words).
_REASONS = (
    ("Missing output files", "no results yet"),
    ("Incomplete output files", "its last execution did not finish"),
    ("Forced execution", "forced"),
    ("Params have changed", "parameters changed"),
    ("Code has changed", "the workflow's command changed"),
    ("Set of input files has changed", "what it reads changed"),
    ("Input files updated by another job", "a stage it reads runs first"),
    ("Software environment", "the software environment changed"),
)


def _why(reason: str) -> str:
    """Snakemake's reason for a job (``"Params have changed ...; Missing output files: ..."``), short."""
    said = []
    for part in (p.strip() for p in str(reason).split(";")):
        if not part:
            continue
        text = next((words for start, words in _REASONS if part.startswith(start)), None)
        if text is None and part.startswith("Updated input files"):
            files = part.partition(":")[2]
            text = ", ".join(dict.fromkeys(
                "library versions changed" if "environment.json" in f else
                "its notebook, code or input files changed" if "/sources/" in f or
                f.strip().startswith(".crowdnb/sources") else "the results it reads changed"
                for f in files.split(","))) or "its inputs changed"
        said.append(text or part)
    if "no results yet" in said:  # the rest goes without saying
        return "no results yet"
    return "; ".join(dict.fromkeys(said)) or "stale"


class _StageLines(logging.Handler):
    """Snakemake's log events turned into one line per stage job (and the failures noted)."""

    def __init__(self, plan: Plan, *, dry_run: bool, show: bool):
        super().__init__(level=logging.DEBUG)
        self.plan, self.dry_run, self.show = plan, dry_run, show
        self.jobs: dict[int, tuple[str, str, str, float]] = {}  # jobid -> (run, stage, why, t0)
        self.failed: list[tuple[str, str]] = []
        self.finished: set[int] = set()
        self.would_run: list[tuple[str, str]] = []
        self.transient = show and not dry_run and sys.stderr.isatty()

    def _label(self, run: str, stage: str) -> str:
        return stage if run in (self.plan.main_run, None) else f"{run}: {stage}"

    def _print(self, line: str) -> None:
        if self.show:
            _say(("\r\033[K" if self.transient else "") + line)

    def emit(self, record: logging.LogRecord) -> None:
        event = str(getattr(record, "event", "") or "")
        try:
            if event == "job_info":
                rule = str(getattr(record, "rule_name", ""))
                wildcards = dict(getattr(record, "wildcards", None) or {})
                kind, _, stage = rule.partition("_")
                if kind in ("stage", "copy"):
                    run = (wildcards.get("run") or "").rstrip("/") or SELF_RUN
                elif rule == "aggregate_sweep":
                    run, stage = wildcards.get("sweep", ""), "results.csv"
                else:
                    return
                why = _why(getattr(record, "reason", ""))
                if stage != "results.csv" and self._failed_before(run, stage):
                    why = "its last execution failed"
                if kind == "copy":
                    donor = self.plan.donor(run, stage)
                    where = ("the main run" if donor.run in (self.plan.main_run, SELF_RUN)
                             else donor.run)
                    why = f"{why}; the same job as {where}'s: its results copied"
                self.jobs[int(record.jobid)] = (run, stage, why, time.monotonic())
                if self.dry_run:
                    self.would_run.append((run, stage))
                    self._print(f"crowdnb run: would run {self._label(run, stage)} ({why})")
                elif self.transient:
                    sys.stderr.write(f"\r\033[Kcrowdnb run: running {self._label(run, stage)} "
                                     f"({why}) ...")
                    sys.stderr.flush()
            elif event == "job_finished" and not self.dry_run:
                self.finished.add(int(record.job_id))
                run, stage, why, t0 = self.jobs.get(int(record.job_id), (None, None, "", 0.0))
                if stage is not None:
                    self._print(f"crowdnb run: {self._label(run, stage)} done in "
                                f"{time.monotonic() - t0:.1f} s ({why})")
            elif event == "job_error":
                run, stage, *_ = self.jobs.get(int(record.jobid), (None, None))
                if stage is not None:
                    self.failed.append((run, stage))
        except Exception:  # a log line must never stop the run
            pass

    def _failed_before(self, run: str, stage: str) -> bool:
        path = self.plan.runs_root / self.plan.sources_file(self.plan.job(run, stage))
        with contextlib.suppress(OSError, ValueError):
            return FAILED_KEY in json.loads(path.read_text(encoding="utf-8"))
        return False

    def unfinished(self) -> list[tuple[str, str]]:
        """The stage jobs that started and did not finish (failed, interrupted)."""
        return [(run, stage) for jobid, (run, stage, _, _) in self.jobs.items()
                if jobid not in self.finished and stage != "results.csv"]


def _failure_message(runs_root: Path, plan: Plan, failed: Sequence[tuple[str, str]]) -> str:
    """One line for the failed jobs: the first one's own message, and the others named."""
    run, stage = failed[0]
    path = error_file(_run_folder(runs_root, run), stage)
    text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if not text:
        text = (f"stage {stage} stopped without a message of its own; Snakemake's report is in "
                f"{runs_root / '.snakemake' / 'log'} (or rerun with --verbose)")
    if run != plan.main_run:
        text = f"{run}: {text}"
    if len(failed) > 1:
        text += f" (also failed: {', '.join(s if r == plan.main_run else f'{r}: {s}' for r, s in failed[1:])})"
    return text


def _snakemake(project: Project, runs_root: Path, config: dict, plan, *, selected, force,
               dry_run, jobs, executor, executor_args, quiet, verbose, lock_names):
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import DAGSettings

    local = executor == "local"
    plugin_settings = None
    if not local:
        _, plugin_settings = _executor_settings(executor, executor_args)
    elif executor_args:
        raise ParameterError(f"options {' '.join(executor_args)} need --executor")
    cores = jobs or usable_cores()
    quietness = {Quietness.HOST}
    rules = {plan.rule_name(plan.stage(name)) for name in selected}
    dag_settings = DAGSettings(
        targets=frozenset({"all"}),
        force_incomplete=True,  # rerun what an interrupted run left unfinished
        forceall=force and not selected,
        forcerun=frozenset(rules) if force else frozenset(),
        allowed_rules=frozenset(rules | {"all"}) if selected else frozenset(),
    )
    updated: list[str] = []
    interrupted = []
    previous = signal.getsignal(signal.SIGINT)
    lines = _StageLines(plan, dry_run=dry_run, show=not quiet and not verbose)

    def on_interrupt(signum, frame):  # Snakemake turns Ctrl-C into a failed job: remember it
        interrupted.append(signum)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        _execute(project, runs_root, config, plan, dag_settings, updated, interrupted, lines,
                 dry_run=dry_run, local=local, cores=cores, quietness=quietness,
                 executor=executor, plugin_settings=plugin_settings, lock_names=lock_names,
                 verbose=verbose)
        return updated, lines.would_run
    finally:
        signal.signal(signal.SIGINT, previous)
        if not dry_run:
            for run, stage in lines.unfinished():
                plan.mark_failed(run, stage)


def _execute(project, runs_root, config, plan, dag_settings, updated, interrupted, lines, *,
             dry_run, local, cores, quietness, executor, plugin_settings, lock_names, verbose):
    from snakemake.api import SnakemakeApi
    from snakemake.exceptions import LockException
    from snakemake.logging import logger
    from snakemake.scheduling.greedy import SchedulerSettings as GreedySchedulerSettings
    from snakemake.settings.types import (ConfigSettings, ExecutionSettings, OutputSettings,
                                          ResourceSettings, SchedulingSettings)

    for attempt in (1, 2):
        try:
            with SnakemakeApi(OutputSettings(quiet=quietness, dryrun=dry_run,
                                             show_failed_logs=True)) as api:
                workflow = api.workflow(
                    resource_settings=ResourceSettings(cores=cores, nodes=None if local else cores),
                    config_settings=ConfigSettings(config=config),
                    snakefile=project.snakefile, workdir=runs_root)
                # Snakemake's report goes to its log file (.snakemake/log/); to the
                # terminal only with --verbose. Our lines come from its events.
                if not verbose:
                    for handler in list(logger.handlers):
                        if not isinstance(handler, logging.FileHandler):
                            logger.removeHandler(handler)
                logger.addHandler(lines)
                dag = workflow.dag(dag_settings)
                dag.execute_workflow(
                    executor=executor,
                    pseudo_executor="dryrun" if dry_run else None,
                    execution_settings=ExecutionSettings(),
                    # the study's DAG is small: the greedy scheduler needs no ILP solver
                    scheduling_settings=SchedulingSettings(scheduler="greedy"),
                    scheduler_settings=GreedySchedulerSettings(),
                    executor_settings=plugin_settings,
                    updated_files=updated,
                )
            if lines.failed:  # a failed job that Snakemake did not raise for
                raise DataError(_failure_message(runs_root, plan, lines.failed))
            return updated
        except LockException:
            if attempt == 1 and _remove_stale_snakemake_locks(runs_root, lock_names):
                continue
            raise DataError(f"{runs_root}: Snakemake's lock is held by another process writing "
                            "the same files (a bare `snakemake` in this folder?); when none is "
                            "running, remove the lock with `crowdnb run --unlock`") from None
        except CrowdnbError:
            raise
        except Exception as exc:  # Snakemake's own errors: one line
            if interrupted:
                raise KeyboardInterrupt from None
            if lines.failed:
                raise DataError(_failure_message(runs_root, plan, lines.failed)) from None
            text = " ".join(str(exc).split()) or "(no message)"
            raise DataError(f"the workflow stopped before running its stages: "
                            f"{type(exc).__name__}: {text} (rerun with --verbose for Snakemake's "
                            "report)") from None
        finally:
            logger.removeHandler(lines)
    return updated


def unlock(project: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None) -> None:
    """Remove Snakemake's locks in the run's working directory (after a run was killed)."""
    project_ = find_project(project)
    runs_root, _ = _locate(project_, run_dir, None)
    shutil.rmtree(runs_root / ".snakemake" / "locks", ignore_errors=True)


# ---------------------------------------------------------------------------
# Command line


def _cli(args: argparse.Namespace, extra: Sequence[str]) -> int:
    without_iri_grammar()
    if args.unlock:
        unlock(args.project, args.run_dir)
        _say("crowdnb run: Snakemake's locks removed")
        return 0
    if args.publish and args.no_book:
        raise ParameterError("--publish and --no-book contradict each other; give one")
    run_study(params_file=args.params, overrides=args.p or (), only=args.only,
              sweep=args.sweep, run_dir=args.run_dir, project=args.project,
              book=True if args.publish else False if args.no_book else None,
              force=args.force, dry_run=args.dry_run, jobs=args.jobs,
              executor=args.executor, executor_args=extra, quiet=args.quiet,
              verbose=args.verbose)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to the ``crowdnb`` command line."""
    parser = subparsers.add_parser(
        "run",
        help="run the study's stale stages (Snakemake) into a run directory",
        description=(
            "Execute the study's notebooks with papermill into runs/<run>/, through Snakemake: "
            "a stage runs when its notebook, the values of its parameters, its inputs (the "
            "stages it reads, the crowdnb code it imports, the installed libraries, files it "
            "reads from outside the run) changed or one of its outputs is missing. An "
            "interrupted run resumes where it stopped; a stage that fails or is interrupted "
            "leaves its last good results in place. A run of the project's runs/ then copies "
            "its executed notebooks to the book (book/executed/); a run with --run-dir keeps "
            "everything it writes in that folder and leaves the book alone unless --publish."),
        epilog=("examples:\n"
                "  crowdnb run --params params/default.yaml -p epochs=3\n"
                "  crowdnb run --params params/default.yaml --dry-run      # what would run, why\n"
                "  crowdnb run --params params/smoke.yaml --run-dir /tmp/try   # the book unchanged\n"
                "  crowdnb run --sweep params/sweeps/seeds.yaml --jobs 2\n"
                "  crowdnb run --params params/full.yaml --executor slurm --jobs 50 "
                "--slurm-partition gpu"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", metavar="FILE", default=None,
                        help="parameter file (YAML), e.g. params/default.yaml")
    parser.add_argument("-p", action="append", metavar="NAME=VALUE",
                        help="set a parameter in every notebook that declares it "
                             "(or STAGE.NAME=VALUE for one notebook); repeatable")
    parser.add_argument("--only", nargs="+", metavar="STAGE", default=None,
                        help="run only these stages (names or prefixes such as 04); "
                             "their upstream stages must have run")
    parser.add_argument("--sweep", metavar="FILE", default=None,
                        help="a sweep file: one run per point under runs/<sweep>/, and their "
                             "table runs/<sweep>/results.csv")
    parser.add_argument("--force", action="store_true",
                        help="execute the selected stages even when they are up to date")
    parser.add_argument("--dry-run", "-n", action="store_true",
                        help="say what would run, and why; run nothing")
    parser.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                        help="jobs at a time: local cores to use (default: all this process may "
                             "use), or cluster jobs submitted at a time with --executor")
    parser.add_argument("--executor", default="local", metavar="NAME",
                        help="a Snakemake executor plugin, e.g. slurm (its own --NAME-... "
                             "options follow); default: run here")
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="the run's folder (default: runs/<run> from the parameter file); "
                             "outside runs/ it holds everything the run writes (its sweeps, "
                             "cache and Snakemake's state too)")
    parser.add_argument("--project", metavar="DIR", default=None,
                        help="the project folder (default: found from the current directory)")
    parser.add_argument("--publish", action="store_true",
                        help="copy this run's executed notebooks to the book (book/executed/) "
                             "even with --run-dir; without --run-dir that is the default")
    parser.add_argument("--no-book", action="store_true",
                        help="leave the book's folder of executed notebooks alone")
    parser.add_argument("--quiet", action="store_true", help="print only errors and the result")
    parser.add_argument("--verbose", action="store_true",
                        help="also print Snakemake's own report (its job listing and logs)")
    parser.add_argument("--unlock", action="store_true",
                        help="remove Snakemake's locks left by a killed run, then stop")
    parser.set_defaults(func=_cli, accepts_extra=True)
    return parser
