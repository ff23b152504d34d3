"""Fork from now: a what-if that starts from the live twin's present moment.

``twin fork --live live.duckdb --overlay plan.yaml --ahead 60min`` asks the running live
twin for its state, then runs the next hour twice, faster than real time: as things are,
and with the overlay (a plan: road closures, injects, more units...). It writes both runs
and a comparison report.

How the state is carried
------------------------
The live twin is deterministic: its scenario and seed, plus every sensor message at the
simulated second it took it, decide everything it did. So the fork does not try to
serialise running processes (a SimPy process is a Python generator and cannot be saved,
and SUMO's ``saveState`` would carry the traffic but none of the call centres, units,
queues and random streams around it). The live twin hands over a *fork package*: its
scenario as it runs, its journal of messages (callers already pseudonymised) and its
timeline so far. The fork replays the journal into the same scenario, which rebuilds the
exact state (SUMO's vehicles, every unit, incident, queue and random stream) and then
checks it: the replayed timeline must equal the live timeline event by event up to the
fork point, or the fork stops and says where they part. From there the overlay acts.

What is not carried: anything the live twin did not journal. Commands typed into a
running SUMO by hand (TraCI), and persons, which the twin does not simulate, are not
part of its state. Replaying costs the time from the live twin's start to now, about a
second per simulated hour of the default city's traffic.

The overlay
-----------
A YAML mapping of overrides, nested like a scenario, laid over the live twin's scenario as
a plan is (:mod:`twin.scenario.plan`: one schema, one loader). ``events`` and
``response.incidents.scripted`` are added to the live twin's; a ``start`` of ``"+15min"``
counts from the fork point. An override that would change the past (another seed, a
different dispatch policy from the start) makes the replay part from the live twin, and
the fork says so.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.scenario import Scenario
from twin.scenario.plan import apply_overlay

#: How often a live twin looks for fork requests, simulated seconds.
FORK_POLL_S = 1.0
#: Kinds not compared between a live twin and its replay: who started it, officers'
#: acknowledgements (which do not act on the simulation), and SUMO's own records (trips,
#: teleports, edge counts), which the twin reads when SUMO stops, so a live twin has none
#: yet. Their effects are compared: every edge, sector and unit state.
NOT_COMPARED = (
    "run_started",
    "run_ended",
    "trip",
    "teleport",
    "edge_flow",
    "alert_acknowledged",
    # the live twin's housekeeping of its own files, which a replay does not repeat
    "personal_data_deleted",
    "pseudonym_key_rotated",
)


def forks_folder(db: Path) -> Path:
    """Where a live twin's fork requests and packages go: ``<db>.forks/``."""
    return Path(db).with_name(Path(db).name + ".forks")


def request_fork(db: Path, *, timeout: float = 60.0) -> Path:
    """Ask the live twin writing ``db`` for a fork package; its folder, once written."""
    folder = forks_folder(db)
    if not Path(db).exists():
        raise InputError(f"{db}: no live twin writes here")
    folder.mkdir(parents=True, exist_ok=True)
    fork_id = f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    request = folder / f"{fork_id}.request"
    tmp = folder / f".{fork_id}.request.partial"
    tmp.write_text(json.dumps({"requested_at": datetime.now().astimezone().isoformat()}))
    tmp.replace(request)
    package = folder / fork_id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (package / "fork.json").exists():
            return package
        time.sleep(0.2)
    request.unlink(missing_ok=True)
    raise InputError(
        f"{db}: the live twin did not answer the fork request within {timeout:g} s "
        "(is `twin live` running on this file?)"
    )


def serve_forks(
    sim: Any,
    *,
    db: Path,
    scenario: Scenario,
    scenario_dir: Path,
    city: Path,
    devices: Path | None,
    sensors: Any,
) -> Any:
    """The live twin's side: a SimPy process that answers fork requests (see the module
    docstring) with a package: ``scenario.yaml``, ``journal.jsonl``, ``timeline.parquet``
    and ``fork.json``."""
    from twin.sensors.component import write_journal

    folder = forks_folder(db)
    while True:
        yield sim.env.timeout(FORK_POLL_S)
        if not folder.is_dir():
            continue
        for request in sorted(folder.glob("*.request")):
            fork_id = request.name.removesuffix(".request")
            package, tmp = folder / fork_id, folder / f".{fork_id}.partial"
            tmp.mkdir(parents=True, exist_ok=True)
            t_now = sim.env.now
            doc = json.loads(scenario.model_dump_json())
            doc["city"] = str(Path(city).resolve())
            doc["sensors"] = {
                "devices": str(devices.resolve()) if devices else None,
                "journal": str((package / "journal.jsonl").resolve()),
            }
            (tmp / "scenario.yaml").write_text(
                yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
            )
            write_journal(sensors.journal_rows, tmp / "journal.jsonl")
            sim.timeline.flush()
            pq.write_table(sim.timeline.table(), tmp / "timeline.parquet")
            (tmp / "fork.json").write_text(
                json.dumps(
                    {
                        "t_s": t_now,
                        "at": (scenario.start + timedelta(seconds=t_now)).isoformat(),
                        "messages": len(sensors.journal_rows),
                        "live_db": str(Path(db).resolve()),
                        "scenario_dir": str(Path(scenario_dir).resolve()),
                    },
                    indent=2,
                )
            )
            tmp.replace(package)
            request.unlink(missing_ok=True)


def fork_scenario(
    package: Path, overlay: dict[str, Any] | None, ahead_s: float
) -> tuple[Scenario, Scenario | None, float]:
    """The live twin's scenario (replaying its journal) and the overlaid one, and the
    simulated second the fork ends at."""
    meta = json.loads((package / "fork.json").read_text())
    t_now = float(meta["t_s"])
    doc = load_yaml(package / "scenario.yaml", what="fork package's scenario")
    base = Scenario.model_validate(doc)
    until = t_now + ahead_s
    if until > base.duration:
        left = (base.duration - t_now) / 60
        raise InputError(
            f"the live twin was started for {base.duration / 3600:g} h and has {left:.0f} min left: "
            f"it cannot look {ahead_s / 60:.0f} min ahead (start `twin live` with a longer --duration)"
        )
    if not overlay:
        return base, None, until
    if not isinstance(overlay, dict):
        raise InputError("an overlay is a mapping of overrides, nested like a scenario")
    overlay = dict(overlay)
    name = str(overlay.pop("name", "plan"))[:80]
    plan = apply_overlay(base, overlay, name=name, at_s=t_now, source="overlay")
    return base, plan, until


def first_difference(live: pa.Table, fork: pa.Table, t_now: float) -> str | None:
    """Where a replay parts from the live twin before ``t_now``, or None if it does not."""
    import pyarrow.compute as pc

    def part(table: pa.Table) -> list[dict[str, Any]]:
        keep = pc.and_(
            pc.less(table["t"], t_now), pc.invert(pc.is_in(table["kind"], pa.array(NOT_COMPARED)))
        )
        # seq and the audit chain's links differ by construction (a replay's chain starts
        # afresh); the events themselves must not
        drop = [c for c in ("seq", "prev_hash") if c in table.schema.names]
        return table.filter(keep).drop_columns(drop).to_pylist()

    a, b = part(live), part(fork)
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            diff = {k: (x.get(k), y.get(k)) for k in x if x.get(k) != y.get(k)}
            return f"event {i} at {x['t']:.1f} s ({x['kind']} in the live twin, {y['kind']} in the replay): {diff}"
    if len(a) != len(b):
        return f"the live twin has {len(a)} events before the fork point, the replay {len(b)}"
    return None


def run_fork(
    package: Path,
    *,
    overlay: dict[str, Any] | None,
    ahead_s: float,
    out: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Replay the package, check it against the live twin, and run ahead as things are and
    with the overlay; the runs and a comparison go into ``out``."""
    from twin.runs.run import run_scenario

    base, plan, until = fork_scenario(package, overlay, ahead_s)
    meta = json.loads((package / "fork.json").read_text())
    t_now = float(meta["t_s"])
    live = pq.read_table(package / "timeline.parquet")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"t_s": t_now, "at": meta["at"], "until_s": until, "runs": {}}
    for label, scenario in (("as-is", base), ("plan", plan)):
        if scenario is None:
            continue
        started = time.perf_counter()
        result = run_scenario(
            scenario,
            out=out / label,
            progress=progress,
            scenario_dir=Path(meta["scenario_dir"]),
            source=f"fork {label}",
            until=until,
        )
        wall = time.perf_counter() - started
        replay = pq.read_table(result.path / "timeline.parquet")
        differs = first_difference(live, replay, t_now)
        if differs is not None:
            what = (
                "the live twin's own scenario"
                if label == "as-is"
                else "the overlay changes the past"
            )
            raise InputError(f"the fork's replay parts from the live twin ({what}): {differs}")
        results["runs"][label] = {
            "path": str(result.path),
            "wall_s": round(wall, 1),
            "kpis": result.kpis,
        }
    if plan is not None:  # the comparison report, as `twin compare` writes it
        from twin.runs.compare import compare_runs

        _, report = compare_runs([out / "as-is", out / "plan"], out=out / "compare.html")
        results["report"] = str(report)
    (out / "fork.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results
