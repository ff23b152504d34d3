"""The timeline: typed columns, ordering, hashing, streaming that survives a dead writer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin import events as ev
from twin.sim.timeline import Timeline, content_hash, read_stream


def test_every_event_field_is_a_typed_column():
    schema = ev.schema()
    assert schema.names[:4] == ["t", "seq", "kind", "source"]
    assert schema.field("speed_mps").type == pa.float64()
    assert schema.field("edges").type == pa.list_(pa.string())
    assert schema.field("vehicles").type == pa.int64()


def test_a_field_that_clashes_in_type_is_refused():
    with pytest.raises(TypeError, match="clashes"):

        @ev.event("bad_kind_for_test")
        class Bad(ev.Event):
            speed_mps: str  # speed_mps is a float elsewhere


def test_append_orders_by_sequence_and_fills_only_its_columns():
    tl = Timeline()
    tl.append(5.0, ev.RunEnded(status="x", reason="first"), source="a")
    tl.append(5.0, ev.RunEnded(status="y", reason="second"), source="a")
    tl.extend(
        7.0,
        "teleport",
        source="b",
        vehicle=["v1", "v2"],
        edge=["e1", "e2"],
        reason=["jam", "yield"],
    )
    table = tl.table()
    assert table["seq"].to_pylist() == [0, 1, 2, 3]
    assert table["status"].to_pylist() == ["x", "y", None, None]
    assert table["vehicle"].to_pylist() == [None, None, "v1", "v2"]
    assert [e["reason"] for e in tl.events("run_ended")] == ["first", "second"]


def test_extend_checks_its_columns():
    tl = Timeline()
    with pytest.raises(ValueError, match="differ from fields"):
        tl.extend(1.0, "teleport", source="x", vehicle=["v"])
    with pytest.raises(ValueError, match="2 times for 1 events"):
        tl.extend([1.0, 2.0], "teleport", source="x", vehicle=["v"], edge=["e"], reason=["jam"])


def test_subscribers_hear_their_kind():
    tl = Timeline()
    heard = []
    tl.subscribe("road_event_started", lambda t, e: heard.append((t, e.event_id)))
    tl.append(
        3.0,
        ev.RoadEventStarted(event_id="a", event_type="closure", edges=["e"], lanes_closed=0),
        source="x",
    )
    tl.append(4.0, ev.RunEnded(status="s", reason=""), source="x")
    assert heard == [(3.0, "a")]
    with pytest.raises(ValueError, match="unknown event kind"):
        tl.subscribe("no_such_kind", print)


def test_column_subscribers_hear_a_snapshot_at_once():
    tl = Timeline()
    heard = []
    tl.subscribe_columns("teleport", lambda t, cols: heard.append((t, dict(cols))))
    per_event = []
    tl.subscribe("teleport", lambda t, e: per_event.append(e.vehicle))
    tl.extend(
        7.0,
        "teleport",
        source="b",
        vehicle=pa.array(["v1", "v2"]),
        edge=["e1", "e2"],
        reason=["jam", "yield"],
    )
    tl.append(8.0, ev.Teleport(vehicle="v3", edge="e3", reason="wrong lane"), source="b")
    tl.append(9.0, ev.RunEnded(status="s", reason=""), source="x")
    assert heard == [
        (7.0, {"vehicle": ["v1", "v2"], "edge": ["e1", "e2"], "reason": ["jam", "yield"]}),
        (8.0, {"vehicle": ["v3"], "edge": ["e3"], "reason": ["wrong lane"]}),
    ]
    assert per_event == ["v1", "v2", "v3"]
    with pytest.raises(ValueError, match="unknown event kind"):
        tl.subscribe_columns("no_such_kind", print)


def test_content_hash_ignores_batching_but_not_content():
    a, b = Timeline(), Timeline()
    for i in range(5):
        a.append(float(i), ev.Teleport(vehicle=f"v{i}", edge="e", reason="jam"), source="s")
        b.append(float(i), ev.Teleport(vehicle=f"v{i}", edge="e", reason="jam"), source="s")
        if i == 2:
            b.flush()  # a different batch boundary
    assert a.content_hash() == b.content_hash()
    b.append(9.0, ev.Teleport(vehicle="extra", edge="e", reason="jam"), source="s")
    assert a.content_hash() != b.content_hash()
    assert content_hash(a.table()) == a.content_hash()


def test_stream_keeps_every_flushed_batch_when_the_writer_dies(tmp_path):
    """A process killed by SIGKILL (as a segfault would) leaves a readable stream."""
    stream = tmp_path / "t.arrows"
    code = textwrap.dedent(
        f"""
        import os, signal
        from twin import events as ev
        from twin.sim.timeline import Timeline
        tl = Timeline(stream_to=__import__('pathlib').Path({str(stream)!r}))
        for i in range(3):
            tl.append(float(i), ev.Teleport(vehicle=f"v{{i}}", edge="e", reason="jam"), source="s")
            tl.flush()
        tl.append(99.0, ev.Teleport(vehicle="lost", edge="e", reason="jam"), source="s")  # never flushed
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -9
    table = read_stream(stream)
    assert table["vehicle"].to_pylist() == ["v0", "v1", "v2"]


def test_read_stream_of_a_torn_file(tmp_path):
    tl = Timeline(stream_to=tmp_path / "s.arrows")
    for i in range(4):
        tl.append(float(i), ev.Teleport(vehicle=f"v{i}", edge="e", reason="jam"), source="s")
        tl.flush()
    tl.close()
    data = (tmp_path / "s.arrows").read_bytes()
    (tmp_path / "torn.arrows").write_bytes(data[: len(data) - 40])
    assert 1 <= read_stream(tmp_path / "torn.arrows").num_rows < 4
    assert os.path.getsize(tmp_path / "s.arrows") == len(data)


def _teleports(n: int, *, cut: list[int] | None = None, stream_to=None, keep=True) -> Timeline:
    """n teleport events, flushed at the given row counts (batch boundaries)."""
    tl = Timeline(stream_to=stream_to, keep=keep)
    for i in range(n):
        reason = "jam" if i % 3 else "yield"
        tl.append(
            float(i), ev.Teleport(vehicle=f"v{i}", edge=f"e{i % 4}", reason=reason), source="s"
        )
        if cut and i + 1 in cut:
            tl.flush()
    tl.flush()
    return tl


@given(n=st.integers(1, 60), cuts=st.lists(st.integers(1, 59), max_size=10))
@settings(max_examples=60, deadline=None)
def test_content_hash_is_the_same_however_the_rows_are_batched(n, cuts, monkeypatch_module):
    """Small chunks, so that chunk and batch boundaries fall anywhere (a sliced Arrow batch
    serialises differently from a fresh one: the hash must not see it)."""
    whole = _teleports(n).content_hash()
    assert _teleports(n, cut=sorted(set(cuts))).content_hash() == whole


@pytest.fixture(scope="module")
def monkeypatch_module():
    import twin.sim.timeline as timeline_module

    mp = pytest.MonkeyPatch()
    mp.setattr(timeline_module, "CHUNK_ROWS", 7)
    yield
    mp.undo()


def test_a_stream_becomes_parquet_in_row_groups_with_the_same_hash(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import twin.sim.timeline as timeline_module
    from twin.sim.timeline import stream_to_parquet

    monkeypatch.setattr(timeline_module, "CHUNK_ROWS", 10)
    tl = _teleports(45, cut=[3, 4, 17, 30], stream_to=tmp_path / "t.arrows", keep=False)
    tl.close()
    with pytest.raises(RuntimeError, match="keeps no events in memory"):
        tl.table()
    in_memory = _teleports(45)
    seen = {}

    def tail(kinds, next_seq):
        seen.update(kinds=kinds, next_seq=next_seq)
        end = Timeline()
        end.append(50.0, ev.RunEnded(status="incomplete", reason="crash"), source="run")
        t = end.table()
        return t.set_column(1, "seq", pa.array([next_seq], pa.int64()))

    out = stream_to_parquet(
        tmp_path / "t.arrows", tmp_path / "t.parquet", {"status": "x"}, tail=tail
    )
    assert seen == {"kinds": {"teleport"}, "next_seq": 45}
    table = pq.read_table(tmp_path / "t.parquet")
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10] * 4 + [6]
    assert table.schema.metadata[b"status"] == b"x"
    assert out.rows == 46 and table["seq"].to_pylist() == list(range(46))
    assert table.slice(0, 45)["vehicle"].to_pylist() == in_memory.table()["vehicle"].to_pylist()
    assert out.sha256 == content_hash(table) != in_memory.content_hash()
    assert content_hash(table.slice(0, 45)) == in_memory.content_hash()
