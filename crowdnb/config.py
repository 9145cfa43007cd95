"""The study's settings, each written once: preprocessing and the training recipe.

:class:`PreprocessConfig` gathers every parameter of the sound-to-image phase
(:class:`AudioConfig`: load, band limit, blocks, loudness;
:class:`SpectrogramConfig`: the mel power spectral density;
:class:`ImageConfig`: colours and sizes), with the paper's values as
defaults. :class:`TrainRecipe` is MATLAB's fine-tuning recipe as the paper
used it. Both are frozen, check their values when they are made, and travel
as plain dicts (``to_dict``/``from_dict``): in a stage's summary, in every
checkpoint, and back into :mod:`crowdnb.predict`. The library's functions take
their defaults from here; the notebooks' parameter cells repeat them as
literals (papermill needs literals), and a test holds the two equal.

Every field name is unique across the three parts of :class:`PreprocessConfig`,
so the flat form (``PreprocessConfig.from_flat(sr=..., db_low=...)``, the
notebooks' parameter names) maps to one field each.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ParameterError

__all__ = [
    "AudioConfig",
    "SpectrogramConfig",
    "ImageConfig",
    "PreprocessConfig",
    "TrainRecipe",
    "PAPER_PREPROCESSING",
    "PAPER_RECIPE",
    "FREQ_SCALES",
    "DB_SCALINGS",
]


def _number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise ParameterError(f"{name} must be {'an integer' if integer else 'a finite number'}, "
                             f"got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ParameterError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and value > high:
        raise ParameterError(f"{name} must be <= {high:g}, got {value!r}")
    return int(value) if integer else float(value)


#: The frequency axes a spectrogram can be drawn on: the paper's mel scale and
#: the other scales of its journal follow-up (bark, ERB, log) and plain Hz.
FREQ_SCALES = {
    "mel": "mel (HTK: 2595 log10(1 + f / 700)), the paper's",
    "bark": "bark (Traunmueller 1990, with MATLAB's hz2bark corrections below 2 and above 20.1 bark)",
    "erb": "ERB-rate (Glasberg and Moore 1990: 21.4 log10(1 + 0.00437 f))",
    "log": "logarithmic (log10 f: equal ratios, a constant-Q axis)",
    "linear": "linear (Hz: every band equally wide)",
    "cqt": "constant-Q transform (librosa.cqt: log-spaced bins, each analysed over a window of "
           "a fixed number of its periods)",
}

#: How the dB values are mapped to colours.
DB_SCALINGS = {
    "fixed": "a fixed dB range for every image (the paper's [-130, -22] dB re 1/Hz)",
    "per_image": "each image's own range, from its lowest to its highest value (MATLAB's imagesc)",
}


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _pair(value: Any, name: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be (rows, columns), got {value!r}") from None
    if rows < 1 or cols < 1 or list(value) != [rows, cols]:
        raise ParameterError(f"{name} must be two positive integers, got {value!r}")
    return rows, cols


class _Config:
    """``to_dict``/``from_dict``/``replace`` for the frozen configs below."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able values (tuples become lists)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, _Config) else \
                list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, *, where: str = ""):
        """The config from :meth:`to_dict`'s form; absent names keep the paper's value.

        Raises
        ------
        ParameterError
            For a name the config does not have, or a value it cannot take.
        """
        values = dict(values or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            prefix = f"{where}: " if where else ""
            raise ParameterError(f"{prefix}{cls.__name__} has no setting(s) {', '.join(unknown)} "
                                 f"(it has: {', '.join(names)})")
        kwargs = {}
        for name, value in values.items():
            default = names[name].default_factory() if names[name].default_factory \
                is not dataclasses.MISSING else None
            kwargs[name] = type(default).from_dict(value, where=where) \
                if isinstance(default, _Config) else value
        return cls(**kwargs)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class AudioConfig(_Config):
    """From a clip to loudness-normalised blocks (the paper's section II.A).

    Attributes
    ----------
    sr : int > 0
        Sample rate every clip is resampled to, Hz.
    block_s, hop_s : float > 0
        Block length ``t_b`` and time between block starts ``t_s``, s (2 and 1).
    low_hz, high_hz : float > 0
        Band limit, Hz (20 Hz - 20 kHz: the range of human hearing).
    order : int > 0
        Butterworth order of each band edge (run forwards and backwards).
    target_lufs : float
        Loudness of every block, LUFS (-23, EBU R128).
    """

    sr: int = 44100
    block_s: float = 2.0
    hop_s: float = 1.0
    low_hz: float = 20.0
    high_hz: float = 20000.0
    order: int = 4
    target_lufs: float = -23.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sr", _number(self.sr, "sr", low=1000, integer=True))
        for name in ("block_s", "hop_s", "low_hz", "high_hz"):
            object.__setattr__(self, name, _number(getattr(self, name), name, low=0, low_open=True))
        object.__setattr__(self, "order", _number(self.order, "order", low=1, high=16, integer=True))
        object.__setattr__(self, "target_lufs", _number(self.target_lufs, "target_lufs",
                                                        low=-70, high=0))
        if self.high_hz <= self.low_hz:
            raise ParameterError(f"high_hz ({self.high_hz:g} Hz) must be above low_hz "
                                 f"({self.low_hz:g} Hz)")
        if self.block_s < 0.4:
            raise ParameterError(f"block_s must be at least 0.4 s (one loudness gating block), "
                                 f"got {self.block_s:g}")


@dataclass(frozen=True)
class SpectrogramConfig(_Config):
    """The mel power spectral density of a block (section II.B).

    Attributes
    ----------
    win_length : int > 0
        Hamming window, samples (400).
    frame_hop_s : float > 0
        Frame increment, s (4.5 ms).
    n_fft : int >= win_length
        FFT length, samples (chosen in ``book/method_choices.md``).
    n_mels : int > 0
        Bands of the frequency scale (chosen there too).
    fmin, fmax : float
        Band range of the filters, Hz (``fmax`` is lowered to ``sr / 2``).
    freq_scale : str
        The frequency axis of the bands: ``"mel"`` (the paper's), ``"bark"``,
        ``"erb"``, ``"log"`` or ``"linear"`` (the ablations of the book).
    """

    win_length: int = 400
    frame_hop_s: float = 0.0045
    n_fft: int = 2048
    n_mels: int = 128
    fmin: float = 20.0
    fmax: float = 20000.0
    freq_scale: str = "mel"

    def __post_init__(self) -> None:
        for name in ("win_length", "n_fft", "n_mels"):
            object.__setattr__(self, name, _number(getattr(self, name), name, low=1, integer=True))
        object.__setattr__(self, "frame_hop_s", _number(self.frame_hop_s, "frame_hop_s", low=0,
                                                        low_open=True))
        object.__setattr__(self, "fmin", _number(self.fmin, "fmin", low=0))
        object.__setattr__(self, "fmax", _number(self.fmax, "fmax", low=0, low_open=True))
        if self.n_fft < self.win_length:
            raise ParameterError(f"n_fft ({self.n_fft}) must be at least win_length "
                                 f"({self.win_length})")
        if self.fmin >= self.fmax:
            raise ParameterError(f"fmin ({self.fmin:g} Hz) must be below fmax ({self.fmax:g} Hz)")
        _choice(self.freq_scale, "freq_scale", tuple(FREQ_SCALES))


@dataclass(frozen=True)
class ImageConfig(_Config):
    """The picture AlexNet sees (section II.B).

    Attributes
    ----------
    db_low, db_high : float
        Power density drawn as the first and the last colour, dB re 1/Hz
        (-130 and -22).
    n_colors : int in [2, 256]
        Colours of the colormap (64).
    colormap : str
        ``"jet"`` (MATLAB's, as in the paper) or a matplotlib colormap name.
    size : (int, int)
        The drawn image, rows x columns: frequency x time (257 x 259).
    out_size : (int, int)
        The network's input, after resizing (227 x 227).
    db_scaling : str
        ``"fixed"``: every image on ``[db_low, db_high]`` (the paper);
        ``"per_image"``: each image on its own lowest to highest value.
    """

    db_low: float = -130.0
    db_high: float = -22.0
    n_colors: int = 64
    colormap: str = "jet"
    size: tuple = (257, 259)
    out_size: tuple = (227, 227)
    db_scaling: str = "fixed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_low", _number(self.db_low, "db_low"))
        object.__setattr__(self, "db_high", _number(self.db_high, "db_high"))
        if self.db_high <= self.db_low:
            raise ParameterError(f"db_high ({self.db_high:g} dB) must be above db_low "
                                 f"({self.db_low:g} dB)")
        object.__setattr__(self, "n_colors", _number(self.n_colors, "n_colors", low=2, high=256,
                                                     integer=True))
        if not isinstance(self.colormap, str) or not self.colormap:
            raise ParameterError(f"colormap must be a colormap name, got {self.colormap!r}")
        object.__setattr__(self, "size", _pair(self.size, "size"))
        object.__setattr__(self, "out_size", _pair(self.out_size, "out_size"))
        _choice(self.db_scaling, "db_scaling", tuple(DB_SCALINGS))

    @property
    def db_range(self) -> tuple[float, float]:
        return (self.db_low, self.db_high)


@dataclass(frozen=True)
class PreprocessConfig(_Config):
    """Every setting of the sound-to-image phase; the defaults are the paper's."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    image: ImageConfig = field(default_factory=ImageConfig)

    _PARTS = ("audio", "spectrogram", "image")

    @classmethod
    def from_flat(cls, **values: Any) -> "PreprocessConfig":
        """From the flat names (``sr=..., frame_hop_s=..., db_low=...``).

        Raises
        ------
        ParameterError
            For a name no part has, or a value a part cannot take.
        """
        parts: dict[str, dict[str, Any]] = {p: {} for p in cls._PARTS}
        owner = {f.name: part for part, kind in zip(cls._PARTS, (AudioConfig, SpectrogramConfig,
                                                                 ImageConfig))
                 for f in dataclasses.fields(kind)}
        unknown = sorted(set(values) - set(owner))
        if unknown:
            raise ParameterError(f"unknown preprocessing setting(s) {', '.join(unknown)} "
                                 f"(settings: {', '.join(owner)})")
        for name, value in values.items():
            parts[owner[name]][name] = value
        return cls.from_dict(parts)

    def flat(self) -> dict[str, Any]:
        """The flat names and their values (the inverse of :meth:`from_flat`)."""
        return {k: v for part in self.to_dict().values() for k, v in part.items()}


@dataclass(frozen=True)
class TrainRecipe(_Config):
    """MATLAB's transfer-learning recipe, as the paper trains AlexNet.

    Attributes
    ----------
    epochs : int > 0
        Passes over the training images (6).
    batch_size : int > 0
        Images per minibatch (10).
    lr : float > 0
        Initial learning rate (1e-4), for every layer but the new one.
    new_layer_lr_factor : float > 0
        Learning-rate factor of the new last layer, weights and biases
        (MATLAB's ``WeightLearnRateFactor``/``BiasLearnRateFactor``: 20).
    momentum : float in [0, 1)
        SGD momentum (MATLAB's default 0.9).
    weight_decay : float >= 0
        L2 regularisation of the weights (1e-4; biases get none).
    validate_every : int > 0 or None
        Validation every this many iterations (3), plus after the first and
        the last; None: after the last only.
    validation_blocks : int > 0 or None
        Test blocks used by the intermediate validations (a fixed, seeded
        subset); None: all of them (the paper). The final evaluation always
        uses all.
    drop_last : bool
        Discard the last partial minibatch of each epoch (MATLAB does).
    """

    epochs: int = 6
    batch_size: int = 10
    lr: float = 1e-4
    new_layer_lr_factor: float = 20.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    validate_every: int | None = 3
    validation_blocks: int | None = None
    drop_last: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            object.__setattr__(self, name, _number(getattr(self, name), name, low=1, integer=True))
        for name in ("validate_every", "validation_blocks"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _number(value, name, low=1, integer=True))
        object.__setattr__(self, "lr", _number(self.lr, "lr", low=0, low_open=True))
        object.__setattr__(self, "new_layer_lr_factor",
                           _number(self.new_layer_lr_factor, "new_layer_lr_factor", low=0,
                                   low_open=True))
        object.__setattr__(self, "momentum", _number(self.momentum, "momentum", low=0, high=0.999))
        object.__setattr__(self, "weight_decay", _number(self.weight_decay, "weight_decay", low=0))
        if not isinstance(self.drop_last, bool):
            raise ParameterError(f"drop_last must be true or false, got {self.drop_last!r}")


    def from_scratch(self, *, lr_per_image: float = 0.01 / 128,
                     weight_decay: float = 5e-4) -> "TrainRecipe":
        """The recipe for a network from random initialisation, derived a priori from this one.

        The paper's recipe fine-tunes: a learning rate of 1e-4 that leaves
        pretrained features nearly alone, and 20 times that for the one new
        layer. From random weights there is nothing to leave alone, and at
        1e-4 the network stays a constant classifier. This recipe is the one
        the network was trained from scratch with on ImageNet, its learning
        rate scaled linearly to this minibatch (Goyal et al. 2017's rule), one
        rate for every layer. The defaults are AlexNet's (Krizhevsky et al.
        2012: SGD with momentum 0.9, learning rate 0.01 for minibatches of
        128, weight decay 5e-4: 0.01 x 10 / 128 = 7.8e-4 for the paper's 10);
        each network's are in :data:`crowdnb.networks.NETWORKS`. Epochs,
        minibatch and validation stay this recipe's. It was fixed before any
        test result was seen; the training chapters say so.

        Parameters
        ----------
        lr_per_image : float > 0
            The published learning rate divided by its minibatch size.
        weight_decay : float >= 0
            The published L2 factor.
        """
        return self.replace(lr=lr_per_image * self.batch_size, new_layer_lr_factor=1.0,
                            momentum=0.9, weight_decay=weight_decay)


#: The paper's preprocessing and training recipe.
PAPER_PREPROCESSING = PreprocessConfig()
PAPER_RECIPE = TrainRecipe()
