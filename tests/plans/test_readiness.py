"""Readiness (asta siap): a plan's needs by role, shift and vehicle against an inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twin.plans.readiness import KINDS, check, gaps, load_inventory, needs
from twin.scenario import ScenarioError, scenario_from_dict
from twin.scenario.plan import plan_from_dict

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios" / "inventories" / "helsinki.yaml"


def afternoon(city: Path):
    """13:00 to 16:00: two patrol cars all along, a motorbike 13:00-14:30, three call-takers."""
    return scenario_from_dict(
        {
            "name": "afternoon",
            "city": str(city),
            "start": "2026-12-01T13:00:00+07:00",
            "duration": "3h",
            "response": {
                "call_centre": {
                    "pools": [
                        {"name": "all", "numbers": ["110", "112", "119", "113"], "call_takers": 3}
                    ]
                },
                "incidents": {"rates": {"crime": 2}},
                "units": [
                    {"name": "P", "type": "police_car", "count": 2, "base": "police"},
                    {
                        "name": "M",
                        "type": "motorbike",
                        "count": 1,
                        "base": "police",
                        "shift": "13:00-14:30",
                    },
                ],
            },
        },
        source="afternoon",
    )


def test_needs_count_people_at_once_and_personnel_hours_by_shift(tmp_path):
    inventory = load_inventory(SHIPPED)
    need = needs(afternoon(tmp_path), inventory)
    # pagi is 06:00-14:00, siang 14:00-22:00; a car has two officers, a motorbike one
    assert need["people"]["police_officer"] == {"pagi": 5, "siang": 5}
    assert need["hours"]["police_officer"] == {"pagi": 5.0, "siang": 0.5 * 5 + 1.5 * 4}
    assert need["people"]["call_taker"] == {"pagi": 3, "siang": 3}
    assert need["hours"]["call_taker"] == {"pagi": 3.0, "siang": 6.0}
    assert need["vehicles"] == {"police_car": 2, "motorbike": 1}
    assert need["seats"] == 3 and need["posts"] == 0


def test_each_gap_is_flagged_and_the_eight_kinds_are_reported(tmp_path):
    inventory = load_inventory(SHIPPED)  # 10 officers a shift, 5 cars, 3 seats, Rp 2.5 M
    more = plan_from_dict(
        {
            "name": "more",
            "response": {
                "units": [
                    {"name": "P", "count": 6},
                    {
                        "name": "post-1",
                        "type": "police_car",
                        "count": 1,
                        "base": {"lat": 60.17, "lon": 24.94},
                    },
                ],
                "call_centre": {"pools": [{"name": "all", "call_takers": 4}]},
            },
        }
    ).apply(afternoon(tmp_path))
    result = check(more, inventory, cost=3_000_000, replications=10)
    assert [k["kind"] for k in result["kinds"]] == list(KINDS)
    status = {k["kind"]: k["status"] for k in result["kinds"]}
    assert status == {
        "software_sops": "outside the twin",
        "command_post": "gap",  # 4 call-takers, 3 seats
        "analysis": "ready",
        "staff": "gap",  # 7 cars and a motorbike: 15 officers at once, 10 on the roster
        "network": "outside the twin",
        "partners": "outside the twin",
        "logistics": "gap",  # 7 cars, 5 in the inventory; 1 post of 1: no gap
        "budget": "gap",
    }
    said = gaps(result)
    assert "police officers, pagi: needs 15 people, has 10" in said
    assert "police cars: needs 7 vehicles, has 5" in said
    assert "call-taker seats: needs 4 seats, has 3" in said
    assert "budget: the plan costs Rp 3,000,000, the budget is Rp 2,500,000" in said
    assert not any("posts" in g for g in said)
    partners = next(k for k in result["kinds"] if k["kind"] == "partners")
    assert partners["said"].startswith("stated NOT ready")
    # the scenario as it is fits the inventory, and one run is not an analysis
    today = check(afternoon(tmp_path), inventory, cost=2_000_000, replications=1)
    assert gaps(today) == []
    assert {k["kind"]: k["status"] for k in today["kinds"]}["analysis"] == "gap"


def test_what_the_inventory_leaves_out_is_not_stated(tmp_path):
    path = tmp_path / "thin.yaml"
    path.write_text(yaml.safe_dump({"name": "thin", "personnel": {"police_officer": {"pagi": 9}}}))
    result = check(afternoon(tmp_path), load_inventory(path), cost=None, replications=5)
    status = {k["kind"]: k for k in result["kinds"]}
    assert status["staff"]["status"] == "ready" and "not stated" in status["staff"]["said"]
    assert status["logistics"]["status"] == "not stated"
    assert status["network"]["said"] == "not stated; the twin does not measure it"


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"personnel": {"police_officer": {"sore": 4}}}, "personnel.police_officer.sore"),
        ({"personnel": {"cook": {"pagi": 4}}}, "personnel.cook"),
        ({"shifts": {"pagi": "6 to 2"}}, "shifts"),
        ({"budget": -5}, "budget"),
        ({"outside": {"network": {"ready": "maybe"}}}, "outside.network.ready"),
    ],
)
def test_a_bad_inventory_names_the_file_and_the_field(tmp_path, doc, where):
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ScenarioError) as caught:
        load_inventory(path)
    assert str(path) in str(caught.value)
    assert any(p.startswith(where) for p, _m in caught.value.problems), caught.value.problems
