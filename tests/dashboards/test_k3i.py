"""The K3i page in a real browser: Debian's headless chromium, driven by Playwright.

Each test saves a screenshot in ``test-artifacts/dashboards/``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.dashboards.conftest import ROOT, SHOTS, assert_clean, serve
from twin import kpi


def sectors_drawn(page) -> list[str]:
    return page.evaluate(
        "() => document.querySelector('#k3i-map .js-plotly-plot').data"
        ".filter(t => t.fill === 'toself').map(t => t.name)"
    )


def test_k3i_shows_the_city_its_sectors_and_cards_in_indonesian(
    served, rush_run, helsinki_city, page
):
    page.goto(served)
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#k3i-title').innerText.length > 0")
    assert page.inner_text("#k3i-title") == "Pusat K3i"
    names = sectors_drawn(page)
    assert len(names) == len(helsinki_city.sectors)
    # each sector says its status in words and a sign, not only in colour
    status = kpi.sector_status(kpi.connect(rush_run / "timeline.parquet"), 1800.0)
    for row in status.itertuples():
        assert any(n.startswith(f"{row.sector} ") and n.endswith(row.status) for n in names)
    assert "© OpenStreetMap contributors" in page.inner_text("#k3i-map")  # the data's licence
    cards = page.inner_text("#k3i-cards")
    assert "Panggilan 110" in cards and "Unit siaga" in cards and "target" in cards
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "k3i-id.png"), full_page=True)
    assert_clean(page)


def test_k3i_language_switch_and_play_change_what_is_shown(served, page):
    page.goto(served)
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#k3i-clock').innerText.length > 0")
    page.get_by_label("English").check()
    page.wait_for_function(
        "document.querySelector('#k3i-title').innerText === 'K3i command centre'"
    )
    assert "Units available" in page.inner_text("#k3i-cards")
    before = page.inner_text("#k3i-clock")
    page.click("#k3i-play")  # from the end, play wraps to the start and moves on
    page.wait_for_function(
        f"document.querySelector('#k3i-clock').innerText !== {before!r}", timeout=15000
    )
    page.click("#k3i-play")  # pause
    # a click on a sector opens its details: click beside its name, inside its area
    page.wait_for_timeout(1500)
    sector = page.evaluate(
        "() => document.querySelector('#k3i-map .js-plotly-plot').data"
        ".find(t => t.fill === 'toself').customdata[0]"
    )
    xy = page.evaluate(
        """(sid) => {
            const gd = document.querySelector('#k3i-map .js-plotly-plot');
            const tr = gd.data.find(t => t.fill === 'toself' && t.customdata[0] === sid);
            const fl = gd._fullLayout, box = gd.getBoundingClientRect();
            const n = tr.x.length - 1;
            const x = tr.x.slice(0, n).reduce((a, b) => a + b, 0) / n;
            const y = tr.y.slice(0, n).reduce((a, b) => a + b, 0) / n;
            const px = fl.xaxis.l2p(x) + fl._size.l + box.left;
            const py = fl.yaxis.l2p(y) + fl._size.t + box.top + 22;  // below the sector's label
            return [px, py];
        }""",
        sector,
    )
    page.mouse.click(xy[0], xy[1])
    page.wait_for_function(
        f"document.querySelector('#k3i-details').innerText.includes('Sector {sector}')",
        timeout=15000,
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "k3i-en-playing.png"), full_page=True)
    assert_clean(page)
    time.sleep(0.1)


def test_a_new_moment_patches_the_map_and_never_resends_every_road(served, helsinki_city, page):
    """The trace of every road goes to the browser once; each step of the clock sends a
    patch of the other traces (sectors, slow roads, incidents, units)."""
    from twin.report import road_base_index

    base = road_base_index(helsinki_city)
    page.goto(served)
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#k3i-clock').innerText.length > 0")
    drawn = page.evaluate(
        f"() => {{ const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        f" return [gd.data[{base}].meta.roads, gd._fullData[{base}]._length]; }}"
    )
    assert drawn[0] == "all" and drawn[1] > 1000
    before = page.inner_text("#k3i-clock")
    with page.expect_response(
        lambda r: "_dash-update-component" in r.url and "k3i-map" in (r.request.post_data or "")
    ) as answer:
        page.click("#k3i-play")
    body = answer.value.text()
    page.click("#k3i-play")  # pause
    assert '"__dash_patch_update"' in body, body[:300]
    assert '"roads": "all"' not in body and '"roads":"all"' not in body
    page.wait_for_function(
        f"document.querySelector('#k3i-clock').innerText !== {before!r}", timeout=15000
    )
    after = page.evaluate(
        f"() => {{ const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        f" return [gd.data.length, gd.data[{base}].meta.roads, gd._fullData[{base}]._length,"
        " gd.data.filter(t => t.fill === 'toself').length]; }"
    )
    assert after[1:3] == drawn and after[3] == len(helsinki_city.sectors)
    assert_clean(page)


def test_the_unit_board_lists_every_unit_with_its_state_in_words(served, rush_run, page):
    page.goto(served + "/units")
    page.wait_for_selector("#units-board .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#units-title').innerText === 'Papan unit'")
    units = kpi.units_at(kpi.connect(rush_run / "timeline.parquet"), 1800.0)
    rows = page.locator("#units-table tr").all_inner_texts()[1:]
    assert len(rows) == len(units)
    words = {
        "available": "siaga",
        "on_scene": "di lokasi",
        "returning": "kembali",
        "en_route": "menuju lokasi",
    }
    for row, unit in zip(rows, units.itertuples(), strict=True):
        assert row.startswith(unit.unit) and words.get(unit.state, "") in row
    page.get_by_label("English").check()
    page.wait_for_function("document.querySelector('#units-title').innerText === 'Unit board'")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "units-en.png"), full_page=True)
    assert_clean(page)


@pytest.fixture(scope="module")
def two_runs(rush_run, tmp_path_factory):
    """The rush hour, and the same with an accident on Mannerheimintie: a plan to compare."""
    import yaml

    from twin.runs import run_scenario
    from twin.scenario import scenario_from_dict

    sc = yaml.safe_load((rush_run / "scenario.yaml").read_text())
    sc.update(
        name="rush-accident",
        events=[
            {
                "type": "accident",
                "id": "forum-crash",
                "start": "07:05",
                "duration": "20min",
                "lanes": 2,
                "at": {"lat": 60.16914, "lon": 24.93987},
            }
        ],
    )
    plan = run_scenario(
        scenario_from_dict(sc),
        out=tmp_path_factory.mktemp("runs") / "accident",
        progress=False,
        scenario_dir=ROOT / "scenarios",
    ).path
    return [rush_run, plan]


MAP_SECTORS = (
    "((document.querySelector('#cont-map .js-plotly-plot') || {}).data || [])"
    ".filter(t => t.fill === 'toself').length"
)


def test_contingency_compares_runs_side_by_side_with_a_difference_map(
    two_runs, helsinki_city, page
):
    from twin.dashboards.app import create_app

    address, server = serve(create_app(two_runs))
    try:
        page.goto(f"{address}/contingency")
        # the map and the table are separate callbacks: the map's empty figure is drawn
        # first, so wait for its sectors, not for the graph
        page.wait_for_function(MAP_SECTORS + " > 0", timeout=30000)
        page.wait_for_function("document.querySelectorAll('#cont-table tr').length > 5")
        header = page.locator("#cont-table tr").first.inner_text()
        assert "helsinki-morning-rush" in header and "Δ rush-accident" in header
        assert "Kecepatan rata-rata jaringan" in page.inner_text(
            "#cont-table"
        )  # KPIs in Indonesian
        # every sector of the city is on the difference map
        assert page.evaluate(f"() => {MAP_SECTORS}") == len(helsinki_city.sectors)
        before = page.inner_text("#cont-map")
        page.get_by_label("Panggilan → tiba di lokasi").check()
        page.wait_for_function(f"document.querySelector('#cont-map').innerText !== {before!r}")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "contingency-id.png"), full_page=True)
        assert_clean(page)
    finally:
        server.shutdown()


@pytest.mark.slow
def test_contingency_gives_ensembles_confidence_intervals(
    rush_run, helsinki_city, tmp_path_factory, page
):
    """Three seeds of the rush hour and three of the same with an accident: two plans of
    three replications each. The page gives each KPI's mean with its 95 % interval, the
    differences with theirs, and marks a difference only where its interval leaves out 0."""
    import yaml

    from twin.dashboards.app import create_app
    from twin.runs import run_scenario
    from twin.scenario import scenario_from_dict

    doc = yaml.safe_load((rush_run / "scenario.yaml").read_text())
    doc["duration"] = "10min"
    accident = {
        **doc,
        "name": "rush-accident",
        "events": [
            {
                "type": "accident",
                "id": "forum-crash",
                "start": "07:02",
                "duration": "8min",
                "lanes": 2,
                "at": {"lat": 60.16914, "lon": 24.93987},
            }
        ],
    }
    folder = tmp_path_factory.mktemp("ensembles")
    runs = [
        run_scenario(
            scenario_from_dict(d),
            seed=seed,
            out=folder / f"{d['name']}-{seed}",
            progress=False,
            scenario_dir=ROOT / "scenarios",
        ).path
        for d in (doc, accident)
        for seed in (1, 2, 3)
    ]
    address, server = serve(create_app(runs))
    assert address.runs.plans == {
        "helsinki-morning-rush": address.runs.names[:3],
        "rush-accident": address.runs.names[3:],
    }
    try:
        page.goto(f"{address}/contingency")
        page.wait_for_function(
            "document.querySelectorAll('#cont-table tr').length > 5", timeout=30000
        )
        header = page.locator("#cont-table tr").first.inner_text()
        assert (
            "helsinki-morning-rush (3 replikasi)" in header
            and "rush-accident (3 replikasi)" in header
        )
        assert "selang kepercayaan 95 %" in page.inner_text("#cont-ci")
        # the mean trip time: the mean of the three runs, and its interval, as computed here
        trips = [kpi.summary(r / "timeline.parquet")["mean_trip_min"] for r in runs[:3]]
        row = kpi.compare(
            {"a": [{"mean_trip_min": v} for v in trips], "b": {"mean_trip_min": 1.0}}
        ).iloc[0]
        cells = page.locator(
            "#cont-table tr", has_text="Waktu perjalanan rata-rata"
        ).first.inner_text()
        assert f"{row['a']:,.2f} ± {row['± a']:,.2f}" in cells
        deltas = page.locator("#cont-table td").all_inner_texts()
        assert any("±" in d and d.rstrip().endswith(("▲", "▼", "≈")) for d in deltas)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "contingency-ensembles-id.png"), full_page=True)
        assert_clean(page)
    finally:
        server.shutdown()


def test_an_alert_acknowledged_becomes_an_event_on_the_timeline(served, rush_run, page):
    import json

    page.goto(served)
    page.wait_for_selector("#k3i-alerts li", timeout=30000)
    first = page.locator("#k3i-alerts li").first
    said = first.inner_text()
    assert any(word in said for word in ("waspada", "rawan"))  # the word beside the colour
    page.fill("#k3i-officer", "Briptu Sari")
    page.keyboard.press("Enter")
    first.get_by_role("button").click()
    page.wait_for_function("document.querySelector('#k3i-alerts li').innerText.includes('diakui')")
    lines = (rush_run / "acknowledgements.jsonl").read_text().splitlines()
    ack = json.loads(lines[-1])
    assert ack["officer"] == "Briptu Sari" and ack["alert"].split(":")[0] in said
    events = (
        served.runs[None]
        .con.execute("SELECT alert, officer FROM timeline WHERE kind = 'alert_acknowledged'")
        .fetchall()
    )
    assert (ack["alert"], "Briptu Sari") in events
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "k3i-acknowledged.png"), full_page=True)
    assert_clean(page)


def test_the_light_plotly_is_the_one_plotly_ships():
    """The app's plotly.js (the basic bundle: scatter, bar, pie, about a quarter of the
    full one) is the same release as the plotly.js of the installed plotly package, whose
    figures it draws. On an upgrade of plotly: ``npm pack plotly.js-basic-dist-min@<that
    release>`` and copy its ``plotly-basic.min.js`` into ``dashboards/assets/``."""
    import re

    import plotly

    full = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()[:400]
    light = (ROOT / "dashboards" / "assets" / "plotly-basic.min.js").read_text()[:400]
    version = re.compile(r"plotly\.js(?: \(basic - minified\))? v(\S+)")
    assert version.search(light).group(1) == version.search(full).group(1)


def test_tiles_cover_the_city_at_the_deepest_zoom_that_fits():
    from twin.report import Tiles

    tiles = Tiles("https://tiles.example.org/{z}/{x}/{y}.png")
    south, west, north, east = 60.155, 24.92, 60.19, 24.97
    images = tiles.images(south, west, north, east)
    assert 1 <= len(images) <= 16
    assert len(Tiles(tiles.url, most=64).images(south, west, north, east)) > 16  # one zoom deeper
    assert min(i["x"] for i in images) <= west and max(i["x"] + i["sizex"] for i in images) >= east
    assert (
        max(i["y"] for i in images) >= north and min(i["y"] - i["sizey"] for i in images) <= south
    )
    # one tile round Helsinki's railway station: it holds the point, and is 360° / 2^z wide
    (one,) = Tiles(tiles.url, most=1).images(60.1709, 24.9413, 60.1711, 24.9415)
    z, x, _ = (int(v) for v in one["source"].removesuffix(".png").split("/")[-3:])
    assert (
        one["x"] <= 24.9414 <= one["x"] + one["sizex"]
        and one["y"] - one["sizey"] <= 60.171 <= one["y"]
    )
    assert one["sizex"] == pytest.approx(360 / 2**z) and one["x"] == pytest.approx(
        x * 360 / 2**z - 180
    )
    with pytest.raises(ValueError, match=r"\{z\}, \{x\} and \{y\}"):
        Tiles("https://tiles.example.org/{z}/{x}.png")


def test_a_tile_server_under_the_k3i_map(rush_run, page, tmp_path):
    """Online: the K3i map over a tile server's map (here one served on 127.0.0.1): the
    browser fetches the tiles that cover the city and the map credits their source."""
    import base64
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from twin.dashboards.app import create_app
    from twin.report import Tiles

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    asked: list[str] = []

    class TileServer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args) -> None:
            pass

    tile_server = ThreadingHTTPServer(("127.0.0.1", 0), TileServer)
    threading.Thread(target=tile_server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{tile_server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    address, server = serve(create_app([rush_run], tiles=Tiles(url, "Tiles © test server")))
    try:
        page.goto(address)
        page.wait_for_selector(
            "#k3i-map .js-plotly-plot .main-svg image", timeout=30000, state="attached"
        )
        shown = page.evaluate(
            "() => [...document.querySelectorAll('#k3i-map image')].map(i => i.getAttribute('href'))"
        )
        deadline = time.time() + 10
        while len(asked) < len(shown) and time.time() < deadline:
            time.sleep(0.1)
        assert shown and sorted(asked) == sorted(
            h.split(str(tile_server.server_address[1]))[1] for h in shown
        )
        assert "Tiles © test server" in page.inner_text("#k3i-map")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "k3i-tiles.png"), full_page=True)
        assert_clean(page)
    finally:
        server.shutdown()
        tile_server.shutdown()
