"""The whole exchange over a real OpenSSH sshd: cards carry the endpoint, nothing is configured twice.

A council packs a PEP for a school, sends it to the drop folder named on the school's verified
card (host key pinned from the card), the school collects from its own drop folder and opens
the package. A package addressed to someone else is not sent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from click.testing import CliRunner

from laxchange.cli import main
from laxchange.clock import FixedClock
from tests.support.parties import PASSPHRASE, make_party, record
from tests.support.sshd import Sshd

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def lax(home: Path, *args: str) -> object:
    return CliRunner().invoke(main, ["--home", str(home), *args], env=ENV)


def test_pack_send_collect_open_over_sshd(tmp_path: Path, sshd: Sshd) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    drop = tmp_path / "school-drop"
    drop.mkdir()
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock,
                        sftp_url=sshd.url(drop), host_key_fingerprints=[sshd.fingerprint])
    council.trust(school)
    school.trust(council)
    for p in (council, school):  # both log in to the school's server with their laxchange SSH identity
        with sshd.authorized.open("a") as fh:
            fh.write(Path(str(p.home.ssh_client_key) + ".pub").read_text())

    doc = record(5)
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(doc))
    pkg = tmp_path / "out.lax"
    r = lax(council.home.root, "pack", str(src), "--type", "pep-transfer", "--to", "URN:123456", "-o", str(pkg))
    assert r.exit_code == 0, r.output

    wrong = lax(council.home.root, "send", str(pkg), "--to", "LA:920")
    assert wrong.exit_code == 2 and "addressed to URN:123456" in wrong.output
    assert os.listdir(drop) == []

    r = lax(council.home.root, "--json", "send", str(pkg), "--to", "URN:123456")
    assert r.exit_code == 0, r.output
    assert os.listdir(drop) == ["out.lax"]

    r = lax(school.home.root, "--json", "collect")
    assert r.exit_code == 0, r.output
    inbox_copy = school.home.inbox / "out.lax"
    assert inbox_copy.read_bytes() == pkg.read_bytes()
    assert os.listdir(drop / "processed") == ["out.lax"]

    out = tmp_path / "received.json"
    r = lax(school.home.root, "open", str(inbox_copy), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text()) == doc


def test_send_to_a_partner_without_an_endpoint_is_a_config_error(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock)
    council.trust(school)
    pkg = tmp_path / "x.lax"
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(record(2)))
    assert lax(council.home.root, "pack", str(src), "--type", "pep-transfer", "--to", "URN:123456",
               "-o", str(pkg)).exit_code == 0
    r = lax(council.home.root, "send", str(pkg), "--to", "URN:123456")
    assert r.exit_code == 5 and "no SFTP endpoint on its card" in r.output and "Traceback" not in r.output


def test_a_tampered_package_is_quarantined_not_deleted(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock)
    council.trust(school)
    school.trust(council)
    data = bytearray(council.pack(record(3), "URN:123456"))
    data[-100] ^= 0x01
    school.home.inbox.mkdir(parents=True, exist_ok=True)
    inbox_pkg = school.home.inbox / "incoming.lax"
    inbox_pkg.write_bytes(bytes(data))
    elsewhere = tmp_path / "copy.lax"
    elsewhere.write_bytes(bytes(data))
    out = tmp_path / "never.json"

    r = lax(school.home.root, "--json", "open", str(elsewhere), "-o", str(out))
    assert r.exit_code == 3 and "Traceback" not in r.output
    err = json.loads(r.output)
    assert err["error"] == "package.tampered" and "quarantined" not in err.get("details", {})
    assert "left where it is" in err["message"]
    assert elsewhere.read_bytes() == bytes(data), "a file outside the inbox is left where it is"
    assert not school.home.quarantine.exists() or not list(school.home.quarantine.iterdir()), "and never copied"

    r = lax(school.home.root, "--json", "open", str(inbox_pkg), "-o", str(out))
    assert r.exit_code == 3
    err = json.loads(r.output)
    assert err["ok"] is False and Path(err["details"]["quarantined"]).read_bytes() == bytes(data)
    assert not inbox_pkg.exists(), "an inbox package is moved so the next run does not retry it"
    assert not out.exists()

    listed = json.loads(lax(school.home.root, "--json", "quarantine", "list").output)["quarantined"]
    assert len(listed) == 1 and {q["exit_code"] for q in listed} == {3}
    assert all(Path(q["path"]).stat().st_mode & 0o077 == 0 for q in listed)
    assert all("incoming" not in q["path"] and "copy" not in q["path"] for q in listed)
    events = [(e["event"], e["data"].get("reason"), e["data"].get("quarantine"))
              for e in json.loads(lax(school.home.root, "--json", "audit", "list").output)["entries"]]
    assert [(ev, why) for ev, why, _ in events] == [("in.received", None), ("in.quarantined", "package.tampered"),
                                                    ("in.received", None), ("in.quarantined", "package.tampered")]
    assert events[1][2] is None and events[3][2] == Path(listed[0]["path"]).name


def test_quarantine_record_holds_no_personal_data(tmp_path: Path) -> None:
    """A genuine package whose record fails validation: the sidecar keeps paths and rules, not values."""
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock)
    council.trust(school)
    school.trust(council)
    doc = record(6)
    upn = doc["record"]["child"]["upn"]
    doc["record"]["child"]["upn"] = ("A" if upn[0] != "A" else "B") + upn[1:]
    data = council.pack(doc, "URN:123456", validate=False)  # a sender without validation
    school.home.inbox.mkdir(parents=True, exist_ok=True)
    pkg = school.home.inbox / "bad.lax"  # only inbox files are quarantined
    pkg.write_bytes(data)
    r = lax(school.home.root, "--json", "open", str(pkg), "-o", str(tmp_path / "x.json"))
    assert r.exit_code == 1
    sidecar = Path(json.loads(r.output)["details"]["quarantined"]).with_suffix(".json").read_text()
    assert "upn.check-letter" in sidecar and "$.record.child.upn" in sidecar
    family = doc["record"]["child"]["legal_name"]["family"]
    assert doc["record"]["child"]["upn"] not in sidecar and family not in sidecar
    assert doc["record"]["child"]["date_of_birth"] not in sidecar
    listing = lax(school.home.root, "quarantine", "list").output
    assert "upn.check-letter" in listing and doc["record"]["child"]["upn"] not in listing


def test_pack_with_an_unknown_type_is_a_usage_error(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    council = make_party(tmp_path, "LA:919", "Example Council (fictional)", clock)
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(record(2)))
    r = lax(council.home.root, "pack", str(src), "--type", "pep-transfr", "--to", "URN:123456",
            "-o", str(tmp_path / "x.lax"))
    assert r.exit_code == 2 and "unknown message type" in r.output and "pep-transfer" in r.output
    assert not (tmp_path / "x.lax").exists()
