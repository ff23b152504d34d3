"""The scenario's ``service`` section (``twin.service``): a one-gate public service hall.

The public's business with the police (SKCK clearance certificates, driving licences,
vehicle registration, reports, information) goes through one door: a hall of counters,
each group doing some steps of some services, staffed by shifts with breaks. A visitor
takes a number, goes from step to step, and leaves served, or earlier: documents found
incomplete (to come back another day), a queue too long at the door (balking), or a wait
too long (reneging)::

    service:
      title: SPKT & Satpas Polres Metro Jakarta Pusat
      services:
        skck:
          title: SKCK (police clearance certificate)
          standard: 45min                  # the published service standard, door to door
          incomplete: 0.12                 # found with incomplete documents at the first step
          steps:
            - {name: check, counter: front, time: {mean: 4min, cv: 0.6}}
            - {name: fingerprints, counter: skck, time: {mean: 8min, cv: 0.4}}
            - {name: print, counter: skck, time: {mean: 3min, cv: 0.3}, online_skips: false}
      counters:
        - {name: front, count: 4}
        - {name: skck, count: 6}
      staff:
        - {counters: front, people: 4, from: "07:30", to: "15:00", breaks: ["12:00-12:45"]}
      demand: {skck: {"08": 60, "09": 70, "10": 55}}
      online: 0.4                           # share pre-registered online
      appointment: 0.0                      # share with an appointment slot
      patience: {balk_over: 40, renege_after: 90min}

Visitors arrive as a Poisson process at each hour's rate (``demand``, times the weekday's
``weekday_factor``). An online pre-registered visitor comes at random within the hour like a
walk-in, skips the steps marked ``online_skips`` and takes ``online_factor`` of each other
step's time, and is found with incomplete documents less often (``incomplete_online``). An
appointment holder comes around their slot (slots spread evenly over the hour), off by
``punctuality`` (normal, its standard deviation).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from twin.scenario._base import Duration, _Model, _time_of_day_or_offset
from twin.scenario.response import TimeDist

_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ServiceStep(_Model):
    """One step of a service, done at a counter of a group (the first of several groups
    with the shortest queue, where a step names several)."""

    name: str = Field(pattern=_ID)
    counter: str | list[str] = Field(description="the counter group(s) that do it")
    time: TimeDist = Field(description="how long it takes at the counter")
    online_skips: bool = Field(False, description="pre-registered visitors did it online")

    def groups(self) -> list[str]:
        return [self.counter] if isinstance(self.counter, str) else list(self.counter)


class ServiceKind(_Model):
    """One service of the hall: its steps in order and its published standard."""

    title: str = Field("", max_length=120)
    steps: list[ServiceStep] = Field(min_length=1, max_length=20)
    standard: Duration = Field(description="the published service standard: door to door")
    incomplete: float = Field(
        0.0, ge=0, le=1, description="share found with incomplete documents at the first step"
    )
    incomplete_online: float | None = Field(
        None, ge=0, le=1, description="the same for pre-registered visitors (default: as walk-ins)"
    )
    online_factor: float = Field(
        1.0, gt=0, le=2, description="a pre-registered visitor's step takes this share of the time"
    )

    def steps_for(self, online: bool) -> list[ServiceStep]:
        """The steps a visitor goes through: a pre-registered one skips those done online
        (but never all: the last one stays)."""
        return [s for s in self.steps if not (online and s.online_skips)] or self.steps[-1:]

    def incomplete_for(self, online: bool) -> float:
        """The share found with incomplete documents at the first step."""
        if online and self.incomplete_online is not None:
            return self.incomplete_online
        return self.incomplete


class Counters(_Model):
    """A group of identical counters (loket)."""

    name: str = Field(pattern=_ID)
    count: int = Field(ge=1, le=200)


class Shift(_Model):
    """People on duty at a counter group from ``from`` to ``to`` (local times of day),
    away during their ``breaks`` ("12:00-12:45"). One person staffs one counter."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,  # written back as "from", as planners write it
    )

    counters: str
    people: int = Field(ge=1, le=200)
    from_: str = Field(alias="from")
    to: str
    breaks: list[str] = Field(default_factory=list)

    @field_validator("from_", "to")
    @classmethod
    def _clock(cls, value: str) -> str:
        if value == "24:00":  # the end of the day
            return value
        if not re.fullmatch(r"\d{1,2}:\d{2}", value):
            raise ValueError(f"a time of day like 07:30 (or 24:00), got {value!r}")
        return _time_of_day_or_offset(value)

    @field_validator("breaks")
    @classmethod
    def _breaks(cls, value: list[str]) -> list[str]:
        for b in value:
            if not re.fullmatch(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", b):
                raise ValueError(f"a break is written 12:00-12:45, got {b!r}")
        return value

    def spans(self) -> list[tuple[int, int]]:
        """On duty, as minutes of the day [start, end): the shift less its breaks."""
        start, end = _minutes(self.from_), _minutes(self.to)
        if end <= start:
            raise ValueError(f"shift from {self.from_} to {self.to}: it must end after it starts")
        spans = [(start, end)]
        for b in self.breaks:
            b0, b1 = (_minutes(x) for x in b.split("-"))
            out = []
            for s, e in spans:
                if b1 <= s or b0 >= e:
                    out.append((s, e))
                    continue
                if s < b0:
                    out.append((s, b0))
                if b1 < e:
                    out.append((b1, e))
            spans = out
        return spans


def _minutes(clock: str) -> int:
    h, m = clock.split(":")
    return int(h) * 60 + int(m)


class Patience(_Model):
    """How visitors give up: at the door, seeing ``balk_over`` people or more waiting for
    the first step (walk-ins; those with an appointment or pre-registration stay); or in a
    queue, after a patience drawn from an exponential of mean ``renege_after``."""

    balk_over: int | None = Field(None, ge=1, le=10_000)
    renege_after: Duration | None = None


class Service(_Model):
    """The one-gate service hall (see the module docstring)."""

    title: str = Field("", max_length=160)
    services: dict[str, ServiceKind] = Field(min_length=1)
    counters: list[Counters] = Field(min_length=1)
    staff: list[Shift] = Field(min_length=1)
    demand: dict[str, dict[str, float]] = Field(
        description="visitors per hour, by service and local hour of day ('08': 60)"
    )
    weekday_factor: dict[Literal[WEEKDAYS], float] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="demand multiplier of the run's weekday (default 1)"
    )
    online: float = Field(0.0, ge=0, le=1, description="share pre-registered online")
    appointment: float = Field(0.0, ge=0, le=1, description="share with an appointment slot")
    punctuality: Duration = Field(600.0, description="sd of an appointment holder's lateness")
    patience: Patience = Patience()
    target: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="share of visitors to serve within their service's standard, counting "
        "those who leave unserved as missed (what twin optimise staffs the hall to)",
    )

    @field_validator("services")
    @classmethod
    def _names(cls, value: dict[str, ServiceKind]) -> dict[str, ServiceKind]:
        for name in value:
            if not re.fullmatch(_ID, name):
                raise ValueError(
                    f"service names are lower-case words (skck, sim_renewal): {name!r}"
                )
        return value

    @field_validator("demand")
    @classmethod
    def _demand(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for service, hours in value.items():
            for hour, rate in hours.items():
                if not re.fullmatch(r"\d{1,2}", str(hour)) or not 0 <= int(hour) <= 23:
                    raise ValueError(f"{service}: hours are '00' to '23', got {hour!r}")
                if not rate >= 0:
                    raise ValueError(f"{service}: visitors per hour cannot be negative ({rate})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Service:
        problems = []
        groups = [c.name for c in self.counters]
        if len(set(groups)) != len(groups):
            problems.append(("counters", "a counter group is named twice"))
        for name, kind in self.services.items():
            for i, step in enumerate(kind.steps):
                for g in step.groups():
                    if g not in groups:
                        problems.append(
                            (
                                f"services.{name}.steps[{i}].counter",
                                f"no counter group {g!r} (the groups: {', '.join(groups)})",
                            )
                        )
        for i, shift in enumerate(self.staff):
            if shift.counters not in groups:
                problems.append((f"staff[{i}].counters", f"no counter group {shift.counters!r}"))
            try:
                shift.spans()
            except ValueError as exc:
                problems.append((f"staff[{i}]", str(exc)))
        for service in self.demand:
            if service not in self.services:
                problems.append(
                    (
                        f"demand.{service}",
                        f"no service {service!r} (the services: {', '.join(self.services)})",
                    )
                )
        if self.online + self.appointment > 1:
            problems.append(("online", "online and appointment shares add up to more than 1"))
        if problems:
            raise ValueError("\n".join(f"{k}: {m}" for k, m in problems))
        return self

    def rate(self, service: str, hour: int, weekday: str) -> float:
        """Visitors of ``service`` per hour at local ``hour`` on ``weekday``."""
        hours = {int(h): r for h, r in self.demand.get(service, {}).items()}
        return float(hours.get(hour, 0.0)) * self.weekday_factor.get(weekday, 1.0)

    def on_duty(self, group: str) -> list[tuple[int, int]]:
        """The people on duty at ``group`` through the day: (minute of the day, how many
        from then on), at each change."""
        changes: dict[int, int] = {}
        for shift in self.staff:
            if shift.counters != group:
                continue
            for s, e in shift.spans():
                changes[s] = changes.get(s, 0) + shift.people
                changes[e] = changes.get(e, 0) - shift.people
        out, on = [], 0
        for minute in sorted(changes):
            on += changes[minute]
            out.append((minute, on))
        return out

    def staffed(self, group: str) -> list[tuple[int, int]]:
        """The counters of ``group`` open through the day: :meth:`on_duty`, capped at the
        group's count (one person staffs one counter)."""
        count = next(c.count for c in self.counters if c.name == group)
        return [(minute, min(on, count)) for minute, on in self.on_duty(group)]
