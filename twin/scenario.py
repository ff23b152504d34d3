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

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

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
from twin._inputs import load_yaml
from twin.events import INCIDENT_TYPES, NUMBERS, EmergencyNumber, IncidentTypeName


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
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*min)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


#: The longest duration anything may have: a year (a longer run is an input mistake).
MAX_DURATION_S = 366 * 86400.0


def parse_duration(value: Any) -> float:
    """Seconds from ``3600``, ``"1h"``, ``"45min"``, ``"1h30min"``, ``"90s"``, ``"7d"`` or
    ``"01:30:00"``.

    >>> parse_duration("1h30min"), parse_duration("01:30:00"), parse_duration(90), parse_duration("7d")
    (5400.0, 5400.0, 90.0, 604800.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"not a duration: {value!r} is too large") from None
    elif isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
        parts = [int(p) for p in value.strip().split(":")] + [0]
        seconds = float(parts[0] * 3600 + parts[1] * 60 + parts[2])
    elif isinstance(value, str) and (m := _DURATION.match(value)) and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    else:
        raise ValueError(f"not a duration (write 45min, 1h30min, 90s, 7d or 01:30:00): {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {value!r}")
    if not seconds <= MAX_DURATION_S:  # NaN and infinity too
        raise ValueError(f"a duration of at most a year, not {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
            "description": "seconds, or 45min, 1h30min, 90s, 7d, 01:30:00",
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


def _time_of_day_or_offset(value: str) -> str:
    value = value.strip()
    if value.startswith("+"):
        parse_duration(value[1:])
    elif not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
        raise ValueError(f'write a time of day "07:40" or an offset "+40min", not {value!r}')
    return value


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
        return _time_of_day_or_offset(value)


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
    follow_counts: bool = Field(
        False,
        description="where a detector (the sensors file) counts more vehicles than the "
        "simulation, add the missing ones over the next interval on routes through it; where "
        "it counts fewer, take the surplus out before it passes, as SUMO's calibrators do: "
        "the live twin's flows follow the live counts",
    )


# -- emergency response (twin.response) --------------------------------------------------------

#: What an incident can need, and the unit types that serve each need.
NEEDS = {
    "police": ("police_car", "motorbike"),
    "ambulance": ("ambulance",),
    "fire": ("fire_engine",),
}
UNIT_TYPES = ("police_car", "motorbike", "ambulance", "fire_engine")


class TimeDist(_Model):
    """A random duration: its mean and its spread (coefficient of variation, sd / mean)."""

    mean: Duration
    cv: float = Field(0.5, ge=0, le=5, description="sd / mean; ignored by exponential")
    distribution: Literal["lognormal", "exponential", "fixed"] = "lognormal"


class CallPool(_Model):
    """Call-takers who answer some of the numbers."""

    name: str = Field(pattern=r"^[\w-]+$")
    numbers: list[EmergencyNumber] = Field(min_length=1)
    call_takers: int = Field(ge=1, le=1000)


def _default_pools() -> list[CallPool]:
    return [CallPool(name="integrated", numbers=list(NUMBERS), call_takers=4)]


class CallCentre(_Model):
    """Who answers the calls, and how callers behave.

    ``pools`` is the choice between one integrated centre (one pool serving every number,
    the default) and a centre per agency (a pool per number). Every number has exactly one
    pool. Calls wait in priority order (1 first), then in order of arrival."""

    pools: list[CallPool] = Field(default_factory=_default_pools, min_length=1)
    handling: dict[EmergencyNumber, TimeDist] = Field(
        default_factory=dict,
        description="talk time per number; default: lognormal, mean 90 s (119: 120 s), cv 0.5",
    )
    patience: TimeDist | None = Field(
        default_factory=lambda: TimeDist(mean=60.0, distribution="exponential"),
        description="how long a caller waits before hanging up; null: callers never hang up",
    )
    redial: float = Field(
        0.3, ge=0, le=1, description="share of callers who hung up and call again"
    )
    redial_after: TimeDist = Field(default_factory=lambda: TimeDist(mean=30.0))
    share_112: float = Field(
        0.1, ge=0, le=1, description="share of callers who dial 112 instead of the agency's number"
    )


class IncidentType(_Model):
    """How incidents of one type behave. Unset fields take the type's defaults
    (``twin.response.incidents.DEFAULT_TYPES``)."""

    number: Literal["110", "119", "113"] | None = Field(None, description="the number callers dial")
    priority: dict[int, float] | None = Field(
        None, description="share of each priority, 1 (most urgent) to 3"
    )
    needs: dict[Literal["police", "ambulance", "fire"], int] | None = Field(
        None, description="units always sent, by kind"
    )
    may_need: dict[Literal["police", "ambulance", "fire"], float] | None = Field(
        None, description="probability that one more unit of a kind is needed"
    )
    on_scene: TimeDist | None = None
    transport: float | None = Field(
        None, ge=0, le=1, description="share of ambulance jobs that take a patient to hospital"
    )
    extra_calls: float | None = Field(
        None, ge=0, le=20, description="mean number of duplicate calls (Poisson)"
    )

    @field_validator("priority")
    @classmethod
    def _shares(cls, value: dict[int, float] | None) -> dict[int, float] | None:
        if value is None:
            return value
        if any(k not in (1, 2, 3) for k in value) or any(v < 0 for v in value.values()):
            raise ValueError(f"priorities are 1, 2 or 3 with shares >= 0, got {value}")
        if abs(sum(value.values()) - 1) > 1e-6:
            raise ValueError(f"priority shares must add up to 1, got {sum(value.values()):g}")
        return value


@dataclass(frozen=True)
class IncidentSpec:
    """An incident type with every field set: the scenario's choices over the defaults."""

    kind: str
    number: str
    priority: dict[int, float]
    needs: dict[str, int]
    may_need: dict[str, float]
    on_scene: TimeDist
    transport: float
    extra_calls: float


#: Each incident type's defaults. The numbers are planning assumptions, not measurements:
#: override them per scenario from local records.
DEFAULT_TYPES: dict[str, IncidentSpec] = {
    "crime": IncidentSpec(
        "crime", "110", {1: 0.15, 2: 0.45, 3: 0.40}, {"police": 1}, {}, TimeDist(mean=1800), 0.0, 0.2
    ),
    "traffic_accident": IncidentSpec(
        "traffic_accident", "110", {1: 0.25, 2: 0.5, 3: 0.25}, {"police": 1}, {"ambulance": 0.35},
        TimeDist(mean=1500), 0.6, 0.6,
    ),
    "medical": IncidentSpec(
        "medical", "119", {1: 0.3, 2: 0.5, 3: 0.2}, {"ambulance": 1}, {}, TimeDist(mean=900), 0.7, 0.1
    ),
    "fire": IncidentSpec(
        "fire", "113", {1: 0.7, 2: 0.3}, {"fire": 1}, {"police": 0.5, "ambulance": 0.3},
        TimeDist(mean=2400), 0.5, 1.5,
    ),
    "public_order": IncidentSpec(
        "public_order", "110", {1: 0.3, 2: 0.5, 3: 0.2}, {"police": 2}, {}, TimeDist(mean=2700),
        0.0, 1.0,
    ),
}  # fmt: skip


def incident_type(kind: str, given: IncidentType | None = None) -> IncidentSpec:
    """The incident type ``kind`` with the scenario's overrides applied."""
    base = DEFAULT_TYPES[kind]
    if given is None:
        return base
    changes = {k: v for k, v in given.model_dump(exclude_none=True).items()}
    if "on_scene" in changes:
        changes["on_scene"] = given.on_scene
    return dataclasses.replace(base, **changes)


Rate = float | dict[str, float]


class ScriptedIncident(_Model):
    """One incident at a given time and place (an inject)."""

    id: str | None = None
    type: IncidentTypeName
    at: Place
    start: str = Field(description='local time of day "07:40", or an offset "+40min"')
    priority: int | None = Field(None, ge=1, le=3)
    extra_calls: int | None = Field(None, ge=0, le=100, description="duplicate calls")

    @field_validator("start")
    @classmethod
    def _start_form(cls, value: str) -> str:
        return _time_of_day_or_offset(value)


class Incidents(_Model):
    """Where and when incidents happen.

    ``rates`` are incidents per hour over the whole city, by type: one number, or by local
    hour of day (``"07": 4``). They are shared out over the sectors by road length times
    ``sector_weights``, and arrive as a Poisson process whose rate changes by hour."""

    rates: dict[IncidentTypeName, Rate] = (
        Field(default_factory=dict)
    )
    sector_weights: dict[str, float] = Field(
        default_factory=dict, description="sector id -> multiplier of its share (default 1)"
    )
    types: dict[
        IncidentTypeName, IncidentType
    ] = Field(default_factory=dict)
    scripted: list[ScriptedIncident] = Field(default_factory=list)
    from_road_events: bool = Field(
        True, description="the scenario's accidents also become incidents (with their calls)"
    )

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: dict[str, Rate]) -> dict[str, Rate]:
        for kind, rate in value.items():
            hours = rate if isinstance(rate, dict) else {"00": rate}
            for hour, r in hours.items():
                if not re.fullmatch(r"\d{1,2}", str(hour)) or not 0 <= int(hour) <= 23:
                    raise ValueError(f"{kind}: hours are '00' to '23', got {hour!r}")
                if not r >= 0:
                    raise ValueError(f"{kind}: incidents per hour cannot be negative, got {r}")
        return value

    @field_validator("sector_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not v >= 0}
        if bad:
            raise ValueError(f"sector weights cannot be negative, got {bad}")
        return value

    def rate(self, kind: str, hour: int) -> float:
        """Incidents of ``kind`` per hour over the city, at local ``hour``."""
        rate = self.rates.get(kind, 0.0)  # type: ignore[call-overload]
        if isinstance(rate, dict):
            return float({int(h): r for h, r in rate.items()}.get(hour, 0.0))
        return float(rate)


class Units(_Model):
    """A group of units of one type at one base.

    ``base`` is a kind of facility (``police``, ``hospital``, ``fire``: the city's, or its
    posts file's, spread round-robin), a facilities file, or a place."""

    name: str = Field(pattern=r"^[\w-]+$", description="units are called <name>-1, <name>-2, ...")
    type: Literal["police_car", "motorbike", "ambulance", "fire_engine"]
    count: int = Field(1, ge=1, le=500)
    base: Literal["police", "hospital", "fire"] | Place | str
    shift: str | None = Field(
        None, description='on duty "07:00-19:00" (local); default: the whole run'
    )

    @field_validator("shift")
    @classmethod
    def _shift(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", value.strip()):
            raise ValueError(f'write a shift as "07:00-19:00", not {value!r}')
        return value


class Dispatch(_Model):
    """How the dispatcher (CAD) chooses units.

    - ``closest``: the available unit that reaches the incident first, by current travel
      time (closures and, with traffic on, observed speeds).
    - ``beats``: each sector's preference list, first available unit first; a sector
      without a list falls back to the closest unit.

    With ``reassign``, a unit that frees up takes over an assignment when it would reach the
    incident sooner than the unit on its way (by more than ``reassign_margin``)."""

    policy: Literal["closest", "beats"] = "closest"
    beats: dict[str, list[str]] = Field(
        default_factory=dict, description="sector id -> unit names in order of preference"
    )
    reassign: bool = False
    reassign_margin: Duration = 60.0
    speed_factor: float = Field(
        1.3, ge=0.5, le=2.5, description="emergency driving: speed over the limit, free roads"
    )
    hospitals: Literal["hospital"] | str = Field(
        "hospital", description="where ambulances take patients: the city's hospitals or a file"
    )
    turnout: TimeDist = Field(
        default_factory=lambda: TimeDist(mean=45.0, cv=0.3),
        description="from dispatch to the wheels turning",
    )
    handover: TimeDist = Field(
        default_factory=lambda: TimeDist(mean=900.0, cv=0.4),
        description="an ambulance at hospital, handing over its patient",
    )


class Targets(_Model):
    answer_s: Duration = Field(10.0, description="a call answered within this")
    on_scene_s: Duration = Field(600.0, description="a unit on scene within this of the call")


class Response(_Model):
    """Emergency calls, call-takers, dispatch and units (``twin.response``)."""

    call_centre: CallCentre = Field(default_factory=CallCentre)
    incidents: Incidents = Field(default_factory=Incidents)
    units: list[Units] = Field(min_length=1)
    dispatch: Dispatch = Field(default_factory=Dispatch)
    targets: Targets = Field(default_factory=Targets)

    @model_validator(mode="after")
    def _units(self) -> Response:
        # The call centre's checks live here, not on CallCentre, so that one error lists
        # them with the units' (pydantic stops at a nested model that fails).
        problems = []
        seen: dict[str, str] = {}
        for i, pool in enumerate(self.call_centre.pools):
            for number in pool.numbers:
                if number in seen:
                    problems.append(
                        f"response.call_centre.pools[{i}].numbers: {number} is already answered "
                        f"by pool {seen[number]!r}"
                    )
                seen[number] = pool.name
        missing = [n for n in NUMBERS if n not in seen]
        if missing:
            problems.append(f"response.call_centre.pools: no pool answers {', '.join(missing)}")
        pools = [p.name for p in self.call_centre.pools]
        problems += [
            f"response.call_centre.pools[{i}].name: {n!r} is used twice"
            for i, n in enumerate(pools)
            if n in pools[:i]
        ]
        names = [u.name for u in self.units]
        problems += [
            f"response.units[{i}].name: {n!r} is used twice"
            for i, n in enumerate(names)
            if n in names[:i]
        ]
        unit_ids = {f"{u.name}-{k + 1}" for u in self.units for k in range(u.count)}
        for sector, beat in self.dispatch.beats.items():
            unknown = [u for u in beat if u not in unit_ids]
            if unknown:
                problems.append(
                    f"response.dispatch.beats.{sector}: no unit called {', '.join(map(repr, unknown))} "
                    f"(units are {', '.join(sorted(unit_ids)[:6])}{', ...' if len(unit_ids) > 6 else ''})"
                )
        have = {t for u in self.units for t in (u.type,)}
        for kind in INCIDENT_TYPES:
            if not self.incidents.rates.get(kind) and not any(  # type: ignore[call-overload]
                s.type == kind for s in self.incidents.scripted
            ):
                continue
            spec = incident_type(kind, self.incidents.types.get(kind))  # type: ignore[arg-type]
            for need in {*spec.needs, *spec.may_need}:
                if not have & set(NEEDS[need]):
                    problems.append(
                        f"response.units: {kind.replace('_', ' ')} incidents need {need} units, "
                        f"and there are none ({' or '.join(NEEDS[need])})"
                    )
        if problems:
            raise ValueError(_MANY.join(problems))
        return self


# -- community (twin.agents) --------------------------------------------------------------------


class Patrols(_Model):
    """Patrol units of the community model and their strategy."""

    units: int = Field(4, ge=0, le=500)
    strategy: Literal["random", "beats", "hotspot", "predicted"] = Field(
        "random",
        description="random junctions; fixed beats by sector; the top-k roads by past crime "
        "(11-15 minute stops); or the top-k roads of a forecast",
    )
    hotspots: int = Field(
        5, ge=1, le=200, description="how many roads the hotspot strategies visit"
    )
    forecast: Literal["kde", "sepp"] = Field(
        "kde", description="the predicted strategy's forecast: kernel density or self-exciting"
    )


class Unrest(_Model):
    """Epstein's civil violence rules in each demonstration's crowd."""

    legitimacy: float = Field(
        0.75, ge=0, le=1, description="the regime's legitimacy at trust 0.5; trust moves it"
    )
    crowd: int = Field(300, ge=10, le=20000, description="people in each demonstration")
    police: int = Field(20, ge=0, le=5000, description="police officers in the crowd")
    max_jail_term: int = Field(30, ge=0, le=1000, description="steps a jailed citizen stays out")


class Community(_Model):
    """Residents, offenders, Bhabinkamtibmas and patrols (``twin.agents.community``)."""

    step: Duration = Field(600.0, description="simulated time per community step")
    residents: int = Field(2000, ge=0, le=1_000_000)
    offenders: int = Field(40, ge=0, le=100_000)
    motivation: float = Field(
        0.03,
        ge=0,
        le=1,
        description="mean chance an offender strikes on an unguarded, suitable road",
    )
    patrols: Patrols = Field(default_factory=Patrols)
    bhabinkamtibmas: int = Field(0, ge=0, le=10_000, description="neighbourhood officers")
    trust: float = Field(
        0.5, gt=0, lt=1, description="residents' mean trust in the police at the start, 0 to 1"
    )
    unrest: Unrest | None = Field(
        None, description="civil violence in the crowds of the scenario's demonstrations"
    )


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
        "default", description='a city bundle folder, or "default" (central Helsinki)'
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
        if self.traffic is None and self.response is None and self.community is None:
            problems.append("traffic: give traffic, response or community: there is nothing to run")
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
        merged = _merge(base, self.variants[name])
        merged["name"] = f"{self.name}-{name}"
        try:
            return Scenario.model_validate(merged)
        except ValidationError as exc:
            raise ScenarioError(name, [p for err in exc.errors() for p in _problems(err)]) from exc

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
        problems = [p for err in exc.errors() for p in _problems(err)]
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


def _merge(base: Any, override: Any) -> Any:
    """``override`` laid over ``base``: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    return override


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
