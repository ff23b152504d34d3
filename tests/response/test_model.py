"""The call centre and the dispatcher in small, exact cases."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from twin import events as ev
from twin.response.model import CallCentre, Dispatcher, Incident, Unit, draw
from twin.scenario import IncidentSpec, TimeDist

FIXED = TimeDist(mean=100.0, distribution="fixed")
SPEC = IncidentSpec(
    "crime",
    "110",
    {1: 1.0},
    {"police": 1},
    {},
    TimeDist(mean=600.0, distribution="fixed"),
    0.0,
    0.0,
)


def incident(name: str, priority: int, node: int = 0, t: float = 0.0) -> Incident:
    return Incident(name, "crime", priority, "S01", node, 0.0, 0.0, ["police"], SPEC, t)


def test_durations_have_the_asked_mean_and_spread():
    rng = np.random.default_rng(1)
    x = np.array([draw(TimeDist(mean=90.0, cv=0.5), rng) for _ in range(40000)])
    assert abs(x.mean() - 90) < 1.0 and abs(x.std() / x.mean() - 0.5) < 0.02
    assert draw(FIXED, rng) == 100.0


def test_calls_wait_by_priority_then_in_order():
    env = simpy.Environment()
    log: list[Any] = []
    centre = CallCentre(
        env,
        pools=[("all", ["110", "112", "119", "113"], 1)],
        handling={"110": FIXED},
        patience=None,
        redial=0,
        redial_after=FIXED,
        rng=np.random.default_rng(0),
        emit=log.append,
        on_known=lambda i: None,
    )
    centre.call(incident("first", 3), "110")  # takes the only call-taker at t=0
    centre.call(incident("low", 3), "110", delay=1)
    centre.call(incident("urgent", 1), "110", delay=2)
    centre.call(incident("low-later", 3), "110", delay=3)
    env.run()
    answered = [e.incident for e in log if isinstance(e, ev.CallAnswered)]
    assert answered == ["first", "urgent", "low", "low-later"]


def test_impatient_callers_hang_up_and_some_redial():
    env = simpy.Environment()
    log: list[Any] = []
    centre = CallCentre(
        env,
        pools=[("all", ["110"], 1)],
        handling={"110": TimeDist(mean=1000.0, distribution="fixed")},
        patience=TimeDist(mean=30.0, distribution="fixed"),
        redial=1.0,
        redial_after=TimeDist(mean=100.0, distribution="fixed"),
        rng=np.random.default_rng(0),
        emit=log.append,
        on_known=lambda i: None,
    )
    centre.call(incident("busy", 1), "110")
    centre.call(incident("waits", 1), "110", delay=1)
    env.run(until=900)
    placed = [(round(e.attempt), e.incident) for e in log if isinstance(e, ev.CallPlaced)]
    gone = [e for e in log if isinstance(e, ev.CallAbandoned)]
    assert placed[:3] == [
        (1, "busy"),
        (1, "waits"),
        (2, "waits"),
    ]  # hung up at 31 s, again at 131 s
    assert all(g.redial and g.wait_s == 30.0 for g in gone)


class LineTravel:
    """Units on a line: node n is at n metres; they drive at 1 m/s."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env

    def estimate(self, origins: list[int], target: int) -> np.ndarray:
        return np.abs(np.array(origins, dtype=float) - target)

    def drive(self, unit: Unit, origin: int, target: int) -> Generator[Any, Any, float]:
        yield self.env.timeout(abs(origin - target))
        return float(abs(origin - target))


def fleet(env: simpy.Environment, log: list[Any], **options: Any) -> Dispatcher:
    units = [Unit("far", "police_car", 1000, "S01"), Unit("near", "police_car", 10, "S01")]
    return Dispatcher(
        env,
        units,
        travel=LineTravel(env),
        rng=np.random.default_rng(0),
        emit=lambda e: log.append((env.now, e)),
        **options,
    )


def test_closest_unit_goes_and_a_busy_fleet_queues_by_priority():
    env = simpy.Environment()
    log: list[Any] = []
    cad = fleet(env, log)
    cad.open(incident("a", 2, node=0))  # near goes (10 m), far stays
    cad.open(incident("b", 3, node=900))  # far goes
    env.run(until=5)
    cad.open(incident("c", 3, node=0, t=5))  # everyone busy: queued
    cad.open(incident("d", 1, node=0, t=5))  # queued ahead of c
    env.run()
    sent = [
        (e.unit, e.incident)
        for _, e in log
        if isinstance(e, ev.UnitState) and e.state == "dispatched"
    ]
    assert sent[:2] == [("near", "a"), ("far", "b")]
    assert [i for _, i in sent[2:]] == ["d", "c"]
    assert [e.action for _, e in log if isinstance(e, ev.IncidentPending)] == [
        "queued",
        "queued",
        "assigned",
        "assigned",
    ]


def test_a_unit_that_frees_up_takes_over_when_reassignment_is_on():
    for reassign, expected in ((False, "far"), (True, "near")):
        env = simpy.Environment()
        log: list[Any] = []
        cad = fleet(env, log, reassign=reassign, reassign_margin=60.0)
        cad.open(incident("short", 1, node=12))  # near: 2 s away, 600 s on scene, back at 604
        cad.open(incident("far-away", 2, node=10))  # far: 990 s away, arrives at 990
        env.run()
        first_on_scene = next(
            e.unit
            for _, e in log
            if isinstance(e, ev.UnitState) and e.state == "on_scene" and e.incident == "far-away"
        )
        assert first_on_scene == expected
        if reassign:  # the far unit turned back and was home as long after as it had driven
            far = [(t, e.state) for t, e in log if isinstance(e, ev.UnitState) and e.unit == "far"]
            assert [s for _, s in far] == [
                "available",
                "dispatched",
                "en_route",
                "returning",
                "available",
            ]
            assert far[-1][0] - far[-2][0] == far[-2][0] - far[2][0]
