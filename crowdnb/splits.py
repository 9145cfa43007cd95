"""The paper's two protocols for dividing blocks into training and test sets.

*Random split*: 80 % of the blocks for training and 20 % for testing, drawn at
random within each label (stratified), as the paper's first experiment does.
Blocks are cut with a 2 s window and a 1 s hop, so two neighbouring blocks of
a clip share one second of sound; a random split puts many such pairs on both
sides. :func:`temporal_leakage` counts them, so the study reports the leakage
the paper worries about instead of hiding it.

*Clip split*: whole clips go to one side, 80/20 by clip within each label, so
no test block shares a clip (let alone a second of sound) with a training
block. The paper chose its test clips by hand; ``test_clips`` reproduces such
a choice.

Both splits are seeded (``np.random.default_rng(seed)``) and return new tables
with a fresh index, in the input's row order.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import DataError, ParameterError

__all__ = ["random_split", "clip_split", "event_folds", "guard_gap", "temporal_leakage",
           "kept_blocks"]


def _check_fraction(test_fraction: float) -> float:
    try:
        value = float(test_fraction)
    except (TypeError, ValueError):
        raise ParameterError(f"test_fraction must be a number in (0, 1), not {test_fraction!r}") from None
    if not 0.0 < value < 1.0:
        raise ParameterError(f"test_fraction must be in (0, 1), not {test_fraction!r}")
    return value


def kept_blocks(blocks: pd.DataFrame, *, required: Iterable[str], name: str = "") -> pd.DataFrame:
    """The blocks that have a spectrogram image (``kept``), with the columns checked.

    ``name`` (e.g. ``"train"``) starts the error messages, which say what is
    wrong with the table: not a table, a missing column, or no kept block.
    """
    what = f"{name} block table" if name else "block table"
    if not isinstance(blocks, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, not {type(blocks).__name__}")
    missing = [c for c in required if c not in blocks.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {', '.join(missing)}")
    if "kept" in blocks.columns:
        blocks = blocks[blocks["kept"].astype(bool)]
    if blocks.empty:
        raise DataError(f"{what} has no kept blocks")
    return blocks


def _take(blocks: pd.DataFrame, test_mask: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = blocks[~test_mask].reset_index(drop=True)
    test = blocks[test_mask].reset_index(drop=True)
    return train, test


def random_split(
    blocks: pd.DataFrame, *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split blocks at random into training and test sets, stratified by label.

    The paper's first protocol. Within each label, ``round(n * test_fraction)``
    blocks are drawn for the test set (so each label keeps its share on both
    sides); blocks of the same clip can land on both sides.

    Parameters
    ----------
    blocks : pd.DataFrame
        Block table with at least ``label`` (``crowdnb.dataset.preprocess``'s
        output, possibly balanced). Rows with ``kept == False`` (no
        spectrogram image) are left out of both sides.
    test_fraction : float in (0, 1)
        Share of each label's blocks that goes to the test set.
    seed : int
        Seed of the random draw.

    Returns
    -------
    train, test : pd.DataFrame
        The two sets of rows, each in the input's order, with a fresh index.

    Raises
    ------
    ParameterError
        If ``test_fraction`` is not in (0, 1).
    DataError
        If the table lacks ``label`` or has no kept block.
    """
    fraction = _check_fraction(test_fraction)
    blocks = kept_blocks(blocks, required=["label"])
    rng = np.random.default_rng(seed)
    labels = blocks["label"].to_numpy()
    test_mask = np.zeros(len(blocks), dtype=bool)
    for label in sorted(pd.unique(labels)):
        rows = np.flatnonzero(labels == label)
        n_test = int(round(len(rows) * fraction))
        test_mask[rng.permutation(rows)[:n_test]] = True
    return _take(blocks, test_mask)


def _clip_labels(blocks: pd.DataFrame) -> pd.Series:
    """Label of each clip; a clip whose blocks disagree is an error."""
    per_clip = blocks.groupby("clip_id", sort=True)["label"].agg(lambda s: sorted(set(s)))
    mixed = per_clip[per_clip.map(len) > 1]
    if len(mixed):
        first = mixed.index[0]
        raise DataError(
            f"clip {first!r} has blocks with several labels ({', '.join(mixed.iloc[0])}); "
            "a clip split needs one label per clip"
        )
    return per_clip.map(lambda labels: labels[0])


def clip_split(
    blocks: pd.DataFrame,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    test_clips: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split blocks by clip: every clip's blocks go to one side only.

    The paper's second protocol ("choosing different original files"). Within
    each label, ``round(n_clips * test_fraction)`` clips are drawn for the
    test set, but at least 1 and at most ``n_clips - 1``, so every label is on
    both sides. The share of *blocks* in the test set then depends on the
    lengths of the chosen clips; report it (the training metrics count both).

    Parameters
    ----------
    blocks : pd.DataFrame
        Block table with ``clip_id`` and ``label``. Rows with ``kept == False``
        are left out of both sides.
    test_fraction : float in (0, 1)
        Share of each label's clips that goes to the test set (before the
        at-least-one rules above).
    seed : int
        Seed of the random draw of clips.
    test_clips : iterable of str, optional
        The test clips, to reproduce a manual choice; ``test_fraction`` and
        ``seed`` are then unused.

    Returns
    -------
    train, test : pd.DataFrame
        The two sets of rows, each in the input's order, with a fresh index.

    Raises
    ------
    ParameterError
        If ``test_fraction`` is not in (0, 1), or ``test_clips`` names a clip
        that is not in the table or is empty.
    DataError
        If a label has fewer than 2 clips (one cannot be on both sides), a
        clip has several labels, or ``test_clips`` leaves a label on one side
        only.
    """
    blocks = kept_blocks(blocks, required=["clip_id", "label"])
    clip_label = _clip_labels(blocks)
    clip_ids = blocks["clip_id"].to_numpy()

    if test_clips is not None:
        chosen = [str(c) for c in ([test_clips] if isinstance(test_clips, str) else test_clips)]
        if not chosen:
            raise ParameterError("test_clips is empty; give at least one clip per label")
        unknown = sorted(set(chosen) - set(clip_label.index.astype(str)))
        if unknown:
            raise ParameterError(f"test_clips names clip(s) not in the block table: {', '.join(unknown)}")
        test_set = set(chosen)
        for label, clips in clip_label.groupby(clip_label):
            n_test = sum(str(c) in test_set for c in clips.index)
            if n_test == 0 or n_test == len(clips):
                side = "test" if n_test == 0 else "training"
                raise DataError(
                    f"test_clips leaves label {label!r} without any {side} clip "
                    f"({n_test} of its {len(clips)} clips chosen for the test set)"
                )
        test_mask = np.isin(clip_ids.astype(str), list(test_set))
        return _take(blocks, test_mask)

    fraction = _check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    test_set: set = set()
    for label in sorted(clip_label.unique()):
        clips = np.array(sorted(clip_label.index[clip_label == label]), dtype=object)
        if len(clips) < 2:
            raise DataError(
                f"label {label!r} has {len(clips)} clip(s); a clip split needs at least 2 "
                "per label (one for training, one for testing)"
            )
        n_test = min(max(1, int(round(len(clips) * fraction))), len(clips) - 1)
        test_set.update(rng.permutation(clips)[:n_test].tolist())
    test_mask = np.array([c in test_set for c in clip_ids], dtype=bool)
    return _take(blocks, test_mask)


def event_folds(blocks: pd.DataFrame, *, k: int = 3,
                seed: int = 0) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Event-disjoint, class-stratified k-fold cross-validation.

    Every event's blocks are tested exactly once, in one fold, and no event is
    on both sides of a fold (the events are the groups of scikit-learn's
    ``StratifiedGroupKFold``; ``event_id``, falling back to ``clip_id``); the
    folds keep each class's share of blocks as well as whole events allow.

    Parameters
    ----------
    blocks : pd.DataFrame
        Block table with ``clip_id`` and ``label`` (``event_id`` used when
        present). Rows with ``kept == False`` are left out.
    k : int >= 2
        Folds.
    seed : int
        Seed of the shuffling of events before they are dealt to folds.

    Returns
    -------
    list of (train, test)
        One pair per fold, each in the input's order with a fresh index.

    Raises
    ------
    ParameterError
        If ``k`` is not an integer >= 2.
    DataError
        If a class has fewer than ``k`` events (a fold would lack it), or an
        event holds several labels.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ParameterError(f"folds must be an integer >= 2, got {k!r}")
    blocks = kept_blocks(blocks, required=["clip_id", "label"])
    events = (blocks["event_id"] if "event_id" in blocks.columns else blocks["clip_id"]).astype(str)
    per_event = blocks.groupby(events.to_numpy())["label"].agg(lambda v: sorted(set(v)))
    mixed = per_event[per_event.map(len) > 1]
    if len(mixed):
        raise DataError(f"event {mixed.index[0]!r} has blocks with several labels "
                        f"({', '.join(mixed.iloc[0])}); event folds need one label per event")
    counts = per_event.map(lambda v: v[0]).value_counts()
    short = counts[counts < k]
    if len(short):
        raise DataError(f"{k} folds need at least {k} events per class; "
                        + ", ".join(f"{label!r} has {n}" for label, n in short.items())
                        + " (fewer folds, or more recordings)")
    splitter = StratifiedGroupKFold(n_splits=int(k), shuffle=True, random_state=int(seed))
    folds = []
    for _, test_index in splitter.split(np.zeros(len(blocks)), blocks["label"].astype(str),
                                        groups=events.to_numpy()):
        mask = np.zeros(len(blocks), dtype=bool)
        mask[test_index] = True
        folds.append(_take(blocks, mask))
    return folds


def _check_times(train: pd.DataFrame, test: pd.DataFrame) -> None:
    for name, table in (("train", train), ("test", test)):
        missing = [c for c in ("clip_id", "start_s", "end_s") if c not in table.columns]
        if missing:
            raise DataError(f"{name} block table lacks column(s) {', '.join(missing)}")


def guard_gap(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The training blocks that share no sound with a test block: a guard gap.

    A random split with the gap keeps the same test blocks and drops from
    training every block of the same clip whose time span
    (``[start_s, end_s)``) overlaps a test block's by a positive length. With
    the paper's 2 s blocks and 1 s hop, that is each test block's neighbour
    on either side. Training on what is left and scoring on the same test
    blocks measures what the shared sound is worth (part of the difference
    comes from the smaller training set; :func:`crowdnb.experiments.run_experiment`
    records both sizes).

    Parameters
    ----------
    train, test : pd.DataFrame
        Block tables with ``clip_id``, ``start_s`` and ``end_s`` (s).

    Returns
    -------
    pd.DataFrame
        The kept training rows, in their order, with a fresh index.

    Raises
    ------
    DataError
        If a table lacks one of the columns, or no training block is left.
    """
    _check_times(train, test)
    keep = np.ones(len(train), dtype=bool)
    test_by_clip = {clip: (g["start_s"].to_numpy(float), g["end_s"].to_numpy(float))
                    for clip, g in test.groupby("clip_id", sort=False)}
    clip_ids = train["clip_id"].to_numpy()
    starts = train["start_s"].to_numpy(float)
    ends = train["end_s"].to_numpy(float)
    for clip, (t_start, t_end) in test_by_clip.items():
        rows = np.flatnonzero(clip_ids == clip)
        if not len(rows):
            continue
        shared = np.minimum(ends[rows, None], t_end[None, :]) - np.maximum(starts[rows, None],
                                                                           t_start[None, :])
        keep[rows[(shared > 0).any(axis=1)]] = False
    if not keep.any():
        raise DataError("a guard gap leaves no training block: every training block overlaps a "
                        "test block (blocks too long for their hop, or too small a corpus)")
    return train[keep].reset_index(drop=True)


def temporal_leakage(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """How many test blocks share sound, or a clip, with a training block.

    A test block *overlaps* when a training block of the same clip covers part
    of the same time span (``[start_s, end_s)`` intersect with a positive
    length): with the paper's 2 s blocks and 1 s hop, the neighbour on each
    side shares one second of audio. A test block *shares a clip* when any
    training block comes from its clip: no common sound, but the same event,
    microphone and crowd.

    Parameters
    ----------
    train, test : pd.DataFrame
        Block tables with ``clip_id``, ``start_s`` and ``end_s`` (s).

    Returns
    -------
    dict
        ``n_test`` (test blocks), ``n_overlapping`` (test blocks that overlap
        a training block of their clip), ``fraction`` (n_overlapping /
        n_test), ``overlap_s`` (total seconds of test audio also heard in
        training), ``n_sharing_clip`` and ``fraction_sharing_clip`` (test
        blocks whose clip has training blocks), ``n_test_clips`` and
        ``n_shared_clips`` (test clips with blocks on both sides).

    Raises
    ------
    DataError
        If a table lacks one of the columns.
    """
    _check_times(train, test)
    n_test = int(len(test))
    n_overlapping = 0
    n_sharing = 0
    overlap_s = 0.0
    train_by_clip = {
        clip: (group["start_s"].to_numpy(float), group["end_s"].to_numpy(float))
        for clip, group in train.groupby("clip_id", sort=False)
    }
    for clip, group in test.groupby("clip_id", sort=False):
        if clip not in train_by_clip:
            continue
        n_sharing += len(group)
        t_start, t_end = train_by_clip[clip]
        starts = group["start_s"].to_numpy(float)[:, None]
        ends = group["end_s"].to_numpy(float)[:, None]
        # Seconds of each test block covered by each training block of the clip.
        shared = np.clip(np.minimum(ends, t_end[None, :]) - np.maximum(starts, t_start[None, :]), 0.0, None)
        n_overlapping += int(np.count_nonzero(shared.max(axis=1) > 0))
        # Covered time of each test block: the union of the training intervals inside it.
        for s, e in zip(starts[:, 0], ends[:, 0]):
            inside = [(max(a, s), min(b, e)) for a, b in zip(t_start, t_end) if min(b, e) > max(a, s)]
            overlap_s += _union_length(inside)
    test_clips = set(test["clip_id"]) if n_test else set()
    return {
        "n_test": n_test,
        "n_overlapping": n_overlapping,
        "fraction": (n_overlapping / n_test) if n_test else 0.0,
        "overlap_s": float(overlap_s),
        "n_sharing_clip": n_sharing,
        "fraction_sharing_clip": (n_sharing / n_test) if n_test else 0.0,
        "n_test_clips": len(test_clips),
        "n_shared_clips": len(test_clips & set(train["clip_id"])),
    }


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    end = -np.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total
