"""Per-sensor broker accounts (``twin sensors broker-config``) in a real mosquitto: each
sensor signs in with its own password and publishes only on its own topics."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from twin._errors import InputError
from twin.sensors.broker import LocalBroker, broker_config

ROOT = Path(__file__).resolve().parents[2]
SENSORS = ROOT / "scenarios" / "sensors" / "helsinki.yaml"


def client(
    port: int, user: str, password: str, tag: str = ""
) -> tuple[mqtt.Client, mqtt.ReasonCode]:
    """A client signed in as ``user`` (``tag`` tells two of one user apart), and the
    broker's answer to its sign-in."""
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{user}{tag}", protocol=mqtt.MQTTv5
    )
    answered = threading.Event()
    answer: list[mqtt.ReasonCode] = []

    def on_connect(_c, _u, _f, reason, _p) -> None:
        answer.append(reason)
        answered.set()

    c.on_connect = on_connect
    c.username_pw_set(user, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert answered.wait(10), "the broker never answered"
    return c, answer[0]


@pytest.fixture
def accounts(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "sensors",
            "broker-config",
            str(SENSORS),
            "--out",
            str(tmp_path / "accounts"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "16 sensors and the twin's account (twin)" in done.stdout
    folder = tmp_path / "accounts"
    assert os.stat(folder / "credentials.yaml").st_mode & 0o777 == 0o600
    assert os.stat(folder / "passwd").st_mode & 0o777 == 0o600
    passwords = yaml.safe_load((folder / "credentials.yaml").read_text())
    assert all(p not in (folder / "passwd").read_text() for p in passwords.values())
    broker = LocalBroker(tmp_path / "broker", users=folder, password=passwords["twin"])
    yield broker, passwords
    broker.stop()


def test_a_sensor_publishes_on_its_own_topics_only(accounts):
    broker, passwords = accounts
    heard: list[str] = []
    twin, ok = client(broker.port, "twin", passwords["twin"])
    assert not ok.is_failure
    subscribed = threading.Event()
    twin.on_subscribe = lambda *_: subscribed.set()
    twin.on_message = lambda _c, _u, m: heard.append(m.topic)
    twin.subscribe("twin/#", qos=1)
    assert subscribed.wait(10)
    # as another sensor: the broker refuses it; MQTT 5 says so in the acknowledgement
    # (0x87), or mosquitto drops the connection (it does either, by timing)
    impostor, ok = client(broker.port, "det-kaivokatu", passwords["det-kaivokatu"], "a")
    assert not ok.is_failure
    reasons: list[int] = []
    impostor.on_publish = lambda _c, _u, mid, reason, _p: reasons.append(reason.value)
    refused = impostor.publish("twin/TrafficFlowObserved/det-esplanadi", b"{}", qos=1)
    try:
        refused.wait_for_publish(5)
    except (RuntimeError, ValueError):
        pass  # disconnected: refused too
    assert reasons in ([0x87], [])
    # on its own topic, it is heard
    det, ok = client(broker.port, "det-kaivokatu", passwords["det-kaivokatu"], "b")
    det.publish("twin/TrafficFlowObserved/det-kaivokatu", b"{}", qos=1).wait_for_publish(10)
    threading.Event().wait(1.0)  # time for anything delivered to arrive
    assert heard == ["twin/TrafficFlowObserved/det-kaivokatu"]
    for c in (twin, det, impostor):
        c.loop_stop()
        c.disconnect()


def test_a_wrong_password_or_an_unknown_sensor_is_refused(accounts):
    broker, passwords = accounts
    for user, password in (
        ("det-kaivokatu", passwords["det-esplanadi"]),  # another sensor's password
        ("det-kaivokatu", "guess"),
        ("det-nowhere", passwords["det-kaivokatu"]),
    ):
        c, answer = client(broker.port, user, password)
        assert answer.is_failure and answer.value in (0x86, 0x87), (user, answer)
        c.loop_stop()
        c.disconnect()


def test_a_sensor_called_as_the_twin_is_refused(tmp_path):
    sensors = tmp_path / "sensors.yaml"
    sensors.write_text("sensors:\n  - {id: twin, kind: detector, lat: 60.17, lon: 24.94}\n")
    with pytest.raises(InputError, match="the twin's own user"):
        broker_config(sensors, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _count(device: str, minute: int) -> dict:
    """A detector's five-minute count, ending ``minute`` minutes past 08:00."""
    return {
        "type": "TrafficFlowObserved",
        "id": f"{device}-{minute}",
        "refDevice": device,
        "dateObservedFrom": f"2026-12-01T08:{minute - 5:02d}:00+02:00",
        "dateObservedTo": f"2026-12-01T08:{minute:02d}:00+02:00",
        "intensity": 40,
    }


def test_signed_messages_through_mosquitto_and_a_replay_with_a_stale_signature(
    accounts, helsinki_city, tmp_path
):
    """Each sensor signs with its own key (sensor-keys.yaml). Someone holding a sensor's
    broker password but not its key replays a message with a new time and the old
    signature: quarantined as bad_signature; sent again as it was: a duplicate; unsigned,
    or on another sensor's topic: refused too."""
    import json
    from datetime import datetime

    from twin.sensors.feeds import MqttSource
    from twin.sensors.ingest import Ingest, read_sensor_keys, sign
    from twin.sensors.registry import load_registry
    from twin.sensors.store import SensorStore

    broker, passwords = accounts
    keys_file = tmp_path / "accounts" / "sensor-keys.yaml"
    assert os.stat(keys_file).st_mode & 0o777 == 0o600
    keys = read_sensor_keys(keys_file)
    assert len(keys) == 16 and len(set(keys.values())) == 16
    source = MqttSource("127.0.0.1", broker.port, username="twin", password=passwords["twin"])
    source.wait_connected()
    ing = Ingest(
        load_registry(SENSORS, helsinki_city),
        SensorStore(tmp_path / "live.duckdb"),
        key=b"k" * 32,
        keys=keys,
        clock=lambda: datetime.fromisoformat("2026-12-01T08:30:00+02:00"),
    )
    det, ok = client(broker.port, "det-kaivokatu", passwords["det-kaivokatu"])
    assert not ok.is_failure
    topic = "twin/TrafficFlowObserved/det-kaivokatu"
    first = sign(json.dumps(_count("det-kaivokatu", 20)), keys["det-kaivokatu"])
    stale = first.replace("08:20:00", "08:25:00").replace("08:15:00", "08:20:00")
    unsigned = json.dumps(_count("det-kaivokatu", 10))
    forged = sign(json.dumps(_count("det-kaivokatu", 15)), keys["det-esplanadi"])
    for text in (first, stale, first, unsigned, forged):
        det.publish(topic, text, qos=1).wait_for_publish(10)
    got = []
    for payload, received, on in source.messages(idle=2.0):
        ing.handle(payload, received=received, topic=on)
        got.append((ing.last_reason, ing.last_door))
    assert [reason for reason, _ in got] == [
        "",
        "bad_signature",
        "duplicate",
        "bad_signature",
        "bad_signature",
    ]
    assert "replayed with a changed time" in got[1][1] and "unsigned" in got[3][1]
    # a broker whose ACL fails lets a sensor speak on another's topic: the door refuses it
    ing.handle(
        sign(json.dumps(_count("det-esplanadi", 5)), keys["det-esplanadi"]),
        topic="twin/TrafficFlowObserved/det-kaivokatu",
    )
    assert ing.last_reason == "wrong_sensor" and "another sensor's topic" in ing.last_door
    assert ing.summary()["quarantined"] == {
        "bad_signature": 3,
        "duplicate": 1,
        "wrong_sensor": 1,
    }
    det.loop_stop()
    det.disconnect()
    source.close()
    ing.store.close()


def test_a_journal_keeps_what_the_door_refused(tmp_path):
    """A fork replays a live twin's journal without topics or keys: the door's verdict is
    journaled and given again."""
    from twin.sensors.component import read_journal, write_journal

    rows = [
        (1.0, "2026-12-01T08:00:01+02:00", '{"a": 1}', None),
        (2.0, "2026-12-01T08:00:02+02:00", '{"b": 2}', ("bad_signature", "unsigned")),
    ]
    write_journal(rows, tmp_path / "journal.jsonl")
    assert read_journal(tmp_path / "journal.jsonl") == rows
