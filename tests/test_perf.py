"""The hardware limit and AlexNet's cost, against which training speed is read."""

from __future__ import annotations

import math

import pytest
import torch

from crowdnb.errors import ParameterError
from crowdnb.perf import achieved_fraction, matmul_rate, training_flops_per_image


def test_matmul_rate_is_a_rate_and_checks_its_arguments():
    small = matmul_rate("float32", n=256, min_seconds=0.05, repeats=1)
    assert 0.1 < small < 1e5  # GFLOP/s: between a slow phone and a rack of GPUs
    with pytest.raises(ParameterError, match="dtype"):
        matmul_rate("float8")
    with pytest.raises(ParameterError, match="n >= 16"):
        matmul_rate("float32", n=4)


def test_training_step_costs_about_three_forward_passes():
    from torch.utils.flop_counter import FlopCounterMode

    from crowdnb.model import build_model

    per_image = training_flops_per_image(3, batch_size=2)
    model, _ = build_model(3, weights="none", seed=0)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(2, 3, 227, 227))
    forward = counter.get_total_flops() / 2
    # backward: a gradient for the weights and one for the inputs, each as costly as the forward
    assert per_image / forward == pytest.approx(3.0)
    # conv1 alone, by hand: 56 x 56 outputs, 64 channels, 3 x 11 x 11 weights, 2 FLOPs a multiply-add
    assert forward > 2 * 56 * 56 * 64 * 3 * 11 * 11
    assert per_image == pytest.approx(4.27e9, rel=0.01)  # the study's AlexNet at 227 x 227


def test_lite0_top_costs_less_than_its_whole_network_and_counts_depthwise_layers_right():
    whole = training_flops_per_image(3, batch_size=2, network="efficientnet_lite0")
    top = training_flops_per_image(3, batch_size=2, network="efficientnet_lite0", top=True)
    # EfficientNet-Lite0 at 227 x 227: 0.9 GFLOP forward (0.4 G multiply-adds at 224 x 224)
    assert whole == pytest.approx(3 * 0.897e9, rel=0.01)
    assert 0.2 * whole < top < 0.6 * whole


def test_achieved_fraction_is_rate_times_cost_over_limit():
    out = achieved_fraction(40.0, 4e9, 200.0)
    assert out["gflops"] == pytest.approx(160.0) and out["fraction"] == pytest.approx(0.8)
    assert math.isnan(achieved_fraction(1.0, 1e9, 0.0)["fraction"])


def test_the_backends_are_recorded_beside_every_result():
    from crowdnb.provenance import environment_info
    from crowdnb.train import _on_device

    backends = environment_info()["torch_backends"]
    assert backends["cpu_capability"] and isinstance(backends["mkldnn"], bool)
    assert ("cudnn_version" in backends) == torch.cuda.is_available()
    images = torch.arange(12, dtype=torch.uint8).reshape(1, 3, 2, 2)
    assert torch.equal(_on_device(images, torch.device("cpu")), images)
