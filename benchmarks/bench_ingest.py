"""ingest: sensor ingestion from a file and through MQTT (``ingest.py``; see run.py)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import CACHE, HERE


def bench_ingest(repeat: int) -> None:
    """Sensor ingestion: file replay on one core, and MQTT through mosquitto (see
    ``benchmarks/ingest.py``)."""
    import json
    import subprocess

    from twin.city import build_city
    from twin.sensors.broker import LocalBroker

    build_city(out=CACHE / "helsinki", progress=False)
    script = [sys.executable, str(HERE / "ingest.py")]

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run([*script, *args], check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    feed = CACHE / "feed-200k.jsonl"
    if not feed.exists():
        run("stream", str(feed), "200000")
    r = run("replay", str(feed), str(CACHE / "replay.duckdb"))
    print("\n### ingest: replay of 200,000 messages from a JSON-lines file, one CPU\n")
    print(
        f"Kept {r['kept']:,} and stored {r['stored']:,}; quarantined {r['in quarantine']:,} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(r['quarantined'].items()))}).\n"
    )
    print("| reader | messages per second | the twin's share of it |")
    print("|---|---|---|")
    for name in ("json.loads", "pydantic alone", "pydantic batched", "twin"):
        print(f"| {name} | {r[name]:,.0f} | {r['twin'] / r[name]:.2f}× |")
    print(f"\nTarget 100,000/s: {'met' if r['twin'] >= 100_000 else 'missed'}.")

    with tempfile.TemporaryDirectory() as tmp, LocalBroker(Path(tmp) / "broker") as broker:
        port = str(broker.port)
        rows = []
        for label, n in (
            ("live publisher, paced at 1,000/s", 10_000),
            ("waiting in the session", 200_000),
        ):
            live = Path(tmp) / f"live-{n}.jsonl"
            run("stream", str(live), str(n), "--live")
            db = Path(tmp) / f"mqtt-{n}.duckdb"
            if n > 10_000:  # the messages wait in the persistent session, then the receiver starts
                run("subscribe", port)
                sent = run("publish", port, str(live), "0")
            receiver = subprocess.Popen(
                [*script, "receive", port, str(db), str(n)], stdout=subprocess.PIPE, text=True
            )
            assert receiver.stdout is not None
            receiver.stdout.readline()  # "ready": subscribed
            if n == 10_000:
                sent = run("publish", port, str(live), "1000")
            got = json.loads(receiver.communicate(timeout=900)[0].strip().splitlines()[-1])
            rows.append((label, sent, got))
    print(
        "\n### ingest: MQTT at QoS 1 through mosquitto on 127.0.0.1, publisher in another process\n"
    )
    print(
        "| stream | published | published per s | received | kept | quarantined (duplicates) "
        "| ingested per s | publish to history p50 | p99 | max |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, sent, got in rows:
        print(
            f"| {label} | {sent['published']:,} | {sent['rate']:,.0f} | {got['received']:,} | "
            f"{got['kept']:,} | {got['quarantined']:,} ({got['duplicates']}) | {got['rate']:,.0f} | "
            f"{got['p50_ms']:.1f} ms | {got['p99_ms']:.1f} ms | {got['max_ms']:.0f} ms |"
        )
    paced, fast = rows[0][2], rows[1][2]
    lost = rows[1][1]["published"] - fast["kept"] - (fast["quarantined"] - fast["duplicates"])
    print(
        f"\nTargets: p99 under 25 ms at 1,000/s: {'met' if paced['p99_ms'] < 25 else 'missed'}; "
        f"20,000/s sustained with none lost: {'met' if fast['rate'] >= 20_000 and lost <= 0 else 'missed'} "
        f"({max(lost, 0):,} lost)."
    )
