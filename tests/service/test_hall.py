"""The service hall's behaviour, each on a hall small enough to know the answer: shifts and
breaks open and close counters (a clerk finishes their visitor first), visitors balk, give
up, are sent away with incomplete documents, skip what they did online, keep their
appointments; the same seed gives the same day, and a staffing plan meets the same
visitors (common random numbers); the KPIs read back what happened; the section's reader
names what is wrong, whatever it is given."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin import kpi
from twin.scenario import ScenarioError, scenario_from_dict
from twin.scenario.service import Service
from twin.service import ServiceHall
from twin.sim import Simulation

MONDAY = datetime.fromisoformat("2026-12-07T07:00:00+07:00")


def config(**over: Any) -> Service:
    doc: dict[str, Any] = {
        "services": {
            "skck": {
                "title": "SKCK",
                "standard": "30min",
                "steps": [
                    {
                        "name": "check",
                        "counter": "front",
                        "time": {"mean": "4min", "distribution": "exponential"},
                        "online_skips": True,
                    },
                    {
                        "name": "print",
                        "counter": "back",
                        "time": {"mean": "3min", "distribution": "exponential"},
                    },
                ],
            }
        },
        "counters": [{"name": "front", "count": 3}, {"name": "back", "count": 3}],
        "staff": [
            {"counters": "front", "people": 3, "from": "07:00", "to": "12:00"},
            {"counters": "back", "people": 3, "from": "07:00", "to": "12:00"},
        ],
        "demand": {"skck": {"07": 30, "08": 30, "09": 30, "10": 30}},
    }
    for key, value in over.items():
        doc[key] = value
    return Service.model_validate(doc)


def day(cfg: Service, *, seed: int = 1, hours: float = 5.0):
    sim = Simulation(duration=hours * 3600, seed=seed, start=MONDAY, checkpoint_every=3600.0)
    sim.add(ServiceHall(cfg, start=MONDAY))
    sim.run()
    return sim.timeline


def test_shifts_and_breaks_open_and_close_counters_after_the_visitor_at_them():
    cfg = config(
        staff=[
            {
                "counters": "front",
                "people": 2,
                "from": "07:00",
                "to": "11:00",
                "breaks": ["09:00-09:30"],
            },
            {"counters": "front", "people": 1, "from": "08:00", "to": "11:00"},
            {"counters": "back", "people": 3, "from": "07:00", "to": "11:00"},
        ]
    )
    tl = day(cfg)
    front = [(e["t"], e["staffed"]) for e in tl.events("counter_state") if e["counter"] == "front"]
    assert front == [(0.0, 2), (3600.0, 3), (7200.0, 1), (9000.0, 3), (14400.0, 0)]
    # nobody starts at the front during the break beyond its one open counter
    starts = sorted(
        e["t"] - e["served_s"] for e in tl.events("visitor_served") if e["counter"] == "front"
    )
    busy_at = lambda t: sum(  # noqa: E731
        1
        for e in tl.events("visitor_served")
        if e["counter"] == "front" and e["t"] - e["served_s"] <= t < e["t"]
    )
    assert max(busy_at(t) for t in starts if 7200.0 + 600 <= t < 9000.0) <= 1
    # after closing time no one is served at the front, and whoever waits stays inside
    assert all(t < 14400.0 + 1 for t in starts)
    left = kpi.service_table(tl.table()).iloc[0]
    assert (
        left["visitors"]
        == left["served"]
        + left["sent_away"]
        + left["balked"]
        + left["reneged"]
        + left["still_inside"]
    )


def test_visitors_balk_at_a_long_queue_and_give_up_waiting():
    tight = config(
        staff=[
            {"counters": "front", "people": 1, "from": "07:00", "to": "12:00"},
            {"counters": "back", "people": 3, "from": "07:00", "to": "12:00"},
        ],
        patience={"balk_over": 5, "renege_after": "20min"},
    )
    tl = day(tight)
    reasons = [e["reason"] for e in tl.events("visitor_left")]
    assert reasons.count("balked") > 10 and reasons.count("reneged") > 5
    for e in tl.events("visitor_left"):
        if e["reason"] == "balked":
            assert e["in_hall_s"] == 0.0 and e["waited_s"] == 0.0
    # nobody who saw fewer than 5 waiting turned back: every join found at most 5 ahead
    assert max(e["queue"] for e in tl.events("visitor_served") if e["step"] == "check") <= 5


def test_incomplete_documents_send_a_share_away_after_the_first_step():
    cfg = config()
    doc = cfg.model_dump(by_alias=True)
    doc["services"]["skck"]["incomplete"] = 0.3
    tl = day(Service.model_validate(doc), hours=12)
    left = [e for e in tl.events("visitor_left") if e["reason"] in ("served", "incomplete")]
    away = [e for e in left if e["reason"] == "incomplete"]
    share = len(away) / len(left)
    assert 0.22 < share < 0.38, share  # 120 visitors: 0.3 ± 2.5 standard errors
    served_steps = {(e["visitor"], e["step"]) for e in tl.events("visitor_served")}
    assert all((e["visitor"], "print") not in served_steps for e in away)


def test_online_visitors_skip_what_they_did_online_and_appointments_come_near_their_slot():
    doc = config().model_dump(by_alias=True)
    doc.update(online=0.4, appointment=0.3, punctuality="5min")
    tl = day(Service.model_validate(doc))
    channels = {e["visitor"]: e["channel"] for e in tl.events("visitor_arrived")}
    n = len(channels)
    online = [v for v, c in channels.items() if c == "online"]
    booked = [v for v, c in channels.items() if c == "appointment"]
    assert 0.25 < len(online) / n < 0.55 and 0.15 < len(booked) / n < 0.45
    steps = {}
    for e in tl.events("visitor_served"):
        steps.setdefault(e["visitor"], []).append(e["step"])
    assert all("check" not in steps.get(v, []) for v in online)
    assert any(steps.get(v) == ["check", "print"] for v in booked)
    # appointment holders: about evenly spread over each hour (slots), not bunched
    arrived = [e["t"] for e in tl.events("visitor_arrived") if e["visitor"] in booked]
    minutes = sorted((t % 3600) / 60 for t in arrived)
    assert minutes[len(minutes) // 4] < 25 and minutes[3 * len(minutes) // 4] > 35


def test_the_same_seed_gives_the_same_day_and_a_staffing_plan_meets_the_same_visitors():
    def staffed(front: int) -> Service:
        return config(
            staff=[
                {"counters": "front", "people": front, "from": "07:00", "to": "12:00"},
                {"counters": "back", "people": 3, "from": "07:00", "to": "12:00"},
            ]
        )

    a, b = day(staffed(2), seed=3), day(staffed(2), seed=3)
    assert a.content_hash() == b.content_hash()
    c = day(staffed(3), seed=3)  # the plan: a third clerk at the front (2 erlangs of checks)

    def visitors(tl):
        return [(e["t"], e["visitor"], e["channel"]) for e in tl.events("visitor_arrived")]

    assert visitors(a) == visitors(c)  # common random numbers: the plan changes the hall only
    wait = lambda tl: kpi.service_summary(kpi.connect(tl.table()))["service_wait_p90_s"]  # noqa: E731
    assert wait(c) < wait(a) / 2


def test_the_kpis_read_back_what_happened():
    tl = day(config(), seed=5)
    table = tl.table()
    summary = kpi.summary(table)
    left = tl.events("visitor_left")
    served = [e for e in left if e["reason"] == "served"]
    assert summary["service_visitors"] == len(left)
    within = sum(1 for e in served if e["in_hall_s"] <= 1800.0) / len(served)
    assert summary["service_within_standard"] == pytest.approx(within, abs=1e-4)
    waits = sorted(e["waited_s"] for e in served)
    assert summary["service_wait_p50_s"] == pytest.approx(
        float(__import__("numpy").quantile(waits, 0.5)), abs=0.1
    )
    counters = kpi.counter_table(table).set_index("counter")
    busy = sum(e["served_s"] for e in tl.events("visitor_served") if e["counter"] == "front")
    assert counters.loc["front", "busy_s"] == pytest.approx(busy)
    assert counters.loc["front", "open_s"] == pytest.approx(3 * 5 * 3600.0)
    # a run without a hall has no service KPIs, not zeros
    empty = Simulation(duration=60.0, seed=0, start=MONDAY)
    empty.run()
    assert kpi.summary(empty.timeline.table())["service_wait_p50_s"] is None


@settings(max_examples=120, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["services", "counters", "staff", "demand", "online", "appointment", "patience", "x"]
        ),
        st.one_of(
            st.none(),
            st.integers(-3, 3),
            st.floats(allow_nan=True),
            st.text(max_size=8),
            st.lists(
                st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3), max_size=2
            ),
            st.dictionaries(st.text(max_size=6), st.integers(-2, 50), max_size=3),
        ),
        max_size=8,
    )
)
def test_the_service_section_reader_names_what_is_wrong(doc):
    scenario = {"name": "hall", "start": "2026-12-07T07:00:00+07:00", "duration": "1h"}
    try:
        scenario_from_dict({**scenario, "service": doc}, source="hall.yaml")
    except ScenarioError as exc:
        assert exc.problems and all(path.startswith("service") for path, _ in exc.problems), (
            exc.problems
        )
        assert str(exc).startswith("hall.yaml")


def test_the_queue_display_and_the_day_agree_with_each_visitors_own_story():
    """At any moment, the screen's counts (``kpi.hall_at``) and the day's series
    (``kpi.queue_series``) are what each visitor's events say: queued and not yet called,
    or called and not yet done; no counter serves two visitors at once, none beyond the
    group's counters, and each service's tickets run A-001, A-002... in order of arrival."""
    cfg = config(
        staff=[
            {
                "counters": "front",
                "people": 2,
                "from": "07:00",
                "to": "11:00",
                "breaks": ["09:00-09:30"],
            },
            {"counters": "back", "people": 3, "from": "07:00", "to": "11:00"},
        ],
        patience={"renege_after": "15min"},
    )
    tl = day(cfg)
    con = kpi.connect(tl.table())
    arrived = tl.events("visitor_arrived")
    assert [e["ticket"] for e in arrived] == [f"A-{i:03d}" for i in range(1, len(arrived) + 1)]
    stories: dict[str, list[dict[str, Any]]] = {}
    for e in tl.table().to_pylist():
        if e["kind"] in ("visitor_queued", "visitor_called", "visitor_served", "visitor_left"):
            stories.setdefault(e["visitor"], []).append(e)

    def truth(t: float) -> tuple[dict[str, int], set[tuple[str, int, str]]]:
        waiting: dict[str, int] = {}
        serving = set()
        for events in stories.values():
            before = [e for e in events if e["t"] <= t]
            if not before:
                continue
            last = before[-1]
            if last["kind"] == "visitor_queued":
                waiting[last["counter"]] = waiting.get(last["counter"], 0) + 1
            elif last["kind"] == "visitor_called":
                serving.add((last["counter"], last["desk"], last["visitor"]))
        return waiting, serving

    series = kpi.queue_series(con, every=600.0)
    assert (series["waiting"] > 3).any(), "no queue to check"
    tickets = {e["visitor"]: e["ticket"] for e in arrived}
    for t in (1800.0, 6000.0, 7800.0, 9600.0, 12000.0):
        waiting, serving = truth(t)
        now = kpi.hall_at(con, t)
        shown = dict(zip(now["counters"]["counter"], now["counters"]["waiting"], strict=True))
        assert shown == {g: waiting.get(g, 0) for g in ("front", "back")}
        desks = {(d.counter, d.desk, d.ticket) for d in now["desks"].itertuples()}
        assert desks == {(c, d, tickets[v]) for c, d, v in serving}
        for g, count in (("front", 3), ("back", 3)):
            mine = [d for c, d, _v in serving if c == g]
            assert len(mine) == len(set(mine)) and all(1 <= d <= count for d in mine)
        if t % 600 == 0:
            at = series[series["t"] == t].set_index("counter")
            assert at["waiting"].to_dict() == {g: waiting.get(g, 0) for g in at.index}
            busy = {g: sum(1 for c, _d, _v in serving if c == g) for g in at.index}
            assert at["busy"].to_dict() == busy


def test_the_hall_runs_as_a_component_of_a_city_scenario_on_its_clock(helsinki_city, tmp_path):
    """A city's morning with its emergency response and its service hall: one run, one
    clock, one timeline; both parts' KPIs in the run's summary, the same day again from the
    same seed."""
    import yaml

    from tests.conftest import two_cars
    from twin.runs import run_scenario

    path = two_cars(tmp_path, helsinki_city.path)
    doc = yaml.safe_load(path.read_text())
    doc["service"] = config().model_dump(mode="json", by_alias=True, exclude_defaults=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    runs = [run_scenario(path, out=tmp_path / f"run-{i}", progress=False) for i in range(2)]
    con = kpi.connect(runs[0].path / "timeline.parquet")
    kinds = dict(con.execute("SELECT kind, count(*) FROM timeline GROUP BY kind").fetchall())
    assert kinds.get("incident_closed", 0) > 0 and kinds.get("visitor_served", 0) > 100
    times = con.execute(
        "SELECT count(*) FROM (SELECT seq, t, lag(t) OVER (ORDER BY seq) AS before FROM timeline) "
        "WHERE t < before"
    ).fetchall()[0][0]
    assert times == 0, "one clock: the timeline's events in time order, whoever emitted them"
    summary = kpi.summary(con)
    assert summary["service_visitors"] > 50 and summary["incidents"] > 0
    again = kpi.connect(runs[1].path / "timeline.parquet")
    query = "SELECT t, kind, visitor, unit FROM timeline ORDER BY seq"
    assert con.execute(query).fetchall() == again.execute(query).fetchall()
