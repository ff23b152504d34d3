"""Hotspot forecasts: where will crime be in the next shift?

Forecasts come from incident history (simulated by the community model, or ingested) on a
grid of square cells over the city:

- ``naive``: last shift's counts per cell, the baseline every method must beat;
- ``kde``: a kernel density estimate of past events, recent ones weighing more
  (exponential decay), computed by the Cython kernel ``twin.ext.hotspots``;
- ``sepp``: a self-exciting point process (Mohler et al. 2011, "Self-exciting point
  process modeling of crime", JASA): a steady background rate plus aftershocks of each
  event that decay in time (exponentially) and space (Gaussian), fitted by
  expectation-maximisation.

A forecast flags the riskiest cells that make up a fixed share of the area; it is scored by
the **hit rate** (share of the next shift's events that fall in flagged cells) and the
**predictive accuracy index** (PAI = hit rate / area share flagged; 1 is no better than
chance).

>>> import numpy as np
>>> grid = Grid(x0=0.0, y0=0.0, cell=100.0, nx=10, ny=10)
>>> events = Events(x=np.array([150.0, 160, 140, 850]), y=np.array([150.0, 140, 160, 850]),
...                 t=np.array([0.0, 3600, 7200, 7200]))
>>> risk = forecast(events, grid, now=8 * 3600.0, method="kde", bandwidth=50.0)
>>> grid.cell_of(150.0, 150.0) == int(np.argmax(risk))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from twin._errors import InputError

METHODS = ("naive", "kde", "sepp")


@dataclass(frozen=True)
class Grid:
    """Square cells in a local metric frame (metres east and north of an origin)."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @property
    def n(self) -> int:
        return self.nx * self.ny

    def cell_of(self, x: Any, y: Any) -> Any:
        """Cell index (row-major) of points; -1 outside the grid."""
        cx = np.floor((np.asarray(x) - self.x0) / self.cell).astype(int)
        cy = np.floor((np.asarray(y) - self.y0) / self.cell).astype(int)
        inside = (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        return np.where(inside, cy * self.nx + cx, -1)


@dataclass(frozen=True)
class Events:
    """Event positions (metres) and times (seconds)."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray

    def before(self, t: float) -> Events:
        keep = self.t < t
        return Events(self.x[keep], self.y[keep], self.t[keep])

    def between(self, a: float, b: float) -> Events:
        keep = (self.t >= a) & (self.t < b)
        return Events(self.x[keep], self.y[keep], self.t[keep])


class LocalFrame:
    """Latitude and longitude to metres east and north of a reference point
    (equirectangular: exact enough across a city)."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.kx = 111_320.0 * math.cos(math.radians(lat0))
        self.ky = 110_540.0

    def xy(self, lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(lon) - self.lon0) * self.kx, (np.asarray(lat) - self.lat0) * self.ky


def city_grid(city: Any, cell: float = 100.0) -> tuple[Grid, LocalFrame]:
    """A grid of ``cell``-metre squares over the city's road graph."""
    if not cell > 0:
        raise InputError(f"cell size must be positive, got {cell!r} m")
    g = city.graph
    lats = np.array([d["y"] for _, d in g.nodes(data=True)])
    lons = np.array([d["x"] for _, d in g.nodes(data=True)])
    frame = LocalFrame(float(lats.min()), float(lons.min()))
    x, y = frame.xy(lats, lons)
    nx = math.ceil((x.max() + 1e-6) / cell)
    ny = math.ceil((y.max() + 1e-6) / cell)
    return Grid(0.0, 0.0, float(cell), max(nx, 1), max(ny, 1)), frame


def forecast(
    events: Events,
    grid: Grid,
    *,
    now: float,
    method: str = "kde",
    shift: float = 8 * 3600.0,
    bandwidth: float = 100.0,
    half_life: float = 7 * 86400.0,
) -> np.ndarray:
    """Each cell's forecast risk for ``[now, now + shift)``, from the events before ``now``."""
    past = events.before(now)
    if method == "naive":
        last = past.between(now - shift, now)
        cells = grid.cell_of(last.x, last.y)
        return np.bincount(cells[cells >= 0], minlength=grid.n).astype(float)
    if method == "kde":
        from twin.ext.hotspots import kde_grid

        weight = np.power(0.5, (now - past.t) / half_life)
        dens = kde_grid(
            past.x, past.y, weight, grid.x0, grid.y0, grid.cell, grid.nx, grid.ny, float(bandwidth)
        )
        return dens.ravel()
    if method == "sepp":
        return SEPP.fit(past, bandwidth=bandwidth).risk(grid, now=now, shift=shift)
    raise InputError(f"forecast method must be one of {', '.join(METHODS)}, got {method!r}")


@dataclass
class SEPP:
    """A fitted self-exciting point process: background density plus exponential-in-time,
    Gaussian-in-space aftershocks, lambda(x, t) = mu(x) + sum_i theta * omega * exp(-omega
    (t - t_i)) * N(x - x_i; sigma)."""

    events: Events
    background: np.ndarray  # each event's probability of being a background event
    theta: float  # aftershocks per event
    omega: float  # 1 / mean aftershock delay, per second
    sigma: float  # aftershock spread, metres
    bandwidth: float
    span: float  # seconds of history

    @classmethod
    def fit(cls, events: Events, *, bandwidth: float = 100.0, iterations: int = 30) -> SEPP:
        """Expectation-maximisation (stochastic declustering, Mohler et al. 2011) with a
        parametric trigger; the background is a kernel density of the events weighted by
        their background probability."""
        n = len(events.t)
        order = np.argsort(events.t, kind="stable")
        ev = Events(events.x[order], events.y[order], events.t[order])
        span = float(ev.t[-1] - ev.t[0]) if n > 1 else 1.0
        theta, omega, sigma = 0.3, 1 / 86400.0, max(bandwidth, 50.0)
        if n < 3:
            return cls(ev, np.ones(n), 0.0, omega, sigma, bandwidth, max(span, 1.0))
        dt = ev.t[:, None] - ev.t[None, :]  # i triggered by j needs t_j < t_i
        dx = ev.x[:, None] - ev.x[None, :]
        dy = ev.y[:, None] - ev.y[None, :]
        d2 = dx * dx + dy * dy
        earlier = dt > 0
        # background density at each event, leaving the event itself out
        k = np.exp(-d2 / (2 * bandwidth**2)) / (2 * np.pi * bandwidth**2)
        np.fill_diagonal(k, 0.0)
        p_bg = np.full(n, 0.5)
        for _ in range(iterations):
            mu = (k @ p_bg) / max(span, 1.0)  # background rate density at each event
            trig = np.where(
                earlier,
                theta
                * omega
                * np.exp(-omega * np.where(earlier, dt, 0))
                * np.exp(-d2 / (2 * sigma**2))
                / (2 * np.pi * sigma**2),
                0.0,
            )
            total = mu + trig.sum(axis=1)
            total[total <= 0] = 1e-300
            p_bg = mu / total
            p_trig = trig / total[:, None]
            mass = p_trig.sum()
            theta = float(min(0.95, mass / n))
            if mass > 1e-9:
                omega = float(mass / max((p_trig * np.where(earlier, dt, 0)).sum(), 1e-9))
                sigma = float(max(10.0, math.sqrt((p_trig * d2).sum() / (2 * mass))))
        return cls(ev, p_bg, theta, omega, sigma, bandwidth, max(span, 1.0))

    def risk(self, grid: Grid, *, now: float, shift: float) -> np.ndarray:
        """Expected events per cell in ``[now, now + shift)``."""
        from twin.ext.hotspots import kde_grid

        ev = self.events
        area = grid.cell * grid.cell
        background = kde_grid(
            ev.x,
            ev.y,
            self.background / self.span * shift,
            grid.x0,
            grid.y0,
            grid.cell,
            grid.nx,
            grid.ny,
            float(self.bandwidth),
        )
        age = now - ev.t
        after = self.theta * (np.exp(-self.omega * age) - np.exp(-self.omega * (age + shift)))
        shocks = kde_grid(
            ev.x, ev.y, after, grid.x0, grid.y0, grid.cell, grid.nx, grid.ny, float(self.sigma)
        )
        return ((background + shocks) * area).ravel()


def flag(risk: np.ndarray, share: float) -> np.ndarray:
    """The cells to flag: the riskiest that make up ``share`` of the grid (ties: lower
    index first)."""
    if not 0 < share <= 1:
        raise InputError(f"the flagged share of the area must be in (0, 1], got {share!r}")
    k = max(1, round(share * len(risk)))
    return np.argsort(-risk, kind="stable")[:k]


def score(risk: np.ndarray, future: Events, grid: Grid, share: float) -> tuple[float, float]:
    """Hit rate and PAI of a forecast against the events that came."""
    cells = grid.cell_of(future.x, future.y)
    cells = cells[cells >= 0]
    if len(cells) == 0:
        return float("nan"), float("nan")
    flagged = flag(risk, share)
    hit = float(np.isin(cells, flagged).mean())
    return hit, hit / (len(flagged) / len(risk))


def evaluate(
    events: Events,
    grid: Grid,
    *,
    start: float,
    end: float,
    shift: float = 8 * 3600.0,
    share: float = 0.05,
    methods: tuple[str, ...] = METHODS,
    bandwidth: float = 100.0,
) -> pd.DataFrame:
    """Forecast every shift from ``start`` to ``end`` with each method, from the history
    before it, and score it: mean hit rate and PAI over the shifts that had events."""
    rows = []
    t = start
    while t + shift <= end + 1e-9:
        future = events.between(t, t + shift)
        if len(future.t):
            for method in methods:
                risk = forecast(
                    events, grid, now=t, method=method, shift=shift, bandwidth=bandwidth
                )
                hit, pai = score(risk, future, grid, share)
                rows.append(
                    {
                        "method": method,
                        "shift_start": t,
                        "events": len(future.t),
                        "hit_rate": hit,
                        "pai": pai,
                    }
                )
        t += shift
    frame = pd.DataFrame(rows, columns=["method", "shift_start", "events", "hit_rate", "pai"])
    return (
        frame.groupby("method", sort=False)
        .agg(
            shifts=("shift_start", "count"),
            events=("events", "sum"),
            hit_rate=("hit_rate", "mean"),
            pai=("pai", "mean"),
        )
        .reset_index()
    )


def events_from_timeline(timeline: Any, frame: LocalFrame) -> tuple[Events, str]:
    """The crimes of a timeline as forecast input, and what they are: the community
    model's crimes (reported or not) if it ran, else the incidents of type crime."""
    from twin.kpi import connect

    con = connect(timeline)
    rows = con.execute(
        "SELECT t, lat, lon FROM timeline WHERE kind = 'crime_committed' "
        "AND crime_type <> 'public_order' ORDER BY t, seq"
    ).fetchall()
    what = "crimes committed (community model)"
    if not rows:
        rows = con.execute(
            "SELECT t, lat, lon FROM timeline WHERE kind = 'incident_occurred' "
            "AND incident_type = 'crime' ORDER BY t, seq"
        ).fetchall()
        what = "crime incidents"
    if not rows:
        raise InputError(
            "the timeline holds no crime to learn from (run a scenario with a community or response section)"
        )
    t, lat, lon = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    x, y = frame.xy(lat, lon)
    return Events(x, y, t), what
