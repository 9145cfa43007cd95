"""Venues and recording chains: reverberation, distance, background, microphone.

An *event* is recorded in one place with one device, and that leaves the same
signature on every second of every clip from it: the reverberation of the
hall or the stadium, the hum of its ventilation, the roll-off of the phone's
microphone and the cut-off of the codec that put it on the internet. This is
what lets a classifier recognise an event instead of an emotion when blocks
of the same clip land on both sides of a random split.

Where the numbers come from
---------------------------
* Reverberation times (mid-frequency T60): open-air stadiums about 1-2 s (the
  roof over the stands and the stands themselves); large indoor arenas 2-4 s
  at low frequencies and somewhat less at mid frequencies; concert and
  congress halls, station concourses 1-2 s; crowded bars and rooms 0.5-1 s;
  urban streets (a canyon of facades) about 1-2 s with a weak reverberant
  field; open squares 0.5-1 s (Kuttruff, *Room Acoustics*; Kang 2000 on
  street canyons). At high frequencies air absorption shortens T60 (ratios
  per octave band below), more in large volumes.
* The impulse response is exponentially decaying Gaussian noise in octave
  bands, each with its own T60, after a pre-delay and a few early
  reflections; open-air venues add one or two distinct late echoes from
  facing stands or facades (100-500 ms).
* Distance: the direct sound falls as ``1/r``; the reverberant field is
  about uniform, equal to the direct sound at the critical distance
  ``r_c = 0.057 sqrt(V / T60)`` (omnidirectional source; Kuttruff). Air
  absorbs high frequencies over tens of metres (about 0.1 dB/m at 8 kHz,
  ISO 9613-1 at 20 °C and 50 % humidity).
* Microphone and codec: phone and camera microphones roll off below
  80-250 Hz and have a few resonances of several dB; lossy codecs cut the
  top of the spectrum (AAC at common bit rates near 16 kHz, older or
  low-bit-rate recordings near 11 kHz); automatic gain control compresses
  loud passages; loud crowds drive the input into soft clipping; the
  preamplifier adds hiss at -75 to -60 dBFS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from .dsp import (
    add_at,
    butter_sos,
    db_to_amp,
    high_shelf_sos,
    peaking_sos,
    sosfilt,
)
from .events import BackgroundShape, draw_background_shape

__all__ = [
    "VENUE_KINDS",
    "STRATIFIED",
    "OCTAVE_BANDS_HZ",
    "Venue",
    "draw_venue",
    "impulse_response",
    "schroeder_t60",
    "air_absorption_cutoff_hz",
    "Mix",
    "recording_chain",
]

#: The recording chain's draws that :func:`draw_venue` takes from ``strata``.
STRATIFIED = ("lowpass", "hf_rolloff", "highpass")

#: Octave-band centres of the impulse response, Hz.
OCTAVE_BANDS_HZ = np.array([63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0])
_T60_RATIO_INDOOR = np.array([1.35, 1.25, 1.1, 1.0, 1.0, 0.9, 0.75, 0.55, 0.35])
_T60_RATIO_OUTDOOR = np.array([1.15, 1.1, 1.05, 1.0, 1.0, 0.9, 0.75, 0.55, 0.35])

#: Venue kinds: indoor or not, mid-frequency T60 range (s), volume (m^3, indoor) or
#: critical distance (m, open air), crowd size and density (people/m^2).
VENUE_KINDS: dict[str, dict] = {
    "stadium": dict(indoor=False, t60=(1.0, 2.0), rc=(20.0, 40.0), crowd=(8000, 70000),
                    density=(1.5, 3.0)),
    "arena": dict(indoor=True, t60=(1.8, 3.0), volume=(1e5, 6e5), crowd=(3000, 20000),
                  density=(1.5, 3.0)),
    "hall": dict(indoor=True, t60=(1.0, 2.0), volume=(4e3, 4e4), crowd=(100, 3000),
                 density=(0.8, 2.5)),
    "room": dict(indoor=True, t60=(0.5, 1.0), volume=(300.0, 2500.0), crowd=(30, 300),
                 density=(0.8, 2.5)),
    "street": dict(indoor=False, t60=(0.8, 1.8), rc=(8.0, 20.0), crowd=(100, 20000),
                   density=(0.8, 3.0)),
    "square": dict(indoor=False, t60=(0.5, 1.0), rc=(15.0, 40.0), crowd=(200, 50000),
                   density=(0.8, 3.0)),
}


@dataclass(frozen=True)
class Venue:
    """The acoustic signature of one event (place, crowd, recording device).

    Attributes
    ----------
    kind : str
        One of :data:`VENUE_KINDS`.
    indoor : bool
    t60_s : float
        Mid-frequency (500 Hz-1 kHz) reverberation time.
    t60_bands_s : tuple of float
        T60 per octave band of :data:`OCTAVE_BANDS_HZ`.
    critical_distance_m : float
        Where direct and reverberant sound are equally loud.
    crowd_size : float
        People present.
    density : float
        People per square metre around the microphone.
    mic_distance_m : float
        Distance from the microphone to the nearest people.
    predelay_s : float
        Gap between direct sound and the reverberation.
    echoes : tuple of (delay_s, gain_db)
        Distinct late echoes (open air).
    background : BackgroundShape
        Room tone shared by the event's clips.
    background_snr_db : float
        Level of the crowd's reference sound above the room tone.
    wind_db : float
        Wind noise level relative to the crowd reference (``-inf`` none).
    highpass_hz, lowpass_hz : float
        Microphone roll-off and codec cut-off.
    hf_rolloff_hz : float
        Corner of a first-order high-frequency roll-off (6 dB per octave above
        it): distance, an off-axis or cheap microphone, lossy coding; above
        the audio band when there is none.
    eq : tuple of (freq_hz, gain_db, q)
        Microphone/enclosure resonances.
    agc_threshold_db : float
        Automatic gain control threshold relative to the crowd reference level, dB.
    agc_ratio : float
        Compression ratio above the threshold.
    hiss_dbfs : float
        Preamplifier noise, dBFS RMS.
    gain_offset_db : float
        How much louder or quieter than the nominal level this device records.
    """

    kind: str
    indoor: bool
    t60_s: float
    t60_bands_s: tuple
    critical_distance_m: float
    crowd_size: float
    density: float
    mic_distance_m: float
    predelay_s: float
    echoes: tuple
    background: BackgroundShape = field(compare=False)
    background_snr_db: float
    wind_db: float
    highpass_hz: float
    lowpass_hz: float
    eq: tuple
    agc_threshold_db: float
    agc_ratio: float
    hiss_dbfs: float
    gain_offset_db: float
    hf_rolloff_hz: float = 40000.0

    def summary(self) -> dict:
        """The parameters worth recording in a clips table (JSON-able)."""
        return {
            "venue": self.kind,
            "t60_s": round(self.t60_s, 3),
            "critical_distance_m": round(self.critical_distance_m, 2),
            "crowd_size": int(round(self.crowd_size)),
            "mic_distance_m": round(self.mic_distance_m, 2),
            "background_snr_db": round(self.background_snr_db, 1),
            "wind": bool(np.isfinite(self.wind_db)),
            "highpass_hz": round(self.highpass_hz, 1),
            "lowpass_hz": round(self.lowpass_hz, 1),
            "hf_rolloff_hz": round(self.hf_rolloff_hz, 1),
            "agc_ratio": round(self.agc_ratio, 2),
            **self.background.to_dict(),
        }


def draw_venue(
    rng: np.random.Generator,
    kind: str,
    *,
    variability: float = 1.0,
    t60_s: float | None = None,
    crowd_size: float | None = None,
    mic_distance_m: float | None = None,
    background_snr_db: float | None = None,
    strata: dict[str, float] | None = None,
) -> Venue:
    """Draw an event's venue and recording chain.

    Parameters
    ----------
    kind : str
        A key of :data:`VENUE_KINDS`.
    variability : float >= 0
        Scales the spread of everything drawn around the kind's typical value:
        0 gives every event of a kind the same signature (only the noise
        differs), 1 the spread of real recordings as far as we know it.
    t60_s, crowd_size, mic_distance_m, background_snr_db : float, optional
        Fix these instead of drawing them.
    strata : dict of str to float in [0, 1), optional
        The uniform variates of the recording chain's draws that shape a
        spectrum most (:data:`STRATIFIED`: the codec's band limit, the
        high-frequency roll-off, the microphone's high-pass), given instead
        of drawn: :func:`crowdnb.synth.plan_clips` stratifies them over a
        class's events, so that each class spans their distributions however
        few its events are.
    """
    spec = VENUE_KINDS[kind]
    v = float(variability)
    strata = dict(strata or {})

    def uniform(name: str) -> float:
        return float(strata[name]) if name in strata else float(rng.random())

    def spread(lo: float, hi: float, *, log: bool = False, u: float | None = None) -> float:
        u = 0.5 + v * ((rng.random() if u is None else u) - 0.5)
        u = min(max(u, 0.0), 1.0)
        if log:
            return float(np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))))
        return float(lo + u * (hi - lo))

    t60 = spread(*spec["t60"]) if t60_s is None else float(t60_s)
    ratios = _T60_RATIO_INDOOR if spec["indoor"] else _T60_RATIO_OUTDOOR
    bands = t60 * ratios * np.exp(v * rng.normal(0.0, 0.04, len(ratios)))
    bands[3:5] = t60  # the mid-frequency T60 is what was asked
    if spec["indoor"]:
        volume = spread(*spec["volume"], log=True)
        rc = 0.057 * np.sqrt(volume / t60)
    else:
        rc = spread(*spec["rc"], log=True)
    crowd = spread(*spec["crowd"], log=True) if crowd_size is None else float(crowd_size)
    density = spread(*spec["density"])
    mic = spread(0.6, 3.0, log=True) if mic_distance_m is None else float(mic_distance_m)
    echoes: tuple = ()
    if not spec["indoor"]:
        k = int(rng.integers(0, 3))
        echoes = tuple((float(rng.uniform(0.1, 0.5)), float(rng.uniform(-14.0, -6.0)))
                       for _ in range(k))
    snr = spread(12.0, 35.0) if background_snr_db is None else float(background_snr_db)
    wind = -np.inf
    if not spec["indoor"] and rng.random() < 0.35:
        wind = float(rng.uniform(-25.0, -8.0))
    # Published crowd audio is often resampled or narrow-band: of the reference
    # recordings the realism check was calibrated on, one in five had a
    # bandwidth of 11 kHz or less (a 22.05 kHz and an 8 kHz file).
    u = uniform("lowpass")
    if u < 0.04:
        lowpass = rng.uniform(3400.0, 3900.0)  # telephone band, 8 kHz files
    elif u < 0.08:
        lowpass = rng.uniform(6800.0, 7800.0)  # 16 kHz files (speech corpora, wide-band calls)
    elif u < 0.18:
        lowpass = rng.uniform(9500.0, 11000.0)  # 22.05 kHz files, low bit rate, old phones
    elif u < 0.7:
        lowpass = rng.uniform(15000.0, 16800.0)  # AAC at 96-128 kbit/s
    else:
        lowpass = rng.uniform(18500.0, 20500.0)  # high bit rate, Opus
    if v == 0:
        lowpass = 16000.0
    # Real crowd recordings lose their top octaves far more and far more
    # variously than a studio chain: the reference recordings' long-term
    # spectra fall 10-35 dB from 2 to 8 kHz. Drawn for every class alike, so
    # that the slope tells nothing about the class: one event in four keeps
    # its top octaves, the others roll off from a corner between 2 and 9 kHz.
    u = uniform("hf_rolloff")  # 0: none, then the corner falls from 9 to 2 kHz
    hf_rolloff = 40000.0 if (v == 0 or u < 0.25) else \
        float(np.exp(np.log(9000.0) - (u - 0.25) / 0.75 * np.log(9000.0 / 2000.0)))
    eq = tuple((float(np.exp(rng.uniform(np.log(800.0), np.log(9000.0)))),
                float(v * rng.uniform(-4.0, 4.0)), float(rng.uniform(0.7, 3.0)))
               for _ in range(3))
    return Venue(
        kind=kind,
        indoor=bool(spec["indoor"]),
        t60_s=float(t60),
        t60_bands_s=tuple(float(b) for b in bands),
        critical_distance_m=float(rc),
        crowd_size=float(crowd),
        density=float(density),
        mic_distance_m=float(mic),
        predelay_s=spread(0.005, 0.04) if spec["indoor"] else spread(0.01, 0.06),
        echoes=echoes,
        background=draw_background_shape(rng, indoor=bool(spec["indoor"]), variability=v),
        background_snr_db=float(snr),
        wind_db=wind,
        # from a measurement microphone's 20 Hz to a phone's or a sound
        # library's cut below 300 Hz, as in the reference recordings
        highpass_hz=spread(20.0, 300.0, log=True, u=uniform("highpass")),
        lowpass_hz=float(lowpass),
        eq=eq,
        agc_threshold_db=spread(-4.0, 6.0),
        agc_ratio=spread(1.5, 4.0),
        hiss_dbfs=spread(-78.0, -62.0),
        gain_offset_db=float(v * rng.normal(0.0, 3.0)),
        hf_rolloff_hz=hf_rolloff,
    )


def impulse_response(venue: Venue, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The reverberant part of the venue's impulse response (direct sound excluded).

    Octave bands of Gaussian noise, each decaying as ``exp(-6.91 t / T60_band)``,
    after the pre-delay; a few early reflections in the first 80 ms; distinct
    echoes in open-air venues. Normalised to unit energy, so that convolving a
    signal keeps its power: the reverberant level is set by the caller.

    Returns
    -------
    ir : np.ndarray [shape=(L,)]
    """
    t60 = np.asarray(venue.t60_bands_s, float)
    length = int(min(1.2 * t60.max() + venue.predelay_s + 0.1, 8.0) * sr)
    start = int(venue.predelay_s * sr)
    n = length - start
    t = np.arange(n) / sr
    ir_tail = np.zeros(n)
    nyq = sr / 2.0
    for k, (fc, t_b) in enumerate(zip(OCTAVE_BANDS_HZ, t60)):
        lo, hi = fc / np.sqrt(2.0), fc * np.sqrt(2.0)
        if lo >= 0.95 * nyq:
            break
        noise = rng.standard_normal(n)
        if k == 0:
            sos = butter_sos(4, (hi,), "lowpass", sr)
        elif hi >= 0.95 * nyq or k == len(OCTAVE_BANDS_HZ) - 1:
            sos = butter_sos(4, (lo,), "highpass", sr)
        else:
            sos = butter_sos(2, (lo, hi), "bandpass", sr)
        band = scipy.signal.sosfilt(sos, noise)
        ir_tail += band * np.exp(-6.908 * t / t_b)
    # the diffuse field builds up over the first tens of milliseconds
    ir_tail *= 1.0 - np.exp(-t / 0.01)
    energy_density = np.sqrt(np.mean(ir_tail[: int(0.05 * sr)] ** 2))
    for _ in range(int(rng.integers(3, 7))):
        d = int(rng.uniform(0.0, 0.08) * sr)
        if d < n:
            ir_tail[d] += rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 8.0) * energy_density
    for delay, gain_db in venue.echoes:
        d = int(delay * sr) - start
        if 0 < d < n - int(0.02 * sr):
            local = np.sqrt(np.mean(ir_tail[max(0, d - 200):d + 200] ** 2))
            # an echo is a smeared copy of the direct sound, stronger than the local tail
            burst = rng.standard_normal(int(0.01 * sr)) * np.hanning(int(0.01 * sr))
            ir_tail[d:d + len(burst)] += burst * local * db_to_amp(gain_db + 24.0)
    ir = np.concatenate([np.zeros(start), ir_tail])
    return ir / np.sqrt(np.sum(ir * ir))


def schroeder_t60(ir: np.ndarray, sr: int, *, band_hz: float | None = 1000.0,
                  db_range: tuple[float, float] = (-5.0, -35.0)) -> float:
    """Reverberation time from an impulse response by Schroeder backward integration.

    Parameters
    ----------
    ir : np.ndarray [shape=(L,)]
    band_hz : float or None
        Octave band to measure in (None: broadband).
    db_range : (float, float)
        The part of the energy decay curve fitted by a line (T30 by default:
        -5 to -35 dB, extrapolated to 60 dB).

    Returns
    -------
    t60 : float
        Seconds.
    """
    x = np.asarray(ir, float)
    if band_hz is not None:
        sos = butter_sos(3, (band_hz / np.sqrt(2.0), band_hz * np.sqrt(2.0)), "bandpass", sr)
        x = scipy.signal.sosfiltfilt(sos, x)
    edc = np.cumsum((x * x)[::-1])[::-1]
    edc_db = 10.0 * np.log10(edc / edc[0] + 1e-300)
    hi, lo = db_range
    i0 = int(np.argmax(edc_db <= hi))
    i1 = int(np.argmax(edc_db <= lo))
    if i1 <= i0 + 2:
        return float("nan")
    t = np.arange(i0, i1) / sr
    slope, _ = np.polyfit(t, edc_db[i0:i1], 1)
    return float(-60.0 / slope)


def air_absorption_cutoff_hz(distance_m: float) -> float:
    """Corner of a one-pole low-pass losing about 0.1 dB/m at 8 kHz (ISO 9613-1)."""
    loss_db = 0.1 * max(distance_m, 0.0)
    if loss_db < 0.3:
        return 20000.0
    return float(8000.0 / np.sqrt(10.0 ** (loss_db / 10.0) - 1.0))


class Mix:
    """Buses a scene renders into: near and far direct sound, and the reverberation send.

    Sources are given "at 1 m"; :meth:`add` applies ``1/r`` to the direct sound
    and the venue's reverberant gain ``1/r_c`` to the send, so the
    direct-to-reverberant ratio follows the distance.
    """

    FAR_M = 25.0

    def __init__(self, n: int, sr: int, venue: Venue):
        self.n, self.sr, self.venue = n, sr, venue
        self.buses = {(kind, voice): np.zeros(n) for kind in ("near", "far", "wet")
                      for voice in (False, True)}
        self.far_distance_m = 60.0

    def add(self, x: np.ndarray, *, distance_m: float, start: int = 0,
            reverb: float = 1.0, voice: bool = False) -> None:
        """Add a source at ``distance_m`` starting at sample ``start``; ``voice``: a
        human voice, heard with its directivity (:func:`voice_power_sos`)."""
        r = max(float(distance_m), 0.3)
        add_at(self.buses["far" if r > self.FAR_M else "near", voice], x / r, start)
        add_at(self.buses["wet", voice], x * (reverb / self.venue.critical_distance_m), start)

    def add_diffuse(self, x: np.ndarray, *, direct_gain: float, reverb_gain: float,
                    far: bool = True, voice: bool = False) -> None:
        """Add a spatially spread source (a crowd bed) with precomputed gains."""
        self.buses["far" if far else "near", voice] += x * direct_gain
        self.buses["wet", voice] += x * reverb_gain

    def _bus(self, kind: str) -> np.ndarray:
        """A bus's sources, the voices among them through :func:`voice_power_sos`."""
        voices = self.buses[kind, True]
        if not np.any(voices):
            return self.buses[kind, False]
        return self.buses[kind, False] + sosfilt(voice_power_sos(self.sr), voices)

    def render(self, ir: np.ndarray) -> np.ndarray:
        """Direct sound plus reverberation: the sound field at the microphone (Pa)."""
        near, far, wet = (self._bus(kind) for kind in ("near", "far", "wet"))
        if np.any(far):
            fc = air_absorption_cutoff_hz(self.far_distance_m)
            if fc < 0.45 * self.sr:
                a = np.exp(-2.0 * np.pi * fc / self.sr)
                far = scipy.signal.lfilter([1.0 - a], [1.0, -a], far)
        wet = scipy.signal.fftconvolve(wet, ir)[: self.n] if np.any(wet) else 0.0
        return near + far + wet


#: A talker's directivity index (dB) in octave bands 125 Hz-8 kHz: how far the
#: level on the mouth's axis, where speech spectra are measured (ANSI S3.5),
#: exceeds the average over all directions; about 1.5 dB at low frequencies
#: rising to 6-7 dB at 8 kHz, as the head and the mouth opening beam the high
#: frequencies forwards (Chu & Warnock 2002; Monson et al. 2012).
VOICE_DI_DB = (1.5, 1.5, 1.6, 2.5, 4.2, 4.9, 6.5)


def voice_power_sos(sr: int) -> np.ndarray:
    """From the on-axis spectrum of a voice to the one a crowd's microphone hears.

    People in a crowd face every way and the reverberant field collects the
    sound they radiate in all directions, so a voice reaches the microphone
    with its sound power's spectrum: the on-axis one less the directivity
    index (:data:`VOICE_DI_DB`), a gain of -1.5 dB and two high shelves
    (-3 dB above 1.2 kHz, -2.5 dB more above 6 kHz) that follow the index
    within 0.5 dB from 125 Hz to 8 kHz.
    """
    sos = np.concatenate([high_shelf_sos(1200.0, -3.0, sr), high_shelf_sos(6000.0, -2.5, sr)])
    sos[0, :3] *= db_to_amp(-VOICE_DI_DB[0])
    return sos


def recording_chain(
    pressure: np.ndarray,
    venue: Venue,
    sr: int,
    rng: np.random.Generator,
    *,
    reference_spl_db: float,
    level_dbfs: float,
    background: np.ndarray | None = None,
    wind: np.ndarray | None = None,
) -> np.ndarray:
    """From sound pressure at the microphone to the samples of a published recording.

    Parameters
    ----------
    pressure : np.ndarray [shape=(n,)]
        Sound field at the microphone (1.0 = 94 dB SPL).
    reference_spl_db : float
        The event's nominal crowd level: recorded at ``level_dbfs`` (plus the
        device's own offset); the AGC threshold is relative to it.
    background, wind : np.ndarray [shape=(n,)], optional
        Room tone and wind noise, already at their levels (Pa).

    Returns
    -------
    y : np.ndarray [shape=(n,)]
        Samples in [-1, 1].
    """
    y = pressure
    if background is not None:
        y = y + background
    if wind is not None:
        y = y + wind
    # microphone roll-off, resonances and codec cut-off: one cascade, one pass
    sections = [butter_sos(2, (venue.highpass_hz,), "highpass", sr)]
    sections += [peaking_sos(f, g, q, sr) for f, g, q in venue.eq if abs(g) > 0.05]
    if venue.lowpass_hz < 0.45 * sr:
        sections.append(butter_sos(8, (venue.lowpass_hz,), "lowpass", sr))
    if venue.hf_rolloff_hz < 0.45 * sr:
        sections.append(butter_sos(1, (venue.hf_rolloff_hz,), "lowpass", sr))
    y = sosfilt(np.concatenate(sections, axis=0), y)
    gain_db = level_dbfs - (reference_spl_db - 94.0) + venue.gain_offset_db
    y = y * db_to_amp(gain_db)
    y = _agc(y, sr, threshold_dbfs=level_dbfs + venue.agc_threshold_db, ratio=venue.agc_ratio)
    y = y + db_to_amp(venue.hiss_dbfs) * rng.standard_normal(len(y))
    return _soft_clip(y)


def _agc(y: np.ndarray, sr: int, *, threshold_dbfs: float, ratio: float) -> np.ndarray:
    """Automatic gain control: a slow compressor on 10 ms RMS frames (attack 30 ms,
    release 500 ms), gain interpolated between frames."""
    hop = int(sr / 100)
    n_frames = int(np.ceil(len(y) / hop))
    pad = np.zeros(n_frames * hop)
    pad[: len(y)] = y
    frames = pad.reshape(n_frames, hop)
    level = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    over = np.maximum(level - threshold_dbfs, 0.0)
    target = -over * (1.0 - 1.0 / ratio)
    # attack fast, release slow: a peak-hold of the gain reduction, then smoothing
    a_att, a_rel = np.exp(-1.0 / 3.0), np.exp(-1.0 / 50.0)
    gr = np.empty(n_frames)
    g = 0.0
    for i, tgt in enumerate(target):
        g = a_att * g + (1 - a_att) * tgt if tgt < g else a_rel * g + (1 - a_rel) * tgt
        gr[i] = g
    centres = (np.arange(n_frames) + 0.5) * hop
    gain = np.interp(np.arange(len(y)), centres, gr)
    return y * db_to_amp(gain)


def _soft_clip(y: np.ndarray, knee: float = 0.8) -> np.ndarray:
    """Linear up to ``knee``, then bending smoothly towards full scale (input saturation)."""
    a = np.abs(y)
    over = a > knee
    if not np.any(over):
        return y
    out = y.copy()
    out[over] = np.sign(y[over]) * (knee + (1.0 - knee) * np.tanh((a[over] - knee) / (1.0 - knee)))
    return out


