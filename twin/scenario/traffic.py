"""The scenario's ``traffic`` section: demand by hour and how SUMO simulates it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from twin.scenario._base import Duration, _Model

#: The vehicle types of a mix, in the order the twin lists them (their SUMO parameters are
#: the traffic adapter's, :mod:`twin.traffic.vehicles`).
VehicleTypeName = Literal["motorcycle", "car", "angkot", "bus", "truck"]
VEHICLE_TYPE_NAMES: tuple[str, ...] = ("motorcycle", "car", "angkot", "bus", "truck")
#: Metres per lateral strip of SUMO's sublane model when motorcycles run.
SUBLANE_M = 0.3


class Demand(_Model):
    """Background traffic: vehicles per hour, by local hour of day (``"07": 1800``), and the
    mix of vehicle types they are drawn in (all cars without one)."""

    veh_per_hour: dict[str, int] = Field(description='hour of day "00".."23" -> vehicles per hour')
    method: Literal["random", "city"] = Field(
        "random",
        description="random: SUMO's randomTrips (uniform over the roads); city: a gravity "
        "model from the city's activity, with trip lengths and through traffic",
    )
    min_trip_m: float = Field(300.0, ge=0, description="shortest trip, straight line")
    trip_length_m: float = Field(
        2000.0,
        gt=0,
        le=100_000,
        description="city demand: the distance over which trips thin out (exp(-d / this))",
    )
    through_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="city demand: share of trip ends on the roads where the extract is cut",
    )
    mix: dict[VehicleTypeName, float] | None = Field(
        None,
        description="share of each vehicle type (motorcycle, car, angkot, bus, truck), "
        "summing to 1; none: all cars",
    )
    mix_source: str = Field(
        "",
        description="where the mix comes from: a count, a survey, or a planning assumption "
        "(shown beside every figure per vehicle type)",
    )

    @field_validator("mix")
    @classmethod
    def _mix(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        bad = {k: v for k, v in value.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"each share is between 0 and 1, got {bad}")
        total = sum(value.values())
        if abs(total - 1) > 0.005:
            raise ValueError(f"the shares sum to 1, these sum to {total:g}")
        return {k: v for k, v in value.items() if v > 0}

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


class SignalPriority(_Model):
    """Signal priority for emergency vehicles: a traffic light ahead of a unit under blue
    lights turns green for its lane when the unit comes within ``within_m`` on red, so the
    queue in front of it clears (the unit may already pass a red light, but not the cars
    waiting at it)."""

    within_m: float = Field(150.0, gt=0, le=1000, description="how far ahead a light turns")


class Traffic(_Model):
    demand: Demand
    signal_priority: SignalPriority | None = Field(
        None, description="traffic lights turn green for units under blue lights (a plan measure)"
    )
    mode: Literal["micro", "meso"] = Field(
        "micro", description="meso: SUMO's mesoscopic model, faster"
    )
    step_length: float = Field(1.0, ge=0.1, le=5.0, description="seconds per SUMO step")
    lateral_resolution: float | None = Field(
        None,
        ge=0,
        le=3.5,
        description="metres per strip of SUMO's sublane model (0: lanes only); by default "
        "0.3 where the mix has motorcycles, so they filter between cars (micro only)",
    )
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

    def sublane_m(self) -> float | None:
        """The lateral resolution the run uses, or None for SUMO's lanes only."""
        if self.mode == "meso":
            return None
        if self.lateral_resolution is not None:
            return self.lateral_resolution or None
        mix = self.demand.mix or {}
        return SUBLANE_M if mix.get("motorcycle", 0) > 0 else None

    def vehicle_types(self) -> tuple[str, ...]:
        """The vehicle types of the mix, in the order of :data:`VEHICLE_TYPE_NAMES`."""
        mix = self.demand.mix or {}
        return tuple(name for name in VEHICLE_TYPE_NAMES if name in mix)
