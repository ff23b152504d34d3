"""The city bundle on disk and in memory.

A bundle is a folder that ``twin build`` writes and every other part of the twin reads
with :meth:`City.load`; nothing else re-reads OSM::

    manifest.json          what was built, from what, with which tools and options
    graph/nodes.parquet    the drivable road graph (see twin.city.roads)
    graph/edges.parquet
    net/city.net.xml       the SUMO net
    mapping.parquet        graph edge (u, v, key) <-> SUMO edge, with the stretch covered
    pois.geojson           police, hospitals, fire stations, schools, markets, ...
    sectors.geojson        H3 sectors with their statistics (see twin.city.sectors)
    activity.parquet       mapped buildings' floor area by SUMO edge (trips start and end there)
    logs/                  what netconvert printed
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from twin._errors import BundleError
from twin.city.roads import graphs_equal, load_graph

FORMAT_VERSION = 2
ATTRIBUTION = "© OpenStreetMap contributors"
MANIFEST = "manifest.json"
FILES = {
    "nodes": "graph/nodes.parquet",
    "edges": "graph/edges.parquet",
    "net": "net/city.net.xml",
    "mapping": "mapping.parquet",
    "pois": "pois.geojson",
    "sectors": "sectors.geojson",
    "activity": "activity.parquet",
}


class SourceFile(BaseModel):
    """An input file of a build."""

    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str
    format: str


class Manifest(BaseModel):
    """``manifest.json``: enough to say what a bundle is and to rebuild it."""

    model_config = ConfigDict(extra="forbid")
    format_version: int
    name: str
    source_osm: SourceFile | None
    source_sumo_net: SourceFile | None
    bbox: dict[str, float]
    crs: dict[str, Any]
    driving_side: dict[str, str]  # {"side": "left" | "right", "decided_by": "..."}
    counts: dict[str, Any]
    mapping: dict[str, Any]
    sectors: dict[str, Any]
    versions: dict[str, str]
    options: dict[str, Any]
    files: dict[str, str]
    built_at: str
    build_seconds: float
    cache_key: str
    warnings: list[str]
    attribution: str
    licence: str


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a bundle folder, or a :class:`BundleError` naming what is wrong."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"{folder}: no city bundle here (not a folder)")
    if not path.exists():
        raise BundleError(
            f"{folder}: not a city bundle (no {MANIFEST}); build one with 'twin build'"
        )
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BundleError(f"{path}: invalid manifest ({problems})") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {manifest.format_version}, this twin reads {FORMAT_VERSION}; "
            "rebuild it with 'twin build --force'"
        )
    return manifest


def write_geojson(frame: Any, path: Path) -> None:
    """Write a GeoDataFrame as a GeoJSON FeatureCollection, its index as each feature's id."""
    from shapely.geometry import mapping

    features = []
    for idx, row in zip(
        frame.index, frame.drop(columns="geometry").to_dict("records"), strict=True
    ):
        props = {k: _plain(v) for k, v in row.items()}
        geom = frame.geometry.loc[idx]
        features.append(
            {"type": "Feature", "id": idx, "properties": props, "geometry": mapping(geom)}
        )
    doc = {
        "type": "FeatureCollection",
        "attribution": ATTRIBUTION,
        "index": frame.index.name,
        "columns": [str(c) for c in frame.columns],
        "features": features,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, sort_keys=True), encoding="utf-8")


def read_geojson(path: Path) -> Any:
    """Read a file written by :func:`write_geojson` back into the same GeoDataFrame."""
    import geopandas as gpd
    from shapely.geometry import shape

    doc = json.loads(path.read_text(encoding="utf-8"))
    features = doc["features"]
    index = pd.Index([f["id"] for f in features], name=doc.get("index"))
    columns = [c for c in doc.get("columns", []) if c != "geometry"] or None
    props = pd.DataFrame([f["properties"] for f in features], index=index, columns=columns)
    geoms = [shape(f["geometry"]) for f in features]
    frame = gpd.GeoDataFrame(props, geometry=gpd.GeoSeries(geoms, index=index), crs="EPSG:4326")
    return frame[doc["columns"]] if "columns" in doc else frame


@dataclass(eq=False)
class City:
    """A city twin: its road graph, SUMO net, POIs, sectors and the graph-net mapping.

    Load a built bundle with :meth:`City.load`::

        >>> city = City.load("cities/helsinki")  # doctest: +SKIP
        >>> city.graph.number_of_nodes(), len(city.sectors)  # doctest: +SKIP
        (404, 8)
    """

    path: Path
    manifest: Manifest
    graph: nx.MultiDiGraph
    pois: Any  # geopandas.GeoDataFrame indexed by osm_id
    sectors: Any  # geopandas.GeoDataFrame indexed by sector_id
    mapping: pd.DataFrame = field(repr=False)

    @classmethod
    def load(cls, path: str | Path) -> City:
        """Load a bundle written by ``twin build``.

        Raises
        ------
        BundleError
            If the folder is not a bundle, or a file of it is missing or unreadable.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        for key, rel in manifest.files.items():
            if not (folder / rel).exists():
                raise BundleError(
                    f"{folder}: the bundle is incomplete ({key} file {rel} is missing)"
                )
        try:
            graph = load_graph(folder / "graph", crs=manifest.crs["graph"], name=manifest.name)
            mapping = pd.read_parquet(folder / manifest.files["mapping"])
            pois = read_geojson(folder / manifest.files["pois"])
            sectors = read_geojson(folder / manifest.files["sectors"])
        except (OSError, ValueError, KeyError) as exc:
            raise BundleError(f"{folder}: a bundle file cannot be read ({exc})") from exc
        return cls(folder, manifest, graph, pois, sectors, mapping)

    @property
    def name(self) -> str:
        return self.manifest.name

    @cached_property
    def activity(self) -> pd.DataFrame:
        """The mapped buildings' floor area by SUMO road edge (``sumo_edge``,
        ``buildings``, ``floor_m2``); empty for a city without mapped buildings, or built
        before bundles held it."""
        rel = self.manifest.files.get("activity")
        if rel is None:
            return pd.DataFrame({"sumo_edge": [], "buildings": [], "floor_m2": []})
        try:
            return pd.read_parquet(self.path / rel)
        except (OSError, ValueError) as exc:
            raise BundleError(f"{self.path}: a bundle file cannot be read ({exc})") from exc

    @property
    def net_path(self) -> Path:
        """The SUMO net of the city."""
        return self.path / self.manifest.files["net"]

    @cached_property
    def _edge_to_sumo(self) -> dict[tuple[int, int, int], list[str]]:
        out: dict[tuple[int, int, int], list[str]] = {}
        for u, v, k, s in self.mapping[["u", "v", "key", "sumo_edge"]].itertuples(index=False):
            out.setdefault((u, v, k), []).append(s)
        return out

    @cached_property
    def _sumo_to_edge(self) -> dict[str, list[tuple[int, int, int]]]:
        out: dict[str, list[tuple[int, int, int]]] = {}
        for u, v, k, s in self.mapping[["u", "v", "key", "sumo_edge"]].itertuples(index=False):
            out.setdefault(s, []).append((u, v, k))
        return out

    def sumo_edges_of(self, u: int, v: int, key: int = 0) -> list[str]:
        """The SUMO edges that stand for graph edge ``(u, v, key)``, in driving order."""
        return list(self._edge_to_sumo.get((u, v, key), []))

    def graph_edges_of(self, sumo_edge: str) -> list[tuple[int, int, int]]:
        """The graph edges that SUMO edge ``sumo_edge`` lies along."""
        return list(self._sumo_to_edge.get(sumo_edge, []))

    def summary(self) -> dict[str, Any]:
        """The figures ``twin info`` prints."""
        m = self.manifest
        return {
            "name": m.name,
            "path": str(self.path),
            "source": (m.source_osm or m.source_sumo_net).path,  # type: ignore[union-attr]
            "bbox": m.bbox,
            "driving_side": m.driving_side,
            "counts": m.counts,
            "mapping": m.mapping,
            "sectors": m.sectors,
            "versions": m.versions,
            "built_at": m.built_at,
            "attribution": m.attribution,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, City):
            return NotImplemented
        return (
            self.manifest == other.manifest
            and graphs_equal(self.graph, other.graph)
            and _frames_equal(self.pois, other.pois)
            and _frames_equal(self.sectors, other.sectors)
            and self.mapping.reset_index(drop=True).equals(other.mapping.reset_index(drop=True))
        )

    __hash__ = None  # type: ignore[assignment]


def _frames_equal(a: Any, b: Any) -> bool:
    if list(a.columns) != list(b.columns) or not a.index.equals(b.index):
        return False
    if a.empty:
        return True
    if not a.geometry.geom_equals_exact(b.geometry, tolerance=0).all():
        return False
    return pd.DataFrame(a.drop(columns="geometry")).equals(pd.DataFrame(b.drop(columns="geometry")))


def _plain(value: Any) -> Any:
    """A JSON-ready Python value from a numpy or pandas scalar."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value
