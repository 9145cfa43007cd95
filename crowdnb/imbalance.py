"""Training on a skewed corpus: no rebalancing, class-weighted loss, balanced sampling.

The paper balances its classes by deleting random blocks and leaves
"experiments on unbalanced classes" to future work; the follow-up's real
corpus had more than 5,000 neutral images against about 300 of disapproval. A
deployed detector meets the natural proportions, so this module makes a
corpus with a controllable imbalance from the unbalanced kept blocks of the
preprocessing (:func:`skew_classes`: one or more classes subsampled to a ratio
against the largest of the others), deals it into event-disjoint, class
stratified folds (:func:`crowdnb.splits.event_folds`, the study's clip
protocol), so that every test block is scored once, out of fold, at the skewed
corpus's own proportions, and trains the MFCC statistics + logistic regression
baseline (:mod:`crowdnb.baselines`) with each of :data:`STRATEGIES`:

- ``none``: the skewed training set as it is;
- ``class-weighted loss``: each class's blocks weighted by ``n / (K n_c)``
  (scikit-learn's ``class_weight="balanced"``), so every class carries the
  same total weight in the loss;
- ``balanced sampling``: every block of the training set kept once and the
  smaller classes over-sampled, with replacement, to the largest class's count.

Beside the scores of :func:`crowdnb.evaluation.evaluate_predictions` (balanced
accuracy with its interval over events, chance, the best constant answer), it
gives the minority class's recall with a paired interval over the minority's
test events (:func:`minority_recall_difference`) and the calibration of the
top answer (:func:`reliability`: a reliability diagram and the expected
calibration error), since rebalancing buys minority recall by shifting the
probabilities away from the proportions the detector meets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError, ParameterError

__all__ = [
    "STRATEGIES",
    "skew_classes",
    "class_weights",
    "balanced_resample",
    "fit_predict",
    "Reliability",
    "reliability",
    "minority_recall_difference",
    "ImbalanceResult",
    "run_imbalance",
    "plot_recall_by_strategy",
    "plot_reliability",
    "imbalance_findings",
]

#: The rebalancing strategies, by the name the book gives them.
STRATEGIES = ("none", "class-weighted loss", "balanced sampling")


def _check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ParameterError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, "
                             f"got {strategy!r}")
    return strategy


def _check_ratio(name: str, value: Any) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number >= 1, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(ratio) or ratio < 1.0:
        raise ParameterError(f"{name} must be a finite number >= 1 (majority blocks per minority "
                             f"block), got {value!r}")
    return ratio


def skew_classes(blocks: pd.DataFrame, *, ratios: Mapping[str, float],
                 seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subsample classes so that each has ``ratio`` times fewer blocks than the largest other.

    The reference is the largest class not in ``ratios``, kept whole; a class
    with ratio ``r`` keeps ``round(n_reference / r)`` of its blocks. They are
    spread over the class's events in proportion to their blocks (largest
    remainders), at least one block per event while there are enough, so
    that the class keeps its variety of events and stays usable by event
    folds; within an event the blocks are drawn at random, seeded.

    Parameters
    ----------
    blocks : pd.DataFrame
        Kept blocks with ``label`` and ``clip_id`` (``event_id`` used when
        present): chapter 2's block table before any balancing.
    ratios : mapping of str to float >= 1
        ``{class: reference blocks per block of the class}``, e.g.
        ``{"anger": 17.0}`` for the follow-up's 5,000 neutral to 300
        disapproval images.
    seed : int
        Seed of the draw.

    Returns
    -------
    skewed : pd.DataFrame
        The kept rows, in the input's order, with a fresh index.
    report : pd.DataFrame
        Per class: ``label``, ``before``, ``after`` (blocks), ``events_before``,
        ``events_after`` and ``ratio`` (reference blocks / the class's blocks).

    Raises
    ------
    ParameterError
        When ``ratios`` is empty, names a class not in the table, gives a
        ratio below 1, subsamples every class (no reference), or leaves a
        class without a block.
    """
    for column in ("label", "clip_id"):
        if column not in blocks.columns:
            raise DataError(f"skew_classes: the block table has no {column!r} column")
    labels = blocks["label"].astype(str)
    classes = sorted(labels.unique())
    if not ratios:
        raise ParameterError("ratios is empty: name at least one class to subsample")
    unknown = sorted(set(map(str, ratios)) - set(classes))
    if unknown:
        raise ParameterError(f"minority class {unknown[0]!r} is not a class of the corpus "
                             f"(classes: {', '.join(classes)})")
    wanted = {str(c): _check_ratio(f"ratio of {c!r}", r) for c, r in ratios.items()}
    counts = labels.value_counts()
    others = [c for c in classes if c not in wanted]
    if not others:
        raise ParameterError("ratios subsamples every class: leave at least one class whole as "
                             "the reference")
    reference = int(max(counts[c] for c in others))
    events = (blocks["event_id"] if "event_id" in blocks.columns else blocks["clip_id"]).astype(str)
    rng = np.random.default_rng([int(seed), 12])
    keep = np.ones(len(blocks), dtype=bool)
    for c in classes:
        if c not in wanted:
            continue
        target = int(round(reference / wanted[c]))
        if target < 1:
            raise ParameterError(f"ratio of {c!r} ({wanted[c]:g}) leaves it no block: the largest "
                                 f"other class has only {reference} blocks")
        rows = np.flatnonzero(labels.to_numpy() == c)
        if target >= len(rows):
            continue
        names, sizes = np.unique(events.to_numpy()[rows], return_counts=True)
        share = _allocate(sizes, target, rng)
        keep[rows] = False
        for name, n in zip(names, share):
            in_event = rows[events.to_numpy()[rows] == name]
            keep[np.sort(rng.choice(in_event, size=int(n), replace=False))] = True
    skewed = blocks[keep].reset_index(drop=True)
    after = skewed["label"].astype(str).value_counts()
    skew_events = (skewed["event_id"] if "event_id" in skewed.columns else skewed["clip_id"]).astype(str)
    report = pd.DataFrame([{
        "label": c, "before": int(counts[c]), "after": int(after.get(c, 0)),
        "events_before": int(events[labels == c].nunique()),
        "events_after": int(skew_events[skewed["label"].astype(str) == c].nunique()),
        "ratio": reference / int(after.get(c, 0)),
    } for c in classes])
    return skewed, report


def _allocate(sizes: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """``target`` blocks over events of ``sizes`` blocks: one each first, the rest in proportion."""
    sizes = np.asarray(sizes, dtype=int)
    n_events = len(sizes)
    if target < n_events:  # too few for every event: one block from each of some events
        share = np.zeros(n_events, dtype=int)
        share[rng.choice(n_events, size=target, replace=False)] = 1
        return share
    share = np.ones(n_events, dtype=int)
    spare = sizes - 1
    rest = target - n_events
    if rest:
        exact = rest * spare / spare.sum()
        share += np.floor(exact).astype(int)
        left = target - share.sum()
        order = np.lexsort((np.arange(n_events), -(exact - np.floor(exact))))
        share[order[:left]] += 1
    return np.minimum(share, sizes)


def class_weights(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Per-class loss weights ``n / (K n_c)``, as scikit-learn's ``class_weight="balanced"``.

    Returns
    -------
    np.ndarray [shape=(K,)]
        In ``classes`` order; each class's blocks then carry a total weight of ``n / K``.

    Raises
    ------
    DataError
        When a class has no block (its weight would be infinite).
    """
    labels = np.asarray(labels, dtype=str)
    counts = np.array([np.sum(labels == c) for c in classes], dtype=float)
    if np.any(counts == 0):
        missing = [c for c, n in zip(classes, counts) if n == 0]
        raise DataError(f"class {missing[0]!r} has no training block: it cannot be weighted")
    return len(labels) / (len(classes) * counts)


def balanced_resample(labels: Sequence[str], *, seed: int = 0) -> np.ndarray:
    """Indices of a class-balanced training set: every block once, smaller classes over-sampled.

    Each class is brought to the largest class's count: all its blocks once,
    then the shortfall drawn from them with replacement (seeded). The order is
    shuffled.

    Returns
    -------
    np.ndarray [shape=(K * n_largest,), dtype=int]
    """
    labels = np.asarray(labels, dtype=str)
    rng = np.random.default_rng([int(seed), 13])
    classes, counts = np.unique(labels, return_counts=True)
    largest = int(counts.max())
    parts = []
    for c, n in zip(classes, counts):
        rows = np.flatnonzero(labels == c)
        parts.append(rows)
        if n < largest:
            parts.append(rng.choice(rows, size=largest - int(n), replace=True))
    return rng.permutation(np.concatenate(parts))


def fit_predict(train_x: np.ndarray, train_y: Sequence[str], test_x: np.ndarray,
                classes: Sequence[str], *, strategy: str, seed: int = 0) -> np.ndarray:
    """Standardised features into a logistic regression trained with one strategy.

    The MFCC baseline of :func:`crowdnb.baselines.mfcc_logistic_regression`
    (scikit-learn's defaults, C = 1), fed features directly (e.g.
    :func:`crowdnb.baselines.mfcc_statistics`).

    Parameters
    ----------
    train_x, test_x : np.ndarray [shape=(n, d)]
        Features of the training and test blocks.
    train_y : sequence of str [shape=(n_train,)]
    classes : sequence of str
        The output order.
    strategy : one of :data:`STRATEGIES`
    seed : int

    Returns
    -------
    np.ndarray [shape=(n_test, K)]
        Class probabilities (0 for a class absent from training).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _check_strategy(strategy)
    train_x, test_x = np.asarray(train_x, dtype=float), np.asarray(test_x, dtype=float)
    train_y = np.asarray(train_y, dtype=str)
    if strategy == "balanced sampling":
        index = balanced_resample(train_y, seed=seed)
        train_x, train_y = train_x[index], train_y[index]
    weight = "balanced" if strategy == "class-weighted loss" else None
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(max_iter=5000, random_state=seed, class_weight=weight))
    model.fit(train_x, train_y)
    probs = model.predict_proba(test_x)
    known = list(model.classes_)
    return np.stack([probs[:, known.index(c)] if c in known else np.zeros(len(probs))
                     for c in classes], axis=1)


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram of the top answer, and its expected calibration error.

    Attributes
    ----------
    edges : np.ndarray [shape=(n_bins + 1,)]
        Confidence bin edges, 0 to 1; a bin holds ``[low, high)``, the last ``[low, 1]``.
    count : np.ndarray [shape=(n_bins,), dtype=int]
        Test blocks per bin.
    confidence, accuracy : np.ndarray [shape=(n_bins,)]
        Mean top probability and share answered right in each bin (NaN when empty).
    ece : float
        ``sum_b (n_b / n) |accuracy_b - confidence_b|``, 0 to 1.
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float

    def to_dict(self) -> dict[str, Any]:
        nan = lambda v: [None if x != x else float(x) for x in v]  # noqa: E731 (JSON has no NaN)
        return {"edges": self.edges.tolist(), "count": self.count.tolist(),
                "confidence": nan(self.confidence), "accuracy": nan(self.accuracy),
                "ece": float(self.ece)}


def reliability(probs: np.ndarray, y_true: Sequence[str], classes: Sequence[str], *,
                n_bins: int = 10) -> Reliability:
    """Bin the test blocks by the probability of their top answer and compare with its accuracy.

    Parameters
    ----------
    probs : np.ndarray [shape=(n, K)]
        Class probabilities, rows summing to 1, in ``classes`` order.
    y_true : sequence of str [shape=(n,)]
    classes : sequence of str
    n_bins : int > 0
        Equal-width confidence bins over [0, 1].

    Raises
    ------
    ParameterError
        If ``n_bins`` is not a positive integer.
    DataError
        If the shapes disagree or there is no block.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ParameterError(f"n_bins must be a positive integer, got {n_bins!r}")
    probs = np.asarray(probs, dtype=float)
    y_true = np.asarray(y_true, dtype=str)
    if probs.ndim != 2 or probs.shape != (len(y_true), len(classes)) or not len(y_true):
        raise DataError(f"reliability: probabilities of shape {probs.shape} for {len(y_true)} "
                        f"blocks and {len(classes)} classes")
    confidence = probs.max(axis=1)
    correct = np.asarray(classes, dtype=str)[probs.argmax(axis=1)] == y_true
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    which = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(which, weights=correct.astype(float), minlength=n_bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] / len(y_true) * np.abs(acc[filled] - conf[filled])))
    return Reliability(edges=edges, count=count, confidence=conf, accuracy=acc, ece=ece)


def minority_recall_difference(y_true: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str],
                               events: Sequence[str], *, minority: str, n_resamples: int = 2000,
                               seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """The minority's recall under A and B, and A minus B, with a paired interval over its events.

    The minority's test events are drawn with replacement, with their blocks,
    and both strategies scored on the same draws. With fewer than
    :data:`crowdnb.evaluation.MIN_EVENTS_PER_CLASS` minority events no
    interval is given (``ok`` False, and ``note`` says why).

    Returns
    -------
    dict
        ``recall_a``, ``recall_b``, ``difference``, ``low``, ``high`` (None
        without interval), ``ok``, ``note``, ``n_blocks``, ``n_events``,
        ``level``, ``method``.
    """
    from .evaluation import MIN_EVENTS_PER_CLASS

    y_true, pred_a, pred_b, events = (np.asarray(v, dtype=str) for v in (y_true, pred_a, pred_b, events))
    rows = y_true == minority
    if not rows.any():
        raise DataError(f"minority class {minority!r} has no test block")
    table = pd.DataFrame({"e": events[rows], "a": pred_a[rows] == minority,
                          "b": pred_b[rows] == minority}).groupby("e")
    sums, sizes = table.sum(), table.size().to_numpy(float)
    out = {"recall_a": float(sums["a"].sum() / sizes.sum()),
           "recall_b": float(sums["b"].sum() / sizes.sum()),
           "n_blocks": int(rows.sum()), "n_events": int(len(sizes)), "level": level,
           "low": None, "high": None, "ok": True, "note": "",
           "method": "paired cluster (percentile) bootstrap over the minority's test events"}
    out["difference"] = out["recall_a"] - out["recall_b"]
    if len(sizes) < MIN_EVENTS_PER_CLASS:
        out.update(ok=False, note=(f"{len(sizes)} minority test event(s), fewer than the "
                                   f"{MIN_EVENTS_PER_CLASS} an interval over events needs"))
        return out
    rng = np.random.default_rng([int(seed), 14])
    draws = rng.integers(0, len(sizes), size=(int(n_resamples), len(sizes)))
    total = sizes[draws].sum(axis=1)
    values = (sums["a"].to_numpy(float)[draws].sum(axis=1)
              - sums["b"].to_numpy(float)[draws].sum(axis=1)) / total
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    out.update(low=float(low), high=float(high))
    return out


@dataclass
class ImbalanceResult:
    """What :func:`run_imbalance` found.

    Attributes
    ----------
    table : pd.DataFrame
        One row per strategy: ``strategy``, the scores of
        :func:`crowdnb.experiments.score_numbers`, ``recall_<class>`` for every
        class, ``minority_recall`` and its paired difference from ``none``
        (``recall_gain``, ``recall_gain_low``/``_high``, NaN without interval,
        ``recall_gain_ok``), ``ece``, ``minority_mean_probability`` (mean
        predicted probability of the minority over the test blocks) beside
        ``minority_share`` (its share of them).
    predictions : dict of str to pd.DataFrame
        Pooled out-of-fold predictions per strategy, with a ``fold`` column.
    reliability : dict of str to Reliability
    metrics : dict of str to dict
        :func:`crowdnb.evaluation.evaluate_predictions` per strategy.
    classes : list of str
    minority : str
    """

    table: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    reliability: dict[str, Reliability]
    metrics: dict[str, dict[str, Any]]
    classes: list[str]
    minority: str
    folds: list[tuple[pd.DataFrame, pd.DataFrame]] = field(default_factory=list)


def run_imbalance(blocks: pd.DataFrame, features: Mapping[str, np.ndarray], *, minority: str,
                  folds: int = 3, seed: int = 0, n_bins: int = 10,
                  strategies: Sequence[str] = STRATEGIES, n_resamples: int = 2000) -> ImbalanceResult:
    """Every strategy on the same event-disjoint folds of a (skewed) corpus, scored out of fold.

    Parameters
    ----------
    blocks : pd.DataFrame
        The corpus (e.g. :func:`skew_classes`'s): ``block_id``, ``clip_id``,
        ``label``, ``event_id`` when present.
    features : mapping of str to np.ndarray [shape=(d,)]
        Each block's features by ``block_id`` (e.g. MFCC statistics).
    minority : str
        The class whose recall the chapter follows.
    folds : int >= 2
        Event folds (:func:`crowdnb.splits.event_folds`); every class needs as many events.
    seed : int
        Seed of the folds, the models, the sampling and the bootstraps.
    n_bins : int > 0
        Bins of the reliability diagram.
    strategies : sequence of str
        Among :data:`STRATEGIES`; ``none`` first is the reference of the recall gains.

    Raises
    ------
    ParameterError
        For an unknown strategy or minority, or bad ``folds``/``n_bins``.
    """
    from .baselines import predictions_table
    from .evaluation import evaluate_predictions
    from .experiments import score_numbers
    from .splits import event_folds

    strategies = [_check_strategy(s) for s in strategies]
    if not strategies:
        raise ParameterError("strategies is empty: give at least one of " + ", ".join(STRATEGIES))
    classes = sorted(blocks["label"].astype(str).unique())
    if minority not in classes:
        raise ParameterError(f"minority must be a class of the corpus ({', '.join(classes)}), "
                             f"got {minority!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ParameterError(f"n_bins must be a positive integer, got {n_bins!r}")
    pairs = event_folds(blocks, k=folds, seed=seed)
    tables: dict[str, list[pd.DataFrame]] = {s: [] for s in strategies}
    for i, (train, test) in enumerate(pairs, start=1):
        train_x = np.stack([features[b] for b in train["block_id"].astype(str)])
        test_x = np.stack([features[b] for b in test["block_id"].astype(str)])
        for s in strategies:
            probs = fit_predict(train_x, train["label"].astype(str), test_x, classes, strategy=s,
                                seed=seed)
            tables[s].append(predictions_table(test, probs, classes).assign(fold=i))
    predictions = {s: pd.concat(t, ignore_index=True) for s, t in tables.items()}
    from .evaluation import paired_difference
    from .significance import holm, paired_permutation

    rows, curves, metrics = [], {}, {}
    reference = predictions[strategies[0]]
    for s, table in predictions.items():
        events = table["event_id"] if "event_id" in table else table["clip_id"]
        paired = paired_difference(table["label"], table["predicted"], reference["predicted"],
                                   events, seed=seed, n_resamples=n_resamples)["balanced_accuracy"]
        test = paired_permutation(table["label"], table["predicted"], reference["predicted"],
                                  events, seed=seed)
        evaluated = evaluate_predictions(table, classes, seed=seed, n_resamples=n_resamples,
                                         train_labels=blocks["label"].astype(str))
        probs = table[[f"prob_{c}" for c in classes]].to_numpy(float)
        curves[s] = reliability(probs, table["label"], classes, n_bins=n_bins)
        gain = minority_recall_difference(table["label"], table["predicted"], reference["predicted"],
                                          table["event_id"] if "event_id" in table else table["clip_id"],
                                          minority=minority, seed=seed, n_resamples=n_resamples)
        metrics[s] = evaluated
        rows.append({"strategy": s, **score_numbers(evaluated),
                     **{f"recall_{c}": evaluated["per_class"][c]["recall"] for c in classes},
                     "minority_recall": evaluated["per_class"][minority]["recall"],
                     "recall_gain": gain["difference"],
                     "recall_gain_low": math.nan if gain["low"] is None else gain["low"],
                     "recall_gain_high": math.nan if gain["high"] is None else gain["high"],
                     "recall_gain_ok": int(gain["ok"]), "recall_gain_note": gain["note"],
                     "minority_events": gain["n_events"], "minority_blocks": gain["n_blocks"],
                     "ece": curves[s].ece,
                     "minority_mean_probability": float(table[f"prob_{minority}"].mean()),
                     "minority_share": float((table["label"] == minority).mean()),
                     "vs_reference": paired["difference"], "vs_reference_low": paired["low"],
                     "vs_reference_high": paired["high"], "vs_reference_p": test["p"],
                     "vs_reference_min_p": test["min_p"], "n_events": test["n_events"]})
    # the page's family: each strategy against chance, and each against the reference
    frame = pd.DataFrame(rows)
    others = frame["strategy"] != strategies[0]
    raw = list(frame["p_above_chance"]) + list(frame.loc[others, "vs_reference_p"])
    adjusted = holm(raw)
    frame["p_holm"] = adjusted[:len(frame)]
    frame["vs_reference_p_holm"] = np.nan
    frame.loc[others, "vs_reference_p_holm"] = adjusted[len(frame):]
    frame["holm_m"] = len(raw)
    return ImbalanceResult(table=frame, predictions=predictions, reliability=curves,
                           metrics=metrics, classes=classes, minority=minority, folds=pairs)


def plot_recall_by_strategy(table: pd.DataFrame, classes: Sequence[str], *, minority: str | None = None,
                            ax=None):
    """Per-class recall (bars) and balanced accuracy (dashed line) of each strategy.

    Parameters
    ----------
    table : pd.DataFrame
        :attr:`ImbalanceResult.table`.
    classes : sequence of str
    minority : str, optional
        Drawn hatched.
    ax : matplotlib Axes, optional

    Returns
    -------
    Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    strategies = list(table["strategy"])
    width = 0.8 / len(classes)
    x = np.arange(len(strategies))
    for k, c in enumerate(classes):
        ax.bar(x + (k - (len(classes) - 1) / 2) * width, table[f"recall_{c}"], width,
               label=c + (" (minority)" if c == minority else ""),
               hatch="//" if c == minority else None, edgecolor="black", linewidth=0.5)
    for xi, bal in zip(x, table["balanced_accuracy"]):
        ax.hlines(bal, xi - 0.45, xi + 0.45, colors="black", linestyles="--", linewidth=1)
    ax.axhline(1.0 / len(classes), color="0.5", linestyle=":", linewidth=1)
    ax.set_xticks(x, strategies)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall (dashed: balanced accuracy,\ndotted: chance 1/K)")
    ax.legend(fontsize="small", ncols=len(classes), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return ax


def plot_reliability(curves: Mapping[str, Reliability], *, ax=None):
    """Reliability diagram: mean top probability against accuracy, bin by bin, per strategy.

    The diagonal is perfect calibration; marker area follows the bin's blocks.

    Returns
    -------
    Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.2), layout="constrained")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for name, curve in curves.items():
        filled = curve.count > 0
        size = 200 * curve.count[filled] / max(curve.count.sum(), 1)
        line, = ax.plot(curve.confidence[filled], curve.accuracy[filled], "-",
                        label=f"{name} (ECE {curve.ece:.3f})")
        ax.scatter(curve.confidence[filled], curve.accuracy[filled], s=size + 8, color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("confidence (mean top probability in the bin)")
    ax.set_ylabel("accuracy in the bin")
    ax.legend(fontsize="small", loc="upper left")
    return ax


def imbalance_findings(table: pd.DataFrame, *, minority: str) -> str:
    """What each strategy did against no rebalancing, in sentences chosen by the numbers.

    Per strategy: its verdict (:func:`crowdnb.report.verdict`: a classifier
    answering one class is called that), its accuracy against the best
    constant answer, the minority recall and its gain over ``none`` (called a
    rise or a fall only when the paired interval over minority events
    excludes 0), the paired test of its balanced accuracy against ``none``
    (:func:`crowdnb.report.paired_comparison`, Holm-adjusted with the page's
    other tests) and the calibration (ECE, and the
    mean predicted probability of the minority against its share).

    Returns
    -------
    str
        Markdown bullets, one per strategy.
    """
    from .report import paired_comparison, verdict

    rows = table.set_index("strategy")
    if "none" not in rows.index:
        raise DataError("imbalance_findings: the table has no 'none' strategy to compare with")
    base = rows.loc["none"]
    lines = []
    for name, row in rows.iterrows():
        text = verdict(row, name=f"With {name}, the classifier" if name != "none"
                       else "Without rebalancing, the classifier")
        text += (f" Its accuracy is {row['accuracy']:.3f} against {row['chance_constant']:.3f} for "
                 "always answering the largest class"
                 + (", no better than that constant answer." if row["accuracy"] <= row["chance_constant"]
                    else "."))
        text += (f" The minority class, {minority}, is recalled for {row['minority_recall']:.3f} of its "
                 f"{int(row['minority_blocks'])} test blocks ({int(row['minority_events'])} events).")
        if name != "none":
            gain, low, high = row["recall_gain"], row["recall_gain_low"], row["recall_gain_high"]
            if row["recall_gain_low"] == row["recall_gain_high"] == gain == 0:
                text += (" In every minority event it recalls as many blocks as no rebalancing does: "
                         "its minority recall is unchanged.")
            elif not row["recall_gain_ok"]:
                text += (f" Against no rebalancing that is {gain:+.3f}, which cannot be told from noise: "
                         f"{row['recall_gain_note']}.")
            else:
                where = f"{gain:+.3f}, paired 95 % interval over its test events [{low:+.3f}, {high:+.3f}]"
                if low > 0:
                    text += f" That raises the minority's recall over no rebalancing: {where}."
                elif high < 0:
                    text += f" That lowers the minority's recall against no rebalancing: {where}."
                else:
                    text += (f" Against no rebalancing the minority's recall changes by {where}, an "
                             "interval that contains 0.")
            text += " " + paired_comparison(
                {"balanced_accuracy": {"difference": row["vs_reference"],
                                       "low": row["vs_reference_low"],
                                       "high": row["vs_reference_high"]},
                 "p": row["vs_reference_p"], "p_holm": row["vs_reference_p_holm"],
                 "holm_m": row["holm_m"], "min_p": row["vs_reference_min_p"],
                 "n_events": row["n_events"], "n_test": row["n_test"]},
                first_name=f"With {name}, the classifier", second_name="no rebalancing")
        text += (f" Its expected calibration error is {row['ece']:.3f}"
                 + ("" if name == "none" else
                    f" ({'higher' if row['ece'] > base['ece'] else 'lower'} than the "
                    f"{base['ece']:.3f} without rebalancing)")
                 + f"; it gives the minority a mean probability of {row['minority_mean_probability']:.3f} "
                 f"where its share of the test blocks is {row['minority_share']:.3f}"
                 + (", over-predicting it at the natural proportions."
                    if row["minority_mean_probability"] > 1.5 * row["minority_share"] else "."))
        title = "No rebalancing" if name == "none" else name[0].upper() + name[1:]
        lines.append(f"- **{title}**. {text}")
    return "\n".join(lines) + "\n"
