"""Every figure of the book: data, spectrograms, training runs, results.

Each helper draws on ``ax`` (or ``fig``) when given, creates a figure only
when it is None, and returns what it drew, so a notebook can restyle it and a
test can check it. None calls ``plt.show()``.

Data: :func:`plot_durations`, :func:`plot_loudness`, :func:`plot_counts`.
Spectrograms: :func:`plot_waveform`, :func:`plot_spectrogram`, :func:`plot_gallery`.
Training: :func:`plot_learning_curves`, :func:`plot_confusion`,
:func:`plot_per_class`, and :func:`plot_training` (the three together).
Results: :func:`plot_accuracies`, :func:`plot_accuracy_by_position`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import PreprocessConfig
from .errors import DataError, ParameterError
from .files import read_json, read_table
from .spectrogram import colormap_palette, hop_length, hz_to_scale

__all__ = [
    "plot_durations",
    "plot_loudness",
    "plot_counts",
    "plot_waveform",
    "plot_spectrogram",
    "plot_gallery",
    "plot_learning_curves",
    "plot_confusion",
    "plot_per_class",
    "plot_training",
    "plot_accuracies",
    "plot_seed_spread",
    "plot_baselines",
    "plot_ablations",
    "plot_accuracy_by_position",
    "plot_realism_spectra",
    "plot_realism_statistics",
    "plot_realism_gaps",
    "plot_stage_graph",
]


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------------------
# Data


def plot_durations(clips: pd.DataFrame, *, ax=None):
    """Seconds of audio per class, each bar split into its events.

    Parameters
    ----------
    clips : pd.DataFrame
        A clips table (``label``, ``event_id``, ``duration_s`` in s).
    ax : matplotlib Axes, optional

    Returns
    -------
    list of matplotlib.container.BarContainer
        One container per event segment drawn.
    """
    ax = _axes(ax)
    table = clips.groupby(["label", "event_id"], sort=True)["duration_s"].sum().reset_index()
    labels = sorted(table["label"].unique())
    left = dict.fromkeys(labels, 0.0)
    bars = []
    for _, row in table.iterrows():
        bars.append(ax.barh(row["label"], row["duration_s"], left=left[row["label"]],
                            edgecolor="white", linewidth=0.8))
        left[row["label"]] += row["duration_s"]
    for label in labels:
        n_clips = int((clips["label"] == label).sum())
        n_events = int(clips.loc[clips["label"] == label, "event_id"].nunique())
        ax.text(left[label], label, f" {left[label]:.0f} s, {_count(n_clips, 'clip')}, "
                f"{_count(n_events, 'event')}", va="center", fontsize="small")
    ax.set_xlabel("duration (s); one segment per event")
    ax.set_xlim(0, max(left.values()) * 1.45 if left else 1)
    return bars


def plot_loudness(blocks: pd.DataFrame, *, target_lufs: float = PreprocessConfig().audio.target_lufs,
                  ax=None, bins: int = 30):
    """Block loudness before and after normalisation, per class.

    Before: each block's integrated loudness (BS.1770) as cut from its clip.
    After: that loudness plus the gain applied (a gain in dB moves the
    loudness by the same number of LU), for the blocks that were kept.

    Parameters
    ----------
    blocks : pd.DataFrame
        The block table (``label``, ``loudness_lufs``, ``gain_db``, ``kept``).
    target_lufs : float
        The target, drawn as a vertical line (LUFS).
    ax : matplotlib Axes, optional
    bins : int > 0

    Returns
    -------
    dict
        ``before`` (label -> the histogram patches), ``after`` (the patches of
        the normalised loudness), ``target`` (the line).
    """
    ax = _axes(ax)
    finite = blocks[np.isfinite(blocks["loudness_lufs"].astype(float))]
    kept = finite[finite["kept"].astype(bool)]
    after = kept["loudness_lufs"].astype(float) + kept["gain_db"].astype(float)
    low = min(finite["loudness_lufs"].min(), target_lufs) - 2 if len(finite) else target_lufs - 10
    high = max(finite["loudness_lufs"].max(), target_lufs) + 2 if len(finite) else target_lufs + 10
    edges = np.linspace(low, high, bins + 1)
    before = {}
    for label, group in finite.groupby("label", sort=True):
        _, _, patches = ax.hist(group["loudness_lufs"].astype(float), bins=edges, histtype="step",
                                linewidth=1.4, label=f"{label}, before")
        before[label] = patches
    _, _, after_patches = ax.hist(after, bins=edges, color="0.3", alpha=0.35,
                                  label="all kept blocks, after")
    target = ax.axvline(target_lufs, color="k", linestyle="--", linewidth=1,
                        label=f"target {target_lufs:g} LUFS")
    ax.set_xlabel("block loudness (LUFS)")
    ax.set_ylabel("blocks")
    ax.legend(fontsize="small")
    return {"before": before, "after": after_patches, "target": target}


def plot_counts(report: pd.DataFrame, *, ax=None):
    """Blocks per class before and after balancing, as grouped bars.

    Parameters
    ----------
    report : pd.DataFrame
        :func:`crowdnb.dataset.balance`'s report (``label``, ``before``, ``after``).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``before`` and ``after``: the bar containers.
    """
    ax = _axes(ax)
    x = np.arange(len(report))
    before = ax.bar(x - 0.2, report["before"], 0.4, label="before balancing", color="0.7")
    after = ax.bar(x + 0.2, report["after"], 0.4, label="after balancing", color="tab:blue")
    ax.bar_label(before, fontsize="small")
    ax.bar_label(after, fontsize="small")
    ax.set_xticks(x, report["label"])
    ax.set_ylabel("spectrogram images (blocks)")
    # room above the tallest bar and its label for the legend
    ax.set_ylim(0, 1.35 * max(float(report["before"].max()), 1.0))
    ax.legend(fontsize="small", loc="upper center", ncols=2, frameon=False)
    return {"before": before, "after": after}


# ---------------------------------------------------------------------------
# Spectrograms


def plot_waveform(block: np.ndarray, sr: int, *, ax=None, start_s: float = 0.0, **line_kwargs):
    """Plot a block's samples against time.

    Parameters
    ----------
    block : np.ndarray [shape=(n,)]
    sr : int > 0
        Sample rate in Hz.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.
    start_s : float
        Time of the first sample, in seconds (e.g. the block's start in its clip).

    Returns
    -------
    line : matplotlib.lines.Line2D
    """
    ax = _axes(ax)
    y = np.asarray(block)
    t = start_s + np.arange(y.size) / sr
    line_kwargs.setdefault("linewidth", 0.5)
    (line,) = ax.plot(t, y, **line_kwargs)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude (full scale)")
    ax.set_xlim(t[0] if t.size else start_s, t[-1] if t.size else start_s + 1)
    return line


def _hz_label(f: float) -> str:
    return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"


def plot_spectrogram(
    S_db: np.ndarray,
    sr: int,
    *,
    ax=None,
    config: PreprocessConfig = PreprocessConfig(),
    start_s: float = 0.0,
    colorbar: bool = True,
):
    """Show a mel PSD spectrogram with time in seconds and frequency in Hz.

    Bands are equally spaced on the frequency scale of ``config`` (mel unless
    an ablation chose another); the frequency ticks are labelled in Hz at
    their positions on it. The colours are the same quantised palette as the
    spectrogram images, on the same ``db_range`` (or the grid's own range
    where ``config.image.db_scaling`` is ``"per_image"``).

    Parameters
    ----------
    S_db : np.ndarray [shape=(n_mels, n_frames)]
        From :func:`crowdnb.spectrogram.block_spectrum` with ``config.spectrogram``.
    sr : int > 0
        Sample rate in Hz.
    ax : matplotlib Axes, optional
    config : PreprocessConfig
        The settings that made ``S_db`` (frame increment, window, band range)
        and those of the images (dB range, colours).
    start_s : float
        Time of the block's first sample in its clip, s.
    colorbar : bool
        Add a colour bar labelled in dB re 1/Hz.

    Returns
    -------
    image : matplotlib.image.AxesImage
        Its ``colorbar`` attribute holds the colour bar (or None).
    """
    from matplotlib.colors import ListedColormap

    ax = _axes(ax)
    S = np.asarray(S_db)
    n_mels, n_frames = S.shape
    mel, image = config.spectrogram, config.image
    hop, win_length, fmin = hop_length(sr, mel.frame_hop_s), mel.win_length, mel.fmin
    fmax = min(mel.fmax, sr / 2.0)
    scale = mel.freq_scale
    mels = np.linspace(hz_to_scale(fmin, scale), hz_to_scale(fmax, scale), n_mels + 2)
    step = mels[1] - mels[0]
    centres_s = start_s + (win_length / 2 + np.arange(n_frames) * hop) / sr
    half = hop / sr / 2
    low, high = image.db_range if image.db_scaling == "fixed" else (float(S.min()), float(S.max()))
    cmap = ListedColormap(colormap_palette(image.colormap, image.n_colors),
                          name=f"{image.colormap}{image.n_colors}")
    image = ax.imshow(
        S, origin="lower", aspect="auto", cmap=cmap, vmin=low, vmax=high,
        interpolation="nearest",
        extent=(centres_s[0] - half, centres_s[-1] + half, mels[1] - step / 2,
                mels[-2] + step / 2),
    )
    # Low frequencies are crowded on a mel axis: label only from 100 Hz up.
    ticks = [f for f in (100, 500, 1000, 2000, 5000, 10000, 20000) if fmin <= f <= fmax]
    ax.set_yticks(hz_to_scale(ticks, scale))
    ax.set_yticklabels([_hz_label(f) for f in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"frequency (Hz, {scale} scale)")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="PSD (dB re 1/Hz, full scale)")
    return image


def plot_gallery(images: Sequence, labels: Sequence[str], *, n_per_class: int = 4, fig=None):
    """A grid of spectrogram images: one row per class, the first few of each.

    Parameters
    ----------
    images : sequence of np.ndarray [shape=(rows, columns, 3)] or PNG paths
    labels : sequence of str
        The class of each image.
    n_per_class : int > 0
        Columns: images shown per class (in the order given).
    fig : matplotlib Figure, optional
        Where to draw; a new figure is made when None.

    Returns
    -------
    axes : np.ndarray [shape=(n_classes, n_per_class)] of matplotlib Axes
        Rows in sorted class order; cells without an image are left blank.
    """
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
        raise ParameterError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    if len(images) != len(labels):
        raise ParameterError(f"{len(images)} images but {len(labels)} labels")
    classes = sorted(set(labels))
    if not classes:
        raise ParameterError("plot_gallery needs at least one image")
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(1.6 * n_per_class + 1.0, 1.6 * len(classes)))
    axes = np.asarray(fig.subplots(len(classes), n_per_class, squeeze=False))
    for row, label in enumerate(classes):
        chosen = [img for img, lab in zip(images, labels) if lab == label][:n_per_class]
        for col in range(n_per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(chosen):
                img = chosen[col]
                if isinstance(img, (str, os.PathLike)):
                    from PIL import Image

                    with Image.open(img) as opened:
                        img = np.asarray(opened.convert("RGB"))
                ax.imshow(img)
            else:
                ax.set_axis_off()
            if col == 0:
                ax.set_ylabel(label)
    return axes


# ---------------------------------------------------------------------------
# Training runs


def _history(history: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    columns = ["iteration", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    if isinstance(history, (str, os.PathLike)):
        return read_table(Path(history), required=columns, what="training history")
    table = pd.DataFrame(history)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"training history lacks column(s) {', '.join(missing)}")
    return table


def _metrics(metrics: Mapping[str, Any] | str | os.PathLike) -> Mapping[str, Any]:
    if isinstance(metrics, (str, os.PathLike)):
        return read_json(metrics)
    return metrics


def _column_of_axes(n: int = 1):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 1, figsize=(6.4, 2.6 * n + 0.6), sharex=True, squeeze=False)
    return list(axes[:, 0])


def plot_learning_curves(
    history: pd.DataFrame | str | os.PathLike,
    *,
    ax=None,
    metric: str = "both",
    iterations_per_epoch: int | None = None,
) -> dict[str, Any]:
    """Training and validation accuracy and loss against the iteration.

    The loss is drawn on a log scale (where every value is positive), so that
    a large first validation loss does not flatten the rest of the curve.
    Training values are the mean over the minibatches since the previous
    validation (with dropout, as trained); validation values are on the test
    set (or its validation subset), without dropout.

    Parameters
    ----------
    history : pd.DataFrame or path-like
        ``history.csv`` of a training run, or its table.
    ax : matplotlib Axes, or a sequence of two, optional
        Where to draw: with ``metric="both"`` two Axes (accuracy, loss); else
        one. Created when None.
    metric : {"both", "accuracy", "loss"}
        What to draw.
    iterations_per_epoch : int, optional
        Draw a faint vertical line at each epoch's end.

    Returns
    -------
    dict[str, matplotlib.lines.Line2D]
        The curves drawn, keyed ``train_accuracy``, ``val_accuracy``,
        ``train_loss``, ``val_loss`` (those asked for).
    """
    if metric not in ("both", "accuracy", "loss"):
        raise ParameterError(f"metric must be 'both', 'accuracy' or 'loss', not {metric!r}")
    table = _history(history)
    wanted = ["accuracy", "loss"] if metric == "both" else [metric]
    if ax is None:
        axes = _column_of_axes(len(wanted))
    else:
        axes = list(ax) if isinstance(ax, (Sequence, np.ndarray)) else [ax]
        if len(axes) != len(wanted):
            raise ParameterError(f"ax must hold {len(wanted)} Axes for metric={metric!r}, got {len(axes)}")
    lines = {}
    for axis, name in zip(axes, wanted):
        lines[f"train_{name}"], = axis.plot(table["iteration"], table[f"train_{name}"], "-", lw=1.2,
                                            color="tab:blue", label=f"training {name}")
        lines[f"val_{name}"], = axis.plot(table["iteration"], table[f"val_{name}"], "o--", ms=3, lw=1.2,
                                          color="tab:orange", label=f"validation {name}")
        if iterations_per_epoch:
            for x in range(iterations_per_epoch, int(table["iteration"].max()) + 1, iterations_per_epoch):
                axis.axvline(x, color="0.85", lw=0.8, zorder=0)
        axis.set_ylabel(name + (" (cross-entropy)" if name == "loss" else ""))
        if name == "accuracy":
            axis.set_ylim(-0.02, 1.02)
        elif np.all(table[["train_loss", "val_loss"]].to_numpy(float) > 0):
            # a first validation loss far above the rest would flatten a linear axis
            axis.set_yscale("log")
            axis.set_ylabel("loss (cross-entropy, log scale)")
        axis.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("iteration")
    return lines


def plot_confusion(
    metrics: Mapping[str, Any] | str | os.PathLike,
    *,
    ax=None,
    normalize: bool = True,
    cmap: str = "Blues",
):
    """Confusion matrix: counts, and each true class's row as percentages.

    Parameters
    ----------
    metrics : dict or path-like
        The metrics of a training run (``metrics.json`` or its dict).
    ax : matplotlib Axes, optional
        Where to draw; created when None.
    normalize : bool
        Colour by the row-normalised fraction (each true class sums to 1) and
        write "count (percent)" in the cells; else colour and write counts.
    cmap : str
        Matplotlib colormap.

    Returns
    -------
    matplotlib.image.AxesImage
        The matrix drawn (rows: true label, columns: predicted label).
    """
    confusion = _metrics(metrics)["confusion"]
    labels = list(confusion["labels"])
    counts = np.asarray(confusion["counts"], dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    if ax is None:
        ax = _axes(None)
    values = fractions if normalize else counts
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=1 if normalize else max(counts.max(), 1))
    for i in range(len(labels)):
        for j in range(len(labels)):
            text = f"{int(counts[i, j])}\n({100 * fractions[i, j]:.0f}%)" if normalize else f"{int(counts[i, j])}"
            dark = values[i, j] > 0.6 * (1 if normalize else max(counts.max(), 1))
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if dark else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    return image


def plot_per_class(metrics: Mapping[str, Any] | str | os.PathLike, *, ax=None) -> dict[str, Any]:
    """Precision, recall and F1 of each class as grouped bars.

    Parameters
    ----------
    metrics : dict or path-like
        The metrics of a training run (``metrics.json`` or its dict).
    ax : matplotlib Axes, optional
        Where to draw; created when None.

    Returns
    -------
    dict[str, matplotlib.container.BarContainer]
        The bars, keyed ``precision``, ``recall``, ``f1``.
    """
    per_class = _metrics(metrics)["per_class"]
    classes = list(per_class)
    if ax is None:
        ax = _axes(None)
    x = np.arange(len(classes))
    width = 0.26
    bars = {}
    for k, (score, colour) in enumerate((("precision", "tab:blue"), ("recall", "tab:orange"),
                                         ("f1", "tab:green"))):
        bars[score] = ax.bar(x + (k - 1) * width, [per_class[c][score] for c in classes], width,
                             label=score if score != "f1" else "F1", color=colour)
    ax.set_xticks(x, [f"{c}\n(n={per_class[c]['support']})" for c in classes])
    # the legend in a band of its own above the bars, which reach 1: it hides none
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score")
    ax.legend(loc="upper center", ncols=3, fontsize="small", frameon=False)
    return bars


def plot_training(metrics: Mapping[str, Any] | str | os.PathLike,
                  history: pd.DataFrame | str | os.PathLike, *, fig=None):
    """One training's figure: learning curves, confusion matrix, per-class scores.

    Parameters
    ----------
    metrics : mapping or path-like
        A training's metrics (``TrainResult.metrics`` or its ``metrics.json``).
    history : pd.DataFrame or path-like
        Its history (``TrainResult.history`` or ``history.csv``).
    fig : matplotlib Figure, optional

    Returns
    -------
    dict
        The Axes: ``accuracy``, ``loss``, ``confusion``, ``per_class``.
    """
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(10, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    axes = {"accuracy": fig.add_subplot(grid[0, 0]), "confusion": fig.add_subplot(grid[0, 1])}
    axes["loss"] = fig.add_subplot(grid[1, 0], sharex=axes["accuracy"])
    axes["per_class"] = fig.add_subplot(grid[1, 1])
    metrics = _metrics(metrics)
    per_epoch = (metrics.get("training") or {}).get("iterations_per_epoch")
    plot_learning_curves(history, ax=[axes["accuracy"], axes["loss"]],
                         iterations_per_epoch=per_epoch)
    plot_confusion(metrics, ax=axes["confusion"])
    plot_per_class(metrics, ax=axes["per_class"])
    return axes


# ---------------------------------------------------------------------------
# Results


def plot_accuracies(table: pd.DataFrame, *, ax=None):
    """This run's accuracies with their intervals beside the paper's numbers.

    Parameters
    ----------
    table : pd.DataFrame
        One row per experiment: ``experiment``, ``accuracy``, ``low``, ``high``
        (NaN where there is no interval) and ``paper`` (NaN where the paper
        gives no number); optionally ``chance``, the accuracy of the best
        constant answer on each test set, drawn as a grey bar.
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``run`` (the error bars), ``paper`` (the paper's markers, or None) and
        ``chance`` (its markers, or None).
    """
    ax = _axes(ax)
    y = np.arange(len(table))[::-1]
    acc = table["accuracy"].to_numpy(float)
    err = np.vstack([acc - table["low"].to_numpy(float), table["high"].to_numpy(float) - acc])
    run = ax.errorbar(acc, y, xerr=np.clip(err, 0, None), fmt="o", color="tab:blue", capsize=4,
                      label="this run (95 % interval)")
    paper = None
    has_paper = table["paper"].notna().to_numpy()
    if has_paper.any():
        paper = ax.plot(table["paper"].to_numpy(float)[has_paper], y[has_paper], "D",
                        color="tab:red", label="paper")[0]
    chance = None
    if "chance" in table.columns:
        chance = ax.plot(table["chance"].to_numpy(float), y, "|", color="0.45", markersize=16,
                         markeredgewidth=2, label="chance (constant answer)")[0]
    ax.set_yticks(y, table["experiment"])
    ax.set_ylim(-0.6, len(table) - 0.4)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("test accuracy")
    ax.grid(axis="x", color="0.9")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return {"run": run, "paper": paper, "chance": chance}


def plot_seed_spread(spread: pd.DataFrame, *, ax=None):
    """Each experiment's balanced accuracy, one dot per training seed, beside chance.

    Parameters
    ----------
    spread : pd.DataFrame
        :func:`crowdnb.experiments.seed_spread`'s table.
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``dots`` (one collection per experiment) and ``chance`` (its markers).
    """
    ax = _axes(ax)
    names = list(dict.fromkeys(spread["experiment"]))
    y = {name: len(names) - 1 - i for i, name in enumerate(names)}
    dots = []
    for name, group in spread.groupby("experiment", sort=False):
        jitter = np.linspace(-0.15, 0.15, len(group)) if len(group) > 1 else np.zeros(1)
        colours = np.where(group["degenerate"].to_numpy(bool), "tab:red", "tab:blue")
        dots.append(ax.scatter(group["balanced_accuracy"], y[name] + jitter, c=colours, s=28,
                               zorder=3))
    chance = spread.groupby("experiment", sort=False)["chance_balanced"].first()
    marks = ax.plot(chance.to_numpy(float), [y[n] for n in chance.index], "|", color="0.45",
                    markersize=16, markeredgewidth=2, label="chance (1/K)")[0]
    ax.scatter([], [], c="tab:blue", s=28, label="one seed")
    ax.scatter([], [], c="tab:red", s=28, label="one seed: constant classifier")
    ax.set_yticks(list(y.values()), list(y))
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("test balanced accuracy")
    ax.grid(axis="x", color="0.9")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return {"dots": dots, "chance": marks}


def plot_baselines(table: pd.DataFrame, *, fig=None):
    """Every method's balanced accuracy on every experiment, with intervals and chance.

    Parameters
    ----------
    table : pd.DataFrame
        One row per (experiment, method): ``experiment``, ``method``,
        ``balanced_accuracy``, ``balanced_low``/``balanced_high`` (NaN: no
        interval), ``chance_balanced`` and ``degenerate``.
    fig : matplotlib Figure, optional

    Returns
    -------
    list of Axes
        One per experiment, in the table's order.
    """
    import matplotlib.pyplot as plt

    import textwrap

    experiments = list(dict.fromkeys(table["experiment"]))
    methods = list(dict.fromkeys(table["method"]))
    columns = min(2, len(experiments))  # two panels a row: room for titles and method names
    rows = -(-len(experiments) // columns)
    if fig is None:
        fig = plt.figure(figsize=(9, rows * (0.4 * len(methods) + 1.3)), layout="constrained")
    grid = fig.subplots(rows, columns, sharey=True, sharex=True, squeeze=False)
    for extra in grid.flat[len(experiments):]:
        extra.remove()
    axes = grid.flat[:len(experiments)]
    y = {m: len(methods) - 1 - i for i, m in enumerate(methods)}
    for ax, name in zip(axes, experiments):
        rows = table[table["experiment"] == name]
        for row in rows.to_dict("records"):
            value = row["balanced_accuracy"]
            low, high = row["balanced_low"], row["balanced_high"]
            err = None if low != low else [[max(value - low, 0)], [max(high - value, 0)]]
            ax.errorbar([value], [y[row["method"]]], xerr=err, fmt="o", capsize=3,
                        color="tab:red" if row["degenerate"] else "tab:blue")
        ax.axvline(float(rows["chance_balanced"].iloc[0]), color="0.45", ls="--", lw=1)
        ax.set_title(name, fontsize="small")
        ax.set_xlim(-0.02, 1.02)
        ax.grid(axis="x", color="0.9")
    for ax in grid[-1]:
        ax.set_xlabel("balanced accuracy")
    grid[0, 0].set_yticks(list(y.values()), [textwrap.fill(m, 34) for m in y], fontsize="small")
    return list(axes)


def plot_ablations(table: pd.DataFrame, *, fig=None):
    """Each image ablation: its balanced accuracy, and its difference from the paper's image.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`crowdnb.ablations.ablation_table`: one row per point, with
        ``level``, ``factor``, ``balanced_accuracy`` and its interval,
        ``chance_balanced``, ``degenerate``, ``difference`` and its paired
        interval (NaN where not paired), ``paired``.
    fig : matplotlib Figure, optional

    Returns
    -------
    (Axes, Axes)
        Left: balanced accuracy with its interval over test events (where
        there is one) and chance (dashed). Right: the difference from the
        paper's image with its paired interval; a hollow marker has none (the
        point was tested on other blocks).
    """
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(9, 0.4 * len(table) + 1.4), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    names = [f"{row['level']} ({row['factor']})" if row["factor"] != "none" else row["level"]
             for row in table.to_dict("records")]
    y = np.arange(len(table))[::-1]
    for ax, value, low, high in ((left, "balanced_accuracy", "balanced_low", "balanced_high"),
                                 (right, "difference", "difference_low", "difference_high")):
        for k, row in enumerate(table.to_dict("records")):
            v, lo, hi = row[value], row[low], row[high]
            err = None if lo != lo else [[max(v - lo, 0)], [max(hi - v, 0)]]
            colour = "tab:red" if row["degenerate"] else "tab:blue"
            hollow = ax is right and not row["paired"] and row["point"] != "paper"
            ax.errorbar([v], [y[k]], xerr=err, fmt="o", capsize=3, color=colour,
                        markerfacecolor="white" if hollow else colour)
        ax.grid(axis="x", color="0.9")
    left.axvline(float(table["chance_balanced"].iloc[0]), color="0.45", ls="--", lw=1)
    left.set_xlim(-0.02, 1.02)
    left.set_xlabel("balanced accuracy")
    right.axvline(0.0, color="0.45", lw=1)
    right.set_xlabel("difference from the paper's image")
    left.set_yticks(list(y), names)
    return left, right


def plot_accuracy_by_position(tables: Mapping[str, pd.DataFrame], *, ax=None):
    """Accuracy against the part of the action, one line per protocol.

    Parameters
    ----------
    tables : mapping of str to pd.DataFrame
        Protocol name -> :func:`accuracy_by_position`'s table.
    ax : matplotlib Axes, optional

    Returns
    -------
    dict[str, matplotlib.lines.Line2D]
    """
    ax = _axes(ax)
    lines = {}
    for name, table in tables.items():
        x = np.arange(len(table))
        counts = ", ".join(str(n) for n in table["n_blocks"])
        lines[name], = ax.plot(x, table["accuracy"], "o-", label=f"{name} (test blocks: {counts})")
        ax.set_xticks(x, list(table["part"]))
    ax.axhline(0.5, color="0.6", linestyle=":", linewidth=1, label="chance (two classes)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("part of the action the test block comes from")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize="small")
    return lines


# ---------------------------------------------------------------------------
# Realism: synthetic against real crowd statistics (crowdnb.crowdstats)

_SYNTHETIC_COLOUR, _REAL_COLOUR = "tab:blue", "tab:orange"


def _panels(n: int, axes, *, ncols: int, width: float = 3.6, height: float = 2.8):
    """``n`` axes: the given ones (flattened) or a new grid of ``ncols`` columns."""
    if axes is not None:
        flat = list(np.ravel(axes))
        if len(flat) < n:
            raise ParameterError(f"need {n} axes, got {len(flat)}")
        return flat[:n], axes
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, constrained_layout=True)
    flat = list(grid.ravel())
    for extra in flat[n:]:
        extra.set_visible(False)
    return flat[:n], grid


def _third_columns(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    from .crowdstats import THIRD_OCTAVE_NOMINAL_HZ

    names = [f"third_{int(round(f))}" for f in THIRD_OCTAVE_NOMINAL_HZ]
    keep = [i for i, n in enumerate(names) if n in table.columns]
    if not keep:
        raise DataError("the statistics table has no third_<centre> columns")
    return [names[i] for i in keep], np.array(THIRD_OCTAVE_NOMINAL_HZ, float)[keep]


def plot_realism_spectra(synthetic: pd.DataFrame, real: pd.DataFrame, *, classes: Sequence[str],
                         axes=None):
    """Median one-third-octave spectra of synthetic and real blocks, one panel per class.

    Parameters
    ----------
    synthetic, real : pd.DataFrame
        :func:`crowdnb.crowdstats.statistics_table` outputs (``label``,
        ``clip_id``, ``third_<centre>`` in dB re total).
    classes : sequence of str
        One panel per class, in this order.
    axes : sequence of matplotlib Axes, optional
        At least ``len(classes)`` axes; a new row of panels when None.

    Returns
    -------
    list of matplotlib Axes
        The panels, one per class. The synthetic median is a line with its
        interquartile band, the real median another line with its band, and
        each real clip's median a thin line of the real colour.
    """
    panels, _ = _panels(len(classes), axes, ncols=len(classes), width=4.2, height=3.2)
    columns, centres = _third_columns(synthetic)
    for ax, label in zip(panels, classes):
        for name, table, colour in (("synthetic", synthetic, _SYNTHETIC_COLOUR),
                                    ("real", real, _REAL_COLOUR)):
            rows = table[table["label"] == label]
            if rows.empty:
                continue
            levels = rows[columns].to_numpy(float)
            q25, q50, q75 = np.nanpercentile(levels, [25, 50, 75], axis=0)
            n_clips = rows["clip_id"].nunique()
            ax.fill_between(centres, q25, q75, color=colour, alpha=0.25, linewidth=0)
            ax.plot(centres, q50, color=colour, lw=2,
                    label=f"{name}: {_count(n_clips, 'clip')}, {_count(len(rows), 'block')}")
            if name == "real":
                for _, clip in rows.groupby("clip_id"):
                    ax.plot(centres, np.nanmedian(clip[columns].to_numpy(float), axis=0),
                            color=colour, lw=0.7, alpha=0.8)
        ax.set_xscale("log")
        ax.set_title(label)
        ax.set_xlabel("one-third-octave band (Hz)")
        ax.set_ylabel("level (dB re total)")
        ax.set_ylim(-50, 0)
        ax.grid(color="0.9")
        ax.legend(fontsize="x-small", loc="lower left")
    return panels


def plot_realism_statistics(synthetic: pd.DataFrame, real: pd.DataFrame, *,
                            classes: Sequence[str], statistics: Sequence[str] | None = None,
                            axes=None):
    """Synthetic against real block statistics: one panel per statistic, boxes per class.

    Parameters
    ----------
    synthetic, real : pd.DataFrame
        :func:`crowdnb.crowdstats.statistics_table` outputs.
    classes : sequence of str
        Classes side by side along each panel's x axis.
    statistics : sequence of str, optional
        Default: the keys of :data:`crowdnb.crowdstats.STATISTICS` present in
        both tables, in that order.
    axes : sequence of matplotlib Axes, optional
        At least one per statistic; a new grid of four columns when None.

    Returns
    -------
    list of matplotlib Axes
        One per statistic; each holds, per class, a synthetic box (left) and a
        real box (right): median, quartiles, whiskers at 1.5 IQR, no fliers.
    """
    from .crowdstats import STATISTICS

    if statistics is None:
        statistics = [s for s in STATISTICS if s in synthetic.columns and s in real.columns]
    panels, _ = _panels(len(statistics), axes, ncols=4)
    x = np.arange(len(classes))
    for ax, stat in zip(panels, statistics):
        for offset, table, colour in ((-0.2, synthetic, _SYNTHETIC_COLOUR),
                                      (0.2, real, _REAL_COLOUR)):
            data, pos = [], []
            for i, label in enumerate(classes):
                values = table.loc[table["label"] == label, stat].to_numpy(float)
                values = values[np.isfinite(values)]
                if values.size:
                    data.append(values)
                    pos.append(x[i] + offset)
            if data:
                ax.boxplot(data, positions=pos, widths=0.34, showfliers=False, patch_artist=True,
                           boxprops={"facecolor": colour, "alpha": 0.6},
                           medianprops={"color": "k"}, manage_ticks=False)
        ax.set_xticks(x, list(classes))
        ax.set_xlim(-0.6, len(classes) - 0.4)
        ax.set_title(STATISTICS.get(stat, stat), fontsize="small")
        ax.grid(axis="y", color="0.9")
    from matplotlib.patches import Patch

    panels[0].legend(handles=[Patch(color=_SYNTHETIC_COLOUR, alpha=0.6, label="synthetic"),
                              Patch(color=_REAL_COLOUR, alpha=0.6, label="real")],
                     fontsize="x-small")
    return panels


def plot_realism_gaps(comparison: pd.DataFrame, *, ax=None):
    """Cliff's delta per statistic and class, the statistics with the largest gap on top.

    Parameters
    ----------
    comparison : pd.DataFrame
        :func:`crowdnb.crowdstats.compare`'s table (``label``, ``statistic``,
        ``cliffs_delta``).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict[str, matplotlib.container.BarContainer]
        Class -> its bars. Positive delta: synthetic blocks mostly above real
        ones; +-1: the two never overlap. Statistics with no delta (NaN) are left out.
    """
    ax = _axes(ax)
    table = comparison.dropna(subset=["cliffs_delta"])
    if table.empty:
        raise DataError("the comparison holds no Cliff's delta to draw")
    classes = list(dict.fromkeys(table["label"]))
    order = (table.assign(a=table["cliffs_delta"].abs()).groupby("statistic")["a"].max()
             .sort_values(ascending=False).index.tolist())
    y = {stat: len(order) - 1 - i for i, stat in enumerate(order)}
    height = 0.8 / len(classes)
    bars = {}
    for k, label in enumerate(classes):
        rows = table[table["label"] == label]
        pos = [y[s] + 0.4 - height * (k + 0.5) for s in rows["statistic"]]
        bars[label] = ax.barh(pos, rows["cliffs_delta"], height=height, label=label,
                              color=f"C{k + 2}")
    ax.axvline(0.0, color="0.3", lw=0.8)
    ax.set_yticks(list(y.values()), list(y))
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("Cliff's delta, P(synthetic > real) - P(synthetic < real)")
    ax.grid(axis="x", color="0.9")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return bars


# ---------------------------------------------------------------------------
# The pipeline


def plot_stage_graph(table: pd.DataFrame, *, ax=None) -> dict[str, tuple[float, float]]:
    """The study's stages as a graph: one column per depth, an arrow where a stage waits for another.

    A stage that reads another also waits for everything that one waits for:
    those implied arrows are left out (the graph's transitive reduction), so
    that each arrow drawn is a wait no other arrow already says.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`crowdnb.workflow.stages.stage_table`: ``stage``, ``reads``, ``depth``.
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        Each stage's position (x: its depth, y: its row in the column).
    """
    ax = _axes(ax)
    reads = {r["stage"]: {x.strip() for x in r["reads"].split(",") if x.strip() not in ("", "-")}
             for r in table.to_dict("records")}
    before: dict[str, set[str]] = {}
    for name in table["stage"]:  # run order: upstream stages come first
        before[name] = set().union(*({u} | before[u] for u in reads[name])) if reads[name] else set()
    where: dict[str, tuple[float, float]] = {}
    for depth, column in table.groupby("depth", sort=True):
        for row, name in enumerate(column["stage"]):
            where[name] = (float(depth), -(row - (len(column) - 1) / 2.0))
    for name, sources in reads.items():
        implied = set().union(*(before[u] for u in sources)) if sources else set()
        for source in sorted(sources - implied):
            ax.annotate("", xy=where[name], xytext=where[source], zorder=1,
                        arrowprops={"arrowstyle": "-|>", "color": "0.55", "lw": 0.8,
                                    "shrinkA": 12, "shrinkB": 12})
    for name, (x, y) in where.items():
        ax.text(x, y, name.replace("_", " ", 1).replace("_", "\n", 1).replace("_", " "),
                ha="center", va="center", fontsize="x-small", zorder=2,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "tab:blue"})
    ax.set_xlim(-0.6, max(x for x, _ in where.values()) + 0.6)
    ax.set_ylim(min(y for _, y in where.values()) - 0.6, max(y for _, y in where.values()) + 0.6)
    ax.set_axis_off()
    return where
