"""Threads for network steps (a connection or a partner each), which an interrupt must not wait on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor


@contextlib.contextmanager
def thread_pool(max_workers: int, name: str = "laxchange") -> Iterator[ThreadPoolExecutor]:
    """A ThreadPoolExecutor for network steps (connections, a partner each) that an interrupt does
    not wait on: left by Ctrl-C or SIGTERM (KeyboardInterrupt), queued tasks are cancelled and
    running ones left to end on their own, instead of `with ThreadPoolExecutor()` waiting for a
    handshake with a silent server to time out (26 s after a Ctrl-C; the CLI's exit does not wait
    for them either). Left normally or by any other exception, it waits for every task, as ever."""
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
    interrupted = False
    try:
        yield pool
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=interrupted)
