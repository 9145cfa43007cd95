"""What one job of the workflow does: execute a stage's notebook, or gather a sweep.

The Snakefile's rules call this module (``python -m crowdnb.workflow.execute``)
in the runs folder. ``stage`` sets the stage's last results aside
(``<run>/.crowdnb/previous/<stage>/``), executes its notebook with papermill
into a fresh ``<run>/<stage>/`` and ``<run>/notebooks/<stage>.ipynb``, checks
that the notebook wrote what it declares, writes the stage's record
(``_stage.json``: the values it ran with, when, how long), and only then
discards the results set aside. A notebook that stops, a kernel that dies, an
interruption: what the stage had half-written is removed and its last results
are put back; a notebook that stops keeps its traceback in
``<stage>.failed.ipynb`` and the job fails with one line saying so (also in
``<run>/.crowdnb/errors/<stage>.txt``, for ``crowdnb run`` to show). A job
killed outright leaves its results set aside, and the next job of the stage,
or the next ``crowdnb run``, puts them back first (:func:`restore_interrupted`).

The stage writes in place, not in a draft folder renamed afterwards, because
what it writes may name its own folder (a checkpoint's ``out_dir``).
``copy`` gives a run the results another run of the invocation computed with
the same values (:func:`copy_stage`); ``aggregate`` writes a sweep's table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import CrowdnbError, DataError
from ..files import atomic_write, read_json, write_json, write_table
from .plan import (FAILED_KEY, NOTEBOOK_FOLDER, SOURCES_FOLDER, STAGE_RECORD, SUMMARY_FILE,
                   load_sweep)
from .locks import hold_job_lock
from .project import Project
from .stages import RUNNER_PARAMETERS, discover_stages, without_iri_grammar

__all__ = ["execute_stage", "copy_stage", "aggregate_sweep", "flatten_summary", "restore_interrupted",
           "error_file"]

KERNEL_NAME = "python3"
CACHE_FOLDER = ".cache"
PREVIOUS_FOLDER = ".crowdnb/previous"
ERRORS_FOLDER = ".crowdnb/errors"
_SPECIAL_WEIGHTS = ("imagenet", "none", "scratch")


def _kernel_name() -> str:
    """A kernel that runs this interpreter (the environment with crowdnb)."""
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


def _kernel_manager(log, lock_fd: int | None = None):
    """A kernel manager whose kernels write their stderr to ``log``, not the terminal.

    A kernel's own messages (ZMQ notices, the traceback it prints when it is
    shut down mid-cell by Ctrl-C) are not the user's business; the notebook's
    errors still reach the executed notebook and the one-line message. The
    kernel inherits ``lock_fd``, the run's job lock: a kernel that outlives
    its job still keeps the run locked.
    """
    from jupyter_client.manager import AsyncKernelManager

    class StageKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.setdefault("stderr", log)
            if lock_fd is not None:
                kw.setdefault("pass_fds", (lock_fd,))
            return await super().start_kernel(**kw)

    return StageKernelManager


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def error_file(run_dir: str | os.PathLike, stage: str) -> Path:
    """Where a stage job that failed leaves its one-line message."""
    return Path(run_dir) / ERRORS_FOLDER / f"{stage}.txt"


def kernel_log_file(run_dir: str | os.PathLike, stage: str) -> Path:
    """What a stage's kernel printed (and, with ``--quiet``, its job), beside its executed notebook."""
    return Path(run_dir) / NOTEBOOK_FOLDER / f"{stage}.kernel.log"


def _start_log(path: Path, *, stderr: bool) -> None:
    # The log holds this job's lines only; with stderr=True the job's own
    # standard error goes there too (file descriptor 2, for the libraries'
    # loggers and what Python prints at exit), so that a quiet job prints
    # nothing: when Ctrl-C stops a kernel mid-cell, nbclient logs "Kernel died
    # while waiting for execute reply" and asyncio reports the task it left.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as log:
        if stderr:
            os.dup2(log.fileno(), 2)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _set_aside(run_dir: Path, stage: str) -> None:
    # The stage's folder holds only what its last execution wrote: a new one
    # starts empty, the last results wait beside it until it has finished.
    kept = run_dir / PREVIOUS_FOLDER / stage
    _remove(kept)
    kept.mkdir(parents=True)
    for current, name in ((run_dir / stage, "folder"),
                          (run_dir / NOTEBOOK_FOLDER / f"{stage}.ipynb", "notebook.ipynb")):
        if current.exists():
            os.replace(current, kept / name)


def _put_back(run_dir: Path, stage: str) -> bool:
    """Replace what an unfinished execution wrote by the results it set aside."""
    kept = run_dir / PREVIOUS_FOLDER / stage
    if not kept.is_dir():
        return False
    for current, name in ((run_dir / stage, "folder"),
                          (run_dir / NOTEBOOK_FOLDER / f"{stage}.ipynb", "notebook.ipynb")):
        _remove(current)
        if (kept / name).exists():
            current.parent.mkdir(parents=True, exist_ok=True)
            os.replace(kept / name, current)
    shutil.rmtree(kept)
    return True


def restore_interrupted(run_dir: str | os.PathLike) -> list[str]:
    """Put back the results that stage jobs killed outright had set aside; return their stages.

    Call it only while no job of the run is alive (under the run's lock).
    """
    folder = Path(run_dir) / PREVIOUS_FOLDER
    stages = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    for stage in stages:
        _put_back(Path(run_dir), stage)
    return stages


def _clear_failed(manifest: Path) -> None:
    # The note that the last execution failed (plan.Plan.mark_failed) goes when
    # a new one starts, before its outputs: Snakemake records the manifest
    # without it when the job finishes.
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if data.pop(FAILED_KEY, None) is not None:
        with atomic_write(manifest, encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _for_kernel(value: Any, project: Project) -> Any:
    """A path parameter as the kernel sees it: relative to its working directory (notebooks/).

    The plan gives a file of the project relative to the project, any other
    absolute; the pages and the record show no machine's folders.
    """
    if not isinstance(value, str) or not value.strip() or value in _SPECIAL_WEIGHTS:
        return value
    path = Path(os.path.expanduser(value))
    return os.path.relpath(path if path.is_absolute() else project.root / path, project.notebooks)


def execute_stage(
    project: Project,
    stage_name: str,
    run_dir: str | os.PathLike,
    *,
    values: Mapping[str, Any],
    threads: int = 1,
    progress: bool = False,
    lock_fd: int | None = None,
) -> float:
    """Execute one stage's notebook into ``run_dir``; return its duration in seconds.

    Parameters
    ----------
    project : Project
    stage_name : str
    run_dir : path-like
        The run's folder (absolute after resolution).
    values : mapping
        Every parameter's value. Those that differ from the notebook's
        defaults are passed to papermill (its injected cell shows them) and
        recorded as set.
    threads : int
        CPU threads the stage may use (``OMP_NUM_THREADS`` of its kernel).
    progress : bool
        papermill's progress bar over cells.
    lock_fd : int or None
        The run's job lock (:func:`crowdnb.workflow.locks.hold_job_lock`),
        passed on to the kernel.

    Raises
    ------
    DataError
        When the notebook stops with an error (the message gives it, the
        failed notebook's path and the kernel's log) or does not write its
        declared outputs. The stage's last results are then back in place.
    """
    stage = next((s for s in discover_stages(project.notebooks) if s.name == stage_name), None)
    if stage is None:
        raise DataError(f"{project.notebooks}: no stage {stage_name}")
    run_dir = Path(run_dir).resolve()
    folder = run_dir / stage.name
    executed = run_dir / NOTEBOOK_FOLDER / f"{stage.name}.ipynb"
    failed = executed.with_name(f"{stage.name}.failed.ipynb")
    with _new_results(run_dir, stage.name):
        return _execute(project, stage, run_dir, folder, executed, failed, values=values,
                        threads=threads, progress=progress, lock_fd=lock_fd)


@contextlib.contextmanager
def _new_results(run_dir: Path, stage: str):
    """Set a stage's last results aside while new ones are written; put them back on failure.

    What a killed job of the stage left set aside goes back first, and the note
    and message of a failed execution go.
    """
    _put_back(run_dir, stage)
    _clear_failed(run_dir / SOURCES_FOLDER / f"{stage}.json")
    error_file(run_dir, stage).unlink(missing_ok=True)
    _set_aside(run_dir, stage)
    try:
        yield
    except BaseException:
        _put_back(run_dir, stage)
        raise
    shutil.rmtree(run_dir / PREVIOUS_FOLDER / stage)


def _execute(project: Project, stage, run_dir: Path, folder: Path, executed: Path, failed: Path,
             *, values, threads, progress, lock_fd) -> float:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    folder.mkdir(parents=True)
    executed.parent.mkdir(parents=True, exist_ok=True)
    failed.unlink(missing_ok=True)
    defaults = stage.defaults()
    changed = sorted(name for name, value in values.items()
                     if name not in RUNNER_PARAMETERS and defaults.get(name) != value)
    # Paths the plan made absolute are given relative to the kernel's working
    # directory (notebooks/): the pages and the record show no machine's folders.
    values = {name: _for_kernel(value, project) if name in (*stage.inputs, *stage.sweeps)
              else value for name, value in values.items()}
    parameters = {name: values[name] for name in changed}
    # Relative to the kernel's working directory (notebooks/): the injected-parameters
    # cell is shown on the book's pages, and this machine's paths are not the reader's.
    parameters["run_dir"] = os.path.relpath(run_dir, project.notebooks)
    if "cache_dir" in stage.parameters:
        # shared by every run of this folder of runs (the workflow's working directory)
        parameters["cache_dir"] = os.path.relpath(Path.cwd().resolve() / CACHE_FOLDER,
                                                  project.notebooks)
    os.environ.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    # tqdm.auto, imported by libraries inside the kernel, warns with this machine's
    # site-packages path when ipywidgets is absent; the pages show no progress bars.
    os.environ["PYTHONWARNINGS"] = ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:IProgress not found"]))
    started = _utc_now()
    t0 = time.perf_counter()
    kernel_log = kernel_log_file(run_dir, stage.name)
    try:
        with kernel_log.open("ab") as log:  # begun by the job (_start_log)
            papermill.execute_notebook(str(stage.path), str(executed), parameters=parameters,
                                       kernel_name=_kernel_name(), progress_bar=progress,
                                       cwd=str(project.notebooks),
                                       kernel_manager_class=_kernel_manager(log, lock_fd))
    except PapermillExecutionError as exc:
        if executed.is_file():
            os.replace(executed, failed)
        evalue = " ".join(str(exc.evalue).split())
        raise DataError(f"stage {stage.name} stopped: {exc.ename}: {evalue} (the executed "
                        f"notebook, with the traceback, is {failed}; the kernel's log is "
                        f"{kernel_log})") from None
    except KeyboardInterrupt:
        executed.unlink(missing_ok=True)
        raise
    except RuntimeError as exc:  # the kernel died (nbclient's DeadKernelError) or did not start
        if executed.is_file():
            os.replace(executed, failed)
        raise DataError(f"stage {stage.name} stopped: its kernel failed ({exc}); what the kernel "
                        f"printed is in {kernel_log}") from None
    duration = time.perf_counter() - t0
    missing = [rel for rel in (SUMMARY_FILE, *stage.outputs) if not (folder / rel).is_file()]
    if missing:
        os.replace(executed, failed)
        raise DataError(f"stage {stage.name} finished without writing {', '.join(missing)} in "
                        f"{folder} (its notebook declares them); see {failed}")
    write_json(folder / STAGE_RECORD, {
        "stage": stage.name,
        "run": run_dir.name,
        "notebook": str(stage.path),
        "parameters": dict(values),
        "set": changed,
        "started_utc": started,
        "finished_utc": _utc_now(),
        "duration_s": round(duration, 3),
        "threads": int(threads),
        "python": sys.executable,
    })
    return duration


def copy_stage(stage_name: str, run_dir: str | os.PathLike, donor_dir: str | os.PathLike) -> Path:
    """Give ``run_dir`` the results of ``stage_name`` that ``donor_dir`` computed; return its folder.

    The plan copies instead of executing when both jobs run the stage with the
    same values on the same upstream results
    (:meth:`crowdnb.workflow.plan.Plan.donor`). The stage's summary, its
    executed notebook and its record are copied (the record notes where from);
    every other file is a hard link (a copy where the file system has none),
    so the copy costs next to no space. Like an execution, it sets the last
    results aside first and puts them back if it does not finish.
    """
    donor_name = Path(donor_dir).as_posix()  # as the plan names it: relative to the runs folder
    run_dir, donor_dir = Path(run_dir).resolve(), Path(donor_dir).resolve()
    source = donor_dir / stage_name
    record = read_json(source / STAGE_RECORD)
    folder = run_dir / stage_name
    with _new_results(run_dir, stage_name):
        _link_tree(source, folder, copied={SUMMARY_FILE, STAGE_RECORD})
        write_json(folder / STAGE_RECORD, {
            **record, "run": run_dir.name,
            "copied_from": donor_name, "copied_utc": _utc_now()})
        notebook = run_dir / NOTEBOOK_FOLDER / f"{stage_name}.ipynb"
        notebook.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(donor_dir / NOTEBOOK_FOLDER / f"{stage_name}.ipynb", notebook)
    return folder


def _link_tree(source: Path, target: Path, *, copied: set[str]) -> None:
    # Hard links share the donor's modification times; each is touched, so that
    # no output of the copying job is older than what it copied (Snakemake would
    # otherwise rerun it). Only summaries are read by other jobs, and they are copies.
    now = time.time()
    for folder, _, files in os.walk(source):
        into = target / Path(folder).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            src, dst = Path(folder) / name, into / name
            if name in copied and folder == str(source):
                shutil.copyfile(src, dst)
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
            os.utime(dst, (now, now))


def flatten_summary(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The numbers and texts of a summary, nested keys joined by ``.`` (lists left out)."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_summary(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            flat[name] = value
    return flat


def aggregate_sweep(sweep_file: str | os.PathLike, output: str | os.PathLike,
                    summaries: Sequence[str | os.PathLike]) -> Path:
    """Gather the summaries of a sweep's points into one table (one row per point).

    Columns: ``point``, every key the points set (``seed``,
    ``02_preprocessing.freq_scale``), then each target stage's summary values
    as ``<stage>.<key>``.
    """
    import pandas as pd

    spec = load_sweep(sweep_file)
    rows = []
    keys = list(dict.fromkeys(k for overrides in spec.points.values() for k in overrides))
    by_point: dict[str, dict[str, Any]] = {p: {} for p in spec.points}
    for path in map(Path, summaries):
        point, stage = path.parent.parent.name, path.parent.name
        if point not in by_point:
            raise DataError(f"{path}: not a summary of a point of {spec.path}")
        by_point[point].update(flatten_summary(read_json(path), f"{stage}."))
    for point, overrides in spec.points.items():
        rows.append({"point": point, **{k: overrides.get(k) for k in keys}, **by_point[point]})
    return write_table(output, pd.DataFrame(rows))


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crowdnb.workflow.execute")
    sub = parser.add_subparsers(dest="command", required=True)
    stage = sub.add_parser("stage", help="execute one stage's notebook for one run")
    stage.add_argument("--project", required=True)
    stage.add_argument("--stage", required=True)
    stage.add_argument("--run", required=True, help="the run's folder, relative to here")
    stage.add_argument("--threads", type=int, default=1)
    stage.add_argument("--parameters", required=True, help="JSON from the plan")
    stage.add_argument("--quiet", action="store_true",
                       help="print nothing; a failure's line goes to .crowdnb/errors/<stage>.txt")
    copy = sub.add_parser("copy", help="copy one stage's results from the run that computed them")
    copy.add_argument("--stage", required=True)
    copy.add_argument("--run", required=True, help="the run's folder, relative to here")
    copy.add_argument("--donor", required=True, help="the folder of the run that computed them")
    copy.add_argument("--quiet", action="store_true")
    aggregate = sub.add_parser("aggregate", help="gather a sweep's results")
    aggregate.add_argument("--sweep-file", required=True)
    aggregate.add_argument("--output", required=True)
    aggregate.add_argument("summaries", nargs="*")
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    without_iri_grammar()
    # Snakemake stops its jobs with SIGTERM: put the stage's last results back then too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "aggregate":
            aggregate_sweep(args.sweep_file, args.output, args.summaries)
            return 0
        lock_fd = hold_job_lock(Path.cwd(), args.run)
        if args.command == "copy":
            copy_stage(args.stage, Path(args.run or "."), Path(args.donor))
            return 0
        _start_log(kernel_log_file(args.run, args.stage), stderr=quiet)
        duration = execute_stage(Project(Path(args.project).resolve()), args.stage, Path(args.run),
                                 values=json.loads(args.parameters), threads=args.threads,
                                 progress=sys.stderr.isatty() and not quiet, lock_fd=lock_fd)
        if not quiet:
            print(f"crowdnb run: {args.run or '.'}: {args.stage} done in {duration:.1f} s",
                  file=sys.stderr)
        return 0
    except CrowdnbError as exc:
        if args.command in ("stage", "copy"):
            with contextlib.suppress(OSError):
                path = error_file(Path(args.run), args.stage)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{exc}\n", encoding="utf-8")
        if not quiet:
            print(f"crowdnb run: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if not quiet:
            print(f"crowdnb run: {getattr(args, 'stage', 'aggregation')} interrupted; rerun "
                  "`crowdnb run` to resume", file=sys.stderr)
        return 130


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(_main())
