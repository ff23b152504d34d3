"""The two-way mapping between road-graph edges and SUMO edges.

The road graph (osmnx, simplified) and the SUMO net (netconvert) are built from the same
OSM ways, but they cut the roads at different places: netconvert joins close junctions
into clusters and splits or merges ways on its own rules. So the mapping is geometric,
guided by OSM way ids:

- a SUMO edge is a candidate for a graph edge when its shape runs within
  ``tolerance_m`` of the graph edge and, where both know their OSM way ids, they share one;
- it must run the same way along the graph edge (its start projects before its end);
- the stretch of the graph edge it covers is recorded as ``[start_m, end_m]``.

Each row of the resulting table links one graph edge ``(u, v, key)`` to one SUMO edge, with
the stretch it covers. A graph edge is *mapped* when its SUMO edges cover at least half of
its length. Coverage is reported both ways: the share of graph length on mapped edges, and
the share of graph length actually overlain by SUMO edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd

MAPPING_COLUMNS = ["u", "v", "key", "sumo_edge", "start_m", "end_m"]


@dataclass(frozen=True)
class MappingCoverage:
    """How much of the road graph the mapping covers."""

    mapped_length_share: float
    overlaid_length_share: float
    mapped_edge_share: float
    sumo_edges_mapped_share: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def map_edges_geometric(
    edges: gpd.GeoDataFrame,
    sumo_edges: gpd.GeoDataFrame,
    *,
    tolerance_m: float = 15.0,
    sample_step_m: float = 10.0,
) -> pd.DataFrame:
    """Map graph edges to SUMO edges: road edges first, then junction-internal edges.

    netconvert joins the close OSM junctions of a complex intersection into one SUMO
    junction; the short graph edges between them become the junction's internal edges
    (ids starting with ``:``), which vehicles drive on too. So a graph edge that the road
    edges leave less than half covered is matched again against the internal edges.
    Parameters and result as :func:`match_edges`.
    """
    internal = sumo_edges["internal"].to_numpy(dtype=bool)
    first = match_edges(
        edges, sumo_edges[~internal], tolerance_m=tolerance_m, sample_step_m=sample_step_m
    )
    if not internal.any():
        return first
    shares = _covered_share(edges, first)
    left = edges[shares < 0.5]
    second = match_edges(
        left, sumo_edges[internal], tolerance_m=tolerance_m, sample_step_m=sample_step_m
    )
    table = pd.concat([first, second], ignore_index=True)
    return table.sort_values(["u", "v", "key", "start_m", "sumo_edge"], ignore_index=True)


def match_edges(
    edges: gpd.GeoDataFrame,
    sumo_edges: gpd.GeoDataFrame,
    *,
    tolerance_m: float = 15.0,
    sample_step_m: float = 10.0,
) -> pd.DataFrame:
    """Match graph edges to the given SUMO edges by shape and OSM way id.

    Parameters
    ----------
    edges
        Graph edges indexed by ``(u, v, key)``, with ``geometry`` in the metric CRS of the
        net and ``osmid`` (a list of OSM way ids).
    sumo_edges
        SUMO edges indexed by edge id, with ``geometry`` (the raw shape, from junction
        centre to junction centre) and ``orig_ids`` (a set of OSM way ids, maybe empty).
    tolerance_m
        How far a SUMO edge may lie from the graph edge it stands for.
    sample_step_m
        Spacing of the points along the graph edge that must all lie within tolerance.

    Returns
    -------
    pandas.DataFrame
        One row per (graph edge, SUMO edge) pair, columns :data:`MAPPING_COLUMNS`, sorted.
    """
    import shapely

    tree = shapely.STRtree(sumo_edges.geometry.values)
    s_geoms = sumo_edges.geometry.values
    s_ids = sumo_edges.index.to_numpy()
    s_orig = sumo_edges["orig_ids"].to_numpy()
    s_start = shapely.points(shapely.get_coordinates(shapely.get_point(s_geoms, 0)))
    s_end = shapely.points(shapely.get_coordinates(shapely.get_point(s_geoms, -1)))

    g_geoms = edges.geometry.values
    pairs_g, pairs_s = tree.query(g_geoms, predicate="dwithin", distance=tolerance_m)
    rows: list[tuple[int, int, int, str, float, float]] = []
    index = edges.index.to_numpy()
    osmids = edges["osmid"].to_numpy()
    for gi, si in zip(pairs_g.tolist(), pairs_s.tolist(), strict=True):
        ways = s_orig[si]
        if ways and not ways.intersection(osmids[gi]):
            continue
        g = g_geoms[gi]
        length = g.length
        t0 = g.project(s_start[si])
        t1 = g.project(s_end[si])
        a, b = max(t0, 0.0), min(t1, length)
        if b - a <= 0.0 or (b - a) < 0.25 * min(length, s_geoms[si].length):
            continue
        n = max(2, int(np.ceil((b - a) / sample_step_m)) + 1)
        samples = shapely.line_interpolate_point(g, np.linspace(a, b, n))
        if shapely.distance(samples, s_geoms[si]).max() > tolerance_m:
            continue
        u, v, key = index[gi]
        rows.append((int(u), int(v), int(key), str(s_ids[si]), round(a, 3), round(b, 3)))
    table = pd.DataFrame(rows, columns=MAPPING_COLUMNS)
    return table.sort_values(["u", "v", "key", "start_m", "sumo_edge"], ignore_index=True)


def coverage(edges: gpd.GeoDataFrame, mapping: pd.DataFrame, n_sumo_edges: int) -> MappingCoverage:
    """The coverage figures of a mapping (see the module docstring).

    ``n_sumo_edges`` counts the net's road edges (not junction-internal ones).
    """
    lengths = edges["length"]
    total = float(lengths.sum())
    share = _covered_share(edges, mapping)
    mapped = share >= 0.5
    return MappingCoverage(
        mapped_length_share=float(lengths[mapped].sum() / total) if total else 0.0,
        overlaid_length_share=float((share * lengths).sum() / total) if total else 0.0,
        mapped_edge_share=float(mapped.mean()) if len(mapped) else 0.0,
        sumo_edges_mapped_share=(
            mapping.loc[~mapping["sumo_edge"].str.startswith(":"), "sumo_edge"].nunique()
            / n_sumo_edges
            if n_sumo_edges
            else 0.0
        ),
    )


def _covered_share(edges: gpd.GeoDataFrame, mapping: pd.DataFrame) -> pd.Series:
    """Per graph edge, the share of its shape that the mapped SUMO edges overlie."""
    overlaid = {}
    for key, group in mapping.groupby(["u", "v", "key"], sort=False):
        overlaid[key] = _union_length(group["start_m"].to_numpy(), group["end_m"].to_numpy())
    covered = pd.Series(overlaid, dtype=float).reindex(edges.index, fill_value=0.0)
    # Stretches are measured on the metric shape, so compare with the shape's own length.
    shape_len = edges.geometry.length.replace(0.0, np.nan)
    return (covered / shape_len).clip(upper=1.0).fillna(0.0)


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Total length of the union of intervals ``[starts[i], ends[i]]``."""
    order = np.argsort(starts, kind="stable")
    total, cur_a, cur_b = 0.0, None, None
    for a, b in zip(starts[order], ends[order], strict=True):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a
    return total
