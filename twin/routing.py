"""The travel-time engine: "how long from here to there, right now?", thousands of times.

The city's road graph is held as CSR arrays, forward and reversed, and searched by the
compiled kernels in ``twin.ext.routing`` (Dijkstra, binary heap, deterministic ties, no
Python objects in the loop). This module checks every argument before the unchecked loop.

An edge's cost is its free-flow ``travel_time`` divided by a live **speed factor** (1 is
free flow, 0.5 half speed), unless the edge is **closed**:

- closed to passenger traffic (``emergency_access=True``, as a police closure): emergency
  queries (``emergency=True``) still pass;
- closed to everyone (a flood).

Places are graph node ids, ``(lat, lon)`` pairs (snapped to the nearest node), or SUMO
edge ids (the node at the end of the graph edge the SUMO edge lies on: where a vehicle on
it is heading). An unreachable target has travel time ``inf``; asking for the path to it
raises :class:`NoRouteError`, which names both places.

>>> import networkx as nx
>>> g = nx.MultiDiGraph()
>>> g.add_edge(1, 2, travel_time=60.0); g.add_edge(2, 3, travel_time=30.0)
0
0
>>> engine = TravelTimeEngine(g)
>>> engine.travel_time(1, 3)
90.0
>>> engine.close([(2, 3, 0)])
>>> engine.travel_time(1, 3), engine.travel_time(1, 3, emergency=True)
(inf, 90.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twin._errors import InputError, TwinError
from twin._geo import haversine_m

if TYPE_CHECKING:
    import networkx as nx

    from twin.city.bundle import City

Place = Any  # a node id, a (lat, lon) pair, or a SUMO edge id


#: How many targets :meth:`TravelTimeEngine.times_to` keeps searches for.
TIMES_TO_CACHE = 4096

#: ``nearest`` searches forward from the candidates when there are more than this many
#: targets per candidate node (each forward search serves every target), and backward from
#: each target otherwise (each stops as soon as its k nearest are certain).
FORWARD_RATIO = 4


class NoRouteError(TwinError, LookupError):
    """No open road leads from one place to the other."""


@dataclass(frozen=True)
class Isochrone:
    """What is reachable within a time: nodes (with times) and, with a city, sectors."""

    nodes: np.ndarray  # node ids
    times: np.ndarray  # seconds
    sector_share: dict[str, float]  # share of each sector's nodes reached


class TravelTimeEngine:
    """Travel times on a road graph, with closures and live speed factors.

    Parameters
    ----------
    graph
        A MultiDiGraph whose edges carry ``weight`` (seconds).
    weight
        The edge attribute holding the free-flow travel time.
    """

    def __init__(self, graph: nx.MultiDiGraph, *, weight: str = "travel_time") -> None:
        from twin.ext import routing as kernel

        self._kernel = kernel
        self.nodes = np.array(sorted(graph.nodes), dtype=np.int64)
        self._index = {int(n): i for i, n in enumerate(self.nodes)}
        edges = sorted(
            graph.edges(keys=True, data=True),
            key=lambda e: (self._index[e[0]], self._index[e[1]], e[2]),
        )
        n = len(self.nodes)
        u = np.array([self._index[e[0]] for e in edges], dtype=np.int64)
        v = np.array([self._index[e[1]] for e in edges], dtype=np.int64)
        base = np.array([e[3].get(weight, np.nan) for e in edges], dtype=float)
        bad = ~np.isfinite(base) | (base < 0)
        if bad.any():
            first = edges[int(np.flatnonzero(bad)[0])]
            raise InputError(
                f"edge {first[:3]}: {weight} must be a finite number of seconds >= 0, got {first[3].get(weight)!r}"
            )
        self._edge_ids = [e[:3] for e in edges]
        self._edge_pos = {e: i for i, e in enumerate(self._edge_ids)}
        self._u, self._v, self._base = u, v, base
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=n))]).astype(np.int64)
        self.indices = v
        order = np.lexsort((u, v))  # the reversed graph: edges grouped by their head
        self._rev_order = order
        self.rev_indptr = np.concatenate([[0], np.cumsum(np.bincount(v, minlength=n))]).astype(
            np.int64
        )
        self.rev_indices = u[order]
        self._closed = np.zeros(len(edges), dtype=np.uint8)  # 0 open, 1 passenger, 2 all
        self._factor = np.ones(len(edges))
        self._costs: dict[bool, tuple[np.ndarray, np.ndarray]] = {}
        self._to: dict[tuple[int, bool], np.ndarray] = {}  # times_to's cache
        self._graph = graph
        self._city: City | None = None
        self._tree: Any = None

    @classmethod
    def from_city(cls, city: City) -> TravelTimeEngine:
        """The engine of a city bundle; places may then be (lat, lon) pairs or SUMO edges."""
        engine = cls(city.graph)
        engine._city = city
        return engine

    # -- live state -------------------------------------------------------------------------

    def close(
        self, edges: Iterable[tuple[int, int, int]], *, emergency_access: bool = True
    ) -> None:
        """Close graph edges ``(u, v, key)``; emergency queries pass if ``emergency_access``."""
        code = 1 if emergency_access else 2
        for pos in self._positions(edges):
            self._closed[pos] = max(self._closed[pos], code)
        self._costs.clear()
        self._to.clear()

    def reopen(self, edges: Iterable[tuple[int, int, int]] | None = None) -> None:
        """Reopen the given edges, or every closed edge."""
        if edges is None:
            self._closed[:] = 0
        else:
            self._closed[self._positions(edges)] = 0
        self._costs.clear()
        self._to.clear()

    def set_speed_factors(self, factors: dict[tuple[int, int, int], float] | None) -> None:
        """Live speed factors per edge (observed over free-flow speed); ``None`` resets."""
        self._factor[:] = 1.0
        if factors:
            pos = self._positions(factors.keys())
            values = np.array(list(factors.values()), dtype=float)
            bad = ~np.isfinite(values) | (values <= 0)
            if bad.any():
                key = list(factors)[int(np.flatnonzero(bad)[0])]
                raise InputError(
                    f"speed factor of edge {key} must be a positive number, got {factors[key]!r}"
                )
            self._factor[pos] = values
        self._costs.clear()
        self._to.clear()

    def times_to(
        self, target: Place, origins: Sequence[Place], *, emergency: bool = False
    ) -> np.ndarray:
        """Seconds from each origin to ``target`` now (``inf`` where cut off).

        One backward search from the target serves every origin, and stays cached until
        the roads change (a closure, a reopening, new speed factors): a dispatcher asks
        about the same incident several times."""
        t = self._index[self.node_of(target)]
        key = (t, bool(emergency))
        times = self._to.get(key)
        if times is None:
            if len(self._to) >= TIMES_TO_CACHE:
                self._to.clear()
            _, rcost = self.cost(emergency=emergency)
            times, _ = self._kernel.one_to_all(
                self.rev_indptr,
                self.rev_indices,
                rcost,
                np.array([t], dtype=np.int64),
                np.zeros(1),
                np.inf,
            )
            self._to[key] = times
        return times[self._indices(origins)]

    def cost(self, *, emergency: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Edge costs now (forward CSR order, reversed CSR order); ``inf`` where closed."""
        if emergency not in self._costs:
            cost = self._base / self._factor
            cost[self._closed >= (2 if emergency else 1)] = np.inf
            self._costs[emergency] = (cost, np.ascontiguousarray(cost[self._rev_order]))
        return self._costs[emergency]

    # -- queries ----------------------------------------------------------------------------

    def node_of(self, place: Place) -> int:
        """The graph node of a place (node id, ``(lat, lon)``, or SUMO edge id)."""
        if isinstance(place, bool):
            raise InputError(f"not a place: {place!r}")
        if isinstance(place, int | np.integer):
            if int(place) not in self._index:
                raise InputError(f"node {place} is not in the road graph")
            return int(place)
        if isinstance(place, str):
            if self._city is None:
                raise InputError(f"SUMO edge {place!r}: this engine was not made from a city")
            edges = self._city.graph_edges_of(place)
            if not edges:
                raise InputError(f"SUMO edge {place!r} is not on the city's road graph")
            return int(edges[-1][1])
        if isinstance(place, Sequence) and len(place) == 2:
            lat, lon = float(place[0]), float(place[1])
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise InputError(f"point ({lat}, {lon}) is not a latitude and longitude")
            return self._nearest_node(lat, lon)
        raise InputError(f"not a place: {place!r} (give a node id, (lat, lon) or a SUMO edge id)")

    def travel_time(self, origin: Place, target: Place, *, emergency: bool = False) -> float:
        """Seconds from ``origin`` to ``target`` now; ``inf`` if no open road leads there."""
        dist, _ = self._search([self.node_of(origin)], emergency=emergency)
        return float(dist[self._index[self.node_of(target)]])

    def path(
        self, origin: Place, target: Place, *, emergency: bool = False
    ) -> tuple[list[int], float]:
        """The fastest route as graph nodes, and its time. Raises NoRouteError."""
        a, b = self.node_of(origin), self.node_of(target)
        dist, pred = self._search([a], emergency=emergency)
        t = dist[self._index[b]]
        if not np.isfinite(t):
            raise NoRouteError(
                f"no open road leads from {_describe(origin)} to {_describe(target)}"
            )
        path = [self._index[b]]
        while pred[path[-1]] >= 0:
            path.append(int(self._u[pred[path[-1]]]))
        return [int(self.nodes[i]) for i in reversed(path)], float(t)

    def one_to_all(
        self, sources: Place | Sequence[Place], *, within: float = np.inf, emergency: bool = False
    ) -> np.ndarray:
        """Seconds from the nearest source to every node (in ``self.nodes`` order)."""
        srcs = self._places(sources)
        return self._search(srcs, within=within, emergency=emergency)[0]

    def many_to_all(
        self, sources: Sequence[Place], *, within: float = np.inf, emergency: bool = False
    ) -> np.ndarray:
        """A ``(len(sources), n_nodes)`` matrix of seconds, one row per source."""
        idx = self._indices(sources)
        cost, _ = self.cost(emergency=emergency)
        return self._kernel.many_to_all(self.indptr, self.indices, cost, idx, _limit(within))

    def nearest(
        self,
        targets: Sequence[Place],
        candidates: Sequence[Place],
        *,
        k: int = 1,
        within: float = np.inf,
        emergency: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each target, the ``k`` candidates with the shortest travel time *to* it.

        Returns ``(which, times)``, each ``(len(targets), k)``: indices into
        ``candidates`` (-1 where fewer than k can reach it) and seconds, fastest first.
        Ties are broken the same way every time. With few targets each search runs
        backward from its target and stops as soon as the answer is certain; with many
        targets per candidate (see :data:`FORWARD_RATIO`), one forward search from each
        candidate serves them all."""
        if int(k) != k or k < 1:
            raise InputError(f"k must be a whole number of at least 1, got {k!r}")
        cand_nodes = self._indices(candidates).tolist()
        tgt = self._indices(targets)
        if len(tgt) > FORWARD_RATIO * len(set(cand_nodes)):
            return self._nearest_forward(tgt, cand_nodes, k, _limit(within), emergency)
        weight = np.bincount(
            np.array(cand_nodes, dtype=np.int64), minlength=len(self.nodes)
        ).astype(np.int64)
        _, rcost = self.cost(emergency=emergency)
        nodes, times = self._kernel.nearest_many(
            self.rev_indptr, self.rev_indices, rcost, tgt, weight, int(k), _limit(within)
        )
        which = np.full((len(tgt), k), -1, dtype=np.int64)
        out = np.full((len(tgt), k), np.inf)
        if len(set(cand_nodes)) == len(cand_nodes):  # one candidate per node: map at once
            cand_of_node = np.full(len(self.nodes) + 1, -1, dtype=np.int64)  # [-1] stays -1
            cand_of_node[cand_nodes] = np.arange(len(cand_nodes))
            width = min(k, nodes.shape[1])
            which[:, :width] = cand_of_node[nodes[:, :width]]
            out[:, :width] = times[:, :width]
            return which, out
        by_node: dict[int, list[int]] = {}
        for i, node in enumerate(cand_nodes):
            by_node.setdefault(node, []).append(i)
        for row in range(len(tgt)):
            col = 0
            for node, t in zip(nodes[row], times[row], strict=True):
                if node < 0 or col >= k:
                    break
                for cand in by_node[int(node)]:
                    if col >= k:
                        break
                    which[row, col], out[row, col] = cand, t
                    col += 1
        return which, out

    def _nearest_forward(
        self, tgt: np.ndarray, cand_nodes: list[int], k: int, within: float, emergency: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Many targets, few candidates: search forward once from each candidate, then
        take each target's k smallest times (ties: the order of ``candidates``)."""
        cost, _ = self.cost(emergency=emergency)
        unique = sorted(set(cand_nodes))
        rows = self._kernel.many_to_all(
            self.indptr, self.indices, cost, np.array(unique, dtype=np.int64), within
        )
        to_target = rows[[unique.index(c) for c in cand_nodes]][:, tgt].T  # (targets, candidates)
        width = min(k, len(cand_nodes))
        order = np.argsort(to_target, axis=1, kind="stable")[:, :width]
        times = np.take_along_axis(to_target, order, axis=1)
        which = np.full((len(tgt), k), -1, dtype=np.int64)
        out = np.full((len(tgt), k), np.inf)
        reached = np.isfinite(times)
        which[:, :width] = np.where(reached, order, -1)
        out[:, :width] = times
        return which, out

    def isochrone(
        self, sources: Place | Sequence[Place], within: float, *, emergency: bool = False
    ) -> Isochrone:
        """The nodes reachable from any source within ``within`` seconds, and, for a city's
        engine, the share of each sector's nodes they make up."""
        dist = self.one_to_all(sources, within=within, emergency=emergency)
        reached = np.flatnonzero(np.isfinite(dist))
        share: dict[str, float] = {}
        if self._city is not None:
            sectors = self.node_sectors()
            totals = sectors.value_counts()
            hit = sectors.iloc[reached].value_counts()
            share = {s: round(float(hit.get(s, 0) / totals[s]), 6) for s in sorted(totals.index)}
        return Isochrone(self.nodes[reached], dist[reached], share)

    def matrix(
        self, origins: Sequence[Place], destinations: Sequence[Place], *, emergency: bool = False
    ) -> np.ndarray:
        """A ``(len(origins), len(destinations))`` matrix of seconds. Each search stops
        once every destination is settled."""
        dest = self._indices(destinations).tolist()
        org = self._indices(origins)
        weight = np.zeros(len(self.nodes), dtype=np.int64)
        weight[dest] = 1
        cost, _ = self.cost(emergency=emergency)
        nodes, times = self._kernel.nearest_many(
            self.indptr, self.indices, cost, org, weight, int(weight.sum()), np.inf
        )
        out = np.full((len(org), len(dest)), np.inf)
        col = {}
        for j, d in enumerate(dest):
            col.setdefault(d, []).append(j)
        for row in range(len(org)):
            for node, t in zip(nodes[row], times[row], strict=True):
                if node < 0:
                    break
                out[row, col[int(node)]] = t
        return out

    # -- internals --------------------------------------------------------------------------

    def _search(
        self, sources: Sequence[int], *, within: float = np.inf, emergency: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        idx = self._indices(list(sources))
        cost, _ = self.cost(emergency=emergency)
        return self._kernel.one_to_all(
            self.indptr, self.indices, cost, idx, np.zeros(len(idx)), _limit(within)
        )

    def _indices(self, places: Place | Sequence[Place]) -> np.ndarray:
        """CSR indices of places; plain node ids take a fast path."""
        if (
            isinstance(places, list | tuple | np.ndarray)
            and len(places)
            and all(type(p) is int for p in places)
        ):
            try:
                return np.array([self._index[p] for p in places], dtype=np.int64)
            except KeyError:
                pass  # let node_of name the missing node
        return np.array([self._index[p] for p in self._places(places)], dtype=np.int64)

    def _places(self, places: Place | Sequence[Place]) -> list[int]:
        if isinstance(places, int | np.integer | str) or (
            isinstance(places, tuple)
            and len(places) == 2
            and all(isinstance(x, float) for x in places)
        ):
            places = [places]
        nodes = [self.node_of(p) for p in places]
        if not nodes:
            raise InputError("give at least one place")
        return nodes

    def _positions(self, edges: Iterable[tuple[int, int, int]]) -> np.ndarray:
        pos = []
        for e in edges:
            key = (int(e[0]), int(e[1]), int(e[2]) if len(e) > 2 else 0)
            if key not in self._edge_pos:
                raise InputError(f"edge {key} is not in the road graph")
            pos.append(self._edge_pos[key])
        return np.array(pos, dtype=np.int64)

    def snap(self, lat: float, lon: float) -> tuple[int, float]:
        """The node nearest a point, and how far it is in metres (great circle)."""
        node = self._nearest_node(lat, lon)
        data = self._graph.nodes[node]
        return node, haversine_m(lat, lon, data["y"], data["x"])

    def _nearest_node(self, lat: float, lon: float) -> int:
        from scipy.spatial import cKDTree

        if self._tree is None:
            ys = np.array([self._graph.nodes[n]["y"] for n in self.nodes])
            xs = np.array([self._graph.nodes[n]["x"] for n in self.nodes])
            self._scale = np.cos(np.radians(ys.mean()))
            self._tree = cKDTree(np.column_stack([xs * self._scale, ys]))
        _, i = self._tree.query([lon * self._scale, lat])
        return int(self.nodes[int(i)])

    def node_sectors(self) -> Any:
        """Each node's sector id (in ``self.nodes`` order; "" outside every sector)."""
        import h3
        import pandas as pd

        if not hasattr(self, "_sectors_cache"):
            assert self._city is not None
            res = int(self._city.manifest.sectors["resolution"])
            by_h3 = dict(zip(self._city.sectors["h3"], self._city.sectors.index, strict=True))
            g = self._graph
            self._sectors_cache = pd.Series(
                [
                    by_h3.get(h3.latlng_to_cell(g.nodes[n]["y"], g.nodes[n]["x"], res), "")
                    for n in self.nodes
                ]
            )
        return self._sectors_cache


def _limit(within: float) -> float:
    within = float(within)
    if not within >= 0:
        raise InputError(f"a time limit must be zero or more seconds, got {within!r}")
    return within


def _describe(place: Place) -> str:
    if isinstance(place, int | np.integer):
        return f"node {place}"
    if isinstance(place, str):
        return f"SUMO edge {place!r}"
    return f"point ({float(place[0]):.5f}, {float(place[1]):.5f})"
