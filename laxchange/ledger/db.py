"""The ledger: every transfer's state, the transfer ids already received, and an audit log.

Embedded SQLite in the home (`ledger.sqlite3`). States change only along the table in
`laxchange.ledger.states` (docs/states.md), each change in one transaction with its audit
entry, so a crash leaves a state from which the next run resumes. The audit log is append-only
and hash-chained: each entry's hash covers the previous entry's hash, so editing or deleting a
past entry breaks `verify_audit()` from that point on. Entries carry party ids, transfer ids and schema names,
never a child's name, UPN or other personal data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laxchange._util.fs import private_dirs
from laxchange._util.timefmt import fmt, parse
from laxchange.clock import Clock, SystemClock
from laxchange.errors import LaxError
from laxchange.ledger import merkle
from laxchange.ledger.errors import AlreadyReceived, IllegalTransition, LedgerBusy, LedgerError
from laxchange.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from laxchange.ledger.states import NOTE_EVENTS, Inbound, Outbound, audit_event, check_transition

GENESIS = "0" * 64
_SELECT = ("SELECT transfer_id, direction, party, state, created, expires, payload_sha256, updated, detail,"
           " message_type, record_ref FROM transfers")
_SELECT_ONE = _SELECT + " WHERE transfer_id = ? AND direction = ? AND party = ?"

_RESTORE = "restore it from backup; do not delete it (it holds the replay history)"

#: Seconds a statement waits for another process's lock before `LedgerBusy` (SQLite's busy handler).
DEFAULT_TIMEOUT = 15.0
#: The longest busy wait allowed: a run should fail and say why, not hang behind a stuck one.
MAX_TIMEOUT = 120.0

#: A reservation (`Ledger.reserve`) whose holder cannot be shown to be alive is free after this long
#: (a holder on another machine, or a process id reused since a crash). docs/states.md.
STALE_RESERVATION = dt.timedelta(minutes=30)
_HELD = "held by "

#: An outbound transfer `sent` this long ago without a delivered receipt is overdue (issue 9 #6; docs/states.md).
OVERDUE_AFTER = dt.timedelta(hours=48)

#: Reservations this process holds now (`Ledger.reserve` until `advance(holder=...)` or `release`).
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _holder_alive(detail: str | None, updated: str, now: dt.datetime, stale_after: dt.timedelta) -> bool:
    """Is the reservation in a `received` row's `detail` still held by a running opener?"""
    if not detail or not detail.startswith(_HELD):
        return False  # released, or a row from before reservations
    token = detail[len(_HELD):]
    with _LIVE_LOCK:
        if token in _LIVE:
            return True
    if now - parse(updated) >= stale_after:
        return False
    host, _, rest = token.rpartition("@")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # cannot tell from here: wait out `stale_after`
    if int(pid) == os.getpid():
        return False  # ours, and not in _LIVE: left over from an open that failed in this process
    return _pid_alive(int(pid))


_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_CORRUPT = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_IO = frozenset({sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY,
                 sqlite3.SQLITE_PERM, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_AUTH})


def _translate(exc: sqlite3.Error, path: Path) -> LaxError | None:
    """The LaxError a user should see for `exc`, or None if it is a bug in our SQL (left to propagate).

    Classified by SQLite's primary result code, not by message text, which varies by version.
    """
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
    what = f"{exc} ({getattr(exc, 'sqlite_errorname', type(exc).__name__)})"
    if code in _BUSY:
        return LedgerBusy(f"ledger {path} is locked by another process: {what}",
                          hint="another laxchange run holds the ledger; wait for it to finish and run the command "
                               "again (nothing was changed)")
    if code in _CORRUPT:
        return LedgerError(f"ledger {path} is damaged: {what}", code="ledger.corrupt", hint=_RESTORE)
    if code in _IO:
        return LedgerError(f"ledger {path} cannot be read or written: {what}", code="ledger.io",
                           hint="check the file's owner and permissions, that its directory is writable, and the "
                                "free disk space; then run the command again")
    if code == sqlite3.SQLITE_CONSTRAINT:
        return IllegalTransition(f"ledger {path} refused a change: {what}",
                                 hint="this is a bug in laxchange; the ledger is unchanged")
    return None


class _Connection:
    """The one boundary between the ledger and SQLite: every statement and transaction goes through here,
    and every SQLite failure a user can meet leaves it as a LaxError with a hint (see `_translate`)."""

    def __init__(self, path: Path, *, timeout: float,
                 on_commit: Callable[[tuple[str, ...]], None] | None = None, read_only: bool = False) -> None:
        self.path = path
        self.on_commit = on_commit
        self.events: list[str] = []  # audit events written in the open transaction
        #: the newest audit entry's hash, once read or written in the open transaction (which holds the write
        #: lock, so no other process can append meanwhile): each entry after the first needs no SELECT for it
        self.head: str | None = None
        with self._errors():
            if read_only:  # SQLite's own read-only mode: cannot create, migrate or change the file
                self._db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                           timeout=timeout)
            else:
                self._db = sqlite3.connect(path, isolation_level=None, timeout=timeout)
                # Write-ahead log, fsynced at every commit (synchronous=FULL): as durable as the rollback
                # journal, with one fsync per commit instead of several (x8 on the nightly job: bench/nightly.py).
                # The -wal and -shm files beside the database get its permissions (0600); a backup copies
                # all three, or uses `sqlite3 ledger.sqlite3 ".backup FILE"`. Needs a local filesystem.
                self._wal(timeout)
                self._db.execute("PRAGMA synchronous=FULL")

    def _wal(self, timeout: float) -> None:
        """Switch a new ledger to the write-ahead log (a no-op once it is). The switch needs the file to
        itself, and SQLite does not wait for that (no busy handler): several runs opening a new ledger
        at once retry here within the busy timeout, then fail as busy like any other wait."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            err = _translate(exc, self.path)
            if err is None:
                raise
            raise err from exc

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and fetch all its rows (so no cursor outlives the boundary). The errors
        are translated here as `_errors` does, without a context manager per statement (a council's
        night runs ~20 statements a receipt)."""
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            err = _translate(exc, self.path)
            if err is None:
                raise
            raise err from exc

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        """BEGIN IMMEDIATE: take the write lock before reading, so a read-then-write cannot race.

        Any failure inside (or of the COMMIT) rolls back, so nothing is ever half-written. Inside
        another transaction (`Ledger.batch`) this is a savepoint: a failure undoes only its own
        changes, and everything commits together when the outer one does.
        """
        if self._db.in_transaction:
            self.execute("SAVEPOINT nested")
            written = len(self.events)
            try:
                yield self
            except BaseException:
                del self.events[written:]
                self.head = None  # it may name an entry the rollback undid
                if self._db.in_transaction:
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK TO nested")
                        self._db.execute("RELEASE nested")
                raise
            self.execute("RELEASE nested")
            return
        self.execute("BEGIN IMMEDIATE")
        self.events.clear()
        self.head = None  # another process may have appended since our last transaction
        try:
            yield self
            self.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        finally:
            self.head = None
        if self.on_commit is not None and self.events:
            self.on_commit(tuple(self.events))

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (disk full, I/O error); a failed ROLLBACK
        # must not hide the error that caused it.
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


def entry_hash(prev: str, at: str, event: str, data: str) -> str:
    """An audit entry's chain hash: SHA-256 of the JSON array [prev, at, event, data] (data as its JSON text)."""
    return hashlib.sha256(json.dumps([prev, at, event, data], separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    direction: str
    party: str
    state: str
    created: str | None
    expires: str | None
    payload_sha256: str | None
    updated: str
    detail: str | None
    #: the message type (`pep-transfer`, ...) and the record's random `record_id` (schema version 2;
    #: None on rows from before, and where the message carries no record)
    message_type: str | None = None
    record_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


#: More transfer ids than this are filtered in Python (SQLite's limit on a statement's parameters is 32,766).
_IDS_PER_QUERY = 10_000


class Ledger:
    """One home's ledger. The clock is injected so tests control time."""

    def __init__(self, path: Path, *, clock: Clock | None = None, timeout: float | None = None,
                 on_commit: Callable[[tuple[str, ...]], None] | None = None) -> None:
        """Open (creating if absent) the ledger at `path`; `timeout` bounds the wait for another run's lock.

        `on_commit` is called after each committed transaction that wrote audit entries, with their
        event names (the crash-safety test kills the process there, at every kind of transition)."""
        self.path = path
        self.clock = clock or SystemClock()
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if not 0 <= timeout <= MAX_TIMEOUT:
            raise ValueError(f"ledger busy timeout must be 0..{MAX_TIMEOUT} seconds, not {timeout}")
        try:
            private_dirs(path.parent)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # never briefly readable by others
            path.chmod(0o600)
        except OSError as exc:
            raise LedgerError(f"ledger {path} cannot be created or opened: {exc.strerror or exc}",
                              hint="check the home directory's owner, permissions and free disk space") from None
        self._db = _Connection(path, timeout=timeout, on_commit=on_commit)
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Bring the database to SCHEMA_VERSION in one transaction; refuse one from a newer laxchange."""
        version = self._version(self._db)
        if version == SCHEMA_VERSION:
            return  # the usual case: no write lock taken just to open
        self._refuse_newer(version)
        with self._db.transaction() as db:
            version = self._version(db)  # another process may have migrated it while we waited
            self._refuse_newer(version)
            try:
                for step in MIGRATIONS[version:]:
                    for sql in step.statements:
                        db.execute(sql)
            except IllegalTransition as exc:  # a row the new CHECK refuses
                raise LedgerError(f"ledger {self.path} cannot be upgraded to schema version {SCHEMA_VERSION}: "
                                  f"{exc.message}", code="ledger.corrupt",
                                  hint=_RESTORE) from exc
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    @staticmethod
    def _version(db: _Connection) -> int:
        return int(db.execute("PRAGMA user_version")[0][0])

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LedgerError(f"ledger {self.path} has schema version {version}; this laxchange reads up to "
                              f"version {SCHEMA_VERSION}", code="ledger.too-new",
                              hint="upgrade laxchange: a newer version wrote this ledger (do not downgrade a home)")

    @property
    def in_batch(self) -> bool:
        """A transaction is open (a caller's `batch`): what is changed now commits only with it."""
        return self._db._db.in_transaction

    @property
    def schema_version(self) -> int:
        """The database's PRAGMA user_version (SCHEMA_VERSION once opened)."""
        return self._version(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> str:
        return fmt(self.clock.now())

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every change inside in one transaction: one commit (one fsync) for many.

        For changes that are each already safe to make and can wait until the last is made (the
        `sent` of every package one upload confirmed). Each change inside is still all or nothing on
        its own (a savepoint): one that fails is undone and its error raised here, which rolls back
        the batch, so a caller records nothing it has not confirmed. Nested batches join the outer one.
        """
        with self._db.transaction():
            yield

    def _audit(self, db: _Connection, event: str, data: dict[str, Any]) -> None:
        """Append one entry (inside `db.transaction()`), chained to the newest one."""
        prev = db.head
        if prev is None:
            rows = db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
            prev = rows[0][0] if rows else GENESIS
        at = self._now()
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        digest = entry_hash(prev, at, event, text)
        db.execute("INSERT INTO audit (at, event, data, prev, hash) VALUES (?, ?, ?, ?, ?)",
                   (at, event, text, prev, digest))
        db.events.append(event)
        db.head = digest

    # -- transfers -------------------------------------------------------------------------
    def seen(self, transfer_id: str, sender: str) -> bool:
        """Has `sender` already had this transfer imported? (the replay check)

        Keyed on the sender too: transfer ids travel in the cleartext manifest, so a check on the
        id alone would let one partner reuse another's id and get the genuine package refused.
        Quarantined packages do not count, so a forged copy cannot block the real one.
        """
        rows = self._db.execute("SELECT state FROM transfers WHERE transfer_id = ? AND direction = 'in' AND party = ?",
                                (transfer_id, sender))
        return bool(rows) and rows[0][0] == "imported"

    def reserve(self, transfer_id: str, sender: str, *, created: str | None = None, expires: str | None = None,
                payload_sha256: str | None = None, stale_after: dt.timedelta = STALE_RESERVATION) -> str:
        """Take the inbound transfer (`sender`, `transfer_id`) for one opener: its row enters
        `received`, held by a token returned here, in one BEGIN IMMEDIATE transaction. Of several
        openers racing, exactly one gets the token; the others get `AlreadyReceived`.

        The row may be new, `quarantined` (the genuine package after a damaged or forged one), or
        a `received` row nobody holds any more: released by an open that failed, or held by a
        process that has ended, or (for a holder we cannot see) older than `stale_after`. An
        `imported` row is a replay; a `received` or `verified` row with a live holder is a
        concurrent open. Finish with `advance(..., holder=token)` or `release(token)`.
        """
        token = f"{socket.gethostname()}@{os.getpid()}:{secrets.token_hex(6)}"
        key = (transfer_id, "in", sender)
        with _LIVE_LOCK:  # live before the row names it: another thread never sees ours as left over
            _LIVE.add(token)
        try:
            self._reserve(token, key, created, expires, payload_sha256, stale_after)
        except BaseException:
            with _LIVE_LOCK:
                _LIVE.discard(token)
            raise
        return token

    def _reserve(self, token: str, key: tuple[str, str, str], created: str | None, expires: str | None,
                 payload_sha256: str | None, stale_after: dt.timedelta) -> None:
        transfer_id, _, sender = key
        with self._db.transaction() as db:
            now = self.clock.now()
            rows = db.execute("SELECT state, updated, detail FROM transfers"
                              " WHERE transfer_id = ? AND direction = ? AND party = ?", key)
            audit: dict[str, Any] = {"transfer_id": transfer_id, "party": sender}
            if not rows:
                check_transition("in", None, Inbound.RECEIVED, transfer_id=transfer_id)
                db.execute("INSERT INTO transfers (transfer_id, direction, party, state, created, expires,"
                           " payload_sha256, updated, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (*key, str(Inbound.RECEIVED), created, expires, payload_sha256, fmt(now), _HELD + token))
            else:
                state, updated, detail = rows[0]
                if state == Inbound.IMPORTED:
                    raise AlreadyReceived(f"transfer {transfer_id} from {sender} was already imported (at {updated})",
                                          in_progress=False, hint="this is a duplicate; nothing to do")
                if state != Inbound.QUARANTINED and (state != Inbound.RECEIVED
                                                     or _holder_alive(detail, updated, now, stale_after)):
                    raise AlreadyReceived(
                        f"transfer {transfer_id} from {sender} is being opened by another laxchange run "
                        f"(since {updated})", in_progress=True,
                        hint="nothing to do if that run succeeds; if it failed, open the package again once it "
                             f"has ended (a reservation is free when its process is gone, or after "
                             f"{int(stale_after.total_seconds() // 60)} minutes)")
                check_transition("in", state, Inbound.RECEIVED, transfer_id=transfer_id)
                db.execute("UPDATE transfers SET state = ?, created = ?, expires = ?, payload_sha256 = ?, updated = ?,"
                           " detail = ? WHERE transfer_id = ? AND direction = ? AND party = ?",
                           (str(Inbound.RECEIVED), created, expires, payload_sha256, fmt(now), _HELD + token, *key))
                audit["after"] = str(state) if state == Inbound.QUARANTINED else "unfinished open"
            self._audit(db, audit_event("in", Inbound.RECEIVED), audit)

    def abandoned_reservations(self, stale_after: dt.timedelta = STALE_RESERVATION) -> list[tuple[Transfer, str]]:
        """Inbound `received` rows still held by an opener that is gone (`reserve`'s test: a process
        that has ended, or a holder we cannot see older than `stale_after`), each with its token: a
        kill or an interrupt mid-open left them. `advance(..., holder=token)` finishes one as its
        opener would have, and is refused (`IllegalTransition`) if another open took it over since."""
        now = self.clock.now()
        return [(t, t.detail[len(_HELD):]) for t in self.transfers(direction="in", state=Inbound.RECEIVED)
                if t.detail and t.detail.startswith(_HELD) and not _holder_alive(t.detail, t.updated, now, stale_after)]

    def release(self, transfer_id: str, sender: str, holder: str) -> None:
        """Give up a reservation without a state change (the open failed for a reason that is not
        the package's: output exists, disk full, interrupted); the next open takes it at once."""
        with _LIVE_LOCK:
            _LIVE.discard(holder)
        self._db.execute("UPDATE transfers SET detail = NULL WHERE transfer_id = ? AND direction = 'in'"
                         " AND party = ? AND state = ? AND detail = ?",
                         (transfer_id, sender, str(Inbound.RECEIVED), _HELD + holder))

    def advance(self, direction: str, transfer_id: str, party: str, *states: str, if_new: Sequence[str] = (),
                created: str | None = None, expires: str | None = None, payload_sha256: str | None = None,
                detail: str | None = None, audit: dict[str, Any] | None = None, holder: str | None = None,
                message_type: str | None = None, record_ref: str | None = None) -> Transfer:
        """Move a transfer through `states` in order, creating its row if new; one transaction for all.

        `if_new` are states to walk first when the row does not exist yet (decided inside the
        transaction): `send` of a package this ledger never saw packed records `queued, sent`.

        The current state is read inside the same BEGIN IMMEDIATE transaction that writes, and each
        step is checked against the table (`states.check_transition`), so of two runs racing the
        same change exactly one makes it; the other gets `IllegalTransition` and changes nothing.
        Each step appends its own audit entry (`out.sent`, `in.imported`, …) in that transaction.
        `created`, `expires` and `payload_sha256` are written when the row is created. With
        `holder` (a token from `reserve`) the row must still be held by it, else `IllegalTransition`
        (the reservation was taken over as stale); the change ends the reservation. `message_type`
        and `record_ref` (the record's random id, never personal data) are written to the row when
        given (an inbound row learns them only once opened) and into each step's audit entry.
        """
        if not states:
            raise ValueError("advance() needs at least one state")
        now = self._now()
        key = (transfer_id, direction, party)
        with self._db.transaction() as db:
            rows = db.execute(_SELECT_ONE, key)
            old = Transfer(*rows[0]) if rows else None
            current: str | None = old.state if old is not None else None
            # COALESCE(?, column): a value given replaces the row's, else the row's stays
            known = (message_type if message_type is not None or old is None else old.message_type,
                     record_ref if record_ref is not None or old is None else old.record_ref)
            # in every step's audit entry, so "what went where" needs no join
            refs = {k: v for k, v in (("message_type", message_type or (old.message_type if old else None)),
                                      ("record_ref", record_ref or (old.record_ref if old else None)))
                    if v is not None}
            if holder is not None and (old is None or old.detail != _HELD + holder):
                raise IllegalTransition(f"{direction} transfer {transfer_id}: the reservation of this open is no "
                                        "longer held (another run took it over as stale)",
                                        hint="run the command again; the ledger is unchanged",
                                        details={"transfer_id": transfer_id})
            # each step checked against the table and audited; the row is written once, in its last state
            for new in (*if_new, *states) if current is None else states:
                current = check_transition(direction, current, new, transfer_id=transfer_id)
                self._audit(db, audit_event(direction, current),
                            {"transfer_id": transfer_id, "party": party, **refs, **(audit or {})})
            state = str(current)
            if old is None:
                db.execute("INSERT INTO transfers (transfer_id, direction, party, state, created, expires,"
                           " payload_sha256, updated, detail, message_type, record_ref)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (*key, state, created, expires, payload_sha256, now, detail, message_type, record_ref))
                row = Transfer(*key, state, created, expires, payload_sha256, now, detail, message_type, record_ref)
            else:
                db.execute("UPDATE transfers SET state = ?, updated = ?, detail = ?,"
                           " message_type = COALESCE(?, message_type), record_ref = COALESCE(?, record_ref)"
                           " WHERE transfer_id = ? AND direction = ? AND party = ?",
                           (state, now, detail, message_type, record_ref, *key))
                row = Transfer(*key, state, old.created, old.expires, old.payload_sha256, now, detail, *known)
        if holder is not None:
            with _LIVE_LOCK:
                _LIVE.discard(holder)
        return row

    def get(self, transfer_id: str, direction: str, party: str) -> Transfer | None:
        rows = self._db.execute(_SELECT_ONE, (transfer_id, direction, party))
        return Transfer(*rows[0]) if rows else None

    def transfers(self, *, direction: str | None = None, state: str | None = None, party: str | None = None,
                  record_ref: str | None = None, since: dt.datetime | None = None,
                  overdue: bool = False) -> list[Transfer]:
        """Transfers matching every filter given: `since` on the time of the last change; `overdue`
        the outbound ones `sent` at least OVERDUE_AFTER ago with no receipt yet (`overdue_before`)."""
        sql = _SELECT + " WHERE 1=1"
        args: list[str] = []
        for column, value in (("direction", direction), ("state", state), ("party", party),
                              ("record_ref", record_ref)):
            if value:
                sql += f" AND {column} = ?"
                args.append(value)
        if since is not None:
            sql += " AND updated >= ?"
            args.append(fmt(since))
        if overdue:  # a receipt we sent is never overdue: nobody acknowledges a receipt (as `run` reports)
            sql += " AND direction = 'out' AND state = ? AND updated <= ? AND message_type IS NOT 'receipt'"
            args += [str(Outbound.SENT), fmt(self.overdue_before())]
        found = [Transfer(*r) for r in self._db.execute(sql + " ORDER BY updated, transfer_id", args)]
        return self._not_receipts(found) if overdue else found

    def notified_records(self, since: dt.datetime) -> dict[tuple[str, str], tuple[str, str, str]]:
        """(record_ref, party) -> (transfer_id, state, created) of the latest outbound transfer made
        since `since` that carries a record, for each pair; receipts, rejected and expired ones left
        out (notify's warning of a record sent again). Only those columns, filtered by SQLite: a
        council's ledger holds a row per transfer, and a batch asks this once."""
        rows = self._db.execute(
            "SELECT record_ref, party, transfer_id, state, COALESCE(created, updated) AS made FROM transfers "
            "WHERE direction = 'out' AND made >= ? AND record_ref IS NOT NULL AND message_type IS NOT 'receipt' "
            "AND state NOT IN (?, ?) ORDER BY made DESC, transfer_id",
            (fmt(since), str(Outbound.REJECTED), str(Outbound.EXPIRED)))
        out: dict[tuple[str, str], tuple[str, str, str]] = {}
        for ref, party, tid, state, at in rows:
            out.setdefault((ref, party), (tid, state, at))
        return out

    def transfer_ids(self, *, direction: str) -> set[str]:
        """Every transfer id in `direction`, and nothing else of the rows (the run's outbox sweep)."""
        return {r[0] for r in self._db.execute("SELECT transfer_id FROM transfers WHERE direction = ?", (direction,))}

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """How many transfers each party has in each direction and state: party → direction → state →
        n, each level in the order of its first transfer in `transfers()` (counted by SQLite: a
        council's ledger holds a row per transfer ever sent or received, and this is asked nightly)."""
        rows = self._db.execute("SELECT party, direction, state, COUNT(*), MIN(updated || ' ' || transfer_id) "
                                "FROM transfers GROUP BY party, direction, state")
        first: dict[tuple[str, ...], str] = {}
        for party, direction, state, _n, at in rows:
            for key in ((party,), (party, direction), (party, direction, state)):
                first[key] = min(first.get(key, at), at)
        out: dict[str, dict[str, dict[str, int]]] = {}
        for party, direction, state, n, _at in sorted(rows, key=lambda r: (first[(r[0],)], first[(r[0], r[1])],
                                                                           first[(r[0], r[1], r[2])])):
            out.setdefault(party, {}).setdefault(direction, {})[state] = n
        return out

    def overdue_before(self, after: dt.timedelta = OVERDUE_AFTER) -> dt.datetime:
        """A `sent` transfer last changed at or before this instant is overdue (the one definition,
        for `status --overdue` and the nightly run's report)."""
        return self.clock.now() - after

    def overdue(self, after: dt.timedelta = OVERDUE_AFTER) -> list[Transfer]:
        """Outbound transfers sent at least `after` ago (default 48 hours) without a delivered receipt
        (receipts we sent excepted: nobody acknowledges a receipt, docs/operations.md)."""
        before = self.overdue_before(after)
        return self._not_receipts([t for t in self.transfers(direction="out", state=Outbound.SENT)
                                   if parse(t.updated) <= before and t.message_type != "receipt"])

    def _not_receipts(self, found: list[Transfer]) -> list[Transfer]:
        """`found` less the receipts among rows with no message type (written before the ledger kept
        one): their `out.queued` audit entry says so. Only those rows' entries are read."""
        untyped = {t.transfer_id for t in found if t.message_type is None}
        if not untyped:
            return found
        receipts = {str(e["data"].get("transfer_id")) for e in self.audit_entries(["out.queued"], transfer_ids=untyped)
                    if e["data"].get("message_type") == "receipt"}
        return [t for t in found if t.transfer_id not in receipts]

    # -- audit -----------------------------------------------------------------------------
    def note(self, event: str, data: dict[str, Any]) -> None:
        """Append an audit entry that is not a state change (e.g. a package refused before its id was trusted).

        Only the names in `states.NOTE_EVENTS` are accepted: event names are hashed into the log
        forever, so a new one is a decision to write down there and in docs/states.md.
        """
        self.notes([(event, data)])

    def notes(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Append several notes in one transaction (one commit: e.g. every file one `collect` fetched)."""
        for event, _ in entries:
            if event not in NOTE_EVENTS:
                raise ValueError(f"{event!r} is not an audit note event (see laxchange.ledger.states.NOTE_EVENTS)")
        if not entries:
            return
        with self._db.transaction() as db:
            for event, data in entries:
                self._audit(db, event, data)

    def audit_entries(self, events: Collection[str] | None = None, *,
                      transfer_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """The audit log in order; with `events`, only the entries of those names, and with
        `transfer_ids`, only those whose data names one of them (both chosen by SQLite, so a caller
        that wants a few kinds, or a few transfers, does not parse a log that grows by several
        entries per transfer, for years)."""
        if transfer_ids is not None and len(transfer_ids) > _IDS_PER_QUERY:
            wanted = set(transfer_ids)
            return [e for e in self.audit_entries(events) if e["data"].get("transfer_id") in wanted]
        sql, args = "SELECT seq, at, event, data, prev, hash FROM audit WHERE 1=1", list(events or ())
        # only placeholders are added to the statement; the names and ids are parameters
        if events is not None:
            sql += " AND event IN (" + ", ".join("?" * len(args)) + ")" if args else " AND 0"
        if transfer_ids is not None:
            ids = sorted(transfer_ids)
            sql += " AND json_extract(data, '$.transfer_id') IN (" + ", ".join("?" * len(ids)) + ")" if ids \
                else " AND 0"
            args += ids
        return [{"seq": s, "at": at, "event": ev, "data": json.loads(d), "prev": p, "hash": h}
                for s, at, ev, d, p, h in self._db.execute(sql + " ORDER BY seq", args)]

    def audit_leaves(self) -> list[bytes]:
        """The Merkle tree's leaf hashes, one per audit entry in order: leaf data is the entry's
        chain hash as 32 raw bytes (`laxchange.ledger.merkle`; docs/ledger.md)."""
        return [merkle.leaf_hash(bytes.fromhex(h)) for (h,) in self._db.execute("SELECT hash FROM audit ORDER BY seq")]

    def audit_hashes(self, after: int = 0) -> list[tuple[int, str]]:
        """(seq, chain hash) of each audit entry after entry `after`, in order: the leaves a tree
        head already computed up to `after` still needs (`transparency.make_checkpoint`)."""
        return [(s, h) for s, h in self._db.execute("SELECT seq, hash FROM audit WHERE seq > ? ORDER BY seq",
                                                     (after,))]

    def audit_hash(self, seq: int) -> str | None:
        """The chain hash of audit entry `seq`, None if there is none."""
        rows = self._db.execute("SELECT hash FROM audit WHERE seq = ?", (seq,))
        return str(rows[0][0]) if rows else None

    def audit_count(self, upto: int) -> int:
        """How many audit entries there are up to and including entry `upto`: the leaves of the
        tree that ends at it (an entry's number alone does not say, and no signature covers it)."""
        return int(self._db.execute("SELECT COUNT(*) FROM audit WHERE seq <= ?", (upto,))[0][0])

    def verify_audit(self) -> list[str]:
        """Problems with the audit chain (empty if intact): the first edited, removed or reordered entry."""
        return _verify_chain(self._db)


def _verify_chain(db: _Connection) -> list[str]:
    prev = GENESIS
    for seq, at, event, data, p, h in db.execute("SELECT seq, at, event, data, prev, hash FROM audit ORDER BY seq"):
        if p != prev:
            return [f"audit entry {seq}: does not follow the previous entry (an entry was removed or reordered)"]
        if entry_hash(p, at, event, data) != h:
            return [f"audit entry {seq}: its contents were changed after it was written"]
        prev = h
    return []


@dataclass(frozen=True)
class LedgerHealth:
    """What `inspect_ledger` found (for `laxchange doctor`)."""

    #: the database's PRAGMA user_version, and the version this laxchange reads and writes
    schema_version: int
    current_version: int
    #: PRAGMA integrity_check's findings; empty when the database is sound
    integrity: list[str]
    #: `verify_audit`'s findings, and how many entries the log holds and its newest hash
    audit_problems: list[str]
    audit_entries: int
    audit_head: str | None
    #: the newest timestamp written in the audit log or a transfer row (for the clock check)
    newest: str | None

    @property
    def migrations_pending(self) -> int:
        return max(0, self.current_version - self.schema_version)


def inspect_ledger(path: Path, *, timeout: float = 5.0) -> LedgerHealth:
    """Check the ledger at `path` without changing it: it is opened read-only, so it is never
    created or migrated (the next command that opens it for writing migrates it). Like any reader
    of a write-ahead-log database, SQLite may leave its empty `-wal` and `-shm` files beside it.
    SQLite's own failures (a damaged or unreadable file, a lock held past `timeout`) raise
    `LedgerError`."""
    db = _Connection(path, timeout=timeout, read_only=True)
    try:
        version = int(db.execute("PRAGMA user_version")[0][0])
        integrity = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
        tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        problems: list[str] = []
        entries, head = 0, None
        stamps: list[str] = []
        if "audit" in tables:
            problems = _verify_chain(db)
            rows = db.execute("SELECT COUNT(*), MAX(at), (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1) FROM audit")
            entries, newest_audit, head = int(rows[0][0]), rows[0][1], rows[0][2]
            stamps += [newest_audit] if newest_audit else []
        if "transfers" in tables:
            newest_row = db.execute("SELECT MAX(updated) FROM transfers")[0][0]
            stamps += [newest_row] if newest_row else []
    finally:
        db.close()
    return LedgerHealth(version, SCHEMA_VERSION, [] if integrity == ["ok"] else integrity, problems, entries, head,
                        max(stamps) if stamps else None)
