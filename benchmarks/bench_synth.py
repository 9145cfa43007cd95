"""Rendering speed of the crowd-scene synthesizer: real-time factor per class and overall.

The real-time factor (RTF) is rendering time divided by audio duration (lower
is faster; 0.05 means twenty times faster than real time). Per-class figures
render every clip of the preset in this process, one after the other; the
overall line times :func:`crowdnb.synth.synthesize` itself (with its worker
processes and file writing) on the same preset. The CPU column (this
process's CPU time) is the fairer figure on a machine shared with other jobs.

Usage::

    python benchmarks/bench_synth.py                 # paper preset, seed 0
    python benchmarks/bench_synth.py --preset smoke --workers 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from crowdnb.synth import make_params, plan_clips, render_clip, synthesize


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None,
                    help="processes for the overall run (default: one per core, at most 4)")
    ap.add_argument("--skip-serial", action="store_true",
                    help="only time the overall run")
    args = ap.parse_args(argv)
    params = make_params(args.preset)
    print(f"preset {args.preset!r}, seed {args.seed}, {os.cpu_count()} cores")
    print(f"{'study':9s} {'class':8s} {'clips':>5s} {'audio s':>8s} {'render s':>9s} "
          f"{'RTF':>7s} {'x real time':>11s} {'CPU s':>7s}")
    total_audio = total_time = total_cpu = 0.0
    if not args.skip_serial:
        for study in ("emotions", "football"):
            tasks = plan_clips(params, seed=args.seed, study=study)
            for label in dict.fromkeys(t["label"] for t in tasks):
                mine = [t for t in tasks if t["label"] == label]
                t0, c0 = time.perf_counter(), time.process_time()
                for task in mine:
                    y, _ = render_clip(task, params, seed=args.seed)
                    assert np.all(np.isfinite(y))
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - c0
                audio = sum(t["duration_s"] for t in mine)
                total_audio += audio
                total_time += elapsed
                total_cpu += cpu
                print(f"{study:9s} {label:8s} {len(mine):5d} {audio:8.1f} {elapsed:9.2f} "
                      f"{elapsed / audio:7.4f} {audio / elapsed:11.1f} {cpu:7.2f}")
        print(f"{'all':9s} {'serial':8s} {'':5s} {total_audio:8.1f} {total_time:9.2f} "
              f"{total_time / total_audio:7.4f} {total_audio / total_time:11.1f} {total_cpu:7.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folders = synthesize(tmp, preset=args.preset, seed=args.seed, workers=args.workers,
                             progress=False)
        elapsed = time.perf_counter() - t0
        import pandas as pd

        audio = sum(pd.read_csv(f / "clips.csv")["duration_s"].sum() for f in folders.values())
    label = f"{args.workers or min(4, os.cpu_count() or 1)} workers"
    print(f"{'all':9s} {label:8s} {'':5s} {audio:8.1f} {elapsed:9.2f} "
          f"{elapsed / audio:7.4f} {audio / elapsed:11.1f}   (synthesize, files written)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
