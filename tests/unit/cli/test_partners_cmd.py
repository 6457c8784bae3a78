"""`init` → `keys export-card` → `partners add` → `partners history`, as a VSH and a school's DT would (issue 12 #3)."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from laxchange.cli.app import App
from laxchange.clock import FixedClock
from laxchange.home import Home
from tests.support.parties import PASSPHRASE, T0

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "LAXCHANGE_PASSPHRASE_FILE": ""}


@dataclass
class Ran:
    exit_code: int
    output: str  # stdout then stderr, as a user sees them


def run(clock: FixedClock, home: Path, *args: str) -> Ran:
    """The CLI with our clock, handed in the way a program does (there is no option that moves it)."""
    from laxchange.cli import main

    out, err = io.StringIO(), io.StringIO()
    r = CliRunner().invoke(main, ["--home", str(home), *args], env=ENV, catch_exceptions=False,
                           obj=App(home=Home(home), clock=clock, out=out, err=err))
    return Ran(r.exit_code, out.getvalue() + err.getvalue())


def test_the_fingerprint_init_prints_is_the_one_partners_add_accepts(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    la, school = tmp_path / "la", tmp_path / "school"
    r = run(clock, la, "init", "--party", "LA:919", "--name", "Example Council", "--kdf-work-factor", "10")
    assert r.exit_code == 0, r.output
    said = r.output.split("Card fingerprint: ")[1].split()[0]  # read out over the phone
    assert run(clock, school, "init", "--party", "URN:123456", "--name", "Example School",
               "--kdf-work-factor", "10").exit_code == 0
    clock.advance(days=2)  # the card is exported (twice) days later
    card = tmp_path / "card.json"
    r1 = run(clock, la, "--json", "keys", "export-card", "-o", str(card))
    clock.advance(minutes=5)
    r2 = run(clock, la, "--json", "keys", "export-card", "-o", str(tmp_path / "again.json"))
    assert json.loads(r1.output)["fingerprint"] == json.loads(r2.output)["fingerprint"] == said
    assert card.read_text() != (tmp_path / "again.json").read_text()
    # A mistyped fingerprint: exit 3, and the right one is not printed for copying.
    typo = said[:-1] + ("A" if said[-1] != "A" else "B")
    r = run(clock, school, "partners", "add", str(card), "--fingerprint", typo)
    assert r.exit_code == 3 and "does not match" in r.output
    assert said not in r.output and said.replace("-", "") not in r.output.replace("-", "")
    r = run(clock, school, "--json", "partners", "add", str(card), "--fingerprint", typo)
    assert json.loads(r.output)["error"] == "card.fingerprint-mismatch" and said not in r.output
    r = run(clock, school, "partners", "add", str(card), "--fingerprint", said.lower().replace("-", " "))
    assert r.exit_code == 0 and r.output.startswith("Added: LA:919"), r.output
    r = run(clock, school, "partners", "add", str(tmp_path / "again.json"))
    assert r.exit_code == 0 and r.output.startswith("Updated: LA:919"), r.output


def test_partners_history_text_and_json(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    la, school = tmp_path / "la", tmp_path / "school"
    for home, party, name in ((la, "LA:919", "Example Council"), (school, "URN:123456", "Example School")):
        assert run(clock, home, "init", "--party", party, "--name", name, "--kdf-work-factor", "10").exit_code == 0
    card = tmp_path / "card.json"
    fpr = json.loads(run(clock, la, "--json", "keys", "export-card", "-o", str(card)).output)["fingerprint"]
    assert run(clock, school, "partners", "add", str(card), "--fingerprint", fpr).exit_code == 0
    clock.advance(days=1)
    assert run(clock, la, "keys", "rotate", "--kdf-work-factor", "10").exit_code == 0
    rotated = json.loads(run(clock, la, "--json", "keys", "export-card", "-o", str(card)).output)["fingerprint"]
    assert rotated != fpr
    r = run(clock, school, "partners", "add", str(card))
    assert r.exit_code == 0 and r.output.startswith("Rotated: LA:919"), r.output
    clock.advance(days=1)
    r = run(clock, school, "partners", "remove", "LA:919")
    assert r.exit_code == 0 and "history is kept" in r.output
    r = run(clock, school, "partners", "history", "LA:919")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "LA:919: 2 card versions"
    assert f"#1  2026-11-24T12:00:00Z  added     fingerprint {fpr}" in r.output
    assert f"#2  2026-11-25T12:00:00Z  rotated   fingerprint {rotated}" in r.output
    assert "#3  2026-11-26T12:00:00Z  removed" in r.output
    assert f"confirmed out of band: fingerprint {fpr}" in r.output and "signed by the keys we held: " in r.output
    r = run(clock, school, "--json", "partners", "history", "LA:919")
    data = json.loads(r.output)
    assert [v["event"] for v in data["versions"]] == ["added", "rotated", "removed"]
    assert data["versions"][1]["confirmed"]["by"] == "signature" and len(data["versions"][1]["keys"]) == 4
    assert "card" not in data["versions"][0]  # the keys and fingerprint, not the envelope
    r = run(clock, school, "--json", "partners", "history", "LA:920")
    assert r.exit_code == 5 and json.loads(r.output)["error"] == "partner.unknown"
    r = run(clock, school, "partners", "show", "LA:919")
    assert r.exit_code == 5 and "partners history LA:919" in r.output
    assert dt.timedelta(days=2) == clock.now() - T0


def test_partners_show_prints_the_partners_ssh_key_line_for_authorized_keys(tmp_path: Path) -> None:
    """The text output has the line to paste into our server's authorized_keys (serve-sftp reads the party
    from its comment), the same line `endpoints ssh-key` prints in the partner's home; during an SSH key
    rotation, the previous key's line too, with the date until which it is needed."""
    from laxchange.transport.server import read_authorized_keys

    clock = FixedClock(T0)
    la, school = tmp_path / "la", tmp_path / "school"
    for home, party, name in ((la, "LA:919", "Example Council"), (school, "URN:123456", "Example School")):
        assert run(clock, home, "init", "--party", party, "--name", name, "--kdf-work-factor", "10").exit_code == 0
    card = tmp_path / "card.json"
    fpr = json.loads(run(clock, la, "--json", "keys", "export-card", "-o", str(card)).output)["fingerprint"]
    assert run(clock, school, "partners", "add", str(card), "--fingerprint", fpr).exit_code == 0
    theirs = run(clock, la, "endpoints", "ssh-key").output.strip()
    assert theirs.endswith(" LA:919")
    r = run(clock, school, "partners", "show", "LA:919")
    assert r.exit_code == 0, r.output
    assert f"\nSSH key: {theirs}\n" in r.output and "previous" not in r.output
    clock.advance(days=1)
    assert run(clock, la, "keys", "rotate", "--ssh").exit_code == 0
    assert run(clock, la, "keys", "export-card", "-o", str(card)).exit_code == 0
    assert run(clock, school, "partners", "add", str(card)).exit_code == 0
    new = run(clock, la, "endpoints", "ssh-key").output.strip()
    assert new != theirs
    shown = run(clock, school, "partners", "show", "LA:919").output.splitlines()
    assert f"SSH key: {new}" in shown
    until = (T0 + dt.timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"SSH key, previous (keep its line too until {until}): {theirs}" in shown
    auth = tmp_path / "authorized_keys"
    auth.write_text("".join(line.rpartition(": ")[2] + "\n" for line in shown if line.startswith("SSH key")))
    assert [(party, key.get_base64()) for party, key in read_authorized_keys(auth)] == [
        ("LA:919", new.split()[1]), ("LA:919", theirs.split()[1])]


def _init(clock: FixedClock, home: Path, party: str, name: str) -> None:
    r = run(clock, home, "init", "--party", party, "--name", name, "--kdf-work-factor", "10")
    assert r.exit_code == 0, r.output


def _export(clock: FixedClock, home: Path, out: Path) -> str:
    r = run(clock, home, "--json", "keys", "export-card", "-o", str(out))
    assert r.exit_code == 0, r.output
    return str(json.loads(r.output)["fingerprint"])


def test_a_placing_council_adds_a_school_through_the_host_councils_area_directory(tmp_path: Path) -> None:
    """Issue 12 #6, as a host council's IT and a placing VSH would do it, then a PEP sent to the school."""
    clock = FixedClock(T0)
    host, school, placing = tmp_path / "host", tmp_path / "school", tmp_path / "placing"
    _init(clock, host, "LA:919", "Host Council (fictional)")
    _init(clock, school, "URN:111111", "Brook Primary (fictional)")
    _init(clock, placing, "LA:210", "Placing Council (fictional)")
    sf = _export(clock, school, tmp_path / "school.json")
    hf = _export(clock, host, tmp_path / "host.json")
    assert run(clock, host, "partners", "add", str(tmp_path / "school.json"), "--fingerprint", sf).exit_code == 0
    assert run(clock, placing, "partners", "add", str(tmp_path / "host.json"), "--fingerprint", hf).exit_code == 0
    schools = tmp_path / "schools.csv"
    schools.write_text("urn,la_code,dt_name,dt_email\n111111,919,Alex Example,dt@brook.example\n")
    area = tmp_path / "area.json"
    r = run(clock, host, "--json", "partners", "publish-area", "-o", str(area), "--schools", str(schools))
    assert r.exit_code == 0 and json.loads(r.output)["schools"] == ["URN:111111"], r.output
    # a school council (or a typo) cannot publish one; an existing file is not overwritten
    r = run(clock, school, "partners", "publish-area", "-o", str(tmp_path / "x.json"), "--schools", str(schools))
    assert r.exit_code == 2 and "only a council" in r.output and not (tmp_path / "x.json").exists()
    before = area.read_bytes()
    assert run(clock, host, "partners", "publish-area", "-o", str(area), "--schools", str(schools)).exit_code == 2
    assert area.read_bytes() == before
    clock.advance(minutes=10)
    r = run(clock, placing, "partners", "add", "URN:111111", "--introduced-by", "LA:919", "--area", str(area))
    assert r.exit_code == 0 and r.output.startswith("Introduced: URN:111111") and "Alex Example" in r.output, r.output
    r = run(clock, placing, "partners", "list")
    assert "URN:111111" in r.output and "(introduced by LA:919)" in r.output
    shown = json.loads(run(clock, placing, "--json", "partners", "show", "URN:111111").output)
    assert shown["trust"]["by"] == "introduction" and shown["trust"]["introducer"] == "LA:919"
    assert shown["designated_teacher"]["email"] == "dt@brook.example"
    hist = json.loads(run(clock, placing, "--json", "partners", "history", "URN:111111").output)
    assert [v["event"] for v in hist["versions"]] == ["introduced"]
    assert "introduced by LA:919" in run(clock, placing, "partners", "history", "URN:111111").output
    # one byte changed in the file: refused, exit 3, nothing added
    text = area.read_text()
    at = text.index('"payload": "') + 300
    bad = tmp_path / "bad-area.json"
    bad.write_text(text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:])
    r = run(clock, placing, "--json", "partners", "add", "URN:111111", "--introduced-by", "LA:919", "--area", str(bad))
    assert r.exit_code == 3 and json.loads(r.output)["error"] in ("area.signature", "area.invalid"), r.output
    # a PEP to the school it never spoke to
    rec = tmp_path / "pep.json"
    assert run(clock, placing, "sample", "pep-transfer", "-o", str(rec)).exit_code == 0
    r = run(clock, placing, "pack", str(rec), "--to", "URN:111111", "-o", str(tmp_path / "pep.lax"))
    assert r.exit_code == 0, r.output
    pf = _export(clock, placing, tmp_path / "placing.json")
    assert run(clock, school, "partners", "add", str(tmp_path / "placing.json"), "--fingerprint", pf).exit_code == 0
    r = run(clock, school, "open", str(tmp_path / "pep.lax"), "-o", str(tmp_path / "opened.json"))
    assert r.exit_code == 0 and "from LA:210" in r.output, r.output
    # the introducer removed: the school is withdrawn and sending is refused, clearly
    r = run(clock, placing, "--json", "partners", "remove", "LA:919")
    assert json.loads(r.output)["withdrawn"] == ["URN:111111"]
    r = run(clock, placing, "pack", str(rec), "--to", "URN:111111", "-o", str(tmp_path / "pep2.lax"))
    assert r.exit_code == 5 and "withdrawn" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "pep2.lax").exists()


def test_introduction_options_are_checked(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    _init(clock, tmp_path / "p", "LA:210", "Placing Council (fictional)")
    r = run(clock, tmp_path / "p", "--json", "partners", "add", "URN:111111", "--introduced-by", "LA:919")
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "usage.bad-option"
    r = run(clock, tmp_path / "p", "partners", "add", "URN:111111", "--fingerprint", "A" * 32)
    assert r.exit_code == 2 and "--introduced-by LA:NNN --area" in r.output  # a URN without --area: say how
    r = run(clock, tmp_path / "p", "--json", "partners", "add", str(tmp_path / "none.json"), "--fingerprint", "A" * 32)
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "usage.bad-value"
