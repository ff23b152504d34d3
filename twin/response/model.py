"""The response model's parts, as plain SimPy processes: call centre, CAD dispatcher, units.

Each part takes the SimPy environment, its own random generator and an ``emit`` function
that puts events on the timeline; none of them knows about SUMO or the city bundle. The
:class:`~twin.response.component.ResponseComponent` wires them to a run; the validation
tests wire them alone (a call centre without units, a fleet without calls).

Queues break ties as SimPy does: by a counter, in order of arrival, so a run is the same
every time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import simpy

from twin import events as ev
from twin.scenario import NEEDS, IncidentSpec, TimeDist

Emit = Callable[[ev.Event], None]

#: The agency of each unit type, and the unit types of each need (police, ambulance, fire).
AGENCY = {t: need for need, types in NEEDS.items() for t in types}


def draw(dist: TimeDist, rng: np.random.Generator) -> float:
    """One random duration in seconds (:meth:`TimeDist.draw`)."""
    return dist.draw(rng)


@dataclass(eq=False)
class Incident:
    """One incident, from its first call to its last unit clearing the scene."""

    id: str
    kind: str
    priority: int
    sector: str
    node: int  # road-graph node
    lat: float
    lon: float
    needs: list[str]  # one entry per unit: police, ambulance, fire
    spec: IncidentSpec
    t: float  # when it happened
    known: bool = False  # opened in the CAD
    committed: int = 0  # units sent and not yet cleared
    unserved: int = 0  # needs still waiting for a unit
    closed: bool = False
    held: list[str] = field(default_factory=list)  # needs waiting for the command post's order


# -- call centre ----------------------------------------------------------------------------


@dataclass
class Pool:
    name: str
    numbers: list[str]
    call_takers: int
    resource: simpy.PriorityResource = field(init=False)


class CallCentre:
    """Call-takers in pools; callers who wait in priority order and may hang up and redial.

    Parameters
    ----------
    pools
        ``(name, numbers, call_takers)`` for each pool; each number has one pool.
    handling
        Talk time by number.
    patience
        How long a caller waits before hanging up; ``None``: forever.
    redial, redial_after
        The share of callers who hang up that call again, and after how long.
    on_known
        Called with the incident when its first call ends: it goes to the dispatcher.
    """

    def __init__(
        self,
        env: simpy.Environment,
        *,
        pools: Iterable[tuple[str, list[str], int]],
        handling: dict[str, TimeDist],
        patience: TimeDist | None,
        redial: float,
        redial_after: TimeDist,
        rng: np.random.Generator,
        emit: Emit,
        on_known: Callable[[Incident], None],
    ) -> None:
        self.env = env
        self.pools: dict[str, Pool] = {}
        self.pool_of: dict[str, Pool] = {}
        for name, numbers, takers in pools:
            pool = Pool(name, list(numbers), int(takers))
            pool.resource = simpy.PriorityResource(env, capacity=pool.call_takers)
            self.pools[name] = pool
            for number in numbers:
                self.pool_of[number] = pool
        self.handling, self.patience = handling, patience
        self.redial, self.redial_after = redial, redial_after
        self.rng, self.emit, self.on_known = rng, emit, on_known
        self._ids = itertools.count(1)

    def call(self, incident: Incident, number: str, *, delay: float = 0.0) -> None:
        """A caller will dial ``number`` about ``incident`` after ``delay`` seconds."""
        self.env.process(self._caller(incident, number, f"C{next(self._ids):06d}", delay))

    def _caller(
        self, incident: Incident, number: str, call_id: str, delay: float
    ) -> Generator[Any, Any, None]:
        env, rng = self.env, self.rng
        if delay > 0:
            yield env.timeout(delay)
        pool = self.pool_of[number]
        attempt = 1
        while True:
            self.emit(
                ev.CallPlaced(
                    call=call_id,
                    incident=incident.id,
                    number=number,
                    pool=pool.name,
                    priority=incident.priority,
                    attempt=attempt,
                )
            )
            placed = env.now
            request = pool.resource.request(priority=incident.priority)
            if self.patience is None:
                yield request
            else:
                patience = env.timeout(draw(self.patience, rng))
                yield request | patience
                if not request.triggered:
                    request.cancel()
                    again = bool(rng.random() < self.redial)
                    self.emit(
                        ev.CallAbandoned(
                            call=call_id,
                            incident=incident.id,
                            number=number,
                            pool=pool.name,
                            wait_s=env.now - placed,
                            redial=again,
                        )
                    )
                    if not again:
                        return
                    yield env.timeout(draw(self.redial_after, rng))
                    attempt += 1
                    continue
            break
        self.emit(
            ev.CallAnswered(
                call=call_id,
                incident=incident.id,
                number=number,
                pool=pool.name,
                wait_s=env.now - placed,
            )
        )
        talk = draw(self.handling[number], rng)
        yield env.timeout(talk)
        pool.resource.release(request)
        duplicate = incident.known
        self.emit(
            ev.CallEnded(
                call=call_id,
                incident=incident.id,
                number=number,
                pool=pool.name,
                handling_s=talk,
                duplicate=duplicate,
            )
        )
        if not duplicate:
            incident.known = True
            self.on_known(incident)


# -- units and travel -----------------------------------------------------------------------


@dataclass(eq=False)
class Unit:
    id: str
    type: str
    base: int  # road-graph node
    base_sector: str
    shift: tuple[float, float] | None = None  # on duty from, to: local seconds after midnight
    day_offset: float = 0.0  # local seconds after midnight at simulated time 0
    state: str = "available"
    node: int = 0  # where it is (its base when available)
    incident: Incident | None = None
    busy_since: float = 0.0

    @property
    def agency(self) -> str:
        return AGENCY[self.type]

    def on_duty(self, t: float) -> bool:
        if self.shift is None:
            return True
        begin, end = self.shift
        tod = (self.day_offset + t) % 86400.0
        return begin <= tod < end if begin < end else (tod >= begin or tod < end)

    def next_change(self, t: float) -> float:
        """Seconds from ``t`` to the next start or end of the shift."""
        assert self.shift is not None
        tod = (self.day_offset + t) % 86400.0
        return min((edge - tod) % 86400.0 or 86400.0 for edge in self.shift)


class Travel(Protocol):
    """How a unit gets from one road-graph node to another."""

    def estimate(self, origins: list[int], target: int) -> np.ndarray:
        """Seconds from each origin to the target now (``inf`` if cut off)."""

    def drive(self, unit: Unit, origin: int, target: int) -> Generator[Any, Any, float]:
        """A SimPy process body: the drive itself; returns the seconds it took."""


class NoTravel:
    """Units are where they are needed at once (the hypercube's assumption, for tests)."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env

    def estimate(self, origins: list[int], target: int) -> np.ndarray:
        return np.zeros(len(origins))

    def drive(self, unit: Unit, origin: int, target: int) -> Generator[Any, Any, float]:
        return 0.0
        yield  # a generator that yields nothing


class EngineTravel:
    """Travel times from the travel-time engine (closures and live speeds known to it),
    driven at ``speed_factor`` times the free-flow speed, as emergency vehicles do."""

    def __init__(self, env: simpy.Environment, engine: Any, *, speed_factor: float) -> None:
        self.env, self.engine, self.speed_factor = env, engine, speed_factor

    def estimate(self, origins: list[int], target: int) -> np.ndarray:
        return self.engine.times_to(target, origins, emergency=True) / self.speed_factor

    def drive(self, unit: Unit, origin: int, target: int) -> Generator[Any, Any, float]:
        start = self.env.now
        yield from wait_for_road(self.env, self.engine, origin, target)
        yield self.env.timeout(self.estimate([origin], target)[0])
        return self.env.now - start


#: How often a unit cut off by a closure looks again for an open road, seconds.
RETRY_ROAD_S = 60.0


def wait_for_road(
    env: simpy.Environment, engine: Any, origin: int, target: int
) -> Generator[Any, Any, None]:
    """Hold a unit whose way was cut after it was sent (a flood rising) until a road opens."""
    while not math.isfinite(engine.times_to(target, [origin], emergency=True)[0]):
        yield env.timeout(RETRY_ROAD_S)


# -- dispatch -------------------------------------------------------------------------------


class Dispatcher:
    """The CAD: assigns units to incidents, keeps the pending queue, runs unit life-cycles.

    Unit life-cycle: available -> dispatched -> en_route -> on_scene -> (ambulances:
    transporting -> at_hospital) -> returning -> available. A unit is dispatchable only
    when available at its base and on duty. When no unit can serve a need, the need waits
    in the pending queue (priority first, then oldest); the first suitable unit to free up
    takes it.

    Parameters
    ----------
    policy
        ``"closest"``: the available unit with the shortest travel time now.
        ``"beats"``: the incident's sector's preference list (``beats``), first available
        first; without a list, or when no listed unit can serve, the closest.
    reassign, reassign_margin
        A unit that frees up takes over an assignment whose unit is still on its way, when
        it would arrive more than ``reassign_margin`` seconds sooner. The first unit goes
        back to base.
    """

    def __init__(
        self,
        env: simpy.Environment,
        units: list[Unit],
        *,
        travel: Travel,
        rng: np.random.Generator,
        emit: Emit,
        policy: str = "closest",
        beats: dict[str, list[str]] | None = None,
        turnout: TimeDist | None = None,
        handover: TimeDist | None = None,
        hospitals: list[int] | None = None,
        reassign: bool = False,
        reassign_margin: float = 60.0,
        where: Callable[[int], tuple[float, float]] | None = None,
    ) -> None:
        self.env, self.units, self.travel, self.rng, self.emit = env, units, travel, rng, emit
        self.where = where or (lambda node: (math.nan, math.nan))
        self.by_id = {u.id: u for u in units}
        self.policy = policy
        self.beats = {s: [self.by_id[u] for u in ids] for s, ids in (beats or {}).items()}
        self.turnout, self.handover = turnout, handover
        self.hospitals = hospitals or []
        self.reassign, self.reassign_margin = reassign, reassign_margin
        self.pending: list[tuple[int, float, int, Incident, str]] = []
        self._order = itertools.count()
        self._trips: dict[Unit, Any] = {}  # en-route unit -> (process, arrival estimate)
        self._jobs: dict[Unit, Any] = {}  # unit -> its job's process (a recall interrupts it)
        self._held: dict[str, Incident] = {}  # incidents whose units come only by order
        for unit in units:  # the board at the start: every unit and its state
            unit.node = unit.base
            if unit.on_duty(env.now):
                self._state(unit, "available")
            if unit.shift is not None:
                env.process(self._shift(unit))

    # -- the CAD ----------------------------------------------------------------------------

    def open(self, incident: Incident) -> None:
        """An incident reaches the dispatcher: send a unit for each of its needs."""
        incident.unserved = len(incident.needs)
        for need in incident.needs:
            unit = self.choose(incident, need)
            if unit is None:
                self._queue(incident, need)
            else:
                self._send(unit, incident)

    def hold(self, incident: Incident) -> None:
        """An incident reaches the CAD, but its units wait for the command post's order
        (:meth:`order`): an exercise's inject, where the trainees decide."""
        incident.unserved = len(incident.needs)
        incident.held = list(incident.needs)
        self._held[incident.id] = incident
        for need in incident.needs:
            self.emit(
                ev.IncidentPending(
                    incident=incident.id, need=need, action="held", pending=len(self.pending)
                )
            )

    # -- the command post's orders ----------------------------------------------------------

    def order(self, unit: Unit, incident: Incident) -> str:
        """Send ``unit`` to ``incident`` on an order; returns why not ("" when sent). The
        order serves a need of the unit's kind that waits (held, or queued); a unit beyond
        the incident's needs is sent all the same (the command post may reinforce)."""
        if incident.closed:
            return f"incident {incident.id} is closed"
        refused = self._not_free(unit)
        if refused:
            return refused
        queued = next((e for e in self.pending if e[3] is incident and e[4] == unit.agency), None)
        if unit.agency in incident.held:
            incident.held.remove(unit.agency)
            action = "assigned"
        elif queued is not None:
            self.pending.remove(queued)
            heapq.heapify(self.pending)
            action = "assigned"
        else:
            incident.unserved += 1  # beyond its needs: _send counts it as served
            action = ""
        if action:
            self.emit(
                ev.IncidentPending(
                    incident=incident.id, need=unit.agency, action=action, pending=len(self.pending)
                )
            )
        self._send(unit, incident)
        return ""

    def recall(self, unit: Unit) -> str:
        """Bring a unit on a job back to its base; the need it served waits again (held
        for an order if it was ordered, else queued for the CAD). Returns why not."""
        job = self._jobs.get(unit)
        if job is None or unit.state not in ("dispatched", "en_route", "on_scene"):
            return f"{unit.id} is {unit.state.replace('_', ' ')}: there is no job to recall it from"
        job.interrupt("recalled")
        return ""

    def move(self, unit: Unit, node: int, sector: str) -> str:
        """Move an available unit to stand by at ``node`` (its new post); returns why not."""
        refused = self._not_free(unit)
        if refused:
            return refused
        unit.base, unit.base_sector = node, sector
        self.env.process(self._reposition(unit))
        return ""

    def _reposition(self, unit: Unit) -> Generator[Any, Any, None]:
        unit.busy_since = self.env.now
        self._state(unit, "returning")  # on its way to its post
        yield self.env.process(self.travel.drive(unit, unit.node, unit.base))
        self._back(unit)

    def _not_free(self, unit: Unit) -> str:
        if unit.state != "available" or not unit.on_duty(self.env.now):
            doing = unit.state.replace("_", " ")
            at = f" at {unit.incident.id}" if unit.incident is not None else ""
            return f"{unit.id} is {doing}{at}, not available"
        return ""

    def choose(self, incident: Incident, need: str) -> Unit | None:
        """The unit the policy sends to ``incident`` for ``need``, or None if none can go."""
        now = self.env.now
        free = [
            u for u in self.units if u.agency == need and u.state == "available" and u.on_duty(now)
        ]
        if not free:
            return None
        if self.policy == "beats":
            for unit in self.beats.get(incident.sector, ()):
                if unit.agency == need and unit.state == "available" and unit.on_duty(now):
                    return unit
        times = self.travel.estimate([u.node for u in free], incident.node)
        best = int(np.argmin(times))  # ties: the first unit in the scenario's order
        return free[best] if math.isfinite(times[best]) else None

    def _queue(self, incident: Incident, need: str) -> None:
        heapq.heappush(
            self.pending, (incident.priority, incident.t, next(self._order), incident, need)
        )
        self.emit(
            ev.IncidentPending(
                incident=incident.id, need=need, action="queued", pending=len(self.pending)
            )
        )

    def _freed(self, unit: Unit) -> None:
        """A unit is available again: give it the most urgent pending need it can serve,
        or, with ``reassign``, an assignment it can reach sooner."""
        for entry in sorted(self.pending):
            incident, need = entry[3], entry[4]
            if need != unit.agency or not unit.on_duty(self.env.now):
                continue
            if not math.isfinite(self.travel.estimate([unit.node], incident.node)[0]):
                continue  # cut off from this unit by closures
            self.pending.remove(entry)
            heapq.heapify(self.pending)
            self.emit(
                ev.IncidentPending(
                    incident=incident.id, need=need, action="assigned", pending=len(self.pending)
                )
            )
            self._send(unit, incident)
            return
        if self.reassign:
            self._take_over(unit)

    def _take_over(self, unit: Unit) -> None:
        best: tuple[float, Unit] | None = None
        for other, (_, arrival) in self._trips.items():
            if other.agency != unit.agency or other.incident is None:
                continue
            mine = self.env.now + self.travel.estimate([unit.node], other.incident.node)[0]
            gain = arrival - mine
            if gain > self.reassign_margin and (best is None or gain > best[0]):
                best = (gain, other)
        if best is not None:
            other = best[1]
            incident = other.incident
            proc, _ = self._trips.pop(other)
            proc.interrupt("reassigned")
            self._send(unit, incident)

    def _send(self, unit: Unit, incident: Incident) -> None:
        unit.state, unit.incident = "dispatched", incident
        unit.busy_since = self.env.now
        incident.committed += 1
        incident.unserved -= 1
        self._state(unit, "dispatched")
        self._jobs[unit] = self.env.process(self._job(unit, incident))

    def _state(self, unit: Unit, state: str) -> None:
        unit.state = state
        incident = unit.incident
        lat, lon = self.where(unit.node)
        self.emit(
            ev.UnitState(
                unit=unit.id,
                unit_type=unit.type,
                agency=unit.agency,
                state=state,
                incident=incident.id if incident else "",
                sector=incident.sector if incident else unit.base_sector,
                lat=lat,
                lon=lon,
            )
        )

    # -- a unit's job -----------------------------------------------------------------------

    def _job(self, unit: Unit, incident: Incident) -> Generator[Any, Any, None]:
        env = self.env
        if self.turnout is not None:
            try:
                yield env.timeout(draw(self.turnout, self.rng))
            except simpy.Interrupt:  # recalled before it left
                yield from self._called_back(unit, incident, driven_s=0.0)
                return
        self._state(unit, "en_route")
        left = env.now
        trip = env.process(self.travel.drive(unit, unit.node, incident.node))
        estimate = env.now + self.travel.estimate([unit.node], incident.node)[0]
        self._trips[unit] = (trip, estimate)
        try:
            yield trip
        except simpy.Interrupt as why:
            # Another unit took over, or the command post recalled it. It turns back the way
            # it came: its way back takes as long as it had driven.
            cancel = getattr(self.travel, "cancel", None)
            if cancel is not None:
                cancel(unit)
            self._trips.pop(unit, None)
            if why.cause == "recalled":
                yield from self._called_back(unit, incident, driven_s=env.now - left)
                return
            incident.committed -= 1
            incident.unserved += 1  # the unit taking over counted itself in _send
            unit.incident = None
            self._state(unit, "returning")
            yield env.timeout(env.now - left)
            self._back(unit)
            return
        self._trips.pop(unit, None)
        unit.node = incident.node
        self._state(unit, "on_scene")
        try:
            yield env.timeout(draw(incident.spec.on_scene, self.rng))
        except simpy.Interrupt:  # recalled from the scene before it was done
            yield from self._called_back(unit, incident, driven_s=None)
            return
        if (
            unit.agency == "ambulance"
            and self.hospitals
            and self.rng.random() < incident.spec.transport
        ):
            self._state(unit, "transporting")
            times = self.travel.estimate(
                self.hospitals, incident.node
            )  # symmetric enough to choose
            hospital = self.hospitals[int(np.argmin(times))]
            self._clear(unit, incident)
            yield env.process(self.travel.drive(unit, unit.node, hospital))
            unit.node = hospital
            self._state(unit, "at_hospital")
            if self.handover is not None:
                yield env.timeout(draw(self.handover, self.rng))
        else:
            self._clear(unit, incident)
        unit.incident = None
        self._state(unit, "returning")
        yield env.process(self.travel.drive(unit, unit.node, unit.base))
        self._back(unit)

    def _called_back(
        self, unit: Unit, incident: Incident, *, driven_s: float | None
    ) -> Generator[Any, Any, None]:
        """A recalled unit leaves its incident, whose need waits again, and goes back to
        base: the way it came (``driven_s``), or from the scene (None)."""
        incident.committed -= 1
        incident.unserved += 1
        unit.incident = None
        self._jobs.pop(unit, None)
        self._state(unit, "returning")
        if incident.id in self._held:
            incident.held.append(unit.agency)
            self.emit(
                ev.IncidentPending(
                    incident=incident.id, need=unit.agency, action="held", pending=len(self.pending)
                )
            )
        else:
            self._queue(incident, unit.agency)
        if driven_s is None:
            yield self.env.process(self.travel.drive(unit, unit.node, unit.base))
        else:
            yield self.env.timeout(driven_s)
        self._back(unit)

    def _clear(self, unit: Unit, incident: Incident) -> None:
        incident.committed -= 1
        if incident.committed == 0 and incident.unserved == 0 and not incident.closed:
            incident.closed = True
            self.emit(
                ev.IncidentClosed(
                    incident=incident.id,
                    incident_type=incident.kind,
                    priority=incident.priority,
                    sector=incident.sector,
                )
            )

    def _back(self, unit: Unit) -> None:
        unit.node = unit.base
        unit.incident = None
        self._jobs.pop(unit, None)
        if unit.on_duty(self.env.now):
            self._state(unit, "available")
            self._freed(unit)
        else:
            self._state(unit, "off_duty")

    def _shift(self, unit: Unit) -> Generator[Any, Any, None]:
        """Off duty outside the daily shift; at its start the unit joins the fleet, at its
        end an idle unit leaves it (a busy one finishes its job first)."""
        env = self.env
        if not unit.on_duty(env.now):
            self._state(unit, "off_duty")
        while True:
            yield env.timeout(unit.next_change(env.now))
            if unit.on_duty(env.now) and unit.state == "off_duty":
                self._state(unit, "available")
                self._freed(unit)
            elif not unit.on_duty(env.now) and unit.state == "available":
                self._state(unit, "off_duty")

    def finish(self) -> None:
        """At the end of the run: record the needs still pending, or held for an order."""
        for incident in self._held.values():
            for need in incident.held:
                self.emit(
                    ev.IncidentPending(
                        incident=incident.id, need=need, action="dropped", pending=len(self.pending)
                    )
                )
            incident.held = []
        while self.pending:
            _, _, _, incident, need = heapq.heappop(self.pending)
            self.emit(
                ev.IncidentPending(
                    incident=incident.id, need=need, action="dropped", pending=len(self.pending)
                )
            )
