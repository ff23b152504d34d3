"""An ensemble folder (``twin evaluate`` writes it; see :mod:`twin.plans.ensemble` for what
it holds): writing it, reading it back, and its summary table."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from twin._errors import InputError
from twin.scenario import Scenario


@dataclass
class Evaluation:
    """What :func:`evaluate` made: the folder, the summary table (:func:`twin.kpi.compare`
    of every plan against the baseline, paired), and how it went."""

    path: Path
    table: pd.DataFrame
    info: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self.info.get("interrupted", False)


#: Columns of ``replications.parquet`` that are not KPIs.
_META = (
    "plan",
    "replication",
    "seed",
    "status",
    "reason",
    "attempt",
    "first_worker",
    "worker",
    "setup_s",
    "run_s",
    "worker_s",
    "round_trip_s",
)


def load_ensemble(path: str | Path) -> Evaluation:
    """Read an ensemble folder back (``twin compare`` and ``twin dash`` do): its record,
    its replications, and the summary table made anew from them.

    Raises
    ------
    InputError
        The folder is missing or is not an ensemble folder; the message says how to make one.
    """
    folder = Path(path)
    if not (folder / "ensemble.json").is_file() or not (folder / "replications.parquet").is_file():
        raise InputError(
            f"{folder}: not an ensemble folder (no ensemble.json and replications.parquet); "
            "make one with 'twin evaluate'"
        )
    info = json.loads((folder / "ensemble.json").read_text(encoding="utf-8"))
    frame = pd.read_parquet(folder / "replications.parquet")
    rows = []
    for rec in frame.to_dict("records"):
        clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
        row = {k: clean.get(k) for k in _META}
        if row["status"] == "complete":
            row["kpis"] = {k: v for k, v in clean.items() if k not in _META}
        rows.append(row)
    return Evaluation(folder, ensemble_table(rows, info["plans"]), info, rows)


def is_ensemble(path: str | Path) -> bool:
    """Whether ``path`` is an ensemble folder (``twin evaluate`` wrote it)."""
    return (Path(path) / "ensemble.json").is_file()


def write_ensemble(
    folder: Path, rows: list[dict[str, Any]], info: dict[str, Any], scenarios: dict[str, Scenario]
) -> pd.DataFrame:
    """Write an ensemble folder's files (see the module docstring) into ``folder``, and
    return its summary table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from twin.plans.ensemble_report import ensemble_report

    flat = []
    for r in sorted(rows, key=lambda r: (r["plan"], r["replication"])):
        flat.append({**{k: r.get(k) for k in _META}, **_scalars(r.get("kpis", {}))})
    pq.write_table(pa.Table.from_pylist(flat), folder / "replications.parquet")
    sectors = [
        {"plan": r["plan"], "replication": r["replication"], "seed": r["seed"], **s}
        for r in rows
        if r.get("status") == "complete"
        for s in r.get("sectors", [])
    ]
    columns = [
        "plan",
        "replication",
        "seed",
        "sector",
        "response_p50_s",
        "tti",
        "crimes",
        "rasa_aman",
    ]
    frame = pd.DataFrame(sectors, columns=columns)
    for col in columns[4:]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame.to_parquet(folder / "sectors.parquet", index=False)
    (folder / "plans").mkdir()
    for name, scenario in scenarios.items():
        doc = json.loads(scenario.model_dump_json(exclude={"variants"}))
        (folder / "plans" / f"{name}.yaml").write_text(
            f"# {name} of the ensemble {folder.name.split('.partial')[0].lstrip('.')}\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
            encoding="utf-8",
        )
    for r in rows:
        if r.get("run_folder"):
            where = folder / "timelines" / r["plan"] / f"{r['replication']:03d}"
            where.mkdir(parents=True)
            with tarfile.open(fileobj=io.BytesIO(r["run_folder"])) as tar:
                tar.extractall(where, filter="data")
    table = ensemble_table(rows, info.get("plans", {}))
    table.to_parquet(folder / "summary.parquet", index=False)
    (folder / "ensemble.json").write_text(
        json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8"
    )
    ensemble_report(folder, table, info)
    return table


def ensemble_table(rows: list[dict[str, Any]], plans: dict[str, Any] | list[str]) -> pd.DataFrame:
    """The summary: :func:`twin.kpi.compare` of every plan's replications, the baseline
    first, differences paired by seed."""
    from twin import kpi

    names = list(plans)
    summaries = {
        n: [
            {**r["kpis"], "seed": r["seed"]}
            for r in rows
            if r["plan"] == n and r.get("status") == "complete"
        ]
        for n in names
    }
    summaries = {n: s for n, s in summaries.items() if s}
    if not summaries:
        raise InputError(
            "no replication completed: there is nothing to summarise (see the failures)"
        )
    return kpi.compare(summaries, reference=next(iter(summaries)), paired=True)


def _scalars(kpis: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
        for k, v in kpis.items()
        if not isinstance(v, dict | list)
    }
