"""The book's tests: above chance by events, paired by events, Holm over a page."""

from __future__ import annotations

import numpy as np
import pytest

from crowdnb.errors import DataError
from crowdnb.significance import holm, paired_permutation, permutation_above_chance

CLASSES = np.array(["anger", "joy", "neutral"])


def _corpus(n_events: int, blocks: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n_events`` events per class, ``blocks`` blocks each: labels and events."""
    labels = np.repeat(np.tile(CLASSES, n_events), blocks)
    events = np.repeat(np.arange(3 * n_events), blocks).astype(str)
    return labels, events


def _answers_per_event(events: np.ndarray, rng) -> np.ndarray:
    """One class per event, chosen without looking at it: every block of an event agrees."""
    pick = {e: rng.choice(CLASSES) for e in np.unique(events)}
    return np.array([pick[e] for e in events])


def test_label_free_answers_reject_at_about_the_level():
    # Answers that ignore the sound but agree within each event: a block-level test would
    # reject far too often; the event-level permutation keeps its level.
    rng = np.random.default_rng(0)
    labels, events = _corpus(6, 10, rng)
    rejected = [permutation_above_chance(labels, _answers_per_event(events, rng), events,
                                         n_permutations=499, seed=i)["p_above"] < 0.05
                for i in range(300)]
    assert 0.02 <= np.mean(rejected) <= 0.08


def test_power_on_separable_answers_and_the_below_chance_tail():
    rng = np.random.default_rng(1)
    labels, events = _corpus(5, 8, rng)
    right = permutation_above_chance(labels, labels, events, seed=0)
    assert right["balanced_accuracy"] == 1.0 and right["p_above"] < 0.001
    assert right["null_mean"] == pytest.approx(1 / 3, abs=0.02)
    wrong = permutation_above_chance(labels, np.roll(labels, 8), events, seed=0)
    assert wrong["balanced_accuracy"] == 0.0 and wrong["p_below"] < 0.01
    assert wrong["p_above"] == 1.0


def test_too_few_events_say_the_test_could_not_succeed():
    labels, events = _corpus(1, 5, np.random.default_rng(2))   # 3 events: 6 arrangements
    out = permutation_above_chance(labels, labels, events, seed=0)
    assert out["min_p"] == pytest.approx(1 / 6)
    assert out["p_above"] >= 1 / 6 - 0.02


def test_an_event_holding_two_classes_is_refused():
    with pytest.raises(DataError, match="test event '0' holds blocks of several classes"):
        permutation_above_chance(["a", "b"], ["a", "b"], ["0", "0"])


def test_the_paired_test_sees_a_real_difference_and_not_an_invented_one():
    rng = np.random.default_rng(3)
    labels, events = _corpus(6, 10, rng)
    noisy = labels.copy()
    flip = rng.random(len(labels)) < 0.5
    noisy[flip] = rng.choice(CLASSES, flip.sum())
    better = paired_permutation(labels, labels, noisy, events, seed=0)
    assert better["difference"] > 0.2 and better["p"] < 0.001
    same = paired_permutation(labels, noisy, noisy, events, seed=0)
    assert same["difference"] == 0.0 and same["p"] == 1.0
    # two equally good, unrelated classifiers: the test rejects at about its level
    rejected = []
    for i in range(200):
        a = np.where(rng.random(len(labels)) < 0.6, labels, rng.choice(CLASSES, len(labels)))
        b = np.where(rng.random(len(labels)) < 0.6, labels, rng.choice(CLASSES, len(labels)))
        rejected.append(paired_permutation(labels, a, b, events, n_permutations=499,
                                           seed=i)["p"] < 0.05)
    assert 0.01 <= np.mean(rejected) <= 0.09


def test_holm_on_known_p_values():
    adjusted = holm([0.01, 0.04, 0.03, np.nan, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.2, 0.9]), [0.4, 0.9])
    assert holm([0.6, 0.6]).max() == 1.0
    assert holm([]).size == 0
