"""Reading an OpenStreetMap extract: drivable ways and points of interest.

One pass of pyosmium over the extract (``.osm``, ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf``)
keeps two things:

- the drivable ways and their nodes, written out again as a small, self-contained OSM XML
  file. Both the osmnx road graph and the SUMO net are built from that one file, so they
  describe the same roads. Ways clipped by the extract keep their longest run of nodes
  that the extract holds, so osmnx never meets a missing node.
- the points of interest that police and emergency planning needs (:data:`POI_CATEGORIES`),
  each with its OSM id, tags and a point (areas give their centroid).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from twin._errors import InputError

#: Values of ``highway`` that are roads for cars. osmnx's ``network_type="drive"`` filter
#: excludes a list of types instead, which lets non-standard values through (central
#: Helsinki has 2.9 km of ``highway=trail``) that netconvert then drops; a list of what
#: both osmnx users and SUMO's OSM type map call a road keeps the graph and the net alike.
DRIVABLE_HIGHWAY = frozenset(
    "motorway motorway_link trunk trunk_link primary primary_link secondary secondary_link "
    "tertiary tertiary_link unclassified residential living_street road".split()
)
EXCLUDED_SERVICE = frozenset(
    "alley driveway emergency_access parking parking_aisle private".split()
)

#: The POI categories of a city bundle, in the order a feature is tested against them; the
#: first match wins. Each entry is a list of ``(key, values)`` pairs; ``None`` means any value.
POI_CATEGORIES: dict[str, list[tuple[str, frozenset[str] | None]]] = {
    "police": [("amenity", frozenset({"police"})), ("police", None)],
    "hospital": [("amenity", frozenset({"hospital"})), ("healthcare", frozenset({"hospital"}))],
    "fire_station": [("amenity", frozenset({"fire_station"}))],
    "school": [("amenity", frozenset({"school", "college", "university"}))],
    "market": [
        ("amenity", frozenset({"marketplace"})),
        ("shop", frozenset({"mall", "supermarket", "department_store"})),
    ],
    "place_of_worship": [("amenity", frozenset({"place_of_worship"}))],
    "transport_hub": [
        ("public_transport", frozenset({"station"})),
        ("railway", frozenset({"station", "halt"})),
        ("amenity", frozenset({"bus_station", "ferry_terminal"})),
        ("aeroway", frozenset({"aerodrome"})),
    ],
    "government": [
        ("office", frozenset({"government"})),
        ("amenity", frozenset({"townhall", "courthouse"})),
    ],
}

#: Node tags that netconvert uses (signals, stops, crossings, barriers); other node tags
#: are not copied into the road file.
_NODE_KEYS = ("highway", "crossing", "railway", "barrier", "traffic_signals", "junction")


def is_drivable(tags: Any) -> bool:
    """Whether a way with these OSM tags is a road for cars.

    The road types of :data:`DRIVABLE_HIGHWAY`, with osmnx's ``drive`` rules on access.

    >>> is_drivable({"highway": "residential"})
    True
    >>> is_drivable({"highway": "footway"})
    False
    >>> is_drivable({"highway": "trail"})
    False
    >>> is_drivable({"highway": "primary", "access": "private"})
    False
    """
    if tags.get("highway") not in DRIVABLE_HIGHWAY:
        return False
    if tags.get("area") == "yes" or tags.get("access") == "private":
        return False
    if tags.get("motor_vehicle") == "no" or tags.get("motorcar") == "no":
        return False
    return tags.get("service") not in EXCLUDED_SERVICE


def poi_category(tags: Any) -> str | None:
    """The POI category of a feature with these tags, or ``None``.

    >>> poi_category({"amenity": "police", "name": "Polsek Menteng"})
    'police'
    >>> poi_category({"healthcare": "hospital"})
    'hospital'
    >>> poi_category({"amenity": "bench"}) is None
    True
    """
    for category, rules in POI_CATEGORIES.items():
        for key, values in rules:
            value = tags.get(key)
            if value is not None and (values is None or value in values):
                return category
    return None


@dataclass
class Poi:
    """A point of interest read from OSM."""

    osm_id: str  # "node/123", "way/456" or "relation/789"
    category: str
    name: str
    lon: float
    lat: float
    tags: dict[str, str]


@dataclass
class OsmExtract:
    """What :func:`read_osm` keeps of an extract."""

    path: Path
    format: str
    sha256: str
    counts: dict[str, int]
    ways: dict[int, tuple[list[int], dict[str, str]]] = field(repr=False)
    nodes: dict[int, tuple[float, float, dict[str, str]]] = field(repr=False)
    pois: list[Poi] = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    #: each mapped building (a closed way tagged ``building``) as (lon, lat, floor area m²):
    #: its footprint times its ``building:levels`` (1 where not given)
    buildings: list[tuple[float, float, float]] = field(default_factory=list, repr=False)

    def write_roads(self, path: Path) -> None:
        """Write the drivable ways and their nodes as OSM XML, sorted by id."""
        with path.open("w", encoding="utf-8") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
            out.write('<osm version="0.6" generator="smart-policing-twin">\n')
            for nid in sorted(self.nodes):
                lon, lat, tags = self.nodes[nid]
                head = f'  <node id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"'
                if not tags:
                    out.write(head + "/>\n")
                    continue
                out.write(head + ">\n")
                for k, v in sorted(tags.items()):
                    out.write(f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>\n")
                out.write("  </node>\n")
            for wid in sorted(self.ways):
                refs, tags = self.ways[wid]
                out.write(f'  <way id="{wid}" version="1">\n')
                for ref in refs:
                    out.write(f'    <nd ref="{ref}"/>\n')
                for k, v in sorted(tags.items()):
                    out.write(f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>\n")
                out.write("  </way>\n")
            out.write("</osm>\n")


def sniff_format(path: Path) -> str:
    """The pyosmium format name of an OSM file, judged from its first bytes.

    Raises
    ------
    InputError
        If the file is missing, unreadable, or neither OSM XML nor OSM PBF.
    """
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    if head[:2] == b"\x1f\x8b":
        opener, suffix = gzip.open, "osm.gz"
    elif head[:3] == b"BZh":
        opener, suffix = bz2.open, "osm.bz2"
    elif b"OSMHeader" in head[:32]:
        return "pbf"
    else:
        opener, suffix = None, "osm"
    if opener is not None:
        try:
            with opener(path, "rb") as fh:
                head = fh.read(512)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: compressed file is corrupt ({exc})") from exc
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<?xml"):
        text = text[text.find(b"?>") + 2 :].lstrip() if b"?>" in text else b""
        while text.startswith(b"<!--") and b"-->" in text:
            text = text[text.find(b"-->") + 3 :].lstrip()
    if not text.startswith(b"<osm"):
        shown = head[:40].decode("utf-8", "replace").strip() or "nothing"
        raise InputError(
            f"{path}: not an OpenStreetMap file (expected OSM XML or PBF, it starts with {shown!r})"
        )
    return suffix


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, hex-encoded."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_osm(path: Path, *, roads: bool = True) -> OsmExtract:
    """Read the drivable ways and the POIs of an OSM extract.

    Parameters
    ----------
    path
        An ``.osm``, ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf`` file.
    roads
        Keep the drivable ways (off when only POIs are wanted, as for a SUMO-net build).

    Raises
    ------
    InputError
        If the file is missing, is not OSM, or is corrupt. The message names the file.
    """
    import osmium

    path = Path(path)
    fmt = sniff_format(path)
    counts = {"nodes": 0, "ways": 0, "relations": 0, "highway_ways": 0, "drivable_ways": 0}
    ways: dict[int, tuple[list[int], dict[str, str]]] = {}
    locations: dict[int, tuple[float, float]] = {}
    node_tags: dict[int, dict[str, str]] = {}
    pois: dict[str, Poi] = {}
    buildings: list[tuple[float, float, float]] = []
    clipped = 0

    def add_poi(osm_id: str, tags: Any, lon: float, lat: float) -> None:
        category = poi_category(tags)
        if category is not None:
            kept = {t.k: t.v for t in tags}
            # the local name first; Jakarta's mappers often give only name:id or name:en
            name = kept.get("name") or kept.get("name:id") or kept.get("name:en") or ""
            pois[osm_id] = Poi(osm_id, category, name, lon, lat, kept)

    processor = osmium.FileProcessor(osmium.io.File(str(path), fmt)).with_locations()
    processor = processor.with_areas(osmium.filter.TagFilter(*_area_tag_pairs()))
    try:
        for obj in processor:
            if obj.is_node():
                counts["nodes"] += 1
                if not len(obj.tags):  # most nodes are bare way geometry
                    continue
                if roads:
                    wanted = {k: obj.tags[k] for k in _NODE_KEYS if k in obj.tags}
                    if wanted:
                        node_tags[obj.id] = wanted
                if obj.location.valid():
                    add_poi(f"node/{obj.id}", obj.tags, obj.location.lon, obj.location.lat)
            elif obj.is_way():
                counts["ways"] += 1
                tags = obj.tags
                if "highway" in tags:
                    counts["highway_ways"] += 1
                if roads and is_drivable(tags):
                    run = _longest_valid_run(obj.nodes)
                    if len(run) < len(obj.nodes):
                        clipped += 1
                    if len(run) >= 2:
                        counts["drivable_ways"] += 1
                        ways[obj.id] = ([ref for ref, _, _ in run], {t.k: t.v for t in tags})
                        for ref, lon, lat in run:
                            locations[ref] = (lon, lat)
                if tags.get("building", "no") != "no" and obj.is_closed():
                    building = _building(obj.nodes, tags)
                    if building is not None:
                        buildings.append(building)
                if poi_category(tags) is not None:
                    pts = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
                    if pts:
                        lon = sum(p[0] for p in pts) / len(pts)
                        lat = sum(p[1] for p in pts) / len(pts)
                        add_poi(f"way/{obj.id}", tags, lon, lat)
            elif obj.is_relation():
                counts["relations"] += 1
            elif obj.is_area():
                osm_id = f"{'way' if obj.from_way() else 'relation'}/{obj.orig_id()}"
                centroid = _area_centroid(obj)
                if centroid is not None:
                    add_poi(osm_id, obj.tags, *centroid)
    except (RuntimeError, ValueError, osmium.InvalidLocationError) as exc:
        # libosmium's words: a parse error, an illegal id, a coordinate it cannot read
        kind = "PBF" if fmt == "pbf" else "OSM XML"
        raise InputError(f"{path}: corrupt or unreadable {kind} ({exc})") from exc

    if counts["nodes"] == 0 and counts["ways"] == 0:
        raise InputError(f"{path}: the OSM file holds no nodes and no ways")
    nodes = {nid: (lon, lat, node_tags.get(nid, {})) for nid, (lon, lat) in locations.items()}
    warnings = []
    if clipped:
        warnings.append(
            f"{clipped} drivable ways reference nodes outside the extract; "
            "each keeps its longest run of nodes inside it"
        )
    counts["pois"] = len(pois)
    counts["buildings"] = len(buildings)
    return OsmExtract(
        path=path,
        format=fmt,
        sha256=file_sha256(path),
        counts=counts,
        ways=ways,
        nodes=nodes,
        pois=[pois[k] for k in sorted(pois, key=_osm_id_key)],
        warnings=warnings,
        buildings=buildings,
    )


def _area_tag_pairs() -> list[tuple[str, str]]:
    """(key, value) pairs of the POI rules, for pyosmium's area pre-filter."""
    pairs = []
    for rules in POI_CATEGORIES.values():
        for key, values in rules:
            if values is not None:
                pairs.extend((key, v) for v in sorted(values))
    return pairs


def _longest_valid_run(nodes: Any) -> list[tuple[int, float, float]]:
    """The longest run of consecutive way nodes whose location the extract holds."""
    best: list[tuple[int, float, float]] = []
    run: list[tuple[int, float, float]] = []
    for n in nodes:
        if n.location.valid():
            run.append((n.ref, n.lon, n.lat))
        else:
            if len(run) > len(best):
                best = run
            run = []
    return run if len(run) > len(best) else best


#: Storeys a building may be said to have: a ``building:levels`` outside this range is a
#: mapping error (it would make one building outweigh a city's trips), and counts as 1.
MAX_LEVELS = 200
_EARTH_M_PER_DEG = 111_320.0


def _building(nodes: Any, tags: Any) -> tuple[float, float, float] | None:
    """A closed building way's centroid (lon, lat) and floor area (m²: its footprint by the
    shoelace formula on local metres, times its levels); ``None`` if it has no area."""
    pts = [(n.lon, n.lat) for n in nodes if n.location.valid()]
    if len(pts) < 4:
        return None
    lon = np.array([p[0] for p in pts])
    lat = np.array([p[1] for p in pts])
    x = (lon - lon[0]) * _EARTH_M_PER_DEG * math.cos(math.radians(float(lat.mean())))
    y = (lat - lat[0]) * _EARTH_M_PER_DEG
    footprint = 0.5 * abs(float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])))
    if not footprint > 0:
        return None
    try:
        levels = float(tags.get("building:levels", "1").replace(",", "."))
    except ValueError:
        levels = 1.0
    if not 1 <= levels <= MAX_LEVELS:
        levels = 1.0
    return float(lon[:-1].mean()), float(lat[:-1].mean()), footprint * levels


def _area_centroid(area: Any) -> tuple[float, float] | None:
    """The centroid (lon, lat) of a pyosmium area, or ``None`` if it has no valid ring."""
    from shapely.geometry import MultiPolygon, Polygon

    polygons = []
    for outer in area.outer_rings():
        shell = [(n.lon, n.lat) for n in outer if n.location.valid()]
        holes = [
            [(n.lon, n.lat) for n in inner if n.location.valid()]
            for inner in area.inner_rings(outer)
        ]
        if len(shell) >= 4:
            polygons.append(Polygon(shell, [h for h in holes if len(h) >= 4]))
    if not polygons:
        return None
    shape = MultiPolygon(polygons) if len(polygons) > 1 else polygons[0]
    point = shape.centroid if shape.is_valid else shape.representative_point()
    return (point.x, point.y)


def _osm_id_key(osm_id: str) -> tuple[str, int]:
    kind, _, num = osm_id.partition("/")
    return (kind, int(num))
