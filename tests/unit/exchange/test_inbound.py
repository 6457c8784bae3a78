"""`import_inbox`, receipts that do not apply, and the MIS CSV (issue 9 #3, #4), over local folders."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import multiprocessing
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.errors import LaxError, UsageError
from laxchange.exchange import Party
from laxchange.exchange.inbound import counts_text, find_received, import_inbox, send_applied
from laxchange.exchange.party import OpenBatch
from laxchange.exchange.receipts import build_receipt
from laxchange.exchange.run import run_nightly
from laxchange.home import Home
from laxchange.ledger.db import Ledger, Transfer
from laxchange.ledger.states import Inbound
from laxchange.mis import COLUMNS, csv_cell, write_csv
from laxchange.package import peek_manifest
from tests.support.forge import forge, statement_for
from tests.support.parties import PASSPHRASE, T0, drop_pair, make_party, over_drops, record

REPO = Path(__file__).resolve().parents[3]
A, B = "LA:919", "URN:123456"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Party, Party]:
    return drop_pair(tmp_path)


def _send_pep(a: Party, tmp: Path, n: int = 1) -> tuple[str, str]:
    res = a.pack(record(n), message_type="pep-transfer", recipient=B, out=tmp / f"pep{n}.lax")
    assert a.send(B, [tmp / f"pep{n}.lax"]).ok
    return res.manifest.transfer_id, res.manifest.payload_sha256


def test_a_receipt_with_the_wrong_hash_is_a_warning_never_exit_0(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, _digest = _send_pep(a, tmp_path)
    assert import_inbox(b).ok
    forged = build_receipt(in_reply_to=tid, payload_sha256="0" * 64, received_at=T0, processed_at=T0)
    b.pack(forged, message_type="receipt", recipient=A, out=tmp_path / "r.lax")
    b.send(A, [tmp_path / "r.lax"])
    report = import_inbox(a)
    assert not report.ok
    results = sorted(i.receipt.result for i in report.items if i.receipt)
    assert results == ["applied", "receipt.hash-mismatch"]
    assert a.ledger.get(tid, "out", B).state == "delivered"  # type: ignore[union-attr]  # the genuine one
    env = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
    r = CliRunner().invoke(main, ["--home", str(a.home.root), "status"], env=env)
    assert r.exit_code == 0 and "did not apply" in r.stderr and "receipt.hash-mismatch" in r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["UPDATED", "DIR", "STATE", "PARTY", "MESSAGE", "RECORD", "REF", "TRANSFER"]
    assert len(rows) == len(a.ledger.transfers()) and any(tid in row and "delivered" in row for row in rows)


def test_a_package_delivered_twice_is_acknowledged_with_the_same_receipt(pair: tuple[Party, Party],
                                                                         tmp_path: Path) -> None:
    a, b = pair
    _send_pep(a, tmp_path)
    first = import_inbox(b).receipts_sent
    assert import_inbox(a).ok
    a.send(B, [tmp_path / "pep1.lax"])  # delivered twice
    report = import_inbox(b)
    assert [i.result for i in report.items] == ["duplicate"]
    assert [r.transfer_id for r in report.receipts_sent] == [r.transfer_id for r in first], "not a second receipt"
    assert len(list((b.home.outbox / "receipts").glob("*.lax"))) == 1
    again = import_inbox(a)
    assert again.ok and [i.result for i in again.items] == ["duplicate"]


def test_a_second_receipt_for_the_same_transfer_is_not_a_warning(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, digest = _send_pep(a, tmp_path)
    assert import_inbox(b).ok
    second = build_receipt(in_reply_to=tid, payload_sha256=digest, received_at=T0, processed_at=T0)
    b.pack(second, message_type="receipt", recipient=A, out=tmp_path / "r2.lax")  # e.g. from laxchange 0.1
    b.send(A, [tmp_path / "r2.lax"])
    report = import_inbox(a)
    assert report.ok and sorted(i.receipt.result for i in report.items if i.receipt) == ["applied", "duplicate"]


def test_sending_again_after_the_receipt_came_back_is_no_internal_error(pair: tuple[Party, Party],
                                                                        tmp_path: Path) -> None:
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)
    import_inbox(b)
    import_inbox(a)
    assert a.send(B, [tmp_path / "pep1.lax"]).ok  # was IllegalTransition delivered -> sent (exit 70)
    assert a.ledger.get(tid, "out", B).state == "delivered"  # type: ignore[union-attr]


def test_an_applied_receipt_whose_delivered_one_was_lost_walks_through_delivered(pair: tuple[Party, Party],
                                                                                 tmp_path: Path) -> None:
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)
    import_inbox(b)
    for f in (tmp_path / "drop-a").glob("*.lax"):
        f.unlink()  # the delivered receipt is lost on the way
    assert send_applied(b, tid).error is None
    assert import_inbox(a).ok
    assert a.ledger.get(tid, "out", B).state == "applied"  # type: ignore[union-attr]


def test_a_receipt_not_sent_is_sent_by_the_next_import(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)
    (tmp_path / "drop-a").rename(tmp_path / "drop-a.away")  # the council's server is down
    report = import_inbox(b)
    assert not report.ok and [s.error is not None for s in report.receipts_sent] == [True]
    (tmp_path / "drop-a.away").rename(tmp_path / "drop-a")
    again = import_inbox(b)
    assert again.ok and [s.error for s in again.receipts_sent] == [None]
    assert import_inbox(a).ok and a.ledger.get(tid, "out", B).state == "delivered"  # type: ignore[union-attr]


def test_an_applied_receipt_that_could_not_be_packed_is_sent_by_a_later_run_once(tmp_path: Path) -> None:
    """`receipt --applied` while the council's card had no encryption key valid (its keys had lapsed)
    could not pack the receipt, and no run ever tried it again: the council never heard the record
    was in the MIS. Each run now reports it as a receipt not sent and, once the council's new card
    is added, sends it, once."""
    raw_a = make_party(tmp_path, A, "Example Council", validity_days=10)
    raw_b = make_party(tmp_path, B, "Example School", raw_a.clock)
    raw_a.trust(raw_b)
    raw_b.trust(raw_a)
    drops = {A: tmp_path / "drop-a", B: tmp_path / "drop-b"}
    for d in drops.values():
        d.mkdir()
    a, b = over_drops(raw_a, drops), over_drops(raw_b, drops)
    tid, _ = _send_pep(a, tmp_path)
    assert import_inbox(b).ok and import_inbox(a).ok
    raw_a.clock.advance(days=11)  # the council's keys have lapsed, its new card not yet here
    asked = send_applied(b, tid)
    assert asked.error is not None and asked.error.code == "partner.no-key"
    tonight = run_nightly(b)
    assert [(f.step, f.party, f.error.code) for f in tonight.failures if f.step == "receipt"] == [
        ("receipt", A, "partner.no-key")], "reported each night meanwhile"
    raw_a.store.rotate(overlap_days=0)
    raw_b.trust(raw_a)  # the council's new card, its fingerprint confirmed
    tonight = run_nightly(b)
    assert not [f for f in tonight.failures if f.step == "receipt"]
    assert [(r.in_reply_to, r.stage, r.error) for r in tonight.imported.receipts_sent] == [  # type: ignore[union-attr]
        (tid, "applied", None)]
    assert run_nightly(b).imported.receipts_sent == [], "sent once"  # type: ignore[union-attr]
    listed = find_received(raw_b.home, tid).manifest["receipts"]
    assert [(e["stage"], e["sent"]) for e in listed] == [("delivered", True), ("applied", True)]
    assert send_applied(b, tid).already_sent
    assert import_inbox(a).ok and a.ledger.get(tid, "out", B).state == "applied"  # type: ignore[union-attr]


def test_an_applied_receipt_asked_for_long_after_the_import_is_still_retried_until_sent(tmp_path: Path) -> None:
    """An applied receipt is asked for when the record reaches the MIS, often weeks after the import,
    beyond the 30 days `_owed` looks back over imports: one that could not be packed then is kept
    owed by its own note (cache/applied-owed.json, ids only) until it is sent, once."""
    raw_a = make_party(tmp_path, A, "Example Council", validity_days=45)
    raw_b = make_party(tmp_path, B, "Example School", raw_a.clock)
    raw_a.trust(raw_b)
    raw_b.trust(raw_a)
    drops = {A: tmp_path / "drop-a", B: tmp_path / "drop-b"}
    for d in drops.values():
        d.mkdir()
    a, b = over_drops(raw_a, drops), over_drops(raw_b, drops)
    tid, _ = _send_pep(a, tmp_path)
    assert import_inbox(b).ok and import_inbox(a).ok
    raw_a.clock.advance(days=46)  # in the MIS at last; the council's keys have lapsed meanwhile
    assert send_applied(b, tid).error is not None
    note = raw_b.home.root / "cache" / "applied-owed.json"
    assert json.loads(note.read_text())["owed"] == {f"{A} {tid}": {"sender": A, "folder": tid}}
    tonight = run_nightly(b)
    assert [(f.step, f.party) for f in tonight.failures if f.step == "receipt"] == [("receipt", A)]
    raw_a.store.rotate(overlap_days=0)
    raw_b.trust(raw_a)
    tonight = run_nightly(b)
    assert [(r.in_reply_to, r.stage, r.error) for r in tonight.imported.receipts_sent] == [  # type: ignore[union-attr]
        (tid, "applied", None)]
    assert run_nightly(b).imported.receipts_sent == [], "sent once"  # type: ignore[union-attr]
    assert json.loads(note.read_text())["owed"] == {}
    assert import_inbox(a).ok and a.ledger.get(tid, "out", B).state == "applied"  # type: ignore[union-attr]


def test_a_receipt_sent_before_a_crash_is_not_sent_again_once_expired(pair: tuple[Party, Party],
                                                                        tmp_path: Path) -> None:
    """An applied receipt owed (its first attempt could not be packed) is sent by a run that crashes
    before its folder's manifest says so: the next import finds the file sent by its ledger row and
    notes it. Runs stopped long enough for the file to expire must not turn it into a second
    receipt packed and sent."""
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)
    assert import_inbox(b).ok
    first = send_applied(b, tid)
    assert first.error is None and first.transfer_id is not None
    folder = find_received(b.home, tid).path
    manifest = json.loads((folder / "manifest.json").read_text())
    for e in manifest["receipts"]:
        if e["stage"] == "applied":
            e["sent"] = False  # as the crash before the note left it, and the note of the failed attempt:
    (folder / "manifest.json").write_text(json.dumps(manifest))
    owed = b.home.root / "cache" / "applied-owed.json"
    owed.parent.mkdir(mode=0o700, exist_ok=True)
    owed.write_text(json.dumps({"format": "laxchange-applied-owed/1", "owed": {f"{A} {tid}": {
        "sender": A, "folder": folder.name}}}))
    b.clock.advance(days=60)  # past the receipt file's expiry
    report = import_inbox(b, collect=False)
    assert [r for r in report.receipts_sent if r.stage == "applied"] == [], "not packed and sent again"
    listed = find_received(b.home, tid).manifest["receipts"]
    assert [(e["stage"], e["transfer_id"], e["sent"]) for e in listed if e["stage"] == "applied"] == [
        ("applied", first.transfer_id, True)]
    assert json.loads(owed.read_text())["owed"] == {}


def test_no_rejection_for_a_package_whose_sender_is_not_authenticated(pair: tuple[Party, Party],
                                                                      tmp_path: Path) -> None:
    _a, b = pair
    stranger = make_party(tmp_path, "LA:920", "Unknown Council")
    stranger.trust(make_party(tmp_path / "x", B, "Example School"))  # an impostor's card for B
    (b.home.inbox).mkdir(parents=True, exist_ok=True)
    (b.home.inbox / "x.lax").write_bytes(stranger.pack(record(2), B))
    report = import_inbox(b, collect=False)
    assert [i.result for i in report.items] == ["quarantined"] and report.receipts_sent == []


def test_csv_guards_against_formula_injection() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+44", "-2", "@SUM(A1)", "\tx", "plain", None, 3)] == \
        ["'=1+1", "'+44", "'-2", "'@SUM(A1)", "'\tx", "plain", "", "3"]
    rec = record(1)["record"]
    rec["child"]["preferred_name"] = '=HYPERLINK("http://x.example","a, b")'
    data = write_csv(rec, {"transfer_id": "0" * 32})
    assert data.count(b"\r\n") == 2 and not data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == COLUMNS
    assert dict(zip(COLUMNS, rows[1], strict=True))["preferred_name"] == "'" + rec["child"]["preferred_name"]


def test_csv_columns_are_documented_in_order() -> None:
    text = (REPO / "docs" / "import.md").read_text()
    section = text.split("## The CSV columns", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M) == COLUMNS


def test_a_receipt_sent_before_a_crash_noted_it_is_not_sent_again(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)
    sent = import_inbox(b).receipts_sent
    folder = b.home.root / "received" / tid
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["receipts"] = []  # as if the run died between sending the receipt and noting it
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = import_inbox(b)
    assert report.receipts_sent == [], "owed, but already sent: only noted"
    listed = json.loads((folder / "manifest.json").read_text())["receipts"]
    assert [(e["transfer_id"], e["sent"]) for e in listed] == [(sent[0].transfer_id, True)]
    assert len(list((tmp_path / "drop-a").rglob("*.lax"))) == 1


def test_a_filed_transfer_whose_receipt_was_never_packed_gets_one(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)
    assert import_inbox(b, collect=True).ok
    for f in (b.home.outbox / "receipts").glob("*.lax"):
        f.unlink()  # as if the run died after filing the transfer, before packing its receipt
    for f in (tmp_path / "drop-a").rglob("*.lax"):
        f.unlink()
    folder = b.home.root / "received" / tid
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["receipts"] = []
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = import_inbox(b)
    assert [(r.in_reply_to, r.stage, r.error) for r in report.receipts_sent] == [(tid, "delivered", None)]
    assert import_inbox(a).ok
    assert a.ledger.get(tid, "out", B).state == "delivered"  # type: ignore[union-attr]


def test_a_transfer_id_two_senders_used_is_found_with_its_sender(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    tid = "ab" * 16
    for folder, sender in ((tid, A), (f"{tid}-URN_222222", "URN:222222")):
        d = home.root / "received" / folder
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps({"transfer_id": tid, "sender": sender, "received_at": "x"}))
    with pytest.raises(UsageError) as exc:
        find_received(home, tid)
    assert exc.value.code == "received.ambiguous" and "--from" in (exc.value.hint or "")
    assert find_received(home, tid, "URN:222222").path.name == f"{tid}-URN_222222"
    assert find_received(home, tid, A).path.name == tid
    with pytest.raises(UsageError) as missing:
        find_received(home, tid, "URN:333333")
    assert missing.value.code == "received.not-found"


def test_reports_about_an_invalid_record_name_the_path_and_rule_never_the_value(pair: tuple[Party, Party],
                                                                                tmp_path: Path) -> None:
    """The nightly run's and import's reports end up in logs and mail: an invalid record's values
    (here a mistyped UPN) must not be quoted there, only where it failed and which rule."""
    a, b = pair
    doc = record(3)
    bad_upn = doc["record"]["child"]["upn"][:-1] + ("7" if doc["record"]["child"]["upn"][-1] != "7" else "8")
    doc["record"]["child"]["upn"] = bad_upn
    st = statement_for(A, B, doc, created=T0, expires=T0 + dt.timedelta(days=30))
    raw = forge(st, signers=a.keystore.signers(), encrypt_to=_raw(b))
    (tmp_path / "drop-b" / A.replace(":", "_")).mkdir(parents=True, exist_ok=True)
    (tmp_path / "drop-b" / A.replace(":", "_") / f"{st['transfer_id']}.lax").write_bytes(raw)
    report = import_inbox(b)
    [item] = report.items
    assert item.result == "quarantined" and item.error is not None and item.error.exit_code == 1
    assert bad_upn in item.error.message, "the library caller still gets the full message"
    text = json.dumps(report.to_dict())
    assert bad_upn not in text and "$.record.child.upn" in text and "upn.check-letter" in text
    env = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
    raw2 = forge(statement_for(A, B, doc, created=T0, expires=T0 + dt.timedelta(days=30)),
                 signers=a.keystore.signers(), encrypt_to=_raw(b))
    (b.home.inbox / "again.lax").write_bytes(raw2)
    for args in (["run", "--no-collect"], ["--json", "run", "--no-collect"]):
        (b.home.inbox / "again.lax").write_bytes(raw2)
        r = CliRunner().invoke(main, ["--home", str(b.home.root), *args], env=env)
        assert r.exit_code == 10, r.output
        assert bad_upn not in r.stdout + r.stderr and "upn.check-letter" in r.stdout


def _raw(p: Party) -> SimpleNamespace:
    """What tests.support.forge needs of the recipient: its key store and clock."""
    return SimpleNamespace(store=p.keystore, clock=p.clock)


class _Stop(BaseException):
    """Not a LaxError: what an interrupt (Ctrl-C) looks like to the import."""


def _import_interrupted(b: Party, hook: Callable[[tuple[str, ...]], None]) -> None:
    """An import of `b`'s inbox that `hook` (called after each ledger commit) stops with `_Stop`."""
    hooked = Party(home=b.home, keystore=b.keystore, directory=b.directory, clock=b.clock,
                   transports=b.transports, ledger=Ledger(b.home.ledger_db, on_commit=hook))
    with pytest.raises(_Stop):
        import_inbox(hooked)
    hooked.ledger.close()


def test_a_rejection_an_interrupted_import_never_packed_is_sent_by_the_next_one(pair: tuple[Party, Party],
                                                                                tmp_path: Path) -> None:
    """The quarantine is on record at once and the rejections are packed at the end of the import:
    stopped in between (Ctrl-C, a service stop), the next import packs and sends the rejection,
    once; the sender learns of the refusal instead of waiting for a receipt that never comes."""
    a, b = pair
    res = a.pack(record(1), message_type="pep-transfer", recipient=B, out=tmp_path / "pep1.lax")
    data = bytearray((tmp_path / "pep1.lax").read_bytes())
    data[-50] ^= 0x01  # damaged after signing: refused (package.tampered) after the manifest checks
    (tmp_path / "pep1.lax").write_bytes(bytes(data))
    assert a.send(B, [tmp_path / "pep1.lax"]).ok
    assert b.collect([B])[0].ok
    tid = res.manifest.transfer_id

    def stop_after_the_quarantine(events: tuple[str, ...]) -> None:
        if "in.quarantined" in events:
            raise _Stop

    _import_interrupted(b, stop_after_the_quarantine)
    assert len(list(b.home.quarantine.glob("*.lax"))) == 1
    assert not list((b.home.outbox / "receipts").glob("*.lax")), "interrupted before the rejection was packed"
    report = import_inbox(b, collect=False)
    assert [(r.in_reply_to, r.status, r.error) for r in report.receipts_sent] == [(tid, "rejected", None)]
    assert import_inbox(b, collect=False).receipts_sent == [], "packed and sent once"
    assert len(list((b.home.outbox / "receipts").glob("*.lax"))) == 1
    import_inbox(a)
    assert a.ledger.get(tid, "out", B).state == "rejected"  # type: ignore[union-attr]


class _StoppedBeforeTheQuarantineIsRecorded(Ledger):
    """A ledger whose process is killed (SIGKILL) or stopped (Ctrl-C) as an open records a
    quarantine: the package is in quarantine with its record, the row not yet advanced."""

    kill = True

    def advance(self, direction: str, transfer_id: str, party: str, *states: str, **kw: Any) -> Transfer:
        if Inbound.QUARANTINED in states:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise KeyboardInterrupt
        return super().advance(direction, transfer_id, party, *states, **kw)


@pytest.mark.parametrize("stop", ["open killed", "import stopped by Ctrl-C"])
def test_a_quarantine_a_stopped_process_never_recorded_is_recorded_and_rejected_once_by_the_next_import(
        pair: tuple[Party, Party], tmp_path: Path, stop: str) -> None:
    """A process stopped between moving a refused inbox package into quarantine and advancing its
    row left the row `received`, held by a process that is gone, for good (the package is no longer
    in the inbox for an open to take it over), and the sender was never told. The next import
    finds the package's quarantine record and records the row `quarantined`, as the open would
    have, then sends the rejection owed: once."""
    a, b = pair
    res = a.pack(record(1), message_type="pep-transfer", recipient=B, out=tmp_path / "pep1.lax")
    data = bytearray((tmp_path / "pep1.lax").read_bytes())
    data[-50] ^= 0x01  # damaged after signing: refused (package.tampered) once the transfer is reserved
    (tmp_path / "pep1.lax").write_bytes(bytes(data))
    assert a.send(B, [tmp_path / "pep1.lax"]).ok
    assert b.collect([B])[0].ok
    tid = res.manifest.transfer_id

    def stopped() -> None:
        _StoppedBeforeTheQuarantineIsRecorded.kill = stop == "open killed"
        hooked = Party(home=b.home, keystore=b.keystore, directory=b.directory, clock=b.clock,
                       transports=b.transports, ledger=_StoppedBeforeTheQuarantineIsRecorded(b.home.ledger_db))
        try:
            if stop == "open killed":
                [inbox_file] = b.home.inbox.glob("*.lax")
                hooked.open(inbox_file, out=tmp_path / "pep1.json")
            else:
                import_inbox(hooked, collect=False)
        finally:
            os._exit(130)  # the process ends, as after Ctrl-C

    child = multiprocessing.get_context("fork").Process(target=stopped)
    child.start()
    child.join(60)
    assert child.exitcode == (-signal.SIGKILL if stop == "open killed" else 130)
    row = b.ledger.get(tid, "in", A)
    assert row is not None and row.state == "received"
    [quarantined] = b.home.quarantine.glob("*.lax")
    assert quarantined.with_suffix(".json").is_file() and not list(b.home.inbox.glob("*.lax"))
    meta = quarantined.with_suffix(".json")
    kept = json.loads(meta.read_text())
    meta.write_text(json.dumps({**kept, "holder": "another open's token"}))  # as an earlier copy's record
    assert import_inbox(b, collect=False).receipts_sent == [], "another reservation's record is not this one's"
    assert b.ledger.get(tid, "in", A).state == "received"  # type: ignore[union-attr]
    meta.write_text(json.dumps(kept))
    report = import_inbox(b, collect=False)
    assert b.ledger.get(tid, "in", A).state == "quarantined"  # type: ignore[union-attr]
    [item] = report.items
    assert (item.result, item.file, item.transfer_id, item.sender, item.ok) == (
        "quarantined", quarantined.name, tid, A, False), "reported as a refused package: it needs a look"
    assert item.error is not None and item.error.code == "package.tampered" and not report.ok
    assert [(r.in_reply_to, r.status, r.error) for r in report.receipts_sent] == [(tid, "rejected", None)]
    assert import_inbox(b, collect=False).receipts_sent == [], "recorded and rejected once"
    [entry] = b.ledger.audit_entries(["in.quarantined"], transfer_ids=[tid])
    assert entry["data"]["quarantine"] == quarantined.name and entry["data"]["reason"] == "package.tampered"
    assert len(list((b.home.outbox / "receipts").glob("*.lax"))) == 1
    import_inbox(a)
    assert a.ledger.get(tid, "out", B).state == "rejected"  # type: ignore[union-attr]


def test_no_rejection_is_owed_for_a_package_refused_outside_the_inbox(pair: tuple[Party, Party],
                                                                     tmp_path: Path) -> None:
    """A package someone opens by hand and that is refused is left where it is, unanswered (it may be
    a damaged copy of a package the inbox will bring whole): the next import owes no rejection for it."""
    a, b = pair
    a.pack(record(1), message_type="pep-transfer", recipient=B, out=tmp_path / "pep1.lax")
    data = bytearray((tmp_path / "pep1.lax").read_bytes())
    data[-50] ^= 0x01
    (tmp_path / "pep1.lax").write_bytes(bytes(data))
    with pytest.raises(LaxError) as refused:
        b.open(tmp_path / "pep1.lax", out=tmp_path / "out.json")
    assert refused.value.code == "package.tampered"
    assert import_inbox(b, collect=False).receipts_sent == []


def test_an_import_records_a_batch_s_reservations_and_imports_in_one_commit(pair: tuple[Party, Party],
                                                                          tmp_path: Path) -> None:
    """The import reserves the packages of a batch inside the one ledger transaction that records
    them `imported` (`OpenBatch`): one commit for the batch, not a reservation commit per package.
    Interrupted right after it, every one is `imported` and none filed; the next import files each."""
    a, b = pair
    tids = [_send_pep(a, tmp_path, n)[0] for n in (1, 2, 3)]
    assert b.collect([B])[0].ok
    commits: list[tuple[str, ...]] = []

    def stop_after_the_first_import(events: tuple[str, ...]) -> None:
        commits.append(events)
        if "in.imported" in events:
            raise _Stop

    _import_interrupted(b, stop_after_the_first_import)
    assert [c for c in commits if "in.received" in c] == [("in.received",) * 3 + ("in.verified", "in.imported") * 3]
    assert not list((b.home.root / "received").iterdir()), "nothing filed, no staging folder left"
    report = import_inbox(b, collect=False)
    assert report.ok and sorted(i.transfer_id or "" for i in report.items if i.result == "imported") == sorted(tids)
    with Ledger(b.home.ledger_db) as ledger:
        assert len(ledger.audit_entries(["in.imported"])) == 3 and ledger.verify_audit() == []


def test_a_batch_holds_the_ledger_so_no_other_run_imports_its_transfers(pair: tuple[Party, Party],
                                                                       tmp_path: Path) -> None:
    """While a batch's reservations are not yet committed, it holds the ledger's write lock: another
    run opening the same transfer waits and, if the batch is still open, fails busy without importing
    anything; once the batch commits, that open is refused as a replay. One import, ever."""
    a, b = pair
    _send_pep(a, tmp_path)
    assert b.collect([B])[0].ok
    [inbox] = b.home.inbox.glob("*.lax")
    copy = tmp_path / "copy.lax"
    copy.write_bytes(inbox.read_bytes())
    other = Party(home=b.home, keystore=b.keystore, directory=b.directory, clock=b.clock, transports=b.transports,
                  ledger=Ledger(b.home.ledger_db, clock=b.clock, timeout=0.2))
    batch = OpenBatch(b, hold=60)
    b.open(inbox, out=tmp_path / "first.json", batch=batch)
    with pytest.raises(LaxError) as busy:
        other.open(copy, out=tmp_path / "second.json")
    assert busy.value.code == "ledger.busy" and not (tmp_path / "second.json").exists()
    assert batch.commit() == [None]
    with pytest.raises(LaxError) as replay:
        other.open(copy, out=tmp_path / "second.json")
    assert replay.value.code == "package.replayed" and not (tmp_path / "second.json").exists()
    assert len(other.ledger.audit_entries(["in.imported"])) == 1
    other.close()


def test_a_batch_commits_at_once_what_it_holds_after_a_refusal_or_once_held_long_enough(pair: tuple[Party, Party],
                                                                                       tmp_path: Path) -> None:
    """A refused package's quarantine is on the record as soon as the refusal (not at the batch's end), and
    a batch that has held the write lock `hold` seconds commits its reservations before the next open."""
    a, b = pair
    doc = record(3)
    doc["record"]["child"]["upn"] = doc["record"]["child"]["upn"][:-1] + (
        "7" if doc["record"]["child"]["upn"][-1] != "7" else "8")  # a genuine package with an invalid record
    bad = b.home.inbox / "bad.lax"
    bad.write_bytes(forge(statement_for(A, B, doc, created=T0, expires=T0 + dt.timedelta(days=30)),
                          signers=a.keystore.signers(), encrypt_to=_raw(b)))
    tid, _ = _send_pep(a, tmp_path)
    assert b.collect([B])[0].ok
    [good] = [p for p in b.home.inbox.glob("*.lax") if p != bad]
    watcher = Ledger(b.home.ledger_db, clock=b.clock, timeout=0)
    batch = OpenBatch(b, hold=60)
    with pytest.raises(LaxError):
        b.open(bad, out=tmp_path / "bad.json", batch=batch)
    assert [t.state for t in watcher.transfers(direction="in")] == ["quarantined"]  # committed at once
    slow = OpenBatch(b, hold=0)
    b.open(good, out=tmp_path / "good.json", batch=slow)
    row = watcher.get(tid, "in", A)  # the reservation is committed: another connection sees it
    assert row is not None and row.state == "received" and (row.detail or "").startswith("held by ")
    assert slow.commit() == [None] and watcher.get(tid, "in", A).state == "imported"  # type: ignore[union-attr]
    assert watcher.verify_audit() == []
    watcher.close()


def test_an_import_interrupted_after_its_commit_is_finished_even_after_the_package_expired(
        pair: tuple[Party, Party], tmp_path: Path) -> None:
    """The row says `imported` (verified then, within the package's validity) but the folder was
    never filed; the run that finishes it may come after `expires` (a server down for weeks). It is
    verified again as of when it was imported, and filed, never quarantined: quarantining it would
    leave an imported transfer with no record anywhere but the quarantine."""
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)

    def stop_after_the_imported_commit(events: tuple[str, ...]) -> None:
        if "in.imported" in events:
            raise _Stop

    _import_interrupted(b, stop_after_the_imported_commit)
    assert b.ledger.get(tid, "in", A).state == "imported"  # type: ignore[union-attr]
    b.clock.advance(days=45)  # past the package's 30-day expiry
    report = import_inbox(b, collect=False)
    assert report.ok, [(i.result, i.error) for i in report.items]
    assert [i.result for i in report.items if i.transfer_id == tid] == ["imported"]
    assert find_received(b.home, tid) is not None
    assert not any((b.home.root / "quarantine").rglob("*.lax")), "nothing quarantined"
    with Ledger(b.home.ledger_db) as ledger:
        assert [e["data"]["transfer_id"] for e in ledger.audit_entries(["in.resumed"])] == [tid]


def test_an_empty_staging_folder_is_removed_and_a_filled_one_kept_and_reported(pair: tuple[Party, Party]) -> None:
    """A run stopped between making a staging folder and writing into it leaves it empty: it holds
    nothing, so the next import removes it without a word (it used to warn every night, with a hint
    not to delete it). One with anything in it is kept, and reported, as ever."""
    _a, b = pair
    root = b.home.root / "received"
    root.mkdir(parents=True, exist_ok=True)
    empty = root / (".incoming-" + "1" * 32 + "-LA_919-abcd")
    filled = root / (".incoming-" + "2" * 32 + "-LA_919-ef01")
    empty.mkdir()
    filled.mkdir()
    (filled / "record.json").write_text("{}")
    report = import_inbox(b, collect=False)
    assert not empty.exists() and filled.exists()
    left = [w for w in report.warnings if "interrupted import left" in w]
    assert len(left) == 1 and left[0].startswith(f"an interrupted import left {filled}; it may hold the only copy")


def test_a_pack_interrupted_just_after_its_queued_commit_keeps_its_package(pair: tuple[Party, Party],
                                                                           tmp_path: Path) -> None:
    """A signal during SQLite's COMMIT is raised once the commit returns: the transfer is queued,
    so its package must stay (it used to be removed, leaving a queued transfer with nothing to send).
    Interrupted before the commit, the package is removed and nothing is queued, as ever."""
    a, _b = pair

    def stop_after(events: tuple[str, ...]) -> None:
        if "out.queued" in events:
            raise KeyboardInterrupt

    stopped = Party(home=a.home, keystore=a.keystore, directory=a.directory, clock=a.clock, transports=a.transports,
                    ledger=Ledger(a.home.ledger_db, on_commit=stop_after))
    out = tmp_path / "pep.lax"
    with pytest.raises(KeyboardInterrupt):
        stopped.pack(record(1), message_type="pep-transfer", recipient=B, out=out)
    stopped.ledger.close()
    assert out.is_file()
    [row] = a.ledger.transfers(direction="out", state="queued")
    kept = peek_manifest(out)
    assert kept is not None and kept.transfer_id == row.transfer_id, "the kept file is the queued transfer's"


def test_the_import_counts_read_as_english() -> None:
    """A walk-through's run said "imported 4 receipt"."""
    assert counts_text({"receipt": 4, "imported": 1, "duplicate": 1}) == "1 duplicate, 1 imported, 4 receipts"
    assert counts_text({"duplicate": 2, "quarantined": 3}) == "2 duplicates, 3 quarantined"
    assert counts_text({}) == ""
