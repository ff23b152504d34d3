"""The drivable road graph: built with osmnx, stored as two Parquet tables.

The graph is an osmnx ``MultiDiGraph`` in EPSG:4326 (``x`` = longitude, ``y`` = latitude).
Every edge carries the same attributes, with units in their names as osmnx does:

========== ==========================================================
osmid      list of the OSM way ids the edge was simplified from
highway    OSM highway type (the most important one on a merged edge)
name       street name, or ``""``
lanes      lanes in the edge's direction (OSM, else the SUMO net, else 1)
oneway     whether the OSM way is one-way
length     metres
speed_kph  free-flow speed: OSM ``maxspeed``, else the mean of the same
           highway type in this city, else :data:`URBAN_SPEEDS_KPH`
travel_time seconds at ``speed_kph``
geometry   shapely LineString in lon/lat
========== ==========================================================

GraphML reloads slowly and loses types; the bundle stores the nodes and edges as Parquet
(geometry as WKB), which reloads in a few milliseconds (``make bench`` measures it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: Planning defaults (km/h) for urban roads whose OSM type has no ``maxspeed`` anywhere in
#: the city. Types not listed fall back to :data:`FALLBACK_SPEED_KPH`.
URBAN_SPEEDS_KPH = {
    "motorway": 80.0,
    "motorway_link": 50.0,
    "trunk": 60.0,
    "trunk_link": 40.0,
    "primary": 50.0,
    "primary_link": 35.0,
    "secondary": 40.0,
    "secondary_link": 30.0,
    "tertiary": 35.0,
    "tertiary_link": 30.0,
    "unclassified": 30.0,
    "residential": 25.0,
    "living_street": 10.0,
    "busway": 40.0,
    "road": 30.0,
}
FALLBACK_SPEED_KPH = 30.0

#: Highway types from most to least important, to name the type of a merged edge.
HIGHWAY_RANK = list(URBAN_SPEEDS_KPH)

NODE_SCHEMA = pa.schema(
    [
        ("osmid", pa.int64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("street_count", pa.int32()),
        ("highway", pa.string()),
        ("sumo_junction", pa.string()),
    ]
)
EDGE_SCHEMA = pa.schema(
    [
        ("u", pa.int64()),
        ("v", pa.int64()),
        ("key", pa.int32()),
        ("osmid", pa.list_(pa.int64())),
        ("highway", pa.string()),
        ("name", pa.string()),
        ("lanes", pa.int32()),
        ("oneway", pa.bool_()),
        ("maxspeed", pa.string()),
        ("length", pa.float64()),
        ("speed_kph", pa.float64()),
        ("travel_time", pa.float64()),
        ("geometry", pa.binary()),
    ]
)
EDGE_ATTRS = [f.name for f in EDGE_SCHEMA][3:]
NODE_ATTRS = [f.name for f in NODE_SCHEMA][1:]


def graph_from_road_file(path: Path) -> nx.MultiDiGraph:
    """The simplified drivable graph of a road file written by :mod:`twin.city.osm`.

    Every fragment is kept (``retain_all``): an extract clips roads at its border, and the
    routing engine reports unreachable places rather than hiding them.
    """
    import warnings

    import osmnx as ox

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        graph = ox.graph_from_xml(path, simplify=True, retain_all=True)
    return normalise_graph(graph)


def normalise_graph(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Give every edge the attributes listed in the module docstring, in their types."""
    import osmnx as ox
    from shapely.geometry import LineString

    for u, v, data in graph.edges(data=True):
        data["osmid"] = sorted({int(x) for x in _as_list(data.get("osmid"))})
        data["highway"] = _main_highway(_as_list(data.get("highway")))
        names = sorted({str(x) for x in _as_list(data.get("name")) if x})
        data["name"] = "; ".join(names)
        data["lanes"] = _lanes(data.get("lanes"))
        data["oneway"] = bool(data.get("oneway", False))
        maxspeed = [str(x) for x in _as_list(data.get("maxspeed")) if x]
        data["maxspeed"] = ";".join(dict.fromkeys(maxspeed)) or None
        if "geometry" not in data:
            a, b = graph.nodes[u], graph.nodes[v]
            data["geometry"] = LineString([(a["x"], a["y"]), (b["x"], b["y"])])
    known = {d["highway"] for *_, d in graph.edges(data=True) if d["maxspeed"]}
    defaults = {
        hw: URBAN_SPEEDS_KPH.get(hw, FALLBACK_SPEED_KPH)
        for hw in {d["highway"] for *_, d in graph.edges(data=True)} - known
    }
    graph = ox.add_edge_speeds(graph, hwy_speeds=defaults, fallback=FALLBACK_SPEED_KPH)
    graph = ox.add_edge_travel_times(graph)
    for _, _, data in graph.edges(data=True):
        for extra in set(data) - set(EDGE_ATTRS):
            del data[extra]
    streets = ox.stats.count_streets_per_node(graph)
    for node, data in graph.nodes(data=True):
        data["highway"] = data.get("highway") if isinstance(data.get("highway"), str) else None
        data["street_count"] = int(streets.get(node, 0))
        data.setdefault("sumo_junction", None)
        for extra in set(data) - set(NODE_ATTRS):
            del data[extra]
    return graph


def save_graph(graph: nx.MultiDiGraph, folder: Path) -> None:
    """Write ``nodes.parquet`` and ``edges.parquet`` into ``folder``."""
    import shapely

    folder.mkdir(parents=True, exist_ok=True)
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[0])
    node_table = pa.table(
        {
            "osmid": [n for n, _ in nodes],
            **{a: [d[a] for _, d in nodes] for a in NODE_ATTRS},
        },
        schema=NODE_SCHEMA,
    )
    edges = sorted(graph.edges(keys=True, data=True), key=lambda item: item[:3])
    columns: dict[str, Any] = {
        "u": [e[0] for e in edges],
        "v": [e[1] for e in edges],
        "key": [e[2] for e in edges],
    }
    for attr in EDGE_ATTRS:
        values = [e[3][attr] for e in edges]
        if attr == "geometry":
            values = list(shapely.to_wkb(np.array(values, dtype=object)))
        columns[attr] = values
    pq.write_table(node_table, folder / "nodes.parquet", compression="zstd")
    pq.write_table(
        pa.table(columns, schema=EDGE_SCHEMA), folder / "edges.parquet", compression="zstd"
    )


def load_graph(folder: Path, *, crs: str = "epsg:4326", name: str = "") -> nx.MultiDiGraph:
    """Read a graph written by :func:`save_graph`."""
    import shapely

    nodes = pq.read_table(folder / "nodes.parquet").to_pydict()
    edges = pq.read_table(folder / "edges.parquet").to_pydict()
    edges["geometry"] = shapely.from_wkb(edges["geometry"]).tolist()
    graph = nx.MultiDiGraph(crs=crs, name=name)
    node_ids = nodes.pop("osmid")
    graph.add_nodes_from(
        (nid, dict(zip(NODE_ATTRS, vals, strict=True)))
        for nid, *vals in zip(node_ids, *(nodes[a] for a in NODE_ATTRS), strict=True)
    )
    graph.add_edges_from(
        (u, v, k, dict(zip(EDGE_ATTRS, vals, strict=True)))
        for u, v, k, *vals in zip(
            edges["u"], edges["v"], edges["key"], *(edges[a] for a in EDGE_ATTRS), strict=True
        )
    )
    return graph


def edges_frame(graph: nx.MultiDiGraph) -> pd.DataFrame:
    """The edges as a DataFrame indexed by ``(u, v, key)``, sorted."""
    rows = sorted(graph.edges(keys=True, data=True), key=lambda item: item[:3])
    frame = pd.DataFrame([d for *_, d in rows], columns=EDGE_ATTRS)
    frame.index = pd.MultiIndex.from_tuples([r[:3] for r in rows], names=["u", "v", "key"])
    return frame


def graphs_equal(a: nx.MultiDiGraph, b: nx.MultiDiGraph) -> bool:
    """Whether two road graphs have the same nodes, edges and attribute values."""
    if dict(a.nodes(data=True)) != dict(b.nodes(data=True)):
        return False
    ea = {k[:3]: k[3] for k in a.edges(keys=True, data=True)}
    eb = {k[:3]: k[3] for k in b.edges(keys=True, data=True)}
    if ea.keys() != eb.keys():
        return False
    for key, da in ea.items():
        db = eb[key]
        for attr in EDGE_ATTRS:
            x, y = da[attr], db[attr]
            if attr == "geometry":
                if not x.equals_exact(y, 1e-12):
                    return False
            elif isinstance(x, float) and isinstance(y, float):
                if not (x == y or (math.isnan(x) and math.isnan(y))):
                    return False
            elif x != y:
                return False
    return True


def _as_list(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value) if isinstance(value, list) else [value]


def _main_highway(values: list[Any]) -> str:
    names = [str(v) for v in values] or ["road"]
    return min(names, key=lambda h: (HIGHWAY_RANK.index(h) if h in HIGHWAY_RANK else 99, h))


def _lanes(value: Any) -> int:
    """Lanes from an OSM ``lanes`` value ("2", "2;3", ["2", "3"]); 0 when unknown."""
    best = 0
    for item in _as_list(value):
        for part in str(item).replace(",", ";").split(";"):
            try:
                best = max(best, int(float(part)))
            except ValueError:
                continue
    return best
