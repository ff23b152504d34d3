"""The exercise's page, one for every role: a trainee sees their team's inbox of injects,
the city map, their units and orders, and gives orders; the trainer sees every team and
runs the exercise (pause, speed, release / hold / skip an inject, write one); an observer
sees every team and cannot act. What the page sends goes through the same functions as
the order API (:mod:`twin.dashboards.orders`), and the gate checks each action's role.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html

from twin import kpi
from twin.dashboards import state
from twin.dashboards.i18n import text
from twin.dashboards.orders import exercise_state, submit_control, submit_order
from twin.dashboards.parts import inbox_cards, orders_table
from twin.dashboards.signin import current_user
from twin.report import k3i_map, k3i_traces, road_base_index
from twin.scenario.exercise import ORDERS

dash.register_page(__name__, path="/exercise", name="Latihan", title="Latihan")

#: Milliseconds between the page's looks at the exercise.
TICK_MS = 1000


def _view() -> Any:
    """The running exercise's live view; a callback of a server with none does nothing."""
    from dash.exceptions import PreventUpdate

    view = state.runs().exercise()
    if view is None:
        raise PreventUpdate
    return view


def layout(**_: Any) -> html.Div:
    session = current_user()
    view = state.runs().exercise()
    if view is None or session is None:
        words = text(None)
        return html.Div([html.H1(words["ex_title"]), html.P(words["ex_none"])], className="page")
    # every role's page holds every part (Dash wants each callback's parts), and shows its
    # own: the gate refuses any other role's action
    trainee = session.role == "trainee"
    trainer = session.role == "trainer"
    return html.Div(
        [
            html.H1(id="ex-h"),
            html.Div(
                [html.Span(id="ex-clock", className="clock"), html.Span(id="ex-status")],
                className="controls",
            ),
            html.P(id="ex-who", className="sub"),
            _trainer_controls(shown=trainer),
            _order_form(view, session.team if trainee else None, shown=trainee),
            html.Div(
                [
                    dcc.Graph(id="ex-map", config={"displaylogo": False}, className="map"),
                    html.Div([html.H2(id="ex-inbox-h"), html.Div(id="ex-inbox")], className="side"),
                ],
                className="row",
            ),
            html.H2(id="ex-orders-h"),
            html.Div(id="ex-orders"),
            html.H2(id="ex-units-h"),
            html.Div(id="ex-units"),
            dcc.Interval(id="ex-tick", interval=TICK_MS),
        ],
        className="page",
    )


def _order_form(view: Any, team: str | None, *, shown: bool) -> html.Div:
    teams = list(view.meta.get("teams", {}).get("teams", []))
    mine = next((t for t in teams if t["name"] == team), {"units": []})
    return html.Div(
        [
            html.H2(id="ex-give-h"),
            dcc.Dropdown(id="ex-kind", options=list(ORDERS), value="dispatch", clearable=False),
            dcc.Dropdown(id="ex-unit", options=mine["units"], placeholder="unit"),
            dcc.Dropdown(id="ex-incident", options=[], placeholder="incident"),
            dcc.Input(id="ex-sector", placeholder="S01", debounce=True),
            dcc.Input(id="ex-lat", type="number", placeholder="lat"),
            dcc.Input(id="ex-lon", type="number", placeholder="lon"),
            dcc.Dropdown(
                id="ex-to-team",
                options=[t["name"] for t in teams if t["name"] != team],
                placeholder="team",
            ),
            dcc.Textarea(id="ex-text", placeholder="…"),
            html.Button(id="ex-send", n_clicks=0),
            html.P(id="ex-sent", role="status"),
        ],
        className="form",
        id="ex-form",
        hidden=not shown,
    )


def _trainer_controls(*, shown: bool) -> html.Div:
    return html.Div(
        [
            html.H2(id="ex-trainer-h"),
            html.Button(id="ex-pause", n_clicks=0),
            html.Button(id="ex-resume", n_clicks=0),
            dcc.Input(id="ex-speed", type="number", min=0.1, max=1000, step=0.1),
            html.Button(id="ex-set-speed", n_clicks=0),
            dcc.Dropdown(id="ex-inject", options=[], placeholder="inject"),
            html.Button(id="ex-release", n_clicks=0),
            html.Button(id="ex-hold", n_clicks=0),
            html.Button(id="ex-skip", n_clicks=0),
            html.H3(id="ex-write-h"),
            dcc.Input(id="ex-w-title", placeholder="…"),
            dcc.Dropdown(id="ex-w-team", options=[], value="all", clearable=False),
            dcc.Textarea(id="ex-w-text", placeholder="…"),
            html.Button(id="ex-w-send", n_clicks=0),
            html.P(id="ex-control-sent", role="status"),
        ],
        className="form",
        id="ex-trainer",
        hidden=not shown,
    )


@callback(
    Output("ex-h", "children"),
    Output("ex-clock", "children"),
    Output("ex-status", "children"),
    Output("ex-who", "children"),
    Output("ex-map", "figure"),
    Output("ex-inbox-h", "children"),
    Output("ex-inbox", "children"),
    Output("ex-orders-h", "children"),
    Output("ex-orders", "children"),
    Output("ex-units-h", "children"),
    Output("ex-units", "children"),
    Input("ex-tick", "n_intervals"),
    Input("lang", "value"),
)
def _tick(_: int, lang: str) -> tuple[Any, ...]:
    words, view, session = text(lang), _view(), current_user()
    assert view is not None and session is not None
    team = session.team if session.role == "trainee" else None
    with state.LOCK:
        state.fresh(view)
        now = exercise_state(view, team)
        t = float(view.end)
        status = kpi.sector_status(view.con, t, view.rules, sectors=view.city.sectors.index)
        units = kpi.units_at(view.con, t)
        incidents = kpi.open_incidents_at(view.con, t)
    if team is not None:
        units = units[units["unit"].isin([u["unit"] for u in now["units"]])]
    drawn = dict(
        roads=view.roads,
        units=units,
        incidents=incidents,
        labels={**words, **{f"unit_{k}": v for k, v in words.items()}},
    )
    # the roads' picture goes once; a tick patches what moved
    if dash.ctx.triggered_id == "ex-tick":
        fig = state.patch_traces(k3i_traces(view.city, status, **drawn), road_base_index(view.city))
    else:
        fig = k3i_map(view.city, status, tiles=state.tiles(), base=view.road_image, **drawn)
    run = words["ex_paused"] if now["paused"] else words["ex_running"]
    pace = words["ex_speed"].format(speed=f"{now['speed']:g}")
    said = f" · {run} · {pace}"
    who = words["ex_team"].format(team=team) if team else words["ex_all_teams"]
    return (
        f"{words['ex_title']}: {now['title'] or now['exercise']}",
        now["clock"],
        said,
        who,
        fig,
        words["ex_inbox"],
        inbox_cards(now["inbox"], words),
        words["ex_orders"],
        orders_table(now["orders"], words),
        words["ex_units"],
        _units(now["units"], words),
    )


def _units(items: list[dict[str, Any]], words: dict[str, str]) -> Any:
    head = html.Tr([html.Th(words[k]) for k in ("unit", "state", "incident")])
    rows = [
        html.Tr(
            [
                html.Td(u["unit"]),
                html.Td(words.get(u["state"], u["state"]), className=f"state-{u['state']}"),
                html.Td(u["incident"] or ""),
            ],
            id=f"unit-{u['unit']}",
        )
        for u in items
    ]
    return html.Table([head, *rows], className="table")


# -- a trainee's orders -------------------------------------------------------------------


@callback(
    Output("ex-give-h", "children"),
    Output("ex-send", "children"),
    Output("ex-kind", "options"),
    Output("ex-incident", "options"),
    Input("ex-tick", "n_intervals"),
    Input("lang", "value"),
)
def _form_words(_: int, lang: str) -> tuple[Any, ...]:
    words, view = text(lang), _view()
    with state.LOCK:
        incidents = kpi.open_incidents_at(view.con, float(view.end)) if view else None
    options = [] if incidents is None else list(incidents["incident"])
    kinds = [{"label": words["order_" + k], "value": k} for k in ORDERS]
    return words["ex_give"], words["ex_send"], kinds, options


@callback(
    Output("ex-lat", "value"),
    Output("ex-lon", "value"),
    Input("ex-map", "clickData"),
    prevent_initial_call=True,
)
def _place(click: Any) -> tuple[Any, Any]:
    point = (click or {}).get("points", [{}])[0]
    return point.get("y"), point.get("x")


@callback(
    Output("ex-sent", "children"),
    Input("ex-send", "n_clicks"),
    State("ex-kind", "value"),
    State("ex-unit", "value"),
    State("ex-incident", "value"),
    State("ex-sector", "value"),
    State("ex-lat", "value"),
    State("ex-lon", "value"),
    State("ex-to-team", "value"),
    State("ex-text", "value"),
    State("lang", "value"),
    prevent_initial_call=True,
)
def _order(
    _: int,
    kind: str,
    unit: str | None,
    incident: str | None,
    sector: str | None,
    lat: float | None,
    lon: float | None,
    to_team: str | None,
    said: str | None,
    lang: str,
) -> str:
    words, view, session = text(lang), _view(), current_user()
    assert view is not None and session is not None
    body: dict[str, Any] = {"order": kind, "text": said or ""}
    needs = ORDERS.get(kind, "")
    if unit and "unit" in needs:
        body["unit"] = unit
    if incident and "incident" in needs:
        body["incident"] = incident
    if sector and "sector" in needs:
        body["sector"] = sector.strip()
    if lat is not None and lon is not None and "place" in needs:
        body["place"] = {"lat": lat, "lon": lon}
    if to_team and "to_team" in needs:
        body["to_team"] = to_team
    status, doc = submit_order(view, session, body)
    if status == 202:
        return words["ex_sent"].format(order=words["order_" + kind])
    return str(doc["error"])


# -- the trainer ----------------------------------------------------------------------------


@callback(
    Output("ex-trainer-h", "children"),
    Output("ex-pause", "children"),
    Output("ex-resume", "children"),
    Output("ex-set-speed", "children"),
    Output("ex-release", "children"),
    Output("ex-hold", "children"),
    Output("ex-skip", "children"),
    Output("ex-write-h", "children"),
    Output("ex-w-send", "children"),
    Output("ex-inject", "options"),
    Output("ex-w-team", "options"),
    Input("ex-tick", "n_intervals"),
    Input("lang", "value"),
)
def _trainer_words(_: int, lang: str) -> tuple[Any, ...]:
    words, view, session = text(lang), _view(), current_user()
    assert view is not None and session is not None
    with state.LOCK:
        sent = set(
            view.con.execute("SELECT inject FROM timeline WHERE kind = 'inject_released'").df()[
                "inject"
            ]
        )
    waiting = [
        {"label": f"{i.get('at') or '↳'} {i['id']}: {i['title']}", "value": i["id"]}
        for i in view.meta.get("msel", [])
        if i["id"] not in sent and session.role == "trainer"  # no spoilers for the teams
    ]
    teams = ["all", *(t["name"] for t in view.meta.get("teams", {}).get("teams", []))]
    return (
        words["ex_trainer"],
        words["ex_pause"],
        words["ex_resume"],
        words["ex_set_speed"],
        words["ex_release"],
        words["ex_hold"],
        words["ex_skip"],
        words["ex_write"],
        words["ex_write_send"],
        waiting,
        teams,
    )


@callback(
    Output("ex-control-sent", "children"),
    Input("ex-pause", "n_clicks"),
    Input("ex-resume", "n_clicks"),
    Input("ex-set-speed", "n_clicks"),
    Input("ex-release", "n_clicks"),
    Input("ex-hold", "n_clicks"),
    Input("ex-skip", "n_clicks"),
    Input("ex-w-send", "n_clicks"),
    State("ex-speed", "value"),
    State("ex-inject", "value"),
    State("ex-w-title", "value"),
    State("ex-w-team", "value"),
    State("ex-w-text", "value"),
    State("lang", "value"),
    prevent_initial_call=True,
)
def _control(*args: Any) -> str:
    speed, inject, title, team, said, lang = args[7:]
    words, view, session = text(lang), _view(), current_user()
    assert view is not None and session is not None
    action = {
        "ex-pause": "pause",
        "ex-resume": "resume",
        "ex-set-speed": "speed",
        "ex-release": "release",
        "ex-hold": "hold",
        "ex-skip": "skip",
        "ex-w-send": "write",
    }[dash.ctx.triggered_id]
    body: dict[str, Any] = {"action": action}
    if action == "speed":
        body["speed"] = speed
    elif action in ("release", "hold", "skip"):
        body["inject"] = inject
    elif action == "write":
        body["write"] = {"title": title or "", "team": team or "all", "text": said or ""}
    status, doc = submit_control(view, session, body)
    return words["ex_control_sent"].format(action=action) if status == 202 else str(doc["error"])
