"""Hotspot forecasts: the kernel density against scipy, the self-exciting process against
data it generated, and the scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from twin._errors import InputError
from twin.predict import SEPP, Events, Grid, evaluate, flag, forecast, score


def test_kde_kernel_equals_scipy_gaussians():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1000, 30), rng.uniform(0, 1000, 30)
    grid = Grid(0.0, 0.0, 50.0, 20, 20)
    got = forecast(
        Events(x, y, np.zeros(30)), grid, now=1.0, method="kde", bandwidth=80.0, half_life=1e12
    )
    cx = (np.arange(20) + 0.5) * 50
    gx, gy = np.meshgrid(cx, cx)
    want = sum(
        multivariate_normal([a, b], np.eye(2) * 80.0**2).pdf(np.dstack([gx, gy]))
        for a, b in zip(x, y, strict=True)
    )
    # the kernel is cut at 4 sigma: it loses at most exp(-8) of each Gaussian's height
    np.testing.assert_allclose(got.reshape(20, 20), want, rtol=0, atol=want.max() * 4e-4)


def hawkes(rng, *, days: float, per_day: float, theta: float, omega: float, sigma: float) -> Events:
    """A self-exciting process on a 2 x 2 km square, by its branching structure."""
    T = days * 86400.0
    t = list(rng.uniform(0, T, rng.poisson(per_day * days)))
    x, y = list(rng.uniform(0, 2000, len(t))), list(rng.uniform(0, 2000, len(t)))
    queue = list(range(len(t)))
    while queue:
        i = queue.pop()
        for _ in range(rng.poisson(theta)):
            t.append(t[i] + rng.exponential(1 / omega))
            x.append(x[i] + rng.normal(0, sigma))
            y.append(y[i] + rng.normal(0, sigma))
            queue.append(len(t) - 1)
    t_, x_, y_ = np.array(t), np.array(x), np.array(y)
    keep = t_ < T
    return Events(x_[keep], y_[keep], t_[keep])


def test_sepp_recovers_the_process_that_made_the_data():
    ev = hawkes(np.random.default_rng(1), days=60, per_day=40, theta=0.5, omega=1 / 7200, sigma=60)
    fit = SEPP.fit(ev.between(50 * 86400, 60 * 86400), bandwidth=200.0)
    assert fit.theta == pytest.approx(0.5, abs=0.1)
    assert 1 / fit.omega == pytest.approx(7200, rel=0.25)
    assert fit.sigma == pytest.approx(60, rel=0.2)


def test_on_self_exciting_crime_sepp_beats_the_naive_forecast():
    ev = hawkes(np.random.default_rng(5), days=12, per_day=30, theta=0.6, omega=1 / 3600, sigma=40)
    grid = Grid(0.0, 0.0, 100.0, 20, 20)
    table = evaluate(
        ev, grid, start=7 * 86400, end=12 * 86400, shift=4 * 3600, share=0.05, bandwidth=150.0
    ).set_index("method")
    assert table.loc["sepp", "pai"] > table.loc["naive", "pai"]
    assert (table["pai"] >= 0).all() and (table["hit_rate"] <= 1).all()


def test_scores_and_bad_input():
    grid = Grid(0.0, 0.0, 10.0, 10, 1)
    risk = np.arange(10, dtype=float)  # cell 9 riskiest
    assert list(flag(risk, 0.2)) == [9, 8]
    future = Events(np.array([95.0, 85.0, 5.0, 5.0]), np.array([5.0, 5.0, 5.0, 5.0]), np.zeros(4))
    hit, pai = score(risk, future, grid, 0.2)
    assert hit == 0.5 and pai == pytest.approx(2.5)
    with pytest.raises(InputError, match="flagged share"):
        flag(risk, 0.0)
    with pytest.raises(InputError, match="forecast method"):
        forecast(future, grid, now=1.0, method="crystal-ball")
