"""Contingency: two or more plans side by side, their differences, and maps of the
difference between two of them. A plan given as several runs that differ only in their
seed is an ensemble: its KPIs are means with 95 % confidence intervals, and a difference
is marked better or worse only where its interval leaves out zero."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback, dcc, html

from twin import kpi
from twin.dashboards import state
from twin.dashboards.i18n import kpi_label, text
from twin.report import mean_sector_tti, sector_map

dash.register_page(__name__, path="/contingency", name="Kontinjensi", title="Kontinjensi")


def layout(**_: Any) -> html.Div:
    names = list(state.runs().plans)
    return html.Div(
        [
            html.H1(id="cont-title"),
            html.Label(id="cont-runs-label"),
            dcc.Dropdown(id="cont-runs", options=names, value=names, multi=True),
            html.Div(id="cont-table"),
            html.P(id="cont-ci", className="note"),
            html.H3(id="cont-map-title"),
            dcc.RadioItems(
                id="cont-measure",
                value="tti" if state.runs().traffic else "response",
                inline=True,
                options=_measures("id"),
            ),
            dcc.Graph(id="cont-map", config={"displaylogo": False}),
        ],
        className="page",
    )


@callback(
    Output("cont-title", "children"),
    Output("cont-runs-label", "children"),
    Output("cont-table", "children"),
    Output("cont-ci", "children"),
    Input("cont-runs", "value"),
    Input("lang", "value"),
)
def _show_table(names: list[str] | None, lang: str) -> tuple[Any, ...]:
    words = text(lang)
    names = _picked(names)
    head = (words["contingency"], words["runs"])
    if len(state.runs().plans) < 2:
        return (*head, html.P(words["only_one"], id="cont-only-one"), "")
    if len(names) < 2:
        return (*head, html.P(words["pick_two"]), "")
    runs = state.runs()
    summaries = {n: runs.summaries(n) for n in names}
    table = kpi.compare(summaries, reference=names[0], paired=runs.paired(names))
    ensembles = any(isinstance(v, list) for v in summaries.values())
    return (*head, _table(table, names, words, lang), words["ci"] if ensembles else words["no_ci"])


@callback(
    Output("cont-map-title", "children"),
    Output("cont-map", "figure"),
    Output("cont-map", "style"),
    Output("cont-measure", "options"),
    Input("cont-runs", "value"),
    Input("cont-measure", "value"),
    Input("lang", "value"),
)
def _show_map(names: list[str] | None, measure: str, lang: str) -> tuple[Any, ...]:
    """The difference map alone: changing what it shows leaves the table be."""
    words = text(lang)
    names = _picked(names)
    if len(names) < 2:  # nothing to draw: no empty axes, the table says what to do
        return "", {}, {"display": "none"}, []
    return words["diff_map"], _difference_map(names, measure, words), {}, _measures(lang)


def _picked(names: list[str] | None) -> list[str]:
    return [n for n in (names or []) if n in state.runs().plans]


def _measures(lang: str) -> list[dict[str, str]]:
    """What the difference map can show, in the page's words."""
    words = text(lang)
    return [
        {"label": f" {words['measure_tti']}", "value": "tti"},
        {"label": f" {words['measure_response']}", "value": "response"},
    ]


def _table(table: pd.DataFrame, names: list[str], words: dict[str, str], lang: str) -> html.Table:
    """The KPIs side by side with their unit, and each plan's difference to the first,
    marked by its verdict (:func:`twin.kpi.compare`): ▲ better, ▼ worse, ≈ within the
    ensemble's noise, † moved only because trips were cut short at closures."""
    ensembles = f"n {names[0]}" in table.columns
    head = html.Tr(
        [
            html.Th(words["kpi"]),
            *(html.Th(_plan_head(n, table, words) if ensembles else n) for n in names),
            *(html.Th(f"Δ {n}") for n in names[1:]),
            html.Th(words["unit_col"]),
        ]
    )
    colors = {"better": "#2e7d32", "worse": "#c62828"}
    rows = []
    for r in table.to_dict("records"):
        unit = r["unit"]
        cells = [
            html.Td(kpi_label(r["kpi"], r["label"], lang)),
            *(html.Td(kpi.format_interval(r[n], r.get(f"± {n}"), unit)) for n in names),
        ]
        for n in names[1:]:
            verdict = r[f"verdict {n}"]
            sign = kpi.VERDICT_SIGNS.get(verdict or "", "")
            shown = kpi.format_interval(r[f"Δ {n}"], r.get(f"± Δ {n}"), unit, signed=True)
            cells.append(
                html.Td(
                    f"{shown} {sign}".rstrip(),
                    style={"color": colors.get(verdict or "")},
                    title=words.get(f"verdict_{verdict}", ""),
                )
            )
        cells.append(html.Td(unit))
        rows.append(html.Tr(cells))
    return html.Table([head, *rows], className="status-table")


def _plan_head(name: str, table: pd.DataFrame, words: dict[str, str]) -> str:
    n = table[f"n {name}"].max() if len(table) else 1
    return f"{name} ({words['replications'].format(n=n)})"


def _difference_map(names: list[str], measure: str, words: dict[str, str]) -> Any:
    """The second plan less the first, by sector: the means over each plan's runs."""
    a, b = names[0], names[1]
    per_sector = kpi.response_by_sector if measure == "response" else mean_sector_tti
    values = (
        state.runs()
        .by_sector(b, measure, per_sector)
        .sub(state.runs().by_sector(a, measure, per_sector), fill_value=None)
    )
    title = words["diff_response" if measure == "response" else "diff_tti"].format(a=a, b=b)
    return sector_map(
        state.runs().city_of(a),
        values,
        title=title,
        colorbar="Δ",
        diverging=True,
    )
