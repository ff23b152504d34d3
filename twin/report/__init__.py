"""Reports: Plotly figures of a run, and the self-contained HTML files that hold them.

The figure builders take timelines (via :mod:`twin.kpi`) and a city, and return Plotly
figures; the dashboards reuse them. Maps are drawn on the city's own network and sectors
in plain lon/lat axes, with no tile server, so reports open offline. Plotly's script is
embedded once per file. Everything drawn from OSM data carries "© OpenStreetMap
contributors".
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from twin import kpi
from twin._files import write_text_atomic
from twin.city.bundle import ATTRIBUTION

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _clock_axis(start: pd.Timestamp | None, seconds: pd.Series) -> Any:
    return (start + pd.to_timedelta(seconds, unit="s")) if start is not None else seconds / 60


#: The window of the moving mean that the speed chart draws: a minute's sample is noise.
SMOOTH_S = 300


def speed_figure(
    runs: dict[str, Any],
    *,
    start: pd.Timestamp | None = None,
    events: pd.DataFrame | None = None,
    reference: str | None = None,
) -> go.Figure:
    """Network speed (top) and travel-time index (bottom) over time, one line per run in
    one colour on both panels (the ``reference`` run grey), as moving means over
    :data:`SMOOTH_S`; road events shaded."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    colors = _run_colors(list(runs), reference)
    for name, timeline in runs.items():
        net = kpi.network_over_time(timeline)
        if not len(net):
            continue
        step = float(net["t"].diff().median()) if len(net) > 1 else SMOOTH_S
        window = max(1, round(SMOOTH_S / step)) if step > 0 else 1
        smooth = net[["speed_kmh", "tti"]].rolling(window, min_periods=1, center=True).mean()
        x = _clock_axis(start, net["t"])
        line = {"color": colors[name], "width": 2}
        fig.add_scatter(
            x=x, y=smooth["speed_kmh"], name=name, line=line, legendgroup=name, row=1, col=1
        )
        fig.add_scatter(
            x=x,
            y=smooth["tti"],
            name=name,
            line=line,
            legendgroup=name,
            showlegend=False,
            row=2,
            col=1,
        )
    if events is not None:
        for row in events.itertuples():
            x0 = _clock_axis(start, pd.Series([row.start_s]))[0]
            end = row.end_s if pd.notna(row.end_s) else None
            x1 = _clock_axis(start, pd.Series([end]))[0] if end is not None else None
            if x1 is None:
                fig.add_vline(x=x0, line={"color": "grey", "dash": "dash"})
            else:
                fig.add_vrect(x0=x0, x1=x1, fillcolor="orange", opacity=0.15, line_width=0)
            fig.add_annotation(
                x=x0,
                y=1.02,
                yref="paper",
                text=f"{row.event_type}: {row.event_id}",
                showarrow=False,
                xanchor="left",
            )
    fig.update_layout(
        title=f"Network speed and travel-time index ({SMOOTH_S // 60}-minute moving means)",
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 70},
        height=560,
    )
    fig.update_yaxes(title_text="speed (km/h)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="travel-time index", tickformat=".1f", row=2, col=1)
    fig.update_xaxes(title_text="local time" if start is not None else "minutes", row=2, col=1)
    return fig


#: Colour scales by which way is better: red is always the bad end.
SCALES = {
    ("lower", False): "YlOrRd",  # more is worse: high values red
    ("higher", False): "YlOrRd_r",  # more is better: low values red
    ("lower", True): "RdBu_r",  # a difference, more is worse: rises red
    ("higher", True): "RdBu",  # a difference, more is better: falls red
}


def sector_map(
    city: Any,
    values: pd.Series,
    *,
    title: str,
    colorbar: str,
    better: str = "lower",
    diverging: bool = False,
    digits: int = 2,
) -> go.Figure:
    """Sectors coloured by ``values`` (indexed by sector id) over the city's roads. The
    scale runs to red at the bad end: ``better`` says which way is good ("lower" for
    congestion, response times and crime, "higher" for coverage and rasa aman); a
    ``diverging`` map of differences is white at zero. Each sector is labelled with its
    value to ``digits`` decimals, on a white ground so that it reads on a dark cell."""
    import plotly.colors as pc

    fig = go.Figure()
    xs: list[float | None] = []
    ys: list[float | None] = []
    for _, _, data in city.graph.edges(data=True):
        cx, cy = data["geometry"].xy
        xs += [*cx, None]
        ys += [*cy, None]
    finite = values.dropna()
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if diverging:
        span = max(abs(lo), abs(hi))
        span = span if span >= 10**-digits else 1.0  # no difference: a plain ±1 scale
        lo, hi = -span, span
    scale = SCALES[(better, diverging)]
    for sid, row in city.sectors.iterrows():
        value = values.get(sid)
        ring = row["geometry"].exterior.coords
        if value is None or pd.isna(value):
            color = "#d9d9d9"  # no roads, no data: grey, never a colour of the scale
        else:
            frac = 0.5 if hi == lo else (float(value) - lo) / (hi - lo)
            color = pc.sample_colorscale(scale, [min(max(frac, 0.0), 1.0)])[0]
        if value is None or pd.isna(value):
            label = "no data"
        else:
            label = f"{value:+.{digits}f}" if diverging else f"{value:,.{digits}f}"
        fig.add_scatter(
            x=[p[0] for p in ring],
            y=[p[1] for p in ring],
            fill="toself",
            fillcolor=color,
            line={"color": "white", "width": 1},
            opacity=0.75,
            mode="lines",
            showlegend=False,
            hoveron="fills",
            name=f"{sid}: {label}",
            text=f"{sid}: {label}",
        )
        fig.add_annotation(
            x=row["centroid_lon"],
            y=row["centroid_lat"],
            text=f"{sid}<br>{label}",
            showarrow=False,
            font={"size": 10, "color": "#212121"},
            bgcolor="rgba(255,255,255,0.8)",
            borderpad=1,
        )
    fig.add_scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": "#444", "width": 1},
        hoverinfo="skip",
        showlegend=False,
    )
    fig.add_scatter(
        x=[None],
        y=[None],
        mode="markers",
        showlegend=False,
        hoverinfo="skip",
        marker={
            "colorscale": scale,
            "cmin": lo,
            "cmax": hi,
            "color": [lo],
            "showscale": True,
            "colorbar": {"title": colorbar},
        },
    )
    west, south, east, north = city.sectors.total_bounds
    pad = 0.05 * max(east - west, north - south)
    fig.update_layout(
        title=title,
        height=650,
        xaxis={
            "title": "longitude",
            "showgrid": False,
            "range": [west - pad, east + pad],
            "constrain": "domain",
        },
        yaxis={
            "title": "latitude",
            "showgrid": False,
            "range": [south - pad, north + pad],
            "scaleanchor": "x",
            "scaleratio": 1 / _cos_lat(city),
            "constrain": "domain",
        },
        annotations=[
            *fig.layout.annotations,
            {
                "text": ATTRIBUTION,
                "xref": "paper",
                "yref": "paper",
                "x": 1,
                "y": -0.12,
                "showarrow": False,
                "font": {"size": 10},
            },
        ],
        margin={"t": 60},
    )
    return fig


#: The colour of the reference (baseline) run in charts: grey, the run compared with it in
#: colour, never red, which reads as bad.
REFERENCE_COLOR = "#757575"


def _run_colors(names: list[str], reference: str | None) -> dict[str, str]:
    """Each run's colour in a chart: the reference grey, the others from the palette."""
    others = iter([c for c in _COLORS if c != "#d62728"])
    return {n: REFERENCE_COLOR if n == reference else next(others) for n in names}


def delay_histogram(runs: dict[str, Any], *, reference: str | None = None) -> go.Figure:
    """Distribution of each trip's delay (time loss), one trace per run, all on the same
    bins (so that bars of two runs compare), the ``reference`` run in grey."""
    losses = {
        name: kpi.connect(timeline)
        .execute("SELECT time_loss_s / 60 AS m FROM timeline WHERE kind = 'trip'")
        .df()["m"]
        for name, timeline in runs.items()
    }
    top = max((float(x.max()) for x in losses.values() if len(x)), default=1.0)
    size = _nice_step(top / 40)
    colors = _run_colors(list(runs), reference)
    fig = go.Figure()
    for name, loss in losses.items():
        fig.add_histogram(
            x=loss,
            name=name,
            opacity=0.6,
            marker={"color": colors[name]},
            xbins={"start": 0, "end": top + size, "size": size},
            autobinx=False,
        )
    fig.add_vline(x=kpi.DELAYED_S / 60, line={"dash": "dash"}, annotation_text="delayed")
    fig.update_layout(
        title=f"Vehicles delayed: time lost per trip (bins of {size:g} min)",
        xaxis_title="minutes lost",
        yaxis_title="trips",
        barmode="overlay",
    )
    return fig


def _nice_step(raw: float) -> float:
    """The round step (1, 2 or 5 times a power of ten) at or above ``raw``."""
    import math

    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def utilisation_figure(timeline: Any) -> go.Figure:
    """Each unit's share of time on duty committed to incidents, against the rule of 60."""
    util = kpi.utilisation(timeline)
    fig = go.Figure()
    for i, (agency, part) in enumerate(util.groupby("agency", sort=True)):
        fig.add_bar(
            x=part["unit"],
            y=part["utilisation"],
            name=agency,
            marker={"color": _COLORS[i % len(_COLORS)]},
            text=[f"{u:.0%}" for u in part["utilisation"].fillna(0)],
            textposition="outside",
        )
    fig.add_hline(y=kpi.RULE_OF_60, line={"dash": "dash"}, annotation_text="rule of 60")
    fig.update_layout(
        title="Unit utilisation: share of time on duty committed",
        yaxis={"title": "share", "tickformat": ".0%", "range": [0, 1.1]},
    )
    return fig


def pending_figure(
    timeline: Any, *, start: pd.Timestamp | None = None, end_s: float | None = None
) -> go.Figure:
    """The pending queue (incident needs waiting for a free unit) over the whole run (to
    ``end_s``), in whole needs."""
    pending = kpi.pending_over_time(timeline)
    t, n = list(pending["t"]), list(pending["pending"])
    if end_s is not None:  # the queue as it stood, to the end of the run
        t, n = [0.0, *t, end_s], [0, *n, n[-1] if n else 0]
    fig = go.Figure()
    fig.add_scatter(
        x=_clock_axis(start, pd.Series(t, dtype=float)),
        y=n,
        mode="lines",
        line={"shape": "hv"},
        name="pending",
    )
    fig.update_layout(
        title="Pending queue: needs waiting for a unit",
        yaxis={
            "title": "needs",
            "rangemode": "tozero",
            "dtick": max(1.0, _nice_step(max(n, default=0) / 6)),  # whole needs only
            "tickformat": "d",
        },
    )
    return fig


def safety_figure(timeline: Any, *, start: pd.Timestamp | None = None) -> go.Figure:
    """Each sector's rasa aman index over time, with the city's mean."""
    safety = kpi.safety_over_time(timeline)
    fig = go.Figure()
    for i, (sector, part) in enumerate(safety.groupby("sector", sort=True)):
        fig.add_scatter(
            x=_clock_axis(start, part["t"]),
            y=part["rasa_aman"],
            mode="lines",
            name=sector,
            line={"width": 1, "color": _COLORS[i % len(_COLORS)]},
            opacity=0.6,
        )
    mean = safety.groupby("t")["rasa_aman"].mean()
    fig.add_scatter(
        x=_clock_axis(start, pd.Series(mean.index)),
        y=mean.to_numpy(),
        mode="lines",
        name="city mean",
        line={"width": 3, "color": "black"},
    )
    fig.update_layout(title="Rasa aman (sense of safety) by sector", yaxis_title="index, 0-100")
    return fig


def safety_compare_figure(
    runs: dict[str, Any], *, start: pd.Timestamp | None = None, reference: str | None = None
) -> go.Figure:
    """The city's mean rasa aman over time, one line per run (the ``reference`` grey)."""
    colors = _run_colors(list(runs), reference)
    fig = go.Figure()
    for name, timeline in runs.items():
        mean = kpi.safety_over_time(timeline).groupby("t")["rasa_aman"].mean()
        fig.add_scatter(
            x=_clock_axis(start, pd.Series(mean.index)),
            y=mean.to_numpy(),
            mode="lines",
            name=name,
            line={"width": 2, "color": colors[name]},
        )
    fig.update_layout(
        title="Rasa aman (sense of safety), mean over sectors",
        yaxis_title="index, 0-100 (higher is safer)",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def mean_sector_tti(timeline: Any) -> pd.Series:
    """Each sector's mean travel-time index over the run."""
    return kpi.sector_over_time(timeline).groupby("sector")["tti"].mean()


def kpi_table_html(table: pd.DataFrame) -> str:
    """An HTML table of :func:`twin.kpi.compare` output (or one run's KPIs): each run, each
    difference marked with its verdict (▲ better, ▼ worse, ≈ no detectable difference, †
    moved only because trips were cut short at closures; none for one run each), ± the
    95 % interval for ensembles, and the unit."""
    runs = [c for c in table.columns if c not in ("kpi", "label", "unit", "better")]
    runs = [c for c in runs if not c.startswith(("verdict ", "n ", "± "))]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["KPI", *runs, "unit"])
    body = []
    cut = False
    for r in table.to_dict("records"):
        cells = [f"<td>{html.escape(r['label'])}</td>"]
        for c in runs:
            text = kpi.format_interval(r[c], r.get(f"± {c}"), r["unit"], signed=c.startswith("Δ"))
            if c.startswith("Δ "):
                verdict = r.get(f"verdict {c[2:]}")
                text = f"{text} {kpi.VERDICT_SIGNS.get(verdict or '', '')}".rstrip()
                cut = cut or verdict == "cut_short"
            cells.append(f"<td>{html.escape(text)}</td>")
        cells.append(f"<td>{html.escape(r['unit'])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = f"<p>{html.escape(kpi.difference_note(table))}</p>" if kpi.difference_note(table) else ""
    if cut:
        note += f"<p>{html.escape(kpi.CUT_SHORT_NOTE)}</p>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def write_html(path: Path, *, title: str, intro: str, sections: list[tuple[str, Any]]) -> None:
    """Write a self-contained report, all or nothing: each section is (heading, figure or
    HTML string)."""
    parts = []
    first = True
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, go.Figure):
            parts.append(pio.to_html(content, full_html=False, include_plotlyjs=first))
            first = False
        else:
            parts.append(content)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }} .warn {{ background: #fde2e1; padding: 1em; border-left: 4px solid #d62728; }}
table.text td, table.text th {{ text-align: left; }}
tr.good td {{ background: #e5f5e0; }} tr.late td {{ background: #fff4d6; }} tr.bad td {{ background: #fde2e1; }}
footer {{ margin-top: 3em; font-size: 0.85em; color: #666; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{intro}
{"".join(parts)}
<footer>Map data {ATTRIBUTION}. Made by smart-policing-twin.</footer>
</body></html>
"""
    write_text_atomic(path, doc)


#: Where a browser that prints PDF may be (``TWIN_CHROMIUM`` first).
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def print_pdf(page: Path, pdf: Path, *, timeout: float = 120.0) -> Path:
    """Print an HTML report (``page``, with its figures drawn) as ``pdf``, with a headless
    Chromium; all or nothing. An InputError says what is missing or what went wrong."""
    import os
    import shutil
    import subprocess
    import tempfile

    from twin._errors import InputError

    browser = os.environ.get("TWIN_CHROMIUM") or next(
        (found for name in BROWSERS if (found := shutil.which(name))), None
    )
    if not browser:
        raise InputError(
            f"{pdf}: printing PDF needs Chromium (apt-get install chromium, or set "
            "TWIN_CHROMIUM to a Chrome or Chromium), which draws the figures and prints"
        )
    pdf = Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".twin-pdf-", dir=pdf.parent) as tmp:
        out = Path(tmp) / "printed.pdf"
        args = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--virtual-time-budget=15000",  # the figures' scripts run before it prints
            f"--print-to-pdf={out}",
            Path(page).resolve().as_uri(),
        ]
        if os.geteuid() == 0:
            args.insert(2, "--no-sandbox")  # Chromium's sandbox refuses root
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputError(f"{pdf}: Chromium did not print within {timeout:g} s") from None
        except OSError as exc:
            raise InputError(f"{pdf}: cannot start {browser} to print ({exc.strerror})") from None
        if not out.exists() or out.stat().st_size == 0:
            said = " ".join(proc.stderr.split()[-30:])
            raise InputError(f"{pdf}: Chromium ({browser}) printed nothing: {said}")
        out.replace(pdf)
    return pdf


@dataclass(frozen=True)
class Tiles:
    """A slippy-map tile server for the map's background, for use online: ``url`` with
    ``{z}``, ``{x}`` and ``{y}`` (e.g. ``https://tile.openstreetmap.org/{z}/{x}/{y}.png``),
    and the attribution its licence asks for. The browser fetches the tiles; the twin's
    own roads and sectors are drawn over them."""

    url: str
    attribution: str = "Tiles © OpenStreetMap contributors"
    most: int = 16  # tiles at most: the deepest zoom that covers the city with as many

    def __post_init__(self) -> None:
        missing = [k for k in ("{z}", "{x}", "{y}") if k not in self.url]
        if missing or not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"a tile URL is http(s) with {{z}}, {{x}} and {{y}} in it, got {self.url!r}"
            )

    def images(self, south: float, west: float, north: float, east: float) -> list[dict[str, Any]]:
        """The tiles over a box, as plotly layout images placed in longitude/latitude."""
        import math

        def tile(lat: float, lon: float, z: int) -> tuple[int, int]:
            n = 2**z
            y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
            return int((lon + 180) / 360 * n), int(y)

        def corner(x: int, y: int, z: int) -> tuple[float, float]:  # north-west: lat, lon
            n = 2**z
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n)))), x / n * 360 - 180

        z = 19
        while z > 0:
            (x0, y0), (x1, y1) = tile(north, west, z), tile(south, east, z)
            if (x1 - x0 + 1) * (y1 - y0 + 1) <= self.most:
                break
            z -= 1
        images = []
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                top, left = corner(x, y, z)
                bottom, right = corner(x + 1, y + 1, z)
                images.append(map_image(self.url.format(z=z, x=x, y=y), left, bottom, right, top))
        return images


def map_image(
    source: str, west: float, south: float, east: float, north: float, **more: Any
) -> dict[str, Any]:
    """A picture (a URL or a data URI) as a plotly layout image that covers a box of the
    map's longitude/latitude axes, under the traces."""
    return dict(
        source=source,
        xref="x",
        yref="y",
        x=west,
        y=north,
        sizex=east - west,
        sizey=north - south,
        sizing="stretch",
        xanchor="left",
        yanchor="top",
        layer="below",
        **more,
    )


def _cos_lat(city: Any) -> float:
    import math

    bb = city.manifest.bbox
    return math.cos(math.radians((bb["south"] + bb["north"]) / 2))


# -- the K3i map (twin.dashboards) -----------------------------------------------------------

#: Status colours, and the sign shown beside each word: colour is never the only signal.
#: A sector with no data is grey and "?": unknown is not aman.
STATUS_STYLE = {
    "aman": ("#2e7d32", "✓"),
    "waspada": ("#f9a825", "!"),
    "rawan": ("#c62828", "✖"),
    kpi.NO_DATA: ("#9e9e9e", "?"),
}
#: Road speed bands (share of the free-flow speed) and their colours.
SPEED_BANDS = ((0.0, 0.4, "#b71c1c"), (0.4, 0.7, "#ef6c00"), (0.7, 10.0, "#546e7a"))
#: Unit states: marker symbol on the map, colour, and fill pattern on the unit board. Each
#: state has a colour of its own, far from the others', and a symbol and a pattern of its
#: own, so that the states never differ by colour alone.
UNIT_STYLE = {
    "available": ("circle", "#1565c0", ""),
    "dispatched": ("triangle-up", "#ef6c00", "/"),
    "en_route": ("triangle-right", "#6a1b9a", "\\"),
    "on_scene": ("square", "#c62828", "x"),
    "transporting": ("diamond", "#00897b", "-"),
    "at_hospital": ("hexagon", "#6d4c41", "+"),
    "returning": ("circle-open", "#2e7d32", "."),
    "off_duty": ("x", "#9e9e9e", "|"),
}
_UNKNOWN_UNIT_STYLE = ("circle", "#424242", "")


#: Road geometry is simplified to this tolerance (degrees, about 2 m) for the maps: a map
#: engine draws a city's roads the same way, and a whole city has too many vertices to send.
ROAD_TOLERANCE_DEG = 2e-5


def road_lines(city: Any) -> pd.DataFrame:
    """Each road of the city's graph as a polyline with its SUMO edges: columns x, y (numpy
    arrays, each ending with a NaN so that roads drawn in one trace stay apart),
    sumo_edges (list), for colouring roads by simulated speed, and its box (west, south,
    east, north). The polylines are simplified (:data:`ROAD_TOLERANCE_DEG`)."""
    import shapely

    mapping = pd.read_parquet(city.path / "mapping.parquet")
    by_edge = mapping.groupby(["u", "v", "key"])["sumo_edge"].apply(list)
    keys, lines = [], []
    for u, v, k, data in city.graph.edges(keys=True, data=True):
        keys.append((u, v, k))
        lines.append(data["geometry"])
    simple = shapely.simplify(np.asarray(lines, dtype=object), ROAD_TOLERANCE_DEG)
    rows = []
    for key, line in zip(keys, simple, strict=True):
        x, y = line.xy
        x, y = np.asarray(x), np.asarray(y)
        rows.append(
            {
                "x": np.append(x, np.nan),
                "y": np.append(y, np.nan),
                "sumo_edges": by_edge.get(key, []),
                "west": x.min(),
                "south": y.min(),
                "east": x.max(),
                "north": y.max(),
            }
        )
    return pd.DataFrame(rows, columns=["x", "y", "sumo_edges", "west", "south", "east", "north"])


#: Up to this many sectors, or open incidents, the K3i map names each one in text on the
#: map; beyond, a sector shows its status's sign, an incident its star, and both are named
#: on hover (as a map engine drops labels that would cover each other).
MAP_LABELS_MAX = 60
#: The K3i map's drawing area on a wide screen (pixels), and how many times finer than that
#: its picture of the roads is drawn, so that it stays sharp on a screen of twice the
#: pixels or zoomed in two times (deeper zooms draw a new picture of the zoomed window).
MAP_PX = (900, 560)
PICTURE_SCALE = 2
#: The roads' line on the map, in screen pixels (the slow roads are drawn twice as wide).
ROAD_WIDTH_PX = 1.5


def road_image(
    city: Any, roads: pd.DataFrame, box: tuple[float, float, float, float] | None = None
) -> dict[str, Any]:
    """The roads drawn into a transparent PNG in the free-flow colour, as a plotly layout
    image placed on the K3i map's longitude/latitude axes: every road, or those crossing
    ``box`` (west, south, east, north: the window of a zoomed map).

    A map engine draws a city's roads as a base layer of tiles and only what changes over
    it; so does the K3i map: the browser draws one picture instead of every vertex of every
    road at each new moment (on a 10,000-junction city, about 200,000 vertices of SVG). The
    slow roads are drawn over it as lines. The picture is rendered with matplotlib's Agg,
    anti-aliased, :data:`PICTURE_SCALE` times the pixels of the map's area
    (:data:`MAP_PX`), in the map's aspect (a degree of latitude is ``1/cos(latitude)``
    degrees of longitude long)."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display: the picture only
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    west, south, east, north = box or _road_box(roads)
    wide = max(east - west, 1e-9) * _cos_lat(city)
    high = max(north - south, 1e-9)
    scale = PICTURE_SCALE * min(MAP_PX[0] / wide, MAP_PX[1] / high)
    px_x, px_y = max(1, round(wide * scale)), max(1, round(high * scale))
    if box is not None and len(roads):
        on = (
            (roads["east"] >= west)
            & (roads["west"] <= east)
            & (roads["north"] >= south)
            & (roads["south"] <= north)
        )
        roads = roads[on.to_numpy()]
    dpi = 100
    fig = Figure(figsize=(px_x / dpi, px_y / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    lines = [np.column_stack((x[:-1], y[:-1])) for x, y in zip(roads["x"], roads["y"], strict=True)]
    width_pt = ROAD_WIDTH_PX * PICTURE_SCALE * 72 / dpi
    ax.add_collection(LineCollection(lines, colors=SPEED_BANDS[-1][2], linewidths=width_pt))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True, dpi=dpi)
    picture = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return map_image(picture, west, south, east, north, name="roads")


def _road_box(roads: pd.DataFrame) -> tuple[float, float, float, float]:
    """West, south, east, north of every road."""
    if not len(roads):
        return 0.0, 0.0, 0.0, 0.0
    return (
        float(roads["west"].min()),
        float(roads["south"].min()),
        float(roads["east"].max()),
        float(roads["north"].max()),
    )


def road_base_index(city: Any) -> int:
    """Where the K3i map's trace standing for every road lies in its figure's data: after
    one trace per sector status and the sectors' names. The roads themselves are a picture
    (:func:`road_image`); the trace gives them their legend entry and holds the map's
    extent. It never changes with time."""
    return len(STATUS_STYLE) + 1


def _road_shares(roads: pd.DataFrame, speeds: pd.Series | None) -> np.ndarray:
    """Each road's slowest SUMO edge as a share of free flow (1 where none is known)."""
    if speeds is None or not len(speeds):
        return np.ones(len(roads))
    edges = roads["sumo_edges"].explode()
    shares = edges.map(speeds).astype(float).groupby(level=0).min()
    return shares.reindex(range(len(roads))).fillna(1.0).to_numpy()


def k3i_traces(
    city: Any,
    status: pd.DataFrame,
    *,
    roads: pd.DataFrame | None = None,
    speeds: pd.Series | None = None,
    units: pd.DataFrame | None = None,
    incidents: pd.DataFrame | None = None,
    labels: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The K3i map's traces as plain dicts (for :func:`k3i_map`, or for a dashboard that
    patches a map on screen with them). They keep their places over time: one per sector
    status, the sectors' names, the roads' legend entry (at :func:`road_base_index`), the
    roads under 70 % and under 40 % of free flow, the open incidents, then one per unit
    state (empty traces stay, out of the legend)."""
    labels = labels or {}
    # traces as plain dicts, checked by plotly once at the end rather than trace by trace
    # (the map is rebuilt at every step of the K3i page's time slider)
    traces: list[dict[str, Any]] = []
    by_sector = status.set_index("sector") if len(status) else pd.DataFrame()
    label_x: list[float] = []
    label_y: list[float] = []
    label_text: list[str] = []
    rings: dict[str, tuple[list[Any], list[Any], list[str]]] = {
        s: ([], [], []) for s in STATUS_STYLE
    }
    for sid, row in city.sectors.iterrows():
        state = by_sector["status"].get(sid, kpi.NO_DATA) if len(by_sector) else kpi.NO_DATA
        _, sign = STATUS_STYLE[state]
        word = labels.get(f"status_{state}", state)
        xs, ys, ids = rings[state]
        ring = np.asarray(row["geometry"].exterior.coords).round(6)
        xs.extend([*ring[:, 0].tolist(), None])
        ys.extend([*ring[:, 1].tolist(), None])
        ids.append(sid)
        label_x.append(row["centroid_lon"])
        label_y.append(row["centroid_lat"])
        # a whole city's sectors are too many to name on the map (the names would cover it,
        # and each is a text the browser lays out again at every moment): their sign then
        label_text.append(
            f"<b>{sid}</b><br>{sign} {word}" if len(city.sectors) <= MAP_LABELS_MAX else sign
        )
    # one trace per status, each sector a ring of it: a whole city has hundreds of sectors,
    # and a browser draws a few traces far faster than one per sector. A click inside a
    # sector is told apart by where it fell (the dashboards look the sector up).
    for state, (color, sign) in STATUS_STYLE.items():
        xs, ys, ids = rings[state]
        word = labels.get(f"status_{state}", state)
        traces.append(
            dict(
                type="scatter",
                x=xs,
                y=ys,
                fill="toself",
                fillcolor=color,
                opacity=0.35,
                line={"color": "white", "width": 1},
                mode="lines",
                showlegend=False,
                hoveron="fills",
                hoverinfo="name",
                name=f"{sign} {word}",
                meta={"status": state, "sectors": ids},
            )
        )
    # one text trace for the sectors' names and status: lighter to draw than annotations
    traces.append(
        dict(
            type="scatter",
            x=label_x,
            y=label_y,
            text=label_text,
            mode="text",
            showlegend=False,
            hoverinfo="skip",
            textfont={"size": 11, "color": "#212121"},
        )
    )
    if roads is not None:
        # every road in one picture (``base``, sent once), then only the slow roads over
        # it, by band: what changes with time is small. The trace at road_base_index
        # stands for the picture: its legend entry, and the corners of the roads' extent
        # (two points apart, so that no line is drawn), which the axes range over.
        free_lo, _, free_color = SPEED_BANDS[-1]
        free_name = labels.get(f"speed_{free_lo}", f"speed over {free_lo:.0%} of free flow")
        west, south, east, north = _road_box(roads)
        traces.append(
            dict(
                type="scatter",
                x=[west, None, east],
                y=[south, None, north],
                mode="lines",
                name=free_name,
                hoverinfo="skip",
                line={"color": free_color, "width": 1.5},
                meta={"roads": "picture"},
            )
        )
        share = _road_shares(roads, speeds)
        road_x, road_y = roads["x"].to_numpy(), roads["y"].to_numpy()
        for lo, hi, color in SPEED_BANDS[:-1]:
            pick = np.flatnonzero((share >= lo) & (share < hi))
            xs = np.concatenate(road_x[pick]) if len(pick) else []
            ys = np.concatenate(road_y[pick]) if len(pick) else []
            name = labels.get(f"speed_{lo}", f"speed {lo:.0%}–{min(hi, 1):.0%} of free flow")
            traces.append(
                dict(
                    type="scatter",
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=name,
                    hoverinfo="skip",
                    line={"color": color, "width": 3},
                    showlegend=True,
                )
            )
    # incidents and units: one trace each (one per unit state), empty or not, so that the
    # figure keeps the same traces in the same places over time (the dashboards patch them)
    placed = (
        incidents.dropna(subset=["lat", "lon"])
        if incidents is not None and len(incidents)
        else pd.DataFrame(columns=["lat", "lon", "incident", "incident_type", "priority"])
    )
    traces.append(
        dict(
            type="scatter",
            x=placed["lon"].to_numpy(),
            y=placed["lat"].to_numpy(),
            # named on the map while few; named on hover always
            mode="markers+text" if len(placed) <= MAP_LABELS_MAX else "markers",
            text=placed["incident"].tolist(),
            textposition="top center",
            marker={"symbol": "star", "size": 14, "color": "#212121"},
            name=labels.get("incidents", "open incidents"),
            customdata=placed["incident"].tolist(),
            hovertext=[
                f"{r.incident} {r.incident_type} P{r.priority}" for r in placed.itertuples()
            ],
            showlegend=bool(len(placed)),
        )
    )
    on_map = (
        units.dropna(subset=["lat", "lon"])
        if units is not None and len(units)
        else pd.DataFrame(columns=["lat", "lon", "unit", "state", "incident"])
    )
    known = on_map["state"].isin(list(UNIT_STYLE))
    groups = [(state, on_map[on_map["state"] == state]) for state in UNIT_STYLE]
    groups.append(("other", on_map[~known]))
    for state, group in groups:
        symbol, color, _ = UNIT_STYLE.get(state, _UNKNOWN_UNIT_STYLE)
        word = labels.get(f"unit_{state}", state)
        states = group["state"].tolist()
        # units are named on hover, not in text: at an incident they stand on its label
        traces.append(
            dict(
                type="scatter",
                x=group["lon"].to_numpy(),
                y=group["lat"].to_numpy(),
                mode="markers",
                marker={
                    "symbol": symbol,
                    "size": 11,
                    "color": color,
                    "line": {"color": "white", "width": 1},
                },
                name=word,
                customdata=group["unit"].tolist(),
                hovertext=[
                    f"{u}: {labels.get(f'unit_{st}', st)}" + (f" ({i})" if i else "")
                    for u, i, st in zip(group["unit"], group["incident"], states, strict=True)
                ],
                hoverinfo="text",
                showlegend=bool(len(group)),
            )
        )
    return traces


def k3i_map(
    city: Any,
    status: pd.DataFrame,
    *,
    tiles: Tiles | None = None,
    base: dict[str, Any] | None = None,
    **drawn: Any,
) -> go.Figure:
    """The K3i map: sectors by status (colour, sign and word), roads by speed (share of
    free flow per SUMO edge, ``speeds``), open incidents and units with their state. Drawn
    on the twin's own roads in longitude/latitude, so it needs no tiles and works offline;
    with ``tiles``, over a tile server's map. ``labels`` translates the legend's words
    (``twin.dashboards`` passes its language).

    Every road is a picture under the traces, ``base`` (:func:`road_image`, a layout
    image): a dashboard draws it once and leaves it out of later moments. The traces are
    :func:`k3i_traces`'s, of ``drawn`` (its roads, speeds, units, incidents, labels)."""
    traces = k3i_traces(city, status, **drawn)
    layout = dict(
        margin={"l": 0, "r": 0, "t": 50, "b": 0},
        plot_bgcolor="white",
        height=610,
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x", "scaleratio": 1 / _cos_lat(city)},
        # the legend above the map, clear of the data's credit in the map's corner
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"},
        clickmode="event",
        # a zoomed or panned map stays so while the moments and pictures change under it
        uirevision=city.name,
        annotations=[
            dict(
                text=ATTRIBUTION if tiles is None else f"{ATTRIBUTION}; {tiles.attribution}",
                xref="paper",
                yref="paper",
                x=1,
                y=0,
                xanchor="right",
                yanchor="bottom",
                showarrow=False,
                font={"size": 10, "color": "#555"},
            )
        ],
    )
    if tiles is not None:
        layout["plot_bgcolor"] = "rgba(0,0,0,0)"
    if base is not None:
        layout["images"] = k3i_images(city, tiles, base)
    return go.Figure(data=traces, layout=layout)


def k3i_images(city: Any, tiles: Tiles | None, base: dict[str, Any]) -> list[dict[str, Any]]:
    """The K3i map's pictures, all under its traces: a tile server's map where one is given
    (over the sectors' extent, which reaches past the extract's box), then the picture of
    the roads (``base``, :func:`road_image`) over it."""
    if tiles is None:
        return [base]
    bb = city.manifest.bbox
    west, south, east, north = bb["west"], bb["south"], bb["east"], bb["north"]
    if len(city.sectors):
        w, s_, e, n = city.sectors.total_bounds
        west, south, east, north = min(west, w), min(south, s_), max(east, e), max(north, n)
    return [*tiles.images(south, west, north, east), base]


def unit_board_figure(
    spells: pd.DataFrame,
    *,
    start: pd.Timestamp,
    labels: dict[str, str] | None = None,
    now: float | None = None,
) -> go.Figure:
    """Each unit's states over time, one row per unit, one colour and one legend entry
    per state (hover names the incident); a line marks ``now``."""
    labels = labels or {}
    fig = go.Figure()
    spells = spells[spells["end"] > spells["start"]]
    order = {state: i for i, state in enumerate(UNIT_STYLE)}
    for state, group in sorted(spells.groupby("state"), key=lambda g: order.get(g[0], 99)):
        _, color, pattern = UNIT_STYLE.get(state, _UNKNOWN_UNIT_STYLE)
        fig.add_bar(
            y=group["unit"],
            x=(group["end"] - group["start"]) * 1000,
            base=[start + pd.Timedelta(seconds=s) for s in group["start"]],
            orientation="h",
            marker={
                "color": color,
                "pattern": {"shape": pattern, "fgcolor": "white", "size": 6, "solidity": 0.3},
            },
            name=labels.get(state, state),
            hovertext=[
                f"{u}: {labels.get(state, state)} {i or ''}"
                for u, i in zip(group["unit"], group["incident"], strict=True)
            ],
        )
    if now is not None:
        fig.add_vline(x=start + pd.Timedelta(seconds=now), line={"color": "#212121", "dash": "dot"})
    fig.update_layout(
        barmode="overlay",
        height=max(260, 28 * spells["unit"].nunique() + 80),
        margin={"l": 60, "r": 10, "t": 10, "b": 30},
        xaxis={"type": "date"},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.15},
        plot_bgcolor="white",
    )
    return fig
