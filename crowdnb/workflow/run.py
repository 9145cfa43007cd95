"""``crowdnb run``: resolve the parameter files, and let Snakemake run what is stale.

The command is a thin layer over Snakemake's API: it finds the project from
where you stand, names the run (``runs/<run>/``, from the parameter file's
``run``), checks the parameters before anything starts, takes the run's lock,
and hands the project's ``Snakefile`` to Snakemake with the parameter file
and the overrides as config. After a successful run it copies the executed
notebooks to the book's folder (``book/executed/``).

Locks: Snakemake locks the outputs it is writing; in addition each run (and
each sweep) has a lock file held by the ``crowdnb run`` process itself, which
the operating system releases when that process ends, however it ends. A
second run on the same run directory is refused with the first one's process
id; a lock left by a run that was killed is recognised as such and removed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import CrowdnbError, DataError, ParameterError
from ..files import atomic_path
from .plan import NOTEBOOK_FOLDER, STAGE_RECORD, Plan, plan_from_config
from .project import Project, check_run_name, find_project
from .stages import discover_stages, load_param_file, match_stage, parse_override

__all__ = ["run_study", "RunOutcome", "register_cli"]

_LOCK_FOLDER = ".crowdnb/locks"


class RunOutcome(dict):
    """What ``run_study`` did: ``{"executed": [(run, stage), ...], "up_to_date": n, ...}``."""


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


@contextlib.contextmanager
def _hold_locks(runs_root: Path, names: Sequence[str]) -> Iterator[None]:
    """Hold one lock file per run or sweep for the life of this process."""
    folder = runs_root / _LOCK_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    handles = []
    try:
        for name in names:
            path = folder / f"{name}.lock"
            fh = open(path, "a+", encoding="utf-8")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise DataError(
                    f"{runs_root / name} is being written by another `crowdnb run` ({holder}); "
                    "wait for it to finish, or stop it, and run again") from None
            fh.seek(0)
            fh.truncate()
            started = _dt.datetime.now().isoformat(timespec="seconds")
            fh.write(f"pid {os.getpid()}, started {started}\n")
            fh.flush()
            handles.append(fh)
        yield
    finally:
        for fh in handles:
            fh.close()


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
        mine = [ln for ln in lines if any(ln.startswith(f"{n}/") for n in names)]
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
    from ..dataset import check_settings

    names = set(PreprocessConfig().flat())
    for (run, stage), job in plan.jobs.items():
        values = {k: v for k, v in job.values.items() if k in names}
        if not values:
            continue
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
    book: bool = True,
    force: bool = False,
    dry_run: bool = False,
    jobs: int | None = None,
    executor: str = "local",
    executor_args: Sequence[str] = (),
    quiet: bool = False,
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
        the parameter file (``default`` when it has none).
    project : path-like or None
        The project folder; None: found from the current directory upwards.
    book : bool
        Copy the run's executed notebooks to the book's folder afterwards.
    force : bool
        Execute the selected stages even when they are up to date.
    dry_run : bool
        Say what would run and why; run nothing.
    jobs : int >= 1 or None
        Jobs at a time: local CPU cores to use (None: all of them), or, with
        a cluster executor, jobs submitted at a time.
    executor, executor_args : str, sequence of str
        A Snakemake executor plugin (``slurm``, ...) and its options
        (``--slurm-...``); ``local`` runs here.
    quiet : bool
        Print only errors and the closing line.

    Returns
    -------
    RunOutcome
        ``executed`` (the (run, stage) jobs that ran), ``run_dir``, ``runs_root``.

    Raises
    ------
    ParameterError, DataError
        For bad parameters, notebooks or sweeps (before anything runs), a run
        locked by another process, or a stage that stopped (the message names
        it and the executed notebook with its traceback).
    """
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ParameterError(f"jobs (--jobs) must be a whole number of at least 1, got {jobs!r}")
    project_ = find_project(project)
    stages = discover_stages(project_.notebooks)
    file_params = load_param_file(params_file) if params_file is not None else {}
    main_run: str | None
    if run_dir is not None:
        run_path = Path(run_dir).expanduser().resolve()
        runs_root, main_run = run_path.parent, check_run_name(run_path.name, where="--run-dir")
    elif params_file is None and sweep is not None:
        runs_root, main_run = project_.runs, None
    else:
        runs_root = project_.runs
        main_run = check_run_name(file_params.get("run", "default"),
                                  where=f"{params_file}: run" if params_file else "run")
    selected = [match_stage(stages, name, where="--only").name for name in (only or [])]
    config = {
        "project": str(project_.root),
        "runs_root": str(runs_root),
        "run": main_run,
        "params_file": str(Path(params_file).resolve()) if params_file is not None else "",
        "overrides": _absolute_path_overrides(stages, overrides),
        "sweep": str(Path(sweep).resolve()) if sweep is not None else "",
        "only": selected,
    }
    # Every parameter is checked here, before Snakemake starts anything.
    plan = plan_from_config(config)
    _check_settings_together(plan, params_file=params_file)
    # ... and every job's inputs (a notebook that does not parse, a missing input
    # file), so that the error is ours, in one line, not Snakemake's wrapper of it
    for run, stage in plan.jobs:
        plan.inputs(run, stage)
    lock_names = ([main_run] if main_run else []) + sorted(plan.sweeps)
    if dry_run:
        lock_names = []
    runs_root.mkdir(parents=True, exist_ok=True)
    with _hold_locks(runs_root, lock_names):
        try:
            updated = _snakemake(project_, runs_root, config, plan, selected=selected,
                                 force=force, dry_run=dry_run, jobs=jobs, executor=executor,
                                 executor_args=executor_args, quiet=quiet, lock_names=lock_names)
        finally:
            # also after a failure: the book never shows a stage the run has not finished
            if main_run and book and not dry_run:
                _sync_book(runs_root / main_run, stages, project_.book_executed)
    executed = sorted({(str(Path(f).parent.parent), Path(f).parent.name)
                       for f in updated if Path(f).name == STAGE_RECORD})
    outcome = RunOutcome(executed=executed, runs_root=runs_root,
                         run_dir=runs_root / main_run if main_run else None)
    if not dry_run:
        where = runs_root / main_run if main_run else runs_root / next(iter(plan.sweeps))
        _say(f"crowdnb run: {len(executed)} stage job(s) executed, the rest was up to date; "
             f"outputs in {where}")
    return outcome


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _snakemake(project: Project, runs_root: Path, config: dict, plan, *, selected, force,
               dry_run, jobs, executor, executor_args, quiet, lock_names) -> list[str]:
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import DAGSettings

    local = executor == "local"
    plugin_settings = None
    if not local:
        _, plugin_settings = _executor_settings(executor, executor_args)
    elif executor_args:
        raise ParameterError(f"options {' '.join(executor_args)} need --executor")
    cores = jobs or os.cpu_count() or 1
    quietness = {Quietness.RULES, Quietness.PROGRESS, Quietness.HOST, Quietness.REASON} \
        if quiet else {Quietness.HOST}
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

    def on_interrupt(signum, frame):  # Snakemake turns Ctrl-C into a failed job: remember it
        interrupted.append(signum)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        return _execute(project, runs_root, config, plan, dag_settings, updated, interrupted,
                        dry_run=dry_run, local=local, cores=cores, quietness=quietness,
                        executor=executor, plugin_settings=plugin_settings, lock_names=lock_names)
    finally:
        signal.signal(signal.SIGINT, previous)


def _execute(project, runs_root, config, plan, dag_settings, updated, interrupted, *, dry_run,
             local, cores, quietness, executor, plugin_settings, lock_names) -> list[str]:
    from snakemake.api import SnakemakeApi
    from snakemake.exceptions import LockException
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
            return updated
        except LockException:
            if attempt == 1 and _remove_stale_snakemake_locks(runs_root, lock_names):
                continue
            raise DataError(f"{runs_root}: Snakemake's lock is held by another process writing "
                            "the same files (a bare `snakemake` in this folder?); when none is "
                            "running, remove the lock with `crowdnb run --unlock`") from None
        except CrowdnbError:
            raise
        except Exception as exc:  # Snakemake's own errors: one line, its message
            if interrupted:
                raise KeyboardInterrupt from None
            message = str(exc).strip().splitlines()
            raise DataError(f"the workflow stopped: {type(exc).__name__}: "
                            f"{message[0] if message else ''} (the stage's error is printed "
                            "above; its executed notebook is in the run's notebooks/ folder)"
                            ) from None
    return updated


def unlock(project: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None) -> None:
    """Remove Snakemake's locks in the runs folder (after a run was killed)."""
    project_ = find_project(project)
    runs_root = Path(run_dir).resolve().parent if run_dir else project_.runs
    shutil.rmtree(runs_root / ".snakemake" / "locks", ignore_errors=True)


# ---------------------------------------------------------------------------
# Command line


def _cli(args: argparse.Namespace, extra: Sequence[str]) -> int:
    if args.unlock:
        unlock(args.project, args.run_dir)
        _say("crowdnb run: Snakemake's locks removed")
        return 0
    run_study(params_file=args.params, overrides=args.p or (), only=args.only,
              sweep=args.sweep, run_dir=args.run_dir, project=args.project,
              book=not args.no_book, force=args.force, dry_run=args.dry_run, jobs=args.jobs,
              executor=args.executor, executor_args=extra, quiet=args.quiet)
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
            "interrupted run resumes where it stopped."),
        epilog=("examples:\n"
                "  crowdnb run --params params/default.yaml -p epochs=3\n"
                "  crowdnb run --params params/default.yaml --dry-run      # what would run, why\n"
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
                        help="jobs at a time: local cores to use (default: all), or cluster "
                             "jobs submitted at a time with --executor")
    parser.add_argument("--executor", default="local", metavar="NAME",
                        help="a Snakemake executor plugin, e.g. slurm (its own --NAME-... "
                             "options follow); default: run here")
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="the run's folder (default: runs/<run> from the parameter file)")
    parser.add_argument("--project", metavar="DIR", default=None,
                        help="the project folder (default: found from the current directory)")
    parser.add_argument("--no-book", action="store_true",
                        help="leave the book's folder of executed notebooks alone")
    parser.add_argument("--quiet", action="store_true", help="print only errors and the result")
    parser.add_argument("--unlock", action="store_true",
                        help="remove Snakemake's locks left by a killed run, then stop")
    parser.set_defaults(func=_cli, accepts_extra=True)
    return parser
