"""The response model in whole runs on the default city: with and without SUMO traffic."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from twin import kpi
from twin.runs import run_scenario
from twin.scenario import ScenarioError, scenario_from_dict

#: Allowed unit state changes (the life-cycle of the issue).
NEXT = {
    "available": {"dispatched", "off_duty"},
    "off_duty": {"available", "dispatched"},
    "dispatched": {"en_route"},
    "en_route": {"on_scene", "returning"},
    "on_scene": {"transporting", "returning"},
    "transporting": {"at_hospital"},
    "at_hospital": {"returning"},
    "returning": {"available", "off_duty"},
}

RESPONSE = {
    "call_centre": {
        "pools": [{"name": "integrated", "numbers": ["110", "112", "119", "113"], "call_takers": 2}]
    },
    "incidents": {
        "rates": {"crime": 5, "traffic_accident": 3, "medical": 4, "fire": 0.5, "public_order": 1},
        "scripted": [
            {
                "id": "market-fire",
                "type": "fire",
                "at": {"lat": 60.1676, "lon": 24.9525},
                "start": "07:10",
                "priority": 1,
                "extra_calls": 3,
            }
        ],
    },
    "units": [
        {"name": "P", "type": "police_car", "count": 4, "base": "police"},
        {"name": "M", "type": "motorbike", "count": 2, "base": "police", "shift": "07:30-19:00"},
        {"name": "A", "type": "ambulance", "count": 2, "base": "hospital"},
        {"name": "F", "type": "fire_engine", "count": 1, "base": "fire"},
    ],
}


def scenario(city: Path, **changes):
    data = {
        "name": "response",
        "city": str(city),
        "start": "2026-12-01T07:00:00+02:00",
        "duration": "2h",
        "seed": 5,
        "response": RESPONSE,
    }
    data.update(changes)
    return scenario_from_dict(data)


@pytest.fixture(scope="module")
def runs(helsinki_city, tmp_path_factory):
    base = tmp_path_factory.mktemp("response")
    sc = scenario(helsinki_city.path)
    return [run_scenario(sc, out=base / name, progress=False) for name in ("a", "b")]


def q(sql: str) -> list[tuple]:
    """All rows of a query, on a connection of its own."""
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def states(path: Path):
    return q(
        f"SELECT t, unit, state, incident FROM '{path}/timeline.parquet' "
        "WHERE kind = 'unit_state' ORDER BY seq"
    )


def test_same_seed_same_timeline_and_kpis(runs):
    a, b = runs
    assert a.info["timeline_sha256"] == b.info["timeline_sha256"]
    assert a.kpis == b.kpis
    assert a.kpis["incidents"] >= 20 and a.kpis["calls"] > a.kpis["incidents"]


def test_every_unit_follows_its_life_cycle(runs):
    last: dict[str, str] = {}
    seen = set()
    for _, unit, state, _ in states(runs[0].path):
        if unit in last:
            assert state in NEXT[last[unit]], f"{unit}: {last[unit]} -> {state}"
        last[unit] = state
        seen.add(state)
    assert {"dispatched", "en_route", "on_scene", "returning", "available"} <= seen
    assert {"transporting", "at_hospital", "off_duty"} <= seen  # ambulances; motorbikes' shift
    # motorbikes are off duty until 07:30 and nobody sends them before
    for t, unit, state, _ in states(runs[0].path):
        if unit.startswith("M-") and state == "dispatched":
            assert t >= 1800


def test_incidents_calls_and_dispatch_add_up(runs):
    path = runs[0].path / "timeline.parquet"
    inc = kpi.incident_times(path)
    scripted = inc[inc["incident"].str.endswith("market-fire")]
    assert len(scripted) == 1 and scripted.iloc[0]["occurred_t"] == 600
    calls = q(
        f"SELECT count(*) FROM '{path}' WHERE kind = 'call_placed' AND incident = '{scripted.iloc[0]['incident']}' AND attempt = 1"
    )[0]
    assert calls == (4,)  # the first call and its 3 duplicates
    # every incident the CAD knows has each need served or waiting
    needs = q(f"SELECT incident, len(needs) FROM '{path}' WHERE kind = 'incident_occurred'")
    known = {
        r[0]
        for r in q(f"SELECT incident FROM '{path}' WHERE kind = 'call_ended' AND NOT duplicate")
    }
    sent = dict(
        q(
            f"SELECT incident, count(*) FROM '{path}' WHERE kind = 'unit_state' AND state = 'dispatched' GROUP BY ALL"
        )
    )
    queued = dict(
        q(
            f"SELECT incident, count(*) FROM '{path}' WHERE kind = 'incident_pending' AND action = 'queued' GROUP BY ALL"
        )
    )
    for incident, n in needs:
        if incident in known:
            assert sent.get(incident, 0) + queued.get(incident, 0) >= n
    # processing, response and utilisation are sane
    k = runs[0].kpis
    assert 0 < k["processing_s"] and 0 < k["response_p50_s"] <= k["response_p90_s"]
    util = kpi.utilisation(path)
    assert ((util["utilisation"] >= 0) & (util["utilisation"] <= 1)).all()
    assert set(kpi.answers_by_number(path)["number"]) >= {"110", "119", "all"}
    # the report has its response sections
    html = (runs[0].path / "report.html").read_text(encoding="utf-8")
    assert "Response time" in html and "Unit utilisation" in html


@pytest.mark.slow
def test_units_drive_through_sumo_traffic(helsinki_city, tmp_path):
    sc = scenario(
        helsinki_city.path,
        duration="40min",
        traffic={"demand": {"veh_per_hour": {"07": 1500}}},
        events=[
            {
                "type": "closure",
                "roads": [{"lat": 60.16914, "lon": 24.93987}],
                "start": "07:05",
                "duration": "30min",
            }
        ],
    )
    result = run_scenario(sc, out=tmp_path / "traffic", progress=False)
    again = run_scenario(sc, out=tmp_path / "again", progress=False)
    assert again.info["timeline_sha256"] == result.info["timeline_sha256"]  # same seed, same run
    path = result.path / "timeline.parquet"
    ordered = q(f"SELECT t, trip FROM '{path}' WHERE kind = 'drive_ordered'")
    ended = dict(q(f"SELECT trip, t FROM '{path}' WHERE kind = 'drive_ended' AND reached"))
    assert len(ordered) >= 5
    assert len(ended) >= len(ordered) * 0.7  # the rest still drive at the end of the run
    for t, trip in ordered:
        if trip in ended:
            assert ended[trip] > t
    # each arrival in SUMO is the unit's arrival on scene, to the second
    scene = q(
        f"SELECT s.t - d.t FROM '{path}' s JOIN '{path}' d ON s.unit = d.unit AND d.kind = 'drive_ended' "
        f"AND s.kind = 'unit_state' AND s.state = 'on_scene' AND abs(s.t - d.t) < 1e-9"
    )
    assert scene
    # the unit vehicles are SUMO trips too
    trips = q(f"SELECT count(*) FROM '{path}' WHERE kind = 'trip' AND vehicle LIKE 'unit:%'")[0]
    assert trips[0] >= len(ended) * 0.9


def test_scenario_errors_name_the_field(helsinki_city):
    bad = {
        **RESPONSE,
        "call_centre": {"pools": [{"name": "p", "numbers": ["110", "112"], "call_takers": 2}]},
        "units": [{"name": "P", "type": "police_car", "count": 2, "base": "police"}],
        "dispatch": {"policy": "beats", "beats": {"S01": ["P-1", "P-9"]}},
    }
    with pytest.raises(ScenarioError) as err:
        scenario(helsinki_city.path, response=bad)
    text = str(err.value)
    assert "response.call_centre.pools: no pool answers 119, 113" in text
    assert "response.dispatch.beats.S01: no unit called 'P-9'" in text
    assert "medical incidents need ambulance units" in text
    with pytest.raises(ScenarioError, match=r"response.units\[0\].base: .*outside the city"):
        run_scenario(
            scenario(
                helsinki_city.path,
                response={
                    **RESPONSE,
                    "units": [
                        {"name": "P", "type": "police_car", "base": {"lat": 60.3, "lon": 24.9}},
                        *RESPONSE["units"][1:],
                    ],
                },
            ),
            out=Path("/nonexistent/never-written"),
            progress=False,
        )


def test_accidents_on_the_roads_become_incidents_with_calls(helsinki_city, tmp_path):
    sc = scenario(
        helsinki_city.path,
        duration="30min",
        events=[
            {
                "type": "accident",
                "id": "crash",
                "at": {"lat": 60.16914, "lon": 24.93987},
                "start": "07:05",
                "duration": "20min",
                "lanes": 9,
            },
        ],
    )
    result = run_scenario(sc, out=tmp_path / "crash", progress=False)
    path = result.path / "timeline.parquet"
    rows = q(
        f"SELECT t, incident, incident_type, origin FROM '{path}' WHERE kind = 'incident_occurred' AND origin = 'road_event'"
    )
    assert len(rows) == 1 and rows[0][0] == 300 and rows[0][2] == "traffic_accident"
    assert rows[0][1].endswith("-crash")
    assert (
        q(
            f"SELECT count(*) FROM '{path}' WHERE kind = 'call_placed' AND incident = '{rows[0][1]}'"
        )[0][0]
        >= 1
    )


def test_dispatch_estimates_follow_the_speeds_traffic_reports(helsinki_city):
    import datetime as dt

    import numpy as np

    from twin.response.component import SumoTravel
    from twin.routing import TravelTimeEngine
    from twin.sim import Simulation

    sim = Simulation(duration=600, seed=1, start=dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC))
    engine = TravelTimeEngine.from_city(helsinki_city)
    travel = SumoTravel(sim, engine, helsinki_city, speed_factor=1.0, emit=lambda e: None)
    nodes = engine.nodes.tolist()
    free = travel.estimate(nodes[:20], nodes[50])
    edges = sorted(set(helsinki_city.mapping["sumo_edge"]))

    def sample(t: float, tti: float) -> None:
        n = len(edges)
        sim.timeline.extend(
            t,
            "edge_state",
            source="traffic",
            edge=edges,
            sector=[""] * n,
            vehicles=[5] * n,
            halting=[0] * n,
            speed_mps=[5.0] * n,
            density_veh_km=[10.0] * n,
            tti=[tti] * n,
        )

    sample(60, 2.0)  # every road at half its free-flow speed
    np.testing.assert_allclose(travel.estimate(nodes[:20], nodes[50]), 2 * free, rtol=1e-9)
    sample(120, 1.0)  # flowing again
    np.testing.assert_allclose(travel.estimate(nodes[:20], nodes[50]), free, rtol=1e-9)
