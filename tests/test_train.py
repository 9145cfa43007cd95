"""Training on a tiny two-class image set; the metrics, files and determinism."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from crowdnb.config import PreprocessConfig, TrainRecipe
from crowdnb.errors import DataError, ParameterError
from crowdnb.evaluation import bootstrap_accuracy, evaluate_predictions
from crowdnb.files import read_json
from crowdnb.model import IMAGENET_MEAN, IMAGENET_STD, build_model, load_checkpoint, predict_proba
from crowdnb.splits import clip_split, random_split
from crowdnb.train import FILES, TrainResult, _param_groups, evaluate, load_images, train_model, write_artifacts

PREPROCESSING = PreprocessConfig.from_flat(sr=22050, block_s=2.0, n_mels=64)

SIZE = 227
CLASSES = ["bars", "stripes"]
PROB_COLUMNS = [f"prob_{c}" for c in CLASSES]
#: The fields of metrics["training"] that are wall-clock measurements.
TIMING = {"time_s", "train_steps_s", "validation_s", "final_evaluation_s", "decode_s",
          "train_images_per_s", "eval_images_per_s"}


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


def images_of(root, blocks: pd.DataFrame) -> tuple[torch.Tensor, np.ndarray]:
    """The blocks' images (uint8) and their class indices."""
    images = load_images([root / p for p in blocks["image_path"]])
    return images, np.array([CLASSES.index(c) for c in blocks["label"]])


def plain_logits(model: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """The network's float32 outputs, normalised by hand (no crowdnb helper), without dropout."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model.eval()
    with torch.no_grad():
        return model((images.float() / 255.0 - mean) / std).double().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def without_timing(metrics: dict) -> dict:
    return {**metrics, "training": {k: v for k, v in metrics["training"].items() if k not in TIMING}}


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return root, make_image_set(root)


@pytest.fixture(scope="module")
def trained(image_set, tmp_path_factory):
    """A short training (3 epochs) whose files and metrics the tests below inspect.

    At a learning rate high enough (from random weights) that the network
    learns the two patterns (test_model_learns_the_two_patterns): its outputs
    vary from image to image, so the tests of its probabilities and predicted
    classes below are not trivial. The third epoch is the margin: after two,
    some seeds' losses were still above that test's bounds. One training
    serves all these tests, as each step (an update of AlexNet's 61 M
    parameters, whatever the minibatch) is where their time goes.
    """
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    out = tmp_path_factory.mktemp("run")
    rng_before = torch.get_rng_state()
    result = train_model(
        train, test, image_root=root, out_dir=out, weights="none",
        recipe=TrainRecipe(epochs=3, batch_size=8, lr=3e-2, validate_every=3), seed=0, progress=False,
        preprocessing=PREPROCESSING,
    )
    return {"result": result, "metrics": result.metrics, "out": out, "root": root, "train": train,
            "test": test, "rng_unchanged": torch.equal(rng_before, torch.get_rng_state())}


def test_model_learns_the_two_patterns(trained):
    # The module's training: from random weights (no ImageNet here), so at a higher
    # learning rate than the paper's, on 36 images for 3 epochs.
    m = trained["metrics"]
    # 12 test images; chance is 0.5. At least 11 correct has p < 0.01 under chance.
    assert m["n_test"] == 12
    assert m["accuracy"] >= 11 / 12
    history = pd.read_csv(trained["out"] / "history.csv")
    assert history["val_loss"].iloc[-1] < 0.5 * math.log(2)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_train_model_returns_what_it_writes(trained):
    result, out = trained["result"], trained["out"]
    assert isinstance(result, TrainResult)
    assert set(FILES.values()) == {"metrics.json", "history.csv", "predictions.csv", "model.pt"}
    assert all((out / name).is_file() for name in FILES.values())
    assert result.metrics["files"] == FILES
    pd.testing.assert_frame_equal(pd.read_csv(out / "history.csv"), result.history, check_exact=False)
    predictions = pd.read_csv(out / "predictions.csv")
    pd.testing.assert_frame_equal(predictions, result.predictions, check_exact=False, check_dtype=False)
    on_disk = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert set(on_disk) == set(result.checkpoint)
    assert all(torch.equal(on_disk["state_dict"][k], v) for k, v in result.checkpoint["state_dict"].items())


def test_metrics_file_and_contents(trained):
    m = trained["metrics"]
    on_disk = read_json(trained["out"] / "metrics.json")
    assert on_disk["accuracy"] == m["accuracy"]
    for key in ("accuracy_ci95", "accuracy_ci95_clip", "per_class", "confusion", "clip_accuracy",
                "training", "device", "environment", "pretrained", "pretrained_reason", "params",
                "seed", "counts", "leakage", "preprocessing", "test_loss"):
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
    assert m["preprocessing"] == PREPROCESSING.to_dict()
    # The recipe is recorded whole, next to the call's other settings.
    assert {k: m["params"][k] for k in TrainRecipe().to_dict()} == \
        TrainRecipe(epochs=3, batch_size=8, lr=3e-2, validate_every=3).to_dict()
    # The scores are evaluate_predictions' of the predictions written.
    predictions = pd.read_csv(trained["out"] / "predictions.csv")
    again = evaluate_predictions(predictions, m["classes"], n_resamples=2000, seed=0)
    for key in ("accuracy", "accuracy_ci95", "accuracy_ci95_clip", "confusion", "per_class", "clips"):
        assert on_disk[key] == again[key], key


def test_matlab_minibatch_semantics(trained):
    t = trained["metrics"]["training"]
    # 36 training images, minibatches of 8: 4 per epoch, 4 images left out each epoch.
    assert t["iterations_per_epoch"] == 4 and t["images_discarded_per_epoch"] == 4
    assert t["n_iterations"] == 12 and t["images_trained"] == 12 * 8
    groups = {g["name"]: g for g in t["param_groups"]}
    # The new layer learns 20 times faster than the others.
    assert groups["new layer weights"]["lr"] == pytest.approx(0.6)
    assert groups["new layer biases"]["lr"] == pytest.approx(0.6)
    assert groups["pretrained layers weights"]["lr"] == pytest.approx(0.03)
    assert groups["pretrained layers biases"]["lr"] == pytest.approx(0.03)
    assert groups["pretrained layers weights"]["weight_decay"] == pytest.approx(1e-4)
    assert groups["new layer biases"]["weight_decay"] == 0.0
    assert groups["pretrained layers biases"]["weight_decay"] == 0.0
    history = pd.read_csv(trained["out"] / "history.csv")
    # Validation after the first iteration, every 3, and after the last.
    assert history["iteration"].tolist() == [1, 3, 6, 9, 12]
    assert history["epoch"].tolist() == [1, 1, 2, 3, 3]
    assert (history["n_val"] == 12).all()
    assert t["n_validations"] == 5


def test_param_groups_split_every_parameter_once():
    model, _ = build_model(2, weights="none", seed=0)
    groups = _param_groups(model, 1e-3, 20.0, 5e-4, new_layer="classifier.6")
    names = {id(p): n for n, p in model.named_parameters()}
    members = {g["name"]: sorted(names[id(p)] for p in g["params"]) for g in groups}
    assert sorted(n for ns in members.values() for n in ns) == sorted(names.values())
    assert members["new layer weights"] == ["classifier.6.weight"]
    assert members["new layer biases"] == ["classifier.6.bias"]
    assert all(n.endswith("weight") for n in members["pretrained layers weights"])
    assert all(n.endswith("bias") for n in members["pretrained layers biases"])
    by_name = {g["name"]: g for g in groups}
    assert by_name["new layer weights"]["lr"] == pytest.approx(2e-2)
    assert by_name["new layer biases"]["lr"] == pytest.approx(2e-2)
    assert by_name["pretrained layers biases"]["lr"] == pytest.approx(1e-3)
    assert by_name["pretrained layers weights"]["weight_decay"] == pytest.approx(5e-4)
    assert by_name["new layer weights"]["weight_decay"] == pytest.approx(5e-4)
    assert by_name["new layer biases"]["weight_decay"] == 0.0


def test_checkpoint_holds_what_made_it(trained):
    checkpoint = torch.load(trained["out"] / "model.pt", map_location="cpu", weights_only=True)
    assert checkpoint["classes"] == ["bars", "stripes"]
    assert checkpoint["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert checkpoint["image_size"] == [227, 227]
    assert checkpoint["preprocessing"] == PREPROCESSING.to_dict()
    assert "out_dir" not in checkpoint["params"] and "image_root" not in checkpoint["params"]
    assert checkpoint["params"]["lr"] == 3e-2 and checkpoint["params"]["epochs"] == 3
    assert checkpoint["seed"] == 0 and checkpoint["model_info"]["pretrained"] is False
    assert checkpoint["state_dict"]["classifier.6.weight"].shape == (2, 4096)


def test_predictions_are_the_softmax_of_the_saved_network(trained):
    """The written probabilities are what the saved weights compute, and the prediction is their argmax."""
    predictions = pd.read_csv(trained["out"] / "predictions.csv")
    test = trained["test"]
    assert len(predictions) == 12
    assert predictions["block_id"].tolist() == test["block_id"].tolist()
    assert predictions["label"].tolist() == test["label"].tolist()
    model, meta = load_checkpoint(trained["out"] / "model.pt")
    images, labels = images_of(trained["root"], test)
    logits = plain_logits(model, images)
    probs = predictions[PROB_COLUMNS].to_numpy()
    assert np.allclose(probs, softmax(logits), rtol=0, atol=1e-5)
    # The predicted class is the argmax of the logits (decisive here: no near-ties, both classes).
    assert np.abs(logits[:, 0] - logits[:, 1]).min() > 1e-4
    assert set(predictions["predicted"]) == set(CLASSES)
    assert predictions["predicted"].tolist() == [CLASSES[i] for i in logits.argmax(axis=1)]
    assert predictions["correct"].tolist() == (predictions["predicted"] == predictions["label"]).tolist()
    assert predictions["correct"].mean() == pytest.approx(trained["metrics"]["accuracy"])
    # The test loss is the mean cross-entropy of those logits.
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert trained["metrics"]["test_loss"] == pytest.approx(-log_probs[np.arange(12), labels].mean(), abs=1e-5)
    # evaluate() agrees: its probabilities are the softmax of its logits.
    scored = evaluate(model, images, torch.from_numpy(labels), device=torch.device("cpu"), batch_size=5,
                      precision="float32")
    assert np.allclose(scored["logits"], logits, rtol=0, atol=1e-4)
    assert np.allclose(scored["probabilities"], softmax(scored["logits"]), rtol=0, atol=1e-12)
    assert scored["accuracy"] == pytest.approx(trained["metrics"]["accuracy"])
    assert scored["loss"] == pytest.approx(trained["metrics"]["test_loss"], abs=1e-5)


def test_training_leaves_global_rng_alone(trained):
    assert trained["rng_unchanged"]


def test_same_seed_same_result_when_deterministic(image_set, tmp_path):
    root, blocks = image_set
    train, test = clip_split(blocks, seed=1)
    # 8 images in 2 minibatches of 4, so the second step's shuffle and dropout count too;
    # 4 test images (their clips are still not among the training's).
    train, test = train.groupby("label").head(4), test.groupby("label").head(2)
    kwargs = dict(image_root=root, weights="none", recipe=TrainRecipe(epochs=1, batch_size=4, lr=1e-2),
                  seed=5, deterministic=True, progress=False, bootstrap_resamples=200)
    # The same call twice, into the same folder: the second overwrites the first's files.
    run = tmp_path / "run"
    a = train_model(train, test, out_dir=run, **kwargs)
    files_a = {name: (run / name).read_bytes() for name in FILES.values()}
    b = train_model(train, test, out_dir=run, **kwargs)
    files_b = {name: (run / name).read_bytes() for name in FILES.values()}
    c = train_model(train, test, **{**kwargs, "seed": 6})  # compared in memory: no files

    assert files_a["model.pt"] == files_b["model.pt"]  # byte for byte
    assert files_a["predictions.csv"] == files_b["predictions.csv"]
    assert without_timing(a.metrics) == without_timing(b.metrics)
    assert a.metrics["training"].keys() >= TIMING
    assert without_timing(read_json(run / "metrics.json")) == without_timing(b.metrics)
    columns = ["iteration", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "n_val"]
    pd.testing.assert_frame_equal(a.history[columns], b.history[columns], check_exact=True)
    assert not np.allclose(a.history["train_loss"], c.history["train_loss"])
    sa, sc = a.checkpoint["state_dict"], c.checkpoint["state_dict"]
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    # The checkpoint's bytes do not depend on the file name they are written under.
    write_artifacts(a, tmp_path / "copy")
    assert (tmp_path / "copy" / "model.pt").read_bytes() == files_a["model.pt"]
    assert not torch.are_deterministic_algorithms_enabled()
    # A clip split shares no clip: the computed leakage is zero.
    assert a.metrics["leakage"]["n_overlapping"] == 0 and a.metrics["leakage"]["n_sharing_clip"] == 0


def test_how_often_it_validates_does_not_change_the_network(image_set, tmp_path):
    # Validations are forward passes without dropout: they draw no random number and
    # touch no weight, so the study can validate less often than the paper to save time.
    root, blocks = image_set
    train, test = clip_split(blocks, seed=1)
    # 8 images in minibatches of 4: 2 iterations per epoch, 4 in all, so "often" validates
    # after each (twice within an epoch, once between the two), "rarely" after the first and last.
    train, test = train.groupby("label").head(4), test.groupby("label").head(2)
    kwargs = dict(image_root=root, weights="none", seed=5, deterministic=True, progress=False,
                  bootstrap_resamples=200)
    often = train_model(train, test, recipe=TrainRecipe(epochs=2, batch_size=4, lr=1e-2,
                                                        validate_every=1), **kwargs)
    rarely = train_model(train, test, recipe=TrainRecipe(epochs=2, batch_size=4, lr=1e-2,
                                                         validate_every=None), **kwargs)
    assert often.history["iteration"].tolist() == [1, 2, 3, 4]
    assert rarely.history["iteration"].tolist() == [1, 4]
    sa, sb = often.checkpoint["state_dict"], rarely.checkpoint["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    pd.testing.assert_frame_equal(often.predictions, rarely.predictions)


def test_bfloat16_training_agrees_with_float32_arithmetic(image_set, tmp_path):
    # No native bfloat16 on the test machine's CPU (an emulated bfloat16 image costs several
    # float32 ones): a tiny set (4 training images in 2 iterations of 2, 4 test images).
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    train, test = train.groupby("label").head(2), test.groupby("label").head(2).reset_index(drop=True)
    kwargs = dict(image_root=root, weights="none", seed=0, progress=False, bootstrap_resamples=100,
                  recipe=TrainRecipe(epochs=1, batch_size=2, lr=3e-2, validate_every=None))
    result = train_model(train, test, out_dir=tmp_path, precision="bfloat16", **kwargs)
    reference = train_model(train, test, precision="float32", **kwargs)
    assert result.metrics["params"]["precision"] == "bfloat16"
    # The checkpoint is a plain float32 state dict whatever the arithmetic.
    state = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in state.values())
    # bfloat16 training takes (nearly) the float32 training's steps from the same start:
    # the two networks differ by a small part of what training changed.
    start = build_model(2, weights="none", seed=0)[0].state_dict()
    ref = reference.checkpoint["state_dict"]

    def distance(x, y):
        return math.sqrt(sum(float(((x[k] - y[k]) ** 2).sum()) for k in x))

    assert distance(ref, start) > 0
    assert distance(state, ref) < 0.2 * distance(ref, start)
    assert np.allclose(result.history["train_loss"], reference.history["train_loss"], rtol=0.01, atol=0)
    # The same weights in float32 give (nearly) the probabilities predicted in bfloat16.
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    bf16 = predictions[PROB_COLUMNS].to_numpy()
    model, _ = load_checkpoint(tmp_path / "model.pt")
    images, _ = images_of(root, test)
    fp32 = softmax(plain_logits(model, images))
    assert np.abs(bf16 - fp32).max() < 0.01
    assert not np.array_equal(bf16, fp32)  # the evaluation really ran in bfloat16
    assert (bf16.argmax(axis=1) == fp32.argmax(axis=1)).sum() >= len(test) - 1


def test_bfloat16_inference_agrees_with_float32(trained):
    """On the trained network, bfloat16 and float32 predictions agree (probabilities and classes)."""
    model, _ = load_checkpoint(trained["out"] / "model.pt")
    images, _ = images_of(trained["root"], trained["test"].groupby("label").head(3))  # 3 of each
    fp32, _ = predict_proba(model, images, device="cpu", precision="float32")
    bf16, logits = predict_proba(model, images, device="cpu", precision="bfloat16")
    assert np.allclose(bf16, softmax(logits), rtol=0, atol=1e-12)
    assert np.allclose(fp32, softmax(plain_logits(model, images)), rtol=0, atol=1e-5)
    assert np.ptp(fp32[:, 0]) > 0.2  # the network's outputs do depend on the image
    assert np.abs(bf16 - fp32).max() < 0.02
    assert not np.array_equal(bf16, fp32)  # it really ran in bfloat16
    assert (bf16.argmax(axis=1) == fp32.argmax(axis=1)).sum() >= 5


def test_validation_subset_and_caller_leakage(image_set, tmp_path):
    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=2)
    train = train.groupby("label").head(6)  # 12 images in minibatches of 4: 3 iterations
    m = train_model(train, test, image_root=root, out_dir=tmp_path, weights="none",
                    recipe=TrainRecipe(epochs=1, batch_size=4, validate_every=1, validation_blocks=5),
                    progress=False, bootstrap_resamples=100,
                    leakage={"n_test": 12, "n_overlapping": 7, "fraction": 7 / 12}).metrics
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
        train_model(train, test, recipe=TrainRecipe(batch_size=len(train) + 1), **common)
    # The recipe checks its values when it is made, before any training.
    with pytest.raises(ParameterError, match="epochs"):
        TrainRecipe(epochs=0)
    with pytest.raises(ParameterError, match="lr"):
        TrainRecipe(lr=-1.0)
    with pytest.raises(ParameterError, match="batch_size"):
        TrainRecipe(batch_size=0)
    with pytest.raises(ParameterError, match="momentum"):
        TrainRecipe(momentum=1.0)
    with pytest.raises(ParameterError, match="validation_blocks"):
        TrainRecipe(validation_blocks=0)
    with pytest.raises(ParameterError, match="drop_last"):
        TrainRecipe(drop_last=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainRecipe().epochs = 3
    with pytest.raises(ParameterError, match="recipe"):
        train_model(train, test, recipe={"epochs": 1}, **common)
    with pytest.raises(TypeError, match="epochs"):  # recipe settings are no longer keywords
        train_model(train, test, epochs=1, **common)
    with pytest.raises(ParameterError, match="precision"):
        train_model(train, test, precision="float16", **common)
    with pytest.raises(ParameterError, match="eval_batch_size"):
        train_model(train, test, eval_batch_size=0, **common)
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
    assert not any(tmp_path.iterdir())  # no failed call wrote a file


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


def test_frozen_outputs_are_computed_once_per_image_and_change_nothing(image_set, tmp_path):
    # EfficientNet-Lite0 from its packaged ImageNet weights, later layers trained: a second
    # training on the same images reuses the frozen layers' outputs, and trains the same network.
    from crowdnb import train as train_module

    root, blocks = image_set
    train, test = random_split(blocks, test_fraction=0.25, seed=0)
    # Which outputs are computed is the point, not how many: 4 training images (2 minibatches
    # of 2) and 4 test images.
    train, test = train.groupby("label").head(2), test.groupby("label").head(2)
    run = dict(image_root=root, network="efficientnet_lite0", fine_tune="top", weights="imagenet",
               recipe=TrainRecipe(epochs=1, batch_size=2, validate_every=50), seed=0,
               progress=False, preprocessing=PREPROCESSING, write_checkpoint=False,
               deterministic=True)
    train_module._FROZEN_OUTPUTS.clear()
    first = train_model(train, test, out_dir=tmp_path / "a", **run)
    again = train_model(train, test, out_dir=tmp_path / "b", **run)
    assert first.metrics["training"]["frozen_outputs_reused"] == 0
    assert again.metrics["training"]["frozen_outputs_reused"] == len(train) + len(test)
    # first computed every output afresh: a network trained on reused ones is the same network.
    pd.testing.assert_frame_equal(first.predictions, again.predictions)


def test_fold_networks_are_written_only_when_asked(image_set, tmp_path):
    # The book reads a fold's predictions and metrics, never its network: a cross-validation
    # writes no fold_<i>/model.pt unless keep_fold_models asks, and its pooled results are whole.
    from crowdnb.experiments import EXPERIMENTS, run_experiment

    root, blocks = image_set
    # Two clips per class, the fewest 2 event-disjoint folds take, of 2 blocks each: each
    # fold trains one minibatch of 4 (a clip per class) and tests the other 4 blocks.
    blocks = blocks.groupby("clip_id").head(2).groupby("label").head(4)
    run = dict(image_root=root, recipe=TrainRecipe(epochs=1, batch_size=4, validate_every=50),
               preprocessing=PREPROCESSING, test_fraction=0.25, seed=0, folds=2, weights="none",
               progress=False)
    lean = run_experiment(EXPERIMENTS["emotions_clip"], blocks, out_dir=tmp_path / "lean", **run)
    folder = tmp_path / "lean" / EXPERIMENTS["emotions_clip"].folder
    assert not list(folder.rglob("model.pt"))
    assert {p.name for p in (folder / "fold_1").iterdir()} >= {"metrics.json", "predictions.csv"}
    assert len(lean.training.predictions) == len(blocks)
    run_experiment(EXPERIMENTS["emotions_clip"], blocks, out_dir=tmp_path / "kept",
                   keep_fold_models=True, **run)
    assert len(list((tmp_path / "kept").rglob("fold_*/model.pt"))) == 2
