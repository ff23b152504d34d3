"""Distance on the earth against pyproj's geodesic on the WGS84 ellipsoid."""

from __future__ import annotations

import doctest

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

import twin._geo as geo_module
from twin._geo import haversine_m

lat = st.floats(-80, 80)
lon = st.floats(-180, 180)


def test_the_docstring_examples_hold():
    assert doctest.testmod(geo_module).failed == 0


@given(lat1=lat, lon1=lon, dlat=st.floats(-0.2, 0.2), dlon=st.floats(-0.2, 0.2))
def test_within_the_spheres_known_error_of_the_ellipsoid(lat1, lon1, dlat, dlon):
    lat2, lon2 = max(-89.0, min(89.0, lat1 + dlat)), lon1 + dlon
    _, _, true = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    # a sphere is off the ellipsoid by 0.56 % at the most (north-south at the equator)
    assert abs(haversine_m(lat1, lon1, lat2, lon2) - true) <= 0.0057 * true + 1e-6


def test_arrays_broadcast_and_numbers_give_a_float():
    d = haversine_m(60.17, 24.94, np.array([60.17, 60.18]), np.array([24.94, 24.94]))
    assert d.shape == (2,) and d[0] == 0 and 1100 < d[1] < 1120
    assert isinstance(haversine_m(0, 0, 0, 1), float)
