"""routing: the travel-time engine against networkx and scipy (see run.py)."""

from __future__ import annotations

from typing import Any

from _common import CACHE, best_of

GRIDS = {"grid 1k": 32, "grid 10k": 100, "grid 100k": 316}  # nodes per side


def grid_graph(side: int) -> Any:
    """A perturbed grid made by SUMO's netgenerate (cached), as a MultiDiGraph."""
    import re

    import networkx as nx

    from twin._sumo import run_tool

    path = CACHE / f"grid{side}.net.xml"
    if not path.exists():
        print(
            f"(making a {side}x{side} grid with netgenerate, once; the 100k grid takes minutes)",
            flush=True,
        )
        run_tool(
            "netgenerate",
            [
                "--grid",
                "--grid.number",
                str(side),
                "--grid.length",
                "100",
                "--perturb-x",
                "25",
                "--perturb-y",
                "25",
                "--seed",
                "1",
                "--default.lanenumber",
                "1",
                "--default.speed",
                "13.89",
                "--no-internal-links",
                "--no-turnarounds",
                "-o",
                str(path),
            ],
            timeout=3600,
        )
    edge_re = re.compile(r'<edge id="[^"]+" from="([^"]+)" to="([^"]+)"')
    lane_re = re.compile(r'<lane id="[^"]+" index="0" speed="([\d.]+)" length="([\d.]+)"')
    g = nx.MultiDiGraph()
    ids: dict[str, int] = {}
    pending = None
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if pending is None:
                m = edge_re.search(line)
                if m:
                    pending = (ids.setdefault(m[1], len(ids)), ids.setdefault(m[2], len(ids)))
            else:
                m = lane_re.search(line)
                if m:
                    g.add_edge(*pending, travel_time=float(m[2]) / float(m[1]))
                    pending = None
    return g


def bench_routing(repeat: int) -> None:
    """The travel-time engine against networkx and scipy (see the module docstring)."""
    from twin.city import build_city
    from twin.city.facilities import load_facilities
    from twin.ext.routing import threads_available
    from twin.routing import TravelTimeEngine

    print(
        f"\n(routing: parallel queries use up to {threads_available()} threads; set OMP_NUM_THREADS to change)"
    )
    city = build_city(out=CACHE / "helsinki", progress=False).city
    engine = TravelTimeEngine.from_city(city)
    city_posts = [engine.node_of((f.lat, f.lon)) for f in load_facilities(city, "police")[0]]
    _bench_routing_graph("helsinki (default city)", city.graph, min(repeat, 3), posts=city_posts)
    for name, side in GRIDS.items():
        _bench_routing_graph(name, grid_graph(side), min(repeat, 3))


def scipy_csr(engine: Any) -> Any:
    """The engine's graph as scipy's CSR matrix of travel times (the cheapest of parallel
    edges), built once, outside any timing: scipy's ``dijkstra`` baseline."""
    import numpy as np
    import scipy.sparse as sp

    n = len(engine.nodes)
    cost, _ = engine.cost()
    u = np.repeat(np.arange(n), np.diff(engine.indptr))
    order = np.lexsort((cost, engine.indices, u))  # keep the cheapest of parallel edges
    first = np.ones(len(order), dtype=bool)
    first[1:] = (u[order][1:] != u[order][:-1]) | (
        engine.indices[order][1:] != engine.indices[order][:-1]
    )
    keep = order[first]
    return sp.csr_matrix((cost[keep], (u[keep], engine.indices[keep])), shape=(n, n))


def _bench_routing_graph(name: str, g: Any, repeat: int, *, posts: list[int] | None = None) -> None:
    import networkx as nx
    import numpy as np
    from scipy.sparse.csgraph import dijkstra

    from twin.routing import TravelTimeEngine

    engine = TravelTimeEngine(g)
    n = len(engine.nodes)
    csr = scipy_csr(engine)
    csr_t = csr.T.tocsr()
    rng = np.random.default_rng(1)
    nodes = engine.nodes
    sources = [int(x) for x in rng.choice(nodes, 20, replace=False)]
    units = [int(x) for x in rng.choice(nodes, 50, replace=False)]
    incidents = [int(x) for x in rng.choice(nodes, 1000, replace=True)]
    posts = posts or [int(x) for x in rng.choice(nodes, 12, replace=False)]
    src_i = np.array([engine._index[s] for s in sources])
    unit_i = np.array([engine._index[s] for s in units])
    inc_i = np.array([engine._index[s] for s in incidents])
    post_i = np.array([engine._index[s] for s in posts])
    big = n > 20000

    def nx_many() -> None:
        for s in sources:
            nx.single_source_dijkstra_path_length(g, s, weight="travel_time")

    def scipy_nearest_per_incident() -> None:
        d = dijkstra(csr_t, indices=inc_i)[:, unit_i]
        np.partition(d, 2, axis=1)[:, :3]

    def scipy_nearest_from_units() -> None:
        d = dijkstra(csr, indices=unit_i)[:, inc_i]
        np.partition(d, 2, axis=0)[:3]

    def nx_iso() -> None:
        nx.multi_source_dijkstra_path_length(g, set(posts), cutoff=600, weight="travel_time")

    results = {
        "many-to-all, 20 sources": {
            "twin": best_of(lambda: engine.many_to_all(sources), repeat)[0],
            "scipy": best_of(lambda: dijkstra(csr, indices=src_i), repeat)[0],
            "networkx": best_of(nx_many, 1 if big else repeat)[0],
        },
        "nearest 3 of 50 units, 1 incident (dispatch)": {
            "twin": best_of(lambda: engine.nearest(incidents[:1], units, k=3), repeat)[0],
            "scipy": best_of(
                lambda: np.partition(dijkstra(csr_t, indices=inc_i[:1])[:, unit_i], 2, axis=1),
                repeat,
            )[0],
            "scipy, from the units": best_of(
                lambda: np.partition(dijkstra(csr, indices=unit_i)[:, inc_i[:1]], 2, axis=0), repeat
            )[0],
        },
        "nearest 3 of 50 units, 1,000 incidents": {
            "twin": best_of(lambda: engine.nearest(incidents, units, k=3), repeat)[0],
            "scipy": best_of(scipy_nearest_per_incident, 1 if big else repeat)[0],
            "scipy, from the units": best_of(scipy_nearest_from_units, repeat)[0],
        },
        f"isochrones 10 min from {len(posts)} posts": {
            "twin": best_of(lambda: engine.isochrone(posts, 600), repeat)[0],
            "scipy": best_of(
                lambda: dijkstra(csr, indices=post_i, min_only=True, limit=600), repeat
            )[0],
            "networkx": best_of(nx_iso, repeat)[0],
        },
    }
    print(f"\n### routing: {name}, {n:,} nodes, {g.number_of_edges():,} edges\n")
    print("| query | twin | scipy | networkx | twin vs scipy | twin vs networkx |")
    print("|---|---|---|---|---|---|")
    for query, r in results.items():
        sc, alt, nxt = r["scipy"], r.get("scipy, from the units"), r.get("networkx")
        vs_sc = f"{sc / r['twin']:.1f}×" + (
            f" ({alt / r['twin']:.1f}× from the units)" if alt else ""
        )
        sc_cell = f"{sc * 1000:.1f} ms" + (f" ({alt * 1000:.1f} ms from the units)" if alt else "")
        nx_cell = f"{nxt * 1000:.1f} ms" if nxt else "–"
        vs_nx = f"{nxt / r['twin']:.1f}×" if nxt else "–"
        print(
            f"| {query} | {r['twin'] * 1000:.2f} ms | {sc_cell} | {nx_cell} | {vs_sc} | {vs_nx} |",
            flush=True,
        )
