"""Calibration: a twin whose demand is wrong follows a hidden truth's detector counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from twin.kpi import GEH_TARGET
from twin.kpi import geh_statistic as geh
from twin.plans.calibrate import calibrate, observed_counts
from twin.runs import run_scenario
from twin.scenario import scenario_from_dict
from twin.sensors.feeds import lines
from twin.sensors.ingest import Ingest
from twin.sensors.registry import load_registry
from twin.sensors.store import SensorStore

ROOT = Path(__file__).resolve().parents[2]
SENSORS = ROOT / "scenarios" / "sensors" / "helsinki.yaml"


def test_geh_by_its_definition():
    assert geh([100, 150, 0], [100, 100, 0]).tolist() == pytest.approx([0.0, 20**0.5, 0.0])


def scenario(city: Path, name: str, demand: dict[str, int], seed: int):
    return scenario_from_dict(
        {
            "name": name,
            "city": str(city),
            "start": "2026-12-01T07:00:00+02:00",
            "duration": "2h",
            "seed": seed,
            "traffic": {"demand": {"veh_per_hour": demand}},
        }
    )


@pytest.mark.slow
def test_calibrated_demand_meets_the_geh_standard(helsinki_city, tmp_path):
    truth = run_scenario(
        scenario(helsinki_city.path, "truth", {"07": 2400, "08": 2700}, 99),
        out=tmp_path / "truth",
        progress=False,
    )
    feed = tmp_path / "truth.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "feed",
            "--from-run",
            str(truth.path),
            "--to",
            str(feed),
            "--sensors",
            str(SENSORS),
        ],
        check=True,
        capture_output=True,
    )
    registry = load_registry(SENSORS, helsinki_city)
    store = SensorStore(tmp_path / "live.duckdb")
    Ingest(registry, store, key=b"k" * 32).replay(lines(feed))
    store.close()
    base = scenario(
        helsinki_city.path, "base", {"07": 1500, "08": 1800}, 42
    )  # the twin's guess is wrong
    counts = observed_counts(tmp_path / "live.duckdb", registry, base)
    assert len(counts) >= 2 * 10  # ten detectors or more, two whole hours
    result = calibrate(base, helsinki_city, counts, tmp_path / "calibration", seed=1)
    assert result.share_before < GEH_TARGET <= result.share_after
    assert result.routes.exists() and "<vehicle" in result.routes.read_text()
