"""Applause: the sum of many clappers, each with its own clap and its own rate.

What it imitates
----------------
* A clap is a burst of a few milliseconds whose spectrum has a broad peak set by
  the hand configuration: Repp (1987) measured peaks between about 1 and
  2.5 kHz (lower for cupped hands, higher for flat palms striking fingers).
  Each clapper here gets one configuration (a resonance drawn from
  0.8-2.6 kHz, Q 1.2-4) and each clap varies around it.
* Individual clapping rates: about 4 claps per second on average, individuals
  from about 3 to 6 per second, with inter-onset intervals varying by a few
  percent (Repp 1987). Tempo drifts slowly, so onsets of different clappers
  wander in and out of phase.
* Synchronised (rhythmic) applause: Néda et al. (2000) showed that when an
  audience synchronises, the clapping period roughly doubles (about half the
  free rate, ~2 claps/s), synchrony forms and dissolves over several seconds,
  and the spread of onsets stays tens of milliseconds. Here an episode
  envelope says how strongly the audience is synchronised; clappers join
  it in order of their willingness.
* A crowd of thousands cannot be rendered clap by clap: beyond the explicit
  clappers near the microphone the rest of the audience is noise with the
  mean clap spectrum, steady when the clapping is free and pulsed at the
  common beat when it is synchronised.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from .dsp import (
    CTRL_RATE,
    butter_sos,
    ctrl_to_audio,
    rms,
    scatter_kernels,
    shaped_noise,
    smooth_noise,
    spl_to_amp,
)

__all__ = ["CLAP_LEVEL_DB", "clap_kernels", "clapper_onsets", "applause", "applause_bed"]

#: Equivalent continuous level of one person clapping, dB SPL at 1 m (a single
#: clap peaks some 20 dB higher).
CLAP_LEVEL_DB = 78.0


def clap_kernels(rng: np.random.Generator, sr: int, *, center_hz: float, q: float,
                 count: int = 6, length_s: float = 0.02) -> np.ndarray:
    """Variants of one clapper's clap: a noise burst through the hand-cavity resonance.

    Returns
    -------
    bank : np.ndarray [shape=(count, L)]
        Unit-energy kernels (decay 2-6 ms, centre within ±10 % of ``center_hz``).
    """
    length = int(length_s * sr)
    t = np.arange(length) / sr
    bank = np.empty((count, length))
    for i in range(count):
        decay = rng.uniform(0.002, 0.006)
        burst = rng.standard_normal(length) * np.exp(-t / decay)
        ramp = max(1, int(0.0003 * sr))
        burst[:ramp] *= np.linspace(0.3, 1.0, ramp)
        fc = center_hz * rng.uniform(0.9, 1.1)
        # the hand cavity's resonance over a weaker broadband slap
        res = scipy.signal.sosfilt(_bandpass(fc, q, sr), burst)
        slap = scipy.signal.sosfilt(butter_sos(2, (300.0, min(9000.0, 0.45 * sr)), "bandpass", sr),
                                    burst)
        k = res / max(rms(res), 1e-12) + 0.35 * slap / max(rms(slap), 1e-12)
        bank[i] = k / np.sqrt(np.sum(k * k))
    return bank


def _bandpass(fc: float, q: float, sr: int) -> np.ndarray:
    """Constant-peak-gain band-pass biquad (Bristow-Johnson) as a [1, 6] sos."""
    w0 = 2.0 * np.pi * min(fc, 0.45 * sr) / sr
    alpha = np.sin(w0) / (2.0 * q)
    b = np.array([alpha, 0.0, -alpha])
    a = np.array([1.0 + alpha, -2.0 * np.cos(w0), 1.0 - alpha])
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def clapper_onsets(
    rng: np.random.Generator,
    duration_s: float,
    *,
    rate_hz: float,
    cv: float = 0.05,
    drift: float = 0.04,
) -> np.ndarray:
    """Free clapping: onset times (s) at ``rate_hz`` with interval jitter and tempo drift.

    ``cv`` is the coefficient of variation of successive intervals, ``drift``
    the standard deviation of the slow tempo change (fractions).
    """
    count = int(duration_s * rate_hz * 1.4) + 4
    m = int(duration_s * CTRL_RATE) + 4
    tempo = 1.0 + drift * smooth_noise(rng, m, cutoff_hz=0.2)
    iois = (1.0 / rate_hz) * (1.0 + cv * rng.standard_normal(count))
    t = rng.uniform(0.0, 1.0 / rate_hz) + np.concatenate([[0.0], np.cumsum(iois[:-1])])
    pos = np.clip((t * CTRL_RATE).astype(int), 0, m - 1)
    t = np.cumsum(np.diff(t, prepend=0.0) * tempo[pos])
    return t[t < duration_s]


def applause(
    rng: np.random.Generator,
    n: int,
    sr: int,
    *,
    n_clappers: int,
    activity: np.ndarray,
    distances_m: np.ndarray,
    rate_hz: float = 4.3,
    rate_sd_hz: float = 0.7,
    sync: np.ndarray | None = None,
    sync_rate_hz: float | None = None,
    beat_times: np.ndarray | None = None,
    level_db: float = CLAP_LEVEL_DB,
    ref_distance_m: float = 1.0,
) -> np.ndarray:
    """Explicit clappers at known distances.

    Parameters
    ----------
    n, sr : int
        Length in samples and sample rate (Hz).
    n_clappers : int >= 0
    activity : np.ndarray [shape=(m,)]
        Control-rate share of the clappers clapping (0-1): applause swells and fades.
    distances_m : np.ndarray [shape=(n_clappers,)]
        Each clapper's distance to the microphone.
    rate_hz, rate_sd_hz : float
        Mean and spread of the individual free clapping rates (Repp 1987).
    sync : np.ndarray [shape=(m,)], optional
        Control-rate synchrony strength (0 free, 1 everyone synchronised).
    sync_rate_hz : float, optional
        Rate of synchronised clapping (default: half the mean free rate, Néda et al. 2000).
    beat_times : np.ndarray, optional
        Beat onsets (s) to synchronise to instead of a free-running common beat
        (clapping along with a chant or a drum).
    level_db : float
        Equivalent level of one clapper at 1 m, dB SPL.
    ref_distance_m : float
        The distance the result is referred to (the caller applies ``1/r`` for it).

    Returns
    -------
    y : np.ndarray [shape=(n,)]
    """
    duration = n / sr
    m = len(activity)
    out_onsets, out_amps, out_which = [], [], []
    banks = []
    if sync_rate_hz is None:
        sync_rate_hz = rate_hz / 2.0
    common = None
    if sync is not None or beat_times is not None:
        if beat_times is None:
            common = clapper_onsets(rng, duration, rate_hz=sync_rate_hz, cv=0.01, drift=0.03)
        else:
            common = np.asarray(beat_times, float)
    for i in range(n_clappers):
        center = float(np.exp(rng.uniform(np.log(800.0), np.log(2600.0))))
        bank = clap_kernels(rng, sr, center_hz=center, q=float(rng.uniform(1.2, 4.0)), count=4)
        banks.append(bank)
        rate = float(np.clip(rng.normal(rate_hz, rate_sd_hz), 2.5, 7.0))
        free = clapper_onsets(rng, duration, rate_hz=rate, cv=rng.uniform(0.03, 0.07))
        willing = rng.random()
        if common is not None:
            s_free = (sync[np.clip((free * CTRL_RATE).astype(int), 0, m - 1)]
                      if sync is not None else np.ones(len(free)))
            free = free[s_free <= willing]
            synced = common + rng.normal(0.0, 0.02) + rng.normal(0.0, 0.012, len(common))
            synced = synced[(synced >= 0) & (synced < duration)]
            s_sync = (sync[np.clip((synced * CTRL_RATE).astype(int), 0, m - 1)]
                      if sync is not None else np.ones(len(synced)))
            # rhythmic claps are louder and fuller (Néda et al. 2000 note the
            # loss of loudness that makes audiences break synchrony again)
            onsets = np.concatenate([free, synced[s_sync > willing]])
        else:
            onsets = free
        if len(onsets) == 0:
            continue
        act = activity[np.clip((onsets * CTRL_RATE).astype(int), 0, m - 1)]
        # a clapper claps while the applause is on for them: the louder, the more clap
        keep = rng.random(len(onsets)) < np.sqrt(np.clip(act, 0.0, 1.0))
        onsets = onsets[keep]
        amps = np.exp(rng.normal(0.0, 0.25, len(onsets))) * ref_distance_m / distances_m[i]
        out_onsets.append((onsets * sr).astype(np.int64))
        out_amps.append(amps)
        out_which.append(4 * i + rng.integers(0, 4, len(onsets)))
    if not out_onsets:
        return np.zeros(n)
    bank = np.concatenate(banks, axis=0)
    y = scatter_kernels(n, np.concatenate(out_onsets), np.concatenate(out_amps), bank,
                        np.concatenate(out_which))
    # a kernel has unit energy: scale so that one clapper at `rate_hz` has the clap level
    return y * spl_to_amp(level_db) * np.sqrt(sr / rate_hz)


def applause_bed(
    rng: np.random.Generator,
    n: int,
    sr: int,
    *,
    activity: np.ndarray,
    level_db: np.ndarray | float,
    sync: np.ndarray | None = None,
    sync_rate_hz: float = 2.2,
    beat_times: np.ndarray | None = None,
    center_hz: float = 1500.0,
    spread_s: float = 0.03,
) -> np.ndarray:
    """The applause of an audience too large to render clap by clap.

    Noise with the average clap spectrum (a broad peak near ``center_hz``, the
    mean of the hand configurations), steady while clapping is free and pulsed
    at the common beat, with onsets spread by ``spread_s``, while the audience
    is synchronised.

    Parameters
    ----------
    activity : np.ndarray [shape=(m,)]
        Control-rate share of the audience clapping.
    level_db : float or np.ndarray [shape=(m,)]
        Level at the microphone when everyone claps, dB SPL.
    """
    freqs = np.array([100.0, 300.0, 600.0, center_hz, 4000.0, 8000.0, 16000.0, 20000.0])
    levels = np.array([-30.0, -12.0, -5.0, 0.0, -6.0, -14.0, -26.0, -36.0])
    y = shaped_noise(rng, n, sr, freqs, levels)
    m = len(activity)
    env = np.sqrt(np.clip(activity, 0.0, 1.0)) * spl_to_amp(np.broadcast_to(level_db, (m,)))
    env = env * (1.0 + 0.08 * smooth_noise(rng, m, cutoff_hz=3.0))
    y *= ctrl_to_audio(env, n, sr)
    if sync is not None and np.max(sync) > 0.01:
        duration = n / sr
        beats = (clapper_onsets(rng, duration, rate_hz=sync_rate_hz, cv=0.01, drift=0.03)
                 if beat_times is None else np.asarray(beat_times, float))
        # a Gaussian pulse at each common beat: the audience's onsets spread by spread_s
        half = int(4 * spread_s * sr)
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / (spread_s * sr)) ** 2)
        pulses = scatter_kernels(n, (beats * sr).astype(np.int64) - half, np.ones(len(beats)),
                                 kernel)
        pulses /= max(rms(pulses), 1e-9)
        s = ctrl_to_audio(np.clip(sync, 0.0, 1.0), n, sr)
        y *= (1.0 - s) + s * pulses
    return y
