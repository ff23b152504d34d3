"""Reading OSM extracts: formats, drivable filter, POIs, clipped ways."""

from __future__ import annotations

import bz2
import doctest
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twin.city.osm as osm_module
from twin import InputError
from twin.city.osm import is_drivable, poi_category, read_osm, sniff_format


def test_docstring_examples():
    assert doctest.testmod(osm_module).failed == 0


def test_formats_are_sniffed_from_content(test_pbf, jakarta_osm, jakarta_plain, tmp_path):
    assert sniff_format(test_pbf) == "pbf"
    assert sniff_format(jakarta_osm) == "osm.gz"
    assert sniff_format(jakarta_plain) == "osm"
    bz = tmp_path / "jakarta.osm.bz2"
    bz.write_bytes(bz2.compress(jakarta_plain.read_bytes()))
    assert sniff_format(bz) == "osm.bz2"
    # A misleading suffix does not fool it.
    renamed = tmp_path / "jakarta.pbf"
    renamed.write_bytes(jakarta_plain.read_bytes())
    assert sniff_format(renamed) == "osm"


def test_every_format_reads_the_same_roads(jakarta_osm, jakarta_plain, tmp_path):
    bz = tmp_path / "j.osm.bz2"
    bz.write_bytes(bz2.compress(jakarta_plain.read_bytes()))
    extracts = [read_osm(p) for p in (jakarta_osm, jakarta_plain, bz)]
    assert extracts[0].counts["drivable_ways"] > 150
    for other in extracts[1:]:
        assert other.ways == extracts[0].ways
        assert other.nodes == extracts[0].nodes
        assert [p.osm_id for p in other.pois] == [p.osm_id for p in extracts[0].pois]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"highway": "primary"}, True),
        ({"highway": "residential", "oneway": "yes"}, True),
        ({"highway": "service"}, False),
        ({"highway": "footway"}, False),
        ({"highway": "trail"}, False),
        ({"highway": "primary", "motor_vehicle": "no"}, False),
        ({"highway": "tertiary", "access": "private"}, False),
        ({"highway": "residential", "area": "yes"}, False),
        ({"building": "yes"}, False),
    ],
)
def test_drivable_filter(tags, expected):
    assert is_drivable(tags) is expected


@pytest.mark.parametrize(
    ("tags", "category"),
    [
        ({"amenity": "police"}, "police"),
        ({"police": "checkpoint"}, "police"),
        ({"amenity": "hospital"}, "hospital"),
        ({"healthcare": "hospital"}, "hospital"),
        ({"amenity": "fire_station"}, "fire_station"),
        ({"amenity": "university"}, "school"),
        ({"amenity": "marketplace"}, "market"),
        ({"amenity": "place_of_worship", "religion": "muslim"}, "place_of_worship"),
        ({"railway": "station"}, "transport_hub"),
        ({"office": "government"}, "government"),
        ({"amenity": "cafe"}, None),
    ],
)
def test_poi_categories(tags, category):
    assert poi_category(tags) == category


def test_clipped_ways_keep_nodes_inside_the_extract(test_pbf):
    extract = read_osm(test_pbf)
    assert extract.warnings and "outside the extract" in extract.warnings[0]
    for refs, _ in extract.ways.values():
        assert len(refs) >= 2
        assert all(ref in extract.nodes for ref in refs)


def test_area_pois_get_a_centroid_inside_the_extract(jakarta_osm):
    extract = read_osm(jakarta_osm)
    hospitals = [p for p in extract.pois if p.category == "hospital"]
    assert hospitals, "OSM maps hospitals in central Jakarta"
    for p in hospitals:
        assert -6.21 < p.lat < -6.18 and 106.82 < p.lon < 106.84
        assert p.osm_id.startswith(("way/", "relation/", "node/"))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"hello world\n", "not an OpenStreetMap file"),
        (b"<html><body>not osm</body></html>", "not an OpenStreetMap file"),
        (b"", "not an OpenStreetMap file"),
    ],
)
def test_non_osm_files_are_refused(tmp_path, content, words):
    path = tmp_path / "city.osm"
    path.write_bytes(content)
    with pytest.raises(InputError, match=words) as info:
        read_osm(path)
    assert str(path) in str(info.value)


def test_corrupt_pbf_is_refused(tmp_path, test_pbf):
    path = tmp_path / "broken.osm.pbf"
    path.write_bytes(test_pbf.read_bytes()[:5000])
    with pytest.raises(InputError, match="corrupt") as info:
        read_osm(path)
    assert "broken.osm.pbf" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_osm(Path(tmp_path / "nowhere.osm.pbf"))


def test_buildings_are_read_with_their_floor_area(jakarta_osm, tmp_path):
    """Every closed way tagged ``building`` (Menteng has about 1,600) gives its centre and
    floor area: footprint by the shoelace formula times its levels."""
    extract = read_osm(jakarta_osm)
    assert extract.counts["buildings"] == len(extract.buildings) > 1500
    floors = sorted(f for *_, f in extract.buildings)
    assert 50 < floors[len(floors) // 2] < 2000  # a house or a shop, in m²
    west, south, east, north = 106.80, -6.22, 106.87, -6.16
    assert all(west < lon < east and south < lat < north for lon, lat, _ in extract.buildings)
    # a 20 m x 10 m building of three storeys, drawn by hand
    osm = tmp_path / "one.osm"
    d_lat, d_lon = 20 / 111_320.0, 10 / (111_320.0 * 0.99452)  # cos(6°) at -6° latitude
    corners = [
        (-6.0, 106.0),
        (-6.0, 106.0 + d_lon),
        (-6.0 + d_lat, 106.0 + d_lon),
        (-6.0 + d_lat, 106.0),
    ]
    osm.write_text(
        "<osm version='0.6'>"
        + "".join(
            f"<node id='{i + 1}' lat='{la}' lon='{lo}'/>" for i, (la, lo) in enumerate(corners)
        )
        + "<way id='1'><nd ref='1'/><nd ref='2'/><nd ref='3'/><nd ref='4'/><nd ref='1'/>"
        "<tag k='building' v='yes'/><tag k='building:levels' v='3'/></way></osm>"
    )
    ((lon, lat, floor),) = read_osm(osm, roads=False).buildings
    assert floor == pytest.approx(600, rel=0.01)
    assert lon == pytest.approx(106.0 + d_lon / 2) and lat == pytest.approx(-6.0 + d_lat / 2)


@settings(max_examples=200, deadline=None)
@given(
    levels=st.text(max_size=12),
    ring=st.lists(
        st.tuples(st.floats(-1e-3, 1e-3), st.floats(-1e-3, 1e-3)), min_size=0, max_size=8
    ),
)
def test_any_building_levels_and_ring_give_a_finite_floor_area_or_none(levels, ring):
    """Whatever mappers type into ``building:levels`` (``2``, ``2,5``, ``tiga``, ``1e9``,
    ``nan``) and however the ring is drawn, a building's floor area is a finite number
    of square metres at most 200 storeys of its footprint, or the building is left out."""
    import math

    class Node:
        def __init__(self, lon, lat):
            self.lon, self.lat = lon, lat
            self.location = self

        def valid(self):
            return True

    nodes = [Node(106.8 + x, -6.2 + y) for x, y in ring]
    nodes = nodes + nodes[:1]  # closed
    got = osm_module._building(nodes, {"building": "yes", "building:levels": levels})
    if got is not None:
        assert math.isfinite(got[2]) and got[2] > 0
        assert got[2] <= osm_module.MAX_LEVELS * 300_000  # (0.002°)² is about 50,000 m²
