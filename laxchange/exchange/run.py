"""`laxchange run`: the unattended nightly job (cron or a systemd timer; docs/operations.md).

Under the home's run lock (`ledger.lock.RunLock`, taken once; the steps inside never take it
again), in this order:

1. housekeeping: outbound transfers past their expiry (`queued`, `sent`, `uncollected`) become
   `expired`; outbox packages never queued (a notify interrupted before its ledger commit), older
   than an hour, are removed; retired keys past their overlap are pruned (`Party.prune_keys`); keys expiring
   within 30 days with no successor are listed;
2. for each partner we have something with (queued packages, or transfers `sent`/`uncollected`):
   list our own sender folder on its server (what we uploaded and it has not collected), then
   upload every outbox package whose ledger row is still `queued`, under its `<transfer id>.lax`.
   A package is never packed again here: the same file with the same transfer id is the only
   thing retried, and a transfer already sent is not sent again;
3. import (the code of `laxchange import`, `inbound.import_held`): collect our drop folder,
   verify, write `HOME/received/`, send receipts;
4. deadlines: a transfer whose file is still in the partner's folder `uncollected_after` (default
   5 days) after it was sent becomes `uncollected`; one whose file has gone (collected) with no
   delivered receipt `receipt_due` (48 hours) after it was sent is reported as overdue;
5. the statutory clocks (`laxchange.deadlines`, via `exchange.clocks`): overdue, due soon and
   recently met deadlines per child; an overdue one needs a look (exit 10);
6. the report (`RunReport`; the CLI prints it as text or `--json`), with each server that took
   only our previous SSH key during a `keys rotate --ssh` overlap (`exchange.ssh_logins`), and
   a signed checkpoint of the audit log as the run left it (`transparency.make_checkpoint`, kept under
   HOME/checkpoints/own/; docs/ledger.md).

One connection per partner for the whole run (`_OneConnection`): listing, sending, collecting
and receipts to one partner share it (and partners whose drop folders are on one server under one
login share one SSH connection, `transport.LinkShare`: a school's own folder and its council's),
and a partner found down is not dialled again in the same run, so its timeout is paid once. The
partners stage opens the next few partners' connections in the background while it works on one
(`PREFETCH`): a council lists and sends to every school it placed a child at, and each handshake
is mostly waiting. The import stage likewise opens the
connections its receipts will need (the senders of what it collected, up to `PREFETCH`) while it
verifies and files the packages: a school's second handshake, to the council, no longer waits
for its import. One partner's failure never stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from laxchange import deadlines, package
from laxchange._util import timefmt
from laxchange._util.fs import SHARED_TEMPORARY, move_new
from laxchange._util.threads import thread_pool
from laxchange.errors import ConfigError, InvalidData, LaxError, TransientTransportError, UsageError
from laxchange.exchange.background import BackgroundCollect, fork_available
from laxchange.exchange.clocks import home_deadlines
from laxchange.exchange.inbound import ImportReport, Renderer, import_held, receipt_transfer_ids
from laxchange.exchange.party import Party, shown_error, shown_name
from laxchange.exchange.ssh_logins import record_logins
from laxchange.exchange.ssh_logins import warning as ssh_warning
from laxchange.exchange.transparency import make_checkpoint
from laxchange.ledger.db import Transfer
from laxchange.ledger.lock import RunLock
from laxchange.ledger.states import Outbound
from laxchange.logs import RUN_STAGES, log_event
from laxchange.transport import LinkShare, PartyProgress, PartyResult, RetryingTransport, Runner, Transport, sharing
from laxchange.trust.keystore import ENCRYPTION

_TID_FILE = re.compile(r"[0-9a-f]{32}\.lax")

__all__ = ["DEFAULT_RECEIPT_DUE", "DEFAULT_UNCOLLECTED_AFTER", "KEY_WARNING", "STAGES", "RunReport", "run_nightly"]

T = TypeVar("T")

DEFAULT_UNCOLLECTED_AFTER = dt.timedelta(days=5)
DEFAULT_RECEIPT_DUE = dt.timedelta(hours=48)
KEY_WARNING = dt.timedelta(days=30)
#: How old a package in the outbox with no ledger row must be before the run sets it aside (`_sweep_unqueued`).
UNQUEUED_AFTER = dt.timedelta(hours=1)
#: Where it goes: under the outbox, never sent from there (`_queued` reads the outbox's own files only).
UNQUEUED = "unqueued"
#: The run's stages in order, as `on_stage` and the `run.stage` log event name them.
STAGES = RUN_STAGES

_log = logging.getLogger(__name__)

#: How many partners' connections the partners stage opens ahead, in the background.
PREFETCH = 3

#: Outbound states that wait for the partner (collection, then a receipt).
_WAITING = (Outbound.SENT, Outbound.UNCOLLECTED)
_EXPIRABLE = (Outbound.QUEUED, Outbound.SENT, Outbound.UNCOLLECTED)


@dataclass
class Failure:
    """One step that did not work, for one partner (or our own drop folder)."""

    step: str
    party: str
    error: LaxError
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "party": self.party, "code": self.error.code,
                               "message": self.error.safe_message, "hint": self.error.hint}
        if self.file:
            out["file"] = self.file
        return out


@dataclass
class RunReport:
    """What one nightly run did and what needs a look; one structure for the text and `--json`."""

    started: str
    expired: list[dict[str, Any]] = field(default_factory=list)
    keys_pruned: list[dict[str, Any]] = field(default_factory=list)
    keys_expiring: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    imported: ImportReport | None = None
    receipt_warnings: list[dict[str, Any]] = field(default_factory=list)
    uncollected: list[dict[str, Any]] = field(default_factory=list)
    overdue: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    #: every party the report names, with its organisation's name from its card (None: no card, e.g. ourselves)
    partners: dict[str, str | None] = field(default_factory=dict)
    #: `deadlines.report()`: {"overdue": [...], "due_soon": [...], "met": [...], "approximate": bool}
    deadlines: dict[str, Any] = field(default_factory=lambda: {"overdue": [], "due_soon": [], "met": [],
                                                               "approximate": False})
    #: config.json deadlines.run_exit_on_overdue: does an overdue deadline make the run need a look?
    deadlines_exit: bool = True
    #: the checkpoint of the audit log signed at the end of the run (`Made.to_dict()`), None if it failed
    checkpoint: dict[str, Any] | None = None
    #: servers that took only our previous SSH key (`ssh_logins.warning`): warnings, the run still works
    ssh_previous_key_only: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing needs a look: no failure, every receipt applied, nothing uncollected or overdue, no
        statutory deadline overdue. (Keys expiring within 30 days and deadlines due soon are listed but do
        not change the exit code, nor servers that took only our previous SSH key, nor overdue ones with
        config.json deadlines.run_exit_on_overdue false.)"""
        return (not self.failures and not self.receipt_warnings and not self.uncollected and not self.overdue
                and not (self.deadlines_exit and self.deadlines["overdue"])
                and (self.imported is None or self.imported.ok))

    def to_dict(self) -> dict[str, Any]:
        return {"complete": self.ok, "started": self.started, "counts": self.counts, "sent": self.sent,
                "failures": [f.to_dict() for f in self.failures], "receipt_warnings": self.receipt_warnings,
                "uncollected": self.uncollected, "overdue": self.overdue, "expired": self.expired,
                "keys_pruned": self.keys_pruned, "keys_expiring": self.keys_expiring,
                "ssh_previous_key_only": self.ssh_previous_key_only,
                "import": self.imported.to_dict() if self.imported is not None else None,
                "partners": self.partners, "deadlines": self.deadlines, "checkpoint": self.checkpoint}


class _KeptTransport(RetryingTransport):
    """A partner's connection kept open for the whole run: leaving a `with` block does not close it,
    and once it has failed for good (the server is down) every later call fails at once with that error.

    `prefetch` starts the connection (the SSH handshake, about 0.1 s here, mostly waiting on the
    server) in the background, so it overlaps the work on the partner before; the first call takes
    it over. A background attempt that failed is not reported: the first call connects again under
    the retry policy, as without prefetching, and reports that (a partner found down is dialled once
    more in the background than before, overlapped with other work)."""

    down: LaxError | None = None
    _pending: Future[Transport] | None = None

    def prefetch(self, pool: ThreadPoolExecutor) -> None:
        if self._inner is None and self._pending is None and self.down is None:
            self._pending = pool.submit(self._connect)

    def _connect(self) -> Transport:
        inner = self.factory()
        try:
            inner.open()
        except BaseException:
            inner.close()
            raise
        return inner

    def _adopt(self) -> None:
        """Take over the background connection, if one was started and it worked."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            inner = pending.result()
        except Exception:  # connected again in the foreground, which reports what happens
            return
        if self._inner is None:
            self._took(inner)
            self.connects += 1
        else:
            inner.close()

    def abandon_pending(self) -> None:
        """Let go of a background connection nobody took over, without waiting for it: one still
        being made (a silent server holds it for its whole timeout) is closed when it is made, so
        a run stopped by Ctrl-C or SIGTERM ends at once."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.cancel():
            pending.add_done_callback(_close_made)

    def _call(self, op: Callable[[Transport], T]) -> T:
        if self.down is not None:
            raise self.down
        self._adopt()
        try:
            return super()._call(op)
        except TransientTransportError as exc:
            self.down = exc
            raise

    def __exit__(self, *exc: object) -> None:
        return None

    def open(self) -> None:
        if self._inner is None:
            super().open()


def _close_made(done: Future[Transport]) -> None:
    """Close a background connection once it is made, if it was (`abandon_pending`)."""
    if not done.cancelled() and done.exception() is None:
        done.result().close()


@dataclass
class _OneConnection(Runner):
    """A Runner that hands out one kept connection per partner (`close_all` ends them)."""

    kept: dict[str, _KeptTransport] = field(default_factory=dict)

    def connect(self, party: str) -> _KeptTransport:
        if party not in self.kept:
            base = super().connect(party)
            self.kept[party] = _KeptTransport(base.factory, base.policy, sleep=base.sleep, rng=base.rng,
                                              on_retry=base.on_retry)
        return self.kept[party]

    def prefetch(self, parties: Iterable[str], pool: ThreadPoolExecutor) -> None:
        """Start connecting to each of `parties` in the background (`_KeptTransport.prefetch`); one
        whose endpoint cannot be resolved is left to the step that needs it, which reports it."""
        for who in parties:
            try:
                kept = self.connect(who)
            except LaxError:
                continue
            kept.prefetch(pool)

    def close_all(self) -> None:
        for t in self.kept.values():
            t.abandon_pending()  # a background connection nobody used is closed too, when it is made
            t.close()
        self.kept.clear()


def _waiting(party: Party) -> list[Transfer]:
    """Outbound transfers `sent` or `uncollected` (asked of the ledger by state: a council's ledger
    holds a row per transfer it ever sent, and nearly all of them are long delivered), in the order
    of a full listing."""
    rows = [t for state in _WAITING for t in party.ledger.transfers(direction="out", state=state)]
    return sorted(rows, key=lambda t: (t.updated, t.transfer_id))


def _from_audit(party: Party, waiting: list[Transfer]) -> tuple[set[str], dict[tuple[str, str], str]]:
    """Of the `waiting` transfers: the ids of receipts we sent (nobody acknowledges a receipt, so
    they are never overdue), and when each was last uploaded: (transfer id, party) → time of `out.sent`.

    A receipt is known by its ledger row's message type or its `out.queued` audit entry; the
    receipt files are read (`receipt_transfer_ids`, every receipt ever packed) only when a waiting
    transfer's row has no message type (a row from before the ledger kept one) and the audit log
    does not say either, which is the only case they can tell apart. Only the audit entries of the
    waiting transfers are read (chosen by SQLite), not every transfer's ever written."""
    ids: set[str] = set()
    sent: dict[tuple[str, str], str] = {}
    if not waiting:
        return ids, sent
    for e in party.ledger.audit_entries({"out.queued", "out.sent"}, transfer_ids={t.transfer_id for t in waiting}):
        if e["event"] == "out.queued" and e["data"].get("message_type") == "receipt":
            ids.add(str(e["data"].get("transfer_id")))
        elif e["event"] == "out.sent":
            sent[(str(e["data"].get("transfer_id")), str(e["data"].get("party")))] = e["at"]
    untyped = False
    for t in waiting:
        if t.message_type == "receipt":
            ids.add(t.transfer_id)
        elif t.message_type is None and t.transfer_id not in ids:
            untyped = True
    if untyped:
        ids.update(receipt_transfer_ids(party.home))
    return ids, sent


def _contact(party: Party, who: str) -> dict[str, Any]:
    """Who to ask about a transfer: the partner's name and party id from its card."""
    p = party.directory.get_optional(who)
    return {"party": who, "name": p.name if p is not None else None}


def _sweep_unqueued(party: Party, now: dt.datetime) -> None:
    """Set aside outbox packages that were never queued: a `<transfer id>.lax` whose transfer has no
    ledger row at all, last written more than `UNQUEUED_AFTER` ago, moves to `outbox/unqueued/`
    (kept, never sent, never deleted). A notify interrupted between writing its packages and
    committing their rows leaves one (`exchange.notify._commit`); so does a ledger restored from a
    backup older than the packages, whose outbox copies of what was sent since are then the only
    ones: nothing here can tell the two apart, so nothing is deleted. The wait spares a batch that
    is still being written by another process. A hidden temporary file a killed notify left
    (`write_new_files(shared=True)`) is removed after the same wait."""
    outbox = party.home.outbox
    if not outbox.is_dir():
        return
    cutoff = (now - UNQUEUED_AFTER).timestamp()
    for tmp in outbox.glob(".*.tmp"):  # a notify killed mid-write: never published, or a second name of one that is
        with contextlib.suppress(OSError):
            if SHARED_TEMPORARY.fullmatch(tmp.name) and tmp.lstat().st_mtime <= cutoff:
                tmp.unlink()
    names = [f for f in outbox.glob("*.lax") if _TID_FILE.fullmatch(f.name)]
    known = party.ledger.transfer_ids(direction="out") if names else set()  # one column, not every row
    aside = outbox / UNQUEUED
    for f in names:
        if f.name[:-4] in known:
            continue
        try:
            if f.lstat().st_mtime > cutoff:
                continue
            aside.mkdir(mode=0o700, exist_ok=True)
            move_new(f, aside / f.name)  # never over a file already there
        except OSError:
            continue
        log_event(_log, "run.unqueued-set-aside", logging.WARNING, transfer_id=f.name[:-4])


def _housekeeping(party: Party, report: RunReport, now: dt.datetime) -> None:
    """Expire what is past its expiry: only the rows that can expire are asked for (by state), and
    every expiry of the night is one commit (each is safe alone; one not made is made next night)."""
    rows = sorted((t for state in _EXPIRABLE for t in party.ledger.transfers(direction="out", state=state)),
                  key=lambda t: (t.updated, t.transfer_id))
    with party.ledger.batch():
        for t in rows:
            if t.expires and timefmt.parse(t.expires) <= now:
                party.ledger.advance("out", t.transfer_id, t.party, Outbound.EXPIRED, audit={"by": "run"})
                report.expired.append({"transfer_id": t.transfer_id, "party": t.party, "was": t.state,
                                       "expires": t.expires})
                log_event(_log, "run.expired", transfer_id=t.transfer_id, party=t.party)
    _sweep_unqueued(party, now)
    try:
        report.keys_pruned = party.prune_keys(run_lock_held=True)
    except LaxError as exc:
        report.failures.append(Failure("keys-prune", party.keystore.ring().party, exc))
    report.keys_expiring = [{"kid": k.kid, "use": k.use, "alg": k.alg, "not_after": k.not_after}
                            for k in party.keystore.expiring(KEY_WARNING, at=now)]


def _queued(party: Party, report: RunReport, now: dt.datetime) -> dict[str, list[Path]]:
    """Outbox packages whose ledger row is still `queued`, by recipient; and a failure in `report`
    for each queued package the outbox does not hold (`_not_in_outbox`).

    A package laxchange named (`<transfer id>.lax`) whose transfer the ledger has no `queued` row
    for is passed over unread: the outbox keeps every package sent, for years, and each night
    would otherwise open them all. Any other file is read, as before."""
    out: dict[str, list[Path]] = {}
    rows = party.ledger.transfers(direction="out", state=Outbound.QUEUED)
    waiting = {t.transfer_id for t in rows}
    found: set[str] = set()
    outbox = party.home.outbox
    # names, not Paths, sorted and passed over (what Path.glob("*.lax") finds, hidden names too): the outbox
    # holds a package per transfer ever sent, and only the few still queued need a Path and a read
    try:
        names = sorted(n for n in os.listdir(outbox) if n.endswith(".lax"))
    except OSError:  # no outbox (or none we may list: glob found nothing there either)
        names = []
    for name in names:
        if _TID_FILE.fullmatch(name) and name[:-4] not in waiting:
            continue
        f = outbox / name
        m = package.peek_manifest(f)
        row = party.ledger.get(m.transfer_id, "out", m.recipient) if m is not None else None
        if m is not None and row is not None and row.state == Outbound.QUEUED:
            out.setdefault(m.recipient, []).append(f)
            found.add(m.transfer_id)
    _not_in_outbox(party, [t for t in rows if t.transfer_id not in found], report, now)
    return out


#: How long a queued package may be away from the outbox before the run says so: `pack -o FILE`
#: elsewhere queues one for `laxchange send FILE` by hand.
NOT_IN_OUTBOX_AFTER = dt.timedelta(hours=1)


def _not_in_outbox(party: Party, rows: list[Transfer], report: RunReport, now: dt.datetime) -> None:
    """A failure for each queued package (receipts aside: they wait in outbox/receipts/) that no
    outbox file holds, queued over `NOT_IN_OUTBOX_AFTER` ago: moved or deleted, or packed to a file
    elsewhere and never sent, the run cannot send it, and nothing would say so until it expired."""
    for t in rows:
        if t.message_type in (None, "receipt") or now - timefmt.parse(t.updated) < NOT_IN_OUTBOX_AFTER:
            continue
        report.failures.append(Failure("send", t.party, UsageError(
            f"queued transfer {t.transfer_id} ({t.message_type}, queued {t.updated}) has no package in the outbox, "
            "so the nightly run cannot send it", code="send.not-in-outbox",
            hint=f"packed to a file elsewhere: send it (`laxchange send FILE --to {t.party}`) or move it into "
                 f"{party.home.outbox}; not to be sent, moved or deleted: `laxchange withdraw {t.transfer_id} "
                 f"--to {t.party}` takes it back (then pack the record again if it is still to go)")))


def _partner_step(party: Party, who: str, files: list[Path], report: RunReport,
                  listed: dict[str, set[str]], progress: PartyProgress | None) -> None:
    """List our sender folder on `who`'s server, then send its queued packages (one connection)."""
    listing: LaxError | None = None
    try:
        with party.transports.connect(who) as t:
            listed[who] = set(t.list().names())
    except LaxError as exc:
        listing = exc
        report.failures.append(Failure("list", who, exc))
    if not files:
        return
    try:
        result = party.send(who, files, progress=progress)
    except LaxError as exc:
        result = PartyResult(who, error=exc)
    if result.error is not None:
        if listing is None or result.error.code != listing.code:
            report.failures.append(Failure("send", who, result.error))
        return  # a partner found down when listing is one failure, not two
    for f in result.files:
        if f.error is not None:
            report.failures.append(Failure("send", who, f.error, file=f.name))
        else:
            report.sent.append({"party": who, "file": f.name, "size": f.size})


def _deadlines(party: Party, report: RunReport, now: dt.datetime, listed: dict[str, set[str]],
               uncollected_after: dt.timedelta, receipt_due: dt.timedelta) -> None:
    waiting = _waiting(party)
    receipts, sent_at = _from_audit(party, waiting)
    for t in waiting:
        if t.transfer_id in receipts or t.party not in listed:
            continue
        sent = sent_at.get((t.transfer_id, t.party), t.updated)
        since = timefmt.parse(sent)
        item = {"transfer_id": t.transfer_id, "party": t.party, "state": t.state, "sent": sent,
                "contact": _contact(party, t.party)}
        if f"{t.transfer_id}.lax" in listed[t.party]:
            if t.state == Outbound.UNCOLLECTED or now - since >= uncollected_after:
                if t.state == Outbound.SENT:
                    party.ledger.advance("out", t.transfer_id, t.party, Outbound.UNCOLLECTED,
                                         audit={"by": "run", "days": (now - since).days})
                    item["state"] = str(Outbound.UNCOLLECTED)
                report.uncollected.append({**item, "days": (now - since).days})
                log_event(_log, "run.uncollected", logging.WARNING, transfer_id=t.transfer_id, party=t.party,
                          days=(now - since).days)
        elif now - since >= receipt_due:
            report.overdue.append({**item, "hours": int((now - since).total_seconds() // 3600)})
            log_event(_log, "run.overdue", logging.WARNING, transfer_id=t.transfer_id, party=t.party,
                      hours=report.overdue[-1]["hours"])


def _counts(party: Party) -> dict[str, dict[str, dict[str, int]]]:
    return party.ledger.counts()


def _partner_names(party: Party, report: RunReport) -> dict[str, str | None]:
    """The name on each named party's card, for people reading the report (a damaged card: no name)."""
    named = {*report.counts, *(f.party for f in report.failures), *(s["party"] for s in report.sent),
             *(w["party"] for w in report.ssh_previous_key_only)}
    return {who: _card_name(party, who) for who in sorted(named)}


def _card_name(party: Party, who: str) -> str | None:
    """The organisation name on `who`'s card; None with no card (ourselves) or a damaged one: a name
    is for people reading the report, never a reason for the run to stop."""
    try:
        p = party.directory.get_optional(who)
    except LaxError:
        p = None
    return p.name if p is not None else None


def _import_failures(imp: ImportReport) -> Iterable[Failure]:
    for r in imp.collected:
        if r.error is not None:
            yield Failure("collect", r.party, r.error)
        yield from (Failure("collect", r.party, shown_error(f.name, f.error), file=shown_name(f.name)) for f in r.files
                    if f.error is not None)
    for i in imp.items:
        if i.error is not None and i.result != "skipped":
            yield Failure("import" if i.result != "quarantined" else "quarantine", i.sender or "?", i.error,
                          file=i.file)
    yield from (Failure("receipt", s.to, s.error, file=f"{s.transfer_id}.lax" if s.transfer_id else None)
                for s in imp.receipts_sent if s.error is not None)


def _log_finished(report: RunReport, started: float) -> None:
    for f in report.failures:
        log_event(_log, "run.failure", logging.WARNING, step=f.step, party=f.party, code=f.error.code)
    counts = report.imported.counts() if report.imported is not None else {}
    log_event(_log, "run.finished", logging.INFO if report.ok else logging.WARNING, complete=report.ok,
              sent=len(report.sent), imported=counts.get("imported", 0) + counts.get("receipt", 0),
              quarantined=counts.get("quarantined", 0), failures=len(report.failures),
              uncollected=len(report.uncollected), overdue=len(report.overdue), expired=len(report.expired),
              ms=int((time.monotonic() - started) * 1000))


def _statutory(party: Party, report: RunReport, now: dt.datetime, settings: deadlines.Settings | None) -> None:
    """The clocks per child; a file that cannot be read, or settings that cannot be used, are failures."""
    me = party.keystore.ring().party
    try:
        result = home_deadlines(party.home, party.ledger, me=me, now=now, settings=settings,
                                fresh=report.imported.fresh if report.imported is not None else None)
    except LaxError as exc:
        report.failures.append(Failure("deadlines", me, exc))
        return
    report.deadlines = deadlines.report(result)
    report.deadlines_exit = result.settings.run_exit_on_overdue
    report.failures.extend(Failure("deadlines", me, InvalidData(w, code="deadlines.unreadable",
                                                                 hint="fix or remove the file; its record's "
                                                                      "deadlines are not shown until then"))
                           for w in result.warnings)


def _ssh_logins(party: Party, report: RunReport, kept: dict[str, _KeptTransport], now: dt.datetime) -> None:
    """Which servers the run logged in to took only our previous SSH key (kept connections, and
    the collection in a child process, whose result says): one warning each in the report, and the
    note `doctor` reads (`ssh_logins.record_logins`)."""
    logins = {who: t.used_previous_identity for who, t in kept.items() if t.logged_in}
    for r in report.imported.collected if report.imported is not None else ():
        if r.used_previous_identity or r.error is None:
            logins[r.party] = logins.get(r.party, False) or r.used_previous_identity
    ring = party.keystore.ring()
    record_logins(party.home, ring, now, logins)
    for who in sorted(p for p, previous in logins.items() if previous):
        report.ssh_previous_key_only.append(ssh_warning(ring, who, _card_name(party, who)))
        log_event(_log, "run.ssh-previous-key", logging.WARNING, party=who)


def _checkpoint(party: Party, report: RunReport) -> None:
    """Sign the audit log's checkpoint last, so it covers every entry the run wrote."""
    try:
        report.checkpoint = make_checkpoint(party).to_dict()
    except LaxError as e:
        report.failures.append(Failure("checkpoint", party.keystore.ring().party, e))


def _unlock_for_import(party: Party) -> bool:
    """Unlock our encryption keys valid now, before the collecting child is forked, so it inherits
    them and can verify ahead: the import would unlock them anyway, so this asks for the passphrase
    (if it is asked for at all) only earlier. False if that fails: the import then meets the same
    error where it always did, and nothing is verified ahead."""
    try:
        ring = party.keystore.ring()
        keys = ring.keys_valid_at(party.clock.now(), ENCRYPTION)
        for info in keys:
            party.keystore.identity(info.kid)
    except LaxError:
        return False
    return bool(keys)


@contextlib.contextmanager
def _background(party: Party, wanted: bool) -> Iterator[BackgroundCollect | None]:
    """The child that collects our drop folder (`jobs` > 1), forked now, before the run makes any
    connection or thread; none without fork, or without a drop folder of our own (the import says so)."""
    if not wanted or not fork_available():
        yield None
        return
    me = party.keystore.ring().party
    base = party.transports
    try:
        base.resolver.resolve(me)
    except LaxError:
        yield None
        return
    verify = None
    if _unlock_for_import(party):  # the child then verifies what it fetches ahead (`package.verify_package`)
        def verify(path: Path) -> package.Verified | None:
            return package.verify_package(path, keystore=party.keystore, directory=party.directory,
                                          clock=party.clock)
    child = BackgroundCollect(Runner(base.resolver, base.factory, base.policy, sleep=base.sleep, rng=base.rng,
                                     on_retry=base.on_retry), me, party.home.inbox, verify=verify)
    with child:
        yield child


def _unlock_or_stop(party: Party, now: dt.datetime) -> None:
    """Unlock our signing keys before anything else. Every run signs (receipts, the checkpoint of
    its audit log at the end), so a run whose keys cannot be unlocked for want of a passphrase
    could only fail at each step in turn and exit 10; it stops here instead, with the passphrase's
    error (exit 5), having done nothing. Other key problems are left to the steps that meet them."""
    try:
        party.keystore.signers(now)
    except ConfigError as exc:
        if exc.code.startswith("passphrase."):
            raise
        return


def run_nightly(party: Party, *, collect: bool = True,
                uncollected_after: dt.timedelta = DEFAULT_UNCOLLECTED_AFTER,
                receipt_due: dt.timedelta = DEFAULT_RECEIPT_DUE, render: Renderer | None = None,
                on_stage: Callable[[str], None] | None = None, progress: PartyProgress | None = None,
                deadline_settings: deadlines.Settings | None = None, jobs: int = 1) -> RunReport:
    """The nightly job (see the module docstring). Raises `RunLocked` if another run holds the lock,
    and the passphrase's `ConfigError` (exit 5) if our keys cannot be unlocked (`_unlock_or_stop`);
    otherwise always returns a report (`RunReport.ok` False: exit 10). `deadline_settings` default to
    the home's config.json.

    `on_stage(name)` is called as each of `STAGES` starts, and `progress` is told of every file sent
    or collected as it goes (the CLI draws them on a terminal; the library prints nothing).

    `jobs` > 1: our drop folder is collected by a child process forked as the run starts, while
    this one imports each batch as it comes (`exchange.background`); the ledger and the report are
    as with one process. Where there is no fork (Windows) it is ignored."""
    home = party.home
    home.require()
    home.ensure()
    now = party.clock.now()
    _unlock_or_stop(party, now)
    report = RunReport(started=timefmt.fmt(now))
    base = party.transports
    # one SSH connection per server and login, not per partner: a school's own drop folder and the
    # council's, on one server, are collected from and sent to over one (`LinkShare`)
    runner = _OneConnection(base.resolver, sharing(base.factory, LinkShare()), base.policy, sleep=base.sleep,
                            rng=base.rng, on_retry=base.on_retry, max_parallel=1)
    inner = Party(home=home, keystore=party.keystore, directory=party.directory, clock=party.clock,
                  transports=runner, ledger=party.ledger)
    def stage(name: str) -> None:
        log_event(_log, "run.stage", stage=name)
        if on_stage is not None:
            on_stage(name)

    with RunLock(home.run_lock, clock=party.clock), _background(party, collect and jobs > 1) as background:
        started = time.monotonic()
        log_event(_log, "run.started", party=party.keystore.ring().party)
        try:
            stage("housekeeping")
            _housekeeping(inner, report, now)
            queued = _queued(inner, report, now)
            rows = _waiting(inner)
            receipts, _ = _from_audit(inner, rows)
            waiting = {t.party for t in rows if t.transfer_id not in receipts}
            listed: dict[str, set[str]] = {}
            partners = sorted(set(queued) | waiting)
            with thread_pool(PREFETCH, "laxchange-connect") as pool:
                stage("partners")
                for n, who in enumerate(partners):  # the next partners' handshakes overlap this one's work
                    runner.prefetch(partners[n:n + PREFETCH + 1], pool)
                    _partner_step(inner, who, queued.get(who, []), report, listed, progress)
                stage("import")  # the receipts' partners' handshakes overlap the import
                report.imported = import_held(inner, collect=collect, render=render, progress=progress,
                                              prefetch=lambda senders: runner.prefetch(senders[:PREFETCH], pool),
                                              background=background)
            report.failures.extend(_import_failures(report.imported))
            report.receipt_warnings = [i.receipt.to_dict() for i in report.imported.items
                                       if i.receipt is not None and i.receipt.warning]
            stage("deadlines")
            _deadlines(inner, report, now, listed, uncollected_after, receipt_due)
            _statutory(inner, report, now, deadline_settings)
            stage("report")
            _ssh_logins(inner, report, runner.kept, now)
            report.counts = _counts(inner)
            report.partners = _partner_names(inner, report)
            _checkpoint(inner, report)
        finally:
            runner.close_all()
        _log_finished(report, started)
    return report
