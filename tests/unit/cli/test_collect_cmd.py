"""Issue 9 #8: `collect` reported our own id as the sender and wrote nothing to the ledger or audit.
The sender it names is the sub-folder's party (untrusted until the package is opened), and each
collected file leaves an audit note with ids and hashes only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from laxchange.cli import main
from laxchange.ledger.db import Ledger
from tests.support.parties import PASSPHRASE, make_party

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "LAXCHANGE_PASSPHRASE_FILE": ""}
TID = "ab" * 16


def _school_with_a_delivery(tmp_path: Path) -> tuple[Path, bytes]:
    school = make_party(tmp_path, "URN:123456", "Example School")
    drop = tmp_path / "drop"
    (drop / "LA_919").mkdir(parents=True)
    data = b"LAXCHANGE/1 a fictional package\n"
    (drop / "LA_919" / f"{TID}.lax").write_bytes(data)
    r = CliRunner().invoke(main, ["--home", str(school.home.root), "endpoints", "add", "URN:123456",
                                  f"file://{drop}"], env=ENV)
    assert r.exit_code == 0, r.output
    return school.home.root, data


def test_collect_names_the_senders_folder_not_our_own_id(tmp_path: Path) -> None:
    home, _ = _school_with_a_delivery(tmp_path)
    r = CliRunner().invoke(main, ["--home", str(home), "collect"], env=ENV)
    assert r.exit_code == 0, r.output
    assert f"collected {TID}.lax" in r.output and "delivered into LA:919's folder" in r.output
    assert "from URN:123456" not in r.output, "our own id is not the sender"


def test_collect_json_says_whose_folder_each_file_was_in(tmp_path: Path) -> None:
    home, _ = _school_with_a_delivery(tmp_path)
    r = CliRunner().invoke(main, ["--home", str(home), "--json", "collect"], env=ENV)
    assert r.exit_code == 0, r.output
    [party] = json.loads(r.stdout)["parties"]
    [f] = party["files"]
    assert (f["name"], f["folder"], f["sender_folder_of"]) == (f"{TID}.lax", "LA_919", "LA:919")


def test_collect_leaves_an_audit_note_with_ids_only(tmp_path: Path) -> None:
    home, data = _school_with_a_delivery(tmp_path)
    r = CliRunner().invoke(main, ["--home", str(home), "collect"], env=ENV)
    assert r.exit_code == 0, r.output
    with Ledger(home / "ledger.sqlite3") as ledger:
        notes = [e["data"] for e in ledger.audit_entries() if e["event"] == "collect.fetched"]
        assert ledger.verify_audit() == []
    assert notes == [{"drop_folder_of": "URN:123456", "delivered_into_folder_of": "LA:919",
                      "claimed_transfer_id": TID, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]
