"""Where to put posts: the maximal covering location problem (MCLP).

Choose ``n`` posts among candidate places so that the most demand lies within ``within``
seconds of a post, travelling as an emergency vehicle at free-flow speed. Demand is the
road length around each junction (half of every road touching it), a stand-in for
exposure until incident histories feed it. The engine's travel-time matrix goes to
pysal's spopt (``MCLP.from_cost_matrix``), solved exactly by CBC; :func:`best_by_enumeration`
checks it on small instances.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin._errors import InputError

#: Above this many junctions, candidates are every k-th junction of the main road network.
MAX_CANDIDATES = 1500


@dataclass
class Placement:
    """The chosen posts and what they cover."""

    chosen: list[int]  # graph node ids
    covered_share: float  # of the demand
    today_share: float | None = None  # the same for today's posts, if given
    candidates: int = 0
    demand_nodes: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gain(self) -> float | None:
        return None if self.today_share is None else self.covered_share - self.today_share


def demand_weights(graph: Any, nodes: np.ndarray) -> np.ndarray:
    """Metres of road around each node: half the length of every edge touching it."""
    weight = dict.fromkeys(int(n) for n in nodes)
    weight = {n: 0.0 for n in weight}
    for u, v, data in graph.edges(data=True):
        weight[int(u)] += data["length"] / 2
        weight[int(v)] += data["length"] / 2
    return np.array([weight[int(n)] for n in nodes])


def place_posts(
    city: Any,
    n: int,
    within_s: float,
    *,
    candidates: list[int] | None = None,
    today: list[int] | None = None,
    engine: Any = None,
) -> Placement:
    """Choose ``n`` posts among ``candidates`` (graph nodes; default: the main road network)
    to cover the most demand within ``within_s`` seconds."""
    import networkx as nx
    import pulp
    from spopt.locate import MCLP

    from twin.routing import TravelTimeEngine

    if int(n) != n or n < 1:
        raise InputError(f"--n must be a whole number of posts, at least 1, got {n!r}")
    if within_s <= 0:
        raise InputError(f"--within must be positive, got {within_s} s")
    engine = engine or TravelTimeEngine.from_city(city)
    if candidates is None:
        main = sorted(max(nx.strongly_connected_components(city.graph), key=len))
        step = max(1, len(main) // MAX_CANDIDATES)
        candidates = main[::step]
    candidates = sorted(set(candidates))
    if n > len(candidates):
        raise InputError(f"--n {n}: only {len(candidates)} candidate places")
    demand_nodes = engine.nodes
    weights = demand_weights(city.graph, demand_nodes)
    times = engine.matrix(candidates, demand_nodes, emergency=True)  # (candidates, demand)
    with warnings.catch_warnings():  # spopt uses PuLP's old variable API (pinned below 4)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulp")
        model = MCLP.from_cost_matrix(
            np.nan_to_num(times.T, posinf=1e12),
            weights,
            service_radius=within_s,
            p_facilities=int(n),
        )
        model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[model.problem.status] != "Optimal":
        raise InputError(
            f"the placement problem has no optimal solution ({pulp.LpStatus[model.problem.status]})"
        )
    picked = [
        j for j, var in enumerate(model.fac_vars) if var.value() is not None and var.value() > 0.5
    ]
    result = Placement(
        chosen=[candidates[j] for j in picked],
        covered_share=covered_share(times[picked], weights, within_s),
        candidates=len(candidates),
        demand_nodes=len(demand_nodes),
    )
    if today:
        today_times = engine.matrix(sorted(set(today)), demand_nodes, emergency=True)
        result.today_share = covered_share(today_times, weights, within_s)
    for node in result.chosen:
        data = city.graph.nodes[node]
        names = sorted({d["name"] for *_, d in city.graph.edges(node, data=True) if d["name"]})
        result.details.append(
            {"node": node, "lat": data["y"], "lon": data["x"], "streets": ", ".join(names[:2])}
        )
    return result


def covered_share(times: np.ndarray, weights: np.ndarray, within_s: float) -> float:
    """Share of the demand within ``within_s`` of at least one of the rows' posts."""
    if times.size == 0:
        return 0.0
    covered = (times <= within_s).any(axis=0)
    return float(weights[covered].sum() / weights.sum())


def best_by_enumeration(
    times: np.ndarray, weights: np.ndarray, within_s: float, n: int
) -> tuple[tuple[int, ...], float]:
    """The exact optimum by trying every set of ``n`` candidates (small instances only)."""
    reach = times <= within_s
    best, best_value = (), -1.0
    for combo in itertools.combinations(range(times.shape[0]), n):
        value = float(weights[reach[list(combo)].any(axis=0)].sum())
        if value > best_value:
            best, best_value = combo, value
    return best, best_value
