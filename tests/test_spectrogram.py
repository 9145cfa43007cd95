"""Tests of crowdnb.spectrogram (PSD level, mel bands, colours, images) and its plots.

Levels are checked in dB against what a signal of known power must give;
frequencies in Hz and mel bands; colours against MATLAB's jet formula.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.signal  # noqa: E402

from crowdnb import ParameterError  # noqa: E402
from crowdnb.config import ImageConfig, PreprocessConfig  # noqa: E402
from crowdnb.plots import plot_gallery, plot_spectrogram, plot_waveform  # noqa: E402
from crowdnb.spectrogram import (  # noqa: E402
    FREQ_SCALES,
    band_edges,
    colormap_palette,
    hop_length,
    hz_to_mel,
    matlab_jet,
    mel_filterbank,
    mel_psd_db,
    mel_to_hz,
    hz_to_scale,
    render_image,
    scale_to_hz,
    spectrogram_image,
    to_image,
)

SR = 44100
RATES = [16000, 22050, 32000, 44100, 48000]


def noise(sigma, duration_s=2.0, sr=SR, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(duration_s * sr)) * sigma).astype(
        np.float32
    )


def sine(freq_hz, duration_s=2.0, sr=SR, amplitude=0.1):
    t = np.arange(int(duration_s * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def band_edges_hz(sr, n_mels=128, fmin=20.0, fmax=20000.0):
    fmax = min(fmax, sr / 2)
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


def time_average_db(S_db):
    """Level of each band averaged over frames in power (not in dB, which is biased)."""
    return 10 * np.log10(np.mean(10 ** (S_db.astype(np.float64) / 10), axis=1))


# ---------------------------------------------------------------------------
# mel scale, hop and filter bank


def test_mel_scale_puts_1000_mel_at_1000_hz():
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.05)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel([20.0, 440.0, 20000.0])), [20, 440, 20000])


@pytest.mark.parametrize("sr, hop", [(44100, 198), (48000, 216), (22050, 99), (16000, 72)])
def test_hop_of_4_5_ms_rounds_to_whole_samples(sr, hop):
    assert hop_length(sr, 0.0045) == hop


@pytest.mark.parametrize("sr", RATES)
def test_every_mel_band_holds_an_fft_bin_at_default_settings(sr):
    weights = mel_filterbank(sr)  # n_fft=2048, n_mels=128
    assert weights.shape == (128, 1025) and weights.dtype == np.float64
    assert ((weights > 0).sum(axis=1) >= 1).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    # No weight outside the band: below fmin or above min(fmax, Nyquist). A bin
    # that falls exactly on the top edge (Nyquist at 16 kHz) may keep a
    # rounding residue of the triangle's zero (~1e-16), nothing more.
    freqs = np.arange(1025) * sr / 2048
    outside = weights[:, (freqs <= 20.0) | (freqs >= min(20000.0, sr / 2))]
    assert np.abs(outside).max() <= 1e-12


def test_filters_are_triangles_centred_on_the_htk_mel_grid():
    # Band k rises from edge k to its centre k + 1 and falls to edge k + 2, with
    # edges equally spaced in HTK mel (1000 Hz = 1000 mel) from 20 Hz to 20 kHz.
    weights = mel_filterbank(SR)
    edges = band_edges_hz(SR)
    freqs = np.arange(1025) * SR / 2048
    for k in range(128):
        lo, centre, hi = edges[k], edges[k + 1], edges[k + 2]
        expected = np.clip(np.minimum((freqs - lo) / (centre - lo), (hi - freqs) / (hi - centre)),
                           0, None)
        np.testing.assert_allclose(weights[k], expected / expected.sum(), atol=1e-9)


def test_too_coarse_fft_is_refused_with_a_remedy():
    with pytest.raises(ParameterError, match=r"n_fft=512 .*use n_fft >= \d+"):
        mel_filterbank(SR, n_fft=512, n_mels=128)


# ---------------------------------------------------------------------------
# mel_psd_db: level, frequency, shape


def test_frames_follow_matlab_framing():
    S = mel_psd_db(noise(0.1), SR)
    assert S.shape == (128, 1 + (2 * SR - 400) // 198) == (128, 444)
    assert S.dtype == np.float32


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("sigma", [0.01, 0.1])
def test_white_noise_reads_its_density_in_every_band(sr, sigma):
    expected_db = 10 * np.log10(2 * sigma**2 / sr)  # one-sided PSD, dB re 1/Hz
    level = time_average_db(mel_psd_db(noise(sigma, sr=sr), sr))
    assert np.abs(level - expected_db).max() <= 1.5
    assert abs(np.median(level) - expected_db) <= 0.2


def test_scaling_matches_a_one_sided_density_periodogram():
    # scipy's 'density' scaling is MATLAB's psd scaling; the mel bands average it.
    y = noise(0.05, seed=3)
    _, _, P = scipy.signal.spectrogram(
        y.astype(np.float64), fs=SR, window=scipy.signal.windows.hamming(400, sym=True),
        nperseg=400, noverlap=400 - 198, nfft=2048, detrend=False, scaling="density",
        mode="psd",
    )
    expected = 10 * np.log10(mel_filterbank(SR) @ P)
    np.testing.assert_allclose(mel_psd_db(y, SR), expected, atol=0.01)


@pytest.mark.parametrize("freq_hz", [1000.0, 4000.0])
def test_sine_peaks_in_the_band_that_contains_it(freq_hz):
    level = time_average_db(mel_psd_db(sine(freq_hz), SR))
    edges = band_edges_hz(SR)
    band = int(np.argmax(level))
    assert edges[band] < freq_hz < edges[band + 2]
    nearest = int(np.argmin(np.abs(hz_to_mel(edges[1:-1]) - hz_to_mel(freq_hz))))
    assert band == nearest
    # Far from the tone (below 200 Hz) the level is down by more than the Hamming
    # window's highest side lobe (-43 dB).
    assert level[edges[1:-1] < 200].max() < level[band] - 43


# ---------------------------------------------------------------------------
# the other frequency scales (the ablations)


@pytest.mark.parametrize("scale", list(FREQ_SCALES))
def test_every_scale_inverts_and_increases(scale):
    f = np.geomspace(20.0, 20000.0, 50)
    position = hz_to_scale(f, scale)
    assert np.all(np.diff(position) > 0)
    np.testing.assert_allclose(scale_to_hz(position, scale), f, rtol=1e-9)


def test_scales_have_their_textbook_values():
    # ERB-rate of 1 kHz: 15.6 (Glasberg and Moore); 1 kHz is 8.5 bark (Traunmueller);
    # mel 1000 at 1 kHz; a decade of Hz is one unit of log10.
    assert hz_to_scale(1000.0, "erb") == pytest.approx(15.62, abs=0.01)
    assert hz_to_scale(1000.0, "bark") == pytest.approx(8.53, abs=0.01)
    assert hz_to_scale(1000.0, "mel") == pytest.approx(1000.0, abs=0.5)
    assert hz_to_scale(1000.0, "log") - hz_to_scale(100.0, "log") == pytest.approx(1.0)
    edges = band_edges(10, 100.0, 1100.0, "linear")
    np.testing.assert_allclose(np.diff(edges), 1000.0 / 11)


@pytest.mark.parametrize("scale", list(FREQ_SCALES))
def test_every_scale_fills_every_band_and_reads_white_noise_flat(scale):
    # A band narrower than an FFT bin (log and ERB below ~100 Hz) interpolates
    # between bins instead of being empty, so a flat density stays flat.
    weights = mel_filterbank(SR, freq_scale=scale)
    assert weights.shape == (128, 1025)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    sigma = 0.05
    level = time_average_db(mel_psd_db(noise(sigma), SR, freq_scale=scale))
    assert abs(np.median(level) - 10 * np.log10(2 * sigma**2 / SR)) <= 0.3


@pytest.mark.parametrize("scale", ["bark", "erb", "log", "linear"])
def test_a_tone_peaks_in_its_band_on_every_scale(scale):
    level = time_average_db(mel_psd_db(sine(3000.0), SR, freq_scale=scale))
    edges = band_edges(128, 20.0, 20000.0, scale)
    band = int(np.argmax(level))
    assert edges[band] < 3000.0 < edges[band + 2]


def test_the_scales_spend_their_bands_differently():
    # Bands below 500 Hz: most on the log axis, fewest on the linear one.
    below = {s: int((band_edges(128, 20.0, 20000.0, s)[1:-1] < 500).sum()) for s in FREQ_SCALES}
    assert below["log"] > below["erb"] > below["mel"] > below["linear"]
    assert below["linear"] <= 3


def test_mel_stays_librosas_filters():
    assert np.array_equal(mel_filterbank(SR), mel_filterbank(SR, freq_scale="mel"))
    with pytest.raises(ParameterError, match="freq_scale"):
        mel_filterbank(SR, freq_scale="semitone")
    with pytest.raises(ParameterError, match="log frequency scale"):
        mel_filterbank(SR, fmin=0.0, freq_scale="log")


def test_silence_is_floored_not_minus_infinity():
    S = mel_psd_db(np.zeros(2 * SR, np.float32), SR)
    assert np.isfinite(S).all() and S.max() == pytest.approx(-200.0)


def test_fmax_above_nyquist_is_lowered():
    S = mel_psd_db(noise(0.1, sr=22050), 22050)
    assert S.shape[0] == 128
    level = time_average_db(S)
    assert np.abs(level - 10 * np.log10(2 * 0.01 / 22050)).max() <= 1.5


@pytest.mark.parametrize(
    "kwargs, name",
    [({"n_fft": 256}, "n_fft"), ({"win_length": 0}, "win_length"), ({"frame_hop_s": -1.0}, "frame_hop_s"),
     ({"fmin": 30000.0}, "fmin"), ({"n_mels": 0}, "n_mels")],
)
def test_mel_psd_db_validates(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        mel_psd_db(noise(0.1), SR, **kwargs)


def test_block_shorter_than_a_window_is_refused():
    with pytest.raises(ParameterError, match="win_length"):
        mel_psd_db(np.zeros(100, np.float32), SR)


# ---------------------------------------------------------------------------
# colours


def test_jet_is_matlabs_formula():
    jet = matlab_jet(64)
    np.testing.assert_array_equal(jet[0], [0, 0, 0.5625])
    np.testing.assert_array_equal(jet[-1], [0.5, 0, 0])
    # jet(64)(i) = clip(1.5 - |4 i / 64 - c|, 0, 1), c = 3, 2, 1 for r, g, b (i = 1..64).
    x = np.arange(1, 65)[:, None] / 64
    np.testing.assert_allclose(jet, np.clip(1.5 - np.abs(4 * x - [3, 2, 1]), 0, 1), atol=1e-12)


def test_jet_of_other_lengths_keeps_matlab_shape():
    for n in (16, 65, 256):
        jet = matlab_jet(n)
        assert jet.shape == (n, 3) and jet.min() >= 0 and jet.max() <= 1
        assert jet[0, 0] == 0 and jet[-1, 2] == 0 and jet[0, 2] > 0.5 and jet[-1, 0] >= 0.5


def test_other_colormaps_come_from_matplotlib():
    palette = colormap_palette("viridis", 64)
    np.testing.assert_allclose(palette[0], matplotlib.colormaps["viridis"](0.0)[:3])
    with pytest.raises(ParameterError, match="colormap"):
        colormap_palette("no-such-map", 64)


# ---------------------------------------------------------------------------
# to_image, spectrogram_image


def test_to_image_quantises_to_the_palette_over_the_db_range():
    # One band per dB step over the range and beyond, constant in time.
    levels = np.linspace(-140.0, -12.0, 257)
    S = np.repeat(levels[:, None], 259, axis=1)
    image = to_image(S)
    assert image.shape == (257, 259, 3) and image.dtype == np.uint8
    palette = np.round(matlab_jet(64) * 255).astype(np.uint8)
    expected_index = np.clip(np.floor((levels + 130.0) / 108.0 * 64), 0, 63).astype(int)
    # Row 0 is the highest band.
    np.testing.assert_array_equal(image[::-1, 0], palette[expected_index])
    assert (image[-1] == palette[0]).all() and (image[0] == palette[-1]).all()


def test_per_image_scaling_spans_the_palette_whatever_the_level():
    S = np.linspace(-90, -60, 40 * 50).reshape(40, 50)
    quiet = to_image(S - 30.0, size=(40, 50), db_scaling="per_image")
    loud = to_image(S, size=(40, 50), db_scaling="per_image")
    palette = colormap_palette("jet", 64)
    assert np.array_equal(quiet, loud)  # a level shift does not change the picture
    top, bottom = np.round(palette[-1] * 255), np.round(palette[0] * 255)
    assert np.array_equal(loud[0, -1], top) and np.array_equal(loud[-1, 0], bottom)
    fixed = to_image(S, size=(40, 50))
    assert not np.array_equal(fixed, loud)
    with pytest.raises(ParameterError, match="db_scaling"):
        to_image(S, db_scaling="auto")
    flat = to_image(np.full((4, 4), -50.0), size=(4, 4), db_scaling="per_image")
    assert np.array_equal(flat[0, 0], bottom)


def test_to_image_resizes_on_the_db_grid():
    S = np.full((128, 444), -60.0)
    image = to_image(S)
    palette = np.round(matlab_jet(64) * 255).astype(np.uint8)
    assert image.shape == (257, 259, 3)
    assert (image == palette[int((-60 + 130) / 108 * 64)]).all()


def test_to_image_validates():
    with pytest.raises(ParameterError, match="db_range"):
        to_image(np.zeros((4, 4)), db_range=(-22.0, -130.0))
    with pytest.raises(ParameterError, match="NaN"):
        to_image(np.full((4, 4), np.nan))


def row_levels(image):
    """Mean jet palette index of each image row (nearest palette colour per pixel)."""
    palette = np.round(matlab_jet(64) * 255)
    distance = np.abs(image[:, :, None, :].astype(float) - palette[None, None]).sum(axis=-1)
    return np.argmin(distance, axis=-1).mean(axis=1)


def test_spectrogram_image_is_alexnet_sized_with_low_frequencies_at_the_bottom():
    low = spectrogram_image(sine(150.0), SR)
    high = spectrogram_image(sine(8000.0), SR)
    assert low.shape == high.shape == (227, 227, 3) and low.dtype == np.uint8
    low_rows, high_rows = row_levels(low), row_levels(high)
    low_row, high_row = int(np.argmax(low_rows)), int(np.argmax(high_rows))
    assert low_row > 2 * 227 // 3  # bottom third
    assert high_row < low_row
    expected = 227 * (1 - (hz_to_mel(8000) - hz_to_mel(20)) / (hz_to_mel(20000) - hz_to_mel(20)))
    assert abs(high_row - expected) <= 5  # rows: mel-linear frequency axis
    # The top third of the 150 Hz image is at least 20 colours (34 dB) below the tone.
    assert low_rows[: 227 // 3].max() <= low_rows[low_row] - 20


def test_render_image_equals_the_whole_chain():
    y = noise(0.05)
    np.testing.assert_array_equal(render_image(mel_psd_db(y, SR)), spectrogram_image(y, SR))
    config = PreprocessConfig.from_flat(colormap="gray", n_mels=64, n_fft=1024)
    picture = spectrogram_image(y, SR, config=config)
    assert picture.shape == (227, 227, 3)
    # The config's spectrogram and image settings are the ones used: the same
    # chain with them spelled out gives the same picture, and it differs from
    # the paper's settings.
    S = mel_psd_db(y, SR, win_length=400, frame_hop_s=0.0045, n_fft=1024, n_mels=64, fmin=20.0,
                   fmax=20000.0)
    assert S.shape[0] == 64
    np.testing.assert_array_equal(picture, render_image(S, image=ImageConfig(colormap="gray")))
    assert not np.array_equal(picture, spectrogram_image(y, SR))
    # A grey colormap draws grey pixels.
    assert (picture[..., 0] == picture[..., 1]).all() and (picture[..., 1] == picture[..., 2]).all()


def test_render_image_uses_the_image_config():
    # A dB grid constant at -60 dB is one colour: the one the config's range and
    # palette give it, at the config's output size.
    S = np.full((128, 444), -60.0)
    image = ImageConfig(db_low=-100.0, db_high=-20.0, n_colors=16, out_size=(100, 120))
    picture = render_image(S, image=image)
    assert picture.shape == (100, 120, 3) and picture.dtype == np.uint8
    palette = np.round(matlab_jet(16) * 255).astype(np.uint8)
    assert (picture == palette[int((-60 + 100) / 80 * 16)]).all()


# ---------------------------------------------------------------------------
# plots


def test_plot_waveform_draws_time_in_seconds():
    fig, ax = plt.subplots()
    line = plot_waveform(sine(440.0), SR, ax=ax)
    assert line.axes is ax and line.get_xdata()[-1] == pytest.approx(2.0, abs=1e-3)
    assert "s" in ax.get_xlabel()
    plt.close(fig)


def test_plot_spectrogram_has_hz_ticks_seconds_and_db_colourbar():
    fig, ax = plt.subplots()
    S = mel_psd_db(noise(0.05), SR)
    image = plot_spectrogram(S, SR, ax=ax)
    left, right, bottom, top = image.get_extent()
    assert left == pytest.approx(0.0, abs=0.01) and right == pytest.approx(2.0, abs=0.01)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "1k" in labels and "100" in labels
    assert bottom < hz_to_mel(20) + 20 and top > hz_to_mel(20000) - 20
    assert "dB" in image.colorbar.ax.get_ylabel()
    assert image.get_clim() == (-130.0, -22.0)
    plt.close(fig)


def test_plot_gallery_one_row_per_class(tmp_path):
    from PIL import Image

    images = [np.zeros((227, 227, 3), np.uint8)] * 3 + [tmp_path / "a.png"]
    Image.fromarray(np.full((227, 227, 3), 200, np.uint8)).save(images[-1])
    labels = ["joy", "anger", "joy", "neutral"]
    fig = plt.figure()
    axes = plot_gallery(images, labels, n_per_class=2, fig=fig)
    assert axes.shape == (3, 2)
    assert [row[0].get_ylabel() for row in axes] == ["anger", "joy", "neutral"]
    assert len(axes[1, 1].images) == 1 and len(axes[0, 1].images) == 0
    plt.close(fig)


def test_block_spectrum_is_the_filterbank_psd_unless_a_transform_is_registered(monkeypatch):
    # Every caller goes through block_spectrum: the filterbank scales give mel_psd_db's
    # grid exactly, and a registered transform replaces it for its name only.
    from crowdnb import spectrogram as sg
    from crowdnb.config import SpectrogramConfig

    block = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.01
    for scale in ("mel", "log"):
        config = SpectrogramConfig(freq_scale=scale)
        np.testing.assert_array_equal(sg.block_spectrum(block, 16000, spectrogram=config),
                                      sg.mel_psd_db(block, 16000, **config.to_dict()))
    monkeypatch.setitem(sg.TRANSFORMS, "log", lambda b, sr, c: np.full((3, 4), -50.0, np.float32))
    assert sg.block_spectrum(block, 16000, spectrogram=SpectrogramConfig(freq_scale="log")).shape == (3, 4)
    assert sg.block_spectrum(block, 16000).shape[0] == SpectrogramConfig().n_mels


def test_constant_q_white_noise_reads_the_psd_level_in_every_bin():
    # freq_scale="cqt" goes through block_spectrum like every representation; a white noise
    # of variance sigma^2 has a PSD of 2 sigma^2 / fs: the CQT reads it about 2 dB above that
    # (the median bin), so the paper's fixed dB range keeps its meaning. The lowest bins hold
    # only a few of their long windows in a 2 s block: they scatter by a few dB.
    from crowdnb.config import SpectrogramConfig
    from crowdnb.spectrogram import block_spectrum

    sr, sigma = 44100, 0.01
    noise = (sigma * np.random.default_rng(3).standard_normal(2 * sr)).astype(np.float32)
    S = block_spectrum(noise, sr, spectrogram=SpectrogramConfig(freq_scale="cqt"))
    assert S.shape[0] == SpectrogramConfig().n_mels and S.dtype == np.float32
    expected = 10 * np.log10(2 * sigma**2 / sr)
    level = 10 * np.log10((10 ** (S.astype(np.float64) / 10)).mean(axis=1))  # mean power per bin
    assert abs(np.median(level) - expected) < 2.5
    assert np.all(np.abs(level - expected) < 6.0)
    assert np.all(np.abs(level[len(level) // 4:] - expected) < 3.0)  # above ~150 Hz
    picture = spectrogram_image(noise, sr, config=PreprocessConfig.from_flat(freq_scale="cqt"))
    assert picture.shape == (227, 227, 3)
