"""The exceptions crowdnb raises.

One base class, so that a notebook or a script can catch everything the study
reports about its inputs with a single ``except CrowdnbError``; every message
names the file or the parameter and says what is wrong with it.
"""

from __future__ import annotations

__all__ = ["CrowdnbError", "ParameterError", "AudioError", "DataError"]


class CrowdnbError(Exception):
    """Base class of every error crowdnb raises on purpose."""


class ParameterError(CrowdnbError, ValueError):
    """A parameter has a value the method cannot use (the message names it)."""


class AudioError(CrowdnbError):
    """An audio file cannot be used: empty, unreadable, not audio, or not finite.

    The message starts with the file's path and ends with the reason.
    """


class DataError(CrowdnbError):
    """A table, a manifest or an upstream stage's output is missing or malformed."""
