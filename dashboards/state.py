"""The runs the running app shows (set by ``create_app``)."""

from __future__ import annotations

from typing import Any

RUNS: Any = None
