"""What predictions are worth: chance levels, balanced accuracy, degenerate networks,
intervals over events, and the sentences the book builds from them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crowdnb.evaluation import (DEGENERATE_SHARE, MIN_EVENTS_PER_CLASS, balanced_accuracy,
                                chance_levels, degeneracy, evaluate_predictions, event_bootstrap)
from crowdnb.experiments import experiment_numbers
from crowdnb.report import comparison, verdict

CLASSES = ["anger", "joy", "neutral"]


def test_chance_and_balanced_accuracy_on_a_skewed_test_set():
    # The clip split's situation: 75 neutral, 54 joy, 39 anger; a network that
    # always answers "anger" scores 39/168 = 0.232 in accuracy, below 1/3.
    y_true = ["neutral"] * 75 + ["joy"] * 54 + ["anger"] * 39
    y_pred = ["anger"] * 168
    assert np.mean(np.array(y_true) == np.array(y_pred)) == pytest.approx(39 / 168)
    assert balanced_accuracy(y_true, y_pred) == pytest.approx(1 / 3)
    chance = chance_levels(y_true, CLASSES, train_labels=["anger"] * 187 + ["joy"] * 172
                           + ["neutral"] * 151)
    assert chance["constant"] == pytest.approx(75 / 168) and chance["constant_class"] == "neutral"
    assert chance["balanced"] == pytest.approx(1 / 3)
    expected_prior = (187 * 39 + 172 * 54 + 151 * 75) / (510 * 168)
    assert chance["prior"] == pytest.approx(expected_prior)
    assert chance["test_per_class"] == {"anger": 39, "joy": 54, "neutral": 75}
    majority = degeneracy(y_pred)
    assert majority == {"share": 1.0, "class": "anger", "degenerate": True, "constant": True}


def test_balanced_accuracy_is_the_mean_recall():
    y_true = ["a", "a", "a", "a", "b", "b"]
    y_pred = ["a", "a", "a", "b", "b", "a"]
    assert balanced_accuracy(y_true, y_pred) == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert math.isnan(balanced_accuracy([], []))


def test_degenerate_flag_threshold():
    below = ["a"] * int(100 * DEGENERATE_SHARE - 1) + ["b"] * (100 - int(100 * DEGENERATE_SHARE - 1))
    at = ["a"] * int(100 * DEGENERATE_SHARE) + ["b"] * (100 - int(100 * DEGENERATE_SHARE))
    assert not degeneracy(below)["degenerate"]
    assert degeneracy(at)["degenerate"] and not degeneracy(at)["constant"]


def _events(n_per_class: int, blocks: int = 4, accuracy_by_class=(0.9, 0.6)):
    rng = np.random.default_rng(0)
    rows = []
    for label, acc in zip(("a", "b"), accuracy_by_class):
        for e in range(n_per_class):
            for _ in range(blocks):
                right = rng.random() < acc
                rows.append((label, label if right else ("b" if label == "a" else "a"),
                             f"{label}{e}"))
    y_true, y_pred, events = map(np.array, zip(*rows))
    return y_true, y_pred, events


def test_event_bootstrap_keeps_the_class_composition_and_covers_the_estimate():
    y_true, y_pred, events = _events(8)
    out = event_bootstrap(y_true, y_pred, events, n_resamples=500, seed=1)
    assert out["ok"] and out["events_per_class"] == {"a": 8, "b": 8}
    bal = balanced_accuracy(y_true, y_pred)
    assert out["balanced_accuracy"]["low"] < bal < out["balanced_accuracy"]["high"]
    acc = float(np.mean(y_true == y_pred))
    assert out["accuracy"]["low"] < acc < out["accuracy"]["high"]
    # each resample keeps 8 events per class of 4 blocks: 64 blocks, half of each class,
    # so accuracy and balanced accuracy coincide resample by resample
    assert out["accuracy"] == pytest.approx(out["balanced_accuracy"])
    assert event_bootstrap(y_true, y_pred, events, n_resamples=500, seed=1) == out


def test_too_few_events_give_no_interval_and_say_why():
    y_true, y_pred, events = _events(MIN_EVENTS_PER_CLASS - 1)
    out = event_bootstrap(y_true, y_pred, events, n_resamples=100)
    assert not out["ok"] and out["balanced_accuracy"]["low"] is None
    assert out["note"].startswith(f"{MIN_EVENTS_PER_CLASS - 1} test event(s) in the smallest "
                                  "class, fewer than")


def _predictions(y_true, y_pred, events):
    table = pd.DataFrame({"label": y_true, "predicted": y_pred, "event_id": events,
                          "clip_id": events})
    for c in ("a", "b"):
        table[f"prob_{c}"] = (table["predicted"] == c).astype(float)
    return table


def test_evaluate_predictions_carries_chance_balance_degeneracy_and_the_event_interval():
    y_true, y_pred, events = _events(6)
    metrics = evaluate_predictions(_predictions(y_true, y_pred, events), ["a", "b"],
                                   n_resamples=200)
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy(y_true, y_pred))
    assert metrics["chance"]["constant"] == pytest.approx(0.5)
    assert metrics["n_test_events"] == 12 and metrics["interval_event"]["ok"]
    assert not metrics["predicted_majority"]["degenerate"]


def _numbers(**change):
    base = {"accuracy": 0.8, "balanced_accuracy": 0.78, "chance_constant": 0.4,
            "chance_balanced": 1 / 3, "interval_ok": 1, "interval_note": "",
            "balanced_low": 0.6, "balanced_high": 0.9, "majority_share": 0.45,
            "majority_class": "joy", "degenerate": 0, "p_above_chance": 0.001,
            "p_below_chance": 1.0, "min_p": 0.0002, "n_test_events": 30, "n_classes": 3,
            "train_loss": 0.2, "train_accuracy": 0.95}
    return {**base, **change}


def test_the_verdict_follows_the_test_not_the_interval():
    assert verdict(_numbers()).startswith(
        "The network is above chance: balanced accuracy 0.780, 95 % interval over test events "
        "[0.600, 0.900], chance level 0.333 (permutation test over its 30 test events, p = 0.001)")
    # the interval no longer decides: the test does
    assert "cannot be told from chance" in verdict(_numbers(p_above_chance=0.2, balanced_low=0.5))
    assert "is below chance" in verdict(_numbers(p_above_chance=0.99, p_below_chance=0.01))
    holm = verdict(_numbers(p_above_chance=0.01, p_holm=0.08, holm_m=8))
    assert "cannot be told from chance" in holm and "Holm-adjusted over the 8 tests" in holm
    constant = verdict(_numbers(degenerate=1, majority_class="anger", majority_share=1.0,
                                accuracy=0.232, balanced_accuracy=1 / 3))
    assert constant.startswith("The network is, in effect, a constant classifier: it answers "
                               "**anger** for 100% of the test blocks")
    assert "above chance" not in constant
    unlearnt = verdict(_numbers(train_loss=1.05))
    assert "**did not learn**" in unlearnt and "ln 3 = 1.099" in unlearnt
    few = verdict(_numbers(interval_ok=0, p_above_chance=0.3, min_p=1 / 6, n_test_events=4))
    assert "no result could reach 0.05, so this test could not have succeeded" in few
    assert "interval" not in few
    folds = verdict(_numbers(n_folds=5, folds_not_learnt=3))
    assert folds.startswith("**3 of its 5 fold networks did not learn**")


def test_a_comparison_of_different_test_sets_claims_nothing():
    text = comparison(_numbers(), _numbers(balanced_accuracy=0.5), first_name="A",
                      second_name="B")
    assert "+0.280" in text and "no paired test applies" in text
    assert "higher" not in text and "lower" not in text


def test_a_paired_comparison_follows_its_test():
    from crowdnb.report import paired_comparison

    effect = {"balanced_accuracy": {"difference": 0.1, "low": 0.02, "high": 0.2}, "p": 0.01,
              "min_p": 0.0002, "n_events": 30, "n_test": 300}
    assert paired_comparison(effect, first_name="A", second_name="B").startswith(
        "A scores higher than B: +0.100 in balanced accuracy on the same 300 test blocks")
    assert "cannot be told apart" in paired_comparison({**effect, "p_holm": 0.06, "holm_m": 3},
                                                       first_name="A", second_name="B")
    lower = {**effect, "balanced_accuracy": {"difference": -0.1, "low": -0.2, "high": -0.02}}
    assert "A scores lower than B" in paired_comparison(lower, first_name="A", second_name="B")
    weak = paired_comparison({**effect, "p": 0.5, "min_p": 0.125, "n_events": 4},
                             first_name="A", second_name="B")
    assert "no difference could reach 0.05" in weak


def test_experiment_numbers_bring_the_new_fields_to_the_book():
    y_true, y_pred, events = _events(6)
    metrics = evaluate_predictions(_predictions(y_true, y_pred, events), ["a", "b"],
                                   n_resamples=200)
    metrics.update(counts={"train_blocks": 10, "test_clips": 12, "train_clips": 12},
                   pretrained=False, params={"epochs": 1}, training={"time_s": 6.0})
    numbers = experiment_numbers(metrics)
    assert numbers["balanced_accuracy"] == pytest.approx(metrics["balanced_accuracy"])
    assert numbers["interval_ok"] == 1 and numbers["degenerate"] == 0
    assert numbers["balanced_low"] == metrics["interval_event"]["balanced_accuracy"]["low"]


def test_paired_difference_is_paired_and_says_when_it_is_the_optimistic_one():
    from crowdnb.evaluation import paired_difference

    y_true, y_pred, events = _events(8)
    same = paired_difference(y_true, y_pred, y_pred, events, n_resamples=300)
    assert same["balanced_accuracy"] == {"difference": 0.0, "low": 0.0, "high": 0.0}
    assert not same["optimistic"] and "cluster bootstrap over test events" in same["method"]
    # B misses every block of two 'a' events that A gets right: a paired, positive difference
    worse = y_pred.copy()
    for e in np.unique(events[(y_true == "a") & (y_pred == "a")])[:2]:
        worse[(events == e)] = "b"
    out = paired_difference(y_true, y_pred, worse, events, n_resamples=300)
    assert out["accuracy"]["difference"] == pytest.approx(np.mean(y_pred == y_true)
                                                          - np.mean(worse == y_true))
    assert 0 <= out["balanced_accuracy"]["low"] <= out["balanced_accuracy"]["difference"]
    assert out["balanced_accuracy"]["high"] > 0
    t, p, e = _events(MIN_EVENTS_PER_CLASS - 1)
    few = paired_difference(t, p, p, e, n_resamples=100)
    assert few["optimistic"] and few["method"].startswith("paired bootstrap over test blocks")
    with pytest.raises(Exception, match="same non-empty test blocks"):
        paired_difference(y_true, y_pred, y_pred[:-1], events)


def test_the_guard_gap_sentence_follows_the_numbers():
    from crowdnb.report import guard_gap_sentence

    def effect(d, low, high, optimistic=False):
        return {"balanced_accuracy": {"difference": d, "low": low, "high": high},
                "method": "paired cluster bootstrap", "optimistic": optimistic}

    good = _numbers()
    assert guard_gap_sentence(effect(0.2, 0.1, 0.3), good, good, dropped=30,
                              trained=100).startswith("Shared sound inflates")
    assert "30 of its 100 training blocks (30%)" in guard_gap_sentence(
        effect(0.2, 0.1, 0.3), good, good, dropped=30, trained=100)
    assert "cannot be told from the test set's noise" in guard_gap_sentence(
        effect(0.05, -0.1, 0.2), good, good, dropped=30, trained=100)
    assert "scores higher than the plain one" in guard_gap_sentence(
        effect(-0.2, -0.3, -0.1), good, good, dropped=30, trained=100)
    constant = guard_gap_sentence(effect(0.2, 0.1, 0.3), good, _numbers(degenerate=1),
                                  dropped=30, trained=100)
    assert "the guard-gap network answers one class" in constant and "inflates" not in constant
    assert "optimistic one" in guard_gap_sentence(effect(0.05, -0.1, 0.2, True), good, good,
                                                  dropped=1, trained=10)


def test_fold_classifiers_that_each_answer_one_class_are_flagged_in_the_pool():
    # two folds, each answered with one class only (a different one): pooled, half and half
    table = pd.DataFrame({"block_id": [f"b{i}" for i in range(8)],
                          "clip_id": ["c0", "c0", "c1", "c1", "c2", "c2", "c3", "c3"],
                          "label": ["a", "a", "b", "b", "a", "a", "b", "b"],
                          "predicted": ["a"] * 4 + ["b"] * 4, "fold": [1] * 4 + [2] * 4,
                          "prob_a": 0.5, "prob_b": 0.5})
    metrics = evaluate_predictions(table, ["a", "b"], n_resamples=100)
    majority = metrics["predicted_majority"]
    assert majority["share"] == 0.5 and majority["degenerate_folds"] == 2 and majority["degenerate"]
    metrics.update(counts={"train_blocks": 8, "test_clips": 4, "train_clips": 4}, pretrained=False,
                   params={"epochs": 1}, training={"time_s": 1.0})
    text = verdict(experiment_numbers(metrics), name="The baseline")
    assert "each of its 2 fold classifiers answers one class" in text and "50%" not in text
