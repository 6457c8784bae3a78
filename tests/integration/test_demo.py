"""The demo runs the main job end to end: every step really happens, and its outcome is checked."""

from __future__ import annotations

import json
from pathlib import Path

from laxchange import demo
from laxchange._util import jsonio
from laxchange.models import messages
from laxchange.validate import validate_document


def test_demo_end_to_end(tmp_path: Path) -> None:
    lines: list[str] = []
    results = demo.run(tmp_path / "d", say=lines.append, work_factor=10)
    assert results["validated"] == 125
    assert results["broken_rules"] == ["upn.check-letter"]
    assert results["receipt"] == "accepted"
    assert results["quarantined"] == ["package.tampered"]
    homes = tmp_path / "d" / "homes"
    for slug in ("host-vs", "school"):
        received = sorted((homes / slug / "received").glob("*.json"))
        assert len(received) == 1
        assert validate_document(jsonio.load_file(received[0])).ok
    quarantined = list((homes / "school" / "quarantine").glob("*.json"))
    assert len(quarantined) == 1 and json.loads(quarantined[0].read_text())["reason"] == "package.tampered"
    inbox = homes / "school" / "inbox"
    assert not [p for p in inbox.iterdir() if p.is_file()], "nothing left half-processed in the inbox"
    assert len(list((inbox / "opened").glob("*.lax"))) == 1, "the opened PEP is kept, out of the inbox's way"
    text = "\n".join(lines)
    assert "REFUSED" in text and f"verified pep-transfer@{messages.VERSION}" in text
    # over the confined server, each delivery sat in its sender's own sub-folder (issue 10)
    server = tmp_path / "d" / "sftp-server"
    placing = results["parties"]["placing-vs"].replace(":", "_")
    assert len(list((server / "school" / placing / "processed").glob("*.lax"))) == 2
    assert len(list((server / "host-vs" / placing / "processed").glob("*.lax"))) == 1
    assert not [p for p in (server / "school").iterdir() if p.is_file()]


def test_demo_ledgers_show_the_receipt_closed_the_transfer(tmp_path: Path) -> None:
    from laxchange.ledger.db import Ledger

    demo.run(tmp_path / "d", say=lambda _s: None, work_factor=10)
    homes = tmp_path / "d" / "homes"
    with Ledger(homes / "placing-vs" / "ledger.sqlite3") as ledger:
        states = {t.party: t.state for t in ledger.transfers(direction="out") if t.state != "sent"}
        assert ledger.verify_audit() == []
    assert list(states.values()) == ["delivered"], states
    with Ledger(homes / "school" / "ledger.sqlite3") as ledger:
        events = [e["event"] for e in ledger.audit_entries()]
    assert events.count("in.imported") == 1 and events.count("in.quarantined") == 1
