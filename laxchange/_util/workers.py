"""The CPU-bound step of a batch (validating and packing placements) in forked worker processes.

CPython runs Python code on one core at a time, and a batch's packing is Python: a second process
is the only way to use a second core. The workers are forked, so they inherit what the caller has
already loaded (unlocked keys, the partner directory, compiled schemas) without any of it being
written down, pickled or sent anywhere; only the items and their results cross a pipe. The first
item is always done in the calling process, so every cache is warm before the fork, and a batch
too small to be worth a process is done there entirely. A worker does no I/O of its own that
matters: the caller writes, fsyncs and commits, so a worker that dies leaves nothing half-done,
and the batch fails as a whole with `worker.lost`.

Not on platforms without fork (Windows): there `jobs` is ignored and everything runs in-process,
with the same results.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from laxchange.errors import InternalError

__all__ = ["CHUNK_TIMEOUT", "exit_with_parent", "fork_available", "ordered_map"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

#: The longest one chunk of items may take in a worker before the batch is given up (seconds):
#: a chunk takes milliseconds, so this only ends a batch whose worker has stopped answering.
CHUNK_TIMEOUT = 600.0

#: In a worker, the caller's state (`ordered_map`'s `state`), set once as the worker starts.
_STATE: list[Any] = [None]


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def exit_with_parent(parent: int, *, every: float = 0.5) -> None:
    """In a forked child: end it once `parent` (its pid, taken before the fork) is gone. Nothing
    else tells it of a parent killed outright (SIGKILL, the OOM killer, a scheduler's timeout):
    its pipes stay open (it holds both ends), so it would wait for work forever, holding what it
    inherited: the unlocked keys, and the run lock's flock (shared across fork)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="laxchange-parent-watch", daemon=True).start()


def _init(state: Any, parent: int) -> None:
    """In each worker: keep the caller's state; leave Ctrl-C to the caller, which stops the pool;
    go if the caller does."""
    _STATE[0] = state
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent)


def _run_chunk(fn: Callable[[Any, Any], Any], chunk: list[Any]) -> list[Any]:
    return [fn(_STATE[0], item) for item in chunk]


def _lost(why: str) -> InternalError:
    return InternalError(f"a worker process of the batch {why}", code="worker.lost",
                         hint="nothing of the batch was kept; run it again, or with --jobs 1 (one process) "
                              "if it happens again, and report it")


def ordered_map(fn: Callable[[S, T], R], items: Iterable[T], *, state: S, jobs: int, chunk: int = 16,
                min_items: int = 64, in_flight: int = 0) -> Iterator[R]:
    """`fn(state, item)` for each item, yielded in the order of `items`.

    With `jobs` > 1 (and fork available), after the first item and once more than `min_items`
    are known to come, the rest run in `jobs` forked processes that inherit `state` (never
    pickled); `fn` must be a module-level function and its results picklable. At most `in_flight`
    items (at least two chunks a worker) are in flight, so the workers go on while the caller
    does its own part (writing what they made), and a long `items` is read as it is needed. An
    exception `fn` raises reaches the caller as it would in-process; a worker that dies or stops
    answering raises `worker.lost`."""
    it = iter(items)
    first = list(itertools.islice(it, 1))
    yield from (fn(state, item) for item in first)  # in this process: every cache warm before any fork
    if jobs <= 1 or not fork_available():
        yield from (fn(state, item) for item in it)
        return
    ahead = list(itertools.islice(it, min_items + 1))
    if len(ahead) <= min_items:
        yield from (fn(state, item) for item in ahead)
        return
    rest = itertools.chain(ahead, it)
    gc.freeze()  # the workers' collections then leave the inherited heap alone (no copy-on-write of all of it)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"), initializer=_init,
                               initargs=(state, os.getpid()))
    inflight: deque[Future[list[R]]] = deque()

    def submit_next() -> None:
        batch = list(itertools.islice(rest, chunk))
        if batch:
            try:
                inflight.append(pool.submit(_run_chunk, fn, batch))
            except BrokenProcessPool:  # a worker died while chunks were still being handed out
                raise _lost("stopped (killed, or out of memory)") from None

    finished = False
    try:
        for _ in range(max(2 * jobs, -(-in_flight // chunk))):
            submit_next()
        while inflight:
            try:
                done = inflight.popleft().result(timeout=CHUNK_TIMEOUT)
            except BrokenProcessPool:
                raise _lost("stopped (killed, or out of memory)") from None
            except FutureTimeout:
                raise _lost(f"gave no answer within {CHUNK_TIMEOUT:g} s") from None
            submit_next()
            yield from done
        finished = True
    finally:
        gc.unfreeze()
        if finished:
            pool.shutdown(wait=True)
        else:  # an error, or the caller stopped early: nothing a worker holds is wanted, and one may hang
            procs = list((getattr(pool, "_processes", None) or {}).values())  # (shutdown forgets them)
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.kill()
                proc.join(5)
