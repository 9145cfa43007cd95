"""Faults a tester found in the command line, each now one line and nothing overwritten.

Every test drives the command as a user does (``crowdnb.cli.main`` in this
process, or the benchmark script's ``main``) on the smallest inputs: tones of
a few seconds, the ``smoke`` synthetic preset. Each checks the exit status,
the one line on stderr (no traceback), and that what existed is unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from crowdnb.cli import main
from crowdnb.workflow.plan import load_sweep

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def tone(path: Path, seconds: float = 3.0, *, hz: float = 440.0) -> Path:
    """A sine of ``hz`` at -10 dBFS, 16-bit, mono."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, 0.3 * np.sin(2 * np.pi * hz * t), SR, subtype="PCM_16")
    return path


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the SHA-256 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(err: str) -> str:
    """The error line of a failed command (and no traceback before it)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines, err
    return lines[-1]


@pytest.fixture
def recordings(tmp_path):
    root = tmp_path / "recordings"
    tone(root / "joy" / "a.wav", hz=440.0)
    tone(root / "anger" / "b.wav", hz=880.0)
    return root


def collect_args(source: Path, out: Path, *extra: str) -> list[str]:
    return ["collect", "--source", "folder", "--input", str(source), "--out", str(out),
            "--no-progress", *extra]


def synth_args(out: Path, *extra: str, seed: int = 0) -> list[str]:
    return ["synth", "--preset", "smoke", "--seed", str(seed), "--study", "emotions",
            "--workers", "1", "--quiet", "--out", str(out), *extra]


# ---------------------------------------------------------------------------
# 1. synth never replaces a corpus or writes into a collection without being asked


def test_synth_refuses_a_second_corpus_unless_replace(tmp_path, capsys):
    out = tmp_path / "D"
    assert main(synth_args(out, seed=0)) == 0
    before = snapshot(out)
    for seed in (1, 0):  # another seed, and the same one again: both refused
        assert main(synth_args(out, seed=seed)) == 1
        line = one_line(capsys.readouterr().err)
        assert line == (f"crowdnb synth: error: {out / 'emotions'}: already holds a collection "
                        "of 6 clips (preset smoke, seed 0); nothing was changed. Pass --replace "
                        "to render it afresh, or choose another output folder")
        assert snapshot(out) == before
    assert main(synth_args(out, "--replace", seed=1)) == 0
    table = pd.read_csv(out / "emotions" / "clips.csv")
    assert set(table["seed"]) == {1} and len(table) == 6
    assert sorted(p.name for p in out.iterdir()) == ["emotions"]  # no staging folder left


def test_synth_refuses_to_write_into_a_collection(recordings, tmp_path, capsys):
    collection = tmp_path / "COL"
    assert main(collect_args(recordings, collection)) == 0
    before = snapshot(collection)
    for extra in ((), ("--replace",)):
        assert main(synth_args(collection, *extra)) == 1
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"crowdnb synth: error: {collection}: is a collection (it holds "
                               "clips.csv)")
        assert snapshot(collection) == before


# ---------------------------------------------------------------------------
# 2. an --out that is a file


def test_an_out_that_is_a_file_is_named(recordings, tmp_path, capsys):
    collection = tmp_path / "COL"
    assert main(collect_args(recordings, collection)) == 0
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    assert main(["preprocess", str(collection), "--out", str(notes), "--quiet"]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"crowdnb preprocess: error: {notes}: not a folder (it is a file); the output is the "
        "folder that receives blocks.csv, clip_report.csv and the images")
    assert main(synth_args(notes)) == 1
    assert one_line(capsys.readouterr().err) == (
        f"crowdnb synth: error: {notes}: not a folder (it is a file); the output is the folder "
        "that receives emotions/")
    assert notes.read_text() == "keep me"


# ---------------------------------------------------------------------------
# 3. a full disk: one line, and nothing half-written


def _fail_after(n_ok: int, exc: Exception, real):
    """``real`` for ``n_ok`` calls, then raises ``exc``: a disk that fills up part way."""
    calls = []

    def write(*args, **kwargs):
        calls.append(args)
        if len(calls) > n_ok:
            raise exc
        return real(*args, **kwargs)

    return write


@pytest.mark.parametrize("failure, reason", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "No space left on device"),
    (sf.LibsndfileError(2, "Error writing: "), "System error."),  # libsndfile's SF_ERR_SYSTEM
])
def test_synth_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, capsys, monkeypatch,
                                                                failure, reason):
    out = tmp_path / "D"
    monkeypatch.setattr(sf, "write", _fail_after(2, failure, sf.write))
    assert main(synth_args(out)) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"crowdnb synth: error: {out / 'emotions' / 'audio'}/synth-")
    assert line.endswith(f".wav: cannot write it ({reason}); nothing was changed in {out}")
    assert not out.exists()


def test_synth_replace_on_a_full_disk_keeps_the_old_corpus(tmp_path, capsys, monkeypatch):
    out = tmp_path / "D"
    assert main(synth_args(out, seed=0)) == 0
    before = snapshot(out)
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(sf, "write", _fail_after(3, full, sf.write))
    assert main(synth_args(out, "--replace", seed=1)) == 1
    assert "No space left on device" in one_line(capsys.readouterr().err)
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["emotions"]


def test_collect_on_a_full_disk_names_the_file_and_leaves_nothing(recordings, tmp_path,
                                                                  capsys, monkeypatch):
    out = tmp_path / "COL"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(shutil, "copy2", _fail_after(1, full, shutil.copy2))
    assert main(collect_args(recordings, out)) == 1
    line = one_line(capsys.readouterr().err)
    assert line == (f"crowdnb collect: error: {out / 'audio' / 'joy' / 'joy_a.wav'}: No space "
                    f"left on device; nothing was collected into {out}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recordings"]  # no COL, no draft
    monkeypatch.undo()
    assert main(collect_args(recordings, out)) == 0  # nothing in the way of a second try


def test_collect_replace_on_a_full_disk_keeps_the_collection(recordings, tmp_path, capsys,
                                                            monkeypatch):
    out = tmp_path / "COL"
    assert main(collect_args(recordings, out)) == 0
    before = snapshot(out)
    tone(recordings / "neutral" / "c.wav", hz=300.0)
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(shutil, "copy2", _fail_after(2, full, shutil.copy2))
    for extra in ("--replace", "--update"):
        assert main(collect_args(recordings, out, extra)) == 1
        line = one_line(capsys.readouterr().err)
        assert line.endswith(f"No space left on device; the collection in {out} was left as "
                             "it was")
        assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["COL", "recordings"]


def test_the_remains_of_a_collection_are_replaced_when_asked(recordings, tmp_path, capsys):
    # what an older version left after a full disk: audio, no clips table
    out = tmp_path / "COL"
    tone(out / "audio" / "joy" / "joy_a.wav")
    assert main(collect_args(recordings, out)) == 1
    assert one_line(capsys.readouterr().err) == (
        f"crowdnb collect: error: {out}: holds the remains of a collection without its clips "
        "table (audio); pass --replace to collect afresh")
    assert main(collect_args(recordings, out, "--replace")) == 0
    assert len(pd.read_csv(out / "clips.csv")) == 2


# ---------------------------------------------------------------------------
# 4. a block longer than every clip


def test_preprocess_refuses_a_block_longer_than_every_clip(tmp_path, capsys):
    source = tmp_path / "recordings"
    tone(source / "joy" / "a.wav", 6.0)
    tone(source / "anger" / "b.wav", 8.0, hz=880.0)
    collection, out = tmp_path / "COL", tmp_path / "O"
    assert main(collect_args(source, collection)) == 0
    assert main(["preprocess", str(collection), "--out", str(out), "--block-s", "100",
                 "--quiet"]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"crowdnb preprocess: error: block_s (100 s) is longer than every clip of {collection}: "
        "the longest, anger_b, lasts 8.00 s, so no block could be cut; choose a block_s no "
        "longer than that")
    assert not out.exists()


# ---------------------------------------------------------------------------
# 5. the workflow's parameters, checked before anything runs


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--project", str(ROOT), "--run-dir", str(tmp_path / "runs" / "check"),
            "--dry-run", "--quiet", *extra]


def test_run_refuses_a_band_the_preprocessing_cannot_use(tmp_path, capsys):
    params = str(ROOT / "params" / "smoke.yaml")
    assert main(run_args(tmp_path, "--params", params, "-p", "low_hz=5000",
                         "-p", "high_hz=100")) == 1
    assert one_line(capsys.readouterr().err) == (
        f"crowdnb run: error: {params}, stage 02_preprocessing: high_hz (100 Hz) must be above "
        "low_hz (5000 Hz)")
    # a band edge above what the sample rate can hold, too (0.95 x 8 kHz)
    assert main(run_args(tmp_path, "--params", params, "-p", "sr=16000",
                         "-p", "low_hz=9000", "-p", "high_hz=10000")) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"crowdnb run: error: {params}, stage 02_preprocessing: low_hz")
    assert "Nyquist" in line
    assert not (tmp_path / "runs" / "check").exists()


def test_run_refuses_an_empty_grid_and_jobs_below_one(tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"sweep: empty\nbase: {ROOT / 'params' / 'smoke.yaml'}\n"
                     "stages: [02_preprocessing]\ngrid: {}\n")
    assert main(run_args(tmp_path, "--sweep", str(sweep))) == 1
    assert one_line(capsys.readouterr().err) == (
        f"crowdnb run: error: {sweep}: 'grid' is empty; map parameters to lists of values "
        "(grid: {seed: [0, 1, 2]}), or leave 'grid' out")
    sweep.write_text(sweep.read_text().replace("grid: {}\n", ""))
    assert list(load_sweep(sweep).points) == ["base"]  # no grid at all is still one point
    for jobs in ("-3", "0"):
        assert main(run_args(tmp_path, "--params", str(ROOT / "params" / "smoke.yaml"),
                             "--jobs", jobs)) == 1
        assert one_line(capsys.readouterr().err) == (
            f"crowdnb run: error: jobs (--jobs) must be a whole number of at least 1, got {jobs}")


# ---------------------------------------------------------------------------
# 6. the realism check: earlier results and the reference, checked first


@pytest.fixture(scope="module")
def realism_script():
    spec = importlib.util.spec_from_file_location("realism_check",
                                                  ROOT / "benchmarks" / "realism_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def realism_args(reference: Path, out: Path, *extra: str) -> list[str]:
    return ["--reference", str(reference), "--out", str(out), "--preset", "smoke",
            "--no-network", *extra]


def test_realism_check_refuses_earlier_results_unless_replace(realism_script, tmp_path,
                                                              capsys):
    out = tmp_path / "R"
    out.mkdir()
    (out / "summary.json").write_text('{"seed": 0}\n')
    reference = tmp_path / "reference"
    (reference / "joy").mkdir(parents=True)  # it exists: the check would go on to render
    assert realism_script(realism_args(reference, out)) == 2
    assert one_line(capsys.readouterr().err) == (
        f"error: {out}: holds the results of an earlier check (summary.json); nothing was "
        "changed. Pass --replace to delete them and check afresh, or choose another --out")
    # with --replace, the reference is still checked before anything is deleted
    missing = tmp_path / "nowhere"
    assert realism_script(realism_args(missing, out, "--replace")) == 2
    assert one_line(capsys.readouterr().err).startswith(
        f"error: {missing}: reference recordings not found")
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    (out / "thesis.tex").write_text("...")
    assert realism_script(realism_args(reference, out, "--replace")) == 2
    assert "holds files the realism check did not write (thesis.tex)" in \
        one_line(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "thesis.tex"]


def test_realism_check_checks_the_reference_before_rendering(realism_script, tmp_path, capsys):
    out = tmp_path / "R"
    assert realism_script(realism_args(tmp_path / "nowhere", out)) == 2
    assert one_line(capsys.readouterr().err).startswith(
        f"error: {tmp_path / 'nowhere'}: reference recordings not found")
    listed = tmp_path / "manifest.csv"
    listed.write_text("file,proposed_label\na.wav,joy\n")
    assert realism_script(realism_args(listed, out, "--path-column", "path",
                                       "--label-column", "proposed_label")) == 2
    assert one_line(capsys.readouterr().err) == (
        f"error: {listed}: the reference list has no column 'path' (path_column; its columns: "
        "file, proposed_label)")
    assert not out.exists()  # no corpus rendered


# ---------------------------------------------------------------------------
# 7. symbolic links that lead nowhere are reported


def test_symlink_loops_and_broken_links_are_reported_as_skipped(recordings, tmp_path, capsys):
    os.symlink("loop.wav", recordings / "joy" / "loop.wav")
    os.symlink("everywhere", recordings / "everywhere")
    os.symlink("gone.wav", recordings / "anger" / "old.wav")
    os.symlink("../joy", recordings / "joy" / "again")  # a folder loop
    os.symlink(recordings / "joy", recordings / "anger" / "more")  # another label's folder
    out = tmp_path / "COL"
    assert main(collect_args(recordings, out)) == 0
    report = pd.read_csv(out / "collection_report.csv", keep_default_na=False)
    rows = {r.item: (r.status, r.reason) for r in report.itertuples()}
    loop = ("skipped", "symbolic link loop (Too many levels of symbolic links): it leads to "
                       "no file")
    assert rows["joy/loop.wav"] == loop and rows["everywhere"] == loop
    assert rows["anger/old.wav"] == ("skipped", "broken symbolic link: its target gone.wav "
                                                "does not exist")
    assert rows["joy/again"] == ("skipped", "symbolic link to a folder (../joy): not followed, its "
                                 "files were not collected (link the files themselves, or copy "
                                 "the folder in)")
    assert rows["anger/more"][1].startswith(f"symbolic link to a folder ({recordings / 'joy'})")
    assert "5 item(s) not collected" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# 8. --update keeps the collection's clips, also one whose source changed


def test_update_keeps_a_clip_whose_source_changed_and_names_it(recordings, tmp_path, capsys,
                                                               caplog):
    out = tmp_path / "COL"
    assert main(collect_args(recordings, out)) == 0
    kept = out / "audio" / "anger" / "anger_b.wav"
    before = snapshot(out)
    tone(recordings / "anger" / "b.wav", hz=1200.0)  # edited in the source
    tone(recordings / "neutral" / "c.wav", hz=300.0)  # and a new clip
    with caplog.at_level(logging.WARNING, logger="crowdnb.sources"):
        assert main(collect_args(recordings, out, "--update")) == 0
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == before["audio/anger/anger_b.wav"]
    table = pd.read_csv(out / "clips.csv").set_index("clip_id")
    assert sorted(table.index) == ["anger_b", "joy_a", "neutral_c"]
    assert table.loc["anger_b", "sha256"] == before["audio/anger/anger_b.wav"]
    assert caplog.messages == [
        f"{out}: 1 clip(s) differ from their source and were kept as the collection had them: "
        "anger_b; collect with --replace to take the source's audio (see "
        "collection_report.csv)"]
    report = pd.read_csv(out / "collection_report.csv", keep_default_na=False)
    status, reason = report.set_index("item").loc["anger/b.wav", ["status", "reason"]]
    assert status == "kept" and "the collection's copy was kept" in reason
    assert list(report["item"]).count("anger_b") == 0  # reported once, under its file
    assert "collected 3 clip(s)" in capsys.readouterr().out
    assert main(collect_args(recordings, out, "--replace")) == 0  # the way the line names
    assert pd.read_csv(out / "clips.csv").set_index("clip_id").loc["anger_b", "sha256"] != \
        before["audio/anger/anger_b.wav"]
