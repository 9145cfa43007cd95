"""Physical facts the crowd statistics must reproduce on synthetic signals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crowdnb import crowdstats
from crowdnb.crowdstats import (STATISTICS, block_statistics, clip_statistics, compare,
                                third_octave_spectrum)
from crowdnb.errors import DataError, ParameterError

SR = 22050
# Flatness of white noise: periodogram bins are exponentially distributed, and
# E[ln X] = ln E[X] - gamma (Euler's constant): 10 log10(exp(-gamma)) = -2.507 dB.
WHITE_FLATNESS_DB = -10.0 * 0.5772156649 / math.log(10.0)


def _t(seconds: float, sr: int = SR) -> np.ndarray:
    return np.arange(int(round(seconds * sr))) / sr


def _noise(seconds: float, *, seed: int = 0, sr: int = SR, channels: int | None = None):
    rng = np.random.default_rng(seed)
    shape = (int(round(seconds * sr)),) if channels is None else (int(round(seconds * sr)), channels)
    return 0.1 * rng.standard_normal(shape)


def test_tone_centroid_and_third_octave():
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * _t(2.0))
    stats = block_statistics(tone, SR)
    assert len(stats) == 1
    assert stats["centroid_hz"].iloc[0] == pytest.approx(1000.0, rel=0.05)
    assert stats["rolloff_hz"].iloc[0] == pytest.approx(1000.0, rel=0.05)
    centres, levels = third_octave_spectrum(tone, SR)
    k = int(np.argmin(np.abs(centres - 1000.0)))
    assert centres[k] == pytest.approx(1000.0)
    assert abs(levels[k]) < 0.5
    assert np.nanmax(np.delete(levels, k)) < -20.0
    # bands whose upper edge is above sr / 2 = 11025 Hz are NaN
    assert np.isnan(levels[centres * 10 ** (1 / 20) > SR / 2]).all()
    assert np.isfinite(levels[centres * 10 ** (1 / 20) <= SR / 2]).all()


def test_white_noise_flatness_and_centroid():
    noise = block_statistics(_noise(2.0), SR).iloc[0]
    assert noise["flatness_db"] == pytest.approx(WHITE_FLATNESS_DB, abs=0.1)
    # the centroid of a flat spectrum lies mid-band (20 Hz .. 11025 Hz)
    assert noise["centroid_hz"] == pytest.approx((20 + SR / 2) / 2, rel=0.03)
    tone = block_statistics(0.5 * np.sin(2 * np.pi * 1000.0 * _t(2.0)), SR).iloc[0]
    assert tone["flatness_db"] < noise["flatness_db"] - 30.0


def test_modulation_peak_of_4_hz_am_noise():
    t = _t(4.0)
    am = _noise(4.0) * (1.0 + np.sin(2 * np.pi * 4.0 * t))
    row = block_statistics(am, SR).iloc[0]
    assert row["mod_4_8"] > row["mod_1_2"] + 10.0
    assert row["mod_4_8"] > row["mod_8_16"] + 10.0
    # full sinusoidal modulation: mean-square 1/2, -3 dB (some of it leaks below 4 Hz)
    assert -5.0 < row["mod_4_8"] < -2.0
    steady = block_statistics(_noise(4.0, seed=1), SR)
    mods = steady[["mod_1_2", "mod_2_4", "mod_4_8", "mod_8_16"]].to_numpy()
    assert (mods < -20.0).all()


def test_onset_rate_of_click_train():
    y = _noise(4.0, seed=2) * 1e-3
    for start in np.arange(0.1, 4.0, 0.2):          # 5 clicks per second
        i = int(start * SR)
        y[i:i + 64] += np.hanning(64)
    rates = block_statistics(y, SR)["onset_rate_hz"]
    assert len(rates) == 3
    assert np.all(np.abs(rates - 5.0) <= 1.0)


def test_stereo_width():
    mono = _noise(2.0)
    same = block_statistics(np.column_stack([mono, mono]), SR)["stereo_width"].iloc[0]
    assert same == pytest.approx(-60.0)
    independent = block_statistics(_noise(2.0, seed=3, channels=2), SR)["stereo_width"].iloc[0]
    assert abs(independent) < 0.5
    assert np.isnan(block_statistics(mono, SR)["stereo_width"].iloc[0])


def test_gain_invariance():
    t = _t(5.0)
    y = _noise(5.0, seed=4, channels=2) * (1.0 + 0.5 * np.sin(2 * np.pi * 3.0 * t))[:, None]
    y[:, 1] = 0.7 * y[:, 1] + 0.3 * y[:, 0]
    loud, quiet = block_statistics(y, SR), block_statistics(0.1 * y, SR)
    compared = [c for c in loud.columns if c not in ("level_db", "start_s")]
    np.testing.assert_allclose(quiet[compared].to_numpy(), loud[compared].to_numpy(), atol=0.01)
    np.testing.assert_allclose(quiet["level_db"], loud["level_db"] - 20.0, atol=1e-6)
    assert clip_statistics(0.1 * y, SR)["loudness_range_lu"] == pytest.approx(
        clip_statistics(y, SR)["loudness_range_lu"], abs=0.01)


def test_loudness_std_steady_and_switching():
    steady = block_statistics(_noise(2.0, seed=5), SR)["loudness_std_lu"].iloc[0]
    assert steady < 0.5
    t = _t(2.0)
    gain = np.where((t // 0.5) % 2 == 0, 1.0, 10 ** (-10 / 20))   # 10 dB steps every 0.5 s
    switching = block_statistics(_noise(2.0, seed=6) * gain, SR)["loudness_std_lu"].iloc[0]
    assert switching > 3.0


def test_loudness_range_of_level_steps():
    gain = np.repeat([1.0, 10 ** (-10 / 20), 10 ** (-20 / 20)], 10 * SR)
    y = _noise(30.0, seed=7) * gain
    stats = clip_statistics(y, SR)
    assert 15.0 <= stats["loudness_range_lu"] <= 25.0
    assert stats["n_blocks"] == 29
    assert clip_statistics(_noise(30.0, seed=8), SR)["loudness_range_lu"] < 1.0
    assert np.isnan(clip_statistics(_noise(2.5), SR)["loudness_range_lu"])


def test_short_clip_gives_no_blocks_and_bad_input_raises():
    assert block_statistics(_noise(1.5), SR).empty
    with pytest.raises(ParameterError):
        block_statistics(np.zeros((2, SR * 3)), SR)      # (channels, n): transposed
    with pytest.raises(ParameterError):
        block_statistics(np.zeros(SR * 3, dtype=np.int16), SR)
    with pytest.raises(ParameterError):
        block_statistics(_noise(3.0), 0)


def test_max_hz_keeps_an_empty_band_out():
    import scipy.signal

    sos = scipy.signal.butter(8, 4000.0, fs=SR, output="sos")
    narrow = scipy.signal.sosfilt(sos, _noise(2.0, seed=11))     # nothing above ~4 kHz
    full = block_statistics(narrow, SR).iloc[0]
    kept = block_statistics(narrow, SR, max_hz=3500.0).iloc[0]
    assert full["flatness_db"] < WHITE_FLATNESS_DB - 20.0
    assert kept["flatness_db"] > WHITE_FLATNESS_DB - 1.5
    with pytest.raises(ParameterError):
        block_statistics(narrow, SR, max_hz=10.0)


def _table(label: str, values: dict, clip_ids) -> pd.DataFrame:
    return pd.DataFrame({"clip_id": clip_ids, "label": label, **values})


def test_compare_cliffs_delta():
    rng = np.random.default_rng(9)
    n = 40
    real = _table("joy", {"centroid_hz": rng.uniform(0, 1, n), "flatness_db": np.arange(n),
                          "stereo_width": rng.uniform(-10, 0, n)}, np.repeat(["a", "b"], n // 2))
    synth = _table("joy", {"centroid_hz": rng.uniform(2, 3, n), "flatness_db": np.arange(n),
                           "stereo_width": np.full(n, np.nan)}, np.arange(n))
    table = compare(synth, real, classes=["joy"]).set_index("statistic")
    assert table.loc["centroid_hz", "cliffs_delta"] == pytest.approx(1.0)
    assert table.loc["centroid_hz", "rank"] == 1
    assert table.loc["flatness_db", "cliffs_delta"] == pytest.approx(0.0)
    assert np.isnan(table.loc["stereo_width", "cliffs_delta"])
    assert "synthetic" in table.loc["stereo_width", "note"]
    assert table.loc["centroid_hz", "n_real_clips"] == 2
    assert table.loc["centroid_hz", "n_real_blocks"] == n
    # reversed roles reverse the sign
    back = compare(real, synth, classes=["joy"]).set_index("statistic")
    assert back.loc["centroid_hz", "cliffs_delta"] == pytest.approx(-1.0)
    assert crowdstats.cliffs_delta(np.array([1.0, 2.0]), np.array([1.5])) == pytest.approx(0.0)
    with pytest.raises(DataError):
        compare(synth.drop(columns="label"), real, classes=["joy"])


def test_statistics_table_reads_channels_and_resamples(tmp_path):
    import soundfile

    path = tmp_path / "stereo.wav"
    soundfile.write(path, _noise(3.0, sr=16000, channels=2, seed=10), 16000)
    clips = pd.DataFrame({"clip_id": ["c0"], "label": ["neutral"], "path": [str(path)]})
    table = crowdstats.statistics_table(clips, sr=SR)
    assert len(table) == 2
    assert (table["sample_rate"] == 16000).all() and (table["channels"] == 2).all()
    assert set(STATISTICS) <= set(table.columns)
    assert "third_1000" in table.columns and "third_16000" in table.columns
    # resampled to 22.05 kHz, the white noise stops at the file's 8 kHz Nyquist: the
    # spectral statistics stop at 0.45 x 16 kHz = 7.2 kHz, so the noise still reads
    # flat and 95 % of its power lies below 0.95 x 7.2 kHz; 10 kHz is above 11.025 kHz
    assert table["rolloff_hz"].between(6500.0, 7200.0).all()
    np.testing.assert_allclose(table["flatness_db"], WHITE_FLATNESS_DB, atol=0.3)
    assert table["third_10000"].isna().all()
    assert abs(table["stereo_width"].iloc[0]) < 0.5
    with pytest.raises(DataError):
        crowdstats.statistics_table(clips.drop(columns="path"), sr=SR)



def test_realism_plots_draw_what_they_return():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crowdnb.plots import plot_realism_gaps, plot_realism_spectra, plot_realism_statistics

    rng = np.random.default_rng(12)
    thirds = {f"third_{int(round(f))}": rng.normal(-15, 3, 8)
              for f in crowdstats.THIRD_OCTAVE_NOMINAL_HZ}
    stats = {s: rng.normal(0, 1, 8) for s in STATISTICS}
    synth = pd.DataFrame({"clip_id": np.repeat(["s0", "s1"], 4), "label": ["joy", "anger"] * 4,
                          **stats, **thirds})
    real = synth.assign(clip_id=np.repeat(["r0", "r1"], 4), centroid_hz=synth["centroid_hz"] - 5)
    panels = plot_realism_spectra(synth, real, classes=["joy", "anger"])
    assert len(panels) == 2 and panels[0].get_xscale() == "log"
    # per class: synthetic median, real median, one thin line per real clip
    assert len(panels[0].lines) == 2 + 2
    boxes = plot_realism_statistics(synth, real, classes=["joy", "anger"],
                                    statistics=["centroid_hz", "flatness_db"])
    assert len(boxes) == 2 and len(boxes[0].patches) == 4
    comparison = compare(synth, real, classes=["joy", "anger"])
    bars = plot_realism_gaps(comparison)
    assert set(bars) == {"joy", "anger"}
    widths = [p.get_width() for p in bars["joy"].patches]
    joy = comparison[comparison["label"] == "joy"].dropna(subset=["cliffs_delta"])
    np.testing.assert_allclose(widths, joy["cliffs_delta"])
    assert max(widths) == pytest.approx(1.0)       # centroid: every synthetic value above
    plt.close("all")


# ---------------------------------------------------------------------------
# Voices and claps (issue 27)


def _cents(a: float, b: float) -> float:
    return 1200.0 * abs(math.log2(a / b))


@pytest.mark.parametrize("f0", [110.0, 220.0, 650.0])
def test_pitch_of_a_harmonic_tone(f0):
    t = _t(2.0)
    # a voice-like tone: the fundamental and two weaker harmonics, over faint noise
    y = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3)) + 0.3 * _noise(2.0)
    row = block_statistics(y, SR).iloc[0]
    assert _cents(row["pitch_hz"], f0) < 20.0
    assert row["voiced_share"] > 0.9
    assert row["pitch_spread_st"] < 0.2


def test_pitch_spread_of_two_notes_an_octave_apart():
    t = _t(2.0)
    f0 = np.where(t < 1.0, 200.0, 400.0)
    y = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SR)
    row = block_statistics(y, SR).iloc[0]
    # half the frames at each note: the interquartile range spans the octave
    assert row["pitch_spread_st"] == pytest.approx(12.0, abs=0.5)


def test_noise_is_unvoiced_and_has_no_tones():
    row = block_statistics(_noise(2.0), SR).iloc[0]
    assert row["voiced_share"] < 0.1
    assert row["tonal_rate_hz"] == 0.0
    assert abs(row["clap_kurtosis"]) < 0.5


def test_whistle_bursts_counted_as_tones():
    t = _t(4.0)
    # 2.5 kHz whistles of 200 ms, two per second, 10 dB above the noise
    gate = ((t % 0.5) < 0.2).astype(float)
    y = _noise(4.0) + 0.1 * math.sqrt(20.0) * gate * np.sin(2 * np.pi * 2500.0 * t)
    rates = block_statistics(y, SR)["tonal_rate_hz"]
    assert rates.to_numpy() == pytest.approx(2.0, abs=0.5)


def test_clicks_at_a_known_rate():
    y = 1e-3 * _noise(4.0)
    y[(np.arange(0.05, 4.0, 1 / 12.0) * SR).astype(int)] = 1.0   # 12 clicks per second
    stats = block_statistics(y, SR)
    assert stats["clap_rate_hz"].to_numpy() == pytest.approx(12.0, abs=0.5)
    assert (stats["clap_kurtosis"] > 50.0).all()


def test_vowel_centroid_of_two_formant_tones():
    t = _t(2.0)
    # equal power at 500 Hz and 1500 Hz ("formants"); a 5 kHz tone lies outside the band
    y = 0.3 * (np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 1500 * t)
               + np.sin(2 * np.pi * 5000 * t))
    row = block_statistics(y, SR).iloc[0]
    assert row["vowel_centroid_hz"] == pytest.approx(1000.0, rel=0.03)
