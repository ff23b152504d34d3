"""Coverage: which roads, nodes and sectors can a unit reach from its post in time?

Facilities come from the city bundle's POIs (police, hospitals, fire stations) or, where
OSM maps none, from a posts file shipped beside the city's scenarios
(``scenarios/<city>_posts.geojson``), or from a file the planner gives (GeoJSON points, or
CSV with ``name,lat,lon,kind``). Travel is by emergency vehicle at free-flow speed (closures
for passenger traffic do not stop it). A road counts as covered when a unit can reach its
far end within the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin._errors import InputError
from twin.city.facilities import Facility, snap_facilities


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
    sectors = engine.node_sectors().to_numpy()
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


def coverage_map(city: Any, result: Coverage, path: Path, *, title: str) -> None:
    """An HTML map: sectors coloured by the share of their roads covered, and the posts."""
    import html

    from twin import report

    fig = report.sector_map(
        city, result.sectors["share"], title=title, colorbar="share covered", better="higher"
    )
    fig.add_scatter(
        x=[f.lon for f in result.facilities],
        y=[f.lat for f in result.facilities],
        mode="markers+text",
        text=[f.name for f in result.facilities],
        textposition="top center",
        name="posts",
        marker={
            "symbol": "star",
            "size": 14,
            "color": "#1f3b73",
            "line": {"width": 1, "color": "white"},
        },
    )
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
