"""The travel-time engine against networkx and scipy: random graphs (hypothesis) with
closures, speed factors, parallel edges and disconnected parts, and the real city graph."""

from __future__ import annotations

import doctest

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

import twin.routing as routing_module
from twin import InputError
from twin.routing import NoRouteError, TravelTimeEngine


def test_docstring_example():
    assert doctest.testmod(routing_module).failed == 0


@st.composite
def road_graphs(draw):
    """A MultiDiGraph with random travel times, parallel edges and, often, several parts."""
    n = draw(st.integers(2, 40))
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(100, 100 + n))  # ids that are not positions
    m = draw(st.integers(0, 4 * n))
    for _ in range(m):
        u = draw(st.integers(100, 100 + n - 1))
        v = draw(st.integers(100, 100 + n - 1))
        t = draw(st.floats(0.0, 500.0, allow_nan=False, allow_infinity=False))
        g.add_edge(u, v, travel_time=t)
    edges = list(g.edges(keys=True))
    closed = (
        draw(st.lists(st.sampled_from(edges), max_size=len(edges) // 3, unique=True))
        if edges
        else []
    )
    passenger_only = draw(st.lists(st.booleans(), min_size=len(closed), max_size=len(closed)))
    slow = (
        draw(st.lists(st.sampled_from(edges), max_size=len(edges) // 3, unique=True))
        if edges
        else []
    )
    factors = {e: draw(st.floats(0.05, 2.0)) for e in slow}
    return g, dict(zip(closed, passenger_only, strict=True)), factors


def engine_for(g, closed, factors):
    engine = TravelTimeEngine(g)
    for edge, passenger_only in closed.items():
        engine.close([edge], emergency_access=passenger_only)
    engine.set_speed_factors(factors)
    return engine


def weight_fn(closed, factors, *, emergency):
    """A networkx weight function: None hides a closed edge (as NetworkX does)."""

    def weight(u, v, datas):
        best = None
        for key, data in datas.items():
            edge = (u, v, key)
            if edge in closed and not (emergency and closed[edge]):
                continue
            cost = data["travel_time"] / factors.get(edge, 1.0)
            best = cost if best is None else min(best, cost)
        return best

    return weight


def scipy_matrix(engine, *, emergency):
    """The CSR for scipy: the minimum over parallel edges (scipy would sum them)."""
    cost, _ = engine.cost(emergency=emergency)
    n = len(engine.nodes)
    best: dict[tuple[int, int], float] = {}
    u = np.repeat(np.arange(n), np.diff(engine.indptr))
    for a, b, c in zip(u, engine.indices, cost, strict=True):
        if np.isfinite(c):
            best[(a, b)] = min(best.get((a, b), np.inf), c)
    rows = [k[0] for k in best]
    cols = [k[1] for k in best]
    # scipy drops explicit zeros in sparse input: nudge them to a tiny positive value and
    # compare with a tolerance that covers it.
    data = [max(v, 1e-300) for v in best.values()]
    return sp.csr_matrix((data, (rows, cols)), shape=(n, n))


@settings(max_examples=150, deadline=None)
@given(road_graphs(), st.booleans(), st.data())
def test_one_and_many_to_all_equal_networkx_and_scipy(case, emergency, data):
    g, closed, factors = case
    engine = engine_for(g, closed, factors)
    sources = data.draw(
        st.lists(st.sampled_from(sorted(g.nodes)), min_size=1, max_size=4, unique=True)
    )
    got = engine.many_to_all(sources, emergency=emergency)
    ref_scipy = dijkstra(
        scipy_matrix(engine, emergency=emergency), indices=[engine._index[s] for s in sources]
    )
    np.testing.assert_allclose(got, ref_scipy, rtol=0, atol=1e-9)
    weight = weight_fn(closed, factors, emergency=emergency)
    for row, s in zip(got, sources, strict=True):
        ref = nx.single_source_dijkstra_path_length(g, s, weight=weight)
        expected = np.array([ref.get(int(n), np.inf) for n in engine.nodes])
        np.testing.assert_allclose(row, expected, rtol=0, atol=1e-9)
    # one_to_all from several sources is the minimum over them
    np.testing.assert_allclose(
        engine.one_to_all(sources, emergency=emergency), got.min(axis=0), rtol=0, atol=1e-9
    )


@settings(max_examples=150, deadline=None)
@given(road_graphs(), st.data())
def test_nearest_k_matches_brute_force(case, data):
    g, closed, factors = case
    engine = engine_for(g, closed, factors)
    nodes = sorted(g.nodes)
    candidates = data.draw(
        st.lists(st.sampled_from(nodes), min_size=1, max_size=8)
    )  # repeats allowed
    targets = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=5))
    k = data.draw(st.integers(1, 4))
    which, times = engine.nearest(targets, candidates, k=k)
    full = engine.many_to_all(candidates)  # candidate -> every node
    for row, target in enumerate(targets):
        to_target = np.sort(full[:, engine._index[target]])
        expected = to_target[:k]
        found = times[row]
        np.testing.assert_allclose(
            found[np.isfinite(found)],
            expected[np.isfinite(expected)][: np.isfinite(found).sum()],
            atol=1e-9,
        )
        assert np.isfinite(found).sum() == min(k, np.isfinite(to_target).sum())
        for cand, t in zip(which[row], found, strict=True):
            if cand >= 0:
                assert full[cand, engine._index[target]] == pytest.approx(t, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(road_graphs(), st.data())
def test_isochrone_and_matrix(case, data):
    g, closed, factors = case
    engine = engine_for(g, closed, factors)
    nodes = sorted(g.nodes)
    sources = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=3, unique=True))
    within = data.draw(st.floats(0.0, 1500.0))
    iso = engine.isochrone(sources, within)
    dist = engine.many_to_all(sources).min(axis=0)
    assert set(iso.nodes.tolist()) == {
        int(n) for n, d in zip(engine.nodes, dist, strict=True) if d <= within
    }
    origins = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=4))
    dests = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=5))
    full = engine.many_to_all(origins)
    expected = full[:, [engine._index[d] for d in dests]]
    np.testing.assert_allclose(engine.matrix(origins, dests), expected, rtol=0, atol=1e-9)


def test_paths_and_unreachable_places():
    g = nx.MultiDiGraph()
    g.add_edge(1, 2, travel_time=10.0)
    g.add_edge(2, 3, travel_time=10.0)
    g.add_edge(1, 3, travel_time=50.0)
    g.add_edge(1, 3, travel_time=25.0)  # a faster parallel road
    g.add_node(9)
    engine = TravelTimeEngine(g)
    assert engine.path(1, 3) == ([1, 2, 3], 20.0)
    engine.set_speed_factors({(1, 2, 0): 0.25})  # congestion: 40 s instead of 10
    assert engine.path(1, 3) == ([1, 3], 25.0)
    assert engine.travel_time(1, 9) == np.inf
    with pytest.raises(NoRouteError, match="no open road leads from node 1 to node 9"):
        engine.path(1, 9)
    engine.close([(1, 3, 0), (1, 3, 1)], emergency_access=False)  # a flood on the direct road
    assert engine.path(1, 3, emergency=True) == ([1, 2, 3], 50.0)
    engine.close([(1, 2, 0)])  # and a police closure on the other
    assert engine.travel_time(1, 3) == np.inf
    assert engine.path(1, 3, emergency=True) == ([1, 2, 3], 50.0)
    engine.reopen()
    engine.set_speed_factors(None)
    assert engine.path(1, 3) == ([1, 2, 3], 20.0)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda e: e.travel_time(1, 77), "node 77 is not in the road graph"),
        (lambda e: e.nearest([1], [2], k=0), "k must be a whole number"),
        (lambda e: e.isochrone([1], -5), "zero or more seconds"),
        (lambda e: e.set_speed_factors({(1, 2, 0): 0}), "must be a positive number"),
        (lambda e: e.close([(2, 1, 0)]), "edge (2, 1, 0) is not in the road graph"),
        (lambda e: e.travel_time("-123#0", 1), "not made from a city"),
    ],
)
def test_bad_arguments_are_refused_before_the_loop(call, words):
    g = nx.MultiDiGraph()
    g.add_edge(1, 2, travel_time=10.0)
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call(TravelTimeEngine(g))


def test_city_graph_equals_networkx_with_closures_and_speeds(helsinki_city):
    city = helsinki_city
    engine = TravelTimeEngine.from_city(city)
    rng = np.random.default_rng(3)
    edges = list(city.graph.edges(keys=True))
    closed = [edges[i] for i in rng.choice(len(edges), 20, replace=False)]
    factors = {
        edges[i]: float(rng.uniform(0.2, 1.0)) for i in rng.choice(len(edges), 60, replace=False)
    }
    engine.close(closed)
    engine.set_speed_factors(factors)
    weight = weight_fn(dict.fromkeys(closed, True), factors, emergency=False)
    for source in rng.choice(engine.nodes, 10, replace=False):
        ref = nx.single_source_dijkstra_path_length(city.graph, int(source), weight=weight)
        got = engine.one_to_all(int(source))
        expected = np.array([ref.get(int(n), np.inf) for n in engine.nodes])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # emergency vehicles pass a police closure
    weight_em = weight_fn(dict.fromkeys(closed, True), factors, emergency=True)
    src = int(engine.nodes[0])
    ref = nx.single_source_dijkstra_path_length(city.graph, src, weight=weight_em)
    np.testing.assert_allclose(
        engine.one_to_all(src, emergency=True),
        [ref.get(int(n), np.inf) for n in engine.nodes],
        atol=1e-9,
    )


def test_places_on_a_city(helsinki_city):
    engine = TravelTimeEngine.from_city(helsinki_city)
    node = engine.node_of((60.16914, 24.93987))
    g = helsinki_city.graph.nodes[node]
    assert abs(g["y"] - 60.16914) < 0.002 and abs(g["x"] - 24.93987) < 0.004
    sumo_edge = helsinki_city.mapping["sumo_edge"].iloc[0]
    _, v, _ = helsinki_city.graph_edges_of(sumo_edge)[-1]
    assert engine.node_of(sumo_edge) == v
    iso = engine.isochrone((60.16914, 24.93987), 300)
    assert set(iso.sector_share) == set(
        helsinki_city.sectors.index[helsinki_city.sectors["node_count"] > 0]
    )
    assert all(0 <= s <= 1 for s in iso.sector_share.values())


@settings(max_examples=80, deadline=None)
@given(road_graphs(), st.data())
def test_forward_and_backward_nearest_agree(case, data):
    """Many targets use forward searches from the candidates, few use backward early-exit
    searches; both must give the same times (and candidates at those times)."""
    g, closed, factors = case
    engine = engine_for(g, closed, factors)
    nodes = sorted(g.nodes)
    candidates = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=6, unique=True))
    targets = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=12))
    k = data.draw(st.integers(1, 4))
    saved = routing_module.FORWARD_RATIO
    try:
        routing_module.FORWARD_RATIO = 10**9  # always backward
        back_which, back_times = engine.nearest(targets, candidates, k=k)
        routing_module.FORWARD_RATIO = -1  # always forward
        fwd_which, fwd_times = engine.nearest(targets, candidates, k=k)
    finally:
        routing_module.FORWARD_RATIO = saved
    np.testing.assert_allclose(fwd_times, back_times, rtol=0, atol=1e-9)
    full = engine.many_to_all(candidates)
    for which, times in ((fwd_which, fwd_times), (back_which, back_times)):
        for row, target in enumerate(targets):
            for cand, t in zip(which[row], times[row], strict=True):
                if cand >= 0:
                    assert full[cand, engine._index[target]] == pytest.approx(t, abs=1e-9)
                else:
                    assert t == np.inf


@settings(max_examples=100, deadline=None)
@given(road_graphs(), st.booleans(), st.data())
def test_times_to_a_target_equal_networkx_and_follow_closures(case, emergency, data):
    g, closed, factors = case
    engine = TravelTimeEngine(g)
    nodes = sorted(g.nodes)
    target = data.draw(st.sampled_from(nodes))
    before = engine.times_to(target, nodes, emergency=emergency)  # cached from here on
    assert before[nodes.index(target)] == 0.0
    for edge, passenger_only in closed.items():
        engine.close([edge], emergency_access=passenger_only)
    engine.set_speed_factors(factors)
    got = engine.times_to(target, nodes, emergency=emergency)  # the roads changed: searched anew
    rev = nx.reverse_view(g) if g.number_of_edges() else g
    weight = weight_fn(closed, factors, emergency=emergency)
    expected = nx.single_source_dijkstra_path_length(
        rev, target, weight=lambda u, v, d: weight(v, u, {k: g.edges[v, u, k] for k in d})
    )
    want = np.array([expected.get(n, np.inf) for n in nodes])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    engine.reopen()
    engine.set_speed_factors(None)
    np.testing.assert_allclose(
        engine.times_to(target, nodes, emergency=emergency), before, atol=1e-9
    )
