"""A local MQTT broker (Debian's mosquitto) for exercises, demos, tests and benchmarks.

:class:`LocalBroker` starts ``mosquitto`` on 127.0.0.1 in a folder of its own, with a
password file and persistence (a persistent session's QoS 1 messages survive a restart),
and stops it again::

    with LocalBroker(Path("/tmp/broker")) as broker:
        print(broker.port)   # twin live --mqtt 127.0.0.1:<port> --username twin ...

A city's own broker is used the same way through ``--mqtt HOST:PORT``; this one is for a
machine without one. ``make test`` installs mosquitto (apt-get) when it is missing.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from twin._errors import InputError

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificates(folder: Path) -> Path:
    """A CA of the broker's own, and a certificate for 127.0.0.1 signed by it (openssl):
    the CA certificate's path."""
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    ca, key = folder / "ca.crt", folder / "ca.key"
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=smart-policing-twin local CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(folder / "server.key"),
        "-out",
        str(folder / "server.csr"),
        "-subj",
        "/CN=127.0.0.1",
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        str(folder / "server.csr"),
        "-CA",
        str(ca),
        "-CAkey",
        str(key),
        "-CAcreateserial",
        "-out",
        str(folder / "server.crt"),
        "-days",
        "2",
        "-extfile",
        str(folder / "san.ext"),
    )
    return ca


class LocalBroker:
    """mosquitto on 127.0.0.1 with one user (``username``/``password``) and persistence;
    with ``tls``, TLS only, under a CA of its own (``ca``). With ``users``, the password
    and ACL files of :func:`broker_config` instead (``username``/``password`` then name
    the twin's own account in them)."""

    def __init__(
        self,
        folder: Path,
        *,
        username: str = "twin",
        password: str = "s3cret",
        port: int | None = None,
        tls: bool = False,
        users: Path | None = None,
    ) -> None:
        if not Path(MOSQUITTO).exists():
            raise InputError(
                "mosquitto (the MQTT broker) is not installed: `make test` installs it, "
                "or run `apt-get install mosquitto`"
            )
        self.folder, self.port = Path(folder), port or free_port()
        self.username, self.password = username, password
        self.folder.mkdir(parents=True, exist_ok=True)
        passwd, acl = self.folder / "passwd", None
        if users is None:
            subprocess.run(
                ["mosquitto_passwd", "-c", "-b", str(passwd), username, password], check=True
            )
        else:
            passwd, acl = Path(users) / "passwd", Path(users) / "acl"
        #: With ``tls``: the CA certificate that signed the broker's (clients pass it as
        #: ``tls=broker.ca``, ``--tls-ca``); the broker speaks only TLS then.
        self.ca: Path | None = _certificates(self.folder) if tls else None
        listener = f"listener {self.port} 127.0.0.1\n"
        if self.ca is not None:
            listener += (
                f"cafile {self.ca}\ncertfile {self.folder / 'server.crt'}\n"
                f"keyfile {self.folder / 'server.key'}\n"
            )
        # mosquitto drops to this user: its persistence folder must be the user's own
        (self.folder / "mosquitto.conf").write_text(
            "max_queued_messages 0\n"  # a persistent session keeps everything while away
            "max_inflight_messages 1000\n"  # QoS 1 to a fast subscriber: 20 by default
            # no Nagle: a subscriber that acknowledges after its commit (twin ingest) sends
            # nothing back for a while, and each small message would wait for a TCP ack
            "set_tcp_nodelay true\n"
            f"persistence true\npersistence_location {self.folder}/\nuser {getpass.getuser()}\n"
            f"{listener}allow_anonymous false\n"
            f"password_file {passwd}\n" + (f"acl_file {acl}\n" if acl else "")
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        raise RuntimeError(f"mosquitto did not start on port {self.port}: {err}")

    def stop(self) -> None:
        """Stop it as a restart would (SIGTERM: it saves its sessions first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


#: The account the twin itself signs in with to read every sensor's messages.
TWIN_USER = "twin"


def broker_config(sensors_file: Path, out: Path, *, twin_user: str = TWIN_USER) -> dict[str, str]:
    """Per-sensor credentials and topic rights for mosquitto, from a sensors file.

    Writes into ``out``:

    - ``passwd``: mosquitto's password file (``mosquitto_passwd``: salted PBKDF2-SHA512),
      one user per sensor, named by its id, and the twin's own user;
    - ``acl``: mosquitto's ACL file: the twin reads ``twin/#``; each sensor writes only
      ``twin/<type>/<its id>`` (the topic a feed publishes on) and reads nothing;
    - ``credentials.yaml``: each account's password (random, 144 bits), readable by its
      owner only, to hand each device its own and the twin its own;
    - ``sensor-keys.yaml``: each sensor's HMAC key (256 bits), readable by its owner only:
      a device signs each message with its own (:func:`twin.sensors.ingest.sign`), and
      ``twin live --sensor-keys`` quarantines what does not match (``bad_signature``).
      Run again to rotate every password and key.

    Point mosquitto at them with ``password_file`` and ``acl_file``, and
    ``allow_anonymous false``. Returns the passwords by account. Every file is written
    beside its place and renamed into it: an interrupted run leaves the old set whole."""
    import secrets

    import yaml

    from twin.sensors.registry import read_sensors_file

    spec = read_sensors_file(sensors_file)
    ids = [s.id for s in spec.sensors]
    if twin_user in ids:
        raise InputError(f"{sensors_file}: a sensor is called {twin_user!r}, the twin's own user")
    passwords = {
        twin_user: secrets.token_urlsafe(18),
        **{i: secrets.token_urlsafe(18) for i in ids},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = ("passwd", "acl", "credentials.yaml", "sensor-keys.yaml")
    staged = {name: out / f".{name}.partial" for name in names}
    try:
        staged["passwd"].unlink(missing_ok=True)
        for n, (user, password) in enumerate(passwords.items()):
            subprocess.run(
                [
                    "mosquitto_passwd",
                    *(["-c"] if n == 0 else []),
                    "-b",
                    str(staged["passwd"]),
                    user,
                    password,
                ],
                check=True,
                capture_output=True,
            )
        lines = [
            "# Made by `twin sensors broker-config` from " + str(sensors_file),
            f"# the twin reads every sensor's messages\nuser {twin_user}\ntopic read twin/#",
            "# each sensor publishes on its own topics only: twin/<type>/<its id>",
            *(f"user {i}\ntopic write twin/+/{i}" for i in ids),
        ]
        staged["acl"].write_text("\n\n".join(lines) + "\n", encoding="utf-8")
        fd = os.open(staged["credentials.yaml"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(
                "# Each account's MQTT password: hand each device its own. Keep this file secret.\n"
            )
            yaml.safe_dump(passwords, fh, sort_keys=False)
        fd = os.open(staged["sensor-keys.yaml"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(
                "# Each sensor's message-signing key (HMAC-SHA256): give each device its own, "
                "and the twin this file (twin live --sensor-keys). Keep it secret.\n"
            )
            yaml.safe_dump({i: secrets.token_hex(32) for i in ids}, fh, sort_keys=False)
        for name, tmp in staged.items():
            os.chmod(tmp, 0o600 if name != "acl" else 0o644)
            tmp.replace(out / name)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return passwords
