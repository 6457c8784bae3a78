"""Receipts move the outbound transfer along the table; one that cannot (a duplicate) is noted, not a crash."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from laxchange.clock import FixedClock
from laxchange.exchange.party import Party, open_from, pack_to
from laxchange.exchange.transparency import make_checkpoint
from laxchange.ledger.db import Ledger
from laxchange.models.messages import RECEIPT_ID
from tests.support.parties import make_party, record


def test_a_duplicate_receipt_is_noted_and_the_state_stays(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1))
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock)
    council.trust(school)
    school.trust(council)
    sent = pack_to(council.home, record(3), message_type="pep-transfer", recipient=school.party,
                   out=tmp_path / "pep.lax", store=council.store, directory=council.directory, clock=clock)
    got = open_from(school.home, tmp_path / "pep.lax", out=tmp_path / "pep.json", store=school.store,
                    directory=school.directory, clock=clock)
    stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    receipt = {"schema": RECEIPT_ID, "in_reply_to": got.manifest.transfer_id,
               "payload_sha256": got.manifest.payload_sha256, "status": "accepted", "received_at": stamp}
    for n in (1, 2):  # two receipt packages (two transfer ids) saying the same thing
        pack_to(school.home, receipt, message_type="receipt", recipient=council.party, out=tmp_path / f"r{n}.lax",
                store=school.store, directory=school.directory, clock=clock)
        open_from(council.home, tmp_path / f"r{n}.lax", out=tmp_path / f"r{n}.json", store=council.store,
                  directory=council.directory, clock=clock)
    with Ledger(council.home.ledger_db) as ledger:
        assert ledger.get(sent.manifest.transfer_id, "out", school.party).state == "delivered"
        entries = ledger.audit_entries()
        assert ledger.verify_audit() == []
    events = [e["event"] for e in entries]
    assert events.count("out.delivered") == 1 and events[-1] == "receipt.out-of-state"
    assert entries[-1]["data"]["state"] == "delivered" and entries[-1]["data"]["status"] == "accepted"


def test_a_receipt_keeps_its_senders_checkpoint_and_notes_a_bad_one(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1))
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock)
    council.trust(school)
    school.trust(council)
    stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    with Party.from_home(school.home, keystore=school.store, directory=school.directory, clock=clock) as me:
        note = make_checkpoint(me).note
    lines = note.split("\n")
    forged = "\n".join([lines[0], str(int(lines[1]) + 7), *lines[2:]])  # claims a longer log than it signed
    for n, carried in enumerate((note, forged)):
        sent = pack_to(council.home, record(3), message_type="pep-transfer", recipient=school.party,
                       out=tmp_path / f"pep{n}.lax", store=council.store, directory=council.directory, clock=clock)
        receipt = {"schema": RECEIPT_ID, "in_reply_to": sent.manifest.transfer_id,
                   "payload_sha256": sent.manifest.payload_sha256, "status": "accepted", "received_at": stamp,
                   "checkpoint": carried}
        pack_to(school.home, receipt, message_type="receipt", recipient=council.party, out=tmp_path / f"r{n}.lax",
                store=school.store, directory=school.directory, clock=clock)
        open_from(council.home, tmp_path / f"r{n}.lax", out=tmp_path / f"r{n}.json", store=council.store,
                  directory=council.directory, clock=clock)
    kept = sorted((council.home.root / "checkpoints" / "partners" / "URN_123456").glob("*.note"))
    assert [p.read_text() for p in kept] == [note]
    with Ledger(council.home.ledger_db) as ledger:
        entries = ledger.audit_entries()
        assert ledger.get(sent.manifest.transfer_id, "out", school.party).state == "delivered", "it still applies"
    refused = [e["data"] for e in entries if e["event"] == "checkpoint.refused"]
    assert [(r["party"], r["code"]) for r in refused] == [(school.party, "checkpoint.bad-signature")]
