"""The scenario's ``traffic`` section: demand by hour and how SUMO simulates it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from twin.scenario._base import Duration, _Model


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
