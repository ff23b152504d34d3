"""The after-action review of an exercise, built from its run folder's timeline alone.

``twin exercise aar RUN`` writes ``RUN/aar.html``:

- for each inject: when it reached its team, the order it expected and the time allowed,
  the order that answered it and after how long, or that it was missed;
- each team's timeline of injects received and orders given (who gave them, and why any
  was refused);
- the incidents the injects made: when the team sent a unit and when it was on scene;
- the KPIs against the doctrine's targets (110 answered within 10 s, a unit on scene
  within 10 min: the scenario's ``response.targets``);
- the sectors' status (aman / waspada / rawan) over the exercise;
- what the expected action would have changed at each key decision, with intervals, once
  ``twin exercise whatif`` has played them (:mod:`twin.exercise.whatif`);
- the trainer's actions, and the audit chain's head.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from twin._errors import InputError

#: Minutes between the samples of the sectors' status over the exercise.
STATUS_EVERY_MIN = 5


@dataclass
class Review:
    """What the AAR shows, as tables (see the module docstring)."""

    info: dict[str, Any]
    injects: pd.DataFrame
    teams: dict[str, pd.DataFrame]
    incidents: pd.DataFrame
    kpis: pd.DataFrame
    status: pd.DataFrame  # sector x sample time -> status
    trainer: pd.DataFrame


def review(run: Path) -> Review:
    """The review of the exercise in run folder ``run``."""
    from twin.kpi._query import connect

    run = Path(run)
    info_path = run / "run.json"
    if not info_path.is_file():
        raise InputError(f"{run}: not a run folder (no run.json)")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if "exercise" not in info:
        raise InputError(f"{run}: a run, not an exercise (run exercises with twin exercise run)")
    start = datetime.fromisoformat(info["simulated_until"]) - timedelta(
        seconds=float(info["simulated_s"])
    )
    con = connect(run / "timeline.parquet", load=True)

    def q(sql: str) -> pd.DataFrame:
        return con.execute(sql).df()

    released = q(
        "SELECT t, inject, title, text, sender, team, effect, expected, due_s, follow_up_of, how "
        "FROM timeline WHERE kind = 'inject_released' ORDER BY t, seq"
    )
    answered = q(
        "SELECT inject, t AS answered_t, team AS answered_by, order_id, delay_s, late "
        "FROM timeline WHERE kind = 'inject_answered'"
    )
    missed = q("SELECT inject, t AS missed_t FROM timeline WHERE kind = 'inject_missed'")
    injects = released.merge(answered, on="inject", how="left").merge(
        missed, on="inject", how="left"
    )
    injects["verdict"] = [_verdict(r) for r in injects.itertuples()]
    msel = {i["id"]: i for i in info["exercise"].get("msel", [])}
    unsent = [i for name, i in msel.items() if name not in set(released["inject"])]
    if unsent:
        injects = pd.concat(
            [
                injects,
                pd.DataFrame(
                    {
                        "inject": [i["id"] for i in unsent],
                        "title": [i["title"] for i in unsent],
                        "team": [i.get("team", "all") for i in unsent],
                        "expected": [i.get("expect") or "" for i in unsent],
                        "verdict": ["not sent"] * len(unsent),
                    }
                ),
            ],
            ignore_index=True,
        )

    orders = q(
        "SELECT g.t, g.order_id, g.order, g.team, g.user, g.unit, g.incident, g.sector, "
        "g.to_team, g.text, len(g.edges) AS roads, r.reason AS refused FROM timeline g "
        "LEFT JOIN (SELECT order_id, first(reason) AS reason FROM timeline "
        "WHERE kind = 'order_refused' GROUP BY order_id) r USING (order_id) "
        "WHERE g.kind = 'order_given' ORDER BY g.t, g.seq"
    )
    teams: dict[str, pd.DataFrame] = {}
    for team in info["exercise"]["teams"]["teams"]:
        name = team["name"]
        rows = []
        for r in released.itertuples():
            if r.team in (name, "all"):
                rows.append((r.t, "inject received", f"{r.inject}: {r.title}", r.sender))
        for r in orders.itertuples():
            if r.team == name:
                what = "order refused" if isinstance(r.refused, str) else "order given"
                rows.append((r.t, what, _describe(r), r.user))
            elif r.order == "mutual_aid" and r.to_team == name:
                rows.append((r.t, "mutual aid asked", f"by {r.team}: {r.text}", r.user))
        frame = pd.DataFrame(rows, columns=["t", "what", "detail", "by"]).sort_values(
            "t", kind="stable"
        )
        teams[name] = frame.reset_index(drop=True)

    incidents = q(
        """
        WITH inc AS (SELECT incident, t AS occurred_t, incident_type, priority, sector
                     FROM timeline WHERE kind = 'incident_occurred' AND origin = 'inject'),
             sent AS (SELECT incident, min(t) AS sent_t, count(*) AS units FROM timeline
                      WHERE kind = 'unit_state' AND state = 'dispatched' GROUP BY incident),
             scene AS (SELECT incident, min(t) AS scene_t FROM timeline
                       WHERE kind = 'unit_state' AND state = 'on_scene' GROUP BY incident),
             closed AS (SELECT incident, min(t) AS closed_t FROM timeline
                        WHERE kind = 'incident_closed' GROUP BY incident)
        SELECT * FROM inc LEFT JOIN sent USING (incident) LEFT JOIN scene USING (incident)
        LEFT JOIN closed USING (incident) ORDER BY occurred_t
        """
    )
    kpis = _kpis(run, q)
    status = _status_over_time(con, float(info["simulated_s"]))
    trainer = q(
        "SELECT t, action, inject, speed, user FROM timeline WHERE kind = 'exercise_control' "
        "ORDER BY t, seq"
    )
    info["start_local"] = start.isoformat()
    return Review(info, injects, teams, incidents, kpis, status, trainer)


def _verdict(r: Any) -> str:
    if not r.expected:
        return "no order expected"
    if pd.notna(r.delay_s):
        return "late" if bool(r.late) else "on time"
    return "missed" if pd.notna(r.missed_t) else "not due by the end"


def _describe(r: Any) -> str:
    parts = [r.order.replace("_", " ")]
    if r.unit:
        parts.append(r.unit)
    if r.incident:
        parts.append(f"to {r.incident}")
    if r.sector:
        parts.append(f"sector {r.sector}")
    if r.roads:
        parts.append(f"{r.roads} road{'s' if r.roads != 1 else ''}")
    if r.to_team:
        parts.append(f"asks {r.to_team}")
    if r.text:
        parts.append(f"“{r.text}”")
    said = " ".join(parts)
    return f"{said}: {r.refused}" if isinstance(r.refused, str) else said


def _kpis(run: Path, q: Any) -> pd.DataFrame:
    """The response KPIs against the scenario's targets (the doctrine's by default)."""
    kpis = json.loads((run / "kpis.json").read_text(encoding="utf-8"))["kpis"]
    answer_s, scene_s = kpis.get("answer_target_s"), kpis.get("on_scene_target_s")
    rows = [
        (
            f"calls answered within {answer_s:g} s" if answer_s else "calls answered in target",
            kpis.get("answered_in_target"),
            0.9,
        ),
        (
            f"incidents reached within {scene_s / 60:g} min" if scene_s else "on scene in target",
            kpis.get("on_scene_in_target"),
            0.9,
        ),
    ]
    frame = pd.DataFrame(rows, columns=["measure", "value", "target"])
    frame["met"] = [
        None if v is None or pd.isna(v) else bool(v >= t)
        for v, t in zip(frame["value"], frame["target"], strict=True)
    ]
    extra = pd.DataFrame(
        [
            ("calls", kpis.get("calls"), None, None),
            ("incidents", kpis.get("incidents"), None, None),
            ("call to scene, median (s)", kpis.get("response_p50_s"), None, None),
            ("call to scene, 90th percentile (s)", kpis.get("response_p90_s"), None, None),
        ],
        columns=frame.columns,
    )
    return pd.concat([frame, extra], ignore_index=True)


def _status_over_time(con: Any, until: float) -> pd.DataFrame:
    from twin.kpi.status import sector_status

    step = STATUS_EVERY_MIN * 60.0
    cols = {}
    t = step
    while t <= until + 1e-6:
        frame = sector_status(con, t)
        cols[t] = frame.set_index("sector")["status"]
        t += step
    return pd.DataFrame(cols)


# -- the page -------------------------------------------------------------------------------


def write_aar(run: Path, out: Path | None = None, rev: Review | None = None) -> Path:
    """Write the review (:func:`review`, made if not given) as one HTML file
    (``RUN/aar.html`` by default) and return its path."""
    import plotly.graph_objects as go

    from twin.report import write_html

    rev = rev if rev is not None else review(run)
    out = Path(out) if out is not None else Path(run) / "aar.html"
    ex = rev.info["exercise"]
    start = datetime.fromisoformat(rev.info["start_local"])

    def clock(t: Any) -> str:
        return "" if t is None or pd.isna(t) else f"{start + timedelta(seconds=float(t)):%H:%M:%S}"

    def minutes(s: Any) -> str:
        return "" if s is None or pd.isna(s) else f"{float(s) / 60:.1f} min"

    inj = rev.injects
    counts = inj["verdict"].value_counts()
    intro = (
        f"<p>Exercise <b>{html.escape(ex['exercise'])}</b>: {html.escape(ex.get('title', ''))}. "
        f"Scenario {html.escape(rev.info['scenario'])} on {html.escape(rev.info['city']['name'])}, "
        f"from {start:%Y-%m-%d %H:%M}, {float(rev.info['simulated_s']) / 60:.0f} min played "
        f"({rev.info['status']}). "
        f"{int(counts.get('on time', 0))} injects answered on time, {int(counts.get('late', 0))} "
        f"late, {int(counts.get('missed', 0))} missed.</p>"
        f"<p>Audit chain head {rev.info['audit']['head']} over {rev.info['audit']['records']:,} "
        "records: <code>twin audit verify RUN</code> checks that this review's timeline is the "
        "one the exercise wrote.</p>"
    )
    inject_rows = [
        [
            clock(r.t),
            r.inject,
            r.title,
            r.team,
            r.sender if isinstance(r.sender, str) else "",
            (r.expected or "").replace("_", " "),
            minutes(r.due_s) if r.expected else "",
            (clock(r.answered_t) + (f" by {r.answered_by}" if r.team == "all" else ""))
            if pd.notna(r.answered_t)
            else "",
            minutes(r.delay_s),
            r.verdict
            + (
                f" (follow-up of {r.follow_up_of})"
                if isinstance(r.follow_up_of, str) and r.follow_up_of
                else ""
            ),
        ]
        for r in inj.itertuples()
    ]
    sections: list[tuple[str, Any]] = [
        (
            "Injects and the teams' answers",
            _table(
                [
                    "time",
                    "inject",
                    "title",
                    "team",
                    "from",
                    "expected",
                    "allowed",
                    "answered",
                    "after",
                    "verdict",
                ],
                inject_rows,
                classes=[_css(r[-1]) for r in inject_rows],
            ),
        )
    ]
    for team, frame in rev.teams.items():
        rows = [[clock(r.t), r.what, r.detail, r.by] for r in frame.itertuples()]
        sections.append(
            (
                f"Team {team}",
                _table(["time", "what", "detail", "by"], rows) if rows else "<p>Nothing.</p>",
            )
        )
    inc_rows = [
        [
            r.incident,
            r.incident_type,
            str(r.priority),
            r.sector or "",
            clock(r.occurred_t),
            minutes(r.sent_t - r.occurred_t) if pd.notna(r.sent_t) else "no unit sent",
            minutes(r.scene_t - r.occurred_t) if pd.notna(r.scene_t) else "",
            clock(r.closed_t) if pd.notna(r.closed_t) else "open at the end",
        ]
        for r in rev.incidents.itertuples()
    ]
    sections.append(
        (
            "Incidents from the injects",
            _table(
                [
                    "incident",
                    "type",
                    "priority",
                    "sector",
                    "reported",
                    "first unit sent after",
                    "on scene after",
                    "closed",
                ],
                inc_rows,
            )
            if inc_rows
            else "<p>No inject made an incident.</p>",
        )
    )
    kpi_rows = [
        [
            r.measure,
            _value(r.value),
            "" if r.target is None or pd.isna(r.target) else f"{r.target:.0%}",
            "" if r.met is None or pd.isna(r.met) else ("met" if r.met else "not met"),
        ]
        for r in rev.kpis.itertuples()
    ]
    sections.append(
        (
            "The response against the doctrine's targets",
            "<p>In this exercise: one draw of the city's calls, incidents and traffic, so "
            "a figure here describes what the teams met, not how good a plan is. The what-if "
            "below compares decisions over several draws.</p>"
            + _table(["measure", "value", "target", ""], kpi_rows),
        )
    )
    if not rev.status.empty:
        levels = {"aman": 0, "waspada": 1, "rawan": 2}
        z = rev.status.map(lambda s: levels.get(s)).astype(float)
        fig = go.Figure(
            go.Heatmap(
                z=z.values,
                x=[clock(t) for t in rev.status.columns],
                y=list(rev.status.index),
                zmin=0,
                zmax=2,
                colorscale=[[0, "#2ca02c"], [0.5, "#ffbf00"], [1, "#d62728"]],
                colorbar={"tickvals": [0, 1, 2], "ticktext": ["aman", "waspada", "rawan"]},
                hovertemplate="%{y} at %{x}<extra></extra>",
            )
        )
        fig.update_layout(
            height=max(300, 14 * len(rev.status.index)), margin={"l": 60, "r": 20, "t": 20, "b": 40}
        )
        sections.append(("The sectors' status over the exercise", fig))
    sections.append(("What the expected action would have changed", _whatif_section(run)))
    trainer_rows = [
        [clock(r.t), r.action, r.inject or "", f"{r.speed:g}×" if r.speed else "", r.user]
        for r in rev.trainer.itertuples()
    ]
    sections.append(
        ("The trainer's actions", _table(["time", "action", "inject", "speed", "by"], trainer_rows))
    )
    write_html(out, title=f"After-action review: {ex['exercise']}", intro=intro, sections=sections)
    return out


def _whatif_section(run: Path) -> str:
    """The what-if of each key decision (``twin exercise whatif``), or how to make it."""
    from twin.exercise.whatif import decision_rows, load_whatif

    saved = load_whatif(run)
    if saved is None:
        return (
            "<p>Not computed yet: <code>twin exercise whatif RUN</code> plays the exercise "
            "again as the teams played it and with the expected action in place of each missed "
            "or late one, over several draws, and this section shows what changed.</p>"
        )
    parts = [
        f"<p>Each decision was played both ways in {saved['replications']} draws (seeds "
        f"{', '.join(str(s) for s in saved['seeds'])}, the exercise's own first), with the "
        f"same random numbers both ways, to {html.escape(saved['until'])}. A difference is "
        "the mean over the draws with its 95 % interval; one whose interval holds zero is "
        "no detectable difference. The replay of the exercise: "
        f"{html.escape(saved['check'])}.</p>"
    ]
    if not saved["decisions"]:
        parts.append("<p>Every expected order came in time: there is no decision to price.</p>")
    for d in saved["decisions"]:
        head = f"<b>{html.escape(d['inject'])}</b> ({html.escape(d['team'])}), {d['verdict']}: "
        if d["why_not"]:
            parts.append(f"<p>{head}no what-if: {html.escape(d['why_not'])}.</p>")
            continue
        parts.append(f"<p>{head}expected run: {html.escape(d['play'])}.</p>")
        rows = decision_rows(d)
        parts.append(
            _table(["measure", "as played", "expected action", "difference", "verdict"], rows)
            if rows
            else "<p>No draw completed both ways (see whatif/whatif.json).</p>"
        )
    return "".join(parts)


def _value(v: Any) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if isinstance(v, float) and 0 <= v <= 1:
        return f"{v:.0%}"
    return f"{v:,.0f}" if isinstance(v, float) else str(v)


def _css(verdict: str) -> str:
    return {"missed": "bad", "late": "late", "on time": "good"}.get(verdict.split(" (")[0], "")


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    out = ['<table class="text"><tr>', *(f"<th>{html.escape(h)}</th>" for h in head), "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)
