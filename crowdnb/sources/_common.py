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

from ..audio import load_clip
from ..clips import CLIP_COLUMNS, ID_PATTERN, read_clips, write_card, write_clips
from ..errors import DataError, ParameterError
from ..files import atomic_path, write_table

logger = logging.getLogger("crowdnb.sources")

REPORT_FILE = "collection_report.csv"
REPORT_COLUMNS = ["item", "status", "reason"]
COLLECTED, FAILED, SKIPPED = "collected", "failed", "skipped"
AUDIO_DIR = "audio"
BLOCK_S = 2.0  # the paper's block length t_b: a shorter clip yields no block

_URL_SCHEMES = ("http", "https")


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
        ``channels`` (int), ``format`` (str).

    Raises
    ------
    AudioError
        When the file is empty, not audio, corrupt, or holds no samples.
    """
    import soundfile

    path = Path(path)
    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        info = None
    if info is not None:
        y, sr = load_clip(path, sr=int(info.samplerate))
        return {"duration_s": len(y) / sr, "sample_rate": int(info.samplerate),
                "channels": int(info.channels), "format": f"{info.format}/{info.subtype}"}
    # Not a libsndfile format (m4a, mp4, webm...): load_clip decodes it with
    # ffmpeg; its own rate and channel count come from ffmpeg's stream line.
    sample_rate, channels = _ffmpeg_stream_info(path)
    y, sr = load_clip(path, sr=sample_rate or 44100)
    return {"duration_s": len(y) / sr, "sample_rate": sample_rate or None,
            "channels": channels or None, "format": path.suffix.lstrip(".").lower()}


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
        One row per input item: ``item``, ``status``, ``reason``.
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
) -> Collection:
    """Write the report, the clips table and the card; return the collection as read back.

    The report is written first and always, so that a run that collected
    nothing still says why. With no clip collected, :class:`DataError` is
    raised after the report is written (an empty collection would only fail
    later, in preprocessing, with a less useful message); its message is
    ``empty_message`` when given, else the first reasons.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir / REPORT_FILE, report)
    failures = report[report["status"] != COLLECTED]
    if not rows and empty_message:
        raise DataError(f"{out_dir}: no clip was collected. {empty_message} "
                        f"The full list is in {out_dir / REPORT_FILE}")
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


__all__ = [
    "Collection", "REPORT_FILE", "REPORT_COLUMNS", "COLLECTED", "FAILED", "SKIPPED", "AUDIO_DIR", "BLOCK_S",
    "ID_PATTERN", "safe_id", "check_id", "check_url", "host_of", "strip_path", "probe_audio",
    "too_short", "check_min_duration", "place_file", "report_frame", "finish_collection",
    "logger",
]
