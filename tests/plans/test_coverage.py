"""Coverage from posts: against networkx, from the bundle or a posts file, and bad files."""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
import pytest

from twin import InputError
from twin.city.facilities import Facility, load_facilities, read_facilities
from twin.plans.coverage import coverage

TWIN = [sys.executable, "-m", "twin.cli"]


def test_coverage_equals_a_networkx_count(helsinki_city):
    facilities, said = load_facilities(helsinki_city, "police")
    assert "posts from" in said and "helsinki_posts.geojson" in said and len(facilities) == 3
    result = coverage(helsinki_city, facilities, 120)
    from twin.routing import TravelTimeEngine

    engine = TravelTimeEngine.from_city(helsinki_city)
    starts = {engine.node_of((f.lat, f.lon)) for f in facilities}
    times = nx.multi_source_dijkstra_path_length(
        helsinki_city.graph, starts, cutoff=120, weight="travel_time"
    )
    assert result.node_share == pytest.approx(len(times) / helsinki_city.graph.number_of_nodes())
    total = sum(d["length"] for *_, d in helsinki_city.graph.edges(data=True))
    covered = sum(d["length"] for _, v, d in helsinki_city.graph.edges(data=True) if v in times)
    assert result.road_share == pytest.approx(covered / total)
    assert result.sectors["road_km"].sum() == pytest.approx(total / 1000, abs=0.01)
    assert ((result.sectors["share"] >= 0) & (result.sectors["share"] <= 1)).all()
    # more time, more coverage
    assert coverage(helsinki_city, facilities, 600).road_share >= result.road_share


def test_facilities_from_the_bundle(helsinki_city, tmp_path):
    found, said = load_facilities(helsinki_city, "fire")
    assert len(found) == 1 and "city bundle (OpenStreetMap)" in said
    found, said = load_facilities(helsinki_city, "hospital")  # none in OSM: the posts file's
    assert found and "helsinki_posts.geojson" in said
    with pytest.raises(
        InputError, match=r"no hospital facility in OpenStreetMap and there is no posts file"
    ):
        load_facilities(helsinki_city, "hospital", shipped=tmp_path)
    (tmp_path / "helsinki_posts.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
        '{"type": "Point", "coordinates": [24.94, 60.17]}, "properties": {"kind": "police"}}]}'
    )
    with pytest.raises(
        InputError, match=r"no hospital facility in OpenStreetMap and its posts file .* has none"
    ):
        load_facilities(helsinki_city, "hospital", shipped=tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        (
            "posts.csv",
            "name,lat,lon,kind\nA,60.17,24.94,police\nB,60.17,x,police\n",
            "posts.csv, line 3: lat and lon must be numbers",
        ),
        (
            "posts.csv",
            "name,lat,lon,kind\nA,60.17,24.94,army\n",
            "line 2: kind must be one of police, hospital, fire",
        ),
        (
            "posts.geojson",
            '{"type": "FeatureCollection", "features": [{"geometry": {"type": "LineString"}}]}',
            "features[0]: geometry must be a Point",
        ),
        ("posts.geojson", "not json", "posts.geojson: line 1, column 1: not valid JSON"),
        ("posts.geojson", "[1, 2]", "not a GeoJSON FeatureCollection"),
        ("posts.csv", "name,lat,lon,kind\n", "holds no facility"),
    ],
)
def test_bad_facility_files_name_the_row(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=words.replace("[", r"\[").replace("]", r"\]")):
        read_facilities(path)


def test_coverage_command(tmp_path, helsinki_city):
    posts = tmp_path / "mine.csv"
    posts.write_text("name,lat,lon,kind\nStation,60.1700,24.9410,police\n")
    proc = subprocess.run(
        [
            *TWIN,
            "coverage",
            str(helsinki_city.path),
            "--within",
            "3min",
            "--from",
            str(posts),
            "--out",
            str(tmp_path / "map.html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "1 facilities from" in proc.stdout
        and "of the road length" in proc.stdout
        and "S07" in proc.stdout
    )
    html = (tmp_path / "map.html").read_text()
    assert "Station" in html and "© OpenStreetMap contributors" in html
    proc = subprocess.run(
        [*TWIN, "coverage", str(helsinki_city.path), "--within", "soon"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "--within" in proc.stderr
    assert Facility("x", "police", 1.0, 2.0).kind == "police"


def test_a_facility_far_from_every_road_is_refused(tmp_path, helsinki_city):
    posts = tmp_path / "far.csv"
    posts.write_text("name,lat,lon,kind\nFar away,-6.2,106.8,police\nNear,60.1700,24.9410,police\n")
    with pytest.raises(
        InputError,
        match=r"Far away \(-6\.20000, 106\.80000\) is [\d,.]+ km from the nearest road of helsinki",
    ):
        coverage(helsinki_city, read_facilities(posts), 120)
    proc = subprocess.run(
        [
            *TWIN,
            "place-posts",
            str(helsinki_city.path),
            "--n",
            "1",
            "--within",
            "1min",
            "--today",
            str(posts),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Far away" in proc.stderr and "Traceback" not in proc.stderr
