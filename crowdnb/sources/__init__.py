"""Data sources: every way of getting labelled crowd clips into a collection.

Four sources write the same collection (``clips.csv``, ``card.md``, the audio
and ``collection_report.csv`` with one ``item, status, reason`` row per input
item), so nothing downstream knows where the clips came from:

``synthetic``  the embedded synthetic corpus (offline; the default)
``folder``     the researcher's own recordings: a folder per label, or a CSV
``manifest``   labelled time ranges of online videos and recordings (yt-dlp)
``audioset``   AudioSet segments mapped to crowd emotions (then as manifest)

Use :func:`collect` (or the ``crowdnb collect`` command) or the per-source
functions; :func:`collect_study` collects both studies' data from the
data-collection chapter's parameters, and checks each collection's classes
against its study's (:mod:`crowdnb.sources.labels`: the label sets, and the
label maps that let a corpus keep its own names). The chapter "Using your own
data" of the book describes the formats, the mappings and the licences.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..errors import ParameterError
from ._common import REPORT_FILE, Collection
from .audioset import (
    AUDIOSET_BASE_URL, AUDIOSET_LISTS, build_audioset_manifest, collect_audioset, load_mapping,
    read_class_labels, read_segments,
)
from .folder import FOLDER_CSV_COLUMNS, collect_folder
from .labels import (
    EMOTION_LABELS, FOOTBALL_LABELS, STUDY_LABELS, LabelMap, check_label_set, parse_label_map,
)
from .manifest import MANIFEST_COLUMNS, collect_manifest, read_manifest
from .study import StudyData, collect_study
from .synthetic import collect_synthetic

__all__ = [
    "SOURCES",
    "Collection",
    "REPORT_FILE",
    "collect",
    "collect_folder",
    "collect_manifest",
    "collect_audioset",
    "collect_synthetic",
    "collect_study",
    "StudyData",
    "EMOTION_LABELS",
    "FOOTBALL_LABELS",
    "STUDY_LABELS",
    "LabelMap",
    "parse_label_map",
    "check_label_set",
    "build_audioset_manifest",
    "load_mapping",
    "read_manifest",
    "read_segments",
    "read_class_labels",
    "FOLDER_CSV_COLUMNS",
    "MANIFEST_COLUMNS",
    "AUDIOSET_BASE_URL",
    "AUDIOSET_LISTS",
    "register_cli",
]

SOURCES = ("synthetic", "folder", "manifest", "audioset")
_FUNCTIONS = {"synthetic": collect_synthetic, "folder": collect_folder,
              "manifest": collect_manifest, "audioset": collect_audioset}


def collect(
    source: str,
    out_dir: str | os.PathLike,
    *,
    input: str | os.PathLike | None = None,  # noqa: A002 (the CLI's --input)
    **options: Any,
) -> Collection | pd.DataFrame:
    """Collect clips from ``source`` into the collection folder ``out_dir``.

    Parameters
    ----------
    source : {"synthetic", "folder", "manifest", "audioset"}
        Which source.
    out_dir : path-like
        The collection folder.
    input : path-like or None
        ``folder``: the directory (one sub-folder per label) or CSV;
        ``manifest``: the manifest CSV; ``audioset``: where the AudioSet CSV
        lists are (URL or local folder; default: Google's published URL);
        ``synthetic``: not used.
    **options
        Keyword arguments of the source's function (:func:`collect_folder`,
        :func:`collect_manifest`, :func:`collect_audioset`,
        :func:`collect_synthetic`), e.g. ``min_duration_s``, ``per_class``,
        ``seed``, ``dry_run``.

    Returns
    -------
    Collection or pd.DataFrame
        The collection written to ``out_dir`` (for ``synthetic``: its
        ``emotions`` collection, with both in ``collections``), or the plan
        with ``dry_run=True``.

    Raises
    ------
    ParameterError
        For an unknown source or option, or a missing ``input``.
    """
    if source not in _FUNCTIONS:
        raise ParameterError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    function = _FUNCTIONS[source]
    _check_options(source, function, options)
    if source == "synthetic":
        if input is not None:
            raise ParameterError("input: the synthetic source has no input")
        if options.pop("dry_run", False):
            raise ParameterError("dry_run: the synthetic source fetches nothing; run it "
                                 "without --dry-run (it renders offline)")
        return function(out_dir, **options)
    if source == "audioset":
        if input is not None:
            options["base_url"] = os.fspath(input)
        return function(out_dir, **options)
    if input is None:
        what = "a directory with one sub-folder per label, or a CSV with path and label" \
            if source == "folder" else "the manifest CSV"
        raise ParameterError(f"input: the {source} source needs --input ({what})")
    return function(input, out_dir, **options)


def _check_options(source: str, function, options: dict) -> None:
    parameters = inspect.signature(function).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    allowed = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ParameterError(f"{', '.join(unknown)}: not an option of the {source} source "
                             f"(options: {', '.join(allowed)})")
    for name, value in options.items():
        default = parameters[name].default
        # a switch is true or false: "maybe", "yes" or 1 would all read as true
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ParameterError(f"{name}: true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and value is not None \
                and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ParameterError(f"{name}: a number, got {value!r}")


# ---------------------------------------------------------------------------
# Command line

_EPILOG = """\
examples:
  crowdnb collect --source synthetic --out data/synthetic --set preset=smoke
  crowdnb collect --source folder --input ~/recordings --out data/mine
  crowdnb collect --source folder --input labels.csv --out data/mine --set copy=false
  crowdnb collect --source folder --input ~/EmotionalCrowdSound --out data/ecs \\
      --set 'label_map=[approval=joy, disapproval=anger, app*=joy, dis*=anger, neu*=neutral]'
  crowdnb collect --source manifest --input clips.csv --out data/web --dry-run
  crowdnb collect --source audioset --out data/audioset --set per_class=40 --set seed=1
  crowdnb collect --source audioset --out data/audioset --set lists=balanced_train,eval \\
      --set mapping=my_mapping.yaml

--set NAME=VALUE passes an option of the source's function (values are read as
YAML: 20, 0.5, true, null, [a, b]; switches take true or false only). Every run
writes clips.csv, card.md and collection_report.csv into --out. A folder that
already holds a collection is left alone unless --update (add the new clips,
reusing what is already downloaded) or --replace (start afresh) says otherwise;
either way the folder changes only once the new collection is complete.
Labels other than the study's (joy, anger, neutral, goal, no_goal) are refused
unless named: --set labels=[joy,anger,sadness]. A folder source keeps a corpus's
own names with a label map: NAME=LABEL renames a label folder, PREFIX*=LABEL
labels the files whose name starts with PREFIX.
"""


def _parse_setting(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ParameterError(f"--set: expected NAME=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        try:
            value = float(value) if re.fullmatch(r"[-+]?[0-9.]+[eE][-+]?[0-9]+", value) \
                else value
        except ValueError:
            pass
    return name, value


def _run(args: argparse.Namespace) -> int:
    options = dict(_parse_setting(text) for text in args.settings)
    if args.update or args.replace:
        options["existing"] = "update" if args.update else "replace"
    if args.dry_run:
        options["dry_run"] = True
    options.setdefault("progress", not args.no_progress)
    result = collect(args.source, args.out, input=args.input, **options)
    if args.dry_run:
        with pd.option_context("display.max_rows", None, "display.max_colwidth", 80,
                               "display.width", 200):
            print(result.to_string(index=False) if len(result) else "nothing to collect")
        counts = result["status"].value_counts().to_dict() if len(result) else {}
        print("dry run, nothing written: " +
              ", ".join(f"{n} {status}" for status, n in counts.items()))
        return 0
    folder, report = result.folder, result.report
    failed = int((~report["status"].isin(["collected", "kept"])).sum())
    print(f"collected {len(result.clips)} clip(s) ({result.clips['duration_s'].sum():.0f} s) into {folder}"
          + (f"; {failed} item(s) not collected, see {folder / REPORT_FILE}" if failed else ""))
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``collect`` subcommand to the ``crowdnb`` command line."""
    parser = subparsers.add_parser(
        "collect",
        help="collect labelled clips from a source into a collection",
        description="Collect labelled crowd clips from a source (the synthetic corpus, your "
                    "own recordings, a manifest of online clips, or AudioSet) into a "
                    "collection folder.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", required=True, choices=SOURCES, help="where the clips "
                        "come from")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="the collection folder to write")
    parser.add_argument("--input", metavar="PATH", help="folder: a directory (one sub-folder "
                        "per label) or a CSV (path,label,...); manifest: the manifest CSV; "
                        "audioset: the URL or folder of the AudioSet lists (default: Google's)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be collected or fetched; write nothing")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--update", action="store_true",
                          help="--out holds a collection: add the new clips to it (its clips "
                               "are kept, also one whose audio changed in the source: it is "
                               "named, and --replace collects afresh)")
    existing.add_argument("--replace", action="store_true",
                          help="--out holds a collection: delete it and collect afresh")
    parser.add_argument("--set", action="append", default=[], dest="settings",
                        metavar="NAME=VALUE", help="an option of the source (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
    return parser
