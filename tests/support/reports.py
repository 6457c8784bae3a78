"""Nightly-run and status reports for the morning-report tests, built with the library's own classes.

`run_report()` is a `RunReport` (so its dictionary is what `RunReport.to_dict()` really makes) in
which something of every kind happened: sent, delivered, applied, received, quarantined (with an
error message that quotes a fictional child, which the page must not show), a partner down,
uncollected and overdue transfers, a receipt that did not apply, an expiring key. Partner names and
reasons carry hostile markup. `DEADLINES` is the shape the deadlines work adds as `"deadlines"`.
`status_ledger()` is a real ledger with a transfer in each state `status` reports on.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

from laxchange.clock import FixedClock
from laxchange.errors import InvalidData, SecurityError, TransientTransportError
from laxchange.exchange.inbound import ImportItem, ImportReport
from laxchange.exchange.receipts import ReceiptOutcome
from laxchange.exchange.run import Failure, RunReport
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import IMPORT_PATH, Inbound, Outbound
from tests.support.records import HOSTILE_NAME, MARK

SCHOOL, OTHER, DOWN, COUNCIL = "URN:123456", "URN:100002", "URN:100003", "LA:919"
#: a partner's name on its card, and a failure's reason, each with markup that must stay text
HOSTILE_PARTNER = f"Fictional Academy {HOSTILE_NAME}"
HOSTILE_REASON = f"cannot connect: <script>{MARK}</script>"
OTHER_NAME = "Other Fictional School"
#: a fictional child's name in an error message about a package's content: never on the page
CHILD_IN_MESSAGE = "Zebedee Fictional-Child"


def tid(n: int) -> str:
    return f"{n:02x}" * 16


SENT, DELIVERED, APPLIED, RECEIVED, QUARANTINED, UNCOLLECTED, OVERDUE, UNMATCHED = (tid(n) for n in range(1, 9))


def run_report() -> RunReport:
    r = RunReport(started="2026-11-24T02:30:00Z")
    r.sent = [{"party": SCHOOL, "file": f"{SENT}.lax", "size": 4321}]
    down = TransientTransportError(HOSTILE_REASON, code="ssh.connect-failed",
                                   hint="check the partner's server is up and the endpoint is right")
    invalid = InvalidData(f"package {QUARANTINED}.lax is not a valid pep-transfer: $.record.child.legal_name: "
                          f"'{CHILD_IN_MESSAGE}' is too long", code="record.invalid",
                          hint="ask the sender to correct the record and send it again",
                          details={"errors": [{"path": "$.record.child.legal_name", "rule": "schema"}],
                                   "transfer_id": QUARANTINED, "sender": OTHER})
    r.failures = [Failure("list", DOWN, down), Failure("quarantine", OTHER, invalid, file=f"{QUARANTINED}.lax")]
    r.imported = ImportReport(items=[
        ImportItem(f"{RECEIVED}.lax", "imported", RECEIVED, SCHOOL, "pep-transfer@1.1.0", f"received/{RECEIVED}"),
        ImportItem("r1.lax", "receipt", tid(20), SCHOOL, "receipt@1.1.0",
                   receipt=ReceiptOutcome(DELIVERED, SCHOOL, "accepted", "delivered", "applied", "delivered")),
        ImportItem("r2.lax", "receipt", tid(21), SCHOOL, "receipt@1.1.0",
                   receipt=ReceiptOutcome(APPLIED, SCHOOL, "accepted", "applied", "applied", "applied")),
        ImportItem("r3.lax", "receipt", tid(22), OTHER, "receipt@1.1.0",
                   receipt=ReceiptOutcome(UNMATCHED, OTHER, "accepted", "delivered", "receipt.unmatched")),
        ImportItem(f"{QUARANTINED}.lax", "quarantined", QUARANTINED, OTHER, error=invalid),
        ImportItem(f"{tid(23)}.lax", "quarantined", tid(23), OTHER,
                   error=SecurityError("package x.lax: a signature does not verify", code="package.bad-signature",
                                       hint="ask the sender to check their keys")),
    ])
    r.receipt_warnings = [i.receipt.to_dict() for i in r.imported.items if i.receipt is not None and i.receipt.warning]
    contact = {"party": SCHOOL, "name": HOSTILE_PARTNER}
    r.uncollected = [{"transfer_id": UNCOLLECTED, "party": SCHOOL, "state": "uncollected",
                      "sent": "2026-11-18T02:30:00Z", "contact": contact, "days": 6}]
    r.overdue = [{"transfer_id": OVERDUE, "party": SCHOOL, "state": "sent", "sent": "2026-11-21T02:30:00Z",
                  "contact": contact, "hours": 72}]
    r.expired = [{"transfer_id": tid(30), "party": OTHER, "was": "sent", "expires": "2026-11-23T00:00:00Z"}]
    r.keys_expiring = [{"kid": "k-sign-2025", "use": "sign", "alg": "ed25519", "not_after": "2026-12-10T00:00:00Z"}]
    r.partners = {SCHOOL: HOSTILE_PARTNER, OTHER: OTHER_NAME, DOWN: None}
    r.counts = {SCHOOL: {"out": {"sent": 2, "uncollected": 1, "delivered": 1, "applied": 1}, "in": {"imported": 1}},
                OTHER: {"in": {"quarantined": 2}, "out": {"expired": 1}}, DOWN: {"out": {"queued": 1}}}
    return r


def deadline(n: int, state: str, due: str, *, met_by: str | None = None, title: str | None = None) -> dict[str, Any]:
    return {"rule": f"rule-{n}", "title": title or f"Fictional deadline {n}", "record_ref": tid(40 + n), "due": due,
            "state": state, "met_by": met_by, "source": "statutory guidance §5.3 (fictional)"}


DEADLINES: dict[str, Any] = {
    "overdue": [deadline(1, "overdue", "2026-11-20", title=f"PEP review {HOSTILE_NAME}")],
    "due_soon": [deadline(2, "due-soon", "2026-11-27"), deadline(3, "due-soon", "2026-11-25")],
    "met": [deadline(4, "met", "2026-11-22", met_by="out.delivered")],
    "approximate": True,
}


def run_dict(*, deadlines: bool = False) -> dict[str, Any]:
    """`RunReport.to_dict()` of `run_report()`, with the deadlines section when asked (a copy, safe to change)."""
    data = copy.deepcopy(run_report().to_dict())
    if deadlines:
        data["deadlines"] = copy.deepcopy(DEADLINES)
    else:
        data.pop("deadlines", None)
    return data


def status_ledger(path: Path) -> Ledger:
    """A ledger (open: the caller closes it) at 2026-11-23T02:30Z holding, for the school: tid(1) sent three
    days ago (overdue), tid(2) applied, tid(3) rejected, tid(8) uncollected; for the council: tid(4) queued,
    tid(5) imported, tid(6) quarantined; and a receipt from the council that named no transfer of ours (tid(7))."""
    clock = FixedClock(dt.datetime(2026, 11, 20, 2, 30, tzinfo=dt.UTC))
    lg = Ledger(path, clock=clock)
    lg.advance("out", tid(1), SCHOOL, Outbound.QUEUED, Outbound.SENT, record_ref="a" * 32)
    lg.advance("out", tid(2), SCHOOL, Outbound.QUEUED, Outbound.SENT, Outbound.DELIVERED, Outbound.APPLIED)
    lg.advance("out", tid(3), SCHOOL, Outbound.QUEUED, Outbound.SENT, Outbound.REJECTED, detail="record.invalid")
    lg.advance("out", tid(4), COUNCIL, Outbound.QUEUED)
    lg.advance("in", tid(5), COUNCIL, *IMPORT_PATH)
    lg.advance("in", tid(6), COUNCIL, Inbound.RECEIVED, Inbound.QUARANTINED, detail="package.bad-signature")
    lg.note("receipt.unmatched", {"in_reply_to": tid(7), "party": COUNCIL})
    clock.advance(days=3)
    lg.advance("out", tid(8), SCHOOL, Outbound.QUEUED, Outbound.SENT, Outbound.UNCOLLECTED)
    return lg
