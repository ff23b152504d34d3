"""The runs an app shows: each app its own (``create_app`` keeps them in its Flask
config), so that two apps in one process, tests or a server of several, never mix."""

from __future__ import annotations

import threading
import time
from typing import Any

KEY = "twin.runs"
TILES = "twin.tiles"


def runs() -> Any:
    """The runs of the app serving this request (a :class:`twin.dashboards.data.Runs`)."""
    from flask import current_app

    return current_app.config[KEY]


#: One DuckDB connection answers one query at a time: the exercise's page and its order
#: API, served by several threads, read a live view under this lock.
LOCK = threading.RLock()
_read: dict[int, float] = {}


def fresh(view: Any, every: float = 1.0) -> Any:
    """``view`` with what its live twin published since, read at most every ``every``
    seconds however many pages and programs ask (hold :data:`LOCK`)."""
    if view is not None and time.monotonic() - _read.get(id(view), 0.0) > every:
        view.refresh()
        _read[id(view)] = time.monotonic()
    return view


def patch_traces(traces: list[dict[str, Any]], base: int) -> Any:
    """What moved on a map since the figure on screen, as a patch: every trace but the
    roads' legend entry (at ``base``). The layout, with its picture of the roads, stays."""
    from dash import Patch

    patch = Patch()
    for j, trace in enumerate(traces):
        if j != base:
            patch["data"][j] = trace
    return patch


def tiles() -> Any:
    """The tile server under the app's maps (a :class:`twin.report.Tiles`), or None: the
    twin's own roads and sectors alone, offline."""
    from flask import current_app

    return current_app.config.get(TILES)


def follow_live(
    _: int, name: str, t: float | None, was_max: float
) -> tuple[float, dict[int, str], float]:
    """Every page's live tick: read what the live twin published since, and keep the time
    slider at the present unless the officer moved it back (its new end and marks, its
    value)."""
    view = runs()[name]
    view.refresh()
    return view.end, view.marks(), view.end if t is None or t >= was_max else t


def slider_for(name: str) -> tuple[float, float, dict[int, str], float, bool]:
    """A page's time slider for the run ``name``: its end, step, marks (local time) and
    value (the end), and whether the page's live tick is off (a finished run)."""
    view = runs()[name]
    view.refresh()
    return view.end, view.step, view.marks(), view.end, not view.live


def time_slider(page: str, view: Any) -> Any:
    """A page's time slider over ``view`` (a run or a live twin), marked in local time."""
    from dash import dcc

    return dcc.Slider(
        id=f"{page}-time",
        min=0,
        max=view.end,
        step=view.step,
        value=view.end,
        marks=view.marks(),
        className="slider",
    )


def follow_time(page: str) -> None:
    """Wire a page's time controls: its run picker ``<page>-run`` sets its time slider
    ``<page>-time`` (:func:`slider_for`), and its live tick ``<page>-live`` keeps the slider
    at the present (:func:`follow_live`)."""
    from dash import Input, Output, State, callback

    callback(
        Output(f"{page}-time", "max"),
        Output(f"{page}-time", "step"),
        Output(f"{page}-time", "marks"),
        Output(f"{page}-time", "value"),
        Output(f"{page}-live", "disabled"),
        Input(f"{page}-run", "value"),
        prevent_initial_call=True,
    )(slider_for)
    callback(
        Output(f"{page}-time", "max", allow_duplicate=True),
        Output(f"{page}-time", "marks", allow_duplicate=True),
        Output(f"{page}-time", "value", allow_duplicate=True),
        Input(f"{page}-live", "n_intervals"),
        State(f"{page}-run", "value"),
        State(f"{page}-time", "value"),
        State(f"{page}-time", "max"),
        prevent_initial_call=True,
    )(follow_live)


def no_run(page: str) -> Any:
    """What a page that shows one run says when the dashboards were opened on ensemble
    folders alone, whose replications kept no timeline: where to look instead. In both
    languages, since the page is drawn before the language is known."""
    from dash import dcc, html

    return html.Div(
        [
            html.P(
                "Ansambel ini tidak menyimpan timeline, jadi tidak ada run untuk ditampilkan di "
                "sini: lihat halaman Kontinjensi, atau jalankan twin evaluate --keep-timelines.",
                id=f"{page}-no-run",
            ),
            html.P(
                "This ensemble kept no timelines, so there is no run to show here: see the "
                "Contingency page, or run twin evaluate --keep-timelines."
            ),
            dcc.Link("Kontinjensi / Contingency", href="/contingency"),
        ],
        className="page",
    )


def follow_play(page: str, *, step_s: float = 60.0) -> None:
    """Wire a page's play button ``<page>-play``: odd clicks run its clock (the interval
    ``<page>-step`` moves the time slider ``<page>-time`` on by ``step_s`` simulated seconds
    a tick, back to the start at the end), even ones stop it."""
    from dash import Input, Output, State, callback

    from twin.dashboards.i18n import text

    @callback(
        Output(f"{page}-step", "disabled"),
        Output(f"{page}-play", "children"),
        Input(f"{page}-play", "n_clicks"),
        Input("lang", "value"),
    )
    def _play(clicks: int, lang: str) -> tuple[bool, str]:
        words = text(lang)
        playing = bool(clicks and clicks % 2)
        return not playing, words["rp_stop"] if playing else words["rp_play"]

    @callback(
        Output(f"{page}-time", "value", allow_duplicate=True),
        Input(f"{page}-step", "n_intervals"),
        State(f"{page}-time", "value"),
        State(f"{page}-time", "max"),
        prevent_initial_call=True,
    )
    def _advance(_: int, t: float | None, end: float) -> float:
        t = float(t or 0.0)
        return 0.0 if t >= end else min(t + step_s, end)
