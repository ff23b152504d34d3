"""``twin optimise``'s report (``report.html`` in its folder): the plan chosen with its cost
and its KPIs with intervals, the cheapest plan that just misses, every plan simulated, and
the frontier of cost against the shares meeting the targets."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from twin import report

#: How each verdict reads.
VERDICTS = {
    "meets": "meets the target (95 % interval above it)",
    "misses": "misses the target (95 % interval below it)",
    "unclear": "cannot tell (the interval holds the target)",
    "unknown": "no figure",
}


def share_text(x: dict[str, Any], key: str) -> str:
    """``91.2 % ± 2.1`` (points), or ``–``."""
    mean, half = x.get(key), x.get(f"{key}_half")
    if mean is None:
        return "–"
    return f"{mean * 100:.1f} %" + (f" ± {half * 100:.1f}" if half is not None else "")


def frontier_figure(info: dict[str, Any]) -> go.Figure:
    """Cost against each share: the theory's frontier as lines, each simulated plan as a
    point with its 95 % interval (filled where it meets both targets), the targets as
    dashed lines."""
    goal = info["goal"]
    fig = go.Figure()
    front = info["frontier"]
    for key, label, colour in (
        ("answer", "answered in time", "#1f77b4"),
        ("on_scene", "on scene in time", "#ff7f0e"),
    ):
        fig.add_trace(
            go.Scatter(
                x=[p["cost"] for p in front],
                y=[p[key] * 100 for p in front],
                mode="lines",
                line={"color": colour, "width": 1, "dash": "dot", "shape": "hv"},
                name=f"theory: {label}",
                hovertemplate="Rp %{x:,.0f}: %{y:.1f} %<extra>theory</extra>",
            )
        )
        short = "answered" if key == "answer" else "on_scene"
        done = [x for x in info["candidates"] if x.get(short) is not None]
        fig.add_trace(
            go.Scatter(
                x=[x["cost"] for x in done],
                y=[x[short] * 100 for x in done],
                error_y={
                    "type": "data",
                    "array": [(x.get(f"{short}_half") or 0) * 100 for x in done],
                    "visible": True,
                },
                mode="markers+text",
                text=[x["plan"] for x in done] if key == "on_scene" else None,
                textposition="top center",
                textfont={"size": 10},
                marker={
                    "size": 11,
                    "color": [colour if x["meets"] else "white" for x in done],
                    "line": {"color": colour, "width": 2},
                    "symbol": "circle" if key == "answer" else "diamond",
                },
                name=f"simulated: {label}",
                hovertemplate="%{x:,.0f} Rp: %{y:.1f} %<extra></extra>",
            )
        )
    fig.add_hline(
        y=goal["answer_share"] * 100,
        line={"color": "#1f77b4", "dash": "dash", "width": 1},
        annotation_text=f"target: answered within {goal['answer_s']:g} s",
        annotation_position="bottom right",
    )
    fig.add_hline(
        y=goal["on_scene_share"] * 100,
        line={"color": "#ff7f0e", "dash": "dash", "width": 1},
        annotation_text=f"target: on scene within {goal['on_scene_s'] / 60:g} min",
        annotation_position="top right",
    )
    fig.update_layout(
        title="Cost against the share meeting each target (filled: meets both, 95 % interval)",
        xaxis_title="Cost of the plan over the run (Rp)",
        yaxis_title="Share within target (%)",
        height=560,
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
    )
    fig.update_xaxes(tickformat=",.0f")
    return fig


def candidates_table(info: dict[str, Any]) -> str:
    rows = []
    chosen = (info.get("chosen") or {}).get("plan")
    for x in info["candidates"]:
        mark = " ✔ chosen" if x["plan"] == chosen else ""
        pred = (
            "–"
            if x.get("answered_predicted") is None
            else (f"{x['answered_predicted']:.1%} / {x['on_scene_predicted']:.1%}")
        )
        rows.append(
            f"<tr><td>{html.escape(x['plan'])}{mark}</td><td>{html.escape(x['description'])}</td>"
            f"<td>{x.get('replications') or ''}</td>"
            f"<td>{x['cost']:,.0f}</td><td>{share_text(x, 'answered')}</td>"
            f"<td>{share_text(x, 'on_scene')}</td><td>{pred}</td>"
            f"<td>{'meets both' if x['meets'] else html.escape(verdict_words(x))}</td></tr>"
        )
    return (
        "<table><tr><th>plan</th><th>what it holds</th><th>replications</th><th>cost (Rp)</th>"
        "<th>answered in time</th><th>on scene in time</th><th>theory said</th>"
        f"<th>verdict</th></tr>{''.join(rows)}</table>"
        "<p>Shares are the replications' means ± the half-width of their 95 % interval "
        "(percentage points). A plan meets a target when the whole interval is at or above "
        "it. 'Theory said' is the screen's prediction (Erlang A / hypercube), answered / on "
        "scene.</p>"
    )


def _runs(info: dict[str, Any]) -> str:
    runs = sorted({x["replications"] for x in info["candidates"] if x.get("replications")})
    return "–" if not runs else str(runs[0]) if len(runs) == 1 else f"{runs[0]} to {runs[-1]}"


def verdict_words(x: dict[str, Any]) -> str:
    """Why a plan does not meet the targets: ``misses: on scene``, ``unclear: answered``."""
    by: dict[str, list[str]] = {}
    for short, label in (("answered", "answered"), ("on_scene", "on scene")):
        verdict = x.get(f"{short}_verdict")
        if verdict and verdict != "meets":
            by.setdefault(verdict, []).append(label)
    return "; ".join(f"{v}: {', '.join(labels)}" for v, labels in by.items())


def optimise_report(folder: Path, info: dict[str, Any]) -> Path:
    """Write ``report.html`` into the optimisation folder; its path."""
    chosen, just = info.get("chosen"), info.get("just_misses")
    intro = (
        f"<p>Scenario {html.escape(info['scenario'])}. Targets: {html.escape(info['said'])}, "
        "each with 95 % confidence.</p>"
        f"<p>The theory priced {info['space']['options']:,} plans; "
        f"{len(info['candidates']) - 1} were simulated, {_runs(info)} replications each with "
        "common random numbers, beside the scenario as it is (the baseline). A plan whose "
        "interval still held a target ran again in a later round with twice the replications.</p>"
    )
    if chosen:
        intro += (
            f"<p><b>Chosen: {html.escape(chosen['plan'])}</b> ({html.escape(chosen['description'])}), "
            f"Rp {chosen['cost']:,.0f} over the run: answered in time "
            f"{share_text(chosen, 'answered')}, on scene in time {share_text(chosen, 'on_scene')}.</p>"
        )
    else:
        intro += (
            "<p class='warn'>No plan simulated meets both targets with 95 % confidence. "
            "Widen the search (--max-units, --posts) or add replications.</p>"
        )
    if just:
        saving = f", Rp {chosen['cost'] - just['cost']:,.0f} less" if chosen else ""
        intro += (
            f"<p>The cheapest plan that just misses: {html.escape(just['plan'])} "
            f"({html.escape(just['description'])}), Rp {just['cost']:,.0f}{saving}: answered "
            f"{share_text(just, 'answered')}, on scene {share_text(just, 'on_scene')} "
            f"({html.escape(verdict_words(just))}).</p>"
        )
    rounds = ", ".join(f"<code>{html.escape(r)}/</code>" for r in info["rounds"])
    sections: list[tuple[str, Any]] = [
        ("The frontier", frontier_figure(info)),
        ("Every plan simulated", candidates_table(info)),
        (
            "Where the figures are",
            f"<p>Each round's ensemble: {rounds} (open one with <code>twin compare</code> or "
            "<code>twin dash</code>). The chosen plan as a plan file: <code>chosen.yaml</code>.</p>"
            "<p>The theory assumes exponential times, units on duty for the whole run and "
            "dispatch to the closest free unit at free-flow emergency speed; the simulation's "
            "figures decide.</p>",
        ),
    ]
    if info.get("readiness"):
        from twin.plans.readiness import readiness_html

        sections.append(("Readiness (asta siap)", readiness_html(info["readiness"])))
    path = folder / "report.html"
    report.write_html(
        path, title=f"The cheapest plan for {info['scenario']}", intro=intro, sections=sections
    )
    return path


def kept_text(x: dict[str, Any]) -> str:
    """``91.2 % ± 2.1`` (points) of the standard kept, or ``–``."""
    return share_text(x, "kept")


def staffing_figure(info: dict[str, Any]) -> go.Figure:
    """People on the counters against the standard kept: each simulated plan with its 95 %
    interval (filled where it meets the goal), the goal as a dashed line."""
    done = [x for x in info["candidates"] if x.get("kept") is not None]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[x["people"] for x in done],
            y=[x["kept"] * 100 for x in done],
            error_y={
                "type": "data",
                "array": [(x.get("kept_half") or 0) * 100 for x in done],
                "visible": True,
            },
            mode="markers+text",
            text=[x["plan"] for x in done],
            textposition="top center",
            textfont={"size": 10},
            marker={
                "size": 11,
                "color": ["#2ca02c" if x["meets"] else "white" for x in done],
                "line": {"color": "#2ca02c", "width": 2},
            },
            name="simulated",
            hovertemplate="%{x} people: %{y:.1f} %<extra>%{text}</extra>",
        )
    )
    fig.add_hline(
        y=info["goal"]["share"] * 100,
        line={"color": "#2ca02c", "dash": "dash", "width": 1},
        annotation_text=f"goal: {info['goal']['share']:.0%} within the standard",
        annotation_position="bottom right",
    )
    fig.update_layout(
        title="People on the counters against the standard kept (filled: meets, 95 % interval)",
        xaxis_title="People on the counter groups' shifts",
        yaxis_title="Served within the standard, of all who came (%)",
        height=520,
        showlegend=False,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
    )
    return fig


def staffing_report(folder: Path, info: dict[str, Any]) -> Path:
    """Write a hall optimisation's ``report.html`` (:mod:`twin.plans.staffing`); its path."""
    chosen, just = info.get("chosen"), info.get("just_misses")
    intro = (
        f"<p>Scenario {html.escape(info['scenario'])}. Goal: {html.escape(info['said'])}, "
        f"with 95 % confidence. Today: {sum(info['today'].values())} people "
        f"({html.escape(', '.join(f'{g} {n}' for g, n in info['today'].items()))}).</p>"
        f"<p>{len(info['candidates']) - 1} staffings were simulated, {_runs(info)} replications "
        "each with common random numbers, beside the scenario as it is (the baseline).</p>"
    )
    if chosen:
        intro += (
            f"<p><b>Chosen: {html.escape(chosen['plan'])}</b> ({html.escape(chosen['description'])}"
            f"): the standard kept for {kept_text(chosen)}.</p>"
        )
    else:
        intro += (
            "<p class='warn'>No staffing simulated keeps the standard with 95 % confidence. "
            "Add rounds or replications, raise --max-people, or change the shifts' hours.</p>"
        )
    for c in info.get("confirm") or []:
        intro += (
            f"<p>Run again on {c['replications']} fresh seeds (from {c['first_seed']}): "
            f"{html.escape(c['plan'])} kept the standard for {kept_text(c)}, "
            + (
                "confirmed.</p>"
                if c["verdict"] == "meets"
                else "<b>not confirmed</b>: its interval does not clear the goal.</p>"
            )
        )
    if just:
        intro += (
            f"<p>The leanest that just misses: {html.escape(just['plan'])} "
            f"({html.escape(just['description'])}): {kept_text(just)}.</p>"
        )
    chosen_name = (chosen or {}).get("plan")
    rows = "".join(
        f"<tr><td>{html.escape(x['plan'])}{' ✔ chosen' if x['plan'] == chosen_name else ''}</td>"
        f"<td>{html.escape(x['description'])}</td><td>{x.get('replications') or ''}</td>"
        f"<td>{x['people']}</td><td>{x['staff_hours']:.1f}</td><td>{kept_text(x)}</td>"
        f"<td>{html.escape(VERDICTS[x['verdict']])}</td></tr>"
        for x in info["candidates"]
    )
    table = (
        "<table><tr><th>plan</th><th>what it holds</th><th>replications</th><th>people</th>"
        "<th>staff-hours</th><th>standard kept</th><th>verdict</th></tr>"
        f"{rows}</table><p>The standard kept: the replications' mean ± the half-width of its "
        "95 % interval (percentage points).</p>"
    )
    loads = "".join(
        f"<tr><td>{html.escape(g)}</td><td>{v['peak_erlangs']}</td><td>{v['mean_min']}</td>"
        f"<td>{v['cs2']}</td><td>{v['budget_min']}</td></tr>"
        for g, v in info["theory"]["loads"].items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in info["theory"]["notes"])
    theory = (
        "<table><tr><th>counter group</th><th>peak load (erlangs)</th><th>mean time (min)</th>"
        f"<th>cs²</th><th>wait budget per step (min)</th></tr>{loads}</table>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "<p>The theory treats each hour as steady and each group as independent, and "
        "ignores balking and reneging; the simulation's figures decide.</p>"
    )
    rounds = ", ".join(f"<code>{html.escape(r)}/</code>" for r in info["rounds"])
    sections: list[tuple[str, Any]] = [
        ("People against the standard kept", staffing_figure(info)),
        ("Every staffing simulated", table),
        ("The theory's screen", theory),
        (
            "Where the figures are",
            f"<p>Each round's ensemble: {rounds}. The chosen staffing as a plan file: "
            "<code>chosen.yaml</code> (<code>twin evaluate SCENARIO --plan chosen.yaml</code>).</p>",
        ),
    ]
    path = folder / "report.html"
    report.write_html(
        path, title=f"The fewest staff for {info['scenario']}", intro=intro, sections=sections
    )
    return path
