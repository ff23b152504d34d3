"""The queueing oracles themselves, against values from the literature and each other."""

import math

import numpy as np
import pytest

from twin._errors import InputError
from twin.response.queueing import erlang_a, erlang_c, hypercube


def test_erlang_c_against_tables():
    # 3 erlangs on 4 servers: probability of waiting 0.5094 (standard Erlang C tables)
    r = erlang_c(arrival_rate=3.0, service_rate=1.0, servers=4)
    assert r.p_wait == pytest.approx(0.50943, abs=1e-5)
    assert r.mean_wait_s == pytest.approx(r.p_wait / (4 - 3))
    # one server: M/M/1, P(wait) = rho, mean wait = rho / (mu - lambda)
    m = erlang_c(arrival_rate=0.5, service_rate=1.0, servers=1)
    assert m.p_wait == pytest.approx(0.5) and m.mean_wait_s == pytest.approx(1.0)
    assert m.service_level(0) == pytest.approx(0.5)
    with pytest.raises(InputError, match="cannot keep up"):
        erlang_c(arrival_rate=4.0, service_rate=1.0, servers=4)


def test_erlang_a_tends_to_erlang_c_and_loses_callers_when_impatient():
    c = erlang_c(arrival_rate=3.0, service_rate=1.0, servers=4)
    a = erlang_a(arrival_rate=3.0, service_rate=1.0, servers=4, abandon_rate=1e-9)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-6)
    assert a.mean_wait_s == pytest.approx(c.mean_wait_s, rel=1e-5)
    # with patience equal to the talk time, the queue empties at the service rate
    # too: the chain is M/M/infinity, so P(wait) is a Poisson tail
    same = erlang_a(arrival_rate=3.0, service_rate=1.0, servers=4, abandon_rate=1.0)
    tail = 1 - sum(math.exp(-3) * 3**k / math.factorial(k) for k in range(4))
    assert same.p_wait == pytest.approx(tail, rel=1e-9)
    # overloaded but stable: impatience keeps Erlang A finite
    over = erlang_a(arrival_rate=6.0, service_rate=1.0, servers=4, abandon_rate=0.5)
    assert 0.3 < over.p_abandon < 1 and over.mean_queue > 0


def test_hypercube_two_units_matches_mm2_and_conserves_load():
    h = hypercube(arrival_rates=[0.5, 0.5], preferences=[[0, 1], [1, 0]], service_rate=1.0)
    assert h.p_all_busy == pytest.approx(erlang_c(arrival_rate=1, service_rate=1, servers=2).p_wait)
    assert h.workload.sum() == pytest.approx(1.0)  # offered load in erlangs
    assert h.workload == pytest.approx([0.5, 0.5])
    skew = hypercube(
        arrival_rates=[0.7, 0.1, 0.2],
        preferences=[[0, 1, 2], [1, 2, 0], [2, 0, 1]],
        service_rate=1.0,
    )
    assert skew.workload.sum() == pytest.approx(1.0)
    assert skew.workload[0] == max(skew.workload)
    assert np.allclose(skew.dispatch_share.sum(axis=1), 1.0)
    with pytest.raises(InputError, match="name every unit once"):
        hypercube(arrival_rates=[1, 1], preferences=[[0, 0], [1, 0]], service_rate=3)


def test_erlang_a_service_level_meets_its_limits():
    """Patient callers: Erlang C's service level; a long wait: everyone who did not hang up."""
    c = erlang_c(arrival_rate=3.0, service_rate=1.0, servers=4)
    a = erlang_a(arrival_rate=3.0, service_rate=1.0, servers=4, abandon_rate=1e-9)
    for t in (0.0, 0.2, 1.0, 3.0):
        assert a.service_level(t) == pytest.approx(c.service_level(t), abs=1e-6)
    busy = erlang_a(arrival_rate=6.0, service_rate=1.0, servers=4, abandon_rate=0.5)
    assert busy.service_level(0) == pytest.approx(1 - busy.p_wait)
    assert busy.service_level(200) == pytest.approx(1 - busy.p_abandon, abs=1e-9)
    levels = [busy.service_level(t) for t in (0.1, 0.5, 1, 2, 5)]
    assert levels == sorted(levels)
