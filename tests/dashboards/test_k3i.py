"""The K3i page in a real browser: Debian's headless chromium, driven by Playwright.

Each test saves a screenshot in ``test-artifacts/dashboards/``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.dashboards.conftest import ROOT, SHOTS, assert_clean, serve, sign_in
from twin import kpi


def sectors_drawn(page) -> list[str]:
    """Each sector on the map with its status's sign and word ("S04 ✖ rawan"): the sectors
    of one status are one trace, named by the status, with the sectors in its meta."""
    return page.evaluate(
        "() => document.querySelector('#k3i-map .js-plotly-plot').data"
        ".filter(t => t.fill === 'toself').flatMap(t => t.meta.sectors.map(s => s + ' ' + t.name))"
    )


def test_k3i_shows_the_city_its_sectors_and_cards_in_indonesian(
    served, rush_run, helsinki_city, page
):
    sign_in(page, served)
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
    sign_in(page, served)
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
    # (the sectors of one status are one trace, a ring per sector, rings apart by a null)
    sector, xy = page.evaluate(
        """() => {
            const gd = document.querySelector('#k3i-map .js-plotly-plot');
            const tr = gd.data.find(t => t.fill === 'toself' && t.meta.sectors.length);
            const end = tr.x.indexOf(null), n = end - 1;  // its first ring, closed
            const fl = gd._fullLayout, box = gd.getBoundingClientRect();
            const x = tr.x.slice(0, n).reduce((a, b) => a + b, 0) / n;
            const y = tr.y.slice(0, n).reduce((a, b) => a + b, 0) / n;
            const px = fl.xaxis.l2p(x) + fl._size.l + box.left;
            const py = fl.yaxis.l2p(y) + fl._size.t + box.top + 22;  // below the sector's label
            return [tr.meta.sectors[0], [px, py]];
        }"""
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
    """Every road goes to the browser once, as one picture under the map; each step of the
    clock sends a patch of the traces (a few: one per sector status, the sectors' names,
    the slow roads, the incidents, one per unit state), never the picture."""
    from twin.report import road_base_index

    base, n = road_base_index(helsinki_city), len(helsinki_city.sectors)
    sign_in(page, served)
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#k3i-clock').innerText.length > 0")
    drawn = page.evaluate(
        "() => { const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        " const im = gd.layout.images.find(i => i.name === 'roads');"
        " return [im.source.slice(0, 22), im.source.length,"
        f" gd.data[{base}].meta.roads, [...document.querySelectorAll('#k3i-map image')]"
        ".filter(i => i.getAttribute('href').startsWith('data:image/png')).length]; }"
    )
    assert drawn[0] == "data:image/png;base64," and drawn[1] > 10000
    assert drawn[2] == "picture" and drawn[3] == 1  # the picture is on the page
    before = page.inner_text("#k3i-clock")
    with page.expect_response(
        lambda r: "_dash-update-component" in r.url and "k3i-map" in (r.request.post_data or "")
    ) as answer:
        page.click("#k3i-play")
    body = answer.value.json()
    page.click("#k3i-play")  # pause
    patch = body["response"]["k3i-map"]["figure"]
    assert patch["__dash_patch_update"] == "__dash_patch_update", str(patch)[:300]
    places = [op["location"] for op in patch["operations"]]
    # every trace but the roads' entry, whole; never the layout, which holds the picture
    assert sorted(loc[1] for loc in places) == [j for j in range(len(places) + 1) if j != base]
    assert all(loc[0] == "data" and len(loc) == 2 for loc in places)
    assert len(answer.value.body()) < 200_000
    page.wait_for_function(
        f"document.querySelector('#k3i-clock').innerText !== {before!r}", timeout=15000
    )
    after = page.evaluate(
        "() => { const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        " const s = gd.data.filter(t => t.fill === 'toself');"
        " return [s.length, s.reduce((a, t) => a + t.meta.sectors.length, 0),"
        f" gd.layout.images.length, gd.data[{base}].meta.roads]; }}"
    )
    assert after == [4, n, 1, "picture"]  # aman, waspada, rawan, no data
    assert_clean(page)


def test_a_zoomed_map_gets_a_finer_picture_of_its_window(served, page):
    """Zoomed in, the map asks for a new picture of the roads in its window (as a map
    engine fetches deeper tiles), keeps its zoom and its traces; zoomed back out, it
    shows the whole city's picture again."""
    sign_in(page, served)
    page.wait_for_selector("#k3i-map .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_function("document.querySelector('#k3i-clock').innerText.length > 0")
    roads = (
        "() => { const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        " const im = gd.layout.images.find(i => i.name === 'roads');"
        " return [im.x, im.sizex, im.source.length, gd.data.length,"
        " gd._fullLayout.xaxis.range[0], gd._fullLayout.xaxis.range[1]]; }"
    )
    whole = page.evaluate(roads)
    x0, x1 = whole[0] + 0.4 * whole[1], whole[0] + 0.6 * whole[1]
    page.evaluate(
        "([x0, x1]) => { const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        " const y = gd._fullLayout.yaxis.range, m = (y[0] + y[1]) / 2, h = (x1 - x0) / 2;"
        " return Plotly.relayout(gd, {'xaxis.range': [x0, x1], 'yaxis.range': [m - h, m + h]}); }",
        [x0, x1],
    )
    page.wait_for_function(
        f"() => {{ const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        f" return gd.layout.images.find(i => i.name === 'roads').x > {whole[0] + 1e-9}; }}",
        timeout=30000,
    )
    zoomed = page.evaluate(roads)
    # the picture covers the window as drawn (plotly widens an axis to keep the aspect)
    shown = zoomed[4:]
    assert shown[0] <= x0 < x1 <= shown[1] and shown[1] - shown[0] < 0.8 * whole[1]
    assert zoomed[0] == pytest.approx(shown[0]) and zoomed[1] == pytest.approx(shown[1] - shown[0])
    assert zoomed[2] > 1000 and zoomed[3] == whole[3]  # a picture; the traces stay
    # a new moment keeps the zoom too
    before = page.inner_text("#k3i-clock")
    page.click("#k3i-play")
    page.wait_for_function(f"document.querySelector('#k3i-clock').innerText !== {before!r}")
    page.click("#k3i-play")
    assert page.evaluate(roads)[4:] == pytest.approx(shown)
    page.evaluate(
        "() => Plotly.relayout(document.querySelector('#k3i-map .js-plotly-plot'),"
        " {'xaxis.autorange': true, 'yaxis.autorange': true})"
    )
    page.wait_for_function(
        f"() => {{ const gd = document.querySelector('#k3i-map .js-plotly-plot');"
        f" return Math.abs(gd.layout.images.find(i => i.name === 'roads').x - {whole[0]}) < 1e-12;"
        " }",
        timeout=30000,
    )
    assert page.evaluate(roads)[:3] == whole[:3]
    assert_clean(page)


def test_the_unit_board_lists_every_unit_with_its_state_in_words(served, rush_run, page):
    sign_in(page, served, "/units")
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
        sign_in(page, address, "/contingency")
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
        sign_in(page, address, "/contingency")
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

    sign_in(page, served)
    page.wait_for_selector("#k3i-alerts li", timeout=30000)
    first = page.locator("#k3i-alerts li").first
    said = first.inner_text()
    assert any(word in said for word in ("waspada", "rawan"))  # the word beside the colour
    first.get_by_role("button").click()
    page.wait_for_function("document.querySelector('#k3i-alerts li').innerText.includes('diakui')")
    lines = (rush_run / "acknowledgements.jsonl").read_text().splitlines()
    ack = json.loads(lines[-1])
    assert ack["officer"] == "sari" and ack["alert"].split(":")[0] in said  # who signed in
    events = (
        served.runs[None]
        .con.execute("SELECT alert, officer FROM timeline WHERE kind = 'alert_acknowledged'")
        .fetchall()
    )
    assert (ack["alert"], "sari") in events
    from twin.audit import verify_run  # the acknowledgement is on the run's audit chain

    verdict = verify_run(rush_run)
    assert ack["prev_hash"] and verdict.intact, verdict.problem
    assert json.loads((rush_run / "run.json").read_text())["audit"]["head"] == verdict.head
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
        sign_in(page, address)
        page.wait_for_selector(
            "#k3i-map .js-plotly-plot .main-svg image", timeout=30000, state="attached"
        )
        shown = page.evaluate(
            "() => [...document.querySelectorAll('#k3i-map image')].map(i => i.getAttribute('href'))"
        )
        # the tiles, then the picture of every road over them
        assert shown[-1].startswith("data:image/png;base64,")
        shown = shown[:-1]
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


def test_a_window_the_browser_could_not_have_drawn_draws_nothing(served):
    """The zoom's window comes from the browser: anything but four finite numbers, west of
    east and south of north, draws no picture (and costs the server nothing)."""
    import sys

    import dash

    k3i = sys.modules[next(p for p in dash.page_registry.values() if p["path"] == "/")["module"]]
    for window in (None, "x", [1, 2, 3], [0, 0, float("nan"), 1], [2, 0, 1, 1], [0, 1, 1, 0]):
        assert k3i._window_box(window) is None, window
    assert k3i._window_box([24.9, 60.1, "24.95", 60.2]) == (24.9, 60.1, 24.95, 60.2)
