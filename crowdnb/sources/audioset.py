"""The ``audioset`` source: crowd clips from Google's AudioSet, through a mapping.

AudioSet (Gemmeke et al., 2017) labels 10 s segments of YouTube videos with
527 sound classes. Its segment lists are CSV files with three comment lines
and rows ``YTID, start_seconds, end_seconds, "mid1,mid2,..."``;
``class_labels_indices.csv`` names the classes (``index,mid,display_name``).

This source downloads the lists from their published URLs (and caches them),
selects the segments whose classes map to a crowd emotion through an
editable mapping (``audioset_mapping.yaml``: which classes give joy, neutral
or anger, and which rule resolves segments that match several), caps each
emotion at ``per_class`` segments drawn with a seed, writes the result as a
manifest (``manifest.csv``) and collects it with the manifest source.

Anger has no AudioSet class: the default mapping uses a proxy (Crowd together
with Yell, Shout or Battle cry), flagged in the ``proxy`` column of the clips
table and in the dataset card.
"""

from __future__ import annotations

import csv
import importlib.resources
import json
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import yaml

from ..clips import markdown_table, validate_label
from ..errors import DataError, ParameterError
from ..files import atomic_path, atomic_write, read_json, sha256_file, stable_hash, write_table
from ._common import BLOCK_S, Collection, check_url
from .labels import check_labels
from .manifest import DEFAULT_CACHE_DIR, collect_rows, default_clip_id

__all__ = [
    "AUDIOSET_BASE_URL",
    "AUDIOSET_LISTS",
    "CLASS_LABELS_FILE",
    "DEFAULT_PER_CLASS",
    "YOUTUBE_URL",
    "load_mapping",
    "read_segments",
    "read_class_labels",
    "build_audioset_manifest",
    "collect_audioset",
]

#: Where Google publishes the AudioSet CSV files (mirrors: eu_audioset, asia_audioset).
AUDIOSET_BASE_URL = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv"
#: The segment lists by name.
AUDIOSET_LISTS = {
    "balanced_train": "balanced_train_segments.csv",
    "eval": "eval_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
}
CLASS_LABELS_FILE = "class_labels_indices.csv"
#: The default cap of segments per emotion.
DEFAULT_PER_CLASS = 50
_MANIFEST_FILE = "manifest.csv"  # the selected segments, beside the collection
#: The page of a segment's video; ``{ytid}`` is replaced by the YouTube id.
YOUTUBE_URL = "https://www.youtube.com/watch?v={ytid}"
MULTI_LABEL_RULES = ("drop", "first")
_RULE_TEXT = {"drop": "segments matching several emotions are left out",
              "first": "a segment matching several emotions goes to the first in mapping order"}
_LIST_CACHE = "audioset_lists"
_CITATION = ("AudioSet: J. F. Gemmeke et al., 'Audio Set: An ontology and human-labeled "
             "dataset for audio events', ICASSP 2017; labels CC BY 4.0")


# ---------------------------------------------------------------------------
# The mapping


def load_mapping(mapping: str | os.PathLike | dict | None = None) -> dict:
    """Read and check an AudioSet -> crowd emotion mapping.

    Parameters
    ----------
    mapping : path-like, dict or None
        A YAML file in the format of the packaged ``audioset_mapping.yaml``,
        the same structure as a dict, or None for the packaged default.

    Returns
    -------
    dict
        ``{"multi_label": "drop" | "first", "emotions": {label: {"any_of":
        [...], "all_of": [...], "none_of": [...], "proxy": bool}}, "source":
        str}``, emotions in file order.

    Raises
    ------
    DataError
        When the file is missing or malformed, a label is invalid, or an
        emotion has no ``any_of`` class.
    """
    if mapping is None:
        ref = importlib.resources.files("crowdnb.sources") / "audioset_mapping.yaml"
        text, where = ref.read_text(encoding="utf-8"), "crowdnb/sources/audioset_mapping.yaml"
        raw = yaml.safe_load(text)
    elif isinstance(mapping, dict):
        raw, where = mapping, "the mapping dict"
    else:
        path = Path(mapping)
        if not path.is_file():
            raise DataError(f"{path}: AudioSet mapping not found")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: not valid YAML ({exc})") from None
        where = str(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("emotions"), dict) \
            or not raw["emotions"]:
        raise DataError(f"{where}: a mapping needs an 'emotions' section with one entry "
                        "per label")
    rule = raw.get("multi_label", "drop")
    if rule not in MULTI_LABEL_RULES:
        raise DataError(f"{where}: multi_label must be one of {', '.join(MULTI_LABEL_RULES)}, "
                        f"got {rule!r}")
    emotions = {}
    for label, spec in raw["emotions"].items():
        validate_label(str(label), where=f"{where}: emotion")
        if not isinstance(spec, dict):
            raise DataError(f"{where}: emotion {label!r} must be a mapping with any_of")
        unknown = set(spec) - {"any_of", "all_of", "none_of", "proxy", "note"}
        if unknown:
            raise DataError(f"{where}: emotion {label!r} has unknown key(s) "
                            f"{', '.join(sorted(unknown))} (any_of, all_of, none_of, proxy)")
        lists = {}
        for key in ("any_of", "all_of", "none_of"):
            value = spec.get(key) or []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError(f"{where}: emotion {label!r}: {key} must be a list of class "
                                "names")
            lists[key] = value
        if not lists["any_of"]:
            raise DataError(f"{where}: emotion {label!r} needs at least one any_of class")
        emotions[str(label)] = {**lists, "proxy": bool(spec.get("proxy", False)),
                                "note": str(spec.get("note", "") or "")}
    return {"multi_label": rule, "emotions": emotions, "source": where}


def _resolve(mapping: dict, class_labels: pd.DataFrame) -> dict[str, dict[str, frozenset]]:
    """Class names of the mapping -> AudioSet machine ids (mids)."""
    by_name = {name.casefold(): mid for mid, name in
               zip(class_labels["mid"], class_labels["display_name"])}
    mids = set(class_labels["mid"])
    resolved = {}
    for label, spec in mapping["emotions"].items():
        out = {}
        for key in ("any_of", "all_of", "none_of"):
            ids = set()
            for name in spec[key]:
                if name in mids:
                    ids.add(name)
                elif name.casefold() in by_name:
                    ids.add(by_name[name.casefold()])
                else:
                    raise DataError(f"{mapping['source']}: emotion {label!r}: {name!r} is not an "
                                    f"AudioSet class with segments (see {CLASS_LABELS_FILE})")
            out[key] = frozenset(ids)
        resolved[label] = out
    return resolved


# ---------------------------------------------------------------------------
# The lists


def read_class_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``class_labels_indices.csv`` (``index,mid,display_name``)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot read the AudioSet class list ({exc})") from None
    missing = [c for c in ("mid", "display_name") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: AudioSet class list lacks column(s) {', '.join(missing)}")
    return table


def read_segments(path: str | os.PathLike, *, list_name: str = "") -> pd.DataFrame:
    """Read an AudioSet segment list.

    Returns
    -------
    pd.DataFrame
        Columns ``ytid`` (str), ``start`` and ``end`` (float, s), ``mids``
        (frozenset of class ids) and ``list`` (``list_name``). Lines starting
        with ``#`` are comments.

    Raises
    ------
    DataError
        When the file is missing or a row does not have four fields.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: AudioSet segment list not found")
    ytids, starts, ends, mids = [], [], [], []
    with open(path, encoding="utf-8", newline="") as fh:
        lines = (line for line in fh if line.strip() and not line.startswith("#"))
        for n, fields in enumerate(csv.reader(lines, skipinitialspace=True), start=1):
            if len(fields) != 4:
                raise DataError(f"{path}: segment {n} has {len(fields)} fields, not 4 "
                                "(YTID, start_seconds, end_seconds, \"labels\")")
            try:
                start, end = float(fields[1]), float(fields[2])
            except ValueError:
                raise DataError(f"{path}: segment {n}: start/end are not numbers: "
                                f"{fields[1]!r}, {fields[2]!r}") from None
            ytids.append(fields[0].strip())
            starts.append(start)
            ends.append(end)
            mids.append(frozenset(m.strip() for m in fields[3].split(",") if m.strip()))
    return pd.DataFrame({"ytid": ytids, "start": starts, "end": ends, "mids": mids,
                         "list": list_name})


def _fetch_list(filename: str, base_url: str, cache_dir: Path, *, timeout_s: float) -> Path:
    """A local copy of one AudioSet CSV: from a local folder, the cache, or the web."""
    local = Path(base_url)
    if "://" not in base_url:
        path = local / filename
        if not path.is_file():
            raise DataError(f"{path}: AudioSet list not found (base_url is a local folder)")
        return path
    url = check_url(base_url.rstrip("/") + "/" + filename)
    folder = cache_dir / _LIST_CACHE / stable_hash(url, length=12)
    target, meta_path = folder / filename, folder / f"{filename}.json"
    if target.is_file() and meta_path.is_file():
        try:
            if read_json(meta_path).get("sha256") == sha256_file(target):
                return target
        except DataError:
            pass
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, \
                atomic_path(target) as tmp:
            with open(tmp, "wb") as fh:
                while chunk := response.read(1 << 20):
                    fh.write(chunk)
    except urllib.error.HTTPError as exc:
        raise DataError(f"cannot download the AudioSet list {url}: HTTP {exc.code} "
                        f"{exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download the AudioSet list {url} ({reason}). Check the "
                        "network connection, or download the lists yourself and give their "
                        "folder (base_url; in the study, source_path)") from None
    with atomic_write(meta_path, encoding="utf-8") as fh:
        json.dump({"url": url, "sha256": sha256_file(target)}, fh, indent=2)
    return target


def _check_lists(lists: str | Iterable[str]) -> list[str]:
    if isinstance(lists, str):
        lists = [p.strip() for p in lists.split(",") if p.strip()]
    lists = list(dict.fromkeys(lists))
    bad = [name for name in lists if name not in AUDIOSET_LISTS]
    if not lists or bad:
        raise ParameterError(f"lists must name AudioSet segment lists among "
                             f"{', '.join(AUDIOSET_LISTS)}, got {lists!r}")
    return lists


# ---------------------------------------------------------------------------
# Segments -> manifest


def build_audioset_manifest(
    segments: pd.DataFrame,
    class_labels: pd.DataFrame,
    *,
    mapping: str | os.PathLike | dict | None = None,
    per_class: int | None = DEFAULT_PER_CLASS,
    seed: int = 0,
    multi_label: str | None = None,
    url_template: str = YOUTUBE_URL,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Select AudioSet segments for each crowd emotion and write them as a manifest.

    Parameters
    ----------
    segments : pd.DataFrame
        From :func:`read_segments` (several lists concatenated is fine).
    class_labels : pd.DataFrame
        From :func:`read_class_labels`.
    mapping : path-like, dict or None
        See :func:`load_mapping` (None: the packaged default).
    per_class : int > 0 or None
        At most this many segments per emotion, drawn without replacement
        with ``seed`` (None: all). Each emotion draws from its own stream
        (seeded by ``seed`` and the label), so editing one emotion's classes
        does not change another's selection.
    seed : int
        Seed of the draw.
    multi_label : {"drop", "first"} or None
        Rule for a segment matching several emotions (None: the mapping's):
        ``drop`` leaves it out, ``first`` gives it to the first matching
        emotion in mapping order.
    url_template : str
        The URL of a segment's video, with ``{ytid}``.

    Returns
    -------
    manifest : pd.DataFrame
        Manifest columns (url, start, end, label, event_id, clip_id,
        licence, attribution) plus ``proxy`` and ``audioset_labels``
        (display names) and ``audioset_list``; one row per selected segment.
    summary : pd.DataFrame
        Per emotion: ``label``, ``proxy``, ``classes`` (the rule, in words), ``matched``
        (segments matching it), ``ambiguous`` (of those, also matching
        another emotion), ``available`` (after the multi-label rule),
        ``selected``.
    """
    spec = load_mapping(mapping)
    rule = spec["multi_label"] if multi_label is None else multi_label
    if rule not in MULTI_LABEL_RULES:
        raise ParameterError(f"multi_label must be one of {', '.join(MULTI_LABEL_RULES)}, "
                             f"got {rule!r}")
    if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, int)
                                  or per_class < 1):
        raise ParameterError(f"per_class must be a positive integer or None, got {per_class!r}")
    if "{ytid}" not in url_template:
        raise ParameterError(f"url_template must contain {{ytid}}, got {url_template!r}")
    check_url(url_template.replace("{ytid}", "x"))
    resolved = _resolve(spec, class_labels)
    labels = list(resolved)
    names = dict(zip(class_labels["mid"], class_labels["display_name"]))

    segments = segments.drop_duplicates(subset=["ytid", "start"]).reset_index(drop=True)
    hits = np.zeros((len(segments), len(labels)), dtype=bool)
    for j, label in enumerate(labels):
        r = resolved[label]
        hits[:, j] = [bool(m & r["any_of"]) and r["all_of"] <= m and not (m & r["none_of"])
                      for m in segments["mids"]]
    n_hits = hits.sum(axis=1)
    if rule == "drop":
        assigned = np.where(n_hits == 1, hits.argmax(axis=1), -1)
    else:
        assigned = np.where(n_hits >= 1, hits.argmax(axis=1), -1)

    rows, summary = [], []
    for j, label in enumerate(labels):
        candidates = np.flatnonzero(assigned == j)
        chosen = candidates
        if per_class is not None and len(candidates) > per_class:
            rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
            chosen = np.sort(rng.choice(candidates, size=per_class, replace=False))
        proxy = spec["emotions"][label]["proxy"]
        for i in chosen:
            seg = segments.iloc[int(i)]
            event_id = f"yt_{seg['ytid']}"
            shown = "; ".join(sorted(names.get(m, m) for m in seg["mids"]))
            rows.append({
                "url": url_template.replace("{ytid}", seg["ytid"]),
                "start": f"{seg['start']:.3f}", "end": f"{seg['end']:.3f}",
                "label": label, "event_id": event_id,
                "clip_id": default_clip_id(event_id, seg["start"], seg["end"]),
                "licence": "",
                "attribution": f"AudioSet {seg['list']} segment ({shown})",
                "proxy": "true" if proxy else "false",
                "audioset_labels": shown, "audioset_list": seg["list"],
            })
        summary.append({
            "label": label, "proxy": bool(proxy), "classes": _describe(spec["emotions"][label]),
            "matched": int(hits[:, j].sum()),
            "ambiguous": int((hits[:, j] & (n_hits > 1)).sum()),
            "available": int(len(candidates)), "selected": int(len(chosen)),
        })
    columns = ["url", "start", "end", "label", "event_id", "clip_id", "licence", "attribution",
               "proxy", "audioset_labels", "audioset_list"]
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(summary)


def _describe(spec: dict) -> str:
    text = "any of " + ", ".join(spec["any_of"])
    if spec["all_of"]:
        text = "all of " + ", ".join(spec["all_of"]) + " and " + text
    if spec["none_of"]:
        text += "; none of " + ", ".join(spec["none_of"])
    return text


# ---------------------------------------------------------------------------
# The source


def collect_audioset(
    out_dir: str | os.PathLike,
    *,
    lists: str | Iterable[str] = ("balanced_train",),
    per_class: int | None = DEFAULT_PER_CLASS,
    seed: int = 0,
    mapping: str | os.PathLike | dict | None = None,
    multi_label: str | None = None,
    base_url: str = AUDIOSET_BASE_URL,
    url_template: str = YOUTUBE_URL,
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
    """Collect crowd clips from AudioSet through the emotion mapping.

    Parameters
    ----------
    out_dir : path-like
        The collection folder; also receives ``manifest.csv`` (the selected
        segments) unless ``dry_run``.
    lists : str or sequence of str
        Segment lists to draw from: ``balanced_train``, ``eval``,
        ``unbalanced_train`` (a comma-separated string works too). The
        unbalanced list is about 2 million segments (a large download).
    per_class : int > 0 or None
        Cap per emotion (seeded draw); None keeps every matching segment.
        Segments whose video is gone count towards the cap: they are reported
        as failed, not replaced.
    seed : int
        Seed of the per-class draw.
    mapping : path-like, dict or None
        The AudioSet -> emotion mapping (None: the packaged
        ``audioset_mapping.yaml``).
    multi_label : {"drop", "first"} or None
        Override the mapping's rule for segments matching several emotions.
    base_url : str
        Where the AudioSet CSV files are: an http(s) URL (default: Google's
        published location; downloads are cached) or a local folder holding
        them.
    url_template : str
        The video URL of a segment, with ``{ytid}`` (default: YouTube).
    cache_dir : path-like or None
        Cache of the lists and the downloads (default ``out_dir/downloads``).
    labels : list of str or None
        The classes to collect (default: the study's); a mapping with another
        emotion stops the collection before anything is downloaded.
    min_duration_s, duration_tolerance_s, socket_timeout_s, retries, existing, dry_run, progress
        As in :func:`crowdnb.sources.collect_manifest`.

    Returns
    -------
    pd.DataFrame
        :class:`~crowdnb.sources.Collection` (its clips table has a ``proxy``
        column; ``selection`` holds the per-emotion summary). With ``dry_run``: the plan.
    """
    out_dir = Path(out_dir)
    names = _check_lists(lists)
    cache = Path(cache_dir) if cache_dir is not None else out_dir / DEFAULT_CACHE_DIR
    spec = load_mapping(mapping)
    check_labels(spec["emotions"], labels, where=f"the AudioSet mapping {spec['source']}")
    class_labels = read_class_labels(
        _fetch_list(CLASS_LABELS_FILE, base_url, cache, timeout_s=socket_timeout_s))
    segments = pd.concat(
        [read_segments(_fetch_list(AUDIOSET_LISTS[n], base_url, cache,
                                   timeout_s=socket_timeout_s), list_name=n) for n in names],
        ignore_index=True)
    manifest, summary = build_audioset_manifest(
        segments, class_labels, mapping=spec, per_class=per_class, seed=seed,
        multi_label=multi_label, url_template=url_template)
    rule = spec["multi_label"] if multi_label is None else multi_label
    if manifest.empty:
        raise DataError(f"no AudioSet segment of the lists {', '.join(names)} matches the "
                        f"mapping {spec['source']}")
    proxies = [label for label, e in spec["emotions"].items() if e["proxy"]]
    proxy_text = ""
    if proxies:
        proxy_text = (
            f"\n\n**Proxy classes: {', '.join(proxies)}.** AudioSet has no class for "
            f"{' or '.join(proxies)}"
            + (" (Booing is in the AudioSet ontology but has no segments)"
               if "anger" in proxies else "")
            + ", so these clips come from the nearest classes in the table below and carry "
            "`proxy = True` in the clips table. Unlike the paper's clips, nobody listened to "
            "them to confirm the emotion: treat results on these classes as results on a "
            "proxy."
        )
    intro = (
        f"Collected by the `audioset` source from the AudioSet segment list(s) "
        f"{', '.join(names)} ({len(segments)} segments) through the mapping "
        f"`{spec['source']}`: per-class cap {per_class}, seed {seed}, multi-label rule "
        f"`{rule}` ({_RULE_TEXT[rule]})."
        f"{proxy_text}\n\n{markdown_table(summary)}\n\n"
        "A selected segment whose video cannot be downloaded (removed, private, blocked in "
        "the region) is not replaced by another: it counts towards the cap, and it is listed "
        "with the reason under *What could not be collected* below.\n\n"
        f"**Licences.** {_CITATION}. The audio is not covered by that licence: it belongs to "
        "the YouTube uploaders and stays under YouTube's Terms of Service. Keep it in the "
        "collection folder; never commit or redistribute it. Share `manifest.csv` (the "
        "selected segments) and this card instead: anyone can rebuild the collection from "
        "them, and the checksums below show whether they got the same audio."
    )
    table = collect_rows(
        manifest, out_dir, source="audioset",
        title=f"Collection: {out_dir.name} (AudioSet source)", intro=intro,
        own_files=(_MANIFEST_FILE,), cache_dir=cache, min_duration_s=min_duration_s,
        duration_tolerance_s=duration_tolerance_s, socket_timeout_s=socket_timeout_s,
        retries=retries, labels=labels, existing=existing, dry_run=dry_run, progress=progress)
    if isinstance(table, Collection):
        write_table(out_dir / _MANIFEST_FILE, manifest)
        table.selection = summary
    return table
