"""`laxchange run`, the nightly job (issue 9 #5, #6), as council IT would run it from cron.

Council A and school B in two homes over the embedded SFTP server (each sender confined to its
own sub-folder of the other's drop folder): a package queued on A is sent by A's run, imported
by B's run (which sends the delivered receipt), and A's next run shows it delivered; a partner
whose server is down makes the run exit 10 while the others complete; with the clock moved on,
A's report lists the uncollected transfer with B's contact, and a collected transfer without a
receipt as overdue; a second run while one holds the lock is refused; `audit verify` passes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from laxchange.cli import main
from laxchange.cli.run_cmd import human
from laxchange.clock import FixedClock
from laxchange.errors import ExitCode
from laxchange.exchange.party import Party as LibParty
from laxchange.exchange.run import RunReport, run_nightly
from laxchange.ledger.db import Ledger
from laxchange.ledger.lock import RunLock, RunLocked
from laxchange.transport import Endpoint, Transport
from laxchange.trust.cards import card_from
from tests.support.drop_server import two_homes
from tests.support.parties import PASSPHRASE, REPO, Party, make_party, passphrase, record
from tests.support.signals import interruptible

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
A, B, C = "LA:919", "URN:123456", "URN:100002"


def lax(p: Party, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(p.home.root), *args], env=ENV)


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Party, Party, Path, str]]:
    with two_homes(tmp_path, overdue_deadlines_fail_run=False) as w:
        yield (w.a, w.b, w.root, w.fingerprint)


def _queue(p: Party, to: str, tmp_path: Path, name: str = "pep") -> str:
    """Pack a PEP into the outbox (queued, not sent), as `notify-placement --queue-only` leaves one."""
    src = tmp_path / f"{name}.json"
    src.write_text(json.dumps(record(4)))
    r = lax(p, "--json", "pack", str(src), "--type", "pep-transfer", "--to", to,
            "-o", str(p.home.outbox / f"{name}.lax"))
    assert r.exit_code == 0, r.output
    tid: str = json.loads(r.stdout)["manifest"]["transfer_id"]
    return tid


def _state(p: Party, tid: str, party: str = B) -> str:
    r = lax(p, "--json", "status", "--direction", "out")
    assert r.exit_code == 0, r.output
    return next(t["state"] for t in json.loads(r.stdout)["transfers"]
                if t["transfer_id"] == tid and t["party"] == party)


def _run(p: Party, *args: str, code: int = 0) -> dict[str, Any]:
    r = lax(p, "--json", "run", "--timeout", "2", "--retries", "1", *args)
    assert r.exit_code == code, r.output
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def _party_at(p: Party, when: dt.datetime) -> LibParty:
    return LibParty.from_home(p.home, passphrase=passphrase, clock=FixedClock(when))


def test_nightly_runs_send_import_and_deliver(homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    a, b, server, _ = homes
    tid = _queue(a, B, tmp_path)
    assert _state(a, tid) == "queued"

    report = _run(a)
    assert [s["file"] for s in report["sent"]] == [f"{tid}.lax"]
    assert (server / "school" / "LA_919" / f"{tid}.lax").is_file()
    assert _state(a, tid) == "sent"
    assert _run(a)["sent"] == [], "a transfer already sent is not sent again"

    report = _run(b)
    assert report["import"]["counts"] == {"imported": 1}
    assert [(r["stage"], r["sent"]) for r in report["import"]["receipts_sent"]] == [("delivered", True)]
    assert (b.home.root / "received" / tid / "record.json").is_file()

    report = _run(a)
    assert report["import"]["counts"] == {"receipt": 1}
    assert _state(a, tid) == "delivered"
    assert report["counts"][B]["out"] == {"delivered": 1}
    assert report["complete"] is True and report["overdue"] == [] and report["uncollected"] == []
    human = lax(a, "run")
    assert human.exit_code == 0, human.output
    assert "done: all good" in human.output and B in human.output

    for p in (a, b):
        r = lax(p, "audit", "verify")
        assert r.exit_code == 0, r.output


def test_a_transfer_the_school_refused_makes_the_senders_run_need_a_look_once(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """A tampered package is quarantined by the school, which sends a signed refusal: the PEP never
    arrived, so the council's next run must not say "all good" (a user walk-through found it did,
    exit 0, and an HTML page reading "All good" above its own REJECTED row)."""
    a, b, _, _ = homes
    tid = _queue(a, B, tmp_path)
    pkg = a.home.outbox / "pep.lax"
    data = bytearray(pkg.read_bytes())
    data[-50] ^= 0x01  # in the encrypted payload: the manifest's hash no longer matches
    pkg.write_bytes(bytes(data))
    _run(a)
    report = _run(b, code=ExitCode.PARTIAL)
    assert report["import"]["counts"] == {"quarantined": 1}
    listed = lax(b, "quarantine", "list")  # its manifest's signature was good: who sent it, and which transfer
    assert f"package.tampered  from {A} (transfer {tid})" in listed.output, listed.output

    page = tmp_path / "a-report.html"
    r = lax(a, "run", "--timeout", "2", "--retries", "1", "--report", str(page))
    assert r.exit_code == ExitCode.PARTIAL, r.output
    assert f"REJECTED    transfer {tid}: {B} refused it (delivered receipt)" in r.output
    assert "done: all good" not in r.output and "needs a look (exit 10)" in r.output
    assert _state(a, tid) == "rejected"
    html = page.read_text()
    assert "All good" not in html and "Needs a look" in html and "REJECTED" in html

    again = _run(a)  # reported once: the refusal is in the ledger, and `status` lists it from there
    assert again["complete"] is True and again["import"]["counts"] == {}


def test_a_file_named_after_a_child_is_never_named_in_the_runs_reports(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """A sender chose the name of what it left in our drop folder, and may have put the child in it
    (a walk-through uploaded "PEP for ... DOB ....pdf"). The run's text, its JSON and the morning
    report (logs, mail, the journal) show such a file by its name in quarantine, never its own;
    they used to show it, and the whole inbox path."""
    _a, b, server, _ = homes
    name = "PEP for Sorrel Fictional DOB 06-04-2012.pdf"
    (server / "school" / "LA_919").mkdir(parents=True, exist_ok=True)
    (server / "school" / "LA_919" / name).write_bytes(b"%PDF-1.4 fictional\n")
    page = tmp_path / "b-report.html"
    human = lax(b, "run", "--timeout", "2", "--retries", "1", "--report", str(page))
    report = _run(b)  # nothing left to do, so the quarantined file is seen through `quarantine list`
    assert human.exit_code == ExitCode.PARTIAL, human.output
    [moved] = [p.name for p in (b.home.root / "quarantine").glob("*.lax")]
    assert f"FAILED      quarantine {moved} (sender unknown): not a laxchange package" in human.output, human.output
    for shown in (human.output, json.dumps(report), page.read_text()):
        assert "Sorrel" not in shown and "2012" not in shown and "PEP for" not in shown, shown
    # review: a file it could not collect (too large), and an entry it skips (a soft hyphen from a word
    # processor in its name), were named in the messages of the run's failures and warnings
    with (server / "school" / "LA_919" / "Sorrel Fictional full PEP.pdf").open("wb") as fh:
        fh.truncate(4 * 1024**3 + 1)  # sparse: over the download limit, and no disk used
    (server / "school" / "LA_919" / "PEP for Sorrel\u00ad Fictional.pdf").write_bytes(b"%PDF-1.4\n")
    again = lax(b, "run", "--timeout", "2", "--retries", "1")
    as_json = lax(b, "--json", "run", "--timeout", "2", "--retries", "1")
    imported = lax(b, "import")
    assert "remote.too-large" in again.output and "remote.too-large" in as_json.stdout, again.output
    assert "skipped remote entry" in imported.output and imported.exit_code == ExitCode.PARTIAL, imported.output
    assert "WARNING     skipped remote entry in" in again.output and again.exit_code == ExitCode.PARTIAL
    for shown in (again.output, as_json.stdout, imported.output):
        assert "Sorrel" not in shown and "PEP for" not in shown, shown
    listed = lax(b, "--json", "quarantine", "list")
    assert listed.exit_code == 0 and moved in listed.stdout and "Sorrel" not in listed.stdout
    [entry] = json.loads(listed.stdout)["quarantined"]  # whose login delivered it, though nothing says who sent it
    assert entry["delivered_into_folder_of"] == A and "sender" not in entry and "transfer_id" not in entry
    text = lax(b, "quarantine", "list")
    assert f"{moved}  " in text.output and f"delivered into {A}'s folder (sender not verified)" in text.output


def test_a_queued_package_missing_from_the_outbox_is_said_not_left_queued_in_silence(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """A walk-through moved a queued package out of the outbox: the run said "done: all good", exit
    0, each night, and nothing was ever sent. After an hour (a package packed elsewhere with -o is
    for `laxchange send` by hand) the run says which transfer, and needs a look."""
    a, _b, _, _ = homes
    tid = _queue(a, B, tmp_path)
    (a.home.outbox / "pep.lax").rename(tmp_path / "moved.lax")
    now = dt.datetime.now(dt.UTC)
    with _party_at(a, now + dt.timedelta(minutes=30)) as soon:
        assert run_nightly(soon).failures == []
    with _party_at(a, now + dt.timedelta(hours=2)) as later:
        report = run_nightly(later)
    [failed] = report.failures
    assert (failed.step, failed.party, failed.error.code) == ("send", B, "send.not-in-outbox")
    assert tid in failed.error.message and "laxchange send FILE --to URN:123456" in str(failed.error.hint)
    assert not report.ok and _state(a, tid) == "queued"


def test_a_queued_package_is_withdrawn_before_it_is_sent_and_a_sent_one_is_not(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """`withdraw` takes back what is queued (a placement notified twice; one the run reports as not in
    the outbox, which it said each night until expiry, review found): never sent, never reported
    again, its package kept. One sent cannot be taken back."""
    a, _b, server, _ = homes
    tid = _queue(a, B, tmp_path)
    r = lax(a, "--json", "withdraw", tid)
    assert r.exit_code == 0, r.output
    kept = Path(json.loads(r.stdout)["withdrawn"]["kept"])
    assert kept == a.home.outbox / "withdrawn" / f"{tid}.lax" and kept.is_file()
    assert not (a.home.outbox / "pep.lax").exists()
    second = _queue(a, B, tmp_path)  # pep.lax again, withdrawn again: kept beside the first, not refused
    assert lax(a, "withdraw", second).exit_code == 0
    assert sorted(p.name for p in (a.home.outbox / "withdrawn").iterdir()) == sorted([f"{tid}.lax", f"{second}.lax"])
    assert _state(a, tid) == "expired"
    report = _run(a)
    assert report["sent"] == [] and report["failures"] == [] and not list(server.rglob(f"{tid}.lax"))
    assert lax(a, "--json", "audit", "list").stdout.count('"by": "withdraw"') == 2  # one each
    again = lax(a, "--json", "withdraw", tid)
    assert again.exit_code == 2 and json.loads(again.stdout)["error"] == "withdraw.unknown"
    # one moved out of the outbox: the run's failure says how to take it back, and then stops
    other = _queue(a, B, tmp_path, "pep2")
    (a.home.outbox / "pep2.lax").rename(tmp_path / "elsewhere.lax")
    with _party_at(a, dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)) as later:
        [failed] = run_nightly(later).failures
        assert f"laxchange withdraw {other} --to {B}" in str(failed.error.hint)
        assert later.withdraw(other).kept is None
        assert run_nightly(later).failures == []
    sent = _queue(a, B, tmp_path, "pep3")
    _run(a)
    refused = lax(a, "--json", "withdraw", sent, "--to", B)
    assert refused.exit_code == 2 and json.loads(refused.stdout)["error"] == "withdraw.sent"
    assert _state(a, sent) == "sent"


def test_a_quarantined_package_released_after_the_cause_is_put_right_is_imported_by_the_next_run(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """A walk-through's partner card arrived after its package (refused: unknown sender). Opening the
    quarantined file by hand recorded it imported with no received folder and no receipt; `quarantine
    release` puts it back in the inbox, and the next run imports it as any other."""
    _a, b, _, _ = homes
    c = make_party(tmp_path / "c", C, "Other School (fictional)", FixedClock(dt.datetime.now(dt.UTC)))
    c.trust(b)
    with LibParty.from_home(c.home, passphrase=passphrase, clock=c.clock, keystore=c.store,
                            directory=c.directory) as other:
        made = other.pack(record(6), message_type="pep-transfer", recipient=B, out=b.home.inbox / "x.lax")
    tid = made.manifest.transfer_id
    first = _run(b, code=ExitCode.PARTIAL)
    assert first["import"]["counts"] == {"quarantined": 1}
    [name] = [p.name for p in b.home.quarantine.glob("*.lax")]
    b.trust(c)  # the card comes
    by_hand = lax(b, "--json", "open", str(b.home.quarantine / name), "-o", str(tmp_path / "by-hand.json"))
    assert by_hand.exit_code == 2 and json.loads(by_hand.stdout)["error"] == "quarantine.open", by_hand.output
    assert "quarantine release" in json.loads(by_hand.stdout)["hint"] and not (tmp_path / "by-hand.json").exists()
    r = lax(b, "--json", "quarantine", "release", name)
    assert r.exit_code == 0, r.output
    assert not list(b.home.quarantine.glob("*.lax"))
    assert (b.home.quarantine / "released" / name).with_suffix(".json").is_file()
    again = _run(b, code=ExitCode.PARTIAL)  # (C has no drop folder for the receipt)
    assert again["import"]["counts"] == {"imported": 1}, again
    assert (b.home.root / "received" / tid / "record.json").is_file()
    assert '"in.released"' in lax(b, "--json", "audit", "list").stdout
    bad = lax(b, "--json", "quarantine", "release", "../ledger.sqlite3")
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"] == "quarantine.unknown"


def test_every_folder_the_nightly_runs_make_in_a_home_is_private_under_the_usual_umask(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """Run by hand under umask 022, the runs must still make every home folder 0700: a walk-through
    found checkpoints/ made 0755 by `mkdir(parents=True)`, and then `doctor` failed the home."""
    a, b, _, _ = homes
    old = os.umask(0o022)
    try:
        _queue(a, B, tmp_path)
        _run(a)
        _run(b)
        _run(a)
    finally:
        os.umask(old)
    for p in (a, b):
        loose = [str(d.relative_to(p.home.root)) for d in p.home.root.rglob("*")
                 if d.is_dir() and stat.S_IMODE(d.stat().st_mode) != 0o700]
        assert loose == [], f"folders not 0700 in {p.home.root}"
        assert (p.home.root / "checkpoints").is_dir(), "the runs made the folder this test is about"
        r = lax(p, "--json", "doctor")
        checks = {c["id"]: c["ok"] for c in json.loads(r.stdout)["checks"]}
        assert checks["permissions.home"] is True, r.stdout


def test_a_file_in_the_inbox_that_is_no_package_is_quarantined_not_left_unmentioned(
        homes: tuple[Party, Party, Path, str]) -> None:
    """A record sent in plain text by mistake reached the school's inbox: a walk-through found import
    reporting nothing and the child's details left in the inbox for good. It is quarantined (0700,
    listed by `quarantine list`) and the run needs a look."""
    _, b, server, _ = homes
    plain = server / "school" / "LA_919" / "rec.json"
    plain.parent.mkdir(parents=True, exist_ok=True)  # as the council's first upload makes it
    plain.write_text(json.dumps(record(4)))
    sent = plain.read_bytes()
    report = _run(b, code=ExitCode.PARTIAL)
    items = report["import"]["items"]
    assert not (b.home.inbox / "rec.json").exists()
    kept = list(b.home.quarantine.glob("*.lax"))  # renamed: no name from outside is kept
    assert [k.read_bytes() for k in kept] == [sent]
    assert [(i["file"], i["result"]) for i in items] == [(kept[0].name, "quarantined")]  # by its name there
    assert items[0]["error"]["error"] == "package.not-a-package"
    assert _run(b)["import"]["counts"] == {}, "reported once"


def test_a_run_with_no_passphrase_to_be_had_stops_at_once_with_exit_5(homes: tuple[Party, Party, Path, str],
                                                                     tmp_path: Path) -> None:
    """Cron without LAXCHANGE_PASSPHRASE_FILE: the run can unlock no key, so it does nothing and says
    so once (the README's exit 5), not three FAILED lines and exit 10 (a walk-through found that)."""
    a, _, server, _ = homes
    tid = _queue(a, B, tmp_path)
    r = CliRunner().invoke(main, ["--home", str(a.home.root), "run", "--timeout", "2", "--retries", "1"], env={
        "LAXCHANGE_PASSPHRASE": "", "LAXCHANGE_PASSPHRASE_FILE": ""})
    assert r.exit_code == ExitCode.CONFIG, r.output
    assert "passphrase" in r.output and "LAXCHANGE_PASSPHRASE_FILE" in r.output and "FAILED" not in r.output
    assert _state(a, tid) == "queued" and not (server / "school" / "LA_919").exists(), "nothing was sent"


def test_a_schools_receipt_connection_is_opened_while_it_imports(homes: tuple[Party, Party, Path, str],
                                                                   tmp_path: Path) -> None:
    a, b, _server, _ = homes
    tid = _queue(a, B, tmp_path)
    assert _run(a)["sent"]
    connects: list[tuple[str, str]] = []
    me = _party_at(b, dt.datetime.now(dt.UTC))
    factory = me.transports.factory

    def counting(endpoint: Endpoint) -> Transport:
        connects.append((endpoint.party, threading.current_thread().name.rpartition("_")[0] or "main"))
        return factory(endpoint)

    me.transports.factory = counting
    with me:
        report = run_nightly(me)
    assert report.ok, report.to_dict()
    assert report.imported is not None
    assert [(r.in_reply_to, r.error) for r in report.imported.receipts_sent] == [(tid, None)]
    # its own drop folder when collecting; the council's (for the receipt) in the background while importing
    assert sorted(connects) == [(A, "laxchange-connect"), (B, "main")], connects
    _run(a)
    assert _state(a, tid) == "delivered"


def test_a_council_down_for_receipts_is_reported_once_as_before(homes: tuple[Party, Party, Path, str],
                                                                 tmp_path: Path) -> None:
    a, b, _server, fpr = homes
    tid = _queue(a, B, tmp_path)
    assert _run(a)["sent"]
    r = lax(b, "endpoints", "add", A, "sftp://council@127.0.0.1:1/council", "--host-key-fingerprint", fpr)
    assert r.exit_code == 0, r.output
    report = _run(b, code=ExitCode.PARTIAL)
    assert report["import"]["counts"] == {"imported": 1}
    assert [(f["party"], f["step"]) for f in report["failures"]] == [(A, "receipt")], report["failures"]
    assert report["failures"][0]["code"].startswith("ssh.")
    assert [(x["in_reply_to"], x["sent"]) for x in report["import"]["receipts_sent"]] == [(tid, False)]


def test_a_receipt_sent_is_never_overdue_by_its_row_or_by_its_file(homes: tuple[Party, Party, Path, str],
                                                                    tmp_path: Path) -> None:
    a, b, _server, _ = homes
    tid = _queue(a, B, tmp_path)
    t0 = dt.datetime.now(dt.UTC)
    with _party_at(a, t0) as me:
        assert run_nightly(me).sent
    with _party_at(b, t0) as me:
        assert run_nightly(me).ok
    with _party_at(a, t0) as me:  # A collects the receipt, so it has gone from A's folder
        assert run_nightly(me).ok
    assert _state(a, tid) == "delivered"
    with _party_at(b, t0 + dt.timedelta(days=3)) as me:
        assert run_nightly(me).overdue == [], "the ledger row says it is a receipt"
    # a ledger from before rows had a message type, with audit entries that did not say it either
    db = sqlite3.connect(b.home.ledger_db)
    db.execute("UPDATE transfers SET message_type = NULL")
    db.execute("UPDATE audit SET data = json_remove(data, '$.message_type') WHERE event = 'out.queued'")
    db.commit()
    db.close()
    with _party_at(b, t0 + dt.timedelta(days=3)) as me:
        assert run_nightly(me).overdue == [], "its file in outbox/receipts/ says it is a receipt"
    for f in (b.home.outbox / "receipts").glob("*.lax"):
        f.unlink()
    with _party_at(b, t0 + dt.timedelta(days=3)) as me:
        assert [o["party"] for o in run_nightly(me).overdue] == [A], "with nothing to tell, it waits as any transfer"


def test_a_partner_down_is_exit_10_and_the_others_complete(homes: tuple[Party, Party, Path, str],
                                                          tmp_path: Path) -> None:
    a, _b, server, fpr = homes
    c = make_party(tmp_path, C, "Other School (fictional)", a.clock)
    a.trust(c)
    r = lax(a, "endpoints", "add", C, "sftp://other@127.0.0.1:1/other", "--host-key-fingerprint", fpr)
    assert r.exit_code == 0, r.output
    to_c = _queue(a, C, tmp_path, "pep-c")
    to_b = _queue(a, B, tmp_path, "pep-b")

    report = _run(a, code=ExitCode.PARTIAL)
    assert [s["file"] for s in report["sent"]] == [f"{to_b}.lax"], "B was served although C is down"
    assert (server / "school" / "LA_919" / f"{to_b}.lax").is_file()
    assert [(f["party"], f["step"]) for f in report["failures"]] == [(C, "list")], "one failure for C, not two"
    assert report["failures"][0]["code"].startswith("ssh.") and report["failures"][0]["hint"]
    assert _state(a, to_c, C) == "queued" and _state(a, to_b) == "sent"
    human = lax(a, "run", "--timeout", "2", "--retries", "1")
    assert human.exit_code == ExitCode.PARTIAL
    assert "FAILED" in human.output and C in human.output and "needs a look (exit 10)" in human.output


def test_uncollected_after_5_days_with_the_partners_contact(homes: tuple[Party, Party, Path, str],
                                                             tmp_path: Path) -> None:
    a, b, _server, _ = homes
    tid = _queue(a, B, tmp_path)
    t0 = dt.datetime.now(dt.UTC)
    connects: list[str] = []
    me = _party_at(a, t0)
    factory = me.transports.factory

    threads: dict[str, str] = {}

    def counting(endpoint: Endpoint) -> Transport:
        connects.append(endpoint.party)
        threads[endpoint.party] = threading.current_thread().name.rpartition("_")[0] or "main"
        return factory(endpoint)

    me.transports.factory = counting
    with me:
        assert [s["file"] for s in run_nightly(me).sent] == [f"{tid}.lax"]
    assert sorted(connects) == [A, B], "one connection per partner (and our own drop folder) per run"
    # the partner's handshake was started in the background (the partners stage prefetches), ours when collecting
    assert threads == {B: "laxchange-connect", A: "main"}, threads

    with _party_at(a, t0 + dt.timedelta(days=4)) as me:
        assert run_nightly(me).ok, "4 days in the partner's folder is not yet uncollected"
    with _party_at(a, t0 + dt.timedelta(days=6)) as me:
        report: RunReport = run_nightly(me)
    assert not report.ok
    assert [(u["transfer_id"], u["state"], u["days"]) for u in report.uncollected] == [(tid, "uncollected", 6)]
    assert report.uncollected[0]["contact"] == {"party": B, "name": "Example School (fictional)"}
    assert _state(a, tid) == "uncollected"
    text = lax(a, "run")
    assert text.exit_code == ExitCode.PARTIAL
    assert "UNCOLLECTED" in text.output and "Example School (fictional) (URN:123456)" in text.output

    # B imports at last: its receipt closes it, although it was uncollected
    _run(b)
    with _party_at(a, t0 + dt.timedelta(days=6, hours=1)) as me:
        report = run_nightly(me)
    assert report.ok, report.to_dict()
    assert _state(a, tid) == "delivered"
    for p in (a, b):
        assert lax(p, "audit", "verify").exit_code == 0


def test_collected_without_a_receipt_is_overdue_after_48_hours(homes: tuple[Party, Party, Path, str],
                                                               tmp_path: Path) -> None:
    a, b, _server, _ = homes
    tid = _queue(a, B, tmp_path)
    t0 = dt.datetime.now(dt.UTC)
    with _party_at(a, t0) as me:
        assert run_nightly(me).ok
    assert lax(b, "collect").exit_code == 0, "B collects, but sends no receipt (collect, not import)"
    with _party_at(a, t0 + dt.timedelta(hours=47)) as me:
        assert run_nightly(me).overdue == []
    with _party_at(a, t0 + dt.timedelta(hours=49)) as me:
        report = run_nightly(me)
    assert not report.ok and report.uncollected == []
    assert [(o["transfer_id"], o["hours"]) for o in report.overdue] == [(tid, 49)]
    assert report.overdue[0]["contact"] == {"party": B, "name": "Example School (fictional)"}
    assert _state(a, tid) == "sent", "overdue is reported, not a state"


def test_housekeeping_expires_unsent_transfers_and_lists_expiring_keys(homes: tuple[Party, Party, Path, str],
                                                                       tmp_path: Path) -> None:
    a, _b, server, _ = homes
    tid = _queue(a, B, tmp_path)
    t0 = dt.datetime.now(dt.UTC)
    with _party_at(a, t0 + dt.timedelta(days=31)) as me:
        report = run_nightly(me)
        assert [(e["transfer_id"], e["was"]) for e in report.expired] == [(tid, "queued")]
        assert report.sent == [] and not (server / "school" / "LA_919" / f"{tid}.lax").exists(), "never sent"
        assert report.keys_expiring == []
        assert run_nightly(me).expired == [], "expired once"
    assert _state(a, tid) == "expired"
    with _party_at(a, t0 + dt.timedelta(days=710)) as me:
        report = run_nightly(me)
    assert {k["use"] for k in report.keys_expiring} >= {"signing", "encryption"}
    assert "KEY EXPIRES signing key" in human(report.to_dict())
    assert "KEY EXPIRES" not in lax(a, "run").output, "not yet, at today's date"


def test_uncollected_after_days_option(homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    a, _b, _server, _ = homes
    tid = _queue(a, B, tmp_path)
    assert _run(a)["sent"]
    report = _run(a, "--uncollected-after-days", "1")
    assert report["uncollected"] == [], "sent just now"
    (a.home.config_file).write_text(json.dumps({"run": {"uncollected_after_days": 0}}))
    r = lax(a, "run")
    assert r.exit_code == ExitCode.CONFIG and "uncollected_after_days" in r.output
    assert _state(a, tid) == "sent"


def test_a_second_run_while_one_holds_the_lock_is_refused(homes: tuple[Party, Party, Path, str],
                                                         tmp_path: Path) -> None:
    a, _b, _server, _ = homes
    tid = _queue(a, B, tmp_path)
    with RunLock(a.home.run_lock):
        r = lax(a, "run")
        assert r.exit_code == RunLocked.exit_code, r.output
        assert "another laxchange run holds" in r.output
        r = lax(a, "--json", "run")
        assert json.loads(r.stdout)["error"] == "run.locked"
    assert _state(a, tid) == "queued", "the refused run did nothing"
    assert _run(a)["sent"], "the lock is free again"


def test_the_run_prunes_retired_keys_under_the_lock_it_holds(homes: tuple[Party, Party, Path, str]) -> None:
    """Housekeeping destroys a signing key past its rotation's overlap; `keys prune` takes the run
    lock, so the run, which already holds it, must prune without taking it again."""
    a, _b, _server, _ = homes
    assert lax(a, "keys", "rotate", "--overlap-days", "0", "--kdf-work-factor", "10").exit_code == 0
    waiting = json.loads(lax(a, "--json", "keys", "prune", "--dry-run").stdout)["destroyed"]
    assert waiting
    report = _run(a)
    assert report["failures"] == []
    assert [k["kid"] for k in report["keys_pruned"]] == [k["kid"] for k in waiting]
    assert json.loads(lax(a, "--json", "keys", "prune", "--dry-run").stdout)["destroyed"] == []


def test_receipts_carry_checkpoints_and_the_partner_held_one_detects_a_cut_off_log(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """Issue 12 acceptance: deleting the newest audit entries is detected by `audit verify`
    against a checkpoint the partner received (here in the receipt the school sent)."""
    a, b, _, _ = homes
    _queue(a, B, tmp_path)
    assert _run(a)["checkpoint"]["size"] > 0, "every run signs a checkpoint at its end"
    _run(b)  # imports the PEP, sends a delivered receipt carrying b's checkpoint
    _run(a)  # imports the receipt and keeps b's checkpoint
    kept = sorted((a.home.root / "checkpoints" / "partners" / B.replace(":", "_")).glob("*.note"))
    assert len(kept) == 1
    held = tmp_path / "held-by-a.note"
    r = lax(a, "audit", "held", B, "-o", str(held))
    assert r.exit_code == 0, r.output
    size = int(held.read_text().split("\n")[1])
    assert lax(b, "audit", "verify", "--checkpoint", str(held)).exit_code == 0
    assert lax(a, "audit", "verify").exit_code == 0

    db = sqlite3.connect(b.home.ledger_db)  # someone deletes b's newest entries, and b's own checkpoints
    db.execute("DELETE FROM audit WHERE seq > ?", (size - 3,))
    db.commit()
    db.close()
    shutil.rmtree(b.home.root / "checkpoints")
    assert lax(b, "audit", "verify").exit_code == 0, "the chain alone does not see it"
    r = lax(b, "--json", "audit", "verify", "--checkpoint", str(held))
    assert r.exit_code == 3, r.output
    assert json.loads(r.stdout)["error"] == "audit.truncated"
    assert "the newest 3 were removed" in json.loads(r.stdout)["message"]


def _receipt_schemas(p: Party) -> list[str]:
    with Ledger(p.home.ledger_db) as ledger:
        return [e["data"]["schema"] for e in ledger.audit_entries()
                if e["event"] == "in.imported" and e["data"]["schema"].startswith("receipt@")]


def test_a_checkpoint_arrives_inside_a_package_and_receipts_follow_what_the_card_says_it_reads(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    """Issue 12 #4: the council's checkpoint travels in its PEP's statement and the school's
    `audit held` hands it back; the school writes receipts at the version the council's card says
    it reads: 1.1.0 (no checkpoint) while it holds a card from before negotiation, 1.2.0 after."""
    a, b, _, _ = homes
    b.directory.add(card_from(a.store.ring(), a.clock.now(), a.store.card_signers())[0])  # a's card, said nothing
    _queue(a, B, tmp_path, "pep1")
    first = _run(a)["checkpoint"]  # sends PEP 1 (no checkpoint signed yet), then signs one
    _queue(a, B, tmp_path, "pep2")  # carries that one: b's card says it reads format 1.1
    _run(a)
    _run(b)
    held = tmp_path / "held.note"
    r = lax(b, "audit", "held", A, "-o", str(held))
    assert r.exit_code == 0, r.output
    assert held.read_text() == first["note"], "the checkpoint that arrived inside the PEP"
    assert lax(a, "audit", "verify", "--checkpoint", str(held)).exit_code == 0
    _run(a)
    assert _receipt_schemas(a) == ["receipt@1.1.0", "receipt@1.1.0"]
    assert not (a.home.root / "checkpoints" / "partners").exists(), "a 1.1.0 receipt carries none"

    b.trust(a)  # the council's current card, which says it reads receipt 1.2.0
    _queue(a, B, tmp_path, "pep3")
    _run(a)
    _run(b)
    _run(a)
    assert _receipt_schemas(a)[2:] == ["receipt@1.2.0"]
    assert len(list((a.home.root / "checkpoints" / "partners" / B.replace(":", "_")).glob("*.note"))) == 1


def test_a_forged_checkpoint_in_a_genuine_package_makes_the_run_need_a_look(
        homes: tuple[Party, Party, Path, str], tmp_path: Path) -> None:
    a, b, _, _ = homes
    note = _run(a)["checkpoint"]["note"]
    lines = note.split("\n")
    forged = "\n".join([lines[0], str(int(lines[1]) + 5), *lines[2:]])
    b.home.inbox.mkdir(parents=True, exist_ok=True)
    (b.home.inbox / "pep.lax").write_bytes(a.pack(record(4), B, checkpoint=forged))
    report = _run(b, code=ExitCode.PARTIAL)
    assert report["import"]["counts"] == {"imported": 1}, "the record is genuine: imported all the same"
    [warning] = report["import"]["warnings"]
    assert "does not verify" in warning and "kept as evidence" in warning
    assert f"WARNING     {warning}" in human(report).splitlines()


def test_ctrl_c_while_a_partner_s_server_says_nothing_exits_at_once(homes: tuple[Party, Party, Path, str],
                                                                  tmp_path: Path) -> None:
    """A partner whose server accepts the connection and then says nothing holds a handshake for the
    whole --timeout. Ctrl-C then ends the run at once (exit 130, said so, no traceback), whether the
    run was waiting on that handshake or making it in the background: it used to wait out the
    handshakes first (26 s of a 30 s timeout), unless Ctrl-C was pressed twice."""
    a, _b, _server, fpr = homes
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    accepted = threading.Event()

    def hold() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = silent.accept()
                held.append(conn)  # kept open, never a byte sent
                accepted.set()

    threading.Thread(target=hold, daemon=True).start()
    port = silent.getsockname()[1]
    # two such partners: one the run is waiting on, the other being connected to in the background
    for n, who in enumerate((C, "URN:100003")):
        a.trust(make_party(tmp_path / who.replace(":", "_"), who, f"Other School {n} (fictional)", a.clock))
        r = lax(a, "endpoints", "add", who, f"sftp://other@127.0.0.1:{port}/other", "--host-key-fingerprint", fpr)
        assert r.exit_code == 0, r.output
        _queue(a, who, tmp_path, f"pep-{n}")
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    proc = interruptible([sys.executable, "-m", "laxchange", "--home", str(a.home.root), "run", "--timeout", "30",
                          "--retries", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert accepted.wait(30), "the run never connected to the silent server"
        time.sleep(0.5)  # into the handshake's wait for the server's banner
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        silent.close()
        for conn in held:
            conn.close()
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    assert "laxchange: error: interrupted" in err and "Traceback" not in out + err, err
    assert took < 10, f"it took {took:.1f} s to stop"
