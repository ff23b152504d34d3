"""The one-gate service hall's KPIs (see :mod:`twin.service`): per service and over the
hall, from the visitors' ``visitor_left`` and ``visitor_served`` events, the counters'
``counter_state`` and each service's published standard (``service_configured``).

=========================  ==============================================================
waiting, time in hall      median and 90th percentile, of the visitors served
within standard            visitors served whose time door to door was within the
                           service's published standard, over those served
left unserved              visitors who turned back at the door (balked) or gave up
                           waiting (reneged); those sent away with incomplete documents
                           are counted apart
longest queue              the most visitors waiting at one counter group, as a visitor
                           joining it found it (themselves included)
utilisation                time the open counters spent serving, over their open time
wait spread                the standard deviation of waits between visitors of the same
                           service arriving in the same hour, pooled: queue-jumping, or a
                           counter that favours some, widens it
=========================  ==============================================================
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from twin.kpi._query import _con, _has, _r
from twin.kpi.labels import _SERVICE_KEYS


def service_table(timeline: Any) -> pd.DataFrame:
    """One row per service: title, standard, visitors, served, sent away (incomplete),
    balked, reneged, still inside, waiting and time in hall (median, 90th percentile, s),
    share served within the standard, and the pooled wait spread (s)."""
    con = _con(timeline)
    if not _has(con, "service_configured"):
        return pd.DataFrame()
    left = con.execute(
        """
        SELECT l.service, l.reason, l.waited_s, l.in_hall_s, l.t - l.in_hall_s AS came_t,
               c.standard_s, c.title
        FROM timeline l JOIN (SELECT service, any_value(standard_s) AS standard_s,
                                     any_value(title) AS title
                              FROM timeline WHERE kind = 'service_configured'
                              GROUP BY service) c USING (service)
        WHERE l.kind = 'visitor_left'
        """
    ).df()
    services = con.execute(
        "SELECT service, title, standard_s FROM timeline WHERE kind = 'service_configured' "
        "ORDER BY seq"
    ).df()
    rows = []
    for s in services.itertuples():
        mine = left[left["service"] == s.service]
        served = mine[mine["reason"] == "served"]
        count = mine["reason"].value_counts()
        rows.append(
            {
                "service": s.service,
                "title": s.title,
                "standard_s": float(s.standard_s),
                "visitors": len(mine),
                "served": len(served),
                "sent_away": int(count.get("incomplete", 0)),
                "balked": int(count.get("balked", 0)),
                "reneged": int(count.get("reneged", 0)),
                "still_inside": int(count.get("still_inside", 0)),
                "wait_p50_s": _q(served["waited_s"], 0.5),
                "wait_p90_s": _q(served["waited_s"], 0.9),
                "in_hall_p50_s": _q(served["in_hall_s"], 0.5),
                "in_hall_p90_s": _q(served["in_hall_s"], 0.9),
                "within_standard": _r((served["in_hall_s"] <= s.standard_s).mean(), 4)
                if len(served)
                else None,
                "wait_spread_s": _spread(served),
            }
        )
    return pd.DataFrame(rows)


def counter_table(timeline: Any) -> pd.DataFrame:
    """One row per counter group: counters, visitors served there, busy time, open time
    (counter-seconds) and utilisation, and the longest queue a visitor found there."""
    con = _con(timeline)
    if not _has(con, "counter_state"):
        return pd.DataFrame()
    end = con.execute("SELECT max(t) FROM timeline").fetchone()[0] or 0.0
    states = con.execute(
        "SELECT counter, t, staffed, counters FROM timeline WHERE kind = 'counter_state' "
        "ORDER BY counter, t, seq"
    ).df()
    served = (
        con.execute(
            "SELECT counter, count(*) AS steps, sum(served_s) AS busy_s, max(queue) + 1 AS longest "
            "FROM timeline WHERE kind = 'visitor_served' GROUP BY counter"
        )
        .df()
        .set_index("counter")
    )
    rows = []
    for name, group in states.groupby("counter", sort=False):
        t = np.append(group["t"].to_numpy(), end)
        open_s = float(np.sum(np.diff(t) * group["staffed"].to_numpy()))
        busy = float(served["busy_s"].get(name, 0.0) or 0.0)
        rows.append(
            {
                "counter": name,
                "counters": int(group["counters"].iloc[-1]),
                "steps": int(served["steps"].get(name, 0) or 0),
                "busy_s": busy,
                "open_s": open_s,
                "utilisation": _r(min(busy / open_s, 1.0), 4) if open_s > 0 else None,
                "longest_queue": int(served["longest"].get(name, 0) or 0),
            }
        )
    return pd.DataFrame(rows)


def service_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The hall's KPIs over all its services (see the module docstring); None where the
    run has no service hall."""
    table = service_table(con)
    if table.empty:
        return dict.fromkeys(_SERVICE_KEYS)
    left = con.execute(
        "SELECT reason, waited_s, in_hall_s, service, t - in_hall_s AS came_t "
        "FROM timeline WHERE kind = 'visitor_left'"
    ).df()
    served = left[left["reason"] == "served"]
    standard = dict(zip(table["service"], table["standard_s"], strict=True))
    counters = counter_table(con)
    busy, open_s = counters["busy_s"].sum(), counters["open_s"].sum()
    return {
        "service_visitors": len(left),
        "service_within_standard": _r(
            (served["in_hall_s"] <= served["service"].map(standard)).mean(), 4
        )
        if len(served)
        else None,
        "service_wait_p50_s": _q(served["waited_s"], 0.5),
        "service_wait_p90_s": _q(served["waited_s"], 0.9),
        "service_in_hall_p90_s": _q(served["in_hall_s"], 0.9),
        "service_left_unserved": int(left["reason"].isin(["balked", "reneged"]).sum()),
        "service_sent_away": int((left["reason"] == "incomplete").sum()),
        "service_longest_queue": int(counters["longest_queue"].max()) if len(counters) else 0,
        "service_utilisation": _r(busy / open_s, 4) if open_s > 0 else None,
        "service_wait_spread_s": _spread(served),
    }


def _q(values: pd.Series, q: float) -> float | None:
    return _r(float(values.quantile(q)), 1) if len(values) else None


def _spread(served: pd.DataFrame) -> float | None:
    """The pooled within-group standard deviation of waits, the groups being one service
    and one hour of arrival (groups of one say nothing and are left out)."""
    if served.empty:
        return None
    hour = (served["came_t"] // 3600).astype(int)
    groups = served.groupby([served["service"], hour])["waited_s"]
    n = groups.count()
    var = groups.var(ddof=1)
    keep = n >= 2
    dof = float((n[keep] - 1).sum())
    if dof <= 0:
        return None
    return _r(float(np.sqrt(((n[keep] - 1) * var[keep]).sum() / dof)), 1)
