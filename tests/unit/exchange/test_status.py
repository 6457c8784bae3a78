"""`exchange.ledger_status`: the one dictionary `status` prints as text, as --json and as the HTML report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from laxchange.clock import FixedClock
from laxchange.exchange.status import ledger_status
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import IMPORT_PATH, Outbound

T0 = dt.datetime(2026, 11, 24, 2, 30, tzinfo=dt.UTC)
OLD, NEW, IN = "a1" * 16, "b2" * 16, "c3" * 16
SCHOOL = "URN:123456"


def test_it_lists_the_transfers_shown_and_which_of_them_are_overdue(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    with Ledger(tmp_path / "ledger.sqlite3", clock=clock) as ledger:
        ledger.advance("out", OLD, SCHOOL, Outbound.QUEUED, Outbound.SENT, record_ref="r" * 32)
        clock.advance(hours=47)
        ledger.advance("out", NEW, SCHOOL, Outbound.QUEUED, Outbound.SENT)
        ledger.advance("in", IN, SCHOOL, *IMPORT_PATH)
        clock.advance(hours=1)  # OLD was sent 48 hours ago, NEW one hour ago
        data = ledger_status(ledger)
        assert data["as_of"] == "2026-11-26T02:30:00Z"
        assert [(t["transfer_id"], t["direction"], t["state"]) for t in data["transfers"]] == [
            (OLD, "out", "sent"), (NEW, "out", "sent"), (IN, "in", "imported")]
        assert data["overdue"] == [{"transfer_id": OLD, "party": SCHOOL, "sent": "2026-11-24T02:30:00Z"}]
        assert data["warnings"] == []
        assert ledger_status(ledger, direction="in")["overdue"] == [], "only the transfers shown"
        assert [t["transfer_id"] for t in ledger_status(ledger, overdue=True)["transfers"]] == [OLD]


def test_a_receipt_we_sent_is_never_overdue_as_the_nightly_run_says(tmp_path: Path) -> None:
    """Nobody acknowledges a receipt (docs/operations.md), so `run` never reports ours overdue; `status`
    (text `--overdue`, --json and the HTML page's OVERDUE lines) did, 48 hours after each one was sent."""
    clock = FixedClock(T0)
    with Ledger(tmp_path / "ledger.sqlite3", clock=clock) as ledger:
        ledger.advance("out", OLD, SCHOOL, Outbound.QUEUED, Outbound.SENT, message_type="pep-transfer")
        ledger.advance("out", NEW, SCHOOL, Outbound.QUEUED, Outbound.SENT, message_type="receipt")
        clock.advance(hours=49)
        assert [t.transfer_id for t in ledger.overdue()] == [OLD]
        assert ledger_status(ledger)["overdue"] == [{"transfer_id": OLD, "party": SCHOOL,
                                                     "sent": "2026-11-24T02:30:00Z"}]
        assert [t["transfer_id"] for t in ledger_status(ledger, overdue=True)["transfers"]] == [OLD]


def test_a_receipt_row_from_before_the_ledger_kept_message_types_is_not_overdue(tmp_path: Path) -> None:
    """A row written before schema version 2 has no message type; its `out.queued` audit entry says it
    is a receipt, as the nightly run reads it (review: status listed every such receipt as OVERDUE)."""
    third = "c" * 32
    clock = FixedClock(T0)
    with Ledger(tmp_path / "ledger.sqlite3", clock=clock) as ledger:
        ledger.advance("out", OLD, SCHOOL, Outbound.QUEUED, Outbound.SENT, audit={"message_type": "pep-transfer"})
        ledger.advance("out", NEW, SCHOOL, Outbound.QUEUED, Outbound.SENT, audit={"message_type": "receipt"})
        ledger.advance("out", third, SCHOOL, Outbound.QUEUED, Outbound.SENT)  # untyped, and the audit says nothing
        assert ledger.get(NEW, "out", SCHOOL).message_type is None  # type: ignore[union-attr]
        clock.advance(hours=49)
        assert {t.transfer_id for t in ledger.overdue()} == {OLD, third}
        assert {t["transfer_id"] for t in ledger_status(ledger, overdue=True)["transfers"]} == {OLD, third}
        assert {o["transfer_id"] for o in ledger_status(ledger)["overdue"]} == {OLD, third}
