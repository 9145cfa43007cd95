"""The study's two collections, from the data-collection chapter's parameters.

:func:`collect_study` is what chapter 1 runs: it collects the emotion clips
and the football actions, each from its own source, into one folder, and
checks that each collection holds exactly the classes its study declares. Its
keyword arguments are the chapter's parameters, under the same names, so a
parameter file (``params/audioset.yaml``, ``params/emotional_crowd_sound.yaml``)
means the same thing here and in the notebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..clips import CLIPS_FILE, read_clips
from ..errors import ParameterError
from .audioset import DEFAULT_PER_CLASS
from .labels import FOOTBALL_LABELS, check_label_names, check_label_set, parse_label_map

__all__ = ["StudyData", "collect_study", "EMOTION_SOURCES", "FOOTBALL_SOURCES"]

#: Where the emotion clips can come from.
EMOTION_SOURCES = ("synthetic", "folder", "manifest", "audioset")
#: Where the football actions can come from (AudioSet has no goal / no-goal labels).
FOOTBALL_SOURCES = ("synthetic", "folder", "manifest")
#: The downloads' folder in the shared cache.
DOWNLOADS = "downloads"


@dataclass
class StudyData:
    """The study's collections.

    Attributes
    ----------
    folders : dict[str, Path]
        ``"emotions"`` and ``"football"``: each collection's folder.
    clips : dict[str, pd.DataFrame]
        The same keys: each collection's clips table (absolute paths).
    labels : dict[str, tuple of str]
        The same keys: the classes each study declares (and its collection holds).
    """

    folders: dict[str, Path]
    clips: dict[str, pd.DataFrame]
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _unused(source: str, used_by: str, values: dict[str, object]) -> None:
    """Refuse a setting that the chosen source would silently ignore."""
    for name, value in values.items():
        if value:
            raise ParameterError(f"{name}: only the {used_by} source reads it, and the source "
                                 f"is {source}; set the source, or leave {name} empty")


def collect_study(
    out_dir: str | os.PathLike,
    *,
    source: str = "synthetic",
    source_path: str | os.PathLike = "",
    labels: Sequence[str] = (),
    label_map: Sequence[str] | dict | str = (),
    audioset_lists: Sequence[str] = (),
    audioset_per_class: int = DEFAULT_PER_CLASS,
    audioset_mapping: str | os.PathLike = "",
    audioset_base_url: str = "",
    audioset_url_template: str = "",
    football_source: str = "synthetic",
    football_path: str | os.PathLike = "",
    football_label_map: Sequence[str] | dict | str = (),
    synth_preset: str = "paper",
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> StudyData:
    """Collect the emotion clips and the football actions of the study.

    Parameters
    ----------
    out_dir : path-like
        Receives ``emotions/`` and ``football/`` (a source's own collection),
        or ``synthetic/`` (the synthetic corpus, both studies, rendered once
        when either needs it).
    source : {"synthetic", "folder", "manifest", "audioset"}
        Where the emotion clips come from.
    source_path : str or path-like
        ``folder``: the recordings folder or CSV; ``manifest``: the manifest
        CSV; ``audioset``: a local folder holding the AudioSet lists (else
        they are downloaded from ``audioset_base_url``).
    labels : sequence of str
        The emotion study's classes (empty: the paper's joy, anger, neutral).
        A clip of another class stops the collection; a class without clips
        is refused after it.
    label_map : list of str, dict or str
        ``folder`` source: the corpus's names -> labels, e.g.
        ``["approval=joy", "app*=joy"]`` (see :mod:`crowdnb.sources.labels`).
    audioset_lists : sequence of str
        ``audioset``: the segment lists drawn from (empty: the source's
        default, the balanced training list).
    audioset_per_class : int > 0
        ``audioset``: at most this many segments per class, drawn with ``seed``.
    audioset_mapping : str or path-like
        ``audioset``: a mapping YAML of AudioSet classes to labels (empty: the
        packaged ``audioset_mapping.yaml``).
    audioset_base_url : str
        ``audioset``: where the lists are published (empty: Google's).
    audioset_url_template : str
        ``audioset``: a segment's video URL with ``{ytid}`` (empty: YouTube's).
    football_source : {"synthetic", "folder", "manifest"}
        Where the football actions come from; their classes are goal and no_goal.
    football_path : str or path-like
        The folder, CSV or manifest of the football actions.
    football_label_map : list of str, dict or str
        ``folder``: the football corpus's names -> goal / no_goal.
    synth_preset : str
        The synthetic corpus's preset (``paper`` or ``smoke``).
    seed : int
        Seed of the synthesizer and of the AudioSet draw.
    cache_dir : path-like or None
        The cache shared between runs: the synthetic corpus is rendered into
        it, and the manifest and AudioSet sources keep their downloads in its
        ``downloads/`` (content-addressed, so a rerun of the chapter, which
        starts from an empty folder, downloads only what is missing). None:
        each collection keeps its own ``downloads/``.
    progress : bool
        Show progress bars.

    Returns
    -------
    StudyData

    Raises
    ------
    ParameterError
        For an unknown source, an invalid label set or label map, or a
        setting the chosen source does not read (it would be ignored).
    DataError
        When a source fails, or a collection's classes are not its study's.
    """
    from . import collect

    out_dir = Path(out_dir)
    source_path, football_path, audioset_mapping = (
        os.path.expanduser(str(value)) if value else "" for value in
        (source_path, football_path, audioset_mapping))
    if source not in EMOTION_SOURCES:
        raise ParameterError(f"source must be one of {', '.join(EMOTION_SOURCES)}, "
                             f"got {source!r}")
    if football_source not in FOOTBALL_SOURCES:
        raise ParameterError(f"football_source must be one of {', '.join(FOOTBALL_SOURCES)} "
                             f"(AudioSet has no goal / no-goal labels), got {football_source!r}")
    study_labels = {"emotions": check_label_names(labels, what="labels"),
                    "football": FOOTBALL_LABELS}
    maps = {"emotions": parse_label_map(label_map, what="label_map"),
            "football": parse_label_map(football_label_map, what="football_label_map")}
    if source != "folder":
        _unused(source, "folder", {"label_map": maps["emotions"]})
    if football_source != "folder":
        _unused(football_source, "folder", {"football_label_map": maps["football"]})
    if source != "audioset":
        _unused(source, "audioset", {"audioset_mapping": audioset_mapping,
                                     "audioset_base_url": audioset_base_url,
                                     "audioset_url_template": audioset_url_template})
    if source == "synthetic":
        _unused(source, "folder, manifest or audioset", {"source_path": source_path})
    if football_source == "synthetic":
        _unused(football_source, "folder or manifest", {"football_path": football_path})
    needs = {"folder": "a recordings folder or a CSV of files and labels",
             "manifest": "a manifest CSV"}
    for name, value, kind in (("source_path", source_path, source),
                              ("football_path", football_path, football_source)):
        if kind in needs and not value:
            raise ParameterError(f"{name}: the {kind} source reads {needs[kind]}; give its "
                                 f"path (-p {name}=PATH)")
    if source == "audioset" and source_path and audioset_base_url:
        raise ParameterError("source_path, audioset_base_url: give one place for the AudioSet "
                             "lists, a local folder or a URL")

    # The user's sources first: a wrong label or a class without clips stops
    # the chapter before the synthetic corpus is rendered for nothing.
    folders: dict[str, Path] = {}
    clips: dict[str, pd.DataFrame] = {}
    downloads = {"cache_dir": Path(cache_dir) / DOWNLOADS} if cache_dir is not None else {}

    def checked(study: str) -> None:
        clips[study] = read_clips(folders[study])
        check_label_set(clips[study], study_labels[study], where=str(folders[study] / CLIPS_FILE))

    if source != "synthetic":
        options: dict = {}
        if source == "folder":
            options["label_map"] = maps["emotions"]
        if source in ("manifest", "audioset"):
            options.update(downloads)
        if source == "audioset":
            options.update(per_class=audioset_per_class, seed=seed,
                           mapping=audioset_mapping or None)
            if audioset_lists:
                options["lists"] = list(audioset_lists)
            if audioset_url_template:
                options["url_template"] = audioset_url_template
        folders["emotions"] = out_dir / "emotions"
        collect(source, folders["emotions"], input=source_path or audioset_base_url or None,
                labels=list(study_labels["emotions"]), progress=progress, **options)
        checked("emotions")
    if football_source != "synthetic":
        options = {"label_map": maps["football"]} if football_source == "folder" else downloads
        folders["football"] = out_dir / "football"
        collect(football_source, folders["football"], input=football_path,
                labels=list(FOOTBALL_LABELS), progress=progress, **options)
        checked("football")
    chosen = {"emotions": source, "football": football_source}
    if "synthetic" in chosen.values():
        synthetic = collect("synthetic", out_dir / "synthetic", preset=synth_preset, seed=seed,
                            progress=progress, cache_dir=cache_dir)
        for study, path in synthetic.collections.items():
            if chosen[study] == "synthetic":
                folders[study] = Path(path)
                checked(study)
    return StudyData(folders={s: folders[s] for s in ("emotions", "football")},
                     clips={s: clips[s] for s in ("emotions", "football")}, labels=study_labels)
