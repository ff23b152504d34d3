"""The one-gate service hall's tables and figures (:mod:`twin.service`), shared by ``twin
service``, the run's ``report.html`` and the dashboards' hall pages: the words come in a
``words`` dict (English by default, the dashboards pass their language's)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from twin.report import _clock_axis

#: Ten colours, so that a hall's seven counter groups each have their own.
_COLORS = qualitative.D3

#: The headings and words, in English (the dashboards give theirs in the page's language).
WORDS = {
    "service": "service",
    "came": "came",
    "served": "served",
    "within_standard": "within standard",
    "standard_kept": "standard kept",
    "left_unserved": "left unserved",
    "sent_away": "sent away",
    "still_in": "still in",
    "standard": "standard",
    "wait_p50": "wait p50",
    "wait_p90": "wait p90",
    "in_hall_p50": "in hall p50",
    "in_hall_p90": "in hall p90",
    "spread": "spread",
    "counter_group": "counter group",
    "counters": "counters",
    "steps_served": "steps served",
    "utilisation": "utilisation",
    "longest_queue": "longest queue",
    "queue_title": "Visitors waiting at each counter group",
    "queue_axis": "visitors waiting",
    "kept_title": "Served within the standard, by hour of arrival (left unserved = missed)",
    "kept_axis": "share",
}


def _pct(v: Any) -> str:
    return "–" if v is None or v != v else f"{v:.0%}"


def _mins(v: Any) -> str:
    return "–" if v is None or v != v else f"{v / 60:.1f}"


def visitor_rows(
    services: pd.DataFrame, words: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """Per service, who came and how they left, as a person reads it."""
    w = {**WORDS, **(words or {})}
    return [
        {
            w["service"]: r["title"],
            w["came"]: f"{r['visitors']:,}",
            w["served"]: f"{r['served']:,}",
            w["within_standard"]: _pct(r["within_standard"]),
            w["standard_kept"]: _pct(r["standard_kept"]),
            w["left_unserved"]: f"{r['balked'] + r['reneged']:,}",
            w["sent_away"]: f"{r['sent_away']:,}",
            w["still_in"]: f"{r['still_inside']:,}",
        }
        for r in services.to_dict("records")
    ]


def minute_rows(
    services: pd.DataFrame, words: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """Per service, its standard and the served visitors' waits and times, in minutes."""
    w = {**WORDS, **(words or {})}
    return [
        {
            w["service"]: r["title"],
            w["standard"]: _mins(r["standard_s"]),
            w["wait_p50"]: _mins(r["wait_p50_s"]),
            w["wait_p90"]: _mins(r["wait_p90_s"]),
            w["in_hall_p50"]: _mins(r["in_hall_p50_s"]),
            w["in_hall_p90"]: _mins(r["in_hall_p90_s"]),
            w["spread"]: _mins(r["wait_spread_s"]),
        }
        for r in services.to_dict("records")
    ]


def counter_rows(
    counters: pd.DataFrame, words: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """Per counter group: its counters, steps served, utilisation and longest queue."""
    w = {**WORDS, **(words or {})}
    return [
        {
            w["counter_group"]: r["counter"],
            w["counters"]: str(r["counters"]),
            w["steps_served"]: f"{r['steps']:,}",
            w["utilisation"]: _pct(r["utilisation"]),
            w["longest_queue"]: str(r["longest_queue"]),
        }
        for r in counters.to_dict("records")
    ]


def queue_figure(
    series: pd.DataFrame, *, start: pd.Timestamp | None = None, words: dict[str, str] | None = None
) -> go.Figure:
    """Visitors waiting at each counter group through the run (``twin.kpi.queue_series``),
    with each group's open counters in its hover."""
    w = {**WORDS, **(words or {})}
    fig = go.Figure()
    for i, (counter, part) in enumerate(series.groupby("counter", sort=False)):
        fig.add_scatter(
            x=_clock_axis(start, part["t"]),
            y=part["waiting"],
            customdata=part[["open", "busy"]].to_numpy(),
            mode="lines",
            line={"shape": "hv", "color": _COLORS[i % len(_COLORS)]},
            name=str(counter),
            hovertemplate=f"{counter}: %{{y}} · {w['counters']} %{{customdata[1]}}/"
            "%{customdata[0]}<extra></extra>",
        )
    fig.update_layout(
        title=w["queue_title"],
        yaxis={"title": w["queue_axis"], "rangemode": "tozero", "tickformat": "d"},
        legend={"orientation": "h"},
        margin={"t": 50, "l": 50, "r": 10, "b": 40},
    )
    return fig


def kept_figure(
    table: pd.DataFrame, *, start: pd.Timestamp | None = None, words: dict[str, str] | None = None
) -> go.Figure:
    """Each service's share served within its standard by hour of arrival
    (``twin.kpi.standard_by_hour``), the marker's size the visitors of that hour."""
    w = {**WORDS, **(words or {})}
    fig = go.Figure()
    for i, (_service, part) in enumerate(table.groupby("service", sort=False)):
        fig.add_scatter(
            x=_clock_axis(start, part["hour"] * 3600.0 + 1800.0),
            y=part["kept"],
            customdata=part["visitors"],
            mode="lines+markers",
            marker={"size": 5 + part["visitors"].clip(upper=60) / 6},
            line={"color": _COLORS[i % len(_COLORS)]},
            name=str(part["title"].iloc[0]),
            hovertemplate="%{y:.0%} (%{customdata})<extra>%{fullData.name}</extra>",
        )
    fig.update_layout(
        title=w["kept_title"],
        yaxis={"title": w["kept_axis"], "tickformat": ".0%", "range": [0, 1.05]},
        legend={"orientation": "h"},
        margin={"t": 50, "l": 50, "r": 10, "b": 40},
    )
    return fig
