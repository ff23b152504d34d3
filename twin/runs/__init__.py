"""Executing one scenario: the run and its worker process, the run folder, and comparing
run folders. (Ensembles and the analyses that choose between plans are ``twin.plans``.)"""

from __future__ import annotations

from twin.runs.folder import Run
from twin.runs.run import RunIncomplete, RunResult, run_scenario, run_variants

__all__ = ["Run", "RunIncomplete", "RunResult", "run_scenario", "run_variants"]
