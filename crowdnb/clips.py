"""The clips table: the one format every data source produces.

A *collection* is a folder with a ``clips.csv`` table, the audio files it
names and a dataset card (``card.md``). The synthesizer, a folder of the
user's recordings, a manifest of online clips and AudioSet all write the same
table, so preprocessing cannot tell them apart.

Columns (see :data:`CLIP_COLUMNS`):

``clip_id``      unique, file-name safe identifier of the clip
``event_id``     the recording event (venue, match, demonstration) it comes from;
                 clips of one event share its acoustic signature
``label``        the class: ``joy``, ``anger``, ``neutral``, ``goal``, ``no_goal`` or
                 any other lower-case name
``path``         the audio file, relative to the folder holding ``clips.csv``
``duration_s``   duration in seconds
``sample_rate``  the file's sample rate in Hz
``channels``     the file's channel count
``source``       ``synthetic``, ``folder``, ``manifest`` or ``audioset``
``seed``         the seed that generated it (synthetic clips; empty otherwise)
``params``       JSON text: the generator parameters, or the manifest row
``licence``      licence of the recording
``attribution``  who made it, where it came from (URL and time range for online clips)
``sha256``       checksum of the audio file
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from .errors import DataError
from .files import atomic_write, read_table, write_table

__all__ = [
    "CLIP_COLUMNS",
    "LABEL_PATTERN",
    "ID_PATTERN",
    "CLIPS_FILE",
    "CARD_FILE",
    "validate_label",
    "check_clips",
    "write_clips",
    "read_clips",
    "write_card",
    "markdown_table",
]

CLIP_COLUMNS = [
    "clip_id",
    "event_id",
    "label",
    "path",
    "duration_s",
    "sample_rate",
    "channels",
    "source",
    "seed",
    "params",
    "licence",
    "attribution",
    "sha256",
]
CLIPS_FILE = "clips.csv"
CARD_FILE = "card.md"
LABEL_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def validate_label(label: str, *, where: str = "label") -> str:
    """Return ``label`` if it is a valid class name, else raise :class:`DataError`.

    A label is lower-case ASCII letters, digits and underscores, starting with a
    letter: it becomes a folder name and a column header, never a path.
    """
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise DataError(
            f"{where}: invalid label {label!r} (use lower-case letters, digits and '_', "
            "starting with a letter)"
        )
    return label


def check_clips(
    table: pd.DataFrame, *, where: str, required: Sequence[str] = tuple(CLIP_COLUMNS)
) -> None:
    """Raise :class:`DataError` (naming ``where``) unless ``table`` is a valid clips table.

    Checks the ``required`` columns, that ``clip_id`` is unique, that clip and
    event ids are file-name safe (they become file and folder names) and that
    every label is valid.
    """
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{where}: clips table lacks column(s) {', '.join(missing)}")
    dup = table["clip_id"][table["clip_id"].duplicated()].tolist()
    if dup:
        raise DataError(f"{where}: duplicate clip_id(s) {', '.join(map(str, dup[:5]))}")
    for column in ("clip_id", "event_id"):
        for value in table[column]:
            if not isinstance(value, str) or not ID_PATTERN.match(value):
                raise DataError(
                    f"{where}: invalid {column} {value!r} (letters, digits, '_', '-', '.')"
                )
    for label in table["label"]:
        validate_label(label, where=where)


def write_clips(table: pd.DataFrame, folder: str | os.PathLike) -> Path:
    """Validate a clips table and write it atomically to ``folder/clips.csv``.

    Paths inside ``folder`` are stored relative to it, so a collection can be
    moved or archived as a whole.
    """
    folder = Path(folder)
    table = table.copy()
    for column in CLIP_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    check_clips(table, where=str(folder / CLIPS_FILE))
    root = folder.resolve()

    def relative(p: str) -> str:
        path = Path(p)
        if path.is_absolute():
            try:
                return path.resolve().relative_to(root).as_posix()
            except ValueError:
                return str(path)
        return path.as_posix()

    table["path"] = table["path"].map(relative)
    extra = [c for c in table.columns if c not in CLIP_COLUMNS]
    return write_table(folder / CLIPS_FILE, table[CLIP_COLUMNS + extra])


def read_clips(path: str | os.PathLike) -> pd.DataFrame:
    """Read a clips table (the file, or the folder holding ``clips.csv``).

    Returns the table with ``path`` resolved to absolute paths and the column
    types fixed. Raises :class:`DataError` naming the file when the table is
    missing, lacks columns, repeats a ``clip_id`` or holds an invalid label or
    a path that escapes the collection's folder.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CLIPS_FILE
    table = read_table(path, required=CLIP_COLUMNS, what="clips table")
    for column in ("clip_id", "event_id", "label", "path", "source", "params", "licence",
                   "attribution", "sha256"):
        # A column left blank throughout is read as float NaN: make it text first.
        table[column] = table[column].astype(object).where(table[column].notna(), "").astype(str)
    check_clips(table, where=str(path))
    root = path.parent.resolve()
    resolved = []
    for p in table["path"]:
        candidate = Path(p)
        if not candidate.is_absolute():
            candidate = (root / candidate).resolve()
            if root != candidate and root not in candidate.parents:
                raise DataError(f"{path}: clip path {p!r} escapes the collection folder")
        resolved.append(str(candidate))
    table["path"] = resolved
    table["duration_s"] = pd.to_numeric(table["duration_s"], errors="coerce")
    table["sample_rate"] = pd.to_numeric(table["sample_rate"], errors="coerce")
    return table


def markdown_table(frame: pd.DataFrame) -> str:
    """A table as Markdown (pipes), one row per line; cells as ``str()`` gives them."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def write_card(
    table: pd.DataFrame,
    folder: str | os.PathLike,
    *,
    title: str,
    description: str = "",
    failures: pd.DataFrame | None = None,
) -> Path:
    """Write the dataset card ``folder/card.md`` for a clips table.

    The card lists the sources, counts and durations per class and per event,
    licences and attributions, what failed and why (``failures``: a table with
    at least ``item`` and ``reason`` columns), and every file's checksum.
    """
    folder = Path(folder)
    per_class = (
        table.groupby("label")
        .agg(clips=("clip_id", "count"), events=("event_id", "nunique"),
             duration_s=("duration_s", "sum"))
        .reset_index()
    )
    per_class["duration_s"] = per_class["duration_s"].round(1)
    per_event = (
        table.groupby(["event_id", "label"])
        .agg(clips=("clip_id", "count"), duration_s=("duration_s", "sum"))
        .reset_index()
    )
    per_event["duration_s"] = per_event["duration_s"].round(1)
    licences = (
        table.groupby(["source", "licence"]).agg(clips=("clip_id", "count")).reset_index()
    )
    files = table[["clip_id", "label", "attribution", "sha256"]].copy()
    files["sha256"] = files["sha256"].str[:16]
    lines = [f"# {title}", ""]
    if description:
        lines += [description.strip(), ""]
    lines += [
        f"{len(table)} clips, {table['event_id'].nunique()} events, "
        f"{table['duration_s'].sum():.1f} s of audio.",
        "",
        "## Per class", "", markdown_table(per_class), "",
        "## Per event", "", markdown_table(per_event), "",
        "## Sources and licences", "", markdown_table(licences), "",
    ]
    if failures is not None and len(failures):
        lines += ["## What could not be collected", "",
                  markdown_table(failures[["item", "reason"]]), ""]
    else:
        lines += ["## What could not be collected", "", "Nothing failed.", ""]
    lines += ["## Files (SHA-256, first 16 hex digits)", "", markdown_table(files), ""]
    with atomic_write(folder / CARD_FILE, encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return folder / CARD_FILE
