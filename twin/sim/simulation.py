"""The kernel: one SimPy clock, one timeline, and the components that act on them.

A :class:`Simulation` owns a SimPy ``Environment``, the only clock of a run, and a
:class:`~twin.sim.timeline.Timeline`. Components (traffic, response, community, sensors)
plug in through :class:`Component`: ``start`` registers their SimPy processes, ``close``
releases what they hold. They never call each other; they append events to the timeline and
subscribe to the kinds they care about.

Time is in seconds since the scenario's start; :meth:`Simulation.clock` turns it into the
local date and time of the scenario.

>>> import datetime as dt
>>> from twin.events import RunEnded
>>> class Ticker:
...     name = "ticker"
...     def start(self, sim):
...         def tick():
...             while True:
...                 yield sim.env.timeout(30)
...                 sim.emit(RunEnded(status="tick", reason=""), source=self.name)
...         sim.env.process(tick())
...     def close(self, sim):
...         pass
>>> sim = Simulation(duration=100, seed=1, start=dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC))
>>> sim.add(Ticker())
>>> sim.run()
>>> [e["t"] for e in sim.timeline.events("run_ended")]
[30.0, 60.0, 90.0]
>>> sim = Simulation(duration=90, seed=1, start=dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC))
>>> sim.add(Ticker())
>>> sim.run()
>>> [e["t"] for e in sim.timeline.events("run_ended")]  # the end time is included
[30.0, 60.0, 90.0]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import simpy
import simpy.rt

from twin.events import Event
from twin.sim.timeline import Timeline


class Component(Protocol):
    """What a part of the twin must offer to run on the clock."""

    name: str

    def start(self, sim: Simulation) -> None:
        """Register SimPy processes on ``sim.env`` and subscriptions on ``sim.timeline``."""

    def close(self, sim: Simulation) -> None:
        """Release what the component holds (a SUMO connection, files). Called once."""


class Stop(Exception):
    """Raised by a component's process to end the run now, short of its duration (a
    trainer ending an exercise); :meth:`Simulation.run` ends cleanly and says why in
    :attr:`Simulation.stopped`."""


class Simulation:
    """One run: a clock, a timeline, a seeded random generator and components.

    Parameters
    ----------
    duration
        Seconds of simulated time.
    seed
        Seeds :attr:`rng`; components draw every random number from it (or from
        generators spawned from it), never from global state.
    start
        Local date and time (with its offset) of simulated time 0.
    timeline
        Where events go; a fresh in-memory one by default.
    checkpoint_every
        Simulated seconds between flushes of the timeline to its stream, and between
        calls of ``on_progress``.
    realtime
        Run in wall-clock time at this speed (1: real time), with SimPy's
        ``RealtimeEnvironment``; ``None``: as fast as possible.
    """

    def __init__(
        self,
        *,
        duration: float,
        seed: int,
        start: datetime,
        timeline: Timeline | None = None,
        checkpoint_every: float = 60.0,
        realtime: float | None = None,
    ) -> None:
        if duration <= 0:
            raise ValueError(f"duration must be positive, got {duration}")
        if checkpoint_every <= 0:
            raise ValueError(f"checkpoint_every must be positive, got {checkpoint_every}")
        if realtime is not None and not realtime > 0:
            raise ValueError(f"realtime must be a positive speed, got {realtime}")
        # Live twins and exercises keep pace with the wall clock (``realtime`` times as fast);
        # what-if runs go as fast as they can.
        self.env = (
            simpy.rt.RealtimeEnvironment(factor=1.0 / realtime, strict=False)
            if realtime is not None
            else simpy.Environment()
        )
        self.duration = float(duration)
        self.seed = int(seed)
        self.start = start
        self.rng = np.random.default_rng(seed)
        self.timeline = timeline if timeline is not None else Timeline()
        self.checkpoint_every = float(checkpoint_every)
        self.components: list[Component] = []
        self.stopped = ""  # why a component ended the run early (see Stop)
        self.orders: Any = None  # a live twin's order book (twin.live.run.OrderBook)
        self.sensors: Any = None  # the sensors component, where messages come in

    @property
    def speed(self) -> float | None:
        """Simulated seconds per wall-clock second (``None``: as fast as possible)."""
        if isinstance(self.env, simpy.rt.RealtimeEnvironment):
            return 1.0 / self.env.factor
        return None

    def set_speed(self, speed: float | None = None) -> None:
        """Keep pace with the wall clock from now on, at ``speed`` (the same speed if not
        given): a trainer changing the exercise's pace, or resuming after a pause (the
        paused wall-clock time is not caught up). Only for a run in wall-clock time."""
        env = self.env
        if not isinstance(env, simpy.rt.RealtimeEnvironment):
            raise ValueError("only a run in wall-clock time has a speed")
        if speed is not None:
            if not speed > 0:
                raise ValueError(f"speed must be positive, got {speed}")
            env._factor = 1.0 / speed
        # SimPy's sync() moves the wall-clock anchor only; the simulated one must move too
        env.env_start = env.now
        env.real_start = time.monotonic()

    def add(self, component: Component) -> None:
        """Attach a component; its processes start when the run starts."""
        if any(c.name == component.name for c in self.components):
            raise ValueError(f"a component named {component.name!r} is already attached")
        self.components.append(component)

    def emit(self, event: Event, *, source: str) -> None:
        """Append ``event`` to the timeline at the current simulated time."""
        self.timeline.append(self.env.now, event, source=source)

    def clock(self, t: float | None = None) -> datetime:
        """The scenario's local date and time at simulated time ``t`` (default: now)."""
        return self.start + timedelta(seconds=self.env.now if t is None else t)

    def checkpoint(self) -> None:
        """Flush the timeline and tell the run's ``on_progress`` now, between its regular
        checkpoints: a paused exercise shows its readers everything up to the pause."""
        self.timeline.flush()
        if getattr(self, "_on_progress", None) is not None:
            self._on_progress(self.env.now)

    def run(self, on_progress: Callable[[float], None] | None = None) -> None:
        """Run every component until ``duration``, then close them (also on error).

        Events scheduled at exactly ``duration`` still happen, so a state sampled at the
        end of the run is on the timeline.
        """
        started: list[Component] = []
        self._on_progress = on_progress
        try:
            for component in self.components:
                component.start(self)
                started.append(component)
            t = 0.0
            while t < self.duration:
                t = min(t + self.checkpoint_every, self.duration)
                try:
                    self.env.run(until=t)
                except Stop as stop:
                    self.stopped = str(stop) or "stopped"
                    break
                if t == self.duration:  # SimPy's `until` is exclusive; the end time is not
                    while self.env.peek() <= self.duration:
                        self.env.step()
                self.timeline.flush()
                if on_progress is not None:
                    on_progress(t)
        finally:
            for component in reversed(started):
                component.close(self)
            self.timeline.flush()
