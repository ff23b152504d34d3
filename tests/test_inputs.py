"""Every reader of a file from outside, given input generated to break it: each gives a
result or an InputError that names the file, never a traceback, a hang or a runaway use of
memory. (Sensor messages have their own: tests/sensors/test_hostile.py.)"""

from __future__ import annotations

import copy
import doctest
import gzip
import json
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import twin._inputs as inputs_module
from twin._errors import InputError
from twin._inputs import MAX_DEPTH, load_json, load_yaml
from twin.city.facilities import read_facilities
from twin.city.osm import read_osm
from twin.kpi import StatusRules
from twin.live.fork import fork_scenario
from twin.scenario import ScenarioError, load_plan, load_scenario, scenario_from_dict
from twin.sensors.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
RUSH = ROOT / "scenarios" / "helsinki_morning_rush.yaml"
FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
#: Text that YAML readers choke on: tabs, odd indents, anchors, tags, directives.
yaml_junk = st.text(
    alphabet=st.sampled_from([*" \t\n:-[]{}&*!|>'\"#%@`,?abc01.", "\ufeff", "\x00", "\udcff"]),
    max_size=120,
)


def write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    path.write_bytes(data)
    return path


def test_the_docstring_examples_hold():
    assert doctest.testmod(inputs_module, optionflags=doctest.ELLIPSIS).failed == 0


# -- YAML and JSON, the readers under every file ---------------------------------------------


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), yaml_junk, values.map(yaml.safe_dump)))
def test_any_yaml_file_is_read_or_refused_by_name(tmp_path_factory, data):
    path = write(tmp_path_factory.mktemp("y") / "f.yaml", data)
    try:
        load_yaml(path, what="scenario file")
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: " + "[" * 500 + "]" * 500, f"nested deeper than {MAX_DEPTH} levels"),
        ("- " * 300 + "x", f"nested deeper than {MAX_DEPTH} levels"),
        # a billion laughs: ten aliases of ten aliases, nine deep
        (
            "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)),
            "holds more than 200,000 values",
        ),
        ("name: x\n\tbad: tab\n", "line 2, column 1: not valid YAML"),
        (b"name: caf\xe9\n", "line 1: byte 0xe9 is not UTF-8"),
    ],
)
def test_hostile_yaml_is_refused_quickly_with_where(tmp_path, text, words):
    path = write(tmp_path / "s.yaml", text)
    started = time.perf_counter()
    with pytest.raises(InputError, match=words.replace("(", r"\(")):
        load_yaml(path, what="scenario file")
    assert time.perf_counter() - started < 10  # refused, not expanded


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.truncate(2 * 1024 * 1024)
    with pytest.raises(InputError, match=r"big.yaml: the scenario file is 2.0 MiB, more than"):
        load_yaml(path, what="scenario file")


@FUZZ
@given(depth=st.integers(0, 30_000), data=st.binary(max_size=100))
def test_any_json_file_is_read_or_refused_by_name(tmp_path_factory, depth, data):
    path = write(tmp_path_factory.mktemp("j") / "f.json", b"[" * depth + data + b"]" * depth)
    try:
        load_json(path, what="posts file")
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ")


# -- scenarios, overlays, rules ----------------------------------------------------------------


def _paths(doc, prefix=()):
    """Every path into a nested document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


RUSH_DOC = yaml.safe_load(RUSH.read_text(encoding="utf-8"))
RUSH_PATHS = [p for p in _paths(RUSH_DOC) if p]


def _set(doc, path, value):
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@FUZZ
@given(path=st.sampled_from(RUSH_PATHS), value=values)
def test_a_scenario_with_any_field_changed_is_valid_or_named(path, value):
    """The shipped morning rush with one field set to anything: valid, or a ScenarioError
    that lists problems, each with a field path."""
    try:
        scenario_from_dict(_set(RUSH_DOC, path, value), source="rush")
    except ScenarioError as exc:
        assert exc.problems and all(isinstance(p, str) and m for p, m in exc.problems)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), yaml_junk, values.map(yaml.safe_dump)))
def test_any_scenario_file_is_loaded_or_named(tmp_path_factory, data):
    path = write(tmp_path_factory.mktemp("s") / "s.yaml", data)
    try:
        load_scenario(path)
    except ScenarioError as exc:
        assert exc.source == str(path) and exc.problems


@pytest.fixture(scope="module")
def fork_package(tmp_path_factory):
    """A live twin's fork package: its scenario and the moment of the fork."""
    package = tmp_path_factory.mktemp("package")
    live = json.loads(load_scenario(RUSH).model_dump_json())
    (package / "scenario.yaml").write_text(yaml.safe_dump(live), encoding="utf-8")
    (package / "fork.json").write_text(json.dumps({"t_s": 600.0}), encoding="utf-8")
    return package


overlays = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "name": values,
            "events": st.lists(
                st.dictionaries(st.sampled_from(["type", "start", "at", "id"]), values), max_size=3
            )
            | values,
            "response": st.dictionaries(
                st.just("incidents"), st.dictionaries(st.just("scripted"), values)
            )
            | values,
            "traffic": values,
        },
    ),
)


@FUZZ
@given(overlay=overlays)
def test_any_fork_overlay_gives_a_plan_or_a_named_problem(fork_package, overlay):
    try:
        fork_scenario(fork_package, overlay, 600.0)
    except InputError as exc:  # ScenarioError is one
        assert str(exc)


#: Plans as a planner might get them wrong: named unit groups and pools merged by name,
#: costs, and anything at all.
plans = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "name": values | st.sampled_from(["more-cars", "x"]),
            "costs": st.dictionaries(st.sampled_from(["km", "unit_hour", "post_day"]), values)
            | values,
            "response": st.fixed_dictionaries(
                {},
                optional={
                    "units": st.lists(
                        st.dictionaries(
                            st.sampled_from(["name", "count", "remove", "base", "type"]),
                            values | st.sampled_from(["P", "A", "Z"]),
                        ),
                        max_size=3,
                    )
                    | values,
                    "call_centre": values,
                },
            )
            | values,
            "seed": values,
            "events": values,
        },
    ),
)


@FUZZ
@given(doc=plans, raw=st.one_of(st.none(), st.binary(max_size=120), yaml_junk))
def test_any_plan_file_gives_a_plan_or_a_named_problem(tmp_path_factory, doc, raw):
    """A plan file (``twin evaluate --plan``), read and laid over the morning rush: a
    scenario, or an InputError naming the file."""
    path = tmp_path_factory.mktemp("p") / "plan.yaml"
    write(path, raw if raw is not None else yaml.safe_dump(doc))
    try:
        load_plan(path).apply(load_scenario(RUSH))
    except InputError as exc:  # ScenarioError is one
        assert "plan.yaml" in str(exc)


#: Readiness inventories as a command might get them wrong.
inventories = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "name": values,
            "shifts": st.dictionaries(st.sampled_from(["pagi", "siang", "x"]), values) | values,
            "personnel": st.dictionaries(
                st.sampled_from(["police_officer", "call_taker", "cook"]),
                st.dictionaries(st.sampled_from(["pagi", "malam", "sore"]), values) | values,
            )
            | values,
            "vehicles": st.dictionaries(st.sampled_from(["police_car", "tank"]), values) | values,
            "budget": values,
            "outside": st.dictionaries(st.sampled_from(["network", "weather"]), values) | values,
        },
    ),
)


@FUZZ
@given(doc=inventories, raw=st.one_of(st.none(), st.binary(max_size=120), yaml_junk))
def test_any_inventory_file_gives_its_readiness_or_a_named_problem(tmp_path_factory, doc, raw):
    """An inventory file (``--inventory``), read and checked against the morning rush:
    the eight kinds of readiness, or an InputError naming the file."""
    from twin.plans.readiness import check, load_inventory

    path = tmp_path_factory.mktemp("i") / "inventory.yaml"
    write(path, raw if raw is not None else yaml.safe_dump(doc))
    try:
        inventory = load_inventory(path)
    except InputError as exc:  # ScenarioError is one
        assert "inventory.yaml" in str(exc)
        return
    result = check(load_scenario(RUSH), inventory, cost=1e6, replications=3)
    assert len(result["kinds"]) == 8


@FUZZ
@given(data=st.one_of(values.map(yaml.safe_dump), yaml_junk))
def test_any_rules_file_gives_rules_or_a_named_problem(tmp_path_factory, data):
    path = write(tmp_path_factory.mktemp("r") / "rules.yaml", data)
    try:
        rules = StatusRules.from_file(path)
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ")
    else:
        assert all(a == a for pair in rules.model_dump().values() for a in pair)  # no NaN


# -- the city's files: sensors, posts, OSM -------------------------------------------------------

sensor_rows = st.lists(
    st.fixed_dictionaries(
        {
            "id": values,
            "kind": st.sampled_from(["detector", "camera", "gauge", "crowd"]) | values,
            "lat": st.floats(allow_nan=True) | values,
            "lon": st.floats(allow_nan=True) | values,
        },
        optional={"threshold_m": values, "floods_radius_m": values},
    ),
    max_size=4,
)


@FUZZ
@given(doc=st.one_of(values, st.fixed_dictionaries({"sensors": sensor_rows})))
def test_any_sensors_file_gives_a_registry_or_named_problems(helsinki_city, tmp_path_factory, doc):
    path = write(tmp_path_factory.mktemp("sensors") / "s.yaml", yaml.safe_dump(doc))
    try:
        load_registry(path, helsinki_city)
    except ScenarioError as exc:
        assert exc.source == str(path) and exc.problems


features = st.lists(
    st.one_of(
        values,
        st.fixed_dictionaries(
            {
                "geometry": st.fixed_dictionaries(
                    {
                        "type": st.just("Point") | values,
                        "coordinates": st.lists(st.floats(allow_nan=True) | values, max_size=3)
                        | values,
                    }
                ),
                "properties": st.fixed_dictionaries(
                    {
                        "kind": st.sampled_from(["police", "hospital", "fire"]) | values,
                        "name": values,
                    }
                ),
            }
        ),
    ),
    max_size=4,
)


@FUZZ
@given(
    doc=st.one_of(values, st.fixed_dictionaries({"type": values, "features": features | values}))
)
def test_any_posts_file_gives_posts_or_names_the_feature(tmp_path_factory, doc):
    path = write(tmp_path_factory.mktemp("posts") / "posts.geojson", json.dumps(doc))
    try:
        found = read_facilities(path)
    except InputError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert all(-90 <= f.lat <= 90 and -180 <= f.lon <= 180 for f in found)


@FUZZ
@given(
    text=st.lists(st.sampled_from([*',"\n\r;x19.-', "police", "lat", "\x00"]), max_size=80).map(
        "".join
    )
)
def test_any_posts_csv_gives_posts_or_names_the_line(tmp_path_factory, text):
    path = write(tmp_path_factory.mktemp("posts") / "posts.csv", "name,lat,lon,kind\n" + text)
    try:
        read_facilities(path)
    except InputError as exc:
        assert str(exc).startswith(str(path))


coordinate = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=6)
)
osm_node = st.builds(
    lambda i, lat, lon, tag: f'<node id="{i}" lat="{lat}" lon="{lon}">{tag}</node>',
    st.integers(-5, 2**63),
    coordinate,
    coordinate,
    st.sampled_from(["", '<tag k="amenity" v="police"/>', '<tag k="name" v="&amp;"/>', "<tag/>"]),
)
osm_way = st.builds(
    lambda i, refs, tag: (
        f'<way id="{i}">' + "".join(f"<nd ref='{r}'/>" for r in refs) + f"{tag}</way>"
    ),
    st.integers(-5, 50),
    st.lists(st.integers(-5, 50), max_size=5),
    st.sampled_from(["", '<tag k="highway" v="primary"/>', '<tag k="building" v="yes"/>']),
)
osm_xml = st.builds(
    lambda items, tail: '<?xml version="1.0"?><osm version="0.6">' + "".join(items) + tail,
    st.lists(osm_node | osm_way, max_size=12),
    st.sampled_from(["</osm>", "", "<node", "</way>"]),
)


@FUZZ
@given(
    body=st.one_of(osm_xml.map(str.encode), st.binary(max_size=200).map(lambda b: b"<osm" + b)),
    packed=st.sampled_from(["osm", "gz", "pbf-ish"]),
)
def test_any_osm_file_is_read_or_refused_by_name(tmp_path_factory, body, packed):
    folder = tmp_path_factory.mktemp("osm")
    if packed == "gz":
        body, name = gzip.compress(body), "x.osm.gz"
    elif packed == "pbf-ish":  # a PBF header's magic with junk after it
        body, name = b"\x00\x00\x00\x0d\n\tOSMHeader" + body, "x.osm.pbf"
    else:
        name = "x.osm"
    path = write(folder / name, body)
    try:
        read_osm(path)
    except InputError as exc:
        assert str(exc).startswith(str(path))
