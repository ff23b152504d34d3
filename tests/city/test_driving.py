"""Driving side: Indonesia keeps left, and a built net shows it lane by lane and turn by turn."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from twin._errors import InputError
from twin._sumo import tool_path
from twin.city import build_city
from twin.city.driving import choose, side_at
from twin.city.sumonet import net_is_lefthand


@pytest.mark.parametrize(
    ("lon", "lat", "side", "where"),
    [
        (106.8272, -6.1754, "left", "Indonesia"),  # Monas, Jakarta
        (112.7521, -7.2575, "left", "Indonesia"),  # Surabaya
        (103.8198, 1.3521, "left", "Singapore"),
        (114.1694, 22.3193, "left", "Hong Kong"),
        (-0.1276, 51.5072, "left", "United Kingdom"),
        (139.6917, 35.6895, "left", "Japan"),
        (24.9384, 60.1699, "right", ""),  # Helsinki
        (120.9842, 14.5995, "right", ""),  # Manila: the Philippines keep right
        (100.5018, 13.7563, "left", "Thailand"),  # Bangkok
        (113.2644, 23.1291, "right", ""),  # Guangzhou, beside Hong Kong
    ],
)
def test_the_side_of_a_place(lon, lat, side, where):
    found = side_at(lon, lat)
    assert found.side == side
    assert where in found.decided_by


def test_the_given_side_wins_and_a_wrong_one_is_refused():
    assert choose("right", 106.83, -6.19).as_dict() == {
        "side": "right",
        "decided_by": "--driving-side",
    }
    assert choose("auto", None, None).side == "right"
    with pytest.raises(ValueError, match="left, right or auto"):
        choose("middle", 0, 0)


def _lane_sides(net_file) -> np.ndarray:
    """For each direction of a two-way road: +1 when its lanes lie left of the other
    direction's, seen along its direction of travel, -1 when right (at the middle of its
    outer lane; sumolib's shapes)."""
    import sumolib
    from shapely.geometry import LineString

    net = sumolib.net.readNet(str(net_file))
    out = []
    for edge in net.getEdges(withInternal=False):
        back = [
            e
            for e in edge.getToNode().getOutgoing()
            if e.getToNode() == edge.getFromNode() and e.getLength() > 30
        ]
        if edge.getLength() < 30 or not back:
            continue
        mine = LineString(edge.getLanes()[0].getShape())
        theirs = LineString(back[0].getLanes()[0].getShape())
        m = mine.interpolate(0.5, normalized=True)
        at = mine.project(m)
        a = np.array(mine.interpolate(max(at - 1, 0)).coords[0])
        b = np.array(mine.interpolate(min(at + 1, mine.length)).coords[0])
        other = np.array(theirs.interpolate(theirs.project(m)).coords[0])
        d, p = b - a, np.array(m.coords[0]) - other
        out.append(np.sign(d[0] * p[1] - d[1] * p[0]))
    return np.array(out)


def _turns(net_file) -> dict[str, float]:
    """The share of right turns and of left turns that are foes of the straight-on traffic
    coming the other way, over every junction of the net (SUMO's own right-of-way logic)."""
    import sumolib

    net = sumolib.net.readNet(str(net_file))
    counts = {"r": [0, 0], "l": [0, 0]}
    for node in net.getNodes():
        by_from: dict[str, list] = {}
        for c in node.getConnections():
            by_from.setdefault(c.getFrom().getID(), []).append(c)
        for conns in by_from.values():
            straight = [c for c in conns if c.getDirection() == "s"]
            if not straight:
                continue
            beyond = straight[0].getTo().getToNode()
            for opposite in (e for e in node.getIncoming() if e.getFromNode() == beyond):
                oncoming = [c for c in by_from.get(opposite.getID(), []) if c.getDirection() == "s"]
                for c in (c for c in conns if c.getDirection() in counts):
                    for s in oncoming:
                        foes = node.areFoes(node.getLinkIndex(c), node.getLinkIndex(s))
                        counts[c.getDirection()][0] += int(foes)
                        counts[c.getDirection()][1] += 1
    return {turn: crossing / max(total, 1) for turn, (crossing, total) in counts.items()}


@pytest.fixture(scope="module")
def jakarta_right(tmp_path_factory, jakarta_osm):
    return build_city(
        jakarta_osm,
        out=tmp_path_factory.mktemp("cities") / "jakarta_right",
        driving_side="right",
        progress=False,
    ).city


def test_jakarta_builds_left_hand_and_says_why(jakarta_build):
    city = jakarta_build.city
    assert city.manifest.driving_side == {
        "side": "left",
        "decided_by": "location: Indonesia keeps left",
    }
    assert net_is_lefthand(city.net_path)
    # every lane of a two-way road lies left of its direction of travel
    sides = _lane_sides(city.net_path)
    assert len(sides) > 50 and (sides > 0).mean() > 0.9


def test_a_right_hand_override_mirrors_lanes_and_turns(jakarta_build, jakarta_right):
    assert jakarta_right.manifest.driving_side["side"] == "right"
    assert not net_is_lefthand(jakarta_right.net_path)
    assert (_lane_sides(jakarta_right.net_path) < 0).mean() > 0.9
    left, right = _turns(jakarta_build.city.net_path), _turns(jakarta_right.net_path)
    # Keeping left, the right turn crosses the oncoming traffic and the left turn does not;
    # keeping right, the other way round.
    assert left["r"] > 0.9 and left["l"] < 0.1, left
    assert right["l"] > 0.7 and right["l"] > right["r"] + 0.3, right


def test_vehicles_keep_left_and_overtake_on_the_right(jakarta_build, tmp_path):
    """Cars on a two-lane road of the built net: the slow one keeps to lane 0, the outer lane
    on the left; the fast one passes it on lane 1, to its right."""
    import sumolib

    city = jakarta_build.city
    net = sumolib.net.readNet(str(city.net_path))
    edge = max(
        (
            e
            for e in net.getEdges(withInternal=False)
            if e.getLaneNumber() >= 2 and e.allows("passenger")
        ),
        key=lambda e: e.getLength(),
    )
    routes = tmp_path / "cars.rou.xml"
    routes.write_text(
        f"""<routes>
  <vType id="slow" maxSpeed="4" lcStrategic="-1"/>
  <vType id="fast" maxSpeed="15"/>
  <vehicle id="slow" type="slow" depart="0" departLane="0" departPos="0"><route edges="{edge.getID()}"/></vehicle>
  <vehicle id="fast" type="fast" depart="3" departLane="0" departPos="0"><route edges="{edge.getID()}"/></vehicle>
</routes>
""",
        encoding="utf-8",
    )
    fcd = tmp_path / "fcd.xml"
    subprocess.run(
        [
            str(tool_path("sumo")),
            "-n",
            str(city.net_path),
            "-r",
            str(routes),
            "--fcd-output",
            str(fcd),
            "--end",
            "120",
            "--no-step-log",
        ],
        check=True,
        capture_output=True,
    )
    a = np.array(edge.getFromNode().getCoord())
    d = np.array(edge.getToNode().getCoord()) - a
    lanes_used, sides, positions = set(), [], {}
    # fcd attributes in the order SUMO writes them (parse_fast needs that order)
    for step in sumolib.xml.parse_fast(str(fcd), "vehicle", ["id", "x", "y", "pos", "lane"]):
        if not step.lane.startswith(edge.getID() + "_"):
            continue
        lane = int(step.lane.rsplit("_", 1)[1])
        lanes_used.add((step.id, lane))
        positions.setdefault(step.id, []).append(float(step.pos))
        p = np.array([float(step.x), float(step.y)]) - a
        sides.append((lane, np.sign(d[0] * p[1] - d[1] * p[0])))
    passed = max(positions.get("fast", [0])) > max(positions.get("slow", [0]))
    assert ("fast", 1) in lanes_used, "the fast car never moved to the inner lane to pass"
    assert passed
    # lane 0 (where the slow car keeps) lies left of the direction of travel
    assert all(side > 0 for lane, side in sides if lane == 0)


def test_a_generated_net_is_placed_and_keeps_to_its_place(tmp_path):
    """netgenerate's grid has no place on Earth: --origin puts it in Jakarta, where it is
    rebuilt to keep left; without --origin it is refused with the way out."""
    net = tmp_path / "grid.net.xml"
    subprocess.run(
        [
            str(tool_path("netgenerate")),
            "--grid",
            "--grid.number",
            "5",
            "--grid.length",
            "200",
            "--default.lanenumber",
            "2",
            "-o",
            str(net),
        ],
        check=True,
        capture_output=True,
    )
    assert not net_is_lefthand(net)
    with pytest.raises(InputError, match="--origin LON,LAT"):
        build_city(sumo_net=net, out=tmp_path / "nowhere", progress=False)
    city = build_city(
        sumo_net=net, out=tmp_path / "grid", origin=(106.8272, -6.1754), progress=False
    ).city
    assert city.manifest.driving_side["side"] == "left"
    assert net_is_lefthand(city.net_path)
    assert (_lane_sides(city.net_path) > 0).mean() > 0.9
    # the grid's centre sits at the origin, 800 m across
    bb = city.manifest.bbox
    assert (bb["west"] + bb["east"]) / 2 == pytest.approx(106.8272, abs=1e-4)
    assert (bb["south"] + bb["north"]) / 2 == pytest.approx(-6.1754, abs=1e-4)
    assert (bb["east"] - bb["west"]) * 111_320 * np.cos(np.radians(6.1754)) == pytest.approx(
        800, rel=0.02
    )
    summary = json.loads(city.manifest.model_dump_json())
    assert summary["options"]["origin"] == [106.8272, -6.1754]
