"""``make bench``: speed of the twin against named baselines, measured side by side.

Each benchmark times the twin and its baselines in the same run, takes the best of several
repeats (the machines are noisy), and prints the ratio to the baseline. Paste the table into
``benchmarks/RESULTS.md`` with the date and the command.

Benchmarks (one module each, ``bench_*.py``, sharing ``_common.py``)
----------------------------------------------------------------------
city-load
    ``City.load`` of the default (Helsinki) bundle: the whole bundle (graph, POIs, sectors,
    mapping), and the road graph alone from its Parquet tables, against reloading the
    same road graph from GraphML with
    ``osmnx.load_graphml``, and against parsing the OSM road file again with
    ``osmnx.graph_from_xml``. Target: under 2 s.
city-build
    ``twin build --force`` of the two built-in cities (Helsinki and central Jakarta),
    against netconvert alone on the same roads, the floor of any build that makes a
    SUMO net.
routing
    The travel-time engine on the default city and on perturbed grids that SUMO's
    ``netgenerate`` makes (about 1k, 10k and 100k nodes; cached in ``benchmarks/.cache``),
    against networkx (``single_source_dijkstra_path_length`` per source on the
    MultiDiGraph, as an osmnx user calls it) and scipy's ``dijkstra`` (CSR built once,
    outside the timing): many-to-all from 20 sources, the nearest 3 of 50 units for 1,000
    incidents (scipy per incident on the reversed graph, and from the 50 units), and
    10-minute isochrones from the police posts (Helsinki's posts file; 12 random junctions
    on the grids). Targets: 50× networkx and 1× scipy on
    many-to-all, 5× scipy on nearest-k.
response
    The response model alone (no traffic: travel times from the engine) for 24 simulated
    hours of a busy city: the default city with over 5,000 incidents and their calls, 12
    call-takers and 201 units, sized to keep them about 70 % busy. Prints events per second of wall time, the twin's kernel
    and timeline included. No baseline: no other tool runs this model.
civil-violence
    The twin's Epstein civil violence model (``twin.agents.civil``, Cython step) against the
    example that ships inside Mesa (``mesa.examples.advanced.epstein_civil_violence``), at
    its default parameters, 20 seeds each, 100 steps: time per step, and the mean and
    spread (over seeds) of the active, quiet and jailed shares, averaged over each run's
    steps, with 95 % confidence intervals that must overlap. Target: 10× faster per step.
emergency-driving
    How much faster the twin's emergency units get through the rush hour than a normal
    car: probe vehicles on the same 24 routes (1 to 3 km, one leaving every 2 minutes) in
    the default rush-hour traffic, as normal cars, as the twin's emulated emergency units,
    and with SUMO's bluelight device. Each kind runs in its own process
    (``benchmarks/emergency_driving.py``), so a bluelight crash is survived and reported.
ingest
    Sensor ingestion (``benchmarks/ingest.py``): a 200,000-message feed of the default city
    replayed from a file on one CPU, against ``json.loads`` of each line (the floor of any
    Python reader) and pydantic's validation alone; then MQTT at QoS 1 through a local
    mosquitto, the publisher in its own process: publish-to-history latency at 1,000
    messages/s, and 200,000 messages as fast as they go, counting any lost. Targets:
    100,000/s replayed; p99 under 25 ms; 20,000/s sustained with none lost.
fork
    ``twin fork`` of a live twin of the default city (``scenarios/helsinki_live.yaml`` at
    1,800 vehicles an hour all day, running 20 times as fast as the clock): the whole fork,
    from the request to both runs 60 minutes ahead (as things are, and with
    ``scenarios/overlays/close_mannerheimintie.yaml``). Target: under 1 minute.
dash
    The dashboards (``twin dash``) on the default rush hour with its emergency load, in
    Debian's headless chromium: each page's first render (from the request to the map and
    the clock on screen) and its update (a click to the new picture: on the time slider of
    the K3i page and the unit board; on the measure of the contingency page's difference
    map, which compares the rush hour with the same hour and an accident). Targets: first
    render under 2 s, update p95 under 300 ms.
ensemble
    ``twin run --replications 20 --workers 2`` of the default rush hour (traffic and
    response on) against the same 20 seeds run one after another, once each. Target: 1.7×
    faster on 2 workers; prints the overhead per replication.
rush-hour
    The default rush-hour scenario (``scenarios/helsinki_morning_rush.yaml``) on the same
    net and routes: plain ``sumo`` with the twin's SUMO options, the twin's kernel and
    traffic component with libsumo, and the same with traci. Target: the twin with libsumo
    within 1.2× of plain ``sumo``. Prints the real-time factors.
scale
    How cost grows with the city (``benchmarks/bench_scale.py``): the two built-in cities
    and SUMO-generated grid, spider and random nets of about 100, 1,000 and 10,000
    junctions, built with ``twin build --sumo-net``; each stage (build, load, routing, a
    one-hour run in micro and meso with response and community on, KPIs, report) timed
    with its peak memory beside its baseline (scipy, plain ``sumo``, a DuckDB scan), and the
    exponent of each against size. ``TWIN_SCALE=small`` leaves out the largest nets.
    Targets: the twin within 1.2× of plain sumo on the largest net, micro and meso; meso
    10× faster than micro there; the engine 2× scipy on every size.
audit
    The default rush hour's timeline (Jakarta, as ``make demo`` runs it) written from its
    Arrow stream to Parquet by the twin's writer, with the audit chain and without it
    (the baseline), and the chain's cost as a share of the whole run. Target: within 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import CACHE
from bench_audit import bench_audit
from bench_city import bench_city_build, bench_city_load
from bench_civil import bench_civil_violence
from bench_dash import bench_dash
from bench_emergency import bench_emergency_driving
from bench_ensemble import bench_ensemble
from bench_fork import bench_fork
from bench_ingest import bench_ingest
from bench_response import bench_response
from bench_routing import bench_routing
from bench_rush_hour import bench_rush_hour
from bench_scale import bench_scale

BENCHMARKS = {
    "city-load": bench_city_load,
    "city-build": bench_city_build,
    "rush-hour": bench_rush_hour,
    "routing": bench_routing,
    "response": bench_response,
    "emergency-driving": bench_emergency_driving,
    "civil-violence": bench_civil_violence,
    "ingest": bench_ingest,
    "fork": bench_fork,
    "dash": bench_dash,
    "ensemble": bench_ensemble,
    "scale": bench_scale,
    "audit": bench_audit,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run")
    parser.add_argument("--repeat", type=int, default=7, help="repeats per measurement")
    args = parser.parse_args(argv)
    CACHE.mkdir(exist_ok=True)
    from twin._sumo import sumo_console_to

    sumo_console_to(CACHE / "sumo-console.log")  # SUMO's warnings in a file, as a run's are
    print(f"# make bench, {time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]}")
    for name in args.names or BENCHMARKS:
        BENCHMARKS[name](args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
