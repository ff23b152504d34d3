"""Hostile sensor input, generated to break the readers: whatever a device or a recording
sends, every message is either kept or quarantined with a reason, and nothing raises.

The same parse path serves ``twin ingest`` (files and MQTT) and ``twin live``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.sensors.feeds import lines
from twin.sensors.ingest import REASONS, Ingest
from twin.sensors.messages import MAX_MESSAGE_CHARS
from twin.sensors.registry import load_registry
from twin.sensors.store import SensorStore

ROOT = Path(__file__).resolve().parents[2]
SENSORS = ROOT / "scenarios" / "sensors" / "helsinki.yaml"
NOW = "2026-12-01T07:30:00+02:00"
POINT = {"type": "Point", "coordinates": [24.9430, 60.1705]}
#: One real message of each kind, as the Helsinki sensors file's devices would send it.
REAL = [
    {
        "type": "TrafficFlowObserved",
        "id": "f1",
        "refDevice": "det-kaivokatu",
        "dateObservedFrom": "2026-12-01T07:20:00+02:00",
        "dateObservedTo": NOW,
        "intensity": 40,
    },
    {
        "type": "Vehicle",
        "id": "P-1",
        "dateObserved": NOW,
        "location": POINT,
        "serviceStatus": "available",
    },
    {"type": "Alert", "id": "a1", "category": "security", "location": POINT, "dateIssued": NOW},
    {
        "type": "EmergencyCall",
        "id": "c1",
        "number": "110",
        "dateReceived": NOW,
        "location": POINT,
        "caller": "+628111111",
    },
    {
        "type": "FloodMonitoring",
        "id": "g1",
        "refDevice": "gauge-kauppatori",
        "dateObserved": NOW,
        "currentLevel": 0.8,
    },
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw) -> str:
    """A real message with one field changed, removed or added: wrong types, NaN and
    infinite numbers, unknown kinds, nested junk."""
    msg = dict(draw(st.sampled_from(REAL)))
    key = draw(st.sampled_from([*msg, "extra", "type"]))
    if draw(st.booleans()) and key in msg:
        del msg[key]
    else:
        msg[key] = draw(json_values)
    return json.dumps(msg)  # NaN and Infinity as JavaScript writes them


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


hostile_text = st.one_of(
    st.text(max_size=200),
    mutated(),
    json_values.map(json.dumps),
    st.integers(1, 20_000).map(nested),
    st.integers(1, 5_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.sampled_from([json.dumps(m) for m in REAL]),
)
hostile_bytes = st.one_of(
    st.binary(max_size=200), hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
)


def make_ingest(city, db: Path) -> Ingest:
    clock = datetime.fromisoformat(NOW)
    return Ingest(load_registry(SENSORS, city), SensorStore(db), key=b"k" * 32, clock=lambda: clock)


@pytest.fixture(scope="module")
def ingest(helsinki_city, tmp_path_factory):
    ing = make_ingest(helsinki_city, tmp_path_factory.mktemp("hostile") / "h.duckdb")
    yield ing
    ing.store.close()


def _accounted(ing: Ingest) -> int:
    s = ing.summary()
    assert set(s["quarantined"]) <= set(REASONS)
    return s["total"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.one_of(hostile_text, hostile_bytes))
def test_any_message_is_kept_or_quarantined_with_a_reason(ingest, raw):
    before = _accounted(ingest)
    kept = ingest.handle(raw)
    assert _accounted(ingest) == before + 1
    assert kept == (ingest.last_reason == "")
    if not kept:
        assert ingest.last_reason in REASONS
        assert len(ingest.last_text) <= 4000
        ingest.last_text.encode("utf-8")  # what quarantine keeps is text, bad bytes shown


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.lists(st.one_of(hostile_bytes, hostile_text.map(str.encode)), max_size=30),
    suffix=st.sampled_from([".jsonl", ".csv"]),
)
def test_any_recording_is_replayed_line_by_line(helsinki_city, tmp_path_factory, body, suffix):
    folder = tmp_path_factory.mktemp("replay")
    path = folder / f"feed{suffix}"
    path.write_bytes(b"\n".join(body))
    expected = sum(1 for _ in lines(path))
    ing = make_ingest(helsinki_city, folder / "r.duckdb")
    ing.replay(lines(path))
    ing.store.close()
    assert ing.summary()["total"] == expected
    with duckdb.connect(str(folder / "r.duckdb"), read_only=True) as con:
        quarantined = con.execute("SELECT reason, detail FROM quarantine").fetchall()
    assert len(quarantined) == sum(ing.summary()["quarantined"].values())
    assert all(reason in REASONS and detail for reason, detail in quarantined)


def test_a_huge_line_is_refused_unread_and_in_bounded_memory(helsinki_city, tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("w") as fh:  # 20 MB on one line, between two real messages
        fh.write(json.dumps(REAL[0]) + "\n")
        fh.write('{"type": "Alert", "description": "' + "x" * 20_000_000 + '"}\n')
        fh.write(json.dumps(REAL[4]) + "\n")
    got = list(lines(path))
    assert len(got) == 3 and len(got[1]) == MAX_MESSAGE_CHARS + 1
    ing = make_ingest(helsinki_city, tmp_path / "h.duckdb")
    ing.replay(got)
    ing.store.close()
    s = ing.summary()
    assert s["quarantined"] == {"too_large": 1} and sum(s["accepted"].values()) == 2


def test_twin_ingest_keeps_or_quarantines_every_line_of_a_hostile_file(helsinki_city, tmp_path):
    """The issue's case through the command a user runs: real sensor lines mixed with deep
    nesting, a huge line, NaN and infinite coordinates, bytes that are not UTF-8, wrong
    types and unknown kinds. It exits 0, and every line is accounted for with a reason."""
    vehicle = REAL[1]
    bad = {
        "bad_json": [
            nested(5000).encode(),
            ('{"a":' * 3000 + "1" + "}" * 3000).encode(),
            b"[1, 2]",
        ],
        "too_large": [json.dumps({**REAL[2], "description": "x" * 200_000}).encode()],
        "invalid": [
            json.dumps(
                {
                    **vehicle,
                    "id": "nan",
                    "location": {"type": "Point", "coordinates": [float("nan"), 60.17]},
                }
            ).encode(),
            json.dumps(
                {
                    **vehicle,
                    "id": "inf",
                    "location": {"type": "Point", "coordinates": [24.9, float("inf")]},
                }
            ).encode(),
            json.dumps({**REAL[0], "intensity": "forty"}).encode(),
        ],
        "not_utf8": [
            json.dumps(REAL[2]).replace("a1", "a\\u00e9").encode().replace(b"\\u00e9", b"\xe9\xff")
        ],
        "unknown_type": [json.dumps({**REAL[2], "type": "Spaceship"}).encode()],
    }
    good = [json.dumps(m).encode() for m in REAL]
    body = [good[0], *[b for group in bad.values() for b in group], *good[1:]]
    feed = tmp_path / "mixed.jsonl"
    feed.write_bytes(b"\n".join(body) + b"\n")
    db = tmp_path / "live.duckdb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "ingest",
            "--file",
            str(feed),
            "--db",
            str(db),
            "--sensors",
            str(SENSORS),
            "--city",
            str(helsinki_city.path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM readings").fetchone()[0]
        reasons = dict(
            con.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason").fetchall()
        )
    # the real messages are stamped in the past: a replay judges them on their own clock
    assert kept == len(good)
    assert reasons == {k: len(v) for k, v in bad.items()}
    for reason in bad:
        assert f"quarantined: {reason}" in proc.stdout


def test_the_live_mqtt_path_keeps_or_quarantines_every_hostile_message(helsinki_city, tmp_path):
    """The same hostile set published to a real broker (mosquitto) and taken in by
    ``twin ingest --mqtt``, the path ``twin live`` listens on: it exits 0, and every
    message is kept or quarantined with its reason."""
    from datetime import UTC, timedelta

    from tests.sensors.test_feeds import Broker
    from twin.sensors.feeds import MqttSink, MqttSource

    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.isoformat()
    good = [
        {**m, **{k: stamp for k in m if k.startswith("date") and k != "dateObservedFrom"}}
        for m in REAL
    ]
    good[0]["dateObservedFrom"] = (now - timedelta(minutes=5)).isoformat()
    bad = {
        "bad_json": [nested(5000).encode(), b"[1, 2]"],
        "too_large": [json.dumps({**good[2], "id": "big", "description": "x" * 200_000}).encode()],
        "invalid": [
            json.dumps(
                {**good[1], "location": {"type": "Point", "coordinates": [float("nan"), 60.17]}}
            ).encode()
        ],
        "not_utf8": [
            json.dumps({**good[2], "id": "a-bad"}).encode().replace(b"a-bad", b"a\xe9\xff")
        ],
        "unknown_type": [json.dumps({**good[2], "type": "Spaceship"}).encode()],
    }
    broker = Broker(tmp_path / "broker")
    try:
        session = MqttSource(
            "127.0.0.1", broker.port, username="twin", password="s3cret", client_id="twin-ingest"
        )
        session.wait_connected()  # the persistent session keeps what is published meanwhile
        session.close()
        sink = MqttSink("127.0.0.1", broker.port, username="twin", password="s3cret")
        for payload in [
            *(json.dumps(m).encode() for m in good),
            *(b for g in bad.values() for b in g),
        ]:
            sink.client.publish("twin/raw", payload, qos=1).wait_for_publish(10)
        sink.close()
        db = tmp_path / "live.duckdb"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "twin.cli",
                "ingest",
                "--db",
                str(db),
                "--mqtt",
                f"127.0.0.1:{broker.port}",
                "--sensors",
                str(SENSORS),
                "--city",
                str(helsinki_city.path),
                "--user",
                "twin",
                "--password",
                "s3cret",
                "--idle",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        broker.stop()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM readings").fetchone()[0]
        reasons = dict(
            con.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason").fetchall()
        )
    assert kept == len(good)
    assert reasons == {k: len(v) for k, v in bad.items()}
