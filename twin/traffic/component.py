"""The traffic component: SUMO on the twin's clock.

One SimPy process advances SUMO by ``step_length`` each tick (SUMO's time equals the
twin's ``env.now`` after each step) and, every ``sample_every`` seconds, records the state
of every edge, every sector and the whole network on the timeline. Each road event of the
scenario is its own SimPy process that changes lane permissions at its start and restores
them at its end.

Stepping: SUMO runs in C++ until the next moment anything in the twin happens (the next
sample, or any other process's next event), in one ``simulationStep(t)`` call, then the
twin acts at t. Only while a road is closed does the loop take SUMO steps one at a time,
to route each entering vehicle round the closure. Counters (vehicles inserted, running,
waiting, teleports) come from SUMO's own statistics at each sample; teleports and trips
are read from SUMO's log and trip records when it stops.

Observing costs little, chosen by measurement (the 90-minute Helsinki rush hour, edges
sampled every 60 s, wall seconds on 2 cores, same timeline hash in every case):

- libsumo: 2.13 s reading the edges with getters at sample times, 2.04 s subscribing them;
- traci: 12.0 s with getters, 6.6 s subscribed, because each getter is a socket round trip
  while subscribed values come back with each advance's reply.

Since SUMO advances in one call per sample, a subscription costs one reply per sample, not
one per step (when the twin stepped every second, subscribing was the slower choice for
both). So the component subscribes to the edges.

Closures and permissions:

- a closure or a demonstration closes every lane of its roads to passenger traffic and
  leaves them open to ``emergency`` and ``authority`` vehicles (unless
  ``emergency_access`` is off, as for floods: then nothing may enter);
- an accident closes its ``lanes`` lanes from the kerb (lane 0 upward), or all lanes;
- when every lane of a road closes, each vehicle whose remaining route crosses it is
  rerouted at once (``rerouteTraveltime``), and so is each vehicle that enters the network
  while the road is closed; a vehicle whose destination lies beyond the closure ends its
  trip on the last open road before it, as a driver parks at a police line;
- overlapping events on one lane stack; the lane reopens when the last of them ends.

Emergency units: the response component orders each drive of a unit with a
``drive_ordered`` event. The component routes it (``simulation.findRoute`` for the unit's
vehicle type, which honours closures; the first pair of the order's candidate roads that
SUMO can join), inserts a vehicle ``unit:<trip>`` and, while any
unit drives, steps SUMO one step at a time to report its arrival (``drive_ended``) to the
second. A drive with no route ends at once, not reached. The vehicle type emulates
emergency driving without SUMO's bluelight device, which segfaults SUMO on some routes
(``../shared/MEASURED.md``; reproduced in ``tests/data/sumo_crash``): vClass
``emergency`` (it passes closures that let emergency vehicles through), the drive's speed
factor over the limit, and speed mode 7, which keeps safe gaps to the vehicle ahead but
drives through red lights and ignores right of way, as a car under blue lights may. What
it lacks is the rescue lane other drivers form for a bluelight vehicle; the
``emergency-driving`` benchmark measures the result against a normal car.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections import defaultdict
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import simpy

from twin._errors import TwinError
from twin._sumo import sumo_env, tool_path
from twin.city.places import ResolvedEvent
from twin.events import (
    CountsFollowed,
    DriveEnded,
    NetworkState,
    RoadEventEnded,
    RoadEventStarted,
    VehiclesRerouted,
)

#: SUMO's cumulative counters, read at each sample (``simulation.getParameter``).
_STATS = ("vehicles.inserted", "vehicles.running", "vehicles.waiting", "teleports.total")

#: vClasses that may pass a closure with emergency access.
EMERGENCY_CLASSES = ["emergency", "authority"]
#: The SUMO vehicle type of emergency units, and its speed mode (see the module docstring).
UNIT_TYPE = "twin_emergency"
UNIT_SPEED_MODE = 7


class SimulatorCrash(TwinError, RuntimeError):
    """SUMO died under the twin while advancing from simulated time ``t`` to ``until``."""

    def __init__(self, t: float, reason: str, until: float | None = None) -> None:
        self.t = t
        self.until = t if until is None else until
        self.reason = reason
        super().__init__(t, reason, until)  # SimPy rebuilds a process's exception from its args

    def __str__(self) -> str:
        return self.reason


class _Wake(simpy.events.Event):
    """A timeout that fires before the ordinary events at its time (SimPy's URGENT)."""

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, simpy.core.URGENT, delay)


def _on_grid(t: float, step: float) -> float:
    """The first multiple of ``step`` at or after ``t`` (SUMO stops only on its grid)."""
    k = math.ceil(t / step - 1e-9)
    return round(k * step, 9)


def _before_grid(t: float, step: float) -> float:
    """The last multiple of ``step`` at or before ``t``."""
    k = math.floor(t / step + 1e-9)
    return round(k * step, 9)


class TrafficComponent:
    """SUMO traffic as a component of a :class:`~twin.sim.Simulation`.

    Parameters
    ----------
    net_file, route_files
        The SUMO net and the demand's route files.
    edge_sector
        Each road edge's sector id; the edges observed are exactly these.
    events
        Road events to play, resolved to edges.
    workdir
        Where SUMO writes its log and trip records.
    simulator
        ``"libsumo"`` (in-process, fast) or ``"traci"`` (SUMO in its own process).
    on_advance
        Called with ``(now, target)`` before SUMO advances, so a supervisor knows the
        simulated time if SUMO dies on the way.
    step_by_step
        Advance one SUMO step per call, always (slower; used to replay a crash and find
        its exact time).
    """

    name = "traffic"

    def __init__(
        self,
        *,
        net_file: Path,
        route_files: list[Path],
        edge_sector: dict[str, str],
        events: list[ResolvedEvent],
        workdir: Path,
        seed: int,
        step_length: float = 1.0,
        sample_every: float = 60.0,
        teleport_after: float = 300.0,
        mode: str = "micro",
        simulator: str = "libsumo",
        record_edges: bool = True,
        on_advance: Callable[[float, float], None] | None = None,
        step_by_step: bool = False,
        detectors: dict[str, str] | None = None,
        follow_counts: bool = False,
    ) -> None:
        if simulator not in ("libsumo", "traci"):
            raise ValueError(f"simulator must be 'libsumo' or 'traci', got {simulator!r}")
        self.on_advance = on_advance
        self.step_by_step = step_by_step
        self.net_file = net_file
        self.route_files = route_files
        self.edges = sorted(edge_sector)
        sectors = sorted(set(edge_sector.values()))
        self.sectors = sectors
        self._sector_index = np.array(
            [sectors.index(edge_sector[e]) for e in self.edges], dtype=int
        )
        # Columns that are the same at every sample, made once.
        self._edge_ids = pa.array(self.edges, pa.string())
        self._edge_sectors = pa.array([sectors[i] for i in self._sector_index], pa.string())
        self._sector_ids = pa.array(sectors, pa.string())
        self.events = events
        self.workdir = workdir
        self.seed = seed
        self.step_length = step_length
        self.sample_every = sample_every
        self.teleport_after = teleport_after
        self.mode = mode
        self.simulator = simulator
        self.record_edges = record_edges
        self.api: Any = None
        self._lane_rules: dict[str, dict[str, bool]] = defaultdict(dict)
        self._closed: dict[str, set[str]] = defaultdict(set)  # fully closed edge -> event ids
        self._diversions: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # event -> counts
        self._original_allowed: dict[str, tuple[str, ...]] = {}
        self._units: dict[str, tuple[str, str, float]] = {}  # vehicle -> unit, trip, length
        self._active_lanes: dict[str, list[str]] = {}  # road event -> the lanes it closed
        self._ordered: dict[str, ResolvedEvent] = {}  # closures ordered during the run
        self._edge_set = set(self.edges)
        # the city's traffic detectors (sensor id -> SUMO edge): SUMO counts what each would
        # see, with induction loops across the edge, for the calibration's GEH
        self.detectors = dict(sorted((detectors or {}).items()))
        self._loops: dict[str, list[str]] = {}
        self.follow_counts = follow_counts and bool(self.detectors)
        self._rate: dict[str, float] = {}  # detector -> simulated vehicles/s, last sample
        self._feeders: dict[str, list[str]] = {}  # detector -> the edges into its edge
        self._adjusted: dict[str, int] = {}  # detector -> vehicles added (removed: < 0), last
        self._owed: dict[str, float] = {}  # detector -> vehicles the simulation is short of
        self._taking_out: set[str] = set()
        self._through: dict[str, list[tuple[str, ...]]] = {}  # detector -> routes from its edge
        self._added = 0

    # -- life cycle -------------------------------------------------------------------------

    def sumo_command(self) -> list[str]:
        """The SUMO command line the component runs."""
        cmd = [
            str(tool_path("sumo")),
            "--net-file", str(self.net_file),
            "--route-files", ",".join(str(p) for p in self.route_files),
            "--begin", "0",
            "--step-length", f"{self.step_length:g}",
            "--seed", str(self.seed),
            "--time-to-teleport", f"{self.teleport_after:g}",
            "--ignore-route-errors",
            "--device.rerouting.probability", "1",
            "--device.rerouting.period", "120",
            "--device.rerouting.adaptation-interval", "10",
            "--tripinfo-output", str(self.workdir / "tripinfo.xml"),
            "--additional-files", str(self._edgedata_file()),
            "--log", str(self.workdir / "sumo.log"),
            "--no-step-log",
            "--duration-log.disable",
            "--collision.action", "warn",
        ]  # fmt: skip
        if self.mode == "meso":
            cmd += ["--mesosim", "--meso-junction-control"]
        return cmd

    def _edgedata_file(self) -> Path:
        """SUMO's edge data (vehicles entering each road per sample), as an additional file."""
        path = self.workdir / "edgedata.add.xml"
        loops = []
        if self.detectors:
            import sumolib

            net = sumolib.net.readNet(str(self.net_file))
            for sensor, edge in self.detectors.items():
                ids = []
                for lane in net.getEdge(edge).getLanes():
                    ids.append(f"{sensor}__{lane.getIndex()}")
                    loops.append(f'  <inductionLoop id="{ids[-1]}" lane="{lane.getID()}" '
                                 f'pos="{lane.getLength() / 2:.2f}" period="{self.sample_every:g}" file="NUL"/>\n')  # fmt: skip
                self._loops[sensor] = ids
                self._feeders[sensor] = sorted(e.getID() for e in net.getEdge(edge).getIncoming())
        if not path.exists():
            path.write_text(
                f'<additional>\n  <edgeData id="flow" period="{self.sample_every:g}" '
                'file="edgedata.xml" excludeEmpty="true" writeAttributes="entered"/>\n'  # beside this file
                + "".join(loops)
                + "</additional>\n",
                encoding="utf-8",
            )
        return path

    def start(self, sim: Any) -> None:
        import os

        os.environ.update(
            {k: v for k, v in sumo_env().items() if k in ("SUMO_HOME", "PROJ_LIB", "PROJ_DATA")}
        )
        if self.simulator == "libsumo":
            # libsumo prints a warning when pyarrow's version differs from the libarrow it
            # was built with. That concerns SUMO's own Parquet output, which the twin does not
            # use; pyarrow and libsumo were checked to work together in one process.
            with contextlib.redirect_stdout(io.StringIO()):
                import libsumo as api
        else:
            import traci as api
        self.api = api
        api.start(self.sumo_command())
        lanes = [api.edge.getLaneNumber(e) for e in self.edges]
        self._lanes = np.array(lanes, dtype=float)
        self._length_m = np.array([api.lane.getLength(f"{e}_0") for e in self.edges])
        self._free_mps = np.array([api.lane.getMaxSpeed(f"{e}_0") for e in self.edges])
        from traci import constants as tc  # the same numbers serve libsumo

        self._vars = (
            tc.LAST_STEP_VEHICLE_NUMBER,
            tc.LAST_STEP_VEHICLE_HALTING_NUMBER,
            tc.LAST_STEP_MEAN_SPEED,
        )
        for e in self.edges:  # the values then come back with each advance (module docstring)
            api.edge.subscribe(e, list(self._vars))
        api.vehicletype.copy("DEFAULT_VEHTYPE", UNIT_TYPE)
        api.vehicletype.setVehicleClass(UNIT_TYPE, "emergency")
        api.vehicletype.setColor(UNIT_TYPE, (30, 60, 200, 255))
        if self.follow_counts:
            self._through = self._routes_through()
            sim.timeline.subscribe("count_observed", lambda t, e: self._follow(sim, e))
        sim.timeline.subscribe("drive_ordered", lambda t, e: self._order_drive(sim, e))
        sim.timeline.subscribe("drive_cancelled", lambda t, e: self._cancel_drive(e))
        sim.timeline.subscribe("closure_ordered", lambda t, e: self._order_closure(sim, e))
        sim.timeline.subscribe("closure_lifted", lambda t, e: self._lift_closure(sim, e))
        sim.env.process(self._drive(sim))
        for event in self.events:
            sim.env.process(self._road_event(sim, event))

    def close(self, sim: Any) -> None:
        """Stop SUMO, then add its trip records to the timeline, stamped at arrival."""
        if self.api is None:
            return
        try:
            self.api.close()
        except Exception:
            pass
        self.api = None
        add_trips(sim.timeline, self.workdir / "tripinfo.xml", source=self.name)
        add_teleports(sim.timeline, self.workdir / "sumo.log", source=self.name)
        add_flows(
            sim.timeline, self.workdir / "edgedata.xml", source=self.name, edges=set(self.edges)
        )

    # -- processes --------------------------------------------------------------------------

    def _drive(self, sim: Any) -> Generator[Any, Any, None]:
        """Advance SUMO to the next moment anything in the twin happens, in one call.

        That moment is the next sample, or the step at or before the next event any other
        process has scheduled (``env.peek()``). So whatever else is scheduled, an event at
        time t always finds SUMO at the last step at or before t: the wake-up is urgent, so
        at a step's own time SUMO has caught up before orders and events act, and an event
        between two steps finds SUMO at the earlier one. Rounding up instead would let an
        order act while SUMO still stood at an earlier moment, by as much as the jump,
        and a replay (``twin fork``) with other wake-ups than the live twin would part
        from it. While a road is closed or a unit drives the loop steps one SUMO step at a
        time, to route each vehicle entering round the closure and to see arrivals.
        """
        api, env, step = self.api, sim.env, self.step_length
        next_sample = self.sample_every
        while True:
            now = env.now
            target = _on_grid(now + step, step)
            if not self._closed and not self._units and not self.step_by_step:
                upcoming = min(next_sample, env.peek())  # peek: inf when nothing waits
                target = max(_before_grid(upcoming, step), _on_grid(now + step, step))
            yield _Wake(env, target - now)
            if self.on_advance is not None:
                self.on_advance(now, target)
            try:
                api.simulationStep(target)
            except Exception as exc:  # traci: the connection dies with SUMO
                if self.simulator == "traci" and type(exc).__name__ in (
                    "FatalTraCIError",
                    "TraCIException",
                ):
                    raise SimulatorCrash(now, f"SUMO stopped: {exc}", until=target) from exc
                raise
            if self._closed:  # entered during a closure: route round it now
                departed = api.simulation.getDepartedIDList()
                if departed:
                    self._divert(departed)
            if self._units:
                self._report_arrivals(sim)
            if target >= next_sample - step / 2:
                self.sample(sim)
                next_sample += self.sample_every

    def _road_event(self, sim: Any, event: ResolvedEvent) -> Generator[Any, Any, None]:
        yield sim.env.timeout(event.begin_s)
        self._start_event(sim, event)
        if event.end_s >= sim.duration:
            return
        yield sim.env.timeout(event.end_s - event.begin_s)
        self._end_event(sim, event)

    def _start_event(self, sim: Any, event: ResolvedEvent) -> None:
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
        event = ResolvedEvent(order.event_id, order.event_type, sim.env.now, sim.duration, edges,
                              lanes=0, emergency_access=order.emergency_access)  # fmt: skip
        self._ordered[order.event_id] = event
        if edges:
            self._start_event(sim, event)

    def _lift_closure(self, sim: Any, order: Any) -> None:
        event = self._ordered.pop(order.event_id, None)
        if event is not None and event.edges:
            self._end_event(sim, event)

    # -- following the counts ---------------------------------------------------------------

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
            depart = _on_grid(now + self.step_length + k * count.interval_s / gap, self.step_length)
            try:
                api.route.add(route_id, list(edges))
                api.vehicle.add(f"follow_{sensor}_{self._added}", route_id, typeID="DEFAULT_VEHTYPE",
                                depart=f"{depart:g}", departLane="best", departSpeed="max")  # fmt: skip
                inserted += 1
            except api.TraCIException:  # a road of the route closed now (a flood): not this one
                continue
        self._adjusted[sensor] = self._adjusted.get(sensor, 0) + inserted
        self._owed[sensor] -= inserted
        sim.emit(CountsFollowed(sensor=sensor, edge=count.edge, observed=int(count.entered),
                                   simulated=round(simulated, 2), inserted=inserted,
                                   interval_s=count.interval_s), source=self.name)  # fmt: skip

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
            due = _before_grid(start + (k - 0.5) * every, self.step_length)
            yield sim.env.timeout(max(0.0, due - sim.env.now))
            if self._owed[sensor] > -1:  # settled meanwhile (a later count was short)
                break
            coming = [(loop_at - vehicle.getLanePosition(v), v)
                      for v in api.edge.getLastStepVehicleIDs(edge) if v not in units]  # fmt: skip
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
        sim.emit(CountsFollowed(sensor=sensor, edge=edge, observed=int(count.entered),
                                   simulated=round(simulated, 2), inserted=0, removed=removed,
                                   interval_s=count.interval_s), source=self.name)  # fmt: skip

    # -- observing --------------------------------------------------------------------------

    def sample(self, sim: Any) -> None:
        """Record the state of every edge, sector and the network at the current time."""
        api = self.api
        self._report_diversions(sim)
        results = api.edge.getAllSubscriptionResults()
        n_var, h_var, v_var = self._vars
        n = np.array([results[e][n_var] for e in self.edges], dtype=float)
        h = np.array([results[e][h_var] for e in self.edges], dtype=float)
        v = np.array([results[e][v_var] for e in self.edges], dtype=float)
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
                t, "count_simulated", source=self.name, sensor=list(self._loops),
                edge=[self.detectors[s] for s in self._loops], entered=counts,
                interval_s=[self.sample_every] * len(counts),
            )  # fmt: skip
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

    def _event_lanes(self, event: ResolvedEvent) -> list[str]:
        lanes = []
        for edge in event.edges:
            count = self.api.edge.getLaneNumber(edge)
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

    def _order_drive(self, sim: Any, order: Any) -> None:
        """Insert a unit's vehicle now, on the fastest route for its vehicle type."""
        api = self.api
        route = None
        for a in order.from_edges:
            for b in order.to_edges:
                try:
                    found = api.simulation.findRoute(a, b, vType=UNIT_TYPE)
                except api.TraCIException:  # a road the unit may not use (a flood)
                    continue
                if found.edges:
                    route = found
                    break
            if route is not None:
                break
        if route is None:
            sim.emit(DriveEnded(unit=order.unit, trip=order.trip, reached=False,
                                reason=f"no open road from {', '.join(order.from_edges)} to "
                                f"{', '.join(order.to_edges)}", route_length_m=0.0), source=self.name)  # fmt: skip
            return
        vid = f"unit:{order.trip}"
        try:
            api.route.add(vid, list(route.edges))
            api.vehicle.add(vid, vid, typeID=UNIT_TYPE, depart="now", departLane="best",
                            departSpeed="max")  # fmt: skip
        except api.TraCIException as exc:
            sim.emit(DriveEnded(unit=order.unit, trip=order.trip, reached=False,
                                reason=f"SUMO refused the vehicle: {exc}", route_length_m=0.0),
                     source=self.name)  # fmt: skip
            return
        api.vehicle.setSpeedFactor(vid, order.speed_factor)
        api.vehicle.setSpeedMode(vid, UNIT_SPEED_MODE)
        self._units[vid] = (order.unit, order.trip, float(route.length))

    def _cancel_drive(self, order: Any) -> None:
        vid = f"unit:{order.trip}"
        if self._units.pop(vid, None) is not None:
            with contextlib.suppress(Exception):  # it may still wait to enter the road
                self.api.vehicle.remove(vid)

    def _report_arrivals(self, sim: Any) -> None:
        for vid in self.api.simulation.getArrivedIDList():
            done = self._units.pop(vid, None)
            if done is not None:
                unit, trip, length = done
                sim.emit(DriveEnded(unit=unit, trip=trip, reached=True, reason="",
                                    route_length_m=length), source=self.name)  # fmt: skip

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
            [r[0] for r in rows], "teleport", source=source,
            vehicle=[r[1] for r in rows], edge=[r[2] for r in rows], reason=[r[3] for r in rows],
        )  # fmt: skip
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
                    )
                )
            except (KeyError, ValueError):
                continue
    names = ("t", "vehicle", "depart_s", "duration_s", "route_length_m", "time_loss_s", "rerouted")
    return {name: [r[i] for r in rows] for i, name in enumerate(names)}
