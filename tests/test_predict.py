"""The predictor: any audio file through the checkpoint's preprocessing, block by block."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile as sf

from crowdnb.dataset import preprocess
from crowdnb.errors import AudioError, DataError
from crowdnb.files import read_json
from crowdnb.model import load_checkpoint, predict_proba
from crowdnb.predict import predict_file, register_cli, resolve_preprocessing
from crowdnb.train import load_images, train_model

SR = 44100


def noise(seconds: float, band: tuple[float | None, float | None], seed: int) -> np.ndarray:
    """Gaussian noise filtered to a band (Hz); None leaves that side open."""
    y = np.random.default_rng(seed).standard_normal(int(seconds * SR))
    low, high = band
    if low and high:
        sos = scipy.signal.butter(6, [low, high], btype="bandpass", fs=SR, output="sos")
    elif low:
        sos = scipy.signal.butter(6, low, btype="highpass", fs=SR, output="sos")
    else:
        sos = scipy.signal.butter(6, high, btype="lowpass", fs=SR, output="sos")
    return (0.1 * scipy.signal.sosfilt(sos, y)).astype(np.float32)


@pytest.fixture(scope="module")
def trained_on_audio(tmp_path_factory):
    """Four 4 s clips (rumble: < 500 Hz, hiss: > 4 kHz), preprocessed, and a short training."""
    root = tmp_path_factory.mktemp("audio")
    rows = []
    for label, band in (("rumble", (None, 500.0)), ("hiss", (4000.0, None))):
        for i in range(2):
            path = root / f"{label}{i}.wav"
            sf.write(path, noise(4.0, band, seed=len(rows)), SR)
            rows.append({"clip_id": f"{label}{i}", "event_id": f"{label}{i}", "label": label, "path": str(path)})
    data = root / "data"
    blocks = preprocess(pd.DataFrame(rows), data, progress=False)
    params = read_json(data / "params.json")
    train, test = blocks[blocks["clip_id"].str.endswith("0")], blocks[blocks["clip_id"].str.endswith("1")]
    train_model(train, test, image_root=data, out_dir=root / "run", weights="none", epochs=1, batch_size=3,
                seed=0, progress=False, preprocessing=params, bootstrap_resamples=100)
    return {"root": root, "data": data, "blocks": blocks, "checkpoint": root / "run" / "model.pt"}


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
    model, meta = load_checkpoint(t["checkpoint"])
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
    kept = table[table["kept"]]
    votes = kept["label"].value_counts()
    assert label == votes.index[0] or votes.iloc[0] == votes.iloc[-1]


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


def test_resolve_preprocessing_forms():
    flat = resolve_preprocessing({"hop_s": 0.5, "frame_hop_s": 0.01, "db_range": [-120.0, -20.0]})
    assert flat["audio"]["hop_s"] == 0.5 and flat["mel"]["hop_s"] == 0.01
    assert flat["image"]["db_range"] == (-120.0, -20.0) and flat["image"]["out_size"] == (227, 227)
    nested = resolve_preprocessing({"audio": {"sr": 32000}, "mel": {"n_mels": 64}, "image": {}, "run_hash": "x"})
    assert nested["audio"]["sr"] == 32000 and nested["mel"]["n_mels"] == 64
    assert resolve_preprocessing(None)["audio"]["target_lufs"] == -23.0
    with pytest.raises(DataError, match="wobble"):
        resolve_preprocessing({"wobble": 1})
