"""A realistic sensor stream from a run: what the city's sensors would have sent.

``twin feed --from-run RUN`` replays a "truth" run (a scenario run with another demand, say)
as the messages the real city would send, so demos, exercises and tests have a live feed:

- each detector's ``TrafficFlowObserved`` every traffic sample: the vehicles that entered
  its road in the interval (SUMO's edge data), and the mean speed at the sample;
- each camera pair's ``TravelTimeObserved`` is not made yet (the run records no matched
  vehicles);
- an ``Alert`` per incident and an ``EmergencyCall`` per call (each caller a stable made-up
  number, so duplicates come from the same phone);
- each unit's AVL (``Vehicle``) at every change of its state, where it is then;
- each gauge's ``FloodMonitoring`` every 5 minutes: below its threshold, and above it while
  a flood of the run covers the gauge's roads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from twin._errors import InputError
from twin.sensors.messages import CATEGORY_OF_INCIDENT, SEVERITY_OF_PRIORITY
from twin.sensors.registry import Registry

GAUGE_EVERY_S = 300.0


def messages_from_run(
    timeline: Path, *, end_s: float, registry: Registry, city: Any
) -> Iterator[dict[str, Any]]:
    """A run's sensor messages, in time order: its timeline, up to the simulated second
    ``end_s`` it reached."""
    from twin.kpi import connect

    folder = Path(timeline).parent
    con = connect(Path(timeline))
    start = datetime.fromisoformat(
        con.execute(
            "SELECT start_local FROM timeline WHERE kind = 'run_started' LIMIT 1"
        ).fetchone()[0]
    )
    out: list[tuple[float, int, dict[str, Any]]] = []
    detectors = {s.edge: s for s in registry.sensors.values() if s.kind == "detector"}
    if detectors:
        edges = ", ".join(repr(e) for e in detectors)
        speeds = dict(
            ((t, e), v)
            for t, e, v in con.execute(
                f"SELECT t, edge, speed_mps FROM timeline WHERE kind = 'edge_state' AND edge IN ({edges})"
            ).fetchall()
        )
        counted = {
            (t, e): n
            for t, e, n in con.execute(
                f"SELECT t, edge, entered FROM timeline WHERE kind = 'edge_flow' AND edge IN ({edges})"
            ).fetchall()
        }
        intervals = con.execute(  # SUMO leaves out roads nobody entered: those counted 0
            "SELECT DISTINCT t, interval_s FROM timeline WHERE kind = 'edge_flow' ORDER BY t"
        ).fetchall()
        for (t, interval), edge in ((ti, e) for ti in intervals for e in sorted(detectors)):
            entered = counted.get((t, edge), 0)
            s = detectors[edge]
            message = {
                "type": "TrafficFlowObserved",
                "id": f"{s.id}:{int(t)}",
                "refDevice": s.id,
                "dateObservedFrom": _iso(start, t - interval),
                "dateObservedTo": _iso(start, t),
                "intensity": int(entered),
            }
            if (t, edge) in speeds:
                message["averageVehicleSpeed"] = round(speeds[(t, edge)] * 3.6, 1)
            out.append((t, len(out), message))
    incidents = {}
    for t, incident, kind, priority, lat, lon in con.execute(
        "SELECT t, incident, incident_type, priority, lat, lon FROM timeline WHERE kind = 'incident_occurred' ORDER BY seq"
    ).fetchall():
        incidents[incident] = (kind, lat, lon)
        out.append(
            (
                t,
                len(out),
                {
                    "type": "Alert",
                    "id": f"alert:{incident}",
                    "category": CATEGORY_OF_INCIDENT.get(kind, "other"),
                    "subCategory": kind,
                    "location": _point(lat, lon),
                    "dateIssued": _iso(start, t),
                    "severity": SEVERITY_OF_PRIORITY.get(int(priority), "medium"),
                },
            )
        )
    for t, call, incident, number, attempt in con.execute(
        "SELECT t, call, incident, number, attempt FROM timeline WHERE kind = 'call_placed' ORDER BY seq"
    ).fetchall():
        kind, lat, lon = incidents.get(incident, ("other", None, None))
        message = {
            "type": "EmergencyCall",
            "id": f"{call}:{attempt}",
            "number": number,
            "dateReceived": _iso(start, t),
            "category": kind,
            "caller": _phone(call),
        }
        if lat is not None:
            message["location"] = _point(lat, lon)
        out.append((t, len(out), message))
    for t, unit, unit_type, state, lat, lon in con.execute(
        "SELECT t, unit, unit_type, state, lat, lon FROM timeline WHERE kind = 'unit_state' "
        "AND NOT isnan(lat) ORDER BY seq"
    ).fetchall():
        out.append(
            (
                t,
                len(out),
                {
                    "type": "Vehicle",
                    "id": unit,
                    "dateObserved": _iso(start, t),
                    "location": _point(lat, lon),
                    "serviceStatus": state,
                    "vehicleType": unit_type,
                },
            )
        )
    gauges = [s for s in registry.sensors.values() if s.kind == "gauge"]
    if gauges:
        floods = con.execute(
            "SELECT s.t, coalesce(e.t, 1e18), s.edges FROM timeline s LEFT JOIN timeline e ON "
            "e.kind = 'road_event_ended' AND e.event_id = s.event_id WHERE s.kind = 'road_event_started' "
            "AND s.event_type = 'flood'"
        ).fetchall()
        t = GAUGE_EVERY_S
        while t <= end_s:
            for g in gauges:
                wet = any(a <= t < b and set(edges) & set(g.floods) for a, b, edges in floods)
                level = (g.threshold_m or 0) + (0.4 if wet else -0.6)
                out.append(
                    (
                        t,
                        len(out),
                        {
                            "type": "FloodMonitoring",
                            "id": f"{g.id}:{int(t)}",
                            "refDevice": g.id,
                            "dateObserved": _iso(start, t),
                            "currentLevel": round(level, 2),
                        },
                    )
                )
            t += GAUGE_EVERY_S
    if not out:
        raise InputError(
            f"{folder}: the run has nothing the sensors would see (no traffic at the detectors, no incidents)"
        )
    out.sort(key=lambda x: (x[0], x[1]))
    for _, _, message in out:
        yield message


def _iso(start: datetime, t: float) -> str:
    return (start + timedelta(seconds=float(t))).isoformat()


def _point(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(float(lon), 6), round(float(lat), 6)]}


def _phone(call: str) -> str:
    digits = int(hashlib.sha256(call.encode()).hexdigest()[:9], 16) % 10**9
    return f"+62812{digits:09d}"
