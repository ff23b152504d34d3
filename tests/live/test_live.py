"""The live twin, in wall-clock time, on a real broker's feed."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from tests.sensors.test_feeds import SENSORS, Broker
from twin.sensors.feeds import MqttSink, topic_of


def base_scenario(
    path, city, *, seed: int, veh_per_hour: int, rates: str, police: int, ambulances: int
):
    """A live twin's base scenario: traffic at every hour of the day, and a response."""
    hours = {f"{h:02d}": veh_per_hour for h in range(24)}
    path.write_text(
        f"name: live-base\ncity: {city.path}\nstart: 2026-12-01T07:00:00+02:00\nduration: 1h\nseed: {seed}\n"
        f"traffic:\n  demand:\n    veh_per_hour: {hours}\n"
        f"response:\n  incidents: {{rates: {rates}}}\n  units:\n"
        f"    - {{name: P, type: police_car, count: {police}, base: police}}\n"
        f"    - {{name: A, type: ambulance, count: {ambulances}, base: hospital}}\n"
    )
    return path


@pytest.mark.slow
def test_live_twin_follows_the_feed(helsinki_city, tmp_path):
    broker = Broker(tmp_path / "broker")
    scenario = base_scenario(
        tmp_path / "base.yaml",
        helsinki_city,
        seed=3,
        veh_per_hour=600,
        rates="{}",
        police=3,
        ambulances=1,
    )
    db = tmp_path / "live" / "live.duckdb"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "live",
            "--mqtt",
            f"127.0.0.1:{broker.port}",
            "--db",
            str(db),
            "--scenario",
            str(scenario),
            "--sensors",
            str(SENSORS),
            "--for",
            "25s",
            "--user",
            "twin",
            "--password",
            "s3cret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(8)  # the twin connects and SUMO starts
        sink = MqttSink("127.0.0.1", broker.port, username="twin", password="s3cret")
        now = datetime.now(UTC)
        point = {"type": "Point", "coordinates": [24.9430, 60.1705]}
        messages = [
            {
                "type": "EmergencyCall",
                "id": "c1",
                "number": "110",
                "dateReceived": now.isoformat(),
                "location": point,
                "category": "crime",
                "caller": "+628111111",
            },
            {
                "type": "EmergencyCall",
                "id": "c2",
                "number": "110",
                "dateReceived": now.isoformat(),
                "location": point,
                "category": "crime",
                "caller": "+628222222",
            },  # the same incident
            {
                "type": "TrafficFlowObserved",
                "id": "k1",
                "refDevice": "det-kaivokatu",
                "dateObservedFrom": (now - timedelta(minutes=1)).isoformat(),
                "dateObservedTo": now.isoformat(),
                "intensity": 21,
            },
            {
                "type": "FloodMonitoring",
                "id": "g1",
                "refDevice": "gauge-kauppatori",
                "dateObserved": now.isoformat(),
                "currentLevel": 1.6,
            },
            {
                "type": "TrafficFlowObserved",
                "id": "old",
                "refDevice": "det-kaivokatu",
                "dateObservedFrom": "2020-01-01T00:00:00+00:00",
                "dateObservedTo": "2020-01-01T00:01:00+00:00",
                "intensity": 5,
            },
        ]
        for m in messages:
            sink.send(m, topic_of(m))
        sink.close()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        broker.stop()
    assert proc.returncode == 0, stderr
    assert "4 messages kept, quarantined: stale 1" in " ".join(stdout.split())
    # SUMO's own warnings go to the live twin's SUMO folder, not to the officer's terminal
    assert "tlLogic" not in stdout + stderr
    assert "tlLogic" in (db.parent / ".live-sumo" / "console.log").read_text()
    with duckdb.connect(str(db), read_only=True) as con:

        def n(sql: str) -> int:
            return con.execute(sql).fetchone()[0]

        assert n("SELECT count(*) FROM readings") == 4 and n("SELECT count(*) FROM quarantine") == 1
        assert n("SELECT count(*) FROM timeline WHERE kind = 'call_received'") == 2
        assert (
            n("SELECT count(*) FROM timeline WHERE kind = 'incident_occurred' AND origin = 'call'")
            == 1
        )
        assert n("SELECT count(*) FROM timeline WHERE kind = 'call_placed'") == 2
        assert (
            n(
                "SELECT count(*) FROM timeline WHERE kind = 'road_event_started' AND event_id = 'flood-gauge-kauppatori'"
            )
            == 1
        )
        assert (
            n("SELECT count(*) FROM timeline WHERE kind = 'edge_flow'") >= 1
        )  # SUMO ran alongside
        assert 20 <= n("SELECT max(t) FROM timeline") <= 30  # wall-clock time, 25 s


def test_the_published_timeline_is_whole_and_its_parts_few(tmp_path):
    """The live timeline as other programs read it: every event once, in order, however
    many times it was published, and never more than a few parts to open."""
    import json

    from twin import events as ev
    from twin.live.run import MAX_PARTS, LiveStore, published, read_published
    from twin.sim.timeline import Timeline

    db = tmp_path / "live.duckdb"
    store = LiveStore(db, meta={"scenario": "x", "start": "2026-12-01T07:00:00+07:00"})
    timeline = Timeline(on_batch=store.add_batch)
    for i in range(3 * MAX_PARTS):
        timeline.append(
            float(i),
            ev.UnitState(
                unit=f"P-{i}",
                unit_type="police_car",
                agency="police",
                state="available",
                incident="",
                sector="S01",
                lat=0.0,
                lon=0.0,
            ),
            source="test",
        )
        timeline.flush()
        store.publish()
        meta, table = read_published(db)
        assert table.column("t").to_pylist() == [float(k) for k in range(i + 1)]
        assert len(json.loads((published(db) / "parts.json").read_text())["parts"]) <= MAX_PARTS + 1
    assert meta["scenario"] == "x"
    assert len(list(published(db).glob("*.parquet"))) <= MAX_PARTS + 1  # merged parts deleted
    store.close()


def test_orders_reach_a_running_live_twin_as_events(tmp_path):
    """An acknowledgement from the dashboards, left as an order file, is on the live
    twin's timeline within a simulated second; an order of a kind it does not take is
    refused and removed, not left to block the others."""
    from datetime import datetime

    from twin.live.run import ORDERS, OrderBook, orders_folder, send_order, serve_orders
    from twin.sim import Simulation

    db = tmp_path / "live.duckdb"
    sim = Simulation(
        duration=5.0, seed=0, start=datetime.fromisoformat("2026-12-01T07:00:00+07:00")
    )
    book = OrderBook(db, ORDERS)
    sim.env.process(serve_orders(sim, book))
    send_order(db, {"kind": "close_the_city", "why": "no"})
    send_order(
        db,
        {
            "kind": "alert_acknowledged",
            "alert": "S05:rawan",
            "sector": "S05",
            "status": "rawan",
            "reason": "tti 1.7",
            "officer": "Briptu Sari",
        },
    )
    sim.run()
    acks = sim.timeline.events("alert_acknowledged")
    assert [(e["alert"], e["officer"]) for e in acks] == [("S05:rawan", "Briptu Sari")]
    assert acks[0]["t"] == 1.0 and not list(orders_folder(db).glob("*.json"))
    # both are in the journal, taken at the same second: a replay takes them again there
    assert sorted((e["t"], e["order"]["kind"]) for e in book.journal) == [
        (1.0, "alert_acknowledged"),
        (1.0, "close_the_city"),
    ]
