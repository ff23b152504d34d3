"""The audit chain: every record of a timeline, and every acknowledgement and order,
carries the hash of the record before it, so that no one can quietly change the record.

Each record is encoded canonically: the JSON object of its non-null fields, keys sorted,
no spaces, UTF-8, floats as Python writes them (the shortest text that reads back the
same number). Record *i* carries ``prev_hash`` = *h(i-1)*, and
*h(i)* = SHA-256(*h(i-1)* ‖ encoding(record *i*)); *h(-1)* is :data:`GENESIS`. The
last *h* is the chain's **head**: kept in ``run.json`` (``audit``), in a live twin's
DuckDB file (table ``audit_head``), and printed on every report made from the record.

Whoever changes one record must change every later one and the head too; with the head
copied elsewhere (a report, a printed after-action review), they cannot. :func:`verify`
walks a record and names the first record altered, inserted or deleted, or the cut tail::

    $ twin audit verify runs/jakarta-morning-rush
    Audit chain intact: 43,274 records, head 6f0c…
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

#: The hash the first record carries: the chain's start, the same for every record.
GENESIS = hashlib.sha256(b"smart-policing-twin audit chain, version 1").digest()
#: The column each record's ``prev_hash`` is kept in.
COLUMN = "prev_hash"
FIELD = pa.field(COLUMN, pa.binary(32))


def encode(record: dict[str, Any]) -> bytes:
    """A record's canonical encoding (its ``prev_hash`` left out, and nulls)."""
    doc = {k: v for k, v in record.items() if v is not None and k != COLUMN}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _encodings(batch: pa.RecordBatch | pa.Table) -> list[bytes]:
    """Each row's canonical encoding (:func:`encode`), made column by column: rows are
    grouped by which fields they fill (a timeline's rows of one kind fill the same ones),
    and each group's columns are read once, leaving out the ~90 empty ones of each row."""
    import numpy as np
    import pandas as pd

    names = sorted(n for n in batch.schema.names if n != COLUMN)
    n = batch.num_rows
    if n == 0:
        return []
    columns = [batch.column(name) for name in names]
    filled = np.stack(
        [np.asarray(c.is_valid(), dtype=bool) for c in columns], axis=1
    )  # rows × fields
    packed = np.ascontiguousarray(np.packbits(filled, axis=1))
    group, patterns = pd.factorize(packed.view(f"S{packed.shape[1]}").ravel())  # by hashing
    # the names are sorted and dicts keep their order: no sorting per row
    dumps = _dumps()
    out: list[bytes] = [b""] * n
    for g in range(len(patterns)):
        rows = np.flatnonzero(group == g)
        present = np.flatnonzero(filled[rows[0]])
        if not len(present):  # a row with every field empty
            for i in rows.tolist():
                out[i] = b"{}"
            continue
        keys = [names[j] for j in present]
        take = pa.array(rows)
        values = [columns[j].take(take).to_pylist() for j in present]
        for i, row in zip(rows.tolist(), zip(*values, strict=True), strict=True):
            out[i] = dumps(dict(zip(keys, row, strict=True))).encode()
    return out


def _dumps() -> Any:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`` for the rows of
    :func:`_encodings`, with CPython's C encoder made once instead of once per row (what
    ``JSONEncoder.encode`` does), which is half the chain's cost; the same text."""
    from json import encoder

    plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    if encoder.c_make_encoder is None:  # pragma: no cover - a Python without _json
        return plain.encode
    made = encoder.c_make_encoder(
        None, plain.default, encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return lambda obj: "".join(made(obj, 0))


def link(head: bytes, encoding: bytes) -> bytes:
    """The hash of a record: of the hash before it and its encoding."""
    return hashlib.sha256(head + encoding).digest()


class Chain:
    """A chain being written: :meth:`add_to` gives a batch of records their ``prev_hash``
    and moves the head on.

    Parameters
    ----------
    head
        Where the chain stands (:data:`GENESIS` for a new record; a live twin restarted on
        its file goes on from the head it kept).
    """

    def __init__(self, head: bytes = GENESIS, records: int = 0) -> None:
        self.head = head
        self.records = records

    def add_to(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with its ``prev_hash`` column (replaced if it had one)."""
        if COLUMN in batch.schema.names:
            batch = batch.drop_columns([COLUMN])
        prevs = []
        head = self.head
        sha = hashlib.sha256
        for encoding in _encodings(batch):
            prevs.append(head)
            head = sha(head + encoding).digest()
        self.head = head
        self.records += batch.num_rows
        return batch.append_column(FIELD, pa.array(prevs, pa.binary(32)))

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """One record (an acknowledgement's line) with its ``prev_hash``, in hex."""
        out = {**{k: v for k, v in record.items() if k != COLUMN}, COLUMN: self.head.hex()}
        self.head = link(self.head, encode(out))
        self.records += 1
        return out

    @property
    def state(self) -> dict[str, Any]:
        """What a record keeps of its chain: the head, in hex, and the records chained."""
        return {"head": self.head.hex(), "records": self.records}


# -- verifying -----------------------------------------------------------------------------------


@dataclass
class Row:
    """One record as the verifier sees it: its place, its identity, its link."""

    index: int  # 0-based position in the record
    label: str  # how a person finds it: seq, time, kind (or line)
    seq: int | None
    prev: bytes | None
    own: bytes  # h(prev ‖ encoding)


@dataclass
class Verdict:
    """What :func:`verify` found."""

    intact: bool
    records: int
    head: str
    problem: str = ""
    unchained: int = 0
    reached: bool | None = None  # whether the chain passed through the head asked about

    def __str__(self) -> str:
        if self.intact:
            extra = (
                f" ({self.unchained:,} earlier records written before the chain began)"
                if self.unchained
                else ""
            )
            return f"Audit chain intact: {self.records:,} records, head {self.head}{extra}"
        return f"Audit chain BROKEN: {self.problem}"


def rows_of(batches: Iterable[pa.RecordBatch]) -> Iterator[Row]:
    """The records of timeline batches, in order, as the verifier reads them."""
    index = 0
    for batch in batches:
        prevs = (
            batch.column(COLUMN).to_pylist()
            if COLUMN in batch.schema.names
            else [None] * batch.num_rows
        )
        seqs = batch.column("seq").to_pylist() if "seq" in batch.schema.names else prevs
        times = batch.column("t").to_pylist() if "t" in batch.schema.names else prevs
        kinds = batch.column("kind").to_pylist() if "kind" in batch.schema.names else prevs
        for prev, seq, t, kind, encoding in zip(
            prevs, seqs, times, kinds, _encodings(batch), strict=True
        ):
            label = f"record {index + 1:,} (seq {seq}, t {t:,.1f} s, {kind})"
            own = link(prev or b"", encoding)
            yield Row(index, label, seq, prev, own)
            index += 1


def rows_of_lines(lines: Iterable[str], *, start: int, what: str) -> Iterator[Row]:
    """The records of a JSON-lines file (acknowledgements), in order."""
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
            prev = bytes.fromhex(record.get(COLUMN) or "") if isinstance(record, dict) else None
        except ValueError:
            record, prev = None, None
        if not isinstance(record, dict):
            record = {"unreadable": line}
        label = f"{what} line {i + 1:,} (record {start + i + 1:,})"
        yield Row(start + i, label, None, prev or None, link(prev or b"", encode(record)))


def verify(
    rows: Iterable[Row],
    *,
    head: str | None,
    records: int | None,
    start: bytes = GENESIS,
    through: bytes | None = None,
) -> Verdict:
    """Walk the records and check each one's link to the one before, then the head.

    The first broken link is named, and what happened there judged: a record inserted
    (the chain goes on if it is skipped), records deleted (a gap in ``seq``), two records
    out of order, or the record before the link altered. A chain that ends early against
    the head's count was cut. ``through``: a head copied from elsewhere, which the chain
    must pass through (:attr:`Verdict.reached`).
    """
    it = iter(rows)
    expected = start
    before: Row | None = None
    count = 0
    unchained = 0
    reached = None if through is None else through == start
    for row in it:
        if row.prev is None and before is None and expected == start and row.index == unchained:
            unchained += 1  # written before the chain began (an older live twin's rows)
            continue
        if row.prev != expected:
            after = next(it, None)
            return _broken(before, row, after, expected, count + unchained)
        expected = row.own
        before = row
        count += 1
        if reached is False and row.own == through:
            reached = True
    found = expected.hex()
    if head is not None and found != head:
        if records is not None and count < records:
            where = f"after {before.label}" if before else "from the start"
            return Verdict(
                False,
                count,
                found,
                f"the record was cut: {records - count:,} records are missing {where} "
                f"(the head kept says {records:,} records)",
            )
        if records is not None and count > records:
            return Verdict(
                False,
                count,
                found,
                f"{count - records:,} records were added after the last one the head covers "
                f"(it covers {records:,})",
            )
        what = f"{before.label} was altered" if before else "the record is empty"
        return Verdict(False, count, found, f"{what}: it no longer matches the head kept")
    return Verdict(True, count, found, unchained=unchained, reached=reached)


def _broken(
    before: Row | None, row: Row, after: Row | None, expected: bytes, count: int
) -> Verdict:
    found = expected.hex()
    if before is not None and row.prev is not None and row.prev == before.prev:
        return Verdict(
            False,
            count - 1,
            found,
            f"{before.label} was inserted: it carries the link of the record after it",
        )
    seqs = (before, row, after)
    if all(r is not None and r.seq is not None for r in seqs):
        assert before is not None and after is not None and before.seq is not None
        assert row.seq is not None and after.seq is not None
        if after.seq == before.seq + 1 and row.seq > after.seq:
            return Verdict(
                False, count, found, f"{row.label} is out of order: it comes before seq {after.seq}"
            )
    if after is not None and after.prev == expected:
        return Verdict(
            False, count, found, f"{row.label} was inserted: the chain goes on without it"
        )
    if before is not None and row.seq is not None and before.seq is not None:
        if row.seq > before.seq + 1:
            missing = row.seq - before.seq - 1
            return Verdict(
                False,
                count,
                found,
                f"{missing:,} record(s) deleted between {before.label} and {row.label}",
            )
        if row.seq <= before.seq:
            return Verdict(
                False, count, found, f"{row.label} is out of order (after seq {before.seq})"
            )
    if before is None:
        if row.seq:
            return Verdict(False, count, found, f"{row.seq:,} record(s) deleted before {row.label}")
        return Verdict(
            False, count, found, f"{row.label}: its link to the chain's start was altered"
        )
    return Verdict(
        False,
        count,
        found,
        f"{before.label} was altered: the hash the next record carries no longer matches it",
    )


# -- the records the twin keeps ------------------------------------------------------------------


def verify_run(folder: Any, *, head: str | None = None) -> Verdict:
    """Verify a run folder's record: its timeline, then its acknowledgements, against the
    head in ``run.json`` (and, if given, a head copied from a report: the chain must pass
    through it)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from twin._errors import InputError

    folder = Path(folder)
    info_file, timeline = folder / "run.json", folder / "timeline.parquet"
    if not info_file.is_file() or not timeline.is_file():
        raise InputError(f"{folder}: not a run folder (no run.json and timeline.parquet)")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
        state = info.get("audit") if isinstance(info, dict) else None
    except (OSError, ValueError) as exc:
        raise InputError(f"{info_file}: unreadable ({exc})") from exc
    if not isinstance(state, dict) or "head" not in state:
        raise InputError(
            f"{folder}: this run has no audit chain (written by a twin before the chain "
            "existed): run the scenario again to have one"
        )
    try:
        parquet = pq.ParquetFile(timeline)
    except (OSError, pa.ArrowException) as exc:
        return Verdict(False, 0, "", f"{timeline}: unreadable ({exc})")
    acks = folder / "acknowledgements.jsonl"
    lines = (
        [x for x in acks.read_text(encoding="utf-8").splitlines() if x.strip()]
        if acks.exists()
        else []
    )
    rows = itertools.chain(
        rows_of(parquet.iter_batches(batch_size=65_536)),
        rows_of_lines(lines, start=parquet.metadata.num_rows, what="acknowledgements.jsonl"),
    )
    return _through(
        verify(
            rows,
            head=state["head"],
            records=state.get("records"),
            through=_hex(head),
        ),
        head,
    )


def verify_live(db: Any, *, head: str | None = None) -> tuple[Verdict, str]:
    """Verify a live twin's record: its DuckDB file if no twin holds it, or else what the
    running twin published (its parts and the head beside them). Returns the verdict and
    which of the two was read."""
    from pathlib import Path

    import duckdb

    from twin._errors import InputError

    db = Path(db)
    if not db.is_file():
        raise InputError(f"{db}: no live twin's file here")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except (duckdb.IOException, duckdb.ConnectionException):  # a running twin holds its file
        return _verify_published(db, head), "what the running live twin published"
    except duckdb.Error as exc:
        raise InputError(f"{db}: not a live twin's DuckDB file ({exc})") from exc
    try:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "timeline" not in tables:
            raise InputError(f"{db}: no timeline in this file (is it a live twin's?)")
        state = (
            next(iter(con.execute("SELECT head, records FROM audit_head").fetchall()), None)
            if "audit_head" in tables
            else None
        )
        if state is None:
            raise InputError(f"{db}: this live twin's timeline has no audit chain (an older twin)")
        reader = con.sql("SELECT * FROM timeline ORDER BY rowid").to_arrow_reader(65_536)
        verdict = verify(
            rows_of(reader),
            head=bytes(state[0]).hex(),
            records=int(state[1]),
            through=_hex(head),
        )
    finally:
        con.close()
    return _through(verdict, head), "the live twin's file"


def _verify_published(db: Any, head: str | None) -> Verdict:
    import pyarrow.parquet as pq

    from twin._errors import InputError

    folder = db.with_name(db.name + ".timeline")
    try:
        listed = json.loads((folder / "parts.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{db}: held by a running live twin, which publishes nothing readable ({exc})"
        ) from exc
    state = listed.get("audit")
    if not state:
        raise InputError(f"{db}: the running live twin publishes no audit chain (an older twin)")
    batches = (b for name in listed["parts"] for b in pq.read_table(folder / name).to_batches())
    start = listed.get("start") or {"head": GENESIS.hex(), "records": 0}
    return _through(
        verify(
            rows_of(batches),
            head=state["head"],
            records=state["records"] - start["records"],
            start=bytes.fromhex(start["head"]),
            through=_hex(head),
        ),
        head,
    )


def _through(verdict: Verdict, head: str | None) -> Verdict:
    """The verdict, with a head copied from a report checked: the record must still reach
    it (a record that grew since, by acknowledgements, passes through it)."""
    if head is None or not verdict.intact or verdict.reached:
        return verdict
    head = head.strip().lower()
    return Verdict(
        False,
        verdict.records,
        verdict.head,
        f"the record never reaches the head given ({head[:16]}…): it is not the record that "
        "head was taken from, or it was rewritten since",
    )


def _hex(head: str | None) -> bytes | None:
    from twin._errors import InputError

    if head is None:
        return None
    try:
        value = bytes.fromhex(head.strip())
    except ValueError:
        value = b""
    if len(value) != 32:
        raise InputError(f"--head {head!r}: a chain head is 64 hexadecimal digits")
    return value
