"""Paired, interleaved measurement (DESIGN.md §12): a figure is a ratio to a reference measured
in the same rounds, reported as min / median / max over the rounds, never best-of-N.

`paired` runs every arm once per round, in an order that rotates from round to round (so an arm
is not always the one that follows the slow one), each for about the same wall time. A ratio is
taken inside each round, where both arms saw the same machine, and only then summarised.

Each call is timed twice: wall-clock (what a user waits) and this thread's CPU time (what it
costs when other jobs share the core: on these machines they often do, and then wall-clock
ratios swing with whoever else is running). Both are reported.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

Arm = tuple[str, Callable[[], object]]


def _idle_ticks() -> dict[int, int]:
    """Idle + iowait clock ticks per CPU so far (Linux /proc/stat), or {} where there is none."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and len(fields) >= 5:
            out[int(name[3:])] = int(fields[3]) + int(fields[4])
    return out


def pin_one_core(sample: float = 0.3) -> int | None:
    """Run this process on one CPU (the targets are per core): the one that was idlest over the
    last `sample` seconds, so that benchmarks started on a shared machine do not all pile onto
    CPU 0. Returns the CPU, or None where the OS cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    before = _idle_ticks()
    time.sleep(sample if before else 0)
    after = _idle_ticks()
    idle = {c: after[c] - before[c] for c in allowed if c in before and c in after}
    cpu = max(allowed, key=lambda c: (idle.get(c, 0), -c))
    os.sched_setaffinity(0, {cpu})
    return cpu


def calls_for(fn: Callable[[], object], seconds: float, warmup: int = 3) -> int:
    """How many calls of `fn` take about `seconds` (after `warmup` untimed calls)."""
    for _ in range(warmup):
        fn()
    n, elapsed = 1, 0.0
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t
        if elapsed >= seconds / 10 or n >= 1 << 20:
            break
        n *= 2
    return max(1, round(n * seconds / elapsed))


class Timings:
    """Seconds per call of each arm in each round: `wall[name][round]`, `cpu[name][round]`."""

    def __init__(self, names: Sequence[str]) -> None:
        self.wall: dict[str, list[float]] = {n: [] for n in names}
        self.cpu: dict[str, list[float]] = {n: [] for n in names}


def paired(arms: Sequence[Arm], *, rounds: int, seconds: float = 0.0, calls: int | None = None) -> Timings:
    """Time every arm in each of `rounds` rounds, rotating the order.

    Each arm makes `calls` calls a round, or as many as take about `seconds` (measured first)."""
    counts = {name: calls or calls_for(fn, seconds) for name, fn in arms}
    out = Timings([name for name, _ in arms])
    for r in range(rounds):
        k = r % len(arms)
        for name, fn in [*arms[k:], *arms[:k]]:
            n = counts[name]
            t, c = time.perf_counter(), time.thread_time()
            for _ in range(n):
                fn()
            out.cpu[name].append((time.thread_time() - c) / n)
            out.wall[name].append((time.perf_counter() - t) / n)
    return out


def rate_ratios(per_call: dict[str, list[float]], arm: str, reference: str) -> list[float]:
    """Per round: rate of `arm` / rate of `reference` (= the reference's time per call / the arm's)."""
    return [ref / a for a, ref in zip(per_call[arm], per_call[reference], strict=True)]


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """min / median / max, rounded."""
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits)}


def rates(per_call: Sequence[float], digits: int = 1) -> dict[str, float]:
    """min / median / max calls per second from seconds per call."""
    return spread([1 / t for t in per_call], digits)
