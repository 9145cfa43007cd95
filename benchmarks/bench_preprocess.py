"""Throughput of the sound-to-spectrogram chain, stage by stage.

Generates a fixed synthetic set (by default 60 s of noise-like crowd texture
per class, three classes, 44.1 kHz), then times every stage of
:func:`crowdnb.dataset.preprocess` on it and prints blocks per second: load,
band-limit, split, loudness, mel, image+resize, PNG write, the chain, and
``preprocess`` end to end (fresh, then cached). Finally it compares the image
stage with the naive approach of drawing each spectrogram in a matplotlib
figure and saving it with ``savefig``.

Run: ``python benchmarks/bench_preprocess.py [--seconds 60] [--naive-blocks 30]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal
import soundfile as sf

from crowdnb.audio import band_limit, load_clip, normalize_loudness, split_blocks
from crowdnb.clips import write_clips
from crowdnb.dataset import png_bytes, preprocess
from crowdnb.files import sha256_file
from crowdnb.spectrogram import colormap_palette, mel_psd_db, render_image

SR = 44100
CLASSES = {  # label: (band-pass of the texture in Hz, amplitude-modulation rate in Hz)
    "joy": ((300.0, 4000.0), 2.0),
    "anger": ((150.0, 2500.0), 5.0),
    "neutral": ((200.0, 6000.0), 0.3),
}


def make_collection(folder: Path, seconds: float, *, seed: int = 0, clip_s: float = 20.0):
    """Write a collection of noise-like clips: band-passed noise with a level envelope."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, ((low, high), rate) in CLASSES.items():
        sos = scipy.signal.butter(2, [low, high], btype="bandpass", fs=SR, output="sos")
        for k in range(int(np.ceil(seconds / clip_s))):
            n = int(min(clip_s, seconds - k * clip_s) * SR)
            t = np.arange(n) / SR
            envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
            y = scipy.signal.sosfilt(sos, rng.standard_normal(n)) * envelope * 0.1
            y += 0.01 * rng.standard_normal(n)  # broadband floor
            path = folder / f"{label}_{k}.wav"
            sf.write(path, y.astype(np.float32), SR, subtype="PCM_16")
            rows.append({"clip_id": f"{label}_{k}", "event_id": f"{label}_event", "label": label,
                         "path": path.name, "duration_s": n / SR, "sample_rate": SR,
                         "channels": 1, "source": "synthetic", "seed": seed, "params": "{}",
                         "licence": "CC0", "attribution": "bench_preprocess.py",
                         "sha256": sha256_file(path)})
    write_clips(pd.DataFrame(rows), folder)
    return [folder / r["path"] for r in rows]


def time_stages(paths, png_dir: Path) -> tuple[dict, dict, int, list]:
    """Wall and CPU seconds of each stage over all clips, the block count, some spectrograms."""
    names = ["load", "band-limit", "split", "loudness", "mel", "image+resize", "PNG write"]
    wall, cpu = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    n_blocks = 0
    sample = []

    def clock():
        return time.perf_counter(), time.process_time()

    def add(name, start, end):
        wall[name] += end[0] - start[0]
        cpu[name] += end[1] - start[1]

    for path in paths:
        t0 = clock()
        y, sr = load_clip(path, sr=SR)
        t1 = clock()
        y, _ = band_limit(y, sr)
        t2 = clock()
        split = split_blocks(y, sr)
        t3 = clock()
        add("load", t0, t1)
        add("band-limit", t1, t2)
        add("split", t2, t3)
        for k, block in enumerate(split.blocks):
            t0 = clock()
            out, _ = normalize_loudness(block, sr)
            t1 = clock()
            S_db = mel_psd_db(out, sr)
            t2 = clock()
            rgb = render_image(S_db)
            t3 = clock()
            (png_dir / f"{path.stem}_{k}.png").write_bytes(png_bytes(rgb))
            t4 = clock()
            add("loudness", t0, t1)
            add("mel", t1, t2)
            add("image+resize", t2, t3)
            add("PNG write", t3, t4)
            n_blocks += 1
            if len(sample) < 64:
                sample.append(S_db)
    return wall, cpu, n_blocks, sample


def naive_matplotlib(S_list, png_dir: Path) -> float:
    """Seconds per block to draw each spectrogram in a figure and savefig it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(colormap_palette("jet", 64))
    t0 = time.perf_counter()
    for k, S_db in enumerate(S_list):
        fig = plt.figure(figsize=(2.27, 2.27), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.pcolormesh(S_db, cmap=cmap, vmin=-130.0, vmax=-22.0, shading="auto")
        fig.savefig(png_dir / f"naive_{k}.png", dpi=100)
        plt.close(fig)
    return (time.perf_counter() - t0) / len(S_list)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per class, s")
    parser.add_argument("--naive-blocks", type=int, default=30,
                        help="blocks drawn the naive matplotlib way")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        tmp = Path(tmp)
        (tmp / "collection").mkdir()
        (tmp / "png").mkdir()
        paths = make_collection(tmp / "collection", args.seconds)
        # Warm-up: imports, filter design and mel matrix caches.
        preprocess(tmp / "collection", tmp / "warm", progress=False)

        wall, cpu, n_blocks, sample = time_stages(paths, tmp / "png")
        end_to_end = {}
        for name in ("preprocess(), fresh", "preprocess(), cached"):
            t0 = time.perf_counter(), time.process_time()
            blocks = preprocess(tmp / "collection", tmp / "out", progress=False).blocks
            end_to_end[name] = (time.perf_counter() - t0[0], time.process_time() - t0[1])
            assert len(blocks) == n_blocks

        naive = naive_matplotlib(sample[: args.naive_blocks], tmp / "png")
        ours = (wall["image+resize"] + wall["PNG write"]) / n_blocks

    print(f"{len(paths)} clips, {args.seconds:g} s per class, {n_blocks} blocks of 2 s at "
          f"{SR} Hz; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("(wall: elapsed time; CPU: this process's CPU time, which other jobs on the machine "
          "inflate less)")
    print(f"{'stage':<28}{'ms/block':>10}{'blocks/s':>10}{'CPU blocks/s':>14}")

    def row(name, seconds, cpu_seconds):
        print(f"{name:<28}{1000 * seconds / n_blocks:>10.2f}{n_blocks / seconds:>10.1f}"
              f"{n_blocks / cpu_seconds:>14.1f}")

    for stage in wall:
        row(stage, wall[stage], cpu[stage])
    row("chain (sum of stages)", sum(wall.values()), sum(cpu.values()))
    for name, (seconds, cpu_seconds) in end_to_end.items():
        row(name, seconds, cpu_seconds)
    print()
    print(f"image + PNG, this library : {1000 * ours:8.2f} ms/block")
    print(f"image + PNG, matplotlib   : {1000 * naive:8.2f} ms/block "
          f"(pcolormesh + savefig, {min(args.naive_blocks, len(sample))} blocks)")
    print(f"ratio (matplotlib / library): {naive / ours:.1f}x")


if __name__ == "__main__":
    main()
