"""The replay of a finished exercise, for the after-action review in the classroom: its
clock (a time slider, and a play button that runs it a minute a step), the K3i map at that
moment, every team's inbox and orders as they stood then, and what the expected action
would have changed at each key decision (``twin exercise whatif``). It shows the run
folders of exercises the dashboards were opened on: ``twin dash runs/NAME``."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from twin import kpi
from twin.dashboards import state
from twin.dashboards.i18n import kpi_label, text
from twin.dashboards.orders import exercise_state
from twin.dashboards.parts import inbox_cards, orders_table
from twin.report import k3i_map

dash.register_page(__name__, path="/replay", name="Putar ulang", title="Putar ulang")

#: Milliseconds between the play button's steps, and simulated seconds per step.
PLAY_MS = 700
PLAY_STEP_S = 60.0


def layout(**_: Any) -> html.Div:
    names = state.runs().replays()
    if not names:
        words = text(None)
        return html.Div([html.H1(words["rp_title"]), html.P(words["rp_none"])], className="page")
    first = state.runs()[names[0]]
    return html.Div(
        [
            html.H1(id="replay-h"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="replay-run",
                        options=names,
                        value=names[0],
                        clearable=False,
                        className="run",
                    ),
                    state.time_slider("replay", first),
                    html.Button(id="replay-play", n_clicks=0),
                    html.Span(id="replay-clock", className="clock"),
                ],
                className="controls",
            ),
            dcc.Interval(id="replay-live", disabled=True),  # a finished exercise: no tick
            dcc.Interval(id="replay-step", interval=PLAY_MS, disabled=True),
            html.Div(
                [
                    dcc.Graph(id="replay-map", config={"displaylogo": False}, className="map"),
                    html.Div(
                        [html.H2(id="replay-inbox-h"), html.Div(id="replay-inbox")],
                        className="side",
                    ),
                ],
                className="row",
            ),
            html.H2(id="replay-orders-h"),
            html.Div(id="replay-orders"),
            html.H2(id="replay-whatif-h"),
            html.Div(id="replay-whatif"),
        ],
        className="page",
    )


state.follow_time("replay")
state.follow_play("replay", step_s=PLAY_STEP_S)


@callback(
    Output("replay-h", "children"),
    Output("replay-clock", "children"),
    Output("replay-map", "figure"),
    Output("replay-inbox-h", "children"),
    Output("replay-inbox", "children"),
    Output("replay-orders-h", "children"),
    Output("replay-orders", "children"),
    Output("replay-whatif-h", "children"),
    Output("replay-whatif", "children"),
    Input("replay-run", "value"),
    Input("replay-time", "value"),
    Input("lang", "value"),
)
def _show(name: str, t: float | None, lang: str) -> tuple[Any, ...]:
    words, view = text(lang), state.runs()[name]
    t = float(t if t is not None else view.end)
    now = exercise_state(view, None, t)
    status = kpi.sector_status(view.con, t, view.rules, sectors=view.city.sectors.index)
    fig = k3i_map(
        view.city,
        status,
        tiles=state.tiles(),
        base=view.road_image,
        roads=view.roads,
        units=kpi.units_at(view.con, t),
        incidents=kpi.open_incidents_at(view.con, t),
        labels={**words, **{f"unit_{k}": v for k, v in words.items()}},
    )
    paused = f" · {words['ex_paused']}" if now["paused"] else ""
    return (
        f"{words['rp_title']}: {now['title'] or now['exercise']}",
        f"{words['time']} {now['clock']}{paused}",
        fig,
        words["ex_inbox"],
        inbox_cards(now["inbox"], words),
        words["ex_orders"],
        orders_table(now["orders"], words, table_id="replay-orders-table"),
        words["rp_whatif"],
        _whatif(view, words, lang),
    )


def _whatif(view: Any, words: dict[str, str], lang: str) -> Any:
    """Each key decision and its figures (``twin exercise whatif``), or how to make them."""
    from twin.exercise.whatif import decision_rows, load_whatif

    saved = load_whatif(view.path)
    if saved is None:
        return html.P(words["rp_whatif_none"].format(run=view.path))
    check = saved["check"]
    if check.startswith("identical"):
        check = words["rp_identical"].format(until=saved["until"])
    parts: list[Any] = [
        html.P(
            words["rp_whatif_about"].format(
                n=saved["replications"], until=saved["until"], check=check
            )
        )
    ]
    for d in saved["decisions"]:
        head = f"{d['inject']} ({d['team']}), {words.get('ex_' + d['verdict'], d['verdict'])}: "
        parts.append(html.P([html.B(head), _play_words(d, words, view)]))
        if d["why_not"]:
            continue
        heads = [
            words[k] for k in ("rp_measure", "rp_as_played", "rp_expected", "rp_diff", "rp_verdict")
        ]
        rows = [
            html.Tr(
                [
                    html.Td(kpi_label(r["kpi"], row[0], lang)),
                    *(html.Td(c) for c in row[1:4]),
                    html.Td(words.get(f"verdict_{r['verdict']}", row[4])),
                ]
            )
            for r, row in zip(d["figures"], decision_rows(d), strict=True)
        ]
        parts.append(
            html.Table(
                [html.Tr([html.Th(h) for h in heads]), *rows],
                className="table",
                id=f"replay-whatif-{d['inject']}",
            )
        )
    return parts


def _play_words(d: dict[str, Any], words: dict[str, str], view: Any) -> str:
    """What the expected run of decision ``d`` played, or why it has none, in the page's
    language (``whatif.json`` says it in English)."""
    order = words.get(f"order_{d['expected']}", d["expected"])
    if d["why_not"]:
        if d["expected"] in ("public_message", "mutual_aid"):
            return words["rp_why_model"].format(order=order)
        return words["rp_why_other"].format(why=d["why_not"])
    when = view.clock(float(d["released_s"]))
    if d["kind"] == "move":
        delay = f"{float(d['delay_s']) / 60:.1f}"
        return words["rp_play_move"].format(
            order=order,
            team=d.get("by") or d["team"],
            order_id=d["order_id"],
            when=when,
            delay=delay,
        )
    if d["kind"] == "book":
        return words["rp_play_book"].format(when=when)
    return words["rp_play_order"].format(order=order, team=d.get("by") or d["team"], when=when)
