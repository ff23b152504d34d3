"""The unit board: every unit's state now, and its day so far."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from twin import kpi
from twin.dashboards import state
from twin.dashboards.i18n import text
from twin.report import UNIT_STYLE, unit_board_figure

UNKNOWN = ("circle", "#424242", "")

dash.register_page(__name__, path="/units", name="Unit", title="Unit")

#: A sign beside each state's word, so the board reads without colour.
SIGNS = {
    "available": "●",
    "dispatched": "▲",
    "en_route": "▶",
    "on_scene": "■",
    "transporting": "◆",
    "at_hospital": "⬢",
    "returning": "○",
    "off_duty": "✖",
}


def layout(**_: Any) -> html.Div:
    runs = state.runs()
    if not runs.names:  # ensemble folders alone, without timelines
        return state.no_run("units")
    first = runs[None]
    return html.Div(
        [
            html.H1(id="units-title"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="units-run",
                        options=runs.names,
                        value=runs.names[0],
                        clearable=False,
                        className="run",
                    ),
                    state.time_slider("units", first),
                    html.Span(id="units-clock", className="clock"),
                ],
                className="controls",
            ),
            dcc.Interval(id="units-live", interval=5000, disabled=not first.live),
            html.Div(id="units-table"),
            dcc.Graph(id="units-board", config={"displaylogo": False}),
        ],
        className="page",
    )


state.follow_time("units")


@callback(
    Output("units-title", "children"),
    Output("units-clock", "children"),
    Output("units-table", "children"),
    Output("units-board", "figure"),
    Input("units-run", "value"),
    Input("units-time", "value"),
    Input("lang", "value"),
)
def _show(name: str, t: float, lang: str) -> tuple[Any, ...]:
    view, words = state.runs()[name], text(lang)
    t = float(t if t is not None else view.end)
    units = kpi.units_at(view.con, t)
    head = html.Tr(
        [html.Th(words[k]) for k in ("unit", "state", "incident", "sector")]
        + [html.Th(words["time"])]
    )
    rows = []
    for u in units.itertuples(index=False):
        color = UNIT_STYLE.get(u.state, UNKNOWN)[1]
        rows.append(
            html.Tr(
                [
                    html.Td(u.unit),
                    html.Td(
                        f"{SIGNS.get(u.state, '?')} {words.get(u.state, u.state)}",
                        style={"color": color},
                    ),
                    html.Td(u.incident or "–"),
                    html.Td(u.sector or "–"),
                    html.Td(view.clock(float(u.since))),
                ],
                className=f"unit-{u.state}",
            )
        )
    fig = unit_board_figure(
        kpi.unit_spells(view.con, view.end), start=view.start, labels=words, now=t
    )
    return (
        words["unit_board"],
        f"{words['time']} {view.clock(t)}",
        html.Table([head, *rows], className="status-table"),
        fig,
    )
