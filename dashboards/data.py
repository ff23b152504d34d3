"""What the dashboards show, loaded once per run: the timeline (in memory, queried with
DuckDB through ``twin.kpi``), the city, its roads, and the run's clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from twin import kpi
from twin.runs.folder import ACKS, Run, acknowledge


@dataclass
class RunView:
    """One run folder as the dashboards see it."""

    path: Path
    rules: kpi.StatusRules = field(default_factory=kpi.StatusRules)
    live = False

    def refresh(self) -> None:
        """A finished run does not change."""

    def memo(self, key: str, compute: Callable[[Any], Any]) -> Any:
        """``compute(self.con)``, kept until the timeline changes: a run's never does, a
        live twin's does at each refresh, an acknowledgement adds an event."""
        memo = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            memo[key] = compute(self.con)
        return memo[key]

    @cached_property
    def run(self) -> Run:
        return Run.load(self.path)

    @property
    def info(self) -> dict[str, Any]:
        return self.run.info

    @property
    def name(self) -> str:
        return str(self.info.get("scenario", self.path.name))

    @cached_property
    def meta(self) -> dict[str, Any]:
        """An exercise's own description (name, title, MSEL, teams, speed): ``run.json``'s
        ``exercise``, or {} for a what-if run; a live twin's is its ``live.json``."""
        return dict(self.info.get("exercise") or {})

    @property
    def con(self) -> Any:
        """A DuckDB connection over the timeline, this thread's own: the app serves its
        callbacks on several threads at once, and one DuckDB connection refuses a second
        call while it answers the first."""
        db, local = self.db, self.__dict__.setdefault("_local", threading.local())
        if getattr(local, "db", None) is not db:
            local.db, local.con = db, db.cursor()
        return local.con

    @cached_property
    def db(self) -> Any:
        """The timeline in memory, in DuckDB, with the officers' acknowledgements of alerts
        (``acknowledgements.jsonl``) among its events. DuckDB reads the Parquet file itself:
        a whole city's timeline is millions of rows of mostly empty columns, which Arrow
        would first hold uncompressed (2 GB for an hour of a 10,000-junction city)."""
        con = kpi.connect(self.path / "timeline.parquet", load=True)
        path = self.path / ACKS
        if path.exists():
            _insert(con, _acks(path.read_text(encoding="utf-8").splitlines()))
        return con

    def acknowledge(self, t: float, alert: dict[str, Any], by: str) -> None:
        """An officer acknowledged ``alert`` at ``t``: an ``alert_acknowledged`` event, kept
        beside the run (its timeline stays as it ran) and read with it from now on."""
        line = acknowledge(
            self.path,
            {
                "t": t,
                "alert": alert["alert"],
                "sector": alert["sector"],
                "status": alert["status"],
                "reason": alert["reason"],
                "officer": by,
            },
        )
        if "db" in self.__dict__:  # the timeline loaded already: add the one event to it
            with _WRITING:  # one connection, two officers at once
                _insert(self.db, _acks([line]))
        self.__dict__.pop("_memo", None)

    @cached_property
    def hall(self) -> bool:
        """Whether the run has a service hall (its scenario a ``service`` section)."""
        return bool(self.run.scenario.get("service"))

    @cached_property
    def plan_key(self) -> str:
        """The run's scenario, as run, without its seed: runs with the same key are
        replications of one plan."""

        doc = dict(self.run.scenario)
        doc.pop("seed", None)
        return json.dumps(doc, sort_keys=True, default=str)

    @cached_property
    def city(self) -> Any:
        from twin.city import City

        return City.load(Path(self.info["city"]["path"]))

    @cached_property
    def roads(self) -> pd.DataFrame:
        from twin.report import road_lines

        return road_lines(self.city)

    @cached_property
    def road_image(self) -> dict[str, Any]:
        """Every road as one picture for the K3i map (drawn once per run served)."""
        from twin.report import road_image

        return road_image(self.city, self.roads)

    @cached_property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.info["simulated_until"]) - pd.Timedelta(seconds=self.end)

    @cached_property
    def end(self) -> float:
        return float(self.info.get("simulated_s") or self.info["duration_s"])

    @cached_property
    def step(self) -> float:
        """The time slider's step: the traffic samples' spacing, else a minute."""
        times = self.con.execute(
            "SELECT DISTINCT t FROM timeline WHERE kind = 'network_state' ORDER BY t LIMIT 2"
        ).fetchall()
        return float(times[1][0] - times[0][0]) if len(times) == 2 else 60.0

    def clock(self, t: float) -> str:
        """Simulated time ``t`` as local time: ``07:31``, with the day when the run spans
        more than one (``Tue 03/12 07:31``)."""
        at = self.start + pd.Timedelta(seconds=t)
        return at.strftime("%a %d/%m %H:%M" if self.end > 86400 else "%H:%M")

    def marks(self) -> dict[int, str]:
        """The time slider's marks: local time at round intervals, a dozen at most, so the
        slider reads as a clock rather than seconds."""
        step = next(
            (s for s in (900, 1800, 3600, 7200, 10800, 21600, 43200) if self.end / s <= 12),
            86400,
        )
        first = -(self.start - self.start.normalize()).total_seconds() % step
        marks = {}
        for t in np.arange(first, self.end + 1e-9, step):
            at = self.start + pd.Timedelta(seconds=float(t))
            marks[int(t)] = at.strftime("%d/%m" if step >= 86400 else "%H:%M")
        return marks


#: Where a run keeps the acknowledgements made on its dashboards.


_WRITING = threading.Lock()


def _insert(con: Any, events: pa.Table) -> None:
    """Add events to a timeline loaded in DuckDB (columns they lack are NULL)."""
    con.register("new_events", events)
    try:
        con.execute("INSERT INTO timeline BY NAME SELECT * FROM new_events")
    finally:
        con.unregister("new_events")


def _acks(lines: list[str]) -> pa.Table:
    """Acknowledgements (lines of ``acknowledgements.jsonl``) as timeline events."""
    from twin import events as ev
    from twin.sim.timeline import Timeline

    timeline = Timeline()
    for line in lines:
        if line.strip():
            d = json.loads(line)
            d.pop("prev_hash", None)  # its link on the run's audit chain
            t = float(d.pop("t"))
            timeline.append(t, ev.AlertAcknowledged(**d), source="dashboard")
    timeline.flush()
    return timeline.table()


class LiveView(RunView):
    """A running live twin, read from the timeline it publishes (``twin.live.run``);
    :meth:`refresh` reads what came since."""

    live = True

    def __init__(self, db: Path, rules: kpi.StatusRules | None = None) -> None:
        super().__init__(Path(db), rules or kpi.StatusRules())
        self.refresh()

    def acknowledge(self, t: float, alert: dict[str, Any], by: str) -> None:
        """Send the acknowledgement to the live twin, which puts it on its timeline (it
        shows here once the twin publishes it, within seconds)."""
        from twin.live.run import send_order

        send_order(
            self.path,
            {
                "kind": "alert_acknowledged",
                "alert": alert["alert"],
                "sector": alert["sector"],
                "status": alert["status"],
                "reason": alert["reason"],
                "officer": by,
            },
        )

    def refresh(self) -> None:
        from twin.live.run import read_published

        meta, table = read_published(self.path)
        self.meta = meta
        self.__dict__["db"] = kpi.connect(table, load=True)
        self.__dict__.pop("_memo", None)
        t = table["t"].to_numpy()
        last = float(t.max()) if len(t) else 0.0
        self.__dict__["end"] = max(last, float(meta.get("now") or 0.0))  # quiet moments too

    @cached_property
    def info(self) -> dict[str, Any]:
        return {"scenario": f"live: {self.meta['scenario']}", "city": {"path": self.meta["city"]}}

    @property
    def plan_key(self) -> str:  # type: ignore[override]
        return ""  # a live twin is a plan of its own

    @property
    def hall(self) -> bool:  # type: ignore[override]
        return bool(
            self.memo(
                "hall",
                lambda con: con.execute(
                    "SELECT count(*) FROM timeline WHERE kind = 'service_configured'"
                ).fetchall()[0][0],
            )
        )

    @property
    def start(self) -> pd.Timestamp:  # type: ignore[override]
        return pd.Timestamp(self.meta["start"])

    @cached_property
    def step(self) -> float:
        return float(self.meta.get("sample_s") or 60.0)


class Runs:
    """The runs a dashboard app shows, by name: run folders, and running live twins."""

    def __init__(
        self,
        folders: list[Path],
        rules: kpi.StatusRules | None = None,
        live: list[Path] | None = None,
        ensembles: list[Path] | None = None,
    ) -> None:
        self.views: dict[str, RunView] = {}
        self.ensemble_plans: dict[str, EnsemblePlan] = {}
        members: list[Path] = []  # an ensemble's kept runs: on the K3i page, not as plans
        for folder in ensembles or []:
            for plan in EnsemblePlan.load_all(Path(folder)):
                name, n = plan.name, 2
                while name in self.ensemble_plans:
                    name, n = f"{plan.name} ({n})", n + 1
                self.ensemble_plans[name] = plan
                if plan.first_run is not None:
                    members.append(plan.first_run)
        for db in live or []:
            view = LiveView(Path(db), rules)
            self.views[view.name] = view
        self._members: set[str] = set()
        for folder in [*members, *folders]:
            view = RunView(Path(folder), rules or kpi.StatusRules())
            name, n = view.name, 2
            while name in self.views:  # two runs of one scenario
                name, n = f"{view.name} ({n})", n + 1
            self.views[name] = view
            if folder in members:
                self._members.add(name)

    def exercise(self) -> LiveView | None:
        """The running exercise among the live twins (its live file's meta names it)."""
        return next(
            (v for v in self.views.values() if isinstance(v, LiveView) and v.meta.get("exercise")),
            None,
        )

    def replays(self) -> list[str]:
        """The finished exercises among the runs, by name (the replay page shows them)."""
        return [n for n, v in self.views.items() if not v.live and v.meta.get("exercise")]

    def halls(self) -> list[str]:
        """The runs and live twins with a service hall, by name (the hall's pages show them)."""
        return [n for n, v in self.views.items() if v.hall]

    def __getitem__(self, name: str | None) -> RunView:
        return self.views.get(name or "", next(iter(self.views.values())))

    @property
    def names(self) -> list[str]:
        return list(self.views)

    @cached_property
    def plans(self) -> dict[str, list[str]]:
        """The runs by plan: runs of one scenario that differ in nothing but their seed are
        replications of one plan, an ensemble (``twin run plan.yaml --seed N --out ...``);
        the contingency page gives their KPIs with confidence intervals. A plan is named
        after its scenario ("name (2)" for another scenario of the same name). An
        ensemble folder's plans come first, under their own names, with no run of their
        own (their replications are in the ensemble)."""
        plans: dict[str, list[str]] = {name: [] for name in self.ensemble_plans}
        plan_of: dict[str, str] = {}  # a scenario without its seed -> its plan
        for name, view in self.views.items():
            if name in self._members:
                continue
            key = view.plan_key  # "" (a live twin): a plan of its own
            plan = plan_of.get(key) if key else None
            if plan is None:
                plan, n = view.name, 2
                while plan in plans:
                    plan, n = f"{view.name} ({n})", n + 1
                plans[plan] = []
                if key:
                    plan_of[key] = plan
            plans[plan].append(name)
        return plans

    def summaries(self, plan: str) -> dict[str, Any] | list[dict[str, Any]]:
        """A plan's KPIs: one run's summary, or a list of its replications' (each with
        its seed, so that plans of one ensemble pair by seed)."""
        if plan in self.ensemble_plans:
            return self.ensemble_plans[plan].summaries
        runs = [self[r].memo("summary", kpi.summary) for r in self.plans[plan]]
        return runs if len(runs) > 1 else runs[0]

    def paired(self, plans: list[str]) -> bool:
        """Whether these plans' replications pair by seed: all from one ensemble folder."""
        folders = {
            self.ensemble_plans[p].folder if p in self.ensemble_plans else None for p in plans
        }
        return len(folders) == 1 and None not in folders

    def by_sector(self, plan: str, measure: str, per_run: Callable[[Any], pd.Series]) -> pd.Series:
        """A plan's figure by sector, the mean over its runs: ``measure`` is "tti" (mean
        travel-time index) or "response" (median response time, seconds); ``per_run``
        computes it from one run's timeline."""
        if plan in self.ensemble_plans:
            return self.ensemble_plans[plan].by_sector(measure)
        runs = [self[r].memo(measure, per_run) for r in self.plans[plan]]
        return pd.concat(runs, axis=1).mean(axis=1) if len(runs) > 1 else runs[0]

    @property
    def traffic(self) -> bool:
        """Whether any plan shown has traffic: the difference map's first measure is then
        the travel-time index, else the response time."""
        if any(p.sectors["tti"].notna().any() for p in self.ensemble_plans.values()):
            return True
        return any(v.info.get("simulator", "live") != "none" for v in self.views.values())

    def city_of(self, plan: str) -> Any:
        if plan in self.ensemble_plans:
            return self.ensemble_plans[plan].city
        return self[self.plans[plan][0]].city


@dataclass
class EnsemblePlan:
    """One plan of an ensemble folder (``twin evaluate``), as the contingency page shows
    it: its replications' KPIs and their figures by sector."""

    folder: Path
    name: str
    summaries: list[dict[str, Any]]
    sectors: pd.DataFrame
    city_path: Path
    first_run: Path | None = None  # replication 0's run folder, where timelines were kept

    @classmethod
    def load_all(cls, folder: Path) -> list[EnsemblePlan]:
        from twin.plans.ensemble_folder import load_ensemble

        ensemble = load_ensemble(folder)
        sectors = pd.read_parquet(folder / "sectors.parquet")
        plans = []
        for name in ensemble.info["plans"]:
            rows = [r for r in ensemble.rows if r["plan"] == name and r.get("kpis")]
            if not rows:
                continue  # every replication of it failed: the ensemble says so
            kept = sorted((folder / "timelines" / name).glob("*/timeline.parquet"))
            plans.append(
                cls(
                    folder=folder,
                    name=name,
                    summaries=[{**r["kpis"], "seed": r["seed"]} for r in rows],
                    sectors=sectors[sectors["plan"] == name],
                    city_path=Path(ensemble.info["city"]["path"]),
                    first_run=kept[0].parent if kept else None,
                )
            )
        return plans

    def by_sector(self, measure: str) -> pd.Series:
        column = "response_p50_s" if measure == "response" else measure
        return self.sectors.groupby("sector")[column].mean()

    @cached_property
    def city(self) -> Any:
        from twin.city import City

        return City.load(self.city_path)
