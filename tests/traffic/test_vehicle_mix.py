"""Indonesia's vehicle mix: types with SUMO's parameters, routes each type may drive, motorcycles
filtering between cars on SUMO's sublane model, and trips reported per type."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest
import yaml

from twin._sumo import tool_path
from twin.scenario import ScenarioError, load_scenario
from twin.traffic.demand import scenario_demand
from twin.traffic.vehicles import SUBLANE_M, VEHICLE_TYPES, write_vtypes

MIX = {"motorcycle": 0.6, "car": 0.25, "angkot": 0.06, "bus": 0.03, "truck": 0.06}


def _scenario(folder, city, **traffic):
    doc = {
        "name": "mix",
        "city": str(city),
        "start": "2026-12-01T07:00:00+07:00",
        "duration": "20min",
        "seed": 3,
        "traffic": {
            "demand": {"veh_per_hour": {"07": 1800}, "mix": MIX, "mix_source": "assumed"},
            **traffic,
        },
        "outputs": {"report": False},
    }
    path = folder / "mix.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ({"motorcycle": 0.6, "car": 0.3}, "sum to 1, these sum to 0.9"),
        ({"motorcycle": 0.7, "bajaj": 0.3}, "traffic.demand.mix.bajaj"),
        ({"motorcycle": 1.2, "car": -0.2}, "between 0 and 1"),
    ],
)
def test_a_bad_mix_is_refused_with_its_field(tmp_path, mix, message):
    path = _scenario(tmp_path, "default")
    doc = yaml.safe_load(path.read_text())
    doc["traffic"]["demand"]["mix"] = mix
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "traffic.demand.mix" in str(err.value)
    assert message in str(err.value)


def test_demand_draws_each_type_at_its_share_on_roads_it_may_use(tmp_path, jakarta_build):
    import sumolib

    city = jakarta_build.city
    scenario = load_scenario(_scenario(tmp_path, city.path))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = scenario_demand(scenario, city, [], tmp_path / "a")
    again = scenario_demand(scenario, city, [], tmp_path / "b")

    def trips(paths):
        return [
            (v.id, v.type, v.depart, v.route[0].edges)
            for p in paths
            for v in sumolib.xml.parse(str(p), "vehicle")
        ]

    assert trips(first) == trips(again)  # seeded
    net = sumolib.net.readNet(str(city.net_path))
    types, refused = Counter(), Counter()
    for path in first:
        assert "<vType" not in path.read_text()  # loaded once, from vtypes.add.xml
        for veh in sumolib.xml.parse(str(path), "vehicle"):
            types[veh.type] += 1
            vclass = VEHICLE_TYPES[veh.type]["vClass"]
            edges = veh.route[0].edges.split()
            refused[veh.type] += sum(not net.getEdge(e).allows(vclass) for e in edges)
    total = sum(types.values())
    # 20 minutes at 1,800 an hour, less the few trips without a route
    assert 500 <= total <= 600
    for name, share in MIX.items():
        assert types[name] / total == pytest.approx(share, abs=0.02), types
    assert not any(refused.values()), refused


def test_the_run_loads_the_types_and_the_sublane_model(tmp_path, jakarta_build):
    from twin.runs.components import traffic_component

    scenario = load_scenario(_scenario(tmp_path, jakarta_build.city.path))
    component = traffic_component(
        scenario,
        net_file=jakarta_build.city.net_path,
        routes=[],
        edge_sector={},
        events=[],
        workdir=tmp_path,
    )
    cmd = component.sumo_command()
    assert cmd[cmd.index("--lateral-resolution") + 1] == "0.3"
    vtypes = cmd[cmd.index("--additional-files") + 1].split(",")[0]
    assert all(f'id="{name}"' in open(vtypes).read() for name in MIX)
    meso = load_scenario(_scenario(tmp_path, jakarta_build.city.path, mode="meso"))
    assert meso.traffic.sublane_m() is None
    off = load_scenario(_scenario(tmp_path, jakarta_build.city.path, lateral_resolution=0))
    assert off.traffic.sublane_m() is None
    doc = yaml.safe_load(_scenario(tmp_path, jakarta_build.city.path).read_text())
    del doc["traffic"]["demand"]["mix"]
    (tmp_path / "cars.yaml").write_text(yaml.safe_dump(doc))
    cars = load_scenario(tmp_path / "cars.yaml")
    assert cars.traffic.sublane_m() is None and cars.traffic.vehicle_types() == ()


def _stopped_cars_and_a_motorcycle(tmp_path, city, lateral: float | None) -> dict[str, float]:
    """Two cars stop side by side for 60 s on a two-lane road, as at a red light; a
    motorcycle comes up behind them 5 s later. Their arrival times (s)."""
    import sumolib

    net = sumolib.net.readNet(str(city.net_path))
    edge = max(
        (
            e
            for e in net.getEdges(withInternal=False)
            if e.getLaneNumber() == 2
            and all(lane.allows("passenger") for lane in e.getLanes())
            and e.getLength() > 150
            and e.getOutgoing()
        ),
        key=lambda e: e.getLength(),
    )
    beyond = sorted(e.getID() for e in edge.getOutgoing())[0]
    folder = tmp_path / f"lat{lateral}"
    folder.mkdir()
    vtypes = write_vtypes(folder, ("motorcycle", "car"))
    routes = folder / "r.rou.xml"
    cars = "".join(
        f"""  <vehicle id="car{lane}" type="car" depart="0" departLane="{lane}" departPos="0" arrivalPos="max">
    <route edges="{edge.getID()}"/><stop lane="{edge.getID()}_{lane}" endPos="80" duration="60"/>
  </vehicle>
"""
        for lane in (0, 1)
    )
    routes.write_text(
        f"""<routes>
{cars}  <vehicle id="moto" type="motorcycle" depart="5" departPos="0">
    <route edges="{edge.getID()} {beyond}"/>
  </vehicle>
</routes>
""",
        encoding="utf-8",
    )
    cmd = [
        str(tool_path("sumo")),
        "-n",
        str(city.net_path),
        "-a",
        str(vtypes),
        "-r",
        str(routes),
        "--tripinfo-output",
        str(folder / "trips.xml"),
        "--no-step-log",
        "--end",
        "300",
    ]
    if lateral:
        cmd += ["--lateral-resolution", str(lateral)]
    subprocess.run(cmd, check=True, capture_output=True)
    return {
        t.id: float(t.arrival) for t in sumolib.xml.parse(str(folder / "trips.xml"), "tripinfo")
    }


def test_motorcycles_filter_between_stopped_cars_only_on_sublanes(tmp_path, jakarta_build):
    city = jakarta_build.city
    lanes_only = _stopped_cars_and_a_motorcycle(tmp_path, city, None)
    sublanes = _stopped_cars_and_a_motorcycle(tmp_path, city, SUBLANE_M)
    assert lanes_only["moto"] > 60  # stuck behind the cars until they leave
    assert sublanes["moto"] < 60 < min(sublanes["car0"], sublanes["car1"])  # between them


def test_a_run_reports_trips_per_type(tmp_path, jakarta_build, monkeypatch):
    from typer.testing import CliRunner

    from twin.cli import app

    monkeypatch.chdir(tmp_path)
    path = _scenario(tmp_path, jakarta_build.city.path)
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "Trips by vehicle type (means per trip)" in result.output
    for name in MIX:
        assert f"│ {name}" in result.output
    words = " ".join(result.output.split())
    assert ": assumed; motorcycles filter between cars (sublanes of 0.3 m)" in words
    import json

    kpis = json.loads((tmp_path / "runs" / "mix" / "kpis.json").read_text())["kpis"]
    by_type = kpis["by_vehicle_type"]
    assert list(by_type) == list(MIX)
    assert sum(row["trips"] for row in by_type.values()) == kpis["trips"]
    assert by_type["motorcycle"]["trips"] > by_type["car"]["trips"] > by_type["bus"]["trips"]
    assert 0 < kpis["completed_share"] <= 1


def test_accident_rates_by_vehicle_type(tmp_path, jakarta_build):
    """Accidents given per vehicle type arrive at each type's rate (Poisson, within its 99 %
    interval over a day), each carrying its type; one accident rate and a rate by type
    together are refused."""
    from scipy.stats import poisson

    from twin.runs import run_scenario

    rates = {"motorcycle": 3.0, "car": 1.0, "truck": 0.25}
    doc = {
        "name": "accidents",
        "city": str(jakarta_build.city.path),
        "start": "2026-12-01T00:00:00+07:00",
        "duration": "24h",
        "seed": 5,
        "response": {
            "incidents": {"accidents_by_vehicle": rates},
            "units": [{"name": "P", "type": "police_car", "count": 6, "base": "police"}],
        },
        "outputs": {"report": False},
    }
    path = tmp_path / "accidents.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_scenario(path, out=tmp_path / "run", progress=False)
    counts = result.kpis["accidents_by_vehicle"]
    assert list(counts) == list(rates)
    for vtype, rate in rates.items():
        lo, hi = poisson.interval(0.99, rate * 24)
        assert lo <= counts[vtype] <= hi, (vtype, counts[vtype], lo, hi)
    assert result.kpis["incidents"] == sum(counts.values())
    doc["response"]["incidents"]["rates"] = {"traffic_accident": 2}
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ScenarioError, match=r"either as rates\.traffic_accident or as"):
        load_scenario(path)
