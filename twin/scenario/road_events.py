"""Road events: accidents, closures, floods, demonstrations and contraflows, each at a
place and a time of the run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from twin.scenario._base import Area, Duration, LatLon, Place, _Model, _time_of_day_or_offset


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


class Contraflow(_RoadEvent):
    """A contraflow, a traffic measure: ``lanes`` lanes of the opposite direction are given
    to the direction of the road at ``road`` (cones and officers move them at ``start``
    and back at the end), as on a toll road into the city at the morning rush. ``toward``
    picks the direction of a two-way road: the one heading toward that point."""

    type: Literal["contraflow"]
    road: Place
    toward: LatLon | None = None
    lanes: int = Field(1, ge=1, le=3, description="lanes taken from the opposite direction")


RoadEvent = Annotated[
    Accident | Closure | Flood | Demonstration | Contraflow, Field(discriminator="type")
]
