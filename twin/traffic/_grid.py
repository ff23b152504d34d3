"""SUMO's clock: it stops only on multiples of its step length."""

from __future__ import annotations

import math


def on_grid(t: float, step: float) -> float:
    """The first multiple of ``step`` at or after ``t`` (SUMO stops only on its grid)."""
    k = math.ceil(t / step - 1e-9)
    return round(k * step, 9)


def before_grid(t: float, step: float) -> float:
    """The last multiple of ``step`` at or before ``t``."""
    k = math.floor(t / step + 1e-9)
    return round(k * step, 9)
