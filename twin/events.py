"""The vocabulary of the twin: every kind of event that can stand on a timeline.

An event is a small frozen dataclass registered under a ``kind`` name. Its fields become
typed columns of the timeline table (see :mod:`twin.sim.timeline`), so KPIs are plain SQL
over typed columns. A field name means one thing in every kind that uses it (``edge`` is
always a SUMO edge id, ``speed_mps`` always metres per second); registering a kind whose
field clashes in type with another kind's is an error.

Times are not fields: the timeline stamps each event with ``t``, seconds since the
scenario's start, and a sequence number that orders events at the same time.

>>> RoadEventStarted(event_id="ev1", event_type="accident", edges=["e1"], lanes_closed=2).kind
'road_event_started'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import pyarrow as pa

# -- the words every layer shares ---------------------------------------------------------------

#: The emergency numbers: 110 police, 112 the general number, 119 medical, 113 fire.
EmergencyNumber = Literal["110", "112", "119", "113"]
NUMBERS: tuple[str, ...] = get_args(EmergencyNumber)
#: What can happen: the incident types of the scenario, the call centres and the feeds.
IncidentTypeName = Literal["crime", "traffic_accident", "medical", "fire", "public_order"]
INCIDENT_TYPES: tuple[str, ...] = get_args(IncidentTypeName)

#: Field annotation (as written) -> Arrow type of its column.
FIELD_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "list[str]": pa.list_(pa.string()),
}

#: kind -> event class
REGISTRY: dict[str, type[Event]] = {}
#: column name -> Arrow type, over every registered kind
COLUMNS: dict[str, pa.DataType] = {}


class Event:
    """Base class of events. Subclasses are frozen dataclasses made with :func:`event`."""

    kind: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def event(kind: str):  # a class decorator
    """Register a frozen dataclass as the event kind ``kind``."""

    def wrap(cls: type) -> type:
        cls = dataclass(frozen=True, slots=True)(cls)
        if kind in REGISTRY:
            raise ValueError(f"event kind {kind!r} is registered twice")
        for f in dataclasses.fields(cls):
            annotation = str(f.type).replace(" ", "")
            if annotation not in FIELD_TYPES:
                raise TypeError(f"{cls.__name__}.{f.name}: unsupported field type {f.type!r}")
            arrow = FIELD_TYPES[annotation]
            if f.name in ("t", "seq", "kind", "source"):
                raise ValueError(f"{cls.__name__}.{f.name}: reserved column name")
            if COLUMNS.setdefault(f.name, arrow) != arrow:
                raise TypeError(
                    f"{cls.__name__}.{f.name}: {arrow} clashes with {COLUMNS[f.name]} "
                    "in another kind"
                )
        cls.kind = kind
        REGISTRY[kind] = cls
        return cls

    return wrap


# -- the run --------------------------------------------------------------------------------


@event("run_started")
class RunStarted(Event):
    """A run began: its scenario, seed, city and local start time."""

    scenario: str
    seed: int
    city: str
    start_local: str  # ISO date-time with offset of simulated time 0


@event("run_ended")
class RunEnded(Event):
    """The run ended: ``status`` complete, or how it stopped and why (``reason``)."""

    status: str  # "complete" or "incomplete"
    reason: str


@event("simulator_crashed")
class SimulatorCrashed(Event):
    """The traffic simulator died; the run ends here, incomplete."""

    reason: str


# -- traffic --------------------------------------------------------------------------------


@event("road_event_started")
class RoadEventStarted(Event):
    """An accident, closure, flood or demonstration begins to act on the roads."""

    event_id: str
    event_type: str
    edges: list[str]
    lanes_closed: int  # lanes closed per edge; 0 means every lane


@event("road_event_ended")
class RoadEventEnded(Event):
    """A road event ended: its roads are open again."""

    event_id: str
    event_type: str
    edges: list[str]


@event("vehicles_rerouted")
class VehiclesRerouted(Event):
    """Vehicles whose remaining route crossed a newly closed road: ``vehicles`` took a new
    route; ``diverted`` could not reach a destination beyond it and stopped short."""

    event_id: str
    vehicles: int
    diverted: int


@event("edge_state")
class EdgeState(Event):
    """A snapshot of one SUMO edge."""

    edge: str
    sector: str
    vehicles: int
    halting: int
    speed_mps: float
    density_veh_km: float  # vehicles per km of lane
    tti: float  # travel-time index: free-flow speed over mean speed (1 = free flow)


@event("sector_state")
class SectorState(Event):
    """A snapshot of a sector: its edges aggregated, weighted by lane length."""

    sector: str
    vehicles: int
    halting: int
    speed_mps: float
    density_veh_km: float
    tti: float


@event("network_state")
class NetworkState(Event):
    """A snapshot of the whole network."""

    vehicles: int
    halting: int
    speed_mps: float
    tti: float
    departed: int  # cumulative since the start
    arrived: int
    teleports: int
    waiting_to_insert: int


@event("edge_flow")
class EdgeFlow(Event):
    """Vehicles that entered a road during the ``interval_s`` seconds before ``t`` (SUMO's
    edge data, read when SUMO stops): what a detector on it would have counted."""

    edge: str
    entered: int
    interval_s: float


@event("teleport")
class Teleport(Event):
    """SUMO removed a stuck vehicle and placed it further along its route (read from
    SUMO's log, stamped when it happened)."""

    vehicle: str
    edge: str
    reason: str  # SUMO's words: "waited too long (jam)", "(wrong lane)", "(yield)"


@event("trip")
class Trip(Event):
    """A vehicle arrived. Stamped at its arrival time. ``vehicle_type`` is its type of the
    scenario's mix (motorcycle, car, angkot, bus, truck; car without a mix)."""

    vehicle: str
    vehicle_type: str
    depart_s: float
    duration_s: float
    route_length_m: float
    time_loss_s: float
    rerouted: int


# -- emergency response ---------------------------------------------------------------------


@event("response_configured")
class ResponseConfigured(Event):
    """The response model's set-up and targets, at the start of a run (so KPIs read their
    targets from the timeline itself)."""

    answer_target_s: float
    on_scene_target_s: float
    units: int
    call_takers: int
    policy: str


@event("incident_occurred")
class IncidentOccurred(Event):
    """Something happened that calls for the emergency services."""

    incident: str
    incident_type: str  # crime, traffic_accident, medical, fire, public_order
    priority: int  # 1 most urgent .. 3
    sector: str
    lat: float
    lon: float
    origin: str  # "generated", "scripted" or "road_event"
    needs: list[str]  # one entry per unit needed: police, ambulance, fire
    vehicle_type: str  # a traffic accident's vehicle type, where rates are by type; else ""


@event("call_placed")
class CallPlaced(Event):
    """A caller dials an emergency number; ``attempt`` counts redials from 1."""

    call: str
    incident: str
    number: str  # 110, 112, 119 or 113
    pool: str  # the call-takers who answer this number
    priority: int
    attempt: int


@event("call_answered")
class CallAnswered(Event):
    """A call-taker answered a call after ``wait_s`` seconds in the queue."""

    call: str
    incident: str
    number: str
    pool: str
    wait_s: float


@event("call_abandoned")
class CallAbandoned(Event):
    """The caller hung up before a call-taker answered; ``redial`` if they will call again."""

    call: str
    incident: str
    number: str
    pool: str
    wait_s: float
    redial: bool


@event("call_ended")
class CallEnded(Event):
    """A call-taker finished a call; the first one of an incident opens it in the CAD."""

    call: str
    incident: str
    number: str
    pool: str
    handling_s: float
    duplicate: bool  # the incident was already known to the CAD


@event("unit_state")
class UnitState(Event):
    """A unit changed state: available, dispatched, en_route, on_scene, transporting,
    at_hospital, returning, off_duty."""

    unit: str
    unit_type: str
    agency: str  # police, ambulance or fire
    state: str
    incident: str  # "" when the state concerns no incident
    sector: str  # the incident's sector, or the unit's base sector
    lat: float  # where the unit is at the change (NaN where the model has no map)
    lon: float


@event("incident_pending")
class IncidentPending(Event):
    """The pending queue changed: an incident's need waits for a unit (``queued``), got
    one (``assigned``), or was dropped at the end of the run. ``pending`` is the queue's
    length after the change."""

    incident: str
    need: str
    action: str
    pending: int


@event("incident_closed")
class IncidentClosed(Event):
    """Every unit sent to the incident has cleared the scene."""

    incident: str
    incident_type: str
    priority: int
    sector: str


@event("drive_ordered")
class DriveOrdered(Event):
    """The response model asks the traffic simulator to drive a unit (a SUMO emergency
    vehicle) from one place to another; ``trip`` names this drive. Each place is given as
    the SUMO edges that leave it (``from_edges``) or lead to it (``to_edges``), best first:
    the simulator takes the first pair it finds a route between (SUMO's turn rules can cut
    off a road the road graph joins)."""

    unit: str
    trip: str
    from_edges: list[str]
    to_edges: list[str]
    speed_factor: float


@event("drive_cancelled")
class DriveCancelled(Event):
    """The unit turned back (another unit took over): its vehicle leaves the road."""

    unit: str
    trip: str


@event("drive_ended")
class DriveEnded(Event):
    """The traffic simulator reports a unit's drive: it ``reached`` its road, or not (no
    route, or removed from the road); ``route_length_m`` as driven."""

    unit: str
    trip: str
    reached: bool
    reason: str
    route_length_m: float


@event("signal_preempted")
class SignalPreempted(Event):
    """Signal priority: a traffic light turned green for a unit under blue lights that
    approached it on red (``signal`` is the SUMO traffic light's id, ``link`` the unit's
    link index in it)."""

    unit: str
    trip: str
    signal: str
    link: int
    distance_m: float


# -- community ------------------------------------------------------------------------------


@event("community_configured")
class CommunityConfigured(Event):
    """The community model's set-up, at the start of a run."""

    segments: int  # road segments (both directions of a street count once)
    residents: int
    offenders: int
    patrols: int
    strategy: str
    officers: int


@event("crime_committed")
class CrimeCommitted(Event):
    """An offender struck on a road (the community model); ``reported`` if the victim
    calls 110 (the rest is the dark figure)."""

    crime: str
    crime_type: str  # theft, robbery, assault, vandalism
    sector: str
    lat: float
    lon: float
    reported: bool


@event("dispute")
class DisputeEvent(Event):
    """Neighbours quarrel: ``outcome`` is mediated (a Bhabinkamtibmas officer), settled
    (among themselves) or escalated (a public-order call to 110)."""

    sector: str
    lat: float
    lon: float
    outcome: str


@event("sector_safety")
class SectorSafety(Event):
    """A sector's community state: the rasa aman (sense of safety) index, 0 to 100, its
    residents' mean trust in the police (0 to 1), disorder, and crimes since the last one."""

    sector: str
    rasa_aman: float
    trust: float
    disorder: float
    crimes: int


@event("unrest_state")
class UnrestState(Event):
    """A crowd under Epstein's civil violence rules: citizens active, quiet and jailed."""

    event_id: str
    active: int
    quiet: int
    jailed: int
    legitimacy: float


# -- sensors --------------------------------------------------------------------------------


@event("alert_acknowledged")
class AlertAcknowledged(Event):
    """A back-office officer acknowledged an alert of the K3i page: a sector that turned
    waspada or rawan (``sector``, ``status``, ``reason``), or a KPI off its target
    (``sector`` empty). ``officer`` is the signed-in user who acknowledged it (their user
    name; ``local:<login>`` for the one-time link of a server with no users)."""

    alert: str
    sector: str
    status: str
    reason: str
    officer: str


@event("personal_data_deleted")
class PersonalDataDeleted(Event):
    """The retention period passed for what came before ``before`` (ISO time): the raw
    personal fields were deleted from the sensor history (``calls``: emergency calls that
    lost their caller pseudonym and position; ``quarantined``: quarantined messages that
    lost their raw text). Being on the timeline, the deletion is on the audit chain."""

    before: str
    retain_days: float
    calls: int
    quarantined: int


@event("pseudonym_key_rotated")
class PseudonymKeyRotated(Event):
    """The key of callers' pseudonyms was replaced by a new random one, and the old one
    destroyed: a caller's calls before and after can no longer be linked. ``key_id`` names
    the new key (the first 12 hex digits of its SHA-256), never the key itself."""

    key_id: str


@event("sensor_message")
class SensorMessage(Event):
    """A sensor message reached the twin: ``reason`` is empty if it was kept, else why it
    was quarantined (see ``twin.sensors.ingest``)."""

    message_type: str
    sensor: str
    reason: str


@event("count_observed")
class CountObserved(Event):
    """A detector's count, taken at ``t``, over the ``interval_s`` seconds before ``end_s``
    (the run second its interval ended, by the detector's clock)."""

    sensor: str
    edge: str
    entered: int
    interval_s: float
    end_s: float


@event("count_simulated")
class CountSimulated(Event):
    """What a detector would have counted in the simulation (SUMO's induction loops across
    its edge) over the ``interval_s`` seconds before ``t``: GEH compares it with
    ``count_observed``."""

    sensor: str
    edge: str
    entered: int
    interval_s: float


@event("counts_followed")
class CountsFollowed(Event):
    """The traffic followed a detector's count (``traffic.follow_counts``): it counted
    ``observed`` where the simulation expected ``simulated``, so ``inserted`` vehicles
    were added over the next ``interval_s`` on routes through its edge, or ``removed``
    taken off the edge before its loops (said when that interval ends)."""

    sensor: str
    edge: str
    observed: int
    simulated: float
    inserted: int
    interval_s: float
    removed: int = 0


@event("call_received")
class CallReceived(Event):
    """A real emergency call (from the live feed); ``caller`` is a pseudonym."""

    call: str
    number: str
    incident_type: str
    lat: float
    lon: float
    caller: str


@event("alert_received")
class AlertReceived(Event):
    """An incident reported by a sensor or an officer (the live feed), without a call.
    ``held``: the CAD opens it but sends no unit until the command post orders one (the
    trainees decide). ``inject``: the exercise's inject that made it, which names the
    incident (``I00012-crowd-unruly``)."""

    alert: str
    incident_type: str
    priority: int
    lat: float
    lon: float
    held: bool = False
    inject: str = ""


@event("unit_observed")
class UnitObserved(Event):
    """A unit's AVL fix: where it is and the status it reports."""

    unit: str
    lat: float
    lon: float
    status: str


@event("closure_ordered")
class ClosureOrdered(Event):
    """Roads to close now (a gauge over its threshold, an order); the traffic component
    closes them, the response model routes round them."""

    event_id: str
    event_type: str
    edges: list[str]
    emergency_access: bool


@event("closure_lifted")
class ClosureLifted(Event):
    """An officer lifted a closure ordered from the live feed."""

    event_id: str


# -- exercises ------------------------------------------------------------------------------


@event("exercise_control")
class ExerciseControl(Event):
    """The trainer ran the exercise: ``action`` is start, pause, resume, speed (``speed``
    the new pace: simulated seconds per wall-clock second), release (an inject before its
    time), hold (an inject kept back until released), skip (an inject never sent), write (a
    new inject written on the spot) or end. ``user`` is the signed-in trainer."""

    action: str
    inject: str
    speed: float
    user: str


@event("inject_released")
class InjectReleased(Event):
    """An inject of the MSEL reached its team (``team``; ``all`` for every team): from the
    simulated role ``sender``, ``title`` and ``text`` as the team reads them, and what it
    does in the twin (``effect``: message, incident, crowd, closure, flood). ``expected``
    is the order the team should give within ``due_s`` seconds (empty: none);
    ``follow_up_of`` names the inject whose missed action released this one, and ``how``
    says why it came now (scheduled, early, follow_up, written)."""

    inject: str
    title: str
    text: str
    sender: str
    team: str
    effect: str
    expected: str
    due_s: float
    follow_up_of: str
    how: str


@event("inject_missed")
class InjectMissed(Event):
    """The time allowed for an inject's expected order ran out without it (``team`` gave no
    ``expected`` order within ``due_s`` seconds); its follow-ups are released."""

    inject: str
    team: str
    expected: str
    due_s: float


@event("inject_answered")
class InjectAnswered(Event):
    """A team gave the order an inject expected (``order_id``), ``delay_s`` seconds after
    the inject reached it; ``late`` when that was after the time allowed (its follow-ups
    had gone out already)."""

    inject: str
    team: str
    expected: str
    order_id: str
    delay_s: float
    late: bool


@event("order_given")
class OrderGiven(Event):
    """A team's order in an exercise (or a command post's, over the order API), as given:
    ``order`` is dispatch, recall, close_road, open_road, close_sector, open_sector,
    checkpoint, move_patrol, mutual_aid or public_message; ``user`` the signed-in member who
    gave it. The fields the order needs are filled (``unit``, ``incident``, ``edges``,
    ``sector``, ``to_team``, ``text``). An order that cannot be carried out is followed at
    once by ``order_refused`` with the same ``order_id``."""

    order_id: str
    order: str
    team: str
    user: str
    unit: str
    incident: str
    edges: list[str]
    sector: str
    to_team: str
    text: str


@event("unit_ordered")
class UnitOrdered(Event):
    """The command post's order to a unit, as the response carries it out (an exercise's
    director sends it once the team may give it): ``action`` is dispatch (to
    ``incident``), recall (back to its base) or move (to stand by at the junction the
    first of ``edges`` leads to). One the response cannot carry out is followed by
    ``order_refused`` with the same ``order_id``."""

    order_id: str
    unit: str
    action: str
    incident: str
    edges: list[str]
    team: str


@event("order_refused")
class OrderRefused(Event):
    """An order was not carried out, and why (the team may not command that unit, the unit
    is busy, the incident is closed...)."""

    order_id: str
    team: str
    reason: str


def empty_columns() -> dict[str, list[Any]]:
    """One empty list per timeline column, in the timeline's column order."""
    return {name: [] for name in column_names()}


def column_names() -> list[str]:
    return ["t", "seq", "kind", "source", *sorted(COLUMNS)]


# -- the one-gate service hall (twin.service) -----------------------------------------------


@event("service_configured")
class ServiceConfigured(Event):
    """A service of the hall, at the start of a run (so KPIs read its published standard
    from the timeline itself): ``service``, its ``title``, and ``standard_s``, the time
    door to door it promises."""

    service: str
    title: str
    standard_s: float


@event("visitor_arrived")
class VisitorArrived(Event):
    """A visitor came into the service hall for ``service`` (skck, sim_renewal...), by
    ``channel``: walk_in, appointment or online (pre-registered), and took ``ticket``, the
    number the hall's screen calls (a letter per service: A-001, B-014)."""

    visitor: str
    service: str
    channel: str
    ticket: str


@event("visitor_queued")
class VisitorQueued(Event):
    """A visitor joined the queue of counter group ``counter`` for ``step`` of their
    service, behind ``queue`` others."""

    visitor: str
    service: str
    step: str
    counter: str
    queue: int


@event("visitor_called")
class VisitorCalled(Event):
    """The screen called ``ticket`` to counter ``desk`` (1, 2...) of group ``counter`` for
    ``step``, after ``waited_s`` in its queue."""

    visitor: str
    ticket: str
    service: str
    step: str
    counter: str
    desk: int
    waited_s: float


@event("visitor_served")
class VisitorServed(Event):
    """A visitor finished a step of their service at a counter of group ``counter``: they
    joined its queue behind ``queue`` others, waited ``waited_s``, then were served for
    ``served_s`` (the event's time is the step's end)."""

    visitor: str
    service: str
    channel: str
    step: str
    counter: str
    queue: int
    waited_s: float
    served_s: float


@event("visitor_left")
class VisitorLeft(Event):
    """A visitor left the hall: ``reason`` is served, incomplete (documents incomplete:
    to come back another day), balked (turned back at the door, seeing the queue), reneged
    (gave up waiting) or still_inside (in the hall when the run ended). ``in_hall_s`` since
    they came in, ``waited_s`` of it in queues."""

    visitor: str
    service: str
    channel: str
    reason: str
    in_hall_s: float
    waited_s: float


@event("counter_state")
class CounterState(Event):
    """From now, ``staffed`` of the ``counters`` counters of group ``counter`` are open (a
    shift starting or ending, a break)."""

    counter: str
    staffed: int
    counters: int


def schema() -> pa.Schema:
    """The Arrow schema of a timeline: common columns, then every event field, sorted."""
    common = [
        ("t", pa.float64()),
        ("seq", pa.int64()),
        ("kind", pa.string()),
        ("source", pa.string()),
    ]
    return pa.schema(common + [(name, COLUMNS[name]) for name in sorted(COLUMNS)])


def reference() -> str:
    """The timeline's columns as a Markdown table, kind by kind: what each kind records
    and the columns it fills (the others are null in its rows). ``docs/TIMELINE.md`` holds
    it, and a test keeps the two the same."""
    lines = [
        "| kind | what it records | columns it fills |",
        "|---|---|---|",
    ]
    for kind in sorted(REGISTRY):
        cls = REGISTRY[kind]
        doc = " ".join((cls.__doc__ or "").split()).replace("|", "\\|").replace("``", "`")
        fields = ", ".join(
            f"`{f.name}` ({f.type})"
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        )
        lines.append(f"| `{kind}` | {doc} | {fields} |")
    return "\n".join(lines) + "\n"
