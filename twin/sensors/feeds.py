"""Where messages come from and go to: MQTT, and files replayed at a speed.

- :class:`MqttSource` subscribes with paho-mqtt at QoS 1 in a persistent session (the
  broker keeps what arrives while the twin is away), reconnects by itself, and takes a
  username and password and TLS.
- :func:`replay` reads JSON lines or CSV and yields each message when its time comes, at a
  speed factor (60: an hour in a minute; ``inf``: as fast as possible), with the replay's
  clock, so that ingestion judges timestamps against the history's own time.
- :class:`MqttSink` and :class:`FileSink` publish a stream (``twin feed``); MQTT at QoS 1
  with a window of unacknowledged messages (paho fails past 65,535).
"""

from __future__ import annotations

import csv
import json
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin._errors import InputError

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


class MqttSource:
    """Messages from an MQTT broker, as ``(payload, received_at)`` pairs."""

    def __init__(
        self, host: str, port: int, *, topics: tuple[str, ...] = ("twin/#",), client_id: str = "twin-live",
        username: str | None = None, password: str | None = None, tls: bool = False, qos: int = 1,
    ) -> None:  # fmt: skip
        import paho.mqtt.client as mqtt

        self.queue: queue.Queue[tuple[bytes, datetime]] = queue.Queue()
        self.connected = threading.Event()
        self.failure: str | None = None
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        if username is not None:
            client.username_pw_set(username, password)
        if tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)

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
            self.queue.put((msg.payload, datetime.now(UTC)))

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
    ) -> Iterator[tuple[bytes, datetime]]:
        """Messages as they come, until the wall-clock time ``until`` or ``idle`` seconds
        without one."""
        last = time.monotonic()
        while True:
            if until is not None and time.time() >= until:
                return
            try:
                item = self.queue.get(timeout=0.2)
            except queue.Empty:
                if idle is not None and time.monotonic() - last > idle:
                    return
                continue
            last = time.monotonic()
            yield item

    def drain(self) -> list[tuple[bytes, datetime]]:
        """Every message waiting now, without waiting for more."""
        out = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _observed(data: Any) -> datetime | None:
    if not isinstance(data, dict):
        return None
    for key in ("dateObservedTo", "dateObserved", "dateIssued", "dateReceived"):
        value = data.get(key)
        if isinstance(value, str):
            try:
                t = datetime.fromisoformat(value)
            except ValueError:
                return None
            return t if t.tzinfo else None
    return None


def _lines(path: Path) -> Iterator[str]:
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                yield json.dumps(_from_csv(row))
    else:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield line.rstrip("\n")


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


#: A replayed line whose time jumps further ahead than this does not move the replay's
#: clock: it is judged against the clock (and quarantined as from the future).
MAX_JUMP_S = 3600.0


def replay(path: Path, *, speed: float = float("inf")) -> Iterator[tuple[str, datetime]]:
    """Lines of a JSONL or CSV file, each when its time comes at ``speed``, with the
    replay's clock: the history's time, which only moves forward, and never by more than
    :data:`MAX_JUMP_S` at once (a line without a time keeps the clock where it was)."""
    if not Path(path).is_file():
        raise InputError(f"{path}: file not found")
    if not speed > 0:
        raise InputError(f"--speed must be positive, got {speed!r}")
    first_t: datetime | None = None
    started = time.monotonic()
    clock = datetime.now(UTC)
    for text in _lines(Path(path)):
        try:
            t = _observed(json.loads(text))
        except json.JSONDecodeError:
            t = None
        if t is not None and (first_t is None or 0 <= (t - clock).total_seconds() <= MAX_JUMP_S):
            if first_t is None:
                first_t = t
            clock = t
            if speed != float("inf"):
                due = started + (t - first_t).total_seconds() / speed
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        yield text, clock


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

    def __init__(self, host: str, port: int, *, client_id: str = "twin-feed", username: str | None = None,
                 password: str | None = None, tls: bool = False) -> None:  # fmt: skip
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set()
        self._window = threading.Semaphore(WINDOW)
        self.client.on_publish = lambda c, u, mid, reason, props: self._window.release()
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise InputError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from exc
        self.client.loop_start()
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
