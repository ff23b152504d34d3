"""fork: ``twin fork`` of a live twin of the default city (see run.py)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE, HERE


def bench_fork(repeat: int) -> None:
    """``twin fork`` of a running live twin of the default city (see the module docstring)."""
    import json
    import signal
    import subprocess

    import yaml

    from twin.sensors.broker import LocalBroker

    root = HERE.parent
    base = yaml.safe_load((root / "scenarios" / "helsinki_live.yaml").read_text())
    base["traffic"]["demand"]["veh_per_hour"] = {
        f"{h:02d}": 1800 for h in range(24)
    }  # rush all day
    twin = [sys.executable, "-m", "twin.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(Path(tmp) / "broker") as broker:
        scenario = Path(tmp) / "live.yaml"
        from twin.city import build_city

        base["city"] = str(build_city(out=CACHE / "helsinki", progress=False).city.path)
        scenario.write_text(yaml.safe_dump(base))
        db = Path(tmp) / "live" / "live.duckdb"
        live = subprocess.Popen(
            [
                *twin,
                "live",
                "--mqtt",
                f"127.0.0.1:{broker.port}",
                "--db",
                str(db),
                "--scenario",
                str(scenario),
                "--sensors",
                str(root / "scenarios" / "sensors" / "helsinki.yaml"),
                "--for",
                "3h",
                "--speed",
                "20",
                "--user",
                broker.username,
                "--password",
                broker.password,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(25)  # SUMO starts, and some minutes of the rush pass
            for i in range(min(repeat, 3)):
                out = Path(tmp) / f"fork{i}"
                started = time.perf_counter()
                done = subprocess.run(
                    [
                        *twin,
                        "fork",
                        "--live",
                        str(db),
                        "--ahead",
                        "60min",
                        "--out",
                        str(out),
                        "--overlay",
                        str(root / "scenarios" / "overlays" / "close_mannerheimintie.yaml"),
                    ],
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"twin fork failed: {done.stderr.strip()}")
                wall = time.perf_counter() - started
                result = json.loads((out / "fork.json").read_text())
                rows.append((result["t_s"], wall, result["runs"]))
        finally:
            live.send_signal(signal.SIGINT)
            live.communicate(timeout=120)
    print(
        "\n### fork: the next 60 minutes of a live twin of the default city at 1,800 vehicles/h\n"
    )
    print(
        "Each fork replays the live twin to the fork point, checks the replay against it event by "
        "event, then runs 60 minutes as things are and with an accident on Mannerheimintie.\n"
    )
    print(
        "| fork point (simulated) | fork, wall (request, 2 replays, 2 runs ahead) | as-is run | plan run "
        "| 60 min ahead per wall time |"
    )
    print("|---|---|---|---|---|")
    for t_now, wall, runs in rows:
        print(
            f"| {t_now / 60:.1f} min | {wall:.1f} s | {runs['as-is']['wall_s']:.1f} s | "
            f"{runs['plan']['wall_s']:.1f} s | {3600 / wall:.0f}× real time |"
        )
    best = min(w for _, w, _ in rows)
    print(
        f"\nTarget: the next 60 minutes in under 1 minute: {'met' if best < 60 else 'missed'} "
        f"({best:.1f} s, the fork as a whole)."
    )
