"""Crowd-sound statistics per block: how a synthetic corpus differs from real crowds.

A crowd class is told apart less by any single sound than by a handful of
long-term statistics: where the power lies (spectral centroid, roll-off, the
one-third-octave spectrum), how noise-like it is (spectral flatness), what
rhythm its envelope has (modulation spectrum: chants 1-2 Hz, clapping
2-6 Hz, syllables 3-6 Hz), how much its loudness moves (momentary loudness
spread, loudness range), how often something starts (onset rate), how wide
the sound field is (stereo side/mid ratio), and what the voices do: the
crowd's pitch and its spread, how often a scream or whistle rises above it,
where the vowel formants lie (the /u/ of a boo against the /a/ of a cheer),
and how dense the claps are.

:func:`block_statistics` measures them on every 2 s block of one clip (the
same cutting as :func:`crowdnb.audio.split_blocks`), :func:`clip_statistics`
on a whole clip, :func:`statistics_table` on a collection of files, and
:func:`compare` sets a synthetic table beside a real one class by class with
a scale-free gap, Cliff's delta. Every statistic except ``level_db`` is
invariant to the overall gain: each block is brought to unit RMS before it is
measured.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal

from .audio import _check_sr as _audio_check_sr
from .audio import _ffmpeg_exe, _read_ffmpeg, _read_soundfile, _SOUNDFILE_EXTENSIONS, \
    load_clip, split_blocks
from .config import AudioConfig
from .errors import AudioError, DataError, ParameterError

__all__ = ["STATISTICS", "THIRD_OCTAVE_NOMINAL_HZ", "block_statistics", "clip_statistics",
           "third_octave_spectrum", "statistics_table", "compare", "cliffs_delta"]

_AUDIO = AudioConfig()

#: The compared statistics, in the order the figures show them: name -> description (unit).
STATISTICS: dict[str, str] = {
    "centroid_hz": "spectral centroid, 20 Hz-20 kHz (Hz)",
    "rolloff_hz": "95 % spectral roll-off (Hz)",
    "flatness_db": "spectral flatness, 20 Hz-16 kHz (dB; white noise -2.5)",
    "mod_1_2": "envelope modulation depth 1-2 Hz, chants (dB)",
    "mod_2_4": "envelope modulation depth 2-4 Hz, clapping (dB)",
    "mod_4_8": "envelope modulation depth 4-8 Hz, syllables (dB)",
    "mod_8_16": "envelope modulation depth 8-16 Hz (dB)",
    "loudness_std_lu": "std of momentary loudness within the block (LU)",
    "loudness_range_lu": "loudness range of the clip, EBU Tech 3342 (LU)",
    "onset_rate_hz": "onsets per second (1/s)",
    "stereo_width": "stereo side/mid energy ratio (dB)",
    "pitch_hz": "median pitch of the voiced frames, 70-1000 Hz (Hz)",
    "pitch_spread_st": "spread of that pitch, interquartile range (semitones)",
    "voiced_share": "share of 40 ms frames with a clear pitch",
    "tonal_rate_hz": "screams and whistles: starts of strong tones above 500 Hz (1/s)",
    "vowel_centroid_hz": "centroid of the 200 Hz-3 kHz band, the vowel formants (Hz)",
    "clap_rate_hz": "transients in the 2-8 kHz envelope, claps and bangs (1/s)",
    "clap_kurtosis": "excess kurtosis of the 2-8 kHz band: sparse claps > 0, dense applause ~ 0",
}
# Statistics measured once per clip (repeated on each of its blocks in the table);
# compare() counts each clip once for them.
_CLIP_LEVEL = {"loudness_range_lu"}

#: Nominal centres of the one-third-octave bands, 25 Hz - 16 kHz (IEC 61260), Hz.
THIRD_OCTAVE_NOMINAL_HZ = (25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500,
                           630, 800, 1000, 1250, 1600, 2000, 2500, 3150, 4000, 5000, 6300,
                           8000, 10000, 12500, 16000)
# Exact base-10 centres 1000 * 10^(k/10), k = -16 .. 12.
_THIRD_CENTRES = 1000.0 * 10.0 ** (np.arange(-16, 13) / 10.0)
_THIRD_COLUMNS = [f"third_{int(round(f))}" for f in THIRD_OCTAVE_NOMINAL_HZ]

_MOD_BANDS = ((1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0))
_MOD_COLUMNS = [f"mod_{int(lo)}_{int(hi)}" for lo, hi in _MOD_BANDS]
_FLOOR_DB = -60.0          # modulation depth and stereo width floor
_SPECTRUM_FLOOR_DB = -120.0  # one-third-octave level floor, dB re total
_FRAME_S = 0.046           # ~46 ms spectral frames (2048 samples at 44.1 kHz)
_ENVELOPE_HOP_S = 0.010    # envelope sample period: 100 Hz envelope rate
_ENVELOPE_BAND_HZ = (100.0, 8000.0)
_MOMENTARY_S, _MOMENTARY_HOP_S = 0.4, 0.1   # EBU R128 momentary loudness
_SHORT_TERM_S, _SHORT_TERM_HOP_S = 3.0, 0.1  # EBU Tech 3342 short-term loudness
_ONSET_HOP = 512
_PITCH_SR = 8000            # pitch is tracked on the clip resampled to 8 kHz
_PITCH_FRAME_S = 0.040      # 40 ms frames (two periods of 50 Hz) every 20 ms
_PITCH_RANGE_HZ = (70.0, 1000.0)
_VOICED_CLARITY = 0.45      # normalised autocorrelation peak of a voiced frame
_TONAL_BAND_HZ = (500.0, 5000.0)
_TONAL_PROMINENCE_DB = 20.0  # a spectral peak this far above the band's median is a tone
_CLAP_BAND_HZ = (2000.0, 8000.0)
_CLAP_HOP_S = 0.002         # 2 ms envelope of the clap band
_CLAP_THRESHOLD = 2.5       # a transient: envelope above 2.5 x its block median
_CLAP_MIN_GAP_S = 0.015


# ---------------------------------------------------------------------------
# Input checks


def _check_sr(sr) -> int:
    sr = _audio_check_sr(sr)
    if sr < 8000:
        raise ParameterError(f"sr={sr} Hz is too low for crowd statistics (at least 8000 Hz)")
    return int(sr)


def _as_channels(y) -> np.ndarray:
    """``y`` as float64 of shape (n, channels)."""
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    elif y.ndim != 2:
        raise ParameterError(f"y must have shape (n,) or (n, channels), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"y must hold floating-point samples, got dtype {y.dtype}")
    if y.shape[1] > 8 and y.shape[0] <= 8:
        raise ParameterError(f"y has shape {y.shape}: samples run along axis 0, "
                             "shape (n, channels) as soundfile returns; transpose it")
    if not np.isfinite(y).all():
        raise ParameterError("y holds NaN or infinite samples")
    return np.asarray(y, dtype=np.float64)


# ---------------------------------------------------------------------------
# Spectra


def _frame_length(sr: int) -> int:
    return int(2 ** round(math.log2(_FRAME_S * sr)))  # 2048 at 44.1 and 48 kHz


def _band_power(freqs: np.ndarray, psd: np.ndarray, edges_lo, edges_hi) -> np.ndarray:
    """Power of ``psd [..., n_freq]`` between band edges, integrating the PSD linearly.

    The cumulative power is interpolated at each edge, so a band narrower than a
    frequency bin still gets its share of that bin.
    """
    df = freqs[1] - freqs[0]
    # Bin k covers [f_k - df/2, f_k + df/2]: cumulative power at the bins' upper edges.
    upper = freqs + df / 2.0
    cum = np.concatenate([np.zeros(psd.shape[:-1] + (1,)), np.cumsum(psd * df, axis=-1)], -1)
    grid = np.concatenate([[upper[0] - df], upper])

    def at(f):
        idx = np.clip(np.searchsorted(grid, f) - 1, 0, grid.size - 2)
        frac = np.clip((f - grid[idx]) / df, 0.0, 1.0)
        return cum[..., idx] + frac * (cum[..., idx + 1] - cum[..., idx])

    return at(np.asarray(edges_hi)) - at(np.asarray(edges_lo))


def _third_octave_psd(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    # ~0.37 s segments: 2.7 Hz bins at 44.1 kHz, fine enough for the 25 Hz band (5.8 Hz wide).
    nperseg = min(int(2 ** math.ceil(math.log2(0.3 * sr))), x.shape[-1])
    return scipy.signal.welch(x, fs=sr, window="hann", nperseg=nperseg, axis=-1)


def _third_octave_levels(freqs: np.ndarray, psd: np.ndarray, sr: int) -> np.ndarray:
    lo = _THIRD_CENTRES * 10.0 ** (-1 / 20)
    hi = _THIRD_CENTRES * 10.0 ** (1 / 20)
    power = _band_power(freqs, psd, lo, hi)
    valid = hi <= sr / 2.0
    total = power[..., valid].sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = 10.0 * np.log10(np.maximum(power / total, 10 ** (_SPECTRUM_FLOOR_DB / 10)))
    levels = np.where(valid, levels, np.nan)
    return np.where(total > 0, levels, np.nan)


def third_octave_spectrum(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Long-term one-third-octave band levels of a block or a clip, re its total power.

    The Welch power spectrum (Hann, ~0.37 s segments, half overlap) of the mono
    mix is integrated over each band (edges ``f_c * 10^(+-1/20)``), the bands
    from 25 Hz to 16 kHz. Levels are in dB re the total power of the bands
    that fit below ``sr / 2``, so they sum (in power) to 0 dB and do not depend
    on the gain. A band whose upper edge lies above ``sr / 2`` is NaN; a band
    holding no power reads -120 dB.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)]
        The signal, full scale 1.0; channels are averaged.
    sr : int > 0
        Sample rate, Hz.

    Returns
    -------
    centres_hz : np.ndarray [shape=(29,)]
        Exact band centres ``1000 * 10^(k/10)``, Hz (nominal values in
        :data:`THIRD_OCTAVE_NOMINAL_HZ`).
    levels_db : np.ndarray [shape=(29,)]
        Band levels, dB re total (NaN for bands above Nyquist, all NaN for silence).
    """
    sr = _check_sr(sr)
    x = _as_channels(y).mean(axis=1)
    if x.size < 2:
        raise ParameterError(f"y holds {x.size} sample(s); a spectrum needs more")
    freqs, psd = _third_octave_psd(x, sr)
    return _THIRD_CENTRES.copy(), _third_octave_levels(freqs, psd, sr)


def _spectral_shape(blocks: np.ndarray, sr: int, top_hz: float) -> dict[str, np.ndarray]:
    """Centroid, roll-off and mean frame flatness of each block [n_blocks, n]."""
    nperseg = _frame_length(sr)
    freqs, _, spec = scipy.signal.spectrogram(blocks, fs=sr, window="hann", nperseg=nperseg,
                                              noverlap=nperseg // 2, axis=-1, mode="psd")
    # spec: [n_blocks, n_freq, n_frames]; its mean over frames is Welch's estimate.
    band = (freqs >= 20.0) & (freqs <= min(20000.0, top_hz))
    psd = spec.mean(axis=-1)[:, band]
    f = freqs[band]
    total = psd.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        centroid = (psd * f).sum(axis=-1) / total
        cum = np.cumsum(psd, axis=-1) / total[:, None]
    rolloff = f[np.minimum((cum < 0.95).sum(axis=-1), f.size - 1)]
    rolloff = np.where(total > 0, rolloff, np.nan)

    flat_band = (freqs >= 20.0) & (freqs <= min(16000.0, top_hz))
    frames = spec[:, flat_band, :]
    # A floor 200 dB below each block's peak keeps log() finite on exact zeros.
    floor = 1e-20 * frames.max(axis=(1, 2), keepdims=True) + 1e-300
    log_geo = np.log(frames + floor).mean(axis=1)
    arith = (frames + floor).mean(axis=1)
    flatness = 10.0 * (log_geo - np.log(arith)) / math.log(10.0)   # [n_blocks, n_frames]
    flatness = np.where(total[:, None] > 0, flatness, np.nan)
    return {"centroid_hz": centroid, "rolloff_hz": rolloff,
            "flatness_db": np.nanmean(flatness, axis=-1) if flatness.size else
            np.full(blocks.shape[0], np.nan)}


# ---------------------------------------------------------------------------
# Envelope modulation


@functools.lru_cache(maxsize=8)
def _envelope_sos(sr: int) -> np.ndarray:
    high = min(_ENVELOPE_BAND_HZ[1], 0.45 * sr)
    return scipy.signal.butter(4, [_ENVELOPE_BAND_HZ[0], high], btype="bandpass", fs=sr,
                               output="sos")


def _modulation_depths(band_blocks: np.ndarray, sr: int) -> np.ndarray:
    """Modulation depth in each octave band of modulation frequency, dB [n_blocks, 4]."""
    hop = int(round(_ENVELOPE_HOP_S * sr))
    n_env = band_blocks.shape[1] // hop
    frames = band_blocks[:, :n_env * hop].reshape(band_blocks.shape[0], n_env, hop)
    env = np.sqrt((frames ** 2).mean(axis=-1))      # RMS every 10 ms
    mean = env.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = env / mean - 1.0                          # relative envelope, mean 0
    window = scipy.signal.get_window("hann", n_env)
    spec = np.abs(np.fft.rfft(m * window, axis=-1)) ** 2
    # One-sided power spectrum scaled so that a sinusoid of amplitude a sums to a^2 / 2
    # over its bins (the window's noise power removed): depth of 0 dB = mean-square 1.
    spec /= n_env * (window ** 2).sum() / 2.0
    freqs = np.fft.rfftfreq(n_env, d=hop / sr)
    out = np.empty((band_blocks.shape[0], len(_MOD_BANDS)))
    for j, (lo, hi) in enumerate(_MOD_BANDS):
        power = spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=-1)
        with np.errstate(divide="ignore"):
            out[:, j] = np.maximum(10.0 * np.log10(power), _FLOOR_DB)
    out[~np.isfinite(mean[:, 0]) | (mean[:, 0] <= 0)] = np.nan
    return out


# ---------------------------------------------------------------------------
# Loudness


@functools.lru_cache(maxsize=8)
def _k_weighting(sr: int) -> tuple[tuple[np.ndarray, np.ndarray, float], ...]:
    import pyloudnorm

    # The BS.1770-4 K-weighting that crowdnb.audio measures with ("DeMan": the standard's
    # 48 kHz coefficients, re-derived at other rates).
    meter = pyloudnorm.Meter(sr, filter_class="DeMan")
    return tuple((f.b, f.a, f.passband_gain) for f in meter._filters.values())


def _k_weighted(x: np.ndarray, sr: int) -> np.ndarray:
    """K-weighted signal, x of shape (n, channels)."""
    for b, a, gain in _k_weighting(sr):
        x = gain * scipy.signal.lfilter(b, a, x, axis=0)
    return x


def _windowed_power(z2: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Mean of ``z2 [..., n]`` over windows of ``win`` samples every ``hop``, along the last axis."""
    n = z2.shape[-1]
    if n < win:
        return np.zeros(z2.shape[:-1] + (0,))
    cum = np.concatenate([np.zeros(z2.shape[:-1] + (1,)), np.cumsum(z2, axis=-1)], axis=-1)
    starts = np.arange(0, n - win + 1, hop)
    return (cum[..., starts + win] - cum[..., starts]) / win


def _loudness_std(kw_blocks: np.ndarray, sr: int) -> np.ndarray:
    """Std of momentary loudness within each block [n_blocks, n] of summed channel power."""
    power = _windowed_power(kw_blocks, int(round(_MOMENTARY_S * sr)),
                            int(round(_MOMENTARY_HOP_S * sr)))
    peak = power.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        # No absolute gate (it would tie the value to the gain): windows more than 60 LU
        # below the block's loudest are held at that floor, silence included.
        lk = 10.0 * np.log10(np.maximum(power, peak * 1e-6))
    std = lk.std(axis=-1) if lk.shape[-1] else np.full(kw_blocks.shape[0], np.nan)
    return np.where(peak[:, 0] > 0, std, np.nan)


def _loudness_range(kw_power: np.ndarray, sr: int) -> float:
    """EBU Tech 3342 loudness range of a clip from its summed K-weighted power (n,)."""
    power = _windowed_power(kw_power, int(round(_SHORT_TERM_S * sr)),
                            int(round(_SHORT_TERM_HOP_S * sr)))
    if power.size == 0:
        return float("nan")
    with np.errstate(divide="ignore"):
        st = -0.691 + 10.0 * np.log10(power)
    st = st[st > -70.0]                                   # absolute gate
    if st.size == 0:
        return float("nan")
    relative = -0.691 + 10.0 * np.log10(np.mean(10.0 ** ((st + 0.691) / 10.0))) - 20.0
    st = st[st > relative]                                # relative gate, -20 LU
    low, high = np.percentile(st, [10.0, 95.0])
    return float(high - low)


# ---------------------------------------------------------------------------
# Onsets


def _onset_rates(mono: np.ndarray, sr: int, starts: np.ndarray, block_len: int) -> np.ndarray:
    """Onsets per second in each block of the (unit-free) mono clip.

    The mel power spectrogram (librosa defaults: 2048-point frames, 128 bands)
    is computed once for the clip, every 512 samples; each block takes the
    frames centred inside it, in dB re its own peak (80 dB range), and runs
    librosa's spectral-flux onset envelope and default peak picking on them.
    """
    import librosa

    mono = np.ascontiguousarray(mono, dtype=np.float32)
    mel = librosa.feature.melspectrogram(y=mono, sr=sr, hop_length=_ONSET_HOP)
    centres = np.arange(mel.shape[1]) * _ONSET_HOP
    rates = np.full(starts.size, np.nan)
    for i, start in enumerate(starts):
        frames = mel[:, (centres >= start) & (centres < start + block_len)]
        peak = frames.max() if frames.size else 0.0
        if peak <= 0:
            continue
        log_mel = librosa.power_to_db(frames, ref=peak, amin=peak * 1e-10, top_db=80.0)
        envelope = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=_ONSET_HOP)
        onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr,
                                            hop_length=_ONSET_HOP, backtrack=False)
        rates[i] = len(onsets) / (block_len / sr)
    return rates


# ---------------------------------------------------------------------------
# Voices and claps

_VOICE_COLUMNS = ["pitch_hz", "pitch_spread_st", "voiced_share", "tonal_rate_hz",
                  "vowel_centroid_hz", "clap_rate_hz", "clap_kurtosis"]


def _frame_pitch(frames: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (Hz) and clarity of frames [..., n] by normalised autocorrelation."""
    n = frames.shape[-1]
    x = frames - frames.mean(axis=-1, keepdims=True)
    spec = np.fft.rfft(x, 2 * n, axis=-1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=-1)[..., :n]
    # unbiased by the overlap at each lag, normalised by the zero lag
    ac = ac / np.maximum(n - np.arange(n), 1) * n
    zero = ac[..., :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(zero > 0, ac / zero, 0.0)
    lo = int(np.floor(sr / _PITCH_RANGE_HZ[1]))
    hi = min(int(np.ceil(sr / _PITCH_RANGE_HZ[0])), n // 2)
    window = r[..., lo:hi + 1]
    # every multiple of the period peaks as high as the period itself: take the
    # first local maximum within 90 % of the highest (McLeod & Wyvill 2005)
    best = window.max(axis=-1, keepdims=True)
    inner = np.zeros(window.shape, bool)
    inner[..., 1:-1] = (window[..., 1:-1] >= window[..., :-2]) & (window[..., 1:-1] > window[..., 2:])
    candidate = inner & (window >= 0.9 * best)
    k = np.where(candidate.any(axis=-1), np.argmax(candidate, axis=-1), np.argmax(window, axis=-1))
    clarity = np.take_along_axis(window, k[..., None], axis=-1)[..., 0]
    # parabolic interpolation of the peak for sub-sample lags
    km, kp = np.clip(k - 1, 0, window.shape[-1] - 1), np.clip(k + 1, 0, window.shape[-1] - 1)
    a = np.take_along_axis(window, km[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(window, kp[..., None], axis=-1)[..., 0]
    denom = a - 2 * clarity + b
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - b) / denom, 0.0)
    lag = lo + k + np.clip(shift, -0.5, 0.5)
    return sr / lag, clarity


def _voice_statistics(mono: np.ndarray, sr: int, *, n_blocks: int, block_len: int,
                      hop_len: int, top_hz: float) -> dict[str, np.ndarray]:
    """Pitch, tones, vowel centroid and claps of each block (see :func:`block_statistics`)."""
    out = {c: np.full(n_blocks, np.nan) for c in _VOICE_COLUMNS}
    # pitch, at 8 kHz: the harmonics that set a voice's period lie below 4 kHz
    g = math.gcd(int(sr), _PITCH_SR)
    low = scipy.signal.resample_poly(mono, _PITCH_SR // g, int(sr) // g)
    frame = int(round(_PITCH_FRAME_S * _PITCH_SR))
    step = frame // 2
    f0, clarity = _frame_pitch(np.lib.stride_tricks.sliding_window_view(low, frame)[::step],
                               _PITCH_SR) if low.size >= frame else (np.zeros(0), np.zeros(0))
    energy = (np.lib.stride_tricks.sliding_window_view(low, frame)[::step] ** 2).mean(axis=-1) \
        if low.size >= frame else np.zeros(0)
    centres = (np.arange(f0.size) * step + frame / 2) / _PITCH_SR
    # the clap band, every 2 ms
    clap_hi = min(_CLAP_BAND_HZ[1], 0.45 * sr, top_hz)
    clap_band = scipy.signal.sosfilt(scipy.signal.butter(
        4, [_CLAP_BAND_HZ[0], clap_hi], btype="bandpass", fs=sr, output="sos"), mono)
    clap_hop = int(round(_CLAP_HOP_S * sr))
    nperseg = _frame_length(sr)
    for i in range(n_blocks):
        start = i * hop_len
        t0, t1 = start / sr, (start + block_len) / sr
        sel = (centres >= t0) & (centres < t1)
        loud = energy[sel] > 1e-4 * max(energy[sel].max(initial=0.0), 1e-30)
        voiced = (clarity[sel] > _VOICED_CLARITY) & loud
        if sel.any():
            out["voiced_share"][i] = voiced.mean()
        if voiced.sum() >= 1:
            pitches = f0[sel][voiced]
            out["pitch_hz"][i] = np.median(pitches)
            if voiced.sum() >= 3:
                q1, q3 = np.percentile(12.0 * np.log2(pitches), [25, 75])
                out["pitch_spread_st"][i] = q3 - q1
        block = mono[start:start + block_len]
        if not np.any(block):
            continue
        freqs, _, spec = scipy.signal.spectrogram(block, fs=sr, window="hann",
                                                  nperseg=nperseg, noverlap=nperseg // 2)
        band = (freqs >= _TONAL_BAND_HZ[0]) & (freqs <= min(_TONAL_BAND_HZ[1], top_hz))
        if band.any():
            level = 10.0 * np.log10(spec[band] + 1e-30)
            tonal = level.max(axis=0) - np.median(level, axis=0) > _TONAL_PROMINENCE_DB
            runs = tonal[1:] & tonal[:-1]                  # two frames or more
            starts = runs & ~np.concatenate([[False], runs[:-1]])
            out["tonal_rate_hz"][i] = starts.sum() / (block_len / sr)
        formant = (freqs >= 200.0) & (freqs <= 3000.0)
        psd = spec[formant].mean(axis=-1)
        if psd.sum() > 0:
            out["vowel_centroid_hz"][i] = (psd * freqs[formant]).sum() / psd.sum()
        cb = clap_band[start:start + block_len]
        n_env = cb.size // clap_hop
        env = np.sqrt((cb[:n_env * clap_hop].reshape(n_env, clap_hop) ** 2).mean(axis=-1))
        med = np.median(env)
        if med > 0:
            peaks, _ = scipy.signal.find_peaks(
                env, height=_CLAP_THRESHOLD * med,
                distance=max(1, int(round(_CLAP_MIN_GAP_S / _CLAP_HOP_S))))
            out["clap_rate_hz"][i] = peaks.size / (block_len / sr)
        var = cb.var()
        if var > 0:
            out["clap_kurtosis"][i] = ((cb - cb.mean()) ** 4).mean() / var ** 2 - 3.0
    return out


# ---------------------------------------------------------------------------
# Public measurements


def block_statistics(y: np.ndarray, sr: int, *, block_s: float = _AUDIO.block_s,
                     hop_s: float = _AUDIO.hop_s, max_hz: float | None = None) -> pd.DataFrame:
    """The crowd statistics of every block of a clip, one row per block.

    Blocks are cut as :func:`crowdnb.audio.split_blocks` cuts them (``block_s``
    every ``hop_s``, a trailing part shorter than a block unused) from the mono
    mix (channels averaged); the clip is not band-limited first, each statistic
    keeps to its own band. Each block is scaled to unit RMS before it is
    measured, so every statistic but ``level_db`` is independent of the gain.

    Columns (all float):

    ``start_s``
        Block start, s.
    ``centroid_hz``
        Centroid of the block's Welch power spectrum (Hann, 2048-sample
        segments at 44.1/48 kHz, ~46 ms, half overlap), 20 Hz - min(20 kHz,
        sr/2, max_hz), Hz.
    ``rolloff_hz``
        Frequency below which 95 % of that band's power lies, Hz.
    ``flatness_db``
        Mean over the same frames of the spectral flatness (geometric over
        arithmetic mean of the frame's power spectrum, 20 Hz - min(16 kHz, sr/2, max_hz)),
        dB <= 0. White noise reads -2.5 dB (``-gamma * 10 / ln 10``, the
        exponential spread of periodogram bins), a pure tone below -60 dB.
    ``mod_1_2``, ``mod_2_4``, ``mod_4_8``, ``mod_8_16``
        Modulation depth of the broadband envelope in the octave bands
        [1, 2), [2, 4), [4, 8), [8, 16) Hz of modulation frequency, dB: the
        envelope is the RMS of the 100 Hz - 8 kHz band (4th-order Butterworth)
        in 10 ms frames, divided by its mean, minus 1; its Hann-windowed power
        spectrum is summed over each band, scaled so that a full sinusoidal
        modulation ``1 + sin(2 pi f t)`` reads -3 dB. Floor -60 dB.
    ``loudness_std_lu``
        Standard deviation of the momentary loudness (EBU R128: K-weighted
        BS.1770-4, channels summed, 400 ms windows every 100 ms) within the
        block, LU. No absolute gate; windows more than 60 LU below the
        block's loudest are held at that floor.
    ``onset_rate_hz``
        Onsets per second, 1/s: ``librosa.onset.onset_detect`` with its
        default spectral-flux envelope and peak picking, on the mel frames
        (2048-point, every 512 samples, computed once for the clip) centred
        in the block, in dB re the block's peak.
    ``stereo_width``
        ``10 log10(E[(L-R)^2] / E[(L+R)^2])`` over the block, dB, floored at
        -60 dB (identical channels); 0 dB for independent channels of equal
        power. NaN unless the input has exactly two channels.
    ``pitch_hz``, ``pitch_spread_st``, ``voiced_share``
        Pitch of the crowd's voices: the clip is resampled to 8 kHz and cut
        into 40 ms frames every 20 ms; a frame is voiced when its normalised
        autocorrelation peaks above 0.45 at a lag of 1-14.3 ms (70 Hz -
        1 kHz, parabolic interpolation). The median pitch of the block's
        voiced frames (Hz), their interquartile range (semitones; NaN with
        fewer than 3 voiced frames) and the voiced share of the frames.
    ``tonal_rate_hz``
        Screams and whistles: starts per second of runs of at least two
        spectral frames (~46 ms, half overlap) whose strongest peak in
        500 Hz - 5 kHz stands 20 dB above that band's median level.
    ``vowel_centroid_hz``
        Centroid of the 200 Hz - 3 kHz band of the block's spectrum, Hz:
        the region of the first two formants, low for /u/ (boos, "ooh"),
        high for /a/, /e/ and /i/ (cheers, "hey").
    ``clap_rate_hz``, ``clap_kurtosis``
        Claps and other transients: the 2-8 kHz band's RMS envelope every
        2 ms, and the peaks that exceed 2.5 times its block median at least
        15 ms apart, per second; and the excess kurtosis of the band-passed
        block (0 for Gaussian noise, where dense applause tends; large for
        a few clappers or clicks).
    ``level_db``
        The block's RMS (mono mix), dBFS: for reference; it follows the gain.

    A silent block gets NaN statistics and ``level_db = -inf``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)]
        The clip, samples along axis 0 (as ``soundfile.read`` returns them),
        full scale 1.0.
    sr : int >= 8000
        Sample rate, Hz.
    block_s, hop_s : float > 0
        Block length and hop, s.
    max_hz : float > 20, optional
        Highest frequency the recording really holds, Hz, when it is lower
        than ``sr / 2`` (a file resampled up from a lower rate): the spectral
        statistics stop there, so that an empty band above a recording's own
        Nyquist frequency does not read as a property of the crowd (it would
        pull the flatness towards -inf). Default ``sr / 2``.

    Returns
    -------
    pd.DataFrame
        One row per block, columns as above; no rows when the clip is
        shorter than one block.

    Raises
    ------
    ParameterError
        For a signal of another shape, non-float or non-finite samples, or a
        bad ``sr``, ``block_s`` or ``hop_s``.
    """
    sr = _check_sr(sr)
    top_hz = sr / 2.0
    if max_hz is not None:
        if isinstance(max_hz, bool) or not isinstance(max_hz, (int, float, np.number)) \
                or not math.isfinite(max_hz) or max_hz <= 20.0:
            raise ParameterError(f"max_hz must be a frequency above 20 Hz, got {max_hz!r}")
        top_hz = min(top_hz, float(max_hz))
    x = _as_channels(y)
    mono = x.mean(axis=1)
    split = split_blocks(mono, sr, block_s=block_s, hop_s=hop_s)
    columns = (["start_s", "centroid_hz", "rolloff_hz", "flatness_db"] + _MOD_COLUMNS
               + ["loudness_std_lu", "onset_rate_hz", "stereo_width"] + _VOICE_COLUMNS
               + ["level_db"])
    n_blocks, block_len = split.blocks.shape
    if n_blocks == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    hop_len = int(round(hop_s * sr))

    def cut(signal: np.ndarray) -> np.ndarray:
        # split_blocks' cutting (it takes float32 mono); kept in float64 here
        return np.lib.stride_tricks.sliding_window_view(signal, block_len, axis=0)[::hop_len]

    blocks = cut(mono)[:n_blocks]                            # [n_blocks, block_len]
    rms = np.sqrt((blocks ** 2).mean(axis=-1))
    with np.errstate(divide="ignore"):
        level_db = 20.0 * np.log10(rms)
    scale = np.where(rms > 0, 1.0 / np.where(rms > 0, rms, 1.0), 0.0)[:, None]
    unit = blocks * scale

    out = {"start_s": split.starts_s.astype(float)}
    out.update(_spectral_shape(unit, sr, top_hz))
    band = scipy.signal.sosfilt(_envelope_sos(sr), mono)
    mods = _modulation_depths(cut(band)[:n_blocks] * scale, sr)
    for j, name in enumerate(_MOD_COLUMNS):
        out[name] = mods[:, j]
    kw_power = (_k_weighted(x, sr) ** 2).sum(axis=1)
    out["loudness_std_lu"] = _loudness_std(cut(kw_power)[:n_blocks], sr)
    out["onset_rate_hz"] = _onset_rates(mono, sr, np.arange(n_blocks) * hop_len, block_len)
    if x.shape[1] == 2:
        side = cut(x[:, 0] - x[:, 1])[:n_blocks]
        mid = cut(x[:, 0] + x[:, 1])[:n_blocks]
        es, em = (side ** 2).sum(axis=-1), (mid ** 2).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            width = np.maximum(10.0 * np.log10(es / em), _FLOOR_DB)
        out["stereo_width"] = np.where(em + es > 0, width, np.nan)
    else:
        out["stereo_width"] = np.full(n_blocks, np.nan)
    out.update(_voice_statistics(mono, sr, n_blocks=n_blocks, block_len=block_len,
                                 hop_len=hop_len, top_hz=top_hz))
    out["level_db"] = level_db
    table = pd.DataFrame(out)[columns]
    silent = rms <= 0
    table.loc[silent, columns[1:-1]] = np.nan
    return table


def clip_statistics(y: np.ndarray, sr: int, *, block_s: float = _AUDIO.block_s,
                    hop_s: float = _AUDIO.hop_s) -> dict:
    """Statistics of a whole clip: its loudness range and how many blocks it has.

    The loudness range is EBU Tech 3342's LRA: short-term loudness
    (K-weighted BS.1770-4, channels summed, 3 s windows every 0.1 s, the
    Tech 3342 rate of at least 10 per second), an absolute gate at -70 LUFS
    and a relative gate 20 LU below the power mean of what passes it, then the
    spread between the 10th and the 95th percentile. The absolute gate is the
    standard's; it only removes near-silence, so the value does not depend on
    the gain for any clip louder than about -60 LUFS.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)]
        The clip, samples along axis 0, full scale 1.0.
    sr : int >= 8000
        Sample rate, Hz.
    block_s, hop_s : float > 0
        Block length and hop used to count the blocks, s.

    Returns
    -------
    dict
        ``loudness_range_lu`` (LU; NaN for clips shorter than 3 s or silent),
        ``n_blocks`` (int), ``duration_s`` (s).
    """
    sr = _check_sr(sr)
    x = _as_channels(y)
    n_blocks = len(split_blocks(x.mean(axis=1), sr, block_s=block_s, hop_s=hop_s).starts_s)
    kw_power = (_k_weighted(x, sr) ** 2).sum(axis=1)
    return {"loudness_range_lu": _loudness_range(kw_power, sr), "n_blocks": int(n_blocks),
            "duration_s": x.shape[0] / sr}


# ---------------------------------------------------------------------------
# Collections


def _load_channels(path: Path, sr: int) -> tuple[np.ndarray, int, int]:
    """Samples (n, channels) at ``sr``, the file's own rate and channel count."""
    exe = _ffmpeg_exe()
    data = None
    try:
        if path.suffix.lower() in _SOUNDFILE_EXTENSIONS or exe is None:
            try:
                data, file_sr = _read_soundfile(path)
            except AudioError:
                if exe is None:
                    raise
                data, file_sr = _read_ffmpeg(path, exe)   # mp3/ogg variants libsndfile rejects
        else:
            data, file_sr = _read_ffmpeg(path, exe)
    except AudioError:
        data = None
    if data is None or data.size == 0 or not np.isfinite(data).all():
        # load_clip's checks give the reason (or, where it reads, its mono samples)
        y, _ = load_clip(path, sr=sr)
        return y[:, None].astype(np.float64), sr, 1
    channels = data.shape[1]
    x = np.asarray(data, dtype=np.float64)
    if file_sr != sr:
        import soxr

        n_out = -(-x.shape[0] * sr // file_sr)
        x = soxr.resample(x, file_sr, sr, quality="soxr_hq")
        x = x[:n_out] if x.shape[0] >= n_out else np.pad(x, ((0, n_out - x.shape[0]), (0, 0)))
    return x, int(file_sr), int(channels)


def statistics_table(clips: pd.DataFrame, *, sr: int = _AUDIO.sr,
                     progress: bool = False) -> pd.DataFrame:
    """Block statistics of every clip of a collection, one row per block.

    Each file is read with its channels (libsndfile; ffmpeg for what
    libsndfile cannot read; :func:`crowdnb.audio.load_clip`'s mono mix as a
    last resort) and resampled to ``sr`` with soxr "HQ" when its rate differs.
    A file recorded at a lower rate holds nothing above its own Nyquist
    frequency: its spectral statistics stop at ``0.45 x`` its rate (see
    ``max_hz`` of :func:`block_statistics`); its one-third-octave levels are
    kept as they are (the empty bands read low, as they sound).

    Parameters
    ----------
    clips : pd.DataFrame
        Columns ``clip_id``, ``label``, ``path`` (absolute), optionally ``event_id``.
    sr : int >= 8000
        Rate every clip is measured at, Hz.
    progress : bool
        Show a tqdm bar over the clips.

    Returns
    -------
    pd.DataFrame
        ``clip_id``, ``label`` (and ``event_id``), ``sample_rate`` (the
        file's own, Hz), ``channels`` (the file's), ``block`` (index in the
        clip), the columns of :func:`block_statistics`, ``loudness_range_lu``
        (the clip's, repeated on each of its blocks) and ``third_<centre>``
        (one-third-octave levels of the block, dB re total, centre = the
        nominal frequency rounded to whole Hz). A clip shorter than one block
        has no rows.

    Raises
    ------
    DataError
        When a column is missing or a path is not absolute.
    AudioError
        When a file cannot be read (the message names it).
    """
    sr = _check_sr(sr)
    missing = {"clip_id", "label", "path"} - set(clips.columns)
    if missing:
        raise DataError(f"clips table lacks column(s) {sorted(missing)}")
    rows = clips.itertuples(index=False)
    if progress:
        from tqdm import tqdm  # not tqdm.auto: it warns inside notebooks

        rows = tqdm(rows, total=len(clips), desc="crowd statistics", unit="clip")
    has_event = "event_id" in clips.columns
    tables = []
    for row in rows:
        path = Path(os.fspath(row.path))
        if not path.is_absolute():
            raise DataError(f"clip {row.clip_id}: path {path} is not absolute")
        x, file_sr, channels = _load_channels(path, sr)
        # soxr "HQ" passes up to ~0.91 of the file's Nyquist frequency
        max_hz = 0.45 * file_sr if file_sr < sr else None
        stats = block_statistics(x, sr, max_hz=max_hz)
        if stats.empty:
            continue
        mono = x.mean(axis=1)
        split = split_blocks(mono, sr)
        freqs, psd = _third_octave_psd(np.asarray(split.blocks, dtype=np.float64), sr)
        thirds = pd.DataFrame(_third_octave_levels(freqs, psd, sr), columns=_THIRD_COLUMNS)
        head = {"clip_id": row.clip_id, "label": row.label}
        if has_event:
            head["event_id"] = row.event_id
        head.update(sample_rate=file_sr, channels=channels)
        block = pd.DataFrame({**head, "block": np.arange(len(stats))})
        clip = clip_statistics(x, sr)
        tables.append(pd.concat([block, stats,
                                 pd.DataFrame({"loudness_range_lu":
                                               np.full(len(stats), clip["loudness_range_lu"])}),
                                 thirds], axis=1))
    if not tables:
        return pd.DataFrame(columns=["clip_id", "label", "sample_rate", "channels", "block",
                                     *STATISTICS, *_THIRD_COLUMNS])
    return pd.concat(tables, ignore_index=True)


# ---------------------------------------------------------------------------
# Comparison


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's delta ``P(a > b) - P(a < b)`` over all pairs, in [-1, 1] (NaN if one is empty).

    NaN values are left out. Computed by sorting: O((m + n) log n).
    """
    a = np.asarray(a, dtype=float)
    b = np.sort(np.asarray(b, dtype=float)[~np.isnan(b)])
    a = a[~np.isnan(a)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    below = np.searchsorted(b, a, side="left")          # b < a
    above = b.size - np.searchsorted(b, a, side="right")  # b > a
    return float((below.sum() - above.sum()) / (a.size * b.size))


def _iqr(v: np.ndarray) -> float:
    return float(np.subtract(*np.percentile(v, [75.0, 25.0]))) if v.size else float("nan")


def compare(synthetic: pd.DataFrame, real: pd.DataFrame, *, classes,
            statistics=None) -> pd.DataFrame:
    """Synthetic against real block statistics, class by class, with Cliff's delta.

    Parameters
    ----------
    synthetic, real : pd.DataFrame
        :func:`statistics_table` outputs (``clip_id``, ``label`` and the statistics).
    classes : sequence of str
        The labels to compare.
    statistics : sequence of str, optional
        Columns to compare; default the keys of :data:`STATISTICS` present in
        both tables (``third_<centre>`` columns may be given too).

    Returns
    -------
    pd.DataFrame
        One row per class x statistic: ``label``, ``statistic``,
        ``synthetic_median``, ``real_median``, ``synthetic_iqr``, ``real_iqr``,
        ``n_synthetic_blocks``, ``n_real_clips``, ``n_real_blocks`` (non-NaN
        values; clips for clip-level statistics such as ``loudness_range_lu``,
        which count each clip once), ``cliffs_delta`` (``P(synth > real) -
        P(synth < real)``, scale-free, in [-1, 1]), ``rank`` (1 = largest
        ``|delta|`` within the class) and ``note`` (why delta is NaN, else "").
        Sorted by class (in ``classes`` order), then rank.

    Raises
    ------
    DataError
        When a table lacks ``label``, ``clip_id`` or a requested statistic.
    """
    classes = [classes] if isinstance(classes, str) else list(classes)
    if statistics is None:
        statistics = [s for s in STATISTICS if s in synthetic.columns and s in real.columns]
    for name, table in (("synthetic", synthetic), ("real", real)):
        lacking = {"label", "clip_id", *statistics} - set(table.columns)
        if lacking:
            raise DataError(f"{name} table lacks column(s) {sorted(lacking)}")
    records = []
    for label in classes:
        s_cls, r_cls = synthetic[synthetic["label"] == label], real[real["label"] == label]
        for stat in statistics:
            s_tab, r_tab = s_cls, r_cls
            if stat in _CLIP_LEVEL:
                s_tab = s_cls.drop_duplicates("clip_id")
                r_tab = r_cls.drop_duplicates("clip_id")
            s = s_tab[stat].to_numpy(float)
            r = r_tab[stat].to_numpy(float)
            s_ok, r_ok = s[np.isfinite(s)], r[np.isfinite(r)]
            note = ""
            if s_ok.size == 0 or r_ok.size == 0:
                sides = [n for n, v in (("synthetic", s_ok), ("real", r_ok)) if v.size == 0]
                note = f"no {' and no '.join(sides)} values for {label}"
                if stat == "stereo_width":
                    note += " (mono audio has no stereo width)"
            records.append({
                "label": label, "statistic": stat,
                "synthetic_median": float(np.median(s_ok)) if s_ok.size else float("nan"),
                "real_median": float(np.median(r_ok)) if r_ok.size else float("nan"),
                "synthetic_iqr": _iqr(s_ok), "real_iqr": _iqr(r_ok),
                "n_synthetic_blocks": int(s_ok.size),
                "n_real_clips": int(r_tab.loc[np.isfinite(r), "clip_id"].nunique()),
                "n_real_blocks": int(r_ok.size),
                "cliffs_delta": cliffs_delta(s_ok, r_ok) if not note else float("nan"),
                "note": note,
            })
    table = pd.DataFrame.from_records(records)
    if table.empty:
        return table.assign(rank=pd.Series(dtype=int))
    table["_abs"] = table["cliffs_delta"].abs()
    table["_cls"] = table["label"].map({c: i for i, c in enumerate(classes)})
    table = table.sort_values(["_cls", "_abs"], ascending=[True, False], na_position="last",
                              kind="stable")
    table["rank"] = table.groupby("label").cumcount() + 1
    cols = ["label", "rank", "statistic", "synthetic_median", "real_median", "synthetic_iqr",
            "real_iqr", "cliffs_delta", "n_synthetic_blocks", "n_real_clips", "n_real_blocks",
            "note"]
    return table[cols].reset_index(drop=True)
