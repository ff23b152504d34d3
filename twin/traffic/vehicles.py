"""Vehicle types of the background traffic, and the mix a scenario draws them in.

Indonesian city traffic is mostly motorcycles, which filter between cars. The twin gives
each type SUMO's own parameters (``vType``: class, size, acceleration, driver imperfection)
and, where motorcycles run, SUMO's sublane model (``--lateral-resolution``): a lane is cut
into strips, and a motorcycle (``latAlignment="arbitrary"``, small ``minGapLat``) moves
into any strip wide enough, beside or between cars.

The figures below are typical urban values, not measurements of one city: a scenario that
needs its own calibrates them from counts and speeds (``twin calibrate``).
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

from twin.scenario.traffic import SUBLANE_M, VEHICLE_TYPE_NAMES

__all__ = ["SUBLANE_M", "VEHICLE_TYPES", "strip_vtypes", "type_of", "vclass_of", "write_vtypes"]

#: SUMO vType attributes of each type of the mix. ``angkot`` are Jakarta's minibuses
#: (Suzuki Carry and the like): car-sized, slower, and driven more erratically.
VEHICLE_TYPES: dict[str, dict[str, str]] = {
    "motorcycle": {
        "vClass": "motorcycle",
        "guiShape": "motorcycle",
        "length": "2.0",
        "width": "0.8",
        "minGap": "1.0",
        "accel": "3.5",
        "decel": "6.0",
        "sigma": "0.5",
        "maxSpeed": "22.22",
        "speedFactor": "normc(1.1,0.1,0.7,1.4)",
        "latAlignment": "arbitrary",
        "minGapLat": "0.2",
        "maxSpeedLat": "1.5",
        "lcSublane": "2.0",
        "lcPushy": "0.5",
        "lcAssertive": "2.0",
    },
    "car": {
        "vClass": "passenger",
        "guiShape": "passenger",
        "length": "4.4",
        "width": "1.7",
        "minGap": "2.5",
        "accel": "2.6",
        "decel": "4.5",
        "sigma": "0.5",
        "maxSpeed": "27.78",
        "speedFactor": "normc(1.0,0.1,0.7,1.3)",
    },
    "angkot": {
        "vClass": "passenger",
        "guiShape": "passenger/van",
        "length": "4.1",
        "width": "1.6",
        "minGap": "2.0",
        "accel": "2.0",
        "decel": "4.5",
        "sigma": "0.7",
        "maxSpeed": "19.44",
        "speedFactor": "normc(0.9,0.1,0.6,1.2)",
    },
    "bus": {
        "vClass": "bus",
        "guiShape": "bus",
        "length": "12.0",
        "width": "2.5",
        "minGap": "3.0",
        "accel": "1.2",
        "decel": "4.0",
        "sigma": "0.5",
        "maxSpeed": "22.22",
    },
    "truck": {
        "vClass": "truck",
        "guiShape": "truck",
        "length": "7.5",
        "width": "2.3",
        "minGap": "2.5",
        "accel": "1.3",
        "decel": "4.0",
        "sigma": "0.5",
        "maxSpeed": "22.22",
    },
}

assert tuple(VEHICLE_TYPES) == VEHICLE_TYPE_NAMES

#: The name trips without a type of ours carry in SUMO's records (a car).
SUMO_DEFAULT = "DEFAULT_VEHTYPE"
VTYPES_FILE = "vtypes.add.xml"


def write_vtypes(folder: Path, names: list[str] | tuple[str, ...]) -> Path:
    """``folder/vtypes.add.xml`` with the vTypes of ``names`` (written once: the same names
    give the same file)."""
    lines = ["<additional>"]
    for name in names:
        attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in VEHICLE_TYPES[name].items())
        lines.append(f'    <vType id="{name}" {attrs}/>')
    lines.append("</additional>\n")
    text = "\n".join(lines)
    path = folder / VTYPES_FILE
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


_VTYPE_LINE = re.compile(r"^\s*<vType\s[^>]*/>\s*$")


def strip_vtypes(route_file: Path) -> None:
    """Remove the vType definitions duarouter copies into a route file: the run loads them
    once, from ``vtypes.add.xml``, and SUMO refuses a type defined twice."""
    tmp = route_file.with_name(route_file.name + ".tmp")
    with route_file.open(encoding="utf-8") as src, tmp.open("w", encoding="utf-8") as dst:
        for line in src:
            if not _VTYPE_LINE.match(line):
                dst.write(line)
    tmp.replace(route_file)


def vclass_of(vehicle_type: str | None) -> str:
    """The SUMO vehicle class a type of the mix is routed for (cars without a type)."""
    return VEHICLE_TYPES[vehicle_type]["vClass"] if vehicle_type else "passenger"


def type_of(sumo_type: str) -> str:
    """The mix's name for a SUMO vType of a trip record (SUMO's default type is a car)."""
    return "car" if sumo_type == SUMO_DEFAULT else sumo_type
