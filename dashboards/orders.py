"""The exercise's order API: JSON over HTTP, for the team pages and a command post's own
tools alike.

- ``GET /api/exercise/state``: the exercise's clock, whether it is paused, the inbox of
  injects, the orders given and their outcome, the units and the open incidents, as the
  signed-in user may see them (a trainee: their team's; a trainer or observer: all).
- ``POST /api/exercise/orders``: a team's order (:class:`twin.scenario.exercise.Order`
  as JSON; a trainee's ``team`` is their own, and may be left out). Answers 202 with the
  order's id; whether the twin carried it out shows in the state (``refused``).
- ``POST /api/exercise/control``: the trainer's ``action`` (pause, resume, speed with
  ``speed``, release / hold / skip with ``inject``, write with ``write``: an inject's
  fields, end).

Sign in with the dashboards' session (the pages), or send a user's name and password as
HTTP Basic credentials (a program)::

    curl -u rudi:PASSWORD -H 'Content-Type: application/json' \\
         -d '{"order": "dispatch", "unit": "P-2", "incident": "crowd-unruly"}' \\
         https://k3i.example:8050/api/exercise/orders

An order from a team the user does not play in is refused (403), logged, and put on the
exercise's timeline as refused.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import ValidationError

from twin import kpi
from twin.dashboards import state
from twin.dashboards.signin import current_user

log = logging.getLogger("twin.auth")

#: The largest order body taken (bytes).
MAX_BODY = 64 * 1024
#: Seconds a state answer may be old: the API reads the published timeline at most this often.
FRESH_S = 1.0
CONTROL_ACTIONS = ("pause", "resume", "speed", "release", "hold", "skip", "write", "end")


def install(app: Any, shown: Any) -> None:
    """Add the order API's routes to the dashboards' server (the gate guards them)."""
    api = _Api(shown)
    server = app.server
    server.add_url_rule("/api/exercise/state", "twin_exercise_state", api.state, methods=["GET"])
    server.add_url_rule("/api/exercise/orders", "twin_exercise_orders", api.order, methods=["POST"])
    server.add_url_rule(
        "/api/exercise/control", "twin_exercise_control", api.control, methods=["POST"]
    )

    @server.errorhandler(Exception)
    def _failed(exc: Exception) -> Any:  # a program reads JSON, and the console says why
        from flask import request
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return exc
        if not request.path.startswith("/api/"):
            raise exc
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, f"the dashboards failed: {type(exc).__name__}: {exc}")


class _Api:
    def __init__(self, shown: Any) -> None:
        self.shown = shown

    def _view(self) -> Any:
        """The exercise's live view, read afresh at most every :data:`FRESH_S` (the caller
        holds the lock)."""
        return state.fresh(self.shown.exercise(), FRESH_S)

    def state(self) -> Any:
        from flask import jsonify

        session = current_user()
        assert session is not None
        with state.LOCK:
            view = self._view()
            if view is None:
                return _error(404, "no exercise is running on these dashboards")
            doc = exercise_state(view, session.team if session.role == "trainee" else None)
        return jsonify(doc)

    def order(self) -> Any:
        return self._answer(submit_order)

    def control(self) -> Any:
        return self._answer(submit_control)

    def _answer(self, submit: Any) -> Any:
        from flask import jsonify

        with state.LOCK:
            view = self._view()
        if view is None:
            return _error(404, "no exercise is running on these dashboards")
        session = current_user()
        assert session is not None
        status, doc = submit(view, session, _body())
        return jsonify(doc), status


def submit_order(view: Any, session: Any, body: Any) -> tuple[int, dict[str, Any]]:
    """Send a team's order (``body``, the fields of an Order) to the exercise on ``view``
    as ``session``'s user: (202, its id), or (400 / 403, why not). One for another team
    than the user's is refused, logged, and put on the exercise's record as refused."""
    from twin.live.run import send_order
    from twin.scenario import field_problems
    from twin.scenario.exercise import Order

    if not isinstance(body, dict):
        return 400, {"error": "send the order as a JSON object"}
    body = {k: v for k, v in body.items() if k not in ("user", "order_id", "gate_refused")}
    body.setdefault("team", session.team)
    try:
        order = Order.model_validate(body)
    except ValidationError as exc:
        problems = [list(p) for e in exc.errors() for p in field_problems(e)]
        said = "; ".join(f"{p}: {m}" if p else m for p, m in problems)
        return 400, {"error": f"the order is not valid: {said}", "problems": problems}
    order_id = uuid.uuid4().hex[:12]
    doc = {
        "kind": "exercise_order",
        **order.model_dump(mode="json", exclude_none=True),
        "user": session.user,
        "order_id": order_id,
    }
    if order.team != session.team:
        why = f"{session.user} plays in team {session.team}, not {order.team}"
        log.warning("order %s refused: %s", order.order, why)
        send_order(view.path, {**doc, "gate_refused": why})  # on the record all the same
        return 403, {"error": why, "order_id": order_id}
    send_order(view.path, doc)
    return 202, {"order_id": order_id, "state": "sent"}


def submit_control(view: Any, session: Any, body: Any) -> tuple[int, dict[str, Any]]:
    """Send the trainer's action (``body``: action and what it needs) to the exercise on
    ``view``: (202, sent) or (400, why not)."""
    from twin.live.run import send_order

    if not isinstance(body, dict) or body.get("action") not in CONTROL_ACTIONS:
        return 400, {"error": f"action: one of {', '.join(CONTROL_ACTIONS)}"}
    doc: dict[str, Any] = {"kind": "exercise_control", "action": body["action"]}
    if body["action"] == "speed":
        speed = body.get("speed")
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0 < speed <= 1000:
            return 400, {"error": "speed: a number above 0, at most 1000"}
        doc["speed"] = float(speed)
    if body["action"] in ("release", "hold", "skip"):
        if not isinstance(body.get("inject"), str) or not body["inject"]:
            return 400, {"error": "inject: the MSEL id of the inject"}
        doc["inject"] = body["inject"]
    if body["action"] == "write":
        if not isinstance(body.get("write"), dict):
            return 400, {"error": "write: the new inject's fields (title, team, text...)"}
        from twin.scenario import field_problems
        from twin.scenario.exercise import Inject

        written = {"id": "written", **body["write"], "at": None, "if_missed": []}
        try:  # said now, to the trainer who wrote it (the twin checks its place)
            Inject.model_validate(written)
        except ValidationError as exc:
            said = "; ".join(f"{p}: {m}" for e in exc.errors() for p, m in field_problems(e))
            return 400, {"error": f"write: {said}"}
        doc["write"] = body["write"]
    send_order(view.path, {**doc, "user": session.user})
    return 202, {"state": "sent"}


def _body() -> Any:
    from flask import request

    if (request.content_length or 0) > MAX_BODY:
        return None
    return request.get_json(silent=True)


def _error(status: int, message: str, **more: Any) -> Any:
    from flask import jsonify

    return jsonify({"error": message, **more}), status


def exercise_state(view: Any, team: str | None, t: float | None = None) -> dict[str, Any]:
    """What the state route answers (see the module docstring): for ``team`` only, or
    for every team (None); at simulated second ``t`` (default: now, the view's end), as the
    replay page shows a finished exercise."""
    con, meta = view.db, view.meta
    t = float(view.end) if t is None else float(t)
    params: dict[str, Any] = {"t": t} | ({"team": team} if team is not None else {})

    def rows(sql: str) -> list[dict[str, Any]]:  # DuckDB wants the parameters it uses alone
        return _records(con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).df())

    controls = rows(
        "SELECT action, speed FROM timeline WHERE kind = 'exercise_control' AND t <= $t "
        "ORDER BY t, seq"
    )
    paused = False
    speed = float(meta.get("speed") or 1.0)
    for c in controls:
        paused = {"pause": True, "resume": False}.get(c["action"], paused)
        speed = float(c["speed"] or speed) if c["action"] in ("start", "speed") else speed
    mine = "" if team is None else "AND team IN ($team, 'all')"
    inbox = rows(
        f"""
        SELECT r.t, r.inject, r.title, r.text, r.sender, r.team, r.effect, r.expected, r.due_s,
               r.follow_up_of, a.t AS answered_t, m.t AS missed_t
        FROM (SELECT * FROM timeline WHERE kind = 'inject_released' AND t <= $t {mine}) r
        LEFT JOIN (SELECT inject, min(t) AS t FROM timeline WHERE kind = 'inject_answered'
                   AND t <= $t GROUP BY inject) a USING (inject)
        LEFT JOIN (SELECT inject, min(t) AS t FROM timeline WHERE kind = 'inject_missed'
                   AND t <= $t GROUP BY inject) m USING (inject)
        ORDER BY r.t DESC, r.seq DESC
        """
    )
    theirs = "" if team is None else "AND (team = $team OR to_team = $team)"
    orders = rows(
        f"""
        SELECT g.t, g.order_id, g.order, g.team, g.user, g.unit, g.incident, g.sector, g.to_team,
               g.text, r.reason AS refused
        FROM (SELECT * FROM timeline WHERE kind = 'order_given' AND t <= $t {theirs}) g
        LEFT JOIN (SELECT order_id, first(reason) AS reason FROM timeline
                   WHERE kind = 'order_refused' AND t <= $t GROUP BY order_id) r USING (order_id)
        ORDER BY g.t DESC, g.seq DESC
        """
    )
    teams = meta.get("teams", {}).get("teams", [])
    owner = {u: tm["name"] for tm in teams for u in tm["units"]}
    unit_cols = ["unit", "state", "incident", "lat", "lon"]
    units = [
        {**u, "team": owner.get(u["unit"])}
        for u in _records(kpi.units_at(con, t)[unit_cols])
        if team is None or owner.get(u["unit"]) == team
    ]
    incidents = _records(kpi.open_incidents_at(con, t).iloc[::-1])  # newest first
    start = view.start
    for item in (*inbox, *orders, *incidents):
        item["clock"] = _clock(start, item["t"])
    return {
        "exercise": meta.get("exercise"),
        "title": meta.get("title"),
        "t": t,
        "clock": _clock(start, t),
        "paused": paused,
        "speed": speed,
        "team": team,
        "teams": [tm["name"] for tm in teams],
        "inbox": inbox,
        "orders": orders,
        "units": units,
        "incidents": incidents,
    }


def _clock(start: Any, t: Any) -> str:
    import pandas as pd

    return f"{start + pd.Timedelta(seconds=float(t)):%H:%M:%S}" if t is not None else ""


def _records(frame: Any) -> list[dict[str, Any]]:
    """A frame's rows as JSON-ready dicts (NaN and NaT as None)."""
    return [
        {k: (None if _missing(v) else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]


def _missing(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))  # NaN, NaT, None
    except (TypeError, ValueError):  # a list
        return False
