"""Fine-tuning AlexNet on spectrogram images: the paper's recipe, and its evaluation.

The paper trains with MATLAB's ``trainNetwork`` and these options: SGD with
momentum 0.9, initial learning rate 1e-4 (the new last layer at 20x:
``WeightLearnRateFactor`` and ``BiasLearnRateFactor`` 20), L2 regularisation
1e-4, 6 epochs, minibatches of 10 images, shuffled every epoch, validation on
the test set every 3 iterations. :func:`train_model` has these as defaults and
follows ``trainNetwork``'s semantics where they matter:

- *L2 regularisation* applies to weights only: MATLAB's layers have
  ``WeightL2Factor`` 1 and ``BiasL2Factor`` 0 by default. Its gradient
  ``weight_decay * w`` is scaled by the layer's learning rate, as in MATLAB.
- *SGD with momentum*: ``v <- m v + g; w <- w - lr v`` (PyTorch) equals MATLAB's
  ``v <- m v - lr g; w <- w + v`` at a constant learning rate.
- *Shuffle 'every-epoch'*: a new permutation of the training images at the
  start of each epoch (from a seeded ``torch.Generator``).
- *The final partial minibatch is discarded*, as ``trainNetwork`` does when
  the minibatch size does not divide the number of training images; with
  shuffling, different images are left out in each epoch. ``drop_last=False``
  keeps it.
- *Validation*: after the first iteration, every ``validate_every``
  iterations, and after the last, as MATLAB's training progress shows it. The
  network is evaluated without dropout. The paper's validation set *is* its
  20 % test set. (The paper also shuffles the validation images before each
  validation, which cannot change a loss or accuracy over the whole set.)
- The network returned is the one after the last iteration (MATLAB's
  ``OutputNetwork`` default), with no early stopping.

Validating every 3 iterations on the whole test set costs about as much as the
training itself on a CPU; ``validation_blocks`` evaluates the intermediate
validations on a fixed, seeded subset of the test set instead (the final
evaluation always uses every test block).

What is measured, with uncertainty: block accuracy with a 95 % bootstrap
interval over blocks (which treats blocks as independent) and over clips (a
cluster bootstrap: blocks of one clip are correlated, so this one is the
honest interval), per-class precision, recall and F1, the confusion matrix,
and clip-level accuracy by majority vote over each clip's blocks.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .errors import DataError, ParameterError
from .files import atomic_path, write_json, write_table
from .model import CHECKPOINT_FORMAT, NEW_LAYER, PRECISIONS, build_model, compute_context
from .model import image_normalization, model_input, predict_proba, prepare_model, resolve_device
from .provenance import environment_info, library_versions
from .splits import kept_blocks, temporal_leakage

__all__ = ["train_model", "load_images", "bootstrap_accuracy", "evaluate_predictions"]

_REQUIRED = ("block_id", "clip_id", "label", "image_path")


def load_images(
    paths: Sequence[str | os.PathLike], *, progress: bool = False
) -> torch.Tensor:
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
                f"{images.shape[3]}x{images.shape[2]}; all spectrogram images must have one size"
            )
        images[i] = torch.from_numpy(array).permute(2, 0, 1)
    if images is None:
        raise DataError("no images to load")
    return images


def bootstrap_accuracy(
    correct: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap interval of an accuracy.

    Parameters
    ----------
    correct : np.ndarray [shape=(n,), dtype=bool]
        Whether each test block was classified correctly.
    groups : np.ndarray [shape=(n,)], optional
        Clip of each block. When given, whole clips are resampled with their
        blocks (a cluster bootstrap), which respects the correlation between
        blocks of one clip; otherwise blocks are resampled independently.
    n_resamples : int > 0
        Bootstrap resamples.
    seed : int
        Seed of the resampling.
    level : float in (0, 1)
        Coverage of the interval.

    Returns
    -------
    dict
        ``low``, ``high`` (accuracy, 0-1), ``level``, ``method``,
        ``n_resamples``, ``n_units`` (blocks or clips resampled), ``seed``.
    """
    correct = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    if groups is None:
        units_correct, units_n = correct, np.ones_like(correct)
        method = ("percentile bootstrap over test blocks (blocks resampled independently; too narrow when "
                  "blocks of a clip are correlated)")
    else:
        codes, group_index = np.unique(np.asarray(groups), return_inverse=True)
        units_correct = np.bincount(group_index, weights=correct, minlength=len(codes))
        units_n = np.bincount(group_index, minlength=len(codes)).astype(float)
        method = "cluster (percentile) bootstrap over test clips (whole clips resampled with their blocks)"
    n_units = len(units_n)
    if n_units == 0:
        return {"low": math.nan, "high": math.nan, "level": level, "method": method,
                "n_resamples": int(n_resamples), "n_units": 0, "seed": int(seed)}
    draws = rng.integers(0, n_units, size=(int(n_resamples), n_units))
    accuracies = units_correct[draws].sum(axis=1) / units_n[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(accuracies, [alpha, 1.0 - alpha])
    return {"low": float(low), "high": float(high), "level": level, "method": method,
            "n_resamples": int(n_resamples), "n_units": int(n_units), "seed": int(seed)}


def evaluate_predictions(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy with intervals, per-class scores, confusion matrix and clip-level accuracy.

    Parameters
    ----------
    predictions : pd.DataFrame
        One row per test block: ``clip_id``, ``label`` (true), ``predicted``
        and ``prob_<class>`` for every class.
    classes : sequence of str
        The classes, in the model's output order.
    n_resamples, seed : int
        Bootstrap resamples and their seed.

    Returns
    -------
    dict
        See :func:`train_model` (the evaluation part of its metrics).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    classes = list(classes)
    y_true = predictions["label"].astype(str).to_numpy()
    y_pred = predictions["predicted"].astype(str).to_numpy()
    correct = y_true == y_pred
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    counts = confusion_matrix(y_true, y_pred, labels=classes)

    prob_columns = [f"prob_{c}" for c in classes]
    clips = []
    for clip, group in predictions.groupby("clip_id", sort=True):
        votes = group["predicted"].value_counts()
        mean_prob = group[prob_columns].to_numpy(float).mean(axis=0)
        tied = [c for c in classes if votes.get(c, 0) == votes.max()]
        # A tie in the vote goes to the tied class with the higher mean probability.
        vote = max(tied, key=lambda c: mean_prob[classes.index(c)])
        clips.append({
            "clip_id": str(clip),
            "label": str(group["label"].iloc[0]),
            "n_blocks": int(len(group)),
            "block_accuracy": float((group["label"] == group["predicted"]).mean()),
            "vote": vote,
            "mean_probability_label": classes[int(np.argmax(mean_prob))],
        })
    clip_table = pd.DataFrame(clips)
    return {
        "accuracy": float(correct.mean()) if len(correct) else math.nan,
        "n_correct": int(correct.sum()),
        "n_test": int(len(correct)),
        "accuracy_ci95": bootstrap_accuracy(correct, n_resamples=n_resamples, seed=seed),
        "accuracy_ci95_clip": bootstrap_accuracy(
            correct, groups=predictions["clip_id"].astype(str).to_numpy(), n_resamples=n_resamples, seed=seed
        ),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "macro_f1": float(np.mean(f1)),
        "confusion": {"labels": classes, "counts": counts.tolist(),
                      "rows": "true label", "columns": "predicted label"},
        "clip_accuracy": float((clip_table["vote"] == clip_table["label"]).mean()) if clips else math.nan,
        "clip_accuracy_mean_probability": (
            float((clip_table["mean_probability_label"] == clip_table["label"]).mean()) if clips else math.nan
        ),
        "clip_vote": ("majority vote over each clip's test blocks; a tie goes to the tied class with the "
                      "higher mean probability"),
        "n_test_clips_evaluated": len(clips),
        "clips": clips,
    }


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
        f"preprocessing/leakage values must be numbers, strings, lists or dicts, not {type(obj).__name__}"
    )


def _check_blocks(blocks: pd.DataFrame, name: str) -> pd.DataFrame:
    blocks = kept_blocks(blocks, required=_REQUIRED, name=name).reset_index(drop=True)
    no_image = blocks["image_path"].isna() | (blocks["image_path"].astype(str) == "")
    if no_image.any():
        raise DataError(f"{name} block {blocks.loc[no_image, 'block_id'].iloc[0]!r} has no image_path")
    return blocks


def _check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a positive integer{' or None' if allow_none else ''}, not {value!r}")
    return int(value)


def _check_nonnegative(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ParameterError(f"{name} must be finite and >= 0, not {value!r}")
    return number


@contextlib.contextmanager
def _torch_state(seed: int, deterministic: bool, num_threads: int | None, device: torch.device) -> Iterator[None]:
    """Seeded dropout, deterministic kernels and a thread count, restored on exit.

    Dropout draws from torch's global generator (it takes no generator
    argument), so training runs inside ``fork_rng``: seeded here, and the
    caller's global RNG state is put back afterwards.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_num_threads(),
    )
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


def _param_groups(model: nn.Module, lr: float, factor: float, weight_decay: float) -> list[dict[str, Any]]:
    """Four groups: (backbone | new layer) x (weights with L2 | biases without)."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        new = name.startswith(NEW_LAYER + ".")
        groups.setdefault((new, name.endswith("bias")), []).append(param)
    return [
        {"params": params, "lr": lr * (factor if new else 1.0), "weight_decay": 0.0 if bias else weight_decay,
         "name": f"{'new layer' if new else 'pretrained layers'} {'biases' if bias else 'weights'}"}
        for (new, bias), params in sorted(groups.items())
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_model(
    train_blocks: pd.DataFrame,
    test_blocks: pd.DataFrame,
    *,
    image_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    weights: str | os.PathLike = "imagenet",
    on_missing_weights: str = "fallback",
    epochs: int = 6,
    batch_size: int = 10,
    lr: float = 1e-4,
    new_layer_lr_factor: float = 20.0,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    validate_every: int | None = 3,
    validation_blocks: int | None = None,
    drop_last: bool = True,
    seed: int = 0,
    device: str = "auto",
    deterministic: bool = False,
    num_threads: int | None = None,
    precision: str = "float32",
    eval_batch_size: int = 128,
    bootstrap_resamples: int = 2000,
    classes: Sequence[str] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    leakage: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune AlexNet on the training blocks and evaluate it on the test blocks.

    The defaults are the paper's recipe (see the module docstring for how
    MATLAB's ``trainNetwork`` semantics are matched).

    Parameters
    ----------
    train_blocks, test_blocks : pd.DataFrame
        Block tables (``crowdnb.dataset.preprocess``, split by
        ``crowdnb.splits``) with ``block_id``, ``clip_id``, ``label`` and
        ``image_path``; rows with ``kept == False`` are ignored. ``start_s``
        and ``end_s`` (s) let the temporal leakage be computed.
    image_root : path-like
        Folder the blocks' ``image_path`` is relative to.
    out_dir : path-like
        Where ``metrics.json``, ``history.csv``, ``predictions.csv`` and
        ``model.pt`` are written (atomically).
    weights, on_missing_weights
        Initial weights; see :func:`crowdnb.model.build_model`.
    epochs : int > 0
        Passes over the training set (paper: 6).
    batch_size : int > 0
        Images per minibatch (paper: 10).
    lr : float >= 0
        Learning rate of the pretrained layers (paper: 1e-4).
    new_layer_lr_factor : float >= 0
        Learning-rate factor of the new last layer, weights and biases
        (MATLAB's ``WeightLearnRateFactor``/``BiasLearnRateFactor``; 20).
    momentum : float >= 0
        SGD momentum (MATLAB's default 0.9).
    weight_decay : float >= 0
        L2 regularisation factor on weights, not biases (paper: 1e-4).
    validate_every : int > 0 or None
        Validate every this many iterations (paper: 3), after the first and
        after the last; None validates only after the last.
    validation_blocks : int > 0 or None
        Number of test blocks (a fixed, seeded random subset) used by the
        intermediate validations; None uses all (the paper's recipe). The
        validation after the last iteration and the final metrics always use
        every test block.
    drop_last : bool
        Discard the final partial minibatch of each epoch, as MATLAB does.
    seed : int
        Seed of the new layer's initialisation, the shuffling, dropout, the
        validation subset and the bootstrap.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    deterministic : bool
        Use only deterministic algorithms (``torch.use_deterministic_algorithms``),
        so the same seed gives the same result on the same machine and device.
    num_threads : int > 0 or None
        CPU threads for torch during training (None: torch's default).
    precision : {"float32", "bfloat16"}
        Arithmetic of training and evaluation: ``"float32"`` (the paper's), or
        ``"bfloat16"`` autocast, several times faster on CPUs with AMX (see
        :data:`crowdnb.model.PRECISIONS`); recorded in the metrics.
    eval_batch_size : int > 0
        Images per forward pass when evaluating (no effect on results).
    bootstrap_resamples : int > 0
        Resamples of the bootstrap intervals.
    classes : sequence of str, optional
        Output classes in order; default: the sorted labels of both sets.
    preprocessing : dict, optional
        The parameters that made the spectrogram images (those of
        ``crowdnb.dataset.preprocess``), stored in the checkpoint so that
        ``crowdnb.predict`` can make the same images from any audio file.
    leakage : dict, optional
        The split's leakage figure (``crowdnb.splits.temporal_leakage``);
        computed from ``start_s``/``end_s`` when not given and possible.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The metrics, also written to ``out_dir/metrics.json``: ``accuracy``,
        ``accuracy_ci95`` (bootstrap over blocks), ``accuracy_ci95_clip``
        (cluster bootstrap over clips), ``n_correct``, ``n_test``,
        ``per_class`` (precision, recall, f1, support), ``macro_f1``,
        ``confusion``, ``clip_accuracy`` (majority vote),
        ``clip_accuracy_mean_probability``, ``clip_vote``, ``clips``,
        ``test_loss``, ``final_train_loss``, ``final_train_accuracy``,
        ``classes``, ``counts``, ``leakage``, ``pretrained``,
        ``pretrained_reason``, ``weights_info``, ``training`` (times, images
        per second, iterations), ``device``, ``environment``, ``params``,
        ``seed``, ``preprocessing``, ``files``.

    Raises
    ------
    ParameterError
        For a parameter out of range, or a batch larger than the training set.
    DataError
        For a malformed block table, a missing image, or a test label absent
        from training.
    """
    from tqdm import tqdm

    # --- parameters -------------------------------------------------------
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    validate_every = _check_positive_int(validate_every, "validate_every", allow_none=True)
    validation_blocks = _check_positive_int(validation_blocks, "validation_blocks", allow_none=True)
    num_threads = _check_positive_int(num_threads, "num_threads", allow_none=True)
    eval_batch_size = _check_positive_int(eval_batch_size, "eval_batch_size")
    bootstrap_resamples = _check_positive_int(bootstrap_resamples, "bootstrap_resamples")
    lr = _check_nonnegative(lr, "lr")
    new_layer_lr_factor = _check_nonnegative(new_layer_lr_factor, "new_layer_lr_factor")
    momentum = _check_nonnegative(momentum, "momentum")
    weight_decay = _check_nonnegative(weight_decay, "weight_decay")
    dev = resolve_device(device)
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if on_missing_weights not in ("fallback", "error"):
        raise ParameterError(f"on_missing_weights must be 'fallback' or 'error', not {on_missing_weights!r}")
    if not (weights in ("imagenet", "none") or Path(weights).is_file()):
        raise ParameterError(
            f"weights must be 'imagenet', 'none' or the path of a state-dict file; {str(weights)!r} is neither"
        )
    seed = int(seed)
    preprocessing = _plain(preprocessing) if preprocessing is not None else None
    params = {
        "weights": str(weights), "on_missing_weights": on_missing_weights, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "new_layer_lr_factor": new_layer_lr_factor,
        "momentum": momentum, "weight_decay": weight_decay, "validate_every": validate_every,
        "validation_blocks": validation_blocks, "drop_last": bool(drop_last), "seed": seed,
        "device": str(device), "deterministic": bool(deterministic), "num_threads": num_threads,
        "precision": precision,
        "eval_batch_size": eval_batch_size, "bootstrap_resamples": bootstrap_resamples,
        "image_root": str(image_root), "out_dir": str(out_dir),
    }

    # --- data --------------------------------------------------------------
    train = _check_blocks(train_blocks, "train")
    test = _check_blocks(test_blocks, "test")
    labels = sorted(set(train["label"].astype(str)) | set(test["label"].astype(str)))
    classes = [str(c) for c in classes] if classes is not None else labels
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(f"labels {', '.join(unknown)} are not among classes {classes}")
    absent = sorted(set(test["label"].astype(str)) - set(train["label"].astype(str)))
    if absent:
        raise DataError(f"test label(s) {', '.join(absent)} have no training block; the model cannot learn them")
    if len(classes) < 2:
        raise DataError(f"training needs at least 2 classes, the blocks have {classes}")
    n_train = len(train)
    if drop_last and batch_size > n_train:
        raise ParameterError(
            f"batch_size {batch_size} is larger than the training set ({n_train} blocks); with drop_last "
            "(MATLAB's behaviour) no minibatch would be left"
        )
    class_index = {c: i for i, c in enumerate(classes)}
    y_train = torch.tensor([class_index[c] for c in train["label"].astype(str)], dtype=torch.long)
    y_test = torch.tensor([class_index[c] for c in test["label"].astype(str)], dtype=torch.long)

    if leakage is None and all(c in train.columns and c in test.columns for c in ("start_s", "end_s")):
        leakage_info: dict[str, Any] | None = {**temporal_leakage(train, test), "source": "computed"}
    elif leakage is not None:
        leakage_info = {**_plain(leakage), "source": "caller"}
    else:
        leakage_info = None

    root = Path(image_root)
    t0 = time.perf_counter()
    x_train = load_images([root / p for p in train["image_path"].astype(str)], progress=progress)
    x_test = load_images([root / p for p in test["image_path"].astype(str)], progress=progress)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"training images are {tuple(x_train.shape[2:])}, test images {tuple(x_test.shape[2:])}")
    decode_s = time.perf_counter() - t0
    # The images live on the device: on a GPU, no copy per minibatch.
    x_train, x_test = x_train.to(dev), x_test.to(dev)
    y_train_dev = y_train.to(dev)
    normalization = image_normalization()

    if validation_blocks is not None and validation_blocks < len(test):
        subset = np.sort(np.random.default_rng([seed, 1]).choice(len(test), validation_blocks, replace=False))
        val_index = torch.from_numpy(subset)
    else:
        val_index = torch.arange(len(test))
    x_val, y_val = x_test[val_index.to(dev)], y_test[val_index]

    iterations_per_epoch = n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    n_iterations = iterations_per_epoch * epochs
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    history: list[dict[str, Any]] = []
    with _torch_state(seed, bool(deterministic), num_threads, dev):
        model, weights_info = build_model(
            len(classes), weights=weights, on_missing_weights=on_missing_weights, seed=seed, progress=progress
        )
        model = prepare_model(model, dev, precision)
        context = compute_context(precision, dev)
        groups = _param_groups(model, lr, new_layer_lr_factor, weight_decay)
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, fused=dev.type in ("cpu", "cuda"))
        loss_fn = nn.CrossEntropyLoss()
        shuffle = torch.Generator().manual_seed(seed)

        def validate(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
            t = time.perf_counter()
            probs, logits = predict_proba(model, x, normalization=normalization, device=dev,
                                          batch_size=eval_batch_size, precision=precision)
            model.train()
            loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), y).item())
            accuracy = float((probs.argmax(axis=1) == y.numpy()).mean())
            return loss, accuracy, time.perf_counter() - t

        train_steps_s = 0.0
        validation_s = 0.0
        images_trained = 0
        running_loss = torch.zeros((), device=dev)
        running_correct = torch.zeros((), dtype=torch.long, device=dev)
        running_n = 0
        iteration = 0
        t_start = time.perf_counter()
        bar = tqdm(total=n_iterations, desc="training", unit="it", disable=not progress)
        model.train()
        segment_start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n_train, generator=shuffle).to(dev)
            for b in range(iterations_per_epoch):
                index = order[b * batch_size:(b + 1) * batch_size]
                inputs = model_input(x_train[index], normalization, precision)
                targets = y_train_dev[index]
                optimizer.zero_grad(set_to_none=True)
                with context:
                    outputs = model(inputs)
                    loss = loss_fn(outputs, targets)
                loss.backward()
                optimizer.step()
                iteration += 1
                images_trained += len(index)
                running_loss += loss.detach() * len(index)
                running_correct += (outputs.detach().argmax(dim=1) == targets).sum()
                running_n += len(index)
                bar.update(1)
                last = iteration == n_iterations
                if iteration == 1 or last or (validate_every is not None and iteration % validate_every == 0):
                    _sync(dev)
                    train_steps_s += time.perf_counter() - segment_start
                    if last:
                        val_loss, val_acc, dt = validate(x_test, y_test)
                        n_val = len(test)
                    else:
                        val_loss, val_acc, dt = validate(x_val, y_val)
                        n_val = len(val_index)
                    validation_s += dt
                    history.append({
                        "iteration": iteration, "epoch": epoch,
                        "train_loss": float(running_loss.item()) / running_n,
                        "train_accuracy": float(running_correct.item()) / running_n,
                        "val_loss": val_loss, "val_accuracy": val_acc, "n_val": n_val,
                        "elapsed_s": time.perf_counter() - t_start,
                    })
                    running_loss.zero_()
                    running_correct.zero_()
                    running_n = 0
                    bar.set_postfix(val_acc=f"{val_acc:.3f}", val_loss=f"{val_loss:.3f}")
                    segment_start = time.perf_counter()
        bar.close()
        train_time_s = time.perf_counter() - t_start

        t = time.perf_counter()
        probs, logits = predict_proba(model, x_test, normalization=normalization, device=dev,
                                      batch_size=eval_batch_size, precision=precision)
        final_eval_s = time.perf_counter() - t
        test_loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), y_test).item())
        state_dict = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}

    # --- outputs -----------------------------------------------------------
    predictions = pd.DataFrame({
        "block_id": test["block_id"].to_numpy(),
        "clip_id": test["clip_id"].astype(str).to_numpy(),
        "label": test["label"].astype(str).to_numpy(),
        "predicted": [classes[i] for i in probs.argmax(axis=1)],
    })
    for column in ("start_s", "end_s"):
        if column in test.columns:
            predictions.insert(len(predictions.columns) - 1, column, test[column].to_numpy())
    predictions["correct"] = predictions["label"] == predictions["predicted"]
    for i, c in enumerate(classes):
        predictions[f"prob_{c}"] = probs[:, i]

    evaluation = evaluate_predictions(predictions, classes, n_resamples=bootstrap_resamples, seed=seed)
    per_class_counts = {
        name: {c: int((table["label"].astype(str) == c).sum()) for c in classes}
        for name, table in (("train", train), ("test", test))
    }
    files = {"metrics": "metrics.json", "history": "history.csv", "predictions": "predictions.csv",
             "checkpoint": "model.pt"}
    metrics: dict[str, Any] = {
        **evaluation,
        "test_loss": test_loss,
        "final_train_loss": history[-1]["train_loss"],
        "final_train_accuracy": history[-1]["train_accuracy"],
        "classes": classes,
        "counts": {
            "train_blocks": n_train, "test_blocks": int(len(test)),
            "train_clips": int(train["clip_id"].nunique()), "test_clips": int(test["clip_id"].nunique()),
            "train_per_class": per_class_counts["train"], "test_per_class": per_class_counts["test"],
            "validation_blocks": int(len(val_index)),
        },
        "leakage": leakage_info,
        "pretrained": bool(weights_info["pretrained"]),
        "pretrained_reason": weights_info["reason"],
        "weights_info": weights_info,
        "training": {
            "time_s": train_time_s,
            "train_steps_s": train_steps_s,
            "validation_s": validation_s,
            "n_validations": len(history),
            "final_evaluation_s": final_eval_s,
            "decode_s": decode_s,
            "images_trained": images_trained,
            "train_images_per_s": images_trained / train_steps_s if train_steps_s > 0 else math.nan,
            "eval_images_per_s": len(test) / final_eval_s if final_eval_s > 0 else math.nan,
            "n_iterations": n_iterations,
            "iterations_per_epoch": iterations_per_epoch,
            "images_discarded_per_epoch": n_train - iterations_per_epoch * batch_size if drop_last else 0,
            "param_groups": [{k: g[k] for k in ("name", "lr", "weight_decay")} for g in groups],
        },
        "device": str(dev),
        "environment": environment_info(),
        "params": params,
        "seed": seed,
        "preprocessing": preprocessing,
        "files": files,
    }

    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "architecture": weights_info["architecture"],
        "state_dict": state_dict,
        "classes": classes,
        "normalization": normalization,
        "image_size": [int(x_train.shape[2]), int(x_train.shape[3])],
        "preprocessing": preprocessing,
        "params": params,
        "seed": seed,
        "model_info": weights_info,
        "versions": library_versions(),
    }
    with atomic_path(out_dir / files["checkpoint"]) as tmp:
        torch.save(checkpoint, tmp)
    write_table(out_dir / files["history"], pd.DataFrame(history))
    write_table(out_dir / files["predictions"], predictions)
    write_json(out_dir / files["metrics"], metrics)
    return metrics
