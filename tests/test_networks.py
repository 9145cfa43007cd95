"""The network registry: fine-tuning from the packaged ImageNet weights, and their checkpoints.

EfficientNet-Lite0's ImageNet weights install with the project, so these
tests use the real weights, on tiny image sets and short clips made here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from crowdnb.cli import main
from crowdnb.config import TrainRecipe
from crowdnb.dataset import preprocess
from crowdnb.files import read_json
from crowdnb.listen import Listener, file_source, listen
from crowdnb.model import load_checkpoint
from crowdnb.networks import FINE_TUNE, NETWORKS, imagenet_behaviour, network_spec
from crowdnb.predict import predict_file
from crowdnb.splits import random_split
from crowdnb.train import train_model
from conftest import rumble_and_hiss_clips
from test_train import make_image_set

pytestmark = pytest.mark.filterwarnings("ignore::crowdnb.model.PretrainedWeightsWarning")


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return root, make_image_set(root, n_per_class=12)


def _train(image_set, **kwargs):
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    return train_model(train, test, image_root=root, recipe=TrainRecipe(epochs=2, batch_size=6),
                       seed=0, progress=False, **kwargs)


def test_fine_tuning_from_imagenet_learns_faster_than_from_random_weights(image_set):
    """The same steps, the same recipe: ImageNet features give a lower training loss."""
    pretrained = _train(image_set, network="efficientnet_lite0", weights="imagenet",
                        fine_tune="all", on_missing_weights="error")
    random = _train(image_set, network="efficientnet_lite0", weights="none", fine_tune="all")
    assert pretrained.metrics["pretrained"] and not random.metrics["pretrained"]
    assert pretrained.metrics["params"]["lr"] == random.metrics["params"]["lr"] == 1e-4
    assert pretrained.metrics["final_train_loss"] < random.metrics["final_train_loss"] - 0.05


def test_top_fine_tuning_trains_only_the_later_layers_and_keeps_the_frozen_ones(image_set):
    result = _train(image_set, network="efficientnet_lite0", fine_tune="top")
    params = result.metrics["params"]
    assert params["fine_tune"] == "top" and params["network"] == "efficientnet_lite0"
    state = result.checkpoint["state_dict"]
    from crowdnb.model import build_model

    start, _ = build_model(2, network="efficientnet_lite0", seed=0)
    before = start.state_dict()
    # frozen: the stem and blocks 0-10 (running statistics included); trained: the rest
    assert torch.equal(state["_blocks.3._depthwise_conv.weight"], before["_blocks.3._depthwise_conv.weight"])
    assert torch.equal(state["_blocks.10._bn1.running_mean"], before["_blocks.10._bn1.running_mean"])
    assert not torch.equal(state["_blocks.12._project_conv.weight"], before["_blocks.12._project_conv.weight"])
    assert not torch.equal(state["_fc.weight"], before["_fc.weight"])
    total = sum(v.numel() for k, v in before.items() if not k.startswith("_fc") and "running" not in k
                and "num_batches" not in k)
    assert 0.5 * total < result.metrics["training"]["trained_parameters"] < total


def test_auto_fine_tune_means_all_from_random_weights(image_set):
    result = _train(image_set, network="efficientnet_lite0", weights="scratch")
    assert result.metrics["params"]["fine_tune"] == "all"
    spec = network_spec("efficientnet_lite0")
    assert result.metrics["params"]["lr"] == pytest.approx(spec.scratch_lr_per_image * 6)  # minibatch 6


def test_registry_entries_are_complete():
    assert set(FINE_TUNE) == {"all", "top", "auto"}
    for name, spec in NETWORKS.items():
        assert spec.name == name and spec.default_fine_tune in ("all", "top")
        with torch.device("meta"):
            model = spec.make(3)
        assert spec.new_layer_module(model).out_features == 3
    with pytest.raises(Exception, match="network must be one of alexnet, efficientnet_lite0"):
        network_spec("vgg16")


@pytest.fixture(scope="module")
def lite0_checkpoint(tmp_path_factory):
    """EfficientNet-Lite0 fine-tuned for one epoch on rumble against hiss clips."""
    root = tmp_path_factory.mktemp("audio")
    made = preprocess(rumble_and_hiss_clips(root), root / "data", progress=False)
    blocks = made.blocks
    train, test = blocks[blocks["clip_id"].str.endswith("0")], blocks[blocks["clip_id"].str.endswith("1")]
    train_model(train, test, image_root=root / "data", out_dir=root / "run",
                network="efficientnet_lite0", recipe=TrainRecipe(epochs=1, batch_size=3), seed=0,
                progress=False, preprocessing=read_json(root / "data" / "params.json")["preprocessing"],
                bootstrap_resamples=100)
    return root, root / "run" / "model.pt"


def test_a_lite0_checkpoint_drives_predict_and_listen(lite0_checkpoint, capsys):
    root, checkpoint = lite0_checkpoint
    model, meta = load_checkpoint(checkpoint)
    assert meta["network"] == "efficientnet_lite0" and meta["normalization"]["mean"] == [127.0] * 3
    table, label = predict_file(root / "hiss1.wav", checkpoint, device="cpu", band_limit_per="block")
    assert len(table) == 3 and label in ("rumble", "hiss")
    assert main(["predict", "--model", str(checkpoint), str(root / "hiss1.wav")]) == 0
    assert "hiss1.wav" in capsys.readouterr().out
    listener = Listener(model, meta, device="cpu")
    results = list(listen(file_source(root / "hiss1.wav", sr=listener.sr), listener))
    probs = np.array([[r.probabilities[c] for c in meta["classes"]] for r in results if r.kept])
    expected = table[[f"prob_{c}" for c in meta["classes"]]].to_numpy()
    assert probs.shape == expected.shape and np.abs(probs - expected).max() < 1e-4


def test_an_earlier_alexnet_checkpoint_still_loads(tmp_path):
    """Checkpoints written before the registry (format crowdnb.alexnet/1) are AlexNet's."""
    from crowdnb.model import build_model, image_normalization

    model, info = build_model(2, weights="none", seed=0)
    path = tmp_path / "old.pt"
    torch.save({"format": "crowdnb.alexnet/1", "state_dict": model.state_dict(),
                "classes": ["a", "b"], "normalization": image_normalization()}, path)
    loaded, meta = load_checkpoint(path)
    assert meta["network"] == "alexnet"
    assert torch.equal(loaded.classifier[6].weight, model.classifier[6].weight)
    torch.save({"format": "crowdnb.network/2", "state_dict": model.state_dict(),
                "classes": ["a", "b"], "normalization": image_normalization()}, path)
    with pytest.raises(Exception, match="incomplete crowdnb checkpoint: no network"):
        load_checkpoint(path)


def test_a_training_can_leave_its_network_unwritten(image_set, tmp_path):
    result = _train(image_set, network="efficientnet_lite0", out_dir=tmp_path,
                    write_checkpoint=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv", "metrics.json",
                                                         "predictions.csv"]
    assert result.checkpoint["network"] == "efficientnet_lite0"  # still returned to the caller


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_the_behaviour_check_computes_no_gradients(network):
    # Run with autograd, its probabilities warned (a UserWarning on a chapter's page)
    # and it kept every activation for a backward pass that never comes.
    spec = network_spec(network)
    model = spec.make(1000)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(out.requires_grad))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        behaviour = imagenet_behaviour(model, spec)
    assert seen and not any(seen)
    assert set(behaviour["photos"]) and isinstance(behaviour["passed"], bool)
