"""The response model against queueing theory, within its Monte Carlo error.

Each case runs independent replications (seeded, so a run is the same every time), and
checks that the theoretical value lies inside the 99 % confidence interval of the
replications' mean (Student's t), widened by nothing. The first tenth of each
replication is a warm-up and is not measured.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from scipy import stats

from twin import events as ev
from twin.response.model import CallCentre, Dispatcher, Incident, NoTravel, Unit
from twin.response.queueing import erlang_a, erlang_c, hypercube
from twin.scenario import IncidentSpec, TimeDist

REPLICATIONS = 10


def within_ci(samples: list[float], theory: float, level: float = 0.99) -> tuple[bool, str]:
    a = np.asarray(samples, dtype=float)
    half = stats.t.ppf(0.5 + level / 2, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    ok = abs(a.mean() - theory) <= half
    return ok, f"simulated {a.mean():.4f} ± {half:.4f} (99 % CI), theory {theory:.4f}"


SPEC = IncidentSpec("crime", "110", {1: 1.0}, {"police": 1}, {}, TimeDist(mean=1.0), 0.0, 0.0)


def call_centre_run(
    seed: int, *, lam: float, mu: float, servers: int, theta: float | None, calls: int
) -> dict[str, float]:
    """One replication of the call centre alone: Poisson calls, exponential talk times."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    log: list[ev.Event] = []
    centre = CallCentre(
        env,
        pools=[("all", ["110"], servers)],
        handling={"110": TimeDist(mean=1 / mu, distribution="exponential")},
        patience=None if theta is None else TimeDist(mean=1 / theta, distribution="exponential"),
        redial=0.0,
        redial_after=TimeDist(mean=1.0),
        rng=rng,
        emit=log.append,
        on_known=lambda incident: None,
    )

    def arrivals():
        for i in range(calls):
            yield env.timeout(rng.exponential(1 / lam))
            incident = Incident(f"I{i}", "crime", 1, "", 0, 0.0, 0.0, ["police"], SPEC, env.now)
            centre.call(incident, "110")

    env.process(arrivals())
    env.run()
    warm = f"I{calls // 10}"
    measured = {e.incident for e in log if isinstance(e, ev.CallPlaced)}
    measured = {i for i in measured if int(i[1:]) >= int(warm[1:])}
    waits = {
        e.incident: e.wait_s
        for e in log
        if isinstance(e, ev.CallAnswered) and e.incident in measured
    }
    gone = {
        e.incident: e.wait_s
        for e in log
        if isinstance(e, ev.CallAbandoned) and e.incident in measured
    }
    all_waits = np.array([waits.get(i, gone.get(i)) for i in sorted(measured)])
    return {
        "p_wait": float((all_waits > 0).mean()),
        "mean_wait": float(all_waits.mean()),
        "within_10": float(np.mean([waits.get(i, np.inf) <= 10 for i in measured])),
        "p_abandon": len(gone) / len(measured),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lam", "mu", "servers"),
    [(1 / 30, 1 / 90, 4), (1 / 12, 1 / 100, 10), (1 / 50, 1 / 120, 3)],
    ids=["3-erlangs-on-4", "8.3-erlangs-on-10", "2.4-erlangs-on-3"],
)
def test_call_centre_reproduces_erlang_c(lam, mu, servers):
    theory = erlang_c(arrival_rate=lam, service_rate=mu, servers=servers)
    runs = [
        call_centre_run(seed, lam=lam, mu=mu, servers=servers, theta=None, calls=6000)
        for seed in range(REPLICATIONS)
    ]
    for key, value in [
        ("p_wait", theory.p_wait),
        ("mean_wait", theory.mean_wait_s),
        ("within_10", theory.service_level(10)),
    ]:
        ok, said = within_ci([r[key] for r in runs], value)
        assert ok, f"{key}: {said}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lam", "mu", "servers", "theta"),
    [(1 / 30, 1 / 90, 3, 1 / 60), (1 / 10, 1 / 100, 8, 1 / 40)],
    ids=["overloaded-3", "busy-8"],
)
def test_call_centre_with_impatient_callers_reproduces_erlang_a(lam, mu, servers, theta):
    theory = erlang_a(arrival_rate=lam, service_rate=mu, servers=servers, abandon_rate=theta)
    runs = [
        call_centre_run(seed, lam=lam, mu=mu, servers=servers, theta=theta, calls=6000)
        for seed in range(REPLICATIONS)
    ]
    for key, value in [
        ("p_wait", theory.p_wait),
        ("mean_wait", theory.mean_wait_s),
        ("p_abandon", theory.p_abandon),
        ("within_10", theory.service_level(10)),  # what twin optimise sizes pools by
    ]:
        ok, said = within_ci([r[key] for r in runs], value)
        assert ok, f"{key}: {said}"


def fleet_run(
    seed: int, *, rates: list[float], prefs: list[list[int]], mu: float, incidents: int
) -> dict[str, object]:
    """One replication of dispatch alone: atoms are sectors, each with its preference
    list; no travel, exponential time on scene, FCFS queue when every unit is busy."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    log: list[tuple[float, ev.Event]] = []
    n = len(prefs[0])
    units = [Unit(f"U{i}", "police_car", 0, "") for i in range(n)]
    spec = IncidentSpec(
        "crime",
        "110",
        {1: 1.0},
        {"police": 1},
        {},
        TimeDist(mean=1 / mu, distribution="exponential"),
        0.0,
        0.0,
    )
    cad = Dispatcher(
        env,
        units,
        travel=NoTravel(env),
        rng=rng,
        emit=lambda e: log.append((env.now, e)),
        policy="beats",
        beats={f"A{j}": [f"U{u}" for u in pref] for j, pref in enumerate(prefs)},
    )
    total = sum(rates)
    atom_p = np.array(rates) / total

    def arrivals():
        for i in range(incidents):
            yield env.timeout(rng.exponential(1 / total))
            atom = int(rng.choice(len(rates), p=atom_p))
            cad.open(
                Incident(f"I{i}", "crime", 1, f"A{atom}", 0, 0.0, 0.0, ["police"], spec, env.now)
            )

    env.process(arrivals())
    env.run()
    warm_t = next(
        t for t, e in log if isinstance(e, ev.UnitState) and e.incident == f"I{incidents // 10}"
    )
    end_t = env.now
    busy = np.zeros(n)
    since: dict[str, float] = {}
    dispatches = cross = 0
    for t, e in log:
        if not isinstance(e, ev.UnitState):
            continue
        u = int(e.unit[1:])
        if e.state == "dispatched":
            since[e.unit] = t
            dispatches += t >= warm_t
        elif e.state == "available" and e.unit in since:  # (each unit starts available)
            begin = since.pop(e.unit)
            busy[u] += max(0.0, t - max(begin, warm_t))
    # the atom of each incident is its sector: read it back from the dispatch events
    sector = {
        e.incident: int(e.sector[1:])
        for _, e in log
        if isinstance(e, ev.UnitState) and e.state == "dispatched"
    }
    for t, e in log:
        if isinstance(e, ev.UnitState) and e.state == "dispatched" and t >= warm_t:
            if int(e.unit[1:]) != prefs[sector[e.incident]][0]:
                cross += 1
    return {"workload": busy / (end_t - warm_t), "cross": cross / dispatches}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rates", "prefs", "mu"),
    [
        ([0.6, 0.3], [[0, 1], [1, 0]], 1.0),
        ([0.5, 0.3, 0.6], [[0, 1, 2], [1, 0, 2], [2, 1, 0]], 1.0),
    ],
    ids=["2-units", "3-units"],
)
def test_dispatch_by_beats_reproduces_the_hypercube(rates, prefs, mu):
    scale = 1800.0  # seconds per time unit: 30 minutes on scene on average
    theory = hypercube(arrival_rates=rates, preferences=prefs, service_rate=mu)
    runs = [
        fleet_run(
            seed, rates=[r / scale for r in rates], prefs=prefs, mu=mu / scale, incidents=8000
        )
        for seed in range(REPLICATIONS)
    ]
    for u in range(len(prefs)):
        ok, said = within_ci([r["workload"][u] for r in runs], theory.workload[u])
        assert ok, f"unit {u} workload: {said}"
    ok, said = within_ci([r["cross"] for r in runs], theory.cross_beat)
    assert ok, f"cross-beat dispatches: {said}"
