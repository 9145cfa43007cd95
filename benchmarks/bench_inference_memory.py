"""Peak resident memory of ``crowdnb predict`` and ``crowdnb listen`` on a long recording.

The target: a 3 h mono 16-bit 44.1 kHz WAV (952 MB) classified by either
command in under 1 GB of resident memory, whatever the network. Both read a
file in pieces (:class:`crowdnb.audio.ClipStream`); what is left is the
interpreter with torch, the network's weights (AlexNet's: 228 MB) and one
batch of activations.

1. Writes a long WAV into a temporary folder (default 3 h, ``--minutes`` to
   change): one minute of crowd-like sound (band-passed noise textures with
   level envelopes, changing every 5 s, and 3 s of digital silence, whose
   blocks are dropped) written over and over, so that the parent process
   never holds more than that minute.
2. Uses ``--model``, or makes an untrained but valid checkpoint of
   ``--network`` in the same folder (in a child process; the memory a
   network needs does not depend on its weights).
3. Runs, each as a child process of this one, ``python -c "import
   crowdnb.predict"`` (the baseline: the interpreter, torch, numpy, scipy,
   pandas), ``crowdnb predict --model M FILE`` and ``crowdnb listen --model M
   FILE``, output thrown away, and reads each one's peak resident set size
   from :func:`os.wait4` (``ru_maxrss``).

This process imports neither torch nor crowdnb: Linux starts a child's
``ru_maxrss`` from its parent's peak (it is copied when the child execs), so
a large parent would raise every figure below.

Prints one line per command: its peak, its fraction of the limit, and what it
adds to the baseline; then a result line. Exits 1 when a command fails or
goes over the limit.

Run: ``python benchmarks/bench_inference_memory.py [--minutes 180] [--model PATH |
--network alexnet] [--limit-mb 1000]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

SR = 44100
TEXTURES = [  # (band-pass of the texture in Hz, amplitude-modulation rate in Hz)
    ((300.0, 4000.0), 2.0),
    ((150.0, 2500.0), 5.0),
    ((200.0, 6000.0), 0.3),
]

#: Makes an untrained checkpoint (argv: path, network), as the tests' fixtures do.
MAKE_CHECKPOINT = """
import sys, torch
from crowdnb.config import PreprocessConfig
from crowdnb.model import CHECKPOINT_FORMAT, build_model, image_normalization
path, network = sys.argv[1:]
model, info = build_model(3, network=network, weights="none", seed=0)
torch.save({"format": CHECKPOINT_FORMAT, "network": info["network"],
            "architecture": info["architecture"], "state_dict": model.state_dict(),
            "classes": ["anger", "joy", "neutral"], "normalization": image_normalization(network),
            "image_size": [227, 227], "preprocessing": PreprocessConfig().to_dict(),
            "model_info": info}, path)
"""


def crowd_minute(*, seed: int = 0, segment_s: float = 5.0) -> np.ndarray:
    """One minute of textures changing every ``segment_s``, with 3 s of silence at 20 s, float32."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(int(60 / segment_s)):
        (low, high), rate = TEXTURES[k % len(TEXTURES)]
        sos = scipy.signal.butter(2, [low, high], btype="bandpass", fs=SR, output="sos")
        n = int(segment_s * SR)
        t = np.arange(n) / SR
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        parts.append(scipy.signal.sosfilt(sos, rng.standard_normal(n)) * envelope * 0.1
                     + 0.01 * rng.standard_normal(n))
    y = np.concatenate(parts)
    y[20 * SR:23 * SR] = 0.0  # digital silence: blocks the loudness step drops
    return y.astype(np.float32)


def write_long_wav(path: Path, minutes: float) -> None:
    """A mono 16-bit WAV of ``minutes``, written a minute at a time."""
    minute = crowd_minute()
    left = int(round(minutes * 60 * SR))
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as out:
        while left > 0:
            out.write(minute[:left])
            left -= min(left, minute.size)


def peak_rss(command: list[str], log: Path) -> tuple[int, float, int]:
    """(peak resident set size in bytes, wall seconds, exit status) of a child running ``command``.

    Its standard output is thrown away, its standard error goes to ``log``.
    """
    began = time.perf_counter()
    with open(log, "wb") as err:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        # wait4 reaps the child itself: the rusage of this child alone.
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait for it
    if child.returncode != 0:
        print(f"{' '.join(command)} failed ({child.returncode}):\n{log.read_text(errors='replace')}",
              file=sys.stderr)
    return usage.ru_maxrss * 1024, wall, child.returncode  # Linux counts ru_maxrss in KiB


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=180.0, help="length of the WAV, min")
    parser.add_argument("--model", type=Path,
                        help="a checkpoint (default: an untrained one of --network, made here)")
    parser.add_argument("--network", default="alexnet",
                        help="network of the checkpoint made here (default alexnet, the paper's)")
    parser.add_argument("--limit-mb", type=float, default=1000.0,
                        help="the target for each command's peak, MB (1 MB = 10^6 bytes)")
    parser.add_argument("--keep", type=Path, help="write the WAV (and checkpoint) here and keep them")
    args = parser.parse_args(argv)
    limit = args.limit_mb * 1e6

    with tempfile.TemporaryDirectory(prefix="bench-inference-memory-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        wav = folder / f"crowd_{args.minutes:g}min.wav"
        t0 = time.perf_counter()
        write_long_wav(wav, args.minutes)
        written_s = time.perf_counter() - t0
        checkpoint = args.model
        if checkpoint is None:
            checkpoint = folder / f"{args.network}_untrained.pt"
            subprocess.run([sys.executable, "-c", MAKE_CHECKPOINT, str(checkpoint), args.network],
                           check=True)
        crowdnb = [sys.executable, "-m", "crowdnb.cli"]
        runs = {
            "baseline: import crowdnb.predict": [sys.executable, "-c", "import crowdnb.predict"],
            "crowdnb predict": [*crowdnb, "predict", "--model", str(checkpoint), str(wav)],
            "crowdnb listen": [*crowdnb, "listen", "--model", str(checkpoint), str(wav)],
        }
        results = {name: peak_rss(command, folder / f"stderr_{i}.txt")
                   for i, (name, command) in enumerate(runs.items())}
        wav_bytes = wav.stat().st_size

    made = checkpoint if args.model else f"untrained {args.network} (made here)"
    print(f"{args.minutes:g} min of mono 16-bit audio at {SR} Hz ({wav_bytes / 1e6:.0f} MB, written "
          f"in {written_s:.0f} s); checkpoint {made}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"limit: {limit / 1e6:.0f} MB of peak resident memory per command (ru_maxrss from os.wait4)")
    print(f"{'command':<36}{'peak MB':>9}{'of limit':>10}{'over baseline MB':>18}{'wall s':>9}")
    base = results["baseline: import crowdnb.predict"][0]
    failed = []
    for name, (peak, wall, status) in results.items():
        extra = "" if name.startswith("baseline") else f"{(peak - base) / 1e6:>18.0f}"
        print(f"{name:<36}{peak / 1e6:>9.0f}{peak / limit:>10.0%}{extra:>18}{wall:>9.0f}"
              + ("  FAILED" if status else ""))
        if status or (not name.startswith("baseline") and peak >= limit):
            failed.append(name)
    worst = max(results[name][0] for name in ("crowdnb predict", "crowdnb listen"))
    print(f"result: the larger peak is {worst / 1e6:.0f} MB, {worst / limit:.0%} of the "
          f"{limit / 1e6:.0f} MB limit"
          + (f"; over it or failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
