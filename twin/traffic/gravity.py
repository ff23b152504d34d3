"""Demand made from the city itself: trips produced and attracted where the city's activity
is, at the lengths people drive, with through traffic on the roads that enter the extract.

Uniform random trips (``randomTrips.py``) start and end anywhere, as often on a lane behind
a school as on a main road, and cross the whole extract as often as they go round the
corner; at rush-hour flows they jam small nets by construction. This generator is a gravity
model, as transport planners use:

- **Where trips start and end.** Each road carries an activity weight: its length times its
  lanes (the street's frontage), plus the points of interest the bundle snapped to it
  (markets, schools, transport hubs, offices, hospitals, places of worship), each worth as
  many metres of street as :data:`POI_WEIGHT` says, plus the floor area of the mapped
  buildings nearest it (the bundle's ``activity``), :data:`FLOOR_WEIGHT` metres of street
  per square metre: where people live and work, trips begin and end.
- **How far they go.** The city is cut into square zones (about 40 across); a trip from zone
  *i* goes to zone *j* with a probability proportional to *j*'s activity times
  ``exp(-d / trip_length_m)`` (``d`` the straight-line distance between the zones' centres),
  never shorter than ``min_trip_m``. Within a zone, a road is drawn by its weight.
- **Through traffic.** A share of trip ends (``through_share``) falls on the roads where
  the extract is cut: the fringe, drawn by capacity (lanes times speed), as the rest of the
  city sends and receives traffic there.
- **Routes.** Trips start and end only in the largest part of the net where the vehicle
  class can get from every road to every other, so ``duarouter`` finds a route for each.

Everything is drawn from one ``numpy`` generator seeded by the demand piece, so the same
scenario gives the same trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from twin._sumo import run_tool

#: Metres of street frontage each point of interest is worth as a trip end.
POI_WEIGHT: dict[str, float] = {
    "transport_hub": 3000.0,
    "market": 2000.0,
    "school": 1500.0,
    "hospital": 1500.0,
    "government": 1000.0,
    "place_of_worship": 500.0,
    "police": 300.0,
    "fire_station": 100.0,
}
#: Metres of street frontage a square metre of a building's floor is worth as a trip end: a
#: house of 150 m² counts as 15 m of street, about its own frontage, and a ten-storey
#: office of 20,000 m² as much as a large market.
FLOOR_WEIGHT = 0.1
#: The vehicle classes of the mix's types (:mod:`twin.traffic.vehicles`).
VCLASSES = ("passenger", "motorcycle", "bus", "truck")
ZONES_ACROSS = 40
MIN_ZONE_M = 200.0


@dataclass(frozen=True)
class Roads:
    """The roads of a net where trips may start or end, with what the model needs of them."""

    ids: np.ndarray  # edge ids
    x: np.ndarray
    y: np.ndarray
    activity: np.ndarray
    capacity: np.ndarray  # lanes times speed limit
    fringe_in: np.ndarray  # bool: where traffic enters the extract
    fringe_out: np.ndarray
    allows: dict[str, np.ndarray]  # vehicle class -> bool per road
    zone: np.ndarray  # zone index per road
    zone_x: np.ndarray
    zone_y: np.ndarray


@cache
def _roads(
    net_file: str,
    pois_key: tuple[tuple[str, str], ...],
    floor_key: tuple[tuple[str, float], ...] = (),
) -> Roads:
    import sumolib

    net = sumolib.net.readNet(net_file)
    edges = [
        e
        for e in net.getEdges(withInternal=False)
        if e.getFunction() == "" and e.getLength() > 15 and e.allows("passenger")
    ]
    ids = np.array([e.getID() for e in edges])
    mids = np.array(
        [e.getShape()[len(e.getShape()) // 2] if e.getShape() else (0.0, 0.0) for e in edges]
    )
    lanes = np.array([e.getLaneNumber() for e in edges], dtype=float)
    length = np.array([e.getLength() for e in edges])
    speed = np.array([e.getSpeed() for e in edges])
    activity = length * lanes
    index = {e: i for i, e in enumerate(ids)}
    for edge, category in pois_key:
        if edge in index:
            activity[index[edge]] += POI_WEIGHT.get(category, 0.0)
    for edge, floor_m2 in floor_key:
        if edge in index:
            activity[index[edge]] += FLOOR_WEIGHT * floor_m2
    fringe_in = np.array([not e.getIncoming() or _only_from(e, e.getToNode()) for e in edges])
    fringe_out = np.array([not e.getOutgoing() or _only_to(e, e.getFromNode()) for e in edges])
    x, y = mids[:, 0], mids[:, 1]
    side = max(MIN_ZONE_M, max(np.ptp(x), np.ptp(y)) / ZONES_ACROSS)
    cells = np.floor((x - x.min()) / side).astype(int) * 100_000 + np.floor(
        (y - y.min()) / side
    ).astype(int)
    _, zone = np.unique(cells, return_inverse=True)
    counts = np.bincount(zone)
    zone_x = np.bincount(zone, weights=x) / counts
    zone_y = np.bincount(zone, weights=y) / counts
    return Roads(
        ids,
        x,
        y,
        activity,
        lanes * speed,
        fringe_in,
        fringe_out,
        {vc: _connected(edges, vc) for vc in VCLASSES},
        zone,
        zone_x,
        zone_y,
    )


def _connected(edges: list[Any], vclass: str) -> np.ndarray:
    """Per road: whether ``vclass`` may drive it and it lies in the largest part of the net
    where that class can get from every road to every other (so that every trip has a
    route)."""
    import networkx as nx

    ok = {e.getID() for e in edges if e.allows(vclass)}
    graph = nx.DiGraph()
    graph.add_nodes_from(ok)
    for e in edges:
        if e.getID() not in ok:
            continue
        for nxt, conns in e.getOutgoing().items():
            if nxt.getID() in ok and any(c.getFromLane().allows(vclass) for c in conns):
                graph.add_edge(e.getID(), nxt.getID())
    if graph.number_of_nodes() == 0:
        return np.zeros(len(edges), dtype=bool)
    main = max(nx.strongly_connected_components(graph), key=len)
    return np.array([e.getID() in main for e in edges])


def _only_from(edge: Any, node: Any) -> bool:
    """Whether every way into ``edge`` is a turn back from the edge it pairs with (a road
    that comes in from beyond the extract)."""
    return all(i.getFromNode() == node for i in edge.getIncoming())


def _only_to(edge: Any, node: Any) -> bool:
    return all(o.getToNode() == node for o in edge.getOutgoing())


def gravity_trips(
    roads: Roads,
    n: int,
    rng: np.random.Generator,
    *,
    allowed: np.ndarray,
    trip_length_m: float,
    min_trip_m: float,
    through_share: float,
) -> list[tuple[int, int]]:
    """``n`` (origin road, destination road) index pairs drawn from the gravity model, on
    the roads ``allowed`` (a bool mask: the vehicle class may drive there)."""
    act = np.where(allowed, roads.activity, 0.0)
    cap_in = np.where(allowed & roads.fringe_in, roads.capacity, 0.0)
    cap_out = np.where(allowed & roads.fringe_out, roads.capacity, 0.0)
    nz = len(roads.zone_x)
    zone_act = np.bincount(roads.zone, weights=act, minlength=nz)
    dx = roads.zone_x[:, None] - roads.zone_x[None, :]
    dy = roads.zone_y[:, None] - roads.zone_y[None, :]
    dist = np.hypot(dx, dy)
    attract = zone_act[None, :] * np.exp(-dist / max(trip_length_m, 1.0))
    attract[dist < min_trip_m] = 0.0
    # roads within each zone, by weight
    order = np.argsort(roads.zone, kind="stable")
    bounds = np.searchsorted(roads.zone[order], np.arange(nz + 1))

    def road_in(z: int) -> int:
        members = order[bounds[z] : bounds[z + 1]]
        w = act[members]
        return int(members[rng.choice(len(members), p=w / w.sum())])

    def weighted(w: np.ndarray) -> int:
        return int(rng.choice(len(w), p=w / w.sum()))

    out = []
    tries = 0
    while len(out) < n and tries < 20 * n + 100:
        tries += 1
        through_in = cap_in.sum() > 0 and rng.random() < through_share
        through_out = cap_out.sum() > 0 and rng.random() < through_share
        o = weighted(cap_in) if through_in else road_in(weighted(zone_act))
        if through_out:
            d = weighted(cap_out)
        else:
            row = attract[roads.zone[o]]
            if row.sum() <= 0:
                continue
            d = road_in(weighted(row))
        if o == d or np.hypot(roads.x[o] - roads.x[d], roads.y[o] - roads.y[d]) < min_trip_m:
            continue
        out.append((o, d))
    return out


def city_routes(
    net_file: Path,
    pois: list[tuple[str, str]],
    *,
    floor: Sequence[tuple[str, float]] = (),
    prefix: str,
    begin_s: float,
    end_s: float,
    veh_per_hour: float,
    seed: int,
    folder: Path,
    vehicle_type: str | None,
    vclass: str,
    vtypes_file: Path | None,
    trip_length_m: float,
    min_trip_m: float,
    through_share: float,
) -> Path | None:
    """Routes of one piece of demand from the gravity model, or None without a vehicle.
    ``pois`` are (SUMO edge, category) pairs, ``floor`` (SUMO edge, building floor m²)."""
    n = round(veh_per_hour * (end_s - begin_s) / 3600.0)
    if n <= 0:
        return None
    roads = _roads(str(Path(net_file).resolve()), tuple(sorted(pois)), tuple(sorted(floor)))
    rng = np.random.default_rng(seed)
    allowed = roads.allows[vclass]
    pairs = gravity_trips(
        roads,
        n,
        rng,
        allowed=allowed,
        trip_length_m=trip_length_m,
        min_trip_m=min_trip_m,
        through_share=through_share,
    )
    departs = np.sort(rng.uniform(begin_s, end_s, size=len(pairs)))
    kind = f' type="{vehicle_type}"' if vehicle_type else ""
    trips = folder / f"{prefix}.trips.xml"
    with trips.open("w", encoding="utf-8") as f:
        f.write("<routes>\n")
        for i, ((o, d), t) in enumerate(zip(pairs, departs, strict=True)):
            f.write(
                f'    <trip id="{prefix}_{i}"{kind} depart="{t:.2f}" from="{roads.ids[o]}" '
                f'to="{roads.ids[d]}" departLane="best" departSpeed="max"/>\n'
            )
        f.write("</routes>\n")
    routes = folder / f"{prefix}.rou.xml"
    run_tool(
        "duarouter",
        [
            "-n",
            str(net_file),
            "--route-files",
            str(trips),
            "-o",
            str(routes),
            "--ignore-errors",
            "--routing-algorithm",
            "astar",
            "--no-step-log",
            "--seed",
            str(seed % 2**31),
            *(["--additional-files", str(vtypes_file)] if vtypes_file else []),
        ],
        timeout=3600,
        log=folder / f"{prefix}.duarouter.log",
    )
    return routes
