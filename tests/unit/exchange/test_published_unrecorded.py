"""A package published just before the link died, never recorded `sent`, is uploaded again by the
next run (docs/operations.md, "at least once"): the partner that had collected it meanwhile finds
the second copy a duplicate, silently, and both ledgers end as after one delivery."""

from __future__ import annotations

import shutil
from pathlib import Path

from laxchange.exchange.run import run_nightly
from laxchange.render.report import run_partner_counts
from tests.support.parties import drop_pair, record

A, B = "LA:919", "URN:123456"


def test_a_package_published_but_never_recorded_sent_is_delivered_again_and_found_a_duplicate(
        tmp_path: Path) -> None:
    a, b = drop_pair(tmp_path)
    res = a.pack(record(1), message_type="pep-transfer", recipient=B, out=a.home.outbox / "pep.lax")
    tid = res.manifest.transfer_id
    # the upload was published on B's server, and the link died before A's ledger recorded it sent
    shutil.copy(a.home.outbox / "pep.lax", tmp_path / "drop-b" / f"{tid}.lax")
    assert a.ledger.get(tid, "out", B).state == "queued"  # type: ignore[union-attr]
    first = run_nightly(b)  # B collects and imports it, and sends its delivered receipt
    assert first.imported is not None and first.imported.counts() == {"imported": 1}

    again = run_nightly(a)  # still queued here: uploaded again, then B's receipt applies
    assert [s["file"] for s in again.sent] == [f"{tid}.lax"] and not again.failures
    assert a.ledger.get(tid, "out", B).state == "delivered"  # type: ignore[union-attr]

    second = run_nightly(b)  # the second copy
    imp = second.imported
    assert imp is not None and [i.result for i in imp.items] == ["duplicate"] and imp.ok, "not a warning"
    assert not [f for f in second.failures if f.step != "deadlines"]
    assert run_partner_counts(second.to_dict()) == {A: {"duplicates": 1}}, "not received twice"
    assert [r.error for r in imp.receipts_sent] == [None]
    assert len(list((b.home.outbox / "receipts").glob("*.lax"))) == 1, "the same receipt file again, not a second"
    assert [t.state for t in b.ledger.transfers(direction="in")] == ["imported"]
    assert len(b.ledger.audit_entries({"in.imported"})) == 1, "imported once"

    last = run_nightly(a)  # the receipt's second copy
    assert last.imported is not None and last.imported.ok and not last.failures
    assert run_partner_counts(last.to_dict()) == {B: {"duplicates": 1}}
    assert a.ledger.get(tid, "out", B).state == "delivered"  # type: ignore[union-attr]
