"""Epstein's civil violence in the twin: its invariants, and the same statistics as Mesa's
own example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from twin._errors import InputError
from twin.agents.civil import (
    ACTIVE,
    ARRESTED,
    CITIZEN,
    COP,
    QUIET,
    CivilViolence,
    arrest_probability,
    max_active_share,
)
from twin.ext import civil as kernel


def test_arrest_probability_is_epsteins_with_mesas_rounding():
    assert arrest_probability(0, 1) == 0.0
    assert arrest_probability(1, 1) == pytest.approx(1 - math.exp(-2.3))
    assert arrest_probability(1, 2) == 0.0  # round(0.5) is 0: half to even
    assert arrest_probability(3, 2) == pytest.approx(1 - math.exp(-2.3 * 2))  # round(1.5) = 2
    assert arrest_probability(5, 2) == pytest.approx(1 - math.exp(-2.3 * 2))  # round(2.5) = 2
    with pytest.raises(InputError, match="counts itself"):
        arrest_probability(1, 0)


def one_citizen_world(cops: int, others_active: int, grievance: float, risk: float):
    """A 15 x 15 torus: one free citizen in the middle, ``cops`` cops and
    ``others_active`` active citizens in its sight; returns what the kernel decides."""
    width = height = 15
    grid = np.full(width * height, -1, dtype=np.int32)
    kinds, cells, states = [CITIZEN], [7 * width + 7], [QUIET]
    spots = [7 * width + x for x in (1, 2, 3, 4, 5, 9, 10, 11, 12, 13)]
    spots += [y * width + 7 for y in (1, 2, 3, 4, 5, 9, 10, 11, 12, 13)]
    for who, state in [(COP, 0)] * cops + [(CITIZEN, ACTIVE)] * others_active:
        kinds.append(who)
        cells.append(spots.pop())
        states.append(state)
    n = len(kinds)
    grid[cells] = np.arange(n, dtype=np.int32)
    state = np.array(states, dtype=np.int8)
    g = np.full(n, 0.9)
    g[0] = grievance
    r = np.full(n, 0.0)
    r[0] = risk
    offsets = kernel.von_neumann_offsets(7)
    scratch = (np.empty(len(offsets), dtype=np.int32), np.empty(len(offsets), dtype=np.int32))
    kernel.step(
        grid,
        width,
        height,
        np.array(kinds, dtype=np.int8),
        np.array(cells, dtype=np.int32),
        g,
        r,
        state,
        np.zeros(n, dtype=np.int32),
        offsets,
        offsets,
        np.array([0], dtype=np.int64),
        np.zeros((n, 3)),
        0.1,
        2.3,
        30,
        False,
        *scratch,
    )
    return state[0]


@pytest.mark.parametrize(
    ("cops", "others"), [(0, 0), (1, 0), (1, 1), (3, 1), (5, 1), (2, 3), (4, 0)]
)
def test_the_kernel_decides_by_the_arrest_probability(cops, others):
    for grievance in np.linspace(0.05, 0.95, 91):
        for risk in (0.0, 0.3, 0.9):
            p = arrest_probability(cops, others + 1)
            expected = ACTIVE if grievance - risk * p > 0.1 else QUIET
            assert one_citizen_world(cops, others, grievance, risk) == expected, (
                grievance,
                risk,
                p,
            )


def test_agents_are_conserved_and_never_more_active_than_grievance_allows():
    model = CivilViolence(seed=3, legitimacy=0.5, max_jail_term=20)
    able = int((model.grievance[model.kind == CITIZEN] > model.threshold).sum())
    for _ in range(60):
        model.step()
        c = model.counts()
        assert c["active"] + c["quiet"] + c["arrested"] == model.citizens
        assert c["active"] <= able
        assert (
            np.sort(model.grid[model.grid >= 0]) == np.arange(len(model.kind))
        ).all()  # one cell each
        assert (model.grid[model.cell] == np.arange(len(model.kind))).all()
    # with no cop to fear, exactly the able turn active, about 1 - T / (1 - L) of them
    free = CivilViolence(seed=4, cop_density=0.0, legitimacy=0.5)
    free.step()
    able = int((free.grievance[free.kind == CITIZEN] > free.threshold).sum())
    assert free.counts()["active"] == able
    assert able / free.citizens == pytest.approx(max_active_share(0.5, 0.1), abs=0.03)
    assert max_active_share(0.95, 0.1) == 0.0


def test_same_seed_same_history_and_bad_parameters_are_named():
    a, b = CivilViolence(seed=9), CivilViolence(seed=9)
    for _ in range(20):
        a.step(), b.step()
    assert a.history == b.history and (a.cell == b.cell).all()
    with pytest.raises(InputError, match="legitimacy must be between 0 and 1"):
        CivilViolence(legitimacy=1.5)
    with pytest.raises(InputError, match="citizen_density \\+ cop_density must be at most 1"):
        CivilViolence(citizen_density=0.9, cop_density=0.2)
    with pytest.raises(InputError, match="sees round the whole torus"):
        CivilViolence(width=10, height=10)
    assert ARRESTED == 3


@pytest.mark.slow
def test_same_statistics_as_mesas_example():
    """20 seeds each, on a 20 x 20 torus where unrest comes and goes (legitimacy 0.6, jail
    terms up to 30 steps): the mean shares over steps 10-60 of each seed agree between the
    twin and Mesa's own example, by Welch's t-test on the means and Levene's test on the
    spread, at the 1 % level."""
    from mesa.examples.advanced.epstein_civil_violence.model import EpsteinCivilViolence

    params = {"width": 20, "height": 20, "legitimacy": 0.6, "max_jail_term": 30}

    def mesa_shares(seed: int) -> np.ndarray:
        m = EpsteinCivilViolence(seed=seed, **params)
        rows = []
        for _ in range(60):
            m.step()
            rows.append((m.ACTIVE, m.QUIET, m.ARRESTED))
        a = np.array(rows, dtype=float)
        return (a / a.sum(axis=1, keepdims=True))[10:].mean(axis=0)

    def twin_shares(seed: int) -> np.ndarray:
        m = CivilViolence(seed=seed, **params)
        for _ in range(60):
            m.step()
        return m.shares().iloc[11:].to_numpy().mean(axis=0)

    mesa = np.array([mesa_shares(s) for s in range(20)])
    twin = np.array([twin_shares(1000 + s) for s in range(20)])
    for j, name in enumerate(("active", "quiet", "arrested")):
        t = stats.ttest_ind(twin[:, j], mesa[:, j], equal_var=False)
        spread = stats.levene(twin[:, j], mesa[:, j])
        said = f"{name}: twin {twin[:, j].mean():.4f} ± {twin[:, j].std(ddof=1):.4f}, mesa {mesa[:, j].mean():.4f} ± {mesa[:, j].std(ddof=1):.4f}"
        assert t.pvalue > 0.01, f"means differ: {said}"
        assert spread.pvalue > 0.01, f"spreads differ: {said}"
