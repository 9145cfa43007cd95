"""Figures of a training run: learning curves, confusion matrix, per-class scores.

Each helper reads what :func:`crowdnb.train.train_model` wrote (the history
table, the metrics dict, or their files), draws on ``ax`` when given (a figure
is created only when it is None), and returns what it drew. None calls
``plt.show()``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError, ParameterError
from .files import read_json, read_table

__all__ = ["plot_learning_curves", "plot_confusion", "plot_per_class"]


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


def _new_axes(n: int = 1):
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
        axes = _new_axes(len(wanted))
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
        ax = _new_axes(1)[0]
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
        ax = _new_axes(1)[0]
    x = np.arange(len(classes))
    width = 0.26
    bars = {}
    for k, (score, colour) in enumerate((("precision", "tab:blue"), ("recall", "tab:orange"),
                                         ("f1", "tab:green"))):
        bars[score] = ax.bar(x + (k - 1) * width, [per_class[c][score] for c in classes], width,
                             label=score if score != "f1" else "F1", color=colour)
    ax.set_xticks(x, [f"{c}\n(n={per_class[c]['support']})" for c in classes])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(loc="lower right", fontsize="small")
    return bars
