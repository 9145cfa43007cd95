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
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError
from .significance import permutation_above_chance

__all__ = [
    "bootstrap_accuracy",
    "event_bootstrap",
    "balanced_accuracy",
    "chance_levels",
    "degeneracy",
    "diagnose",
    "DEGENERATE_SHARE",
    "UNLEARNT_LOSS_SHARE",
    "OVERFIT_GAP",
    "MIN_EVENTS_PER_CLASS",
    "paired_difference",
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


#: A network that gives one class to at least this share of the test blocks is
#: flagged: it answers (nearly) the same thing whatever it hears.
DEGENERATE_SHARE = 0.9
#: Fewer test events than this in a class, and a percentile interval over
#: events means nothing (with 2 events per class there are a handful of
#: distinct resamples): the interval is not given, and the reason is.
MIN_EVENTS_PER_CLASS = 5


def balanced_accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Mean recall over the classes present in ``y_true``.

    Chance is ``1 / K`` for any classifier that ignores its input, whatever
    the test set's composition: a constant classifier scores exactly that.
    """
    y_true, y_pred = np.asarray(y_true, dtype=str), np.asarray(y_pred, dtype=str)
    present = np.unique(y_true)
    if present.size == 0:
        return math.nan
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in present]))


def chance_levels(y_true: Sequence[str], classes: Sequence[str],
                  train_labels: Sequence[str] | None = None) -> dict[str, Any]:
    """What a classifier that ignores its input scores on this test set.

    Returns
    -------
    dict
        ``constant`` (accuracy of the best constant classifier: the share of
        the largest test class) and ``constant_class``; ``prior`` (expected
        accuracy of guessing at random by the training classes' shares, or
        by uniform shares without ``train_labels``); ``balanced`` (1 / K, the
        chance level of balanced accuracy); ``test_per_class`` (blocks).
    """
    classes = list(classes)
    y_true = pd.Series(np.asarray(y_true, dtype=str))
    counts = y_true.value_counts().reindex(classes, fill_value=0)
    n = int(counts.sum())
    test_share = counts / n if n else counts.astype(float)
    if train_labels is not None:
        train = pd.Series(np.asarray(train_labels, dtype=str)).value_counts().reindex(
            classes, fill_value=0)
        train_share = train / train.sum() if train.sum() else train.astype(float)
    else:
        train_share = pd.Series(1.0 / len(classes), index=classes)
    present = int((counts > 0).sum())
    return {
        "constant": float(test_share.max()) if n else math.nan,
        "constant_class": str(counts.idxmax()) if n else "",
        "prior": float((train_share * test_share).sum()),
        "balanced": 1.0 / present if present else math.nan,
        "test_per_class": {c: int(v) for c, v in counts.items()},
    }


def degeneracy(y_pred: Sequence[str]) -> dict[str, Any]:
    """How much of the test set gets the most frequent predicted class.

    Returns
    -------
    dict
        ``share`` (0-1), ``class``, ``degenerate`` (share >=
        :data:`DEGENERATE_SHARE`), ``constant`` (every block the same class).
    """
    predicted = pd.Series(np.asarray(y_pred, dtype=str)).value_counts()
    if predicted.empty:
        return {"share": math.nan, "class": "", "degenerate": False, "constant": False}
    share = float(predicted.iloc[0] / predicted.sum())
    return {"share": share, "class": str(predicted.index[0]),
            "degenerate": bool(share >= DEGENERATE_SHARE), "constant": bool(len(predicted) == 1)}


#: A network whose final training loss is still at least this share of ln K
#: (the loss of answering 1/K for every class) has not learnt its training set.
UNLEARNT_LOSS_SHARE = 0.9
#: A network whose training accuracy exceeds its test accuracy by at least this
#: much fits its training blocks far better than new ones: it overfits.
OVERFIT_GAP = 0.2


def diagnose(numbers: Mapping[str, Any]) -> dict[str, Any]:
    """Whether one trained network learnt, answers one class, or overfits.

    Parameters
    ----------
    numbers : mapping
        :func:`crowdnb.experiments.experiment_numbers` of one network (one
        fold of a cross-validation is one network): ``majority_share``,
        ``majority_class``, ``degenerate``, ``accuracy``, ``train_loss``,
        ``train_accuracy`` and ``n_classes``.

    Returns
    -------
    dict
        ``one_class_share``, ``one_class``, ``train_loss``, ``chance_loss``
        (ln K), ``train_accuracy``, ``test_accuracy``, ``flags`` (a list of
        "answers one class", "did not learn", "overfits"), ``learnt`` (False
        when it answers one class or did not learn) and ``status`` (the words
        a page shows: "did not learn", "overfits" or "learnt").
    """
    chance_loss = math.log(int(numbers["n_classes"]))
    train_loss = float(numbers.get("train_loss", math.nan))
    train_accuracy = float(numbers.get("train_accuracy", math.nan))
    flags = []
    if numbers["degenerate"]:
        flags.append("answers one class")
    if train_loss >= UNLEARNT_LOSS_SHARE * chance_loss:
        flags.append("did not learn")
    learnt = not flags
    if learnt and train_accuracy - float(numbers["accuracy"]) >= OVERFIT_GAP:
        flags.append("overfits")
    status = "did not learn" if not learnt else ("overfits" if flags else "learnt")
    return {"one_class_share": float(numbers["majority_share"]),
            "one_class": str(numbers["majority_class"]), "train_loss": train_loss,
            "chance_loss": chance_loss, "train_accuracy": train_accuracy,
            "test_accuracy": float(numbers["accuracy"]), "flags": flags, "learnt": learnt,
            "status": status}


def event_bootstrap(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    events: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Intervals for a new crowd: whole test events resampled, within each class.

    Each resample draws, for every class, as many of its test events as it
    has, with replacement, and all their blocks: the class composition of
    the test set is kept, and the blocks of one event (which succeed or fail
    together) move together. Accuracy and balanced accuracy are computed on
    the same resamples.

    Returns
    -------
    dict
        ``accuracy`` and ``balanced_accuracy``, each ``{"low", "high"}`` (None
        when not given), ``level``, ``method``, ``n_resamples``,
        ``events_per_class``, ``seed``, ``ok`` (False when a class has fewer
        than :data:`MIN_EVENTS_PER_CLASS` test events) and ``note`` (why not).
    """
    y_true = np.asarray(y_true, dtype=str)
    y_pred = np.asarray(y_pred, dtype=str)
    events = np.asarray(events, dtype=str)
    classes = sorted(set(y_true))
    per_class = {c: sorted(set(events[y_true == c])) for c in classes}
    counts = {c: len(v) for c, v in per_class.items()}
    out = {"accuracy": {"low": None, "high": None},
           "balanced_accuracy": {"low": None, "high": None}, "level": level,
           "method": ("cluster (percentile) bootstrap over test events, stratified by class "
                      "(each class's events resampled with their blocks)"),
           "n_resamples": int(n_resamples), "events_per_class": counts, "seed": int(seed),
           "ok": True, "note": ""}
    fewest = min(counts.values()) if counts else 0
    if fewest < MIN_EVENTS_PER_CLASS:
        out.update(ok=False, note=(
            f"{fewest} test event(s) in the smallest class, fewer than the "
            f"{MIN_EVENTS_PER_CLASS} a percentile interval over events needs to mean anything"))
        return out
    # per (class, event): blocks and correct blocks
    cells = pd.DataFrame({"c": y_true, "e": events, "ok": y_true == y_pred})
    table = cells.groupby(["c", "e"])["ok"].agg(["sum", "count"])
    rng = np.random.default_rng([seed, 7])
    correct = np.zeros((int(n_resamples), len(classes)))
    total = np.zeros_like(correct)
    for k, c in enumerate(classes):
        sums = table.loc[c, "sum"].to_numpy(float)
        sizes = table.loc[c, "count"].to_numpy(float)
        draws = rng.integers(0, len(sums), size=(int(n_resamples), len(sums)))
        correct[:, k] = sums[draws].sum(axis=1)
        total[:, k] = sizes[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    for name, values in (("accuracy", correct.sum(axis=1) / total.sum(axis=1)),
                         ("balanced_accuracy", (correct / total).mean(axis=1))):
        low, high = np.quantile(values, [alpha, 1.0 - alpha])
        out[name] = {"low": float(low), "high": float(high)}
    return out


def paired_difference(
    y_true: Sequence[str],
    pred_a: Sequence[str],
    pred_b: Sequence[str],
    events: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Accuracy and balanced accuracy of A minus those of B, on the same test blocks.

    Both networks answered the same blocks, so the resamples are paired:
    each draws, class by class, the test events with replacement (the
    cluster bootstrap of :func:`event_bootstrap`) and scores both networks on
    them. Where a class has fewer than :data:`MIN_EVENTS_PER_CLASS` test
    events, it draws blocks instead, within each class, and says that this
    interval is the optimistic one (blocks of one event are not independent).
    Either way the interval covers the test set's sampling only, not the
    training seed.

    Returns
    -------
    dict
        ``accuracy`` and ``balanced_accuracy``, each ``{"difference", "low",
        "high"}``; ``level``, ``method``, ``optimistic`` (True for the block
        bootstrap), ``n_resamples``, ``seed``.
    """
    y_true, pred_a, pred_b, events = (np.asarray(v, dtype=str)
                                      for v in (y_true, pred_a, pred_b, events))
    if not (len(y_true) == len(pred_a) == len(pred_b) == len(events)) or not len(y_true):
        raise DataError("paired_difference needs the same non-empty test blocks for both networks")
    hit_a, hit_b = y_true == pred_a, y_true == pred_b
    classes = sorted(set(y_true))
    fewest = min(len(set(events[y_true == c])) for c in classes)
    optimistic = fewest < MIN_EVENTS_PER_CLASS
    groups = np.arange(len(y_true)).astype(str) if optimistic else events
    rng = np.random.default_rng([seed, 11])
    shape = (int(n_resamples), len(classes))
    correct_a, correct_b, total = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for k, c in enumerate(classes):
        rows = y_true == c
        table = pd.DataFrame({"g": groups[rows], "a": hit_a[rows], "b": hit_b[rows]}).groupby("g")
        sums = table.sum()
        sizes = table.size().to_numpy(float)
        draws = rng.integers(0, len(sizes), size=(int(n_resamples), len(sizes)))
        correct_a[:, k] = sums["a"].to_numpy(float)[draws].sum(axis=1)
        correct_b[:, k] = sums["b"].to_numpy(float)[draws].sum(axis=1)
        total[:, k] = sizes[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    out: dict[str, Any] = {}
    recall_a = [float(hit_a[y_true == c].mean()) for c in classes]
    recall_b = [float(hit_b[y_true == c].mean()) for c in classes]
    observed = {"accuracy": float(hit_a.mean() - hit_b.mean()),
                "balanced_accuracy": float(np.mean(recall_a) - np.mean(recall_b))}
    resampled = {"accuracy": (correct_a.sum(1) - correct_b.sum(1)) / total.sum(1),
                 "balanced_accuracy": (correct_a / total).mean(1) - (correct_b / total).mean(1)}
    for name, values in resampled.items():
        low, high = np.quantile(values, [alpha, 1.0 - alpha])
        out[name] = {"difference": observed[name], "low": float(low), "high": float(high)}
    out.update(level=level, optimistic=bool(optimistic), n_resamples=int(n_resamples),
               seed=int(seed),
               method=("paired bootstrap over test blocks within each class (optimistic: "
                       f"{fewest} test event(s) in the smallest class, too few to resample events)"
                       if optimistic else
                       "paired cluster bootstrap over test events, stratified by class"))
    return out


def evaluate_predictions(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    train_labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy with intervals, per-class scores, confusion matrix and clip-level accuracy.

    Parameters
    ----------
    predictions : pd.DataFrame
        One row per test block: ``clip_id``, ``label`` (true), ``predicted``
        and ``prob_<class>`` for every class; ``event_id`` (default: the
        clip) for the interval over events.
    classes : sequence of str
        The classes, in the model's output order.
    n_resamples, seed : int
        Bootstrap resamples and their seed.
    train_labels : sequence of str, optional
        The training blocks' labels, for the prior's chance level.

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
    events = (predictions["event_id"] if "event_id" in predictions.columns
              else predictions["clip_id"]).astype(str).to_numpy()
    return {
        "permutation": _above_chance(y_true, y_pred, events,
                                     predictions["clip_id"].astype(str).to_numpy(), seed=seed),
        "accuracy": float(correct.mean()) if len(correct) else math.nan,
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "chance": chance_levels(y_true, classes, train_labels),
        "predicted_majority": _majority(predictions),
        "interval_event": event_bootstrap(y_true, y_pred, events, n_resamples=n_resamples,
                                          seed=seed),
        "n_test_events": int(len(set(events))),
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


def _majority(predictions: pd.DataFrame) -> dict[str, Any]:
    """:func:`degeneracy` of the answers, and of each fold's where the predictions pool folds.

    A cross-validation pools the answers of several classifiers: each may
    answer one class (a different one per fold) while the pool looks varied.
    ``degenerate_folds`` counts the folds whose own answers are degenerate,
    of ``n_folds``; when every fold is, the pool is flagged too.
    """
    out = degeneracy(predictions["predicted"])
    if "fold" in predictions.columns and predictions["fold"].nunique() > 1:
        per_fold = [degeneracy(group["predicted"])
                    for _, group in predictions.groupby("fold", sort=True)]
        out.update(n_folds=len(per_fold), degenerate_folds=sum(f["degenerate"] for f in per_fold),
                   fold_shares=[f["share"] for f in per_fold])
        out["degenerate"] = bool(out["degenerate"] or out["degenerate_folds"] == len(per_fold))
    return out


def _above_chance(y_true: np.ndarray, y_pred: np.ndarray, events: np.ndarray, clips: np.ndarray,
                  *, seed: int) -> dict[str, Any]:
    """The permutation test over test events, or over clips where an event holds several classes."""
    mixed = pd.DataFrame({"e": events, "y": y_true}).groupby("e")["y"].nunique().max() > 1
    out = permutation_above_chance(y_true, y_pred, clips if mixed else events, seed=seed)
    if mixed:
        out["method"] += (" (over test clips: an event of this test set holds clips of several "
                          "classes)")
    return out


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
