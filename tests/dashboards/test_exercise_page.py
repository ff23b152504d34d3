"""The exercise's page in a real browser, on an exercise running in wall-clock time: a
trainee dispatches a unit from the team page and the unit moves in the twin; an observer
sees every team but cannot order; the trainer pauses and the clock stops."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import start_exercise
from tests.dashboards.conftest import assert_clean, password, serve, sign_in
from twin.dashboards.signin import CSRF_COOKIE, callback_key

ROOT = Path(__file__).resolve().parents[2]
TWIN = [sys.executable, "-m", "twin.cli"]
SPEED = 10


@pytest.fixture(scope="module")
def exercise_served(helsinki_city, tmp_path_factory):
    """A short exercise on the Helsinki demonstration's response (no traffic: it starts in
    seconds), played at 10× real time, and the dashboards on it with a trainer, a trainee
    of team polres and an observer."""
    from twin.auth.users import UserStore
    from twin.dashboards.app import create_app
    from twin.dashboards.signin import Gate

    tmp = tmp_path_factory.mktemp("exercise")
    scenario = yaml.safe_load((ROOT / "scenarios" / "helsinki_demonstration.yaml").read_text())
    for key in ("traffic", "events"):
        scenario.pop(key)
    scenario.update(city=str(helsinki_city.path), duration="2h")
    scenario["response"]["incidents"]["rates"] = {"crime": 0.2}
    (tmp / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    (tmp / "teams.yaml").write_text(
        yaml.safe_dump(
            {
                "teams": [
                    {"name": "polres", "units": ["P-1", "P-2", "P-3", "M-1"]},
                    {"name": "dinkes", "units": ["A-1", "A-2", "F-1"]},
                ]
            }
        )
    )
    injects = [
        {
            "id": "crowd-unruly",
            "at": "+30s",
            "title": "Massa mulai ricuh",
            "team": "polres",
            "sender": "unit lapangan P-3",
            "text": "Botol dilempar ke barisan polisi.",
            "does": "incident",
            "incident_type": "crime",
            "lat": 60.1705,
            "lon": 24.9430,
            "expect": "dispatch",
            "within": "10min",
        },
        {
            "id": "injured",
            "at": "+1h",
            "title": "Pengunjuk rasa terluka",
            "team": "dinkes",
            "does": "message",
        },
    ]
    (tmp / "ex.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "page-test",
                "title": "Latihan uji",
                "scenario": "scenario.yaml",
                "injects": injects,
            }
        )
    )
    db = tmp / "live.duckdb"
    run = start_exercise(
        ["ex.yaml", "--teams", "teams.yaml", "--speed", str(SPEED), "--db", str(db)], tmp, db
    )
    store = UserStore(tmp / "users.json")
    for name, role, team in (
        ("tono", "trainer", None),
        ("budi", "trainee", "polres"),
        ("amat", "observer", None),
    ):
        store.add(name, role, password(name), team=team)
    address, server = serve(create_app([], live=[db], gate=Gate(store)))
    yield address
    server.shutdown()
    run.kill()
    run.communicate(timeout=30)


def clock(page) -> str:
    return page.inner_text("#ex-clock")


def test_a_trainee_dispatches_a_unit_from_the_team_page_and_it_moves(exercise_served, page):
    sign_in(page, exercise_served, "/exercise", user="budi")
    page.wait_for_selector("#inject-crowd-unruly", timeout=60000)
    inbox = page.inner_text("#ex-inbox")
    assert "Massa mulai ricuh" in inbox and "unit lapangan P-3 → polres" in inbox
    assert "Diharapkan: kirim unit ke kejadian (batas 10 menit)" in inbox
    assert page.inner_text("#ex-who") == "Tim polres"
    assert "Pengunjuk rasa terluka" not in inbox  # dinkes's, and not sent yet
    assert page.is_visible("#ex-form") and not page.is_visible("#ex-trainer")
    # the team's units only
    units = page.inner_text("#ex-units")
    assert "P-2" in units and "A-1" not in units
    # the incident's name is in the order form's list once the form has looked again
    page.wait_for_function("() => document.querySelector('#ex-map') !== null", timeout=30000)
    said = ""
    for _attempt in range(5):
        for field, value in (("#ex-unit", "P-2"), ("#ex-incident", "crowd-unruly")):
            page.click(field)
            page.keyboard.type(value)
            page.keyboard.press("Enter")
        page.click("#ex-send")
        page.wait_for_function("() => document.querySelector('#ex-sent').innerText !== ''")
        said = page.inner_text("#ex-sent")
        if said.startswith("Perintah terkirim"):
            break
        page.evaluate("() => { document.querySelector('#ex-sent').innerText = '' }")
        page.wait_for_timeout(1500)  # not in the list yet: the next look has it
    assert said == "Perintah terkirim (kirim unit ke kejadian); hasilnya tampak di daftar perintah."
    # the twin carries it out: P-2 leaves its post for the incident
    page.wait_for_function(
        "() => ['ditugaskan', 'menuju lokasi', 'di lokasi'].some(s =>"
        " (document.querySelector('#unit-P-2') || {innerText: ''}).innerText.includes(s))",
        timeout=60000,
    )
    assert "-crowd-unruly" in page.inner_text("#unit-P-2")
    page.wait_for_function(
        "() => document.querySelector('#inject-crowd-unruly').innerText.includes('dijawab')",
        timeout=30000,
    )
    orders = page.inner_text("#ex-orders")
    assert "polres: kirim unit ke kejadian" in orders and "budi" in orders and "diterima" in orders
    assert_clean(page)


def test_an_observer_sees_every_team_but_cannot_order(exercise_served, page):
    sign_in(page, exercise_served, "/exercise", user="amat")
    page.wait_for_selector("#inject-crowd-unruly", timeout=60000)
    assert page.inner_text("#ex-who") == "Semua tim (hanya melihat)"
    assert not page.is_visible("#ex-form") and not page.is_visible("#ex-trainer")
    assert page.locator("button:visible", has_text="Kirim").count() == 0
    assert "A-1" in page.inner_text("#ex-units")  # every team's units
    # the order callback asked for by hand, as a crafted request would: refused
    app = exercise_served.app
    output = next(
        k for k, v in app.callback_map.items()
        if "callback" in v and callback_key(v["callback"]) == "exercise._order"
    )  # fmt: skip
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == CSRF_COOKIE)
    answer = page.request.post(
        f"{exercise_served}/_dash-update-component",
        data=json.dumps(
            {
                "output": output,
                "outputs": {"id": "ex-sent", "property": "children"},
                "inputs": [{"id": "ex-send", "property": "n_clicks", "value": 1}],
                "changedPropIds": ["ex-send.n_clicks"],
                "state": [],
            }
        ),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
    )
    assert answer.status == 403
    assert_clean(page)


def test_the_trainer_pauses_and_the_clock_stops(exercise_served, page):
    sign_in(page, exercise_served, "/exercise", user="tono")
    page.wait_for_selector("#ex-pause", state="visible", timeout=60000)
    assert not page.is_visible("#ex-form")
    first = clock(page)
    page.wait_for_function(f"() => document.querySelector('#ex-clock').innerText !== '{first}'")
    page.click("#ex-pause")
    page.wait_for_function(
        "() => document.querySelector('#ex-status').innerText.includes('DIJEDA')", timeout=30000
    )
    stood = clock(page)
    page.wait_for_timeout(3000)  # 30 simulated seconds, were it running
    assert clock(page) == stood
    page.click("#ex-resume")
    page.wait_for_function(
        f"() => document.querySelector('#ex-clock').innerText !== '{stood}'", timeout=30000
    )
    assert "berjalan" in page.inner_text("#ex-status")
    # the injects not sent yet are the trainer's to release
    page.click("#ex-inject")
    assert "injured: Pengunjuk rasa terluka" in page.inner_text("#ex-trainer")
    assert_clean(page)
