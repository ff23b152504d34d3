"""Scenario files: every problem listed at once with its field path and bad value."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import twin.scenario._base as scenario_module
from twin.scenario import (
    ScenarioError,
    json_schema,
    load_scenario,
    parse_duration,
    scenario_from_dict,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def good(**changes):
    data = {
        "name": "test-run",
        "start": "2026-12-01T07:00:00+07:00",
        "duration": "1h30min",
        "seed": 4,
        "traffic": {"demand": {"veh_per_hour": {"7": 1000, "08": 1200}}},
        "events": [
            {
                "type": "accident",
                "at": {"lat": -6.2, "lon": 106.83},
                "start": "07:40",
                "duration": "45min",
                "lanes": 2,
            }
        ],
    }
    data.update(changes)
    return data


def test_docstring_examples():
    assert doctest.testmod(scenario_module).failed == 0


def test_a_good_scenario():
    sc = scenario_from_dict(good())
    assert sc.duration == 5400.0
    assert sc.traffic.demand.veh_per_hour == {"07": 1000, "08": 1200}
    assert sc.event_begin(sc.events[0]) == 2400.0
    assert sc.event_ids() == ["accident-1"]
    assert sc.demand_segments() == [(0.0, 3600.0, 1000), (3600.0, 5400.0, 1200)]


def test_demand_pieces_cut_at_whole_hours():
    sc = scenario_from_dict(good(start="2026-12-01T07:30:00+07:00", duration="1h"))
    assert sc.demand_segments() == [(0.0, 1800.0, 1000), (1800.0, 3600.0, 1200)]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("45min", 2700.0),
        ("1h", 3600.0),
        ("1h30min", 5400.0),
        ("01:30:00", 5400.0),
        ("0:45", 2700.0),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "-5", 0, -3, "1 day", True])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_every_problem_is_listed_with_its_path_and_value():
    data = good(
        name="Bad Name",
        start="2026-12-01T07:00:00",
        colour="red",
        traffic={
            "demand": {"veh_per_hour": {"7": 1000, "25": 5}},
            "mode": "fast",
            "step_length": 0,
        },
        events=[
            {
                "type": "accident",
                "at": {"lat": 60.17},
                "start": "07:40",
                "duration": "45min",
                "lanes": 0,
            },
            {"type": "closure", "start": "soon", "duration": -5},
            {"type": "riot", "start": "08:00", "duration": "1h"},
        ],
    )
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="bad.yaml")
    problems = dict(info.value.problems)
    text = str(info.value)
    assert text.startswith("bad.yaml: ")
    assert "'Bad Name'" in problems["name"]
    assert "time zone" in problems["start"]
    assert problems["colour"] == "unknown field"
    assert "'25'" in problems["traffic.demand.veh_per_hour"]
    assert "'fast'" in problems["traffic.mode"]
    assert "(got 0)" in problems["traffic.step_length"]
    assert "lat and lon together" in problems["events[0].at"]
    assert "(got 0)" in problems["events[0].lanes"]
    assert "'soon'" in problems["events[1].start"]
    assert "-5" in problems["events[1].duration"]
    assert "riot" in problems["events[2]"]
    assert len(info.value.problems) >= 11


def test_model_level_problems_are_listed_separately():
    data = good(
        traffic={"demand": {"veh_per_hour": {"07": 1000}}},
        events=[
            {
                "type": "accident",
                "id": "x",
                "at": {"lat": -6.2, "lon": 106.83},
                "start": "09:40",
                "duration": "10min",
            },
            {
                "type": "accident",
                "id": "x",
                "at": {"lat": -6.2, "lon": 106.83},
                "start": "07:10",
                "duration": "10min",
            },
        ],
    )
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data)
    problems = dict(info.value.problems)
    assert "hours 08 have no demand" in problems["traffic.demand.veh_per_hour"]
    assert "outside the run (07:00 to 08:30)" in problems["events[0].start"]
    assert "used twice" in problems["events[1].id"]


def test_a_place_needs_exactly_one_kind():
    data = good(
        events=[
            {
                "type": "accident",
                "at": {"poi": "x", "sector": "S01"},
                "start": "07:10",
                "duration": "5min",
            }
        ]
    )
    with pytest.raises(ScenarioError, match="exactly one of"):
        scenario_from_dict(data)


def test_yaml_errors_name_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nstart: [unclosed\n")
    with pytest.raises(
        ScenarioError, match=r"broken.yaml: 1 problem\n  line 3, column 1: not valid YAML"
    ):
        load_scenario(path)
    with pytest.raises(ValueError, match="scenario file not found"):
        load_scenario(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_validate(path):
    sc = load_scenario(path)
    assert sc.description.strip(), "each shipped scenario explains itself to a planner"
    assert sc.name == path.stem.replace("_", "-")


def test_json_schema_accepts_written_durations():
    schema = json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "smart-policing-twin scenario"
    assert "demonstration" in text and "accident" in text
    duration = schema["properties"]["duration"]
    assert {"type": "string"} in duration["anyOf"]
