"""The scenario's ``response`` section (``twin.response``): call centres, incidents,
units, dispatch and targets."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from twin.events import INCIDENT_TYPES, NUMBERS, EmergencyNumber, IncidentTypeName
from twin.scenario._base import _MANY, Duration, Place, _Model, _time_of_day_or_offset
from twin.scenario.traffic import VehicleTypeName

# -- emergency response (twin.response) --------------------------------------------------------

#: What an incident can need, and the unit types that serve each need.
NEEDS = {
    "police": ("police_car", "motorbike"),
    "ambulance": ("ambulance",),
    "fire": ("fire_engine",),
}


class TimeDist(_Model):
    """A random duration: its mean and its spread (coefficient of variation, sd / mean)."""

    mean: Duration
    cv: float = Field(0.5, ge=0, le=5, description="sd / mean; ignored by exponential")
    distribution: Literal["lognormal", "exponential", "fixed"] = "lognormal"

    def draw(self, rng: Any) -> float:
        """One random duration in seconds, from ``rng`` (a numpy Generator)."""
        if self.distribution == "fixed" or (self.distribution == "lognormal" and self.cv == 0):
            return float(self.mean)
        if self.distribution == "exponential":
            return float(rng.exponential(self.mean))
        sigma2 = math.log1p(self.cv**2)
        return float(rng.lognormal(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2)))


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
    (:data:`DEFAULT_TYPES` below)."""

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
        "crime",
        "110",
        {1: 0.15, 2: 0.45, 3: 0.40},
        {"police": 1},
        {},
        TimeDist(mean=1800),
        0.0,
        0.2,
    ),
    "traffic_accident": IncidentSpec(
        "traffic_accident",
        "110",
        {1: 0.25, 2: 0.5, 3: 0.25},
        {"police": 1},
        {"ambulance": 0.35},
        TimeDist(mean=1500),
        0.6,
        0.6,
    ),
    "medical": IncidentSpec(
        "medical",
        "119",
        {1: 0.3, 2: 0.5, 3: 0.2},
        {"ambulance": 1},
        {},
        TimeDist(mean=900),
        0.7,
        0.1,
    ),
    "fire": IncidentSpec(
        "fire",
        "113",
        {1: 0.7, 2: 0.3},
        {"fire": 1},
        {"police": 0.5, "ambulance": 0.3},
        TimeDist(mean=2400),
        0.5,
        1.5,
    ),
    "public_order": IncidentSpec(
        "public_order",
        "110",
        {1: 0.3, 2: 0.5, 3: 0.2},
        {"police": 2},
        {},
        TimeDist(mean=2700),
        0.0,
        1.0,
    ),
}


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

    rates: dict[IncidentTypeName, Rate] = Field(default_factory=dict)
    accidents_by_vehicle: dict[VehicleTypeName, Rate] = Field(
        default_factory=dict,
        description="traffic accidents per hour by the type of vehicle involved (motorcycle, "
        "car, angkot, bus, truck), instead of one traffic_accident rate: each accident "
        "records its vehicle type",
    )
    sector_weights: dict[str, float] = Field(
        default_factory=dict, description="sector id -> multiplier of its share (default 1)"
    )
    types: dict[IncidentTypeName, IncidentType] = Field(default_factory=dict)
    scripted: list[ScriptedIncident] = Field(default_factory=list)
    from_road_events: bool = Field(
        True, description="the scenario's accidents also become incidents (with their calls)"
    )

    @field_validator("rates", "accidents_by_vehicle")
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

    @model_validator(mode="after")
    def _one_accident_rate(self) -> Incidents:
        if self.accidents_by_vehicle and "traffic_accident" in self.rates:
            raise ValueError(
                "give traffic accidents either as rates.traffic_accident or as "
                "accidents_by_vehicle, not both"
            )
        return self

    def rate(self, kind: str, hour: int) -> float:
        """Incidents of ``kind`` per hour over the city, at local ``hour`` (traffic
        accidents: summed over the vehicle types where the scenario gives them by type)."""
        if kind == "traffic_accident" and self.accidents_by_vehicle:
            return sum(self.accident_rate(v, hour) for v in self.accidents_by_vehicle)
        return _at_hour(self.rates.get(kind, 0.0), hour)  # type: ignore[call-overload]

    def accident_rate(self, vehicle_type: str, hour: int) -> float:
        """Traffic accidents involving ``vehicle_type`` per hour, at local ``hour``."""
        return _at_hour(self.accidents_by_vehicle.get(vehicle_type, 0.0), hour)  # type: ignore[call-overload]


def _at_hour(rate: Rate, hour: int) -> float:
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
    """The doctrine's targets: 110 answered within 10 s for 90 % of calls, a unit on scene
    within 10 minutes for 90 % of incidents (``twin optimise`` plans for them)."""

    answer_s: Duration = Field(10.0, description="a call answered within this")
    on_scene_s: Duration = Field(600.0, description="a unit on scene within this of the call")
    answer_share: float = Field(
        0.9, gt=0, le=1, description="share of calls to answer within answer_s"
    )
    on_scene_share: float = Field(
        0.9, gt=0, le=1, description="share of incidents to reach within on_scene_s"
    )


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
