"""`keys list`, `keys prune`, `keys rotate --ssh`, `keys passphrase` through the CLI (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange.home import Home
from laxchange.ledger.lock import RunLock, RunLocked
from tests.support.parties import PASSPHRASE

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "LAXCHANGE_PASSPHRASE_FILE": ""}


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    from laxchange.cli import main

    return CliRunner().invoke(main, list(args), env={**ENV, **(env or {})}, catch_exceptions=False)


def _init(home: Path, *extra: str) -> None:
    r = run("--home", str(home), "init", "--party", "LA:919", "--name", "Example Council", "--kdf-work-factor", "10",
            *extra)
    assert r.exit_code == 0, r.output


def test_keys_list_warns_of_keys_expiring_within_30_days(tmp_path: Path) -> None:
    home = tmp_path / "h"
    _init(home, "--validity-days", "20")
    r = run("--home", str(home), "keys", "list")
    assert r.exit_code == 0
    assert r.stderr.count("laxchange: warning:") == 2 and "keys rotate" in r.stderr
    r = run("--home", str(home), "--json", "keys", "list")
    data = json.loads(r.stdout)
    assert len(data["warnings"]) == 2 and {k["status"] for k in data["keys"]} == {"valid"}
    assert {k["private"] for k in data["keys"]} == {"present"}
    r = run("--home", str(home), "keys", "rotate", "--kdf-work-factor", "10")
    assert r.exit_code == 0, r.output
    r = run("--home", str(home), "keys", "list")
    assert "warning" not in r.stderr, "keys in a rotation's overlap are not a warning"


def test_keys_prune_destroys_only_after_the_overlap_and_audits(tmp_path: Path) -> None:
    home = tmp_path / "h"
    _init(home)
    assert run("--home", str(home), "keys", "rotate", "--kdf-work-factor", "10").exit_code == 0
    r = run("--home", str(home), "--json", "keys", "prune")
    assert json.loads(r.stdout)["destroyed"] == []
    assert run("--home", str(home), "keys", "rotate", "--overlap-days", "0", "--kdf-work-factor", "10").exit_code == 0
    r = run("--home", str(home), "--json", "keys", "list")
    waiting = [k["kid"] for k in json.loads(r.stdout)["keys"] if k["status"] == "retired-awaiting-prune"]
    assert len(waiting) == 2  # a zero overlap ends every older signing key now
    r = run("--home", str(home), "keys", "prune", "--dry-run")
    assert r.exit_code == 0 and all(w in r.stdout for w in waiting)
    assert all((home / "keys" / f"{w}.age").exists() for w in waiting)
    r = run("--home", str(home), "keys", "prune")
    assert r.exit_code == 0 and all(f"Destroyed signing key {w}" in r.stdout for w in waiting)
    assert not any((home / "keys" / f"{w}.age").exists() for w in waiting)
    r = run("--home", str(home), "--json", "audit", "list")
    assert r.stdout.count("key.destroyed") == 2 and all(w in r.stdout for w in waiting)


def test_keys_rotate_ssh_and_keys_passphrase(tmp_path: Path) -> None:
    home = tmp_path / "h"
    _init(home)
    old = (home / "keys" / "ssh_ed25519.pub").read_text()
    r = run("--home", str(home), "--json", "keys", "rotate", "--ssh")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["previous_ssh_public_key"] == old.strip() and data["ssh_public_key"] != old.strip()
    new = (home / "keys" / "ssh_ed25519.pub").read_text().split()
    assert data["ssh_public_key"] == f"{new[0]} {new[1]} LA:919", "the line pastes into serve-sftp's authorized_keys"
    r = run("--home", str(home), "--json", "keys", "list")
    assert [k["status"] for k in json.loads(r.stdout)["ssh_keys"]] == ["valid", "previous"]
    r = run("--home", str(home), "keys", "passphrase", "--kdf-work-factor", "10",
            env={"LAXCHANGE_NEW_PASSPHRASE": "another test passphrase"})
    assert r.exit_code == 0, r.output
    assert "Re-encrypted 4 of 4" in r.stdout
    r = run("--home", str(home), "keys", "export-card", env={"LAXCHANGE_PASSPHRASE": "another test passphrase"})
    assert r.exit_code == 0, r.output
    r = run("--home", str(home), "--json", "keys", "export-card")
    assert r.exit_code == 5 and json.loads(r.stdout)["error"] == "passphrase.wrong"


def _keys_dir(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted((home / "keys").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", [
    ["keys", "passphrase", "--kdf-work-factor", "10"],
    ["keys", "rotate", "--kdf-work-factor", "10"],
    ["keys", "rotate", "--ssh"],
    ["keys", "revoke", "KID", "--reason", "superseded"],
    ["keys", "prune"],
])
def test_key_changes_are_refused_while_a_run_holds_the_lock(tmp_path: Path,
                                                            command: list[str]) -> None:
    """The nightly run signs with our keys and prunes them: a key change while it holds the home's
    run lock is refused at once, exit 5 with the message a second `run` gets, and changes nothing."""
    home = tmp_path / "h"
    _init(home)
    assert run("--home", str(home), "keys", "rotate", "--overlap-days", "0", "--kdf-work-factor", "10").exit_code == 0
    ring = json.loads((home / "keys" / "keyring.json").read_text())
    args = [a if a != "KID" else ring["keys"][-1]["kid"] for a in command]
    env = {"LAXCHANGE_NEW_PASSPHRASE": "another test passphrase"}
    assert json.loads(run("--home", str(home), "--json", "keys", "prune", "--dry-run").stdout)["destroyed"]
    before = _keys_dir(home)
    with RunLock(Home(home).run_lock):
        r = run("--home", str(home), *args, env=env)
        assert r.exit_code == RunLocked.exit_code == 5, r.output
        assert "another laxchange run holds" in r.output and "wait for it to finish" in r.output
        r = run("--home", str(home), "--json", *args, env=env)
        assert json.loads(r.stdout)["error"] == "run.locked"
        assert _keys_dir(home) == before
    r = run("--home", str(home), *args, env=env)
    assert r.exit_code == 0, r.output
    assert _keys_dir(home) != before, "with the lock free, the same command changes the keys"


def test_a_wrong_passphrase_s_hint_names_the_source_it_came_from(tmp_path: Path) -> None:
    """With both variables set the first wins silently: the hint says which was read, so council IT
    does not edit the file that was never read."""
    home = tmp_path / "h"
    _init(home)
    right = tmp_path / "right"
    right.write_text(PASSPHRASE.decode() + "\n")
    right.chmod(0o600)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    wrong.chmod(0o600)
    r = run("--home", str(home), "--json", "keys", "export-card",
            env={"LAXCHANGE_PASSPHRASE": "not the passphrase", "LAXCHANGE_PASSPHRASE_FILE": str(right)})
    err = json.loads(r.stdout)
    assert r.exit_code == 5 and err["error"] == "passphrase.wrong"
    assert "LAXCHANGE_PASSPHRASE, set in this environment" in err["hint"] and "wins over" in err["hint"]
    r = run("--home", str(home), "--json", "keys", "export-card",
            env={"LAXCHANGE_PASSPHRASE": "", "LAXCHANGE_PASSPHRASE_FILE": str(wrong)})
    err = json.loads(r.stdout)
    assert r.exit_code == 5 and str(wrong) in err["hint"] and "wins over" not in err["hint"]
    assert "not the passphrase" not in r.stdout + r.stderr, "never the passphrase itself"
    r = run("--home", str(home), "keys", "export-card",
            env={"LAXCHANGE_PASSPHRASE": "", "LAXCHANGE_PASSPHRASE_FILE": str(right)})
    assert r.exit_code == 0, r.output


def test_export_card_refuses_a_new_server_with_the_old_servers_host_key_pins(tmp_path: Path) -> None:
    """A walk-through moved our drop folder with `--sftp-url` alone: the card went out pinning the old
    server's host key for the new one. A new host or port needs its own fingerprints; a new path or
    user on the same server keeps them."""
    home = tmp_path / "h"
    old_fpr, new_fpr = "SHA256:" + "A" * 43, "SHA256:" + "B" * 43
    _init(home, "--sftp-url", "sftp://la919@sftp.old.example:22/inbox", "--host-key-fingerprint", old_fpr)

    def card() -> dict[str, object]:
        r = run("--home", str(home), "--json", "endpoints", "list")
        return next(e for e in json.loads(r.stdout)["endpoints"] if e["party"] == "LA:919")

    for url in ("sftp://la919@sftp.new.example:22/inbox", "sftp://la919@sftp.old.example:2222/inbox"):
        r = run("--home", str(home), "--json", "keys", "export-card", "--sftp-url", url, "-o", str(tmp_path / "c.json"))
        err = json.loads(r.stdout)
        assert (r.exit_code, err["error"]) == (2, "sftp-url.host-key-needed"), r.output
        assert "no host-key fingerprint was given for the new server" in err["message"] and old_fpr in err["message"]
        assert "--host-key-fingerprint" in err["hint"]
        assert not (tmp_path / "c.json").exists()
        assert card()["url"] == "sftp://la919@sftp.old.example:22/inbox", "nothing changed"
    r = run("--home", str(home), "keys", "export-card", "--sftp-url", "sftp://la919@sftp.new.example:22/inbox")
    assert r.exit_code == 2 and "no host-key fingerprint was given" in r.output and "hint: pass --host-key" in r.output

    # the same server (host and port): a new path or login keeps its host key
    r = run("--home", str(home), "keys", "export-card", "--sftp-url", "sftp://vsh@SFTP.old.example/drop")
    assert r.exit_code == 0, r.output
    assert (card()["url"], card()["host_key_fingerprints"]) == ("sftp://vsh@SFTP.old.example/drop", [old_fpr])
    # a new server with its own fingerprint
    r = run("--home", str(home), "keys", "export-card", "--sftp-url", "sftp://vsh@sftp.new.example:22/drop",
            "--host-key-fingerprint", new_fpr)
    assert r.exit_code == 0, r.output
    assert (card()["url"], card()["host_key_fingerprints"]) == ("sftp://vsh@sftp.new.example:22/drop", [new_fpr])


def test_revoking_our_ssh_key_by_the_id_keys_list_shows_says_how_to_replace_it(tmp_path: Path) -> None:
    home = tmp_path / "h"
    _init(home)
    rows = json.loads(run("--home", str(home), "--json", "keys", "list").stdout)["ssh_keys"]
    r = run("--home", str(home), "--json", "keys", "revoke", rows[0]["kid"], "--reason", "key-compromise")
    err = json.loads(r.stdout)
    assert r.exit_code == 2 and "our SSH client key" in err["message"]
    assert "keys rotate --ssh --overlap-days 0" in err["hint"]
