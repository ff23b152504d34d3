"""A run's report: one self-contained HTML page of its key figures, maps and charts,
written into the run folder (``report.html``) and read offline."""

from __future__ import annotations

import html as _html
from pathlib import Path
from typing import Any

import pandas as pd

from twin import kpi, report
from twin.city import City
from twin.runs.folder import Run
from twin.scenario import Scenario


def write_run_report(
    folder: Path,
    scenario: Scenario,
    city: City,
    *,
    baseline_dir: Path | None = None,
    delta: dict[str, Any] | None = None,
) -> None:
    """The run's ``report.html``: its key figures, and the maps and figures of each part of
    the scenario it has (traffic, response, community), against ``baseline_dir`` if given."""
    timeline = folder / "timeline.parquet"
    # the baseline first, as in the terminal: the reference, then the run, then the change
    runs: dict[str, Any] = {}
    summaries: dict[str, Any] = {}
    if baseline_dir is not None:
        runs["baseline"] = baseline_dir / "timeline.parquet"
        summaries["baseline"] = kpi.summary(runs["baseline"])
    runs[scenario.name] = timeline
    summaries[scenario.name] = kpi.summary(timeline)
    info = Run.load(folder).info
    start = pd.Timestamp(scenario.start)
    events = kpi.road_events(timeline)
    intro = (
        f"<p>{_html.escape(scenario.description.strip())}</p>"
        f"<p>City <b>{_html.escape(city.name)}</b>, {scenario.start:%A %d %B %Y, %H:%M} (UTC{scenario.start:%z}) for "
        f"{scenario.duration / 60:.0f} minutes, seed {scenario.seed}, "
        + (
            f"SUMO {scenario.traffic.mode} via {scenario.traffic.simulator}"
            if scenario.traffic
            else "no traffic simulation"
        )
        + f". Simulated {info['simulated_s'] / 60:.0f} min in {info['wall_s']} s "
        f"({info['realtime_factor']}× real time).</p>"
    )
    if info["status"] != "complete":
        intro += f"<p class='warn'><b>Incomplete run.</b> {_html.escape(info['error'])}</p>"
    if info.get("audit"):  # copied here, it lets anyone check the run later
        intro += (
            f"<p class='audit'>Made from {info['audit']['records']:,} records, audit chain "
            f"head <code id='audit-head'>{info['audit']['head']}</code> (check with "
            "<code>twin audit verify RUN --head HEAD</code>).</p>"
        )
    sections: list[tuple[str, Any]] = [
        (
            "Key figures",
            report.kpi_table_html(
                kpi.compare(summaries, reference="baseline" if baseline_dir else None)
            ),
        ),
    ]
    if scenario.traffic is not None:
        sections += [
            (
                "Speed and congestion over time",
                report.speed_figure(
                    runs,
                    start=start,
                    events=events,
                    reference="baseline" if baseline_dir is not None else None,
                ),
            ),
            (
                "Congestion by sector",
                report.sector_map(
                    city,
                    report.mean_sector_tti(timeline),
                    title="Mean travel-time index per sector",
                    colorbar="TTI",
                ),
            ),
        ]
    if scenario.response is not None:
        answers = kpi.answers_by_number(timeline)
        sections += [
            ("Calls by number", _table(answers, shares=["answered_in_target", "abandoned"])),
            (
                "Response time by agency and priority",
                _table(
                    kpi.response_times(timeline),
                    shares=["within_target"],
                    minutes=["p50_s", "p90_s"],
                ),
            ),
            (
                "Response time by sector",
                report.sector_map(
                    city,
                    kpi.response_by_sector(timeline) / 60,
                    title="Median response time per sector (call to first unit on scene), minutes",
                    colorbar="minutes",
                    digits=1,
                ),
            ),
            ("Unit utilisation", report.utilisation_figure(timeline)),
            (
                "Pending queue",
                report.pending_figure(timeline, start=start, end_s=info["simulated_s"]),
            ),
        ]
    if scenario.community is not None:
        safety = kpi.safety_over_time(timeline)
        last = (
            safety[safety["t"] == safety["t"].max()].set_index("sector")["rasa_aman"]
            if len(safety)
            else None
        )
        crimes = safety.groupby("sector")["crimes"].sum() if len(safety) else None
        sections += [
            ("Rasa aman over time", report.safety_figure(timeline, start=start)),
        ]
        if last is not None:
            sections += [
                (
                    "Rasa aman by sector",
                    report.sector_map(
                        city,
                        last,
                        title="Rasa aman at the end of the run (0-100, higher is safer)",
                        colorbar="0-100",
                        better="higher",
                        digits=0,
                    ),
                ),
                (
                    "Crime by sector",
                    report.sector_map(
                        city,
                        crimes,
                        title="Crimes committed per sector",
                        colorbar="crimes",
                        digits=0,
                    ),
                ),
            ]
    if scenario.service is not None:
        sections += _hall_sections(timeline, start)
    if baseline_dir is not None and scenario.traffic is not None:
        diff = report.mean_sector_tti(timeline).sub(
            report.mean_sector_tti(runs["baseline"]), fill_value=0
        )
        sections.append(
            (
                "Difference to the baseline by sector",
                report.sector_map(
                    city,
                    diff,
                    title="Travel-time index: scenario minus baseline",
                    colorbar="ΔTTI",
                    diverging=True,
                ),
            )
        )
    if len(events):
        table = events.assign(
            start=lambda d: [
                (start + pd.Timedelta(seconds=s)).strftime("%H:%M") for s in d.start_s
            ],
            end=lambda d: [
                "after the run"
                if pd.isna(s)
                else (start + pd.Timedelta(seconds=s)).strftime("%H:%M")
                for s in d.end_s
            ],
        )[
            [
                "event_id",
                "event_type",
                "roads",
                "lanes_closed",
                "start",
                "end",
                "rerouted",
                "cut_short",
            ]
        ]
        table["lanes_closed"] = table["lanes_closed"].map(lambda n: "all" if n == 0 else n)
        table.columns = [IMPACT_COLUMNS[c] for c in table.columns]
        sections.append(("Incident impact", table.to_html(index=False, border=0)))
    if scenario.traffic is not None:
        reference = "baseline" if baseline_dir is not None else None
        sections.append(("Vehicles delayed", report.delay_histogram(runs, reference=reference)))
    report.write_html(
        folder / "report.html",
        title=f"What-if run: {scenario.name}",
        intro=intro,
        sections=sections,
    )


#: The incident-impact table's columns, as a planner reads them.
IMPACT_COLUMNS = {
    "event_id": "Event",
    "event_type": "Type",
    "roads": "Roads",
    "lanes_closed": "Lanes closed",
    "start": "From",
    "end": "Until",
    "rerouted": "Vehicles rerouted",
    "cut_short": "Trips cut short",
}


def _table(frame: Any, *, shares: list[str], minutes: tuple[str, ...] | list[str] = ()) -> str:
    """A small HTML table: shares as percentages, response times in minutes (as the KPI
    table and the maps give them), other seconds rounded, headings in words."""
    out = frame.copy()
    names = {}
    for col in out.columns:
        if col in shares:
            out[col] = out[col].map(lambda x: "–" if x is None or x != x else f"{x:.0%}")
        elif col in minutes:
            out[col] = out[col].map(lambda x: "–" if x is None or x != x else f"{x / 60:,.1f}")
            names[col] = col.removesuffix("_s").replace("p", "P", 1) + " (min)"
        elif col.endswith("_s"):
            out[col] = out[col].map(lambda x: "–" if x is None or x != x else f"{x:,.1f}")
            names[col] = col.removesuffix("_s").replace("_", " ") + " (s)"
    out.columns = [names.get(c, c.replace("_", " ")) for c in out.columns]
    return out.to_html(index=False, border=0)


def _hall_sections(timeline: Any, start: pd.Timestamp) -> list[tuple[str, Any]]:
    """The service hall: who came and how they left, the minutes against each service's
    standard, the counters, the queues through the day and the standard kept by hour."""
    from twin.report.hall import counter_rows, kept_figure, minute_rows, queue_figure, visitor_rows

    timeline = kpi.connect(timeline)
    services = kpi.service_table(timeline)
    return [
        (
            "Service hall: visitors",
            pd.DataFrame(visitor_rows(services)).to_html(index=False, border=0),
        ),
        (
            "Service hall: minutes (of those served)",
            pd.DataFrame(minute_rows(services)).to_html(index=False, border=0),
        ),
        (
            "Service hall: counters",
            pd.DataFrame(counter_rows(kpi.counter_table(timeline))).to_html(index=False, border=0),
        ),
        ("Service hall: queues", queue_figure(kpi.queue_series(timeline), start=start)),
        (
            "Service hall: the standard by hour",
            kept_figure(kpi.standard_by_hour(timeline), start=start),
        ),
    ]
