"""Facilities: police posts, hospitals and fire stations, where units stand and patients go.

They come from the city bundle's POIs (OpenStreetMap) or, where OSM maps none, from a posts
file shipped beside the city's scenarios (``scenarios/<city>_posts.geojson``), or from a
file the planner gives: GeoJSON points with the properties ``name`` and ``kind``, or a CSV
with ``name,lat,lon,kind``. ``kind`` is ``police``, ``hospital`` or ``fire``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin._errors import InputError

KINDS = {"police": "police", "hospital": "hospital", "fire": "fire_station"}
#: A facility farther than this from every junction of the city is refused as misplaced.
MAX_SNAP_M = 500.0
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass(frozen=True)
class Facility:
    name: str
    kind: str  # police, hospital or fire
    lat: float
    lon: float


def load_facilities(
    city: Any, source: str, *, scenarios: Path = SCENARIOS
) -> tuple[list[Facility], str]:
    """Facilities of a kind (``police``, ``hospital``, ``fire``) or from a file, and a
    sentence saying where they came from."""
    if source in KINDS:
        pois = city.pois[city.pois["category"] == KINDS[source]]
        if len(pois):
            found = [
                Facility(r["name"] or osm_id, source, r.geometry.y, r.geometry.x)
                for osm_id, r in pois.iterrows()
            ]
            return found, f"{len(found)} {source} facilities from the city bundle (OpenStreetMap)"
        posts = scenarios / f"{city.name}_posts.geojson"
        if posts.exists():
            found = [f for f in read_facilities(posts) if f.kind == source]
            if found:
                return (
                    found,
                    f"{len(found)} {source} posts from {posts} (OpenStreetMap maps none in {city.name})",
                )
        where = (
            f"its posts file {posts} has none"
            if posts.exists()
            else f"there is no posts file {posts}"
        )
        raise InputError(
            f"{source}: the city {city.name!r} has no {source} facility in OpenStreetMap and "
            f"{where}; give a file of your own"
        )
    path = Path(source)
    found = read_facilities(path)
    return found, f"{len(found)} facilities from {path}"


def read_facilities(path: Path) -> list[Facility]:
    """Facilities from GeoJSON points or a CSV (``name,lat,lon,kind``); errors name the row."""
    if not path.is_file():
        raise InputError(f"{path}: facilities file not found")
    out: list[Facility] = []
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                out.append(
                    _facility(
                        row.get("name"),
                        row.get("kind"),
                        row.get("lat"),
                        row.get("lon"),
                        f"{path}, line {line}",
                    )
                )
    else:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            features = doc["features"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: not a GeoJSON FeatureCollection ({exc})") from exc
        for i, feat in enumerate(features):
            where = f"{path}, features[{i}]"
            geom, props = feat.get("geometry") or {}, feat.get("properties") or {}
            if geom.get("type") != "Point":
                raise InputError(f"{where}: geometry must be a Point, got {geom.get('type')!r}")
            lon, lat = (geom.get("coordinates") or [None, None])[:2]
            out.append(_facility(props.get("name"), props.get("kind"), lat, lon, where))
    if not out:
        raise InputError(f"{path}: holds no facility")
    return out


def _facility(name: Any, kind: Any, lat: Any, lon: Any, where: str) -> Facility:
    if kind not in KINDS:
        raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    try:
        la, lo = float(lat), float(lon)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: lat and lon must be numbers, got {lat!r}, {lon!r}") from exc
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        raise InputError(f"{where}: ({la}, {lo}) is not a latitude and longitude")
    return Facility(str(name or f"{kind} post"), kind, la, lo)


def snap_facilities(engine: Any, facilities: list[Facility], city_name: str) -> list[int]:
    """Each facility's junction; a facility far from every road is refused by name."""
    nodes, problems = [], []
    for f in facilities:
        node, dist = engine.snap(f.lat, f.lon)
        if dist > MAX_SNAP_M:
            far = f"{dist / 1000:,.1f} km" if dist >= 1000 else f"{dist:.0f} m"
            problems.append(
                f"{f.name} ({f.lat:.5f}, {f.lon:.5f}) is {far} from the nearest road of {city_name}"
            )
        nodes.append(node)
    if problems:
        raise InputError("; ".join(problems))
    return nodes
