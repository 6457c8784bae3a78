"""The key store keeps unlocked signers and decryption identities in memory by key id (each
expanded once). A cache must never outlive the keyring's word: a rotated key stops signing at
once, a revoked one is never used, and a warm key store decides exactly as a fresh one does.
(The receiver's side, a sender key revoked after a package was opened once, is
tests/unit/test_package.py::test_revoked_sender_key.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from laxchange import age, package
from laxchange.errors import ConfigError, SecurityError
from laxchange.trust.keystore import ENCRYPTION, KeyStore
from tests.support.parties import passphrase, record, world


def _fresh(store: KeyStore) -> KeyStore:
    return KeyStore(store.home, passphrase=passphrase, clock=store.clock)


def test_identity_is_expanded_once_per_key(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    kid = b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION)[0].kid
    first = b.store.identity(kid)
    assert isinstance(first, age.HybridIdentity) and b.store.identity(kid) is first
    assert b.open(a.pack(record(), b.party)).document == record()
    assert b.store.identity(kid) is first
    with pytest.raises(KeyError):
        b.store.identity("0" * 32)


def test_rotated_signing_key_signs_through_its_overlap_then_the_new_one_with_a_warm_cache(tmp_path: Path) -> None:
    """docs/operators.md: partners add our new card within the overlap. Until they do, what we send
    must still verify: a walk-through rotated, notified a placement, and the school quarantined it
    as forged (package.bad-signature), since the new key signed at once. The old key signs until
    its overlap ends, then the new one, whether or not the signer cache is warm."""
    a, b, _ = world(tmp_path)
    old = [s.keyid for s in a.store.signers()]
    assert b.open(a.pack(record(), b.party)).manifest.sender_key_ids == old  # the cache is warm
    a.clock.advance(minutes=1)
    a.store.rotate(overlap_days=30)
    assert [s.keyid for s in a.store.signers()] == old == [s.keyid for s in _fresh(a.store).signers()]
    assert b.open(a.pack(record(), b.party)).manifest.sender_key_ids == old, "b has not added the new card"
    b.trust(a)  # the new card, in the overlap
    assert b.open(a.pack(record(), b.party)).manifest.sender_key_ids == old
    a.clock.advance(days=31)  # (one clock for both parties)
    new = [s.keyid for s in a.store.signers()]
    assert new != old and new == [s.keyid for s in _fresh(a.store).signers()]
    assert b.open(a.pack(record(), b.party)).manifest.sender_key_ids == new


def test_revoked_signing_key_is_never_used_from_the_cache(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    kid = a.store.signers()[0].keyid
    a.pack(record(), b.party)  # warm
    a.store.revoke(kid, "key-compromise")
    with pytest.raises(ConfigError) as ei:
        a.pack(record(), b.party)
    assert ei.value.code == "key.no-signing-key"


def test_rotated_encryption_key_old_packages_open_and_new_ones_use_the_new_key(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    before = a.pack(record(), b.party)
    old = b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION)[0].kid
    assert b.open(before).manifest.recipient_key_id == old  # warm
    b.clock.advance(minutes=1)
    b.store.rotate(overlap_days=30)
    a.trust(b)
    after = a.pack(record(), b.party)
    new = b.open(after).manifest.recipient_key_id
    assert new != old and b.store.identity(new) is not b.store.identity(old)
    assert b.open(before).document == record()  # the old key, archived, still opens what was sent to it


def test_a_warm_key_store_decides_as_a_fresh_one_after_revoking_its_encryption_key(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    data = a.pack(record(), b.party)
    kid = b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION)[0].kid
    b.store.identity(kid)  # warm
    b.store.revoke(kid, "key-compromise")
    outcomes = []
    for store in (b.store, _fresh(b.store)):  # warm, then fresh: the same verdict
        try:
            outcomes.append(("opened", package.open_package(io.BytesIO(data), keystore=store,
                                                            directory=b.directory, clock=b.clock).document))
        except SecurityError as exc:
            outcomes.append(("refused", exc.code))
    assert outcomes[0] == outcomes[1]
