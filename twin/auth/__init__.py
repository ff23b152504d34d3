"""Who may do what: users, their roles, and the table of what each role may do.

The dashboards, the command line and the order API read the same table
(:data:`PERMISSIONS`), so that a role's rights are written once. Users live in a file
beside the run folder or the live twin (:class:`~twin.auth.users.UserStore`), their
passwords hashed with argon2id.

Roles:

- ``commander``: sees everything, gives orders, acknowledges alerts;
- ``duty_officer``: the K3i back office: sees everything, acknowledges alerts, gives orders;
- ``planner``: runs and compares what-ifs, forks the live twin; no orders to the live twin;
- ``analyst``: reads runs, reports and live dashboards;
- ``trainer``: runs a command-post exercise (start, pause, injects), sees every team;
- ``trainee``: plays in an exercise as a member of one team;
- ``observer``: reads, never acts;
- ``sensor``: publishes a feed, and nothing else.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = (
    "commander",
    "duty_officer",
    "planner",
    "analyst",
    "trainer",
    "trainee",
    "observer",
    "sensor",
)

#: What each action needs: the roles that may take it. Every page, callback and order
#: endpoint names one of these actions; a test walks them all, for every role.
PERMISSIONS: dict[str, frozenset[str]] = {
    # read the dashboards, runs and reports
    "view": frozenset(
        {"commander", "duty_officer", "planner", "analyst", "trainer", "trainee", "observer"}
    ),
    # acknowledge a K3i alert
    "acknowledge": frozenset({"commander", "duty_officer"}),
    # order the live twin (close a road, dispatch a unit)
    "order": frozenset({"commander", "duty_officer"}),
    # fork a what-if from the live twin
    "fork": frozenset({"commander", "duty_officer", "planner"}),
    # run an exercise: start, pause, speed, injects
    "exercise_control": frozenset({"trainer"}),
    # give a team's orders in an exercise
    "exercise_order": frozenset({"trainee"}),
    # publish sensor messages
    "publish": frozenset({"sensor"}),
}


def may(role: str, action: str) -> bool:
    """Whether ``role`` may take ``action`` (an unknown action is refused to everyone)."""
    return role in PERMISSIONS.get(action, frozenset())


__all__ = ["PERMISSIONS", "ROLES", "may"]
