"""Plans: running scenarios (one run, or a run with its baseline) and comparing runs."""

from __future__ import annotations

from twin.plans.run import RunIncomplete, RunResult, run_scenario, run_variants

__all__ = ["RunIncomplete", "RunResult", "run_scenario", "run_variants"]
