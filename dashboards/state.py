"""The runs the running app shows (set by ``create_app``)."""

from __future__ import annotations

from typing import Any

RUNS: Any = None


def follow_live(_: int, name: str, t: float | None, was_max: float) -> tuple[float, float]:
    """Every page's live tick: read what the live twin published since, and keep the time
    slider at the present unless the officer moved it back (its new end, its value)."""
    view = RUNS[name]
    view.refresh()
    return view.end, view.end if t is None or t >= was_max else t


def slider_for(name: str) -> tuple[float, float, float, bool]:
    """A page's time slider for the run ``name``: its end, step and value (the end), and
    whether the page's live tick is off (a finished run)."""
    view = RUNS[name]
    view.refresh()
    return view.end, view.step, view.end, not view.live
