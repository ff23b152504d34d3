# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hot loops of the community model: offenders moving and offending on the road graph.

Routine activity theory: a crime happens where a motivated offender meets a suitable
target in the absence of a capable guardian. Offenders travel between activity places
along the fastest roads (a next-hop table toward each place); on each road they pass, they
offend with probability ``motivation * suitability[edge] * (1 - guardianship[edge])``.

The state is numpy arrays; the caller validates them and supplies every random number.
"""

import numpy as np

cimport numpy as cnp

cnp.import_array()

ctypedef cnp.int32_t i32
ctypedef cnp.int64_t i64


def offender_step(
    i32[::1] node,               # offender -> the junction it is at
    i32[::1] dest,               # offender -> index of its activity place
    i32[::1] dwell,              # offender -> steps still to stay where it is
    const double[::1] motivation,
    const i32[:, ::1] next_edge,  # [junction, place] -> edge to take (-1: there, or cut off)
    const i32[::1] edge_head,    # edge -> the junction it leads to
    const double[::1] edge_time, # edge -> seconds to drive or walk it
    const double[::1] suitability,
    const double[::1] guardianship,
    const i32[::1] place_node,   # place -> its junction
    const double[::1] place_cum, # cumulative attractiveness of the places (ends at 1)
    double seconds,              # how long a step lasts
    i32 max_dwell,
    const double[:, ::1] uniforms,  # offender -> 2 + max_edges numbers in [0, 1)
    i32[::1] crime_offender,     # out: who offended
    i32[::1] crime_edge,         # out: where
):
    """Move every offender for ``seconds``; returns how many crimes were written."""
    cdef Py_ssize_t i, n = node.shape[0], n_places = place_node.shape[0], lo, hi, mid
    cdef Py_ssize_t max_edges = uniforms.shape[1] - 2, used
    cdef int crimes = 0, offended
    cdef i32 u, e, p
    cdef double left, r
    with nogil:
        for i in range(n):
            if dwell[i] > 0:
                dwell[i] -= 1
                continue
            left = seconds
            used = 0
            offended = 0
            while left > 0 and used < max_edges:
                u = node[i]
                e = next_edge[u, dest[i]]
                if e < 0:  # arrived (or no way on): stay a while, then choose a new place
                    dwell[i] = <i32> (uniforms[i, 0] * (max_dwell + 1))
                    r = uniforms[i, 1]
                    lo = 0
                    hi = n_places - 1
                    while lo < hi:  # the first place whose cumulative weight exceeds r
                        mid = (lo + hi) // 2
                        if place_cum[mid] > r:
                            hi = mid
                        else:
                            lo = mid + 1
                    p = <i32> lo
                    if place_node[p] == u:  # already there: take the next place
                        p = <i32> ((p + 1) % n_places)
                    dest[i] = p
                    break
                if not offended and uniforms[i, 2 + used] < motivation[i] * suitability[e] * (1.0 - guardianship[e]):
                    crime_offender[crimes] = <i32> i
                    crime_edge[crimes] = e
                    crimes += 1
                    offended = 1  # one crime a step at most
                left -= edge_time[e]
                node[i] = edge_head[e]
                used += 1
    return crimes
