"""The simulation's own process, and the supervisor that watches it.

The twin runs the simulation (the SimPy clock, its components and libsumo) in a worker
process that streams its timeline, batch by batch, to an Arrow file. The supervisor (the
``twin run`` process) shows progress; when the worker dies (SUMO 1.27 and 1.28 can
segfault, and under libsumo that kills the process running SUMO) it keeps every batch
written so far, adds the trips and teleports SUMO had recorded, marks the timeline
incomplete and names the simulated time. When SUMO died inside a multi-step advance, the
run is replayed step by step (SUMO is deterministic) to find the exact second.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from twin.city.places import ResolvedEvent, ResolvedResponse
from twin.scenario import Scenario
from twin.sim.timeline import Timeline

#: Exit status of a worker that stopped on a simulator crash or error it could report.
_CRASH_EXIT = 3


# -- the worker -----------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    scenario_json: str
    city_path: str
    net_file: str
    routes: list[str]
    events: list[ResolvedEvent]
    edge_sector: dict[str, str]
    workdir: str
    stream: str
    response: ResolvedResponse | None = None
    sensors: tuple[str, str, str] | None = None  # sensors file, replay or journal file, which
    step_by_step: bool = False
    until: float | None = None  # stop here (a replay up to a crash)


def _worker(spec: WorkerSpec, conn: Any, clock: Any) -> None:
    """Runs in the worker process: the simulation, streaming its timeline."""
    from twin.events import RunEnded, RunStarted, SimulatorCrashed
    from twin.traffic import SimulatorCrash

    # SUMO writes its warnings to the console as well as to its log: keep the planner's
    # terminal for progress and errors, and SUMO's console in the run folder.
    console = os.open(
        str(Path(spec.workdir) / "console.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
    )
    os.dup2(console, 1)
    os.dup2(console, 2)
    os.close(console)

    try:  # a scenario or component that cannot be set up is not a simulator crash
        scenario, sim, timeline = _set_up(spec, clock)
    except Exception as exc:
        conn.send(("failed", 0.0, f"{type(exc).__name__}: {exc}", "setup"))
        conn.close()
        os._exit(_CRASH_EXIT)
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


def _set_up(spec: WorkerSpec, clock: Any) -> tuple[Scenario, Any, Timeline]:
    """The worker's simulation, its components added (in the worker process)."""
    from twin.city import City
    from twin.runs.components import add_components
    from twin.sim import Simulation

    scenario = Scenario.model_validate_json(spec.scenario_json)
    if spec.until is not None:
        scenario = scenario.model_copy(update={"duration": spec.until})
    timeline = Timeline(stream_to=Path(spec.stream), keep=False)  # never all in memory
    sim = Simulation(
        duration=scenario.duration, seed=scenario.seed, start=scenario.start, timeline=timeline
    )
    needs_city = scenario.response or scenario.community or spec.sensors  # traffic does not
    city = City.load(spec.city_path) if needs_city else None
    registry = sensors = None
    if spec.sensors is not None:
        from twin.sensors.component import SensorsComponent
        from twin.sensors.ingest import caller_key
        from twin.sensors.registry import load_registry
        from twin.sensors.store import SensorStore

        devices, feed, kind = spec.sensors
        registry = load_registry(Path(devices) if devices else None, city)
        run_dir = Path(spec.stream).parent
        store = SensorStore(run_dir / "sensors.duckdb")
        if kind == "journal":  # callers pseudonymised by the live twin already
            sensors = SensorsComponent(registry, store, key=None, journal=Path(feed))
        else:
            sensors = SensorsComponent(registry, store, key=caller_key(run_dir), replay=Path(feed))
    add_components(
        sim,
        scenario,
        city,
        net_file=Path(spec.net_file),
        routes=[Path(p) for p in spec.routes],
        events=spec.events,
        edge_sector=spec.edge_sector,
        workdir=Path(spec.workdir),
        response=spec.response,
        sensors=sensors,
        detectors=registry.detectors() if registry is not None else None,
        on_advance=_tell(clock),
        step_by_step=spec.step_by_step,
    )
    return scenario, sim, timeline


def pinpoint(
    spec: WorkerSpec, scenario: Scenario, outcome: dict[str, Any], tmp: Path
) -> dict[str, Any]:
    """SUMO died somewhere in a multi-step advance. SUMO is deterministic, so replay the
    run step by step up to the end of that window: the replay dies at the exact step."""
    replay_dir = tmp / "replay"
    (replay_dir / "sumo").mkdir(parents=True, exist_ok=True)
    replay = WorkerSpec(
        **{
            **spec.__dict__,
            "workdir": str(replay_dir / "sumo"),
            "stream": str(replay_dir / "timeline.arrows"),
            "step_by_step": True,
            "until": outcome["until"] + _step(scenario),
        }
    )
    again = supervise(replay, scenario, progress=False, label="replay to find the crash")
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


def supervise(
    spec: WorkerSpec, scenario: Scenario, *, progress: bool, label: str
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
                        "setup": msg[3:] == ("setup",),
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
    if until <= t + _step(scenario):
        return f"at simulated time {b:%Y-%m-%d %H:%M:%S} ({until:.0f} s into the run)"
    return (
        f"between simulated times {a:%Y-%m-%d %H:%M:%S} and {b:%H:%M:%S} ({t:.0f} to "
        f"{until:.0f} s into the run, which SUMO was simulating in one go)"
    )


def _step(scenario: Scenario) -> float:
    return scenario.traffic.step_length if scenario.traffic is not None else 1.0


def _sumo_errors(log: Path) -> str:
    """SUMO's own error lines from its log, if any."""
    if not log.exists():
        return ""
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    return " / ".join(ln.removeprefix("Error: ") for ln in lines if ln.startswith("Error:"))[-600:]


def crashed_tail(
    outcome: dict[str, Any], sumo_dir: Path, kinds: set[str], next_seq: int
) -> pa.Table:
    """The rows that finish a dead worker's timeline: its trips so far, the crash, and the
    end, numbered on from ``next_seq`` (``kinds``: what the timeline holds already)."""
    from twin.events import RunEnded, SimulatorCrashed
    from twin.traffic.observe import add_teleports, add_trips

    tail = Timeline()
    if "trip" not in kinds:  # the worker died before it could read SUMO's records
        add_trips(tail, sumo_dir / "tripinfo.xml", source="traffic")
        add_teleports(tail, sumo_dir / "sumo.log", source="traffic")
    if "simulator_crashed" not in kinds:
        tail.append(outcome["t"], SimulatorCrashed(reason=outcome["error"]), source="run")
        tail.append(
            outcome["t"], RunEnded(status="incomplete", reason=outcome["error"]), source="run"
        )
    extra = tail.table()
    return extra.set_column(
        1, "seq", pa.array([next_seq + s for s in extra["seq"].to_pylist()], pa.int64())
    )


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
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[clock]}"),
                TextColumn("{task.fields[rtf]}"),
                TimeElapsedColumn(),
                console=self._console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                f"Running {self.label}", total=self.scenario.duration, clock="", rtf=""
            )
        return self

    def update(self, t: float, wall: float) -> None:
        if not self.enabled:
            return
        at = self.scenario.start + timedelta(seconds=t)
        # a run of more than a day names the day: "Tue 03/12 07:15"
        clock = f"{at:%a %d/%m %H:%M}" if self.scenario.duration > 86400 else f"{at:%H:%M}"
        clock = f"{clock} simulated"
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
