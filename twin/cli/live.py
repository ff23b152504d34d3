"""Commands of the live twin and its feeds: ``twin feed``, ``live``, ``fork``, ``ingest``
and ``calibrate``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.cli._app import (
    MqttPassword,
    MqttTls,
    MqttTlsCa,
    MqttUser,
    SensorKeys,
    app,
    city_or_default,
    out,
    print_comparison,
)


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
    sink: Any = (
        FileSink(to_file)
        if to_file is not None
        else MqttSink(
            *parse_broker(mqtt or ""), username=username, password=password, tls=tls_ca or tls
        )
    )
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
    sensor_keys: SensorKeys = None,
    retain_days: Annotated[
        float | None,
        typer.Option(
            "--retain-days",
            help="Delete callers' pseudonyms and positions, and quarantined raw text, after "
            "this many days (checked hourly; each deletion goes on the audit chain).",
        ),
    ] = None,
    rotate_key_days: Annotated[
        float | None,
        typer.Option(
            "--rotate-key-days",
            help="Replace the callers' pseudonym key (caller.key) every this many days.",
        ),
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
    for option, days in (("--retain-days", retain_days), ("--rotate-key-days", rotate_key_days)):
        if days is not None and not days > 0:
            raise InputError(f"{option} must be a positive number of days, got {days:g}")
    out.print(f"Live twin on mqtt://{mqtt}, writing {db}; Ctrl-C stops it.")
    from twin._sumo import sumo_console_to
    from twin.live.run import sumo_folder

    sumo_console_to(sumo_folder(db) / "console.log")  # SUMO's warnings off the terminal
    result = run_live(
        mqtt=parse_broker(mqtt),
        db=db,
        scenario=scenario,
        devices=sensors,
        keys=sensor_keys,
        retain_days=retain_days,
        rotate_key_days=rotate_key_days,
        city_path=bundle,
        duration=seconds,
        speed=speed,
        topic=topic,
        username=username,
        password=password,
        tls=tls_ca or tls,
    )
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
        print_comparison(table, runs, Path(result["report"]))
    else:
        print_comparison(table, runs, runs[0] / "report.html")
    out.print(f"Runs in {folder} ({wall:.0f} s in all).")


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
    sensor_keys: SensorKeys = None,
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
        LIVE_YOUNG,
        REPLAY_YOUNG,
        Ingest,
        caller_key,
        collecting_rarely,
        read_sensor_keys,
    )
    from twin.sensors.registry import load_registry
    from twin.sensors.store import BATCH, ROW_GROUP, SensorStore

    if (from_file is None) == (mqtt is None):
        raise InputError("give one of --file FILE or --mqtt HOST:PORT")
    if from_file is not None and not from_file.is_file():
        raise InputError(f"--file {from_file}: file not found")
    if not speed >= 0:
        raise InputError(f"--speed must be positive (or 0: as fast as it goes), got {speed!r}")
    city = city_or_default(bundle)
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
                source = MqttReceiver(
                    *parse_broker(mqtt or ""),
                    topics=(topic,),
                    username=username,
                    password=password,
                    tls=tls_ca or tls,
                )
                source.wait_connected()
                keys = read_sensor_keys(sensor_keys) if sensor_keys else None
                ing = Ingest(registry, store, key=caller_key(db.parent), keys=keys)
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
                SpinnerColumn(),
                TextColumn(self.description),
                TextColumn("{task.completed:,.0f} messages"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task(self.description, total=None)
        return self

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


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
    from twin.kpi import GEH_LIMIT, GEH_TARGET
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
        grid.add_row(
            r.sensor,
            r.hour,
            f"{r.observed:,}",
            f"{r.before:,}",
            f"{r.after:,}",
            f"{r.geh_before:.1f}",
            f"{r.geh_after:.1f}",
        )
    out.print(grid)
    verdict = "meets" if result.share_after >= GEH_TARGET else "MISSES"
    out.print(
        f"GEH < {GEH_LIMIT:g} on {result.share_before:.0%} of detector-hours with the scenario's demand, "
        f"[bold]{result.share_after:.0%}[/] calibrated: {verdict} the {GEH_TARGET:.0%} standard. "
        f"Calibrated routes: {result.routes} (use them as traffic.route_files, with a demand of 0)."
    )


sensors_app = typer.Typer(
    help="The sensors of a city: their broker accounts.", no_args_is_help=True
)
app.add_typer(sensors_app, name="sensors")


@sensors_app.command("broker-config")
def broker_config(
    sensors: Annotated[Path, typer.Argument(help="The sensors file (YAML).")],
    folder: Annotated[
        Path, typer.Option("--out", help="Folder for passwd, acl and credentials.yaml.")
    ],
    twin_user: Annotated[
        str, typer.Option("--twin-user", help="The account the twin reads the feed with.")
    ] = "twin",
) -> None:
    """Per-sensor MQTT accounts for mosquitto: a password file, an ACL file letting each
    sensor publish only on its own topics, and the passwords to hand out."""
    from twin.sensors.broker import broker_config as make

    passwords = make(sensors, folder, twin_user=twin_user)
    out.print(
        f"{len(passwords) - 1} sensors and the twin's account ({twin_user}) in {folder}:\n"
        f"  passwd             mosquitto's password_file (hashed)\n"
        f"  acl                mosquitto's acl_file (each sensor writes its own topics)\n"
        f"  credentials.yaml   the passwords, to hand each device its own (keep it secret)"
    )
