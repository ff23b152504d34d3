"""Running a scenario: a supervised worker process, a run folder, KPIs and a report.

Why a worker process: SUMO 1.27 and 1.28 can segfault (MEASURED.md: the bluelight device,
5 of 64 runs), and libsumo runs SUMO inside the Python process, so a crash kills it. The
twin therefore runs the simulation (the SimPy clock, its components and libsumo) in a
worker process that streams its timeline, batch by batch, to an Arrow file. This
process, the supervisor, shows progress, and when the worker dies it keeps every batch
written so far, adds the trips SUMO had recorded, marks the timeline incomplete and ends
the run with an error that names the simulated time. libsumo keeps its speed; a crash
costs at most the last minute of events.

A run folder (``runs/<name>/``) holds:

=====================  ============================================================
``scenario.yaml``      the scenario as run (seed included; versions in its header)
``run.json``           status, the simulated time reached, wall time, real-time factor,
                       timeline hash, versions, city
``timeline.parquet``   every event (query it with DuckDB; see ``twin.kpi``)
``kpis.json``          the KPI summary (and the difference to the baseline)
``network.parquet``,   KPI tables over time
``sectors.parquet``
``report.html``        the report, self-contained and offline
``sumo/``              routes, SUMO's log and trip records
``baseline/``          with ``--baseline``: the same run without the road events
=====================  ============================================================

The folder is written in a hidden temporary folder and renamed into place at the end, so
a run folder is either whole or, after a simulator crash, whole and marked incomplete.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from twin._errors import BundleError, InputError, TwinError
from twin._sumo import sumo_version
from twin._version import __version__
from twin.city import City, build_city
from twin.city.places import CityNet, ResolvedEvent, resolve_events
from twin.scenario import Scenario, load_scenario
from twin.sim.timeline import Timeline, content_hash, read_stream, write_parquet
from twin.traffic.demand import DemandPiece, random_routes

#: Exit status of a worker whose simulator crashed under traci (the worker survives it).
_CRASH_EXIT = 3


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
    """The scenario's city bundle; the default city is built on first use."""
    if scenario.city == "default":
        return build_city(out=cities_dir / "helsinki", progress=True).city
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

    Raises
    ------
    ScenarioError
        The scenario is invalid or names places the city does not have; nothing is written.
    RunIncomplete
        The simulator crashed; the run folder keeps the partial timeline.
    """
    scenario_dir = Path.cwd()
    if not isinstance(scenario, Scenario):
        source = source or str(scenario)
        scenario_dir = Path(scenario).resolve().parent
        scenario = load_scenario(scenario)
    source = source or scenario.name
    updates: dict[str, Any] = {}
    if seed is not None:
        updates["seed"] = seed
    if simulator is not None:
        updates["traffic"] = scenario.traffic.model_copy(update={"simulator": simulator})
    scenario = scenario.model_copy(update=updates)
    city = load_city(scenario, scenario_dir=scenario_dir)
    events = resolve_events(scenario, city, source=source)  # a ScenarioError writes nothing
    extra_routes = _extra_routes(scenario, scenario_dir, source)
    out = out or Path("runs") / scenario.name
    result = _run_once(
        scenario,
        city,
        events,
        out=out,
        progress=progress,
        label=scenario.name,
        extra_routes=extra_routes,
    )
    if baseline and result.status == "complete":
        base_scenario = scenario.model_copy(update={"events": []})
        with _replace_folder(out / "baseline") as tmp:
            base = _run_once(
                base_scenario, city, [], out=tmp, progress=progress, label="baseline", in_place=True,
                extra_routes=extra_routes,
            )  # fmt: skip
        base.path = out / "baseline"
        result.baseline = base
        result.delta = _delta(result.kpis, base.kpis)
        kpis_doc = {"kpis": result.kpis, "baseline": base.kpis, "delta_vs_baseline": result.delta}
        (out / "kpis.json").write_text(
            json.dumps(kpis_doc, indent=2, default=str) + "\n", encoding="utf-8"
        )
        _write_run_report(out, scenario, city, baseline_dir=out / "baseline", delta=result.delta)
    if result.status != "complete":
        raise RunIncomplete(result.info["error"], result)
    return result


# -- one run --------------------------------------------------------------------------------


def _run_once(
    scenario: Scenario,
    city: City,
    events: list[ResolvedEvent],
    *,
    out: Path,
    progress: bool,
    label: str,
    in_place: bool = False,
    extra_routes: list[Path] | None = None,
) -> RunResult:
    with contextlib.ExitStack() as stack:
        tmp = out if in_place else stack.enter_context(_replace_folder(out))
        sumo_dir = tmp / "sumo"
        sumo_dir.mkdir(parents=True, exist_ok=True)
        net = CityNet(city)
        routes = _make_demand(scenario, city, events, sumo_dir)
        for i, extra in enumerate(extra_routes or []):  # copied: the run folder stands alone
            routes.append(Path(shutil.copy(extra, sumo_dir / f"extra{i:02d}_{extra.name}")))
        spec = _WorkerSpec(
            scenario_json=scenario.model_dump_json(),
            city_path=str(city.path.resolve()),
            net_file=str(city.net_path.resolve()),
            routes=[str(p) for p in routes],
            events=events,
            edge_sector=net.sector_of_edge,
            workdir=str(sumo_dir),
            stream=str(tmp / "timeline.arrows"),
        )
        started = time.perf_counter()
        outcome = _supervise(spec, scenario, progress=progress, label=label)
        wall = time.perf_counter() - started
        if (
            not outcome["ok"]
            and not outcome.get("failed")
            and outcome["until"] > outcome["t"] + scenario.traffic.step_length
        ):
            outcome = _pinpoint(spec, scenario, outcome, tmp)
        if outcome.get("failed") and outcome["t"] == 0:  # refused at start: bad input, keep nothing
            raise InputError(
                f"{scenario.name}: SUMO refused the scenario's input: {outcome['detail']}"
            )
        table = read_stream(tmp / "timeline.arrows")
        status = "complete" if outcome["ok"] else "incomplete"
        if not outcome["ok"]:
            table = _close_crashed_timeline(
                table, outcome, sumo_dir, traci=scenario.traffic.simulator == "traci"
            )
        reached = float(outcome.get("t", 0.0))
        info = {
            "scenario": scenario.name,
            "status": status,
            "error": outcome.get("error", ""),
            "simulated_s": reached,
            "simulated_until": (scenario.start + timedelta(seconds=reached)).isoformat(),
            "duration_s": scenario.duration,
            "wall_s": round(wall, 2),
            "realtime_factor": round(reached / wall, 1) if wall > 0 else None,
            "events": table.num_rows,
            "timeline_sha256": content_hash(table),
            "seed": scenario.seed,
            "simulator": scenario.traffic.simulator,
            "city": {
                "name": city.name,
                "path": str(city.path),
                "cache_key": city.manifest.cache_key,
            },
            "versions": _versions(),
        }
        meta = {"scenario": scenario.name, "seed": str(scenario.seed), "status": status,
                "start": scenario.start.isoformat(), "twin": __version__}  # fmt: skip
        write_parquet(table, tmp / "timeline.parquet", meta)
        (tmp / "timeline.arrows").unlink(missing_ok=True)
        from twin import kpi

        kpis = kpi.summary(table)
        kpi.network_over_time(table).to_parquet(tmp / "network.parquet", index=False)
        kpi.sector_over_time(table).to_parquet(tmp / "sectors.parquet", index=False)
        (tmp / "kpis.json").write_text(
            json.dumps({"kpis": kpis}, indent=2, default=str) + "\n", encoding="utf-8"
        )
        _write_scenario(tmp / "scenario.yaml", scenario, info)
        (tmp / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _write_run_report(tmp, scenario, city)
        return RunResult(path=out, status=status, kpis=kpis, info=info)


def _extra_routes(scenario: Scenario, scenario_dir: Path, source: str) -> list[Path]:
    from twin.scenario import ScenarioError

    found, problems = [], []
    for i, name in enumerate(scenario.traffic.route_files):
        path = Path(name) if Path(name).is_absolute() else scenario_dir / name
        if not path.is_file():
            problems.append((f"traffic.route_files[{i}]", f"file not found: {path}"))
        found.append(path)
    if problems:
        raise ScenarioError(source, problems)
    return found


def _make_demand(
    scenario: Scenario, city: City, events: list[ResolvedEvent], folder: Path
) -> list[Path]:
    """Route files for the background demand and each demonstration's extra traffic."""
    seeds = np.random.SeedSequence(scenario.seed).generate_state(
        len(scenario.demand_segments()) + len(events)
    )
    pieces = [
        DemandPiece(f"demand{i:02d}", b, e, rate, int(seeds[i]))
        for i, (b, e, rate) in enumerate(scenario.demand_segments())
    ]
    offset = len(pieces)
    for j, ev in enumerate(events):
        if ev.type == "demonstration" and ev.extra_veh_per_hour > 0 and ev.approach_edges:
            pieces.append(
                DemandPiece(f"toward_{_safe(ev.id)}", ev.begin_s, ev.end_s, ev.extra_veh_per_hour,
                            int(seeds[offset + j]), tuple(ev.approach_edges))
            )  # fmt: skip
    routes = []
    for piece in pieces:
        path = random_routes(
            city.net_path, piece, folder, min_trip_m=scenario.traffic.demand.min_trip_m
        )
        if path is not None:
            routes.append(path)
    return routes


# -- the worker -----------------------------------------------------------------------------


@dataclass
class _WorkerSpec:
    scenario_json: str
    city_path: str
    net_file: str
    routes: list[str]
    events: list[ResolvedEvent]
    edge_sector: dict[str, str]
    workdir: str
    stream: str
    step_by_step: bool = False
    until: float | None = None  # stop here (a replay up to a crash)


def _worker(spec: _WorkerSpec, conn: Any, clock: Any) -> None:
    """Runs in the worker process: the simulation, streaming its timeline."""
    from twin.events import RunEnded, RunStarted, SimulatorCrashed
    from twin.sim import Simulation
    from twin.traffic import SimulatorCrash, TrafficComponent

    scenario = Scenario.model_validate_json(spec.scenario_json)
    if spec.until is not None:
        scenario = scenario.model_copy(update={"duration": spec.until})
    timeline = Timeline(stream_to=Path(spec.stream))
    sim = Simulation(
        duration=scenario.duration, seed=scenario.seed, start=scenario.start, timeline=timeline
    )
    traffic = scenario.traffic
    sim.add(
        TrafficComponent(
            net_file=Path(spec.net_file),
            route_files=[Path(p) for p in spec.routes],
            edge_sector=spec.edge_sector,
            events=spec.events,
            workdir=Path(spec.workdir),
            seed=scenario.seed,
            step_length=traffic.step_length,
            sample_every=traffic.sample_every,
            teleport_after=traffic.teleport_after,
            mode=traffic.mode,
            simulator=traffic.simulator,
            record_edges=scenario.outputs.edge_states,
            on_advance=_tell(clock),
            step_by_step=spec.step_by_step,
        )
    )

    sim.emit(
        RunStarted(
            scenario=scenario.name,
            seed=scenario.seed,
            city=spec.city_path,
            start_local=scenario.start.isoformat(),
        ),
        source="run",
    )
    try:
        sim.run(on_progress=lambda t: conn.send(("progress", t)))
    except SimulatorCrash as crash:
        sim.timeline.append(crash.t, SimulatorCrashed(reason=crash.reason), source="run")
        sim.timeline.append(
            crash.t, RunEnded(status="incomplete", reason=crash.reason), source="run"
        )
        timeline.close()
        conn.send(("crashed", crash.t, crash.reason, crash.until))
        conn.close()
        os._exit(_CRASH_EXIT)
    except Exception as exc:  # SUMO refused its input, or a bug: say so in the run's words
        timeline.close()
        conn.send(("failed", sim.env.now, f"{type(exc).__name__}: {exc}"))
        conn.close()
        os._exit(_CRASH_EXIT)
    sim.timeline.append(sim.duration, RunEnded(status="complete", reason=""), source="run")
    timeline.close()
    conn.send(("done", sim.duration))
    conn.close()


def _pinpoint(
    spec: _WorkerSpec, scenario: Scenario, outcome: dict[str, Any], tmp: Path
) -> dict[str, Any]:
    """SUMO died somewhere in a multi-step advance. SUMO is deterministic, so replay the
    run step by step up to the end of that window: the replay dies at the exact step."""
    replay_dir = tmp / "replay"
    (replay_dir / "sumo").mkdir(parents=True, exist_ok=True)
    replay = _WorkerSpec(
        **{**spec.__dict__, "workdir": str(replay_dir / "sumo"), "stream": str(replay_dir / "timeline.arrows"),
           "step_by_step": True, "until": outcome["until"] + scenario.traffic.step_length}
    )  # fmt: skip
    again = _supervise(replay, scenario, progress=False, label="replay to find the crash")
    shutil.rmtree(replay_dir, ignore_errors=True)
    if again["ok"] or again.get("failed"):  # it did not crash again: keep the window
        return outcome
    exact = dict(outcome)
    exact["t"], exact["until"] = again["t"], again["until"]
    exact["error"] = again["error"].replace(
        " The run folder",
        " The twin found that time by replaying the run step by step. The run folder",
    )
    return exact


def _tell(clock: Any) -> Any:
    """A hook that keeps the supervisor told where SUMO is going: (from, to) in seconds."""

    def on_advance(now: float, target: float) -> None:
        clock[0] = now
        clock[1] = target

    return on_advance


def _supervise(
    spec: _WorkerSpec, scenario: Scenario, *, progress: bool, label: str
) -> dict[str, Any]:
    """Start the worker, show its progress, and say how it ended."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    clock = ctx.Array("d", [0.0, 0.0], lock=False)  # SUMO advancing from clock[0] to clock[1]
    proc = ctx.Process(
        target=_worker, args=(spec, child, clock), name=f"twin-run-{label}", daemon=True
    )
    with _Progress(progress, scenario, label) as bar:
        proc.start()
        child.close()
        started = time.perf_counter()
        outcome: dict[str, Any] = {"ok": False}
        while True:
            if parent.poll(0.2):
                try:
                    msg = parent.recv()
                except EOFError:
                    proc.join()
                    break
                if msg[0] == "progress":
                    bar.update(msg[1], time.perf_counter() - started)
                elif msg[0] == "done":
                    outcome = {"ok": True, "t": msg[1]}
                elif msg[0] == "crashed":
                    outcome = {
                        "ok": False,
                        "t": msg[1],
                        "error": msg[2].rstrip("."),
                        "until": msg[3],
                    }
                elif msg[0] == "failed":
                    outcome = {
                        "ok": False,
                        "t": msg[1],
                        "error": msg[2].rstrip("."),
                        "failed": True,
                    }
            elif not proc.is_alive():
                proc.join()
                break
        proc.join()
    if outcome["ok"] and proc.exitcode == 0:
        return outcome
    t = float(outcome.get("t", clock[0]))
    until = float(outcome.get("until", clock[1] if "t" not in outcome else t))
    outcome["until"] = until
    when = _when(scenario, t, until)
    code = proc.exitcode
    how = outcome.get("error") or (
        f"the simulator process died ({_signal_name(code)})"
        if code and code < 0
        else f"the simulator process exited with status {code}"
    )
    what = "The simulation stopped with an error" if outcome.get("failed") else "SUMO crashed"
    sumo_errors = _sumo_errors(Path(spec.workdir) / "sumo.log")
    outcome["detail"] = " ".join(
        (how + (f" (SUMO said: {sumo_errors})" if sumo_errors else "")).split()
    )
    outcome.update(
        ok=False,
        t=t,
        error=f"{what} {when}: {how}."
        + (f" SUMO said: {sumo_errors}." if sumo_errors else "")
        + " The run folder keeps the timeline up to then, marked incomplete.",
    )
    return outcome


def _when(scenario: Scenario, t: float, until: float) -> str:
    """'at simulated time ...' or, when SUMO was advancing several steps, 'between ...'."""
    a = scenario.start + timedelta(seconds=t)
    b = scenario.start + timedelta(seconds=until)
    if until <= t + scenario.traffic.step_length:
        return f"at simulated time {b:%Y-%m-%d %H:%M:%S} ({until:.0f} s into the run)"
    return (
        f"between simulated times {a:%Y-%m-%d %H:%M:%S} and {b:%H:%M:%S} ({t:.0f} to "
        f"{until:.0f} s into the run, which SUMO was simulating in one go)"
    )


def _sumo_errors(log: Path) -> str:
    """SUMO's own error lines from its log, if any."""
    if not log.exists():
        return ""
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    return " / ".join(ln.removeprefix("Error: ") for ln in lines if ln.startswith("Error:"))[-600:]


def _close_crashed_timeline(
    table: pa.Table, outcome: dict[str, Any], sumo_dir: Path, *, traci: bool
) -> pa.Table:
    """Finish a dead worker's timeline: its trips so far, the crash, and the end."""
    from twin.events import RunEnded, SimulatorCrashed
    from twin.traffic.component import add_teleports, add_trips

    tail = Timeline()
    done_kinds = set(table["kind"].to_pylist()) if table.num_rows else set()
    if "trip" not in done_kinds:  # the worker died before it could read SUMO's records
        add_trips(tail, sumo_dir / "tripinfo.xml", source="traffic")
        add_teleports(tail, sumo_dir / "sumo.log", source="traffic")
    if "simulator_crashed" not in done_kinds:
        tail.append(outcome["t"], SimulatorCrashed(reason=outcome["error"]), source="run")
        tail.append(
            outcome["t"], RunEnded(status="incomplete", reason=outcome["error"]), source="run"
        )
    extra = tail.table()
    if extra.num_rows:
        base = int(max(table["seq"].to_pylist(), default=-1)) + 1
        extra = extra.set_column(
            1, "seq", pa.array([base + s for s in extra["seq"].to_pylist()], pa.int64())
        )
        table = pa.concat_tables([table, extra.cast(table.schema)])
    return table


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


def _write_run_report(
    folder: Path,
    scenario: Scenario,
    city: City,
    *,
    baseline_dir: Path | None = None,
    delta: dict[str, Any] | None = None,
) -> None:
    import html as _html

    import pandas as pd

    from twin import kpi, report

    timeline = folder / "timeline.parquet"
    runs: dict[str, Any] = {scenario.name: timeline}
    summaries = {scenario.name: kpi.summary(timeline)}
    if baseline_dir is not None:
        runs["baseline"] = baseline_dir / "timeline.parquet"
        summaries["baseline"] = kpi.summary(runs["baseline"])
    info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    start = pd.Timestamp(scenario.start)
    events = kpi.road_events(timeline)
    intro = (
        f"<p>{_html.escape(scenario.description.strip())}</p>"
        f"<p>City <b>{_html.escape(city.name)}</b>, {scenario.start:%A %d %B %Y, %H:%M} (UTC{scenario.start:%z}) for "
        f"{scenario.duration / 60:.0f} minutes, seed {scenario.seed}, SUMO {scenario.traffic.mode} via "
        f"{scenario.traffic.simulator}. Simulated {info['simulated_s'] / 60:.0f} min in {info['wall_s']} s "
        f"({info['realtime_factor']}× real time).</p>"
    )
    if info["status"] != "complete":
        intro += f"<p class='warn'><b>Incomplete run.</b> {_html.escape(info['error'])}</p>"
    sections: list[tuple[str, Any]] = [
        (
            "Key figures",
            report.kpi_table_html(
                kpi.compare(summaries, reference="baseline" if baseline_dir else None)
            ),
        ),
        ("Speed and congestion over time", report.speed_figure(runs, start=start, events=events)),
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
    if baseline_dir is not None:
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
        )[["event_id", "event_type", "roads", "lanes_closed", "start", "end", "rerouted"]]
        table["lanes_closed"] = table["lanes_closed"].map(lambda n: "all" if n == 0 else n)
        sections.append(("Incident impact", table.to_html(index=False, border=0)))
    sections.append(("Vehicles delayed", report.delay_histogram(runs)))
    report.write_html(
        folder / "report.html",
        title=f"What-if run: {scenario.name}",
        intro=intro,
        sections=sections,
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


@contextlib.contextmanager
def _replace_folder(out: Path) -> Any:
    """A temporary folder beside ``out`` that replaces it on success, and vanishes on error."""
    if out.exists() and not (out / "run.json").exists() and any(out.iterdir()):
        raise BundleError(f"--out {out}: the folder exists and is not a run folder; choose another")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise BundleError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
        umask = os.umask(0)
        os.umask(umask)
        out.chmod(0o777 & ~umask)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Progress:
    """Simulated clock time and real-time factor, on a rich bar (or plain lines in logs)."""

    def __init__(self, enabled: bool, scenario: Scenario, label: str) -> None:
        self.enabled, self.scenario, self.label = enabled, scenario, label
        self._bar: Any = None
        self._console: Any = None
        self._last_line = -1.0

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._console = Console(stderr=True)
        if self._console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[clock]}"),
                TextColumn("{task.fields[rtf]}"), TimeElapsedColumn(), console=self._console,
            )  # fmt: skip
            self._bar.__enter__()
            self._task = self._bar.add_task(
                f"Running {self.label}", total=self.scenario.duration, clock="", rtf=""
            )
        return self

    def update(self, t: float, wall: float) -> None:
        if not self.enabled:
            return
        clock = f"{self.scenario.start + timedelta(seconds=t):%H:%M} simulated"
        rtf = f"{t / wall:,.0f}× real time" if wall > 0 else ""
        if self._bar is not None:
            self._bar.update(self._task, completed=t, clock=clock, rtf=rtf)
        elif (
            t - self._last_line >= max(600.0, self.scenario.duration / 6)
            or t >= self.scenario.duration
        ):
            self._console.print(f"{self.label}: {clock}, {rtf}", highlight=False)
            self._last_line = t

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _signal_name(code: int) -> str:
    import signal

    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
    return {
        "SIGSEGV": "segmentation fault, SIGSEGV",
        "SIGABRT": "aborted, SIGABRT",
        "SIGKILL": "killed, SIGKILL",
    }.get(name, name)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _versions() -> dict[str, str]:
    import platform

    return {
        "twin": __version__,
        "sumo": sumo_version(),
        "osmnx": version("osmnx"),
        "simpy": version("simpy"),
        "python": platform.python_version(),
    }
