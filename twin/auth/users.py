"""The users of a run folder or a live twin, in ``users.json`` beside it.

Each user has a name, a role (:data:`twin.auth.ROLES`), a team for a trainee, and a
password hashed with argon2id (``argon2-cffi``, its default parameters: 64 MiB, three
passes). Nothing else about the password is kept. A disabled user stays in the file, so
that the audit record's names keep meaning someone, but can no longer sign in.

The file is written whole to a temporary file readable by its owner only, then renamed
into place, so a crash never leaves half a file. A file that is not what this module
writes is refused with its path and the field at fault::

    >>> from twin.auth.users import UserStore
    >>> store = UserStore("/tmp/doc-users/users.json")  # doctest: +SKIP
    >>> store.add("sari", "duty_officer", "a long pass phrase")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twin._errors import InputError
from twin.auth import ROLES

FILE_NAME = "users.json"
#: The shortest password accepted: NIST SP 800-63B asks at least 8 characters of a
#: memorised secret, and a command centre's accounts deserve more.
MIN_PASSWORD = 10
MAX_PASSWORD = 256
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

Role = Literal[
    "commander", "duty_officer", "planner", "analyst", "trainer", "trainee", "observer", "sensor"
]
assert set(Role.__args__) == set(ROLES)  # type: ignore[attr-defined]


class User(BaseModel):
    """One user as the file keeps them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME.pattern)
    role: Role
    team: str | None = Field(None, pattern=r"^[\w-]{1,40}$")
    password_hash: str = Field(pattern=r"^\$argon2id\$")
    disabled: bool = False
    created: str
    changed: str


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal[1] = 1
    users: list[User] = Field(default_factory=list)


def _hasher() -> Any:  # imported late: argon2 is needed only where passwords are
    from argon2 import PasswordHasher

    return PasswordHasher()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class UserStore:
    """The users kept in one file (``users.json``); every change rewrites it whole.

    Parameters
    ----------
    path
        The file (a ``.json`` name), or the folder (a run folder, or the folder of a live
        twin's file, made if missing) to keep ``users.json`` in.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        # a folder, or one to be made (an exercise's, before its first run); or the file
        is_file = path.suffix == ".json" or path.is_file()
        self.path = path if is_file and not path.is_dir() else path / FILE_NAME

    # -- reading -------------------------------------------------------------------------

    def users(self) -> list[User]:
        """Every user, disabled or not, in the order they were added."""
        return list(self._read().users)

    def get(self, name: str) -> User | None:
        return next((u for u in self._read().users if u.name == name), None)

    def verify(self, name: str, password: str) -> User | None:
        """The user, if ``name`` is an enabled user whose password is ``password``; else
        None. An unknown name costs the same hashing as a known one, so the time taken
        does not tell which names exist."""
        from argon2.exceptions import InvalidHashError, VerificationError

        user = self.get(name)
        ph = _hasher()
        try:
            if user is None:
                ph.verify(_dummy_hash(), password)
                return None
            ph.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return None if user.disabled else user

    def _read(self) -> _File:
        if not self.path.exists():
            return _File()
        try:
            raw = self.path.read_text(encoding="utf-8")
            doc = json.loads(raw)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path}: cannot be read ({exc})") from exc
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"{self.path}: not a users file (not JSON: {exc})") from exc
        try:
            return _File.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(the file)"
            raise InputError(f"{self.path}: {where}: {first['msg']}") from exc

    # -- changing ------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, *, team: str | None = None) -> User:
        """Add a user. A trainee needs a team; no other role has one."""
        doc = self._read()
        _check_name(name)
        if role not in ROLES:
            raise InputError(f"role {role!r}: not a role (the roles: {', '.join(ROLES)})")
        if role == "trainee" and not team:
            raise InputError(f"user {name}: a trainee plays in a team: give --team")
        if role != "trainee" and team:
            raise InputError(f"user {name}: only a trainee has a team (the role is {role})")
        if any(u.name == name for u in doc.users):
            raise InputError(f"user {name}: exists already in {self.path}")
        now = _now()
        try:
            user = User(
                name=name,
                role=role,  # type: ignore[arg-type]
                team=team,
                password_hash=_hash(password),
                created=now,
                changed=now,
            )
        except ValidationError as exc:
            raise InputError(f"user {name}: {exc.errors()[0]['msg']}") from exc
        doc.users.append(user)
        self._write(doc)
        return user

    def passwd(self, name: str, password: str) -> User:
        """Set a user's password (a disabled user stays disabled)."""
        return self._change(name, password_hash=_hash(password))

    def disable(self, name: str) -> User:
        """Stop a user from signing in; they stay in the file, and in the audit record."""
        return self._change(name, disabled=True)

    def enable(self, name: str) -> User:
        return self._change(name, disabled=False)

    def _change(self, name: str, **fields: object) -> User:
        doc = self._read()
        for i, user in enumerate(doc.users):
            if user.name == name:
                doc.users[i] = user.model_copy(update={**fields, "changed": _now()})
                self._write(doc)
                return doc.users[i]
        raise InputError(f"user {name}: no such user in {self.path}")

    def _write(self, doc: _File) -> None:
        """The whole file, written to a temporary file only its owner may read, then
        renamed into place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(doc.model_dump_json(indent=2) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path)
        finally:
            tmp.unlink(missing_ok=True)


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise InputError(
            f"user name {name!r}: 2 to 64 characters, lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )


def _hash(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(
            f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters (this one has {len(password)})"
        )
    return _hasher().hash(password)


@cache
def _dummy_hash() -> str:
    """A hash to check unknown names against, so that they cost as much as known ones."""
    return _hasher().hash(os.urandom(16).hex())
