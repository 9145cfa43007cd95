"""The networks' speed in NCHW against channels-last (NHWC) memory layout, on this machine.

A network trains in channels-last in float32 where its registry entry says so
(:attr:`crowdnb.networks.Network.channels_last`, read by
:func:`crowdnb.model.memory_format`). This script measures what that choice is
worth for the shapes the study computes, float32, with the same weights and
inputs in both layouts:

- AlexNet: a training step (minibatch 10, every layer) and inference (64 images);
- EfficientNet-Lite0: a training step of its later layers on the frozen early
  layers' outputs (the offline default's fine-tuning), a training step of every
  layer (chapter 12's from random weights and fine-tuned whole), the frozen early layers
  (8 images, as :data:`crowdnb.train.FROZEN_BATCH`), and the whole network's
  inference (8 images, as :data:`crowdnb.model.TRUNK_BATCH`).

Each figure is images per second, the best of ``--repeats`` rounds with the two
layouts interleaved (other work on the machine only ever slows a round down);
the ratio channels-last / NCHW above 1 means channels-last is faster.

Run: ``python benchmarks/bench_layout.py [--threads N] [--repeats 3] [--steps 6]``
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
from torch import nn

from crowdnb.networks import LITE0_FROZEN_BLOCKS, AlexNet, EfficientNetLite

LAYOUTS = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}


def rate(step: Callable[[], object], images: int, steps: int) -> float:
    """Images per second of ``step`` over ``steps`` calls, after two warm-up calls."""
    step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return images * steps / (time.perf_counter() - start)


def training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(forward(x), y).backward()
        optimizer.step()

    return step


def lite0_frozen(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = model.stem(x)
    for block in model._blocks[:LITE0_FROZEN_BLOCKS]:
        x = block(x)
    return x


def cases(layout: torch.memory_format) -> dict[str, tuple[Callable[[], object], int]]:
    """Each measured computation in ``layout``, from the same seeded weights and inputs."""
    torch.manual_seed(0)
    images = {n: torch.randn(n, 3, 227, 227).contiguous(memory_format=layout) for n in (8, 10, 64)}
    labels = torch.randint(0, 3, (10,))
    alexnet = AlexNet(3).to(memory_format=layout)
    lite0 = EfficientNetLite(3).to(memory_format=layout).eval()
    with torch.no_grad():
        trunk_out = lite0_frozen(lite0, images[10]).contiguous(memory_format=layout)
    lite0_train = EfficientNetLite(3).to(memory_format=layout).train()
    lite0_all = EfficientNetLite(3).to(memory_format=layout).train()
    no_grad = torch.no_grad()
    return {
        "AlexNet training (10)": (training_step(alexnet.train(), images[10], labels, alexnet), 10),
        "AlexNet inference (64)": (lambda: no_grad(alexnet.eval())(images[64]), 64),
        "Lite0 later layers training (10)": (training_step(
            lite0_train, trunk_out, labels, lambda x: lite0_train.top(x, LITE0_FROZEN_BLOCKS)), 10),
        "Lite0 training, every layer (10)": (training_step(lite0_all, images[10], labels,
                                                           lite0_all), 10),
        "Lite0 frozen layers (8)": (lambda: no_grad(lite0_frozen)(lite0, images[8]), 8),
        "Lite0 inference (8)": (lambda: no_grad(lite0)(images[8]), 8),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (the best is kept)")
    parser.add_argument("--steps", type=int, default=6, help="timed calls per measurement")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):
        for name, layout in LAYOUTS.items():
            for case, (step, images) in cases(layout).items():
                best[case, name] = max(best.get((case, name), 0.0), rate(step, images, args.steps))
    print(f"float32 on the CPU, {torch.get_num_threads()} threads, images/s (best of {args.repeats})")
    print(f"{'':<34} {'NCHW':>8} {'channels-last':>14} {'ratio':>6}")
    for case in dict.fromkeys(c for c, _ in best):
        nchw, last = best[case, "NCHW"], best[case, "channels-last"]
        print(f"{case:<34} {nchw:>8.1f} {last:>14.1f} {last / nchw:>6.2f}")


if __name__ == "__main__":
    main()
