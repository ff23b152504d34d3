"""Scenario files: what a planner writes to ask "what if?".

A scenario is YAML, validated by the pydantic models below (``twin schema`` exports them
as JSON Schema for editors). Every problem is reported at once, each with its field path
and the bad value, for example::

    scenarios/bad.yaml: 2 problems
      events[0].lanes: must be at least 1 (got 0)
      traffic.demand.veh_per_hour: hour 08 of the run has no demand (got {'07': 1800})

Times of day (``"07:40"``) are local to the scenario's ``start``; durations are written
``"45min"``, ``"1h30min"``, ``"90s"``, ``"01:30:00"`` or as seconds.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from twin._errors import InputError


class ScenarioError(InputError):
    """A scenario file is wrong. ``problems`` lists each one as ``(field path, message)``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        n = len(problems)
        lines = [f"{source}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  {path}: {msg}" if path else f"  {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


_MANY = "\n"  # joins several model-level problems, each "path: message"

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*min)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


def parse_duration(value: Any) -> float:
    """Seconds from ``3600``, ``"1h"``, ``"45min"``, ``"1h30min"``, ``"90s"`` or ``"01:30:00"``.

    >>> parse_duration("1h30min"), parse_duration("01:30:00"), parse_duration(90)
    (5400.0, 5400.0, 90.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
        parts = [int(p) for p in value.strip().split(":")] + [0]
        seconds = float(parts[0] * 3600 + parts[1] * 60 + parts[2])
    elif isinstance(value, str) and (m := _DURATION.match(value)) and any(m.groups()):
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    else:
        raise ValueError(f"not a duration (write 45min, 1h30min, 90s or 01:30:00): {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
            "description": "seconds, or 45min, 1h30min, 90s, 01:30:00",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatLon(_Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Place(_Model):
    """Where a point event happens. Give exactly one of these."""

    lat: float | None = Field(
        None, ge=-90, le=90, description="with lon: a point, snapped to the nearest road"
    )
    lon: float | None = Field(None, ge=-180, le=180)
    osm_way: int | None = Field(None, description="an OSM way id of a road in the city")
    poi: str | None = Field(None, description="the name of a POI in the city bundle")
    sector: str | None = Field(
        None, description="a sector id (S01...): the road nearest its centre"
    )
    edge: str | None = Field(None, description="a SUMO edge id of the city's net")

    @model_validator(mode="after")
    def _one_kind(self) -> Place:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give lat and lon together")
        given = [
            k for k in ("lat", "osm_way", "poi", "sector", "edge") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of lat/lon, osm_way, poi, sector or edge")
        return self

    def describe(self) -> str:
        if self.lat is not None:
            return f"point ({self.lat:.5f}, {self.lon:.5f})"
        for key in ("osm_way", "poi", "sector", "edge"):
            if getattr(self, key) is not None:
                return f"{key.replace('_', ' ')} {getattr(self, key)!r}"
        return "nowhere"


class Area(_Model):
    """Where an area event happens. Give sectors, or a circle, or a polygon."""

    sectors: list[str] | None = Field(None, description="sector ids")
    center: LatLon | None = Field(None, description="with radius_m: a circle")
    radius_m: float | None = Field(None, gt=0, le=20000)
    polygon: list[LatLon] | None = Field(None, min_length=3, description="corners, in order")

    @model_validator(mode="after")
    def _one_kind(self) -> Area:
        if (self.center is None) != (self.radius_m is None):
            raise ValueError("give center and radius_m together")
        given = [k for k in ("sectors", "center", "polygon") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of sectors, center with radius_m, or polygon")
        return self


class _RoadEvent(_Model):
    id: str | None = Field(
        None, description="a name for reports; default: the event's type and number"
    )
    start: str = Field(
        description='local time of day "07:40", or an offset from the run start "+40min"'
    )
    duration: Duration

    @field_validator("start")
    @classmethod
    def _start_form(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("+"):
            parse_duration(value[1:])
        elif not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
            raise ValueError(f'write a time of day "07:40" or an offset "+40min", not {value!r}')
        return value


class Accident(_RoadEvent):
    """A crash blocking ``lanes`` lanes (from the kerb side) of the road at ``at``."""

    type: Literal["accident"]
    at: Place
    lanes: int = Field(1, ge=1, description="lanes blocked; all lanes if more than the road has")


class Closure(_RoadEvent):
    """Roads closed to passenger traffic; emergency vehicles may pass unless told otherwise."""

    type: Literal["closure"]
    roads: list[Place] | None = Field(None, min_length=1)
    area: Area | None = None
    emergency_access: bool = True

    @model_validator(mode="after")
    def _what(self) -> Closure:
        if (self.roads is None) == (self.area is None):
            raise ValueError("give either roads or area")
        return self


class Flood(_RoadEvent):
    """Roads in an area under water: closed to everyone unless ``emergency_access``."""

    type: Literal["flood"]
    area: Area
    emergency_access: bool = False


class Demonstration(_RoadEvent):
    """A demonstration or mass event: its area is closed, and people drive toward it."""

    type: Literal["demonstration"]
    area: Area
    extra_veh_per_hour: int = Field(
        0, ge=0, le=20000, description="extra vehicles per hour heading to the area"
    )
    emergency_access: bool = True


RoadEvent = Annotated[Accident | Closure | Flood | Demonstration, Field(discriminator="type")]


class Demand(_Model):
    """Background traffic: vehicles per hour, by local hour of day (``"07": 1800``)."""

    veh_per_hour: dict[str, int] = Field(description='hour of day "00".."23" -> vehicles per hour')
    min_trip_m: float = Field(300.0, ge=0, description="shortest trip, straight line")

    @field_validator("veh_per_hour")
    @classmethod
    def _hours(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [k for k in value if not re.fullmatch(r"\d{1,2}", str(k)) or not 0 <= int(k) <= 23]
        if bad:
            raise ValueError(f"hours are '00' to '23', got {bad}")
        neg = {k: v for k, v in value.items() if v < 0}
        if neg:
            raise ValueError(f"vehicles per hour cannot be negative, got {neg}")
        return {f"{int(k):02d}": v for k, v in sorted(value.items(), key=lambda kv: int(kv[0]))}


class Traffic(_Model):
    demand: Demand
    mode: Literal["micro", "meso"] = Field(
        "micro", description="meso: SUMO's mesoscopic model, faster"
    )
    step_length: float = Field(1.0, ge=0.1, le=5.0, description="seconds per SUMO step")
    sample_every: Duration = Field(60.0, description="how often the traffic state is recorded")
    teleport_after: Duration = Field(300.0, description="SUMO teleports a vehicle stuck this long")
    simulator: Literal["libsumo", "traci"] = Field(
        "libsumo", description="how the twin drives SUMO"
    )
    route_files: list[str] = Field(
        default_factory=list,
        description="more SUMO route files (relative to the scenario file): a calibrated "
        "demand, or special vehicles; they drive besides the demand above",
    )


class Outputs(_Model):
    report: bool = True
    edge_states: bool = Field(True, description="record every edge (else sectors and network only)")


class Scenario(_Model):
    """A what-if scenario."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="lower-case, digits, - and _")
    description: str = ""
    city: str = Field(
        "default", description='a city bundle folder, or "default" (central Helsinki)'
    )
    start: datetime = Field(
        description="local date and time with offset, 2026-12-01T07:00:00+02:00"
    )
    duration: Duration
    seed: int = Field(0, ge=0, lt=2**31)
    traffic: Traffic
    events: list[RoadEvent] = Field(default_factory=list)
    outputs: Outputs = Outputs()

    @field_validator("start")
    @classmethod
    def _has_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone offset, for example 2026-12-01T07:00:00+07:00")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        problems = []
        given = self.traffic.demand.veh_per_hour
        missing = [f"{h:02d}" for h in self.hours() if f"{h:02d}" not in given]
        if missing:
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
        if problems:
            raise ValueError(_MANY.join(problems))
        return self

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
        if event.start.startswith("+"):
            return parse_duration(event.start[1:])
        parts = [int(p) for p in event.start.split(":")]
        tod = time(parts[0] % 24, parts[1], parts[2] if len(parts) > 2 else 0)
        when = datetime.combine(self.start.date(), tod, tzinfo=self.start.tzinfo)
        if when < self.start:
            when += timedelta(days=1)
        return (when - self.start).total_seconds()

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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(
            str(path), [("", f"{where}not valid YAML ({getattr(exc, 'problem', exc)})")]
        ) from exc
    return scenario_from_dict(data, source=str(path))


def scenario_from_dict(data: Any, *, source: str = "scenario") -> Scenario:
    """Validate a scenario given as plain data (what YAML gives)."""
    if not isinstance(data, dict):
        raise ScenarioError(
            source, [("", f"a scenario is a mapping of fields, got {type(data).__name__}")]
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [p for err in exc.errors() for p in _problems(err)]
        raise ScenarioError(source, problems) from exc


def _problems(err: Any) -> list[tuple[str, str]]:
    """One pydantic error as ``(field path, message)`` pairs (a model check may hold several)."""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "value_error" and (_MANY in msg or re.match(r"^[\w.\[\]]+: ", msg)):
        out = []
        for line in msg.split(_MANY):
            path, _, text = line.partition(": ")
            out.append((path, text))
        return out
    return [_problem(err)]


def _problem(err: Any) -> tuple[str, str]:
    path = ""
    for part in err["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("accident", "closure", "flood", "demonstration") or part.startswith(
            "function-"
        ):
            continue  # the discriminated union's branch name, not a field
        else:
            path += f".{part}" if path else str(part)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return path, "missing"
    if err["type"] == "extra_forbidden":
        return path, "unknown field"
    value = err.get("input")
    if "input" in err and not isinstance(value, dict | list):
        shown = value.isoformat() if isinstance(value, datetime) else repr(value)
        said = (rf"(?<![\w.]){re.escape(x)}(?![\w.])" for x in {shown, str(value)})
        if not any(re.search(p, msg) for p in said):  # "0" is not said by "0.1"
            msg += f" (got {shown})"
    return path, msg


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files, for editors."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "smart-policing-twin scenario"
    return schema
