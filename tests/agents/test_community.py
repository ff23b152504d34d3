"""The community model on the default city: crime where routine activity puts it, guardians
that work, residents who feel it, and its runs on the twin's clock."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from twin._errors import InputError
from twin.agents.community import CommunityModel
from twin.agents.component import edge_forecast
from twin.runs import run_scenario
from twin.scenario import scenario_from_dict

WEEK = 7 * 144  # ten-minute steps


def week(city, **options) -> CommunityModel:
    model = CommunityModel(city, seed=options.pop("seed", 1), **options)
    for _ in range(WEEK):
        model.step()
    return model


@pytest.fixture(scope="module")
def patrolled(helsinki_city):
    return {
        strategy: week(helsinki_city, patrols=4, strategy=strategy)
        for strategy in ("random", "beats", "hotspot")
    } | {"none": week(helsinki_city, patrols=0)}


def test_crime_concentrates_on_few_streets(patrolled):
    """Weisburd's law: about 1-6 % of street segments hold a quarter of the crime and
    4-12 % hold half of it in the cities studied; the model lands in that band."""
    for strategy, model in patrolled.items():
        c = model.concentration()
        assert c["crimes"] > 300, strategy
        assert 0.005 <= c["share_for_25"] <= 0.07, (strategy, c)
        assert 0.02 <= c["share_for_50"] <= 0.15, (strategy, c)


def test_guardians_prevent_crime_and_hotspot_policing_most(patrolled):
    """Same seed, same offenders (common random numbers): any patrol prevents crime, and
    dosage at the hotspots prevents the most (as the hotspot-policing trials found)."""
    crimes = {s: len(m.crimes) for s, m in patrolled.items()}
    assert crimes["none"] > crimes["random"] and crimes["none"] > crimes["beats"]
    assert crimes["hotspot"] < min(crimes["random"], crimes["beats"])


def test_bhabinkamtibmas_raise_trust_and_the_sense_of_safety(helsinki_city):
    without = week(helsinki_city, officers=0, seed=2)
    with_officers = week(helsinki_city, officers=10, seed=2)
    assert with_officers.res_trust.mean() > without.res_trust.mean() + 0.05
    a, b = without.rasa_aman(), with_officers.rasa_aman()
    assert np.mean(list(b.values())) > np.mean(list(a.values()))
    assert all(0 <= v <= 100 for v in a.values())
    # disputes: nobody mediates without officers, and a third escalate to 110
    outcomes = [d.outcome for d in without.disputes]
    assert "mediated" not in outcomes and 0.2 < outcomes.count("escalated") / len(outcomes) < 0.45
    mediated = [d.outcome for d in with_officers.disputes]
    assert mediated.count("mediated") > 0.8 * len(mediated)
    assert mediated.count("escalated") < outcomes.count("escalated")


def test_predicted_hotspots_steer_the_patrols(helsinki_city):
    model = week(
        helsinki_city,
        patrols=4,
        strategy="predicted",
        forecast=edge_forecast(helsinki_city, method="kde", shift=8 * 3600.0),
    )
    assert len(model.crimes) > 0
    spots = model.hotspots(predicted=True)
    assert len(spots) == model.n_hotspots
    with pytest.raises(InputError, match="needs a forecast"):
        CommunityModel(helsinki_city, strategy="predicted")
    with pytest.raises(InputError, match="patrol strategy must be one of"):
        CommunityModel(helsinki_city, strategy="zone")


def test_same_seed_same_crimes(helsinki_city):
    a = CommunityModel(helsinki_city, seed=7, patrols=2, officers=2)
    b = CommunityModel(helsinki_city, seed=7, patrols=2, officers=2)
    for _ in range(100):
        a.step()
        b.step()
    assert a.crimes == b.crimes and (a.res_safety == b.res_safety).all()


def q(sql: str) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def test_a_run_with_community_response_and_unrest(helsinki_city, tmp_path):
    sc = scenario_from_dict(
        {
            "name": "unrest",
            "city": str(helsinki_city.path),
            "start": "2026-12-01T08:00:00+02:00",
            "duration": "6h",
            "seed": 4,
            "events": [
                {
                    "type": "demonstration",
                    "id": "rally",
                    "area": {"center": {"lat": 60.1705, "lon": 24.9430}, "radius_m": 200},
                    "start": "09:00",
                    "duration": "3h",
                }
            ],
            "community": {
                "offenders": 30,
                "patrols": {"units": 3, "strategy": "hotspot"},
                "bhabinkamtibmas": 2,
                "unrest": {"legitimacy": 0.6, "crowd": 400, "police": 10},
            },
            "response": {
                "units": [{"name": "P", "type": "police_car", "count": 6, "base": "police"}]
            },
        }
    )
    result = run_scenario(sc, out=tmp_path / "unrest", progress=False)
    again = run_scenario(sc, out=tmp_path / "again", progress=False)
    assert again.info["timeline_sha256"] == result.info["timeline_sha256"]  # same seed, same run
    path = Path(result.path) / "timeline.parquet"
    crimes = q(
        f"SELECT count(*), count(*) FILTER (WHERE reported) FROM '{path}' WHERE kind = 'crime_committed'"
    )[0]
    from_community = q(
        f"SELECT count(*) FROM '{path}' WHERE kind = 'incident_occurred' AND origin = 'community'"
    )[0][0]
    assert crimes[1] == from_community > 0  # every reported crime is an incident with its call
    unrest = q(
        f"SELECT min(t), max(t), max(active), max(jailed) FROM '{path}' WHERE kind = 'unrest_state'"
    )[0]
    assert 3600 < unrest[0] and unrest[1] <= 4 * 3600 and unrest[2] > 0 and unrest[3] > 0
    safety = q(
        f"SELECT count(DISTINCT t), min(rasa_aman), max(rasa_aman) FROM '{path}' WHERE kind = 'sector_safety'"
    )[0]
    assert safety[0] == 6 and 0 <= safety[1] <= safety[2] <= 100
    k = result.kpis
    assert k["crimes"] > 0 and k["unrest_peak"] > 0 and 0 < k["segments_for_half"] < 1
    escalated = q(
        f"SELECT count(*) FROM '{path}' WHERE kind = 'dispute' AND outcome = 'escalated'"
    )[0][0]
    public_order = q(
        f"SELECT count(*) FROM '{path}' WHERE kind = 'crime_committed' AND crime_type = 'public_order'"
    )[0][0]
    assert public_order >= escalated  # escalated disputes, and clashes in the crowd, call 110
    assert "Rasa aman" in (Path(result.path) / "report.html").read_text(encoding="utf-8")
