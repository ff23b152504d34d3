"""What each KPI is called, its unit and which way is better, the thresholds the KPIs are
judged by, and how a KPI value is written for people."""

from __future__ import annotations

from typing import Any

DELAYED_S = 120.0
GRIDLOCK_SAMPLES = 5
GRIDLOCK_HALTING_SHARE = 0.5
QUEUE_M_PER_VEHICLE = 7.5
#: The "rule of 60": patrol units committed to calls more than this share of their time on
#: duty have too little left for patrol and back-up.
RULE_OF_60 = 0.6
#: Response targets when a timeline does not state its own.
ANSWER_TARGET_S = 10.0
ON_SCENE_TARGET_S = 600.0


#: KPI key -> (label, unit, better): how ``twin run`` and reports show each KPI.
KPI_LABELS: dict[str, tuple[str, str, str]] = {
    "network_speed_kmh": ("Network mean speed", "km/h", "higher"),
    "mean_tti": ("Mean travel-time index", "", "lower"),
    "peak_tti": ("Peak travel-time index", "", "lower"),
    "trips": ("Trips completed", "trips", "higher"),
    "completed_share": ("Trips completed, share of vehicles departed", "%", "higher"),
    "mean_trip_min": ("Mean trip time", "min", "lower"),
    "delay_veh_h": ("Total delay", "vehicle-hours", "lower"),
    "mean_delay_s": ("Mean delay per trip", "s", "lower"),
    "vehicles_delayed": (f"Vehicles delayed over {DELAYED_S / 60:.0f} min", "vehicles", "lower"),
    "vehicles_rerouted": ("Vehicles rerouted round closed roads", "vehicles", "lower"),
    "trips_cut_short": ("Trips cut short at a closure", "trips", "lower"),
    "longest_queue_veh": ("Longest queue", "vehicles", "lower"),
    "teleports": ("Teleports (stuck vehicles removed)", "vehicles", "lower"),
    "gridlock": ("Gridlock", "", "lower"),
    "incidents": ("Incidents", "incidents", ""),
    "calls": ("Emergency calls", "calls", ""),
    "answered_in_target": ("Calls answered within target", "%", "higher"),
    "speed_of_answer_s": ("Average speed of answer", "s", "lower"),
    "abandoned": ("Calls abandoned", "%", "lower"),
    "processing_s": ("Mean processing time (call to dispatch)", "min", "lower"),
    "response_p50_s": ("Response time, median (call to on scene)", "min", "lower"),
    "response_p90_s": ("Response time, 90th percentile", "min", "lower"),
    "on_scene_in_target": ("Incidents reached within target", "%", "higher"),
    "utilisation_police": ("Police unit utilisation", "%", "lower"),
    "utilisation_ambulance": ("Ambulance utilisation", "%", "lower"),
    "utilisation_fire": ("Fire engine utilisation", "%", "lower"),
    "unit_km": ("Distance driven by units", "km", ""),
    "pending_max": ("Longest pending queue", "needs", "lower"),
    "unserved": ("Incident needs never served", "needs", "lower"),
    "crimes": ("Crimes committed", "crimes", "lower"),
    "crimes_reported": ("Crimes reported to 110", "%", ""),
    "segments_for_quarter": ("Road segments holding a quarter of the crime", "%", ""),
    "segments_for_half": ("Road segments holding half the crime", "%", ""),
    "rasa_aman": ("Rasa aman (sense of safety), mean over sectors", "0-100", "higher"),
    "rasa_aman_lowest": ("Rasa aman of the least safe sector", "0-100", "higher"),
    "trust": ("Residents' trust in the police", "0-1", "higher"),
    "disputes": ("Disputes between neighbours", "disputes", "lower"),
    "disputes_mediated": ("Disputes mediated by Bhabinkamtibmas", "%", "higher"),
    "unrest_peak": ("Most rioters at once", "people", "lower"),
    "geh_under_5": ("Detectors with GEH < 5, last hour (calibration)", "%", "higher"),
    "cost_total": ("Cost over the run (plan's cost table)", "Rp", "lower"),
    # an exercise's what-if (twin.exercise.whatif)
    "inject_wait_s": (
        "The inject's incident: wait for the first unit on scene (to the end if none came)",
        "min",
        "lower",
    ),
    "open_incidents_end": ("Incidents still open at the end", "incidents", "lower"),
    "rawan_sector_min": ("Sector-minutes rated rawan", "min", "lower"),
    # the one-gate service hall (twin.service)
    "service_visitors": ("Visitors to the service hall", "visitors", ""),
    "service_within_standard": ("Served within the published standard", "%", "higher"),
    "service_standard_kept": (
        "Served within the standard, counting those who left as missed",
        "%",
        "higher",
    ),
    "service_wait_p50_s": ("Waiting in the hall, median", "min", "lower"),
    "service_wait_p90_s": ("Waiting in the hall, 90th percentile", "min", "lower"),
    "service_in_hall_p90_s": ("Time in the hall, 90th percentile", "min", "lower"),
    "service_left_unserved": (
        "Visitors who left unserved (balked or gave up)",
        "visitors",
        "lower",
    ),
    "service_sent_away": ("Visitors sent away with incomplete documents", "visitors", "lower"),
    "service_longest_queue": ("Longest queue at a counter", "visitors", "lower"),
    "service_utilisation": ("Counter staff utilisation", "%", ""),
    "service_wait_spread_s": (
        "Spread of waits, same service and hour (std. dev.)",
        "min",
        "lower",
    ),
}
#: KPIs kept in seconds but shown in minutes, as the maps show them: a response time reads
#: "6.49 min", not "389.50 s". Tables divide by this before they show the value.
SHOWN_PER = {
    "processing_s": 60.0,
    "response_p50_s": 60.0,
    "response_p90_s": 60.0,
    "inject_wait_s": 60.0,
    "service_wait_p50_s": 60.0,
    "service_wait_p90_s": 60.0,
    "service_in_hall_p90_s": 60.0,
    "service_wait_spread_s": 60.0,
}

#: The accepted standard: a calibrated model has GEH < 5 at 85 % of its count sites.
GEH_TARGET = 0.85


_TRAFFIC_KEYS = [
    "network_speed_kmh",
    "mean_tti",
    "peak_tti",
    "trips",
    "completed_share",
    "mean_trip_min",
    "delay_veh_h",
    "mean_delay_s",
    "vehicles_delayed",
    "vehicles_rerouted",
    "trips_cut_short",
    "longest_queue_veh",
    "longest_queue_at",
    "teleports",
    "departed",
    "by_vehicle_type",
    "accidents_by_vehicle",
    "gridlock",
    "geh_under_5",
]
_COMMUNITY_KEYS = [
    "crimes",
    "crimes_reported",
    "segments_for_quarter",
    "segments_for_half",
    "rasa_aman",
    "rasa_aman_lowest",
    "trust",
    "disputes",
    "disputes_mediated",
    "unrest_peak",
]
#: KPIs of a plan rather than of a run: an ensemble adds them (:mod:`twin.plans.ensemble`).
_PLAN_KEYS = ["cost_total"]
#: An exercise's what-if measures (:mod:`twin.exercise.whatif`), not a run's.
_EXERCISE_KEYS = ["inject_wait_s", "open_incidents_end", "rawan_sector_min"]
_SERVICE_KEYS = [k for k in KPI_LABELS if k.startswith("service_")]
_RESPONSE_KEYS = [
    k
    for k in KPI_LABELS
    if k not in (*_TRAFFIC_KEYS, *_COMMUNITY_KEYS, *_PLAN_KEYS, *_EXERCISE_KEYS, *_SERVICE_KEYS)
]


#: Units of things counted: written as whole numbers (a mean over replications with one
#: decimal), never as ``575.00``.
COUNT_UNITS = frozenset(
    {"trips", "vehicles", "incidents", "calls", "needs", "crimes", "disputes", "people", "visitors"}
)


def shown_as_zero(value: Any, unit: str = "") -> bool:
    """Whether :func:`format_value` writes ``value`` as zero (``+0.00``, ``+0.0 pp``): a
    difference too small to show is no difference to mark better or worse."""
    if value is None or isinstance(value, bool) or value != value:
        return False
    if unit == "%":
        return round(abs(value) * 100, 1) == 0
    if unit in COUNT_UNITS:
        return round(abs(value), 1) == 0
    if unit == "Rp":
        return round(abs(value)) == 0
    return round(abs(value), 2) == 0


def format_number(value: float, digits: int = 1, lang: str = "en", *, signed: bool = False) -> str:
    """A number as people of ``lang`` write it: ``1,234.5`` in English, ``1.234,5`` in
    Bahasa Indonesia (a decimal comma, dots between thousands)."""
    text = f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"
    if lang == "id":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


#: Time units in each language: seconds, minutes, hours.
_TIME_UNITS = {"en": ("s", "min", "h"), "id": ("dtk", "mnt", "jam")}


def format_duration(seconds: Any, lang: str = "en", *, signed: bool = False) -> str:
    """A duration as people read it: ``45 s``, ``26.8 min``, ``2 h 05 min`` (in Bahasa
    Indonesia ``45 dtk``, ``26,8 mnt``, ``2 jam 05 mnt``); "–" for none.

    >>> format_duration(1608), format_duration(1608, "id"), format_duration(42.4)
    ('26.8 min', '26,8 mnt', '42 s')
    """
    if seconds is None or seconds != seconds:
        return "–"
    s_word, m_word, h_word = _TIME_UNITS.get(lang, _TIME_UNITS["en"])
    sign = ("+" if seconds >= 0 else "−") if signed else ("−" if seconds < 0 else "")
    x = abs(float(seconds))
    if x < 90:
        return f"{sign}{x:.0f} {s_word}"
    if x < 90 * 60:
        minutes = format_number(x / 60, 1, lang).removesuffix(",0").removesuffix(".0")
        return f"{sign}{minutes} {m_word}"
    minutes = round(x / 60)
    return f"{sign}{minutes // 60} {h_word} {minutes % 60:02d} {m_word}"


def format_value(value: Any, unit: str = "", *, signed: bool = False) -> str:
    """A KPI value for people: shares (unit ``%``) as percentages, differences of shares
    in percentage points, counts with thousands separators."""
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "–"
    if isinstance(value, bool):
        return "YES" if value else "no"
    if signed and shown_as_zero(value, unit):
        value = 0 if isinstance(value, int) else 0.0  # never "-0.0 pp"
    if unit == "%" and isinstance(value, int | float):
        return f"{value * 100:+.1f} pp" if signed else f"{value * 100:.1f}%"
    if unit == "Rp" and isinstance(value, int | float):  # money: whole rupiah
        return f"{value:+,.0f}" if signed else f"{value:,.0f}"
    if unit in COUNT_UNITS and isinstance(value, float):  # a count: whole, or a mean of counts
        digits = 0 if value.is_integer() else 1
        return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"
    if isinstance(value, float):
        return f"{value:+,.2f}" if signed else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:+,}" if signed else f"{value:,}"
    return str(value)


def format_interval(value: Any, half: Any, unit: str = "", *, signed: bool = False) -> str:
    """A value and, where there is one, its confidence interval's half-width:
    ``6.49 ± 0.31``, ``83.3% ± 4.1 pp``, ``+2.0 pp ± 1.1 pp`` (a share's interval is in
    percentage points)."""
    shown = format_value(value, unit, signed=signed)
    if half is None or value is None or (isinstance(half, float) and half != half):
        return shown
    return f"{shown} ± {format_value(half, unit, signed=True).lstrip('+')}"
