"""Check and run a command-post exercise.

``twin exercise check EXERCISE [--teams teams.yaml]`` validates the exercise file, its
MSEL sheet, the scenario and the teams, and places every inject on the city, without
running anything. ``twin exercise run EXERCISE --teams teams.yaml`` plays it on the live
kernel in wall-clock time (``--speed`` times as fast): the dashboards follow it as they
follow a live twin (``twin dash --live``), the teams give orders from their pages or the
order API, and at the end its run folder holds the whole timeline for the after-action
review (``twin exercise aar``).
"""

from __future__ import annotations

import getpass
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.exercise.director import Director, Prepared, prepare_one
from twin.scenario import Scenario, ScenarioError, load_scenario
from twin.scenario.exercise import Exercise, Teams, load_exercise, load_teams


@dataclass
class Checked:
    """An exercise ready to run: its file, scenario, teams and injects on the city."""

    exercise: Exercise
    path: Path
    scenario: Scenario
    scenario_dir: Path
    city: Any
    net: Any
    teams: Teams | None
    injects: list[Prepared]

    def summary(self) -> list[str]:
        """What ``twin exercise check`` prints."""
        injects = [p for p in self.injects if p.at_s is not None]
        follow = len(self.injects) - len(injects)
        expected = sum(1 for p in self.injects if p.inject.expect)
        times = sorted(p.at_s for p in injects if p.at_s is not None)
        clock = self.scenario.start
        lines = [
            f"Exercise {self.exercise.name}: {self.exercise.title or self.scenario.name}",
            f"  scenario {self.scenario.name} on {self.city.name}, "
            f"{clock:%Y-%m-%d %H:%M} for {self.scenario.duration / 60:g} min",
            f"  {_n(len(injects), 'inject')} from {_hm(clock, times[0])} to "
            f"{_hm(clock, times[-1])}, {_n(follow, 'follow-up')}, {expected} with an expected "
            "order",
        ]
        if self.teams is not None:
            for team in self.teams.teams:
                n = sum(1 for p in self.injects if p.inject.team in (team.name, "all"))
                lines.append(
                    f"  team {team.name}: {_n(len(team.units), 'unit')}, {_n(n, 'inject')}"
                    + (f" ({team.title})" if team.title else "")
                )
        return lines


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _hm(start: Any, t: float) -> str:
    from datetime import timedelta

    return f"{start + timedelta(seconds=t):%H:%M}"


def check_exercise(path: str | Path, teams: str | Path | None = None) -> Checked:
    """Read, validate and place an exercise (see the module docstring); a ScenarioError
    lists every problem where it is."""
    from twin.city.places import CityNet, resolve_response
    from twin.runs.run import load_city

    path = Path(path)
    exercise, where = load_exercise(path)
    scenario_path = path.parent / exercise.scenario
    if not scenario_path.is_file():
        raise ScenarioError(str(path), [("scenario", f"no scenario file {scenario_path}")])
    scenario = load_scenario(scenario_path)
    scenario_dir = scenario_path.resolve().parent
    city = load_city(scenario, scenario_dir=scenario_dir)
    net = CityNet(city)
    team_list = load_teams(teams) if teams is not None else None
    problems: list[tuple[str, str]] = []
    units: set[str] = set()
    if scenario.response is not None:
        resolved = resolve_response(scenario, city, net=net, folder=scenario_dir)
        units = {u.id for u in resolved.units} if resolved else set()
    prepared: list[Prepared] = []
    for inject, at in zip(exercise.injects, where, strict=True):
        try:
            prepared.append(prepare_one(inject, at, scenario, net, folder=path.parent))
        except ScenarioError as exc:
            problems += exc.problems
        at_s = scenario.begin_of(inject.at) if inject.at is not None else None
        if at_s is not None and at_s >= scenario.duration:
            problems.append(
                (
                    f"{at} at",
                    f"{inject.at} is after the scenario's end ({_hm(scenario.start, scenario.duration)})",
                )
            )
        if inject.does in ("incident", "crowd") and scenario.response is None:
            problems.append(
                (f"{at} does", f"a {inject.does} needs a scenario with a response section")
            )
        if team_list is not None and inject.team != "all" and team_list.of(inject.team) is None:
            names = ", ".join(t.name for t in team_list.teams)
            problems.append((f"{at} team", f"no team {inject.team!r} (the teams: {names})"))
    if team_list is not None:
        for i, team in enumerate(team_list.teams):
            unknown = [u for u in team.units if u not in units]
            if unknown:
                problems.append(
                    (
                        f"{teams}: teams[{i}].units",
                        f"{', '.join(unknown)}: not units of {scenario.name} "
                        f"(its units: {', '.join(sorted(units)) or 'none'})",
                    )
                )
    if problems:
        raise ScenarioError(str(path), problems)
    return Checked(exercise, path, scenario, scenario_dir, city, net, team_list, prepared)


@dataclass
class ExerciseResult:
    run: Path  # the run folder
    db: Path  # the live file it played on
    status: str
    events: int
    released: int
    missed: int
    answered: int


def run_exercise(
    path: str | Path,
    teams: str | Path,
    *,
    speed: float = 1.0,
    db: Path | None = None,
    out: Path | None = None,
    user: str | None = None,
    paused: bool = False,
) -> ExerciseResult:
    """Play an exercise on the live kernel in wall-clock time at ``speed`` (see the module
    docstring). The live file is ``exercises/<name>/live.duckdb`` by default (made afresh),
    the run folder ``runs/<name>``; ``paused``: the clock waits for the trainer's resume."""
    from twin._files import replacing_folder
    from twin.live.run import published, run_live, write_orders
    from twin.runs.run import write_run_files

    checked = check_exercise(path, teams)
    assert checked.teams is not None
    ex, scenario = checked.exercise, checked.scenario
    db = Path(db) if db is not None else Path("exercises") / ex.name / "live.duckdb"
    out = Path(out) if out is not None else Path("runs") / ex.name
    _fresh(db)
    user = user if user is not None else f"local:{getpass.getuser()}"
    meta = {
        "exercise": ex.name,
        "title": ex.title,
        "teams": checked.teams.model_dump(),
        "msel": [p.inject.model_dump(exclude_none=True) for p in checked.injects],
        "speed": speed,
        "user": user,
        "paused": paused,
        # a feed's messages as played, so that a replay plays the same without its file
        "feeds": {p.inject.id: p.messages for p in checked.injects if p.inject.does == "feed"},
    }
    director = Director(checked.injects, checked.teams, net=checked.net, user=user, paused=paused)
    with replacing_folder(out, marker="run.json", what="a run folder") as tmp:
        started = time.perf_counter()
        result = run_live(
            mqtt=None,
            db=db,
            scenario=checked.path.parent / ex.scenario,
            duration=scenario.duration,
            speed=speed,
            start=scenario.start,
            keep_events=True,
            components=[director],
            orders=director.orders,
            meta=meta,
            stream_to=tmp / "timeline.arrows",
            feed_in=True,
            devices=_devices(checked),
        )
        wall = time.perf_counter() - started
        write_run_files(
            tmp,
            scenario,
            checked.city,
            status="complete" if result["status"] == "complete" else "stopped",
            error="",
            reached=float(result["simulated_s"]),
            wall=wall,
            extra={
                "exercise": {
                    **meta,
                    "file": str(checked.path),
                    "scenario_dir": str(checked.scenario_dir),
                    "live": str(db),
                }
            },
        )
        shutil.copy(checked.path, tmp / "exercise.yaml")
        write_orders(result["journal"], tmp / "orders.jsonl")
    assert published(db).exists()
    return ExerciseResult(
        run=out,
        db=db,
        status=result["status"],
        events=result["events"],
        released=len(director.released),
        missed=sum(
            1
            for name in director.released
            if director.injects[name].inject.expect and name not in director.answered
        ),
        answered=len(director.answered),
    )


def _devices(checked: Checked) -> Path | None:
    """The scenario's sensors file (the detectors and gauges a feed's messages name)."""
    sensors = checked.scenario.sensors
    if sensors is None or not sensors.devices:
        return None
    path = Path(sensors.devices)
    return path if path.is_absolute() else checked.scenario_dir / path


def _fresh(db: Path) -> None:
    """An exercise's live file starts empty (its last run is in its run folder); one that
    another exercise or live twin holds is left alone, and said so."""
    import duckdb

    from twin._errors import InputError
    from twin.live.run import orders_folder, published

    if db.is_file():
        try:
            duckdb.connect(str(db)).close()
        except duckdb.IOException as exc:
            raise InputError(
                f"--db {db}: another exercise or live twin is running on it "
                f"(stop it, or give another --db): {str(exc).splitlines()[0]}"
            ) from None
    for old in (db, db.with_name(db.name + ".wal"), published(db), orders_folder(db)):
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    db.parent.mkdir(parents=True, exist_ok=True)
