"""civil-violence: the twin's model against Mesa's example (see run.py)."""

from __future__ import annotations

import time


def bench_civil_violence(repeat: int) -> None:
    """The twin's civil violence model against Mesa's example (see the module docstring)."""
    import numpy as np
    from mesa.examples.advanced.epstein_civil_violence.model import EpsteinCivilViolence
    from scipy import stats

    from twin.agents.civil import CivilViolence

    seeds, steps = 20, 100

    def mesa_run(seed: int) -> tuple[np.ndarray, float]:
        m = EpsteinCivilViolence(seed=seed)
        rows, t0 = [], time.perf_counter()
        for _ in range(steps):
            m.step()
            rows.append((m.ACTIVE, m.QUIET, m.ARRESTED))
        wall = (time.perf_counter() - t0) / steps
        a = np.array(rows, dtype=float)
        return (a / a.sum(axis=1, keepdims=True)).mean(axis=0), wall

    def twin_run(seed: int) -> tuple[np.ndarray, float]:
        m = CivilViolence(seed=seed)
        t0 = time.perf_counter()
        for _ in range(steps):
            m.step()
        wall = (time.perf_counter() - t0) / steps
        return m.shares().iloc[1:].to_numpy().mean(axis=0), wall

    runs = {
        "mesa example": [mesa_run(s) for s in range(seeds)],
        "twin": [twin_run(s) for s in range(seeds)],
    }
    print(
        f"\n### civil-violence: Epstein model 1, Mesa's defaults (40 x 40, legitimacy 0.8), {seeds} seeds x {steps} steps\n"
    )
    print("| model | time per step | active | quiet | jailed |")
    print("|---|---|---|---|---|")
    cis = {}
    for name, rs in runs.items():
        shares = np.array([r[0] for r in rs])
        per_step = min(r[1] for r in rs)
        cells = []
        for j in range(3):
            x = shares[:, j]
            half = stats.t.ppf(0.975, seeds - 1) * x.std(ddof=1) / np.sqrt(seeds)
            cis[(name, j)] = (x.mean() - half, x.mean() + half, x.std(ddof=1))
            cells.append(f"{x.mean():.4f} ± {half:.4f} (sd {x.std(ddof=1):.4f})")
        print(f"| {name} | {per_step * 1000:.2f} ms | {' | '.join(cells)} |")
    ratio = min(r[1] for r in runs["mesa example"]) / min(r[1] for r in runs["twin"])
    agree = all(
        cis[("twin", j)][0] <= cis[("mesa example", j)][1]
        and cis[("mesa example", j)][0] <= cis[("twin", j)][1]
        for j in range(3)
    )
    sd = [
        stats.levene(
            [r[0][j] for r in runs["twin"]], [r[0][j] for r in runs["mesa example"]]
        ).pvalue
        for j in range(3)
    ]
    print(
        f"\nThe twin runs a step {ratio:.0f}× faster than Mesa's example: "
        f"{'meets' if ratio >= 10 else 'MISSES'} the 10× target. The means' 95 % intervals "
        f"{'overlap' if agree else 'DO NOT overlap'} for every share; Levene's test on the "
        f"spreads gives p = {', '.join(f'{p:.2f}' for p in sd)} (active, quiet, jailed)."
    )
