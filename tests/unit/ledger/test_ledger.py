"""The ledger: replayed transfers are refused, states are recorded, the audit chain shows tampering."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.clock import FixedClock
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from laxchange.ledger.errors import IllegalTransition
from laxchange.ledger.states import IMPORT_PATH
from tests.support.parties import PASSPHRASE, initialise, make_party, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def lax(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], env=ENV)


def test_replayed_package_is_refused_and_left_in_place(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock)
    council.trust(school)
    school.trust(council)
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(record(4)))
    pkg = tmp_path / "p.lax"
    assert lax(council.home.root, "pack", str(src), "--type", "pep-transfer", "--to", "URN:123456",
               "-o", str(pkg)).exit_code == 0
    first = lax(school.home.root, "open", str(pkg), "-o", str(tmp_path / "a.json"))
    assert first.exit_code == 0, first.output
    again = lax(school.home.root, "--json", "open", str(pkg), "-o", str(tmp_path / "b.json"))
    assert again.exit_code == 3
    err = json.loads(again.output)
    assert err["error"] == "package.replayed" and "quarantined" not in (err.get("details") or {})
    assert not (tmp_path / "b.json").exists() and pkg.exists(), "a file named by hand is left where it is"
    assert not school.home.quarantine.exists() or not list(school.home.quarantine.iterdir())

    out = json.loads(lax(council.home.root, "--json", "status").output)["transfers"]
    assert [(t["direction"], t["state"], t["party"]) for t in out] == [("out", "queued", "URN:123456")]
    inbound = json.loads(lax(school.home.root, "--json", "status", "--direction", "in").output)["transfers"]
    assert [(t["state"], t["party"]) for t in inbound] == [("imported", "LA:919")]

    verify = lax(school.home.root, "--json", "audit", "verify")
    assert verify.exit_code == 0 and json.loads(verify.output)["entries"] == 4
    events = [e["event"] for e in json.loads(lax(school.home.root, "--json", "audit", "list").output)["entries"]]
    assert events == ["in.received", "in.verified", "in.imported", "in.refused"]
    text = (school.home.ledger_db).read_bytes()
    assert b"SYNTH-" not in text and record(4)["record"]["child"]["legal_name"]["family"].encode() not in text


def _ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=FixedClock(dt.datetime(2026, 11, 24, 12)))
    for i in range(4):
        ledger.advance("out", f"{i:032x}", "LA:919", "queued")
        ledger.advance("out", f"{i:032x}", "LA:919", "sent")
    return ledger


def test_states_are_checked_and_updated(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    assert ledger.get("0" * 32, "out", "LA:919").state == "sent"
    assert len(ledger.transfers(state="sent")) == 4
    with pytest.raises(IllegalTransition):
        ledger.advance("out", "0" * 32, "LA:919", "imported")
    assert not ledger.seen("0" * 32, "LA:919"), "outbound ids are not inbound replays"
    assert ledger.verify_audit() == []
    assert oct((tmp_path / "ledger.sqlite3").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("attack,expected", [
    ("UPDATE audit SET data = replace(data, 'LA:919', 'LA:920') WHERE seq = 3", "entry 3: its contents were changed"),
    ("DELETE FROM audit WHERE seq = 2", "entry 3: does not follow"),
    ("UPDATE audit SET at = '2020-01-01T00:00:00Z' WHERE seq = 5", "entry 5: its contents were changed"),
])
def test_audit_chain_detects_tampering(tmp_path: Path, attack: str, expected: str) -> None:
    _ledger(tmp_path).close()
    db = sqlite3.connect(tmp_path / "ledger.sqlite3")
    db.execute(attack)
    db.commit()
    db.close()
    problems = Ledger(tmp_path / "ledger.sqlite3").verify_audit()
    assert problems and expected in problems[0]


def test_audit_verify_cli_exits_3_on_a_broken_chain(tmp_path: Path) -> None:
    home = tmp_path / "home"
    initialise(Home(home))
    ledger = Ledger(home / "ledger.sqlite3")
    ledger.advance("in", "a" * 32, "LA:919", *IMPORT_PATH)
    ledger.advance("in", "b" * 32, "LA:919", *IMPORT_PATH)
    ledger.close()
    db = sqlite3.connect(home / "ledger.sqlite3")
    db.execute("UPDATE audit SET data = '{}' WHERE seq = 1")
    db.commit()
    db.close()
    r = lax(home, "audit", "verify")
    assert r.exit_code == 3 and "contents were changed" in r.output and "Traceback" not in r.output


def test_another_partner_cannot_preempt_a_transfer_id(tmp_path: Path) -> None:
    """Transfer ids are in the cleartext manifest: partner C reusing A's id must not block A's package."""
    import io
    import os

    from laxchange.errors import SecurityError
    from laxchange.exchange.party import open_from
    from laxchange.package import read_manifest

    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    a = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    b = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock)
    c = make_party(tmp_path, "LA:920", "Other Council (fictional)", clock)
    for x, y in [(a, b), (b, a), (c, b), (b, c)]:
        x.trust(y)
    genuine = a.pack(record(1), "URN:123456")
    stolen_id = read_manifest(io.BytesIO(genuine))[0].transfer_id
    first = [bytes.fromhex(stolen_id)]  # the transfer id is the first 16 random bytes pack draws
    copycat = c.pack(record(2), "URN:123456", random=lambda n: first.pop() if first else os.urandom(n))
    assert read_manifest(io.BytesIO(copycat))[0].transfer_id == stolen_id

    for name, data in [("copycat.lax", copycat), ("genuine.lax", genuine)]:
        (tmp_path / name).write_bytes(data)
        opened = open_from(b.home, tmp_path / name, out=tmp_path / f"{name}.json", store=b.store,
                           directory=b.directory, clock=clock)
        assert opened.manifest.transfer_id == stolen_id
    with pytest.raises(SecurityError) as exc:
        open_from(b.home, tmp_path / "genuine.lax", out=tmp_path / "again.json", store=b.store,
                  directory=b.directory, clock=clock)
    assert exc.value.code == "package.replayed"
    with Ledger(b.home.ledger_db) as ledger:
        assert {t.party for t in ledger.transfers(direction="in")} == {"LA:919", "LA:920"}


def test_audit_entries_of_some_transfers_are_those_of_the_whole_log_filtered(tmp_path: Path) -> None:
    """`audit_entries(transfer_ids=...)` (chosen by SQLite, or in Python past the statement's limit)
    gives exactly the whole log's entries naming those transfers, in order."""
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=FixedClock(dt.datetime(2026, 11, 24, tzinfo=dt.UTC)))
    tids = [f"{k:032x}" for k in range(12)]
    for k, tid in enumerate(tids):
        ledger.advance("out", tid, f"URN:{100000 + k % 3}", "queued", message_type="pep-transfer")
        if k % 2:
            ledger.advance("out", tid, f"URN:{100000 + k % 3}", "sent")
    events = {"out.queued", "out.sent"}
    full = ledger.audit_entries(events)
    many = {*tids[:3], *(f"{k:032x}" for k in range(10**4, 2 * 10**4))}  # past the statement's limit
    for wanted in ({tids[1], tids[4], tids[7]}, set(), {"f" * 32}, many):
        got = ledger.audit_entries(events, transfer_ids=wanted)
        assert got == [e for e in full if e["data"]["transfer_id"] in wanted]
    assert [e["event"] for e in ledger.audit_entries(events, transfer_ids={tids[1]})] == ["out.queued", "out.sent"]


def test_counts_are_those_of_every_transfer_counted_in_listing_order(tmp_path: Path) -> None:
    """`counts()` (by SQLite) is what counting `transfers()` one by one gives, each level in the
    order of its first transfer."""
    clock = FixedClock(dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=clock)
    assert ledger.counts() == {}
    for k in range(30):
        who = f"URN:{100000 + (k * 7) % 4}"
        tid = f"{(k * 37) % 101:032x}"
        if k % 3:
            ledger.advance("out", tid, who, "queued", message_type="pep-transfer")
            if k % 2:
                ledger.advance("out", tid, who, "sent")
        else:
            ledger.advance("in", tid, who, *IMPORT_PATH, message_type="pep-transfer")
        if k % 5 == 0:
            clock.advance(seconds=1)
    expected: dict[str, dict[str, dict[str, int]]] = {}
    for t in ledger.transfers():
        by_state = expected.setdefault(t.party, {}).setdefault(t.direction, {})
        by_state[t.state] = by_state.get(t.state, 0) + 1
    got = ledger.counts()
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # the same order at every level
