"""Starting a command as a person at a terminal starts it, whoever started the tests.

A shell starts a background job (`./scripts/test &`, a CI runner's step) with SIGINT ignored, and
a process inherits an ignored signal across exec: the CLI started from such a test would ignore the
Ctrl-C the test sends it (as `nohup` means it to), and the test would fail for its own start-up,
not for the CLI. A signal with a handler goes back to its default across exec, so while a child
is started SIGINT is given Python's default handler here.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def sigint_at_default() -> Iterator[None]:
    """While this is entered, a command started here gets SIGINT at its default (see the module)."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if not ignored or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def interruptible(argv: list[str], **kw: Any) -> subprocess.Popen[str]:
    """`subprocess.Popen(argv, **kw)` with SIGINT at its default in the child (`sigint_at_default`)."""
    with sigint_at_default():
        return subprocess.Popen(argv, **kw)
