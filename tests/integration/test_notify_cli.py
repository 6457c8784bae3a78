"""`laxchange notify-placement` / `notify-exclusion` as a VSH and a Designated Teacher run them.

Three homes (placing VSH, host virtual school, school) with drop folders on the local-folder
transport; the VSH notifies, each receiver opens what arrived and sees only its profile's fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from laxchange import samples
from laxchange._util import jsonio
from laxchange.cli import main
from laxchange.exchange.notify import PROFILES, apply_profile
from laxchange.ledger.db import Ledger
from laxchange.models import messages
from tests.support.parties import PASSPHRASE, make_party

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def lax(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], env=ENV)


def _homes(tmp: Path) -> tuple[dict[str, Any], dict[str, Path], dict[str, str], Path]:
    rec = samples.education_record(21)
    p = rec["placement"]
    parties = {"vsh": f"LA:{p['placing_la']}", "host": f"LA:{p['host_la']}", "school": f"URN:{rec['school']['urn']}"}
    made = {slug: make_party(tmp / "homes", party, f"{slug} (fictional)") for slug, party in parties.items()}
    for a in made.values():
        for b in made.values():
            if a is not b:
                a.trust(b)
    homes = {slug: m.home.root for slug, m in made.items()}
    drops = tmp / "drops"
    for slug, party in parties.items():
        (drops / slug).mkdir(parents=True)
        for other in homes.values():  # every home sends to `slug` through the local-folder transport
            r = lax(other, "endpoints", "add", party, f"file://{drops / slug}")
            assert r.exit_code == 0, r.output
    path = tmp / "record.json"
    path.write_text(json.dumps(rec))
    return rec, homes, parties, path


def test_notify_placement_delivers_each_recipient_its_profile_only(tmp_path: Path) -> None:
    rec, homes, parties, record = _homes(tmp_path)
    pdf = tmp_path / "Signed PEP autumn 2026 (final).pdf"
    pdf.write_bytes(b"%PDF-1.4 fictional signed PEP\n")
    r = lax(homes["vsh"], "--json", "notify-placement", str(record), "--to", parties["host"], "--to",
            parties["school"], "--reason", "new-placement", "--purpose", "statutory duty: new placement",
            "--attach", str(pdf))
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    sent = {p["recipient"]: p for p in out["packages"]}
    assert {p["state"] for p in sent.values()} == {"sent"}
    for slug in ("host", "school"):
        tid = sent[parties[slug]]["transfer_id"]
        assert sorted(x.name for x in (tmp_path / "drops" / slug).iterdir()) == [f"{tid}.lax"]
    # the host virtual school opens the notification: only its profile's fields
    host_pkg = next((tmp_path / "drops" / "host").iterdir())
    got = tmp_path / "host.json"
    r = lax(homes["host"], "open", str(host_pkg), "-o", str(got))
    assert r.exit_code == 0, r.output
    note = jsonio.load_file(got)
    assert note["schema"] == messages.PLACEMENT_NOTIFICATION_ID
    assert note["record"] == apply_profile(rec, PROFILES["host-virtual-school"])
    assert "attainment" not in note["record"] and "carer" not in note["record"]["contacts"]
    assert rec["pep"]["child_voice"] not in got.read_text()
    # the school opens the PEP, with the attachment under its sanitised name and the real name kept
    school_pkg = next((tmp_path / "drops" / "school").iterdir())
    got = tmp_path / "school.json"
    r = lax(homes["school"], "open", str(school_pkg), "-o", str(got), "--attachments-dir", str(tmp_path / "att"))
    assert r.exit_code == 0, r.output
    pep = jsonio.load_file(got)
    assert pep["record"] == apply_profile(rec, PROFILES["designated-teacher"])
    assert "category_of_need" not in pep["record"]["placement"]
    assert pep["attachments"][0]["description"] == f"original file name: {pdf.name}"
    assert (tmp_path / "att" / "Signed_PEP_autumn_2026_final.pdf").read_bytes() == pdf.read_bytes()
    with Ledger(homes["vsh"] / "ledger.sqlite3") as ledger:
        assert {t.party: t.state for t in ledger.transfers(direction="out")} == {
            parties["host"]: "sent", parties["school"]: "sent"}
        assert ledger.verify_audit() == []


def test_misdirected_and_queue_only(tmp_path: Path) -> None:
    _rec, homes, parties, record = _homes(tmp_path)
    r = lax(homes["vsh"], "notify-placement", str(record), "--to", "URN:900001", "--reason", "school-change",
            "--purpose", "p")
    assert r.exit_code == 1 and "school.urn" in r.output and "Traceback" not in r.output
    r = lax(homes["vsh"], "notify-placement", str(record), "--to", parties["vsh"], "--reason", "school-change",
            "--purpose", "p")
    assert r.exit_code == 1 and "placement.host_la" in r.output
    assert not (homes["vsh"] / "outbox").exists() or not list((homes["vsh"] / "outbox").iterdir())
    r = lax(homes["vsh"], "notify-placement", str(record), "--to", parties["school"], "--reason", "school-change",
            "--purpose", "school change", "--queue-only")
    assert r.exit_code == 0, r.output
    assert "queued in" in r.output
    queued = list((homes["vsh"] / "outbox").iterdir())
    assert len(queued) == 1 and len(queued[0].stem) == 32 and queued[0].suffix == ".lax"
    assert list((tmp_path / "drops" / "school").iterdir()) == []
    r = lax(homes["vsh"], "send", str(queued[0]), "--to", parties["school"])  # what the nightly run will do
    assert r.exit_code == 0, r.output


def test_notify_exclusion_from_the_received_pep(tmp_path: Path) -> None:
    rec, homes, parties, record = _homes(tmp_path)
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"kind": "suspension", "start_date": "2026-11-20", "sessions": 4,
                                 "reason_code": "PD", "notified_parents_carers": True}))
    r = lax(homes["school"], "notify-exclusion", str(record), "--facts", str(facts), "--to", parties["host"])
    assert r.exit_code == 0, r.output
    assert "not the record's responsible council" in r.output
    r = lax(homes["school"], "--json", "notify-exclusion", str(record), "--facts", str(facts), "--sessions", "6")
    assert r.exit_code == 0, r.output
    pkg = next((tmp_path / "drops" / "vsh").iterdir())
    got = tmp_path / "ex.json"
    assert lax(homes["vsh"], "open", str(pkg), "-o", str(got)).exit_code == 0
    doc = jsonio.load_file(got)
    assert doc["exclusion"]["sessions"] == 6 and doc["responsible_la"] == rec["placement"]["placing_la"]
    r = lax(homes["school"], "notify-exclusion", "--facts", str(facts), "--given-name", "Pip")
    assert r.exit_code == 2 and "--date-of-birth" in r.output


def test_notify_placement_packages_carry_the_vsh_checkpoint_to_partners_that_read_it(tmp_path: Path) -> None:
    """docs/format.md §4.1: every package's statement, not only `pack`'s, carries the sender's latest checkpoint."""
    _, homes, parties, record = _homes(tmp_path)
    made = json.loads(lax(homes["vsh"], "--json", "audit", "checkpoint").output)
    r = lax(homes["vsh"], "notify-placement", str(record), "--to", parties["school"], "--reason", "new-placement",
            "--purpose", "statutory duty: new placement")
    assert r.exit_code == 0, r.output
    school_pkg = next((tmp_path / "drops" / "school").iterdir())
    assert lax(homes["school"], "open", str(school_pkg), "-o", str(tmp_path / "pep.json")).exit_code == 0
    r = lax(homes["school"], "audit", "held", parties["vsh"], "-o", str(tmp_path / "held.note"))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "held.note").read_text() == made["note"]
