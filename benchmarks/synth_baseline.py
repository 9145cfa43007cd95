"""How separable are the synthetic classes to a simple baseline?

Renders a preset (or reads collections already rendered), cuts every clip
into the study's blocks (the paper's 2 s blocks with a 1 s hop, kept or
dropped by the study's own loudness step, with the block ids the study gives
them), describes each block by the mean and standard deviation of its MFCCs
(c1-c19 means, c0-c19 standard deviations: invariant to the block's level, as
after the study's loudness normalisation), balances the classes with the
study's :func:`crowdnb.dataset.balance`, and trains a standardised logistic
regression under the study's two splits (:mod:`crowdnb.splits`):

* random split: 80/20 of the blocks, stratified by label (blocks of one clip
  on both sides: the paper's first experiment);
* clip split: about 20 % of each class's clips held out whole (the paper's
  second experiment).

Each split is repeated over several seeds and averaged. As in the study, one
seed balances the classes and draws both splits; the seeds are ``--seed``,
``--seed + 1``, ... so the first repeat sees exactly the training and test
blocks of a study run with ``seed: SEED`` (which also renders its corpus with
that seed). With the default ``class_overlap`` the clip split should be
clearly harder than the random split and neither at chance nor at 100 %.

Usage::

    python benchmarks/synth_baseline.py                      # paper preset, seed 0
    python benchmarks/synth_baseline.py --set class_overlap=0.6
    python benchmarks/synth_baseline.py --collections DIR    # DIR/emotions, DIR/football
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crowdnb.audio import load_clip, normalised_blocks
from crowdnb.clips import read_clips
from crowdnb.config import PreprocessConfig
from crowdnb.dataset import balance, block_id
from crowdnb.errors import AudioError, DataError
from crowdnb.splits import clip_split, random_split
from crowdnb.synth import synthesize
from crowdnb.synth.presets import parse_override

AUDIO = PreprocessConfig().audio  # the study's defaults: 44.1 kHz, 2 s blocks, 1 s hop, -23 LUFS
HOP = 512
TEST_FRACTION = 0.2  # the study's default test_fraction (paper: 20 %)
FEATURES = [f"m{i}" for i in range(1, 20)] + [f"s{i}" for i in range(20)]
SPLITS = {"random split": random_split, "clip split": clip_split}


def block_features(table: pd.DataFrame) -> pd.DataFrame:
    """One row per block, as in the study's block table, with 39 MFCC statistics.

    The blocks are those :func:`crowdnb.dataset.preprocess` makes of ``table``
    with the default settings, in its order: each clip loaded at the study's
    rate and cut by :func:`crowdnb.audio.normalised_blocks`, ``kept`` False
    where the loudness step drops the block, and no block for a clip that
    cannot be read. Columns: ``block_id``, ``clip_id``, ``event_id``,
    ``label``, ``start_s``, ``end_s``, ``kept``, ``image_path`` (empty: no
    images), then :data:`FEATURES` (NaN for dropped blocks).
    """
    rows = []
    per_block = int(round(AUDIO.block_s * AUDIO.sr / HOP))
    for clip in table.itertuples():
        try:
            y, sr = load_clip(clip.path, sr=AUDIO.sr)
        except AudioError as exc:  # preprocess reports the clip as unusable: no blocks
            print(f"skipping {clip.clip_id}: {exc}", file=sys.stderr)
            continue
        event_id = getattr(clip, "event_id", clip.clip_id)
        mfcc = None
        for block in normalised_blocks(y, sr, config=AUDIO):
            stats = dict.fromkeys(FEATURES, np.nan)
            if block.kept:
                if mfcc is None:
                    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=2048,
                                                hop_length=HOP)
                a = int(round(block.start_s * sr / HOP))
                seg = mfcc[:, a:a + per_block]
                stats = {**{f"m{i}": v for i, v in enumerate(seg[1:].mean(axis=1), start=1)},
                         **{f"s{i}": v for i, v in enumerate(seg.std(axis=1))}}
            # the study's block id (crowdnb.dataset names blocks this way)
            rows.append({"block_id": block_id(clip.clip_id, block.index),
                         "clip_id": clip.clip_id, "event_id": event_id, "label": clip.label,
                         "start_s": block.start_s, "end_s": block.end_s, "kept": block.kept,
                         "image_path": "", **stats})
    columns = ["block_id", "clip_id", "event_id", "label", "start_s", "end_s", "kept",
               "image_path", *FEATURES]
    return pd.DataFrame(rows, columns=columns).astype({"kept": bool})


def fit_score(train: pd.DataFrame, test: pd.DataFrame) -> tuple[float, float]:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    model.fit(train[FEATURES].to_numpy(), train["label"].to_numpy())
    pred = model.predict(test[FEATURES].to_numpy())
    truth = test["label"].to_numpy()
    return float(np.mean(pred == truth)), float(balanced_accuracy_score(truth, pred))


def evaluate(blocks: pd.DataFrame, *, seeds: list[int]) -> dict:
    """Per split: mean and sd of the accuracy and mean balanced accuracy over ``seeds``.

    For each seed, as the study does: :func:`crowdnb.dataset.balance` with
    that seed, then both splits of the balanced blocks with the same seed.
    A split the study cannot make (e.g. a class with one clip) is None.
    """
    scores: dict[str, list[tuple[float, float]] | None] = {name: [] for name in SPLITS}
    n_blocks = 0
    for seed in seeds:
        balanced, report = balance(blocks, seed=seed)
        n_blocks = int(report["after"].sum())
        for name, split in SPLITS.items():
            if scores[name] is None:
                continue
            try:
                train, test = split(balanced, test_fraction=TEST_FRACTION, seed=seed)
            except DataError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                scores[name] = None
                continue
            scores[name].append(fit_score(train, test))
    out: dict = {"blocks": n_blocks}
    for name, pairs in scores.items():
        if pairs is None:
            out[name] = None
        else:
            accs, baccs = np.array(pairs).T
            out[name] = (float(np.mean(accs)), float(np.std(accs)), float(np.mean(baccs)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the corpus and of the first balancing and splits (default 0)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--repeats", type=int, default=10,
                    help="seeds per split: SEED, SEED+1, ... (default 10)")
    ap.add_argument("--collections", default=None,
                    help="folder with emotions/ and football/ already rendered")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    overrides = dict(parse_override(s) for s in args.set)
    seeds = [args.seed + r for r in range(args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.collections) if args.collections else Path(tmp)
        if not args.collections:
            t0 = time.perf_counter()
            synthesize(root, preset=args.preset, seed=args.seed, workers=args.workers,
                       progress=False, **overrides)
            print(f"rendered preset {args.preset!r} seed {args.seed} "
                  f"{overrides or ''} in {time.perf_counter() - t0:.1f} s")
        print(f"{'study':10s} {'split':13s} {'accuracy':>10s} {'± sd':>6s} {'bal. acc':>9s} "
              f"{'chance':>7s} {'blocks':>7s}")
        for study in ("emotions", "football"):
            folder = root / study
            if not (folder / "clips.csv").exists():
                continue
            table = read_clips(folder)
            blocks = block_features(table)
            res = evaluate(blocks, seeds=seeds)
            chance = 1.0 / table["label"].nunique()
            for split in SPLITS:
                if res[split] is None:
                    print(f"{study:10s} {split:13s} {'n/a':>10s} {'':6s} {'n/a':>9s} "
                          f"{chance:7.2f} {res['blocks']:7d}")
                    continue
                m, s, b = res[split]
                print(f"{study:10s} {split:13s} {m:10.3f} {s:6.3f} {b:9.3f} {chance:7.2f} "
                      f"{res['blocks']:7d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
