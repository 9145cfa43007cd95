"""The ``synthetic`` source: the embedded default corpus, rendered offline.

A thin adapter over :func:`crowdnb.synth.synthesize`, which writes two
collections (``emotions/`` and ``football/``) with their clips tables and
cards; this adds the collection report every source writes and returns a
:class:`~crowdnb.sources.Collection` of the emotion clips that names both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..clips import read_clips
from ..errors import DataError, ParameterError
from ..files import read_table, stable_hash, write_table
from ..provenance import source_hash
from ._common import (COLLECTED, REPORT_FILE, Collection, naming, open_collection, place_file,
                      report_frame)

__all__ = ["collect_synthetic"]


def collect_synthetic(
    out_dir: str | os.PathLike,
    *,
    preset: str = "paper",
    seed: int = 0,
    study: str = "both",
    workers: int | None = None,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    existing: str = "refuse",
    **overrides,
) -> Collection:
    """Render the synthetic corpus into ``out_dir`` and return its collections.

    Parameters
    ----------
    out_dir : path-like
        Receives ``emotions/`` (joy, anger, neutral) and ``football/`` (goal,
        no_goal), each a collection with ``clips.csv``, ``card.md``,
        ``collection_report.csv`` and ``audio/``.
    preset : str
        The synthesizer's preset (``"paper"``, ``"diverse"`` or ``"smoke"``:
        :data:`crowdnb.synth.PRESETS`).
    seed : int >= 0
        Seed of the synthesis.
    study : str
        ``"emotions"``, ``"football"`` or ``"both"``.
    workers : int or None
        Processes rendering clips (see :func:`crowdnb.synth.synthesize`).
    progress : bool
        Show a progress bar.
    cache_dir : path-like or None
        A cache shared between runs: the corpus is rendered once into
        ``cache_dir/synth/<key>/`` (the key hashes the preset, seed, study,
        every synthesizer parameter and the synthesizer's code) and hard-linked
        into ``out_dir``; the files are the same bytes either way.
    existing : {"refuse", "replace"}
        When ``out_dir`` already holds the corpus: stop (default) or render
        it afresh. (An update has no meaning for a corpus rendered whole.)
    **overrides
        Synthesizer parameters (see :func:`crowdnb.synth.synthesize`).

    Returns
    -------
    Collection
        The emotion study's collection (the football study's when it is the
        only one rendered); ``collections`` maps each rendered study to its
        folder.
    """
    if existing == "update":
        raise ParameterError("existing: the synthetic source renders a whole corpus; pass "
                             "--replace to render it again")
    out_dir = Path(out_dir)
    render = dict(preset=preset, seed=seed, study=study, workers=workers, progress=progress,
                  overrides=overrides)
    with contextlib.ExitStack() as stack:
        # every study's folder is checked before anything is rendered, and is
        # replaced only once both are complete
        drafts = {name: stack.enter_context(open_collection(out_dir / name, existing))
                  for name in _studies(study)}
        if cache_dir is not None:
            corpus = _cached_render(Path(cache_dir), **render)
        else:
            corpus = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix=f".{out_dir.name}.render-", dir=out_dir.parent)))
            try:
                _render(corpus, **render)
            except DataError as exc:  # name the files as they would be in out_dir
                raise DataError(str(exc).replace(str(corpus), str(out_dir))) from None
        for name, draft in drafts.items():
            _link_tree(corpus / name, draft.work)
            _write_report(draft.work)
        for draft in drafts.values():
            draft.install()
    collections = {name: out_dir / name for name in drafts}
    name = "emotions" if "emotions" in collections else next(iter(collections))
    folder = collections[name]
    return Collection(clips=read_clips(folder), folder=folder,
                      report=read_table(folder / REPORT_FILE, what="collection report"),
                      collections=collections)


def _studies(study: str) -> tuple[str, ...]:
    from ..synth import STUDIES

    return STUDIES if study == "both" else (study,)


def _render(out_dir: Path, *, preset, seed, study, workers, progress, overrides) -> None:
    from ..synth import synthesize

    synthesize(out_dir, preset=preset, seed=seed, study=study, workers=workers,
               progress=progress, **overrides)


def _write_report(folder: Path) -> None:
    """The collection report of a rendered corpus: every clip ``collected``, "synthesized"."""
    table = read_clips(folder)
    with naming(folder / REPORT_FILE):
        write_table(folder / REPORT_FILE, report_frame(
            [{"item": clip_id, "status": COLLECTED, "reason": "synthesized"}
             for clip_id in table["clip_id"]]))


def _cached_render(cache_dir: Path, *, preset, seed, study, workers, progress, overrides) -> Path:
    """The rendered corpus in the shared cache, rendering it first if needed."""
    from ..synth import make_params

    params = make_params(preset, **overrides)
    key = stable_hash({"preset": preset if isinstance(preset, str) else "custom", "seed": int(seed),
                       "study": study, "params": params.to_dict(),
                       "code": source_hash("crowdnb.synth", "crowdnb.clips")})
    folder = cache_dir / "synth" / key
    if not (folder / ".complete").is_file():
        partial = folder.with_name(f".{key}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            _render(partial, preset=preset, seed=seed, study=study, workers=workers,
                    progress=progress, overrides=overrides)
            (partial / ".complete").write_text(key + "\n")
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(partial, folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return folder


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of ``source`` into ``target`` (copies across file systems)."""
    for path in sorted(source.rglob("*")):
        # the report is written afresh (a cache may hold one from an older version)
        if path.is_file() and path.name not in (".complete", REPORT_FILE):
            place_file(path, target / path.relative_to(source), link=True)
