"""crowdnb: crowd-emotion recognition from crowd sound by visual transfer learning.

The library behind the study's notebooks: crowd clips are cut into 2 s blocks,
band-limited, loudness-normalised, drawn as mel spectrogram images, and used to
fine-tune an ImageNet-pretrained AlexNet.
"""

from .errors import AudioError, CrowdnbError, DataError, ParameterError

__version__ = "0.1.0"

__all__ = ["AudioError", "CrowdnbError", "DataError", "ParameterError", "__version__"]
