"""From a clips table to the block table and its spectrogram images.

:func:`preprocess` runs the paper's sound-to-spectrogram phase on every clip,
with the settings of one :class:`crowdnb.config.PreprocessConfig`: load,
band-limit (20 Hz - 20 kHz), cut into 2 s blocks every 1 s, bring each block
to -23 LUFS (:func:`crowdnb.audio.normalised_blocks`), and render one
227 x 227 spectrogram image per kept block. :func:`balance` then deletes
random blocks until the classes have equal counts, as the paper did.

Layout of ``out_dir``::

    blocks.csv            the block table (BLOCK_COLUMNS), one row per block
    clip_report.csv       one row per clip (CLIP_REPORT_COLUMNS): what became of it
    params.json           the settings, their hash and the library versions
    images/<run>/<clip_id>/<block_id>.png
    cache/clips/<clip_id>-<run>.json    the clip's finished rows (images written)

and of the cache (``cache_dir``, ``out_dir/cache`` unless given)::

    audio/<sha256>-<hash>.json   the loudness step of one audio file
    mel/<sha256>-<hash>.npz      the mel PSD of its kept blocks

Every cache entry is keyed by the SHA-256 of the audio file, a hash of the
settings its step depends on, and the source code of the module that computes
it, and written atomically. So a second run with the same settings reads
everything back, an interrupted run resumes with the finished clips intact, a
new clip is the only one processed, a change of the image settings (dB range,
colormap, size) re-renders images from the cached spectrograms, and a cache
shared between runs never returns what other code or settings computed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import audio, spectrogram
from .clips import check_clips, read_clips
from .config import PreprocessConfig
from .errors import AudioError, DataError, ParameterError
from .files import atomic_path, atomic_write, read_json, sha256_file, stable_hash, write_json
from .files import write_table
from .provenance import library_versions, source_hash

__all__ = [
    "preprocess",
    "balance",
    "Preprocessed",
    "BLOCK_COLUMNS",
    "CLIP_REPORT_COLUMNS",
    "png_bytes",
    "block_id",
    "check_settings",
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
_BLOCK_FIELDS = ("loudness_lufs", "gain_db", "peak_dbfs", "clipped", "reason")
# Bumped when a step's output changes for the same settings and code.
_STAGE_VERSION = {"audio": 2, "mel": 2, "image": 2}
_PNG_COMPRESS_LEVEL = 1  # noise-like images: higher levels cost time and save little


@dataclass(frozen=True)
class Preprocessed:
    """What :func:`preprocess` made.

    Attributes
    ----------
    blocks : pd.DataFrame
        The block table (:data:`BLOCK_COLUMNS`); ``image_path`` is relative to
        ``folder``.
    clip_report : pd.DataFrame
        One row per clip (:data:`CLIP_REPORT_COLUMNS`): unusable, too short,
        truncated (it holds less than its header promises), every block
        silent, or ok.
    folder : Path
        Where the tables and the images are (the image root).
    config : PreprocessConfig
        The settings that made them.
    """

    blocks: pd.DataFrame
    clip_report: pd.DataFrame
    folder: Path
    config: PreprocessConfig

    @property
    def kept(self) -> pd.DataFrame:
        """The blocks that have an image."""
        return self.blocks[self.blocks["kept"]].reset_index(drop=True)


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


def check_settings(config: PreprocessConfig) -> None:
    """Fail before any clip is touched on settings the steps cannot use together.

    Beyond what each part of the configuration checks on its own: the band
    limit at the sample rate (``low_hz`` below 0.95 x Nyquist), ``fmin``
    below Nyquist, the frame hop, the filterbank, the colormap, and a block
    holding at least one spectrogram window. The workflow runs it on the
    parameters of every run before any stage starts.

    Raises
    ------
    ParameterError
        Naming the setting(s) and what is wrong.
    """
    a, m, i = config.audio, config.spectrogram, config.image
    audio.band_limit(np.zeros(64, dtype=np.float32), a.sr, low_hz=a.low_hz, high_hz=a.high_hz,
                     order=a.order)
    if m.fmin >= a.sr / 2:
        raise ParameterError(f"fmin ({m.fmin:g} Hz) must be below the Nyquist frequency "
                             f"({a.sr / 2:g} Hz at sr={a.sr})")
    spectrogram.hop_length(a.sr, m.frame_hop_s)
    spectrogram.mel_filterbank(a.sr, n_fft=m.n_fft, n_mels=m.n_mels, fmin=m.fmin, fmax=m.fmax,
                               freq_scale=m.freq_scale)
    spectrogram.colormap_palette(i.colormap, i.n_colors)
    if round(a.block_s * a.sr) < m.win_length:
        raise ParameterError(f"block_s ({a.block_s:g} s) is shorter than one spectrogram window "
                             f"(win_length={m.win_length} samples)")


class _Steps:
    """The per-clip work with the cache paths and keys of one configuration."""

    def __init__(self, out_dir: Path, config: PreprocessConfig, cache_dir: Path | None):
        self.out_dir = out_dir
        self.config = config
        # The code that computes each step is part of its key: a cache shared
        # between runs never returns what an older version computed.
        self.audio_hash = stable_hash({"audio": config.audio.to_dict(),
                                       "v": _STAGE_VERSION["audio"],
                                       "code": source_hash("crowdnb.audio")})
        self.mel_hash = stable_hash({"a": self.audio_hash, "mel": config.spectrogram.to_dict(),
                                     "v": _STAGE_VERSION["mel"],
                                     "code": source_hash("crowdnb.spectrogram")})
        self.run_hash = stable_hash({"m": self.mel_hash, "image": config.image.to_dict(),
                                     "v": _STAGE_VERSION["image"]})
        self.cache = Path(cache_dir) if cache_dir is not None else out_dir / "cache"

    # Loudness and mel spectrograms are named by the audio's checksum (they
    # may be shared between collections); a clip's finished rows, which name
    # this folder's images, by the clip.
    def audio_path(self, sha: str) -> Path:
        return self.cache / "audio" / f"{sha[:16]}-{self.audio_hash}.json"

    def mel_path(self, sha: str) -> Path:
        return self.cache / "mel" / f"{sha[:16]}-{self.mel_hash}.npz"

    def clip_path(self, clip_id: str) -> Path:
        return self.out_dir / "cache" / "clips" / f"{clip_id}-{self.run_hash}.json"

    def image_path(self, clip_id: str, index: int) -> str:
        return f"images/{self.run_hash}/{clip_id}/{block_id(clip_id, index)}.png"

    def _blocks(self, path: str) -> tuple[int, list[audio.Block]]:
        y, sr = audio.load_clip(path, sr=self.config.audio.sr)
        return y.size, list(audio.normalised_blocks(y, sr, config=self.config.audio))

    def loudness(self, path: str, sha: str) -> tuple[dict, list[np.ndarray] | None]:
        """The clip's loudness record, and its normalised kept blocks if they were made."""
        key = stable_hash({"sha256": sha, "step": self.audio_hash})
        cached = _read_record(self.audio_path(sha), key)
        if cached is not None:
            return cached, None
        record: dict[str, Any] = {"key": key, "status": "ok", "reason": "", "duration_s": None,
                                  "blocks": []}
        try:
            n, blocks = self._blocks(path)
        except AudioError as exc:
            record.update(status="unusable", reason=str(exc))
            blocks = []
        else:
            record["duration_s"] = n / self.config.audio.sr
            # a truncated file is named so, not "too short" (it promised more)
            cut = audio.truncation(path, record["duration_s"])
            if cut:
                record["reason"] = cut
            if not blocks:
                record.update(status="truncated" if cut else "too_short", reason=cut or (
                    f"too short: the clip lasts {record['duration_s']:.3f} s, less than one "
                    f"{self.config.audio.block_s:g} s block"))
            elif not any(b.kept for b in blocks):
                record.update(status="no_usable_blocks",
                              reason="every block was dropped (see the block table)")
        record["blocks"] = [{"index": b.index, "start_s": b.start_s, "end_s": b.end_s,
                             "kept": b.kept, **{f: getattr(b, f) for f in _BLOCK_FIELDS}}
                            for b in blocks]
        write_json(self.audio_path(sha), record)
        return record, [b.samples for b in blocks if b.kept]

    def mel(self, path: str, sha: str, record: dict,
            normalised: list[np.ndarray] | None) -> np.ndarray:
        """Mel PSD of the kept blocks [n_kept, n_mels, n_frames], cached per audio file."""
        key = stable_hash({"sha256": sha, "step": self.mel_hash})
        target = self.mel_path(sha)
        if target.is_file():
            try:
                with np.load(target, allow_pickle=False) as stored:
                    if str(stored["key"]) == key:
                        return stored["S_db"]
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache file: compute it again
        if normalised is None:  # loudness was cached: the blocks again, with the recorded gains
            y, sr = audio.load_clip(path, sr=self.config.audio.sr)
            gains = {b["index"]: b["gain_db"] for b in record["blocks"] if b["kept"]}
            normalised = audio.blocks_with_gains(y, sr, gains, config=self.config.audio)
        S_db = np.stack([spectrogram.block_spectrum(b, self.config.audio.sr,
                                                    spectrogram=self.config.spectrogram)
                         for b in normalised])
        with atomic_path(target) as tmp:
            np.savez(tmp, S_db=S_db, key=np.array(key))
        return S_db

    def images(self, clip_id: str, record: dict, S_db: np.ndarray) -> list[str]:
        names = []
        kept = [b for b in record["blocks"] if b["kept"]]
        if len(kept) != len(S_db):
            raise DataError(f"{clip_id}: {len(S_db)} spectrograms for {len(kept)} kept blocks "
                            "(a stale cache file?)")
        for b, S in zip(kept, S_db):
            name = self.image_path(clip_id, b["index"])
            rgb = spectrogram.render_image(S, image=self.config.image)
            with atomic_write(self.out_dir / name, "wb") as fh:
                fh.write(png_bytes(rgb, compress_level=_PNG_COMPRESS_LEVEL))
            names.append(name)
        return names

    def clip(self, clip_id: str, path: str) -> dict:
        """The clip's finished record: from this folder's cache, or made now."""
        try:
            sha = sha256_file(path)
        except OSError as exc:
            return {"status": "unusable", "duration_s": None, "blocks": [],
                    "reason": f"{path}: cannot read the file ({exc.strerror or exc})"}
        key = stable_hash({"sha256": sha, "step": self.run_hash})
        finished = _read_record(self.clip_path(clip_id), key)
        if finished is not None:
            return finished
        record, normalised = self.loudness(path, sha)
        blocks = [dict(b) for b in record["blocks"]]
        names = iter(())
        if any(b["kept"] for b in blocks):
            names = iter(self.images(clip_id, record, self.mel(path, sha, record, normalised)))
        for b in blocks:
            b["image_path"] = next(names) if b["kept"] else ""
        finished = {**record, "key": key, "blocks": blocks}
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


def block_id(clip_id: str, index: int) -> str:
    """The id of a clip's block number ``index`` (``<clip_id>_b0003``)."""
    return f"{clip_id}_b{index:04d}"


def preprocess(
    clips: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: PreprocessConfig = PreprocessConfig(),
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Preprocessed:
    """Turn every clip into loudness-normalised blocks and spectrogram images.

    For each clip: :func:`~crowdnb.audio.load_clip` at ``config.audio.sr``,
    :func:`~crowdnb.audio.normalised_blocks`, and one PNG per kept block from
    :func:`~crowdnb.spectrogram.block_spectrum` and
    :func:`~crowdnb.spectrogram.render_image`. Results are cached per clip and
    per step (see the module docstring): rerunning does only the work whose
    inputs, settings or code changed, and an interrupted run resumes.

    Parameters
    ----------
    clips : pd.DataFrame or path-like
        A clips table (as :func:`crowdnb.clips.read_clips` returns it: absolute
        ``path``; needs ``clip_id``, ``label``, ``path``, and ``event_id``
        defaults to ``clip_id``), or a collection folder / ``clips.csv``.
    out_dir : path-like
        Output folder (see the module docstring for its layout).
    config : PreprocessConfig
        Every setting (default: the paper's).
    cache_dir : path-like or None
        Where the loudness and mel-spectrogram caches live (default
        ``out_dir/cache``); a folder shared between runs (the workflow's
        ``runs/.cache``) lets every run reuse what another computed from the
        same audio with the same settings and code.
    progress : bool
        Show a tqdm progress bar over clips.

    Returns
    -------
    Preprocessed
        The block table and the clip report (both also written to
        ``out_dir``), the folder, the settings.

    Raises
    ------
    ParameterError
        For settings the steps cannot use (checked before any clip).
    DataError
        When the clips table is missing or malformed.
    """
    from tqdm import tqdm

    if not isinstance(config, PreprocessConfig):
        raise ParameterError(f"config must be a PreprocessConfig, not {type(config).__name__}")
    table = _as_clips(clips)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"{out_dir}: not a folder (it is a file); the output is the folder "
                             "that receives blocks.csv, clip_report.csv and the images")
    check_settings(config)
    _check_block_length(table, config.audio.block_s, where=clips)
    steps = _Steps(out_dir, config, Path(cache_dir) if cache_dir is not None else None)
    write_json(out_dir / "params.json", {"preprocessing": config.to_dict(),
                                         "run_hash": steps.run_hash,
                                         "versions": library_versions()})
    # One process: on the 2-core machine this was written for, a pool of spawned
    # workers was slower (interpreter start-up, and the cores are shared); the
    # clips are independent, so a pool could be added without changing results.
    block_rows: list[dict] = []
    report_rows: list[dict] = []
    n_images = 0
    bar = tqdm(table.itertuples(index=False), total=len(table), desc="preprocess",
               unit="clip", disable=not progress)
    for clip in bar:
        record = steps.clip(clip.clip_id, str(clip.path))
        _collect(clip, record, block_rows, report_rows)
        n_images += sum(b["kept"] for b in record["blocks"])
        bar.set_postfix(images=n_images, refresh=False)
    bar.close()
    durations = {r["clip_id"]: r["duration_s"] for r in report_rows
                 if r["status"] in ("ok", "too_short", "no_usable_blocks")}
    _check_block_length(pd.DataFrame({"clip_id": list(durations),
                                      "duration_s": list(durations.values())}),
                        config.audio.block_s, where=clips)

    blocks = pd.DataFrame(block_rows, columns=BLOCK_COLUMNS)
    blocks = blocks.astype({"start_s": float, "end_s": float, "loudness_lufs": float,
                            "gain_db": float, "peak_dbfs": float, "clipped": bool, "kept": bool})
    report = pd.DataFrame(report_rows, columns=CLIP_REPORT_COLUMNS)
    write_table(out_dir / "clip_report.csv", report)
    write_table(out_dir / "blocks.csv", blocks)
    return Preprocessed(blocks=blocks, clip_report=report, folder=out_dir, config=config)


def _check_block_length(table: pd.DataFrame, block_s: float, *, where: Any) -> None:
    """Refuse a block length longer than every clip (no block could be cut from any).

    Checked on the clips table's durations before any clip is read (when it
    has them all), and on the decoded durations of the clips after.
    """
    if table.empty or "duration_s" not in table.columns:
        return
    durations = pd.to_numeric(table["duration_s"], errors="coerce")
    if not (durations.notna().all() and (durations > 0).all()):
        return
    longest = int(durations.to_numpy().argmax())
    if durations.iloc[longest] < block_s:
        name = f" of {where}" if isinstance(where, (str, os.PathLike)) else ""
        raise ParameterError(
            f"block_s ({block_s:g} s) is longer than every clip{name}: the longest, "
            f"{table['clip_id'].iloc[longest]}, lasts {durations.iloc[longest]:.2f} s, so no "
            "block could be cut; choose a block_s no longer than that")


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
        block_rows.append({"block_id": block_id(clip.clip_id, b["index"]), **meta,
                           **{c: b[c] for c in BLOCK_COLUMNS if c in b}})


def balance(blocks: pd.DataFrame, *, seed: int,
            enabled: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    enabled : bool
        False keeps every kept block (the classes as they are), with the same
        report (``removed`` 0): for studying unbalanced classes.

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
        n_remove = index.size - target if enabled else 0
        if n_remove:
            remove.extend(rng.choice(index, size=n_remove, replace=False).tolist())
        rows.append({"label": label, "before": int(index.size), "after": int(index.size - n_remove),
                     "removed": int(n_remove)})
    balanced = kept.drop(index=remove)
    return balanced, pd.DataFrame(rows, columns=["label", "before", "after", "removed"])


# ---------------------------------------------------------------------------
# Command line


def _cli(args: argparse.Namespace) -> int:
    settings = {name: getattr(args, name) for name in PreprocessConfig().flat()
                if getattr(args, name, None) is not None}
    result = preprocess(args.collection, args.out, config=PreprocessConfig.from_flat(**settings),
                        progress=not args.quiet)
    kept = result.kept
    print(f"{len(kept)} of {len(result.blocks)} blocks kept; "
          + ", ".join(f"{k}: {v}" for k, v in kept["label"].value_counts().sort_index().items())
          + f"; table: {Path(args.out) / 'blocks.csv'}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``crowdnb preprocess COLLECTION --out DIR`` (one option per setting)."""
    parser = subparsers.add_parser(
        "preprocess", help="cut clips into blocks and render spectrogram images",
        description="Load, band-limit, block, loudness-normalise and render every clip of a "
                    "collection; cached, resumable. Every setting defaults to the paper's value.",
    )
    parser.add_argument("collection", help="collection folder (with clips.csv) or clips.csv")
    parser.add_argument("--out", required=True, help="output folder")
    for part in dataclasses.fields(PreprocessConfig):
        for f in dataclasses.fields(part.default_factory()):
            default = f.default
            if isinstance(default, tuple):
                parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=int, nargs=2,
                                    metavar=("ROWS", "COLUMNS"), help=f"{part.name}: default {default}")
            else:
                parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(default),
                                    help=f"{part.name}: default {default}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cli)
