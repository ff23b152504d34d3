"""The sensors file of a city: every detector, camera, crowd counter and water gauge.

A YAML file lists them with their positions; loading it snaps each to the nearest road of
the city's SUMO net (within 250 m), so counts can be compared with simulated flows and a
gauge knows which roads it floods::

    sensors:
      - {id: det-mannerheimintie-n, kind: detector, lat: 60.1712, lon: 24.9386}
      - {id: cam-kamppi, kind: camera, lat: 60.1690, lon: 24.9320}
      - {id: crowd-rautatientori, kind: crowd, lat: 60.1705, lon: 24.9430}
      - {id: gauge-kauppatori, kind: gauge, lat: 60.1670, lon: 24.9525,
         threshold_m: 1.2, floods_radius_m: 200}

Each problem is reported with the file and the field path, as for scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.scenario import ScenarioError, field_problems

#: Which kinds of sensor send which kinds of message.
SENDS = {
    "detector": ("TrafficFlowObserved",),
    "camera": ("TravelTimeObserved",),
    "crowd": ("CrowdFlowObserved",),
    "gauge": ("FloodMonitoring",),
}


class SensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[\w.:-]+$")
    kind: Literal["detector", "camera", "crowd", "gauge"]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    threshold_m: float | None = Field(None, description="gauges: the level that floods roads")
    floods_radius_m: float | None = Field(
        None, gt=0, le=5000, description="gauges: roads this close flood"
    )

    @model_validator(mode="after")
    def _gauge(self) -> SensorSpec:
        if self.kind == "gauge" and (self.threshold_m is None or self.floods_radius_m is None):
            raise ValueError("a gauge needs threshold_m and floods_radius_m")
        return self


class SensorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sensors: list[SensorSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SensorsFile:
        ids = [s.id for s in self.sensors]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"sensor ids used twice: {', '.join(twice)}")
        return self


@dataclass
class Sensor:
    id: str
    kind: str
    lat: float
    lon: float
    edge: str  # the SUMO edge it stands on
    threshold_m: float | None = None
    floods: list[str] = field(default_factory=list)  # gauges: SUMO edges that flood


@dataclass
class Registry:
    """The registered sensors by id, and the city's extent for position checks."""

    sensors: dict[str, Sensor]
    bounds: tuple[float, float, float, float]  # lat_min, lat_max, lon_min, lon_max

    def detectors(self) -> dict[str, str]:
        """Traffic detectors, by id, and the SUMO edge each stands on."""
        return {s.id: s.edge for s in self.sensors.values() if s.kind == "detector"}

    def inside(self, lat: float, lon: float, margin_deg: float = 0.01) -> bool:
        a, b, c, d = self.bounds
        return a - margin_deg <= lat <= b + margin_deg and c - margin_deg <= lon <= d + margin_deg


def read_sensors_file(path: Path) -> SensorsFile:
    """A sensors file, checked (ids, kinds, places), not yet placed on a city's roads."""
    if not Path(path).is_file():
        raise InputError(f"{path}: sensors file not found")
    try:
        data = load_yaml(Path(path), what="sensors file")
    except InputError as exc:  # YAML, UTF-8, size and depth: said where
        raise ScenarioError(str(path), [("", str(exc).removeprefix(f"{path}: "))]) from None
    try:
        return SensorsFile.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            str(path), [p for err in exc.errors() for p in field_problems(err)]
        ) from exc


def load_registry(path: Path | None, city: Any) -> Registry:
    """Read and snap a sensors file (``None``: no sensors, only position checks)."""
    g = city.graph
    lats = [d["y"] for _, d in g.nodes(data=True)]
    lons = [d["x"] for _, d in g.nodes(data=True)]
    bounds = (min(lats), max(lats), min(lons), max(lons))
    if path is None:
        return Registry({}, bounds)
    spec = read_sensors_file(Path(path))
    from twin.city.places import MAX_SNAP_M, CityNet

    net = CityNet(city)
    problems: list[tuple[str, str]] = []
    sensors: dict[str, Sensor] = {}
    for i, s in enumerate(spec.sensors):
        point = net.xy(s.lat, s.lon)
        edge, dist = net.nearest_edge(point)
        if dist > MAX_SNAP_M:
            problems.append(
                (f"sensors[{i}]", f"{s.id} is {dist:.0f} m from the nearest road of {city.name}")
            )
            continue
        floods = net.edges_in(point.buffer(s.floods_radius_m)) if s.kind == "gauge" else []
        sensors[s.id] = Sensor(s.id, s.kind, s.lat, s.lon, edge, s.threshold_m, floods)
    if problems:
        raise ScenarioError(str(path), problems)
    return Registry(sensors, bounds)
