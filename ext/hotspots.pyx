# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Kernel density on a grid of cells: the hot loop of hotspot forecasts (``twin.predict``)."""

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport exp, floor

cnp.import_array()


def kde_grid(
    const double[::1] x,        # event positions, metres east
    const double[::1] y,        # metres north
    const double[::1] weight,   # each event's weight (a time decay, say)
    double x0,                  # the grid's south-west corner
    double y0,
    double cell,                # cell side, metres
    Py_ssize_t nx,
    Py_ssize_t ny,
    double bandwidth,           # Gaussian sigma, metres
):
    """Sum of Gaussian kernels (cut at 4 sigma) at every cell centre, ``(ny, nx)``;
    per square metre, so the grid integrates to the total weight."""
    out_arr = np.zeros((ny, nx))
    cdef double[:, ::1] out = out_arr
    cdef Py_ssize_t i, cx, cy, lo_x, hi_x, n = x.shape[0]
    cdef double reach = 4.0 * bandwidth, dx, dy, norm, inv2s2
    if n == 0:
        return out_arr
    norm = 1.0 / (2.0 * 3.141592653589793 * bandwidth * bandwidth)
    inv2s2 = 1.0 / (2.0 * bandwidth * bandwidth)
    # Rows of cells are independent: each thread fills its own rows, reading every event.
    for cy in prange(ny, nogil=True, schedule="static"):
        for i in range(n):
            dy = y0 + (cy + 0.5) * cell - y[i]
            if dy > reach or dy < -reach:
                continue
            lo_x = <Py_ssize_t> floor((x[i] - reach - x0) / cell)
            hi_x = <Py_ssize_t> floor((x[i] + reach - x0) / cell)
            if lo_x < 0:
                lo_x = 0
            if hi_x > nx - 1:
                hi_x = nx - 1
            for cx in range(lo_x, hi_x + 1):
                dx = x0 + (cx + 0.5) * cell - x[i]
                out[cy, cx] += weight[i] * norm * exp(-(dx * dx + dy * dy) * inv2s2)
    return out_arr
