"""What ran, where, with which versions: recorded next to every result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

__all__ = ["library_versions", "environment_info", "torch_backends", "source_hash", "usable_cores"]

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


def usable_cores() -> int:
    """The CPU cores this process may use: its CPU affinity, within a container's CPU quota.

    ``os.cpu_count()`` counts every core of the machine; a container limited to
    two of sixteen (cgroup v2 ``cpu.max``), or a job pinned to some, has fewer.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as fh:
            quota, period = fh.read().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cores


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
        info["torch_backends"] = torch_backends()
    return info


def torch_backends() -> dict[str, Any]:
    """The settings of torch's compute backends that can change a result or its speed.

    The CPU's vector extensions torch uses, oneDNN, and on a GPU cuDNN's
    version and its ``benchmark``/``deterministic`` flags and whether float32
    products may use TF32 (faster, with a 10-bit mantissa).
    """
    import torch

    backends = torch.backends
    out: dict[str, Any] = {
        "cpu_capability": backends.cpu.get_cpu_capability(),
        "mkldnn": bool(backends.mkldnn.is_available()),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if torch.cuda.is_available():
        out.update(cudnn_version=backends.cudnn.version(), cudnn_enabled=bool(backends.cudnn.enabled),
                   cudnn_benchmark=bool(backends.cudnn.benchmark),
                   cudnn_deterministic=bool(backends.cudnn.deterministic),
                   cudnn_allow_tf32=bool(backends.cudnn.allow_tf32),
                   cuda_matmul_allow_tf32=bool(backends.cuda.matmul.allow_tf32))
    return out


def source_hash(*modules: str) -> str:
    """A short hash of the source code of ``crowdnb`` modules or packages.

    Part of the key of every cache of computed data (rendered audio, loudness,
    spectrograms), so that editing the code that computes it never returns
    what the old code computed. A package (``crowdnb.synth``) counts all its
    modules.
    """
    import hashlib
    import importlib.util
    from pathlib import Path

    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"no module {name}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            digest.update(path.relative_to(origin.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
