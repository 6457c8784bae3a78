"""ordered_map: a batch's CPU-bound step in forked workers, in order, bounded, failing whole."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator

import pytest

from laxchange._util import workers
from laxchange._util.workers import ordered_map
from laxchange.errors import InternalError

pytestmark = pytest.mark.skipif(not workers.fork_available(), reason="no fork on this platform")


def _pid_and_square(state: int, item: int) -> tuple[int, int]:
    return os.getpid(), item * item + state


def _fails_at_70(state: None, item: int) -> int:
    if item == 70:
        raise ValueError(f"item {item} is bad")
    return item


def _dies_at_70(state: None, item: int) -> int:
    if item == 70:
        os._exit(9)  # a worker killed mid-batch (the OOM killer, kill -9)
    return item


def test_results_come_in_order_from_other_processes_with_the_callers_state() -> None:
    out = list(ordered_map(_pid_and_square, range(500), state=7, jobs=2, chunk=8))
    assert [v for _, v in out] == [i * i + 7 for i in range(500)]
    pids = {pid for pid, _ in out}
    assert out[0][0] == os.getpid(), "the first item is done here, so every cache is warm before the fork"
    assert pids - {os.getpid()}, "the rest ran in worker processes"


def test_a_small_batch_or_one_job_stays_in_this_process() -> None:
    assert {p for p, _ in ordered_map(_pid_and_square, range(60), state=0, jobs=2)} == {os.getpid()}
    assert {p for p, _ in ordered_map(_pid_and_square, range(500), state=0, jobs=1)} == {os.getpid()}


def test_an_error_in_a_worker_reaches_the_caller_as_itself() -> None:
    with pytest.raises(ValueError, match="item 70 is bad"):
        list(ordered_map(_fails_at_70, range(500), state=None, jobs=2, chunk=4))


def test_a_worker_that_dies_fails_the_batch_as_worker_lost_without_hanging() -> None:
    t = time.monotonic()
    with pytest.raises(InternalError) as caught:
        list(ordered_map(_dies_at_70, range(500), state=None, jobs=2, chunk=4))
    assert caught.value.code == "worker.lost"
    assert time.monotonic() - t < 60


def test_items_are_read_as_they_are_needed() -> None:
    read = itertools.count()

    def items() -> Iterator[int]:
        for i in range(100_000):
            next(read)
            yield i

    it = ordered_map(_pid_and_square, items(), state=0, jobs=2, chunk=8, min_items=64)
    assert next(it) == (os.getpid(), 0)
    for _ in range(100):
        next(it)
    bound = 1 + 64 + 1 + 2 * 2 * 8 + 100  # the first, the look-ahead, chunks in flight, and those handed back
    assert next(read) <= bound
    it.close()  # the caller stopping early ends the workers
