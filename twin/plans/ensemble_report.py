"""An ensemble's report (``report.html`` in the ensemble folder): each plan's KPIs with
their intervals, each plan's paired difference to the baseline and its verdict, the
spread of the replications, what each plan costs, and what failed."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from twin import kpi, report


def difference_figure(table: pd.DataFrame, keys: list[str]) -> go.Figure:
    """Each plan's difference to the baseline with its 95 % interval, one panel row per
    KPI (a forest plot): green where the plan is better, red where worse, grey where the
    interval holds zero."""
    from plotly.subplots import make_subplots

    names = kpi.compared_names(table)
    rows = table[table["kpi"].isin(keys)].to_dict("records")
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        subplot_titles=[f"{r['label']} ({r['unit']})" if r["unit"] else r["label"] for r in rows],
        vertical_spacing=min(0.08, 0.6 / max(len(rows), 1)),
    )
    colours = {"better": "#2e7d32", "worse": "#c62828"}
    for i, r in enumerate(rows, start=1):
        scale = 100.0 if r["unit"] == "%" else 1.0
        for name in names[1:]:
            delta, half = r.get(f"Δ {name}"), r.get(f"± Δ {name}")
            if delta is None:
                continue
            verdict = r.get(f"verdict {name}") or ""
            fig.add_trace(
                go.Scatter(
                    x=[delta * scale],
                    y=[name],
                    mode="markers",
                    marker={"size": 10, "color": colours.get(verdict, "#757575")},
                    error_x={"type": "data", "array": [(half or 0) * scale], "visible": True},
                    name=name,
                    showlegend=False,
                    hovertemplate=f"{name}: %{{x:.3g}} ± {(half or 0) * scale:.3g} "
                    f"({kpi.VERDICT_WORDS.get(verdict, '')})<extra></extra>",
                ),
                row=i,
                col=1,
            )
        fig.add_vline(x=0, line={"color": "#444", "width": 1}, row=i, col=1)
    fig.update_layout(
        height=140 + 110 * len(rows),
        margin={"l": 10, "r": 10, "t": 60, "b": 30},
        title="Difference to the baseline, 95 % interval (pp for shares)",
    )
    return fig


def spread_figure(replications: pd.DataFrame, table: pd.DataFrame, keys: list[str]) -> go.Figure:
    """Every replication's value of each headline KPI, plan by plan: the noise the
    intervals measure."""
    from plotly.subplots import make_subplots

    rows = table[table["kpi"].isin(keys)].to_dict("records")
    fig = make_subplots(
        rows=1,
        cols=max(len(rows), 1),
        subplot_titles=[r["label"] for r in rows],
        horizontal_spacing=0.06,
    )
    for j, r in enumerate(rows, start=1):
        per = kpi.SHOWN_PER.get(r["kpi"], 1.0) / (100.0 if r["unit"] == "%" else 1.0)
        for name in kpi.compared_names(table):
            x = pd.to_numeric(
                replications.loc[replications["plan"] == name, r["kpi"]], errors="coerce"
            )
            fig.add_trace(
                go.Box(
                    y=x / per,
                    name=name,
                    boxpoints="all",
                    jitter=0.4,
                    pointpos=0,
                    marker={"size": 4},
                    showlegend=False,
                ),
                row=1,
                col=j,
            )
        fig.update_yaxes(title_text=r["unit"] if r["unit"] != "%" else "%", row=1, col=j)
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 60, "b": 30})
    return fig


def ensemble_report(folder: Path, table: pd.DataFrame, info: dict[str, Any]) -> Path:
    """Write ``report.html`` into an ensemble folder; its path."""
    from twin.plans.ensemble import HEADLINE

    replications = pd.read_parquet(folder / "replications.parquet")
    names = kpi.compared_names(table)
    present = [k for k in HEADLINE if k in set(table["kpi"])]
    counts = ", ".join(f"{n}: {int(table[f'n {n}'].max())}" for n in names)
    intro = (
        f"<p>Scenario {html.escape(info['scenario'])}: the baseline is the scenario as it "
        f"is; {len(names) - 1} plan{'s' if len(names) != 2 else ''} compared with it. "
        f"Replication <i>i</i> of every plan ran with the same seed ({html.escape(str(info['seeds']))}), "
        "so each difference is paired: the noise that the plans share cancels.</p>"
        f"<p>Replications that completed: {html.escape(counts)}. Stopped: "
        f"{html.escape(info['stopped'])}.</p>"
    )
    if info.get("failed"):
        intro += (
            f"<p class='warn'>{len(info['failed'])} replication(s) failed twice and are left "
            "out of the figures; see Failures below.</p>"
        )
    sections: list[tuple[str, Any]] = [("Key figures", report.kpi_table_html(table))]
    if len(names) > 1 and present:
        sections.append(("Which differences are real", difference_figure(table, present)))
    if present:
        sections.append(("The replications", spread_figure(replications, table, present)))
    sections.append(("What each plan costs", _cost_table(replications, names)))
    if info.get("readiness"):
        from twin.plans.readiness import readiness_html

        sections.append(("Readiness (asta siap)", readiness_html(info["readiness"])))
    if info.get("failed"):
        rows = "".join(
            f"<tr><td>{html.escape(str(f['plan']))}</td><td>{f['replication']}</td>"
            f"<td>{f['seed']}</td><td>{html.escape(str(f['reason']))}</td></tr>"
            for f in info["failed"]
        )
        sections.append(
            (
                "Failures",
                "<table><tr><th>plan</th><th>replication</th><th>seed</th><th>reason</th></tr>"
                f"{rows}</table>",
            )
        )
    path = folder / "report.html"
    report.write_html(
        path, title=f"Evaluation of {info['scenario']}", intro=intro, sections=sections
    )
    return path


def _cost_table(replications: pd.DataFrame, names: list[str]) -> str:
    """Each plan's mean cost over the run, item by item, in rupiah."""
    items = [c for c in replications.columns if c.startswith("cost_") and c != "cost_total"]
    if not items:
        return "<p>No costs: the scenario has no response section.</p>"
    head = "".join(
        f"<th>{html.escape(c.removeprefix('cost_').replace('_', ' '))}</th>" for c in items
    )
    body = ""
    for name in names:
        mine = replications[(replications["plan"] == name) & (replications["status"] == "complete")]
        cells = "".join(f"<td>{mine[c].mean():,.0f}</td>" for c in [*items, "cost_total"])
        body += f"<tr><td>{html.escape(name)}</td>{cells}</tr>"
    return (
        f"<table><tr><th>plan</th>{head}<th>total</th></tr>{body}</table>"
        "<p>Rupiah over the run, from each plan's cost table: unit-hours on duty by type, "
        "call-taker hours, posts, and the km its units drove (traffic runs only).</p>"
    )
