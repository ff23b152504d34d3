"""Building city bundles from real extracts and checking what they hold."""

from __future__ import annotations

import math

import h3
import networkx as nx
import pytest
import shapely
import sumolib
from shapely.geometry import box

from twin.city import City, build_city


@pytest.fixture(scope="module")
def city(test_build) -> City:
    return test_build.city


def test_counts_match_the_graph_and_the_net(city):
    counts = city.manifest.counts
    g = city.graph
    assert counts["nodes"] == g.number_of_nodes() > 100
    assert counts["edges"] == g.number_of_edges() > 200
    assert counts["osm"]["drivable_ways"] > 100
    net = sumolib.net.readNet(str(city.net_path))
    roads = [e for e in net.getEdges() if e.allows("passenger") or e.allows("emergency")]
    assert counts["sumo_edges"] == len(roads)
    total_km = sum(d["length"] for *_, d in g.edges(data=True)) / 1000
    assert counts["edge_length_km"] == pytest.approx(total_km, abs=1e-3)
    # Each street once: shorter than the sum over both directions, longer than half of it.
    assert total_km / 2 < counts["road_length_km"] <= total_km


def test_edges_carry_typed_attributes_with_units(city):
    for u, v, d in city.graph.edges(data=True):
        assert d["length"] > 0
        assert 5 <= d["speed_kph"] <= 130
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6), rel=1e-3)
        assert isinstance(d["lanes"], int) and d["lanes"] >= 1
        assert isinstance(d["highway"], str) and d["highway"]
        assert all(isinstance(x, int) for x in d["osmid"]) and d["osmid"]
        start, end = d["geometry"].coords[0], d["geometry"].coords[-1]
        assert start == pytest.approx((city.graph.nodes[u]["x"], city.graph.nodes[u]["y"]))
        assert end == pytest.approx((city.graph.nodes[v]["x"], city.graph.nodes[v]["y"]))


def test_mapping_covers_at_least_95_percent_of_road_length(city):
    m = city.manifest.mapping
    assert m["mapped_length_share"] >= 0.95
    assert m["overlaid_length_share"] >= 0.95
    assert m["sumo_edges_mapped_share"] >= 0.95


def test_mapping_is_two_way_and_names_real_sumo_edges(city):
    net = sumolib.net.readNet(str(city.net_path), withInternal=True)
    rows = city.mapping
    assert len(rows) >= city.graph.number_of_edges() * 0.9
    for u, v, k, s, a, b in rows.itertuples(index=False):
        assert city.graph.has_edge(u, v, k)
        assert net.hasEdge(s), s
        assert 0 <= a < b
        assert s in city.sumo_edges_of(u, v, k)
        assert (u, v, k) in city.graph_edges_of(s)
    # A graph edge and its SUMO road edges run the same way: along the graph edge, the SUMO
    # edge's start comes before its end.
    checked = 0
    for u, v, k, s, _, _ in rows[~rows["sumo_edge"].str.startswith(":")].itertuples(index=False):
        line = city.graph[u][v][k]["geometry"]
        shape = net.getEdge(s).getShape()
        if line.length < 1e-4:  # a few metres: too short to tell a direction
            continue
        first = shapely.Point(net.convertXY2LonLat(*shape[0]))
        last = shapely.Point(net.convertXY2LonLat(*shape[-1]))
        assert line.project(first) < line.project(last), (u, v, k, s)
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("which", ["test_build", "jakarta_build"])
def test_pois_are_snapped_to_the_main_component_and_a_sumo_edge(request, which):
    city = request.getfixturevalue(which).city
    net = sumolib.net.readNet(str(city.net_path))
    main = max(nx.strongly_connected_components(city.graph), key=len)
    assert len(city.pois) >= 1
    for osm_id, poi in city.pois.iterrows():
        assert poi["node"] in main, osm_id
        assert poi["node_distance_m"] < 500
        edge = net.getEdge(poi["sumo_edge"])
        assert 0 <= poi["sumo_pos_m"] <= edge.getLength() + 1e-6
        assert poi["sumo_distance_m"] < 500
        assert poi["tags"]  # OSM tags are kept


def test_jakarta_pois_include_police_and_hospitals(jakarta_build):
    cats = jakarta_build.city.manifest.counts["pois_by_category"]
    # OSM maps a police post and two hospitals (RS YPK Mandiri, RS Sunda Kelapa) here.
    assert cats.get("police", 0) >= 1
    assert cats.get("hospital", 0) >= 2
    names = set(jakarta_build.city.pois["name"])
    assert "Rumah Sakit YPK Mandiri" in names


def test_buildings_are_snapped_to_the_road_nearest_them(jakarta_build, tmp_path, jakarta_osm):
    """Menteng's mapped buildings go to the SUMO road nearest each (within 200 m), with
    their floor area: the demand model's trip ends. A SUMO-net build with OSM takes them
    too; the same bundle reloads them."""
    from twin.city.osm import read_osm

    city = jakarta_build.city
    act = city.activity
    assert list(act.columns) == ["sumo_edge", "buildings", "floor_m2"]
    import sumolib

    net = sumolib.net.readNet(str(city.net_path))
    assert act["sumo_edge"].is_unique
    assert all(net.hasEdge(e) and not net.getEdge(e).isSpecial() for e in act["sumo_edge"])
    counts = city.manifest.counts
    mapped = read_osm(jakarta_osm).buildings
    assert 0.9 * len(mapped) <= counts["buildings"] == act["buildings"].sum() <= len(mapped)
    assert counts["building_floor_m2"] == pytest.approx(act["floor_m2"].sum(), abs=1)
    assert counts["building_floor_m2"] <= sum(f for *_, f in mapped)
    assert City.load(city.path).activity.equals(act)
    # the bundle's file set is part of the build: it lists activity.parquet
    assert city.manifest.files["activity"] == "activity.parquet"


def test_sectors_cover_the_graph_extent(city):
    sectors = city.sectors
    union = shapely.union_all(sectors.geometry.values)
    nodes = shapely.points([(d["x"], d["y"]) for _, d in city.graph.nodes(data=True)])
    assert shapely.contains(union, nodes).all() or shapely.covers(union, nodes).all()
    bb = city.manifest.bbox
    assert union.covers(box(bb["west"], bb["south"], bb["east"], bb["north"]))
    assert sectors["node_count"].sum() == city.graph.number_of_nodes()
    # H3 resolution 8 cells are 0.5-1 km².
    assert sectors["area_km2"].between(0.5, 1.0).all()
    assert list(sectors.index) == [f"S{i + 1:02d}" for i in range(len(sectors))]
    for _, row in sectors.iterrows():
        assert h3.is_valid_cell(row["h3"])
        assert row["geometry"].contains(shapely.Point(row["centroid_lon"], row["centroid_lat"]))
    assert sectors["road_length_m"].sum() / 1000 == pytest.approx(
        city.manifest.counts["road_length_km"], abs=1e-3
    )


def test_sector_poi_counts_add_up(jakarta_build):
    city = jakarta_build.city
    cols = [c for c in city.sectors.columns if c.startswith("poi_")]
    assert int(city.sectors[cols].to_numpy().sum()) == len(city.pois)
    assert city.sectors["poi_police"].sum() == city.manifest.counts["pois_by_category"]["police"]


def test_reload_gives_the_same_city(test_build):
    reloaded = City.load(test_build.city.path)
    assert reloaded == test_build.city
    assert City.load(test_build.city.path) == reloaded


def test_a_second_build_is_a_cached_no_op(test_build, test_pbf):
    path = test_build.city.path
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    again = build_city(test_pbf, out=path, progress=False)
    assert again.built is False
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*")} == before
    assert again.city == test_build.city


def test_force_rebuilds_into_the_same_content(tmp_path, test_pbf):
    out = tmp_path / "city"
    first = build_city(test_pbf, out=out, progress=False).city
    second = build_city(test_pbf, out=out, progress=False, force=True)
    assert second.built is True
    assert second.city.manifest.cache_key == first.manifest.cache_key
    assert second.city.graph.number_of_edges() == first.graph.number_of_edges()
    assert second.city.mapping.equals(first.mapping)
    assert not list(tmp_path.glob(".city.*")), "no temporary or old folder is left"


def test_manifest_records_sources_versions_and_attribution(city, test_pbf):
    m = city.manifest
    assert m.source_osm is not None and m.source_osm.format == "pbf"
    assert len(m.source_osm.sha256) == 64
    assert {"twin", "sumo", "osmnx"} <= set(m.versions)
    assert m.versions["sumo"].startswith("1.")
    assert m.crs["graph"] == "epsg:4326" and "+proj=utm" in m.crs["net"]
    assert m.attribution == "© OpenStreetMap contributors"
    assert "--junctions.join" in m.options["netconvert"]
    assert math.isfinite(m.build_seconds)


def test_sumo_net_build_maps_by_construction(tmp_path, berlin_net):
    city = build_city(sumo_net=berlin_net, out=tmp_path / "berlin", progress=False).city
    net = sumolib.net.readNet(str(berlin_net))
    roads = [e for e in net.getEdges() if e.allows("passenger") or e.allows("emergency")]
    assert city.graph.number_of_edges() == len(roads)
    assert city.manifest.mapping["mapped_length_share"] == 1.0
    assert set(city.mapping["sumo_edge"]) == {e.getID() for e in roads}
    some = roads[0]
    u, v, k = city.graph_edges_of(some.getID())[0]
    assert city.graph.nodes[u]["sumo_junction"] == some.getFromNode().getID()
    assert city.graph[u][v][k]["length"] == pytest.approx(some.getLength())
    # Berlin lies where Berlin is.
    assert 52.3 < city.manifest.bbox["south"] < 52.6 and 13.2 < city.manifest.bbox["west"] < 13.7
    assert city.manifest.source_osm is None and len(city.pois) == 0
    assert City.load(city.path) == city


def test_sumo_net_build_takes_pois_from_an_osm_file(tmp_path, jakarta_build, jakarta_osm):
    net = jakarta_build.city.net_path
    city = build_city(jakarta_osm, sumo_net=net, out=tmp_path / "jk", progress=False).city
    assert city.manifest.source_sumo_net is not None
    assert city.manifest.counts["pois_by_category"].get("police", 0) >= 1
    assert city.manifest.mapping["mapped_length_share"] == 1.0
    assert city.manifest.counts["buildings"] > 1400
