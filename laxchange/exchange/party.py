"""A party and what it does: pack, send, collect, open, with the ledger, quarantine and audit.

`laxchange.package` is the format (pure: bytes in, bytes out) and `laxchange.transport` moves
files; a `Party` is one home's keys, partners, ledger, clock and transports put together, so the
CLI, the demo and the nightly run share one implementation of the bookkeeping around them.
Everything a `Party` uses is handed to it by keyword, so tests and other programs can swap any
part (a fixed clock, a local-folder transport) without monkeypatching; `Party.from_home()`
builds the usual ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from laxchange import dsse, package
from laxchange._util import timefmt
from laxchange._util.fs import RACY_NS, check_output, move_new, open_regular, sha256_file
from laxchange.clock import Clock, FixedClock, SystemClock
from laxchange.errors import InvalidData, LaxError, SecurityError, TransportError, UsageError
from laxchange.exchange.endpoints import DirectoryEndpoints
from laxchange.exchange.quarantine import Quarantined, in_inbox, in_quarantine, quarantine, recorded_for, release
from laxchange.exchange.receipts import ReceiptOutcome, apply_receipt
from laxchange.home import Home
from laxchange.ledger import checkpoint
from laxchange.ledger.db import Ledger
from laxchange.ledger.errors import AlreadyReceived, IllegalTransition
from laxchange.ledger.lock import RunLock
from laxchange.ledger.states import FINISH_PATH, Inbound, Outbound, can_transition
from laxchange.logs import log_event
from laxchange.models import wrap
from laxchange.models.common import SCHEMA_BASE
from laxchange.passphrase import PassphraseSource, default_passphrase_source
from laxchange.transport import (
    FileResult,
    PartyProgress,
    PartyResult,
    RetryPolicy,
    Runner,
    SftpSettings,
    collect,
    send,
    transport_factory,
)
from laxchange.transport.base import safe_label
from laxchange.trust.directory import PartnerDirectory
from laxchange.trust.keystore import KeyStore

__all__ = ["InboxResult", "OpenBatch", "Party", "default_attachments_dir", "open_from", "pack_to"]

#: Where `open_inbox` keeps packages it has opened, so a re-run never opens (or replays) them again.
OPENED = "opened"

_log = logging.getLogger(__name__)


#: How much of a file `send` reads to tell a plain-text laxchange document (JSON whose `schema`
#: names a laxchange schema) from other files it sends as they are: a record's `schema` comes
#: first as laxchange writes it, and records are at most a few MB.
_PLAIN_PEEK = 1024 * 1024
_SCHEMA_MARK = SCHEMA_BASE.encode()
_CLAIMED = re.compile(r"([0-9a-f]{32})\.lax")


def _claimed_transfer_id(name: str) -> str | None:
    """The transfer id a collected file's name claims (`<transfer id>.lax`), unverified; None for any
    other name, which a sender chose and so might say anything (a name is never written to the audit)."""
    found = _CLAIMED.fullmatch(name)
    return found.group(1) if found else None


#: laxchange's own names for a package on a server and in an inbox: `<transfer id>.lax`, and that
#: name set aside beside different bytes of it (`transport.aside_name`)
_OWN_NAME = re.compile(r"[0-9a-f]{32}(?:-[0-9a-f]{12})?\.lax")
#: what reports show for any other name
NAME_WITHHELD = "(a file its sender named: name not shown)"


def shown_name(name: str) -> str:
    """An inbox file's name as the nightly run's and import's reports show it (their text, JSON
    and the morning report end up in logs and mail): laxchange's own names as they are, any other
    `NAME_WITHHELD`, since its sender chose it and it may name the child ("PEP for ... DOB ...")."""
    return name if _OWN_NAME.fullmatch(name) else NAME_WITHHELD


def shown_error(name: str, error: LaxError) -> LaxError:
    """`error`, about the inbox or remote file `name`, as the reports show it (`shown_name`): a
    transport's message names the file ("download of NAME from ..."), so a name they withhold is
    withheld from its message too, and the error's details go."""
    if shown_name(name) == name:
        return error
    message = error.message
    for spelled in sorted({name, safe_label(name), safe_label(name, limit=10_000), repr(name)}, key=len, reverse=True):
        message = message.replace(spelled, NAME_WITHHELD)
    out = error.restated(message)
    out.details = {}
    return out


def default_attachments_dir(out: Path) -> Path:
    """Where `Party.open` writes a package's attachments when not told: `<stem>.attachments` beside `out`."""
    return out.with_name(f"{out.stem}.attachments")


#: Where `Party.withdraw` keeps a withdrawn package: under the outbox, never sent from there.
WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Withdrawn:
    """`Party.withdraw`: the transfer taken back, its party, and where its package is kept (None: not in the outbox)."""

    transfer_id: str
    party: str
    kept: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {"transfer_id": self.transfer_id, "party": self.party, "kept": str(self.kept) if self.kept else None}


@dataclass(frozen=True)
class SendPlan:
    """`Party.plan_send`: each file's name on the server, each upload's manifest (None: not a
    package), and the SHA-256s already known."""

    names: dict[Path, str]
    manifests: dict[str, package.Manifest | None]
    hashes: dict[Path, str]


@dataclass
class InboxResult:
    """What `Party.open_inbox` did: packages opened, and packages refused (already quarantined)."""

    opened: list[package.Opened] = field(default_factory=list)
    refused: list[tuple[str, LaxError]] = field(default_factory=list)


@dataclass
class _Unrecorded:
    """An open verified, reserved and written whose `imported` is not yet committed."""

    opened: package.Opened
    held: tuple[str, str, str]  # (transfer id, sender, reservation token)
    on_receipt: Callable[[ReceiptOutcome], None] | None
    outcome: ReceiptOutcome | None = None


def _quarantined_data(q: Quarantined) -> dict[str, Any]:
    """What the audit log keeps of a package moved into quarantine: its reason, its SHA-256 and its
    name there (ids and codes only)."""
    return {"reason": q.record["reason"], "sha256": q.record["sha256"], "quarantine": q.path.name}


class _Abandoned(Exception):
    """Thrown into a batch's ledger transaction to roll it back."""


class OpenBatch:
    """Opens whose reservations and `imported` are recorded together: `Party.open(..., batch=b)`
    verifies and writes each package as ever, reserving it inside one ledger transaction the batch
    holds open, and `b.commit()` records them all `imported` and commits: one commit for the batch,
    instead of a reservation commit and a finish each (an import of many packages, a council's
    receipts most of all, waited for each in turn). The transaction holds the ledger's write lock
    (BEGIN IMMEDIATE), so no other run can reserve, let alone import, a transfer of the batch
    meanwhile: it waits (up to the ledger's busy timeout) and then finds it `imported`. The lock is
    held for at most about `hold` seconds: an open that ends later commits what the batch has so
    far (its reservations, as each open used to), and so does a refusal (its quarantine is on record
    at once, as before). A crash before a commit leaves nothing of those opens in the ledger: the
    next run imports them afresh. Nothing here fsyncs: with `staged=True` the files may not be
    durable when their transfer is recorded `imported`; the caller (`inbound._file_staged`) fsyncs
    them before filing the folder, and until then the package stays in the inbox, so a crash is
    finished by verifying it again (docs/import.md, "Crash safety")."""

    #: The longest the batch keeps the ledger's write lock before committing what it has (seconds).
    HOLD = 0.5
    #: A package whose payload is larger than this is reserved in a commit of its own, as without a
    #: batch (what the batch holds is committed first): its open, which hashes, decrypts and writes
    #: it all after the reservation, must not keep every other writer of the ledger waiting.
    MAX_HELD_PAYLOAD = 4 * 1024 * 1024

    def __init__(self, party: Party, *, hold: float = HOLD) -> None:
        self.party = party
        self.hold = hold
        self.pending: list[_Unrecorded] = []
        self._txn: contextlib.ExitStack | None = None
        self._since = 0.0

    def __len__(self) -> int:
        return len(self.pending)

    def begin(self) -> None:
        """Open the batch's ledger transaction, unless it is open (`Party.open` calls this before reserving)."""
        if self._txn is None:
            stack = contextlib.ExitStack()
            stack.enter_context(self.party.ledger.batch())
            self._txn, self._since = stack, time.monotonic()

    def settle(self) -> None:
        """Commit what the transaction holds so far (reservations, refusals); the next open begins another."""
        txn, self._txn = self._txn, None
        if txn is not None:
            txn.close()

    def opened(self) -> None:
        """After each open: commit what there is once the lock has been held `hold` seconds."""
        if self._txn is not None and time.monotonic() - self._since >= self.hold:
            self.settle()

    def _rollback(self) -> None:
        txn, self._txn = self._txn, None
        if txn is not None:
            exc = _Abandoned()
            txn.__exit__(type(exc), exc, None)

    def abandon(self) -> None:
        """Give up every open of the batch (the caller is failing): files removed, reservations released
        (those not yet committed are rolled back; those committed, released)."""
        pending, self.pending = self.pending, []
        self._rollback()
        for p in pending:
            self.party._unrecord(p)

    def commit(self) -> list[LaxError | None]:
        """Record every open of the batch `imported`, in the order they were opened; for each, None or
        the error that kept it from being recorded (its files removed, its reservation released, as a
        failed `open`). One commit for all; if that fails, each is tried on its own, so one open's
        failure is never another's."""
        party, pending = self.party, self.pending
        self.pending = []
        errors: list[LaxError | None] = [None] * len(pending)
        try:
            if pending:
                self.begin()
            try:
                with party.ledger.batch():
                    for p in pending:
                        party._record_imported(p)
            except LaxError:
                for p in pending:
                    p.outcome = None
                for n, p in enumerate(pending):
                    try:
                        with party.ledger.batch():
                            party._record_imported(p)
                    except LaxError as exc:
                        party._unrecord(p)
                        errors[n] = exc
            self.settle()
        except LaxError as exc:  # the commit failed: nothing of the batch is recorded, reservations included
            self._rollback()
            for n, p in enumerate(pending):
                if errors[n] is None:
                    p.outcome = None
                    party._unrecord(p)
                    errors[n] = exc
        except BaseException:
            self._rollback()
            for p in pending:
                party._unrecord(p)
            raise
        for p, err in zip(pending, errors, strict=True):
            if err is None:
                party._imported(p)
        return errors


class Party:
    """One party's home with everything it needs injected: keys, partners, ledger, clock, transports."""

    def __init__(self, *, home: Home, keystore: KeyStore, directory: PartnerDirectory, clock: Clock,
                 transports: Runner, ledger: Ledger | None = None) -> None:
        self.home = home
        self.keystore = keystore
        self.directory = directory
        self.clock = clock
        self.transports = transports
        self._ledger = ledger
        # per partner, the checkpoint note `keep_checkpoint` last verified and kept, with the keys it
        # verified under: every receipt a partner packs in one run carries the same one
        self._last_kept: dict[str, tuple[str, tuple[bytes, ...], checkpoint.Checkpoint]] = {}
        # the newest checkpoint note we signed, with the folder's (inode, mtime) it was read at
        self._own_note: tuple[tuple[int, int], str | None] | None = None

    @classmethod
    def from_home(cls, home: Home, *, passphrase: PassphraseSource | None = None, clock: Clock | None = None,
                  sftp: SftpSettings | None = None, retry: RetryPolicy | None = None,
                  keystore: KeyStore | None = None, directory: PartnerDirectory | None = None,
                  on_retry: Callable[[str, int, TransportError, float], None] | None = None,
                  ledger: Ledger | None = None) -> Party:
        """The usual parts for `home` (key store, partner directory, ledger, SFTP), any of them overridable."""
        clock = clock or SystemClock()
        passphrase = passphrase or (keystore.passphrase if keystore else default_passphrase_source())
        runner = Runner(DirectoryEndpoints(home), transport_factory(home, passphrase, sftp), retry or RetryPolicy(),
                        on_retry=on_retry)
        return cls(home=home, keystore=keystore or KeyStore(home, passphrase=passphrase, clock=clock),
                   directory=directory or PartnerDirectory(home, clock=clock), clock=clock, transports=runner,
                   ledger=ledger)

    # -- resources --------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        """The home's ledger, opened on first use (so a read-only command never creates one)."""
        if self._ledger is None:
            self._ledger = Ledger(self.home.ledger_db, clock=self.clock)
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def __enter__(self) -> Party:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- outbound ---------------------------------------------------------------------------
    def pack(self, document: Any, *, message_type: str | None = None, recipient: str, out: Path | BinaryIO,
             expires_in: dt.timedelta = package.DEFAULT_EXPIRES_IN,
             attachments: Sequence[str | os.PathLike[str]] = (), reason: str | None = None,
             message: str | None = None, source: str | os.PathLike[str] | None = None,
             overwrite: bool = False) -> package.PackResult:
        """Validate, sign and encrypt `document` for `recipient` into `out`; record it as queued.

        `message_type` is optional (the document names its schema) and, when given, a check; an
        education record asked for as a pep-transfer or placement-notification is wrapped in it
        (`models.wrap.prepare`, which needs `reason`). `source` is the file the document was read
        from: like the attachments it is never written over; an existing `out` only with `overwrite`.
        `out` may be a binary stream, for a caller that writes several packages' files together: it
        must make the file durable before the ledger commits the `queued` (inside its `Ledger.batch`).
        """
        if isinstance(out, Path):
            check_output(out, inputs=[*([source] if source is not None else []), *attachments],
                         overwrite=overwrite, what="package file")
        document, message_type = wrap.prepare(document, message_type, sender=self.keystore.ring().party,
                                              recipient=recipient, reason=reason, message=message,
                                              source=Path(source).name if source is not None else "record")
        result = package.pack(document, message_type=message_type, recipient=recipient, keystore=self.keystore,
                              directory=self.directory, out=out, clock=self.clock, expires_in=expires_in,
                              attachments=attachments, overwrite=overwrite,
                              checkpoint=self.checkpoint_for(recipient, document))
        m = result.manifest
        try:
            self.ledger.advance("out", m.transfer_id, m.recipient, Outbound.QUEUED, created=m.created,
                                expires=m.expires, payload_sha256=m.payload_sha256,
                                message_type=result.schema.partition("@")[0], record_ref=wrap.record_ref(document))
        except BaseException:  # a package the ledger does not know would be sent by nobody, or twice
            if isinstance(out, Path) and not self.knows_queued(m):
                out.unlink(missing_ok=True)
            raise
        log_queued(m, result.schema.partition("@")[0], wrap.record_ref(document))
        return result

    def checkpoint_for(self, recipient: str, document: Any) -> str | None:
        """The checkpoint of our audit log a package to `recipient` carries in its statement (docs/
        format.md §4.1): the latest we signed (`run`, `audit checkpoint`, a batch of receipts), if
        the recipient's card says it reads package format 1.1; none for an older reader (it would
        refuse the package), none before we signed one, none in a message carrying its own."""
        if isinstance(document, dict) and "checkpoint" in document:
            return None
        partner = self.directory.get_optional(recipient)
        if partner is None or not partner.reads_format(package.CHECKPOINT_FORMAT):
            return None
        return self._latest_own_note()

    def _latest_own_note(self) -> str | None:
        """The newest checkpoint note we signed, read again only when its folder changed: a batch
        packs a package per placement, and the folder keeps a note per run, for years. The folder's
        inode and modification time (which a note added or removed moves) say whether it changed,
        unless that was in the last 2 seconds (a file system's clock ticks coarser than its
        timestamps' digits, `RACY_NS`): then it is read afresh."""
        store = checkpoint.own_store(self.home.root)
        try:
            st = os.stat(store.folder)
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_mtime_ns)
        if self._own_note is not None and self._own_note[0] == key:
            return self._own_note[1]
        kept = store.paths()
        note = kept[-1].read_text(encoding="utf-8") if kept else None
        if time.time_ns() - st.st_mtime_ns > RACY_NS:
            self._own_note = (key, note)
        return note

    def check_addressed_to(self, path: Path, party: str) -> package.Manifest | None:
        """Refuse to send a package to anyone but its recipient, or after it has expired.

        The receiver would refuse it anyway (it is encrypted to its recipient and bound to it);
        stopping here keeps a mistyped --to from putting a child's package in the wrong drop
        folder. A file that is not a laxchange package is refused too: sent as it is (a PDF, the
        CSV for the MIS, a record in plain text) it would lie unencrypted in the partner's folder,
        and a laxchange receiver quarantines it unopened anyway. (The return type keeps None for
        callers written when such files were sent as they are; it is never None now.)
        """
        with open_regular(path, what="file to send", error=UsageError) as fh:
            head = fh.read(_PLAIN_PEEK)
            if not head.startswith(package.FORMAT_LINE):
                if head.lstrip()[:1] == b"{" and _SCHEMA_MARK in head:
                    raise UsageError(f"{path.name} is a laxchange document in plain text, not a package: sent "
                                     "as it is, the child's details would be readable in the partner's folder",
                                     code="send.plain-record",
                                     hint=f"pack it for {party} first (`laxchange pack {path.name} --type TYPE "
                                          f"--to {party}`), or use `laxchange notify-placement`, which packs and sends")
                raise UsageError(f"{path.name} is not a laxchange package: laxchange sends only packages, signed "
                                 "and encrypted to their recipient; sent as it is, it would be readable in the "
                                 "partner's folder, and their laxchange would quarantine it unopened",
                                 code="send.not-a-package",
                                 hint=f"send a document with the record it belongs to: `laxchange pack RECORD --type "
                                      f"TYPE --to {party} --attach {path.name} -o PACKAGE.lax`, then send that")
            fh.seek(0)
            manifest, _ = package.read_manifest(fh)
        if manifest.recipient != party:
            raise UsageError(f"{path.name} is addressed to {manifest.recipient}, not {party}",
                             code="send.wrong-recipient",
                             hint=f"send it with --to {manifest.recipient}, or pack the record again for {party}")
        if timefmt.parse(manifest.expires) <= self.clock.now():
            raise SecurityError(f"{path.name} expired at {manifest.expires}", code="package.expired",
                                hint="pack the record again: the receiver refuses expired packages")
        return manifest

    def send(self, to: str, files: Sequence[Path], *, progress: PartyProgress | None = None,
             packed: Mapping[Path, tuple[package.Manifest, str]] | None = None) -> PartyResult:
        """Deliver package files to `to`'s drop folder and record each delivered one as sent, a
        batch at a time (`transport.send`), so a send stopped part-way has its finished batches on
        record and the next run does not upload them again.

        A package is uploaded as `<transfer id>.lax` whatever the local file is called, so names
        on the server cannot collide; any other file keeps its name. `packed`: for files this
        process has just packed for `to` (and not yet expired), their manifest and SHA-256, so they
        are not read again to check whom they are for and to hash them."""
        plan = self.plan_send(to, files, packed=packed)
        result = send(self.transports, to, list(files), names=plan.names, progress=progress, hashes=plan.hashes,
                      on_batch=lambda done: self._record_sent_files(to, done, plan))
        _log_send_failed(result)
        return result

    def withdraw(self, transfer_id: str, to: str | None = None) -> Withdrawn:
        """Take back a queued package before it is sent (a placement notified twice, a record packed
        by mistake, one packed elsewhere and never to be sent): its transfer becomes `expired`,
        audited as withdrawn, so no run sends it and nothing reports it again; its package, if the
        outbox holds it (under any name), moves to `outbox/withdrawn/`, kept, never deleted. Under
        the home's run lock, so no run is sending it meanwhile. Once sent it cannot be taken back:
        refused (`withdraw.sent`), as is a transfer not known (`withdraw.unknown`)."""
        with RunLock(self.home.run_lock, clock=self.clock):
            queued = [t for t in self.ledger.transfers(direction="out", state=Outbound.QUEUED)
                      if t.transfer_id == transfer_id and (to is None or t.party == to)]
            if len(queued) > 1:
                raise UsageError(f"transfer {transfer_id} is queued for {len(queued)} parties",
                                 code="withdraw.which", hint="say which: --to PARTY")
            if not queued:
                other = self.ledger.get(transfer_id, "out", to) if to is not None else None
                if other is not None:
                    raise UsageError(f"transfer {transfer_id} to {other.party} is {other.state}, not queued: what "
                                     "is sent cannot be taken back", code="withdraw.sent",
                                     hint=f"ask {other.party} to disregard it")
                raise UsageError(f"no queued transfer {transfer_id}" + (f" to {to}" if to else ""),
                                 code="withdraw.unknown", hint="`laxchange status --state queued` lists what is "
                                                               "queued; a sent one cannot be taken back")
            t = queued[0]
            self.ledger.advance("out", t.transfer_id, t.party, Outbound.EXPIRED, detail="withdrawn",
                                audit={"by": "withdraw"})
            kept = self._set_aside_withdrawn(t.transfer_id)
        log_event(_log, "pack.withdrawn", transfer_id=t.transfer_id, party=t.party)
        return Withdrawn(t.transfer_id, t.party, kept)

    def _set_aside_withdrawn(self, transfer_id: str) -> Path | None:
        """The outbox package of a withdrawn transfer, moved to outbox/withdrawn/<transfer id>.lax:
        named by its transfer, so a second `pep.lax` packed and withdrawn does not meet the first."""
        outbox = self.home.outbox
        named = outbox / f"{transfer_id}.lax"
        found = named if named.is_file() else next(
            (f for f in sorted(outbox.glob("*.lax")) if (m := package.peek_manifest(f)) is not None
             and m.transfer_id == transfer_id), None)
        if found is None:
            return None
        aside = outbox / WITHDRAWN
        aside.mkdir(mode=0o700, exist_ok=True)
        target = aside / f"{transfer_id}.lax"
        move_new(found, target)
        return target

    def plan_send(self, to: str, files: Sequence[Path], *,
                  packed: Mapping[Path, tuple[package.Manifest, str]] | None = None) -> SendPlan:
        """What `send` checks before uploading: each package is addressed to `to` and not expired
        (`check_addressed_to`; raises otherwise), and is named `<transfer id>.lax` on the server."""
        known = {f: k for f, k in (packed or {}).items() if k[0].recipient == to}
        by_file = {f: known[f][0] if f in known else self.check_addressed_to(f, to) for f in files}
        names = {f: f"{m.transfer_id}.lax" for f, m in by_file.items() if m is not None}
        return SendPlan(names, {names.get(f, f.name): m for f, m in by_file.items()},
                        {f: known[f][1] for f in files if f in known})

    def record_sent(self, to: str, result: PartyResult, plan: SendPlan) -> None:
        """Log uploads made some other way (`plan_send`, then a caller's own upload to `to`), and
        record each one confirmed `sent`: what `send` does with each batch of its own."""
        _log_send_failed(result)
        self._record_sent_files(to, result.files, plan)

    def _record_sent_files(self, to: str, files: Sequence[FileResult], plan: SendPlan) -> None:
        """Log one batch of `send`'s uploads, and record each one confirmed `sent`."""
        manifests = plan.manifests
        _log_sent(to, files, manifests)
        if self.home.root.is_dir():
            with self.ledger.batch():  # every upload here is confirmed: one commit records them all
                for f in files:
                    m = manifests.get(f.name)
                    row = self.ledger.get(m.transfer_id, "out", to) if m is not None else None
                    if row is not None and not can_transition("out", row.state, Outbound.SENT):
                        continue  # sent again after its receipt came back: delivered stays delivered
                    if m is not None and f.error is None:
                        self.ledger.advance("out", m.transfer_id, to, Outbound.SENT, if_new=[Outbound.QUEUED],
                                            created=m.created, expires=m.expires, payload_sha256=m.payload_sha256,
                                            audit={"file_sha256": f.sha256})

    # -- inbound ----------------------------------------------------------------------------
    def collect_sources(self) -> list[str]:
        """Where `collect` looks by default (our own drop folder, or configured endpoints)."""
        resolver = self.transports.resolver
        return resolver.collect_sources() if isinstance(resolver, DirectoryEndpoints) else []

    def collect(self, parties: Iterable[str] = (), *, delete: bool = False,
                progress: PartyProgress | None = None) -> list[PartyResult]:
        """Fetch what partners left for us into the inbox; one partner's failure never stops the others."""
        self.home.require()
        targets = list(parties) or self.collect_sources()
        if not targets:
            raise UsageError("no endpoints configured to collect from", code="endpoint.none",
                             hint="publish your own drop folder (`laxchange keys export-card --sftp-url URL "
                                  "--host-key-fingerprint FPR`), or add one with `laxchange endpoints add PARTY URL "
                                  "--host-key-fingerprint SHA256:...`")
        outcomes = self.transports.each_party(
            targets, lambda p: collect(self.transports, p, self.home.inbox, delete=delete, progress=progress))
        results = [out if isinstance(out, PartyResult) else PartyResult(party, error=out)
                   for party, out in outcomes.items()]
        self.note_collected(results)
        return results

    def note_collected(self, results: Iterable[PartyResult]) -> None:
        """The audit log's `collect.fetched` of every file fetched (and the log's events), in one
        commit: for `collect`, and for an import that is told of the files batch by batch."""
        fetched = []
        for r in results:  # ids and hashes only; who really sent it is known once it is opened
            if r.error is not None:
                log_event(_log, "collect.failed", logging.WARNING, party=r.party, code=r.error.code)
            for f in r.files:
                got = self.home.inbox / (f.local or f.name)
                if f.error is None:
                    digest = f.sha256 or (sha256_file(got) if got.is_file() else None)
                    fetched.append(("collect.fetched", {
                        "drop_folder_of": r.party, "delivered_into_folder_of": f.sender,
                        "sha256": digest, "size": f.size, "claimed_transfer_id": _claimed_transfer_id(f.name)}))
                    log_event(_log, "collect.fetched", party=r.party, folder_of=f.sender, sha256=digest,
                              bytes=f.size, claimed_transfer_id=_claimed_transfer_id(f.name))
                else:
                    log_event(_log, "collect.failed", logging.WARNING, party=r.party, code=f.error.code)
        self.ledger.notes(fetched)

    def open(self, source: Path, *, out: Path, attachments_dir: Path | None = None,
             overwrite: bool = False, on_receipt: Callable[[ReceiptOutcome], None] | None = None,
             staged: bool = False, batch: OpenBatch | None = None,
             verified: package.Verified | None = None, delivered_by: str | None = None) -> package.Opened:
        """Verify and open one package (`_open`). A package in our inbox opened on its own (not in
        an import's `batch`) is opened under the home's run lock, as imports are: an open waiting on
        an import batch's ledger lock would otherwise wake at its commit, find the transfer imported
        but not yet filed, and quarantine the inbox file from under the import. While a run holds
        the lock this raises `RunLocked` (`run.locked`) at once and touches nothing. `delivered_by`:
        the party whose sub-folder of our drop folder it was collected from (its SFTP login), which a
        quarantine record keeps."""
        # (an import's batch opens inbox files only: not asked of each of them)
        if batch is None and in_quarantine(self.home, source):  # no received folder and no receipt if opened here
            raise UsageError(f"{source.name} is in quarantine: it is not opened from there",
                             code="quarantine.open",
                             hint=f"once the cause is put right, `laxchange quarantine release {source.name}` puts it "
                                  "back for the next import; `laxchange open --archive` verifies it without importing")
        kw: dict[str, Any] = {"out": out, "attachments_dir": attachments_dir, "overwrite": overwrite,
                              "on_receipt": on_receipt, "staged": staged, "batch": batch, "verified": verified,
                              "delivered_by": delivered_by}
        if batch is None and in_inbox(self.home, source):
            with RunLock(self.home.run_lock, clock=self.clock):
                return self._open(source, **kw)
        return self._open(source, **kw)

    def _open(self, source: Path, *, out: Path, attachments_dir: Path | None = None,
              overwrite: bool = False, on_receipt: Callable[[ReceiptOutcome], None] | None = None,
              staged: bool = False, batch: OpenBatch | None = None,
              verified: package.Verified | None = None, delivered_by: str | None = None) -> package.Opened:
        """Verify and open one package; record it as imported, or refuse it and say why.

        The transfer is reserved in the ledger (`Ledger.reserve`) before anything is decrypted or
        written, so of several opens of one transfer at once exactly one imports it; the others,
        and any later open, are refused as replays (exit 3) and write nothing. A package that
        fails a check is refused: from the inbox it is moved to quarantine; a file named from
        elsewhere is left where it is (never copied); either way the ledger records the refusal
        without personal data. A file that is not a package at all is a usage error (exit 2).
        `out` is never the package itself, and replaces an existing file only with `overwrite`.
        A receipt is applied to our outbound transfer and what it did handed to `on_receipt`. A
        refusal after the transfer was reserved (so its sender and id are authenticated) carries
        `transfer_id` and `sender` in its details. Attachments go to `attachments_dir`, by default
        the folder `<out's stem>.attachments` beside `out` (made only if there are any): an open
        never drops them, since the transfer cannot be opened again once imported. `staged`: `out`
        is in a private folder the caller fsyncs and renames into place (`package.open_package`).
        `batch`: the transfer is verified, reserved and written as ever, but recorded `imported`
        only by `batch.commit()`, with the others of the batch in one ledger commit (`OpenBatch`).
        `verified`: these bytes were verified ahead by another process of ours (`package.Verified`).
        """
        if not staged:  # a staging folder is new and private: `open_package` checks it the same way anyway
            check_output(out, inputs=[source], overwrite=overwrite, what="output file")
        attachments_dir = attachments_dir or default_attachments_dir(out)
        ledger = self.ledger
        from_inbox = in_inbox(self.home, source)
        held: list[tuple[str, str, str]] = []

        def reserve(m: package.Manifest) -> None:
            if batch is not None:  # the reservation joins the batch's transaction (`OpenBatch`) ...
                if m.payload_size > batch.MAX_HELD_PAYLOAD:  # ... unless decrypting it would hold the lock long
                    batch.settle()
                else:
                    batch.begin()
            held.append((m.transfer_id, m.sender, ledger.reserve(m.transfer_id, m.sender, created=m.created,
                                                                   expires=m.expires,
                                                                   payload_sha256=m.payload_sha256)))

        try:
            try:
                opened = package.open_package(source, keystore=self.keystore, directory=self.directory,
                                              clock=self.clock, out=out, attachments_dir=attachments_dir,
                                              workdir=out.parent, reserve=reserve, overwrite=overwrite, staged=staged,
                                              verified=verified)
            except (SecurityError, InvalidData) as exc:
                raise self._refuse(source, exc, from_inbox, held, delivered_by) from exc
            except UsageError as exc:
                if exc.code == "package.not-a-package":
                    if from_inbox:
                        raise self._refuse(source, exc, from_inbox, held, delivered_by) from exc
                    raise exc.annotated(prefix=f"{source}: ") from exc
                self._release(held)
                raise
            except BaseException:
                self._release(held)
                raise
        except BaseException:
            if batch is not None:  # a refusal is on record at once, as ever; the batch's reservations with it
                batch.settle()
            raise
        pending = _Unrecorded(opened, held[0], on_receipt)
        if batch is not None:
            batch.pending.append(pending)
            batch.opened()
            return opened
        outer = ledger.in_batch  # a caller's batch: it commits, or rolls this back as the error passes it
        try:
            with ledger.batch():  # imported and, for a receipt, applied: one commit, both or neither
                self._record_imported(pending)
        except BaseException as exc:
            if outer or isinstance(exc, LaxError) or (imported := self._knows_imported(pending)) is False:
                self._unrecord(pending)  # not recorded as imported, so not delivered either
                raise
            # an interrupt raised once the commit returned (or perhaps so): the transfer cannot be
            # opened again, so its files stay
            tid = pending.held[0]
            if imported:
                with contextlib.suppress(Exception):  # logged, checkpoint kept, receipt handed on, as ever
                    self._imported(pending)
                exc.add_note(f"transfer {tid} was imported before the interrupt; its record is {out}")
            else:
                exc.add_note(f"transfer {tid} may have been imported before the interrupt (the ledger could not "
                             f"be read to tell); its record is kept at {out}: `laxchange status` says which")
            raise
        self._imported(pending)
        return opened

    def _record_imported(self, p: _Unrecorded) -> None:
        """The ledger changes that finish an open (inside the caller's transaction): the transfer
        becomes `imported` and, for a receipt, is applied to our outbound transfer."""
        tid, sender, token = p.held
        self.ledger.advance("in", tid, sender, *FINISH_PATH, holder=token, audit={"schema": p.opened.schema},
                            message_type=p.opened.schema.partition("@")[0],
                            record_ref=wrap.record_ref(p.opened.document))
        if p.opened.schema.startswith("receipt@"):
            p.outcome = self._apply_receipt(p.opened.document, p.opened.manifest.sender)

    def _unrecord(self, p: _Unrecorded) -> None:
        """An open whose finish did not commit: its files go and its reservation is released."""
        for f in p.opened.written:
            f.unlink(missing_ok=True)
        self._release([p.held])

    def _imported(self, p: _Unrecorded) -> None:
        """After the finish committed: log it, keep the statement's checkpoint, hand on the receipt's outcome."""
        tid, sender, _ = p.held
        log_event(_log, "open.imported", transfer_id=tid, party=sender,
                  message_type=p.opened.schema.partition("@")[0], record_ref=wrap.record_ref(p.opened.document))
        self._take_statement_checkpoint(p.opened)
        if p.outcome is not None and p.on_receipt is not None:
            p.on_receipt(p.outcome)

    def reopen_imported(self, source: Path, *, out: Path, attachments_dir: Path,
                        on_receipt: Callable[[ReceiptOutcome], None] | None = None,
                        staged: bool = False, as_of: dt.datetime | None = None) -> package.Opened:
        """Verify and decrypt again a package whose transfer the ledger already records `imported`,
        to finish an import a crash interrupted (the record was written, then the process died
        before it was filed); `inbound` calls it only when no finished import of it exists.

        Every check of `open` runs except the replay check, which is replaced by its opposite: the
        ledger row must be `imported` with this payload's SHA-256, so this never imports anything
        new. No state changes; the audit gets the note `in.resumed`. A receipt is applied again (a
        crash may have come before it was; applying it twice is a duplicate, not a change). A package
        that fails a check is refused as `open` refuses it (quarantined, never deleted).

        `as_of`: when the row became `imported` (the caller read it). The package is verified as of
        then, since that is when it was accepted: the run that finishes the import may come after the
        package's `expires` or a key's `not_after`, and refusing it then would leave a transfer the
        ledger calls imported with its record only in the quarantine.
        """
        check_output(out, inputs=[source], what="output file")
        ledger = self.ledger

        def already_imported(m: package.Manifest) -> None:
            row = ledger.get(m.transfer_id, "in", m.sender)
            if row is None or row.state != Inbound.IMPORTED or row.payload_sha256 != m.payload_sha256:
                raise SecurityError(f"transfer {m.transfer_id} from {m.sender} is not an interrupted import "
                                    "of this package", code="package.replayed",
                                    hint="another package claims this transfer id; it was quarantined")

        try:
            clock = self.clock if as_of is None else FixedClock(min(as_of, self.clock.now()))
            opened = package.open_package(source, keystore=self.keystore, directory=self.directory, clock=clock,
                                          out=out, attachments_dir=attachments_dir, workdir=out.parent,
                                          reserve=already_imported, staged=staged)
        except (SecurityError, InvalidData) as exc:
            raise self._refuse(source, exc, in_inbox(self.home, source), []) from exc
        m = opened.manifest
        ledger.note("in.resumed", {"transfer_id": m.transfer_id, "party": m.sender, "schema": opened.schema})
        self._take_statement_checkpoint(opened)
        if opened.schema.startswith("receipt@"):
            outcome = self._apply_receipt(opened.document, m.sender)
            if on_receipt is not None:
                on_receipt(outcome)
        return opened

    def open_archived(self, source: Path, *, out: Path, attachments_dir: Path | None = None,
                      overwrite: bool = False) -> package.Opened:
        """Archive verification (`laxchange open --archive`, docs/format.md §6.1): was this package
        genuinely sent by its sender to us at its `created` time, with keys valid then? Years
        later, after it expired and the sender's keys were rotated or revoked, or the sender was
        removed from the directory.

        Expiry and replay are not checked, so this never imports anything: no ledger state
        changes, no receipt is applied, nothing is quarantined or moved (a refused file stays
        where it is). It writes `out` and the attachments (by default beside `out`, as `open`
        does) and the audit note `in.archive-opened` (ids, schema, warning codes: no personal
        data). A signing key revoked after `created`, or a sender removed since, is reported in
        `Opened.warnings`; a key revoked at or before `created` refuses it, as any other failure
        of authenticity does (SecurityError, exit 3).
        """
        check_output(out, inputs=[source], overwrite=overwrite, what="output file")
        opened = package.open_package(source, keystore=self.keystore, directory=self.directory, clock=self.clock,
                                      out=out, attachments_dir=attachments_dir or default_attachments_dir(out),
                                      workdir=out.parent, overwrite=overwrite, archive=True)
        m = opened.manifest
        try:
            self.ledger.note("in.archive-opened", {"transfer_id": m.transfer_id, "party": m.sender,
                                                   "created": m.created, "schema": opened.schema,
                                                   "warnings": [w["code"] for w in opened.warnings]})
        except BaseException:  # an access to a child's record that the audit log does not show must not happen
            for p in opened.written:
                p.unlink(missing_ok=True)
            raise
        return opened

    def knows_queued(self, m: package.Manifest) -> bool:
        """Is the package `m` queued in the ledger, although something was raised after the commit
        (a signal that came during SQLite's COMMIT is raised once it returns)? Then its file must
        stay. Unknown (the ledger cannot be read): it stays too; a file no row queues is set aside by
        the nightly run, never sent."""
        try:
            return self.ledger.get(m.transfer_id, "out", m.recipient) is not None
        except Exception:  # unknown: keep the file (see above)
            return True

    def _knows_imported(self, p: _Unrecorded) -> bool | None:
        """Is the open `p` recorded `imported`, although something was raised after its commit (as
        `knows_queued`)? Then its files must stay: the transfer cannot be opened again. None: not
        known (the ledger cannot be read); they stay then too, rather than lose the record."""
        tid, sender, _ = p.held
        try:
            row = self.ledger.get(tid, "in", sender)
        except Exception:  # not known (see above)
            return None
        return row is not None and row.state == Inbound.IMPORTED

    def _release(self, held: list[tuple[str, str, str]]) -> None:
        for tid, sender, token in held:
            self.ledger.release(tid, sender, token)

    def _refuse(self, source: Path, exc: LaxError, from_inbox: bool, held: list[tuple[str, str, str]],
                delivered_by: str | None = None) -> LaxError:
        """Record a refused package (no personal data): an inbox file is moved to quarantine, any
        other file is left where it is; a reservation becomes `quarantined`. Returns the error to raise."""
        ledger = self.ledger
        concurrent = isinstance(exc, AlreadyReceived) and exc.in_progress  # the holder will move it to opened/
        quarantined = from_inbox and not concurrent
        if quarantined:  # with whom it is from, where that is known: its transfer once authenticated, its login
            # the reservation's token too: `finish_quarantines` matches a killed open's record by it, never
            # an earlier copy's (a random id, no personal data)
            about = {"transfer_id": held[0][0], "sender": held[0][1], "holder": held[0][2]} if held else {}
            q = quarantine(self.home, source, exc, clock=self.clock,
                           about={**about, "delivered_into_folder_of": delivered_by})
            data = _quarantined_data(q)
            note, event = f"(package moved to quarantine: {q.path.name})", "in.quarantined"
            extra = {"quarantined": str(q.path)}
        else:
            data = {"reason": exc.code, "sha256": sha256_file(source)}
            note, event, extra = "(the file was left where it is)", "in.refused", {}
        if held:
            tid, sender, _ = held[0]
            self._advance_quarantined(held[0], exc.code, data)
            extra.update(transfer_id=tid, sender=sender)
        else:
            ledger.note(event, data)
        log_event(_log, "open.quarantined" if quarantined else "open.refused", logging.WARNING,
                  code=exc.code, sha256=data["sha256"], transfer_id=extra.get("transfer_id"), party=extra.get("sender"))
        # a file named by hand is named back; an inbox file's name was its sender's choice (`shown_name`)
        prefix = f"{source}: " if exc.code == "package.not-a-package" and not from_inbox else ""
        if isinstance(exc, AlreadyReceived):
            prefix = "package rejected: "  # as every other refusal of a package says
        out = exc.annotated(note, prefix=prefix, **extra)
        if quarantined and exc.code == "package.not-a-package":  # delivered, not named by us: `pack` is no help
            out = out.restated(out.message, hint="a file that is not a laxchange package was delivered to our drop "
                                                 "folder; it was not opened. If a partner sent it, ask them to send "
                                                 "it as a package: a plain file on a server is readable there")
        return out

    def _advance_quarantined(self, held: tuple[str, str, str], code: str, data: dict[str, Any]) -> None:
        """`received → quarantined` for the reservation `held` (transfer id, sender, token), refused
        for `code`; `data` goes into the audit entry (`quarantine`: the file's name in quarantine, or
        None for a file left where it was)."""
        tid, sender, token = held
        self.ledger.advance("in", tid, sender, Inbound.QUARANTINED, holder=token, detail=code,
                            audit={"quarantine": None, **data})

    def finish_quarantines(self) -> list[Quarantined]:
        """Advance the row of every transfer whose open moved its package into quarantine and was then
        killed or stopped (Ctrl-C, a service stop) before recording it: the row stayed `received`,
        held by a process that is gone, and nothing else would ever move it, since the package is no
        longer in the inbox. Each becomes `quarantined` with the reason its quarantine record keeps,
        audited as `_refuse` audits it (`in.quarantined` naming the file, with `"after": "unfinished
        open"`), so `inbound`'s owed rejections answer it, once. Only the record that open wrote
        counts, by its reservation's token (`holder`): never an earlier copy's record of the same
        transfer, nor a record without one. A row another open has taken over meanwhile is left to
        it. The caller holds the home's run lock. Returns the quarantines so recorded."""
        stuck = self.ledger.abandoned_reservations()
        found = recorded_for(self.home, [(t.transfer_id, t.party) for t, _ in stuck]) if stuck else {}
        if not found:
            return []
        # a quarantine already on record is not this open's (kept as a second line of defence)
        named = {e["data"].get("quarantine") for e in self.ledger.audit_entries(
            ["in.quarantined"], transfer_ids={tid for tid, _ in found})}
        done = []
        for t, token in stuck:
            left = [q for q in found.get((t.transfer_id, t.party), [])
                    if q.record.get("holder") == token and q.path.name not in named]
            if not left:
                continue
            data = _quarantined_data(left[-1])
            reason = data["reason"]
            try:
                self._advance_quarantined((t.transfer_id, t.party, token), reason,
                                          {**data, "after": "unfinished open"})
            except IllegalTransition:  # taken over by another open since it was read
                continue
            log_event(_log, "open.quarantined", logging.WARNING, code=reason, sha256=data["sha256"],
                      transfer_id=t.transfer_id, party=t.party)
            done.append(left[-1])
        return done

    def release_quarantined(self, name: str) -> Path:
        """`quarantine.release` under the home's run lock, audited (`in.released`): the package
        goes back into the inbox for the next import to check it again. Returns its inbox path."""
        with RunLock(self.home.run_lock, clock=self.clock):
            path = release(self.home, name, clock=self.clock)
            self.ledger.note("in.released", {"quarantine": path.name, "sha256": sha256_file(path)})
        return path

    def open_inbox(self, out_dir: Path, names: Iterable[str] | None = None, *,
                   overwrite: bool = False) -> InboxResult:
        """Open packages in the inbox (all, or `names`) into `out_dir`, one JSON file each.

        An opened package moves to `inbox/opened/` (kept, and never opened twice); a refused one
        has been quarantined by `open` (or, if another run is opening it right now, left for that
        run). One bad package never stops the others.
        """
        inbox = self.home.inbox
        done = inbox / OPENED
        result = InboxResult()
        with RunLock(self.home.run_lock, clock=self.clock):  # as `open` of an inbox file: see there
            todo = sorted(names) if names is not None else sorted(p.name for p in inbox.glob("*.lax") if p.is_file())
            for name in todo:
                self._open_inbox_one(inbox / name, out_dir, done, result, overwrite=overwrite)
        return result

    def _open_inbox_one(self, path: Path, out_dir: Path, done: Path, result: InboxResult, *, overwrite: bool) -> None:
        """One package of `open_inbox`: opened and moved to `inbox/opened/`, or refused (listed)."""
        out = out_dir / f"{path.stem}.json"
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            result.opened.append(self._open(path, out=out, overwrite=overwrite))
        except (SecurityError, InvalidData, UsageError) as exc:
            result.refused.append((path.name, exc))
            return
        done.mkdir(exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):  # a concurrent refusal of a copy may have moved it
            path.replace(done / path.name)

    def keep_checkpoint(self, who: str, note: str) -> checkpoint.Checkpoint:
        """Keep a checkpoint of `who`'s audit log, once it verifies under a signing key on `who`'s
        card (HOME/checkpoints/partners/; docs/ledger.md). Raises if it does not. One that records
        the size of a checkpoint we hold with another root is kept too (two signed heads of one
        log that cannot both be true: the evidence a partner keeps), then `CheckpointForked` raised.

        The same note as the one this party last kept for `who`, under the same keys of `who`'s card,
        is that one again (verified, kept, no fork then): it is not verified, compared or kept twice.
        A fork is never remembered, so the same forked note is reported every time it comes."""
        publics = tuple(self.directory.get(who).signing_publics(dsse.ED25519))
        last = self._last_kept.get(who)
        if last is not None and last[0] == note and last[1] == publics:
            return last[2]
        cp = checkpoint.read_checkpoint(note, publics, who, source=f"the checkpoint from {who}")
        store = checkpoint.partner_store(self.home.root, who)
        earlier = store.fork_of(cp)
        kept = store.add(note, cp.size)
        if earlier is not None:
            raise checkpoint.CheckpointForked(
                f"the checkpoint from {who} records {cp.size} audit entries like its checkpoint {earlier}, with "
                f"another root: {who}'s audit log was changed between them (both kept: {kept.name})",
                hint=f"keep both files; ask {who} to run `laxchange audit verify` and explain",
                details={"kept": kept.name, "earlier": earlier})
        self._last_kept[who] = (note, publics, cp)
        return cp

    def take_checkpoint(self, who: str, note: Any, about: dict[str, Any]) -> dict[str, Any] | None:
        """Keep the checkpoint `who` signed into a message it sent us (a receipt's, a package
        statement's: docs/format.md §4.1); `about` names that message in the audit note.

        The message's own signature verified, so whatever this note is, `who` sent it: a note that
        does not verify is kept as evidence (`refused/`) and noted `checkpoint.refused`, a fork of
        one we hold is kept and noted `checkpoint.partner-inconsistent`; either way the message
        itself still stands (the record is genuine) and the warning is returned for the operator.
        A checkpoint file that cannot be written is logged (`checkpoint.io`) and never undoes the
        message: the next one brings a newer checkpoint."""
        try:
            try:
                self.keep_checkpoint(who, note if isinstance(note, str) else "")
                return None
            except checkpoint.CheckpointForked as exc:
                event = "checkpoint.partner-inconsistent"
                data = {"party": who, **about, "code": exc.code, "kept": exc.details["kept"],
                        "earlier": exc.details["earlier"]}
                message = exc.message
            except (checkpoint.CheckpointMalformed, checkpoint.CheckpointUnverified) as exc:
                raw = note.encode() if isinstance(note, str) else b""
                kept = checkpoint.partner_store(self.home.root, who).keep_refused(raw, exc.code)
                event = "checkpoint.refused"
                data = {"party": who, **about, "code": exc.code, "sha256": hashlib.sha256(raw).hexdigest(),
                        "kept": kept.name}
                message = (f"{who} signed a checkpoint of its audit log that does not verify ({exc.message}); "
                           f"kept as evidence in {kept.parent.name}/{kept.name}")
        except OSError:
            log_event(_log, "checkpoint.failed", logging.WARNING, code="checkpoint.io")
            return None
        self.ledger.note(event, data)
        log_event(_log, "checkpoint.failed", logging.WARNING, code=event)
        return {"code": event, "message": message}

    def _take_statement_checkpoint(self, opened: package.Opened) -> None:
        """The checkpoint a package's statement carries (format 1.1), kept as a receipt's is; what
        did not verify is added to `opened.warnings` (the package itself is imported all the same)."""
        if opened.checkpoint is not None:
            warning = self.take_checkpoint(opened.manifest.sender, opened.checkpoint,
                                           {"transfer_id": opened.manifest.transfer_id})
            if warning is not None:
                opened.warnings.append(warning)

    def _apply_receipt(self, receipt: dict[str, Any], sender: str) -> ReceiptOutcome:
        """A verified receipt closes our outbound transfer, if it is ours and went to its sender
        (`receipts.apply_receipt`; one that does not apply is noted in the audit log). The sender's
        checkpoint it carries (receipt 1.2.0) is kept (`take_checkpoint`); one that does not verify
        is noted and kept as evidence, and the receipt still applies: its own signature verified, so
        what it says stands."""
        outcome = apply_receipt(self.ledger, receipt, sender)
        if "checkpoint" in receipt:
            self.take_checkpoint(sender, receipt["checkpoint"], {"in_reply_to": receipt.get("in_reply_to")})
        log_event(_log, "receipt.applied", logging.WARNING if outcome.warning else logging.INFO,
                  in_reply_to=outcome.in_reply_to, party=outcome.party, stage=outcome.stage, status=outcome.status,
                  result=outcome.result)
        return outcome

    # -- housekeeping -----------------------------------------------------------------------
    def prune_keys(self, *, dry_run: bool = False, run_lock_held: bool = False) -> list[dict[str, Any]]:
        """Destroy our retired private keys (`KeyStore.prune`), each with a `key.destroyed` audit entry.

        The explicit step (`laxchange keys prune`, or the nightly run's housekeeping): no other
        command destroys a key. Returns what was (with `dry_run`, would be) destroyed. It takes
        the home's run lock, unless the caller holds it already (`run_lock_held`: the nightly run).
        """
        if dry_run:
            return self.keystore.prunable()

        def record(entry: dict[str, Any]) -> None:
            self.ledger.note("key.destroyed", entry)
            log_event(_log, "key.destroyed", kid=entry.get("kid"), use=entry.get("use"))

        return self.keystore.prune(record=record, run_lock_held=run_lock_held)


def log_queued(m: package.Manifest, message_type: str, record_ref: str | None) -> None:
    """pack.queued, once a package's `queued` is committed (by `Party.pack`, or a notification's batch)."""
    log_event(_log, "pack.queued", transfer_id=m.transfer_id, party=m.recipient, message_type=message_type,
              record_ref=record_ref)


def _log_send_failed(result: PartyResult) -> None:
    """send.failed for a send that failed as a whole (the partner's server down, say)."""
    if result.error is not None:
        log_event(_log, "send.failed", logging.WARNING, party=result.party, code=result.error.code)


def _log_sent(to: str, files: Iterable[FileResult], manifests: dict[str, package.Manifest | None]) -> None:
    """send.sent / send.failed for each file (by transfer id; a file that is not a package by size only)."""
    for f in files:
        m = manifests.get(f.name)
        tid = m.transfer_id if m is not None else None
        if f.error is None:
            log_event(_log, "send.sent", transfer_id=tid, party=to, bytes=f.size)
        else:
            log_event(_log, "send.failed", logging.WARNING, transfer_id=tid, party=to, code=f.error.code)


def _party(home: Home, store: KeyStore | None, directory: PartnerDirectory | None, clock: Clock | None) -> Party:
    return Party.from_home(home, clock=clock or (store.clock if store else None), keystore=store, directory=directory)


def pack_to(home: Home, document: Any, *, message_type: str | None = None, recipient: str, out: Path,
            store: KeyStore | None = None, directory: PartnerDirectory | None = None, clock: Clock | None = None,
            expires_in: dt.timedelta = package.DEFAULT_EXPIRES_IN,
            attachments: Sequence[str | os.PathLike[str]] = (), reason: str | None = None,
            message: str | None = None, source: str | os.PathLike[str] | None = None,
            overwrite: bool = False) -> package.PackResult:
    """`Party.pack` for callers that hold only a home (kept for library callers of 0.1)."""
    with _party(home, store, directory, clock) as party:
        return party.pack(document, message_type=message_type, recipient=recipient, out=out, expires_in=expires_in,
                          attachments=attachments, reason=reason, message=message, source=source,
                          overwrite=overwrite)


def open_from(home: Home, source: Path, *, out: Path, store: KeyStore | None = None,
              directory: PartnerDirectory | None = None, clock: Clock | None = None,
              attachments_dir: Path | None = None, overwrite: bool = False, archive: bool = False) -> package.Opened:
    """`Party.open` (or, with `archive`, `Party.open_archived`) for callers that hold only a home."""
    with _party(home, store, directory, clock) as party:
        if archive:
            return party.open_archived(source, out=out, attachments_dir=attachments_dir, overwrite=overwrite)
        return party.open(source, out=out, attachments_dir=attachments_dir, overwrite=overwrite)
