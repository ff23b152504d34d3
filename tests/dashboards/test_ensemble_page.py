"""An ensemble folder (``twin evaluate``) on the dashboards: the contingency page shows
each plan's replications as means with intervals, paired differences with verdicts, and a
difference map; the pages that show one run say where to look instead."""

from __future__ import annotations

import pytest

from tests.dashboards.conftest import SHOTS, assert_clean, serve, sign_in


@pytest.mark.slow
def test_the_contingency_page_shows_an_ensemble_with_paired_intervals(cars_ensemble, page):
    ensemble = cars_ensemble
    from twin import kpi
    from twin.dashboards.app import create_app

    address, server = serve(create_app([], ensembles=[ensemble.path], lang="en"))
    try:
        sign_in(page, address, "/contingency")
        page.wait_for_function(
            "document.querySelectorAll('#cont-table tr').length > 5", timeout=30000
        )
        header = page.locator("#cont-table tr").first.inner_text()
        assert "baseline (6 replications)" in header and "six-cars (6 replications)" in header
        row = ensemble.table[ensemble.table["kpi"] == "response_p50_s"].iloc[0]
        shown = kpi.format_interval(row["Δ six-cars"], row["± Δ six-cars"], "min", signed=True)
        cells = page.locator("#cont-table tr", has_text="Response time, median").first.inner_text()
        assert f"{shown} ▲" in cells, (cells, shown)
        assert "paired where the replications share their seeds" in page.inner_text("#cont-ci")
        page.wait_for_function(
            "document.querySelectorAll('#cont-map .js-plotly-plot').length > 0", timeout=30000
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "contingency-evaluation.png"), full_page=True)
        assert_clean(page)
        page.goto(address)
        page.wait_for_selector("#k3i-no-run", timeout=30000)
        assert "twin evaluate --keep-timelines" in page.inner_text("#k3i-no-run")
    finally:
        server.shutdown()
