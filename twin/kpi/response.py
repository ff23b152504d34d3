"""The emergency-response KPIs: calls answered, processing and response times, unit
utilisation and the pending queue (see :mod:`twin.kpi`)."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from twin.kpi._query import _con, _has, _r
from twin.kpi.labels import _RESPONSE_KEYS, ANSWER_TARGET_S, ON_SCENE_TARGET_S


def targets(con: duckdb.DuckDBPyConnection) -> tuple[float, float]:
    """The run's answer and on-scene targets in seconds."""
    row = con.execute(
        "SELECT answer_target_s, on_scene_target_s FROM timeline "
        "WHERE kind = 'response_configured' LIMIT 1"
    ).fetchone()
    return (float(row[0]), float(row[1])) if row else (ANSWER_TARGET_S, ON_SCENE_TARGET_S)


def response_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The response KPIs (see the module docstring); None where the run has no response."""
    configured = con.execute(
        "SELECT count(*) FROM timeline WHERE kind = 'response_configured'"
    ).fetchone()
    if not configured or not configured[0]:
        return dict.fromkeys(_RESPONSE_KEYS)
    calls = answers_by_number(con)
    total = calls[calls["number"] == "all"].iloc[0]
    inc = incident_times(con)
    reached = inc.dropna(subset=["first_on_scene_s"])
    util = utilisation(con)
    by_agency = util.groupby("agency").apply(
        lambda d: d["committed_s"].sum() / max(d["on_duty_s"].sum(), 1e-9), include_groups=False
    )
    pending = con.execute(
        "SELECT coalesce(max(pending), 0), count(*) FILTER (WHERE action = 'dropped') "
        "FROM timeline WHERE kind = 'incident_pending'"
    ).fetchone()
    answer_target, on_scene_target = targets(con)
    driven = (  # units drive in SUMO only with traffic on
        con.execute(
            "SELECT sum(route_length_m) / 1000 FROM timeline WHERE kind = 'drive_ended'"
        ).fetchone()[0]
        if _has(con, "drive_ended")
        else None
    )
    end = con.execute("SELECT max(t) FROM timeline").fetchone()[0] or 0.0
    judged = inc[(inc["first_call_t"] <= end - on_scene_target) | inc["first_on_scene_s"].notna()]
    return {
        "incidents": len(inc),
        "calls": int(total["calls"]),
        "answered_in_target": _r(total["answered_in_target"], 4),
        "speed_of_answer_s": _r(total["speed_of_answer_s"], 1),
        "abandoned": _r(total["abandoned"], 4),
        "processing_s": _r(inc["processing_s"].mean(), 1),
        "response_p50_s": _r(reached["first_on_scene_s"].quantile(0.5), 1)
        if len(reached)
        else None,
        "response_p90_s": _r(reached["first_on_scene_s"].quantile(0.9), 1)
        if len(reached)
        else None,
        "on_scene_in_target": _r((judged["first_on_scene_s"] <= on_scene_target).mean(), 4)
        if len(judged)
        else None,
        **{f"utilisation_{a}": _r(by_agency.get(a), 4) for a in ("police", "ambulance", "fire")},
        "unit_km": _r(driven, 1),
        "pending_max": int(pending[0]) if pending else 0,
        "unserved": int(pending[1]) if pending else 0,
        "answer_target_s": float(answer_target),
        "on_scene_target_s": float(on_scene_target),
    }


def answers_by_number(timeline: Any) -> pd.DataFrame:
    """Per emergency number (and ``all``): calls, share answered within target, average
    speed of answer, share abandoned for good."""
    con = _con(timeline)
    answer_target, _ = targets(con)
    return (
        con.execute(
            f"""
        WITH placed AS (SELECT DISTINCT call, number FROM timeline WHERE kind = 'call_placed'),
        answered AS (SELECT call, wait_s FROM timeline WHERE kind = 'call_answered'),
        lost AS (SELECT call FROM timeline WHERE kind = 'call_abandoned' AND NOT redial),
        per_call AS (
            SELECT p.number, a.wait_s, l.call IS NOT NULL AS abandoned
            FROM placed p LEFT JOIN answered a USING (call) LEFT JOIN lost l USING (call)
        )
        SELECT coalesce(number, 'all') AS number, count(*) AS calls,
               avg(CASE WHEN wait_s <= {answer_target} THEN 1.0 ELSE 0.0 END) AS answered_in_target,
               avg(wait_s) AS speed_of_answer_s,
               avg(CASE WHEN abandoned THEN 1.0 ELSE 0.0 END) AS abandoned
        FROM per_call GROUP BY ROLLUP (number) ORDER BY number = 'all', number
        """
        ).df()
        if _has(con, "call_placed")
        else pd.DataFrame(
            [
                {
                    "number": "all",
                    "calls": 0,
                    "answered_in_target": None,
                    "speed_of_answer_s": None,
                    "abandoned": None,
                }
            ]
        )
    )


def incident_times(timeline: Any) -> pd.DataFrame:
    """One row per incident: type, priority, sector, place, when its first call came,
    processing time (to the first dispatch) and response time (to the first unit on
    scene), in seconds; NaN where it did not happen within the run."""
    con = _con(timeline)
    return con.execute(
        """
        WITH inc AS (
            SELECT incident, t AS occurred_t, incident_type, priority, sector, lat, lon
            FROM timeline WHERE kind = 'incident_occurred'),
        first_call AS (SELECT incident, min(t) AS first_call_t FROM timeline
                       WHERE kind = 'call_placed' GROUP BY incident),
        disp AS (SELECT incident, min(t) AS dispatched_t FROM timeline
                 WHERE kind = 'unit_state' AND state = 'dispatched' GROUP BY incident),
        scene AS (SELECT incident, min(t) AS on_scene_t FROM timeline
                  WHERE kind = 'unit_state' AND state = 'on_scene' GROUP BY incident)
        SELECT inc.*, first_call_t, dispatched_t - first_call_t AS processing_s,
               on_scene_t - first_call_t AS first_on_scene_s
        FROM inc LEFT JOIN first_call USING (incident) LEFT JOIN disp USING (incident)
             LEFT JOIN scene USING (incident)
        ORDER BY occurred_t, incident
        """
    ).df()


def response_times(timeline: Any) -> pd.DataFrame:
    """Response time (first call to the agency's first unit on scene) per agency and
    priority: incidents reached, median, 90th percentile, share within target."""
    con = _con(timeline)
    _, target = targets(con)
    return con.execute(
        f"""
        WITH first_call AS (SELECT incident, min(t) AS t0 FROM timeline
                            WHERE kind = 'call_placed' GROUP BY incident),
        inc AS (SELECT incident, priority FROM timeline WHERE kind = 'incident_occurred'),
        arrive AS (SELECT incident, agency, min(t) AS t1 FROM timeline
                   WHERE kind = 'unit_state' AND state = 'on_scene' GROUP BY incident, agency),
        rt AS (SELECT a.agency, i.priority, a.t1 - f.t0 AS s
               FROM arrive a JOIN first_call f USING (incident) JOIN inc i USING (incident))
        SELECT agency, priority, count(*) AS reached, median(s) AS p50_s,
               quantile_cont(s, 0.9) AS p90_s,
               avg(CASE WHEN s <= {target} THEN 1.0 ELSE 0.0 END) AS within_target
        FROM rt GROUP BY agency, priority ORDER BY agency, priority
        """
    ).df()


def utilisation(timeline: Any) -> pd.DataFrame:
    """Per unit: seconds on duty, seconds committed (dispatched until available or off
    duty again) and their ratio, against the rule of 60."""
    con = _con(timeline)
    states = con.execute(
        "SELECT t, unit, agency, state FROM timeline WHERE kind = 'unit_state' ORDER BY seq"
    ).df()
    end_row = con.execute("SELECT max(t) FROM timeline").fetchone()
    end = float(end_row[0]) if end_row and end_row[0] is not None else 0.0
    units = con.execute(
        "SELECT DISTINCT unit, agency FROM timeline WHERE kind = 'unit_state'"
    ).fetchall()
    rows = []
    for unit, agency in sorted(units):
        s = states[states["unit"] == unit]
        on_duty = committed = 0.0
        last_t, last_state = 0.0, "available"
        for t, state in zip(s["t"], s["state"], strict=True):
            span = t - last_t
            if last_state != "off_duty":
                on_duty += span
                if last_state != "available":
                    committed += span
            last_t, last_state = t, state
        span = end - last_t
        if last_state != "off_duty":
            on_duty += span
            if last_state != "available":
                committed += span
        rows.append(
            {
                "unit": unit,
                "agency": agency,
                "on_duty_s": on_duty,
                "committed_s": committed,
                "utilisation": committed / on_duty if on_duty else None,
            }
        )
    return pd.DataFrame(rows, columns=["unit", "agency", "on_duty_s", "committed_s", "utilisation"])


def pending_over_time(timeline: Any) -> pd.DataFrame:
    """The pending queue's length after each change (``t``, ``pending``)."""
    return (
        _con(timeline)
        .execute("SELECT t, pending FROM timeline WHERE kind = 'incident_pending' ORDER BY seq")
        .df()
    )


def response_by_sector(timeline: Any) -> pd.Series:
    """Median response time (first call to first unit on scene) per sector, seconds."""
    inc = incident_times(timeline)
    return inc.dropna(subset=["first_on_scene_s"]).groupby("sector")["first_on_scene_s"].median()
