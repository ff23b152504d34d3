"""Ensembles: a scenario and its plans, replication by replication, on Dask.

One run of a scenario is one draw from a noisy process. :func:`evaluate` runs the scenario
as it is (the *baseline*) and with each plan (:mod:`twin.scenario.plan`) many times, and
says how sure each number is and which differences are real.

- **Common random numbers.** Replication *i* of every plan runs with the same seed, the
  scenario's seed plus *i* (so replication 0 of the baseline is ``twin run`` of the
  scenario). Demand, incidents and callers are then the same wherever a plan does not
  change them, and each plan's difference to the baseline is paired, replication by
  replication: the noise both share cancels.
- **On Dask.** One replication is one task: (plan, seed) in, the run's KPIs and its small
  table by sector out (:func:`replicate`). By default :func:`evaluate` starts a
  ``distributed.LocalCluster`` with one single-threaded process per worker, since libsumo
  holds one simulation per process; given a scheduler's address it uses that cluster.
  Workers need not share a file system with the client: the city bundle travels to each
  worker once, packed, and is kept there under its content hash; the files the scenario
  reads (routes, sensors, facilities) travel with each plan.
- **How many.** A fixed number of replications, or, with a precision, rounds of them until
  every headline KPI's 95 % interval is within that share of its mean
  (:data:`HEADLINE`), or the most replications allowed is reached.
- **Faults.** A replication that fails (SUMO crashed, the run could not start, the worker
  was lost) is tried once more on another worker. If it fails again it is recorded with
  its seed and reason, and the evaluation goes on with the rest. Ctrl-C keeps what has
  finished.

The ensemble folder (``runs/<scenario>-evaluation/`` by default):

======================  ==========================================================
``ensemble.json``       what was run: plans, seeds, replications, why it stopped, what
                        failed, the cluster, timings
``replications.parquet`` one row per replication: plan, replication, seed, status,
                        worker, timings, cost and every KPI
``sectors.parquet``     each replication's figures by sector (:func:`twin.kpi.sector_summary`)
``summary.parquet``     per plan and KPI: mean and 95 % interval; per plan against the
                        baseline: paired difference, its interval, and the verdict
``plans/<plan>.yaml``   each plan's scenario as run (``twin run`` runs it again)
``report.html``         the report
``timelines/``          with ``--keep-timelines``: each replication's run folder
======================  ==========================================================

``twin compare`` prints an ensemble folder's table, and ``twin dash`` shows it on the
contingency page; :mod:`twin.plans.ensemble_folder` writes and reads it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from twin._errors import InputError
from twin._files import replacing_folder
from twin.plans.ensemble_folder import (
    Evaluation,
    write_ensemble,
)
from twin.plans.readiness import Inventory, load_inventory
from twin.scenario import Scenario, load_scenario
from twin.scenario.plan import Costs, Plan, cost, load_plan

#: The KPIs ``--precision`` waits for, where the scenario has them: the ones a plan is
#: judged on.
HEADLINE = (
    "answered_in_target",
    "speed_of_answer_s",
    "response_p50_s",
    "on_scene_in_target",
    "delay_veh_h",
    "mean_tti",
    "crimes",
    "rasa_aman",
)

#: The name the scenario as it is goes by in an ensemble.
BASELINE = "baseline"

#: The most replications a precision target may ask for by default.
MAX_REPLICATIONS = 50

#: Replications of the first round when only a precision is given.
FIRST_ROUND = 5


# -- what travels to a worker ---------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One plan, as a worker needs it: the scenario as the plan makes it, and the files it
    reads, by the name the scenario gives them on the worker."""

    plan: str
    scenario_json: str
    files: dict[str, bytes]
    city_hash: str
    keep_timeline: bool = False


def pack_city(path: Path) -> tuple[str, bytes]:
    """A city bundle as one gzip'd tar, and its content hash (SHA-256 of the tar). The
    same bundle always packs to the same bytes; its build logs and plans stay home."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path)
            if rel.parts[0] in ("logs", "plans"):
                continue
            info = tarfile.TarInfo(rel.as_posix())
            info.size = file.stat().st_size
            info.mode = 0o644
            with file.open("rb") as fh:
                tar.addfile(info, fh)
    data = raw.getvalue()
    return hashlib.sha256(data).hexdigest(), gzip.compress(data, mtime=0)


def city_on_worker(city_hash: str, packed: bytes) -> Path:
    """The city bundle of ``city_hash`` on this machine, unpacked once into the cache
    (``$TWIN_CACHE`` or the temporary folder) and checked against its hash."""
    root = Path(os.environ.get("TWIN_CACHE") or tempfile.gettempdir())
    home = root / f"smart-policing-twin-{os.getuid()}" / "cities" / city_hash[:24]
    if (home / "manifest.json").exists():
        return home
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != city_hash:
        raise InputError("the city bundle arrived damaged (its content hash does not match)")
    tmp = home.with_name(f".{home.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    try:
        tmp.rename(home)
    except OSError:  # another replication on this machine unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)
    return home


def scenario_job(
    plan: str,
    scenario: Scenario,
    scenario_dir: Path,
    city: Any,
    city_hash: str,
    *,
    keep_timeline: bool,
) -> Job:
    """The job of one plan: its scenario with every file it reads gathered, so that a
    worker on another machine runs it alike (see :class:`Job`); ``city`` is the bundle
    (:class:`twin.city.City`) it runs on."""
    doc = json.loads(scenario.model_dump_json(exclude={"variants"}))
    files: dict[str, bytes] = {}

    def ship(value: str, where: str) -> str:
        path = Path(value) if Path(value).is_absolute() else scenario_dir / value
        if not path.is_file():
            raise InputError(f"{where}: file not found: {path}")
        name = f"{len(files):02d}_{path.name}"
        files[name] = path.read_bytes()
        return name

    traffic = doc.get("traffic") or {}
    traffic["route_files"] = [
        ship(f, f"traffic.route_files[{i}]") for i, f in enumerate(traffic.get("route_files", []))
    ]
    sensors = doc.get("sensors") or {}
    for key in ("devices", "replay", "journal"):
        if sensors.get(key):
            sensors[key] = ship(sensors[key], f"sensors.{key}")
    response = doc.get("response") or {}
    for i, group in enumerate(response.get("units", [])):
        if isinstance(group.get("base"), str) and group["base"] not in (
            "police",
            "hospital",
            "fire",
        ):
            group["base"] = ship(group["base"], f"response.units[{i}].base")
    dispatch = response.get("dispatch") or {}
    if dispatch.get("hospitals", "hospital") != "hospital":
        dispatch["hospitals"] = ship(dispatch["hospitals"], "response.dispatch.hospitals")
    # a city's own posts file beside the scenario comes before the one the twin ships
    posts = scenario_dir / f"{city.name}_posts.geojson"
    if posts.is_file():
        files[posts.name] = posts.read_bytes()
    # the worker writes what the ensemble keeps: no report per replication
    doc["outputs"] = {**doc.get("outputs", {}), "report": False}
    return Job(plan, json.dumps(doc), files, city_hash, keep_timeline)


# -- one replication, on a worker -----------------------------------------------------------


def replicate(job: Job, city: bytes, index: int, seed: int) -> dict[str, Any]:
    """Run replication ``index`` (seed ``seed``) of a plan; runs on a Dask worker.

    Returns the replication's row: plan, replication, seed, status ("complete" or
    "failed"), the reason of a failure, the worker, timings, the KPIs, and the table by
    sector. A failure is returned, not raised, so that the client can say what failed and
    try it once more elsewhere."""
    from twin import kpi
    from twin.runs.run import RunIncomplete, run_scenario

    started = time.perf_counter()
    row: dict[str, Any] = {
        "plan": job.plan,
        "replication": index,
        "seed": seed,
        "worker": _worker_address(),
        "status": "failed",
        "reason": "",
    }
    try:
        with _children_allowed(), tempfile.TemporaryDirectory(prefix="twin-replication-") as tmp:
            folder = Path(tmp)
            home = city_on_worker(job.city_hash, city)
            for name, data in job.files.items():
                (folder / name).write_bytes(data)
            doc = json.loads(job.scenario_json)
            doc["city"] = str(home)
            scenario = Scenario.model_validate(doc)
            row["setup_s"] = time.perf_counter() - started
            began = time.perf_counter()
            try:
                result = run_scenario(
                    scenario,
                    out=folder / "run",
                    seed=seed,
                    progress=False,
                    scenario_dir=folder,
                    source=f"plan {job.plan}",
                )
            except RunIncomplete as exc:
                row["reason"] = str(exc)
                return row
            row["run_s"] = time.perf_counter() - began
            row["status"] = "complete"
            row["kpis"] = result.kpis
            row["sectors"] = kpi.sector_summary(result.path / "timeline.parquet").to_dict("records")
            row["simulated_s"] = result.info["simulated_s"]
            row["timeline_sha256"] = result.info["timeline_sha256"]
            if job.keep_timeline:
                row["run_folder"] = _pack_folder(result.path)
    except Exception as exc:  # the run could not start, or a bug: said, not raised
        row["reason"] = f"{type(exc).__name__}: {exc}"
    row["worker_s"] = time.perf_counter() - started
    return row


@contextlib.contextmanager
def _children_allowed() -> Iterator[None]:
    """Let this process start the simulation's own worker process.

    A Dask worker under a nanny is a daemonic process, and Python refuses children to
    those (they would outlive a parent that exits). The twin's run supervisor joins its
    simulation process before it returns, and that process is itself daemonic, so it
    cannot outlive this one: the flag is lifted for the run and put back after it."""
    proc = mp.current_process()
    was = proc.daemon
    if was:
        proc._config["daemon"] = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if was:
            proc._config["daemon"] = True  # type: ignore[attr-defined]


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _pack_folder(path: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(path, arcname=".")
    return raw.getvalue()


# -- the evaluation, on the client ----------------------------------------------------------


def evaluate(
    scenario_path: str | Path,
    plans: list[str | Path | Plan] | None = None,
    *,
    replications: int | None = None,
    precision: float | None = None,
    max_replications: int = MAX_REPLICATIONS,
    workers: int | None = None,
    scheduler: str | None = None,
    out: Path | None = None,
    keep_timelines: bool = False,
    progress: bool = True,
    baseline: bool = True,
    inventory: str | Path | Inventory | None = None,
    seed: int | None = None,
) -> Evaluation:
    """Run the scenario as it is and with each plan, replication by replication, and
    compare them (see the module docstring).

    Parameters
    ----------
    scenario_path
        The scenario file.
    plans
        Plan files (:mod:`twin.scenario.plan`), or plans already read. None: the scenario
        alone, for its intervals (``twin run --replications``).
    replications
        How many replications of each plan; with ``precision``, how many in the first round.
    seed
        The first replication's seed (default: the scenario's); replication *i* runs with
        ``seed + i``. Fresh seeds check a result found on others.
    precision
        Add rounds of replications until every headline KPI's 95 % interval is within this
        share of its mean (0.05: ± 5 %), up to ``max_replications``.
    workers
        Worker processes of the local cluster (default: the machine's cores, at most the
        replications of a round).
    scheduler
        A Dask scheduler's address (``tcp://host:8786``): use that cluster instead.
    out
        The ensemble folder; ``runs/<scenario>-evaluation`` by default.
    keep_timelines
        Keep every replication's run folder under ``timelines/``.
    inventory
        A readiness inventory (:mod:`twin.plans.readiness`): each plan's needs are checked
        against it, and the report lists the eight kinds of readiness.

    Raises
    ------
    ScenarioError
        The scenario or a plan is invalid (every problem with its field path); nothing
        is written.
    """
    from twin.runs.run import check_scenario, load_city

    scenario_path = Path(scenario_path)
    scenario = load_scenario(scenario_path)
    scenario_dir = scenario_path.resolve().parent
    if replications is None and precision is None:
        raise InputError("give --replications N, or --precision (for example 5%)")
    if replications is not None and not 1 <= replications <= 10_000:
        raise InputError(f"--replications: between 1 and 10000, got {replications}")
    if precision is not None and not 0 < precision < 1:
        raise InputError(f"--precision: a share of the mean between 0 and 100 %, got {precision:g}")
    if not 2 <= max_replications <= 10_000:
        raise InputError(f"--max-replications: between 2 and 10000, got {max_replications}")
    if inventory is not None and not isinstance(inventory, Inventory):
        inventory = load_inventory(inventory)
    loaded: dict[str, tuple[Plan | None, Scenario]] = {}
    if baseline or not plans:
        loaded[BASELINE] = (None, scenario)
    for path in plans or []:
        plan = path if isinstance(path, Plan) else load_plan(path)
        if plan.name in loaded:
            raise InputError(
                f"{plan.source}: a plan named {plan.name!r} is given twice (name plans apart)"
            )
        loaded[plan.name] = (plan, plan.apply(scenario))
    city = load_city(scenario, scenario_dir=scenario_dir)
    for name, (_plan, applied) in loaded.items():  # every plan's places on this city, first
        check_scenario(applied, city, scenario_dir=scenario_dir, source=_source(name, _plan))
    out = out or Path("runs") / f"{scenario.name}-evaluation"
    city_hash, packed = pack_city(city.path)
    jobs = {
        name: scenario_job(
            name, applied, scenario_dir, city, city_hash, keep_timeline=keep_timelines
        )
        for name, (_plan, applied) in loaded.items()
    }
    first = replications or min(FIRST_ROUND, max_replications)
    started = time.perf_counter()
    with replacing_folder(out, marker="ensemble.json", what="an ensemble folder") as tmp:
        with _cluster(workers, scheduler, first * len(jobs)) as client:
            cluster_start_s = time.perf_counter() - started
            first_seed = scenario.seed if seed is None else seed
            runner = _Runner(client, jobs, packed, first_seed, progress)
            try:
                runner.run_round(range(first))
                stopped = f"{first} replications, as asked"
                while precision is not None:
                    need, wide = _replications_needed(runner.rows, precision)
                    n = runner.replications
                    if not wide:
                        stopped = (
                            f"every headline KPI's 95 % interval is within ±{precision:.0%} of "
                            f"its mean after {n} replications"
                        )
                        break
                    if n >= max_replications:
                        stopped = (
                            f"reached --max-replications ({max_replications}) with intervals "
                            f"still wider than ±{precision:.0%}: {', '.join(wide[:4])}"
                        )
                        break
                    more = min(max_replications, max(need, n + 1), 2 * n) - n
                    runner.run_round(range(n, n + more))
            except KeyboardInterrupt:
                runner.cancel()
                stopped = "interrupted (Ctrl-C): what had finished is kept"
                runner.interrupted = True
            finally:
                runner.close()
            cluster_said = _describe(client, scheduler)
            overhead = runner.overhead(time.perf_counter() - started - cluster_start_s)
        wall = time.perf_counter() - started
        info = {
            "scenario": scenario.name,
            "scenario_file": str(scenario_path),
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "city": {
                "name": city.name,
                "path": str(city.path.resolve()),
                "content_hash": city_hash,
            },
            "plans": {
                name: {
                    "file": plan.source if plan else str(scenario_path),
                    "description": plan.description if plan else "the scenario as it is",
                    "costs": (plan.costs if plan else Costs()).model_dump(),
                }
                for name, (plan, _s) in loaded.items()
            },
            "seeds": f"{first_seed} + replication",
            "replications": {
                name: sum(1 for r in runner.rows if r["plan"] == name and r["status"] == "complete")
                for name in loaded
            },
            "precision": precision,
            "max_replications": max_replications if precision is not None else None,
            "stopped": stopped,
            "interrupted": runner.interrupted,
            "failed": runner.failures(),
            "cluster": cluster_said,
            "wall_s": round(wall, 1),
            "overhead_s": overhead,
            "cluster_start_s": round(cluster_start_s, 1),
        }
        if runner.interrupted and not any(r["status"] == "complete" for r in runner.rows):
            raise KeyboardInterrupt  # nothing finished: nothing to keep
        rows = _add_costs(runner.rows, loaded)
        if inventory is not None:
            info["readiness"] = _readiness(rows, loaded, inventory)
        table = write_ensemble(tmp, rows, info, {n: s for n, (_p, s) in loaded.items()})
    return Evaluation(out, table, info, rows)


def _source(name: str, plan: Plan | None) -> str:
    return plan.source if plan is not None else f"scenario ({name})"


class _Runner:
    """Submits replications, retries a failure once elsewhere, and keeps the rows."""

    def __init__(
        self,
        client: Any,
        jobs: dict[str, Any],
        city: bytes,
        seed: int,
        progress: bool,
        task: Any = None,
    ) -> None:
        self.client = client
        self.task = task or replicate  # (job, city, index, seed) -> row
        self.jobs = jobs
        self.seed = seed
        self.rows: list[dict[str, Any]] = []
        self.replications = 0
        self.interrupted = False
        self._futures: list[Any] = []
        self._city = client.scatter(city, broadcast=True, hash=False)
        self._job_futures = {
            n: client.scatter(j, broadcast=True, hash=False) for n, j in jobs.items()
        }
        self._bar = _Bar(progress)

    def seed_of(self, index: int) -> int:
        return (self.seed + index) % 2**31

    def run_round(self, indices: range) -> None:
        from distributed import as_completed

        submitted: dict[Any, tuple[str, int, int, float]] = {}  # future -> plan, i, try, at
        tried: dict[tuple[str, int], str] = {}  # where a first attempt failed
        for i in indices:
            for plan in self.jobs:
                fut = self._submit(plan, i, exclude=None)
                submitted[fut] = (plan, i, 1, time.perf_counter())
        self._bar.add(len(submitted))
        pending = as_completed(list(submitted))
        for fut in pending:
            plan, i, attempt, at = submitted.pop(fut)
            try:
                row = fut.result()
            except Exception as exc:  # the worker was lost (Dask gave up), or cancelled
                row = {
                    "plan": plan,
                    "replication": i,
                    "seed": self.seed_of(i),
                    "worker": "",
                    "status": "failed",
                    "reason": f"{type(exc).__name__}: {exc}",
                }
            row["attempt"] = attempt
            row["round_trip_s"] = time.perf_counter() - at
            row["first_worker"] = tried.get((plan, i), row.get("worker"))
            if row["status"] != "complete" and attempt == 1:
                tried[(plan, i)] = row.get("worker") or ""
                again = self._submit(plan, i, exclude=row.get("worker"))
                submitted[again] = (plan, i, 2, time.perf_counter())
                pending.add(again)
                continue
            self.rows.append(row)
            self._bar.advance()
        self.replications = max(self.replications, indices.stop)

    def _submit(self, plan: str, i: int, *, exclude: str | None) -> Any:
        where = None  # anywhere; a second try anywhere but where the first failed
        if exclude:
            others = [w for w in self.client.scheduler_info()["workers"] if w != exclude]
            where = others or None
        fut = self.client.submit(
            self.task,
            self._job_futures[plan],
            self._city,
            i,
            self.seed_of(i),
            key=f"replicate-{plan}-{i}-{uuid.uuid4().hex[:8]}",
            pure=False,
            workers=where,
            allow_other_workers=False,
        )
        self._futures.append(fut)
        return fut

    def close(self) -> None:
        self._bar.close()

    def cancel(self) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel([f for f in self._futures if not f.done()])

    def failures(self) -> list[dict[str, Any]]:
        return [
            {
                k: r.get(k)
                for k in ("plan", "replication", "seed", "first_worker", "worker", "reason")
            }
            for r in self.rows
            if r["status"] != "complete"
        ]

    def overhead(self, busy_s: float) -> dict[str, float | None]:
        """Per replication: the median run, the median set-up on the worker (city, files),
        and everything else the workers' time went on (shipping, scheduling, collecting,
        idling at the end of a round): the workers' time from the first submission to the
        end, less the runs, over the replications."""
        done = [r for r in self.rows if r.get("status") == "complete"]
        if not done:
            return {"run_s": None, "setup_s": None, "other_s": None}
        frame = pd.DataFrame(done)
        workers = len(self.client.scheduler_info()["workers"]) or 1
        other = (busy_s * workers - frame["run_s"].sum() - frame["setup_s"].sum()) / len(frame)
        return {
            "run_s": round(float(frame["run_s"].median()), 3),
            "setup_s": round(float(frame["setup_s"].median()), 3),
            "other_s": round(float(other), 3),
        }


class _Bar:
    """The replications' progress bar, with the time left."""

    def __init__(self, enabled: bool) -> None:
        self.progress = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("replications"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("replications", total=0)

    def add(self, n: int) -> None:
        if self.progress is not None:
            total = self.progress.tasks[0].total or 0
            self.progress.update(self.task, total=total + n)

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextlib.contextmanager
def _cluster(workers: int | None, scheduler: str | None, first: int) -> Iterator[Any]:
    """A Dask client: on the scheduler given, or on a local cluster of single-threaded
    worker processes (libsumo: one simulation per process)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise InputError(
                f"--scheduler {scheduler}: no Dask scheduler answers there ({exc})"
            ) from exc
        try:
            if not client.scheduler_info()["workers"]:
                client.wait_for_workers(1, timeout=60)
            yield client
        finally:
            client.close()
        return
    if workers is not None and workers < 1:
        raise InputError(f"--workers: at least 1, got {workers}")
    n = workers or max(1, min(os.cpu_count() or 1, first))
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # critical only: at shutdown a worker's heartbeat can race the scheduler's close
            # and log a harmless ERROR traceback into the planner's terminal (dask/distributed
            # #7192); a replication's own failure still reaches us through its future
            silence_logs=logging.CRITICAL,
        )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _describe(client: Any, scheduler: str | None) -> dict[str, Any]:
    workers = client.scheduler_info()["workers"]
    return {
        "scheduler": scheduler or "local cluster",
        "workers": len(workers),
        "addresses": sorted(workers),
    }


def _replications_needed(rows: list[dict[str, Any]], precision: float) -> tuple[int, list[str]]:
    """How many replications each plan needs for every headline KPI's 95 % interval to be
    within ``precision`` of its mean (the largest), and the KPIs still too wide."""
    from scipy import stats

    frame = _kpi_frame(rows)
    need, wide = 0, []
    for plan, group in frame.groupby("plan"):
        for key in HEADLINE:
            if key not in group:
                continue
            x = pd.to_numeric(group[key], errors="coerce").dropna()
            if len(x) < 2:
                continue
            mean, sd, n = float(x.mean()), float(x.std(ddof=1)), len(x)
            half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
            target = precision * abs(mean)
            if half <= target:
                continue
            wide.append(
                f"{key} of {plan} (±{half / abs(mean):.0%})" if mean else f"{key} of {plan}"
            )
            need = max(need, math.ceil(n * (half / target) ** 2) if target > 0 else 10**9)
    return need, wide


def _kpi_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per complete replication: plan, replication, seed, and every KPI."""
    done = [r for r in rows if r.get("status") == "complete"]
    return pd.DataFrame(
        [
            {"plan": r["plan"], "replication": r["replication"], "seed": r["seed"], **r["kpis"]}
            for r in done
        ]
    )


def _readiness(
    rows: list[dict[str, Any]],
    loaded: dict[str, tuple[Plan | None, Scenario]],
    inventory: Inventory,
) -> dict[str, Any]:
    """Each plan's needs against the inventory, its cost the mean of its replications'."""
    from twin.plans.readiness import check

    out = {}
    for name, (_plan, scenario) in loaded.items():
        done = [r for r in rows if r["plan"] == name and r.get("status") == "complete"]
        costs = [r["kpis"]["cost_total"] for r in done if r["kpis"].get("cost_total") is not None]
        out[name] = check(
            scenario,
            inventory,
            cost=sum(costs) / len(costs) if costs else None,
            replications=len(done),
        )
    return out


def _add_costs(
    rows: list[dict[str, Any]], loaded: dict[str, tuple[Plan | None, Scenario]]
) -> list[dict[str, Any]]:
    """Each complete replication's cost under its plan's cost table (the baseline's is the
    defaults), from its resources and the km its units drove."""
    for row in rows:
        if row.get("status") != "complete":
            continue
        plan, scenario = loaded[row["plan"]]
        km = row["kpis"].get("unit_km")
        row["kpis"].update(cost(scenario, plan.costs if plan else Costs(), km=km))
    return rows
