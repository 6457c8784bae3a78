"""The acceptance scenario through the CLI, as a new user would run it (exit codes, no leftovers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange._util import jsonio
from tests.support.parties import PASSPHRASE, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "LAXCHANGE_PASSPHRASE_FILE": ""}


def run(*args: str, env: dict[str, str] | None = None):
    from laxchange.cli import main

    return CliRunner().invoke(main, list(args), env={**ENV, **(env or {})}, catch_exceptions=False)


def init(home: Path, party: str, name: str) -> str:
    r = run("--home", str(home), "init", "--party", party, "--name", name, "--kdf-work-factor", "10")
    assert r.exit_code == 0, r.output
    card = home.parent / f"{home.name}-card.json"
    r = run("--home", str(home), "keys", "export-card", "-o", str(card), "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)["fingerprint"]


@pytest.fixture()
def homes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    fa = init(a, "LA:919", "Example Council")
    fb = init(b, "URN:123456", "Example School")
    init(c, "LA:920", "Other Council")
    assert run("--home", str(a), "partners", "add", str(tmp_path / "b-card.json"), "--fingerprint", fb).exit_code == 0
    assert run("--home", str(b), "partners", "add", str(tmp_path / "a-card.json"), "--fingerprint", fa).exit_code == 0
    r = run("--home", str(c), "partners", "add", str(tmp_path / "a-card.json"), "--fingerprint", fa)
    assert r.exit_code == 0
    rec = tmp_path / "record.json"
    rec.write_text(jsonio.dumps_pretty(record(11)))
    r = run("--home", str(a), "pack", str(rec), "--type", "pep-transfer", "--to", "URN:123456", "-o",
            str(tmp_path / "out.lax"))
    assert r.exit_code == 0, r.output
    return tmp_path, a, b, c


def test_acceptance(homes):
    tmp, _a, b, c = homes
    r = run("--home", str(b), "open", str(tmp / "out.lax"), "-o", str(tmp / "got.json"))
    assert r.exit_code == 0, r.output
    assert (tmp / "got.json").read_bytes() == (tmp / "record.json").read_bytes()
    # C cannot open it.
    r = run("--home", str(c), "open", str(tmp / "out.lax"), "-o", str(tmp / "c.json"))
    assert r.exit_code == 3 and "not LA:920" in r.output and not (tmp / "c.json").exists()
    # A byte flipped anywhere: exit 3, no output.
    data = (tmp / "out.lax").read_bytes()
    for i in (0, 15, 200, len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[i] ^= 0x20
        (tmp / "bad.lax").write_bytes(bytes(bad))
        r = run("--home", str(b), "open", str(tmp / "bad.lax"), "-o", str(tmp / "bad.json"))
        if i < len(b"LAXCHANGE/1\n"):  # no format line: not a package at all
            assert r.exit_code == 2 and "not a laxchange package" in r.output, (i, r.output)
        else:
            assert r.exit_code == 3, (i, r.output)
            assert "package rejected" in r.output
        assert "Traceback" not in r.output
        assert not (tmp / "bad.json").exists()


def test_changed_key_card_refused(homes):
    tmp, a, b, _c = homes
    # Someone else publishes a card claiming to be LA:919.
    evil = tmp / "evil"
    fe = init(evil, "LA:919", "Example Council")
    r = run("--home", str(b), "partners", "add", str(tmp / "evil-card.json"))
    assert r.exit_code == 3 and "not signed by a key we trust" in r.output
    r = run("--home", str(b), "--json", "partners", "add", str(tmp / "evil-card.json"), "--fingerprint",
            json.loads(run("--home", str(a), "keys", "export-card", "--json").output)["fingerprint"])
    assert r.exit_code == 3 and json.loads(r.output)["error"] == "card.changed"
    assert fe  # the impostor's own fingerprint would be needed to replace the card deliberately


def test_inspect_json_and_json_errors(homes):
    tmp, _a, _b, c = homes
    r = run("inspect", str(tmp / "out.lax"), "--json")
    assert r.exit_code == 0
    info = json.loads(r.output)
    assert info["ok"] and info["manifest"]["recipient"] == "URN:123456"
    plain = tmp / "child8c.json"  # the file it cannot inspect is named: a walk-through's error did not say which
    plain.write_text('{"a": 1}')
    r = run("inspect", str(plain), "--json")
    assert r.exit_code == 2 and json.loads(r.output)["message"].startswith(f"{plain}: not a laxchange package")
    r = run("--home", str(c), "open", str(tmp / "out.lax"), "-o", str(tmp / "x.json"), "--json")
    out = json.loads(r.output)
    assert r.exit_code == 3 and out["error"] == "package.not-addressed-to-us" and out["exit_code"] == 3


def test_keys_list_rotate_revoke_and_partners(homes):
    tmp, a, b, _c = homes
    r = run("--home", str(a), "--json", "keys", "list")
    keys = json.loads(r.output)["keys"]
    assert len(keys) == 2 and all(k["status"] == "valid" for k in keys)
    r = run("--home", str(a), "keys", "rotate", "--kdf-work-factor", "10", "--json")
    assert r.exit_code == 0 and len(json.loads(r.output)["new_keys"]) == 2
    old_sign = next(k for k in keys if k["use"] == "signing")["kid"]
    r = run("--home", str(a), "keys", "revoke", old_sign, "--reason", "superseded")
    assert r.exit_code == 0, r.output
    r = run("--home", str(a), "keys", "revoke", old_sign, "--reason", "again")
    assert r.exit_code == 2
    r = run("--home", str(b), "--json", "partners", "list")
    assert [p["party"] for p in json.loads(r.output)["partners"]] == ["LA:919"]
    r = run("--home", str(b), "partners", "show", "LA:919")
    assert r.exit_code == 0 and "Fingerprint" in r.output
    assert run("--home", str(b), "partners", "remove", "LA:919").exit_code == 0
    r = run("--home", str(b), "open", str(tmp / "out.lax"), "-o", str(tmp / "y.json"))
    assert r.exit_code == 3 and "not in the partner directory" in r.output


def test_pack_invalid_record_exit_1(homes):
    tmp, a, _b, _c = homes
    doc = record(12)
    doc["surprise"] = 1
    (tmp / "bad.json").write_text(json.dumps(doc))
    r = run("--home", str(a), "pack", str(tmp / "bad.json"), "--type", "pep-transfer", "--to", "URN:123456",
            "-o", str(tmp / "bad.lax"))
    assert r.exit_code == 1 and not (tmp / "bad.lax").exists()
    (tmp / "dup.json").write_text('{"schema": "a", "schema": "b"}')
    r = run("--home", str(a), "pack", str(tmp / "dup.json"), "--type", "pep-transfer", "--to", "URN:123456",
            "-o", str(tmp / "dup.lax"))
    assert r.exit_code == 1 and "duplicate key" in r.output


def test_init_with_sftp_endpoint_and_export_card_options(tmp_path):
    fp = "SHA256:" + "B" * 43
    r = run("--home", str(tmp_path / "h"), "init", "--party", "URN:100001", "--name", "A School",
            "--sftp-url", "sftp://urn100001@127.0.0.1:2022/inbox", "--host-key-fingerprint", fp,
            "--kdf-work-factor", "10", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ssh_public_key"].startswith("ssh-ed25519 ")
    r = run("--home", str(tmp_path / "h"), "keys", "export-card", "--json", "--sftp-url",
            "sftp://u@host.example:22/in", "--host-key-fingerprint", "SHA256:" + "C" * 43)
    card = json.loads(r.output)
    assert r.exit_code == 0 and card["fingerprint"]
    assert card["card"]["payloadType"].startswith("application/vnd.laxchange.card")
    r = run("--home", str(tmp_path / "h"), "keys", "export-card", "--sftp-url", "ftp://nope")
    assert r.exit_code == 2


def test_missing_passphrase_is_config_error(tmp_path):
    r = run("--home", str(tmp_path / "h"), "init", "--party", "LA:919", "--name", "X", "--kdf-work-factor", "10",
            env={"LAXCHANGE_PASSPHRASE": ""})
    assert r.exit_code == 5 and "passphrase" in r.output


def test_pack_and_open_with_attachment(homes):
    tmp, a, b, _c = homes
    att = tmp / "pep-report.pdf"
    att.write_bytes(b"%PDF-1.7 fictional\n" + bytes(range(256)) * 600)
    r = run("--home", str(a), "pack", str(tmp / "record.json"), "--type", "pep-transfer", "--to", "URN:123456",
            "--attach", str(att), "-o", str(tmp / "att.lax"), "--json")
    assert r.exit_code == 0, r.output
    r = run("--home", str(b), "open", str(tmp / "att.lax"), "-o", str(tmp / "att.json"), "--attachments-dir",
            str(tmp / "files"), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["attachments"][0]["name"] == "pep-report.pdf"
    assert (tmp / "files" / "pep-report.pdf").read_bytes() == att.read_bytes()


def test_open_without_attachments_dir_keeps_the_attachments_beside_the_output(homes):
    """Issue 9 #8: `open` without --attachments-dir dropped the attachments and still marked the
    transfer imported, so a re-open was refused as a replay and the PDF was gone for good."""
    tmp, a, b, _c = homes
    att = tmp / "pep-report.pdf"
    att.write_bytes(b"%PDF-1.7 fictional\n")
    r = run("--home", str(a), "pack", str(tmp / "record.json"), "--type", "pep-transfer", "--to", "URN:123456",
            "--attach", str(att), "-o", str(tmp / "att.lax"))
    assert r.exit_code == 0, r.output
    (tmp / "got").mkdir()
    r = run("--home", str(b), "open", str(tmp / "att.lax"), "-o", str(tmp / "got" / "att.json"))
    assert r.exit_code == 0, r.output
    kept = tmp / "got" / "att.attachments" / "pep-report.pdf"
    assert kept.read_bytes() == att.read_bytes()
    assert "1 attachment" in r.output and str(kept.parent) in r.output
    # a package without attachments makes no folder
    r = run("--home", str(b), "open", str(tmp / "out.lax"), "-o", str(tmp / "plain.json"))
    assert r.exit_code == 0, r.output
    assert not (tmp / "plain.attachments").exists()


def test_our_own_card_is_refused_as_a_partner(homes):
    """A walk-through added its own card in its own home ("Added: LA:887") and could then pack to itself."""
    tmp, a, _b, _c = homes
    fa = json.loads(run("--home", str(a), "--json", "keys", "export-card", "-o", str(tmp / "mine.json")).output)
    r = run("--home", str(a), "--json", "partners", "add", str(tmp / "mine.json"), "--fingerprint", fa["fingerprint"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "partner.is-us", r.output
    listed = json.loads(run("--home", str(a), "--json", "partners", "list").output)
    assert "LA:919" not in json.dumps(listed)
