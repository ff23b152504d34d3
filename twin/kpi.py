"""KPIs: pure queries over a timeline, with DuckDB.

Every function takes a timeline, either a pyarrow table or a ``timeline.parquet`` path,
and returns plain values or DataFrames. Nothing here simulates or writes anything.

The traffic KPIs:

=========================  ==============================================================
network speed              space-mean speed of the whole network (km/h): total length over
                           the time it takes to drive every road once at current speeds
travel-time index (TTI)    that time over the free-flow time (1 = free flow)
trips, trip time           vehicles that arrived, and their mean door-to-door time
delay                      SUMO's time loss: time lost against driving at the desired speed
vehicles delayed           trips that lost more than :data:`DELAYED_S` seconds
vehicles rerouted          vehicles sent on a new route round a road that a road event
                           closed
trips cut short            vehicles that could not get round a closure and ended their
                           trip at the last open road before it (their trips are shorter,
                           so they lower the delay: read the two together)
longest queue              most halting vehicles on one road at one sample
teleports                  vehicles SUMO removed after being stuck ``teleport_after``
gridlock                   flagged when, for :data:`GRIDLOCK_SAMPLES` samples in a row,
                           more than half of the vehicles in the network are halting, or
                           when teleports exceed 1 % of departures
=========================  ==============================================================

The emergency-response KPIs (targets from the run's ``response_configured`` event: by
default 10 s to answer, 10 minutes to be on scene):

=========================  ==============================================================
answered in target         calls answered within the answer target, over calls placed
                           (each redial is a new attempt of the same call; a call counts
                           once, by its final attempt)
speed of answer            mean wait of answered calls (ASA)
abandoned                  calls whose caller hung up and did not call again, over calls
processing time            first call placed to first unit dispatched, per incident
response time              first call placed to the first unit of an agency on scene
on scene in target         incidents whose first unit was on scene within the target of
                           their first call; incidents whose first call came later than
                           the target before the end of the run, and are not yet reached,
                           are left out (their outcome is unknown)
utilisation                share of each unit's time on duty spent committed (dispatched
                           to available again); :data:`RULE_OF_60` is the ceiling planners
                           hold patrol units to
pending                    incident needs waiting for a free unit
=========================  ==============================================================
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from twin._errors import InputError
from twin._inputs import load_yaml

DELAYED_S = 120.0
GRIDLOCK_SAMPLES = 5
GRIDLOCK_HALTING_SHARE = 0.5
QUEUE_M_PER_VEHICLE = 7.5
#: The "rule of 60": patrol units committed to calls more than this share of their time on
#: duty have too little left for patrol and back-up.
RULE_OF_60 = 0.6
#: Response targets when a timeline does not state its own.
ANSWER_TARGET_S = 10.0
ON_SCENE_TARGET_S = 600.0

#: KPI key -> (label, unit, better): how ``twin run`` and reports show each KPI.
KPI_LABELS: dict[str, tuple[str, str, str]] = {
    "network_speed_kmh": ("Network mean speed", "km/h", "higher"),
    "mean_tti": ("Mean travel-time index", "", "lower"),
    "peak_tti": ("Peak travel-time index", "", "lower"),
    "trips": ("Trips completed", "trips", "higher"),
    "mean_trip_min": ("Mean trip time", "min", "lower"),
    "delay_veh_h": ("Total delay", "vehicle-hours", "lower"),
    "mean_delay_s": ("Mean delay per trip", "s", "lower"),
    "vehicles_delayed": (f"Vehicles delayed over {DELAYED_S / 60:.0f} min", "vehicles", "lower"),
    "vehicles_rerouted": ("Vehicles rerouted round closed roads", "vehicles", "lower"),
    "trips_cut_short": ("Trips cut short at a closure", "trips", "lower"),
    "longest_queue_veh": ("Longest queue", "vehicles", "lower"),
    "teleports": ("Teleports (stuck vehicles removed)", "vehicles", "lower"),
    "gridlock": ("Gridlock", "", "lower"),
    "incidents": ("Incidents", "incidents", ""),
    "calls": ("Emergency calls", "calls", ""),
    "answered_in_target": ("Calls answered within target", "%", "higher"),
    "speed_of_answer_s": ("Average speed of answer", "s", "lower"),
    "abandoned": ("Calls abandoned", "%", "lower"),
    "processing_s": ("Mean processing time (call to dispatch)", "s", "lower"),
    "response_p50_s": ("Response time, median (call to on scene)", "s", "lower"),
    "response_p90_s": ("Response time, 90th percentile", "s", "lower"),
    "on_scene_in_target": ("Incidents reached within target", "%", "higher"),
    "utilisation_police": ("Police unit utilisation", "%", "lower"),
    "utilisation_ambulance": ("Ambulance utilisation", "%", "lower"),
    "utilisation_fire": ("Fire engine utilisation", "%", "lower"),
    "pending_max": ("Longest pending queue", "needs", "lower"),
    "unserved": ("Incident needs never served", "needs", "lower"),
    "crimes": ("Crimes committed", "crimes", "lower"),
    "crimes_reported": ("Crimes reported to 110", "%", ""),
    "segments_for_quarter": ("Road segments holding a quarter of the crime", "%", ""),
    "segments_for_half": ("Road segments holding half the crime", "%", ""),
    "rasa_aman": ("Rasa aman (sense of safety), mean over sectors", "0-100", "higher"),
    "rasa_aman_lowest": ("Rasa aman of the least safe sector", "0-100", "higher"),
    "trust": ("Residents' trust in the police", "0-1", "higher"),
    "disputes": ("Disputes between neighbours", "disputes", "lower"),
    "disputes_mediated": ("Disputes mediated by Bhabinkamtibmas", "%", "higher"),
    "unrest_peak": ("Most rioters at once", "people", "lower"),
    "geh_under_5": ("Detectors with GEH < 5, last hour (calibration)", "%", "higher"),
}
#: The accepted standard: a calibrated model has GEH < 5 at 85 % of its count sites.
GEH_TARGET = 0.85


def connect(timeline: Any, *, load: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the timeline as the view ``timeline``; or, with ``load``, as
    a table in DuckDB's own storage (in memory), sorted by kind and time, so that a query
    skips the row groups of other kinds: for the many queries of a dashboard over one
    timeline (measured: half the time of each K3i query)."""
    from twin import events as ev

    if isinstance(timeline, duckdb.DuckDBPyConnection):  # a timeline connected already
        return timeline
    con = duckdb.connect()
    if isinstance(timeline, pa.Table):
        con.register("timeline_given", timeline)
        source, names = "timeline_given", set(timeline.schema.names)
    else:
        source = f"read_parquet('{Path(timeline).as_posix()}')"
        names = set(pq.read_schema(Path(timeline)).names)
    # a timeline written by an older twin lacks the fields of newer events: NULL columns
    missing = [f for f in ev.schema() if f.name not in names]
    extra = "".join(
        f", NULL::{_SQL_TYPES.get(str(f.type), 'VARCHAR')} AS {f.name}" for f in missing
    )
    if load:
        con.execute(f"CREATE TABLE timeline AS SELECT *{extra} FROM {source} ORDER BY kind, t, seq")
        if source == "timeline_given":
            con.unregister(source)
    else:
        con.execute(f"CREATE VIEW timeline AS SELECT *{extra} FROM {source}")
    return con


_SQL_TYPES = {"double": "DOUBLE", "int64": "BIGINT", "bool": "BOOLEAN", "string": "VARCHAR"}


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
        return {**dict.fromkeys(_TRAFFIC_KEYS), **response_summary(con), **community_summary(con),
                "status": ended[0] if ended else "unknown", "samples": 0}  # fmt: skip
    last = net.iloc[-1] if len(net) else None
    teleports = int(last["teleports"]) if last is not None else 0
    departed = int(last["departed"]) if last is not None else 0
    return {
        "network_speed_kmh": round(float(net["speed_kmh"].mean()), 2) if len(net) else None,
        "mean_tti": round(float(net["tti"].mean()), 3) if len(net) else None,
        "peak_tti": round(float(net["tti"].max()), 3) if len(net) else None,
        "trips": n_trips,
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
        "gridlock": gridlock(net),
        "samples": len(net),
        "status": ended[0] if ended else "unknown",
        "geh_under_5": geh_share(geh(timeline)),
        **response_summary(con),
        **community_summary(con),
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


#: The accepted standard of calibration: GEH below this on at least :data:`GEH_SHARE` of
#: the detectors (or detector-hours).
GEH_LIMIT = 5.0
GEH_SHARE = 0.85


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
    counts = [r[0] for r in con.execute(
        "SELECT count(*) AS n FROM timeline WHERE kind = 'crime_committed' AND crime_type <> 'public_order' "
        "GROUP BY round(lat, 6), round(lon, 6) ORDER BY n DESC"
    ).fetchall()]  # fmt: skip
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


_TRAFFIC_KEYS = [
    "network_speed_kmh", "mean_tti", "peak_tti", "trips", "mean_trip_min", "delay_veh_h",
    "mean_delay_s", "vehicles_delayed", "vehicles_rerouted", "trips_cut_short",
    "longest_queue_veh", "longest_queue_at", "teleports", "departed", "gridlock", "geh_under_5",
]  # fmt: skip
_COMMUNITY_KEYS = [
    "crimes", "crimes_reported", "segments_for_quarter", "segments_for_half", "rasa_aman", "rasa_aman_lowest", "trust",
    "disputes", "disputes_mediated", "unrest_peak",
]  # fmt: skip
_RESPONSE_KEYS = [k for k in KPI_LABELS if k not in _TRAFFIC_KEYS and k not in _COMMUNITY_KEYS]


def targets(con: duckdb.DuckDBPyConnection) -> tuple[float, float]:
    """The run's answer and on-scene targets in seconds."""
    row = con.execute(
        "SELECT answer_target_s, on_scene_target_s FROM timeline "
        "WHERE kind = 'response_configured' LIMIT 1"
    ).fetchone()
    return (float(row[0]), float(row[1])) if row else (ANSWER_TARGET_S, ON_SCENE_TARGET_S)


def _r(x: Any, digits: int) -> Any:
    return None if x is None or pd.isna(x) else round(float(x), digits)


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
    _, on_scene_target = targets(con)
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
        "pending_max": int(pending[0]) if pending else 0,
        "unserved": int(pending[1]) if pending else 0,
    }


def _con(timeline: Any) -> duckdb.DuckDBPyConnection:
    return timeline if isinstance(timeline, duckdb.DuckDBPyConnection) else connect(timeline)


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


def _has(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    row = con.execute(f"SELECT count(*) FROM timeline WHERE kind = '{kind}'").fetchone()
    return bool(row and row[0])


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
        rows.append({"unit": unit, "agency": agency, "on_duty_s": on_duty, "committed_s": committed,
                     "utilisation": committed / on_duty if on_duty else None})  # fmt: skip
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


def format_value(value: Any, unit: str = "", *, signed: bool = False) -> str:
    """A KPI value for people: shares (unit ``%``) as percentages, differences of shares
    in percentage points, counts with thousands separators."""
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "–"
    if isinstance(value, bool):
        return "YES" if value else "no"
    if unit == "%" and isinstance(value, int | float):
        return f"{value * 100:+.1f} pp" if signed else f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:+,.2f}" if signed else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:+,}" if signed else f"{value:,}"
    return str(value)


def gridlock(net: pd.DataFrame) -> bool:
    """Whether the network locked up (see the module docstring)."""
    if net.empty:
        return False
    share = net["halting"] / net["vehicles"].clip(lower=1)
    jammed = (share > GRIDLOCK_HALTING_SHARE) & (net["vehicles"] >= 20)
    run = jammed.astype(int).groupby((~jammed).cumsum()).cumsum().max()
    last = net.iloc[-1]
    return bool(run >= GRIDLOCK_SAMPLES or last["teleports"] > 0.01 * max(last["departed"], 1))


def compare(
    summaries: dict[str, dict[str, Any] | list[dict[str, Any]]], *, reference: str | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:  # fmt: skip
    """KPIs of several runs side by side, with each run's difference to the reference run.

    Returns a table with one row per KPI: label, unit, one column per run, and a
    ``Δ <run>`` column per other run.

    A run given as a list of summaries is an ensemble: replications of one plan under
    other seeds. Its column then holds the mean, ``± <run>`` the half-width of the mean's
    ``confidence`` interval (Student's t) and ``n <run>`` the replications; ``± Δ <run>``
    is the half-width of the difference's interval (Welch's t), where both sides have two
    replications or more (else None: one run says nothing of its own spread).

    >>> t = compare({"a": [{"trips": 10}, {"trips": 12}], "b": [{"trips": 15}, {"trips": 17}]})
    >>> row = t.iloc[0]
    >>> row["a"], row["Δ b"], round(row["± Δ b"], 2)
    (11.0, 5.0, 6.08)
    """
    names = list(summaries)
    ref = reference or names[0]
    ensembles = any(isinstance(v, list) for v in summaries.values())
    runs = {n: (v if isinstance(v, list) else [v]) for n, v in summaries.items()}
    rows = []
    for key, (label, unit, better) in KPI_LABELS.items():
        if all(s.get(key) is None for n in names for s in runs[n]):
            continue  # a part of the twin none of the runs had (traffic, response)
        row: dict[str, Any] = {"kpi": key, "label": label, "unit": unit, "better": better}
        spread: dict[str, tuple[float, float, int] | None] = {}  # mean, variance, n
        for name in names:
            values = [s.get(key) for s in runs[name]]
            row[name], spread[name] = _ensemble_value(values)
            if ensembles:
                row[f"n {name}"] = len(values)
                row[f"± {name}"] = _half_width(spread[name], confidence)
        for name in names:
            if name == ref:
                continue
            a, b = row[ref], row[name]
            if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
                row[f"Δ {name}"] = None
            else:
                row[f"Δ {name}"] = round(b - a, 3)
            if ensembles:
                row[f"± Δ {name}"] = _welch_half_width(spread[ref], spread[name], confidence)
        rows.append(row)
    return pd.DataFrame(rows, dtype=object)  # object columns keep counts as ints


def _ensemble_value(values: list[Any]) -> tuple[Any, tuple[float, float, int] | None]:
    """A KPI over replications: the one value of a single run (as it is), else the mean,
    with the sample's mean, variance and size where all are numbers."""
    if len(values) == 1:
        v = values[0]
        number = isinstance(v, int | float) and not isinstance(v, bool)
        return v, ((float(v), 0.0, 1) if number else None)
    if any(v is None or not isinstance(v, int | float) or isinstance(v, bool) for v in values):
        return (values[0] if all(v == values[0] for v in values) else None), None
    x = np.asarray(values, dtype=float)
    return float(x.mean()), (float(x.mean()), float(x.var(ddof=1)), len(x))


def _half_width(spread: tuple[float, float, int] | None, confidence: float) -> float | None:
    if spread is None or spread[2] < 2:
        return None
    from scipy import stats

    _, var, n = spread
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * np.sqrt(var / n))


def _welch_half_width(
    a: tuple[float, float, int] | None, b: tuple[float, float, int] | None, confidence: float
) -> float | None:
    """Half-width of the interval of a difference of two means (Welch-Satterthwaite)."""
    if a is None or b is None or a[2] < 2 or b[2] < 2:
        return None
    from scipy import stats

    va, vb = a[1] / a[2], b[1] / b[2]
    if va + vb == 0:
        return 0.0
    df = (va + vb) ** 2 / (va**2 / (a[2] - 1) + vb**2 / (b[2] - 1))
    return float(stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(va + vb))


# -- the K3i picture at one moment (twin.dashboards) -------------------------------------------

#: Sector status, safest first. Doctrine words, the same in every language.
STATUSES = ("aman", "waspada", "rawan")


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


def sector_status(timeline: Any, t: float, rules: StatusRules | None = None) -> pd.DataFrame:
    """Each sector's KPIs at simulated time ``t`` and its status by ``rules``: columns
    sector, tti, open_incidents, response_p90_s, rasa_aman, status, reasons (a list of
    (kpi, value, threshold) that made it worse than aman)."""
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
    return frame


def units_at(timeline: Any, t: float) -> pd.DataFrame:
    """Every unit's last state at or before ``t``: unit, unit_type, agency, state,
    incident, sector, lat, lon, since (the time it took that state)."""
    return (
        _con(timeline)
        .execute(
            f"""
            SELECT unit, arg_max(unit_type, t) AS unit_type, arg_max(agency, t) AS agency,
                   arg_max(state, t) AS state, arg_max(incident, t) AS incident,
                   arg_max(sector, t) AS sector, arg_max(lat, t) AS lat, arg_max(lon, t) AS lon,
                   max(t) AS since
            FROM timeline WHERE kind = 'unit_state' AND t <= {t} GROUP BY unit ORDER BY unit
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


def k3i_cards(timeline: Any, t: float, *, units: pd.DataFrame | None = None,
              incidents: pd.DataFrame | None = None) -> dict[str, Any]:  # fmt: skip
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
        "answered_110": answered, "answer_target_s": answer_s,
        "on_scene": reached, "on_scene_target_s": scene_s,
        "tti": tti,
        "units_available": int((units["state"] == "available").sum()) if len(units) else 0,
        "units": len(units),
        "open_incidents": len(incidents),
        "geh_under_5": geh_share(geh(con, until=t)) if _has(con, "count_observed") else None,
    }  # fmt: skip


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
    ``reason`` says why in KPI keys, ``why`` gives the (key, value) pairs to word it."""
    rows = []
    for r in status.itertuples(index=False):
        if r.status != "aman":
            reason = "; ".join(f"{k} {v:.3g}" for k, v, _, _ in r.reasons)
            rows.append(
                {
                    "alert": f"{r.sector}:{r.status}",
                    "sector": r.sector,
                    "status": r.status,
                    "reason": reason,
                    "why": [(k, v) for k, v, _, _ in r.reasons],
                }
            )
    checks = (
        ("answered_110", cards["answered_110"], lambda v: v < 0.9, "rawan"),
        ("on_scene", cards["on_scene"], lambda v: v < 0.8, "rawan"),
        ("tti", cards["tti"], lambda v: v >= 1.3, "waspada"),
        ("units_available", cards["units_available"] if cards["units"] else None, lambda v: v < 1, "rawan"),
    )  # fmt: skip
    for name, value, off, level in checks:
        if value is not None and not pd.isna(value) and off(value):
            rows.append(
                {
                    "alert": f"{name}:{level}",
                    "sector": "",
                    "status": level,
                    "reason": f"{name} {value:.3g}",
                    "why": [(name, float(value))],
                }
            )
    frame = pd.DataFrame(rows, columns=["alert", "sector", "status", "reason", "why"])
    con = _con(timeline)
    acked = {a for (a,) in con.execute(
        f"SELECT DISTINCT alert FROM timeline WHERE kind = 'alert_acknowledged' AND t <= {t}").fetchall()}  # fmt: skip
    frame["acknowledged"] = frame["alert"].isin(acked)
    return frame
