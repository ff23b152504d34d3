"""Plans and overlays: what a planner changes in a scenario, and what the change costs.

An *overlay* is a mapping of overrides nested like a scenario, the form ``twin fork
--overlay`` takes and a scenario's ``variants`` use. A *plan* is an overlay with a name, a
description and a cost table: ``twin evaluate SCENARIO --plan plan.yaml`` runs the scenario
as it is and with each plan, replication by replication, and compares them.

How an overlay lies over the scenario (:func:`apply_overlay`):

- mappings merge key by key, so ``response: {dispatch: {policy: beats}}`` changes only
  the dispatch policy;
- lists of named items (``response.call_centre.pools``, ``response.units``) merge item by
  item by ``name``: ``{name: P, count: 6}`` changes the unit group ``P``'s count and keeps
  its base and shift; an item of a new name is added; ``{name: P, remove: true}`` drops it;
- ``events`` (closures, accidents ...) and ``response.incidents.scripted`` are added to
  the scenario's own, and a ``start`` written ``"+15min"`` counts from the overlay's
  moment (the fork point of a live twin; the run's start for a plan);
- anything else replaces the scenario's value.

A plan file::

    name: two-more-cars
    description: Two more patrol cars at the central station, 07:00-19:00
    costs: {unit_hour: {police_car: 175000}}    # anything left out keeps its default
    response:
      units:
        - {name: P, count: 6}

Every problem is reported at once with its field path, as a scenario's are.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.scenario._base import (
    ScenarioError,
    _Model,
    field_problems,
    merge_overrides,
    parse_duration,
)
from twin.scenario.model import Scenario

UnitType = Literal["police_car", "motorbike", "ambulance", "fire_engine"]


def _unit_hour_defaults() -> dict[str, float]:
    return {
        "police_car": 150_000.0,
        "motorbike": 60_000.0,
        "ambulance": 200_000.0,
        "fire_engine": 400_000.0,
    }


class Costs(_Model):
    """What resources cost, in rupiah, per hour on duty or per use. The defaults are planning
    assumptions (crew and running costs of a vehicle, a call-taker's hour,
    a staffed post for a day, fuel and wear per km): replace them with the command's
    own budget figures."""

    unit_hour: dict[UnitType, float] = Field(
        default_factory=_unit_hour_defaults, description="per unit on duty for an hour, by type"
    )
    call_taker_hour: float = Field(35_000.0, ge=0, description="per call-taker on duty for an hour")
    post_day: float = Field(
        250_000.0, ge=0, description="per post (a unit base at a place) staffed for a day"
    )
    km: float = Field(2_500.0, ge=0, description="per km driven by a unit (traffic runs)")
    clerk_hour: float = Field(
        30_000.0, ge=0, description="per service-hall clerk on duty for an hour (breaks unpaid)"
    )


class Plan(_Model):
    """A plan: its name, what it is, its cost table, and the overrides it lays over a
    scenario (everything else in the file)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)
    description: str = ""
    costs: Costs = Field(default_factory=Costs)
    overrides: dict[str, Any] = Field(default_factory=dict)
    source: str = "plan"

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with this plan's overrides, named ``<scenario>-<plan>``."""
        return apply_overlay(scenario, self.overrides, name=self.name, source=self.source)


#: A plan's own fields; everything else in a plan file is an override.
_PLAN_FIELDS = ("name", "description", "costs")


def load_plan(path: str | Path) -> Plan:
    """Read a plan file. Its overrides are checked when it is applied to a scenario
    (:meth:`Plan.apply`), since they make sense only over one.

    Raises
    ------
    ScenarioError
        Naming the file and each problem's field path.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: plan file not found")
    try:
        doc = load_yaml(path, what="plan file")
    except InputError as exc:
        raise ScenarioError(str(path), [("", str(exc).removeprefix(f"{path}: "))]) from None
    return plan_from_dict(doc, source=str(path))


def plan_from_dict(doc: Any, *, source: str = "plan") -> Plan:
    """A plan from plain data (what YAML gives); see :func:`load_plan`."""
    if not isinstance(doc, dict):
        raise ScenarioError(
            source, [("", f"a plan is a mapping of fields, got {type(doc).__name__}")]
        )
    own = {k: doc[k] for k in _PLAN_FIELDS if k in doc}
    own.setdefault(
        "name", Path(source).stem.replace("_", "-").lower() if source != "plan" else "plan"
    )
    if "overrides" in doc:
        raise ScenarioError(
            source, [("overrides", "write the overrides at the top level, nested like a scenario")]
        )
    overrides = {k: v for k, v in doc.items() if k not in _PLAN_FIELDS}
    for key in ("seed", "city", "start", "duration", "variants"):
        if key in overrides:
            raise ScenarioError(
                source,
                [
                    (
                        key,
                        "a plan changes what is done, not the scenario it is judged on: set it in the scenario",
                    )
                ],
            )
    try:
        return Plan.model_validate({**own, "overrides": overrides, "source": source})
    except ValidationError as exc:
        raise ScenarioError(
            source, [p for err in exc.errors() for p in field_problems(err)]
        ) from exc


def apply_overlay(
    scenario: Scenario,
    overlay: dict[str, Any] | None,
    *,
    name: str = "plan",
    at_s: float = 0.0,
    source: str = "overlay",
) -> Scenario:
    """``overlay`` laid over ``scenario`` (see the module docstring), named
    ``<scenario>-<name>``; ``at_s`` is the moment a ``"+15min"`` start counts from.

    Raises
    ------
    ScenarioError
        Every problem of the overlaid scenario, with its field path.
    """
    if overlay is None:
        overlay = {}
    if not isinstance(overlay, dict):
        raise ScenarioError(
            source, [("", "an overlay is a mapping of overrides, nested like a scenario")]
        )
    overlay = json.loads(json.dumps(overlay, default=str))  # a copy we may change
    events = overlay.pop("events", None) or []
    response = overlay.get("response")
    incidents = response.get("incidents") if isinstance(response, dict) else None
    scripted = (incidents.pop("scripted", None) if isinstance(incidents, dict) else None) or []
    problems: list[tuple[str, str]] = []
    for path, items in (("events", events), ("response.incidents.scripted", scripted)):
        if not isinstance(items, list):
            problems.append((path, f"a list, got {type(items).__name__}"))
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append((f"{path}[{i}]", f"a mapping, got {type(item).__name__}"))
                continue
            start = str(item.get("start", ""))
            if start.startswith("+") and at_s:  # from the overlay's moment
                try:
                    item["start"] = f"+{at_s + parse_duration(start[1:]):g}s"
                except ValueError as exc:
                    problems.append((f"{path}[{i}].start", str(exc)))
    if problems:
        raise ScenarioError(source, problems)
    base = json.loads(scenario.model_dump_json(exclude_unset=True, exclude={"variants"}))
    merged = merge_overrides(base, overlay)
    merged["name"] = f"{scenario.name}-{name}"[:120]
    merged["events"] = [*merged.get("events", []), *events]
    if scripted:
        inc = merged.setdefault("response", {}).setdefault("incidents", {})
        inc["scripted"] = [*inc.get("scripted", []), *scripted]
    try:
        applied = Scenario.model_validate(merged)
    except ValidationError as exc:
        raise ScenarioError(
            source, [p for err in exc.errors() for p in field_problems(err)]
        ) from exc
    for i, event in enumerate(applied.events[len(scenario.events) :]):
        if applied.event_begin(event) < at_s:
            raise ScenarioError(
                source, [(f"events[{i}].start", f"{event.start!r} is before the fork point")]
            )
    return applied


# -- what a plan needs, and what it costs ---------------------------------------------------


def resources(scenario: Scenario) -> dict[str, float]:
    """What a scenario puts on duty over its run: unit-hours by unit type
    (``unit_hours_police_car`` ...), call-taker hours, and posts (unit groups based at a
    place rather than at a station) with the days they are staffed."""
    hours = scenario.duration / 3600
    out: dict[str, float] = {}
    if scenario.service is not None:
        out["clerk_hours"] = clerk_hours(scenario)
    response = scenario.response
    if response is None:
        return out
    for group in response.units:
        on = shift_hours(scenario, group.shift)
        key = f"unit_hours_{group.type}"
        out[key] = out.get(key, 0.0) + group.count * on
    out["call_taker_hours"] = sum(p.call_takers for p in response.call_centre.pools) * hours
    posts = {
        json.dumps(g.base.model_dump(), sort_keys=True)
        for g in response.units
        if not isinstance(g.base, str)
    }
    out["posts"] = float(len(posts))
    out["post_days"] = len(posts) * max(hours / 24, 1 / 24)
    return out


def cost(scenario: Scenario, costs: Costs, *, km: float | None = None) -> dict[str, float]:
    """What a plan costs over the run, item by item, and ``total``: unit-hours,
    call-taker hours and posts from the scenario, km as the run drove them."""
    need = resources(scenario)
    items = {
        f"cost_{k.removeprefix('unit_hours_')}": v
        * costs.unit_hour.get(k.removeprefix("unit_hours_"), 0.0)  # type: ignore[call-overload]
        for k, v in need.items()
        if k.startswith("unit_hours_")
    }
    items["cost_call_takers"] = need.get("call_taker_hours", 0.0) * costs.call_taker_hour
    items["cost_posts"] = need.get("post_days", 0.0) * costs.post_day
    items["cost_km"] = (km or 0.0) * costs.km
    items["cost_clerks"] = need.get("clerk_hours", 0.0) * costs.clerk_hour
    items["cost_total"] = sum(items.values())
    return {k: round(v, 0) for k, v in items.items()}


def clerk_hours(scenario: Scenario) -> float:
    """The service hall's clerk-hours on duty within the run (shifts less their breaks)."""
    assert scenario.service is not None
    start = scenario.start
    end = start + timedelta(seconds=scenario.duration)
    total = 0.0
    day = datetime.combine(start.date(), datetime.min.time(), tzinfo=start.tzinfo)
    while day < end:
        for shift in scenario.service.staff:
            for a, b in shift.spans():
                on, off = day + timedelta(minutes=a), day + timedelta(minutes=b)
                total += shift.people * max(0.0, (min(off, end) - max(on, start)).total_seconds())
        day += timedelta(days=1)
    return total / 3600


def shift_hours(scenario: Scenario, shift: str | None) -> float:
    """Hours of a daily shift ("07:00-19:00", local) that fall within the run; None: the
    whole run."""
    if not shift:
        return scenario.duration / 3600
    a, b = (s.strip() for s in shift.split("-"))
    start = scenario.start
    end = start + timedelta(seconds=scenario.duration)
    total = 0.0
    day = datetime.combine(
        start.date() - timedelta(days=1), datetime.min.time(), tzinfo=start.tzinfo
    )
    while day < end:
        on = day + _clock(a)
        off = day + _clock(b)
        if off <= on:
            off += timedelta(days=1)
        total += max(0.0, (min(off, end) - max(on, start)).total_seconds())
        day += timedelta(days=1)
    return total / 3600


def _clock(text: str) -> timedelta:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    assert m, text  # the scenario's validator checked the form
    return timedelta(hours=int(m[1]), minutes=int(m[2]))
