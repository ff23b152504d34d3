"""Fork from now: a what-if branched from a running live twin, checked against it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import sign_in_link
from tests.live.test_live import base_scenario
from tests.sensors.test_feeds import SENSORS, Broker
from twin.live.fork import first_difference
from twin.sensors.feeds import MqttSink, topic_of

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboards"


@pytest.mark.slow
def test_a_fork_replays_the_live_twin_exactly_then_tries_the_plan(helsinki_city, tmp_path, page):
    broker = Broker(tmp_path / "broker")
    scenario = base_scenario(
        tmp_path / "base.yaml",
        helsinki_city,
        seed=5,
        veh_per_hour=900,
        rates="{crime: 40, medical: 20}",
        police=4,
        ambulances=2,
    )
    overlay = tmp_path / "plan.yaml"
    overlay.write_text(
        "name: close-mannerheimintie\n"
        "events:\n  - {type: accident, id: forum-crash, at: {lat: 60.16914, lon: 24.93987}, "
        "start: '+1min', duration: 20min, lanes: 2}\n"
    )
    db = tmp_path / "live" / "live.duckdb"
    live = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin.cli",
            "live",
            "--mqtt",
            f"127.0.0.1:{broker.port}",
            "--db",
            str(db),
            "--scenario",
            str(scenario),
            "--sensors",
            str(SENSORS),
            "--for",
            "1h",
            "--speed",
            "4",
            "--user",
            "twin",
            "--password",
            "s3cret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(8)  # the twin connects and SUMO starts
        sink = MqttSink("127.0.0.1", broker.port, username="twin", password="s3cret")
        now = datetime.now(UTC)
        point = {"type": "Point", "coordinates": [24.9430, 60.1705]}
        for i in range(3):
            m = {
                "type": "EmergencyCall",
                "id": f"c{i}",
                "number": "110",
                "dateReceived": now.isoformat(),
                "location": point,
                "category": "crime",
                "caller": f"+62811111{i}",
            }
            sink.send(m, topic_of(m))
        m = {
            "type": "FloodMonitoring",
            "id": "g1",
            "refDevice": "gauge-kauppatori",
            "dateObserved": now.isoformat(),
            "currentLevel": 1.6,
        }
        sink.send(m, topic_of(m))
        sink.close()
        time.sleep(12)  # past SUMO's first minute of edge counts
        fork = subprocess.run(
            [
                sys.executable,
                "-m",
                "twin.cli",
                "fork",
                "--live",
                str(db),
                "--ahead",
                "10min",
                "--overlay",
                str(overlay),
                "--out",
                str(tmp_path / "fork"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        # while the twin runs (and holds its DuckDB file), what it publishes can be read
        from twin import kpi
        from twin.dashboards.data import LiveView

        view = LiveView(db)
        assert view.end > 20 and view.name == "live: live-base"
        assert len(kpi.sector_status(view.con, view.end)) > 0
        assert (kpi.units_at(view.con, view.end)["unit"].str.startswith(("P-", "A-"))).all()
        # and the dashboards follow it in a real browser
        from twin.sensors.broker import free_port

        port = free_port()
        dash = subprocess.Popen(
            [sys.executable, "-m", "twin.cli", "dash", "--live", str(db), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            page.goto(sign_in_link(dash))  # printed once the server listens
            page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
            page.wait_for_function("(document.querySelector('#k3i-clock') || {}).innerText > ''")
            assert "live: live-base" in page.inner_text("#k3i-run")
            before = page.inner_text("#k3i-clock")
            # the page reads what the twin published and follows the present
            page.wait_for_function(
                f"document.querySelector('#k3i-clock').innerText !== {before!r}", timeout=30000
            )
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "k3i-live.png"), full_page=True)
            assert page.errors == []
        finally:
            dash.terminate()
            dash.wait(10)
        too_far = subprocess.run(
            [sys.executable, "-m", "twin.cli", "fork", "--live", str(db), "--ahead", "2h"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        live.send_signal(signal.SIGINT)
        try:
            live.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            live.kill()
        broker.stop()
    assert fork.returncode == 0, fork.stderr + fork.stdout
    said = " ".join(fork.stdout.split())
    assert "The replay matches the live twin up to" in said and "sensor messages so far" in said
    result = json.loads((tmp_path / "fork" / "fork.json").read_text())
    t_now = result["t_s"]
    assert t_now > 20 and result["until_s"] == pytest.approx(t_now + 600)
    as_is = pq.read_table(tmp_path / "fork" / "as-is" / "timeline.parquet").to_pandas()
    plan = pq.read_table(tmp_path / "fork" / "plan" / "timeline.parquet").to_pandas()
    assert as_is.t.max() == pytest.approx(t_now + 600) == plan.t.max()
    # the live twin's past is in both: its calls, and the flood it closed roads for
    for run in (as_is, plan):
        assert (run.kind == "call_received").sum() == 3
        assert (
            (run.kind == "road_event_started") & (run.event_id == "flood-gauge-kauppatori")
        ).sum() == 1
    # the plan acts after the fork point only
    crash = plan[(plan.kind == "road_event_started") & (plan.event_id == "forum-crash")]
    assert len(crash) == 1 and crash.t.iloc[0] == pytest.approx(t_now + 60)
    assert not (as_is.event_id == "forum-crash").any()
    # the check that found the replay equal would find a single changed event
    package = next(
        p for p in (tmp_path / "live").glob("live.duckdb.forks/*") if (p / "fork.json").exists()
    )
    live_table = pq.read_table(package / "timeline.parquet")
    replay = pq.read_table(tmp_path / "fork" / "as-is" / "timeline.parquet")
    assert first_difference(live_table, replay, t_now) is None
    rows = replay.to_pylist()
    i = next(i for i, r in enumerate(rows) if r["kind"] == "unit_state" and 0 < r["t"] < t_now)
    rows[i]["state"] = "off_duty"
    changed = pa.Table.from_pylist(rows, schema=replay.schema)
    assert "unit_state" in first_difference(live_table, changed, t_now)
    assert too_far.returncode == 2 and "cannot look 120 min ahead" in " ".join(
        too_far.stderr.split()
    )
