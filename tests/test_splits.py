"""Random split, clip split and the temporal leakage figure, on hand-made block tables."""

from __future__ import annotations

import pandas as pd
import numpy as np
import pytest

from crowdnb.errors import DataError, ParameterError
from crowdnb.splits import clip_split, random_split, temporal_leakage


def block_table(clips: dict[str, tuple[str, int]], *, block_s: float = 2.0, hop_s: float = 1.0) -> pd.DataFrame:
    """Blocks of 2 s every 1 s, as the paper cuts them: {clip_id: (label, n_blocks)}."""
    rows = []
    for clip, (label, n_blocks) in clips.items():
        for i in range(n_blocks):
            rows.append({"block_id": f"{clip}_{i:04d}", "clip_id": clip, "event_id": clip, "label": label,
                         "start_s": i * hop_s, "end_s": i * hop_s + block_s, "kept": True,
                         "image_path": f"{clip}/{i:04d}.png"})
    return pd.DataFrame(rows)


@pytest.fixture
def study_like() -> pd.DataFrame:
    # Unequal clip lengths and clip counts per label, as in the paper's Table 1.
    clips = {}
    for i, n in enumerate([30, 12, 25, 8, 40, 17, 22, 9, 14]):
        clips[f"joy{i}"] = ("joy", n)
    for i, n in enumerate([60, 45, 70]):
        clips[f"neutral{i}"] = ("neutral", n)
    for i, n in enumerate([50, 35, 20, 28, 41, 33]):
        clips[f"anger{i}"] = ("anger", n)
    return block_table(clips)


def test_random_split_is_stratified_disjoint_and_complete(study_like):
    train, test = random_split(study_like, test_fraction=0.2, seed=3)
    assert set(train["block_id"]).isdisjoint(test["block_id"])
    assert sorted(pd.concat([train, test])["block_id"]) == sorted(study_like["block_id"])
    for label, n in study_like["label"].value_counts().items():
        assert (test["label"] == label).sum() == round(0.2 * n)
        assert (train["label"] == label).sum() == n - round(0.2 * n)


def test_random_split_is_seeded(study_like):
    a = random_split(study_like, seed=1)[1]["block_id"].tolist()
    b = random_split(study_like, seed=1)[1]["block_id"].tolist()
    c = random_split(study_like, seed=2)[1]["block_id"].tolist()
    assert a == b
    assert a != c


def test_random_split_leaves_out_dropped_blocks(study_like):
    blocks = study_like.copy()
    blocks.loc[::7, "kept"] = False
    train, test = random_split(blocks, seed=0)
    used = set(train["block_id"]) | set(test["block_id"])
    assert used == set(blocks.loc[blocks["kept"], "block_id"])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, "a lot"])
def test_split_fraction_is_checked(study_like, fraction):
    with pytest.raises(ParameterError, match="test_fraction"):
        random_split(study_like, test_fraction=fraction)
    with pytest.raises(ParameterError, match="test_fraction"):
        clip_split(study_like, test_fraction=fraction)


def test_clip_split_keeps_clips_whole_and_every_label_on_both_sides(study_like):
    train, test = clip_split(study_like, test_fraction=0.2, seed=5)
    assert set(train["clip_id"]).isdisjoint(test["clip_id"])
    assert len(train) + len(test) == len(study_like)
    clip_counts = study_like.groupby("label")["clip_id"].nunique()
    for label, n_clips in clip_counts.items():
        expected = min(max(1, round(0.2 * n_clips)), n_clips - 1)
        assert test.loc[test["label"] == label, "clip_id"].nunique() == expected
        assert train.loc[train["label"] == label, "clip_id"].nunique() == n_clips - expected
    # A clip's blocks all go with it.
    for clip, group in study_like.groupby("clip_id"):
        side = test if clip in set(test["clip_id"]) else train
        assert (side["clip_id"] == clip).sum() == len(group)


def test_clip_split_is_seeded(study_like):
    a = sorted(set(clip_split(study_like, seed=1)[1]["clip_id"]))
    assert a == sorted(set(clip_split(study_like, seed=1)[1]["clip_id"]))
    others = {tuple(sorted(set(clip_split(study_like, seed=s)[1]["clip_id"]))) for s in range(2, 8)}
    assert others - {tuple(a)}


def test_clip_split_with_explicit_test_clips(study_like):
    chosen = ["joy2", "joy7", "neutral1", "anger4"]
    train, test = clip_split(study_like, test_clips=chosen)
    assert sorted(set(test["clip_id"])) == sorted(chosen)
    assert set(train["clip_id"]) == set(study_like["clip_id"]) - set(chosen)


def test_clip_split_explicit_errors(study_like):
    with pytest.raises(ParameterError, match="nosuchclip"):
        clip_split(study_like, test_clips=["joy0", "neutral0", "anger0", "nosuchclip"])
    with pytest.raises(DataError, match="neutral"):
        clip_split(study_like, test_clips=["joy0", "anger0"])
    with pytest.raises(DataError, match="neutral"):
        clip_split(study_like, test_clips=["joy0", "anger0", "neutral0", "neutral1", "neutral2"])


def test_clip_split_needs_two_clips_per_label():
    blocks = block_table({"a0": ("joy", 5), "a1": ("joy", 5), "b0": ("anger", 9)})
    with pytest.raises(DataError, match="'anger' has 1 clip"):
        clip_split(blocks)


def test_clip_split_rejects_a_clip_with_two_labels():
    blocks = block_table({"a0": ("joy", 5), "a1": ("joy", 5), "b0": ("anger", 4), "b1": ("anger", 4)})
    blocks.loc[0, "label"] = "anger"
    with pytest.raises(DataError, match="'a0' has blocks with several labels"):
        clip_split(blocks)


def test_temporal_leakage_counts_shared_seconds():
    # One clip, blocks at 0..9 s (2 s long, 1 s hop). Test: the block at 2 s,
    # whose neighbours at 1 s and 3 s are in training (2 s of its 2 s heard),
    # and the block at 6 s, whose neighbours are not (5 s and 7 s are in the
    # test set too) and whose other training blocks (4 s, 8 s) only touch it.
    blocks = block_table({"c": ("joy", 10), "other": ("joy", 3)})
    test_ids = {"c_0002", "c_0005", "c_0006", "c_0007", "other_0001"}
    test = blocks[blocks["block_id"].isin(test_ids)]
    train = blocks[~blocks["block_id"].isin(test_ids) & (blocks["clip_id"] == "c")]
    leak = temporal_leakage(train, test)
    assert leak["n_test"] == 5
    # c_0002 (neighbours 1 and 3), c_0005 (neighbour 4), c_0007 (neighbour 8) overlap;
    # c_0006 only touches 4 s..6 s and 8 s..10 s; "other" has no training block.
    assert leak["n_overlapping"] == 3
    assert leak["fraction"] == pytest.approx(3 / 5)
    # Seconds of test audio heard in training: 2 (c_0002) + 1 (c_0005) + 1 (c_0007).
    assert leak["overlap_s"] == pytest.approx(4.0, abs=1e-9)
    assert leak["n_sharing_clip"] == 4
    assert leak["fraction_sharing_clip"] == pytest.approx(4 / 5)
    assert leak["n_test_clips"] == 2 and leak["n_shared_clips"] == 1


def test_random_split_leaks_and_clip_split_does_not(study_like):
    # With a 1 s hop a test block escapes overlap only when both neighbours are
    # also test blocks: about 0.2**2 of the time, so most test blocks leak.
    leak = temporal_leakage(*random_split(study_like, seed=0))
    assert leak["fraction"] > 0.8
    assert leak["fraction_sharing_clip"] == 1.0
    leak = temporal_leakage(*clip_split(study_like, seed=0))
    assert leak["n_overlapping"] == 0 and leak["overlap_s"] == 0.0
    assert leak["n_sharing_clip"] == 0 and leak["n_shared_clips"] == 0


def test_temporal_leakage_needs_times(study_like):
    with pytest.raises(DataError, match="start_s"):
        temporal_leakage(study_like.drop(columns="start_s"), study_like)


def _event_blocks(events_per_class: dict[str, int], blocks_per_event=(3, 9)):
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for label, n_events in events_per_class.items():
        for e in range(n_events):
            event = f"{label}_ev{e}"
            for c in range(2):  # two clips per event
                for b in range(int(rng.integers(*blocks_per_event))):
                    rows.append({"block_id": f"{event}_c{c}_b{b}", "clip_id": f"{event}_c{c}",
                                 "event_id": event, "label": label, "start_s": float(b),
                                 "end_s": float(b) + 2.0})
    return pd.DataFrame(rows)


def test_event_folds_test_every_event_once_and_never_on_both_sides():
    from crowdnb.splits import event_folds

    blocks = _event_blocks({"joy": 9, "anger": 6, "neutral": 4})
    folds = event_folds(blocks, k=3, seed=0)
    assert len(folds) == 3
    tested = []
    for train, test in folds:
        assert not set(train["event_id"]) & set(test["event_id"])  # event-disjoint
        assert set(test["label"]) == {"joy", "anger", "neutral"}  # every class in every fold
        assert len(train) + len(test) == len(blocks)
        tested.extend(test["event_id"].unique())
    assert sorted(tested) == sorted(blocks["event_id"].unique())  # each exactly once
    blocks_tested = sorted(b for _, test in folds for b in test["block_id"])
    assert blocks_tested == sorted(blocks["block_id"])
    # stratified: each fold's class shares stay near the whole table's
    whole = blocks["label"].value_counts(normalize=True)
    for _, test in folds:
        share = test["label"].value_counts(normalize=True)
        assert (share - whole).abs().max() < 0.2
    again = event_folds(blocks, k=3, seed=0)
    assert [t["block_id"].tolist() for _, t in again] == [t["block_id"].tolist() for _, t in folds]


def test_event_folds_need_k_events_per_class():
    from crowdnb.errors import DataError, ParameterError
    from crowdnb.splits import event_folds

    blocks = _event_blocks({"joy": 5, "neutral": 2})
    with pytest.raises(DataError, match="3 folds need at least 3 events per class; 'neutral' has 2"):
        event_folds(blocks, k=3)
    with pytest.raises(ParameterError, match="folds must be an integer >= 2"):
        event_folds(blocks, k=1)
    assert len(event_folds(blocks, k=2)) == 2


def test_guard_gap_drops_exactly_the_training_blocks_that_share_sound(study_like):
    from crowdnb.splits import guard_gap

    train, test = random_split(study_like, seed=3)
    kept = guard_gap(train, test)
    assert temporal_leakage(kept, test)["n_overlapping"] == 0
    assert set(kept["block_id"]) <= set(train["block_id"])
    dropped = train[~train["block_id"].isin(kept["block_id"])]
    # each dropped block overlaps a test block of its clip; each kept one overlaps none
    for table, overlapping in ((dropped, True), (kept, False)):
        for row in table.itertuples():
            same = test[test["clip_id"] == row.clip_id]
            shares = ((same["start_s"] < row.end_s) & (same["end_s"] > row.start_s)).any()
            assert shares == overlapping
    # the paper's 2 s / 1 s blocks: only the two neighbours of a test block overlap it
    two = block_table({"c": ("joy", 10)})
    kept = guard_gap(two[two.index != 5], two[two.index == 5])
    assert kept["block_id"].str[-1].astype(int).tolist() == [0, 1, 2, 3, 7, 8, 9]
    with pytest.raises(DataError, match="guard gap leaves no training block"):
        guard_gap(two[two.index == 5], two[two.index == 4])
    with pytest.raises(DataError, match="train block table lacks column"):
        guard_gap(two.drop(columns="end_s"), two)
