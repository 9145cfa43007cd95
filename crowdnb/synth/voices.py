"""Voices: a source-filter model of people cheering, shouting, booing, laughing, talking.

Each voice is a glottal source (a Rosenberg-type flow pulse, differentiated
for lip radiation) driven by a natural f0 contour with slow wander, cycle-to-
cycle jitter and shimmer, plus aspiration noise, filtered by a cascade of five
vowel formant resonators (Klatt 1980). A crowd is a few such explicit voices
near the microphone on top of a *bed*: the incoherent sum of everyone further
away, which is Gaussian noise with the long-term spectrum of speech at the
crowd's vocal effort (the sum of many independent talkers tends to that, the
amplitude modulation of the sum shrinking as one over the square root of
their number).

Where the numbers come from
---------------------------
* Vowel formants F1-F3: Peterson & Barney (1952) and Hillenbrand et al.
  (1995), adult male averages; women's formants about 17 % higher, children's
  about 30 % (same sources). F4 = 3.5 kHz, F5 = 4.5 kHz; bandwidths after
  Klatt (1980).
* Speaking f0: men about 120 Hz, women about 210 Hz, children about 260 Hz
  (Peterson & Barney 1952; Hillenbrand et al. 1995), with about 10-15 %
  spread between speakers.
* Vocal effort (ANSI S3.5-1997, Table 3): levels at 1 m of 62.4 dB SPL
  (normal), 68.3 (raised), 74.9 (loud) and 82.3 (shouted), with the spectrum
  flattening and its peak moving from about 500 Hz to about 1 kHz as effort
  grows. The same effort raises f0 (by about an octave in shouting: Rostolland
  1982; Traunmüller & Eriksson 2000, so a shouting man reaches 250-350 Hz),
  raises F1 (wider jaw opening, about +20 % in shouts), shortens the open phase
  and sharpens the glottal closure, which flattens the source's spectral tilt.
* Laughter: bouts of "ha" syllables at 4-5.5 per second, breathy, with mean f0
  about 280 Hz in men and 420 Hz in women (Bachorowski, Smoski & Owren 2001).
* Screams: f0 far above speech (500 Hz-1.2 kHz) and amplitude modulation in
  the 30-150 Hz "roughness" range (Arnal et al. 2015).
* Booing: a sustained, low, rounded /u/ (f0 about 100-200 Hz, lowered on
  purpose; F1 about 300 Hz, F2 about 800 Hz).
* Conversational speech: 3.5-5.5 syllables per second, f0 declination over a
  phrase and accent peaks of a few semitones; crowded rooms raise the effort
  (Lombard effect).
* Long-term average speech spectrum of babble: Byrne et al. (1994) and
  ANSI S3.5-1997, as above.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.signal

from .dsp import (
    CTRL_RATE,
    ctrl_to_audio,
    fade,
    resonator_sos,
    rms,
    shaped_noise,
    smooth_noise,
    spl_to_amp,
)

__all__ = [
    "VOWELS",
    "EFFORT_LEVELS_DB",
    "Speaker",
    "draw_speaker",
    "effort_level_db",
    "crowd_f0_hz",
    "speech_spectrum_db",
    "glottal_source",
    "formant_filter",
    "vocal_tract",
    "phonate",
    "cheer",
    "angry_shout",
    "scream",
    "boo",
    "ooh",
    "groan",
    "laugh",
    "speech_phrase",
    "chant_phrase",
    "babble_bed",
    "vowel_bed",
]

#: F1, F2, F3 in Hz of adult men (Peterson & Barney 1952; "ey", "ow": Hillenbrand et al. 1995).
VOWELS: dict[str, tuple[float, float, float]] = {
    "iy": (270.0, 2290.0, 3010.0),
    "ih": (390.0, 1990.0, 2550.0),
    "eh": (530.0, 1840.0, 2480.0),
    "ae": (660.0, 1720.0, 2410.0),
    "aa": (730.0, 1090.0, 2440.0),
    "ao": (570.0, 840.0, 2410.0),
    "uh": (440.0, 1020.0, 2240.0),
    "uw": (300.0, 870.0, 2240.0),
    "ah": (640.0, 1190.0, 2390.0),
    "er": (490.0, 1350.0, 1690.0),
    "ey": (476.0, 2089.0, 2691.0),
    "ow": (497.0, 910.0, 2459.0),
    # the booing vowel, shouted: rounded between /u/ and /o/, F1 raised by the
    # effort; recordings of booing crowds peak at 0.7-1 kHz
    "boo": (550.0, 1000.0, 2300.0),
}
_F45 = (3500.0, 4500.0)
_BANDWIDTHS = np.array([80.0, 100.0, 150.0, 220.0, 280.0])
_SPEECH_VOWELS = ["iy", "ih", "eh", "ae", "aa", "ao", "uh", "uw", "ah", "er", "ey", "ow"]
_SPEECH_VOWEL_P = np.array([8, 12, 10, 7, 8, 5, 3, 5, 16, 6, 10, 10], float)
_SPEECH_VOWEL_P /= _SPEECH_VOWEL_P.sum()

#: ANSI S3.5-1997 Table 3: speech spectrum level (dB SPL per Hz at 1 m) for normal,
#: raised, loud and shouted effort, in one-third-octave bands.
_ANSI_FREQS = np.array([160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600, 2000,
                        2500, 3150, 4000, 5000, 6300, 8000], float)
_ANSI_LEVELS = np.array([
    [32.41, 34.48, 34.75, 33.98, 34.59, 34.27, 32.06, 28.30, 25.01, 23.00, 20.15, 17.32,
     13.18, 11.55, 9.33, 5.31, 2.59, 1.13],
    [33.81, 33.92, 38.98, 38.57, 39.11, 40.15, 38.78, 36.37, 33.86, 31.89, 28.58, 25.32,
     22.35, 20.15, 16.78, 11.47, 7.67, 5.07],
    [35.29, 37.76, 41.55, 43.78, 43.30, 44.85, 45.55, 44.05, 42.16, 40.53, 37.70, 34.39,
     30.98, 28.21, 25.41, 18.35, 13.87, 10.75],
    [30.77, 36.65, 42.50, 46.51, 47.40, 49.24, 51.21, 51.44, 51.31, 49.63, 47.65, 44.32,
     40.80, 38.13, 34.41, 28.24, 23.45, 20.72],
])
#: Overall speech level at 1 m (dB SPL) for effort 0 (normal) .. 3 (shouted), ANSI S3.5;
#: 3.5 is a maximal shout or scream, about 6 dB above the standard's shout.
EFFORT_LEVELS_DB = np.array([62.35, 68.34, 74.85, 82.30, 88.0])
_EFFORTS = np.array([0.0, 1.0, 2.0, 3.0, 3.5])
# f0 rise with effort, semitones (an octave for a full shout)
_F0_RISE_ST = np.array([0.0, 2.5, 6.0, 11.0, 13.0])


def effort_level_db(effort) -> np.ndarray:
    """Speech level at 1 m (dB SPL) at a vocal effort in [0, 3.5] (0 normal, 3 shout)."""
    return np.interp(effort, _EFFORTS, EFFORT_LEVELS_DB)


def _f0_rise(effort) -> np.ndarray:
    return np.interp(effort, _EFFORTS, _F0_RISE_ST)


def crowd_f0_hz(effort: float, *, offset_st: float = 0.0) -> float:
    """The pitch a crowd's men converge on at a vocal effort: 120 Hz at normal
    effort, raised by the effort (an octave for a full shout), shifted by
    ``offset_st`` semitones."""
    return float(120.0 * 2.0 ** ((float(_f0_rise(effort)) + offset_st) / 12.0))


def speech_spectrum_db(effort: float) -> tuple[np.ndarray, np.ndarray]:
    """Long-term speech spectrum at a vocal effort, extended to 40 Hz-20 kHz.

    Returns
    -------
    freqs : np.ndarray [shape=(k,)]
        Hz.
    levels : np.ndarray [shape=(k,)]
        Spectrum level in dB (relative; the shape is what matters).
    """
    e = float(np.clip(effort, 0.0, 3.0))
    i = min(int(e), 2)
    w = e - i
    core = (1 - w) * _ANSI_LEVELS[i] + w * _ANSI_LEVELS[i + 1]
    # below 160 Hz and above 8 kHz, follow the slopes of Byrne et al. (1994)
    low_f = np.array([40.0, 63.0, 80.0, 100.0, 125.0])
    low = core[0] + np.array([-30.0, -18.0, -10.0, -3.0, -1.0])
    high_f = np.array([10000.0, 12500.0, 16000.0, 20000.0])
    high = core[-1] + np.array([-2.0, -5.0, -8.0, -14.0])
    return (np.concatenate([low_f, _ANSI_FREQS, high_f]),
            np.concatenate([low, core, high]))


@dataclass(frozen=True)
class Speaker:
    """One person's voice.

    Attributes
    ----------
    sex : str
        ``"male"``, ``"female"`` or ``"child"``.
    f0_hz : float
        Speaking f0 at normal effort.
    formant_scale : float
        Formant frequencies relative to the adult male averages (vocal-tract length).
    jitter : float
        Cycle-to-cycle period perturbation (standard deviation, fraction).
    shimmer : float
        Cycle-to-cycle amplitude perturbation (standard deviation, fraction).
    breathiness : float
        Aspiration noise relative to the voiced source (RMS ratio).
    """

    sex: str
    f0_hz: float
    formant_scale: float
    jitter: float
    shimmer: float
    breathiness: float


def draw_speaker(rng: np.random.Generator, *, female_share: float = 0.3,
                 child_share: float = 0.03) -> Speaker:
    """Draw a speaker: sex, f0, vocal-tract scale and voice quality."""
    u = rng.random()
    if u < child_share:
        sex, f0, scale = "child", 260.0, 1.30
    elif u < child_share + female_share:
        sex, f0, scale = "female", 210.0, 1.17
    else:
        sex, f0, scale = "male", 120.0, 1.0
    return Speaker(
        sex=sex,
        f0_hz=float(f0 * np.exp(0.12 * rng.standard_normal())),
        formant_scale=float(scale * np.exp(0.05 * rng.standard_normal())),
        jitter=float(rng.uniform(0.004, 0.012)),
        shimmer=float(rng.uniform(0.03, 0.08)),
        breathiness=float(rng.uniform(0.03, 0.12)),
    )


@functools.lru_cache(maxsize=64)
def _glottal_table(effort_step: int, size: int = 2048) -> np.ndarray:
    """One period of the glottal flow derivative at a quantised effort (0..14 -> 0..3.5)."""
    e = effort_step / 4.0
    oq = 0.66 - 0.06 * e          # open quotient: shorter open phase when pressed
    cs = 0.36 - 0.06 * e          # closing phase as a share of the open phase: sharper closure
    tp, tn = oq * (1.0 - cs), oq * cs
    phi = (np.arange(size) + 0.5) / size
    d = np.zeros(size)
    opening = phi < tp
    closing = (phi >= tp) & (phi < oq)
    d[opening] = (np.pi / (2 * tp)) * np.sin(np.pi * phi[opening] / tp)
    d[closing] = -(np.pi / (2 * tn)) * np.sin(0.5 * np.pi * (phi[closing] - tp) / tn)
    d -= d.mean()
    return d / np.sqrt(np.mean(d * d))


def _tilt_cutoff_hz(effort: float) -> float:
    # The rest of the source's roll-off, a first-order low-pass whose corner
    # rises with effort (700 Hz normal, 1.6 kHz shouted); with the pulse shape it
    # reproduces ANSI S3.5's flattening of the spectrum (about 11 dB more energy
    # at 2-5 kHz relative to 0.1-1 kHz from normal to shouted speech).
    return float(700.0 * 2.0 ** (0.4 * np.clip(effort, 0.0, 3.5)))


def glottal_source(
    rng: np.random.Generator,
    f0_hz: np.ndarray,
    *,
    sr: int,
    effort: float,
    jitter: float,
    shimmer: float,
    breathiness: float,
    roughness: float = 0.0,
) -> np.ndarray:
    """Glottal flow derivative for a per-sample f0 track, with jitter, shimmer and aspiration.

    Parameters
    ----------
    f0_hz : np.ndarray [shape=(n,)]
        Fundamental frequency per sample, Hz (0 where unvoiced is not allowed:
        gate the output instead).
    effort : float in [0, 3.5]
        Vocal effort; sets the pulse shape (open quotient, closure speed) and the
        source's spectral tilt.
    jitter, shimmer : float >= 0
        Cycle-to-cycle period and amplitude perturbation (standard deviations).
    breathiness : float >= 0
        Aspiration noise, pulsed with the glottal cycle, relative to the voiced part.
    roughness : float in [0, 1]
        Period-doubling: every other cycle is weaker by this share (harsh,
        strained voices).

    Returns
    -------
    source : np.ndarray [shape=(n,)]
        Unit-RMS excitation.
    """
    n = len(f0_hz)
    if n == 0:
        return np.zeros(0)
    inc = f0_hz / sr
    phase0 = np.cumsum(inc)
    ncyc = int(phase0[-1]) + 3
    jit = 1.0 + jitter * rng.standard_normal(ncyc)
    phase = np.cumsum(inc * jit[phase0.astype(np.int64)])
    cyc = phase.astype(np.int64)
    table = _glottal_table(int(round(np.clip(effort, 0.0, 3.5) * 4)))
    idx = ((phase - cyc) * len(table)).astype(np.int64)
    amp = np.maximum(1.0 + shimmer * rng.standard_normal(ncyc + 1), 0.2)
    if roughness > 0:
        amp[1::2] *= 1.0 - roughness
    voiced = table[idx] * amp[cyc]
    if breathiness > 0:
        # turbulence at the glottis is strongest while it is open
        open_gate = (table[idx] > 0).astype(float) * 0.7 + 0.3
        noise = rng.standard_normal(n) * open_gate
        noise = np.diff(noise, prepend=0.0)  # mostly above 1 kHz
        voiced = voiced + breathiness * noise / max(rms(noise), 1e-12)
    tilted = scipy.signal.lfilter(*_one_pole(_tilt_cutoff_hz(effort), sr), voiced)
    r = rms(tilted)
    return tilted / r if r > 0 else tilted


@functools.lru_cache(maxsize=64)
def _one_pole(cutoff_hz: float, sr: int):
    a = np.exp(-2.0 * np.pi * min(cutoff_hz, 0.45 * sr) / sr)
    return np.array([1.0 - a]), np.array([1.0, -a])


def _formants(vowel: str, scale: float, effort: float) -> np.ndarray:
    f1, f2, f3 = VOWELS[vowel]
    f1 = f1 * (1.0 + 0.07 * np.clip(effort, 0.0, 3.5))  # jaw opens wider in loud voice
    return np.array([f1, f2, f3, *_F45]) * scale


def formant_filter(x: np.ndarray, track: np.ndarray, *, sr: int, seg: int,
                   bandwidth_scale: float = 1.0) -> np.ndarray:
    """Filter ``x`` through a time-varying cascade of formant resonators.

    Parameters
    ----------
    x : np.ndarray [shape=(n,)]
    track : np.ndarray [shape=(k, 5)]
        F1-F5 in Hz for consecutive segments of ``seg`` samples (the last row
        covers the remainder). Consecutive rows that differ by less than 2.5 %
        (a third of a semitone) are merged; the filter state carries across
        segments.
    bandwidth_scale : float > 0
        Widens the formants (a chorus of many vocal tracts has blurred formants).
    """
    n = len(x)
    y = np.empty(n)
    zi = np.zeros((track.shape[1], 2))
    bws = _BANDWIDTHS[: track.shape[1]] * bandwidth_scale
    start = 0
    k = len(track)
    i = 0
    while i < k:
        j = i + 1
        while j < k and np.all(np.abs(track[j] / track[i] - 1.0) < 0.025):
            j += 1
        stop = n if j >= k else min(n, j * seg)
        if stop > start:
            sos = resonator_sos(track[i], bws, sr)
            y[start:stop], zi = scipy.signal.sosfilt(sos, x[start:stop], zi=zi)
        start = stop
        i = j
    return y


@functools.lru_cache(maxsize=8)
def _high_branch_sos(sr: int) -> np.ndarray:
    return scipy.signal.butter(2, min(2500.0, 0.4 * sr), "highpass", fs=sr, output="sos")


#: Gain of the parallel high-frequency branch (the source high-passed at 2.5 kHz), 20 dB,
#: for a vowel with F1 F2 = _F12_REF (the power average over speech vowels).
HIGH_BRANCH_GAIN = 10.0
_F12_REF = 826000.0


def vocal_tract(source: np.ndarray, track: np.ndarray, *, sr: int, seg: int,
                bandwidth_scale: float = 1.0) -> np.ndarray:
    """Formant cascade plus the parallel branch standing for the resonances above F5.

    Five unity-DC-gain resonators in cascade leave out the tract's resonances
    above F5, whose skirts lift everything above 2 kHz by some 20 dB; without
    them a synthetic voice is muffled (Klatt 1980 adds a fixed "higher-pole
    correction"). Here they are a parallel branch, the source high-passed at
    2.5 kHz with a gain of 20 dB scaled by ``(F1 F2 / 826000 Hz^2)^2`` (so
    that back rounded vowels are duller, as in a cascade), chosen (with the
    source tilt) so that the
    long-term spectrum of synthetic speech matches ANSI S3.5-1997 Table 3
    within about 1.5 dB (normal) to 3.5 dB (shouted) RMS over one-third-octave
    bands from 160 Hz to 6.3 kHz, which the tests check.
    """
    y = formant_filter(source, track, sr=sr, seg=seg, bandwidth_scale=bandwidth_scale)
    # In a cascade the upper formants' level follows (F1 F2)^2 (Fant 1960): a
    # rounded /u/ is some 20 dB weaker above 2.5 kHz than an open /a/.
    f12 = (track[:, 0] * track[:, 1] / _F12_REF) ** 2
    gain = HIGH_BRANCH_GAIN * np.clip(f12, 0.03, 3.0)
    centres = (np.arange(len(track)) + 0.5) * seg
    g = np.interp(np.arange(len(source)), centres, gain)
    return y + scipy.signal.sosfilt(_high_branch_sos(sr), source * g)


def _glide_track(knots: list[tuple[float, str]], n_seg: int, seg_s: float, scale: float,
                 effort: float) -> np.ndarray:
    times = np.array([t for t, _ in knots], float)
    forms = np.array([_formants(v, scale, effort) for _, v in knots])
    t = (np.arange(n_seg) + 0.5) * seg_s
    return np.stack([np.interp(t, times, forms[:, j]) for j in range(5)], axis=1)


def phonate(
    rng: np.random.Generator,
    speaker: Speaker,
    *,
    sr: int,
    duration_s: float,
    f0_knots: list[tuple[float, float]],
    vowel_knots: list[tuple[float, str]],
    effort: float,
    level_db: float | None = None,
    attack_s: float = 0.03,
    release_s: float = 0.12,
    breathiness: float | None = None,
    roughness: float = 0.0,
    jitter_scale: float = 1.0,
    shimmer_scale: float = 1.0,
    wander_cents: float = 25.0,
    am_hz: float = 0.0,
    am_depth: float = 0.0,
    gate: np.ndarray | None = None,
) -> np.ndarray:
    """Render one voiced utterance.

    Parameters
    ----------
    speaker : Speaker
    sr : int
        Sample rate, Hz.
    duration_s : float > 0
    f0_knots : list of (time_s, f0_hz)
        The intonation contour, interpolated linearly in log-frequency; slow
        random wander of ``wander_cents`` is added.
    vowel_knots : list of (time_s, vowel)
        Formant targets, glided linearly between knots (vowel names of :data:`VOWELS`).
    effort : float in [0, 3.5]
        Vocal effort (sets pulse shape, tilt, F1 and, unless ``level_db`` is
        given, the level at 1 m from ANSI S3.5).
    level_db : float, optional
        RMS level at 1 m, dB SPL.
    gate : np.ndarray [shape=(m,)], optional
        Control-rate voicing/amplitude gate (consonants, note boundaries).

    Returns
    -------
    y : np.ndarray [shape=(n,)]
        The utterance at 1 m from the mouth (1.0 RMS = 94 dB SPL).
    """
    n = max(int(round(duration_s * sr)), 16)
    m = int(np.ceil(duration_s * CTRL_RATE)) + 2
    t_ctrl = np.arange(m) / CTRL_RATE
    kt = np.array([k[0] for k in f0_knots], float)
    kf = np.log(np.array([k[1] for k in f0_knots], float))
    log_f0 = np.interp(t_ctrl, kt, kf)
    if wander_cents > 0:
        log_f0 = log_f0 + (wander_cents / 1200.0 * np.log(2.0)) * smooth_noise(
            rng, m, cutoff_hz=4.0)
    f0 = np.exp(ctrl_to_audio(log_f0, n, sr))
    source = glottal_source(
        rng, f0, sr=sr, effort=effort,
        jitter=speaker.jitter * jitter_scale,
        shimmer=speaker.shimmer * shimmer_scale,
        breathiness=speaker.breathiness if breathiness is None else breathiness,
        roughness=roughness,
    )
    seg_s = 0.03
    n_seg = int(np.ceil(duration_s / seg_s))
    track = _glide_track(vowel_knots, n_seg, seg_s, speaker.formant_scale, effort)
    y = vocal_tract(source, track, sr=sr, seg=int(round(seg_s * sr)))
    env = fade(n, int(attack_s * sr), int(release_s * sr))
    if gate is not None:
        env = env * ctrl_to_audio(gate, n, sr)
    if am_depth > 0 and am_hz > 0:
        env = env * (1.0 + am_depth * np.sin(2 * np.pi * am_hz * np.arange(n) / sr
                                             + rng.uniform(0, 2 * np.pi)))
    y = y * env
    r = rms(y[env > 0.5 * env.max()]) if env.max() > 0 else 0.0
    level = effort_level_db(effort) if level_db is None else level_db
    return y * (spl_to_amp(level) / r) if r > 0 else y


def _effort_f0(speaker: Speaker, effort: float) -> float:
    return speaker.f0_hz * 2.0 ** (_f0_rise(effort) / 12.0)


def cheer(rng: np.random.Generator, speaker: Speaker, *, sr: int,
          effort: float = 3.0) -> np.ndarray:
    """A cheer: "yeah!", "woo!", "hey!", "come on!" or an open "ahh".

    High effort, a rise-fall f0 contour peaking 3-7 semitones above the
    shouted f0, glides between vowel targets.
    """
    kind = rng.choice(["yeah", "woo", "hey", "ahh", "comeon"], p=[0.3, 0.2, 0.2, 0.2, 0.1])
    dur = float(rng.uniform(0.4, 1.5) if kind != "hey" else rng.uniform(0.3, 0.7))
    base = _effort_f0(speaker, effort) * 2.0 ** (rng.normal(0.0, 1.5) / 12)
    peak = base * 2.0 ** (rng.uniform(3.0, 7.0) / 12)
    end = base * 2.0 ** (rng.uniform(-6.0, 0.0) / 12)
    tp = dur * rng.uniform(0.15, 0.45)
    f0_knots = [(0.0, base), (tp, peak), (dur, end)]
    vowels = {
        "yeah": [(0.0, "iy"), (0.12, "eh"), (dur * 0.7, "ae"), (dur, "ah")],
        "woo": [(0.0, "uw"), (dur, "uw")],
        "hey": [(0.0, "eh"), (dur * 0.6, "ey"), (dur, "iy")],
        "ahh": [(0.0, "aa"), (dur, "ah")],
        "comeon": [(0.0, "ah"), (dur * 0.35, "ah"), (dur * 0.45, "aa"), (dur, "aa")],
    }[kind]
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=vowels, effort=effort, attack_s=0.04,
                   release_s=min(0.25, dur * 0.3), wander_cents=40.0)


def angry_shout(rng: np.random.Generator, speaker: Speaker, *, sr: int,
                effort: float = 3.0) -> np.ndarray:
    """An angry shout: a short word ("no!", "out!", "hey!") at full effort.

    Falling f0 from a high onset, a harsh voice: jitter and shimmer two to
    three times the speaker's, some period doubling (roughness), abrupt onset.
    """
    dur = float(rng.uniform(0.25, 0.8))
    v1 = str(rng.choice(["aa", "ow", "ao", "eh", "ah", "ae"]))
    v2 = str(rng.choice(["aa", "uw", "ah", "ow"]))
    start = _effort_f0(speaker, effort) * 2.0 ** (rng.uniform(0.0, 4.0) / 12)
    f0_knots = [(0.0, start), (dur * 0.3, start * 2.0 ** (0.5 / 12)),
                (dur, start * 2.0 ** (-rng.uniform(3.0, 8.0) / 12))]
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=[(0.0, v1), (dur * 0.7, v1), (dur, v2)], effort=effort,
                   attack_s=0.015, release_s=0.08, roughness=float(rng.uniform(0.1, 0.45)),
                   jitter_scale=2.5, shimmer_scale=2.0, wander_cents=30.0)


def scream(rng: np.random.Generator, speaker: Speaker, *, sr: int) -> np.ndarray:
    """A scream: f0 0.5-1.2 kHz, open vowel, amplitude roughness at 30-150 Hz."""
    dur = float(rng.uniform(0.5, 1.5))
    lo = 350.0 if speaker.sex == "male" else 550.0
    f_start = lo * 2.0 ** (rng.uniform(0.0, 9.0) / 12)
    f0_knots = [(0.0, f_start), (dur * 0.3, f_start * 2.0 ** (rng.uniform(0, 4) / 12)),
                (dur, f_start * 2.0 ** (-rng.uniform(2, 9) / 12))]
    v = str(rng.choice(["aa", "ae", "iy", "eh"]))
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=[(0.0, v), (dur, v)], effort=3.5, attack_s=0.05,
                   release_s=0.2, roughness=float(rng.uniform(0.0, 0.3)), jitter_scale=2.0,
                   am_hz=float(rng.uniform(30.0, 150.0)), am_depth=float(rng.uniform(0.3, 0.7)),
                   wander_cents=60.0)


def boo(rng: np.random.Generator, speaker: Speaker, *, sr: int, effort: float = 2.0,
        duration_s: float | None = None) -> np.ndarray:
    """A boo: a sustained low /u/ (F1 ~300 Hz, F2 ~800 Hz), f0 ~100-200 Hz held low on purpose."""
    dur = float(rng.uniform(0.8, 2.5) if duration_s is None else duration_s)
    # booers lower their voice on purpose, but a loud boo still carries the
    # effort's raised f0: a few semitones below it (the long-term spectra of
    # real booing crowds peak at 0.7-1 kHz, with little below 300 Hz)
    f0 = _effort_f0(speaker, effort) * 2.0 ** (rng.uniform(-5.0, 0.0) / 12)
    f0 = float(np.clip(f0, 100.0, 320.0))
    f0_knots = [(0.0, f0 * 2.0 ** (1.0 / 12)), (0.15, f0),
                (dur, f0 * 2.0 ** (-rng.uniform(0, 3) / 12))]
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=[(0.0, "boo"), (dur, "boo")], effort=effort,
                   attack_s=0.03, release_s=0.3, wander_cents=35.0)


def ooh(rng: np.random.Generator, speaker: Speaker, *, sr: int, effort: float = 2.8,
        duration_s: float | None = None, fall_st: float | None = None) -> np.ndarray:
    """The collective "ooh" of a near miss: /u/ opening to /o/, f0 falling 7-14 semitones."""
    dur = float(rng.uniform(0.9, 1.7) if duration_s is None else duration_s)
    fall = float(rng.uniform(7.0, 14.0) if fall_st is None else fall_st)
    top = _effort_f0(speaker, effort) * 2.0 ** (rng.uniform(0.0, 4.0) / 12)
    f0_knots = [(0.0, top * 2.0 ** (-1.0 / 12)), (0.12 * dur, top),
                (dur, top * 2.0 ** (-fall / 12))]
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=[(0.0, "uw"), (0.3 * dur, "uw"), (dur, "ow")], effort=effort,
                   attack_s=0.08, release_s=0.4 * dur, wander_cents=30.0)


def groan(rng: np.random.Generator, speaker: Speaker, *, sr: int,
          effort: float = 1.5) -> np.ndarray:
    """A groan of disappointment ("aww", "ohh"): low, breathy, falling."""
    dur = float(rng.uniform(0.5, 1.3))
    f0 = speaker.f0_hz * 2.0 ** (rng.uniform(0.0, 4.0) / 12)
    f0_knots = [(0.0, f0), (dur, f0 * 2.0 ** (-rng.uniform(3.0, 7.0) / 12))]
    v = str(rng.choice(["ao", "ow", "ah"]))
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=[(0.0, v), (dur, "ah")], effort=effort, attack_s=0.06,
                   release_s=0.3 * dur, breathiness=0.35, wander_cents=25.0)


def laugh(rng: np.random.Generator, speaker: Speaker, *, sr: int,
          effort: float = 1.5) -> np.ndarray:
    """A laugh bout: 3-8 breathy "ha" syllables at 4-5.5 per second, f0 falling over the bout."""
    n_syl = int(rng.integers(3, 9))
    rate = float(rng.uniform(4.0, 5.5))
    dur = n_syl / rate + 0.1
    mean_f0 = {"male": 282.0, "female": 421.0, "child": 450.0}[speaker.sex]
    f0_top = mean_f0 * np.exp(0.15 * rng.standard_normal()) * 2.0 ** (2.0 / 12)
    f0_knots = [(0.0, f0_top), (dur, f0_top * 2.0 ** (-rng.uniform(3.0, 8.0) / 12))]
    m = int(np.ceil(dur * CTRL_RATE)) + 2
    t = np.arange(m) / CTRL_RATE
    # each syllable: aspirated /h/ then the vowel; levels decay through the bout
    ph = (t * rate) % 1.0
    syl = np.minimum((t * rate).astype(int), n_syl - 1)
    rise = np.clip(np.sin(np.pi * np.minimum(ph, 0.65) / 0.65), 0.0, 1.0)
    gate = np.where(ph < 0.65, rise ** 0.7, 0.0)
    gate *= 0.85 ** syl
    gate[t > n_syl / rate] = 0.0
    v = str(rng.choice(["ah", "ae", "eh", "aa"]))
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=[(0.0, v), (dur, v)], effort=effort, attack_s=0.01,
                   release_s=0.05, breathiness=0.6, gate=gate, wander_cents=50.0)


@functools.lru_cache(maxsize=4)
def _fricative_bank(sr: int):
    return {
        "s": scipy.signal.butter(4, [min(4000.0, 0.4 * sr), min(9000.0, 0.45 * sr)],
                                 "bandpass", fs=sr, output="sos"),
        "sh": scipy.signal.butter(4, [2200.0, min(6500.0, 0.45 * sr)], "bandpass", fs=sr,
                                  output="sos"),
        "f": scipy.signal.butter(2, [1200.0, min(10000.0, 0.45 * sr)], "bandpass", fs=sr,
                                 output="sos"),
        "burst": scipy.signal.butter(2, [1500.0, min(5000.0, 0.45 * sr)], "bandpass", fs=sr,
                                     output="sos"),
    }


_FRIC_LEVEL = {"s": 0.3, "sh": 0.28, "f": 0.12, "burst": 0.4}


def speech_phrase(rng: np.random.Generator, speaker: Speaker, *, sr: int, effort: float = 1.0,
                  duration_s: float | None = None) -> np.ndarray:
    """A conversational phrase: syllables with consonants, declination and accents.

    3.5-5.5 syllables per second; each syllable is an optional consonant (stop
    closure and burst, fricative noise, or a voiced nasal) and a vowel drawn
    with roughly the frequencies of English vowels. f0 falls 2-5 semitones over
    the phrase (declination) with one or two accents of 2-5 semitones.
    """
    dur = float(rng.uniform(0.8, 3.0) if duration_s is None else duration_s)
    rate = float(rng.uniform(3.5, 5.5))
    n_syl = max(1, int(dur * rate))
    bounds = np.cumsum(rng.uniform(0.7, 1.3, n_syl))
    bounds = np.concatenate([[0.0], bounds / bounds[-1] * dur])
    m = int(np.ceil(dur * CTRL_RATE)) + 2
    t = np.arange(m) / CTRL_RATE
    gate = np.zeros(m)
    fric = {k: np.zeros(m) for k in _FRIC_LEVEL}
    vowel_knots: list[tuple[float, str]] = []
    base = _effort_f0(speaker, effort)
    f0_knots = [(0.0, base * 2.0 ** (1.0 / 12))]
    accents = set(rng.choice(n_syl, size=min(n_syl, int(rng.integers(1, 3))), replace=False))
    decl = rng.uniform(2.0, 5.0)
    for i in range(n_syl):
        a, b = bounds[i], bounds[i + 1]
        cons = rng.choice(["none", "stop", "fric", "nasal"], p=[0.2, 0.35, 0.25, 0.2])
        c_end = a
        if cons == "stop":
            c_end = a + rng.uniform(0.04, 0.07)
            burst_at = int(c_end * CTRL_RATE)
            fric["burst"][burst_at:burst_at + 3] = 1.0
        elif cons == "fric":
            c_end = a + rng.uniform(0.06, 0.11)
            kind = str(rng.choice(["s", "sh", "f"], p=[0.5, 0.2, 0.3]))
            fric[kind][(t >= a) & (t < c_end)] = 1.0
        elif cons == "nasal":
            c_end = a + rng.uniform(0.04, 0.08)
            gate[(t >= a) & (t < c_end)] = 0.35
        c_end = min(c_end, a + 0.6 * (b - a))
        vmask = (t >= c_end) & (t < b - 0.015)
        gate[vmask] = 1.0
        v = str(rng.choice(_SPEECH_VOWELS, p=_SPEECH_VOWEL_P))
        vowel_knots += [(c_end, v), (max(c_end, b - 0.03), v)]
        mid = 0.5 * (c_end + b)
        st = -decl * mid / dur + (rng.uniform(2.0, 5.0) if i in accents else rng.normal(0, 0.7))
        f0_knots.append((mid, base * 2.0 ** (st / 12)))
    f0_knots.append((dur, base * 2.0 ** (-(decl + 1.0) / 12)))
    # smooth the gate a little (coarticulation) and voice through it
    k = np.hanning(5)
    gate = np.convolve(gate, k / k.sum(), mode="same")
    if not vowel_knots:
        vowel_knots = [(0.0, "ah")]
    y = phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                vowel_knots=vowel_knots, effort=effort, attack_s=0.02, release_s=0.05,
                gate=gate, wander_cents=20.0)
    n = len(y)
    voiced_level = rms(y[np.abs(y) > 0]) if np.any(y) else 0.0
    noise = np.zeros(n)
    bank = _fricative_bank(sr)
    for kind, env in fric.items():
        if not env.any():
            continue
        e = ctrl_to_audio(np.convolve(env, k / k.sum(), mode="same"), n, sr)
        w = scipy.signal.sosfilt(bank[kind], rng.standard_normal(n))
        noise += _FRIC_LEVEL[kind] * w * e
    return y + voiced_level * noise


def chant_phrase(
    rng: np.random.Generator,
    speaker: Speaker,
    *,
    sr: int,
    notes: list[tuple[float, float, float, str]],
    key_hz: float,
    effort: float = 2.5,
    timing_sd_s: float = 0.03,
    pitch_sd_cents: float = 40.0,
    sung: bool = True,
) -> np.ndarray:
    """One chanter's rendition of a chant phrase.

    Parameters
    ----------
    notes : list of (onset_s, duration_s, semitones_re_key, vowel)
        The shared score. Each chanter is late or early by ``timing_sd_s``
        (crowd synchrony is loose: tens of milliseconds) and off pitch by
        ``pitch_sd_cents``; men sing an octave below women and children.
    key_hz : float
        Pitch of the key note for a male voice.
    sung : bool
        Sung melodies glide between notes; spoken slogans fall within each
        syllable like shouts.
    """
    if speaker.sex != "male":
        key_hz = key_hz * 2.0
    offset = rng.normal(0.0, timing_sd_s)
    detune = rng.normal(0.0, pitch_sd_cents) / 100.0
    end = max(o + d for o, d, _, _ in notes) + 0.2
    dur = end + max(0.0, offset)
    m = int(np.ceil(dur * CTRL_RATE)) + 2
    t = np.arange(m) / CTRL_RATE
    gate = np.zeros(m)
    f0_knots: list[tuple[float, float]] = []
    vowel_knots: list[tuple[float, str]] = []
    for onset, length, st, vowel in notes:
        a = max(0.0, onset + offset + rng.normal(0.0, 0.3 * timing_sd_s))
        b = a + length * rng.uniform(0.85, 1.0)
        gate[(t >= a) & (t < b)] = 1.0
        f = key_hz * 2.0 ** ((st + detune) / 12)
        if sung:
            f0_knots += [(a, f), (b, f)]
        else:
            f0_knots += [(a, f * 2.0 ** (1.5 / 12)), (b, f * 2.0 ** (-2.0 / 12))]
        vowel_knots += [(a, vowel), (b, vowel)]
    order = np.argsort([k[0] for k in f0_knots], kind="stable")
    f0_knots = [f0_knots[i] for i in order]
    vorder = np.argsort([k[0] for k in vowel_knots], kind="stable")
    vowel_knots = [vowel_knots[i] for i in vorder]
    k = np.hanning(7)
    gate = np.convolve(gate, k / k.sum(), mode="same")
    return phonate(rng, speaker, sr=sr, duration_s=dur, f0_knots=f0_knots,
                   vowel_knots=vowel_knots, effort=effort, attack_s=0.02, release_s=0.1,
                   gate=gate, wander_cents=15.0, jitter_scale=1.5 if not sung else 1.0)


def babble_bed(
    rng: np.random.Generator,
    n: int,
    sr: int,
    *,
    effort: np.ndarray,
    level_db: np.ndarray,
    modulation_depth: float = 0.1,
    syllable_rate_hz: float = 4.0,
) -> np.ndarray:
    """The voices of a crowd too far or too many to tell apart.

    Gaussian noise whose spectrum follows the long-term speech spectrum at the
    crowd's vocal effort (ANSI S3.5), cross-faded in power between effort
    grades as the effort changes, with a slow random amplitude modulation at
    syllabic rates whose depth shrinks with the number of talkers.

    Parameters
    ----------
    n : int
        Samples.
    effort : np.ndarray [shape=(m,)]
        Control-rate vocal effort in [0, 3.5].
    level_db : np.ndarray [shape=(m,)]
        Control-rate level of the bed at the microphone, dB SPL (``-inf`` silent).
    modulation_depth : float in [0, 1]
        Depth of the amplitude modulation (about ``1 / sqrt(talkers)``).

    Returns
    -------
    y : np.ndarray [shape=(n,)]
    """
    effort = np.clip(np.asarray(effort, float), 0.0, 3.0)
    level = spl_to_amp(np.asarray(level_db, float))
    out = np.zeros(n)
    for k in range(4):
        w = np.maximum(0.0, 1.0 - np.abs(effort - k)) * (level > 0)
        if w.max() <= 1e-3:
            continue
        freqs, lv = speech_spectrum_db(k)
        noise = shaped_noise(rng, n, sr, freqs, lv)
        out += noise * ctrl_to_audio(np.sqrt(w) * level, n, sr)
    if modulation_depth > 0:
        m = len(effort)
        # the envelope of running speech spreads its modulation over about one
        # octave either side of the syllable rate (2-16 Hz): low-pass at twice it
        am = 1.0 + modulation_depth * smooth_noise(rng, m, cutoff_hz=2.0 * syllable_rate_hz)
        out *= ctrl_to_audio(np.maximum(am, 0.0), n, sr)
    return out


def vowel_bed(
    rng: np.random.Generator,
    n: int,
    sr: int,
    *,
    vowel_knots: list[tuple[float, str]],
    effort: float,
    level_db: np.ndarray,
    formant_scale: float = 1.08,
    f0_hz: float | None = None,
    voices: int = 5,
    f0_spread_st: float = 1.5,
    harmonic_share: float = 0.6,
) -> np.ndarray:
    """Many voices on the same vowel: a chorus "ooh", a wave of boos, a chanted "ole".

    When thousands sing or shout the same vowel, their harmonics smear into
    noise (everyone has a different f0) but the formants survive, blurred by
    the spread of vocal-tract lengths: noise with the voice's source tilt
    through widened formant resonators. A crowd on one vowel also converges
    on a pitch: with ``f0_hz``, ``harmonic_share`` of the source's power is
    ``voices`` glottal sources whose f0s spread by ``f0_spread_st`` semitones
    about it (a third of them women, 0.8 octave higher), so the low
    harmonics stay distinct lines, as in recordings of booing and cheering
    crowds, and the high ones merge into the noise.

    Parameters
    ----------
    vowel_knots : list of (time_s, vowel)
        Shared vowel targets, glided between.
    level_db : np.ndarray [shape=(m,)]
        Control-rate level at the microphone, dB SPL.
    formant_scale : float
        Average vocal-tract scale of the crowd (mixed men and women).
    """
    white = rng.standard_normal(n)
    src = scipy.signal.lfilter(*_one_pole(_tilt_cutoff_hz(effort), sr), white)
    src = scipy.signal.lfilter(*_one_pole(300.0, sr), src)  # the glottal flow's own roll-off
    # voices have no energy below their fundamental: the lowest f0 of the crowd
    # (men's, raised by the effort) bounds the chorus from below, where white
    # noise alone would put a shelf of rumble down to 20 Hz
    low_f0 = 0.85 * crowd_f0_hz(effort)
    src = scipy.signal.sosfilt(scipy.signal.butter(4, low_f0, "highpass", fs=sr, output="sos"), src)
    if f0_hz is not None and harmonic_share > 0:
        m = int(np.ceil(n / sr * CTRL_RATE)) + 1
        harm = np.zeros(n)
        for i in range(int(voices)):
            f0 = f0_hz * 2.0 ** (rng.normal(0.0, f0_spread_st) / 12.0) * (1.8 if i % 3 == 2 else 1.0)
            wander = 2.0 ** (0.3 * smooth_noise(rng, m, cutoff_hz=2.0) / 12.0)  # 30 cents
            harm += glottal_source(rng, f0 * ctrl_to_audio(wander, n, sr), sr=sr, effort=effort,
                                   jitter=0.008, shimmer=0.05, breathiness=0.0)
        src = (np.sqrt(harmonic_share) * harm / max(rms(harm), 1e-12)
               + np.sqrt(1.0 - harmonic_share) * src / max(rms(src), 1e-12))
    seg_s = 0.05
    n_seg = int(np.ceil(n / sr / seg_s))
    track = _glide_track(vowel_knots, n_seg, seg_s, formant_scale, effort)
    y = vocal_tract(src, track, sr=sr, seg=int(round(seg_s * sr)), bandwidth_scale=2.0)
    r = rms(y)
    if r > 0:
        y /= r
    return y * ctrl_to_audio(spl_to_amp(np.asarray(level_db, float)), n, sr)
