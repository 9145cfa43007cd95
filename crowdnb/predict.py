"""Classify any audio file with a trained checkpoint, block by block.

The file goes through the same preprocessing as the training data, with the
parameters stored in the checkpoint: :func:`crowdnb.audio.load_clip`,
:func:`~crowdnb.audio.band_limit` on the whole clip,
:func:`~crowdnb.audio.split_blocks`, :func:`~crowdnb.audio.normalize_loudness`
per block, and :func:`crowdnb.spectrogram.spectrogram_image`. Each 2 s block
gets class probabilities; the clip gets one label, by default the class with
the highest probability averaged over its blocks (``aggregate="mean"``), or
the majority vote of its blocks (``aggregate="vote"``).

Command line::

    crowdnb predict --model runs/random_split/model.pt crowd.wav [more.wav ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from .errors import AudioError, CrowdnbError, DataError, ParameterError
from .model import load_checkpoint, predict_proba, resolve_device

__all__ = ["predict_file", "resolve_preprocessing", "register_cli", "AGGREGATES"]

#: Ways to turn block probabilities into one clip label.
AGGREGATES = {
    "mean": "class with the highest mean probability over the clip's kept blocks",
    "vote": "majority vote of the kept blocks' labels (a tie goes to the higher mean probability)",
}

_AUDIO_DEFAULTS: dict[str, Any] = {
    "sr": 44100, "block_s": 2.0, "hop_s": 1.0, "low_hz": 20.0, "high_hz": 20000.0, "order": 4,
    "target_lufs": -23.0,
}
# Keys of a params.json (crowdnb.dataset) that are records, not parameters.
_RECORD_KEYS = {"run_hash", "versions"}


def resolve_preprocessing(preprocessing: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The full preprocessing parameters, with defaults filled in.

    Parameters
    ----------
    preprocessing : dict or None
        Either the layout of ``crowdnb.dataset``'s ``params.json``
        (``{"audio": {...}, "mel": {...}, "image": {...}}``), or the keyword
        arguments of :func:`crowdnb.dataset.preprocess` in one flat dict
        (``sr``, ``block_s``, ``hop_s``, ``low_hz``, ``high_hz``,
        ``target_lufs`` and its spectrogram keywords, where ``frame_hop_s`` is
        the frame increment). None gives the defaults (the paper's values).

    Returns
    -------
    dict
        ``audio`` (load, band-limit, block and loudness parameters), ``mel``
        (:func:`crowdnb.spectrogram.mel_psd_db` keywords) and ``image``
        (:func:`crowdnb.spectrogram.render_image` keywords, with ``out_size``).

    Raises
    ------
    DataError
        For a key no stage knows.
    """
    from .dataset import SPECTROGRAM_PARAMETERS
    from .spectrogram import IMAGE_DEFAULTS, MEL_DEFAULTS

    audio = dict(_AUDIO_DEFAULTS)
    mel = dict(MEL_DEFAULTS)
    image = {**IMAGE_DEFAULTS, "out_size": (227, 227)}
    given = dict(preprocessing or {})
    if isinstance(given.get("audio"), Mapping):
        parts = {"audio": (audio, given.get("audio", {})), "mel": (mel, given.get("mel", {})),
                 "image": (image, given.get("image", {}))}
        unknown = sorted(set(given) - set(parts) - _RECORD_KEYS)
        for name, (target, values) in parts.items():
            unknown += [f"{name}.{k}" for k in values if k not in target]
            target.update({k: v for k, v in values.items() if k in target})
    else:
        unknown = []
        for key, value in given.items():
            if key in audio:
                audio[key] = value
            elif key in SPECTROGRAM_PARAMETERS:
                name = SPECTROGRAM_PARAMETERS[key]
                (mel if name in mel else image)[name] = value
            elif key not in _RECORD_KEYS:
                unknown.append(key)
    if unknown:
        raise DataError(f"preprocessing parameters not understood: {', '.join(unknown)}")
    image = {k: tuple(v) if isinstance(v, list) else v for k, v in image.items()}
    return {"audio": audio, "mel": mel, "image": image}


def _blocks_of(path: str | os.PathLike, params: dict[str, dict[str, Any]]):
    """Yield (start_s, end_s, image or None, info) for each block of the file."""
    from .audio import band_limit, load_clip, normalize_loudness, split_blocks
    from .spectrogram import spectrogram_image

    audio = params["audio"]
    y, sr = load_clip(path, sr=int(audio["sr"]))
    y, _ = band_limit(y, sr, low_hz=audio["low_hz"], high_hz=audio["high_hz"], order=int(audio["order"]))
    split = split_blocks(y, sr, block_s=audio["block_s"], hop_s=audio["hop_s"])
    if split.reason is not None:
        return split.reason, []
    rows = []
    image_kwargs = {k: v for k, v in params["image"].items() if k != "out_size"}
    for block, start in zip(split.blocks, split.starts_s):
        out, info = normalize_loudness(np.array(block), sr, target_lufs=audio["target_lufs"])
        image = None
        if out is not None:
            image = spectrogram_image(out, sr, out_size=params["image"]["out_size"], **params["mel"],
                                      **image_kwargs)
        rows.append((float(start), float(start) + len(block) / sr, image, info))
    return None, rows


def _clip_label(table: pd.DataFrame, classes: list[str], aggregate: str) -> str | None:
    kept = table[table["kept"]]
    if kept.empty:
        return None
    mean_prob = kept[[f"prob_{c}" for c in classes]].to_numpy(float).mean(axis=0)
    if aggregate == "mean":
        return classes[int(np.argmax(mean_prob))]
    votes = kept["label"].value_counts()
    tied = [c for c in classes if votes.get(c, 0) == votes.max()]
    return max(tied, key=lambda c: mean_prob[classes.index(c)])


def predict_file(
    path: str | os.PathLike,
    checkpoint: str | os.PathLike | tuple[nn.Module, Mapping[str, Any]],
    *,
    aggregate: str = "mean",
    device: str = "auto",
    batch_size: int = 64,
) -> tuple[pd.DataFrame, str | None]:
    """Class probabilities of every 2 s block of an audio file, and a clip label.

    Parameters
    ----------
    path : path-like
        Any audio file :func:`crowdnb.audio.load_clip` reads.
    checkpoint : path-like or (model, checkpoint) tuple
        A ``model.pt`` written by :func:`crowdnb.train.train_model`, or what
        :func:`crowdnb.model.load_checkpoint` returned for it (to classify many
        files without reloading).
    aggregate : {"mean", "vote"}
        How the clip label is chosen (see :data:`AGGREGATES`).
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
    batch_size : int > 0
        Images per forward pass.

    Returns
    -------
    blocks : pd.DataFrame
        One row per block: ``block`` (index), ``start_s``, ``end_s`` (s),
        ``kept`` (False when loudness normalisation dropped the block, e.g.
        silence), ``reason``, ``loudness_lufs``, ``gain_db``, ``label`` (the
        most probable class; "" when dropped) and ``prob_<class>`` for each
        class (NaN when dropped). Empty when the file is shorter than a block.
    clip_label : str or None
        The clip's label, or None when no block was kept.

    Raises
    ------
    AudioError
        If the file cannot be read, or is shorter than one block.
    DataError
        If the checkpoint is missing or malformed.
    ParameterError
        For an unknown ``aggregate`` or ``device``.
    """
    if aggregate not in AGGREGATES:
        raise ParameterError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
    dev = resolve_device(device)
    if isinstance(checkpoint, tuple):
        model, meta = checkpoint
        model.to(dev)
    else:
        model, meta = load_checkpoint(checkpoint, device=dev)
    if not meta.get("preprocessing"):
        warnings.warn(
            "the checkpoint stores no preprocessing parameters; using the defaults (the paper's values)",
            UserWarning, stacklevel=2,
        )
    params = resolve_preprocessing(meta.get("preprocessing"))
    classes = list(meta["classes"])


    reason, rows = _blocks_of(path, params)
    if reason is not None:
        raise AudioError(f"{path}: no block to classify ({reason})")
    kept = [i for i, row in enumerate(rows) if row[2] is not None]
    probs = np.full((len(rows), len(classes)), np.nan)
    if kept:
        images = torch.from_numpy(np.stack([rows[i][2] for i in kept])).permute(0, 3, 1, 2).contiguous()
        probs[kept], _ = predict_proba(model, images, normalization=meta["normalization"], device=dev,
                                       batch_size=batch_size)
    table = pd.DataFrame({
        "block": np.arange(len(rows)),
        "start_s": [r[0] for r in rows],
        "end_s": [r[1] for r in rows],
        "kept": [r[2] is not None for r in rows],
        "reason": [r[3].get("reason", "") for r in rows],
        "loudness_lufs": [r[3].get("loudness_lufs", np.nan) for r in rows],
        "gain_db": [r[3].get("gain_db", np.nan) for r in rows],
        "label": ["" if np.isnan(p[0]) else classes[int(np.argmax(p))] for p in probs],
    })
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i]
    return table, _clip_label(table, classes, aggregate)


def _format_table(path: str, table: pd.DataFrame, classes: list[str], clip_label: str | None,
                  aggregate: str) -> str:
    n_kept = int(table["kept"].sum())
    lines = [f"{path}",
             f"  clip label: {clip_label if clip_label is not None else '(none: every block dropped)'} "
             f"({AGGREGATES[aggregate]}; {n_kept} of {len(table)} blocks)"]
    width = max(8, *(len(c) + 2 for c in classes))
    lines.append("  " + f"{'start_s':>8} {'label':<{width}}" + "".join(f"{'p(' + c + ')':>{width + 2}}"
                                                                   for c in classes))
    for row in table.itertuples(index=False):
        if row.kept:
            probs = "".join(f"{getattr(row, f'prob_{c}'):>{width + 2}.3f}" for c in classes)
            lines.append("  " + f"{row.start_s:>8.2f} {row.label:<{width}}" + probs)
        else:
            lines.append("  " + f"{row.start_s:>8.2f} dropped: {row.reason}")
    return "\n".join(lines)


def _json_record(path: str, table: pd.DataFrame, classes: list[str], clip_label: str | None,
                 aggregate: str) -> dict[str, Any]:
    blocks = []
    for row in table.itertuples(index=False):
        record = {"start_s": row.start_s, "end_s": row.end_s, "kept": bool(row.kept), "reason": row.reason,
                  "label": row.label or None}
        record["probabilities"] = (
            {c: float(getattr(row, f"prob_{c}")) for c in classes} if row.kept else None
        )
        blocks.append(record)
    return {"file": path, "clip_label": clip_label, "aggregate": aggregate,
            "aggregate_method": AGGREGATES[aggregate], "blocks": blocks}


def _cli(args: argparse.Namespace) -> int:
    dev = resolve_device(args.device)
    model, meta = load_checkpoint(args.model, device=dev)
    classes = list(meta["classes"])
    results, failures = [], 0
    for path in args.files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                table, label = predict_file(path, (model, meta), aggregate=args.aggregate, device=str(dev))
        except CrowdnbError as exc:
            failures += 1
            print(f"crowdnb predict: error: {exc}", file=sys.stderr)
            if args.json:
                results.append({"file": path, "error": str(exc)})
            continue
        if args.json:
            results.append(_json_record(path, table, classes, label, args.aggregate))
        else:
            print(_format_table(path, table, classes, label, args.aggregate))
    if args.json:
        info = meta.get("model_info", {})
        json.dump({"checkpoint": str(args.model), "classes": classes,
                   "pretrained": info.get("pretrained"), "preprocessing": resolve_preprocessing(
                       meta.get("preprocessing")), "files": results},
                  sys.stdout, indent=2, default=list)
        sys.stdout.write("\n")
    elif not meta.get("preprocessing"):
        print("note: the checkpoint stores no preprocessing parameters; the paper's defaults were used",
              file=sys.stderr)
    return 1 if failures else 0


def register_cli(subparsers) -> None:
    """Add ``crowdnb predict`` to the ``crowdnb`` command line."""
    parser = subparsers.add_parser(
        "predict",
        help="classify audio files block by block with a trained checkpoint",
        description=(
            "Run audio files through the checkpoint's preprocessing (2 s blocks, band limit, loudness "
            "normalisation, spectrogram image) and print each block's start time, label and class "
            "probabilities, and a clip label."
        ),
    )
    parser.add_argument("--model", required=True, type=Path, metavar="CHECKPOINT",
                        help="model.pt written by training")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio file(s) to classify")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--aggregate", choices=sorted(AGGREGATES), default="mean",
                        help="clip label: mean probability (default) or majority vote of the blocks")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.set_defaults(func=_cli)
