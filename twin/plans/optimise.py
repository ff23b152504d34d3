"""``twin optimise``: the cheapest plan that meets the targets, with 95 % confidence.

The doctrine's targets: 110 answered within 10 s for at least 90 % of calls, a unit on
scene within 10 minutes of the call for at least 90 % of incidents (or the scenario's own
``response.targets``). The search space: call-takers per pool, units per group (a type at
a base), and new posts at the best sites.

Simulating every point of that space is out of reach, so the search runs in two stages:

1. **The theory screens** (:mod:`twin.plans.screen`). Each pool is an Erlang A queue (callers who
   hang up, some who redial), solved for the share answered within the target, hour by
   hour of the run. Each fleet (police, ambulance, fire) is Larson's hypercube over the
   city's sectors, its units ordered by travel time from their bases, which gives the
   share of incidents each unit serves and the share that must wait; with the travel
   times from each base to each junction, that gives the share reached within the
   target. New posts go where the maximal covering location problem (MCLP) puts them.
   The screen costs every combination and keeps the few worth simulating: the cheapest
   that the theory says meets the targets, a margin above it, and the best of those just
   below it.
2. **Simulation confirms** (:func:`twin.plans.ensemble.evaluate`). The candidates run as
   an ensemble with common random numbers against the scenario as it is. A candidate
   *meets* a target when the lower end of its KPI's 95 % interval is at or above it;
   where none does, a second round tries richer candidates.

The result (:class:`Optimisation`) names the chosen plan with its cost and its KPIs with
intervals, the cheapest plan that just misses, and the frontier of cost against the
shares; the folder holds each round's ensemble (``round-1/`` ...), ``chosen.yaml`` (a
plan file: ``twin evaluate SCENARIO --plan chosen.yaml`` runs it again), ``optimise.json``
and ``report.html``.

The screen is a model of the simulation, not of the city (its assumptions are in
:mod:`twin.plans.screen`): where they fail, the simulation's figures decide, and the
report shows both.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin._errors import InputError
from twin.plans.readiness import load_inventory
from twin.plans.screen import Goal, Option, option_plan, screen
from twin.scenario import Scenario, load_scenario
from twin.scenario.plan import Costs, Plan, cost

#: The KPIs the targets are judged on.
ANSWER, ON_SCENE = "answered_in_target", "on_scene_in_target"

# -- the search: screen, simulate, choose --------------------------------------------------------


@dataclass
class Optimisation:
    """What :func:`optimise` found (see the module docstring)."""

    path: Path
    goal: Goal
    candidates: list[dict[str, Any]]  # every plan simulated, cheapest first, with verdicts
    chosen: dict[str, Any] | None
    just_misses: dict[str, Any] | None
    rounds: list[Path]
    info: dict[str, Any]


def goal_of(
    scenario: Scenario, *, answer_share: float | None = None, on_scene_share: float | None = None
) -> Goal:
    """The scenario's targets, with the shares given instead where given."""
    if scenario.response is None:
        raise InputError(f"{scenario.name}: no response section, so no targets to meet")
    t = scenario.response.targets
    return Goal(
        float(t.answer_s),
        answer_share if answer_share is not None else t.answer_share,
        float(t.on_scene_s),
        on_scene_share if on_scene_share is not None else t.on_scene_share,
    )


def optimise(
    scenario_path: str | Path,
    *,
    answer_share: float | None = None,
    on_scene_share: float | None = None,
    costs: Costs | None = None,
    max_units: int = 6,
    posts: int = 0,
    post_unit: str = "police_car",
    candidates: int = 5,
    rounds: int = 3,
    replications: int = 10,
    max_replications: int = 40,
    workers: int | None = None,
    scheduler: str | None = None,
    out: Path | None = None,
    inventory: str | Path | None = None,
    progress: bool = True,
) -> Optimisation:
    """Find the cheapest plan that meets the targets with 95 % confidence (see the module
    docstring).

    Raises
    ------
    ScenarioError, InputError
        The scenario is invalid, or has no response to plan; nothing is written.
    """
    from twin._files import replacing_folder
    from twin.plans.ensemble import evaluate
    from twin.runs.run import check_scenario, load_city

    scenario_path = Path(scenario_path)
    scenario = load_scenario(scenario_path)
    scenario_dir = scenario_path.resolve().parent
    check_search(rounds, candidates, replications, max_replications)
    if not 0 <= posts <= 10:
        raise InputError(f"--posts: between 0 and 10 new posts, got {posts}")
    if not 0 <= max_units <= 20:
        raise InputError(f"--max-units: between 0 and 20 more units per group, got {max_units}")
    if post_unit not in ("police_car", "motorbike"):
        raise InputError(f"--post-unit: police_car or motorbike, not {post_unit!r}")
    goal = goal_of(scenario, answer_share=answer_share, on_scene_share=on_scene_share)
    stock = load_inventory(inventory) if inventory is not None else None
    costs = costs or Costs()
    city = load_city(scenario, scenario_dir=scenario_dir)
    check_scenario(scenario, city, scenario_dir=scenario_dir, source=str(scenario_path))
    space = screen(
        scenario,
        city,
        goal,
        costs,
        scenario_dir=scenario_dir,
        max_units=max_units,
        posts=posts,
        post_unit=post_unit,
    )
    today = space.predict(_today(scenario, costs))
    out = out or Path("runs") / f"{scenario.name}-optimise"
    started = time.perf_counter()
    tried: list[Option] = []
    judged: dict[str, tuple[Option, dict[str, Any]]] = {}
    readiness: dict[str, Any] = {}
    round_paths: list[Path] = []
    with replacing_folder(out, marker="optimise.json", what="an optimisation folder") as tmp:
        reps = replications
        for r in range(1, rounds + 1):
            if r == 1:
                picked = space.candidates(candidates, today=today)
            else:
                # plans whose intervals still hold a target: again, with twice the
                # replications (the cheapest first); and richer plans where one missed
                again = [
                    o
                    for o, x in sorted(judged.values(), key=lambda j: j[1]["cost"])
                    if x["plan"] != "baseline" and _unclear(x) and _cheaper_than_chosen(x, judged)
                ][: max(1, candidates // 2)]
                if again and reps < max_replications:
                    reps = min(max_replications, 2 * reps)
                else:
                    again = []
                failed = [
                    (o, {k for k in ("answered", "on_scene") if x[f"{k}_verdict"] == "misses"})
                    for o, x in judged.values()
                    if any(x[f"{k}_verdict"] == "misses" for k in ("answered", "on_scene"))
                ]
                picked = again + space.step_up(failed, candidates - len(again), [today, *tried])
            if not picked:
                break
            plans = [
                option_plan(scenario, o, costs, space.post_sites, post_unit=post_unit)
                for o in picked
            ]
            for plan in plans:
                check_scenario(
                    plan.apply(scenario), city, scenario_dir=scenario_dir, source=plan.name
                )
            result = evaluate(
                scenario_path,
                plans,
                replications=reps,
                workers=workers,
                scheduler=scheduler,
                out=tmp / f"round-{r}",
                progress=progress,
                baseline=r == 1,
                inventory=stock,
            )
            readiness.update(result.info.get("readiness", {}))
            round_paths.append(out / f"round-{r}")
            if r == 1:
                judged["baseline"] = (
                    today,
                    _judged(result, "baseline", today, goal, None, out / "round-1"),
                )
            for o, plan in zip(picked, plans, strict=True):  # a plan run again: its latest
                judged[plan.name] = (
                    o,
                    _judged(result, plan.name, o, goal, plan, out / f"round-{r}"),
                )
            tried += picked
            if result.interrupted:
                break
            best = next(
                (x for _o, x in sorted(judged.values(), key=lambda j: j[1]["cost"]) if x["meets"]),
                None,
            )
            if best is not None and not any(
                _unclear(x) and x["cost"] < best["cost"] for _o, x in judged.values()
            ):
                break  # the cheapest plan that meets, and nothing cheaper left to tell
        results = [x for _o, x in judged.values()]
        results.sort(key=lambda x: (x["cost"], x["plan"]))
        chosen = next((x for x in results if x["meets"]), None)
        cheaper = [
            x for x in results if not x["meets"] and (chosen is None or x["cost"] < chosen["cost"])
        ]
        just = (
            max(cheaper, key=lambda x: (x["cost"], x["margin"]))
            if chosen
            else max(cheaper, key=lambda x: x["margin"], default=None)
        )
        frontier = sorted(
            ({"cost": o.cost, "answer": o.answer, "on_scene": o.on_scene} for o in space.options),
            key=lambda p: p["cost"],
        )
        info = {
            "scenario": scenario.name,
            "scenario_file": str(scenario_path),
            "goal": goal.__dict__,
            "said": goal.said(),
            "space": {
                "pools": {p: [c for c, _s in v] for p, v in space.pool_options.items()},
                "max_units": max_units,
                "posts": posts,
                "post_unit": post_unit,
                "options": len(space.options),
                "notes": space.notes,
            },
            "replications": replications,
            "max_replications": max_replications,
            "rounds": [p.name for p in round_paths],
            "candidates": results,
            "chosen": chosen,
            "just_misses": just,
            "frontier": _thin(frontier),
            "costs": costs.model_dump(),
            "wall_s": round(time.perf_counter() - started, 1),
        }
        if stock is not None:  # the chosen plan's, beside the scenario as it is
            pick = chosen or just  # the chosen plan's, or the closest one's
            shown = ["baseline", *([pick["plan"]] if pick and pick["plan"] != "baseline" else [])]
            info["readiness"] = {n: readiness[n] for n in shown if n in readiness}
        if chosen is not None and chosen["plan"] != "baseline":
            doc = {
                "name": chosen["plan"],
                "description": chosen["description"],
                "costs": costs.model_dump(),
                **chosen["overrides"],
            }
            _write_yaml(tmp / "chosen.yaml", doc)
        (tmp / "optimise.json").write_text(
            json.dumps(info, indent=1, default=str), encoding="utf-8"
        )
        from twin.plans.optimise_report import optimise_report

        optimise_report(tmp, info)
    return Optimisation(out, goal, results, chosen, just, round_paths, info)


def check_search(rounds: int, candidates: int, replications: int, max_replications: int) -> None:
    """The search's own options, or an InputError naming the one out of range."""
    if not 1 <= rounds <= 10:
        raise InputError(f"--rounds: between 1 and 10, got {rounds}")
    if not 1 <= candidates <= 20:
        raise InputError(f"--candidates: between 1 and 20, got {candidates}")
    if not 2 <= replications <= 1000:
        raise InputError(
            f"--replications: between 2 and 1000 (an interval needs two), got {replications}"
        )
    if not replications <= max_replications <= 10_000:
        raise InputError(
            f"--max-replications: at least --replications ({replications}), got {max_replications}"
        )


def verdict(mean: float | None, half: float | None, target: float) -> str:
    """A share against its target with 95 % confidence: meets (the whole interval at or
    above it), misses (the whole interval below), unclear (the interval holds it), or
    unknown (no figure)."""
    if mean is None:
        return "unknown"
    if half is not None and mean - half >= target:
        return "meets"
    if half is not None and mean + half < target:
        return "misses"
    return "unclear"


def _unclear(x: dict[str, Any]) -> bool:
    """A plan that misses no target, but whose interval still holds one."""
    verdicts = [x[f"{k}_verdict"] for k in ("answered", "on_scene")]
    return "unclear" in verdicts and "misses" not in verdicts and "unknown" not in verdicts


def _cheaper_than_chosen(x: dict[str, Any], judged: dict[str, Any]) -> bool:
    best = min((j["cost"] for _o, j in judged.values() if j["meets"]), default=math.inf)
    return x["cost"] < best


def _today(scenario: Scenario, costs: Costs) -> Option:
    response = scenario.response
    assert response is not None
    return Option(
        pools={p.name: p.call_takers for p in response.call_centre.pools},
        units={g.name: g.count for g in response.units},
        posts=0,
        cost=cost(scenario, costs)["cost_total"],
        answer=math.nan,
        on_scene=math.nan,
    )


def _judged(
    result: Any, name: str, option: Option, goal: Goal, plan: Plan | None, folder: Path
) -> dict[str, Any]:
    """A simulated plan: its cost, its two shares with their 95 % intervals, the theory's
    prediction, and whether it meets the targets with 95 % confidence."""
    table = result.table.set_index("kpi")
    row: dict[str, Any] = {
        "plan": name,
        "description": plan.description if plan else "the scenario as it is",
        "round": folder.name,
        "pools": option.pools,
        "units": option.units,
        "posts": option.posts,
        "overrides": plan.overrides if plan else None,
    }
    n = f"n {name}"
    row["replications"] = int(table[n].max()) if n in table.columns else None
    row["cost"] = (
        float(table.at["cost_total", name]) if "cost_total" in table.index else option.cost
    )
    verdicts = []
    for key, target, predicted in (
        (ANSWER, goal.answer_share, option.answer),
        (ON_SCENE, goal.on_scene_share, option.on_scene),
    ):
        mean = table.at[key, name] if key in table.index else None
        half = (
            table.at[key, f"± {name}"]
            if key in table.index and f"± {name}" in table.columns
            else None
        )
        mean = None if mean is None or mean != mean else float(mean)
        half = None if half is None or half != half else float(half)
        short = key.removesuffix("_in_target")
        row[short] = mean
        row[f"{short}_half"] = half
        row[f"{short}_predicted"] = None if predicted != predicted else round(predicted, 4)
        verdicts.append(verdict(mean, half, target))
        row[f"{short}_verdict"] = verdicts[-1]
    row["meets"] = all(v == "meets" for v in verdicts)
    row["margin"] = min(
        (row["answered"] or 0) - goal.answer_share, (row["on_scene"] or 0) - goal.on_scene_share
    )
    return row


def _write_yaml(path: Path, doc: dict[str, Any]) -> None:
    import yaml

    head = (
        "# The plan twin optimise chose: twin evaluate SCENARIO --plan chosen.yaml runs it again.\n"
    )
    path.write_text(
        head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def _thin(points: list[dict[str, float]], most: int = 400) -> list[dict[str, float]]:
    """The screen's frontier: for each cost, the best share meeting both targets."""
    best, out = -1.0, []
    for p in points:
        share = min(p["answer"], p["on_scene"])
        if share > best + 1e-6:
            out.append({**p, "share": share})
            best = share
    step = max(1, len(out) // most)
    return out[::step]
