"""The words and numbers a person reads on each page: no template left unformatted, times
as people write them, no data shown as its own state, a slider that reads as a clock, a
language that holds from page to page, and a card that agrees with its alert."""

from __future__ import annotations

import json
import re
import shutil

import yaml

from tests.dashboards.conftest import SHOTS, assert_clean, serve, sign_in
from twin import kpi
from twin.report import STATUS_STYLE, UNIT_STYLE


def _open(page, address, path: str = "/") -> None:
    sign_in(page, address, path)
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#k3i-alerts').innerText.length > 0")


def test_the_k3i_page_writes_its_figures_as_people_read_them(served, rush_run, page):
    _open(page, served)
    con = kpi.connect(rush_run / "timeline.parquet")
    t = served.runs[None].end
    status = kpi.sector_status(con, t)
    cards = kpi.k3i_cards(con, t)
    alerts = kpi.alerts(con, t, status, cards)
    body = page.inner_text("body")
    assert "{" not in body and "}" not in body, "a template placeholder left unformatted"
    assert not re.search(r"\d\.?\d*e[+-]\d", body), "a number in scientific notation"
    shown = page.inner_text("#k3i-alerts")
    for a in alerts.itertuples():
        for key, value, limit in a.why:
            if key.endswith("_s"):  # times in minutes or seconds, in Indonesian
                assert kpi.format_duration(value, "id") in shown
                assert kpi.format_duration(limit, "id") in shown
    # the 110 card names its target and the window it counts over
    card = page.inner_text("#k3i-card-answered_110")
    assert "Panggilan 110 dijawab ≤ 10 dtk" in card and "1 jam terakhir" in card
    # a card is marked as its alert is: the same status, the same sign
    levels = kpi.card_levels(cards)
    assert any(v not in (None, "aman") for v in levels.values()), "no card off target to check"
    for key, level in levels.items():
        value = page.inner_text(f"#k3i-card-{key} .card-value")
        assert value.startswith("–" if level is None else STATUS_STYLE[level][1]), (key, value)
        if level not in (None, "aman"):
            line = next(li for li in shown.splitlines() if f"{level} " in li and "target" in li)
            assert line.startswith(STATUS_STYLE[level][1])
    assert_clean(page)


def test_a_sector_without_data_is_shown_as_no_data_on_the_map_and_in_the_table(
    served, rush_run, helsinki_city, page
):
    _open(page, served)
    known = set(kpi.sector_status(kpi.connect(rush_run / "timeline.parquet"), 1800.0)["sector"])
    silent = [s for s in helsinki_city.sectors.index if s not in known]
    assert silent, "the test city has no sector without data: nothing to check"
    drawn = page.evaluate(
        "() => document.querySelector('#k3i-map .js-plotly-plot').data"
        ".filter(t => t.fill === 'toself')"
        ".flatMap(t => t.meta.sectors.map(s => [s + ' ' + t.name, t.fillcolor]))"
    )
    color, sign = STATUS_STYLE[kpi.NO_DATA]
    for name, fill in drawn:
        sector = name.split()[0]
        if sector in silent:
            assert name == f"{sector} {sign} tanpa data" and fill == color
        else:
            assert "tanpa data" not in name
    rows = page.locator("#k3i-status tr").all_inner_texts()[1:]
    assert len(rows) == len(helsinki_city.sectors), "every sector is in the table"
    for sector in silent:
        row = next(r for r in rows if r.startswith(sector))
        assert f"{sign} tanpa data" in row and "aman" not in row


def test_the_time_slider_reads_as_a_clock_and_is_easy_to_grab(served, page):
    _open(page, served)
    view = served.runs[None]
    marks = page.locator("#k3i-time .rc-slider-mark-text").all_inner_texts()
    assert marks and all(re.fullmatch(r"\d\d:\d\d", m) for m in marks), marks
    assert marks[0] == view.clock(0)
    clock = page.inner_text("#k3i-clock")
    rail = page.locator("#k3i-time .rc-slider-rail").bounding_box()
    # a click 10 pixels above the rail's middle, a quarter of the way in, moves the time
    page.mouse.click(rail["x"] + rail["width"] / 4, rail["y"] + rail["height"] / 2 - 10)
    page.wait_for_function(f"document.querySelector('#k3i-clock').innerText !== {clock!r}")
    assert re.fullmatch(r"Waktu \d\d:\d\d", page.inner_text("#k3i-clock"))


def test_the_language_holds_from_page_to_page_and_the_menu_follows_it(served, page):
    _open(page, served)
    menu = page.locator(".nav-link")
    page.wait_for_function("document.querySelector('.nav').innerText.includes('Papan unit')")
    assert menu.all_inner_texts() == ["K3i", "Kontinjensi", "Papan unit"]
    page.get_by_label("English").check()
    page.wait_for_function("document.querySelector('.nav').innerText.includes('Contingency')")
    assert menu.all_inner_texts() == ["K3i", "Contingency", "Unit board"]
    page.goto(f"{served}/units")  # opened by its address: a new page load
    page.wait_for_function(
        "(document.querySelector('#units-title') || {}).innerText", timeout=30000
    )
    assert page.inner_text("#units-title") == "Unit board"
    assert "Contingency" in page.inner_text(".nav")
    assert page.get_by_label("English").is_checked()


def test_contingency_with_one_plan_says_what_to_do_and_draws_no_empty_axes(served, page):
    sign_in(page, served, "/contingency")
    page.wait_for_selector("#cont-only-one", timeout=30000)
    assert "twin dash runs/" in page.inner_text("#cont-only-one")
    assert not page.locator("#cont-map").is_visible()
    assert page.errors == []


def _copy_as(run, tmp_path, name: str):
    """The run under another scenario name: a plan with the very same figures."""
    out = tmp_path / name
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("sumo"))
    info = json.loads((out / "run.json").read_text())
    info["scenario"] = name
    (out / "run.json").write_text(json.dumps(info))
    doc = yaml.safe_load((out / "scenario.yaml").read_text())
    doc["name"] = name
    (out / "scenario.yaml").write_text(yaml.safe_dump(doc))
    return out


def test_contingency_shows_every_plan_given_with_units_and_marks_no_zero(rush_run, tmp_path, page):
    from twin.dashboards.app import create_app

    runs = [
        rush_run,
        _copy_as(rush_run, tmp_path, "plan-b"),
        _copy_as(rush_run, tmp_path, "plan-c"),
    ]
    address, server = serve(create_app(runs))
    try:
        sign_in(page, address, "/contingency")
        page.wait_for_function(
            "document.querySelectorAll('#cont-table tr').length > 5", timeout=30000
        )
        head = page.locator("#cont-table tr").first.inner_text()
        for name in ("helsinki-morning-rush", "plan-b", "plan-c", "Δ plan-b", "Δ plan-c", "Satuan"):
            assert name in head, name
        table = page.inner_text("#cont-table")
        assert "km/h" in table and "vehicle-hours" in table  # the units column
        # the same figures three times: every difference is zero, none is marked
        assert not set(table) & {"▲", "▼", "≈", "†"}
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "contingency-three.png"), full_page=True)
        assert_clean(page)
    finally:
        server.shutdown()


def test_unit_states_differ_by_more_than_colour():
    symbols = [s for s, _, _ in UNIT_STYLE.values()]
    patterns = [p for _, _, p in UNIT_STYLE.values()]
    assert len(set(symbols)) == len(symbols) and len(set(patterns)) == len(patterns)

    def rgb(hex_: str) -> tuple[int, ...]:
        return tuple(int(hex_[i : i + 2], 16) for i in (1, 3, 5))

    colors = {state: rgb(c) for state, (_, c, _) in UNIT_STYLE.items()}
    for a in colors:
        for b in colors:
            if a < b:
                distance = sum((x - y) ** 2 for x, y in zip(colors[a], colors[b], strict=True))
                assert distance**0.5 > 80, f"{a} and {b} are near the same colour"


def test_a_difference_is_marked_only_where_it_shows_and_means_something():
    rows = kpi.compare(
        {
            "base": {"delay_veh_h": 10.0, "trips_cut_short": 0, "mean_tti": 1.2, "trips": 100},
            "flood": {"delay_veh_h": 8.0, "trips_cut_short": 314, "mean_tti": 1.201, "trips": 90},
        }
    ).set_index("kpi")["verdict flood"]
    assert rows["delay_veh_h"] == "cut_short"  # less delay only because trips ended early
    assert rows["mean_tti"] == "same"  # +0.00 as shown: no verdict
    assert rows["trips"] == "one_run"  # one run each: only replications can tell
    assert rows["trips_cut_short"] == "one_run"
    # with replications, a difference whose interval leaves out zero is better or worse
    ens = kpi.compare(
        {
            "base": [
                {"trips": 100, "seed": 1},
                {"trips": 104, "seed": 2},
                {"trips": 98, "seed": 3},
            ],
            "plan": [{"trips": 90, "seed": 1}, {"trips": 95, "seed": 2}, {"trips": 87, "seed": 3}],
        },
        paired=True,
    ).set_index("kpi")
    assert ens.loc["trips", "verdict plan"] == "worse"
    assert ens.loc["trips", "Δ plan"] == -10.0  # the mean of the paired differences


def test_twin_dash_says_where_once_and_logs_no_request(rush_run):
    """The console says where the dashboards are and how to sign in, then who signed in:
    not each request."""
    import http.cookiejar
    import socket
    import subprocess
    import sys
    import urllib.request

    from tests.conftest import sign_in_link

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "dash", str(rush_run), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        link = sign_in_link(proc)
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        browser.open(link, timeout=30).read()
        browser.open(f"http://127.0.0.1:{port}/_dash-layout", timeout=30).read()
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    base = f"http://127.0.0.1:{port}"
    lines = "".join([*proc.said, stdout]).strip().splitlines()
    assert lines[0] == f"Dashboards on {base}/ (Ctrl-C stops them)"
    assert lines[1].startswith("No users yet: open this one-time link to sign in")
    assert lines[2] == link and link.startswith(f"{base}/?token=")
    assert lines[3].startswith(f"For the next browser, a new one-time link: {base}/?token=")
    assert len(lines) == 4
    assert "signed in with the one-time link from 127.0.0.1" in stderr
    assert "WARNING" not in stderr and "GET /" not in stderr, stderr
