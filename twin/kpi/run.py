"""A run's KPIs: the traffic and community figures over time, GEH against the detectors,
and the summary of every KPI (see :mod:`twin.kpi`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from twin.kpi._query import _con, _has, _r, connect
from twin.kpi.labels import (
    _COMMUNITY_KEYS,
    _TRAFFIC_KEYS,
    DELAYED_S,
    GRIDLOCK_HALTING_SHARE,
    GRIDLOCK_SAMPLES,
    QUEUE_M_PER_VEHICLE,
)
from twin.kpi.response import response_summary
from twin.kpi.service import service_summary
from twin.scenario.traffic import VEHICLE_TYPE_NAMES


def by_vehicle_type(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]] | None:
    """Trip figures per vehicle type of the scenario's mix: trips completed, mean trip time
    (min), mean delay (s), mean speed over the trip (km/h) and teleports; None for traffic of
    cars only. Emergency units (their own KPIs) are left out. A teleported vehicle's type is read from its name (``<piece>_<type>_<n>``)."""
    rows = con.execute(
        """
        SELECT vehicle_type, count(*), avg(duration_s), avg(time_loss_s),
               sum(route_length_m) / nullif(sum(duration_s), 0)
        FROM timeline WHERE kind = 'trip' AND vehicle_type IS NOT NULL
          AND NOT starts_with(vehicle_type, 'twin_')
        GROUP BY vehicle_type ORDER BY vehicle_type
        """
    ).fetchall()
    if len(rows) < 2 and all(r[0] == "car" for r in rows):
        return None
    teleports = dict(
        con.execute(
            "SELECT vehicle, 1 FROM timeline WHERE kind = 'teleport' AND vehicle IS NOT NULL"
        ).fetchall()
    )
    out: dict[str, dict[str, Any]] = {}
    order = {name: i for i, name in enumerate(VEHICLE_TYPE_NAMES)}
    rows.sort(key=lambda r: (order.get(r[0], len(order)), r[0]))
    for vtype, n, duration, loss, speed in rows:
        out[vtype] = {
            "trips": int(n),
            "mean_trip_min": round(float(duration) / 60, 2),
            "mean_delay_s": round(float(loss), 1),
            "mean_speed_kmh": round(float(speed) * 3.6, 1) if speed else None,
            "teleports": sum(1 for v in teleports if f"_{vtype}_" in v),
        }
    return out


def accidents_by_vehicle(con: duckdb.DuckDBPyConnection) -> dict[str, int] | None:
    """Traffic accidents per vehicle type involved, where the scenario gives their rates by
    type (``response.incidents.accidents_by_vehicle``); None otherwise."""
    rows = con.execute(
        """
        SELECT vehicle_type, count(*) FROM timeline
        WHERE kind = 'incident_occurred' AND incident_type = 'traffic_accident'
          AND vehicle_type IS NOT NULL AND vehicle_type <> ''
        GROUP BY vehicle_type
        """
    ).fetchall()
    if not rows:
        return None
    order = {name: i for i, name in enumerate(VEHICLE_TYPE_NAMES)}
    return {k: int(n) for k, n in sorted(rows, key=lambda r: (order.get(r[0], 99), r[0]))}


def network_over_time(timeline: pa.Table | Path | str) -> pd.DataFrame:
    """Network speed (km/h), TTI, vehicles, halting and teleports at each sample."""
    return (
        connect(timeline)
        .execute(
            """
        SELECT t, speed_mps * 3.6 AS speed_kmh, tti, vehicles, halting, departed, arrived,
               teleports, waiting_to_insert
        FROM timeline WHERE kind = 'network_state' ORDER BY t, seq
        """
        )
        .df()
    )


def sector_over_time(timeline: pa.Table | Path | str) -> pd.DataFrame:
    """Per sector and sample: speed (km/h), TTI, vehicles, halting, density."""
    return (
        connect(timeline)
        .execute(
            """
        SELECT t, sector, speed_mps * 3.6 AS speed_kmh, tti, vehicles, halting, density_veh_km
        FROM timeline WHERE kind = 'sector_state' ORDER BY t, sector
        """
        )
        .df()
    )


def road_events(timeline: pa.Table | Path | str) -> pd.DataFrame:
    """Each road event: type, edges, start, end (NaN if it outlasted the run), rerouted."""
    return (
        connect(timeline)
        .execute(
            """
        WITH s AS (SELECT event_id, event_type, edges, lanes_closed, t AS start_s
                   FROM timeline WHERE kind = 'road_event_started'),
             e AS (SELECT event_id, t AS end_s FROM timeline WHERE kind = 'road_event_ended'),
             r AS (SELECT event_id, sum(vehicles) AS rerouted, sum(diverted) AS cut_short FROM timeline
                   WHERE kind = 'vehicles_rerouted' GROUP BY event_id)
        SELECT s.event_id, s.event_type, len(s.edges) AS roads, s.lanes_closed, s.start_s,
               e.end_s, CAST(coalesce(r.rerouted, 0) AS BIGINT) AS rerouted,
               CAST(coalesce(r.cut_short, 0) AS BIGINT) AS cut_short
        FROM s LEFT JOIN e USING (event_id) LEFT JOIN r USING (event_id)
        ORDER BY s.start_s, s.event_id
        """
        )
        .df()
    )


def summary(timeline: pa.Table | Path | str) -> dict[str, Any]:
    """The run's KPIs as a flat dict (keys of :data:`KPI_LABELS`, plus context)."""
    con = connect(timeline)
    net = network_over_time(timeline)
    trips = con.execute(
        f"""
        SELECT count(*) AS n, avg(duration_s) AS mean_duration, sum(time_loss_s) AS loss,
               avg(time_loss_s) AS mean_loss, count(*) FILTER (WHERE time_loss_s > {DELAYED_S}) AS delayed
        FROM timeline WHERE kind = 'trip'
        """
    ).fetchone()
    queue = con.execute(
        """
        SELECT edge, t, halting FROM timeline WHERE kind = 'edge_state'
        ORDER BY halting DESC, t, edge LIMIT 1
        """
    ).fetchone()
    if queue is None:  # edges not recorded: fall back on sectors
        queue = con.execute(
            "SELECT sector, t, halting FROM timeline WHERE kind = 'sector_state' "
            "ORDER BY halting DESC, t, sector LIMIT 1"
        ).fetchone()
    rerouted = con.execute(
        "SELECT coalesce(sum(vehicles), 0), coalesce(sum(diverted), 0) FROM timeline "
        "WHERE kind = 'vehicles_rerouted'"
    ).fetchone()
    ended = con.execute(
        "SELECT status, reason FROM timeline WHERE kind = 'run_ended' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    n_trips = int(trips[0]) if trips else 0
    if net.empty and n_trips == 0:  # no traffic simulated: no traffic KPIs
        return {
            **dict.fromkeys(_TRAFFIC_KEYS),
            "accidents_by_vehicle": accidents_by_vehicle(con),
            **response_summary(con),
            **community_summary(con),
            **service_summary(con),
            "status": ended[0] if ended else "unknown",
            "samples": 0,
        }
    last = net.iloc[-1] if len(net) else None
    teleports = int(last["teleports"]) if last is not None else 0
    departed = int(last["departed"]) if last is not None else 0
    return {
        "network_speed_kmh": round(float(net["speed_kmh"].mean()), 2) if len(net) else None,
        "mean_tti": round(float(net["tti"].mean()), 3) if len(net) else None,
        "peak_tti": round(float(net["tti"].max()), 3) if len(net) else None,
        "trips": n_trips,
        "completed_share": round(min(n_trips / departed, 1.0), 4) if departed else None,
        "mean_trip_min": round(float(trips[1]) / 60, 2) if n_trips else None,
        "delay_veh_h": round(float(trips[2]) / 3600, 2) if n_trips else 0.0,
        "mean_delay_s": round(float(trips[3]), 1) if n_trips else None,
        "vehicles_delayed": int(trips[4]) if n_trips else 0,
        "vehicles_rerouted": int(rerouted[0]) if rerouted else 0,
        "trips_cut_short": int(rerouted[1]) if rerouted else 0,
        "longest_queue_veh": int(queue[2]) if queue else 0,
        "longest_queue_at": {
            "where": queue[0],
            "t": float(queue[1]),
            "length_m": int(queue[2]) * QUEUE_M_PER_VEHICLE,
        }
        if queue
        else None,
        "teleports": teleports,
        "departed": departed,
        "by_vehicle_type": by_vehicle_type(con),
        "accidents_by_vehicle": accidents_by_vehicle(con),
        "gridlock": gridlock(net),
        "samples": len(net),
        "status": ended[0] if ended else "unknown",
        "geh_under_5": geh_share(geh(timeline)),
        **response_summary(con),
        **community_summary(con),
        **service_summary(con),
    }


def geh(timeline: Any, *, until: float | None = None, window_s: float = 3600.0) -> pd.DataFrame:
    """How well the simulated traffic follows the detectors over the ``window_s`` before
    ``until`` (default: the last simulated count): per detector, the observed and simulated
    flows (vehicles an hour, each over the part of the window its counts cover) and the
    GEH statistic, sqrt(2 (M - C)^2 / (M + C)). Empty without both kinds of count."""
    con = _con(timeline)
    if not (_has(con, "count_observed") and _has(con, "count_simulated")):
        return pd.DataFrame(columns=["sensor", "observed_vph", "simulated_vph", "geh"])
    if until is None:
        until = con.execute(
            "SELECT max(t) FROM timeline WHERE kind = 'count_simulated'"
        ).fetchone()[0]
    lo = until - window_s
    frame = con.execute(
        f"""
        WITH obs AS (
            SELECT sensor, sum(entered) AS n, sum(interval_s) AS span FROM timeline
            WHERE kind = 'count_observed' AND end_s > {lo} AND end_s <= {until} GROUP BY sensor),
        sim AS (
            SELECT sensor, sum(entered) AS n, sum(interval_s) AS span FROM timeline
            WHERE kind = 'count_simulated' AND t > {lo} AND t <= {until} GROUP BY sensor)
        SELECT sensor, obs.n * 3600.0 / obs.span AS observed_vph, sim.n * 3600.0 / sim.span AS simulated_vph
        FROM obs JOIN sim USING (sensor) WHERE obs.span > 0 AND sim.span > 0 ORDER BY sensor
        """
    ).df()
    frame["geh"] = geh_statistic(frame["simulated_vph"], frame["observed_vph"])
    return frame


#: The accepted standard of calibration: GEH below this on at least :data:`GEH_TARGET` of
#: the detectors (or detector-hours).
GEH_LIMIT = 5.0


def geh_statistic(model: Any, count: Any) -> Any:
    """The GEH statistic of hourly flows, sqrt(2 (M - C)^2 / (M + C)), element by element
    (0 where both are 0).

    >>> [round(float(g), 2) for g in geh_statistic([100, 0, 400], [120, 0, 300])]
    [1.91, 0.0, 5.35]
    """
    m, c = np.asarray(model, dtype=float), np.asarray(count, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(2 * (m - c) ** 2 / (m + c))
    return np.where((m + c) > 0, out, 0.0)


def geh_share(frame: pd.DataFrame) -> float | None:
    """The share of detectors with GEH under :data:`GEH_LIMIT` (None without any)."""
    return round(float((frame["geh"] < GEH_LIMIT).mean()), 3) if len(frame) else None


def community_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The community KPIs; None where the run has no community model. Rasa aman and trust
    are the last hour's; the crime concentration is Weisburd's: the smallest share of road
    segments that holds half of the crime."""
    row = con.execute(
        "SELECT segments FROM timeline WHERE kind = 'community_configured' LIMIT 1"
    ).fetchone()
    if not row:
        return dict.fromkeys(_COMMUNITY_KEYS)
    conc = crime_concentration(con, segments=int(row[0]))
    crimes = con.execute(
        "SELECT count(*), avg(CASE WHEN reported THEN 1.0 ELSE 0.0 END) FROM timeline "
        "WHERE kind = 'crime_committed' AND crime_type <> 'public_order'"
    ).fetchone()
    last = con.execute(
        "SELECT avg(rasa_aman), min(rasa_aman), avg(trust) FROM timeline WHERE kind = 'sector_safety' "
        "AND t = (SELECT max(t) FROM timeline WHERE kind = 'sector_safety')"
    ).fetchone()
    unrest = con.execute("SELECT max(active) FROM timeline WHERE kind = 'unrest_state'").fetchone()
    disputes = con.execute(
        "SELECT count(*), avg(CASE WHEN outcome = 'mediated' THEN 1.0 ELSE 0.0 END) FROM timeline "
        "WHERE kind = 'dispute'"
    ).fetchone()
    return {
        "crimes": int(crimes[0]) if crimes else 0,
        "crimes_reported": _r(crimes[1], 4) if crimes and crimes[0] else None,
        "segments_for_quarter": _r(conc.get(0.25), 4),
        "segments_for_half": _r(conc.get(0.5), 4),
        "rasa_aman": _r(last[0], 1) if last else None,
        "rasa_aman_lowest": _r(last[1], 1) if last else None,
        "trust": _r(last[2], 3) if last else None,
        "disputes": int(disputes[0]) if disputes else 0,
        "disputes_mediated": _r(disputes[1], 4) if disputes and disputes[0] else None,
        "unrest_peak": int(unrest[0]) if unrest and unrest[0] is not None else None,
    }


def crime_concentration(
    timeline: Any, *, segments: int, shares: tuple[float, ...] = (0.25, 0.5)
) -> dict[float, float]:
    """For each share of crime, the smallest share of the city's ``segments`` road
    segments that holds it (a crime's segment is the midpoint of its street)."""
    con = _con(timeline)
    counts = [
        r[0]
        for r in con.execute(
            "SELECT count(*) AS n FROM timeline WHERE kind = 'crime_committed' AND crime_type <> 'public_order' "
            "GROUP BY round(lat, 6), round(lon, 6) ORDER BY n DESC"
        ).fetchall()
    ]
    total = sum(counts)
    out: dict[float, float] = {}
    if not total or not segments:
        return out
    running = 0
    k = 0
    for share in sorted(shares):
        while running < share * total:
            running += counts[k]
            k += 1
        out[share] = k / segments
    return out


def safety_over_time(timeline: Any) -> pd.DataFrame:
    """Each sector's rasa aman, trust and disorder at each hourly report."""
    return (
        _con(timeline)
        .execute(
            "SELECT t, sector, rasa_aman, trust, disorder, crimes FROM timeline "
            "WHERE kind = 'sector_safety' ORDER BY t, sector"
        )
        .df()
    )


def gridlock(net: pd.DataFrame) -> bool:
    """Whether the network locked up (see the module docstring)."""
    if net.empty:
        return False
    share = net["halting"] / net["vehicles"].clip(lower=1)
    jammed = (share > GRIDLOCK_HALTING_SHARE) & (net["vehicles"] >= 20)
    run = jammed.astype(int).groupby((~jammed).cumsum()).cumsum().max()
    last = net.iloc[-1]
    return bool(run >= GRIDLOCK_SAMPLES or last["teleports"] > 0.01 * max(last["departed"], 1))


def sector_summary(timeline: Any) -> pd.DataFrame:
    """A run's figures by sector, what an ensemble keeps of each replication besides its
    KPIs: median response time (seconds, call to first unit on scene), mean travel-time
    index, crimes committed and rasa aman at the end of the run. A sector the run has no
    figure for holds None in that column."""
    from twin.kpi.response import response_by_sector

    con = _con(timeline)
    parts = {"response_p50_s": response_by_sector(con)}
    if _has(con, "sector_state"):
        parts["tti"] = sector_over_time(con).groupby("sector")["tti"].mean()
    if _has(con, "sector_safety"):
        safety = safety_over_time(con)
        parts["crimes"] = safety.groupby("sector")["crimes"].sum()
        parts["rasa_aman"] = safety[safety["t"] == safety["t"].max()].set_index("sector")[
            "rasa_aman"
        ]
    frame = pd.DataFrame({k: v for k, v in parts.items()})
    frame.index.name = "sector"
    for col in ("response_p50_s", "tti", "crimes", "rasa_aman"):
        if col not in frame:
            frame[col] = None
    return frame.reset_index()[["sector", "response_p50_s", "tti", "crimes", "rasa_aman"]]
