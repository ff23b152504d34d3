"""The city bundle: road graph, SUMO net, POIs, sectors and their mapping, built from OSM.

>>> from twin.city import City, build_city
>>> city = build_city(out="cities/helsinki").city  # doctest: +SKIP
>>> City.load("cities/helsinki") == city  # doctest: +SKIP
True
"""

from __future__ import annotations

from twin.city.build import (
    BUILTIN,
    DEFAULT_CITY,
    BuildResult,
    build_city,
    builtin_city,
    builtin_osm,
    default_osm,
)
from twin.city.bundle import ATTRIBUTION, City, Manifest

__all__ = [
    "ATTRIBUTION",
    "BUILTIN",
    "DEFAULT_CITY",
    "BuildResult",
    "City",
    "Manifest",
    "build_city",
    "builtin_city",
    "builtin_osm",
    "default_osm",
]
