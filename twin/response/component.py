"""The response component: incidents, their calls, the CAD and the units, on the run's clock.

Incidents of each type arrive as a Poisson process whose rate changes by the hour (the
scenario's ``response.incidents.rates``, incidents per hour over the city). Each lands on a
road-graph node drawn by road length, times its sector's weight. Scripted incidents and the
scenario's accidents join them at their times. An incident's callers dial its number (or
112), the call-takers answer, and the first call to end opens the incident in the CAD,
which sends a unit for each of its needs.

Units travel in one of two ways:

- **traffic on**: each drive is a SUMO emergency vehicle. The component puts a
  ``drive_ordered`` event on the timeline; the traffic component inserts the vehicle and
  reports ``drive_ended`` when it arrives, and the unit's process resumes. The CAD's
  travel-time estimates follow the traffic: the engine takes each ``edge_state`` sample's
  speeds as live speed factors.
- **traffic off**: the travel-time engine gives each drive's time, at the dispatch
  ``speed_factor`` over free-flow speed.

Either way the scenario's closures cut the engine's roads while they last (emergency
vehicles pass where the closure lets them).

Crimes that the community model's victims report (``crime_committed`` with ``reported``)
become incidents too, with their calls.

Random numbers come from five generators spawned from the run's seed (incidents, calls,
units, scripted, community), so a change in one part of the model leaves the others' draws alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import simpy

from twin import events as ev
from twin._geo import haversine_m
from twin.city.places import ResolvedEvent, ResolvedResponse
from twin.response.model import (
    CallCentre,
    Dispatcher,
    EngineTravel,
    Incident,
    Travel,
    Unit,
    wait_for_road,
)
from twin.scenario import INCIDENT_TYPES, Response, TimeDist, incident_type

#: Talk time by number when the scenario does not say (lognormal, cv 0.5).
DEFAULT_HANDLING = {"110": 90.0, "112": 100.0, "119": 120.0, "113": 90.0}
#: Mean delay of a duplicate call after the first (exponential), seconds.
DUPLICATE_DELAY_S = 120.0
#: A real call this close in space and time to an open incident of its kind is taken as
#: a duplicate of it.
DUPLICATE_RADIUS_M = 300.0
DUPLICATE_WINDOW_S = 1800.0


class ResponseComponent:
    """Calls, call-takers, CAD dispatch and units as a component of a Simulation.

    Parameters
    ----------
    config
        The scenario's ``response`` section.
    resolved
        Its units, scripted incidents and hospitals on the city (see
        :func:`twin.city.places.resolve_response`).
    city
        The city bundle (road graph, sectors, graph-to-SUMO mapping).
    start
        Local date and time of simulated time 0.
    road_events
        The scenario's road events: full closures cut the engine's roads while they last.
    traffic
        Drive units as SUMO vehicles through the traffic component (it must be attached).
    """

    name = "response"

    def __init__(
        self,
        config: Response,
        resolved: ResolvedResponse,
        city: Any,
        *,
        start: datetime,
        road_events: list[ResolvedEvent] | None = None,
        traffic: bool = False,
    ) -> None:
        from twin.routing import TravelTimeEngine

        self.config, self.resolved, self.city, self.start_local = config, resolved, city, start
        self.road_events = road_events or []
        self.traffic = traffic
        self.engine = TravelTimeEngine.from_city(city)
        self._node_sector = dict(
            zip(self.engine.nodes.tolist(), self.engine.node_sectors(), strict=True)
        )
        self.incidents: list[Incident] = []
        self._ids = itertools.count(1)
        self.dispatcher: Dispatcher | None = None
        self.call_centre: CallCentre | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self, sim: Any) -> None:
        env, cfg = sim.env, self.config
        rng_incidents, rng_calls, rng_units, rng_scripted, rng_community = sim.rng.spawn(5)
        self._rng_incidents, self._rng_scripted = rng_incidents, rng_scripted
        self._rng_community = rng_community
        self._sim = sim

        def emit(event: ev.Event) -> None:
            sim.emit(event, source=self.name)

        self.emit = emit
        travel: Travel
        speed = cfg.dispatch.speed_factor
        if self.traffic:
            travel = SumoTravel(sim, self.engine, self.city, speed_factor=speed, emit=emit)
        else:
            travel = EngineTravel(env, self.engine, speed_factor=speed)
        self.travel = travel
        start_local = self.start_local
        day_offset = float(
            (
                start_local - start_local.replace(hour=0, minute=0, second=0, microsecond=0)
            ).total_seconds()
        )
        units = [
            Unit(
                u.id,
                u.type,
                u.base,
                self._node_sector.get(u.base, ""),
                shift=u.shift,
                day_offset=day_offset,
            )
            for u in self.resolved.units
        ]
        self.dispatcher = Dispatcher(
            env,
            units,
            travel=travel,
            rng=rng_units,
            emit=emit,
            policy=cfg.dispatch.policy,
            beats=cfg.dispatch.beats,
            turnout=cfg.dispatch.turnout,
            handover=cfg.dispatch.handover,
            hospitals=self.resolved.hospitals,
            reassign=cfg.dispatch.reassign,
            reassign_margin=cfg.dispatch.reassign_margin,
            where=self._where,
        )
        centre = cfg.call_centre
        handling = {
            n: centre.handling.get(n, TimeDist(mean=DEFAULT_HANDLING[n])) for n in DEFAULT_HANDLING
        }  # type: ignore[call-overload]
        self.call_centre = CallCentre(
            env,
            pools=[(p.name, list(p.numbers), p.call_takers) for p in centre.pools],
            handling=handling,
            patience=centre.patience,
            redial=centre.redial,
            redial_after=centre.redial_after,
            rng=rng_calls,
            emit=emit,
            on_known=self.dispatcher.open,
        )
        emit(
            ev.ResponseConfigured(
                answer_target_s=cfg.targets.answer_s,
                on_scene_target_s=cfg.targets.on_scene_s,
                units=len(units),
                call_takers=sum(p.call_takers for p in centre.pools),
                policy=cfg.dispatch.policy,
            )
        )
        self._specs = {k: incident_type(k, cfg.incidents.types.get(k)) for k in INCIDENT_TYPES}  # type: ignore[arg-type]
        self._prepare_locations()
        for kind in INCIDENT_TYPES:
            if kind == "traffic_accident" and cfg.incidents.accidents_by_vehicle:
                for vtype in cfg.incidents.accidents_by_vehicle:  # one process per type
                    env.process(self._arrivals(kind, vtype))
            elif any(cfg.incidents.rate(kind, h) > 0 for h in range(24)):
                env.process(self._arrivals(kind))
        for inc in self.resolved.incidents:
            env.process(self._scripted(inc))
        for event in self.road_events:
            if event.lanes == 0 and event.edges:
                env.process(self._closure(event))
        sim.timeline.subscribe("crime_committed", self._reported_crime)
        sim.timeline.subscribe("call_received", self._real_call)
        sim.timeline.subscribe("alert_received", self._real_alert)
        sim.timeline.subscribe("unit_observed", self._avl)
        sim.timeline.subscribe("closure_ordered", self._closure_ordered)
        sim.timeline.subscribe("closure_lifted", self._closure_lifted)
        sim.timeline.subscribe("unit_ordered", self._order)
        self._ordered: dict[str, list[tuple[int, int, int]]] = {}

    def _where(self, node: int) -> tuple[float, float]:
        data = self.city.graph.nodes[node]
        return float(data["y"]), float(data["x"])

    def close(self, sim: Any) -> None:
        if self.dispatcher is not None:
            self.dispatcher.finish()

    # -- incidents --------------------------------------------------------------------------

    def _prepare_locations(self) -> None:
        """Where generated incidents land: each node weighs half the length of the roads
        that touch it, times its sector's weight. Only junctions of the largest strongly
        connected part of the road graph count: the stubs an OSM extract's edge cuts off
        (one-way roads leaving the map) cannot be reached and left again."""
        import networkx as nx

        weights = self.config.incidents.sector_weights
        joined = max(nx.strongly_connected_components(self.city.graph), key=len)
        length: dict[int, float] = {}
        for u, v, data in self.city.graph.edges(data=True):
            half = float(data.get("length", 0.0)) / 2
            length[u] = length.get(u, 0.0) + half
            length[v] = length.get(v, 0.0) + half
        nodes = self.engine.nodes.tolist()
        w = np.array(
            [
                length.get(n, 0.0) * weights.get(self._node_sector[n], 1.0) * (n in joined)
                for n in nodes
            ]
        )
        if not w.sum() > 0:
            w = np.ones(len(nodes))
        self._nodes = np.array(nodes, dtype=np.int64)
        self._node_p = w / w.sum()

    def _arrivals(self, kind: str, vehicle_type: str = "") -> Generator[Any, Any, None]:
        """A Poisson process whose rate is constant within each local hour (traffic
        accidents of one vehicle type, with ``vehicle_type``)."""
        env, rng, cfg = self._sim.env, self._rng_incidents, self.config.incidents
        while True:
            now = self.start_local + timedelta(seconds=env.now)
            to_next_hour = 3600.0 - (now.minute * 60 + now.second + now.microsecond / 1e6)
            rate = (
                cfg.accident_rate(vehicle_type, now.hour)
                if vehicle_type
                else cfg.rate(kind, now.hour)
            ) / 3600.0
            gap = rng.exponential(1 / rate) if rate > 0 else math.inf
            if gap >= to_next_hour:  # memoryless: start afresh at the hour's rate
                yield env.timeout(to_next_hour)
                continue
            yield env.timeout(gap)
            node = int(self._nodes[rng.choice(len(self._nodes), p=self._node_p)])
            self._occur(kind, node, rng, origin="generated", vehicle_type=vehicle_type)

    def _scripted(self, inc: Any) -> Generator[Any, Any, None]:
        yield self._sim.env.timeout(inc.begin_s)
        self._occur(
            inc.type,
            inc.node,
            self._rng_scripted,
            origin=inc.origin,
            priority=inc.priority,
            extra_calls=inc.extra_calls,
            name=inc.id,
        )

    def _occur(
        self,
        kind: str,
        node: int,
        rng: np.random.Generator,
        *,
        origin: str,
        priority: int | None = None,
        extra_calls: int | None = None,
        name: str | None = None,
        numbers: list[str] | None = None,
        vehicle_type: str = "",
    ) -> Incident:
        spec = self._specs[kind]
        if priority is None:
            levels = sorted(spec.priority)
            priority = int(levels[rng.choice(len(levels), p=[spec.priority[p] for p in levels])])
        needs = [need for need, n in sorted(spec.needs.items()) for _ in range(n)]
        needs += [need for need, p in sorted(spec.may_need.items()) if rng.random() < p]
        data = self.city.graph.nodes[node]
        incident = Incident(
            id=f"I{next(self._ids):05d}" + (f"-{name}" if name else ""),
            kind=kind,
            priority=priority,
            sector=self._node_sector.get(node, ""),
            node=node,
            lat=float(data["y"]),
            lon=float(data["x"]),
            needs=needs,
            spec=spec,
            t=self._sim.env.now,
        )
        self.incidents.append(incident)
        self.emit(
            ev.IncidentOccurred(
                incident=incident.id,
                incident_type=kind,
                priority=priority,
                sector=incident.sector,
                lat=incident.lat,
                lon=incident.lon,
                origin=origin,
                needs=needs,
                vehicle_type=vehicle_type,
            )
        )
        assert self.call_centre is not None
        if numbers is not None:  # real calls: exactly these, now
            for number in numbers:
                self.call_centre.call(incident, number)
            return incident
        share_112 = self.config.call_centre.share_112
        calls = 1 + (int(rng.poisson(spec.extra_calls)) if extra_calls is None else extra_calls)
        for i in range(calls):
            number = "112" if rng.random() < share_112 else spec.number
            delay = 0.0 if i == 0 else float(rng.exponential(DUPLICATE_DELAY_S))
            self.call_centre.call(incident, number, delay=delay)
        return incident

    def _reported_crime(self, t: float, crime: Any) -> None:
        """A crime the community model's victim reports: an incident, with its 110 call."""
        if crime.reported:
            kind = "public_order" if crime.crime_type == "public_order" else "crime"
            node = self.engine.node_of((crime.lat, crime.lon))
            self._occur(kind, node, self._rng_community, origin="community")

    # -- the live feed ----------------------------------------------------------------------

    def _real_call(self, t: float, call: Any) -> None:
        """A real call: a duplicate of an open incident of its kind within
        :data:`DUPLICATE_RADIUS_M` and :data:`DUPLICATE_WINDOW_S`, or a new incident."""
        kind = call.incident_type if call.incident_type in self._specs else "crime"
        node = self.engine.node_of((call.lat, call.lon))
        for incident in reversed(self.incidents):
            if t - incident.t > DUPLICATE_WINDOW_S:
                break
            if (
                incident.kind == kind
                and not incident.closed
                and haversine_m(incident.lat, incident.lon, call.lat, call.lon)
                <= DUPLICATE_RADIUS_M
            ):
                assert self.call_centre is not None
                self.call_centre.call(incident, call.number)
                return
        self._occur(kind, node, self._rng_community, origin="call", numbers=[call.number])

    def _real_alert(self, t: float, alert: Any) -> None:
        """An alert from the field: the CAD opens the incident at once (nobody called)."""
        kind = alert.incident_type if alert.incident_type in self._specs else "crime"
        node = self.engine.node_of((alert.lat, alert.lon))
        held = alert.held
        incident = self._occur(
            kind,
            node,
            self._rng_community,
            origin="inject" if alert.inject else "alert",
            priority=alert.priority,
            numbers=[],
            name=alert.inject or None,
        )
        incident.known = True
        assert self.dispatcher is not None
        if held:  # an exercise's inject: the command post sends the units
            self.dispatcher.hold(incident)
        else:
            self.dispatcher.open(incident)

    # -- the command post's orders ----------------------------------------------------------

    def _order(self, t: float, order: Any) -> None:
        """Dispatch, recall or move a unit on a command post's order; anything that cannot
        be done is an ``order_refused`` with the reason, in the command post's words."""
        assert self.dispatcher is not None
        unit = self.dispatcher.by_id.get(order.unit)
        if unit is None:
            why = f"there is no unit {order.unit!r} (the units: {_few(self.dispatcher.by_id)})"
        elif order.action == "dispatch":
            incident = self._incident(order.incident)
            why = (
                self.dispatcher.order(unit, incident)
                if incident is not None
                else f"there is no open incident {order.incident!r}"
            )
        elif order.action == "recall":
            why = self.dispatcher.recall(unit)
        else:  # to the junction its road (a SUMO edge) leads to
            joined = self.city.graph_edges_of(order.edges[0]) if order.edges else []
            if joined:
                node = int(joined[-1][1])
                why = self.dispatcher.move(unit, node, self._node_sector.get(node, ""))
            else:
                why = "that place is not on the road graph: choose a road"
        if why:
            self.emit(ev.OrderRefused(order_id=order.order_id, team=order.team, reason=why))

    def _incident(self, name: str) -> Any:
        """An incident by its id (I00012-...), or by the inject that made it: an order
        replayed in another draw, where the inject's incident has another number, finds it
        by its inject."""
        import re

        names = [name]
        made = re.fullmatch(r"I\d+-(.+)", name)
        if made:
            names.append(made.group(1))
        for n in names:
            for incident in reversed(self.incidents):
                if incident.id == n or incident.id.endswith(f"-{n}"):
                    return incident
        return None

    def _avl(self, t: float, fix: Any) -> None:
        """A unit's reported position: an available unit is dispatched from where it is."""
        assert self.dispatcher is not None
        unit = self.dispatcher.by_id.get(fix.unit)
        if unit is not None and unit.state == "available":
            unit.node = self.engine.node_of((fix.lat, fix.lon))

    def _closure_ordered(self, t: float, order: Any) -> None:
        edges = sorted({g for e in order.edges for g in self.city.graph_edges_of(e)})
        self._ordered[order.event_id] = edges
        self.engine.close(edges, emergency_access=order.emergency_access)

    def _closure_lifted(self, t: float, order: Any) -> None:
        edges = self._ordered.pop(order.event_id, None)
        if edges:
            self.engine.reopen(edges)

    # -- roads ------------------------------------------------------------------------------

    def _closure(self, event: ResolvedEvent) -> Generator[Any, Any, None]:
        env = self._sim.env
        edges = sorted({g for e in event.edges for g in self.city.graph_edges_of(e)})
        yield env.timeout(event.begin_s)
        self.engine.close(edges, emergency_access=event.emergency_access)
        if event.end_s >= self._sim.duration:
            return
        yield env.timeout(event.end_s - event.begin_s)
        self.engine.reopen(edges)


class SumoTravel:
    """Units drive as SUMO emergency vehicles, through the traffic component.

    Each drive is a ``drive_ordered`` event; the unit's process waits for the matching
    ``drive_ended``. The estimates the CAD chooses units by come from the travel-time
    engine, kept up to date with the speeds SUMO reports (``edge_state``)."""

    def __init__(self, sim: Any, engine: Any, city: Any, *, speed_factor: float, emit: Any) -> None:
        self.sim, self.env, self.engine, self.city = sim, sim.env, engine, city
        self.speed_factor, self.emit = speed_factor, emit
        self._waiting: dict[str, simpy.Event] = {}
        self._trips = itertools.count(1)
        self._active: dict[Unit, str] = {}
        self._speeds: dict[tuple[int, int, int], float] = {}
        self._sample_t = -1.0
        self._dirty = False
        self.fallbacks = 0
        sim.timeline.subscribe("drive_ended", self._ended)
        sim.timeline.subscribe_columns("edge_state", self._edge_states)
        self._in_edge, self._out_edge = _node_edges(city)
        self._graph_edges: dict[str, list[tuple[int, int, int]]] = {}

    def _edge_states(self, t: Any, columns: dict[str, Any]) -> None:
        """A traffic sample of the roads: each road's speed over free flow (1 / travel-time
        index) becomes the speed factor of the graph edges it lies on (the slowest wins)."""
        t = float(t if isinstance(t, int | float) else t[0])  # a snapshot has one time
        if t != self._sample_t:
            self._sample_t, self._speeds = t, {}
        speeds, known = self._speeds, self._graph_edges
        for edge, tti in zip(columns["edge"], columns["tti"], strict=True):
            if tti > 0:
                factor = min(1.0, max(0.05, 1.0 / tti))
                graph_edges = known.get(edge)
                if graph_edges is None:
                    graph_edges = known[edge] = list(self.city.graph_edges_of(edge))
                for g in graph_edges:
                    if factor < speeds.get(g, 1.0):
                        speeds[g] = factor
        self._dirty = True

    def _fresh(self) -> None:
        if self._dirty:
            self.engine.set_speed_factors(dict(self._speeds))
            self._dirty = False

    def estimate(self, origins: list[int], target: int) -> np.ndarray:
        self._fresh()
        return EngineTravel(self.env, self.engine, speed_factor=self.speed_factor).estimate(
            origins, target
        )

    def drive(self, unit: Unit, origin: int, target: int) -> Generator[Any, Any, float]:
        if origin == target:
            return 0.0
        start = self.env.now
        if origin not in self._out_edge or target not in self._in_edge:  # no SUMO road there
            self.fallbacks += 1
            return (yield from self._engine_drive(origin, target, start))
        trip = f"{unit.id}#{next(self._trips)}"
        done = self.env.event()
        self._waiting[trip] = done
        self._active[unit] = trip
        self.emit(
            ev.DriveOrdered(
                unit=unit.id,
                trip=trip,
                from_edges=self._out_edge[origin],
                to_edges=self._in_edge[target],
                speed_factor=self.speed_factor,
            )
        )
        ended = yield done
        self._active.pop(unit, None)
        if not ended.reached:  # SUMO could not drive it: the engine's time stands in
            self.fallbacks += 1
            return (yield from self._engine_drive(origin, target, start))
        return self.env.now - start

    def _engine_drive(self, origin: int, target: int, start: float) -> Generator[Any, Any, float]:
        self._fresh()
        yield from wait_for_road(self.env, self.engine, origin, target)
        seconds = self.engine.times_to(target, [origin], emergency=True)[0] / self.speed_factor
        yield self.env.timeout(max(0.0, seconds - (self.env.now - start)))
        return self.env.now - start

    def cancel(self, unit: Unit) -> None:
        """The unit turns back: its vehicle leaves the road (the traffic component
        reports the drive as not reached)."""
        trip = self._active.pop(unit, None)
        if trip is not None:
            self._waiting.pop(trip, None)
            self.emit(ev.DriveCancelled(unit=unit.id, trip=trip))

    def _ended(self, t: float, event: Any) -> None:
        waiting = self._waiting.pop(event.trip, None)
        if waiting is not None and not waiting.triggered:
            waiting.succeed(event)


def _node_edges(city: Any) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """For each graph node, the SUMO edges that lead into it and those that leave it
    (normal roads only), longest graph edge first, so the choice is the same every run."""
    into: dict[int, list[tuple[float, str]]] = {}
    out: dict[int, list[tuple[float, str]]] = {}
    for u, v, k, data in city.graph.edges(keys=True, data=True):
        sumo = [e for e in city.sumo_edges_of(u, v, k) if not e.startswith(":")]
        if sumo:
            length = float(data.get("length", 0.0))
            into.setdefault(v, []).append((-length, sumo[-1]))
            out.setdefault(u, []).append((-length, sumo[0]))
    return (
        {n: list(dict.fromkeys(e for _, e in sorted(c))) for n, c in into.items()},
        {n: list(dict.fromkeys(e for _, e in sorted(c))) for n, c in out.items()},
    )


def _few(names: Any, n: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")
