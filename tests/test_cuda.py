"""The CUDA path: the same training and inference on a GPU as on the CPU.

Every test here is marked ``cuda`` and skipped where torch sees no GPU (see
``conftest.py``); on a machine with one, ``pytest -m cuda`` runs them alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdnb.config import TrainRecipe
from crowdnb.model import build_model, predict_proba
from crowdnb.perf import matmul_rate
from crowdnb.splits import random_split
from crowdnb.train import load_images, train_model

from test_train import make_image_set

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return root, make_image_set(root)


def test_inference_on_the_gpu_matches_the_cpu(image_set):
    root, blocks = image_set
    images = load_images([root / p for p in blocks["image_path"]])
    model, _ = build_model(2, weights="none", seed=0)
    cpu, _ = predict_proba(model, images, device="cpu", batch_size=16)
    gpu, _ = predict_proba(model, images, device="cuda", batch_size=16)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
    half, _ = predict_proba(model, images, device="cuda", batch_size=16, precision="bfloat16")
    np.testing.assert_allclose(half, cpu, atol=5e-2)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_on_the_gpu_learns_and_records_its_device(image_set, tmp_path, precision):
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    result = train_model(train, test, image_root=root, out_dir=tmp_path, weights="none",
                         recipe=TrainRecipe(epochs=3, batch_size=8, lr=3e-2), seed=0,
                         device="cuda", precision=precision, progress=False)
    metrics = result.metrics
    assert metrics["device"].startswith("cuda")
    assert metrics["environment"]["cuda_available"] and metrics["environment"]["cuda_device"]
    assert metrics["environment"]["torch_backends"]["cudnn_version"]
    assert metrics["balanced_accuracy"] > 0.75  # the two patterns are easy
    # The checkpoint is on the CPU, loadable anywhere.
    assert all(v.device.type == "cpu" for v in result.checkpoint["state_dict"].values())


def test_deterministic_gpu_training_repeats_itself(image_set, tmp_path):
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    kwargs = dict(image_root=root, weights="none", recipe=TrainRecipe(epochs=1, batch_size=8, lr=3e-2),
                  seed=3, device="cuda", deterministic=True, progress=False)
    a = train_model(train, test, out_dir=tmp_path / "a", **kwargs)
    b = train_model(train, test, out_dir=tmp_path / "b", **kwargs)
    assert (tmp_path / "a" / "predictions.csv").read_bytes() == (tmp_path / "b" / "predictions.csv").read_bytes()
    sa, sb = a.checkpoint["state_dict"], b.checkpoint["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_gpu_limit_is_measured_on_the_gpu():
    assert matmul_rate("float32", n=1024, min_seconds=0.1, device="cuda") > \
        matmul_rate("float32", n=1024, min_seconds=0.1, device="cpu")
