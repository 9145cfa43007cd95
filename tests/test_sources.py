"""Data sources, offline: a local folder, a local HTTP server standing in for the web.

The manifest and AudioSet sources run for real: yt-dlp's generic extractor
fetches files from an ``http.server`` on 127.0.0.1 (with byte ranges, as real
media servers have), ffmpeg cuts the time range, and the clips' durations and
contents are checked in seconds and hertz.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import http.server
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from conftest import worker_jobs
from crowdnb import DataError, ParameterError
from crowdnb.clips import read_clips
from crowdnb.sources import (
    AUDIOSET_BASE_URL, AUDIOSET_LISTS, REPORT_FILE, Collection, build_audioset_manifest, collect,
    collect_audioset, collect_folder, collect_manifest, collect_study, load_mapping,
    parse_label_map, read_class_labels, read_segments, register_cli,
)
from crowdnb.sources.audioset import YOUTUBE_URL
from crowdnb.workflow.plan import NOTEBOOK_FOLDER
from crowdnb.workflow.stages import discover_stages, load_param_file, resolve_parameters

# ---------------------------------------------------------------------------
# Signals and files


def stepped_tone(sr: int, duration_s: float, *, channels: int = 1, step_hz: float = 200.0):
    """A tone whose frequency is step_hz * (k + 1) during second k: position is audible."""
    t = np.arange(int(round(sr * duration_s))) / sr
    freq = step_hz * (np.floor(t) + 1.0)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    y = 0.3 * np.sin(phase)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


def dominant_hz(y: np.ndarray, sr: int, center_s: float, width_s: float = 0.4) -> float:
    if y.ndim > 1:
        y = y.mean(axis=1)
    a = int((center_s - width_s / 2) * sr)
    seg = y[a: a + int(width_s * sr)] * np.hanning(int(width_s * sr))
    spectrum = np.abs(np.fft.rfft(seg, n=8 * len(seg)))
    return float(np.fft.rfftfreq(8 * len(seg), 1 / sr)[spectrum.argmax()])


def write_audio(path: Path, sr: int, duration_s: float, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, stepped_tone(sr, duration_s, channels=channels), sr)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------
# A local web server with byte ranges, and a closed port


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP byte ranges (ffmpeg seeks with them, as on real servers)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits[self.path] += 1
        super().do_GET()

    def send_head(self):
        path = self.translate_path(self.path)
        match = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if not match or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        if start >= size:
            self.send_error(416)
            return None
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # ffmpeg closes connections once it has its range: not an error


@pytest.fixture
def web(tmp_path, monkeypatch):
    """A static HTTP server on 127.0.0.1 (random port) serving tmp_path/www."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "www"
    root.mkdir()
    server = _Server(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=str(root)))
    server.hits = collections.Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{server.server_address[1]}",
                              hits=server.hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report_of(folder: Path) -> dict[str, tuple[str, str]]:
    report = pd.read_csv(folder / REPORT_FILE, keep_default_na=False)
    assert list(report.columns) == ["item", "status", "reason"]
    return {r.item: (r.status, r.reason) for r in report.itertuples()}


# ---------------------------------------------------------------------------
# folder


@pytest.fixture
def recordings(tmp_path):
    root = tmp_path / "recordings"
    write_audio(root / "joy" / "a16k.wav", 16000, 3.0)
    write_audio(root / "joy" / "derby" / "b22k.flac", 22050, 2.5, channels=2)
    write_audio(root / "anger" / "c44k.ogg", 44100, 3.0, channels=2)
    write_audio(root / "anger" / "d48k.mp3", 48000, 3.0)
    write_audio(root / "neutral" / "e44k.mp3", 44100, 2.5, channels=2)
    write_audio(root / "neutral" / "short.wav", 44100, 0.5)
    (root / "neutral" / "empty.wav").write_bytes(b"")
    (root / "neutral" / "notes.wav").write_text("these are my field notes, not audio\n" * 20)
    corrupt = write_audio(root / "joy" / "corrupt.flac", 44100, 3.0)
    corrupt.write_bytes(corrupt.read_bytes()[:200])  # header only: the frames are gone
    write_audio(root / "Bad Label" / "x.wav", 16000, 3.0)
    write_audio(root / ".trash" / "old.wav", 16000, 3.0)
    (root / "README.txt").write_text("my recordings")
    return root


EXPECTED_FOLDER_CLIPS = {
    # clip_id: (label, event_id, sample_rate, channels, duration_s, path)
    "joy_a16k": ("joy", "joy_a16k", 16000, 1, 3.0, "audio/joy/joy_a16k.wav"),
    "joy_derby_b22k": ("joy", "derby", 22050, 2, 2.5, "audio/joy/joy_derby_b22k.flac"),
    "anger_c44k": ("anger", "anger_c44k", 44100, 2, 3.0, "audio/anger/anger_c44k.ogg"),
    "anger_d48k": ("anger", "anger_d48k", 48000, 1, 3.0, "audio/anger/anger_d48k.mp3"),
    "neutral_e44k": ("neutral", "neutral_e44k", 44100, 2, 2.5,
                     "audio/neutral/neutral_e44k.mp3"),
}


def test_folder_collects_mixed_formats_and_reports_the_rest(recordings, tmp_path):
    before = {p: sha(p) for p in recordings.rglob("*") if p.is_file()}
    out = tmp_path / "mine"
    result = collect_folder(recordings, out, progress=False)
    assert isinstance(result, Collection) and result.folder == out
    table = result.clips

    assert set(table["clip_id"]) == set(EXPECTED_FOLDER_CLIPS)
    # The returned table has absolute paths to the written files.
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in table["path"])
    written = pd.read_csv(out / "clips.csv", keep_default_na=False).set_index("clip_id")
    for clip_id, (label, event, sr, channels, duration, rel) in EXPECTED_FOLDER_CLIPS.items():
        row = written.loc[clip_id]
        assert (row.label, row.event_id, row.sample_rate, row.channels) == \
            (label, event, sr, channels), clip_id
        assert abs(row.duration_s - duration) < 0.1, clip_id  # mp3 frames: tens of ms
        assert row.path == rel and row.source == "folder"
        assert row.sha256 == sha(out / rel) and row.licence == "unspecified"
    # Copies are byte for byte the originals, and the originals are untouched.
    assert written.loc["joy_a16k", "sha256"] == before[recordings / "joy" / "a16k.wav"]
    assert {p: sha(p) for p in recordings.rglob("*") if p.is_file()} == before

    report = report_of(out)
    # The returned report is the one written.
    assert {r.item: (r.status, r.reason) for r in result.report.itertuples()} == report
    assert report["neutral/short.wav"] == ("failed", "shorter than one block (2 s): 0.50 s")
    assert report["neutral/empty.wav"] == ("failed", "empty file (0 bytes)")
    assert report["neutral/notes.wav"][0] == "failed"
    assert "not readable as audio" in report["neutral/notes.wav"][1]
    assert report["joy/corrupt.flac"][0] == "failed"
    assert "not readable as audio" in report["joy/corrupt.flac"][1]
    assert report["Bad Label/"][0] == "failed" and "invalid label" in report["Bad Label/"][1]
    assert report["README.txt"] == ("skipped", "not inside a label sub-folder")
    assert not any(".trash" in item for item in report)
    collected = {item for item, (status, _) in report.items() if status == "collected"}
    assert collected == {"joy/a16k.wav", "joy/derby/b22k.flac", "anger/c44k.ogg",
                         "anger/d48k.mp3", "neutral/e44k.mp3"}

    card = (out / "card.md").read_text()
    assert "shorter than one block" in card and "5 clips" in card
    assert set(read_clips(out)["label"]) == {"joy", "anger", "neutral"}


def test_folder_short_clip_threshold_and_reference_mode(recordings, tmp_path):
    out = tmp_path / "all"
    table = collect_folder(recordings, out, min_duration_s=0.0, copy=False,
                           progress=False).clips
    short = table.set_index("clip_id").loc["neutral_short"]
    assert abs(short.duration_s - 0.5) < 1e-3
    # Referenced, not copied: absolute paths to the originals, no audio folder.
    assert Path(short.path) == (recordings / "neutral" / "short.wav").resolve()
    assert not (out / "audio").exists()
    with pytest.raises(ParameterError, match="min_duration_s"):
        collect_folder(recordings, out, min_duration_s=-1.0, progress=False)


def test_folder_csv_rejects_traversal_bad_labels_and_duplicates(tmp_path):
    data = tmp_path / "data"
    write_audio(data / "takes" / "cheer.wav", 44100, 3.0)
    write_audio(data / "riot.flac", 22050, 3.0, channels=2)
    (data / "copy_of_cheer.wav").write_bytes((data / "takes" / "cheer.wav").read_bytes())
    outside = write_audio(tmp_path / "secret.wav", 44100, 3.0)
    csv = data / "labels.csv"
    csv.write_text(
        "path,label,event_id,licence\n"
        "takes/cheer.wav,joy,final_2014,CC BY 4.0\n"
        "riot.flac,anger,,\n"
        "../secret.wav,joy,,\n"
        f"{outside},joy,,\n"
        "takes/../../secret.wav,joy,,\n"
        "riot.flac,Anger,,\n"
        "riot.flac,anger; rm -rf /,,\n"
        "copy_of_cheer.wav,neutral,,\n"
        "missing.wav,joy,,\n"
    )
    out = tmp_path / "out"
    table = collect_folder(csv, out, progress=False).clips.set_index("clip_id")

    assert set(table.index) == {"takes_cheer", "riot"}
    assert table.loc["takes_cheer", "event_id"] == "final_2014"
    assert table.loc["takes_cheer", "licence"] == "CC BY 4.0"
    assert table.loc["riot", "event_id"] == "riot"
    report = report_of(out)
    for row in (4, 5, 6):
        item = next(i for i in report if i.startswith(f"row {row}:"))
        assert report[item][0] == "failed" and "escapes the data directory" in report[item][1]
    for row in (7, 8):
        item = next(i for i in report if i.startswith(f"row {row}:"))
        assert "invalid label" in report[item][1]
    assert "same audio as row 2" in report["row 9: copy_of_cheer.wav"][1]
    assert report["row 10: missing.wav"] == ("failed", "file not found")
    # Nothing was written outside the collection folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out", "secret.wav"]


# ---------------------------------------------------------------------------
# manifest


def test_manifest_downloads_only_the_range_and_reruns_from_cache(web, tmp_path):
    write_audio(web.root / "stadium.wav", 22050, 6.0)
    write_audio(web.root / "street.mp3", 44100, 6.0, channels=2)
    manifest = tmp_path / "clips.csv"
    manifest.write_text(
        "url,start,end,label,event_id,licence,attribution\n"
        f"{web.url}/stadium.wav,1.5,4.0,joy,stadium,CC BY 4.0,A. Fan\n"
        f"{web.url}/street.mp3,0:00.5,0:03.5,anger,,,\n"
    )
    out = tmp_path / "web"

    plan = collect_manifest(manifest, out, dry_run=True, progress=False)
    assert list(plan["status"]) == ["to download", "to download"] and not out.exists()

    result = collect_manifest(manifest, out, progress=False)
    assert result.folder == out and result.messages == []  # no network trouble
    table = result.clips.set_index("clip_id")
    assert list(table.index) == ["stadium_1500_4000", f"{table.iloc[1].event_id}_500_3500"]
    stadium = table.loc["stadium_1500_4000"]
    assert abs(stadium.duration_s - 2.5) < 0.1
    assert abs(table.iloc[1].duration_s - 3.0) < 0.1
    assert (stadium.sample_rate, stadium.channels) == (22050, 1)
    assert (table.iloc[1].sample_rate, table.iloc[1].channels) == (44100, 2)
    # The right range: second k of the source is a 200 (k + 1) Hz tone, so
    # 1.0 s into a clip that starts at 1.5 s (source 2.5 s) is 600 Hz.
    y, sr = sf.read(stadium.path)
    assert abs(dominant_hz(y, sr, 1.0) - 600.0) < 5.0
    assert abs(dominant_hz(y, sr, 2.0) - 800.0) < 5.0
    assert stadium.sha256 == sha(Path(stadium.path))
    assert stadium.licence == "CC BY 4.0" and stadium.attribution.startswith("A. Fan; ")
    assert {r[1] for r in report_of(out).values()} == {"downloaded"}

    # Every file name comes from a hash or a validated id, never from the URL.
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    keys = sorted(p.name for p in (out / "downloads").iterdir())
    assert all(re.fullmatch(r"[0-9a-f]{24}", k) for k in keys) and len(keys) == 2
    assert files == sorted(["card.md", "clips.csv", REPORT_FILE,
                            "audio/joy/stadium_1500_4000.wav",
                            f"audio/anger/{table.index[1]}.wav",
                            *(f"downloads/{k}/{n}" for k in keys for n in
                              ("audio.wav", "meta.json"))])

    hits = sum(web.hits.values())
    assert hits >= 2
    with pytest.raises(DataError, match="already holds a collection .2 clips.; nothing was changed"):
        collect_manifest(manifest, out, progress=False)
    again = collect_manifest(manifest, out, existing="update", progress=False)
    assert sum(web.hits.values()) == hits  # nothing downloaded again
    assert {r[1] for r in report_of(out).values()} == {"cached (not downloaded again)"}
    assert set(again.report["reason"]) == {"cached (not downloaded again)"}
    assert list(again.clips["sha256"]) == list(table["sha256"])
    assert set(collect_manifest(manifest, out, dry_run=True, progress=False)["status"]) \
        == {"cached"}


def test_manifest_unreachable_host_reports_once_and_keeps_the_rest(web, closed_port,
                                                                    tmp_path, caplog):
    write_audio(web.root / "a.wav", 16000, 4.0)
    write_audio(web.root / "b.wav", 16000, 4.0)
    dead = f"http://127.0.0.1:{closed_port}"
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "url,start,end,label\n"
        f"{web.url}/a.wav,0,3,joy\n"
        f"{dead}/x.wav,0,3,anger\n"
        f"{dead}/y.wav,0,3,anger\n"
        f"{dead}/z.wav,1,4,neutral\n"
        f"{web.url}/b.wav,1,4,neutral\n"
    )
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="crowdnb.sources"):
        result = collect_manifest(manifest, out, progress=False, retries=0)
    table = result.clips
    assert sorted(table["label"]) == ["joy", "neutral"]
    assert list(result.report["status"]) == \
        ["collected", "failed", "skipped", "skipped", "collected"]
    statuses = [status for status, _ in report_of(out).values()]
    assert statuses == ["collected", "failed", "skipped", "skipped", "collected"]
    reasons = [reason for _, reason in report_of(out).values()]
    assert reasons[1] == f"cannot reach 127.0.0.1:{closed_port}: connection refused"
    assert reasons[2].startswith("not attempted")
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 1 and "could not reach 127.0.0.1" in messages[0]
    assert "Traceback" not in messages[0] and "rerun" in messages[0]
    assert result.messages == messages  # what was logged is also returned

    only_dead = tmp_path / "dead.csv"
    only_dead.write_text(f"url,start,end,label\n{dead}/x.wav,0,3,joy\n{dead}/y.wav,0,3,joy\n")
    with pytest.raises(DataError, match="could not reach 127.0.0.1"):
        collect_manifest(only_dead, tmp_path / "none", progress=False, retries=0)
    assert report_of(tmp_path / "none")["row 3: " + f"{dead}/y.wav [0-3 s]"][0] == "skipped"


def test_manifest_rejects_unsafe_and_invalid_rows(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "url,start,end,label,clip_id\n"
        "file:///etc/passwd,0,3,joy,\n"
        "ftp://example.org/a.wav,0,3,joy,\n"
        "javascript:alert(1),0,3,joy,\n"
        "https://example.org/a.wav,0,3,Joy!,\n"
        "https://example.org/a.wav,5,3,joy,\n"
        "https://example.org/a.wav,0,1,joy,\n"
        "https://example.org/a.wav,0,3,joy,../../evil\n"
        "https://example.org/ok.wav,0,3,joy,\n"
        "https://example.org/ok.wav,0,3,anger,\n"
    )
    plan = collect_manifest(manifest, tmp_path / "out", dry_run=True, progress=False)
    assert not (tmp_path / "out").exists()
    reasons = list(plan["reason"])
    assert [s for s in plan["status"]].count("to download") == 1
    assert sum("scheme must be http or https" in r for r in reasons) == 3
    assert any("invalid label" in r for r in reasons)
    assert any("is not after start" in r for r in reasons)
    assert any("shorter than one block (2 s)" in r for r in reasons)
    assert any("invalid clip_id '../../evil'" in r for r in reasons)
    assert any("same URL and time range as row 9" in r for r in reasons)


# ---------------------------------------------------------------------------
# audioset

CLASS_LABELS = """index,mid,display_name
0,/m/09x0r,Speech
1,/m/07p6fty,Shout
2,/m/07sr1lc,Yell
3,/m/04gy_2,Battle cry
4,/m/053hz1,Cheering
5,/m/028ght,Applause
6,/m/07rkbfh,Chatter
7,/m/03qtwd,Crowd
8,/m/07qfr4h,"Hubbub, speech noise, speech babble"
9,/m/04rlf,Music
"""

SEGMENTS = [  # ytid, labels; what the default mapping should make of it
    ("-joy0000001", "/m/053hz1,/m/03qtwd"),  # joy
    ("joy00000002", "/m/053hz1"),  # joy
    ("joy00000003", "/m/028ght"),  # joy (applause)
    ("joy00000004", "/m/053hz1,/m/028ght"),  # joy
    ("joy_0000005", "/m/028ght,/m/03qtwd"),  # joy
    ("neu00000001", "/m/07qfr4h"),  # neutral
    ("neu00000002", "/m/07rkbfh,/m/09x0r"),  # neutral
    ("neu00000003", "/m/07qfr4h,/m/03qtwd"),  # neutral
    ("ang00000001", "/m/03qtwd,/m/07sr1lc"),  # anger proxy
    ("ang00000002", "/m/03qtwd,/m/07p6fty,/m/09x0r"),  # anger proxy
    ("yel00000001", "/m/07sr1lc"),  # a yell without a crowd: nothing
    ("amb00000001", "/m/053hz1,/m/07rkbfh"),  # joy and neutral: ambiguous
    ("amb00000002", "/m/03qtwd,/m/07sr1lc,/m/053hz1"),  # joy and anger: ambiguous
    ("mus00000001", "/m/053hz1,/m/04rlf"),  # cheering at a concert: excluded
    ("spe00000001", "/m/09x0r"),  # speech: nothing
]


def write_segment_list(path: Path, segments, start=1.0, end=4.0) -> Path:
    lines = ["# Segments csv created Sun Mar  5 10:54:31 2017",
             f"# num_ytids={len(segments)}, num_segs={len(segments)}, "
             "num_unique_labels=10, num_positive_labels=30",
             "# YTID, start_seconds, end_seconds, positive_labels"]
    lines += [f'{ytid}, {start:.3f}, {end:.3f}, "{labels}"' for ytid, labels in segments]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def audioset_lists(tmp_path):
    folder = tmp_path / "audioset_csv"
    folder.mkdir()
    (folder / "class_labels_indices.csv").write_text(CLASS_LABELS)
    write_segment_list(folder / "balanced_train_segments.csv", SEGMENTS[:10])
    write_segment_list(folder / "eval_segments.csv", SEGMENTS[10:])
    return folder


def test_audioset_mapping_selects_caps_and_drops_ambiguous(audioset_lists):
    labels = read_class_labels(audioset_lists / "class_labels_indices.csv")
    segments = pd.concat([read_segments(audioset_lists / f"{n}_segments.csv", list_name=n)
                          for n in ("balanced_train", "eval")], ignore_index=True)
    assert len(segments) == len(SEGMENTS) and segments["ytid"][0] == "-joy0000001"

    manifest, summary = build_audioset_manifest(segments, labels, per_class=3, seed=0)
    summary = summary.set_index("label")
    assert summary.loc["joy", ["matched", "ambiguous", "available", "selected"]].tolist() == \
        [7, 2, 5, 3]
    assert summary.loc["neutral", ["matched", "ambiguous", "available", "selected"]].tolist() \
        == [4, 1, 3, 3]
    assert summary.loc["anger", ["matched", "ambiguous", "available", "selected"]].tolist() == \
        [3, 1, 2, 2]
    assert bool(summary.loc["anger", "proxy"]) and not bool(summary.loc["joy", "proxy"])
    by_label = manifest.groupby("label")["url"].apply(
        lambda u: sorted(x.split("=")[1] for x in u))
    assert by_label["anger"] == ["ang00000001", "ang00000002"]
    assert by_label["neutral"] == ["neu00000001", "neu00000002", "neu00000003"]
    assert set(by_label["joy"]) <= {s for s, _ in SEGMENTS[:5]} and len(by_label["joy"]) == 3
    assert not manifest["url"].str.contains("amb|mus|yel|spe").any()
    assert set(manifest.loc[manifest["label"] == "anger", "proxy"]) == {"true"}
    assert set(manifest.loc[manifest["label"] != "anger", "proxy"]) == {"false"}
    first = manifest.iloc[0]
    assert first["url"].startswith("https://www.youtube.com/watch?v=")
    assert (first["start"], first["end"]) == ("1.000", "4.000")
    assert first["event_id"] == "yt_" + first["url"].split("=")[1]

    # The draw is seeded: the same seed gives the same clips, other seeds others.
    again, _ = build_audioset_manifest(segments, labels, per_class=3, seed=0)
    assert again.equals(manifest)
    draws = {tuple(build_audioset_manifest(segments, labels, per_class=3, seed=s)[0]["url"])
             for s in range(10)}
    assert len(draws) > 1

    # "first": an ambiguous segment goes to the first emotion of the mapping (joy).
    firsts, summary = build_audioset_manifest(segments, labels, per_class=None,
                                              multi_label="first")
    joy = set(firsts.loc[firsts["label"] == "joy", "url"].str.split("=").str[1])
    assert {"amb00000001", "amb00000002"} <= joy
    assert summary.set_index("label").loc["joy", "available"] == 7

    with pytest.raises(DataError, match="'Booing' is not an AudioSet class"):
        build_audioset_manifest(segments, labels, mapping={
            "emotions": {"anger": {"any_of": ["Booing"]}}})
    with pytest.raises(DataError, match="invalid label"):
        load_mapping({"emotions": {"Anger!": {"any_of": ["Yell"]}}})


def test_audioset_collects_through_lists_download_and_manifest(web, audioset_lists, tmp_path):
    (web.root / "csv").mkdir()
    for p in audioset_lists.iterdir():
        (web.root / "csv" / p.name).write_bytes(p.read_bytes())
    for ytid, _ in SEGMENTS:
        write_audio(web.root / "media" / f"{ytid}.wav", 16000, 5.0)
    out = tmp_path / "as"
    options = dict(lists=["balanced_train", "eval"], per_class=2, seed=0,
                   base_url=f"{web.url}/csv", url_template=f"{web.url}/media/{{ytid}}.wav",
                   progress=False)
    result = collect_audioset(out, **options)
    table = result.clips

    assert sorted(table["label"]) == ["anger", "anger", "joy", "joy", "neutral", "neutral"]
    assert set(table.loc[table["label"] == "anger", "proxy"]) == {True}
    assert set(table.loc[table["label"] != "anger", "proxy"]) == {False}
    assert (table["source"] == "audioset").all()
    assert np.allclose(table["duration_s"], 3.0, atol=0.1)
    assert table["event_id"].str.startswith("yt_").all()
    assert len(pd.read_csv(out / "manifest.csv")) == 6
    selection = result.selection.set_index("label")
    assert selection["selected"].to_dict() == {"joy": 2, "neutral": 2, "anger": 2}
    assert bool(selection.loc["anger", "proxy"]) and not bool(selection.loc["joy", "proxy"])
    card = (out / "card.md").read_text()
    assert "Proxy classes: anger" in card and "Booing" in card and "CC BY 4.0" in card
    list_hits = {p: n for p, n in web.hits.items() if p.startswith("/csv/")}
    assert list_hits == {"/csv/class_labels_indices.csv": 1,
                         "/csv/balanced_train_segments.csv": 1, "/csv/eval_segments.csv": 1}

    hits = sum(web.hits.values())
    again = collect_audioset(out, **options, existing="update")
    assert sum(web.hits.values()) == hits  # lists and clips come from the cache
    assert list(again.clips["sha256"]) == list(table["sha256"])
    # The lists can also be a local folder (downloaded by hand).
    local = collect_audioset(tmp_path / "as_local", **{**options, "base_url": str(audioset_lists),
                                                        "cache_dir": out / "downloads"})
    assert list(local.clips["clip_id"]) == list(table["clip_id"])
    assert sum(web.hits.values()) == hits


# ---------------------------------------------------------------------------
# collect() and the command line


def test_collect_dispatch_and_command_line(recordings, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="crowdnb")
    register_cli(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    args = parser.parse_args(["collect", "--source", "folder", "--input", str(recordings),
                              "--out", str(out), "--dry-run", "--no-progress"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "dry run, nothing written" in printed and "joy_derby_b22k" in printed
    assert not out.exists()

    args = parser.parse_args(["collect", "--source", "folder", "--input", str(recordings),
                              "--out", str(out), "--set", "min_duration_s=0.25",
                              "--set", "copy=false", "--no-progress"])
    assert args.func(args) == 0
    assert "collected 6 clip(s)" in capsys.readouterr().out
    assert "neutral_short" in set(read_clips(out)["clip_id"])

    with pytest.raises(ParameterError, match="per_class: not an option of the folder source"):
        collect("folder", tmp_path / "x", input=recordings, per_class=3)
    with pytest.raises(ParameterError, match="source must be one of"):
        collect("youtube", tmp_path / "x")
    with pytest.raises(ParameterError, match="needs --input"):
        collect("manifest", tmp_path / "x")


def test_audioset_lists_unreachable_give_one_clear_error(closed_port, tmp_path):
    with pytest.raises(DataError, match=r"cannot download the AudioSet list .*"
                                        r"class_labels_indices.csv .*Check the network"):
        collect_audioset(tmp_path / "as", base_url=f"http://127.0.0.1:{closed_port}/csv",
                         progress=False)
    with pytest.raises(ParameterError, match="lists must name"):
        collect_audioset(tmp_path / "as", lists="balanced", progress=False)


def test_crowdnb_command_reports_errors_in_one_line(recordings, tmp_path, capsys):
    from crowdnb.cli import main

    out = tmp_path / "c"
    assert main(["collect", "--source", "folder", "--input", str(recordings), "--out", str(out),
                 "--set", "bogus=1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("crowdnb collect: error: bogus: not an option") and "\n" not in err
    assert main(["collect", "--source", "folder", "--input", str(recordings), "--out", str(out),
                 "--no-progress"]) == 0
    assert "collected 5 clip(s)" in capsys.readouterr().out


def test_folder_rerun_into_the_input_folder_does_not_collect_itself(recordings):
    out = recordings / "joy" / "collection"
    first = collect_folder(recordings, out, progress=False).clips
    again = collect_folder(recordings, out, existing="update", progress=False).clips
    assert list(again["clip_id"]) == list(first["clip_id"])
    assert list(again["sha256"]) == list(first["sha256"])


def test_synthetic_source_writes_collections_with_reports(tmp_path):
    result = collect("synthetic", tmp_path / "syn", preset="smoke", seed=0, workers=1,
                     progress=False)
    table = result.clips
    assert set(table["label"]) == {"joy", "anger", "neutral"}
    assert set(table["source"]) == {"synthetic"}
    assert result.collections == {name: tmp_path / "syn" / name
                                  for name in ("emotions", "football")}
    assert result.folder == result.collections["emotions"]
    assert sorted(result.report["item"]) == sorted(table["clip_id"])
    for name in ("emotions", "football"):
        folder = tmp_path / "syn" / name
        report = pd.read_csv(folder / REPORT_FILE)
        clips = read_clips(folder)
        assert sorted(report["item"]) == sorted(clips["clip_id"])
        assert set(report["status"]) == {"collected"}
    with pytest.raises(ParameterError, match="dry_run"):
        collect("synthetic", tmp_path / "x", dry_run=True)


# ---------------------------------------------------------------------------
# Real recordings for the whole study: label sets, label maps, the parameter files

ROOT = Path(__file__).resolve().parent.parent
COLLECTION_STAGE = "01_data_collection"


def chapter_one_values(param_file: Path, overrides=()) -> dict:
    """Chapter 1's values under a parameter file, as the workflow resolves them."""
    stages = discover_stages(ROOT / "notebooks")
    resolved = resolve_parameters(stages, file_params=load_param_file(param_file),
                                  overrides=overrides, where=str(param_file))
    return dict(resolved[COLLECTION_STAGE].values)


def collect_chapter_one(values: dict, out: Path, cache: Path):
    """What chapter 1 runs, with those values (its listening excerpts and realism check aside)."""
    options = {k: v for k, v in values.items()
               if k not in ("run_dir", "cache_dir", "listen_s", "listen_sr")
               and not k.startswith(("reference_", "realism_"))}
    return collect_study(out, cache_dir=cache, **options)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for the module, as runs/.cache is for runs: the smoke corpus renders once."""
    return tmp_path_factory.mktemp("cache")


def write_tone(path: Path, *, step_hz: float, duration_s: float = 2.5, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, stepped_tone(sr, duration_s, step_hz=step_hz), sr)
    return path


# Heavily unbalanced, as the DataPort corpus is; file names start with a class
# prefix (a public re-implementation ships one clip as appn0011.wav).
DATAPORT_CLASSES = {"approval": ("app", 6), "disapproval": ("dis", 2), "neutral": ("neu", 3)}
DATAPORT_FOLDERS = {"approval": "approval", "disapproval": "Disapproval", "neutral": "neutral"}
DATAPORT_AS_STUDY = {"approval": "joy", "disapproval": "anger", "neutral": "neutral"}


def dataport_like(root: Path, *, layout: str) -> dict[str, str]:
    """A corpus laid out like "Emotional crowd sound": class folders, or one flat folder.

    Returns file stem -> corpus class. Every file holds other audio (no duplicates).
    """
    classes, k = {}, 0
    for cls, (prefix, n) in DATAPORT_CLASSES.items():
        for i in range(1, n + 1):
            name = f"{prefix}n{i:04d}.wav"
            folder = root / DATAPORT_FOLDERS[cls] if layout == "folders" else root
            write_tone(folder / name, step_hz=150.0 + 20.0 * k)
            classes[name[:-4]] = cls
            k += 1
    (root / "README.txt").write_text("Emotional crowd sound\n")
    return classes


def test_label_maps_name_folders_or_prefixes_and_refuse_bad_entries(tmp_path):
    m = parse_label_map(["approval=joy", "Disapproval=anger", "app*=joy", "ap*=anger"])
    assert m.by_name("APPROVAL") == ("joy", "approval=joy")
    assert m.by_name("disapproval") == ("anger", "Disapproval=anger")
    assert m.by_name("app") is None  # a prefix entry names files, not folders
    assert m.by_prefix("appn0011.wav") == ("joy", "app*=joy")  # the longest prefix wins
    assert m.by_prefix("APX.wav") == ("anger", "ap*=anger")
    assert m.by_prefix("neun0001.wav") is None
    # The same map as a dict, or as one comma-separated string.
    assert parse_label_map({"approval": "joy", "app*": "joy"}).entries == \
        parse_label_map("approval=joy, app*=joy").entries == ("approval=joy", "app*=joy")
    assert not parse_label_map([]) and not parse_label_map(None)
    # In a CSV, the map renames label cells; a prefix labels the rows left without one.
    data = tmp_path / "data"
    for k, name in enumerate(("a.wav", "b.wav", "disn0001.wav", "c.wav")):
        write_tone(data / name, step_hz=200.0 + 25.0 * k)
    (data / "labels.csv").write_text("path,label\na.wav,Approval\nb.wav,neutral\n"
                                     "disn0001.wav,\nc.wav,\n")
    result = collect_folder(data / "labels.csv", tmp_path / "out", progress=False,
                            label_map=["approval=joy", "dis*=anger"])
    table = result.clips.set_index("clip_id")
    assert table["label"].to_dict() == {"a": "joy", "b": "neutral", "disn0001": "anger"}
    assert [json.loads(p).get("label_map") for p in table["params"]] == \
        ["approval=joy", None, "dis*=anger"]
    assert "invalid label ''" in report_of(tmp_path / "out")["row 5: c.wav"][1]

    for bad, message in [
        (["approval"], "entry 'approval' is not NAME=LABEL"),
        (["a/b=joy"], "no path separator"),
        (["*=joy"], "no path separator, no other"),
        (["a*b=joy"], "no other \\*"),
        (["approval=Joy"], "invalid label 'Joy'"),
        (["approval=joy", "APPROVAL=anger"], "'APPROVAL' is mapped to both joy and anger"),
        ({"approval": 3}, "'approval' must map to a label"),
        (5, "a mapping of names to labels"),
    ]:
        with pytest.raises(ParameterError, match=f"^label_map: .*{message}"):
            parse_label_map(bad)


@pytest.mark.parametrize("layout", ["folders", "flat"])
def test_the_dataport_parameter_file_collects_a_corpus_laid_out_like_it(layout, tmp_path,
                                                                         shared_cache):
    corpus = tmp_path / "Emotional crowd sound"
    classes = dataport_like(corpus, layout=layout)
    values = chapter_one_values(ROOT / "params" / "emotional_crowd_sound.yaml",
                                [f"source_path={corpus}", "synth_preset=smoke"])
    before = {p: sha(p) for p in corpus.rglob("*") if p.is_file()}
    data = collect_chapter_one(values, tmp_path / "run", shared_cache)

    emotions = data.clips["emotions"].set_index("event_id")
    # Each file is its own event, under the study's label for its class.
    expected = {f"{DATAPORT_AS_STUDY[cls]}_{stem}": DATAPORT_AS_STUDY[cls]
                for stem, cls in classes.items()}
    assert emotions["label"].to_dict() == expected
    assert emotions["label"].value_counts().to_dict() == {"joy": 6, "neutral": 3, "anger": 2}
    used = {json.loads(p)["label_map"] for p in emotions["params"]}
    if layout == "folders":  # "Disapproval/": folder names match regardless of case
        assert used == {"approval=joy", "disapproval=anger", "neutral=neutral"}
    else:
        assert used == {"app*=joy", "dis*=anger", "neu*=neutral"}
    # The card: how many files each entry labelled, and which matched nothing.
    card = (data.folders["emotions"] / "card.md").read_text()
    n_files = {DATAPORT_AS_STUDY[cls]: n for cls, (_, n) in DATAPORT_CLASSES.items()}
    for entry in used:
        assert f"`{entry}` ({n_files[entry.partition('=')[2]]} file(s))" in card
    unused = [f"`{entry}`" for entry in values["label_map"] if entry not in used]
    assert f"Entries that matched nothing: {', '.join(unused)}." in card
    report = report_of(data.folders["emotions"])
    assert report["README.txt"][0] == "skipped"
    # The football study: the synthetic match, goal and no_goal.
    assert set(data.clips["football"]["label"]) == {"goal", "no_goal"}
    assert set(data.clips["football"]["source"]) == {"synthetic"}
    assert data.labels == {"emotions": ("joy", "anger", "neutral"), "football": ("goal", "no_goal")}
    assert {p: sha(p) for p in corpus.rglob("*") if p.is_file()} == before  # never modified


def test_a_class_the_map_does_not_know_or_a_class_without_clips_stops_the_study(tmp_path,
                                                                                shared_cache):
    corpus = tmp_path / "corpus"
    dataport_like(corpus, layout="folders")
    write_tone(corpus / "laughter" / "lau0001.wav", step_hz=90.0)
    values = chapter_one_values(ROOT / "params" / "emotional_crowd_sound.yaml",
                                [f"source_path={corpus}", "synth_preset=smoke"])
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"label\(s\) laughter are not among anger, joy, "
                                        r"neutral \(found: anger, joy, laughter, neutral\)"):
        collect_chapter_one(values, out, shared_cache)
    assert not out.exists()  # refused before anything was written, the synthetic match too

    # A map that misses a class: the collection is written, the study refuses it.
    shutil.rmtree(corpus / "laughter")
    values["label_map"] = ["approval=joy", "neutral=neutral"]
    with pytest.raises(DataError, match=r"emotions/clips.csv: no clip of class\(es\) anger, "
                                        r"which the study declares \(clips per class: joy 6, "
                                        r"anger 0, neutral 3\)"):
        collect_chapter_one(values, tmp_path / "run2", shared_cache)
    status, reason = report_of(tmp_path / "run2" / "emotions")["Disapproval/"]
    assert status == "failed" and "invalid label 'Disapproval'" in reason


def test_your_own_labels_keep_your_folder_names(tmp_path, shared_cache):
    recordings = tmp_path / "recordings"
    for k, (folder, n) in enumerate({"cheering": 2, "booing": 2, "chatter": 1}.items()):
        for i in range(n):
            write_tone(recordings / folder / f"take{i}.wav", step_hz=120.0 + 30.0 * k + 7.0 * i)
    own = dict(source="folder", source_path=str(recordings), synth_preset="smoke",
               cache_dir=shared_cache)
    data = collect_study(tmp_path / "a", labels=["cheering", "booing", "chatter"], **own)
    assert data.clips["emotions"]["label"].value_counts().to_dict() == \
        {"cheering": 2, "booing": 2, "chatter": 1}

    # A new folder is a typo or a new class: the study says so until it is declared or mapped.
    write_tone(recordings / "whistles" / "w.wav", step_hz=330.0)
    with pytest.raises(DataError, match=r"label\(s\) whistles are not among booing, chatter, "
                                        r"cheering"):
        collect_study(tmp_path / "b", labels=["cheering", "booing", "chatter"], **own)
    data = collect_study(tmp_path / "c", labels=["cheering", "booing", "chatter"],
                         label_map=["whistles=booing"], **own)
    assert data.clips["emotions"]["label"].value_counts()["booing"] == 3
    # The paper's labels are the default: these names are not among them.
    with pytest.raises(DataError, match=r"not among anger, joy, neutral"):
        collect_study(tmp_path / "d", **own)

    for options, message in [
        (dict(labels=["Cheering", "booing"]), "^labels: invalid label 'Cheering'"),
        (dict(labels=["cheering"]), "^labels: a study needs at least two classes"),
        (dict(labels=["booing", "chatter", "booing"]), "^labels: booing named more than once"),
        (dict(labels="cheering"), "^labels: a list of labels"),
        (dict(source="manifest", label_map=["a=joy"]), "^label_map: only the folder source"),
        (dict(source="synthetic"), "^source_path: only the folder, manifest or audioset"),
        (dict(source_path=""), "^source_path: the folder source reads a recordings folder"),
        (dict(football_source="audioset"), "^football_source must be one of synthetic, "
                                           "folder, manifest .AudioSet has no goal"),
        (dict(audioset_base_url="http://example.org"), "^audioset_base_url: only the audioset"),
        (dict(football_label_map=["goals=goal"]), "^football_label_map: only the folder"),
    ]:
        with pytest.raises(ParameterError, match=message):
            collect_study(tmp_path / "e", **{**own, **options})
    assert not (tmp_path / "e").exists()


def test_an_audioset_mapping_outside_the_study_labels_stops_before_any_download(closed_port,
                                                                                tmp_path):
    # The lists' host is closed: the label check must come first, or this would be a
    # network error.
    with pytest.raises(DataError, match=r"the AudioSet mapping crowdnb/sources/"
                                        r"audioset_mapping.yaml: label\(s\) anger, joy are not "
                                        r"among approval, disapproval, neutral"):
        collect_audioset(tmp_path / "as", labels=["approval", "disapproval", "neutral"],
                         base_url=f"http://127.0.0.1:{closed_port}/csv", progress=False)
    assert not (tmp_path / "as").exists()


def test_the_audioset_parameter_file_says_what_it_uses_and_make_runs_it():
    params = load_param_file(ROOT / "params" / "audioset.yaml")
    section = params[COLLECTION_STAGE]
    assert section["source"] == "audioset" and params["run"] == "audioset"
    # The published locations, as the source knows them (a move is fixed in one place).
    assert section["audioset_base_url"] == AUDIOSET_BASE_URL
    assert section["audioset_url_template"] == YOUTUBE_URL
    assert set(section["audioset_lists"]) <= set(AUDIOSET_LISTS)
    assert section["audioset_per_class"] >= 1 and isinstance(params["common"]["seed"], int)
    # The study's labels are the mapping's, anger among them as a proxy.
    mapping = load_mapping()["emotions"]
    assert set(section["labels"]) == set(mapping) and mapping["anger"]["proxy"]
    # No AudioSet football: the file names the football data it uses.
    assert section["football_source"] == "synthetic" and section["synth_preset"] == "paper"
    # Chapters 2-10 (both protocols, the baselines) run as in the default study.
    own = yaml.safe_load((ROOT / "params" / "audioset.yaml").read_text())
    assert own["extends"] == "default.yaml" and set(own) == {"extends", "run", "common",
                                                             COLLECTION_STAGE}
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    plan = subprocess.run(["make", "-n", "audioset"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert plan.returncode == 0, plan.stderr
    assert "crowdnb run --params params/audioset.yaml" in plan.stdout
    assert "jupyter-book build --warningiserror" in plan.stdout


def test_the_audioset_parameter_file_runs_chapter_one_against_a_local_server(web, tmp_path):
    """``crowdnb run --params params/audioset.yaml --only 01_data_collection``, for real.

    Only the file's two URLs point at the local server (lists and media), and
    the synthetic match is the smoke preset's (the paper's renders far more audio).
    """
    section = load_param_file(ROOT / "params" / "audioset.yaml")[COLLECTION_STAGE]
    (web.root / "csv").mkdir()
    (web.root / "csv" / "class_labels_indices.csv").write_text(CLASS_LABELS)
    lists = {"balanced_train": SEGMENTS[:10], "eval": SEGMENTS[10:],
             "unbalanced_train": [("unb00000001", "/m/053hz1")]}  # a joy segment not drawn from
    for name, segments in lists.items():
        write_segment_list(web.root / "csv" / AUDIOSET_LISTS[name], segments, start=1.0, end=11.0)
    gone = "neu00000002"  # a video removed since the lists were published
    for k, (ytid, _) in enumerate(SEGMENTS + lists["unbalanced_train"]):
        if ytid != gone:
            write_tone(web.root / "media" / f"{ytid}.wav", step_hz=100.0 + 10.0 * k,
                       duration_s=12.0)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("_config.yml", "Snakefile"):
        shutil.copyfile(ROOT / name, project / name)
    for name in ("notebooks", "params"):
        shutil.copytree(ROOT / name, project / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    run_dir = tmp_path / "runs" / "audioset"
    command = [sys.executable, "-m", "crowdnb.cli", "run",
               "--params", str(project / "params" / "audioset.yaml"), "--project", str(project),
               "--run-dir", str(run_dir), "--only", COLLECTION_STAGE, "--quiet",
               "-p", f"audioset_base_url={web.url}/csv",
               "-p", f"audioset_url_template={web.url}/media/{{ytid}}.wav",
               "-p", "synth_preset=smoke", *worker_jobs()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    stage = run_dir / COLLECTION_STAGE
    emotions = read_clips(stage / "emotions")
    # The file's lists only; every matching segment (the cap is above them); one video gone.
    assert emotions["label"].value_counts().to_dict() == {"joy": 5, "neutral": 2, "anger": 2}
    assert not emotions["clip_id"].str.contains(f"unb|{gone}").any()
    assert {p for p in web.hits if p.startswith("/csv/")} == \
        {"/csv/class_labels_indices.csv", *(f"/csv/{AUDIOSET_LISTS[n]}"
                                            for n in section["audioset_lists"])}
    assert set(emotions["source"]) == {"audioset"}
    assert np.allclose(emotions["duration_s"], 10.0, atol=0.1)
    assert set(emotions.loc[emotions["label"] == "anger", "proxy"]) == {True}
    assert set(emotions.loc[emotions["label"] != "anger", "proxy"]) == {False}
    football = read_clips(stage / "synthetic" / "football")
    assert set(football["label"]) == {"goal", "no_goal"}
    assert set(football["source"]) == {"synthetic"}

    # The card: the proxy, the segment that could not be downloaded, the licences.
    card = (stage / "emotions" / "card.md").read_text()
    assert f"per-class cap {section['audioset_per_class']}, seed 0" in card
    assert "**Proxy classes: anger.**" in card
    failed = card.split("## What could not be collected")[1].split("\n## ")[0]
    assert gone in failed and failed.count("| row ") == 1
    assert "CC BY 4.0" in card and "YouTube's Terms of Service" in card
    assert "never commit or redistribute it" in card
    summary = json.loads((stage / "summary.json").read_text())
    assert summary["source"] == "audioset" and summary["labels"]["emotions"] == section["labels"]
    # The chapter shows the card.
    executed = (run_dir / NOTEBOOK_FOLDER / f"{COLLECTION_STAGE}.ipynb").read_text()
    assert "Proxy classes: anger" in executed and gone in executed

    # The downloads live in the run's cache (a --run-dir outside the project's runs/ keeps
    # everything it writes inside it): the chapter, executed again from an empty folder
    # (another parameter), fetches nothing again, and gets the same audio.
    assert len(list((run_dir / ".cache" / "downloads").glob("*/audio.wav"))) == 9
    assert not (tmp_path / "runs" / ".cache").exists()
    before = collections.Counter(web.hits)
    again = subprocess.run([*command, "-p", "listen_s=2.0"], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "1 stage job(s) executed" in again.stderr
    # Only the video that is gone is tried again.
    assert {path for path in web.hits if web.hits[path] != before[path]} == {f"/media/{gone}.wav"}
    rerun = read_clips(stage / "emotions")
    assert list(rerun["sha256"]) == list(emotions["sha256"])
