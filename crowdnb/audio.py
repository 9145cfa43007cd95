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
caller (preprocessing, the book's chapters) goes through it.

A recording of any length (hours) goes through the same steps in pieces, in
bounded memory, with the same samples: :class:`ClipStream` reads what
:func:`load_clip` reads, a block of frames at a time;
:func:`band_limited_chunks` runs :func:`band_limit`'s zero-phase filter over
the whole clip through a temporary file; :func:`cut_blocks` cuts the blocks
as they come; :func:`normalised_blocks_streamed` is normalised_blocks made of
these (what ``crowdnb predict`` and ``crowdnb listen`` use).

Every function reports what it did in a small ``info`` dict (or a ``reason``)
instead of silently changing the method: a band-pass that became a high-pass,
a block that was too quiet to measure, a block that clips after its gain.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, NamedTuple

import numpy as np
import scipy.signal

from .config import AudioConfig
from .errors import AudioError, DataError, ParameterError

__all__ = ["load_clip", "ClipStream", "band_limit", "band_limited_chunks", "split_blocks",
           "cut_blocks", "normalize_loudness", "BlockSplit", "Block", "normalised_blocks", "normalised_block",
           "normalised_blocks_streamed", "blocks_with_gains", "apply_gain", "truncation",
           "full_scale_fraction", "CLIPPING_FRACTION", "STREAM_FRAMES", "BAND_LIMIT_CHUNK"]

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


@contextlib.contextmanager
def _decoder_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null while a C decoder runs.

    libsndfile decodes mp3 with mpg123, which prints its own notes ("Note:
    Illegal Audio-MPEG-Header ...", "Warning: Xing stream size off ...") on
    the process's standard error, below Python; libsndfile offers no switch
    for them. The error crowdnb raises says what matters in one line.
    """
    try:
        sys.stderr.flush()  # what Python wrote before goes out, not to /dev/null
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no standard error at all: nothing to silence
        saved = None
    if saved is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


def _soundfile_error(path: Path, exc: Exception) -> AudioError:
    reason = str(exc)
    if "does not exist or is not a regular file" in reason:
        # libsndfile's words for a file its decoder gave up on (the file is there)
        reason = "corrupt, or not audio: the decoder found no valid frame"
    return AudioError(f"{path}: not readable as audio ({reason})")


_SOUNDFILE_ERRORS = (RuntimeError, TypeError, ValueError)  # LibsndfileError is a RuntimeError


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        with _decoder_stderr_silenced():
            data, file_sr = soundfile.read(path, dtype="float32", always_2d=True)
    except _SOUNDFILE_ERRORS as exc:
        raise _soundfile_error(path, exc) from None
    return data, int(file_sr)


def _ffmpeg_to_wav(path: Path, exe: str, wav: Path) -> None:
    """Decode with ffmpeg to a 32-bit float WAV file (the file's own rate and channels)."""
    decoded = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", os.fspath(path),
         "-vn", "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", os.fspath(wav)],
        capture_output=True, check=False,
    )
    if decoded.returncode != 0 or not wav.is_file():
        lines = decoded.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(f"{path}: ffmpeg cannot decode it ({lines[-1] if lines else '?'})")


def _read_ffmpeg(path: Path, exe: str) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg to a 32-bit float WAV (own rate and channels), then read it."""
    import soundfile

    with tempfile.TemporaryDirectory(prefix="crowdnb-ffmpeg-") as tmp:
        wav = Path(tmp) / "decoded.wav"
        _ffmpeg_to_wav(path, exe, wav)
        try:
            data, file_sr = soundfile.read(wav, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{path}: ffmpeg output not readable ({exc})") from None
    return data, int(file_sr)


def _check_file(path: Path) -> Path:
    """``path`` when it is a readable, non-empty regular file; else an AudioError saying why."""
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
    return path


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
    path = _check_file(Path(path))
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


# |y| at or above this is full scale (a clipped sample).
_FULL_SCALE = 0.999

_MP3_BLOCK_FRAMES = 1 << 22

#: Frames a :class:`ClipStream` reads from its file at a time: 2**16 (1.5 s at
#: 44.1 kHz; 0.5 MiB of float32 for a stereo file).
STREAM_FRAMES = 1 << 16


class ClipStream:
    """An audio file read chunk by chunk: the samples of :func:`load_clip` in bounded memory.

    Opening checks the file as :func:`load_clip` does and decodes nothing yet
    (a format only ffmpeg reads is decoded to a temporary 32-bit float WAV
    file, on disk, and read from there). Iterating reads ``block_frames``
    frames at a time, averages the channels and resamples to ``sr`` with the
    streaming form of load_clip's soxr "HQ" call: the chunks, joined, are
    ``load_clip(path, sr=sr)[0]``, sample for sample. A file can be iterated
    over once; :meth:`close` (or a ``with`` block) releases it.

    Parameters
    ----------
    path : path-like
        The audio file (any format :func:`load_clip` reads).
    sr : int > 0
        Sample rate of the chunks, Hz.
    block_frames : int > 0
        Frames of the file decoded at a time (an mp3: at least 2**22, see below).

    Attributes
    ----------
    path : Path
    sr : int
        The chunks' sample rate, Hz.
    rate : int
        The file's own sample rate, Hz.
    channels : int
        The file's channels.
    samples : int
        Samples (at ``sr``) handed out so far.
    full_scale : int
        How many of them are at full scale (``|y| >= 0.999``, as
        :func:`full_scale_fraction` counts).

    Raises
    ------
    AudioError
        On opening: the file is missing, empty, unreadable or not audio. While
        iterating: it holds no samples, or NaN or infinite ones (load_clip's
        messages), or its decoder gives up part way with no ffmpeg to go on.
    """

    def __init__(self, path: str | os.PathLike, *, sr: int = _AUDIO.sr,
                 block_frames: int = STREAM_FRAMES) -> None:
        self.sr = _check_sr(sr)
        if isinstance(block_frames, bool) or not isinstance(block_frames, (int, np.integer)) \
                or block_frames < 1:
            raise ParameterError(f"block_frames must be a positive integer, got {block_frames!r}")
        self.path = _check_file(Path(path))
        # libsndfile's mp3 decoder rounds the samples of its second and later
        # reads one float32 step away from those of its first: an mp3 is read in
        # large blocks, so that one up to 1.5 min long reads in one call, as
        # load_clip reads it, and a longer one differs by at most that step.
        self.block_frames = max(int(block_frames), _MP3_BLOCK_FRAMES) \
            if self.path.suffix.lower() == ".mp3" else int(block_frames)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._file = self._open()
        self.rate, self.channels = int(self._file.samplerate), int(self._file.channels)
        self.samples, self.full_scale = 0, 0

    def __enter__(self) -> "ClipStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and remove what ffmpeg decoded."""
        self._file.close()
        self._remove_decoded()

    def _remove_decoded(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _open(self):
        """A soundfile.SoundFile on the file, or on ffmpeg's decoding of it (load_clip's choice)."""
        exe = _ffmpeg_exe()
        if self.path.suffix.lower() not in _SOUNDFILE_EXTENSIONS and exe is not None:
            return self._open_ffmpeg(exe)
        try:
            return self._open_soundfile()
        except AudioError as sf_error:
            if exe is None:
                hint = ("" if self.path.suffix.lower() in _SOUNDFILE_EXTENSIONS else
                        f"; decoding {self.path.suffix or 'this file'} needs ffmpeg "
                        "(pip install imageio-ffmpeg)")
                raise AudioError(f"{sf_error}{hint}") from None
            try:  # libsndfile rejects some valid mp3/ogg variants that ffmpeg decodes
                return self._open_ffmpeg(exe)
            except AudioError:
                raise sf_error from None

    def _open_soundfile(self):
        import soundfile

        try:
            with _decoder_stderr_silenced():
                return soundfile.SoundFile(self.path)
        except _SOUNDFILE_ERRORS as exc:
            raise _soundfile_error(self.path, exc) from None

    def _open_ffmpeg(self, exe: str):
        import soundfile

        self._tmp = tempfile.TemporaryDirectory(prefix="crowdnb-ffmpeg-")
        wav = Path(self._tmp.name) / "decoded.wav"
        try:
            _ffmpeg_to_wav(self.path, exe, wav)
            return soundfile.SoundFile(wav)
        except _SOUNDFILE_ERRORS as exc:
            self._remove_decoded()
            raise AudioError(f"{self.path}: ffmpeg output not readable ({exc})") from None
        except AudioError:
            self._remove_decoded()
            raise

    def _frames(self) -> Iterator[np.ndarray]:
        """The file's frames [n, channels] float32, ``block_frames`` at a time."""
        done = 0
        while True:
            try:
                with _decoder_stderr_silenced():
                    data = self._file.read(self.block_frames, dtype="float32", always_2d=True)
            except _SOUNDFILE_ERRORS as exc:
                self._go_on_with_ffmpeg(done, exc)
                continue
            if data.shape[0] == 0:
                return
            done += data.shape[0]
            yield data

    def _go_on_with_ffmpeg(self, done: int, exc: Exception) -> None:
        """libsndfile gave up after ``done`` frames (a cut FLAC): go on from there with ffmpeg.

        load_clip reads such a file with ffmpeg whole; a lossless format
        decodes to the same samples either way.
        """
        sf_error = _soundfile_error(self.path, exc)
        exe = _ffmpeg_exe()
        if self._tmp is not None or exe is None:
            raise sf_error
        old = self._file
        try:
            new = self._open_ffmpeg(exe)
        except AudioError:
            raise sf_error from None
        if (new.samplerate, new.channels) != (old.samplerate, old.channels) or new.frames < done:
            new.close()
            raise sf_error
        old.close()
        new.seek(done)
        self._file = new

    def _bad_values(self, data: np.ndarray) -> AudioError:
        """load_clip's error for NaN or infinite samples, counted over the rest of the file too."""
        bad = int(np.count_nonzero(~np.isfinite(data)))
        for more in self._frames():
            bad += int(np.count_nonzero(~np.isfinite(more)))
        return AudioError(f"{self.path}: contains {bad} NaN or infinite sample value(s)")

    def _out(self, y: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(y, dtype=np.float32)
        self.samples += y.size
        self.full_scale += int(np.count_nonzero(np.abs(y) >= _FULL_SCALE))
        return y

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = None
        if self.rate != self.sr:
            import soxr

            resampler = soxr.ResampleStream(self.rate, self.sr, 1, dtype="float64",
                                            quality="soxr_hq")
        frames_in, pending = 0, np.zeros(0)
        for data in self._frames():
            if not np.isfinite(data).all():
                raise self._bad_values(data)
            frames_in += data.shape[0]
            y = data.mean(axis=1, dtype=np.float64) if data.shape[1] > 1 else data[:, 0]
            if resampler is not None:
                y = resampler.resample_chunk(np.asarray(y, dtype=np.float64))
            if pending.size:  # held back one chunk: the last is cut to load_clip's length
                yield self._out(pending)
            pending = y
        if frames_in == 0:
            raise AudioError(f"{self.path}: no audio samples (0 frames)")
        if resampler is not None:
            pending = np.concatenate([pending, resampler.resample_chunk(np.zeros(0), last=True)])
            need = -(-frames_in * self.sr // self.rate) - self.samples
            pending = (pending[:need] if pending.size >= need
                       else np.pad(pending, (0, need - pending.size)))
        if pending.size:
            yield self._out(pending)

    @property
    def full_scale_share(self) -> float:
        """Share of the samples handed out so far at full scale (:func:`full_scale_fraction`)."""
        return self.full_scale / self.samples if self.samples else 0.0


def truncation(path: str | os.PathLike, decoded_s: float) -> str:
    """Why a file holds less audio than its header promises ("" when it holds it all).

    A copy or a download that stopped early leaves a valid header in front of
    part of the audio; decoders read what is there without a word. The
    promised length is the WAV header's data size, the frame count FLAC and
    AIFF store, or the frame count of an mp3's Xing/Info header (LAME, ffmpeg
    and libsndfile write one). An Ogg file (Vorbis, Opus, FLAC) stores no
    total length: a cut one is told by its last page, which does not end the
    stream. An mp3 without a Xing/Info header has no exact length (libsndfile
    estimates one from the file size, tens of ms off either way), and the
    formats only ffmpeg reads are not checked: neither can be judged.

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
    path = Path(path)
    if path.suffix.lower() in _OGG_EXTENSIONS:
        if _ogg_stream_ends(path) is False:
            return ("truncated: the file stops before the last page of its Ogg stream (Ogg "
                    f"stores no total length), the file holds {decoded_s:.2f} s")
        return ""
    promised = _promised_duration(path)
    if promised is None or promised - decoded_s <= max(0.01, 1e-3 * promised):
        return ""
    return f"truncated: the header promises {promised:.2f} s, the file holds {decoded_s:.2f} s"


_OGG_EXTENSIONS = {".ogg", ".oga", ".opus"}


def _promised_duration(path: Path) -> float | None:
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return _wav_data_duration(path)
    if suffix in {".flac", ".aif", ".aiff"} or (suffix == ".mp3" and _mp3_counts_its_frames(path)):
        import soundfile

        try:
            with _decoder_stderr_silenced():
                info = soundfile.info(path)
        except _SOUNDFILE_ERRORS:
            return None
        return info.frames / info.samplerate if info.frames > 0 else None
    return None


def _mp3_counts_its_frames(path: Path) -> bool:
    """Whether an mp3's first frame is a Xing/Info header holding the frame count.

    libsndfile (mpg123) then reports the exact length the encoder wrote;
    without one, its length is a guess from the file size.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(10)
            start = 0
            if len(head) == 10 and head[:3] == b"ID3":  # skip an ID3v2 tag: 4 size bytes of 7 bits
                start = 10 + sum((b & 0x7F) << (7 * (3 - k)) for k, b in enumerate(head[6:10]))
                start += 10 if head[5] & 0x10 else 0  # and its footer
            fh.seek(start)
            data = fh.read(8192)
    except OSError:
        return False
    for i in range(len(data) - 4):
        b1, b2 = data[i + 1], data[i + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        if data[i] != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1 \
                or b2 >> 4 in (0, 15) or (b2 >> 2) & 3 == 3:
            continue  # not the header of a layer III frame
        mono = data[i + 3] >> 6 == 3
        side = (17 if mono else 32) if version == 3 else (9 if mono else 17)  # side info bytes
        at = i + 4 + side
        if data[at:at + 4] not in (b"Xing", b"Info"):
            return False
        return bool(int.from_bytes(data[at + 4:at + 8], "big") & 1)  # flag 1: frame count
    return False


def _ogg_stream_ends(path: Path) -> bool | None:
    """Whether the last whole Ogg page of a file carries the end-of-stream flag (None: no page)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            # A page is at most 65307 bytes: room for the last whole one and a cut one.
            fh.seek(max(0, size - 2 * 65536))
            tail = fh.read()
    except OSError:
        return None
    at = tail.rfind(b"OggS")
    while at >= 0:
        header = tail[at:at + 27]
        if len(header) == 27 and header[4] == 0:  # stream structure version 0
            lacing = tail[at + 27:at + 27 + header[26]]
            if len(lacing) == header[26] and at + 27 + len(lacing) + sum(lacing) <= len(tail):
                return bool(header[5] & 0x04)
        at = tail.rfind(b"OggS", 0, at)
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


def full_scale_fraction(y: np.ndarray, *, threshold: float = _FULL_SCALE) -> float:
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
    sos, info = _band_filter(sr, low_hz=low_hz, high_hz=high_hz, order=order)
    if y.size == 0:
        return y.astype(np.float32), info
    # sosfiltfilt's default edge padding; shorter signals get what they have.
    padlen = min(_edge(sos), y.size - 1)
    out = scipy.signal.sosfiltfilt(sos, np.asarray(y, dtype=np.float64), padlen=padlen)
    return out.astype(np.float32), info


def _edge(sos: np.ndarray) -> int:
    """sosfiltfilt's default padding, samples: 3 x the taps of the cascade."""
    return 3 * (2 * len(sos) + 1)


def _band_filter(sr: int, *, low_hz: float, high_hz: float, order: int) -> tuple[np.ndarray, dict]:
    """The second-order sections of :func:`band_limit`'s filter, and its ``info``."""
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
    return _butter_sos(int(order), low_hz, effective_high, sr), info


#: Samples :func:`band_limited_chunks` filters at a time: 2**18 (6 s at
#: 44.1 kHz, 2 MiB as float64). A clip no longer is filtered whole, in memory.
BAND_LIMIT_CHUNK = 1 << 18


def band_limited_chunks(chunks: Iterable[np.ndarray], sr: int, *, low_hz: float = _AUDIO.low_hz,
                        high_hz: float = _AUDIO.high_hz, order: int = _AUDIO.order,
                        chunk_len: int = BAND_LIMIT_CHUNK,
                        where: str = "clip") -> Iterator[np.ndarray]:
    """:func:`band_limit` of a clip that arrives in pieces: the same samples, in bounded memory.

    The zero-phase filter runs backwards from the clip's end, so no sample is
    final before the last piece is in. A clip of at most ``chunk_len``
    samples goes through :func:`band_limit` itself. A longer one is filtered
    as ``scipy.signal.sosfiltfilt`` filters it, step for step in the same
    order, so that the samples are band_limit's to the last bit: the forward
    pass runs as the pieces arrive, keeping the clip in a temporary file and
    the filter's state at the start of every chunk; the backward pass walks
    the file from its end, recomputes each chunk's forward output from its
    stored state, and writes the filtered chunk over it; then the file is
    read front to back. Memory: a few chunks. Disk: the clip's size (4 bytes
    a float32 sample: 1.9 GB for 3 h at 44.1 kHz), in the temporary
    directory, removed afterwards.

    Parameters
    ----------
    chunks : iterable of np.ndarray [shape=(n_i,)]
        The clip, mono, in pieces of any length.
    sr : int > 0
        Sample rate, Hz.
    low_hz, high_hz : float > 0
        Band edges, Hz (see :func:`band_limit`).
    order : int > 0
        Butterworth order of each edge.
    chunk_len : int >= 1024
        Samples filtered at a time.
    where : str
        The clip's name in an error about the temporary file.

    Yields
    ------
    np.ndarray [shape=(m,), dtype=float32]
        The band-limited clip in order, ``chunk_len`` samples at a time (the last shorter).

    Raises
    ------
    AudioError
        When the temporary file cannot be written (the disk is full).
    """
    sos, _ = _band_filter(sr, low_hz=low_hz, high_hz=high_hz, order=order)
    if isinstance(chunk_len, bool) or not isinstance(chunk_len, (int, np.integer)) \
            or chunk_len < 1024:
        raise ParameterError(f"chunk_len must be an integer >= 1024 (samples), got {chunk_len!r}")
    pieces = _rechunked(chunks, int(chunk_len))
    first = next(pieces, None)
    second = None if first is None else next(pieces, None)
    if second is None:
        if first is not None:
            yield band_limit(first, sr, low_hz=low_hz, high_hz=high_hz, order=order)[0]
        return
    dtype = np.float32 if first.dtype == np.float32 else np.float64  # what the clip holds, exactly
    try:
        with tempfile.TemporaryFile(prefix="crowdnb-band-limit-") as spill:
            states, end_out, n = _forward_pass(itertools.chain([first, second], pieces), sos,
                                               spill, dtype)
            _backward_pass(spill, sos, states, end_out, n=n, chunk_len=int(chunk_len), dtype=dtype)
            for offset in range(0, n, int(chunk_len)):
                yield _spill_read(spill, offset, min(int(chunk_len), n - offset), dtype
                                  ).astype(np.float32)
    except OSError as exc:
        raise AudioError(f"{where}: cannot keep it in a temporary file in {tempfile.gettempdir()} "
                         f"while its band limit runs ({exc.strerror or exc}); free space there "
                         "or set TMPDIR to a larger disk") from None


def _rechunked(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The same samples in pieces of exactly ``size`` (the last shorter)."""
    held, count = [], 0
    for chunk in chunks:
        chunk = np.asarray(chunk)
        held.append(chunk)
        count += chunk.size
        while count >= size:
            joined = np.concatenate(held) if len(held) > 1 else held[0]
            yield joined[:size]
            held, count = [joined[size:]], count - size
    if count:
        yield np.concatenate(held)


def _spill_write(spill, offset: int, values: np.ndarray) -> None:
    spill.seek(offset * values.itemsize)
    spill.write(values.tobytes())


def _spill_read(spill, offset: int, count: int, dtype) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    spill.seek(offset * itemsize)
    data = spill.read(count * itemsize)
    if len(data) != count * itemsize:
        raise OSError(f"the temporary file ends at sample {offset + len(data) // itemsize}")
    return np.frombuffer(data, dtype=dtype)


def _forward_pass(pieces: Iterable[np.ndarray], sos: np.ndarray, spill,
                  dtype) -> tuple[list[np.ndarray], np.ndarray, int]:
    """sosfiltfilt's forward pass over (odd extension, clip, odd extension), the clip to ``spill``.

    Returns the filter's state before each piece, the forward output of the
    extension after the clip, and the clip's length in samples.
    """
    edge, zi = _edge(sos), scipy.signal.sosfilt_zi(sos)
    states, state, tail, n = [], None, np.zeros(0), 0
    for piece in pieces:
        x = np.asarray(piece, dtype=np.float64)
        if state is None:  # scipy's odd_ext before the first sample; sosfiltfilt's initial state
            ext = 2 * x[:1] - x[edge:0:-1]
            _, state = scipy.signal.sosfilt(sos, ext, zi=zi * ext[:1])
        states.append(state)
        _, state = scipy.signal.sosfilt(sos, x, zi=state)
        _spill_write(spill, n, np.asarray(piece, dtype=dtype))
        tail = np.concatenate([tail, x])[-(edge + 1):]
        n += x.size
    ext = 2 * tail[-1:] - tail[-2:-(edge + 2):-1]
    end_out, _ = scipy.signal.sosfilt(sos, ext, zi=state)
    return states, end_out, n


def _backward_pass(spill, sos: np.ndarray, states: list[np.ndarray], end_out: np.ndarray, *,
                   n: int, chunk_len: int, dtype) -> None:
    """sosfiltfilt's backward pass, chunk by chunk from the end; each result over its chunk."""
    state = scipy.signal.sosfilt_zi(sos) * end_out[-1:]
    _, state = scipy.signal.sosfilt(sos, end_out[::-1], zi=state)
    for j in reversed(range(len(states))):
        offset = j * chunk_len
        x = _spill_read(spill, offset, min(chunk_len, n - offset), dtype).astype(np.float64)
        forward, _ = scipy.signal.sosfilt(sos, x, zi=states[j])
        backward, state = scipy.signal.sosfilt(sos, forward[::-1], zi=state)
        _spill_write(spill, offset, backward[::-1].astype(np.float32).astype(dtype))


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
    block_len, hop_len = _block_lengths(sr, block_s, hop_s)
    y = np.asarray(y, dtype=np.float32)
    if y.size < block_len:
        reason = (f"too short: the clip lasts {y.size / sr:.3f} s, "
                  f"less than one {block_len / sr:.3f} s block")
        return BlockSplit(np.zeros((0, block_len), dtype=np.float32), np.zeros(0), reason)
    blocks = np.lib.stride_tricks.sliding_window_view(y, block_len)[::hop_len]
    starts_s = np.arange(blocks.shape[0]) * hop_len / sr
    return BlockSplit(blocks, starts_s, None)


def _block_lengths(sr: int, block_s: float, hop_s: float) -> tuple[int, int]:
    """(block, hop) in whole samples at ``sr``, as split_blocks rounds them."""
    block_s = _check_positive(block_s, "block_s")
    hop_s = _check_positive(hop_s, "hop_s")
    block_len = int(round(block_s * sr))
    hop_len = int(round(hop_s * sr))
    if block_len < 1 or hop_len < 1:
        raise ParameterError(
            f"block_s={block_s} s and hop_s={hop_s} s must each last at least one sample at {sr} Hz"
        )
    return block_len, hop_len


def cut_blocks(chunks: Iterable[np.ndarray], sr: int, *, block_s: float = _AUDIO.block_s,
               hop_s: float = _AUDIO.hop_s) -> Iterator[tuple[int, float, np.ndarray]]:
    """:func:`split_blocks` of a clip that arrives in pieces: each block once its last sample is in.

    The same blocks, with the same start times, as ``split_blocks`` of the
    joined pieces; only the samples later blocks need are kept.

    Parameters
    ----------
    chunks : iterable of np.ndarray [shape=(n_i,)]
        The clip, mono, in pieces of any length.
    sr : int > 0
        Sample rate, Hz.
    block_s, hop_s : float > 0
        Block length and time between block starts, s.

    Yields
    ------
    index : int
        The block's position in the clip (0, 1, ...).
    start_s : float
        Its start, s.
    block : np.ndarray [shape=(block_len,), dtype=float32]
        Its samples (a read-only view: copy before writing to it).
    """
    sr = _check_sr(sr)
    block_len, hop_len = _block_lengths(sr, block_s, hop_s)
    buffer, buffer_start, index = np.zeros(0, dtype=np.float32), 0, 0
    for chunk in chunks:
        buffer = np.concatenate([buffer, np.asarray(chunk, dtype=np.float32)])
        while index * hop_len + block_len <= buffer_start + buffer.size:
            offset = index * hop_len - buffer_start
            block = buffer[offset:offset + block_len]
            block.flags.writeable = False
            yield index, index * hop_len / sr, block
            index += 1
        cut = min(index * hop_len - buffer_start, buffer.size)  # what no later block needs
        buffer, buffer_start = buffer[cut:], buffer_start + cut


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
    for index, (block, start) in enumerate(zip(split.blocks, split.starts_s)):
        yield _loudness_normalised(index, float(start), block, sr, config.target_lufs)


def normalised_block(samples: np.ndarray, sr: int, *, index: int = 0, start_s: float = 0.0,
                     config: AudioConfig = _AUDIO) -> Block:
    """One block prepared on its own: band-limited over itself, then to the target loudness.

    The step a stream can take for each window as it arrives: the zero-phase
    band limit of :func:`band_limit` run over the block alone
    (nothing before or after it), then :func:`normalize_loudness`
    on it (a silent block is dropped, a block that clips after its gain is
    flagged), as :func:`normalised_blocks` does for the blocks of
    a clip band-limited as a whole.

    Parameters
    ----------
    samples : np.ndarray [shape=(block_len,)]
        The block, mono, at ``sr``, not yet band-limited.
    sr : int > 0
        Sample rate, Hz.
    index : int >= 0
        The block's position in its stream.
    start_s : float
        Its start in the stream, s.
    config : AudioConfig
        Band limit and target loudness.

    Returns
    -------
    Block
        Kept or dropped (``samples`` None, and a ``reason``).
    """
    filtered, _ = band_limit(samples, sr, low_hz=config.low_hz, high_hz=config.high_hz,
                             order=config.order)
    return _loudness_normalised(int(index), float(start_s), filtered, sr, config.target_lufs)


def normalised_blocks_streamed(chunks: Iterable[np.ndarray], sr: int, *, config: AudioConfig = _AUDIO,
                               chunk_len: int = BAND_LIMIT_CHUNK, where: str = "clip") -> Iterator[Block]:
    """:func:`normalised_blocks` of a clip that arrives in pieces, in bounded memory.

    :func:`band_limited_chunks` (the band limit over the whole clip, exactly
    :func:`band_limit`'s samples), :func:`cut_blocks`, then
    :func:`normalize_loudness` block by block: the same blocks as
    ``normalised_blocks`` of the joined pieces, value for value, whatever the
    clip's length. The first block comes once the whole clip is in.

    Parameters
    ----------
    chunks : iterable of np.ndarray [shape=(n_i,)]
        The clip, mono, at ``sr``, in pieces of any length (a :class:`ClipStream`).
    sr : int > 0
        Its sample rate, Hz.
    config : AudioConfig
        Band limit, block length and hop, target loudness.
    chunk_len : int >= 1024
        Samples band-limited at a time (see :func:`band_limited_chunks`).
    where : str
        The clip's name in an error about the temporary file.

    Yields
    ------
    Block
        In time order, kept and dropped alike.
    """
    filtered = band_limited_chunks(chunks, sr, low_hz=config.low_hz, high_hz=config.high_hz,
                                   order=config.order, chunk_len=chunk_len, where=where)
    for index, start_s, block in cut_blocks(filtered, sr, block_s=config.block_s, hop_s=config.hop_s):
        yield _loudness_normalised(index, start_s, block, sr, config.target_lufs)


def _loudness_normalised(index: int, start_s: float, block: np.ndarray, sr: int,
                         target_lufs: float) -> Block:
    samples, info = normalize_loudness(block, sr, target_lufs=target_lufs)
    return Block(index=index, start_s=start_s, end_s=start_s + block.size / sr,
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
