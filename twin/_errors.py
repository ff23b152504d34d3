"""One exception hierarchy for the twin.

Each error also subclasses the built-in a caller would catch, as OSMnx and NetworkX do:
``InputError`` is a ``ValueError``, ``BundleError`` an ``OSError``. The command line prints
``TwinError`` messages without a traceback and exits with status 2.
"""

from __future__ import annotations


class TwinError(Exception):
    """Base class of every error the twin raises on purpose."""


class InputError(TwinError, ValueError):
    """A user-supplied file or option is wrong. The message names it and the problem."""


class BundleError(TwinError, OSError):
    """A city bundle cannot be written or read."""


class SumoError(TwinError, RuntimeError):
    """A SUMO tool (netconvert, sumo, ...) failed. The message carries its own words."""
