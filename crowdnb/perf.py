"""How fast training could go here: the machine's matrix-multiply limit and AlexNet's cost.

A training's speed means little alone; set against what the hardware can do,
it says whether there is room left. :func:`matmul_rate` measures the
sustained rate of a large matrix product with torch on this machine, in the
arithmetic asked for (float32, or bfloat16 where the CPU or GPU has it);
:func:`training_flops_per_image` counts, with torch's FLOP counter, what one
training step of the network costs per image (forward and backward);
:func:`achieved_fraction` puts a training's images per second against the
limit. ``benchmarks/bench_train.py`` and the reproducibility chapter use them.
:func:`compile_numba_caches` compiles librosa's cached numba code once, at
installation, before processes side by side would.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from .errors import ParameterError

__all__ = ["matmul_rate", "training_flops_per_image", "achieved_fraction", "compile_numba_caches",
           "DTYPES"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(dtype: str = "float32", *, n: int = 2048, min_seconds: float = 0.5,
                repeats: int = 3, device: str | torch.device = "cpu") -> float:
    """Sustained rate of an ``n`` x ``n`` matrix product, GFLOP/s (best of ``repeats``).

    Each repeat multiplies for at least ``min_seconds`` after one warm-up
    product, with torch's current thread count; a product counts ``2 n^3``
    floating-point operations. The best repeat is kept, since other work on
    the machine only ever slows one down.
    """
    if dtype not in DTYPES:
        raise ParameterError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if n < 16 or min_seconds <= 0 or repeats < 1:
        raise ParameterError(f"need n >= 16, min_seconds > 0 and repeats >= 1 (got {n}, "
                             f"{min_seconds}, {repeats})")
    dev = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(dev, DTYPES[dtype])
    b = torch.randn(n, n, generator=generator).to(dev, DTYPES[dtype])
    torch.mm(a, b)
    _sync(dev)
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b)
            count += 1
            _sync(dev)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, 2.0 * n**3 * count / elapsed / 1e9)
    return best


def training_flops_per_image(n_classes: int = 3, *, batch_size: int = 10,
                             size: tuple[int, int] = (227, 227), network: str = "alexnet",
                             top: bool = False) -> float:
    """FLOPs of one training step of a study network, per image (forward and backward).

    The forward pass is counted by :class:`torch.utils.flop_counter.FlopCounterMode`
    on one minibatch of random images (convolutions and matrix products,
    which are nearly all of the arithmetic; a multiply-add counts 2); the
    backward pass is taken as twice the forward (the gradients of the inputs
    and of the weights, each as costly as the forward product), since torch's
    counter counts a grouped convolution's backward as a dense one (16 times
    EfficientNet-Lite0's real cost). With ``top``, the step of
    ``fine_tune="top"``: the trained layers on the frozen ones' outputs.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from .model import build_model
    from .networks import NETWORKS

    model, _ = build_model(n_classes, network=network, weights="none", seed=0)
    x = torch.randn(batch_size, 3, *size, generator=torch.Generator().manual_seed(0))
    if top:
        frozen, model = NETWORKS[network].trunk(model)
        with torch.no_grad():
            x = frozen.eval()(x)
    model.train()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return 3.0 * float(counter.get_total_flops()) / batch_size


def achieved_fraction(images_per_s: float, flops_per_image: float, limit_gflops: float) -> dict[str, Any]:
    """A training's arithmetic rate and its share of the machine's limit.

    Returns
    -------
    dict
        ``gflops`` (achieved GFLOP/s) and ``fraction`` (of ``limit_gflops``).
    """
    gflops = images_per_s * flops_per_image / 1e9
    return {"gflops": gflops, "fraction": gflops / limit_gflops if limit_gflops > 0 else float("nan")}


def compile_numba_caches() -> None:
    """Compile the cached numba code of librosa that crowdnb reaches, in this one process.

    librosa keeps its numba-compiled functions (onset peak picking, pitch,
    zero crossings, the constant-Q transform's helpers) in an on-disk cache.
    Processes that compile the same function at once can leave that cache
    inconsistent (numba writes its index and its code files separately), and
    every later process that loads it then crashes: a fresh clone's
    ``make test`` did, with a segmentation fault in librosa's ``peak_pick``
    in every test worker that reached the crowd statistics, after the smoke
    study's chapter 1 and a realism test had compiled it side by side.
    ``make`` calls this once after installing, and the test session before
    its workers start; with the cache written, it only loads it.
    """
    import numpy as np

    from .config import SpectrogramConfig
    from .crowdstats import block_statistics
    from .spectrogram import block_spectrum

    sr = 44100
    y = np.random.default_rng(0).standard_normal(2 * sr) * np.hanning(2 * sr)
    block_statistics(y, sr)
    block_spectrum(y, sr, spectrogram=SpectrogramConfig(freq_scale="cqt"))
