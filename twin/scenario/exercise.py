"""Command-post exercises: the MSEL (master scenario events list), the teams, the orders.

An exercise file is YAML. It names the scenario the twin plays (the city, its traffic and
its emergency load) and the MSEL, written inline or kept in a spreadsheet (CSV, or an
Excel workbook's first sheet), the form exercise planners already use::

    name: menteng-unjuk-rasa
    title: Unjuk rasa Taman Suropati
    scenario: jakarta_demonstration.yaml
    msel: menteng_msel.csv            # or injects: [ ... ] with the same columns as keys

Each row of the MSEL is one :class:`Inject`: when it comes (``at``), what the team reads
(``title``, ``text``, ``sender``, ``team``), what it does in the twin (``does``, with the
place and kind it needs), the order the team should give (``expect``) within ``within``,
and the follow-ups to release if it does not (``if_missed``). A row with no ``at`` is a
follow-up only.

A teams file says which units each team commands::

    teams:
      - {name: polsek-menteng, title: Polsek Menteng, units: [R2-1, R2-2, R4-1]}
      - {name: dinkes, title: Dinas Kesehatan, units: [AMB-1, AMB-2]}

Every problem is reported at once, each where it is: ``msel.csv: row 5, column within:
not a duration``, or ``injects[3].within`` for one written in YAML.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from twin._errors import InputError
from twin._inputs import load_yaml, read_text
from twin.events import INCIDENT_TYPES
from twin.scenario._base import (
    Area,
    Duration,
    LatLon,
    Place,
    ScenarioError,
    _Model,
    _time_of_day_or_offset,
    field_problems,
)

#: What a team may order, and what each needs.
ORDERS: dict[str, str] = {
    "dispatch": "send a unit (unit) to an incident (incident)",
    "recall": "bring a unit (unit) back to its base",
    "close_road": "close roads (place) to traffic",
    "open_road": "reopen roads the team closed (place)",
    "close_sector": "close every road of a sector (sector)",
    "open_sector": "reopen a sector the team closed (sector)",
    "checkpoint": "set a checkpoint on a road (place): it closes to all but emergency vehicles",
    "move_patrol": "move an available unit (unit) to stand by elsewhere (place)",
    "mutual_aid": "ask another team (to_team) for help (text)",
    "public_message": "issue a message to the public (text)",
}
OrderName = Literal[
    "dispatch",
    "recall",
    "close_road",
    "open_road",
    "close_sector",
    "open_sector",
    "checkpoint",
    "move_patrol",
    "mutual_aid",
    "public_message",
]
#: What an inject does in the twin.
EFFECTS = ("message", "incident", "crowd", "closure", "flood", "feed")
#: The largest MSEL sheet read (rows).
MAX_INJECTS = 2000

_ID = r"^[\w-]{1,40}$"


class Order(_Model):
    """One order of a team, from its page or the order API (JSON)."""

    order: OrderName
    team: str = Field(pattern=_ID)
    unit: str | None = Field(None, max_length=40)
    incident: str | None = Field(None, max_length=80, description="an incident id, or its inject")
    place: Place | None = None
    sector: str | None = Field(None, max_length=20)
    to_team: str | None = Field(None, pattern=_ID)
    text: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _needs(self) -> Order:
        need = {
            "dispatch": ("unit", "incident"),
            "recall": ("unit",),
            "close_road": ("place",),
            "open_road": ("place",),
            "close_sector": ("sector",),
            "open_sector": ("sector",),
            "checkpoint": ("place",),
            "move_patrol": ("unit", "place"),
            "mutual_aid": ("to_team", "text"),
            "public_message": ("text",),
        }[self.order]
        missing = [k for k in need if not getattr(self, k)]
        if missing:
            raise ValueError(f"{self.order} needs {' and '.join(missing)} ({ORDERS[self.order]})")
        return self


class Inject(_Model):
    """One row of the MSEL."""

    id: str = Field(pattern=_ID, description="unique in the MSEL")
    at: str | None = Field(
        None,
        description='time of day "07:45" or offset "+15min"; empty: released only as a '
        "follow-up of a missed action",
    )
    title: str = Field(min_length=1, max_length=200)
    text: str = Field("", max_length=4000)
    sender: str = Field("control", max_length=80, description="the simulated role sending it")
    team: str = Field("all", pattern=_ID, description="the team receiving it, or all")
    does: Literal["message", "incident", "crowd", "closure", "flood", "feed"] = "message"
    incident_type: (
        Literal["crime", "traffic_accident", "medical", "fire", "public_order"] | None
    ) = None
    priority: int | None = Field(None, ge=1, le=3)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    poi: str | None = None
    sector: str | None = None
    edge: str | None = None
    radius_m: float | None = Field(None, gt=0, le=5000)
    lasts: Duration | None = None
    expect: OrderName | None = None
    within: Duration | None = None
    if_missed: list[str] = Field(default_factory=list)
    feed: str | None = Field(
        None,
        max_length=300,
        description="a feed's file of sensor messages (JSON lines or CSV, beside the "
        "exercise file), played from the inject's time, each message at its own spacing",
    )

    @field_validator("at")
    @classmethod
    def _at(cls, value: str | None) -> str | None:
        return None if value is None else _time_of_day_or_offset(value)

    @model_validator(mode="after")
    def _consistent(self) -> Inject:
        problems = []
        if self.expect and self.within is None:
            problems.append(("within", f"an expected {self.expect} needs the time allowed"))
        if self.within is not None and not self.expect:
            problems.append(("expect", "within is given: say which order is expected"))
        if self.if_missed and not self.expect:
            problems.append(("if_missed", "follow-ups come when an expected order is missed"))
        if self.does == "incident" and self.incident_type is None:
            problems.append(("incident_type", f"an incident is one of {', '.join(INCIDENT_TYPES)}"))
        if self.does in ("incident", "crowd"):
            try:
                self.place()
            except ValueError as exc:
                problems.append(("lat", f"a {self.does} happens at one place: {exc}"))
        if self.does in ("closure", "flood"):
            try:
                self.area_or_roads()
            except ValueError as exc:
                problems.append(("lat", f"a {self.does} covers roads: {exc}"))
        if self.does == "feed" and not self.feed:
            problems.append(("feed", "a feed plays a file of sensor messages: name it"))
        if self.feed and self.does != "feed":
            problems.append(("does", "a feed file is given: does is feed"))
        if problems:
            raise ValueError("\n".join(f"{k}: {m}" for k, m in problems))
        return self

    def place(self) -> Place:
        """Where an incident or crowd happens."""
        return Place(lat=self.lat, lon=self.lon, poi=self.poi, sector=self.sector, edge=self.edge)

    def area_or_roads(self) -> Area | list[Place]:
        """What a closure or flood covers: a circle (lat, lon, radius_m), a sector's roads,
        or the road at a place."""
        if self.radius_m is not None:
            if self.lat is None or self.lon is None:
                raise ValueError("radius_m needs lat and lon, the circle's centre")
            return Area(center=LatLon(lat=self.lat, lon=self.lon), radius_m=self.radius_m)
        if self.sector is not None and self.lat is None and self.edge is None and not self.poi:
            return Area(sectors=[self.sector])
        return [self.place()]


class Team(_Model):
    name: str = Field(pattern=_ID)
    title: str = ""
    units: list[str] = Field(default_factory=list, description="the units the team commands")


class Teams(_Model):
    teams: list[Team] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Teams:
        problems = []
        seen: dict[str, str] = {}
        names = [t.name for t in self.teams]
        for i, team in enumerate(self.teams):
            if team.name == "all":
                problems.append(f"teams[{i}].name: 'all' means every team")
            if names.index(team.name) != i:
                problems.append(f"teams[{i}].name: {team.name!r} is named twice")
            for unit in team.units:
                if unit in seen and seen[unit] != team.name:
                    problems.append(f"teams[{i}].units: {unit} is {seen[unit]}'s already")
                seen[unit] = team.name
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def of(self, name: str) -> Team | None:
        return next((t for t in self.teams if t.name == name), None)

    def owner(self, unit: str) -> str | None:
        """The team that commands ``unit`` (None: no team does)."""
        return next((t.name for t in self.teams if unit in t.units), None)


class Exercise(_Model):
    """An exercise: the scenario the twin plays and the MSEL."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,60}$")
    title: str = ""
    description: str = ""
    scenario: str = Field(description="the scenario file, relative to the exercise file")
    msel: str | None = Field(None, description="a CSV or Excel (.xlsx) sheet of injects")
    injects: list[Inject] = Field(default_factory=list)

    @model_validator(mode="after")
    def _msel(self) -> Exercise:
        if self.msel and self.injects:
            raise ValueError("injects: give the injects inline or in the msel sheet, not both")
        return self


def check_msel(injects: list[Inject], where: list[str]) -> list[tuple[str, str]]:
    """Problems across rows: ids named twice, follow-ups that do not exist or are never
    released, and follow-up chains that loop. ``where[i]`` says where row ``i`` is."""
    problems: list[tuple[str, str]] = []
    ids: dict[str, int] = {}
    for i, inj in enumerate(injects):
        if inj.id in ids:
            problems.append((where[i], f"id {inj.id!r} is also {where[ids[inj.id]]}'s"))
        ids.setdefault(inj.id, i)
    followed = set()
    for i, inj in enumerate(injects):
        for name in inj.if_missed:
            if name not in ids:
                problems.append((f"{where[i]} if_missed", f"no inject {name!r} in the MSEL"))
            elif injects[ids[name]].at is not None:
                problems.append(
                    (f"{where[i]} if_missed", f"{name} has its own time: a follow-up has no at")
                )
            followed.add(name)
    for i, inj in enumerate(injects):
        if inj.at is None and inj.id not in followed:
            problems.append((f"{where[i]} at", "no time, and no inject names it in if_missed"))
    if not problems:  # a follow-up chain that comes back to itself would never end
        for inj in injects:
            seen, todo = set(), list(inj.if_missed)
            while todo:
                name = todo.pop()
                if name == inj.id:
                    problems.append((where[ids[inj.id]], "its follow-ups lead back to it"))
                    break
                if name not in seen:
                    seen.add(name)
                    todo.extend(injects[ids[name]].if_missed)
    return problems


def load_exercise(path: str | Path) -> tuple[Exercise, list[str]]:
    """Read and validate an exercise file (and its MSEL sheet). Returns the exercise and,
    for each inject, where it was written (``msel.csv row 5``, or ``injects[3]``).

    Raises
    ------
    ScenarioError
        Listing every problem where it is.
    """
    path = Path(path)
    exercise = _read(path, Exercise, "exercise file")
    if exercise.msel:
        sheet = path.parent / exercise.msel
        injects, where = read_msel(sheet)
        exercise = exercise.model_copy(update={"injects": injects})
        source = str(sheet)
    else:
        where = [f"injects[{i}]" for i in range(len(exercise.injects))]
        source = str(path)
    if not exercise.injects:
        raise ScenarioError(source, [("", "the MSEL has no inject")])
    problems = check_msel(exercise.injects, where)
    if problems:
        raise ScenarioError(source, problems)
    if exercise.msel:  # said from the exercise file later: name the sheet too
        where = [f"{exercise.msel} {w}" for w in where]
    return exercise, where


def read_msel(path: Path) -> tuple[list[Inject], list[str]]:
    """The injects of a CSV or Excel sheet: a header row of column names (the fields of
    :class:`Inject`), then one inject a row; blank rows are skipped. Lists (``if_missed``)
    are written comma-separated in one cell."""
    if not path.is_file():
        raise InputError(f"{path}: MSEL sheet not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        rows = _excel_rows(path)
    else:
        raise InputError(f"{path}: an MSEL sheet is .csv or .xlsx, not {suffix or 'no suffix'}")
    if not rows:
        raise ScenarioError(str(path), [("", "the sheet is empty: no header row")])
    header_row, header = rows[0]
    names = [str(h or "").strip().lower().replace(" ", "_") for h in header]
    fields = set(Inject.model_fields)
    problems: list[tuple[str, str]] = []
    for j, name in enumerate(names):
        if name and name not in fields:
            problems.append(
                (
                    f"row {header_row}, column {_column(j)}",
                    f"unknown column {header[j]!r} (the columns: {', '.join(Inject.model_fields)})",
                )
            )
    if problems:
        raise ScenarioError(str(path), problems)
    injects, where = [], []
    for number, cells in rows[1:]:
        values = {
            names[j]: _cell(names[j], v)
            for j, v in enumerate(cells)
            if j < len(names) and names[j] and _cell(names[j], v) is not None
        }
        if not values:
            continue
        if len(injects) >= MAX_INJECTS:
            raise ScenarioError(str(path), [(f"row {number}", f"more than {MAX_INJECTS} injects")])
        try:
            injects.append(Inject.model_validate(values))
            where.append(f"row {number}")
        except ValidationError as exc:
            for err in exc.errors():
                for field, msg in field_problems(err):
                    name = field.split(".")[0].split("[")[0]
                    col = f", column {_column(names.index(name))} ({name})" if name in names else ""
                    if not col and field:
                        col = f", column {field}"
                    problems.append((f"row {number}{col}", msg))
    if problems:
        raise ScenarioError(str(path), problems)
    return injects, where


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and name in ("priority",):
        value = int(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if name == "if_missed":
            return [v.strip() for v in value.split(",") if v.strip()]
    elif name in ("at", "title", "text", "sender", "team", "id", "lasts", "within", "sector"):
        if hasattr(value, "strftime"):  # Excel turned "07:45" (or "00:10") into a time
            return value.strftime("%H:%M:%S")
        value = str(value)
    return value


def _column(j: int) -> str:
    """A spreadsheet's column letter: 0 -> A, 26 -> AA."""
    out = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(65 + r) + out
    return out


def _csv_rows(path: Path) -> list[tuple[int, list[Any]]]:
    text = read_text(path, what="MSEL sheet")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    try:
        return [
            (i + 1, row)
            for i, row in enumerate(csv.reader(io.StringIO(text), dialect))
            if i == 0 or any(c.strip() for c in row)
        ]
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV sheet ({exc})") from None


def _excel_rows(path: Path) -> list[tuple[int, list[Any]]]:
    import zipfile

    from twin._inputs import MAX_DATA_BYTES

    if path.stat().st_size > MAX_DATA_BYTES:
        raise InputError(f"{path}: larger than {MAX_DATA_BYTES // 2**20} MB")
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable Excel workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        rows = []
        for i, row in enumerate(sheet.iter_rows(values_only=True)):
            if i > MAX_INJECTS + 1:
                break
            if i == 0 or any(v is not None and str(v).strip() for v in row):
                rows.append((i + 1, list(row)))
        return rows
    finally:
        book.close()


def load_teams(path: str | Path) -> Teams:
    """Read and validate a teams file."""
    return _read(Path(path), Teams, "teams file")


def _read(path: Path, model: type[Any], what: str) -> Any:
    """A YAML file validated as ``model``; a ScenarioError names each problem's field."""
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        data = load_yaml(path, what=what)
    except InputError as exc:
        raise ScenarioError(str(path), [("", str(exc).removeprefix(f"{path}: "))]) from None
    if not isinstance(data, dict):
        raise ScenarioError(str(path), [("", "write its fields as a mapping (name: value)")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            str(path), [p for err in exc.errors() for p in field_problems(err)]
        ) from None
