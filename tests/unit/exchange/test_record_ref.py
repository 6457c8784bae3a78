"""Issue 9 #8: "what did we share about this child, and with whom?" — every transfer row and audit
entry carries the message type and a pseudonymous record reference (the record's random
`record_id`), and `status` / `audit list` filter on it; the ledger never holds the child's name,
UPN or date of birth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange import samples
from laxchange.cli import main
from laxchange.exchange import Party
from laxchange.exchange.endpoints import ConfigEndpoints
from laxchange.ledger.db import Ledger
from laxchange.models.wrap import record_ref
from laxchange.transport import Endpoint
from tests.support.parties import Party as SupportParty
from tests.support.parties import make_party, passphrase


def _pair(tmp: Path) -> tuple[SupportParty, SupportParty, dict[str, Any]]:
    rec = samples.education_record(11)
    vsh = make_party(tmp, f"LA:{rec['placement']['placing_la']}", "Placing VS")
    school = make_party(tmp, f"URN:{rec['school']['urn']}", "School", vsh.clock)
    vsh.trust(school)
    school.trust(vsh)
    (tmp / "drop").mkdir()
    ConfigEndpoints(vsh.home).add(Endpoint(school.party, f"file://{tmp / 'drop'}"))
    return vsh, school, rec


def _me(p: SupportParty) -> Party:
    return Party.from_home(p.home, passphrase=passphrase, clock=p.clock, keystore=p.store, directory=p.directory)


def _share(tmp: Path) -> tuple[SupportParty, SupportParty, dict[str, Any], str]:
    vsh, school, rec = _pair(tmp)
    with _me(vsh) as me:
        packed = me.pack(rec, message_type="pep-transfer", recipient=school.party, out=tmp / "pep.lax",
                         reason="new-placement")
        assert me.send(school.party, [tmp / "pep.lax"]).ok
    [arrived] = (tmp / "drop").rglob("*.lax")
    with _me(school) as me:
        me.open(arrived, out=tmp / "got.json")
    return vsh, school, rec, packed.manifest.transfer_id


def _personal(rec: dict[str, Any]) -> list[str]:
    child = rec["child"]
    found = [child["legal_name"]["family"], child["legal_name"]["given"], child["date_of_birth"]]
    return [*found, *([child["upn"]] if child.get("upn") else [])]


def test_transfers_and_audit_entries_carry_message_type_and_record_ref(tmp_path: Path) -> None:
    vsh, school, rec, tid = _share(tmp_path)
    ref = rec["record_id"]
    with Ledger(vsh.home.ledger_db) as ledger:
        [out] = ledger.transfers()
        events = {e["event"]: e["data"] for e in ledger.audit_entries()}
    assert (out.state, out.message_type, out.record_ref) == ("sent", "pep-transfer", ref)
    for event in ("out.queued", "out.sent"):
        assert events[event]["record_ref"] == ref and events[event]["message_type"] == "pep-transfer", event
    with Ledger(school.home.ledger_db) as ledger:
        [got] = ledger.transfers()
        entries = ledger.audit_entries()
    assert (got.transfer_id, got.state, got.message_type, got.record_ref) == (tid, "imported", "pep-transfer", ref)
    imported = [e["data"] for e in entries if e["event"] == "in.imported"]
    assert imported and imported[0]["record_ref"] == ref


def test_the_ledger_files_hold_no_name_upn_or_date_of_birth(tmp_path: Path) -> None:
    vsh, school, rec, _ = _share(tmp_path)
    personal = _personal(rec)
    assert len(personal) >= 3
    for p in (vsh, school):
        for f in p.home.ledger_db.parent.glob(p.home.ledger_db.name + "*"):  # the database and any journal
            data = f.read_bytes()
            for value in personal:
                assert value.encode() not in data, f"{value!r} in {f}"


def test_the_record_ref_is_only_ever_a_record_id() -> None:
    rec = samples.education_record(3)
    assert record_ref(rec) == rec["record_id"] and record_ref({"record": rec}) == rec["record_id"]
    assert record_ref({"record_id": "Jane Doe"}) is None and record_ref({"record": {"record_id": 7}}) is None
    assert record_ref("not a document") is None and record_ref({"schema": "receipt"}) is None


def _cli(home: Path, *args: str) -> Any:
    r = CliRunner().invoke(main, ["--home", str(home), "--json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_status_answers_what_we_shared_about_a_child_and_with_whom(tmp_path: Path) -> None:
    vsh, school, rec, tid = _share(tmp_path)
    ref, home = rec["record_id"], vsh.home.root
    [row] = _cli(home, "status", "--record", ref)["transfers"]
    assert (row["transfer_id"], row["party"], row["message_type"], row["record_ref"]) == (
        tid, school.party, "pep-transfer", ref)
    assert _cli(home, "status", "--record", "0" * 32)["transfers"] == []
    assert len(_cli(home, "status", "--party", school.party)["transfers"]) == 1
    assert _cli(home, "status", "--party", "LA:999")["transfers"] == []
    sent_at = dt.datetime.fromisoformat(row["updated"].replace("Z", "+00:00"))
    assert len(_cli(home, "status", "--since", sent_at.date().isoformat())["transfers"]) == 1
    assert _cli(home, "status", "--since", (sent_at + dt.timedelta(seconds=1)).isoformat())["transfers"] == []
    # the test clock sent it on 2026-11-24; the CLI's clock is the real one, days later
    assert [t["transfer_id"] for t in _cli(home, "status", "--overdue")["transfers"]] == [tid]
    assert _cli(school.home.root, "status", "--overdue")["transfers"] == [], "only outbound transfers are overdue"
    text = CliRunner().invoke(main, ["--home", str(home), "status", "--record", ref])
    assert text.exit_code == 0 and "pep-transfer" in text.output and ref in text.output
    entries = _cli(home, "audit", "list", "--record", ref)["entries"]
    assert [e["event"] for e in entries] == ["out.queued", "out.sent"]
    none = CliRunner().invoke(main, ["--home", str(home), "audit", "list", "--record", "0" * 32])
    assert none.exit_code == 0 and "no audit entries about that record" in none.output


@pytest.mark.parametrize(("args", "code"), [
    (["status", "--party", "URN:99431"], "party.invalid"),  # a digit short: it used to match nothing, exit 0
    (["status", "--party", "urn:994311"], "party.invalid"),
    (["status", "--record", "Nell"], "usage.bad-value"),  # a name where the pseudonymous ref goes
    (["audit", "list", "--record", "97c48dd2"], "usage.bad-value"),  # a prefix
])
def test_a_mistyped_filter_is_refused_not_answered_with_nothing(tmp_path: Path, args: list[str], code: str) -> None:
    vsh, _school, _rec = _pair(tmp_path)
    r = CliRunner().invoke(main, ["--home", str(vsh.home.root), "--json", *args])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == code, r.output


def test_status_since_refuses_what_is_not_a_date(tmp_path: Path) -> None:
    vsh, _school, _rec = _pair(tmp_path)
    r = CliRunner().invoke(main, ["--home", str(vsh.home.root), "--json", "status", "--since", "last tuesday"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "usage.bad-value"
    assert "last tuesday" in json.loads(r.output)["message"]


def test_overdue_is_sent_48_hours_ago_without_a_receipt(tmp_path: Path) -> None:
    vsh, school, _rec, tid = _share(tmp_path)
    with Ledger(vsh.home.ledger_db, clock=vsh.clock) as ledger:
        assert ledger.overdue() == []
        vsh.clock.advance(hours=48)
        assert [t.transfer_id for t in ledger.overdue()] == [tid]
        assert [t.transfer_id for t in ledger.transfers(overdue=True)] == [tid]
        ledger.advance("out", tid, school.party, "delivered")
        assert ledger.overdue() == []
