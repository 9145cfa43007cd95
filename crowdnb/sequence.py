"""Goal or no goal from the evolution of an action: models over its sequence of blocks.

The paper's football study classifies blocks one at a time, and explains its
near-chance result by the build-up every action shares: "the evolution of the
action should be considered, instead of simply focusing on the separate sound
blocks" (Franzoni & Biondi 2019). This module builds that comparison, per action:

- :func:`action_sequences`: every action as the time-ordered sequence of its
  kept blocks, each described by its MFCC statistics
  (:func:`crowdnb.baselines.mfcc_statistics` of the block's mel PSD, made as
  the preprocessing makes it);
- :func:`action_folds`: the action-disjoint folds of the football study's clip
  split, read from its folder (:func:`crowdnb.baselines.study_splits`);
- three methods, trained and tested on the same folds
  (:func:`cross_validate`): the **block-wise** MFCC + logistic regression
  baseline (every block labelled with its action's outcome), the **vote** of
  its block predictions per action (:func:`crowdnb.evaluation.clip_vote`),
  and a **temporal model**, a small 1-D convolution over the sequence of
  blocks (:class:`TemporalRecipe`);
- :func:`early_decision_curve`: what each per-action method scores when it
  has heard only the first ``t`` seconds of every action, for a grid of ``t``;
- sentences chosen by the numbers (:func:`action_verdict`,
  :func:`audible_sentence`, :func:`buildup_sentence`).

Every per-action score comes from :func:`crowdnb.evaluation.evaluate_predictions`
on one row per action, so it carries the chance levels, the balanced
accuracy, the one-class flag and the interval over actions of every other
score of the study.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import audio, spectrogram
from .baselines import mfcc_statistics, study_splits
from .config import PreprocessConfig
from .errors import DataError, ParameterError
from .evaluation import balanced_accuracy, clip_vote, evaluate_predictions
from .experiments import score_numbers

__all__ = [
    "ActionSequences",
    "TemporalRecipe",
    "BLOCKWISE",
    "VOTE",
    "TEMPORAL",
    "action_sequences",
    "action_folds",
    "blockwise_probabilities",
    "temporal_probabilities",
    "cross_validate",
    "permutation_through_cv",
    "score_methods",
    "early_decision_curve",
    "first_audible",
    "action_verdict",
    "audible_sentence",
    "buildup_sentence",
    "temporal_seeds",
    "seed_sentence",
    "plot_early_decision",
]

#: The methods, by the name the book gives them.
BLOCKWISE = "block-wise MFCC + LR"
VOTE = "vote of the block predictions"
TEMPORAL = "1-D CNN over the blocks"


@dataclass(frozen=True)
class ActionSequences:
    """Actions as sequences of per-block features, in time order.

    Attributes
    ----------
    action_ids : tuple of str
        The actions (``clip_id``).
    labels, events : np.ndarray [shape=(n_actions,), dtype=str]
        Each action's outcome, and the unit the intervals resample (the
        football study resamples actions: one match gives one event).
    features : tuple of np.ndarray [shape=(n_blocks_i, n_features)]
        Each action's blocks, in time order.
    starts_s, ends_s : tuple of np.ndarray [shape=(n_blocks_i,)]
        Each block's time span from the start of its action, s.
    """

    action_ids: tuple
    labels: np.ndarray
    events: np.ndarray
    features: tuple
    starts_s: tuple
    ends_s: tuple

    def __post_init__(self) -> None:
        n = len(self.action_ids)
        if not n:
            raise DataError("ActionSequences: no action")
        if not (len(self.labels) == len(self.events) == len(self.features) == len(self.starts_s)
                == len(self.ends_s) == n):
            raise DataError("ActionSequences: action_ids, labels, events, features and block times "
                            "differ in length")
        widths = {np.shape(f)[1] if np.ndim(f) == 2 else -1 for f in self.features}
        if len(widths) != 1 or -1 in widths:
            raise DataError("ActionSequences: every action's features must be a 2-D array "
                            "[n_blocks, n_features] with the same n_features")
        for action, f, start, end in zip(self.action_ids, self.features, self.starts_s, self.ends_s):
            if len(f) == 0:
                raise DataError(f"ActionSequences: action {action!r} has no block")
            if not (len(start) == len(end) == len(f)) or np.any(np.diff(start) < 0):
                raise DataError(f"ActionSequences: action {action!r}: block times do not match its "
                                "blocks or are not in time order")
            if not np.all(np.isfinite(f)):
                raise DataError(f"ActionSequences: action {action!r} has non-finite features")

    def __len__(self) -> int:
        return len(self.action_ids)

    @classmethod
    def from_lists(cls, action_ids, labels, features, starts_s, ends_s, events=None) -> "ActionSequences":
        """From plain sequences; ``events`` defaults to the actions themselves."""
        ids = tuple(str(a) for a in action_ids)
        return cls(action_ids=ids, labels=np.asarray(labels, dtype=str),
                   events=np.asarray(ids if events is None else events, dtype=str),
                   features=tuple(np.asarray(f, dtype=np.float64) for f in features),
                   starts_s=tuple(np.asarray(s, dtype=float) for s in starts_s),
                   ends_s=tuple(np.asarray(e, dtype=float) for e in ends_s))

    def select(self, action_ids: Sequence[str]) -> "ActionSequences":
        """The named actions, in the order given."""
        index = {a: i for i, a in enumerate(self.action_ids)}
        unknown = [a for a in action_ids if a not in index]
        if unknown:
            raise DataError(f"no action {unknown[0]!r} in these sequences ({len(unknown)} unknown)")
        rows = [index[a] for a in action_ids]
        return ActionSequences(
            action_ids=tuple(self.action_ids[i] for i in rows), labels=self.labels[rows],
            events=self.events[rows], features=tuple(self.features[i] for i in rows),
            starts_s=tuple(self.starts_s[i] for i in rows), ends_s=tuple(self.ends_s[i] for i in rows))

    def heard(self, seconds: float | Mapping[str, float]) -> "ActionSequences":
        """Each action cut to the blocks that end within its first ``seconds``.

        ``seconds`` is one time for all actions or a time per action (for
        instance the shot, :func:`crowdnb.evaluation.shot_times`). An action
        shorter than that keeps all its blocks.

        Raises
        ------
        ParameterError
            When an action would keep no block (``seconds`` shorter than its
            first block).
        """
        rows = []
        for i, action in enumerate(self.action_ids):
            limit = float(seconds[action] if isinstance(seconds, Mapping) else seconds)
            keep = self.ends_s[i] <= limit + 1e-6
            if not keep.any():
                raise ParameterError(
                    f"seconds: {limit:g} s leaves action {action!r} no block (its first block ends "
                    f"at {self.ends_s[i][0]:g} s)")
            rows.append(keep)
        return ActionSequences(
            action_ids=self.action_ids, labels=self.labels, events=self.events,
            features=tuple(f[k] for f, k in zip(self.features, rows)),
            starts_s=tuple(s[k] for s, k in zip(self.starts_s, rows)),
            ends_s=tuple(e[k] for e, k in zip(self.ends_s, rows)))

    def durations_s(self) -> np.ndarray:
        """The end of each action's last block, s."""
        return np.array([e[-1] for e in self.ends_s])


def action_sequences(actions: pd.DataFrame, *, config: PreprocessConfig = PreprocessConfig(),
                     progress: bool = False) -> ActionSequences:
    """Every action's kept blocks, in time order, as MFCC statistics.

    Each action (``actions``: ``clip_id``, ``label``, absolute ``path``) is
    loaded, cut and loudness-normalised as the preprocessing does
    (:func:`crowdnb.audio.normalised_blocks` with ``config.audio``); each kept
    block gets :func:`crowdnb.spectrogram.block_spectrum` (``config.spectrogram``)
    and :func:`crowdnb.baselines.mfcc_statistics`: the same features as the
    MFCC baseline of the baselines chapter, for every kept block (the football
    study's class balancing deleted some blocks; a sequence needs them all).
    Each action is its own event, as in the football study.

    Returns
    -------
    ActionSequences
        Features ``[n_blocks, 2 * 20]`` per action.

    Raises
    ------
    DataError
        When a column is missing or an action has no kept block.
    """
    from tqdm import tqdm

    missing = [c for c in ("clip_id", "label", "path") if c not in actions.columns]
    if missing:
        raise DataError(f"action_sequences: the actions table has no {', '.join(missing)} column")
    ids, labels, features, starts, ends = [], [], [], [], []
    for row in tqdm(actions.itertuples(index=False), total=len(actions), desc="actions",
                    disable=not progress):
        y, sr = audio.load_clip(row.path, sr=config.audio.sr)
        blocks = [b for b in audio.normalised_blocks(y, sr, config=config.audio) if b.kept]
        if not blocks:
            raise DataError(f"action {row.clip_id!r} ({row.path}) has no kept block")
        S = np.stack([spectrogram.block_spectrum(b.samples, sr, spectrogram=config.spectrogram)
                      for b in blocks])
        ids.append(str(row.clip_id))
        labels.append(str(row.label))
        features.append(mfcc_statistics(S))
        starts.append([b.start_s for b in blocks])
        ends.append([b.end_s for b in blocks])
    return ActionSequences.from_lists(ids, labels, features, starts, ends)


def action_folds(folder: str | os.PathLike, sequences: ActionSequences) -> list[tuple[list[str], list[str]]]:
    """The football study's action-disjoint folds, as (training, test) actions.

    ``folder`` is the clip split's experiment folder (its ``fold_<i>/``
    ``train_blocks.csv``). A fold's training actions are those with a block
    in its ``train_blocks.csv``; its test actions are all the others, with
    all their blocks (the study balanced its test blocks by deleting some: a
    sequence needs them all).

    Raises
    ------
    DataError
        When an action is tested in more than one fold, a fold tests nothing,
        or a fold's training actions lack a class.
    """
    folds = []
    tested: dict[str, int] = {}
    for i, (train, _) in enumerate(study_splits(folder), start=1):
        train_ids = set(train["clip_id"].astype(str))
        unknown = sorted(train_ids - set(sequences.action_ids))
        if unknown:
            raise DataError(f"{folder}: fold {i} trains on action {unknown[0]!r}, which is not among "
                            "the actions of this run")
        train_list = [a for a in sequences.action_ids if a in train_ids]
        test_list = [a for a in sequences.action_ids if a not in train_ids]
        if not test_list:
            raise DataError(f"{folder}: fold {i} leaves no action to test")
        if len(set(sequences.select(train_list).labels)) < 2:
            raise DataError(f"{folder}: fold {i}'s training actions hold one class only")
        for a in test_list:
            if a in tested:
                raise DataError(f"{folder}: action {a!r} is tested in folds {tested[a]} and {i}: the "
                                "folds are not action-disjoint")
            tested[a] = i
        folds.append((train_list, test_list))
    return folds


def _check_classes(classes: Sequence[str], sequences: ActionSequences, where: str) -> list[str]:
    classes = [str(c) for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ParameterError(f"classes: need at least two distinct classes, got {classes}")
    extra = sorted(set(map(str, sequences.labels)) - set(classes))
    if extra:
        raise DataError(f"{where}: label {extra[0]!r} is not among the classes {classes}")
    return classes


def blockwise_probabilities(train: ActionSequences, test: ActionSequences, classes: Sequence[str], *,
                            seed: int = 0) -> list[np.ndarray]:
    """The block-wise baseline's class probabilities, block by block.

    Every training block takes its action's label; the features are
    standardised and fed to scikit-learn's logistic regression with its
    defaults (C=1): the recipe of
    :func:`crowdnb.baselines.mfcc_logistic_regression`, on the same MFCC
    statistics.

    Returns
    -------
    list of np.ndarray [shape=(n_blocks_i, n_classes)]
        One array per test action, in ``classes`` order.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = _check_classes(classes, train, "blockwise_probabilities")
    x = np.concatenate(train.features)
    y = np.concatenate([np.full(len(f), label) for f, label in zip(train.features, train.labels)])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    model.fit(x, y)
    order = [list(model.classes_).index(c) if c in model.classes_ else None for c in classes]
    out = []
    for f in test.features:
        probs = model.predict_proba(f)
        out.append(np.stack([probs[:, i] if i is not None else np.zeros(len(f)) for i in order], axis=1))
    return out


@dataclass(frozen=True)
class TemporalRecipe:
    """The temporal model and its training, fixed a priori (before any result was seen).

    The per-block features, standardised with the training blocks' mean and
    deviation, go through one 1-D convolution over time (``channels``
    filters spanning ``kernel_blocks`` consecutive blocks, zero-padded at both
    ends so that a filter can see where the action ends), a ReLU, then the
    maximum and the mean over the action's blocks (so actions of any length
    give one vector, and a pattern is found wherever it comes), dropout and a
    linear layer to the classes. Adam on the cross-entropy of whole actions,
    full batch, ``epochs`` steps at learning rate ``lr`` with weight decay
    ``weight_decay``; seeded, on the CPU. Small on purpose: a fold trains on
    about a dozen actions.
    """

    channels: int = 16
    kernel_blocks: int = 3
    dropout: float = 0.2
    epochs: int = 200
    lr: float = 1e-2
    weight_decay: float = 1e-2

    def __post_init__(self) -> None:
        for name in ("channels", "kernel_blocks", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.kernel_blocks % 2 == 0:
            raise ParameterError(f"kernel_blocks must be odd, got {self.kernel_blocks!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ParameterError(f"lr must be > 0 and weight_decay >= 0, got {self.lr!r}, "
                                 f"{self.weight_decay!r}")


def _padded(sequences: ActionSequences, mean: np.ndarray, std: np.ndarray):
    import torch

    longest = max(len(f) for f in sequences.features)
    x = np.zeros((len(sequences), sequences.features[0].shape[1], longest), dtype=np.float32)
    mask = np.zeros((len(sequences), longest), dtype=bool)
    for i, f in enumerate(sequences.features):
        x[i, :, : len(f)] = ((f - mean) / std).T
        mask[i, : len(f)] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def temporal_probabilities(train: ActionSequences, test: ActionSequences, classes: Sequence[str], *,
                           seed: int = 0, recipe: TemporalRecipe = TemporalRecipe()) -> np.ndarray:
    """The temporal model's class probabilities, one row per test action.

    See :class:`TemporalRecipe`. The same seed gives the same probabilities.

    Returns
    -------
    np.ndarray [shape=(n_test_actions, n_classes)]
    """
    import torch
    from torch import nn

    classes = _check_classes(classes, train, "temporal_probabilities")
    blocks = np.concatenate(train.features)
    mean, std = blocks.mean(axis=0), blocks.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train, m_train = _padded(train, mean, std)
    x_test, m_test = _padded(test, mean, std)
    index = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([index[v] for v in train.labels])

    class Net(nn.Module):
        def __init__(self, n_features: int):
            super().__init__()
            self.conv = nn.Conv1d(n_features, recipe.channels, recipe.kernel_blocks,
                                  padding=recipe.kernel_blocks // 2)
            self.drop = nn.Dropout(recipe.dropout)
            self.out = nn.Linear(2 * recipe.channels, len(classes))

        def forward(self, x, mask):
            h = torch.relu(self.conv(x))
            m = mask[:, None, :]
            top = h.masked_fill(~m, -math.inf).amax(dim=2)
            mean_h = (h * m).sum(dim=2) / m.sum(dim=2)
            return self.out(self.drop(torch.cat([top, mean_h], dim=1)))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = Net(x_train.shape[1])
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        for _ in range(int(recipe.epochs)):
            optimizer.zero_grad()
            loss_fn(model(x_train, m_train), y).backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode():
            return torch.softmax(model(x_test, m_test), dim=1).numpy().astype(np.float64)


def _rows(test: ActionSequences, probs: np.ndarray, classes: Sequence[str], fold: int) -> pd.DataFrame:
    table = pd.DataFrame({"clip_id": list(test.action_ids), "event_id": test.events,
                          "label": test.labels,
                          "predicted": [classes[i] for i in np.argmax(probs, axis=1)],
                          "n_blocks": [len(f) for f in test.features],
                          "end_s": test.durations_s(), "fold": fold})
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i]
    return table


def cross_validate(sequences: ActionSequences, folds: Sequence[tuple[Sequence[str], Sequence[str]]],
                   classes: Sequence[str], *, seed: int = 0,
                   recipe: TemporalRecipe = TemporalRecipe(),
                   temporal: bool = True) -> dict[str, pd.DataFrame]:
    """Every method's out-of-fold predictions on the given folds (``temporal``: the temporal model too).

    Returns
    -------
    dict
        ``{BLOCKWISE: one row per test block, VOTE: one row per test action,
        TEMPORAL: one row per test action}``; each with ``clip_id``,
        ``event_id``, ``label``, ``predicted``, ``prob_<class>`` and ``fold``,
        the form :func:`crowdnb.evaluation.evaluate_predictions` reads.
    """
    classes = _check_classes(classes, sequences, "cross_validate")
    if not folds:
        raise ParameterError("folds: need at least one (training, test) pair of actions")
    out: dict[str, list[pd.DataFrame]] = {BLOCKWISE: [], VOTE: [], **({TEMPORAL: []} if temporal else {})}
    for fold, (train_ids, test_ids) in enumerate(folds, start=1):
        overlap = set(train_ids) & set(test_ids)
        if overlap:
            raise DataError(f"folds: fold {fold} trains and tests on action {sorted(overlap)[0]!r}")
        train, test = sequences.select(list(train_ids)), sequences.select(list(test_ids))
        block_probs = blockwise_probabilities(train, test, classes, seed=seed)
        for i, probs in enumerate(block_probs):
            out[BLOCKWISE].append(pd.DataFrame({
                "clip_id": test.action_ids[i], "event_id": test.events[i], "label": test.labels[i],
                "start_s": test.starts_s[i], "end_s": test.ends_s[i],
                "predicted": [classes[k] for k in np.argmax(probs, axis=1)], "fold": fold,
                **{f"prob_{c}": probs[:, k] for k, c in enumerate(classes)}}))
        votes = [clip_vote([classes[k] for k in np.argmax(p, axis=1)], p.mean(axis=0), classes)
                 for p in block_probs]
        # the vote's "probability": its share of the blocks, as a confidence to plot
        vote_probs = np.array([[np.mean(np.argmax(p, axis=1) == k) for k in range(len(classes))]
                               for p in block_probs])
        vote_table = _rows(test, vote_probs, classes, fold)
        vote_table["predicted"] = votes
        out[VOTE].append(vote_table)
        if temporal:
            out[TEMPORAL].append(_rows(test, temporal_probabilities(train, test, classes, seed=seed,
                                                                    recipe=recipe), classes, fold))
    return {name: pd.concat(tables, ignore_index=True) for name, tables in out.items()}


def permutation_through_cv(sequences: ActionSequences,
                           folds: Sequence[tuple[Sequence[str], Sequence[str]]],
                           classes: Sequence[str], *, n_permutations: int = 199,
                           seed: int = 0) -> dict[str, dict[str, Any]]:
    """The block-wise baseline and its vote against their own null: the whole cross-validation rerun
    on labels permuted across actions.

    On few actions, cross-validation of labels that carry nothing does not
    centre on 1 / K: a fold's training set holds fewer of its test actions'
    class, so a model that learnt nothing leans to the other class and scores
    *below* chance. Permuting the actions' labels and running the same folds
    again measures that null as it is, and a score is set against it.

    Returns
    -------
    dict
        Per method (:data:`BLOCKWISE`, :data:`VOTE`): ``balanced_accuracy``
        (observed), ``null_mean``, ``null_low``/``null_high`` (the null's
        central 95 %), ``p_above``/``p_below`` (one-sided Monte Carlo
        p-values), ``n_permutations`` (relabellings drawn; those that would
        leave a fold's training set without a class are redrawn).
    """
    def scores(seqs: ActionSequences) -> dict[str, float]:
        found = cross_validate(seqs, folds, classes, seed=seed, temporal=False)
        return {m: balanced_accuracy(t["label"], t["predicted"]) for m, t in found.items()}

    observed = scores(sequences)
    rng = np.random.default_rng([seed, 31])
    null = {m: [] for m in observed}
    index = {a: i for i, a in enumerate(sequences.action_ids)}
    trains = [[index[a] for a in train] for train, _ in folds]
    for _ in range(50 * int(n_permutations)):
        labels = rng.permutation(sequences.labels)
        if any(len(set(labels[rows])) < len(classes) for rows in trains):
            continue  # a fold would train on one class: not a labelling the folds can learn from
        for m, value in scores(replace(sequences, labels=labels)).items():
            null[m].append(value)
        if len(null[BLOCKWISE]) == int(n_permutations):
            break
    if not null[BLOCKWISE]:
        raise DataError("permutation_through_cv: no relabelling of the actions leaves every fold's "
                        "training set with every class (too few actions)")
    out = {}
    for m, value in observed.items():
        values = np.asarray(null[m])
        out[m] = {"balanced_accuracy": value, "null_mean": float(values.mean()),
                  "null_low": float(np.quantile(values, 0.025)),
                  "null_high": float(np.quantile(values, 0.975)),
                  "p_above": float((1 + np.sum(values >= value - 1e-12)) / (1 + len(values))),
                  "p_below": float((1 + np.sum(values <= value + 1e-12)) / (1 + len(values))),
                  "n_permutations": int(len(values))}
    return out


def score_methods(predictions: Mapping[str, pd.DataFrame], classes: Sequence[str], *,
                  seed: int = 0) -> dict[str, dict[str, Any]]:
    """:func:`crowdnb.experiments.score_numbers` of every method's predictions.

    The block-wise method is scored per block (its interval resamples
    actions with their blocks); the others per action. Each dict also has
    ``unit`` ("block" or "action").
    """
    out = {}
    for name, table in predictions.items():
        numbers = score_numbers(evaluate_predictions(table, classes, seed=seed))
        numbers["unit"] = "block" if name == BLOCKWISE else "action"
        out[name] = numbers
    return out


def early_decision_curve(sequences: ActionSequences,
                         folds: Sequence[tuple[Sequence[str], Sequence[str]]],
                         classes: Sequence[str], *, seconds: Sequence[float], seed: int = 0,
                         recipe: TemporalRecipe = TemporalRecipe(),
                         methods: Sequence[str] = (VOTE, TEMPORAL)) -> pd.DataFrame:
    """Per-action scores after hearing only the first ``t`` seconds of every action.

    For each ``t`` of ``seconds``, every action is cut to the blocks that end
    within its first ``t`` seconds (:meth:`ActionSequences.heard`), and the
    methods are trained and tested anew on the same folds: what a listener
    who must decide at ``t`` could know.

    Returns
    -------
    pd.DataFrame
        One row per (``seconds``, ``method``): ``share_complete`` (actions
        heard to their end) and the :func:`crowdnb.experiments.score_numbers`
        columns.

    Raises
    ------
    ParameterError
        When ``seconds`` is empty, not increasing, or shorter than some
        action's first block.
    """
    grid = [float(t) for t in seconds]
    if not grid or np.any(np.diff(grid) <= 0):
        raise ParameterError(f"seconds: need an increasing, non-empty grid of times, got {grid}")
    unknown = [m for m in methods if m not in (BLOCKWISE, VOTE, TEMPORAL)]
    if unknown:
        raise ParameterError(f"methods: unknown method {unknown[0]!r}")
    rows = []
    for t in grid:
        heard = sequences.heard(t)
        complete = float(np.mean(heard.durations_s() >= sequences.durations_s() - 1e-6))
        scores = score_methods(cross_validate(heard, folds, classes, seed=seed, recipe=recipe),
                               classes, seed=seed)
        for method in methods:
            rows.append({"seconds": t, "method": method, "share_complete": complete,
                         **scores[method]})
    return pd.DataFrame(rows)


def first_audible(curve: pd.DataFrame, method: str) -> float:
    """The first time from which on ``method``'s interval stays above chance (NaN: never).

    Above chance: the lower end of the balanced accuracy's interval over
    actions above 1 / K, with the method not answering one class.
    """
    rows = curve[curve["method"] == method].sort_values("seconds")
    if rows.empty:
        raise ParameterError(f"method: no row of {method!r} in the curve")
    above = ((rows["interval_ok"] == 1) & (rows["degenerate"] == 0)
             & (rows["balanced_low"] > rows["chance_balanced"])).to_numpy()
    if not above[-1]:
        return math.nan
    last_below = np.flatnonzero(~above)
    first = 0 if not len(last_below) else int(last_below[-1]) + 1
    return float(rows["seconds"].iloc[first])


def action_verdict(numbers: Mapping[str, Any], *, name: str) -> str:
    """What one method's score says, in a sentence chosen by its numbers.

    The rules of :func:`crowdnb.report.verdict`, in the unit the method was
    scored in (``numbers["unit"]``: blocks or actions): one class for nearly
    all of them is called a constant classifier; without an interval nothing
    is said of chance; otherwise the balanced accuracy's interval over
    actions is set against 1 / K.
    """
    from .report import verdict

    units = {"block": "test blocks", "action": "test actions"}[numbers.get("unit", "action")]
    return verdict(numbers, name=name, units=units)


def audible_sentence(curve: pd.DataFrame, method: str, *, name: str) -> str:
    """When the outcome becomes audible to ``method``, by the early-decision curve."""
    t = first_audible(curve, method)
    rows = curve[curve["method"] == method].sort_values("seconds")
    best = rows.loc[rows["balanced_accuracy"].idxmax()]
    peak = (f"its best balanced accuracy is {best['balanced_accuracy']:.3f} after "
            f"{best['seconds']:g} s")
    if math.isnan(t):
        return (f"{name} is at no time above chance for good (the lower end of its interval over "
                f"actions above 1 / K from that time to the end of the actions); {peak}.")
    at = rows[rows["seconds"] == t].iloc[0]
    return (f"{name} is above chance from {t:g} s of the action on (balanced accuracy "
            f"{at['balanced_accuracy']:.3f}, 95 % interval [{at['balanced_low']:.3f}, "
            f"{at['balanced_high']:.3f}], {at['share_complete']:.0%} of the actions heard to their "
            f"end); {peak}.")


def buildup_sentence(numbers: Mapping[str, Mapping[str, Any]], *, n_actions: int,
                     null: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Whether the build-up alone gives the outcome away, from the methods' build-up scores.

    ``numbers`` maps each per-action method to its scores on the actions cut
    at the shot. A method above chance on the build-up alone means the
    corpus's goals and misses differ before the shot: in a synthetic corpus,
    a flaw of the synthesizer, not a result. Where ``null`` gives a method's
    :func:`permutation_through_cv`, that test decides (Holm over the methods
    it covers) and a score below 1 / K is set against the null's own centre;
    elsewhere the interval over actions does.
    """
    from .significance import LEVEL, holm

    null = dict(null or {})
    adjusted = dict(zip(null, holm([r["p_above"] for r in null.values()])))
    above = [m for m, n in numbers.items() if not n["degenerate"] and (
        adjusted[m] < LEVEL if m in null else
        n["interval_ok"] and n["balanced_low"] > n["chance_balanced"])]
    below_note = ""
    low_ones = [m for m in null if null[m]["balanced_accuracy"] < numbers[m]["chance_balanced"]]
    if low_ones:
        below_note = " " + " ".join(
            f"The {m} scores {null[m]['balanced_accuracy']:.3f}, below 1 / K, but the same "
            f"cross-validation on labels permuted across the actions scores {null[m]['null_mean']:.3f} "
            f"on average (95 % of {null[m]['n_permutations']} permutations in "
            f"[{null[m]['null_low']:.3f}, {null[m]['null_high']:.3f}]; as low a score: "
            f"p = {null[m]['p_below']:.3f}): with few actions a fold's training set holds fewer of "
            "its test actions' class, so a model that learnt nothing leans to the other one. "
            "Below 1 / K is where chance lies for this cross-validation, not a finding."
            for m in low_ones)
    per_action = null.get(VOTE)
    untested_low = [m for m, n in numbers.items() if m not in null and n["interval_ok"]
                    and n["balanced_high"] < n["chance_balanced"]]
    if per_action is not None and untested_low:
        below_note += " " + " ".join(
            f"The score of the {m}, {numbers[m]['balanced_accuracy']:.3f}, lies below 1 / K as "
            "well (its 95 % "
            f"interval [{numbers[m]['balanced_low']:.3f}, {numbers[m]['balanced_high']:.3f}]). Its "
            "own null was not computed (retraining it for every permutation costs more than the "
            "build's time), but it lies within the range of the null of the vote, the other model "
            f"scored per action on the same folds ([{per_action['null_low']:.3f}, "
            f"{per_action['null_high']:.3f}]): it is not read as a finding either."
            for m in untested_low)
    if above:
        parts = "; ".join(f"{m}: balanced accuracy {numbers[m]['balanced_accuracy']:.3f}, 95 % "
                          f"interval [{numbers[m]['balanced_low']:.3f}, "
                          f"{numbers[m]['balanced_high']:.3f}]" for m in above)
        return ("**The build-up alone gives the answer away**: cut at the shot, the actions are "
                f"still told apart above chance ({parts}). Goals and misses of this corpus differ "
                "before the outcome, which real ones do not: that is a flaw of the synthesizer, "
                "and the scores of the whole actions above are not evidence that the outcome "
                "is audible.")
    if not all(n["interval_ok"] for n in numbers.values()):
        return ("Too few actions per class for an interval: whether the build-up alone gives the "
                "answer away cannot be said from this corpus.")
    widest = max(n["balanced_high"] for n in numbers.values())
    parts = "; ".join(
        f"{m}: {'one class' if n['degenerate'] else 'balanced accuracy'} "
        f"{n['balanced_accuracy']:.3f}, 95 % interval [{n['balanced_low']:.3f}, "
        f"{n['balanced_high']:.3f}]" for m, n in numbers.items())
    tested = (" (the block-wise baseline and its vote by a permutation test through the whole "
              "cross-validation, Holm-adjusted over the two; the temporal model by its interval)"
              if null else "")
    return ("Cut at the shot, no method tells goals from misses above chance "
            f"({parts}){tested}: the build-up alone does not give the answer away, as the paper "
            "says of real actions; whatever tells goals from misses here lies in what follows the "
            f"shot. With {n_actions} actions this rules out only a strong give-away: a build-up "
            f"that allowed a balanced accuracy up to about {widest:.2f} would not have been "
            "noticed." + below_note)


def temporal_seeds(sequences: ActionSequences, folds: Sequence[tuple[Sequence[str], Sequence[str]]],
                   classes: Sequence[str], *, seeds: Sequence[int],
                   recipe: TemporalRecipe = TemporalRecipe()) -> pd.DataFrame:
    """The temporal model's per-action scores, trained anew with each seed on the same folds.

    With a dozen training actions per fold, the initialisation and dropout
    alone can move a score across chance; this measures by how much.

    Returns
    -------
    pd.DataFrame
        One row per seed: ``seed`` and the :func:`crowdnb.experiments.score_numbers` columns.
    """
    classes = _check_classes(classes, sequences, "temporal_seeds")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ParameterError("seeds: need at least one seed")
    rows = []
    for seed in seeds:
        tables = []
        for fold, (train_ids, test_ids) in enumerate(folds, start=1):
            train, test = sequences.select(list(train_ids)), sequences.select(list(test_ids))
            tables.append(_rows(test, temporal_probabilities(train, test, classes, seed=seed,
                                                             recipe=recipe), classes, fold))
        numbers = score_numbers(evaluate_predictions(pd.concat(tables, ignore_index=True), classes,
                                                     seed=seed))
        rows.append({"seed": seed, **numbers})
    return pd.DataFrame(rows)


def seed_sentence(table: pd.DataFrame, *, name: str = "The temporal model") -> str:
    """How the temporal model's verdict depends on its training seed (:func:`temporal_seeds`)."""
    above = ((table["interval_ok"] == 1) & (table["degenerate"] == 0)
             & (table["balanced_low"] > table["chance_balanced"]))
    bal = table["balanced_accuracy"]
    spread = (f"balanced accuracy from {bal.min():.3f} to {bal.max():.3f}, median "
              f"{bal.median():.3f}")
    n, k = len(table), int(above.sum())
    if k == n:
        return f"{name} is above chance with every one of {n} training seeds: {spread}."
    if k == 0:
        return f"{name} is above chance with none of {n} training seeds: {spread}."
    return (f"{name} is above chance with {k} of {n} training seeds only ({spread}): at this size, "
            "whether it beats chance depends on its initialisation, and a single run's verdict "
            "should be read with that in mind.")


def plot_early_decision(curve: pd.DataFrame, *, shots_s: Sequence[float] | None = None, ax=None):
    """The early-decision curve: balanced accuracy per action against seconds heard.

    Each method's balanced accuracy with its 95 % interval over actions (a
    band), the chance level 1 / K (dashed), and, when ``shots_s`` is given,
    the span of the actions' shot times (grey), before which no action's
    outcome has happened.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    if shots_s is not None and len(shots_s):
        ax.axvspan(float(np.min(shots_s)), float(np.max(shots_s)), color="0.9", zorder=0,
                   label="shot times of the actions")
    for method, rows in curve.groupby("method", sort=False):
        rows = rows.sort_values("seconds")
        line, = ax.plot(rows["seconds"], rows["balanced_accuracy"], marker="o", label=method)
        ax.fill_between(rows["seconds"], rows["balanced_low"], rows["balanced_high"],
                        color=line.get_color(), alpha=0.15, linewidth=0)
    ax.axhline(float(curve["chance_balanced"].iloc[0]), color="0.3", linestyle="--", linewidth=1,
               label="chance (1 / K)")
    ax.set_xlabel("seconds of the action heard")
    ax.set_ylabel("balanced accuracy per action")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize="small")
    return ax
