"""`laxchange import`'s text summary."""

from __future__ import annotations

from pathlib import Path

from laxchange.cli.app import App
from laxchange.cli.inbound_cmd import _human
from laxchange.exchange.inbound import ImportReport, SentReceipt
from laxchange.home import Home


def test_receipts_sent_with_an_empty_inbox_are_in_the_summary(tmp_path: Path) -> None:
    """After an interrupted run the next import may find the inbox empty and still send the receipts
    it owed: the last line says so, not just "nothing in the inbox" (walk-through)."""
    report = ImportReport()
    report.receipts_sent = [SentReceipt("LA:919", "a" * 32, "delivered", "rejected", transfer_id="b" * 32),
                            SentReceipt("LA:919", "c" * 32, "delivered", "accepted", transfer_id="d" * 32)]
    text = _human(App(home=Home(tmp_path)), report)
    assert text.splitlines()[-1] == "done: nothing in the inbox; 2 receipts sent", text
    assert _human(App(home=Home(tmp_path)), ImportReport()).splitlines()[-1] == "done: nothing in the inbox"
