"""Sectors: the cells that colour-coding, KPIs and the community model share.

A city is split into H3 hexagons at resolution 8 (0.74 km² on average; about 0.57 km² at
Helsinki's latitude and 0.78 km² at Jakarta's). Why H3 rather than a square grid:

- every neighbour of a hexagon shares an edge and lies at the same distance, which hotspot
  smoothing and contagion models (near-repeat crime, unrest spreading) assume;
- a cell id names the same ground in every build, city and run, so sensor data, runs and
  plans join on it without a shared grid origin;
- the cells nest into coarser resolutions (7: 5.2 km²) for district-level views.

The cells are those that overlap the bounding box of the road graph, so together they cover
its whole extent. Each sector has a short id (``S01``, ``S02``, ... from north-west to
south-east, for people), its ``h3`` index (for machines), its hexagon, area, road length
(each street counted once, whatever its directions), node count, POI counts per category
and centroid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.city.osm import POI_CATEGORIES

if TYPE_CHECKING:
    import geopandas as gpd
    import networkx as nx

#: The default H3 resolution of sectors.
SECTOR_RESOLUTION = 8


def build_sectors(
    graph: nx.MultiDiGraph,
    pois: gpd.GeoDataFrame,
    *,
    metric_crs: str,
    resolution: int = SECTOR_RESOLUTION,
) -> gpd.GeoDataFrame:
    """The sectors of a city, as a GeoDataFrame in EPSG:4326 indexed by sector id.

    Parameters
    ----------
    graph
        The road graph (EPSG:4326).
    pois
        The points of interest, with a ``category`` column.
    metric_crs
        A metric CRS for lengths (the SUMO net's UTM zone).
    resolution
        The H3 resolution (8 gives 0.5-1 km² cells).
    """
    import geopandas as gpd
    import h3
    from shapely.geometry import Polygon

    xs = np.array([d["x"] for _, d in graph.nodes(data=True)])
    ys = np.array([d["y"] for _, d in graph.nodes(data=True)])
    west, east, south, north = xs.min(), xs.max(), ys.min(), ys.max()
    box = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    cells = sorted(h3.h3shape_to_cells_experimental(box, resolution, contain="overlap"))
    for lat, lon in zip(ys, xs, strict=True):  # a node on the box's edge is always covered
        cell = h3.latlng_to_cell(lat, lon, resolution)
        if cell not in cells:
            cells.append(cell)
    cells = sorted(set(cells))
    polygons = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    frame = gpd.GeoDataFrame({"h3": cells}, geometry=polygons, crs="EPSG:4326")
    frame["area_km2"] = [h3.cell_area(c, "km^2") for c in cells]
    centroids = [h3.cell_to_latlng(c) for c in cells]
    frame["centroid_lat"] = [c[0] for c in centroids]
    frame["centroid_lon"] = [c[1] for c in centroids]

    node_cells = pd.Series(
        [h3.latlng_to_cell(y, x, resolution) for x, y in zip(xs, ys, strict=True)]
    )
    frame["node_count"] = frame["h3"].map(node_cells.value_counts()).fillna(0).astype(int)
    frame["road_length_m"] = _road_length_per_cell(graph, frame, metric_crs)
    for category in POI_CATEGORIES:
        frame[f"poi_{category}"] = 0
    if len(pois):
        poi_cells = [h3.latlng_to_cell(p.y, p.x, resolution) for p in pois.geometry]
        counts = pd.crosstab(pd.Series(poi_cells, name="h3"), pois["category"].to_numpy())
        for category in counts.columns:
            frame[f"poi_{category}"] = frame["h3"].map(counts[category]).fillna(0).astype(int)

    # Short ids for people: north to south in bands of about one cell, then west to east.
    band = np.floor(-frame["centroid_lat"] / _band_height_deg(resolution)).astype(int)
    order = np.lexsort((frame["centroid_lon"].to_numpy(), band.to_numpy()))
    width = max(2, len(str(len(frame))))
    ids = np.empty(len(frame), dtype=object)
    ids[order] = [f"S{i + 1:0{width}d}" for i in range(len(frame))]
    frame.insert(0, "sector_id", ids)
    frame = frame.set_index("sector_id").sort_index()
    return frame[[c for c in frame.columns if c != "geometry"] + ["geometry"]]


def _road_length_per_cell(
    graph: nx.MultiDiGraph, cells: gpd.GeoDataFrame, metric_crs: str
) -> np.ndarray:
    """Metres of street in each cell, each street counted once whatever its directions."""
    import geopandas as gpd
    import shapely

    seen: set[tuple[int, int, bytes]] = set()
    geoms = []
    for u, v, data in graph.edges(data=True):
        geom = data["geometry"]
        key = (min(u, v), max(u, v), shapely.to_wkb(shapely.normalize(geom)))
        if key in seen:
            continue
        seen.add(key)
        geoms.append(geom)
    streets = gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(metric_crs).values
    hexes = gpd.GeoSeries(cells.geometry.values, crs="EPSG:4326").to_crs(metric_crs).values
    tree = shapely.STRtree(streets)
    cell_idx, street_idx = tree.query(hexes, predicate="intersects")
    pieces = shapely.length(shapely.intersection(hexes[cell_idx], streets[street_idx]))
    return np.round(np.bincount(cell_idx, weights=pieces, minlength=len(cells)), 2)


def _band_height_deg(resolution: int) -> float:
    """About one cell's height in degrees of latitude, to sort cells into rows."""
    import h3

    edge_km = h3.average_hexagon_edge_length(resolution, "km")
    return 1.5 * edge_km / 111.32
