"""Running the CLI on a pseudo-terminal, as a person at a terminal runs it."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import time
from collections.abc import Callable

#: laxchange's prompts: for a passphrase, for a new one, and click's for confirming it
PROMPT = re.compile(rb"(?:Passphrase to [^\n]*|New passphrase|Repeat for confirmation): ")

#: what a person does at each prompt: given the child's pid and the terminal
Respond = Callable[[int, int], None]


def typing(answer: bytes) -> Respond:
    """Type `answer` and Enter at each prompt."""
    def respond(_pid: int, fd: int) -> None:
        os.write(fd, answer + b"\n")
    return respond


def in_a_terminal(argv: list[str], env: dict[str, str], respond: Respond, timeout: float = 180) -> tuple[int, str]:
    """Run `argv` on a pseudo-terminal, calling `respond` at each prompt (`PROMPT`) it shows; its
    exit status and everything it showed. SIGINT is at its default in it (an ignored one is not
    passed on: tests/support/signals.py), so a Ctrl-C typed on the terminal reaches it as it does
    a person's command."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # see tests/support/signals.py
            os.execve(argv[0], argv, env)  # noqa: S606  # the CLI itself, as a person starts it
        finally:
            os._exit(127)
    shown, answered = b"", 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
            while len(PROMPT.findall(shown)) > answered:
                answered += 1
                respond(pid, fd)
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")
