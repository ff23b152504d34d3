"""The live twin: the city's feed in, the simulation following it in wall-clock time.

``twin live --mqtt HOST:PORT [--scenario base.yaml]`` runs a SimPy ``RealtimeEnvironment``
(the simulated clock keeps pace with the wall clock, ``--speed`` times as fast) from now
on. The sensors component drains the MQTT feed every second; each message is validated,
kept or quarantined, and acts on the twin (calls reach the call centre, gauges close
roads...). With a scenario, its traffic, response and community run beside the feed;
without one, the live twin records and checks the feed alone.

Everything goes into one DuckDB file per live twin: the sensor history (``readings``,
``quarantine``) and the live timeline (``timeline``), written every 10 simulated seconds.
DuckDB lets one process write a file and nobody else open it meanwhile, so the live twin
also publishes its timeline as Parquet parts beside it (``<db>.timeline/``, see
:func:`read_published`), which the dashboards (``twin dash --live``) read while it runs.
``twin fork`` asks it for its whole state through a request file (:mod:`twin.live.fork`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from twin._errors import InputError
from twin.scenario import Scenario, load_scenario

#: Simulated seconds between writes of the live timeline into the DuckDB file.
LIVE_FLUSH_S = 10.0


#: Parts of the published live timeline merged into one when there are more than this.
MAX_PARTS = 40


def published(db: Path) -> Path:
    """Where a live twin publishes its timeline for readers: ``<db>.timeline/``."""
    return Path(db).with_name(Path(db).name + ".timeline")


def read_published(db: Path) -> tuple[dict[str, Any], pa.Table]:
    """The live twin's meta (``live.json``) and its timeline so far, read from what it
    publishes: Parquet parts listed in ``parts.json``, each written whole before it is
    listed, so a reader never sees half of one (a part merged away meanwhile: read again)."""
    import json

    import pyarrow.parquet as pq

    folder = published(db)
    if not (folder / "parts.json").exists():
        raise InputError(f"{db}: no live twin publishes here (start `twin live --db {db}`)")
    for attempt in range(10):
        parts = json.loads((folder / "parts.json").read_text())
        try:
            tables = [pq.read_table(folder / name) for name in parts["parts"]]
        except FileNotFoundError:
            time.sleep(0.02 * attempt)  # the twin is merging its parts: a moment
            continue
        meta = json.loads((folder / "live.json").read_text())
        meta["now"] = parts.get("now")  # the twin's clock: a quiet moment has no event
        from twin import events as ev

        table = pa.concat_tables(tables) if tables else ev.schema().empty_table()
        return meta, table
    raise InputError(f"{db}: the live timeline kept changing while being read; try again")


def orders_folder(db: Path) -> Path:
    """Where orders for a running live twin wait: ``<db>.orders/``."""
    return Path(db).with_name(Path(db).name + ".orders")


def send_order(db: Path, order: dict[str, Any]) -> None:
    """Leave an order for the live twin writing ``db`` (an acknowledgement from the
    dashboards); it takes it within a simulated second and puts it on its timeline."""
    import json
    import uuid

    folder = orders_folder(db)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.json"
    tmp = folder / f".{name}.partial"
    tmp.write_text(json.dumps(order, ensure_ascii=False), encoding="utf-8")
    tmp.replace(folder / name)


#: What takes an order: its kind -> a function of (simulation, the order's fields).
OrderHandler = Callable[[Any, dict[str, Any]], None]


def _acknowledged(sim: Any, order: dict[str, Any]) -> None:
    from twin import events as ev

    sim.emit(ev.AlertAcknowledged(**order), source="dashboard")


#: The orders every live twin takes, by kind (an exercise adds its own).
ORDERS: dict[str, OrderHandler] = {"alert_acknowledged": _acknowledged}


class OrderBook:
    """Where a live twin takes its orders: the files waiting in its order folder
    (:func:`send_order`), oldest first, each carried out by the handler of its kind; one
    that cannot be taken is logged with why.

    Every order taken is kept in :attr:`journal` with the simulated second and the kind of
    call that took it, so that a run can be played again exactly (:class:`ReplayedOrders`):
    an exercise's orders are its only input the wall clock decides."""

    def __init__(self, db: Path | None, handlers: dict[str, OrderHandler]) -> None:
        self.db = db
        self.handlers = handlers
        self.journal: list[dict[str, Any]] = []

    def take(self, sim: Any, *, only: Sequence[str] = ()) -> int:
        """Carry out the orders waiting now. With ``only``, orders of other kinds wait (a
        paused exercise takes the trainer's alone). Returns how many were taken."""
        import json

        if self.db is None:
            return 0
        folder = orders_folder(self.db)
        if not folder.is_dir():
            return 0
        taken = 0
        for path in sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
            try:
                order = json.loads(path.read_text(encoding="utf-8"))
                kind = order.get("kind") if isinstance(order, dict) else None
                if only and kind not in only:
                    continue
                kept = dict(order) if isinstance(order, dict) else order  # the handler pops
                self.journal.append({"t": sim.env.now, "paused": bool(only), "order": kept})
                self._carry_out(sim, order)
            except ValueError as exc:  # not JSON at all
                _refused(path.name, exc)
            path.unlink(missing_ok=True)
            taken += 1
        return taken

    def _carry_out(self, sim: Any, order: Any) -> None:
        try:
            if not isinstance(order, dict):
                raise TypeError("an order is a JSON object")
            order = dict(order)
            kind = order.pop("kind")
            if kind not in self.handlers:
                raise ValueError(f"the live twin takes {', '.join(self.handlers)}, not {kind!r}")
            self.handlers[kind](sim, order)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            _refused(str(order.get("kind", "")) if isinstance(order, dict) else "", exc)


def _refused(what: str, exc: Exception) -> None:
    logging.getLogger("twin.live").warning("order %s refused: %s", what, exc)


class ReplayedOrders(OrderBook):
    """The orders of a recorded journal (:attr:`OrderBook.journal`), each taken by the
    same call at the same simulated second as when it was given: a run played again. An
    entry whose second has passed is taken at the next call of its kind (a what-if that
    moves an order). The journal running out while the exercise is paused ends the run
    there, as the exercise ended."""

    def __init__(
        self, journal: Sequence[dict[str, Any]], handlers: dict[str, OrderHandler]
    ) -> None:
        super().__init__(None, handlers)
        self.pending = sorted(journal, key=lambda e: float(e["t"]))  # stable: same-t in order

    def take(self, sim: Any, *, only: Sequence[str] = ()) -> int:
        from twin.sim import Stop

        paused, taken, i = bool(only), 0, 0
        while i < len(self.pending) and float(self.pending[i]["t"]) <= sim.env.now:
            entry = self.pending[i]
            if bool(entry.get("paused")) != paused:
                if not paused:
                    break  # the paused call at this second comes first, as it did
                i += 1  # nothing but the trainer's controls moves while paused
                continue
            self.pending.pop(i)
            self.journal.append(entry)
            self._carry_out(sim, entry["order"])
            taken += 1
        if paused and not taken:
            raise Stop("the exercise ended here, paused")
        return taken


def write_orders(journal: Sequence[dict[str, Any]], path: Path) -> None:
    """An order journal as JSON lines (``{"t", "paused", "order"}``), written whole or
    not at all."""
    import json

    tmp = Path(path).with_name(f".{Path(path).name}.partial")
    with tmp.open("w", encoding="utf-8") as fh:
        for entry in journal:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_orders(path: Path) -> list[dict[str, Any]]:
    """An order journal :func:`write_orders` wrote; an InputError names a bad line."""
    import json

    journal = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        try:
            entry = json.loads(line)
            if not (isinstance(entry, dict) and isinstance(entry.get("t"), int | float)):
                raise ValueError("not an entry with a time (t)")
            if not isinstance(entry.get("order"), dict):
                raise ValueError("no order (a JSON object)")
        except ValueError as exc:
            raise InputError(f"{path}, line {n}: {exc}") from None
        journal.append(
            {"t": float(entry["t"]), "paused": bool(entry.get("paused")), "order": entry["order"]}
        )
    return journal


def serve_orders(sim: Any, book: OrderBook) -> Any:
    """A SimPy process that takes the orders waiting every simulated second
    (:meth:`OrderBook.take`)."""
    while True:
        yield sim.env.timeout(1.0)
        book.take(sim)


class LiveStore:
    """The live twin's DuckDB file (the sensor store, plus the ``timeline`` table), and the
    live timeline published for other programs as Parquet parts (see :func:`published`):
    DuckDB lets no other process open a file one process writes."""

    def __init__(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        import json

        from twin.sensors.store import SensorStore

        self.sensors = SensorStore(path)
        self.chain = _chain_of(self.sensors.con)  # a restarted twin goes on where it stood
        self._start = self.chain.state  # where this twin's published timeline joins it
        self._made = False
        self.folder = published(path)
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.parquet"):  # a new live twin starts a new timeline
            old.unlink()
        self._parts: list[str] = []
        self._n = 0
        self._pending: list[pa.RecordBatch] = []
        self._now = 0.0
        self._write("live.json", json.dumps(meta or {}, indent=2))
        self._list()

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """Write a batch of the live timeline, each event carrying the hash of the one
        before it, and the chain's new head with it (one transaction)."""
        con = self.sensors.con
        batch = self.chain.add_to(batch)
        events = pa.Table.from_batches([batch])  # noqa: F841  (DuckDB reads it by name)
        if not self._made:
            con.execute("CREATE TABLE IF NOT EXISTS timeline AS SELECT * FROM events LIMIT 0")
            names = {r[0] for r in con.execute("DESCRIBE timeline").fetchall()}
            if "prev_hash" not in names:  # a file an older twin wrote: its rows unchained
                con.execute("ALTER TABLE timeline ADD COLUMN prev_hash BLOB")
            self._made = True
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("INSERT INTO timeline BY NAME SELECT * FROM events")
            con.execute("DELETE FROM audit_head")
            con.execute(
                "INSERT INTO audit_head VALUES (?, ?)", [self.chain.head, self.chain.records]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        self._pending.append(batch)

    def publish(self, now: float | None = None) -> None:
        """Write what came since the last call as one part, listed once whole, with the
        twin's clock (``now``, simulated seconds) even when nothing came."""
        import pyarrow.parquet as pq

        if now is not None:
            self._now = now
        if not self._pending:
            if now is not None:
                self._list()
            return
        self._n += 1
        name = f"part-{self._n:06d}.parquet"
        tmp = self.folder / f".{name}.partial"
        pq.write_table(pa.Table.from_batches(self._pending), tmp)
        tmp.replace(self.folder / name)
        self._pending = []
        self._parts.append(name)
        if len(self._parts) > MAX_PARTS:  # merge them, so readers open few files
            self._n += 1
            merged = f"part-{self._n:06d}.parquet"
            table = pa.concat_tables([pq.read_table(self.folder / p) for p in self._parts])
            tmp = self.folder / f".{merged}.partial"
            pq.write_table(table, tmp)
            tmp.replace(self.folder / merged)
            old, self._parts = self._parts, [merged]
            self._list()
            for p in old:
                (self.folder / p).unlink(missing_ok=True)
        else:
            self._list()

    def _list(self) -> None:
        import json

        # the audit chain's head over the parts listed, and where they join the chain
        listed = {
            "parts": self._parts,
            "audit": self.chain.state,
            "start": self._start,
            "now": self._now,
        }
        self._write("parts.json", json.dumps(listed))

    def _write(self, name: str, text: str) -> None:
        tmp = self.folder / f".{name}.partial"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.folder / name)

    def close(self) -> None:
        self.publish()
        self.sensors.close()


def _chain_of(con: Any) -> Any:
    """The live file's audit chain where it stands (table ``audit_head``), made if new."""
    from twin.audit import Chain

    con.execute("CREATE TABLE IF NOT EXISTS audit_head (head BLOB, records BIGINT)")
    row = next(iter(con.execute("SELECT head, records FROM audit_head").fetchall()), None)
    return Chain(bytes(row[0]), int(row[1])) if row else Chain()


def sumo_folder(db: Path) -> Path:
    """Where the live twin on ``db`` keeps SUMO's files and console (``console.log``)."""
    return Path(db).parent / f".{Path(db).stem}-sumo"


def run_live(
    *,
    mqtt: tuple[str, int] | None,
    db: Path,
    scenario: Scenario | Path | None = None,
    devices: Path | None = None,
    keys: Path | None = None,
    retain_days: float | None = None,
    rotate_key_days: float | None = None,
    city_path: Path | None = None,
    duration: float = 3600.0,
    speed: float | None = 1.0,
    topic: str = "twin/#",
    username: str | None = None,
    password: str | None = None,
    tls: Any = False,
    client_id: str = "twin-live",
    start: datetime | None = None,
    keep_events: bool = False,
    components: Sequence[Any] = (),
    orders: dict[str, OrderHandler] | None = None,
    meta: dict[str, Any] | None = None,
    stream_to: Path | None = None,
    replay: Sequence[dict[str, Any]] | None = None,
    scenario_dir: Path | None = None,
    until: float | None = None,
    feed_in: bool = False,
    caller: bytes | None = None,
) -> dict[str, Any]:
    """Run a live twin until ``duration`` simulated seconds have passed (or Ctrl-C).
    Returns what was ingested and how many events the live timeline holds.

    An exercise runs on the same kernel: no feed (``mqtt=None``), the scenario's clock
    (``start``) with its road events (``keep_events``), its director among the
    ``components``, and the orders it takes beside an acknowledgement's (``orders``); its
    timeline also streams to ``stream_to`` (Arrow), from which its run folder is written.
    The orders it took are returned in ``journal``; given one as ``replay`` (with
    ``speed=None``: as fast as it goes), the run plays those orders again instead of
    reading the order folder (:class:`ReplayedOrders`). ``scenario_dir``: where a
    scenario given as an object reads its files (default: the current folder). ``until``:
    stop there, with everything made for the whole ``duration`` (its demand above all), so
    that the run is the same as a whole one up to that moment. ``feed_in``: without MQTT,
    the sensors still take the messages an exercise's feed injects play (validated, kept or
    quarantined), callers pseudonymised under ``caller`` (default: the key beside ``db``)."""
    from twin.city import City, builtin_city
    from twin.events import RunEnded, RunStarted
    from twin.runs.run import load_city
    from twin.sensors.component import SensorsComponent
    from twin.sensors.feeds import MqttSource
    from twin.sensors.ingest import caller_key, read_sensor_keys
    from twin.sensors.registry import load_registry
    from twin.sim import Simulation
    from twin.sim.timeline import Timeline

    base = load_scenario(scenario) if isinstance(scenario, Path) else scenario
    if scenario_dir is None:
        scenario_dir = Path(scenario).resolve().parent if isinstance(scenario, Path) else Path.cwd()
    if base is not None:
        city = load_city(base, scenario_dir=scenario_dir)
        tz = base.start.tzinfo
    else:
        city = City.load(city_path) if city_path else builtin_city("default", progress=False)
        tz = datetime.now().astimezone().tzinfo
    now = start or datetime.now(tz).replace(microsecond=0)
    registry = load_registry(devices, city)
    store = LiveStore(
        db,
        meta={
            "scenario": base.name if base else "live",
            "seed": base.seed if base else 0,
            "start": now.isoformat(),
            "duration_s": duration,
            "city": str(Path(city.path).resolve()),
            "sample_s": base.traffic.sample_every if base is not None and base.traffic else 60.0,
            **(meta or {}),
        },
    )
    source = (
        MqttSource(
            *mqtt,
            topics=(topic,),
            client_id=client_id,
            username=username,
            password=password,
            tls=tls,
        )
        if mqtt is not None
        else None
    )
    sensors = None
    try:
        if source is not None:
            source.wait_connected()
        timeline = Timeline(on_batch=store.add_batch, stream_to=stream_to)
        seed = base.seed if base is not None else 0
        sim = Simulation(
            duration=duration if until is None else min(until, duration),
            seed=seed,
            start=now,
            timeline=timeline,
            realtime=speed,
            checkpoint_every=LIVE_FLUSH_S,
        )
        live = None
        if base is not None:
            live = base.model_copy(
                update={
                    "start": now,
                    "duration": duration,
                    "events": base.events if keep_events else [],
                    "sensors": None,
                    "variants": {},
                }
            )
            workdir = sumo_folder(db)
            _add_scenario(sim, live, city, workdir, registry.detectors(), scenario_dir)
        if source is not None:
            sensors = SensorsComponent(
                registry,
                store.sensors,
                key=caller_key(db.parent),
                source=source,
                keys=read_sensor_keys(keys) if keys else None,
                retain_days=retain_days,
                rotate_key_days=rotate_key_days,
                key_folder=db.parent,
            )
            sim.add(sensors)
        elif feed_in:  # an exercise's feeds: messages its injects play, through the same door
            sensors = SensorsComponent(
                registry, store.sensors, key=caller if caller is not None else caller_key(db.parent)
            )
            sim.add(sensors)
        sim.sensors = sensors
        for component in components:
            sim.add(component)
        if live is not None and source is not None:  # `twin fork` asks for the present state
            from twin.live.fork import serve_forks

            sim.env.process(
                serve_forks(
                    sim,
                    db=db,
                    scenario=live,
                    scenario_dir=scenario_dir,
                    city=city.path,
                    devices=devices,
                    sensors=sensors,
                )
            )
        handlers = {**ORDERS, **(orders or {})}
        book = OrderBook(db, handlers) if replay is None else ReplayedOrders(replay, handlers)
        sim.orders = book
        sim.env.process(serve_orders(sim, book))  # from the dashboards, or the record
        sim.emit(
            RunStarted(
                scenario=base.name if base else "live",
                seed=seed,
                city=str(city.path),
                start_local=now.isoformat(),
            ),
            source="live",
        )
        status = "complete"
        try:
            sim.run(on_progress=store.publish)  # every LIVE_FLUSH_S, and at a pause
        except KeyboardInterrupt:
            status = "stopped"
        if sim.stopped:
            status = "stopped"
        sim.timeline.append(
            sim.env.now,
            RunEnded(status=status, reason=sim.stopped or "live twin stopped"),
            source="live",
        )
        timeline.close()  # flushed, and its stream (if any) closed
    finally:
        if source is not None:
            source.close()
        store.close()
    from twin import kpi

    ingest = sensors.ingest.summary() if sensors is not None and sensors.ingest else {}
    geh = kpi.geh(timeline.table())
    return {
        "ingest": ingest,
        "events": len(timeline),
        "simulated_s": sim.env.now,
        "status": status,
        "journal": book.journal,
        "geh": geh,
        "geh_under_5": kpi.geh_share(geh),
    }


def _add_scenario(
    sim: Any, live: Scenario, city: Any, workdir: Path, detectors: dict[str, str], folder: Path
) -> None:
    """The live scenario's traffic, response and community, from now on."""
    from twin.city.places import CityNet, resolve_events, resolve_response
    from twin.runs.components import add_components
    from twin.traffic.demand import scenario_demand

    now, duration = live.start, live.duration
    if live.traffic is not None:
        have = live.traffic.demand.veh_per_hour
        missing = [f"{h:02d}" for h in live.hours() if f"{h:02d}" not in have]
        if missing:
            raise InputError(
                f"{live.name}: a live twin from {now:%H:%M} for {duration / 3600:g} h needs traffic demand for "
                f"the hours {', '.join(missing)} (the scenario gives {', '.join(have)})"
            )
    net = CityNet(city)
    events = resolve_events(live, city, net=net)
    routes: list[Path] = []
    if live.traffic is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        routes = scenario_demand(live, city, events, workdir)
    add_components(
        sim,
        live,
        city,
        routes=routes,
        events=events,
        edge_sector=net.sector_of_edge,
        workdir=workdir,
        response=resolve_response(live, city, net=net, events=events, folder=folder),
        start=now,
        detectors=detectors,
    )
