"""Which side of the road a city drives on.

SUMO builds right-hand nets unless told otherwise (``netconvert --lefthand``), and OSM
extracts do not say: the side is a country's law, not a tag on its roads. The twin decides
it from where the city is, with the areas that keep left (``data/left_hand_traffic.geojson``:
Natural Earth's 1:110m countries, public domain, and circles around the smaller places that
keep left, such as Singapore and Hong Kong). ``twin build --driving-side`` overrides it, for
a city near a border drawn too coarsely or a generated net with no place on Earth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

Side = Literal["left", "right"]
SIDES: tuple[str, ...] = ("left", "right")


@dataclass(frozen=True)
class DrivingSide:
    """The side a city keeps to, and how the twin knows (``decided_by``, for the manifest)."""

    side: Side
    decided_by: str

    @property
    def lefthand(self) -> bool:
        return self.side == "left"

    def as_dict(self) -> dict[str, str]:
        return {"side": self.side, "decided_by": self.decided_by}


@cache
def _left_areas() -> list[tuple[str, Any]]:
    from shapely.geometry import shape
    from shapely.prepared import prep

    text = resources.files("twin.city.data").joinpath("left_hand_traffic.geojson").read_text()
    doc = json.loads(text)
    return [(f["properties"]["name"], prep(shape(f["geometry"]))) for f in doc["features"]]


def side_at(lon: float, lat: float) -> DrivingSide:
    """The side traffic keeps to at a point: left in the areas that keep left, right elsewhere.

    >>> side_at(106.83, -6.19).side  # central Jakarta
    'left'
    >>> side_at(24.94, 60.17).side  # Helsinki
    'right'
    """
    from shapely.geometry import Point

    point = Point(lon, lat)
    for name, area in _left_areas():
        if area.contains(point):
            return DrivingSide("left", f"location: {name} keeps left")
    return DrivingSide("right", "location: outside the areas that keep left")


def choose(given: str | None, lon: float | None, lat: float | None) -> DrivingSide:
    """The side of a city to build: ``given`` ("left", "right" or "auto"/None) wins; "auto"
    decides from the city's centre (``lon``, ``lat``), or right where it has none."""
    if given not in (None, "auto"):
        if given not in SIDES:
            raise ValueError(f"the driving side is left, right or auto, got {given!r}")
        return DrivingSide(given, "--driving-side")  # type: ignore[arg-type]
    if lon is None or lat is None:
        return DrivingSide("right", "SUMO's default (the net has no place on Earth)")
    return side_at(lon, lat)
