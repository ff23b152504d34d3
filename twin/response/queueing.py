"""Queueing theory for call centres, patrol fleets and service halls: the answers the
simulation must match.

These are the classical models planners size call centres and fleets with. The twin's
simulation reproduces each of them when its assumptions hold (the validation tests check
it), and goes beyond them where they do not: priorities, redials, travel through traffic,
several units per incident.

- :func:`erlang_c`: M/M/c, callers wait as long as it takes.
- :func:`erlang_a`: M/M/c+M, callers hang up after an exponential patience; solved exactly
  as a birth-death chain.
- :func:`allen_cunneen`: G/G/c, the Allen–Cunneen approximation of the mean wait.
- :func:`hypercube`: Larson's hypercube queueing model of N units dispatched by fixed
  preference lists, with an infinite FCFS queue when all are busy; solved exactly from
  the balance equations of its 2^N states (and the queue's tail).

>>> r = erlang_c(arrival_rate=1 / 30, service_rate=1 / 90, servers=4)
>>> round(r.p_wait, 4), round(r.mean_wait_s, 2), round(r.service_level(10), 4)
(0.5094, 45.85, 0.5441)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin._errors import InputError


@dataclass(frozen=True)
class ErlangC:
    """M/M/c results. Rates are per second."""

    arrival_rate: float
    service_rate: float
    servers: int
    p_wait: float  # a caller waits at all (probability of delay)
    mean_wait_s: float  # over all callers
    utilisation: float

    def service_level(self, within_s: float) -> float:
        """Share of callers answered within ``within_s`` seconds."""
        c, mu, lam = self.servers, self.service_rate, self.arrival_rate
        return 1.0 - self.p_wait * math.exp(-(c * mu - lam) * within_s)


def erlang_c(*, arrival_rate: float, service_rate: float, servers: int) -> ErlangC:
    """Erlang C for ``servers`` call-takers, Poisson calls and exponential talk times."""
    _positive(arrival_rate=arrival_rate, service_rate=service_rate, servers=servers)
    a = arrival_rate / service_rate  # offered load in erlangs
    if a >= servers:
        raise InputError(
            f"{servers} call-takers cannot keep up with {a:.2f} erlangs of calls: the queue grows without end"
        )
    # Erlang B by its stable recursion, then C from B.
    b = 1.0
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    rho = a / servers
    p_wait = b / (1 - rho * (1 - b))
    mean_wait = p_wait / (servers * service_rate - arrival_rate)
    return ErlangC(arrival_rate, service_rate, servers, p_wait, mean_wait, rho)


@dataclass(frozen=True)
class ErlangA:
    """M/M/c+M results. Rates are per second."""

    p_wait: float  # a caller finds every call-taker busy
    p_abandon: float  # a caller hangs up before an answer
    mean_wait_s: float  # over all callers, until answered or hung up
    mean_queue: float
    servers: int = 0
    service_rate: float = 0.0
    abandon_rate: float = 0.0
    states: tuple[float, ...] = ()  # P(n callers in the centre), n = 0, 1, ...

    def service_level(self, within_s: float) -> float:
        """Share of callers answered within ``within_s`` seconds (a caller who hangs up is
        not answered).

        A caller who finds ``k`` others waiting moves up a place when a call-taker frees up
        (rate ``c * mu``) or one of those ahead hangs up (rate ``j * theta`` with ``j``
        ahead), and hangs up itself at rate ``theta``: a small Markov chain, whose chance
        of reaching a call-taker within the time comes from its matrix exponential."""
        from scipy.linalg import expm

        p = np.asarray(self.states)
        c, mu, theta = self.servers, self.service_rate, self.abandon_rate
        if within_s <= 0 or len(p) <= c:
            return float(p[:c].sum())
        ahead = len(p) - c  # arrivals find k = 0 .. ahead - 1 waiting
        answered = ahead  # state index of "answered"; "hung up" after it
        q = np.zeros((ahead + 2, ahead + 2))
        for j in range(ahead):
            q[j, answered if j == 0 else j - 1] += c * mu + j * theta
            q[j, ahead + 1] += theta
            q[j, j] = -(c * mu + j * theta + theta)
        reach = expm(q * within_s)[:ahead, answered]
        return float(p[:c].sum() + (p[c:] * reach).sum())


def erlang_a(
    *,
    arrival_rate: float,
    service_rate: float,
    servers: int,
    abandon_rate: float,
    tail: float = 1e-13,
) -> ErlangA:
    """Erlang A, exactly, from the birth-death chain of the number of callers in the centre:
    births at ``arrival_rate``; deaths at ``min(n, c) * service_rate + max(n - c, 0) *
    abandon_rate`` (the mean patience is ``1 / abandon_rate``). The chain is cut where its
    probabilities fall below ``tail``."""
    _positive(
        arrival_rate=arrival_rate,
        service_rate=service_rate,
        servers=servers,
        abandon_rate=abandon_rate,
    )
    logp = [0.0]
    n = 0
    while True:
        n += 1
        death = min(n, servers) * service_rate + max(n - servers, 0) * abandon_rate
        logp.append(logp[-1] + math.log(arrival_rate / death))
        if n > servers and logp[-1] - max(logp) < math.log(tail):
            break
    p = np.exp(np.array(logp) - max(logp))
    p /= p.sum()
    states = np.arange(len(p))
    queue = np.maximum(states - servers, 0)
    mean_queue = float((p * queue).sum())
    return ErlangA(
        p_wait=float(p[servers:].sum()),
        p_abandon=abandon_rate * mean_queue / arrival_rate,
        mean_wait_s=mean_queue / arrival_rate,  # Little's law over the queue
        mean_queue=mean_queue,
        servers=servers,
        service_rate=service_rate,
        abandon_rate=abandon_rate,
        states=tuple(p.tolist()),
    )


@dataclass(frozen=True)
class Hypercube:
    """Larson's hypercube model results."""

    workload: np.ndarray  # per unit: share of time busy
    cross_beat: float  # share of dispatches that send a unit other than the atom's own
    p_all_busy: float  # share of incidents that find every unit busy (and queue)
    dispatch_share: np.ndarray  # [atom, unit]: share of the atom's incidents each unit serves


def hypercube(
    *,
    arrival_rates: Sequence[float],
    preferences: Sequence[Sequence[int]],
    service_rate: float,
    queue_cap: int = 2000,
) -> Hypercube:
    """The hypercube queueing model with an infinite-line FCFS queue.

    Parameters
    ----------
    arrival_rates
        Incidents per second in each atom (a beat, or part of one).
    preferences
        For each atom, every unit in order of preference; the first is the atom's own.
    service_rate
        Per unit, per second (service: travel, work on scene and return; exponential).
    queue_cap
        The queue's tail is cut here; its weight beyond is negligible unless the load is
        almost the fleet's capacity.
    """
    lam = np.asarray(arrival_rates, dtype=float)
    n_units = len(preferences[0]) if preferences else 0
    if len(lam) != len(preferences) or not n_units:
        raise InputError("give one preference list per atom, each naming every unit")
    for j, pref in enumerate(preferences):
        if sorted(pref) != list(range(n_units)):
            raise InputError(
                f"atom {j}: its preference list must name every unit once, got {list(pref)}"
            )
    total, mu = float(lam.sum()), float(service_rate)
    if total >= n_units * mu:
        raise InputError(
            f"{n_units} units cannot keep up with {total / mu:.2f} erlangs of incidents"
        )
    full = (1 << n_units) - 1
    n_states = full + queue_cap  # busy sets 0..full, then "all busy with k >= 1 waiting"
    q = np.zeros((n_states, n_states))

    def add(a: int, b: int, rate: float) -> None:
        q[a, b] += rate
        q[a, a] -= rate

    for state in range(full):  # some unit is free
        for j, pref in enumerate(preferences):
            unit = next(u for u in pref if not state >> u & 1)
            add(state, state | 1 << unit, lam[j])
    for state in range(1, full + 1):
        for unit in range(n_units):
            if state >> unit & 1:
                add(state, state & ~(1 << unit), mu)
    for k in range(1, queue_cap):  # state full + k: k waiting
        add(full + k - 1, full + k, total)
        add(full + k, full + k - 1, n_units * mu)
    # pi Q = 0 with sum(pi) = 1: replace one balance equation by the normalisation.
    a = q.T.copy()
    a[-1, :] = 1.0
    rhs = np.zeros(n_states)
    rhs[-1] = 1.0
    pi = np.linalg.solve(a, rhs)
    busy_sets = pi[: full + 1]
    p_full = float(pi[full:].sum())
    workload = np.array(
        [sum(busy_sets[s] for s in range(full) if s >> u & 1) + p_full for u in range(n_units)]
    )
    share = np.zeros((len(lam), n_units))
    for j, pref in enumerate(preferences):
        for state in range(full):
            share[j, next(u for u in pref if not state >> u & 1)] += busy_sets[state]
        share[j] += p_full / n_units  # queued: the first unit to free up, each alike
    own = np.array([pref[0] for pref in preferences])
    cross = float(sum(lam[j] * (1 - share[j, own[j]]) for j in range(len(lam))) / total)
    return Hypercube(workload, cross, p_full, share)


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise InputError(f"{name.replace('_', ' ')} must be positive, got {value!r}")


def allen_cunneen(
    *, arrival_rate: float, service_rate: float, servers: int, ca2: float = 1.0, cs2: float
) -> float:
    """The Allen–Cunneen approximation of the mean wait in a G/G/c queue, seconds: Erlang
    C's mean wait times ``(ca2 + cs2) / 2``, the squared coefficients of variation of the
    gaps between arrivals (1 for Poisson arrivals) and of the service times. Exact for
    M/M/c; for M/G/c typically within a few per cent at the loads halls are sized for
    (Tijms, *A First Course in Stochastic Models*, 2003, ch. 9).

    >>> mm = erlang_c(arrival_rate=1 / 90, service_rate=1 / 300, servers=4).mean_wait_s
    >>> round(allen_cunneen(arrival_rate=1 / 90, service_rate=1 / 300, servers=4, cs2=0.25) / mm, 3)
    0.625
    """
    if ca2 < 0 or cs2 < 0:
        raise InputError("squared coefficients of variation cannot be negative")
    mm = erlang_c(arrival_rate=arrival_rate, service_rate=service_rate, servers=servers)
    return mm.mean_wait_s * (ca2 + cs2) / 2.0
