"""How separable are the synthetic classes to a simple baseline?

Renders a preset (or reads collections already rendered), cuts every clip
into the paper's 2 s blocks with a 1 s hop, describes each block by the mean
and standard deviation of its MFCCs (c1-c19 means, c0-c19 standard
deviations: invariant to the block's level, as after the study's loudness
normalisation), balances the classes by dropping random blocks, and trains a
standardised logistic regression under two splits:

* random split: 80/20 of the blocks, stratified by label (blocks of one clip
  on both sides: the paper's first experiment);
* clip split: about 20 % of each class's clips held out whole (the paper's
  second experiment).

Each split is repeated over several seeds and averaged. With the default
``class_overlap`` the clip split should be clearly harder than the random
split and neither at chance nor at 100 %.

Usage::

    python benchmarks/synth_baseline.py                      # paper preset, seed 0
    python benchmarks/synth_baseline.py --set class_overlap=0.6
    python benchmarks/synth_baseline.py --collections DIR    # DIR/emotions, DIR/football
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crowdnb.clips import read_clips
from crowdnb.synth import synthesize
from crowdnb.synth.presets import parse_override

BLOCK_S, HOP_S, HOP = 2.0, 1.0, 512


def block_features(table: pd.DataFrame) -> pd.DataFrame:
    """One row per block: clip, label, and 39 MFCC statistics."""
    rows = []
    for clip in table.itertuples():
        y, sr = sf.read(clip.path, dtype="float32", always_2d=False)
        if y.ndim > 1:
            y = y.mean(axis=1)
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=2048, hop_length=HOP)
        n_blocks = int((len(y) - BLOCK_S * sr) // (HOP_S * sr)) + 1
        per_block = int(round(BLOCK_S * sr / HOP))
        for b in range(max(n_blocks, 0)):
            a = int(round(b * HOP_S * sr / HOP))
            seg = mfcc[:, a:a + per_block]
            rows.append({"clip_id": clip.clip_id, "label": clip.label,
                         **{f"m{i}": v for i, v in enumerate(seg[1:].mean(axis=1), start=1)},
                         **{f"s{i}": v for i, v in enumerate(seg.std(axis=1))}})
    return pd.DataFrame(rows)


def balance(blocks: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = blocks["label"].value_counts().min()
    parts = [g.iloc[rng.permutation(len(g))[:n]] for _, g in blocks.groupby("label")]
    return pd.concat(parts).sort_index()


def fit_score(train: pd.DataFrame, test: pd.DataFrame) -> tuple[float, float]:
    cols = [c for c in train.columns if c[0] in "ms" and c[1:].isdigit()]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    model.fit(train[cols].to_numpy(), train["label"].to_numpy())
    pred = model.predict(test[cols].to_numpy())
    truth = test["label"].to_numpy()
    return float(np.mean(pred == truth)), float(balanced_accuracy_score(truth, pred))


def random_split(blocks: pd.DataFrame, rng: np.random.Generator):
    test_idx = []
    for _, g in blocks.groupby("label"):
        k = int(round(0.2 * len(g)))
        test_idx += list(g.index[rng.permutation(len(g))[:k]])
    test = blocks.loc[test_idx]
    return blocks.drop(index=test_idx), test


def clip_split(blocks: pd.DataFrame, rng: np.random.Generator):
    test_clips = []
    for _, g in blocks.groupby("label"):
        clips = np.array(sorted(g["clip_id"].unique()))
        k = min(max(1, int(round(0.2 * len(clips)))), len(clips) - 1)
        test_clips += list(clips[rng.permutation(len(clips))[:k]])
    mask = blocks["clip_id"].isin(test_clips)
    return blocks[~mask], blocks[mask]


def evaluate(blocks: pd.DataFrame, *, repeats: int) -> dict:
    out = {}
    for name, split in (("random split", random_split), ("clip split", clip_split)):
        accs, baccs = [], []
        for r in range(repeats):
            rng = np.random.default_rng(1000 + r)
            balanced = balance(blocks, rng)
            train, test = split(balanced, rng)
            acc, bacc = fit_score(train, test)
            accs.append(acc)
            baccs.append(bacc)
        out[name] = (float(np.mean(accs)), float(np.std(accs)), float(np.mean(baccs)))
    out["blocks"] = len(balance(blocks, np.random.default_rng(0)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--repeats", type=int, default=10, help="seeds per split (default 10)")
    ap.add_argument("--collections", default=None,
                    help="folder with emotions/ and football/ already rendered")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    overrides = dict(parse_override(s) for s in args.set)
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
            res = evaluate(blocks, repeats=args.repeats)
            chance = 1.0 / table["label"].nunique()
            for split in ("random split", "clip split"):
                m, s, b = res[split]
                print(f"{study:10s} {split:13s} {m:10.3f} {s:6.3f} {b:9.3f} {chance:7.2f} "
                      f"{res['blocks']:7d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
