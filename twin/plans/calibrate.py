"""Make the simulated traffic follow the counts the detectors saw: routeSampler and GEH.

Given a scenario and observed counts (a live twin's history, or a replayed file), the twin
rebuilds the demand with SUMO's ``routeSampler``:

1. candidate routes: three times the scenario's own random demand, so that every counted
   road has routes through it;
2. routeSampler picks routes, hour by hour, until the vehicles entering each counted road
   match the counts;
3. the scenario's own vehicles that pass no detector stay as they were (background
   traffic where nothing is counted), the rest are replaced by the sampled ones;
4. SUMO runs both demands, the scenario's and the calibrated one, and each detector-hour's
   simulated count is compared with the observed one by the GEH statistic,
   GEH = sqrt(2 (M - C)^2 / (M + C)) for hourly flows M (model) and C (count). GEH < 5 on at
   least 85 % of them is the accepted standard for a calibrated model.

The calibrated routes go in ``<out>/calibrated.rou.xml``: use it as the scenario's
``traffic.route_files`` with a demand of 0 vehicles an hour.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin._errors import InputError, SumoError
from twin._sumo import run_tool, sumo_env, sumo_home
from twin.kpi import GEH_LIMIT, geh_statistic


def observed_counts(db: Path, registry: Any, scenario: Any) -> pd.DataFrame:
    """Hourly counts per detector from a live twin's history, on the scenario's clock:
    ``sensor, edge, begin_s, end_s, count`` (hours the counts cover fully)."""
    import duckdb

    if not Path(db).exists():
        raise InputError(f"{db}: no live twin history here")
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT sensor, observed_at, interval_s, vehicles FROM counts ORDER BY observed_at"
        ).df()
    if rows.empty:
        raise InputError(f"{db}: holds no traffic counts")
    start = pd.Timestamp(scenario.start)
    rows["end_s"] = (
        pd.to_datetime(rows["observed_at"], utc=True) - start.tz_convert("UTC")
    ).dt.total_seconds()
    rows["hour"] = np.floor((rows["end_s"] - rows["interval_s"]) / 3600).astype(int)
    rows = rows[(rows["hour"] >= 0) & (rows["end_s"] <= scenario.duration + 1e-6)]
    grouped = (
        rows.groupby(["sensor", "hour"])
        .agg(count=("vehicles", "sum"), covered=("interval_s", "sum"))
        .reset_index()
    )
    grouped = grouped[grouped["covered"] >= 3600 - 1e-6]  # whole hours only
    grouped["edge"] = [registry.sensors[s].edge for s in grouped["sensor"]]
    grouped["begin_s"] = grouped["hour"] * 3600.0
    grouped["end_s"] = grouped["begin_s"] + 3600.0
    if grouped.empty:
        raise InputError(f"{db}: no detector has a whole hour of counts inside the scenario's time")
    return grouped[["sensor", "edge", "begin_s", "end_s", "count"]].reset_index(drop=True)


@dataclass
class Calibration:
    table: pd.DataFrame  # sensor, hour, observed, before, after, geh_before, geh_after
    share_before: float
    share_after: float
    routes: Path


def calibrate(
    scenario: Any, city: Any, counts: pd.DataFrame, out: Path, *, seed: int = 0
) -> Calibration:
    """Rebuild the scenario's demand to follow ``counts`` (see the module docstring)."""
    from twin.traffic.demand import scenario_demand  # the scenario's own random demand

    if scenario.traffic is None:
        raise InputError(f"{scenario.name}: calibration needs a scenario with traffic")
    out.mkdir(parents=True, exist_ok=True)
    base = scenario_demand(scenario, city, [], out)
    candidates_scenario = scenario.model_copy(
        update={
            "traffic": scenario.traffic.model_copy(
                update={
                    "demand": scenario.traffic.demand.model_copy(
                        update={
                            "veh_per_hour": {
                                h: 3 * v for h, v in scenario.traffic.demand.veh_per_hour.items()
                            }
                        }
                    )
                }
            )
        }
    )
    cand_dir = out / "candidates"
    cand_dir.mkdir(exist_ok=True)
    candidates = scenario_demand(candidates_scenario, city, [], cand_dir)
    observed = out / "observed.edgedata.xml"
    _write_edgedata(counts, observed)
    sampled = out / "sampled.rou.xml"
    proc = subprocess.run(
        [
            sys.executable,
            str(sumo_home() / "tools" / "routeSampler.py"),
            "-r",
            ",".join(map(str, candidates)),
            "-d",
            str(observed),
            "-o",
            str(sampled),
            "--seed",
            str(seed),
            "--prefix",
            "cal",
            "--attributes",
            'departLane="best" departSpeed="max"',
        ],
        env=sumo_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not sampled.exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
        raise SumoError(f"routeSampler failed:\n{tail}")
    counted = set(counts["edge"])
    background = out / "background.rou.xml"
    _keep_vehicles(base, background, avoid=counted)
    calibrated = out / "calibrated.rou.xml"
    _merge_routes([background, sampled], calibrated)
    end = scenario.duration
    before = _simulate(city, base, out / "before", end)
    after = _simulate(city, [calibrated], out / "after", end)
    table = counts.rename(columns={"count": "observed"}).copy()
    table["hour"] = [
        (pd.Timestamp(scenario.start) + timedelta(seconds=b)).strftime("%H:%M")
        for b in table["begin_s"]
    ]
    table["before"] = [
        before.get((e, b), 0) for e, b in zip(table["edge"], table["begin_s"], strict=True)
    ]
    table["after"] = [
        after.get((e, b), 0) for e, b in zip(table["edge"], table["begin_s"], strict=True)
    ]
    table["geh_before"] = geh_statistic(table["before"], table["observed"])
    table["geh_after"] = geh_statistic(table["after"], table["observed"])
    return Calibration(
        table[["sensor", "hour", "observed", "before", "after", "geh_before", "geh_after"]],
        float((table["geh_before"] < GEH_LIMIT).mean()),
        float((table["geh_after"] < GEH_LIMIT).mean()),
        calibrated,
    )


def _write_edgedata(counts: pd.DataFrame, path: Path) -> None:
    lines = ["<data>"]
    for (b, e), part in counts.groupby(["begin_s", "end_s"]):
        lines.append(f'  <interval id="h{int(b // 3600):02d}" begin="{b:g}" end="{e:g}">')
        lines += [
            f'    <edge id="{edge}" entered="{int(n)}"/>'
            for edge, n in zip(part["edge"], part["count"], strict=True)
        ]
        lines.append("  </interval>")
    lines.append("</data>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_VEHICLE = re.compile(r"<vehicle\b.*?</vehicle>", re.S)
_EDGES = re.compile(r'<route edges="([^"]*)"')


def _keep_vehicles(routes: list[Path], out: Path, *, avoid: set[str]) -> None:
    """The vehicles of ``routes`` whose route passes none of ``avoid``, sorted by departure."""
    kept = []
    for path in routes:
        for block in _VEHICLE.findall(path.read_text(encoding="utf-8")):
            m = _EDGES.search(block)
            if m and not set(m[1].split()) & avoid:
                kept.append(block)
    _write_vehicles(kept, out)


def _merge_routes(files: list[Path], out: Path) -> None:
    blocks = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        blocks += _VEHICLE.findall(text)
    _write_vehicles(blocks, out)


def _write_vehicles(blocks: list[str], out: Path) -> None:
    def depart(block: str) -> float:
        m = re.search(r'depart="([\d.]+)"', block)
        return float(m[1]) if m else 0.0

    body = "\n".join(sorted(blocks, key=depart))
    out.write_text(f"<routes>\n{body}\n</routes>\n", encoding="utf-8")


def _simulate(
    city: Any, routes: list[Path], folder: Path, end: float
) -> dict[tuple[str, float], int]:
    """Hourly vehicles entering each road, by plain SUMO (past the end, so late
    departures finish their hour)."""
    folder.mkdir(parents=True, exist_ok=True)
    add = folder / "hourly.add.xml"
    add.write_text(
        '<additional>\n  <edgeData id="hourly" period="3600" file="hourly.xml"/>\n</additional>\n'
    )
    run_tool(
        "sumo",
        [
            "-n",
            str(city.net_path),
            "-r",
            ",".join(map(str, routes)),
            "--additional-files",
            str(add),
            "--end",
            f"{math.ceil(end / 3600) * 3600:g}",
            "--no-step-log",
            "--no-warnings",
            "--ignore-route-errors",
            "--time-to-teleport",
            "300",
            "--seed",
            "1",
        ],
        timeout=3600,
    )
    from twin.traffic.observe import read_flows

    flows = read_flows(folder / "hourly.xml")
    return {
        (e, t - i): n
        for t, e, n, i in zip(
            flows["t"], flows["edge"], flows["entered"], flows["interval_s"], strict=True
        )
    }
