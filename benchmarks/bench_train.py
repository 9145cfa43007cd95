"""Training and inference throughput of crowdnb's pipeline against a bare torch loop.

Writes a fixed set of synthetic 227 x 227 PNG images, then measures images per
second, for each network of the registry (AlexNet, EfficientNet-Lite0 with
every layer trained, and EfficientNet-Lite0 as the offline default trains it:
its later layers on cached outputs of the frozen early ones), for

- *pipeline*: :func:`crowdnb.train.train_model` (PNGs decoded once into a
  uint8 tensor, each minibatch indexed and normalised on the fly, the
  paper's minibatch of 10) and :func:`crowdnb.model.predict_proba`;
- *bare*: a plain torch loop over an in-memory, already normalised float
  tensor, with the same model, optimizer, minibatch and shuffling.

The ratio pipeline / bare is the data pipeline's share (1.0 = it costs
nothing). Both training figures include the first iteration and the same
number of iterations; the one-off PNG decode is reported on its own. Each
figure is the best of ``--repeats`` runs, pipeline and bare interleaved, since
other work on the machine only ever slows a run down. CPU always, CUDA when
torch sees a GPU; float32 (the paper's) and bfloat16 autocast.

The hardware's limit is measured in the same run: the sustained rate of a
large matrix product in float32 and in bfloat16 (:func:`crowdnb.perf.matmul_rate`).
A training's achieved rate is its images per second times what one image
costs, forward and backward (:func:`crowdnb.perf.training_flops_per_image`,
torch's FLOP counter), and its fraction of the limit of the arithmetic it ran
in says how much room is left.

Run: ``python benchmarks/bench_train.py [--images 200] [--repeats 2] [--threads N]
[--networks alexnet efficientnet_lite0 efficientnet_lite0:top]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from crowdnb.config import TrainRecipe
from crowdnb.model import (build_model, compute_context, image_normalization, model_input,
                           predict_proba, prepare_model)
from crowdnb.networks import NETWORKS
from crowdnb.perf import achieved_fraction, matmul_rate, training_flops_per_image
from crowdnb.train import _param_groups, load_images, train_model


def make_images(folder: Path, n: int, *, seed: int = 0) -> pd.DataFrame:
    """n spectrogram-sized PNGs (smooth colour fields plus noise) and their block table."""
    rng = np.random.default_rng(seed)
    rows = []
    base = np.linspace(0, 255, 227, dtype=np.float32)
    for i in range(n):
        field = np.stack([np.add.outer(base * rng.uniform(0.2, 1), base * rng.uniform(0.2, 1)) / 2] * 3, -1)
        pixels = np.clip(field + rng.normal(0, 25, field.shape), 0, 255).astype(np.uint8)
        path = f"{i:05d}.png"
        Image.fromarray(pixels).save(folder / path, compress_level=1)
        rows.append({"block_id": f"b{i}", "clip_id": f"c{i // 10}", "label": ("a", "b")[(i // 10) % 2],
                     "image_path": path, "start_s": float(i % 10), "end_s": float(i % 10) + 2.0})
    return pd.DataFrame(rows)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bare_model(network: str, device: torch.device, precision: str, x: torch.Tensor, top: bool):
    """The network, its trained module and the inputs a bare loop feeds it (frozen outputs for top)."""
    spec = NETWORKS[network]
    model, _ = build_model(2, network=network, weights="none", seed=0)
    model = prepare_model(model, device, precision, network)
    trained, prefixes = model, None
    if top:
        frozen, trained = spec.trunk(model)
        prefixes = trained.prefixes
        with torch.no_grad(), compute_context(precision, device):
            x = torch.cat([frozen.eval()(x[i:i + 64]).float() for i in range(0, len(x), 64)])
    groups = _param_groups(model, 1e-4, 20.0, 1e-4, new_layer=spec.new_layer, trained=prefixes)
    return trained.train(), groups, x


def bare_training(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, device: torch.device,
                  precision: str, network: str = "alexnet", top: bool = False) -> float:
    """Images per second of one epoch of a plain loop on pre-normalised tensors.

    With ``top``, on the frozen early layers' outputs, computed before the clock starts.
    """
    model, groups, x = _bare_model(network, device, precision, x, top)
    context = compute_context(precision, device)
    optimizer = torch.optim.SGD(groups, lr=1e-4, momentum=0.9, fused=device.type in ("cpu", "cuda"))
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).to(device)
    n_batches = len(x) // batch_size
    sync(device)
    t = time.perf_counter()
    for b in range(n_batches):
        index = order[b * batch_size:(b + 1) * batch_size]
        optimizer.zero_grad(set_to_none=True)
        with context:
            loss = loss_fn(model(x[index]), y[index])
        loss.backward()
        optimizer.step()
    sync(device)
    return n_batches * batch_size / (time.perf_counter() - t)


@torch.inference_mode()
def bare_inference(x: torch.Tensor, *, batch_size: int, device: torch.device, precision: str,
                   network: str = "alexnet") -> float:
    model, _ = build_model(2, network=network, weights="none", seed=0)
    model = prepare_model(model, device, precision, network).eval()
    with compute_context(precision, device):
        model(x[:batch_size])  # warm-up, as for the pipeline below
        sync(device)
        t = time.perf_counter()
        for start in range(0, len(x), batch_size):
            torch.softmax(model(x[start:start + batch_size]).float(), dim=1).cpu()
    sync(device)
    return len(x) / (time.perf_counter() - t)


def pipeline_inference(images: torch.Tensor, *, batch_size: int, device: torch.device, precision: str,
                       network: str = "alexnet") -> float:
    model, _ = build_model(2, network=network, weights="none", seed=0)
    model = prepare_model(model, device, precision, network)
    norm = image_normalization(network)
    predict_proba(model, images[:batch_size], normalization=norm, device=device, batch_size=batch_size,
                  precision=precision)
    sync(device)
    t = time.perf_counter()
    predict_proba(model, images, normalization=norm, device=device, batch_size=batch_size,
                  precision=precision)
    sync(device)
    return len(images) / (time.perf_counter() - t)


# torch operators grouped by what they spend time on
_KINDS = {
    "convolutions": ("convolution",),
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
    "casts": ("aten::copy_", "aten::_to_copy", "aten::to"),
    "optimizer": ("sgd", "zero_grad"),
}


def step_breakdown(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, device: torch.device,
                   precision: str, network: str = "alexnet", top: bool = False,
                   steps: int = 4) -> dict[str, float]:
    """Share of a training step's operator time by kind (torch.profiler, self time)."""
    from torch.profiler import ProfilerActivity, profile

    model, groups, x = _bare_model(network, device, precision, x, top)
    context = compute_context(precision, device)
    optimizer = torch.optim.SGD(groups, lr=1e-4, momentum=0.9, fused=device.type in ("cpu", "cuda"))

    def step(b: int) -> None:
        index = torch.arange(b * batch_size, (b + 1) * batch_size, device=device) % len(x)
        optimizer.zero_grad(set_to_none=True)
        with context:
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        loss.backward()
        optimizer.step()

    step(0)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for b in range(steps):
            step(b)
        sync(device)
    times = {k: 0.0 for k in (*_KINDS, "other")}
    for event in prof.key_averages():
        spent = event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total
        kind = next((k for k, keys in _KINDS.items() if any(key in event.key.lower() for key in keys)),
                    "other")
        times[kind] += spent
    total = sum(times.values()) or 1.0
    return {k: v / total for k, v in times.items()}


def _measure(blocks, test, images, folder: Path, x, y, *, network: str, top: bool, device, precision: str,
             args) -> dict[str, float]:
    """Best of ``args.repeats``: the pipeline's and the bare loop's training and inference rates."""
    best = {"pipe_train": 0.0, "bare_train": 0.0, "pipe_eval": 0.0, "bare_eval": 0.0}
    for _ in range(args.repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metrics = train_model(
                blocks, test, image_root=folder, out_dir=folder / "run", network=network,
                weights="imagenet" if top else "none", fine_tune="top" if top else "all",
                on_missing_weights="error" if top else "packaged",
                recipe=TrainRecipe(epochs=1, batch_size=args.batch_size, validate_every=None),
                device=str(device), precision=precision, progress=False, bootstrap_resamples=10,
            ).metrics
        runs = {
            "pipe_train": metrics["training"]["train_images_per_s"],
            "bare_train": bare_training(x, y, batch_size=args.batch_size, device=device,
                                        precision=precision, network=network, top=top),
            "pipe_eval": pipeline_inference(images, batch_size=args.eval_batch_size, device=device,
                                            precision=precision, network=network),
            "bare_eval": bare_inference(x, batch_size=args.eval_batch_size, device=device,
                                        precision=precision, network=network),
        }
        best = {k: max(best[k], runs[k]) for k in best}
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="training images (one epoch)")
    parser.add_argument("--batch-size", type=int, default=10, help="training minibatch (paper: 10)")
    parser.add_argument("--eval-batch-size", type=int, default=128, help="inference batch")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement (best is kept)")
    parser.add_argument("--precision", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"])
    parser.add_argument("--networks", nargs="+",
                        default=["alexnet", "efficientnet_lite0", "efficientnet_lite0:top"],
                        help="networks to time; NAME:top trains the later layers on frozen outputs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for entry in args.networks:
        if entry.split(":")[0] not in NETWORKS or entry.split(":")[1:] not in ([], ["top"]):
            parser.error(f"--networks: {entry!r} is not NAME or NAME:top with NAME one of "
                         f"{', '.join(NETWORKS)}")

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows, breakdowns, limits = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        blocks = make_images(folder, args.images)
        t = time.perf_counter()
        images = load_images([folder / p for p in blocks["image_path"]])
        decode_ms = 1000 * (time.perf_counter() - t) / len(blocks)
        test = blocks.iloc[: args.eval_batch_size]
        y_all = torch.tensor([0 if label == "a" else 1 for label in blocks["label"]])
        for device in devices:
            name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                    else f"cpu x{torch.get_num_threads()}")
            for precision in args.precision:
                # the limit, just before and just after the trainings (the higher is kept)
                limit = matmul_rate(precision, device=device)
                for entry in args.networks:
                    network, top = entry.split(":")[0], entry.endswith(":top")
                    x = model_input(images.to(device), image_normalization(network), precision, network)
                    y = y_all.to(device)
                    best = _measure(blocks, test, images, folder, x, y, network=network, top=top,
                                    device=device, precision=precision, args=args)
                    rows.append((name, entry, precision, best))
                    breakdowns.append((name, entry, precision, step_breakdown(
                        x, y, batch_size=args.batch_size, device=device, precision=precision,
                        network=network, top=top)))
                    del x
                limits[(name, precision)] = max(limit, matmul_rate(precision, device=device))
    report(rows, breakdowns, limits, decode_ms=decode_ms, args=args)


def report(rows, breakdowns, limits, *, decode_ms: float, args) -> None:
    print(f"{args.images} images of 227x227; PNG decode (once, before training): {decode_ms:.2f} ms/image; "
          f"best of {args.repeats}")
    print(f"{'device':<22} {'network':<23} {'precision':<9} {'stage':<22} {'pipeline img/s':>14} "
          f"{'bare img/s':>11} {'ratio':>6}")
    for name, entry, precision, best in rows:
        for stage, key in ((f"training (batch {args.batch_size})", "train"),
                           (f"inference (batch {args.eval_batch_size})", "eval")):
            pipe, bare = best[f"pipe_{key}"], best[f"bare_{key}"]
            print(f"{name:<22} {entry:<23} {precision:<9} {stage:<22} {pipe:>14.1f} {bare:>11.1f} "
                  f"{pipe / bare:>6.2f}")
    print()
    print("A training's cost per 227x227 image (forward and backward, torch's FLOP counter; for "
          "NAME:top the trained layers only, the frozen ones run once per image before training). "
          "The limit: the sustained rate of a 2048 x 2048 matrix product in the same arithmetic, "
          "measured just before and after the trainings.")
    print(f"{'device':<22} {'network':<23} {'precision':<9} {'GFLOP/img':>9} {'limit GFLOP/s':>13} "
          f"{'pipeline GFLOP/s':>16} {'of limit':>8} {'bare GFLOP/s':>12} {'of limit':>8}")
    for name, entry, precision, best in rows:
        flops = training_flops_per_image(2, batch_size=args.batch_size, network=entry.split(":")[0],
                                         top=entry.endswith(":top"))
        limit = limits[(name, precision)]
        pipe = achieved_fraction(best["pipe_train"], flops, limit)
        bare = achieved_fraction(best["bare_train"], flops, limit)
        print(f"{name:<22} {entry:<23} {precision:<9} {flops / 1e9:>9.2f} {limit:>13.0f} "
              f"{pipe['gflops']:>16.0f} {pipe['fraction']:>8.0%} {bare['gflops']:>12.0f} "
              f"{bare['fraction']:>8.0%}")
    print()
    kinds = list(breakdowns[0][3]) if breakdowns else []
    print("Where a bare training step's operator time goes (torch.profiler, self time): the casts and "
          "the optimizer move parameter-sized data, the rest is arithmetic.")
    print(f"{'device':<22} {'network':<23} {'precision':<9} " + " ".join(f"{k:>15}" for k in kinds))
    for name, entry, precision, shares in breakdowns:
        print(f"{name:<22} {entry:<23} {precision:<9} " + " ".join(f"{shares[k]:>15.0%}" for k in kinds))


if __name__ == "__main__":
    main()
