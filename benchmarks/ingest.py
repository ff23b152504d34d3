"""Sensor ingestion speed: file replay on one core, and MQTT through a real mosquitto.

``make bench`` (``ingest``) runs these parts, each in its own process where a process of
its own is what a real deployment has:

- ``stream``: writes a realistic feed of the default city as JSON lines: detector counts
  (60 %), unit AVL (30 %), crowd counts, emergency calls with the caller's number (which
  ingestion pseudonymises), incident alerts and water levels, and 0.5 % bad messages of
  every kind of fault.
- ``replay``: pinned to one CPU, times three readers of the same file side by side: the
  floor of any Python ingestion (``json.loads`` of each line), pydantic's validation alone
  (a call per line, and 256 lines a call as the twin replays), and the twin's ``Ingest`` (validation, the checks a schema cannot make, quarantine and the
  DuckDB history, committed).
- ``publish``: a paho publisher at QoS 1 with the twin's window of unacknowledged messages,
  paced at a rate or as fast as it can, stamping each message with the time it was sent.
- ``receive``: ``Ingest.follow`` on an ``MqttReceiver``, as ``twin ingest --mqtt`` runs it; it
  measures each message from publish to committed in the history. For the sustained rate
  the messages wait in the receiver's persistent session first (``subscribe``, then
  ``publish``), so that the receiver, not the Python publisher, sets the pace.

Usage: ``python ingest.py stream OUT N [--live]`` | ``replay FILE DB`` | ``publish PORT FILE RATE``
| ``subscribe PORT`` | ``receive PORT DB N``; each prints one JSON object.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SENSORS = HERE.parent / "scenarios" / "sensors" / "helsinki.yaml"
CITY = HERE / ".cache" / "helsinki"
KEY = b"bench-key-0123456789abcdef012345"
USER, PASSWORD = "twin", "s3cret"


def registry() -> Any:
    from twin.city import City
    from twin.sensors.registry import load_registry

    return load_registry(SENSORS, City.load(CITY))


def stream(out: Path, n: int, seed: int = 7, *, end: datetime | None = None) -> dict[str, Any]:
    """A feed of ``n`` messages, one every 0.25 s of history (see the module docstring),
    from 2026-12-01 00:00 UTC or ending ``end`` (a live feed ends now)."""
    rng = np.random.default_rng(seed)
    reg = registry()
    by_kind: dict[str, list[str]] = {}
    for s in reg.sensors.values():
        by_kind.setdefault(s.kind, []).append(s.id)
    lat0, lat1, lon0, lon1 = reg.bounds
    t0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    if end is not None:
        t0 = end - timedelta(seconds=n * 0.25)
    states = ["available", "dispatched", "en_route", "on_scene", "returning"]
    kinds = rng.choice(
        ["flow", "avl", "crowd", "call", "alert", "gauge", "bad"],
        size=n,
        p=[0.60, 0.30, 0.04, 0.03, 0.02, 0.005, 0.005],
    )
    bad = [
        "{not json",
        '["a list"]',
        '{"type": "Alien", "id": "x"}',
        '{"type": "TrafficFlowObserved", "id": "neg", "refDevice": "det-ghost"}',
    ]

    def point() -> dict[str, Any]:
        return {
            "type": "Point",
            "coordinates": [
                round(float(rng.uniform(lon0, lon1)), 6),
                round(float(rng.uniform(lat0, lat1)), 6),
            ],
        }

    tmp = out.with_name(out.name + ".partial")
    with tmp.open("w") as fh:
        for i, kind in enumerate(kinds):
            t = t0 + timedelta(seconds=i * 0.25)
            iso = t.isoformat()
            if kind == "flow":
                m = {
                    "type": "TrafficFlowObserved",
                    "id": f"f{i}",
                    "refDevice": by_kind["detector"][i % 12],
                    "dateObservedFrom": (t - timedelta(seconds=60)).isoformat(),
                    "dateObservedTo": iso,
                    "intensity": int(rng.poisson(15)),
                    "averageVehicleSpeed": round(float(rng.uniform(10, 50)), 1),
                }
            elif kind == "avl":
                m = {
                    "type": "Vehicle",
                    "id": f"P-{i % 40}",
                    "dateObserved": iso,
                    "location": point(),
                    "serviceStatus": states[i % 5],
                    "speed": round(float(rng.uniform(0, 60)), 1),
                }
            elif kind == "crowd":
                m = {
                    "type": "CrowdFlowObserved",
                    "id": f"c{i}",
                    "refDevice": by_kind["crowd"][0],
                    "dateObserved": iso,
                    "peopleCount": int(rng.integers(0, 5000)),
                }
            elif kind == "call":
                m = {
                    "type": "EmergencyCall",
                    "id": f"k{i}",
                    "number": "110",
                    "dateReceived": iso,
                    "location": point(),
                    "category": "crime",
                    "caller": f"+62812{i:07d}",
                }
            elif kind == "alert":
                m = {
                    "type": "Alert",
                    "id": f"a{i}",
                    "category": "traffic",
                    "location": point(),
                    "dateIssued": iso,
                    "severity": "high",
                    "description": "tabrakan di persimpangan",
                }
            elif kind == "gauge":
                m = {
                    "type": "FloodMonitoring",
                    "id": f"g{i}",
                    "refDevice": by_kind["gauge"][0],
                    "dateObserved": iso,
                    "currentLevel": round(float(rng.uniform(0, 2)), 2),
                }
            else:
                fh.write(bad[i % len(bad)] + "\n")
                continue
            fh.write(json.dumps(m) + "\n")
    tmp.replace(out)
    return {"messages": n, "bytes": out.stat().st_size}


def replay(path: Path, db: Path) -> dict[str, Any]:
    """Three readers of the same file on one CPU (see the module docstring)."""

    from twin.sensors.feeds import lines
    from twin.sensors.ingest import REPLAY_YOUNG, Ingest, collecting_rarely
    from twin.sensors.messages import parse_json, parse_lines
    from twin.sensors.store import ROW_GROUP, SensorStore

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    reg = registry()
    out: dict[str, Any] = {"cpus": sorted(os.sched_getaffinity(0))}

    def floor() -> int:
        n = 0
        for text in lines(path):
            try:
                json.loads(text)
            except ValueError:
                pass
            n += 1
        return n

    def pydantic_alone() -> int:
        n = 0
        for text in lines(path):
            try:
                parse_json(text)
            except ValueError:
                pass
            n += 1
        return n

    def pydantic_batched() -> int:  # as the twin validates a replay: 256 lines a call
        n, chunk = 0, []
        for text in lines(path):
            chunk.append(text)
            if len(chunk) == 256:
                n += len(parse_lines(chunk))
                chunk = []
        return n + len(parse_lines(chunk))

    def twin() -> int:  # as `twin ingest --file` runs it
        db.unlink(missing_ok=True)
        store = SensorStore(db, batch=ROW_GROUP)
        store.con.execute("SET threads = 1")
        ing = Ingest(reg, store, key=KEY)
        ing.replay(lines(path))
        store.close()
        s = ing.summary()
        out["kept"], out["quarantined"] = sum(s["accepted"].values()), s["quarantined"]
        return s["total"]

    for name, fn in (
        ("json.loads", floor),
        ("pydantic alone", pydantic_alone),
        ("pydantic batched", pydantic_batched),
        ("twin", twin),
    ):
        best = float("inf")
        for _ in range(3):
            with collecting_rarely(REPLAY_YOUNG):  # as `twin ingest --file` does, for all
                t = time.perf_counter()
                n = fn()
                best = min(best, time.perf_counter() - t)
        out[name] = n / best
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        out["stored"] = con.execute("SELECT count(*) FROM readings").fetchall()[0][0]
        out["in quarantine"] = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    return out


def publish(port: int, path: Path, rate: float) -> dict[str, Any]:
    """Publish a file's messages at QoS 1 on one topic, ``rate`` a second (0: at once),
    each stamped ``sentAt`` (POSIX seconds) just before it goes."""
    from twin.sensors.feeds import MqttSink

    texts = [line.rstrip("\n") for line in path.open() if line.strip()]
    sink = MqttSink("127.0.0.1", port, username=USER, password=PASSWORD, client_id="bench-pub")
    start = time.perf_counter()
    for i, text in enumerate(texts):
        if rate:
            due = start + i / rate
            while (wait := due - time.perf_counter()) > 0:
                time.sleep(min(wait, 0.002))
        body = text[:-1] + f', "sentAt": {time.time():.6f}}}' if text.endswith("}") else text
        sink._window.acquire()
        sink.client.publish("twin/bench", body, qos=1)
    sent = time.perf_counter() - start
    sink.close()
    return {"published": len(texts), "seconds": sent, "rate": len(texts) / sent}


_SENT = re.compile(rb'"sentAt": ([0-9.]+)\}$')


def subscribe(port: int) -> dict[str, Any]:
    """Open the receiver's persistent session, then leave: the broker keeps what comes."""
    from twin.sensors.feeds import MqttSource

    source = MqttSource(
        "127.0.0.1",
        port,
        topics=("twin/bench",),
        username=USER,
        password=PASSWORD,
        client_id="bench-sub",
    )
    source.wait_connected()
    time.sleep(0.5)  # the subscription is acknowledged
    source.close()
    return {"subscribed": True}


def receive(port: int, db: Path, expect: int, *, timeout: float = 300.0) -> dict[str, Any]:
    """``Ingest.follow`` on MQTT until ``expect`` messages came (or 3 s of silence); the
    time from each message's ``sentAt`` to the commit that put it in the history."""

    from twin.sensors.feeds import MqttReceiver
    from twin.sensors.ingest import LIVE_YOUNG, Ingest, collecting_rarely
    from twin.sensors.store import SensorStore

    db.unlink(missing_ok=True)
    store = SensorStore(db)
    ing = Ingest(store=store, registry=registry(), key=KEY)
    source = MqttReceiver(
        "127.0.0.1",
        port,
        topics=("twin/bench",),
        username=USER,
        password=PASSWORD,
        client_id="bench-sub",
    )
    source.wait_connected()
    print("ready", flush=True)
    pending: list[float] = []
    stages: list = []
    latencies: list[float] = []
    times: list[float] = []
    flush = store.flush

    flushes: list[float] = []

    def timed_flush() -> None:  # the commit stamps every message it carries
        t = time.perf_counter()
        flush()
        flushes.append(time.perf_counter() - t)
        now = time.time()
        latencies.extend(now - s for s in pending)
        pending.clear()

    class Counted:  # the source, noting each message's publish time as it is taken
        def next(self, timeout: float) -> Any:
            if len(times) >= expect:
                time.sleep(timeout)
                return None
            item = source.next(timeout)
            if item is not None:
                times.append(time.perf_counter())
                sent = _SENT.search(item[0])
                if sent:
                    pending.append(float(sent.group(1)))
                    stages.append((float(sent.group(1)), item[1].timestamp(), time.time()))
            return item

        def waiting(self) -> bool:
            return source.waiting()

        def committed(self) -> None:
            source.committed()

    store.flush = timed_flush  # type: ignore[method-assign]
    with collecting_rarely(LIVE_YOUNG):  # as `twin ingest --mqtt` does
        ing.follow(Counted(), until=time.time() + timeout, idle=3.0)
    source.close()
    store.close()
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute(
            "SELECT count(DISTINCT (kind, message_id, observed_at)) FROM readings"
        ).fetchall()[0][0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
        duplicates = con.execute(
            "SELECT count(*) FROM quarantine WHERE reason = 'duplicate'"
        ).fetchall()[0][0]
    lat = np.array(latencies) * 1000
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {
        "received": len(times),
        "kept": kept,
        "quarantined": quarantined,
        "duplicates": duplicates,
        "rate": (len(times) - 1) / span,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "commit_ms": float(np.median(flushes) * 1000) if flushes else None,
        "commits": len(flushes),
        "to_receiver_p50": float(np.median([b - a for a, b, c in stages]) * 1000),
        "to_receiver_p99": float(np.percentile([b - a for a, b, c in stages], 99) * 1000),
        "to_ingest_p50": float(np.median([c - b for a, b, c in stages]) * 1000),
        "to_ingest_p99": float(np.percentile([c - b for a, b, c in stages], 99) * 1000),
    }


def main(argv: list[str]) -> int:
    what, *args = argv
    if what == "stream":
        live = len(args) > 2 and args[2] == "--live"
        result = stream(Path(args[0]), int(args[1]), end=datetime.now(UTC) if live else None)
    elif what == "replay":
        result = replay(Path(args[0]), Path(args[1]))
    elif what == "subscribe":
        result = subscribe(int(args[0]))
    elif what == "publish":
        result = publish(int(args[0]), Path(args[1]), float(args[2]))
    else:
        result = receive(int(args[0]), Path(args[1]), int(args[2]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
