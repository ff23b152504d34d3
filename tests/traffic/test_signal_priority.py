"""Signal priority for emergency vehicles: lights ahead of a unit under blue lights turn
green for its lane, as a plan's traffic measure."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.traffic.test_component import START, Probe, routes  # noqa: F401 (a fixture)
from twin.city.places import CityNet
from twin.runs.run import run_scenario
from twin.scenario import load_scenario
from twin.scenario.plan import plan_from_dict
from twin.sim import Simulation
from twin.traffic import TrafficComponent

ROOT = Path(__file__).resolve().parents[2]
RUSH = ROOT / "scenarios" / "helsinki_morning_rush.yaml"


def test_each_light_has_a_green_phase_for_each_of_its_links(helsinki_city, routes, tmp_path):  # noqa: F811
    """The phase the twin jumps to is green for the link asked, at every light of the city."""
    sim = Simulation(duration=120, seed=5, start=START)
    traffic = TrafficComponent(
        net_file=helsinki_city.net_path,
        route_files=[routes],
        edge_sector=CityNet(helsinki_city).sector_of_edge,
        events=[],
        workdir=tmp_path,
        seed=5,
        signal_priority_m=150,
    )
    sim.add(traffic)
    checked = []

    def check(api, t):
        if t != 60:
            return
        for light in api.trafficlight.getIDList():
            for link in range(len(api.trafficlight.getRedYellowGreenState(light))):
                phase = traffic._green_phase(light, link)
                if phase is None:  # a link never green (a pedestrian-only one): left alone
                    continue
                api.trafficlight.setPhase(light, phase)
                assert api.trafficlight.getRedYellowGreenState(light)[link] in "Gg"
                checked.append((light, link))

    sim.add(Probe(traffic, check))
    sim.run()
    assert len(checked) > 50


@pytest.mark.slow
def test_a_plan_with_signal_priority_turns_lights_for_units(tmp_path):
    plan = plan_from_dict(
        {"name": "green-wave", "traffic": {"signal_priority": {"within_m": 120}}}, source="p"
    )
    base = load_scenario(RUSH)
    runs = {}
    for name, scenario in (("off", base), ("on", plan.apply(base))):
        scenario = scenario.model_copy(update={"duration": 1800.0})
        run_scenario(scenario, out=tmp_path / name, progress=False, scenario_dir=RUSH.parent)
        con = duckdb.connect()
        runs[name] = con.execute(
            f"SELECT kind, unit, signal, link, distance_m, incident FROM '{tmp_path / name / 'timeline.parquet'}' "
            "WHERE kind IN ('signal_preempted', 'incident_occurred')"
        ).df()
    off, on = runs["off"], runs["on"]
    assert (off["kind"] == "signal_preempted").sum() == 0
    turned = on[on["kind"] == "signal_preempted"]
    assert len(turned) > 0
    assert (turned["distance_m"] <= 120).all()
    assert turned["unit"].str.match(r"^[PMAF]-\d+$").all()
    # common random numbers: the same incidents, with the lights or without
    assert list(off.loc[off["kind"] == "incident_occurred", "incident"]) == list(
        on.loc[on["kind"] == "incident_occurred", "incident"]
    )
