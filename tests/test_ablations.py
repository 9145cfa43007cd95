"""The image ablations: the sweep file, the variants, and their table."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdnb.ablations import (ABLATIONS, PAPER, STAGE, ablation_table, example_blocks, sweep_points,
                               variant_config, variant_images)
from crowdnb.config import PreprocessConfig
from crowdnb.errors import DataError
from crowdnb.report import ablation_findings
from crowdnb.experiments import EXPERIMENTS
from crowdnb.spectrogram import spectrogram_image
from crowdnb.workflow.plan import load_sweep
from crowdnb.workflow.stages import discover_stages

ROOT = Path(__file__).resolve().parent.parent
SR = 44100


def test_the_sweep_file_runs_every_ablation_and_only_those():
    spec = load_sweep(ROOT / "params" / "sweeps" / "ablations.yaml")
    guard = {"04_random_split_training.guard_gap": False, "01_data_collection.reference_dir": ""}
    assert spec.points == {name: {**guard, **point} for name, point in sweep_points().items()}
    assert spec.stages == ("04_random_split_training",)
    # each ablation is one parameter the preprocessing chapter declares, with a value it accepts
    stage = {s.name: s for s in discover_stages(ROOT / "notebooks")}[STAGE]
    for name, ablation in ABLATIONS.items():
        if ablation.parameter is None:
            continue
        assert ablation.parameter in stage.parameters, name
        default = ast.literal_eval(stage.parameters[ablation.parameter].default)
        assert ablation.value != default and type(ablation.value) is type(default), name


def test_each_variant_changes_one_setting():
    base = PreprocessConfig()
    for name, ablation in ABLATIONS.items():
        changed = {k for k, v in variant_config(base, name).flat().items() if base.flat()[k] != v}
        assert changed == ({ablation.parameter} if ablation.parameter else set()), name
    with pytest.raises(DataError, match="no ablation 'sepia'"):
        variant_config(base, "sepia")


def test_variant_images_draw_one_block_every_way():
    block = (np.random.default_rng(0).standard_normal(2 * SR) * 0.05).astype(np.float32)
    base = PreprocessConfig()
    images = variant_images(block, SR, base)
    assert "no_overlap" not in images  # the hop changes which blocks there are, not how one looks
    assert set(images) == set(ABLATIONS) - {"no_overlap"}
    assert np.array_equal(images[PAPER], spectrogram_image(block, SR, config=base))
    for name, picture in images.items():
        assert picture.shape == (227, 227, 3) and picture.dtype == np.uint8
        if name != PAPER:
            assert not np.array_equal(picture, images[PAPER]), name
    grey = images["grey"].astype(int)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    # white noise sits mid-range on the fixed scale; its own range spans the whole palette
    assert np.ptp(images["per_image_db"].astype(int).sum(-1)) > np.ptp(images[PAPER].astype(int).sum(-1))


def test_example_blocks_are_the_first_of_each_class_as_preprocessing_made_them(tmp_path):
    import soundfile as sf

    from crowdnb.audio import load_clip, normalised_blocks

    rng = np.random.default_rng(1)
    rows = []
    for label, level in (("joy", 0.3), ("anger", 0.05)):
        path = tmp_path / f"{label}.wav"
        sf.write(path, (rng.standard_normal(5 * SR) * level).astype(np.float32), SR)
        rows.append({"clip_id": label, "path": str(path)})
    clips = pd.DataFrame(rows)
    blocks = pd.DataFrame({"clip_id": ["joy", "joy", "anger"], "label": ["joy", "joy", "anger"],
                           "start_s": [2.0, 1.0, 3.0], "block_id": ["j2", "j1", "a3"]})
    config = PreprocessConfig()
    chosen = example_blocks(blocks, clips, config)
    assert [(label, block) for label, block, _ in chosen] == [("anger", "a3"), ("joy", "j1")]
    y, _ = load_clip(tmp_path / "joy.wav", sr=SR)
    expected = [b for b in normalised_blocks(y, SR, config=config.audio) if b.start_s == 1.0][0]
    assert np.array_equal(chosen[1][2], expected.samples)
    with pytest.raises(DataError, match="no block starts at 9"):
        example_blocks(blocks.assign(start_s=9.0), clips, config)


def _point(folder: Path, name: str, predicted: list[str], blocks: list[str], labels: list[str],
           events: list[str]) -> None:
    experiment = EXPERIMENTS["emotions_random"]
    out = folder / name / experiment.stage / experiment.folder
    out.mkdir(parents=True)
    pd.DataFrame({"block_id": blocks, "label": labels, "predicted": predicted, "event_id": events,
                  "clip_id": events}).to_csv(out / "predictions.csv", index=False)


def _results(rows: dict[str, float]) -> pd.DataFrame:
    p = "04_random_split_training."
    return pd.DataFrame([{"point": name, f"{p}balanced_accuracy": bal, f"{p}balanced_low": bal - 0.1,
                          f"{p}balanced_high": bal + 0.1, f"{p}chance_balanced": 0.5,
                          f"{p}accuracy": bal, f"{p}degenerate": 0, f"{p}majority_share": 0.5,
                          f"{p}n_test": 40} for name, bal in rows.items()])


def test_the_table_pairs_points_that_answered_the_same_blocks(tmp_path):
    n = 40
    labels = ["a", "b"] * (n // 2)
    # ten events a class, two blocks each: enough events for a paired test to reach 5 %
    events = [f"{label}{i // 2 % 10}" for i, label in enumerate(labels)]
    blocks = [f"x{i}" for i in range(n)]
    wrong = {"a": "b", "b": "a"}
    _point(tmp_path, PAPER, labels, blocks, labels, events)  # all right
    _point(tmp_path, "grey", [wrong[y] if i % 2 else y for i, y in enumerate(labels)], blocks,
           labels, events)  # every b wrong
    _point(tmp_path, "bark", [wrong[y] if i == 0 else y for i, y in enumerate(labels)], blocks,
           labels, events)  # one wrong
    _point(tmp_path, "no_overlap", labels[:20], [f"y{i}" for i in range(20)], labels[:20], events[:20])
    table = ablation_table(_results({PAPER: 1.0, "grey": 0.5, "bark": 0.975, "no_overlap": 1.0}),
                           tmp_path, n_resamples=500).set_index("point")
    assert table.loc["grey", "difference"] == pytest.approx(-0.5)
    assert table.loc["grey", "paired"] and table.loc["grey", "differs"]
    assert table.loc["grey", "difference_high"] < 0
    assert table.loc["bark", "paired"] and not table.loc["bark", "differs"]
    assert table.loc["bark", "difference_low"] <= -0.025 <= table.loc["bark", "difference_high"]
    # other blocks (another hop): a difference, but no paired interval
    assert not table.loc["no_overlap", "paired"] and np.isnan(table.loc["no_overlap", "difference_low"])
    assert table.loc["grey", "factor"] == "colormap" and table.loc[PAPER, "difference"] == 0
    import matplotlib
    matplotlib.use("Agg")
    from crowdnb.plots import plot_ablations

    left, right = plot_ablations(table.reset_index())
    assert len(left.get_yticklabels()) == 4 and right.get_xlabel() == "difference from the paper's image"
    hollow = [line for line in right.get_lines() if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1  # no_overlap: other blocks, no paired interval
    findings = ablation_findings(table.reset_index())
    assert findings.startswith("1 of the 3 variants differs from the paper's image at this test size: grey.")
    assert "**grey** (colormap) scores lower than the paper's image" in findings
    assert "**ERB**" not in findings and "**bark** (frequency scale) cannot be told from" in findings
    assert "tested on other blocks, so there is no paired interval; the two balanced-accuracy " \
           "intervals overlap" in findings
    # a constant classifier is called that, and differs only by its numbers
    both = _results({PAPER: 0.5, "grey": 0.5})
    both["04_random_split_training.degenerate"] = 1
    said = ablation_findings(ablation_table(both))
    assert said.startswith("0 of the 1 variants differ") and "gives a constant classifier here" in said
    assert "Its network is a constant classifier" in said
    # with too few test events the paired interval resamples blocks, and says it is optimistic
    few = tmp_path / "few"
    two = [f"{label}{i % 2}" for i, label in enumerate(labels)]
    _point(few, PAPER, labels, blocks, labels, two)
    _point(few, "grey", [wrong[y] if i % 2 else y for i, y in enumerate(labels)], blocks, labels, two)
    optimistic = ablation_table(_results({PAPER: 1.0, "grey": 0.5}), few, n_resamples=200)
    assert optimistic["optimistic"].tolist() == [False, True]
    # two events a class: the paired permutation test cannot succeed, and the page says so
    said = ablation_findings(optimistic)
    assert "cannot be told from the paper's image" in said and "an optimistic one" in said
    assert "no difference could reach 0.05" in said
    # without intervals (too few test events), an unpaired difference is not called one
    bare = _results({PAPER: 0.9, "no_overlap": 0.5})
    bare["04_random_split_training.balanced_low"] = np.nan
    said = ablation_findings(ablation_table(bare))
    assert said.startswith("0 of the 1 variants differ") and "with too few test events" in said
    # without the points' folders, differences alone
    assert not ablation_table(_results({PAPER: 1.0, "grey": 0.5}))["paired"].any()
    with pytest.raises(DataError, match="no point 'paper'"):
        ablation_table(_results({"grey": 0.5}))
    with pytest.raises(DataError, match="did not run 04_random_split_training"):
        ablation_table(pd.DataFrame({"point": [PAPER]}))
