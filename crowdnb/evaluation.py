"""What a classifier's predictions are worth: scores, intervals, clip votes, and where it errs.

:func:`evaluate_predictions` turns one table of test predictions (a row per
block: true label, predicted label, class probabilities) into the metrics of a
training: accuracy, bootstrap intervals, per-class scores, the confusion
matrix, and a label per clip by vote (:func:`clip_vote`, the rule the
predictor uses too). The football study's analysis asks where in an action the
errors are: :func:`accuracy_by_position` (the part of the action) and
:func:`accuracy_by_phase` (before, around and after the shot).
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = [
    "bootstrap_accuracy",
    "evaluate_predictions",
    "clip_vote",
    "block_positions",
    "accuracy_by_position",
    "shot_times",
    "accuracy_by_phase",
    "PHASES",
]


def clip_vote(labels: Sequence[str], mean_probability: Sequence[float], classes: Sequence[str]) -> str:
    """A clip's label: the majority vote of its blocks' labels.

    A tie goes to the tied class with the higher mean probability over the
    clip's blocks (``mean_probability``, in ``classes`` order).
    """
    classes = list(classes)
    votes = pd.Series(list(labels), dtype=object).value_counts()
    if votes.empty:
        raise DataError("clip_vote: a clip needs at least one block")
    tied = [c for c in classes if votes.get(c, 0) == votes.max()]
    return max(tied, key=lambda c: mean_probability[classes.index(c)])


def bootstrap_accuracy(
    correct: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap interval of an accuracy.

    Parameters
    ----------
    correct : np.ndarray [shape=(n,), dtype=bool]
        Whether each test block was classified correctly.
    groups : np.ndarray [shape=(n,)], optional
        Clip of each block. When given, whole clips are resampled with their
        blocks (a cluster bootstrap), which respects the correlation between
        blocks of one clip; otherwise blocks are resampled independently.
    n_resamples : int > 0
        Bootstrap resamples.
    seed : int
        Seed of the resampling.
    level : float in (0, 1)
        Coverage of the interval.

    Returns
    -------
    dict
        ``low``, ``high`` (accuracy, 0-1), ``level``, ``method``,
        ``n_resamples``, ``n_units`` (blocks or clips resampled), ``seed``.
    """
    correct = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    if groups is None:
        units_correct, units_n = correct, np.ones_like(correct)
        method = ("percentile bootstrap over test blocks (blocks resampled independently; too narrow when "
                  "blocks of a clip are correlated)")
    else:
        codes, group_index = np.unique(np.asarray(groups), return_inverse=True)
        units_correct = np.bincount(group_index, weights=correct, minlength=len(codes))
        units_n = np.bincount(group_index, minlength=len(codes)).astype(float)
        method = "cluster (percentile) bootstrap over test clips (whole clips resampled with their blocks)"
    n_units = len(units_n)
    if n_units == 0:
        return {"low": math.nan, "high": math.nan, "level": level, "method": method,
                "n_resamples": int(n_resamples), "n_units": 0, "seed": int(seed)}
    draws = rng.integers(0, n_units, size=(int(n_resamples), n_units))
    accuracies = units_correct[draws].sum(axis=1) / units_n[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(accuracies, [alpha, 1.0 - alpha])
    return {"low": float(low), "high": float(high), "level": level, "method": method,
            "n_resamples": int(n_resamples), "n_units": int(n_units), "seed": int(seed)}


def evaluate_predictions(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy with intervals, per-class scores, confusion matrix and clip-level accuracy.

    Parameters
    ----------
    predictions : pd.DataFrame
        One row per test block: ``clip_id``, ``label`` (true), ``predicted``
        and ``prob_<class>`` for every class.
    classes : sequence of str
        The classes, in the model's output order.
    n_resamples, seed : int
        Bootstrap resamples and their seed.

    Returns
    -------
    dict
        See :func:`train_model` (the evaluation part of its metrics).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    classes = list(classes)
    y_true = predictions["label"].astype(str).to_numpy()
    y_pred = predictions["predicted"].astype(str).to_numpy()
    correct = y_true == y_pred
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    counts = confusion_matrix(y_true, y_pred, labels=classes)

    prob_columns = [f"prob_{c}" for c in classes]
    clips = []
    for clip, group in predictions.groupby("clip_id", sort=True):
        mean_prob = group[prob_columns].to_numpy(float).mean(axis=0)
        vote = clip_vote(group["predicted"], mean_prob, classes)
        clips.append({
            "clip_id": str(clip),
            "label": str(group["label"].iloc[0]),
            "n_blocks": int(len(group)),
            "block_accuracy": float((group["label"] == group["predicted"]).mean()),
            "vote": vote,
            "mean_probability_label": classes[int(np.argmax(mean_prob))],
        })
    clip_table = pd.DataFrame(clips)
    return {
        "accuracy": float(correct.mean()) if len(correct) else math.nan,
        "n_correct": int(correct.sum()),
        "n_test": int(len(correct)),
        "accuracy_ci95": bootstrap_accuracy(correct, n_resamples=n_resamples, seed=seed),
        "accuracy_ci95_clip": bootstrap_accuracy(
            correct, groups=predictions["clip_id"].astype(str).to_numpy(), n_resamples=n_resamples, seed=seed
        ),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "macro_f1": float(np.mean(f1)),
        "confusion": {"labels": classes, "counts": counts.tolist(),
                      "rows": "true label", "columns": "predicted label"},
        "clip_accuracy": float((clip_table["vote"] == clip_table["label"]).mean()) if clips else math.nan,
        "clip_accuracy_mean_probability": (
            float((clip_table["mean_probability_label"] == clip_table["label"]).mean()) if clips else math.nan
        ),
        "clip_vote": ("majority vote over each clip's test blocks; a tie goes to the tied class with the "
                      "higher mean probability"),
        "n_test_clips_evaluated": len(clips),
        "clips": clips,
    }


# ---------------------------------------------------------------------------
# The football study: where in the action a block comes from


def _part_names(n_parts: int) -> list[str]:
    if n_parts == 3:
        return ["start", "middle", "end"]
    return [f"{100 * i // n_parts}-{100 * (i + 1) // n_parts} %" for i in range(n_parts)]


def block_positions(
    blocks: pd.DataFrame, clips: pd.DataFrame, *, n_parts: int = 3
) -> pd.DataFrame:
    """Where each block lies within its clip (a football action).

    Parameters
    ----------
    blocks : pd.DataFrame
        Blocks with ``clip_id``, ``start_s`` and ``end_s`` (s).
    clips : pd.DataFrame
        The clips table (``clip_id``, ``duration_s`` in s).
    n_parts : int > 0
        Equal parts of the action.

    Returns
    -------
    pd.DataFrame
        ``blocks`` with ``position`` (the block's centre as a fraction of the
        clip's duration, 0 to 1) and ``part`` (an ordered categorical: start,
        middle, end for three parts).
    """
    if n_parts < 1:
        raise DataError(f"n_parts must be at least 1, got {n_parts}")
    durations = clips.set_index("clip_id")["duration_s"].astype(float)
    missing = sorted(set(blocks["clip_id"]) - set(durations.index))
    if missing:
        raise DataError(f"blocks of clip(s) {', '.join(missing[:5])} have no row in the clips table")
    table = blocks.copy()
    centre = (table["start_s"].astype(float) + table["end_s"].astype(float)) / 2
    table["position"] = (centre / table["clip_id"].map(durations)).clip(0.0, 1.0)
    names = _part_names(n_parts)
    index = np.minimum((table["position"].to_numpy() * n_parts).astype(int), n_parts - 1)
    table["part"] = pd.Categorical([names[i] for i in index], categories=names, ordered=True)
    return table


def accuracy_by_position(predictions: pd.DataFrame, clips: pd.DataFrame, *, n_parts: int = 3) -> pd.DataFrame:
    """Test accuracy of the blocks in each part of their action.

    Parameters
    ----------
    predictions : pd.DataFrame
        ``predictions.csv`` of a training (``clip_id``, ``start_s``, ``end_s``,
        ``label``, ``correct``).
    clips : pd.DataFrame
        The clips table of the actions.
    n_parts : int > 0

    Returns
    -------
    pd.DataFrame
        ``part``, ``n_blocks``, ``accuracy``, and ``accuracy_<label>`` per class.
    """
    table = block_positions(predictions, clips, n_parts=n_parts)
    table["correct"] = table["correct"].astype(bool)
    rows = []
    for part, group in table.groupby("part", observed=False, sort=True):
        row = {"part": str(part), "n_blocks": int(len(group)),
               "accuracy": float(group["correct"].mean()) if len(group) else np.nan}
        for label, sub in group.groupby("label", sort=True):
            row[f"accuracy_{label}"] = float(sub["correct"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


PHASES = ("build-up", "around the shot", "after the shot")


def shot_times(clips: pd.DataFrame) -> pd.Series | None:
    """When the shot came in each action, if the clips table records it.

    The synthetic match records it (``params`` JSON, ``clip.buildup_s``: the
    length of the build-up, s); a manifest of real actions can give it in a
    ``buildup_s`` column, which lands in ``params`` too.

    Returns
    -------
    pd.Series or None
        Seconds from the start of each action, indexed by ``clip_id``; None
        when any action lacks it.
    """
    times = {}
    for clip_id, text in zip(clips["clip_id"], clips["params"]):
        try:
            params = json.loads(text) if isinstance(text, str) and text else {}
        except json.JSONDecodeError:
            return None
        value = (params.get("clip") or {}).get("buildup_s", params.get("buildup_s"))
        try:
            times[clip_id] = float(value)
        except (TypeError, ValueError):
            return None
    return pd.Series(times, name="shot_s", dtype=float)


def accuracy_by_phase(predictions: pd.DataFrame, shots: pd.Series) -> pd.DataFrame:
    """Test accuracy of the blocks before, around and after the shot.

    Parameters
    ----------
    predictions : pd.DataFrame
        ``predictions.csv`` of a training (``clip_id``, ``start_s``, ``end_s``
        in s, ``label``, ``correct``).
    shots : pd.Series
        :func:`shot_times`.

    Returns
    -------
    pd.DataFrame
        ``phase`` (build-up: the block ends before the shot; around the shot;
        after the shot: it starts after it), ``n_blocks``, ``accuracy``.
    """
    shot = predictions["clip_id"].map(shots)
    if shot.isna().any():
        raise DataError("accuracy_by_phase: some test blocks' actions have no shot time")
    phase = np.where(predictions["end_s"] <= shot, PHASES[0],
                     np.where(predictions["start_s"] >= shot, PHASES[2], PHASES[1]))
    correct = predictions["correct"].astype(bool)
    rows = []
    for name in PHASES:
        mask = phase == name
        rows.append({"phase": name, "n_blocks": int(mask.sum()),
                     "accuracy": float(correct[mask].mean()) if mask.any() else np.nan})
    return pd.DataFrame(rows)
