"""The timeline: every event of a run, in order, as one typed table.

Events are appended with their simulated time ``t`` (seconds since the scenario start) and
a sequence number; ``(t, seq)`` orders them, and ``seq`` alone breaks ties, as SimPy's
event id does, so the order never depends on comparing events.

The table has one column per event field (see :mod:`twin.events`); a row fills the columns
of its kind and leaves the rest null, which Parquet stores almost for free. Saved as
Parquet, it is queried with DuckDB (``twin.kpi``).

While a run goes on, the timeline streams its batches to an Arrow IPC file, and a run's
worker keeps none of them in memory (``keep=False``). If the process dies (SUMO can
segfault inside libsumo), every batch written so far can be read back
(:func:`iter_stream`), and the run keeps its partial timeline. :func:`stream_to_parquet`
then writes the run's Parquet file in row groups of :data:`CHUNK_ROWS` rows and hashes it
on the way, so a whole day of a whole city is never held in memory at once; the KPIs read
the file with DuckDB.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from twin import audit
from twin import events as ev

Subscriber = Callable[[float, ev.Event], None]
#: Told of a whole snapshot at once: ``(t, columns)``, each column a list or numpy array.
ColumnSubscriber = Callable[[float | Sequence[float], dict[str, Sequence[Any]]], None]


class Timeline:
    """An append-only, typed event log.

    Parameters
    ----------
    stream_to
        An Arrow IPC stream file that receives each batch as it is flushed.
    keep
        Keep the batches in memory too (the default), for :meth:`table`. A run's worker
        streams without keeping: a 24-hour run of a whole city writes more rows than memory
        holds, and :func:`stream_to_parquet` turns the stream into the run's Parquet file.
    """

    def __init__(
        self,
        *,
        stream_to: Path | None = None,
        on_batch: Callable[[pa.RecordBatch], None] | None = None,
        keep: bool = True,
    ) -> None:
        if not keep and stream_to is None:
            raise ValueError("a timeline that keeps nothing must stream to a file")
        self._keep = keep
        self.schema = ev.schema()
        self._names = self.schema.names
        self._rows: dict[str, list[Any]] = ev.empty_columns()
        self._batches: list[pa.RecordBatch] = []
        self._seq = itertools.count()
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)
        self._column_subscribers: dict[str, list[ColumnSubscriber]] = defaultdict(list)
        self._count = 0
        self._cache: dict[tuple[str, int], pa.Array] = {}  # constant and all-null columns
        # An unbuffered OS file: each batch is in the kernel's hands once written, so it
        # survives the process dying right after.
        self._sink = pa.OSFile(str(stream_to), "wb") if stream_to else None
        # lz4: a snapshot row fills a few of the ~100 columns, and the rest (nulls) would
        # cost about 0.5 kB a row on disk uncompressed (1 GB per simulated hour of a
        # 40,000-road city); lz4 costs little time and Arrow reads it back transparently
        options = ipc.IpcWriteOptions(compression="lz4")
        self._writer = (
            ipc.new_stream(self._sink, self.schema, options=options) if self._sink else None
        )
        self._on_batch = on_batch  # a live twin writes each batch into its DuckDB file

    # -- writing ----------------------------------------------------------------------------

    def append(self, t: float, event: ev.Event, *, source: str) -> None:
        """Append one event at simulated time ``t``, then tell the kind's subscribers."""
        row = self._rows
        row["t"].append(float(t))
        row["seq"].append(next(self._seq))
        row["kind"].append(event.kind)
        row["source"].append(source)
        values = event.fields()
        for name in self._names[4:]:
            row[name].append(values.get(name))
        self._count += 1
        for callback in self._subscribers.get(event.kind, ()):
            callback(t, event)
        for column_callback in self._column_subscribers.get(event.kind, ()):
            column_callback(t, {name: [value] for name, value in event.fields().items()})

    def extend(
        self, t: float | Sequence[float], kind: str, *, source: str, **columns: Sequence[Any]
    ) -> None:
        """Append many events of one kind, given column-wise, at time ``t`` (one time for
        all, or one per event).

        The fast path for snapshots (one ``edge_state`` per edge): no event objects are
        made unless the kind has subscribers, who are then told of each event in order;
        column subscribers (:meth:`subscribe_columns`) are told of the whole batch first.
        """
        cls = ev.REGISTRY[kind]
        wanted = {f for f in cls.__dataclass_fields__}  # type: ignore[attr-defined]
        if set(columns) != wanted:
            raise ValueError(
                f"{kind}: columns {sorted(columns)} differ from fields {sorted(wanted)}"
            )
        n = len(next(iter(columns.values())))
        if n == 0:
            return
        self._flush_rows()
        if isinstance(t, int | float):
            times = pa.array(np.full(n, float(t)))
        else:
            times = pa.array(np.asarray(t, dtype=float))
            if len(times) != n:
                raise ValueError(f"{kind}: {len(times)} times for {n} events")
        first = next(self._seq)
        self._seq = itertools.count(first + n)
        arrays = [
            times,
            pa.array(np.arange(first, first + n, dtype=np.int64)),
            self._constant(kind, n),
            self._constant(source, n),
        ]
        for field in list(self.schema)[4:]:
            if field.name in columns:
                values = columns[field.name]
                arrays.append(
                    values if isinstance(values, pa.Array) else pa.array(values, field.type)
                )
            else:
                arrays.append(self._nulls(n, field.type))
        self._add_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self._count += n
        column_subscribers = self._column_subscribers.get(kind, ())
        if column_subscribers:
            given = {
                name: c.to_pylist() if isinstance(c, pa.Array) else c for name, c in columns.items()
            }
            for column_callback in column_subscribers:
                column_callback(t, given)
        subscribers = self._subscribers.get(kind, ())
        if subscribers:
            names = list(columns)
            cols = [c.to_pylist() if isinstance(c, pa.Array) else list(c) for c in columns.values()]
            ts = times.to_pylist()
            for i in range(n):
                event = cls(**{name: col[i] for name, col in zip(names, cols, strict=True)})
                for callback in subscribers:
                    callback(ts[i], event)

    def _constant(self, value: str, n: int) -> pa.Array:
        key = (value, n)
        if key not in self._cache:
            self._cache[key] = pa.array([value] * n, pa.string())
        return self._cache[key]

    def _nulls(self, n: int, type_: pa.DataType) -> pa.Array:
        key = (str(type_), n)
        if key not in self._cache:
            self._cache[key] = pa.nulls(n, type_)
        return self._cache[key]

    def subscribe(self, kind: str, callback: Subscriber) -> None:
        """Call ``callback(t, event)`` whenever an event of ``kind`` is appended."""
        if kind not in ev.REGISTRY:
            raise ValueError(f"unknown event kind {kind!r}")
        self._subscribers[kind].append(callback)

    def subscribe_columns(self, kind: str, callback: ColumnSubscriber) -> None:
        """Call ``callback(t, columns)`` once for each batch of ``kind`` appended: a whole
        snapshot (``extend``) at once, or one event as columns of length one.

        For consumers of snapshots (the speed of every road at each sample): no event
        object is made per row. ``t`` is one time for all rows, or one per row.
        """
        if kind not in ev.REGISTRY:
            raise ValueError(f"unknown event kind {kind!r}")
        self._column_subscribers[kind].append(callback)

    def flush(self) -> None:
        """Move buffered rows into a batch and write it to the stream, if any."""
        self._flush_rows()

    def close(self) -> None:
        """Flush and close the stream."""
        self._flush_rows()
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None

    # -- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def table(self) -> pa.Table:
        """Every event so far, in append order."""
        if not self._keep:
            raise RuntimeError(
                "this timeline streams to its file and keeps no events in memory: read the file"
            )
        self._flush_rows()
        return pa.Table.from_batches(self._batches, schema=self.schema)

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind as dicts with ``t`` and their fields (for tests and tools)."""
        return events_of(self.table(), kind)

    def content_hash(self) -> str:
        """SHA-256 of the timeline's content; equal timelines give equal hashes."""
        return content_hash(self.table())

    # -- internals --------------------------------------------------------------------------

    def _flush_rows(self) -> None:
        if not self._rows["t"]:
            return
        batch = pa.RecordBatch.from_pydict(self._rows, schema=self.schema)
        self._rows = ev.empty_columns()
        self._add_batch(batch)

    def _add_batch(self, batch: pa.RecordBatch) -> None:
        if self._keep:
            self._batches.append(batch)
        if self._writer is not None:
            self._writer.write_batch(batch)
        if self._on_batch is not None:
            self._on_batch(batch)


#: Rows per chunk when a timeline is hashed or written to Parquet (a Parquet row group).
CHUNK_ROWS = 65_536


def rechunk(batches: Iterable[pa.RecordBatch], rows: int | None = None) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of exactly ``rows`` (:data:`CHUNK_ROWS` unless given; the
    last one shorter), however they were batched: what the content hash and the Parquet
    row groups are made of."""
    rows = rows or CHUNK_ROWS
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            pending = table.slice(rows).to_batches()
            held -= rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _hash_chunk(sha: Any, chunk: pa.RecordBatch) -> None:
    """Feed one chunk of :func:`rechunk` to a SHA-256, copied fresh first: a sliced batch's
    buffers serialise differently from the same values in a batch of their own."""
    fresh = chunk.take(pa.array(np.arange(chunk.num_rows)))
    sha.update(fresh.replace_schema_metadata(None).serialize())


def content_hash(table: pa.Table) -> str:
    """SHA-256 of a timeline table's values (independent of how it was batched: the rows
    are re-chunked before hashing), without the audit chain's links (derived from them)."""
    if audit.COLUMN in table.schema.names:
        table = table.drop_columns([audit.COLUMN])
    sha = hashlib.sha256()
    for chunk in rechunk(table.to_batches()):
        _hash_chunk(sha, chunk)
    return sha.hexdigest()


def iter_stream(path: Path) -> Iterator[pa.RecordBatch]:
    """Each complete batch of an Arrow IPC stream, even one whose writer died mid-way."""
    try:
        with pa.OSFile(str(path), "rb") as source:
            reader = ipc.open_stream(source)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch
    except (pa.ArrowInvalid, OSError, EOFError):
        return  # a torn last batch: keep what came before it


def read_stream(path: Path) -> pa.Table:
    """Every complete batch of an Arrow IPC stream, as one table (see :func:`iter_stream`)."""
    return pa.Table.from_batches(list(iter_stream(path)), schema=ev.schema())


@dataclass
class StreamSummary:
    """What :func:`stream_to_parquet` wrote: its rows, their content hash, and the audit
    chain's head (:mod:`twin.audit`)."""

    rows: int
    sha256: str
    audit: dict[str, Any]


def stream_to_parquet(
    stream: Path,
    path: Path,
    metadata: dict[str, str],
    *,
    tail: Callable[[set[str], int], pa.Table | None] | None = None,
    chain: bool = True,
) -> StreamSummary:
    """Turn a run's Arrow stream into its Parquet timeline, row group by row group, without
    holding the timeline in memory; hash it on the way, and chain its records (each
    carries the hash of the one before it: :mod:`twin.audit`).

    ``tail(kinds, next_seq)`` may return rows to add at the end (a crashed run's trips and
    its end), given the kinds seen and the next sequence number. ``chain=False`` writes
    the events without their links, as the twin did before the audit chain: the
    benchmark's baseline (``make bench audit``), never a run's.
    """
    schema = ev.schema()
    sha = hashlib.sha256()
    kinds: set[str] = set()
    rows, next_seq = 0, 0

    def chunks() -> Iterator[pa.RecordBatch]:
        nonlocal rows, next_seq
        for batch in iter_stream(stream):
            batch = batch.cast(schema) if batch.schema != schema else batch
            if batch.num_rows:
                kinds.update(pc.unique(batch["kind"]).to_pylist())
                next_seq = max(next_seq, int(pc.max(batch["seq"]).as_py()) + 1)
            yield batch
        extra = tail(set(kinds), next_seq) if tail is not None else None
        if extra is not None and extra.num_rows:
            yield from extra.cast(schema).to_batches()

    meta = _file_metadata(metadata)
    links = audit.Chain() if chain else None
    written = (schema.append(audit.FIELD) if links else schema).with_metadata(meta)
    with pq.ParquetWriter(path, written, compression="zstd") as writer:
        for chunk in rechunk(chunks()):
            _hash_chunk(sha, chunk)  # the events' content: the chain's links are derived
            if links is not None:
                chunk = links.add_to(chunk)
            writer.write_batch(chunk)
            rows += chunk.num_rows
    return StreamSummary(rows=rows, sha256=sha.hexdigest(), audit=links.state if links else {})


#: The timeline table's format, written into every timeline file. Bump it when a column
#: changes meaning or type, so that old runs are recognised instead of misread.
FORMAT = "1"


def write_parquet(table: pa.Table, path: Path, metadata: dict[str, str]) -> None:
    """Write a timeline as Parquet, with run metadata (scenario, seed, status) in its schema."""
    meta = {**(table.schema.metadata or {}), **_file_metadata(metadata)}
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd")


def _file_metadata(metadata: dict[str, str]) -> dict[bytes, bytes]:
    """A timeline file's schema metadata: the run's, and the format it is written in."""
    return {
        **{k.encode(): v.encode() for k, v in metadata.items()},
        b"timeline_format": FORMAT.encode(),
    }


def format_problem(path: Path) -> str | None:
    """Why this twin cannot read a timeline file, or ``None`` if it can."""
    schema = pq.read_schema(path)
    written = (schema.metadata or {}).get(b"timeline_format", b"none").decode()
    missing = [
        f.name
        for f in ev.schema()
        if f.name not in schema.names or schema.field(f.name).type != f.type
    ]
    if written != FORMAT or missing:
        detail = f"; it lacks {', '.join(missing[:4])}" if missing else ""
        return (
            f"the timeline was written by another version of the twin (format {written}, this twin "
            f"reads {FORMAT}{detail}); run the scenario again"
        )
    return None


def events_of(table: pa.Table, kind: str) -> list[dict[str, Any]]:
    """The rows of one kind, with ``t`` and that kind's fields only."""
    fields = ["t", *ev.REGISTRY[kind].__dataclass_fields__]  # type: ignore[attr-defined]
    rows = table.filter(pc.equal(table["kind"], kind)).select(fields)
    return rows.to_pylist()
