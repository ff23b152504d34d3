"""The ground every section of a scenario stands on: its error, durations, places and
areas."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from twin._errors import InputError


class ScenarioError(InputError):
    """A scenario file is wrong. ``problems`` lists each one as ``(field path, message)``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        n = len(problems)
        lines = [f"{source}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  {path}: {msg}" if path else f"  {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


_MANY = "\n"  # joins several model-level problems, each "path: message"

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*min)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


#: The longest duration anything may have: a year (a longer run is an input mistake).
MAX_DURATION_S = 366 * 86400.0


def parse_duration(value: Any) -> float:
    """Seconds from ``3600``, ``"1h"``, ``"45min"``, ``"1h30min"``, ``"90s"``, ``"7d"`` or
    ``"01:30:00"``.

    >>> parse_duration("1h30min"), parse_duration("01:30:00"), parse_duration(90), parse_duration("7d")
    (5400.0, 5400.0, 90.0, 604800.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"not a duration: {value!r} is too large") from None
    elif isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
        parts = [int(p) for p in value.strip().split(":")] + [0]
        seconds = float(parts[0] * 3600 + parts[1] * 60 + parts[2])
    elif isinstance(value, str) and (m := _DURATION.match(value)) and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    else:
        raise ValueError(f"not a duration (write 45min, 1h30min, 90s, 7d or 01:30:00): {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {value!r}")
    if not seconds <= MAX_DURATION_S:  # NaN and infinity too
        raise ValueError(f"a duration of at most a year, not {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
            "description": "seconds, or 45min, 1h30min, 90s, 7d, 01:30:00",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatLon(_Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Place(_Model):
    """Where a point event happens. Give exactly one of these."""

    lat: float | None = Field(
        None, ge=-90, le=90, description="with lon: a point, snapped to the nearest road"
    )
    lon: float | None = Field(None, ge=-180, le=180)
    osm_way: int | None = Field(None, description="an OSM way id of a road in the city")
    poi: str | None = Field(None, description="the name of a POI in the city bundle")
    sector: str | None = Field(
        None, description="a sector id (S01...): the road nearest its centre"
    )
    edge: str | None = Field(None, description="a SUMO edge id of the city's net")

    @model_validator(mode="after")
    def _one_kind(self) -> Place:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give lat and lon together")
        given = [
            k for k in ("lat", "osm_way", "poi", "sector", "edge") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of lat/lon, osm_way, poi, sector or edge")
        return self

    def describe(self) -> str:
        if self.lat is not None:
            return f"point ({self.lat:.5f}, {self.lon:.5f})"
        for key in ("osm_way", "poi", "sector", "edge"):
            if getattr(self, key) is not None:
                return f"{key.replace('_', ' ')} {getattr(self, key)!r}"
        return "nowhere"


class Area(_Model):
    """Where an area event happens. Give sectors, or a circle, or a polygon."""

    sectors: list[str] | None = Field(None, description="sector ids")
    center: LatLon | None = Field(None, description="with radius_m: a circle")
    radius_m: float | None = Field(None, gt=0, le=20000)
    polygon: list[LatLon] | None = Field(None, min_length=3, description="corners, in order")

    @model_validator(mode="after")
    def _one_kind(self) -> Area:
        if (self.center is None) != (self.radius_m is None):
            raise ValueError("give center and radius_m together")
        given = [k for k in ("sectors", "center", "polygon") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of sectors, center with radius_m, or polygon")
        return self


def _time_of_day_or_offset(value: str) -> str:
    value = value.strip()
    if value.startswith("+"):
        parse_duration(value[1:])
    elif not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
        raise ValueError(f'write a time of day "07:40" or an offset "+40min", not {value!r}')
    return value


def field_problems(err: Any) -> list[tuple[str, str]]:
    """One pydantic error as ``(field path, message)`` pairs (a model check may hold several)."""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "value_error" and (_MANY in msg or re.match(r"^[\w.\[\]]+: ", msg)):
        out = []
        for line in msg.split(_MANY):
            path, _, text = line.partition(": ")
            out.append((path, text))
        return out
    return [_problem(err)]


def _problem(err: Any) -> tuple[str, str]:
    path = ""
    for part in err["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in (
            "accident",
            "closure",
            "flood",
            "demonstration",
            "contraflow",
        ) or part.startswith("function-"):
            continue  # the discriminated union's branch name, not a field
        else:
            path += f".{part}" if path else str(part)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return path, "missing"
    if err["type"] == "extra_forbidden":
        return path, "unknown field"
    value = err.get("input")
    if "input" in err and not isinstance(value, dict | list):
        shown = value.isoformat() if isinstance(value, datetime) else repr(value)
        said = (rf"(?<![\w.]){re.escape(x)}(?![\w.])" for x in {shown, str(value)})
        if not any(re.search(p, msg) for p in said):  # "0" is not said by "0.1"
            msg += f" (got {shown})"
    return path, msg


def merge_overrides(base: Any, override: Any) -> Any:
    """``override`` laid over ``base``: mappings merge key by key; lists of named items
    (call-taker pools, unit groups) merge item by item by ``name``, an item of a new name
    is added and one given ``remove: true`` is dropped; anything else replaces.

    >>> units = [{"name": "P", "count": 4, "base": "police"}, {"name": "A", "count": 2}]
    >>> merge_overrides({"units": units}, {"units": [{"name": "P", "count": 6}, {"name": "A", "remove": True}]})
    {'units': [{'name': 'P', 'count': 6, 'base': 'police'}]}
    """
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge_overrides(base.get(key), value) if key in base else value
        return out
    if _named(base) and _named(override):
        merged = {item["name"]: item for item in base}
        for item in override:
            name = item["name"]
            if item.get("remove") is True:
                merged.pop(name, None)
                continue
            merged[name] = merge_overrides(merged[name], item) if name in merged else item
        return list(merged.values())
    return override


def _named(items: Any) -> bool:
    return (
        isinstance(items, list)
        and bool(items)
        and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)
    )
