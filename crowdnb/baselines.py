"""What simpler methods score on exactly the study's splits and folds.

The paper's claim is about an ImageNet network on *pictures* of spectra. To
judge it, the baselines chapter sets beside it, on the same training and test
blocks:

- the **constant classifier**: always the training set's most frequent class;
- **MFCC statistics + logistic regression**: per block, the mean and standard
  deviation over frames of the first 20 mel-frequency cepstral coefficients
  (the DCT of the block's log-mel spectrum), standardised, into scikit-learn's
  logistic regression: the cheapest audio baseline;
- a **small CNN on the log-mel matrix** itself (three convolution blocks with
  batch normalisation, global average pooling), the usual audio CNN, to tell
  "a CNN on spectra" from "an ImageNet network on pictures of spectra".

All three read the same loudness-normalised blocks and the same mel power
spectral density as the images (:class:`crowdnb.config.PreprocessConfig`), and
give predictions in :func:`crowdnb.evaluation.evaluate_predictions`'s form, so
that their metrics have the same chance levels, balanced accuracy, degeneracy
flag and intervals as the networks'.

The chapter itself is three calls: :func:`chapter_baselines` (every method on
the chapters' splits), :func:`chapter_tests` (its Holm-adjusted family of
tests) and :func:`chapter_findings` (its sentences).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import audio, spectrogram
from .config import PreprocessConfig
from .dataset import block_id
from .errors import DataError
from .files import read_table

__all__ = [
    "BASELINES",
    "block_log_mels",
    "mfcc_statistics",
    "constant_classifier",
    "mfcc_logistic_regression",
    "log_mel_cnn",
    "study_splits",
    "run_baselines",
    "predictions_table",
    "output_spread",
    "PAIRED",
    "network_method",
    "predictions_file",
    "chapter_baselines",
    "chapter_tests",
    "chapter_findings",
]

N_MFCC = 20


def block_log_mels(clips: pd.DataFrame, blocks: pd.DataFrame, *,
                   config: PreprocessConfig = PreprocessConfig(), progress: bool = False) -> np.ndarray:
    """The mel PSD (dB re 1/Hz) of every block of a table, in its row order.

    Each clip is loaded once (``clips``: ``clip_id`` and absolute ``path``),
    cut and loudness-normalised as the preprocessing does
    (:func:`crowdnb.audio.normalised_blocks` with ``config.audio``), and each
    block of ``blocks`` (``block_id``, ``clip_id``) gets
    :func:`crowdnb.spectrogram.block_spectrum` with ``config.spectrogram``.

    Returns
    -------
    np.ndarray, float32, [n_blocks, n_mels, n_frames]

    Raises
    ------
    DataError
        When a block's clip is not in ``clips``, or the clip has no such kept block.
    """
    from tqdm import tqdm

    paths = dict(zip(clips["clip_id"].astype(str), clips["path"].astype(str)))
    wanted = blocks["block_id"].astype(str).tolist()
    position = {b: i for i, b in enumerate(wanted)}
    out: np.ndarray | None = None
    clip_ids = list(dict.fromkeys(blocks["clip_id"].astype(str)))
    for clip_id in tqdm(clip_ids, desc="log-mel", unit="clip", disable=not progress):
        if clip_id not in paths:
            raise DataError(f"block table names clip {clip_id!r}, which is not in the clips table")
        y, sr = audio.load_clip(paths[clip_id], sr=config.audio.sr)
        for block in audio.normalised_blocks(y, sr, config=config.audio):
            index = position.get(block_id(clip_id, block.index))
            if index is None or not block.kept:
                continue
            S = spectrogram.block_spectrum(block.samples, sr,
                                           spectrogram=config.spectrogram).astype(np.float32)
            if out is None:
                out = np.full((len(wanted), *S.shape), np.nan, dtype=np.float32)
            out[index] = S
    missing = [wanted[i] for i in range(len(wanted)) if out is None or np.isnan(out[i, 0, 0])]
    if missing:
        raise DataError(f"no kept block {missing[0]!r} in its clip's audio ({len(missing)} block(s) "
                        "missing): the block table and the clips do not match")
    return out


def mfcc_statistics(S_db: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
    """Mean and standard deviation over frames of each block's first MFCCs.

    The MFCCs are the orthonormal DCT-II of the log-mel spectrum (dB) along
    the mel axis, as ``librosa.feature.mfcc`` computes them from a log-mel
    spectrogram. Returns ``[n_blocks, 2 * n_mfcc]``.
    """
    import scipy.fft

    mfcc = scipy.fft.dct(np.asarray(S_db, dtype=np.float64), type=2, axis=1, norm="ortho")[:, :n_mfcc]
    return np.concatenate([mfcc.mean(axis=2), mfcc.std(axis=2)], axis=1)


def constant_classifier(train_y: np.ndarray, n_test: int, classes: Sequence[str],
                        **_: Any) -> np.ndarray:
    """Probabilities of always answering the training set's most frequent class."""
    counts = [int(np.sum(np.asarray(train_y) == c)) for c in classes]
    probs = np.zeros((n_test, len(classes)))
    probs[:, int(np.argmax(counts))] = 1.0  # ties: the first class in order
    return probs


def mfcc_logistic_regression(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                             classes: Sequence[str], *, seed: int = 0, **_: Any) -> np.ndarray:
    """MFCC statistics, standardised, into a logistic regression (scikit-learn's defaults, C=1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    model.fit(mfcc_statistics(train_x), np.asarray(train_y))
    probs = model.predict_proba(mfcc_statistics(test_x))
    order = [list(model.classes_).index(c) if c in model.classes_ else None for c in classes]
    return np.stack([probs[:, i] if i is not None else np.zeros(len(probs)) for i in order], axis=1)


def _cnn_input(S_db: np.ndarray) -> np.ndarray:
    """Halve the mel axis and quarter the time axis by averaging (cost, not information)."""
    n, m, t = S_db.shape
    S = S_db[:, : m - m % 2, : t - t % 4]
    return S.reshape(n, m // 2, 2, t // 4, 4).mean(axis=(2, 4)).astype(np.float32)


def log_mel_cnn(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                classes: Sequence[str], *, seed: int = 0, epochs: int = 15, batch_size: int = 32,
                lr: float = 1e-3, **_: Any) -> np.ndarray:
    """A small CNN trained on the log-mel matrices; probabilities of the test blocks.

    Three blocks of 3x3 convolution, batch normalisation, ReLU and 2x2 max
    pooling (16, 32, 64 channels), global average pooling, dropout 0.3 and a
    linear layer; Adam (lr 1e-3) on cross-entropy for ``epochs`` epochs, the
    input standardised with the training set's mean and deviation (in dB).
    Seeded, on the CPU.
    """
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(int(seed))
    x_train, x_test = _cnn_input(train_x), _cnn_input(test_x)
    mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
    x_train = torch.from_numpy((x_train - mean) / std)[:, None]
    x_test = torch.from_numpy((x_test - mean) / std)[:, None]
    index = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([index[v] for v in train_y])

    def block(n_in, n_out):
        return [nn.Conv2d(n_in, n_out, 3, padding=1), nn.BatchNorm2d(n_out), nn.ReLU(), nn.MaxPool2d(2)]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                              nn.Linear(64, len(classes)))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        model.train()
        for _ in range(int(epochs)):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), batch_size):
                batch = order[start:start + batch_size]
                if len(batch) < 2:  # batch normalisation needs two
                    continue
                optimizer.zero_grad()
                loss_fn(model(x_train[batch]), y[batch]).backward()
                optimizer.step()
        model.eval()
        with torch.inference_mode():
            return torch.softmax(model(x_test), dim=1).numpy().astype(np.float64)


#: The baselines, by the name the book gives them.
BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "constant classifier": constant_classifier,
    "MFCC statistics + logistic regression": mfcc_logistic_regression,
    "small CNN on the log-mel matrix": log_mel_cnn,
}


def study_splits(folder: str | os.PathLike) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The training and test blocks an experiment of a run used, fold by fold.

    ``folder`` is the experiment's folder (``metrics_path(...).parent``): its
    ``train_blocks.csv``/``test_blocks.csv``, or those of its ``fold_<i>/``.

    Raises
    ------
    DataError
        When the folder holds neither.
    """
    folder = Path(folder)
    folds = sorted(folder.glob("fold_*"), key=lambda p: int(p.name.split("_")[1]))
    places = folds or [folder]
    for place in places:
        if not (place / "train_blocks.csv").is_file():
            raise DataError(f"{place}: no train_blocks.csv (has the experiment's chapter run?)")
    return [(read_table(p / "train_blocks.csv"), read_table(p / "test_blocks.csv")) for p in places]


def predictions_table(test: pd.DataFrame, probs: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Test blocks with ``predicted`` and ``prob_<class>``, as the networks' predictions."""
    table = test[[c for c in ("block_id", "clip_id", "event_id", "label", "start_s", "end_s")
                  if c in test.columns]].copy()
    table["predicted"] = [classes[i] for i in np.argmax(probs, axis=1)]
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i]
    return table


def output_spread(predictions: pd.DataFrame, classes: Sequence[str]) -> dict[str, Any]:
    """How much a network's answers vary from one test block to another.

    A constant classifier's class probabilities barely move: ``spread`` is
    the mean over classes of their standard deviation across test blocks,
    beside ``mean_probability`` (each class's mean) and the share of the most
    frequent answer.
    """
    probs = predictions[[f"prob_{c}" for c in classes]].to_numpy(float)
    top = predictions["predicted"].value_counts(normalize=True)
    return {"spread": float(probs.std(axis=0).mean()),
            "mean_probability": {c: float(v) for c, v in zip(classes, probs.mean(axis=0))},
            "majority_share": float(top.iloc[0]), "majority_class": str(top.index[0])}


def run_baselines(folds: Sequence[tuple[pd.DataFrame, pd.DataFrame]], spectra: Mapping[str, np.ndarray],
                  classes: Sequence[str], *, seed: int = 0,
                  methods: Mapping[str, Callable[..., np.ndarray]] = BASELINES) -> dict[str, pd.DataFrame]:
    """Every baseline's pooled out-of-fold predictions on the given folds.

    ``spectra`` maps each ``block_id`` to its log-mel matrix
    (:func:`block_log_mels`). Returns ``{method name: predictions}`` with a
    ``fold`` column.
    """
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in methods}
    for i, (train, test) in enumerate(folds, start=1):
        train_x = np.stack([spectra[b] for b in train["block_id"].astype(str)])
        test_x = np.stack([spectra[b] for b in test["block_id"].astype(str)])
        train_y = train["label"].astype(str).to_numpy()
        for name, method in methods.items():
            probs = method(train_x=train_x, train_y=train_y, test_x=test_x, classes=list(classes),
                           n_test=len(test), seed=seed)
            out[name].append(predictions_table(test, probs, classes).assign(fold=i))
    return {name: pd.concat(tables, ignore_index=True) for name, tables in out.items()}


# ---------------------------------------------------------------------------
# The baselines chapter: every method on the chapters' own splits, and its tests

#: The two baselines chapter 8 tests the chapters' network against, block for block.
PAIRED = ("MFCC statistics + logistic regression", "small CNN on the log-mel matrix")


def network_method(metrics: Mapping[str, Any]) -> str:
    """How the baselines table names a chapter's network (from its metrics)."""
    if metrics["pretrained"]:
        title = metrics["weights_info"].get("title", "AlexNet")
        return f"{title}, pretrained, paper recipe (the paper's method)"
    if metrics["params"].get("recipe") == "from scratch":
        return "AlexNet, random init., from-scratch recipe"
    return "AlexNet, random init., paper recipe"


def predictions_file(out: str | os.PathLike, key: str, method: str) -> Path:
    """Where the baselines chapter writes a method's predictions for one experiment."""
    return Path(out) / key / f"{method.split()[0].lower()}_predictions.csv"


def chapter_baselines(run_dir: str | os.PathLike, out: str | os.PathLike, *,
                      methods: Mapping[str, Callable[..., np.ndarray]] = BASELINES,
                      seed: int = 0) -> pd.DataFrame:
    """Every method of ``methods`` on each main experiment's own training and test blocks.

    For each task, the blocks of its experiments' splits and folds get their
    log-mel matrices once (:func:`block_log_mels`, with the chapter's
    preprocessing); each method's pooled predictions are written to
    :func:`predictions_file` and evaluated like the networks'.

    Returns
    -------
    pd.DataFrame
        One row per experiment and method (the chapters' network last in each
        experiment): ``experiment``, ``key``, ``method`` and
        :func:`crowdnb.experiments.score_numbers`' columns.
    """
    from .clips import read_clips
    from .evaluation import evaluate_predictions
    from .experiments import EXPERIMENTS, metrics_path, score_numbers
    from .files import read_json, write_table
    from .workflow import stageio

    main = [e for e in EXPERIMENTS.values() if not e.optional]
    metrics = {e.key: read_json(metrics_path(run_dir, e)) for e in main}
    rows = []
    for task in ("emotions", "football"):
        experiments = [e for e in main if e.task == task]
        folds = {e.key: study_splits(metrics_path(run_dir, e).parent) for e in experiments}
        blocks = pd.concat([t for f in folds.values() for pair in f for t in pair]).drop_duplicates(
            "block_id")
        clips = read_clips(stageio.collection_folder(run_dir, task))
        config = PreprocessConfig.from_dict(metrics[experiments[0].key]["preprocessing"],
                                            where="metrics")
        spectra = dict(zip(blocks["block_id"].astype(str), block_log_mels(clips, blocks, config=config)))
        for e in experiments:
            classes = metrics[e.key]["classes"]
            for name, predictions in run_baselines(folds[e.key], spectra, classes, seed=seed,
                                                   methods=methods).items():
                write_table(predictions_file(out, e.key, name), predictions)
                evaluated = evaluate_predictions(predictions, classes, seed=seed,
                                                 train_labels=folds[e.key][0][0]["label"])
                rows.append({"experiment": e.title, "key": e.key, "method": name,
                             **score_numbers(evaluated)})
            rows.append({"experiment": e.title, "key": e.key, "method": network_method(metrics[e.key]),
                         **score_numbers(metrics[e.key])})
    return pd.DataFrame(rows)


def chapter_tests(table: pd.DataFrame, run_dir: str | os.PathLike, out: str | os.PathLike, *,
                  seed: int = 0) -> dict[tuple[str, str], dict[str, Any]]:
    """The baselines chapter's family of tests, Holm-adjusted together.

    For each main experiment: MFCC + logistic regression against chance
    (``(key, "mfcc")``: its score numbers), and the chapters' network against
    each of :data:`PAIRED` on the same test blocks (``(key, method)``: a
    :func:`crowdnb.experiments.paired_effect`). Each gets ``p_holm`` and
    ``holm_m`` (the family's size).
    """
    from .experiments import EXPERIMENTS, metrics_path, paired_effect
    from .significance import holm

    tests: dict[tuple[str, str], dict[str, Any]] = {}
    for e in (e for e in EXPERIMENTS.values() if not e.optional):
        here = table[table["key"] == e.key].set_index("method")
        tests[e.key, "mfcc"] = dict(here.loc[PAIRED[0]])
        network = read_table(metrics_path(run_dir, e).with_name("predictions.csv"))
        for name in PAIRED:
            tests[e.key, name] = paired_effect(network, read_table(predictions_file(out, e.key, name)),
                                               seed=seed)
    raw = [t["p_above_chance"] if what == "mfcc" else t["p"] for (_, what), t in tests.items()]
    for t, p in zip(tests.values(), holm(raw)):
        t.update(p_holm=p, holm_m=len(raw))
    return tests


def chapter_findings(tests: Mapping[tuple[str, str], Mapping[str, Any]],
                     metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """The baselines chapter's findings, one Markdown item per main experiment, from its tests."""
    from .experiments import EXPERIMENTS
    from .report import paired_comparison, verdict

    findings = []
    for e in (e for e in EXPERIMENTS.values() if not e.optional):
        name = network_method(metrics[e.key]).split(",")[0]
        findings.append(f"- **{e.title[0].upper() + e.title[1:]}**. "
                        + verdict(tests[e.key, "mfcc"], name="MFCC + logistic regression") + " "
                        + paired_comparison(tests[e.key, PAIRED[0]],
                                            first_name=f"{name} (chapters 4-6)",
                                            second_name="MFCC + logistic regression") + " "
                        + paired_comparison(tests[e.key, PAIRED[1]], first_name=f"{name}",
                                            second_name="the small log-mel CNN"))
    return "\n".join(findings) + "\n"
