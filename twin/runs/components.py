"""Assembling a scenario's components: the one place where a scenario's sections become
the traffic, response and community components of a :class:`~twin.sim.Simulation`.

A what-if run's worker, the live twin and the benchmarks all build their simulations
here, so a new option of a component is wired once. (The sensors component is added by
each caller: a run replays a recording, the live twin listens to MQTT.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from twin.city import City
from twin.city.places import ResolvedEvent, ResolvedResponse
from twin.scenario import Scenario


def traffic_component(
    scenario: Scenario,
    *,
    net_file: Path,
    routes: list[Path],
    edge_sector: dict[str, str],
    events: list[ResolvedEvent],
    workdir: Path,
    simulator: str | None = None,
    detectors: dict[str, str] | None = None,
    on_advance: Callable[[float, float], None] | None = None,
    step_by_step: bool = False,
) -> Any:
    """The scenario's SUMO traffic (``simulator`` overrides ``traffic.simulator``)."""
    from twin.traffic import TrafficComponent

    t = scenario.traffic
    assert t is not None, "the scenario has no traffic section"
    return TrafficComponent(
        net_file=Path(net_file),
        route_files=[Path(p) for p in routes],
        edge_sector=edge_sector,
        events=events,
        workdir=Path(workdir),
        seed=scenario.seed,
        step_length=t.step_length,
        sample_every=t.sample_every,
        teleport_after=t.teleport_after,
        mode=t.mode,
        simulator=simulator or t.simulator,
        record_edges=scenario.outputs.edge_states,
        on_advance=on_advance,
        step_by_step=step_by_step,
        detectors=detectors,
        follow_counts=t.follow_counts,
        signal_priority_m=t.signal_priority.within_m if t.signal_priority else None,
        vehicle_types=t.vehicle_types(),
        lateral_resolution=t.sublane_m(),
    )


def add_components(
    sim: Any,
    scenario: Scenario,
    city: City | None,
    *,
    net_file: Path | None = None,
    routes: list[Path],
    events: list[ResolvedEvent],
    edge_sector: dict[str, str],
    workdir: Path,
    response: ResolvedResponse | None,
    start: datetime | None = None,
    sensors: Any = None,
    detectors: dict[str, str] | None = None,
    on_advance: Callable[[float, float], None] | None = None,
    step_by_step: bool = False,
) -> None:
    """Add the scenario's traffic, response, community and service hall to ``sim``, each where the
    scenario has its section, and the caller's ``sensors`` component between the response
    and the community (the order a run's events at one moment come in). ``start`` is the
    response's clock (the scenario's start by default; the live twin's now). ``city`` may
    be None for traffic alone, with its ``net_file``."""
    if scenario.traffic is not None:
        sim.add(
            traffic_component(
                scenario,
                net_file=net_file or city.net_path,
                routes=routes,
                edge_sector=edge_sector,
                events=events,
                workdir=workdir,
                detectors=detectors,
                on_advance=on_advance,
                step_by_step=step_by_step,
            )
        )
    if scenario.response is not None and response is not None:
        from twin.response import ResponseComponent

        sim.add(
            ResponseComponent(
                scenario.response,
                response,
                city,
                start=start or scenario.start,
                road_events=events,
                traffic=scenario.traffic is not None,
            )
        )
    if sensors is not None:
        sim.add(sensors)
    if scenario.community is not None:
        from twin.agents.component import CommunityComponent

        sim.add(CommunityComponent(scenario.community, city, road_events=events))
    if scenario.service is not None:
        from twin.service import ServiceHall

        sim.add(ServiceHall(scenario.service, start=start or scenario.start))
