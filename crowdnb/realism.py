"""How far the synthetic corpus is from real crowds: the realism check.

Every chapter runs, by default, on the synthetic corpus (:mod:`crowdnb.synth`),
so what the book concludes offline is worth what the corpus resembles real
crowds. Given a folder of labelled real recordings (a *reference*: a user's
own, or any corpus the ``folder`` source reads), the check does two things.

1. **Transfer**: the cheap baselines (:mod:`crowdnb.baselines`) and, on
   request, the image network (:func:`crowdnb.train.train_model`) are trained
   on the synthetic corpus's balanced blocks only, with the paper's
   preprocessing, and score every block of the reference recordings, which
   they have never heard: balanced accuracy against chance, the confusion
   matrix, and what each file was called. The reference recordings are
   scored as they are (not balanced, pooled over files), so the balanced
   accuracy is the figure to read; each file is an event, and with fewer
   than five files per class no interval over files is drawn.
2. **Statistics**: per 2 s block, the statistics that tell crowds apart
   (:mod:`crowdnb.crowdstats`: long-term spectrum, centroid, flatness,
   modulation spectrum, loudness dynamics, onset rate, stereo width),
   compared class by class with Cliff's delta, largest gap first.

Entry point: :func:`realism_check`, used by chapter 1 (``reference_dir``) and
``benchmarks/realism_check.py``. The check never copies the reference files
(the collection references them by path) and never trains on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import baselines
from .clips import read_clips
from .config import PreprocessConfig, TrainRecipe
from .dataset import balance, preprocess
from .errors import DataError, ParameterError
from .evaluation import evaluate_predictions
from .experiments import score_numbers
from .files import read_table, write_json, write_table
from .provenance import library_versions

__all__ = [
    "EMOTIONS",
    "NETWORK",
    "Reference",
    "Transfer",
    "RealismCheck",
    "check_reference",
    "collect_reference",
    "transfer_scores",
    "select_baselines",
    "file_table",
    "realism_check",
    "method_table",
    "realism_findings",
    "seed_table",
    "mean_gap",
    "largest_gaps",
    "realism_markdown",
    "VOICE_STATISTICS",
    "plot_class_statistics",
]

EMOTIONS = ("joy", "anger", "neutral")
#: How the results name the image network (the study's, fine-tuned from ImageNet;
#: EfficientNet-Lite0 where AlexNet's weights cannot be had, as in chapters 4-6).
NETWORK = "image network fine-tuned from ImageNet"
#: The image networks the check trains: (name, network, initial weights). The
#: pair answers whether ImageNet pretraining carries across from synthetic to
#: real crowds.
IMAGE_NETWORKS = (
    (NETWORK, "alexnet", "imagenet"),
    ("AlexNet from random weights", "alexnet", "scratch"),
)


@dataclass
class Reference:
    """The reference recordings of one check.

    Attributes
    ----------
    clips : pd.DataFrame
        The clips with a label among the check's classes (absolute paths).
    left_out : pd.DataFrame
        The collected clips with other labels (``clip_id``, ``label``).
    folder : Path
        The collection folder (``clips.csv``, ``card.md``, ``collection_report.csv``).
    """

    clips: pd.DataFrame
    left_out: pd.DataFrame
    folder: Path


def _renamed_csv(csv_path: Path, out_dir: Path, *, path_column: str, label_column: str) -> Path:
    """A copy of a CSV list whose path and label columns have the folder source's names."""
    table = read_table(csv_path, required=[path_column, label_column], what="reference list")
    table = table.drop(columns=[c for c in ("path", "label")
                                if c in table.columns and c not in (path_column, label_column)])
    table = table.rename(columns={path_column: "path", label_column: "label"})
    out = out_dir / "reference_list.csv"
    write_table(out, table)
    return out


def check_reference(
    reference: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    path_column: str = "path",
    label_column: str = "label",
) -> None:
    """Check, before anything is computed, that a reference can be read at all.

    The folder or CSV list must exist, a CSV must have the path and label
    columns (``path_column``, ``label_column``), and ``data_dir`` must be a
    folder. What the files hold is checked when they are collected
    (:func:`collect_reference`).

    Raises
    ------
    DataError
        Naming the reference (or ``data_dir``) and what is missing.
    """
    reference = Path(reference)
    if not reference.exists():
        raise DataError(f"{reference}: reference recordings not found (a directory with one "
                        "sub-folder per label, or a CSV list with path and label columns)")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"{data_dir}: the folder the reference list's paths are relative to "
                        "(data_dir) was not found")
    if not reference.is_file():
        return
    try:
        columns = list(pd.read_csv(reference, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{reference}: cannot read the reference list ({exc})") from None
    # the folder source reads its own column names regardless of case
    found = [str(c).strip().lower() for c in columns] \
        if (path_column, label_column) == ("path", "label") else columns
    for what, name in (("path_column", path_column), ("label_column", label_column)):
        if name not in found:
            raise DataError(f"{reference}: the reference list has no column {name!r} ({what}; "
                            f"its columns: {', '.join(map(str, columns)) or 'none'})")


def collect_reference(
    reference: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    path_column: str = "path",
    label_column: str = "label",
    classes: Sequence[str] = EMOTIONS,
    progress: bool = False,
) -> Reference:
    """Collect a folder of labelled reference recordings, by path (nothing is copied).

    Parameters
    ----------
    reference : path-like
        What the ``folder`` source reads (:func:`crowdnb.sources.collect_folder`):
        a directory with one sub-folder per label, or a CSV list of files.
    out_dir : path-like
        Where the collection (``out_dir/collection``: clips table, card,
        report) and, for a CSV with other column names, its renamed copy go;
        refreshed on every call.
    data_dir : path-like or None
        For a CSV: the folder its paths are relative to (default: its own).
    path_column, label_column : str
        For a CSV whose columns are not named ``path`` and ``label`` (a
        corpus's own manifest, e.g. ``file`` and ``proposed_label``).
    classes : sequence of str
        The labels the check scores; clips with other study labels (goal,
        no_goal) are collected and left out, and :attr:`Reference.left_out` says which.

    Raises
    ------
    DataError
        When the reference is missing or holds no clip of ``classes``.
    """
    from .sources import collect_folder

    reference, out_dir = Path(reference), Path(out_dir)
    check_reference(reference, data_dir=data_dir, path_column=path_column,
                    label_column=label_column)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = reference
    if reference.is_file() and (path_column, label_column) != ("path", "label"):
        source = _renamed_csv(reference, out_dir, path_column=path_column, label_column=label_column)
        data_dir = data_dir if data_dir is not None else reference.parent
    # the study's labels are collected (and those outside the check left out, by
    # name); any other label stops the collection with the folder source's message
    study = sorted({*classes, *EMOTIONS, "goal", "no_goal"})
    collection = collect_folder(source, out_dir / "collection", copy=False, data_dir=data_dir,
                                labels=study, existing="replace", progress=progress)
    clips = collection.clips
    inside = clips["label"].isin(list(classes))
    if not inside.any():
        raise DataError(f"{reference}: no reference recording is labelled "
                        f"{', '.join(classes)} (labels found: "
                        f"{', '.join(sorted(set(clips['label']))) or 'none'})")
    return Reference(clips=clips[inside].reset_index(drop=True),
                     left_out=clips.loc[~inside, ["clip_id", "label"]].reset_index(drop=True),
                     folder=out_dir / "collection")


@dataclass
class Transfer:
    """What :func:`transfer_scores` returns.

    Attributes
    ----------
    predictions : dict
        ``{method: predictions}`` (one row per test block: ``predicted``,
        ``prob_<class>``), the baselines of :data:`crowdnb.baselines.BASELINES`
        first, then the image networks (:data:`IMAGE_NETWORKS`) when trained.
    network_metrics : dict
        ``{method: training metrics}`` of each image network
        (:func:`crowdnb.train.train_model`: weights used, recipe, timings);
        empty without them.
    """

    predictions: dict
    network_metrics: dict = field(default_factory=dict)


def transfer_scores(
    train_blocks: pd.DataFrame,
    train_clips: pd.DataFrame,
    test_blocks: pd.DataFrame,
    test_clips: pd.DataFrame,
    *,
    classes: Sequence[str] = EMOTIONS,
    config: PreprocessConfig = PreprocessConfig(),
    seed: int = 0,
    network: bool = False,
    image_root: str | os.PathLike | None = None,
    network_dir: str | os.PathLike | None = None,
    recipe: TrainRecipe = TrainRecipe(),
    weights: str | os.PathLike = "imagenet",
    networks: Sequence[tuple[str, str, str]] = IMAGE_NETWORKS,
    baseline_names: Sequence[str] | None = None,
    progress: bool = False,
) -> Transfer:
    """Every method trained on one set of blocks and scored on another's.

    Parameters
    ----------
    train_blocks, test_blocks : pd.DataFrame
        Block tables (``block_id``, ``clip_id``, ``label``; ``image_path``
        relative to ``image_root`` for the network); block ids unique across both.
    train_clips, test_clips : pd.DataFrame
        Their clips tables (``clip_id``, absolute ``path``).
    network : bool
        Also train the image networks (:func:`crowdnb.train.train_model` with
        ``recipe``; no intermediate validation: the test blocks are scored
        once, at the end).
    network_dir : path-like or None
        Where each network's metrics, predictions and checkpoint go (a folder each).
    weights : str or path
        The initial weights of the networks that start from ImageNet
        (``"imagenet"``, or a file); where AlexNet's cannot be had,
        EfficientNet-Lite0 is fine-tuned from its packaged ImageNet weights.
    networks : sequence of (name, network, weights)
        The image networks (default :data:`IMAGE_NETWORKS`: the study's
        network from ImageNet, and AlexNet from random weights).
    baseline_names : sequence of str or None
        The baselines to run, by their names in :data:`crowdnb.baselines.BASELINES`
        (default: all of them).
    """
    from dataclasses import replace

    classes = list(classes)
    overlap = set(train_blocks["block_id"]) & set(test_blocks["block_id"])
    if overlap:
        raise DataError(f"{len(overlap)} block id(s) are in both the training and the test set "
                        f"(e.g. {sorted(overlap)[0]!r})")
    spectra = {}
    for clips, blocks in ((train_clips, train_blocks), (test_clips, test_blocks)):
        S = baselines.block_log_mels(clips, blocks, config=config, progress=progress)
        spectra.update(zip(blocks["block_id"].astype(str), S))
    out = baselines.run_baselines([(train_blocks, test_blocks)], spectra, classes, seed=seed,
                                  methods=select_baselines(baseline_names))
    out = {name: table.drop(columns="fold") for name, table in out.items()}
    if not network:
        return Transfer(out)
    from .train import train_model

    if image_root is None:
        raise ParameterError("image_root: the network needs the folder the image paths "
                             "are relative to")
    trained = {}
    for name, net, init in networks:
        folder = None if network_dir is None else Path(network_dir) / _slug(name)
        result = train_model(train_blocks, test_blocks, image_root=image_root, out_dir=folder,
                             recipe=replace(recipe, validate_every=None), network=net,
                             weights=weights if init == "imagenet" else init, seed=seed,
                             classes=classes, preprocessing=config, progress=progress)
        out[name] = result.predictions
        trained[name] = result.metrics
    return Transfer(out, trained)


def select_baselines(names: Sequence[str] | None) -> dict:
    """The baselines of :data:`crowdnb.baselines.BASELINES` named (all when ``names`` is None).

    Raises
    ------
    ParameterError
        For a name that is not a baseline's.
    """
    if names is None:
        return dict(baselines.BASELINES)
    unknown = [n for n in names if n not in baselines.BASELINES]
    if unknown:
        raise ParameterError(f"unknown baseline(s) {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(map(repr, baselines.BASELINES))})")
    return {n: baselines.BASELINES[n] for n in names}


def file_table(predictions: Mapping[str, pd.DataFrame], clips: pd.DataFrame,
               classes: Sequence[str]) -> pd.DataFrame:
    """What each method called each reference file: its blocks' shares per class and the vote.

    One row per method and file: ``method``, ``clip_id``, ``label``,
    ``n_blocks``, ``share_<class>`` (fraction of its blocks given that class),
    ``vote`` (the most frequent answer), ``correct`` (the vote is the label),
    and the file's original ``sample_rate`` and ``channels``.
    """
    meta = clips.set_index("clip_id")
    rows = []
    for method, table in predictions.items():
        for clip_id, group in table.groupby("clip_id", sort=True):
            shares = group["predicted"].value_counts(normalize=True)
            row = {"method": method, "clip_id": clip_id, "label": group["label"].iloc[0],
                   "n_blocks": len(group)}
            row.update({f"share_{c}": float(shares.get(c, 0.0)) for c in classes})
            row["vote"] = max(classes, key=lambda c: (shares.get(c, 0.0), -classes.index(c)))
            row["correct"] = row["vote"] == row["label"]
            for column in ("sample_rate", "channels"):
                if column in meta.columns:
                    row[column] = meta.at[clip_id, column]
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class RealismCheck:
    """The results of :func:`realism_check` (also written to its folder).

    Attributes
    ----------
    folder : Path
    reference : Reference
    classes : list of str
    predictions : dict
        ``{method: predictions on the reference blocks}``.
    metrics : dict
        ``{method: crowdnb.evaluation.evaluate_predictions(...)}``.
    files : pd.DataFrame
        :func:`file_table`.
    synthetic_statistics, reference_statistics : pd.DataFrame
        :func:`crowdnb.crowdstats.statistics_table` of the synthetic and reference clips.
    comparison : pd.DataFrame
        :func:`crowdnb.crowdstats.compare`, largest gap first within each class.
    summary : dict
        Parameters, seed, counts, versions, weights used (``summary.json``).
    """

    folder: Path
    reference: Reference
    classes: list
    predictions: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    files: pd.DataFrame = field(default_factory=pd.DataFrame)
    synthetic_statistics: pd.DataFrame = field(default_factory=pd.DataFrame)
    reference_statistics: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict = field(default_factory=dict)


def _slug(method: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in method.lower()).strip("_")


def realism_check(
    synthetic: str | os.PathLike | pd.DataFrame,
    reference: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    classes: Sequence[str] = EMOTIONS,
    config: PreprocessConfig = PreprocessConfig(),
    seed: int = 0,
    network: bool = True,
    recipe: TrainRecipe = TrainRecipe(),
    weights: str | os.PathLike = "imagenet",
    data_dir: str | os.PathLike | None = None,
    path_column: str = "path",
    label_column: str = "label",
    cache_dir: str | os.PathLike | None = None,
    statistics: bool = True,
    corpus: str = "synthetic",
    baseline_names: Sequence[str] | None = None,
    progress: bool = True,
) -> RealismCheck:
    """Train on the synthetic corpus, score on real recordings, compare their statistics.

    Parameters
    ----------
    synthetic : path-like or pd.DataFrame
        The synthetic collection (folder or ``clips.csv``, or its clips table):
        the emotions collection of :func:`crowdnb.synth.synthesize`.
    reference : path-like
        The labelled real recordings (:func:`collect_reference`).
    out_dir : path-like
        The check's folder; its files are rewritten by every call:
        ``reference_collection/``, the preprocessed ``synthetic/`` and
        ``reference/`` blocks and images, ``network/`` (the network's
        checkpoint and metrics), ``predictions_<method>.csv``, ``files.csv``,
        ``metrics.json``, the statistics and ``comparison.csv``, and
        ``summary.json`` (parameters, seed, counts, versions, weights used).
    classes : sequence of str
        The classes trained and scored.
    config : PreprocessConfig
        The preprocessing (default: the paper's) of both sides.
    seed : int
        Seeds the balancing of the synthetic blocks and every method.
    network : bool
        Also train and score the image network (minutes on a CPU).
    recipe, weights
        The network's training recipe and initial weights (:func:`crowdnb.train.train_model`).
    data_dir, path_column, label_column
        How to read a CSV reference (:func:`collect_reference`).
    cache_dir : path-like or None
        The preprocessing cache (:func:`crowdnb.dataset.preprocess`).
    statistics : bool
        Also compute and compare the crowd statistics.
    corpus : str
        How the results name the training clips ("synthetic"; "collected"
        when they are recordings themselves).
    baseline_names : sequence of str or None
        The baselines to run (:func:`select_baselines`; default all).
    progress : bool
        Show progress bars.

    Returns
    -------
    RealismCheck
    """
    out_dir = Path(out_dir)
    classes = list(classes)
    select_baselines(baseline_names)  # a misspelt name fails before any work
    synthetic_clips = synthetic if isinstance(synthetic, pd.DataFrame) else read_clips(synthetic)
    synthetic_clips = synthetic_clips[synthetic_clips["label"].isin(classes)].reset_index(drop=True)
    missing = [c for c in classes if c not in set(synthetic_clips["label"])]
    if missing:
        raise DataError(f"synthetic corpus: no clip labelled {', '.join(missing)}")
    ref = collect_reference(reference, out_dir / "reference_collection", data_dir=data_dir,
                            path_column=path_column, label_column=label_column,
                            classes=classes, progress=progress)

    shared = set(ref.clips["clip_id"]) & set(synthetic_clips["clip_id"])
    if shared:  # e.g. a corpus and a reference both made of joy/a.wav, ...
        ref.clips["clip_id"] = [f"reference-{c}" if c in shared else c for c in ref.clips["clip_id"]]
    # Both sides through the paper's preprocessing, images under one root.
    sides = {}
    for name, clips in (("synthetic", synthetic_clips), ("reference", ref.clips)):
        done = preprocess(clips, out_dir / name, config=config, cache_dir=cache_dir,
                          progress=progress)
        blocks = done.kept
        blocks["image_path"] = [f"{name}/{p}" for p in blocks["image_path"]]
        sides[name] = blocks
    train = balance(sides["synthetic"], seed=seed)[0].reset_index(drop=True)
    test = sides["reference"]
    if test.empty:
        raise DataError(f"{reference}: no reference recording gives a kept 2 s block")
    transfer = transfer_scores(
        train, synthetic_clips, test, ref.clips, classes=classes, config=config, seed=seed,
        network=network, image_root=out_dir, network_dir=out_dir / "network", recipe=recipe,
        weights=weights, baseline_names=baseline_names, progress=progress)
    predictions = transfer.predictions
    metrics = {}
    for method, table in predictions.items():
        table["event_id"] = table["clip_id"]  # each reference file is its own event
        metrics[method] = evaluate_predictions(table, classes, seed=seed,
                                               train_labels=train["label"].astype(str).tolist())
        write_table(out_dir / f"predictions_{_slug(method)}.csv", table)
    files = file_table(predictions, ref.clips, classes)
    write_table(out_dir / "files.csv", files)

    result = RealismCheck(folder=out_dir, reference=ref, classes=classes,
                          predictions=predictions, metrics=metrics, files=files)
    if statistics:
        from . import crowdstats

        result.synthetic_statistics = crowdstats.statistics_table(
            synthetic_clips, sr=config.audio.sr, progress=progress)
        result.reference_statistics = crowdstats.statistics_table(
            ref.clips, sr=config.audio.sr, progress=progress)
        result.comparison = crowdstats.compare(result.synthetic_statistics,
                                               result.reference_statistics, classes=classes)
        write_table(out_dir / "statistics_synthetic.csv", result.synthetic_statistics)
        write_table(out_dir / "statistics_reference.csv", result.reference_statistics)
        write_table(out_dir / "comparison.csv", result.comparison)

    result.summary = {
        "corpus": corpus,
        "classes": classes,
        "seed": int(seed),
        "preprocessing": config.to_dict(),
        "reference": {"input": str(Path(reference).resolve()),
                      "clips": int(len(ref.clips)),
                      "duration_s": float(ref.clips["duration_s"].sum()),
                      "clips_per_class": {c: int((ref.clips["label"] == c).sum()) for c in classes},
                      "blocks_per_class": {c: int((test["label"] == c).sum()) for c in classes},
                      "left_out": ref.left_out.to_dict("records")},
        "synthetic": {"clips": int(len(synthetic_clips)),
                      "training_blocks": int(len(train)),
                      "blocks_per_class": {c: int((train["label"] == c).sum()) for c in classes}},
        "methods": {m: score_numbers(v) for m, v in metrics.items()},
        "network": ({name: {k: m.get(k) for k in ("pretrained", "weights_info", "params", "device",
                                                  "training")}
                     for name, m in transfer.network_metrics.items()} or None),
        "versions": library_versions(),
    }
    write_json(out_dir / "summary.json", result.summary)
    write_json(out_dir / "metrics.json", metrics)
    return result


def method_table(result: RealismCheck) -> pd.DataFrame:
    """One row per method: its scores on the reference blocks, with chance and what it answers most."""
    rows = []
    for method, metrics in result.metrics.items():
        n = score_numbers(metrics)
        rows.append({"method": method, "balanced accuracy": n["balanced_accuracy"],
                     "chance (balanced)": n["chance_balanced"], "accuracy": n["accuracy"],
                     "best constant": n["chance_constant"],
                     "most frequent answer": f"{n['majority_class']} ({n['majority_share']:.0%})",
                     "files right (vote)": f"{int(result.files.loc[result.files['method'] == method, 'correct'].sum())}"
                                           f" of {int((result.files['method'] == method).sum())}"})
    return pd.DataFrame(rows)


def realism_findings(result: RealismCheck) -> str:
    """What the transfer scores say, one sentence per method, chosen by the numbers.

    :func:`crowdnb.report.verdict` on each method's scores over the
    reference blocks (each file an event): a method answering one class is
    called a constant classifier; without five files per class, nothing is
    said of chance beyond the numbers.
    """
    from .report import verdict

    sentences = []
    for method, metrics in result.metrics.items():
        if method == "constant classifier":
            continue
        sentences.append(verdict(score_numbers(metrics), name=f"{method} (trained on "
                                 f"{result.summary['corpus']} blocks only)", units="real blocks"))
    return " ".join(sentences)


def seed_table(results: Mapping[int, RealismCheck]) -> pd.DataFrame:
    """The check repeated over corpus seeds: each method's balanced accuracy per seed and its spread.

    A small corpus (the paper preset has 18 events) moves the transfer score
    by a tenth or more from one corpus seed to the next, so a change to the
    synthesizer is judged on several seeds, not one.

    Parameters
    ----------
    results : mapping of int to RealismCheck
        The check of each corpus seed.

    Returns
    -------
    pd.DataFrame
        One row per method: ``seed <n>`` columns, ``mean``, ``min``,
        ``max``, ``chance`` (balanced) and ``seeds above 0.6``.
    """
    rows = {}
    for seed, result in results.items():
        for method, metrics in result.metrics.items():
            numbers = score_numbers(metrics)
            row = rows.setdefault(method, {"method": method,
                                           "chance": numbers["chance_balanced"]})
            row[f"seed {seed}"] = numbers["balanced_accuracy"]
    table = pd.DataFrame(list(rows.values()))
    scores = table[[f"seed {s}" for s in results]]
    table["mean"] = scores.mean(axis=1)
    table["min"] = scores.min(axis=1)
    table["max"] = scores.max(axis=1)
    table["seeds above 0.6"] = [f"{int(n)} of {len(results)}" for n in (scores >= 0.6).sum(axis=1)]
    return table[["method", *scores.columns, "mean", "min", "max", "chance", "seeds above 0.6"]]


def mean_gap(results: Mapping[int, RealismCheck]) -> float:
    """Mean |Cliff's delta| over classes and statistics, averaged over the checks
    (NaN when none compared statistics): 0 no shift anywhere, 1 no overlap anywhere."""
    gaps = [result.comparison["cliffs_delta"].abs().mean() for result in results.values()
            if not result.comparison.empty]
    return float(np.mean(gaps)) if gaps else float("nan")


def largest_gaps(comparison: pd.DataFrame, *, per_class: int = 3) -> pd.DataFrame:
    """The ``per_class`` statistics of each class where synthetic and real blocks differ most."""
    if comparison.empty:
        return comparison
    table = comparison.dropna(subset=["cliffs_delta"]).copy()
    table["size"] = table["cliffs_delta"].abs()
    table = table.sort_values(["label", "size"], ascending=[True, False], kind="stable")
    return table.groupby("label", sort=False).head(per_class).drop(columns="size")


def _network_words(networks: Mapping | None) -> str:
    """Which image networks were trained, from which weights, in words."""
    if not networks:
        return ""
    words = []
    for name, m in networks.items():
        title = (m.get("weights_info") or {}).get("title", "AlexNet")
        words.append(f"{name}: {title}, " + (
            "fine-tuned from ImageNet weights checked by their SHA-256 and on photographs"
            if m.get("pretrained") else "from random weights with its from-scratch recipe"))
    return " Image networks (" + "; ".join(words) + ")."


#: The statistics that tell real cheering from real booing and rioting
#: (issue 27): the voices' pitch and its spread, screams and whistles, the
#: vowels, the claps, the spectrum's balance.
VOICE_STATISTICS = ("pitch_hz", "pitch_spread_st", "voiced_share", "tonal_rate_hz",
                    "vowel_centroid_hz", "clap_rate_hz", "clap_kurtosis", "centroid_hz",
                    "flatness_db")


def plot_class_statistics(synthetic: pd.DataFrame, real: pd.DataFrame, *, label: str = "joy",
                          against: str = "anger",
                          statistics: Sequence[str] = VOICE_STATISTICS, axes=None):
    """One class's statistics, synthetic against real, beside the class it is mistaken for.

    Four boxes per panel: synthetic ``label``, real ``label``, real
    ``against``, synthetic ``against`` (median, quartiles, whiskers at 1.5
    IQR, no fliers). A synthetic class is where it should be when its box
    sits on the real one of its own class, away from the other class's.

    Parameters
    ----------
    synthetic, real : pd.DataFrame
        :func:`crowdnb.crowdstats.statistics_table` outputs.
    label, against : str
        The class shown, and the one it is confused with.
    statistics : sequence of str
        Columns of both tables, one panel each (those missing are skipped).
    axes : sequence of matplotlib Axes, optional
        At least one per statistic; a new grid of three columns when None.

    Returns
    -------
    list of matplotlib Axes
    """
    from .crowdstats import STATISTICS
    from .plots import _panels

    statistics = [s for s in statistics if s in synthetic.columns and s in real.columns]
    panels, _ = _panels(len(statistics), axes, ncols=3)
    boxes = ((f"synthetic\n{label}", synthetic, label, "tab:blue"),
             (f"real\n{label}", real, label, "tab:orange"),
             (f"real\n{against}", real, against, "tab:red"),
             (f"synthetic\n{against}", synthetic, against, "tab:purple"))
    for ax, stat in zip(panels, statistics):
        for i, (_, table, cls, colour) in enumerate(boxes):
            v = table.loc[table["label"] == cls, stat].to_numpy(float)
            v = v[np.isfinite(v)]
            if v.size:
                ax.boxplot([v], positions=[i], widths=0.6, showfliers=False, patch_artist=True,
                           boxprops={"facecolor": colour, "alpha": 0.5},
                           medianprops={"color": "black"})
        ax.set_xticks(range(len(boxes)), [b[0] for b in boxes], fontsize="x-small")
        ax.set_title(STATISTICS.get(stat, stat), fontsize="small")
    return panels


def realism_markdown(result: RealismCheck) -> str:
    """The check in MyST Markdown: what was compared, the scores, each file, the largest gaps."""
    ref = result.summary["reference"]
    syn = result.summary["synthetic"]
    corpus = result.summary["corpus"]
    per_class = ", ".join(f"{c} {ref['clips_per_class'][c]} file(s), "
                          f"{ref['blocks_per_class'][c]} blocks" for c in result.classes)
    left_out = ", ".join(f"{r['clip_id']} ({r['label']})" for r in ref["left_out"])
    lines = [
        f"Reference: {ref['clips']} real recording(s), {ref['duration_s']:.0f} s ({per_class})"
        + (f"; left out (other labels): {left_out}" if left_out else "")
        + f". Training: {syn['training_blocks']} balanced {corpus} blocks from "
          f"{syn['clips']} clips." + _network_words(result.summary["network"]),
        "",
        method_table(result).to_markdown(index=False, floatfmt=".3f"),
        "",
        realism_findings(result),
    ]
    gaps = largest_gaps(result.comparison)
    if not gaps.empty:
        columns = [c for c in ("label", "statistic", "synthetic_median", "real_median",
                               "cliffs_delta") if c in gaps.columns]
        lines += ["", f"Where the {corpus} blocks differ most from the real ones (Cliff's delta: "
                  f"+1 every {corpus} block above every real one, -1 below, 0 no shift):", "",
                  gaps[columns].to_markdown(index=False, floatfmt=".3g")]
    return "\n".join(lines)
