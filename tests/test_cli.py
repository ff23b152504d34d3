"""The ``twin`` command as a user runs it: real processes, real files, exit statuses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TWIN = [sys.executable, "-m", "twin.cli"]


def run(*args: str, cwd: Path, check_code: int | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([*TWIN, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if check_code is not None:
        assert proc.returncode == check_code, proc.stdout + proc.stderr
    return proc


def test_build_then_info(tmp_path, test_pbf):
    proc = run(
        "build", "--osm", str(test_pbf), "--out", "cities/t", "-q", cwd=tmp_path, check_code=0
    )
    assert "Built city bundle" in proc.stdout
    assert "© OpenStreetMap contributors" in proc.stdout
    again = run(
        "build", "--osm", str(test_pbf), "--out", "cities/t", "-q", cwd=tmp_path, check_code=0
    )
    assert "up to date" in again.stdout
    info = run("info", "cities/t", "--json", cwd=tmp_path, check_code=0)
    summary = json.loads(info.stdout)
    assert summary["name"] == "test"
    assert summary["counts"]["nodes"] > 100
    assert summary["mapping"]["mapped_length_share"] >= 0.95
    text = run("info", "cities/t", cwd=tmp_path, check_code=0).stdout
    assert "road graph" in text and "sectors" in text and "H3" in text


def _assert_clean_failure(proc, tmp_path, *words):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and sum("error:" in line for line in lines) == 1
    for w in words:
        assert w in proc.stderr, proc.stderr
    leftovers = [p for p in tmp_path.rglob("*") if ".partial-" in p.name or p.name == "out"]
    assert not leftovers


@pytest.fixture
def bad_files(tmp_path, test_pbf):
    files = {
        "notosm": tmp_path / "notes.osm",
        "corrupt": tmp_path / "broken.osm.pbf",
        "noroads": tmp_path / "paths.osm",
    }
    files["notosm"].write_text("These are meeting notes, not a map.\n")
    files["corrupt"].write_bytes(test_pbf.read_bytes()[:4000])
    files["noroads"].write_text(
        '<?xml version="1.0"?>\n<osm version="0.6">\n'
        '<node id="1" lat="-6.2" lon="106.8"/><node id="2" lat="-6.201" lon="106.8"/>\n'
        '<way id="3"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>\n</osm>\n'
    )
    return files


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing", ["nowhere.osm.pbf", "file not found"]),
        ("notosm", ["notes.osm", "not an OpenStreetMap file"]),
        ("corrupt", ["broken.osm.pbf", "corrupt"]),
        ("noroads", ["paths.osm", "no drivable roads"]),
    ],
)
def test_bad_input_gives_one_clear_message_and_exit_2(tmp_path, bad_files, case, words):
    path = bad_files.get(case, tmp_path / "nowhere.osm.pbf")
    proc = run("build", "--osm", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    _assert_clean_failure(proc, tmp_path, *words)


def test_unwritable_out_is_refused(tmp_path, test_pbf):
    blocker = tmp_path / "afile"
    blocker.write_text("a file where a folder should be")
    proc = run("build", "--osm", str(test_pbf), "--out", str(blocker / "out"), cwd=tmp_path)
    _assert_clean_failure(proc, tmp_path, "--out", "cannot write", "is a file")
    # /proc accepts no new folders, even from root.
    proc = run("build", "--osm", str(test_pbf), "--out", "/proc/twin-test/out", cwd=tmp_path)
    _assert_clean_failure(proc, tmp_path, "--out /proc/twin-test/out", "cannot write")


def test_out_that_is_some_other_folder_is_not_clobbered(tmp_path, test_pbf):
    other = tmp_path / "documents"
    other.mkdir()
    (other / "plan.docx").write_text("precious")
    proc = run("build", "--osm", str(test_pbf), "--out", str(other), cwd=tmp_path)
    assert proc.returncode == 2 and "not a city bundle" in proc.stderr
    assert (other / "plan.docx").read_text() == "precious"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, where):
    args = ["build", "--osm", str(tmp_path / "x.osm")]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "InputError" in proc.stderr


def test_info_on_a_folder_that_is_not_a_bundle(tmp_path):
    proc = run("info", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "not a city bundle" in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_build_leaves_nothing(tmp_path, sig):
    """Stop a real build of the default city while it runs: no bundle, no temporary folder.

    On a loaded machine the build may finish between seeing its temporary folder and the
    signal landing; then the bundle must be whole. Either way nothing is ever half there.
    The test retries until a signal lands mid-build."""
    cities = tmp_path / "cities"
    for _attempt in range(5):
        shutil.rmtree(cities, ignore_errors=True)
        proc = subprocess.Popen(
            [*TWIN, "build", "--out", "cities/helsinki", "-q"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if cities.exists() and any(
                p.name.startswith(".helsinki.partial-") for p in cities.iterdir()
            ):
                break
            time.sleep(0.005)
        if proc.poll() is not None:
            continue  # finished before we saw it working: try again
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=120)
        leftovers = (
            [p.name for p in cities.iterdir() if p.name.startswith(".helsinki.")]
            if cities.exists()
            else []
        )
        assert leftovers == []
        if proc.returncode == 0:  # the signal came too late: the bundle must be whole
            assert (cities / "helsinki" / "manifest.json").exists()
            continue
        assert "Traceback" not in stderr
        assert not (cities / "helsinki").exists()
        assert not cities.exists() or not any(cities.iterdir()), list(cities.iterdir())
        return
    pytest.fail("no signal landed mid-build in 5 attempts")


def test_a_killed_build_is_cleaned_up_by_the_next(tmp_path, test_pbf):
    """SIGKILL cannot be caught: the hidden temporary folder stays, the bundle is never half
    there, and the next build of the same folder removes the leftovers. Retries until the
    kill lands mid-build (on a loaded machine the build may finish first)."""
    cities = tmp_path / "cities"
    for _attempt in range(5):
        shutil.rmtree(cities, ignore_errors=True)
        proc = subprocess.Popen(
            [*TWIN, "build", "--osm", str(test_pbf), "--out", "cities/t", "-q"], cwd=tmp_path
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if cities.exists() and any(p.name.startswith(".t.partial-") for p in cities.iterdir()):
                break
            time.sleep(0.005)
        proc.kill()
        proc.wait(timeout=60)
        if proc.returncode == 0:  # finished before the kill: whole, and nothing else
            assert (cities / "t" / "manifest.json").exists()
            continue
        assert not (cities / "t").exists()
        run("build", "--osm", str(test_pbf), "--out", "cities/t", "-q", cwd=tmp_path, check_code=0)
        assert [p.name for p in cities.iterdir()] == ["t"]
        return
    pytest.fail("no kill landed mid-build in 5 attempts")


def test_twin_predict_scores_forecasts_on_a_run(helsinki_city, tmp_path):
    scenario = tmp_path / "week.yaml"
    scenario.write_text(
        f"name: crime-week\ncity: {helsinki_city.path}\nstart: 2026-11-30T00:00:00+02:00\n"
        "duration: 3d\nseed: 2\ncommunity:\n  offenders: 40\n"
    )
    run = subprocess.run(
        [*TWIN, "run", str(scenario), "--out", "runs/week", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_wide(),
    )
    assert run.returncode == 0, run.stderr
    assert "Crimes committed" in run.stdout and "Road segments holding half the crime" in run.stdout
    proc = subprocess.run(
        [*TWIN, "predict", "runs/week", "--shift", "12h"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_wide(),
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("naive", "kde", "sepp", "PAI", "crimes committed (community model)"):
        assert word in proc.stdout
    bad = subprocess.run(
        [*TWIN, "predict", "runs/week", "--flag", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_wide(),
    )
    assert bad.returncode == 2 and "--flag must be a percentage" in bad.stderr


def _wide() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def test_sensor_commands_check_their_input(helsinki_city, tmp_path):
    root = Path(__file__).resolve().parents[1]
    sensors = root / "scenarios" / "sensors" / "helsinki.yaml"
    proc = run("schema", "--sensors", cwd=tmp_path, check_code=0)
    assert "TrafficFlowObserved" in proc.stdout and "EmergencyCall" in proc.stdout
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        '{"type": "TrafficFlowObserved", "id": "a", "refDevice": "det-kaivokatu", '
        '"dateObservedFrom": "2026-12-01T07:00:00+02:00", "dateObservedTo": "2026-12-01T07:05:00+02:00", "intensity": 40}\n'
        "not json\n"
    )
    db = tmp_path / "live.duckdb"
    args = ("--db", str(db), "--city", str(helsinki_city.path), "--sensors", str(sensors))
    proc = subprocess.run(
        [*TWIN, "ingest", "--file", str(feed), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_wide(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "kept: TrafficFlowObserved" in proc.stdout and "quarantined: bad_json" in proc.stdout
    bad = run("ingest", *args, cwd=tmp_path, check_code=2)
    assert "give one of --file FILE or --mqtt HOST:PORT" in bad.stderr
    bad = run(
        "calibrate",
        str(root / "scenarios" / "helsinki_morning_rush.yaml"),
        "--counts",
        str(tmp_path / "missing.duckdb"),
        "--sensors",
        str(sensors),
        cwd=tmp_path,
        check_code=2,
    )
    assert "no live twin history here" in bad.stderr
    bad = run("feed", "--from-run", str(tmp_path), "--to", "x.jsonl", cwd=tmp_path, check_code=2)
    assert "not a run folder" in bad.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["dash"], ["give run folders", "--live DB"]),
        (["dash", "runs/nothing"], ["runs/nothing", "not a run folder"]),
        (
            ["dash", "--tiles", "tiles.example.org/{z}/{x}.png"],
            ["--tiles", "{y}", "tiles.example.org"],
        ),
        (
            ["dash", "--live", "live/none.duckdb"],
            ["live/none.duckdb", "no live twin publishes here"],
        ),
        (["fork", "--live", "live/none.duckdb"], ["live/none.duckdb", "no live twin writes here"]),
        (["fork", "--live", "x.duckdb", "--ahead", "soon"], ["--ahead"]),
        (
            ["fork", "--live", "x.duckdb", "--overlay", "plan.yaml"],
            ["plan.yaml", "overlay file not found"],
        ),
    ],
)
def test_dash_and_fork_refuse_bad_input_clearly(tmp_path, args, words):
    proc = run(*args, cwd=tmp_path)
    _assert_clean_failure(proc, tmp_path, *words)
