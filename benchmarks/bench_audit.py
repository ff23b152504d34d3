"""audit: the audit chain's cost, the run's timeline written with and without it (see run.py)."""

from __future__ import annotations

from _common import CACHE, HERE, interleaved, report


def bench_audit(repeat: int) -> None:
    """The default rush hour (``scenarios/jakarta_morning_rush.yaml``, as ``make demo`` runs
    it): its timeline written from the run's Arrow stream to Parquet by the twin's writer
    with the chain, and by the same writer without it; and the chain's cost as a share of
    the whole run."""
    import json

    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    from twin.city import build_city, builtin_osm
    from twin.runs import run_scenario
    from twin.scenario import load_scenario
    from twin.sim.timeline import stream_to_parquet

    city = build_city(
        builtin_osm("jakarta"), out=CACHE / "jakarta", name="jakarta", progress=False
    ).city
    run = CACHE / "jakarta-rush-run"
    sc = load_scenario(HERE.parent / "scenarios" / "jakarta_morning_rush.yaml")
    sc = sc.model_copy(update={"city": str(city.path)})
    if not (run / "timeline.parquet").exists():
        run_scenario(sc, out=run, progress=False, scenario_dir=HERE.parent / "scenarios")
    wall = json.loads((run / "run.json").read_text())["wall_s"]
    # the run's stream, as its worker wrote it (lz4 Arrow IPC), from its timeline
    table = pq.read_table(run / "timeline.parquet").drop_columns(["prev_hash"])
    stream = CACHE / "jakarta-rush.arrows"
    with pa.OSFile(str(stream), "wb") as sink:
        options = ipc.IpcWriteOptions(compression="lz4")
        with ipc.new_stream(sink, table.schema, options=options) as writer:
            for batch in table.to_batches(max_chunksize=4096):
                writer.write_batch(batch)
    out = CACHE / "audit-timeline.parquet"
    meta = {"scenario": sc.name}
    rows = interleaved(
        {
            "writer without the chain": lambda: stream_to_parquet(stream, out, meta, chain=False),
            "writer with the chain": lambda: stream_to_parquet(stream, out, meta),
        },
        min(repeat, 5),
    )
    report(f"audit: {sc.name}, {table.num_rows:,} records", rows, rows[0][0])
    extra = rows[1][1] - rows[0][1]
    share = extra / wall
    print(
        f"\nThe chain adds {extra * 1000:.0f} ms ({rows[1][1] / rows[0][1]:.1f}× the writer) "
        f"to a run of {wall:.1f} s: {share:.1%} of the run "
        f"({'within' if share <= 0.10 else 'OVER'} the 10 % target, counted on the run)."
    )
