"""The live twin, which follows a city's feeds in wall-clock time, and its fork: a what-if
branched from the present and run ahead faster than real time."""

from __future__ import annotations
