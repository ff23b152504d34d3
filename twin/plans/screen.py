"""The theory that screens ``twin optimise``'s plan space before any simulation.

- :class:`CallScreen`: each pool an Erlang A queue (callers who hang up, some who redial),
  hour by hour of the run: the share answered within the target for a number of
  call-takers (Erlang C where callers never hang up).
- :class:`FleetScreen`: each kind of unit (police, ambulance, fire) Larson's hypercube over
  the city's sectors, its units ordered by travel time from their bases: the share of
  incidents each unit serves and the share that waits; with the travel times from each base
  to each junction, the share reached within the target.
- :func:`screen`: every combination of call-takers per pool, units per group and new posts
  (sited by MCLP, :mod:`twin.plans.posts`), priced with the plan's cost table and
  predicted; :meth:`Screen.candidates` keeps the few worth simulating.

The screen is a model of the simulation, not of the city: it assumes Poisson calls,
exponential times, units on duty for the whole run and dispatch to the closest free unit at
free-flow emergency speed. Duplicate calls about one incident come in bursts, and traffic
slows units: where that matters the simulation's figures differ, and decide.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from twin._errors import InputError
from twin.scenario import Scenario
from twin.scenario.plan import Costs, Plan, apply_overlay, shift_hours
from twin.scenario.response import DEFAULT_TYPES, NEEDS, incident_type

#: The hypercube is solved exactly up to this many units in a fleet; above, with the
#: independence approximation (each unit busy alike, independently).
EXACT_UNITS = 8

#: The most combinations of unit counts the screen prices for one fleet.
MAX_COMBINATIONS = 4000


@dataclass(frozen=True)
class Goal:
    """The targets a plan must meet."""

    answer_s: float
    answer_share: float
    on_scene_s: float
    on_scene_share: float

    def said(self) -> str:
        return (
            f"calls answered within {self.answer_s:g} s for ≥ {self.answer_share:.0%}, "
            f"a unit on scene within {self.on_scene_s / 60:g} min for ≥ {self.on_scene_share:.0%}"
        )


@dataclass
class Option:
    """One point of the plan space as the screen sees it."""

    pools: dict[str, int]
    units: dict[str, int]  # unit group -> count (0: the group is left out)
    posts: int  # new posts, each with one unit
    cost: float  # rupiah over the run
    answer: float  # predicted share answered within target
    on_scene: float  # predicted share reached within target

    def margin(self, goal: Goal) -> float:
        return min(self.answer - goal.answer_share, self.on_scene - goal.on_scene_share)


# -- the call centre: Erlang A per pool, hour by hour ------------------------------------------


def _hours(scenario: Scenario) -> list[tuple[int, float]]:
    """The run cut at local hours: (hour of day, seconds of the run within it)."""
    t, end = scenario.start, scenario.start + timedelta(seconds=scenario.duration)
    out = []
    while t < end:
        nxt = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        out.append((t.hour, (min(nxt, end) - t).total_seconds()))
        t = nxt
    return out


class CallScreen:
    """Each pool's calls, hour by hour, and the share answered within the target for a
    number of call-takers (Erlang A, or Erlang C where callers never hang up)."""

    def __init__(self, scenario: Scenario) -> None:
        from twin.response.component import DEFAULT_HANDLING

        response = scenario.response
        assert response is not None
        centre = response.call_centre
        self.target_s = float(response.targets.answer_s)
        self.redial = centre.redial
        self.abandon_rate = None if centre.patience is None else 1 / float(centre.patience.mean)
        pool_of = {n: p.name for p in centre.pools for n in p.numbers}
        extra = _extra_incidents(scenario)
        self.rates: dict[str, list[tuple[float, float]]] = {p.name: [] for p in centre.pools}
        talk: dict[str, dict[str, float]] = {p.name: {} for p in centre.pools}
        for hour, seconds in _hours(scenario):
            per_pool = dict.fromkeys(self.rates, 0.0)
            for kind in DEFAULT_TYPES:
                spec = incident_type(kind, response.incidents.types.get(kind))  # type: ignore[arg-type]
                rate = response.incidents.rate(kind, hour) / 3600 + extra.get(kind, 0.0)
                calls = rate * (1 + spec.extra_calls)
                for number, share in (
                    (spec.number, 1 - centre.share_112),
                    ("112", centre.share_112),
                ):
                    pool = pool_of[number]
                    per_pool[pool] += calls * share
                    talk[pool][number] = talk[pool].get(number, 0.0) + calls * share * seconds
            for pool, rate in per_pool.items():
                self.rates[pool].append((seconds, rate))
        self.talk_s: dict[str, float] = {}
        for pool, weights in talk.items():
            total = sum(weights.values())
            mean = {
                n: float(centre.handling[n].mean) if n in centre.handling else DEFAULT_HANDLING[n]  # type: ignore[index]
                for n in DEFAULT_HANDLING
            }
            self.talk_s[pool] = (
                sum(w * mean[n] for n, w in weights.items()) / total if total else 90.0
            )

    def calls(self, pool: str) -> float:
        """Callers over the run (first attempts)."""
        return sum(s * r for s, r in self.rates[pool])

    def pool(self, pool: str, call_takers: int) -> tuple[float, float]:
        """(share of callers answered within the target, mean wait in seconds)."""
        from twin.response.queueing import erlang_a, erlang_c

        mu = 1 / self.talk_s[pool]
        answered = waited = weight = 0.0
        for seconds, rate in self.rates[pool]:
            if rate <= 0:
                continue
            if self.abandon_rate is None:
                try:
                    c = erlang_c(arrival_rate=rate, service_rate=mu, servers=call_takers)
                    share, wait = c.service_level(self.target_s), c.mean_wait_s
                except InputError:  # the queue grows without end
                    share, wait = 0.0, 3600.0
            else:
                effective = rate  # redials add calls: iterate to the fixed point
                for _ in range(20):
                    a = erlang_a(
                        arrival_rate=effective,
                        service_rate=mu,
                        servers=call_takers,
                        abandon_rate=self.abandon_rate,
                    )
                    nxt = rate / max(1 - a.p_abandon * self.redial, 1e-6)
                    if abs(nxt - effective) < 1e-9 * rate:
                        break
                    effective = nxt
                # per caller: each attempt that is answered in time counts once
                share = min(1.0, a.service_level(self.target_s) * effective / rate)
                wait = a.mean_wait_s
            answered += seconds * rate * share
            waited += seconds * rate * wait
            weight += seconds * rate
        return (answered / weight, waited / weight) if weight else (1.0, 0.0)


def _extra_incidents(scenario: Scenario) -> dict[str, float]:
    """Scripted incidents and accidents among the road events, as a rate over the run."""
    response = scenario.response
    assert response is not None
    counts: dict[str, float] = {}
    for inc in response.incidents.scripted:
        counts[inc.type] = counts.get(inc.type, 0) + 1
    if response.incidents.from_road_events:
        accidents = sum(1 for e in scenario.events if e.type == "accident")
        if accidents:
            counts["traffic_accident"] = counts.get("traffic_accident", 0) + accidents
    return {k: v / scenario.duration for k, v in counts.items()}


# -- the fleets: Larson's hypercube over the sectors ----------------------------------------------


class FleetScreen:
    """For each kind of unit (police, ambulance, fire): the share of incidents reached
    within the target by a fleet of units at given bases."""

    def __init__(
        self,
        scenario: Scenario,
        city: Any,
        bases: dict[str, list[int]],
        *,
        delay_s: float,
    ) -> None:
        import networkx as nx

        from twin.routing import TravelTimeEngine

        response = scenario.response
        assert response is not None
        self.scenario, self.response = scenario, response
        self.bases = bases  # unit group -> base node of its unit 1, 2, ...
        self.types = {g.name: g.type for g in response.units}
        engine = TravelTimeEngine.from_city(city)
        nodes = engine.nodes
        sectors = np.asarray(engine.node_sectors())
        joined = max(nx.strongly_connected_components(city.graph), key=len)
        length: dict[int, float] = {}
        for u, v, data in city.graph.edges(data=True):
            half = float(data.get("length", 0.0)) / 2
            length[u] = length.get(u, 0.0) + half
            length[v] = length.get(v, 0.0) + half
        weights = response.incidents.sector_weights
        w = np.array(
            [
                length.get(int(n), 0.0) * weights.get(str(s), 1.0) * (int(n) in joined)
                for n, s in zip(nodes, sectors, strict=True)
            ]
        )
        if not w.sum() > 0:
            w = np.ones(len(nodes))
        keep = w > 0
        self.atoms = sorted({str(s) for s in sectors[keep]})
        atom_of = np.array(
            [self.atoms.index(str(s)) if k else -1 for s, k in zip(sectors, keep, strict=True)]
        )
        self.atom_w = np.array([w[atom_of == j].sum() for j in range(len(self.atoms))])
        self.atom_w /= self.atom_w.sum()
        speed = response.dispatch.speed_factor
        base_nodes = sorted({n for group in bases.values() for n in group})
        times = engine.matrix(base_nodes, [int(n) for n in nodes[keep]], emergency=True) / speed
        times = np.where(np.isfinite(times), times, 1e9)
        wk, ak = w[keep], atom_of[keep]
        self.delay_s = delay_s
        target = float(response.targets.on_scene_s)
        self.mean_travel: dict[int, np.ndarray] = {}  # base -> per atom
        self.in_time: dict[int, np.ndarray] = {}  # base -> per atom: share of its demand
        for i, b in enumerate(base_nodes):
            t = times[i]
            mean = np.zeros(len(self.atoms))
            hit = np.zeros(len(self.atoms))
            for j in range(len(self.atoms)):
                sel = ak == j
                ww = wk[sel] / wk[sel].sum()
                mean[j] = float((np.minimum(t[sel], 3 * 3600) * ww).sum())
                hit[j] = float(ww[delay_s + t[sel] <= target].sum())
            self.mean_travel[b], self.in_time[b] = mean, hit
        hours = scenario.duration / 3600
        extra = _extra_incidents(scenario)
        # per need: unit jobs per second, incidents per second it is first for, time on scene
        self.jobs: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self.on_scene: dict[str, float] = {}
        for need in NEEDS:
            jobs = first = scene = 0.0
            for kind in DEFAULT_TYPES:
                spec = incident_type(kind, response.incidents.types.get(kind))  # type: ignore[arg-type]
                rate = sum(
                    response.incidents.rate(kind, h) * s for h, s in _hours(scenario)
                ) / 3600 / (hours * 3600) + extra.get(kind, 0.0)
                n = spec.needs.get(need, 0) + spec.may_need.get(need, 0.0)
                jobs += rate * n
                scene += rate * n * float(spec.on_scene.mean)
                if spec.needs and sorted(spec.needs, key=lambda k: -spec.needs[k])[0] == need:
                    first += rate
            self.jobs[need], self.first[need] = jobs, first
            self.on_scene[need] = scene / jobs if jobs else 0.0
        self.turnout = float(response.dispatch.turnout.mean)

    def need_of(self, group: str) -> str:
        return next(n for n, types in NEEDS.items() if self.types[group] in types)

    def share(self, need: str, units: dict[str, int], posts: list[int] | None = None) -> float:
        """Predicted share of the incidents ``need`` is first for, reached within the
        target, with ``units`` (group -> count) and one unit at each of ``posts``."""
        from twin.response.queueing import hypercube

        fleet = [b for g, k in units.items() if self.need_of(g) == need for b in self.bases[g][:k]]
        fleet += list(posts or [])
        lam = self.jobs[need]
        if not lam:
            return 1.0
        if not fleet:
            return 0.0
        travel = np.array([self.mean_travel[b] for b in fleet])  # [unit, atom]
        closest = travel.min(axis=0)
        service = self.turnout + self.on_scene[need] + 2 * float(closest @ self.atom_w)
        mu, n = 1 / service, len(fleet)
        prefs = [list(np.lexsort((np.arange(n), travel[:, j]))) for j in range(len(self.atoms))]
        load = lam / (n * mu)
        if load >= 1:  # the queue grows without end: in theory, nobody in time
            return 0.0
        if n <= EXACT_UNITS:
            cube = hypercube(
                arrival_rates=list(lam * self.atom_w),
                preferences=prefs,
                service_rate=mu,
                queue_cap=200,
            )
            share = cube.dispatch_share - cube.p_all_busy / n  # the queued wait: late
        else:  # each unit busy with the fleet's load, independently
            share = np.zeros((len(self.atoms), n))
            for j, pref in enumerate(prefs):
                for rank, u in enumerate(pref):
                    share[j, u] = load**rank * (1 - load)
        hit = np.array([self.in_time[b] for b in fleet]).T  # [atom, unit]
        return float(self.atom_w @ (np.clip(share, 0, 1) * hit).sum(axis=1))


# -- the screen: every combination, priced -----------------------------------------------------


@dataclass
class Screen:
    """The plan space, priced and predicted (see the module docstring)."""

    goal: Goal
    options: list[Option]
    post_sites: dict[int, list[dict[str, Any]]]  # number of posts -> their sites
    pool_options: dict[str, list[tuple[int, float]]]  # pool -> (call-takers, share)
    notes: list[str] = field(default_factory=list)
    calls: CallScreen | None = None
    fleets: FleetScreen | None = None

    def predict(self, option: Option) -> Option:
        """``option`` with the theory's two shares (for a plan the screen did not price,
        such as the scenario as it is)."""
        assert self.calls is not None and self.fleets is not None
        weight = {p: self.calls.calls(p) for p in option.pools}
        total = sum(weight.values()) or 1.0
        answer = sum(w * self.calls.pool(p, option.pools[p])[0] for p, w in weight.items()) / total
        first = sum(self.fleets.first.values()) or 1.0
        posts = [int(d["node"]) for d in self.post_sites.get(option.posts, [])]
        on_scene = (
            sum(
                self.fleets.first[need]
                * self.fleets.share(need, option.units, posts if need == "police" else None)
                for need in NEEDS
            )
            / first
        )
        option.answer, option.on_scene = answer, on_scene
        return option

    def step_up(
        self, failed: list[tuple[Option, set[str]]], n: int, tried: list[Option]
    ) -> list[Option]:
        """A later round: for each plan that failed a target (those that failed one
        target before those that failed both, then the cheapest first), the
        cheapest plan not yet tried that the theory puts at least as high on both shares
        and higher on the one it failed."""
        seen = {_key(o) for o in tried}
        picked: list[Option] = []
        for o, failing in sorted(failed, key=lambda f: (len(f[1]), f[0].cost)):
            up = [
                x
                for x in self.options
                if _key(x) not in seen
                and x.cost > o.cost
                and x.answer >= o.answer - 1e-9
                and x.on_scene >= o.on_scene - 1e-9
                and ("answered" not in failing or x.answer > o.answer + 1e-9)
                and ("on_scene" not in failing or x.on_scene > o.on_scene + 1e-9)
            ]
            if up:
                best = min(up, key=lambda x: (x.cost, -x.margin(self.goal)))
                picked.append(best)
                seen.add(_key(best))
            if len(picked) >= n:
                break
        return sorted(picked, key=lambda o: o.cost)

    def candidates(self, n: int, *, today: Option | None = None) -> list[Option]:
        """The first round: the cheapest option that meets the goal in theory, the
        cheapest with 3 and 6 points to spare, and the best of those cheaper than it."""
        ranked = sorted(self.options, key=lambda o: (o.cost, -o.margin(self.goal)))
        seen = {_key(today)} if today else set()
        picked: list[Option] = []

        def take(o: Option | None) -> None:
            if o is not None and _key(o) not in seen and len(picked) < n:
                picked.append(o)
                seen.add(_key(o))

        first = next((o for o in ranked if o.margin(self.goal) >= 0), None)
        take(first)
        for step in (0.03, 0.06):
            take(next((o for o in ranked if o.margin(self.goal) >= step), None))
        cheaper = [o for o in ranked if first is None or o.cost < first.cost]
        for o in sorted(cheaper, key=lambda o: -o.margin(self.goal)):
            take(o)
            if len(picked) >= n:
                break
        return sorted(picked, key=lambda o: o.cost)


def _key(o: Option) -> str:
    return json.dumps([o.pools, o.units, o.posts], sort_keys=True)


def screen(
    scenario: Scenario,
    city: Any,
    goal: Goal,
    costs: Costs,
    *,
    scenario_dir: Path,
    max_units: int = 6,
    posts: int = 0,
    post_unit: str = "police_car",
) -> Screen:
    """Price and predict every combination of call-takers per pool, units per group (each
    from 0 to ``max_units`` more than today; a kind of unit never drops to none) and
    0 to ``posts`` new posts (see the module docstring)."""
    from twin.city.places import resolve_response

    response = scenario.response
    if response is None:
        raise InputError(f"{scenario.name}: no response section, so nothing to optimise")
    hours = scenario.duration / 3600
    calls = CallScreen(scenario)
    pool_options: dict[str, list[tuple[int, float]]] = {}
    waits: dict[str, float] = {}
    for pool in response.call_centre.pools:
        found: list[tuple[int, float]] = []
        for c in range(1, 1001):
            share, wait = calls.pool(pool.name, c)
            found.append((c, share))
            if share >= goal.answer_share and (pool.name not in waits):
                waits[pool.name] = wait
            if share >= max(goal.answer_share + 0.08, 0.999) or share >= 0.9999:
                break
        keep = [i for i, (_c, s) in enumerate(found) if s >= goal.answer_share]
        first = keep[0] if keep else len(found) - 1
        pool_options[pool.name] = found[max(0, first - 2) : first + 4]
        waits.setdefault(pool.name, 0.0)
    # the delay before a unit turns out: waiting, talking, turning out (110's pool)
    pool_110 = next(p.name for p in response.call_centre.pools if "110" in p.numbers)
    delay = waits[pool_110] + calls.talk_s[pool_110] + float(response.dispatch.turnout.mean)
    # every group at its largest count, to learn where unit k of each group is based
    most = {g.name: g.count + max_units for g in response.units}
    widest = apply_overlay(
        scenario,
        {"response": {"units": [{"name": n, "count": k} for n, k in most.items()]}},
        name="widest",
    )
    resolved = resolve_response(widest, city, folder=scenario_dir)
    assert resolved is not None
    bases: dict[str, list[int]] = {g: [] for g in most}
    for unit in resolved.units:
        bases[unit.id.rsplit("-", 1)[0]].append(unit.base)
    sites: dict[int, list[dict[str, Any]]] = {0: []}
    if posts:
        from twin.plans.posts import place_posts

        today = sorted({u.base for u in resolved.units if u.type in NEEDS["police"]})
        for k in range(1, posts + 1):
            placed = place_posts(city, k, max(goal.on_scene_s - delay, 60.0), today=today)
            sites[k] = placed.details
    post_nodes = {k: [int(d["node"]) for d in v] for k, v in sites.items()}
    bases_all = dict(bases)
    bases_all.update({f"_post{k}": nodes for k, nodes in post_nodes.items() if nodes})
    fleets = FleetScreen(scenario, city, bases_all, delay_s=delay)
    unit_cost = {
        g.name: shift_hours(scenario, g.shift) * costs.unit_hour.get(g.type, 0.0)  # type: ignore[call-overload]
        for g in response.units
    }
    post_cost = costs.post_day * max(hours / 24, 1 / 24) + hours * costs.unit_hour.get(
        post_unit,  # type: ignore[call-overload]
        0.0,
    )
    # per need: the frontier of (cost, share) over the counts of its groups (and posts)
    frontiers: dict[str, list[tuple[float, float, dict[str, int], int]]] = {}
    notes: list[str] = []
    total_first = sum(fleets.first.values()) or 1.0
    for need in NEEDS:
        groups = [g.name for g in response.units if fleets.need_of(g.name) == need]
        if not groups:
            continue
        ranges = [range(0, most[g] + 1) for g in groups]
        combos = list(itertools.product(*ranges))
        if len(combos) > MAX_COMBINATIONS:
            today = {g.name: g.count for g in response.units}
            ranges = [range(max(0, today[g] - 2), min(most[g], today[g] + 3) + 1) for g in groups]
            combos = list(itertools.product(*ranges))[:MAX_COMBINATIONS]
            notes.append(f"{need}: counts searched within 2 below and 3 above today's")
        post_counts = range(posts + 1) if need == "police" and post_unit in NEEDS[need] else [0]
        points = []
        for combo in combos:
            for k in post_counts:
                if not sum(combo) and not k:
                    continue
                units = dict(zip(groups, combo, strict=True))
                price = sum(unit_cost[g] * c for g, c in units.items()) + k * post_cost
                share = fleets.share(need, units, post_nodes.get(k))
                points.append((price, share, units, k))
        points.sort(key=lambda p: (p[0], -p[1]))
        frontier, best = [], -1.0
        for p in points:
            if p[1] > best + 1e-9:
                frontier.append(p)
                best = p[1]
        frontiers[need] = frontier
    pool_names = list(pool_options)
    call_weight = {p: calls.calls(p) for p in pool_names}
    call_total = sum(call_weight.values()) or 1.0
    options: list[Option] = []
    need_names = list(frontiers)
    for pools in itertools.product(*(pool_options[p] for p in pool_names)):
        answer = (
            sum(call_weight[p] * s for p, (_c, s) in zip(pool_names, pools, strict=True))
            / call_total
        )
        pool_cost = sum(c for c, _s in pools) * hours * costs.call_taker_hour
        for fleet in itertools.product(*(frontiers[n] for n in need_names)):
            posts_used = sum(f[3] for f in fleet)
            units: dict[str, int] = {}
            for f in fleet:
                units.update(f[2])
            on_scene = (
                sum(fleets.first[n] * f[1] for n, f in zip(need_names, fleet, strict=True))
                / total_first
            )
            options.append(
                Option(
                    pools={p: c for p, (c, _s) in zip(pool_names, pools, strict=True)},
                    units=units,
                    posts=posts_used,
                    cost=pool_cost + sum(f[0] for f in fleet),
                    answer=answer,
                    on_scene=on_scene,
                )
            )
    return Screen(goal, options, sites, pool_options, notes, calls, fleets)


def option_plan(
    scenario: Scenario,
    option: Option,
    costs: Costs,
    sites: dict[int, list[dict[str, Any]]],
    *,
    post_unit: str,
    name: str | None = None,
) -> Plan:
    """The plan an option stands for: its overrides, a name that says what it holds, and
    a description in words."""
    response = scenario.response
    assert response is not None
    pools = [{"name": p, "call_takers": c} for p, c in option.pools.items()]
    units: list[dict[str, Any]] = [
        {"name": g, "remove": True} if c == 0 else {"name": g, "count": c}
        for g, c in option.units.items()
    ]
    for i, site in enumerate(sites.get(option.posts, []), start=1):
        units.append(
            {
                "name": f"post-{i}",
                "type": post_unit,
                "count": 1,
                "base": {"lat": round(site["lat"], 6), "lon": round(site["lon"], 6)},
            }
        )
    words = [f"{c} call-taker{'s' if c > 1 else ''} ({p})" for p, c in option.pools.items()]
    words += [f"{g} ×{c}" if c else f"no {g}" for g, c in option.units.items()]
    if option.posts:
        words.append(f"{option.posts} new post{'s' if option.posts > 1 else ''}")
    auto = "-".join(
        [f"c{c}" for c in option.pools.values()]
        + [f"{g.lower()}{c}" for g, c in option.units.items()]
        + ([f"post{option.posts}"] if option.posts else [])
    )
    return Plan(
        name=name or (auto if len(auto) <= 50 else f"option-{abs(hash(auto)) % 10**6}"),
        description=", ".join(words),
        costs=costs,
        overrides={"response": {"call_centre": {"pools": pools}, "units": units}},
        source="twin optimise",
    )
