"""The audit chain: a run's timeline and acknowledgements, and a live twin's file, each
record carrying the hash of the one before it. Tamper with them as someone would (change
a field, delete, insert, reorder, cut the tail) and ``twin audit verify`` names the record."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import two_cars
from twin import audit
from twin import events as ev

TWIN = [sys.executable, "-m", "twin.cli"]


@pytest.fixture(scope="module")
def chained_run(helsinki_city, tmp_path_factory):
    """A short run of two patrol cars (no traffic): a few hundred records."""
    from twin.runs import run_scenario
    from twin.scenario import load_scenario

    folder = tmp_path_factory.mktemp("audit")
    scenario = load_scenario(two_cars(folder, helsinki_city.path))
    scenario = scenario.model_copy(update={"duration": 3600.0})
    return run_scenario(scenario, out=folder / "run", progress=False).path


def _copy(run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("sumo"))
    return out


def _rewrite(run, change) -> pa.Table:
    """Rewrite the run's timeline as ``change(table)`` makes it (the file's metadata kept)."""
    path = run / "timeline.parquet"
    table = pq.read_table(path)
    changed = change(table)
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), path)
    return table


def _label(table: pa.Table, i: int) -> str:
    """How the verifier names the record at position ``i``."""
    return f"record {i + 1:,} (seq {table['seq'][i].as_py()}"


def test_an_untouched_run_is_intact_and_its_head_is_in_run_json_and_the_report(chained_run):
    info = json.loads((chained_run / "run.json").read_text())
    verdict = audit.verify_run(chained_run)
    assert verdict.intact, verdict.problem
    assert verdict.records == info["audit"]["records"] == info["events"] > 100
    assert verdict.head == info["audit"]["head"]
    assert info["audit"]["head"] in (chained_run / "report.html").read_text()
    said = subprocess.run(
        [*TWIN, "audit", "verify", str(chained_run)], capture_output=True, text=True, timeout=120
    )
    assert said.returncode == 0
    assert f"Audit chain intact: {verdict.records:,} records, head {verdict.head}" in said.stdout


K = 57  # the record tampered with


@pytest.mark.parametrize(
    "tamper, expected",
    [
        (
            lambda t: t.set_column(0, "t", pa.array([*t["t"].to_pylist()[:K], t["t"][K].as_py() + 60, *t["t"].to_pylist()[K + 1 :]])),
            lambda t: f"{_label(t, K)}" + "{rest} was altered",
        ),
        (
            lambda t: pa.concat_tables([t.slice(0, K), t.slice(K + 1)]),
            lambda t: f"1 record(s) deleted between {_label(t, K - 1)}",
        ),
        (  # a copy of a record, carrying the link of the one it is put before
            lambda t: pa.concat_tables([t.slice(0, K + 1), t.slice(K + 1, 1).set_column(2, "kind", pa.array(["alert_received"])), t.slice(K + 1)]),
            lambda t: f"{_label(t, K + 1)}" + "{rest} was inserted",
        ),
        (
            lambda t: pa.concat_tables([t.slice(0, K), t.slice(K + 1, 1), t.slice(K, 1), t.slice(K + 2)]),
            lambda t: f"{_label(t, K + 1).replace(f'record {K + 2:,}', f'record {K + 1:,}')}" + "{rest} is out of order",
        ),
        (
            lambda t: t.slice(0, t.num_rows - 5),
            lambda t: "the record was cut: 5 records are missing after " + _label(t, t.num_rows - 6),
        ),
    ],
    ids=["field changed", "deleted", "inserted", "reordered", "tail cut"],
)  # fmt: skip
def test_tampering_with_a_run_is_found_at_the_record(chained_run, tmp_path, tamper, expected):
    run = _copy(chained_run, tmp_path)
    before = _rewrite(run, tamper)
    verdict = audit.verify_run(run)
    assert not verdict.intact
    start, _, end = expected(before).partition("{rest}")
    assert verdict.problem.startswith(start), (verdict.problem, start)
    assert end in verdict.problem, verdict.problem
    said = subprocess.run(
        [*TWIN, "audit", "verify", str(run)], capture_output=True, text=True, timeout=120
    )
    assert said.returncode == 1 and "Audit chain BROKEN" in said.stdout
    assert start in said.stdout.replace("\n", " ")


def test_a_rewritten_chain_is_caught_by_the_head_kept_and_by_a_report_s_head(chained_run, tmp_path):
    """Whoever rewrites every hash after their change still cannot match the head."""
    run = _copy(chained_run, tmp_path)
    head = json.loads((run / "run.json").read_text())["audit"]["head"]

    def rewrite(t: pa.Table) -> pa.Table:
        t = t.drop_columns(["prev_hash"])
        kinds = t["kind"].to_pylist()
        kinds[K] = "alert_received"
        t = t.set_column(2, "kind", pa.array(kinds))
        return pa.Table.from_batches(
            [audit.Chain().add_to(b) for b in t.combine_chunks().to_batches()]
        )

    _rewrite(run, rewrite)
    verdict = audit.verify_run(run)
    assert not verdict.intact and "no longer matches the head kept" in verdict.problem
    # and if run.json is rewritten too, the head copied from the report still catches it
    info = json.loads((run / "run.json").read_text())
    info["audit"]["head"] = audit.verify_run(run).head
    (run / "run.json").write_text(json.dumps(info))
    assert audit.verify_run(run).intact
    caught = audit.verify_run(run, head=head)
    assert not caught.intact and "never reaches the head given" in caught.problem


def test_acknowledgements_go_on_the_run_s_chain(chained_run, tmp_path):
    from twin.runs.folder import acknowledge

    run = _copy(chained_run, tmp_path)
    head = json.loads((run / "run.json").read_text())["audit"]["head"]
    for i in range(3):
        acknowledge(run, {"t": 10.0 * i, "alert": f"S0{i}:rawan", "sector": f"S0{i}",
                          "status": "rawan", "reason": "tti", "officer": "sari"})  # fmt: skip
    info = json.loads((run / "run.json").read_text())
    first = json.loads((run / "acknowledgements.jsonl").read_text().splitlines()[0])
    assert first["prev_hash"] == head  # the timeline's head: one chain
    verdict = audit.verify_run(run, head=head)  # a report made before still checks out
    assert verdict.intact and verdict.records == info["audit"]["records"] == info["events"] + 3
    lines = (run / "acknowledgements.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"sari"', '"budi"')
    (run / "acknowledgements.jsonl").write_text("\n".join(lines) + "\n")
    verdict = audit.verify_run(run)
    assert not verdict.intact
    assert verdict.problem.startswith("acknowledgements.jsonl line 2 ")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=60), max_size=4))
def test_any_acknowledgements_file_is_judged_never_crashes_the_verifier(
    chained_run, tmp_path, lines
):
    run = tmp_path / "run"
    if not run.exists():
        shutil.copytree(chained_run, run, ignore=shutil.ignore_patterns("sumo"))
    (run / "acknowledgements.jsonl").write_text("\n".join(lines), encoding="utf-8")
    verdict = audit.verify_run(run)
    assert verdict.intact == (not any(x.strip() for x in lines))


# -- a live twin's file ------------------------------------------------------------------


def _live_file(tmp_path, n: int = 300):
    """A live twin's DuckDB file with ``n`` events on its timeline, written as the live
    twin writes them (in batches, through :class:`twin.live.run.LiveStore`)."""
    from twin.live.run import LiveStore
    from twin.sim.timeline import Timeline

    db = tmp_path / "live.duckdb"
    store = LiveStore(db)
    timeline = Timeline(on_batch=store.add_batch)
    for i in range(n):
        timeline.append(
            float(i),
            ev.AlertAcknowledged(
                alert=f"a{i}", sector="S01", status="waspada", reason="r", officer="sari"
            ),
            source="dashboard",
        )
        if i % 50 == 49:
            timeline.flush()
            store.publish()
    timeline.flush()
    store.close()
    return db


def _sql(db, *statements: str) -> None:
    import duckdb

    con = duckdb.connect(str(db))
    for s in statements:
        con.execute(s)
    con.close()


@pytest.mark.parametrize(
    "statements, expected",
    [
        (["UPDATE timeline SET officer = 'budi' WHERE seq = 120"], "record 121 (seq 120, t 120.0 s, alert_acknowledged) was altered"),
        (["DELETE FROM timeline WHERE seq = 120"], "1 record(s) deleted between record 120 (seq 119"),
        (["CREATE TABLE rest AS SELECT * FROM timeline WHERE seq > 120 ORDER BY rowid",
          "DELETE FROM timeline WHERE seq > 120",
          "INSERT INTO timeline SELECT * REPLACE ('x' AS alert) FROM rest WHERE seq = 121",
          "INSERT INTO timeline SELECT * FROM rest ORDER BY seq"], "record 122 (seq 121, t 121.0 s, alert_acknowledged) was inserted"),
        (["CREATE TABLE rest AS SELECT * FROM timeline WHERE seq >= 120 ORDER BY rowid",
          "DELETE FROM timeline WHERE seq >= 120",
          "INSERT INTO timeline SELECT * FROM rest ORDER BY CASE seq WHEN 120 THEN 121 WHEN 121 THEN 120 ELSE seq END"],
         "record 121 (seq 121, t 121.0 s, alert_acknowledged) is out of order"),
        (["DELETE FROM timeline WHERE seq >= 290"], "the record was cut: 10 records are missing after record 290 (seq 289"),
    ],
    ids=["field changed", "deleted", "inserted", "reordered", "tail cut"],
)  # fmt: skip
def test_tampering_with_a_live_file_is_found_at_the_record(tmp_path, statements, expected):
    db = _live_file(tmp_path)
    assert audit.verify_live(db)[0].intact
    _sql(db, *statements)
    verdict, read = audit.verify_live(db)
    assert read == "the live twin's file"
    assert not verdict.intact and verdict.problem.startswith(expected), verdict.problem
    said = subprocess.run(
        [*TWIN, "audit", "verify", str(db)], capture_output=True, text=True, timeout=120
    )
    assert said.returncode == 1 and expected in said.stdout.replace("\n", " ")


def test_a_restarted_live_twin_goes_on_with_its_chain_and_publishes_its_head(tmp_path):
    import duckdb

    from twin.live.run import LiveStore
    from twin.sim.timeline import Timeline

    db = _live_file(tmp_path, 120)
    store = LiveStore(db)  # the twin restarted on its file
    timeline = Timeline(on_batch=store.add_batch)
    for i in range(30):
        timeline.append(float(i), ev.AlertAcknowledged(alert=f"b{i}", sector="S02", status="rawan", reason="r", officer="amat"), source="dashboard")  # fmt: skip
    timeline.flush()
    store.publish()
    # while it runs it holds the file: the verifier, another program, reads what it publishes
    said = subprocess.run(
        [*TWIN, "audit", "verify", str(db)], capture_output=True, text=True, timeout=120
    )
    assert said.returncode == 0, said.stdout + said.stderr
    assert "(what the running live twin published): Audit chain intact: 30 records" in said.stdout
    store.close()
    verdict, read = audit.verify_live(db)
    assert read == "the live twin's file" and verdict.intact and verdict.records == 150
    con = duckdb.connect(str(db), read_only=True)
    assert bytes(con.execute("SELECT head FROM audit_head").fetchone()[0]).hex() == verdict.head
    con.close()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.one_of(st.none(), st.text(max_size=8)),
            st.one_of(st.none(), st.integers(-(2**62), 2**62)),
            st.one_of(st.none(), st.lists(st.text(max_size=3), max_size=3)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_fast_encoding_is_the_canonical_one(rows):
    """The column-wise encoder the writer uses gives, row by row, the very bytes of the
    canonical encoding (:func:`twin.audit.encode`), whatever the values and the nulls."""
    table = pa.table(
        {
            "t": pa.array([r[0] for r in rows], pa.float64()),
            "kind": pa.array([r[1] for r in rows], pa.string()),
            "seq": pa.array([r[2] for r in rows], pa.int64()),
            "names": pa.array([r[3] for r in rows], pa.list_(pa.string())),
        }
    )
    batch = table.combine_chunks().to_batches()[0]
    assert audit._encodings(batch) == [audit.encode(r) for r in batch.to_pylist()]
