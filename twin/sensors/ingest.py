"""Every message is validated; the good ones are kept, the bad ones quarantined with why.

:class:`Ingest` takes raw messages (bytes or text, from MQTT or a file) and never raises on
one: each is either a reading in the store's ``readings`` table or a row of its
``quarantine`` table with one of these reasons, counted per reason:

=================  ==========================================================================
``bad_json``       not JSON, or not a JSON object
``unknown_type``   no ``type``, or one the twin does not know
``invalid``        the schema refuses it (the detail names the field and the value)
``unknown_sensor`` it names a device the sensors file does not list
``wrong_sensor``   the device is of another kind (a gauge sending counts)
``outside_city``   a position outside the city's extent
``future``         stamped more than ``max_future_s`` ahead of the clock
``stale``          stamped more than ``max_age_s`` behind the clock
``duplicate``      the same device (or message id) and time were seen already
=================  ==========================================================================

History lives in DuckDB, one file per live twin (:class:`SensorStore`), written in batches.
"""

from __future__ import annotations

import json
import os
from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from twin.sensors.messages import KINDS, parse, pseudonymise
from twin.sensors.registry import SENDS, Registry

REASONS = ("bad_json", "unknown_type", "invalid", "unknown_sensor", "wrong_sensor",
           "outside_city", "future", "stale", "duplicate")  # fmt: skip
#: Raw text kept in quarantine, characters.
RAW_KEPT = 4000

READING_COLUMNS = {
    "received_at": "TIMESTAMPTZ", "observed_at": "TIMESTAMPTZ", "kind": "VARCHAR",
    "message_id": "VARCHAR", "sensor": "VARCHAR", "edge": "VARCHAR", "vehicles": "BIGINT",
    "interval_s": "DOUBLE", "speed_kmh": "DOUBLE", "travel_time_s": "DOUBLE", "sensor_to": "VARCHAR",
    "unit": "VARCHAR", "status": "VARCHAR", "lat": "DOUBLE", "lon": "DOUBLE", "number": "VARCHAR",
    "category": "VARCHAR", "severity": "VARCHAR", "caller": "VARCHAR", "people": "BIGINT",
    "level_m": "DOUBLE", "payload": "VARCHAR",
}  # fmt: skip
QUARANTINE_COLUMNS = {
    "received_at": "TIMESTAMPTZ",
    "reason": "VARCHAR",
    "detail": "VARCHAR",
    "raw": "VARCHAR",
}


class SensorStore:
    """A live twin's DuckDB file: ``readings`` and ``quarantine``, appended in batches."""

    def __init__(self, path: Path, *, batch: int = 5000) -> None:
        import duckdb

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.path))
        for table, cols in (("readings", READING_COLUMNS), ("quarantine", QUARANTINE_COLUMNS)):
            body = ", ".join(f"{c} {t}" for c, t in cols.items())
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
        self.batch = batch
        self._rows: dict[str, list[dict[str, Any]]] = {"readings": [], "quarantine": []}

    def add(self, table: str, row: dict[str, Any]) -> None:
        self._rows[table].append(row)
        if len(self._rows[table]) >= self.batch:
            self.flush()

    def flush(self) -> None:
        for table, cols in (("readings", READING_COLUMNS), ("quarantine", QUARANTINE_COLUMNS)):
            rows = self._rows[table]
            if rows:
                frame = pd.DataFrame(rows, columns=list(cols))  # noqa: F841  (DuckDB reads it by name)
                self.con.execute(f"INSERT INTO {table} SELECT * FROM frame")
                self._rows[table] = []

    def close(self) -> None:
        self.flush()
        self.con.close()


class Ingest:
    """Validates raw messages into a :class:`SensorStore` (see the module docstring).

    Parameters
    ----------
    registry
        The city's sensors and extent.
    store
        Where readings and quarantined messages go.
    key
        The key of callers' pseudonyms.
    clock
        Now, as an aware datetime: the wall clock when live, the replay's clock when
        replaying history.
    """

    def __init__(
        self, registry: Registry, store: SensorStore, *, key: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_future_s: float = 120.0, max_age_s: float = 86400.0, remember: int = 200_000,
    ) -> None:  # fmt: skip
        self.registry, self.store, self.key, self.clock = registry, store, key, clock
        self.max_future_s, self.max_age_s = max_future_s, max_age_s
        self.accepted: Counter[str] = Counter()
        self.quarantined: Counter[str] = Counter()
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._remember = remember
        self.last: Any = None  # the last message kept
        self.last_reason = ""  # why the last message was quarantined ("" if kept)
        self.last_type = ""

    def handle(self, raw: bytes | str, *, received: datetime | None = None) -> bool:
        """Take one message; True if kept as a reading. Never raises on bad input."""
        received = received or self.clock()
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            return self._reject(received, "bad_json", f"not JSON: {exc}", text)
        if not isinstance(data, dict):
            return self._reject(
                received, "bad_json", f"a message is a JSON object, got {type(data).__name__}", text
            )
        if isinstance(data.get("caller"), str):  # never store who called
            data["caller"] = pseudonymise(data["caller"], self.key)
            text = json.dumps(data, ensure_ascii=False)
        kind = data.get("type")
        if kind not in KINDS:
            return self._reject(
                received, "unknown_type", f"type {kind!r} is not one of {', '.join(KINDS)}", text
            )
        try:
            msg = parse(data)
        except ValidationError as exc:
            return self._reject(received, "invalid", _describe(exc), text)
        device = msg.sensor
        if device is not None:
            sensor = self.registry.sensors.get(device)
            if sensor is None:
                return self._reject(
                    received,
                    "unknown_sensor",
                    f"{kind} from {device!r}, which the sensors file does not list",
                    text,
                )
            if kind not in SENDS[sensor.kind]:
                return self._reject(
                    received,
                    "wrong_sensor",
                    f"{device!r} is a {sensor.kind}, which does not send {kind}",
                    text,
                )
            to = getattr(msg, "refDeviceTo", None)
            if to is not None and to not in self.registry.sensors:
                return self._reject(
                    received,
                    "unknown_sensor",
                    f"refDeviceTo {to!r} is not in the sensors file",
                    text,
                )
        where = getattr(msg, "location", None)
        if where is not None and not self.registry.inside(where.lat, where.lon):
            return self._reject(
                received,
                "outside_city",
                f"location ({where.lat:.5f}, {where.lon:.5f}) is outside the city",
                text,
            )
        now = self.clock()
        lag = (now - msg.observed_at).total_seconds()
        if lag < -self.max_future_s:
            return self._reject(
                received,
                "future",
                f"stamped {msg.observed_at.isoformat()}, {-lag:.0f} s ahead of the clock",
                text,
            )
        if lag > self.max_age_s:
            return self._reject(
                received,
                "stale",
                f"stamped {msg.observed_at.isoformat()}, {lag / 3600:.1f} h old",
                text,
            )
        key = (kind, device or msg.id, msg.observed_at.isoformat())
        if kind == "Vehicle":  # two changes of state in one second are two messages
            key = (kind, f"{msg.id}:{msg.serviceStatus}", msg.observed_at.isoformat())
        if key in self._seen:
            return self._reject(
                received, "duplicate", f"{kind} from {key[1]!r} at {key[2]} came before", text
            )
        self._seen[key] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        self.store.add("readings", self._row(msg, received, data))
        self.accepted[kind] += 1
        self.last, self.last_reason, self.last_type = msg, "", kind
        return True

    def _row(self, msg: Any, received: datetime, data: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(READING_COLUMNS)
        sensor = self.registry.sensors.get(msg.sensor) if msg.sensor else None
        row.update(received_at=received, observed_at=msg.observed_at, kind=msg.type, message_id=msg.id,
                   sensor=msg.sensor, edge=sensor.edge if sensor else None, payload=json.dumps(data, ensure_ascii=False))  # fmt: skip
        loc = getattr(msg, "location", None)
        if loc is not None:
            row.update(lat=loc.lat, lon=loc.lon)
        if msg.type == "TrafficFlowObserved":
            row.update(vehicles=msg.intensity, speed_kmh=msg.averageVehicleSpeed,
                       interval_s=(msg.dateObservedTo - msg.dateObservedFrom).total_seconds())  # fmt: skip
        elif msg.type == "TravelTimeObserved":
            row.update(
                travel_time_s=msg.travelTime, sensor_to=msg.refDeviceTo, vehicles=msg.vehicles
            )
        elif msg.type == "Vehicle":
            row.update(unit=msg.id, status=msg.serviceStatus, speed_kmh=msg.speed)
        elif msg.type == "Alert":
            row.update(category=msg.subCategory or msg.category, severity=msg.severity)
        elif msg.type == "EmergencyCall":
            row.update(number=msg.number, category=msg.category, caller=msg.caller)
        elif msg.type == "CrowdFlowObserved":
            row.update(people=msg.peopleCount)
        elif msg.type == "FloodMonitoring":
            row.update(level_m=msg.currentLevel)
        return row

    def _reject(self, received: datetime, reason: str, detail: str, raw: str) -> bool:
        self.quarantined[reason] += 1
        self.last, self.last_reason = None, reason
        try:
            self.last_type = str(json.loads(raw).get("type", ""))[:60]
        except (ValueError, AttributeError):
            self.last_type = ""
        self.store.add("quarantine", {"received_at": received, "reason": reason, "detail": detail[:1000],
                                      "raw": raw[:RAW_KEPT]})  # fmt: skip
        return False

    def summary(self) -> dict[str, Any]:
        """Messages kept per kind and quarantined per reason."""
        return {"accepted": dict(self.accepted), "quarantined": dict(self.quarantined),
                "total": sum(self.accepted.values()) + sum(self.quarantined.values())}  # fmt: skip


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        path = ".".join(str(p) for p in err["loc"][1:]) or "message"  # loc[0] is the union's tag
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        parts.append(f"{path}: {err['msg']}{shown}")
    return "; ".join(parts)


def caller_key(folder: Path) -> bytes:
    """The pseudonym key: ``TWIN_CALLER_KEY`` (hex) if set, else a random key kept in
    ``<folder>/caller.key`` (readable by its owner only), made on first use."""
    env = os.environ.get("TWIN_CALLER_KEY")
    if env:
        return bytes.fromhex(env)
    path = Path(folder) / "caller.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    key = os.urandom(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return key
