"""The ``folder`` source: a researcher's own recordings.

Two ways to say which file has which label:

* a directory with one sub-folder per label (``joy/``, ``anger/``,
  ``neutral/`` or any other valid label); files may sit in deeper folders,
  whose first level names the event (``joy/derby_2019/a.wav``);
* a CSV file with the columns ``path`` and ``label`` and, optionally,
  ``clip_id``, ``event_id``, ``licence`` and ``attribution``; paths are
  relative to the CSV's folder (the data directory) and may not leave it.

A label map (``label_map``, see :mod:`crowdnb.sources.labels`) lets a corpus
keep its own names: ``approval=joy`` renames a label folder (or a CSV label),
``app*=joy`` labels the files whose name starts with ``app``, wherever they
are (a flat folder of ``appn0011.wav``, ``disn0003.wav``, ...).

Any format :func:`crowdnb.audio.load_clip` reads is accepted, at any sample
rate and channel count. The files are copied into the collection
(``audio/<label>/<clip_id><ext>``, unchanged bytes) unless ``copy=False``, in
which case the clips table references them by absolute path. Files that
cannot be used are listed in ``collection_report.csv`` with the reason.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..clips import validate_label
from ..errors import AudioError, DataError, ParameterError
from ..files import sha256_file
from ._common import (
    AUDIO_DIR, BLOCK_S, COLLECTED, FAILED, KEPT, REPORT_COLUMNS, SKIPPED, Collection, Draft,
    changed_audio, check_id, check_labels, check_min_duration, clipping_note, finish_collection,
    logger, open_collection, open_folder, place_file, probe_audio, safe_id, strip_path,
    too_short,
)
from .labels import LabelMap, parse_label_map

__all__ = ["collect_folder", "FOLDER_CSV_COLUMNS"]

#: Columns of a folder CSV: the first two are required.
FOLDER_CSV_COLUMNS = ["path", "label", "clip_id", "event_id", "licence", "attribution"]


class _Candidate:
    """One file to look at, with the identifiers the table will give it."""

    __slots__ = ("item", "path", "rel", "label", "clip_id", "event_id", "licence",
                 "attribution", "id_given", "mapped_by")

    def __init__(self, item, path, rel, label, clip_id, event_id, licence, attribution,
                 id_given, mapped_by=""):
        self.item, self.path, self.rel, self.label = item, path, rel, label
        self.clip_id, self.event_id = clip_id, event_id
        self.licence, self.attribution, self.id_given = licence, attribution, id_given
        self.mapped_by = mapped_by  # the label_map entry that gave the label, if any


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder``: the collection, when written inside its input."""
    path = Path(os.path.realpath(path))  # unlike resolve(), never raises on a symlink loop
    return path == folder or folder in path.parents


def _link_problem(path: Path) -> str:
    """Why a symbolic link leads to no file ("" when ``path`` is not such a link)."""
    if not path.is_symlink() or path.exists():
        return ""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop ({exc.strerror}): it leads to no file"
        return f"broken symbolic link: its target {os.readlink(path)} does not exist"
    return ""


def _not_followed(path: Path) -> str:
    """Why a link to a folder inside a label folder is left out ("" for anything else).

    Its files are not collected (a link back up the tree would collect them
    again and again); the report names it, so that nothing is left out unsaid.
    """
    if path.is_symlink() and path.is_dir():
        return (f"symbolic link to a folder ({os.readlink(path)}): not followed, its files "
                f"were not collected (link the files themselves, or copy the folder in)")
    return ""


def _by_prefix(root: Path, path: Path, label: str, entry: str) -> _Candidate:
    """A file labelled by the start of its name: it is its own event, wherever it lies."""
    rel = path.relative_to(root)
    return _Candidate(item=rel.as_posix(), path=path, rel=rel, label=label,
                      clip_id=safe_id("_".join(rel.with_suffix("").parts)),
                      event_id=safe_id(f"{label}_{path.stem}"), licence="", attribution="",
                      id_given=False, mapped_by=entry)


def _scan_directory(root: Path, report: list[dict], *, exclude: Path,
                    label_map: LabelMap) -> list[_Candidate]:
    """The files of a folder tree and their labels.

    A file's label: its label folder's entry in ``label_map``, else the entry
    of a prefix its name starts with, else the label folder's own name.
    """
    candidates = []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        if _inside(child, exclude):
            continue
        problem = _link_problem(child)
        if problem:
            report.append({"item": child.name, "status": SKIPPED, "reason": problem})
            continue
        if child.is_file():
            hit = label_map.by_prefix(child.name)
            if hit is not None:
                candidates.append(_by_prefix(root, child, *hit))
                continue
            reason = "not inside a label sub-folder"
            if label_map.prefixes:
                reason += (f", and its name starts with no prefix of label_map "
                           f"({label_map.prefix_text()})")
            report.append({"item": child.name, "status": SKIPPED, "reason": reason})
            continue
        files = []
        for path in sorted(child.rglob("*")):
            if _hidden(path.relative_to(root)) or _inside(path, exclude):
                continue
            if path.is_file():
                files.append(path)
            elif problem := _link_problem(path) or _not_followed(path):
                report.append({"item": path.relative_to(root).as_posix(), "status": SKIPPED,
                               "reason": problem})
        mapped = label_map.by_name(child.name)
        if mapped is None:
            named = []
            for path in files:
                hit = label_map.by_prefix(path.name)
                if hit is None:
                    named.append(path)
                else:
                    candidates.append(_by_prefix(root, path, *hit))
            files = named
            if not files:
                continue
            try:
                label = validate_label(child.name, where=f"sub-folder {child.name!r}")
            except DataError as exc:
                report.append({"item": f"{child.name}/", "status": FAILED,
                               "reason": f"{exc}; its {len(files)} file(s) were not collected"})
                continue
            entry = ""
        else:
            label, entry = mapped
        for path in files:
            rel = path.relative_to(root)
            inner = rel.parts[1:]
            # joy/derby_2019/a.wav: the sub-folder is the event; joy/a.wav: the file is.
            event = safe_id(inner[0]) if len(inner) > 1 else safe_id(f"{label}_{path.stem}")
            candidates.append(_Candidate(
                item=rel.as_posix(), path=path, rel=rel, label=label,
                clip_id=safe_id("_".join(rel.with_suffix("").parts)), event_id=event,
                licence="", attribution="", id_given=False, mapped_by=entry))
    return candidates


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the CSV ({exc})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    return table


def _scan_csv(csv_path: Path, data_dir: Path, report: list[dict], *,
              label_map: LabelMap) -> list[_Candidate]:
    table = _read_csv(csv_path)
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise DataError(f"{csv_path}: folder CSV lacks column(s) {', '.join(missing)} "
                        f"(columns: {', '.join(FOLDER_CSV_COLUMNS)})")
    root = Path(os.path.abspath(data_dir))
    candidates = []
    for i, row in enumerate(table.to_dict("records")):
        text = row["path"].strip()
        item = f"row {i + 2}: {text}"  # line number in the file, after the header

        def fail(reason: str) -> None:
            report.append({"item": item, "status": FAILED, "reason": reason})

        if not text:
            fail("empty path")
            continue
        # The label cell, renamed by the map; a prefix entry labels the rows without one.
        cell = row["label"].strip()
        mapped = label_map.by_name(cell) if cell else label_map.by_prefix(Path(text).name)
        try:
            label = validate_label(mapped[0] if mapped else cell, where="label")
        except DataError as exc:
            fail(str(exc))
            continue
        # Lexical check, before touching the file system: a CSV names files
        # inside the data directory, nothing else.
        target = Path(os.path.normpath(root / text))
        if os.path.commonpath([root, target]) != str(root) or target == root:
            fail(f"path escapes the data directory {root}")
            continue
        rel = target.relative_to(root)
        given_clip = row.get("clip_id", "").strip()
        given_event = row.get("event_id", "").strip()
        try:
            clip_id = check_id(given_clip, what="clip_id") if given_clip else \
                safe_id("_".join(rel.with_suffix("").parts))
            event_id = check_id(given_event, what="event_id") if given_event else \
                safe_id("_".join(rel.with_suffix("").parts))
        except DataError as exc:
            fail(str(exc))
            continue
        candidates.append(_Candidate(
            item=item, path=target, rel=rel, label=label, clip_id=clip_id, event_id=event_id,
            licence=row.get("licence", "").strip(), attribution=row.get("attribution", "").strip(),
            id_given=bool(given_clip), mapped_by=mapped[1] if mapped else ""))
    return candidates


def _candidates(input_path: Path, data_dir, out_dir: Path, report: list[dict], *,
                label_map: LabelMap) -> tuple[list, str]:
    """The files a folder tree or a CSV list names, and how the card describes the input."""
    if input_path.is_dir():
        if data_dir is not None:
            raise ParameterError("data_dir: only used with a CSV input (a directory input "
                                 "is its own data directory)")
        candidates = _scan_directory(input_path, report, exclude=out_dir.resolve(),
                                     label_map=label_map)
        how = "its folder and file names, through the label map" if label_map \
            else "one sub-folder per label"
        return candidates, f"the folder tree `{input_path.resolve()}` ({how})"
    if input_path.is_file():
        root = Path(data_dir) if data_dir is not None else input_path.parent
        candidates = _scan_csv(input_path, root, report, label_map=label_map)
        return candidates, (f"the CSV list `{input_path.resolve()}` "
                            f"(files under `{root.resolve()}`)")
    raise DataError(f"{input_path}: folder source input not found (a directory with one "
                    "sub-folder per label, or a CSV with path and label columns)")


def _clip_row(cand, meta: dict, sha: str, out_dir: Path, *, copy: bool, licence, attribution) -> dict:
    """Copy a file into the collection (or keep its path); its clips-table row."""
    if copy:
        dest = out_dir.resolve() / AUDIO_DIR / cand.label / \
            f"{cand.clip_id}{cand.path.suffix.lower()}"
        if not (dest.is_file() and sha256_file(dest) == sha):
            place_file(cand.path, dest, link=False)
    else:
        dest = cand.path.resolve()
    return {
        "clip_id": cand.clip_id, "event_id": cand.event_id, "label": cand.label,
        "path": str(dest), "duration_s": round(meta["duration_s"], 6),
        "sample_rate": meta["sample_rate"], "channels": meta["channels"],
        "source": "folder", "seed": "",
        "params": json.dumps({"original": str(cand.path.resolve()),
                              "format": meta["format"], "copied": bool(copy),
                              **({"label_map": cand.mapped_by} if cand.mapped_by else {})},
                             sort_keys=True),
        "licence": cand.licence or licence or "unspecified",
        "attribution": cand.attribution or attribution or cand.rel.as_posix(),
        "sha256": sha,
    }


def collect_folder(
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    copy: bool = True,
    min_duration_s: float = BLOCK_S,
    data_dir: str | os.PathLike | None = None,
    licence: str = "",
    attribution: str = "",
    labels: list[str] | None = None,
    label_map: dict[str, str] | list[str] | str | None = None,
    existing: str = "refuse",
    dry_run: bool = False,
    progress: bool = True,
) -> Collection | pd.DataFrame:
    """Collect labelled recordings from a folder tree or a CSV list.

    Parameters
    ----------
    input_path : path-like
        A directory with one sub-folder per label, or a CSV file with the
        columns ``path``, ``label`` [, ``clip_id``, ``event_id``, ``licence``,
        ``attribution``].
    out_dir : path-like
        The collection folder: ``clips.csv``, ``card.md``,
        ``collection_report.csv`` and (with ``copy``) ``audio/``.
    copy : bool
        Copy the files into ``out_dir/audio/<label>/`` (the default: the
        collection is a self-contained snapshot whose checksums stay true).
        With ``False`` the table references the original files by absolute
        path. The original files are never modified either way.
    min_duration_s : float >= 0 [scalar, s]
        Clips shorter than this are not collected (reason "shorter than one
        block (2 s)"); the default is the paper's block length, below which a
        clip yields no block. 0 collects everything readable.
    data_dir : path-like or None
        For a CSV: the folder its paths are relative to and may not leave
        (default: the CSV's folder).
    licence, attribution : str
        Recorded for files whose CSV row gives none (default licence:
        ``"unspecified"``; default attribution: the file's path in the input).
    labels : list of str or None
        The classes to collect; a label outside them stops the collection
        before anything is written, and the message lists what was found.
        Default: the study's (joy, anger, neutral, goal, no_goal). Checked
        after ``label_map``.
    label_map : dict, list of str, str or None
        The corpus's own names -> labels (see :func:`~crowdnb.sources.labels.parse_label_map`):
        ``{"approval": "joy"}`` (or ``["approval=joy"]``) renames a label
        folder, or a CSV's label; ``{"app*": "joy"}`` labels every file whose
        name starts with ``app`` (regardless of case), wherever it lies, as its
        own event. A label folder the map names takes its label from the map;
        other files take the label of the longest prefix their name starts
        with, else the name of their label folder. In a CSV, prefixes label
        the rows whose ``label`` cell is empty. The label each clip got from
        the map is in its ``params``; the card lists the map and the entries
        that matched nothing.
    existing : {"refuse", "update", "replace"}
        When ``out_dir`` already holds a collection: stop (default), add the
        new clips to it, or collect afresh (see :func:`open_folder`).
    dry_run : bool
        Check everything and return the plan, but write nothing.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Collection or pd.DataFrame
        The collection (its clips table as written, absolute paths, and its
        report). With ``dry_run``: the report with the ``label``,
        ``clip_id`` and ``event_id`` each file would get.

    Raises
    ------
    DataError
        When the input is missing or its CSV malformed, or when no file could
        be collected (the report is written first).
    """
    input_path, out_dir = Path(input_path), Path(out_dir)
    min_duration_s = check_min_duration(min_duration_s)
    open_folder(out_dir, "update" if dry_run else existing)  # refused before reading the input
    mapping = parse_label_map(label_map)
    report: list[dict] = []
    candidates, described = _candidates(input_path, data_dir, out_dir, report, label_map=mapping)
    check_labels({c.label for c in candidates}, labels, where=str(input_path))
    if dry_run:
        _examine(candidates, report, min_duration_s=min_duration_s, progress=progress)
        return pd.DataFrame(report, columns=[*REPORT_COLUMNS, "label", "clip_id", "event_id"]
                            ).fillna("")
    with open_collection(out_dir, existing) as draft:
        usable = _examine(candidates, report, min_duration_s=min_duration_s, progress=progress)
        rows = _place(usable, draft, copy=copy, licence=licence, attribution=attribution)
        n_failed = sum(r["status"] == FAILED for r in report)
        description = (
            f"Collected from {described} by the `folder` source. "
            + ("The files were copied unchanged into `audio/<label>/`. " if copy else
               "The clips table references the original files by absolute path (`copy=False`); "
               "moving or editing them invalidates the checksums below. ")
            + _map_text(mapping, candidates)
            + f"Clips shorter than {min_duration_s:g} s were not collected. "
            + f"{n_failed} file(s) could not be used; `collection_report.csv` lists every file "
              "and what happened to it."
        )
        return finish_collection(rows, pd.DataFrame(report, columns=[*REPORT_COLUMNS, "clip_id"]),
                                 draft, title=f"Collection: {out_dir.name} (folder source)",
                                 description=description)


def _examine(candidates: list[_Candidate], report: list[dict], *, min_duration_s: float,
             progress: bool) -> list[tuple[_Candidate, dict, str, dict]]:
    """Probe every candidate file and report it; the usable ones.

    Returns
    -------
    list of (candidate, audio description, sha256, its report row)
        The files to collect (reported ``collected``), in input order.
    """
    # Default ids are unique per path, but joy/a.wav and joy/a.flac would share one.
    seen_ids: dict[str, str] = {}
    by_sha: dict[str, str] = {}
    usable = []
    for cand in tqdm(candidates, desc="folder", unit="file", disable=not progress):
        def record(status: str, reason: str, cand=cand) -> dict:
            report.append({"item": cand.item, "status": status, "reason": reason,
                           "label": cand.label, "clip_id": cand.clip_id,
                           "event_id": cand.event_id})
            return report[-1]

        if cand.clip_id in seen_ids:
            if cand.id_given:
                record(FAILED, f"duplicate clip_id {cand.clip_id!r} "
                               f"(also {seen_ids[cand.clip_id]})")
                continue
            n = 2
            while f"{cand.clip_id}_{n}" in seen_ids:
                n += 1
            cand.clip_id = f"{cand.clip_id}_{n}"
        if not cand.path.is_file():
            record(FAILED, _link_problem(cand.path) or "file not found")
            continue
        try:
            meta = probe_audio(cand.path)
        except AudioError as exc:
            record(FAILED, strip_path(str(exc), cand.path))
            continue
        short = too_short(meta["duration_s"], min_duration_s)
        if short:
            record(FAILED, short)
            continue
        sha = sha256_file(cand.path)
        if sha in by_sha:
            record(FAILED, f"same audio as {by_sha[sha]} (identical SHA-256)")
            continue
        by_sha[sha] = cand.item
        seen_ids[cand.clip_id] = cand.item
        note = clipping_note(meta)
        if note:
            logger.warning("%s: %s", cand.item, note)
        usable.append((cand, meta, sha, record(COLLECTED, note)))
    return usable


def _place(usable: list, draft: Draft, *, copy: bool, licence: str,
           attribution: str) -> list[dict]:
    """Copy the usable files into the draft; their clips-table rows.

    An update keeps the collection's copy of a clip whose file now holds
    other audio: the file is reported ``kept``, with both checksums.
    """
    rows = []
    for cand, meta, sha, entry in usable:
        changed = changed_audio(draft.previous, cand.clip_id, sha)
        if changed:
            entry.update(status=KEPT, reason=changed)
            continue
        rows.append(_clip_row(cand, meta, sha, draft.work, copy=copy, licence=licence,
                              attribution=attribution))
    return rows


def _map_text(mapping: LabelMap, candidates: list[_Candidate]) -> str:
    """The card's account of the label map: each entry, and those that matched nothing."""
    if not mapping:
        return ""
    used = {c.mapped_by for c in candidates}
    counts = [f"`{entry}` ({sum(c.mapped_by == entry for c in candidates)} file(s))"
              for entry in mapping.entries]
    unused = [f"`{entry}`" for entry in mapping.entries if entry not in used]
    return (f"Labels were given by the label map {', '.join(counts)}; the other files kept "
            "the name of their label folder (or their CSV label). "
            + (f"Entries that matched nothing: {', '.join(unused)}. " if unused else ""))
