"""The kernel: :class:`Simulation` (one SimPy clock), :class:`Timeline` and the
:class:`Component` protocol that traffic, response, community and sensors implement."""

from __future__ import annotations

from twin.sim.simulation import Component, Simulation, Stop
from twin.sim.timeline import Timeline

__all__ = ["Component", "Simulation", "Stop", "Timeline"]
