"""Fine-tuning AlexNet on spectrogram images: the paper's recipe, as plain functions.

The paper trains with MATLAB's ``trainNetwork`` and the options of
:class:`crowdnb.config.TrainRecipe`: SGD with momentum 0.9, initial learning
rate 1e-4 (the new last layer at 20x: ``WeightLearnRateFactor`` and
``BiasLearnRateFactor`` 20), L2 regularisation 1e-4, 6 epochs, minibatches of
10 images, shuffled every epoch, validation on the test set every 3
iterations. This module follows ``trainNetwork``'s semantics where they matter:

- *L2 regularisation* applies to weights only: MATLAB's layers have
  ``WeightL2Factor`` 1 and ``BiasL2Factor`` 0 by default. Its gradient
  ``weight_decay * w`` is scaled by the layer's learning rate, as in MATLAB.
- *SGD with momentum*: ``v <- m v + g; w <- w - lr v`` (PyTorch) equals MATLAB's
  ``v <- m v - lr g; w <- w + v`` at a constant learning rate.
- *Shuffle 'every-epoch'*: a new permutation of the training images at the
  start of each epoch (from a seeded ``torch.Generator``).
- *The final partial minibatch is discarded*, as ``trainNetwork`` does when
  the minibatch size does not divide the number of training images; with
  shuffling, different images are left out in each epoch.
- *Validation*: after the first iteration, every ``validate_every``
  iterations, and after the last, as MATLAB's training progress shows it,
  without dropout. The paper's validation set *is* its 20 % test set; the
  intermediate validations can use a fixed, seeded subset of it
  (``validation_blocks``), the last one always uses all of it.
- The network returned is the one after the last iteration (MATLAB's
  ``OutputNetwork`` default), with no early stopping.

The pieces, in the manner of torchvision's reference scripts:
:func:`load_images` decodes the images once, :func:`train_one_epoch` runs one
epoch (and the validations that fall in it), :func:`evaluate` scores a set of
images, :func:`train_model` wires them and returns a :class:`TrainResult`,
and :func:`write_artifacts` writes its files. The metrics themselves come from
:func:`crowdnb.evaluation.evaluate_predictions`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import PreprocessConfig, TrainRecipe
from .errors import DataError, ParameterError
from .evaluation import evaluate_predictions
from .files import atomic_path, write_json, write_table
from .model import CHECKPOINT_FORMAT, PRECISIONS, build_model, compute_context
from .model import (image_normalization, memory_format, model_input, predict_proba, prepare_model,
                    resolve_device)
from .networks import NETWORKS, Network
from .provenance import environment_info, library_versions
from .splits import kept_blocks, temporal_leakage

__all__ = ["TrainResult", "train_model", "train_one_epoch", "evaluate", "write_artifacts",
           "load_images", "FILES"]

_REQUIRED = ("block_id", "clip_id", "label", "image_path")
#: The files :func:`write_artifacts` writes, by role.
FILES = {"metrics": "metrics.json", "history": "history.csv", "predictions": "predictions.csv",
         "checkpoint": "model.pt"}


@dataclass
class TrainResult:
    """One training: what it measured and what it made.

    Attributes
    ----------
    metrics : dict
        :func:`crowdnb.evaluation.evaluate_predictions`'s scores plus the
        training's record (``counts``, ``pretrained``, ``training`` times,
        ``params``, ``environment``, ...), as written to ``metrics.json``.
    history : pd.DataFrame
        One row per validation: ``iteration``, ``epoch``, ``train_loss``,
        ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``n_val``, ``elapsed_s``.
    predictions : pd.DataFrame
        One row per test block: ``block_id``, ``clip_id``, ``label``,
        ``predicted``, ``correct``, ``prob_<class>`` (and ``start_s``,
        ``end_s`` when known).
    checkpoint : dict
        The trained network and everything that made it (see
        :func:`crowdnb.model.load_checkpoint`).
    """

    metrics: dict[str, Any]
    history: pd.DataFrame
    predictions: pd.DataFrame
    checkpoint: dict[str, Any] = field(repr=False)


def load_images(paths: Sequence[str | os.PathLike], *, progress: bool = False) -> torch.Tensor:
    """Decode PNG spectrogram images once into one uint8 tensor.

    Training then indexes this tensor instead of decoding files every epoch
    (about 150 kB per 227 x 227 image: 700 images are about 100 MB).

    Parameters
    ----------
    paths : sequence of path-like
        Image files, all of the same size.
    progress : bool
        Show a progress bar.

    Returns
    -------
    torch.Tensor [shape=(n, 3, height, width), dtype=uint8]
        RGB images.

    Raises
    ------
    DataError
        If a file is missing, unreadable, or of another size than the first.
    """
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    images: torch.Tensor | None = None
    for i, path in enumerate(tqdm(paths, desc="decoding images", unit="img", disable=not progress)):
        try:
            with Image.open(path) as im:
                array = np.array(im.convert("RGB"))
        except FileNotFoundError:
            raise DataError(f"{path}: spectrogram image not found") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{path}: cannot read the image ({exc})") from None
        if images is None:
            images = torch.empty((len(paths), 3, *array.shape[:2]), dtype=torch.uint8)
        elif array.shape[:2] != tuple(images.shape[2:]):
            raise DataError(
                f"{path}: image is {array.shape[1]}x{array.shape[0]} pixels, the first was "
                f"{images.shape[3]}x{images.shape[2]}; all spectrogram images must have one size")
        images[i] = torch.from_numpy(array).permute(2, 0, 1)
    if images is None:
        raise DataError("no images to load")
    return images


def _plain(obj: Any) -> Any:
    """Plain Python containers and numbers (what ``torch.load(weights_only=True)`` accepts)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return _plain(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ParameterError(
        f"preprocessing/leakage values must be numbers, strings, lists or dicts, not {type(obj).__name__}")


def _check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a positive integer{' or None' if allow_none else ''}, "
                             f"not {value!r}")
    return int(value)


# ---------------------------------------------------------------------------
# Data


@dataclass
class _Data:
    """The decoded images and labels of one training, on its device."""

    train: pd.DataFrame
    test: pd.DataFrame
    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor  # on the CPU: losses are computed there
    decode_s: float
    #: turns a minibatch of ``x_train``/``x_test`` into the trained module's input
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None
    frozen_s: float = 0.0
    #: the images' files (absolute), in ``x_train``'s and ``x_test``'s order
    image_files: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    frozen_reused: int = 0


def _check_blocks(blocks: pd.DataFrame, name: str) -> pd.DataFrame:
    blocks = kept_blocks(blocks, required=_REQUIRED, name=name).reset_index(drop=True)
    no_image = blocks["image_path"].isna() | (blocks["image_path"].astype(str) == "")
    if no_image.any():
        raise DataError(f"{name} block {blocks.loc[no_image, 'block_id'].iloc[0]!r} has no image_path")
    return blocks


def _prepare_data(train_blocks: pd.DataFrame, test_blocks: pd.DataFrame, *, image_root: Path,
                  classes: Sequence[str] | None, device: torch.device, progress: bool) -> _Data:
    train = _check_blocks(train_blocks, "train")
    test = _check_blocks(test_blocks, "test")
    labels = sorted(set(train["label"].astype(str)) | set(test["label"].astype(str)))
    classes = [str(c) for c in classes] if classes is not None else labels
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(f"labels {', '.join(unknown)} are not among classes {classes}")
    absent = sorted(set(test["label"].astype(str)) - set(train["label"].astype(str)))
    if absent:
        raise DataError(f"test label(s) {', '.join(absent)} have no training block; the model "
                        "cannot learn them")
    if len(classes) < 2:
        raise DataError(f"training needs at least 2 classes, the blocks have {classes}")
    index = {c: i for i, c in enumerate(classes)}
    t0 = time.perf_counter()
    files = tuple(tuple(str((image_root / p).resolve()) for p in table["image_path"].astype(str))
                  for table in (train, test))
    x_train = load_images([Path(f) for f in files[0]], progress=progress)
    x_test = load_images([Path(f) for f in files[1]], progress=progress)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"training images are {tuple(x_train.shape[2:])}, test images "
                        f"{tuple(x_test.shape[2:])}")
    # The images live on the device: on a GPU, no copy per minibatch.
    return _Data(
        train=train, test=test, classes=classes, x_train=_on_device(x_train, device),
        y_train=torch.tensor([index[c] for c in train["label"].astype(str)], device=device),
        x_test=_on_device(x_test, device),
        y_test=torch.tensor([index[c] for c in test["label"].astype(str)]),
        decode_s=time.perf_counter() - t0, image_files=files)


def _on_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``images`` on ``device``; to a GPU from pinned memory, without waiting for the copy."""
    if device.type != "cuda":
        return images.to(device)
    return images.pin_memory().to(device, non_blocking=True)


# ---------------------------------------------------------------------------
# Training and evaluation


@contextlib.contextmanager
def _torch_state(seed: int, deterministic: bool, num_threads: int | None,
                 device: torch.device) -> Iterator[None]:
    """Seeded dropout, deterministic kernels and a thread count, restored on exit.

    Dropout draws from torch's global generator (it takes no generator
    argument), so training runs inside ``fork_rng``: seeded here, and the
    caller's global RNG state is put back afterwards.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                torch.get_num_threads())
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            if deterministic:
                # cuBLAS needs this workspace setting for reproducible results.
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True)
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False
            if num_threads is not None:
                torch.set_num_threads(num_threads)
            yield
        finally:
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
            torch.backends.cudnn.deterministic = previous[2]
            torch.backends.cudnn.benchmark = previous[3]
            torch.set_num_threads(previous[4])


def _param_groups(model: nn.Module, lr: float, factor: float, weight_decay: float, *,
                  new_layer: str, trained: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Four groups: (backbone | new layer) x (weights with L2 | biases without).

    With ``trained`` (name prefixes), only those parameters train; the others
    are frozen (``requires_grad`` off). Batch-norm scales are weights here
    (with L2) and their offsets biases (without).
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if trained is not None and not name.startswith(tuple(trained)):
            param.requires_grad_(False)
            continue
        new = name.startswith(new_layer + ".")
        groups.setdefault((new, name.endswith("bias")), []).append(param)
    return [
        {"params": params, "lr": lr * (factor if new else 1.0), "weight_decay": 0.0 if bias else weight_decay,
         "name": f"{'new layer' if new else 'pretrained layers'} {'biases' if bias else 'weights'}"}
        for (new, bias), params in sorted(groups.items())
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             device: torch.device, batch_size: int, precision: str,
             prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """Score a set of images without dropout (the model is left in the mode it was in).

    Returns
    -------
    dict
        ``probabilities`` and ``logits`` (np.ndarray [n, n_classes]),
        ``loss`` (mean cross-entropy), ``accuracy``, ``seconds``.
    """
    t = time.perf_counter()
    probs, logits = predict_proba(model, images, prepare=prepare, device=device,
                                  batch_size=batch_size, precision=precision)
    return {"probabilities": probs, "logits": logits,
            "loss": float(nn.functional.cross_entropy(torch.from_numpy(logits), labels).item()),
            "accuracy": float((probs.argmax(axis=1) == labels.numpy()).mean()),
            "seconds": time.perf_counter() - t}


@dataclass
class _Loop:
    """The state a training carries from one iteration (and epoch) to the next."""

    n_iterations: int
    validate_every: int | None
    device: torch.device
    iteration: int = 0
    images: int = 0
    running_n: int = 0
    train_steps_s: float = 0.0
    validation_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.running_loss = torch.zeros((), device=self.device)
        self.running_correct = torch.zeros((), dtype=torch.long, device=self.device)
        self.start()

    def start(self) -> None:
        """Start the clocks (training time excludes building the model)."""
        self.started = self.segment = time.perf_counter()

    def due(self) -> bool:
        last = self.iteration == self.n_iterations
        return self.iteration == 1 or last or (
            self.validate_every is not None and self.iteration % self.validate_every == 0)

    def record(self, epoch: int, validation: dict[str, Any], n_val: int) -> dict[str, Any]:
        row = {"iteration": self.iteration, "epoch": epoch,
               "train_loss": float(self.running_loss.item()) / self.running_n,
               "train_accuracy": float(self.running_correct.item()) / self.running_n,
               "val_loss": validation["loss"], "val_accuracy": validation["accuracy"],
               "n_val": n_val, "elapsed_s": time.perf_counter() - self.started}
        self.history.append(row)
        self.running_loss.zero_()
        self.running_correct.zero_()
        self.running_n = 0
        return row


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: _Data, loop: _Loop, *,
                    epoch: int, order: torch.Tensor, batch_size: int, iterations: int,
                    precision: str, validate: Callable[[bool], tuple[dict[str, Any], int]],
                    on_step: Callable[[dict[str, Any] | None], None] = lambda row: None) -> None:
    """One pass over the training images in ``order``, with the validations that fall in it.

    Parameters
    ----------
    model, optimizer
        The network (in training mode) and its optimiser.
    data : _Data
        The decoded images and labels.
    loop : _Loop
        The state carried between epochs (iteration count, running averages,
        history), updated in place.
    epoch : int
        This epoch's number (1, 2, ...).
    order : torch.Tensor [shape=(n_train,)]
        The permutation of the training images for this epoch.
    batch_size, iterations : int
        Images per minibatch, minibatches in this epoch.
    precision : str
        Arithmetic of the forward and backward passes (:data:`crowdnb.model.PRECISIONS`).
    validate : callable
        ``validate(last) -> (evaluation, n_val)``, called when a validation is
        due (``last`` for the final iteration).
    on_step : callable
        Called after every iteration with the new history row (or None).
    """
    context = compute_context(precision, loop.device)
    loss_fn = nn.CrossEntropyLoss()
    for b in range(iterations):
        index = order[b * batch_size:(b + 1) * batch_size]
        inputs = data.prepare(data.x_train[index])
        targets = data.y_train[index]
        optimizer.zero_grad(set_to_none=True)
        with context:
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
        loss.backward()
        optimizer.step()
        loop.iteration += 1
        loop.images += len(index)
        loop.running_loss += loss.detach() * len(index)
        loop.running_correct += (outputs.detach().argmax(dim=1) == targets).sum()
        loop.running_n += len(index)
        row = None
        if loop.due():
            _sync(loop.device)
            loop.train_steps_s += time.perf_counter() - loop.segment
            validation, n_val = validate(loop.iteration == loop.n_iterations)
            loop.validation_s += validation["seconds"]
            row = loop.record(epoch, validation, n_val)
            loop.segment = time.perf_counter()
        on_step(row)


def _predictions(data: _Data, probs: np.ndarray) -> pd.DataFrame:
    test, classes = data.test, data.classes
    events = test["event_id"] if "event_id" in test.columns else test["clip_id"]
    table = pd.DataFrame({"block_id": test["block_id"].to_numpy(),
                          "clip_id": test["clip_id"].astype(str).to_numpy(),
                          "event_id": events.astype(str).to_numpy(),
                          "label": test["label"].astype(str).to_numpy(),
                          "predicted": [classes[i] for i in probs.argmax(axis=1)]})
    for column in ("start_s", "end_s"):
        if column in test.columns:
            table.insert(len(table.columns) - 1, column, test[column].to_numpy())
    table["correct"] = table["label"] == table["predicted"]
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i]
    return table


@dataclass
class _Network:
    """The network of one training, set up: what trains, with which recipe."""

    model: nn.Module
    trained: nn.Module  # the module the minibatches go through (the model, or its top)
    groups: list[dict[str, Any]]
    recipe: TrainRecipe
    info: dict[str, Any]
    fine_tune: str


def _setup_network(data: _Data, recipe: TrainRecipe, *, network: str, fine_tune: str,
                   weights: str | os.PathLike, on_missing_weights: str, seed: int,
                   device: torch.device, precision: str, batch_size: int,
                   progress: bool) -> _Network:
    """Build the network, choose its recipe and trained layers, and prepare the inputs.

    With ``fine_tune="top"``, ``data``'s images are replaced, in place, by the
    outputs of the frozen early layers (computed once, in evaluation mode).
    """
    model, info = build_model(len(data.classes), network=network, weights=weights,
                              on_missing_weights=on_missing_weights, seed=seed, progress=progress)
    spec: Network = NETWORKS[info["network"]]
    chosen = spec.fine_tune(fine_tune)
    if fine_tune == "auto" and not info["pretrained"]:
        chosen = "all"  # random early layers are nothing to keep
    if info["from_scratch_recipe"]:
        recipe = recipe.from_scratch(lr_per_image=spec.scratch_lr_per_image,
                                     weight_decay=spec.scratch_weight_decay)
    model = prepare_model(model, device, precision, spec.name)
    normalization = image_normalization(spec.name)
    data.prepare = lambda x: model_input(x, normalization, precision, spec.name)
    trained, prefixes = model, None
    if chosen == "top":
        frozen, trained = spec.trunk(model)
        prefixes = trained.prefixes
        # the frozen layers' outputs depend on the image and the weights alone: cached by both
        identity = ((info["network"], info["sha256"], precision, str(device))
                    if info["pretrained"] and info.get("sha256") else None)
        _freeze_inputs(data, frozen, batch_size=min(batch_size, FROZEN_BATCH), precision=precision,
                       device=device, identity=identity, layout=memory_format(precision, spec.name))
    groups = _param_groups(model, recipe.lr, recipe.new_layer_lr_factor, recipe.weight_decay,
                           new_layer=spec.new_layer, trained=prefixes)
    return _Network(model, trained, groups, recipe, info, chosen)


#: Images per forward pass of the frozen layers: on a CPU, small batches keep the
#: expanded activations of the early blocks in cache (EfficientNet-Lite0's frozen
#: layers ran at 30 images/s in batches of 8, 16 in batches of 64, on 2 cores).
FROZEN_BATCH = 8


#: The frozen early layers' outputs of the images this process has seen, by
#: (network, weights' SHA-256, precision, device) and image file: the trainings
#: of one chapter on the same images (the folds of a cross-validation, the
#: guard gap, chapter 12's variants) compute them once. Bounded by
#: :data:`FROZEN_CACHE_BYTES`; past it, new outputs are not kept.
_FROZEN_OUTPUTS: dict[tuple, torch.Tensor] = {}
FROZEN_CACHE_BYTES = 2 * 1024 ** 3


@torch.no_grad()
def _freeze_inputs(data: _Data, frozen: nn.Module, *, batch_size: int, precision: str,
                   device: torch.device, identity: tuple | None = None,
                   layout: torch.memory_format = torch.contiguous_format) -> None:
    """Replace the images by the frozen early layers' outputs (float32), once per image.

    With an ``identity`` (the frozen weights, precision and device), outputs
    already computed in this process for the same image file are reused.
    The later layers get them in ``layout`` (the network's memory layout).
    """
    t0 = time.perf_counter()
    frozen.eval()
    context = compute_context(precision, device)

    def compute(images: torch.Tensor) -> torch.Tensor:
        chunks = []
        for start in range(0, len(images), batch_size):
            with context:
                chunks.append(frozen(data.prepare(images[start:start + batch_size])).float())
        return torch.cat(chunks)

    def outputs(images: torch.Tensor, files: tuple[str, ...]) -> torch.Tensor:
        if identity is None or len(files) != len(images):
            return compute(images)
        missing = [i for i, f in enumerate(files) if (identity, f) not in _FROZEN_OUTPUTS]
        data.frozen_reused += len(files) - len(missing)
        fresh = dict(zip(missing, compute(images[missing]))) if missing else {}
        kept = sum(t.numel() * t.element_size() for t in _FROZEN_OUTPUTS.values())
        for i, row in fresh.items():
            if kept + row.numel() * row.element_size() <= FROZEN_CACHE_BYTES:
                _FROZEN_OUTPUTS[identity, files[i]] = row
                kept += row.numel() * row.element_size()
        return torch.stack([fresh[i] if i in fresh else _FROZEN_OUTPUTS[identity, f]
                            for i, f in enumerate(files)])

    data.x_train = outputs(data.x_train, data.image_files[0])
    data.x_test = outputs(data.x_test, data.image_files[1])
    if data.x_train.dim() != 4:
        layout = torch.contiguous_format
    data.prepare = lambda x: x.contiguous(memory_format=layout)
    data.frozen_s = time.perf_counter() - t0


def train_model(
    train_blocks: pd.DataFrame,
    test_blocks: pd.DataFrame,
    *,
    image_root: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    recipe: TrainRecipe = TrainRecipe(),
    network: str = "alexnet",
    fine_tune: str = "auto",
    weights: str | os.PathLike = "imagenet",
    on_missing_weights: str = "packaged",
    seed: int = 0,
    device: str = "auto",
    deterministic: bool = False,
    num_threads: int | None = None,
    precision: str = "float32",
    eval_batch_size: int = 64,
    bootstrap_resamples: int = 2000,
    classes: Sequence[str] | None = None,
    preprocessing: PreprocessConfig | Mapping[str, Any] | None = None,
    leakage: Mapping[str, Any] | None = None,
    write_checkpoint: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune an ImageNet network on the training blocks and evaluate it on the test blocks.

    Parameters
    ----------
    train_blocks, test_blocks : pd.DataFrame
        Block tables with ``block_id``, ``clip_id``, ``label`` and
        ``image_path`` (relative to ``image_root``); ``start_s``/``end_s``
        are carried into the predictions. Rows with ``kept == False`` are left out.
    image_root : path-like
        Folder the image paths are relative to.
    out_dir : path-like or None
        Where :func:`write_artifacts` writes the metrics, history, predictions
        and checkpoint; None writes nothing.
    recipe : TrainRecipe
        The training recipe (default: the paper's).
    network : str
        The network (:data:`crowdnb.networks.NETWORKS`; the paper's is ``"alexnet"``).
    fine_tune : {"auto", "all", "top"}
        Which layers train (:data:`crowdnb.networks.FINE_TUNE`): ``"all"``, as
        the paper; ``"top"``, the network's later layers and the new one, on
        outputs of its frozen early layers computed once per image (exact:
        the frozen layers see each image the same way every epoch);
        ``"auto"``, the network's default from pretrained weights (AlexNet
        all, EfficientNet-Lite0 top) and ``"all"`` from random weights.
    weights, on_missing_weights
        Initial weights, as :func:`crowdnb.model.build_model` takes them.
        When the ImageNet weights are missing, ``"packaged"`` fine-tunes
        EfficientNet-Lite0 from its packaged ImageNet weights with this
        recipe; ``"scratch"`` trains the network from random weights with
        ``recipe.from_scratch()`` (recorded in the metrics' ``params``, with
        the recipe asked for).
    seed : int
        Seed of the new layer's initialisation (and of the whole network from
        random weights), the shuffling, dropout, the validation subset and the
        bootstrap.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    deterministic : bool
        Deterministic algorithms only: the same seed gives the same network.
    num_threads : int or None
        CPU threads for torch during training (None leaves it).
    precision : {"float32", "bfloat16"}
        Arithmetic of the forward and backward passes (:data:`crowdnb.model.PRECISIONS`).
    eval_batch_size : int > 0
        Images per forward pass when evaluating (no effect on results).
    bootstrap_resamples : int > 0
        Resamples of the bootstrap intervals.
    classes : sequence of str, optional
        Output classes in order; default: the sorted labels of both sets.
    preprocessing : PreprocessConfig or its dict, optional
        The settings that made the images (checked here), stored in the checkpoint so that :mod:`crowdnb.predict` makes the
        same images from any audio file.
    leakage : dict, optional
        The split's leakage figure (:func:`crowdnb.splits.temporal_leakage`);
        computed from ``start_s``/``end_s`` when not given and possible.
    write_checkpoint : bool
        Write the trained network (``model.pt``) to ``out_dir``; the metrics,
        history and predictions are written either way.
    progress : bool
        Show progress bars.

    Returns
    -------
    TrainResult

    Raises
    ------
    ParameterError
        For a setting out of range, or a minibatch larger than the training set.
    DataError
        For a malformed block table, a missing image, or a test label absent
        from training.
    """
    from tqdm import tqdm

    if not isinstance(recipe, TrainRecipe):
        raise ParameterError(f"recipe must be a TrainRecipe, not {type(recipe).__name__}")
    num_threads = _check_positive_int(num_threads, "num_threads", allow_none=True)
    eval_batch_size = _check_positive_int(eval_batch_size, "eval_batch_size")
    bootstrap_resamples = _check_positive_int(bootstrap_resamples, "bootstrap_resamples")
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    dev, seed = resolve_device(device), int(seed)
    data = _prepare_data(train_blocks, test_blocks, image_root=Path(image_root), classes=classes,
                         device=dev, progress=progress)
    n_train = len(data.train)
    if recipe.drop_last and recipe.batch_size > n_train:
        raise ParameterError(f"batch_size {recipe.batch_size} is larger than the training set "
                             f"({n_train} blocks); with drop_last (MATLAB's behaviour) no "
                             "minibatch would be left")
    per_epoch = n_train // recipe.batch_size if recipe.drop_last else math.ceil(n_train / recipe.batch_size)
    val_index = _validation_subset(len(data.test), recipe.validation_blocks, seed)
    y_val = data.y_test[val_index]
    loop = _Loop(per_epoch * recipe.epochs, recipe.validate_every, dev)

    with _torch_state(seed, bool(deterministic), num_threads, dev):
        net = _setup_network(data, recipe, network=network, fine_tune=fine_tune, weights=weights,
                             on_missing_weights=on_missing_weights, seed=seed, device=dev,
                             precision=precision, batch_size=eval_batch_size, progress=progress)
        model, trained, groups, weights_info = net.model, net.trained, net.groups, net.info
        asked, recipe = recipe, net.recipe
        x_val = data.x_test[val_index.to(dev)]
        optimizer = torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                                    fused=dev.type in ("cpu", "cuda"))
        shuffle = torch.Generator().manual_seed(seed)

        def validate(last: bool) -> tuple[dict[str, Any], int]:
            x, y = (data.x_test, data.y_test) if last else (x_val, y_val)
            return evaluate(trained, x, y, device=dev, batch_size=eval_batch_size,
                            precision=precision, prepare=data.prepare), len(y)

        bar = tqdm(total=loop.n_iterations, desc="training", unit="it", disable=not progress)

        def on_step(row: dict[str, Any] | None) -> None:
            bar.update(1)
            if row is not None:
                bar.set_postfix(val_acc=f"{row['val_accuracy']:.3f}", val_loss=f"{row['val_loss']:.3f}")

        trained.train()
        loop.start()
        for epoch in range(1, recipe.epochs + 1):
            order = torch.randperm(n_train, generator=shuffle).to(dev)
            train_one_epoch(trained, optimizer, data, loop, epoch=epoch, order=order,
                            batch_size=recipe.batch_size, iterations=per_epoch,
                            precision=precision, validate=validate, on_step=on_step)
        bar.close()
        train_time_s = time.perf_counter() - loop.started
        final = evaluate(trained, data.x_test, data.y_test, device=dev, batch_size=eval_batch_size,
                         precision=precision, prepare=data.prepare)
        state_dict = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}

    predictions = _predictions(data, final["probabilities"])
    params = {**recipe.to_dict(),
              "recipe": "from scratch" if weights_info["from_scratch_recipe"] else "as given",
              "asked_recipe": asked.to_dict(),
              "network": weights_info["network"], "network_asked": network,
              "fine_tune": net.fine_tune, "fine_tune_asked": fine_tune,
              "weights": str(weights), "on_missing_weights": on_missing_weights,
              "seed": seed, "device": str(device), "deterministic": bool(deterministic),
              "num_threads": num_threads, "precision": precision, "eval_batch_size": eval_batch_size,
              "bootstrap_resamples": bootstrap_resamples, "image_root": str(image_root),
              "out_dir": str(out_dir) if out_dir is not None else None}
    metrics = {
        **evaluate_predictions(predictions, data.classes, n_resamples=bootstrap_resamples, seed=seed,
                               train_labels=data.train["label"].astype(str).to_numpy()),
        "test_loss": final["loss"],
        **_record(data, loop, final, weights_info, groups, recipe, train_time_s=train_time_s,
                  n_validation=len(val_index), leakage=leakage),
        "device": str(dev), "environment": environment_info(), "params": params, "seed": seed,
        "preprocessing": _preprocessing(preprocessing),
        "files": dict(FILES),
    }
    result = TrainResult(metrics, pd.DataFrame(loop.history), predictions,
                         _checkpoint(state_dict, data, metrics))
    if out_dir is not None:
        write_artifacts(result, out_dir, checkpoint=write_checkpoint)
    return result


def _checkpoint(state_dict: dict[str, torch.Tensor], data: _Data,
                metrics: dict[str, Any]) -> dict[str, Any]:
    """What ``model.pt`` holds: the weights, and what :mod:`crowdnb.predict` needs to use them.

    The run's folders stay out of its parameters: the same training gives
    the same bytes anywhere.
    """
    info, params = metrics["weights_info"], metrics["params"]
    return {
        "format": CHECKPOINT_FORMAT, "network": info["network"],
        "architecture": info["architecture"], "state_dict": state_dict,
        "classes": data.classes, "normalization": image_normalization(info["network"]),
        "image_size": [int(data.x_train.shape[2]), int(data.x_train.shape[3])],
        "preprocessing": metrics["preprocessing"],
        "params": {k: v for k, v in params.items() if k not in ("image_root", "out_dir")},
        "seed": metrics["seed"], "model_info": info, "versions": library_versions(),
    }


def _record(data: _Data, loop: _Loop, final: dict[str, Any], weights_info: dict[str, Any],
            groups: list[dict[str, Any]], recipe: TrainRecipe, *, train_time_s: float,
            n_validation: int, leakage: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a training did besides its scores: counts, weights, times, rates."""
    n_train, per_epoch = len(data.train), loop.n_iterations // recipe.epochs
    return {
        "final_train_loss": loop.history[-1]["train_loss"],
        "final_train_accuracy": loop.history[-1]["train_accuracy"],
        "classes": data.classes,
        "counts": _counts(data, n_validation),
        "leakage": _leakage(data, leakage),
        "pretrained": bool(weights_info["pretrained"]),
        "pretrained_reason": weights_info["reason"],
        "weights_info": weights_info,
        "training": {
            "time_s": train_time_s, "train_steps_s": loop.train_steps_s,
            "validation_s": loop.validation_s, "n_validations": len(loop.history),
            "final_evaluation_s": final["seconds"], "decode_s": data.decode_s,
            "frozen_layers_s": data.frozen_s, "frozen_outputs_reused": data.frozen_reused,
            "trained_parameters": sum(p.numel() for g in groups for p in g["params"]),
            "images_trained": loop.images,
            "train_images_per_s": loop.images / loop.train_steps_s if loop.train_steps_s > 0 else math.nan,
            "eval_images_per_s": len(data.test) / final["seconds"] if final["seconds"] > 0 else math.nan,
            "n_iterations": loop.n_iterations, "iterations_per_epoch": per_epoch,
            "images_discarded_per_epoch": n_train - per_epoch * recipe.batch_size if recipe.drop_last else 0,
            "param_groups": [{k: g[k] for k in ("name", "lr", "weight_decay")} for g in groups],
        },
    }


def _preprocessing(preprocessing: PreprocessConfig | Mapping[str, Any] | None) -> dict | None:
    """The settings that made the images, checked, in the form checkpoints keep."""
    if preprocessing is None:
        return None
    if not isinstance(preprocessing, PreprocessConfig):
        preprocessing = PreprocessConfig.from_dict(preprocessing, where="preprocessing")
    return preprocessing.to_dict()


def _validation_subset(n_test: int, validation_blocks: int | None, seed: int) -> torch.Tensor:
    if validation_blocks is not None and validation_blocks < n_test:
        rng = np.random.default_rng([seed, 1])
        return torch.from_numpy(np.sort(rng.choice(n_test, validation_blocks, replace=False)))
    return torch.arange(n_test)


def _counts(data: _Data, n_validation: int) -> dict[str, Any]:
    per_class = {name: {c: int((table["label"].astype(str) == c).sum()) for c in data.classes}
                 for name, table in (("train", data.train), ("test", data.test))}
    clips = {name: {c: int(table.loc[table["label"].astype(str) == c, "clip_id"].nunique())
                    for c in data.classes}
             for name, table in (("train", data.train), ("test", data.test))}
    return {"train_blocks": len(data.train), "test_blocks": len(data.test),
            "train_clips": int(data.train["clip_id"].nunique()),
            "test_clips": int(data.test["clip_id"].nunique()),
            "train_per_class": per_class["train"], "test_per_class": per_class["test"],
            "train_clips_per_class": clips["train"], "test_clips_per_class": clips["test"],
            "validation_blocks": int(n_validation)}


def _leakage(data: _Data, leakage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if leakage is not None:
        return {**_plain(leakage), "source": "caller"}
    if all(c in data.train.columns and c in data.test.columns for c in ("start_s", "end_s")):
        return {**temporal_leakage(data.train, data.test), "source": "computed"}
    return None


def write_artifacts(result: TrainResult, out_dir: str | os.PathLike, *,
                    checkpoint: bool = True) -> dict[str, Path]:
    """Write a training's metrics, history, predictions and checkpoint (:data:`FILES`).

    With ``checkpoint=False`` the network is not written (a training whose
    network nothing reads later); the returned paths leave it out.

    Every file is written atomically; the checkpoint's bytes depend only on
    what it holds (not on the temporary name it was written under), so the
    same training gives the same file.

    Returns
    -------
    dict[str, Path]
        The path of each file, by role.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {role: out_dir / name for role, name in FILES.items()
             if checkpoint or role != "checkpoint"}
    if checkpoint:
        # torch.save names the records inside its zip after the file it is given;
        # a buffer gets the same fixed name ("archive") every time.
        buffer = io.BytesIO()
        torch.save(result.checkpoint, buffer)
        with atomic_path(paths["checkpoint"]) as tmp:
            tmp.write_bytes(buffer.getvalue())
    write_table(paths["history"], result.history)
    write_table(paths["predictions"], result.predictions)
    write_json(paths["metrics"], result.metrics)
    return paths
