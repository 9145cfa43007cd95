"""The ``manifest`` source: labelled moments of online videos and recordings.

A manifest is a CSV with one row per clip::

    url,start,end,label,event_id,licence,attribution
    https://www.youtube.com/watch?v=XXXXXXXXXXX,61.0,95.5,joy,final_2014,,
    https://example.org/riot.mp3,0:12,0:40,anger,,CC BY 4.0,Jane Doe

Each row is fetched with yt-dlp through its Python API (``yt_dlp.YoutubeDL``):
audio only, only the time range (``download_ranges`` with
``force_keyframes_at_cuts``), converted to WAV by the ffmpeg binary that the
``imageio-ffmpeg`` wheel ships, so nothing needs a system install. Every
download lands in a cache folder named by a hash of URL, start and end, with
its SHA-256 in ``meta.json``: a rerun reuses what is there and fetches only
what is missing. A row that fails is reported and skipped; after a
network-level failure (no route, refused connection, unresolvable name) the
other rows of that host are not attempted, and one message says so.

URLs are data: only http and https are accepted, they are handed to yt-dlp
as strings (no shell is ever involved), and every file name is derived from
a hash or a validated id, never from the URL's text.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import math
import os
import re
import shutil
import socket
import ssl
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from ..clips import validate_label
from ..errors import AudioError, DataError, ParameterError
from ..files import atomic_write, read_json, sha256_file, stable_hash
from ._common import (
    AUDIO_DIR, BLOCK_S, COLLECTED, FAILED, KEPT, REPORT_COLUMNS, SKIPPED, Collection, Draft,
    changed_audio, check_id, check_labels, check_min_duration, check_url, finish_collection,
    host_of, logger, open_collection, open_folder, place_file, probe_audio, too_short,
)

__all__ = ["collect_manifest", "read_manifest", "default_event_id", "default_clip_id",
           "cache_key", "MANIFEST_COLUMNS", "DEFAULT_CACHE_DIR"]

#: Manifest columns; ``url`` and ``label`` are required, the rest optional.
MANIFEST_COLUMNS = ["url", "start", "end", "label", "event_id", "clip_id", "licence",
                    "attribution"]
#: The download cache, relative to the collection folder unless given.
DEFAULT_CACHE_DIR = "downloads"
_AUDIO_NAME = "audio.wav"
_META_NAME = "meta.json"
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRUE = {"1", "true", "yes", "y", "t"}


# ---------------------------------------------------------------------------
# Reading and checking a manifest


def parse_time(text: str, *, what: str) -> float | None:
    """Seconds from ``"12.5"``, ``"1:02.5"`` or ``"1:02:03"``; None for an empty cell."""
    text = str(text).strip()
    if not text:
        return None
    try:
        value = 0.0
        for part in text.split(":"):
            value = value * 60.0 + float(part)
    except ValueError:
        raise DataError(f"{what}: not a time in seconds or [h:]m:s: {text!r}") from None
    if text.count(":") > 2 or not math.isfinite(value) or value < 0:
        raise DataError(f"{what}: not a time >= 0 in seconds or [h:]m:s: {text!r}")
    return value


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV as text cells (ids such as ``2014`` stay text).

    Raises :class:`DataError` naming the file when it is missing, unreadable
    or lacks the ``url`` or ``label`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the manifest ({exc})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("url", "label") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {', '.join(missing)} "
                        f"(columns: {', '.join(MANIFEST_COLUMNS)})")
    return table


def _youtube_id(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    candidate = None
    if host in {"youtu.be", "www.youtu.be"}:
        candidate = parts.path.strip("/").split("/")[0]
    elif host.endswith("youtube.com"):
        query = urllib.parse.parse_qs(parts.query)
        if "v" in query:
            candidate = query["v"][0]
        elif parts.path.startswith(("/shorts/", "/embed/", "/live/")):
            candidate = parts.path.split("/")[2]
    return candidate if candidate and _YOUTUBE_ID.match(candidate) else None


def default_event_id(url: str) -> str:
    """The event of a row without ``event_id``: the video (``yt_<id>``) or the URL's hash."""
    video = _youtube_id(url)
    if video:
        return f"yt_{video}"
    return f"url_{stable_hash(url, length=10)}"


def _ms(seconds: float | None) -> str:
    return "end" if seconds is None else str(int(round(seconds * 1000)))


def default_clip_id(event_id: str, start: float, end: float | None) -> str:
    """The clip id of a row without ``clip_id``: ``<event_id>_<start ms>_<end ms>``."""
    return f"{event_id}_{_ms(start)}_{_ms(end)}"


def cache_key(url: str, start: float, end: float | None) -> str:
    """The cache folder name of a download: a hash of URL and time range."""
    return stable_hash({"url": url, "start": round(start, 3),
                        "end": None if end is None else round(end, 3)}, length=24)


@dataclasses.dataclass
class _Row:
    """A checked manifest row."""

    line: int  # in the CSV file, header = line 1
    item: str  # how the report names it
    url: str
    start: float  # s
    end: float | None  # s; None = to the end of the media
    label: str
    event_id: str
    clip_id: str
    key: str  # the cache folder's name
    licence: str
    attribution: str
    proxy: bool | None  # None when the manifest has no proxy column
    extra: dict  # other non-empty columns, kept in the clip's params


def _check_rows(table: pd.DataFrame, *, min_duration_s: float, report: list[dict],
                ) -> list[_Row]:
    rows: list[_Row] = []
    seen_clip: dict[str, str] = {}
    seen_key: dict[str, str] = {}
    known = set(MANIFEST_COLUMNS) | {"proxy"}
    for i, cells in enumerate(table.to_dict("records")):
        cells = {k: str(v).strip() for k, v in cells.items()}
        line = i + 2  # the line in the file, after the header
        item = f"row {line}: {cells.get('url', '')}"
        try:
            url = check_url(cells["url"])
            label = validate_label(cells["label"], where="label")
            start = parse_time(cells.get("start", ""), what="start") or 0.0
            end = parse_time(cells.get("end", ""), what="end")
            if end is not None and end <= start:
                raise DataError(f"end ({end:g} s) is not after start ({start:g} s)")
            item = f"row {line}: {url} [{_fmt(start)}-{_fmt(end)} s]"
            if end is not None and too_short(end - start, min_duration_s):
                raise DataError(too_short(end - start, min_duration_s))
            event_id = cells.get("event_id") or default_event_id(url)
            check_id(event_id, what="event_id")
            clip_id = cells.get("clip_id") or default_clip_id(event_id, start, end)
            check_id(clip_id, what="clip_id")
            key = cache_key(url, start, end)
            if key in seen_key:
                raise DataError(f"same URL and time range as {seen_key[key]}")
            if clip_id in seen_clip:
                raise DataError(f"duplicate clip_id {clip_id!r} (also {seen_clip[clip_id]})")
        except DataError as exc:
            report.append({"item": item, "status": FAILED, "reason": str(exc)})
            continue
        seen_clip[clip_id] = f"row {line}"
        seen_key[key] = f"row {line}"
        rows.append(_Row(
            line=line, item=item, url=url, start=start, end=end, label=label,
            event_id=event_id, clip_id=clip_id, key=key,
            licence=cells.get("licence", ""), attribution=cells.get("attribution", ""),
            proxy=(cells["proxy"].lower() in _TRUE) if "proxy" in cells else None,
            extra={k: v for k, v in cells.items() if k not in known and v},
        ))
    return rows


# ---------------------------------------------------------------------------
# Downloading


class _NetworkFailure(Exception):
    """The host could not be reached at all: later rows of that host are not tried."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"cannot reach {host}: {reason}")
        self.host, self.reason = host, reason


class _RowFailure(Exception):
    """This row failed (unavailable video, bad range, undecodable audio)."""


def _causes(exc: BaseException):
    """The exception and everything it wraps (yt-dlp's exc_info, cause, context)."""
    stack, seen = [exc], set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        exc_info = getattr(e, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1 and \
                isinstance(exc_info[1], BaseException):
            stack.append(exc_info[1])
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            stack.append(cause)
        stack.extend([e.__cause__, e.__context__])


_NETWORK_TEXT = {
    "connection refused": r"Connection refused",
    "cannot resolve the host name: no network or no DNS":
        r"Name or service not known|Temporary failure in name resolution|getaddrinfo failed|"
        r"nodename nor servname",
    "network is unreachable": r"Network is unreachable|No route to host",
    "timed out": r"timed out",
}


def _network_reason(exc: BaseException) -> str | None:
    """A short reason when ``exc`` is a network-level failure, else None.

    HTTP errors (404, 403, 410...) are answers from a reachable host: they
    concern one row. Refused connections, unresolvable names, unreachable
    networks, time-outs and TLS failures concern the host.
    """
    from yt_dlp.networking.exceptions import HTTPError as YtHTTPError
    from yt_dlp.networking.exceptions import TransportError

    chain = list(_causes(exc))
    if any(isinstance(e, (YtHTTPError, urllib.error.HTTPError)) for e in chain):
        return None
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "cannot resolve the host name: no network or no DNS"
        if isinstance(e, (TimeoutError, socket.timeout)):
            return "timed out"
        if isinstance(e, ssl.SSLError):
            return f"TLS error ({_clean(str(e), 120)})"
        if isinstance(e, OSError) and e.errno in {101, 113}:  # ENETUNREACH, EHOSTUNREACH
            return "network is unreachable"
    text = str(exc)
    reason = next((r for r, p in _NETWORK_TEXT.items() if re.search(p, text)), None)
    if reason is None and any(isinstance(e, (TransportError, ConnectionError,
                                             urllib.error.URLError)) for e in chain):
        reason = _clean(text, 160)
    return reason


def _clean(message: str, limit: int = 300) -> str:
    message = _ANSI.sub("", message).strip()
    message = re.sub(r"^ERROR:\s*", "", message)
    return message if len(message) <= limit else message[: limit - 3] + "..."


class _YtdlpLogger:
    """Keeps yt-dlp quiet: failures come back as exceptions, one report row each."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.warnings.append(_clean(msg))

    def error(self, msg: str) -> None:
        pass


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise DataError(f"the manifest source needs the ffmpeg binary of imageio-ffmpeg "
                        f"(pip install imageio-ffmpeg): {exc}") from None


def _ytdlp_download(url: str, start: float, end: float | None, folder: Path, *,
                    socket_timeout_s: float, retries: int, log: _YtdlpLogger) -> dict:
    """Run yt-dlp for one row; the audio lands in ``folder/audio.wav``."""
    import yt_dlp
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    exe = _ffmpeg()
    opts: dict[str, Any] = {
        "format": "bestaudio/best",
        "outtmpl": {"default": os.fspath(folder / "audio.%(ext)s")},
        "noplaylist": True,
        "playlist_items": "1",
        "ffmpeg_location": exe,
        "postprocessors": [{"key": "FFmpegExtractAudio", "preferredcodec": "wav"}],
        "quiet": True,
        "noprogress": True,
        "logger": log,
        "socket_timeout": socket_timeout_s,
        "retries": retries,
        "fragment_retries": retries,
        "extractor_retries": retries,
        "overwrites": True,
    }
    if start > 0 or end is not None:
        opts["download_ranges"] = yt_dlp.utils.download_range_func(
            None, [(start, math.inf if end is None else end)])
        opts["force_keyframes_at_cuts"] = True

    def run() -> dict:
        # yt-dlp's API passes ffmpeg_location to its post-processors, but the
        # check that ffmpeg can cut a time range reads this context variable,
        # which only its command line sets; a copied context keeps it local.
        location = getattr(FFmpegPostProcessor, "_ffmpeg_location", None)
        if location is not None:
            location.set(exe)
        with yt_dlp.YoutubeDL(opts) as ydl:
            return ydl.extract_info(url, download=True)

    info = contextvars.copy_context().run(run)
    if info and info.get("_type") == "playlist":
        entries = [e for e in info.get("entries") or [] if e]
        info = entries[0] if entries else {}
    keep = ("id", "title", "uploader", "channel", "license", "webpage_url", "extractor",
            "upload_date", "duration")
    return {k: info.get(k) for k in keep if info and info.get(k) is not None}


def _read_cache(entry: Path) -> dict | None:
    """The cache entry's metadata when its audio is complete and intact, else None."""
    meta_path, audio = entry / _META_NAME, entry / _AUDIO_NAME
    if not (meta_path.is_file() and audio.is_file()):
        return None
    try:
        meta = read_json(meta_path)
    except DataError:
        return None
    if meta.get("sha256") != sha256_file(audio):
        return None
    return meta


def _fetch(row: _Row, cache_dir: Path, *, tolerance_s: float, socket_timeout_s: float,
           retries: int) -> dict:
    """Download one row into the cache; return its metadata (raises on failure)."""
    import yt_dlp

    entry = cache_dir / row.key
    partial = cache_dir / f".{row.key}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    log = _YtdlpLogger()
    try:
        try:
            info = _ytdlp_download(row.url, row.start, row.end, partial,
                                   socket_timeout_s=socket_timeout_s, retries=retries, log=log)
        except yt_dlp.utils.YoutubeDLError as exc:
            reason = _network_reason(exc)
            if reason is not None:
                raise _NetworkFailure(host_of(row.url), reason) from None
            # yt-dlp's warnings often say why (e.g. YouTube needs a JavaScript runtime).
            hint = f" (yt-dlp warned: {log.warnings[-1]})" if log.warnings else ""
            raise _RowFailure(_clean(str(exc)) + hint) from None
        audio = partial / _AUDIO_NAME
        if not audio.is_file():
            found = sorted(p.name for p in partial.iterdir())
            raise _RowFailure(f"yt-dlp produced no WAV file (found: {', '.join(found) or 'none'})")
        try:
            probe = probe_audio(audio)
        except AudioError as exc:
            raise _RowFailure(f"the downloaded audio is unusable: {exc}") from None
        if row.end is not None:
            wanted = row.end - row.start
            if abs(probe["duration_s"] - wanted) > tolerance_s:
                raise _RowFailure(
                    f"the download lasts {probe['duration_s']:.2f} s, not the {wanted:.2f} s "
                    "of the range (the range ends after the media, or the server cannot seek)")
        import yt_dlp.version

        meta = {
            "url": row.url, "start": row.start, "end": row.end,
            "sha256": sha256_file(audio), **probe, "info": info,
            "yt_dlp": yt_dlp.version.__version__, "yt_dlp_warnings": log.warnings,
        }
        with atomic_write(partial / _META_NAME, encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(partial, entry)
        return meta
    finally:
        shutil.rmtree(partial, ignore_errors=True)


# ---------------------------------------------------------------------------
# Collecting


def _fmt(seconds: float | None) -> str:
    return "end" if seconds is None else f"{seconds:.3f}".rstrip("0").rstrip(".")


def _licence(row: _Row, info: dict) -> str:
    if row.licence or info.get("license"):
        return row.licence or info["license"]
    if str(info.get("extractor", "")).startswith("youtube"):
        return "YouTube Standard License (the uploader's rights; see YouTube's Terms of Service)"
    return "unknown: check the terms of the source"


def _attribution(row: _Row, info: dict) -> str:
    where = f"{row.url} ({_fmt(row.start)}-{_fmt(row.end)} s)"
    if row.attribution:
        return row.attribution if row.url in row.attribution else f"{row.attribution}; {where}"
    who = info.get("uploader") or info.get("channel")
    title = info.get("title")
    parts = [f'"{title}"' + (f" by {who}" if who else "")] if title and info.get("extractor") \
        not in (None, "generic") else []
    return "; ".join([*parts, where])


def _check_number(value: Any, name: str, *, minimum: float, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= minimum:
        kind = "an integer" if integer else "a number"
        raise ParameterError(f"{name} must be {kind} >= {minimum:g}, got {value!r}")
    return value


def collect_rows(
    table: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    source: str,
    title: str,
    intro: str,
    own_files: tuple[str, ...] = (),
    cache_dir: str | os.PathLike | None = None,
    min_duration_s: float = BLOCK_S,
    duration_tolerance_s: float = 0.5,
    socket_timeout_s: float = 30.0,
    retries: int = 3,
    labels: list[str] | None = None,
    existing: str = "refuse",
    dry_run: bool = False,
    progress: bool = True,
) -> Collection | pd.DataFrame:
    """Collect the rows of a manifest table (shared by the manifest and AudioSet sources).

    See :func:`collect_manifest` for the parameters; ``source`` is the value of
    the clips table's ``source`` column, ``title`` and ``intro`` open the card;
    ``own_files`` are files the calling source keeps in ``out_dir`` beside the
    collection (AudioSet's ``manifest.csv``).
    """
    out_dir = Path(out_dir)
    min_duration_s = check_min_duration(min_duration_s)
    _check_number(duration_tolerance_s, "duration_tolerance_s", minimum=0)
    _check_number(socket_timeout_s, "socket_timeout_s", minimum=1)
    _check_number(retries, "retries", minimum=0, integer=True)
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / DEFAULT_CACHE_DIR
    keep = own_files + ((DEFAULT_CACHE_DIR,) if cache_dir == out_dir / DEFAULT_CACHE_DIR else ())
    open_folder(out_dir, "update" if dry_run else existing, keep=keep)
    report: list[dict] = []
    rows = _check_rows(table, min_duration_s=min_duration_s, report=report)
    check_labels({row.label for row in rows}, labels, where=f"{source} rows")

    if dry_run:
        return _dry_run_plan(rows, report, cache_dir)

    with open_collection(out_dir, existing, keep=keep) as draft:
        clips, counts, unreachable = _fetch_rows(
            rows, report, draft, cache_dir=cache_dir, source=source, progress=progress,
            min_duration_s=min_duration_s, fetch=dict(tolerance_s=duration_tolerance_s,
                                                      socket_timeout_s=socket_timeout_s,
                                                      retries=retries))
        summary = None
        if unreachable:
            hosts = ", ".join(f"{h} ({r})" for h, r in unreachable.items())
            summary = (f"network: could not reach {hosts}; {counts['network']} row(s) failed "
                       f"and {counts['skipped']} row(s) were not attempted. Check the "
                       f"connection (or proxy) and rerun the command with --update: downloads "
                       f"stay cached in {cache_dir}, so a rerun fetches only what is missing.")
        description = _description(intro, len(clips), counts,
                                   n_failed=sum(r["status"] == FAILED for r in report))
        table_out = finish_collection(
            clips, pd.DataFrame(report, columns=[*REPORT_COLUMNS, "clip_id"]), draft,
            title=title, description=description, extra_columns=("proxy",),
            empty_message=summary)
    if summary:
        logger.warning(summary)
        table_out.messages.append(summary)
    return table_out


def _fetch_rows(rows: list, report: list[dict], draft: Draft, *, cache_dir: Path, source: str,
                min_duration_s: float, fetch: dict,
                progress: bool) -> tuple[list[dict], dict[str, int], dict[str, str]]:
    """Download (or read from the cache) every row and place its clip in the draft.

    Returns
    -------
    clips : list of dict
        The clips-table rows.
    counts : dict
        Rows ``downloaded``, ``cached``, failed on the ``network``, ``skipped``.
    unreachable : dict
        Host -> why it could not be reached.
    """
    unreachable: dict[str, str] = {}
    counts = {"downloaded": 0, "cached": 0, "network": 0, "skipped": 0}
    clips = []
    root = draft.work.resolve()
    for row in tqdm(rows, desc=source, unit="clip", disable=not progress):
        entry = cache_dir / row.key
        meta = _read_cache(entry)
        how = "cached (not downloaded again)"
        if meta is None:
            host = host_of(row.url)
            if host in unreachable:
                counts["skipped"] += 1
                report.append({"item": row.item, "status": SKIPPED, "reason":
                               f"not attempted: {host} unreachable, {unreachable[host]}"})
                continue
            try:
                meta = _fetch(row, cache_dir, **fetch)
            except _NetworkFailure as exc:
                unreachable[exc.host] = exc.reason
                counts["network"] += 1
                report.append({"item": row.item, "status": FAILED, "reason": str(exc)})
                continue
            except _RowFailure as exc:
                report.append({"item": row.item, "status": FAILED, "reason": str(exc)})
                continue
            counts["downloaded"] += 1
            how = "downloaded"
        else:
            counts["cached"] += 1
        short = too_short(meta["duration_s"], min_duration_s)
        if short:
            report.append({"item": row.item, "status": FAILED, "reason": short})
            continue
        changed = changed_audio(draft.previous, row.clip_id, meta["sha256"])
        if changed:
            report.append({"item": row.item, "status": KEPT, "reason": changed,
                           "clip_id": row.clip_id})
            continue
        clips.append(_place_clip(row, meta, entry / _AUDIO_NAME, root, source))
        report.append({"item": row.item, "status": COLLECTED, "reason": how,
                       "clip_id": row.clip_id})
    return clips, counts, unreachable


def _dry_run_plan(rows: list, report: list[dict], cache_dir: Path) -> pd.DataFrame:
    """What a collection would do: each row's status, cached or to download."""
    plan = [{**r, "clip_id": "", "label": "", "url": "", "start": None, "end": None}
            for r in report]
    for row in rows:
        cached = _read_cache(cache_dir / row.key) is not None
        plan.append({"item": row.item, "status": "cached" if cached else "to download",
                     "reason": "", "clip_id": row.clip_id, "label": row.label,
                     "url": row.url, "start": row.start, "end": row.end})
    return pd.DataFrame(plan, columns=[*REPORT_COLUMNS, "clip_id", "label", "url", "start", "end"])


def _place_clip(row, meta: dict, src: Path, root: Path, source: str) -> dict:
    """Link (or copy) a downloaded range into the collection; its clips-table row."""
    dest = root / AUDIO_DIR / row.label / f"{row.clip_id}.wav"
    if not (dest.is_file() and (os.path.samefile(src, dest)
                                or sha256_file(dest) == meta["sha256"])):
        place_file(src, dest, link=True)
    info = meta.get("info") or {}
    params = {"url": row.url, "start": row.start, "end": row.end, "cache_key": row.key,
              "manifest_line": row.line, "yt_dlp": meta.get("yt_dlp"),
              **{k: info[k] for k in ("id", "title", "uploader", "webpage_url",
                                      "extractor", "license") if k in info},
              **({"extra": row.extra} if row.extra else {})}
    clip = {
        "clip_id": row.clip_id, "event_id": row.event_id, "label": row.label,
        "path": str(dest), "duration_s": round(meta["duration_s"], 6),
        "sample_rate": meta["sample_rate"], "channels": meta["channels"],
        "source": source, "seed": "", "params": json.dumps(params, sort_keys=True),
        "licence": _licence(row, info), "attribution": _attribution(row, info),
        "sha256": meta["sha256"],
    }
    if row.proxy is not None:
        clip["proxy"] = bool(row.proxy)
    return clip


def _description(intro: str, n_clips: int, counts: dict[str, int], *, n_failed: int) -> str:
    """The card's account of a downloaded collection."""
    import yt_dlp.version

    return (
        f"{intro.strip()}\n\n{n_clips} clip(s) collected ({counts['downloaded']} downloaded in "
        f"this run, {counts['cached']} from the cache), {n_failed} failed, {counts['skipped']} "
        "not attempted; `collection_report.csv` lists every row. Audio was fetched with yt-dlp "
        f"{yt_dlp.version.__version__} (audio only, only the time range) and converted to WAV "
        "by the ffmpeg binary of imageio-ffmpeg. The recordings belong to their authors: the "
        "licence and attribution columns say what the manifest or the site reported, and "
        "reuse must respect them."
    )


def collect_manifest(
    manifest: str | os.PathLike | pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    min_duration_s: float = BLOCK_S,
    duration_tolerance_s: float = 0.5,
    socket_timeout_s: float = 30.0,
    retries: int = 3,
    labels: list[str] | None = None,
    existing: str = "refuse",
    dry_run: bool = False,
    progress: bool = True,
) -> Collection | pd.DataFrame:
    """Download the clips a manifest lists and collect them.

    Parameters
    ----------
    manifest : path-like or pd.DataFrame
        CSV (or table) with the columns ``url`` and ``label`` and, optionally,
        ``start`` and ``end`` (seconds or ``[h:]m:s``; empty start = 0, empty
        end = the end of the media), ``event_id`` (default: ``yt_<video id>``
        for YouTube, else a hash of the URL), ``clip_id`` (default:
        ``<event_id>_<start ms>_<end ms>``), ``licence``, ``attribution``.
        A ``proxy`` column (true/false) is carried into the clips table.
    out_dir : path-like
        The collection folder: ``clips.csv``, ``card.md``,
        ``collection_report.csv``, ``audio/<label>/<clip_id>.wav``.
    cache_dir : path-like or None
        The download cache (default ``out_dir/downloads``); one folder per
        URL and range, named by a hash, holding ``audio.wav`` and
        ``meta.json`` (with the SHA-256). Share it between collections to
        download each range once. Collection files are hard links into it
        where the file system allows, else copies.
    min_duration_s : float >= 0 [scalar, s]
        Rows whose range (or download) is shorter are not collected; the
        default is one block (2 s).
    duration_tolerance_s : float >= 0 [scalar, s]
        A download whose duration differs from ``end - start`` by more is
        rejected (the range ran past the media's end, or the server could not
        seek).
    socket_timeout_s : float >= 1 [scalar, s]
        yt-dlp's network time-out.
    retries : int >= 0
        yt-dlp's retries per request.
    labels : list of str or None
        The classes to collect (default: the study's); a row with another
        label stops the collection before anything is fetched.
    existing : {"refuse", "update", "replace"}
        When ``out_dir`` already holds a collection: stop (default), add the
        new clips to it, or collect afresh (the download cache is kept).
    dry_run : bool
        Return what would be fetched (status ``to download`` or ``cached``,
        or ``failed`` for invalid rows) and write nothing.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Collection or pd.DataFrame
        :class:`~crowdnb.sources.Collection`: the clips table as written
        (absolute paths), the collection report, and in ``messages`` the
        network summary, if any; with ``dry_run``, the plan (a DataFrame).

    Raises
    ------
    DataError
        When the manifest is missing or malformed, or when no clip could be
        collected (with the network summary when the network was the cause;
        the report is written first).
    """
    if isinstance(manifest, pd.DataFrame):
        table = manifest.astype(str).replace({"nan": "", "None": ""})
        table.columns = [str(c).strip().lower() for c in table.columns]
        where = "a manifest table"
    else:
        table = read_manifest(manifest)
        where = f"the manifest `{Path(manifest).resolve()}`"
    out_dir = Path(out_dir)
    return collect_rows(
        table, out_dir, source="manifest",
        title=f"Collection: {out_dir.name} (manifest source)",
        intro=f"Collected by the `manifest` source from {where} ({len(table)} row(s)).",
        cache_dir=cache_dir, min_duration_s=min_duration_s,
        duration_tolerance_s=duration_tolerance_s, socket_timeout_s=socket_timeout_s,
        retries=retries, labels=labels, existing=existing, dry_run=dry_run, progress=progress)
