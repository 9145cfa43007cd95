"""The shared plumbing: atomic writes, tables, the clips-table contract, the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from crowdnb import DataError
from crowdnb.clips import CLIP_COLUMNS, read_clips, validate_label, write_card, write_clips
from crowdnb.files import atomic_path, read_json, stable_hash, write_json, write_table


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".csv" and tmp.parent == target.parent
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{broken")
            raise RuntimeError
    assert read_json(target) == {"a": 1}


def test_read_json_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DataError, match="bad.json"):
        read_json(bad)
    with pytest.raises(DataError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")


def test_stable_hash_ignores_key_order_and_sees_values():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def _clips(folder, **changes):
    rows = []
    for i, label in enumerate(["joy", "anger", "neutral"]):
        wav = folder / "audio" / f"c{i}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"RIFF")
        rows.append({"clip_id": f"c{i}", "event_id": f"e{i}", "label": label, "path": str(wav),
                     "duration_s": 10.0 + i, "sample_rate": 44100, "channels": 1,
                     "source": "synthetic", "seed": 0, "params": json.dumps({"i": i}),
                     "licence": "CC0-1.0", "attribution": "test", "sha256": "ab" * 32})
    table = pd.DataFrame(rows)
    for key, value in changes.items():
        table[key] = value
    return table


def test_clips_roundtrip_relative_paths(tmp_path):
    folder = tmp_path / "collection"
    write_clips(_clips(folder), folder)
    stored = pd.read_csv(folder / "clips.csv")
    assert list(stored.columns) == CLIP_COLUMNS
    assert stored["path"].tolist() == ["audio/c0.wav", "audio/c1.wav", "audio/c2.wav"]
    table = read_clips(folder)
    assert table["path"].tolist() == [str((folder / f"audio/c{i}.wav").resolve()) for i in range(3)]
    assert table["duration_s"].tolist() == [10.0, 11.0, 12.0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"label": ["joy", "Anger", "neutral"]}, "invalid label 'Anger'"),
        ({"clip_id": ["a", "a", "b"]}, "duplicate clip_id"),
        ({"clip_id": ["a", "../b", "c"]}, "invalid clip_id"),
    ],
)
def test_clips_table_is_validated(tmp_path, change, message):
    with pytest.raises(DataError, match=message):
        write_clips(_clips(tmp_path, **change), tmp_path)


def test_read_clips_accepts_blank_optional_columns(tmp_path):
    folder = tmp_path / "c"
    write_clips(_clips(folder, sha256="", seed="", attribution=""), folder)
    table = read_clips(folder)
    assert table["sha256"].tolist() == ["", "", ""]
    assert table["attribution"].tolist() == ["", "", ""]


def test_read_clips_rejects_paths_escaping_the_folder(tmp_path):
    folder = tmp_path / "c"
    table = _clips(folder)
    table["path"] = ["../../etc/passwd", "audio/c1.wav", "audio/c2.wav"]
    folder.mkdir(exist_ok=True)
    write_table(folder / "clips.csv", table)
    with pytest.raises(DataError, match="escapes the collection folder"):
        read_clips(folder)


def test_read_clips_names_missing_columns(tmp_path):
    write_table(tmp_path / "clips.csv", pd.DataFrame({"clip_id": ["a"]}))
    with pytest.raises(DataError, match=r"clips.csv: clips table lacks column\(s\) event_id"):
        read_clips(tmp_path)


def test_validate_label():
    assert validate_label("no_goal") == "no_goal"
    for bad in ["", "Joy", "a/b", "1x", "joy "]:
        with pytest.raises(DataError):
            validate_label(bad)


def test_card_counts_and_failures(tmp_path):
    table = _clips(tmp_path)
    failures = pd.DataFrame({"item": ["broken.wav"], "reason": ["not audio"]})
    card = write_card(table, tmp_path, title="Test collection", failures=failures).read_text()
    assert card.startswith("# Test collection")
    assert "3 clips, 3 events, 33.0 s of audio." in card
    assert "| joy | 1 | 1 | 10.0 |" in card
    assert "| broken.wav | not audio |" in card


def test_preprocess_checks_a_clips_dataframe_like_a_stored_table(tmp_path):
    from crowdnb.dataset import preprocess

    table = pd.DataFrame({"clip_id": ["a", "a"], "label": ["joy", "joy"], "path": ["x", "y"]})
    with pytest.raises(DataError, match="clips: duplicate clip_id"):
        preprocess(table, tmp_path / "out", progress=False)
    table = pd.DataFrame({"clip_id": ["a"], "label": ["Joy"], "path": ["x"]})
    with pytest.raises(DataError, match="invalid label 'Joy'"):
        preprocess(table, tmp_path / "out", progress=False)
