"""The ledger changes state only along the table, atomically with its audit entries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from laxchange.clock import FixedClock
from laxchange.ledger.db import Ledger
from laxchange.ledger.errors import IllegalTransition
from laxchange.ledger.states import IMPORT_PATH, Inbound, Outbound

CLOCK = FixedClock(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC))
TID = "ab" * 16


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)


def _events(ledger: Ledger) -> list[str]:
    return [e["event"] for e in ledger.audit_entries()]


def test_a_second_import_of_the_same_transfer_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    """The double-import bug: a second `imported` for one inbound transfer must not be recorded."""
    first = ledger.advance("in", TID, "LA:919", *IMPORT_PATH, payload_sha256="1" * 64, audit={"schema": "x@1"})
    assert first.state == "imported" and ledger.seen(TID, "LA:919")
    before = ledger.audit_entries()
    with pytest.raises(IllegalTransition) as exc:
        ledger.advance("in", TID, "LA:919", *IMPORT_PATH)
    assert exc.value.details == {"direction": "in", "from": "imported", "to": "received", "transfer_id": TID}
    with pytest.raises(IllegalTransition):
        ledger.advance("in", TID, "LA:919", Inbound.IMPORTED)
    assert ledger.audit_entries() == before and ledger.verify_audit() == []
    assert ledger.get(TID, "in", "LA:919") == first


def test_the_same_id_from_another_sender_is_another_transfer(ledger: Ledger) -> None:
    ledger.advance("in", TID, "LA:919", *IMPORT_PATH)
    assert ledger.advance("in", TID, "LA:920", *IMPORT_PATH).state == "imported"


@pytest.mark.parametrize("setup,attempt", [
    ((), ("sent",)),                                   # a new outbound row starts queued
    ((), ("queued", "queued")),                        # no self-loop on queued
    (("queued", "sent", "delivered"), ("delivered",)),  # a duplicate receipt
    (("queued", "sent", "rejected"), ("sent",)),        # rejected is final
    (("queued", "sent", "delivered", "applied"), ("rejected",)),
    (("queued",), ("applied",)),
    (("queued",), ("received",)),                      # an inbound state on an outbound row
])
def test_illegal_outbound_changes_raise_and_leave_no_trace(ledger: Ledger, setup: tuple[str, ...],
                                                           attempt: tuple[str, ...]) -> None:
    if setup:
        ledger.advance("out", TID, "URN:123456", *setup)
    before = (ledger.get(TID, "out", "URN:123456"), ledger.audit_entries())
    with pytest.raises(IllegalTransition):
        ledger.advance("out", TID, "URN:123456", *attempt)
    assert (ledger.get(TID, "out", "URN:123456"), ledger.audit_entries()) == before


def test_a_path_that_goes_wrong_halfway_is_rolled_back_entirely(ledger: Ledger) -> None:
    with pytest.raises(IllegalTransition):
        ledger.advance("out", TID, "URN:123456", "queued", "sent", "queued")
    assert ledger.get(TID, "out", "URN:123456") is None and ledger.audit_entries() == []


def test_a_whole_outbound_life_writes_the_final_event_names(ledger: Ledger) -> None:
    ledger.advance("out", TID, "URN:123456", Outbound.QUEUED, created="2026-11-24T12:00:00Z",
                   expires="2026-12-08T12:00:00Z", payload_sha256="2" * 64, audit={"message_type": "pep-transfer"})
    ledger.advance("out", TID, "URN:123456", Outbound.SENT, payload_sha256="9" * 64)
    ledger.advance("out", TID, "URN:123456", Outbound.SENT)  # an idempotent re-upload, audited again
    ledger.advance("out", TID, "URN:123456", Outbound.UNCOLLECTED)
    ledger.advance("out", TID, "URN:123456", Outbound.DELIVERED)
    done = ledger.advance("out", TID, "URN:123456", Outbound.APPLIED, detail="in-mis")
    assert _events(ledger) == ["out.queued", "out.sent", "out.sent", "out.uncollected", "out.delivered",
                               "out.applied"]
    assert (done.state, done.created, done.expires, done.payload_sha256, done.detail) == (
        "applied", "2026-11-24T12:00:00Z", "2026-12-08T12:00:00Z", "2" * 64, "in-mis"), "set once, at creation"
    assert done.updated == "2026-11-24T12:00:00Z"
    first = ledger.audit_entries()[0]["data"]
    assert first == {"transfer_id": TID, "party": "URN:123456", "message_type": "pep-transfer"}
    assert ledger.verify_audit() == []


def test_if_new_walks_the_entry_path_only_for_a_row_that_does_not_exist(ledger: Ledger) -> None:
    ledger.advance("out", TID, "URN:123456", "sent", if_new=["queued"])
    assert _events(ledger) == ["out.queued", "out.sent"]
    ledger.advance("out", TID, "URN:123456", "sent", if_new=["queued"])
    assert _events(ledger) == ["out.queued", "out.sent", "out.sent"]
    assert ledger.get(TID, "out", "URN:123456").state == "sent"


def test_the_import_path_writes_one_entry_per_step(ledger: Ledger) -> None:
    ledger.advance("in", TID, "LA:919", *IMPORT_PATH, audit={"schema": "pep-transfer@1.0.0"})
    entries = ledger.audit_entries()
    assert [e["event"] for e in entries] == ["in.received", "in.verified", "in.imported"]
    assert {e["data"]["schema"] for e in entries} == {"pep-transfer@1.0.0"}


def test_a_quarantined_transfer_can_arrive_again_but_only_imported_counts_as_seen(ledger: Ledger) -> None:
    ledger.advance("in", TID, "LA:919", "received", "quarantined")
    assert not ledger.seen(TID, "LA:919"), "a quarantined copy must not block the genuine package"
    ledger.advance("in", TID, "LA:919", *IMPORT_PATH)
    assert ledger.seen(TID, "LA:919")


def test_notes_accept_only_the_listed_event_names(ledger: Ledger) -> None:
    ledger.note("receipt.unmatched", {"in_reply_to": TID, "party": "LA:919"})
    for bad in ("out.sent", "in.imported", "receipt.whatever", "out.packed"):
        with pytest.raises(ValueError):
            ledger.note(bad, {})
    assert _events(ledger) == ["receipt.unmatched"]


def test_advance_needs_a_state(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.advance("out", TID, "URN:123456")


def test_a_batch_commits_its_changes_once_and_each_change_stays_all_or_nothing(tmp_path: Path) -> None:
    commits: list[tuple[str, ...]] = []
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK, on_commit=commits.append)
    other = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK, timeout=0)
    ids = [f"{n:02x}" * 16 for n in range(3)]
    with ledger.batch():
        for tid in ids:
            ledger.advance("out", tid, "URN:123456", Outbound.QUEUED, Outbound.SENT)
        with pytest.raises(IllegalTransition):  # its own steps are undone; the batch goes on
            ledger.advance("out", ids[0], "URN:123456", Outbound.DELIVERED, Outbound.QUEUED)
        assert other.get(ids[0], "out", "URN:123456") is None  # nothing visible before the commit
    assert commits == [("out.queued", "out.sent") * 3]
    assert [other.get(t, "out", "URN:123456").state for t in ids] == ["sent"] * 3  # type: ignore[union-attr]
    assert ledger.verify_audit() == [] and len(ledger.audit_entries()) == 6


def test_entries_after_a_change_undone_inside_a_batch_chain_to_the_entries_kept(tmp_path: Path) -> None:
    """The batch remembers the newest entry's hash between entries; a change undone inside it (its
    entry rolled back) must not leave the next entry chained to that entry."""
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)
    ledger.note("collect.fetched", {"sha256": "0" * 64})
    with ledger.batch():
        ledger.advance("out", TID, "URN:123456", Outbound.QUEUED, Outbound.SENT)
        with pytest.raises(IllegalTransition):  # DELIVERED is written and audited, then QUEUED undoes it all
            ledger.advance("out", TID, "URN:123456", Outbound.DELIVERED, Outbound.QUEUED)
        ledger.advance("out", TID, "URN:123456", Outbound.DELIVERED)
    ledger.note("collect.fetched", {"sha256": "1" * 64})
    assert [e["event"] for e in ledger.audit_entries()] == ["collect.fetched", "out.queued", "out.sent",
                                                          "out.delivered", "collect.fetched"]
    assert ledger.verify_audit() == []
    reopened = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)
    assert reopened.get(TID, "out", "URN:123456").state == "delivered"  # type: ignore[union-attr]
    assert reopened.verify_audit() == []


def test_a_failure_out_of_a_batch_records_nothing_of_it(tmp_path: Path) -> None:
    commits: list[tuple[str, ...]] = []
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK, on_commit=commits.append)
    with pytest.raises(IllegalTransition), ledger.batch():
        ledger.advance("out", TID, "URN:123456", Outbound.QUEUED)
        ledger.advance("out", TID, "URN:123456", Outbound.QUEUED)
    assert commits == [] and ledger.get(TID, "out", "URN:123456") is None and ledger.audit_entries() == []


def test_audit_entries_of_some_events_are_those_of_the_whole_log_in_order(ledger: Ledger) -> None:
    ledger.advance("out", TID, "URN:123456", Outbound.QUEUED, Outbound.SENT)
    ledger.note("collect.fetched", {"sha256": "0" * 64})
    ledger.advance("out", TID, "URN:123456", Outbound.DELIVERED)
    every = ledger.audit_entries()
    for events in ({"out.sent"}, {"out.queued", "out.delivered", "collect.fetched"}, set(), {"no.such"}):
        assert ledger.audit_entries(events) == [e for e in every if e["event"] in events]
