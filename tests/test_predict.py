"""The predictor: any audio file through the checkpoint's preprocessing, block by block."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from crowdnb.config import AudioConfig, ImageConfig, PreprocessConfig, SpectrogramConfig, TrainRecipe
from crowdnb.dataset import preprocess
from crowdnb.errors import AudioError, DataError, ParameterError
from crowdnb.evaluation import clip_vote
from crowdnb.files import read_json
from crowdnb.model import load_checkpoint, predict_proba
from crowdnb.predict import checkpoint_preprocessing, predict_file, register_cli
from crowdnb.train import load_images, train_model
from conftest import CLIP_SR, band_noise, rumble_and_hiss_clips

SR = CLIP_SR


noise = band_noise  # the shared band-limited noise of conftest.py


@pytest.fixture(scope="module")
def trained_on_audio(tmp_path_factory):
    """Four 4 s clips (rumble: < 500 Hz, hiss: > 4 kHz), preprocessed, and a short training."""
    root = tmp_path_factory.mktemp("audio")
    data = root / "data"
    made = preprocess(rumble_and_hiss_clips(root), data, progress=False)
    blocks = made.blocks
    # The settings as the preprocessing stage records them, stored in the checkpoint.
    params = read_json(data / "params.json")
    assert params["preprocessing"] == made.config.to_dict()
    train, test = blocks[blocks["clip_id"].str.endswith("0")], blocks[blocks["clip_id"].str.endswith("1")]
    train_model(train, test, image_root=data, out_dir=root / "run", weights="none",
                recipe=TrainRecipe(epochs=1, batch_size=3), seed=0, progress=False,
                preprocessing=params["preprocessing"], bootstrap_resamples=100)
    return {"root": root, "data": data, "blocks": blocks, "config": made.config,
            "checkpoint": root / "run" / "model.pt"}


def test_predictor_reproduces_the_training_images(trained_on_audio):
    # The same file through predict_file and through preprocess + PNG files must
    # give the same images, hence the same probabilities.
    t = trained_on_audio
    table, label = predict_file(t["root"] / "hiss1.wav", t["checkpoint"], device="cpu")
    blocks = t["blocks"][t["blocks"]["clip_id"] == "hiss1"]
    assert len(table) == len(blocks) == 3
    assert table["kept"].all()
    assert np.allclose(table["start_s"], blocks["start_s"], atol=1 / SR)
    assert np.allclose(table["end_s"] - table["start_s"], 2.0, atol=1 / SR)
    assert np.allclose(table["loudness_lufs"], blocks["loudness_lufs"], atol=1e-6)
    assert np.allclose(table["gain_db"], blocks["gain_db"], atol=1e-6)
    assert table["clipped"].dtype == bool
    assert table["clipped"].tolist() == blocks["clipped"].tolist()
    model, meta = load_checkpoint(t["checkpoint"])
    # The checkpoint carries the settings that made the training images.
    assert checkpoint_preprocessing(meta) == t["config"]
    images = load_images([t["data"] / p for p in blocks["image_path"]])
    expected, _ = predict_proba(model, images, normalization=meta["normalization"], device="cpu")
    probs = table[[f"prob_{c}" for c in meta["classes"]]].to_numpy()
    assert np.abs(probs - expected).max() < 1e-6
    assert table["label"].tolist() == [meta["classes"][i] for i in expected.argmax(axis=1)]
    assert label == meta["classes"][int(expected.mean(axis=0).argmax())]


def test_clip_label_by_vote_and_dropped_blocks(trained_on_audio, tmp_path):
    t = trained_on_audio
    # 3 s of hiss, then 3 s of digital silence: of the blocks starting at 0-4 s,
    # the last two (3-5 s and 4-6 s) hold only silence and are dropped.
    y = np.concatenate([noise(3.0, (4000.0, None), seed=9), np.zeros(3 * SR, dtype=np.float32)])
    path = tmp_path / "hiss_then_silence.wav"
    sf.write(path, y, SR)
    table, label = predict_file(path, t["checkpoint"], aggregate="vote", device="cpu")
    assert table["kept"].tolist() == [True, True, True, False, False]
    dropped = table[~table["kept"]]
    assert dropped["reason"].str.contains("silent").all()
    assert dropped[[c for c in table.columns if c.startswith("prob_")]].isna().all().all()
    assert (dropped["label"] == "").all()
    assert not dropped["clipped"].any()

    # The expected clip label, worked out here from the kept blocks' probabilities
    # alone: each block votes for its most probable class; the most votes win, and
    # a tie goes to the tied class with the higher mean probability.
    classes = sorted(c[len("prob_"):] for c in table.columns if c.startswith("prob_"))
    probs = table.loc[table["kept"], [f"prob_{c}" for c in classes]].to_numpy(float)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1.0)
    counts = np.bincount(probs.argmax(axis=1), minlength=len(classes))
    mean_prob = probs.mean(axis=0)
    tied = np.flatnonzero(counts == counts.max())
    expected_vote = classes[int(tied[np.argmax(mean_prob[tied])])]
    assert label == expected_vote
    assert table.loc[table["kept"], "label"].tolist() == [classes[i] for i in probs.argmax(axis=1)]

    # The default aggregate is the highest mean probability over the kept blocks
    # only (the dropped ones' NaN would otherwise poison the mean).
    table_mean, label_mean = predict_file(path, t["checkpoint"], device="cpu")
    assert label_mean == classes[int(np.argmax(mean_prob))]
    np.testing.assert_array_equal(table_mean[[f"prob_{c}" for c in classes]].to_numpy(),
                                  table[[f"prob_{c}" for c in classes]].to_numpy())


@pytest.mark.parametrize(
    "labels, mean_probability, expected",
    [
        # A majority wins even against the mean probability.
        (["a", "a", "b"], [0.3, 0.7], "a"),
        (["b", "b", "b", "a"], [0.9, 0.1], "b"),
        # A tie goes to the tied class with the higher mean probability ...
        (["a", "b"], [0.4, 0.6], "b"),
        (["b", "a"], [0.6, 0.4], "a"),
        # ... and only among the tied classes: "c" has the highest mean but one vote.
        (["a", "b", "a", "b", "c"], [0.3, 0.2, 0.5], "a"),
        # A single block decides alone.
        (["c"], [0.1, 0.1, 0.8], "c"),
    ],
)
def test_clip_vote_rule(labels, mean_probability, expected):
    classes = ["a", "b", "c"][: len(mean_probability)]
    assert clip_vote(labels, mean_probability, classes) == expected
    # The result does not depend on the order of the blocks.
    assert clip_vote(labels[::-1], mean_probability, classes) == expected


def test_clip_vote_needs_a_block():
    with pytest.raises(DataError, match="at least one block"):
        clip_vote([], [0.5, 0.5], ["a", "b"])


def test_short_or_bad_files(trained_on_audio, tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, noise(1.5, (None, 500.0), seed=3), SR)
    with pytest.raises(AudioError, match="short.wav"):
        predict_file(short, trained_on_audio["checkpoint"], device="cpu")
    with pytest.raises(DataError, match="checkpoint not found"):
        predict_file(short, tmp_path / "none.pt", device="cpu")


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crowdnb")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_table_and_json(trained_on_audio, capsys, tmp_path):
    t = trained_on_audio
    wav = str(t["root"] / "rumble1.wav")
    assert _run_cli(["predict", "--model", str(t["checkpoint"]), wav]) == 0
    out = capsys.readouterr().out
    assert wav in out and "clip label:" in out and "p(hiss)" in out and "p(rumble)" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("0.00", "1.00", "2.00"))]) == 3

    missing = str(tmp_path / "missing.wav")
    assert _run_cli(["predict", "--model", str(t["checkpoint"]), wav, missing, "--json"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "missing.wav" in captured.err
    assert result["classes"] == ["hiss", "rumble"]
    first, second = result["files"]
    assert first["file"] == wav and first["clip_label"] in ("hiss", "rumble")
    assert [b["start_s"] for b in first["blocks"]] == pytest.approx([0.0, 1.0, 2.0])
    assert all(sum(b["probabilities"].values()) == pytest.approx(1.0) for b in first["blocks"])
    assert "error" in second


def test_truncated_and_clipped_recordings_are_classified_with_a_warning(trained_on_audio, capsys,
                                                                        tmp_path):
    t = trained_on_audio
    # A 16-bit WAV whose header promises 5 s, cut after 3 s (an interrupted copy).
    whole = tmp_path / "whole.wav"
    sf.write(whole, noise(5.0, (4000.0, None), seed=5), SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + 3 * SR * 2])
    # A recording driven into full scale: 5 % of its samples clipped at +-1.
    loud = np.clip(noise(3.0, (None, 500.0), seed=6) * 50, -1.0, 1.0)
    assert 0.02 < np.mean(np.abs(loud) >= 1.0) < 0.3
    clipped = tmp_path / "clipped.wav"
    sf.write(clipped, loud, SR)

    with pytest.warns(UserWarning, match=r"cut.wav: truncated: the header promises 5.00 s, "
                                         r"the file holds 3.00 s"):
        table, _ = predict_file(cut, t["checkpoint"], device="cpu")
    assert len(table) == 2  # the blocks of the 3 s it holds
    with pytest.warns(UserWarning, match=r"clipped.wav: clipped recording: \d+\.\d\d% of the samples"):
        predict_file(clipped, t["checkpoint"], device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_file(whole, t["checkpoint"], device="cpu")  # a whole, clean file: no word

    assert _run_cli(["predict", "--model", str(t["checkpoint"]), str(cut), str(clipped),
                     str(whole), "--json"]) == 0
    captured = capsys.readouterr()
    files = {Path(f["file"]).name: f for f in json.loads(captured.out)["files"]}
    assert files["cut.wav"]["warnings"] == [f"{cut}: truncated: the header promises 5.00 s, the "
                                            "file holds 3.00 s; the blocks below cover what it holds"]
    assert files["clipped.wav"]["warnings"][0].startswith(f"{clipped}: clipped recording")
    assert files["whole.wav"]["warnings"] == []
    assert captured.err.count("crowdnb predict: warning:") == 2


def _non_default_config() -> PreprocessConfig:
    config = PreprocessConfig().replace(
        audio=AudioConfig(sr=32000, block_s=1.5, hop_s=0.5, low_hz=50.0, high_hz=12000.0, order=2,
                          target_lufs=-20.0),
        spectrogram=SpectrogramConfig(win_length=512, frame_hop_s=0.01, n_fft=4096, n_mels=64,
                                      fmin=40.0, fmax=15000.0, freq_scale="erb"),
        image=ImageConfig(db_low=-120.0, db_high=-20.0, n_colors=32, colormap="viridis",
                          size=(200, 210), out_size=(224, 224), db_scaling="per_image"),
    )
    # Every setting differs from the paper's, so a setting lost on the way back shows.
    paper = PreprocessConfig().flat()
    assert all(value != paper[name] for name, value in config.flat().items())
    return config


def test_checkpoint_preprocessing_round_trips_a_config(tmp_path):
    import torch

    config = _non_default_config()
    meta = {"preprocessing": config.to_dict()}
    assert checkpoint_preprocessing(meta) == config
    # As a checkpoint holds it: through JSON (tuples become lists) and through torch.save.
    via_json = json.loads(json.dumps(meta))
    assert via_json["preprocessing"]["image"]["size"] == [200, 210]
    back = checkpoint_preprocessing(via_json)
    assert back == config
    assert back.image.size == (200, 210) and back.image.db_range == (-120.0, -20.0)
    assert back.spectrogram.frame_hop_s == 0.01 and back.audio.hop_s == 0.5
    torch.save(meta, tmp_path / "meta.pt")
    assert checkpoint_preprocessing(torch.load(tmp_path / "meta.pt", weights_only=True)) == config
    # A part left out keeps the paper's values for that part only.
    partial = {"preprocessing": {"audio": config.audio.to_dict()}}
    assert checkpoint_preprocessing(partial) == PreprocessConfig().replace(audio=config.audio)


def test_checkpoint_without_settings_warns_and_uses_the_papers():
    for meta in ({}, {"preprocessing": None}, {"preprocessing": {}}):
        with pytest.warns(UserWarning, match="old.pt: stores no preprocessing settings"):
            assert checkpoint_preprocessing(meta, where="old.pt") == PreprocessConfig()


@pytest.mark.parametrize(
    "stored, message",
    [
        # Names that are not settings: the message names the unknown one.
        ({"wobble": 1}, r"PreprocessConfig has no setting\(s\) wobble "),  # not a part
        ({"audio": {"wobble": 1}}, r"AudioConfig has no setting\(s\) wobble "),
        ({"mel": {"n_mels": 64}}, r"has no setting\(s\) mel "),  # the spectrogram part's old name
        ({"spectrogram": {"hop_s": 0.01}}, r"has no setting\(s\) hop_s "),  # frame_hop_s's old name
        # Values a setting cannot take: the message names the setting.
        ({"audio": {"sr": -5}}, r"\bsr must be >= 1000, got -5"),
        ({"audio": {"sr": "44100"}}, r"\bsr must be an integer"),
        ({"image": {"db_low": -20.0, "db_high": -120.0}}, r"db_high \(-120 dB\) must be above db_low"),
        ({"spectrogram": {"n_fft": 256}}, r"n_fft \(256\) must be at least win_length"),
    ],
)
def test_checkpoint_preprocessing_names_a_bad_setting(stored, message):
    # The config refuses it with a ParameterError naming it ...
    with pytest.raises(ParameterError, match=message):
        PreprocessConfig.from_dict(stored)
    # ... and the predictor reports it as a malformed checkpoint (DataError, as
    # documented), naming the checkpoint and the setting.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad setting is an error, not the paper's fallback
        with pytest.raises(DataError, match=r"^model\.pt: .*" + message):
            checkpoint_preprocessing({"preprocessing": stored}, where="model.pt")
