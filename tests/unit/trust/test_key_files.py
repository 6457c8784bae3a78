"""Private key files whose plaintext is a standard key with our metadata beside it (issue 12 #2), and the
migration of homes whose files hold the JSON of earlier releases, on first use, keeping a backup."""

from __future__ import annotations

import base64
import stat
import subprocess
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from laxchange import age, dsse
from laxchange._util import jsonio
from laxchange.errors import ConfigError
from laxchange.trust.keystore import ALG_X25519, ENCRYPTION, SIGNING, KeyStore, key_file_text, read_key_file_text
from tests.support.parties import PASSPHRASE, WORK_FACTOR, make_party, passphrase, record, world


def _plain(path: Path) -> bytes:
    return age.decrypt_bytes([age.ScryptIdentity(PASSPHRASE)], path.read_bytes())


def _fresh(home, clock=None) -> KeyStore:  # type: ignore[no-untyped-def]
    """The key store a later run (after the upgrade) opens on the same home."""
    return KeyStore(home, passphrase=passphrase, clock=clock, work_factor=WORK_FACTOR, ssh_kdf_rounds=1)


def test_encryption_key_files_are_age_identity_files(tmp_path: Path) -> None:
    for alg, prefix in (("mlkem768x25519", "AGE-SECRET-KEY-PQ-1"), (ALG_X25519, "AGE-SECRET-KEY-1")):
        p = make_party(tmp_path / alg, "LA:919", "Example Council", encryption_alg=alg)
        (info,) = [k for k in p.store.ring().keys if k.use == ENCRYPTION]
        lines = _plain(p.home.keys / f"{info.kid}.age").decode("ascii").splitlines()
        assert lines[0] == f'# laxchange private key: {{"alg":"{alg}","kid":"{info.kid}","use":"encryption"}}'
        assert lines[1] == f"# public key: {info.public}"
        # the Bech32 human-readable part ends at the last "1" (the data part never holds one): compare it whole,
        # since an X25519 key's data may itself begin with "PQ" (it did, once in a thousand runs)
        assert len(lines) == 3 and lines[2][:lines[2].rindex("1") + 1] == prefix
        assert str(age.parse_identity(lines[2]).recipient()) == info.public
        if alg == ALG_X25519:  # an independent implementation takes the identity line as it is
            ident = pyrage.x25519.Identity.from_str(lines[2])
            assert str(ident.to_public()) == info.public


def test_signing_key_files_are_pkcs8_pem(tmp_path: Path) -> None:
    p = make_party(tmp_path, "LA:919", "Example Council", mldsa=True)
    for info in (k for k in p.store.ring().keys if k.use == SIGNING):
        plain = _plain(p.home.keys / f"{info.kid}.age")
        assert plain.splitlines()[0].startswith(b"# laxchange private key: ")
        key = serialization.load_pem_private_key(plain, password=None)  # the comment lines are skipped
        want = ed25519.Ed25519PrivateKey if info.alg == dsse.ED25519 else mldsa.MLDSA65PrivateKey
        assert isinstance(key, want)
        assert dsse.b64(key.public_key().public_bytes_raw()) == info.public
        if info.alg == dsse.ED25519:  # and OpenSSL reads it straight from what `age -d` prints
            r = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=plain, capture_output=True,
                               check=True, timeout=30)
            assert r.stdout[-32:] == key.public_key().public_bytes_raw()


def test_a_key_file_for_another_key_or_with_extra_bytes_is_damaged(tmp_path: Path) -> None:
    p = make_party(tmp_path, "LA:919", "Example Council")
    enc, sign = (next(k for k in p.store.ring().keys if k.use == u) for u in (ENCRYPTION, SIGNING))
    good = _plain(p.home.keys / f"{enc.kid}.age")
    other = age.HybridIdentity.generate()
    cases = [
        good.replace(enc.kid.encode(), b"0" * 32, 1),  # metadata naming another key
        good.rsplit(b"\n", 2)[0] + b"\n" + str(other).encode() + b"\n",  # someone else's identity
        good + b"AGE-SECRET-KEY-PQ-1X\n",  # a second identity line
        good.split(b"\n", 1)[1],  # no laxchange comment
    ]
    for bad in cases:
        with pytest.raises(ValueError):
            read_key_file_text(bad, enc)
    with pytest.raises(ValueError):
        read_key_file_text(_plain(p.home.keys / f"{sign.kid}.age"), enc)
    (p.home.keys / f"{enc.kid}.age").write_bytes(age.encrypt_bytes([age.ScryptRecipient(PASSPHRASE, 10)], cases[1]))
    with pytest.raises(ConfigError) as ei:
        _fresh(p.home).identity(enc.kid)
    assert ei.value.code == "key.damaged" and "not the private half" in ei.value.message


def _make_legacy(store: KeyStore, home) -> dict[Path, bytes]:  # type: ignore[no-untyped-def]
    """Rewrite every key file as releases before issue 12 did ({"alg","kid","secret"} JSON)."""
    written = {}
    for path in sorted(home.keys.glob("*.age")) + sorted((home.keys / "archive").glob("*.age")):
        info = store.ring().find_key(path.stem)
        secret, legacy = read_key_file_text(_plain(path), info)
        assert not legacy
        old = jsonio.dumps_canonical({"alg": info.alg, "kid": info.kid, "secret": base64.b64encode(secret).decode()})
        data = age.encrypt_bytes([age.ScryptRecipient(PASSPHRASE, WORK_FACTOR)], old)
        path.write_bytes(data)
        written[path] = data
    return written


def test_an_existing_home_migrates_on_first_use_keeping_a_backup(tmp_path: Path) -> None:
    a, b, _c = world(tmp_path)
    archived = b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION)[0]
    old_package = a.pack(record(1), "URN:123456")  # to the key about to be archived
    b.clock.advance(days=1)
    b.store.rotate(overlap_days=1)
    assert a.directory.add(b.card()[0])[1] == "rotated"
    b.clock.advance(days=2)
    assert len(b.store.prune()) == 1  # the old signing key: its file is gone before the upgrade
    legacy = _make_legacy(b.store, b.home)
    assert (b.home.keys / "archive" / f"{archived.kid}.age") in legacy and len(legacy) == 3
    store = _fresh(b.home, b.clock)
    b.store = store
    b.directory._cache.clear()
    # First use: opening a package unlocks a key, and every key file is migrated.
    assert b.open(a.pack(record(2), "URN:123456")).document == record(2)
    for path, data in legacy.items():
        _, was_legacy = read_key_file_text(_plain(path), store.ring().find_key(path.stem))
        assert not was_legacy, path
        backup = b.home.keys / "pre-identity-backup" / path.name
        assert backup.read_bytes() == data  # exactly as it was
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((b.home.keys / "pre-identity-backup").stat().st_mode) == 0o700
    assert b.open(old_package).document == record(1)  # the archived key, migrated too, still opens
    # Running again changes nothing; a new passphrase re-encrypts the backups too.
    before = {p: p.read_bytes() for p in (b.home.keys / "pre-identity-backup").iterdir()}
    assert _fresh(b.home)._migrate_key_files() == []
    assert {p: p.read_bytes() for p in (b.home.keys / "pre-identity-backup").iterdir()} == before
    assert set(before) <= set(store.private_files())
    store.change_passphrase(b"another passphrase, still not a secret")
    for p in before:
        age.decrypt_bytes([age.ScryptIdentity(b"another passphrase, still not a secret")], p.read_bytes())


def test_prune_destroys_a_retired_signing_keys_backup_too(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    signing = next(k for k in a.store.ring().keys if k.use == SIGNING)
    a.clock.advance(days=1)
    a.store.rotate(overlap_days=0)
    _make_legacy(a.store, a.home)
    store = _fresh(a.home, a.clock)
    store.signers()  # first use: migrates, backing up the old signing key as well
    backup = a.home.keys / "pre-identity-backup" / f"{signing.kid}.age"
    assert backup.exists()
    a.clock.advance(days=1)
    assert [g["kid"] for g in store.prune()] == [signing.kid]
    assert not backup.exists() and not (a.home.keys / f"{signing.kid}.age").exists()


def test_key_file_text_round_trips(tmp_path: Path) -> None:
    p = make_party(tmp_path, "LA:919", "Example Council", mldsa=True)
    for info in p.store.ring().keys:
        secret = p.store._secret(info)
        assert read_key_file_text(key_file_text(info, secret), info) == (secret, False)
