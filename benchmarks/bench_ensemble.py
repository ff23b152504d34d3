"""ensemble: 20 replications of the default rush hour on 2 local Dask workers, against the
same 20 run one after another (see run.py)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import CACHE, HERE, report

REPLICATIONS = 20
WORKERS = 2


def bench_ensemble(repeat: int) -> None:
    """``twin run --replications 20 --workers 2`` of the default morning rush (traffic and
    response on) against the same 20 seeds run one after another with ``twin run``'s own
    machinery, in this process. Once each: a repeat costs minutes. Target: 1.7× faster on
    2 workers. Prints the overhead per replication (set-up on the worker; everything else
    the workers' time went on besides the runs)."""
    import yaml

    from twin.plans.ensemble import evaluate
    from twin.runs.run import run_scenario
    from twin.scenario import scenario_from_dict

    doc = yaml.safe_load((HERE.parent / "scenarios" / "helsinki_morning_rush.yaml").read_text())
    from twin.city import build_city

    doc["city"] = str(build_city(out=CACHE / "helsinki", progress=False).city.path)
    doc["outputs"] = {"report": False}  # as an ensemble's replications: KPIs, no report
    scenarios = HERE.parent / "scenarios"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rush.yaml"
        path.write_text(yaml.safe_dump(doc))
        started = time.perf_counter()
        for i in range(REPLICATIONS):
            run_scenario(
                scenario_from_dict(doc),
                seed=doc["seed"] + i,
                out=Path(tmp) / f"seq{i}",
                progress=False,
                scenario_dir=scenarios,
            )
        sequential = time.perf_counter() - started
        started = time.perf_counter()
        result = evaluate(
            path,
            None,
            replications=REPLICATIONS,
            workers=WORKERS,
            out=Path(tmp) / "ensemble",
            progress=False,
        )
        parallel = time.perf_counter() - started
    rows = [
        (f"{REPLICATIONS} runs one after another", sequential, sequential),
        (f"{REPLICATIONS} replications on {WORKERS} local Dask workers", parallel, parallel),
    ]
    report(f"ensemble: {REPLICATIONS} replications of the default rush hour", rows, rows[0][0])
    o = result.info["overhead_s"]
    print(
        f"\nSpeed-up {sequential / parallel:.2f}× on {WORKERS} workers (target 1.7×). Per "
        f"replication: run {o['run_s']:.2f} s (median), set-up on the worker {o['setup_s']:.3f} s, "
        f"everything else {o['other_s']:.2f} s (shipping, scheduling, collecting, idle at the "
        f"end); the cluster started in {result.info['cluster_start_s']:.1f} s."
    )
