"""Scenes: the crowds of each class, and attacking actions of a football match.

A clip is rendered as a layered scene: a few explicit people near the
microphone (voices, clappers, whistlers, walkers) over the bed of everyone
further away, plus the sources that make an event what it is (drums, horns,
sirens, bangs, a megaphone), placed at distances in the event's venue and
recorded through its microphone and codec (:mod:`crowdnb.synth.venue`).

Classes follow the paper (Franzoni & Biondi): *joy* is cheering, crowd
shouting, big-crowd clapping and approving whistles; *anger* is rioting:
shouting, banging, clapping, booing and police intervention; *neutral* is
people chatting and laughing at crowded events. As the paper insists, the
classes share ingredients (noise, clapping, continuous and rhythmic sounds):
every ingredient can occur in every class, with class-specific odds and
strength, and ``class_overlap`` blends each class's recipe with the average
recipe (0: each class its own recipe; 1: all classes drawn from the same
recipe, the task is at chance). Shared ingredients blend at the rate
``class_overlap``, the vocal behaviour that defines a class (cheering,
shouting and booing, chatting and laughing) and the crowd's vocal effort at
its square.

How many people are audible, and how loud
-----------------------------------------
People stand around the microphone at ``density`` per square metre out to
the radius ``R`` that holds the crowd. The direct sound of a ring of people
between ``r1`` and ``r2`` adds up, in power, to ``density * theta *
ln(r2 / r1)`` voices at 1 m (``theta`` is the angle the crowd occupies), and
their reverberant sound to ``N / r_c**2``: the crowd's level grows only with
the logarithm of its radius, but its texture changes. The nearest few people
are rendered one by one; the rest is the bed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import applause as _applause
from . import events as _events
from . import voices as _voices
from .dsp import (
    CTRL_RATE,
    ctrl_length,
    ctrl_to_audio,
    scatter_kernels,
    smooth_noise,
    spl_to_amp,
    telegraph,
)
from .venue import Mix, Venue, draw_venue, impulse_response, recording_chain

__all__ = [
    "CLASSES",
    "OUTCOMES",
    "INGREDIENTS",
    "RECIPES",
    "SCENES",
    "Ingredient",
    "Crowd",
    "Event",
    "blend_recipe",
    "make_event",
    "make_match",
    "render_emotion_clip",
    "render_action_clip",
]

CLASSES = ("joy", "anger", "neutral")
OUTCOMES = ("goal", "no_goal")


@dataclass(frozen=True)
class Ingredient:
    """How an ingredient enters a class's clips.

    Attributes
    ----------
    presence : float
        Probability that a clip of the class contains it at all.
    on_fraction : float
        Share of the clip during which it is active, when present.
    mean_on_s : float
        Mean length of one active episode.
    strength : float in (0, 1]
        How much of the crowd takes part, or how intense it is, when active:
        a whole stadium applauding (1) or a group at the bar (0.15); a
        piercing finger whistle (1) or someone whistling (0.2). It scales the
        share of the crowd, the number of people near the microphone, the
        rate of sporadic sources and their level (``10 log10(strength)`` dB).
    """

    presence: float
    on_fraction: float
    mean_on_s: float
    strength: float = 1.0


def _ing(p, f, s, k=1.0):
    return Ingredient(p, f, s, k)


INGREDIENTS = ("babble", "laughter", "cheer", "shout", "scream", "chant", "boo", "applause",
               "whistle", "horn", "drum", "banging", "bangs", "siren", "megaphone", "footsteps")
_VOCAL_CORE = frozenset({"babble", "laughter", "cheer", "shout", "scream", "boo"})

#: Class recipes: the odds and strength of each ingredient. Every ingredient
#: is possible in every class (the paper chose clips that share noise,
#: clapping, continuous and rhythmic sounds); the odds say what is typical.
RECIPES: dict[str, dict[str, Ingredient]] = {
    "joy": {
        "cheer": _ing(1.0, 0.9, 10.0), "applause": _ing(0.8, 0.45, 6.0),
        "whistle": _ing(0.7, 0.4, 4.0), "chant": _ing(0.5, 0.35, 12.0),
        "horn": _ing(0.35, 0.3, 4.0), "drum": _ing(0.25, 0.5, 15.0),
        "scream": _ing(0.4, 0.25, 3.0, 0.6), "babble": _ing(0.3, 0.4, 8.0, 0.5),
        "laughter": _ing(0.2, 0.2, 3.0, 0.5), "shout": _ing(0.3, 0.3, 4.0, 0.5),
        "boo": _ing(0.05, 0.1, 3.0, 0.3), "bangs": _ing(0.1, 0.15, 2.0, 0.5),
        "banging": _ing(0.05, 0.15, 3.0, 0.3), "footsteps": _ing(0.1, 0.3, 8.0, 0.5),
        "siren": _ing(0.03, 0.3, 8.0, 0.5), "megaphone": _ing(0.05, 0.2, 8.0, 0.5),
    },
    "anger": {
        "shout": _ing(1.0, 0.85, 8.0), "chant": _ing(0.6, 0.4, 12.0),
        "banging": _ing(0.7, 0.4, 6.0), "boo": _ing(0.5, 0.25, 4.0),
        "whistle": _ing(0.6, 0.3, 4.0, 0.8), "applause": _ing(0.35, 0.25, 5.0, 0.4),
        "siren": _ing(0.55, 0.35, 12.0), "megaphone": _ing(0.45, 0.3, 8.0),
        "bangs": _ing(0.45, 0.15, 3.0), "footsteps": _ing(0.5, 0.35, 8.0),
        "scream": _ing(0.45, 0.2, 3.0), "drum": _ing(0.3, 0.4, 15.0, 0.8),
        "horn": _ing(0.2, 0.15, 4.0, 0.6), "babble": _ing(0.3, 0.4, 8.0, 0.5),
        "cheer": _ing(0.15, 0.2, 4.0, 0.4), "laughter": _ing(0.05, 0.1, 3.0, 0.3),
    },
    "neutral": {
        "babble": _ing(1.0, 1.0, 30.0), "laughter": _ing(0.7, 0.3, 3.0),
        "footsteps": _ing(0.5, 0.4, 10.0, 0.6), "applause": _ing(0.1, 0.1, 4.0, 0.15),
        "whistle": _ing(0.03, 0.1, 3.0, 0.2), "cheer": _ing(0.1, 0.1, 3.0, 0.2),
        "banging": _ing(0.5, 0.3, 4.0, 0.3), "megaphone": _ing(0.15, 0.15, 8.0, 0.5),
        "horn": _ing(0.05, 0.1, 3.0, 0.2), "chant": _ing(0.05, 0.15, 10.0, 0.2),
        "drum": _ing(0.05, 0.2, 10.0, 0.2), "siren": _ing(0.08, 0.2, 10.0, 0.5),
        "shout": _ing(0.1, 0.1, 3.0, 0.2), "scream": _ing(0.02, 0.05, 2.0, 0.2),
        "boo": _ing(0.02, 0.05, 2.0, 0.2), "bangs": _ing(0.02, 0.05, 2.0, 0.2),
    },
    # anger as a booing crowd: a stand or a hall booing a team, a referee or a
    # speaker, whistling its disapproval, with shouts and chanted insults
    "booing": {
        "boo": _ing(1.0, 0.75, 8.0), "whistle": _ing(0.7, 0.35, 4.0, 0.8),
        "shout": _ing(0.6, 0.3, 3.0, 0.5), "chant": _ing(0.35, 0.3, 10.0, 0.6),
        "babble": _ing(0.4, 0.4, 8.0, 0.5), "applause": _ing(0.15, 0.1, 3.0, 0.3),
        "drum": _ing(0.05, 0.3, 10.0, 0.5), "horn": _ing(0.15, 0.15, 3.0, 0.5),
        "scream": _ing(0.1, 0.1, 2.0, 0.4), "cheer": _ing(0.05, 0.1, 3.0, 0.3),
        "laughter": _ing(0.05, 0.1, 3.0, 0.3), "banging": _ing(0.1, 0.15, 3.0, 0.3),
        "bangs": _ing(0.05, 0.1, 2.0, 0.3), "siren": _ing(0.02, 0.2, 8.0, 0.3),
        "megaphone": _ing(0.02, 0.2, 8.0, 0.3), "footsteps": _ing(0.1, 0.3, 8.0, 0.5),
    },
}

#: The scenes a class's events are drawn from, with their odds: the paper's
#: anger is "rioting" and "booing" alike, and the real angry crowds the
#: realism check was calibrated on were booing ones.
SCENES = {"joy": {"joy": 1.0}, "anger": {"anger": 0.5, "booing": 0.5},
          "neutral": {"neutral": 1.0}}

#: Typical vocal effort of each class's crowd (0 normal .. 3 shout, ANSI S3.5):
#: chatting crowds talk at raised effort (Lombard effect), cheering and rioting
#: crowds shout.
CLASS_EFFORT = {"joy": 2.3, "anger": 2.6, "booing": 2.4, "neutral": 0.6}

#: Where each class's recordings tend to be made.
VENUE_ODDS = {
    "joy": {"stadium": 0.35, "arena": 0.3, "hall": 0.1, "street": 0.1, "square": 0.15,
            "room": 0.0},
    "anger": {"street": 0.5, "square": 0.35, "stadium": 0.1, "hall": 0.05, "arena": 0.0,
              "room": 0.0},
    "neutral": {"hall": 0.3, "room": 0.25, "street": 0.2, "square": 0.15, "stadium": 0.1,
                "arena": 0.0},
    "booing": {"stadium": 0.4, "arena": 0.35, "hall": 0.2, "square": 0.05, "street": 0.0,
               "room": 0.0},
}

#: How densely each class's crowd stands, relative to its venue kind's typical
#: density, and how large it is: celebrating audiences pack stands and
#: arenas, protesters spread along streets in groups of hundreds to thousands.
CLASS_CROWD = {"joy": (1.0, 1.0), "anger": (0.5, 0.3), "booing": (1.0, 1.0),
               "neutral": (0.8, 1.0)}

# Share of the crowd taking part in a vocal ingredient while it is active.
_CROWD_SHARE = {"babble": 0.4, "cheer": 0.75, "shout": 0.3}
# Maximum number of people near the microphone rendered one by one, per ingredient.
# Real booing and cheering crowds show the harmonics of their nearest voices
# (horizontal lines in a spectrogram) above the bed: enough booers and cheerers
# are rendered one by one for that texture to survive.
_EXPLICIT = {"babble": 6, "cheer": 9, "shout": 8, "laughter": 3, "scream": 2, "boo": 12,
             "chant": 5}


def _class_mean(values: dict, label: str) -> np.ndarray:
    """A per-scene quantity averaged over a class's scenes, by their odds."""
    return sum(p * np.asarray(values[scene], float) for scene, p in SCENES[label].items())


def blend_recipe(label: str, overlap: float, *, scene: str | None = None
                 ) -> tuple[dict[str, Ingredient], float, dict]:
    """A class's recipe (or one of its scenes', :data:`SCENES`) blended with the average of all classes.

    Returns
    -------
    ingredients : dict[str, Ingredient]
    effort : float
        Typical vocal effort.
    venue_odds : dict[str, float]
    """
    o = float(overlap)
    mean = {}
    for name in INGREDIENTS:
        fields = ("presence", "on_fraction", "mean_on_s", "strength")
        per_scene = {sc: [getattr(RECIPES[sc][name], f) for f in fields] for sc in RECIPES}
        mean[name] = Ingredient(*(float(v) for v in np.mean(
            [_class_mean(per_scene, c) for c in CLASSES], axis=0)))
    scene = label if scene is None else scene
    if scene not in SCENES[label]:
        raise ValueError(f"{label} has no scene {scene!r} (scenes: {', '.join(SCENES[label])})")
    own = RECIPES[scene]
    ingredients = {}
    for name in INGREDIENTS:
        # what the paper says the classes share (clapping, whistles, rhythmic and
        # continuous sounds) blends at the rate `overlap`; the vocal behaviour
        # that defines a class (cheering, shouting and booing, chatting and
        # laughing) at the slower rate overlap**2, so that 1 still makes the
        # classes identical
        w = o * o if name in _VOCAL_CORE else o
        ingredients[name] = Ingredient(
            (1 - w) * own[name].presence + w * mean[name].presence,
            (1 - w) * own[name].on_fraction + w * mean[name].on_fraction,
            (1 - w) * own[name].mean_on_s + w * mean[name].mean_on_s,
            (1 - w) * own[name].strength + w * mean[name].strength,
        )
    # shared ingredients do not make a chatting crowd shout: effort blends slowly too
    h = o * o
    effort = (1 - h) * CLASS_EFFORT[scene] + h * float(np.mean(
        [_class_mean(CLASS_EFFORT, c) for c in CLASSES]))
    kinds = sorted(VENUE_ODDS["joy"])
    class_odds = {c: _class_mean({sc: [VENUE_ODDS[sc][k] for k in kinds] for sc in VENUE_ODDS}, c)
                  for c in CLASSES}
    mean_odds = np.mean([class_odds[c] for c in CLASSES], axis=0)
    odds = {k: (1 - o) * VENUE_ODDS[scene][k] + o * mean_odds[i] for i, k in enumerate(kinds)}
    return ingredients, float(effort), odds


@dataclass(frozen=True)
class Crowd:
    """What the people of one event are like (shared by its clips).

    Attributes
    ----------
    female_share, child_share : float
    key_hz : float
        Key of the crowd's chants for men's voices.
    tempo_bpm : float
        Tempo of chants and drums.
    clap_rate_hz : float
        Mean free clapping rate of this audience.
    chants : tuple
        The repertoire: scores of (onset_s, duration_s, semitones, vowel).
    sung : bool
        Melodic songs (celebrations) or spoken slogans (protests).
    siren_kind, bang_material : str
    megaphone_speaker : voices.Speaker
    """

    female_share: float
    child_share: float
    key_hz: float
    tempo_bpm: float
    clap_rate_hz: float
    chants: tuple
    sung: bool
    siren_kind: str
    bang_material: str
    megaphone_speaker: _voices.Speaker


def _chant_score(rng: np.random.Generator, tempo_bpm: float, sung: bool) -> tuple:
    """A chant phrase: 4-8 syllables over one or two bars."""
    beat = 60.0 / tempo_bpm
    if sung:
        scale = [0, 2, 4, 5, 7, 9, 12]
        rhythms = [[1, 1, 0.5, 0.5, 1], [0.5, 0.5, 1, 0.5, 0.5, 1], [1, 0.5, 0.5, 1, 1],
                   [0.75, 0.25, 1, 0.75, 0.25, 1]]
        vowels = ["ow", "eh", "ey", "aa", "ow", "iy"]
    else:
        scale = [0, 0, 2, -2, 3]
        rhythms = [[1, 1, 1, 1], [0.5, 0.5, 1, 0.5, 0.5, 1], [1, 0.5, 0.5, 2]]
        vowels = ["ey", "ow", "aa", "uw", "ah", "eh"]
    rhythm = rhythms[int(rng.integers(0, len(rhythms)))]
    notes, t = [], 0.0
    for dur in rhythm:
        notes.append((t, dur * beat * 0.9, float(rng.choice(scale)), str(rng.choice(vowels))))
        t += dur * beat
    # a bar of rest or claps before the phrase repeats
    return tuple(notes) + ((t + beat * float(rng.choice([1, 2])), 0.0, 0.0, ""),)


def _draw_crowd(rng: np.random.Generator, label: str) -> Crowd:
    sung = label in ("joy", "match") or rng.random() < 0.2
    tempo = float(rng.uniform(95.0, 135.0))
    female = {"joy": 0.35, "anger": 0.25, "neutral": 0.5, "match": 0.2}[label]
    return Crowd(
        female_share=float(np.clip(female + rng.normal(0.0, 0.08), 0.05, 0.7)),
        child_share=0.05 if label in ("joy", "neutral") else 0.01,
        key_hz=float(rng.uniform(150.0, 240.0)),
        tempo_bpm=tempo,
        clap_rate_hz=float(rng.uniform(3.6, 5.0)),
        chants=tuple(_chant_score(rng, tempo, sung) for _ in range(3)),
        sung=bool(sung),
        siren_kind=str(rng.choice(["hilo", "wail", "yelp"], p=[0.5, 0.3, 0.2])),
        bang_material=str(rng.choice(["metal", "wood", "pot"], p=[0.5, 0.3, 0.2])),
        megaphone_speaker=_voices.draw_speaker(rng, female_share=0.2, child_share=0.0),
    )


@dataclass
class Event:
    """One recording event: venue, crowd, impulse response, calibration."""

    event_id: str
    label: str
    venue: Venue
    crowd: Crowd
    ir: np.ndarray
    effort: float
    reference_spl_db: float
    scene: str = ""

    def summary(self) -> dict:
        return {"event_label": self.label, "scene": self.scene or self.label,
                "effort": round(self.effort, 2), **self.venue.summary()}


def _geometry(venue: Venue, *, explicit: int = 6, share: float = 0.5):
    """Crowd geometry: bed inner radius, bed direct and reverberant power (in voices at 1 m)."""
    theta = 1.5 * np.pi  # the crowd surrounds the microphone on most sides
    rho = venue.density
    r0 = venue.mic_distance_m
    big_r = np.sqrt(2.0 * venue.crowd_size / (rho * theta) + r0 ** 2)
    r_eff = np.sqrt(r0 ** 2 + 2.0 * explicit / (rho * theta * max(share, 0.05)))
    r_eff = float(min(r_eff, 0.9 * big_r))
    direct = rho * theta * np.log(big_r / max(r_eff, 0.1)) if big_r > r_eff else 0.0
    reverb = venue.crowd_size / venue.critical_distance_m ** 2
    return r_eff, float(direct), float(reverb), float(big_r)


def make_event(event_id: str, label: str, rng: np.random.Generator, *, params, sr: int,
               strata: dict[str, float] | None = None) -> Event:
    """Draw an event of a class: its scene, venue (by the scene's blended odds), crowd, IR, calibration.

    ``strata`` fixes the recording chain's stratified draws (:func:`crowdnb.synth.venue.draw_venue`).
    """
    scenes = SCENES[label]
    names = list(scenes)
    scene = names[0] if len(names) == 1 else str(
        rng.choice(names, p=np.array([scenes[k] for k in names])))
    _, effort, odds = blend_recipe(label, params.class_overlap, scene=scene)
    kinds = sorted(odds)
    p = np.array([odds[k] for k in kinds])
    kind = str(rng.choice(kinds, p=p / p.sum()))
    venue = draw_venue(rng, kind, variability=params.event_variability, t60_s=params.t60_s,
                       crowd_size=params.crowd_size, mic_distance_m=params.mic_distance_m,
                       background_snr_db=params.background_snr_db, strata=strata)
    o = params.class_overlap
    dens, size = ((1 - o) * np.array(CLASS_CROWD[scene])
                  + o * np.mean([_class_mean(CLASS_CROWD, c) for c in CLASSES], axis=0))
    venue = dataclasses.replace(
        venue, density=float(venue.density * dens),
        crowd_size=float(venue.crowd_size * (size if params.crowd_size is None else 1.0)))
    crowd = _draw_crowd(rng, label)
    effort = float(np.clip(effort + params.event_variability * rng.normal(0.0, 0.25), 0.3, 3.3))
    ir = impulse_response(venue, sr, rng)
    _, direct, reverb, _ = _geometry(venue)
    ref = float(_voices.effort_level_db(effort) + 10 * np.log10(0.5 * (direct + reverb) + 1.0))
    return Event(event_id, label, venue, crowd, ir, effort, ref, scene)


def make_match(event_id: str, rng: np.random.Generator, *, params, sr: int) -> Event:
    """The football match: an open-air stadium and its supporters."""
    venue = draw_venue(rng, "stadium", variability=params.event_variability, t60_s=params.t60_s,
                       crowd_size=params.match_crowd_size if params.crowd_size is None
                       else params.crowd_size,
                       mic_distance_m=params.mic_distance_m,
                       background_snr_db=params.background_snr_db)
    crowd = _draw_crowd(rng, "match")
    ir = impulse_response(venue, sr, rng)
    _, direct, reverb, _ = _geometry(venue)
    ref = float(_voices.effort_level_db(2.0) + 10 * np.log10(0.5 * (direct + reverb) + 1.0))
    return Event(event_id, "match", venue, crowd, ir, 2.0, ref)


# ---------------------------------------------------------------------------
# Layers


class _Scene:
    """Rendering state of one clip."""

    def __init__(self, event: Event, n: int, sr: int, rng: np.random.Generator):
        self.event, self.n, self.sr, self.rng = event, n, sr, rng
        self.m = ctrl_length(n, sr)
        self.duration = n / sr
        self.mix = Mix(n, sr, event.venue)
        r_eff, direct, reverb, big_r = _geometry(event.venue)
        self.r_eff, self.bed_direct, self.bed_reverb, self.radius = r_eff, direct, reverb, big_r
        self.mix.far_distance_m = float(np.sqrt(max(r_eff, 1.0) * max(big_r, 2.0)))

    # -- helpers ----------------------------------------------------------
    def speaker(self) -> _voices.Speaker:
        c = self.event.crowd
        return _voices.draw_speaker(self.rng, female_share=c.female_share,
                                    child_share=c.child_share)

    def near_distance(self) -> float:
        """A distance drawn uniformly over the area between the mic and the bed."""
        r0 = self.event.venue.mic_distance_m
        r1 = max(self.r_eff, r0 * 1.2)
        return float(np.sqrt(self.rng.uniform(r0 ** 2, r1 ** 2)))

    def at(self, times_s: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
        idx = np.clip((np.asarray(times_s) * CTRL_RATE).astype(int), 0, len(ctrl) - 1)
        return ctrl[idx]

    def episodes(self, ing: Ingredient, *, fade_s: float = 0.8) -> np.ndarray:
        return telegraph(self.rng, self.m, on_fraction=ing.on_fraction,
                         mean_on_s=ing.mean_on_s, fade_s=fade_s)

    # -- vocal layers -------------------------------------------------------
    def bed(self, effort: np.ndarray, power: np.ndarray, *, modulation: float = 0.08) -> None:
        """The crowd's voices beyond the nearest few.

        ``power`` is the control-rate share of the crowd vocalising; the bed's
        level follows ANSI S3.5 at ``effort`` and the crowd geometry.
        """
        if np.max(power) <= 1e-4:
            return
        level = _voices.effort_level_db(effort) + 10.0 * np.log10(np.maximum(power, 1e-9))
        level = np.where(power > 1e-4, level, -np.inf)
        y = _voices.babble_bed(self.rng, self.n, self.sr, effort=effort, level_db=level,
                               modulation_depth=modulation)
        self.mix.add_diffuse(y, direct_gain=np.sqrt(self.bed_direct),
                             reverb_gain=np.sqrt(self.bed_reverb), voice=True)

    def chorus(self, vowel_knots, effort: float, power: np.ndarray, *,
               f0_hz: float | None = None) -> None:
        """Many voices on one vowel (boos, chants, the "ooh" of a miss) beyond the nearest;
        with ``f0_hz``, on a shared pitch (:func:`crowdnb.synth.voices.vowel_bed`)."""
        level = _voices.effort_level_db(effort) + 10.0 * np.log10(np.maximum(power, 1e-12))
        y = _voices.vowel_bed(self.rng, self.n, self.sr, vowel_knots=vowel_knots, effort=effort,
                              level_db=np.where(power > 1e-6, level, -np.inf), f0_hz=f0_hz)
        self.mix.add_diffuse(y, direct_gain=np.sqrt(self.bed_direct),
                             reverb_gain=np.sqrt(self.bed_reverb), voice=True)

    def people(self, make, activity: np.ndarray, *, count: int, mean_gap_s: float,
               max_utterances: int = 400) -> int:
        """Explicit people near the microphone, each uttering ``make(rng, speaker)`` while
        ``activity`` (0-1) says so. Returns the number of utterances."""
        total = 0
        for i in range(count):
            spk = self.speaker()
            r = self.near_distance()
            if i == 0 and self.rng.random() < 0.3:
                # the person holding the phone, or the friend beside them
                r = float(self.rng.uniform(0.3, 0.8))
            t = float(self.rng.uniform(0.0, mean_gap_s))
            while t < self.duration and total < max_utterances:
                a = float(self.at(t, activity))
                if a > 0.02 and self.rng.random() < a:
                    y = make(self.rng, spk)
                    self.mix.add(y, distance_m=r, start=int(t * self.sr), voice=True)
                    total += 1
                    t += len(y) / self.sr + self.rng.exponential(mean_gap_s)
                else:
                    t += 0.3 + self.rng.exponential(0.3 * mean_gap_s)
        return total

    def chant(self, activity: np.ndarray, effort: float, *, claps: bool, drums: bool,
              strength: float = 1.0) -> None:
        """Chanting in sync: the crowd's chorus, a few chanters near, claps and drums on the beat.

        ``strength`` is the share of the crowd joining in (1: a whole stand).
        """
        crowd = self.event.crowd
        score = crowd.chants[int(self.rng.integers(0, len(crowd.chants)))]
        notes = [nt for nt in score if nt[3]]
        period = score[-1][0]
        beat = 60.0 / crowd.tempo_bpm
        on = activity > 0.5
        if not on.any():
            return
        # phrase starts while the chant is on
        starts = []
        t = float(np.argmax(on)) / CTRL_RATE
        while t < self.duration:
            if self.at(t, activity) > 0.5:
                starts.append(t)
            t += period
        if not starts:
            return
        # the chorus: vowel targets and a gate following the shared score
        gate = np.zeros(self.m)
        knots = []
        tt = np.arange(self.m) / CTRL_RATE
        for s in starts:
            for onset, length, _, vowel in notes:
                a, b = s + onset, s + onset + length
                gate[(tt >= a) & (tt < b)] = 1.0
                knots += [(a, vowel), (b, vowel)]
        knots.sort(key=lambda k: k[0])
        k = np.hanning(9)
        gate = np.convolve(gate, k / k.sum(), mode="same")  # onsets spread by tens of ms
        share = 0.6 * strength * gate * np.clip(activity, 0.0, 1.0)
        self.chorus(knots, effort, np.maximum(share, 1e-12))
        # chanters near the microphone
        n_near = max(1, int(round(self.rng.integers(2, _EXPLICIT["chant"] + 1) * strength)))
        for _ in range(n_near):
            spk = self.speaker()
            r = self.near_distance()
            for s in starts:
                if self.rng.random() < 0.85:
                    y = _voices.chant_phrase(self.rng, spk, sr=self.sr, notes=notes,
                                             key_hz=crowd.key_hz, effort=effort,
                                             sung=crowd.sung)
                    self.mix.add(y, distance_m=r, start=int(s * self.sr), voice=True)
        beats = np.concatenate([s + np.arange(0.0, period, beat) for s in starts])
        if claps:
            act = np.clip(activity, 0.0, 1.0)
            y = _applause.applause(self.rng, self.n, self.sr,
                                   n_clappers=max(1, int(self.rng.integers(4, 10) * strength)),
                                   activity=act,
                                   distances_m=np.array([self.near_distance()
                                                         for _ in range(10)]),
                                   beat_times=beats, sync=np.ones(self.m),
                                   rate_hz=crowd.clap_rate_hz)
            self.mix.add(y, distance_m=1.0)
            # only part of the crowd claps along
            self.applause_bed(act * float(self.rng.uniform(0.15, 0.4)) * strength,
                              sync=np.ones(self.m), beat_times=beats)
        if drums:
            self.drums(np.clip(activity, 0.0, 1.0), beats=beats,
                       level_db=112.0 + 20.0 * np.log10(max(strength, 1e-3)))

    # -- applause ---------------------------------------------------------------
    def applause_bed(self, activity: np.ndarray, *, sync: np.ndarray | None = None,
                     beat_times: np.ndarray | None = None) -> None:
        level = _applause.CLAP_LEVEL_DB
        y = _applause.applause_bed(self.rng, self.n, self.sr, activity=activity,
                                   level_db=level, sync=sync, beat_times=beat_times,
                                   sync_rate_hz=self.event.crowd.clap_rate_hz / 2.0,
                                   center_hz=float(self.rng.uniform(1200.0, 1900.0)))
        self.mix.add_diffuse(y, direct_gain=np.sqrt(self.bed_direct),
                             reverb_gain=np.sqrt(self.bed_reverb))

    def applause(self, activity: np.ndarray, *, synchrony: float, share: float = 0.7) -> None:
        """Applause: explicit clappers near the microphone and the audience beyond.

        ``share`` is the part of the crowd that claps.
        """
        sync = None
        if synchrony > 0:
            sync = synchrony * np.clip(
                telegraph(self.rng, self.m, on_fraction=0.5, mean_on_s=6.0, fade_s=2.0), 0, 1)
        # the clappers near the microphone are as many as the share of the crowd clapping
        count = max(1, int(round(self.rng.integers(6, 16) * min(1.0, share / 0.7))))
        dist = np.array([self.near_distance() for _ in range(count)])
        y = _applause.applause(self.rng, self.n, self.sr, n_clappers=count, activity=activity,
                               distances_m=dist, sync=sync,
                               rate_hz=self.event.crowd.clap_rate_hz)
        self.mix.add(y, distance_m=1.0)
        self.applause_bed(activity * share, sync=sync)

    # -- other sources -------------------------------------------------------------
    def scatter_sources(self, make, activity: np.ndarray, *, rate_hz: float,
                        distance_m: tuple[float, float], max_count: int = 200) -> int:
        """Sporadic sources (whistles, horns): a Poisson process thinned by ``activity``."""
        count = 0
        t = float(self.rng.exponential(1.0 / rate_hz))
        while t < self.duration and count < max_count:
            if self.rng.random() < float(self.at(t, activity)):
                y = make(self.rng)
                r = float(np.exp(self.rng.uniform(np.log(distance_m[0]), np.log(distance_m[1]))))
                self.mix.add(y, distance_m=r, start=int(t * self.sr))
                count += 1
            t += float(self.rng.exponential(1.0 / rate_hz))
        return count

    def drums(self, activity: np.ndarray, *, beats: np.ndarray | None = None,
              level_db: float = 112.0) -> None:
        crowd = self.event.crowd
        if beats is None:
            beats, accents = _events.drum_pattern(self.rng, self.duration,
                                                  tempo_bpm=crowd.tempo_bpm)
        else:
            accents = np.exp(self.rng.normal(0.0, 0.1, len(beats)))
        keep = self.at(beats, activity) > 0.5
        beats, accents = beats[keep], accents[keep]
        if len(beats) == 0:
            return
        bank = _events.drum_kernels(self.rng, self.sr, f_hz=float(self.rng.uniform(55.0, 95.0)))
        which = self.rng.integers(0, len(bank), len(beats))
        # a bass drum hit is about 115 dB SPL peak at 1 m; its energy per hit sets the level
        y = scatter_kernels(self.n, (beats * self.sr).astype(np.int64), accents, bank, which)
        y *= spl_to_amp(level_db) * np.sqrt(self.sr * 0.25)
        self.mix.add(y, distance_m=float(self.rng.uniform(15.0, 50.0)))

    def banging(self, activity: np.ndarray, material: str, *, strength: float = 1.0) -> None:
        """Banging on things; weak ``strength`` is cutlery, glasses, doors and chairs."""
        rhythmic = self.rng.random() < 0.5 * strength
        level = {"metal": 108.0, "pot": 100.0, "wood": 100.0, "glass": 98.0}[material]
        level += 20.0 * np.log10(max(strength, 1e-3))
        bank = _events.impact_kernels(self.rng, self.sr, material=material)
        if rhythmic:
            rate = self.rng.uniform(1.5, 4.0)
            times = np.arange(self.rng.uniform(0, 1 / rate), self.duration, 1 / rate)
            times = times + self.rng.normal(0.0, 0.015, len(times))
        else:
            k = self.rng.poisson(self.duration * self.rng.uniform(0.8, 3.0) * strength)
            times = np.sort(self.rng.uniform(0.0, self.duration, k))
        keep = self.rng.random(len(times)) < self.at(times, activity)
        times = times[keep]
        if len(times) == 0:
            return
        amps = np.exp(self.rng.normal(0.0, 0.35, len(times)))
        y = scatter_kernels(self.n, (times * self.sr).astype(np.int64), amps, bank,
                            self.rng.integers(0, len(bank), len(times)))
        y *= spl_to_amp(level) * np.sqrt(self.sr * 0.1)
        self.mix.add(y, distance_m=float(np.exp(self.rng.uniform(np.log(4.0), np.log(30.0)))))
        if material == "metal" and self.rng.random() < 0.3 * strength:
            self.shatter(activity)

    def shatter(self, activity: np.ndarray) -> None:
        """Breaking glass: a burst of small high-pitched impacts."""
        bank = _events.impact_kernels(self.rng, self.sr, material="glass", count=6)
        t0 = float(self.rng.uniform(0.0, max(self.duration - 1.0, 0.1)))
        if self.at(t0, activity) < 0.3:
            return
        k = int(self.rng.integers(15, 60))
        times = t0 + np.sort(self.rng.exponential(0.15, k))
        amps = np.exp(-(times - t0) / 0.3) * np.exp(self.rng.normal(0, 0.5, k))
        y = scatter_kernels(self.n, (times * self.sr).astype(np.int64), amps, bank,
                            self.rng.integers(0, len(bank), k))
        y *= spl_to_amp(100.0) * np.sqrt(self.sr * 0.05)
        self.mix.add(y, distance_m=float(self.rng.uniform(5.0, 25.0)))

    def bangs(self, activity: np.ndarray, *, strength: float = 1.0) -> None:
        """Firecrackers, strings of them, and the occasional stun grenade."""
        gap = 2.5 / max(strength, 0.05)
        t = float(self.rng.exponential(gap))
        while t < self.duration:
            if self.rng.random() < float(self.at(t, activity)):
                big = self.rng.random() < 0.25
                bank = _events.firecracker_kernels(self.rng, self.sr, big=big)
                if not big and self.rng.random() < 0.4:  # a string of crackers
                    k = int(self.rng.integers(8, 40))
                    times = t + np.cumsum(self.rng.exponential(0.06, k))
                else:
                    times = np.array([t])
                amps = np.exp(self.rng.normal(0.0, 0.3, len(times)))
                y = scatter_kernels(self.n, (times * self.sr).astype(np.int64), amps, bank,
                                    self.rng.integers(0, len(bank), len(times)))
                level = 140.0 if big else 130.0
                # energy of one bang ~ peak level minus the crest of a few-ms impulse
                y *= spl_to_amp(level - 25.0)
                r = float(np.exp(self.rng.uniform(np.log(20.0), np.log(100.0))))
                self.mix.add(y, distance_m=r)
                t = float(times[-1])
            t += float(self.rng.exponential(gap))

    def sirens(self, activity: np.ndarray, *, level_db: float = 118.0) -> None:
        kind = self.event.crowd.siren_kind
        y, _ = _events.siren(self.rng, self.n, self.sr, kind=kind, level_db=level_db)
        env = ctrl_to_audio(np.clip(activity, 0.0, 1.0), self.n, self.sr)
        self.mix.add(y * env, distance_m=float(self.rng.uniform(30.0, 100.0)))

    def megaphone(self, activity: np.ndarray, *, level_db: float = 112.0) -> None:
        on = activity > 0.5
        if not on.any():
            return
        y = _events.megaphone(self.rng, self.event.crowd.megaphone_speaker, self.sr,
                              duration_s=self.duration, level_db=level_db)
        env = ctrl_to_audio(np.clip(activity, 0.0, 1.0), self.n, self.sr)
        self.mix.add(y * env, distance_m=float(self.rng.uniform(10.0, 50.0)))

    def footsteps(self, activity: np.ndarray, *, running: bool, count: int = 6) -> None:
        bank = _events.footstep_kernels(self.rng, self.sr, count=6)
        onsets, amps = [], []
        for _ in range(count):
            cadence = self.rng.uniform(2.5, 3.3) if running else self.rng.uniform(1.7, 2.1)
            times = np.arange(self.rng.uniform(0, 1 / cadence), self.duration, 1 / cadence)
            times = times + self.rng.normal(0.0, 0.01, len(times))
            keep = self.rng.random(len(times)) < self.at(times, activity)
            r = self.near_distance() + self.rng.uniform(0.0, 4.0)
            onsets.append(times[keep])
            amps.append(np.exp(self.rng.normal(0.0, 0.25, keep.sum())) / r)
        times = np.concatenate(onsets)
        if len(times) == 0:
            return
        y = scatter_kernels(self.n, (times * self.sr).astype(np.int64), np.concatenate(amps),
                            bank, self.rng.integers(0, len(bank), len(times)))
        level = 78.0 if running else 68.0
        y *= spl_to_amp(level) * np.sqrt(self.sr * 0.05)
        self.mix.add(y, distance_m=1.0)

    # -- finishing -----------------------------------------------------------------
    def finish(self, *, level_dbfs: float) -> np.ndarray:
        ev = self.event
        v = ev.venue
        pressure = self.mix.render(ev.ir)
        bg = _events.room_tone(self.rng, self.n, self.sr, v.background,
                               level_db=ev.reference_spl_db - v.background_snr_db)
        wind = None
        if np.isfinite(v.wind_db):
            wind = _events.wind_noise(self.rng, self.n, self.sr,
                                      level_db=ev.reference_spl_db + v.wind_db)
        return recording_chain(pressure, v, self.sr, self.rng,
                               reference_spl_db=ev.reference_spl_db, level_dbfs=level_dbfs,
                               background=bg, wind=wind)


# ---------------------------------------------------------------------------
# Class scenes


def render_emotion_clip(event: Event, duration_s: float, *, params, rng: np.random.Generator,
                        sr: int) -> tuple[np.ndarray, dict]:
    """Render one clip of the event's class.

    Three layers, in this order (the order of the random draws is part of the
    corpus): the diffuse crowd (:func:`_crowd_bed`), the voices near the
    microphone (:func:`_near_voices`), and the other sources: chants, claps,
    whistles, horns, drums, bangs, sirens (:func:`_other_sources`).

    Returns
    -------
    y : np.ndarray [shape=(n,)]
        Samples in [-1, 1].
    info : dict
        The ingredients present and their active shares.
    """
    n = int(round(duration_s * sr))
    sc = _Scene(event, n, sr, rng)
    recipe, _, _ = blend_recipe(event.label, params.class_overlap, scene=event.scene or None)
    present = {name: bool(rng.random() < ing.presence) for name, ing in recipe.items()}
    core = max(recipe, key=lambda k: recipe[k].presence)
    present[core] = True
    acts = {name: sc.episodes(recipe[name]) for name in INGREDIENTS if present[name]}
    mix = _Mix(acts, {name: recipe[name].strength for name in INGREDIENTS}, rng)
    crowd = _crowd_bed(sc, event, mix)
    _near_voices(sc, mix, crowd, sr)
    _other_sources(sc, event, mix, crowd, sr)
    info = {"ingredients": sorted(acts),
            "active_share": {name: round(float(np.mean(v > 0.5)), 2) for name, v in acts.items()}}
    y = sc.finish(level_dbfs=params.level_dbfs)
    return y, info


@dataclass
class _Mix:
    """A clip's ingredients: when each is active (``acts``) and how strong (``k``)."""

    acts: dict[str, np.ndarray]
    k: dict[str, float]
    rng: np.random.Generator

    def db(self, name: str) -> float:
        return float(10.0 * np.log10(self.k[name]))

    def count(self, name: str, lo: int, hi: int) -> int:
        return max(1, int(round(self.rng.integers(lo, hi + 1) * self.k[name])))


@dataclass
class _Crowd:
    """The crowd's drive, shared by the layers of a clip."""

    swell: np.ndarray  # slow swell and calm of the vocal layers, control rate
    efforts: dict[str, np.ndarray]  # vocal effort of the talking, cheering, shouting parts
    eff_mean: float  # mean effort of the crowd


def _crowd_bed(sc: "_Scene", event: Event, mix: _Mix) -> _Crowd:
    """The diffuse crowd: its talking, cheering and shouting parts, power-summed."""
    rng, acts, k = mix.rng, mix.acts, mix.k
    # the crowd swells and calms: a slow common drive shared by the vocal layers
    swell = np.clip(0.75 + 0.25 * smooth_noise(rng, sc.m, cutoff_hz=0.15), 0.3, 1.0)
    e_crowd = np.clip(event.effort + 0.25 * smooth_noise(rng, sc.m, cutoff_hz=0.1), 0.3, 3.4)
    efforts = {"babble": np.clip(np.minimum(e_crowd, 1.6) - 0.2, 0.3, 1.6),
               "cheer": np.clip(e_crowd + 0.3, 1.5, 3.4),
               "shout": np.clip(e_crowd + 0.3, 1.5, 3.4)}
    power = np.zeros(sc.m)
    weighted = np.zeros(sc.m)
    for name in ("babble", "cheer", "shout"):
        if name in acts:
            share = (_CROWD_SHARE[name] * k[name] * acts[name]
                     * (swell if name != "babble" else 1.0))
            p = share * 10.0 ** (_voices.effort_level_db(efforts[name]) / 10.0)
            power += p
            weighted += p * efforts[name]
    if "cheer" in acts:
        # a cheering crowd roars on open vowels ("ahh", "yeah", "ohh"): half of the
        # cheering part of the bed keeps the formants of a slowly changing vowel
        cheer_share = 0.5 * _CROWD_SHARE["cheer"] * k["cheer"] * acts["cheer"] * swell
        cheer_p = cheer_share * 10.0 ** (_voices.effort_level_db(efforts["cheer"]) / 10.0)
        power -= cheer_p
        weighted -= cheer_p * efforts["cheer"]
        knots, t = [], 0.0
        while t < sc.duration + 1.0:
            knots.append((t, str(rng.choice(["aa", "ah", "eh", "ae", "ow"]))))
            t += float(rng.uniform(0.8, 2.5))
        e_cheer = float(np.mean(efforts["cheer"]))
        sc.chorus(knots, e_cheer, np.maximum(cheer_share, 1e-12),
                  f0_hz=_voices.crowd_f0_hz(e_cheer))
    if power.max() > 0:
        bed_effort = weighted / np.maximum(power, 1e-30)
        share_total = power / 10.0 ** (_voices.effort_level_db(bed_effort) / 10.0)
        # the bed's envelope keeps some of its talkers' syllabic rhythm: real
        # crowds (babble in a canteen, stands cheering) show envelope modulation
        # 4-16 Hz about 5-7 dB deeper than a depth of 0.08-0.25 gave
        sc.bed(bed_effort, np.maximum(share_total, 0.0),
               modulation=0.4 if event.venue.crowd_size < 300 else 0.18)
    return _Crowd(swell, efforts, float(np.mean(e_crowd)))


def _near_voices(sc: "_Scene", mix: _Mix, crowd: _Crowd, sr: int) -> None:
    """Explicit voices near the microphone: talk, cheers, shouts, laughs, screams, boos."""
    acts, k, count = mix.acts, mix.k, mix.count
    efforts, swell, eff_mean = crowd.efforts, crowd.swell, crowd.eff_mean
    if "babble" in acts:
        e_b = float(np.mean(efforts["babble"]))
        sc.people(lambda r, s: _voices.speech_phrase(r, s, sr=sr, effort=e_b), acts["babble"],
                  count=count("babble", 2, _EXPLICIT["babble"]), mean_gap_s=1.5)
    if "cheer" in acts:
        e_c = min(eff_mean + 0.3, 3.4)
        sc.people(lambda r, s: _voices.cheer(r, s, sr=sr, effort=e_c), acts["cheer"] * swell,
                  count=count("cheer", 2, _EXPLICIT["cheer"]), mean_gap_s=1.2)
    if "shout" in acts:
        e_s = min(eff_mean + 0.4, 3.4)
        sc.people(lambda r, s: _voices.angry_shout(r, s, sr=sr, effort=e_s),
                  acts["shout"] * swell, count=count("shout", 2, _EXPLICIT["shout"]),
                  mean_gap_s=1.0)
    if "laughter" in acts:
        sc.people(lambda r, s: _voices.laugh(r, s, sr=sr, effort=1.3), acts["laughter"],
                  count=count("laughter", 1, _EXPLICIT["laughter"]), mean_gap_s=3.0)
    if "scream" in acts:
        sc.people(lambda r, s: _voices.scream(r, s, sr=sr), acts["scream"],
                  count=count("scream", 1, _EXPLICIT["scream"]), mean_gap_s=3.0)
    if "boo" in acts:
        wave = (acts["boo"] > 0.5).astype(float)
        win = np.hanning(int(0.6 * CTRL_RATE))
        wave = np.convolve(wave, win / win.sum(), mode="same")
        e_boo = float(np.clip(eff_mean, 2.0, 3.0))
        # booers lower their voices a few semitones below the effort's pitch (voices.boo)
        sc.chorus([(0.0, "boo"), (sc.duration, "boo")], e_boo, 0.3 * k["boo"] * wave + 1e-12,
                  f0_hz=_voices.crowd_f0_hz(e_boo, offset_st=-2.5))
        sc.people(lambda r, s: _voices.boo(r, s, sr=sr, effort=e_boo), wave,
                  count=count("boo", 2, _EXPLICIT["boo"]), mean_gap_s=0.4)


def _other_sources(sc: "_Scene", event: Event, mix: _Mix, crowd: _Crowd, sr: int) -> None:
    """Chants, applause, whistles, horns, drums, banging, bangs, sirens, megaphones, steps."""
    rng, acts, k, count, db, eff_mean = mix.rng, mix.acts, mix.k, mix.count, mix.db, crowd.eff_mean
    if "chant" in acts:
        claps = rng.random() < 0.6
        drums = rng.random() < 0.35
        sc.chant(acts["chant"], min(eff_mean, 3.0), claps=claps, drums=drums, strength=k["chant"])
    if "applause" in acts:
        synchrony = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.4 else 0.0
        # a whole audience (strength 1) or a group at a crowded venue
        share = k["applause"] * float(rng.uniform(0.5, 0.9))
        sc.applause(acts["applause"], synchrony=synchrony, share=share)
    if "whistle" in acts:
        sc.scatter_sources(lambda r: _events.finger_whistle(
            r, sr, level_db=float(r.uniform(92.0, 104.0)) + 2 * db("whistle")), acts["whistle"],
            rate_hz=float(rng.uniform(0.3, 1.5)) * k["whistle"], distance_m=(3.0, 50.0))
    if "horn" in acts:
        sc.scatter_sources(lambda r: _events.horn(r, sr, level_db=float(r.uniform(103.0, 113.0))
                                                  + 2 * db("horn")), acts["horn"],
                           rate_hz=float(rng.uniform(0.1, 0.5)) * k["horn"],
                           distance_m=(5.0, 60.0))
    if "drum" in acts:
        sc.drums(acts["drum"], level_db=112.0 + 2 * db("drum"))
    if "banging" in acts:
        material = event.crowd.bang_material if event.label != "neutral" else str(
            rng.choice(["pot", "wood", "glass"]))
        sc.banging(acts["banging"], material, strength=k["banging"])
    if "bangs" in acts:
        sc.bangs(acts["bangs"], strength=k["bangs"])
    if "siren" in acts:
        sc.sirens(acts["siren"], level_db=118.0 + 2 * db("siren"))
    if "megaphone" in acts:
        sc.megaphone(acts["megaphone"], level_db=112.0 + 2 * db("megaphone"))
    if "footsteps" in acts:
        sc.footsteps(acts["footsteps"], running=event.label == "anger" and rng.random() < 0.6,
                     count=count("footsteps", 3, 12))


# ---------------------------------------------------------------------------
# Football actions


def _swell(mask: np.ndarray, rise_s: float = 0.5) -> np.ndarray:
    """Soften the edges of a 0/1 control-rate mask: crowds swell in, they do not switch on."""
    k = max(3, int(rise_s * CTRL_RATE))
    win = np.hanning(k)
    return np.clip(np.convolve(np.asarray(mask, float), win / win.sum(), mode="same"), 0.0, 1.0)


def render_action_clip(event: Event, duration_s: float, *, outcome: str, buildup_s: float,
                       params, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, dict]:
    """Render one attacking action of the match: build-up, then a goal or a miss.

    The build-up is the same process for both outcomes: the crowd's effort and
    the share of people shouting grow (slowly, then faster) towards the shot,
    chants fade into a rising roar, near fans urge on. At the shot (``buildup_s``)
    a goal brings an eruption (shouted roar, screams, cheers, then horns,
    approving whistles, applause and a goal song) while a miss brings a
    collective "ooh" with falling pitch, groans, whistles and applause of
    encouragement, then a decay back towards the murmur. A share
    ``params.opposing_share`` of the stadium supports the other team and reacts
    the other way.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    n = int(round(duration_s * sr))
    sc = _Scene(event, n, sr, rng)
    t = np.arange(sc.m) / CTRL_RATE
    t_shot = float(min(buildup_s, duration_s))
    t_react = t_shot + float(rng.uniform(0.15, 0.45))
    opp = float(params.opposing_share)
    # build-up: excitement rising with a random shape, shared by both outcomes
    e0, e_peak = float(rng.uniform(1.2, 1.9)), float(rng.uniform(2.5, 3.1))
    gamma = float(rng.uniform(1.5, 3.0))
    x = np.clip(t / max(t_shot, 1e-3), 0.0, 1.0)
    effort = e0 + (e_peak - e0) * x ** gamma + 0.12 * smooth_noise(rng, sc.m, cutoff_hz=0.3)
    share = 0.3 + 0.45 * x ** gamma
    after = t >= t_react
    tau = t - t_react
    home = 1.0 - opp
    if outcome == "goal":
        rise = np.clip(tau / 0.4, 0.0, 1.0)
        hold = np.exp(-np.maximum(tau - 4.0, 0.0) / float(rng.uniform(6.0, 12.0)))
        e_goal = 3.3 + 0.2 * hold
        effort = np.where(after, effort + (e_goal - effort) * rise * (0.6 + 0.4 * hold), effort)
        # the home end erupts; the other end falls silent
        share = np.where(after, share + (home * 1.0 - share) * rise * (0.5 + 0.5 * hold)
                         + opp * 0.1, share)
    else:
        drop = 1.0 - np.exp(-np.maximum(tau - 0.8, 0.0) / float(rng.uniform(1.5, 3.0)))
        effort = np.where(after, effort + (1.5 - effort) * drop, effort)
        share = np.where(after, share + (0.3 - share) * drop, share)
    effort = np.clip(effort, 0.5, 3.5)
    sc.bed(effort, np.clip(share, 0.0, 1.0), modulation=0.06)
    info = {"outcome": outcome, "buildup_s": round(t_shot, 2), "reaction_s": round(t_react, 2)}
    # the match's ongoing chant and drums, fading as the attack grows
    if rng.random() < 0.6:
        chant_on = np.clip(1.0 - 1.5 * x ** 2, 0.0, 1.0) * (t < t_shot)
        sc.chant(chant_on, 2.5, claps=bool(rng.random() < 0.5), drums=bool(rng.random() < 0.5))
    elif rng.random() < 0.5:
        sc.drums((t < t_shot).astype(float))
    # near fans urging on, more and louder as the attack develops
    urge = np.clip(x ** gamma, 0.05, 1.0) * (t < t_react)
    sc.people(lambda r, s: _voices.cheer(r, s, sr=sr, effort=2.8), urge,
              count=int(rng.integers(2, 5)), mean_gap_s=1.5)
    # the other team's fans whistle at the attackers now and then
    sc.scatter_sources(lambda r: _events.finger_whistle(r, sr, kind="long"),
                       np.full(sc.m, opp), rate_hz=0.3, distance_m=(20.0, 80.0))
    if outcome == "goal":
        _goal_reaction(sc, rng, t, t_react, home, sr)
    else:
        _miss_reaction(sc, rng, t_react, tau, home, sr)
    y = sc.finish(level_dbfs=params.level_dbfs)
    return y, info


def _goal_reaction(sc: "_Scene", rng: np.random.Generator, t: np.ndarray, t_react: float,
                   home: float, sr: int) -> None:
    """After a goal: screams and cheers, then horns, whistles, applause, perhaps a song."""
    celebrate = _swell(t >= t_react, 0.3)
    sc.people(lambda r, s: _voices.scream(r, s, sr=sr), celebrate,
              count=int(rng.integers(1, 3)), mean_gap_s=1.5)
    sc.people(lambda r, s: _voices.cheer(r, s, sr=sr, effort=3.4), celebrate,
              count=int(rng.integers(3, 7)), mean_gap_s=0.6)
    later = _swell(t >= t_react + float(rng.uniform(1.0, 3.0)))
    sc.scatter_sources(lambda r: _events.horn(r, sr, kind="air"), later,
                       rate_hz=float(rng.uniform(0.3, 1.0)), distance_m=(8.0, 60.0))
    sc.scatter_sources(lambda r: _events.finger_whistle(r, sr), later,
                       rate_hz=float(rng.uniform(0.5, 1.5)), distance_m=(3.0, 50.0))
    clap_from = t_react + float(rng.uniform(2.0, 5.0))
    sc.applause(_swell(t >= clap_from, 1.0), synchrony=0.0,
                share=home * float(rng.uniform(0.4, 0.8)))
    if rng.random() < 0.5:
        song = _swell(t >= t_react + float(rng.uniform(4.0, 8.0)), 1.0)
        sc.chant(song, 3.0, claps=True, drums=bool(rng.random() < 0.5))
    if rng.random() < 0.5:
        y = _events.referee_whistle(rng, sr, blasts=1)
        sc.mix.add(y, distance_m=float(rng.uniform(40.0, 90.0)),
                   start=int((t_react + rng.uniform(0.5, 2.5)) * sr))


def _miss_reaction(sc: "_Scene", rng: np.random.Generator, t_react: float, tau: np.ndarray,
                   home: float, sr: int) -> None:
    """After a miss: a falling "ooh", groans, some applause of encouragement and whistles."""
    ooh_len = float(rng.uniform(0.9, 1.6))
    fall = float(rng.uniform(7.0, 13.0))
    env = np.where((tau >= 0) & (tau < ooh_len + 0.8),
                   np.clip(tau / 0.1, 0, 1) * np.exp(-np.maximum(tau - 0.3, 0) / 0.6), 0.0)
    sc.chorus([(t_react, "uw"), (t_react + 0.3 * ooh_len, "uw"), (t_react + ooh_len, "ow")],
              2.8, home * 0.8 * env + 1e-12)
    ooh_gate = ((tau >= 0) & (tau < 0.3)).astype(float)
    sc.people(lambda r, s: _voices.ooh(r, s, sr=sr, effort=2.8, duration_s=ooh_len,
                                       fall_st=fall), ooh_gate, count=int(rng.integers(3, 7)),
              mean_gap_s=0.1)
    groans = _swell((tau >= 0.6) & (tau < 4.0)) * 0.6
    sc.people(lambda r, s: _voices.groan(r, s, sr=sr), groans,
              count=int(rng.integers(1, 4)), mean_gap_s=1.5)
    if rng.random() < 0.4:
        # some applaud the effort, a second or two later
        enc = _swell((tau >= float(rng.uniform(1.5, 3.0))) & (tau < 7.0), 1.0)
        sc.applause(enc, synchrony=0.0, share=home * float(rng.uniform(0.2, 0.5)))
    if rng.random() < 0.4:
        sc.scatter_sources(lambda r: _events.finger_whistle(r, sr), _swell(tau >= 0.5) * 0.5,
                           rate_hz=float(rng.uniform(0.2, 0.6)), distance_m=(10.0, 60.0))
    if rng.random() < 0.15:
        y = _events.referee_whistle(rng, sr, blasts=1)
        sc.mix.add(y, distance_m=float(rng.uniform(40.0, 90.0)),
                   start=int((t_react + rng.uniform(0.5, 2.5)) * sr))

