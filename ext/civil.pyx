# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Epstein's civil violence rules (model 1, PNAS 2002) on a torus grid, one step at a time.

The state lives in numpy arrays (one entry per agent, and one per cell for who stands
there); the caller validates them and supplies every random number, so a step is a pure
function of the arrays and of the model's seeded generator.

The rules are those of the example that ships with Mesa
(``mesa.examples.advanced.epstein_civil_violence``), the benchmark's baseline:

- agents act one at a time, in the order given (a fresh shuffle each step);
- a jailed citizen serves one step of its term and does nothing else;
- a free citizen counts the cops C and the active citizens A (itself included, so A >= 1)
  within its vision (von Neumann, Manhattan distance <= vision), estimates its arrest
  probability P = 1 - exp(-k * round(C / A)), round-half-to-even as Python's ``round``,
  and turns active if grievance - risk_aversion * P > threshold, quiet otherwise;
- a cop picks one active citizen in its vision at random and jails it for a term drawn
  uniformly from 0 to max_jail_term (the arrested citizen keeps its cell);
- then each agent that acted moves to a random empty cell within its vision, if any.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport exp, rint

cnp.import_array()

ctypedef cnp.int32_t i32
ctypedef cnp.int8_t i8

# Citizen states, as Mesa's CitizenState, and the kinds of agent
cdef enum:
    ACTIVE = 1
    QUIET = 2
    ARRESTED = 3
    CITIZEN = 0
    COP = 1

STATES = {"active": ACTIVE, "quiet": QUIET, "arrested": ARRESTED}
KINDS = {"citizen": CITIZEN, "cop": COP}


def von_neumann_offsets(int radius):
    """``(dx, dy)`` of every cell within Manhattan distance ``radius`` but the centre, in
    row order."""
    out = [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
           if 0 < abs(dx) + abs(dy) <= radius]
    return np.array(out, dtype=np.int32).reshape(-1, 2)


def step(
    i32[::1] grid,              # cell -> agent index, or -1 (cells are y * width + x)
    i32 width,
    i32 height,
    const i8[::1] kind,         # agent -> 0 citizen, 1 cop
    i32[::1] cell,              # agent -> its cell
    const double[::1] grievance,
    const double[::1] risk_aversion,
    i8[::1] state,              # citizens: ACTIVE, QUIET or ARRESTED
    i32[::1] jail,              # citizens: steps of jail left
    const i32[:, ::1] citizen_offsets,
    const i32[:, ::1] cop_offsets,
    const cnp.int64_t[::1] order,
    const double[:, ::1] uniforms,  # agent -> 3 numbers in [0, 1): move, pick, term
    double threshold,
    double arrest_constant,
    i32 max_jail_term,
    bint movement,
    i32[::1] scratch_a,         # room for one neighbourhood's cells
    i32[::1] scratch_b,
):
    """One step of every agent, in ``order``. Returns the number of arrests."""
    cdef Py_ssize_t k, j, n_off, n_empty, n_active
    cdef i32 i, c, x, y, nx, ny, nc, other, cops, actives, pick
    cdef int arrests = 0
    cdef double p
    cdef const i32* off
    cdef const i32* citizen_off = &citizen_offsets[0, 0]
    cdef const i32* cop_off = &cop_offsets[0, 0]
    cdef Py_ssize_t n_citizen_off = citizen_offsets.shape[0], n_cop_off = cop_offsets.shape[0]
    with nogil:
        for k in range(order.shape[0]):
            i = <i32> order[k]
            if kind[i] == CITIZEN:
                if jail[i] > 0:
                    jail[i] -= 1
                    continue
                off = citizen_off
                n_off = n_citizen_off
            else:
                off = cop_off
                n_off = n_cop_off
            c = cell[i]
            x = c % width
            y = c // width
            n_empty = 0
            n_active = 0
            cops = 0
            actives = 1  # the citizen counts itself
            for j in range(n_off):
                nx = x + off[2 * j]
                ny = y + off[2 * j + 1]
                # NOTE: inlined torus wrap for performance (offsets never exceed the grid)
                if nx < 0:
                    nx = nx + width
                elif nx >= width:
                    nx = nx - width
                if ny < 0:
                    ny = ny + height
                elif ny >= height:
                    ny = ny - height
                nc = ny * width + nx
                other = grid[nc]
                if other < 0:
                    scratch_a[n_empty] = nc
                    n_empty += 1
                elif kind[other] == COP:
                    cops += 1
                elif state[other] == ACTIVE:
                    actives += 1
                    scratch_b[n_active] = other
                    n_active += 1
            if kind[i] == CITIZEN:
                p = 1.0 - exp(-arrest_constant * rint(<double> cops / actives))
                if grievance[i] - risk_aversion[i] * p > threshold:
                    state[i] = ACTIVE
                else:
                    state[i] = QUIET
            elif n_active > 0:
                pick = scratch_b[<Py_ssize_t> (uniforms[i, 1] * n_active)]
                jail[pick] = <i32> (uniforms[i, 2] * (max_jail_term + 1))
                state[pick] = ARRESTED
                arrests += 1
            if movement and n_empty > 0:
                nc = scratch_a[<Py_ssize_t> (uniforms[i, 0] * n_empty)]
                grid[c] = -1
                grid[nc] = i
                cell[i] = nc
    return arrests
