"""Speed of the real-time listener: throughput as a multiple of real time, and latency per window.

Renders a synthetic crowd-like stream (by default 60 s at 44.1 kHz: band-passed
noise textures with level envelopes, changing every 5 s, and 3 s of silence)
and plays it into :class:`crowdnb.listen.Listener` with a checkpoint: by
default an untrained but valid one made in a temporary folder (AlexNet's cost
does not depend on its weights), or ``--model`` (the study's trained network).

1. As fast as possible: throughput, audio seconds per wall-clock second (a
   multiple of real time), and each window's latency, which is then its
   processing time.
2. At real speed for ``--realtime-seconds``: the latency a live stream sees,
   from the arrival of a window's last sample to its label.
3. Baselines in the same run, on the same windows: the preprocessing alone
   (band limit, loudness, spectrogram image) and the bare network alone on
   the pre-rendered images, one image per forward pass as the listener runs
   it; printed as ratios against the listener.
4. The band limit per window against the whole clip's (``crowdnb predict``'s
   default, the training pipeline): how many labels agree, the largest
   probability difference, the share of image pixels that differ.

Run: ``python benchmarks/bench_listen.py [--seconds 60] [--realtime-seconds 10] [--model PATH]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf
import torch

from crowdnb.audio import load_clip, normalised_blocks
from crowdnb.config import PreprocessConfig
from crowdnb.listen import Listener, file_source, independent_blocks, listen
from crowdnb.model import (CHECKPOINT_FORMAT, build_model, image_normalization, load_checkpoint,
                           predict_proba)
from crowdnb.predict import predict_file
from crowdnb.spectrogram import spectrogram_image

SR = 44100
TEXTURES = [  # (band-pass of the texture in Hz, amplitude-modulation rate in Hz)
    ((300.0, 4000.0), 2.0),
    ((150.0, 2500.0), 5.0),
    ((200.0, 6000.0), 0.3),
]


def make_stream(path: Path, seconds: float, *, seed: int = 0, segment_s: float = 5.0) -> None:
    """Write a 16-bit WAV of textures changing every ``segment_s``, with 3 s of silence at 20 s."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(int(np.ceil(seconds / segment_s))):
        (low, high), rate = TEXTURES[k % len(TEXTURES)]
        sos = scipy.signal.butter(2, [low, high], btype="bandpass", fs=SR, output="sos")
        n = int(min(segment_s, seconds - k * segment_s) * SR)
        t = np.arange(n) / SR
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        parts.append(scipy.signal.sosfilt(sos, rng.standard_normal(n)) * envelope * 0.1
                     + 0.01 * rng.standard_normal(n))
    y = np.concatenate(parts)
    if y.size > 23 * SR:
        y[20 * SR:23 * SR] = 0.0  # digital silence: windows the loudness step drops
    sf.write(path, y.astype(np.float32), SR, subtype="PCM_16")


def make_checkpoint(path: Path, n_classes: int = 3) -> None:
    """An untrained but valid crowdnb checkpoint (PyTorch's default initialisation, seeded)."""
    model, info = build_model(n_classes, weights="none", seed=0)
    torch.save({"format": CHECKPOINT_FORMAT, "network": info["network"],
                "architecture": info["architecture"],
                "state_dict": model.state_dict(), "classes": [f"class{i}" for i in range(n_classes)],
                "normalization": image_normalization(), "image_size": [227, 227],
                "preprocessing": PreprocessConfig().to_dict(), "model_info": info}, path)


def run_listener(wav: Path, model, meta, *, realtime: bool, duration_s: float | None = None):
    """(results, wall seconds) of the listener over the file."""
    listener = Listener(model, meta, device="cpu")
    listener.warm_up()
    began = time.perf_counter()
    results = list(listen(file_source(wav, sr=listener.sr), listener, realtime=realtime,
                          duration_s=duration_s))
    return results, time.perf_counter() - began, listener


def baselines(wav: Path, model, meta, n_windows: int) -> tuple[float, float]:
    """Seconds per window of the preprocessing alone and of the network alone (batch of one)."""
    config = PreprocessConfig.from_dict(meta["preprocessing"])
    y, sr = load_clip(wav, sr=config.audio.sr)
    t0 = time.perf_counter()
    images = [spectrogram_image(b.samples, sr, config=config)
              for b in list(independent_blocks(y, sr, config=config.audio))[:n_windows] if b.kept]
    preprocessing = (time.perf_counter() - t0) / max(1, n_windows)
    tensors = [torch.from_numpy(im[None].copy()).permute(0, 3, 1, 2).contiguous() for im in images]
    predict_proba(model, tensors[0], normalization=meta["normalization"], device="cpu", batch_size=1)
    t0 = time.perf_counter()
    for tensor in tensors:
        predict_proba(model, tensor, normalization=meta["normalization"], device="cpu", batch_size=1)
    network = (time.perf_counter() - t0) / len(tensors)
    return preprocessing, network


def band_limit_difference(wav: Path, model, meta, results) -> str:
    """How predict's whole-clip band limit and the listener's per-window one differ here."""
    config = PreprocessConfig.from_dict(meta["preprocessing"])
    clip, _ = predict_file(wav, (model, meta), device="cpu")  # band_limit_per="clip"
    kept = [r for r in results if r.kept]
    agree = sum(r.label == row.label for r, row in zip(results, clip.itertuples()) if r.kept)
    classes = list(meta["classes"])
    delta = max(abs(r.probabilities[c] - getattr(row, f"prob_{c}"))
                for r, row in zip(results, clip.itertuples()) if r.kept for c in classes)
    y, sr = load_clip(wav, sr=config.audio.sr)
    whole_images = [spectrogram_image(b.samples, sr, config=config)
                    for b in normalised_blocks(y, sr, config=config.audio) if b.kept]
    window_images = [spectrogram_image(b.samples, sr, config=config)
                     for b in independent_blocks(y, sr, config=config.audio) if b.kept]
    differing = np.mean([np.mean(np.any(a != b, axis=2)) for a, b in zip(whole_images, window_images)])
    return (f"labels agree in {agree} of {len(kept)} kept windows; largest |p difference| "
            f"{delta:.2e}; image pixels that differ: {100 * differing:.2f} % on average")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio played as fast as possible, s")
    parser.add_argument("--realtime-seconds", type=float, default=10.0,
                        help="audio played at real speed, s (0: skip)")
    parser.add_argument("--baseline-windows", type=int, default=20,
                        help="windows timed for the preprocessing and network baselines")
    parser.add_argument("--model", type=Path, help="a checkpoint (default: an untrained one)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-listen-") as tmp:
        tmp = Path(tmp)
        wav = tmp / "stream.wav"
        make_stream(wav, args.seconds)
        checkpoint = args.model
        if checkpoint is None:
            checkpoint = tmp / "model.pt"
            make_checkpoint(checkpoint)
        model, meta = load_checkpoint(checkpoint, device="cpu")

        fast, fast_wall, listener = run_listener(wav, model, meta, realtime=False)
        live = []
        if args.realtime_seconds > 0:
            live, _, _ = run_listener(wav, model, meta, realtime=True,
                                      duration_s=min(args.realtime_seconds, args.seconds))
        preprocessing, network = baselines(wav, model, meta, args.baseline_windows)
        difference = band_limit_difference(wav, model, meta, fast)

    audio = listener.config.audio
    print(f"{args.seconds:g} s of audio at {listener.sr} Hz: {len(fast)} windows of {audio.block_s:g} s "
          f"every {audio.hop_s:g} s ({sum(not r.kept for r in fast)} dropped as silent); checkpoint "
          f"{checkpoint if args.model else 'untrained (made here)'}; CPU, {torch.get_num_threads()} "
          f"torch threads; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("(latency: from the arrival of a window's last sample to its label; as fast as possible, "
          "that is the window's processing time)")
    print(f"{'run':<30}{'windows':>8}{'x real time':>13}{'latency median':>16}{'95th pct':>10}")

    def row(name, results, speed):
        latencies = 1000 * np.array([r.latency_s for r in results])
        median, p95 = np.percentile(latencies, [50, 95])
        print(f"{name:<30}{len(results):>8}{speed:>13.1f}{median:>13.0f} ms{p95:>7.0f} ms")

    row("listen, as fast as possible", fast, args.seconds / fast_wall)
    if live:
        row("listen, at real speed", live, 1.0)
    per_window = fast_wall / len(fast)
    print()
    print(f"listener, wall time per window      : {1000 * per_window:8.1f} ms")
    print(f"baseline: preprocessing alone       : {1000 * preprocessing:8.1f} ms/window")
    print(f"baseline: network alone (batch 1)   : {1000 * network:8.1f} ms/window "
          f"({audio.hop_s / network:.1f} x real time)")
    print(f"ratio (listener / network alone)    : {per_window / network:.2f}x")
    print(f"ratio (listener / preprocessing + network): {per_window / (preprocessing + network):.2f}x")
    print()
    print(f"band limit per window vs whole clip: {difference}")


if __name__ == "__main__":
    main()
