"""The realism check: collecting a reference, scoring transfer, comparing statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from crowdnb.errors import DataError
from crowdnb.realism import (EMOTIONS, NETWORK, collect_reference, largest_gaps, method_table,
                             mean_gap, realism_check, realism_markdown, seed_table)

SR = 16000


def _crowdish(rng, label: str, seconds: float = 4.0, *, stereo: bool = False) -> np.ndarray:
    """Noise coloured per class, so that a baseline can tell the classes apart:
    joy bright and pulsed at 4 Hz, anger mid-band and steady, neutral dark."""
    from scipy.signal import butter, sosfilt

    n = int(seconds * SR)
    band = {"joy": (1500, 6000), "anger": (500, 2000), "neutral": (100, 600),
            "goal": (200, 4000)}[label]
    sos = butter(4, band, "bandpass", fs=SR, output="sos")
    channels = [sosfilt(sos, rng.standard_normal(n)) for _ in range(2 if stereo else 1)]
    y = np.stack(channels, axis=1)
    if label == "joy":
        y *= (1.0 + 0.8 * np.sin(2 * np.pi * 4.0 * np.arange(n) / SR))[:, None]
    y = 0.1 * y / np.sqrt(np.mean(y ** 2))
    return y if stereo else y[:, 0]


def _folder(root: Path, files: dict[str, int], *, seed: int, stereo_label: str = "") -> Path:
    """A folder with one sub-folder per label and ``files[label]`` recordings in each."""
    rng = np.random.default_rng(seed)
    for label, count in files.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            y = _crowdish(rng, label, stereo=(label == stereo_label and i == 0))
            sf.write(root / label / f"{label}_{i}.wav", y, SR, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("realism")
    train = _folder(tmp / "train_src", {c: 3 for c in EMOTIONS}, seed=0)
    from crowdnb.sources import collect_folder

    corpus = collect_folder(train, tmp / "corpus", progress=False).folder
    reference = _folder(tmp / "reference", {"joy": 2, "anger": 2, "neutral": 2, "goal": 1},
                        seed=1, stereo_label="joy")
    # The two baselines that train in a blink: the small CNN's training is the
    # baselines tests' (and costs this fixture 12 of its 22 s).
    cheap = ["constant classifier", "MFCC statistics + logistic regression"]
    return realism_check(corpus, reference, tmp / "check", network=False, baseline_names=cheap,
                         progress=False), reference


def test_transfer_scores_every_reference_block_with_the_labels_aligned(check):
    result, reference = check
    summary = result.summary
    assert summary["reference"]["clips_per_class"] == {"joy": 2, "anger": 2, "neutral": 2}
    # the goal file is collected and left out, by name
    assert [r["label"] for r in summary["reference"]["left_out"]] == ["goal"]
    # 4 s files, 2 s blocks with a 1 s hop: 3 blocks each
    assert summary["reference"]["blocks_per_class"] == {"joy": 6, "anger": 6, "neutral": 6}
    mfcc = result.metrics["MFCC statistics + logistic regression"]
    # classes that differ this plainly transfer: a permuted label would fail here
    assert mfcc["balanced_accuracy"] >= 0.8
    constant = result.metrics["constant classifier"]
    assert constant["predicted_majority"]["degenerate"]
    assert constant["balanced_accuracy"] == pytest.approx(1 / 3)
    # nothing was copied: the reference collection names the original files
    assert all(Path(p).parent.parent == reference for p in result.reference.clips["path"])
    # one row per method and file, shares summing to 1
    files = result.files
    assert len(files) == len(result.metrics) * 6
    assert len(result.metrics) == 2
    shares = files[[f"share_{c}" for c in EMOTIONS]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    for name in ("summary.json", "metrics.json", "files.csv", "comparison.csv",
                 "statistics_reference.csv", "statistics_synthetic.csv"):
        assert (result.folder / name).is_file(), name


def test_statistics_compare_the_sides_class_by_class(check):
    result, _ = check
    stats = result.reference_statistics
    # the stereo reference file has a width, the mono ones none
    stereo = stats[stats["channels"] == 2]
    assert len(stereo) == 3 and stereo["stereo_width"].notna().all()
    assert stats.loc[stats["channels"] == 1, "stereo_width"].isna().all()
    gaps = largest_gaps(result.comparison, per_class=2)
    assert set(gaps["label"]) == set(EMOTIONS)
    assert (gaps.groupby("label").size() == 2).all()
    # training and reference are drawn from the same recipe: no large gap in the centroid
    centroid = result.comparison[result.comparison["statistic"] == "centroid_hz"]
    assert (centroid["cliffs_delta"].abs() < 0.9).all()


def test_the_markdown_names_every_method_and_the_left_out_file(check):
    result, _ = check
    text = realism_markdown(result)
    table = method_table(result)
    for method in table["method"]:
        assert method in text
    assert "goal_0" in text and "(goal)" in text
    assert "balanced accuracy" in text and "Where the synthetic blocks differ most" in text


def test_a_csv_reference_with_its_own_column_names(tmp_path):
    folder = _folder(tmp_path / "ref", {"joy": 1, "neutral": 1}, seed=2)
    table = pd.DataFrame({"file": ["joy/joy_0.wav", "neutral/neutral_0.wav"],
                          "proposed_label": ["joy", "neutral"], "notes": ["a", "b"]})
    table.to_csv(folder / "manifest.csv", index=False)
    ref = collect_reference(folder / "manifest.csv", tmp_path / "out", path_column="file",
                            label_column="proposed_label")
    assert sorted(ref.clips["label"]) == ["joy", "neutral"]
    assert ref.left_out.empty
    with pytest.raises(DataError, match="manifest.csv.*nowhere"):
        collect_reference(folder / "manifest.csv", tmp_path / "out2", path_column="nowhere",
                          label_column="proposed_label")


def test_a_reference_without_the_classes_is_refused(tmp_path):
    folder = _folder(tmp_path / "ref", {"goal": 1}, seed=3)
    with pytest.raises(DataError, match="no reference recording is labelled joy, anger, neutral"):
        collect_reference(folder, tmp_path / "out")
    with pytest.raises(DataError, match="not found"):
        collect_reference(tmp_path / "missing", tmp_path / "out")


def test_the_network_path_trains_on_one_side_and_scores_the_other(tmp_path):
    from crowdnb.config import TrainRecipe
    from crowdnb.sources import collect_folder

    train = _folder(tmp_path / "train_src", {c: 1 for c in EMOTIONS}, seed=4)
    corpus = collect_folder(train, tmp_path / "corpus", progress=False).folder
    reference = _folder(tmp_path / "reference", {c: 1 for c in EMOTIONS}, seed=5)
    result = realism_check(corpus, reference, tmp_path / "check", network=True, statistics=False,
                           recipe=TrainRecipe(epochs=1, batch_size=3), progress=False)
    # the study's network from ImageNet (offline: EfficientNet-Lite0's packaged weights)
    # beside AlexNet from random weights, each scored on every real block
    for name in (NETWORK, "AlexNet from random weights"):
        network = result.predictions[name]
        assert len(network) == 9 and set(network["label"]) == set(EMOTIONS)
    nets = result.summary["network"]
    assert nets[NETWORK]["pretrained"] is True
    assert nets[NETWORK]["weights_info"]["imagenet_verified"] is True
    assert nets["AlexNet from random weights"]["pretrained"] is False
    assert (tmp_path / "check" / "network" / "alexnet_from_random_weights" / "metrics.json").is_file()
    assert "from random weights with its from-scratch recipe" in realism_markdown(result)



def test_the_seed_table_gives_each_seed_and_the_spread(check):
    import copy
    import dataclasses

    result, _ = check
    other = dataclasses.replace(result, metrics=copy.deepcopy(result.metrics))
    method = "MFCC statistics + logistic regression"
    other.metrics[method]["balanced_accuracy"] = 0.25
    table = seed_table({3: result, 8: other}).set_index("method")
    first = result.metrics[method]["balanced_accuracy"]
    assert table.loc[method, "seed 3"] == pytest.approx(first)
    assert table.loc[method, "seed 8"] == 0.25
    assert table.loc[method, "mean"] == pytest.approx((first + 0.25) / 2)
    assert table.loc[method, "min"] == 0.25 and table.loc[method, "max"] == pytest.approx(first)
    assert table.loc[method, "seeds above 0.6"] == f"{int(first >= 0.6)} of 2"
    assert table.loc["constant classifier", "chance"] == pytest.approx(1 / 3)
    gap = result.comparison["cliffs_delta"].abs().mean()
    assert 0 < gap <= 1 and mean_gap({3: result, 8: other}) == pytest.approx(gap)


def test_the_command_line_check_writes_its_tables_and_figures(tmp_path, capsys):
    import importlib.util

    from crowdnb.sources import collect_folder

    spec = importlib.util.spec_from_file_location(
        "realism_check", Path(__file__).resolve().parent.parent / "benchmarks" / "realism_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    corpus = collect_folder(_folder(tmp_path / "train_src", {c: 2 for c in EMOTIONS}, seed=6),
                            tmp_path / "corpus", progress=False).folder
    reference = _folder(tmp_path / "reference", {c: 1 for c in EMOTIONS}, seed=7)
    out = tmp_path / "check"
    assert script.main(["--reference", str(reference), "--synthetic", str(corpus), "--out",
                        str(out), "--no-network", "--baselines", "mfcc,constant"]) == 0
    printed = capsys.readouterr().out
    assert "MFCC statistics + logistic regression" in printed and "Reference: 3 real" in printed
    for name in ("spectra", "statistics", "gaps", "joy"):
        assert (out / f"realism_{name}.png").stat().st_size > 10_000, name
    # the preprocessing cache is the check's own, not a folder shared under /tmp
    assert (out / "cache").is_dir()
    # a misspelt baseline is refused before anything is written
    fresh = tmp_path / "fresh"
    assert script.main(["--reference", str(reference), "--synthetic", str(corpus), "--out",
                        str(fresh), "--no-network", "--baselines", "mfcc,svm"]) == 2
    assert "--baselines: unknown svm" in capsys.readouterr().err and not fresh.exists()
    assert script.main(["--reference", str(tmp_path / "nowhere"), "--synthetic", str(corpus),
                        "--out", str(out), "--no-network"]) == 2
    assert "reference recordings not found" in capsys.readouterr().err
    assert script._seed_list("0-2") == [0, 1, 2] and script._seed_list("4,1") == [4, 1]
    with pytest.raises(SystemExit):
        script.main(["--reference", str(reference), "--seeds", "one"])
    assert "--seeds 'one': give a range" in capsys.readouterr().err
    assert script.main(["--reference", str(reference), "--synthetic", str(corpus),
                        "--seeds", "0-1"]) == 2
    assert "cannot be used with --synthetic" in capsys.readouterr().err


def test_only_the_baselines_asked_for_are_run(tmp_path):
    from crowdnb.errors import ParameterError
    from crowdnb.realism import select_baselines
    from crowdnb.sources import collect_folder

    mfcc = "MFCC statistics + logistic regression"
    assert list(select_baselines([mfcc])) == [mfcc]
    with pytest.raises(ParameterError, match="unknown baseline"):
        select_baselines(["MFCC"])
    corpus = collect_folder(_folder(tmp_path / "train_src", {c: 2 for c in EMOTIONS}, seed=8),
                            tmp_path / "corpus", progress=False).folder
    reference = _folder(tmp_path / "reference", {c: 1 for c in EMOTIONS}, seed=9)
    result = realism_check(corpus, reference, tmp_path / "check", network=False,
                           statistics=False, baseline_names=[mfcc], progress=False)
    assert list(result.predictions) == [mfcc]
