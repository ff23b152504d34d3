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
    """KPI table of several runs (differences against the first) and the report's path."""
    if len(folders) < 2:
        raise InputError("compare needs two or more run folders")
    infos = [Run.load(f).info for f in folders]
    names = _unique_names(folders, infos)
    summaries = {
        n: kpi.summary(f / "timeline.parquet") for n, f in zip(names, folders, strict=True)
    }
    table = kpi.compare(summaries, reference=names[0])
    out = out or Path(f"compare-{names[0]}-vs-{'-'.join(names[1:])}.html")
    runs = {n: f / "timeline.parquet" for n, f in zip(names, folders, strict=True)}
    sections: list[tuple[str, Any]] = [
        ("Key figures", report.kpi_table_html(table)),
        (
            "Speed and congestion over time",
            report.speed_figure(
                runs,
                start=pd.Timestamp(infos[0]["simulated_until"])
                - pd.Timedelta(seconds=infos[0]["simulated_s"]),
            ),
        ),
    ]
    cities = {i["city"]["cache_key"] for i in infos}
    if len(cities) == 1:
        city = City.load(infos[0]["city"]["path"])
        base = report.mean_sector_tti(runs[names[0]])
        for name in names[1:]:
            diff = report.mean_sector_tti(runs[name]).sub(base, fill_value=0)
            sections.append(
                (
                    f"{name} minus {names[0]}, by sector",
                    report.sector_map(
                        city,
                        diff,
                        title=f"Travel-time index: {name} minus {names[0]}",
                        colorbar="ΔTTI",
                        diverging=True,
                    ),
                )
            )
    else:
        sections.append(
            (
                "Maps",
                "<p>The runs are on different city bundles, so no difference map is drawn.</p>",
            )
        )
    sections.append(("Vehicles delayed", report.delay_histogram(runs)))
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
