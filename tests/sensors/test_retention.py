"""Personal data in the sensor history: the callers' pseudonym key kept apart from the data
and rotated; after the retention period, callers' pseudonyms and positions and the raw
text of quarantined messages are deleted, and the deletion goes on the audit chain."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import duckdb
import pytest

from tests.sensors.test_feeds import ingest_for
from twin import events as ev
from twin._errors import InputError
from twin.sensors.ingest import caller_key, key_id, rotate_caller_key

START = datetime.fromisoformat("2026-12-01T08:00:00+02:00")


def _call(i: int, at: datetime) -> str:
    return json.dumps(
        {
            "type": "EmergencyCall",
            "id": f"call-{i}",
            "number": "110",
            "dateReceived": at.isoformat(),
            "location": {"type": "Point", "coordinates": [24.945, 60.168]},
            "category": "crime",
            "caller": f"+62812345678{i}",
        }
    )


def _history(helsinki_city, db, *, hours: int = 4):
    """Calls every half hour over ``hours`` hours, and one unreadable message holding a
    caller's number, each received at its own time."""
    now = [START]
    ing = ingest_for(helsinki_city, db, clock=lambda: now[0])
    for i in range(hours * 2):
        now[0] = START + timedelta(minutes=30 * i)
        assert ing.handle(_call(i, now[0]), received=now[0]), ing.last_door or ing.last_reason
    now[0] = START + timedelta(minutes=5)
    ing.handle('{"type": "EmergencyCall", "caller": "+6281299999", oops', received=now[0])
    return ing


def test_retention_deletes_callers_and_positions_before_the_cutoff_only(helsinki_city, tmp_path):
    ing = _history(helsinki_city, tmp_path / "live.duckdb")
    store = ing.store
    cutoff = START + timedelta(hours=2)
    gone = store.forget_personal(cutoff.timestamp())
    assert gone == {"calls": 4, "quarantined": 1}
    rows = store.con.execute(
        "SELECT message_id, caller, lat, number, category, payload FROM calls ORDER BY received_at"
    ).fetchall()
    old, new = rows[:4], rows[4:]
    for message_id, caller, lat, number, category, payload in old:
        assert caller is None and lat is None and "location" not in payload
        assert "+628" not in payload and number == "110" and category == "crime", message_id
    for _id, caller, lat, *_ in new:
        assert caller and len(caller) == 16 and lat is not None  # pseudonymised, kept
    raw = store.con.execute("SELECT raw FROM quarantine").fetchall()
    assert raw == [(None,)]  # the number it held is gone with it
    assert store.forget_personal(cutoff.timestamp()) == {"calls": 0, "quarantined": 0}
    store.close()
    text = (tmp_path / "live.duckdb").read_bytes()
    assert b"+62812345678" not in text  # never stored: pseudonymised at the door


def test_the_key_is_kept_apart_and_rotation_destroys_the_old_one(tmp_path, monkeypatch):
    monkeypatch.delenv("TWIN_CALLER_KEY", raising=False)
    first = caller_key(tmp_path)
    assert os.stat(tmp_path / "caller.key").st_mode & 0o777 == 0o600
    assert caller_key(tmp_path) == first
    second = rotate_caller_key(tmp_path)
    assert second != first and caller_key(tmp_path) == second
    assert first.hex() not in (tmp_path / "caller.key").read_text()
    assert os.stat(tmp_path / "caller.key").st_mode & 0o777 == 0o600
    assert len(key_id(second)) == 12 and key_id(second) not in second.hex()
    monkeypatch.setenv("TWIN_CALLER_KEY", "ab" * 32)
    with pytest.raises(InputError, match="TWIN_CALLER_KEY"):
        rotate_caller_key(tmp_path)


def test_a_live_twin_applies_its_retention_and_rotation_on_the_audit_chain(
    helsinki_city, tmp_path, monkeypatch
):
    """The sensors component of a live twin: every hour it forgets what is older than its
    retention period, and every so often it rotates the key; both are events on the
    chained timeline of the live file."""
    from twin import audit
    from twin.live.run import LiveStore
    from twin.sensors.component import SensorsComponent
    from twin.sensors.registry import load_registry
    from twin.sim import Simulation
    from twin.sim.timeline import Timeline

    monkeypatch.delenv("TWIN_CALLER_KEY", raising=False)
    db = tmp_path / "live.duckdb"
    live = LiveStore(db)
    key = caller_key(tmp_path)
    sensors = SensorsComponent(
        load_registry(None, helsinki_city),
        live.sensors,
        key=key,
        retain_days=1 / 24,  # an hour
        rotate_key_days=2 / 24,
        key_folder=tmp_path,
    )
    timeline = Timeline(on_batch=live.add_batch)
    sim = Simulation(duration=3 * 3600 + 1, seed=1, start=START, timeline=timeline)
    sim.add(sensors)

    def calls():  # a call every 20 minutes, as the feed would bring them
        for i in range(9):
            sensors.take(sim, _call(i, sim.clock()), received=sim.clock())
            yield sim.env.timeout(1200)

    sim.env.process(calls())
    sim.run()
    timeline.flush()
    deleted = timeline.events("personal_data_deleted")
    assert [d["t"] for d in deleted] == [7200.0, 10800.0]  # hourly, once there was something
    assert [d["calls"] for d in deleted] == [3, 3]  # older than an hour at each check
    assert deleted[0]["before"] == (START + timedelta(hours=1)).isoformat()
    rotated = timeline.events("pseudonym_key_rotated")
    assert [r["t"] for r in rotated] == [7200.0]
    assert caller_key(tmp_path) != key and rotated[0]["key_id"] == key_id(caller_key(tmp_path))
    pseudonyms = [
        r[0]
        for r in live.sensors.con.execute(
            "SELECT caller FROM calls WHERE caller IS NOT NULL ORDER BY received_at"
        ).fetchall()
    ]
    assert len(pseudonyms) == 3  # the last hour's, the later ones under the new key
    live.close()
    verdict, _ = audit.verify_live(db)
    assert verdict.intact and verdict.records == len(timeline)
    con = duckdb.connect(str(db), read_only=True)
    kinds = {r[0] for r in con.execute("SELECT DISTINCT kind FROM timeline").fetchall()}
    con.close()
    assert {"personal_data_deleted", "pseudonym_key_rotated"} <= kinds
    assert ev.REGISTRY["personal_data_deleted"] is ev.PersonalDataDeleted
