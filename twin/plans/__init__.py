"""Plans: the analyses that compare and choose plans (coverage, post placement, demand
calibration). Running one scenario is ``twin.runs``; the live twin is ``twin.live``."""

from __future__ import annotations
