"""Road events on SUMO's roads: closing lanes at an event's start and restoring them at
its end, closures ordered at run time, rerouting round a closed road, and contraflows (see
:mod:`twin.traffic.component` for the rules)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from twin.city.places import ResolvedEvent
from twin.events import (
    RoadEventEnded,
    RoadEventStarted,
    VehiclesRerouted,
)

#: vClasses that may pass a closure with emergency access.
EMERGENCY_CLASSES = ["emergency", "authority"]


class RoadEvents:
    """The traffic component's road events and closures (a part of :class:`TrafficComponent`)."""

    def _road_event(self, sim: Any, event: ResolvedEvent) -> Generator[Any, Any, None]:
        yield sim.env.timeout(event.begin_s)
        self._start_event(sim, event)
        if event.end_s >= sim.duration:
            return
        yield sim.env.timeout(event.end_s - event.begin_s)
        self._end_event(sim, event)

    def _contraflow_net(self) -> Path:
        """The city's net with each contraflow's lanes added to the direction that gains
        them (netconvert patches the edges by id; their lanes stay closed outside the
        contraflow's time, see :meth:`_idle_contraflows`)."""
        from twin._sumo import run_tool

        flows = [e for e in self.events if e.gains]
        patch = self.workdir / "contraflow.edg.xml"
        lines = "".join(
            f'  <edge id="{e.gains}" numLanes="{e.gains_lanes + e.lanes}"/>\n' for e in flows
        )
        patch.write_text(f"<edges>\n{lines}</edges>\n", encoding="utf-8")
        net = self.workdir / "contraflow.net.xml"
        run_tool(
            "netconvert",
            ["-s", str(self.net_file), "-e", str(patch), "-o", str(net), "--no-warnings"],
            timeout=600,
        )
        return net

    def _idle_contraflows(self) -> None:
        """A contraflow's added lanes are closed to all until it starts, and after it ends."""
        for event in self.events:
            for lane in self._gained_lanes(event):
                self._lane_rules[lane][f"{event.id}:idle"] = False
                self._apply_lane(lane)

    def _gained_lanes(self, event: ResolvedEvent) -> list[str]:
        if not event.gains:
            return []
        return [
            f"{event.gains}_{i}" for i in range(event.gains_lanes, event.gains_lanes + event.lanes)
        ]

    def _start_event(self, sim: Any, event: ResolvedEvent) -> None:
        for lane in self._gained_lanes(event):
            self._lane_rules[lane].pop(f"{event.id}:idle", None)
            self._apply_lane(lane)
        lanes = self._event_lanes(event)
        self._active_lanes[event.id] = lanes
        for lane in lanes:
            self._lane_rules[lane][event.id] = event.emergency_access
            self._apply_lane(lane)
        sim.emit(
            RoadEventStarted(
                event_id=event.id,
                event_type=event.type,
                edges=list(event.edges),
                lanes_closed=event.lanes,
            ),
            source=self.name,
        )
        if event.lanes == 0:
            for edge in event.edges:
                self._closed[edge].add(event.id)
            self._divert(self.api.vehicle.getIDList())
            self._report_diversions(sim)

    def _end_event(self, sim: Any, event: ResolvedEvent) -> None:
        for lane in self._active_lanes.pop(event.id, []):
            self._lane_rules[lane].pop(event.id, None)
            self._apply_lane(lane)
        for lane in self._gained_lanes(event):
            self._lane_rules[lane][f"{event.id}:idle"] = False
            self._apply_lane(lane)
        for edge in event.edges:
            self._closed.get(edge, set()).discard(event.id)
            if not self._closed.get(edge, True):
                del self._closed[edge]
        sim.emit(
            RoadEventEnded(event_id=event.id, event_type=event.type, edges=list(event.edges)),
            source=self.name,
        )

    def _order_closure(self, sim: Any, order: Any) -> None:
        """A closure ordered during the run (a gauge over its threshold, a commander)."""
        if order.event_id in self._ordered:
            return  # already closed
        edges = [e for e in order.edges if e in self._edge_set]
        event = ResolvedEvent(
            order.event_id,
            order.event_type,
            sim.env.now,
            sim.duration,
            edges,
            lanes=0,
            emergency_access=order.emergency_access,
        )
        self._ordered[order.event_id] = event
        if edges:
            self._start_event(sim, event)

    def _lift_closure(self, sim: Any, order: Any) -> None:
        event = self._ordered.pop(order.event_id, None)
        if event is not None and event.edges:
            self._end_event(sim, event)

    # -- following the counts ---------------------------------------------------------------

    def _event_lanes(self, event: ResolvedEvent) -> list[str]:
        lanes = []
        for edge in event.edges:
            count = self.api.edge.getLaneNumber(edge)
            if event.gains:  # a contraflow: the opposite direction's leftmost lanes
                lanes += [f"{edge}_{i}" for i in range(count - event.lanes, count)]
                continue
            closed = count if event.lanes == 0 else min(event.lanes, count)
            lanes += [f"{edge}_{i}" for i in range(closed)]
        return lanes

    def _apply_lane(self, lane: str) -> None:
        api = self.api
        if lane not in self._original_allowed:
            self._original_allowed[lane] = tuple(api.lane.getAllowed(lane))
        rules = self._lane_rules[lane]
        if not rules:
            original = self._original_allowed[lane]
            if original:
                api.lane.setAllowed(lane, list(original))
            else:  # an empty list from getAllowed means "everyone"
                api.lane.setDisallowed(lane, [])
        elif all(rules.values()):
            api.lane.setAllowed(lane, EMERGENCY_CLASSES)
        else:
            api.lane.setDisallowed(lane, ["all"])

    def _divert(self, vehicles: Any) -> None:
        """Send vehicles whose remaining route crosses a closed road round it.

        A vehicle whose destination lies beyond the closure, or that has no way round it,
        ends its trip on the last open road before the closure, as a driver parks at a
        police line. Any other vehicle is rerouted on current travel times. Each is counted against the
        road event that closed the first blocked road on its way.
        """
        api, closed = self.api, self._closed
        for vid in vehicles:
            if vid in self._units:
                continue  # routed for its own vehicle class, which may pass
            route = api.vehicle.getRoute(vid)
            here = max(api.vehicle.getRouteIndex(vid), 0)
            ahead = route[here:]
            blocked = [i for i, edge in enumerate(ahead) if i > 0 and edge in closed]
            if not blocked:
                continue
            counts = self._diversions[min(closed[ahead[blocked[0]]])]
            if ahead[-1] not in closed:
                api.vehicle.rerouteTraveltime(vid)
                new = api.vehicle.getRoute(vid)[max(api.vehicle.getRouteIndex(vid), 0) + 1 :]
                if not closed.keys() & set(new):
                    counts[0] += 1
                    continue
                # No way round (SUMO keeps the old route): stop short, like a destination
                # beyond the closure.
            for stop in range(blocked[0] - 1, -1, -1):  # the nearest open road it can reach
                try:
                    api.vehicle.changeTarget(vid, ahead[stop])
                except api.TraCIException:
                    continue
                counts[1] += 1
                break

    # -- emergency units --------------------------------------------------------------------

    def _report_diversions(self, sim: Any) -> None:
        """Put the diversions counted since the last report on the timeline, per event."""
        for event_id in sorted(self._diversions):
            rerouted, diverted = self._diversions[event_id]
            if rerouted or diverted:
                sim.emit(
                    VehiclesRerouted(event_id=event_id, vehicles=rerouted, diverted=diverted),
                    source=self.name,
                )
        self._diversions.clear()
