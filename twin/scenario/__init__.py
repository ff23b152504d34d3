"""Scenario files: what a planner writes to ask "what if?".

A scenario is YAML, validated by the pydantic models below (``twin schema`` exports them
as JSON Schema for editors). Every problem is reported at once, each with its field path
and the bad value, for example::

    scenarios/bad.yaml: 2 problems
      events[0].lanes: must be at least 1 (got 0)
      traffic.demand.veh_per_hour: hour 08 of the run has no demand (got {'07': 1800})

Times of day (``"07:40"``) are local to the scenario's ``start``; durations are written
``"45min"``, ``"1h30min"``, ``"90s"``, ``"01:30:00"`` or as seconds.

The package has one module per section: :mod:`~twin.scenario.traffic`,
:mod:`~twin.scenario.road_events`, :mod:`~twin.scenario.response`,
:mod:`~twin.scenario.community`, :mod:`~twin.scenario.service` (the one-gate service
hall), :mod:`~twin.scenario.plan` (plans and overlays, and
what a plan costs), and :mod:`~twin.scenario.model` (the scenario itself, the
sensors and outputs sections, loading); :mod:`~twin.scenario._base` holds what they share
(durations, places, the error). Everything public is importable from ``twin.scenario``.
"""

from __future__ import annotations

from twin.events import INCIDENT_TYPES, NUMBERS
from twin.scenario._base import (
    MAX_DURATION_S,
    Area,
    Duration,
    LatLon,
    Place,
    ScenarioError,
    field_problems,
    merge_overrides,
    parse_duration,
)
from twin.scenario.community import Community, Patrols, Unrest
from twin.scenario.model import (
    Outputs,
    Scenario,
    Sensors,
    json_schema,
    load_scenario,
    scenario_from_dict,
)
from twin.scenario.plan import Costs, Plan, apply_overlay, load_plan, plan_from_dict
from twin.scenario.response import (
    DEFAULT_TYPES,
    NEEDS,
    CallCentre,
    CallPool,
    Dispatch,
    Incidents,
    IncidentSpec,
    IncidentType,
    Rate,
    Response,
    ScriptedIncident,
    Targets,
    TimeDist,
    Units,
    incident_type,
)
from twin.scenario.road_events import (
    Accident,
    Closure,
    Contraflow,
    Demonstration,
    Flood,
    RoadEvent,
)
from twin.scenario.service import Service, ServiceKind, ServiceStep, Shift
from twin.scenario.traffic import Demand, Traffic

__all__ = [
    "DEFAULT_TYPES",
    "INCIDENT_TYPES",
    "MAX_DURATION_S",
    "NEEDS",
    "NUMBERS",
    "Accident",
    "Area",
    "CallCentre",
    "CallPool",
    "Closure",
    "Community",
    "Contraflow",
    "Costs",
    "Demand",
    "Demonstration",
    "Dispatch",
    "Duration",
    "Flood",
    "IncidentSpec",
    "IncidentType",
    "Incidents",
    "LatLon",
    "Outputs",
    "Patrols",
    "Place",
    "Plan",
    "Rate",
    "Response",
    "RoadEvent",
    "Scenario",
    "ScenarioError",
    "ScriptedIncident",
    "Sensors",
    "Service",
    "ServiceKind",
    "ServiceStep",
    "Shift",
    "Targets",
    "TimeDist",
    "Traffic",
    "Units",
    "Unrest",
    "apply_overlay",
    "field_problems",
    "incident_type",
    "json_schema",
    "load_plan",
    "load_scenario",
    "merge_overrides",
    "parse_duration",
    "plan_from_dict",
    "scenario_from_dict",
]
