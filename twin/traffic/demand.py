"""Traffic demand: seeded routes on a city's net, made by SUMO's own ``randomTrips.py``.

The scenario gives vehicles per hour by hour of day. Each piece of the run between whole
hours becomes one ``randomTrips.py`` call with that piece's insertion rate and its own
seed (drawn from the scenario seed), which routes the trips with ``duarouter``
(``--validate`` drops trips that have no route). A demonstration adds trips whose
destinations are the roads just outside its closed area (``--weights-prefix``).

With a vehicle mix (``traffic.demand.mix``) each piece is drawn once per type, at the type's
share of the rate and with a seed of its own, routed for that type's vehicle class (a bus
or a truck keeps to the roads it may use) and named ``<piece>_<type>_<n>``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from twin._errors import SumoError
from twin._sumo import sumo_env, sumo_home
from twin.traffic.gravity import city_routes
from twin.traffic.vehicles import strip_vtypes, vclass_of, write_vtypes

if TYPE_CHECKING:
    from twin.city import City
    from twin.city.places import ResolvedEvent
    from twin.scenario import Scenario


@dataclass(frozen=True)
class DemandPiece:
    """Trips departing between ``begin_s`` and ``end_s`` at ``veh_per_hour``."""

    prefix: str
    begin_s: float
    end_s: float
    veh_per_hour: float
    seed: int
    destinations: tuple[str, ...] = ()  # weight destinations to these edges only
    vehicle_type: str | None = None  # a type of the mix (twin.traffic.vehicles); None: cars


def random_routes(
    net_file: Path,
    piece: DemandPiece,
    folder: Path,
    *,
    min_trip_m: float,
    vtypes_file: Path | None = None,
) -> Path | None:
    """Routes for one piece of demand, or ``None`` if it has no vehicle.

    Raises
    ------
    SumoError
        If ``randomTrips.py`` or ``duarouter`` fails; the message quotes them.
    """
    if piece.veh_per_hour <= 0 or piece.end_s <= piece.begin_s:
        return None
    net_file, folder = net_file.resolve(), folder.resolve()
    routes = folder / f"{piece.prefix}.rou.xml"
    args = [
        sys.executable,
        str(sumo_home() / "tools" / "randomTrips.py"),
        "-n",
        str(net_file),
        "-o",
        str(folder / f"{piece.prefix}.trips.xml"),
        "-r",
        str(routes),
        "--seed",
        str(piece.seed),
        "--begin",
        f"{piece.begin_s:g}",
        "--end",
        f"{piece.end_s:g}",
        "--insertion-rate",
        f"{piece.veh_per_hour:g}",
        "--random-depart",
        "--prefix",
        f"{piece.prefix}_",
        "--min-distance",
        f"{min_trip_m:g}",
        "--fringe-factor",
        "5",
        "--validate",
        "--remove-loops",
        "--trip-attributes",
        'departLane="best" departSpeed="max"'
        + (f' type="{piece.vehicle_type}"' if piece.vehicle_type else ""),
        "--vclass",
        vclass_of(piece.vehicle_type),
    ]
    if vtypes_file is not None:
        args += ["--additional-files", str(vtypes_file.resolve())]
    if piece.destinations:
        prefix = folder / f"{piece.prefix}_weights"
        lines = "".join(f'    <edge id="{e}" value="1"/>\n' for e in piece.destinations)
        (folder / f"{piece.prefix}_weights.dst.xml").write_text(
            f'<edgedata>\n  <interval begin="0" end="{piece.end_s:g}">\n{lines}  </interval>\n</edgedata>\n',
            encoding="utf-8",
        )
        args += ["--weights-prefix", str(prefix)]
    proc = subprocess.run(
        args, env=sumo_env(), capture_output=True, text=True, check=False, cwd=folder
    )
    if proc.returncode != 0 or not routes.exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
        raise SumoError(f"randomTrips.py failed for demand {piece.prefix}:\n{tail}")
    return routes


def scenario_demand(
    scenario: Scenario, city: City, events: list[ResolvedEvent], folder: Path
) -> list[Path]:
    """The scenario's route files in ``folder``: the background demand, piece by piece
    between whole hours, and each demonstration's extra traffic toward its area; each
    piece seeded from the scenario's seed, so the same scenario gives the same routes."""
    seeds = np.random.SeedSequence(scenario.seed).generate_state(
        len(scenario.demand_segments()) + len(events)
    )
    pieces = [
        DemandPiece(f"demand{i:02d}", b, e, rate, int(seeds[i]))
        for i, (b, e, rate) in enumerate(scenario.demand_segments())
    ]
    offset = len(pieces)
    for j, ev in enumerate(events):
        if ev.type == "demonstration" and ev.extra_veh_per_hour > 0 and ev.approach_edges:
            pieces.append(
                DemandPiece(
                    f"toward_{_safe(ev.id)}",
                    ev.begin_s,
                    ev.end_s,
                    ev.extra_veh_per_hour,
                    int(seeds[offset + j]),
                    tuple(ev.approach_edges),
                )
            )
    mix = scenario.traffic.demand.mix
    if mix:
        pieces = [
            DemandPiece(
                f"{p.prefix}_{name}",
                p.begin_s,
                p.end_s,
                p.veh_per_hour * mix[name],
                int(np.random.SeedSequence([p.seed, k]).generate_state(1)[0]),
                p.destinations,
                name,
            )
            for p in pieces
            for k, name in enumerate(scenario.traffic.vehicle_types())
        ]
    demand = scenario.traffic.demand
    pois = [
        (str(e), str(c)) for e, c in zip(city.pois["sumo_edge"], city.pois["category"], strict=True)
    ]
    floor = [
        (str(e), float(m2))
        for e, m2 in zip(city.activity["sumo_edge"], city.activity["floor_m2"], strict=True)
    ]
    routes = []
    for piece in pieces:
        # the router reads the piece's vehicle type from a file of its own; the run loads
        # every type once, so the copy duarouter writes into the routes is taken out again
        vtypes = write_vtypes(folder, (piece.vehicle_type,)) if piece.vehicle_type else None
        if demand.method == "city" and not piece.destinations:
            path = city_routes(
                city.net_path,
                pois,
                floor=floor,
                prefix=piece.prefix,
                begin_s=piece.begin_s,
                end_s=piece.end_s,
                veh_per_hour=piece.veh_per_hour,
                seed=piece.seed,
                folder=folder,
                vehicle_type=piece.vehicle_type,
                vclass=vclass_of(piece.vehicle_type),
                vtypes_file=vtypes,
                trip_length_m=demand.trip_length_m,
                min_trip_m=demand.min_trip_m,
                through_share=demand.through_share,
            )
        else:
            path = random_routes(
                city.net_path, piece, folder, min_trip_m=demand.min_trip_m, vtypes_file=vtypes
            )
        if vtypes is not None:
            if path is not None:
                strip_vtypes(path)
            vtypes.unlink()
        if path is not None:
            routes.append(path)
    return routes


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)
