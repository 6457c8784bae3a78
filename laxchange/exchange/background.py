"""Our own drop folder collected in a child process while this one imports what has come.

The nightly run's import stage is two kinds of work, each Python, so each on one core: fetching
from our drop folder (SFTP) and verifying and filing what was fetched. One after the other they
leave the second core idle; here the fetching runs in a forked child process (`run_nightly(...,
jobs=2)`, `laxchange run --jobs 2`) and hands over each batch as soon as its files are durable in
the inbox and moved on the server, and this process imports that batch while the next is fetched.

The child is forked when the run starts, before the run makes any connection or thread of its own,
and waits; it inherits the transports' set-up (the unlocked SSH key, pinned host keys, settings),
never the ledger: it only writes files into the inbox, under temporary names renamed into place,
which is what collecting in this process does. Everything the ledger and the audit log hear of is
done here, in the order it was before: a batch's `collect.fetched` entries, then its imports.

Given `verify` (`package.verify_package`, bound to our keys and partners), the child also verifies
and decrypts in memory each small package it fetched, and hands over what it found with the batch:
the import here then checks that the file's bytes are those verified and makes only the checks
that depend on the ledger and the time (`open_package(verified=...)`), so the signature checks,
decryption and validation run on the child's core. A package the child could not verify ahead is
opened in full here, and refused here if it must be: the child's verdict is never a refusal.

A child that dies, or says nothing for `SILENCE` seconds, is stopped and its collection reported
failed (transient), and the files it had already fetched are imported: nothing is lost (a file not
yet moved on the server is collected again next night, its same bytes found a duplicate).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from laxchange._util.workers import exit_with_parent, fork_available
from laxchange.errors import TransientTransportError
from laxchange.package import Verified
from laxchange.transport import PartyResult, Runner, collect
from laxchange.transport.ops import FileResult

__all__ = ["SILENCE", "BackgroundCollect", "fork_available"]

#: The longest the child may say nothing (seconds) before it is stopped: it tells of each batch, and
#: of progress within a long download at least every `_ALIVE` seconds.
SILENCE = 300.0
_ALIVE = 10.0


def _terminal() -> int | None:
    """A copy of this process's stdin if it is a terminal, for the child (None if not)."""
    try:
        return os.dup(sys.stdin.fileno()) if sys.stdin is not None and sys.stdin.isatty() else None
    except (OSError, ValueError, AttributeError):  # no real stdin (a test harness's stand-in)
        return None


#: What verifies one fetched package ahead (`package.verify_package` bound to our keys and partners).
Verify = Callable[[Path], Verified | None]


def _ahead(verify: Verify | None, inbox: Path, files: list[FileResult]) -> dict[str, Verified]:
    """By inbox name, the batch's packages `verify` could verify. Never fails: any error here (a bug
    included) only means that package is opened in full by the parent."""
    out: dict[str, Verified] = {}
    if verify is None:
        return out
    for f in files:
        if f.error is None:
            name = f.local or f.name
            try:
                v = verify(inbox / name)
            except Exception:  # the parent opens it in full and reports what is wrong
                v = None
            if v is not None:
                out[name] = v
    return out


def _child(runner: Runner, party: str, inbox: Path, conn: Connection, parent: int, terminal: int | None,
           verify: Verify | None = None) -> None:
    """The child: wait for the word, collect, tell of each batch (with what it verified ahead) and of the end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    if terminal is not None:  # multiprocessing gave us /dev/null for stdin: the SSH key's passphrase is
        sys.stdin = open(terminal, encoding="utf-8")  # noqa: SIM115  # asked for there, as in one process
    exit_with_parent(parent)  # a parent killed outright: its end of the pipe is open here too, so no EOF
    try:
        if conn.recv() != "go":
            return
    except EOFError:  # the parent is gone, or did not need us
        return
    last = [time.monotonic()]

    def alive(*_: object) -> None:
        if time.monotonic() - last[0] >= _ALIVE:
            last[0] = time.monotonic()
            conn.send(("alive", None))

    def batch(files: list[FileResult]) -> None:
        ahead = _ahead(verify, inbox, files)
        last[0] = time.monotonic()
        conn.send(("batch", (files, ahead)))

    # as `Party.collect` does in one process: an error not a LaxError (a bug) is an `internal.error`
    # in the result, not a traceback on the terminal and a child reported dead
    out = runner.each_party([party], lambda p: collect(runner, p, inbox, progress=alive, on_batch=batch))[party]
    conn.send(("done", out if isinstance(out, PartyResult) else PartyResult(party, error=out)))


class BackgroundCollect:
    """One collection of `party`'s drop folder into `inbox` in a forked child.

    Make it before any connection or thread of the run (it forks then), `start()` it when the
    import begins, take `batches()` as they come; `result` is then the collection's `PartyResult`.
    `close()` (also as a context manager) stops a child still running. With `verify`, the child
    verifies the small packages ahead: `verified` holds them, by inbox name, as batches come."""

    def __init__(self, runner: Runner, party: str, inbox: Path, *, silence: float = SILENCE,
                 verify: Verify | None = None) -> None:
        self.party = party
        self.silence = silence
        self.result: PartyResult | None = None
        self.verified: dict[str, Verified] = {}
        ctx = multiprocessing.get_context("fork")
        self._conn, child_conn = ctx.Pipe()
        terminal = _terminal()
        gc.freeze()  # the child's collections then leave the inherited heap alone
        try:
            self._proc = ctx.Process(target=_child, args=(runner, party, inbox, child_conn, os.getpid(), terminal,
                                                          verify), name="laxchange-collect", daemon=True)
            self._proc.start()
        finally:
            gc.unfreeze()
            if terminal is not None:
                os.close(terminal)
        child_conn.close()

    def start(self) -> None:
        with contextlib.suppress(OSError):  # a child already dead: `batches` finds it so and reports it
            self._conn.send("go")

    def batches(self) -> Iterator[list[FileResult]]:
        """Each batch's results as the child finishes it; then `result` is set (a child that died or
        fell silent: the files it told of, and a transient error)."""
        told: list[FileResult] = []
        while True:
            why = self._wait()
            msg: tuple[str, Any] | None = None
            if why is None:
                try:
                    msg = self._conn.recv()
                except (EOFError, OSError):
                    why = "its process stopped mid-message"
            if msg is None:
                self.close()
                self.result = PartyResult(self.party, files=told, error=TransientTransportError(
                    f"collecting from {self.party} in the background: {why}", code="collect.background",
                    hint="the files fetched before are imported; the rest are collected by the next run "
                         "(or run again with --jobs 1 to collect in one process)"))
                return
            kind, body = msg
            if kind == "batch":
                files, ahead = body
                self.verified.update(ahead)
                told += files
                yield files
            elif kind == "done":
                self.result = body
                self._proc.join(5)
                return

    def _wait(self) -> str | None:
        """None once a message is waiting; else why none will come."""
        deadline = time.monotonic() + self.silence
        while not self._conn.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
            if not self._proc.is_alive():
                return f"its process stopped (exit {self._proc.exitcode})"
            if time.monotonic() >= deadline:
                return f"its process said nothing for {self.silence:g} s"
        return None

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join(5)
        self._conn.close()

    def __enter__(self) -> BackgroundCollect:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
