"""Where messages come from and go to: MQTT, and files replayed at a speed.

- :class:`MqttSource` subscribes with paho-mqtt at QoS 1 in a persistent session (the
  broker keeps what arrives while the twin is away), reconnects by itself, and takes a
  username and password and TLS.
- :func:`lines` reads a recording, JSON lines or CSV, as messages' text; ingestion replays
  it at a speed on the history's own clock (:meth:`twin.sensors.ingest.Ingest.replay`).
- :class:`MqttSink` and :class:`FileSink` publish a stream (``twin feed``); MQTT at QoS 1
  with a window of unacknowledged messages (paho fails past 65,535).
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import select
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin._errors import InputError
from twin.sensors.messages import MAX_MESSAGE_CHARS, Unreadable

#: Unacknowledged QoS 1 messages a publisher lets out at once.
WINDOW = 1000


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``mqtt://HOST:PORT``) as a pair; the port defaults to 1883."""
    text = text.removeprefix("mqtt://").removeprefix("mqtts://")
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "1883")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError as exc:
        raise InputError(f"--mqtt: write HOST:PORT, not {text!r}") from exc


#: TLS to the broker: False (none), True (the broker's certificate checked against the
#: system's CAs) or the path of a CA certificate (a city's own CA). The broker's name or
#: address must be in its certificate.
Tls = bool | str | Path


def _client(
    client_id: str,
    username: str | None,
    password: str | None,
    tls: Tls,
    *,
    manual_ack: bool = False,
) -> Any:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        manual_ack=manual_ack,
    )
    if username is not None:
        client.username_pw_set(username, password)
    _use_tls(client, tls)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def _use_tls(client: Any, tls: Tls) -> None:
    if tls is not False:
        ca = _ca_file(tls)
        client.tls_set(ca_certs=None if ca is None else str(ca))


def _ca_file(tls: Tls) -> Path | None:
    """The CA certificate TLS asks for, if any (an :class:`InputError` if it is missing)."""
    if isinstance(tls, bool):
        return None
    if not Path(tls).is_file():
        raise InputError(f"--tls-ca {tls}: file not found")
    return Path(tls)


class MqttSource:
    """Messages from an MQTT broker, as ``(payload, received_at)`` pairs, received by
    paho's network loop in a thread of this process (the live twin drains them every
    second). QoS 1 in a persistent session: the broker keeps what arrives while the twin
    is away, and the client reconnects by itself. A message is acknowledged as it
    arrives; :class:`MqttReceiver` acknowledges only what is in the history."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        topics: tuple[str, ...] = ("twin/#",),
        client_id: str = "twin-live",
        username: str | None = None,
        password: str | None = None,
        tls: Tls = False,
        qos: int = 1,
    ) -> None:
        self.inbox: deque[tuple[bytes, datetime, str]] = deque()  # payload, received, topic
        self._arrived = threading.Event()
        self.connected = threading.Event()
        self.failure: str | None = None
        client = _client(client_id, username, password, tls)
        inbox, arrived = self.inbox, self._arrived

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if reason.is_failure:
                self.failure = f"the broker refused the connection: {reason}"
                return
            for topic in topics:
                c.subscribe(topic, qos=qos)
            self.connected.set()

        def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            self.connected.clear()

        def on_message(c: Any, userdata: Any, msg: Any) -> None:
            inbox.append((msg.payload, datetime.now(UTC), msg.topic))
            if not arrived.is_set():
                arrived.set()

        client.on_connect, client.on_disconnect, client.on_message = (
            on_connect,
            on_disconnect,
            on_message,
        )
        self.client = client
        try:
            client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise InputError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from exc
        client.loop_start()

    def wait_connected(self, timeout: float = 10.0) -> None:
        if not self.connected.wait(timeout):
            raise InputError(
                self.failure or f"no connection to the MQTT broker within {timeout:g} s"
            )

    def messages(
        self, *, until: float | None = None, idle: float | None = None
    ) -> Iterator[tuple[bytes, datetime, str]]:
        """Messages (payload, received, topic) as they come, until the wall-clock time ``until`` or ``idle`` seconds
        without one."""
        last = time.monotonic()
        while True:
            if until is not None and time.time() >= until:
                return
            item = self.next(0.2)
            if item is None:
                if idle is not None and time.monotonic() - last > idle:
                    return
                continue
            last = time.monotonic()
            yield item

    def next(self, timeout: float) -> tuple[bytes, datetime, str] | None:
        """The next message, or None if none comes within ``timeout`` seconds."""
        inbox = self.inbox
        if not inbox:
            self._arrived.clear()
            if not inbox:  # nothing came between the check and the clear
                self._arrived.wait(timeout)
        return inbox.popleft() if inbox else None

    def waiting(self) -> bool:
        """Whether messages are waiting to be taken."""
        return bool(self.inbox)

    def committed(self) -> None:
        """Everything taken is in the history (nothing to do: acknowledged on arrival)."""

    def drain(self) -> list[tuple[bytes, datetime, str]]:
        """Every message waiting now, without waiting for more."""
        out = []
        inbox = self.inbox
        while inbox:
            out.append(inbox.popleft())
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class MqttReceiver:
    """Messages from an MQTT broker, received in a process of its own and acknowledged
    only once they are in the history (``twin ingest --mqtt``).

    paho's network loop costs a Python subscriber about as much per message as validating
    and storing it does, so the two run side by side on two cores: the receiver process
    reads the socket and sends the messages over a pipe in batches; this side validates
    and stores them, and after each commit (:meth:`committed`) the receiver acknowledges
    them to the broker (QoS 1, ``manual_ack``). If the twin stops or crashes before a
    commit, the broker still holds those messages for the persistent session and sends them
    again; a message that comes twice is quarantined as a duplicate, so none is lost and
    none is kept twice.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        topics: tuple[str, ...] = ("twin/#",),
        client_id: str = "twin-ingest",
        username: str | None = None,
        password: str | None = None,
        tls: Tls = False,
    ) -> None:
        import multiprocessing

        _ca_file(tls)  # said here, not lost in the receiver process
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_receive,
            name="twin-mqtt-receiver",
            daemon=True,
            args=(child, host, port, topics, client_id, username, password, tls),
        )
        self._proc.start()
        child.close()
        self.inbox: deque[tuple[bytes, datetime, str]] = deque()
        self.taken = 0
        self.connected = False
        self.failure: str | None = None

    def _read(self, timeout: float) -> bool:
        """Take what the receiver sent within ``timeout``; True if messages came."""
        if not self._conn.poll(timeout):
            return False
        try:
            what, body = self._conn.recv()
        except EOFError:
            self.failure = self.failure or "the MQTT receiver stopped"
            self.connected = False
            return False
        if what == "messages":
            self.inbox.extend(
                (payload, datetime.fromtimestamp(at, UTC), topic) for payload, at, topic in body
            )
            return True
        self.connected = what == "connected"
        if what == "failed":
            self.failure = body
        return False

    def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.connected and self.failure is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._read(left)
        if not self.connected:
            raise InputError(
                self.failure or f"no connection to the MQTT broker within {timeout:g} s"
            )

    def next(self, timeout: float) -> tuple[bytes, datetime, str] | None:
        """The next message, or None if none comes within ``timeout`` seconds."""
        inbox = self.inbox
        deadline = time.monotonic() + timeout
        while not inbox:
            left = deadline - time.monotonic()
            if left <= 0 or (not self._proc.is_alive() and not self._conn.poll()):
                return None
            self._read(left)
        self.taken += 1
        return inbox.popleft()

    def waiting(self) -> bool:
        """Whether messages are waiting, here or in the pipe."""
        return bool(self.inbox) or self._conn.poll()

    def committed(self) -> None:
        """Every message taken so far is in the history: let the broker forget them."""
        self._conn.send(("ack", self.taken))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(("stop", None))
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
        self._conn.close()


#: The receiver sends a batch when this many messages wait or the socket has no more.
RECEIVER_BATCH = 2000


def _receive(
    conn: Any,
    host: str,
    port: int,
    topics: tuple[str, ...],
    client_id: str,
    username: str | None,
    password: str | None,
    tls: Tls,
) -> None:
    """The receiver process of :class:`MqttReceiver`."""
    import paho.mqtt.client as mqtt

    client = _client(client_id, username, password, tls, manual_ack=True)
    batch: list[tuple[bytes, float]] = []
    # (sequence number, packet id, connection) of every message not yet acknowledged
    unacked: deque[tuple[int, int, int]] = deque()
    state = {"seq": 0, "epoch": 0}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            conn.send(("failed", f"the broker refused the connection: {reason}"))
            return
        state["epoch"] += 1  # packet ids of the connection before mean nothing now
        for topic in topics:
            c.subscribe(topic, qos=1)
        conn.send(("connected", None))

    def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        conn.send(("disconnected", str(reason)))

    def on_message(c: Any, userdata: Any, msg: Any) -> None:
        batch.append((msg.payload, time.time(), msg.topic))
        state["seq"] += 1
        unacked.append((state["seq"], msg.mid, state["epoch"]))

    client.on_connect, client.on_disconnect, client.on_message = (
        on_connect,
        on_disconnect,
        on_message,
    )
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        conn.send(("failed", f"cannot reach the MQTT broker at {host}:{port}: {exc}"))
        return
    retry_at, delay = 0.0, 1.0
    while True:
        if client.loop(0.005 if batch else 0.05) != mqtt.MQTT_ERR_SUCCESS:
            now = time.monotonic()  # lost: reconnect with a growing delay, as paho's own loop does
            if now >= retry_at:
                try:
                    client.reconnect()
                    delay = 1.0
                except OSError:
                    retry_at, delay = now + delay, min(2 * delay, 30.0)
            else:
                time.sleep(min(0.05, retry_at - now))
        sock = client.socket()
        more = sock is not None and bool(select.select([sock], [], [], 0)[0])
        if batch and (len(batch) >= RECEIVER_BATCH or not more):
            conn.send(("messages", batch))
            batch = []
        while conn.poll():
            what, upto = conn.recv()
            if what == "stop":
                client.disconnect()
                return
            while unacked and unacked[0][0] <= upto:
                _, mid, epoch = unacked.popleft()
                if epoch == state["epoch"]:
                    client.ack(mid, 1)


#: A message's own time, found in its text without decoding it (a scenario's recorded feed
#: is timed this way before it plays): the first of these attributes in the text.
_STAMP = re.compile(
    r'"(?:dateObservedTo|dateObserved|dateIssued|dateReceived)"\s*:\s*"([^"]{1,64})"'
)


def observed_time(text: str) -> datetime | None:
    """The time a message's text carries, if it carries an ISO 8601 time with its offset."""
    found = _STAMP.search(text)
    if found is None:
        return None
    try:
        t = datetime.fromisoformat(found.group(1))
    except ValueError:
        return None
    return t if t.tzinfo else None


#: The most messages one segment (an exercise's feed inject) plays.
MAX_SEGMENT = 10_000


def segment(path: Path) -> list[tuple[float, str]]:
    """A file of messages (JSON lines or CSV, as :func:`lines` reads it) as a segment to
    play from any moment: each message with its offset in seconds from the first message
    that carries a time (0 for those before it, or without one). Messages stay as written:
    one the twin refuses is played all the same, and quarantined with its reason; a CSV
    row that is not a row at all is an InputError naming its line."""
    out: list[tuple[float, str]] = []
    first: datetime | None = None
    for n, text in enumerate(lines(Path(path)), 1):
        if n > MAX_SEGMENT:
            raise InputError(f"{path}: more than {MAX_SEGMENT:,} messages: a segment, not a day")
        if isinstance(text, Unreadable):
            raise InputError(f"{path}, {text}: {text.detail}")
        text = str(text)
        when = observed_time(text)
        if when is not None and first is None:
            first = when
        offset = (when - first).total_seconds() if when is not None and first is not None else 0.0
        out.append((max(0.0, offset), text))
    return out


def first_time(messages: list[tuple[float, str]]) -> datetime | None:
    """The time the first timed message of a segment carries."""
    return next((t for _o, text in messages if (t := observed_time(text)) is not None), None)


def shift_times(text: str, by: Any) -> str:
    """A message with every time it carries (a ``date…`` member in ISO 8601 with its
    offset) moved by ``by`` (a timedelta): a recorded segment played on another day. Text
    that is not a JSON object is left as it is."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    for key, value in data.items():
        if key.startswith("date") and isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            if when.tzinfo is not None:
                data[key] = (when + by).isoformat()
    return json.dumps(data, ensure_ascii=False)


def lines(path: Path, *, limit: int = MAX_MESSAGE_CHARS) -> Iterator[str]:
    """The messages of a JSON-lines file, or of a CSV file with one message per row (see
    :func:`_from_csv`), as JSON text, in bounded memory whatever the file holds.

    A line is read ``limit`` characters at most: a longer one comes as its first
    ``limit + 1`` characters (which ingestion refuses as ``too_large``) and the rest is
    skipped. Bytes that are not UTF-8 come as lone surrogates (``surrogateescape``), which
    ingestion refuses as ``not_utf8``; a CSV row that cannot be read comes as an
    :class:`~twin.sensors.messages.Unreadable` line."""
    if path.suffix.lower() == ".csv":
        yield from _csv_lines(path, limit)
        return
    # NOTE: the line loop is inlined, not shared with the CSV reader, for speed (a replay
    # reads 200,000 lines a second through it)
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        readline = fh.readline
        while line := readline(limit + 1):
            if line[-1] != "\n" and len(line) > limit:  # the rest of a huge line: dropped
                while (rest := readline(1 << 20)) and rest[-1] != "\n":
                    pass
            if line.strip():
                yield line.rstrip("\n")


def _csv_lines(path: Path, limit: int) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        rows = csv.DictReader(_bounded(fh, limit))
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Unreadable(f"CSV line {rows.line_num}", "bad_csv", f"not a CSV row: {exc}")
                continue
            try:
                yield json.dumps(_from_csv(row), ensure_ascii=False)
            except (TypeError, ValueError) as exc:  # a row with more cells than columns
                yield Unreadable(f"CSV line {rows.line_num}", "bad_csv", f"not a CSV row: {exc}")


def _bounded(fh: Any, limit: int) -> Iterator[str]:
    """A text file's lines, each cut to ``limit + 1`` characters (the rest of a longer line
    read in pieces and dropped)."""
    readline = fh.readline
    while line := readline(limit + 1):
        if line[-1] != "\n" and len(line) > limit:
            while (rest := readline(1 << 20)) and rest[-1] != "\n":
                pass
        yield line


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a message: empty cells dropped, ``lat``/``lon`` as a location."""
    out: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
    if "lat" in out and "lon" in out:
        try:
            out["location"] = {
                "type": "Point",
                "coordinates": [float(out.pop("lon")), float(out.pop("lat"))],
            }
        except ValueError:
            pass  # left as text: the schema names it
    return out


class FileSink:
    """Messages to a JSON-lines file (written to a temporary file, renamed at the end)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.fh = self.tmp.open("w", encoding="utf-8")
        self.sent = 0

    def send(self, message: dict[str, Any], topic: str) -> None:
        self.fh.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.sent += 1

    def close(self) -> None:
        self.fh.close()
        self.tmp.replace(self.path)


class MqttSink:
    """Messages to an MQTT broker at QoS 1, never more than :data:`WINDOW` unacknowledged."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "twin-feed",
        username: str | None = None,
        password: str | None = None,
        tls: Tls = False,
    ) -> None:
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        _use_tls(self.client, tls)
        self._window = threading.Semaphore(WINDOW)
        self.client.on_publish = lambda c, u, mid, reason, props: self._window.release()
        answered, refused = threading.Event(), []

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if reason.is_failure:
                refused.append(f"it refused: {reason}")
            answered.set()

        def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if not answered.is_set():  # closed before it answered: a TLS port, say
                refused.append(f"it closed the connection ({reason}); does it want TLS (--tls)?")
                answered.set()

        self.client.on_connect, self.client.on_disconnect = on_connect, on_disconnect
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise InputError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from exc
        self.client.loop_start()
        if not answered.wait(10) or refused:  # a broker that speaks TLS to a plain client...
            self.client.loop_stop()
            why = refused[0] if refused else "no answer within 10 s"
            raise InputError(
                f"the MQTT broker at {host}:{port} did not accept the connection: {why}"
            )
        self.sent = 0

    def send(self, message: dict[str, Any], topic: str) -> None:
        self._window.acquire()
        self.client.publish(topic, json.dumps(message, ensure_ascii=False), qos=1)
        self.sent += 1

    def close(self) -> None:
        for _ in range(WINDOW):  # every message acknowledged
            self._window.acquire(timeout=30)
        self.client.loop_stop()
        self.client.disconnect()


def topic_of(message: dict[str, Any]) -> str:
    """``twin/<kind>/<device or id>``."""
    who = message.get("refDevice") or message.get("refDeviceFrom") or message.get("id", "x")
    return f"twin/{message.get('type', 'unknown')}/{who}"
