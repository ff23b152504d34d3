"""city-load and city-build: loading and building the default city (see run.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import CACHE, best_of, report


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
    from twin.city import build_city, builtin_osm
    from twin.city.osm import read_osm
    from twin.city.sumonet import netconvert_osm

    cities = [(name, builtin_osm(name)) for name in ("helsinki", "jakarta")]
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
