"""KPIs are pure queries: check them on timelines whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin import events as ev
from twin import kpi
from twin.sim.timeline import Timeline


def network(
    tl: Timeline,
    t: float,
    *,
    vehicles: int,
    halting: int,
    speed: float = 8.0,
    tti: float = 1.2,
    departed: int = 100,
    teleports: int = 0,
) -> None:
    tl.append(
        t,
        ev.NetworkState(
            vehicles=vehicles,
            halting=halting,
            speed_mps=speed,
            tti=tti,
            departed=departed,
            arrived=departed - vehicles,
            teleports=teleports,
            waiting_to_insert=0,
        ),
        source="traffic",
    )


def timeline() -> Timeline:
    tl = Timeline()
    for i, speed in enumerate([10.0, 5.0, 7.5]):
        network(tl, 60.0 * (i + 1), vehicles=50, halting=5, speed=speed, tti=1.0 + i)
    tl.extend(
        60.0,
        "edge_state",
        source="traffic",
        edge=["a", "b"],
        sector=["S01", "S01"],
        vehicles=[3, 9],
        halting=[1, 7],
        speed_mps=[5.0, 1.0],
        density_veh_km=[10.0, 30.0],
        tti=[1.5, 6.0],
    )
    tl.extend(
        [100.0, 200.0, 300.0],
        "trip",
        source="traffic",
        vehicle=["x", "y", "z"],
        depart_s=[0.0, 50.0, 100.0],
        duration_s=[100.0, 150.0, 200.0],
        route_length_m=[1000.0] * 3,
        time_loss_s=[30.0, 130.0, 300.0],
        rerouted=[0, 1, 0],
        vehicle_type=["car", "car", "motorcycle"],
    )
    tl.append(
        90.0,
        ev.RoadEventStarted(event_id="acc", event_type="accident", edges=["a"], lanes_closed=0),
        source="traffic",
    )
    tl.append(90.0, ev.VehiclesRerouted(event_id="acc", vehicles=4, diverted=2), source="traffic")
    tl.append(150.0, ev.VehiclesRerouted(event_id="acc", vehicles=1, diverted=0), source="traffic")
    tl.append(
        180.0,
        ev.RoadEventEnded(event_id="acc", event_type="accident", edges=["a"]),
        source="traffic",
    )
    tl.append(180.0, ev.RunEnded(status="complete", reason=""), source="run")
    return tl


def test_summary_answers_known_values():
    s = kpi.summary(timeline().table())
    assert s["network_speed_kmh"] == pytest.approx((10 + 5 + 7.5) / 3 * 3.6, abs=0.01)
    assert s["mean_tti"] == pytest.approx(2.0) and s["peak_tti"] == pytest.approx(3.0)
    assert s["trips"] == 3 and s["mean_trip_min"] == pytest.approx(2.5)
    assert s["delay_veh_h"] == pytest.approx(460 / 3600, abs=0.01)
    assert s["vehicles_delayed"] == 2  # 130 s and 300 s lost, over the 120 s threshold
    assert s["vehicles_rerouted"] == 5 and s["trips_cut_short"] == 2
    assert s["longest_queue_veh"] == 7 and s["longest_queue_at"]["where"] == "b"
    assert s["status"] == "complete" and s["gridlock"] is False
    # per vehicle type: the two cars (100 s and 150 s, 1 km each) and the motorcycle
    assert s["by_vehicle_type"] == {
        "motorcycle": {
            "trips": 1,
            "mean_trip_min": 3.33,
            "mean_delay_s": 300.0,
            "mean_speed_kmh": 18.0,
            "teleports": 0,
        },
        "car": {
            "trips": 2,
            "mean_trip_min": 2.08,
            "mean_delay_s": 80.0,
            "mean_speed_kmh": 28.8,
            "teleports": 0,
        },
    }
    assert s["completed_share"] == pytest.approx(3 / s["departed"], abs=1e-4)


def test_road_events_table():
    table = kpi.road_events(timeline().table())
    row = table.iloc[0]
    assert (row.event_id, row.start_s, row.end_s, row.rerouted, row.cut_short) == (
        "acc",
        90.0,
        180.0,
        5,
        2,
    )


def test_summary_reads_parquet_too(tmp_path):
    from twin.sim.timeline import write_parquet

    write_parquet(timeline().table(), tmp_path / "t.parquet", {"status": "complete"})
    assert kpi.summary(tmp_path / "t.parquet") == kpi.summary(timeline().table())
    loaded = kpi.connect(tmp_path / "t.parquet", load=True)  # the dashboards' sorted table
    assert kpi.summary(loaded) == kpi.summary(timeline().table())
    assert (
        loaded.execute("SELECT count(*) FROM timeline").fetchone()[0] == timeline().table().num_rows
    )


def frame(shares: list[float], teleports: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "vehicles": [100] * len(shares),
            "halting": [int(s * 100) for s in shares],
            "teleports": [teleports] * len(shares),
            "departed": [1000] * len(shares),
        }
    )


@pytest.mark.parametrize(
    ("shares", "teleports", "expected"),
    [
        ([0.6] * 5, 0, True),  # five samples in a row over half halting
        ([0.6] * 4 + [0.2] + [0.6] * 4, 0, False),  # never five in a row
        ([0.1] * 10, 0, False),
        ([0.1] * 10, 11, True),  # teleports over 1 % of departures
    ],
)
def test_gridlock(shares, teleports, expected):
    assert kpi.gridlock(frame(shares, teleports)) is expected


def test_compare_keeps_counts_as_integers_and_differences_against_the_reference():
    a = kpi.summary(timeline().table())
    b = dict(a, trips=5, network_speed_kmh=10.0, gridlock=True)
    table = kpi.compare({"a": a, "b": b}).set_index("kpi")
    assert table.loc["trips", "Δ b"] == 2 and isinstance(table.loc["trips", "b"], int)
    assert table.loc["network_speed_kmh", "Δ b"] == pytest.approx(
        10.0 - a["network_speed_kmh"], abs=1e-3
    )
    assert table.loc["gridlock", "Δ b"] is None


@pytest.mark.parametrize("module", ["labels", "response", "run", "ensemble", "status"])
def test_the_docstring_examples_hold(module):
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(f"twin.kpi.{module}")).failed == 0


def test_an_ensembles_confidence_intervals_cover_the_truth_at_their_level():
    """Replications drawn from known normal KPIs: the mean's 95 % interval holds the true
    mean, and the difference's (Welch) the true difference, in 95 % of 2,000 trials,
    within the Monte Carlo error (3 standard errors of a proportion)."""
    rng = np.random.default_rng(5)
    trials, hit_a, hit_d = 2000, 0, 0
    for _ in range(trials):
        a = [{"mean_tti": v} for v in rng.normal(1.40, 0.05, 5)]
        b = [{"mean_tti": v} for v in rng.normal(1.30, 0.15, 8)]  # unequal spreads and sizes
        row = kpi.compare({"a": a, "b": b}).iloc[0]
        hit_a += abs(row["a"] - 1.40) <= row["± a"]
        hit_d += abs(row["Δ b"] - (-0.10)) <= row["± Δ b"] + 1e-3  # Δ is rounded to 0.001
    se = (0.95 * 0.05 / trials) ** 0.5
    assert abs(hit_a / trials - 0.95) < 3 * se and abs(hit_d / trials - 0.95) < 3 * se + 0.01
    single = kpi.compare({"a": {"mean_tti": 1.4}, "b": {"mean_tti": 1.3}})
    assert "± a" not in single.columns  # single runs: the table is as it always was


def test_a_units_state_is_the_last_one_recorded_even_at_the_same_moment():
    """Back at its post and sent again in the same second: the board says "dispatched",
    whichever way the rows happen to be stored."""
    tl = Timeline()
    for state, incident in (("returning", ""), ("available", ""), ("dispatched", "I00006")):
        tl.append(
            3139.75,
            ev.UnitState(
                unit="A-1",
                unit_type="ambulance",
                agency="ambulance",
                state=state,
                incident=incident,
                sector="S07",
                lat=60.17,
                lon=24.94,
            ),
            source="response",
        )
    table = tl.table()
    for rows in (table, table.take(list(range(table.num_rows))[::-1])):
        units = kpi.units_at(kpi.connect(rows), 3200.0)
        assert units[["unit", "state", "incident", "since"]].values.tolist() == [
            ["A-1", "dispatched", "I00006", 3139.75]
        ]
