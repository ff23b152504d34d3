"""Scenario places on a city: lat/lon, OSM way, POI name or sector, snapped to SUMO edges.

:func:`resolve_events` turns a scenario's road events into :class:`ResolvedEvent` objects
that name SUMO edges and times in seconds. Every problem is collected before one
:class:`~twin.scenario.ScenarioError` lists them all, each with its field path::

    events[2].at: point (60.10000, 24.90000) is 3.4 km outside the city
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twin._geo import haversine_m
from twin.scenario import Area, Place, Scenario, ScenarioError

if TYPE_CHECKING:
    import geopandas as gpd

    from twin.city.bundle import City

#: A point farther than this from every road is refused.
MAX_SNAP_M = 250.0
#: Demonstration traffic heads to roads within this distance outside the closed area.
APPROACH_M = 400.0


@dataclass
class ResolvedEvent:
    """A road event in the net's terms."""

    id: str
    type: str
    begin_s: float
    end_s: float
    edges: list[str]
    lanes: int = 0  # lanes closed per edge from the kerb; 0 means every lane
    emergency_access: bool = True
    extra_veh_per_hour: int = 0
    approach_edges: list[str] = field(default_factory=list)
    gains: str = ""  # a contraflow: the edge that gains the lanes ``edges`` give up
    gains_lanes: int = 0  # ... and its lanes with them


class CityNet:
    """The SUMO road edges of a city in a metric frame, for snapping and area queries."""

    def __init__(self, city: City) -> None:
        from twin.city.sumonet import NetGeometry, net_edges_frame, read_net

        self.city = city
        net = read_net(city.net_path)
        self.geo = NetGeometry(
            proj=city.manifest.crs["net"], offset=tuple(city.manifest.crs["net_offset"])
        )
        frame = net_edges_frame(net)
        self.edges: gpd.GeoDataFrame = frame[~frame["internal"].to_numpy(dtype=bool)]

    @cached_property
    def _tree(self) -> Any:
        import shapely

        return shapely.STRtree(self.edges.geometry.values)

    @cached_property
    def midpoints(self) -> Any:
        import shapely

        return shapely.line_interpolate_point(self.edges.geometry.values, 0.5, normalized=True)

    @cached_property
    def extent(self) -> Any:
        import shapely

        return shapely.box(*shapely.total_bounds(self.edges.geometry.values))

    @cached_property
    def sector_of_edge(self) -> dict[str, str]:
        """Each edge's sector: the one holding its midpoint (else the nearest)."""
        import shapely

        lon, lat = self.geo.to_lonlat(shapely.get_x(self.midpoints), shapely.get_y(self.midpoints))
        pts = shapely.points(lon, lat)
        sectors = self.city.sectors
        tree = shapely.STRtree(sectors.geometry.values)
        idx = tree.query_nearest(pts, all_matches=False)[1]
        return dict(zip(self.edges.index, sectors.index.to_numpy()[idx], strict=True))

    def xy(self, lat: float, lon: float) -> Any:
        import shapely

        x, y = self.geo.to_xy([lon], [lat])
        return shapely.Point(float(x[0]), float(y[0]))

    def nearest_edge(self, point: Any) -> tuple[str, float]:
        """The nearest road edge that passenger cars may use, and its distance in metres."""
        (_, hit), dist = self._tree.query_nearest([point], return_distance=True, all_matches=False)
        return str(self.edges.index[hit[0]]), float(dist[0])

    def edges_in(self, shape: Any) -> list[str]:
        """Edges whose midpoint lies inside ``shape`` (metric)."""
        import shapely

        inside = shapely.contains(shape, self.midpoints)
        return sorted(self.edges.index[inside])

    def edges_near(self, shape: Any, distance: float, exclude: set[str]) -> list[str]:
        import shapely

        near = shapely.dwithin(shape, self.midpoints, distance)
        return sorted(e for e in self.edges.index[near] if e not in exclude)


def resolve_events(
    scenario: Scenario, city: City, *, source: str = "scenario", net: CityNet | None = None
) -> list[ResolvedEvent]:
    """The scenario's road events on this city's net, or a ScenarioError listing every problem.

    ``net`` is the city's :class:`CityNet` if the caller has already read it."""
    net = net or CityNet(city)
    problems: list[tuple[str, str]] = []
    resolved: list[ResolvedEvent] = []
    for i, (event, event_id) in enumerate(zip(scenario.events, scenario.event_ids(), strict=True)):
        path = f"events[{i}]"
        begin = scenario.event_begin(event)
        end = min(begin + event.duration, scenario.duration)
        out = ResolvedEvent(event_id, event.type, begin, end, [])
        if event.type == "accident":
            edge = _place_edge(net, event.at, f"{path}.at", problems)
            if edge is not None:
                out.edges = [edge]
                lanes = int(net.edges.loc[edge, "lanes"])
                out.lanes = 0 if event.lanes >= lanes else event.lanes
        elif event.type == "contraflow":
            _contraflow(net, event, out, f"{path}", problems)
        elif event.type == "closure" and event.roads is not None:
            edges: set[str] = set()
            for j, place in enumerate(event.roads):
                edges |= set(_place_edges(net, place, f"{path}.roads[{j}]", problems))
            out.edges = sorted(edges)
            out.emergency_access = event.emergency_access
        else:
            shape = _area_shape(net, city, event.area, f"{path}.area", problems)
            if shape is not None:
                out.edges = net.edges_in(shape)
                if not out.edges:
                    problems.append((f"{path}.area", "holds no road of the city"))
                if event.type == "demonstration":
                    out.extra_veh_per_hour = event.extra_veh_per_hour
                    out.approach_edges = net.edges_near(shape, APPROACH_M, set(out.edges))
            out.emergency_access = event.emergency_access
        resolved.append(out)
    if problems:
        raise ScenarioError(source, problems)
    return resolved


def edges_of(net: CityNet, where: Place | Area | list[Place], path: str) -> list[str]:
    """The SUMO edges that a place (its road), roads, or an area (every road in it) cover,
    for an order or an inject given while the twin runs; a ScenarioError names a problem
    at ``path``."""
    problems: list[tuple[str, str]] = []
    if isinstance(where, Area):
        shape = _area_shape(net, net.city, where, path, problems)
        edges = net.edges_in(shape) if shape is not None else []
        if shape is not None and not edges:
            problems.append((path, "holds no road of the city"))
    else:
        places = where if isinstance(where, list) else [where]
        edges = sorted({e for p in places for e in _place_edges(net, p, path, problems)})
    if problems:
        raise ScenarioError(path, problems)
    return edges


def point_of(net: CityNet, place: Place, path: str) -> tuple[float, float]:
    """The junction (lat, lon) a place's road leads to: where an incident given while the
    twin runs happens; a ScenarioError names a problem at ``path``."""
    problems: list[tuple[str, str]] = []
    edge = _place_edge(net, place, path, problems)
    node = _edge_node(net.city, edge, path, problems) if edge is not None else None
    if problems or node is None:
        raise ScenarioError(path, problems)
    data = net.city.graph.nodes[node]
    return float(data["y"]), float(data["x"])


def _contraflow(
    net: CityNet, event: Any, out: ResolvedEvent, path: str, problems: list[tuple[str, str]]
) -> None:
    """The edge that gains lanes (the road's direction toward ``event.toward``) and the
    opposite edge that gives them up, leftmost lanes first."""
    edge = _place_edge(net, event.road, f"{path}.road", problems)
    if edge is None:
        return
    edges = net.edges[~net.edges["internal"]]
    row = edges.loc[edge]

    def opposite_of(e: str) -> str | None:
        r = edges.loc[e]
        back = edges[
            (edges["from_junction"] == r["to_junction"])
            & (edges["to_junction"] == r["from_junction"])
        ]
        return str(back.index[0]) if len(back) else None

    other = opposite_of(edge)
    if other is None:
        problems.append(
            (
                f"{path}.road",
                f"{event.road.describe()} is a one-way road ({row['name'] or edge}): a contraflow "
                "needs traffic the other way to take lanes from",
            )
        )
        return
    if event.toward is not None:  # the direction whose far end is nearer the point
        point = net.xy(event.toward.lat, event.toward.lon)

        def far_end(e: str) -> float:
            from shapely.geometry import Point

            line = edges.loc[e, "geometry"]
            return float(Point(line.coords[-1]).distance(point))

        if far_end(other) < far_end(edge):
            edge, other = other, edge
    give = int(edges.loc[other, "lanes"])
    if event.lanes >= give:
        problems.append(
            (
                f"{path}.lanes",
                f"the opposite direction ({other}) has {give} lane{'s' if give > 1 else ''}: "
                "a contraflow must leave it at least one",
            )
        )
        return
    out.edges = [other]
    out.lanes = event.lanes
    out.gains = edge
    out.gains_lanes = int(edges.loc[edge, "lanes"])
    out.emergency_access = False  # the lanes given up carry the other direction


def _place_edge(
    net: CityNet, place: Place, path: str, problems: list[tuple[str, str]]
) -> str | None:
    edges = _place_edges(net, place, path, problems, single=True)
    return edges[0] if edges else None


def _place_edges(
    net: CityNet, place: Place, path: str, problems: list[tuple[str, str]], *, single: bool = False
) -> list[str]:
    city = net.city
    if place.lat is not None:
        point = net.xy(place.lat, place.lon)
        edge, dist = net.nearest_edge(point)
        if not net.extent.buffer(MAX_SNAP_M).contains(point):
            problems.append(
                (
                    path,
                    f"{place.describe()} is {net.extent.distance(point) / 1000:.1f} km outside the city",
                )
            )
            return []
        if dist > MAX_SNAP_M:
            problems.append((path, f"{place.describe()} is {dist:.0f} m from the nearest road"))
            return []
        return [edge]
    if place.edge is not None:
        if place.edge not in net.edges.index:
            problems.append((path, f"{place.describe()} is not a road edge of the city's net"))
            return []
        return [place.edge]
    if place.osm_way is not None:
        hits = sorted(e for e, ids in net.edges["orig_ids"].items() if place.osm_way in ids)
        if not hits:
            problems.append((path, f"{place.describe()} is not a road of the city's net"))
            return []
        return hits[:1] if single else hits
    if place.poi is not None:
        pois = city.pois[city.pois["name"] == place.poi]
        if pois.empty:
            names = sorted(n for n in city.pois["name"] if n)[:8]
            problems.append(
                (path, f"no POI named {place.poi!r} (some names: {', '.join(names) or 'none'})")
            )
            return []
        return [str(pois.iloc[0]["sumo_edge"])]
    if place.sector is not None:
        if place.sector not in city.sectors.index:
            problems.append((path, f"no sector {place.sector!r} ({_sector_range(city)})"))
            return []
        row = city.sectors.loc[place.sector]
        edge, _ = net.nearest_edge(net.xy(row["centroid_lat"], row["centroid_lon"]))
        return [edge]
    return []


def _area_shape(
    net: CityNet, city: City, area: Area, path: str, problems: list[tuple[str, str]]
) -> Any:
    import shapely

    if area.sectors is not None:
        unknown = [s for s in area.sectors if s not in city.sectors.index]
        if unknown:
            problems.append(
                (
                    f"{path}.sectors",
                    f"no sector {', '.join(map(repr, unknown))} ({_sector_range(city)})",
                )
            )
            return None
        polys = city.sectors.loc[area.sectors].geometry.values
        return net.geo.line_to_xy(shapely.union_all(polys))
    if area.center is not None:
        center = net.xy(area.center.lat, area.center.lon)
        if not net.extent.buffer(float(area.radius_m)).intersects(
            center.buffer(float(area.radius_m))
        ):
            problems.append(
                (
                    f"{path}.center",
                    f"point ({area.center.lat:.5f}, {area.center.lon:.5f}) is "
                    f"{net.extent.distance(center) / 1000:.1f} km outside the city",
                )
            )
            return None
        return center.buffer(float(area.radius_m))
    assert area.polygon is not None
    x, y = net.geo.to_xy([p.lon for p in area.polygon], [p.lat for p in area.polygon])
    poly = shapely.Polygon(np.column_stack([x, y]))
    if not poly.is_valid:
        problems.append(
            (f"{path}.polygon", "the corners do not make a simple polygon (edges cross)")
        )
        return None
    return poly


def _sector_range(city: City) -> str:
    ids = list(city.sectors.index)
    return f"the city has {ids[0]} to {ids[-1]}" if ids else "the city has no sectors"


# -- emergency response ---------------------------------------------------------------------


@dataclass
class ResolvedUnit:
    id: str
    type: str
    base: int  # road-graph node
    base_name: str
    shift: tuple[float, float] | None  # local seconds after midnight: on duty from, to


@dataclass
class ResolvedIncident:
    """A scripted incident, or an accident among the road events, on the road graph."""

    id: str
    type: str
    node: int
    begin_s: float
    priority: int | None
    extra_calls: int | None
    origin: str  # "scripted" or "road_event"


@dataclass
class ResolvedResponse:
    """The scenario's response section in the city's terms (graph nodes, seconds)."""

    units: list[ResolvedUnit]
    incidents: list[ResolvedIncident]
    hospitals: list[int]
    said: list[str]  # where bases and hospitals came from, for people


def resolve_response(
    scenario: Scenario,
    city: City,
    *,
    source: str = "scenario",
    net: CityNet | None = None,
    events: list[ResolvedEvent] | None = None,
    folder: Path | None = None,
) -> ResolvedResponse | None:
    """Unit bases, scripted incidents, hospitals and beats on this city, or a ScenarioError
    listing every problem. ``events`` are the resolved road events (their accidents become
    incidents); ``folder`` is the scenario file's own, where its relative paths lead."""
    from twin.city.facilities import MAX_SNAP_M as FACILITY_SNAP_M
    from twin.city.facilities import load_facilities

    response = scenario.response
    if response is None:
        return None
    net = net or CityNet(city)
    problems: list[tuple[str, str]] = []
    said: list[str] = []

    joined = _largest_joined_part(city)

    def facility_nodes(kind: str, path: str) -> list[tuple[str, int]]:
        try:
            found, where = load_facilities(city, kind, folder=folder)
        except Exception as exc:  # InputError: no such facility, or a bad file
            problems.append((path, str(exc)))
            return []
        said.append(where)
        out = []
        for f in sorted(found, key=lambda f: f.name):
            node, dist = _snap_joined(city, joined, f.lat, f.lon)
            if dist > FACILITY_SNAP_M:
                problems.append(
                    (path, f"{f.name} is {dist:.0f} m from the nearest road of {city.name}")
                )
            out.append((f.name, node))
        return out

    def place_node(place: Place, path: str) -> int | None:
        edge = _place_edge(net, place, path, problems)
        return None if edge is None else _edge_node(city, edge, path, problems)

    units: list[ResolvedUnit] = []
    for i, group in enumerate(response.units):
        path = f"response.units[{i}].base"
        if isinstance(group.base, Place):
            node = place_node(group.base, path)
            bases = [] if node is None else [(group.base.describe(), node)]
        else:
            bases = facility_nodes(group.base, path)
        shift = None
        if group.shift:
            begin, end = (_clock_s(x) for x in group.shift.split("-"))
            shift = (begin, end)
            if begin == end:
                problems.append((f"response.units[{i}].shift", f"{group.shift!r} lasts no time"))
        for k in range(group.count if bases else 0):
            name, node = bases[k % len(bases)]
            units.append(ResolvedUnit(f"{group.name}-{k + 1}", group.type, node, name, shift))
    hospitals = (
        [n for _, n in facility_nodes(response.dispatch.hospitals, "response.dispatch.hospitals")]
        if any(u.type == "ambulance" for u in response.units)
        else []
    )
    sectors = set(city.sectors.index)
    for sector in response.dispatch.beats:
        if sector not in sectors:
            problems.append(
                (
                    f"response.dispatch.beats.{sector}",
                    f"no sector {sector!r} ({_sector_range(city)})",
                )
            )
    for sector in response.incidents.sector_weights:
        if sector not in sectors:
            problems.append(
                (
                    f"response.incidents.sector_weights.{sector}",
                    f"no sector {sector!r} ({_sector_range(city)})",
                )
            )
    incidents: list[ResolvedIncident] = []
    for i, inc in enumerate(response.incidents.scripted):
        node = place_node(inc.at, f"response.incidents.scripted[{i}].at")
        if node is not None:
            incidents.append(
                ResolvedIncident(
                    inc.id or f"{inc.type}-{i + 1}",
                    inc.type,
                    node,
                    scenario.event_begin(inc),
                    inc.priority,
                    inc.extra_calls,
                    "scripted",
                )
            )
    if response.incidents.from_road_events:
        for event in events or []:
            if event.type == "accident" and event.edges:
                node = _edge_node(city, event.edges[0], f"events: {event.id}", problems)
                if node is not None:
                    incidents.append(
                        ResolvedIncident(
                            event.id,
                            "traffic_accident",
                            node,
                            event.begin_s,
                            None,
                            None,
                            "road_event",
                        )
                    )
    if problems:
        raise ScenarioError(source, problems)
    incidents.sort(key=lambda x: (x.begin_s, x.id))
    return ResolvedResponse(units, incidents, hospitals, said)


def _largest_joined_part(city: City) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The junctions of the road graph's largest strongly connected part (every one can
    reach every other): ids, latitudes, longitudes."""
    import networkx as nx

    g = city.graph
    part = sorted(max(nx.strongly_connected_components(g), key=len))
    return (
        np.array(part, dtype=np.int64),
        np.array([g.nodes[n]["y"] for n in part]),
        np.array([g.nodes[n]["x"] for n in part]),
    )


def _snap_joined(city: City, joined: Any, lat: float, lon: float) -> tuple[int, float]:
    """The nearest junction from which a unit can reach the whole city and come back, and
    how far it is (metres): a base snapped to a one-way stub would be stranded."""
    ids, lats, lons = joined
    dist = haversine_m(lat, lon, lats, lons)
    i = int(np.argmin(dist))
    return int(ids[i]), float(dist[i])


def _edge_node(city: City, edge: str, path: str, problems: list[tuple[str, str]]) -> int | None:
    """The graph node a SUMO edge leads to."""
    graph_edges = city.graph_edges_of(edge)
    if not graph_edges:
        problems.append((path, f"road {edge!r} is not on the city's road graph"))
        return None
    return int(graph_edges[-1][1])


def _clock_s(value: str) -> float:
    h, m = (int(x) for x in value.strip().split(":"))
    return float((h % 24) * 3600 + m * 60)
