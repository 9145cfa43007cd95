"""Where the ImageNet AlexNet weights live, and whether a file really holds them.

torchvision publishes the weights as ``alexnet-owt-7be5be79.pth``: the part
after the last ``-`` is the first eight hex digits of the file's SHA-256
(``torch.hub``'s convention). A file of that name can hold anything; only one
whose SHA-256 starts with that prefix is called ImageNet here, and the hash is
recorded with every result. Nothing in this module imports torch, so the
workflow can find the file without loading it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .files import sha256_file

__all__ = [
    "IMAGENET_URL",
    "IMAGENET_FILE_NAME",
    "IMAGENET_SHA256_PREFIX",
    "hub_checkpoints_dir",
    "imagenet_weights_file",
    "weights_sha256",
    "is_imagenet_file",
]

IMAGENET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
IMAGENET_FILE_NAME = os.path.basename(IMAGENET_URL)
IMAGENET_SHA256_PREFIX = "7be5be79"


def hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``, computed the way torch computes it.

    ``$TORCH_HOME/hub`` if set, else ``$XDG_CACHE_HOME/torch/hub``, else
    ``~/.cache/torch/hub``.
    """
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def imagenet_weights_file() -> Path:
    """Where torchvision keeps (or would keep) the ImageNet AlexNet weights."""
    return hub_checkpoints_dir() / IMAGENET_FILE_NAME


def weights_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a weights file, hex."""
    return sha256_file(path)


def is_imagenet_file(sha256: str) -> bool:
    """Whether a file with this SHA-256 is torchvision's published ImageNet AlexNet."""
    return sha256.lower().startswith(IMAGENET_SHA256_PREFIX)
