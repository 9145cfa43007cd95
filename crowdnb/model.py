"""The network: torchvision's AlexNet with a new last layer for the study's classes.

The paper fine-tunes MATLAB's ImageNet-pretrained AlexNet after replacing its
last fully connected layer (``fullyConnectedLayer(numClasses,
'WeightLearnRateFactor', 20, 'BiasLearnRateFactor', 20)``). Here the network is
torchvision's ``alexnet`` with ``IMAGENET1K_V1`` weights, and
``classifier[6]`` (4096 -> 1000) replaced by a 4096 -> ``n_classes`` layer,
initialised as MATLAB initialises a new ``fullyConnectedLayer``: Glorot
(Xavier) uniform weights and zero biases, drawn from a seeded
``torch.Generator``.

Two differences from MATLAB's network are worth knowing. torchvision's
AlexNet is the "one weird trick" variant (64-192-384-256-256 filters, no local
response normalisation, no grouped convolutions); MATLAB's is the original
Caffe model (96-256-384-384-256, with LRN). And inputs are normalised the
torchvision way (RGB scaled to [0, 1], minus the ImageNet mean, divided by its
standard deviation), which is what these weights were trained with, where
MATLAB subtracts a mean image from 0-255 values. A 227 x 227 image reaches the
classifier as 256 x 6 x 6 features, exactly the size the weights expect.

Where the ImageNet weights cannot be downloaded (an air-gapped machine, or
this project's build machine), ``weights`` can name a local copy of the file,
or ``on_missing_weights="fallback"`` trains from random initialisation; the
returned ``info`` says which happened, and the training metrics record it.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from .errors import DataError, ParameterError
from .weights import IMAGENET_SHA256_PREFIX, is_imagenet_file, weights_sha256

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NEW_LAYER",
    "PretrainedWeightsWarning",
    "MISSING_WEIGHTS",
    "WEIGHT_KEYWORDS",
    "build_model",
    "imagenet_weights_file",
    "image_normalization",
    "normalize_images",
    "predict_proba",
    "PRECISIONS",
    "compute_context",
    "prepare_model",
    "model_input",
    "resolve_device",
    "load_checkpoint",
]

#: Per-channel RGB mean and standard deviation of ImageNet, on a 0-1 scale.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Name of the replaced layer in the model's state dict.
NEW_LAYER = "classifier.6"

#: The keywords ``build_model`` takes for ``weights`` (anything else is a file).
WEIGHT_KEYWORDS = ("imagenet", "none", "scratch")

#: What ``build_model`` may do when the ImageNet weights cannot be had.
MISSING_WEIGHTS = ("scratch", "fallback", "error")

CHECKPOINT_FORMAT = "crowdnb.alexnet/1"
#: What :func:`load_checkpoint` needs in a checkpoint besides its format tag.
CHECKPOINT_KEYS = ("state_dict", "classes", "normalization")

#: Arithmetic of the network's forward and backward passes.
PRECISIONS = {
    "float32": "float32 throughout (the paper's MATLAB training used single precision)",
    "bfloat16": ("bfloat16 autocast with channels-last tensors (weights, gradients and the SGD update "
                 "stay float32): several times faster on CPUs with AMX and on recent GPUs"),
}


class PretrainedWeightsWarning(UserWarning):
    """The ImageNet weights were asked for but not used (training starts from random weights)."""


def _alexnet_weights():
    from torchvision.models import AlexNet_Weights

    return AlexNet_Weights.IMAGENET1K_V1


def imagenet_weights_file() -> Path:
    """Where torchvision keeps (or would keep) the ImageNet AlexNet weights.

    ``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``; copying the
    file there (from ``download.pytorch.org``) makes ``weights="imagenet"``
    work without a network connection.
    """
    url = _alexnet_weights().url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def image_normalization() -> dict[str, Any]:
    """The input normalisation the model expects, as stored in checkpoints.

    Returns
    -------
    dict
        ``scale`` (uint8 pixels are divided by it), ``mean`` and ``std`` (per RGB
        channel, after scaling): ``x = (pixel / scale - mean) / std``.
    """
    return {"scale": 255.0, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


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


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when torch sees a GPU, else CPU; anything else is checked.

    Raises
    ------
    ParameterError
        For a device name torch does not know, or CUDA asked for but absent.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r} ({exc})"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            f"device {device!r} asked for, but torch sees no CUDA GPU; use device='auto' or 'cpu'"
        )
    return dev


def compute_context(precision: str, device: torch.device):
    """The autocast context of ``precision`` on ``device`` (a no-op for float32)."""
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def _memory_format(precision: str) -> torch.memory_format:
    # oneDNN's bfloat16 convolutions are fastest on NHWC (channels-last) tensors.
    return torch.channels_last if precision == "bfloat16" else torch.contiguous_format


def prepare_model(model: nn.Module, device: torch.device, precision: str = "float32") -> nn.Module:
    """Move ``model`` to ``device`` in the memory layout ``precision`` computes fastest with."""
    return model.to(device=device, memory_format=_memory_format(precision))


def model_input(
    images: torch.Tensor, normalization: Mapping[str, Any] | None = None, precision: str = "float32"
) -> torch.Tensor:
    """:func:`normalize_images` in the memory layout ``precision`` computes fastest with."""
    return normalize_images(images, normalization).contiguous(memory_format=_memory_format(precision))


def _reset_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every conv and linear layer, from ``generator``."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def _he_init(module: nn.Module, generator: torch.Generator) -> None:
    """He (Kaiming) normal weights for ReLU layers, zero biases (He et al. 2015).

    Keeps the variance of the activations from layer to layer in a deep ReLU
    network without normalisation layers, which PyTorch's default (a uniform
    draw scaled for a = sqrt(5)) shrinks by about a factor of 6 per layer.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
                layer.bias.zero_()


def _init_new_layer(layer: nn.Linear, generator: torch.Generator) -> None:
    """MATLAB's fullyConnectedLayer defaults: Glorot uniform weights, zero biases."""
    with torch.no_grad():
        nn.init.xavier_uniform_(layer.weight, generator=generator)
        layer.bias.zero_()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a file, loaded safely (``weights_only=True``)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the weights file ({exc.strerror or exc})") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError):
        raise DataError(f"{path}: not a torch state dict (not a tensors-only file written by "
                        "torch.save; a damaged or foreign file)") from None
    # A crowdnb checkpoint keeps its state dict under "state_dict".
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{path}: not a state dict (a mapping of parameter names to tensors)")
    return obj


def _load_backbone(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy every parameter except the new layer's, checking names and shapes."""
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.startswith(NEW_LAYER + ".")}
    given = {k: v for k, v in state.items() if not k.startswith(NEW_LAYER + ".")}
    problems = []
    missing = sorted(set(expected) - set(given))
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    unexpected = sorted(set(given) - set(expected))
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    for key in sorted(set(expected) & set(given)):
        if tuple(given[key].shape) != tuple(expected[key]):
            problems.append(f"{key} has shape {tuple(given[key].shape)}, AlexNet needs {tuple(expected[key])}")
    if problems:
        raise DataError(f"{where}: not torchvision AlexNet weights: {'; '.join(problems)}")
    result = model.load_state_dict(given, strict=False)
    assert set(result.missing_keys) == {NEW_LAYER + ".weight", NEW_LAYER + ".bias"}, result


class _NotImageNet(Exception):
    """A file under the ImageNet weights' name that is not them."""


def _check_cached_imagenet(path: Path) -> None:
    if path.is_file():
        sha = weights_sha256(path)
        if not is_imagenet_file(sha):
            raise _NotImageNet(
                f"{path} is not torchvision's ImageNet AlexNet: its SHA-256 starts {sha[:8]}, the "
                f"published file's {IMAGENET_SHA256_PREFIX} (a damaged or foreign file; delete it "
                "to download the real one)")


def _download_imagenet(progress: bool) -> dict[str, torch.Tensor]:
    # Through torchvision's normal route: torch.hub's cache, then download.pytorch.org.
    # torch.hub announces a download on stdout even without a progress bar, with
    # this machine's cache path: quiet means quiet (the result records the source).
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) if not progress else contextlib.nullcontext():
        return _alexnet_weights().get_state_dict(progress=progress, check_hash=True,
                                                 weights_only=True)


def build_model(
    n_classes: int,
    *,
    weights: str | os.PathLike = "imagenet",
    on_missing_weights: str = "scratch",
    seed: int = 0,
    progress: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """AlexNet with its last fully connected layer replaced for ``n_classes``.

    Parameters
    ----------
    n_classes : int >= 2
        Number of output classes (the study's labels).
    weights : "imagenet", "none", "scratch" or path
        ``"imagenet"``: torchvision's ``IMAGENET1K_V1`` weights, through its
        normal cache and download (``torch.hub``). ``"none"``: random
        initialisation (PyTorch's defaults). ``"scratch"``: He-initialised
        random weights, for the from-scratch recipe. A path: a local state-dict file of
        torchvision's AlexNet (e.g. a copy of ``alexnet-owt-7be5be79.pth``),
        for machines without internet; names and shapes are checked, the file's
        last layer is ignored, and it is loaded with ``weights_only=True``.
    on_missing_weights : {"scratch", "fallback", "error"}
        What to do when ``weights="imagenet"`` cannot be obtained (no cached
        file and no download): ``"scratch"`` warns
        (:class:`PretrainedWeightsWarning`) and starts from He-initialised
        random weights, for the from-scratch recipe
        (:meth:`crowdnb.config.TrainRecipe.from_scratch`, which
        :func:`crowdnb.train.train_model` then uses); ``"fallback"`` warns and
        starts from PyTorch's default random weights, for the paper's recipe
        unchanged; ``"error"`` raises, saying where to put the file.
    seed : int
        Seed of the new layer's initialisation (and of the whole network's
        when it starts from random weights). Global RNG state is untouched.
    progress : bool
        Show torchvision's download progress bar.

    Returns
    -------
    model : torch.nn.Module
        The network, on the CPU, in training mode.
    info : dict
        ``pretrained`` (bool: ImageNet features are really used), ``weights``
        (what was asked for), ``source`` (file or URL they came from, or None),
        ``reason`` (why they are or are not pretrained), ``from_scratch_recipe``
        (True when the from-scratch recipe applies), ``init``, ``architecture``,
        ``new_layer``, ``new_layer_init``, ``n_classes``, ``seed``.

    Raises
    ------
    ParameterError
        For a bad ``n_classes``, ``on_missing_weights``, or a ``weights`` that
        is neither a keyword nor an existing file; or, with
        ``on_missing_weights="error"``, when the ImageNet weights cannot be
        obtained (the message gives the file name and the folder to put it in).
    DataError
        If a local weights file cannot be read or does not fit AlexNet.
    """
    from torchvision.models import alexnet

    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ParameterError(f"n_classes must be an integer >= 2, not {n_classes!r}")
    if on_missing_weights not in MISSING_WEIGHTS:
        raise ParameterError(f"on_missing_weights must be one of {', '.join(MISSING_WEIGHTS)}, "
                             f"not {on_missing_weights!r}")
    keyword = weights if isinstance(weights, str) and weights in WEIGHT_KEYWORDS else None
    if keyword is None:
        path = Path(weights)
        if not path.is_file():
            raise ParameterError(
                f"weights must be 'imagenet', 'none' or the path of a state-dict file; {str(weights)!r} is "
                "neither (no such file)"
            )

    generator = torch.Generator().manual_seed(int(seed))
    # Built on the meta device: no memory, no draw from the global RNG; every
    # parameter is then either loaded or initialised from `generator`.
    with torch.device("meta"):
        model = alexnet(num_classes=int(n_classes))
    model = model.to_empty(device="cpu")
    info: dict[str, Any] = {
        "pretrained": False,
        "weights": str(weights),
        "source": None,
        "reason": "",
        "architecture": "torchvision.models.alexnet",
        "new_layer": NEW_LAYER,
        "new_layer_init": "Glorot (Xavier) uniform weights, zero biases (MATLAB fullyConnectedLayer defaults)",
        "n_classes": int(n_classes),
        "seed": int(seed),
    }

    state = None
    if keyword == "imagenet":
        url = _alexnet_weights().url
        where = imagenet_weights_file()
        try:
            # torch.hub checks the hash of a download, not of a file already in
            # its cache: a file of that name can hold anything, so check it here.
            _check_cached_imagenet(where)
            state = _download_imagenet(progress)
            info.update(source=str(where),
                        sha256=weights_sha256(where) if where.is_file() else None,
                        imagenet_verified=True,
                        reason=f"ImageNet weights IMAGENET1K_V1 ({url}) through torch.hub's cache, "
                               f"SHA-256 verified ({IMAGENET_SHA256_PREFIX}...)")
        except (OSError, RuntimeError, pickle.UnpicklingError, EOFError, _NotImageNet) as exc:
            # URLError and socket errors are OSErrors; a corrupt or truncated
            # download fails torch.load or the hash check with RuntimeError.
            why = str(exc) if isinstance(exc, _NotImageNet) else f"{type(exc).__name__}: {exc}"
            if on_missing_weights == "error":
                raise ParameterError(
                    f"weights='imagenet': cannot obtain the ImageNet AlexNet weights ({why}). Download "
                    f"{url} on a machine with internet and put it at {where} (torch.hub cache dir "
                    f"{torch.hub.get_dir()} / checkpoints / {where.name}), or pass weights=PATH of a local "
                    "copy, or weights='none' to train from random initialisation"
                ) from None
            recipe = ("with the from-scratch recipe" if on_missing_weights == "scratch" else
                      "with the paper's fine-tuning recipe")
            info["reason"] = (
                f"ImageNet weights unavailable ({why}); trained from random initialisation {recipe}. "
                f"To use them, put {where.name} from {url} at {where}"
            )
            warnings.warn(f"weights='imagenet': {info['reason']}", PretrainedWeightsWarning, stacklevel=2)
        if state is not None:
            _load_backbone(model, state, f"ImageNet weights from {url}")
            info["pretrained"] = True
    elif keyword is None:
        path = Path(weights)
        state = _read_state_dict(path)
        _load_backbone(model, state, str(path))
        sha = weights_sha256(path)
        verified = is_imagenet_file(sha)
        info.update(pretrained=True, source=str(path.resolve()), sha256=sha,
                    imagenet_verified=verified,
                    reason=f"weights loaded from the local file {path} (SHA-256 {sha[:12]}...; "
                           + ("torchvision's ImageNet AlexNet)" if verified else
                              "not torchvision's published ImageNet file: pretrained on what "
                              "that file was trained on)"))
    else:
        info["reason"] = (f"weights={keyword!r} asked for: random initialisation"
                          + (" with the from-scratch recipe" if keyword == "scratch" else ""))

    info["from_scratch_recipe"] = keyword == "scratch" or bool(
        not info["pretrained"] and keyword == "imagenet" and on_missing_weights == "scratch")
    if info["from_scratch_recipe"]:
        _he_init(model, generator)
        info["init"] = "He (Kaiming) normal weights, zero biases (the from-scratch recipe)"
    elif not info["pretrained"]:
        _reset_parameters(model, generator)
        info["init"] = "PyTorch's default initialisation"
    _init_new_layer(model.classifier[6], generator)
    model.train()
    return model, info


@torch.inference_mode()
def predict_proba(
    model: nn.Module,
    images: torch.Tensor,
    *,
    normalization: Mapping[str, Any] | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 128,
    precision: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of uint8 images, in evaluation mode (no dropout).

    Parameters
    ----------
    model : torch.nn.Module
        The network (already on ``device``); evaluated without dropout, and
        left in the mode it was in.
    images : torch.Tensor [shape=(n, 3, height, width), dtype=uint8]
        Spectrogram images, on any device.
    normalization : dict, optional
        Input normalisation (default :func:`image_normalization`).
    device : str or torch.device
        Where to compute.
    batch_size : int > 0
        Images per forward pass (large batches are faster; memory grows with it).
    precision : {"float32", "bfloat16"}
        Arithmetic of the forward pass (see :data:`PRECISIONS`).

    Returns
    -------
    probabilities : np.ndarray [shape=(n, n_classes), dtype=float64]
        Softmax outputs.
    logits : np.ndarray [shape=(n, n_classes), dtype=float64]
        Network outputs before the softmax (for the cross-entropy loss).
    """
    dev = resolve_device(device)
    context = compute_context(precision, dev)
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, len(images), int(batch_size)):
            batch = images[start:start + int(batch_size)].to(dev, non_blocking=True)
            with context:
                chunks.append(model(model_input(batch, normalization, precision)).float().cpu())
    finally:
        model.train(was_training)  # the mode it was found in
    n_classes = model.classifier[6].out_features
    logits = torch.cat(chunks) if chunks else torch.empty((0, n_classes))
    return torch.softmax(logits.double(), dim=1).numpy(), logits.double().numpy()


def load_checkpoint(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`crowdnb.train.train_model`.

    Loaded with ``weights_only=True`` (no arbitrary code runs).

    Returns
    -------
    model : torch.nn.Module
        The trained network on ``device``, in evaluation mode.
    checkpoint : dict
        Everything else the checkpoint holds: ``classes``, ``normalization``,
        ``image_size``, ``preprocessing``, ``params``, ``model_info``,
        ``versions``.

    Raises
    ------
    DataError
        If the file is missing, unreadable or not a crowdnb checkpoint.
    """
    from torchvision.models import alexnet

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError):
        # torch's message advises weights_only=False: the wrong advice for a file
        # of unknown origin, which could then run code. Say what the file is not.
        raise DataError(f"{path}: not a crowdnb checkpoint (not a tensors-only file written by "
                        "torch.save; a damaged or foreign file)") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not a crowdnb checkpoint (format {CHECKPOINT_FORMAT!r} expected)")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise DataError(f"{path}: incomplete crowdnb checkpoint: no {', '.join(missing)} "
                        "(damaged, or not written by crowdnb.train)")
    classes = list(checkpoint["classes"])
    with torch.device("meta"):
        model = alexnet(num_classes=len(classes))
    model = model.to_empty(device="cpu")
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as exc:
        raise DataError(f"{path}: checkpoint does not fit AlexNet with {len(classes)} classes ({exc})") from None
    model.to(resolve_device(device)).eval()
    meta = {k: v for k, v in checkpoint.items() if k != "state_dict"}
    return model, meta
