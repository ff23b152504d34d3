"""emergency-driving: the twin's emergency units against normal cars and SUMO's bluelight
device, each kind in its own process (``emergency_driving.py``; see run.py)."""

from __future__ import annotations

import sys
from typing import Any

from _common import CACHE, HERE


def bench_emergency_driving(repeat: int) -> None:
    """Emergency units against normal cars on the same routes (see the module docstring)."""
    import json
    import subprocess

    import numpy as np
    import sumolib

    from twin.city import build_city
    from twin.scenario import load_scenario
    from twin.traffic.demand import scenario_demand

    scenario = load_scenario(HERE.parent / "scenarios" / "helsinki_morning_rush.yaml")
    city = build_city(out=CACHE / "helsinki", progress=False).city
    work = CACHE / "emergency"
    work.mkdir(exist_ok=True)
    routes = scenario_demand(scenario, city, [], work)
    net = sumolib.net.readNet(str(city.net_path))
    edges = sorted(
        e.getID() for e in net.getEdges() if e.allows("passenger") and not e.getID().startswith(":")
    )
    rng = np.random.default_rng(7)
    probes: list[dict[str, Any]] = []
    while len(probes) < 24:
        a, b = (net.getEdge(edges[i]) for i in rng.choice(len(edges), 2, replace=False))
        path, _ = net.getShortestPath(a, b, vClass="passenger")
        if path and 1000 <= sum(e.getLength() for e in path) <= 3000:
            probes.append(
                {
                    "id": len(probes),
                    "edges": [e.getID() for e in path],
                    "depart": 600 + 120 * len(probes),
                }
            )
    (work / "probes.json").write_text(json.dumps(probes))
    results: dict[str, dict[str, float] | str] = {}
    for kind in ("car", "emulated", "bluelight"):
        out = work / f"{kind}.json"
        out.unlink(missing_ok=True)
        proc = subprocess.run(
            [
                sys.executable,
                str(HERE / "emergency_driving.py"),
                kind,
                str(city.net_path),
                ",".join(str(r) for r in routes),
                str(work / "probes.json"),
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            how = (
                f"signal {-proc.returncode}" if proc.returncode < 0 else f"status {proc.returncode}"
            )
            results[kind] = f"SUMO died ({how})"
        else:
            results[kind] = json.loads(out.read_text())
    car = results["car"]
    assert isinstance(car, dict)
    print("\n### emergency-driving: 24 probe trips of 1-3 km in the morning rush\n")
    print("| probe | trips | mean time | mean ratio to a normal car | median ratio |")
    print("|---|---|---|---|---|")
    for kind, res in results.items():
        if isinstance(res, str):
            print(f"| {kind} | – | – | {res} | – |")
            continue
        both = sorted(set(res) & set(car))
        ratio = np.array([res[v] / car[v] for v in both])
        print(
            f"| {kind} | {len(res)} | {np.mean([res[v] for v in both]):.0f} s | "
            f"{ratio.mean():.2f}× | {np.median(ratio):.2f}× |"
        )
