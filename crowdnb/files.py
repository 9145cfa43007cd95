"""Atomic writes, tables, checksums and stable parameter hashes.

Every stage of the study writes through these helpers, so that an interrupted
run never leaves a half-written file under the final name: data goes to a
temporary file in the same folder, which is renamed over the target only when
it is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd

from .errors import DataError

__all__ = [
    "atomic_path",
    "atomic_write",
    "write_json",
    "read_json",
    "write_table",
    "read_table",
    "sha256_file",
    "stable_hash",
    "load_yaml",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    Parameters
    ----------
    path : path-like
        The final file name. Its folder is created if needed. The temporary
        name keeps the suffix, so libraries that choose a format from the
        extension (PIL, soundfile) still work.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file for writing and rename it to ``path`` when closed."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, paths: everything a metrics dict tends to hold.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically; return the path."""
    with atomic_write(path, encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with an error that names it when missing or malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def write_table(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a table as CSV, atomically; return the path."""
    with atomic_write(path, encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False)
    return Path(path)


def read_table(
    path: str | os.PathLike, *, required: Sequence[str] = (), what: str = "table"
) -> pd.DataFrame:
    """Read a CSV table and check that it has the ``required`` columns.

    Raises
    ------
    DataError
        When the file is missing, unreadable, or lacks a required column; the
        message names the file and the columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read {what} ({exc})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
    return table


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj: Any, *, length: int = 16) -> str:
    """A short hash of a JSON-able object that does not depend on key order.

    Used as a cache key: the same parameters give the same key on every run and
    every machine.
    """
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _strict_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """YAML with booleans spelt true/false only, and 1e-4 read as a number."""

    # YAML 1.1 reads yes, no, on and off as booleans: `copy: maybe` and
    # `copy: no` would be read as opposite things. Only true/false are.
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"))
    # YAML 1.1 needs a dot in a float: 1e-4 would be text. It is a number to anyone else.
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
    return Loader


def load_yaml(text: str, *, where: str = "YAML") -> Any:
    """Parse YAML as parameter files are read: booleans are ``true``/``false`` only.

    ``yes``, ``no``, ``on``, ``off`` and ``maybe`` stay text (so a boolean
    parameter given one of them is refused, not guessed), and ``1e-4`` is a
    number.

    Raises
    ------
    DataError
        When the text is not valid YAML (the message starts with ``where``).
    """
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise DataError(f"{where}: not valid YAML ({exc})") from None
