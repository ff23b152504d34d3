"""``twin users add|list|disable|enable|passwd``: who may sign in to a run's or a live
twin's dashboards and orders, with which role (:mod:`twin.auth`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from twin._errors import InputError
from twin.auth import ROLES
from twin.cli._app import app, out

if TYPE_CHECKING:
    from twin.auth.users import UserStore

users_app = typer.Typer(
    help="Users and roles of a run folder or a live twin (kept in users.json beside it).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

Where = Annotated[
    Path,
    typer.Option(
        "--at",
        help="The run folder, or the live twin's folder, whose users.json to use (or the file).",
    ),
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


def _store(at: Path) -> UserStore:
    from twin.auth.users import UserStore

    return UserStore(at)


def _password(from_stdin: bool) -> str:
    """The new password: typed twice, unseen, or the first line of standard input."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Password again", hide_input=True) != first:
        raise InputError("password: the two passwords typed differ")
    return first


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The user's name (lower case, e.g. sari.dewi).")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    team: Annotated[
        str | None, typer.Option("--team", help="The trainee's team in an exercise.")
    ] = None,
    at: Where = Path("."),
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user with a role; asks for their password (only its argon2id hash is kept)."""
    store = _store(at)
    if role not in ROLES:  # before asking for a password
        raise InputError(f"--role {role}: not a role (the roles: {', '.join(ROLES)})")
    user = store.add(name, role, _password(password_stdin), team=team)
    team_words = f", team {user.team}" if user.team else ""
    out.print(f"Added {user.name} ({user.role}{team_words}) to {store.path}")


@users_app.command("list")
def list_users(at: Where = Path(".")) -> None:
    """List the users: name, role, team, whether they may sign in, last change."""
    store = _store(at)
    users = store.users()
    if not users:
        out.print(f"No users in {store.path}")
        return
    table = Table(title=f"Users ({store.path})", title_justify="left")
    for column in ("user", "role", "team", "state", "changed"):
        table.add_column(column)
    for u in users:
        state = "disabled" if u.disabled else "active"
        table.add_row(u.name, u.role, u.team or "–", state, u.changed)
    out.print(table)


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="The user.")], at: Where = Path(".")) -> None:
    """Stop a user from signing in (they stay in the file and in the audit record)."""
    store = _store(at)
    store.disable(name)
    out.print(f"Disabled {name} in {store.path}: they can no longer sign in")


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="The user.")], at: Where = Path(".")) -> None:
    """Let a disabled user sign in again."""
    store = _store(at)
    store.enable(name)
    out.print(f"Enabled {name} in {store.path}")


@users_app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="The user.")],
    at: Where = Path("."),
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password."""
    store = _store(at)
    if store.get(name) is None:
        raise InputError(f"user {name}: no such user in {store.path}")
    store.passwd(name, _password(password_stdin))
    out.print(f"Password of {name} changed in {store.path}")
