"""The study's label sets, and the mapping of a user's names onto them.

Two checks guard every collection: an input holding a label outside the set
being collected stops before anything is written (:func:`check_labels`), and
a collection missing a class the study declares is refused after it was
collected (:func:`check_label_set`), so a study never trains on fewer classes
than its chapters describe.

A *label map* lets a corpus keep its own names. It maps names to labels, in
one of two kinds of entry:

``approval=joy``   a label folder (or the ``label`` cell of a CSV) named ``approval``
``app*=joy``       a file whose name starts with ``app``

Names match regardless of case. A map is written as a dict (``{"approval":
"joy"}``, in Python or as ``--set label_map={approval: joy}``), or as a list of
``name=label`` entries (``["approval=joy", "app*=joy"]``, the form the
data-collection notebook's ``label_map`` parameter takes), or as one string of
comma-separated entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import pandas as pd

from ..clips import validate_label
from ..errors import DataError, ParameterError

__all__ = [
    "EMOTION_LABELS",
    "FOOTBALL_LABELS",
    "STUDY_LABELS",
    "LabelMap",
    "parse_label_map",
    "check_label_names",
    "check_labels",
    "check_label_set",
]

#: The emotion study's classes (the paper's).
EMOTION_LABELS = ("joy", "anger", "neutral")
#: The football study's pair.
FOOTBALL_LABELS = ("goal", "no_goal")
#: The labels of the study's two tasks; a source takes others only when told them.
STUDY_LABELS = EMOTION_LABELS + FOOTBALL_LABELS


@dataclass(frozen=True)
class LabelMap:
    """A checked label map (see the module docstring; build it with :func:`parse_label_map`).

    Attributes
    ----------
    names : dict[str, tuple[str, str]]
        Folder (or CSV label) name, case-folded -> (label, the entry as given).
    prefixes : tuple of (str, str, str)
        (file-name prefix case-folded, label, the entry as given), longest
        prefix first: the longest one a file name starts with wins.
    entries : tuple of str
        Every entry as ``name=label`` or ``prefix*=label``, in the order given.
    """

    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    prefixes: tuple[tuple[str, str, str], ...] = ()
    entries: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def by_name(self, name: str) -> tuple[str, str] | None:
        """``(label, entry)`` for a folder (or CSV label) ``name`` the map names, or None."""
        return self.names.get(name.casefold())

    def by_prefix(self, file_name: str) -> tuple[str, str] | None:
        """``(label, entry)`` for a file whose name starts with a mapped prefix, or None."""
        folded = file_name.casefold()
        for prefix, label, entry in self.prefixes:
            if folded.startswith(prefix):
                return label, entry
        return None

    def prefix_text(self) -> str:
        """The prefixes, for a message: ``app*, dis*``."""
        return ", ".join(entry.partition("=")[0] for _, _, entry in self.prefixes)


def _entries(label_map, what: str) -> list[tuple[str, object]]:
    if isinstance(label_map, Mapping):
        return [(str(k), v) for k, v in label_map.items()]
    if isinstance(label_map, str):
        label_map = [part for part in label_map.split(",") if part.strip()]
    if not isinstance(label_map, (list, tuple)):
        raise ParameterError(f"{what}: a mapping of names to labels, or a list of NAME=LABEL "
                             f"entries, got {label_map!r}")
    pairs = []
    for entry in label_map:
        if not isinstance(entry, str) or "=" not in entry:
            raise ParameterError(f"{what}: entry {entry!r} is not NAME=LABEL (a folder name) "
                                 "or PREFIX*=LABEL (the start of file names)")
        key, _, value = entry.partition("=")
        pairs.append((key, value))
    return pairs


def parse_label_map(label_map: Mapping[str, str] | Sequence[str] | str | LabelMap | None, *,
                    what: str = "label_map") -> LabelMap:
    """Check a label map and return it as a :class:`LabelMap`.

    Parameters
    ----------
    label_map : dict, list of str, str, LabelMap or None
        ``{name: label}``, ``["name=label", "prefix*=label", ...]``, the same
        entries in one comma-separated string, or None / empty for no map.
        A name ending in ``*`` is a file-name prefix; any other name is a
        folder name (or a CSV's label). Names match regardless of case.
    what : str
        How error messages name the parameter.

    Raises
    ------
    ParameterError
        For an entry that is not ``name=label``, an empty name, a name with a
        path separator or a ``*`` other than a final one, an invalid label, or
        a name given twice with different labels.
    """
    if isinstance(label_map, LabelMap):
        return label_map
    if label_map is None or (isinstance(label_map, (str, list, tuple, Mapping)) and not label_map):
        return LabelMap()
    names: dict[str, tuple[str, str]] = {}
    prefixes: dict[str, tuple[str, str]] = {}
    entries = []
    for raw_key, raw_label in _entries(label_map, what):
        key = raw_key.strip()
        label = raw_label.strip() if isinstance(raw_label, str) else raw_label
        entry = f"{key}={label}"
        if not isinstance(label, str):
            raise ParameterError(f"{what}: {key!r} must map to a label (text), got {label!r}")
        try:
            validate_label(label, where=f"{what}: {entry!r}")
        except DataError as exc:
            raise ParameterError(str(exc)) from None
        is_prefix = key.endswith("*")
        name = key[:-1] if is_prefix else key
        if not name or "*" in name or "/" in name or "\\" in name:
            raise ParameterError(
                f"{what}: {entry!r}: the name must be a folder name or a file-name prefix "
                "ending in * (no path separator, no other *)")
        table = prefixes if is_prefix else names
        folded = name.casefold()
        if folded in table and table[folded][0] != label:
            raise ParameterError(f"{what}: {key!r} is mapped to both {table[folded][0]} and "
                                 f"{label} (names match regardless of case)")
        if folded not in table:
            table[folded] = (label, entry)
            entries.append(entry)
    ordered = sorted(prefixes.items(), key=lambda item: (-len(item[0]), item[0]))
    return LabelMap(names=names,
                    prefixes=tuple((prefix, label, entry) for prefix, (label, entry) in ordered),
                    entries=tuple(entries))


def check_label_names(labels: Iterable[str] | None, *, what: str = "labels",
                      default: Sequence[str] = EMOTION_LABELS) -> tuple[str, ...]:
    """A study's label set: valid, distinct labels, at least two (default when empty).

    Raises
    ------
    ParameterError
        Naming ``what``, for something that is not a list of labels, an
        invalid or repeated label, or fewer than two.
    """
    if labels is None or (isinstance(labels, (list, tuple)) and not labels):
        return tuple(default)
    if isinstance(labels, str) or not isinstance(labels, (list, tuple)):
        raise ParameterError(f"{what}: a list of labels such as [joy, anger, neutral], "
                             f"got {labels!r}")
    for label in labels:
        try:
            validate_label(label, where=what)
        except DataError as exc:
            raise ParameterError(str(exc)) from None
    repeated = sorted({label for label in labels if list(labels).count(label) > 1})
    if repeated:
        raise ParameterError(f"{what}: {', '.join(repeated)} named more than once")
    if len(labels) < 2:
        raise ParameterError(f"{what}: a study needs at least two classes, got {list(labels)}")
    return tuple(labels)


def check_labels(found: Iterable[str], labels: Iterable[str] | None, *, where: str) -> None:
    """Stop when an input holds labels outside the set the user collects.

    Without ``labels``, the study's (:data:`STUDY_LABELS`): a folder named
    ``sadness`` or ``joyy`` is a typo or a new class, and only the user can say
    which.
    """
    found = set(found)
    allowed = set(STUDY_LABELS if labels is None else labels)
    unknown = sorted(found - allowed)
    if unknown:
        hint = (f"pass --set labels=[{', '.join(sorted(found))}] to collect them as classes"
                if labels is None else "add them to labels, or fix the input")
        raise DataError(f"{where}: label(s) {', '.join(unknown)} are not among "
                        f"{', '.join(sorted(allowed))} (found: {', '.join(sorted(found))}); "
                        f"{hint}")


def check_label_set(table: pd.DataFrame, labels: Iterable[str], *, where: str) -> None:
    """Refuse a collection whose classes are not exactly ``labels``.

    A label outside ``labels`` is an error unless declared; a declared label
    with no clip is one too (the study would silently train on fewer classes).

    Raises
    ------
    DataError
        Naming ``where`` and the labels concerned.
    """
    labels = list(labels)
    found = set(table["label"].astype(str))
    check_labels(found, labels, where=where)
    absent = [label for label in labels if label not in found]
    if absent:
        counts = table["label"].value_counts().reindex(labels, fill_value=0)
        shown = ", ".join(f"{label} {n}" for label, n in counts.items())
        raise DataError(f"{where}: no clip of class(es) {', '.join(absent)}, which the study "
                        f"declares (clips per class: {shown}); check the collection report "
                        "beside it, or leave them out of labels")
