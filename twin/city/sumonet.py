"""The SUMO side of a city: netconvert, reading a net, and a road graph made from a net."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax import SAXParseException

import networkx as nx
import numpy as np

from twin._errors import InputError
from twin._sumo import run_tool

if TYPE_CHECKING:
    import geopandas as gpd

#: netconvert options for an OSM import, after SUMO's "Recommended netconvert options" for
#: OSM: join the clusters of OSM junctions, guess ramps, roundabouts and signals, keep only
#: roads that passenger cars or emergency vehicles may use, and keep OSM ids and names.
#: OSM's ``width`` is the carriageway's: divided by its lanes it gave Jakarta lanes 1.3 m
#: wide, which lock cars in junctions on the sublane model, so lanes keep SUMO's width.
NETCONVERT_OSM_OPTIONS = [
    "--geometry.remove",
    "--ramps.guess",
    "--roundabouts.guess",
    "--junctions.join",
    "--tls.guess-signals",
    "--tls.discard-simple",
    "--tls.join",
    "--tls.default-type",
    "actuated",
    "--keep-edges.by-vclass",
    "passenger,emergency",
    "--output.street-names",
    "--output.original-names",
    "--no-turnarounds.except-deadend",
    "--ignore-widths",
]

#: Vehicle classes whose roads are part of the twin.
VCLASSES = ("passenger", "emergency")


def netconvert_osm(road_file: Path, net_file: Path, *, log: Path, lefthand: bool = False) -> None:
    """Build a SUMO net from an OSM road file with :data:`NETCONVERT_OSM_OPTIONS`, driving
    on the left with ``lefthand``."""
    run_tool(
        "netconvert",
        [
            "--osm-files",
            str(road_file),
            "-o",
            str(net_file),
            *NETCONVERT_OSM_OPTIONS,
            *(["--lefthand", "true"] if lefthand else []),
        ],
        log=log,
        timeout=3600,
    )


def net_is_lefthand(net_file: Path) -> bool:
    """Whether a SUMO net drives on the left (its ``<net lefthand="true">``)."""
    from xml.etree.ElementTree import iterparse

    for _, elem in iterparse(net_file, events=("start",)):
        return elem.tag == "net" and elem.get("lefthand", "false").lower() in ("true", "1")
    return False


def reside_net(net_file: Path, *, lefthand: bool, log: Path) -> None:
    """Rebuild a SUMO net in place to drive on the other side (netconvert mirrors the
    lanes, turns and junction logic; the roads stay where they are)."""
    out = net_file.with_name("resided." + net_file.name)
    run_tool(
        "netconvert",
        ["-s", str(net_file), "--lefthand", "true" if lefthand else "false", "-o", str(out)],
        log=log,
        timeout=3600,
    )
    out.replace(net_file)


@dataclass
class NetGeometry:
    """A SUMO net's projection, to move between lon/lat and the net's x/y metres."""

    proj: str
    offset: tuple[float, float]

    def to_xy(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        from pyproj import Transformer

        t = Transformer.from_crs("EPSG:4326", self.proj, always_xy=True)
        x, y = t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x) + self.offset[0], np.asarray(y) + self.offset[1]

    def to_lonlat(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        from pyproj import Transformer

        t = Transformer.from_crs(self.proj, "EPSG:4326", always_xy=True)
        lon, lat = t.transform(
            np.asarray(x, dtype=float) - self.offset[0], np.asarray(y, dtype=float) - self.offset[1]
        )
        return np.asarray(lon), np.asarray(lat)

    def line_to_xy(self, geoms: Any) -> Any:
        """LineStrings in lon/lat to the net's x/y."""
        import shapely

        return shapely.transform(geoms, lambda c: np.column_stack(self.to_xy(c[:, 0], c[:, 1])))

    def line_to_lonlat(self, geoms: Any) -> Any:
        import shapely

        return shapely.transform(geoms, lambda c: np.column_stack(self.to_lonlat(c[:, 0], c[:, 1])))


def read_net(net_file: Path, *, shown_as: Path | None = None) -> Any:
    """Read a SUMO net with sumolib; a clear :class:`InputError` if it is not one.

    ``shown_as`` is the name the user knows the file by, for messages (the bundle reads a
    copy of the user's net).
    """
    import sumolib

    shown = shown_as or net_file
    try:
        net = sumolib.net.readNet(str(net_file), withInternal=True)
    except SAXParseException as exc:
        raise InputError(
            f"{shown}: not a readable SUMO net (XML error at line {exc.getLineNumber()}: "
            f"{exc.getMessage()})"
        ) from exc
    except Exception as exc:  # sumolib raises IO, key and value errors alike
        reason = str(exc).replace(str(net_file), str(shown))
        raise InputError(f"{shown}: not a readable SUMO net ({reason})") from exc
    if not net.getEdges(withInternal=False):
        raise InputError(f"{shown}: not a SUMO net (it holds no edges)")
    return net


def net_geometry(
    net: Any, net_file: Path, *, origin: tuple[float, float] | None = None
) -> NetGeometry:
    """The projection of a net.

    A net without a geographic reference (``netgenerate``'s grids, spiders and random nets)
    is placed with its centre at ``origin`` (lon, lat), on a transverse Mercator projection
    about that point, so that its x/y metres stay metres; without ``origin`` it is refused.
    """
    loc = getattr(net, "_location", {}) or {}
    proj = loc.get("projParameter", "!")
    if proj and proj != "!":
        off = net.getLocationOffset()
        return NetGeometry(proj=proj, offset=(float(off[0]), float(off[1])))
    if origin is None:
        raise InputError(
            f"{net_file}: the SUMO net has no geographic projection (projParameter is '!'), "
            "so it cannot be placed on the map; give the place of its centre with "
            "--origin LON,LAT"
        )
    lon, lat = origin
    if not (-180 <= lon <= 180 and -80 <= lat <= 84):
        raise InputError(f"--origin {lon},{lat}: not a longitude, latitude on the map")
    x0, y0, x1, y1 = net.getBoundary()
    return NetGeometry(
        proj=f"+proj=tmerc +lat_0={lat} +lon_0={lon} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 "
        "+units=m +no_defs",
        offset=((x0 + x1) / 2, (y0 + y1) / 2),
    )


def net_edges_frame(net: Any) -> gpd.GeoDataFrame:
    """The net's edges that passenger cars or emergency vehicles may use.

    Junction-internal edges (ids starting with ``:``) are included when the net was read
    with them, flagged by ``internal``; their geometry is their shape through the junction.

    Columns: ``from_junction``, ``to_junction``, ``name``, ``type``, ``lanes``,
    ``speed_mps``, ``length_m``, ``orig_ids`` (a set of OSM way ids), ``internal`` and
    ``geometry`` (a road edge's raw shape in net x/y, from junction centre to junction
    centre). Indexed by edge id.
    """
    import geopandas as gpd
    from shapely.geometry import LineString

    rows = []
    for edge in net.getEdges(withInternal=True):
        function = edge.getFunction()
        if function not in ("", "internal") or not any(edge.allows(c) for c in VCLASSES):
            continue
        orig: set[int] = set()
        for lane in edge.getLanes():
            for token in (lane.getParam("origId") or "").split():
                if token.lstrip("-").isdigit():
                    orig.add(abs(int(token)))
        shape = edge.getShape() if function else edge.getRawShape()
        if len(shape) < 2:
            continue
        rows.append(
            {
                "id": edge.getID(),
                "from_junction": edge.getFromNode().getID(),
                "to_junction": edge.getToNode().getID(),
                "name": edge.getName() or "",
                "type": edge.getType() or "",
                "lanes": edge.getLaneNumber(),
                "speed_mps": edge.getSpeed(),
                "length_m": edge.getLength(),
                "orig_ids": orig,
                "internal": function == "internal",
                "geometry": LineString([p[:2] for p in shape]),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry").set_index("id").sort_index()


def graph_from_net(sumo_edges: gpd.GeoDataFrame, geo: NetGeometry) -> nx.MultiDiGraph:
    """An osmnx-style road graph whose edges are the net's edges, one for one.

    Nodes are the net's junctions, numbered 0.. in the order of their ids, with the SUMO
    id kept in ``sumo_junction``. Edge ``key`` separates parallel edges.
    """
    sumo_edges = sumo_edges[~sumo_edges["internal"].to_numpy(dtype=bool)]
    junction_xy: dict[str, tuple[float, float]] = {}
    for row in sumo_edges.itertuples():
        coords = row.geometry.coords
        junction_xy.setdefault(row.from_junction, coords[0][:2])
        junction_xy.setdefault(row.to_junction, coords[-1][:2])
    ids = sorted(junction_xy)
    number = {jid: i for i, jid in enumerate(ids)}
    xy = np.array([junction_xy[j] for j in ids])
    lon, lat = geo.to_lonlat(xy[:, 0], xy[:, 1])
    graph = nx.MultiDiGraph(crs="epsg:4326")
    for i, jid in enumerate(ids):
        graph.add_node(
            i, x=float(lon[i]), y=float(lat[i]), street_count=0, highway=None, sumo_junction=jid
        )
    lonlat_geoms = geo.line_to_lonlat(sumo_edges.geometry.values)
    pairs = set(zip(sumo_edges.from_junction, sumo_edges.to_junction, strict=True))
    for row, geom in zip(sumo_edges.itertuples(), lonlat_geoms, strict=True):
        u, v = number[row.from_junction], number[row.to_junction]
        hw = row.type.split(".", 1)[1] if row.type.startswith("highway.") else (row.type or "road")
        speed_kph = float(row.speed_mps) * 3.6
        graph.add_edge(
            u,
            v,
            osmid=sorted(row.orig_ids),
            highway=hw,
            name=row.name,
            lanes=int(row.lanes),
            oneway=(row.to_junction, row.from_junction) not in pairs,
            maxspeed=None,
            length=float(row.length_m),
            speed_kph=speed_kph,
            travel_time=float(row.length_m) / (speed_kph / 3.6) if speed_kph > 0 else float("inf"),
            geometry=geom,
            sumo_edge=row.Index,
        )
    undirected = nx.Graph(graph)
    for n in graph.nodes:
        graph.nodes[n]["street_count"] = undirected.degree(n)
    return graph
