"""What every source shares: identifiers, audio probing, the report, the card.

A source turns its input into rows of the clips table plus one report row per
item it looked at (``item``, ``status``, ``reason``); :func:`finish_collection`
writes ``clips.csv``, ``card.md`` and ``collection_report.csv`` together.

A source writes nothing into the collection folder itself: inside
:func:`open_collection` it writes a :class:`Draft` (a hidden sibling folder),
which :func:`finish_collection` renames into place once it is complete. A full
disk, an interruption or any other failure removes the draft and leaves the
folder as it was, with one line naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

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

    Raises
    ------
    OSError
        When ``dst`` cannot be written; its ``filename`` is ``dst`` (not the
        temporary name the copy was written to).
    """
    with naming(dst), atomic_path(dst) as tmp:
        if link:
            try:
                os.link(src, tmp)
                return
            except OSError:
                pass
        shutil.copy2(src, tmp)


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """Give an :class:`OSError` raised inside the name of the file being written.

    A write that fails on a full disk raises without a file name, with the
    temporary name beside ``path`` that the data was going to, or (a copy)
    with the name of the file copied: the error names ``path`` instead. An
    error reading another file (a source that cannot be read) is left as it is.
    """
    try:
        yield
    except OSError as exc:
        beside = [Path(name).parent == Path(path).parent
                  for name in (exc.filename, exc.filename2) if name is not None]
        if beside and not any(beside) and exc.errno not in _WRITE_ERRORS:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(path)) from exc


#: Errors that only a write raises: the file written is the one to name.
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


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
        :func:`finish_collection` with the table returned here); or collect
        afresh (its clips table, card, report and audio are replaced when
        the new collection is complete: :func:`open_collection`).
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
        holds other files (two collections never share a folder), or the
        remains of a collection without its clips table and ``existing`` is
        not ``"replace"``.
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
        _check_remains(out_dir, others, existing)
        return None
    if existing == "refuse":
        n = len(read_clips(out_dir))
        raise DataError(f"{out_dir}: already holds a collection ({n} clips); nothing was "
                        "changed. Pass --update to add the new clips to it (existing clips are "
                        "kept), or --replace to delete it and collect afresh")
    return read_clips(out_dir) if existing == "update" else None


def _check_remains(out_dir: Path, others: list[str], existing: str) -> None:
    """A folder without a clips table: a collection's remains (``replace`` may go on), or not."""
    listed = f"{', '.join(others[:4])}{', ...' if len(others) > 4 else ''}"
    if not set(others) <= set(_ENTRIES):
        raise DataError(f"{out_dir}: not empty and not a collection (it holds {listed}); "
                        "collect into a new or empty folder")
    if existing != "replace":
        # an older version could leave these after a failure part way
        raise DataError(f"{out_dir}: holds the remains of a collection without its clips "
                        f"table ({listed}); pass --replace to collect afresh")


#: The entries of a collection folder (besides a source's own cache).
_ENTRIES = (CLIPS_FILE, CARD_FILE, REPORT_FILE, AUDIO_DIR)


class Draft:
    """A collection being written beside its folder, renamed into it when complete.

    Attributes
    ----------
    folder : Path
        The collection folder.
    work : Path
        The hidden sibling of ``folder`` that the source writes (``audio/``,
        the tables) instead of ``folder``.
    previous : pd.DataFrame or None
        The collection an update adds to (:func:`open_folder`), its audio
        linked into ``work`` and its paths pointing there; None otherwise.
    """

    def __init__(self, folder: Path, work: Path, previous: pd.DataFrame | None = None):
        self.folder, self.work, self.previous = folder, work, previous

    def final(self, path: str | os.PathLike) -> Path:
        """Where a file of ``work`` will be once the draft is in place."""
        path = Path(path)
        try:
            return self.folder / path.relative_to(self.work)
        except ValueError:
            return path

    def install(self) -> None:
        """Replace the collection entries of ``folder`` by those of ``work``.

        The folder's old entries are moved aside first and put back if a
        rename fails, so the folder holds one whole collection at every moment
        but a few renames; its other entries (a source's cache) stay.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=".replaced-", dir=self.folder))
        moved_aside, moved_in = [], []
        try:
            for name in _ENTRIES:
                if os.path.lexists(self.folder / name):
                    os.replace(self.folder / name, aside / name)
                    moved_aside.append(name)
            for name in _ENTRIES:
                if os.path.lexists(self.work / name):
                    moved_in.append(name)  # before the move: one that fails half way is undone
                    shutil.move(self.work / name, self.folder / name)
        except OSError:
            for name in moved_in:
                _remove(self.folder / name)
            for name in moved_aside:
                os.replace(aside / name, self.folder / name)
            raise
        finally:
            shutil.rmtree(aside, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _carry_over(previous: pd.DataFrame | None, folder: Path, work: Path) -> pd.DataFrame | None:
    """Link an updated collection's audio into the draft; its table, with paths there."""
    if previous is None:
        return None
    audio = folder / AUDIO_DIR
    for path in sorted(audio.rglob("*")) if audio.is_dir() else []:
        if path.is_file():
            place_file(path, work / path.relative_to(folder), link=True)
    root, target = folder.resolve(), work.resolve()
    previous = previous.copy()
    previous["path"] = [str(target / Path(p).relative_to(root))
                        if Path(p).is_relative_to(root / AUDIO_DIR) else p
                        for p in previous["path"]]
    return previous


@contextlib.contextmanager
def open_collection(out_dir: str | os.PathLike, existing: str = "refuse", *,
                    keep: tuple[str, ...] = ()) -> Iterator[Draft]:
    """Check ``out_dir`` (:func:`open_folder`) and yield the draft a source writes.

    The source writes its audio under ``draft.work`` and ends with
    :func:`finish_collection`, which puts the draft in place. When the body
    raises, the draft is removed and ``out_dir`` is as it was; an
    :class:`OSError` (a full disk, a file that cannot be read) becomes one
    :class:`DataError` naming the file and the reason.

    Parameters
    ----------
    out_dir, existing, keep
        As for :func:`open_folder`.

    Yields
    ------
    Draft
    """
    import soundfile

    out_dir = Path(out_dir)
    previous = open_folder(out_dir, existing, keep=keep)
    draft = Draft(out_dir, out_dir)
    had_collection = (out_dir / CLIPS_FILE).is_file()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        draft.work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-",
                                           dir=out_dir.parent))
        try:
            draft.previous = _carry_over(previous, out_dir, draft.work)
            yield draft
        finally:
            shutil.rmtree(draft.work, ignore_errors=True)
    except (OSError, soundfile.SoundFileError) as exc:
        state = (f"the collection in {out_dir} was left as it was" if had_collection
                 else f"nothing was collected into {out_dir}")
        raise DataError(f"{_failure(exc, draft)}; {state}") from None


def _failure(exc: Exception, draft: Draft) -> str:
    """The file and the system's reason of a failed read or write."""
    if isinstance(exc, OSError):
        where = draft.final(exc.filename) if exc.filename else draft.folder
        return f"{where}: {exc.strerror or exc}"
    return str(exc)  # soundfile's messages name the file themselves


def changed_audio(previous: pd.DataFrame | None, clip_id: str, sha256: str) -> str:
    """The report's reason when an update finds other audio for a clip it holds ("" if not).

    The collection's copy is kept (an update never replaces a clip), and the
    reason says so and how to take the source's audio instead.
    """
    if previous is None:
        return ""
    before = previous.loc[previous["clip_id"] == clip_id, "sha256"]
    if before.empty or str(before.iloc[0]) == sha256:
        return ""
    return (f"changed: other audio than the collection's clip {clip_id} (sha256 "
            f"{str(before.iloc[0])[:12]} -> {sha256[:12]}); the collection's copy was kept "
            "(--replace collects afresh)")


def report_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def finish_collection(
    rows: list[dict],
    report: pd.DataFrame,
    draft: Draft,
    *,
    title: str,
    description: str,
    extra_columns: tuple[str, ...] = (),
    empty_message: str | None = None,
) -> Collection:
    """Write the report, the clips table and the card, put the draft in place, read it back.

    The report is written first and always, so that a run that collected
    nothing still says why. With no clip collected, :class:`DataError` is
    raised after the report is put in place (an empty collection would only
    fail later, in preprocessing, with a less useful message); its message is
    ``empty_message`` when given, else the first reasons.

    ``draft.previous`` is the collection an update adds to: its clips that
    this run did not collect again are kept (reported ``kept``); a clip whose
    source has other audio now is kept as it was, and ``messages`` names it.
    """
    out_dir, work = draft.folder, draft.work
    messages = []
    if draft.previous is not None:
        rows, report = _merge(draft.previous, rows, report)
        messages = _changed_message(report, out_dir)
    report = report[REPORT_COLUMNS].reset_index(drop=True)
    with naming(out_dir / REPORT_FILE):
        write_table(work / REPORT_FILE, report)
    failures = report[~report["status"].isin([COLLECTED, KEPT])]
    if not rows:
        draft.install()
        raise DataError(_nothing_collected(out_dir, failures, empty_message))
    table = pd.DataFrame(rows)
    for column in CLIP_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table = table[CLIP_COLUMNS + [c for c in extra_columns if c in table.columns]]
    with naming(out_dir / CLIPS_FILE):
        write_clips(table, work)
    with naming(out_dir / CARD_FILE):
        write_card(table, work, title=title, description=description,
                   failures=failures[["item", "reason"]])
    draft.install()
    logger.info("collected %d clip(s) into %s; %d item(s) not collected (see %s)",
                len(table), out_dir, len(failures), REPORT_FILE)
    for message in messages:
        logger.warning("%s", message)
    return Collection(clips=read_clips(out_dir), folder=out_dir, report=report,
                      messages=messages)


def _nothing_collected(out_dir: Path, failures: pd.DataFrame, empty_message: str | None) -> str:
    """Why a collection is empty: the source's own summary, or the first reasons."""
    if empty_message:
        return (f"{out_dir}: no clip was collected. {empty_message} "
                f"The full list is in {out_dir / REPORT_FILE}")
    if failures.empty:
        return (f"{out_dir}: no clip was collected: the input holds no item (no audio "
                f"file, no row). The report is in {out_dir / REPORT_FILE}")
    reasons = "; ".join(f"{r.item}: {r.reason}" for r in failures.head(3).itertuples())
    more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
    return (f"{out_dir}: no clip was collected; {reasons}{more}. "
            f"The full list is in {out_dir / REPORT_FILE}")


def _merge(previous: pd.DataFrame, rows: list[dict],
           report: pd.DataFrame) -> tuple[list[dict], pd.DataFrame]:
    """An update: the previous clips not collected again, then this run's.

    A clip whose audio changed in the source is among the previous ones
    (the source reported it ``kept``, with the reason, under its own item).
    """
    new = {row["clip_id"] for row in rows}
    reported = set(report.loc[report["status"].eq(KEPT), "clip_id"]) \
        if "clip_id" in report.columns else set()
    kept_rows = previous[~previous["clip_id"].isin(list(new))].to_dict("records")
    kept = pd.DataFrame([{"item": r["clip_id"], "status": KEPT,
                          "reason": "in the collection before this update"}
                         for r in kept_rows if r["clip_id"] not in reported],
                        columns=REPORT_COLUMNS)
    return kept_rows + rows, pd.concat([kept, report], ignore_index=True)


def _changed_message(report: pd.DataFrame, out_dir: Path) -> list[str]:
    """One line naming the clips an update kept although their source's audio changed."""
    if "clip_id" not in report.columns:
        return []
    changed = report[report["status"].eq(KEPT)
                     & report["reason"].astype(str).str.startswith("changed:")]
    if changed.empty:
        return []
    ids = ", ".join(changed["clip_id"].astype(str))
    return [f"{out_dir}: {len(changed)} clip(s) differ from their source and were kept as the "
            f"collection had them: {ids}; collect with --replace to take the source's audio "
            f"(see {REPORT_FILE})"]


__all__ = [
    "Collection", "EXISTING", "STUDY_LABELS", "KEPT", "open_folder", "check_labels", "REPORT_FILE", "REPORT_COLUMNS", "COLLECTED", "FAILED", "SKIPPED", "AUDIO_DIR", "BLOCK_S",
    "ID_PATTERN", "safe_id", "check_id", "check_url", "host_of", "strip_path", "probe_audio",
    "too_short", "check_min_duration", "clipping_note", "place_file", "report_frame", "finish_collection",
    "logger", "Draft", "open_collection", "changed_audio", "naming",
]
