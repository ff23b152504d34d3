"""Connecting a timeline to DuckDB: the one way every KPI query reads a timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def connect(timeline: Any, *, load: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the timeline as the view ``timeline``; or, with ``load``, as
    a table in DuckDB's own storage (in memory), sorted by kind and time, so that a query
    skips the row groups of other kinds: for the many queries of a dashboard over one
    timeline (measured: half the time of each K3i query)."""
    from twin import events as ev

    if isinstance(timeline, duckdb.DuckDBPyConnection):  # a timeline connected already
        return timeline
    con = duckdb.connect()
    if isinstance(timeline, pa.Table):
        con.register("timeline_given", timeline)
        source, names = "timeline_given", set(timeline.schema.names)
    else:
        source = f"read_parquet('{Path(timeline).as_posix()}')"
        names = set(pq.read_schema(Path(timeline)).names)
    # a timeline written by an older twin lacks the fields of newer events: NULL columns
    missing = [f for f in ev.schema() if f.name not in names]
    extra = "".join(
        f", NULL::{_SQL_TYPES.get(str(f.type), 'VARCHAR')} AS {f.name}" for f in missing
    )
    if load:
        con.execute(f"CREATE TABLE timeline AS SELECT *{extra} FROM {source} ORDER BY kind, t, seq")
        if source == "timeline_given":
            con.unregister(source)
    else:
        con.execute(f"CREATE VIEW timeline AS SELECT *{extra} FROM {source}")
    return con


_SQL_TYPES = {"double": "DOUBLE", "int64": "BIGINT", "bool": "BOOLEAN", "string": "VARCHAR"}


def _con(timeline: Any) -> duckdb.DuckDBPyConnection:
    return timeline if isinstance(timeline, duckdb.DuckDBPyConnection) else connect(timeline)


def _has(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    row = con.execute(f"SELECT count(*) FROM timeline WHERE kind = '{kind}'").fetchone()
    return bool(row and row[0])


def _r(x: Any, digits: int) -> Any:
    return None if x is None or pd.isna(x) else round(float(x), digits)
