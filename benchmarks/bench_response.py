"""response: 24 hours of a busy city's emergency response, traffic off (see run.py)."""

from __future__ import annotations

import time

from _common import CACHE


def bench_response(repeat: int) -> None:
    """Events per second of the response model alone (see the module docstring)."""
    from twin.city import build_city
    from twin.city.places import resolve_response
    from twin.runs.components import add_components
    from twin.scenario import scenario_from_dict
    from twin.sim import Simulation

    city = build_city(out=CACHE / "helsinki", progress=False).city
    scenario = scenario_from_dict(
        {
            "name": "busy-day",
            "city": str(city.path),
            "start": "2026-12-01T00:00:00+02:00",
            "duration": "24h",
            "seed": 1,
            "response": {
                "call_centre": {
                    "pools": [
                        {"name": "all", "numbers": ["110", "112", "119", "113"], "call_takers": 12}
                    ]
                },
                "incidents": {
                    "rates": {
                        "crime": 90,
                        "traffic_accident": 40,
                        "medical": 70,
                        "fire": 5,
                        "public_order": 10,
                    }
                },
                "units": [
                    {"name": "P", "type": "police_car", "count": 110, "base": "police"},
                    {"name": "M", "type": "motorbike", "count": 20, "base": "police"},
                    {"name": "A", "type": "ambulance", "count": 65, "base": "hospital"},
                    {"name": "F", "type": "fire_engine", "count": 6, "base": "fire"},
                ],
            },
        }
    )
    resolved = resolve_response(scenario, city)
    assert scenario.response is not None and resolved is not None
    rows = []
    for _ in range(min(repeat, 3)):
        sim = Simulation(duration=scenario.duration, seed=scenario.seed, start=scenario.start)
        add_components(
            sim,
            scenario,
            city,
            routes=[],
            events=[],
            edge_sector={},
            workdir=CACHE,
            response=resolved,
        )
        t0 = time.perf_counter()
        sim.run()
        wall = time.perf_counter() - t0
        incidents = len(sim.timeline.events("incident_occurred"))
        rows.append((wall, len(sim.timeline), incidents))
    wall, events, incidents = min(rows)
    print("\n### response: 24 h of a busy city, traffic off\n")
    print("| incidents | events | wall | events per second | simulated time per wall time |")
    print("|---|---|---|---|---|")
    print(
        f"| {incidents:,} | {events:,} | {wall:.2f} s | {events / wall:,.0f} | {86400 / wall:,.0f}× |"
    )
