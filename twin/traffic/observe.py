"""Observing SUMO: the state of every road, sector and the network at each sample, the
units' arrivals, and SUMO's own records (trips, teleports, flows) read into the timeline
when it stops."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from twin.events import (
    DriveEnded,
    NetworkState,
)
from twin.traffic.vehicles import SUMO_DEFAULT, type_of

#: SUMO's cumulative counters, read at each sample (``simulation.getParameter``).
_STATS = ("vehicles.inserted", "vehicles.running", "vehicles.waiting", "teleports.total")


class Observation:
    """The traffic component's observation at each sample (a part of :class:`TrafficComponent`)."""

    def sample(self, sim: Any) -> None:
        """Record the state of every edge, sector and the network at the current time."""
        api = self.api
        self._report_diversions(sim)
        if self.simulator == "traci":  # subscribed (the component's docstring says why)
            results = api.edge.getAllSubscriptionResults()
            n_var, h_var, v_var = self._vars
            n = np.array([results[e][n_var] for e in self.edges], dtype=float)
            h = np.array([results[e][h_var] for e in self.edges], dtype=float)
            v = np.array([results[e][v_var] for e in self.edges], dtype=float)
        else:
            edge = api.edge
            n = np.array([edge.getLastStepVehicleNumber(e) for e in self.edges], dtype=float)
            h = np.array([edge.getLastStepHaltingNumber(e) for e in self.edges], dtype=float)
            v = np.array([edge.getLastStepMeanSpeed(e) for e in self.edges], dtype=float)
        free = self._free_mps
        speed = np.where(n > 0, np.clip(v, 0.1, None), free)
        length = self._length_m
        lane_km = length * self._lanes / 1000.0
        tt_now, tt_free = length / speed, length / free
        t = sim.env.now
        if self._loops:  # what each detector would have counted over the sample just ended
            loop = api.inductionloop
            counts = [
                sum(loop.getLastIntervalVehicleNumber(i) for i in ids)
                for ids in self._loops.values()
            ]
            self._rate = {
                s: n / self.sample_every for s, n in zip(self._loops, counts, strict=True)
            }
            sim.timeline.extend(
                t,
                "count_simulated",
                source=self.name,
                sensor=list(self._loops),
                edge=[self.detectors[s] for s in self._loops],
                entered=counts,
                interval_s=[self.sample_every] * len(counts),
            )
        if self.record_edges:
            sim.timeline.extend(
                t,
                "edge_state",
                source=self.name,
                edge=self._edge_ids,
                sector=self._edge_sectors,
                vehicles=n.astype(np.int64),
                halting=h.astype(np.int64),
                speed_mps=np.round(speed, 3),
                density_veh_km=np.round(n / lane_km, 3),
                tti=np.round(tt_now / tt_free, 4),
            )
        idx, k = self._sector_index, len(self.sectors)

        def per_sector(values: np.ndarray) -> np.ndarray:
            return np.bincount(idx, weights=values, minlength=k)

        s_len, s_now, s_free = per_sector(length), per_sector(tt_now), per_sector(tt_free)
        sim.timeline.extend(
            t,
            "sector_state",
            source=self.name,
            sector=self._sector_ids,
            vehicles=per_sector(n).astype(np.int64),
            halting=per_sector(h).astype(np.int64),
            speed_mps=np.round(s_len / s_now, 3),
            density_veh_km=np.round(per_sector(n) / per_sector(lane_km), 3),
            tti=np.round(s_now / s_free, 4),
        )
        stats = {k: int(float(api.simulation.getParameter("", f"stats.{k}"))) for k in _STATS}
        sim.emit(
            NetworkState(
                vehicles=stats["vehicles.running"],
                halting=int(h.sum()),
                speed_mps=round(float(length.sum() / tt_now.sum()), 3),
                tti=round(float(tt_now.sum() / tt_free.sum()), 4),
                departed=stats["vehicles.inserted"],
                arrived=stats["vehicles.inserted"] - stats["vehicles.running"],
                teleports=stats["teleports.total"],
                waiting_to_insert=stats["vehicles.waiting"],
            ),
            source=self.name,
        )

    # -- permissions ------------------------------------------------------------------------

    def _report_arrivals(self, sim: Any) -> None:
        for vid in self.api.simulation.getArrivedIDList():
            done = self._units.pop(vid, None)
            if done is not None:
                unit, trip, length = done
                sim.emit(
                    DriveEnded(
                        unit=unit, trip=trip, reached=True, reason="", route_length_m=length
                    ),
                    source=self.name,
                )


_INTERVAL = re.compile(r'<interval begin="([\d.]+)" end="([\d.]+)"')
_EDGE_ENTERED = re.compile(r'<edge id="([^"]+)"[^>]*?\sentered="(\d+)"')


def read_flows(edgedata: Path) -> dict[str, list[Any]]:
    """SUMO's edge data as columns for ``edge_flow`` events, plus ``t`` (interval end)."""
    cols: dict[str, list[Any]] = {"t": [], "edge": [], "entered": [], "interval_s": []}
    if not edgedata.exists():
        return cols
    begin = end = None
    for line in edgedata.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _INTERVAL.search(line)
        if m:
            begin, end = float(m[1]), float(m[2])
            continue
        m = _EDGE_ENTERED.search(line)
        if m and end is not None and begin is not None and line.rstrip().endswith("/>"):
            cols["t"].append(end)
            cols["edge"].append(m[1])
            cols["entered"].append(int(m[2]))
            cols["interval_s"].append(end - begin)
    return cols


def add_flows(timeline: Any, edgedata: Path, *, source: str, edges: set[str] | None = None) -> int:
    """Append SUMO's edge data as ``edge_flow`` events (only ``edges``, if given)."""
    cols = read_flows(edgedata)
    if edges is not None:
        keep = [i for i, e in enumerate(cols["edge"]) if e in edges]
        cols = {k: [v[i] for i in keep] for k, v in cols.items()}
    times = cols.pop("t")
    if times:
        timeline.extend(times, "edge_flow", source=source, **cols)
    return len(times)


def add_trips(timeline: Any, tripinfo: Path, *, source: str) -> int:
    """Append SUMO's trip records as ``trip`` events; how many."""
    cols = read_trips(tripinfo)
    times = cols.pop("t")
    if times:
        timeline.extend(times, "trip", source=source, **cols)
    return len(times)


_TELEPORT = re.compile(
    r"Teleporting vehicle '(?P<vehicle>[^']+)'; (?P<reason>[^,]+), lane='(?P<lane>[^']*)', time=(?P<t>\d+(?:\.\d+)?)"
)


def add_teleports(timeline: Any, log: Path, *, source: str) -> int:
    """Append SUMO's teleports (from its log) as ``teleport`` events; how many."""
    rows = []
    if log.exists():
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _TELEPORT.search(line)
            if m:
                lane = m["lane"]
                edge = lane.rsplit("_", 1)[0] if "_" in lane else lane
                rows.append((float(m["t"]), m["vehicle"], edge, m["reason"].strip()))
    if rows:
        timeline.extend(
            [r[0] for r in rows],
            "teleport",
            source=source,
            vehicle=[r[1] for r in rows],
            edge=[r[2] for r in rows],
            reason=[r[3] for r in rows],
        )
    return len(rows)


_TRIP = re.compile(r"<tripinfo\s([^>]*)/?>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def read_trips(tripinfo: Path) -> dict[str, list[Any]]:
    """SUMO's trip records as columns for ``trip`` events, plus ``t`` (arrival time).

    A file cut short by a crash is read up to its last complete record.
    """
    rows = []
    if tripinfo.exists():
        for line in tripinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _TRIP.search(line)
            if not m or not line.rstrip().endswith("/>"):
                continue
            a = dict(_ATTR.findall(m.group(1)))
            try:
                rows.append(
                    (
                        float(a["arrival"]),
                        a["id"],
                        float(a["depart"]),
                        float(a["duration"]),
                        float(a["routeLength"]),
                        float(a["timeLoss"]),
                        int(a.get("rerouteNo", 0)),
                        type_of(a.get("vType", SUMO_DEFAULT)),
                    )
                )
            except (KeyError, ValueError):
                continue
    names = (
        "t",
        "vehicle",
        "depart_s",
        "duration_s",
        "route_length_m",
        "time_loss_s",
        "rerouted",
        "vehicle_type",
    )
    return {name: [r[i] for r in rows] for i, name in enumerate(names)}
