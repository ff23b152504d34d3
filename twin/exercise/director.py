"""The exercise's director: the component that plays the MSEL, takes the teams' orders and
the trainer's controls, and puts each on the timeline.

It runs on the live kernel (:func:`twin.live.run.run_live`) beside the scenario's traffic,
response and community. Orders reach it through the live twin's order folder
(:func:`twin.live.run.send_order`), from the team pages, the trainer's page or the order
API:

- ``exercise_order``: a team's :class:`~twin.scenario.exercise.Order`, with ``user``;
- ``exercise_control``: the trainer's ``action`` (pause, resume, speed, release, hold,
  skip, write, end), with ``user``.

Everything it does is an event: ``inject_released``, ``inject_missed``,
``inject_answered``, ``order_given`` / ``order_refused``, ``exercise_control``, and the
effects of injects and orders in the twin's own words (``alert_received`` for an
incident, ``unit_ordered`` for a unit, ``closure_ordered`` / ``closure_lifted`` for
roads). So the after-action review
replays the exercise from the timeline alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twin import events as ev
from twin.city.places import edges_of, point_of
from twin.scenario import Area, Place, Scenario, ScenarioError, field_problems
from twin.scenario.exercise import Inject, Order, Teams
from twin.sim import Stop

log = logging.getLogger("twin.exercise")

#: Wall-clock seconds between looks at the order folder while the exercise is paused.
PAUSED_POLL_S = 0.2


@dataclass
class Prepared:
    """An inject in the city's terms: when (seconds from the start; None for a follow-up
    only), and where its effect lands (a point, or SUMO edges)."""

    inject: Inject
    where: str  # where it was written, for messages ("msel.csv row 5")
    at_s: float | None
    point: tuple[float, float] | None = None
    edges: list[str] = field(default_factory=list)
    messages: list[tuple[float, str]] = field(default_factory=list)  # a feed's (offset, text)


def prepare_one(
    inject: Inject,
    where: str,
    scenario: Scenario | None,
    net: Any,
    *,
    folder: Path | None = None,
    messages: list[tuple[float, str]] | None = None,
) -> Prepared:
    """One inject placed on the city: its time in seconds (None for a follow-up, or one
    written on the spot), its point or roads, and a feed's messages (read from its file
    in ``folder``, or given: ``messages``); a ScenarioError names a bad place or file."""
    at_s = None
    if inject.at is not None and scenario is not None:
        at_s = scenario.begin_of(inject.at)
    prepared = Prepared(inject, where, at_s)
    if inject.does in ("incident", "crowd"):
        prepared.point = point_of(net, inject.place(), f"{where} place")
    elif inject.does in ("closure", "flood"):
        prepared.edges = edges_of(net, inject.area_or_roads(), f"{where} place")
    elif inject.does == "feed":
        prepared.messages = (
            [(float(o), str(m)) for o, m in messages]
            if messages is not None
            else _read_feed(inject, where, folder)
        )
    return prepared


def _read_feed(inject: Inject, where: str, folder: Path | None) -> list[tuple[float, str]]:
    from twin._errors import InputError
    from twin.sensors.feeds import segment

    if folder is None:
        raise ScenarioError(where, [("feed", "a feed's file is named in the MSEL, beside it")])
    path = folder / str(inject.feed)
    if not path.is_file():
        raise ScenarioError(where, [(f"{where} feed", f"no file {path}")])
    try:
        messages = segment(path)
    except InputError as exc:
        raise ScenarioError(where, [(f"{where} feed", str(exc))]) from None
    if not messages:
        raise ScenarioError(where, [(f"{where} feed", f"{path} holds no message")])
    return messages


class Director:
    """The exercise as a component of the simulation (see the module docstring).

    Parameters
    ----------
    injects
        The MSEL, prepared on the city (:func:`twin.exercise.run.prepare`).
    teams
        The teams, and the units each commands.
    net
        The city's :class:`~twin.city.places.CityNet`, to place roads named in orders.
    paused
        Start with the clock stopped, until the trainer resumes it.
    speed
        The exercise's pace, as the trainer set it, where the run does not keep pace with
        the wall clock (a replay: :mod:`twin.exercise.whatif`).
    by_the_book
        Injects whose expected dispatch is played at once, by the CAD's own policy, instead
        of waiting for the team's order (the what-if of a decision).
    """

    name = "exercise"

    def __init__(
        self,
        injects: list[Prepared],
        teams: Teams,
        *,
        net: Any,
        user: str = "",
        paused: bool = False,
        speed: float | None = None,
        by_the_book: Sequence[str] = (),
    ) -> None:
        self.injects = {p.inject.id: p for p in injects}
        self.teams = teams
        self.net = net
        self.user = user
        self.speed = speed or 0.0
        self.by_the_book = set(by_the_book)
        self.released: dict[str, float] = {}  # inject -> when it went out
        self.held: set[str] = set()
        self.skipped: set[str] = set()
        self.answered: set[str] = set()
        self.paused = False
        self._start_paused = paused
        self._refused: set[str] = set()
        self._closures: dict[str, tuple[str, list[str]]] = {}  # closure id -> team, edges
        self._written = 0
        self._given = 0  # orders taken: those sent without an id are numbered

    # -- the component ----------------------------------------------------------------------

    def start(self, sim: Any) -> None:
        self.sim = sim
        self.speed = sim.speed or self.speed
        sim.timeline.subscribe("order_refused", lambda t, e: self._refused.add(e.order_id))
        self._control("start", user=self.user)
        if self._start_paused:  # the trainer resumes once the teams are in
            self._control("pause", user=self.user)
            self.paused = True
        for prepared in self.injects.values():
            if prepared.at_s is not None:
                sim.env.process(self._scheduled(prepared))
        sim.env.process(self._pacer())

    def close(self, sim: Any) -> None:
        pass

    @property
    def orders(self) -> dict[str, Callable[[Any, dict[str, Any]], None]]:
        """The orders the live twin takes for the exercise (see the module docstring)."""
        return {"exercise_order": self._take_order, "exercise_control": self._take_control}

    # -- the MSEL ---------------------------------------------------------------------------

    def _scheduled(self, prepared: Prepared) -> Generator[Any, Any, None]:
        assert prepared.at_s is not None
        yield self.sim.env.timeout(max(0.0, prepared.at_s - self.sim.env.now))
        name = prepared.inject.id
        if name in self.held or name in self.skipped or name in self.released:
            return
        self.release(prepared, how="scheduled")

    def release(self, prepared: Prepared, *, how: str, follow_up_of: str = "") -> None:
        """Send an inject to its team now, and do what it does in the twin."""
        inj, sim = prepared.inject, self.sim
        self.released[inj.id] = sim.env.now
        self.held.discard(inj.id)
        sim.emit(
            ev.InjectReleased(
                inject=inj.id,
                title=inj.title,
                text=inj.text,
                sender=inj.sender,
                team=inj.team,
                effect=inj.does,
                expected=inj.expect or "",
                due_s=float(inj.within or 0.0),
                follow_up_of=follow_up_of,
                how=how,
            ),
            source=self.name,
        )
        self._say("inject %s to %s (%s): %s", inj.id, _team(inj.team), how, inj.title)
        if inj.does in ("incident", "crowd"):
            assert prepared.point is not None
            book = inj.id in self.by_the_book and inj.expect == "dispatch"
            sim.emit(
                ev.AlertReceived(
                    alert=inj.id,
                    incident_type=inj.incident_type or "public_order",
                    priority=inj.priority or (1 if inj.does == "crowd" else 2),
                    lat=prepared.point[0],
                    lon=prepared.point[1],
                    held=not book,
                    inject=inj.id,
                ),
                source=self.name,
            )
            if book:  # the CAD sends its units now: the expected order, given at once
                self.answered.add(inj.id)
                sim.emit(
                    ev.InjectAnswered(
                        inject=inj.id,
                        team=inj.team,
                        expected="dispatch",
                        order_id="by-the-book",
                        delay_s=0.0,
                        late=False,
                    ),
                    source=self.name,
                )
        elif inj.does in ("closure", "flood"):
            self._close(inj.id, inj.team, prepared.edges, kind=inj.does)
            if inj.lasts is not None:
                sim.env.process(self._lift_after(inj.id, float(inj.lasts)))
        elif inj.does == "feed":
            sim.env.process(self._feed(prepared))
        if inj.expect:
            sim.env.process(self._deadline(prepared))

    def _feed(self, prepared: Prepared) -> Generator[Any, Any, None]:
        """Play a feed's messages into the twin's sensors from now, each at its own spacing
        and with its times moved to the exercise's clock: the sensors check each, keep it
        or quarantine it with its reason, and let it act (a call, an alert, a gauge...)."""
        from twin.sensors.feeds import first_time, shift_times

        sim, sensors = self.sim, self.sim.sensors
        if sensors is None:  # a run without the sensors' door (not an exercise's own)
            raise ValueError(f"inject {prepared.inject.id}: this run takes no sensor messages")
        start, first = sim.env.now, first_time(prepared.messages)
        by = sim.clock() - first if first is not None else None
        for offset, text in prepared.messages:
            wait = start + offset - sim.env.now
            if wait > 0:
                yield sim.env.timeout(wait)
            sensors.take(sim, shift_times(text, by) if by is not None else text)

    def _lift_after(self, closure: str, after: float) -> Generator[Any, Any, None]:
        yield self.sim.env.timeout(after)
        self._lift(closure)

    def _deadline(self, prepared: Prepared) -> Generator[Any, Any, None]:
        inj = prepared.inject
        assert inj.within is not None
        yield self.sim.env.timeout(float(inj.within))
        if inj.id in self.answered:
            return
        self.sim.emit(
            ev.InjectMissed(
                inject=inj.id, team=inj.team, expected=inj.expect or "", due_s=float(inj.within)
            ),
            source=self.name,
        )
        self._say(
            "inject %s missed: no %s from %s within %g min",
            inj.id,
            (inj.expect or "").replace("_", " "),
            "any team" if inj.team == "all" else inj.team,
            float(inj.within) / 60,
        )
        for name in inj.if_missed:
            follow = self.injects[name]
            if name not in self.released and name not in self.skipped:
                self.release(follow, how="follow_up", follow_up_of=inj.id)

    def _say(self, message: str, *args: Any) -> None:
        """A line for the trainer's console, stamped with the exercise's clock."""
        log.info(f"{self.sim.clock():%H:%M:%S} {message}", *args)

    # -- the trainer ------------------------------------------------------------------------

    def _control(self, action: str, *, inject: str = "", speed: float = 0.0, user: str) -> None:
        self.sim.emit(
            ev.ExerciseControl(action=action, inject=inject, speed=speed or self.speed, user=user),
            source=self.name,
        )

    def _take_control(self, sim: Any, order: dict[str, Any]) -> None:
        action, user = str(order.get("action", "")), str(order.get("user", ""))
        name = str(order.get("inject") or "")
        if action in ("release", "hold", "skip"):
            prepared = self.injects.get(name)
            if prepared is None:
                raise ValueError(f"{action}: no inject {name!r} in the MSEL")
            if name in self.released:
                raise ValueError(f"{action}: inject {name} went out already")
            self._control(action, inject=name, user=user)
            if action == "release":
                self.release(prepared, how="early")
            elif action == "hold":
                self.held.add(name)
            else:
                self.skipped.add(name)
                self.held.discard(name)
        elif action == "write":
            prepared = self._write(order.get("write") or {})
            self._control(action, inject=prepared.inject.id, user=user)
            self.release(prepared, how="written")
        elif action == "pause":
            if not self.paused:
                self._control(action, user=user)
                self.paused = True
        elif action == "resume":
            if self.paused:
                self.paused = False
                self._control(action, user=user)
                if sim.speed is not None:
                    sim.set_speed()  # the paused time is not caught up
        elif action == "speed":
            speed = float(order.get("speed", 0))
            if not 0 < speed <= 1000:
                raise ValueError(f"speed: between 0 and 1000 times real time, not {speed}")
            if sim.speed is not None:
                sim.set_speed(speed)
            self.speed = speed
            self._control(action, speed=speed, user=user)
        elif action == "end":
            self._control(action, user=user)
            raise Stop(f"the trainer ({user or 'unknown'}) ended the exercise")
        else:
            raise ValueError(
                f"the trainer's actions are pause, resume, speed, release, hold, "
                f"skip, write and end, not {action!r}"
            )

    def _write(self, doc: dict[str, Any]) -> Prepared:
        """An inject the trainer writes on the spot, placed on the city now."""
        self._written += 1
        doc = {"id": f"written-{self._written}", **doc, "at": None, "if_missed": []}
        try:
            inject = Inject.model_validate(doc)
        except ValidationError as exc:
            said = "; ".join(f"{p}: {m}" for e in exc.errors() for p, m in field_problems(e))
            raise ValueError(f"write: {said}") from None
        if inject.id in self.injects:
            raise ValueError(f"write: inject {inject.id} exists already")
        if inject.team != "all" and self.teams.of(inject.team) is None:
            raise ValueError(f"write: no team {inject.team!r}")
        if inject.does == "feed":
            raise ValueError("write: a feed's file goes in the MSEL, not in an inject written now")
        try:
            prepared = prepare_one(inject, "written by the trainer", None, self.net)
        except ScenarioError as exc:
            raise ValueError(f"write: {exc}") from None
        self.injects[inject.id] = prepared
        return prepared

    def _pacer(self) -> Generator[Any, Any, None]:
        """Every simulated second: while paused, the clock stands still, and only the
        trainer's controls are taken until one resumes or ends the exercise."""
        while True:
            yield self.sim.env.timeout(1.0)
            if not self.paused:
                continue
            self.sim.checkpoint()  # readers see everything up to the pause
            self._say("paused: the clock stands still until the trainer resumes")
            while self.paused:
                if not self.sim.orders.take(self.sim, only=("exercise_control",)):
                    time.sleep(PAUSED_POLL_S)
            self._say("resumed")

    # -- the teams' orders ------------------------------------------------------------------

    def _take_order(self, sim: Any, doc: dict[str, Any]) -> None:
        user = str(doc.pop("user", ""))
        self._given += 1
        order_id = str(doc.pop("order_id", "") or f"order-{self._given}")
        gate_refused = str(doc.pop("gate_refused", "") or "")  # the dashboards refused it
        try:
            order = Order.model_validate(doc)
        except ValidationError as exc:
            said = "; ".join(f"{p}: {m}" for e in exc.errors() for p, m in field_problems(e))
            raise ValueError(f"order from {user or 'unknown'}: {said}") from None
        edges: list[str] = []
        why = gate_refused or self._entitled(order)
        where: Place | Area | None = order.place
        if order.sector and order.order in ("close_sector", "open_sector"):
            where = Area(sectors=[order.sector])
        if not why and where is not None:
            try:
                edges = edges_of(self.net, where, "sector" if order.sector else "place")
            except ScenarioError as exc:
                why = "; ".join(m for _p, m in exc.problems)
        sim.emit(
            ev.OrderGiven(
                order_id=order_id,
                order=order.order,
                team=order.team,
                user=user,
                unit=order.unit or "",
                incident=order.incident or "",
                edges=edges,
                sector=order.sector or "",
                to_team=order.to_team or "",
                text=order.text,
            ),
            source=self.name,
        )
        if not why:
            why = self._carry_out(order, order_id, edges)
        if why:
            sim.emit(
                ev.OrderRefused(order_id=order_id, team=order.team, reason=why), source=self.name
            )
        if why or order_id in self._refused:
            said = why or "the unit cannot (see the timeline)"
            self._say("order %s of %s (%s) refused: %s", order.order, order.team, user, said)
            return
        self._say("order %s of %s (%s): %s", order.order, order.team, user, _what(order))
        self._answer(order, order_id)

    def _entitled(self, order: Order) -> str:
        """Why the team may not give this order ("" if it may)."""
        team = self.teams.of(order.team)
        if team is None:
            return f"there is no team {order.team!r} in this exercise"
        if order.unit and order.order in ("dispatch", "recall", "move_patrol"):
            owner = self.teams.owner(order.unit)
            if owner != order.team:
                return (
                    f"{order.unit} is commanded by {owner or 'no team'}, not {order.team}: "
                    f"ask {owner} for mutual aid"
                    if owner
                    else f"{order.unit} is not a unit of {order.team}"
                )
        if order.order == "mutual_aid":
            if self.teams.of(order.to_team or "") is None:
                return f"there is no team {order.to_team!r} to ask"
            if order.to_team == order.team:
                return "a team asks another team for mutual aid, not itself"
        return ""

    def _carry_out(self, order: Order, order_id: str, edges: list[str]) -> str:
        """Tell the twin: the response of a unit's order, the roads of a road's."""
        key = order.order
        if key in ("dispatch", "recall", "move_patrol"):
            self.sim.emit(
                ev.UnitOrdered(
                    order_id=order_id,
                    unit=order.unit or "",
                    action="move" if key == "move_patrol" else key,
                    incident=order.incident or "",
                    edges=edges,
                    team=order.team,
                ),
                source=self.name,
            )
        elif key in ("close_road", "close_sector", "checkpoint"):
            self._close(f"{order.team}:{order_id}", order.team, edges, kind=key)
        elif key in ("open_road", "open_sector"):
            lifted = [
                c
                for c, (team, closed) in self._closures.items()
                if team == order.team and set(edges) & set(closed)
            ]
            if not lifted:
                return f"{order.team} closed none of these roads"
            for closure in lifted:
                self._lift(closure)
        return ""

    def _close(self, closure: str, team: str, edges: list[str], *, kind: str) -> None:
        self._closures[closure] = (team, edges)
        self.sim.emit(
            ev.ClosureOrdered(
                event_id=closure,
                event_type=kind,
                edges=edges,
                emergency_access=kind != "flood",
            ),
            source=self.name,
        )

    def _lift(self, closure: str) -> None:
        if self._closures.pop(closure, None) is not None:
            self.sim.emit(ev.ClosureLifted(event_id=closure), source=self.name)

    def _answer(self, order: Order, order_id: str) -> None:
        """The injects this order answers: released to the team (or to all), expecting this
        kind of order, not answered yet; a dispatch or recall answers the inject whose
        incident it names."""
        now = self.sim.env.now
        for name, released in list(self.released.items()):
            prepared = self.injects[name]
            inj = prepared.inject
            if inj.expect != order.order or name in self.answered:
                continue
            if inj.team not in ("all", order.team):
                continue
            if inj.does in ("incident", "crowd") and order.order in ("dispatch", "recall"):
                named = order.incident or ""
                if named != name and not named.endswith(f"-{name}"):
                    continue
            self.answered.add(name)
            delay = now - released
            self.sim.emit(
                ev.InjectAnswered(
                    inject=name,
                    team=order.team,
                    expected=inj.expect,
                    order_id=order_id,
                    delay_s=delay,
                    late=delay > float(inj.within or 0.0),
                ),
                source=self.name,
            )


def _team(name: str) -> str:
    return "every team" if name == "all" else name


def _what(order: Order) -> str:
    """An order in a few words, for the console."""
    bits = [order.unit or "", f"to {order.incident}" if order.incident else ""]
    bits += [f"sector {order.sector}" if order.sector else "", order.to_team or ""]
    bits.append(f"“{order.text[:60]}”" if order.text else "")
    return " ".join(b for b in bits if b) or order.order
