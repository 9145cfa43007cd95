"""Collections never overwritten without being asked, and bad input named, not taken.

A second ``crowdnb collect`` into a collection is refused; ``--update`` adds
to it and reports changed audio; ``--replace`` starts afresh. Label typos,
non-boolean switches, truncated, clipped and corrupt files each get one line
that says what is wrong.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from crowdnb import DataError, ParameterError
from crowdnb.cli import main
from crowdnb.sources import collect, collect_folder

SR = 16000


def tone(path: Path, seconds: float = 3.0, *, hz: float = 440.0, amplitude: float = 0.3,
         subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, amplitude * np.sin(2 * np.pi * hz * t), SR, subtype=subtype)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report(folder: Path) -> dict[str, tuple[str, str]]:
    table = pd.read_csv(folder / "collection_report.csv", keep_default_na=False)
    return {r.item: (r.status, r.reason) for r in table.itertuples()}


@pytest.fixture
def recordings(tmp_path):
    root = tmp_path / "recordings"
    tone(root / "joy" / "a.wav", hz=440.0)
    tone(root / "anger" / "b.wav", hz=880.0)
    return root


def test_a_second_collect_is_refused_and_changes_nothing(recordings, tmp_path):
    out = tmp_path / "mine"
    collect_folder(recordings, out, progress=False)
    before = {p: digest(p) for p in out.rglob("*") if p.is_file()}
    tone(recordings / "neutral" / "c.wav", hz=300.0)
    with pytest.raises(DataError, match=f"{out}: already holds a collection \\(2 clips\\); "
                                        "nothing was changed. Pass --update"):
        collect_folder(recordings, out, progress=False)
    assert {p: digest(p) for p in out.rglob("*") if p.is_file()} == before


def test_update_adds_new_clips_keeps_the_old_and_reports_changed_audio(recordings, tmp_path):
    out = tmp_path / "mine"
    collect_folder(recordings, out, progress=False)
    old_b = digest(out / "audio" / "anger" / "anger_b.wav")
    # one file new, one file edited in place, one file gone from the input
    tone(recordings / "neutral" / "c.wav", hz=300.0)
    tone(recordings / "anger" / "b.wav", hz=1200.0)
    (recordings / "joy" / "a.wav").unlink()
    result = collect_folder(recordings, out, existing="update", progress=False)
    table = result.clips.set_index("clip_id")
    assert sorted(table.index) == ["anger_b", "joy_a", "neutral_c"]
    assert (out / "audio" / "joy" / "joy_a.wav").is_file()  # kept: still in the collection
    rows = report(out)
    assert rows["joy_a"] == ("kept", "in the collection before this update")
    assert rows["neutral/c.wav"] == ("collected", "")
    # the collection's clips are kept: a source file with other audio is reported, not copied
    status, reason = rows["anger/b.wav"]
    assert status == "kept" and "anger_b" in reason and old_b[:12] in reason, reason
    assert digest(out / "audio" / "anger" / "anger_b.wav") == old_b
    assert table.loc["anger_b", "sha256"] == old_b
    # the collection's clips in their order, then the new one
    assert pd.read_csv(out / "clips.csv")["clip_id"].tolist() == ["anger_b", "joy_a", "neutral_c"]


def test_replace_starts_afresh_and_leaves_no_orphan(recordings, tmp_path):
    out = tmp_path / "mine"
    collect_folder(recordings, out, progress=False)
    other = tmp_path / "other"
    tone(other / "neutral" / "z.wav", hz=300.0)
    collect_folder(other, out, existing="replace", progress=False)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["audio/neutral/neutral_z.wav", "card.md", "clips.csv", "collection_report.csv"]


def test_a_folder_with_other_files_is_never_a_collection_target(recordings, tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("...")
    for existing in ("refuse", "update", "replace"):
        with pytest.raises(DataError, match="not empty and not a collection .it holds chapter1.tex"):
            collect_folder(recordings, out, existing=existing, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["chapter1.tex"]


def test_cli_refuses_then_updates_and_names_a_file_given_as_out(recordings, tmp_path, capsys):
    out = tmp_path / "mine"
    args = ["collect", "--source", "folder", "--input", str(recordings), "--out", str(out),
            "--no-progress"]
    assert main(args) == 0
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "already holds a collection" in err and "Traceback" not in err
    assert main(args + ["--update"]) == 0
    with pytest.raises(SystemExit):  # one or the other
        main(args + ["--update", "--replace"])
    assert "not allowed with argument" in capsys.readouterr().err
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert main(["collect", "--source", "folder", "--input", str(recordings), "--out",
                 str(a_file), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert f"{a_file}: is a file; the output must be a folder" in err and "Traceback" not in err
    assert a_file.read_text() == "keep me"


def test_the_synthetic_corpus_is_refused_too_and_cannot_be_updated(tmp_path):
    out = tmp_path / "syn"
    collect("synthetic", out, preset="smoke", seed=0, workers=1, progress=False)
    with pytest.raises(DataError, match="emotions: already holds a collection"):
        collect("synthetic", out, preset="smoke", seed=1, workers=1, progress=False)
    with pytest.raises(ParameterError, match="renders a whole corpus; pass --replace"):
        collect("synthetic", out, preset="smoke", seed=1, workers=1, progress=False,
                existing="update")


def test_a_label_outside_the_study_is_named_with_what_was_found(recordings, tmp_path):
    tone(recordings / "sadness" / "s.wav", hz=220.0)
    with pytest.raises(DataError, match=r"label\(s\) sadness are not among anger, goal, joy, "
                                        r"neutral, no_goal \(found: anger, joy, sadness\); "
                                        r"pass --set labels=\[anger, joy, sadness\]"):
        collect_folder(recordings, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    table = collect_folder(recordings, tmp_path / "out", labels=["anger", "joy", "sadness"],
                           progress=False).clips
    assert sorted(set(table["label"])) == ["anger", "joy", "sadness"]


@pytest.mark.parametrize("setting, message", [
    ("copy=maybe", "copy: true or false, got 'maybe'"),
    ("copy=1", "copy: true or false, got 1"),
    ("min_duration_s=long", "min_duration_s: a number, got 'long'"),
])
def test_cli_settings_have_the_options_type(recordings, tmp_path, capsys, setting, message):
    out = tmp_path / "out"
    assert main(["collect", "--source", "folder", "--input", str(recordings), "--out", str(out),
                 "--set", setting]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_truncated_clipped_and_corrupt_files_are_named(recordings, tmp_path):
    whole = tone(tmp_path / "whole.wav", 5.0)
    cut = recordings / "joy" / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + 3 * SR * 2])  # header: 5 s; data: 3 s
    loud = recordings / "anger" / "loud.wav"
    t = np.arange(3 * SR) / SR
    sf.write(loud, np.clip(4.0 * np.sin(2 * np.pi * 200 * t), -1.0, 1.0), SR, subtype="PCM_16")
    corrupt = recordings / "anger" / "broken.mp3"
    corrupt.write_bytes(np.random.default_rng(0).bytes(20000))
    out = tmp_path / "out"
    collect_folder(recordings, out, progress=False)
    rows = report(out)
    assert rows["joy/cut.wav"] == ("failed", "truncated: the header promises 5.00 s, the file "
                                             "holds 3.00 s (an interrupted copy or download?)")
    status, reason = rows["anger/loud.wav"]
    assert status == "collected" and reason.startswith("clipped recording: ")
    share = float(reason.split(": ")[1].split("%")[0]) / 100
    assert 0.7 < share < 0.95  # a sine driven 12 dB over full scale: ~84 % of samples clipped
    status, reason = rows["anger/broken.mp3"]
    assert status == "failed" and "corrupt" in reason and "short" not in reason
    assert "does not exist" not in reason


def test_an_input_with_nothing_in_it_says_so(tmp_path):
    empty = tmp_path / "empty"
    (empty / "joy").mkdir(parents=True)
    with pytest.raises(DataError, match="no clip was collected: the input holds no item"):
        collect_folder(empty, tmp_path / "out", progress=False)
