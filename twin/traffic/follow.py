"""Following the detectors' counts: vehicles added where a detector saw more than the
simulation, the surplus taken out where it saw fewer (``traffic.follow_counts``)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from twin.events import (
    CountsFollowed,
)
from twin.traffic._grid import before_grid, on_grid


class FollowCounts:
    """The traffic component's following of live counts (a part of :class:`TrafficComponent`)."""

    def _routes_through(self, most: int = 200) -> dict[str, list[tuple[str, ...]]]:
        """For each detector, the demand's routes from its edge on (at most ``most``)."""
        import sumolib

        edges = {edge: sensor for sensor, edge in self.detectors.items()}
        found: dict[str, list[tuple[str, ...]]] = {s: [] for s in self.detectors}
        for path in self.route_files:
            for route in sumolib.xml.parse_fast(str(path), "route", ["edges"]):
                seq = route.edges.split()
                for i, e in enumerate(seq):
                    sensor = edges.get(e)
                    if sensor is not None and len(found[sensor]) < most:
                        found[sensor].append(tuple(seq[i:]))
        return found

    def _follow(self, sim: Any, count: Any) -> None:
        """Follow a detector's count over the next interval, as SUMO's calibrators do (see
        ``traffic.follow_counts``): add the vehicles it saw and the simulation would not
        have, on routes through the detector's edge; or take out the simulation's surplus
        before it passes the detector.

        The detector keeps a balance of vehicles owed: each count adds what it saw less
        what the simulation would have counted without the twin's corrections (its count
        over the interval, less what was added there, plus what was taken out); vehicles
        added or taken out settle it. So a correction holds from one interval to the next
        rather than swinging on and off, and what one interval could not take out (no
        vehicle near the detector) the next one does."""
        sensor, routes = count.sensor, self._through.get(count.sensor)
        if sensor not in self._rate:
            return
        simulated = self._rate[sensor] * count.interval_s
        owed = (
            self._owed.get(sensor, 0.0)
            + count.entered
            - (simulated - self._adjusted.pop(sensor, 0))
        )
        self._owed[sensor] = owed
        if owed <= -1 and sensor not in self._taking_out:
            self._taking_out.add(sensor)
            sim.env.process(self._take_out(sim, count, int(-owed), simulated))
        gap = int(owed) if routes else 0
        if gap <= 0:
            return
        api, now = self.api, sim.env.now
        rng = np.random.default_rng([self.seed, self._added])  # the same in a fork's replay
        inserted = 0
        for k in range(gap):
            self._added += 1
            edges = routes[int(rng.integers(len(routes)))]
            route_id = f"follow_{self._added}"
            depart = on_grid(now + self.step_length + k * count.interval_s / gap, self.step_length)
            try:
                api.route.add(route_id, list(edges))
                api.vehicle.add(
                    f"follow_{sensor}_{self._added}",
                    route_id,
                    typeID="DEFAULT_VEHTYPE",
                    depart=f"{depart:g}",
                    departLane="best",
                    departSpeed="max",
                )
                inserted += 1
            except api.TraCIException:  # a road of the route closed now (a flood): not this one
                continue
        self._adjusted[sensor] = self._adjusted.get(sensor, 0) + inserted
        self._owed[sensor] -= inserted
        sim.emit(
            CountsFollowed(
                sensor=sensor,
                edge=count.edge,
                observed=int(count.entered),
                simulated=round(simulated, 2),
                inserted=inserted,
                interval_s=count.interval_s,
            ),
            source=self.name,
        )

    def _take_out(
        self, sim: Any, count: Any, surplus: int, simulated: float
    ) -> Generator[Any, Any, None]:
        """Remove ``surplus`` vehicles before they reach the detector's loops, in turns
        through the interval: at each turn those due, nearest the loops first, from its
        edge or about to enter it (never a unit; a turn short of vehicles leaves its due to
        the next). Said in one ``counts_followed`` before the interval ends."""
        from traci import constants as tc

        api, edge, units, sensor = self.api, count.edge, self._units, count.sensor
        vehicle = api.vehicle
        loop_at = api.lane.getLength(f"{edge}_0") / 2  # the loops sit mid-edge
        feeders = [(e, api.lane.getLength(f"{e}_0")) for e in self._feeders.get(sensor, ())]
        start, every = sim.env.now, count.interval_s / surplus
        removed = 0
        for k in range(1, surplus + 1):  # mid-turn, on SUMO's grid, where vehicles stand
            due = before_grid(start + (k - 0.5) * every, self.step_length)
            yield sim.env.timeout(max(0.0, due - sim.env.now))
            if self._owed[sensor] > -1:  # settled meanwhile (a later count was short)
                break
            coming = [
                (loop_at - vehicle.getLanePosition(v), v)
                for v in api.edge.getLastStepVehicleIDs(edge)
                if v not in units
            ]
            coming = [(d, v) for d, v in coming if d > 0]
            for e, length in feeders:
                for v in api.edge.getLastStepVehicleIDs(e):
                    route, i = vehicle.getRoute(v), vehicle.getRouteIndex(v)
                    if v not in units and i + 1 < len(route) and route[i + 1] == edge:
                        coming.append((length - vehicle.getLanePosition(v) + loop_at, v))
            coming.sort()
            for _, vid in coming[: min(k - removed, int(-self._owed[sensor]))]:
                vehicle.remove(vid, tc.REMOVE_VAPORIZED)
                removed += 1
                self._owed[sensor] += 1
                self._adjusted[sensor] = self._adjusted.get(sensor, 0) - 1
        self._taking_out.discard(sensor)
        sim.emit(
            CountsFollowed(
                sensor=sensor,
                edge=edge,
                observed=int(count.entered),
                simulated=round(simulated, 2),
                inserted=0,
                removed=removed,
                interval_s=count.interval_s,
            ),
            source=self.name,
        )

    # -- observing --------------------------------------------------------------------------
