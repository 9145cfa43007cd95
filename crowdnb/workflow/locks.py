"""Who may write a run: one ``crowdnb run`` at a time, and nothing while its stages live.

Two lock files per run (or sweep), in the working directory's
``.crowdnb/locks/``:

``<name>.lock``
    held exclusively by the ``crowdnb run`` process for its whole life; a
    second ``crowdnb run`` on the same run is refused.
``<name>.jobs.lock``
    held shared by every stage job of the run (the ``execute`` process) and
    by its notebook's kernel, which inherits it. A ``crowdnb run`` starts only
    when it can take this one exclusively for an instant: a stage or kernel of
    an earlier run that is still alive (its ``crowdnb run`` killed alone, say)
    keeps the run refused until it ends.

The operating system releases both when the processes holding them end,
however they end (``flock``), so a killed run leaves no lock to remove.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import DataError

__all__ = ["hold_run_locks", "hold_job_lock", "lock_name", "LOCK_FOLDER"]

LOCK_FOLDER = ".crowdnb/locks"
_SELF_LOCK = "run"  # the lock of a self-contained run folder's own run


def lock_name(run: str) -> str:
    """The lock a job of ``run`` holds: its run's, or its sweep's for a sweep point."""
    first = run.strip("/").split("/")[0]
    return first if first not in ("", ".") else _SELF_LOCK


def _paths(runs_root: Path, name: str) -> tuple[Path, Path]:
    folder = runs_root / LOCK_FOLDER
    return folder / f"{lock_name(name)}.lock", folder / f"{lock_name(name)}.jobs.lock"


def _holders(path: Path) -> list[int]:
    """The processes holding a lock on ``path`` (from ``/proc/locks``; empty where unknown)."""
    try:
        inode = os.stat(path).st_ino
        lines = Path("/proc/locks").read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    pids = set()
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  READ 1234 00:2f:5678 0 EOF" (a "->" marks a waiter)
        if len(parts) >= 6 and "->" not in parts and parts[1] == "FLOCK":
            with contextlib.suppress(ValueError):
                if int(parts[5].rsplit(":", 1)[1]) == inode:
                    pids.add(int(parts[4]))
    return sorted(pids)


@contextlib.contextmanager
def hold_run_locks(runs_root: Path, names: Sequence[str], *, where: Path) -> Iterator[None]:
    """Hold the lock of each run or sweep in ``names`` for the life of this process.

    Parameters
    ----------
    runs_root : Path
        The working directory (its ``.crowdnb/locks/`` holds the lock files).
    names : sequence of str
        Runs and sweeps this invocation writes (``"."`` for a self-contained run).
    where : Path
        The run's folder, as the message names it.

    Raises
    ------
    DataError
        When another ``crowdnb run`` holds one of them, or a stage or kernel
        of an earlier run still runs; the message gives their process ids.
    """
    handles = []
    try:
        for name in names:
            run_lock, jobs_lock = _paths(runs_root, name)
            run_lock.parent.mkdir(parents=True, exist_ok=True)
            fh = open(run_lock, "a+", encoding="utf-8")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise DataError(
                    f"{where} is being written by another `crowdnb run` ({holder}); "
                    "wait for it to finish, or stop it, and run again") from None
            handles.append(fh)
            with open(jobs_lock, "a+", encoding="utf-8") as jobs:
                try:
                    fcntl.flock(jobs, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.seek(0)
                    earlier = fh.read().strip()
                    pids = ", ".join(map(str, _holders(jobs_lock))) or "unknown"
                    raise DataError(
                        f"{where} is being written by another `crowdnb run` "
                        f"({earlier or 'it has ended'}) whose stage is still running (pid {pids}); "
                        "wait for it to finish, or stop it, and run again") from None
                fcntl.flock(jobs, fcntl.LOCK_UN)
            fh.seek(0)
            fh.truncate()
            started = _dt.datetime.now().isoformat(timespec="seconds")
            fh.write(f"pid {os.getpid()}, started {started}\n")
            fh.flush()
        yield
    finally:
        for fh in handles:
            fh.close()


def hold_job_lock(runs_root: Path, run: str) -> int:
    """Take the shared lock of ``run``'s stage jobs; return its descriptor (kept open).

    Pass the descriptor to the processes the job starts (``pass_fds``): the
    lock is released when the last of them ends.
    """
    _, jobs_lock = _paths(Path(runs_root), run)
    jobs_lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(jobs_lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd
