"""KPIs: pure queries over a timeline, with DuckDB.

The package, by concern: :mod:`~twin.kpi.run` (a run's traffic and community KPIs and
their summary), :mod:`~twin.kpi.response` (the emergency response), :mod:`~twin.kpi.service` (the
one-gate service hall), :mod:`~twin.kpi.status`
(the K3i picture at one moment), :mod:`~twin.kpi.ensemble` (runs and ensembles side by
side), :mod:`~twin.kpi.labels` (names, units, thresholds). Everything public is here too:
``from twin import kpi; kpi.summary(path)``.

Every function takes a timeline, either a pyarrow table or a ``timeline.parquet`` path,
and returns plain values or DataFrames. Nothing here simulates or writes anything.

The traffic KPIs:

=========================  ==============================================================
network speed              space-mean speed of the whole network (km/h): total length over
                           the time it takes to drive every road once at current speeds
travel-time index (TTI)    that time over the free-flow time (1 = free flow)
trips, trip time           vehicles that arrived, and their mean door-to-door time
delay                      SUMO's time loss: time lost against driving at the desired speed
vehicles delayed           trips that lost more than :data:`DELAYED_S` seconds
vehicles rerouted          vehicles sent on a new route round a road that a road event
                           closed
trips cut short            vehicles that could not get round a closure and ended their
                           trip at the last open road before it (their trips are shorter,
                           so they lower the delay: read the two together)
longest queue              most halting vehicles on one road at one sample
teleports                  vehicles SUMO removed after being stuck ``teleport_after``
gridlock                   flagged when, for :data:`GRIDLOCK_SAMPLES` samples in a row,
                           more than half of the vehicles in the network are halting, or
                           when teleports exceed 1 % of departures
=========================  ==============================================================

The emergency-response KPIs (targets from the run's ``response_configured`` event: by
default 10 s to answer, 10 minutes to be on scene):

=========================  ==============================================================
answered in target         calls answered within the answer target, over calls placed
                           (each redial is a new attempt of the same call; a call counts
                           once, by its final attempt)
speed of answer            mean wait of answered calls (ASA)
abandoned                  calls whose caller hung up and did not call again, over calls
processing time            first call placed to first unit dispatched, per incident
response time              first call placed to the first unit of an agency on scene
on scene in target         incidents whose first unit was on scene within the target of
                           their first call; incidents whose first call came later than
                           the target before the end of the run, and are not yet reached,
                           are left out (their outcome is unknown)
utilisation                share of each unit's time on duty spent committed (dispatched
                           to available again); :data:`RULE_OF_60` is the ceiling planners
                           hold patrol units to
pending                    incident needs waiting for a free unit
=========================  ==============================================================
"""

from __future__ import annotations

from twin.kpi._query import connect
from twin.kpi.ensemble import (
    CUT_SHORT_NOTE,
    TRIP_KPIS,
    VERDICT_SIGNS,
    VERDICT_WORDS,
    compare,
    compared_names,
    difference_note,
)
from twin.kpi.labels import (
    ANSWER_TARGET_S,
    DELAYED_S,
    GEH_TARGET,
    GRIDLOCK_HALTING_SHARE,
    GRIDLOCK_SAMPLES,
    KPI_LABELS,
    ON_SCENE_TARGET_S,
    QUEUE_M_PER_VEHICLE,
    RULE_OF_60,
    SHOWN_PER,
    format_duration,
    format_interval,
    format_number,
    format_value,
    shown_as_zero,
)
from twin.kpi.response import (
    answers_by_number,
    incident_times,
    pending_over_time,
    response_by_sector,
    response_summary,
    response_times,
    targets,
    utilisation,
)
from twin.kpi.run import (
    GEH_LIMIT,
    community_summary,
    crime_concentration,
    geh,
    geh_share,
    geh_statistic,
    gridlock,
    network_over_time,
    road_events,
    safety_over_time,
    sector_over_time,
    sector_summary,
    summary,
)
from twin.kpi.service import (
    counter_table,
    hall_at,
    queue_series,
    service_summary,
    service_table,
    standard_by_hour,
)
from twin.kpi.status import (
    CARD_TARGETS,
    NO_DATA,
    STATUSES,
    StatusRules,
    alerts,
    card_levels,
    k3i_cards,
    open_incidents_at,
    road_speeds,
    sector_status,
    unit_spells,
    units_at,
)

__all__ = [
    "ANSWER_TARGET_S",
    "CARD_TARGETS",
    "CUT_SHORT_NOTE",
    "DELAYED_S",
    "GEH_LIMIT",
    "GEH_TARGET",
    "GRIDLOCK_HALTING_SHARE",
    "GRIDLOCK_SAMPLES",
    "KPI_LABELS",
    "NO_DATA",
    "ON_SCENE_TARGET_S",
    "QUEUE_M_PER_VEHICLE",
    "RULE_OF_60",
    "SHOWN_PER",
    "STATUSES",
    "TRIP_KPIS",
    "VERDICT_SIGNS",
    "VERDICT_WORDS",
    "StatusRules",
    "alerts",
    "answers_by_number",
    "card_levels",
    "community_summary",
    "compare",
    "compared_names",
    "connect",
    "counter_table",
    "crime_concentration",
    "difference_note",
    "format_duration",
    "format_interval",
    "format_number",
    "format_value",
    "geh",
    "geh_share",
    "geh_statistic",
    "gridlock",
    "hall_at",
    "incident_times",
    "k3i_cards",
    "network_over_time",
    "open_incidents_at",
    "pending_over_time",
    "queue_series",
    "response_by_sector",
    "response_summary",
    "response_times",
    "road_events",
    "road_speeds",
    "safety_over_time",
    "sector_over_time",
    "sector_status",
    "sector_summary",
    "service_summary",
    "service_table",
    "shown_as_zero",
    "standard_by_hour",
    "summary",
    "targets",
    "unit_spells",
    "units_at",
    "utilisation",
]
