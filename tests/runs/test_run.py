"""Whole runs as a planner makes them: run folder, determinism, baseline, crashes, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pyarrow.parquet as pq
import pytest

from twin.runs import RunIncomplete, run_scenario
from twin.runs.compare import compare_runs
from twin.scenario import ScenarioError, load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
CRASH_DATA = ROOT / "tests" / "data" / "sumo_crash"
TWIN = [sys.executable, "-m", "twin.cli"]


def short(city_path: Path, **changes):
    data = {
        "name": "short",
        "description": "A quarter of an hour with a closure, for tests.",
        "city": str(city_path),
        "start": "2026-12-01T07:00:00+02:00",
        "duration": "15min",
        "seed": 11,
        "traffic": {"demand": {"veh_per_hour": {"07": 1500}}},
        "events": [
            {
                "type": "closure",
                "roads": [{"lat": 60.16914, "lon": 24.93987}],
                "start": "07:05",
                "duration": "5min",
            }
        ],
    }
    data.update(changes)
    return scenario_from_dict(data)


@pytest.fixture(scope="module")
def first_run(helsinki_city, tmp_path_factory):
    return run_scenario(
        short(helsinki_city.path), out=tmp_path_factory.mktemp("runs") / "a", progress=False
    )


def test_the_run_folder_holds_what_a_planner_needs(first_run):
    folder = first_run.path
    for name in (
        "scenario.yaml",
        "run.json",
        "timeline.parquet",
        "kpis.json",
        "network.parquet",
        "sectors.parquet",
        "report.html",
    ):
        assert (folder / name).exists(), name
    assert not list(folder.parent.glob(".a.partial-*"))
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "complete" and info["simulated_s"] == 900.0 and info["seed"] == 11
    assert {"twin", "sumo", "osmnx"} <= set(info["versions"])
    # The scenario as run loads back, with its seed.
    again = load_scenario(folder / "scenario.yaml")
    assert again.seed == 11 and again.events[0].type == "closure"
    # The timeline is Parquet that DuckDB queries, with the run's metadata.
    meta = pq.read_schema(folder / "timeline.parquet").metadata
    assert meta[b"status"] == b"complete" and meta[b"seed"] == b"11"
    kinds = dict(
        duckdb.sql(
            f"SELECT kind, count(*) FROM '{folder / 'timeline.parquet'}' GROUP BY kind"
        ).fetchall()
    )
    assert kinds["network_state"] == 15 and kinds["run_started"] == 1 and kinds["trip"] > 100
    assert kinds["road_event_started"] == 1 and kinds["road_event_ended"] == 1
    html = (folder / "report.html").read_text()
    assert "© OpenStreetMap contributors" in html and "plotly" in html and "Incident impact" in html
    # the incident-impact table in words, not column names
    assert "<th>Lanes closed</th>" in html and "<th>Trips cut short</th>" in html
    assert not any(raw in html for raw in ("event_id", "lanes_closed", "cut_short"))
    assert first_run.kpis["trips"] == kinds["trip"]


def test_same_scenario_and_seed_give_the_same_timeline_and_kpis(first_run, helsinki_city, tmp_path):
    again = run_scenario(short(helsinki_city.path), out=tmp_path / "b", progress=False)
    assert again.info["timeline_sha256"] == first_run.info["timeline_sha256"]
    assert again.kpis == first_run.kpis
    other = run_scenario(short(helsinki_city.path), out=tmp_path / "c", seed=12, progress=False)
    assert other.info["timeline_sha256"] != first_run.info["timeline_sha256"]


def test_baseline_runs_without_the_events_and_reports_the_difference(helsinki_city, tmp_path):
    result = run_scenario(
        short(helsinki_city.path), out=tmp_path / "r", baseline=True, progress=False
    )
    base = result.baseline
    assert base is not None and (tmp_path / "r" / "baseline" / "timeline.parquet").exists()
    kinds = duckdb.sql(
        f"SELECT DISTINCT kind FROM '{tmp_path / 'r' / 'baseline' / 'timeline.parquet'}'"
    ).fetchall()
    assert ("road_event_started",) not in kinds
    assert result.delta["trips"] == result.kpis["trips"] - base.kpis["trips"]
    doc = json.loads((tmp_path / "r" / "kpis.json").read_text())
    assert set(doc) == {"kpis", "baseline", "delta_vs_baseline"}
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Difference to the baseline by sector" in html
    # the baseline first, then the run, as in the terminal
    head = html[html.index("<thead>") : html.index("</thead>")]
    assert head.index("<th>baseline</th>") < head.index(f"<th>{result.info['scenario']}</th>")


def crash_scenario(city_path: Path, simulator: str):
    return scenario_from_dict(
        {
            "name": "bluelight-crash",
            "description": "Ambulances with SUMO's bluelight device: SUMO 1.28 segfaults here.",
            "city": str(city_path),
            "start": "2026-12-01T07:00:00+02:00",
            "duration": "40min",
            "seed": 22,
            "traffic": {
                "demand": {"veh_per_hour": {"07": 0}},
                "simulator": simulator,
                "route_files": [
                    str(CRASH_DATA / "background.rou.xml"),
                    str(CRASH_DATA / "bluelight.rou.xml"),
                ],
            },
        }
    )


@pytest.mark.parametrize("simulator", ["libsumo", "traci"])
def test_a_real_sumo_crash_is_survived_and_recorded(helsinki_city, tmp_path, simulator):
    """SUMO 1.28's bluelight device segfaults on these routes (MEASURED.md). Under libsumo
    that kills the process running SUMO; the twin must survive, keep the partial timeline,
    mark it incomplete and name the simulated time."""
    try:
        result = run_scenario(
            crash_scenario(helsinki_city.path, simulator), out=tmp_path / "crash", progress=False
        )
    except RunIncomplete as exc:
        message, result = str(exc), exc.result
    else:
        pytest.skip(f"SUMO {result.info['versions']['sumo']} no longer crashes on the reproducer")
    assert "SUMO crashed at simulated time 2026-12-01 07:01:3" in message
    assert "marked incomplete" in message
    if simulator == "libsumo":
        assert "segmentation fault" in message
    info = json.loads((tmp_path / "crash" / "run.json").read_text())
    assert info["status"] == "incomplete" and 60 < info["simulated_s"] < 120
    table = pq.read_table(tmp_path / "crash" / "timeline.parquet")
    assert table.schema.metadata[b"status"] == b"incomplete"
    kinds = table["kind"].to_pylist()
    assert "edge_state" in kinds, "the states sampled before the crash are kept"
    assert kinds[-2:] == ["simulator_crashed", "run_ended"]
    assert table["status"].to_pylist()[-1] == "incomplete"
    assert "Incomplete run" in (tmp_path / "crash" / "report.html").read_text()


def test_bad_scenarios_exit_2_and_write_nothing(tmp_path, helsinki_city):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"name: bad\ncity: {helsinki_city.path}\nstart: 2026-12-01T07:00:00+02:00\nduration: 1h\n"
        "traffic:\n  demand:\n    veh_per_hour: {'07': 100}\n"
        "events:\n  - type: accident\n    at: {lat: 60.10, lon: 24.90}\n    start: '07:10'\n    duration: 5min\n"
        "  - type: closure\n    roads: [{poi: Nowhere}]\n    start: '07:20'\n    duration: 5min\n"
    )
    proc = subprocess.run(
        [*TWIN, "run", str(bad), "--out", "runs/bad"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "events[0].at: point (60.10000, 24.90000) is 7.4 km outside the city" in proc.stderr
    assert "events[1].roads[0]: no POI named 'Nowhere'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_input_sumo_refuses_exits_2_and_writes_nothing(tmp_path, helsinki_city):
    routes = tmp_path / "broken.rou.xml"
    routes.write_text(
        '<routes>\n<vehicle id="x" depart="0"><route edges="no_such_edge"/></vehicle>\n</routes>\n'
    )
    sc = short(
        helsinki_city.path,
        traffic={"demand": {"veh_per_hour": {"07": 100}}, "route_files": [str(routes)]},
    )
    with pytest.raises(ValueError, match=r"SUMO refused the scenario's input: .*no_such_edge"):
        run_scenario(sc, out=tmp_path / "runs" / "x", progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def assert_fits_80_columns(text: str) -> None:
    """Output for an 80-column terminal: no line past the edge, no word cut short (Rich
    writes "Cri…" for a word it could not fit)."""
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert not re.search(r"\w…", text), text


def test_compare_and_schema_commands(first_run, helsinki_city, tmp_path):
    other = run_scenario(
        short(helsinki_city.path, events=[]), out=tmp_path / "none", progress=False
    )
    table, report = compare_runs([first_run.path, other.path], out=tmp_path / "cmp.html")
    assert report.exists() and "by sector" in report.read_text()
    # by default the report goes into the first run's folder, not the current one
    _, default = compare_runs([first_run.path, other.path])
    assert default == first_run.path / "compare-none.html" and default.exists()
    trips = table.set_index("kpi").loc["trips"]
    assert trips["Δ none"] == other.kpis["trips"] - first_run.kpis["trips"]
    # four runs in an 80-column terminal: every word whole, no line past the edge
    proc = subprocess.run(
        [
            *TWIN,
            "compare",
            str(first_run.path),
            str(other.path),
            str(first_run.path),
            str(other.path),
            "--out",
            str(tmp_path / "c2.html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0 and "Trips completed" in proc.stdout
    assert_fits_80_columns(proc.stdout)
    proc = subprocess.run(
        [*TWIN, "compare", str(first_run.path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "not a run folder" in proc.stderr
    proc = subprocess.run([*TWIN, "schema"], capture_output=True, text=True, timeout=300)
    assert (
        proc.returncode == 0 and json.loads(proc.stdout)["title"] == "smart-policing-twin scenario"
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One working folder for the smoke runs, so the default city is built once."""
    return tmp_path_factory.mktemp("smoke")


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_runs(path, workdir, monkeypatch):
    """Each shipped scenario as a planner runs it, with its seed. A whole day of traffic
    (the live twin's base) is run for its morning rush, 07:00 to 09:00: the day would take
    two minutes and prove nothing more."""
    monkeypatch.chdir(workdir)
    scenario = load_scenario(path)
    if scenario.traffic is not None and scenario.duration >= 86400 and not scenario.events:
        start = scenario.start.replace(hour=7)
        scenario = scenario.model_copy(update={"start": start, "duration": 2 * 3600.0})
    result = run_scenario(scenario, progress=False, source=str(path), scenario_dir=path.parent)
    assert result.status == "complete"
    if load_scenario(path).traffic is not None:
        assert result.kpis["trips"] > 500
    if load_scenario(path).response is not None:  # every shipped scenario has an emergency load
        assert result.kpis["incidents"] > 0 and result.kpis["response_p50_s"] > 0
    assert (workdir / "runs" / load_scenario(path).name / "report.html").exists()


def test_twin_run_command_prints_kpis_and_the_report(tmp_path, helsinki_city):
    path = tmp_path / "short.yaml"
    path.write_text(
        f"name: short-cli\ncity: {helsinki_city.path}\nstart: 2026-12-01T07:00:00+02:00\nduration: 10min\n"
        "seed: 3\ntraffic:\n  demand:\n    veh_per_hour: {'07': 1200}\n"
    )
    proc = subprocess.run(
        [*TWIN, "run", str(path), "--out", "runs/s"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "KPIs of short-cli (complete)" in proc.stdout and "Trips completed" in proc.stdout
    assert "Report: runs/s/report.html" in proc.stdout.replace("\n", "")
    assert "07:10 simulated" in proc.stderr  # progress in the log, simulated clock and speed
    assert (tmp_path / "runs" / "s" / "report.html").exists()
    # SUMO's console chatter goes to the run folder, not the planner's terminal
    assert "tlLogic" not in proc.stdout + proc.stderr
    assert "tlLogic" in (tmp_path / "runs" / "s" / "sumo" / "console.log").read_text()


def test_a_run_from_another_version_is_refused_clearly(first_run, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    old = tmp_path / "old"
    shutil.copytree(first_run.path, old)
    table = pq.read_table(old / "timeline.parquet")
    table = table.drop_columns(["diverted"]).replace_schema_metadata({b"timeline_format": b"0"})
    pq.write_table(table, old / "timeline.parquet")
    with pytest.raises(
        ValueError,
        match=r"another version of the twin \(format 0, this twin reads 1; it lacks diverted\); run the scenario again",
    ):
        compare_runs([first_run.path, old], out=tmp_path / "c.html")


def test_variants_run_side_by_side_on_one_seed(helsinki_city, tmp_path):
    from twin.runs import run_variants

    data = {
        "name": "plans",
        "city": str(helsinki_city.path),
        "start": "2026-12-01T00:00:00+02:00",
        "duration": "1d",
        "seed": 3,
        "community": {"offenders": 30, "patrols": {"units": 4, "strategy": "random"}},
        "variants": {
            "random": {},
            "hotspot": {"community": {"patrols": {"strategy": "hotspot"}}},
            "no-patrols": {"community": {"patrols": {"units": 0}}},
        },
    }
    results, table, report = run_variants(
        scenario_from_dict(data), out=tmp_path / "plans", progress=False
    )
    assert [r.path.name for r in results] == ["random", "hotspot", "no-patrols"]
    assert [r.info["scenario"] for r in results] == [
        "plans-random",
        "plans-hotspot",
        "plans-no-patrols",
    ]
    assert report.exists() and "crimes" in set(table["kpi"])
    crimes = [r.kpis["crimes"] for r in results]
    assert crimes[2] > crimes[0] > crimes[1]  # no patrols > random > hotspot, same offenders
    bad = {
        **data,
        "variants": {"oops": {"community": {"patrols": {"strategy": "zone"}}}, "Bad Name": {}},
    }
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(bad)
    assert "variants.oops.community.patrols.strategy" in str(err.value)
    assert "variants.Bad Name: a variant's name is lower-case" in str(err.value)


def test_a_week_long_run_shows_its_progress_with_the_day(capsys):
    from datetime import datetime, timedelta, timezone

    from twin.runs.worker import _Progress

    week = SimpleNamespace(
        start=datetime(2026, 12, 1, 0, 0, tzinfo=timezone(timedelta(hours=2))),
        duration=7 * 86400.0,
    )
    with _Progress(True, week, "patrol-week") as progress:
        progress.update(2 * 86400 + 7 * 3600, 10.0)
    assert "patrol-week: Thu 03/12 07:00 simulated" in capsys.readouterr().err
