"""Points of interest snapped to the road graph and to the SUMO net."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd

    from twin.city.osm import Poi
    from twin.city.sumonet import NetGeometry

POI_COLUMNS = [
    "category",
    "name",
    "tags",
    "node",
    "node_distance_m",
    "sumo_edge",
    "sumo_pos_m",
    "sumo_distance_m",
]


def snap_pois(
    pois: list[Poi],
    graph: nx.MultiDiGraph,
    sumo_edges: gpd.GeoDataFrame,
    geo: NetGeometry,
) -> gpd.GeoDataFrame:
    """POIs as a GeoDataFrame indexed by OSM id, each snapped to the road network.

    ``node`` is the nearest graph node in the largest strongly connected part of the graph,
    so that a unit based at a POI can reach the rest of the city and come back.
    ``sumo_edge`` is the nearest SUMO road edge, and ``sumo_pos_m`` the position along it
    that is closest to the POI, where a vehicle can stop or be inserted.
    """
    import geopandas as gpd
    import shapely

    lon = np.array([p.lon for p in pois], dtype=float)
    lat = np.array([p.lat for p in pois], dtype=float)
    frame = gpd.GeoDataFrame(
        {
            "category": [p.category for p in pois],
            "name": [p.name for p in pois],
            "tags": [p.tags for p in pois],
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
        index=pd.Index([p.osm_id for p in pois], name="osm_id", dtype=object),
    )
    if not len(pois):
        for col in POI_COLUMNS[3:]:
            frame[col] = []
        return frame[[*POI_COLUMNS, "geometry"]]
    px, py = geo.to_xy(lon, lat)
    points = shapely.points(px, py)

    main = max(nx.strongly_connected_components(graph), key=len)
    nodes = sorted(main)
    nx_, ny_ = geo.to_xy([graph.nodes[n]["x"] for n in nodes], [graph.nodes[n]["y"] for n in nodes])
    node_tree = shapely.STRtree(shapely.points(nx_, ny_))
    (_, hit), dist = node_tree.query_nearest(points, return_distance=True, all_matches=False)
    frame["node"] = np.asarray(nodes, dtype=np.int64)[hit]
    frame["node_distance_m"] = np.round(dist, 2)

    roads = sumo_edges[~sumo_edges["internal"].to_numpy(dtype=bool)]
    edge_tree = shapely.STRtree(roads.geometry.values)
    (_, ehit), edist = edge_tree.query_nearest(points, return_distance=True, all_matches=False)
    frame["sumo_edge"] = roads.index.to_numpy()[ehit]
    shapes = roads.geometry.values[ehit]
    along = shapely.line_locate_point(shapes, points)
    # The raw shape runs from junction centre to junction centre; scale to the edge's length.
    scale = roads["length_m"].to_numpy()[ehit] / np.maximum(shapely.length(shapes), 1e-9)
    frame["sumo_pos_m"] = np.round(along * scale, 2)
    frame["sumo_distance_m"] = np.round(edist, 2)
    return frame[[*POI_COLUMNS, "geometry"]]


#: A building farther than this from every road of the net is outside the city the net
#: covers (the extract's buildings reach past its roads), and is left out.
BUILDING_SNAP_M = 200.0
ACTIVITY_COLUMNS = ["sumo_edge", "buildings", "floor_m2"]


def snap_buildings(
    buildings: list[tuple[float, float, float]],
    sumo_edges: gpd.GeoDataFrame,
    geo: NetGeometry,
) -> pd.DataFrame:
    """The mapped buildings' floor area by SUMO road edge: each building goes to the road
    nearest its centre (within :data:`BUILDING_SNAP_M`), as its trips would. One row per
    road with buildings, sorted by edge: ``sumo_edge``, ``buildings`` (how many),
    ``floor_m2`` (their floor area). The gravity model of demand reads it as activity."""
    import shapely

    if not buildings:
        return pd.DataFrame({"sumo_edge": pd.Series(dtype=object), "buildings": [], "floor_m2": []})
    arr = np.asarray(buildings, dtype=float)
    px, py = geo.to_xy(arr[:, 0], arr[:, 1])
    roads = sumo_edges[~sumo_edges["internal"].to_numpy(dtype=bool)]
    tree = shapely.STRtree(roads.geometry.values)
    (_, hit), dist = tree.query_nearest(
        shapely.points(px, py), return_distance=True, all_matches=False
    )
    near = dist <= BUILDING_SNAP_M
    frame = pd.DataFrame({"sumo_edge": roads.index.to_numpy()[hit[near]], "floor_m2": arr[near, 2]})
    out = (
        frame.groupby("sumo_edge", sort=True)["floor_m2"]
        .agg(buildings="size", floor_m2="sum")
        .reset_index()
    )
    out["buildings"] = out["buildings"].astype(np.int64)
    out["floor_m2"] = out["floor_m2"].round(1)
    return out[ACTIVITY_COLUMNS]
