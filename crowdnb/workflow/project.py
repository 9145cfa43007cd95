"""Where the study is: the project folder, found from where you stand.

A project is a folder holding ``_config.yml`` (the book) and ``notebooks/``
(the stages). Everything a run reads and writes is found from it, never from
where the ``crowdnb`` package is installed, so two clones sharing one
virtual environment each run their own notebooks into their own ``runs/``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError

__all__ = ["Project", "find_project", "check_run_name", "RUN_NAME"]

#: A run's name: its folder under ``runs/``; never a path that leaves it.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MARKERS = ("_config.yml", "notebooks")


@dataclass(frozen=True)
class Project:
    """The folders of a project (``root`` is absolute)."""

    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def params(self) -> Path:
        return self.root / "params"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def book_executed(self) -> Path:
        return self.root / "book" / "executed"

    @property
    def snakefile(self) -> Path:
        return self.root / "Snakefile"


def _is_project(folder: Path) -> bool:
    return (folder / _MARKERS[0]).is_file() and (folder / _MARKERS[1]).is_dir()


def find_project(explicit: str | os.PathLike | None = None, *,
                 start: str | os.PathLike | None = None) -> Project:
    """The project holding ``start`` (default: the current directory), or ``explicit``.

    Parameters
    ----------
    explicit : path-like, optional
        The project folder, as given by ``--project``; it must hold
        ``_config.yml`` and ``notebooks/``.
    start : path-like, optional
        Where to start searching upwards (default: the current directory).

    Raises
    ------
    ParameterError
        When ``explicit`` is not a project, or no folder from ``start`` up is.
    """
    if explicit is not None:
        root = Path(explicit).expanduser().resolve()
        if not _is_project(root):
            raise ParameterError(f"--project {explicit}: not a crowdnb project (it needs "
                                 "_config.yml and a notebooks/ folder)")
        return Project(root)
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if _is_project(folder):
            return Project(folder)
    raise ParameterError(f"{here}: not inside a crowdnb project (no folder from here up holds "
                         "_config.yml and notebooks/); run from the study's clone, or pass "
                         "--project DIR")


def check_run_name(name: object, *, where: str = "run") -> str:
    """Return ``name`` when it is a valid run name (a folder directly under ``runs/``)."""
    if not isinstance(name, str) or not RUN_NAME.match(name) or name in (".", ".."):
        raise ParameterError(
            f"{where}: run name {name!r} must be one folder name under runs/ (letters, digits, "
            "'_', '-', '.'; no '/' and no '..')")
    return name
