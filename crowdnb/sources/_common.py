"""What every source shares: identifiers, audio probing, the report, the card.

A source turns its input into rows of the clips table plus one report row per
item it looked at (``item``, ``status``, ``reason``); :func:`finish_collection`
writes ``clips.csv``, ``card.md`` and ``collection_report.csv`` together.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..audio import CLIPPING_FRACTION, full_scale_fraction, load_clip, truncation
from ..clips import (CARD_FILE, CLIP_COLUMNS, CLIPS_FILE, ID_PATTERN, read_clips, write_card,
                     write_clips)
from ..errors import AudioError, DataError, ParameterError
from ..files import atomic_path, write_table
from .labels import STUDY_LABELS, check_labels

logger = logging.getLogger("crowdnb.sources")

REPORT_FILE = "collection_report.csv"
REPORT_COLUMNS = ["item", "status", "reason"]
COLLECTED, FAILED, SKIPPED, KEPT = "collected", "failed", "skipped", "kept"
AUDIO_DIR = "audio"
BLOCK_S = 2.0  # the paper's block length t_b: a shorter clip yields no block

_URL_SCHEMES = ("http", "https")

#: What to do with a collection already in the output folder: stop and say so
#: (the default), add the new clips to it, or delete it and collect afresh.
EXISTING = ("refuse", "update", "replace")


def safe_id(text: str, *, max_len: int = 96) -> str:
    """A valid clip or event id made from free text (a file name, a path).

    Characters outside ``[A-Za-z0-9_.-]`` become ``_``; the result starts with
    a letter or digit. Text with nothing usable gets a short hash instead, so
    the id stays deterministic.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")
    cleaned = re.sub(r"_+", "_", cleaned)[:max_len].rstrip("_.-")
    if not cleaned:
        cleaned = "x" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return cleaned


def check_id(value: str, *, what: str) -> str:
    """Return ``value`` when it is a valid id, else raise :class:`DataError`."""
    if not ID_PATTERN.match(value):
        raise DataError(f"invalid {what} {value!r} (letters, digits, '_', '-', '.'; "
                        "starting with a letter or digit)")
    return value


def check_url(url: str) -> str:
    """Return ``url`` when it is an http(s) URL with a host, else raise :class:`DataError`.

    URLs come from tables: they are data handed to yt-dlp or urllib, never to
    a shell, and other schemes (``file:``, ``ftp:``, ...) are refused.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() not in _URL_SCHEMES:
        raise DataError(f"URL scheme must be http or https, got {url!r}")
    if not parts.hostname:
        raise DataError(f"URL has no host: {url!r}")
    return url.strip()


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, lower-case: the unit of 'unreachable'."""
    return urllib.parse.urlsplit(url).netloc.lower()


def strip_path(message: str, path: str | os.PathLike) -> str:
    """The reason part of an :class:`AudioError` message (which starts with the path)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def probe_audio(path: str | os.PathLike) -> dict:
    """Check that preprocessing can read a file and describe it.

    The file is decoded with :func:`crowdnb.audio.load_clip` (the reader the
    preprocessing uses) at its own sample rate, so a file that passes here
    also passes there. The duration is the decoded one, not the header's
    (a truncated mp3 announces more than it holds).

    Returns
    -------
    dict
        ``duration_s`` (float, s), ``sample_rate`` (int, Hz, the file's own),
        ``channels`` (int), ``format`` (str), ``full_scale_fraction`` (the share
        of samples at full scale: see :func:`clipping_note`).

    Raises
    ------
    AudioError
        When the file is empty, not audio, corrupt, truncated (it holds less
        than its header promises), or holds no samples.
    """
    import soundfile

    path = Path(path)
    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        info = None
    if info is not None:
        y, sr = load_clip(path, sr=int(info.samplerate))
        meta = {"duration_s": len(y) / sr, "sample_rate": int(info.samplerate),
                "channels": int(info.channels), "format": f"{info.format}/{info.subtype}"}
    else:
        # Not a libsndfile format (m4a, mp4, webm...): load_clip decodes it with
        # ffmpeg; its own rate and channel count come from ffmpeg's stream line.
        sample_rate, channels = _ffmpeg_stream_info(path)
        y, sr = load_clip(path, sr=sample_rate or 44100)
        meta = {"duration_s": len(y) / sr, "sample_rate": sample_rate or None,
                "channels": channels or None, "format": path.suffix.lstrip(".").lower()}
    cut = truncation(path, meta["duration_s"])
    if cut:
        raise AudioError(f"{path}: {cut} (an interrupted copy or download?)")
    meta["full_scale_fraction"] = full_scale_fraction(y)
    return meta


def clipping_note(meta: dict) -> str:
    """A collected clip's note when its recording clipped ("" when it did not)."""
    share = meta.get("full_scale_fraction", 0.0)
    if share <= CLIPPING_FRACTION:
        return ""
    return (f"clipped recording: {share:.2%} of the samples at full scale (distortion in its "
            "spectrograms)")


def _ffmpeg_stream_info(path: Path) -> tuple[int, int]:
    """(sample rate Hz, channels) of the first audio stream, 0 when unknown."""
    import subprocess

    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return 0, 0
    # An argument list, no shell: the path is data.
    run = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", os.fspath(path)],
                         capture_output=True, check=False)
    text = run.stderr.decode("utf-8", "replace")
    match = re.search(r"Audio: [^\n]*?(\d+) Hz, ([^,\n]+)", text)
    if not match:
        return 0, 0
    layout = match.group(2).strip()
    named = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "7.1": 8}
    count = re.match(r"(\d+) channels", layout)
    channels = int(count.group(1)) if count else named.get(layout.split("(")[0], 0)
    return int(match.group(1)), channels


def too_short(duration_s: float, min_duration_s: float) -> str:
    """The report's reason for a clip shorter than ``min_duration_s`` ('' if long enough)."""
    if duration_s + 1e-9 >= min_duration_s:
        return ""
    if min_duration_s == BLOCK_S:
        return f"shorter than one block ({BLOCK_S:g} s): {duration_s:.2f} s"
    return f"shorter than min_duration_s ({min_duration_s:g} s): {duration_s:.2f} s"


def check_min_duration(min_duration_s: float) -> float:
    if isinstance(min_duration_s, bool) or not isinstance(min_duration_s, (int, float)) \
            or not min_duration_s >= 0:
        raise ParameterError(f"min_duration_s must be a number >= 0 (s), got {min_duration_s!r}")
    return float(min_duration_s)


def place_file(src: Path, dst: Path, *, link: bool) -> None:
    """Put a copy of ``src`` at ``dst`` atomically (a hard link when ``link`` and possible).

    Hard links are used for files the collection owns (the download cache):
    no second copy on disk, and deleting the cache keeps the collection whole.
    """
    with atomic_path(dst) as tmp:
        if link:
            try:
                os.link(src, tmp)
                return
            except OSError:
                pass
        shutil.copy2(src, tmp)


@dataclass
class Collection:
    """What a source collected.

    Attributes
    ----------
    clips : pd.DataFrame
        The clips table as written (absolute paths).
    folder : Path
        The collection folder.
    report : pd.DataFrame
        One row per input item: ``item``, ``status``, ``reason`` (``kept``:
        a clip an update did not collect again).
    messages : list of str
        What the user should know (e.g. a host that could not be reached).
    collections : dict[str, Path]
        The synthetic source's two collections (``emotions``, ``football``).
    selection : pd.DataFrame or None
        The AudioSet source's per-emotion selection summary.
    """

    clips: pd.DataFrame
    folder: Path
    report: pd.DataFrame
    messages: list[str] = field(default_factory=list)
    collections: dict[str, Path] = field(default_factory=dict)
    selection: pd.DataFrame | None = None


def open_folder(out_dir: str | os.PathLike, existing: str = "refuse", *,
                keep: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """Check a collection folder before a source writes anything into it.

    Parameters
    ----------
    out_dir : path-like
        The collection folder.
    existing : {"refuse", "update", "replace"}
        What to do when it already holds a collection: stop with a message
        that names it; keep it and add the new clips (the source calls
        :func:`finish_collection` with the table returned here); or delete
        its clips table, card, report and audio first.
    keep : tuple of str
        Names in the folder that are the source's own cache (the manifest's
        ``downloads``): not a collection, kept by ``replace``.

    Returns
    -------
    pd.DataFrame or None
        The collection there, for ``update``; None when there is none.

    Raises
    ------
    ParameterError
        When ``out_dir`` is a file, or ``existing`` is not one of :data:`EXISTING`.
    DataError
        When the folder holds a collection and ``existing`` is ``"refuse"``, or
        holds other files (two collections never share a folder).
    """
    if existing not in EXISTING:
        raise ParameterError(f"existing must be one of {', '.join(EXISTING)}, got {existing!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"{out_dir}: is a file; the output must be a folder (new, empty, "
                             "or an earlier collection)")
    entries = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    others = [name for name in entries if name not in keep]
    if not (out_dir / CLIPS_FILE).is_file():
        # what a run that collected nothing leaves: its report (and the cache)
        others = [name for name in others if name != REPORT_FILE]
    if not others:
        return None
    if not (out_dir / CLIPS_FILE).is_file():
        raise DataError(f"{out_dir}: not empty and not a collection (it holds "
                        f"{', '.join(others[:4])}{', ...' if len(others) > 4 else ''}); collect "
                        "into a new or empty folder")
    if existing == "refuse":
        n = len(read_clips(out_dir))
        raise DataError(f"{out_dir}: already holds a collection ({n} clips); nothing was "
                        "changed. Pass --update to add the new clips to it (existing clips are "
                        "kept), or --replace to delete it and collect afresh")
    if existing == "update":
        return read_clips(out_dir)
    for name in (CLIPS_FILE, CARD_FILE, REPORT_FILE):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / AUDIO_DIR, ignore_errors=True)
    return None


def report_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def finish_collection(
    rows: list[dict],
    report: pd.DataFrame,
    out_dir: Path,
    *,
    title: str,
    description: str,
    extra_columns: tuple[str, ...] = (),
    empty_message: str | None = None,
    previous: pd.DataFrame | None = None,
) -> Collection:
    """Write the report, the clips table and the card; return the collection as read back.

    The report is written first and always, so that a run that collected
    nothing still says why. With no clip collected, :class:`DataError` is
    raised after the report is written (an empty collection would only fail
    later, in preprocessing, with a less useful message); its message is
    ``empty_message`` when given, else the first reasons.

    ``previous`` is the collection an update adds to (:func:`open_folder`):
    its clips that this run did not collect again are kept (reported
    ``kept``), and a clip collected again with other audio is reported.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if previous is not None:
        rows, report = _merge(previous, rows, report)
    report = report[REPORT_COLUMNS].reset_index(drop=True)
    write_table(out_dir / REPORT_FILE, report)
    failures = report[~report["status"].isin([COLLECTED, KEPT])]
    if not rows and empty_message:
        raise DataError(f"{out_dir}: no clip was collected. {empty_message} "
                        f"The full list is in {out_dir / REPORT_FILE}")
    if not rows and failures.empty:
        raise DataError(f"{out_dir}: no clip was collected: the input holds no item (no audio "
                        f"file, no row). The report is in {out_dir / REPORT_FILE}")
    if not rows:
        reasons = "; ".join(f"{r.item}: {r.reason}" for r in failures.head(3).itertuples())
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        raise DataError(f"{out_dir}: no clip was collected; {reasons}{more}. "
                        f"The full list is in {out_dir / REPORT_FILE}")
    table = pd.DataFrame(rows)
    for column in CLIP_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table = table[CLIP_COLUMNS + [c for c in extra_columns if c in table.columns]]
    write_clips(table, out_dir)
    write_card(table, out_dir, title=title, description=description,
               failures=failures[["item", "reason"]])
    logger.info("collected %d clip(s) into %s; %d item(s) not collected (see %s)",
                len(table), out_dir, len(failures), REPORT_FILE)
    return Collection(clips=read_clips(out_dir), folder=out_dir, report=report)


def _merge(previous: pd.DataFrame, rows: list[dict],
           report: pd.DataFrame) -> tuple[list[dict], pd.DataFrame]:
    """An update: the previous clips not collected again, then this run's."""
    new = {row["clip_id"]: row for row in rows}
    report = report.copy()
    before = previous.set_index("clip_id")
    for clip_id, row in new.items():
        if clip_id in before.index and before.loc[clip_id, "sha256"] != row["sha256"]:
            note = (f"changed: other audio than the collection's clip {clip_id} "
                    f"(sha256 {str(before.loc[clip_id, 'sha256'])[:12]} -> {row['sha256'][:12]})")
            logger.warning("%s", note)
            report.loc[_report_rows(report, clip_id), "reason"] = note
    kept = previous[~previous["clip_id"].isin(list(new))]
    kept_rows = kept.to_dict("records")
    report = pd.concat([pd.DataFrame([{"item": r["clip_id"], "status": KEPT,
                                       "reason": "in the collection before this update"}
                                      for r in kept_rows], columns=REPORT_COLUMNS), report],
                       ignore_index=True)
    return kept_rows + rows, report


def _report_rows(report: pd.DataFrame, clip_id: str) -> pd.Series:
    # the sources' reports carry each collected item's clip_id for this
    if "clip_id" not in report.columns:
        return pd.Series(False, index=report.index)
    return report["status"].eq(COLLECTED) & report["clip_id"].eq(clip_id)


__all__ = [
    "Collection", "EXISTING", "STUDY_LABELS", "KEPT", "open_folder", "check_labels", "REPORT_FILE", "REPORT_COLUMNS", "COLLECTED", "FAILED", "SKIPPED", "AUDIO_DIR", "BLOCK_S",
    "ID_PATTERN", "safe_id", "check_id", "check_url", "host_of", "strip_path", "probe_audio",
    "too_short", "check_min_duration", "clipping_note", "place_file", "report_frame", "finish_collection",
    "logger",
]
