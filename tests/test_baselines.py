"""The baselines: features, classifiers and the study's folds, on hand-made spectra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdnb.baselines import (constant_classifier, log_mel_cnn, mfcc_logistic_regression,
                               mfcc_statistics, output_spread, predictions_table, run_baselines,
                               study_splits)
from crowdnb.errors import DataError


def test_mfcc_statistics_are_the_dct_of_the_log_mel_spectrum():
    import scipy.fft

    rng = np.random.default_rng(0)
    S = rng.normal(-80, 10, size=(3, 128, 50))
    features = mfcc_statistics(S)
    assert features.shape == (3, 40)
    mfcc = scipy.fft.dct(S, type=2, axis=1, norm="ortho")[:, :20]
    assert np.allclose(features[:, :20], mfcc.mean(axis=2))
    assert np.allclose(features[:, 20:], mfcc.std(axis=2))
    # a flat spectrum has energy only in the 0th coefficient
    flat = mfcc_statistics(np.full((1, 128, 10), -60.0))
    assert flat[0, 0] == pytest.approx(-60.0 * np.sqrt(128)) and np.allclose(flat[0, 1:], 0)


def _spectra(n_per_class=24, seed=0):
    """Two classes that differ in where the energy is: low bands or high bands."""
    rng = np.random.default_rng(seed)
    S = rng.normal(-90, 3, size=(2 * n_per_class, 32, 40)).astype(np.float32)
    S[:n_per_class, :8] += 25
    S[n_per_class:, 24:] += 25
    labels = np.array(["low"] * n_per_class + ["high"] * n_per_class)
    return S, labels


def test_each_baseline_learns_a_separable_problem_and_the_constant_does_not():
    S, y = _spectra()
    train, test = np.arange(0, 48, 2), np.arange(1, 48, 2)
    classes = ["high", "low"]
    for method in (mfcc_logistic_regression, log_mel_cnn):
        probs = method(train_x=S[train], train_y=y[train], test_x=S[test], classes=classes, seed=0)
        assert probs.shape == (len(test), 2) and np.allclose(probs.sum(axis=1), 1)
        assert np.mean(np.array(classes)[probs.argmax(1)] == y[test]) >= 0.9, method.__name__
    again = log_mel_cnn(train_x=S[train], train_y=y[train], test_x=S[test], classes=classes, seed=0)
    assert np.array_equal(again, log_mel_cnn(train_x=S[train], train_y=y[train], test_x=S[test],
                                             classes=classes, seed=0))  # seeded
    constant = constant_classifier(np.array(["low", "low", "high"]), 4, classes)
    assert constant.tolist() == [[0.0, 1.0]] * 4


def test_run_baselines_pools_the_folds_and_keeps_the_blocks(tmp_path):
    S, y = _spectra(12)
    blocks = pd.DataFrame({"block_id": [f"b{i}" for i in range(24)],
                           "clip_id": [f"c{i // 4}" for i in range(24)],
                           "event_id": [f"c{i // 4}" for i in range(24)], "label": y})
    spectra = dict(zip(blocks["block_id"], S))
    odd = blocks.index % 2 == 1
    folds = [(blocks[~odd], blocks[odd]), (blocks[odd], blocks[~odd])]
    found = run_baselines(folds, spectra, ["high", "low"], methods={"constant": constant_classifier})
    pooled = found["constant"]
    assert sorted(pooled["block_id"]) == sorted(blocks["block_id"]) and set(pooled["fold"]) == {1, 2}
    spread = output_spread(pooled, ["high", "low"])
    # balanced training folds: the tie goes to the first class, in both folds
    assert spread["spread"] == 0.0 and spread["majority_share"] == 1.0
    assert spread["majority_class"] == "high"
    # the study's folders
    for i, (train, test) in enumerate(folds, start=1):
        (tmp_path / f"fold_{i}").mkdir()
        train.to_csv(tmp_path / f"fold_{i}" / "train_blocks.csv", index=False)
        test.to_csv(tmp_path / f"fold_{i}" / "test_blocks.csv", index=False)
    read = study_splits(tmp_path)
    assert [len(t) for _, t in read] == [12, 12]
    assert read[1][1]["block_id"].tolist() == folds[1][1]["block_id"].tolist()
    with pytest.raises(DataError, match="no train_blocks.csv"):
        study_splits(tmp_path / "fold_9")
    table = predictions_table(blocks.head(2), np.array([[0.2, 0.8], [0.9, 0.1]]), ["high", "low"])
    assert table["predicted"].tolist() == ["low", "high"] and "prob_high" in table.columns
