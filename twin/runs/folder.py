"""A run folder, read back: ``Run.load(path)`` does for a run what ``City.load`` does for
a city bundle, and is the one reader of ``run.json`` and its neighbours.

A run folder (``runs/<name>/``) holds:

=====================  ============================================================
``scenario.yaml``      the scenario as run (seed included; versions in its header)
``run.json``           status, the simulated time reached, wall time, real-time factor,
                       timeline hash, versions, city
``timeline.parquet``   every event (query it with DuckDB; see ``twin.kpi``)
``kpis.json``          the KPI summary (and the difference to the baseline)
``network.parquet``,   KPI tables over time
``sectors.parquet``
``report.html``        the report, self-contained and offline
``acknowledgements``   the officers' acknowledgements of alerts on the dashboards
``.jsonl``             (one per line, on the run's audit chain)
``sumo/``              routes, SUMO's log, console and trip records
``baseline/``          with ``--baseline``: the same run without the road events
=====================  ============================================================
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from twin._errors import InputError
from twin._inputs import load_yaml
from twin.sim.timeline import format_problem

#: The officers' acknowledgements of a run's alerts, beside its timeline.
ACKS = "acknowledgements.jsonl"
_ACKING = threading.Lock()


@dataclass(frozen=True)
class Run:
    """A run folder written by ``twin run``; make one with :meth:`load`."""

    path: Path
    info: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """Read a run folder's ``run.json`` and check its timeline.

        Raises
        ------
        InputError
            If the folder is missing, is not a run folder, or its timeline is unreadable;
            the message names the folder and says how to make one.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise InputError(f"{folder}: no run folder here")
        info_file = folder / "run.json"
        if not info_file.exists() or not (folder / "timeline.parquet").exists():
            raise InputError(
                f"{folder}: not a run folder (no run.json and timeline.parquet); make one with 'twin run'"
            )
        problem = format_problem(folder / "timeline.parquet")
        if problem:
            raise InputError(f"{folder}: {problem}")
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{info_file}: unreadable ({exc})") from exc
        if not isinstance(info, dict):
            raise InputError(f"{info_file}: not a run's record")
        return cls(folder, info)

    @property
    def name(self) -> str:
        """The scenario's name."""
        return str(self.info.get("scenario", self.path.name))

    @property
    def timeline(self) -> Path:
        return self.path / "timeline.parquet"

    @property
    def complete(self) -> bool:
        return self.info.get("status") == "complete"

    @cached_property
    def scenario(self) -> dict[str, Any]:
        """The scenario as run, as plain data (``{}`` if the folder has none)."""
        if not (self.path / "scenario.yaml").exists():
            return {}
        return load_yaml(self.path / "scenario.yaml", what="run's scenario") or {}

    @cached_property
    def kpis(self) -> dict[str, Any]:
        """The KPI summary written with the run."""
        return json.loads((self.path / "kpis.json").read_text(encoding="utf-8"))["kpis"]


def acknowledge(folder: Path, record: dict[str, Any]) -> str:
    """Add an acknowledgement to a run folder, on the run's audit chain: the line carries
    the hash of the record before it (the timeline's last, or the acknowledgement before),
    and ``run.json``'s head moves on to it. Returns the line written.

    The line is written whole and synced before the head moves; ``run.json`` is replaced
    whole (written beside, then renamed).
    """
    from twin.audit import Chain

    folder = Path(folder)
    with _ACKING:  # two officers at once: one after the other on the chain
        info_file = folder / "run.json"
        info = json.loads(info_file.read_text(encoding="utf-8"))
        state = info.get("audit")
        chain = Chain(bytes.fromhex(state["head"]), int(state["records"])) if state else None
        line = json.dumps(chain.add(record) if chain else record, ensure_ascii=False)
        with (folder / ACKS).open("a", encoding="utf-8") as fh:  # one whole line per write
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if chain is not None:
            info["audit"] = chain.state
            tmp = info_file.with_name(".run.json.partial")
            tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
            tmp.replace(info_file)
        return line
