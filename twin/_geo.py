"""Distance on the earth, the one definition every part of the twin measures with.

>>> round(haversine_m(60.1699, 24.9384, 60.1719, 24.9414))  # two corners of a Helsinki block
277
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The mean radius of the earth (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """The great-circle distance in metres between points given in degrees: numbers, or
    numpy arrays (element by element, broadcasting); a float for numbers."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))
    return float(d) if np.ndim(d) == 0 else d
