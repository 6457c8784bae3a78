"""`laxchange doctor` against real servers: OpenSSH sshd for partners (reachable, a changed host
key, a closed port, a silent one) and for our own drop folder (writable, read-only), and the
issue's acceptance: a 0644 key file and an unreachable partner, each reported with its fix."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.clock import FixedClock
from laxchange.doctor import run_checks
from tests.support.drop_server import two_homes
from tests.support.parties import PASSPHRASE, Party, make_party, passphrase
from tests.support.sshd import Sshd

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
WRONG_PIN = "SHA256:" + "A" * 43


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def _clock() -> FixedClock:
    return FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))


def _partner(tmp: Path, me: Party, party: str, name: str, url: str, pin: str) -> Party:
    p = make_party(tmp, party, name, me.clock, sftp_url=url, host_key_fingerprints=[pin])
    me.trust(p)
    return p


def _authorise(sshd: Sshd, p: Party) -> None:
    with sshd.authorized.open("a") as fh:
        fh.write(Path(str(p.home.ssh_client_key) + ".pub").read_text())


def test_partners_servers_and_our_drop_folder_over_sshd(tmp_path: Path, sshd: Sshd, closed_port: int) -> None:
    drop = tmp_path / "our-drop"
    drop.mkdir()
    (drop / "pending.lax").write_bytes(b"a partner's package")
    me = make_party(tmp_path, "LA:919", "Example Council (fictional)", _clock(), sftp_url=sshd.url(drop),
                    host_key_fingerprints=[sshd.fingerprint])
    _authorise(sshd, me)
    _partner(tmp_path, me, "URN:123456", "Example School (fictional)", sshd.url(tmp_path), sshd.fingerprint)
    _partner(tmp_path, me, "URN:654321", "Replaced School (fictional)", sshd.url(tmp_path), WRONG_PIN)
    _partner(tmp_path, me, "LA:920", "Down Council (fictional)", f"sftp://la920@127.0.0.1:{closed_port}/inbox",
             sshd.fingerprint)
    report = run_checks(me.home, clock=me.clock, passphrase=passphrase, timeout=3)
    checks = {c.id: c for c in report.checks}
    good = checks["endpoint.URN:123456"]
    assert good.ok and good.details["host_key_fingerprint"] == sshd.fingerprint and "pinned" in good.message
    changed = checks["endpoint.URN:654321"]
    assert (changed.ok, changed.severity, changed.details["code"]) == (False, "error", "host-key.mismatch")
    assert changed.details["presented"] == sshd.fingerprint and "Replaced School" in changed.message
    assert "out of band" in (changed.hint or "")
    down = checks["endpoint.LA:920"]
    assert (down.ok, down.details["code"]) == (False, "ssh.connect-failed")
    assert "contact LA:920 (Down Council (fictional))" in (down.hint or "")
    ours = checks["drop-folder"]
    assert ours.ok and "writable" in ours.message
    assert os.listdir(drop) == ["pending.lax"]  # the test file is gone, the partner's package untouched
    assert checks["clock"].ok and checks["clock"].details["server_time"] is not None
    assert report.exit_code == 10
    assert {c.id for c in report.checks if not c.ok} == {"endpoint.URN:654321", "endpoint.LA:920"}


def test_a_read_only_drop_folder_is_an_error(tmp_path: Path) -> None:
    drop = tmp_path / "our-drop"
    drop.mkdir()
    me = make_party(tmp_path, "LA:919", "Example Council (fictional)", _clock())
    with Sshd(tmp_path / "ro", [Path(str(me.home.ssh_client_key) + ".pub")], read_only=True) as server:
        me.store.set_endpoint(server.url(drop), [server.fingerprint])
        check = next(c for c in run_checks(me.home, clock=me.clock, passphrase=passphrase, timeout=3).checks
                     if c.id == "drop-folder")
    assert (check.ok, check.severity, check.details["code"]) == (False, "error", "remote.permission")
    assert "permission denied" in check.message and os.listdir(drop) == []


def test_our_key_refused_by_our_own_server_is_an_error_with_the_fix(tmp_path: Path, sshd: Sshd) -> None:
    drop = tmp_path / "our-drop"
    drop.mkdir()
    me = make_party(tmp_path, "LA:919", "Example Council (fictional)", _clock(), sftp_url=sshd.url(drop),
                    host_key_fingerprints=[sshd.fingerprint])  # its SSH key is not in authorized_keys
    check = next(c for c in run_checks(me.home, clock=me.clock, passphrase=passphrase, timeout=3).checks
                 if c.id == "drop-folder")
    assert (check.ok, check.details["code"]) == (False, "ssh.auth-refused")
    assert "endpoints ssh-key" in (check.hint or "")


def test_silent_servers_are_checked_in_parallel_within_the_timeout(tmp_path: Path, silent_port: int) -> None:
    me = make_party(tmp_path, "LA:919", "Example Council (fictional)", _clock())
    for i in range(4):
        _partner(tmp_path, me, f"LA:{930 + i}", f"Silent Council {i} (fictional)",
                 f"sftp://x@127.0.0.1:{silent_port}/inbox", WRONG_PIN)
    started = time.monotonic()
    report = run_checks(me.home, clock=me.clock, passphrase=passphrase, timeout=1.5)
    elapsed = time.monotonic() - started
    silent = [c for c in report.checks if c.id.startswith("endpoint.")]
    assert len(silent) == 4 and all(c.details["code"] == "ssh.handshake-failed" for c in silent)
    assert elapsed < 3 * 1.5, f"4 silent servers took {elapsed:.1f}s: not checked in parallel"


def test_acceptance_a_0644_key_file_and_an_unreachable_partner(tmp_path: Path, closed_port: int) -> None:
    """The issue's acceptance, from the command line as council IT would run it."""
    me = make_party(tmp_path, "LA:919", "Example Council (fictional)", _clock())
    _partner(tmp_path, me, "URN:123456", "Example School (fictional)", f"sftp://s@127.0.0.1:{closed_port}/inbox",
             WRONG_PIN)
    loose = sorted(me.home.keys.glob("*.age"))[0]
    loose.chmod(0o644)
    r = CliRunner().invoke(main, ["--home", str(me.home.root), "doctor", "--timeout", "2"], env=ENV)
    assert r.exit_code == 10, r.output
    lines = r.stdout.splitlines()
    key_line = next(i for i, line in enumerate(lines) if line.startswith("FAIL  permissions.keys"))
    assert f"{loose.name} (mode 644, not 600)" in lines[key_line]
    assert lines[key_line + 1].strip() == f"fix: chmod 600 {loose}"
    partner_line = next(i for i, line in enumerate(lines) if line.startswith("FAIL  endpoint.URN:123456"))
    assert "Example School (fictional)" in lines[partner_line] and "Connection refused" in lines[partner_line]
    assert lines[partner_line + 1].strip().startswith("fix: ") and "contact URN:123456" in lines[partner_line + 1]
    assert lines[-1].startswith("3 problems (2 errors, 1 warning): exit 10")  # and: no drop folder of our own

    r = CliRunner().invoke(main, ["--json", "--home", str(me.home.root), "doctor", "--timeout", "2"], env=ENV)
    data = json.loads(r.stdout)
    assert r.exit_code == 10 and data["ok"] is False and data["exit_code"] == 10
    failed = {c["id"]: c for c in data["checks"] if not c["ok"]}
    assert set(failed) == {"permissions.keys", "endpoint.URN:123456", "drop-folder"}
    assert all(c["hint"] for c in failed.values())
    assert set(data["checks"][0]) == {"id", "ok", "severity", "message", "hint", "details"}


def test_both_homes_over_the_embedded_server_are_healthy(tmp_path: Path) -> None:
    """`serve-sftp`'s confinement: our login owns our drop folder (the test file goes there), and
    each partner's folder is only connected to."""
    with two_homes(tmp_path) as homes:
        for me in (homes.a, homes.b):
            report = run_checks(me.home, clock=me.clock, passphrase=passphrase, timeout=3)
            assert [c.id for c in report.checks if not c.ok] == [], report.checks
            assert report.exit_code == 0
        assert sorted(p.name for p in (homes.root / "council").iterdir()) == []
