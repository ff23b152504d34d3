"""The community component: the community model and the crowds' unrest on the run's clock.

Every ``community.step`` of simulated time the community model steps once
(:mod:`twin.agents.community`); each crime becomes a ``crime_committed`` event (those
reported are what the response component takes as 110 calls). Every hour each sector's
rasa aman index, trust and disorder go on the timeline as ``sector_safety``.

In each demonstration of the scenario, when ``community.unrest`` is set, a crowd follows
Epstein's civil violence rules (:mod:`twin.agents.civil`) from the demonstration's start to
its end, one step per community step. The legitimacy the crowd perceives rises and falls
with its sectors' trust in the police (0.4 per unit of trust away from 0.5). Arrests are
the crowd police's; clashes reach 110 as public-order crimes at the demonstration, about
one per :data:`RIOTERS_PER_CALL` rioters each step. Active rioters add to their
sectors' disorder, which lowers the residents' sense of safety.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator
from typing import Any

import numpy as np

from twin import events as ev
from twin.agents.civil import CivilViolence
from twin.agents.community import CommunityModel
from twin.city.places import ResolvedEvent
from twin.scenario import Community

#: How often the sectors' community state goes on the timeline, seconds.
SAFETY_EVERY_S = 3600.0
#: Each step, clashes reported to 110 from a crowd: Poisson, one per this many rioters.
#: (Arrests are made by the police in the crowd; they bring no call.)
RIOTERS_PER_CALL = 50.0


class CommunityComponent:
    """The community model as a component of a Simulation."""

    name = "community"

    def __init__(
        self, config: Community, city: Any, *, road_events: list[ResolvedEvent] | None = None
    ) -> None:
        self.config, self.city = config, city
        self.road_events = [e for e in road_events or [] if e.type == "demonstration" and e.edges]
        self.model: CommunityModel | None = None
        self._ids = itertools.count(1)

    def start(self, sim: Any) -> None:
        cfg = self.config
        forecast = None
        if cfg.patrols.strategy == "predicted":
            forecast = edge_forecast(self.city, method=cfg.patrols.forecast, shift=8 * 3600.0)
        seed = int(sim.rng.integers(2**31))
        self.model = CommunityModel(
            self.city,
            step_s=cfg.step,
            residents=cfg.residents,
            offenders=cfg.offenders,
            patrols=cfg.patrols.units,
            strategy=cfg.patrols.strategy,
            officers=cfg.bhabinkamtibmas,
            motivation=cfg.motivation,
            hotspots=cfg.patrols.hotspots,
            forecast=forecast,
            trust=cfg.trust,
            seed=seed,
        )
        sim.emit(
            ev.CommunityConfigured(
                segments=self.model.segments(),
                residents=cfg.residents,
                offenders=cfg.offenders,
                patrols=cfg.patrols.units,
                strategy=cfg.patrols.strategy,
                officers=cfg.bhabinkamtibmas,
            ),
            source=self.name,
        )
        sim.env.process(self._run(sim))
        if cfg.unrest is not None:
            for event in self.road_events:
                sim.env.process(self._crowd(sim, event))

    def close(self, sim: Any) -> None:
        pass

    def _run(self, sim: Any) -> Generator[Any, Any, None]:
        model, env = self.model, sim.env
        assert model is not None
        next_report = SAFETY_EVERY_S
        since: dict[str, int] = {}
        g = self.city.graph
        while True:
            yield env.timeout(self.config.step)
            before, disputes = len(model.crimes), len(model.disputes)
            model.step()
            for d in model.disputes[disputes:]:
                node = g.nodes[d.node]
                sim.emit(
                    ev.DisputeEvent(
                        sector=d.sector, lat=node["y"], lon=node["x"], outcome=d.outcome
                    ),
                    source=self.name,
                )
                if d.outcome == "escalated":
                    sim.emit(
                        ev.CrimeCommitted(
                            crime=f"K{next(self._ids):06d}",
                            crime_type="public_order",
                            sector=d.sector,
                            lat=node["y"],
                            lon=node["x"],
                            reported=True,
                        ),
                        source=self.name,
                    )
            for crime in model.crimes[before:]:
                a, b = g.nodes[crime.u], g.nodes[crime.v]
                since[crime.sector] = since.get(crime.sector, 0) + 1
                sim.emit(
                    ev.CrimeCommitted(
                        crime=f"K{next(self._ids):06d}",
                        crime_type=crime.crime_type,
                        sector=crime.sector,
                        lat=(a["y"] + b["y"]) / 2,
                        lon=(a["x"] + b["x"]) / 2,
                        reported=crime.reported,
                    ),
                    source=self.name,
                )
            if env.now >= next_report - 1e-9:
                self._report(sim, since)
                since = {}
                next_report += SAFETY_EVERY_S

    def _report(self, sim: Any, crimes: dict[str, int]) -> None:
        model = self.model
        assert model is not None
        safety = model.rasa_aman()
        trust = model.sector_mean(model.res_trust)
        for sector in model.sectors:
            sim.emit(
                ev.SectorSafety(
                    sector=sector,
                    rasa_aman=float(safety.get(sector, float("nan"))),
                    trust=round(float(trust.get(sector, float("nan"))), 4),
                    disorder=round(float(model.disorder.get(sector, 0.0)), 4),
                    crimes=int(crimes.get(sector, 0)),
                ),
                source=self.name,
            )

    def _crowd(self, sim: Any, event: ResolvedEvent) -> Generator[Any, Any, None]:
        """A demonstration's crowd under the civil violence rules, while it lasts."""
        cfg, model, env = self.config.unrest, self.model, sim.env
        assert cfg is not None and model is not None
        yield env.timeout(event.begin_s)
        nodes = sorted({n for e in event.edges for g in self.city.graph_edges_of(e) for n in g[:2]})
        g = self.city.graph
        lat = float(np.mean([g.nodes[n]["y"] for n in nodes])) if nodes else 0.0
        lon = float(np.mean([g.nodes[n]["x"] for n in nodes])) if nodes else 0.0
        sectors = sorted(
            {s for s in (model.node_sector[model.engine._index[n]] for n in nodes) if s}
        )
        trust = model.sector_mean(model.res_trust)
        mean_trust = float(np.mean([trust.get(s, 0.5) for s in sectors])) if sectors else 0.5
        legitimacy = float(np.clip(cfg.legitimacy + 0.4 * (mean_trust - 0.5), 0.0, 1.0))
        side = max(15, math.ceil(math.sqrt((cfg.crowd + cfg.police) / 0.75)))
        rng = np.random.default_rng(int(sim.rng.integers(2**31)))
        crowd = CivilViolence(
            width=side,
            height=side,
            citizen_density=cfg.crowd / side**2,
            cop_density=cfg.police / side**2,
            legitimacy=legitimacy,
            max_jail_term=cfg.max_jail_term,
            seed=int(sim.rng.integers(2**31)),
        )
        while env.now + self.config.step <= event.end_s + 1e-9:
            yield env.timeout(self.config.step)
            crowd.step()
            c = crowd.counts()
            sim.emit(
                ev.UnrestState(
                    event_id=event.id,
                    active=c["active"],
                    quiet=c["quiet"],
                    jailed=c["arrested"],
                    legitimacy=legitimacy,
                ),
                source=self.name,
            )
            clashes = int(rng.poisson(c["active"] / RIOTERS_PER_CALL))
            for _ in range(clashes):
                sim.emit(
                    ev.CrimeCommitted(
                        crime=f"K{next(self._ids):06d}",
                        crime_type="public_order",
                        sector=sectors[0] if sectors else "",
                        lat=lat,
                        lon=lon,
                        reported=True,
                    ),
                    source=self.name,
                )
            share = c["active"] / max(crowd.citizens, 1)
            for s in sectors:
                model.disorder[s] = model.disorder.get(s, 0.0) + share


def edge_forecast(city: Any, *, method: str, shift: float) -> Any:
    """A forecast function for the predicted-hotspot strategy: each road's risk is the
    forecast of the cell its midpoint lies in, from the model's crimes so far."""
    from twin.predict import Events, city_grid, forecast

    grid, frame = city_grid(city, cell=100.0)
    cache: dict[str, Any] = {}

    def risk(model: CommunityModel) -> np.ndarray:
        if "cells" not in cache:
            g = city.graph
            nodes = model.engine.nodes
            lat = np.array([g.nodes[int(n)]["y"] for n in nodes])
            lon = np.array([g.nodes[int(n)]["x"] for n in nodes])
            x, y = frame.xy(lat, lon)
            mx = (x[model.edge_tail] + x[model.edge_head]) / 2
            my = (y[model.edge_tail] + y[model.edge_head]) / 2
            cache["cells"], cache["mx"], cache["my"] = grid.cell_of(mx, my), mx, my
        now = model.steps * model.step_s
        if now >= cache.get("until", -1.0):  # refit once a shift, from the crimes so far
            crimes = model.crimes[-1500:]
            e = np.array([c.edge for c in crimes], dtype=int)
            t = np.array([c.step * model.step_s for c in crimes], dtype=float)
            events = Events(cache["mx"][e], cache["my"][e], t)
            cells = forecast(events, grid, now=now + 1e-6, method=method, shift=shift)
            cache["risk"] = np.where(cache["cells"] >= 0, cells[np.maximum(cache["cells"], 0)], 0.0)
            cache["until"] = now + shift
        return cache["risk"]

    return risk
