"""The one-gate service hall as a component of a :class:`~twin.sim.Simulation`.

Each counter group is a SimPy ``PriorityResource`` with one slot per counter. Its staffing
follows the shifts: a counter that closes (a shift ends, a break starts) is taken by a
"closed" holder, which queues ahead of every visitor, so the counter closes once its
current visitor is done, as a clerk finishes before leaving; it is handed back when the
counter reopens. Visitors queue in order of arrival (a ticket number), each step at the
group with the shortest queue among those that do it.

Random numbers come from four generators spawned from the run's seed (arrivals, channels
and documents, service times, patience), so that a plan changing staffing leaves the
visitors and their needs as they were (common random numbers).

Each visitor takes a ticket (a letter per service and a number: A-001), and at each
step is called to a numbered counter of the group (``desk``): the lowest free one, while a
closing counter takes the highest, as a hall closes its end counters first.

Events: ``visitor_arrived`` (with the ticket), ``visitor_queued`` and ``visitor_called``
(a step's queue, then its counter), ``visitor_served`` (the step done), ``visitor_left``
(with its reason), ``counter_state`` (staffing changes). A queue display at any moment is a
query over them (:func:`twin.kpi.hall_at`).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import simpy

from twin import events as ev
from twin.scenario.service import WEEKDAYS, Service

#: Priority of a counter's "closed" holder (before any visitor, who has 1).
CLOSED, VISITOR = 0, 1


class _Group:
    """A counter group: its resource, and the holders keeping closed counters closed."""

    def __init__(self, env: simpy.Environment, name: str, count: int) -> None:
        self.name, self.count = name, count
        self.resource = simpy.PriorityResource(env, capacity=count)
        self.closed: list[Any] = []  # requests of the closed holders, granted or queued
        self.staffed: int | None = None  # None until the run's start says it
        self.desks: list[Any] = [None] * count  # who holds each counter: a request, or None

    def sit(self, req: Any, *, last: bool = False) -> int:
        """Give the granted ``req`` a free counter (the lowest, or the highest for a closing
        one) and return its number, from 1."""
        free = [i for i, held in enumerate(self.desks) if held is None]
        i = free[-1] if last else free[0]
        self.desks[i] = req
        return i + 1

    def stand(self, req: Any) -> None:
        """``req`` releases its counter (if it had one)."""
        for i, held in enumerate(self.desks):
            if held is req:
                self.desks[i] = None

    @property
    def waiting(self) -> int:
        """Visitors waiting in its queue (not the closed holders)."""
        return sum(1 for r in self.resource.queue if r.priority == VISITOR)


class ServiceHall:
    """The hall (see the module docstring): ``config`` is the scenario's ``service``
    section, ``start`` the run's local start."""

    name = "service"

    def __init__(self, config: Service, *, start: datetime) -> None:
        self.config = config
        self.start_local = start
        self.weekday = WEEKDAYS[start.weekday()]
        self._n = 0
        # a ticket letter per service, in the scenario's order (A, B, ... then AA, AB)
        self._letters = {s: _letters(i) for i, s in enumerate(config.services)}
        self._tickets = dict.fromkeys(config.services, 0)
        self._inside: dict[
            str, tuple[str, str, float, float]
        ] = {}  # service, channel, came, waited

    def start(self, sim: Any) -> None:
        self.sim, env = sim, sim.env
        self.rng_arrivals, self.rng_visitors, self.rng_times, self.rng_patience = sim.rng.spawn(4)
        for name, kind in self.config.services.items():
            sim.emit(
                ev.ServiceConfigured(
                    service=name, title=kind.title or name, standard_s=float(kind.standard)
                ),
                source=self.name,
            )
        self.groups = {c.name: _Group(env, c.name, c.count) for c in self.config.counters}
        for group in self.groups.values():
            env.process(self._staffing(group))
        for service in self.config.services:
            if any(r > 0 for r in self.config.demand.get(service, {}).values()):
                env.process(self._walk_ins(service))
                if self.config.appointment > 0:
                    env.process(self._appointments(service))

    def close(self, sim: Any) -> None:
        """Whoever is still in the hall at the end is counted, not lost."""
        for visitor, (service, channel, came, waited) in sorted(self._inside.items()):
            sim.emit(
                ev.VisitorLeft(
                    visitor=visitor,
                    service=service,
                    channel=channel,
                    reason="still_inside",
                    in_hall_s=sim.env.now - came,
                    waited_s=waited,
                ),
                source=self.name,
            )
        self._inside.clear()

    # -- staffing ---------------------------------------------------------------------------

    def _staffing(self, group: _Group) -> Generator[Any, Any, None]:
        """Open and close the group's counters as the shifts say, day after day."""
        env = self.sim.env
        day0 = self.start_local.replace(hour=0, minute=0, second=0, microsecond=0)
        changes = self.config.staffed(group.name)
        points: dict[float, int] = {}
        for day in range(int(self.sim.duration // 86400) + 2):
            for minute, staffed in changes:  # a shift to 24:00 meets one from 00:00
                at = (day0 + timedelta(days=day, minutes=minute) - self.start_local).total_seconds()
                points[at] = staffed
        timeline = sorted(points.items())
        before = [s for at, s in timeline if at <= 0]
        self._set(group, before[-1] if before else 0)  # as things stand at the start
        for at, staffed in timeline:
            if at <= 0:
                continue
            yield env.timeout(at - env.now)
            self._set(group, staffed)

    def _set(self, group: _Group, staffed: int) -> None:
        """Keep ``group.count - staffed`` counters closed."""
        want_closed = group.count - staffed
        res = group.resource
        while len(group.closed) < want_closed:
            req = res.request(priority=CLOSED)
            if req.triggered:  # a free counter closes at once
                group.sit(req, last=True)
            else:  # once its clerk has finished with their visitor
                req.callbacks.append(lambda r, g=group: g.sit(r, last=True))
            group.closed.append(req)
        while len(group.closed) > want_closed:
            # reopen the latest closure first: one still queued is withdrawn, a held one freed
            req = group.closed.pop()
            if req.triggered:
                res.release(req)
                group.stand(req)
            else:
                req.cancel()
        if staffed != group.staffed:
            group.staffed = staffed
            self.sim.emit(
                ev.CounterState(counter=group.name, staffed=staffed, counters=group.count),
                source=self.name,
            )

    # -- arrivals ---------------------------------------------------------------------------

    def _walk_ins(self, service: str) -> Generator[Any, Any, None]:
        """Walk-ins and online pre-registered visitors: a Poisson process at each hour's
        rate (less the share that comes by appointment)."""
        env, cfg, rng = self.sim.env, self.config, self.rng_arrivals
        share = 1.0 - cfg.appointment
        while True:
            now = self.start_local + timedelta(seconds=env.now)
            to_next_hour = 3600.0 - (now.minute * 60 + now.second + now.microsecond / 1e6)
            rate = cfg.rate(service, now.hour, self.weekday) * share / 3600.0
            gap = rng.exponential(1 / rate) if rate > 0 else math.inf
            if gap >= to_next_hour:  # memoryless: start afresh at the next hour's rate
                yield env.timeout(to_next_hour)
                continue
            yield env.timeout(gap)
            online = cfg.online > 0 and self.rng_visitors.random() < cfg.online / share
            env.process(self._visitor(service, "online" if online else "walk_in"))

    def _appointments(self, service: str) -> Generator[Any, Any, None]:
        """Appointment holders, hour by hour: as many as the hour's share (Poisson), their
        slots spread evenly over it, each arriving off their slot by the punctuality."""
        env, cfg = self.sim.env, self.config
        hour0 = self.start_local.replace(minute=0, second=0, microsecond=0)
        h = 0
        while True:
            begin = (hour0 + timedelta(hours=h) - self.start_local).total_seconds()
            if begin >= self.sim.duration:
                return
            at = hour0 + timedelta(hours=h)
            n = int(
                self.rng_arrivals.poisson(
                    cfg.rate(service, at.hour, self.weekday) * cfg.appointment
                )
            )
            for k in range(n):
                slot = begin + 3600.0 * (k + 0.5) / n
                when = slot + float(self.rng_visitors.normal(0.0, float(cfg.punctuality)))
                env.process(self._later(max(when, begin, 0.0), service))
            h += 1
            yield env.timeout(max(0.0, begin + 3600.0 - env.now))

    def _later(self, when: float, service: str) -> Generator[Any, Any, None]:
        """An appointment holder coming at ``when`` (one due before the run began never comes)."""
        if when < self.sim.env.now:
            return
        yield self.sim.env.timeout(when - self.sim.env.now)
        yield self.sim.env.process(self._visitor(service, "appointment"))

    # -- one visitor ------------------------------------------------------------------------

    def _visitor(self, service: str, channel: str) -> Generator[Any, Any, None]:
        sim, env, cfg = self.sim, self.sim.env, self.config
        kind = cfg.services[service]
        self._n += 1
        visitor = f"V{self._n:05d}"
        self._tickets[service] += 1
        ticket = f"{self._letters[service]}-{self._tickets[service]:03d}"
        came = env.now
        sim.emit(
            ev.VisitorArrived(visitor=visitor, service=service, channel=channel, ticket=ticket),
            source=self.name,
        )
        online = channel == "online"
        steps = kind.steps_for(online)
        # what this visitor brings, drawn now: their documents, their patience
        short = self.rng_visitors.random() < kind.incomplete_for(online)
        patience = (
            float(self.rng_patience.exponential(float(cfg.patience.renege_after)))
            if cfg.patience.renege_after
            else math.inf
        )
        first = self._choose(steps[0].groups())
        if (
            channel == "walk_in"
            and cfg.patience.balk_over is not None
            and first.waiting >= cfg.patience.balk_over
        ):
            self._leave(visitor, service, channel, "balked", came, 0.0)
            return
        waited = 0.0
        self._inside[visitor] = (service, channel, came, 0.0)
        for i, step in enumerate(steps):
            group = first if i == 0 else self._choose(step.groups())
            queue = group.waiting
            joined = env.now
            sim.emit(
                ev.VisitorQueued(
                    visitor=visitor,
                    service=service,
                    step=step.name,
                    counter=group.name,
                    queue=queue,
                ),
                source=self.name,
            )
            req = group.resource.request(priority=VISITOR)
            left = patience - waited
            if math.isfinite(left):
                yield req | env.timeout(max(left, 0.0))
                if not req.triggered:  # gave up before a counter called them
                    req.cancel()
                    waited += env.now - joined
                    self._leave(visitor, service, channel, "reneged", came, waited)
                    return
            else:
                yield req
            waited += env.now - joined
            self._inside[visitor] = (service, channel, came, waited)
            sim.emit(
                ev.VisitorCalled(
                    visitor=visitor,
                    ticket=ticket,
                    service=service,
                    step=step.name,
                    counter=group.name,
                    desk=group.sit(req),
                    waited_s=env.now - joined,
                ),
                source=self.name,
            )
            seconds = step.time.draw(self.rng_times) * (kind.online_factor if online else 1.0)
            yield env.timeout(seconds)
            group.resource.release(req)
            group.stand(req)
            sim.emit(
                ev.VisitorServed(
                    visitor=visitor,
                    service=service,
                    channel=channel,
                    step=step.name,
                    counter=group.name,
                    queue=queue,
                    waited_s=env.now - joined - seconds,
                    served_s=seconds,
                ),
                source=self.name,
            )
            if i == 0 and short:
                self._leave(visitor, service, channel, "incomplete", came, waited)
                return
        self._leave(visitor, service, channel, "served", came, waited)

    def _choose(self, names: list[str]) -> _Group:
        """The group with the shortest queue (free counters first), the first on a tie."""
        groups = [self.groups[n] for n in names]
        return min(
            groups,
            key=lambda g: (
                g.waiting - (g.resource.capacity - g.resource.count),
                names.index(g.name),
            ),
        )

    def _leave(
        self, visitor: str, service: str, channel: str, reason: str, came: float, waited: float
    ) -> None:
        self._inside.pop(visitor, None)
        self.sim.emit(
            ev.VisitorLeft(
                visitor=visitor,
                service=service,
                channel=channel,
                reason=reason,
                in_hall_s=self.sim.env.now - came,
                waited_s=waited,
            ),
            source=self.name,
        )


def _letters(i: int) -> str:
    """The ticket letters of the ``i``-th service: A ... Z, then AA, AB ..."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out
