"""How a notebook reads the stages before it and writes its own outputs.

A stage reads only the outputs of the stages it declares as upstream, from
the run directory, and writes only its own folder, ``<run_dir>/<stage>/``.
:func:`require_stage` is how it reads them: it stops with a message saying
what to run when an upstream stage has not finished. :func:`write_summary` is
a notebook's last act: the numbers it reports, in ``summary.json``, whose
presence marks the stage finished. The workflow adds the stage's record
(``_stage.json``: the values it ran with, when, how long), which the
reproducibility chapter reads back with :func:`stage_records` and
:func:`stage_parameters`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import DataError
from ..files import read_json, write_json
from .plan import RESULTS_FILE, STAGE_RECORD, SUMMARY_FILE, load_sweep

__all__ = [
    "stage_dir",
    "require_stage",
    "write_summary",
    "read_summary",
    "collection_folder",
    "read_stage_record",
    "finished_stages",
    "stage_records",
    "stage_parameters",
    "source_revision",
    "sweep_results",
    "sweep_folder",
]


def stage_dir(run_dir: str | os.PathLike, stage: str) -> Path:
    """The folder a stage writes to (created if needed)."""
    folder = Path(run_dir) / stage
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def require_stage(run_dir: str | os.PathLike, stage: str) -> Path:
    """Return the folder of a finished upstream stage, or stop with the reason.

    Raises
    ------
    DataError
        When the stage has not finished in ``run_dir`` (its ``summary.json``
        is missing); the message says how to run it.
    """
    folder = Path(run_dir) / stage
    if not (folder / SUMMARY_FILE).is_file():
        raise DataError(
            f"stage {stage} has not run in {Path(run_dir)} ({folder / SUMMARY_FILE} is missing): "
            f"run the study with `crowdnb run` (it runs {stage} first), or "
            f"`crowdnb run --only {stage}` with the same parameters")
    return folder


def write_summary(run_dir: str | os.PathLike, stage: str, values: Mapping[str, Any]) -> Path:
    """Write the numbers a stage reports; this marks the stage finished."""
    return write_json(stage_dir(run_dir, stage) / SUMMARY_FILE, dict(values))


def read_summary(run_dir: str | os.PathLike, stage: str) -> dict[str, Any]:
    """The summary of a finished stage (see :func:`require_stage`)."""
    return read_json(require_stage(run_dir, stage) / SUMMARY_FILE)


def sweep_folder(run_dir: str | os.PathLike, sweep_file: str | os.PathLike) -> Path:
    """The folder of a sweep's runs (``runs/<sweep>/``: its table and a folder per point).

    It sits in the folder of runs that holds ``run_dir``, or in ``run_dir``
    itself for a self-contained run folder (``crowdnb run --run-dir``); the
    workflow runs the sweep first when a stage names it in a sweep parameter.

    Raises
    ------
    DataError
        When the sweep file is bad, or its table is not there (the message
        says how to make it).
    """
    spec = load_sweep(sweep_file)
    run_dir = Path(run_dir).resolve()
    for folder in (run_dir, *run_dir.parents):
        if (folder / spec.name / RESULTS_FILE).is_file():
            return folder / spec.name
    raise DataError(f"the results of sweep {spec.name!r} are missing (no {spec.name}/{RESULTS_FILE} "
                    f"beside {Path(run_dir)}): run `crowdnb run --sweep {sweep_file}` first")


def sweep_results(run_dir: str | os.PathLike, sweep_file: str | os.PathLike):
    """The table of a sweep's points (``runs/<sweep>/results.csv``) as a DataFrame.

    Raises
    ------
    DataError
        As :func:`sweep_folder`.
    """
    import pandas as pd

    return pd.read_csv(sweep_folder(run_dir, sweep_file) / RESULTS_FILE)


def collection_folder(run_dir: str | os.PathLike, study: str) -> Path:
    """The folder of a collection written by the data-collection chapter.

    Parameters
    ----------
    run_dir : path-like
    study : {"emotions", "football"}

    Raises
    ------
    DataError
        When the data-collection chapter has not run, or wrote no such collection.
    """
    folder = require_stage(run_dir, "01_data_collection")
    collections = read_json(folder / SUMMARY_FILE).get("collections", {})
    if study not in collections:
        raise DataError(f"{folder / SUMMARY_FILE}: no {study!r} collection "
                        f"(collections: {', '.join(collections) or 'none'})")
    return folder / collections[study]


def read_stage_record(run_dir: str | os.PathLike, stage: str) -> dict[str, Any] | None:
    """The record the workflow wrote when ``stage`` last finished, or None."""
    path = Path(run_dir) / stage / STAGE_RECORD
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except DataError:
        return None


def finished_stages(run_dir: str | os.PathLike) -> list[str]:
    """The stages of a run that finished (those with a record), in name order."""
    run_dir = Path(run_dir)
    return sorted(p.name for p in run_dir.iterdir() if (p / STAGE_RECORD).is_file()) \
        if run_dir.is_dir() else []


def stage_records(run_dir: str | os.PathLike, stages: Sequence[str]):
    """When each stage finished and how long it took, from the workflow's records.

    Returns
    -------
    pd.DataFrame
        Columns ``stage``, ``finished_utc``, ``duration_s`` (s) and
        ``threads``; one row per stage with a record.
    """
    import pandas as pd

    columns = ["stage", "finished_utc", "duration_s", "threads"]
    rows = [{k: record.get(k) for k in columns} for stage in stages
            if (record := read_stage_record(run_dir, stage)) is not None]
    return pd.DataFrame(rows, columns=columns)


def stage_parameters(run_dir: str | os.PathLike, stages: Sequence[str]):
    """Every parameter each stage ran with, from the workflow's records.

    Returns
    -------
    pd.DataFrame
        Columns ``stage``, ``parameter``, ``value`` (as text) and ``set``
        (True where the parameter file or the command line set it, False for
        the notebook's default).
    """
    import pandas as pd

    rows = []
    for stage in stages:
        record = read_stage_record(run_dir, stage)
        if record is None:
            continue
        chosen = set(record.get("set", []))
        for name, value in record.get("parameters", {}).items():
            rows.append({"stage": stage, "parameter": name, "value": repr(value),
                         "set": name in chosen})
    return pd.DataFrame(rows, columns=["stage", "parameter", "value", "set"])


def source_revision(root: str | os.PathLike) -> dict[str, Any]:
    """The git commit of the project's sources, and whether they differed from it.

    ``dirty`` is True when tracked files were modified or files not ignored by
    git were not yet committed. ``{"commit": None, "dirty": None}`` outside a
    git checkout.
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {"commit": commit, "dirty": None if status is None else bool(status)}
