"""What ImageNet pretraining buys: the computations of the chapter that asks it.

The paper's method is transfer learning: a network that learned to see on
ImageNet is fine-tuned on pictures of spectrograms. Whether the pictures gain
anything from ImageNet is a question of differences, on the same test blocks:

- the **frozen-feature probe** (:func:`frozen_probe`): the ImageNet network's
  pooled penultimate activations of each image (:func:`network_features`),
  standardised, and a logistic regression on them: the cheapest transfer;
- **fine-tuning from ImageNet**: the networks of chapters 4-6;
- the **same network from random initialisation**, and AlexNet from random
  initialisation, each with its from-scratch recipe
  (:meth:`crowdnb.config.TrainRecipe.from_scratch`), trained by
  :func:`train_variant` on the chapters' own splits;
- and, for reference, chapter 8's MFCC + logistic regression and log-mel CNN.

:func:`method_predictions` gathers every method's predictions for one
experiment, :func:`scores_table` scores them with the evaluation's intervals,
and :func:`paired_effects` gives each pair's paired difference on the same
test blocks (test events resampled together).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError
from .experiments import (EXPERIMENTS, Experiment, metrics_path, paired_effect, run_experiment,
                          score_numbers)
from .files import read_json, read_table
from .significance import LEVEL, holm

__all__ = ["study_images", "network_features", "frozen_probe", "train_variant",
           "method_predictions", "scores_table", "paired_effects", "with_holm", "BASELINE_FILES", "PROBES"]

#: Chapter 8's prediction files (in ``08_baselines/<experiment>/``) shown for reference.
BASELINE_FILES = {"MFCC + logistic regression (ch. 8)": "mfcc_predictions.csv",
                  "log-mel CNN (ch. 8)": "small_predictions.csv"}


def study_images(run_dir: str | os.PathLike, task: str) -> Path:
    """The folder a task's ``image_path`` values are relative to (chapter 2's, or chapter 6's)."""
    from .workflow import stageio

    if task == "emotions":
        return stageio.require_stage(run_dir, "02_preprocessing")
    return stageio.require_stage(run_dir, "06_goal_nogoal_study") / "blocks"


def network_features(paths: Sequence[str | os.PathLike], *, network: str, batch_size: int = 32,
                     progress: bool = False, weights: str = "imagenet",
                     seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """A frozen network's pooled penultimate activations of each image.

    Parameters
    ----------
    paths : sequence of path-like
        Spectrogram images (PNG), all of one size.
    network : str
        A key of :data:`crowdnb.networks.NETWORKS`; its ImageNet weights must
        be present and pass the behaviour check.
    batch_size : int > 0
        Images per forward pass.
    weights : {"imagenet", "scratch"}
        Its ImageNet weights, or its random initialisation (seeded by
        ``seed``): the same architecture's features without pretraining, the
        control that says what the ImageNet weights add.

    Returns
    -------
    features : np.ndarray [shape=(n, d), dtype=float32]
        The inputs of the network's last layer (1280 for EfficientNet-Lite0,
        4096 for AlexNet), without dropout.
    info : dict
        :func:`crowdnb.model.build_model`'s record of the weights.
    """
    import torch
    from torch import nn

    from .model import build_model, model_input
    from .networks import network_spec
    from .train import load_images

    spec = network_spec(network)
    model, info = build_model(2, network=network, weights=weights, on_missing_weights="error",
                              seed=seed)
    model.set_submodule(spec.new_layer, nn.Identity())
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            images = load_images(list(paths[start:start + batch_size]), progress=False)
            chunks.append(model(model_input(images, spec.normalization)).float().numpy())
    return np.concatenate(chunks), info


def frozen_probe(folds: Sequence[tuple[pd.DataFrame, pd.DataFrame]], features: Mapping[str, np.ndarray],
                 classes: Sequence[str], *, seed: int = 0) -> pd.DataFrame:
    """Logistic regression on frozen features, fold by fold: pooled out-of-fold predictions.

    Parameters
    ----------
    folds : sequence of (train, test) block tables
        The chapters' own splits (:func:`crowdnb.baselines.study_splits`).
    features : mapping
        ``block_id`` -> feature vector (:func:`network_features`).
    classes : sequence of str
        The output classes, in order.

    Returns
    -------
    pd.DataFrame
        The test blocks with ``predicted``, ``prob_<class>`` and ``fold``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .baselines import predictions_table

    tables = []
    for i, (train, test) in enumerate(folds, start=1):
        x_train = np.stack([features[b] for b in train["block_id"].astype(str)])
        x_test = np.stack([features[b] for b in test["block_id"].astype(str)])
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
        probe.fit(x_train, train["label"].astype(str))
        order = [list(probe.classes_).index(c) for c in classes]
        tables.append(predictions_table(test, probe.predict_proba(x_test)[:, order], classes)
                      .assign(fold=i))
    return pd.concat(tables, ignore_index=True)


def train_variant(experiment: Experiment, run_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                  network: str, weights: str, fine_tune: str = "auto", device: str = "auto",
                  on_folds: bool = True) -> pd.DataFrame:
    """Train another network on exactly the split of an experiment's chapter, and score it.

    The chapter's own metrics give the blocks' split (seed, test fraction,
    balancing, folds) and the recipe asked for; the variant changes only the
    network, its initial weights and the layers trained. ``on_folds`` must be
    true for the clip protocol (its variants train on the chapter's event folds).

    Returns
    -------
    pd.DataFrame
        Its predictions (pooled over folds for the clip protocol); the files
        are in ``out_dir/<experiment folder>/``.
    """
    from .config import PreprocessConfig, TrainRecipe

    chapter = read_json(metrics_path(run_dir, experiment))
    # The balanced block tables the chapters trained on: chapter 3's, and chapter 6's own.
    stage = "03_spectrogram_generation" if experiment.task == "emotions" else "06_goal_nogoal_study"
    blocks = read_table(Path(run_dir) / stage / "blocks.csv", what="balanced block table")
    protocol = chapter["protocol"]
    n_folds = int(protocol.get("folds", 1)) if on_folds else 1
    if experiment.protocol == "clip" and n_folds < 2:
        raise DataError(f"{experiment.key}: the clip protocol's variants train on its event folds")
    result = run_experiment(
        experiment, blocks, image_root=study_images(run_dir, experiment.task), out_dir=out_dir,
        recipe=TrainRecipe.from_dict(chapter["params"]["asked_recipe"], where="chapter metrics"),
        preprocessing=PreprocessConfig.from_dict(chapter["preprocessing"], where="chapter metrics"),
        test_fraction=float(protocol.get("test_fraction", 0.2)), seed=int(chapter["seed"]),
        balance_test=bool(protocol.get("balanced_test", True)), network=network, weights=weights,
        fine_tune=fine_tune, on_missing_weights="error", device=device, progress=False,
        write_checkpoint=False,  # nothing reads these networks: their predictions and metrics are kept
        **({"folds": n_folds} if experiment.protocol == "clip" else {}))
    return result.training.predictions


def method_predictions(run_dir: str | os.PathLike, experiment: Experiment) -> dict[str, pd.DataFrame]:
    """The chapters' network and chapter 8's baselines on one experiment, as predictions tables."""
    from .workflow import stageio

    chapter = read_json(metrics_path(run_dir, experiment))
    title = chapter.get("weights_info", {}).get("title", "AlexNet")
    how = "fine-tuned" if chapter["pretrained"] else "from random weights"
    found = {f"{title} {how} (ch. 4-6)":
             read_table(metrics_path(run_dir, experiment).with_name("predictions.csv"))}
    baselines = stageio.require_stage(run_dir, "08_baselines") / experiment.key
    for name, file in BASELINE_FILES.items():
        found[name] = read_table(baselines / file)
    return found


def scores_table(predictions: Mapping[str, pd.DataFrame], classes: Sequence[str], *,
                 seed: int = 0, n_resamples: int = 2000) -> pd.DataFrame:
    """One row per method: :func:`crowdnb.experiments.score_numbers` of its predictions."""
    from .evaluation import evaluate_predictions

    rows = []
    for name, table in predictions.items():
        metrics = evaluate_predictions(table, list(classes), n_resamples=n_resamples, seed=seed)
        rows.append({"method": name, **score_numbers(metrics)})
    return pd.DataFrame(rows)


def paired_effects(predictions: Mapping[str, pd.DataFrame], pairs: Sequence[tuple[str, str]], *,
                   seed: int = 0, n_resamples: int = 2000) -> pd.DataFrame:
    """Method A minus method B on the same test blocks, for each pair present.

    Returns
    -------
    pd.DataFrame
        ``first``, ``second``, ``difference`` (balanced accuracy), ``low``,
        ``high`` (95 % paired interval, test events resampled together),
        ``p`` (paired permutation test over test events), ``min_p``,
        ``n_events``, ``n_test``; unadjusted (:func:`with_holm` adjusts a
        page's whole family).
    """
    rows = []
    for first, second in pairs:
        if first not in predictions or second not in predictions:
            continue
        effect = paired_effect(predictions[first], predictions[second], seed=seed,
                               n_resamples=n_resamples)
        bal = effect["balanced_accuracy"]
        rows.append({"first": first, "second": second, "difference": bal["difference"],
                     "low": bal["low"], "high": bal["high"], "p": effect["p"],
                     "min_p": effect["min_p"], "n_events": effect["n_events"],
                     "n_test": effect["n_test"]})
    return pd.DataFrame(rows, columns=["first", "second", "difference", "low", "high", "p",
                                       "min_p", "n_events", "n_test"])


#: The two frozen-feature probes: logistic regression on the chapters' network's
#: features with its ImageNet weights, and with random ones.
PROBES = ("{title} frozen + logistic regression",
          "{title} frozen random weights + logistic regression")


def experiments_of(task: str) -> list[Experiment]:
    """The main (not optional) experiments of a task, in the chapters' order."""
    return [e for e in EXPERIMENTS.values() if e.task == task and not e.optional]


#: The extra trainings of the chapter: (row name, network ("chapter": the
#: chapters' own), initial weights, layers trained, parameter that asks for it).
VARIANTS = (
    ("{title} from random weights", "chapter", "scratch", "all", "scratch_same_network"),
    ("AlexNet from random weights", "alexnet", "scratch", "all", "scratch_alexnet"),
    ("{title} fine-tuned, every layer", "chapter", "imagenet", "all", "fine_tune_all"),
)


def _chapter_network(run_dir: str | os.PathLike, experiment: Experiment) -> tuple[str, str, str]:
    """The network, title and fine-tuned layers of an experiment's chapter."""
    chapter = read_json(metrics_path(run_dir, experiment))
    info = chapter.get("weights_info") or {}
    return (str(info.get("network", "alexnet")), str(info.get("title", "AlexNet")),
            str(chapter["params"].get("fine_tune", "all")))


def _variants(run_dir: str | os.PathLike, experiment: Experiment, asked: Mapping[str, bool],
              folds_too: bool) -> list[tuple[str, str, str, str]]:
    """The variants that apply to one experiment: (name, network, weights, fine_tune)."""
    network, title, chapter_fine_tune = _chapter_network(run_dir, experiment)
    chosen = []
    for name, net, weights, fine_tune, parameter in VARIANTS:
        net = network if net == "chapter" else net
        if not asked.get(parameter) or (experiment.protocol == "clip" and not folds_too):
            continue
        if parameter == "scratch_alexnet" and network == "alexnet":
            continue  # the same network's row already is AlexNet's
        if parameter == "fine_tune_all" and chapter_fine_tune == "all":
            continue  # the chapters already fine-tuned every layer
        chosen.append((name.format(title=title), net, weights, fine_tune))
    return chosen


def compare_methods(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    asked: Mapping[str, bool], folds_too: bool = False, seed: int = 0,
                    device: str = "auto", n_resamples: int = 2000
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Every method of the chapter on every main experiment, scored and compared in pairs.

    Parameters
    ----------
    run_dir : path-like
        The run whose chapters 4-6 and 8 have run.
    out_dir : path-like
        Where the extra trainings write (``<experiment>/<variant>/``).
    asked : mapping
        Which :data:`VARIANTS` to train (their parameter names -> bool).
    folds_too : bool
        Train the variants on the event folds of the clip experiments as well
        (else on the random splits only).

    Returns
    -------
    scores : pd.DataFrame
        One row per experiment and method (:func:`scores_table`), with
        ``experiment``, ``key``, ``task``.
    effects : pd.DataFrame
        The chapters' fine-tuned network minus each other method, paired
        (:func:`paired_effects`), with ``experiment`` and ``key``; Holm's
        adjustment runs over all its rows (:func:`with_holm`).
    record : dict
        Per task, the frozen probe's network and its weights' record.
    """
    from .baselines import study_splits
    from .files import write_table

    scores, effects, record = [], [], {}
    for task in ("emotions", "football"):
        experiments = experiments_of(task)
        network, title, _ = _chapter_network(run_dir, experiments[0])
        splits = {e.key: study_splits(metrics_path(run_dir, e).parent) for e in experiments}
        blocks = pd.concat([t for f in splits.values() for pair in f for t in pair]) \
            .drop_duplicates("block_id")
        root = study_images(run_dir, task)
        paths = [root / p for p in blocks["image_path"].astype(str)]
        vectors, info = network_features(paths, network=network)
        features = dict(zip(blocks["block_id"].astype(str), vectors))
        random_vectors, _ = network_features(paths, network=network, weights="scratch", seed=seed)
        random_features = dict(zip(blocks["block_id"].astype(str), random_vectors))
        record[task] = {"network": network, "weights_info": info, "n_images": len(blocks)}
        for e in experiments:
            classes = read_json(metrics_path(run_dir, e))["classes"]
            found = method_predictions(run_dir, e)
            mine = next(iter(found))
            probe, random_probe = PROBES[0].format(title=title), PROBES[1].format(title=title)
            found[probe] = frozen_probe(splits[e.key], features, classes, seed=seed)
            found[random_probe] = frozen_probe(splits[e.key], random_features, classes, seed=seed)
            for name, net, weights, fine_tune in _variants(run_dir, e, asked, folds_too):
                folder = Path(out_dir) / e.key / f"{net}_{weights}_{fine_tune}"
                found[name] = train_variant(e, run_dir, folder, network=net, weights=weights,
                                            fine_tune=fine_tune, device=device, on_folds=folds_too)
            for name, table in found.items():
                write_table(Path(out_dir) / e.key / f"{_slug(name)}_predictions.csv", table)
            where = {"experiment": e.title, "key": e.key, "task": task}
            scores.append(scores_table(found, classes, seed=seed, n_resamples=n_resamples)
                          .assign(**where))
            # the fine-tuned network against every other method, and the two probes (same
            # network, same classifier: ImageNet weights against random ones)
            pairs = [(mine, other) for other in found if other != mine] + [(probe, random_probe)]
            effects.append(paired_effects(found, pairs, seed=seed, n_resamples=n_resamples)
                           .assign(**where))
    return pd.concat(scores, ignore_index=True), with_holm(pd.concat(effects, ignore_index=True)), \
        record


def with_holm(effects: pd.DataFrame) -> pd.DataFrame:
    """A table of paired effects with Holm's adjustment over all its rows (one page's family).

    Adds ``p_holm``, ``holm_m`` (the family's size) and ``significant``
    (``p_holm`` below :data:`crowdnb.significance.LEVEL`).
    """
    return effects.assign(p_holm=holm(effects["p"].to_numpy(float)), holm_m=len(effects),
                          significant=lambda t: t["p_holm"] < LEVEL)


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60]
