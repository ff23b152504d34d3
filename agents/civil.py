"""Civil unrest: Epstein's civil violence model on arrays, with a compiled step.

The rules are Epstein's model 1 (PNAS 2002), as the example shipped with Mesa implements
them (``mesa.examples.advanced.epstein_civil_violence``): citizens with hardship H and risk
aversion R see the regime's legitimacy L, feel grievance G = H (1 - L), estimate their
arrest probability from the cops and active citizens they see, and rebel when
G - R P > threshold; cops jail an active citizen in sight. See :mod:`twin.ext.civil` for
the step itself.

**What lives in arrays, and why.** Every per-agent quantity (kind, cell, grievance, risk
aversion, state, jail term) is a numpy array, and who stands on each cell is another: a
step touches each agent's whole neighbourhood (112 cells at vision 7), and that loop runs
in Cython over the arrays, about a hundred times faster than Mesa's agent objects. The model
itself is a ``mesa.Model``: its seeded ``rng`` makes every random number (placement,
hardship, the activation order, moves, arrests), and ``steps`` counts the steps. The city's
community model keeps Mesa agents for the few actors that carry behaviour of their own
(officers, patrols), and arrays for the many that follow one rule.

>>> model = CivilViolence(seed=1)
>>> for _ in range(5):
...     model.step()
>>> c = model.counts()
>>> c["active"] + c["quiet"] + c["arrested"] == model.citizens
True
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np
import pandas as pd

from twin._errors import InputError
from twin.ext import civil as kernel

ACTIVE, QUIET, ARRESTED = (kernel.STATES[s] for s in ("active", "quiet", "arrested"))
CITIZEN, COP = kernel.KINDS["citizen"], kernel.KINDS["cop"]


def arrest_probability(cops: int, actives: int, constant: float = 2.3) -> float:
    """A citizen's estimate that it would be arrested if it turned active, seeing ``cops``
    cops and ``actives`` active citizens (itself included). The rounding of C / A, half to
    even as Python rounds, is in Mesa's example and not in the paper; without it the paper's
    dynamics cannot be reproduced."""
    if actives < 1:
        raise InputError(f"a citizen counts itself among the actives: actives >= 1, got {actives}")
    return 1.0 - float(np.exp(-constant * round(cops / actives)))


def max_active_share(legitimacy: float, threshold: float) -> float:
    """The largest share of citizens that can ever be active: those whose grievance alone
    exceeds the threshold (with no cop in sight, P = 0), H (1 - L) > T, with H uniform on
    [0, 1)."""
    if legitimacy >= 1:
        return 0.0
    return float(max(0.0, 1.0 - threshold / (1.0 - legitimacy)))


class CivilViolence(mesa.Model):
    """Epstein's civil violence model 1 on a ``width`` x ``height`` torus.

    Parameters are those of Mesa's example, with its defaults.

    Parameters
    ----------
    citizen_density, cop_density
        Chance that a cell starts with a citizen, or a cop.
    citizen_vision, cop_vision
        How far (Manhattan distance, cells) each kind sees and moves.
    legitimacy
        L, the regime's legitimacy as every citizen perceives it.
    max_jail_term
        Jail terms are drawn uniformly from 0 to this many steps.
    active_threshold
        A citizen rebels when grievance minus net risk exceeds it.
    arrest_prob_constant
        k in P = 1 - exp(-k round(C / A)).
    movement
        Whether agents move to a random empty cell in sight after acting.
    seed
        Seeds the model's random generator.
    """

    def __init__(
        self,
        width: int = 40,
        height: int = 40,
        citizen_density: float = 0.7,
        cop_density: float = 0.074,
        citizen_vision: int = 7,
        cop_vision: int = 7,
        legitimacy: float = 0.8,
        max_jail_term: int = 1000,
        active_threshold: float = 0.1,
        arrest_prob_constant: float = 2.3,
        movement: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed)
        _check(
            width=width,
            height=height,
            citizen_density=citizen_density,
            cop_density=cop_density,
            citizen_vision=citizen_vision,
            cop_vision=cop_vision,
            legitimacy=legitimacy,
            max_jail_term=max_jail_term,
        )
        self.width, self.height = int(width), int(height)
        self.legitimacy, self.threshold = float(legitimacy), float(active_threshold)
        self.arrest_constant, self.max_jail_term = float(arrest_prob_constant), int(max_jail_term)
        self.movement = bool(movement)
        rng = self.rng
        draw = rng.random(self.width * self.height)
        kinds = np.full(draw.shape, -1, dtype=np.int8)
        kinds[draw < citizen_density] = CITIZEN
        kinds[(draw >= citizen_density) & (draw < citizen_density + cop_density)] = COP
        cells = np.flatnonzero(kinds >= 0).astype(np.int32)
        self.kind = kinds[cells].copy()
        self.cell = cells.copy()
        n = len(cells)
        self.grid = np.full(self.width * self.height, -1, dtype=np.int32)
        self.grid[cells] = np.arange(n, dtype=np.int32)
        citizen = self.kind == CITIZEN
        self.hardship = np.where(citizen, rng.random(n), 0.0)
        self.risk_aversion = np.where(citizen, rng.random(n), 0.0)
        self.grievance = self.hardship * (1.0 - self.legitimacy)
        self.state = np.where(citizen, QUIET, 0).astype(np.int8)
        self.jail = np.zeros(n, dtype=np.int32)
        self.citizens = int(citizen.sum())
        self.cops = n - self.citizens
        self._offsets = (
            kernel.von_neumann_offsets(citizen_vision),
            kernel.von_neumann_offsets(cop_vision),
        )
        room = max(len(o) for o in self._offsets)
        self._scratch = (np.empty(room, dtype=np.int32), np.empty(room, dtype=np.int32))
        self.arrests = 0
        self.history: list[dict[str, int]] = [self.counts()]

    def step(self) -> None:
        """Every agent acts once, in a fresh random order."""
        n = len(self.kind)
        order = self.rng.permutation(n)
        uniforms = self.rng.random((n, 3))
        self.arrests += kernel.step(
            self.grid,
            self.width,
            self.height,
            self.kind,
            self.cell,
            self.grievance,
            self.risk_aversion,
            self.state,
            self.jail,
            self._offsets[0],
            self._offsets[1],
            order,
            uniforms,
            self.threshold,
            self.arrest_constant,
            self.max_jail_term,
            self.movement,
            *self._scratch,
        )
        self.history.append(self.counts())

    def counts(self) -> dict[str, int]:
        """Citizens active, quiet and arrested (in jail, or just freed and not yet
        stepped, as Mesa counts them)."""
        s = self.state[self.kind == CITIZEN]
        return {
            "active": int((s == ACTIVE).sum()),
            "quiet": int((s == QUIET).sum()),
            "arrested": int((s == ARRESTED).sum()),
        }

    def shares(self) -> pd.DataFrame:
        """Each step's shares of citizens active, quiet and arrested."""
        return pd.DataFrame(self.history) / max(self.citizens, 1)

    def agents_frame(self) -> pd.DataFrame:
        """Every agent as a row: kind, x, y, grievance, risk aversion, state, jail left."""
        names = {ACTIVE: "active", QUIET: "quiet", ARRESTED: "arrested", 0: ""}
        return pd.DataFrame(
            {
                "kind": np.where(self.kind == COP, "cop", "citizen"),
                "x": self.cell % self.width,
                "y": self.cell // self.width,
                "grievance": self.grievance,
                "risk_aversion": self.risk_aversion,
                "state": [names[int(s)] for s in self.state],
                "jail": self.jail,
            }
        )


def _check(**values: Any) -> None:
    problems = []
    for name in ("width", "height", "citizen_vision", "cop_vision"):
        if int(values[name]) != values[name] or values[name] < 1:
            problems.append(f"{name} must be a whole number of at least 1, got {values[name]!r}")
    for name in ("citizen_density", "cop_density", "legitimacy"):
        if not 0 <= values[name] <= 1:
            problems.append(f"{name} must be between 0 and 1, got {values[name]!r}")
    if values["citizen_density"] + values["cop_density"] > 1:
        problems.append("citizen_density + cop_density must be at most 1")
    if int(values["max_jail_term"]) != values["max_jail_term"] or values["max_jail_term"] < 0:
        problems.append(
            f"max_jail_term must be a whole number >= 0, got {values['max_jail_term']!r}"
        )
    for name in ("citizen_vision", "cop_vision"):
        for side in ("width", "height"):
            if 2 * values[name] + 1 > values[side]:
                problems.append(
                    f"{name} {values[name]} sees round the whole torus ({side} {values[side]})"
                )
                break
    if problems:
        raise InputError("civil violence model: " + "; ".join(problems))
