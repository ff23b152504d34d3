"""The order API's reader against any JSON a program may send: an order is sent, or
refused with a status and a reason; nothing else ever happens."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.dashboards.orders import submit_control, submit_order
from twin.dashboards.signin import Session
from twin.live.run import orders_folder
from twin.scenario.exercise import Inject, Order


@dataclass
class Exercise:
    """Where a running exercise takes its orders: its live file's path."""

    path: Path


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "order": st.sampled_from(["dispatch", "recall", "close_road", "mutual_aid", "fly"]) | JSON,
        "team": st.sampled_from(["polres", "dinkes", "", "x" * 50]) | JSON,
        "unit": st.sampled_from(["P-1", ""]) | JSON,
        "incident": st.text(max_size=100) | JSON,
        "place": st.fixed_dictionaries({"lat": st.floats(), "lon": st.floats()}) | JSON,
        "sector": JSON,
        "to_team": JSON,
        "text": st.text(max_size=3000) | JSON,
        "user": JSON,
        "gate_refused": JSON,
    },
)
SESSION = Session("budi", "trainee", "polres", "", 0.0, 0.0, "api")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(JSON, FIELDS))
def test_any_order_body_is_sent_or_refused_with_a_reason(tmp_path, body):
    view = Exercise(tmp_path / f"live-{time.monotonic_ns()}.duckdb")
    status, doc = submit_order(view, SESSION, body)
    sent = (
        list(orders_folder(view.path).glob("*.json")) if orders_folder(view.path).exists() else []
    )
    if status == 202:
        (order,) = [json.loads(p.read_text()) for p in sent]
        assert order["user"] == "budi" and order["team"] == "polres"  # never another's name
        assert "gate_refused" not in order
        fields = {k: v for k, v in order.items() if k not in ("kind", "user", "order_id")}
        Order.model_validate(fields)  # what reaches the twin is a valid order
    elif status == 403:
        assert doc["error"].startswith("budi plays in team polres, not ")
        (order,) = [json.loads(p.read_text()) for p in sent]
        assert order["gate_refused"] == doc["error"]  # on the record, refused
    else:
        assert status == 400 and doc["error"] and not sent


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"action": st.sampled_from(["pause", "speed", "release", "write", "jump"]) | JSON},
            optional={
                "speed": JSON,
                "inject": JSON,
                "write": st.fixed_dictionaries(
                    {"title": st.text(max_size=30)},
                    optional={"team": st.sampled_from(["all", "polres", "?"]), "does": JSON},
                )
                | JSON,
            },
        ),
    )
)
def test_any_control_body_is_sent_or_refused_with_a_reason(tmp_path, body):
    trainer = Session("tono", "trainer", None, "", 0.0, 0.0, "api")
    view = Exercise(tmp_path / f"live-{time.monotonic_ns()}.duckdb")
    status, doc = submit_control(view, trainer, body)
    folder = orders_folder(view.path)
    sent = list(folder.glob("*.json")) if folder.exists() else []
    assert status in (202, 400), doc
    assert len(sent) == (status == 202)
    if sent:
        control = json.loads(sent[0].read_text())
        assert control["user"] == "tono" and control["kind"] == "exercise_control"
        if control["action"] == "write":  # what the trainer wrote is an inject
            Inject.model_validate({"id": "w", **control["write"], "at": None, "if_missed": []})
