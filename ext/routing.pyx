# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Shortest travel times on a CSR graph: Dijkstra with a binary heap, in C.

These kernels trust their arguments (``twin.routing`` checks them) and hold no Python
object in their loops, so they release the GIL. Conventions:

- the graph is CSR: the edges leaving node ``u`` are ``indptr[u]:indptr[u + 1]``, heading
  to ``indices[e]`` at ``cost[e]`` seconds; an edge with an infinite cost is closed;
- ties on the heap are broken by insertion order (a counter, as SimPy does), so results
  and paths never depend on comparing anything but numbers; the heap is indexed (one
  entry per node, decrease-key), so it never holds more than n entries;
- ``dist`` arrays hold ``inf`` for nodes not reached.
"""

import numpy as np

cimport numpy as cnp
cimport openmp
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc

cnp.import_array()

ctypedef cnp.int64_t i64

#: Node-searches (nodes times searches) from which the searches share the cores
cdef Py_ssize_t PARALLEL_FROM = 10_000


ctypedef cnp.int32_t i32


# An indexed binary heap: each item holds a node with its key and tie number, so sifting
# compares contiguous memory. A node is in the heap at most once (``pos`` is its place, -1
# if absent); a shorter distance moves it up in place (decrease-key) with a new tie number,
# exactly as pushing a fresh entry would. So the heap never holds more than n entries.
cdef struct Item:  # 16 bytes
    double key
    i32 tie
    i32 node


cdef struct Heap:
    Item* items
    i32* pos  # per node: its index in items, or -1
    Py_ssize_t size
    i32 counter


cdef int _heap_init(Heap* h, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    h.items = <Item*> malloc(max(n, 1) * sizeof(Item))
    h.pos = <i32*> malloc(max(n, 1) * sizeof(i32))
    h.size = 0
    h.counter = 0
    if h.items == NULL or h.pos == NULL:
        return -1
    for i in range(n):
        h.pos[i] = -1
    return 0


cdef void _heap_free(Heap* h) noexcept nogil:
    free(h.items)
    free(h.pos)


cdef inline bint _before(Item a, Item b) noexcept nogil:
    return a.key < b.key or (a.key == b.key and a.tie < b.tie)


cdef inline void _sift_up(Heap* h, Py_ssize_t i) noexcept nogil:
    cdef Item item = h.items[i]
    cdef Py_ssize_t parent
    while i > 0:
        parent = (i - 1) >> 1
        if _before(item, h.items[parent]):
            h.items[i] = h.items[parent]
            h.pos[h.items[i].node] = <i32> i
            i = parent
        else:
            break
    h.items[i] = item
    h.pos[item.node] = <i32> i


cdef inline void _update(Heap* h, double key, i64 node) noexcept nogil:
    """``node``'s distance just dropped to ``key``: insert it, or move it up."""
    cdef Py_ssize_t i = h.pos[node]
    if i < 0:
        i = h.size
        h.size += 1
    h.items[i].key = key
    h.items[i].tie = h.counter
    h.items[i].node = <i32> node
    h.counter += 1
    _sift_up(h, i)


cdef inline i32 _pop(Heap* h) noexcept nogil:
    cdef i32 top = h.items[0].node
    cdef Py_ssize_t i = 0, child, n
    cdef Item item
    h.size -= 1
    n = h.size
    h.pos[top] = -1
    if n > 0:
        item = h.items[n]
        while True:  # sift the last item down from the root
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and _before(h.items[child + 1], h.items[child]):
                child += 1
            if _before(h.items[child], item):
                h.items[i] = h.items[child]
                h.pos[h.items[i].node] = <i32> i
                i = child
            else:
                break
        h.items[i] = item
        h.pos[item.node] = <i32> i
    return top


cdef Py_ssize_t _search(
    const i64* indptr,
    const i64* indices,
    const double* cost,
    const i64* sources,
    const double* offsets,
    Py_ssize_t n_sources,
    double limit,
    double* dist,
    i64* pred,
    i64* touched,
    const i64* weight,
    i64 stop_after,
    i64* found,
    double* found_dist,
    Heap* heap,
) noexcept nogil:
    """Dijkstra from ``sources`` (each starting at its offset). Settles nodes up to
    ``limit`` seconds. If ``stop_after`` > 0, stops once the settled nodes' ``weight``
    sums to it, recording them in ``found``/``found_dist`` (returns how many).
    Otherwise returns the number of touched nodes (written to ``touched``; the caller
    resets them). ``dist`` and ``pred`` must start as inf and -1; ``pred`` may be NULL
    when no path is wanted.

    No "settled" flags are needed: costs are never negative, so a settled node's time is
    at most the current one and a relaxation can never lower it."""
    cdef Py_ssize_t n_touched = 0, n_found = 0, s, e
    cdef i64 u, v, total = 0
    cdef double d, nd
    heap.size = 0
    heap.counter = 0
    for s in range(n_sources):
        u = sources[s]
        d = offsets[s]
        if d < dist[u] and d <= limit:
            if dist[u] == INFINITY:
                touched[n_touched] = u
                n_touched += 1
            dist[u] = d
            if pred != NULL:
                pred[u] = -1
            _update(heap, d, u)
    while heap.size > 0:
        u = _pop(heap)
        if stop_after > 0 and weight[u] > 0:
            found[n_found] = u
            found_dist[n_found] = dist[u]
            n_found += 1
            total += weight[u]
            if total >= stop_after:
                break  # the answer is certain: every node left is at least as far
        for e in range(indptr[u], indptr[u + 1]):
            nd = dist[u] + cost[e]
            if nd > limit:
                continue  # covers closed edges too: inf > limit
            v = indices[e]
            if nd < dist[v]:
                if dist[v] == INFINITY:
                    touched[n_touched] = v
                    n_touched += 1
                dist[v] = nd
                if pred != NULL:
                    pred[v] = e
                _update(heap, nd, v)
    for s in range(heap.size):  # an early stop leaves nodes in the heap
        heap.pos[heap.items[s].node] = -1
    heap.size = 0
    if stop_after > 0:
        # reset here: the caller only sees found nodes
        for s in range(n_touched):
            v = touched[s]
            dist[v] = INFINITY
            if pred != NULL:
                pred[v] = -1
        return n_found
    return n_touched


def _check_heap(int status):
    if status != 0:
        raise MemoryError("the routing heap could not grow")


def one_to_all(
    const i64[::1] indptr,
    const i64[::1] indices,
    const double[::1] cost,
    const i64[::1] sources,
    const double[::1] offsets,
    double limit,
):
    """Travel times from the nearest of ``sources`` to every node, and each node's last
    edge (``pred``, -1 at a source or where not reached)."""
    cdef Py_ssize_t n = indptr.shape[0] - 1
    dist_arr = np.full(n, np.inf)
    pred_arr = np.full(n, -1, dtype=np.int64)
    touched_arr = np.empty(n, dtype=np.int64)
    cdef double[::1] dist = dist_arr
    cdef i64[::1] pred = pred_arr
    cdef i64[::1] touched = touched_arr
    cdef i64[::1] none = np.zeros(1, dtype=np.int64)
    cdef double[::1] none_d = np.zeros(1)
    cdef Heap heap
    cdef Py_ssize_t status
    _check_heap(_heap_init(&heap, n))
    with nogil:
        status = _search(&indptr[0], &indices[0], &cost[0], &sources[0], &offsets[0],
                         sources.shape[0], limit, &dist[0], &pred[0], &touched[0],
                         &none[0], 0, &none[0], &none_d[0], &heap)
    _heap_free(&heap)
    _check_heap(0 if status >= 0 else -1)
    return dist_arr, pred_arr


cdef int _row_to_all(const i64* indptr, const i64* indices, const double* cost, i64 source,
                     double limit, double* out, i64* touched, Heap* heap) noexcept nogil:
    """One row of many-to-all: search from ``source`` straight into ``out`` (all inf).
    Returns 1 if the heap could not grow."""
    cdef i64 src = source
    cdef double zero = 0.0
    cdef i64 none = 0
    cdef double none_d = 0.0
    cdef Py_ssize_t t
    t = _search(indptr, indices, cost, &src, &zero, 1, limit, out, NULL, touched,
                &none, 0, &none, &none_d, heap)
    return 1 if t < 0 else 0


cdef int _row_nearest(const i64* indptr, const i64* indices, const double* cost, i64 target,
                      const i64* weight, i64 k, double limit, Py_ssize_t width, i64* nodes,
                      double* times, double* dist, i64* touched, i64* found, double* found_dist,
                      Heap* heap) noexcept nogil:
    """One target of nearest-k: search until k candidates are settled; write them."""
    cdef i64 tgt = target
    cdef double zero = 0.0
    cdef Py_ssize_t f, j
    f = _search(indptr, indices, cost, &tgt, &zero, 1, limit, dist, NULL, touched,
                weight, k, found, found_dist, heap)
    if f < 0:
        return 1
    for j in range(min(f, width)):
        nodes[j] = found[j]
        times[j] = found_dist[j]
    return 0


cdef class _Buffers:
    """Per-thread search buffers: each thread searches with its own arrays and heap."""

    cdef public object dist, touched, found, found_dist
    cdef Heap* heaps
    cdef int threads

    def __cinit__(self, Py_ssize_t n, int threads, Py_ssize_t found_size, bint with_dist):
        self.threads = threads
        self.dist = np.full((threads, n if with_dist else 1), np.inf)
        self.touched = np.empty((threads, n), dtype=np.int64)
        self.found = np.empty((threads, found_size + 1), dtype=np.int64)
        self.found_dist = np.empty((threads, found_size + 1))
        self.heaps = <Heap*> malloc(threads * sizeof(Heap))
        if self.heaps == NULL:
            raise MemoryError("no memory for the routing heaps")
        for t in range(threads):
            self.heaps[t].items = NULL
            self.heaps[t].pos = NULL
        for t in range(threads):
            if _heap_init(&self.heaps[t], n) != 0:
                raise MemoryError("no memory for the routing heaps")

    def __dealloc__(self):
        if self.heaps != NULL:
            for t in range(self.threads):
                _heap_free(&self.heaps[t])
            free(self.heaps)


cdef int _threads(Py_ssize_t n, Py_ssize_t jobs):
    """Threads for ``jobs`` searches on ``n`` nodes: one for small work, where starting
    threads costs more than it saves (OpenMP keeps its threads between calls: a parallel
    region costs some microseconds, a search of 1,000 nodes about 60)."""
    if n * jobs < PARALLEL_FROM:
        return 1
    return max(1, min(openmp.omp_get_max_threads(), jobs))


def threads_available():
    """How many threads the parallel queries use (OpenMP's maximum)."""
    return openmp.omp_get_max_threads()


def many_to_all(
    const i64[::1] indptr,
    const i64[::1] indices,
    const double[::1] cost,
    const i64[::1] sources,
    double limit,
):
    """A ``(len(sources), n)`` matrix: row i holds the travel times from ``sources[i]``.
    The searches are independent and run on every core."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, k = sources.shape[0], i
    cdef int tid, threads = _threads(n, k)
    out_arr = np.full((k, n), np.inf)
    cdef double[:, ::1] out = out_arr
    buf = _Buffers(n, threads, 0, False)
    cdef i64[:, ::1] touched = buf.touched
    cdef Heap* heaps = (<_Buffers> buf).heaps
    cdef int failed = 0
    if threads == 1:  # no parallel region for small jobs: entering one costs microseconds
        with nogil:
            for i in range(k):
                failed |= _row_to_all(&indptr[0], &indices[0], &cost[0], sources[i], limit,
                                      &out[i, 0], &touched[0, 0], &heaps[0])
    else:
        for i in prange(k, nogil=True, num_threads=threads, schedule="dynamic"):
            tid = threadid()
            failed |= _row_to_all(&indptr[0], &indices[0], &cost[0], sources[i], limit,
                                  &out[i, 0], &touched[tid, 0], &heaps[tid])
    _check_heap(-1 if failed else 0)
    return out_arr


def nearest_many(
    const i64[::1] indptr,
    const i64[::1] indices,
    const double[::1] cost,
    const i64[::1] targets,
    const i64[::1] weight,
    i64 k,
    double limit,
):
    """For each target, search backwards (``indptr``/``indices``/``cost`` are the reversed
    graph) until nodes holding ``k`` candidates (``weight[node]`` of them) are settled.
    The targets' searches are independent and run on every core.

    Returns ``(nodes, times)``, each ``(len(targets), width)`` with -1 / inf padding,
    in order of travel time, then of discovery."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, m = targets.shape[0], i, j
    cdef Py_ssize_t width = 0
    cdef i64 total = 0
    for j in range(n):
        if weight[j] > 0:
            width += 1
            total += weight[j]
    width = min(width, k) if k < total else width
    nodes_arr = np.full((m, max(width, 1)), -1, dtype=np.int64)
    times_arr = np.full((m, max(width, 1)), np.inf)
    if width == 0 or m == 0:
        return nodes_arr[:, :width], times_arr[:, :width]
    cdef i64[:, ::1] nodes = nodes_arr
    cdef double[:, ::1] times = times_arr
    cdef int tid, threads = _threads(n, m)
    buf = _Buffers(n, threads, width, True)
    cdef double[:, ::1] dist = buf.dist
    cdef i64[:, ::1] touched = buf.touched
    cdef i64[:, ::1] found = buf.found
    cdef double[:, ::1] found_dist = buf.found_dist
    cdef Heap* heaps = (<_Buffers> buf).heaps
    cdef int failed = 0
    if threads == 1:
        with nogil:
            for i in range(m):
                failed |= _row_nearest(&indptr[0], &indices[0], &cost[0], targets[i], &weight[0],
                                       k, limit, width, &nodes[i, 0], &times[i, 0], &dist[0, 0],
                                       &touched[0, 0], &found[0, 0], &found_dist[0, 0],
                                       &heaps[0])
    else:
        for i in prange(m, nogil=True, num_threads=threads, schedule="dynamic"):
            tid = threadid()
            failed |= _row_nearest(&indptr[0], &indices[0], &cost[0], targets[i], &weight[0],
                                   k, limit, width, &nodes[i, 0], &times[i, 0], &dist[tid, 0],
                                   &touched[tid, 0], &found[tid, 0], &found_dist[tid, 0],
                                   &heaps[tid])
    _check_heap(-1 if failed else 0)
    return nodes_arr, times_arr
