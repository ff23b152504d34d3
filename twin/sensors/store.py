"""The sensor history: one DuckDB file per live twin, readings and quarantine, written in
batches (see :class:`SensorStore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

#: The history: one narrow table for every kind of message, which DuckDB appends in one
#: statement per commit (a statement costs about a millisecond whatever its size, so one
#: table per kind would multiply the cost of a live commit). ``value`` is the kind's
#: measure: vehicles counted, a unit's speed (km/h), a travel time (s), people, a water
#: level (m). ``status`` is a unit's state, or an alert's or a call's category. Sensors'
#: readings carry the sensor's position. Everything else of a message is in ``payload``,
#: as received (the caller pseudonymised), and typed views per kind read it from there;
#: zstd packs it in half the space of DuckDB's own choice, in three quarters of the time.
READING_COLUMNS = {
    "received_at": "TIMESTAMPTZ",
    "observed_at": "TIMESTAMPTZ",
    "kind": "VARCHAR",
    "message_id": "VARCHAR",
    "sensor": "VARCHAR",
    "edge": "VARCHAR",
    "value": "DOUBLE",
    "interval_s": "DOUBLE",
    "status": "VARCHAR",
    "lat": "DOUBLE",
    "lon": "DOUBLE",
    "payload": "VARCHAR USING COMPRESSION zstd",
}
QUARANTINE_COLUMNS = {
    "received_at": "TIMESTAMPTZ",
    "reason": "VARCHAR",
    "detail": "VARCHAR",
    "raw": "VARCHAR",
}
_COMMON = "received_at, observed_at, message_id, sensor, edge"
#: A view per kind of message, with its own attributes typed (``twin.kpi`` and the
#: dashboards query these).
VIEWS = {
    "counts": (
        "TrafficFlowObserved",
        f"{_COMMON}, value::BIGINT AS vehicles, interval_s, "
        "(payload->>'averageVehicleSpeed')::DOUBLE AS speed_kmh, lat, lon, payload",
    ),
    "avl": (
        "Vehicle",
        f"{_COMMON}, message_id AS unit, status, value AS speed_kmh, lat, lon, "
        "payload->>'vehicleType' AS vehicle_type, payload",
    ),
    "travel_times": (
        "TravelTimeObserved",
        f"{_COMMON}, value AS travel_time_s, "
        "payload->>'refDeviceTo' AS sensor_to, coalesce((payload->>'vehicles')::BIGINT, 1) "
        "AS vehicles, payload",
    ),
    "alerts": (
        "Alert",
        f"{_COMMON}, status AS category, coalesce(payload->>'severity', 'medium') "
        "AS severity, payload->>'description' AS description, lat, lon, payload",
    ),
    "calls": (
        "EmergencyCall",
        f"{_COMMON}, payload->>'number' AS number, status AS category, "
        "payload->>'caller' AS caller, lat, lon, payload",
    ),
    "crowds": ("CrowdFlowObserved", f"{_COMMON}, value::BIGINT AS people, lat, lon, payload"),
    "water_levels": ("FloodMonitoring", f"{_COMMON}, value AS level_m, lat, lon, payload"),
}
_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
_UTC_US = pa.timestamp("us", tz="UTC")


def _arrow(values: tuple[Any, ...], sql: str) -> pa.Array:
    """A column for DuckDB. Times come as POSIX seconds: pyarrow converts aware datetimes
    one by one, at several microseconds each."""
    if sql == "TIMESTAMPTZ":  # POSIX seconds
        micros = np.rint(np.fromiter(values, float, len(values)) * 1e6)
        return pa.array(micros.astype(np.int64), type=pa.int64()).cast(_UTC_US)
    return pa.array(values, type=_ARROW[sql.split()[0]])  # the type, not its compression


#: Rows a store holds before they go in (a live feed commits sooner: see Ingest.follow).
BATCH = 20_000
#: DuckDB's row group: a batch this large goes straight to the database file, not through
#: its write-ahead log first (measured: a fifth less time per reading stored), so a replay
#: holds this many.
ROW_GROUP = 122_880


class SensorStore:
    """A live twin's DuckDB file: the sensor history (``readings``, and a typed view per
    kind of message: ``counts``, ``avl``, ``calls``... see :data:`VIEWS`) and the
    ``quarantine``. Rows wait as tuples and go in as one Arrow table per ``batch``."""

    def __init__(self, path: Path, *, batch: int = BATCH) -> None:
        import duckdb

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.path))
        # the history is written far more than read: checkpoint every 256 MB of log rather
        # than DuckDB's 16 MB (measured: a fifth of the cost of storing a reading)
        self.con.execute("SET checkpoint_threshold = '256MB'")
        for table, cols in (("readings", READING_COLUMNS), ("quarantine", QUARANTINE_COLUMNS)):
            body = ", ".join(f"{c} {t}" for c, t in cols.items())
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
        for view, (kind, columns) in VIEWS.items():
            self.con.execute(
                f"CREATE OR REPLACE VIEW {view} AS SELECT {columns} FROM readings "
                f"WHERE kind = '{kind}'"
            )
        self.batch = batch
        self._rows: dict[str, list[tuple[Any, ...]]] = {"readings": [], "quarantine": []}

    def add_reading(self, row: tuple[Any, ...]) -> None:
        """A reading, in the order of :data:`READING_COLUMNS`, times as POSIX seconds."""
        rows = self._rows["readings"]
        rows.append(row)
        if len(rows) >= self.batch:
            self.flush()

    def add_quarantined(self, row: tuple[Any, ...]) -> None:
        """A refused message: received at (POSIX seconds), reason, detail, raw text."""
        rows = self._rows["quarantine"]
        rows.append(row)
        if len(rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Commit what waits: one statement per table."""
        for table, cols in (("readings", READING_COLUMNS), ("quarantine", QUARANTINE_COLUMNS)):
            rows = self._rows[table]
            if rows:
                columns = zip(*rows, strict=True)
                batch = pa.table(
                    [_arrow(v, t) for v, t in zip(columns, cols.values(), strict=True)],
                    names=list(cols),
                )
                self.con.from_arrow(batch).insert_into(table)
                self._rows[table] = []

    def forget_personal(self, before: float) -> dict[str, int]:
        """Delete the raw personal fields of what came before ``before`` (POSIX seconds):
        each emergency call's caller pseudonym and position (its columns, and its kept
        message text), and the raw text of every quarantined message (which may hold a
        caller's number the ingest could not read to pseudonymise). Returns the counts.
        What stays: that a call came, when, on which number, of which category."""
        self.flush()
        cutoff = "to_timestamp(?)"
        calls = self.con.execute(
            f"SELECT count(*) FROM readings WHERE kind = 'EmergencyCall' "
            f"AND received_at < {cutoff} AND (lat IS NOT NULL OR payload LIKE '%\"caller\"%' "
            "OR payload LIKE '%\"location\"%')",
            [before],
        ).fetchall()[0][0]
        self.con.execute(
            "UPDATE readings SET lat = NULL, lon = NULL, "
            "payload = json_object('type', payload->>'type', 'id', payload->>'id', "
            "'number', payload->>'number', 'dateReceived', payload->>'dateReceived', "
            "'category', payload->>'category') "
            f"WHERE kind = 'EmergencyCall' AND received_at < {cutoff}",
            [before],
        )
        quarantined = self.con.execute(
            f"SELECT count(*) FROM quarantine WHERE received_at < {cutoff} AND raw IS NOT NULL",
            [before],
        ).fetchall()[0][0]
        self.con.execute(f"UPDATE quarantine SET raw = NULL WHERE received_at < {cutoff}", [before])
        return {"calls": int(calls), "quarantined": int(quarantined)}

    def close(self) -> None:
        self.flush()
        self.con.close()
