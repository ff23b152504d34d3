"""The shipped service hall as a planner meets it: ``twin service`` on the Polres Monday,
and ``twin evaluate`` of 40 % online pre-registration against walk-ins only, with intervals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TWIN = [sys.executable, "-m", "twin.cli"]
WIDE = {**os.environ, "COLUMNS": "140"}  # a planner's terminal, not a pipe's 80 columns


@pytest.fixture
def hall_dir(tmp_path, jakarta_build):
    (tmp_path / "cities").mkdir()
    (tmp_path / "cities" / "jakarta").symlink_to(jakarta_build.city.path)
    shutil.copy(ROOT / "scenarios" / "jakarta_polres_service.yaml", tmp_path)
    (tmp_path / "plans").mkdir()
    shutil.copy(ROOT / "scenarios" / "plans" / "online_preregistration.yaml", tmp_path / "plans")
    return tmp_path


def test_twin_service_prints_the_hall_by_service_and_counter(hall_dir):
    said = subprocess.run(
        [*TWIN, "service", "jakarta_polres_service.yaml", "-q"],
        cwd=hall_dir,
        capture_output=True,
        text=True,
        env=WIDE,
    )
    assert said.returncode == 0, said.stderr
    out = said.stdout
    assert "Service hall of jakarta-polres-service (complete): visitors" in out
    for words in ("SKCK", "SIM renewal", "Samsat", "SPKT report", "Minutes (of those served)"):
        assert words in out
    assert "front" in out and "utilisation" in out
    kpis = json.loads((hall_dir / "runs" / "jakarta-polres-service" / "kpis.json").read_text())[
        "kpis"
    ]
    assert kpis["service_visitors"] > 500 and 0 < kpis["service_within_standard"] < 1
    # one run is one draw, and the same draw again: the seed decides the day
    again = subprocess.run(
        [*TWIN, "service", "jakarta_polres_service.yaml", "-q", "--out", "again"],
        cwd=hall_dir,
        capture_output=True,
        text=True,
        env=WIDE,
    )
    assert again.returncode == 0
    assert again.stdout.split("Run folder")[0] == out.split("Run folder")[0].replace(
        "runs/jakarta-polres-service", "again"
    )


@pytest.mark.slow
def test_online_preregistration_is_compared_with_walk_ins_with_intervals(hall_dir):
    said = subprocess.run(
        [
            *TWIN,
            "evaluate",
            "jakarta_polres_service.yaml",
            "--plan",
            "plans/online_preregistration.yaml",
            "-n",
            "6",
            "--workers",
            "2",
            "-q",
        ],
        cwd=hall_dir,
        capture_output=True,
        text=True,
        env=WIDE,
    )
    assert said.returncode == 0, said.stderr
    out = said.stdout
    assert "Served within the published standard" in out and "online-40" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    # the front check is the walk-ins' bottleneck: pre-registered visitors skip it, and
    # far fewer turn back at the door (its interval clear of zero)
    left = rows["Visitors who left unserved (balked or gave up)"]
    assert "▲" in left, left
    assert "±" in rows["Waiting in the hall, 90th percentile"]
