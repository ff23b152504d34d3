"""Post placement (MCLP): spopt's answer equals the exact optimum by enumeration."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from twin import InputError
from twin.plans.posts import best_by_enumeration, covered_share, demand_weights, place_posts
from twin.routing import TravelTimeEngine

TWIN = [sys.executable, "-m", "twin.cli"]


@pytest.mark.parametrize(("n", "within"), [(1, 60.0), (2, 45.0), (3, 60.0), (3, 90.0)])
def test_placement_is_optimal_on_a_small_instance(helsinki_city, n, within):
    engine = TravelTimeEngine.from_city(helsinki_city)
    rng = np.random.default_rng(n)
    candidates = sorted(int(x) for x in rng.choice(engine.nodes, 12, replace=False))
    result = place_posts(helsinki_city, n, within, candidates=candidates, engine=engine)
    times = engine.matrix(candidates, engine.nodes, emergency=True)
    weights = demand_weights(helsinki_city.graph, engine.nodes)
    _, best = best_by_enumeration(times, weights, within, n)
    assert result.covered_share == pytest.approx(best / weights.sum(), abs=1e-9)
    assert len(result.chosen) == n and set(result.chosen) <= set(candidates)


def test_more_posts_never_cover_less_and_today_is_compared(helsinki_city):
    engine = TravelTimeEngine.from_city(helsinki_city)
    today = [int(engine.nodes[0])]
    shares = [
        place_posts(helsinki_city, k, 60, engine=engine, today=today).covered_share
        for k in (1, 2, 4)
    ]
    assert shares == sorted(shares)
    result = place_posts(helsinki_city, 1, 60, engine=engine, today=today)
    assert result.today_share <= result.covered_share and result.gain >= 0
    assert covered_share(
        engine.matrix(today, engine.nodes), demand_weights(helsinki_city.graph, engine.nodes), 60
    ) == pytest.approx(result.today_share)


def test_bad_requests(helsinki_city):
    with pytest.raises(InputError, match="at least 1"):
        place_posts(helsinki_city, 0, 60)
    with pytest.raises(InputError, match="only 2 candidate places"):
        place_posts(
            helsinki_city, 3, 60, candidates=[int(n) for n in list(helsinki_city.graph.nodes)[:2]]
        )


def test_place_posts_command(tmp_path, helsinki_city):
    out = tmp_path / "posts.geojson"
    proc = subprocess.run(
        [
            *TWIN,
            "place-posts",
            str(helsinki_city.path),
            "--n",
            "2",
            "--within",
            "1min",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "2 posts chosen" in proc.stdout
        and "Today's posts" in proc.stdout
        and "a gain of" in proc.stdout
    )
    doc = json.loads(out.read_text())
    assert len(doc["features"]) == 2
    # the chosen posts feed straight back into coverage
    proc = subprocess.run(
        [
            *TWIN,
            "coverage",
            str(helsinki_city.path),
            "--from",
            str(out),
            "--within",
            "1min",
            "--out",
            str(tmp_path / "m.html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "2 facilities from" in proc.stdout
