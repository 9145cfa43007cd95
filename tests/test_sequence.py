"""The sequence models of the football study, on toy actions built in the test.

The toy: every action is a constant "build-up" level (a random point in 4-D
feature space, with a little noise per block); in a goal the last blocks
break away from it by a fixed distance in a random direction, in a miss they
go on at the same level. Every block of either class is then a draw from the
same symmetric distribution around the origin, so a linear block-wise
classifier, and the vote of its blocks, have nothing to learn: only the
*evolution* of an action, at its end, tells the classes apart.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crowdnb.errors import CrowdnbError, DataError, ParameterError
from crowdnb.sequence import (BLOCKWISE, TEMPORAL, VOTE, ActionSequences, TemporalRecipe,
                              action_folds, audible_sentence, buildup_sentence, cross_validate,
                              early_decision_curve, first_audible, score_methods,
                              seed_sentence, temporal_probabilities)

CLASSES = ["goal", "no_goal"]
LENGTH, END = 12, 3  # blocks per action; the last END blocks hold the outcome
HOP_S, BLOCK_S = 1.0, 2.0


def toy_actions(n: int = 90, *, seed: int = 0, d: int = 4) -> ActionSequences:
    rng = np.random.default_rng(seed)
    labels, features = [], []
    for i in range(n):
        goal = i % 2 == 0
        level = rng.normal(size=d)
        x = np.tile(level, (LENGTH, 1))
        if goal:
            direction = rng.normal(size=d)
            x[LENGTH - END:] = level + 3.0 * direction / np.linalg.norm(direction)
        features.append(x + 0.1 * rng.normal(size=x.shape))
        labels.append("goal" if goal else "no_goal")
    starts = [np.arange(LENGTH) * HOP_S] * n
    return ActionSequences.from_lists([f"a{i:03d}" for i in range(n)], labels, features, starts,
                                      [s + BLOCK_S for s in starts])


def three_folds(sequences: ActionSequences):
    ids = list(sequences.action_ids)
    return [([a for j, a in enumerate(ids) if j % 3 != k], [a for j, a in enumerate(ids) if j % 3 == k])
            for k in range(3)]


@pytest.fixture(scope="module")
def toy():
    sequences = toy_actions()
    return sequences, three_folds(sequences)


def test_temporal_model_hears_the_end_that_block_wise_models_cannot(toy):
    sequences, folds = toy
    scores = score_methods(cross_validate(sequences, folds, CLASSES, seed=0), CLASSES, seed=0)
    temporal, vote, blocks = scores[TEMPORAL], scores[VOTE], scores[BLOCKWISE]
    assert temporal["balanced_accuracy"] >= 0.8
    assert temporal["balanced_low"] > temporal["chance_balanced"] == 0.5
    assert not temporal["degenerate"]
    # block by block there is nothing to learn: both stay near chance (within the noise of
    # 90 actions, whose shared build-up level makes each action's blocks vote as one)
    for numbers in (vote, blocks):
        assert abs(numbers["balanced_accuracy"] - 0.5) <= 0.2
    assert temporal["balanced_accuracy"] - vote["balanced_accuracy"] >= 0.25
    assert temporal["n_test"] == vote["n_test"] == len(sequences)
    assert blocks["n_test"] == len(sequences) * LENGTH


def test_early_decision_curve_rises_once_the_end_is_heard(toy):
    sequences, folds = toy
    outcome_heard_s = (LENGTH - END) * HOP_S + BLOCK_S  # the first outcome block has ended
    grid = [6.0, outcome_heard_s - 1.0, outcome_heard_s, LENGTH - 1 + BLOCK_S]
    curve = early_decision_curve(sequences, folds, CLASSES, seconds=grid, seed=0, methods=(TEMPORAL,))
    bal = curve.sort_values("seconds")["balanced_accuracy"].to_numpy()
    before, after = bal[:2], bal[2:]
    assert np.all(np.abs(before - 0.5) <= 0.15)  # nothing to hear yet: chance, within noise
    assert np.all(after >= 0.8)
    assert np.all(np.diff(bal) >= -0.15)  # non-decreasing within noise
    assert first_audible(curve, TEMPORAL) == outcome_heard_s
    assert curve["share_complete"].iloc[-1] == 1.0 and curve["share_complete"].iloc[0] == 0.0
    assert f"from {outcome_heard_s:g} s" in audible_sentence(curve, TEMPORAL, name="The model")


def test_same_seed_same_probabilities_and_another_seed_others(toy):
    sequences, folds = toy
    train, test = (sequences.select(ids) for ids in folds[0])
    recipe = TemporalRecipe(epochs=20)
    a = temporal_probabilities(train, test, CLASSES, seed=3, recipe=recipe)
    b = temporal_probabilities(train, test, CLASSES, seed=3, recipe=recipe)
    c = temporal_probabilities(train, test, CLASSES, seed=4, recipe=recipe)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-6)


def test_heard_cuts_by_block_end_and_by_action():
    sequences = toy_actions(4)
    cut = sequences.heard(5.0)
    assert [len(f) for f in cut.features] == [4] * 4  # blocks ending at 2, 3, 4, 5 s
    per_action = sequences.heard({a: 2.0 + i for i, a in enumerate(sequences.action_ids)})
    assert [len(f) for f in per_action.features] == [1, 2, 3, 4]
    assert np.all(cut.ends_s[0] <= 5.0)


def test_bad_input_gives_one_clear_error(toy, tmp_path):
    sequences, folds = toy
    with pytest.raises(ParameterError, match="seconds: 1 s leaves action 'a000' no block"):
        sequences.heard(1.0)
    with pytest.raises(ParameterError, match="seconds: need an increasing"):
        early_decision_curve(sequences, folds, CLASSES, seconds=[5.0, 4.0])
    with pytest.raises(ParameterError, match="kernel_blocks must be odd"):
        TemporalRecipe(kernel_blocks=2)
    with pytest.raises(DataError, match="fold 1 trains and tests on action 'a000'"):
        cross_validate(sequences, [(["a000", "a001"], ["a000"])], CLASSES)
    with pytest.raises(DataError, match="label 'goal' is not among the classes"):
        cross_validate(sequences, folds, ["miss", "no_goal"])
    with pytest.raises(DataError, match="no train_blocks.csv"):
        action_folds(tmp_path, sequences)
    with pytest.raises(DataError, match="action 'x' has no block"):
        ActionSequences.from_lists(["x"], ["goal"], [np.zeros((0, 3))], [[]], [[]])
    # folds that test one action twice are not action-disjoint
    for i, train in enumerate((["a002", "a003"], ["a002", "a003"]), start=1):
        folder = tmp_path / "clip_split" / f"fold_{i}"
        folder.mkdir(parents=True)
        pd.DataFrame({"clip_id": train, "block_id": train}).to_csv(folder / "train_blocks.csv", index=False)
        pd.DataFrame({"clip_id": ["a000"], "block_id": ["a000"]}).to_csv(folder / "test_blocks.csv",
                                                                         index=False)
    with pytest.raises(CrowdnbError, match="tested in folds 1 and 2"):
        action_folds(tmp_path / "clip_split", sequences.select(["a000", "a001", "a002", "a003"]))


def _numbers(bal, low, high, degenerate=0):
    return {"balanced_accuracy": bal, "balanced_low": low, "balanced_high": high,
            "chance_balanced": 0.5, "degenerate": degenerate, "interval_ok": 1}


def test_buildup_sentence_calls_a_give_away_a_flaw_and_chance_chance():
    flawed = buildup_sentence({VOTE: _numbers(0.5, 0.3, 0.7), TEMPORAL: _numbers(0.9, 0.7, 1.0)},
                              n_actions=17)
    assert "gives the answer away" in flawed and "flaw of the synthesizer" in flawed
    assert "0.900" in flawed and "[0.700, 1.000]" in flawed
    honest = buildup_sentence({VOTE: _numbers(0.5, 0.3, 0.7), TEMPORAL: _numbers(0.55, 0.35, 0.75)},
                              n_actions=17)
    assert "does not give the answer away" in honest and "0.75" in honest
    # a constant answer is not evidence of anything
    constant = buildup_sentence({TEMPORAL: _numbers(0.9, 0.7, 1.0, degenerate=1)}, n_actions=17)
    assert "does not give the answer away" in constant and "one class" in constant


def test_first_audible_needs_the_interval_to_stay_above_chance():
    rows = [{"seconds": t, "method": TEMPORAL, "interval_ok": 1, "degenerate": 0,
             "chance_balanced": 0.5, "balanced_accuracy": b, "balanced_low": low,
             "balanced_high": 1.0, "share_complete": 0.0}
            for t, b, low in ((2, 0.7, 0.55), (4, 0.5, 0.3), (6, 0.8, 0.6), (8, 0.9, 0.7))]
    curve = pd.DataFrame(rows)
    assert first_audible(curve, TEMPORAL) == 6  # the early fluke at 2 s does not count
    curve.loc[3, "balanced_low"] = 0.4
    assert math.isnan(first_audible(curve, TEMPORAL))


def test_seed_sentence_says_how_many_seeds_beat_chance():
    table = pd.DataFrame([{"seed": s, "interval_ok": 1, "degenerate": 0, "chance_balanced": 0.5,
                           "balanced_accuracy": b, "balanced_low": low}
                          for s, b, low in ((0, 0.76, 0.54), (1, 0.65, 0.42), (2, 0.70, 0.52))])
    text = seed_sentence(table)
    assert "2 of 3 training seeds only" in text and "from 0.650 to 0.760" in text
    table["balanced_low"] = 0.3
    assert "with none of 3" in seed_sentence(table)


def test_the_permutation_through_the_cross_validation_finds_chance_where_it_lies():
    from crowdnb.sequence import ActionSequences, BLOCKWISE, VOTE, permutation_through_cv

    rng = np.random.default_rng(5)
    n = 12
    labels = np.array(["goal", "no_goal"] * (n // 2))
    ids = [f"a{i:02d}" for i in range(n)]
    folds = [([a for a in ids if int(a[1:]) % 3 != k], [a for a in ids if int(a[1:]) % 3 == k])
             for k in range(3)]

    def actions(signal: float) -> ActionSequences:
        feats = [rng.normal(size=(5, 4)) + signal * (lab == "goal") for lab in labels]
        times = [np.arange(5.0)] * n
        return ActionSequences.from_lists(ids, labels, feats, times, [t + 2 for t in times])

    nothing = permutation_through_cv(actions(0.0), folds, ["goal", "no_goal"], n_permutations=49)
    assert nothing[VOTE]["p_above"] > 0.05 and nothing[BLOCKWISE]["p_above"] > 0.05
    assert nothing[BLOCKWISE]["null_mean"] < 0.5   # the few-actions bias below 1 / K
    clear = permutation_through_cv(actions(3.0), folds, ["goal", "no_goal"], n_permutations=49)
    assert clear[BLOCKWISE]["balanced_accuracy"] > 0.9 and clear[BLOCKWISE]["p_above"] <= 0.02


def test_a_build_up_score_below_chance_is_read_against_the_cross_validation_null():
    from crowdnb.sequence import BLOCKWISE, TEMPORAL, VOTE, buildup_sentence

    def scores(b, low, high):
        return {"balanced_accuracy": b, "balanced_low": low, "balanced_high": high,
                "chance_balanced": 0.5, "interval_ok": 1, "degenerate": 0}

    numbers = {BLOCKWISE: scores(0.41, 0.27, 0.56), VOTE: scores(0.47, 0.23, 0.70),
               TEMPORAL: scores(0.18, 0.0, 0.37)}
    null = {m: {"balanced_accuracy": numbers[m]["balanced_accuracy"], "null_mean": 0.44,
                "null_low": 0.17, "null_high": 0.71, "p_above": 0.6, "p_below": 0.4,
                "n_permutations": 199} for m in (BLOCKWISE, VOTE)}
    text = buildup_sentence(numbers, n_actions=17, null=null)
    assert "no method tells goals from misses above chance" in text
    assert text.count("Below 1 / K is where chance lies for this cross-validation") == 2
    assert f"The score of the {TEMPORAL}, 0.180, lies below 1 / K as well" in text
    # a method above chance by the permutation through the cross-validation gives it away
    null[VOTE].update(p_above=0.001, balanced_accuracy=0.9)
    assert buildup_sentence(numbers, n_actions=17, null=null).startswith(
        "**The build-up alone gives the answer away**")
