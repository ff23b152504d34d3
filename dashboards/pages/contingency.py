"""Contingency: two or more runs or plans side by side, their differences, and maps of
the difference between two of them."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback, dcc, html
from twin.dashboards import state
from twin.dashboards.i18n import kpi_label, text

from twin import kpi
from twin.report import mean_sector_tti, sector_map

dash.register_page(__name__, path="/contingency", name="Kontinjensi", title="Kontinjensi")


def layout(**_: Any) -> html.Div:
    names = state.RUNS.names
    return html.Div(
        [
            html.H1(id="cont-title"),
            html.Label(id="cont-runs-label"),
            dcc.Dropdown(id="cont-runs", options=names, value=names[:2], multi=True),
            html.Div(id="cont-table"),
            html.P(id="cont-ci", className="sub"),
            html.H3(id="cont-map-title"),
            dcc.RadioItems(id="cont-measure", value="tti", inline=True, options=_measures("id")),
            dcc.Graph(id="cont-map", config={"displaylogo": False}),
        ],
        className="page",
    )  # fmt: skip


@callback(
    Output("cont-title", "children"), Output("cont-runs-label", "children"), Output("cont-table", "children"),
    Output("cont-ci", "children"),
    Input("cont-runs", "value"), Input("lang", "value"),
)  # fmt: skip
def _show_table(names: list[str] | None, lang: str) -> tuple[Any, ...]:
    words = text(lang)
    names = _picked(names)
    head = (words["contingency"], words["runs"])
    if len(names) < 2:
        return (*head, html.P(words["pick_two"]), "")
    summaries = {n: state.RUNS[n].memo("summary", kpi.summary) for n in names}
    table = kpi.compare(summaries, reference=names[0])
    return (*head, _table(table, names, words, lang), words["no_ci"])


@callback(
    Output("cont-map-title", "children"), Output("cont-map", "figure"), Output("cont-measure", "options"),
    Input("cont-runs", "value"), Input("cont-measure", "value"), Input("lang", "value"),
)  # fmt: skip
def _show_map(names: list[str] | None, measure: str, lang: str) -> tuple[Any, ...]:
    """The difference map alone: changing what it shows leaves the table be."""
    words = text(lang)
    names = _picked(names)
    if len(names) < 2:
        return words["diff_map"], {}, _measures(lang)
    return words["diff_map"], _difference_map(names, measure, words), _measures(lang)


def _picked(names: list[str] | None) -> list[str]:
    return [n for n in (names or []) if n in state.RUNS.views]


def _measures(lang: str) -> list[dict[str, str]]:
    """What the difference map can show, in the page's words."""
    words = text(lang)
    return [{"label": f" {words['measure_tti']}", "value": "tti"},
            {"label": f" {words['measure_response']}", "value": "response"}]  # fmt: skip


def _table(table: pd.DataFrame, names: list[str], words: dict[str, str], lang: str) -> html.Table:
    head = html.Tr(
        [
            html.Th(words["kpi"]),
            *(html.Th(n) for n in names),
            *(html.Th(f"Δ {n}") for n in names[1:]),
        ]
    )
    rows = []
    for r in table.to_dict("records"):
        cells = [
            html.Td(kpi_label(r["kpi"], r["label"], lang)),
            *(html.Td(kpi.format_value(r[n], r["unit"])) for n in names),
        ]
        for n in names[1:]:
            delta = r[f"Δ {n}"]
            better = r["better"]
            good = None if delta in (None, 0) or not better else (delta > 0) == (better == "higher")
            sign = "" if good is None else (" ▲" if good else " ▼")
            color = None if good is None else ("#2e7d32" if good else "#c62828")
            cells.append(
                html.Td(
                    kpi.format_value(delta, r["unit"], signed=True) + sign, style={"color": color}
                )
            )
        rows.append(html.Tr(cells))
    return html.Table([head, *rows], className="status-table")  # fmt: skip


def _difference_map(names: list[str], measure: str, words: dict[str, str]) -> Any:
    a, b = state.RUNS[names[0]], state.RUNS[names[1]]
    if measure == "response":
        values = b.memo("response", kpi.response_by_sector).sub(
            a.memo("response", kpi.response_by_sector), fill_value=None
        )
        title = words["diff_response"].format(a=names[0], b=names[1])
    else:
        values = b.memo("tti", mean_sector_tti).sub(a.memo("tti", mean_sector_tti), fill_value=None)
        title = words["diff_tti"].format(a=names[0], b=names[1])
    return sector_map(a.city, values, title=title, colorbar="Δ", diverging=True)
