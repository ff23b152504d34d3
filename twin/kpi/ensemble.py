"""Runs side by side: each KPI's difference to a reference run and, for ensembles of
replications, means with confidence intervals (Student's t) and differences with their
intervals: paired where the replications share their seeds (common random numbers),
Welch's otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from twin.kpi.labels import KPI_LABELS, SHOWN_PER, shown_as_zero

#: KPIs of the trips that arrived: a trip cut short at a closure arrives early, so these
#: move the "better" way when more trips are cut short, whatever the plan did.
TRIP_KPIS = ("trips", "mean_trip_min", "delay_veh_h", "mean_delay_s", "vehicles_delayed")

#: A difference's verdict, as each screen marks it. "one_run" (no interval: a plan with a
#: single run) gets no mark: one draw cannot say which plan is better.
VERDICT_SIGNS = {"better": "▲", "worse": "▼", "unclear": "≈", "cut_short": "†"}


def compared_names(table: pd.DataFrame) -> list[str]:
    """The runs (or plans) of a :func:`compare` table, the reference first."""
    fixed = ("kpi", "label", "unit", "better")
    return [
        c
        for c in table.columns
        if c not in fixed and not str(c).startswith(("Δ ", "verdict ", "n ", "± "))
    ]


def difference_note(table: pd.DataFrame) -> str:
    """What the marks of a :func:`compare` table mean, as every screen says it under the
    table: for one run each, that a difference is one draw; for ensembles, what the
    intervals are."""
    if not any(str(c).startswith("Δ ") for c in table.columns):
        return ""
    if not any(str(c).startswith("± ") for c in table.columns):
        return (
            "One run each: a difference is one draw, so none is marked better or worse; "
            "only replications can tell (twin evaluate)."
        )
    return (
        "Means of the replications ± 95 % interval. ▲ better, ▼ worse: the difference's "
        "interval leaves out zero; ≈ no detectable difference."
    )


#: What † means, under any table that shows it.
CUT_SHORT_NOTE = (
    "† moved the better way only because more trips were cut short at closures: "
    "those trips ended early, so this is no improvement."
)

#: Each verdict in words, for tables and reports.
VERDICT_WORDS = {
    "better": "better",
    "worse": "worse",
    "unclear": "no detectable difference",
    "same": "same",
    "cut_short": "moved only because trips were cut short",
    "one_run": "one run each: only replications can tell",
}


def compare(
    summaries: dict[str, dict[str, Any] | list[dict[str, Any]]],
    *,
    reference: str | None = None,
    confidence: float = 0.95,
    paired: bool = False,
) -> pd.DataFrame:
    """KPIs of several runs side by side, with each run's difference to the reference run.

    Returns a table with one row per KPI: label, unit, one column per run, and a
    ``Δ <run>`` column per other run. Values are in the row's ``unit``: the response times
    kept in seconds (:data:`~twin.kpi.labels.SHOWN_PER`) are given in minutes.

    ``verdict <run>`` says what a difference means: "better" or "worse" (by the KPI's
    ``better``) where the difference's interval leaves out zero, "unclear" where it holds
    zero (no detectable difference), "one_run" where there is no interval (a side has one
    run: one draw cannot tell), "same" where it shows as zero, "cut_short" where a trip KPI
    moved the better way while the run cut more trips short at closures than the
    reference (:data:`TRIP_KPIS`: those trips end early, so the move is no improvement),
    and None where no side is better.

    A run given as a list of summaries is an ensemble: replications of one plan under
    other seeds. Its column then holds the mean, ``± <run>`` the half-width of the mean's
    ``confidence`` interval (Student's t) and ``n <run>`` the replications; ``± Δ <run>``
    is the half-width of the difference's interval, where both sides have two replications
    or more (else None: one run says nothing of its own spread). With ``paired``, each
    summary carries its ``seed``, and the difference is the mean of the differences
    between the replications of the same seed (common random numbers: the noise the two
    plans share cancels), with Student's t on those; else Welch's t on the two means.

    >>> t = compare({"a": [{"trips": 10}, {"trips": 12}], "b": [{"trips": 15}, {"trips": 17}]})
    >>> row = t.iloc[0]
    >>> row["a"], row["Δ b"], round(row["± Δ b"], 2)
    (11.0, 5.0, 6.08)
    """
    names = list(summaries)
    ref = reference or names[0]
    ensembles = any(isinstance(v, list) for v in summaries.values())
    runs = {n: (v if isinstance(v, list) else [v]) for n, v in summaries.items()}
    rows = []
    for key, (label, unit, better) in KPI_LABELS.items():
        if all(s.get(key) is None for n in names for s in runs[n]):
            continue  # a part of the twin none of the runs had (traffic, response)
        label = _with_target(key, label, [s for n in names for s in runs[n]])
        row: dict[str, Any] = {"kpi": key, "label": label, "unit": unit, "better": better}
        spread: dict[str, tuple[float, float, int] | None] = {}  # mean, variance, n
        per = SHOWN_PER.get(key, 1.0)  # seconds shown as minutes
        for name in names:
            values = [s.get(key) for s in runs[name]]
            values = [v / per if isinstance(v, int | float) and per != 1 else v for v in values]
            row[name], spread[name] = _ensemble_value(values)
            if ensembles:
                row[f"n {name}"] = len(values)
                row[f"± {name}"] = _half_width(spread[name], confidence)
        for name in names:
            if name == ref:
                continue
            a, b = row[ref], row[name]
            if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
                row[f"Δ {name}"] = None
            else:
                row[f"Δ {name}"] = round(b - a, 3)
            if ensembles and paired:
                row[f"Δ {name}"], row[f"± Δ {name}"] = _paired(
                    runs[ref], runs[name], key, per, confidence, row[f"Δ {name}"]
                )
            elif ensembles:
                row[f"± Δ {name}"] = _welch_half_width(spread[ref], spread[name], confidence)
            cut = [_mean(runs[n], "trips_cut_short") for n in (ref, name)]
            row[f"verdict {name}"] = _verdict(
                row[f"Δ {name}"], row.get(f"± Δ {name}"), unit, better, key, cut
            )
        rows.append(row)
    return pd.DataFrame(rows, dtype=object)  # object columns keep counts as ints


#: KPIs judged against a target, and where the summary keeps it.
_TARGET_OF = {"answered_in_target": "answer_target_s", "on_scene_in_target": "on_scene_target_s"}


def _with_target(key: str, label: str, summaries: list[dict[str, Any]]) -> str:
    """A "within target" KPI's label with its target said, where the runs share it:
    "Calls answered within target (10 s)"."""
    from twin.kpi.labels import format_duration

    targets = {s.get(_TARGET_OF.get(key, ""), None) for s in summaries}
    if key not in _TARGET_OF or len(targets) != 1 or None in targets:
        return label
    return f"{label} ({format_duration(targets.pop())})"


def _mean(summaries: list[dict[str, Any]], key: str) -> float:
    values = [s.get(key) or 0 for s in summaries]
    return float(np.mean(values)) if values else 0.0


def _verdict(
    delta: Any, half: float | None, unit: str, better: str, key: str, cut_short: list[float]
) -> str | None:
    """What a difference means (see :func:`compare`)."""
    if not better or delta is None:
        return None
    if shown_as_zero(delta, unit):
        return "same"
    if half is not None and abs(delta) <= half:
        return "unclear"
    good = (delta > 0) == (better == "higher")
    if good and key in TRIP_KPIS and cut_short[1] > cut_short[0]:
        return "cut_short"
    if half is None:
        return "one_run"
    return "better" if good else "worse"


def _paired(
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    key: str,
    per: float,
    confidence: float,
    fallback: Any,
) -> tuple[Any, float | None]:
    """The mean difference ``b - a`` over the replications both sides ran with the same
    seed, and its interval's half-width (Student's t on the differences)."""
    by_seed = {s.get("seed"): s.get(key) for s in a}
    diffs = [
        (s.get(key) - by_seed[s.get("seed")]) / per
        for s in b
        if s.get("seed") in by_seed and _number(s.get(key)) and _number(by_seed[s.get("seed")])
    ]
    if len(diffs) < 2:
        return fallback, None
    d = np.asarray(diffs, dtype=float)
    spread = (float(d.mean()), float(d.var(ddof=1)), len(d))
    return round(float(d.mean()), 3), _half_width(spread, confidence)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _ensemble_value(values: list[Any]) -> tuple[Any, tuple[float, float, int] | None]:
    """A KPI over replications: the one value of a single run (as it is), else the mean,
    with the sample's mean, variance and size where all are numbers."""
    if len(values) == 1:
        v = values[0]
        return v, ((float(v), 0.0, 1) if _number(v) else None)
    if not all(_number(v) for v in values):
        return (values[0] if all(v == values[0] for v in values) else None), None
    x = np.asarray(values, dtype=float)
    return float(x.mean()), (float(x.mean()), float(x.var(ddof=1)), len(x))


def _half_width(spread: tuple[float, float, int] | None, confidence: float) -> float | None:
    if spread is None or spread[2] < 2:
        return None
    from scipy import stats

    _, var, n = spread
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * np.sqrt(var / n))


def _welch_half_width(
    a: tuple[float, float, int] | None, b: tuple[float, float, int] | None, confidence: float
) -> float | None:
    """Half-width of the interval of a difference of two means (Welch-Satterthwaite)."""
    if a is None or b is None or a[2] < 2 or b[2] < 2:
        return None
    from scipy import stats

    va, vb = a[1] / a[2], b[1] / b[2]
    if va + vb == 0:
        return 0.0
    df = (va + vb) ** 2 / (va**2 / (a[2] - 1) + vb**2 / (b[2] - 1))
    return float(stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(va + vb))
