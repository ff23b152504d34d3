"""The dashboards in a real browser: Debian's headless chromium, driven by Playwright. The
default rush hour's run, served once for the whole session, and the checks every page
passes."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "dashboards"


@pytest.fixture(scope="session")
def rush_run(helsinki_city, tmp_path_factory):
    """The default rush hour with its emergency load, 30 minutes."""
    from twin.runs import run_scenario
    from twin.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "helsinki_morning_rush.yaml")
    sc = sc.model_copy(update={"duration": 1800.0, "city": str(helsinki_city.path)})
    return run_scenario(
        sc,
        out=tmp_path_factory.mktemp("runs") / "rush",
        progress=False,
        scenario_dir=ROOT / "scenarios",
    ).path


#: The dashboards' users in these tests: one of each role, and their passwords.
USERS = {
    "komandan": ("commander", None),
    "sari": ("duty_officer", None),
    "rina": ("planner", None),
    "adi": ("analyst", None),
    "tono": ("trainer", None),
    "budi": ("trainee", "merah"),
    "amat": ("observer", None),
    "sensor-1": ("sensor", None),
}


def password(name: str) -> str:
    return f"sandi-{name}-2026"


@pytest.fixture(scope="session")
def dash_users(tmp_path_factory):
    """A users file with one user of each role (:data:`USERS`)."""
    from twin.auth.users import UserStore

    store = UserStore(tmp_path_factory.mktemp("users"))
    for name, (role, team) in USERS.items():
        store.add(name, role, password(name), team=team)
    return store


class Served(str):
    """The address of an app served by a thread of this process; ``runs``: what it shows;
    ``gate``: its sign-in gate."""

    runs: Any
    gate: Any
    app: Any


def sign_in(page, address: Served, path: str = "/", user: str = "sari") -> None:
    """Open ``path`` signed in: as ``user`` through the sign-in page (which the page's
    address leads to), or with the one-time link of an app that has no users."""
    gate = address.gate
    if gate.users is None:
        page.goto(f"{address}{path}{'&' if '?' in path else '?'}token={gate.token}")
        return
    page.goto(f"{address}{path}")
    page.wait_for_selector("#signin-name")
    page.fill("#signin-name", user)
    page.fill("#signin-password", password(user))
    page.click("#signin-submit")
    page.wait_for_url(f"{address}{path}")


def serve(app) -> tuple[Served, Any]:
    """The app on a free port, served by a thread of this process: its address, and the
    server (``shutdown()`` stops it)."""
    from werkzeug.serving import make_server

    from twin.dashboards import state

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = Served(f"http://127.0.0.1:{port}")
    address.runs = app.server.config[state.KEY]
    address.gate = app.server.config["twin.gate"]
    address.app = app
    return address, server


@pytest.fixture(scope="session")
def served(rush_run, dash_users):
    """The dashboards on a free port, served by a thread of this process, for
    :data:`USERS`."""
    from twin.dashboards.app import create_app
    from twin.dashboards.signin import Gate

    address, server = serve(create_app([rush_run], gate=Gate(dash_users)))
    yield address
    server.shutdown()


def assert_clean(page) -> None:
    """No error in the browser's console, and every figure drawn by the light plotly.js the
    app serves (``assets/plotly-basic.min.js``), which knows each trace type it was given:
    Dash's full plotly.js was never fetched."""
    assert page.errors == []
    assert not [u for u in page.scripts if "plotly" in u and "plotly-basic" not in u]
    known, used = page.evaluate(
        "() => [Object.keys(window.Plotly.PlotSchema.get().traces),"
        " [...document.querySelectorAll('.js-plotly-plot')].flatMap(g => g.data.map(t => t.type || 'scatter'))]"
    )
    assert used and set(used) <= set(known), (
        f"trace types the light plotly.js lacks: {set(used) - set(known)}"
    )
