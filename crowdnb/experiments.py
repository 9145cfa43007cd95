"""The study's experiments as data: what each one is, and one function that runs it.

An :class:`Experiment` says what the paper did (task, protocol, the number it
reports) and where the study keeps its outputs (the chapter that runs it, and
the folder within). :func:`run_experiment` splits the blocks by the
experiment's protocol and trains a network; :func:`experiment_numbers` flattens
a training's metrics into the numbers a chapter quotes, and
:func:`glue_experiment` glues them; :func:`results_table` gathers every
experiment of a run for the results chapter. Adding an experiment is one entry
in :data:`EXPERIMENTS` (and, if wanted, a chapter that calls
:func:`run_experiment` with it).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import PreprocessConfig, TrainRecipe
from .errors import DataError, ParameterError
from .files import read_json, read_table, write_json, write_table
from .splits import clip_split, event_folds, guard_gap, random_split, temporal_leakage
from .train import FILES, TrainResult, train_model

__all__ = [
    "Experiment",
    "EXPERIMENTS",
    "PAPER_DATA",
    "ExperimentResult",
    "split_for",
    "run_experiment",
    "guard_gap_effect",
    "paired_effect",
    "score_numbers",
    "experiment_numbers",
    "glue_experiment",
    "metrics_path",
    "results_table",
    "diagnostics_table",
    "seed_spread",
    "emotion_images",
]


@dataclass(frozen=True)
class Experiment:
    """One experiment of the paper, and where the study keeps its outputs.

    Attributes
    ----------
    key : str
        Its name in :data:`EXPERIMENTS` and in glue names (``emotions_random``).
    title : str
        How the book names it.
    task : {"emotions", "football"}
        The collection it uses (joy/anger/neutral, or goal/no_goal).
    protocol : {"random", "random_guard", "clip"}
        How blocks are split (:mod:`crowdnb.splits`); ``random_guard`` is the
        random split with a guard gap (:func:`crowdnb.splits.guard_gap`).
    stage : str
        The chapter (stage) that runs it.
    folder : str
        Its outputs' folder within the stage's folder ("" for the stage's own).
    paper_accuracy : float or None
        The accuracy the paper reports, if it gives one.
    paper_says : str
        What the paper says of it, quoted.
    optional : bool
        Its chapter runs it only when a parameter asks (the results table
        leaves it out when its metrics are missing).
    """

    key: str
    title: str
    task: str
    protocol: str
    stage: str
    folder: str = ""
    paper_accuracy: float | None = None
    paper_says: str = ""
    optional: bool = False


EXPERIMENTS: dict[str, Experiment] = {e.key: e for e in (
    Experiment("emotions_random", "emotions, random split", "emotions", "random",
               "04_random_split_training", paper_accuracy=1.0,
               paper_says="perfect accuracy, i.e., 1"),
    Experiment("emotions_random_guard", "emotions, random split, guard gap", "emotions",
               "random_guard", "04_random_split_training", "guard_gap", optional=True,
               paper_says="the same test blocks, without the training blocks that share their sound"),
    Experiment("emotions_clip", "emotions, clip split", "emotions", "clip",
               "05_clip_split_training",
               paper_says="only slightly lower, although more consistent, and free from overfitting"),
    Experiment("goal_random", "goal / no goal, random split", "football", "random",
               "06_goal_nogoal_study", "random_split", paper_accuracy=0.72,
               paper_says="only around 0.72 accuracy for the random approach"),
    Experiment("goal_clip", "goal / no goal, clip split", "football", "clip",
               "06_goal_nogoal_study", "clip_split", paper_accuracy=0.53,
               paper_says="0.53 accuracy for the manual approach"),
)}

#: The paper's data set (Franzoni & Biondi, section III and Table 1).
PAPER_DATA = {"n_spectrograms": 678, "n_blocks": 890, "n_clips": 18, "duration_s": 1711}


@dataclass
class ExperimentResult:
    """An experiment's split and training.

    With cross-validation, ``train`` and ``test`` are the first fold's,
    ``training`` holds the pooled out-of-fold metrics and predictions (its
    history and checkpoint are the first fold's), and ``folds`` every fold.
    """

    experiment: Experiment
    train: pd.DataFrame
    test: pd.DataFrame
    training: TrainResult
    folds: list["ExperimentResult"] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.training.metrics


def balanced_test(test: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """The test blocks thinned at random to the smallest class's count (the paper's balancing)."""
    from .dataset import balance

    return balance(test, seed=seed)[0].reset_index(drop=True)


def split_for(experiment: Experiment, blocks: pd.DataFrame, *, test_fraction: float, seed: int,
              test_clips: Sequence[str] | None = None,
              balance_test: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and test blocks of an experiment's protocol.

    With ``balance_test``, the test set is balanced in blocks
    (:func:`balanced_test`; the deleted blocks are not trained on either), so
    that accuracy and balanced accuracy agree and a constant classifier
    scores 1/K. The guard-gap protocol draws the same test set as the random
    split with the same seed, and drops the training blocks that overlap it.
    """
    if experiment.protocol in ("random", "random_guard"):
        if test_clips:
            raise ParameterError(f"{experiment.key}: test_clips applies to the clip split only")
        train, test = random_split(blocks, test_fraction=test_fraction, seed=seed)
    elif experiment.protocol == "clip":
        train, test = clip_split(blocks, test_fraction=test_fraction, seed=seed,
                                 test_clips=test_clips or None)
    else:
        raise ParameterError(f"{experiment.key}: unknown protocol {experiment.protocol!r}")
    if balance_test:
        test = balanced_test(test, seed=seed)
    if experiment.protocol == "random_guard":
        train = guard_gap(train, test)
    return train, test


def _protocol(experiment: Experiment, blocks: pd.DataFrame, train: pd.DataFrame,
              test: pd.DataFrame, *, test_fraction: float, seed: int, balance_test: bool,
              test_clips: Sequence[str] | None) -> dict[str, Any]:
    names = {"random": "random split of blocks, stratified by class",
             "random_guard": ("random split of blocks, stratified by class, with a guard gap "
                              "(training blocks that overlap a test block dropped)"),
             "clip": "held-out clips, stratified by class"}
    out: dict[str, Any] = {"name": names[experiment.protocol], "seed": int(seed),
                           "test_fraction": float(test_fraction), "balanced_test": bool(balance_test),
                           "test_clips": sorted(map(str, test_clips)) if test_clips else None}
    if experiment.protocol == "random_guard":
        plain, _ = random_split(blocks, test_fraction=test_fraction, seed=seed)
        out["guard_gap"] = {"train_blocks_without_gap": int(len(plain)),
                            "train_blocks_dropped": int(len(plain) - len(train))}
    return out


def run_experiment(
    experiment: Experiment,
    blocks: pd.DataFrame,
    *,
    image_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    recipe: TrainRecipe,
    preprocessing: PreprocessConfig,
    test_fraction: float,
    seed: int,
    test_clips: Sequence[str] | None = None,
    folds: int = 1,
    balance_test: bool = True,
    keep_fold_models: bool = False,
    **training: Any,
) -> ExperimentResult:
    """Split the blocks by the experiment's protocol, train, and write the results.

    Parameters
    ----------
    experiment : Experiment
    blocks : pd.DataFrame
        The (balanced) block table with images.
    image_root : path-like
        The folder the blocks' ``image_path`` is relative to.
    out_dir : path-like
        The stage's folder: the outputs go to ``out_dir/experiment.folder``
        (the split as ``train_blocks.csv`` and ``test_blocks.csv``, and the
        training's files).
    recipe, preprocessing
        The training recipe and the settings that made the images.
    test_fraction, seed, test_clips
        The split's (:func:`split_for`); the seed also seeds the training.
    folds : int >= 1
        The clip protocol only: with 2 or more, event-disjoint, class-stratified
        cross-validation (:func:`crowdnb.splits.event_folds`) instead of one
        held-out split: a network per fold (``fold_<i>/``), and the metrics of
        the pooled out-of-fold predictions in the experiment's folder, with
        each fold's numbers under ``folds``.
    balance_test : bool
        Balance every test set in blocks (:func:`split_for`); its composition
        (blocks and clips per class) is in the metrics' ``counts`` either way.
    keep_fold_models : bool
        Write each fold's network (``fold_<i>/model.pt``); by default only its
        predictions and metrics, which is all the book reads (a fold's network
        answers only its own fold's test blocks).
    **training
        Further keyword arguments of :func:`crowdnb.train.train_model`
        (``weights``, ``on_missing_weights``, ``device``, ``deterministic``, ...).
    """
    if folds > 1:
        if experiment.protocol != "clip":
            raise ParameterError(f"{experiment.key}: folds apply to the clip protocol only")
        if test_clips:
            raise ParameterError(f"{experiment.key}: test_clips names one held-out split; "
                                 "set folds to 1 to use it")
        return _cross_validate(experiment, blocks, image_root=image_root, out_dir=out_dir,
                               recipe=recipe, preprocessing=preprocessing, folds=folds,
                               seed=seed, balance_test=balance_test,
                               **{"write_checkpoint": keep_fold_models, **training})
    train, test = split_for(experiment, blocks, test_fraction=test_fraction, seed=seed,
                            test_clips=test_clips, balance_test=balance_test)
    folder = Path(out_dir) / experiment.folder
    write_table(folder / "train_blocks.csv", train)
    write_table(folder / "test_blocks.csv", test)
    result = train_model(train, test, image_root=image_root, out_dir=folder, recipe=recipe,
                         seed=seed, preprocessing=preprocessing,
                         leakage=temporal_leakage(train, test), **training)
    result.metrics["protocol"] = _protocol(experiment, blocks, train, test,
                                           test_fraction=test_fraction, seed=seed,
                                           balance_test=balance_test, test_clips=test_clips)
    write_json(folder / FILES["metrics"], result.metrics)
    return ExperimentResult(experiment, train, test, result)


def paired_effect(a: ExperimentResult | pd.DataFrame, b: ExperimentResult | pd.DataFrame,
                  *, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Network A's scores minus network B's, on the test blocks both answered.

    The difference and its paired interval are
    :func:`crowdnb.evaluation.paired_difference`'s (test events resampled
    together for both networks); the test is the paired permutation over
    test events.

    Parameters
    ----------
    a, b : ExperimentResult or pd.DataFrame
        The two results, or their predictions tables (``block_id``, ``label``,
        ``predicted``, ``event_id`` or ``clip_id``).

    Returns
    -------
    dict
        ``paired_difference``'s dict, plus ``n_test``; ``p``, ``min_p``,
        ``n_events`` and ``test`` of the paired permutation test over test
        events (:func:`crowdnb.significance.paired_permutation`), and
        ``significant`` (1 when ``p`` is below the level, before any
        correction for the page's other tests).

    Raises
    ------
    DataError
        If the two did not answer the same test blocks.
    """
    from .evaluation import paired_difference
    from .significance import LEVEL, paired_permutation

    a, b = (r.training.predictions if isinstance(r, ExperimentResult) else r for r in (a, b))
    if sorted(a["block_id"].astype(str)) != sorted(b["block_id"].astype(str)):
        raise DataError("the two networks were tested on different blocks (not the same split "
                        "seed, test fraction, balancing or blocks)")
    merged = a.merge(b[["block_id", "predicted"]], on="block_id", suffixes=("", "_b"))
    events = merged["event_id"] if "event_id" in merged.columns else merged["clip_id"]
    out = paired_difference(merged["label"], merged["predicted"], merged["predicted_b"],
                            events, n_resamples=n_resamples, seed=seed)
    test = paired_permutation(merged["label"], merged["predicted"], merged["predicted_b"],
                              events, seed=seed)
    out.update(n_test=int(len(merged)), p=test["p"], min_p=test["min_p"],
               n_events=test["n_events"], test=test["method"],
               significant=int(test["p"] < LEVEL))
    return out


def guard_gap_effect(plain: ExperimentResult | pd.DataFrame, guarded: ExperimentResult | pd.DataFrame,
                     *, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """What the shared sound is worth: the plain random split's scores minus the guard gap's.

    Both networks answered the same test blocks (:func:`split_for`);
    :func:`paired_effect` of the two. Positive: the network scores higher
    when it has trained on the test blocks' neighbours.

    Raises
    ------
    DataError
        If the two did not answer the same test blocks.
    """
    return paired_effect(plain, guarded, n_resamples=n_resamples, seed=seed)


def _cross_validate(experiment: Experiment, blocks: pd.DataFrame, *, image_root, out_dir,
                    recipe: TrainRecipe, preprocessing: PreprocessConfig, folds: int, seed: int,
                    balance_test: bool, **training: Any) -> ExperimentResult:
    from .evaluation import evaluate_predictions

    folder = Path(out_dir) / experiment.folder
    results = []
    for i, (train, test) in enumerate(event_folds(blocks, k=folds, seed=seed), start=1):
        if balance_test:
            test = balanced_test(test, seed=seed)
        fold_dir = folder / f"fold_{i}"
        write_table(fold_dir / "train_blocks.csv", train)
        write_table(fold_dir / "test_blocks.csv", test)
        trained = train_model(train, test, image_root=image_root, out_dir=fold_dir, recipe=recipe,
                              seed=seed, preprocessing=preprocessing,
                              leakage=temporal_leakage(train, test), **training)
        results.append(ExperimentResult(experiment, train, test, trained))
    predictions = pd.concat([r.training.predictions.assign(fold=i)
                             for i, r in enumerate(results, start=1)], ignore_index=True)
    first = results[0].training
    fold_metrics = [r.metrics for r in results]
    pooled = {
        **evaluate_predictions(predictions, first.metrics["classes"],
                               n_resamples=int(first.metrics["params"]["bootstrap_resamples"]),
                               seed=seed),
        "protocol": {"name": "event-disjoint, class-stratified cross-validation", "folds": folds,
                     "seed": seed, "balanced_test": bool(balance_test)},
        "folds": [{**experiment_numbers(m), "fold": i} for i, m in enumerate(fold_metrics, 1)],
        "counts": {"train_blocks": int(np.mean([len(r.train) for r in results])),
                   "test_blocks": len(predictions),
                   "train_clips": int(np.mean([r.train["clip_id"].nunique() for r in results])),
                   "test_clips": int(predictions["clip_id"].nunique()),
                   "train_per_class": first.metrics["counts"]["train_per_class"],
                   "test_per_class": predictions["label"].value_counts().sort_index().to_dict(),
                   "test_clips_per_class": predictions.groupby("label")["clip_id"].nunique()
                   .sort_index().to_dict(),
                   "validation_blocks": first.metrics["counts"]["validation_blocks"]},
        "leakage": {"fraction": 0.0, "overlap_s": 0.0, "fraction_sharing_clip": 0.0,
                    "source": "event-disjoint folds"},
        "training": {"time_s": float(sum(m["training"]["time_s"] for m in fold_metrics)),
                     "train_steps_s": float(sum(m["training"]["train_steps_s"] for m in fold_metrics)),
                     "validation_s": float(sum(m["training"]["validation_s"] for m in fold_metrics)),
                     "iterations_per_epoch": first.metrics["training"]["iterations_per_epoch"],
                     "train_images_per_s": float(np.mean([m["training"]["train_images_per_s"]
                                                          for m in fold_metrics])),
                     "n_validations": int(sum(m["training"]["n_validations"]
                                              for m in fold_metrics))},
        **{key: first.metrics[key] for key in ("classes", "params", "seed", "device",
                                               "environment", "preprocessing", "weights_info")},
        "pretrained": all(m["pretrained"] for m in fold_metrics),
        "pretrained_reason": "; ".join(sorted({m["pretrained_reason"] for m in fold_metrics})),
        "test_loss": float(np.mean([m["test_loss"] for m in fold_metrics])),
        "final_train_loss": float(np.mean([m["final_train_loss"] for m in fold_metrics])),
        "final_train_accuracy": float(np.mean([m["final_train_accuracy"] for m in fold_metrics])),
        "files": {"folds": [f"fold_{i}" for i in range(1, folds + 1)]},
    }
    write_table(folder / FILES["predictions"], predictions)
    write_json(folder / FILES["metrics"], pooled)
    pooled_result = TrainResult(pooled, first.history, predictions, first.checkpoint)
    return ExperimentResult(experiment, results[0].train, results[0].test, pooled_result,
                            folds=results)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def score_numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The test scores of any classifier's evaluation, flat.

    ``metrics`` is :func:`crowdnb.evaluation.evaluate_predictions`'s dict (a
    training's metrics hold it). The keys are those of
    :func:`experiment_numbers` that describe the scores alone.
    """
    interval = metrics["interval_event"]
    majority = metrics["predicted_majority"]
    chance = metrics["chance"]
    permutation = metrics.get("permutation") or {}
    return {
        "p_above_chance": _number(permutation.get("p_above")),
        "p_below_chance": _number(permutation.get("p_below")),
        "min_p": _number(permutation.get("min_p")),
        "accuracy": float(metrics["accuracy"]),
        "balanced_accuracy": float(metrics["balanced_accuracy"]),
        "chance_constant": float(chance["constant"]),
        "chance_balanced": float(chance["balanced"]),
        "interval_ok": int(bool(interval["ok"])),
        "interval_note": str(interval["note"]),
        "balanced_low": _number(interval["balanced_accuracy"]["low"]),
        "balanced_high": _number(interval["balanced_accuracy"]["high"]),
        "accuracy_event_low": _number(interval["accuracy"]["low"]),
        "accuracy_event_high": _number(interval["accuracy"]["high"]),
        "n_test_events": int(metrics["n_test_events"]),
        "majority_share": float(majority["share"]),
        "majority_class": str(majority["class"]),
        "degenerate": int(bool(majority["degenerate"])),
        "degenerate_folds": int(majority.get("degenerate_folds", 0)),
        "n_score_folds": int(majority.get("n_folds", 0)),
        "accuracy_low": float(metrics["accuracy_ci95"]["low"]),
        "accuracy_high": float(metrics["accuracy_ci95"]["high"]),
        "accuracy_clip_low": float(metrics["accuracy_ci95_clip"]["low"]),
        "accuracy_clip_high": float(metrics["accuracy_ci95_clip"]["high"]),
        "clip_accuracy": float(metrics["clip_accuracy"]),
        "n_test": int(metrics["n_test"]),
        "n_correct": int(metrics["n_correct"]),
        "macro_f1": float(metrics["macro_f1"]),
    }


def experiment_numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers a chapter quotes of one training, flat.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``chance_constant`` (best
        constant classifier on the test set), ``chance_balanced`` (1 / K),
        ``balanced_low``/``balanced_high`` and ``accuracy_event_low``/``_high``
        (95 % bootstrap over test events, stratified by class; NaN when
        ``interval_ok`` is 0, with the reason in ``interval_note``),
        ``n_test_events``, ``majority_share``/``majority_class`` (the most
        frequent prediction) and ``degenerate`` (0 or 1),
        ``accuracy_low``/``accuracy_high`` (95 % bootstrap over blocks: the
        optimistic one), ``accuracy_clip_low``/``accuracy_clip_high`` (cluster
        bootstrap over clips), ``clip_accuracy`` (majority vote per clip),
        ``n_test``, ``n_correct``, ``n_train``, ``n_test_clips``,
        ``n_train_clips``, ``macro_f1``, ``leakage_fraction`` (test blocks
        sharing sound with a training block), ``leakage_s``,
        ``sharing_clip_fraction``, ``pretrained`` (0 or 1), ``epochs``,
        ``train_minutes``.
    """
    from .evaluation import diagnose

    counts = metrics["counts"]
    leakage = metrics.get("leakage") or {}
    folds = metrics.get("folds") or []
    n_classes = int(round(1.0 / metrics["chance"]["balanced"]))  # the classes present in the test
    fold_status = [diagnose({**f, "n_classes": n_classes})["status"] for f in folds]
    return {
        **score_numbers(metrics),
        "n_classes": n_classes,
        "train_loss": _number(metrics.get("final_train_loss")),
        "train_accuracy": _number(metrics.get("final_train_accuracy")),
        "n_folds": len(folds),
        "folds_not_learnt": sum(s == "did not learn" for s in fold_status),
        "folds_overfit": sum(s == "overfits" for s in fold_status),
        "n_train": int(counts["train_blocks"]),
        "n_test_clips": int(counts["test_clips"]),
        "n_train_clips": int(counts["train_clips"]),
        "leakage_fraction": float(leakage.get("fraction", 0.0)),
        "leakage_s": float(leakage.get("overlap_s", 0.0)),
        "sharing_clip_fraction": float(leakage.get("fraction_sharing_clip", 0.0)),
        "pretrained": int(bool(metrics["pretrained"])),
        "epochs": int(metrics["params"]["epochs"]),
        "train_minutes": float(metrics["training"]["time_s"]) / 60.0,
    }


def glue_experiment(metrics: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """Glue :func:`experiment_numbers` under ``prefix`` + name; return them."""
    from .report import glue_values

    numbers = experiment_numbers(metrics)
    glue_values(numbers, prefix=prefix)
    return numbers


def metrics_path(run_dir: str | os.PathLike, experiment: Experiment) -> Path:
    """Where a run keeps an experiment's ``metrics.json``."""
    return Path(run_dir) / experiment.stage / experiment.folder / FILES["metrics"]


def results_table(run_dir: str | os.PathLike,
                  experiments: Iterable[Experiment] = EXPERIMENTS.values()) -> pd.DataFrame:
    """One row per experiment of a run: its numbers beside the paper's, and its seed.

    An optional experiment (:attr:`Experiment.optional`) whose metrics are
    missing is left out.

    Raises
    ------
    DataError
        When another experiment's metrics are missing (its chapter has not run).
    """
    rows = []
    for experiment in experiments:
        path = metrics_path(run_dir, experiment)
        if experiment.optional and not path.is_file():
            continue
        if not path.is_file():
            raise DataError(f"{path}: the metrics of {experiment.title} are missing; run "
                            f"`crowdnb run --only {experiment.stage}` first")
        metrics = read_json(path)
        numbers = experiment_numbers(metrics)
        rows.append({"key": experiment.key, "experiment": experiment.title,
                     "seed": metrics.get("seed"),
                     "paper": experiment.paper_accuracy
                     if experiment.paper_accuracy is not None else float("nan"),
                     **numbers})
    return pd.DataFrame(rows)


def diagnostics_table(metrics: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Whether each trained network learnt: one row per network, and per fold of a cross-validation.

    Parameters
    ----------
    metrics : mapping
        A training's ``metrics.json`` by the name a page gives it.

    Returns
    -------
    pd.DataFrame
        ``network``, ``fold`` ("" for a single network), ``status`` ("learnt",
        "overfits", "did not learn"), ``flags``, ``one_class`` and
        ``one_class_share`` (its most frequent answer), ``train_loss`` against
        ``chance_loss`` (ln K), ``train_accuracy`` and ``test_accuracy``
        (:func:`crowdnb.evaluation.diagnose`).
    """
    from .evaluation import diagnose

    rows = []
    for name, m in metrics.items():
        numbers = experiment_numbers(m)
        units = [({**f, "n_classes": numbers["n_classes"]}, f"fold {f['fold']}")
                 for f in m.get("folds") or []] or [(numbers, "")]
        for unit, fold in units:
            found = diagnose(unit)
            rows.append({"network": name, "fold": fold, "status": found["status"],
                         "flags": ", ".join(found["flags"]) or "-",
                         **{k: found[k] for k in ("one_class", "one_class_share", "train_loss",
                                                  "chance_loss", "train_accuracy",
                                                  "test_accuracy")}})
    return pd.DataFrame(rows)


SPREAD_COLUMNS = ("accuracy", "balanced_accuracy", "chance_balanced", "degenerate")


def seed_spread(sweep: pd.DataFrame, run: pd.DataFrame | None = None, *,
                stage: str = "07_results") -> pd.DataFrame:
    """How the experiments' numbers move with the training seed alone.

    Parameters
    ----------
    sweep : pd.DataFrame
        A sweep's table over seeds (:func:`crowdnb.workflow.stageio.sweep_results`):
        one row per point, ``seed``, and the results chapter's summary as
        ``<stage>.results.<key>.<number>``.
    run : pd.DataFrame, optional
        This run's :func:`results_table` with its ``seed`` column, added as
        one more seed when the sweep does not have it.

    Returns
    -------
    pd.DataFrame
        One row per experiment and seed: ``key``, ``experiment``, ``seed`` and
        the numbers of :data:`SPREAD_COLUMNS`.

    Raises
    ------
    DataError
        When the table has no results of ``stage`` (not a sweep of the
        results chapter) or no ``seed`` column.
    """
    if "seed" not in sweep.columns:
        raise DataError("the sweep's table has no seed column: a seed spread needs a sweep over "
                        "seed (params/sweeps/seeds.yaml)")
    rows = []
    for experiment in EXPERIMENTS.values():
        prefix = f"{stage}.results.{experiment.key}."
        if f"{prefix}balanced_accuracy" not in sweep.columns:
            continue
        for point in sweep.to_dict("records"):
            rows.append({"key": experiment.key, "experiment": experiment.title,
                         "seed": int(point["seed"]),
                         **{c: float(point[f"{prefix}{c}"]) for c in SPREAD_COLUMNS}})
    if not rows:
        raise DataError(f"the sweep's table holds no results of {stage}: sweep the stage {stage}")
    table = pd.DataFrame(rows)
    if run is not None:
        for row in run.to_dict("records"):
            if row["key"] in set(table["key"]) and not ((table["key"] == row["key"])
                                                       & (table["seed"] == row["seed"])).any():
                table.loc[len(table)] = {"key": row["key"], "experiment": row["experiment"],
                                         "seed": int(row["seed"]),
                                         **{c: float(row[c]) for c in SPREAD_COLUMNS}}
    return table.sort_values(["key", "seed"], kind="stable").reset_index(drop=True)


def emotion_images(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, Path, PreprocessConfig]:
    """What the emotion experiments train on, from a run's chapters 2 and 3.

    Returns
    -------
    blocks : pd.DataFrame
        The balanced block table (chapter 3).
    image_root : Path
        The folder the blocks' ``image_path`` is relative to (chapter 2's).
    preprocessing : PreprocessConfig
        The settings that made the images (chapter 2's summary).
    """
    from .workflow import stageio

    image_root = stageio.require_stage(run_dir, "02_preprocessing")
    summary = stageio.read_summary(run_dir, "02_preprocessing")
    preprocessing = PreprocessConfig.from_dict(summary.get("preprocessing"),
                                               where=f"{image_root / stageio.SUMMARY_FILE}")
    blocks = read_table(stageio.require_stage(run_dir, "03_spectrogram_generation") / "blocks.csv",
                        what="balanced block table")
    return blocks, image_root, preprocessing
