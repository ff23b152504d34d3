"""Sign-in: no page, callback or order of the dashboards answers without a session and a
role that may (the tables in ``twin.dashboards.signin`` and ``twin.auth``), sessions end
when signed out, idle or disabled, sign-ins are rate-limited, and posts need the session's
CSRF token. In a real browser: sign in and out, an observer cannot acknowledge, an ended
session leads back to the sign-in page."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import types
import urllib.request

import pytest

from tests.dashboards.conftest import SHOTS, USERS, assert_clean, password, sign_in
from twin.auth import may
from twin.dashboards.signin import (
    CALLBACKS,
    COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    FAILURES_ALLOWED,
    ROUTES,
    Gate,
    callback_key,
)

# -- the test client: every route and callback, every role ------------------------------------


def _client_signed_in(app, name: str | None):
    """A test client of ``app``'s server, signed in as ``name`` (None: never signed in);
    its CSRF token."""
    client = app.server.test_client()
    if name is None:
        return client, ""
    form = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        "/signin", data={"csrf": token, "name": name, "password": password(name), "next": "/"}
    )
    if answer.status_code != 302:
        return client, None
    return client, client.get_cookie(CSRF_COOKIE).value


def _sample(rule: str) -> str:
    """A path the rule matches."""
    return (
        rule.replace("<path:path>", "units")
        .replace("<string:package_name>", "dash")
        .replace("<path:fingerprinted_path>", "dash-renderer/build/dash_renderer.v3.min.js")
        .replace("<path:filename>", "style.css")
    )


def test_the_tables_name_every_route_and_callback_the_server_has(served):
    app = served.app
    app.server.test_client().get("/signin")  # Dash gathers the pages' callbacks on first use
    rules = {r.rule for r in app.server.url_map.iter_rules()}
    assert rules == set(ROUTES), "a route the table does not name, or a stale name in it"
    callbacks = {callback_key(v["callback"]) for v in app.callback_map.values() if "callback" in v}
    assert callbacks == set(CALLBACKS), "a callback the table does not name, or a stale name"
    from twin.auth import PERMISSIONS

    assert set(CALLBACKS.values()) | {
        a for a in ROUTES.values() if a not in (None, "callback")
    } <= set(PERMISSIONS)


@pytest.mark.parametrize("name", [None, *USERS])
def test_every_route_and_callback_answers_only_a_role_that_may(served, name):
    app = served.app
    client, csrf = _client_signed_in(app, name)
    role = USERS[name][0] if name else None
    if role == "sensor":  # a sensor publishes its feed; it never signs in to the dashboards
        assert csrf is None
        client, csrf = app.server.test_client(), ""
        role = None
    for rule, action in ROUTES.items():
        if action in (None, "callback") or rule == "/signout":
            continue
        answer = client.get(_sample(rule), headers={"Accept": "text/html"})
        if role is None:
            assert answer.status_code in (302, 401), (rule, answer.status_code)
            if answer.status_code == 302:
                assert answer.headers["Location"].startswith("/signin?next=")
        else:
            assert answer.status_code not in (302, 401, 403), (rule, name, answer.status_code)
    client.get("/_dash-layout")
    for output, entry in list(app.callback_map.items()):
        if "callback" not in entry:
            continue  # runs in the browser
        action = CALLBACKS[callback_key(entry["callback"])]
        answer = client.post(
            "/_dash-update-component",
            json={"output": output, "outputs": [], "inputs": [], "changedPropIds": [], "state": []},
            headers={CSRF_HEADER: csrf or ""},
        )
        key = callback_key(entry["callback"])
        if role is None:
            assert answer.status_code == 401, key
        elif may(role, action):
            assert answer.status_code not in (401, 403), (key, name)
        else:
            assert answer.status_code == 403, (key, name)


def test_a_post_without_the_session_csrf_token_is_refused(served):
    client, csrf = _client_signed_in(served.app, "komandan")
    body = {"output": "x", "inputs": [], "changedPropIds": []}
    assert client.post("/_dash-update-component", json=body).status_code == 403
    wrong = client.post("/_dash-update-component", json=body, headers={CSRF_HEADER: "x" + csrf})
    assert wrong.status_code == 403
    assert client.post("/signout").status_code == 403  # a page of another site cannot sign you out
    assert client.get("/_dash-layout").status_code == 200


# -- the gate's mechanics, on a bare Flask app with a clock of its own -----------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bare(tmp_path):
    """A gate on a Flask app with one page (``/``) and one callback route, its users a
    duty officer and a disabled-to-be analyst, its clock in the test's hands."""
    import flask

    from twin.auth.users import UserStore

    store = UserStore(tmp_path)
    store.add("sari", "duty_officer", password("sari"))
    store.add("adi", "analyst", password("adi"))
    server = flask.Flask("bare")
    server.add_url_rule("/", "page", lambda: "the page")
    app = types.SimpleNamespace(server=server, callback_map={})
    clock = Clock()
    gate = Gate(store, clock=clock, idle_s=600).install(app)
    return types.SimpleNamespace(server=server, gate=gate, clock=clock, store=store)


def _sign(client, name: str, pw: str | None = None, address: str = "10.0.0.1"):
    form = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post(
        "/signin",
        data={"csrf": token, "name": name, "password": password(name) if pw is None else pw},
        environ_base={"REMOTE_ADDR": address},
    )


def test_sessions_end_when_idle_after_a_shift_on_sign_out_and_when_disabled(bare):
    client = bare.server.test_client()
    assert _sign(client, "sari").status_code == 302
    cookies = {c.key: c for c in client._cookies.values()}
    assert cookies[COOKIE].http_only and cookies[COOKIE].same_site == "Lax"
    assert not cookies[COOKIE].secure  # plain http on 127.0.0.1
    assert not cookies[CSRF_COOKIE].http_only and cookies[CSRF_COOKIE].same_site == "Strict"
    assert client.get("/").text == "the page"
    bare.clock.now += 599
    assert client.get("/").status_code == 200  # activity: the idle time starts again
    bare.clock.now += 599
    assert client.get("/").status_code == 200
    bare.clock.now += 601
    idle = client.get("/", headers={"Accept": "text/html"})
    assert idle.status_code == 302 and "expired=1" in idle.headers["Location"]
    assert client.get("/").status_code == 401
    # signed out: the session is gone from the server, not just from the browser
    assert _sign(client, "sari").status_code == 302
    sid = client.get_cookie(COOKIE).value
    csrf = client.get_cookie(CSRF_COOKIE).value
    assert client.post("/signout", data={"csrf": csrf}).status_code == 302
    other = bare.server.test_client()
    other.set_cookie(COOKIE, sid)
    assert other.get("/").status_code == 401
    # disabled: the next request is refused
    assert _sign(client, "adi").status_code == 302
    bare.store.disable("adi")
    assert client.get("/").status_code == 401
    assert _sign(client, "adi").status_code == 401  # and cannot sign in again


def test_failed_sign_ins_are_rate_limited_by_address_and_by_name(bare):
    client = bare.server.test_client()
    for _ in range(FAILURES_ALLOWED):
        assert _sign(client, "sari", "not-the-password").status_code == 401
    refused = _sign(client, "sari")  # the right password, too late
    assert refused.status_code == 429 and "15" in refused.text
    assert _sign(client, "sari", address="10.0.0.2").status_code == 429  # the name is locked
    assert _sign(client, "adi", address="10.0.0.1").status_code == 429  # and the address
    assert _sign(client, "adi", address="10.0.0.3").status_code == 302
    bare.clock.now += 15 * 60 + 1
    assert _sign(client, "sari").status_code == 302


def test_the_sign_in_form_refuses_a_post_without_its_own_token_and_a_foreign_next(bare):
    client = bare.server.test_client()
    forged = client.post(
        "/signin", data={"csrf": "x", "name": "sari", "password": password("sari")}
    )
    assert forged.status_code == 400 and COOKIE not in {c.key for c in client._cookies.values()}
    form = client.get("/signin?next=//evil.example/x")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        "/signin",
        data={
            "csrf": token,
            "name": "sari",
            "password": password("sari"),
            "next": "//evil.example/x",
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_the_one_time_link_signs_in_once_and_a_new_one_is_announced():
    import flask

    told: list[str] = []
    server = flask.Flask("link")
    server.add_url_rule("/", "page", lambda: "the page")
    gate = Gate(None, announce=told.append).install(
        types.SimpleNamespace(server=server, callback_map={})
    )
    first = gate.token
    client = server.test_client()
    assert client.get("/").status_code == 401
    assert "twin dash" in client.get("/signin").text  # no users: the page points to the link
    answer = client.get(f"/?token={first}&lang=en")
    assert answer.status_code == 302 and answer.headers["Location"] == "/?lang=en"
    assert client.get("/").text == "the page"
    assert told == [gate.token] and gate.token != first
    again = server.test_client()
    assert again.get(f"/?token={first}").status_code == 401  # used: refused
    assert again.get(f"/?token={gate.token}").status_code == 302


# -- twin dash: to a network only with users; over TLS, secure cookies ----------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_twin_dash_serves_a_network_only_with_users_and_marks_cookies_secure_over_tls(
    rush_run, tmp_path
):
    import ssl

    from twin.auth.users import UserStore

    run = tmp_path / "run"
    run.mkdir()
    for f in ("timeline.parquet", "run.json", "scenario.yaml"):
        (run / f).write_bytes((rush_run / f).read_bytes())
    no_users = subprocess.run(
        [sys.executable, "-m", "twin.cli", "dash", str(run), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_users.returncode == 2  # bad input, as every command says it
    assert "--host 0.0.0.0" in no_users.stderr and "twin users add" in no_users.stderr
    UserStore(run).add("sari", "duty_officer", password("sari"))
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "dash", str(run), "--port", str(port),
         "--cert", str(cert), "--key", str(key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/signin", context=context
                ) as r:
                    form = r.read().decode()
                    form_cookie = r.headers["Set-Cookie"]
                break
            except OSError:
                assert time.monotonic() < deadline, "twin dash did not answer over TLS"
                time.sleep(0.5)
        assert "Secure" in form_cookie and "HttpOnly" in form_cookie
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/signin",
            data=f"csrf={token}&name=sari&password={password('sari')}".encode(),
            headers={"Cookie": form_cookie.split(";")[0]},
        )

        class Stay(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), Stay)
        with pytest.raises(urllib.error.HTTPError) as signed:
            opener.open(request)
        assert signed.value.code == 302
        cookies = signed.value.headers.get_all("Set-Cookie")
        session = next(c for c in cookies if c.startswith(COOKIE + "="))
        assert "Secure" in session and "HttpOnly" in session and "SameSite=Lax" in session
    finally:
        proc.terminate()
        said = proc.communicate(timeout=10)[0]
    assert f"https://127.0.0.1:{port}/" in said and "sari (duty_officer) signed in" in said


# -- in the browser -----------------------------------------------------------------------------


def test_sign_in_shows_who_and_sign_out_ends_the_session(served, page):
    page.goto(served)
    assert "/signin?next=" in page.url
    page.fill("#signin-name", "sari")
    page.fill("#signin-password", "wrong password here")
    page.click("#signin-submit")
    assert "Nama pengguna atau kata sandi salah" in page.inner_text("#signin-note")
    assert page.errors == [
        "Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"
    ]
    page.errors.clear()  # the browser's word for the refused sign-in, which was meant
    page.click("#signin-lang")  # the sign-in page in English
    assert page.inner_text("h1") == "Sign in"
    page.fill("#signin-name", "sari")
    page.fill("#signin-password", password("sari"))
    page.click("#signin-submit")
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#who').innerText.length > 0")
    assert page.inner_text("#who") == "Masuk sebagai sari (petugas piket K3i)"
    page.get_by_label("English").check()
    page.wait_for_function("document.querySelector('#who').innerText.startsWith('Signed in')")
    assert page.inner_text("#who") == "Signed in as sari (K3i duty officer)"
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot')].some(g => (g.data || []).length > 0)"
    )
    assert_clean(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "signed-in.png"))
    page.click("#signout")
    page.wait_for_selector("#signin-note")
    assert "signed out" in page.inner_text("#signin-note") or "keluar" in page.inner_text(
        "#signin-note"
    )
    page.goto(f"{served}/units")
    assert "/signin?next=/units" in page.url


def test_an_observer_sees_alerts_but_cannot_acknowledge(served, rush_run, page):
    sign_in(page, served, user="amat")
    page.wait_for_selector("#k3i-alerts li", timeout=30000)
    assert page.locator("#k3i-alerts button").count() == 0
    assert "hanya komandan atau petugas piket" in page.inner_text("#k3i-alerts")
    acks = rush_run / "acknowledgements.jsonl"
    before = acks.read_text() if acks.exists() else ""
    # the callback asked for directly, as a hand-made request would: refused
    output = next(
        k for k, v in served.app.callback_map.items()
        if "callback" in v and callback_key(v["callback"]) == "k3i._acknowledge"
    )  # fmt: skip
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == CSRF_COOKIE)
    answer = page.request.post(
        f"{served}/_dash-update-component",
        data=json.dumps(
            {
                "output": output,
                "outputs": {"id": "k3i-acked", "property": "data"},
                "inputs": [
                    {"id": {"type": "k3i-ack", "alert": "x"}, "property": "n_clicks", "value": 1}
                ],
                "changedPropIds": ['{"alert":"x","type":"k3i-ack"}.n_clicks'],
                "state": [],
            }
        ),
        headers={"Content-Type": "application/json", CSRF_HEADER: csrf},
    )
    assert answer.status == 403
    assert (acks.read_text() if acks.exists() else "") == before
    assert page.errors == []


def test_every_route_refuses_a_browser_without_a_session(served, page):
    for rule, action in ROUTES.items():
        if action is None:
            continue
        path = _sample(rule)
        answer = (
            page.request.post(f"{served}{path}", data="{}")
            if rule in ("/_dash-update-component", "/signout")
            else page.request.get(f"{served}{path}", max_redirects=0)
        )
        assert answer.status in (302, 401, 403), (rule, answer.status)
        assert "dash" not in answer.text().lower() or answer.status == 302, rule


def test_a_page_whose_session_ended_goes_to_the_sign_in_page(served, page):
    sign_in(page, served, user="adi")
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    with served.gate._lock:
        served.gate._sessions.clear()  # as the idle time or a disabled account would
    page.click("#k3i-play")  # the next update is refused, and the page says why
    page.wait_for_url(re.compile(r".*/signin\?expired=1"), timeout=15000)
    assert "Sesi Anda berakhir" in page.inner_text("#signin-note")
