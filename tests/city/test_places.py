"""Places of a scenario, resolved on a real city: snapping, areas, and clear errors."""

from __future__ import annotations

import pytest

from twin.city import City
from twin.city.places import CityNet, resolve_events
from twin.scenario import ScenarioError, scenario_from_dict


@pytest.fixture(scope="module")
def helsinki(helsinki_city) -> City:
    return helsinki_city


def scenario(*events):
    return scenario_from_dict(
        {
            "name": "places",
            "start": "2026-12-01T07:00:00+02:00",
            "duration": "1h",
            "traffic": {"demand": {"veh_per_hour": {"07": 100}}},
            "events": list(events),
        }
    )


def accident(at, **kw):
    return {"type": "accident", "at": at, "start": "07:10", "duration": "10min", **kw}


def test_each_kind_of_place_snaps_to_a_road(helsinki):
    net = CityNet(helsinki)
    poi = helsinki.pois.iloc[0]
    way = next(iter(net.edges["orig_ids"].iloc[0]))
    resolved = resolve_events(
        scenario(
            accident({"lat": 60.16914, "lon": 24.93987}, lanes=1),
            accident({"osm_way": way}),
            accident({"poi": poi["name"]}),
            accident({"sector": "S07"}),
            accident({"edge": net.edges.index[3]}),
        ),
        helsinki,
    )
    for r in resolved:
        assert len(r.edges) == 1 and r.edges[0] in net.edges.index
        assert r.begin_s == 600.0 and r.end_s == 1200.0
    assert resolved[2].edges == [poi["sumo_edge"]]
    assert way in net.edges.loc[resolved[1].edges[0], "orig_ids"]


def test_accident_lanes_are_capped_at_the_road(helsinki):
    (r,) = resolve_events(scenario(accident({"lat": 60.16914, "lon": 24.93987}, lanes=9)), helsinki)
    assert r.lanes == 0  # every lane


def test_areas_close_the_roads_inside(helsinki):
    circle = {
        "type": "flood",
        "area": {"center": {"lat": 60.1665, "lon": 24.9515}, "radius_m": 250},
        "start": "07:15",
        "duration": "1h",
    }
    sectors = {
        "type": "closure",
        "area": {"sectors": ["S07"]},
        "start": "07:15",
        "duration": "20min",
    }
    demo = {
        "type": "demonstration",
        "area": {"center": {"lat": 60.1705, "lon": 24.9430}, "radius_m": 300},
        "start": "07:30",
        "duration": "20min",
        "extra_veh_per_hour": 300,
    }
    flood, closure, rally = resolve_events(scenario(circle, sectors, demo), helsinki)
    assert len(flood.edges) > 5 and flood.emergency_access is False
    net = CityNet(helsinki)
    assert {net.sector_of_edge[e] for e in closure.edges} == {"S07"}
    assert rally.extra_veh_per_hour == 300 and rally.approach_edges
    assert not set(rally.approach_edges) & set(rally.edges)
    assert flood.end_s == 3600.0  # capped at the end of the run


def test_every_bad_place_is_listed(helsinki):
    events = [
        accident({"lat": 60.10, "lon": 24.90}),
        accident({"poi": "No Such Station"}),
        accident({"sector": "S99"}),
        accident({"osm_way": 1}),
        {
            "type": "closure",
            "area": {"center": {"lat": 60.30, "lon": 25.30}, "radius_m": 100},
            "start": "07:15",
            "duration": "5min",
        },
    ]
    with pytest.raises(ScenarioError) as info:
        resolve_events(scenario(*events), helsinki, source="plan.yaml")
    problems = dict(info.value.problems)
    assert problems["events[0].at"] == "point (60.10000, 24.90000) is 7.4 km outside the city"
    assert "no POI named 'No Such Station'" in problems["events[1].at"]
    assert "no sector 'S99' (the city has S01 to S10)" in problems["events[2].at"]
    assert "osm way 1 is not a road" in problems["events[3].at"]
    assert "outside the city" in problems["events[4].area.center"]
    assert str(info.value).startswith("plan.yaml: 5 problems")
