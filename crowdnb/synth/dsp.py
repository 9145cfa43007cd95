"""Signal-processing helpers shared by the synthesizer's sources.

Everything here is vectorised: long signals are shaped in the frequency domain
(one FFT), envelopes and contours live at a low *control rate* and are
interpolated to the audio rate, impulsive sources are sparse pulse trains
convolved with a kernel. No per-sample Python loop.

Levels follow one convention throughout the package: an amplitude of 1.0 RMS
is 94 dB SPL (1 Pa), so that a source is specified by its sound pressure level
at 1 m, as acoustics papers report them, and distances act as ``1 / r``.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.signal

__all__ = [
    "CTRL_RATE",
    "REF_SPL_DB",
    "spl_to_amp",
    "db_to_amp",
    "rms",
    "shaped_noise",
    "ctrl_length",
    "ctrl_to_audio",
    "smooth_noise",
    "telegraph",
    "butter_sos",
    "resonator_sos",
    "peaking_sos",
    "add_at",
    "fade",
    "sosfilt",
    "scatter_kernels",
]

#: Control rate of envelopes and pitch contours, in Hz (5 ms resolution).
CTRL_RATE = 200.0
#: Sound pressure level of an amplitude of 1.0 RMS, in dB SPL (1 Pa).
REF_SPL_DB = 94.0


def db_to_amp(db):
    """Amplitude ratio of a level difference in dB."""
    return 10.0 ** (np.asarray(db, dtype=float) / 20.0)


def spl_to_amp(spl_db):
    """RMS amplitude of a sound pressure level (dB SPL; 1.0 is 94 dB SPL)."""
    return db_to_amp(np.asarray(spl_db, dtype=float) - REF_SPL_DB)


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal (0.0 for an empty one)."""
    x = np.asarray(x, dtype=float)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def shaped_noise(
    rng: np.random.Generator,
    n: int,
    sr: int,
    freqs_hz,
    levels_db,
    *,
    level: float = 1.0,
) -> np.ndarray:
    """Gaussian noise with a prescribed power spectrum.

    Parameters
    ----------
    rng : np.random.Generator
    n : int >= 0
        Number of samples.
    sr : int > 0
        Sample rate in Hz.
    freqs_hz, levels_db : array-like [shape=(k,)]
        Spectrum level (dB, any reference) at increasing frequencies. The
        level is interpolated linearly in dB over log-frequency and held
        constant beyond the ends.
    level : float >= 0
        RMS of the result.

    Returns
    -------
    y : np.ndarray [shape=(n,)]
    """
    if n <= 0:
        return np.zeros(0)
    m = scipy.fft.next_fast_len(n, real=True)
    nf = m // 2 + 1
    # single precision halves the cost of the longest FFTs; the result is far
    # more precise than the 16-bit files it ends up in
    spec = rng.standard_normal(2 * nf, dtype=np.float32).view(np.complex64)
    f = np.fft.rfftfreq(m, 1.0 / sr).astype(np.float32)
    gain_db = np.interp(np.log(np.maximum(f, 1.0)), np.log(np.asarray(freqs_hz, float)),
                        np.asarray(levels_db, float))
    spec *= (10.0 ** (gain_db / 20.0)).astype(np.float32)
    spec[0] = 0.0
    y = scipy.fft.irfft(spec, m)[:n].astype(np.float64)
    r = rms(y)
    return y * (level / r) if r > 0 else y


def ctrl_length(n: int, sr: int) -> int:
    """Number of control-rate points covering ``n`` audio samples (both ends)."""
    return int(np.ceil(n / sr * CTRL_RATE)) + 2


def ctrl_to_audio(ctrl: np.ndarray, n: int, sr: int, *, start: int = 0) -> np.ndarray:
    """Interpolate a control-rate contour linearly to ``n`` audio samples from sample ``start``."""
    pos = np.arange(start, start + n, dtype=np.float64) * (CTRL_RATE / sr)
    return np.interp(pos, np.arange(len(ctrl), dtype=np.float64), np.asarray(ctrl, dtype=float))


def smooth_noise(rng: np.random.Generator, n: int, *, cutoff_hz: float,
                 rate: float = CTRL_RATE) -> np.ndarray:
    """Unit-variance Gaussian noise low-passed at ``cutoff_hz`` (a slow random process).

    Used for drifts: pitch wander, level swells, tempo drift. ``n`` samples at
    ``rate`` Hz.
    """
    cutoff_hz = min(cutoff_hz, 0.45 * rate)
    warm = int(np.ceil(3.0 * rate / cutoff_hz))
    white = rng.standard_normal(n + warm)
    sos = butter_sos(2, (cutoff_hz,), "lowpass", rate)
    y = scipy.signal.sosfilt(sos, white)[warm:]
    s = float(np.std(y))
    return y / s if s > 0 else y


def telegraph(
    rng: np.random.Generator,
    n: int,
    *,
    on_fraction: float,
    mean_on_s: float,
    fade_s: float = 0.5,
    rate: float = CTRL_RATE,
) -> np.ndarray:
    """A random on/off activity envelope in [0, 1] at control rate.

    Alternating on and off episodes with exponentially distributed durations
    (mean ``mean_on_s`` on, chosen off so that the expected share of time on
    is ``on_fraction``), with raised-cosine fades of ``fade_s``. This is how
    crowd activities come and go: an applause, a wave of booing, a chant.
    """
    if on_fraction >= 0.999:
        return np.ones(n)
    if on_fraction <= 0.001:
        return np.zeros(n)
    mean_off_s = mean_on_s * (1.0 - on_fraction) / on_fraction
    env = np.zeros(n)
    on = rng.random() < on_fraction
    pos = 0
    # the first episode is a residual one (the clip starts at a random moment)
    first = True
    while pos < n:
        mean = mean_on_s if on else mean_off_s
        length = rng.exponential(mean) * (rng.random() if first else 1.0)
        first = False
        k = max(1, int(round(length * rate)))
        if on:
            env[pos:pos + k] = 1.0
        pos += k
        on = not on
    k = max(1, int(round(fade_s * rate)))
    if k > 1:
        win = np.hanning(k + 2)[1:-1]
        env = np.convolve(env, win / win.sum(), mode="same")
    return np.clip(env, 0.0, 1.0)


@functools.lru_cache(maxsize=256)
def butter_sos(order: int, freqs: tuple, btype: str, sr: float) -> np.ndarray:
    """Butterworth second-order sections, with corner frequencies kept below Nyquist."""
    nyq = sr / 2.0
    wn = [min(max(f, 1.0), 0.95 * nyq) / nyq for f in freqs]
    return scipy.signal.butter(order, wn if len(wn) > 1 else wn[0], btype=btype, output="sos")


def resonator_sos(freqs_hz: np.ndarray, bws_hz: np.ndarray, sr: float) -> np.ndarray:
    """Cascade of two-pole resonators with unity gain at 0 Hz (Klatt 1980).

    Parameters
    ----------
    freqs_hz, bws_hz : np.ndarray [shape=(k,)]
        Centre frequencies and 3 dB bandwidths in Hz.

    Returns
    -------
    sos : np.ndarray [shape=(k, 6)]
    """
    freqs = np.minimum(np.asarray(freqs_hz, float), 0.45 * sr)
    r = np.exp(-np.pi * np.asarray(bws_hz, float) / sr)
    a1 = -2.0 * r * np.cos(2.0 * np.pi * freqs / sr)
    a2 = r * r
    sos = np.zeros((len(freqs), 6))
    sos[:, 0] = 1.0 + a1 + a2
    sos[:, 3] = 1.0
    sos[:, 4] = a1
    sos[:, 5] = a2
    return sos


def peaking_sos(f0_hz: float, gain_db: float, q: float, sr: float) -> np.ndarray:
    """One peaking-equaliser biquad (Bristow-Johnson's cookbook) as a [1, 6] sos."""
    f0_hz = min(f0_hz, 0.45 * sr)
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * f0_hz / sr
    alpha = np.sin(w0) / (2.0 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def high_shelf_sos(f0_hz: float, gain_db: float, sr: float) -> np.ndarray:
    """One high-shelf biquad (Bristow-Johnson's cookbook, slope 1) as a [1, 6] sos:
    unity below ``f0_hz``, ``gain_db`` well above, half of it at ``f0_hz``."""
    f0_hz = min(f0_hz, 0.45 * sr)
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * f0_hz / sr
    cw, alpha = np.cos(w0), np.sin(w0) / np.sqrt(2.0)
    sa = 2.0 * np.sqrt(a) * alpha
    b = a * np.array([(a + 1) + (a - 1) * cw + sa, -2 * ((a - 1) + (a + 1) * cw),
                      (a + 1) + (a - 1) * cw - sa])
    den = np.array([(a + 1) - (a - 1) * cw + sa, 2 * ((a - 1) - (a + 1) * cw),
                    (a + 1) - (a - 1) * cw - sa])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def add_at(out: np.ndarray, x: np.ndarray, start: int) -> None:
    """Add ``x`` into ``out`` from sample ``start``, clipping at both ends (in place)."""
    if start >= len(out) or start + len(x) <= 0:
        return
    a = max(start, 0)
    b = min(start + len(x), len(out))
    out[a:b] += x[a - start:b - start]


def fade(n: int, attack: int, release: int) -> np.ndarray:
    """An envelope of ``n`` samples with raised-cosine attack and release."""
    env = np.ones(n)
    attack = min(attack, n)
    release = min(release, n - attack)
    if attack > 0:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    if release > 0:
        env[n - release:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, release + 1) / release)
    return env


_FLOOR = np.random.default_rng(20240101).standard_normal(8192) * 1e-24


def sosfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfilt`` for signals that may hold long silences.

    An IIR filter fed with exact zeros decays into subnormal numbers, on which
    floating-point arithmetic is a hundred times slower; a fixed noise floor
    at -480 dB keeps the state normal (and is far below 16-bit resolution).
    """
    x = np.asarray(x, dtype=float)
    reps = int(np.ceil(len(x) / len(_FLOOR)))
    return scipy.signal.sosfilt(sos, x + np.tile(_FLOOR, reps)[: len(x)])


def scatter_kernels(
    n: int,
    onsets: np.ndarray,
    amps: np.ndarray,
    bank: np.ndarray,
    which: np.ndarray | None = None,
    *,
    chunk: int = 1 << 21,
) -> np.ndarray:
    """Place a kernel from ``bank`` at each onset, scaled by its amplitude.

    Parameters
    ----------
    n : int
        Output length in samples.
    onsets : np.ndarray [shape=(k,)]
        Sample indices (int).
    amps : np.ndarray [shape=(k,)]
    bank : np.ndarray [shape=(b, L)]
        Kernels (each event may use a different one: every clap or footstep
        sounds a little different).
    which : np.ndarray [shape=(k,)], optional
        Kernel index per onset (default 0).

    Sparse events are cheaper to scatter than to convolve: the cost is the
    number of events times the kernel length, not the signal length.
    """
    onsets = np.asarray(onsets, dtype=np.int64)
    amps = np.asarray(amps, dtype=float)
    bank = np.atleast_2d(bank)
    which = np.zeros(len(onsets), np.int64) if which is None else np.asarray(which, np.int64)
    keep = (onsets > -bank.shape[1]) & (onsets < n) & (amps != 0)
    onsets, amps, which = onsets[keep], amps[keep], which[keep]
    length = bank.shape[1]
    out = np.zeros(n + 2 * length)
    step = max(1, chunk // length)
    offs = np.arange(length)
    for a in range(0, len(onsets), step):
        o = onsets[a:a + step]
        idx = (o[:, None] + length + offs[None, :]).ravel()
        w = (amps[a:a + step, None] * bank[which[a:a + step]]).ravel()
        out += np.bincount(idx, weights=w, minlength=len(out))
    return out[length:length + n]
