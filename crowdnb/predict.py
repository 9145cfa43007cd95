"""Classify any audio file with a trained checkpoint, block by block.

The file goes through the same preprocessing as the training data, with the
settings stored in the checkpoint (a :class:`crowdnb.config.PreprocessConfig`):
:func:`crowdnb.audio.load_clip`, :func:`~crowdnb.audio.normalised_blocks` and
:func:`crowdnb.spectrogram.spectrogram_image`. Each 2 s block
gets class probabilities; the clip gets one label, by default the class with
the highest probability averaged over its blocks (``aggregate="mean"``), or
the majority vote of its blocks (``aggregate="vote"``).

A file of any length is read and prepared in pieces (a
:class:`crowdnb.audio.ClipStream` into
:func:`crowdnb.audio.normalised_blocks_streamed`) and its images classified a
batch at a time: besides the network, memory holds a few chunks of samples,
one batch of images and the activations of a few of them (the network's trunk
runs 4 images at a time, :func:`crowdnb.model.trunk_first`, and what a batch
freed goes back to the system, :func:`crowdnb.model.release_freed_memory`)
whatever the file's length. A 3 h recording read whole took 18 GB; read in
pieces, with batches of 64 run whole and the allocator's free memory kept,
2.9 GB with EfficientNet-Lite0. The blocks and their probabilities are those
of the whole-file functions above, value for value.

Training band-limits each clip as a whole before cutting it into blocks, and
so does the predictor by default (``band_limit_per="clip"``). A stream cannot:
``crowdnb listen`` band-limits each window on its own
(:func:`crowdnb.audio.normalised_block`). ``band_limit_per="block"`` prepares
a file's blocks that way, so that ``crowdnb predict`` and ``crowdnb listen``
agree window for window (see :data:`BAND_LIMITS`).

Command line::

    crowdnb predict --model runs/random_split/model.pt crowd.wav [more.wav ...] [--json]
    crowdnb predict --model model.pt crowd.wav --band-limit-per block   # as crowdnb listen does
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from .audio import CLIPPING_FRACTION, Block, ClipStream, truncation
from .config import PreprocessConfig
from .errors import AudioError, CrowdnbError, DataError, ParameterError
from .evaluation import clip_vote
from .model import (load_checkpoint, predict_proba, release_freed_memory, resolve_device,
                    trunk_first)
from .networks import NETWORKS

__all__ = ["predict_file", "checkpoint_preprocessing", "band_note", "register_cli", "AGGREGATES",
           "BAND_LIMITS", "InputWarning"]

#: Ways to turn block probabilities into one clip label.
AGGREGATES = {
    "mean": "class with the highest mean probability over the clip's kept blocks",
    "vote": "majority vote of the kept blocks' labels (a tie goes to the higher mean probability)",
}

#: Where the band limit runs before the blocks are cut.
BAND_LIMITS = {
    "clip": "over the whole clip, then cut into blocks (the training pipeline)",
    "block": "over each block on its own, nothing before or after it (what crowdnb listen does "
             "with a stream)",
}

def checkpoint_preprocessing(meta: Mapping[str, Any], *, where: str = "checkpoint") -> PreprocessConfig:
    """The preprocessing settings a checkpoint was trained with.

    Raises
    ------
    DataError
        When the checkpoint's settings are not those of a
        :class:`~crowdnb.config.PreprocessConfig`.
    """
    stored = meta.get("preprocessing")
    if not stored:
        warnings.warn(f"{where}: stores no preprocessing settings; using the paper's",
                      UserWarning, stacklevel=2)
        return PreprocessConfig()
    try:
        return PreprocessConfig.from_dict(stored)
    except (ParameterError, TypeError) as exc:
        raise DataError(f"{where}: its preprocessing settings are not those of this crowdnb "
                        f"({exc}); a checkpoint from an older version must be trained again"
                        ) from None


class InputWarning(UserWarning):
    """An audio file was classified, but something about it deserves a look."""


def band_note(*, rate: float, config: PreprocessConfig) -> str:
    """Why audio sampled at ``rate`` lacks part of a model's trained band ("" when it has it all).

    Audio sampled at ``rate`` holds nothing above ``rate / 2`` (its Nyquist
    frequency). The training images held sound up to the lowest of the band
    limit's upper edge (``high_hz``), the training rate's Nyquist frequency
    (``sr / 2``) and the spectrogram's top band (``fmax``); a recording that
    stops below that draws images dark where every training image had energy.

    Parameters
    ----------
    rate : float > 0
        The audio's own sample rate, Hz (before any resampling).
    config : PreprocessConfig
        The checkpoint's preprocessing (:func:`checkpoint_preprocessing`).

    Returns
    -------
    str
        One line, or "" when the audio covers the trained band.
    """
    trained_hz = min(config.audio.high_hz, config.audio.sr / 2, config.spectrogram.fmax)
    if rate / 2 >= trained_hz:
        return ""
    return (f"its sample rate ({rate:g} Hz) limits its band to {rate / 2:g} Hz, where the model "
            f"was trained on audio up to {trained_hz:g} Hz; its answers may not be trusted")


def _prepared_blocks(stream: ClipStream, config: PreprocessConfig, band_limit_per: str):
    """The blocks of a file as they are prepared, the way training (or a stream) made them."""
    from .audio import cut_blocks, normalised_block, normalised_blocks_streamed

    audio = config.audio
    if band_limit_per == "clip":
        return normalised_blocks_streamed(stream, stream.sr, config=audio, where=str(stream.path))
    return (normalised_block(samples, stream.sr, index=index, start_s=start_s, config=audio)
            for index, start_s, samples in cut_blocks(stream, stream.sr, block_s=audio.block_s,
                                                      hop_s=audio.hop_s))


#: The block table's columns taken from each :class:`crowdnb.audio.Block`.
_BLOCK_COLUMNS = ("start_s", "end_s", "kept", "reason", "loudness_lufs", "gain_db", "clipped")


def _classified(blocks: Iterable[Block], model: nn.Module, meta: Mapping[str, Any],
                config: PreprocessConfig, *, device: torch.device,
                batch_size: int) -> tuple[dict[str, list], np.ndarray]:
    """The blocks' table columns, and their probabilities [n_blocks, n_classes] (NaN: dropped).

    Images are drawn and classified ``batch_size`` at a time as the blocks
    come (the batches :func:`crowdnb.model.predict_proba` makes of all of
    them at once), each drawn into one batch buffer that every batch reuses;
    a block's samples are let go once its image is drawn. The network's
    trunk runs a few images at a time (:func:`crowdnb.model.trunk_first`,
    the same probabilities): a batch of 64 EfficientNet-Lite0 activations
    took 1.2 GB, those of 8 an eighth of it. What a batch freed is handed
    back to the system before the next (:func:`crowdnb.model.release_freed_memory`).
    """
    from .spectrogram import spectrogram_image

    columns: dict[str, list] = {name: [] for name in _BLOCK_COLUMNS}
    kept, probs = [], []
    network, prepare = _forward(model, meta)
    batch, count = None, 0  # uint8 images [batch_size, 3, height, width], how many are drawn

    def classify() -> None:
        probs.append(predict_proba(network, torch.from_numpy(batch[:count]),
                                   normalization=meta["normalization"], device=device,
                                   batch_size=batch_size, prepare=prepare)[0])
        release_freed_memory()  # the batch's activations: else the freed memory grows with every batch

    for n, block in enumerate(blocks):
        for name in _BLOCK_COLUMNS:
            columns[name].append(getattr(block, name))
        if block.kept:
            kept.append(n)
            image = spectrogram_image(block.samples, config.audio.sr, config=config)
            if batch is None:
                batch = np.empty((batch_size, image.shape[2], *image.shape[:2]), dtype=image.dtype)
            batch[count] = image.transpose(2, 0, 1)
            count += 1
            if count == batch_size:
                classify()
                count = 0
    if count:
        classify()
    out = np.full((len(columns["kept"]), len(meta["classes"])), np.nan)
    if kept:
        out[kept] = np.concatenate(probs)
    return columns, out


def _forward(model: nn.Module, meta: Mapping[str, Any]
             ) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
    """The module and ``prepare`` that :func:`crowdnb.model.predict_proba` runs a batch with.

    The network's trunk a few images at a time where the checkpoint names a
    known network (:func:`crowdnb.model.trunk_first`), else the model whole.
    """
    if meta.get("network") in NETWORKS:
        return trunk_first(model, meta["network"], normalization=meta["normalization"])
    return model, None


def _clip_label(table: pd.DataFrame, classes: list[str], aggregate: str) -> str | None:
    kept = table[table["kept"]]
    if kept.empty:
        return None
    mean_prob = kept[[f"prob_{c}" for c in classes]].to_numpy(float).mean(axis=0)
    if aggregate == "mean":
        return classes[int(np.argmax(mean_prob))]
    return clip_vote(kept["label"], mean_prob, classes)


def predict_file(
    path: str | os.PathLike,
    checkpoint: str | os.PathLike | tuple[nn.Module, Mapping[str, Any]],
    *,
    aggregate: str = "mean",
    device: str = "auto",
    batch_size: int = 32,
    band_limit_per: str = "clip",
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
        Images per forward pass of the layers after the trunk (32: on 15 min
        of audio, 50 MB less memory than 64 and a fifth faster, on 2 cores).
    band_limit_per : {"clip", "block"}
        Band-limit the whole file, then cut it (as training did), or each
        block on its own (as ``crowdnb listen`` does; see :data:`BAND_LIMITS`).

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
        For an unknown ``aggregate``, ``device`` or ``band_limit_per``.

    Warns
    -----
    InputWarning
        When the file's sample rate leaves out part of the band the model was
        trained on (:func:`band_note`), when it holds less than its header
        promises (:func:`crowdnb.audio.truncation`), or when it clipped.
    """
    if aggregate not in AGGREGATES:
        raise ParameterError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
    if band_limit_per not in BAND_LIMITS:
        raise ParameterError(f"band_limit_per must be one of {', '.join(BAND_LIMITS)}, "
                             f"not {band_limit_per!r}")
    dev = resolve_device(device)
    if isinstance(checkpoint, tuple):
        model, meta = checkpoint
        model.to(dev)
    else:
        model, meta = load_checkpoint(checkpoint, device=dev)
    config = checkpoint_preprocessing(meta, where=str(checkpoint if not isinstance(checkpoint, tuple)
                                                      else "checkpoint"))
    with ClipStream(path, sr=config.audio.sr) as stream:
        band = band_note(rate=stream.rate, config=config)
        if band:
            warnings.warn(f"{path}: {band}", InputWarning, stacklevel=2)
        columns, probs = _classified(_prepared_blocks(stream, config, band_limit_per), model, meta,
                                     config, device=dev, batch_size=batch_size)
        _warn_what_was_read(path, stream)
    if not columns["kept"]:
        raise AudioError(f"{path}: no block to classify (it is shorter than one "
                         f"{config.audio.block_s:g} s block)")
    return _table(columns, probs, list(meta["classes"]), aggregate)


def _warn_what_was_read(path: str | os.PathLike, stream: ClipStream) -> None:
    """InputWarnings, once a file is read: it held less than its header promised, or it clipped."""
    cut = truncation(path, stream.samples / stream.sr)
    if cut:
        warnings.warn(f"{path}: {cut}; the blocks below cover what it holds", InputWarning,
                      stacklevel=3)
    if stream.full_scale_share > CLIPPING_FRACTION:
        warnings.warn(f"{path}: clipped recording: {stream.full_scale_share:.2%} of the samples "
                      "at full scale; its spectrograms hold distortion the training images may "
                      "not have", InputWarning, stacklevel=3)


def _table(columns: dict[str, list], probs: np.ndarray, classes: list[str],
           aggregate: str) -> tuple[pd.DataFrame, str | None]:
    """predict_file's block table and clip label."""
    table = pd.DataFrame({
        "block": np.arange(len(columns["kept"])),
        **columns,
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
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("ignore", UserWarning)  # the checkpoint's note: once, below
                warnings.simplefilter("always", InputWarning)  # (checked first: added last)
                table, label = predict_file(path, (model, meta), aggregate=args.aggregate, device=str(dev),
                                            band_limit_per=args.band_limit_per)
            notes = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
            for note in notes:
                print(f"crowdnb predict: warning: {note}", file=sys.stderr)
        except CrowdnbError as exc:
            failures += 1
            print(f"crowdnb predict: error: {exc}", file=sys.stderr)
            if args.json:
                results.append({"file": path, "error": str(exc)})
            continue
        if args.json:
            results.append({**_json_record(path, table, classes, label, args.aggregate),
                            "warnings": notes})
        else:
            print(_format_table(path, table, classes, label, args.aggregate))
    if args.json:
        info = meta.get("model_info", {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            config = checkpoint_preprocessing(meta)
        json.dump({"checkpoint": str(args.model), "classes": classes,
                   "pretrained": info.get("pretrained"), "preprocessing": config.to_dict(),
                   "band_limit_per": args.band_limit_per, "files": results}, sys.stdout, indent=2, default=list)
        sys.stdout.write("\n")
    elif not meta.get("preprocessing"):
        print("note: the checkpoint stores no preprocessing settings; the paper's were used",
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
    parser.add_argument("--band-limit-per", choices=list(BAND_LIMITS), default="clip",
                        help="band-limit the whole file before cutting it (default, as training "
                             "did) or each block on its own (as crowdnb listen does)")
    parser.set_defaults(func=_cli)
