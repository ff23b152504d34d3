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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

DELAYED_S = 120.0
GRIDLOCK_SAMPLES = 5
GRIDLOCK_HALTING_SHARE = 0.5
QUEUE_M_PER_VEHICLE = 7.5

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
}


def connect(timeline: pa.Table | Path | str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the timeline as the view ``timeline``."""
    con = duckdb.connect()
    if isinstance(timeline, pa.Table):
        con.register("timeline", timeline)
    else:
        con.execute(
            f"CREATE VIEW timeline AS SELECT * FROM read_parquet('{Path(timeline).as_posix()}')"
        )
    return con


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
    }


def gridlock(net: pd.DataFrame) -> bool:
    """Whether the network locked up (see the module docstring)."""
    if net.empty:
        return False
    share = net["halting"] / net["vehicles"].clip(lower=1)
    jammed = (share > GRIDLOCK_HALTING_SHARE) & (net["vehicles"] >= 20)
    run = jammed.astype(int).groupby((~jammed).cumsum()).cumsum().max()
    last = net.iloc[-1]
    return bool(run >= GRIDLOCK_SAMPLES or last["teleports"] > 0.01 * max(last["departed"], 1))


def compare(summaries: dict[str, dict[str, Any]], *, reference: str | None = None) -> pd.DataFrame:
    """KPIs of several runs side by side, with each run's difference to the reference run.

    Returns a table with one row per KPI: label, unit, one column per run, and a
    ``Δ <run>`` column per other run.
    """
    names = list(summaries)
    ref = reference or names[0]
    rows = []
    for key, (label, unit, better) in KPI_LABELS.items():
        row: dict[str, Any] = {"kpi": key, "label": label, "unit": unit, "better": better}
        for name in names:
            row[name] = summaries[name].get(key)
        for name in names:
            if name == ref:
                continue
            a, b = summaries[ref].get(key), summaries[name].get(key)
            if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
                row[f"Δ {name}"] = None
            else:
                row[f"Δ {name}"] = round(b - a, 3)
        rows.append(row)
    return pd.DataFrame(rows, dtype=object)  # object columns keep counts as ints
