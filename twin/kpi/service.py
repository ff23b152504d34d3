"""The one-gate service hall's KPIs (see :mod:`twin.service`): per service and over the
hall, from the visitors' ``visitor_left`` and ``visitor_served`` events, the counters'
``counter_state`` and each service's published standard (``service_configured``).

=========================  ==============================================================
waiting, time in hall      median and 90th percentile, of the visitors served
within standard            visitors served whose time door to door was within the
                           service's published standard, over those served
standard kept              the same over every visitor who came with complete documents
                           and left in the run: one who left unserved counts as a miss
                           (the figure ``twin optimise`` sizes the staff to)
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
                "standard_kept": _kept(mine, s.standard_s),
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
        "ORDER BY t, seq"
    ).df()  # the groups in the scenario's order, each group's changes in time order
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
        "service_standard_kept": _kept(left, left["service"].map(standard)),
        "service_in_hall_p90_s": _q(served["in_hall_s"], 0.9),
        "service_left_unserved": int(left["reason"].isin(["balked", "reneged"]).sum()),
        "service_sent_away": int((left["reason"] == "incomplete").sum()),
        "service_longest_queue": int(counters["longest_queue"].max()) if len(counters) else 0,
        "service_utilisation": _r(busy / open_s, 4) if open_s > 0 else None,
        "service_wait_spread_s": _spread(served),
    }


def _kept(left: pd.DataFrame, standard: Any) -> float | None:
    """Served within the standard, over those who came with complete documents and left
    (sent away with incomplete documents, or still inside at the end, are neither)."""
    judged = left["reason"].isin(["served", "balked", "reneged"])
    if not judged.any():
        return None
    ok = (left["reason"] == "served") & (left["in_hall_s"] <= standard)
    return _r(ok[judged].mean(), 4)


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


# -- the hall at a moment, and through the day (the dashboards' queue display and planner's view)

_STEPS = "('visitor_queued', 'visitor_called', 'visitor_served', 'visitor_left')"


def hall_at(timeline: Any, t: float, *, recent_s: float = 1800.0, calls: int = 8) -> dict[str, Any]:
    """The hall at ``t`` as its screen shows it.

    Returns a dict of:

    ``counters``
        one row per counter group: ``counter``, ``counters``, ``open`` (staffed now),
        ``waiting`` (in its queue now);
    ``desks``
        one row per counter serving a visitor now: ``counter``, ``desk``, ``ticket``,
        ``service``, ``since`` (when called);
    ``calls``
        the latest ``calls`` calls, newest first: ``t``, ``ticket``, ``counter``, ``desk``;
    ``services``
        one row per service: ``service``, ``title``, ``letter`` (its tickets'), ``waiting``
        (in any queue now), ``recent_wait_s`` (the median wait of the steps called in the
        last ``recent_s``; None where none was), ``served`` so far.
    """
    con = _con(timeline)
    if not _has(con, "service_configured"):
        return {}
    now = con.execute(
        f"""
        WITH last AS (
            SELECT visitor, kind, counter, desk, t FROM timeline
            WHERE kind IN {_STEPS} AND t <= $t
            QUALIFY row_number() OVER (PARTITION BY visitor ORDER BY t DESC, seq DESC) = 1)
        SELECT last.kind, last.counter, last.desk, last.t, a.ticket, a.service
        FROM last JOIN (SELECT visitor, ticket, service FROM timeline
                        WHERE kind = 'visitor_arrived') a USING (visitor)
        WHERE last.kind IN ('visitor_queued', 'visitor_called')
        """,
        {"t": t},
    ).df()
    groups = con.execute(
        """
        SELECT counter, counters, staffed AS open FROM timeline
        WHERE kind = 'counter_state' AND t <= $t
        QUALIFY row_number() OVER (PARTITION BY counter ORDER BY t DESC, seq DESC) = 1
        """,
        {"t": t},
    ).df()
    order = con.execute(
        "SELECT counter, min(seq) AS first FROM timeline WHERE kind = 'counter_state' "
        "GROUP BY counter"
    ).df()
    groups = order.merge(groups, on="counter", how="left").sort_values("first")
    waiting = now[now["kind"] == "visitor_queued"]
    groups["waiting"] = groups["counter"].map(waiting["counter"].value_counts()).fillna(0)
    groups = groups.fillna({"counters": 0, "open": 0}).astype(
        {"counters": int, "open": int, "waiting": int}
    )
    desks = (
        now[now["kind"] == "visitor_called"]
        .rename(columns={"t": "since"})[["counter", "desk", "ticket", "service", "since"]]
        .astype({"desk": int})
        .sort_values(["counter", "desk"])
        .reset_index(drop=True)
    )
    called = con.execute(
        "SELECT t, ticket, counter, desk FROM timeline WHERE kind = 'visitor_called' AND t <= $t "
        "ORDER BY t DESC, seq DESC LIMIT $n",
        {"t": t, "n": calls},
    ).df()
    services = con.execute(
        """
        SELECT c.service, any_value(c.title) AS title, min(c.seq) AS first,
               (SELECT median(waited_s) FROM timeline w WHERE w.kind = 'visitor_called'
                AND w.service = c.service AND w.t <= $t AND w.t > $t - $recent) AS recent_wait_s,
               (SELECT count(*) FROM timeline l WHERE l.kind = 'visitor_left'
                AND l.service = c.service AND l.reason = 'served' AND l.t <= $t) AS served
        FROM timeline c WHERE c.kind = 'service_configured' GROUP BY c.service ORDER BY first
        """,
        {"t": t, "recent": recent_s},
    ).df()
    services["waiting"] = services["service"].map(waiting["service"].value_counts()).fillna(0)
    services["waiting"] = services["waiting"].astype(int)
    letters = con.execute(
        "SELECT service, split_part(any_value(ticket), '-', 1) AS letter FROM timeline "
        "WHERE kind = 'visitor_arrived' GROUP BY service"
    ).df()
    services = services.merge(letters, on="service", how="left").fillna({"letter": ""})
    services["recent_wait_s"] = (
        services["recent_wait_s"].astype(object).where(services["recent_wait_s"].notna(), None)
    )
    return {
        "counters": groups[["counter", "counters", "open", "waiting"]].reset_index(drop=True),
        "desks": desks,
        "calls": called,
        "services": services[
            ["service", "title", "letter", "waiting", "recent_wait_s", "served"]
        ].reset_index(drop=True),
    }


def queue_series(timeline: Any, *, every: float = 300.0) -> pd.DataFrame:
    """Through the run, every ``every`` seconds: for each counter group, the visitors
    waiting in its queue (``waiting``), the counters serving one (``busy``) and the
    counters open (``open``). Long format: ``t``, ``counter``, ``waiting``, ``busy``,
    ``open``."""
    con = _con(timeline)
    if not _has(con, "counter_state"):
        return pd.DataFrame(columns=["t", "counter", "waiting", "busy", "open"])
    end = con.execute("SELECT max(t) FROM timeline").fetchall()[0][0] or 0.0
    # each visitor's spells: from a queued or called event to their next event
    spells = con.execute(
        f"""
        SELECT kind, counter, t AS t0,
               lead(t) OVER (PARTITION BY visitor ORDER BY t, seq) AS t1
        FROM timeline WHERE kind IN {_STEPS}
        QUALIFY kind IN ('visitor_queued', 'visitor_called')
        """
    ).df()
    spells["t1"] = spells["t1"].fillna(np.inf)
    states = con.execute(
        "SELECT counter, t, staffed FROM timeline WHERE kind = 'counter_state' ORDER BY seq"
    ).df()
    grid = np.arange(0.0, end + every, every)
    rows = []
    for counter in dict.fromkeys(states["counter"]):
        mine = states[states["counter"] == counter]
        i = np.searchsorted(mine["t"].to_numpy(), grid, side="right") - 1
        open_now = np.where(i >= 0, mine["staffed"].to_numpy()[np.maximum(i, 0)], 0)
        counts = {}
        for kind, name in (("visitor_queued", "waiting"), ("visitor_called", "busy")):
            s = spells[(spells["kind"] == kind) & (spells["counter"] == counter)]
            t0, t1 = np.sort(s["t0"].to_numpy()), np.sort(s["t1"].to_numpy())
            # in a spell at g: begun by g (t0 <= g) and not yet ended (t1 > g)
            counts[name] = np.searchsorted(t0, grid, side="right") - np.searchsorted(
                t1, grid, side="right"
            )
        rows.append(
            pd.DataFrame({"t": grid, "counter": counter, **counts, "open": open_now.astype(int)})
        )
    return pd.concat(rows, ignore_index=True)


def standard_by_hour(timeline: Any) -> pd.DataFrame:
    """For each service and hour of arrival (hours since the run's start): visitors who
    came with complete documents and left, and the share served within the standard
    (``standard kept``). Columns ``service``, ``title``, ``hour``, ``visitors``, ``kept``."""
    con = _con(timeline)
    if not _has(con, "service_configured"):
        return pd.DataFrame(columns=["service", "title", "hour", "visitors", "kept"])
    return con.execute(
        """
        SELECT l.service, any_value(c.title) AS title,
               floor((l.t - l.in_hall_s) / 3600)::INT AS hour, count(*) AS visitors,
               avg(CASE WHEN l.reason = 'served' AND l.in_hall_s <= c.standard_s
                   THEN 1.0 ELSE 0.0 END) AS kept
        FROM timeline l JOIN (SELECT service, any_value(standard_s) AS standard_s,
                                     any_value(title) AS title, min(seq) AS first
                              FROM timeline WHERE kind = 'service_configured'
                              GROUP BY service) c USING (service)
        WHERE l.kind = 'visitor_left' AND l.reason IN ('served', 'balked', 'reneged')
        GROUP BY l.service, hour ORDER BY any_value(c.first), hour
        """
    ).df()
