"""Coverage: which roads, nodes and sectors can a unit reach from its post in time?

Facilities come from the city bundle's POIs (police, hospitals, fire stations) or, where
OSM maps none, from a posts file shipped beside the city's scenarios
(``scenarios/<city>_posts.geojson``), or from a file the planner gives (GeoJSON points, or
CSV with ``name,lat,lon,kind``). Travel is by emergency vehicle at free-flow speed (closures
for passenger traffic do not stop it). A road counts as covered when a unit can reach its
far end within the time.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


@dataclass
class Coverage:
    """What :func:`coverage` found."""

    facilities: list[Facility]
    source: str  # where the facilities came from, for people
    within_s: float
    road_share: float  # of road length (each direction counted)
    node_share: float
    sectors: pd.DataFrame  # per sector: nodes, nodes_reached, road_km, road_covered_km, share
    node_times: np.ndarray  # seconds from the nearest facility, per engine node


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
            f"--from {source}: the city {city.name!r} has no {source} facility in OpenStreetMap and "
            f"{where}; give your own with --from FILE"
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


def coverage(
    city: Any, facilities: list[Facility], within_s: float, *, engine: Any = None
) -> Coverage:
    """Share of road length, nodes and each sector reachable within ``within_s`` seconds."""
    from twin.routing import TravelTimeEngine

    if within_s <= 0:
        raise InputError(f"--within must be positive, got {within_s} s")
    engine = engine or TravelTimeEngine.from_city(city)
    starts = snap_facilities(engine, facilities, city.name)
    dist = engine.one_to_all(starts, within=within_s, emergency=True)
    reached = np.isfinite(dist)
    lengths = np.array([city.graph.edges[e]["length"] for e in engine._edge_ids])  # CSR order
    covered = reached[engine.indices]  # the far end of each edge (CSR order)
    sectors = engine._node_sectors().to_numpy()
    edge_sector = sectors[np.repeat(np.arange(len(engine.nodes)), np.diff(engine.indptr))]
    frame = pd.DataFrame(
        {
            "sector": edge_sector,
            "km": lengths / 1000,
            "covered_km": np.where(covered, lengths, 0) / 1000,
        }
    )
    by_sector = frame.groupby("sector").sum()
    nodes = (
        pd.DataFrame({"sector": sectors, "reached": reached})
        .groupby("sector")["reached"]
        .agg(["size", "sum"])
    )
    table = pd.DataFrame(
        {
            "nodes": nodes["size"],
            "nodes_reached": nodes["sum"].astype(int),
            "road_km": by_sector["km"].round(3),
            "road_covered_km": by_sector["covered_km"].round(3),
        }
    ).reindex(city.sectors.index)
    table = table[table["nodes"].fillna(0) > 0].astype({"nodes": int, "nodes_reached": int})
    table["share"] = (table["road_covered_km"] / table["road_km"]).round(4)
    return Coverage(
        facilities=facilities,
        source="",
        within_s=within_s,
        road_share=float(frame["covered_km"].sum() / frame["km"].sum()),
        node_share=float(reached.mean()),
        sectors=table,
        node_times=dist,
    )


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


def coverage_map(city: Any, result: Coverage, path: Path, *, title: str) -> None:
    """An HTML map: sectors coloured by the share of their roads covered, and the posts."""
    import html

    from twin import report

    fig = report.sector_map(city, result.sectors["share"], title=title, colorbar="share covered")
    fig.add_scatter(
        x=[f.lon for f in result.facilities], y=[f.lat for f in result.facilities], mode="markers+text",
        text=[f.name for f in result.facilities], textposition="top center", name="posts",
        marker={"symbol": "star", "size": 14, "color": "#1f3b73", "line": {"width": 1, "color": "white"}},
    )  # fmt: skip
    intro = (
        f"<p>{html.escape(result.source)}. Within {result.within_s / 60:.0f} minutes an emergency "
        f"vehicle reaches {result.road_share:.1%} of the road length and {result.node_share:.1%} "
        f"of the junctions.</p>"
    )
    table = result.sectors.assign(share=lambda d: (d["share"] * 100).round(1)).rename(
        columns={"share": "share %"}
    )
    report.write_html(
        path,
        title=title,
        intro=intro,
        sections=[("Map", fig), ("By sector", table.to_html(border=0))],
    )
