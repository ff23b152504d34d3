"""Demand from the city (a gravity model): trips where the activity is, at the lengths people
drive, with through traffic at the fringe, every trip routed, the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from twin.scenario import load_scenario
from twin.traffic.demand import scenario_demand
from twin.traffic.gravity import _roads


def _scenario(folder, city, name="city", **demand):
    doc = {
        "name": name,
        "city": str(city),
        "start": "2026-12-01T07:00:00+02:00",
        "duration": "1h",
        "seed": 11,
        "traffic": {"demand": {"veh_per_hour": {"07": 1200}, **demand}},
        "outputs": {"report": False},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_scenario(path)


def _trips(paths):
    import sumolib

    return [
        (v.id, float(v.depart), v.route[0].edges.split())
        for p in paths
        for v in sumolib.xml.parse(str(p), "vehicle")
    ]


@pytest.fixture(scope="module")
def demands(helsinki_city, tmp_path_factory):
    folder = tmp_path_factory.mktemp("demand")
    out = {}
    for name, demand in {
        "city": {"method": "city"},
        "again": {"method": "city"},
        "random": {"method": "random"},
        "local": {"method": "city", "trip_length_m": 400, "through_share": 0.0},
    }.items():
        (folder / name).mkdir()
        scenario = _scenario(folder, helsinki_city.path, name=name, **demand)
        out[name] = _trips(scenario_demand(scenario, helsinki_city, [], folder / name))
    return out


def _centre(net, edge):
    shape = net.getEdge(edge).getShape()
    return np.array(shape[len(shape) // 2])


def test_every_trip_is_routed_and_the_seed_decides(demands):
    assert len(demands["city"]) == 1200  # one hour at 1,200 an hour: none dropped
    assert demands["city"] == demands["again"]
    departs = [t for _, t, _ in demands["city"]]
    assert 0 <= min(departs) and max(departs) <= 3600
    # uniform over the hour, not bunched
    assert np.histogram(departs, bins=4, range=(0, 3600))[0].min() > 250


def test_trip_lengths_follow_the_distance_given(demands, helsinki_city):
    import sumolib

    net = sumolib.net.readNet(str(helsinki_city.net_path))

    def straight(trips):
        return np.array(
            [np.linalg.norm(_centre(net, r[0]) - _centre(net, r[-1])) for _, _, r in trips]
        )

    city, local, random = (straight(demands[k]) for k in ("city", "local", "random"))
    assert local.min() >= 300 - 1  # min_trip_m
    # a short trip length keeps trips local; the city default is shorter than random trips,
    # which cross the extract from fringe to fringe
    assert np.median(local) < np.median(city) < np.median(random)
    assert np.median(local) < 700


def test_trips_start_where_the_activity_is_and_at_the_fringe(demands, helsinki_city):
    roads = _roads(
        str(helsinki_city.net_path.resolve()),
        tuple(
            sorted(
                (str(e), str(c))
                for e, c in zip(
                    helsinki_city.pois["sumo_edge"], helsinki_city.pois["category"], strict=True
                )
            )
        ),
    )
    fringe_in = set(roads.ids[roads.fringe_in])
    share = np.mean([r[0] in fringe_in for _, _, r in demands["city"]])
    # 30 % of origins drawn at the fringe, plus the few activity draws that land there
    assert 0.27 <= share <= 0.45
    assert np.mean([r[0] in fringe_in for _, _, r in demands["local"]]) < 0.1
    poi_edges = set(helsinki_city.pois["sumo_edge"])
    local = np.mean([r[-1] in poi_edges for _, _, r in demands["local"]])
    random = np.mean([r[-1] in poi_edges for _, _, r in demands["random"]])
    assert local > 1.5 * random  # destinations lean towards markets, schools, hubs


@pytest.mark.slow
def test_the_default_city_at_rush_hour_does_not_jam(tmp_path, helsinki_city, monkeypatch):
    """The morning rush's own flows (1,500 then 1,800 vehicles an hour), from the city: no
    vehicle stuck, nearly every trip done."""
    from twin.runs import run_scenario

    monkeypatch.chdir(tmp_path)
    scenario = _scenario(tmp_path, helsinki_city.path, method="city")
    doc = scenario.model_dump(mode="json")
    doc["duration"] = 5400
    doc["traffic"]["demand"]["veh_per_hour"] = {"07": 1500, "08": 1800}
    (tmp_path / "rush.yaml").write_text(yaml.safe_dump(doc))
    kpis = run_scenario(tmp_path / "rush.yaml", progress=False).kpis
    assert kpis["teleports"] == 0 and kpis["gridlock"] is False
    assert kpis["completed_share"] > 0.95


def test_trips_start_where_the_buildings_are(jakarta_build, tmp_path):
    """Mapped buildings weigh as trip ends: the demand's origins fall on the roads beside
    Menteng's buildings as often as the gravity model with their floor area says (within
    four standard errors), and far more often than frontage and POIs alone would make
    them."""
    city = jakarta_build.city
    n = 5000
    scenario = _scenario(tmp_path, city.path, name="built", method="city", through_share=0.0)
    doc = yaml.safe_load((tmp_path / "built.yaml").read_text())
    doc["traffic"]["demand"]["veh_per_hour"] = {"07": n}
    (tmp_path / "built.yaml").write_text(yaml.safe_dump(doc))
    scenario = load_scenario(tmp_path / "built.yaml")
    (tmp_path / "out").mkdir()
    origins = [r[0] for _, _, r in _trips(scenario_demand(scenario, city, [], tmp_path / "out"))]
    pois = tuple(
        sorted(
            (str(e), str(c))
            for e, c in zip(city.pois["sumo_edge"], city.pois["category"], strict=True)
        )
    )
    floor = tuple(sorted(zip(city.activity["sumo_edge"], city.activity["floor_m2"], strict=True)))
    net = str(city.net_path.resolve())
    # the roads with the most floor area beside them: a fifth of the city's floor area
    act = city.activity.sort_values("floor_m2", ascending=False)
    top = act[act["floor_m2"].cumsum() <= 0.2 * act["floor_m2"].sum()]["sumo_edge"]

    def expected(roads):
        ok = roads.allows["passenger"]
        w = np.where(ok, roads.activity, 0.0)
        return w[np.isin(roads.ids, top)].sum() / w.sum()

    with_floor, without = expected(_roads(net, pois, floor)), expected(_roads(net, pois))
    seen = np.mean(np.isin(origins, top))
    se = np.sqrt(with_floor * (1 - with_floor) / len(origins))
    assert abs(seen - with_floor) < 4 * se, (seen, with_floor, without)
    assert seen - without > 4 * se
