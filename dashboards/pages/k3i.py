"""The K3i command centre: sectors aman / waspada / rawan, roads by speed, incidents and
units on the map; KPI cards against their targets; a time slider with play and pause."""

from __future__ import annotations

import math
from typing import Any

import dash
import pandas as pd
from dash import ALL, Input, Output, Patch, State, callback, clientside_callback, dcc, html

from twin import kpi
from twin.auth import may
from twin.dashboards import state
from twin.dashboards.i18n import text
from twin.dashboards.signin import current_user
from twin.report import (
    STATUS_STYLE,
    k3i_images,
    k3i_map,
    k3i_traces,
    road_base_index,
    road_image,
)

dash.register_page(__name__, path="/", name="K3i", title="K3i")


def layout(**_: Any) -> html.Div:
    runs = state.runs()
    if not runs.names:  # ensemble folders alone, without timelines
        return state.no_run("k3i")
    first = runs[None]
    return html.Div(
        [
            html.H1(id="k3i-title"),
            html.P(id="k3i-sub", className="sub"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="k3i-run",
                        options=runs.names,
                        value=runs.names[0],
                        clearable=False,
                        className="run",
                    ),
                    html.Button(id="k3i-play", n_clicks=0, className="play"),
                    state.time_slider("k3i", first),
                    html.Span(id="k3i-clock", className="clock"),
                    dcc.Interval(id="k3i-tick", interval=1000, disabled=True),
                    dcc.Interval(id="k3i-live", interval=5000, disabled=not first.live),
                ],
                className="controls",
            ),
            html.Div(id="k3i-cards", className="cards"),
            html.Div(
                [
                    dcc.Graph(id="k3i-map", config={"displaylogo": False}, className="map"),
                    html.Div(
                        [
                            html.H3(id="k3i-alerts-title"),
                            html.Div(id="k3i-alerts"),
                            html.H3(id="k3i-details-title"),
                            html.Div(id="k3i-details"),
                        ],
                        className="details",
                    ),
                    dcc.Store(id="k3i-acked", data=0),
                    dcc.Store(id="k3i-window", data="city"),
                    dcc.Store(id="k3i-click"),
                ],
                className="main",
            ),
            html.H3(id="k3i-status-title"),
            html.Div(id="k3i-status"),
        ],
        className="page",
    )


state.follow_time("k3i")


@callback(
    Output("k3i-tick", "disabled"),
    Output("k3i-play", "children"),
    Input("k3i-play", "n_clicks"),
    Input("lang", "value"),
)
def _play(clicks: int, lang: str) -> tuple[bool, str]:
    playing = bool(clicks and clicks % 2)
    words = text(lang)
    return not playing, f"⏸ {words['pause']}" if playing else f"▶ {words['play']}"


@callback(
    Output("k3i-time", "value", allow_duplicate=True),
    Input("k3i-tick", "n_intervals"),
    State("k3i-time", "value"),
    State("k3i-run", "value"),
    prevent_initial_call=True,
)
def _tick(_: int, t: float, name: str) -> float:
    view = state.runs()[name]
    return 0.0 if t >= view.end else min(view.end, t + view.step)


@callback(
    Output("k3i-title", "children"),
    Output("k3i-sub", "children"),
    Output("k3i-clock", "children"),
    Output("k3i-cards", "children"),
    Output("k3i-map", "figure"),
    Output("k3i-status-title", "children"),
    Output("k3i-status", "children"),
    Output("k3i-details-title", "children"),
    Output("k3i-alerts-title", "children"),
    Output("k3i-alerts", "children"),
    Input("k3i-run", "value"),
    Input("k3i-time", "value"),
    Input("lang", "value"),
    Input("k3i-acked", "data"),
)
def _show(name: str, t: float, lang: str, _acked: int) -> tuple[Any, ...]:
    view, words = state.runs()[name], text(lang)
    t = float(t if t is not None else view.end)
    status = kpi.sector_status(view.con, t, view.rules, sectors=view.city.sectors.index)
    units, incidents = kpi.units_at(view.con, t), kpi.open_incidents_at(view.con, t)
    # A new run or language draws the whole map, its roads as one picture; a new moment
    # patches only what moves (a whole city's roads are megabytes: sent once, never per step).
    moment = dash.ctx.triggered_id in ("k3i-time", "k3i-acked")
    drawn = dict(
        roads=view.roads,
        speeds=kpi.road_speeds(view.con, t),
        units=units,
        incidents=incidents,
        labels={**words, **{f"unit_{k}": v for k, v in words.items()}},
    )
    if moment:
        fig = state.patch_traces(k3i_traces(view.city, status, **drawn), road_base_index(view.city))
    else:
        fig = k3i_map(view.city, status, tiles=state.tiles(), base=view.road_image, **drawn)
    numbers = kpi.k3i_cards(view.con, t, units=units, incidents=incidents)
    alerts = kpi.alerts(view.con, t, status, numbers)
    return (
        words["k3i"],
        words["k3i_sub"],
        f"{words['time']} {view.clock(t)}",
        _cards(numbers, words),
        fig,
        words["sectors"],
        _status_table(status, words),
        words["details"],
        f"⚠ {words['alerts']} ({int((~alerts['acknowledged']).sum())})",
        _alerts(alerts, words, numbers),
    )


# The map's window after a zoom or a pan, as the browser drew it (plotly widens one axis to
# keep the map's aspect, so the event's own ranges are not what is shown); "city" when
# zoomed back out. Other relayout events (a resize, a legend click) leave it alone, so they
# never cancel a picture on its way.
clientside_callback(
    """function (r) {
        const keep = window.dash_clientside.no_update;
        if (!r) { return keep; }
        if (r["xaxis.autorange"] || r["yaxis.autorange"]) { return "city"; }
        if (!Object.keys(r).some(k => k.startsWith("xaxis.range") || k.startsWith("yaxis.range"))) {
            return keep;
        }
        const full = document.querySelector("#k3i-map .js-plotly-plot")._fullLayout;
        const x = full.xaxis.range, y = full.yaxis.range;
        return [Math.min(...x), Math.min(...y), Math.max(...x), Math.max(...y)];
    }""",
    Output("k3i-window", "data"),
    Input("k3i-map", "relayoutData"),
    prevent_initial_call=True,
)


@callback(
    Output("k3i-map", "figure", allow_duplicate=True),
    Input("k3i-window", "data"),
    State("k3i-run", "value"),
    prevent_initial_call=True,
)
def _zoom(window: Any, name: str) -> Patch:
    """A zoomed map gets a new picture of the roads in its window, drawn as finely as the
    whole city's was (as a map engine fetches deeper tiles); zoomed back out, the whole
    city's picture again. Only the pictures change: the traces stay."""
    box = None if window == "city" else _window_box(window)
    if window != "city" and box is None:
        raise dash.exceptions.PreventUpdate  # not a window: nothing to draw
    view = state.runs()[name]
    base = view.road_image if box is None else road_image(view.city, view.roads, box)
    patch = Patch()
    patch["layout"]["images"] = k3i_images(view.city, state.tiles(), base)
    return patch


def _window_box(window: Any) -> tuple[float, float, float, float] | None:
    """The zoom's window (west, south, east, north) as the browser sent it, or None when it
    is not one a browser could have drawn: four finite numbers, west of east, south of
    north (it comes from outside: a NaN would make the picture fail)."""
    try:
        west, south, east, north = (float(v) for v in window)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(west + south + east + north) and west < east and south < north):
        return None
    return west, south, east, north


def _alerts(alerts: Any, words: dict[str, str], cards: dict[str, Any]) -> Any:
    if not len(alerts):
        return html.P(words["no_alerts"])
    items = []
    session = current_user()
    allowed = session is not None and may(session.role, "acknowledge")
    for a in alerts.itertuples(index=False):
        color, sign = STATUS_STYLE[a.status]
        if a.acknowledged:
            button: Any = html.Span(f"✓ {words['acked']}", className="acked")
        elif allowed:
            button = html.Button(words["ack"], id={"type": "k3i-ack", "alert": a.alert}, n_clicks=0)
        else:  # an observer, analyst or planner sees the alert, and who may act on it
            button = html.Span(f"({words['ack_not_allowed']})", className="ack-not-allowed")
        if a.sector:  # a sector's KPIs past their thresholds
            what = a.sector
            reason = "; ".join(
                f"{_word(k, words)} {_value(k, v, words)} ({words['limit']} {_value(k, lim, words)})"
                for k, v, lim in a.why
            )
        else:  # a card off its target: the card's own title, value and target
            key, value, _ = a.why[0]
            what = _card_title(key, cards, words)
            window = f" ({words['last_hour']})" if key in ("answered_110", "on_scene") else ""
            reason = f"{_value(key, value, words)}{window}, {words['target']} {_target(key, words)}"
        items.append(
            html.Li(
                [
                    html.B(f"{sign} {words['status_' + a.status]} ", style={"color": color}),
                    f"{what}: {reason} ",
                    button,
                ],
                className="alert acked" if a.acknowledged else "alert",
            )
        )
    return html.Ul(items, className="alerts")


def _word(key: str, words: dict[str, str]) -> str:
    """A KPI key in the page's words."""
    return words.get(f"{key}_kpi") or words.get(key, key)


def _value(key: str, value: Any, words: dict[str, str]) -> str:
    """A KPI's value as people read it: shares in %, times in seconds or minutes, counts as
    counts, indices with two decimals, in the page's language."""
    lang = words["lang"]
    if value is None or pd.isna(value):
        return "–"
    if key in ("answered_110", "on_scene", "geh_under_5"):
        return f"{value:.0%}"
    if key.endswith("_s"):
        return kpi.format_duration(value, lang)
    if key in ("open_incidents", "units_available"):
        return f"{value:.0f}"
    if key == "rasa_aman":
        return kpi.format_number(value, 0, lang)
    return kpi.format_number(value, 2, lang)


def _target(key: str, words: dict[str, str]) -> str:
    """A card's target as it is written on the card."""
    target, better, _ = kpi.CARD_TARGETS[key]
    return f"{'≥' if better == 'higher' else '<'} {_value(key, target, words)}"


def _card_title(key: str, cards: dict[str, Any], words: dict[str, str]) -> str:
    lang = words["lang"]
    if key == "answered_110":
        return words["answered_110"].format(
            target=kpi.format_duration(cards["answer_target_s"], lang)
        )
    if key == "on_scene":
        return words["on_scene_card"].format(
            target=kpi.format_duration(cards["on_scene_target_s"], lang)
        )
    return words[key]


@callback(
    Output("k3i-acked", "data"),
    Input({"type": "k3i-ack", "alert": ALL}, "n_clicks"),
    State("k3i-run", "value"),
    State("k3i-time", "value"),
    State("k3i-acked", "data"),
    prevent_initial_call=True,
)
def _acknowledge(clicks: list[int], name: str, t: float, count: int) -> int:
    """The signed-in officer acknowledged an alert: an event on the timeline, in their name
    (see RunView.acknowledge). The sign-in gate let only a role that may acknowledge run
    this callback."""
    trigger = dash.ctx.triggered_id
    session = current_user()
    if session is None or not may(session.role, "acknowledge"):  # the gate's, said twice
        raise dash.exceptions.PreventUpdate
    if not trigger or not any(clicks):
        return dash.no_update
    view = state.runs()[name]
    t = float(t if t is not None else view.end)
    status = kpi.sector_status(view.con, t, view.rules)
    numbers = kpi.k3i_cards(view.con, t)
    rows = kpi.alerts(view.con, t, status, numbers)
    row = rows[rows["alert"] == trigger["alert"]]
    if not len(row):
        return dash.no_update
    view.acknowledge(t, row.iloc[0].to_dict(), session.user)
    return (count or 0) + 1


def _cards(c: dict[str, Any], words: dict[str, str]) -> list[html.Div]:
    """The KPI cards: each marked with its status by :data:`twin.kpi.CARD_TARGETS`, the
    same status its alert gives (✓ aman, ! waspada, ✖ rawan, – no data yet)."""
    levels = kpi.card_levels(c)

    def card(key: str, value: str, note: str) -> html.Div:
        level = levels.get(key)
        mark = "–" if level is None else STATUS_STYLE[level][1]
        return html.Div(
            [
                html.Div(_card_title(key, c, words), className="card-title"),
                html.Div(f"{mark} {value}", className="card-value"),
                html.Div(note, className="card-note"),
            ],
            className="card" if level is None else f"card status-{level}",
            id=f"k3i-card-{key}",
        )

    def shown(key: str) -> str:
        value = c[key]
        return words["no_data"] if value is None or pd.isna(value) else _value(key, value, words)

    hour = f"{words['last_hour']} · {words['target']}"
    cards = [
        card("answered_110", shown("answered_110"), f"{hour} {_target('answered_110', words)}"),
        card("on_scene", shown("on_scene"), f"{hour} {_target('on_scene', words)}"),
        card("tti", shown("tti"), f"{words['target']} {_target('tti', words)}"),
        card(
            "units_available",
            f"{c['units_available']} {words['of']} {c['units']}",
            f"{words['target']} {_target('units_available', words)}",
        ),
        card("open_incidents", str(c["open_incidents"]), ""),
    ]
    if c["geh_under_5"] is not None:
        good = c["geh_under_5"] >= kpi.GEH_TARGET
        levels["geh"] = "aman" if good else "waspada"
        cards.append(card("geh", shown("geh_under_5"), f"{words['target']} ≥ {kpi.GEH_TARGET:.0%}"))
    return cards


def _status_table(status: pd.DataFrame, words: dict[str, str]) -> html.Table:
    def why(r: Any) -> str:
        if r.status == kpi.NO_DATA:
            return words["no_data_why"]
        return "; ".join(
            f"{_word(k, words)} {_value(k, v, words)} {'≤' if k == 'rasa_aman' else '≥'} "
            f"{_value(k, lim, words)}"
            for k, v, lim, _ in r.reasons
        )

    head = html.Tr([html.Th(words["sector"]), html.Th(words["status"]), html.Th(words["reasons"])])
    rows = []
    for r in status.itertuples(index=False):
        color, sign = STATUS_STYLE[r.status]
        rows.append(
            html.Tr(
                [
                    html.Td(r.sector),
                    html.Td(
                        f"{sign} {words['status_' + r.status]}",
                        style={"color": color, "fontWeight": "bold"},
                    ),
                    html.Td(why(r)),
                ],
                className=f"status-{r.status}",
            )
        )
    return html.Table([head, *rows], className="status-table")


# A click on the map, with where it fell in longitude and latitude: a click inside a
# sector's area names no point of a trace (the sectors of one status are one trace), so
# the place tells which sector it was.
clientside_callback(
    """function (click) {
        if (!click || !click.points || !click.points.length) {
            return window.dash_clientside.no_update;
        }
        const point = Object.assign({}, click.points[0]);
        const full = document.querySelector("#k3i-map .js-plotly-plot")._fullLayout;
        if (point.xPixel !== undefined && point.yPixel !== undefined) {
            point.lon = full.xaxis.p2c(point.xPixel);
            point.lat = full.yaxis.p2c(point.yPixel);
        }
        return point;
    }""",
    Output("k3i-click", "data"),
    Input("k3i-map", "clickData"),
    prevent_initial_call=True,
)


def _sector_at(city: Any, lon: Any, lat: Any) -> str | None:
    """The sector holding a place on the map, or None (outside every sector, or no place)."""
    import shapely

    try:
        where = shapely.Point(float(lon), float(lat))
    except (TypeError, ValueError):
        return None
    hit = city.sectors.index[city.sectors.geometry.covers(where).to_numpy()]
    return str(hit[0]) if len(hit) else None


@callback(
    Output("k3i-details", "children"),
    Input("k3i-click", "data"),
    Input("lang", "value"),
    State("k3i-run", "value"),
    State("k3i-time", "value"),
)
def _details(point: Any, lang: str, name: str, t: float) -> Any:
    words = text(lang)
    if not point:
        return html.P(words["click_hint"])
    view = state.runs()[name]
    key = point.get("customdata")
    if isinstance(key, list):  # a click inside a filled area gives the trace's whole array
        key = None
    if key is None:  # inside an area: the sector under the click
        key = _sector_at(view.city, point.get("lon"), point.get("lat"))
    t = float(t if t is not None else view.end)
    if key in view.city.sectors.index:
        status = kpi.sector_status(view.con, t, view.rules, sectors=view.city.sectors.index)
        row = status.set_index("sector").loc[key]
        color, sign = STATUS_STYLE[row["status"]]
        if row["status"] == kpi.NO_DATA:
            items = [html.Li(words["no_data_why"])]
        else:
            items = [
                html.Li(f"{_word(k, words)}: {_value(k, row[k], words)}")
                for k in ("tti", "open_incidents", "response_p90_s", "rasa_aman")
            ]
        return [
            html.H4(
                f"{words['sector']} {key}: {sign} {words['status_' + row['status']]}",
                style={"color": color},
            ),
            html.Ul(items),
        ]
    units = kpi.units_at(view.con, t).set_index("unit")
    if key in units.index:
        u = units.loc[key]
        return [
            html.H4(f"{words['unit']} {key}"),
            html.Ul(
                [
                    html.Li(f"{words['state']}: {words.get(u['state'], u['state'])}"),
                    html.Li(f"{words['incident']}: {u['incident'] or '–'}"),
                    html.Li(f"{words['sector']}: {u['sector']}"),
                ]
            ),
        ]
    incidents = kpi.open_incidents_at(view.con, t).set_index("incident")
    if key in incidents.index:
        i = incidents.loc[key]
        return [
            html.H4(f"{words['incident']} {key}"),
            html.Ul(
                [
                    html.Li(f"{i['incident_type']}, P{i['priority']}"),
                    html.Li(f"{words['sector']}: {i['sector']}"),
                    html.Li(f"{words['time']}: {view.clock(float(i['t']))}"),
                ]
            ),
        ]
    return html.P(words["click_hint"])
