"""One run of the emergency-driving measurement: probe vehicles on fixed routes in traffic.

``make bench`` (``emergency-driving``) runs this script once per kind of probe, each in its
own process, on the same net, background demand and probe routes, and compares the probes'
trip times:

- ``car``: a normal passenger car;
- ``emulated``: the twin's emergency unit (``twin.traffic.component``: vClass emergency,
  speed factor 1.3, speed mode 7), without SUMO's bluelight device;
- ``bluelight``: the same with SUMO's bluelight device, which makes other drivers form a
  rescue lane. The device can crash SUMO; a crash ends only this process, and the
  benchmark reports it.

Usage: ``python emergency_driving.py KIND NET ROUTES PROBES_JSON OUT_JSON``
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

SPEED_FACTOR = 1.3
END_S = 4 * 3600.0


def probe_types(kind: str) -> str:
    """The additional route file defining the probe vehicle type."""
    if kind == "car":
        vtype = '<vType id="probe" vClass="passenger"/>'
    elif kind == "emulated":
        vtype = f'<vType id="probe" vClass="emergency" speedFactor="{SPEED_FACTOR}"/>'
    else:
        vtype = (
            f'<vType id="probe" vClass="emergency" speedFactor="{SPEED_FACTOR}">'
            '<param key="has.bluelight.device" value="true"/></vType>'
        )
    return f"<routes>{vtype}</routes>\n"


def main(kind: str, net: str, routes: str, probes_json: str, out_json: str) -> None:
    import os

    from twin._sumo import sumo_env, tool_path

    os.environ.update(sumo_env())
    with contextlib.redirect_stdout(io.StringIO()):
        import libsumo as api
    from twin.traffic.component import UNIT_SPEED_MODE

    probes = json.loads(Path(probes_json).read_text())
    types = Path(out_json).with_suffix(".types.rou.xml")
    types.write_text(probe_types(kind))
    api.start(
        [
            str(tool_path("sumo")),
            "-n",
            net,
            "-r",
            f"{types},{routes}",
            "--seed",
            "1",
            "--no-step-log",
            "--time-to-teleport",
            "300",
            "--ignore-route-errors",
            "--device.rerouting.probability",
            "1",
            "--device.rerouting.period",
            "120",
            "--collision.action",
            "warn",
            "--no-warnings",
        ]
    )
    for p in probes:
        api.route.add(f"r{p['id']}", p["edges"])
        api.vehicle.add(f"probe{p['id']}", f"r{p['id']}", typeID="probe", depart=str(p["depart"]))
    waiting = {f"probe{p['id']}" for p in probes}
    departed: dict[str, float] = {}
    out: dict[str, float] = {}
    while waiting and api.simulation.getTime() < END_S:
        api.simulationStep()
        now = api.simulation.getTime()
        for vid in api.simulation.getDepartedIDList():
            if vid in waiting:
                departed[vid] = now
                if kind == "emulated":
                    api.vehicle.setSpeedMode(vid, UNIT_SPEED_MODE)
        for vid in api.simulation.getArrivedIDList():
            if vid in waiting:
                waiting.discard(vid)
                out[vid] = now - departed[vid]
    api.close()
    Path(out_json).write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:6])
