"""Tests that answer the book's questions: above chance, better than another, and many at once.

The blocks of one event (a crowd, a recording) succeed or fail together, so
every test here moves whole test events, never single blocks:

- :func:`permutation_above_chance`: is a classifier's balanced accuracy above
  what it would score if its answers had nothing to do with the classes? The
  true labels are permuted across the test events (each event keeps its
  blocks and the classifier's answers), which breaks any link between what was
  heard and what was answered.
- :func:`paired_permutation`: does classifier A score higher than B on the same
  test blocks? Under the null hypothesis the two are exchangeable, so each
  event's answers of A and B are swapped at random, together.
- :func:`holm`: Holm's step-down adjustment of a family of p-values (a
  chapter's comparisons), which keeps the chance of any false claim in the
  family below the level.

Monte Carlo p-values are ``(1 + hits) / (1 + n)``, never 0; each result says
the smallest p-value its events allow, so that "not significant" is not
mistaken for "no effect" when the test could not have succeeded.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["permutation_above_chance", "paired_permutation", "holm", "format_p", "LEVEL"]

#: The level of every test in the book.
LEVEL = 0.05


def format_p(p: float) -> str:
    """A p-value as a page writes it: ``p = 0.012``, or ``p < 0.001``."""
    return "p < 0.001" if p < 1e-3 else f"p = {p:.3f}"


def _events_table(y_true: np.ndarray, events: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The classes, each test event's class index, and the event of each block (as indices)."""
    table = pd.DataFrame({"label": y_true, "event": events})
    labels_per_event = table.groupby("event", sort=True)["label"].agg(lambda s: sorted(set(s)))
    mixed = labels_per_event[labels_per_event.map(len) > 1]
    if len(mixed):
        raise DataError(f"test event {mixed.index[0]!r} holds blocks of several classes "
                        f"({', '.join(mixed.iloc[0])}); a permutation over events needs one class "
                        "per event")
    classes = sorted(set(y_true))
    event_class = labels_per_event.map(lambda v: classes.index(v[0])).to_numpy(int)
    event_index = pd.Index(labels_per_event.index).get_indexer(events)
    return classes, event_class, event_index


def _arrangements(event_class: np.ndarray) -> float:
    """How many distinct ways the class labels can be laid over the events."""
    counts = np.bincount(event_class)
    return math.exp(math.lgamma(len(event_class) + 1) - sum(math.lgamma(c + 1) for c in counts))


def permutation_above_chance(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    events: Sequence[str],
    *,
    n_permutations: int = 4999,
    seed: int = 0,
) -> dict[str, Any]:
    """Event-level permutation test of a balanced accuracy against chance.

    Parameters
    ----------
    y_true, y_pred : sequence of str
        True and predicted class of each test block.
    events : sequence of str
        The event (crowd, recording) of each block; every event holds one class.
    n_permutations : int > 0
        Random relabellings of the events.
    seed : int
        Seed of the relabellings.

    Returns
    -------
    dict
        ``balanced_accuracy`` (observed), ``null_mean`` (its mean under the
        relabellings), ``p_above`` and ``p_below`` (one-sided Monte Carlo
        p-values: as high / as low as observed by chance), ``min_p`` (the
        smallest p-value this many events allow), ``n_events``,
        ``n_permutations``, ``seed``, ``method``.

    Raises
    ------
    DataError
        If there are no blocks, or an event holds several classes.
    """
    y_true, y_pred, events = (np.asarray(v, dtype=str) for v in (y_true, y_pred, events))
    if not len(y_true) or not (len(y_true) == len(y_pred) == len(events)):
        raise DataError("permutation_above_chance needs one true label, answer and event per block")
    classes, event_class, event_index = _events_table(y_true, events)
    k, n_events = len(classes), len(event_class)
    # per event: its blocks and how many of them were answered with each class
    answered = np.zeros((n_events, k))
    known = np.isin(y_pred, classes)
    np.add.at(answered, (event_index[known], np.searchsorted(classes, y_pred[known])), 1.0)
    sizes = np.bincount(event_index, minlength=n_events).astype(float)

    def balanced(labels: np.ndarray) -> np.ndarray:
        """Balanced accuracy for each row of event labellings [shape=(p, n_events)]."""
        rows = np.arange(len(labels))[:, None] * k + labels            # (p, E): row and class
        hits = np.bincount(rows.ravel(), weights=answered[np.arange(n_events), labels].ravel(),
                           minlength=len(labels) * k).reshape(-1, k)
        blocks = np.bincount(rows.ravel(), weights=np.broadcast_to(sizes, labels.shape).ravel(),
                             minlength=len(labels) * k).reshape(-1, k)
        return (hits / blocks).mean(axis=1)

    observed = float(balanced(event_class[None])[0])
    rng = np.random.default_rng([seed, 23])
    null = balanced(rng.permuted(np.tile(event_class, (int(n_permutations), 1)), axis=1))
    tolerance = 1e-12
    return {
        "balanced_accuracy": observed,
        "null_mean": float(null.mean()),
        "p_above": float((1 + np.sum(null >= observed - tolerance)) / (1 + len(null))),
        "p_below": float((1 + np.sum(null <= observed + tolerance)) / (1 + len(null))),
        "min_p": float(max(1.0 / _arrangements(event_class), 1.0 / (1 + len(null)))),
        "n_events": int(n_events),
        "n_permutations": int(n_permutations),
        "seed": int(seed),
        "method": ("permutation test over test events (true labels permuted across events, "
                   "each event with its blocks and answers), balanced accuracy"),
    }


def paired_permutation(
    y_true: Sequence[str],
    pred_a: Sequence[str],
    pred_b: Sequence[str],
    events: Sequence[str],
    *,
    n_permutations: int = 4999,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired permutation test of A's balanced accuracy minus B's, on the same blocks.

    Under the null hypothesis A and B answer equally well, so for every test
    event the two answers can be swapped (all of the event's blocks
    together); the p-value is two-sided.

    Returns
    -------
    dict
        ``difference`` (A minus B, balanced accuracy), ``p`` (two-sided Monte
        Carlo p-value), ``min_p``, ``n_events``, ``n_permutations``, ``seed``,
        ``method``.
    """
    y_true, pred_a, pred_b, events = (np.asarray(v, dtype=str)
                                      for v in (y_true, pred_a, pred_b, events))
    if not len(y_true) or not (len(y_true) == len(pred_a) == len(pred_b) == len(events)):
        raise DataError("paired_permutation needs the same non-empty test blocks for both")
    classes, event_class, event_index = _events_table(y_true, events)
    k, n_events = len(classes), len(event_class)
    class_blocks = np.bincount(np.searchsorted(classes, y_true), minlength=k).astype(float)
    gain = np.bincount(event_index, weights=(y_true == pred_a).astype(float) -
                       (y_true == pred_b).astype(float), minlength=n_events)
    # each event's share of the difference of balanced accuracy
    share = gain / (class_blocks[event_class] * k)
    observed = float(share.sum())
    rng = np.random.default_rng([seed, 29])
    signs = rng.choice(np.array([-1.0, 1.0]), size=(int(n_permutations), n_events))
    null = signs @ share
    moving = int(np.count_nonzero(share))
    return {
        "difference": observed,
        "p": float((1 + np.sum(np.abs(null) >= abs(observed) - 1e-12)) / (1 + len(null))),
        "min_p": float(max(2.0 ** (1 - moving), 1.0 / (1 + len(null)))) if moving else 1.0,
        "n_events": int(n_events),
        "n_permutations": int(n_permutations),
        "seed": int(seed),
        "method": ("paired permutation test over test events (the two answers of each event "
                   "swapped at random), balanced accuracy, two-sided"),
    }


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    The smallest p-value is multiplied by m, the next by m - 1, and so on,
    each kept at least as large as the one before and at most 1; a family of
    m tests whose adjusted p-values fall below the level makes a false claim
    with probability at most the level (Holm 1979). NaN entries (tests not
    run) stay NaN and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    run = np.flatnonzero(~np.isnan(p))
    order = run[np.argsort(p[run], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else p[order]
    out[order] = np.minimum(adjusted, 1.0)
    return out
