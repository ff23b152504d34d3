"""Comparing runs: KPIs side by side with their differences, and a comparison report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from twin import kpi, report
from twin._errors import InputError
from twin.city import City
from twin.runs.folder import Run


def compare_runs(folders: list[Path], *, out: Path | None = None) -> tuple[pd.DataFrame, Path]:
    """KPI table of several runs (differences against the first) and the report's path.

    The report shows the parts of the twin the runs have: traffic (speed over time, the
    change in congestion by sector, delays), the community (rasa aman over time, the change
    in crime and in rasa aman by sector). It is written to ``out``, by default into the
    first run's folder (``compare-<other run>.html``, or ``compare-<n>-runs.html``), never
    into the current folder."""
    if len(folders) < 2:
        raise InputError("compare needs two or more run folders")
    infos = [Run.load(f).info for f in folders]
    names = _unique_names(folders, infos)
    summaries = {
        n: kpi.summary(f / "timeline.parquet") for n, f in zip(names, folders, strict=True)
    }
    table = kpi.compare(summaries, reference=names[0])
    other = Path(names[1]).name if len(names) == 2 else f"{len(names) - 1}-runs"
    out = out or folders[0] / f"compare-{other}.html"
    runs = {n: f / "timeline.parquet" for n, f in zip(names, folders, strict=True)}
    start = pd.Timestamp(infos[0]["simulated_until"]) - pd.Timedelta(
        seconds=infos[0]["simulated_s"]
    )
    traffic = all(len(kpi.network_over_time(t)) for t in runs.values())
    community = all(len(kpi.safety_over_time(t)) for t in runs.values())
    sections: list[tuple[str, Any]] = [("Key figures", report.kpi_table_html(table))]
    if traffic:
        sections.append(
            (
                "Speed and congestion over time",
                report.speed_figure(runs, start=start, reference=names[0]),
            )
        )
    if community:
        sections.append(
            (
                "Rasa aman over time",
                report.safety_compare_figure(runs, start=start, reference=names[0]),
            )
        )
    same_city = len({i["city"]["cache_key"] for i in infos}) == 1
    if same_city and (traffic or community):
        city = City.load(infos[0]["city"]["path"])
        for name in names[1:]:
            sections += _difference_maps(city, runs, names[0], name, traffic, community)
    elif not same_city:
        sections.append(
            (
                "Maps",
                "<p>The runs are on different city bundles, so no difference map is drawn.</p>",
            )
        )
    if traffic:
        sections.append(("Vehicles delayed", report.delay_histogram(runs, reference=names[0])))
    incomplete = [n for n, i in zip(names, infos, strict=True) if i["status"] != "complete"]
    intro = f"<p>Runs compared: {', '.join(names)}; differences are against {names[0]}.</p>"
    for warning in run_warnings(names, infos):
        intro += f"<p class='warn'>{warning}</p>"
    if incomplete:
        intro += (
            f"<p class='warn'>Incomplete runs (the simulator crashed): {', '.join(incomplete)}.</p>"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    report.write_html(
        out, title=f"Comparison: {' vs '.join(names)}", intro=intro, sections=sections
    )
    return table, out


def _difference_maps(
    city: City, runs: dict[str, Path], ref: str, name: str, traffic: bool, community: bool
) -> list[tuple[str, Any]]:
    """Maps of ``name`` minus ``ref`` by sector, for the parts of the twin both runs have."""
    maps: list[tuple[str, Any]] = []
    if traffic:
        diff = report.mean_sector_tti(runs[name]).sub(
            report.mean_sector_tti(runs[ref]), fill_value=0
        )
        maps.append(
            (
                f"Congestion: {name} minus {ref}, by sector",
                report.sector_map(
                    city,
                    diff,
                    title=f"Mean travel-time index: {name} minus {ref}",
                    colorbar="ΔTTI",
                    diverging=True,
                ),
            )
        )
    if community:
        end = {n: kpi.safety_over_time(runs[n]) for n in (ref, name)}
        crimes = {n: f.groupby("sector")["crimes"].sum() for n, f in end.items()}
        last = {
            n: f[f["t"] == f["t"].max()].set_index("sector")["rasa_aman"] for n, f in end.items()
        }
        maps += [
            (
                f"Crime: {name} minus {ref}, by sector",
                report.sector_map(
                    city,
                    crimes[name].sub(crimes[ref], fill_value=0),
                    title=f"Crimes committed: {name} minus {ref}",
                    colorbar="Δ crimes",
                    diverging=True,
                    digits=0,
                ),
            ),
            (
                f"Rasa aman: {name} minus {ref}, by sector",
                report.sector_map(
                    city,
                    last[name].sub(last[ref], fill_value=0),
                    title=f"Rasa aman at the end of the run: {name} minus {ref}",
                    colorbar="Δ 0-100",
                    better="higher",
                    diverging=True,
                    digits=1,
                ),
            ),
        ]
    return maps


def run_warnings(names: list[str], infos: list[dict[str, Any]]) -> list[str]:
    """What makes a comparison unfair: different durations, or different cities."""
    out = []
    durations = {i["duration_s"] for i in infos}
    if len(durations) > 1:
        lengths = ", ".join(
            f"{n} {i['duration_s'] / 60:.0f} min" for n, i in zip(names, infos, strict=True)
        )
        out.append(
            f"The runs last different times ({lengths}): totals such as trips and delay are not comparable."
        )
    if len({i["city"]["cache_key"] for i in infos}) > 1:
        out.append("The runs are on different city bundles.")
    return out


def _unique_names(folders: list[Path], infos: list[dict[str, Any]]) -> list[str]:
    names = [f.name for f in folders]
    if len(set(names)) < len(names):
        names = [str(f) for f in folders]
    return names
