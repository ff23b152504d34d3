"""Facilities: police posts, hospitals and fire stations, where units stand and patients go.

They come from the city bundle's POIs (OpenStreetMap) or, where OSM maps none, from a posts
file ``<city>_posts.geojson``: one beside the scenario, or the one the twin ships for its
built-in city (package data, ``twin/city/data/helsinki_posts.geojson``). Or they come from a
file the planner gives: GeoJSON points with the properties ``name`` and ``kind``, or a CSV
with ``name,lat,lon,kind``, a relative path being read from the scenario's folder. ``kind``
is ``police``, ``hospital`` or ``fire``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from twin._errors import InputError
from twin._inputs import MAX_DATA_BYTES, load_json, read_text

KINDS = {"police": "police", "hospital": "hospital", "fire": "fire_station"}
#: A facility farther than this from every junction of the city is refused as misplaced.
MAX_SNAP_M = 500.0
#: The posts files the twin ships, for cities whose OpenStreetMap maps no police post.
SHIPPED = resources.files("twin.city") / "data"


@dataclass(frozen=True)
class Facility:
    name: str
    kind: str  # police, hospital or fire
    lat: float
    lon: float


def load_facilities(
    city: Any, source: str, *, folder: Path | None = None, shipped: Any = SHIPPED
) -> tuple[list[Facility], str]:
    """Facilities of a kind (``police``, ``hospital``, ``fire``) or from a file, and a
    sentence saying where they came from.

    ``folder`` is the scenario's own folder: a relative file is read from it, and a posts
    file ``<city>_posts.geojson`` in it comes before the one the twin ships (``shipped``, a
    folder of package data)."""
    if source in KINDS:
        pois = city.pois[city.pois["category"] == KINDS[source]]
        if len(pois):
            found = [
                Facility(r["name"] or osm_id, source, r.geometry.y, r.geometry.x)
                for osm_id, r in pois.iterrows()
            ]
            return found, f"{len(found)} {source} facilities from the city bundle (OpenStreetMap)"
        name = f"{city.name}_posts.geojson"
        mine = folder / name if folder is not None else None
        if mine is not None and mine.is_file():
            posts, said = mine, str(mine)
        else:  # package data: said by name, not by where the package happens to be installed
            posts, said = Path(str(shipped / name)), f"the twin's own {name}"
        if posts.exists():
            found = [f for f in read_facilities(posts) if f.kind == source]
            if found:
                return (
                    found,
                    f"{len(found)} {source} posts from {said} (OpenStreetMap maps none in {city.name})",
                )
        where = (
            f"its posts file {said} has none"
            if posts.exists()
            else f"there is no posts file {name}" + (f" in {folder}" if folder is not None else "")
        )
        raise InputError(
            f"{source}: the city {city.name!r} has no {source} facility in OpenStreetMap and "
            f"{where}; give a file of your own"
        )
    path = Path(source)
    if folder is not None and not path.is_absolute():
        path = folder / path
    found = read_facilities(path)
    return found, f"{len(found)} facilities from {path}"


def read_facilities(path: Path) -> list[Facility]:
    """Facilities from GeoJSON points or a CSV (``name,lat,lon,kind``); any other content is
    refused with the row or feature that is wrong."""
    if not path.is_file():
        raise InputError(f"{path}: facilities file not found")
    out: list[Facility] = []
    if path.suffix.lower() == ".csv":
        text = read_text(path, what="facilities file", limit=MAX_DATA_BYTES)
        try:
            for line, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):
                out.append(
                    _facility(
                        row.get("name"),
                        row.get("kind"),
                        row.get("lat"),
                        row.get("lon"),
                        f"{path}, line {line}",
                    )
                )
        except csv.Error as exc:
            raise InputError(f"{path}: not a CSV of name,lat,lon,kind ({exc})") from None
    else:
        doc = load_json(path, what="facilities file")
        features = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(features, list):
            raise InputError(f"{path}: not a GeoJSON FeatureCollection (no list of features)")
        for i, feat in enumerate(features):
            where = f"{path}, features[{i}]"
            feat = feat if isinstance(feat, dict) else {}
            geom, props = feat.get("geometry"), feat.get("properties")
            geom = geom if isinstance(geom, dict) else {}
            props = props if isinstance(props, dict) else {}
            coords = geom.get("coordinates")
            if geom.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
                raise InputError(
                    f"{where}: geometry must be a Point [lon, lat], got {_short(geom.get('type'))}"
                )
            lon, lat = coords[:2]
            out.append(_facility(props.get("name"), props.get("kind"), lat, lon, where))
    if not out:
        raise InputError(f"{path}: holds no facility")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _facility(name: Any, kind: Any, lat: Any, lon: Any, where: str) -> Facility:
    if not isinstance(kind, str) or kind not in KINDS:
        raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}, got {_short(kind)}")
    try:
        if isinstance(lat, bool) or isinstance(lon, bool):
            raise TypeError("a truth value is not a number")
        la, lo = float(lat), float(lon)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"{where}: lat and lon must be numbers, got {_short(lat)}, {_short(lon)}"
        ) from exc
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        raise InputError(f"{where}: ({la}, {lo}) is not a latitude and longitude")
    return Facility(str(name or f"{kind} post")[:200], kind, la, lo)


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
