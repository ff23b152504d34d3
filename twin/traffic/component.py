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

Observing costs little, chosen by measurement. Under libsumo the component reads the
edges with getters at each sample; under traci it subscribes to them. A subscription is
evaluated after every SUMO step, and the loop steps one second at a time while a unit
drives, so on the 1,024-junction grid (3,968 edges, one meso hour with units on the road
most of it) subscribing cost 62.5 s against 9.2 s for the same 3,600 steps unsubscribed;
libsumo's getters read all edges 60 times in 0.34 s. Over traci a getter is a socket round
trip (83 s for those 60 samples), and a subscribed value comes back with each advance's
reply, which is the cheaper of the two there (on the 90-minute Helsinki rush hour: 12.0 s
with getters, 6.6 s subscribed).

Closures and permissions:

- a closure or a demonstration closes every lane of its roads to passenger traffic and
  leaves them open to ``emergency`` and ``authority`` vehicles (unless
  ``emergency_access`` is off, as for floods: then nothing may enter);
- an accident closes its ``lanes`` lanes from the kerb (lane 0 upward), or all lanes;
- when every lane of a road closes, each vehicle whose remaining route crosses it is
  rerouted at once (``rerouteTraveltime``), and so is each vehicle that enters the network
  while the road is closed; a vehicle whose destination lies beyond the closure ends its
  trip on the last open road before it, as a driver parks at a police line;
- overlapping events on one lane stack; the lane reopens when the last of them ends;
- a contraflow gives lanes of one direction to the other: SUMO cannot add a lane while it
  runs, so the run's net is the city's with the lanes added to the gaining direction
  (netconvert patches that edge), closed to all outside the contraflow's time; while it
  runs, the opposite direction's leftmost lanes close to all.

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
    DriveEnded,
    SignalPreempted,
)
from twin.traffic._grid import before_grid, on_grid
from twin.traffic.follow import FollowCounts
from twin.traffic.observe import (
    Observation,
    add_flows,
    add_teleports,
    add_trips,
)
from twin.traffic.roads import RoadEvents
from twin.traffic.vehicles import write_vtypes

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


class TrafficComponent(RoadEvents, FollowCounts, Observation):
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
        signal_priority_m: float | None = None,
        vehicle_types: tuple[str, ...] = (),
        lateral_resolution: float | None = None,
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
        self.signal_priority_m = signal_priority_m
        self.vehicle_types = tuple(vehicle_types)
        self.lateral_resolution = lateral_resolution
        self._greens: dict[tuple[str, int], int | None] = {}  # (light, link) -> its green phase

    # -- life cycle -------------------------------------------------------------------------

    def sumo_command(self) -> list[str]:
        """The SUMO command line the component runs."""
        cmd = [
            str(tool_path("sumo")),
            "--net-file",
            str(self.net_file),
            "--route-files",
            ",".join(str(p) for p in self.route_files),
            "--begin",
            "0",
            "--step-length",
            f"{self.step_length:g}",
            "--seed",
            str(self.seed),
            "--time-to-teleport",
            f"{self.teleport_after:g}",
            "--ignore-route-errors",
            "--device.rerouting.probability",
            "1",
            "--device.rerouting.period",
            "120",
            "--device.rerouting.adaptation-interval",
            "10",
            # Rerouting every vehicle every two minutes took 10 of the 14 s of a meso hour
            # on the 1,024-junction grid with Dijkstra, 3 s with A* (same trips to 0.1 %).
            "--routing-algorithm",
            "astar",
            "--tripinfo-output",
            str(self.workdir / "tripinfo.xml"),
            "--additional-files",
            ",".join(
                [
                    *(
                        [str(write_vtypes(self.workdir, self.vehicle_types))]
                        if self.vehicle_types
                        else []
                    ),
                    str(self._edgedata_file()),
                ]
            ),
            "--log",
            str(self.workdir / "sumo.log"),
            "--no-step-log",
            "--duration-log.disable",
            "--collision.action",
            "warn",
        ]
        if self.mode == "meso":
            cmd += ["--mesosim", "--meso-junction-control"]
        elif self.lateral_resolution:
            # SUMO's sublane model can lock two vehicles on a junction (eclipse-sumo/sumo
            # #18043); its maintainers' work-around lets a vehicle pass a blocker after 30 s.
            cmd += [
                "--lateral-resolution",
                f"{self.lateral_resolution:g}",
                "--ignore-junction-blocker",
                "10",
            ]
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
                    loops.append(
                        f'  <inductionLoop id="{ids[-1]}" lane="{lane.getID()}" '
                        f'pos="{lane.getLength() / 2:.2f}" period="{self.sample_every:g}" file="NUL"/>\n'
                    )
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
        if any(e.gains for e in self.events):
            self.net_file = self._contraflow_net()
        api.start(self.sumo_command())
        self._idle_contraflows()
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
        if self.simulator == "traci":  # one reply per advance; libsumo reads at samples
            for e in self.edges:  # (the module docstring says why)
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
        except Exception as exc:  # SUMO that died already has nothing to close
            if not _sumo_gone(exc):
                raise
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
            target = on_grid(now + step, step)
            if not self._closed and not self._units and not self.step_by_step:
                upcoming = min(next_sample, env.peek())  # peek: inf when nothing waits
                target = max(before_grid(upcoming, step), on_grid(now + step, step))
            yield _Wake(env, target - now)
            if self.on_advance is not None:
                self.on_advance(now, target)
            try:
                api.simulationStep(target)
            except Exception as exc:  # traci: the connection dies with SUMO
                if self.simulator == "traci" and _sumo_gone(exc):
                    raise SimulatorCrash(now, f"SUMO stopped: {exc}", until=target) from exc
                raise
            if self._closed:  # entered during a closure: route round it now
                departed = api.simulation.getDepartedIDList()
                if departed:
                    self._divert(departed)
            if self._units:
                self._report_arrivals(sim)
                if self.signal_priority_m:
                    self._preempt(sim)
            if target >= next_sample - step / 2:
                self.sample(sim)
                next_sample += self.sample_every

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
            sim.emit(
                DriveEnded(
                    unit=order.unit,
                    trip=order.trip,
                    reached=False,
                    reason=f"no open road from {', '.join(order.from_edges)} to "
                    f"{', '.join(order.to_edges)}",
                    route_length_m=0.0,
                ),
                source=self.name,
            )
            return
        vid = f"unit:{order.trip}"
        try:
            api.route.add(vid, list(route.edges))
            api.vehicle.add(
                vid, vid, typeID=UNIT_TYPE, depart="now", departLane="best", departSpeed="max"
            )
        except api.TraCIException as exc:
            sim.emit(
                DriveEnded(
                    unit=order.unit,
                    trip=order.trip,
                    reached=False,
                    reason=f"SUMO refused the vehicle: {exc}",
                    route_length_m=0.0,
                ),
                source=self.name,
            )
            return
        api.vehicle.setSpeedFactor(vid, order.speed_factor)
        api.vehicle.setSpeedMode(vid, UNIT_SPEED_MODE)
        self._units[vid] = (order.unit, order.trip, float(route.length))

    def _preempt(self, sim: Any) -> None:
        """Signal priority: the next light of each unit on the road, if red (or amber) and
        within reach, jumps to the first phase of its programme that is green for the
        unit's lane; the programme then runs on from there."""
        api = self.api
        for vid, (unit, trip, _length) in self._units.items():
            try:
                ahead = api.vehicle.getNextTLS(vid)
            except api.TraCIException:  # still waiting to enter the road
                continue
            if not ahead:
                continue
            light, link, distance, state = ahead[0]
            if (
                distance > self.signal_priority_m or state not in "ryus"
            ):  # red, amber, red-amber, stop
                continue
            phase = self._green_phase(light, int(link))
            if phase is None:
                continue
            api.trafficlight.setPhase(light, phase)
            sim.emit(
                SignalPreempted(
                    unit=unit,
                    trip=trip,
                    signal=light,
                    link=int(link),
                    distance_m=round(distance, 1),
                ),
                source=self.name,
            )

    def _green_phase(self, light: str, link: int) -> int | None:
        """The first phase of the light's running programme green for ``link`` (a major
        green, ``G``, before a minor one)."""
        key = (light, link)
        if key not in self._greens:
            api = self.api
            program = api.trafficlight.getProgram(light)
            logic = next(
                (x for x in api.trafficlight.getAllProgramLogics(light) if x.programID == program),
                None,
            )
            states = [p.state for p in logic.phases] if logic is not None else []
            found = None
            for wanted in "Gg":
                found = next(
                    (i for i, st in enumerate(states) if link < len(st) and st[link] == wanted),
                    None,
                )
                if found is not None:
                    break
            self._greens[key] = found
        return self._greens[key]

    def _cancel_drive(self, order: Any) -> None:
        vid = f"unit:{order.trip}"
        if self._units.pop(vid, None) is not None:
            with contextlib.suppress(Exception):  # it may still wait to enter the road
                self.api.vehicle.remove(vid)


def _sumo_gone(exc: BaseException) -> bool:
    """Whether an error is SUMO's own word that it is gone (libsumo and traci raise their
    own classes of these names)."""
    return type(exc).__name__ in ("FatalTraCIError", "TraCIException")
