"""The community model: offenders, guardians, residents and their sense of safety.

One step covers ``step_s`` simulated seconds (10 minutes by default) on the city's road
graph and sectors.

- **Offenders** follow routine activity theory: they travel between activity places (the
  city's POIs, weighted by how many people they draw) along the fastest roads, and on each
  road they pass they offend with probability motivation x suitability x (1 -
  guardianship). Their move is a Cython loop (``twin.ext.community``). A street just hit
  draws them back for a few hours (near-repeat victimisation), so crime clusters in time
  as well as in space.
- **Patrol units** are capable guardians wherever they are. Their strategy is ``random``
  (a new random junction each step), ``beats`` (each unit cycles through the junctions of
  its sectors), ``hotspot`` (the top-k roads by past crime, 11-15 minute stops, the Koper
  curve's dosage) or ``predicted`` (the same over the roads a forecast flags).
- **Bhabinkamtibmas** officers each look after a sector (a village): they visit it, which
  guards a little, calms disorder and raises residents' trust in the police, which makes
  residents guard their streets more (collective efficacy).
- **Disputes** between neighbours arise with grievance and disorder. Where an officer is
  at hand they are mediated, a conflict handled in a civilised way; otherwise a third
  escalate into public-order incidents for 110.
- **Residents** have a home sector, grievance, trust and perceived safety. Perceived safety
  moves toward what they see: victimisation in their sector and disorder push it down,
  visible police and trust push it up. The **rasa aman** index of a sector is its
  residents' mean perceived safety, 0 to 100.

**What lives in arrays, and what in Mesa agents.** Offenders and residents, many and alike,
are numpy arrays stepped in bulk; patrol units and Bhabinkamtibmas officers, few and each
with a plan of its own, are ``mesa.Agent`` objects, stepped with ``AgentSet.shuffle_do``.
Every random number comes from the model's seeded ``rng``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np
import pandas as pd

from twin._errors import InputError
from twin.ext import community as kernel

#: How many people each kind of POI draws, relative to a plain junction's 0.
PLACE_WEIGHT = {
    "market": 4.0,
    "transport_hub": 5.0,
    "school": 1.5,
    "place_of_worship": 1.0,
    "government": 1.0,
    "police": 0.5,
    "hospital": 1.5,
    "fire_station": 0.3,
}
#: Crime types and the share of each reported to 110 (the rest stays in the dark figure).
CRIME_TYPES = {
    "theft": (0.55, 0.45),
    "robbery": (0.15, 0.8),
    "assault": (0.15, 0.65),
    "vandalism": (0.15, 0.25),
}
STRATEGIES = ("random", "beats", "hotspot", "predicted")
#: One patrol unit on a junction guards its roads this much (1 - exp(-GUARD)).
GUARD = 1.5
#: A Bhabinkamtibmas visit closes this share of the gap between each resident's trust and
#: full trust: a sector with an officer in it all week closes about 40 % of the gap.
TRUST_PER_VISIT = 0.0005
#: Disputes between neighbours per 1,000 residents an hour, at grievance 0.5 and no
#: disorder; and the share that escalate to a 110 call when no officer is there to mediate.
DISPUTES_PER_1000_H = 0.5
ESCALATION = 1 / 3
#: Near-repeat victimisation (Johnson and Bowers): a crime raises its street's suitability
#: by this factor, fading by REPEAT_DECAY every 10 minutes (a half-life of about 2 hours).
REPEAT_BOOST = 1.0
REPEAT_DECAY = 0.945
#: Offenders move this much slower than the free-flow car speed (on foot, by motorbike).
OFFENDER_SLOWDOWN = 3.0


@dataclass(frozen=True)
class Dispute:
    """A quarrel between neighbours: ``mediated`` by a Bhabinkamtibmas officer in the sector,
    ``settled`` among themselves, or ``escalated`` into a public-order incident for 110."""

    step: int
    sector: str
    node: int
    outcome: str


@dataclass(frozen=True)
class Crime:
    step: int
    crime_type: str
    edge: int  # position in the engine's CSR edge order
    u: int
    v: int
    sector: str
    reported: bool


class PatrolUnit(mesa.Agent):
    """A patrol car or motorbike on a strategy; it guards the junction it stands on."""

    def __init__(self, model: CommunityModel, strategy: str, beat: list[int]) -> None:
        super().__init__(model)
        self.strategy, self.beat = strategy, beat
        self.node = int(beat[0]) if beat else int(model.streams["guardians"].choice(model.nodes))
        self._stop_left = 0
        self._target_i = self.unique_id  # start the hotspot rounds at different spots

    def step(self) -> None:
        m = self.model
        rng = m.streams["guardians"]
        if self.strategy == "random":
            self.node = int(m.nodes[rng.integers(len(m.nodes))])
        elif self.strategy == "beats":
            self._target_i = (self._target_i + 1) % len(self.beat)
            self.node = int(self.beat[self._target_i])
        else:
            if self._stop_left > 0:  # still on its stop
                self._stop_left -= 1
                return
            spots = m.hotspots(predicted=self.strategy == "predicted")
            if not spots:
                self.node = int(m.nodes[rng.integers(len(m.nodes))])
                return
            self._target_i = (self._target_i + 1) % len(spots)
            self.node = spots[self._target_i]
            minutes = rng.uniform(11.0, 15.0)  # Koper: stops of 11 to 15 minutes
            self._stop_left = max(0, math.ceil(minutes * 60 / m.step_s) - 1)


class Bhabinkamtibmas(mesa.Agent):
    """A neighbourhood officer who looks after one sector."""

    def __init__(self, model: CommunityModel, sector: str) -> None:
        super().__init__(model)
        self.sector = sector
        nodes = model.sector_nodes.get(sector, [])
        self.node = int(nodes[0]) if len(nodes) else int(model.nodes[0])

    def step(self) -> None:
        m = self.model
        nodes = m.sector_nodes.get(self.sector, [])
        if len(nodes):
            self.node = int(nodes[m.streams["guardians"].integers(len(nodes))])
        m.visit(self.sector)


class CommunityModel(mesa.Model):
    """Offenders, guardians and residents on a city (see the module docstring).

    Parameters
    ----------
    city
        The city bundle.
    step_s
        Simulated seconds per step.
    residents, offenders
        How many of each.
    patrols, strategy
        Patrol units and their strategy (one of :data:`STRATEGIES`).
    trust
        Residents' mean trust in the police at the start (Beta distributed).
    officers
        Bhabinkamtibmas officers, one per sector, in order of sector population, until
        they run out (more officers than sectors: the busiest sectors get two).
    motivation
        Mean chance that an offender offends on a road of suitability 1 with no guardian.
    hotspots
        How many roads the hotspot strategies visit.
    forecast
        For the ``predicted`` strategy: a function of the model giving each road's
        predicted risk (the roads with the highest are visited).
    """

    def __init__(
        self,
        city: Any,
        *,
        step_s: float = 600.0,
        residents: int = 2000,
        offenders: int = 40,
        patrols: int = 4,
        strategy: str = "random",
        officers: int = 0,
        motivation: float = 0.03,
        hotspots: int = 5,
        forecast: Any = None,
        trust: float = 0.5,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed)
        if strategy not in STRATEGIES:
            raise InputError(
                f"patrol strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
            )
        if strategy == "predicted" and forecast is None:
            raise InputError("the predicted-hotspot strategy needs a forecast")
        for name, value in {
            "residents": residents,
            "offenders": offenders,
            "patrols": patrols,
            "officers": officers,
            "hotspots": hotspots,
        }.items():
            if int(value) != value or value < 0:
                raise InputError(f"{name} must be a whole number >= 0, got {value!r}")
        from twin.routing import TravelTimeEngine

        self.city, self.step_s, self.n_hotspots, self.forecast = (
            city,
            float(step_s),
            int(hotspots),
            forecast,
        )
        # One stream per part, so that two runs that differ only in their guardians see the
        # same offenders, residents and draws (common random numbers): the difference
        # between strategies is then the strategies'.
        self.streams = dict(
            zip(("offenders", "residents", "guardians", "crimes"), self.rng.spawn(4), strict=True)
        )
        engine = TravelTimeEngine.from_city(city)
        self.engine = engine
        import networkx as nx

        joined = max(nx.strongly_connected_components(city.graph), key=len)
        self.nodes = np.array(sorted(joined), dtype=np.int64)
        index = engine._index
        n_nodes = len(engine.nodes)
        self.edge_tail = np.repeat(np.arange(n_nodes, dtype=np.int32), np.diff(engine.indptr))
        self.edge_head = engine.indices.astype(np.int32)
        base, _ = engine.cost()
        self.edge_time = np.where(np.isfinite(base), base, 1e9) * OFFENDER_SLOWDOWN
        sectors = engine.node_sectors()
        self.node_sector = np.array(sectors, dtype=object)
        self.sectors = sorted(s for s in set(sectors) if s)
        in_joined = np.isin(engine.nodes, self.nodes)
        self.sector_nodes = {
            s: engine.nodes[(self.node_sector == s) & in_joined] for s in self.sectors
        }
        # activity places: POIs on the joined part, weighted by how many people they draw
        pois = city.pois[city.pois["node"].isin(list(joined))]
        weights: dict[int, float] = {}
        for node, category in zip(pois["node"], pois["category"], strict=True):
            weights[int(node)] = weights.get(int(node), 0.0) + PLACE_WEIGHT.get(category, 1.0)
        if len(weights) < 3:  # too few POIs: busy junctions stand in
            for node in self.rng.choice(self.nodes, size=min(10, len(self.nodes)), replace=False):
                weights.setdefault(int(node), 1.0)
        self.place_nodes = np.array(sorted(weights), dtype=np.int64)
        w = np.array([weights[n] for n in self.place_nodes])
        self.place_cum = np.cumsum(w) / w.sum()
        self.place_cum[-1] = 1.0
        self.next_edge = self._next_edges()
        # suitability: roads at or next to places draw more targets
        draw = np.zeros(n_nodes)
        for n, wt in weights.items():
            draw[index[n]] += wt
        self.suitability = 0.2 + 0.8 * np.minimum(
            1.0, (draw[self.edge_tail] + draw[self.edge_head]) / 5.0
        )
        # offenders
        rng = self.streams["offenders"]
        self.off_node = np.array(
            [index[int(n)] for n in rng.choice(self.nodes, size=int(offenders))],
            dtype=np.int32,
        )
        self.off_dest = rng.integers(0, len(self.place_nodes), size=int(offenders)).astype(np.int32)
        self.off_dwell = rng.integers(0, 6, size=int(offenders)).astype(np.int32)
        self.off_motivation = rng.exponential(motivation, size=int(offenders)).clip(0, 1)
        # residents: spread over sectors by their junctions
        rng = self.streams["residents"]
        homes = rng.choice(self.nodes, size=int(residents))
        self.res_sector = np.array([self.node_sector[index[int(n)]] for n in homes], dtype=object)
        self.res_trust = rng.beta(10 * trust, 10 * (1 - trust), size=int(residents))
        self.res_safety = rng.beta(6, 4, size=int(residents))
        self.res_grievance = rng.random(int(residents)) * 0.4
        self.disorder = dict.fromkeys(self.sectors, 0.0)
        self.disputes: list[Dispute] = []
        self._visited: set[str] = set()
        self.visits = dict.fromkeys(self.sectors, 0)
        self.crimes: list[Crime] = []
        self.edge_crimes = np.zeros(len(self.edge_head), dtype=np.int64)
        self.boost = np.zeros(len(self.edge_head))  # repeat victimisation, decaying
        # guardians
        beats = self._beats(int(patrols))
        for k in range(int(patrols)):
            PatrolUnit(self, strategy, beats[k])
        busiest = sorted(self.sectors, key=lambda s: (-(self.res_sector == s).sum(), s))
        for k in range(int(officers)):
            Bhabinkamtibmas(self, busiest[k % len(busiest)] if busiest else "")

    # -- set-up -----------------------------------------------------------------------------

    def _next_edges(self) -> np.ndarray:
        """[junction, place] -> the edge to take toward the place (-1 there or cut off)."""
        engine = self.engine
        cost, _ = engine.cost()
        n = len(engine.nodes)
        table = np.full((n, len(self.place_nodes)), -1, dtype=np.int32)
        all_nodes = engine.nodes.tolist()
        for p, place in enumerate(self.place_nodes):
            dist = engine.times_to(int(place), all_nodes)
            via = cost + dist[self.edge_head]
            order = np.lexsort((np.arange(len(via)), via, self.edge_tail))
            first = np.ones(len(order), dtype=bool)
            first[1:] = self.edge_tail[order][1:] != self.edge_tail[order][:-1]
            best = order[first]
            ok = np.isfinite(via[best]) & (self.edge_tail[best] != engine._index[int(place)])
            table[self.edge_tail[best][ok], p] = best[ok]
        return table

    def _beats(self, patrols: int) -> list[list[int]]:
        """Each unit's beat: the junctions of a share of the sectors, in a fixed order."""
        if patrols == 0:
            return []
        beats: list[list[int]] = [[] for _ in range(patrols)]
        for k, sector in enumerate(self.sectors):
            beats[k % patrols] += [int(n) for n in self.sector_nodes[sector]]
        for k in range(patrols):
            if not beats[k]:
                beats[k] = [int(n) for n in self.nodes]
        return beats

    # -- the step ---------------------------------------------------------------------------

    def guardianship(self) -> np.ndarray:
        """Each road's guardianship now: patrol units and officers at its ends, and its
        sector's residents' collective efficacy (trust)."""
        index = self.engine._index
        presence = np.zeros(len(self.engine.nodes))
        for agent in self.agents:
            weight = 1.0 if isinstance(agent, PatrolUnit) else 0.5
            presence[index[agent.node]] += weight
        police = 1.0 - np.exp(-GUARD * (presence[self.edge_tail] + presence[self.edge_head]))
        trust = self.sector_mean(self.res_trust)
        efficacy = np.array([0.2 * trust.get(s, 0.5) for s in self.node_sector[self.edge_tail]])
        return 1.0 - (1.0 - police) * (1.0 - efficacy)

    def step(self) -> None:
        """Guardians move, offenders move and offend, residents update."""
        self.agents.shuffle_do("step")
        guard = self.guardianship()
        n = len(self.off_node)
        max_edges = 64
        uniforms = self.streams["offenders"].random((n, 2 + max_edges))
        who = np.empty(n, dtype=np.int32)
        where = np.empty(n, dtype=np.int32)
        suitable = np.minimum(1.0, self.suitability * (1.0 + self.boost))
        count = kernel.offender_step(
            self.off_node,
            self.off_dest,
            self.off_dwell,
            self.off_motivation,
            self.next_edge,
            self.edge_head,
            self.edge_time,
            suitable,
            guard,
            np.array([self.engine._index[int(p)] for p in self.place_nodes], dtype=np.int32),
            self.place_cum,
            self.step_s,
            6,
            uniforms,
            who,
            where,
        )
        new = []
        kinds = list(CRIME_TYPES)
        p_kind = np.array([CRIME_TYPES[k][0] for k in kinds])
        for e in where[:count]:
            kind = kinds[int(self.streams["crimes"].choice(len(kinds), p=p_kind))]
            reported = bool(self.streams["crimes"].random() < CRIME_TYPES[kind][1])
            u, v = (
                int(self.engine.nodes[self.edge_tail[e]]),
                int(self.engine.nodes[self.edge_head[e]]),
            )
            crime = Crime(
                self.steps, kind, int(e), u, v, str(self.node_sector[self.edge_head[e]]), reported
            )
            new.append(crime)
            self.edge_crimes[e] += 1
        self.boost *= REPEAT_DECAY ** (self.step_s / 600.0)
        for e in where[:count]:  # a street just hit draws offenders back for a while
            self.boost[e] += REPEAT_BOOST
        self.crimes += new
        self._disputes()
        self._residents(new)
        self._visited = set()

    def _disputes(self) -> None:
        """Neighbours quarrel at a rate that grows with their grievance and their sector's
        disorder. An officer who visited the sector this step mediates (trust rises, the
        conflict is handled in a civilised way); otherwise a third escalate to 110."""
        rng = self.streams["residents"]
        hours = self.step_s / 3600.0
        grievance = self.sector_mean(self.res_grievance)
        for s in self.sectors:
            people = int((self.res_sector == s).sum())
            rate = (
                DISPUTES_PER_1000_H
                * people
                / 1000
                * hours
                * (0.5 + grievance.get(s, 0.0))
                * (1 + self.disorder[s])
            )
            for _ in range(int(rng.poisson(rate))):
                nodes = self.sector_nodes[s]
                node = int(nodes[rng.integers(len(nodes))]) if len(nodes) else int(self.nodes[0])
                if s in self._visited:
                    outcome = "mediated"
                    mine = self.res_sector == s
                    self.res_trust[mine] += TRUST_PER_VISIT * (1.0 - self.res_trust[mine])
                elif rng.random() < ESCALATION:
                    outcome = "escalated"
                    self.disorder[s] += 0.1
                else:
                    outcome = "settled"
                self.disputes.append(Dispute(self.steps, s, node, outcome))

    def visit(self, sector: str) -> None:
        """A Bhabinkamtibmas visit: trust rises, disputes are mediated."""
        self.visits[sector] = self.visits.get(sector, 0) + 1
        self._visited.add(sector)
        mine = self.res_sector == sector
        self.res_trust[mine] += TRUST_PER_VISIT * (1.0 - self.res_trust[mine])
        self.disorder[sector] = self.disorder.get(sector, 0.0) * 0.8

    def _residents(self, crimes: list[Crime]) -> None:
        """Victimisation and disorder lower perceived safety; visible police and trust
        raise it. Each step moves safety a tenth of the way to what residents see."""
        hit = {s: 0 for s in self.sectors}
        for c in crimes:
            if c.sector in hit:
                hit[c.sector] += 1
                self.disorder[c.sector] += 0.2 if c.crime_type == "vandalism" else 0.1
        index = self.engine._index
        seen = dict.fromkeys(self.sectors, 0.0)
        for agent in self.agents:
            s = self.node_sector[index[agent.node]]
            if s in seen:
                seen[s] += 1.0
        for s in self.sectors:
            mine = self.res_sector == s
            if not mine.any():
                continue
            victims = np.zeros(mine.sum(), dtype=bool)
            if hit[s]:
                victims[
                    self.streams["residents"].choice(
                        mine.sum(), size=min(hit[s], mine.sum()), replace=False
                    )
                ] = True
            target = (
                0.55
                + 0.25 * self.res_trust[mine]
                + 0.15 * min(1.0, seen[s])
                - 0.3 * min(1.0, self.disorder[s])
                - 0.5 * victims
                - 0.05 * min(1.0, hit[s] / 2)
            )
            self.res_safety[mine] += 0.1 * (np.clip(target, 0, 1) - self.res_safety[mine])
            self.disorder[s] *= 0.97

    # -- views ------------------------------------------------------------------------------

    def sector_mean(self, values: np.ndarray) -> dict[str, float]:
        frame = pd.DataFrame({"sector": self.res_sector, "v": values})
        return frame.groupby("sector")["v"].mean().to_dict()

    def rasa_aman(self) -> dict[str, float]:
        """Each sector's sense-of-safety index, 0 to 100."""
        return {s: round(100 * v, 2) for s, v in self.sector_mean(self.res_safety).items()}

    def hotspots(self, *, predicted: bool = False) -> list[int]:
        """The junctions at the heads of the top-k roads, by past crime or by forecast."""
        risk = self.forecast(self) if predicted else self.edge_crimes
        risk = np.asarray(risk, dtype=float)
        if not risk.any():
            return []
        top = np.argsort(-risk, kind="stable")[: self.n_hotspots]
        return [int(self.engine.nodes[self.edge_head[e]]) for e in top if risk[e] > 0]

    def segments(self) -> int:
        """Road segments: each street once, whichever way it is driven."""
        return len(
            {(min(u, v), max(u, v)) for u, v in zip(self.edge_tail, self.edge_head, strict=True)}
        )

    def concentration(self) -> dict[str, float]:
        """The share of roads (each direction counted once as a segment pair) that holds
        25 % and 50 % of the crime so far: Weisburd's law of crime concentration."""
        pairs: dict[tuple[int, int], int] = {}
        for e, k in enumerate(self.edge_crimes):
            u, v = int(self.edge_tail[e]), int(self.edge_head[e])
            key = (min(u, v), max(u, v))
            pairs[key] = pairs.get(key, 0) + int(k)
        counts = np.sort(np.array(list(pairs.values())))[::-1]
        total = counts.sum()
        if total == 0:
            return {
                "segments": len(counts),
                "crimes": 0,
                "share_for_25": float("nan"),
                "share_for_50": float("nan"),
            }
        cum = np.cumsum(counts) / total
        return {
            "segments": len(counts),
            "crimes": int(total),
            "share_for_25": float((np.searchsorted(cum, 0.25) + 1) / len(counts)),
            "share_for_50": float((np.searchsorted(cum, 0.50) + 1) / len(counts)),
        }
