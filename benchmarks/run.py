"""``make bench``: speed of the twin against named baselines, measured side by side.

Each benchmark times the twin and its baselines in the same run, takes the best of several
repeats (the machines are noisy), and prints the ratio to the baseline. Paste the table into
``benchmarks/RESULTS.md`` with the date and the command.

Benchmarks
----------
city-load
    ``City.load`` of the default (Helsinki) bundle: the whole bundle (graph, POIs, sectors,
    mapping), and the road graph alone from its Parquet tables, against reloading the
    same road graph from GraphML with
    ``osmnx.load_graphml``, and against parsing the OSM road file again with
    ``osmnx.graph_from_xml``. Target: under 2 s.
city-build
    ``twin build --force`` of the default city and of central Jakarta (when ../shared is
    there), against netconvert alone on the same roads, the floor of any build that makes a
    SUMO net.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
JAKARTA = HERE.parents[1] / "shared" / "cities" / "jakarta_menteng.osm.gz"


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best and median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def report(title: str, rows: list[tuple[str, float, float]], baseline: str) -> None:
    base = next(best for name, best, _ in rows if name == baseline)
    print(f"\n### {title}\n")
    print("| what | best | median | ratio to baseline |")
    print("|---|---|---|---|")
    for name, best, median in rows:
        mark = " (baseline)" if name == baseline else ""
        print(
            f"| {name}{mark} | {best * 1000:.1f} ms | {median * 1000:.1f} ms | {best / base:.3f}× |"  # noqa: RUF001
        )


def bench_city_load(repeat: int) -> None:
    import osmnx as ox

    from twin.city import City, build_city, default_osm
    from twin.city.osm import read_osm
    from twin.city.roads import graph_from_road_file, load_graph

    bundle = build_city(out=CACHE / "helsinki", progress=False).city.path
    with tempfile.TemporaryDirectory() as tmp:
        graphml = Path(tmp) / "graph.graphml"
        ox.save_graphml(City.load(bundle).graph, graphml)
        road_file = Path(tmp) / "roads.osm"
        read_osm(default_osm()).write_roads(road_file)
        rows = [
            (
                "City.load (whole bundle, Parquet + GeoJSON)",
                *best_of(lambda: City.load(bundle), repeat),
            ),
            (
                "twin load_graph (road graph only, Parquet)",
                *best_of(lambda: load_graph(bundle / "graph"), repeat),
            ),
            (
                "osmnx.load_graphml (road graph only)",
                *best_of(lambda: ox.load_graphml(graphml), repeat),
            ),
            (
                "osmnx.graph_from_xml (re-parse OSM roads)",
                *best_of(lambda: graph_from_road_file(road_file), repeat),
            ),
        ]
    report("city-load: default city (Helsinki)", rows, "osmnx.load_graphml (road graph only)")
    load_best = rows[0][1]
    verdict = "meets" if load_best < 2.0 else "MISSES"
    print(f"\nCity.load best {load_best:.3f} s: {verdict} the 2 s target.")


def bench_city_build(repeat: int) -> None:
    from twin.city import build_city, default_osm
    from twin.city.osm import read_osm
    from twin.city.sumonet import netconvert_osm

    cities = [("helsinki", default_osm())]
    if JAKARTA.exists():
        cities.append(("jakarta", JAKARTA))
    else:
        print(f"\n(skipping Jakarta: {JAKARTA} is absent)")
    for name, osm in cities:
        with tempfile.TemporaryDirectory() as tmp:
            road_file = Path(tmp) / "roads.osm"
            read_osm(osm).write_roads(road_file)
            out = Path(tmp) / name

            def netconvert_only(road_file: Path = road_file, tmp: str = tmp) -> None:
                netconvert_osm(road_file, Path(tmp) / "n.net.xml", log=Path(tmp) / "n.log")

            def twin_build(osm: Path = osm, out: Path = out) -> None:
                build_city(osm, out=out, force=True, progress=False)

            rows = [
                ("twin build --force", *best_of(twin_build, repeat)),
                ("netconvert alone", *best_of(netconvert_only, repeat)),
            ]
        report(f"city-build: {name}", rows, "netconvert alone")


BENCHMARKS = {"city-load": bench_city_load, "city-build": bench_city_build}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run")
    parser.add_argument("--repeat", type=int, default=7, help="repeats per measurement")
    args = parser.parse_args(argv)
    CACHE.mkdir(exist_ok=True)
    print(f"# make bench, {time.strftime('%Y-%m-%d %H:%M')}, Python {sys.version.split()[0]}")
    for name in args.names or BENCHMARKS:
        BENCHMARKS[name](args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
