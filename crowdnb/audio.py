"""Sound normalisation: from an audio file to loudness-normalised 2 s blocks.

The paper's first phase (section II.A) in four steps, each a plain function:

1. :func:`load_clip` reads a clip (wav, flac, ogg, mp3; m4a/aac through
   ffmpeg), mixes it down to mono and resamples it to one rate;
2. :func:`band_limit` cuts it to the human hearing range, 20 Hz to 20 kHz;
3. :func:`split_blocks` slices it into blocks of ``tb = 2 s`` every
   ``ts = 1 s``;
4. :func:`normalize_loudness` brings each block to -23 LUFS (EBU R128).

:func:`normalised_blocks` is the step "clip -> normalised blocks" as one
generator, with the settings of a :class:`crowdnb.config.AudioConfig`: every
caller (preprocessing, the predictor, the book's chapters) goes through it.

Every function reports what it did in a small ``info`` dict (or a ``reason``)
instead of silently changing the method: a band-pass that became a high-pass,
a block that was too quiet to measure, a block that clips after its gain.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple

import numpy as np
import scipy.signal

from .config import AudioConfig
from .errors import AudioError, DataError, ParameterError

__all__ = ["load_clip", "band_limit", "split_blocks", "normalize_loudness", "BlockSplit",
           "Block", "normalised_blocks", "blocks_with_gains", "apply_gain", "truncation",
           "full_scale_fraction", "CLIPPING_FRACTION"]

_AUDIO = AudioConfig()

# Above this fraction of the Nyquist frequency a low-pass corner is too close to
# Nyquist for a stable, meaningful Butterworth design: the band-pass becomes a
# high-pass (recorded in the info dict).
_NYQUIST_FRACTION = 0.95
# Extensions libsndfile reads itself; anything else goes to ffmpeg (m4a, aac, ...).
_SOUNDFILE_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64",
}
# BS.1770 gating block length: a block shorter than this has no loudness.
_GATE_S = 0.4
_ABSOLUTE_GATE_LUFS = -70.0


def _check_sr(sr: int, name: str = "sr") -> int:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ParameterError(f"{name} must be a positive integer (Hz), got {sr!r}")
    return int(sr)


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def _check_signal(y: np.ndarray, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"{name} must be a mono signal of shape (n,), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{name} must hold floating-point samples, got dtype {y.dtype}")
    return y


# ---------------------------------------------------------------------------
# Loading


def _ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        data, file_sr = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc)
        if "does not exist or is not a regular file" in reason:
            # libsndfile's words for a file its decoder gave up on (the file is there)
            reason = "corrupt, or not audio: the decoder found no valid frame"
        raise AudioError(f"{path}: not readable as audio ({reason})") from None
    return data, int(file_sr)


def _read_ffmpeg(path: Path, exe: str) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg to a 32-bit float WAV (own rate and channels), then read it."""
    import soundfile

    with tempfile.TemporaryDirectory(prefix="crowdnb-ffmpeg-") as tmp:
        wav = Path(tmp) / "decoded.wav"
        decoded = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", os.fspath(path),
             "-vn", "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", os.fspath(wav)],
            capture_output=True, check=False,
        )
        if decoded.returncode != 0 or not wav.is_file():
            lines = decoded.stderr.decode("utf-8", "replace").strip().splitlines()
            raise AudioError(f"{path}: ffmpeg cannot decode it ({lines[-1] if lines else '?'})")
        try:
            data, file_sr = soundfile.read(wav, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{path}: ffmpeg output not readable ({exc})") from None
    return data, int(file_sr)


def load_clip(path: str | os.PathLike, *, sr: int = _AUDIO.sr) -> tuple[np.ndarray, int]:
    """Read an audio clip as mono float32 samples at ``sr``.

    wav, flac, ogg and mp3 are read by libsndfile (``soundfile``); other
    containers (m4a, aac, mp4, webm, ...) are decoded by the ffmpeg binary of
    ``imageio_ffmpeg`` when that package is installed. Channels are averaged,
    and the clip is resampled with the soxr "HQ" resampler when its rate
    differs from ``sr``.

    Parameters
    ----------
    path : path-like
        The audio file.
    sr : int > 0 [scalar]
        Target sample rate in Hz.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        Mono samples, full scale = 1.0.
    sr : int
        The sample rate of ``y`` in Hz (equal to the ``sr`` argument).

    Raises
    ------
    AudioError
        When the file is missing, empty, not audio, unreadable, holds no
        samples, or holds NaN or infinite samples; the message starts with the
        path and gives the reason.
    ParameterError
        When ``sr`` is not a positive integer.
    """
    sr = _check_sr(sr)
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"{path}: cannot read the file ({exc.strerror})") from None
    if size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: cannot read the file (permission denied)")

    exe = _ffmpeg_exe()
    if path.suffix.lower() in _SOUNDFILE_EXTENSIONS or exe is None:
        try:
            data, file_sr = _read_soundfile(path)
        except AudioError as sf_error:
            if exe is None:
                hint = ("" if path.suffix.lower() in _SOUNDFILE_EXTENSIONS else
                        f"; decoding {path.suffix or 'this file'} needs ffmpeg "
                        "(pip install imageio-ffmpeg)")
                raise AudioError(f"{sf_error}{hint}") from None
            # libsndfile rejects some valid mp3/ogg variants that ffmpeg decodes.
            try:
                data, file_sr = _read_ffmpeg(path, exe)
            except AudioError:
                raise sf_error from None
    else:
        data, file_sr = _read_ffmpeg(path, exe)

    if data.size == 0 or data.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples (0 frames)")
    if not np.isfinite(data).all():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioError(f"{path}: contains {bad} NaN or infinite sample value(s)")

    y = data.mean(axis=1, dtype=np.float64) if data.shape[1] > 1 else data[:, 0]
    if file_sr != sr:
        import soxr

        # soxr "HQ": linear-phase, 20-bit quality, the call librosa.resample makes
        # for res_type="soxr_hq", without importing librosa (its import pulls in
        # tqdm.auto, which warns inside notebooks). The output has ceil(n sr /
        # file_sr) samples, computed in integers (librosa's float ratio can add one).
        n_out = -(-y.shape[0] * sr // file_sr)
        y = soxr.resample(np.asarray(y, dtype=np.float64), file_sr, sr, quality="soxr_hq")
        y = y[:n_out] if y.shape[0] >= n_out else np.pad(y, (0, n_out - y.shape[0]))
    return np.ascontiguousarray(y, dtype=np.float32), sr


def truncation(path: str | os.PathLike, decoded_s: float) -> str:
    """Why a file holds less audio than its header promises ("" when it holds it all).

    A copy or a download that stopped early leaves a valid header in front of
    part of the audio; decoders read what is there without a word. The
    promised length is the WAV header's data size, or the frame count other
    libsndfile formats (FLAC, AIFF, OGG) store; mp3 and the ffmpeg formats
    carry no exact length and are not checked.

    Parameters
    ----------
    path : path-like
        The audio file.
    decoded_s : float >= 0
        What decoding it gave, s.

    Returns
    -------
    str
        ``"truncated: the header promises 5.00 s, the file holds 3.00 s"``, or "".
    """
    promised = _promised_duration(Path(path))
    if promised is None or promised - decoded_s <= max(0.01, 1e-3 * promised):
        return ""
    return f"truncated: the header promises {promised:.2f} s, the file holds {decoded_s:.2f} s"


def _promised_duration(path: Path) -> float | None:
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return _wav_data_duration(path)
    if suffix in {".flac", ".aif", ".aiff", ".ogg"}:
        import soundfile

        try:
            info = soundfile.info(path)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
            return None
        return info.frames / info.samplerate if info.frames > 0 else None
    return None


def _wav_data_duration(path: Path) -> float | None:
    """The duration a RIFF/WAVE header's ``data`` chunk declares (libsndfile trims it)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            fmt = None
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                name, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
                if name == b"fmt ":
                    fmt = fh.read(size)
                    fh.seek(size % 2, os.SEEK_CUR)
                elif name == b"data":
                    if fmt is None or len(fmt) < 14 or size in (0, 0xFFFFFFFF):
                        return None  # no format, or a streaming placeholder size
                    rate = int.from_bytes(fmt[4:8], "little")
                    block_align = int.from_bytes(fmt[12:14], "little")
                    return size / block_align / rate if rate and block_align else None
                else:
                    fh.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        return None


def full_scale_fraction(y: np.ndarray, *, threshold: float = 0.999) -> float:
    """Share of samples at full scale (``|y| >= threshold``): a recording that clipped.

    A few isolated samples at full scale happen in loud, clean recordings; a
    share above about 0.1 % means the recorder or a later gain cut the peaks,
    which adds broadband distortion to every spectrogram it touches.
    """
    y = np.asarray(y)
    return float(np.count_nonzero(np.abs(y) >= threshold)) / y.size if y.size else 0.0


#: Share of full-scale samples above which a recording is reported as clipped.
CLIPPING_FRACTION = 1e-3


# ---------------------------------------------------------------------------
# Band limiting


@functools.lru_cache(maxsize=32)
def _butter_sos(order: int, low_hz: float, high_hz: float | None, sr: int) -> np.ndarray:
    if high_hz is None:
        return scipy.signal.butter(order, low_hz, btype="highpass", fs=sr, output="sos")
    return scipy.signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")


def band_limit(
    y: np.ndarray,
    sr: int,
    *,
    low_hz: float = _AUDIO.low_hz,
    high_hz: float = _AUDIO.high_hz,
    order: int = _AUDIO.order,
) -> tuple[np.ndarray, dict]:
    """Cut a signal to the band ``[low_hz, high_hz]`` with a zero-phase filter.

    A Butterworth band-pass of the given order is run forwards and backwards
    (``scipy.signal.sosfiltfilt``), so the result has no phase shift and its
    magnitude response is the square of the filter's: ``low_hz`` and
    ``high_hz`` are the -6 dB points. When ``high_hz`` is not below 0.95 x the
    Nyquist frequency (e.g. 20 kHz at 22.05 or 32 kHz) there is no room for a
    low-pass edge: the filter becomes a high-pass at ``low_hz``, and ``info``
    says so.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal.
    sr : int > 0
        Sample rate in Hz.
    low_hz : float > 0
        Lower band edge in Hz.
    high_hz : float > low_hz
        Upper band edge in Hz.
    order : int > 0
        Butterworth order of each edge.

    Returns
    -------
    y_filtered : np.ndarray [shape=(n,), dtype=float32]
    info : dict
        ``filter`` ("bandpass" or "highpass"), ``low_hz``, ``high_hz`` (None for
        a high-pass), ``order``, ``note`` (why it became a high-pass, else "").
    """
    y = _check_signal(y)
    sr = _check_sr(sr)
    low_hz = _check_positive(low_hz, "low_hz")
    high_hz = _check_positive(high_hz, "high_hz")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order <= 0:
        raise ParameterError(f"order must be a positive integer, got {order!r}")
    if high_hz <= low_hz:
        raise ParameterError(f"high_hz ({high_hz} Hz) must be above low_hz ({low_hz} Hz)")
    nyquist = sr / 2.0
    limit = _NYQUIST_FRACTION * nyquist
    if low_hz >= limit:
        raise ParameterError(
            f"low_hz ({low_hz} Hz) must be below 0.95 x Nyquist ({limit:g} Hz at {sr} Hz)"
        )
    note = ""
    effective_high: float | None = high_hz
    if high_hz >= limit:
        effective_high = None
        note = (
            f"high_hz={high_hz:g} Hz is not below 0.95 x Nyquist ({limit:g} Hz at {sr} Hz): "
            f"the band-pass became a high-pass at {low_hz:g} Hz"
        )
    info = {
        "filter": "bandpass" if effective_high is not None else "highpass",
        "low_hz": low_hz,
        "high_hz": effective_high,
        "order": int(order),
        "note": note,
    }
    if y.size == 0:
        return y.astype(np.float32), info
    sos = _butter_sos(int(order), low_hz, effective_high, sr)
    # sosfiltfilt's default edge padding; shorter signals get what they have.
    padlen = min(3 * (2 * len(sos) + 1), y.size - 1)
    out = scipy.signal.sosfiltfilt(sos, np.asarray(y, dtype=np.float64), padlen=padlen)
    return out.astype(np.float32), info


# ---------------------------------------------------------------------------
# Blocks


class BlockSplit(NamedTuple):
    """The blocks of a clip.

    blocks : np.ndarray [shape=(n_blocks, block_len), dtype=float32]
        A read-only view into the clip (copy it before writing to it).
    starts_s : np.ndarray [shape=(n_blocks,)]
        Each block's start time in seconds.
    reason : str or None
        Why there are no blocks (the clip is shorter than one block), else None.
    """

    blocks: np.ndarray
    starts_s: np.ndarray
    reason: str | None


def split_blocks(y: np.ndarray, sr: int, *, block_s: float = _AUDIO.block_s,
                 hop_s: float = _AUDIO.hop_s) -> BlockSplit:
    """Slice a clip into overlapping blocks of ``block_s`` every ``hop_s`` seconds.

    The paper's sliding window: ``tb = 2 s`` blocks with a ``ts = 1 s`` slide.
    Block and hop lengths are rounded to whole samples; a trailing part shorter
    than a block is not used. A clip shorter than one block gives zero blocks
    and a ``reason``, not an exception.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal.
    sr : int > 0
        Sample rate in Hz.
    block_s : float > 0
        Block duration in seconds.
    hop_s : float > 0
        Time between the starts of consecutive blocks, in seconds.

    Returns
    -------
    BlockSplit
        ``(blocks [n_blocks, block_len] float32, starts_s [n_blocks], reason)``.
    """
    y = _check_signal(y)
    sr = _check_sr(sr)
    block_s = _check_positive(block_s, "block_s")
    hop_s = _check_positive(hop_s, "hop_s")
    block_len = int(round(block_s * sr))
    hop_len = int(round(hop_s * sr))
    if block_len < 1 or hop_len < 1:
        raise ParameterError(
            f"block_s={block_s} s and hop_s={hop_s} s must each last at least one sample at {sr} Hz"
        )
    y = np.asarray(y, dtype=np.float32)
    if y.size < block_len:
        reason = (f"too short: the clip lasts {y.size / sr:.3f} s, "
                  f"less than one {block_len / sr:.3f} s block")
        return BlockSplit(np.zeros((0, block_len), dtype=np.float32), np.zeros(0), reason)
    blocks = np.lib.stride_tricks.sliding_window_view(y, block_len)[::hop_len]
    starts_s = np.arange(blocks.shape[0]) * hop_len / sr
    return BlockSplit(blocks, starts_s, None)


# ---------------------------------------------------------------------------
# Loudness


@functools.lru_cache(maxsize=8)
def _meter(sr: int):
    import pyloudnorm

    # "DeMan" is the K-weighting of BS.1770-4 itself: its biquads reproduce the
    # standard's 48 kHz coefficients exactly and are re-derived at other rates.
    # pyloudnorm's default "K-weighting" normalises the high-pass to unit gain and
    # reads white noise 0.04-0.05 LU below the standard.
    return pyloudnorm.Meter(sr, filter_class="DeMan")  # 400 ms gates, 75 % overlap


def _measure(block: np.ndarray, sr: int) -> tuple[float, np.ndarray]:
    meter = _meter(sr)
    lufs = float(meter.integrated_loudness(block))
    return lufs, np.asarray(meter.blockwise_loudness, dtype=np.float64)


def apply_gain(block: np.ndarray, gain_db: float) -> np.ndarray:
    """``block`` times ``10 ** (gain_db / 20)``, as float32: the loudness step's gain."""
    return (np.asarray(block, dtype=np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def normalize_loudness(
    block: np.ndarray, sr: int, *, target_lufs: float = _AUDIO.target_lufs
) -> tuple[np.ndarray | None, dict]:
    """Bring a block to an integrated loudness of ``target_lufs`` (EBU R128).

    The loudness is the gated integrated loudness of ITU-R BS.1770-4 (EBU
    R128), measured with ``pyloudnorm.Meter`` using the standard's K-weighting
    coefficients (``filter_class="DeMan"``). A block whose loudness cannot be
    measured (digital silence, or every 400 ms gating block below the -70 LUFS
    absolute gate: loudness -inf) is dropped with that reason. The gain is a
    plain multiplication: a block whose sample peak exceeds 0 dBFS after the
    gain keeps its float values above 1.0 and is flagged ``clipped=True``
    rather than limited.

    The gain is exact even where it moves gating blocks across the -70 LUFS
    absolute gate (which changes which blocks count): the block is then
    measured again and the gain corrected.

    Parameters
    ----------
    block : np.ndarray [shape=(n,)]
        Mono block, at least 0.4 s long (one gating block).
    sr : int > 0
        Sample rate in Hz.
    target_lufs : float
        Target integrated loudness in LUFS.

    Returns
    -------
    block_out : np.ndarray [shape=(n,), dtype=float32] or None
        The normalised block, or None when it was dropped.
    info : dict
        ``loudness_lufs`` (before, LUFS), ``gain_db`` (dB), ``peak_dbfs`` (sample
        peak after the gain, dBFS), ``clipped`` (peak > 0 dBFS), ``reason`` ("" if
        kept, else why it was dropped).
    """
    block = _check_signal(block, "block")
    sr = _check_sr(sr)
    if isinstance(target_lufs, bool) or not isinstance(target_lufs, (int, float, np.number)) \
            or not math.isfinite(target_lufs):
        raise ParameterError(f"target_lufs must be a finite number (LUFS), got {target_lufs!r}")
    if block.size < round(_GATE_S * sr):
        raise ParameterError(
            f"block lasts {block.size / sr:.3f} s; loudness needs at least one "
            f"{_GATE_S} s gating block"
        )
    x = np.asarray(block, dtype=np.float64)
    info = {"loudness_lufs": float("nan"), "gain_db": float("nan"), "peak_dbfs": float("nan"),
            "clipped": False, "reason": ""}
    if not np.isfinite(x).all():
        info["reason"] = "not finite: the block holds NaN or infinite samples"
        return None, info
    loudness, gates = _measure(x, sr)
    info["loudness_lufs"] = loudness
    if not math.isfinite(loudness):
        info["reason"] = ("silent: loudness is -inf (no 400 ms gating block above the "
                          f"{_ABSOLUTE_GATE_LUFS:g} LUFS absolute gate)")
        return None, info

    gain_db = float(target_lufs) - loudness
    # Relative gating is scale-invariant; only the absolute gate can change which
    # gating blocks count once the gain is applied. Re-measure in that case.
    for _ in range(4):
        low, high = sorted((_ABSOLUTE_GATE_LUFS - gain_db, _ABSOLUTE_GATE_LUFS))
        if not np.any((gates >= low) & (gates < high)):
            break
        measured, gates = _measure(x * 10.0 ** (gain_db / 20.0), sr)
        gates = gates - gain_db
        if not math.isfinite(measured) or abs(measured - target_lufs) < 1e-3:
            break
        gain_db += float(target_lufs) - measured

    out = apply_gain(x, gain_db)
    peak = float(np.max(np.abs(out)))
    info["gain_db"] = gain_db
    info["peak_dbfs"] = 20.0 * math.log10(peak) if peak > 0 else float("-inf")
    info["clipped"] = bool(peak > 1.0)
    return out, info


# ---------------------------------------------------------------------------
# Clip -> normalised blocks


@dataclass(frozen=True)
class Block:
    """One block of a clip after the loudness step.

    Attributes
    ----------
    index : int
        Its position in the clip (0, 1, ...).
    start_s, end_s : float
        Its time span in the clip, s.
    samples : np.ndarray [shape=(n,), dtype=float32] or None
        The normalised samples; None when the block was dropped.
    loudness_lufs, gain_db, peak_dbfs : float
        Loudness before the gain (LUFS), the gain (dB), the sample peak after
        it (dBFS); NaN where they could not be measured.
    clipped : bool
        The peak exceeds 0 dBFS after the gain (kept unclipped, as floats).
    reason : str
        Why the block was dropped ("" when kept).
    """

    index: int
    start_s: float
    end_s: float
    samples: np.ndarray | None
    loudness_lufs: float
    gain_db: float
    peak_dbfs: float
    clipped: bool
    reason: str

    @property
    def kept(self) -> bool:
        return self.samples is not None


def normalised_blocks(y: np.ndarray, sr: int, *, config: AudioConfig = _AUDIO) -> Iterator[Block]:
    """A loaded clip's blocks: band-limited, cut, each brought to the target loudness.

    :func:`band_limit` on the whole clip, :func:`split_blocks`, then
    :func:`normalize_loudness` block by block, with ``config``'s settings.
    A clip shorter than one block yields nothing.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        The clip, mono, at ``sr`` (as :func:`load_clip` returns it at ``config.sr``).
    sr : int > 0
        Its sample rate, Hz.
    config : AudioConfig
        Band limit, block length and hop, target loudness.

    Yields
    ------
    Block
        In time order, kept and dropped alike.
    """
    split = _filtered_split(y, sr, config)
    length = split.blocks.shape[1] / sr
    for index, (block, start) in enumerate(zip(split.blocks, split.starts_s)):
        samples, info = normalize_loudness(block, sr, target_lufs=config.target_lufs)
        yield Block(index=index, start_s=float(start), end_s=float(start) + length,
                    samples=samples, loudness_lufs=float(info["loudness_lufs"]),
                    gain_db=float(info["gain_db"]), peak_dbfs=float(info["peak_dbfs"]),
                    clipped=bool(info["clipped"]), reason=str(info["reason"]))


def _filtered_split(y: np.ndarray, sr: int, config: AudioConfig) -> BlockSplit:
    filtered, _ = band_limit(y, sr, low_hz=config.low_hz, high_hz=config.high_hz,
                             order=config.order)
    return split_blocks(filtered, sr, block_s=config.block_s, hop_s=config.hop_s)


def blocks_with_gains(y: np.ndarray, sr: int, gains: Mapping[int, float], *,
                      config: AudioConfig = _AUDIO) -> list[np.ndarray]:
    """The normalised blocks of a clip from gains measured before, without measuring again.

    The same samples as the kept blocks of :func:`normalised_blocks` (the same
    band limit and cut, the same :func:`apply_gain`), for a clip whose
    loudness record is known: each block ``index`` gets its ``gains[index]``.

    Raises
    ------
    DataError
        When an index is not a block of the clip (the record is not this clip's).
    """
    split = _filtered_split(y, sr, config)
    missing = sorted(i for i in gains if not 0 <= i < len(split.blocks))
    if missing:
        raise DataError(f"blocks {missing} of the loudness record are not in the clip "
                        f"({len(split.blocks)} blocks): the record belongs to other audio")
    return [apply_gain(split.blocks[i], gain_db) for i, gain_db in gains.items()]
