"""Receipts (DESIGN.md §6): what a verified receipt does to our outbound transfer, and building one.

A receipt changes a transfer's state only if it verified (the caller opened it), names an
outbound transfer of ours to the party that sent the receipt (that transfer's recipient), and
carries the payload SHA-256 we sent. Anything else is written to the audit log as a note
(`receipt.unmatched`, `receipt.hash-mismatch`, `receipt.out-of-state`) and returned as a warning,
which `status` and `import` show and which makes `import` exit 10; it is never silently ignored.
A duplicate of a receipt already applied (a package delivered twice is acknowledged twice) is the
note `receipt.out-of-state` marked `duplicate`, and is not a warning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from laxchange._util import timefmt
from laxchange.errors import ConfigError
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import Outbound, can_transition
from laxchange.models import schemastore
from laxchange.models.common import schema_id
from laxchange.models.messages import RECEIPT_VERSION
from laxchange.trust import Partner

__all__ = ["WARNING_NOTES", "ReceiptOutcome", "apply_receipt", "build_receipt", "receipt_version_for",
           "receipt_warnings"]

#: The audit notes that mean a receipt did not apply.
WARNING_NOTES = ("receipt.unmatched", "receipt.hash-mismatch", "receipt.out-of-state")

_WHY = {
    "receipt.unmatched": "it names no transfer we sent to that party",
    "receipt.hash-mismatch": "its SHA-256 is not that of the package we sent",
    "receipt.out-of-state": "the transfer is in a state it cannot change from",
}


@dataclass(frozen=True)
class ReceiptOutcome:
    """What one verified receipt did: `result` is `applied` (the state changed), `duplicate`
    (already recorded), or the audit note it wrote instead (`receipt.unmatched`, ...)."""

    in_reply_to: str
    party: str
    status: str
    stage: str
    result: str
    state: str | None = None

    @property
    def warning(self) -> bool:
        return self.result in WARNING_NOTES

    @property
    def refused(self) -> bool:
        """The partner refused our transfer, and this receipt recorded it (`rejected`): the transfer
        never reached them, so someone must correct it and send again. A refusal recorded before
        (`duplicate`) was reported then."""
        return self.result == "applied" and self.state == Outbound.REJECTED.value

    def describe(self) -> str:
        what = f"{self.stage} receipt ({self.status}) from {self.party} for transfer {self.in_reply_to}"
        if self.refused:
            return f"{what}: they refused it, transfer now {self.state}"
        if self.result == "applied":
            return f"{what}: transfer now {self.state}"
        if self.result == "duplicate":
            return f"{what}: already recorded (transfer {self.state})"
        return f"{what} did not apply: {_WHY[self.result]} ({self.result})"

    def to_dict(self) -> dict[str, Any]:
        return {"in_reply_to": self.in_reply_to, "party": self.party, "status": self.status, "stage": self.stage,
                "result": self.result, "state": self.state, "warning": self.warning, "refused": self.refused}


def _target(receipt: dict[str, Any]) -> tuple[str, Outbound]:
    if receipt["status"] != "accepted":
        return "delivered" if receipt.get("stage") is None else str(receipt["stage"]), Outbound.REJECTED
    stage = str(receipt.get("stage") or "delivered")  # a receipt without a stage (1.0.0) is the first one
    return stage, Outbound.APPLIED if stage == "applied" else Outbound.DELIVERED


def apply_receipt(ledger: Ledger, receipt: dict[str, Any], sender: str) -> ReceiptOutcome:
    """Apply a verified receipt from `sender` to our outbound transfer, or note why not."""
    tid = receipt["in_reply_to"]
    stage, state = _target(receipt)

    def outcome(result: str, now: str | None) -> ReceiptOutcome:
        return ReceiptOutcome(tid, sender, receipt["status"], stage, result, now)

    original = ledger.get(tid, "out", sender)
    if original is None:
        ledger.note("receipt.unmatched", {"in_reply_to": tid, "party": sender})
        return outcome("receipt.unmatched", None)
    if original.payload_sha256 and original.payload_sha256 != receipt["payload_sha256"]:
        ledger.note("receipt.hash-mismatch", {"in_reply_to": tid, "party": sender})
        return outcome("receipt.hash-mismatch", original.state)
    duplicate = original.state == state or (state == Outbound.DELIVERED and original.state == Outbound.APPLIED)
    # An `applied` receipt whose `delivered` one was lost: walk through delivered.
    path = [state]
    if state == Outbound.APPLIED and can_transition("out", original.state, Outbound.DELIVERED):
        path = [Outbound.DELIVERED, Outbound.APPLIED]
    if duplicate or not can_transition("out", original.state, path[0]):
        data: dict[str, Any] = {"in_reply_to": tid, "party": sender, "state": original.state,
                                "status": receipt["status"], "stage": stage}
        if duplicate:
            data["duplicate"] = True
        ledger.note("receipt.out-of-state", data)
        return outcome("duplicate" if duplicate else "receipt.out-of-state", original.state)
    row = ledger.advance("out", original.transfer_id, sender, *path, detail=receipt.get("reason_code"),
                         audit={"receipt_stage": stage})
    return outcome("applied", row.state)


#: The receipt versions we write: 1.1.0 (two-stage) and 1.2.0 (with our checkpoint). 1.0.0 had no `stage`.
WRITES = ("1.1.0", RECEIPT_VERSION)
#: What a partner whose card does not say what it reads gets (docs/format.md §8.2): every release since
#: two-stage receipts reads 1.1.0, and releases before receipt 1.2.0 refuse it.
BASELINE = "1.1.0"
#: The first version with the optional `checkpoint`.
_WITH_CHECKPOINT = "1.2.0"


def receipt_version_for(partner: Partner) -> str:
    """The receipt version to write to `partner`: the highest one we write that its card says it
    reads (`policy.reads.schemas.receipt`), BASELINE if its card says nothing. A card that lists
    none we write is refused here, so no receipt goes that it would refuse."""
    theirs = partner.reads_versions("receipt")
    if theirs is None:
        return BASELINE
    common = sorted(set(WRITES) & set(theirs), key=schemastore.version_key)
    if not common:
        raise ConfigError(f"{partner.party} reads receipts {', '.join(theirs)} only; this release writes "
                          f"{', '.join(WRITES)}", code="receipt.no-common-version",
                          hint=f"one of you needs another laxchange release; ask {partner.party} for its card "
                               "once it has updated (`laxchange partners add CARD`)")
    return common[-1]


def build_receipt(*, in_reply_to: str, payload_sha256: str, received_at: dt.datetime, processed_at: dt.datetime,
                  stage: str = "delivered", reason_code: str | None = None,
                  checkpoint: str | None = None, version: str = RECEIPT_VERSION) -> dict[str, Any]:
    """A receipt (1.2.0 unless `version` says 1.1.0: `receipt_version_for`): `accepted` at `stage`,
    or `rejected` with only a coarse `reason_code` (the package.* or rule code; the precise reason
    stays in our own quarantine record), with a signed `checkpoint` of our audit log for the
    partner to keep (docs/ledger.md) from 1.2.0 on; a 1.1.0 receipt goes without it."""
    if version not in WRITES:
        raise ValueError(f"receipt {version} is not one we write ({', '.join(WRITES)})")
    doc: dict[str, Any] = {"schema": schema_id("receipt", version), "in_reply_to": in_reply_to,
                           "payload_sha256": payload_sha256, "status": "rejected" if reason_code else "accepted",
                           "stage": stage, "received_at": timefmt.fmt(received_at),
                           "processed_at": timefmt.fmt(processed_at)}
    if reason_code:
        doc["reason_code"] = reason_code
    if checkpoint and schemastore.version_key(version) >= schemastore.version_key(_WITH_CHECKPOINT):
        doc["checkpoint"] = checkpoint
    return doc


def receipt_warnings(ledger: Ledger) -> list[dict[str, Any]]:
    """Every receipt that did not apply, oldest first, from the audit log (duplicates left out)."""
    out = []
    for e in ledger.audit_entries(WARNING_NOTES):
        if e["event"] in WARNING_NOTES and not e["data"].get("duplicate"):
            out.append({"at": e["at"], "event": e["event"], "in_reply_to": e["data"].get("in_reply_to"),
                        "party": e["data"].get("party"), "why": _WHY[e["event"]]})
    return out
