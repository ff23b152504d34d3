"""What every benchmark shares: where things are, timing, and the table of ratios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best and median seconds per call over ``repeat`` timings. A call faster than 20 ms
    is looped until a timing lasts 20 ms (as ``timeit`` does), so the clock's resolution
    and one-off hiccups do not decide sub-millisecond results."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    loops = 1 if first >= 0.02 else max(1, int(0.02 / max(first, 1e-7)))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        times.append((time.perf_counter() - t0) / loops)
    return min(times), statistics.median(times)


def interleaved(
    named: dict[str, Callable[[], object]], repeat: int
) -> list[tuple[str, float, float]]:
    """Best and median of each function, timed round by round (A B C, A B C, ...), so that
    the machine's drift falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(repeat):
        for name, fn in named.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return [(name, min(ts), statistics.median(ts)) for name, ts in times.items()]


def report(title: str, rows: list[tuple[str, float, float]], baseline: str) -> None:
    base = next(best for name, best, _ in rows if name == baseline)
    print(f"\n### {title}\n")
    print("| what | best | median | ratio to baseline |")
    print("|---|---|---|---|")
    for name, best, median in rows:
        mark = " (baseline)" if name == baseline else ""
        print(
            f"| {name}{mark} | {best * 1000:.1f} ms | {median * 1000:.1f} ms | {best / base:.3f}× |"
        )
