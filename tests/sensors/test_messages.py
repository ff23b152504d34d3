"""Message schemas and the sensors file."""

from __future__ import annotations

import doctest
import json

import pytest
from pydantic import ValidationError

from twin.scenario import ScenarioError
from twin.sensors import messages
from twin.sensors.messages import KINDS, json_schemas, parse, parse_json, parse_lines, pseudonymise
from twin.sensors.registry import load_registry

T = "2026-12-01T07:05:00+02:00"
P = {"type": "Point", "coordinates": [24.94, 60.17]}
GOOD = [
    {
        "type": "TrafficFlowObserved",
        "id": "1",
        "refDevice": "d",
        "dateObservedFrom": "2026-12-01T07:00:00+02:00",
        "dateObservedTo": T,
        "intensity": 12,
        "averageVehicleSpeed": 31.0,
    },
    {
        "type": "TravelTimeObserved",
        "id": "2",
        "refDeviceFrom": "c1",
        "refDeviceTo": "c2",
        "dateObserved": T,
        "travelTime": 95.0,
    },
    {
        "type": "Vehicle",
        "id": "P-1",
        "dateObserved": T,
        "location": P,
        "serviceStatus": "en_route",
        "speed": 40,
    },
    {
        "type": "Alert",
        "id": "4",
        "category": "traffic",
        "subCategory": "carAccident",
        "location": P,
        "dateIssued": T,
    },
    {
        "type": "EmergencyCall",
        "id": "5",
        "number": "119",
        "dateReceived": T,
        "location": P,
        "caller": "+62811",
    },
    {
        "type": "CrowdFlowObserved",
        "id": "6",
        "refDevice": "crowd",
        "dateObserved": T,
        "peopleCount": 800,
    },
    {
        "type": "FloodMonitoring",
        "id": "7",
        "refDevice": "g",
        "dateObserved": T,
        "currentLevel": 1.4,
    },
]


def test_every_kind_parses_and_has_a_schema():
    assert [parse(m).type for m in GOOD] == list(KINDS)
    schema = json_schemas()
    assert set(KINDS) <= set(schema["$defs"])


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"dateObservedTo": "2026-12-01T07:05:00"}, "timezone"),
        ({"dateObservedTo": "2026-12-01T06:59:00+02:00"}, "must span"),
        ({"intensity": 5000}, "more than any road carries"),
        ({"averageVehicleSpeed": 400}, "less than or equal to 250"),
    ],
)
def test_bad_counts_are_refused_with_the_reason(change, words):
    with pytest.raises(ValidationError, match=words):
        parse({**GOOD[0], **change})


def test_pseudonyms_are_stable_keyed_and_not_the_number():
    a, b = pseudonymise("+62811", b"1" * 32), pseudonymise(" +62811 ", b"1" * 32)
    assert a == b and "62811" not in a and a != pseudonymise("+62811", b"2" * 32)


def test_the_sensors_file_snaps_and_names_its_problems(helsinki_city, tmp_path):
    from pathlib import Path

    good = load_registry(
        Path(__file__).resolve().parents[2] / "scenarios" / "sensors" / "helsinki.yaml",
        helsinki_city,
    )
    assert good.sensors["det-kaivokatu"].edge and good.sensors["gauge-kauppatori"].floods
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sensors:\n"
        "  - {id: far, kind: detector, lat: 60.30, lon: 24.94}\n"
        "  - {id: g, kind: gauge, lat: 60.167, lon: 24.9525}\n"
    )
    with pytest.raises(ScenarioError, match=r"sensors\[1\]: a gauge needs threshold_m"):
        load_registry(bad, helsinki_city)
    bad.write_text("sensors:\n  - {id: far, kind: detector, lat: 60.30, lon: 24.94}\n")
    with pytest.raises(ScenarioError, match=r"sensors\[0\]: far is .* m from the nearest road"):
        load_registry(bad, helsinki_city)


def test_each_kind_is_kept_whole_and_read_through_its_typed_view(helsinki_city, tmp_path):
    import json
    from datetime import datetime
    from pathlib import Path

    import duckdb

    from twin.sensors.feeds import observed_time
    from twin.sensors.ingest import Ingest
    from twin.sensors.store import SensorStore

    registry = load_registry(
        Path(__file__).resolve().parents[2] / "scenarios" / "sensors" / "helsinki.yaml",
        helsinki_city,
    )
    devices = {
        "d": "det-kaivokatu",
        "c1": "cam-kamppi",
        "c2": "cam-kruununhaka",
        "crowd": "crowd-rautatientori",
        "g": "gauge-kauppatori",
    }
    messages = []
    for m in GOOD:
        m = {k: devices.get(v, v) if k.startswith("refDevice") else v for k, v in m.items()}
        messages.append({**m, "address": {"streetAddress": "Kaivokatu"}})  # FIWARE extras kept
    now = datetime.fromisoformat("2026-12-01T07:06:00+02:00")
    store = SensorStore(tmp_path / "h.duckdb")
    ing = Ingest(registry, store, key=b"k" * 32, clock=lambda: now)
    assert all(ing.handle(json.dumps(m), received=now) for m in messages), ing.last_reason
    assert [observed_time(json.dumps(m)) for m in messages] == [now.replace(minute=5)] * 7
    store.close()
    edge = registry.sensors["det-kaivokatu"].edge
    t = now.replace(minute=5).timestamp()
    with duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True) as con:

        def one(sql: str) -> tuple:
            (row,) = con.execute(sql).fetchall()
            return row

        assert one("SELECT sensor, edge, vehicles, interval_s, speed_kmh FROM counts") == (
            "det-kaivokatu",
            edge,
            12,
            300.0,
            31.0,
        )
        assert one("SELECT travel_time_s, sensor, sensor_to, vehicles FROM travel_times") == (
            95.0,
            "cam-kamppi",
            "cam-kruununhaka",
            1,  # vehicles matched: one by default
        )
        assert one("SELECT unit, status, speed_kmh, lat, lon FROM avl") == (
            "P-1",
            "en_route",
            40.0,
            60.17,
            24.94,
        )
        assert one("SELECT category, severity, lat FROM alerts") == ("carAccident", "medium", 60.17)
        number, category, caller, payload = one(
            "SELECT number, category, caller, payload FROM calls"
        )
        assert (number, category, caller) == ("119", "other", pseudonymise("+62811", b"k" * 32))
        assert "+62811" not in payload  # not in the stored message either
        assert one("SELECT people FROM crowds") == (800,)
        assert one("SELECT level_m, sensor FROM water_levels") == (1.4, "gauge-kauppatori")
        rows = con.execute("SELECT kind, epoch(observed_at), payload FROM readings").fetchall()
    assert sorted(r[0] for r in rows) == sorted(m["type"] for m in GOOD)
    assert all(r[1] == t for r in rows)
    assert all('"streetAddress": "Kaivokatu"' in r[2] for r in rows)  # FIWARE extras kept


def test_the_docstring_examples_hold():
    assert doctest.testmod(messages).failed == 0


def test_lines_validated_together_fail_alone():
    """A batch gives each line the verdict it has alone; no line can borrow from its
    neighbours (a line of two objects, or halves of one split over two lines)."""
    texts = [json.dumps(m) for m in GOOD]
    texts[2:2] = [
        '{"a": 1},{"b": 2}',
        '{"type": "Vehicle", "id": "P-2",',
        '"dateObserved": "x"}',
        "[]",
        "",
    ]
    out = parse_lines(texts)
    assert len(out) == len(texts)
    for text, got in zip(texts, out, strict=True):
        try:
            alone = parse_json(text)
        except ValidationError:
            assert got == text
        else:
            assert got == alone


def test_every_priority_goes_out_as_a_severity_and_comes_back():
    from twin.sensors.messages import PRIORITY_OF_SEVERITY, SEVERITY_OF_PRIORITY

    assert {p: PRIORITY_OF_SEVERITY[SEVERITY_OF_PRIORITY[p]] for p in (1, 2, 3)} == {
        1: 1,
        2: 2,
        3: 3,
    }
