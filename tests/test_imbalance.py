"""Class imbalance: the skewed corpus, the rebalancing strategies and calibration, on toy sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdnb.errors import ParameterError
from crowdnb.imbalance import (STRATEGIES, balanced_resample, class_weights, fit_predict,
                               imbalance_findings, minority_recall_difference, reliability,
                               run_imbalance, skew_classes)
from crowdnb.splits import event_folds


def _blocks(per_class: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """A block table: ``{label: (events, blocks per event)}``, blocks 1 s apart in each event."""
    rows = []
    for label, (n_events, n_blocks) in per_class.items():
        for e in range(n_events):
            clip = f"{label}-{e:02d}"
            rows += [{"block_id": f"{clip}_b{b:04d}", "clip_id": clip, "event_id": f"{clip}-event",
                      "label": label, "start_s": float(b), "end_s": b + 2.0, "kept": True}
                     for b in range(n_blocks)]
    return pd.DataFrame(rows)


def _skewed_toy(seed: int = 0):
    """Two large classes and an overlapping minority 15 times smaller, in 2-D features.

    The minority sits between the two others, one standard deviation from
    each: a model fitted to the proportions sacrifices it.
    """
    blocks = _blocks({"joy": (20, 15), "neutral": (20, 15), "anger": (10, 2)})
    centre = {"joy": (-1.0, 0.0), "neutral": (1.0, 0.0), "anger": (0.0, 0.0)}
    rng = np.random.default_rng(seed)
    x = np.array([centre[c] for c in blocks["label"]]) + rng.normal(0, 0.6, size=(len(blocks), 2))
    return blocks, dict(zip(blocks["block_id"], x))


def test_class_weighting_and_balanced_sampling_raise_minority_recall_on_a_skewed_toy_set():
    blocks, features = _skewed_toy()
    result = run_imbalance(blocks, features, minority="anger", folds=3, seed=0, n_resamples=500)
    rows = result.table.set_index("strategy")
    assert list(rows.index) == list(STRATEGIES)
    assert rows.loc["none", "minority_recall"] < 0.2  # the skewed fit gives the minority away
    for strategy in ("class-weighted loss", "balanced sampling"):
        assert rows.loc[strategy, "minority_recall"] > rows.loc["none", "minority_recall"] + 0.3
        # the paired interval over the minority's 10 test events excludes no gain
        assert rows.loc[strategy, "recall_gain_ok"] == 1 and rows.loc[strategy, "recall_gain_low"] > 0
        assert rows.loc[strategy, "balanced_accuracy"] > rows.loc["none", "balanced_accuracy"]
        # and it pays in calibration at the natural proportions: the minority over-predicted
        assert rows.loc[strategy, "minority_mean_probability"] > 2 * rows.loc[strategy, "minority_share"]
    # every block scored once, out of fold, at the corpus's proportions
    for predictions in result.predictions.values():
        assert sorted(predictions["block_id"]) == sorted(blocks["block_id"])
    text = imbalance_findings(result.table, minority="anger")
    assert text.count("raises the minority's recall") == 2
    # each strategy against no rebalancing on the same blocks: a paired test, Holm over the page
    assert text.count("paired permutation test over") == 2
    assert (result.table["holm_m"] == 2 * len(result.table) - 1).all()
    assert (result.table["p_holm"] >= result.table["p_above_chance"]).all()


def test_same_seed_same_result():
    blocks, features = _skewed_toy()
    a = run_imbalance(blocks, features, minority="anger", folds=3, seed=3, n_resamples=200)
    b = run_imbalance(blocks, features, minority="anger", folds=3, seed=3, n_resamples=200)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert np.array_equal(balanced_resample(list("aaaab"), seed=1), balanced_resample(list("aaaab"), seed=1))


def test_skewing_gives_the_asked_ratio_and_the_folds_keep_test_events_apart():
    blocks = _blocks({"joy": (9, 26), "neutral": (3, 75), "anger": (6, 38)})
    skewed, report = skew_classes(blocks, ratios={"anger": 17.0}, seed=0)
    report = report.set_index("label")
    reference = report.loc[["joy", "neutral"], "before"].max()  # 234 joy blocks, kept whole
    assert report.loc["anger", "after"] == round(reference / 17.0) == 14
    assert report.loc["joy", "after"] == 234 and report.loc["neutral", "after"] == 225
    assert report.loc["anger", "events_after"] == 6  # every event keeps a block
    assert set(skewed["block_id"]) <= set(blocks["block_id"])
    # a ratio asking for fewer blocks than events keeps one block of some events
    few, few_report = skew_classes(blocks, ratios={"anger": 78.0}, seed=0)
    assert few_report.set_index("label").loc["anger", "after"] == 3
    assert few[few["label"] == "anger"]["event_id"].nunique() == 3
    # two classes at once
    both, _ = skew_classes(blocks, ratios={"anger": 10.0, "neutral": 2.0}, seed=0)
    counts = both["label"].value_counts()
    assert counts["anger"] == round(234 / 10) and counts["neutral"] == round(234 / 2)
    for train, test in event_folds(skewed, k=3, seed=0):
        assert not set(train["event_id"]) & set(test["event_id"])
        assert set(test["label"]) == {"joy", "neutral", "anger"}


def test_balanced_sampling_and_class_weights_balance_the_classes():
    labels = np.array(["a"] * 30 + ["b"] * 5 + ["c"] * 10)
    index = balanced_resample(labels, seed=0)
    counts = pd.Series(labels[index]).value_counts()
    assert (counts == 30).all() and len(counts) == 3
    assert set(index) == set(range(len(labels)))  # every block kept at least once
    weights = class_weights(labels, ["a", "b", "c"])
    assert np.allclose(weights * [30, 5, 10], len(labels) / 3)


def test_reliability_and_ece_on_a_hand_made_example():
    classes = ["a", "b"]
    # four blocks at confidence 0.9 (three right), two at 0.6 (one right)
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    y_true = ["a", "a", "a", "a", "a", "a"]
    curve = reliability(probs, y_true, classes, n_bins=10)
    assert curve.count.tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 0, 4]
    assert curve.confidence[9] == pytest.approx(0.9) and curve.accuracy[9] == pytest.approx(0.75)
    assert curve.confidence[6] == pytest.approx(0.6) and curve.accuracy[6] == pytest.approx(0.5)
    assert np.isnan(curve.accuracy[0])
    assert curve.ece == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.10)
    # a confidence of exactly 1 falls in the last bin; a calibrated pair has ECE 0
    perfect = reliability(np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]), ["a", "a", "b"], classes,
                          n_bins=2)
    assert perfect.count.tolist() == [0, 3]
    assert perfect.ece == pytest.approx(abs(2 / 3 - 2 / 3))


def test_minority_recall_difference_is_paired_over_events():
    y = ["m"] * 10 + ["x"] * 4
    events = [f"e{i // 2}" for i in range(10)] + ["x"] * 4
    a = ["m"] * 10 + ["x"] * 4
    b = ["m", "x"] * 5 + ["x"] * 4
    out = minority_recall_difference(y, a, b, events, minority="m", n_resamples=300)
    assert out["recall_a"] == 1.0 and out["recall_b"] == 0.5 and out["difference"] == 0.5
    assert out["ok"] and out["low"] == out["high"] == pytest.approx(0.5)  # every event: +1 of 2
    short = minority_recall_difference(y[:6] + y[10:], a[:6] + a[10:], b[:6] + b[10:],
                                       events[:6] + events[10:], minority="m")
    assert not short["ok"] and "3 minority test event(s)" in short["note"]


@pytest.mark.parametrize("call, name", [
    (lambda b, f: skew_classes(b, ratios={"disapproval": 17.0}), "minority class 'disapproval'"),
    (lambda b, f: skew_classes(b, ratios={"anger": 0.5}), "ratio of 'anger'"),
    (lambda b, f: skew_classes(b, ratios={"anger": float("nan")}), "ratio of 'anger'"),
    (lambda b, f: skew_classes(b, ratios={"anger": 1000.0}), "ratio of 'anger'"),
    (lambda b, f: skew_classes(b, ratios={}), "ratios"),
    (lambda b, f: run_imbalance(b, f, minority="calm"), "minority"),
    (lambda b, f: run_imbalance(b, f, minority="anger", strategies=["smote"]), "strategy"),
    (lambda b, f: run_imbalance(b, f, minority="anger", n_bins=0), "n_bins"),
    (lambda b, f: run_imbalance(b, f, minority="anger", folds=1), "folds"),
    (lambda b, f: fit_predict(np.zeros((2, 1)), ["a", "b"], np.zeros((1, 1)), ["a", "b"],
                              strategy="oversample"), "strategy"),
])
def test_bad_parameters_give_one_clear_error_naming_the_parameter(call, name):
    blocks, features = _skewed_toy()
    with pytest.raises(ParameterError, match=name.replace("(", r"\(")) as info:
        call(blocks, features)
    assert "\n" not in str(info.value)


def test_a_classifier_that_answers_the_majority_is_called_a_constant_classifier():
    # features that say nothing: fitted to the proportions, the model answers the majority
    blocks = _blocks({"joy": (20, 15), "neutral": (10, 2), "anger": (10, 2)})
    rng = np.random.default_rng(1)
    features = dict(zip(blocks["block_id"], rng.normal(size=(len(blocks), 2))))
    result = run_imbalance(blocks, features, minority="anger", folds=3, seed=0, n_resamples=200)
    none = result.table.set_index("strategy").loc["none"]
    assert none["degenerate"] == 1 and none["majority_class"] == "joy"
    text = imbalance_findings(result.table, minority="anger").splitlines()[0]
    assert "constant classifier" in text and "no better than that constant answer" in text
