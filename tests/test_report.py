"""The report's figures read as a planner reads them: runs on the same bins, the baseline
grey, red at the bad end of every map, labels legible on any cell."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from twin import report
from twin.events import Trip
from twin.sim.timeline import Timeline


def _trips(losses: list[float]) -> pa.Table:
    timeline = Timeline()
    for i, loss in enumerate(losses):
        fields = {f: None for f in Trip.__dataclass_fields__}
        fields.update(vehicle=f"v{i}", time_loss_s=loss)
        timeline.append(float(i), Trip(**fields), source="traffic")
    timeline.flush()
    return timeline.table()


def test_two_runs_delays_share_their_bins_and_the_baseline_is_grey():
    runs = {"baseline": _trips([30, 60, 90, 600]), "plan": _trips([10, 20, 1200, 1800, 2400])}
    fig = report.delay_histogram(runs, reference="baseline")
    bins = {(t.xbins.start, t.xbins.size, t.xbins.end) for t in fig.data}
    assert len(bins) == 1, "each run drawn on its own bins"
    start, size, end = bins.pop()
    assert start == 0 and end >= 2400 / 60 and size in (0.5, 1, 2, 5)
    colors = {t.name: t.marker.color for t in fig.data}
    assert colors["baseline"] == report.REFERENCE_COLOR
    assert colors["plan"] not in (report.REFERENCE_COLOR, "#d62728")  # never red


def _redness(rgb: str) -> float:
    r, g, b = (float(x) for x in rgb[rgb.index("(") + 1 : -1].split(","))
    return r - (g + b) / 2


@pytest.mark.parametrize("better", ["higher", "lower"])
def test_a_sector_map_is_red_at_its_bad_end_with_legible_labels(helsinki_city, better):
    sectors = list(helsinki_city.sectors.index)
    values = pd.Series(range(len(sectors)), index=sectors, dtype=float)
    fig = report.sector_map(helsinki_city, values, title="t", colorbar="c", better=better)
    fills = {t.name.split(":")[0]: t.fillcolor for t in fig.data if t.fill == "toself"}
    worst, best = (sectors[0], sectors[-1]) if better == "higher" else (sectors[-1], sectors[0])
    assert _redness(fills[worst]) > _redness(fills[best]) + 50
    labels = [a for a in fig.layout.annotations if a.text.startswith(tuple(sectors))]
    assert labels and all(a.bgcolor and a.font.color for a in labels)


def test_a_map_of_no_difference_has_a_readable_scale(helsinki_city):
    zero = pd.Series(0.0, index=helsinki_city.sectors.index)
    fig = report.sector_map(helsinki_city, zero, title="t", colorbar="Δ", diverging=True)
    bar = next(t for t in fig.data if t.marker and t.marker.showscale)
    assert (bar.marker.cmin, bar.marker.cmax) == (-1.0, 1.0)


def test_the_pending_queue_spans_the_run_in_whole_needs():
    timeline = Timeline()
    from twin.events import IncidentPending

    fields = {f: None for f in IncidentPending.__dataclass_fields__}
    for t, n in ((100.0, 1), (200.0, 2), (300.0, 0)):
        timeline.append(t, IncidentPending(**{**fields, "pending": n}), source="response")
    timeline.flush()
    fig = report.pending_figure(timeline.table(), end_s=5400.0)
    x = list(fig.data[0].x)
    assert x[0] == 0 and x[-1] == 5400 / 60
    assert fig.layout.yaxis.dtick >= 1 and fig.layout.yaxis.tickformat == "d"


def test_the_k3i_map_names_few_things_in_text_and_many_on_hover(helsinki_city, monkeypatch):
    """A city's worth of sectors or incidents would cover the map with names (and cost the
    browser a text layout each at every moment): past ``MAP_LABELS_MAX`` a sector shows its
    status's sign and an incident its star; hover still names each one."""
    from twin import kpi

    status = pd.DataFrame({"sector": list(helsinki_city.sectors.index), "status": "aman"})

    def incidents(n):
        return pd.DataFrame(
            {
                "incident": [f"I{i:05d}" for i in range(n)],
                "incident_type": "crime",
                "priority": 2,
                "lat": 60.17,
                "lon": 24.94,
            }
        )

    def drawn(n):
        traces = report.k3i_traces(helsinki_city, status, incidents=incidents(n))
        names = traces[len(report.STATUS_STYLE)]
        stars = next(t for t in traces if t.get("marker", {}).get("symbol") == "star")
        return names["text"], stars["mode"], stars["hovertext"]

    labels, mode, hover = drawn(3)
    assert labels[0].startswith("<b>S01</b>") and mode == "markers+text"
    monkeypatch.setattr(report, "MAP_LABELS_MAX", 5)  # Helsinki's 10 sectors are "many"
    labels, mode, hover = drawn(6)
    assert set(labels) == {report.STATUS_STYLE["aman"][1]} and mode == "markers"
    assert len(hover) == 6 and hover[0].startswith("I00000 crime")
    assert kpi.NO_DATA in report.STATUS_STYLE
