"""Training on a tiny two-class image set; the metrics, files and determinism."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from crowdnb.errors import DataError, ParameterError
from crowdnb.files import read_json
from crowdnb.splits import clip_split, random_split
from crowdnb.train import bootstrap_accuracy, evaluate_predictions, load_images, train_model

SIZE = 227


def make_image_set(root, *, n_per_class: int = 24, blocks_per_clip: int = 4, seed: int = 0) -> pd.DataFrame:
    """Two clearly different patterns: fine red horizontal stripes, coarse blue vertical bars.

    Written as 227 x 227 PNGs with pixel noise, as a block table whose clips
    hold ``blocks_per_clip`` consecutive 2 s blocks.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    rows = []
    (root / "img").mkdir(parents=True, exist_ok=True)
    for label in ("stripes", "bars"):
        for i in range(n_per_class):
            phase = rng.uniform(0, 2 * np.pi)
            if label == "stripes":
                on = np.sin(2 * np.pi * yy / rng.uniform(8, 16) + phase) > 0
                rgb = np.stack([200 * on, 40 * on, np.full_like(on, 40, dtype=int)], axis=-1)
            else:
                on = np.sin(2 * np.pi * xx / rng.uniform(30, 60) + phase) > 0
                rgb = np.stack([np.full_like(on, 30, dtype=int), 60 * on, 220 * on], axis=-1)
            pixels = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
            path = f"img/{label}_{i:03d}.png"
            Image.fromarray(pixels).save(root / path)
            clip = f"{label}_clip{i // blocks_per_clip}"
            start = float(i % blocks_per_clip)
            rows.append({"block_id": f"{label}_{i:03d}", "clip_id": clip, "event_id": clip, "label": label,
                         "start_s": start, "end_s": start + 2.0, "kept": True, "reason": "",
                         "image_path": path})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return root, make_image_set(root)


@pytest.fixture(scope="module")
def trained(image_set, tmp_path_factory):
    """A short training (2 epochs) whose files and metrics the tests below inspect."""
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    out = tmp_path_factory.mktemp("run")
    rng_before = torch.get_rng_state()
    metrics = train_model(
        train, test, image_root=root, out_dir=out, weights="none", epochs=2, batch_size=8, lr=1e-2,
        validate_every=3, seed=0, progress=False, preprocessing={"sr": 44100, "block_s": 2.0},
    )
    return {"metrics": metrics, "out": out, "train": train, "test": test,
            "rng_unchanged": torch.equal(rng_before, torch.get_rng_state())}


@pytest.mark.slow  # about 10 s on an idle 2-core CPU, 25-30 s on a busy one
def test_model_learns_the_two_patterns(image_set, tmp_path):
    # From random weights (no ImageNet here), so at a higher learning rate than the paper's.
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    m = train_model(train, test, image_root=root, out_dir=tmp_path, weights="none", epochs=4, batch_size=8,
                    lr=1e-2, seed=0, progress=False)
    # 12 test images; chance is 0.5. At least 11 correct has p < 0.01 under chance.
    assert m["n_test"] == 12
    assert m["accuracy"] >= 11 / 12
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["val_loss"].iloc[-1] < 0.5 * math.log(2)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_metrics_file_and_contents(trained):
    m = trained["metrics"]
    on_disk = read_json(trained["out"] / "metrics.json")
    assert on_disk["accuracy"] == m["accuracy"]
    for key in ("accuracy_ci95", "accuracy_ci95_clip", "per_class", "confusion", "clip_accuracy",
                "training", "device", "environment", "pretrained", "pretrained_reason", "params",
                "seed", "counts", "leakage", "preprocessing"):
        assert key in on_disk, key
    assert m["accuracy_ci95"]["low"] <= m["accuracy"] <= m["accuracy_ci95"]["high"]
    assert m["accuracy_ci95_clip"]["low"] <= m["accuracy"] <= m["accuracy_ci95_clip"]["high"]
    assert "clips" in m["accuracy_ci95_clip"]["method"]
    assert m["pretrained"] is False and "none" in m["pretrained_reason"]
    assert m["device"] == "cpu"
    assert torch.__version__.startswith(m["environment"]["versions"]["torch"])
    counts = m["counts"]
    assert counts["train_blocks"] == 36 and counts["test_blocks"] == 12
    assert counts["train_per_class"] == {"bars": 18, "stripes": 18}
    assert counts["test_clips"] == trained["test"]["clip_id"].nunique()
    conf = np.array(m["confusion"]["counts"])
    assert conf.sum() == 12 and np.trace(conf) == m["n_correct"]
    assert sum(v["support"] for v in m["per_class"].values()) == 12
    # Random split with 1 s hop: the leakage is computed from start_s/end_s.
    assert m["leakage"]["source"] == "computed" and m["leakage"]["n_test"] == 12
    assert m["preprocessing"] == {"sr": 44100, "block_s": 2.0}


def test_matlab_minibatch_semantics(trained):
    t = trained["metrics"]["training"]
    # 36 training images, minibatches of 8: 4 per epoch, 4 images left out each epoch.
    assert t["iterations_per_epoch"] == 4 and t["images_discarded_per_epoch"] == 4
    assert t["n_iterations"] == 8 and t["images_trained"] == 8 * 8
    groups = {g["name"]: g for g in t["param_groups"]}
    assert groups["new layer weights"]["lr"] == pytest.approx(0.2)
    assert groups["new layer biases"]["lr"] == pytest.approx(0.2)
    assert groups["pretrained layers weights"]["lr"] == pytest.approx(0.01)
    assert groups["pretrained layers weights"]["weight_decay"] == pytest.approx(1e-4)
    assert groups["new layer biases"]["weight_decay"] == 0.0
    assert groups["pretrained layers biases"]["weight_decay"] == 0.0
    history = pd.read_csv(trained["out"] / "history.csv")
    # Validation after the first iteration, every 3, and after the last.
    assert history["iteration"].tolist() == [1, 3, 6, 8]
    assert (history["n_val"] == 12).all()


def test_checkpoint_holds_what_made_it(trained):
    checkpoint = torch.load(trained["out"] / "model.pt", map_location="cpu", weights_only=True)
    assert checkpoint["classes"] == ["bars", "stripes"]
    assert checkpoint["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert checkpoint["image_size"] == [227, 227]
    assert checkpoint["preprocessing"] == {"sr": 44100, "block_s": 2.0}
    assert checkpoint["params"]["lr"] == 1e-2 and checkpoint["params"]["epochs"] == 2
    assert checkpoint["seed"] == 0 and checkpoint["model_info"]["pretrained"] is False
    assert checkpoint["state_dict"]["classifier.6.weight"].shape == (2, 4096)


def test_predictions_file_matches_metrics(trained):
    predictions = pd.read_csv(trained["out"] / "predictions.csv")
    assert len(predictions) == 12
    assert predictions["correct"].mean() == pytest.approx(trained["metrics"]["accuracy"])
    assert np.allclose(predictions[["prob_bars", "prob_stripes"]].sum(axis=1), 1.0)


def test_training_leaves_global_rng_alone(trained):
    assert trained["rng_unchanged"]


def test_same_seed_same_result_when_deterministic(image_set, tmp_path):
    root, blocks = image_set
    train, test = clip_split(blocks, seed=1)
    train = train.groupby("label").head(8)  # 16 images: 2 minibatches
    kwargs = dict(image_root=root, weights="none", epochs=1, batch_size=8, lr=1e-2, seed=5,
                  deterministic=True, progress=False, bootstrap_resamples=200)
    a = train_model(train, test, out_dir=tmp_path / "a", **kwargs)
    b = train_model(train, test, out_dir=tmp_path / "b", **kwargs)
    c = train_model(train, test, out_dir=tmp_path / "c", **{**kwargs, "seed": 6})
    ha, hb, hc = (pd.read_csv(tmp_path / x / "history.csv") for x in "abc")
    columns = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    pd.testing.assert_frame_equal(ha[columns], hb[columns], check_exact=True)
    assert not np.allclose(ha["train_loss"], hc["train_loss"])
    for key in ("accuracy", "accuracy_ci95", "accuracy_ci95_clip", "confusion", "per_class", "test_loss"):
        assert a[key] == b[key], key
    sa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.are_deterministic_algorithms_enabled()
    # A clip split shares no clip: the computed leakage is zero.
    assert a["leakage"]["n_overlapping"] == 0 and a["leakage"]["n_sharing_clip"] == 0


def test_bfloat16_training_runs_and_is_recorded(image_set, tmp_path):
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    train = train.groupby("label").head(8)
    m = train_model(train, test, image_root=root, out_dir=tmp_path, weights="none", epochs=1, batch_size=8,
                    precision="bfloat16", validate_every=None, progress=False, bootstrap_resamples=100)
    assert m["params"]["precision"] == "bfloat16"
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert np.allclose(predictions[["prob_bars", "prob_stripes"]].sum(axis=1), 1.0)
    # The checkpoint is a plain float32 state dict whatever the arithmetic.
    state = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in state.values())


def test_validation_subset_and_caller_leakage(image_set, tmp_path):
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=2)
    m = train_model(train, test, image_root=root, out_dir=tmp_path, weights="none", epochs=1, batch_size=12,
                    validate_every=1, validation_blocks=5, progress=False, bootstrap_resamples=100,
                    leakage={"n_test": 12, "n_overlapping": 7, "fraction": 7 / 12})
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["iteration"].tolist() == [1, 2, 3]
    # Intermediate validations on 5 blocks, the last on all 12.
    assert history["n_val"].tolist() == [5, 5, 12]
    assert m["counts"]["validation_blocks"] == 5 and m["n_test"] == 12
    assert m["leakage"] == {"n_test": 12, "n_overlapping": 7, "fraction": 7 / 12, "source": "caller"}


def test_train_model_errors(image_set, tmp_path):
    root, blocks = image_set
    train, test = random_split(blocks, seed=0)
    common = dict(image_root=root, out_dir=tmp_path, weights="none", progress=False)
    with pytest.raises(ParameterError, match="batch_size"):
        train_model(train, test, batch_size=len(train) + 1, **common)
    with pytest.raises(ParameterError, match="epochs"):
        train_model(train, test, epochs=0, **common)
    with pytest.raises(ParameterError, match="lr"):
        train_model(train, test, lr=-1.0, **common)
    with pytest.raises(ParameterError, match="precision"):
        train_model(train, test, precision="float16", **common)
    with pytest.raises(ParameterError, match="weights"):
        train_model(train, test, **{**common, "weights": "imagenet22k"})
    with pytest.raises(DataError, match="stripes"):
        train_model(train[train["label"] == "bars"], test, **common)
    missing = test.copy()
    missing.loc[0, "image_path"] = "img/nowhere.png"
    with pytest.raises(DataError, match="nowhere.png"):
        train_model(train, missing, **common)
    with pytest.raises(DataError, match="image_path"):
        train_model(train.drop(columns="image_path"), test, **common)


def test_load_images_decodes_pixels_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 9, 7, 3), dtype=np.uint8)
    paths = []
    for i, p in enumerate(pixels):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(p).save(paths[-1])
    images = load_images(paths)
    assert images.dtype == torch.uint8 and images.shape == (2, 3, 9, 7)
    assert np.array_equal(images.permute(0, 2, 3, 1).numpy(), pixels)
    Image.fromarray(pixels[0, :5]).save(tmp_path / "small.png")
    with pytest.raises(DataError, match="small.png"):
        load_images(paths + [tmp_path / "small.png"])


def test_block_bootstrap_matches_the_binomial_standard_error():
    # 300 of 400 correct: the 95 % interval is about +-1.96 sqrt(p (1 - p) / n) = +-0.042.
    correct = np.zeros(400, dtype=bool)
    correct[:300] = True
    ci = bootstrap_accuracy(correct, n_resamples=4000, seed=0)
    half_width = 1.96 * math.sqrt(0.75 * 0.25 / 400)
    assert ci["low"] == pytest.approx(0.75 - half_width, abs=0.01)
    assert ci["high"] == pytest.approx(0.75 + half_width, abs=0.01)
    assert ci["n_units"] == 400


def test_cluster_bootstrap_is_wider_when_clips_are_all_or_nothing():
    # Four clips of 50 blocks: two all correct, two all wrong. Blocks look like
    # 200 independent coin flips; clips say there are only 4 observations.
    correct = np.repeat([True, True, False, False], 50)
    groups = np.repeat(["a", "b", "c", "d"], 50)
    blocks = bootstrap_accuracy(correct, n_resamples=2000, seed=0)
    clips = bootstrap_accuracy(correct, groups=groups, n_resamples=2000, seed=0)
    assert clips["n_units"] == 4
    assert blocks["high"] - blocks["low"] < 0.2
    assert clips["low"] <= 0.25 and clips["high"] >= 0.75


def test_evaluate_predictions_by_hand():
    table = pd.DataFrame({
        "clip_id": ["x", "x", "x", "y", "y", "z"],
        "label": ["joy", "joy", "joy", "anger", "anger", "anger"],
        "predicted": ["joy", "anger", "joy", "joy", "anger", "joy"],
        "prob_anger": [0.2, 0.6, 0.3, 0.45, 0.9, 0.4],
        "prob_joy": [0.8, 0.4, 0.7, 0.55, 0.1, 0.6],
    })
    m = evaluate_predictions(table, ["anger", "joy"], n_resamples=100, seed=0)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["confusion"]["counts"] == [[1, 2], [1, 2]]
    assert m["per_class"]["joy"]["precision"] == pytest.approx(2 / 4)
    assert m["per_class"]["joy"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["anger"]["recall"] == pytest.approx(1 / 3)
    clips = {c["clip_id"]: c for c in m["clips"]}
    assert clips["x"]["vote"] == "joy"
    # Clip y ties 1-1; the mean probability of anger (0.675) is the higher.
    assert clips["y"]["vote"] == "anger" and clips["y"]["mean_probability_label"] == "anger"
    assert clips["z"]["vote"] == "joy"
    assert m["clip_accuracy"] == pytest.approx(2 / 3)


def test_plots_draw_what_training_wrote(trained):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crowdnb.plots import plot_confusion, plot_learning_curves, plot_per_class

    history = pd.read_csv(trained["out"] / "history.csv")
    lines = plot_learning_curves(trained["out"] / "history.csv")
    assert set(lines) == {"train_accuracy", "val_accuracy", "train_loss", "val_loss"}
    assert np.array_equal(lines["val_loss"].get_xdata(), history["iteration"])
    assert np.allclose(lines["val_accuracy"].get_ydata(), history["val_accuracy"])

    fig, axes = plt.subplots(1, 2)
    m = trained["metrics"]
    image = plot_confusion(trained["out"] / "metrics.json", ax=axes[0])
    counts = np.array(m["confusion"]["counts"], dtype=float)
    assert np.allclose(image.get_array(), counts / counts.sum(axis=1, keepdims=True))
    assert image.axes is axes[0]
    bars = plot_per_class(m, ax=axes[1])
    assert [b.get_height() for b in bars["recall"]] == [m["per_class"][c]["recall"] for c in m["classes"]]
    plt.close("all")
