"""The K3i picture at one moment: each sector's status (aman, waspada, rawan) by
:class:`StatusRules`, the units and open incidents, the cards and the alerts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.kpi._query import _con, _has
from twin.kpi.response import targets
from twin.kpi.run import geh, geh_share

#: Sector status, safest first. Doctrine words, the same in every language.
STATUSES = ("aman", "waspada", "rawan")
#: The status of a sector where nothing was recorded: unknown, which is not aman.
NO_DATA = "no_data"

#: The K3i cards' targets, the same for the cards and their alerts: card -> (target,
#: which way is better, the status when off target).
CARD_TARGETS: dict[str, tuple[float, str, str]] = {
    "answered_110": (0.9, "higher", "rawan"),
    "on_scene": (0.8, "higher", "rawan"),
    "tti": (1.3, "lower", "waspada"),
    "units_available": (1, "higher", "rawan"),
}


class StatusRules(BaseModel):
    """When a sector turns waspada or rawan: thresholds on the sector's KPIs at that moment.
    A sector takes the worst status any of its KPIs reaches, and the reasons are kept.
    Write a YAML file with the same fields to use other thresholds (``twin dash --rules``)."""

    model_config = ConfigDict(extra="forbid")
    tti: tuple[float, float] = Field((1.3, 1.6), description="congestion: travel-time index")
    open_incidents: tuple[float, float] = Field((2, 4), description="incidents open in the sector")
    response_p90_s: tuple[float, float] = Field(
        (600, 900), description="90th percentile call-to-scene, last hour, seconds"
    )
    rasa_aman: tuple[float, float] = Field(
        (60, 45), description="residents' sense of safety (0-100): at or below these"
    )

    @field_validator("*")
    @classmethod
    def _finite(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(math.isfinite(v) for v in value):
            raise ValueError(f"thresholds are numbers, not {value!r}")
        return value

    @classmethod
    def from_file(cls, path: Path) -> StatusRules:
        """Thresholds from a YAML file of the same fields (``twin dash --rules``); an
        :class:`~twin._errors.InputError` names the file and each field that is wrong."""
        doc = load_yaml(path, what="rules file")
        try:
            return cls.model_validate({} if doc is None else doc)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'rules'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InputError(f"{path}: {problems}") from None


def sector_status(
    timeline: Any,
    t: float,
    rules: StatusRules | None = None,
    *,
    sectors: Any = None,
) -> pd.DataFrame:
    """Each sector's KPIs at simulated time ``t`` and its status by ``rules``: columns
    sector, tti, open_incidents, response_p90_s, rasa_aman, status, reasons (a list of
    (kpi, value, threshold, status) that made it worse than aman).

    A sector the timeline says nothing of (no roads, no incident, no residents modelled)
    is left out, or, when ``sectors`` names all the city's sectors, listed with the status
    :data:`NO_DATA`: no data is not aman."""
    rules = rules or StatusRules()
    con = _con(timeline)
    frame = con.execute(
        f"""
        WITH sectors AS (SELECT DISTINCT sector FROM timeline WHERE sector IS NOT NULL
                         AND kind IN ('sector_state', 'incident_occurred', 'sector_safety', 'unit_state')),
        tti_now AS (SELECT sector, arg_max(tti, t) AS tti_at FROM timeline
                WHERE kind = 'sector_state' AND t <= {t} GROUP BY sector),
        opened AS (SELECT sector, count(*) AS n FROM timeline
                   WHERE kind = 'incident_occurred' AND t <= {t} GROUP BY sector),
        closed AS (SELECT sector, count(*) AS n FROM timeline
                   WHERE kind = 'incident_closed' AND t <= {t} GROUP BY sector),
        scene AS (SELECT o.sector, quantile_cont(s.t - o.t, 0.9) AS p90 FROM timeline o
                  JOIN (SELECT incident, min(t) AS t FROM timeline
                        WHERE kind = 'unit_state' AND state = 'on_scene' AND t <= {t} GROUP BY incident) s
                  USING (incident)
                  WHERE o.kind = 'incident_occurred' AND s.t > {t} - 3600 GROUP BY o.sector),
        safety AS (SELECT sector, arg_max(rasa_aman, t) AS safety_at FROM timeline
                   WHERE kind = 'sector_safety' AND t <= {t} GROUP BY sector)
        SELECT sectors.sector, tti_now.tti_at AS tti, coalesce(opened.n, 0) - coalesce(closed.n, 0) AS open_incidents,
               scene.p90 AS response_p90_s, safety.safety_at AS rasa_aman
        FROM sectors LEFT JOIN tti_now USING (sector) LEFT JOIN opened USING (sector)
        LEFT JOIN closed USING (sector) LEFT JOIN scene USING (sector) LEFT JOIN safety USING (sector)
        ORDER BY sector
        """
    ).df()
    statuses, reasons = [], []
    for row in frame.itertuples(index=False):
        level, why = 0, []
        for kpi_name in ("tti", "open_incidents", "response_p90_s", "rasa_aman"):
            value = getattr(row, kpi_name)
            if value is None or pd.isna(value):
                continue
            watch, danger = getattr(rules, kpi_name)
            lower_is_worse = kpi_name == "rasa_aman"
            for lvl, limit in ((2, danger), (1, watch)):
                if (value <= limit) if lower_is_worse else (value >= limit):
                    why.append((kpi_name, float(value), float(limit), STATUSES[lvl]))
                    level = max(level, lvl)
                    break
        statuses.append(STATUSES[level])
        reasons.append(why)
    frame["status"] = statuses
    frame["reasons"] = reasons
    if sectors is not None:
        missing = [s for s in sectors if s not in set(frame["sector"])]
        if missing:
            blank = pd.DataFrame({"sector": missing, "status": NO_DATA})
            blank["reasons"] = [[] for _ in missing]
            frame = pd.concat([frame, blank], ignore_index=True).sort_values("sector")
            frame = frame.reset_index(drop=True)
    return frame


def card_levels(cards: dict[str, Any]) -> dict[str, str | None]:
    """Each K3i card's status by :data:`CARD_TARGETS`: aman on target, its level off it,
    None where there is no data yet. The cards and their alerts both read it, so a card
    and its alert never disagree."""
    levels: dict[str, str | None] = {}
    for name, (target, better, level) in CARD_TARGETS.items():
        value = cards.get(name)
        if name == "units_available" and not cards.get("units"):
            value = None
        if value is None or pd.isna(value):
            levels[name] = None
            continue
        off = value < target if better == "higher" else value >= target
        levels[name] = level if off else "aman"
    return levels


def units_at(timeline: Any, t: float) -> pd.DataFrame:
    """Every unit's last state at or before ``t``: unit, unit_type, agency, state,
    incident, sector, lat, lon, since (the time it took that state). Of states taken at the
    same moment (back at its post and sent again at once), the last one recorded."""
    return (
        _con(timeline)
        .execute(
            f"""
            SELECT unit, unit_type, agency, state, incident, sector, lat, lon, t AS since
            FROM timeline WHERE kind = 'unit_state' AND t <= {t}
            QUALIFY row_number() OVER (PARTITION BY unit ORDER BY t DESC, seq DESC) = 1
            ORDER BY unit
            """
        )
        .df()
    )


def open_incidents_at(timeline: Any, t: float) -> pd.DataFrame:
    """Incidents opened by ``t`` and not closed by then, with their place and priority."""
    return (
        _con(timeline)
        .execute(
            f"""
            SELECT o.t, o.incident, o.incident_type, o.priority, o.sector, o.lat, o.lon
            FROM timeline o WHERE o.kind = 'incident_occurred' AND o.t <= {t}
            AND o.incident NOT IN (SELECT incident FROM timeline
                                   WHERE kind = 'incident_closed' AND t <= {t})
            ORDER BY o.t
            """
        )
        .df()
    )


def k3i_cards(
    timeline: Any,
    t: float,
    *,
    units: pd.DataFrame | None = None,
    incidents: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The K3i KPI cards at ``t``, over the last hour: 110 answered within target,
    incidents reached within target, congestion (network travel-time index), units
    available, incidents open, and the calibration (share of detectors with GEH < 5) where
    detectors report (``units`` and ``incidents``: :func:`units_at` and
    :func:`open_incidents_at` at ``t``, when the caller has them already)."""
    con = _con(timeline)
    answer_s, scene_s = targets(con)
    lo = t - 3600
    answered = con.execute(
        f"SELECT avg(CASE WHEN wait_s <= {answer_s} THEN 1.0 ELSE 0.0 END) FROM timeline "
        f"WHERE kind = 'call_answered' AND number = '110' AND t > {lo} AND t <= {t}"
    ).fetchone()[0]
    reached = con.execute(
        f"""
        SELECT avg(CASE WHEN s.t - o.t <= {scene_s} THEN 1.0 ELSE 0.0 END)
        FROM timeline o JOIN (SELECT incident, min(t) AS t FROM timeline
                              WHERE kind = 'unit_state' AND state = 'on_scene' GROUP BY incident) s
        USING (incident) WHERE o.kind = 'incident_occurred' AND s.t > {lo} AND s.t <= {t}
        """
    ).fetchone()[0]
    tti = con.execute(
        f"SELECT arg_max(tti, t) AS tti_at FROM timeline WHERE kind = 'network_state' AND t <= {t}"
    ).fetchone()[0]
    units = units_at(timeline, t) if units is None else units
    incidents = open_incidents_at(timeline, t) if incidents is None else incidents
    return {
        "answered_110": answered,
        "answer_target_s": answer_s,
        "on_scene": reached,
        "on_scene_target_s": scene_s,
        "tti": tti,
        "units_available": int((units["state"] == "available").sum()) if len(units) else 0,
        "units": len(units),
        "open_incidents": len(incidents),
        "geh_under_5": geh_share(geh(con, until=t)) if _has(con, "count_observed") else None,
    }


def road_speeds(timeline: Any, t: float) -> pd.Series:
    """Each SUMO edge's speed at ``t`` as a share of its free-flow speed (1 / TTI), from
    the last edge state at or before ``t``."""
    frame = (
        _con(timeline)
        .execute(
            f"SELECT edge, 1.0 / arg_max(tti, t) AS share FROM timeline "
            f"WHERE kind = 'edge_state' AND t <= {t} AND t > {t} - 600 GROUP BY edge"
        )
        .df()
    )
    return frame.set_index("edge")["share"] if len(frame) else pd.Series(dtype=float)


def unit_spells(timeline: Any, until: float | None = None) -> pd.DataFrame:
    """Every unit's states as spells: unit, state, incident, start, end (up to ``until``,
    default the timeline's end), for a unit board."""
    con = _con(timeline)
    end = until
    if end is None:
        row = con.execute("SELECT max(t) FROM timeline").fetchone()
        end = float(row[0]) if row and row[0] is not None else 0.0
    return con.execute(
        f"""
        SELECT unit, state, incident, t AS start,
               coalesce(lead(t) OVER (PARTITION BY unit ORDER BY t, seq), {end}) AS end
        FROM timeline WHERE kind = 'unit_state' AND t <= {end} ORDER BY unit, t, seq
        """
    ).df()


def alerts(timeline: Any, t: float, status: pd.DataFrame, cards: dict[str, Any]) -> pd.DataFrame:
    """The K3i alerts at ``t``: each sector waspada or rawan (from :func:`sector_status`)
    and each KPI card off its target (:func:`k3i_cards`), with its reason, and whether an
    officer acknowledged it (an ``alert_acknowledged`` event at or before ``t``). An alert's
    id names what and how bad (``S05:rawan``), so a sector that gets worse alerts again;
    ``reason`` says why in KPI keys, ``why`` gives the (key, value, threshold or target)
    triples to word it."""
    rows = []
    for r in status.itertuples(index=False):
        if r.status not in ("aman", NO_DATA):
            reason = "; ".join(f"{k} {v:.3g}" for k, v, _, _ in r.reasons)
            rows.append(
                {
                    "alert": f"{r.sector}:{r.status}",
                    "sector": r.sector,
                    "status": r.status,
                    "reason": reason,
                    "why": [(k, v, limit) for k, v, limit, _ in r.reasons],
                }
            )
    for name, level in card_levels(cards).items():
        if level not in (None, "aman"):
            value = float(cards[name])
            rows.append(
                {
                    "alert": f"{name}:{level}",
                    "sector": "",
                    "status": level,
                    "reason": f"{name} {value:.3g}",
                    "why": [(name, value, CARD_TARGETS[name][0])],
                }
            )
    frame = pd.DataFrame(rows, columns=["alert", "sector", "status", "reason", "why"])
    con = _con(timeline)
    acked = {
        a
        for (a,) in con.execute(
            f"SELECT DISTINCT alert FROM timeline WHERE kind = 'alert_acknowledged' AND t <= {t}"
        ).fetchall()
    }
    frame["acknowledged"] = frame["alert"].isin(acked)
    return frame
