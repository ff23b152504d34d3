"""The sensors component: the live feed on the run's clock, turned into timeline events.

Each message is validated (:class:`~twin.sensors.ingest.Ingest`, kept in the run's or the
live twin's DuckDB file, or quarantined) and put on the timeline as ``sensor_message``
with its reason; a kept one also acts on the twin:

=======================  ==================================================================
``TrafficFlowObserved``  ``count_observed``: the detector's count (for GEH while live)
``EmergencyCall``        ``call_received``: the call centre takes it (a duplicate of an
                         open incident nearby, or a new incident)
``Alert``                ``alert_received``: the CAD opens the incident at once
``Vehicle``              ``unit_observed``: an available unit is dispatched from where it is
``FloodMonitoring``      over its threshold, ``closure_ordered`` for the gauge's roads
                         (closed even to emergency vehicles); back under, ``closure_lifted``
=======================  ==================================================================

Messages come from a file replayed on the run's clock (each at its own time: an exercise
or the replay of a past day) or, in a live twin, from an MQTT source polled every second.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from twin import events as ev
from twin.sensors.ingest import MAX_JUMP_S, Ingest
from twin.sensors.messages import PRIORITY_OF_SEVERITY, incident_of
from twin.sensors.registry import Registry
from twin.sensors.store import SensorStore

#: How often a live twin applies its retention period, simulated seconds.
RETENTION_EVERY_S = 3600.0
#: How often a live twin drains its MQTT queue, seconds.
POLL_S = 1.0


class SensorsComponent:
    """The live feed as a component of a Simulation (see the module docstring).

    Parameters
    ----------
    registry
        The city's sensors.
    store
        Where readings and quarantined messages are kept.
    key
        The pseudonym key of callers.
    replay
        A JSONL or CSV file to play on the run's clock; or
    journal
        A live twin's journal (:meth:`write_journal`): each message at the run second the
        live twin took it, with the time it arrived, so that a fork repeats the live twin
        exactly; or
    source
        A live source with ``drain()`` (MQTT), drained every :data:`POLL_S`. Every message
        taken is journaled (:attr:`journal_rows`), its caller already pseudonymised, with
        the door's verdict when the door refused it (its topic or signature: what a
        replay cannot judge again).
    keys
        Signing sensors' HMAC keys (:func:`twin.sensors.ingest.read_sensor_keys`).
    retain_days
        A live twin's retention period: every hour, the raw personal fields of what came
        more than this many days ago are deleted (:meth:`SensorStore.forget_personal`),
        and the deletion goes on the timeline (``personal_data_deleted``).
    rotate_key_days, key_folder
        Every this many days, the callers' pseudonym key in ``key_folder`` is replaced by
        a new one (``pseudonym_key_rotated`` on the timeline).
    """

    name = "sensors"

    def __init__(
        self,
        registry: Registry,
        store: SensorStore,
        *,
        key: bytes | None,
        replay: Path | None = None,
        journal: Path | None = None,
        source: Any = None,
        keys: dict[str, bytes] | None = None,
        retain_days: float | None = None,
        rotate_key_days: float | None = None,
        key_folder: Path | None = None,
    ) -> None:
        self.registry, self.store, self.key, self.keys = registry, store, key, keys
        self.retain_days, self.rotate_key_days, self.key_folder = (
            retain_days,
            rotate_key_days,
            key_folder,
        )
        self.replay, self.journal, self.source = replay, journal, source
        # (run second, received, text, the door's reason and detail if it refused it)
        self.journal_rows: list[tuple[float, str, str, tuple[str, str] | None]] = []
        self._flooded: set[str] = set()
        self.ingest: Ingest | None = None

    def start(self, sim: Any) -> None:
        self.ingest = Ingest(
            self.registry, self.store, key=self.key, keys=self.keys, clock=lambda: sim.clock()
        )
        if self.replay is not None:
            sim.env.process(self._play(sim, list(_timed_lines(self.replay))))
        if self.journal is not None:
            sim.env.process(self._repeat(sim, read_journal(self.journal)))
        if self.source is not None:
            sim.env.process(self._poll(sim))
        if self.retain_days is not None:
            sim.env.process(self._retain(sim, self.retain_days))
        if self.rotate_key_days is not None and self.key_folder is not None:
            sim.env.process(self._rotate(sim, self.rotate_key_days, self.key_folder))

    def _retain(self, sim: Any, days: float) -> Generator[Any, Any, None]:
        """Every hour: forget the raw personal fields older than the retention period, and
        say so on the timeline (the audit chain)."""
        while True:
            before = sim.clock() - timedelta(days=days)
            gone = self.store.forget_personal(before.timestamp())
            if gone["calls"] or gone["quarantined"]:
                sim.emit(
                    ev.PersonalDataDeleted(
                        before=before.isoformat(timespec="seconds"),
                        retain_days=float(days),
                        calls=gone["calls"],
                        quarantined=gone["quarantined"],
                    ),
                    source="live",
                )
            yield sim.env.timeout(RETENTION_EVERY_S)

    def _rotate(self, sim: Any, days: float, folder: Path) -> Generator[Any, Any, None]:
        """Every ``days``: a new pseudonym key, the old one destroyed."""
        from twin.sensors.ingest import key_id, rotate_caller_key

        while True:
            yield sim.env.timeout(days * 86400.0)
            self.key = rotate_caller_key(folder)
            if self.ingest is not None:
                self.ingest.key = self.key
            sim.emit(ev.PseudonymKeyRotated(key_id=key_id(self.key)), source="live")

    def close(self, sim: Any) -> None:
        self.store.flush()

    def _play(
        self, sim: Any, lines: list[tuple[datetime | None, str]]
    ) -> Generator[Any, Any, None]:
        for when, text in lines:
            if when is not None:
                # in seconds of the run, not through datetimes (microseconds would drift)
                wait = (when - sim.start).total_seconds() - sim.env.now
                if 0 < wait <= MAX_JUMP_S:  # further ahead: taken now, and judged from the future
                    yield sim.env.timeout(wait)
            self.take(sim, text)

    def _repeat(
        self, sim: Any, rows: list[tuple[float, str, str, tuple[str, str] | None]]
    ) -> Generator[Any, Any, None]:
        for t, received, text, refused in rows:
            if t > sim.env.now:
                yield sim.env.timeout(t - sim.env.now)
            self.take(sim, text, received=datetime.fromisoformat(received), refused=refused)

    def _poll(self, sim: Any) -> Generator[Any, Any, None]:
        while True:
            yield sim.env.timeout(POLL_S)
            burst = self.source.drain()
            for payload, received, topic in burst:
                self.take(sim, payload, received=received, topic=topic)
            if burst:  # the history is queryable by the next poll
                self.store.flush()

    def take(
        self,
        sim: Any,
        raw: bytes | str,
        *,
        received: datetime | None = None,
        topic: str | None = None,
        refused: tuple[str, str] | None = None,
    ) -> None:
        """Validate one message, record it, and let it act on the twin."""
        ing = self.ingest
        assert ing is not None
        received = received or sim.clock()
        ok = ing.handle(raw, received=received, topic=topic, refused=refused)
        if self.source is not None:
            door = (ing.last_reason, ing.last_door) if ing.last_door else None
            self.journal_rows.append((sim.env.now, received.isoformat(), ing.last_text, door))
        msg = ing.last if ok else None
        sim.emit(
            ev.SensorMessage(
                message_type=ing.last_type,
                sensor=(msg.sensor or msg.id) if msg else "",
                reason=ing.last_reason,
            ),
            source=self.name,
        )
        if msg is None:
            return
        kind = msg.type
        if kind == "TrafficFlowObserved":
            sensor = self.registry.sensors[msg.sensor]
            span = (msg.dateObservedTo - msg.dateObservedFrom).total_seconds()
            end = (msg.dateObservedTo - sim.start).total_seconds()
            sim.emit(
                ev.CountObserved(
                    sensor=msg.sensor,
                    edge=sensor.edge,
                    entered=msg.intensity,
                    interval_s=span,
                    end_s=end,
                ),
                source=self.name,
            )
        elif kind == "EmergencyCall" and msg.location is not None:
            sim.emit(
                ev.CallReceived(
                    call=msg.id,
                    number=msg.number,
                    incident_type=incident_of(msg),
                    lat=msg.location.lat,
                    lon=msg.location.lon,
                    caller=msg.caller or "",
                ),
                source=self.name,
            )
        elif kind == "Alert":
            sim.emit(
                ev.AlertReceived(
                    alert=msg.id,
                    incident_type=incident_of(msg),
                    priority=PRIORITY_OF_SEVERITY[msg.severity],
                    lat=msg.location.lat,
                    lon=msg.location.lon,
                ),
                source=self.name,
            )
        elif kind == "Vehicle":
            sim.emit(
                ev.UnitObserved(
                    unit=msg.id,
                    lat=msg.location.lat,
                    lon=msg.location.lon,
                    status=msg.serviceStatus,
                ),
                source=self.name,
            )
        elif kind == "FloodMonitoring":
            gauge = self.registry.sensors[msg.sensor]
            over = gauge.threshold_m is not None and msg.currentLevel >= gauge.threshold_m
            event_id = f"flood-{gauge.id}"
            if over and gauge.id not in self._flooded:
                self._flooded.add(gauge.id)
                sim.emit(
                    ev.ClosureOrdered(
                        event_id=event_id,
                        event_type="flood",
                        edges=list(gauge.floods),
                        emergency_access=False,
                    ),
                    source=self.name,
                )
            elif not over and gauge.id in self._flooded:
                self._flooded.discard(gauge.id)
                sim.emit(ev.ClosureLifted(event_id=event_id), source=self.name)


def _timed_lines(path: Path) -> Iterator[tuple[datetime | None, str]]:
    """A replay file's lines with their times, in the order given."""
    from twin.sensors.feeds import lines, observed_time

    for text in lines(Path(path)):
        yield observed_time(text), text


def write_journal(rows: list[tuple[float, str, str, tuple[str, str] | None]], path: Path) -> None:
    """A live twin's journal as JSON lines: ``{"t": run second, "received": ISO time,
    "text": the message as taken, caller pseudonymised}``, and ``"refused": [reason,
    detail]`` where the door refused it (topic, signature)."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for t, received, text, refused in rows:
            row: dict[str, Any] = {"t": t, "received": received, "text": text}
            if refused:
                row["refused"] = list(refused)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_journal(path: Path) -> list[tuple[float, str, str, tuple[str, str] | None]]:
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                refused = tuple(d["refused"]) if d.get("refused") else None
                rows.append((float(d["t"]), d["received"], d["text"], refused))
    return rows
