"""pack and open as a new user runs them: no silent overwrite, --type optional, an education
record wrapped in its message, a file that is not a package refused without being copied, and
the README's commands working exactly as written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from laxchange import samples
from laxchange._util import jsonio
from laxchange.errors import UsageError
from laxchange.exchange import open_from, pack_to
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from laxchange.models import messages
from tests.support.parties import PASSPHRASE, REPO
from tests.unit.cli.test_package_cmd import homes, init, run

__all__ = ["homes"]  # the fixture, imported for its side effect


def _pack(home: Path, *args: str):
    return run("--home", str(home), "--json", "pack", *args)


def _events(home: Path) -> list[str]:
    with Ledger(Home(home).ledger_db) as ledger:
        return [e["event"] for e in ledger.audit_entries()]


# --- item 12: silent overwrites --------------------------------------------------------------

def test_pack_and_open_refuse_to_overwrite_without_force(homes):
    tmp, a, b, _c = homes
    (tmp / "exists.lax").write_bytes(b"precious")
    r = _pack(a, str(tmp / "record.json"), "--to", "URN:123456", "-o", str(tmp / "exists.lax"))
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "output.exists"
    assert "exists.lax" in json.loads(r.output)["message"] and "--force" in json.loads(r.output)["hint"]
    assert (tmp / "exists.lax").read_bytes() == b"precious"
    r = _pack(a, str(tmp / "record.json"), "--to", "URN:123456", "-o", str(tmp / "exists.lax"), "--force")
    assert r.exit_code == 0, r.output

    (tmp / "got.json").write_text("mine")
    r = run("--home", str(b), "--json", "open", str(tmp / "out.lax"), "-o", str(tmp / "got.json"))
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "output.exists"
    assert (tmp / "got.json").read_text() == "mine"
    assert _events(b) == [], "refused before anything was read or reserved"
    r = run("--home", str(b), "open", str(tmp / "out.lax"), "-o", str(tmp / "got.json"), "--force")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp / "got.json").read_text()) == json.loads((tmp / "record.json").read_text())


def test_an_output_in_a_missing_folder_is_a_clear_usage_error(homes):
    """Issue 10 #4: `open -o DIR/out.json` with no DIR was exit 70 (FileNotFoundError on the temp file)."""
    tmp, a, b, _c = homes
    r = run("--home", str(b), "--json", "open", str(tmp / "out.lax"), "-o", str(tmp / "nodir" / "out.json"))
    out = json.loads(r.output)
    assert r.exit_code == 2 and out["error"] == "output.no-folder" and "nodir" in out["message"]
    assert "mkdir" in out["hint"] and not (tmp / "nodir").exists()
    assert _events(b) == [], "refused before anything was read or reserved"
    r = _pack(a, str(tmp / "record.json"), "--to", "URN:123456", "-o", str(tmp / "nodir" / "x.lax"))
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "output.no-folder"


def test_pack_and_open_never_write_onto_an_input_even_with_force(homes):
    tmp, a, b, _c = homes
    rec = tmp / "record.json"
    before = rec.read_bytes()
    os.link(rec, tmp / "alias.json")  # another name for the same file counts too
    att = tmp / "report.pdf"
    att.write_bytes(b"%PDF fictional")
    for target in (rec, tmp / "alias.json", att):
        r = _pack(a, str(rec), "--to", "URN:123456", "--attach", str(att), "-o", str(target), "--force")
        assert r.exit_code == 2 and json.loads(r.output)["error"] == "output.is-input", r.output
        assert str(target) in json.loads(r.output)["message"]
    assert rec.read_bytes() == before and att.read_bytes() == b"%PDF fictional"

    pkg = tmp / "out.lax"
    data = pkg.read_bytes()
    r = run("--home", str(b), "--json", "open", str(pkg), "-o", str(pkg), "--force")
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "output.is-input"
    assert pkg.read_bytes() == data and _events(b) == []


def test_library_pack_and_open_refuse_to_overwrite_unless_asked(homes, monkeypatch):
    tmp, a, b, _c = homes
    monkeypatch.setenv("LAXCHANGE_PASSPHRASE", PASSPHRASE.decode())
    doc = jsonio.load_file(tmp / "record.json")
    with pytest.raises(UsageError) as exc:
        pack_to(Home(a), doc, recipient="URN:123456", out=tmp / "out.lax")
    assert exc.value.code == "output.exists"
    pack_to(Home(a), doc, recipient="URN:123456", out=tmp / "out.lax", overwrite=True)
    (tmp / "x.json").write_text("{}")
    with pytest.raises(UsageError):
        open_from(Home(b), tmp / "out.lax", out=tmp / "x.json")
    assert open_from(Home(b), tmp / "out.lax", out=tmp / "x.json", overwrite=True).document == doc


# --- item 13: --type is optional and a check; an education record is wrapped ----------------

def test_type_is_optional_and_a_mismatch_says_what_the_document_is(homes):
    tmp, a, _b, _c = homes
    r = _pack(a, str(tmp / "record.json"), "--to", "URN:123456", "-o", str(tmp / "p1.lax"))
    assert r.exit_code == 0 and json.loads(r.output)["schema"] == f"pep-transfer@{messages.VERSION}"
    r = _pack(a, str(tmp / "record.json"), "--type", "placement-notification", "--to", "URN:123456",
              "-o", str(tmp / "p2.lax"))
    err = json.loads(r.output)
    assert r.exit_code == 2 and err["error"] == "pack.type-mismatch"
    assert f"is a pep-transfer@{messages.VERSION}, not a placement-notification" in err["message"]
    assert "drop --type" in err["hint"] and not (tmp / "p2.lax").exists()


def test_an_education_record_is_wrapped_in_the_requested_message(homes):
    tmp, a, b, _c = homes
    rec = samples.education_record(3)
    (tmp / "edu.json").write_text(json.dumps(rec))
    r = _pack(a, str(tmp / "edu.json"), "--type", "pep-transfer", "--to", "URN:123456", "-o", str(tmp / "w.lax"))
    err = json.loads(r.output)
    assert r.exit_code == 2 and err["error"] == "pack.reason-missing" and "--reason" in err["hint"]
    assert "new-placement" in err["hint"] and not (tmp / "w.lax").exists()

    for kind in ("pep-transfer", "placement-notification"):
        r = _pack(a, str(tmp / "edu.json"), "--type", kind, "--reason", "school-change", "--message", "Hello",
                  "--to", "URN:123456", "-o", str(tmp / f"{kind}.lax"))
        assert r.exit_code == 0, r.output
        r = run("--home", str(b), "--json", "open", str(tmp / f"{kind}.lax"), "-o", str(tmp / f"{kind}.json"))
        assert r.exit_code == 0, r.output
        got = json.loads((tmp / f"{kind}.json").read_text())
        assert got["record"] == rec and got["message"] == "Hello"
        assert got["schema"].endswith(f"/{kind}/{messages.VERSION}")
        if kind == "pep-transfer":
            assert got["transfer_reason"] == "school-change" and got["sent_by"] == rec["pep"]["vsh_contact"]
        else:
            assert got["reason"] == "school-change" and got["recipients"] == ["URN:123456"]
            assert (got["placing_la"], got["host_la"], got["placement_start"]) == (
                rec["placement"]["placing_la"], rec["placement"]["host_la"], rec["placement"]["placement_start"])
            assert re.fullmatch(r"[0-9a-f]{32}", got["notification_id"])

    r = _pack(a, str(tmp / "record.json"), "--reason", "new-placement", "--to", "URN:123456", "-o",
              str(tmp / "r.lax"))
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "pack.type-mismatch"


def test_the_readme_pack_and_open_commands_work_as_written(tmp_path, monkeypatch):
    block = (REPO / "README.md").read_text().split("## Keys, partners and packages", 1)[1].split("```sh", 1)[1]
    lines = [ln.split("  #", 1)[0].strip() for ln in block.split("```", 1)[0].splitlines()]
    pack = next(ln for ln in lines if ln.startswith("laxchange --home A pack "))
    opener = next(ln for ln in lines if ln.startswith("laxchange --home B open "))
    monkeypatch.chdir(tmp_path)
    fa = init(tmp_path / "A", "LA:919", "Example Council")
    fb = init(tmp_path / "B", "URN:123456", "Example School")
    assert run("--home", "A", "partners", "add", "B-card.json", "--fingerprint", fb).exit_code == 0
    assert run("--home", "B", "partners", "add", "A-card.json", "--fingerprint", fa).exit_code == 0
    r = run("sample", "education-record", "--seed", "7", "-o", "record.json")  # as the README makes one
    assert r.exit_code == 0, r.output
    before = Path("record.json").read_bytes()
    for line in (pack, opener):
        r = run(*shlex.split(line)[1:])
        assert r.exit_code == 0, (line, r.output)
    assert Path("record.json").read_bytes() == before
    got = json.loads(Path(shlex.split(opener)[-1]).read_text())
    assert got["record"] == json.loads(before)


# --- item 15: a file that is not a package ---------------------------------------------------

def test_opening_a_plain_record_is_a_usage_error_and_nothing_is_copied(homes):
    tmp, _a, b, _c = homes
    rec = tmp / "record.json"
    before = rec.read_bytes()
    r = run("--home", str(b), "--json", "open", str(rec), "-o", str(tmp / "o.json"))
    err = json.loads(r.output)
    assert r.exit_code == 2 and err["error"] == "package.not-a-package"
    assert str(rec) in err["message"] and "not a laxchange package" in err["message"]
    assert rec.read_bytes() == before and not (tmp / "o.json").exists()
    quarantine = Home(b).quarantine
    assert not quarantine.exists() or not list(quarantine.iterdir()), "never copied into quarantine"
    assert _events(b) == []


def test_a_non_package_in_the_inbox_is_moved_to_quarantine(homes):
    tmp, _a, b, _c = homes
    inbox = Home(b).inbox
    inbox.mkdir(parents=True, exist_ok=True)
    junk = inbox / "junk.lax"
    junk.write_bytes(b"hello, not a package\n")
    r = run("--home", str(b), "--json", "open", str(junk), "-o", str(tmp / "o.json"))
    err = json.loads(r.output)
    assert r.exit_code == 2 and err["error"] == "package.not-a-package"
    assert not junk.exists() and Path(err["details"]["quarantined"]).read_bytes() == b"hello, not a package\n"
    assert _events(b) == ["in.quarantined"]


def test_a_quarantined_file_whose_record_was_never_written_is_still_listed(homes):
    """A run stopped between moving a package into quarantine and writing why leaves the file alone:
    `quarantine list` shows it (reason unrecorded, with its hash and what to do), never hides it."""
    tmp, _a, b, _c = homes
    inbox = Home(b).inbox
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "junk.lax").write_bytes(b"hello, not a package\n")
    run("--home", str(b), "--json", "open", str(inbox / "junk.lax"), "-o", str(tmp / "o.json"))
    [kept] = Home(b).quarantine.glob("*.lax")
    stray = kept.with_name("20261203T120000Z-0badcafe.lax")
    stray.write_bytes(b"moved in, then the run was stopped\n")  # no .json beside it
    listed = json.loads(run("--home", str(b), "--json", "quarantine", "list").output)["quarantined"]
    assert [(Path(q["path"]).name, q["reason"]) for q in listed] == [
        (stray.name, "reason.unrecorded"), (kept.name, "package.not-a-package")]
    assert listed[0]["sha256"] == hashlib.sha256(stray.read_bytes()).hexdigest() and "inspect" in listed[0]["note"]
    assert listed[0]["quarantined_at"] == "2026-12-03T12:00:00Z", "when it was moved in (its name), not collected"
    text = run("--home", str(b), "quarantine", "list").output
    assert stray.name in text and "reason.unrecorded" in text
