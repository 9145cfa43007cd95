"""What ran, where, with which versions: recorded next to every result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

__all__ = ["library_versions", "environment_info"]

_LIBRARIES = (
    "crowdnb", "numpy", "scipy", "pandas", "librosa", "pyloudnorm", "soundfile",
    "torch", "torchvision", "scikit-learn", "matplotlib", "papermill", "jupyter-book",
    "yt-dlp",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries the study's results depend on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_info() -> dict[str, Any]:
    """Library versions plus the machine: OS, CPU count, and the GPU if torch sees one."""
    info: dict[str, Any] = {
        "versions": library_versions(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "executable": sys.executable,
    }
    if "torch" in sys.modules or info["versions"].get("torch"):
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda_available"] = bool(torch.cuda.is_available())
        if info["cuda_available"]:
            info["cuda_device"] = torch.cuda.get_device_name(0)
            info["cuda_version"] = torch.version.cuda
    return info
