"""The twin as a stranger installs it: an sdist and a wheel built from it, the wheel
installed into a fresh venv, and the shipped morning rush run and the dashboards served from
a folder that is not the checkout.

This is what would catch package data left out of the wheel (the default posts file, the
dashboard pages and assets) or a path that walks up from ``__file__`` into the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import sign_in_link

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"/": "k3i", "/units": "units", "/contingency": "cont"}


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The sdist and wheel, built as a package index would (the wheel from the sdist), the
    wheel installed into a fresh venv: its bin folder and a clean environment."""
    dist = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    _run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        cwd=dist,
        env=env,
        timeout=900,
    )
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    venv = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=dist, env=env, timeout=120)
    bin_ = venv / "bin"
    _run(
        [str(bin_ / "python"), "-m", "pip", "install", "--quiet", str(wheels[0])],
        cwd=dist,
        env=env,
        timeout=900,
    )
    env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
    return bin_, env


@pytest.mark.slow
def test_the_wheel_holds_its_package_data(installed):
    bin_, env = installed
    listing = _run(
        [
            str(bin_ / "python"),
            "-c",
            "from importlib import resources as r; import json;"
            "print(json.dumps([str(p.name) for d in ('twin.dashboards.pages', 'twin.dashboards.assets', 'twin.city.data')"
            " for p in r.files(d).iterdir()]))",
        ],
        cwd=bin_,
        env=env,
        timeout=60,
    )
    names = set(json.loads(listing))
    assert {"k3i.py", "units.py", "contingency.py"} <= names
    assert {"plotly-basic.min.js", "style.css", "helsinki_posts.geojson"} <= names


@pytest.mark.slow
def test_a_wheel_runs_the_morning_rush_and_serves_every_page(installed, tmp_path, page):
    bin_, env = installed
    work = tmp_path / "planner"  # not the checkout: only the scenarios copied beside it
    shutil.copytree(ROOT / "scenarios", work / "scenarios")
    _run([str(bin_ / "twin"), "build", "--out", "cities/helsinki"], cwd=work, env=env, timeout=600)
    said = _run(
        [str(bin_ / "twin"), "run", "scenarios/helsinki_morning_rush.yaml", "--quiet"],
        cwd=work,
        env=env,
        timeout=900,
    )
    assert "KPIs of helsinki-morning-rush (complete)" in said and "Incidents" in said, said
    run = work / "runs" / "helsinki-morning-rush"
    assert (run / "timeline.parquet").is_file() and (run / "report.html").is_file()
    assert json.loads((run / "run.json").read_text())["status"] == "complete"

    port = _free_port()
    server = subprocess.Popen(
        [str(bin_ / "twin"), "dash", str(run), "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        link = sign_in_link(server)  # no users: twin dash prints a one-time link
        assert link.startswith(f"{base}/?token=")
        with pytest.raises(urllib.error.HTTPError) as refused:  # nothing answers without it
            urllib.request.urlopen(f"{base}/_dash-layout", timeout=5)
        assert refused.value.code == 401
        page.goto(link)
        layout = page.request.get(f"{base}/_dash-layout").text()
        assert "_pages_content" in layout
        for path, prefix in PAGES.items():  # each page drawn in a browser, with its title
            page.goto(f"{base}{path}")
            page.wait_for_function(
                f"(document.querySelector('#{prefix}-title') || {{}}).innerText > ''",
                timeout=60000,
            )
        assert page.errors == []
        assert any("plotly-basic.min.js" in url for url in page.scripts)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_wheel_evaluates_and_optimises_plans_on_dask(installed, tmp_path, helsinki_city):
    """Outside the checkout, the wheel's Dask workers run replications (the city bundle
    travels to them) and the search writes its folder."""
    import yaml

    bin_, env = installed
    work = tmp_path / "planner"
    work.mkdir()
    scenario = work / "busy.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "busy",
                "city": str(helsinki_city.path),
                "start": "2026-12-01T07:00:00+02:00",
                "duration": "2h",
                "seed": 3,
                "response": {
                    "call_centre": {
                        "pools": [
                            {
                                "name": "all",
                                "numbers": ["110", "112", "119", "113"],
                                "call_takers": 2,
                            }
                        ]
                    },
                    "incidents": {"rates": {"crime": 3}},
                    "units": [{"name": "P", "type": "police_car", "count": 2, "base": "police"}],
                },
            }
        )
    )
    plan = work / "four.yaml"
    plan.write_text(
        yaml.safe_dump({"name": "four-cars", "response": {"units": [{"name": "P", "count": 4}]}})
    )
    said = _run(
        [
            str(bin_ / "twin"),
            "evaluate",
            str(scenario),
            "--plan",
            str(plan),
            "-n",
            "3",
            "--workers",
            "2",
            "-q",
        ],
        cwd=work,
        env=env,
        timeout=900,
    )
    assert "3 replications of each plan on 2 local workers" in said, said
    assert (work / "runs" / "busy-evaluation" / "replications.parquet").is_file()
    said = _run(
        [
            str(bin_ / "twin"),
            "optimise",
            str(scenario),
            "-n",
            "2",
            "--candidates",
            "2",
            "--rounds",
            "1",
            "--workers",
            "2",
            "-q",
        ],
        cwd=work,
        env=env,
        timeout=900,
    )
    assert "Plans simulated, cheapest first" in said, said
    assert (work / "runs" / "busy-optimise" / "optimise.json").is_file()
