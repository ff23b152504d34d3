"""The service hall for the planner: a run's day at the hall as a whole. Its key figures
(the standard kept, counting those who left unserved as missed; served within the
standard; left unserved; the 90th percentile wait; staff utilisation), each service's
visitors and minutes against its published standard, each counter group's utilisation and
longest queue, the queues through the day, and the standard kept by hour of arrival. One
run is one draw: the page says where plans are compared with their intervals (``twin
evaluate``, the contingency page) and sized (``twin optimise``)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from twin import kpi
from twin.dashboards import state
from twin.dashboards.i18n import hall_words, text
from twin.report.hall import counter_rows, kept_figure, minute_rows, queue_figure, visitor_rows

dash.register_page(__name__, path="/layanan", name="Layanan", title="Layanan")


def layout(**_: Any) -> html.Div:
    names = state.runs().halls()
    if not names:
        words = text(None)
        return html.Div(
            [html.H1(words["sv_title"]), html.P(words["hl_none"], id="service-none")],
            className="page",
        )
    return html.Div(
        [
            html.H1(id="service-h"),
            html.Div(
                dcc.Dropdown(
                    id="service-run",
                    options=names,
                    value=names[0],
                    clearable=False,
                    className="run",
                ),
                className="controls",
            ),
            html.Div(id="service-cards", className="cards"),
            html.P(id="service-one-draw", className="note"),
            html.Div(
                [
                    dcc.Graph(id="service-queues", config={"displaylogo": False}),
                    dcc.Graph(id="service-kept", config={"displaylogo": False}),
                ]
            ),
            html.H2(id="service-visitors-h"),
            html.Div(id="service-visitors"),
            html.H2(id="service-minutes-h"),
            html.Div(id="service-minutes"),
            html.P(id="service-spread", className="note"),
            html.H2(id="service-counters-h"),
            html.Div(id="service-counters"),
        ],
        className="page",
    )


def _table(rows: list[dict[str, str]], table_id: str) -> html.Table:
    heads = list(rows[0]) if rows else []
    return html.Table(
        [
            html.Tr([html.Th(h) for h in heads]),
            *(html.Tr([html.Td(v) for v in r.values()]) for r in rows),
        ],
        className="status-table",
        id=table_id,
    )


@callback(
    Output("service-h", "children"),
    Output("service-cards", "children"),
    Output("service-one-draw", "children"),
    Output("service-queues", "figure"),
    Output("service-kept", "figure"),
    Output("service-visitors-h", "children"),
    Output("service-visitors", "children"),
    Output("service-minutes-h", "children"),
    Output("service-minutes", "children"),
    Output("service-spread", "children"),
    Output("service-counters-h", "children"),
    Output("service-counters", "children"),
    Input("service-run", "value"),
    Input("lang", "value"),
)
def _show(name: str, lang: str) -> tuple[Any, ...]:
    words, view = text(lang), state.runs()[name]
    hw = hall_words(words)
    con = view.con
    services = view.memo("service_table", kpi.service_table)
    summary = view.memo("service_summary", kpi.service_summary)

    def pct(v: Any) -> str:
        return "–" if v is None else f"{v:.0%}"

    cards = [
        ("standard_kept", words["sv_kept"], pct(summary["service_standard_kept"])),
        ("within", words["sv_within"], pct(summary["service_within_standard"])),
        ("left", words["sv_left"], f"{summary['service_left_unserved']:,}"),
        (
            "wait90",
            words["sv_wait90"],
            kpi.format_duration(summary["service_wait_p90_s"], lang or "id")
            if summary["service_wait_p90_s"] is not None
            else "–",
        ),
        ("util", words["sv_util"], pct(summary["service_utilisation"])),
    ]
    return (
        f"{words['sv_title']}: {view.name}",
        [
            html.Div(
                [html.Div(title, className="card-title"), html.Div(value, className="card-value")],
                className="card",
                id=f"service-card-{key}",
            )
            for key, title, value in cards
        ],
        words["sv_one_draw"],
        queue_figure(view.memo("queue_series", kpi.queue_series), start=view.start, words=hw),
        kept_figure(
            view.memo("standard_by_hour", kpi.standard_by_hour), start=view.start, words=hw
        ),
        words["sv_visitors"],
        _table(visitor_rows(services, hw), "service-visitors-table"),
        words["sv_minutes"],
        _table(minute_rows(services, hw), "service-minutes-table"),
        words["sv_spread"],
        words["sv_counters"],
        _table(counter_rows(kpi.counter_table(con), hw), "service-counters-table"),
    )
