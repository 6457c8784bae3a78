"""`keys list`, `keys prune`, `keys rotate --ssh`, `keys passphrase` through the CLI (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

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
