"""The image ablations: one choice of the image step at a time, against the paper's.

The paper draws each block one way (mel bands, MATLAB's jet, blocks every
1 s, a fixed [-130, -22] dB range); its journal follow-up trained one network
per frequency scale (bark, ERB, log, mel) (Franzoni, Biondi and Milani 2020).
Each entry of :data:`ABLATIONS` changes one parameter of the preprocessing
chapter and keeps every other value of the run, so a cell of the ablation
table is one ``crowdnb run -p 02_preprocessing.<parameter>=<value>`` away;
``params/sweeps/ablations.yaml`` runs them all (one point per entry).

Functions
---------
sweep_points        the entries as a sweep file's points
variant_config      the preprocessing of one entry, from a run's
example_blocks      the first block of each class, to draw every way
variant_images      one block drawn the way every entry draws it
ablation_table      a sweep's results, one row per entry, with its paired
                    difference from the paper's image
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import PreprocessConfig
from .errors import DataError

__all__ = ["Ablation", "ABLATIONS", "PAPER", "STAGE", "sweep_points", "variant_config",
           "example_blocks", "variant_images", "ablation_table"]

#: The chapter whose parameters the ablations change.
STAGE = "02_preprocessing"
#: The entry that keeps every choice of the paper.
PAPER = "paper"


@dataclass(frozen=True)
class Ablation:
    """One change of the image step.

    Attributes
    ----------
    factor : str
        What is varied, as the book names it ("frequency scale").
    level : str
        Its value here, in words ("bark").
    parameter : str or None
        The preprocessing parameter (a name of :meth:`PreprocessConfig.flat`);
        None for the paper's image.
    value : Any
        The parameter's value.
    """

    factor: str
    level: str
    parameter: str | None = None
    value: Any = None

    @property
    def overrides(self) -> dict[str, Any]:
        return {} if self.parameter is None else {self.parameter: self.value}


ABLATIONS: dict[str, Ablation] = {
    PAPER: Ablation("none", "paper (mel, jet)"),
    "bark": Ablation("frequency scale", "bark", "freq_scale", "bark"),
    "erb": Ablation("frequency scale", "ERB", "freq_scale", "erb"),
    "log": Ablation("frequency scale", "log", "freq_scale", "log"),
    "linear": Ablation("frequency scale", "linear (Hz)", "freq_scale", "linear"),
    "cqt": Ablation("frequency scale", "constant-Q transform", "freq_scale", "cqt"),
    "grey": Ablation("colormap", "grey", "colormap", "gray"),
    "viridis": Ablation("colormap", "viridis", "colormap", "viridis"),
    "per_image_db": Ablation("dB range", "per-image range", "db_scaling", "per_image"),
    "no_overlap": Ablation("block hop", "2 s (no overlap)", "hop_s", 2.0),
}


def sweep_points() -> dict[str, dict[str, Any]]:
    """:data:`ABLATIONS` as the points of a sweep file (``02_preprocessing.<name>: value``)."""
    return {name: {f"{STAGE}.{k}": v for k, v in a.overrides.items()}
            for name, a in ABLATIONS.items()}


def variant_config(base: PreprocessConfig, name: str) -> PreprocessConfig:
    """The preprocessing of entry ``name``: ``base`` with that entry's one change."""
    if name not in ABLATIONS:
        raise DataError(f"no ablation {name!r} (ablations: {', '.join(ABLATIONS)})")
    return PreprocessConfig.from_flat(**{**base.flat(), **ABLATIONS[name].overrides})


def example_blocks(blocks: pd.DataFrame, clips: pd.DataFrame,
                   config: PreprocessConfig) -> list[tuple[str, str, np.ndarray]]:
    """The first block of each class (its first clip's), loudness-normalised again.

    Parameters
    ----------
    blocks : pd.DataFrame
        Block table: ``clip_id``, ``label``, ``start_s``.
    clips : pd.DataFrame
        Clip table: ``clip_id``, ``path``.
    config : PreprocessConfig
        The settings that made the blocks (sample rate, band limit, loudness).

    Returns
    -------
    list of (label, block_id, samples)
        In sorted class order.
    """
    from . import audio

    paths = clips.set_index("clip_id")["path"]
    chosen = []
    for label, rows in blocks.sort_values(["label", "clip_id", "start_s"]).groupby("label"):
        first = rows.iloc[0]
        y, sr = audio.load_clip(paths[first["clip_id"]], sr=config.audio.sr)
        found = [b for b in audio.normalised_blocks(y, sr, config=config.audio)
                 if abs(b.start_s - float(first["start_s"])) < 0.5 / sr]
        if not found:
            raise DataError(f"clip {first['clip_id']}: no block starts at {first['start_s']:g} s "
                            "with these settings (the block table is of another run?)")
        chosen.append((str(label), str(first.get("block_id", first["clip_id"])), found[0].samples))
    return chosen


def variant_images(block: np.ndarray, sr: int, base: PreprocessConfig) -> dict[str, np.ndarray]:
    """One normalised block drawn the way each entry draws it (the 227 x 227 picture).

    The block-hop entry draws the same pictures as the paper's (it changes
    which blocks there are, not how one looks), so it is left out.
    """
    from .spectrogram import spectrogram_image

    return {name: spectrogram_image(block, sr, config=variant_config(base, name))
            for name, a in ABLATIONS.items() if a.parameter != "hop_s"}


def _predictions(point_dir: Path, experiment) -> pd.DataFrame | None:
    from .train import FILES

    path = point_dir / experiment.stage / experiment.folder / FILES["predictions"]
    return pd.read_csv(path) if path.is_file() else None


def ablation_table(results: pd.DataFrame, sweep_dir: str | os.PathLike | None = None, *,
                   seed: int = 0, n_resamples: int = 2000) -> pd.DataFrame:
    """One row per entry of a sweep's table, with its difference from the paper's image.

    Parameters
    ----------
    results : pd.DataFrame
        The sweep's ``results.csv`` (:func:`crowdnb.workflow.stageio.sweep_results`):
        one row per point, the random split's numbers as
        ``04_random_split_training.<name>``.
    sweep_dir : path-like, optional
        The sweep's folder (a subfolder per point). Where given, and a point
        answered the same test blocks as the paper's point, the difference of
        balanced accuracy comes with its paired interval over test events
        (:func:`crowdnb.experiments.paired_effect`); a point with other
        blocks (another hop) gets the difference alone.

    Returns
    -------
    pd.DataFrame
        ``point``, ``factor``, ``level``, ``balanced_accuracy``,
        ``balanced_low``, ``balanced_high``, ``chance_balanced``, ``accuracy``,
        ``degenerate``, ``majority_share``, ``n_test``, ``difference``,
        ``difference_low``, ``difference_high``, ``paired`` (whether the
        interval is paired), ``optimistic`` (it resampled blocks, with too few
        test events per class), ``p`` and ``min_p`` (the paired permutation
        test over test events), ``p_holm`` and ``holm_m`` (Holm over the
        variants tested), ``differs`` (``p_holm`` below the level).

    Raises
    ------
    DataError
        When the table has no row for the paper's image, or lacks the random
        split's numbers.
    """
    from .experiments import EXPERIMENTS, paired_effect
    from .significance import LEVEL, holm

    experiment = EXPERIMENTS["emotions_random"]
    prefix = f"{experiment.stage}."
    needed = ["balanced_accuracy", "balanced_low", "balanced_high", "chance_balanced", "accuracy",
              "degenerate", "majority_share", "n_test"]
    missing = [n for n in needed if prefix + n not in results.columns]
    if missing:
        raise DataError(f"the sweep's table has no {prefix}{missing[0]} column: it did not run "
                        f"{experiment.stage}")
    points = results.set_index("point")
    if PAPER not in points.index:
        raise DataError(f"the sweep's table has no point {PAPER!r}, the paper's image to compare with")
    folder = Path(sweep_dir) if sweep_dir is not None else None
    reference = _predictions(folder / PAPER, experiment) if folder is not None else None
    rows = []
    for name, row in points.iterrows():
        ablation = ABLATIONS.get(name, Ablation("other", str(name)))
        out: dict[str, Any] = {"point": name, "factor": ablation.factor, "level": ablation.level,
                               **{n: row[prefix + n] for n in needed}}
        out["difference"] = out["balanced_accuracy"] - points.loc[PAPER, prefix + "balanced_accuracy"]
        out.update(difference_low=np.nan, difference_high=np.nan, paired=False, optimistic=False,
                   differs=False, p=np.nan, min_p=np.nan)
        mine = _predictions(folder / str(name), experiment) if folder is not None else None
        if name != PAPER and reference is not None and mine is not None and \
                sorted(mine["block_id"].astype(str)) == sorted(reference["block_id"].astype(str)):
            effect = paired_effect(mine, reference, seed=seed, n_resamples=n_resamples)
            bal = effect["balanced_accuracy"]
            out.update(difference_low=bal["low"], difference_high=bal["high"], paired=True,
                       optimistic=bool(effect["optimistic"]), p=effect["p"],
                       min_p=effect["min_p"])
        rows.append(out)
    table = pd.DataFrame(rows)
    # the variants' paired tests are one family: Holm over those that ran
    table["p_holm"] = holm(table["p"].to_numpy(float))
    table["holm_m"] = int(table["p"].notna().sum())
    table["differs"] = table["p_holm"] < LEVEL
    table["degenerate"] = table["degenerate"].astype(int)
    table["n_test"] = table["n_test"].astype(int)
    return table
