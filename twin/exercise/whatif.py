"""The what-if at each key decision of an exercise: what the expected action would have
changed, with its interval.

``twin exercise whatif RUN`` takes the decisions the review finds (each inject whose
expected order was missed or came late) and, for each, plays the exercise again twice:

- **as played**: the teams' own orders and the trainer's controls, from the run's order
  journal (``orders.jsonl``), each taken at the simulated second it was taken in the
  exercise (:class:`twin.live.run.ReplayedOrders`);
- **expected**: the same, with the expected action in place of the team's:
  - a missed dispatch to an inject's incident: the CAD sends its units when the inject
    comes, by its own dispatch policy (the closest available), as a command post that
    approved the CAD's proposal at once would;
  - a missed road or sector closure, or checkpoint: the order given when the inject came,
    on the inject's place;
  - a late answer: the team's own answering order, given when the inject came.
  A public message or a request for mutual aid changes nothing the twin models, so it has
  no what-if; the review says so.

Each pair runs under R draws (seeds; the exercise's own seed first) with common random
numbers: demand, incidents and callers are the same in both runs of a draw, so their
difference is the decision's. The draws run on Dask like an ensemble
(:mod:`twin.plans.ensemble`: a local cluster, or a scheduler's address). Every run goes
from the exercise's start to the last decision plus the horizon (30 min by default).

**The replay is checked.** The as-played run under the exercise's own seed must equal the
exercise's timeline event by event up to that moment (as ``twin fork`` checks a live
twin), or the what-if stops and says where they part.

Why pairs of whole runs, not a fork at the decision: the twin's random streams are drawn
from generators made at the start, so a fork could not vary the draws after the decision
without changing the replay before it. Over R paired draws the decision's effect is
measured with its uncertainty, and draw 0's as-played run is the exercise itself.

What each pair is judged on (:func:`twin.kpi.compare`, paired by seed, 95 % intervals):
the inject's incident's wait for its first unit on scene (to the end of the run when none
came), the incidents still open at the end, the sector-minutes rated rawan, and every KPI
of the run. In another draw an order that named a random incident (not an inject's) may
find another incident or none: such orders are replayed as given.

The results go into ``RUN/whatif/`` (``whatif.json``, ``replications.parquet``), and the
after-action review (``twin exercise aar``) shows them.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from twin._errors import InputError

#: Simulated seconds each run goes on after the last decision, by default.
HORIZON_S = 30 * 60.0
#: Draws (seeds) per decision, by default.
REPLICATIONS = 10
#: The plan name of the as-played runs.
AS_PLAYED = "as played"
#: The orders whose effect the twin models, and so can be priced.
CLOSING = ("close_road", "close_sector", "checkpoint")
#: The measures each decision shows first, in this order.
HEADLINE = (
    "inject_wait_s",
    "open_incidents_end",
    "rawan_sector_min",
    "on_scene_in_target",
    "response_p90_s",
    "delay_veh_h",
)


@dataclass
class Decision:
    """A key decision: an inject whose expected order was missed or late."""

    inject: str
    title: str
    team: str
    expected: str
    verdict: str  # "missed" or "late"
    released_s: float
    delay_s: float | None = None  # a late answer's delay
    order_id: str = ""  # a late answer's order
    effect: str = ""  # what the inject does in the twin
    by: str = ""  # the team whose order the expected run gives
    play: str = ""  # the expected action, in words ("" when it cannot be played)
    why_not: str = ""  # why it cannot be played
    kind: str = ""  # how the expected run differs: "book", "order" or "move"
    order: dict[str, Any] = field(default_factory=dict)  # the order the expected run gives


@dataclass(frozen=True)
class ReplayJob:
    """One variant of the exercise, as a worker plays it (:func:`replay`)."""

    plan: str
    scenario_json: str
    files: dict[str, bytes]
    city_hash: str
    msel: list[dict[str, Any]]
    teams: dict[str, Any]
    journal: list[dict[str, Any]]
    until: float
    user: str
    paused: bool
    speed: float
    by_the_book: tuple[str, ...] = ()
    keep_timeline: bool = False
    feeds: dict[str, list[Any]] = field(default_factory=dict)  # a feed inject's messages
    caller: bytes | None = None  # the exercise's pseudonym key, for its feeds' callers


def decisions(run: Path, rev: Any = None) -> list[Decision]:
    """The key decisions of the exercise in run folder ``run``, in the order the injects
    came, each with the expected action the what-if plays, or why it cannot."""
    from twin.exercise.aar import review

    rev = rev if rev is not None else review(run)
    info = rev.info
    msel = {i["id"]: i for i in info["exercise"].get("msel", [])}
    teams = [t["name"] for t in info["exercise"]["teams"]["teams"]]
    out = []
    for r in rev.injects.itertuples():
        if r.verdict not in ("missed", "late"):
            continue
        inject = msel.get(r.inject, {})
        team = r.team if r.team != "all" else teams[0]
        d = Decision(
            inject=r.inject,
            title=str(r.title),
            team=str(r.team),
            expected=str(r.expected),
            verdict=str(r.verdict),
            released_s=float(r.t),
            effect=str(r.effect or ""),
        )
        when = _clock(info, d.released_s)
        if r.verdict == "late":
            d.delay_s, d.order_id, d.kind = float(r.delay_s), str(r.order_id), "move"
            d.by = str(r.answered_by)
            d.play = (
                f"{r.answered_by}'s own {_words(d.expected)} ({d.order_id}) given at {when}, "
                f"when the inject came, not {d.delay_s / 60:.1f} min later"
            )
        elif d.expected == "dispatch" and d.effect in ("incident", "crowd"):
            d.kind = "book"
            d.play = f"the CAD's closest units sent at {when}, when the inject came"
        elif d.expected in CLOSING:
            d.order = _closing_order(inject, d.expected, team)
            if d.order:
                d.kind, d.by = "order", team
                who = f"{team} (for every team)" if r.team == "all" else team
                d.play = f"{_words(d.expected)} at the inject's place by {who} at {when}"
            else:
                d.why_not = f"the inject names no place to {_words(d.expected)}"
        elif d.expected in ("public_message", "mutual_aid"):
            d.why_not = f"the twin does not model what a {_words(d.expected)} changes"
        else:
            d.why_not = f"the MSEL names no unit or road for the {_words(d.expected)}"
        out.append(d)
    return out


def _words(order: str) -> str:
    return order.replace("_", " ")


def _clock(info: dict[str, Any], t: float) -> str:
    from datetime import datetime, timedelta

    return f"{datetime.fromisoformat(info['start_local']) + timedelta(seconds=t):%H:%M:%S}"


def _closing_order(inject: dict[str, Any], order: str, team: str) -> dict[str, Any]:
    """The closure order an inject expects, on the inject's own place ({} if it has none):
    a sector for a sector's closure, a point, road or POI for the others."""
    doc: dict[str, Any] = {"order": order, "team": team}
    if order == "close_sector":
        return {**doc, "sector": inject["sector"]} if inject.get("sector") else {}
    if inject.get("lat") is not None and inject.get("lon") is not None:
        return {**doc, "place": {"lat": inject["lat"], "lon": inject["lon"]}}
    for key in ("edge", "poi"):
        if inject.get(key):
            return {**doc, "place": {key: inject[key]}}
    return {}


def with_ids(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journal with every team order's id written in, as the director gave it to one
    sent without (``order-N``, N counting the team orders): a journal whose orders move
    keeps their ids."""
    out, n = [], 0
    for entry in journal:
        entry = copy.deepcopy(entry)
        order = entry["order"]
        if order.get("kind") == "exercise_order":
            n += 1
            order["order_id"] = order.get("order_id") or f"order-{n}"
        out.append(entry)
    return out


def expected_journal(journal: list[dict[str, Any]], d: Decision) -> list[dict[str, Any]]:
    """The journal of decision ``d``'s expected run (see the module docstring)."""
    at = d.released_s + 0.5  # taken at the first second after the inject came
    if d.kind == "move":
        moved = [e for e in journal if e["order"].get("order_id") == d.order_id]
        if not moved:
            raise InputError(f"{d.inject}: its answer {d.order_id} is not in the order journal")
        rest = [e for e in journal if e["order"].get("order_id") != d.order_id]
        return [*rest, {**moved[0], "t": at, "paused": False}]
    if d.kind == "order":
        order = {
            "kind": "exercise_order",
            **d.order,
            "user": "what-if",
            "order_id": f"what-if-{d.inject}",
        }
        return [*journal, {"t": at, "paused": False, "order": order}]
    return list(journal)


# -- one run, on a worker -------------------------------------------------------------------


def replay(job: ReplayJob, city: bytes, index: int, seed: int) -> dict[str, Any]:
    """Play one variant of the exercise under ``seed``; runs on a Dask worker. Returns its
    row: plan, replication, seed, status, the reason of a failure, timings and the
    measures (:func:`measures`); and, with ``keep_timeline``, the timeline as Parquet."""
    from twin._sumo import sumo_console_to
    from twin.city.places import CityNet
    from twin.exercise.director import Director, prepare_one
    from twin.live.run import run_live
    from twin.plans.ensemble import _worker_address, city_on_worker
    from twin.runs.run import load_city
    from twin.scenario import Scenario
    from twin.scenario.exercise import Inject, Teams
    from twin.sim.timeline import read_stream

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
        with tempfile.TemporaryDirectory(prefix="twin-whatif-") as tmp:
            folder = Path(tmp)
            home = city_on_worker(job.city_hash, city)
            for name, data in job.files.items():
                (folder / name).write_bytes(data)
            doc = json.loads(job.scenario_json)
            doc["city"] = str(home)
            doc["seed"] = seed
            scenario = Scenario.model_validate(doc)
            net = CityNet(load_city(scenario, scenario_dir=folder))
            injects = [
                prepare_one(
                    Inject.model_validate(i),
                    f"MSEL {i['id']}",
                    scenario,
                    net,
                    messages=job.feeds.get(i["id"]) if i.get("does") == "feed" else None,
                )
                for i in job.msel
            ]
            devices = None
            if scenario.sensors is not None and scenario.sensors.devices:
                devices = folder / scenario.sensors.devices
            director = Director(
                injects,
                Teams.model_validate(job.teams),
                net=net,
                user=job.user,
                paused=job.paused,
                speed=job.speed,
                by_the_book=job.by_the_book,
            )
            # SUMO's warnings off the terminal, into a log of this worker's
            logs = Path(tempfile.gettempdir()) / f"smart-policing-twin-{os.getuid()}" / "logs"
            sumo_console_to(logs / f"sumo-{os.getpid()}.log")
            began = time.perf_counter()
            result = run_live(
                mqtt=None,
                db=folder / "live.duckdb",
                scenario=scenario,
                scenario_dir=folder,
                duration=scenario.duration,
                until=job.until,
                speed=None,
                start=scenario.start,
                keep_events=True,
                components=[director],
                orders=director.orders,
                replay=job.journal,
                stream_to=folder / "timeline.arrows",
                feed_in=True,
                devices=devices,
                caller=job.caller,
            )
            table = read_stream(folder / "timeline.arrows")
            row["run_s"] = time.perf_counter() - began
            row["simulated_s"] = result["simulated_s"]
            row["kpis"] = measures(table, job.until, [i["id"] for i in job.msel])
            if job.keep_timeline:
                import pyarrow.parquet as pq

                sink = io.BytesIO()
                pq.write_table(table, sink)
                row["timeline"] = sink.getvalue()
            row["status"] = "complete"
    except Exception as exc:  # said, not raised: the client tries once more elsewhere
        row["reason"] = f"{type(exc).__name__}: {exc}"
    row["worker_s"] = time.perf_counter() - started
    return row


def measures(table: Any, until: float, injects: list[str]) -> dict[str, Any]:
    """A run's KPIs (:func:`twin.kpi.summary`), the incidents still open at the end, the
    sector-minutes rated rawan, and for each inject's incident its wait for the first unit
    on scene (to ``until`` when none came): ``wait:<inject>``, in seconds."""
    from twin import kpi
    from twin.exercise.aar import STATUS_EVERY_MIN, _status_over_time
    from twin.kpi._query import connect

    out = dict(kpi.summary(table))
    con = connect(table, load=True)
    open_end = con.execute(
        "SELECT count(*) FROM timeline o WHERE kind = 'incident_occurred' AND incident NOT IN "
        "(SELECT incident FROM timeline WHERE kind = 'incident_closed')"
    ).fetchone()
    out["open_incidents_end"] = int(open_end[0]) if open_end else 0
    status = _status_over_time(con, until)
    out["rawan_sector_min"] = float((status == "rawan").to_numpy().sum() * STATUS_EVERY_MIN)
    waits = con.execute(
        """
        WITH inc AS (SELECT incident, t AS occurred_t FROM timeline
                     WHERE kind = 'incident_occurred' AND origin = 'inject'),
             scene AS (SELECT incident, min(t) AS scene_t FROM timeline
                       WHERE kind = 'unit_state' AND state = 'on_scene' GROUP BY incident)
        SELECT incident, occurred_t, scene_t FROM inc LEFT JOIN scene USING (incident)
        """
    ).fetchall()
    for incident, occurred, scene in waits:
        name = str(incident).split("-", 1)[1] if "-" in str(incident) else str(incident)
        if name in injects:
            out[f"wait:{name}"] = float((scene if scene is not None else until) - occurred)
    return out


# -- the pairs, on the client ---------------------------------------------------------------


@dataclass
class WhatIf:
    """What ``twin exercise whatif`` found (see the module docstring)."""

    folder: Path
    decisions: list[Decision]
    until_s: float
    replications: int
    seeds: list[int]
    check: str
    tables: dict[str, pd.DataFrame]  # decision -> twin.kpi.compare table
    failures: list[dict[str, Any]]


def summary_lines(saved: dict[str, Any]) -> list[str]:
    """What ``twin exercise whatif`` prints, from its ``whatif.json``: each decision, what
    the expected run played, and its headline figures with their 95 % intervals."""
    n = len(saved["decisions"])
    lines = [
        f"{n} key decision{'s' if n != 1 else ''}; each played both ways in "
        f"{saved['replications']} draws, to {saved['until']}; differences with their 95 % "
        f"interval. The replay of the exercise: {saved['check']}."
    ]
    for d in saved["decisions"]:
        head = f"{d['inject']} ({d['team']}), {d['verdict']}:"
        if d["why_not"]:
            lines.append(f"{head} no what-if: {d['why_not']}")
            continue
        lines.append(f"{head} {d['play']}")
        if not d["figures"]:
            lines.append("  no draw completed both ways (see whatif.json)")
        for label, played, expected, diff, verdict in decision_rows(d):
            lines.append(f"  {label}: {played} as played, {expected} expected: {diff} ({verdict})")
    return lines


def decision_rows(decision: dict[str, Any]) -> list[list[str]]:
    """A priced decision's figures in words, as the console, the review and the replay
    page show them: measure, as played, expected, difference ± its 95 % interval's
    half-width, verdict."""
    from twin.kpi.labels import format_interval

    rows = []
    for r in decision["figures"]:
        unit = r["unit"]
        rows.append(
            [
                r["label"],
                _fmt(r[AS_PLAYED], unit),
                _fmt(r["expected"], unit),
                _unit(format_interval(r["delta"], r["half"], unit, signed=True), unit),
                _verdict_words(r["verdict"]),
            ]
        )
    return rows


def _fmt(value: Any, unit: str) -> str:
    from twin.kpi.labels import format_value

    return _unit(format_value(value, unit), unit)


def _unit(text: str, unit: str) -> str:
    """A figure with its unit said ("20.0 min"), but for shares (already "78.3%")."""
    return text if unit in ("", "%") or text == "–" else f"{text} {unit}"


def _verdict_words(verdict: Any) -> str:
    from twin.kpi.ensemble import VERDICT_WORDS

    return VERDICT_WORDS.get(verdict, str(verdict)) if verdict else "no judgement"


def _headline(table: pd.DataFrame) -> pd.DataFrame:
    """The decision's headline rows: label, unit, as played, expected, delta, half,
    verdict."""
    rows = table[table["kpi"].isin(HEADLINE)].copy()
    rows["order"] = rows["kpi"].map({k: i for i, k in enumerate(HEADLINE)})
    rows = rows.sort_values("order")
    return pd.DataFrame(
        {
            "kpi": rows["kpi"],
            "label": rows["label"],
            "unit": rows["unit"],
            "better": rows["better"],
            AS_PLAYED: rows[AS_PLAYED],
            "expected": rows["expected"],
            "delta": rows["Δ expected"],
            "half": rows["± Δ expected"],
            "verdict": rows["verdict expected"],
        }
    ).reset_index(drop=True)


def what_if(
    run: str | Path,
    *,
    replications: int = REPLICATIONS,
    horizon_s: float = HORIZON_S,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> WhatIf:
    """Play each key decision of the exercise in ``run`` both ways, ``replications``
    times (see the module docstring), and write ``RUN/whatif/``."""
    from twin._files import replacing_folder
    from twin.exercise.aar import review
    from twin.live.fork import first_difference
    from twin.live.run import read_orders
    from twin.plans.ensemble import _cluster, _Runner, pack_city, scenario_job
    from twin.runs.run import load_city
    from twin.scenario import load_scenario

    run = Path(run)
    if replications < 2:
        raise InputError("--replications: at least 2 (one run is one draw: no interval)")
    if not horizon_s > 0:
        raise InputError("--horizon: a positive duration")
    rev = review(run)
    info = rev.info
    ex = info["exercise"]
    if not (run / "orders.jsonl").is_file():
        raise InputError(
            f"{run}: no order journal (orders.jsonl): the exercise was run by an older twin, "
            "and cannot be played again"
        )
    journal = with_ids(read_orders(run / "orders.jsonl"))
    found = decisions(run, rev)
    playable = [d for d in found if not d.why_not]
    reached = float(info["simulated_s"])
    until = min(reached, max((d.released_s for d in playable), default=0.0) + horizon_s)
    scenario = load_scenario(run / "scenario.yaml")
    scenario_dir = Path(ex.get("scenario_dir") or run)
    if not scenario_dir.is_dir():
        scenario_dir = run
    city = load_city(scenario, scenario_dir=scenario_dir)
    city_hash, packed = pack_city(Path(city.path))
    base = scenario_job(AS_PLAYED, scenario, scenario_dir, city, city_hash, keep_timeline=False)
    common = {
        "scenario_json": base.scenario_json,
        "files": base.files,
        "city_hash": city_hash,
        "msel": ex["msel"],
        "teams": ex["teams"],
        "until": until,
        "user": ex.get("user", ""),
        "paused": bool(ex.get("paused", False)),
        "speed": float(ex.get("speed") or 0.0),
        "feeds": ex.get("feeds") or {},
        "caller": _caller_key(ex),
    }
    jobs: dict[str, ReplayJob] = {}
    if playable:
        jobs[AS_PLAYED] = ReplayJob(AS_PLAYED, journal=journal, keep_timeline=True, **common)
        for d in playable:
            jobs[d.inject] = ReplayJob(
                d.inject,
                journal=expected_journal(journal, d),
                by_the_book=(d.inject,) if d.kind == "book" else (),
                **common,
            )
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    check = "nothing to play"
    seeds = [(scenario.seed + i) % 2**31 for i in range(replications)]
    if jobs:
        with _cluster(workers, scheduler, len(jobs) * replications) as client:
            runner = _Runner(client, jobs, packed, scenario.seed, progress, task=replay)
            try:
                runner.run_round(range(replications))
            finally:
                runner.close()
            rows, failures = runner.rows, runner.failures()
        first = next((r for r in rows if r["plan"] == AS_PLAYED and r["replication"] == 0), None)
        if first is None or first["status"] != "complete":
            why = first["reason"] if first else "it did not run"
            raise InputError(f"the exercise could not be played again: {why}")
        import pyarrow.parquet as pq

        played = pq.read_table(run / "timeline.parquet")
        replayed = pq.read_table(io.BytesIO(first.pop("timeline")))
        differs = first_difference(played, replayed, until)
        if differs is not None:
            raise InputError(
                f"the replay parts from the exercise, so its what-if cannot be trusted: {differs}"
            )
        check = f"identical, event by event, up to {_clock(info, until)}"
    tables = {}
    for d in playable:
        table = _pair_table(rows, d.inject)
        if table is not None:
            tables[d.inject] = table
    result = WhatIf(run / "whatif", found, until, replications, seeds, check, tables, failures)
    with replacing_folder(result.folder, marker="whatif.json", what="a what-if folder") as tmp:
        flat = [
            {k: v for k, v in r.items() if k not in ("kpis", "timeline")}
            | {
                k: v
                for k, v in (r.get("kpis") or {}).items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            for r in rows
        ]
        pd.DataFrame(flat).to_parquet(tmp / "replications.parquet", index=False)
        (tmp / "whatif.json").write_text(
            json.dumps(
                {
                    "exercise": ex["exercise"],
                    "until_s": until,
                    "until": _clock(info, until),
                    "horizon_s": horizon_s,
                    "replications": replications,
                    "seeds": seeds,
                    "check": check,
                    "decisions": [
                        {
                            **asdict(d),
                            "figures": (
                                _headline(tables[d.inject]).to_dict("records")
                                if d.inject in tables
                                else []
                            ),
                        }
                        for d in found
                    ],
                    "failures": failures,
                },
                indent=2,
                default=_json,
            )
            + "\n",
            encoding="utf-8",
        )
    return result


def _caller_key(ex: dict[str, Any]) -> bytes | None:
    """The pseudonym key the exercise's feeds were played under (its callers' pseudonyms
    must come out the same in a replay): sent to the workers in memory, never written."""
    env = os.environ.get("TWIN_CALLER_KEY")
    if env:
        return bytes.fromhex(env)
    path = Path(ex.get("live") or "").parent / "caller.key"
    return bytes.fromhex(path.read_text().strip()) if ex.get("live") and path.is_file() else None


def _json(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return None
    return str(v)


def _pair_table(rows: list[dict[str, Any]], decision: str) -> pd.DataFrame | None:
    """:func:`twin.kpi.compare` of the decision's pairs, with its inject's wait as
    ``inject_wait_s``."""
    from twin import kpi

    def side(plan: str) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            if r["plan"] != plan or r.get("status") != "complete":
                continue
            k = dict(r["kpis"])
            k["inject_wait_s"] = k.get(f"wait:{decision}")
            out.append({**k, "seed": r["seed"]})
        return out

    a, b = side(AS_PLAYED), side(decision)
    if not a or not b:
        return None
    return kpi.compare({AS_PLAYED: a, "expected": b}, reference=AS_PLAYED, paired=True)


def load_whatif(run: Path) -> dict[str, Any] | None:
    """The what-if ``twin exercise whatif`` wrote for run folder ``run``, if any."""
    path = Path(run) / "whatif" / "whatif.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
