"""The SUMO adapter: demand, road events and traffic state on the twin's clock."""

from __future__ import annotations

from twin.traffic.component import SimulatorCrash, TrafficComponent
from twin.traffic.demand import DemandPiece, random_routes

__all__ = ["DemandPiece", "SimulatorCrash", "TrafficComponent", "random_routes"]
