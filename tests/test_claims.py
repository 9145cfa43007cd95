"""The claim-by-claim verdict: each rule's choice on hand-made numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from crowdnb.claims import CLAIMS, VERDICTS, claim_table, claims_paragraph


def _numbers(**change):
    base = {"accuracy": 0.99, "balanced_accuracy": 0.99, "chance_balanced": 1 / 3,
            "chance_constant": 1 / 3, "interval_ok": 1, "interval_note": "",
            "accuracy_clip_low": 0.97, "accuracy_clip_high": 1.0, "accuracy_event_low": 0.9,
            "accuracy_event_high": 1.0, "p_above_chance": 0.0002, "degenerate": 0,
            "majority_share": 0.34, "majority_class": "joy", "n_classes": 3, "train_loss": 0.05,
            "train_accuracy": 1.0, "n_folds": 0, "folds_not_learnt": 0}
    return {**base, **change}


def _evidence(numbers=None, **change):
    numbers = {"emotions_random": _numbers(), "emotions_clip": _numbers(accuracy=0.95),
               "goal_random": _numbers(accuracy=0.7, accuracy_clip_low=0.62,
                                       accuracy_clip_high=0.78, n_classes=2, chance_balanced=0.5),
               "goal_clip": _numbers(accuracy=0.52, accuracy_event_low=0.45,
                                     accuracy_event_high=0.6, n_classes=2, chance_balanced=0.5,
                                     p_above_chance=0.3, train_loss=0.69, degenerate=1),
               **(numbers or {})}
    history = pd.DataFrame({"epoch": [1, 2, 3, 4, 5, 6], "val_accuracy": [0.6, 0.9, 1.0, 1.0, 1.0, 1.0],
                            "n_val": 30})
    evidence = {"numbers": numbers, "metrics": {k: {} for k in numbers},
                "histories": {"emotions_random": history}, "guard_gap": None,
                "pretraining": None, "ablations": None,
                "p_holm": {f"{k} above chance": n["p_above_chance"] for k, n in numbers.items()}}
    return {**evidence, **change}


def _verdict(key, evidence):
    return CLAIMS[key].judge(evidence)[1]


def test_a_number_is_reproduced_only_by_a_network_above_chance_whose_interval_holds_it():
    assert _verdict("random_perfect", _evidence()) == "reproduced"
    low = _evidence({"emotions_random": _numbers(accuracy=0.9, accuracy_clip_high=0.94)})
    assert _verdict("random_perfect", low) == "not reproduced"
    # a constant classifier on two balanced classes "matches" 0.53
    assert _verdict("goal_clip", _evidence()) == "matches only numerically"
    assert _verdict("goal_random", _evidence()) == "reproduced"
    few = _evidence({"goal_clip": _numbers(interval_ok=0, interval_note="2 test event(s)")})
    assert _verdict("goal_clip", few) == "not testable here"
    missing = _evidence()
    del missing["numbers"]["goal_random"]
    assert _verdict("goal_random", missing) == "not testable here"


def test_slightly_lower_overfitting_and_three_epochs():
    assert _verdict("clip_slightly_lower", _evidence()) == "reproduced"
    much = _evidence({"emotions_clip": _numbers(accuracy=0.5, accuracy_event_low=0.4,
                                                accuracy_event_high=0.6)})
    assert _verdict("clip_slightly_lower", much) == "not reproduced"
    wide = _evidence({"emotions_clip": _numbers(accuracy=0.8, accuracy_event_low=0.6,
                                                accuracy_event_high=0.95)})
    assert _verdict("clip_slightly_lower", wide) == "not testable here"
    assert _verdict("clip_no_overfitting", _evidence()) == "reproduced"
    overfit = _evidence({"emotions_clip": _numbers(accuracy=0.6)})
    assert _verdict("clip_no_overfitting", overfit) == "not reproduced"
    assert _verdict("three_epochs", _evidence()) == "reproduced"
    late = pd.DataFrame({"epoch": [1, 3, 6], "val_accuracy": [0.5, 0.7, 0.9], "n_val": 30})
    # the last row on the whole test set is not set against a subset's
    whole = pd.DataFrame({"epoch": [1, 3, 6, 6], "val_accuracy": [0.5, 1.0, 1.0, 0.8],
                          "n_val": [30, 30, 30, 123]})
    assert _verdict("three_epochs", _evidence(histories={"emotions_random": whole})) == "reproduced"
    assert _verdict("three_epochs", _evidence(histories={"emotions_random": late})) == "not reproduced"


def test_the_tests_of_the_studies_decide_leakage_and_transfer():
    effect = {"balanced_accuracy": {"difference": 0.1, "low": 0.02, "high": 0.2}, "n_test": 300,
              "min_p": 0.0002}
    ev = _evidence(guard_gap=effect)
    ev["p_holm"]["guard gap"] = 0.01
    assert _verdict("leakage", ev) == "reproduced"
    ev["p_holm"]["guard gap"] = 0.2
    assert _verdict("leakage", ev) == "not reproduced"
    assert _verdict("leakage", _evidence()) == "not testable here"
    effects = pd.DataFrame([{"key": "emotions_random", "first": "Lite0 (ch. 4-6)",
                             "second": "Lite0 from random weights", "difference": 0.3,
                             "n_test": 300, "p": 0.001, "min_p": 0.0002}])
    ev = _evidence(pretraining=effects)
    ev["p_holm"]["transfer"] = 0.002
    assert _verdict("transfer", ev) == "reproduced"
    ev["p_holm"]["transfer"] = 0.5
    assert _verdict("transfer", ev) == "not reproduced"
    assert _verdict("overlap", _evidence()) == "not testable here"


def test_the_table_and_its_paragraph_use_only_the_four_verdicts():
    table = claim_table(_evidence())
    assert set(table["verdict"]) <= set(VERDICTS) and len(table) == len(CLAIMS)
    text = claims_paragraph(table)
    assert text.startswith(f"Of the paper's {len(CLAIMS)} claims this run judges, ")
    assert "**Matches only numerically**: goal / no goal, clip split" in text


def test_transfer_prefers_the_same_network_and_says_when_architectures_differ():
    rows = [{"key": "emotions_random", "first": "Lite0 (ch. 4-6)", "second": "AlexNet from random weights",
             "difference": 0.3, "n_test": 300, "p": 0.001, "min_p": 0.0002},
            {"key": "emotions_random", "first": "Lite0 (ch. 4-6)",
             "second": "Lite0 frozen random weights + logistic regression", "difference": -0.1,
             "n_test": 300, "p": 0.5, "min_p": 0.0002},
            {"key": "emotions_random", "first": "Lite0 frozen + logistic regression",
             "second": "Lite0 frozen random weights + logistic regression", "difference": 0.2,
             "n_test": 300, "p": 0.001, "min_p": 0.0002}]
    ev = _evidence(pretraining=pd.DataFrame(rows))
    ev["p_holm"]["transfer"] = 0.002
    this, verdict, why = CLAIMS["transfer"].judge(ev)
    assert verdict == "reproduced" and this.startswith("Lite0 frozen + logistic regression minus")
    ev = _evidence(pretraining=pd.DataFrame(rows[:2]))
    ev["p_holm"]["transfer"] = 0.002
    assert "differ in architecture" in CLAIMS["transfer"].judge(ev)[2]
