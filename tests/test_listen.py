"""The real-time listener: a stream labelled window by window, as crowdnb predict labels the file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from crowdnb.audio import band_limit, normalize_loudness, split_blocks
from crowdnb.cli import main
from crowdnb.config import PreprocessConfig
from crowdnb.errors import AudioError, ParameterError
from crowdnb.listen import (AlertRule, AlertTracker, Listener, MovingAverage, file_source, listen,
                            raw_pcm_source, wav_stream_source)
from crowdnb.model import CHECKPOINT_FORMAT, build_model, image_normalization, load_checkpoint
from crowdnb.predict import predict_file
from crowdnb.spectrogram import mel_psd_db

from conftest import band_noise

SR = 44100
CLASSES = ["anger", "joy", "neutral"]


noise = band_noise  # the shared band-limited noise of conftest.py


def crowd_scene(sr: int = SR) -> np.ndarray:
    """3 s rumble, 3 s hiss, 3 s digital silence, 3 s of quiet noise with loud clicks.

    The windows that start at 6 and 7 s hold only silence (dropped); the clicks
    (0.5 full scale over noise at -50 dBFS) clip once a window is brought to
    -23 LUFS.
    """
    clicks = 0.003 * np.random.default_rng(4).standard_normal(3 * sr)
    clicks[:: sr // 4] += 0.5
    return np.concatenate([noise(3, (None, 500.0), 1, sr), noise(3, (4000.0, None), 2, sr),
                           np.zeros(3 * sr), clicks]).astype(np.float32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained but valid checkpoint (PyTorch's default initialisation, seeded)."""
    root = tmp_path_factory.mktemp("listen")
    model, info = build_model(len(CLASSES), weights="none", seed=0)
    path = root / "model.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "network": info["network"],
                "architecture": info["architecture"],
                "state_dict": model.state_dict(), "classes": CLASSES,
                "normalization": image_normalization(), "image_size": [227, 227],
                "preprocessing": PreprocessConfig().to_dict(), "model_info": info}, path)
    return path


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return load_checkpoint(checkpoint)


@pytest.fixture(scope="module")
def scene(tmp_path_factory, loaded):
    """The scene as a 16-bit WAV file, and crowdnb predict's blocks of it, prepared per block."""
    path = tmp_path_factory.mktemp("scene") / "scene.wav"
    sf.write(path, crowd_scene(), SR, subtype="PCM_16")
    table, _ = predict_file(path, loaded, device="cpu", band_limit_per="block")
    return path, table


def assert_same_windows(records: list[dict], table) -> None:
    """Listener records (JSON form) == predict's table, window for window."""
    assert len(records) == len(table)
    assert [r["window"] for r in records] == list(range(len(table)))
    np.testing.assert_allclose([r["start_s"] for r in records], table["start_s"], atol=1e-9)
    np.testing.assert_allclose([r["end_s"] for r in records], table["end_s"], atol=1e-9)
    assert [r["kept"] for r in records] == table["kept"].tolist()
    assert [r["reason"] for r in records] == table["reason"].tolist()
    assert [r["clipped"] for r in records] == table["clipped"].tolist()
    assert [r["label"] or "" for r in records] == table["label"].tolist()
    for record, (_, row) in zip(records, table.iterrows()):
        if record["kept"]:
            got = [record["probabilities"][c] for c in CLASSES]
            np.testing.assert_allclose(got, [row[f"prob_{c}"] for c in CLASSES], rtol=0, atol=1e-6)
            assert record["loudness_lufs"] == pytest.approx(row["loudness_lufs"], abs=1e-9)


def test_scene_exercises_what_is_compared(scene):
    _, table = scene
    assert table["kept"].tolist().count(False) == 2  # the windows at 6 and 7 s: silence
    assert table.loc[~table["kept"], "start_s"].tolist() == [6.0, 7.0]
    assert table["clipped"].any()  # the clicks
    probs = table.loc[table["kept"], [f"prob_{c}" for c in CLASSES]].to_numpy()
    assert np.ptp(probs, axis=0).max() > 1e-4  # the windows' probabilities differ


def test_wav_on_standard_input_gives_predicts_labels_window_for_window(checkpoint, scene, capsys):
    path, table = scene
    with path.open("rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "crowdnb.cli", "listen", "--model",
                               str(checkpoint), "-", "--json"], stdin=stdin, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert_same_windows(records, table)
    assert all(r["latency_s"] > 0 for r in records)
    assert "11 window(s) (2 dropped) from 12.0 s of audio" in done.stderr

    # The same through crowdnb predict's own command line.
    assert main(["predict", "--model", str(checkpoint), str(path), "--band-limit-per", "block",
                 "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["band_limit_per"] == "block"
    blocks = predicted["files"][0]["blocks"]
    assert [b["label"] for b in blocks] == [r["label"] for r in records]
    assert [b["kept"] for b in blocks] == [r["kept"] for r in records]
    assert [b["start_s"] for b in blocks] == [r["start_s"] for r in records]
    for block, record in zip(blocks, records):
        if block["kept"]:
            assert block["probabilities"] == pytest.approx(record["probabilities"], abs=1e-6)


def test_predict_refuses_an_unknown_band_limit(loaded, scene):
    with pytest.raises(ParameterError, match="band_limit_per must be one of clip, block, not 'window'"):
        predict_file(scene[0], loaded, device="cpu", band_limit_per="window")


def test_ffmpeg_pipe_gives_predicts_labels(checkpoint, scene):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    path, table = scene
    # ffmpeg on a pipe writes a WAV header whose sizes say "unknown" (0xFFFFFFFF).
    ffmpeg = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                               "-nostdin", "-i", str(path), "-f", "wav", "-"], stdout=subprocess.PIPE)
    done = subprocess.run([sys.executable, "-m", "crowdnb.cli", "listen", "--model", str(checkpoint),
                           "-", "--json"], stdin=ffmpeg.stdout, capture_output=True, text=True,
                          timeout=120)
    ffmpeg.stdout.close()
    assert ffmpeg.wait(timeout=30) == 0
    assert done.returncode == 0, done.stderr
    assert_same_windows([json.loads(line) for line in done.stdout.splitlines()], table)


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_raw_pcm_on_standard_input(checkpoint, scene, monkeypatch, capsys):
    path, table = scene
    pcm, rate = sf.read(path, dtype="int16")
    assert rate == SR
    _stdin(monkeypatch, pcm.astype("<i2").tobytes())
    assert main(["listen", "--model", str(checkpoint), "-", "--format", "s16le", "--rate", str(SR),
                 "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert_same_windows(records, table)

    # The readable form: a header, then one line per window.
    _stdin(monkeypatch, pcm.astype("<i2").tobytes())
    assert main(["listen", "--model", str(checkpoint), "-", "--format", "s16le", "--rate", str(SR),
                 "--duration", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["start_s", "end_s", "label"]
    assert len(lines) == 1 + 7  # 8 s of audio: windows starting at 0 ... 6 s
    assert lines[-1].split()[:2] == ["6.00", "8.00"] and "dropped: silent" in lines[-1]
    for line, (_, row) in zip(lines[1:], table.iterrows()):
        if row["kept"]:
            assert line.split()[2] == row["label"]


@pytest.fixture(scope="module")
def stereo_48k(tmp_path_factory, loaded):
    """5 s of stereo float at 48 kHz (left rumble, right hiss), and predict's blocks of it."""
    rate = 48000
    left = noise(5, (None, 500.0), 7, rate)
    right = noise(5, (4000.0, None), 8, rate, level=0.05)
    frames = np.stack([left, right], axis=1).astype(np.float32)
    path = tmp_path_factory.mktemp("stereo") / "stereo.wav"
    sf.write(path, frames, rate, subtype="FLOAT")
    table, _ = predict_file(path, loaded, device="cpu", band_limit_per="block")
    return frames, rate, table


def _records(results) -> list[dict]:
    return [r.to_json() for r in results]


def test_raw_stereo_at_another_rate_is_mixed_and_resampled_as_load_clip_does(loaded, stereo_48k):
    frames, rate, table = stereo_48k
    model, meta = loaded
    source = raw_pcm_source(io.BytesIO(frames.astype("<f4").tobytes()), rate=rate, channels=2,
                            sample_format="f32le")
    results = list(listen(source, Listener(model, meta, device="cpu")))
    assert len(table) == 4
    assert_same_windows(_records(results), table)
    # Without smoothing the smoothed label is the window's own.
    assert [r.smoothed_label for r in results] == [r.label for r in results]


class FakeSoundDevice(types.ModuleType):
    """Stands in for the sounddevice package: an input device that plays a known signal."""

    class PortAudioError(Exception):
        pass

    def __init__(self, signal: np.ndarray | None, rate: int) -> None:
        super().__init__("sounddevice")
        self.signal, self.rate = signal, rate

    def query_devices(self, device=None, kind=None):
        if self.signal is None:
            raise self.PortAudioError("Error querying device -1")
        return {"name": "Fake mic", "max_input_channels": 1, "default_samplerate": float(self.rate)}

    def check_input_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        if samplerate != self.rate:
            raise self.PortAudioError("Invalid sample rate")

    def InputStream(self, *, samplerate, channels, dtype, device, blocksize, callback):
        assert samplerate == self.rate and channels == 1 and dtype == "float32"
        return _FakeStream(self.signal, blocksize, callback)


class _FakeStream:
    def __init__(self, signal, blocksize, callback):
        self.signal, self.blocksize, self.callback = signal, blocksize, callback
        self.closed, self._stop = False, threading.Event()

    def _run(self):
        for i in range(0, self.signal.size, self.blocksize):
            if self._stop.is_set():
                return
            chunk = self.signal[i:i + self.blocksize, None]
            self.callback(chunk, len(chunk), None, "")

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.close()

    def close(self):
        self.closed = True


def test_microphone_through_sounddevice(checkpoint, stereo_48k, monkeypatch, capsys):
    frames, rate, table = stereo_48k
    mono = frames.mean(axis=1, dtype=np.float64).astype(np.float32)
    # A device at 48 kHz, which refuses 44.1: opened at its own rate and resampled.
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(mono, rate))
    assert main(["listen", "--model", str(checkpoint), "--mic", "--duration", "5", "--json"]) == 0
    captured = capsys.readouterr()
    assert "microphone Fake mic (48000 Hz, 1 channel(s))" in captured.err
    assert_same_windows([json.loads(line) for line in captured.out.splitlines()], table)


def test_missing_sounddevice_or_device_is_one_clear_line(checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import sounddevice raises ImportError
    assert main(["listen", "--model", str(checkpoint), "--mic"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["crowdnb listen: error: --mic: listening to a microphone needs the sounddevice "
                   "package, which is not installed (pip install sounddevice)"]

    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(None, SR))  # no device
    assert main(["listen", "--model", str(checkpoint), "--mic"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["crowdnb listen: error: --mic: no audio input device (Error querying device -1)"]


def test_smoothing_is_the_moving_average_of_the_windows(loaded, scene):
    path, table = scene
    model, meta = loaded
    smooth = list(listen(file_source(path, sr=SR), Listener(model, meta, device="cpu", smooth=3)))
    assert_same_windows(_records(smooth), table)  # the window's own label and probabilities
    probs = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    for k, result in enumerate(smooth):
        recent = [probs[j] for j in range(max(0, k - 2), k + 1) if table["kept"].iloc[j]]
        expected = np.mean(recent, axis=0)
        got = [result.smoothed_probabilities[c] for c in CLASSES]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        assert result.smoothed_label == CLASSES[int(np.argmax(got))]
    # The second silent window (7-9 s) still has a smoothed label: from the window at 5 s.
    assert smooth[7].label is None and smooth[7].smoothed_label is not None
    assert smooth[7].smoothed_probabilities == pytest.approx(
        dict(zip(CLASSES, probs[5])), abs=1e-6)


def test_moving_average_on_a_scripted_sequence():
    average = MovingAverage(2)
    assert average.update([1.0, 0.0]).tolist() == [1.0, 0.0]
    assert average.update([0.0, 1.0]).tolist() == [0.5, 0.5]
    assert average.update(None).tolist() == [0.0, 1.0]  # only the kept window of the last two
    assert average.update(None) is None
    with pytest.raises(ParameterError, match="smooth"):
        MovingAverage(0)


def test_alert_fires_once_when_a_label_lasts():
    # 2 s windows every 1 s: a run of k windows lasts k + 1 s.
    tracker = AlertTracker([AlertRule("anger", 3.0), AlertRule("joy", 0.0)])
    labels = ["anger", "anger", "anger", "anger", None, "anger", "anger", "anger", "joy", "joy"]
    fired = {}
    for k, label in enumerate(labels):
        for alert in tracker.update(label, float(k), k + 2.0):
            fired.setdefault(k, []).append((alert.label, alert.since_s, alert.duration_s))
    # anger: 0-4 s (3 windows) lasts 4 s > 3 at window 2; broken by the window without a
    # label, again from 5 s, 4 s at window 7. joy at once (2 s > 0), once per run.
    assert fired == {2: [("anger", 0.0, 4.0)], 7: [("anger", 5.0, 4.0)], 8: [("joy", 8.0, 2.0)]}


def test_alert_on_the_stream(checkpoint, scene, monkeypatch, capsys):
    path, table = scene
    labels = table["label"].tolist()  # predict's, "" for a dropped window
    # The label with the longest run of windows, and the alerts a 2.5 s rule must raise on
    # it, worked out from predict's labels: in each run of that label, at the first
    # window where the run (start of its first window to end of this one) exceeds 2.5 s.
    runs, start = [], 0
    for k in range(1, len(labels) + 1):
        if k == len(labels) or labels[k] != labels[start]:
            runs.append((labels[start], start, k))
            start = k
    label = max((r for r in runs if r[0]), key=lambda r: r[2] - r[1])[0]
    expected = []
    for name, first, stop in runs:
        for k in range(first, stop):
            duration = table["end_s"].iloc[k] - table["start_s"].iloc[first]
            if name == label and duration > 2.5:
                expected.append((k, {"label": label, "seconds": 2.5,
                                     "since_s": table["start_s"].iloc[first], "duration_s": duration}))
                break
    assert expected  # the longest run has two windows at least
    _stdin(monkeypatch, path.read_bytes())
    assert main(["listen", "--model", str(checkpoint), "-", "--json", "--alert", f"{label}:2.5"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["window"], a) for r in records for a in r["alerts"]] == expected

    # The readable form says it on a line of its own, after its window's line.
    k, alert = expected[0]
    _stdin(monkeypatch, path.read_bytes())
    assert main(["listen", "--model", str(checkpoint), "-", "--alert", f"{label}:2.5",
                 "--duration", f"{table['end_s'].iloc[k]:g}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index(f"alert: {label} for {alert['duration_s']:.2f} s (since {alert['since_s']:.2f} s; "
                     "more than 2.5 s)")
    assert lines[at - 1].split()[:3] == [f"{table['start_s'].iloc[k]:.2f}",
                                         f"{table['end_s'].iloc[k]:.2f}", label]


def test_alert_rule_parsing():
    assert AlertRule.parse("anger:10", CLASSES) == AlertRule("anger", 10.0)
    assert AlertRule.parse("no_goal:2.5") == AlertRule("no_goal", 2.5)
    for bad in ("anger", "anger:", ":5", "anger:-1", "anger:soon", "anger:inf"):
        with pytest.raises(ParameterError, match=f"^--alert {bad}: expected LABEL:SECONDS"):
            AlertRule.parse(bad, CLASSES)
    with pytest.raises(ParameterError, match=r"^--alert fear:5: 'fear' is not a class of the "
                                             r"checkpoint \(its classes: anger, joy, neutral\)"):
        AlertRule.parse("fear:5", CLASSES)


@pytest.mark.parametrize(
    "options, message",
    [
        (["x.wav", "--mic"], "--mic: give either a SOURCE (x.wav) or --mic, not both"),
        ([], "give a SOURCE (an audio file, or - for standard input) or --mic"),
        (["x.wav", "--format", "s16le", "--rate", "8000"],
         "--format s16le: raw PCM is read from standard input only"),
        (["-", "--rate", "8000"], "--rate: applies to raw PCM only (with --format)"),
        (["-", "--channels", "2"], "--channels: applies to raw PCM only (with --format)"),
        (["-", "--format", "s16le"], "--format s16le: raw PCM needs --rate"),
        (["-", "--format", "mp3", "--rate", "8000"], "--format mp3: not a raw PCM format"),
        (["-", "--format", "s16le", "--rate", "0"], "--rate: must be a whole number >= 1, got '0'"),
        (["-", "--smooth", "0"], "--smooth: must be a whole number >= 1, got '0'"),
        (["-", "--smooth", "2.5"], "--smooth: must be a whole number >= 1, got '2.5'"),
        (["-", "--duration", "-3"], "--duration: must be a positive number of seconds, got '-3'"),
        (["-", "--input-device", "1"], "--input-device: chooses the microphone, with --mic only"),
        (["--mic", "--realtime"], "--realtime: the microphone is real time already"),
        (["-", "--alert", "fear:5"], "--alert fear:5: 'fear' is not a class of the checkpoint"),
        (["-", "--alert", "anger"], "--alert anger: expected LABEL:SECONDS"),
        (["missing.wav"], "missing.wav: file not found"),
    ],
)
def test_bad_options_give_one_clear_line(checkpoint, options, message, capsys):
    assert main(["listen", "--model", str(checkpoint), *options]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"crowdnb listen: error: {message}"), err


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "standard input: no audio: the stream is empty"),
        (b"ID3\x04hello, not a wave", "standard input: not a WAV stream (it starts with b'ID3"),
        (b"RIFF\xff\xff\xff\xffWAVEfmt ", "standard input: the WAV stream ended before its data chunk"),
    ],
)
def test_a_stream_that_is_not_wav_is_one_clear_line(checkpoint, data, message, monkeypatch, capsys):
    _stdin(monkeypatch, data)
    assert main(["listen", "--model", str(checkpoint), "-"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"crowdnb listen: error: {message}"), err
    assert not any("Traceback" in line for line in err)


def test_a_stream_shorter_than_a_window(checkpoint, monkeypatch, capsys):
    buffer = io.BytesIO()
    sf.write(buffer, noise(1.5, (None, 500.0), 3).astype(np.float32), SR, format="WAV",
             subtype="PCM_16")
    _stdin(monkeypatch, buffer.getvalue())
    assert main(["listen", "--model", str(checkpoint), "-"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("crowdnb listen: error: standard input: the stream ended after 1.50 s, "
                       "before one 2 s window")


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_stream_reads_samples_as_libsndfile_does(subtype, tmp_path):
    # Full-scale extremes and a ramp, in two channels, through each sample format.
    y = np.stack([np.linspace(-1.0, 1.0 - 2 ** -15, 4001), np.sin(np.arange(4001) / 7.0)], axis=1)
    path = tmp_path / "formats.wav"
    sf.write(path, y, 8000, subtype=subtype)
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    source = wav_stream_source(io.BytesIO(path.read_bytes()), chunk_s=0.05)
    assert (source.rate, source.channels) == (8000, 2)
    got = np.concatenate([frames for frames, _ in source.chunks])
    np.testing.assert_array_equal(got, expected)


def test_wav_stream_stops_at_its_data_size(tmp_path):
    # A chunk after the data (metadata at the end of a file) is not read as samples.
    path = tmp_path / "tail.wav"
    sf.write(path, np.full(800, 0.25), 8000, subtype="PCM_16")
    data = path.read_bytes() + b"LIST\x04\x00\x00\x00INFO"
    got = np.concatenate([f for f, _ in wav_stream_source(io.BytesIO(data)).chunks])
    assert got.shape == (800, 1) and np.all(got == 0.25)
    # A frame cut by the end of the stream is left out, and said so.
    cut = path.read_bytes()[:-1]
    with pytest.warns(UserWarning, match="ended inside a sample frame; its last 1 byte"):
        got = np.concatenate([f for f, _ in wav_stream_source(io.BytesIO(cut)).chunks])
    assert got.shape == (799, 1)


def test_raw_pcm_refuses_a_bad_rate():
    with pytest.raises(ParameterError, match="--rate must be a positive whole number"):
        raw_pcm_source(io.BytesIO(b""), rate=0)


def test_a_window_is_labelled_only_once_heard_at_real_speed(loaded, tmp_path):
    model, meta = loaded
    path = tmp_path / "short.wav"
    sf.write(path, noise(3.0, (None, 500.0), 5).astype(np.float32), SR, subtype="PCM_16")
    listener = Listener(model, meta, device="cpu")
    listener.warm_up()
    began = time.perf_counter()
    heard = [(result.end_s, time.perf_counter() - began)
             for result in listen(file_source(path, sr=SR), listener, realtime=True)]
    assert [end for end, _ in heard] == [2.0, 3.0]
    for end_s, at in heard:
        assert at >= end_s  # never before its last sample was due


def test_per_window_band_limit_differs_from_the_whole_clip_only_near_the_edges():
    # White noise: every band holds energy. Each 2 s block filtered on its own
    # against the same block cut from the whole filtered clip.
    y = (0.1 * np.random.default_rng(0).standard_normal(6 * SR)).astype(np.float32)
    whole, _ = band_limit(y, SR)
    config = PreprocessConfig().spectrogram
    n_frames = 1 + (2 * SR - config.win_length) // round(config.frame_hop_s * SR)
    frame_centres_s = (np.arange(n_frames) * round(config.frame_hop_s * SR) + config.win_length / 2) / SR
    middle = (frame_centres_s > 0.25) & (frame_centres_s < 2.0 - 0.25)
    low = band_centres_hz() < 200.0
    for block_whole, block_alone in zip(split_blocks(whole, SR).blocks, split_blocks(y, SR).blocks):
        alone, _ = band_limit(block_alone, SR)
        a, info_a = normalize_loudness(block_whole, SR)
        b, info_b = normalize_loudness(alone, SR)
        assert abs(info_a["loudness_lufs"] - info_b["loudness_lufs"]) < 0.01  # LU
        diff = np.abs(mel_psd_db(a, SR) - mel_psd_db(b, SR))  # dB, [bands, frames]
        assert diff.shape[1] == middle.size
        # More than 0.25 s from the window's edges the two agree in every band ...
        assert diff[:, middle].max() < 0.01
        # ... nearer, the 20 Hz high-pass's start-up differs, most in the low bands.
        assert diff[:, ~middle].max() > 1.0
        assert diff[low][:, ~middle].mean() > 10 * diff[~low][:, ~middle].mean()


def band_centres_hz() -> np.ndarray:
    from crowdnb.spectrogram import band_edges

    config = PreprocessConfig().spectrogram
    return band_edges(config.n_mels, config.fmin, config.fmax)[1:-1]


def test_listener_refuses_samples_that_are_not_mono(loaded):
    model, meta = loaded
    with pytest.raises(ParameterError, match=r"mono, of shape \(n,\)"):
        Listener(model, meta, device="cpu").feed(np.zeros((10, 2), np.float32))


def test_file_source_names_a_bad_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="bad.wav: not readable as audio"):
        file_source(bad, sr=SR)
