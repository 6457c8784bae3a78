"""Issue 10 item 18: `keys rotate --ssh` with an overlap, and `keys passphrase` that survives a crash halfway."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization

from laxchange import age
from laxchange._util import timefmt
from laxchange.errors import ConfigError
from laxchange.exchange import ConfigEndpoints, Party
from laxchange.transport import Endpoint
from laxchange.trust import keystore as keystore_module
from laxchange.trust import read_card
from laxchange.trust.keystore import KeyStore
from tests.support.parties import PASSPHRASE, WORK_FACTOR, make_party, passphrase, record, world
from tests.support.transport_fixtures import embedded_server

NEW = b"a new passphrase, not a secret"


def _opens(path: Path, secret: bytes) -> bool:
    data = path.read_bytes()
    if path.suffix == ".age":
        try:
            age.decrypt_bytes([age.ScryptIdentity(secret)], data)
        except age.NoMatchError:
            return False
        return True
    try:
        serialization.load_ssh_private_key(data, password=secret)
    except ValueError:
        return False
    return True


def _ssh_key(path: Path, secret: bytes = PASSPHRASE) -> paramiko.PKey:
    return paramiko.Ed25519Key(filename=str(path), password=secret)  # type: ignore[arg-type]


def test_rotate_ssh_keeps_the_old_key_for_the_overlap_and_on_the_card(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    old_line = a.store.ring().ssh_public_key
    old_key = _ssh_key(a.home.ssh_client_key)
    new_line = a.store.rotate_ssh(overlap_days=7)
    assert new_line != old_line and new_line.split()[1] == _ssh_key(a.home.ssh_client_key).get_base64()
    assert _ssh_key(a.store.previous_ssh_key).get_base64() == old_key.get_base64()
    card, _ = a.card()
    partner, _ = read_card(card)
    assert partner.ssh_public_key == new_line and partner.ssh_previous_public_key == old_line
    b.directory.add(card)  # a rotation of the SSH key alone is signed by the current keys: accepted
    with pytest.raises(ConfigError) as exc:
        a.store.rotate_ssh()
    assert exc.value.code == "ssh-key.overlap"

    # A partner whose server still knows only the old key keeps accepting us during the overlap.
    drop = tmp_path / "srv" / "drop"
    drop.mkdir(parents=True)
    with embedded_server(drop.parent, old_key, tmp_path) as srv:
        ConfigEndpoints(a.home).add(Endpoint(b.party, f"sftp://u@127.0.0.1:{srv.port}/drop", (srv.fingerprint,)))
        with Party.from_home(a.home, passphrase=passphrase, clock=a.clock, keystore=a.store,
                             directory=a.directory) as me:
            me.pack(record(1), message_type="pep-transfer", recipient=b.party, out=tmp_path / "x.lax")
            result = me.send(b.party, [tmp_path / "x.lax"])
            assert result.ok, result.first_error()
            assert me.prune_keys() == [], "the previous SSH key stays for the overlap"
            a.clock.advance(days=8)
            gone = me.prune_keys()
            assert [g["use"] for g in gone] == ["ssh"]
            assert any(e["event"] == "key.destroyed" and e["data"]["use"] == "ssh" for e in me.ledger.audit_entries())
    assert not a.store.previous_ssh_key.exists()
    partner, _ = read_card(a.card()[0])
    assert partner.ssh_previous_public_key is None
    a.store.rotate_ssh()  # and the next rotation may start


def test_an_incident_in_an_overlap_replaces_the_ssh_key_at_once_and_keeps_neither_old_one(tmp_path: Path) -> None:
    """The lost-key runbook's `keys rotate --ssh --overlap-days 0` during an earlier rotation's overlap:
    refused before (every key but the newest had to wait for the overlap's end), now the new key
    replaces the current one at once and the earlier previous key is destroyed, so no key that may
    be the lost one is offered to servers for weeks. An ordinary rotation is still refused then."""
    a = make_party(tmp_path, "LA:919", "Example Council")
    first = a.store.ring().ssh_public_key
    second = a.store.rotate_ssh(overlap_days=30)
    with pytest.raises(ConfigError) as refused:
        a.store.rotate_ssh(overlap_days=30)
    assert refused.value.code == "ssh-key.overlap" and "--overlap-days 0" in (refused.value.hint or "")
    third = a.store.rotate_ssh(overlap_days=0)
    ring = a.store.ring()
    assert ring.ssh_public_key == third and ring.ssh_previous_public_key == second
    assert first not in {ring.ssh_public_key, ring.ssh_previous_public_key}
    assert ring.ssh_previous_until == timefmt.fmt(a.clock.now()), "no overlap: the replaced key is pruned next"
    a.store.prune()
    assert a.store.ring().ssh_previous_public_key is None and not a.store.previous_ssh_key.exists()
    assert [s["status"] for s in a.store.ssh_key_states()] == ["valid"]


def test_change_passphrase_reencrypts_every_private_file(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    a.store.rotate()  # an archived key too
    a.store.rotate_ssh()  # and a previous SSH key
    files = a.store.private_files()
    assert any(p.parent.name == "archive" for p in files) and len([p for p in files if p.suffix != ".age"]) == 2
    assert a.store.change_passphrase(NEW) == {"files": len(files), "changed": len(files)}
    assert all(_opens(p, NEW) and not _opens(p, PASSPHRASE) for p in files)
    fresh = KeyStore(a.home, passphrase=lambda *_a, **_k: NEW, clock=a.clock, work_factor=WORK_FACTOR)
    assert fresh.signers()


def test_wrong_old_passphrase_changes_nothing(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    before = {p: p.read_bytes() for p in a.store.private_files()}
    with pytest.raises(ConfigError) as exc:
        a.store.change_passphrase(NEW, old=b"wrong")
    assert exc.value.code == "passphrase.wrong"
    assert {p: p.read_bytes() for p in a.store.private_files()} == before


def test_a_crash_halfway_leaves_every_file_openable_and_a_rerun_finishes(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council", mldsa=True)
    a.store.rotate()
    files = a.store.private_files()
    real = keystore_module._rewrite
    done: list[Path] = []

    def crash_after_two(path: Path, data: bytes) -> None:
        if len(done) == 2:
            raise KeyboardInterrupt("power cut")
        real(path, data)
        done.append(path)

    monkeypatch.setattr(keystore_module, "_rewrite", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        a.store.change_passphrase(NEW)
    monkeypatch.setattr(keystore_module, "_rewrite", real)
    assert all(_opens(p, NEW) != _opens(p, PASSPHRASE) for p in files), "each file is wholly old or wholly new"
    assert sum(_opens(p, NEW) for p in files) == 2
    assert not list(a.home.keys.rglob("*.tmp")), "no temporary file left behind"
    # The keys that still need the old passphrase say what happened.
    fresh = KeyStore(a.home, passphrase=lambda *_a, **_k: PASSPHRASE, clock=a.clock, work_factor=WORK_FACTOR)
    with pytest.raises(ConfigError) as exc:
        for k in fresh.ring().keys:
            fresh._secret(k)
    assert exc.value.code == "passphrase.wrong" and "did not finish" in (exc.value.hint or "")
    # Running it again with the same old and new passphrases finishes the job.
    again = KeyStore(a.home, passphrase=passphrase, clock=a.clock, work_factor=WORK_FACTOR, ssh_kdf_rounds=1)
    assert again.change_passphrase(NEW) == {"files": len(files), "changed": len(files) - 2}
    assert all(_opens(p, NEW) for p in files) and not again.passphrase_marker.exists()


@pytest.mark.parametrize("make", ["directory", "fifo", "huge"])
def test_a_passphrase_file_that_is_no_such_file_is_a_config_error_not_a_crash(tmp_path: Path, make: str) -> None:
    """`LAXCHANGE_PASSPHRASE_FILE=secrets` naming a folder (a walk-through: exit 70, IsADirectoryError),
    a FIFO, or some large file: exit 5 with a code, as a missing or loose one is."""
    from laxchange.errors import ConfigError
    from laxchange.passphrase import MAX_PASSPHRASE_FILE, passphrase_from_file

    path = tmp_path / "secrets"
    if make == "directory":
        path.mkdir(mode=0o700)
    elif make == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.write_bytes(b"x" * (MAX_PASSPHRASE_FILE + 1))
        path.chmod(0o600)
    with pytest.raises(ConfigError) as e:
        passphrase_from_file(path)
    assert e.value.exit_code == 5 and e.value.code.startswith("file."), e.value.code
    assert str(path) in e.value.message
