"""Parameters of the synthesizer and its presets.

Every setting is a field of :class:`SynthParams` (a frozen dataclass), so a run
is described completely by a preset name, a seed and a few overrides, and the
clips table records them all.

Durations of the ``paper`` preset
---------------------------------
The paper reports 18 clips (9 joy, 3 neutral, 6 anger), 2 s blocks with a
1 s hop, and 678 spectrograms after balancing, i.e. 226 per class. A clip of
``d`` whole seconds gives ``d - 1`` blocks, so the three neutral clips must last
about 76-77 s to give 226 blocks: 77 + 76 + 76 s give 75 + 75 + 76 = 226.
Joy (9 clips, 22-32 s) gives 234 blocks and anger (6 clips, 34-44 s) 228;
balancing removes a few random blocks from each, as the paper did, leaving
678. The paper's Table 1 cannot be matched at the same time (its 890 blocks,
1711 s and per-class figures contradict each other and the 678); see
``book/synthetic_data.md``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from ..errors import ParameterError

__all__ = ["SynthParams", "PRESETS", "make_params", "parse_override", "expected_blocks"]


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the crowd-scene synthesizer.

    Attributes
    ----------
    joy_durations_s, anger_durations_s, neutral_durations_s : tuple of float
        One entry per clip of the class, in seconds (>= 1 s).
    clips_per_event : int >= 1
        Emotion clips recorded at the same event (1: every clip is its own event).
    class_overlap : float in [0, 1]
        How much the classes share their ingredients: 0 each class has its own
        recipe, 1 all classes draw from the average recipe (chance).
    event_variability : float in [0, 2]
        Spread of venues and recording chains between events: 0 every event of
        a venue kind sounds alike, 1 the spread of real recordings.
    crowd_size : float or None
        People present at every event; None draws it from the venue kind.
    t60_s : float or None
        Mid-frequency reverberation time of every venue; None draws it.
    mic_distance_m : float or None
        Distance from the microphone to the nearest people; None draws it.
    background_snr_db : float or None
        Crowd level above the room tone, dB; None draws it.
    goals, misses : int >= 0
        Number of goal and no-goal actions of the football match.
    action_duration_s : (float, float)
        Range of the actions' durations, s.
    buildup_share : (float, float)
        Range of the share of an action that is build-up (before the shot).
    opposing_share : float in [0, 1]
        Share of the stadium supporting the other team.
    match_crowd_size : float
        Spectators at the match (unless ``crowd_size`` is set).
    sample_rate : int
        Hz (the study uses 44100).
    subtype : str
        ``"PCM_16"`` (as published recordings) or ``"FLOAT"``.
    level_dbfs : float
        Nominal RMS level of an event's crowd in the files, dBFS.
    """

    joy_durations_s: tuple = (22.0, 24.0, 25.0, 26.0, 27.0, 28.0, 29.0, 30.0, 32.0)
    anger_durations_s: tuple = (34.0, 36.0, 38.0, 40.0, 42.0, 44.0)
    neutral_durations_s: tuple = (77.0, 76.0, 76.0)
    clips_per_event: int = 1
    class_overlap: float = 0.15
    event_variability: float = 1.0
    crowd_size: float | None = None
    t60_s: float | None = None
    mic_distance_m: float | None = None
    background_snr_db: float | None = None
    goals: int = 8
    misses: int = 9
    action_duration_s: tuple = (15.0, 25.0)
    buildup_share: tuple = (0.65, 0.85)
    opposing_share: float = 0.25
    match_crowd_size: float = 45000.0
    sample_rate: int = 44100
    subtype: str = "PCM_16"
    level_dbfs: float = -23.0

    def __post_init__(self) -> None:
        for name in ("joy_durations_s", "anger_durations_s", "neutral_durations_s"):
            value = getattr(self, name)
            try:
                value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise ParameterError(f"{name} must be a sequence of durations in seconds, "
                                     f"got {value!r}") from None
            if any(not (1.0 <= v <= 3600.0) for v in value):
                raise ParameterError(f"{name}: every duration must lie in [1, 3600] s, "
                                     f"got {value}")
            object.__setattr__(self, name, value)
        for name in ("action_duration_s", "buildup_share"):
            value = getattr(self, name)
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ParameterError(f"{name} must be a (low, high) pair, got {value!r}") from None
            if lo > hi:
                raise ParameterError(f"{name}: low {lo} exceeds high {hi}")
            object.__setattr__(self, name, (lo, hi))
        _check(self, "action_duration_s", self.action_duration_s[0], 3.0, 600.0)
        _check(self, "buildup_share", self.buildup_share[0], 0.0, 0.95)
        _check(self, "buildup_share", self.buildup_share[1], 0.0, 0.95)
        _check(self, "class_overlap", self.class_overlap, 0.0, 1.0)
        _check(self, "event_variability", self.event_variability, 0.0, 2.0)
        _check(self, "opposing_share", self.opposing_share, 0.0, 1.0)
        _check(self, "match_crowd_size", self.match_crowd_size, 10.0, 2e5)
        _check(self, "level_dbfs", self.level_dbfs, -60.0, -6.0)
        if self.crowd_size is not None:
            _check(self, "crowd_size", self.crowd_size, 5.0, 2e5)
        if self.t60_s is not None:
            _check(self, "t60_s", self.t60_s, 0.1, 8.0)
        if self.mic_distance_m is not None:
            _check(self, "mic_distance_m", self.mic_distance_m, 0.2, 50.0)
        if self.background_snr_db is not None:
            _check(self, "background_snr_db", self.background_snr_db, -10.0, 80.0)
        for name in ("goals", "misses", "clips_per_event"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ParameterError(f"{name} must be a non-negative integer, got {value!r}")
        if self.clips_per_event < 1:
            raise ParameterError(f"clips_per_event must be at least 1, got {self.clips_per_event}")
        if self.sample_rate not in (16000, 22050, 32000, 44100, 48000):
            raise ParameterError(f"sample_rate must be one of 16000, 22050, 32000, 44100, "
                                 f"48000 Hz, got {self.sample_rate!r}")
        if self.subtype not in ("PCM_16", "FLOAT"):
            raise ParameterError(f"subtype must be 'PCM_16' or 'FLOAT', got {self.subtype!r}")

    def durations(self, label: str) -> tuple:
        """The clip durations of an emotion class."""
        return getattr(self, f"{label}_durations_s")

    def to_dict(self) -> dict:
        """JSON-able dict of every parameter."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


def _check(params, name: str, value, lo: float, hi: float) -> None:
    try:
        ok = lo <= float(value) <= hi
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ParameterError(f"{name} must lie in [{lo:g}, {hi:g}], got {value!r}")


def _thirds(durations: tuple) -> tuple:
    """Each clip's duration cut into three clips of a third of it."""
    return tuple(round(d / 3.0, 3) for d in durations for _ in range(3))


_PAPER = SynthParams()

#: ``paper``: the paper's corpus shape (9/6/3 clips, 678 balanced blocks);
#: ``diverse``: the same audio per class in three times as many events
#: (27/18/9 clips a third as long, 621 balanced blocks), so that what a network
#: learns depends less on which 18 venues, crowds and recording chains were
#: drawn; ``smoke``: a few seconds per class, for tests.
PRESETS: dict[str, SynthParams] = {
    "paper": _PAPER,
    "diverse": dataclasses.replace(
        _PAPER,
        joy_durations_s=_thirds(_PAPER.joy_durations_s),
        anger_durations_s=_thirds(_PAPER.anger_durations_s),
        neutral_durations_s=_thirds(_PAPER.neutral_durations_s),
    ),
    "smoke": SynthParams(
        joy_durations_s=(5.0, 6.0),
        anger_durations_s=(6.0, 5.0),
        neutral_durations_s=(5.0, 6.0),
        goals=2,
        misses=2,
        action_duration_s=(6.0, 8.0),
        match_crowd_size=20000.0,
    ),
}


def make_params(preset: str | SynthParams = "paper", **overrides) -> SynthParams:
    """A preset with keyword overrides.

    Raises
    ------
    ParameterError
        For an unknown preset, an unknown parameter name (all of them are
        named) or a value out of range.
    """
    if isinstance(preset, SynthParams):
        base = preset
    else:
        if preset not in PRESETS:
            raise ParameterError(f"preset must be one of {', '.join(sorted(PRESETS))}, "
                                 f"got {preset!r}")
        base = PRESETS[preset]
    names = {f.name for f in dataclasses.fields(SynthParams)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ParameterError(f"unknown synthesizer parameter(s): {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(names))})")
    return dataclasses.replace(base, **overrides)


def parse_override(text: str) -> tuple[str, object]:
    """Parse a command-line override ``name=value`` by the parameter's type.

    Tuples are comma-separated (``joy_durations_s=5,6,7``); optional values
    accept ``none``.
    """
    if "=" not in text:
        raise ParameterError(f"override {text!r} must look like name=value")
    name, raw = (s.strip() for s in text.split("=", 1))
    hints = typing.get_type_hints(SynthParams)
    if name not in hints:
        raise ParameterError(f"unknown synthesizer parameter: {name} "
                             f"(known: {', '.join(sorted(hints))})")
    hint = hints[name]
    try:
        if raw.lower() == "none" and type(None) in typing.get_args(hint):
            return name, None
        if hint is tuple:
            return name, tuple(float(v) for v in raw.split(",") if v.strip())
        if hint is int:
            return name, int(raw)
        if hint is str:
            return name, raw
        return name, float(raw)
    except ValueError:
        raise ParameterError(f"{name}: cannot read {raw!r} as {hint}") from None


def expected_blocks(duration_s: float, *, block_s: float = 2.0, hop_s: float = 1.0,
                    sr: int = 44100) -> int:
    """Blocks a clip of ``duration_s`` gives with the paper's sliding window."""
    n = int(round(duration_s * sr))
    block, hop = int(round(block_s * sr)), int(round(hop_s * sr))
    return 0 if n < block else (n - block) // hop + 1
