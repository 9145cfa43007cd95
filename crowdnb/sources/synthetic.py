"""The ``synthetic`` source: the embedded default corpus, rendered offline.

A thin adapter over :func:`crowdnb.synth.synthesize`, which writes two
collections (``emotions/`` and ``football/``) with their clips tables and
cards; this adds the collection report every source writes and returns the
clips table.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..clips import read_clips
from ..files import write_table
from ._common import COLLECTED, REPORT_FILE, report_frame

__all__ = ["collect_synthetic"]


def collect_synthetic(
    out_dir: str | os.PathLike,
    *,
    preset: str = "paper",
    seed: int = 0,
    study: str = "both",
    workers: int | None = None,
    progress: bool = True,
    **overrides,
) -> pd.DataFrame:
    """Render the synthetic corpus into ``out_dir`` and return its clips table.

    Parameters
    ----------
    out_dir : path-like
        Receives ``emotions/`` (joy, anger, neutral) and ``football/`` (goal,
        no_goal), each a collection with ``clips.csv``, ``card.md``,
        ``collection_report.csv`` and ``audio/``.
    preset : str
        The synthesizer's preset (``"paper"`` or ``"smoke"``).
    seed : int >= 0
        Seed of the synthesis.
    study : str
        ``"emotions"``, ``"football"`` or ``"both"``.
    workers : int or None
        Processes rendering clips (see :func:`crowdnb.synth.synthesize`).
    progress : bool
        Show a progress bar.
    **overrides
        Synthesizer parameters (see :func:`crowdnb.synth.synthesize`).

    Returns
    -------
    pd.DataFrame
        The clips table of the emotion study (of the football study when it
        is the only one rendered), absolute paths; ``.attrs["collections"]``
        maps each rendered study to its folder.
    """
    from ..synth import synthesize

    collections = {name: Path(path) for name, path in synthesize(
        out_dir, preset=preset, seed=seed, study=study, workers=workers, progress=progress,
        **overrides).items()}
    tables = {}
    for name, folder in collections.items():
        table = read_clips(folder)
        write_table(folder / REPORT_FILE, report_frame(
            [{"item": clip_id, "status": COLLECTED, "reason": "synthesized"}
             for clip_id in table["clip_id"]]))
        tables[name] = table
    name = "emotions" if "emotions" in tables else next(iter(tables))
    table = tables[name]
    table.attrs["collections"] = {n: str(folder) for n, folder in collections.items()}
    table.attrs["folder"] = str(collections[name])
    return table
