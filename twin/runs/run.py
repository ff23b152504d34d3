"""Running a scenario: the run folder, its KPIs and its report.

The simulation itself runs in a worker process watched by a supervisor, so that a SUMO
crash cannot take the twin down (see :mod:`twin.runs.worker`).

What a run folder holds is described in :mod:`twin.runs.folder`, which reads it back.

The folder is written in a hidden temporary folder and renamed into place at the end, so
a run folder is either whole or, after a simulator crash, whole and marked incomplete.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from twin._errors import BundleError, InputError, TwinError
from twin._files import replacing_folder
from twin._sumo import sumo_version
from twin._version import __version__
from twin.city import BUILTIN, City, builtin_city
from twin.city.places import (
    CityNet,
    ResolvedEvent,
    ResolvedResponse,
    resolve_events,
    resolve_response,
)
from twin.runs.report import write_run_report
from twin.runs.worker import WorkerSpec, crashed_tail, pinpoint, supervise
from twin.scenario import Scenario, load_scenario
from twin.sim.timeline import stream_to_parquet
from twin.traffic.demand import scenario_demand


class RunIncomplete(TwinError):
    """The simulator crashed; the run folder holds the partial timeline, marked incomplete."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class RunResult:
    """What :func:`run_scenario` produced."""

    path: Path
    status: str  # "complete" or "incomplete"
    kpis: dict[str, Any]
    info: dict[str, Any]
    baseline: RunResult | None = None
    delta: dict[str, Any] = field(default_factory=dict)


def load_city(scenario: Scenario, *, scenario_dir: Path, cities_dir: Path = Path("cities")) -> City:
    """The scenario's city bundle; a built-in city (``jakarta``, ``helsinki``, ``default``)
    is built on first use into ``cities_dir``."""
    if scenario.city == "default" or scenario.city in BUILTIN:
        return builtin_city(scenario.city, cities_dir=cities_dir, progress=True)
    path = Path(scenario.city)
    if not path.is_absolute():
        candidates = [Path.cwd() / path, scenario_dir / path]
        path = next((p for p in candidates if (p / "manifest.json").exists()), candidates[0])
    try:
        return City.load(path)
    except BundleError as exc:
        raise BundleError(f"city {scenario.city!r} of the scenario: {exc}") from exc


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    out: Path | None = None,
    seed: int | None = None,
    baseline: bool = False,
    simulator: str | None = None,
    progress: bool = True,
    source: str | None = None,
    scenario_dir: Path | None = None,
    until: float | None = None,
) -> RunResult:
    """Run a scenario into a run folder; see the module docstring.

    Parameters
    ----------
    scenario
        A :class:`~twin.scenario.Scenario` or the path of a scenario file.
    out
        The run folder; ``runs/<scenario name>`` by default.
    seed
        Overrides the scenario's seed.
    baseline
        Also run the same seed without the road events, into ``<out>/baseline``, and
        report the difference.
    simulator
        Overrides the scenario's ``traffic.simulator`` (``libsumo`` or ``traci``).
    until
        Stop after this many simulated seconds, with everything made for the scenario's
        whole duration (its demand above all): a fork of a live twin ends where it was asked
        to, and is the same run as the live twin until then.

    Raises
    ------
    ScenarioError
        The scenario is invalid or names places the city does not have; nothing is written.
    RunIncomplete
        The simulator crashed; the run folder keeps the partial timeline.
    """
    scenario_dir = scenario_dir or Path.cwd()
    if not isinstance(scenario, Scenario):
        source = source or str(scenario)
        scenario_dir = Path(scenario).resolve().parent
        scenario = load_scenario(scenario)
    source = source or scenario.name
    updates: dict[str, Any] = {}
    if seed is not None:
        updates["seed"] = seed
    if simulator is not None and scenario.traffic is not None:
        updates["traffic"] = scenario.traffic.model_copy(update={"simulator": simulator})
    scenario = scenario.model_copy(update=updates)
    city = load_city(scenario, scenario_dir=scenario_dir)
    net = CityNet(city)  # read once: places and sectors both come from it
    events = resolve_events(
        scenario, city, source=source, net=net
    )  # a ScenarioError writes nothing
    response = resolve_response(
        scenario, city, source=source, net=net, events=events, folder=scenario_dir
    )
    extra_routes = _extra_routes(scenario, scenario_dir, source)
    sensors = _sensor_files(scenario, scenario_dir, source, city)
    out = out or Path("runs") / scenario.name
    result = _run_once(
        scenario,
        city,
        events,
        out=out,
        progress=progress,
        label=scenario.name,
        extra_routes=extra_routes,
        edge_sector=net.sector_of_edge,
        response=response,
        sensors=sensors,
        until=until,
    )
    if baseline and result.status == "complete":
        base_scenario = scenario.model_copy(update={"events": []})
        base_response = resolve_response(
            base_scenario, city, source=source, net=net, events=[], folder=scenario_dir
        )
        base = _run_once(
            base_scenario,
            city,
            [],
            out=out / "baseline",
            progress=progress,
            label="baseline",
            extra_routes=extra_routes,
            edge_sector=net.sector_of_edge,
            response=base_response,
        )
        result.baseline = base
        result.delta = _delta(result.kpis, base.kpis)
        kpis_doc = {"kpis": result.kpis, "baseline": base.kpis, "delta_vs_baseline": result.delta}
        (out / "kpis.json").write_text(
            json.dumps(kpis_doc, indent=2, default=str) + "\n", encoding="utf-8"
        )
        write_run_report(out, scenario, city, baseline_dir=out / "baseline", delta=result.delta)
    if result.status != "complete":
        raise RunIncomplete(result.info["error"], result)
    return result


def check_scenario(scenario: Scenario, city: City, *, scenario_dir: Path, source: str) -> None:
    """What :func:`run_scenario` checks before it writes anything: every place, unit base
    and file of the scenario, on this city.

    Raises
    ------
    ScenarioError
        Naming each problem with its field path.
    """
    net = CityNet(city)
    events = resolve_events(scenario, city, source=source, net=net)
    resolve_response(scenario, city, source=source, net=net, events=events, folder=scenario_dir)
    _extra_routes(scenario, scenario_dir, source)
    _sensor_files(scenario, scenario_dir, source, city)


def run_variants(
    scenario: Scenario | str | Path,
    *,
    out: Path | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> tuple[list[RunResult], Any, Path]:
    """Run every variant of a scenario into ``<out>/<variant>`` (same seed, so the
    variants differ only in what they change) and write a comparison report.

    Returns the runs, the KPI table (:func:`twin.runs.compare.compare_runs`) and the
    comparison report's path."""
    from twin.runs.compare import compare_runs

    source = str(scenario) if not isinstance(scenario, Scenario) else scenario.name
    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if not base.variants:
        raise InputError(f"{source}: the scenario has no variants to compare")
    out = out or Path("runs") / base.name
    scenario_path = None if isinstance(scenario, Scenario) else Path(scenario)
    results = []
    folder = scenario_path.resolve().parent if scenario_path else None  # relative paths' base
    for name in base.variants:
        results.append(
            run_scenario(
                base.variant(name),
                out=out / name,
                seed=seed,
                progress=progress,
                source=source,
                scenario_dir=folder,
            )
        )
    table, report = compare_runs([r.path for r in results], out=out / "comparison.html")
    return results, table, report


# -- one run --------------------------------------------------------------------------------


def _run_once(
    scenario: Scenario,
    city: City,
    events: list[ResolvedEvent],
    *,
    out: Path,
    progress: bool,
    label: str,
    edge_sector: dict[str, str],
    extra_routes: list[Path] | None = None,
    response: ResolvedResponse | None = None,
    sensors: tuple[str, str, str] | None = None,
    until: float | None = None,
) -> RunResult:
    with replacing_folder(out, marker="run.json", what="a run folder") as tmp:
        sumo_dir = tmp / "sumo"
        sumo_dir.mkdir(parents=True, exist_ok=True)
        routes = scenario_demand(scenario, city, events, sumo_dir) if scenario.traffic else []
        for i, extra in enumerate(extra_routes or []):  # copied: the run folder stands alone
            routes.append(Path(shutil.copy(extra, sumo_dir / f"extra{i:02d}_{extra.name}")))
        spec = WorkerSpec(
            scenario_json=scenario.model_dump_json(),
            city_path=str(city.path.resolve()),
            net_file=str(city.net_path.resolve()),
            routes=[str(p) for p in routes],
            events=events,
            edge_sector=edge_sector,
            workdir=str(sumo_dir),
            stream=str(tmp / "timeline.arrows"),
            response=response,
            sensors=sensors,
            until=until,
        )
        started = time.perf_counter()
        outcome = supervise(spec, scenario, progress=progress, label=label)
        wall = time.perf_counter() - started
        if (
            not outcome["ok"]
            and not outcome.get("failed")
            and scenario.traffic is not None
            and outcome["until"] > outcome["t"] + scenario.traffic.step_length
        ):
            outcome = pinpoint(spec, scenario, outcome, tmp)
        if outcome.get("failed") and outcome["t"] == 0:  # refused at start: bad input, keep nothing
            what = (
                "SUMO refused the scenario's input"
                if scenario.traffic and not outcome.get("setup")
                else "the run could not start"
            )
            raise InputError(f"{scenario.name}: {what}: {outcome['detail']}")
        status = "complete" if outcome["ok"] else "incomplete"
        result = write_run_files(
            tmp,
            scenario,
            city,
            status=status,
            error=outcome.get("error", ""),
            reached=float(outcome.get("t", 0.0)),
            wall=wall,
            tail=None
            if outcome["ok"]
            else lambda kinds, seq: crashed_tail(outcome, sumo_dir, kinds, seq),
        )
        return RunResult(path=out, status=status, kpis=result.kpis, info=result.info)


def write_run_files(
    folder: Path,
    scenario: Scenario,
    city: City,
    *,
    status: str,
    error: str,
    reached: float,
    wall: float,
    tail: Any = None,
    extra: dict[str, Any] | None = None,
) -> RunResult:
    """Write a run folder's files from its timeline's Arrow stream (``timeline.arrows``,
    removed after): the Parquet timeline with its audit chain, ``run.json``, the KPIs and
    their tables, ``scenario.yaml`` and the report. A what-if run and an exercise alike.
    ``extra`` adds fields to ``run.json``."""
    timeline = folder / "timeline.parquet"
    written = stream_to_parquet(  # row group by row group: never all in memory
        folder / "timeline.arrows",
        timeline,
        {
            "scenario": scenario.name,
            "seed": str(scenario.seed),
            "status": status,
            "start": scenario.start.isoformat(),
            "twin": __version__,
        },
        tail=tail,
    )
    (folder / "timeline.arrows").unlink(missing_ok=True)
    info = {
        "scenario": scenario.name,
        "status": status,
        "error": error,
        "simulated_s": reached,
        "simulated_until": (scenario.start + timedelta(seconds=reached)).isoformat(),
        "duration_s": scenario.duration,
        "wall_s": round(wall, 2),
        "realtime_factor": round(reached / wall, 1) if wall > 0 else None,
        "events": written.rows,
        "timeline_sha256": written.sha256,
        "audit": written.audit,  # the audit chain's head: twin audit verify
        "seed": scenario.seed,
        "simulator": _simulator(scenario),
        "city": {
            "name": city.name,
            "path": str(city.path),
            "cache_key": city.manifest.cache_key,
            "driving_side": city.manifest.driving_side["side"],
        },
        "vehicle_mix": (
            {
                "shares": scenario.traffic.demand.mix,
                "source": scenario.traffic.demand.mix_source or "not stated",
                "sublane_m": scenario.traffic.sublane_m(),
            }
            if scenario.traffic and scenario.traffic.demand.mix
            else None
        ),
        "versions": _versions(),
        **(extra or {}),
    }
    from twin import kpi

    kpis = kpi.summary(timeline)  # DuckDB reads the file
    kpi.network_over_time(timeline).to_parquet(folder / "network.parquet", index=False)
    kpi.sector_over_time(timeline).to_parquet(folder / "sectors.parquet", index=False)
    (folder / "kpis.json").write_text(
        json.dumps({"kpis": kpis}, indent=2, default=str) + "\n", encoding="utf-8"
    )
    _write_scenario(folder / "scenario.yaml", scenario, info)
    (folder / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if scenario.outputs.report:
        write_run_report(folder, scenario, city)
    return RunResult(path=folder, status=status, kpis=kpis, info=info)


def _simulator(scenario: Scenario) -> str:
    return scenario.traffic.simulator if scenario.traffic is not None else "none"


def _sensor_files(
    scenario: Scenario, scenario_dir: Path, source: str, city: City
) -> tuple[str, str, str] | None:
    """The sensors file, the replay or journal file, and which of the two it is, found and
    checked before the run starts."""
    from twin.scenario import ScenarioError
    from twin.sensors.registry import load_registry

    if scenario.sensors is None:
        return None
    paths: list[Path | None] = []
    feed = "replay" if scenario.sensors.replay is not None else "journal"
    for field_name in ("devices", feed):
        name = getattr(scenario.sensors, field_name)
        if name is None:  # no registered devices: only calls, alerts and unit positions
            paths.append(None)
            continue
        path = Path(name) if Path(name).is_absolute() else scenario_dir / name
        if not path.is_file():
            raise ScenarioError(source, [(f"sensors.{field_name}", f"file not found: {path}")])
        paths.append(path.resolve())
    load_registry(paths[0], city)  # its problems, named, before anything is written
    return str(paths[0] or ""), str(paths[1]), feed


def _extra_routes(scenario: Scenario, scenario_dir: Path, source: str) -> list[Path]:
    from twin.scenario import ScenarioError

    found, problems = [], []
    for i, name in enumerate(scenario.traffic.route_files if scenario.traffic else []):
        path = Path(name) if Path(name).is_absolute() else scenario_dir / name
        if not path.is_file():
            problems.append((f"traffic.route_files[{i}]", f"file not found: {path}"))
        found.append(path)
    if problems:
        raise ScenarioError(source, problems)
    return found


# -- outputs --------------------------------------------------------------------------------


def _write_scenario(path: Path, scenario: Scenario, info: dict[str, Any]) -> None:
    doc = json.loads(scenario.model_dump_json())
    v = info["versions"]
    header = (
        f"# Scenario as run by smart-policing-twin {v['twin']} (SUMO {v['sumo']}, osmnx {v['osmnx']}, "
        f"simpy {v['simpy']}, python {v['python']}).\n# City bundle {info['city']['name']} (cache key "
        f"{info['city']['cache_key'][:12]}). Re-run with: twin run {path.name}\n"
    )
    path.write_text(
        header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def _delta(kpis: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in kpis.items():
        b = base.get(key)
        if (
            isinstance(value, int | float)
            and isinstance(b, int | float)
            and not isinstance(value, bool)
        ):
            out[key] = round(value - b, 3)
    return out


def _versions() -> dict[str, str]:
    import platform

    return {
        "twin": __version__,
        "sumo": sumo_version(),
        "osmnx": version("osmnx"),
        "simpy": version("simpy"),
        "python": platform.python_version(),
    }
