"""Ctrl-C in tests: a command started as a person at a terminal starts it, whoever started the
tests (`interruptible`), and Ctrl-C as a function's chosen call returns (`ctrl_c_after_call`).

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
import sys
import threading
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
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


def ctrl_c_after_call(code: CodeType, step: int, call: Callable[[], object]) -> bool:
    """Run `call`, raising KeyboardInterrupt (what Ctrl-C raises) as the `step`-th call (from 1)
    that `code` makes in this thread returns: where CPython raises a signal that came during a
    call, so what the call did is done (a file `os.open` made exists) and its result is lost.
    Once only, so the code's own clean-up runs uninterrupted. True if it was interrupted (and the
    interrupt reached here), False if `call` finished first: stepping `step` up from 1 until
    False tries every point."""
    seen = 0

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        nonlocal seen
        ours = frame.f_code is code if event == "c_return" else (
            event == "return" and frame.f_back is not None and frame.f_back.f_code is code)
        if ours:
            seen += 1
            if seen == step:
                sys.setprofile(None)
                raise KeyboardInterrupt

    before = sys.getprofile()
    sys.setprofile(profile)
    try:
        call()
    except KeyboardInterrupt:
        if seen < step:
            raise  # not ours
        return True
    finally:
        sys.setprofile(before)
    return False
