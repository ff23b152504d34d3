"""The service hall's queue display, as the screen in the hall shows the public: the ticket
called now and to which counter, the calls before it, each counter group's counters (the
ticket each serves, or closed) and its queue, and for each service how many wait and how
long the last half hour's waits were. For a finished run, a time slider and a play
button; for a live twin, the present. It shows the runs with a service hall (``twin
service SCENARIO``, then ``twin dash runs/NAME``)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from twin import kpi
from twin.dashboards import state
from twin.dashboards.i18n import text

dash.register_page(__name__, path="/antrian", name="Antrian", title="Antrian")

#: Milliseconds between the play button's steps, and simulated seconds per step.
PLAY_MS, PLAY_STEP_S = 700, 60.0


def layout(**_: Any) -> html.Div:
    names = state.runs().halls()
    if not names:
        words = text(None)
        return html.Div(
            [html.H1(words["hl_title"]), html.P(words["hl_none"], id="hall-none")],
            className="page",
        )
    first = state.runs()[names[0]]
    return html.Div(
        [
            html.H1(id="hall-h"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="hall-run",
                        options=names,
                        value=names[0],
                        clearable=False,
                        className="run",
                    ),
                    state.time_slider("hall", first),
                    html.Button(id="hall-play", n_clicks=0),
                    html.Span(id="hall-clock", className="clock"),
                ],
                className="controls",
            ),
            dcc.Interval(id="hall-live", interval=5000, disabled=not first.live),
            dcc.Interval(id="hall-step", interval=PLAY_MS, disabled=True),
            html.Div(id="hall-board", className="hall-board"),
        ],
        className="page",
    )


state.follow_time("hall")
state.follow_play("hall", step_s=PLAY_STEP_S)


@callback(
    Output("hall-h", "children"),
    Output("hall-clock", "children"),
    Output("hall-board", "children"),
    Input("hall-run", "value"),
    Input("hall-time", "value"),
    Input("lang", "value"),
)
def _show(name: str, t: float | None, lang: str) -> tuple[Any, ...]:
    words, view = text(lang), state.runs()[name]
    t = float(t if t is not None else view.end)
    now = kpi.hall_at(view.con, t)
    return (
        f"{words['hl_title']}: {view.name}",
        f"{words['time']} {view.clock(t)}",
        board(now, words, view.clock),
    )


def board(now: dict[str, Any], words: dict[str, str], clock: Any) -> list[Any]:
    """The screen's parts: the call now, the calls before it, the counters, the services."""
    calls = now["calls"].to_dict("records")
    if calls:
        last = calls[0]
        calling = [
            html.Div(words["hl_calling"]),
            html.Div(last["ticket"], className="ticket", id="hall-now"),
            html.Div(
                words["hl_to"].format(counter=last["counter"], desk=int(last["desk"])),
                className="where",
            ),
        ]
    else:
        calling = [html.Div(words["hl_calling"]), html.Div(words["hl_nobody"], id="hall-now")]
    earlier = html.Ul(
        [
            html.Li(f"{c['ticket']} → {c['counter']} {int(c['desk'])} ({clock(float(c['t']))})")
            for c in calls[1:]
        ],
        id="hall-earlier",
    )
    serving = {(d["counter"], int(d["desk"])): d["ticket"] for d in now["desks"].to_dict("records")}
    groups = []
    for g in now["counters"].to_dict("records"):
        desks = []
        for desk in range(1, int(g["counters"]) + 1):
            ticket = serving.get((g["counter"], desk))
            closed = ticket is None and desk > int(g["open"])
            shown = ticket or (words["hl_closed"] if closed else words["hl_free"])
            desks.append(
                html.Div(
                    [
                        html.Span(words["hl_desk"].format(desk=desk)),
                        html.Span(shown, className="ticket" if ticket else ""),
                    ],
                    className="hall-desk closed" if closed else "hall-desk",
                )
            )
        groups.append(
            html.Div(
                [
                    html.H3(g["counter"]),
                    html.Div(
                        words["hl_open"].format(open=int(g["open"]), counters=int(g["counters"]))
                    ),
                    *desks,
                    html.Div(
                        words["hl_waiting"].format(n=int(g["waiting"])), className="hall-waiting"
                    ),
                ],
                className="hall-group",
                id=f"hall-group-{g['counter']}",
            )
        )
    head = html.Tr(
        [html.Th(words[k]) for k in ("hl_letter", "hl_service", "hl_queue", "hl_recent", "hl_done")]
    )
    rows = [
        html.Tr(
            [
                html.Td(s["letter"]),
                html.Td(s["title"]),
                html.Td(str(int(s["waiting"]))),
                html.Td(
                    "–"
                    if s["recent_wait_s"] is None
                    else words["hl_min"].format(m=round(float(s["recent_wait_s"]) / 60))
                ),
                html.Td(str(int(s["served"]))),
            ]
        )
        for s in now["services"].to_dict("records")
    ]
    return [
        html.Div(
            [
                html.Div(calling, className="hall-calling"),
                html.Div([html.H3(words["hl_earlier"]), earlier], className="hall-earlier"),
            ],
            className="hall-top",
        ),
        html.Div(groups, className="hall-groups"),
        html.H2(words["hl_services"]),
        html.Table([head, *rows], className="status-table", id="hall-services"),
    ]
