"""The scenario itself: its sections together, its clock and variants, and reading it
from a file."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.scenario._base import (
    _MANY,
    Duration,
    ScenarioError,
    _Model,
    field_problems,
    merge_overrides,
    parse_duration,
)
from twin.scenario.community import Community
from twin.scenario.response import Response
from twin.scenario.road_events import RoadEvent
from twin.scenario.service import Service
from twin.scenario.traffic import Traffic


class Sensors(_Model):
    """Sensor data played on the run's clock (``twin.sensors``): a past day's feed, or an
    exercise's. Each message acts at its own time; bad ones are quarantined and counted."""

    devices: str | None = Field(
        None, description="the city's sensors file (relative to the scenario file)"
    )
    replay: str | None = Field(
        None, description="a JSONL or CSV file of messages (relative to the scenario file)"
    )
    journal: str | None = Field(
        None,
        description="a live twin's journal (twin fork writes it): each message at the run "
        "second the live twin took it, callers already pseudonymised",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Sensors:
        if (self.replay is None) == (self.journal is None):
            raise ValueError("give one of replay (a file of messages) or journal")
        return self


class Outputs(_Model):
    report: bool = True
    edge_states: bool = Field(True, description="record every edge (else sectors and network only)")


class Scenario(_Model):
    """A what-if scenario."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="lower-case, digits, - and _")
    description: str = ""
    city: str = Field(
        "default",
        description='a city bundle folder, or a built-in city: "jakarta" (central Jakarta, '
        'Menteng), "helsinki" (central Helsinki), "default" (Helsinki)',
    )
    start: datetime = Field(
        description="local date and time with offset, 2026-12-01T07:00:00+02:00"
    )
    duration: Duration
    seed: int = Field(0, ge=0, lt=2**31)
    traffic: Traffic | None = Field(
        None, description="SUMO traffic; without it, units drive at the travel-time engine's times"
    )
    response: Response | None = Field(None, description="calls, dispatch and units")
    community: Community | None = Field(
        None, description="crime, guardians and residents' sense of safety"
    )
    sensors: Sensors | None = Field(None, description="sensor data played on the run's clock")
    service: Service | None = Field(
        None, description="the one-gate public service hall: counters, staff, visitors"
    )
    events: list[RoadEvent] = Field(default_factory=list)
    outputs: Outputs = Outputs()
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="named variants of this scenario, each a set of overrides (nested like "
        "the scenario itself); 'twin run' runs every variant and compares them",
    )

    @field_validator("start")
    @classmethod
    def _has_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone offset, for example 2026-12-01T07:00:00+07:00")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        problems = []
        if (
            self.traffic is None
            and self.response is None
            and self.community is None
            and self.service is None
        ):
            problems.append(
                "traffic: give traffic, response, community or service: there is nothing to run"
            )
        given = self.traffic.demand.veh_per_hour if self.traffic else {}
        missing = [f"{h:02d}" for h in self.hours() if f"{h:02d}" not in given]
        if missing and self.traffic is not None:
            problems.append(
                f"traffic.demand.veh_per_hour: the run's hours {', '.join(missing)} have no "
                f"demand (got hours {', '.join(given) or 'none'})"
            )
        end = self.start + timedelta(seconds=self.duration)
        for i, event in enumerate(self.events):
            begin = self.event_begin(event)
            if begin >= self.duration:
                problems.append(
                    f"events[{i}].start: {event.start!r} is outside the run "
                    f"({self.start:%H:%M} to {end:%H:%M})"
                )
        ids = self.event_ids()
        for i, event_id in enumerate(ids):
            if event_id in ids[:i]:
                problems.append(f"events[{i}].id: {event_id!r} is used twice")
        if self.response is not None:
            for i, inc in enumerate(self.response.incidents.scripted):
                if self.event_begin(inc) >= self.duration:
                    problems.append(
                        f"response.incidents.scripted[{i}].start: {inc.start!r} is outside the "
                        f"run ({self.start:%H:%M} to {end:%H:%M})"
                    )
        if problems:
            raise ValueError(_MANY.join(problems))
        return self

    def variant(self, name: str) -> Scenario:
        """The scenario with variant ``name``'s overrides, named ``<name>-<variant>``."""
        if name not in self.variants:
            raise InputError(
                f"no variant {name!r} (the scenario has {', '.join(self.variants) or 'none'})"
            )
        base = self.model_dump(mode="json", exclude={"variants"}, exclude_unset=True)
        merged = merge_overrides(base, self.variants[name])
        merged["name"] = f"{self.name}-{name}"
        try:
            return Scenario.model_validate(merged)
        except ValidationError as exc:
            raise ScenarioError(
                name, [p for err in exc.errors() for p in field_problems(err)]
            ) from exc

    def hours(self) -> list[int]:
        """The local hours of day the run touches, in order."""
        first = self.start.replace(minute=0, second=0, microsecond=0)
        hours, t = [], first
        while t < self.start + timedelta(seconds=self.duration):
            hours.append(t.hour)
            t += timedelta(hours=1)
        return hours

    def event_begin(self, event: Any) -> float:
        """Seconds after the run start at which an event begins."""
        return self.begin_of(event.start)

    def begin_of(self, when: str) -> float:
        """Seconds after the run start of a time of day ("07:40", the next one after the
        start) or an offset ("+40min")."""
        if when.startswith("+"):
            return parse_duration(when[1:])
        parts = [int(p) for p in when.split(":")]
        tod = time(parts[0] % 24, parts[1], parts[2] if len(parts) > 2 else 0)
        at = datetime.combine(self.start.date(), tod, tzinfo=self.start.tzinfo)
        if at < self.start:
            at += timedelta(days=1)
        return (at - self.start).total_seconds()

    def event_ids(self) -> list[str]:
        """Each event's id: its own, or ``<type>-<n>``."""
        return [e.id or f"{e.type}-{i + 1}" for i, e in enumerate(self.events)]

    def demand_segments(self) -> list[tuple[float, float, int]]:
        """``(begin_s, end_s, veh_per_hour)`` pieces of the run, cut at whole hours."""
        segments = []
        t = 0.0
        while t < self.duration:
            now = self.start + timedelta(seconds=t)
            next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            end = min(self.duration, t + (next_hour - now).total_seconds())
            assert self.traffic is not None, "a scenario without traffic has no demand"
            segments.append((t, end, self.traffic.demand.veh_per_hour[f"{now.hour:02d}"]))
            t = end
        return segments


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises
    ------
    ScenarioError
        Listing every problem with its field path and the bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: scenario file not found")
    try:
        data = load_yaml(path, what="scenario file")
    except InputError as exc:  # YAML, UTF-8, size and depth: said where
        raise ScenarioError(str(path), [("", str(exc).removeprefix(f"{path}: "))]) from None
    return scenario_from_dict(data, source=str(path))


def scenario_from_dict(data: Any, *, source: str = "scenario") -> Scenario:
    """Validate a scenario given as plain data (what YAML gives)."""
    if not isinstance(data, dict):
        raise ScenarioError(
            source, [("", f"a scenario is a mapping of fields, got {type(data).__name__}")]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [p for err in exc.errors() for p in field_problems(err)]
        raise ScenarioError(source, problems) from exc
    problems = []
    for name in scenario.variants:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            problems.append((f"variants.{name}", "a variant's name is lower-case, digits, - and _"))
            continue
        try:
            scenario.variant(name)
        except ScenarioError as exc:
            problems += [
                (f"variants.{name}.{path}" if path else f"variants.{name}", msg)
                for path, msg in exc.problems
            ]
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files, for editors."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "smart-policing-twin scenario"
    return schema
