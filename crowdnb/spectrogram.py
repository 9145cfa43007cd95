"""Spectrogram images: from a normalised block to the picture AlexNet sees.

The paper's second phase (section II.B): a mel spectrogram of each block,
Hamming window of 400 samples, 4.5 ms frame increment, shown on a fixed
[-130, -22] dB power/Hz range with MATLAB's 64-colour jet colormap, drawn at
257 x 259 (frequency x time) and resized to AlexNet's 227 x 227. The values
are :class:`crowdnb.config.SpectrogramConfig` and :class:`~crowdnb.config.ImageConfig`.

The level of the spectrogram is a power spectral density in dB re full scale
per Hz, as MATLAB's ``spectrogram(..., 'psd')`` reports it, and each mel band
*averages* the density over its bins (filter weights sum to 1). The paper's
fixed dB range only means what it meant there with that scaling: a white noise
of variance sigma^2 reads 10 log10(2 sigma^2 / fs) dB in every band.

Functions
---------
block_spectrum     block -> [n_bands, n_frames] dB: the one entry every caller uses
                   (it dispatches on ``SpectrogramConfig.freq_scale``: see TRANSFORMS)
mel_psd_db         block -> [n_mels, n_frames] dB re 1/Hz (the filterbank scales)
cqt_db             block -> [n_mels, n_frames] dB (the constant-Q transform)
to_image           dB grid -> [257, 259, 3] uint8 (resize, clip, quantise, colour)
render_image       dB grid -> [227, 227, 3] uint8 (to_image + AlexNet resize)
spectrogram_image  block -> [227, 227, 3] uint8 (the whole chain, one config)
mel_filterbank, hop_length, colormap_palette, matlab_jet: the pieces
(The figures of the book that show spectrograms are in :mod:`crowdnb.plots`.)
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np
import scipy.fft
import scipy.signal
import scipy.sparse
from PIL import Image

from .config import DB_SCALINGS, FREQ_SCALES, ImageConfig, PreprocessConfig, SpectrogramConfig
from .errors import ParameterError

__all__ = [
    "block_spectrum",
    "TRANSFORMS",
    "mel_psd_db",
    "cqt_db",
    "to_image",
    "spectrogram_image",
    "render_image",
    "mel_filterbank",
    "hop_length",
    "hz_to_mel",
    "mel_to_hz",
    "FREQ_SCALES",
    "hz_to_scale",
    "scale_to_hz",
    "band_edges",
    "DB_SCALINGS",
    "colormap_palette",
    "matlab_jet",
]

_MEL = SpectrogramConfig()
_IMAGE = ImageConfig()
# Power density floor before the logarithm: -200 dB, 70 dB below the lowest
# colour of the paper's range, so silence maps to the bottom colour, not -inf.
_DENSITY_FLOOR = 1e-20


# ---------------------------------------------------------------------------
# Frequency scales and filter bank



def hz_to_mel(f_hz: np.ndarray | float) -> np.ndarray:
    """Mel pitch of a frequency: ``2595 log10(1 + f / 700)`` (O'Shaughnessy/HTK).

    This is the scale of MATLAB's ``hz2mel`` and of the paper's definition,
    where a 1000 Hz tone has a pitch of 1000 mel.
    """
    return 2595.0 * np.log10(1.0 + np.asarray(f_hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _check_scale(freq_scale: str) -> str:
    if freq_scale not in FREQ_SCALES:
        raise ParameterError(f"freq_scale must be one of {', '.join(FREQ_SCALES)}, "
                             f"not {freq_scale!r}")
    return freq_scale


def hz_to_scale(f_hz: np.ndarray | float, freq_scale: str = "mel") -> np.ndarray:
    """Frequency in Hz to a position on ``freq_scale`` (one of :data:`FREQ_SCALES`).

    Every scale is increasing in f; ``"log"`` needs f > 0.
    """
    f = np.asarray(f_hz, dtype=np.float64)
    scale = _check_scale(freq_scale)
    if scale == "mel":
        return hz_to_mel(f)
    if scale == "bark":
        z = 26.81 * f / (1960.0 + f) - 0.53
        return np.where(z < 2.0, z + 0.15 * (2.0 - z), np.where(z > 20.1, z + 0.22 * (z - 20.1), z))
    if scale == "erb":
        return 21.4 * np.log10(1.0 + 0.00437 * f)
    if scale in ("log", "cqt"):  # the constant-Q transform's bins are log-spaced
        return np.log10(f)
    return f


def scale_to_hz(position: np.ndarray | float, freq_scale: str = "mel") -> np.ndarray:
    """Inverse of :func:`hz_to_scale`."""
    v = np.asarray(position, dtype=np.float64)
    scale = _check_scale(freq_scale)
    if scale == "mel":
        return mel_to_hz(v)
    if scale == "bark":
        z = np.where(v < 2.0, (v - 0.3) / 0.85, np.where(v > 20.1, (v + 4.422) / 1.22, v))
        return 1960.0 * (z + 0.53) / (26.28 - z)
    if scale == "erb":
        return (10.0 ** (v / 21.4) - 1.0) / 0.00437
    if scale in ("log", "cqt"):
        return 10.0 ** v
    return v


def band_edges(n_bands: int, fmin: float, fmax: float, freq_scale: str = "mel") -> np.ndarray:
    """The ``n_bands + 2`` edge frequencies (Hz), equally spaced on ``freq_scale``.

    Band i is a triangle from edge i to edge i + 2 with its peak at edge i + 1.
    """
    return scale_to_hz(np.linspace(hz_to_scale(fmin, freq_scale), hz_to_scale(fmax, freq_scale),
                                   n_bands + 2), freq_scale)


def hop_length(sr: int, frame_hop_s: float = _MEL.frame_hop_s) -> int:
    """Frame increment in samples: ``round(frame_hop_s * sr)``.

    4.5 ms is 198.45 samples at 44.1 kHz, rounded to 198 (4.490 ms); 216
    exactly at 48 kHz, 99 at 22.05 kHz (99.225), 72 at 16 kHz.
    """
    if isinstance(frame_hop_s, bool) or not isinstance(frame_hop_s, (int, float, np.number)) \
            or not math.isfinite(frame_hop_s) or frame_hop_s <= 0:
        raise ParameterError(f"frame_hop_s must be a finite positive number of seconds, "
                             f"got {frame_hop_s!r}")
    hop = int(round(frame_hop_s * sr))
    if hop < 1:
        raise ParameterError(f"frame_hop_s={frame_hop_s} s is less than one sample at {sr} Hz")
    return hop


def _effective_fmax(sr: int, fmax: float) -> float:
    return min(float(fmax), sr / 2.0)


@functools.lru_cache(maxsize=32)
def _filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float,
                freq_scale: str = "mel") -> np.ndarray:
    if freq_scale == "mel":
        weights = _htk_mel(sr, n_fft, n_mels, fmin, fmax)
    else:
        weights = _triangles(band_edges(n_mels, fmin, fmax, freq_scale),
                             np.arange(n_fft // 2 + 1) * (sr / n_fft))
    sums = weights.sum(axis=1)
    empty = np.flatnonzero(sums <= 0)
    if empty.size:
        edges = band_edges(n_mels, fmin, fmax, freq_scale)
        # The narrowest band is the lowest: find the smallest FFT size that fills it.
        need = 2 ** int(math.ceil(math.log2(sr / (edges[2] - edges[0]) * 1.0001)))
        raise ParameterError(
            f"n_fft={n_fft} leaves {empty.size} of n_mels={n_mels} mel bands without an FFT bin "
            f"(lowest empty band centred at {edges[empty[0] + 1]:.1f} Hz; bin spacing "
            f"{sr / n_fft:.1f} Hz); use n_fft >= {max(need, n_fft * 2)} or fewer bands"
        )
    weights /= sums[:, None]
    weights.setflags(write=False)
    return weights


def _htk_mel(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa's mel filters, ``librosa.filters.mel(htk=True, norm=None, dtype=np.float64)``.

    HTK's mel scale (:func:`hz_to_mel`), triangles from neighbour to neighbour
    centre (the caller scales each row to sum to 1, so that a band averages
    the density). librosa's computation, operation for operation, so the
    same weights to the last bit (``tests/test_inference_faults.py`` checks
    them against librosa's), without importing librosa: its import (numba,
    llvmlite) adds about 120 MB of resident memory to ``crowdnb predict`` and
    ``crowdnb listen``, which need nothing else of it.
    """
    edges = band_edges(n_mels, fmin, fmax, "mel")
    bin_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bin_hz)
    weights = np.zeros((n_mels, bin_hz.size), dtype=np.float64)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    return weights


def _triangles(edges: np.ndarray, bin_hz: np.ndarray) -> np.ndarray:
    """Triangles from edge i to edge i + 2, each side at least one FFT bin wide.

    The construction of librosa's mel filters on any edges; where a band is
    narrower than the bin spacing (the low bands of the log and ERB scales at
    20 Hz), its sides are widened to one bin, so that the band interpolates
    between its neighbouring bins instead of holding none.
    """
    spacing = bin_hz[1] - bin_hz[0]
    centres = edges[1:-1, None]
    below = np.maximum(centres - edges[:-2, None], spacing)
    above = np.maximum(edges[2:, None] - centres, spacing)
    rising = (bin_hz[None, :] - (centres - below)) / below
    falling = ((centres + above) - bin_hz[None, :]) / above
    return np.maximum(0.0, np.minimum(rising, falling))


def mel_filterbank(
    sr: int, *, n_fft: int = _MEL.n_fft, n_mels: int = _MEL.n_mels, fmin: float = _MEL.fmin,
    fmax: float = _MEL.fmax, freq_scale: str = _MEL.freq_scale,
) -> np.ndarray:
    """Triangular filters that average a spectrum over each band of a frequency scale.

    librosa's filters on the HTK mel scale (``librosa.filters.mel(htk=True,
    norm=None)``): band edges are ``n_mels + 2`` points equally spaced on the
    mel scale (:func:`hz_to_mel`) from ``fmin`` to ``min(fmax, sr / 2)``, each
    filter a triangle from its lower to its upper neighbour's centre, sampled
    at the FFT bin frequencies ``k sr / n_fft``; each is then normalised so
    that its weights sum to 1. A band that holds no FFT bin is an error.

    The other scales of :data:`FREQ_SCALES` use the same construction on their
    own edges (:func:`band_edges`), with each triangle's sides at least one
    FFT bin wide: a band narrower than a bin interpolates between its
    neighbouring bins rather than holding none.

    Parameters
    ----------
    sr : int > 0
        Sample rate in Hz.
    n_fft : int > 0
        FFT length (zero-padded frame length) in samples.
    n_mels : int > 0
        Number of bands (mel bands on the paper's scale).
    fmin, fmax : float
        Band range in Hz (``fmax`` is lowered to the Nyquist frequency).
    freq_scale : str
        One of :data:`FREQ_SCALES` (``"mel"``, the paper's).

    Returns
    -------
    weights : np.ndarray [shape=(n_mels, 1 + n_fft // 2)], read-only
        Rows sum to 1.

    Raises
    ------
    ParameterError
        For invalid values, or when a band holds no FFT bin (the message says
        which ``n_fft`` would fill every band).
    """
    sr, n_fft, n_mels, fmin, fmax = _check_mel(sr, n_fft, n_mels, fmin, fmax, freq_scale)
    return _filterbank(sr, n_fft, n_mels, fmin, fmax, freq_scale)


def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_mel(sr, n_fft, n_mels, fmin, fmax,
               freq_scale: str = "mel") -> tuple[int, int, int, float, float]:
    sr = _check_int(sr, "sr")
    n_fft = _check_int(n_fft, "n_fft", 2)
    n_mels = _check_int(n_mels, "n_mels")
    for name, value in (("fmin", fmin), ("fmax", fmax)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(value) or value < 0:
            raise ParameterError(f"{name} must be a finite frequency >= 0 Hz, got {value!r}")
    if _check_scale(freq_scale) == "log" and fmin <= 0:
        raise ParameterError(f"fmin must be above 0 Hz on the log frequency scale, got {fmin!r}")
    fmax_eff = _effective_fmax(sr, fmax)
    if fmin >= fmax_eff:
        raise ParameterError(
            f"fmin ({fmin} Hz) must be below fmax ({fmax} Hz, at most sr/2 = {sr / 2:g} Hz)"
        )
    return sr, n_fft, n_mels, float(fmin), fmax_eff


@functools.lru_cache(maxsize=16)
def _psd_operator(sr: int, win_length: int, n_fft: int, n_mels: int, fmin: float,
                  fmax: float, freq_scale: str) -> tuple[np.ndarray, Any, int, int]:
    """Window, and the sparse mel matrix with the one-sided PSD scaling folded in."""
    # MATLAB's hamming(N) is the symmetric window.
    window = scipy.signal.windows.hamming(win_length, sym=True)
    scale = np.full(n_fft // 2 + 1, 2.0 / (sr * np.sum(window**2)))
    scale[0] /= 2.0  # DC is not doubled
    if n_fft % 2 == 0:
        scale[-1] /= 2.0  # nor is Nyquist
    weights = _filterbank(sr, n_fft, n_mels, fmin, fmax, freq_scale) * scale[None, :]
    # Only the bins some band uses enter the product, and each band uses few of
    # them: a sparse product is ~10x cheaper than a dense one, and does not start
    # BLAS threads that fight over a small machine's cores.
    used = np.flatnonzero(weights.any(axis=0))
    first, last = int(used[0]), int(used[-1]) + 1
    operator = scipy.sparse.csr_array(weights[:, first:last].astype(np.float32))
    return window.astype(np.float32), operator, first, last


def mel_psd_db(
    block: np.ndarray,
    sr: int,
    *,
    win_length: int = _MEL.win_length,
    frame_hop_s: float = _MEL.frame_hop_s,
    n_fft: int = _MEL.n_fft,
    n_mels: int = _MEL.n_mels,
    fmin: float = _MEL.fmin,
    fmax: float = _MEL.fmax,
    freq_scale: str = _MEL.freq_scale,
) -> np.ndarray:
    """Mel spectrogram of a block as power spectral density in dB re 1/Hz.

    Frames of ``win_length`` samples every ``round(frame_hop_s * sr)`` samples (no
    padding at the ends, like MATLAB's ``spectrogram``), a symmetric Hamming
    window, zero-padded to ``n_fft``. Each frame's periodogram is scaled as
    MATLAB's one-sided PSD, ``|X|^2 / (fs sum(w^2))`` doubled except at DC and
    Nyquist, so a full-scale-referenced white noise of variance sigma^2 has a
    density of ``2 sigma^2 / fs``. The filters of :func:`mel_filterbank` (mel,
    or another scale of :data:`FREQ_SCALES`) then average that density over each band, and the result is floored at
    1e-20 (-200 dB) before ``10 log10``.

    Parameters
    ----------
    block : np.ndarray [shape=(n,)]
        Mono block (full scale = 1.0), at least ``win_length`` samples.
    sr : int > 0
        Sample rate in Hz.
    win_length : int > 0
        Hamming window length in samples (the paper: 400).
    frame_hop_s : float > 0
        Frame increment in seconds (the paper: 4.5 ms; see :func:`hop_length`).
    n_fft : int >= win_length
        FFT length in samples (zero padding).
    n_mels : int > 0
        Number of bands.
    fmin, fmax : float
        Band range in Hz; ``fmax`` is lowered to ``sr / 2`` where it is above.
    freq_scale : str
        The frequency axis (:data:`FREQ_SCALES`; the paper: ``"mel"``).

    Returns
    -------
    S_db : np.ndarray [shape=(n_mels, n_frames), dtype=float32]
        dB re 1/Hz full scale; row 0 is the lowest band;
        ``n_frames = 1 + (n - win_length) // hop``.
    """
    x = np.asarray(block)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(f"block must be a float signal of shape (n,), got {x.dtype} {x.shape}")
    sr, n_fft, n_mels, fmin, fmax = _check_mel(sr, n_fft, n_mels, fmin, fmax, freq_scale)
    win_length = _check_int(win_length, "win_length")
    if n_fft < win_length:
        raise ParameterError(f"n_fft ({n_fft}) must be at least win_length ({win_length})")
    hop = hop_length(sr, frame_hop_s)
    if x.size < win_length:
        raise ParameterError(
            f"block has {x.size} samples, fewer than one window (win_length={win_length})"
        )
    window, operator, first, last = _psd_operator(sr, win_length, n_fft, n_mels, fmin, fmax,
                                                  freq_scale)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32, copy=False),
                                                      win_length)[::hop]
    padded = np.zeros((frames.shape[0], n_fft), dtype=np.float32)
    np.multiply(frames, window, out=padded[:, :win_length])
    spectrum = scipy.fft.rfft(padded, axis=-1)[:, first:last]
    # [used bins, n_frames], C-contiguous: the layout a sparse-times-dense product
    # reads without copying.
    power = np.ascontiguousarray((spectrum.real**2 + spectrum.imag**2).T)
    density = np.maximum(operator @ power, _DENSITY_FLOOR)  # [n_mels, n_frames]
    return np.ascontiguousarray(10.0 * np.log10(density), dtype=np.float32)


#: Representations with a transform of their own, by their ``freq_scale`` name:
#: ``(block, sr, config) -> [n_bands, n_frames]`` dB. The scales not listed here
#: are filterbanks over the same short-time spectrum (:func:`mel_psd_db`). A new
#: representation is one function, one entry here and its name in
#: :data:`crowdnb.config.FREQ_SCALES` (see the book's "Extending the study").
TRANSFORMS: dict[str, Callable[[np.ndarray, int, SpectrogramConfig], np.ndarray]] = {}


def cqt_db(block: np.ndarray, sr: int, spectrogram: SpectrogramConfig = _MEL) -> np.ndarray:
    """The constant-Q transform of a block (``freq_scale="cqt"``), in dB on the PSD's footing.

    ``n_mels`` bins from ``max(fmin, 32.7 Hz)`` (C1) to below ``min(fmax, sr / 2)``,
    as many per octave as fill that range; each bin is analysed over a window of a
    fixed number of its own periods (long at low frequencies, short at high ones),
    unlike the STFT's one 400-sample window. Frames every ``frame_hop_s`` rounded
    to a multiple of the 2^(octaves - 1) samples librosa's octave-by-octave
    downsampling needs. With librosa's ``scale=True`` a white noise's power is
    flat across bins, at about its variance; ``10 log10(2 |C|^2 / sr)`` puts it
    about 2 dB above :func:`mel_psd_db`'s ``10 log10(2 sigma^2 / sr)`` (the median
    bin; the lowest bins, with few of their long windows in a 2 s block, scatter
    by a few dB), so the paper's fixed dB range keeps its meaning.

    Returns
    -------
    S_db : np.ndarray [shape=(n_mels, n_frames), dtype=float32]
        Row 0 the lowest bin.
    """
    import librosa

    fmin = max(spectrogram.fmin, 32.70)
    top = min(spectrogram.fmax, 0.95 * sr / 2)
    octaves = math.log2(top / fmin)
    per_octave = math.ceil(spectrogram.n_mels / octaves)
    step = 2 ** max(math.ceil(spectrogram.n_mels / per_octave) - 1, 0)
    hop = max(step, step * round(hop_length(sr, spectrogram.frame_hop_s) / step))
    C = librosa.cqt(np.asarray(block, dtype=np.float32), sr=sr, hop_length=hop, fmin=fmin,
                    n_bins=spectrogram.n_mels, bins_per_octave=per_octave, scale=True)
    power = np.maximum(2.0 * np.abs(C) ** 2 / sr, _DENSITY_FLOOR)
    return np.ascontiguousarray(10.0 * np.log10(power), dtype=np.float32)


TRANSFORMS["cqt"] = cqt_db


def block_spectrum(block: np.ndarray, sr: int, *,
                   spectrogram: SpectrogramConfig = _MEL) -> np.ndarray:
    """The level grid of one block, as ``spectrogram`` asks: the one block -> spectrum entry.

    Every part of the study that turns a block into its spectrum (the images,
    the baselines' log-mel matrices and MFCCs, the action sequences, the
    figures) calls this, so a representation added to :data:`TRANSFORMS`
    reaches all of them.

    Parameters
    ----------
    block : np.ndarray [shape=(n,)]
        Mono block (full scale = 1.0).
    sr : int > 0
        Sample rate in Hz.
    spectrogram : SpectrogramConfig
        The representation (``freq_scale``) and its settings.

    Returns
    -------
    S_db : np.ndarray [shape=(n_bands, n_frames), dtype=float32]
        Level in dB, row 0 the lowest band.
    """
    transform = TRANSFORMS.get(spectrogram.freq_scale)
    if transform is not None:
        return transform(block, sr, spectrogram)
    return mel_psd_db(block, sr, **spectrogram.to_dict())


# ---------------------------------------------------------------------------
# Colour


def matlab_jet(n: int = 64) -> np.ndarray:
    """MATLAB's ``jet(n)``, exactly: the piecewise-linear formula of ``jet.m``.

    Returns
    -------
    palette : np.ndarray [shape=(n, 3)]
        RGB in [0, 1]; ``jet(64)`` runs from (0, 0, 0.5625) to (0.5, 0, 0).
    """
    n = _check_int(n, "n_colors")
    q = int(math.ceil(n / 4))
    u = np.concatenate([np.arange(1, q + 1) / q, np.ones(q - 1), np.arange(q, 0, -1) / q])
    g = int(math.ceil(q / 2)) - (1 if n % 4 == 1 else 0) + np.arange(1, u.size + 1)
    r = g + q
    b = g - q
    g = g[g <= n]
    r = r[r <= n]
    b = b[b >= 1]
    palette = np.zeros((n, 3))
    palette[r - 1, 0] = u[: r.size]
    palette[g - 1, 1] = u[: g.size]
    palette[b - 1, 2] = u[u.size - b.size:]
    return palette


@functools.lru_cache(maxsize=16)
def _palette_uint8(colormap: str, n_colors: int) -> np.ndarray:
    palette = np.round(colormap_palette(colormap, n_colors) * 255.0).astype(np.uint8)
    palette.setflags(write=False)
    return palette


def colormap_palette(colormap: str = "jet", n_colors: int = 64) -> np.ndarray:
    """An ``n_colors`` x 3 RGB palette in [0, 1].

    ``"jet"`` is MATLAB's (:func:`matlab_jet`), since the paper used MATLAB;
    any other name is a matplotlib colormap resampled to ``n_colors``.
    """
    n_colors = _check_int(n_colors, "n_colors", 2)
    if colormap == "jet":
        return matlab_jet(n_colors)
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except (KeyError, TypeError):
        raise ParameterError(f"colormap {colormap!r} is neither 'jet' nor a matplotlib colormap") \
            from None
    return np.asarray(cmap.resampled(n_colors)(np.arange(n_colors)))[:, :3]


def _check_db_range(db_range: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in db_range)
    except (TypeError, ValueError):
        raise ParameterError(f"db_range must be two numbers (dB), got {db_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ParameterError(f"db_range must be finite with low < high, got {db_range!r}")
    return low, high


def _check_size(size: Sequence[int], name: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be (rows, columns), got {size!r}") from None
    if rows < 1 or cols < 1 or tuple(size) != (rows, cols):
        raise ParameterError(f"{name} must be two positive integers, got {size!r}")
    return rows, cols



def to_image(
    S_db: np.ndarray,
    *,
    db_range: tuple[float, float] = _IMAGE.db_range,
    size: tuple[int, int] = _IMAGE.size,
    n_colors: int = _IMAGE.n_colors,
    colormap: str = _IMAGE.colormap,
    db_scaling: str = _IMAGE.db_scaling,
) -> np.ndarray:
    """Colour a dB grid the way the paper's figures were coloured.

    The grid is first resized to ``size`` by interpolation on the dB values
    (PIL bilinear, which averages over the source pixels when shrinking, as
    MATLAB's ``imresize`` does), then clipped to ``db_range`` and quantised to
    ``n_colors`` equal steps, like MATLAB's scaled colour mapping
    (``index = floor((v - low) / (high - low) * n)``, the top value in the last
    colour), and looked up in the palette.

    Parameters
    ----------
    S_db : np.ndarray [shape=(n_bands, n_frames)]
        Level in dB, row 0 the lowest band (as :func:`mel_psd_db` returns it).
    db_range : (float, float)
        dB values mapped to the first and last colour.
    size : (int, int)
        Image (rows, columns): frequency x time.
    n_colors : int >= 2
        Palette length.
    colormap : str
        ``"jet"`` (MATLAB's) or a matplotlib colormap name.
    db_scaling : {"fixed", "per_image"}
        ``"fixed"``: ``db_range`` (the paper); ``"per_image"``: the resized
        grid's own lowest and highest values, ``db_range`` unused.

    Returns
    -------
    image : np.ndarray [shape=(rows, columns, 3), dtype=uint8]
        Row 0 is the highest band (low frequencies at the bottom); time runs
        left to right.
    """
    S = np.asarray(S_db)
    if S.ndim != 2 or S.size == 0:
        raise ParameterError(f"S_db must be a non-empty 2-D array, got shape {S.shape}")
    if not np.isfinite(S).all():
        raise ParameterError("S_db holds NaN or infinite values")
    low, high = _check_db_range(db_range)
    if db_scaling not in DB_SCALINGS:
        raise ParameterError(f"db_scaling must be one of {', '.join(DB_SCALINGS)}, "
                             f"not {db_scaling!r}")
    rows, cols = _check_size(size, "size")
    palette = _palette_uint8(colormap, _check_int(n_colors, "n_colors", 2))
    grid = Image.fromarray(np.ascontiguousarray(S, dtype=np.float32))
    if grid.size != (cols, rows):
        grid = grid.resize((cols, rows), Image.Resampling.BILINEAR)
    n = palette.shape[0]
    index = np.array(grid, dtype=np.float32)  # a writable copy, quantised in place
    if db_scaling == "per_image":
        low, high = float(index.min()), float(index.max())
        high = high if high > low else low + 1.0  # a flat grid: the first colour
    index -= low
    index *= n / (high - low)
    np.floor(index, out=index)
    np.clip(index, 0, n - 1, out=index)
    index = index.astype(np.uint8 if n <= 256 else np.intp)
    return palette.take(index[::-1], axis=0)


def render_image(S_db: np.ndarray, *, image: ImageConfig = _IMAGE) -> np.ndarray:
    """:func:`to_image`, then resize to ``image.out_size`` (PIL bicubic) for AlexNet.

    PIL's bicubic filter widens its kernel when it shrinks an image, so it
    antialiases like MATLAB's ``imresize``.

    Returns
    -------
    picture : np.ndarray [shape=(rows, columns, 3), dtype=uint8]
    """
    rows, cols = _check_size(image.out_size, "out_size")
    picture = to_image(S_db, db_range=image.db_range, size=image.size, n_colors=image.n_colors,
                       colormap=image.colormap, db_scaling=image.db_scaling)
    if picture.shape[:2] != (rows, cols):
        picture = np.asarray(Image.fromarray(picture).resize((cols, rows), Image.Resampling.BICUBIC))
    return picture


def spectrogram_image(block: np.ndarray, sr: int, *,
                      config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """The whole chain for one normalised block: its spectrum, colours, AlexNet size.

    Parameters
    ----------
    block : np.ndarray [shape=(n,)]
        A loudness-normalised block (see :func:`crowdnb.audio.normalised_blocks`).
    sr : int > 0
        Sample rate in Hz.
    config : PreprocessConfig
        Its ``spectrogram`` and ``image`` parts are used.

    Returns
    -------
    picture : np.ndarray [shape=(227, 227, 3), dtype=uint8]
    """
    return render_image(block_spectrum(block, sr, spectrogram=config.spectrogram), image=config.image)
