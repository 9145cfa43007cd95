"""Training and inference throughput of crowdnb's pipeline against a bare torch loop.

Writes a fixed set of synthetic 227 x 227 PNG images, then measures images per
second for

- *pipeline*: :func:`crowdnb.train.train_model` (PNGs decoded once into a
  uint8 tensor, each minibatch indexed and normalised on the fly, the
  paper's minibatch of 10) and :func:`crowdnb.model.predict_proba`;
- *bare*: a plain torch loop over an in-memory, already normalised float
  tensor, with the same model, optimizer, minibatch and shuffling.

The ratio pipeline / bare is the data pipeline's overhead (1.0 = none). Both
training figures include the first iteration and the same number of
iterations; the one-off PNG decode is reported on its own. Each figure is the
best of ``--repeats`` runs, pipeline and bare interleaved, since other work on
the machine only ever slows a run down. CPU always, CUDA when torch sees a
GPU; float32 (the paper's) and bfloat16 autocast.

A second table projects the wall time of the default study (4 trainings: the
random and the clip split of the emotion set, ~678 blocks, and of the football
set, ~350 blocks; 6 epochs of minibatches of 10; validation every 3
iterations) from these rates, for several validation-set sizes.

Run: ``python benchmarks/bench_train.py [--images 200] [--repeats 2] [--threads N]``
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
from crowdnb.model import build_model, compute_context, model_input, predict_proba, prepare_model
from crowdnb.train import _param_groups, load_images, train_model

STUDY = {"emotions": 678, "football": 350}  # blocks per data set (the paper's 678; football assumed)


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
        rows.append({"block_id": f"b{i}", "clip_id": f"c{i // 10}", "label": ("a", "b")[i % 2],
                     "image_path": path, "start_s": float(i % 10), "end_s": float(i % 10) + 2.0})
    return pd.DataFrame(rows)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_training(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, device: torch.device,
                  precision: str) -> float:
    """Images per second of one epoch of a plain loop on pre-normalised tensors."""
    model, _ = build_model(2, weights="none", seed=0)
    model = prepare_model(model, device, precision).train()
    context = compute_context(precision, device)
    optimizer = torch.optim.SGD(_param_groups(model, 1e-4, 20.0, 1e-4), lr=1e-4, momentum=0.9,
                                fused=device.type in ("cpu", "cuda"))
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
def bare_inference(x: torch.Tensor, *, batch_size: int, device: torch.device, precision: str) -> float:
    model, _ = build_model(2, weights="none", seed=0)
    model = prepare_model(model, device, precision).eval()
    with compute_context(precision, device):
        model(x[:batch_size])  # warm-up, as for the pipeline below
        sync(device)
        t = time.perf_counter()
        for start in range(0, len(x), batch_size):
            torch.softmax(model(x[start:start + batch_size]).float(), dim=1).cpu()
    sync(device)
    return len(x) / (time.perf_counter() - t)


def pipeline_inference(images: torch.Tensor, *, batch_size: int, device: torch.device, precision: str) -> float:
    model, _ = build_model(2, weights="none", seed=0)
    model = prepare_model(model, device, precision)
    predict_proba(model, images[:batch_size], device=device, batch_size=batch_size, precision=precision)
    sync(device)
    t = time.perf_counter()
    predict_proba(model, images, device=device, batch_size=batch_size, precision=precision)
    sync(device)
    return len(images) / (time.perf_counter() - t)


def study_seconds(train_img_s: float, eval_img_s: float, validation_blocks: int | None, *,
                  epochs: int = 6, batch_size: int = 10, validate_every: int = 3) -> float:
    """Projected seconds of the default study's 4 trainings (80/20 splits)."""
    total = 0.0
    for n_blocks in STUDY.values():
        n_train, n_test = n_blocks - round(0.2 * n_blocks), round(0.2 * n_blocks)
        iterations = epochs * (n_train // batch_size)
        n_val = n_test if validation_blocks is None else min(validation_blocks, n_test)
        validations = 1 + iterations // validate_every
        one = iterations * batch_size / train_img_s + validations * n_val / eval_img_s
        total += 2 * (one + n_test / eval_img_s)  # random and clip split; final evaluation
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="training images (one epoch)")
    parser.add_argument("--batch-size", type=int, default=10, help="training minibatch (paper: 10)")
    parser.add_argument("--eval-batch-size", type=int, default=128, help="inference batch")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement (best is kept)")
    parser.add_argument("--precision", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
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
                x = model_input(images.to(device), None, precision)
                y = y_all.to(device)
                best = {"pipe_train": 0.0, "bare_train": 0.0, "pipe_eval": 0.0, "bare_eval": 0.0}
                for _ in range(args.repeats):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        metrics = train_model(
                            blocks, test, image_root=folder, out_dir=folder / "run", weights="none",
                            recipe=TrainRecipe(epochs=1, batch_size=args.batch_size, validate_every=None),
                            device=str(device), precision=precision, progress=False,
                            bootstrap_resamples=10,
                        ).metrics
                    runs = {
                        "pipe_train": metrics["training"]["train_images_per_s"],
                        "bare_train": bare_training(x, y, batch_size=args.batch_size, device=device,
                                                    precision=precision),
                        "pipe_eval": pipeline_inference(images, batch_size=args.eval_batch_size, device=device,
                                                        precision=precision),
                        "bare_eval": bare_inference(x, batch_size=args.eval_batch_size, device=device,
                                                    precision=precision),
                    }
                    best = {k: max(best[k], runs[k]) for k in best}
                rows.append((name, precision, best))
                del x

    print(f"{args.images} images of 227x227; PNG decode (once, before training): {decode_ms:.2f} ms/image; "
          f"best of {args.repeats}")
    print(f"{'device':<22} {'precision':<9} {'stage':<22} {'pipeline img/s':>14} {'bare img/s':>11} {'ratio':>6}")
    for name, precision, best in rows:
        for stage, key in ((f"training (batch {args.batch_size})", "train"),
                           (f"inference (batch {args.eval_batch_size})", "eval")):
            pipe, bare = best[f"pipe_{key}"], best[f"bare_{key}"]
            print(f"{name:<22} {precision:<9} {stage:<22} {pipe:>14.1f} {bare:>11.1f} {pipe / bare:>6.2f}")

    print()
    print("Projected wall time of the default study's 4 trainings (6 epochs, minibatch 10, validation every "
          "3 iterations; emotions 678 and football 350 blocks, random and clip split), from the pipeline rates:")
    sizes = [None, 64, 32, 16]
    print(f"{'device':<22} {'precision':<9} " + " ".join(
        f"{'val=all' if s is None else f'val={s}':>9}" for s in sizes) + f" {'no val':>9}")
    for name, precision, best in rows:
        cells = [study_seconds(best["pipe_train"], best["pipe_eval"], s) / 60 for s in sizes]
        cells.append(study_seconds(best["pipe_train"], best["pipe_eval"], 0) / 60)
        print(f"{name:<22} {precision:<9} " + " ".join(f"{c:>7.1f} m" for c in cells))


if __name__ == "__main__":
    main()
