"""From a clips table to the block table and its spectrogram images.

:func:`preprocess` runs the paper's sound-to-spectrogram phase on every clip:
load, band-limit (20 Hz - 20 kHz), cut into 2 s blocks every 1 s, bring each
block to -23 LUFS, and render one 227 x 227 spectrogram image per kept block.
:func:`balance` then deletes random blocks until the classes have equal counts,
as the paper did.

Layout of ``out_dir``::

    blocks.csv            the block table (BLOCK_COLUMNS), one row per block
    clip_report.csv       one row per clip (CLIP_REPORT_COLUMNS): what became of it
    params.json           the parameters, their hash and the library versions
    images/<run>/<clip_id>/<block_id>.png
    cache/audio/<sha>-<hash>.json       loudness stage of one audio file (cache_dir/audio/)
    cache/mel/<sha>-<hash>.npz          mel PSD of its kept blocks (cache_dir/mel/)
    cache/clips/<clip_id>-<run>.json    the clip's finished rows (images written)

Each clip is a unit of work whose results are written atomically when it is
finished, keyed by the SHA-256 of the audio file and a hash of the parameters
each stage depends on. So a second run with the same parameters reads
everything back, an interrupted run resumes with the finished clips intact, a
new clip is the only one processed, and a change of the image parameters
(dB range, colormap, size) re-renders images from the cached mel spectrograms
without reading audio or measuring loudness again.
"""

from __future__ import annotations

import argparse
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from . import audio, spectrogram
from .audio import band_limit, load_clip, normalize_loudness, split_blocks
from .clips import check_clips, read_clips
from .errors import AudioError, DataError, ParameterError
from .files import (atomic_path, atomic_write, read_json, sha256_file, stable_hash, write_json,
                    write_table)
from .provenance import library_versions, source_hash
from .spectrogram import IMAGE_DEFAULTS, MEL_DEFAULTS, mel_psd_db, render_image

__all__ = [
    "preprocess",
    "balance",
    "BLOCK_COLUMNS",
    "CLIP_REPORT_COLUMNS",
    "SPECTROGRAM_PARAMETERS",
    "png_bytes",
    "register_cli",
]

BLOCK_COLUMNS = [
    "block_id", "clip_id", "event_id", "label", "start_s", "end_s", "loudness_lufs", "gain_db",
    "peak_dbfs", "clipped", "kept", "reason", "image_path",
]
CLIP_REPORT_COLUMNS = [
    "clip_id", "event_id", "label", "path", "status", "reason", "duration_s", "n_blocks",
    "n_kept", "n_clipped",
]
#: Keyword arguments of :func:`preprocess` passed on to the spectrogram stage.
#: ``frame_hop_s`` is :func:`crowdnb.spectrogram.mel_psd_db`'s ``hop_s`` (the
#: 4.5 ms frame increment), renamed because ``hop_s`` is the block hop here.
SPECTROGRAM_PARAMETERS = {
    "win_length": "win_length", "frame_hop_s": "hop_s", "n_fft": "n_fft", "n_mels": "n_mels",
    "fmin": "fmin", "fmax": "fmax", "db_range": "db_range", "size": "size",
    "n_colors": "n_colors", "colormap": "colormap", "out_size": "out_size",
}
# Bumped when a stage's output changes for the same parameters, so old caches are not reused.
_STAGE_VERSION = {"audio": 1, "mel": 1, "image": 1}
_PNG_COMPRESS_LEVEL = 1  # noise-like images: higher levels cost time and save little


def _as_clips(clips: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    if isinstance(clips, (str, os.PathLike)):
        return read_clips(clips)
    if not isinstance(clips, pd.DataFrame):
        raise DataError(f"clips must be a clips table or a collection path, got {type(clips)}")
    table = clips.copy()
    if "event_id" not in table.columns and "clip_id" in table.columns:
        table["event_id"] = table["clip_id"]
    # clip ids become file names in the cache and image folders
    check_clips(table, where="clips", required=("clip_id", "label", "path"))
    return table.reset_index(drop=True)


def _parameters(sr, block_s, hop_s, low_hz, high_hz, target_lufs, spectrogram_kwargs):
    unknown = sorted(set(spectrogram_kwargs) - set(SPECTROGRAM_PARAMETERS))
    if unknown:
        raise ParameterError(
            f"unknown spectrogram parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(SPECTROGRAM_PARAMETERS)}"
        )
    mel = dict(MEL_DEFAULTS)
    image = {**IMAGE_DEFAULTS, "out_size": (227, 227)}
    for name, value in spectrogram_kwargs.items():
        target = SPECTROGRAM_PARAMETERS[name]
        (mel if target in mel else image)[target] = value
    image = {k: list(v) if isinstance(v, tuple) else v for k, v in image.items()}
    audio_params = {"sr": sr, "block_s": block_s, "hop_s": hop_s, "low_hz": low_hz,
                    "high_hz": high_hz, "order": 4, "target_lufs": target_lufs}
    return audio_params, mel, image


def _check_parameters(audio_params: dict, mel: dict, image: dict) -> None:
    """Fail before any clip is touched: run every stage once on one block of noise.

    The stages are called through their own modules, so this check is not
    counted as work on a clip (the tests count calls made through this module).
    """
    rng = np.random.default_rng(0)
    sr = audio_params["sr"]
    block_len = max(int(round(audio_params["block_s"] * sr)), 1)
    noise = rng.standard_normal(block_len + sr // 10).astype(np.float32) * 0.1
    filtered, _ = audio.band_limit(noise, sr, low_hz=audio_params["low_hz"],
                                   high_hz=audio_params["high_hz"], order=audio_params["order"])
    split = audio.split_blocks(filtered, sr, block_s=audio_params["block_s"],
                               hop_s=audio_params["hop_s"])
    block, _ = audio.normalize_loudness(split.blocks[0], sr,
                                        target_lufs=audio_params["target_lufs"])
    spectrogram.render_image(spectrogram.mel_psd_db(block, sr, **mel),
                             **{**image, "out_size": tuple(image["out_size"])})


class _Stages:
    """The per-clip work, with the cache paths and keys of one parameter set."""

    def __init__(self, out_dir: Path, audio_params: dict, mel: dict, image: dict,
                 cache_dir: Path | None = None):
        self.out_dir = out_dir
        self.audio_params = audio_params
        self.mel = mel
        self.image = image
        # The code that computes each stage is part of its key: a cache shared
        # between runs never returns what an older version computed.
        self.audio_hash = stable_hash({"audio": audio_params, "v": _STAGE_VERSION["audio"],
                                       "code": source_hash("crowdnb.audio")})
        self.mel_hash = stable_hash({"a": self.audio_hash, "mel": mel, "v": _STAGE_VERSION["mel"],
                                     "code": source_hash("crowdnb.spectrogram")})
        self.run_hash = stable_hash({"m": self.mel_hash, "image": image,
                                     "v": _STAGE_VERSION["image"]})
        self.cache = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
        self.clip_cache = out_dir / "cache"

    # keys include the audio file's checksum, paths only the clip and the parameters
    def audio_key(self, sha: str) -> str:
        return stable_hash({"sha256": sha, "stage": self.audio_hash})

    def mel_key(self, sha: str) -> str:
        return stable_hash({"sha256": sha, "stage": self.mel_hash})

    def clip_key(self, sha: str) -> str:
        return stable_hash({"sha256": sha, "stage": self.run_hash})

    # Loudness and mel spectrograms are named by the audio's checksum (they may
    # be shared between collections); a clip's finished rows, which name this
    # folder's images, by the clip.
    def audio_path(self, sha: str) -> Path:
        return self.cache / "audio" / f"{sha[:16]}-{self.audio_hash}.json"

    def mel_path(self, sha: str) -> Path:
        return self.cache / "mel" / f"{sha[:16]}-{self.mel_hash}.npz"

    def clip_path(self, clip_id: str) -> Path:
        return self.clip_cache / "clips" / f"{clip_id}-{self.run_hash}.json"

    def image_path(self, clip_id: str, block_id: str) -> str:
        return f"images/{self.run_hash}/{clip_id}/{block_id}.png"

    # -- stages ------------------------------------------------------------

    def _blocks(self, path: str):
        p = self.audio_params
        y, sr = load_clip(path, sr=p["sr"])
        y, _ = band_limit(y, sr, low_hz=p["low_hz"], high_hz=p["high_hz"], order=p["order"])
        return y, split_blocks(y, sr, block_s=p["block_s"], hop_s=p["hop_s"])

    def loudness_stage(self, clip_id: str, path: str, sha: str) -> tuple[dict, list | None]:
        """The audio record of a clip, and its normalised kept blocks if it had to be made."""
        key = self.audio_key(sha)
        cached = _read_record(self.audio_path(sha), key)
        if cached is not None:
            return cached, None
        p = self.audio_params
        record: dict[str, Any] = {"key": key, "status": "ok", "reason": "", "duration_s": None,
                                  "blocks": []}
        normalised = []
        try:
            y, split = self._blocks(path)
        except AudioError as exc:
            record.update(status="unusable", reason=str(exc))
        else:
            record["duration_s"] = y.size / p["sr"]
            if split.reason is not None:
                record.update(status="too_short", reason=split.reason)
            block_len = split.blocks.shape[1]
            for k, (block, start) in enumerate(zip(split.blocks, split.starts_s)):
                out, info = normalize_loudness(block, p["sr"], target_lufs=p["target_lufs"])
                record["blocks"].append({
                    "index": k, "start_s": float(start),
                    "end_s": float(start + block_len / p["sr"]),
                    **{name: info[name] for name in ("loudness_lufs", "gain_db", "peak_dbfs",
                                                      "clipped", "reason")},
                    "kept": out is not None,
                })
                if out is not None:
                    normalised.append(out)
            if split.reason is None and not normalised:
                record.update(status="no_usable_blocks",
                              reason="every block was dropped (see the block table)")
        write_json(self.audio_path(sha), record)
        return record, normalised

    def mel_stage(self, clip_id: str, path: str, sha: str, record: dict,
                  normalised: list | None) -> np.ndarray:
        """Mel PSD of the kept blocks [n_kept, n_mels, n_frames], cached per clip."""
        key = self.mel_key(sha)
        target = self.mel_path(sha)
        if target.is_file():
            try:
                with np.load(target, allow_pickle=False) as stored:
                    if str(stored["key"]) == key:
                        return stored["S_db"]
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache file: recompute it
        sr = self.audio_params["sr"]
        kept = [b for b in record["blocks"] if b["kept"]]
        if normalised is None:
            # Loudness is cached: re-read the audio and apply the recorded gains.
            _, split = self._blocks(path)
            normalised = [audio._apply_gain(split.blocks[b["index"]], b["gain_db"]) for b in kept]
        if normalised:
            S_db = np.stack([mel_psd_db(b, sr, **self.mel) for b in normalised])
        else:
            S_db = np.zeros((0, 0, 0), dtype=np.float32)
        with atomic_path(target) as tmp:
            np.savez(tmp, S_db=S_db, key=np.array(key))
        return S_db

    def image_stage(self, clip_id: str, record: dict, S_db: np.ndarray) -> list[str]:
        names = []
        kept = [b for b in record["blocks"] if b["kept"]]
        for b, S in zip(kept, S_db):
            name = self.image_path(clip_id, _block_id(clip_id, b["index"]))
            rgb = render_image(S, **{**self.image, "out_size": tuple(self.image["out_size"])})
            with atomic_write(self.out_dir / name, "wb") as fh:
                fh.write(png_bytes(rgb, compress_level=_PNG_COMPRESS_LEVEL))
            names.append(name)
        return names

    def lookup(self, clip_id: str, path: str) -> tuple[str | None, dict | None]:
        """The clip's checksum, and its finished record if the cache holds it."""
        try:
            sha = sha256_file(path)
        except OSError as exc:
            # Not cached: the file may appear before the next run.
            reason = f"{path}: cannot read the file ({exc.strerror or exc})"
            return None, {"status": "unusable", "reason": reason, "duration_s": None,
                          "blocks": []}
        return sha, _read_record(self.clip_path(clip_id), self.clip_key(sha))

    def run_clip(self, clip_id: str, path: str, sha: str) -> dict:
        """Run the stages a clip still needs; return its finished record."""
        record, normalised = self.loudness_stage(clip_id, path, sha)
        blocks = [dict(b) for b in record["blocks"]]
        names = iter(())
        if any(b["kept"] for b in blocks):
            S_db = self.mel_stage(clip_id, path, sha, record, normalised)
            names = iter(self.image_stage(clip_id, record, S_db))
        for b in blocks:
            b["image_path"] = next(names) if b["kept"] else ""
        finished = {**record, "key": self.clip_key(sha), "blocks": blocks}
        write_json(self.clip_path(clip_id), finished)
        return finished


def png_bytes(rgb: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Encode an RGB image as PNG: 8-bit truecolour, no row filters, zlib deflate.

    Pillow tries all five PNG row filters on every row; on spectrogram images
    that search costs more than the compression and saves ~10 % of the size,
    so the images are written unfiltered (a valid PNG that any reader decodes
    to the same pixels), about twice as fast.

    Parameters
    ----------
    rgb : np.ndarray [shape=(rows, columns, 3), dtype=uint8]
    compress_level : int in 0..9
        zlib level.

    Returns
    -------
    png : bytes
    """
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ParameterError(f"rgb must be uint8 [rows, columns, 3], got {rgb.dtype} {rgb.shape}")
    rows, cols, _ = rgb.shape
    scanlines = np.zeros((rows, 1 + 3 * cols), dtype=np.uint8)  # leading 0: filter "none"
    scanlines[:, 1:] = rgb.reshape(rows, -1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", cols, rows, 8, 2, 0, 0, 0)  # 8 bit, RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), compress_level))
            + chunk(b"IEND", b""))


def _read_record(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        record = read_json(path)
    except DataError:
        return None
    return record if isinstance(record, dict) and record.get("key") == key else None


def _block_id(clip_id: str, index: int) -> str:
    return f"{clip_id}_b{index:04d}"


def preprocess(
    clips: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    sr: int = 44100,
    block_s: float = 2.0,
    hop_s: float = 1.0,
    low_hz: float = 20.0,
    high_hz: float = 20000.0,
    target_lufs: float = -23.0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **spectrogram_kwargs: Any,
) -> pd.DataFrame:
    """Turn every clip into loudness-normalised blocks and spectrogram images.

    For each clip: :func:`~crowdnb.audio.load_clip` (mono, ``sr``),
    :func:`~crowdnb.audio.band_limit` on the whole clip,
    :func:`~crowdnb.audio.split_blocks`, :func:`~crowdnb.audio.normalize_loudness`
    per block, and one PNG per kept block from
    :func:`~crowdnb.spectrogram.mel_psd_db` and
    :func:`~crowdnb.spectrogram.render_image`. Results are cached per clip and
    per stage (see the module docstring): rerunning does only the work whose
    inputs or parameters changed, and an interrupted run resumes.

    Parameters
    ----------
    clips : pd.DataFrame or path-like
        A clips table (as :func:`crowdnb.clips.read_clips` returns it: absolute
        ``path``; needs ``clip_id``, ``label``, ``path``, and ``event_id``
        defaults to ``clip_id``), or a collection folder / ``clips.csv``.
    out_dir : path-like
        Output folder (see the module docstring for its layout).
    sr : int > 0
        Sample rate every clip is resampled to, in Hz.
    block_s, hop_s : float > 0
        Block duration and block hop in seconds (the paper: 2 s and 1 s).
    low_hz, high_hz : float
        Band limits in Hz (the paper: 20 Hz to 20 kHz).
    target_lufs : float
        Loudness of every block, LUFS (the paper: -23, EBU R128).
    cache_dir : path-like or None
        Where the loudness and mel-spectrogram caches live (default
        ``out_dir/cache``); a folder shared between runs (the workflow's
        ``runs/.cache``) lets every run reuse what another computed from the
        same audio with the same parameters and code.
    progress : bool
        Show a tqdm progress bar over clips.
    **spectrogram_kwargs
        ``win_length``, ``frame_hop_s`` (the frame increment, ``hop_s`` of
        :func:`~crowdnb.spectrogram.mel_psd_db`), ``n_fft``, ``n_mels``,
        ``fmin``, ``fmax``, ``db_range``, ``size``, ``n_colors``, ``colormap``,
        ``out_size``.

    Returns
    -------
    blocks : pd.DataFrame
        The block table (:data:`BLOCK_COLUMNS`), also written to
        ``out_dir/blocks.csv``; ``image_path`` is relative to ``out_dir``.
        Clip-level outcomes (unusable file, too short, every block silent) are
        in ``out_dir/clip_report.csv`` (:data:`CLIP_REPORT_COLUMNS`).

    Raises
    ------
    ParameterError
        For parameter values a stage cannot use (checked before any clip).
    DataError
        When the clips table is missing or malformed.
    """
    from tqdm import tqdm

    table = _as_clips(clips)
    out_dir = Path(out_dir)
    audio_params, mel, image = _parameters(sr, block_s, hop_s, low_hz, high_hz, target_lufs,
                                           spectrogram_kwargs)
    _check_parameters(audio_params, mel, image)
    stages = _Stages(out_dir, audio_params, mel, image, cache_dir)
    write_json(out_dir / "params.json", {
        "audio": audio_params, "mel": mel, "image": image, "run_hash": stages.run_hash,
        "versions": library_versions(),
    })

    # One process: on the 2-core machine this was written for, a pool of spawned
    # workers was slower (interpreter start-up, and the cores are shared); the
    # clips are independent, so a pool could be added without changing results.
    block_rows: list[dict] = []
    report_rows: list[dict] = []
    n_images = 0
    bar = tqdm(table.itertuples(index=False), total=len(table), desc="preprocess",
               unit="clip", disable=not progress)
    for clip in bar:
        sha, record = stages.lookup(clip.clip_id, str(clip.path))
        if record is None:
            record = stages.run_clip(clip.clip_id, str(clip.path), sha)
        _collect(clip, record, block_rows, report_rows)
        n_images += sum(b["kept"] for b in record["blocks"])
        bar.set_postfix(images=n_images, refresh=False)
    bar.close()

    blocks = pd.DataFrame(block_rows, columns=BLOCK_COLUMNS)
    blocks = blocks.astype({"start_s": float, "end_s": float, "loudness_lufs": float,
                            "gain_db": float, "peak_dbfs": float, "clipped": bool, "kept": bool})
    report = pd.DataFrame(report_rows, columns=CLIP_REPORT_COLUMNS)
    write_table(out_dir / "clip_report.csv", report)
    write_table(out_dir / "blocks.csv", blocks)
    return blocks


def _collect(clip, record: dict, block_rows: list, report_rows: list) -> None:
    """Append one clip's rows to the block table and the clip report."""
    meta = {"clip_id": clip.clip_id, "event_id": clip.event_id, "label": clip.label}
    report_rows.append({
        **meta, "path": str(clip.path), "status": record["status"],
        "reason": record["reason"], "duration_s": record["duration_s"],
        "n_blocks": len(record["blocks"]), "n_kept": sum(b["kept"] for b in record["blocks"]),
        "n_clipped": sum(bool(b["clipped"]) for b in record["blocks"]),
    })
    for b in record["blocks"]:
        block_rows.append({"block_id": _block_id(clip.clip_id, b["index"]), **meta,
                           **{c: b[c] for c in BLOCK_COLUMNS if c in b}})


def balance(blocks: pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Delete random kept blocks until every class has as many as the smallest.

    The paper's balancing ("reducing the data set to have about the same
    number of images for each class ... deleting random blocks"). Dropped
    blocks (``kept`` False) are left out first; the kept blocks of each larger
    class are thinned by a seeded random choice. Row order is preserved.

    Parameters
    ----------
    blocks : pd.DataFrame
        A block table (needs ``label``; ``kept`` is used when present).
    seed : int
        Seed of the ``np.random.default_rng`` that picks the deleted blocks.

    Returns
    -------
    balanced_blocks : pd.DataFrame
        The remaining kept blocks, equal counts per label.
    report : pd.DataFrame
        Columns ``label``, ``before``, ``after``, ``removed``; one row per label,
        sorted by label.
    """
    if "label" not in blocks.columns:
        raise DataError("block table lacks column label")
    kept = blocks[blocks["kept"].astype(bool)] if "kept" in blocks.columns else blocks
    rng = np.random.default_rng(seed)
    counts = kept["label"].value_counts()
    target = int(counts.min()) if len(counts) else 0
    remove: list[Any] = []
    rows = []
    for label in sorted(counts.index):
        index = kept.index[kept["label"] == label].to_numpy()
        n_remove = index.size - target
        if n_remove:
            remove.extend(rng.choice(index, size=n_remove, replace=False).tolist())
        rows.append({"label": label, "before": int(index.size), "after": target,
                     "removed": int(n_remove)})
    balanced = kept.drop(index=remove)
    return balanced, pd.DataFrame(rows, columns=["label", "before", "after", "removed"])


# ---------------------------------------------------------------------------
# Command line


def _cli(args: argparse.Namespace) -> int:
    blocks = preprocess(args.collection, args.out, sr=args.sr, block_s=args.block_s,
                        hop_s=args.hop_s, low_hz=args.low_hz, high_hz=args.high_hz,
                        target_lufs=args.target_lufs, progress=not args.quiet)
    kept = blocks[blocks["kept"]]
    print(f"{len(kept)} of {len(blocks)} blocks kept; "
          + ", ".join(f"{k}: {v}" for k, v in kept["label"].value_counts().sort_index().items())
          + f"; table: {Path(args.out) / 'blocks.csv'}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``crowdnb preprocess COLLECTION --out DIR``."""
    parser = subparsers.add_parser(
        "preprocess", help="cut clips into blocks and render spectrogram images",
        description="Load, band-limit, block, loudness-normalise and render every clip of a "
                    "collection; cached, resumable.",
    )
    parser.add_argument("collection", help="collection folder (with clips.csv) or clips.csv")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--sr", type=int, default=44100, help="sample rate, Hz")
    parser.add_argument("--block-s", type=float, default=2.0, help="block length, s")
    parser.add_argument("--hop-s", type=float, default=1.0, help="block hop, s")
    parser.add_argument("--low-hz", type=float, default=20.0, help="band low edge, Hz")
    parser.add_argument("--high-hz", type=float, default=20000.0, help="band high edge, Hz")
    parser.add_argument("--target-lufs", type=float, default=-23.0, help="block loudness, LUFS")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cli)
