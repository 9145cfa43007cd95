"""crowdnb predict and crowdnb listen on faulty inputs: one clear line each, bounded memory.

Closed standard input, a stream or file cut short (WAV, OGG, MP3), audio
whose sample rate leaves out part of the trained band, an mp3 of random
bytes (whose decoder prints on its own), and a long file (memory bounded by
reading it in pieces, with the same answers as the whole-file path).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from crowdnb.audio import (ClipStream, load_clip, normalised_blocks, normalised_blocks_streamed,
                           truncation)
from crowdnb.cli import main
from crowdnb.config import AudioConfig, PreprocessConfig, SpectrogramConfig
from crowdnb.listen import Listener, file_source, independent_blocks, listen, wav_stream_source
from crowdnb.model import (CHECKPOINT_FORMAT, TRUNK_BATCH, build_model, image_normalization,
                           load_checkpoint, predict_proba, trunk_first)
from crowdnb.networks import NETWORKS, AlexNet
from crowdnb.predict import InputWarning, band_note, predict_file
from crowdnb.spectrogram import mel_filterbank, spectrogram_image

from conftest import band_noise

SR = 44100
CLASSES = ["anger", "joy", "neutral"]


noise = band_noise  # the shared band-limited noise of conftest.py


def scene(seconds: float, sr: int) -> np.ndarray:
    """Rumble, hiss, digital silence and quiet noise with loud clicks, in turn, 3 s each.

    Gives kept blocks of different classes' look, dropped (silent) blocks,
    and blocks that clip once brought to -23 LUFS.
    """
    parts, seed = [], 0
    while sum(p.size for p in parts) < seconds * sr:
        clicks = 0.003 * np.random.default_rng(seed).standard_normal(3 * sr)
        clicks[:: sr // 4] += 0.5
        parts += [noise(3, (None, 500.0), seed + 1, sr), noise(3, (4000.0, None), seed + 2, sr),
                  np.zeros(3 * sr), clicks]
        seed += 3
    return np.concatenate(parts)[:int(round(seconds * sr))].astype(np.float32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained but valid checkpoint (PyTorch's default initialisation, seeded)."""
    root = tmp_path_factory.mktemp("faults")
    model, info = build_model(len(CLASSES), weights="none", seed=0)
    path = root / "model.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "network": info.get("network", "alexnet"),
                "architecture": info.get("architecture"), "state_dict": model.state_dict(),
                "classes": CLASSES, "normalization": image_normalization(),
                "image_size": [227, 227], "preprocessing": PreprocessConfig().to_dict(),
                "model_info": info}, path)
    return path


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return load_checkpoint(checkpoint)


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crowdnb.cli", *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


def _write(path: Path, y: np.ndarray, sr: int, **kwargs) -> Path:
    """``sf.write``, or a skip where this libsndfile cannot write the format (mp3 needs >= 1.1)."""
    try:
        sf.write(path, y, sr, **kwargs)
    except (sf.LibsndfileError, ValueError, TypeError) as exc:
        pytest.skip(f"libsndfile cannot write {path.suffix} here ({exc})")
    return path


def _input_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, InputWarning)]


# ---------------------------------------------------------------------------
# 1. Standard input closed or not readable


def test_listen_with_standard_input_closed_is_one_line(checkpoint):
    # crowdnb listen --model M - <&- : Python starts with no sys.stdin at all.
    done = _cli("listen", "--model", str(checkpoint), "-", stdin=subprocess.DEVNULL,
                preexec_fn=lambda: os.close(0))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "crowdnb listen: error: standard input: closed, there is nothing to read; pipe audio into "
        "it (e.g. ffmpeg -i URL -f wav - | crowdnb listen --model M -) or give a file"]


def test_listen_with_standard_input_open_for_writing_is_one_line(checkpoint, tmp_path, monkeypatch,
                                                                 capsys):
    with (tmp_path / "out.txt").open("w") as write_only:
        monkeypatch.setattr(sys, "stdin", write_only)
        for raw in ([], ["--format", "s16le", "--rate", str(SR)]):
            assert main(["listen", "--model", str(checkpoint), "-", *raw]) == 1
            assert capsys.readouterr().err.splitlines() == [
                "crowdnb listen: error: standard input: not readable (Bad file descriptor); pipe "
                "audio into it or give a file"]


# ---------------------------------------------------------------------------
# 2. Streams and files cut short


def test_wav_stream_cut_short_is_warned_with_what_was_promised_and_what_arrived(
        checkpoint, monkeypatch, capsys):
    buffer = io.BytesIO()
    sf.write(buffer, noise(8.0, (None, 500.0), 1).astype(np.float32), SR, format="WAV",
             subtype="PCM_16")
    data = buffer.getvalue()
    assert len(data) == 44 + 8 * SR * 2  # head -c 300000 of this: 149978 samples, 3.40 s
    _stdin(monkeypatch, data[:300000])
    assert main(["listen", "--model", str(checkpoint), "-"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert ("crowdnb listen: warning: standard input: truncated: the WAV header promises 8.00 s, "
            "the stream ended after 3.40 s; the windows above cover what arrived") in err
    assert sum("warning" in line for line in err) == 1

    # Cut inside a sample frame as well: still one line, saying both.
    with pytest.warns(InputWarning) as record:
        list(wav_stream_source(io.BytesIO(data[:300001])).chunks)
    assert _input_warnings(record) == [
        "standard input: truncated: the WAV header promises 8.00 s, the stream ended after 3.40 s "
        "(inside a sample frame: its last 1 byte(s) were ignored); the windows above cover what "
        "arrived"]
    # The whole stream: no word.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(wav_stream_source(io.BytesIO(data)).chunks)


@pytest.mark.parametrize("ext, kwargs", [("ogg", {"format": "OGG", "subtype": "VORBIS"}),
                                         ("mp3", {"format": "MP3"})])
def test_ogg_and_mp3_cut_short_are_warned(loaded, tmp_path, ext, kwargs):
    whole = _write(tmp_path / f"whole.{ext}", noise(8.0, (None, 4000.0), 2), SR, **kwargs)
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(whole.read_bytes()[:int(0.45 * whole.stat().st_size)])
    y, _ = load_clip(cut, sr=SR)
    held = y.size / SR
    assert 2.0 < held < 6.0  # the decoder reads what is there, without a word of its own

    promise = {"ogg": "the file stops before the last page of its Ogg stream (Ogg stores no "
                      "total length)",
               "mp3": "the header promises 8.00 s"}[ext]
    expected = f"{cut}: truncated: {promise}, the file holds {held:.2f} s"
    with pytest.warns(InputWarning) as record:
        table, _ = predict_file(cut, loaded, device="cpu")
    assert _input_warnings(record) == [f"{expected}; the blocks below cover what it holds"]
    assert table["end_s"].max() <= held
    with pytest.warns(InputWarning) as record:
        list(listen(file_source(cut, sr=SR), Listener(*loaded, device="cpu")))
    assert _input_warnings(record) == [f"{expected}; the windows above cover what it holds"]
    # The whole file: no word.
    assert truncation(whole, load_clip(whole, sr=SR)[0].size / SR) == ""


def test_mp3_without_a_length_in_its_header_is_not_judged(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    wav = tmp_path / "clip.wav"
    sf.write(wav, noise(7.3, (None, 4000.0), 3), SR)
    mp3 = tmp_path / "plain.mp3"  # no Xing/Info frame: libsndfile guesses its length from its size
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(wav),
                    "-write_xing", "0", str(mp3)], check=True)
    assert sf.info(mp3).frames - load_clip(mp3, sr=SR)[0].size > 0.01 * SR  # the guess is long
    assert truncation(mp3, load_clip(mp3, sr=SR)[0].size / SR) == ""
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[:mp3.stat().st_size // 2])
    assert truncation(cut, load_clip(cut, sr=SR)[0].size / SR) == ""  # nothing to judge it by


# ---------------------------------------------------------------------------
# 3. A sample rate below the trained band


def test_band_note_names_the_file_band_and_the_trained_band():
    paper = PreprocessConfig()
    assert band_note(rate=8000, config=paper) == (
        "its sample rate (8000 Hz) limits its band to 4000 Hz, where the model was trained on "
        "audio up to 20000 Hz; its answers may not be trusted")
    assert band_note(rate=32000, config=paper).startswith("its sample rate (32000 Hz) limits its "
                                                          "band to 16000 Hz")
    for rate in (40000, 44100, 48000, 96000):
        assert band_note(rate=rate, config=paper) == ""
    # Trained at 16 kHz with an 8 kHz spectrogram: 16 kHz audio holds all of it.
    narrow = PreprocessConfig().replace(
        audio=AudioConfig(sr=16000, high_hz=7000.0),
        spectrogram=SpectrogramConfig(fmax=8000.0))
    assert band_note(rate=16000, config=narrow) == ""
    assert "up to 7000 Hz" in band_note(rate=11025, config=narrow)


def test_audio_at_8_khz_is_warned_by_predict_and_listen(checkpoint, loaded, tmp_path, monkeypatch,
                                                        capsys):
    path = tmp_path / "phone.wav"
    sf.write(path, noise(4.0, (300.0, 3400.0), 4, sr=8000, level=0.2), 8000, subtype="PCM_16")
    note = ("its sample rate (8000 Hz) limits its band to 4000 Hz, where the model was trained on "
            "audio up to 20000 Hz; its answers may not be trusted")
    with pytest.warns(InputWarning) as record:
        predict_file(path, loaded, device="cpu")
    assert _input_warnings(record) == [f"{path}: {note}"]

    assert main(["listen", "--model", str(checkpoint), str(path)]) == 0
    assert f"crowdnb listen: warning: {path}: {note}" in capsys.readouterr().err.splitlines()
    _stdin(monkeypatch, path.read_bytes())  # the same as a WAV stream
    assert main(["listen", "--model", str(checkpoint), "-"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert f"crowdnb listen: warning: standard input: {note}" in err

    # At 44.1 kHz: no word.
    full = tmp_path / "full.wav"
    sf.write(full, noise(4.0, (None, 4000.0), 5), SR, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_file(full, loaded, device="cpu")
        list(listen(file_source(full, sr=SR), Listener(*loaded, device="cpu")))


# ---------------------------------------------------------------------------
# 4. The mp3 decoder's own messages


@pytest.fixture(scope="module")
def random_mp3(tmp_path_factory):
    path = tmp_path_factory.mktemp("random") / "noise.mp3"
    path.write_bytes(np.random.default_rng(1).bytes(20000))
    return path


def test_random_bytes_mp3_is_one_line_on_standard_error(checkpoint, random_mp3):
    done = _cli("predict", "--model", str(checkpoint), str(random_mp3))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"crowdnb predict: error: {random_mp3}: not readable as audio (corrupt, or not audio: the "
        "decoder found no valid frame)"]


def test_random_bytes_mp3_through_listen_is_one_line(checkpoint, random_mp3, capfd):
    # capfd reads file descriptor 2 itself: what mpg123 prints below Python shows here.
    assert main(["listen", "--model", str(checkpoint), str(random_mp3)]) == 1
    err = capfd.readouterr().err.splitlines()
    assert err == [f"crowdnb listen: error: {random_mp3}: not readable as audio (corrupt, or not "
                   "audio: the decoder found no valid frame)"]
    print("after", file=sys.stderr)  # standard error works again once the decoder is done
    assert capfd.readouterr().err == "after\n"


# ---------------------------------------------------------------------------
# 5. Long files in bounded memory, with the whole-file answers


def _whole_file_table(path: Path, loaded, band_limit_per: str) -> pd.DataFrame:
    """predict_file's table the way it was made before streaming: the file loaded whole."""
    model, meta = loaded
    config = PreprocessConfig.from_dict(meta["preprocessing"])
    y, sr = load_clip(path, sr=config.audio.sr)
    if band_limit_per == "block":
        blocks = list(independent_blocks(y, sr, config=config.audio))
    else:
        blocks = list(normalised_blocks(y, sr, config=config.audio))
    images = [spectrogram_image(b.samples, sr, config=config) for b in blocks if b.kept]
    probs = np.full((len(blocks), len(CLASSES)), np.nan)
    kept = [i for i, b in enumerate(blocks) if b.kept]
    tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    probs[kept], _ = predict_proba(model, tensor, normalization=meta["normalization"], device="cpu",
                                   batch_size=16)
    table = pd.DataFrame({
        "block": np.arange(len(blocks)), "start_s": [b.start_s for b in blocks],
        "end_s": [b.end_s for b in blocks], "kept": [b.kept for b in blocks],
        "reason": [b.reason for b in blocks], "loudness_lufs": [b.loudness_lufs for b in blocks],
        "gain_db": [b.gain_db for b in blocks], "clipped": [b.clipped for b in blocks],
        "label": ["" if np.isnan(p[0]) else CLASSES[int(np.argmax(p))] for p in probs]})
    for i, c in enumerate(CLASSES):
        table[f"prob_{c}"] = probs[:, i]
    return table


@pytest.fixture(scope="module")
def thirty_seconds(tmp_path_factory):
    """30 s of the scene in stereo at 48 kHz (mixed and resampled on the way in)."""
    y = scene(30.0, 48000)
    frames = np.stack([y, -0.5 * y], axis=1)
    path = tmp_path_factory.mktemp("thirty") / "scene48k.wav"
    sf.write(path, frames, 48000, subtype="PCM_24")
    return path


@pytest.mark.parametrize("band_limit_per", ["clip", "block"])
def test_streamed_prediction_is_the_whole_file_prediction_to_the_last_float(
        loaded, thirty_seconds, band_limit_per):
    expected = _whole_file_table(thirty_seconds, loaded, band_limit_per)
    assert len(expected) == 29 and expected["clipped"].any()  # the clicks
    assert expected.loc[~expected["kept"], "start_s"].tolist() == [6.0, 7.0, 18.0, 19.0]  # silence
    got, _ = predict_file(thirty_seconds, loaded, device="cpu", batch_size=16,
                          band_limit_per=band_limit_per)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize("ext, kwargs", [("wav", {"subtype": "FLOAT"}), ("flac", {}),
                                         ("ogg", {"format": "OGG", "subtype": "VORBIS"}),
                                         ("mp3", {"format": "MP3"})])
def test_clip_stream_reads_the_samples_of_load_clip(tmp_path, ext, kwargs):
    y = 0.5 * scene(7.0, 48000)
    path = _write(tmp_path / f"clip.{ext}", np.stack([y, -y[::-1]], axis=1), 48000, **kwargs)
    expected, _ = load_clip(path, sr=SR)
    for block_frames in (1000, 48000):  # pieces that do not fall on the blocks' bounds
        with ClipStream(path, sr=SR, block_frames=block_frames) as stream:
            got = np.concatenate(list(stream))
        assert (stream.rate, stream.channels) == (48000, 2)
        np.testing.assert_array_equal(got, expected)


def test_whole_clip_band_limit_in_pieces_gives_the_same_blocks():
    y = scene(40.0, SR)
    pieces = (y[i:i + 7919] for i in range(0, y.size, 7919))  # a prime: bounds everywhere
    expected = list(normalised_blocks(y, SR))
    got = list(normalised_blocks_streamed(pieces, SR, chunk_len=50000))
    assert len(got) == len(expected) == 39
    for a, b in zip(got, expected):
        assert (a.index, a.start_s, a.end_s, a.reason) == (b.index, b.start_s, b.end_s, b.reason)
        np.testing.assert_equal((a.loudness_lufs, a.gain_db, a.clipped),
                                (b.loudness_lufs, b.gain_db, b.clipped))  # NaN: dropped
        if b.kept:
            np.testing.assert_array_equal(a.samples, b.samples)


#: Peak memory a 20 min file may add to that of a 30 s one, bytes. Read
#: whole, the 20 min file below added 1.6 GB to predict and 1.1 GB to listen.
MEMORY_GROWTH_BOUND = 300 * 2 ** 20


def _write_long(path: Path, minutes: float) -> Path:
    """Stereo 16-bit at 48 kHz, 1 s of noise every minute, silence between (quick to classify)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", 48000, 2, subtype="PCM_16") as out:
        for second in range(int(minutes * 60)):
            loud = second % 60 == 0
            out.write(0.1 * rng.standard_normal((48000, 2)) if loud else np.zeros((48000, 2)))
    return path


@pytest.fixture(scope="module")
def short_and_long(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    return _write_long(root / "short.wav", 0.5), _write_long(root / "long.wav", 20)


def _peak_rss(*args: str) -> int:
    """Peak resident memory of ``crowdnb ARGS``, bytes, from a fresh parent that runs it alone."""
    probe = ("import resource, subprocess, sys; "
             "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
             "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "crowdnb.cli", *args],
                          capture_output=True, text=True, timeout=300)
    returncode, kib = done.stdout.split()
    assert returncode == "0", done.stderr
    return int(kib) * 1024  # Linux counts ru_maxrss in KiB


@pytest.mark.parametrize("command", ["predict", "listen"])
def test_memory_of_a_long_file_stays_bounded(checkpoint, short_and_long, command):
    short, long = short_and_long
    assert long.stat().st_size > 200 * 2 ** 20  # 20 min: 230 MB of 16-bit samples
    # predict reads the whole file; listen, the first minute of it: a file read
    # whole when it is opened (what listen did) shows at once, and reading it
    # to the end is predict's part (the same ClipStream), which keeps this under a minute.
    options = ["--duration", "60"] if command == "listen" else []
    base = _peak_rss(command, "--model", str(checkpoint), str(short), *options)
    peak = _peak_rss(command, "--model", str(checkpoint), str(long), *options)
    assert peak - base < MEMORY_GROWTH_BOUND, (base, peak)


# What the two commands hold besides the file: the interpreter and torch, the
# network's weights, and the activations of a few images. Each guard below is
# a regression that cost a 1 GB target its margin: batches of 64 run whole
# (1.2 GB of EfficientNet-Lite0 activations), torchvision imported to build
# AlexNet (160 MB), librosa imported for the mel filters (120 MB, with numba).


def test_trunk_first_gives_the_whole_networks_answers():
    # The trunk's output for an image does not depend on the other images of
    # its batch (cached trunk outputs in training rely on it too); the layers
    # after it see the batches they would have seen whole.
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 3, 227, 227),
                                                                dtype=np.uint8))
    for network in NETWORKS:  # batches of 3 and 1; the trunk runs 2 + 1, then 1
        model, _ = build_model(len(CLASSES), network=network, weights="none", seed=0)
        model.eval()
        norm = image_normalization(network)
        expected = predict_proba(model, images, normalization=norm, device="cpu", batch_size=3)
        top, prepare = trunk_first(model, network, normalization=norm, trunk_batch_size=2)
        got = predict_proba(top, images, prepare=prepare, device="cpu", batch_size=3)
        np.testing.assert_array_equal(got[1], expected[1])
        assert not any(m.training for m in model.modules())  # left in the mode it was in
    model.train()
    top, prepare = trunk_first(model, network, normalization=norm)
    predict_proba(top, images[:1], prepare=prepare, device="cpu")
    assert all(m.training for m in model.modules())


def test_prediction_runs_the_trunk_a_few_images_at_a_time(loaded, thirty_seconds, monkeypatch):
    model, meta = loaded
    seen = {"trunk": [], "top": [], "released": 0}
    # After each batch, what it freed goes back to the system (else glibc's free memory grows).
    monkeypatch.setattr("crowdnb.predict.release_freed_memory",
                        lambda: seen.__setitem__("released", seen["released"] + 1))
    hooks = [model.features[0].register_forward_pre_hook(
                 lambda module, args: seen["trunk"].append(len(args[0]))),
             model.classifier[-1].register_forward_pre_hook(
                 lambda module, args: seen["top"].append(len(args[0])))]
    try:
        table, _ = predict_file(thirty_seconds, loaded, device="cpu", batch_size=16)
    finally:
        for hook in hooks:
            hook.remove()
    kept = int(table["kept"].sum())
    batches = [16, kept - 16]
    assert kept == 25 and seen["top"] == batches  # the layers after the trunk: each batch whole
    assert seen["trunk"] == [min(TRUNK_BATCH, n - start) for n in batches
                             for start in range(0, n, TRUNK_BATCH)]
    assert seen["released"] == len(batches)


def test_predict_and_listen_import_neither_torchvision_nor_librosa(checkpoint, thirty_seconds):
    probe = ("import sys\n"
             "from crowdnb.cli import main\n"
             "model, wav = sys.argv[1:]\n"
             "codes = [main(['predict', '--model', model, wav]),\n"
             "         main(['listen', '--model', model, '--duration', '4', wav])]\n"
             "print(codes, sorted({'torchvision', 'librosa', 'numba'} & set(sys.modules)), "
             "file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(checkpoint), str(thirty_seconds)],
                          capture_output=True, text=True, timeout=300)
    assert done.stderr.splitlines()[-1] == "[0, 0] []", done.stderr


def test_alexnet_is_torchvisions_layer_for_layer():
    torchvision = pytest.importorskip("torchvision")
    ours, theirs = AlexNet(num_classes=3), torchvision.models.alexnet(num_classes=3)
    assert str(ours) == str(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 227, 227, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(ours.eval()(x), theirs.eval()(x))


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", [(44100, 2048, 128, 20.0, 20000.0),
                                                           (22050, 1024, 64, 0.0, 11025.0),
                                                           (16000, 512, 40, 50.0, 7000.0)])
def test_mel_filters_are_librosas_without_librosa(sr, n_fft, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True,
                                   norm=None, dtype=np.float64)
    expected /= expected.sum(axis=1)[:, None]  # each band averages the density
    got = mel_filterbank(sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_array_equal(got, expected)
