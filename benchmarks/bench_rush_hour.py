"""rush-hour: the twin's traffic against plain SUMO on the same net and routes (see run.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _common import CACHE, HERE, interleaved, report


def bench_rush_hour(repeat: int) -> None:
    """The default rush-hour scenario three ways, on the same net, routes and SUMO options."""
    import subprocess

    from twin._sumo import sumo_env
    from twin.city import build_city
    from twin.city.places import CityNet
    from twin.runs.components import traffic_component
    from twin.scenario import load_scenario
    from twin.sim import Simulation
    from twin.traffic.demand import scenario_demand

    scenario = load_scenario(HERE.parent / "scenarios" / "helsinki_morning_rush.yaml")
    city = build_city(out=CACHE / "helsinki", progress=False).city
    work = CACHE / "rush"
    work.mkdir(exist_ok=True)
    routes = scenario_demand(scenario, city, [], work)
    edge_sector = CityNet(city).sector_of_edge
    repeat = min(repeat, 5)

    def component(simulator: str) -> Any:  # as a run assembles it
        return traffic_component(
            scenario,
            net_file=city.net_path,
            routes=routes,
            edge_sector=edge_sector,
            events=[],
            workdir=work,
            simulator=simulator,
        )

    def plain_sumo() -> None:
        cmd = [*component("libsumo").sumo_command(), "--end", f"{scenario.duration:g}"]
        subprocess.run(cmd, env=sumo_env(), check=True, capture_output=True)

    def twin(simulator: str) -> Callable[[], None]:
        def go() -> None:
            sim = Simulation(duration=scenario.duration, seed=scenario.seed, start=scenario.start)
            sim.add(component(simulator))
            sim.run()

        return go

    twin("libsumo")()  # load libsumo's library once, outside the timings
    rows = interleaved(
        {
            "plain sumo (same net, routes, options)": plain_sumo,
            "twin, libsumo (default observing)": twin("libsumo"),
            "twin, traci (default observing)": twin("traci"),
        },
        repeat,
    )
    report(
        f"rush-hour: {scenario.name}, {scenario.duration / 60:.0f} simulated min", rows, rows[0][0]
    )
    for name, best, _ in rows:
        print(f"- {name}: real-time factor {scenario.duration / best:,.0f}×")
    ratio = rows[1][1] / rows[0][1]
    verdict = "meets" if ratio <= 1.2 else "MISSES"
    print(f"\nTwin with libsumo at {ratio:.2f}× plain sumo: {verdict} the 1.2× target.")
