"""Pack, send and open with the bookkeeping: ledger states, replay check, quarantine, audit.

`laxchange.package` is the format (pure: bytes in, bytes out); this module is what a party
does with it, so the CLI, the demo and unattended runs share one implementation.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from laxchange import package
from laxchange.clock import Clock
from laxchange.errors import InvalidData, SecurityError
from laxchange.exchange.quarantine import quarantine
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import IMPORT_PATH, Outbound, can_transition
from laxchange.trust import PartnerDirectory
from laxchange.trust.keystore import KeyStore


def pack_to(home: Home, document: Any, *, message_type: str, recipient: str, out: Path,
            store: KeyStore | None = None, directory: PartnerDirectory | None = None, clock: Clock | None = None,
            expires_in: dt.timedelta = package.DEFAULT_EXPIRES_IN,
            attachments: Sequence[str | os.PathLike[str]] = ()) -> package.PackResult:
    """Validate, sign and encrypt `document` for `recipient` into `out`; record it as queued."""
    store = store or KeyStore(home, clock=clock)
    store.destroy_retired_signing_keys()
    result = package.pack(document, message_type=message_type, recipient=recipient, keystore=store,
                          directory=directory or PartnerDirectory(home, clock=clock), out=out, clock=clock,
                          expires_in=expires_in, attachments=attachments)
    m = result.manifest
    with Ledger(home.ledger_db, clock=clock) as ledger:
        ledger.advance("out", m.transfer_id, m.recipient, Outbound.QUEUED, created=m.created, expires=m.expires,
                        payload_sha256=m.payload_sha256, audit={"message_type": message_type})
    return result


def record_sent(home: Home, party: str, manifests: dict[str, package.Manifest | None], sent: dict[str, str | None],
                *, clock: Clock | None = None) -> None:
    """Mark delivered packages as sent. `sent` maps file name to its SHA-256 (None if it failed)."""
    with Ledger(home.ledger_db, clock=clock) as ledger:
        for name, digest in sent.items():
            m = manifests.get(name)
            if m is not None and digest is not None:
                ledger.advance("out", m.transfer_id, party, Outbound.SENT, if_new=[Outbound.QUEUED], created=m.created,
                               expires=m.expires, payload_sha256=m.payload_sha256, audit={"file_sha256": digest})


def open_from(home: Home, source: Path, *, out: Path, store: KeyStore | None = None,
              directory: PartnerDirectory | None = None, clock: Clock | None = None,
              attachments_dir: Path | None = None) -> package.Opened:
    """Verify and open one package; record it as imported, or quarantine it and say why.

    A transfer id already imported is refused as a replay. On any security or data failure the
    package is quarantined (moved from the inbox, else copied), the ledger notes it, and the
    error is raised with the quarantine path in its details; nothing is written to `out`.
    """
    store = store or KeyStore(home, clock=clock)
    with Ledger(home.ledger_db, clock=clock) as ledger:
        try:
            opened = package.open_package(source, keystore=store, directory=directory or PartnerDirectory(home, clock=clock),
                                          clock=clock, out=out, attachments_dir=attachments_dir, workdir=out.parent,
                                          seen=ledger.seen)
        except (SecurityError, InvalidData) as exc:
            q = quarantine(home, source, exc, clock=clock)
            ledger.note("in.quarantined", {"reason": exc.code, "sha256": q.record["sha256"], "quarantine": q.path.name})
            where = "moved" if q.record["moved_from_inbox"] else "copied"
            exc.message += f" (package {where} to quarantine: {q.path.name})"
            exc.details = {**exc.details, "quarantined": str(q.path)}
            raise
        m = opened.manifest
        ledger.advance("in", m.transfer_id, m.sender, *IMPORT_PATH, created=m.created, expires=m.expires,
                       payload_sha256=m.payload_sha256, audit={"schema": opened.schema})
        if opened.schema.startswith("receipt@"):
            _apply_receipt(ledger, opened.document, m.sender)
    return opened


def _apply_receipt(ledger: Ledger, receipt: dict[str, Any], sender: str) -> None:
    """A verified receipt closes our outbound transfer, if it is ours and went to its sender."""
    original = ledger.get(receipt["in_reply_to"], "out", sender)
    if original is None:
        ledger.note("receipt.unmatched", {"in_reply_to": receipt["in_reply_to"], "party": sender})
        return
    if original.payload_sha256 and original.payload_sha256 != receipt["payload_sha256"]:
        ledger.note("receipt.hash-mismatch", {"in_reply_to": receipt["in_reply_to"], "party": sender})
        return
    state = Outbound.DELIVERED if receipt["status"] == "accepted" else Outbound.REJECTED
    if not can_transition("out", original.state, state):  # e.g. a duplicate receipt: shown, not a crash
        ledger.note("receipt.out-of-state", {"in_reply_to": receipt["in_reply_to"], "party": sender,
                                             "state": original.state, "status": receipt["status"]})
        return
    ledger.advance("out", original.transfer_id, sender, state, detail=receipt.get("reason_code"))
