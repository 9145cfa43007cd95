"""Label a stream of crowd sound as it arrives: one 2 s window every hop.

The real-time side of the study ("with the aim of developing a real-time
emotional crowd sound recognizer"). A :class:`Listener` is fed chunks of
samples as they arrive; each time the stream holds a whole new window (the
checkpoint's block, ``block_s`` long, starting every ``hop_s``) it runs the
window through the checkpoint's preprocessing and network and returns a
:class:`WindowResult`: the window's time span, label and class
probabilities, a label smoothed over the last windows (:class:`MovingAverage`)
and the alerts it raised (:class:`AlertTracker`), with the latency from the
arrival of the window's last sample to its label.

Each window is prepared **on its own** (:func:`crowdnb.audio.normalised_block`): band-limited
with the zero-phase filter of :func:`crowdnb.audio.band_limit` run over the
window alone, then brought to the target loudness with
:func:`crowdnb.audio.normalize_loudness` measured on the window alone. Nothing
after the window's last sample is used, so a window is labelled as soon as it
has arrived. Training band-limits a whole clip before cutting it into blocks,
which a stream cannot do (the backward pass of a zero-phase filter runs from
the end of the clip); the two differ only near the window's edges, most in
the lowest bands (the 20 Hz high-pass's start-up). ``crowdnb predict
--band-limit-per block`` (:func:`independent_blocks`) prepares a file's blocks
the listener's way, so that the two agree window for window.

Sources, each a :class:`Source` of ``(frames, arrival time)`` chunks:
:func:`file_source` (any file :func:`crowdnb.audio.load_clip` reads),
:func:`wav_stream_source` (a WAV stream, e.g. ffmpeg's on a pipe),
:func:`raw_pcm_source` (headerless PCM) and :func:`microphone_source` (the
optional ``sounddevice`` package). :func:`listen` plays a source into a
listener, at real speed or as fast as it can.

Command line::

    crowdnb listen --model model.pt crowd.wav [--realtime]
    ffmpeg -i URL -f wav - | crowdnb listen --model model.pt -
    ffmpeg -i URL -f s16le -ac 1 -ar 44100 - | crowdnb listen --model model.pt --format s16le --rate 44100 -
    crowdnb listen --model model.pt --mic [--smooth 5] [--alert anger:10] [--json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import queue
import struct
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .audio import (CLIPPING_FRACTION, Block, ClipStream, full_scale_fraction, normalised_block,
                    split_blocks, truncation)
from .config import AudioConfig, PreprocessConfig
from .errors import AudioError, CrowdnbError, ParameterError
from .model import load_checkpoint, predict_proba, resolve_device
from .predict import InputWarning, band_note, checkpoint_preprocessing

__all__ = ["Listener", "WindowResult", "MovingAverage", "AlertRule", "Alert", "AlertTracker",
           "Source", "listen", "file_source", "wav_stream_source", "raw_pcm_source",
           "microphone_source", "independent_blocks", "RAW_FORMATS",
           "MicrophoneError", "register_cli"]

#: Chunk length a source delivers, s: a tenth of a hop keeps the wait for a
#: window's last sample short without a Python call per sample.
CHUNK_S = 0.1

#: Headerless PCM sample formats (ffmpeg's names): bytes per sample, and how
#: libsndfile scales them to floats (so a stream reads as the file would).
RAW_FORMATS = {
    "u8": "unsigned 8-bit",
    "s16le": "signed 16-bit little-endian",
    "s24le": "signed 24-bit little-endian",
    "s32le": "signed 32-bit little-endian",
    "f32le": "32-bit float little-endian",
    "f64le": "64-bit float little-endian",
}
_SAMPLE_BYTES = {"u8": 1, "s16le": 2, "s24le": 3, "s32le": 4, "f32le": 4, "f64le": 8}


class MicrophoneError(CrowdnbError):
    """The microphone cannot be used: ``sounddevice`` or PortAudio missing, or no input device."""


# ---------------------------------------------------------------------------
# One window on its own


def independent_blocks(y: np.ndarray, sr: int, *,
                       config: AudioConfig = AudioConfig()) -> Iterator[Block]:
    """A loaded clip's blocks, each prepared on its own (:func:`crowdnb.audio.normalised_block`).

    The blocks a :class:`Listener` makes of the same samples arriving as a
    stream, in the same order with the same times; what ``crowdnb predict
    --band-limit-per block`` classifies.

    Yields
    ------
    Block
        In time order, kept and dropped alike; nothing for a clip shorter than a block.
    """
    split = split_blocks(y, sr, block_s=config.block_s, hop_s=config.hop_s)
    for index, (block, start) in enumerate(zip(split.blocks, split.starts_s)):
        yield normalised_block(block, sr, index=index, start_s=float(start), config=config)


# ---------------------------------------------------------------------------
# Smoothing and alerts


class MovingAverage:
    """Class probabilities averaged over the last ``n_windows`` windows.

    A dropped window (silence) holds no probabilities: the average is over the
    kept windows among the last ``n_windows``, and there is none when all of
    them were dropped.

    Parameters
    ----------
    n_windows : int >= 1
        Windows averaged, the current one included (1: no smoothing).
    """

    def __init__(self, n_windows: int = 1) -> None:
        if isinstance(n_windows, bool) or not isinstance(n_windows, (int, np.integer)) or n_windows < 1:
            raise ParameterError(f"smooth must be a whole number of windows >= 1, got {n_windows!r}")
        self.n_windows = int(n_windows)
        self._recent: collections.deque = collections.deque(maxlen=self.n_windows)

    def update(self, probabilities: np.ndarray | None) -> np.ndarray | None:
        """Add a window's probabilities (None for a dropped window); the current average.

        Returns
        -------
        np.ndarray [shape=(n_classes,)] or None
        """
        self._recent.append(None if probabilities is None else np.asarray(probabilities, float))
        kept = [p for p in self._recent if p is not None]
        return np.mean(kept, axis=0) if kept else None


@dataclass(frozen=True)
class AlertRule:
    """Flag ``label`` once it has lasted more than ``seconds``."""

    label: str
    seconds: float

    @classmethod
    def parse(cls, text: str, classes: Sequence[str] | None = None) -> "AlertRule":
        """``"anger:10"`` -> ``AlertRule("anger", 10.0)``.

        Raises
        ------
        ParameterError
            When ``text`` is not ``LABEL:SECONDS`` with seconds >= 0, or its label
            is not one of ``classes``; the message names ``--alert`` and the text.
        """
        label, sep, seconds = str(text).rpartition(":")
        try:
            value = float(seconds)
        except ValueError:
            value = float("nan")
        if not sep or not label or not math.isfinite(value) or value < 0:
            raise ParameterError(f"--alert {text}: expected LABEL:SECONDS with SECONDS >= 0, "
                                 "e.g. anger:10")
        if classes is not None and label not in classes:
            raise ParameterError(f"--alert {text}: {label!r} is not a class of the checkpoint "
                                 f"(its classes: {', '.join(classes)})")
        return cls(label, value)


@dataclass(frozen=True)
class Alert:
    """A label that lasted: ``label`` from ``since_s`` for ``duration_s`` (> ``seconds``)."""

    label: str
    seconds: float
    since_s: float
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "seconds": self.seconds, "since_s": self.since_s,
                "duration_s": self.duration_s}


class AlertTracker:
    """Flags a label that stays: each rule fires once per run of windows with its label.

    A run is a sequence of consecutive windows labelled ``rule.label``; it
    lasts from the start of its first window to the end of its latest (with
    2 s windows every 1 s, one window lasts 2 s, two last 3 s). A rule fires
    at the first window where its run lasts more than ``rule.seconds``, and
    again only after the run was broken by a window with another label or none.

    Parameters
    ----------
    rules : iterable of AlertRule
    """

    def __init__(self, rules: Iterable[AlertRule] = ()) -> None:
        self.rules = tuple(rules)
        self._since: dict[AlertRule, float | None] = {rule: None for rule in self.rules}
        self._fired: set[AlertRule] = set()

    def update(self, label: str | None, start_s: float, end_s: float) -> list[Alert]:
        """The next window's label (None: it has none); the alerts it raises."""
        raised = []
        for rule in self.rules:
            if label != rule.label:
                self._since[rule] = None
                self._fired.discard(rule)
                continue
            if self._since[rule] is None:
                self._since[rule] = float(start_s)
            since = self._since[rule]
            duration = float(end_s) - since
            if duration > rule.seconds and rule not in self._fired:
                self._fired.add(rule)
                raised.append(Alert(rule.label, rule.seconds, since, duration))
        return raised


# ---------------------------------------------------------------------------
# The listener


@dataclass(frozen=True)
class WindowResult:
    """What the listener says about one window of the stream.

    Attributes
    ----------
    index : int
        The window's position in the stream (0, 1, ...).
    start_s, end_s : float
        Its time span from the start of the stream, s.
    kept : bool
        False when the loudness step dropped it (silence); it has no label then.
    reason : str
        Why it was dropped ("" when kept).
    loudness_lufs, gain_db : float
        The window's loudness before the gain (LUFS) and the gain (dB); NaN
        where they could not be measured.
    clipped : bool
        Its peak exceeds 0 dBFS after the gain (kept unclipped, as floats).
    label : str or None
        The most probable class (None when dropped).
    probabilities : dict or None
        Class -> probability (None when dropped).
    smoothed_label : str or None
        The most probable class of the probabilities averaged over the last
        windows (:class:`MovingAverage`); the label itself without smoothing.
    smoothed_probabilities : dict or None
        Those averaged probabilities.
    alerts : tuple of Alert
        Alerts this window raised.
    latency_s : float
        From the arrival of the chunk holding the window's last sample to the
        moment its label was known, s.
    """

    index: int
    start_s: float
    end_s: float
    kept: bool
    reason: str
    loudness_lufs: float
    gain_db: float
    clipped: bool
    label: str | None
    probabilities: dict[str, float] | None
    smoothed_label: str | None
    smoothed_probabilities: dict[str, float] | None
    alerts: tuple[Alert, ...]
    latency_s: float

    def to_json(self) -> dict[str, Any]:
        """JSON-able values (NaN and infinite loudness become None)."""

        def number(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {"window": self.index, "start_s": self.start_s, "end_s": self.end_s,
                "kept": self.kept, "reason": self.reason, "label": self.label,
                "probabilities": self.probabilities, "smoothed_label": self.smoothed_label,
                "smoothed_probabilities": self.smoothed_probabilities,
                "loudness_lufs": number(self.loudness_lufs), "gain_db": number(self.gain_db),
                "clipped": self.clipped, "alerts": [a.to_json() for a in self.alerts],
                "latency_s": self.latency_s}


class Listener:
    """Classifies a stream window by window as its samples arrive.

    Feed it chunks of mono samples at the checkpoint's sample rate
    (:meth:`feed`); every window of ``block_s`` starting at a multiple of
    ``hop_s`` is classified as soon as its last sample is in, with the
    checkpoint's preprocessing applied to the window on its own
    (:func:`crowdnb.audio.normalised_block`, then :func:`crowdnb.spectrogram.spectrogram_image`).
    The windows and their times are those of
    :func:`crowdnb.audio.split_blocks` on the whole stream; a trailing part
    shorter than a window is not classified.

    Parameters
    ----------
    model : torch.nn.Module
        The network of a checkpoint (:func:`crowdnb.model.load_checkpoint`).
    meta : dict
        The rest of that checkpoint: ``classes``, ``normalization``, ``preprocessing``.
    device : str or torch.device
        Where the network computes (``"auto"``: CUDA when present).
    smooth : int >= 1
        Windows averaged for the smoothed label (1: none).
    alerts : iterable of AlertRule
        Labels to flag when they last (on the smoothed label).
    name : str
        The stream's name in warnings.
    where : str
        The checkpoint's name in messages about it.
    """

    def __init__(self, model: nn.Module, meta: Mapping[str, Any], *,
                 device: str | torch.device = "auto", smooth: int = 1,
                 alerts: Iterable[AlertRule] = (), name: str = "stream",
                 where: str = "checkpoint") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.normalization = meta["normalization"]
        self.classes = list(meta["classes"])
        self.config: PreprocessConfig = checkpoint_preprocessing(meta, where=where)
        self.name = name
        audio = self.config.audio
        self.sr = audio.sr
        # The rounding of split_blocks: the same windows as a whole-file split.
        self.window_len = int(round(audio.block_s * self.sr))
        self.hop_len = int(round(audio.hop_s * self.sr))
        self.smoother = MovingAverage(smooth)
        self.tracker = AlertTracker(alerts)
        unknown = [r.label for r in self.tracker.rules if r.label not in self.classes]
        if unknown:
            raise ParameterError(f"alert label(s) {', '.join(unknown)} not among the checkpoint's "
                                 f"classes ({', '.join(self.classes)})")
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream position of the buffer's first sample
        self.received = 0  # samples fed so far
        self.windows = 0  # windows classified so far
        self.busy_s = 0.0  # time spent in feed(), s
        self._warned_clipping = False

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, device: str | torch.device = "auto",
                        **kwargs) -> "Listener":
        """A listener for the checkpoint file at ``path`` (see :class:`Listener`)."""
        dev = resolve_device(device)
        model, meta = load_checkpoint(path, device=dev)
        return cls(model, meta, device=dev, where=str(path), **kwargs)

    @property
    def received_s(self) -> float:
        """Audio fed so far, s."""
        return self.received / self.sr

    def warm_up(self) -> None:
        """Run one window of seeded noise through the chain, so the first real one is not slow.

        The first call of each step builds what later calls reuse (the filter
        design, the loudness meter, the mel matrix, the network's kernels);
        paying that here keeps it out of the first window's latency. The
        listener's state is not touched.
        """
        noise = (0.05 * np.random.default_rng(0).standard_normal(self.window_len)).astype(np.float32)
        block = normalised_block(noise, self.sr, config=self.config.audio)
        self._probabilities([self._image(block)])

    def _image(self, block: Block) -> np.ndarray:
        from .spectrogram import spectrogram_image

        return spectrogram_image(block.samples, self.sr, config=self.config)

    def _probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        probs, _ = predict_proba(self.model, tensor, normalization=self.normalization,
                                 device=self.device, batch_size=len(images))
        return probs

    def feed(self, samples: np.ndarray, *, arrival: float | None = None) -> list[WindowResult]:
        """Add the next samples of the stream; the windows they complete, classified.

        Parameters
        ----------
        samples : np.ndarray [shape=(n,)]
            Mono samples at the checkpoint's rate (``listener.sr``), full scale 1.0.
        arrival : float, optional
            When they arrived, on the :func:`time.perf_counter` clock (default:
            now); each window's latency is counted from it.

        Returns
        -------
        list of WindowResult
            In time order; empty while no window is complete.
        """
        arrival = time.perf_counter() if arrival is None else float(arrival)
        began = time.perf_counter()
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ParameterError(f"samples must be mono, of shape (n,), got shape {x.shape}")
        self._buffer = np.concatenate([self._buffer, x.astype(np.float32, copy=False)])
        self.received += x.size
        complete = []
        while True:
            start = self.windows * self.hop_len
            offset = start - self._buffer_start
            if offset < 0 or offset + self.window_len > self._buffer.size:
                break
            complete.append((self.windows, start, self._buffer[offset:offset + self.window_len]))
            self.windows += 1
        results = self._classify(complete, arrival) if complete else []
        # Keep only what later windows need.
        cut = min(self.windows * self.hop_len - self._buffer_start, self._buffer.size)
        if cut > 0:
            self._buffer = self._buffer[cut:].copy()
            self._buffer_start += cut
        self.busy_s += time.perf_counter() - began
        return results

    def _classify(self, complete, arrival: float) -> list[WindowResult]:
        blocks = []
        for index, start, samples in complete:
            self._check_clipping(samples, start)
            blocks.append(normalised_block(samples, self.sr, index=index, start_s=start / self.sr,
                                           config=self.config.audio))
        kept = [b for b in blocks if b.kept]
        probs = iter(self._probabilities([self._image(b) for b in kept]) if kept else [])
        ready = time.perf_counter()
        results = []
        for block in blocks:
            p = next(probs) if block.kept else None
            smoothed = self.smoother.update(p)
            smoothed_label = None if smoothed is None else self.classes[int(np.argmax(smoothed))]
            alerts = self.tracker.update(smoothed_label, block.start_s, block.end_s)
            results.append(WindowResult(
                index=block.index, start_s=block.start_s, end_s=block.end_s, kept=block.kept,
                reason=block.reason, loudness_lufs=block.loudness_lufs, gain_db=block.gain_db,
                clipped=block.clipped,
                label=None if p is None else self.classes[int(np.argmax(p))],
                probabilities=None if p is None else dict(zip(self.classes, map(float, p))),
                smoothed_label=smoothed_label,
                smoothed_probabilities=(None if smoothed is None else
                                        dict(zip(self.classes, map(float, smoothed)))),
                alerts=tuple(alerts), latency_s=ready - arrival))
        return results

    def _check_clipping(self, samples: np.ndarray, start: int) -> None:
        share = full_scale_fraction(samples)
        if share > CLIPPING_FRACTION and not self._warned_clipping:
            self._warned_clipping = True
            warnings.warn(f"{self.name}: clipped input: {share:.2%} of the samples of the window at "
                          f"{start / self.sr:.2f} s at full scale; its spectrogram holds distortion "
                          "the training images may not have (said once per stream)",
                          InputWarning, stacklevel=3)


# ---------------------------------------------------------------------------
# Sources


@dataclass
class Source:
    """Audio as it arrives.

    Attributes
    ----------
    name : str
        For messages: the file, "standard input", "microphone ...".
    rate : int
        Sample rate of the frames, Hz.
    channels : int
        Channels of the frames (mixed to mono by averaging, as
        :func:`crowdnb.audio.load_clip` does).
    chunks : iterator of (np.ndarray [shape=(n, channels), dtype=float32], float)
        The frames, full scale 1.0, each chunk with its arrival time
        (:func:`time.perf_counter`).
    live : bool
        The source paces itself (a microphone): it cannot be played "at real speed".
    close : callable
        Releases what the source holds (called by :func:`listen` when it is done).
    own_rate : int or None
        The audio's own sample rate, Hz, where the frames were resampled from
        it (a file, decoded at the listener's rate); None when ``rate`` is its own.
    """

    name: str
    rate: int
    channels: int
    chunks: Iterator[tuple[np.ndarray, float]]
    live: bool = False
    close: Callable[[], None] = field(default=lambda: None)
    own_rate: int | None = None


def file_source(path: str | os.PathLike, *, sr: int, chunk_s: float = CHUNK_S) -> Source:
    """An audio file as a stream, decoded as ``crowdnb predict`` decodes it.

    A :class:`crowdnb.audio.ClipStream` reads the file a block at a time,
    mixes it to mono and resamples it to ``sr`` (the samples of
    :func:`crowdnb.audio.load_clip`), and the source hands them over in
    chunks of ``chunk_s``; :func:`listen` plays them at real speed or as fast
    as it can. Memory stays bounded whatever the file's length. A file that
    holds less than its header promises is warned about (:class:`InputWarning`)
    when its end is reached.

    Raises
    ------
    AudioError
        When the file cannot be read (see :func:`crowdnb.audio.load_clip`).
    """
    stream = ClipStream(path, sr=sr)
    step = max(1, int(round(chunk_s * sr)))

    def chunks():
        try:
            for y in stream:
                for i in range(0, y.size, step):
                    yield y[i:i + step, None], time.perf_counter()
            cut = truncation(path, stream.samples / sr)
            if cut:
                warnings.warn(f"{path}: {cut}; the windows above cover what it holds", InputWarning,
                              stacklevel=2)
        finally:
            stream.close()

    return Source(str(path), sr, 1, chunks(), close=stream.close, own_rate=stream.rate)


def _decoder(sample_format: str) -> Callable[[bytes], np.ndarray]:
    """bytes -> float32 samples, scaled as libsndfile scales that format to floats."""
    if sample_format == "u8":
        return lambda b: (np.frombuffer(b, np.uint8).astype(np.float32) - 128.0) * np.float32(1 / 128)
    if sample_format == "s16le":
        return lambda b: np.frombuffer(b, "<i2").astype(np.float32) * np.float32(2.0 ** -15)
    if sample_format == "s24le":
        def s24(b: bytes) -> np.ndarray:
            u = np.frombuffer(b, np.uint8).reshape(-1, 3).astype(np.int32)
            v = u[:, 0] | (u[:, 1] << 8) | (u[:, 2] << 16)
            return ((v ^ 0x800000) - 0x800000).astype(np.float32) * np.float32(2.0 ** -23)
        return s24
    if sample_format == "s32le":
        return lambda b: np.frombuffer(b, "<i4").astype(np.float32) * np.float32(2.0 ** -31)
    if sample_format == "f32le":
        return lambda b: np.frombuffer(b, "<f4").astype(np.float32)
    if sample_format == "f64le":
        return lambda b: np.frombuffer(b, "<f8").astype(np.float32)
    raise ParameterError(f"--format must be one of {', '.join(RAW_FORMATS)}, not {sample_format!r}")


def _pcm_chunks(fh, *, name: str, sample_format: str, channels: int, rate: int,
                data_bytes: int | None, chunk_s: float) -> Iterator[tuple[np.ndarray, float]]:
    decode = _decoder(sample_format)
    frame_bytes = _SAMPLE_BYTES[sample_format] * channels
    chunk_bytes = max(1, int(round(chunk_s * rate))) * frame_bytes
    read = getattr(fh, "read1", fh.read)  # what the pipe holds now, without waiting for more
    pending, remaining = b"", data_bytes
    while remaining is None or remaining > 0:
        data = read(chunk_bytes if remaining is None else min(chunk_bytes, remaining))
        if not data:
            break
        if remaining is not None:
            remaining -= len(data)
        data = pending + data
        usable = len(data) - len(data) % frame_bytes
        pending = data[usable:]
        if usable:
            yield decode(data[:usable]).reshape(-1, channels), time.perf_counter()
    cut = _cut_short(data_bytes, remaining, frame_bytes=frame_bytes, rate=rate)
    if cut:
        frame = (f" (inside a sample frame: its last {len(pending)} byte(s) were ignored)"
                 if pending else "")
        warnings.warn(f"{name}: {cut}{frame}; the windows above cover what arrived", InputWarning,
                      stacklevel=2)
    elif pending:
        warnings.warn(f"{name}: the stream ended inside a sample frame; its last {len(pending)} "
                      "byte(s) were ignored", InputWarning, stacklevel=2)


def _cut_short(data_bytes: int | None, remaining: int | None, *, frame_bytes: int,
               rate: int) -> str:
    """How a stream fell short of its WAV header's data size ("" when it did not).

    With the tolerance of :func:`crowdnb.audio.truncation` for a file: 10 ms,
    or 0.1 % of the promised length.
    """
    if data_bytes is None or not remaining:
        return ""
    promised_s = data_bytes / frame_bytes / rate
    arrived_s = (data_bytes - remaining) // frame_bytes / rate
    if promised_s - arrived_s <= max(0.01, 1e-3 * promised_s):
        return ""
    return (f"truncated: the WAV header promises {promised_s:.2f} s, the stream ended after "
            f"{arrived_s:.2f} s")


def raw_pcm_source(fh, *, rate: int, channels: int = 1, sample_format: str = "s16le",
                   name: str = "standard input", chunk_s: float = CHUNK_S) -> Source:
    """Headerless PCM from a binary file object (a pipe), interleaved frames.

    Parameters
    ----------
    fh : binary file object
        Read until its end (``read1`` where it has it: what a pipe holds now).
    rate : int > 0
        Sample rate, Hz.
    channels : int > 0
        Interleaved channels.
    sample_format : str
        One of :data:`RAW_FORMATS` (ffmpeg's ``-f`` names).
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ParameterError(f"--rate must be a positive whole number of Hz, got {rate!r}")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels <= 0:
        raise ParameterError(f"--channels must be a positive whole number, got {channels!r}")
    _decoder(sample_format)
    return Source(name, int(rate), int(channels),
                  _pcm_chunks(fh, name=name, sample_format=sample_format, channels=int(channels),
                              rate=int(rate), data_bytes=None, chunk_s=chunk_s))


def _read_exact(fh, n: int) -> bytes:
    out = b""
    while len(out) < n:
        part = fh.read(n - len(out))
        if not part:
            break
        out += part
    return out


#: (WAV format tag, bits per sample) -> sample format; tag 1 integer PCM, 3 IEEE float.
_WAV_FORMATS = {(1, 8): "u8", (1, 16): "s16le", (1, 24): "s24le", (1, 32): "s32le",
                (3, 32): "f32le", (3, 64): "f64le"}
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def wav_stream_source(fh, *, name: str = "standard input", chunk_s: float = CHUNK_S) -> Source:
    """A WAV stream from a binary file object read front to back (a pipe: no seeking).

    Reads the RIFF (or RF64) header up to the ``data`` chunk, then the samples
    as they come. A data size of 0 or 0xFFFFFFFF (what ffmpeg writes when its
    output is a pipe) means "until the stream ends". 8, 16, 24 and 32-bit
    integer PCM and 32 and 64-bit float are read, scaled as libsndfile reads
    the same file.

    Raises
    ------
    AudioError
        When the stream is empty, is not WAV, ends inside its header, or holds
        another sample format (the message says which, and what to send).
    """
    head = _read_exact(fh, 12)
    if not head:
        raise AudioError(f"{name}: no audio: the stream is empty")
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise AudioError(f"{name}: not a WAV stream (it starts with {head[:12]!r}); for raw PCM "
                         "give --format, --rate and --channels")
    fmt, ds64_size = None, None
    while True:
        chunk = _read_exact(fh, 8)
        if len(chunk) < 8:
            raise AudioError(f"{name}: the WAV stream ended before its data chunk")
        chunk_id, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
        if chunk_id == b"data":
            break
        body = _read_exact(fh, size + size % 2)  # chunks are padded to an even length
        if len(body) < size:
            raise AudioError(f"{name}: the WAV stream ended inside its {chunk_id!r} chunk")
        if chunk_id == b"fmt ":
            fmt = body[:size]
        elif chunk_id == b"ds64" and size >= 16:
            ds64_size = int.from_bytes(body[8:16], "little")
    if fmt is None or len(fmt) < 16:
        raise AudioError(f"{name}: the WAV stream has no format chunk before its data")
    tag, channels, rate = struct.unpack("<HHI", fmt[:8])
    bits = struct.unpack("<H", fmt[14:16])[0]
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID's first two bytes
    sample_format = _WAV_FORMATS.get((tag, bits))
    if sample_format is None:
        raise AudioError(f"{name}: WAV samples of format 0x{tag:04x} with {bits} bits are not "
                         "supported; send 8-32 bit PCM or 32/64-bit float "
                         "(e.g. ffmpeg ... -c:a pcm_s16le -f wav -)")
    if channels < 1 or rate < 1:
        raise AudioError(f"{name}: the WAV header gives {channels} channel(s) at {rate} Hz")
    if head[:4] == b"RF64":
        size = ds64_size if ds64_size is not None else 0xFFFFFFFF
    data_bytes = None if size in (0, 0xFFFFFFFF) else size
    return Source(name, rate, channels,
                  _pcm_chunks(fh, name=name, sample_format=sample_format, channels=channels,
                              rate=rate, data_bytes=data_bytes, chunk_s=chunk_s))


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise MicrophoneError("--mic: listening to a microphone needs the sounddevice package, which "
                              "is not installed (pip install sounddevice)") from None
    except OSError as exc:  # the package is there, the PortAudio library is not
        raise MicrophoneError(f"--mic: sounddevice cannot load the PortAudio library ({exc}); "
                              "install it (e.g. apt-get install libportaudio2)") from None
    return sounddevice


#: Seconds without a chunk from the microphone before giving up on it.
_MICROPHONE_SILENCE_S = 10.0


def microphone_source(*, rate: int, device: str | int | None = None,
                      chunk_s: float = CHUNK_S) -> Source:
    """The default (or a named) audio input device, through the ``sounddevice`` package.

    Opened mono at ``rate`` where the device takes it, else at the device's
    own rate (:func:`listen` resamples). Each chunk's arrival time is taken
    when PortAudio hands it over; an overflow is warned about.

    Parameters
    ----------
    rate : int > 0
        The rate wanted (the checkpoint's), Hz.
    device : str, int or None
        A device name (or part of one) or index as ``sounddevice`` lists them;
        None: the default input.

    Raises
    ------
    MicrophoneError
        When ``sounddevice`` or PortAudio is missing, or there is no such input device.
    """
    sd = _sounddevice()
    named = "" if device is None else f" {device!r}"
    try:
        info = sd.query_devices(device, kind="input")
    except (ValueError, sd.PortAudioError) as exc:
        raise MicrophoneError(f"--mic: no audio input device{named} ({exc})") from None
    if int(info.get("max_input_channels", 0)) < 1:
        raise MicrophoneError(f"--mic: the device{named or ' ' + repr(info.get('name'))} "
                              "has no input channel")
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=rate)
        open_rate = int(rate)
    except (ValueError, sd.PortAudioError):
        open_rate = int(round(info["default_samplerate"]))
    arrived: queue.Queue = queue.Queue()

    def callback(indata, frames, time_info, status):
        arrived.put((indata.copy(), time.perf_counter(), str(status) if status else ""))

    try:
        stream = sd.InputStream(samplerate=open_rate, channels=1, dtype="float32", device=device,
                                blocksize=max(1, int(round(chunk_s * open_rate))), callback=callback)
    except (ValueError, sd.PortAudioError) as exc:
        raise MicrophoneError(f"--mic: cannot open the input device{named} ({exc})") from None
    name = f"microphone {info.get('name', '')!s}".strip()

    def chunks():
        with stream:
            waited = 0.0
            while True:
                try:
                    frames, arrival, status = arrived.get(timeout=0.5)
                except queue.Empty:
                    waited += 0.5
                    if waited >= _MICROPHONE_SILENCE_S:
                        raise MicrophoneError(f"{name}: no audio from the device for "
                                              f"{_MICROPHONE_SILENCE_S:g} s") from None
                    continue
                waited = 0.0
                if status:
                    warnings.warn(f"{name}: {status} (samples were lost)", InputWarning, stacklevel=2)
                yield np.asarray(frames, dtype=np.float32).reshape(-1, 1), arrival

    return Source(name, open_rate, 1, chunks(), live=True,
                  close=lambda: None if stream.closed else stream.close())


class _ToListenerRate:
    """Frames of a source -> mono float32 at the listener's rate (load_clip's mixing and resampler)."""

    def __init__(self, rate: int, sr: int) -> None:
        self._resampler = None
        if rate != sr:
            import soxr

            # The streaming form of load_clip's soxr "HQ" call: the same samples, chunk by chunk.
            self._resampler = soxr.ResampleStream(rate, sr, 1, dtype="float64", quality="soxr_hq")

    def __call__(self, frames: np.ndarray, *, last: bool = False) -> np.ndarray:
        y = frames.mean(axis=1, dtype=np.float64) if frames.shape[1] > 1 else frames[:, 0]
        if self._resampler is not None:
            y = self._resampler.resample_chunk(np.asarray(y, dtype=np.float64), last=last)
        return np.ascontiguousarray(y, dtype=np.float32)


def listen(source: Source, listener: Listener, *, realtime: bool = False,
           duration_s: float | None = None) -> Iterator[WindowResult]:
    """Play a source into a listener; the window results as they come.

    Parameters
    ----------
    source : Source
    listener : Listener
    realtime : bool
        Hand each chunk over when its last sample would have been heard at
        real speed (a file played as a live stream); otherwise as fast as the
        source gives them. A live source (a microphone) paces itself.
    duration_s : float > 0, optional
        Stop after this much audio, s.

    Yields
    ------
    WindowResult
    """
    if realtime and source.live:
        raise ParameterError("--realtime: the microphone is real time already")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise ParameterError(f"--duration must be a positive number of seconds, got {duration_s!r}")
    listener.name = source.name
    band = band_note(rate=source.own_rate or source.rate, config=listener.config)
    if band:
        warnings.warn(f"{source.name}: {band}", InputWarning, stacklevel=2)
    to_listener = _ToListenerRate(source.rate, listener.sr)
    limit = None if duration_s is None else int(round(duration_s * source.rate))
    frames_in, began = 0, None
    try:
        for frames, arrival in source.chunks:
            if limit is not None:
                frames = frames[:max(0, limit - frames_in)]
            frames_in += frames.shape[0]
            if realtime:
                began = arrival if began is None else began
                time.sleep(max(0.0, began + frames_in / source.rate - time.perf_counter()))
                arrival = time.perf_counter()
            yield from listener.feed(to_listener(frames), arrival=arrival)
            if limit is not None and frames_in >= limit:
                break
        yield from listener.feed(to_listener(np.zeros((0, source.channels), np.float32), last=True))
    finally:
        close = getattr(source.chunks, "close", None)
        if close is not None:
            close()
        source.close()


# ---------------------------------------------------------------------------
# Command line


def _whole_number(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ParameterError(f"{option}: must be a whole number >= 1, got {text!r}")
    return value


def _seconds(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{option}: must be a positive number of seconds, got {text!r}")
    return value


def _check_options(args: argparse.Namespace) -> None:
    """Parse the options' values in place; one clear line (a ParameterError) for a bad one."""
    args.rate = _whole_number("--rate", args.rate)
    args.channels = _whole_number("--channels", args.channels)
    args.smooth = _whole_number("--smooth", args.smooth)
    args.duration = _seconds("--duration", args.duration)
    if args.format is not None and args.format not in RAW_FORMATS:
        raise ParameterError(f"--format {args.format}: not a raw PCM format; use one of "
                             f"{', '.join(RAW_FORMATS)}")
    if args.mic and args.source is not None:
        raise ParameterError(f"--mic: give either a SOURCE ({args.source}) or --mic, not both")
    if not args.mic and args.source is None:
        raise ParameterError("give a SOURCE (an audio file, or - for standard input) or --mic")
    raw = args.format is not None
    if raw and args.source != "-":
        raise ParameterError(f"--format {args.format}: raw PCM is read from standard input only "
                             "(SOURCE -); a file or a microphone states its own format")
    for option, value in (("--rate", args.rate), ("--channels", args.channels)):
        if value is not None and not raw:
            raise ParameterError(f"{option}: applies to raw PCM only (with --format); a WAV stream, "
                                 "a file and a microphone state their own")
    if raw and args.rate is None:
        raise ParameterError(f"--format {args.format}: raw PCM needs --rate (its sample rate, Hz)")
    if args.input_device is not None and not args.mic:
        raise ParameterError("--input-device: chooses the microphone, with --mic only")
    if args.realtime and args.mic:
        raise ParameterError("--realtime: the microphone is real time already")


def _standard_input():
    """The binary standard input; an AudioError (one line) when there is none to read.

    Started with standard input closed (``crowdnb listen ... - <&-``), Python
    has no ``sys.stdin``; opened for writing only, reading it fails. A read
    of 0 bytes tells the second apart without taking anything from the stream.
    """
    if sys.stdin is None:
        raise AudioError("standard input: closed, there is nothing to read; pipe audio into "
                         "it (e.g. ffmpeg -i URL -f wav - | crowdnb listen --model M -) "
                         "or give a file")
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # not a file descriptor (a test's stand-in)
        fd = None
    if fd is not None:
        try:
            os.read(fd, 0)
        except OSError as exc:
            raise AudioError(f"standard input: not readable ({exc.strerror or exc}); pipe audio "
                             "into it or give a file") from None
    return sys.stdin.buffer


def _open_source(args: argparse.Namespace, sr: int) -> Source:
    if args.mic:
        device = args.input_device
        if device is not None and device.strip().isdigit():
            device = int(device)
        return microphone_source(rate=sr, device=device)
    if args.source == "-":
        stdin = _standard_input()
        if args.format is not None:
            return raw_pcm_source(stdin, rate=args.rate, channels=args.channels or 1,
                                  sample_format=args.format)
        return wav_stream_source(stdin)
    return file_source(args.source, sr=sr)


def _text_header(classes: list[str], smoothed: bool) -> tuple[str, int]:
    width = max(8, *(len(c) + 2 for c in classes))
    head = f"{'start_s':>8} {'end_s':>8} {'label':<{width}}" + "".join(
        f"{'p(' + c + ')':>{width + 2}}" for c in classes)
    return head + ("  smoothed" if smoothed else ""), width


def _text_lines(result: WindowResult, classes: list[str], width: int, smoothed: bool) -> list[str]:
    span = f"{result.start_s:>8.2f} {result.end_s:>8.2f} "
    if result.kept:
        line = span + f"{result.label:<{width}}" + "".join(
            f"{result.probabilities[c]:>{width + 2}.3f}" for c in classes)
        if smoothed:
            line += f"  {result.smoothed_label:<{width}}"
    else:
        line = span + f"dropped: {result.reason}"
        if smoothed and result.smoothed_label is not None:
            line += f"  (smoothed: {result.smoothed_label})"
    lines = [line.rstrip()]
    for alert in result.alerts:
        lines.append(f"alert: {alert.label} for {alert.duration_s:.2f} s (since {alert.since_s:.2f} s; "
                     f"more than {alert.seconds:g} s)")
    return lines


def _summary(listener: Listener, latencies: list[float], dropped: int) -> str:
    audio_s = listener.received_s
    speed = (f"{audio_s / listener.busy_s:.1f} x real time" if listener.busy_s > 0 else "no time")
    text = (f"crowdnb listen: {listener.windows} window(s) ({dropped} dropped) from {audio_s:.1f} s "
            f"of audio; processing took {listener.busy_s:.2f} s ({speed})")
    if latencies:
        median, p95 = np.percentile(latencies, [50, 95])
        text += f"; latency median {1000 * median:.0f} ms, 95th percentile {1000 * p95:.0f} ms"
    return text


@contextlib.contextmanager
def _input_warnings_to_stderr():
    """InputWarnings printed as they happen, one line each, in the command's words."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, InputWarning):
                print(f"crowdnb listen: warning: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _cli(args: argparse.Namespace) -> int:
    _check_options(args)
    dev = resolve_device(args.device)
    model, meta = load_checkpoint(args.model, device=dev)
    classes = list(meta["classes"])
    rules = [AlertRule.parse(text, classes) for text in args.alert]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        listener = Listener(model, meta, device=dev, smooth=args.smooth, alerts=rules,
                            where=str(args.model))
    for w in caught:
        print(f"crowdnb listen: note: {w.message}", file=sys.stderr)
    audio = listener.config.audio
    smoothed = args.smooth > 1
    latencies, dropped, interrupted = [], 0, False
    with _input_warnings_to_stderr():
        source = _open_source(args, listener.sr)
        listener.warm_up()
        print(f"crowdnb listen: {source.name} ({source.rate} Hz, {source.channels} channel(s)) -> "
              f"{args.model} ({', '.join(classes)}): {audio.block_s:g} s windows every "
              f"{audio.hop_s:g} s, each band-limited and normalised on its own"
              + ("; played at real speed" if args.realtime else ""), file=sys.stderr, flush=True)
        if not args.json:
            header, width = _text_header(classes, smoothed)
            print(header, flush=True)
        results = listen(source, listener, realtime=args.realtime, duration_s=args.duration)
        try:
            for result in results:
                latencies.append(result.latency_s)
                dropped += not result.kept
                if args.json:
                    print(json.dumps(result.to_json()), flush=True)
                else:
                    print("\n".join(_text_lines(result, classes, width, smoothed)), flush=True)
        except KeyboardInterrupt:
            interrupted = True
        except BrokenPipeError:  # the reader went away (listen ... | head): not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        finally:
            results.close()
    print(_summary(listener, latencies, dropped) + ("; stopped" if interrupted else ""),
          file=sys.stderr, flush=True)
    if listener.windows == 0 and not interrupted:
        raise AudioError(f"{source.name}: the stream ended after {listener.received_s:.2f} s, before "
                         f"one {audio.block_s:g} s window")
    return 0


def register_cli(subparsers) -> None:
    """Add ``crowdnb listen`` to the ``crowdnb`` command line."""
    parser = subparsers.add_parser(
        "listen",
        help="label a stream (file, standard input, microphone) window by window as it arrives",
        description=(
            "Classify audio as it arrives: every hop, the last window (the checkpoint's block: 2 s "
            "every 1 s in the paper) is band-limited and loudness-normalised on its own, drawn as "
            "the checkpoint's spectrogram image and labelled. Prints each window's time, label and "
            "class probabilities (or JSON lines), a smoothed label, and alerts; a summary of "
            "latency and speed goes to standard error."
        ),
    )
    parser.add_argument("--model", required=True, type=Path, metavar="CHECKPOINT",
                        help="model.pt written by training")
    parser.add_argument("source", nargs="?", metavar="SOURCE",
                        help="an audio file, or - for standard input (a WAV stream, or raw PCM with "
                             "--format)")
    parser.add_argument("--mic", action="store_true",
                        help="listen to the microphone (needs the sounddevice package)")
    parser.add_argument("--input-device", metavar="DEVICE",
                        help="with --mic: the input device's name or index (default: the system's)")
    parser.add_argument("--format", metavar="FORMAT",
                        help="standard input is raw PCM in this sample format, one of "
                             f"{', '.join(RAW_FORMATS)} (ffmpeg's -f names)")
    parser.add_argument("--rate", metavar="HZ", help="with --format: the raw PCM's sample rate")
    parser.add_argument("--channels", metavar="N",
                        help="with --format: its interleaved channels (default 1)")
    parser.add_argument("--realtime", action="store_true",
                        help="play the file or stream at real speed (default: as fast as possible)")
    parser.add_argument("--duration", metavar="SECONDS",
                        help="stop after this much audio")
    parser.add_argument("--smooth", default="1", metavar="N",
                        help="smoothed label: class probabilities averaged over the last N windows "
                             "(default 1: none)")
    parser.add_argument("--alert", action="append", default=[], metavar="LABEL:SECONDS",
                        help="flag when the (smoothed) label stays LABEL for more than SECONDS; "
                             "repeatable")
    parser.add_argument("--json", action="store_true", help="print one JSON object per window")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.set_defaults(func=_cli)
