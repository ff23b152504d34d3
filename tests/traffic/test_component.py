"""The traffic component in a real SUMO: road events act as intended, and both
simulators (libsumo, traci) give the same timeline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from twin.city.places import CityNet, resolve_events
from twin.scenario import scenario_from_dict
from twin.sim import Simulation
from twin.traffic import DemandPiece, TrafficComponent, random_routes

START = dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
MANNERHEIMINTIE = {"lat": 60.16914, "lon": 24.93987}


@pytest.fixture(scope="module")
def routes(helsinki_city, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demand")
    return random_routes(
        helsinki_city.net_path, DemandPiece("d", 0, 1500, 2400, 5), folder, min_trip_m=300
    )


class Probe:
    """Calls ``check(api, t)`` after every SUMO step, on the same clock."""

    name = "probe"

    def __init__(self, traffic: TrafficComponent, check) -> None:
        self.traffic, self.check = traffic, check

    def start(self, sim):
        def proc():
            yield sim.env.timeout(0)  # after the traffic process, at every tick
            while True:
                yield sim.env.timeout(self.traffic.step_length)
                self.check(self.traffic.api, sim.env.now)

        sim.env.process(proc())

    def close(self, sim):
        pass


def simulate(
    city, routes, tmp_path, events, *, duration=1200, simulator="libsumo", check=None, mode="micro"
):
    sc = scenario_from_dict(
        {
            "name": "t",
            "start": START.isoformat(),
            "duration": duration,
            "seed": 5,
            "traffic": {"demand": {"veh_per_hour": {"07": 1}}},
            "events": events,
        }
    )
    resolved = resolve_events(sc, city)
    sim = Simulation(duration=duration, seed=5, start=START)
    traffic = TrafficComponent(
        net_file=city.net_path,
        route_files=[routes],
        edge_sector=CityNet(city).sector_of_edge,
        events=resolved,
        workdir=tmp_path,
        seed=5,
        simulator=simulator,
        mode=mode,
    )
    sim.add(traffic)
    if check is not None:
        sim.add(Probe(traffic, check))
    sim.run()
    return sim, resolved


def test_a_closed_road_carries_no_passenger_vehicle_while_closed(helsinki_city, routes, tmp_path):
    closure = {"type": "closure", "roads": [MANNERHEIMINTIE], "start": "+5min", "duration": "10min"}
    (edge,) = resolve_events(
        scenario_from_dict(
            {
                "name": "t",
                "start": START.isoformat(),
                "duration": 1200,
                "traffic": {"demand": {"veh_per_hour": {"07": 1}}},
                "events": [closure],
            }
        ),
        helsinki_city,
    )[0].edges
    seen = {"before": set(), "at_start": None, "during": set(), "after": set()}

    def check(api, t):
        on_edge = set(api.edge.getLastStepVehicleIDs(edge))
        if t <= 300:
            seen["before"] |= on_edge
            seen["at_start"] = on_edge
        elif t < 900:
            seen["during"] |= on_edge - seen["at_start"]
        else:
            seen["after"] |= on_edge

    sim, _ = simulate(helsinki_city, routes, tmp_path, [closure], check=check)
    assert seen["before"], (
        "the road carried traffic before it closed (else the test proves nothing)"
    )
    assert seen["during"] == set(), (
        f"vehicles entered the closed road: {sorted(seen['during'])[:5]}"
    )
    assert seen["after"], "the road carries traffic again once it reopens"
    started = sim.timeline.events("road_event_started")
    ended = sim.timeline.events("road_event_ended")
    assert [(e["t"], e["edges"]) for e in started] == [(300.0, [edge])]
    assert [e["t"] for e in ended] == [900.0]


def test_rerouted_vehicles_avoid_the_closure(helsinki_city, routes, tmp_path):
    closure = {"type": "closure", "roads": [MANNERHEIMINTIE], "start": "+5min", "duration": "10min"}
    bad = []

    def check(api, t):
        if 301 <= t < 900:
            closed = set(sim_events[0].edges)
            for vid in api.vehicle.getIDList():
                route = api.vehicle.getRoute(vid)
                ahead = route[api.vehicle.getRouteIndex(vid) + 1 :]
                if closed & set(ahead):
                    bad.append((t, vid))

    sim_events = resolve_events(
        scenario_from_dict(
            {
                "name": "t",
                "start": START.isoformat(),
                "duration": 1200,
                "traffic": {"demand": {"veh_per_hour": {"07": 1}}},
                "events": [closure],
            }
        ),
        helsinki_city,
    )
    sim, _ = simulate(helsinki_city, routes, tmp_path, [closure], check=check)
    assert bad == [], f"vehicles still routed over the closed road: {bad[:5]}"
    rerouted = sim.timeline.events("vehicles_rerouted")
    assert sum(r["vehicles"] + r["diverted"] for r in rerouted) > 0


def test_an_accident_blocks_its_lanes_and_leaves_the_others(helsinki_city, routes, tmp_path):
    net = CityNet(helsinki_city)
    two_lane = net.edges[
        (net.edges["lanes"] == 2) & net.edges["name"].str.contains("Mannerheimintie")
    ].index[0]
    accident = {
        "type": "accident",
        "at": {"edge": two_lane},
        "start": "+5min",
        "duration": "10min",
        "lanes": 1,
    }
    lane0, lane1 = f"{two_lane}_0", f"{two_lane}_1"
    seen = {"at_start": set(), "lane0_during": set(), "lane1_during": set()}

    def check(api, t):
        if t <= 300:
            seen["at_start"] = set(api.lane.getLastStepVehicleIDs(lane0))
        elif t < 900:
            seen["lane0_during"] |= set(api.lane.getLastStepVehicleIDs(lane0)) - seen["at_start"]
            seen["lane1_during"] |= set(api.lane.getLastStepVehicleIDs(lane1))
            assert api.lane.getAllowed(lane0) == ("emergency", "authority") or set(
                api.lane.getAllowed(lane0)
            ) == {"emergency", "authority"}

    sim, resolved = simulate(helsinki_city, routes, tmp_path, [accident], check=check)
    assert resolved[0].lanes == 1
    assert seen["lane0_during"] == set(), "no vehicle entered the blocked lane"
    assert seen["lane1_during"], "traffic still used the open lane"
    (started,) = sim.timeline.events("road_event_started")
    assert started["lanes_closed"] == 1
    assert not sim.timeline.events("vehicles_rerouted"), (
        "a road with an open lane needs no rerouting"
    )


def test_a_flood_closes_to_everyone_and_reopens_as_it_was(helsinki_city, routes, tmp_path):
    flood = {
        "type": "flood",
        "area": {"center": {"lat": 60.1665, "lon": 24.9515}, "radius_m": 150},
        "start": "+2min",
        "duration": "5min",
    }
    states = {}

    def check(api, t):
        lane = f"{resolved_edges[0]}_0"
        if t == 60:
            states["before"] = api.lane.getAllowed(lane)
        if t == 200:
            states["during"] = (api.lane.getAllowed(lane), len(api.lane.getDisallowed(lane)))
        if t == 500:
            states["after"] = api.lane.getAllowed(lane)

    resolved_edges = resolve_events(
        scenario_from_dict(
            {
                "name": "t",
                "start": START.isoformat(),
                "duration": 600,
                "traffic": {"demand": {"veh_per_hour": {"07": 1}}},
                "events": [flood],
            }
        ),
        helsinki_city,
    )[0].edges
    simulate(helsinki_city, routes, tmp_path, [flood], duration=600, check=check)
    allowed_during, disallowed_count = states["during"]
    assert allowed_during == () and disallowed_count > 20  # nothing may enter, not even emergency
    assert states["after"] == states["before"]


def test_libsumo_and_traci_give_the_same_timeline(helsinki_city, routes, tmp_path):
    events = [{"type": "closure", "roads": [MANNERHEIMINTIE], "start": "+3min", "duration": "4min"}]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, _ = simulate(helsinki_city, routes, tmp_path / "a", events, duration=600)
    b, _ = simulate(helsinki_city, routes, tmp_path / "b", events, duration=600, simulator="traci")
    assert len(a.timeline) > 1000
    assert a.timeline.content_hash() == b.timeline.content_hash()


def test_meso_mode_runs_and_records_state(helsinki_city, routes, tmp_path):
    sim, _ = simulate(helsinki_city, routes, tmp_path, [], duration=600, mode="meso")
    states = sim.timeline.events("network_state")
    assert len(states) == 10 and states[-1]["departed"] > 100
    assert all(s["speed_mps"] > 0 for s in states)


def test_a_contraflow_moves_lanes_from_one_direction_to_the_other(helsinki_city, routes, tmp_path):
    """Hakaniemenranta: two lanes one way, three the other. A contraflow gives the two-lane
    direction one lane of the other from minute 5 to 15, and takes it back."""
    gains, gives = "30148325#0", "203424041#0"
    flow = {"type": "contraflow", "road": {"edge": gains}, "start": "+5min", "duration": "10min"}
    seen: dict[str, list] = {"before": [], "during": [], "after": []}

    def closed(api, lane):
        return "passenger" in api.lane.getDisallowed(lane)

    def check(api, t):
        when = "before" if t < 300 else "during" if t < 900 else "after"
        seen[when].append(
            (
                api.edge.getLaneNumber(gains),
                closed(api, f"{gains}_2"),
                closed(api, f"{gives}_2"),
                closed(api, f"{gives}_1"),
            )
        )

    sim, resolved = simulate(helsinki_city, routes, tmp_path, [flow], check=check)
    assert resolved[0].edges == [gives] and resolved[0].gains == gains
    # (lanes of the gaining road, its added lane closed, the giving road's leftmost lane
    # closed, its next lane closed)
    assert set(seen["before"]) == {(3, True, False, False)}
    assert set(seen["during"]) == {(3, False, True, False)}
    assert set(seen["after"]) == {(3, True, False, False)}
    started = sim.timeline.events("road_event_started")
    assert [(e["event_type"], e["edges"], e["lanes_closed"]) for e in started] == [
        ("contraflow", [gives], 1)
    ]


@pytest.mark.parametrize(
    ("event", "where", "says"),
    [
        ({"road": {"edge": "30148325#0"}, "lanes": 3}, "events[0].lanes", "at least one"),
        ({"road": {"edge": "-217644146"}, "lanes": 2}, "events[0].lanes", "has 2 lanes"),
        ({"road": {"edge": "10246076#0"}}, "events[0].road", "is a one-way road (Siltasaarenkatu)"),
    ],
)
def test_a_contraflow_that_cannot_be_is_refused_with_its_field(helsinki_city, event, where, says):
    from twin.scenario import ScenarioError

    doc = {
        "name": "t",
        "start": START.isoformat(),
        "duration": 600,
        "traffic": {"demand": {"veh_per_hour": {"07": 1}}},
        "events": [{"type": "contraflow", "start": "+1min", "duration": "5min", **event}],
    }
    with pytest.raises(ScenarioError) as caught:
        resolve_events(scenario_from_dict(doc), helsinki_city)
    assert any(p == where and says in m for p, m in caught.value.problems), caught.value.problems
