"""Readiness (*asta siap*): what a plan needs against what the command has.

The police's eight kinds of readiness are software and SOPs, the command post, analysis,
staff, network, partners, logistics and budget. A plan in the twin puts people, vehicles,
call-takers and posts on duty at a cost; a *readiness inventory* says what the command has.
:func:`check` compares them kind by kind and flags each gap:

- **staff**: people on duty at once in each shift (pagi, siang, malam by default), by role
  (``police_officer``, ``paramedic``, ``firefighter``, ``call_taker``), and the
  personnel-hours the plan uses;
- **logistics**: vehicles by type on duty at once, and posts staffed;
- **command post**: call-taker seats in the call centre;
- **budget**: the plan's cost over the run (the ensemble's mean) against the budget;
- **analysis**: the evaluation itself (its replications and intervals);
- **software and SOPs, network, partners**: outside the twin. The inventory may state
  each as ready or not, with a note; the check reports what it states, and says that the
  twin does not measure it.

An inventory file::

    name: Polresta (example)
    personnel:                      # people on duty in each shift, by role
      police_officer: {pagi: 12, siang: 10, malam: 6}
      paramedic: {pagi: 4, siang: 4, malam: 2}
      call_taker: {pagi: 3, siang: 3, malam: 2}
    vehicles: {police_car: 5, motorbike: 2, ambulance: 2, fire_engine: 1}
    call_taker_seats: 4
    posts: 2
    budget: 3000000                 # rupiah for the operation
    outside:                        # what the twin cannot measure, as the command states it
      network: {ready: false, note: "north repeater down"}

Anything left out is not checked, and the check says so.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.scenario import Scenario
from twin.scenario._base import ScenarioError, _Model, field_problems

Role = Literal["police_officer", "paramedic", "firefighter", "call_taker"]

#: Who crews each unit type.
ROLE_OF = {
    "police_car": "police_officer",
    "motorbike": "police_officer",
    "ambulance": "paramedic",
    "fire_engine": "firefighter",
}

#: The eight kinds of readiness, in the doctrine's order, and whether the twin measures them.
KINDS = {
    "software_sops": ("Software and SOPs", False),
    "command_post": ("Command post (K3i)", True),
    "analysis": ("Analysis", True),
    "staff": ("Staff", True),
    "network": ("Network and communications", False),
    "partners": ("Partners", False),
    "logistics": ("Logistics", True),
    "budget": ("Budget", True),
}

#: How often the check looks at who is on duty, seconds.
STEP_S = 300.0


def _default_shifts() -> dict[str, str]:
    return {"pagi": "06:00-14:00", "siang": "14:00-22:00", "malam": "22:00-06:00"}


def _default_crew() -> dict[str, int]:
    return {"police_car": 2, "motorbike": 1, "ambulance": 2, "fire_engine": 4}


class Stated(_Model):
    """A kind of readiness the twin does not measure, as the command states it."""

    ready: bool
    note: str = ""


class Inventory(_Model):
    """What the command has (see the module docstring)."""

    name: str = "inventory"
    shifts: dict[str, str] = Field(default_factory=_default_shifts)
    crew: dict[Literal["police_car", "motorbike", "ambulance", "fire_engine"], int] = Field(
        default_factory=_default_crew, description="people per unit, by type"
    )
    personnel: dict[Role, dict[str, int]] = Field(
        default_factory=dict, description="people on duty in each shift, by role"
    )
    vehicles: dict[Literal["police_car", "motorbike", "ambulance", "fire_engine"], int] | None = (
        None
    )
    call_taker_seats: int | None = Field(None, ge=0)
    posts: int | None = Field(None, ge=0)
    budget: float | None = Field(None, ge=0, description="rupiah for the operation")
    outside: dict[
        Literal["software_sops", "network", "partners", "command_post", "analysis"], Stated
    ] = Field(default_factory=dict)

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", text.strip()):
                raise ValueError(f'shift {name}: write it as "06:00-14:00", not {text!r}')
        return value

    @field_validator("personnel")
    @classmethod
    def _counts(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for role, shifts in value.items():
            bad = {s: n for s, n in shifts.items() if not isinstance(n, int) or n < 0}
            if bad:
                raise ValueError(f"{role}: people are whole numbers ≥ 0, got {bad}")
        return value


def load_inventory(path: str | Path) -> Inventory:
    """Read an inventory file; every problem with its field path, naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: inventory file not found")
    doc = load_yaml(path, what="inventory file")
    if not isinstance(doc, dict):
        raise ScenarioError(str(path), [("", "an inventory is a mapping of fields")])
    try:
        inventory = Inventory.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(
            str(path), [p for e in exc.errors() for p in field_problems(e)]
        ) from exc
    unknown = [
        (
            f"personnel.{role}.{shift}",
            f"no shift {shift!r} (shifts are {', '.join(inventory.shifts)})",
        )
        for role, shifts in inventory.personnel.items()
        for shift in shifts
        if shift not in inventory.shifts
    ]
    if unknown:
        raise ScenarioError(str(path), unknown)
    return inventory


# -- what a plan needs ---------------------------------------------------------------------------


def _minutes(text: str) -> int:
    h, m = text.strip().split(":")
    return int(h) * 60 + int(m)


def _in_window(local: datetime, window: str) -> bool:
    a, b = (_minutes(x) for x in window.split("-"))
    now = local.hour * 60 + local.minute
    return a <= now < b if a < b else now >= a or now < b


def needs(scenario: Scenario, inventory: Inventory) -> dict[str, Any]:
    """What the scenario (a plan laid over it) puts on duty: people at once per shift by
    role, personnel-hours per shift by role, vehicles at once by type, call-taker seats
    and posts."""
    from twin.scenario.plan import resources

    response = scenario.response
    people: dict[str, dict[str, int]] = {}
    hours: dict[str, dict[str, float]] = {}
    vehicles: dict[str, int] = {}
    if response is None:
        return {"people": people, "hours": hours, "vehicles": vehicles, "seats": 0, "posts": 0}
    seats = sum(p.call_takers for p in response.call_centre.pools)
    t = 0.0
    while t < scenario.duration:
        local = scenario.start + timedelta(seconds=t)
        shift = next(
            (s for s, w in inventory.shifts.items() if _in_window(local, w)), "outside shifts"
        )
        on: dict[str, int] = {"call_taker": seats}
        by_type: dict[str, int] = {}
        for group in response.units:
            if group.shift and not _in_window(local, group.shift):
                continue
            role = ROLE_OF[group.type]
            on[role] = on.get(role, 0) + group.count * inventory.crew.get(group.type, 1)
            by_type[group.type] = by_type.get(group.type, 0) + group.count
        step = min(STEP_S, scenario.duration - t) / 3600
        for role, n in on.items():
            people.setdefault(role, {})
            people[role][shift] = max(people[role].get(shift, 0), n)
            hours.setdefault(role, {})
            hours[role][shift] = hours[role].get(shift, 0.0) + n * step
        for kind, n in by_type.items():
            vehicles[kind] = max(vehicles.get(kind, 0), n)
        t += STEP_S
    return {
        "people": people,
        "hours": {r: {s: round(h, 1) for s, h in v.items()} for r, v in hours.items()},
        "vehicles": vehicles,
        "seats": seats,
        "posts": int(resources(scenario).get("posts", 0)),
    }


def check(
    scenario: Scenario, inventory: Inventory, *, cost: float | None, replications: int | None
) -> dict[str, Any]:
    """The plan's needs against the inventory: each item (need, have, gap) and the eight
    kinds of readiness with their status (``ready``, ``gap``, ``not stated``, or the
    command's statement for what the twin does not measure)."""
    need = needs(scenario, inventory)
    items: list[dict[str, Any]] = []

    def add(kind: str, item: str, needed: float, have: float | None, unit: str = "") -> None:
        items.append(
            {
                "kind": kind,
                "item": item,
                "need": needed,
                "have": have,
                "unit": unit,
                "gap": None if have is None else max(0.0, needed - have),
            }
        )

    for role, shifts in sorted(need["people"].items()):
        have = inventory.personnel.get(role)  # type: ignore[call-overload]
        for shift, n in shifts.items():
            hrs = need["hours"][role][shift]
            add(
                "staff",
                f"{role.replace('_', ' ')}s, {shift} ({hrs:g} personnel-hours)",
                n,
                None if have is None else have.get(shift),
                "people",
            )
    for kind, n in sorted(need["vehicles"].items()):
        have = None if inventory.vehicles is None else inventory.vehicles.get(kind, 0)  # type: ignore[call-overload]
        add("logistics", f"{kind.replace('_', ' ')}s", n, have, "vehicles")
    if need["posts"]:
        add("logistics", "posts staffed", need["posts"], inventory.posts, "posts")
    add("command_post", "call-taker seats", need["seats"], inventory.call_taker_seats, "seats")
    if cost is not None:
        add("budget", "cost over the run", round(cost), inventory.budget, "Rp")
    kinds = []
    for key, (label, measured) in KINDS.items():
        mine = [i for i in items if i["kind"] == key]
        stated = inventory.outside.get(key)  # type: ignore[call-overload]
        if key == "analysis":
            status = "ready" if replications and replications > 1 else "gap"
            said = (
                f"this evaluation: {replications} replications, 95 % intervals and verdicts"
                if replications and replications > 1
                else "one run is one draw: evaluate with replications"
            )
        elif measured:
            gaps = [i for i in mine if i["gap"]]
            unstated = [i for i in mine if i["have"] is None]
            if gaps:
                status = "gap"
                said = "; ".join(
                    f"{i['item'].split(' (')[0]}: needs {i['need']:,.0f}, has {i['have']:,.0f}"
                    for i in gaps
                )
            elif unstated and len(unstated) == len(mine):
                status, said = "not stated", "the inventory does not say what the command has"
            else:
                status = "ready"
                said = "the inventory covers what the plan needs" + (
                    f" (not stated: {', '.join(i['item'].split(' (')[0] for i in unstated)})"
                    if unstated
                    else ""
                )
        else:
            status = "outside the twin"
            said = (
                f"stated {'ready' if stated.ready else 'NOT ready'}"
                + (f": {stated.note}" if stated.note else "")
                if stated
                else "not stated; the twin does not measure it"
            )
        if stated and measured and key != "analysis" and not stated.ready:
            status, said = "gap", f"{said}; stated not ready: {stated.note}"
        kinds.append(
            {"kind": key, "label": label, "measured": measured, "status": status, "said": said}
        )
    return {"inventory": inventory.name, "items": items, "kinds": kinds}


def gaps(result: dict[str, Any]) -> list[str]:
    """The gaps of a :func:`check`, one line each, for a terminal."""
    out = []
    for i in result["items"]:
        if not i["gap"]:
            continue
        if i["unit"] == "Rp":
            out.append(
                f"budget: the plan costs Rp {i['need']:,.0f}, the budget is Rp {i['have']:,.0f}"
            )
        else:
            what = i["item"].split(" (")[0]
            out.append(f"{what}: needs {i['need']:,.0f} {i['unit']}, has {i['have']:,.0f}")
    return out


def readiness_html(results: dict[str, dict[str, Any]]) -> str:
    """The report's section: per plan, the eight kinds with their status, then the items."""
    import html

    marks = {
        "ready": "✔ ready",
        "gap": "✖ gap",
        "not stated": "? not stated",
        "outside the twin": "— outside the twin",
    }
    plans = list(results)
    head = "".join(f"<th>{html.escape(p)}</th>" for p in plans)
    rows = ""
    for k, (label, _m) in enumerate(KINDS.values()):
        cells = ""
        for p in plans:
            kind = results[p]["kinds"][k]
            cells += (
                f"<td title='{html.escape(kind['said'])}' style='text-align:left'>"
                f"{marks[kind['status']]}<br><small>{html.escape(kind['said'])}</small></td>"
            )
        rows += f"<tr><td>{html.escape(label)}</td>{cells}</tr>"
    out = (
        f"<p>Each plan's needs against the inventory <i>{html.escape(next(iter(results.values()))['inventory'])}</i>. "
        "Staff are people on duty at once in each shift; vehicles, those on duty at once.</p>"
        f"<table><tr><th>readiness</th>{head}</tr>{rows}</table>"
    )
    for p in plans:
        lines = "".join(_item_row(i) for i in results[p]["items"])
        out += (
            f"<h3>{html.escape(p)}</h3><table><tr><th>item</th><th>needs</th><th>has</th>"
            f"<th>gap</th><th></th></tr>{lines}</table>"
        )
    return out


def _item_row(item: dict[str, Any]) -> str:
    import html

    have = "–" if item["have"] is None else f"{item['have']:,.0f}"
    gap = "" if item["gap"] is None else (f"✖ {item['gap']:,.0f}" if item["gap"] else "✔")
    return (
        f"<tr><td>{html.escape(item['item'])}</td><td>{item['need']:,.0f}</td><td>{have}</td>"
        f"<td>{gap}</td><td>{html.escape(item['unit'])}</td></tr>"
    )
