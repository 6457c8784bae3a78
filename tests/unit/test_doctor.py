"""`laxchange.doctor.run_checks` on real homes and files: what each check finds, and the fix it names.

The network checks against real servers (sshd, the embedded server) are in
tests/integration/test_doctor.py; here our own drop folder is a local folder (file://).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path

import pytest

from laxchange._util import timefmt
from laxchange.clock import FixedClock
from laxchange.doctor import Check, Limits, Report, run_checks
from laxchange.errors import ConfigError
from laxchange.exchange import ConfigEndpoints
from laxchange.ledger import Ledger
from laxchange.ledger.schema import SCHEMA_VERSION
from laxchange.ledger.states import IMPORT_PATH
from laxchange.transport import Endpoint, part_journal
from tests.support.parties import Party, make_party, passphrase

DAY = dt.timedelta(days=1)
#: Near the real time: the test file in a local drop folder gets the real clock's mtime, which the
#: clock check compares with ours (tests that move the clock on look only at the checks they mean).
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)


def _party(tmp: Path, party: str = "LA:919", clock: FixedClock | None = None, **init: object) -> Party:
    return make_party(tmp, party, "Example Council (fictional)", clock or FixedClock(_now()), **init)


def _with_drop_folder(p: Party, tmp: Path) -> Path:
    """Our own drop folder as a local folder (a config entry for our own party id)."""
    drop = tmp / "drop"
    drop.mkdir(mode=0o700)
    ConfigEndpoints(p.home).add(Endpoint(p.party, f"file://{drop}"))
    return drop


def _check(report: Report, cid: str) -> Check:
    return next(c for c in report.checks if c.id == cid)


def _problems(report: Report) -> dict[str, Check]:
    return {c.id: c for c in report.checks if not c.ok}


def _run(p: Party, clock: FixedClock | None = None, **kw: object) -> Report:
    return run_checks(p.home, clock=clock or p.clock, passphrase=passphrase, timeout=2, **kw)  # type: ignore[arg-type]


def test_a_healthy_home_passes_every_check_and_exits_0(tmp_path: Path) -> None:
    p = _party(tmp_path)
    drop = _with_drop_folder(p, tmp_path)
    with Ledger(p.home.ledger_db, clock=p.clock) as ledger:
        ledger.advance("in", "a" * 32, "URN:123456", *IMPORT_PATH)
    report = _run(p)
    assert _problems(report) == {}
    assert report.ok and report.exit_code == 0
    assert [c.id for c in report.checks] == ["home", "permissions.keys", "permissions.home", "keys.usable",
                                             "keys.unlock", "keys.expiry", "partners.keys", "ssh-client", "drop-folder",
                                             "keys.ssh-rotation", "uploads.leftover", "ledger", "audit", "disk",
                                             "filesystem", "clock"]
    assert _check(report, "audit").details["entries"] == len(IMPORT_PATH)
    assert os.listdir(drop) == []  # the probe left nothing behind
    assert all(c.severity == "info" and c.hint is None for c in report.checks)


def test_a_missing_or_uninitialised_home_is_the_one_failing_check_and_exit_5(tmp_path: Path) -> None:
    from laxchange.home import Home

    for home, code in ((Home(tmp_path / "nope"), "home.missing"), (Home(tmp_path), "keyring.missing")):
        report = run_checks(home, passphrase=passphrase)
        assert [(c.id, c.ok, c.details.get("code")) for c in report.checks] == [("home", False, code)]
        assert report.exit_code == 5 and "init" in (report.checks[0].hint or "")
    assert not (tmp_path / "nope").exists() and os.listdir(tmp_path) == []


def test_a_key_file_readable_by_others_is_an_error_with_the_chmod_that_fixes_it(tmp_path: Path) -> None:
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    loose = sorted(p.home.keys.glob("*.age"))[0]
    loose.chmod(0o644)
    report = _run(p)
    problem = _problems(report)
    assert set(problem) == {"permissions.keys"} and report.exit_code == 10
    check = problem["permissions.keys"]
    assert check.severity == "error" and f"{loose.name} (mode 644, not 600)" in check.message
    assert check.hint == f"chmod 600 {loose}"
    loose.chmod(0o600)
    assert _run(p).ok


def test_folders_and_files_open_to_others_or_not_ours_are_found(tmp_path: Path) -> None:
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    p.home.inbox.chmod(0o755)
    stray = p.home.outbox / "x.lax"
    stray.write_bytes(b"x")
    stray.chmod(0o640)
    other = p.home.quarantine / "y.json"
    other.write_text("{}")
    other.chmod(0o600)
    os.chown(other, 12345, -1)
    (p.home.keys / "extra.pub").write_text("ssh-ed25519 AAAA public")  # public keys are meant to be readable
    (p.home.keys / "extra.pub").chmod(0o644)
    check = _problems(_run(p))["permissions.home"]
    assert check.severity == "error"
    found = {Path(d["path"]).name: d["problems"] for d in check.details["paths"]}
    assert found == {"inbox": ["mode 755, not 700"], "x.lax": ["mode 640, not 600"],
                     "y.json": [f"owned by uid 12345, not {os.geteuid()} (this account)"]}
    assert f"chmod 700 {p.home.inbox}" in (check.hint or "") and f"chmod 600 {stray}" in (check.hint or "")
    assert "chown" in (check.hint or "")


def test_our_keys_expiring_unreplaced_warn_and_a_rotation_clears_it(tmp_path: Path) -> None:
    t0 = _now()
    clock = FixedClock(t0)
    p = _party(tmp_path, clock=clock, validity_days=40)
    _with_drop_folder(p, tmp_path)
    assert _run(p).ok
    clock.advance(days=15)
    check = _problems(_run(p))["keys.expiry"]
    assert check.severity == "warning" and "encryption key" in check.message and "signing key" in check.message
    assert "laxchange keys rotate" in (check.hint or "") and (t0 + 40 * DAY).strftime("%Y-%m-%d") in check.hint
    p.store.rotate(overlap_days=20)
    assert "keys.expiry" not in _problems(_run(p))


def test_our_keys_expired_is_an_error(tmp_path: Path) -> None:
    t0 = _now()
    clock = FixedClock(t0)
    p = _party(tmp_path, clock=clock, validity_days=10)
    _with_drop_folder(p, tmp_path)
    clock.advance(days=11)
    check = _problems(_run(p))["keys.usable"]
    assert check.severity == "error" and "no encryption key is valid now" in check.message
    assert "no signing key is valid now" in check.message and "keys rotate" in (check.hint or "")


def test_a_missing_private_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    gone = sorted(p.home.keys.glob("*.age"))[0]
    gone.unlink()
    check = _problems(_run(p))["keys.usable"]
    assert check.severity == "error" and gone.stem in check.message and f"keys/{gone.name}" in (check.hint or "")


def test_partners_cards_expiring_warn_and_expired_ones_are_errors(tmp_path: Path) -> None:
    t0 = _now()
    clock = FixedClock(t0)
    me = _party(tmp_path, clock=clock, validity_days=400)
    _with_drop_folder(me, tmp_path)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", clock, validity_days=40)
    other = make_party(tmp_path, "LA:920", "Other Council (fictional)", clock, validity_days=100)
    me.trust(school)
    me.trust(other)
    clock.advance(days=20)
    check = _check(_run(me), "partners.keys")
    assert check.severity == "warning" and "URN:123456 (Example School (fictional))'s encryption key" in check.message
    assert "LA:920" not in check.message and [d["party"] for d in check.details["partners"]] == ["URN:123456"] * 2
    assert "ask URN:123456" in (check.hint or "") and "partners add" in (check.hint or "")
    clock.advance(days=30)
    check = _check(_run(me), "partners.keys")
    assert check.severity == "error" and "has no encryption key valid now (we cannot send to it)" in check.message


def test_a_damaged_partner_file_is_reported_and_the_other_checks_still_run(tmp_path: Path) -> None:
    me = _party(tmp_path)
    _with_drop_folder(me, tmp_path)
    school = make_party(tmp_path, "URN:123456", "Example School (fictional)", me.clock)
    me.trust(school)
    (me.home.partners / "URN_123456.json").write_text('{"fingerprint": 1}')
    report = _run(me)
    check = _check(report, "partners.keys")
    assert not check.ok and check.details["code"] == "home.file-damaged" and "restore" in (check.hint or "")
    assert _check(report, "ledger").ok and _check(report, "clock").ok


def test_ledger_migrations_pending_and_a_changed_audit_entry(tmp_path: Path) -> None:
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    with Ledger(p.home.ledger_db, clock=p.clock) as ledger:
        ledger.advance("in", "a" * 32, "URN:123456", *IMPORT_PATH)
    db = sqlite3.connect(p.home.ledger_db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    db.execute("UPDATE audit SET data = '{}' WHERE seq = 1")
    db.commit()
    db.close()
    problems = _problems(_run(p))
    assert problems["ledger"].severity == "warning" and "1 migrations pending" in problems["ledger"].message
    assert problems["audit"].severity == "error" and "entry 1: its contents were changed" in problems["audit"].message
    assert sqlite3.connect(p.home.ledger_db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1


def test_a_damaged_ledger_is_an_error_and_the_audit_is_not_checked(tmp_path: Path) -> None:
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    p.home.ledger_db.write_bytes(b"not a database at all\n" * 100)
    p.home.ledger_db.chmod(0o600)
    problems = _problems(_run(p))
    assert problems["ledger"].details["code"] == "ledger.corrupt" and "backup" in (problems["ledger"].hint or "")
    assert problems["audit"].message.startswith("not checked")


def test_free_disk_space_below_the_limits(tmp_path: Path) -> None:
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    free = _check(_run(p), "disk").details["free_bytes"]
    warn = _check(_run(p, limits=Limits(low_disk=free * 2, critical_disk=1)), "disk")
    assert (warn.ok, warn.severity) == (False, "warning") and "free space" in (warn.hint or "")
    error = _check(_run(p, limits=Limits(low_disk=free * 4, critical_disk=free * 2)), "disk")
    assert (error.ok, error.severity) == (False, "error") and error.message.startswith("only ")


def test_a_clock_behind_what_the_home_recorded_is_an_error(tmp_path: Path) -> None:
    t0 = _now()
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    now = FixedClock(t0 + dt.timedelta(minutes=1))
    with Ledger(p.home.ledger_db, clock=p.clock) as ledger:
        ledger.advance("in", "a" * 32, "URN:123456", *IMPORT_PATH)
    assert _check(_run(p, clock=now), "clock").ok
    with Ledger(p.home.ledger_db, clock=FixedClock(t0 + dt.timedelta(hours=2))) as ledger:
        ledger.advance("in", "b" * 32, "URN:123456", *IMPORT_PATH)
    check = _check(_run(p, clock=now), "clock")
    assert not check.ok and check.severity == "error" and "went backwards" in check.message
    assert check.details["newest"] == timefmt.fmt(t0 + dt.timedelta(hours=2)) and "NTP" in (check.hint or "")


def test_the_drop_folder_server_time_is_compared_with_ours(tmp_path: Path) -> None:
    """Our clock (injected) an hour ahead of the real one, which stamps the probe file in the folder."""
    ahead = FixedClock(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    p = _party(tmp_path, clock=FixedClock(_now() - DAY))
    _with_drop_folder(p, tmp_path)
    check = _check(_run(p, clock=ahead), "clock")
    assert not check.ok and check.severity == "warning" and "60 minutes behind ours" in check.message
    assert isinstance(check.details["server_time"], int)


def test_no_drop_folder_of_our_own_is_a_warning(tmp_path: Path) -> None:
    p = _party(tmp_path)
    check = _problems(_run(p))["drop-folder"]
    assert check.severity == "warning" and "export-card --sftp-url" in (check.hint or "")


def test_an_unwritable_drop_folder_is_an_error(tmp_path: Path) -> None:
    p = _party(tmp_path)
    drop = _with_drop_folder(p, tmp_path)
    drop.rmdir()
    check = _problems(_run(p))["drop-folder"]
    assert check.severity == "error" and check.details["code"] == "remote.missing"


def test_a_passphrase_we_cannot_get_leaves_the_drop_folder_unchecked_with_a_warning(tmp_path: Path) -> None:
    def unavailable(purpose: str, *, confirm: bool = False) -> bytes:
        raise ConfigError(f"a passphrase is needed to {purpose}", code="passphrase.unavailable",
                          hint="set LAXCHANGE_PASSPHRASE")

    p = _party(tmp_path, sftp_url="sftp://la@127.0.0.1:1/inbox", host_key_fingerprints=["SHA256:" + "A" * 43])

    def refuse(endpoint: Endpoint) -> object:
        raise unavailable("unlock the SSH key")

    report = run_checks(p.home, clock=p.clock, passphrase=unavailable, transports=refuse)  # type: ignore[arg-type]
    check = _check(report, "drop-folder")
    assert (check.ok, check.severity) == (False, "warning") and check.message.startswith("not checked")
    assert check.hint == "set LAXCHANGE_PASSPHRASE"


@pytest.mark.parametrize("mode", [0o644, 0o604])
def test_each_loose_mode_is_named(tmp_path: Path, mode: int) -> None:
    p = _party(tmp_path)
    p.home.ssh_client_key.chmod(mode)
    check = _check(_run(p), "permissions.keys")
    assert not check.ok and f"ssh_ed25519 (mode {mode:o}, not 600)" in check.message


def test_the_ssh_client_check_names_the_backend_and_whether_ssh_is_there(tmp_path: Path) -> None:
    p = _party(tmp_path)
    check = _check(_run(p), "ssh-client")
    assert check.ok and check.details["default_backend"] == "paramiko" and check.details["openssh_endpoints"] == []
    assert check.details["ssh"] and "post-quantum key exchange: sntrup761x25519" in check.message
    config = p.home.config_file
    data = json.loads(config.read_text()) if config.exists() else {}
    data["sftp_backend"] = "openssh"
    data["endpoints"] = {"URN:123456": {"url": "sftp://u@127.0.0.1:1/x",
                                        "host_key_fingerprints": ["SHA256:" + "A" * 43]}}
    config.write_text(json.dumps(data))
    check = _check(_run(p, reach=lambda ep, s: None), "ssh-client")
    assert check.ok and check.message.startswith("SFTP backend openssh")
    assert check.details["openssh_endpoints"] == ["URN:123456"]


def test_uploads_left_at_an_endpoint_no_longer_in_use_are_a_warning_naming_where(tmp_path: Path) -> None:
    """Those at an endpoint in use go with its next upload; at a URL no partner has any more
    (changed, or the partner gone) no run will ever connect to remove them."""
    p = _party(tmp_path)
    drop = _with_drop_folder(p, tmp_path)
    journal = part_journal(p.home)
    for url, names in ((f"file://{drop}", ["/d/.a.lax.part-00aa00aa00aa", "/d/.b.lax.part-00bb00bb00bb"]),
                       ("sftp://la@old.example.invalid:22/drop", ["/drop/.c.lax.part-00cc00cc00cc"])):
        log = journal.open(url)
        for n in names:
            log.add(n)
        log.close()
    check = _check(_run(p), "uploads.leftover")
    assert (check.ok, check.severity) == (False, "warning")
    assert "1 temporary upload left at endpoints no longer in use" in check.message
    assert "sftp://la@old.example.invalid:22/drop (1)" in check.message
    assert check.hint is not None and str(journal.root) in check.hint
    assert check.details["pending"] == 2
    stale = next(x for x in journal.leftovers() if x.url != f"file://{drop}")
    stale.folder.joinpath(next(n for n in os.listdir(stale.folder) if n.endswith(".log"))).unlink()  # swept by hand
    check = _check(_run(p), "uploads.leftover")
    assert check.ok and "2 temporary uploads left by ended connections" in check.message


def _escaped(path: Path) -> str:
    """A path as the kernel's mount table writes it (a space as \\040)."""
    return str(path).replace(" ", "\\040")


def _mounts(tmp: Path, *lines: str) -> Path:
    table = tmp / "mounts"
    table.write_text("".join(line + "\n" for line in lines))
    return table


def test_a_home_on_a_network_file_system_is_an_error_naming_the_mount(tmp_path: Path) -> None:
    """The longest mount point holding the home decides, escapes and all (a space is \\040)."""
    share = tmp_path / "council share"
    share.mkdir()
    p = _party(share)
    root = p.home.root.resolve()
    local = "/dev/vda / ext4 rw 0 0"
    nfs = f"srv:/export {_escaped(root.parent)} nfs4 rw,vers=4.2 0 0"
    check = _check(_run(p, mounts=_mounts(tmp_path, local, nfs)), "filesystem")
    assert (check.ok, check.severity, check.details["type"]) == (False, "error", "nfs4")
    assert check.details["mount_point"] == str(root.parent)
    assert "network file system (nfs4" in check.message and "LAXCHANGE_HOME" in (check.hint or "")
    deeper = f"/dev/vdb {_escaped(root)} xfs rw 0 0"  # a local disk mounted inside the NFS share, holding the home
    check = _check(_run(p, mounts=_mounts(tmp_path, local, nfs, deeper)), "filesystem")
    assert check.ok and check.details == {"mount_point": str(root), "type": "xfs"}
    check = _check(_run(p, mounts=tmp_path / "no-such-table"), "filesystem")
    assert check.ok and "not checked" in check.message


def test_a_passphrase_that_does_not_open_the_keys_is_an_error_asked_for_once(tmp_path: Path) -> None:
    """doctor passed a home whose passphrase no longer opened its keys (the nightly run then failed,
    exit 5): the files were there, so keys.usable was content. keys.unlock opens them, with the
    passphrase the nightly job would use, asked for once for every check."""
    p = _party(tmp_path)
    _with_drop_folder(p, tmp_path)
    asked: list[str] = []

    def wrong(purpose: str, *, confirm: bool = False) -> bytes:
        asked.append(purpose)
        return b"not the passphrase at all"

    report = run_checks(p.home, clock=p.clock, passphrase=wrong, timeout=2)
    check = _problems(report)["keys.unlock"]
    assert check.severity == "error" and check.details["code"] == "passphrase.wrong"
    assert "wrong passphrase" in check.message and len(asked) == 1, asked
    assert _check(_run(p), "keys.unlock").ok
