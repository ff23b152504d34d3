"""Users and roles (twin.auth): the users file, its passwords, its refusals, the table of
what each role may do, and ``twin users``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin import InputError
from twin.auth import PERMISSIONS, ROLES, may
from twin.auth.users import NAME, UserStore

PASSWORD = "a long pass phrase"


def test_a_user_signs_in_with_their_password_only_while_enabled(tmp_path):
    store = UserStore(tmp_path)  # a folder: its users.json
    assert store.path == tmp_path / "users.json" and store.users() == []
    sari = store.add("sari", "duty_officer", PASSWORD)
    assert sari.password_hash.startswith("$argon2id$") and PASSWORD not in store.path.read_text()
    assert store.verify("sari", PASSWORD).role == "duty_officer"
    assert store.verify("sari", PASSWORD + "!") is None
    assert store.verify("nobody", PASSWORD) is None
    store.disable("sari")
    assert store.verify("sari", PASSWORD) is None  # the right password, but disabled
    assert store.get("sari").disabled  # still there, for the audit record's names
    store.enable("sari")
    store.passwd("sari", "a new pass phrase")
    assert store.verify("sari", PASSWORD) is None
    assert store.verify("sari", "a new pass phrase").name == "sari"
    # only its owner may read the file; nothing half-written is left beside it
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["users.json"]


@pytest.mark.parametrize(
    "name, role, password, team, words",
    [
        ("sari", "boss", PASSWORD, None, "not a role"),
        ("Sari", "planner", PASSWORD, None, "lower-case"),
        ("s", "planner", PASSWORD, None, "2 to 64 characters"),
        ("budi", "trainee", PASSWORD, None, "give --team"),
        ("andi", "planner", PASSWORD, "merah", "only a trainee has a team"),
        ("andi", "planner", "short", None, "10 to 256 characters"),
        ("sari", "planner", PASSWORD, None, "exists already"),
    ],
)
def test_a_bad_user_is_refused_with_what_is_wrong(tmp_path, name, role, password, team, words):
    store = UserStore(tmp_path / "users.json")
    store.add("sari", "commander", PASSWORD)
    with pytest.raises(InputError, match=words):
        store.add(name, role, password, team=team)
    assert [u.name for u in store.users()] == ["sari"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
        ),
        max_leaves=20,
    )
    | st.fixed_dictionaries(
        {
            "format": st.just(1),
            "users": st.lists(
                st.dictionaries(
                    st.sampled_from(
                        ["name", "role", "team", "password_hash", "disabled", "created", "changed"]
                    ),
                    st.text(max_size=12) | st.booleans(),
                    max_size=7,
                ),
                max_size=3,
            ),
        }
    )
)
def test_any_users_file_is_read_or_refused_with_its_path(tmp_path, doc):
    """Whatever is in the file, reading it gives users or an error naming the file (and
    the field at fault), never a traceback."""
    path = tmp_path / "users.json"
    path.write_text(json.dumps(doc))
    try:
        users = UserStore(path).users()
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ")
    else:
        assert all(NAME.match(u.name) for u in users)


def test_a_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "users.json"
    path.write_text("[" * 5000)  # deep enough to break json's recursion
    with pytest.raises(InputError, match=r"users\.json: not a users file"):
        UserStore(path).users()
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match=r"users\.json: cannot be read"):
        UserStore(path).users()


def test_the_permission_table_speaks_of_roles_only():
    assert all(roles <= set(ROLES) for roles in PERMISSIONS.values())
    assert [a for a in PERMISSIONS if may("observer", a)] == ["view"]
    assert [a for a in PERMISSIONS if may("sensor", a)] == ["publish"]
    assert not may("commander", "no such action")
    # every role may do something, and no one but a sensor publishes
    assert all(any(may(r, a) for a in PERMISSIONS) for r in ROLES)


def _twin(args, tmp_path, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "twin.cli", "users", *args, "--at", str(tmp_path)],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )


def test_twin_users_adds_lists_and_disables(tmp_path):
    done = _twin(
        ["add", "sari", "--role", "duty_officer", "--password-stdin"], tmp_path, PASSWORD + "\n"
    )
    assert done.returncode == 0 and "Added sari (duty_officer)" in done.stdout
    done = _twin(
        ["add", "budi", "--role", "trainee", "--team", "merah", "--password-stdin"],
        tmp_path,
        PASSWORD + "\n",
    )
    assert "Added budi (trainee, team merah)" in done.stdout
    assert _twin(["disable", "budi"], tmp_path).returncode == 0
    listed = _twin(["list"], tmp_path).stdout
    rows = [line for line in listed.splitlines() if "sari" in line or "budi" in line]
    assert "duty_officer" in rows[0] and "active" in rows[0]
    assert "merah" in rows[1] and "disabled" in rows[1]
    refused = _twin(["add", "x1", "--role", "boss", "--password-stdin"], tmp_path, PASSWORD + "\n")
    assert refused.returncode == 2 and "--role boss: not a role" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert UserStore(tmp_path).verify("sari", PASSWORD).name == "sari"
