"""Tests of crowdnb.audio: loading, band limiting, blocks and loudness.

Signals are built here (sines, noise of known level); tolerances are in dB,
LU, Hz and samples. Loudness is checked with a small BS.1770 meter written in
this file from the standard (not pyloudnorm, which the library uses).
"""

from __future__ import annotations

import math
import os
import subprocess

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from crowdnb import AudioError, ParameterError
from crowdnb.audio import band_limit, load_clip, normalize_loudness, split_blocks

SR = 44100


def sine(freq_hz, duration_s, sr=SR, amplitude=0.5):
    t = np.arange(int(round(duration_s * sr))) / sr
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def rms_db(y):
    return 10 * np.log10(np.mean(np.asarray(y, dtype=np.float64) ** 2))


def peak_frequency(y, sr):
    """Frequency of the largest spectral peak, with parabolic interpolation (Hz)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / y.size


# ---------------------------------------------------------------------------
# An independent ITU-R BS.1770-4 meter (K-weighting + gating), mono


def k_weighting(sr):
    """The two K-weighting biquads at any rate (analogue parameters as in libebur128)."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = np.array([vh + vb * k / q + k * k, 2 * (k * k - vh), vh - vb * k / q + k * k]) / a0
    shelf_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    a0 = 1 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return (shelf_b, shelf_a), (hp_b, hp_a)


def bs1770_loudness(y, sr):
    (b1, a1), (b2, a2) = k_weighting(sr)
    z = scipy.signal.lfilter(b2, a2, scipy.signal.lfilter(b1, a1, np.asarray(y, np.float64)))
    gate, step = int(round(0.4 * sr)), int(round(0.1 * sr))
    n = (z.size - gate) // step + 1
    power = np.array([np.mean(z[j * step : j * step + gate] ** 2) for j in range(n)])
    with np.errstate(divide="ignore"):
        level = -0.691 + 10 * np.log10(power)
    absolute = level > -70.0
    if not absolute.any():
        return -np.inf
    relative = -0.691 + 10 * np.log10(power[absolute].mean()) - 10.0
    return -0.691 + 10 * np.log10(power[absolute & (level > relative)].mean())


def test_reference_meter_matches_the_standard_coefficients_at_48k():
    # BS.1770-4 tables 1 and 2 give the filters at 48 kHz.
    (b1, a1), (b2, a2) = k_weighting(48000)
    np.testing.assert_allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285],
                               atol=1e-9)
    np.testing.assert_allclose(a1[1:], [-1.69065929318241, 0.73248077421585], atol=1e-9)
    np.testing.assert_allclose(a2[1:], [-1.99004745483398, 0.99007225036621], atol=1e-9)
    # The standard's check: a 1 kHz sine of 0 dBFS peak reads -3.01 LKFS.
    assert bs1770_loudness(sine(1000, 3, 48000, 1.0), 48000) == pytest.approx(-3.01, abs=0.01)


# ---------------------------------------------------------------------------
# load_clip


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_load_formats(tmp_path, ext):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, sine(997, 3.0), SR)
    y, sr = load_clip(path)
    assert sr == SR and y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - 3 * SR) <= 0.05 * SR  # lossy codecs may pad a few ms
    middle = y[SR : 2 * SR]
    assert peak_frequency(middle, SR) == pytest.approx(997, abs=0.5)
    assert rms_db(middle) == pytest.approx(rms_db(sine(997, 1.0)), abs=0.5)


def test_load_mixes_down_to_mono(tmp_path):
    left = sine(440, 2.0, amplitude=0.5)
    sf.write(tmp_path / "stereo.wav", np.stack([left, np.zeros_like(left)], axis=1), SR)
    y, _ = load_clip(tmp_path / "stereo.wav")
    assert y.ndim == 1
    assert rms_db(y) == pytest.approx(rms_db(left / 2), abs=0.01)  # channel mean: -6.02 dB


def test_resampling_from_48k_keeps_frequency_and_level(tmp_path):
    sf.write(tmp_path / "tone48.wav", sine(997, 3.0, 48000), 48000, subtype="FLOAT")
    y, sr = load_clip(tmp_path / "tone48.wav", sr=SR)
    assert sr == SR and abs(y.size - 3 * SR) <= 1
    middle = y[SR : 2 * SR]
    assert peak_frequency(middle, SR) == pytest.approx(997, abs=0.1)
    assert rms_db(middle) == pytest.approx(rms_db(sine(997, 1.0)), abs=0.05)


def test_load_m4a_through_ffmpeg(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    wav, m4a = tmp_path / "tone.wav", tmp_path / "tone.m4a"
    sf.write(wav, sine(997, 3.0), SR)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i",
                    os.fspath(wav), "-c:a", "aac", os.fspath(m4a)], check=True)
    y, sr = load_clip(m4a)
    assert sr == SR and abs(y.size - 3 * SR) <= 0.05 * SR
    assert peak_frequency(y[SR : 2 * SR], SR) == pytest.approx(997, abs=0.5)


def _write_bad(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not audio\n")
    elif kind == "corrupt":
        path.write_bytes(b"RIFF" + np.random.default_rng(0).bytes(4000))
    elif kind == "no_frames":
        sf.write(path, np.zeros(0), SR)
    elif kind in ("nan", "inf"):
        y = sine(440, 1.0)
        y[1000] = np.nan if kind == "nan" else np.inf
        sf.write(path, y, SR, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    "kind, reason",
    [("empty", "empty file"), ("text", "not readable as audio"),
     ("corrupt", "not readable as audio"), ("no_frames", "no audio samples"),
     ("nan", "NaN or infinite"), ("inf", "NaN or infinite"), ("missing", "file not found")],
)
def test_unusable_files_raise_audio_error_naming_file_and_reason(tmp_path, kind, reason):
    path = _write_bad(tmp_path, kind)
    with pytest.raises(AudioError) as err:
        load_clip(path)
    message = str(err.value)
    assert message.startswith(str(path)) and reason in message


def test_non_audio_file_of_unknown_type_raises_audio_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("crowd noise, 3 minutes, stadium\n")
    with pytest.raises(AudioError, match="notes.txt"):
        load_clip(path)


def test_load_rejects_bad_rate(tmp_path):
    sf.write(tmp_path / "a.wav", sine(440, 1.0), SR)
    with pytest.raises(ParameterError, match="sr"):
        load_clip(tmp_path / "a.wav", sr=0)


# ---------------------------------------------------------------------------
# band_limit


def _gain_db(freq_hz, sr=SR, **kwargs):
    x = sine(freq_hz, 4.0, sr)
    y, info = band_limit(x, sr, **kwargs)
    middle = slice(sr, 3 * sr)  # away from the filter's start and end transients
    return rms_db(y[middle]) - rms_db(x[middle]), info


def test_band_limit_attenuates_10hz_and_passes_1khz():
    loss, info = _gain_db(10.0)
    assert loss <= -20.0
    passed, _ = _gain_db(1000.0)
    assert abs(passed) <= 0.5
    assert info == {"filter": "bandpass", "low_hz": 20.0, "high_hz": 20000.0, "order": 4,
                    "note": ""}


def test_band_limit_cuts_above_high_hz():
    # 21 kHz is above the 20 kHz edge at 44.1 kHz (zero-phase: -6 dB at the edge).
    loss, _ = _gain_db(21500.0)
    assert loss <= -10.0


@pytest.mark.parametrize("sr", [22050, 32000])
def test_band_limit_becomes_highpass_and_says_so(sr):
    loss, info = _gain_db(10.0, sr)
    passed, _ = _gain_db(0.4 * sr, sr)  # near Nyquist: kept, since there is no low-pass
    assert info["filter"] == "highpass" and info["high_hz"] is None
    assert "0.95 x Nyquist" in info["note"] and "high-pass" in info["note"]
    assert loss <= -20.0 and abs(passed) <= 0.5


def test_band_limit_keeps_length_and_dtype():
    y, _ = band_limit(np.random.default_rng(0).standard_normal(1000).astype(np.float32), SR)
    assert y.shape == (1000,) and y.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, name",
    [({"low_hz": 0.0}, "low_hz"), ({"low_hz": 500.0, "high_hz": 400.0}, "high_hz"),
     ({"order": 0}, "order"), ({"low_hz": 21500.0, "high_hz": 21800.0}, "low_hz")],
)
def test_band_limit_validates_parameters(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        band_limit(np.zeros(1000), SR, **kwargs)


# ---------------------------------------------------------------------------
# split_blocks


def test_split_blocks_10_5_s_gives_9_blocks_one_second_apart():
    y = np.arange(int(10.5 * SR), dtype=np.float32)
    split = split_blocks(y, SR)
    assert split.blocks.shape == (9, 2 * SR) and split.blocks.dtype == np.float32
    np.testing.assert_array_equal(split.starts_s, np.arange(9.0))
    assert split.reason is None
    for k in (0, 4, 8):  # block k is samples [k s, k s + 2 s)
        np.testing.assert_array_equal(split.blocks[k], y[k * SR : k * SR + 2 * SR])


def test_split_blocks_exactly_one_block():
    split = split_blocks(np.zeros(2 * SR, np.float32), SR)
    assert split.blocks.shape == (1, 2 * SR) and split.reason is None


def test_split_blocks_short_clip_gives_no_blocks_and_a_reason():
    split = split_blocks(np.zeros(int(1.5 * SR), np.float32), SR)
    assert split.blocks.shape == (0, 2 * SR) and split.starts_s.shape == (0,)
    assert "too short" in split.reason and "1.500 s" in split.reason


def test_split_blocks_validates():
    with pytest.raises(ParameterError, match="hop_s"):
        split_blocks(np.zeros(SR, np.float32), SR, hop_s=0.0)


# ---------------------------------------------------------------------------
# normalize_loudness


def _clip_with_varied_level(sr, seed=0):
    """12 s of noise whose level steps over 50 dB, with near-silent stretches."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(12 * sr)
    envelope = np.repeat([0.3, 0.01, 0.1, 3e-4, 0.05, 0.2, 1e-3, 0.02, 0.08, 0.5, 0.004, 0.1],
                         sr)
    tone = 0.05 * np.sin(2 * np.pi * 3000 * np.arange(y.size) / sr)
    return (y * envelope + tone * (np.arange(y.size) > 6 * sr)).astype(np.float32)


@pytest.mark.parametrize("sr", [44100, 48000])
def test_every_normalised_block_measures_target_with_independent_meter(sr):
    split = split_blocks(_clip_with_varied_level(sr), sr)
    assert split.blocks.shape[0] == 11
    for block in split.blocks:
        out, info = normalize_loudness(block, sr, target_lufs=-23.0)
        assert out is not None and info["reason"] == ""
        assert bs1770_loudness(out, sr) == pytest.approx(-23.0, abs=0.1)
        assert info["gain_db"] == pytest.approx(-23.0 - info["loudness_lufs"], abs=1.0)
        assert bs1770_loudness(block, sr) == pytest.approx(info["loudness_lufs"], abs=0.1)
        assert info["peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(out).max()), abs=1e-4)


def test_gain_is_corrected_where_the_absolute_gate_changes_the_measure():
    # First half at about -71 LUFS (below the -70 LUFS gate), second at -64 LUFS:
    # after +40 dB both halves count, so a single-shot gain would miss -23 LUFS.
    rng = np.random.default_rng(1)
    block = rng.standard_normal(2 * SR) * np.repeat([10 ** (-74 / 20), 10 ** (-67 / 20)], SR)
    assert bs1770_loudness(block[:SR], SR) == -np.inf
    assert -70 < bs1770_loudness(block, SR) < -60
    out, info = normalize_loudness(block.astype(np.float32), SR)
    assert bs1770_loudness(out, SR) == pytest.approx(-23.0, abs=0.1)
    naive = block * 10 ** ((-23.0 - info["loudness_lufs"]) / 20)
    assert abs(bs1770_loudness(naive, SR) + 23.0) > 0.5  # the case really is exercised


@pytest.mark.parametrize("level", [0.0, 1e-6])  # digital silence; noise below -70 LUFS
def test_silent_block_is_dropped_with_reason(level):
    block = (np.random.default_rng(2).standard_normal(2 * SR) * level).astype(np.float32)
    out, info = normalize_loudness(block, SR)
    assert out is None
    assert info["reason"].startswith("silent") and info["loudness_lufs"] == -np.inf
    assert not info["clipped"]


def test_clipping_is_reported_not_limited():
    # Quiet noise with one full-scale click: the gain pushes the click over 0 dBFS.
    block = np.random.default_rng(3).standard_normal(2 * SR) * 0.003
    block[SR] = 0.9
    out, info = normalize_loudness(block.astype(np.float32), SR)
    assert out is not None and info["reason"] == ""
    assert info["gain_db"] > 10 and info["clipped"] is True
    assert info["peak_dbfs"] > 0.0
    assert np.abs(out).max() == pytest.approx(0.9 * 10 ** (info["gain_db"] / 20), rel=1e-5)


def test_loud_block_is_not_flagged():
    block = (np.random.default_rng(4).standard_normal(2 * SR) * 0.1).astype(np.float32)
    out, info = normalize_loudness(block, SR)
    assert info["clipped"] is False and info["peak_dbfs"] < 0


def test_normalize_loudness_validates():
    with pytest.raises(ParameterError, match="gating block"):
        normalize_loudness(np.ones(100, np.float32), SR)
    with pytest.raises(ParameterError, match="target_lufs"):
        normalize_loudness(np.ones(SR, np.float32), SR, target_lufs=float("nan"))
