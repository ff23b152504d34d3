"""The service hall's two pages in a real browser, on the shipped Polres Monday: the queue
display as the public reads it (the ticket called, the counters, the queues, the waits),
checked number by number against the timeline at the moment the screen shows, and the
planner's view with its figures and tables, in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.dashboards.conftest import SHOTS, assert_clean, serve, sign_in
from twin import kpi

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hall_run(jakarta_build, tmp_path_factory):
    from twin.runs import run_scenario
    from twin.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "jakarta_polres_service.yaml")
    sc = sc.model_copy(update={"city": str(jakarta_build.city.path)})
    return run_scenario(
        sc, out=tmp_path_factory.mktemp("runs") / "hall", progress=False, scenario_dir=ROOT
    ).path


@pytest.fixture(scope="module")
def hall_served(hall_run, rush_run, dash_users):
    """The dashboards over the hall's run and a run without a hall."""
    from twin.dashboards.app import create_app
    from twin.dashboards.signin import Gate

    address, server = serve(create_app([hall_run, rush_run], gate=Gate(dash_users)))
    yield address
    server.shutdown()


def _seconds(clock: str, view) -> float:
    """The run's second that a clock text (``Waktu 10:02``) shows."""
    hh, mm, ss = (int(x or 0) for x in re.search(r"(\d\d):(\d\d)(?::(\d\d))?", clock).groups())
    start = view.start
    return float(
        (hh * 3600 + mm * 60 + ss) - (start.hour * 3600 + start.minute * 60 + start.second)
    )


def test_the_queue_display_shows_the_hall_as_it_stood(hall_served, hall_run, page):
    sign_in(page, hall_served, "/antrian")
    page.wait_for_selector("#hall-now", timeout=30000)
    assert page.inner_text("#nav-hall") == "Antrian"
    assert page.inner_text("#hall-h") == "Layar antrian: jakarta-polres-service"
    # to the Monday morning's peak: a third of the way along the day (about 10:00)
    box = page.locator("#hall-time .rc-slider-rail").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => !document.querySelector('#hall-clock').innerText.includes('16:00')"
    )
    page.wait_for_timeout(1500)
    view = hall_served.runs["jakarta-polres-service"]
    clock = page.inner_text("#hall-clock")
    t = _seconds(clock, view)
    assert 2.5 * 3600 < t < 3.5 * 3600, clock
    now = kpi.hall_at(kpi.connect(hall_run / "timeline.parquet"), t)
    # the ticket called last, and where to
    last = now["calls"].iloc[0]
    assert page.inner_text("#hall-now") == last["ticket"]
    assert f"ke {last['counter']} loket {int(last['desk'])}" in page.inner_text(".hall-calling")
    earlier = page.inner_text("#hall-earlier")
    for c in now["calls"].iloc[1:].itertuples():
        assert f"{c.ticket} → {c.counter} {int(c.desk)}" in earlier
    # each counter group: open counters, the ticket at each counter, the queue
    for g in now["counters"].itertuples():
        card = page.inner_text(f"#hall-group-{g.counter}")
        assert f"{g.open} dari {g.counters} loket buka" in card
        assert f"menunggu: {g.waiting}" in card
        for d in now["desks"][now["desks"]["counter"] == g.counter].itertuples():
            assert re.search(rf"Loket {d.desk}\s+{d.ticket}", card), (g.counter, d.desk, card)
        shown = len(re.findall(r"Loket \d+", card))
        assert shown == g.counters
    assert now["counters"]["waiting"].sum() > 10, "a peak with queues to show"
    # each service: its ticket letter, who waits, the last half hour's waits
    rows = page.locator("#hall-services tr").all_inner_texts()[1:]
    for row, s in zip(rows, now["services"].itertuples(), strict=True):
        cells = row.split("\t")
        assert cells[0] == s.letter and cells[1] == s.title and cells[2] == str(s.waiting)
        expect = "–" if s.recent_wait_s is None else f"sekitar {round(s.recent_wait_s / 60)} menit"
        assert cells[3] == expect and cells[4] == str(s.served)
    body = page.inner_text("body")
    assert "{" not in body and "nan" not in body.lower().split()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "hall-display.png"), full_page=True)
    # the play button runs the screen's clock on
    page.click("#hall-play")
    page.wait_for_function(f"() => document.querySelector('#hall-clock').innerText != '{clock}'")
    page.click("#hall-play")  # and stops it
    page.wait_for_function("() => document.querySelector('#hall-play').innerText == '▶ Putar'")
    assert page.errors == []  # (the screen has no figure: assert_clean's check of them is moot)


def test_the_planners_view_gives_the_days_figures_in_both_languages(hall_served, hall_run, page):
    sign_in(page, hall_served, "/layanan")
    page.wait_for_selector("#service-queues .js-plotly-plot .main-svg", timeout=30000)
    page.wait_for_selector("#service-visitors-table")
    con = kpi.connect(hall_run / "timeline.parquet")
    summary = kpi.service_summary(con)
    card = page.inner_text("#service-card-standard_kept")
    assert card.startswith("Standar terpenuhi")
    assert f"{summary['service_standard_kept']:.0%}" in card
    assert f"{summary['service_left_unserved']:,}" in page.inner_text("#service-card-left")
    assert kpi.format_duration(summary["service_wait_p90_s"], "id") in page.inner_text(
        "#service-card-wait90"
    )
    table = kpi.service_table(con)
    rows = page.locator("#service-visitors-table tr").all_inner_texts()
    assert rows[0].split("\t")[:3] == ["layanan", "datang", "dilayani"]
    skck = next(r for r in rows if r.startswith("SKCK")).split("\t")
    mine = table[table["service"] == "skck"].iloc[0]
    assert skck[1] == f"{mine['visitors']:,}" and skck[2] == f"{mine['served']:,}"
    assert skck[4] == f"{mine['standard_kept']:.0%}"
    assert "twin evaluate" in page.inner_text("#service-one-draw")
    names = page.evaluate(
        "() => document.querySelector('#service-queues .js-plotly-plot').data.map(t => t.name)"
    )
    assert names == list(kpi.counter_table(con)["counter"])
    title = page.evaluate(
        "() => document.querySelector('#service-kept .js-plotly-plot').layout.title.text"
    )
    assert title.startswith("Dilayani dalam standar, menurut jam datang")
    # in English
    page.click("text=English")
    page.wait_for_function(
        "() => document.querySelector('#service-h').innerText.startsWith('Service hall')"
    )
    assert page.inner_text("#nav-service") == "Service hall"
    assert page.locator("#service-visitors-table tr").first.inner_text().startswith("service\tcame")
    assert_clean(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "hall-planner.png"), full_page=True)


def test_the_hall_pages_are_not_in_the_menu_without_a_hall(served, page):
    sign_in(page, served, "/")
    page.wait_for_selector("#nav-k3i")
    assert page.locator("#nav-hall").count() == 0 and page.locator("#nav-service").count() == 0
    page.goto(f"{served}/antrian")
    page.wait_for_selector("#hall-none")
    assert "twin service" in page.inner_text("#hall-none")
