"""The director on a fast clock: injects, follow-ups, the teams' orders in the CAD and on
the roads, and the trainer's controls, read back from the timeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from twin.exercise.director import Director
from twin.exercise.run import check_exercise
from twin.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[2]

TEAMS = {
    "teams": [
        {"name": "polres", "units": ["P-1", "P-2", "P-3", "M-1"]},
        {"name": "dinkes", "units": ["A-1", "A-2", "F-1"]},
    ]
}
CROWD = {"lat": 60.1705, "lon": 24.9430}
INJURED = {"lat": 60.1703, "lon": 24.9445}


def exercise(tmp_path: Path, city: Path, injects: list[dict]) -> Path:
    """An exercise of the Helsinki demonstration's response, without traffic (units drive at
    the travel-time engine's times)."""
    scenario = yaml.safe_load((ROOT / "scenarios" / "helsinki_demonstration.yaml").read_text())
    scenario.pop("traffic")
    scenario.pop("events")
    scenario["city"] = str(city)
    scenario["response"]["incidents"]["rates"] = {"crime": 0.5}  # a quiet background
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    (tmp_path / "teams.yaml").write_text(yaml.safe_dump(TEAMS))
    path = tmp_path / "ex.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "scenario": "scenario.yaml", "injects": injects}))
    return path


def play(path: Path, orders: list[tuple[float, str, dict]], until: float = 3600.0):
    """Run the exercise as fast as the clock goes, giving ``orders`` (time, kind, fields)
    as the order folder would; returns the timeline and the director."""
    from twin.runs.components import add_components
    from twin.sim import Simulation

    checked = check_exercise(path, path.parent / "teams.yaml")
    sc = checked.scenario
    from twin.city.places import resolve_response

    sim = Simulation(duration=until, seed=sc.seed, start=sc.start)
    response = resolve_response(sc, checked.city, net=checked.net, folder=checked.scenario_dir)
    add_components(
        sim,
        sc,
        checked.city,
        routes=[],
        events=[],
        edge_sector={},
        workdir=path.parent,
        response=response,
    )
    # the sensors' door, for the feeds' messages, as an exercise's live kernel has it
    from twin.sensors.component import SensorsComponent
    from twin.sensors.registry import load_registry
    from twin.sensors.store import SensorStore

    sim.sensors = SensorsComponent(
        load_registry(None, checked.city), SensorStore(path.parent / "s.duckdb"), key=b"k" * 32
    )
    sim.add(sim.sensors)
    director = Director(
        checked.injects,
        checked.teams,
        net=checked.net,
        user="local:trainer",
    )
    sim.add(director)

    def giver():
        for t, kind, doc in orders:
            yield sim.env.timeout(max(0.0, t - sim.env.now))
            director.orders[kind](sim, dict(doc))

    sim.env.process(giver())
    sim.run()
    return sim.timeline, director


def rows(timeline, kind: str) -> list[dict]:
    return timeline.events(kind)


def test_an_order_in_time_answers_the_inject_and_a_missed_one_brings_its_follow_up(
    tmp_path, helsinki_city
):
    path = exercise(
        tmp_path,
        helsinki_city.path,
        [
            {
                "id": "crowd",
                "at": "07:40",
                "title": "Massa ricuh",
                "team": "polres",
                "does": "crowd",
                "incident_type": "public_order",
                **CROWD,
                "expect": "dispatch",
                "within": "5min",
            },
            {
                "id": "hurt",
                "at": "07:50",
                "title": "Terluka",
                "team": "dinkes",
                "does": "incident",
                "incident_type": "medical",
                "priority": 1,
                **INJURED,
                "expect": "dispatch",
                "within": "5min",
                "if_missed": ["worse"],
            },
            {"id": "worse", "title": "Korban kritis", "team": "dinkes"},
        ],
    )
    timeline, _ = play(
        path,
        [
            (
                2400 + 90,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "polres",
                    "unit": "P-2",
                    "incident": "crowd",
                    "user": "budi",
                },
            ),
        ],
    )
    released = {r["inject"]: r for r in rows(timeline, "inject_released")}
    assert released["crowd"]["t"] == 2400.0 and released["crowd"]["how"] == "scheduled"
    answered = rows(timeline, "inject_answered")
    assert [(a["inject"], a["team"], a["delay_s"], a["late"]) for a in answered] == [
        ("crowd", "polres", 90.0, False)
    ]
    missed = rows(timeline, "inject_missed")
    assert [(m["inject"], m["t"]) for m in missed] == [("hurt", 3000.0 + 300.0)]
    assert released["worse"]["how"] == "follow_up" and released["worse"]["follow_up_of"] == "hurt"
    assert released["worse"]["t"] == 3300.0
    # the crowd became an incident the CAD held for the team, and the ordered unit went
    occurred = {
        r["incident"]: r for r in rows(timeline, "incident_occurred") if r["origin"] == "inject"
    }
    crowd = next(i for i in occurred if i.endswith("-crowd"))
    states = [
        (r["t"], r["unit"], r["state"])
        for r in rows(timeline, "unit_state")
        if r["incident"] == crowd
    ]
    assert states[0] == (2490.0, "P-2", "dispatched")
    assert any(s[2] == "on_scene" for s in states)
    held = [r["action"] for r in rows(timeline, "incident_pending") if r["incident"] == crowd]
    assert occurred[crowd]["needs"] == ["police", "police"]  # a crowd needs two police units
    assert held == ["held", "held", "assigned", "dropped"]  # the team sent one
    # nobody sent an ambulance to the injured: the need was held until the end
    hurt = next(i for i in occurred if i.endswith("-hurt"))
    assert not [r for r in rows(timeline, "unit_state") if r["incident"] == hurt]
    assert [r["action"] for r in rows(timeline, "incident_pending") if r["incident"] == hurt] == [
        "held",
        "dropped",
    ]


def test_orders_the_team_may_not_give_are_refused_with_the_reason(tmp_path, helsinki_city):
    path = exercise(
        tmp_path,
        helsinki_city.path,
        [
            {
                "id": "crowd",
                "at": "07:10",
                "title": "Massa",
                "team": "polres",
                "does": "crowd",
                "incident_type": "public_order",
                **CROWD,
                "expect": "dispatch",
                "within": "10min",
            }
        ],
    )
    timeline, _ = play(
        path,
        [
            (
                700,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "dinkes",
                    "unit": "P-1",
                    "incident": "crowd",
                    "user": "rina",
                },
            ),
            (
                710,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "polres",
                    "unit": "P-1",
                    "incident": "nothing-here",
                    "user": "budi",
                },
            ),
            (
                720,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "polres",
                    "unit": "P-1",
                    "incident": "crowd",
                    "user": "budi",
                },
            ),
            (
                730,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "polres",
                    "unit": "P-1",
                    "incident": "crowd",
                    "user": "budi",
                },
            ),
            (
                740,
                "exercise_order",
                {
                    "order": "mutual_aid",
                    "team": "polres",
                    "to_team": "dinkes",
                    "text": "Kirim ambulans ke alun-alun",
                    "user": "budi",
                },
            ),
            (
                750,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "polres",
                    "unit": "P-1",
                    "incident": "crowd",
                    "user": "budi",
                    "gate_refused": "budi plays in team polres, not dinkes",
                },
            ),
        ],
        until=1800,
    )
    given = rows(timeline, "order_given")
    refused = {r["order_id"]: r["reason"] for r in rows(timeline, "order_refused")}
    reasons = [refused.get(g["order_id"], "") for g in given]
    assert reasons[0] == "P-1 is commanded by polres, not dinkes: ask polres for mutual aid"
    assert reasons[1] == "there is no open incident 'nothing-here'"
    assert reasons[2] == ""
    assert reasons[3].startswith("P-1 is dispatched at I") and reasons[3].endswith(
        "-crowd, not available"
    )
    assert reasons[4] == "" and given[4]["to_team"] == "dinkes"
    assert reasons[5] == "budi plays in team polres, not dinkes"
    answered = rows(timeline, "inject_answered")
    assert [(a["inject"], a["order_id"]) for a in answered] == [("crowd", given[2]["order_id"])]


def test_a_recalled_unit_turns_back_and_the_need_waits_again(tmp_path, helsinki_city):
    path = exercise(
        tmp_path,
        helsinki_city.path,
        [
            {
                "id": "crowd",
                "at": "07:10",
                "title": "Copet",
                "team": "polres",
                "does": "incident",
                "incident_type": "crime",
                **CROWD,
            }
        ],
    )
    timeline, _ = play(
        path,
        [
            (
                610,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "polres",
                    "unit": "P-1",
                    "incident": "crowd",
                    "user": "budi",
                },
            ),
            (
                640,
                "exercise_order",
                {"order": "recall", "team": "polres", "unit": "P-1", "user": "budi"},
            ),
            (
                650,
                "exercise_order",
                {"order": "recall", "team": "polres", "unit": "P-1", "user": "budi"},
            ),
            (
                2000,
                "exercise_order",
                {
                    "order": "dispatch",
                    "team": "polres",
                    "unit": "P-3",
                    "incident": "crowd",
                    "user": "budi",
                },
            ),
        ],
        until=3600,
    )
    p1 = [(r["t"], r["state"]) for r in rows(timeline, "unit_state") if r["unit"] == "P-1"]
    after = [s for t, s in p1 if t >= 610]
    assert after[:3] == ["dispatched", "en_route", "returning"] or after[:2] == [
        "dispatched",
        "returning",
    ]
    assert "on_scene" not in after and after[-1] == "available"
    refused = rows(timeline, "order_refused")
    assert len(refused) == 1 and "there is no job to recall it from" in refused[0]["reason"]
    crowd = [r for r in rows(timeline, "incident_pending") if r["incident"].endswith("-crowd")]
    assert [r["action"] for r in crowd] == ["held", "assigned", "held", "assigned"]
    p3 = [
        r["state"]
        for r in rows(timeline, "unit_state")
        if r["unit"] == "P-3" and r["incident"].endswith("-crowd")
    ]
    assert p3[-1] == "on_scene"  # P-3 served it in the end


def test_roads_close_and_reopen_on_orders_and_injects(tmp_path, helsinki_city):
    path = exercise(
        tmp_path,
        helsinki_city.path,
        [
            {
                "id": "water",
                "at": "07:05",
                "title": "Banjir",
                "team": "all",
                "does": "flood",
                "lat": 60.1665,
                "lon": 24.9515,
                "radius_m": 150,
                "lasts": "20min",
                "expect": "close_road",
                "within": "10min",
            }
        ],
    )
    timeline, _ = play(
        path,
        [
            (
                400,
                "exercise_order",
                {
                    "order": "close_road",
                    "team": "dinkes",
                    "place": {"lat": 60.1700, "lon": 24.9410},
                    "user": "rina",
                },
            ),
            (
                500,
                "exercise_order",
                {
                    "order": "open_road",
                    "team": "polres",
                    "place": {"lat": 60.1700, "lon": 24.9410},
                    "user": "budi",
                },
            ),
            (
                600,
                "exercise_order",
                {
                    "order": "open_road",
                    "team": "dinkes",
                    "place": {"lat": 60.1700, "lon": 24.9410},
                    "user": "rina",
                },
            ),
            (
                700,
                "exercise_order",
                {"order": "close_sector", "team": "polres", "sector": "S99", "user": "budi"},
            ),
        ],
        until=1800,
    )
    closed = rows(timeline, "closure_ordered")
    assert closed[0]["event_id"] == "water" and closed[0]["event_type"] == "flood"
    assert len(closed[0]["edges"]) > 5 and closed[0]["emergency_access"] is False
    assert closed[1]["event_type"] == "close_road" and len(closed[1]["edges"]) == 1
    lifted = [(r["t"], r["event_id"]) for r in rows(timeline, "closure_lifted")]
    assert lifted[0] == (600.0, closed[1]["event_id"]) and lifted[1] == (300.0 + 1200.0, "water")
    refused = [r["reason"] for r in rows(timeline, "order_refused")]
    assert refused[0] == "polres closed none of these roads"
    assert refused[1].startswith("no sector 'S99'")
    answered = rows(timeline, "inject_answered")
    assert [(a["inject"], a["team"], a["delay_s"]) for a in answered] == [
        ("water", "dinkes", 100.0)
    ]


def test_the_trainer_holds_releases_skips_and_writes_injects(tmp_path, helsinki_city):
    path = exercise(
        tmp_path,
        helsinki_city.path,
        [
            {"id": "one", "at": "07:20", "title": "Satu", "team": "polres"},
            {"id": "two", "at": "07:30", "title": "Dua", "team": "polres"},
            {"id": "three", "at": "07:40", "title": "Tiga", "team": "dinkes"},
        ],
    )
    control = "exercise_control"
    timeline, director = play(
        path,
        [
            (60, control, {"action": "hold", "inject": "one", "user": "tono"}),
            (120, control, {"action": "release", "inject": "two", "user": "tono"}),
            (180, control, {"action": "skip", "inject": "three", "user": "tono"}),
            (
                240,
                control,
                {
                    "action": "write",
                    "user": "tono",
                    "write": {
                        "title": "Wartawan bertanya",
                        "team": "polres",
                        "does": "crowd",
                        "incident_type": "public_order",
                        **CROWD,
                    },
                },
            ),
            (1800, control, {"action": "release", "inject": "one", "user": "tono"}),
        ],
    )
    released = [(r["t"], r["inject"], r["how"]) for r in rows(timeline, "inject_released")]
    assert released == [
        (120.0, "two", "early"),
        (240.0, "written-1", "written"),
        (1800.0, "one", "early"),
    ]
    actions = [
        (r["t"], r["action"], r["inject"], r["user"]) for r in rows(timeline, "exercise_control")
    ]
    assert actions[0] == (0.0, "start", "", "local:trainer")
    assert actions[1:] == [
        (60.0, "hold", "one", "tono"),
        (120.0, "release", "two", "tono"),
        (180.0, "skip", "three", "tono"),
        (240.0, "write", "written-1", "tono"),
        (1800.0, "release", "one", "tono"),
    ]
    assert any(r["incident"].endswith("-written-1") for r in rows(timeline, "incident_occurred"))
    with pytest.raises(ValueError, match="release: inject two went out already"):
        director.orders[control](None, {"action": "release", "inject": "two", "user": "tono"})
    with pytest.raises(ValueError, match=r"write: .*title"):
        director.orders[control](
            None, {"action": "write", "user": "tono", "write": {"team": "polres"}}
        )


def test_the_trainer_ends_the_exercise_early(tmp_path, helsinki_city):
    path = exercise(
        tmp_path,
        helsinki_city.path,
        [{"id": "late", "at": "07:40", "title": "Terlambat", "team": "polres"}],
    )
    timeline, director = play(
        path, [(900, "exercise_control", {"action": "end", "user": "tono"})], until=3600
    )
    assert director.sim.stopped == "the trainer (tono) ended the exercise"
    assert director.sim.env.now == 900.0
    assert [r["action"] for r in rows(timeline, "exercise_control")] == ["start", "end"]
    assert rows(timeline, "inject_released") == []  # 07:40 never came


def test_a_feed_inject_plays_its_sensor_messages_on_the_exercise_clock(tmp_path, helsinki_city):
    """A recorded segment from another day (two 112 calls two minutes apart, an alert, and
    one broken message) comes in from the inject's time through the sensors' door: each at
    its own spacing, its times moved to the exercise's clock, the caller pseudonymised,
    the broken one quarantined with its reason."""
    day = "2026-06-14T21:3{}:00+03:00"
    segment = [
        {
            "type": "EmergencyCall",
            "id": "c1",
            "number": "112",
            "dateReceived": day.format(0),
            "category": "medical",
            "caller": "+358401234567",
            "location": {"type": "Point", "coordinates": [24.9445, 60.1703]},
        },
        {
            "type": "EmergencyCall",
            "id": "c2",
            "number": "110",
            "dateReceived": day.format(2),
            "category": "crime",
            "location": {"type": "Point", "coordinates": [24.9400, 60.1697]},
        },
        {
            "type": "Alert",
            "id": "a1",
            "category": "security",
            "dateIssued": day.format(3),
            "severity": "high",
            "location": {"type": "Point", "coordinates": [24.9430, 60.1705]},
        },
    ]
    (tmp_path / "calls.jsonl").write_text(
        "\n".join(json.dumps(m) for m in segment) + '\n{"type": "EmergencyCall", "id": \n'
    )
    path = exercise(
        tmp_path,
        helsinki_city.path,
        [
            {
                "id": "calls",
                "at": "07:30",
                "title": "Telepon masuk",
                "does": "feed",
                "feed": "calls.jsonl",
            }
        ],
    )
    timeline, _ = play(path, [], until=2400.0)
    messages = [m for m in rows(timeline, "sensor_message") if m["t"] >= 1800.0]
    assert [(m["t"], m["message_type"], m["reason"]) for m in messages] == [
        (1800.0, "EmergencyCall", ""),  # kept
        (1920.0, "EmergencyCall", ""),
        (1980.0, "Alert", ""),
        (1980.0, "EmergencyCall", "bad_json"),  # quarantined, with why
    ]
    calls = [c for c in rows(timeline, "call_received") if c["call"] in ("c1", "c2")]
    assert [(c["t"], c["number"]) for c in calls] == [(1800.0, "112"), (1920.0, "110")]
    assert calls[0]["caller"] and "358401234567" not in calls[0]["caller"]
    alerts = [a for a in rows(timeline, "alert_received") if a["alert"] == "a1"]
    assert [(a["t"], a["priority"]) for a in alerts] == [(1980.0, 1)]
    # a feed with no file is named where it is
    (tmp_path / "calls.jsonl").unlink()
    with pytest.raises(ScenarioError, match="feed: no file"):
        check_exercise(path, path.parent / "teams.yaml")


def test_an_exercise_never_takes_a_live_file_another_holds(tmp_path):
    """Starting a second exercise on the file of one that runs is refused, and the running
    one's file is left alone."""
    import subprocess
    import sys
    import time

    from twin._errors import InputError
    from twin.exercise.run import _fresh

    db = tmp_path / "live.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r});"
            " c.execute('CREATE TABLE t (a INT)'); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match="another exercise or live twin is running on it"):
            _fresh(db)
        assert db.exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    _fresh(db)  # nobody holds it now: made afresh
    assert not db.exists()
