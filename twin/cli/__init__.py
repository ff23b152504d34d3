"""The ``twin`` command line.

Every command speaks the planner's language. A problem with the user's input or files is
printed as one line, ``error: <file or option>: <problem>``, with exit status 2 and no
traceback unless ``--debug`` is given. The commands, one module per family:

- :mod:`~twin.cli.city`: ``build``, ``info``, ``coverage``, ``place-posts``;
- :mod:`~twin.cli.runs`: ``run``, ``compare``, ``predict``, ``schema``;
- :mod:`~twin.cli.live`: ``feed``, ``live``, ``fork``, ``ingest``, ``calibrate``, ``sensors broker-config``;
- :mod:`~twin.cli.plans`: ``evaluate``;
- :mod:`~twin.cli.dash`: ``dash``;
- :mod:`~twin.cli.users`: ``users add|list|disable|enable|passwd``;
- :mod:`~twin.cli.audit`: ``audit verify``;
- :mod:`~twin.cli.exercise`: ``exercise check|run|aar|whatif``;
- :mod:`~twin.cli.service`: ``service`` (the one-gate service hall).
"""

from __future__ import annotations

from twin.cli import (  # noqa: F401  (each registers its commands)
    audit,
    city,
    dash,
    exercise,
    live,
    plans,
    runs,
    service,
    users,
)
from twin.cli._app import app, main

__all__ = ["app", "main"]
