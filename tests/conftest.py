"""Shared test settings and signals: tests marked ``cuda`` run only where torch sees a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile as sf
import torch

#: Sample rate of the shared test clips.
CLIP_SR = 44100


def band_noise(seconds: float, band: tuple[float | None, float | None], seed: int,
               sr: int = CLIP_SR, level: float = 0.1) -> np.ndarray:
    """Gaussian noise filtered to a band (Hz); None leaves that side open (``level`` RMS before filtering)."""
    y = np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))
    low, high = band
    if low and high:
        sos = scipy.signal.butter(6, [low, high], btype="bandpass", fs=sr, output="sos")
    elif low:
        sos = scipy.signal.butter(6, low, btype="highpass", fs=sr, output="sos")
    else:
        sos = scipy.signal.butter(6, high, btype="lowpass", fs=sr, output="sos")
    return level * scipy.signal.sosfilt(sos, y)


def rumble_and_hiss_clips(root: Path, *, seconds: float = 4.0) -> pd.DataFrame:
    """Four clips written to ``root``: rumble (< 500 Hz) and hiss (> 4 kHz), two of each.

    Returns their clips table (``clip_id``, ``event_id``, ``label``, ``path``);
    ``rumble0``/``hiss0`` and ``rumble1``/``hiss1`` make a training and a test set.
    """
    rows = []
    for label, band in (("rumble", (None, 500.0)), ("hiss", (4000.0, None))):
        for i in range(2):
            path = root / f"{label}{i}.wav"
            sf.write(path, band_noise(seconds, band, seed=len(rows)), CLIP_SR)
            rows.append({"clip_id": f"{label}{i}", "event_id": f"{label}{i}", "label": label,
                         "path": str(path)})
    return pd.DataFrame(rows)


def pytest_collection_modifyitems(config, items):
    # The smoke study (marked slow: minutes) starts first, so that under make test's
    # workers (pytest-xdist) the other tests run beside it instead of after it.
    items.sort(key=lambda item: "slow" not in item.keywords)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
