"""dash: the dashboards' first render and updates in headless chromium (see run.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from _common import CACHE, HERE

sys.path.insert(0, str(HERE.parent))  # headless chromium with the tests' flags (MEASURED.md)
from tests.conftest import CHROMIUM, FLAGS


def serve_runs(folders: list[Path]) -> tuple[Any, int]:
    """``twin dash`` on these run folders in a process of its own, as a planner serves
    them; the process and its port, once it answers."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "dash", *map(str, folders), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    return server, port


def page_timings(
    browser: Any,
    port: int,
    path: str,
    graph: str,
    clock: str,
    control: str | None,
    action: str | None,
    repeat: int,
) -> tuple[float, float, float | None, float | None]:
    """A page's first render (median, empty cache and scripts cached) and its update
    (p50, p95 of 20: from a click to the new clock on screen), in seconds."""
    import numpy as np

    cold: list[float] = []
    warm: list[float] = []
    for _ in range(max(2, min(repeat, 3))):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})  # empty cache
        for visits in (cold, warm, warm):  # then the same page again, scripts cached
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(path if path.startswith("http") else f"http://127.0.0.1:{port}{path}")
            page.wait_for_selector(f"{graph} .js-plotly-plot .main-svg", timeout=120000)
            page.wait_for_function(
                f"(document.querySelector('{clock}') || {{}}).textContent > ''", timeout=120000
            )
            visits.append(time.perf_counter() - t0)
            page.close()
        context.close()
    if control is None:  # the floor has no controls
        return float(np.median(cold)), float(np.median(warm)), None, None
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"http://127.0.0.1:{port}{path}")
    page.wait_for_selector(f"{graph} .js-plotly-plot .main-svg", timeout=120000)
    page.wait_for_function(f"(document.querySelector('{clock}') || {{}}).textContent > ''")
    updates = []
    for k in range(20):  # the page's update callback, from a click to the new picture
        before = page.text_content(clock)
        t0 = time.perf_counter()
        if action == "slider":
            rail = page.locator(f"{control} .rc-slider-rail").bounding_box()
            x = rail["x"] + rail["width"] * (0.95 - 0.045 * k)
            page.mouse.click(x, rail["y"] + rail["height"] / 2)
        else:
            page.locator(f"{control} input").nth((k + 1) % 2).check()
        page.wait_for_function(
            f"document.querySelector('{clock}').textContent !== {before!r}", timeout=60000
        )
        updates.append(time.perf_counter() - t0)
    page.close()
    return (
        float(np.median(cold)),
        float(np.median(warm)),
        float(np.percentile(updates, 50)),
        float(np.percentile(updates, 95)),
    )


def bench_dash(repeat: int) -> None:
    """The dashboards' speed in a real browser (see the module docstring)."""
    import socket
    import subprocess

    from playwright.sync_api import sync_playwright

    from twin.city import build_city
    from twin.runs import run_scenario
    from twin.scenario import load_scenario

    city = build_city(out=CACHE / "helsinki", progress=False).city
    run, plan = CACHE / "rush-run", CACHE / "rush-accident-run"
    sc = load_scenario(HERE.parent / "scenarios" / "helsinki_morning_rush.yaml")
    sc = sc.model_copy(update={"city": str(city.path)})
    if not (run / "timeline.parquet").exists():
        run_scenario(sc, out=run, progress=False, scenario_dir=HERE.parent / "scenarios")
    if not (plan / "timeline.parquet").exists():  # the contingency page compares it with the run
        from twin.scenario import scenario_from_dict

        doc = sc.model_dump(mode="json", exclude_none=True)
        doc.update(
            name="rush-accident",
            events=[
                {
                    "type": "accident",
                    "id": "forum-crash",
                    "start": "07:05",
                    "duration": "20min",
                    "lanes": 2,
                    "at": {"lat": 60.16914, "lon": 24.93987},
                }
            ],
        )
        run_scenario(
            scenario_from_dict(doc),
            out=plan,
            progress=False,
            scenario_dir=HERE.parent / "scenarios",
        )
    server, port = serve_runs([run, plan])
    # the floor: a Dash page with one two-point graph, served the same way
    floor_app = CACHE / "dash_floor.py"
    floor_app.write_text(
        "import sys\nimport plotly.graph_objects as go\nfrom dash import Dash, Input, Output, callback, dcc, html\n"
        "app = Dash(__name__, serve_locally=True)\n"
        "app.layout = html.Div([html.Span(id='floor-clock'), dcc.Graph(id='floor-graph')])\n"
        "@callback(Output('floor-graph', 'figure'), Output('floor-clock', 'children'), Input('floor-clock', 'id'))\n"
        "def show(_):\n    return go.Figure(go.Scatter(x=[1, 2], y=[1, 2])), 'x'\n"
        "app.run(host='127.0.0.1', port=int(sys.argv[1]))\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        floor_port = s.getsockname()[1]
    floor = subprocess.Popen(
        [sys.executable, str(floor_app), str(floor_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # page: (address, its graph, what shows it is drawn and changes on an update, the control
    # and how it is used: a click along a time slider, or the other of two choices)
    pages = {
        "floor: one two-point Dash graph": (
            f"http://127.0.0.1:{floor_port}/",
            "#floor-graph",
            "#floor-clock",
            None,
            None,
        ),
        "K3i (/)": ("/", "#k3i-map", "#k3i-clock", "#k3i-time", "slider"),
        "unit board (/units)": ("/units", "#units-board", "#units-clock", "#units-time", "slider"),
        "contingency (/contingency)": (
            "/contingency",
            "#cont-map",
            "#cont-map .gtitle",
            "#cont-measure",
            "choice",
        ),
    }
    rows = []
    try:  # the servers stop whatever happens in the browser
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for label, (path, graph, clock, control, action) in pages.items():
                rows.append(
                    (
                        label,
                        *page_timings(browser, port, path, graph, clock, control, action, repeat),
                    )
                )
            browser.close()
    finally:
        for proc in (server, floor):
            proc.terminate()
            proc.wait(10)
    print(
        "\n### dash: the dashboards in headless chromium, on the default rush hour with its emergency load\n"
    )
    print(
        "| page | first render, empty cache (median) | first render, scripts cached (median) "
        "| update (a click, on the time slider or the map's measure, to the new picture), p50 | p95 |"
    )
    print("|---|---|---|---|---|")
    for label, cold_s, warm_s, p50, p95 in rows:
        upd = "–" if p50 is None else f"{p50 * 1000:.0f} ms"
        upd95 = "–" if p95 is None else f"{p95 * 1000:.0f} ms"
        print(f"| {label} | {cold_s:.2f} s | {warm_s:.2f} s | {upd} | {upd95} |")
    pages_only = [r for r in rows if r[3] is not None]
    floor_s = rows[0][1]
    ok_first = all(r[1] < 2.0 for r in pages_only)
    ok_update = all(r[4] < 0.3 for r in pages_only)
    print(
        f"\nTargets: first render under 2 s: {'met' if ok_first else 'missed'} (the floor, a plain "
        f"Dash page with one tiny graph, drawn by Dash's own full plotly.js, takes {floor_s:.2f} s "
        "here; the pages, drawn by the basic bundle, take "
        + ", ".join(f"{r[1] / floor_s:.2f}×" for r in pages_only)
        + f" the floor); update p95 under 300 ms: {'met' if ok_update else 'missed'} (measured in "
        "the browser, from the click to the new clock on screen: the callback and the drawing)."
    )
