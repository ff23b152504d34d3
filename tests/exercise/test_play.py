"""The shipped exercise end to end, as a trainer runs it: ``twin exercise run`` on an
accelerated clock, ``twin dash --live`` beside it, two scripted teams giving orders over
the order API (one acts in time, the other misses its inject), the trainer pausing over
the same API, then ``twin exercise aar`` and ``twin audit verify`` on the run."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import start_exercise

ROOT = Path(__file__).resolve().parents[2]
TWIN = [sys.executable, "-m", "twin.cli"]
SPEED = 100  # 90 simulated minutes in 54 s
PASSWORDS = {"tono": "latihan-tono-2026", "budi": "latihan-budi-2026", "wati": "latihan-wati-2026"}


class Api:
    """The order API as a command post's own tool calls it: JSON, Basic credentials."""

    def __init__(self, base: str, user: str) -> None:
        self.base = base
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            said = exc.read()
            try:
                return exc.code, json.loads(said or b"{}")
            except ValueError:
                raise AssertionError(f"{path}: {exc.code} {said[:300]!r}") from None

    def state(self) -> dict:
        status, doc = self.call("/api/exercise/state")
        assert status == 200, doc
        return doc


def scripted_team(api: Api, skip: set[str], done: threading.Event, log: list) -> None:
    """A team that answers every inject it receives with the order expected, at once;
    but never the injects in ``skip``."""
    handled: set[str] = set()
    while not done.is_set():
        try:
            state = api.state()
        except (urllib.error.URLError, OSError, AssertionError):
            time.sleep(0.2)
            continue
        for item in state["inbox"]:
            name, expected = item["inject"], item["expected"]
            if not expected or name in handled or name in skip:
                continue
            if item["team"] == "all" and state["team"] != "polres":
                continue  # the police answer the injects for everyone
            if expected == "dispatch":
                free = [u["unit"] for u in state["units"] if u["state"] == "available"]
                if not free:  # every unit busy: ask again at the next look
                    continue
                order = {"order": "dispatch", "unit": free[0], "incident": name}
            else:
                order = {"order": expected, "text": f"Peringatan untuk warga: {item['title']}"}
            handled.add(name)
            log.append((state["clock"], api.call("/api/exercise/orders", order)))
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_teams_play_the_shipped_exercise_and_the_review_tells_them_apart(
    tmp_path, helsinki_city
):
    from twin.auth.users import UserStore

    shutil.copytree(ROOT / "scenarios" / "exercises", tmp_path / "ex")
    shutil.copy(ROOT / "scenarios" / "helsinki_demonstration.yaml", tmp_path)
    (tmp_path / "cities").mkdir()
    (tmp_path / "cities" / "helsinki").symlink_to(helsinki_city.path)
    store = UserStore(tmp_path / "exercises" / "helsinki-rally")  # beside the live file, to be
    store.add("tono", "trainer", PASSWORDS["tono"])
    store.add("budi", "trainee", PASSWORDS["budi"], team="polres")
    store.add("wati", "trainee", PASSWORDS["wati"], team="dinkes")
    db = tmp_path / "exercises" / "helsinki-rally" / "live.duckdb"
    run = start_exercise(
        [
            "ex/helsinki_rally.yaml",
            "--teams",
            "ex/helsinki_teams.yaml",
            "--speed",
            str(SPEED),
            "--paused",
        ],
        tmp_path,
        db,
    )
    port = free_port()
    dash = subprocess.Popen(
        [*TWIN, "dash", "--live", str(db), "--users", str(store.path), "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    done = threading.Event()
    sent: dict[str, list] = {"polres": [], "dinkes": []}
    try:
        trainer = Api(base, "tono")
        for _ in range(300):
            try:
                trainer.state()
                break
            except (urllib.error.URLError, OSError, AssertionError):
                time.sleep(0.2)
        # it waits for the trainer, who resumes it once the teams are in
        for _ in range(100):
            first = trainer.state()
            if first["paused"]:
                break
            time.sleep(0.2)
        assert first["paused"] and first["t"] <= 1.0, first
        # a wrong password is refused, and a trainee may not control the exercise
        assert Api(base, "budi").call("/api/exercise/control", {"action": "pause"})[0] == 403
        wrong = Api(base, "budi")
        wrong.headers["Authorization"] = "Basic " + base64.b64encode(b"budi:salah").decode()
        assert wrong.call("/api/exercise/state")[0] == 401
        # a trainee's order for another team is refused and put on the record
        status, doc = Api(base, "wati").call(
            "/api/exercise/orders", {"order": "recall", "unit": "P-1", "team": "polres"}
        )
        assert status == 403 and doc["error"] == "wati plays in team dinkes, not polres"
        assert trainer.call("/api/exercise/control", {"action": "resume"})[0] == 202
        teams = [
            threading.Thread(
                target=scripted_team, args=(Api(base, "budi"), set(), done, sent["polres"])
            ),
            threading.Thread(
                target=scripted_team,
                args=(Api(base, "wati"), {"protester-injured"}, done, sent["dinkes"]),
            ),
        ]
        for team in teams:
            team.start()
        # the trainer pauses: the clock stands still, then goes on after resume
        while trainer.state()["t"] < 600:
            time.sleep(0.1)
        assert trainer.call("/api/exercise/control", {"action": "pause"})[0] == 202
        for _ in range(100):
            state = trainer.state()
            if state["paused"]:
                break
            time.sleep(0.1)
        assert state["paused"]
        stood = state["t"]
        time.sleep(2.0)  # 200 simulated seconds, were it running
        assert trainer.state()["t"] == stood
        assert trainer.call("/api/exercise/control", {"action": "resume"})[0] == 202
        said, err = run.communicate(timeout=300)
    finally:
        done.set()
        dash.terminate()
        served, _ = dash.communicate(timeout=30)
        if run.poll() is None:
            run.kill()
    assert "Traceback" not in served, served
    assert run.returncode == 0, err
    assert "Exercise complete: 6 injects sent, 3 answered, 1 missed" in said
    assert "inject flood-calls to every team (scheduled): Telepon warga soal genangan" in err
    assert "inject protester-injured missed: no dispatch from dinkes within 5 min" in err
    assert "paused: the clock stands still" in err
    assert all(status == 202 for _, (status, _) in sent["polres"]), sent
    # the review
    aar = subprocess.run(
        [*TWIN, "exercise", "aar", "runs/helsinki-rally", "--pdf"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert aar.returncode == 0, aar.stderr
    out = aar.stdout
    assert "7 injects: 3 answered on time, 0 late, 1 missed." in out
    assert "protester-injured (dinkes): no dispatch within 5 min (missed)" in out
    assert "crowd-unruly (polres): dispatch after" in out
    pdf = (tmp_path / "runs" / "helsinki-rally" / "aar.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2  # printed, pages and all
    page = (tmp_path / "runs" / "helsinki-rally" / "aar.html").read_text()
    assert "wati plays in team dinkes, not polres" in page
    assert "unrest-spreads" in page and "not sent" in page  # its follow-up never went out
    # the feed's four messages came through the sensors' door, kept, and acted: its 112
    # calls reached the call centre
    import duckdb

    timeline = tmp_path / "runs" / "helsinki-rally" / "timeline.parquet"
    kept = duckdb.sql(
        f"SELECT count(*) FILTER (WHERE reason = ''), count(*) FROM '{timeline}' "
        "WHERE kind = 'sensor_message'"
    ).fetchall()[0]
    assert kept == (4, 4)
    calls = duckdb.sql(
        f"SELECT count(*) FROM '{timeline}' WHERE kind = 'call_received' AND call LIKE 'call-09%'"
    ).fetchall()
    assert calls == [(3,)]
    verify = subprocess.run(
        [*TWIN, "audit", "verify", "runs/helsinki-rally"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and "Audit chain intact" in verify.stdout
    # the what-if of the missed decision: the exercise played again, checked, and priced
    whatif = subprocess.run(
        [*TWIN, "exercise", "whatif", "runs/helsinki-rally", "-n", "3", "--horizon", "20min"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert whatif.returncode == 0, whatif.stderr
    said = whatif.stdout
    assert (
        "1 key decision; each played both ways in 3 draws, to 08:10:00; differences with "
        "their 95 % interval. The replay of the exercise: identical, event by event, up to "
        "08:10:00." in said
    ), said
    assert (
        "protester-injured (dinkes), missed: the CAD's closest units sent at 07:50:00, when "
        "the inject came" in said
    )
    wait = next(line for line in said.splitlines() if "The inject's incident: wait" in line)
    assert " min as played, " in wait and " min expected: " in wait and " ± " in wait, wait
    assert "Warning:" not in whatif.stderr  # SUMO's console stays in its log
    aar = subprocess.run(
        [*TWIN, "exercise", "aar", "runs/helsinki-rally"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert wait.strip() in aar.stdout
    page = (tmp_path / "runs" / "helsinki-rally" / "aar.html").read_text()
    assert "What the expected action would have changed" in page and "seeds 42, 43, 44" in page
