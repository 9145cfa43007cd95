"""Helpers the study's notebooks share: glue, admonitions, plots.

(How a notebook reads its upstream stages and writes its own outputs is
:mod:`crowdnb.workflow.stageio`.) The plots here are those of the data chapters (durations, loudness, counts,
accuracy by position within a football action); the training plots are in
:mod:`crowdnb.plots`, the spectrogram plots in :mod:`crowdnb.spectrogram`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = [
    "PAPER",
    "glue_values",
    "glue_markdown",
    "pretrained_admonition",
    "training_numbers",
    "card_markdown",
    "audio_excerpt",
    "plot_durations",
    "plot_loudness",
    "plot_counts",
    "plot_training",
    "plot_accuracies",
    "block_positions",
    "accuracy_by_position",
    "plot_accuracy_by_position",
    "shot_times",
    "accuracy_by_phase",
]

# The paper's numbers the results are set beside (Franzoni & Biondi, section III
# and Table 1), glued into the results chapter like the run's own numbers.
PAPER = {
    "random_split_accuracy": 1.0,  # "perfect accuracy, i.e., 1" after 3 epochs
    "goal_random_split_accuracy": 0.72,  # "around 0.72 accuracy for the random approach"
    "goal_clip_split_accuracy": 0.53,  # "0.53 accuracy for the manual approach"
    "n_spectrograms": 678,  # balanced data set
    "n_blocks": 890,  # before balancing
    "n_clips": 18,
    "duration_s": 1711,
}


# ---------------------------------------------------------------------------
# Glue
# ---------------------------------------------------------------------------


def glue_values(values: Mapping[str, Any], *, prefix: str = "") -> None:
    """Glue numbers and short strings for the page's prose.

    Refer to them in a Markdown cell of the same notebook with
    ``{glue:text}`name:.3f``` (numbers: give a format spec; ``:.0%`` for a
    fraction as a percentage) or ``{glue:text}`name``` (strings, integers).
    numpy scalars are converted to Python numbers first.

    Nothing is displayed, and nothing is returned (so that a call ending a
    cell adds no output to the page).
    """
    from myst_nb import glue

    for name, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        glue(prefix + name, value, display=False)


def glue_markdown(name: str, text: str) -> None:
    """Glue a block of MyST Markdown, shown with ``{glue:md}`` and ``:format: myst``."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(text), display=False)


def pretrained_admonition(metrics: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """The MyST admonition that says whether ImageNet weights were really used.

    Generated from the ``pretrained`` field of the training metrics, never
    typed, so the warning cannot be forgotten or go stale.

    Parameters
    ----------
    metrics : mapping or sequence of mappings
        Metrics of one or several trainings (:func:`crowdnb.train.train_model`'s
        dict), each with ``pretrained`` (bool) and ``pretrained_reason``.

    Returns
    -------
    text : str
        A warning admonition when any network started from random
        initialisation, else a note; glue it with :func:`glue_markdown` and
        show it with the ``{glue:md}`` directive (``:format: myst``).
    """
    runs = [metrics] if isinstance(metrics, Mapping) else list(metrics)
    if not runs:
        raise DataError("pretrained_admonition: no training metrics given")
    scratch = [m for m in runs if not bool(m["pretrained"])]
    if scratch:
        reasons = sorted({str(m.get("pretrained_reason") or "").strip() for m in scratch} - {""})
        if len(runs) == 1:
            which, result = "The network on this page", "a network"
        else:
            which, result = f"{len(scratch)} of the {len(runs)} networks on this page", "networks"
        body = (
            f"**Pretrained ImageNet weights were NOT used.** {which} started from **random "
            "initialisation**, not from the ImageNet-pretrained AlexNet the paper fine-tunes: the "
            f"results below are those of {result} trained from scratch on the spectrogram images, "
            "not a reproduction of transfer learning."
        )
        if reasons:
            body += "\n\nWhy: " + "; ".join(reasons)
        return (":::{admonition} Trained from random initialisation, not ImageNet weights\n"
                f":class: warning\n{body}\n:::\n")
    sources = sorted({str((m.get("weights_info") or {}).get("source") or "ImageNet") for m in runs})
    return (":::{admonition} ImageNet-pretrained weights\n:class: note\n"
            "The networks on this page started from ImageNet-pretrained AlexNet weights "
            f"({', '.join(sources)}) and were fine-tuned, as in the paper.\n:::\n")


def training_numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers a training chapter quotes, flat, for :func:`glue_values`.

    Returns
    -------
    dict
        ``accuracy``, ``accuracy_low``/``accuracy_high`` (95 % bootstrap over
        blocks), ``accuracy_clip_low``/``accuracy_clip_high`` (cluster
        bootstrap over clips), ``clip_accuracy`` (majority vote per clip),
        ``n_test``, ``n_correct``, ``n_train``, ``n_test_clips``,
        ``n_train_clips``, ``macro_f1``, ``leakage_fraction`` (test blocks
        sharing sound with a training block), ``leakage_s`` and
        ``sharing_clip_fraction``, ``pretrained`` (0 or 1), ``epochs``.
    """
    counts = metrics["counts"]
    leakage = metrics.get("leakage") or {}
    return {
        "accuracy": float(metrics["accuracy"]),
        "accuracy_low": float(metrics["accuracy_ci95"]["low"]),
        "accuracy_high": float(metrics["accuracy_ci95"]["high"]),
        "accuracy_clip_low": float(metrics["accuracy_ci95_clip"]["low"]),
        "accuracy_clip_high": float(metrics["accuracy_ci95_clip"]["high"]),
        "clip_accuracy": float(metrics["clip_accuracy"]),
        "n_test": int(metrics["n_test"]),
        "n_correct": int(metrics["n_correct"]),
        "n_train": int(counts["train_blocks"]),
        "n_test_clips": int(counts["test_clips"]),
        "n_train_clips": int(counts["train_clips"]),
        "macro_f1": float(metrics["macro_f1"]),
        "leakage_fraction": float(leakage.get("fraction", 0.0)),
        "leakage_s": float(leakage.get("overlap_s", 0.0)),
        "sharing_clip_fraction": float(leakage.get("fraction_sharing_clip", 0.0)),
        "pretrained": int(bool(metrics["pretrained"])),
        "epochs": int(metrics["params"]["epochs"]),
    }


# ---------------------------------------------------------------------------
# Data chapters
# ---------------------------------------------------------------------------


def card_markdown(path: str | os.PathLike, *, title: str = "Dataset card") -> str:
    """A collection's dataset card as a collapsed admonition (MyST).

    The card's headings become bold lines: a heading inside a notebook's
    output would break the page's section structure.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: dataset card not found")
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            line = f"**{text}**" if text else ""
        lines.append(line)
    body = "\n".join(lines).strip()
    return f"::::{{admonition}} {title}\n:class: dropdown\n{body}\n::::\n"


def audio_excerpt(
    path: str | os.PathLike, *, seconds: float = 4.0, sr: int = 8000, offset_s: float | None = None
):
    """A short, low-rate excerpt of a clip to embed in the book.

    Parameters
    ----------
    path : path-like
        The audio file.
    seconds : float > 0
        Length of the excerpt, s.
    sr : int > 0
        Sample rate of the embedded excerpt, Hz: 8 kHz keeps a 4 s excerpt at
        about 64 kB, and is enough to hear the crowd (not its 20 kHz content).
    offset_s : float or None
        Start of the excerpt, s; None takes it from the middle of the clip.

    Returns
    -------
    IPython.display.Audio
        Embedded (the book needs no audio files).
    """
    from IPython.display import Audio

    from .audio import load_clip

    y, rate = load_clip(path, sr=sr)
    n = int(round(seconds * rate))
    start = max(0, (y.size - n) // 2) if offset_s is None else int(round(offset_s * rate))
    excerpt = y[start:start + n]
    if excerpt.size == 0:
        raise DataError(f"{path}: no audio at {start / rate:.1f} s for an excerpt")
    return Audio(excerpt, rate=rate, embed=True)


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


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


def plot_loudness(blocks: pd.DataFrame, *, target_lufs: float = -23.0, ax=None, bins: int = 30):
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
    ax.legend(fontsize="small")
    return {"before": before, "after": after}


def plot_training(metrics: Mapping[str, Any], history: pd.DataFrame | str | os.PathLike, *, fig=None):
    """One training's figure: learning curves, confusion matrix, per-class scores.

    Parameters
    ----------
    metrics : mapping
        :func:`crowdnb.train.train_model`'s metrics.
    history : pd.DataFrame or path-like
        Its ``history.csv``.
    fig : matplotlib Figure, optional

    Returns
    -------
    dict
        The Axes: ``accuracy``, ``loss``, ``confusion``, ``per_class``.
    """
    from .plots import plot_confusion, plot_learning_curves, plot_per_class

    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(10, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    axes = {"accuracy": fig.add_subplot(grid[0, 0]), "confusion": fig.add_subplot(grid[0, 1])}
    axes["loss"] = fig.add_subplot(grid[1, 0], sharex=axes["accuracy"])
    axes["per_class"] = fig.add_subplot(grid[1, 1])
    per_epoch = (metrics.get("training") or {}).get("iterations_per_epoch")
    plot_learning_curves(history, ax=[axes["accuracy"], axes["loss"]],
                         iterations_per_epoch=per_epoch)
    plot_confusion(metrics, ax=axes["confusion"])
    plot_per_class(metrics, ax=axes["per_class"])
    return axes


def plot_accuracies(table: pd.DataFrame, *, ax=None):
    """This run's accuracies with their intervals beside the paper's numbers.

    Parameters
    ----------
    table : pd.DataFrame
        One row per experiment: ``experiment``, ``accuracy``, ``low``, ``high``
        and ``paper`` (NaN where the paper gives no number).
    ax : matplotlib Axes, optional

    Returns
    -------
    dict
        ``run`` (the error bars) and ``paper`` (the paper's markers, or None).
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
    ax.set_yticks(y, table["experiment"])
    ax.set_ylim(-0.6, len(table) - 0.4)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("test accuracy")
    ax.grid(axis="x", color="0.9")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return {"run": run, "paper": paper}


# ---------------------------------------------------------------------------
# Football study: where in the action a block comes from
# ---------------------------------------------------------------------------


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
    import json

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
