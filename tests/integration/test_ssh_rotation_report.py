"""After `keys rotate --ssh`, a server that has only our old key line still lets us in (the client
falls back to the previous key), and a council-IT walk-through found nothing said so: `run` said
"all good" and `doctor` passed, until the old key was pruned and every connection failed. Now the
run's report (text, JSON, the morning report) and `doctor` name each such server, with the code
`ssh.previous-key-only` and what to do, and the run still exits 0 (it works)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from laxchange.cli import main
from tests.support.drop_server import TwoHomes, two_homes
from tests.support.parties import PASSPHRASE, Party, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
A, B = "LA:919", "URN:123456"
CODE = "ssh.previous-key-only"


def lax(p: Party, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(p.home.root), *args], env=ENV)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[TwoHomes]:
    # the server knows the keys the homes were made with: rotating A's after it started is the partner
    # (and our own drop folder's server) not having installed the new line yet
    with two_homes(tmp_path, overdue_deadlines_fail_run=False) as w:
        yield w


def _queue(p: Party, tmp_path: Path) -> None:
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(record(4)))
    r = lax(p, "pack", str(src), "--type", "pep-transfer", "--to", B, "-o", str(p.home.outbox / "pep.lax"))
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(("backend", "jobs"), [("paramiko", "1"), ("openssh", "2")])
def test_servers_that_take_only_our_previous_ssh_key_are_reported_by_run_and_doctor(
        world: TwoHomes, tmp_path: Path, backend: str, jobs: str) -> None:
    a = world.a
    config = json.loads(a.home.config_file.read_text())
    a.home.config_file.write_text(json.dumps({**config, "sftp_backend": backend}))
    a.store.rotate_ssh(overlap_days=30)
    until = a.store.ring().ssh_previous_until
    _queue(a, tmp_path)

    r = lax(a, "--json", "run", "--timeout", "5", "--retries", "1", "--jobs", jobs)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["complete"] is True and len(data["sent"]) == 1, "it works: not a failure"
    found = {w["party"]: w for w in data["ssh_previous_key_only"]}
    assert sorted(found) == [A, B], "the partner's server, and our own drop folder's (collected by the run)"
    school = found[B]
    assert school["code"] == CODE and school["until"] == until and school["name"] == "Example School (fictional)"
    assert "accepted only our previous SSH key" in school["message"] and until in school["message"]
    assert "send URN:123456 our new card" in school["hint"] and f"before {until}" in school["hint"]
    assert "owner account" in found[A]["hint"]
    assert all(set(w) == {"party", "name", "code", "message", "hint", "until", "last_login"}
               for w in found.values()), "ids, names from cards and dates only"

    # the transfer sent waits on B, so the next run lists our folder on B's server again
    text = lax(a, "run", "--timeout", "5", "--retries", "1", "--jobs", jobs, "--report", str(tmp_path / "r.html"))
    assert text.exit_code == 0, text.output
    assert text.stdout.count("SSH KEY     ") == 2 and f"[{CODE}]" in text.stdout
    assert "hint: send URN:123456" in text.stdout
    assert "done: all good" not in text.stdout and "see the SSH KEY warnings above" in text.stdout
    page = (tmp_path / "r.html").read_text()
    assert "All good:" not in page and "accepted only our previous SSH key" in page and CODE in page
    quiet = lax(a, "-q", "run", "--timeout", "5", "--retries", "1", "--jobs", jobs)  # as cron runs it
    assert quiet.exit_code == 0 and quiet.stdout.count("SSH KEY     ") == 2, "a quiet run still shows them"
    assert "hint: send URN:123456" in quiet.stdout and quiet.stdout.rstrip().endswith(
        "see the SSH KEY warnings above before the previous key is pruned")

    doc = lax(a, "--json", "doctor", "--timeout", "5")
    checks = {c["id"]: c for c in json.loads(doc.stdout)["checks"]}
    rotation = checks["keys.ssh-rotation"]
    assert (rotation["ok"], rotation["severity"], rotation["details"]["code"]) == (False, "warning", CODE)
    assert [s["party"] for s in rotation["details"]["servers"]] == [A, B]
    assert rotation["details"]["until"] == until and "Example School (fictional)" in rotation["message"]
    assert "send URN:123456 our new card" in rotation["hint"]
    assert doc.exit_code == 10, "a warning, as doctor's other warnings are"
    human = lax(a, "doctor", "--timeout", "5")
    assert "WARN  keys.ssh-rotation" in human.stdout and "fix: " in human.stdout
    note = a.home.root / "cache" / "ssh-logins.json"  # what doctor read for the partner's server
    assert set(json.loads(note.read_text())["previous_key_only"]) == {A, B}


def test_a_partner_on_our_new_key_is_not_reported_and_no_rotation_is_no_warning(world: TwoHomes,
                                                                               tmp_path: Path) -> None:
    a = world.a
    _queue(a, tmp_path)
    r = lax(a, "--json", "run", "--timeout", "5", "--retries", "1")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ssh_previous_key_only"] == []
    assert "done: all good" in lax(a, "run", "--timeout", "5", "--retries", "1").stdout
    checks = {c["id"]: c for c in json.loads(lax(a, "--json", "doctor", "--timeout", "5").stdout)["checks"]}
    assert checks["keys.ssh-rotation"]["ok"] and "no SSH key rotation" in checks["keys.ssh-rotation"]["message"]
