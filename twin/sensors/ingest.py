"""Every message is validated; the good ones are kept, the bad ones quarantined with why.

:class:`Ingest` takes raw messages (bytes or text, from MQTT or a file) and never raises on
one: each is either a reading in the store's ``readings`` table or a row of its
``quarantine`` table with one of these reasons, counted per reason:

=================  ==========================================================================
``too_large``      longer than ``MAX_MESSAGE_CHARS`` (never parsed)
``bad_csv``        a row of a CSV recording that cannot be read
``not_utf8``       bytes that are not UTF-8 text
``bad_json``       not JSON (nesting deeper than pydantic's limit of 200 included), or not a
                   JSON object
``unknown_type``   no ``type``, or one the twin does not know
``invalid``        the schema refuses it (the detail names the field and the value)
``unknown_sensor`` it names a device the sensors file does not list
``wrong_sensor``   the device is of another kind (a gauge sending counts), or the message
                   came on another sensor's MQTT topic (the broker's ACL failing)
``bad_signature``  a sensor with a key (``sensor-keys.yaml``) sent it unsigned, or its
                   HMAC does not match: forged, altered on the way, or replayed with a
                   changed time
``outside_city``   a position outside the city's extent
``future``         stamped more than ``max_future_s`` ahead of the clock
``stale``          stamped more than ``max_age_s`` behind the clock
``duplicate``      the same device (or message id) and time were seen already
=================  ==========================================================================

History lives in DuckDB, one file per live twin (:class:`~twin.sensors.store.SensorStore`),
written in batches.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import os
import re
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import accumulate, islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twin._errors import InputError
from twin.sensors.messages import (
    KINDS,
    MAX_MESSAGE_CHARS,
    Unreadable,
    parse,
    parse_json,
    parse_lines,
    pseudonymise,
)
from twin.sensors.registry import SENDS, Registry
from twin.sensors.store import SensorStore

#: Kinds of message that carry a position.
_PLACED = frozenset({"Vehicle", "Alert", "EmergencyCall"})
REASONS = (
    "too_large",
    "bad_csv",
    "not_utf8",
    "bad_json",
    "unknown_type",
    "invalid",
    "unknown_sensor",
    "wrong_sensor",
    "outside_city",
    "future",
    "stale",
    "duplicate",
    "bad_signature",
)
#: Reasons the door gives (who sent it, on which topic, signed how): what a journal's
#: replay cannot judge again, so the journal keeps the verdict.
DOOR = ("bad_signature", "wrong_sensor")
#: A signed message ends with its HMAC as its last member (see :func:`sign`).
_SIGNATURE = re.compile(r',\s*"signature"\s*:\s*"([0-9a-f]{64})"\s*\}\s*$')
#: A live feed's history commits (see :meth:`Ingest.follow`), seconds.
COMMIT_EVERY_S = 0.010
COMMIT_WITHIN_S = 0.5
#: A replayed message whose time jumps further ahead than this does not move the replay's
#: clock: it is judged against the clock (and quarantined as from the future).
MAX_JUMP_S = 3600.0
#: Raw text kept in quarantine, characters.
RAW_KEPT = 4000
_TYPE = re.compile(r'"type"\s*:\s*"([^"\\]{0,60})"')


# The row of each kind of message (see twin.sensors.store.READING_COLUMNS).
def _flow(m: Any, rec: float, obs: float, s: Any, text: str) -> tuple[Any, ...]:
    span = (m.dateObservedTo - m.dateObservedFrom).total_seconds()
    return rec, obs, m.type, m.id, s.id, s.edge, m.intensity, span, None, s.lat, s.lon, text


def _vehicle(m: Any, rec: float, obs: float, s: Any, text: str) -> tuple[Any, ...]:
    c = m.location.coordinates
    return rec, obs, m.type, m.id, m.id, None, m.speed, None, m.serviceStatus, c[1], c[0], text


def _travel(m: Any, rec: float, obs: float, s: Any, text: str) -> tuple[Any, ...]:
    return rec, obs, m.type, m.id, s.id, s.edge, m.travelTime, None, None, s.lat, s.lon, text


def _alert(m: Any, rec: float, obs: float, s: Any, text: str) -> tuple[Any, ...]:
    c = m.location.coordinates
    category = m.subCategory or m.category
    return rec, obs, m.type, m.id, None, None, None, None, category, c[1], c[0], text


def _call(m: Any, rec: float, obs: float, s: Any, text: str) -> tuple[Any, ...]:
    lat, lon = (m.location.lat, m.location.lon) if m.location is not None else (None, None)
    return rec, obs, m.type, m.id, None, None, None, None, m.category, lat, lon, text


def _crowd(m: Any, rec: float, obs: float, s: Any, text: str) -> tuple[Any, ...]:
    return rec, obs, m.type, m.id, s.id, s.edge, m.peopleCount, None, None, s.lat, s.lon, text


def _gauge(m: Any, rec: float, obs: float, s: Any, text: str) -> tuple[Any, ...]:
    return rec, obs, m.type, m.id, s.id, s.edge, m.currentLevel, None, None, s.lat, s.lon, text


_ROWS = {
    "TrafficFlowObserved": _flow,
    "Vehicle": _vehicle,
    "TravelTimeObserved": _travel,
    "Alert": _alert,
    "EmergencyCall": _call,
    "CrowdFlowObserved": _crowd,
    "FloodMonitoring": _gauge,
}


class Ingest:
    """Validates raw messages into a :class:`SensorStore` (see the module docstring).

    Parameters
    ----------
    registry
        The city's sensors and extent.
    store
        Where readings and quarantined messages go.
    key
        The key of callers' pseudonyms; ``None`` for messages whose callers are
        pseudonymised already (a live twin's journal).
    clock
        Now, as an aware datetime, for :meth:`handle` (the wall clock by default);
        :meth:`replay` keeps the history's own clock.
    max_future_s, max_age_s
        How far ahead of the clock, and behind it, a message's time may be.
    remember
        Repeats are caught among at least this many of the latest messages kept (and at
        most twice as many).
    keys
        Each signing sensor's HMAC key (:func:`read_sensor_keys`): a message from one of
        them must carry a valid signature (:func:`sign`), or it is quarantined as
        ``bad_signature``. Sensors without a key may send unsigned messages.
    """

    def __init__(
        self,
        registry: Registry,
        store: SensorStore,
        *,
        key: bytes | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_future_s: float = 120.0,
        max_age_s: float = 86400.0,
        remember: int = 200_000,
        keys: dict[str, bytes] | None = None,
    ) -> None:
        self.registry, self.store, self.key, self.clock = registry, store, key, clock
        self.keys = keys
        self._door: tuple[str | None, str | None] | None = None  # the message's signature, topic
        self.last_door = ""  # the detail, when the door refused the last message
        self.max_future_s, self.max_age_s = max_future_s, max_age_s
        self.accepted: Counter[str] = Counter()
        self.quarantined: Counter[str] = Counter()
        self._seen: set[tuple[str, str, float]] = set()
        self._seen_before: set[tuple[str, str, float]] = set()
        self._remember = remember
        margin = 0.01  # degrees around the city's extent
        lat0, lat1, lon0, lon1 = registry.bounds
        self._box = (lat0 - margin, lat1 + margin, lon0 - margin, lon1 + margin)
        self._sensors, self._add = registry.sensors, store.add_reading  # the hot path's names
        self.last: Any = None  # the last message kept
        self.last_reason = ""  # why the last message was quarantined ("" if kept)
        self.last_type = ""
        self.last_text = ""  # the last message as kept or quarantined (caller pseudonymised)

    def handle(
        self,
        raw: bytes | str,
        *,
        received: datetime | None = None,
        topic: str | None = None,
        refused: tuple[str, str] | None = None,
    ) -> bool:
        """Take one message; True if kept as a reading. Never raises on bad input.

        ``topic``: the MQTT topic it came on (a sensor's message must come on its own,
        ``twin/<type>/<its id>``). ``refused``: the reason and detail the door gave when
        the message first came (a journal's replay, which has neither topic nor keys).

        The common case stays in pydantic's compiled core: the text is parsed and validated
        in one call, and only a message that fails is decoded again to say why."""
        now = self.clock()
        received = received or now
        rec_ts = received.timestamp()
        now_ts = rec_ts if now is received else now.timestamp()
        # bytes that are not UTF-8 stay visible (as lone surrogates) and are quarantined
        text = raw.decode("utf-8", errors="surrogateescape") if isinstance(raw, bytes) else raw
        if len(text) > MAX_MESSAGE_CHARS:
            text = _too_large(text)
        if text.__class__ is Unreadable:
            return self._reject(rec_ts, text.reason, text.detail, text)
        if refused is not None:
            return self._reject(rec_ts, refused[0], refused[1], text, door=True)
        self._door = None
        if self.keys is not None or topic is not None:  # the door: who sent it, how
            signed = _SIGNATURE.search(text)
            signature = None
            if signed is not None:
                signature, text = signed.group(1), text[: signed.start()] + "}"
            self._door = (signature, topic)
        if "caller" in text and self.key is not None:  # never store who called
            return self._handle_decoded(text, rec_ts, now_ts)
        try:
            msg = parse_json(text)
        except ValidationError as exc:
            return self._diagnose(text, rec_ts, exc)
        return self._check(msg, text, rec_ts, now_ts, getattr(msg, msg.time_field).timestamp())

    def replay(
        self,
        texts: Iterable[str],
        *,
        speed: float = float("inf"),
        batch: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Validate a recorded feed (its lines, oldest first) into the history, ``speed``
        times as fast as it happened (``inf``: as fast as it goes; 60: an hour a minute).

        The replay has its own clock, the history's time: each message that passes the
        schema moves it to the message's own time, forward only and by at most
        :data:`MAX_JUMP_S` at once, and each message is received and judged (``future``,
        ``stale``) at that clock. Before the first message the clock is the wall clock.
        Lines are validated ``batch`` at a time in one call of pydantic's core;
        ``progress(n)`` is told after each batch."""
        if not speed > 0:
            raise InputError(f"--speed must be positive, got {speed!r}")
        paced = speed != float("inf")
        clock = time.time()
        first: float | None = None
        started = time.monotonic()
        check, decoded = self._check, self._handle_decoded
        for chunk in _batches(texts, batch):
            callers = _containing(chunk, "caller") if self.key is not None else _NONE
            parsed = chunk
            if max(map(len, chunk)) > MAX_MESSAGE_CHARS:  # never parsed: refused below
                chunk = [t if len(t) <= MAX_MESSAGE_CHARS else _too_large(t) for t in chunk]
                parsed = ["" if t.__class__ is Unreadable else t for t in chunk]
            for i, (text, msg) in enumerate(zip(chunk, parse_lines(parsed), strict=True)):
                if msg.__class__ is str:  # not a message: say why, at the clock
                    if text.__class__ is Unreadable:
                        self._reject(clock, text.reason, text.detail, text)
                    elif i in callers:
                        decoded(text, clock, clock)
                    else:
                        self._diagnose(text, clock, None)
                    continue
                seen = getattr(msg, msg.time_field).timestamp()
                if first is None or 0.0 <= seen - clock <= MAX_JUMP_S:
                    if first is None:
                        first = seen
                    clock = seen
                    if paced and (wait := started + (seen - first) / speed - time.monotonic()) > 0:
                        time.sleep(wait)
                if i in callers:  # never store who called
                    decoded(text, clock, clock)
                else:
                    check(msg, text, clock, clock, seen)
            if progress is not None:
                progress(len(chunk))
        self.store.flush()

    def follow(
        self,
        source: Any,
        *,
        until: float | None = None,
        idle: float | None = None,
        commit_every: float = COMMIT_EVERY_S,
        commit_within: float = COMMIT_WITHIN_S,
    ) -> None:
        """Validate a live source's messages as they come (``source.next(timeout)``), until
        the wall-clock time ``until`` or ``idle`` seconds without a message; after each
        commit ``source.committed()`` lets the broker forget what is now in the history.

        Messages are committed to the history in groups: when none are waiting and
        ``commit_every`` seconds have passed since the last commit, or at the latest
        ``commit_within`` seconds after the previous one. A commit costs a few
        milliseconds however small it is, so a slow stream commits every 10 ms and a fast
        one in large batches, and no message waits longer than ``commit_within``."""
        last_message = last_commit = time.monotonic()
        pending = 0
        while until is None or time.time() < until:
            item = source.next(commit_every if pending else 0.2)
            now = time.monotonic()
            if item is not None:
                self.handle(item[0], received=item[1], topic=item[2])
                pending += 1
                last_message = now
            elif idle is not None and now - last_message > idle:
                break
            since = now - last_commit
            if pending and (
                since >= commit_within or (since >= commit_every and not source.waiting())
            ):
                self.store.flush()
                source.committed()
                last_commit, pending = time.monotonic(), 0
        self.store.flush()
        source.committed()

    def _handle_decoded(self, text: str, received: float, now: float) -> bool:
        if not _is_text(text):
            return self._reject(received, "not_utf8", _NOT_UTF8, text)
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            return self._reject(received, "bad_json", f"not JSON: {exc}", text)
        if isinstance(data, dict) and isinstance(data.get("caller"), str):
            data["caller"] = pseudonymise(data["caller"], self.key)
            text = json.dumps(data, ensure_ascii=False)
        try:
            msg = parse(data)
        except ValidationError as exc:
            return self._diagnose(text, received, exc)
        return self._check(msg, text, received, now, getattr(msg, msg.time_field).timestamp())

    def _diagnose(self, text: str, received: float, exc: ValidationError | None) -> bool:
        """Quarantine a message the schema refused, with why (``exc`` None: validate it
        again to find out)."""
        if exc is None:
            try:
                parse_json(text)
            except ValidationError as error:
                exc = error
            else:  # pragma: no cover - a line refused in a batch passes alone
                raise AssertionError(f"a line refused in a batch passed alone: {text[:200]}")
        first = exc.errors()[0]
        if first["type"] == "string_unicode":  # lone surrogates: bytes that were not UTF-8
            return self._reject(received, "not_utf8", _NOT_UTF8, text)
        if first["type"] == "json_invalid":
            return self._reject(received, "bad_json", f"not JSON: {first['msg']}", text)
        if first["type"] in ("dict_type", "model_attributes_type"):
            name = {
                list: "an array",
                str: "a string",
                bool: "true or false",
                int: "a number",
                float: "a number",
                type(None): "null",
            }.get(type(first.get("input")), "something else")
            return self._reject(
                received, "bad_json", f"a message is a JSON object, got {name}", text
            )
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            kind = first.get("ctx", {}).get("tag")
            return self._reject(
                received, "unknown_type", f"type {kind!r} is not one of {', '.join(KINDS)}", text
            )
        return self._reject(received, "invalid", _describe(exc), text)

    def _check(self, msg: Any, text: str, received: float, now: float, seen_ts: float) -> bool:
        """The checks a schema cannot make: the device, the place, the time, repeats.
        Times are POSIX seconds: received, the twin's now (the replay's clock when
        replaying history) and the message's own. (The hot path of ingestion.)"""
        kind = msg.type
        field = msg.sensor_field
        device = getattr(msg, field) if field is not None else None
        if device is not None:
            sensor = self._sensors.get(device)
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
            if self._door is not None:
                problem = self._at_door(device, text)
                if problem:
                    return self._reject(received, problem[0], problem[1], text, door=True)
            if kind == "TravelTimeObserved" and msg.refDeviceTo not in self.registry.sensors:
                return self._reject(
                    received,
                    "unknown_sensor",
                    f"refDeviceTo {msg.refDeviceTo!r} is not in the sensors file",
                    text,
                )
        else:
            sensor = None
            where = msg.location if kind in _PLACED else None
            if where is not None:
                lon, lat = where.coordinates
                a, b, c, d = self._box
                if not (a <= lat <= b and c <= lon <= d):
                    return self._reject(
                        received,
                        "outside_city",
                        f"location ({lat:.5f}, {lon:.5f}) is outside the city",
                        text,
                    )
        lag = now - seen_ts
        if lag < -self.max_future_s:
            return self._reject(
                received,
                "future",
                f"stamped {_stamp(msg)}, {-lag:.0f} s ahead of the clock",
                text,
            )
        if lag > self.max_age_s:
            return self._reject(
                received, "stale", f"stamped {_stamp(msg)}, {lag / 3600:.1f} h old", text
            )
        # two changes of a unit's state in one second are two messages
        who = device or (f"{msg.id}:{msg.serviceStatus}" if kind == "Vehicle" else msg.id)
        key = (kind, who, seen_ts)
        seen = self._seen
        if key in seen or key in self._seen_before:
            return self._reject(
                received,
                "duplicate",
                f"{kind} from {who!r} at {_stamp(msg)} came before",
                text,
            )
        seen.add(key)
        if len(seen) >= self._remember:  # the last `remember` to twice that are remembered
            self._seen_before, self._seen = seen, set()
        self._add(_ROWS[kind](msg, received, seen_ts, sensor, text))
        self.accepted[kind] += 1
        self.last = msg
        self.last_reason, self.last_type, self.last_text = "", kind, text
        self.last_door = ""
        return True

    def _at_door(self, device: str, text: str) -> tuple[str, str] | None:
        """What the door says of a sensor's message: its topic, its signature."""
        assert self._door is not None
        signature, topic = self._door
        # a sensor's own topic is twin/<type>/<its id> (the broker's ACL, twin feed); a
        # message on one must come from that sensor (other topics name no sensor)
        parts = topic.split("/") if topic is not None else ()
        if len(parts) == 3 and parts[0] == "twin" and parts[2] != device:
            return "wrong_sensor", f"{device!r} came on {topic!r}, another sensor's topic"
        key = self.keys.get(device) if self.keys else None
        if key is None:
            return None
        if signature is None:
            return "bad_signature", f"{device!r} signs its messages; this one is unsigned"
        expected = hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), signature):
            return (
                "bad_signature",
                f"the signature does not match {device!r}'s key (forged, altered, or replayed "
                "with a changed time)",
            )
        return None

    def _reject(
        self, received: float, reason: str, detail: str, raw: str, *, door: bool = False
    ) -> bool:
        self.last_door = detail if door else ""
        raw = raw[:RAW_KEPT]
        if not _is_text(raw):  # kept as it came, its bad bytes shown as U+FFFD
            raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        self.quarantined[reason] += 1
        self.last, self.last_reason, self.last_text = None, reason, raw
        found = _TYPE.search(raw)  # what it says it is, read without parsing it
        self.last_type = found.group(1) if found else ""
        self.store.add_quarantined((received, reason, detail[:1000], raw))
        return False

    def summary(self) -> dict[str, Any]:
        """Messages kept per kind and quarantined per reason."""
        return {
            "accepted": dict(self.accepted),
            "quarantined": dict(self.quarantined),
            "total": sum(self.accepted.values()) + sum(self.quarantined.values()),
        }


def _stamp(msg: Any) -> str:
    return getattr(msg, msg.time_field).isoformat()


_NONE: frozenset[int] = frozenset()
_NOT_UTF8 = "bytes that are not UTF-8 text"


def _too_large(text: str) -> Unreadable:
    """A message past :data:`MAX_MESSAGE_CHARS`, refused unparsed (its start kept)."""
    return Unreadable(
        text[:RAW_KEPT],
        "too_large",
        f"{len(text):,} characters or more, past the {MAX_MESSAGE_CHARS:,} a message may have",
    )


def _is_text(text: str) -> bool:
    """True unless the text holds lone surrogates (bytes that were not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _containing(texts: list[str], needle: str) -> set[int] | frozenset[int]:
    """Which of the texts contain ``needle``: one search over them all, in C."""
    joined = "\n".join(texts)
    start = joined.find(needle)
    if start < 0:
        return _NONE
    ends = list(accumulate(len(t) + 1 for t in texts))  # where each text's line ends
    found = set()
    while start >= 0:
        i = bisect_right(ends, start)
        found.add(i)
        start = joined.find(needle, ends[i])
    return found


def _batches(texts: Iterable[str], n: int) -> Iterator[list[str]]:
    it = iter(texts)
    while chunk := list(islice(it, n)):
        yield chunk


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        path = ".".join(str(p) for p in err["loc"][1:]) or "message"  # loc[0] is the union's tag
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        parts.append(f"{path}: {err['msg']}{shown}")
    return "; ".join(parts)


#: Young objects between collections of Python's cyclic garbage collector (its default is
#: 700). Ingestion makes no cycles, yet each collection scans what is young: a live feed
#: collects every 50,000 allocations, a few milliseconds each, inside its latency target;
#: a replay every million (measured: a tenth of a replay's time, else).
LIVE_YOUNG = 50_000
REPLAY_YOUNG = 1_000_000


@contextmanager
def collecting_rarely(young: int) -> Iterator[None]:
    """Collect garbage every ``young`` allocations, with what exists now (the city, the
    sensors file) out of every collection; as it was afterwards."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


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


def sign(text: str, key: bytes) -> str:
    """A message as a signing sensor sends it: its JSON text with the HMAC-SHA256 of that
    text (hex, under the sensor's key) added as its last member, ``"signature"``.

    >>> sign('{"type": "TrafficFlowObserved", "id": "c1"}', b"k" * 32)[-20:]
    '18e97a45ba909fe4bb"}'
    """
    body = text.rstrip()
    if not body.endswith("}"):
        raise ValueError("a message to sign is a JSON object")
    mac = hmac.new(key, body.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return body[:-1] + f',"signature":"{mac}"}}'


def read_sensor_keys(path: Path) -> dict[str, bytes]:
    """The signing sensors' HMAC keys: ``sensor-keys.yaml`` (``twin sensors
    broker-config``), ``{sensor id: 64 hex digits}``; errors name the file and the sensor."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot be read as a sensor keys file ({exc})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a sensor keys file maps each sensor id to its key")
    keys = {}
    for sensor, value in doc.items():
        try:
            key = bytes.fromhex(str(value))
        except ValueError:
            key = b""
        if len(key) < 16:
            raise InputError(f"{path}: {sensor}: a key is at least 32 hexadecimal digits")
        keys[str(sensor)] = key
    return keys


def rotate_caller_key(folder: Path) -> bytes:
    """Replace the pseudonym key in ``<folder>/caller.key`` with a new random one (written
    beside it, owner-only, then renamed over it: the old key is gone). A key given by
    ``TWIN_CALLER_KEY`` is the operator's to rotate: refused here."""
    if os.environ.get("TWIN_CALLER_KEY"):
        raise InputError("the pseudonym key comes from TWIN_CALLER_KEY: rotate it where it is kept")
    path = Path(folder) / "caller.key"
    key = os.urandom(32)
    tmp = path.with_name(".caller.key.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    tmp.replace(path)
    return key


def key_id(key: bytes) -> str:
    """A key's name in the record: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:12]
