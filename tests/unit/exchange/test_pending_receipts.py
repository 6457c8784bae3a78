"""Receipts packed and not sent are found by the next import, however old the list of those known
sent (`HOME/cache/receipts-sent.json`) is, and whichever ledger it was made against."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from laxchange.exchange.inbound import SENT_RECEIPTS, _pending, import_inbox
from tests.support.parties import drop_world, over_drops, record

A, B = "LA:919", "URN:123456"
OLD = 1_700_000_000  # files this old are remembered (not written "just now")


def _age(folder: Path) -> None:
    for f in folder.glob("*.lax"):
        os.utime(f, (OLD, OLD))


def test_a_receipt_is_pending_again_when_the_ledger_no_longer_says_it_was_sent(tmp_path: Path) -> None:
    raw_a, raw_b, drops = drop_world(tmp_path)
    a, b = over_drops(raw_a, drops), over_drops(raw_b, drops)
    for n in range(3):
        a.pack(record(n), message_type="pep-transfer", recipient=B, out=tmp_path / f"pep{n}.lax")
        assert a.send(B, [tmp_path / f"pep{n}.lax"]).ok
    b.ledger.close()
    backup = tmp_path / "ledger-before.sqlite3"
    shutil.copy2(raw_b.home.ledger_db, backup)  # the ledger as it was before the import
    b = over_drops(raw_b, drops)
    report = import_inbox(b)
    assert report.ok and len(report.receipts_sent) == 3
    receipts = raw_b.home.outbox / "receipts"
    _age(receipts)
    assert _pending(b) == []
    known = json.loads((raw_b.home.root / SENT_RECEIPTS).read_text())["files"]
    assert sorted(known) == sorted(f.name for f in receipts.glob("*.lax"))
    assert _pending(b) == []  # from the list, unread

    # the ledger restored from the backup: none of the three is recorded, so all three are pending again
    b.ledger.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{raw_b.home.ledger_db}{suffix}").unlink(missing_ok=True)
    shutil.copy2(backup, raw_b.home.ledger_db)
    b = over_drops(raw_b, drops)
    pending = sorted(f.name for _, f in _pending(b))
    assert pending == sorted(f.name for f in receipts.glob("*.lax")) and len(pending) == 3
    (raw_b.home.root / SENT_RECEIPTS).unlink()
    assert sorted(f.name for _, f in _pending(b)) == pending  # what a run without the list finds
    b.ledger.close()
