"""The run lock: at most one unattended run per home at a time, and a dead run never blocks the next.

An exclusive `flock` on `HOME/run.lock`. The kernel releases it when its holder exits for any
reason (crash, SIGKILL, power loss), so a stale lock from a dead process is recovered by simply
taking it: there is no PID file to go stale and no guessing from timestamps. The file keeps the
holder's pid, host and start time only so that a refused run can say who holds it. It holds
no personal data.

The lock guards the nightly run's sequence of steps, `import` and `receipt`, and every change
to our keys (`KeyStore`: rotate, revoke, prune, a new passphrase), which the run signs with and
prunes; it does not replace the ledger's own transactions, which keep `open` and `import` run by
hand safe at the same time.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from laxchange._util import timefmt
from laxchange._util.fs import private_dirs
from laxchange.clock import Clock, SystemClock
from laxchange.ledger.errors import LedgerBusy

__all__ = ["RunLock", "RunLocked"]


class RunLocked(LedgerBusy):
    """Another run holds this home's run lock (exit 5; retryable once it has finished)."""

    code = "run.locked"


class RunLock:
    """`with RunLock(path):` holds the home's run lock for the block, or raises RunLocked at once."""

    def __init__(self, path: Path, *, clock: Clock | None = None) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self._fd: int | None = None

    def acquire(self) -> None:
        private_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(fd)
            os.close(fd)
            raise RunLocked(f"another laxchange run holds {self.path}{holder}", code="run.locked",
                            hint="wait for it to finish (the lock is released when that process ends, "
                                 "even if it crashes), then run again") from None
        except BaseException:
            os.close(fd)
            raise
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": timefmt.fmt(self.clock.now())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _describe(fd: int) -> str:
    """` (pid N on HOST since T)` from the lock file, or "" when it cannot be read."""
    try:
        info = json.loads(os.pread(fd, 512, 0) or b"{}")
        return f" (pid {int(info['pid'])} on {str(info['host'])[:64]} since {str(info['since'])[:20]})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""
