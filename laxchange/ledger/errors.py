"""The ledger's own errors: a state change the table forbids, and the database being unusable.

Every SQLite failure a user can meet (another run holding the lock, a corrupt file, a full or
read-only disk) becomes one of these at the ledger's connection boundary, so the CLI prints a
message and a hint instead of a traceback and exit 70.
"""

from __future__ import annotations

from typing import Any

from laxchange.errors import ConfigError, ExitCode, LaxError, SecurityError


class IllegalTransition(LaxError):
    """A state change the transition table does not allow (exit 70: the caller has a bug).

    Also raised when a race is caught: two runs opening the same package both try to record
    `imported`, and the second finds the first already did.
    """

    exit_code = ExitCode.INTERNAL
    code = "ledger.illegal-transition"


class LedgerError(ConfigError):
    """The ledger database cannot be used: corrupt (`ledger.corrupt`) or I/O, permissions, disk
    full (`ledger.io`), or written by a newer laxchange (`ledger.too-new`). Exit 5."""

    code = "ledger.io"


class LedgerBusy(LedgerError):
    """Another process holds the ledger's write lock longer than the busy timeout (exit 5).

    Retryable: nothing was changed, so running the same command again later is safe.
    """

    code = "ledger.busy"
    transient: bool = True


class AlreadyReceived(SecurityError):
    """The transfer is already imported, or another run holds its reservation right now (exit 3,
    `package.replayed`). `in_progress` tells the two apart: an in-progress one is not a replay of
    a finished import, so its file is left where it is for the run that holds it."""

    code = "package.replayed"

    def __init__(self, message: str, *, in_progress: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.in_progress = in_progress
