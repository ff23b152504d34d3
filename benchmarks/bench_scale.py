"""scale: how the twin's cost grows with the city, stage by stage (see run.py).

Cities of growing size: the two built-in real cities, and nets that SUMO's ``netgenerate``
makes in three families (grid, spider, random), each about ten times the last, placed in
Jakarta with ``twin build --sumo-net --origin`` so that every part of the twin runs on them.
Each stage runs as a user runs it, in its own process, timed and with its peak memory (the
process tree's resident set, sampled every 20 ms), beside its baseline in the same run:

- ``twin build``; ``City.load``;
- the travel-time engine, many-to-all from 20 sources, against scipy's ``dijkstra``;
- a one-hour ``twin run`` with the response and community models on, micro and meso,
  against plain ``sumo`` on the same net, routes and options (the run's own files);
- the KPIs and the report, against a bare DuckDB scan of the timeline.

Demand grows with the net: two vehicles an hour per junction (20,000 an hour on the 10,000-
junction nets), drawn from the city (``method: city``). For each stage the exponent of cost
against size (the slope on log-log axes, by least squares over the family's sizes) is
printed beside its baseline's. Set ``TWIN_SCALE`` to ``small`` (about 100 and 1,000
junctions) to leave out the largest nets, or to a list of ``family:size`` items.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import CACHE, HERE, best_of

#: (family, junctions wanted) -> netgenerate arguments
FAMILIES: dict[str, dict[int, list[str]]] = {
    "grid": {
        n: ["--grid", "--grid.number", str(side), "--grid.length", "150"]
        for n, side in ((100, 10), (1000, 32), (10000, 100))
    },
    "spider": {
        n: [
            *("--spider", "--spider.arm-number", str(arms), "--spider.circle-number", str(arms)),
            *("--spider.space-radius", "150", "--spider.omit-center"),
        ]
        for n, arms in ((100, 10), (1000, 32), (10000, 100))
    },
    "random": {
        n: [
            *("--rand", "--rand.iterations", str(it), "--rand.min-distance", "120"),
            *("--rand.max-distance", "250", "--rand.grid", "--seed", "7"),
        ]
        for n, it in ((100, 100), (1000, 1000), (10000, 10000))
    },
}
ORIGIN = "106.8272,-6.1754"  # Monas, Jakarta: the generated nets keep left
TWIN = Path(sys.executable).parent / "twin"


def _selected() -> list[tuple[str, int]]:
    wanted = os.environ.get("TWIN_SCALE", "")
    every = [(f, n) for f, sizes in FAMILIES.items() for n in sizes]
    if wanted == "small":
        return [(f, n) for f, n in every if n <= 1000]
    if wanted:
        picked = [tuple(item.split(":")) for item in wanted.split(",")]
        return [(f, int(n)) for f, n in picked]
    return every


def peak(cmd: list[str], *, cwd: Path | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; its wall seconds, the peak resident memory of its process tree (MiB),
    and what it printed."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    top = [0]

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
            while proc.poll() is None:
                rss = 0
                for p in [root, *root.children(recursive=True)]:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                top[0] = max(top[0], rss)
                time.sleep(0.02)
        except psutil.Error:
            pass

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    watcher.join()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{out[-2000:]}")
    return seconds, top[0] / 2**20, out


def net_file(family: str, n: int) -> Path:
    """A generated net of about ``n`` junctions (cached)."""
    from twin._sumo import run_tool

    path = CACHE / "scale" / f"{family}{n}.net.xml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"(making the {family} net of about {n:,} junctions with netgenerate, once)")
        run_tool(
            "netgenerate",
            [*FAMILIES[family][n], "--default.lanenumber", "2", "--tls.guess", "-o", str(path)],
            timeout=3600,
        )
    return path


def _scenario(folder: Path, city: Any, veh_per_hour: int, mode: str) -> Path:
    """A one-hour scenario with traffic, response and community on, and a posts file."""
    import yaml

    c = city.manifest.bbox
    lon, lat = (c["west"] + c["east"]) / 2, (c["south"] + c["north"]) / 2
    posts = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": f"{kind} post", "kind": kind},
                "geometry": {"type": "Point", "coordinates": [lon + dx, lat]},
            }
            for kind, dx in (("police", 0.0), ("hospital", 0.002), ("fire", -0.002))
        ],
    }
    (folder / f"{city.name}_posts.geojson").write_text(json.dumps(posts))
    doc = {
        "name": f"scale-{city.name}-{mode}",
        "city": str(city.path),
        "start": "2026-12-01T07:00:00+07:00",
        "duration": "1h",
        "seed": 1,
        "traffic": {
            "demand": {"veh_per_hour": {"07": veh_per_hour}, "method": "city"},
            "mode": mode,
        },
        "response": {
            "incidents": {"rates": {"crime": 4, "traffic_accident": 4, "medical": 4}},
            "units": [
                {"name": "P", "type": "police_car", "count": 4, "base": "police"},
                {"name": "A", "type": "ambulance", "count": 2, "base": "hospital"},
            ],
        },
        "community": {"residents": 2000, "offenders": 40},
        "outputs": {"report": False},
    }
    path = folder / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _plain_sumo(run_dir: Path, city: Any, scenario_file: Path) -> tuple[float, float]:
    """Plain ``sumo`` on the run's own net, routes and options."""
    from twin.runs.components import traffic_component
    from twin.scenario import load_scenario

    scenario = load_scenario(scenario_file)
    sumo_dir = run_dir / "sumo"
    routes = sorted(sumo_dir.glob("*.rou.xml"))
    work = CACHE / "scale" / "plain"
    work.mkdir(parents=True, exist_ok=True)
    component = traffic_component(
        scenario, net_file=city.net_path, routes=routes, edge_sector={}, events=[], workdir=work
    )
    cmd = [*component.sumo_command(), "--end", "3600"]
    seconds, mib, _ = peak(cmd)
    return seconds, mib


def measure(family: str, n: int, repeat: int) -> dict[str, Any]:
    """Every stage on one city; seconds and MiB per stage, with the baselines'."""
    import duckdb
    from bench_routing import scipy_csr
    from scipy.sparse.csgraph import dijkstra

    from twin.city import City, builtin_osm
    from twin.kpi import summary
    from twin.routing import TravelTimeEngine

    work = CACHE / "scale" / f"{family}{n}"
    work.mkdir(parents=True, exist_ok=True)
    bundle = work / "city"
    if family == "osm":
        source = ["--osm", str(builtin_osm(str(n)))]
    else:
        source = ["--sumo-net", str(net_file(family, n)), "--origin", ORIGIN]
    row: dict[str, Any] = {"family": family, "city": str(n) if family == "osm" else ""}
    row["build_s"], row["build_mib"], _ = peak(
        [
            str(TWIN),
            "build",
            *source,
            "--out",
            str(bundle),
            "--name",
            f"{family}{n}",
            "--force",
            "-q",
        ]
    )
    city = City.load(bundle)
    row["junctions"] = city.manifest.counts["sumo_junctions"]
    row["edges"] = city.manifest.counts["sumo_edges"]
    row["load_s"] = best_of(lambda: City.load(bundle), min(repeat, 3))[0]
    code = f"from twin.city import City; City.load({str(bundle)!r})"
    _, row["load_mib"], _ = peak([sys.executable, "-c", code])
    engine = TravelTimeEngine.from_city(city)
    csr = scipy_csr(engine)
    import numpy as np

    rng = np.random.default_rng(1)
    sources = [int(x) for x in rng.choice(engine.nodes, min(20, len(engine.nodes)), replace=False)]
    src_i = np.array([engine._index[s] for s in sources])
    row["routing_s"] = best_of(lambda: engine.many_to_all(sources), repeat)[0]
    row["routing_scipy_s"] = best_of(lambda: dijkstra(csr, indices=src_i), repeat)[0]
    veh = 2 * max(row["junctions"], 100)
    row["veh_per_hour"] = veh
    for mode in ("micro", "meso"):
        scenario = _scenario(work, city, veh, mode)
        out = work / "runs" / mode
        _, row[f"{mode}_mib"], _ = peak(
            [str(TWIN), "run", str(scenario), "--out", str(out), "-q"], cwd=work
        )
        info = json.loads((out / "run.json").read_text())
        row[f"{mode}_s"] = info["wall_s"]  # the simulation alone, as plain sumo's
        row[f"{mode}_sumo_s"], row[f"{mode}_sumo_mib"] = _plain_sumo(out, city, scenario)
        kpis = json.loads((out / "kpis.json").read_text())["kpis"]
        row[f"{mode}_completed"] = kpis.get("completed_share")
        row[f"{mode}_teleports"] = kpis.get("teleports")
    timeline = work / "runs" / "micro" / "timeline.parquet"
    row["kpis_s"] = best_of(lambda: summary(timeline), min(repeat, 3))[0]
    row["kpis_scan_s"] = best_of(
        lambda: duckdb.sql(
            f"SELECT kind, count(*), avg(t) FROM read_parquet('{timeline}') GROUP BY kind"
        ).fetchall(),
        min(repeat, 3),
    )[0]
    row["k3i_first_s"], row["k3i_update_p50_s"], row["k3i_update_p95_s"] = k3i_timings(
        work / "runs" / "micro", repeat
    )
    from twin.runs.report import write_run_report
    from twin.scenario import load_scenario

    micro = load_scenario(work / "micro.yaml")
    row["report_s"] = best_of(lambda: write_run_report(work / "runs" / "micro", micro, city), 1)[0]
    row["timeline_rows"] = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{timeline}')"
    ).fetchall()[0][0]
    return row


def k3i_timings(run: Path, repeat: int) -> tuple[float, float, float]:
    """The K3i page on a run, served by ``twin dash``, in headless chromium: its first
    render (empty cache, median) and its update on the time slider (p50, p95), seconds."""
    from bench_dash import CHROMIUM, FLAGS, page_timings, serve_runs
    from playwright.sync_api import sync_playwright

    server, port = serve_runs([run])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            cold, _, p50, p95 = page_timings(
                browser, port, "/", "#k3i-map", "#k3i-clock", "#k3i-time", "slider", repeat
            )
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    return cold, p50 or 0.0, p95 or 0.0


def k3i_scene(family: str = "grid", n: int = 10000) -> dict[str, Any]:
    """The K3i page under a whole day's load on the largest net: about 5,000 units and
    incidents (1,000 units at 141 posts spread over the city, 4,000 incidents), run in one
    hour of meso traffic at the scale family's demand so that the run stays within a
    benchmark's time. Its timeline, and the units and open incidents the map draws at a
    moment, are a busy day's or more. Returns the counts and the page's timings."""
    import duckdb
    import numpy as np
    import yaml

    from twin.city import City

    work = CACHE / "scale" / f"{family}{n}"
    city = City.load(work / "city")  # built by measure() first
    bb = city.manifest.bbox
    features = []
    for kind, side in (("police", 10), ("hospital", 5), ("fire", 4)):
        for i, lon in enumerate(np.linspace(bb["west"], bb["east"], side + 2)[1:-1]):
            for j, lat in enumerate(np.linspace(bb["south"], bb["north"], side + 2)[1:-1]):
                features.append(
                    {
                        "type": "Feature",
                        "properties": {"name": f"{kind} {i}-{j}", "kind": kind},
                        "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    }
                )
    (work / f"{city.name}_posts.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    doc = yaml.safe_load((work / "meso.yaml").read_text())
    doc["name"] = f"k3i-scene-{city.name}"
    doc["response"] = {
        "call_centre": {
            "pools": [
                {"name": "integrated", "numbers": ["110", "112", "119", "113"], "call_takers": 150}
            ]
        },
        "incidents": {
            "rates": {"crime": 1500, "traffic_accident": 1000, "medical": 1000, "fire": 500}
        },
        "units": [
            {"name": "P", "type": "police_car", "count": 300, "base": "police"},
            {"name": "R", "type": "motorbike", "count": 300, "base": "police"},
            {"name": "A", "type": "ambulance", "count": 250, "base": "hospital"},
            {"name": "F", "type": "fire_engine", "count": 150, "base": "fire"},
        ],
    }
    scenario = work / "k3i-scene.yaml"
    scenario.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = work / "runs" / "k3i-scene"
    seconds, mib, _ = peak([str(TWIN), "run", str(scenario), "--out", str(out), "-q"], cwd=work)
    timeline = out / "timeline.parquet"
    units, incidents = duckdb.sql(
        f"SELECT count(DISTINCT unit) FILTER (WHERE kind = 'unit_state'),"
        f" count(*) FILTER (WHERE kind = 'incident_occurred') FROM read_parquet('{timeline}')"
    ).fetchall()[0]
    first, p50, p95 = k3i_timings(out, 3)
    row = {
        "city": f"{family} {city.manifest.counts['sumo_junctions']:,}",
        "units": units,
        "incidents": incidents,
        "run_s": seconds,
        "run_mib": mib,
        "k3i_first_s": first,
        "k3i_update_p50_s": p50,
        "k3i_update_p95_s": p95,
    }
    (CACHE / "scale" / "k3i_scene.json").write_text(json.dumps(row, indent=1))
    print(
        f"\nK3i scene on {row['city']} junctions: {units:,} units and {incidents:,} incidents"
        f" (run {seconds:.0f} s, {mib:,.0f} MiB): first render {first:.2f} s"
        f" ({'meets' if first < 2 else 'MISSES'} the 2 s target), update p50 {p50 * 1000:.0f} ms,"
        f" p95 {p95 * 1000:.0f} ms ({'meets' if p95 < 0.3 else 'MISSES'} the 300 ms target)"
    )
    return row


#: A weekday's traffic by hour, as a share of the morning peak: the day of the memory test.
DAY_PROFILE = {
    **{h: 0.1 for h in range(0, 5)},
    5: 0.3,
    6: 0.6,
    7: 1.0,
    8: 1.0,
    **{h: 0.6 for h in range(9, 16)},
    16: 0.9,
    17: 1.0,
    18: 0.9,
    19: 0.6,
    20: 0.4,
    21: 0.3,
    22: 0.2,
    23: 0.15,
}


def day_memory(family: str, n: int, mode: str = "micro") -> dict[str, Any]:
    """Whether a run's memory is bounded by its working set rather than by its length: the
    same city, demand and models for one peak hour and for a whole day (:data:`DAY_PROFILE`,
    the peak hour at the scale family's demand), with the peak memory of each run's process
    tree. If the day's peak is the hour's, a day of the largest net needs what its hour
    needs."""
    import yaml

    work = CACHE / "scale" / f"{family}{n}"
    doc = yaml.safe_load((work / f"{mode}.yaml").read_text())
    peak_rate = max(doc["traffic"]["demand"]["veh_per_hour"].values())
    row: dict[str, Any] = {"city": f"{family} {n:,}", "mode": mode, "peak_veh_per_hour": peak_rate}
    for label, start, duration, hours in (
        ("hour", "2026-12-01T07:00:00+07:00", "1h", [7]),
        ("day", "2026-12-01T00:00:00+07:00", "24h", list(range(24))),
    ):
        doc["name"] = f"memory-{label}-{family}{n}-{mode}"
        doc["start"], doc["duration"] = start, duration
        doc["traffic"]["demand"]["veh_per_hour"] = {
            f"{h:02d}": round(peak_rate * DAY_PROFILE[h]) for h in hours
        }
        scenario = work / f"memory-{label}.yaml"
        scenario.write_text(yaml.safe_dump(doc), encoding="utf-8")
        out = work / "runs" / f"memory-{label}"
        seconds, mib, _ = peak([str(TWIN), "run", str(scenario), "--out", str(out), "-q"], cwd=work)
        row[f"{label}_s"], row[f"{label}_mib"] = seconds, mib
        row[f"{label}_vehicles"] = sum(doc["traffic"]["demand"]["veh_per_hour"].values())
    print(
        f"\nMemory over a day ({row['city']} junctions, {mode}, peak {peak_rate:,} vehicles an"
        f" hour): one peak hour {row['hour_mib']:,.0f} MiB in {row['hour_s']:.0f} s; the whole"
        f" day ({row['day_vehicles']:,} vehicles) {row['day_mib']:,.0f} MiB in {row['day_s']:.0f} s"
        f" ({row['day_mib'] / row['hour_mib']:.2f}x the hour's peak)"
    )
    return row


STAGES = [
    ("build", "build_s", None),
    ("City.load", "load_s", None),
    ("routing, 20 sources", "routing_s", "routing_scipy_s"),
    ("run, micro", "micro_s", "micro_sumo_s"),
    ("run, meso", "meso_s", "meso_sumo_s"),
    ("KPIs", "kpis_s", "kpis_scan_s"),
    ("report", "report_s", None),
    ("K3i first render", "k3i_first_s", None),
    ("K3i update, p95", "k3i_update_p95_s", None),
]


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x."""
    import numpy as np

    if len(xs) < 2 or not all(y > 0 for y in ys):  # nan for a stage not measured
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def bench_scale(repeat: int) -> None:
    rows = [measure("osm", name, repeat) for name in ("jakarta", "helsinki")]  # type: ignore[arg-type]
    for family, n in _selected():
        print(f"(scale: {family}, about {n:,} junctions)", flush=True)
        rows.append(measure(family, n, repeat))
    (CACHE / "scale" / "results.json").write_text(json.dumps(rows, indent=1))
    print_scale(rows)
    if ("grid", 10000) in _selected():  # the K3i page under a day's load, on the largest net
        k3i_scene("grid", 10000)
    if ("grid", 1000) in _selected():  # memory bounded by the working set, not the run's length
        day_memory("grid", 1000, "micro")


def plot_scale(rows: list[dict[str, Any]], path: Path) -> None:
    """Each stage's time against junctions, log-log, one panel per stage, the baseline
    dashed (the plot in RESULTS.md)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in STAGES if s[1] != "load_s"]
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5), sharex=True)
    for ax, (label, key, base) in zip(axes.flat, shown, strict=False):
        for family, marker in (("grid", "o"), ("spider", "s"), ("random", "^"), ("osm", "*")):
            fam = sorted((r for r in rows if r["family"] == family), key=lambda r: r["junctions"])
            xs = [r["junctions"] for r in fam]
            if not fam or key not in fam[0]:
                continue
            (line,) = ax.loglog(xs, [r[key] for r in fam], marker=marker, label=family)
            if base:
                ax.loglog(
                    xs,
                    [r[base] for r in fam],
                    marker=marker,
                    ls="--",
                    alpha=0.5,
                    color=line.get_color(),
                )
        ax.set_title(label + (" (dashed: baseline)" if base else ""), fontsize=9)
        ax.set_xlabel("SUMO junctions", fontsize=8)
        ax.set_ylabel("seconds", fontsize=8)
    axes.flat[0].legend(fontsize=8)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"\n(plot: {path})")


def print_scale(rows: list[dict[str, Any]]) -> None:
    """The tables and the verdicts on the targets, from the measured rows."""
    plot_scale(rows, HERE / "scale.png")
    print("\n### scale: each stage's time and peak memory against the city's size\n")
    print(
        "| city | junctions | veh/h | build | load | routing (scipy) | micro (sumo) | "
        "meso (sumo) | KPIs (scan) | report | K3i: first render, update p95 | "
        "peak MiB: build, run micro (sumo) | completed, teleports (micro) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = r["city"] or f"{r['family']} {r['junctions']:,}"
        print(
            f"| {name} | {r['junctions']:,} | {r['veh_per_hour']:,} | {r['build_s']:.1f} s | "
            f"{r['load_s']:.2f} s | {r['routing_s'] * 1000:.1f} ms ({r['routing_scipy_s'] * 1000:.1f}) | "
            f"{r['micro_s']:.1f} s ({r['micro_sumo_s']:.1f}) | {r['meso_s']:.1f} s ({r['meso_sumo_s']:.1f}) | "
            f"{r['kpis_s'] * 1000:.0f} ms ({r['kpis_scan_s'] * 1000:.0f}) | {r['report_s']:.1f} s | "
            f"{r.get('k3i_first_s', float('nan')):.2f} s, "
            f"{r.get('k3i_update_p95_s', float('nan')) * 1000:.0f} ms | "
            f"{r['build_mib']:.0f}, {r['micro_mib']:.0f} ({r['micro_sumo_mib']:.0f}) | "
            f"{(r['micro_completed'] or 0):.1%}, {r['micro_teleports']} |",
            flush=True,
        )
    print("\n### scale: exponent of cost against junctions (log-log slope)\n")
    print("| stage | " + " | ".join(FAMILIES) + " | baseline |")
    print("|---|" + "---|" * (len(FAMILIES) + 1))
    for label, key, base in STAGES:
        cells, bases = [], []
        for family in FAMILIES:
            fam = [r for r in rows if r["family"] == family]
            xs = [r["junctions"] for r in fam]
            s = slope(xs, [r.get(key, float("nan")) for r in fam])
            cells.append(f"{s:.2f}" if s is not None else "–")
            if base:
                b = slope(xs, [r[base] for r in fam])
                bases.append(f"{family} {b:.2f}" if b is not None else "")
        print(
            f"| {label} | " + " | ".join(cells) + f" | {', '.join(x for x in bases if x) or '–'} |"
        )
    largest = max(rows, key=lambda r: r["junctions"])
    for mode in ("micro", "meso"):
        ratio = largest[f"{mode}_s"] / largest[f"{mode}_sumo_s"]
        verdict = "meets" if ratio <= 1.2 else "MISSES"
        print(
            f"\nLargest net ({largest['family']}, {largest['junctions']:,} junctions), {mode}: "
            f"the twin at {ratio:.2f}× plain sumo: {verdict} the 1.2× target."
        )
    speedup = largest["micro_s"] / largest["meso_s"]
    print(
        f"Meso {speedup:.1f}× faster than micro there: {'meets' if speedup >= 10 else 'MISSES'} the 10× target."
    )
    worst = min((r["routing_scipy_s"] / r["routing_s"], r["family"], r["junctions"]) for r in rows)
    print(
        f"Travel-time engine at least {worst[0]:.1f}× scipy on every size (lowest: {worst[1]}, "
        f"{worst[2]:,} junctions): {'meets' if worst[0] >= 2 else 'MISSES'} the 2× target."
    )


if __name__ == "__main__":
    # one city, for a quick look: python bench_scale.py grid 1000
    # or the K3i page on the runs measured last, added to them: python bench_scale.py k3i
    # or the K3i page under a day's units and incidents: python bench_scale.py k3i-scene grid 10000
    sys.path.insert(0, str(HERE))
    if sys.argv[1] == "k3i-scene":  # python bench_scale.py k3i-scene grid 10000
        k3i_scene(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "day":  # python bench_scale.py day grid 1000 micro
        day_memory(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "k3i":
        cached = CACHE / "scale" / "results.json"
        rows = json.loads(cached.read_text())
        for r in rows:
            folder = CACHE / "scale" / f"{r['family']}{r['city'] or r['junctions']}"
            if not folder.exists():  # generated nets are named by the size asked for
                folder = next(
                    f
                    for f in (CACHE / "scale").glob(f"{r['family']}*")
                    if (f / "city").exists()
                    and json.loads((f / "city" / "manifest.json").read_text())["counts"][
                        "sumo_junctions"
                    ]
                    == r["junctions"]
                )
            print(f"(K3i on {folder.name})", flush=True)
            r["k3i_first_s"], r["k3i_update_p50_s"], r["k3i_update_p95_s"] = k3i_timings(
                folder / "runs" / "micro", 3
            )
        cached.write_text(json.dumps(rows, indent=1))
        print_scale(rows)
    else:
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), 3), indent=1))
