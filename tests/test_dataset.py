"""Tests of crowdnb.dataset: the block table, its cache, resumption and balancing.

A small collection is written to tmp_path: noise clips of three classes, one
with a silent stretch, one too short, one corrupt, one holding NaN. Work is
counted by wrapping the stage functions the module calls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

import crowdnb.dataset as dataset
from crowdnb import ParameterError
from crowdnb.audio import band_limit, normalize_loudness, split_blocks
from crowdnb.clips import write_clips
from crowdnb.dataset import BLOCK_COLUMNS, CLIP_REPORT_COLUMNS, balance, preprocess
from crowdnb.files import sha256_file
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


class Counter:
    """Wrap a function of crowdnb.dataset and count its calls."""

    def __init__(self, monkeypatch, name, fail_on_call=None):
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.original = getattr(dataset, name)
        monkeypatch.setattr(dataset, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("injected interruption")
        return self.original(*args, **kwargs)


def counters(monkeypatch):
    return {name: Counter(monkeypatch, name)
            for name in ("load_clip", "normalize_loudness", "mel_psd_db", "render_image")}


LOUDNESS = ["block_id", "loudness_lufs", "gain_db", "peak_dbfs", "clipped", "kept", "reason"]


def test_block_table_images_and_clip_report(collection, tmp_path):
    out = tmp_path / "out"
    blocks = preprocess(collection, out, progress=False)
    assert list(blocks.columns) == BLOCK_COLUMNS
    on_disk = pd.read_csv(out / "blocks.csv", keep_default_na=False)
    assert list(on_disk.columns) == BLOCK_COLUMNS and len(on_disk) == len(blocks)

    per_clip = blocks.groupby("clip_id").size().to_dict()
    # 5.5 s -> 4 blocks, 4 s -> 3, 6 s -> 5, 3 s -> 2; short/nan/corrupt -> none.
    assert per_clip == {"joy1": 4, "joy2": 3, "anger1": 3, "neutral1": 5, "silent": 2}
    joy1 = blocks[blocks["clip_id"] == "joy1"]
    np.testing.assert_allclose(joy1["start_s"], [0, 1, 2, 3])
    np.testing.assert_allclose(joy1["end_s"] - joy1["start_s"], 2.0)
    assert joy1["block_id"].is_unique and set(joy1["event_id"]) == {"ev_joy1"}

    kept = blocks[blocks["kept"]]
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
    assert report.loc["joy1", "status"] == "ok" and report.loc["joy1", "n_kept"] == 4
    assert report.loc["silent", "status"] == "no_usable_blocks"
    assert report.loc["short", "status"] == "too_short"
    assert "too short" in report.loc["short", "reason"]
    for clip_id in ("nan", "corrupt"):
        assert report.loc[clip_id, "status"] == "unusable"
        assert report.loc[clip_id, "reason"].startswith(str(collection / f"{clip_id}.wav"))
    assert "NaN" in report.loc["nan", "reason"]


def test_images_are_the_spectrogram_image_of_the_normalised_block(collection, tmp_path):
    blocks = preprocess(collection, tmp_path / "out", progress=False)
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
    png = out / first.loc[first["kept"], "image_path"].iloc[0]
    mtime = png.stat().st_mtime_ns
    count = counters(monkeypatch)
    second = preprocess(collection, out, progress=False)
    assert {name: c.calls for name, c in count.items()} == dict.fromkeys(count, 0)
    pd.testing.assert_frame_equal(first, second)
    assert png.stat().st_mtime_ns == mtime


def test_runs_are_deterministic(collection, tmp_path):
    a = preprocess(collection, tmp_path / "a", progress=False)
    b = preprocess(collection, tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(a, b)
    for rel in a.loc[a["kept"], "image_path"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_image_parameters_rerender_from_cached_spectrograms(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = preprocess(collection, out, progress=False)
    count = counters(monkeypatch)
    gray = preprocess(collection, out, progress=False, colormap="gray", db_range=(-120.0, -30.0))
    assert count["load_clip"].calls == count["normalize_loudness"].calls == 0
    assert count["mel_psd_db"].calls == 0
    assert count["render_image"].calls == int(first["kept"].sum())
    pd.testing.assert_frame_equal(first[LOUDNESS], gray[LOUDNESS])
    path = out / gray.loc[gray["kept"], "image_path"].iloc[0]
    assert path != out / first.loc[first["kept"], "image_path"].iloc[0]
    pixels = np.asarray(Image.open(path))
    assert (pixels[..., 0] == pixels[..., 1]).all()  # gray, not jet


def test_mel_parameters_keep_the_loudness_stage(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = preprocess(collection, out, progress=False)
    count = counters(monkeypatch)
    coarse = preprocess(collection, out, progress=False, n_mels=64, n_fft=1024)
    assert count["normalize_loudness"].calls == 0
    usable = {"joy1", "joy2", "anger1", "neutral1"}  # clips with a kept block
    assert count["load_clip"].calls == len(usable)
    pd.testing.assert_frame_equal(first[LOUDNESS], coarse[LOUDNESS])


def test_new_clip_is_the_only_one_processed(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = preprocess(collection, out, progress=False)
    rows = pd.read_csv(collection / "clips.csv", keep_default_na=False).to_dict("records")
    rows.append(_clip_row(collection, "anger2", "anger",
                          np.random.default_rng(9).standard_normal(3 * SR) * 0.1))
    write_clips(pd.DataFrame(rows), collection)
    count = counters(monkeypatch)
    second = preprocess(collection, out, progress=False)
    assert count["load_clip"].calls == 1
    assert count["normalize_loudness"].calls == 2  # the new clip's two blocks
    new = second[second["clip_id"] == "anger2"]
    assert len(new) == 2 and new["kept"].all()
    pd.testing.assert_frame_equal(first, second[second["clip_id"] != "anger2"])


def test_interrupted_run_resumes_with_finished_clips_intact(collection, tmp_path, monkeypatch):
    out = tmp_path / "out"
    interrupt = Counter(monkeypatch, "load_clip", fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        preprocess(collection, out, progress=False)
    assert interrupt.calls == 2
    assert not (out / "blocks.csv").exists()
    finished = list((out / "cache" / "clips").glob("*.json"))
    assert [p.name.split("-")[0] for p in finished] == ["joy1"]
    monkeypatch.undo()

    count = counters(monkeypatch)
    resumed = preprocess(collection, out, progress=False)
    n_clips = len(pd.read_csv(collection / "clips.csv"))
    assert count["load_clip"].calls == n_clips - 1  # every clip but the finished one
    monkeypatch.undo()
    fresh = preprocess(collection, tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(resumed, fresh)


def test_parameters_are_checked_before_any_clip(collection, tmp_path, monkeypatch):
    count = counters(monkeypatch)
    with pytest.raises(ParameterError, match="no_such"):
        preprocess(collection, tmp_path / "out", progress=False, no_such=1)
    with pytest.raises(ParameterError, match="block"):
        preprocess(collection, tmp_path / "out", progress=False, block_s=0.1)
    with pytest.raises(ParameterError, match="n_fft"):
        preprocess(collection, tmp_path / "out", progress=False, n_fft=256)
    assert count["load_clip"].calls == 0


def test_preprocess_accepts_a_clips_dataframe(collection, tmp_path):
    from crowdnb.clips import read_clips

    table = read_clips(collection)
    table = table[table["clip_id"].isin(["joy1", "anger1"])]
    blocks = preprocess(table, tmp_path / "out", progress=False)
    assert set(blocks["clip_id"]) == {"joy1", "anger1"} and len(blocks) == 7


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
