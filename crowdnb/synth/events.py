"""Non-vocal crowd sounds: whistles, horns, drums, impacts, bangs, sirens, megaphones,
footsteps and room tone.

Every function returns a signal "at 1 m" (1.0 RMS = 94 dB SPL, see
:mod:`crowdnb.synth.dsp`); the scene places it at a distance and the venue
adds reverberation and the recording chain.

Where the numbers come from
---------------------------
* Human whistling spans about 0.5-4 kHz, loud two-finger whistles sit at about
  2-4 kHz and are nearly pure tones with a weak second harmonic and breath
  noise (Azola et al. 2018 on whistling; Shadle 1983). Fans whistle long
  piercing tones (disapproval in much of Europe, approval in the Americas),
  rising-falling "wolf whistles", and short blasts.
* A referee's pea whistle sounds at about 2-4 kHz; the pea chopping the jet
  adds a rapid warble of a few tens of hertz.
* Air horns and vuvuzelas: harmonic spectra with strong upper partials; air
  horns sound at about 300-480 Hz, the vuvuzela at about 233 Hz (B-flat 3);
  levels above 110 dB SPL at 1 m (Swanepoel et al. 2010 measured vuvuzelas at
  about 113 dB(A) at 1 m). Car horns honk at about 400-500 Hz in pairs.
* Bass drums of the fans' sections: membranes at 50-100 Hz whose pitch
  falls by 10-20 % in the first tens of milliseconds, decaying over 0.2-0.5 s,
  with a beater click; played at 80-140 beats per minute.
* Banging on metal (shutters, barriers, bins, pots): a few inharmonic modes
  (plate-like ratios) decaying over 0.1-1.5 s, higher modes faster; banging on
  wood or plastic shields: short, damped modes. Breaking glass: a burst of
  tiny high-pitched impacts.
* Firecrackers and stun grenades: impulses rising in under a millisecond and
  decaying in a few milliseconds, with peak levels well above 130 dB SPL at
  1 m, so at tens of metres they still tower over the crowd.
* Sirens: the European two-tone (e.g. 440/585 Hz in Germany, 435/488 Hz in
  France) alternating about every 0.5-0.75 s; the wail sweeping about
  650-1500 Hz over several seconds and the yelp over a fraction of a second;
  square-wave drive through a horn loudspeaker; a passing vehicle brings a
  level swell and a Doppler shift of a few percent.
* Megaphones: a shouted voice band-limited to about 400 Hz-4 kHz by the horn
  driver, with a resonance near 2 kHz and audible clipping.
* Footsteps: a heel strike (a damped thud of 80-200 Hz) and a scuff (noise at
  0.5-5 kHz); walking cadence about 1.7-2.1 steps per second, running 2.5-3.3.
* Room tone: a broadband floor (ventilation, distant traffic) of pink-like
  spectrum with a low-frequency hump, plus mains hum at 50 or 60 Hz and its
  harmonics.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.signal

from .dsp import (
    CTRL_RATE,
    butter_sos,
    ctrl_to_audio,
    fade,
    peaking_sos,
    rms,
    shaped_noise,
    smooth_noise,
    spl_to_amp,
)
from .voices import Speaker, speech_phrase

__all__ = [
    "finger_whistle",
    "referee_whistle",
    "horn",
    "drum_kernels",
    "drum_pattern",
    "impact_kernels",
    "firecracker_kernels",
    "siren",
    "megaphone",
    "footstep_kernels",
    "wavetable_tone",
    "BackgroundShape",
    "draw_background_shape",
    "room_tone",
    "wind_noise",
]


def wavetable_tone(f_hz: np.ndarray, harmonics: np.ndarray, sr: int, *,
                   phase0: float = 0.0, size: int = 4096) -> np.ndarray:
    """A periodic tone with a given harmonic spectrum following a per-sample f0 track.

    Parameters
    ----------
    f_hz : np.ndarray [shape=(n,)]
        Instantaneous fundamental frequency, Hz.
    harmonics : np.ndarray [shape=(h,)]
        Amplitudes of harmonics 1..h (complex values set their phases). Harmonics
        above 0.45 ``sr`` at the highest f0 are dropped.

    Returns
    -------
    y : np.ndarray [shape=(n,)]
        Unit-RMS tone.
    """
    harmonics = np.asarray(harmonics)
    fmax = float(np.max(f_hz)) if len(f_hz) else 1.0
    h = int(min(len(harmonics), max(1, np.floor(0.45 * sr / max(fmax, 1.0)))))
    spec = np.zeros(size // 2 + 1, dtype=complex)
    spec[1:h + 1] = harmonics[:h]
    table = np.fft.irfft(spec, size)
    table /= max(rms(table), 1e-12)
    phase = phase0 + np.cumsum(f_hz / sr)
    idx = ((phase - np.floor(phase)) * size).astype(np.int64)
    return table[np.minimum(idx, size - 1)]


def finger_whistle(rng: np.random.Generator, sr: int, *, kind: str | None = None,
                   level_db: float | None = None) -> np.ndarray:
    """A fan's whistle: a near-pure 2-4 kHz tone with breath noise.

    ``kind`` is ``"long"`` (sustained, piercing), ``"wolf"`` (rise then fall)
    or ``"blasts"`` (two to four short ones); drawn when None.
    """
    if kind is None:
        kind = str(rng.choice(["long", "wolf", "blasts"], p=[0.45, 0.25, 0.3]))
    f = float(np.exp(rng.uniform(np.log(1800.0), np.log(3800.0))))
    if kind == "long":
        dur = rng.uniform(0.6, 2.2)
        knots_t, knots_f = [0.0, 0.08, dur * 0.8, dur], [f * 0.9, f, f * 1.01, f * 0.85]
        gate = None
    elif kind == "wolf":
        dur = rng.uniform(0.8, 1.2)
        knots_t = [0.0, 0.25, 0.3, 0.45, dur]
        knots_f = [f * 0.6, f * 1.05, f * 1.05, f * 0.95, f * 0.5]
        gate = [(0.0, 0.28), (0.42, dur)]
    else:
        count = int(rng.integers(2, 5))
        each = rng.uniform(0.12, 0.3)
        gap = rng.uniform(0.08, 0.2)
        dur = count * (each + gap)
        knots_t, knots_f = [0.0, dur], [f, f * rng.uniform(0.95, 1.02)]
        gate = [(i * (each + gap), i * (each + gap) + each) for i in range(count)]
    n = int(dur * sr)
    t = np.arange(n) / sr
    fi = np.interp(t, knots_t, knots_f)
    m = int(dur * CTRL_RATE) + 2
    fi *= 1.0 + 0.004 * ctrl_to_audio(smooth_noise(rng, m, cutoff_hz=8.0), n, sr)
    tone = wavetable_tone(fi, np.array([1.0, 0.08, 0.02]), sr)
    breath = scipy.signal.sosfilt(butter_sos(2, (f * 0.7, min(f * 1.4, 0.45 * sr)), "bandpass",
                                             sr), rng.standard_normal(n))
    y = tone + 0.25 * breath / max(rms(breath), 1e-12)
    env = fade(n, int(0.015 * sr), int(0.05 * sr))
    if gate is not None:
        g = np.zeros(n)
        for a, b in gate:
            ia, ib = int(a * sr), min(n, int(b * sr))
            g[ia:ib] = fade(ib - ia, int(0.01 * sr), int(0.02 * sr))
        env *= g
    level = rng.uniform(92.0, 104.0) if level_db is None else level_db
    y = y * env
    return y * spl_to_amp(level) / max(rms(y[env > 0.5]), 1e-12)


def referee_whistle(rng: np.random.Generator, sr: int, *, blasts: int = 1,
                    level_db: float = 110.0) -> np.ndarray:
    """A pea whistle: ~2.5-4 kHz with a warble of a few tens of hertz."""
    f = rng.uniform(2600.0, 3600.0)
    warble = rng.uniform(25.0, 45.0)
    lengths = [rng.uniform(0.15, 0.35) for _ in range(blasts - 1)] + [rng.uniform(0.4, 1.1)]
    parts = []
    for length in lengths:
        n = int(length * sr)
        t = np.arange(n) / sr
        fi = f * (1.0 + 0.03 * np.sin(2 * np.pi * warble * t))
        y = wavetable_tone(fi, np.array([1.0, 0.3, 0.1]), sr)
        y *= (1.0 + 0.5 * np.sin(2 * np.pi * warble * t + 1.0)) * fade(n, int(0.01 * sr),
                                                                          int(0.04 * sr))
        parts += [y, np.zeros(int(rng.uniform(0.08, 0.15) * sr))]
    y = np.concatenate(parts)
    return y * spl_to_amp(level_db) / max(rms(y), 1e-12)


def horn(rng: np.random.Generator, sr: int, *, kind: str | None = None,
         duration_s: float | None = None, level_db: float | None = None) -> np.ndarray:
    """An air horn, a vuvuzela or a car horn (honks)."""
    if kind is None:
        kind = str(rng.choice(["air", "vuvuzela", "car"], p=[0.5, 0.2, 0.3]))
    if kind == "air":
        f0 = rng.uniform(300.0, 480.0)
        dur = rng.uniform(0.5, 2.5) if duration_s is None else duration_s
        h = np.arange(1, 60)
        harm = h ** -1.0 * np.exp(1j * rng.uniform(0, 2 * np.pi, len(h)))
        fall = rng.uniform(0.0, 0.04)  # the canister cools, the pitch sags
        tones = [(0.0, dur, f0, fall)]
        level = rng.uniform(105.0, 115.0)
    elif kind == "vuvuzela":
        f0 = 233.0 * 2.0 ** (rng.normal(0.0, 0.5) / 12)
        dur = rng.uniform(0.8, 3.5) if duration_s is None else duration_s
        h = np.arange(1, 80)
        harm = (h ** -0.7) * (1 + 1.5 * np.exp(-((h - 3) / 2.0) ** 2))
        harm = harm * np.exp(1j * rng.uniform(0, 2 * np.pi, len(h)))
        tones = [(0.0, dur, f0, 0.0)]
        level = rng.uniform(105.0, 113.0)
    else:
        count = int(rng.integers(1, 6))
        f0 = rng.uniform(380.0, 470.0)
        h = np.arange(1, 50)
        harm = np.where(h % 2 == 1, 1.0 / h, 0.3 / h) * np.exp(1j * rng.uniform(0, 6.28, len(h)))
        tones = []
        t = 0.0
        for _ in range(count):
            length = rng.uniform(0.15, 0.6)
            tones.append((t, length, f0, 0.0))
            tones.append((t, length, f0 * 1.26, 0.0))  # the second horn, a major third up
            t += length + rng.uniform(0.1, 0.3)
        dur = t
        level = rng.uniform(100.0, 108.0)
    n = int(dur * sr) + 1
    y = np.zeros(n)
    for start, length, f, drop in tones:
        k = int(length * sr)
        a = int(start * sr)
        k = min(k, n - a)
        if k <= 0:
            continue
        fi = f * (1.0 - drop * np.linspace(0.0, 1.0, k))
        fi *= 1.0 + 0.003 * rng.standard_normal()
        y[a:a + k] += wavetable_tone(fi, harm, sr, phase0=rng.random()) * fade(
            k, int(0.03 * sr), int(0.05 * sr))
    level = level if level_db is None else level_db
    return y * spl_to_amp(level) / max(rms(y[np.abs(y) > 0]), 1e-12)


def drum_kernels(rng: np.random.Generator, sr: int, *, count: int = 4,
                 f_hz: float | None = None) -> np.ndarray:
    """Bass-drum hits: a membrane mode with falling pitch, a second mode, a beater click.

    Returns
    -------
    bank : np.ndarray [shape=(count, L)]
        Unit-energy kernels of 0.6 s.
    """
    length = int(0.6 * sr)
    t = np.arange(length) / sr
    f = rng.uniform(55.0, 100.0) if f_hz is None else f_hz
    bank = np.empty((count, length))
    for i in range(count):
        decay = rng.uniform(0.12, 0.25)
        fi = f * (1.0 + rng.uniform(0.1, 0.2) * np.exp(-t / 0.03))
        ph = 2 * np.pi * np.cumsum(fi) / sr
        body = np.sin(ph) * np.exp(-t / decay)
        body += 0.35 * np.sin(1.59 * ph + 0.5) * np.exp(-t / (decay * 0.5))
        click = rng.standard_normal(length) * np.exp(-t / 0.002)
        click = scipy.signal.sosfilt(butter_sos(2, (800.0,), "highpass", sr), click)
        k = body + 0.15 * click
        k[: int(0.001 * sr)] *= np.linspace(0, 1, int(0.001 * sr))
        bank[i] = k / np.sqrt(np.sum(k * k))
    return bank


def drum_pattern(rng: np.random.Generator, duration_s: float, *, tempo_bpm: float,
                 pattern: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Onset times (s) and accents of a fans' drum pattern at ``tempo_bpm``."""
    if pattern is None:
        pattern = str(rng.choice(["steady", "one-two", "triplet-end"]))
    beat = 60.0 / tempo_bpm
    cycle = {
        "steady": [(0.0, 1.0), (1.0, 0.7), (2.0, 0.85), (3.0, 0.7)],
        "one-two": [(0.0, 1.0), (1.0, 0.8), (1.5, 0.6), (2.0, 1.0), (3.0, 0.8)],
        "triplet-end": [(0.0, 1.0), (1.0, 0.8), (2.0, 0.8), (2.67, 0.7), (3.33, 0.7)],
    }[pattern]
    times, accents = [], []
    start = rng.uniform(0.0, beat)
    k = 0
    while start + 4 * beat * k < duration_s:
        for pos, acc in cycle:
            t = start + (4 * k + pos) * beat + rng.normal(0.0, 0.008)
            if t < duration_s:
                times.append(t)
                accents.append(acc * np.exp(rng.normal(0.0, 0.1)))
        k += 1
    return np.array(times), np.array(accents)


_PLATE_RATIOS = np.array([1.0, 1.59, 2.14, 2.30, 2.65, 2.92, 3.16, 3.50, 4.06, 4.62])


def impact_kernels(rng: np.random.Generator, sr: int, *, material: str,
                   count: int = 4) -> np.ndarray:
    """Struck objects: modal synthesis (metal, wood/plastic, glass).

    Returns
    -------
    bank : np.ndarray [shape=(count, L)]
        Unit-energy kernels.
    """
    if material == "metal":
        length, f_lo, f_hi, t60 = 1.2, 180.0, 900.0, (0.3, 1.5)
    elif material == "pot":
        length, f_lo, f_hi, t60 = 0.8, 500.0, 1800.0, (0.2, 0.9)
    elif material == "glass":
        length, f_lo, f_hi, t60 = 0.3, 1800.0, 4500.0, (0.05, 0.2)
    else:  # wood, plastic shields, tables
        length, f_lo, f_hi, t60 = 0.25, 120.0, 500.0, (0.03, 0.12)
    n = int(length * sr)
    t = np.arange(n) / sr
    bank = np.empty((count, n))
    for i in range(count):
        f1 = float(np.exp(rng.uniform(np.log(f_lo), np.log(f_hi))))
        k_modes = 6 if material != "wood" else 4
        freqs = f1 * _PLATE_RATIOS[:k_modes] * np.exp(rng.normal(0.0, 0.04, k_modes))
        freqs = freqs[freqs < 0.45 * sr]
        base_t60 = rng.uniform(*t60)
        decays = base_t60 * (freqs / freqs[0]) ** -0.6 / 6.91
        amps = np.exp(rng.normal(0.0, 0.5, len(freqs))) / np.sqrt(np.arange(1, len(freqs) + 1))
        k = np.sum(amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :]
                                          + rng.uniform(0, 6.28, (len(freqs), 1)))
                   * np.exp(-t[None, :] / decays[:, None]), axis=0)
        strike = rng.standard_normal(n) * np.exp(-t / 0.0015)
        k = k / max(rms(k), 1e-12) + 1.5 * strike / max(rms(strike), 1e-12) * np.exp(-t / 0.0015)
        k[: int(0.0005 * sr)] *= np.linspace(0, 1, int(0.0005 * sr))
        bank[i] = k / np.sqrt(np.sum(k * k))
    return bank


def firecracker_kernels(rng: np.random.Generator, sr: int, *, count: int = 4,
                        big: bool = False) -> np.ndarray:
    """Bangs: a fast-rising impulse with a short broadband decay (and an N-wave if big)."""
    n = int((0.25 if big else 0.08) * sr)
    t = np.arange(n) / sr
    bank = np.empty((count, n))
    for i in range(count):
        decay = rng.uniform(0.004, 0.012) if not big else rng.uniform(0.02, 0.05)
        k = rng.standard_normal(n) * np.exp(-t / decay)
        if big:
            width = rng.uniform(0.002, 0.005)
            nwave = np.where(t < 2 * width, 1.0 - t / width, 0.0)
            k = 0.5 * k / max(rms(k), 1e-12) + nwave / max(rms(nwave), 1e-12)
        k = scipy.signal.sosfilt(butter_sos(1, (150.0,), "highpass", sr), k)
        bank[i] = k / np.sqrt(np.sum(k * k))
    return bank


def siren(rng: np.random.Generator, n: int, sr: int, *, kind: str | None = None,
          passing: bool | None = None, level_db: float = 118.0,
          distance_m: float = 30.0) -> tuple[np.ndarray, str]:
    """A police siren over ``n`` samples, referred to 1 m but including its own pass-by.

    Returns the signal and the siren kind. With ``passing``, the vehicle
    drives past at 5-15 m/s, closest at a random moment, with the level
    following ``distance_m / r(t)`` and the Doppler shift ``c / (c + v_r)``.
    """
    if kind is None:
        kind = str(rng.choice(["hilo", "wail", "yelp"], p=[0.5, 0.3, 0.2]))
    if passing is None:
        passing = bool(rng.random() < 0.5)
    t = np.arange(n) / sr
    if kind == "hilo":
        lo, hi = [(440.0, 585.0), (435.0, 488.0), (392.0, 523.0)][int(rng.integers(0, 3))]
        half = rng.uniform(0.45, 0.75)
        ph = (t / half + rng.random()) % 2.0
        f = np.where(ph < 1.0, hi, lo)
        f = scipy.signal.lfilter([0.02], [1.0, -0.98], f - f[0]) + f[0]  # 1 ms glide
    elif kind == "wail":
        period = rng.uniform(3.5, 6.0)
        ph = (t / period + rng.random()) % 1.0
        shape = np.where(ph < 0.6, ph / 0.6, 1.0 - (ph - 0.6) / 0.4)
        f = 650.0 + 850.0 * shape
    else:
        period = rng.uniform(0.22, 0.35)
        ph = (t / period + rng.random()) % 1.0
        f = 650.0 + 850.0 * np.sqrt(ph)
    amp = np.ones(n)
    if passing:
        v = rng.uniform(5.0, 15.0)
        t0 = rng.uniform(0.2, 0.8) * n / sr
        d0 = max(distance_m * rng.uniform(0.3, 1.0), 5.0)
        x = v * (t - t0)
        r = np.sqrt(d0 ** 2 + x ** 2)
        vr = v * x / r  # receding speed
        f = f * 343.0 / (343.0 + vr)
        amp = distance_m / r
    h = np.arange(1, 30)
    harm = np.where(h % 2 == 1, 1.0 / h, 0.05 / h)
    y = wavetable_tone(f, harm, sr, phase0=rng.random())
    y = scipy.signal.sosfilt(butter_sos(2, (350.0, 5000.0), "bandpass", sr), y)
    return y * amp * spl_to_amp(level_db) / max(rms(y), 1e-12), kind


def megaphone(rng: np.random.Generator, speaker: Speaker, sr: int, *,
              duration_s: float, level_db: float = 112.0) -> np.ndarray:
    """A voice through a megaphone: phrases, 400 Hz-4 kHz, a horn resonance, clipping."""
    n = int(duration_s * sr)
    y = np.zeros(n)
    t = rng.uniform(0.0, 1.0)
    while t < duration_s - 0.5:
        phrase = speech_phrase(rng, speaker, sr=sr, effort=2.5,
                               duration_s=float(rng.uniform(1.0, 3.0)))
        a = int(t * sr)
        k = min(len(phrase), n - a)
        y[a:a + k] += phrase[:k]
        t += len(phrase) / sr + rng.uniform(0.4, 1.5)
    if not np.any(y):
        return y
    y /= rms(y[np.abs(y) > 0])
    y = scipy.signal.sosfilt(butter_sos(4, (450.0, 3800.0), "bandpass", sr), y)
    y = scipy.signal.sosfilt(peaking_sos(rng.uniform(1500.0, 2500.0), 8.0, 2.0, sr), y)
    drive = rng.uniform(2.0, 5.0)
    y = np.tanh(drive * y / max(rms(y), 1e-12))
    y = scipy.signal.sosfilt(butter_sos(2, (350.0, 5000.0), "bandpass", sr), y)
    active = np.abs(y) > 1e-4
    return y * spl_to_amp(level_db) / max(rms(y[active]) if active.any() else 0.0, 1e-12)


def footstep_kernels(rng: np.random.Generator, sr: int, *, count: int = 6,
                     surface: str = "hard") -> np.ndarray:
    """Footsteps: a heel-strike thud (80-200 Hz) and a scuff (0.5-5 kHz noise)."""
    n = int(0.15 * sr)
    t = np.arange(n) / sr
    bank = np.empty((count, n))
    scuff_gain = 1.0 if surface == "hard" else 0.5
    for i in range(count):
        f = rng.uniform(80.0, 200.0)
        thud = np.sin(2 * np.pi * f * t) * np.exp(-t / rng.uniform(0.015, 0.04))
        scuff = scipy.signal.sosfilt(butter_sos(2, (500.0, 5000.0), "bandpass", sr),
                                     rng.standard_normal(n))
        scuff *= np.exp(-t / rng.uniform(0.015, 0.05))
        delay = int(rng.uniform(0.0, 0.03) * sr)
        scuff = np.roll(scuff, delay)
        scuff[:delay] = 0.0
        k = thud / max(rms(thud), 1e-12) + scuff_gain * rng.uniform(0.3, 1.0) * scuff / max(
            rms(scuff), 1e-12)
        bank[i] = k / np.sqrt(np.sum(k * k))
    return bank


class BackgroundShape:
    """An event's background noise: spectrum, mains hum, level (shared by its clips).

    Attributes
    ----------
    freqs_hz, levels_db : np.ndarray
        Spectrum of the broadband floor (relative dB).
    hum_hz : float
        Mains frequency (50 or 60 Hz).
    hum_db : np.ndarray [shape=(k,)]
        Level of each hum harmonic relative to the floor's RMS, dB (``-inf`` absent).
    """

    def __init__(self, freqs_hz, levels_db, hum_hz, hum_db):
        self.freqs_hz = np.asarray(freqs_hz, float)
        self.levels_db = np.asarray(levels_db, float)
        self.hum_hz = float(hum_hz)
        self.hum_db = np.asarray(hum_db, float)

    def to_dict(self) -> dict:
        return {"hum_hz": self.hum_hz,
                "tilt_db_per_octave": round(float(
                    (self.levels_db[-3] - self.levels_db[3]) / np.log2(self.freqs_hz[-3]
                                                                       / self.freqs_hz[3])), 2)}


def draw_background_shape(rng: np.random.Generator, *, indoor: bool, variability: float = 1.0
                          ) -> BackgroundShape:
    """Draw an event's room tone: ventilation and traffic floor, hum, their balance.

    Indoors: ventilation noise with a hump at 100-500 Hz and, often, mains hum.
    Outdoors: distant traffic, a low-frequency hump at 40-150 Hz falling steeply above.
    """
    v = variability
    freqs = np.array([20.0, 40.0, 80.0, 160.0, 315.0, 630.0, 1250.0, 2500.0, 5000.0, 10000.0,
                      16000.0, 22000.0])
    tilt = -3.0 + v * rng.uniform(-2.0, 1.5)  # dB/octave: pink-like with spread
    levels = tilt * np.log2(freqs / 1000.0)
    hump_f = np.exp(rng.uniform(np.log(100.0), np.log(500.0))) if indoor else \
        np.exp(rng.uniform(np.log(40.0), np.log(150.0)))
    hump_db = 6.0 + v * rng.uniform(-3.0, 8.0)
    levels += hump_db * np.exp(-0.5 * (np.log2(freqs / hump_f) / 0.8) ** 2)
    levels += v * rng.normal(0.0, 2.0, len(freqs))  # the room's own colour
    levels[0] -= 10.0
    hum_hz = 50.0 if rng.random() < 0.75 else 60.0
    has_hum = rng.random() < (0.6 if indoor else 0.2)
    if has_hum:
        hum = rng.uniform(-5.0, 8.0) - 4.0 * np.arange(6) + v * rng.normal(0.0, 3.0, 6)
    else:
        hum = np.full(6, -np.inf)
    return BackgroundShape(freqs, levels, hum_hz, hum)


def room_tone(rng: np.random.Generator, n: int, sr: int, shape: BackgroundShape, *,
              level_db: float) -> np.ndarray:
    """Render an event's background: the floor noise of its spectrum plus mains hum.

    Parameters
    ----------
    shape : BackgroundShape
        Shared by every clip of the event; only the noise samples differ.
    level_db : float
        RMS level at the microphone, dB SPL.
    """
    y = shaped_noise(rng, n, sr, shape.freqs_hz, shape.levels_db)
    m = int(np.ceil(n / sr * CTRL_RATE)) + 2
    y *= ctrl_to_audio(1.0 + 0.05 * smooth_noise(rng, m, cutoff_hz=0.5), n, sr)
    if np.any(np.isfinite(shape.hum_db)):
        # mains hum: harmonics of 50 or 60 Hz, one periodic wavetable
        amps = np.where(np.isfinite(shape.hum_db), 10.0 ** (shape.hum_db / 20.0), 0.0)
        harm = amps * np.exp(1j * rng.uniform(0.0, 2 * np.pi, len(amps)))
        hum = wavetable_tone(np.full(n, shape.hum_hz), harm, sr)
        y += hum * np.sqrt(np.sum(amps ** 2))
    return y * spl_to_amp(level_db) / max(rms(y), 1e-12)


@functools.lru_cache(maxsize=4)
def _wind_sos(sr: int):
    return scipy.signal.butter(4, 250.0, "lowpass", fs=sr, output="sos")


def wind_noise(rng: np.random.Generator, n: int, sr: int, *, level_db: float,
               gustiness: float = 1.0) -> np.ndarray:
    """Wind on the microphone: low-frequency rumble in gusts (outdoor phone recordings)."""
    y = scipy.signal.sosfilt(_wind_sos(sr), rng.standard_normal(n))
    m = int(np.ceil(n / sr * CTRL_RATE)) + 2
    gust = np.exp(gustiness * 0.8 * smooth_noise(rng, m, cutoff_hz=0.4))
    y *= ctrl_to_audio(gust, n, sr)
    return y * spl_to_amp(level_db) / max(rms(y), 1e-12)
