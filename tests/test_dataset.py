"""Tests of crowdnb.dataset: the block table, its cache, resumption and balancing.

A small collection is written to tmp_path: noise clips of three classes, one
with a silent stretch, one too short, one corrupt, one holding NaN. Work is
counted by wrapping the step functions :func:`crowdnb.dataset.preprocess`
calls through their modules (``crowdnb.audio.load_clip``, ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

import crowdnb.audio
import crowdnb.clips
import crowdnb.spectrogram
from crowdnb import ParameterError
from crowdnb.audio import band_limit, normalize_loudness, split_blocks
from crowdnb.clips import write_clips
from crowdnb.config import PreprocessConfig
from crowdnb.dataset import BLOCK_COLUMNS, CLIP_REPORT_COLUMNS, Preprocessed, balance, preprocess
from crowdnb.files import read_json, sha256_file
from crowdnb.spectrogram import spectrogram_image

SR = 44100


def _clip_row(folder, clip_id, label, y, *, sr=SR, event_id=None, raw=None):
    path = folder / f"{clip_id}.wav"
    if raw is None:
        sf.write(path, y, sr, subtype="FLOAT")
    else:
        path.write_bytes(raw)
    return {"clip_id": clip_id, "event_id": event_id or f"ev_{clip_id}", "label": label,
            "path": path.name, "duration_s": 0.0 if y is None else len(y) / sr,
            "sample_rate": sr, "channels": 1, "source": "synthetic", "seed": 0, "params": "{}", "licence": "CC0",
            "attribution": "test", "sha256": sha256_file(path)}


@pytest.fixture
def collection(tmp_path):
    folder = tmp_path / "collection"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = [
        _clip_row(folder, "joy1", "joy", rng.standard_normal(int(5.5 * SR)) * 0.2),
        _clip_row(folder, "joy2", "joy", rng.standard_normal(4 * SR) * 0.05),
        _clip_row(folder, "anger1", "anger", rng.standard_normal(4 * SR) * 0.3),
        _clip_row(folder, "neutral1", "neutral",
                  np.concatenate([np.zeros(3 * SR), rng.standard_normal(3 * SR) * 0.01])),
        _clip_row(folder, "silent", "neutral", np.zeros(3 * SR)),
        _clip_row(folder, "short", "joy", rng.standard_normal(SR) * 0.1),
    ]
    nan = rng.standard_normal(3 * SR) * 0.1
    nan[SR] = np.nan
    rows.append(_clip_row(folder, "nan", "anger", nan))
    rows.append(_clip_row(folder, "corrupt", "anger", None, raw=b"RIFF" + rng.bytes(3000)))
    write_clips(pd.DataFrame(rows), folder)
    return folder


# Where preprocess finds each step: it calls them as module attributes.
STEPS = {
    "load_clip": crowdnb.audio,
    "normalised_blocks": crowdnb.audio,
    "normalize_loudness": crowdnb.audio,  # called by normalised_blocks, once per block
    "mel_psd_db": crowdnb.spectrogram,
    "render_image": crowdnb.spectrogram,
}


class Counter:
    """Wrap a step function (in the module preprocess calls it from) and count its calls."""

    def __init__(self, monkeypatch, name, fail_on_call=None):
        self.calls = 0
        self.fail_on_call = fail_on_call
        module = STEPS[name]
        self.original = getattr(module, name)
        monkeypatch.setattr(module, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("injected interruption")
        return self.original(*args, **kwargs)


def counters(monkeypatch):
    return {name: Counter(monkeypatch, name) for name in STEPS}


def mtimes(folder):
    """Every file under folder (relative path -> st_mtime_ns)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


LOUDNESS = ["block_id", "loudness_lufs", "gain_db", "peak_dbfs", "clipped", "kept", "reason"]
USABLE = {"joy1", "joy2", "anger1", "neutral1"}  # the clips with a kept block


def test_block_table_images_and_clip_report(collection, tmp_path):
    out = tmp_path / "out"
    result = preprocess(collection, out, progress=False)
    assert isinstance(result, Preprocessed)
    assert result.folder == out and result.config == PreprocessConfig()
    blocks = result.blocks
    assert list(blocks.columns) == BLOCK_COLUMNS
    on_disk = pd.read_csv(out / "blocks.csv", keep_default_na=False)
    assert list(on_disk.columns) == BLOCK_COLUMNS and len(on_disk) == len(blocks)
    assert on_disk["block_id"].tolist() == blocks["block_id"].tolist()

    per_clip = blocks.groupby("clip_id").size().to_dict()
    # 5.5 s -> 4 blocks, 4 s -> 3, 6 s -> 5, 3 s -> 2; short/nan/corrupt -> none.
    assert per_clip == {"joy1": 4, "joy2": 3, "anger1": 3, "neutral1": 5, "silent": 2}
    joy1 = blocks[blocks["clip_id"] == "joy1"]
    np.testing.assert_allclose(joy1["start_s"], [0, 1, 2, 3])
    np.testing.assert_allclose(joy1["end_s"] - joy1["start_s"], 2.0)
    assert joy1["block_id"].is_unique and set(joy1["event_id"]) == {"ev_joy1"}

    kept = blocks[blocks["kept"]]
    pd.testing.assert_frame_equal(result.kept, kept.reset_index(drop=True))
    np.testing.assert_allclose(kept["loudness_lufs"] + kept["gain_db"], -23.0, atol=0.05)
    assert (kept["reason"] == "").all()
    for rel in kept["image_path"]:
        with Image.open(out / rel) as image:
            assert image.size == (227, 227) and image.mode == "RGB"
    dropped = blocks[~blocks["kept"]]
    # The silent clip, and neutral1's blocks within its first 3 s of digital silence.
    assert set(dropped["block_id"]) == {"silent_b0000", "silent_b0001", "neutral1_b0000",
                                        "neutral1_b0001"}
    assert (dropped["image_path"] == "").all()
    assert dropped["reason"].str.startswith("silent").all()

    report = pd.read_csv(out / "clip_report.csv", keep_default_na=False).set_index("clip_id")
    assert list(report.reset_index().columns) == CLIP_REPORT_COLUMNS
    assert list(result.clip_report.columns) == CLIP_REPORT_COLUMNS
    assert result.clip_report["clip_id"].tolist() == report.index.tolist()
    assert report.loc["joy1", "status"] == "ok" and report.loc["joy1", "n_kept"] == 4
    assert report.loc["neutral1", "n_blocks"] == 5 and report.loc["neutral1", "n_kept"] == 3
    assert report.loc["silent", "status"] == "no_usable_blocks"
    assert report.loc["short", "status"] == "too_short"
    assert "too short" in report.loc["short", "reason"]
    for clip_id in ("nan", "corrupt"):
        assert report.loc[clip_id, "status"] == "unusable"
        assert report.loc[clip_id, "reason"].startswith(str(collection / f"{clip_id}.wav"))
    assert "NaN" in report.loc["nan", "reason"]

    # params.json: the settings (they read back as the config used), the run's hash
    # (the image folder) and the library versions.
    params = read_json(out / "params.json")
    assert set(params) == {"preprocessing", "run_hash", "versions"}
    assert PreprocessConfig.from_dict(params["preprocessing"]) == result.config
    assert params["preprocessing"] == result.config.to_dict()
    assert params["versions"]
    assert kept["image_path"].str.startswith(f"images/{params['run_hash']}/").all()


def test_preprocess_records_the_config_it_was_given(collection, tmp_path):
    config = PreprocessConfig.from_flat(colormap="gray", db_low=-120.0, db_high=-30.0, n_mels=64,
                                        n_fft=1024)
    table = crowdnb.clips.read_clips(collection)
    result = preprocess(table[table["clip_id"] == "joy1"], tmp_path / "out", config=config,
                        progress=False)
    assert result.config == config
    params = read_json(tmp_path / "out" / "params.json")
    assert PreprocessConfig.from_dict(params["preprocessing"]) == config
    assert params["preprocessing"]["image"]["colormap"] == "gray"
    assert params["preprocessing"]["spectrogram"]["n_mels"] == 64
    default = preprocess(table[table["clip_id"] == "joy1"], tmp_path / "default", progress=False)
    assert read_json(tmp_path / "default" / "params.json")["run_hash"] != params["run_hash"]
    assert (result.kept["image_path"] != default.kept["image_path"]).all()


def test_images_are_the_spectrogram_image_of_the_normalised_block(collection, tmp_path):
    blocks = preprocess(collection, tmp_path / "out", progress=False).blocks
    row = blocks[blocks["block_id"] == "anger1_b0001"].iloc[0]
    y, _ = sf.read(collection / "anger1.wav", dtype="float32")
    y, _ = band_limit(y, SR)
    block, info = normalize_loudness(split_blocks(y, SR).blocks[1], SR)
    assert info["gain_db"] == pytest.approx(row["gain_db"], abs=1e-9)
    with Image.open(tmp_path / "out" / row["image_path"]) as image:
        np.testing.assert_array_equal(np.asarray(image), spectrogram_image(block, SR))


def test_second_run_does_no_work_and_gives_the_same_table(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = preprocess(collection, out, progress=False)
    png = out / first.kept["image_path"].iloc[0]
    mtime = png.stat().st_mtime_ns
    written = {k: v for k, v in mtimes(out).items() if k.startswith(("images/", "cache/"))}
    assert any(k.startswith("cache/audio/") for k in written)
    assert any(k.startswith("cache/mel/") for k in written)
    assert any(k.startswith("cache/clips/") for k in written)
    count = counters(monkeypatch)
    second = preprocess(collection, out, progress=False)
    assert {name: c.calls for name, c in count.items()} == dict.fromkeys(count, 0)
    pd.testing.assert_frame_equal(first.blocks, second.blocks)
    pd.testing.assert_frame_equal(first.clip_report, second.clip_report)
    assert png.stat().st_mtime_ns == mtime
    # No image and no cache entry was written again.
    after = {k: v for k, v in mtimes(out).items() if k.startswith(("images/", "cache/"))}
    assert after == written


def test_runs_are_deterministic(collection, tmp_path):
    a = preprocess(collection, tmp_path / "a", progress=False)
    b = preprocess(collection, tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(a.blocks, b.blocks)
    assert len(a.kept) == 13  # 4 + 3 + 3 + 3 kept blocks: there are images to compare
    for rel in a.kept["image_path"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    for name in ("blocks.csv", "clip_report.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # The same files, image for image, in both folders.
    assert mtimes(tmp_path / "a").keys() == mtimes(tmp_path / "b").keys()


def test_image_parameters_rerender_from_cached_spectrograms(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = preprocess(collection, out, progress=False)
    count = counters(monkeypatch)
    config = PreprocessConfig.from_flat(colormap="gray", db_low=-120.0, db_high=-30.0)
    gray = preprocess(collection, out, config=config, progress=False)
    assert count["load_clip"].calls == count["normalised_blocks"].calls == 0
    assert count["normalize_loudness"].calls == 0
    assert count["mel_psd_db"].calls == 0
    assert count["render_image"].calls == len(first.kept) == 13
    pd.testing.assert_frame_equal(first.blocks[LOUDNESS], gray.blocks[LOUDNESS])
    path = out / gray.kept["image_path"].iloc[0]
    old = out / first.kept["image_path"].iloc[0]
    assert path != old and path.is_file() and old.is_file()
    pixels = np.asarray(Image.open(path))
    assert (pixels[..., 0] == pixels[..., 1]).all()  # gray, not jet
    assert (pixels[..., 1] == pixels[..., 2]).all()
    assert not (np.asarray(Image.open(old))[..., 0] == np.asarray(Image.open(old))[..., 1]).all()


def test_mel_parameters_keep_the_loudness_stage(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = preprocess(collection, out, progress=False)
    loudness_cache = {k: v for k, v in mtimes(out).items() if k.startswith("cache/audio/")}
    assert len(loudness_cache) == len(pd.read_csv(collection / "clips.csv"))
    count = counters(monkeypatch)
    coarse = preprocess(collection, out, config=PreprocessConfig.from_flat(n_mels=64, n_fft=1024),
                        progress=False)
    # The loudness records are read back, not made again; only the clips with a
    # kept block are read again, to make the blocks the new spectrograms need.
    after = {k: v for k, v in mtimes(out).items() if k.startswith("cache/audio/")}
    assert after == loudness_cache
    assert count["load_clip"].calls == len(USABLE)
    assert count["normalised_blocks"].calls == 0  # the recorded gains are applied instead
    assert count["mel_psd_db"].calls == count["render_image"].calls == len(first.kept)
    pd.testing.assert_frame_equal(first.blocks[LOUDNESS], coarse.blocks[LOUDNESS])
    # ... and give the same images as a run that measured everything afresh
    fresh = preprocess(collection, tmp_path / "fresh",
                       config=PreprocessConfig.from_flat(n_mels=64, n_fft=1024), progress=False)
    for a, b in zip(coarse.kept["image_path"], fresh.kept["image_path"], strict=True):
        assert (out / a).read_bytes() == (tmp_path / "fresh" / b).read_bytes()
    for rel in coarse.kept["image_path"]:
        assert (out / rel).is_file()


def test_mel_parameters_do_not_measure_loudness_again(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    preprocess(collection, out, progress=False)
    count = counters(monkeypatch)
    preprocess(collection, out, config=PreprocessConfig.from_flat(n_mels=64, n_fft=1024),
               progress=False)
    assert count["normalize_loudness"].calls == 0


def test_new_clip_is_the_only_one_processed(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = preprocess(collection, out, progress=False)
    rows = pd.read_csv(collection / "clips.csv", keep_default_na=False).to_dict("records")
    rows.append(_clip_row(collection, "anger2", "anger",
                          np.random.default_rng(9).standard_normal(3 * SR) * 0.1))
    write_clips(pd.DataFrame(rows), collection)
    count = counters(monkeypatch)
    second = preprocess(collection, out, progress=False)
    assert count["load_clip"].calls == count["normalised_blocks"].calls == 1
    assert count["normalize_loudness"].calls == 2  # the new clip's two blocks
    assert count["mel_psd_db"].calls == count["render_image"].calls == 2
    new = second.blocks[second.blocks["clip_id"] == "anger2"]
    assert len(new) == 2 and new["kept"].all()
    pd.testing.assert_frame_equal(first.blocks,
                                  second.blocks[second.blocks["clip_id"] != "anger2"])


def test_interrupted_run_resumes_with_finished_clips_intact(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    interrupt = Counter(monkeypatch, "load_clip", fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        preprocess(collection, out, progress=False)
    assert interrupt.calls == 2
    assert not (out / "blocks.csv").exists()
    finished = list((out / "cache" / "clips").glob("*.json"))
    assert [p.name.split("-")[0] for p in finished] == ["joy1"]
    joy1_images = {k: v for k, v in mtimes(out).items() if k.startswith("images/")}
    assert len(joy1_images) == 4 and all("/joy1/" in k for k in joy1_images)
    monkeypatch.undo()

    count = counters(monkeypatch)
    resumed = preprocess(collection, out, progress=False)
    n_clips = len(pd.read_csv(collection / "clips.csv"))
    assert count["load_clip"].calls == n_clips - 1  # every clip but the finished one
    assert count["render_image"].calls == len(resumed.kept) - 4  # joy1's 4 are not redrawn
    after = mtimes(out)
    assert {k: after[k] for k in joy1_images} == joy1_images
    monkeypatch.undo()
    fresh = preprocess(collection, tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(resumed.blocks, fresh.blocks)
    pd.testing.assert_frame_equal(resumed.clip_report, fresh.clip_report)
    for rel in fresh.kept["image_path"]:
        assert (out / rel).read_bytes() == (tmp_path / "fresh" / rel).read_bytes()


@pytest.mark.parametrize("settings, match", [
    ({"no_such": 1}, "no_such"),
    ({"block_s": 0.1}, "block_s"),
    ({"n_fft": 256}, "n_fft"),
    ({"db_low": -20.0}, "db_low"),
    ({"freq_scale": "semitone"}, "freq_scale"),
    ({"db_scaling": "auto"}, "db_scaling"),
])
def test_bad_parameters_fail_when_the_config_is_built(collection, tmp_path, monkeypatch,
                                                      settings, match):
    count = counters(monkeypatch)
    with pytest.raises(ParameterError, match=match):
        preprocess(collection, tmp_path / "out", config=PreprocessConfig.from_flat(**settings),
                   progress=False)
    assert {name: c.calls for name, c in count.items()} == dict.fromkeys(count, 0)
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore:Empty filters detected:UserWarning")  # librosa, n_fft=512
@pytest.mark.parametrize("settings, match", [
    ({"sr": 8000, "fmin": 5000.0}, "Nyquist"),  # each part is valid, not together
    ({"n_fft": 512}, "n_fft=512"),  # mel bands without an FFT bin
    ({"colormap": "no_such_colormap"}, "no_such_colormap"),
    ({"sr": 1000, "block_s": 0.4, "win_length": 500}, "win_length"),
    ({"freq_scale": "log", "fmin": 0.0}, "log frequency scale"),
])
def test_parameters_are_checked_before_any_clip(collection, tmp_path, monkeypatch, settings,
                                                match):
    config = PreprocessConfig.from_flat(**settings)  # a config the parts accept
    count = counters(monkeypatch)
    with pytest.raises(ParameterError, match=match):
        preprocess(collection, tmp_path / "out", config=config, progress=False)
    assert {name: c.calls for name, c in count.items()} == dict.fromkeys(count, 0)
    assert not (tmp_path / "out").exists()


def test_preprocess_takes_only_a_preprocess_config(collection, tmp_path, monkeypatch):
    count = counters(monkeypatch)
    with pytest.raises(ParameterError, match="PreprocessConfig"):
        preprocess(collection, tmp_path / "out", config={"sr": 44100}, progress=False)
    with pytest.raises(TypeError):
        preprocess(collection, tmp_path / "out", progress=False, sr=44100)  # the old flat form
    assert {name: c.calls for name, c in count.items()} == dict.fromkeys(count, 0)
    assert not (tmp_path / "out").exists()


def test_preprocess_accepts_a_clips_dataframe(collection, tmp_path):
    from crowdnb.clips import read_clips

    table = read_clips(collection)
    table = table[table["clip_id"].isin(["joy1", "anger1"])]
    result = preprocess(table, tmp_path / "out", progress=False)
    assert set(result.blocks["clip_id"]) == {"joy1", "anger1"} and len(result.blocks) == 7
    assert result.clip_report["clip_id"].tolist() == ["joy1", "anger1"]


# ---------------------------------------------------------------------------
# balance


def _blocks(counts, dropped=0):
    rows = [{"block_id": f"{label}_{i}", "label": label, "kept": True}
            for label, n in counts.items() for i in range(n)]
    rows += [{"block_id": f"drop_{i}", "label": "joy", "kept": False} for i in range(dropped)]
    return pd.DataFrame(rows)


def test_balance_gives_equal_counts_and_reports_removals():
    blocks = _blocks({"joy": 199, "neutral": 84, "anger": 140}, dropped=5)
    balanced, report = balance(blocks, seed=0)
    assert balanced["label"].value_counts().to_dict() == {"anger": 84, "joy": 84, "neutral": 84}
    assert balanced["kept"].all()
    assert report.to_dict("records") == [
        {"label": "anger", "before": 140, "after": 84, "removed": 56},
        {"label": "joy", "before": 199, "after": 84, "removed": 115},
        {"label": "neutral", "before": 84, "after": 84, "removed": 0},
    ]
    assert list(balanced.index) == sorted(balanced.index)  # order kept


def test_balance_disabled_keeps_every_kept_block_with_the_same_report():
    blocks = _blocks({"joy": 30, "anger": 12}, dropped=3)
    unbalanced, report = balance(blocks, seed=0, enabled=False)
    assert unbalanced["block_id"].tolist() == blocks.loc[blocks["kept"], "block_id"].tolist()
    kept = blocks.loc[blocks["kept"], "label"].value_counts()
    assert report.to_dict("records") == [
        {"label": "anger", "before": int(kept["anger"]), "after": int(kept["anger"]), "removed": 0},
        {"label": "joy", "before": int(kept["joy"]), "after": int(kept["joy"]), "removed": 0},
    ]


def test_balance_is_seeded():
    blocks = _blocks({"joy": 50, "anger": 20})
    a, _ = balance(blocks, seed=1)
    b, _ = balance(blocks, seed=1)
    c, _ = balance(blocks, seed=2)
    assert a["block_id"].tolist() == b["block_id"].tolist()
    assert a["block_id"].tolist() != c["block_id"].tolist()


def test_png_bytes_decode_to_the_same_pixels():
    import io

    from crowdnb.dataset import png_bytes

    rgb = np.random.default_rng(5).integers(0, 256, size=(31, 17, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(png_bytes(rgb))) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (17, 31)
        np.testing.assert_array_equal(np.asarray(image), rgb)


def test_a_truncated_clip_is_named_truncated_not_too_short(tmp_path):
    # A 16-bit WAV whose header promises 5 s, cut after 1 s: shorter than a
    # block, but the reason is the cut, not the recording.
    sr = 16000
    whole = tmp_path / "whole.wav"
    sf.write(whole, 0.1 * np.sin(2 * np.pi * 440 * np.arange(5 * sr) / sr), sr, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + sr * 2])
    clips = pd.DataFrame([{"clip_id": "cut", "event_id": "cut", "label": "joy", "path": str(cut)},
                          {"clip_id": "whole", "event_id": "whole", "label": "joy",
                           "path": str(whole)}])
    report = preprocess(clips, tmp_path / "out", progress=False).clip_report.set_index("clip_id")
    assert report.loc["cut", "status"] == "truncated"
    assert report.loc["cut", "reason"] == ("truncated: the header promises 5.00 s, the file holds "
                                           "1.00 s")
    assert report.loc["whole", "status"] == "ok" and report.loc["whole", "reason"] == ""
