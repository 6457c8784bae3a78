"""Keys at rest, rotation, revocation, partner cards and the directory (no TOFU)."""

from __future__ import annotations

import copy
import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from laxchange import age, dsse
from laxchange._util import timefmt
from laxchange.errors import ConfigError, SecurityError, UsageError
from laxchange.exchange import DirectoryEndpoints
from laxchange.trust import PartnerDirectory, normalise_fingerprint, read_card
from laxchange.trust.keystore import ALG_X25519, ENCRYPTION, SIGNING, KeyStore
from tests.support.parties import PASSPHRASE, T0, WORK_FACTOR, make_party, passphrase


def test_init_creates_encrypted_private_keys_0600(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    ring = a.store.ring()
    assert {(k.use, k.alg) for k in ring.keys} == {(ENCRYPTION, "mlkem768x25519"), (SIGNING, "ed25519")}
    assert ring.keys[0].public.startswith("age1pq1")
    for k in ring.keys:
        path = a.home.keys / f"{k.kid}.age"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = path.read_bytes()
        assert data.startswith(b"age-encryption.org/v1\n-> scrypt ")
        assert f" {WORK_FACTOR}\n".encode() in data.split(b"\n")[1] + b"\n"
        plain = age.decrypt_bytes([age.ScryptIdentity(PASSPHRASE)], data)
        assert k.kid.encode() in plain
        with pytest.raises(age.NoMatchError):
            age.decrypt_bytes([age.ScryptIdentity(b"wrong")], data)


def test_ssh_identity_is_openssh_encrypted_and_on_the_card(tmp_path):
    from cryptography.hazmat.primitives import serialization

    a = make_party(tmp_path, "LA:919", "Example Council")
    pem = a.home.ssh_client_key.read_bytes()
    assert pem.startswith(b"-----BEGIN OPENSSH " + b"PRIVATE KEY-----")  # split: no key marker in the repo
    assert stat.S_IMODE(a.home.ssh_client_key.stat().st_mode) == 0o600
    with pytest.raises((TypeError, ValueError)):
        serialization.load_ssh_private_key(pem, password=None)
    key = serialization.load_ssh_private_key(pem, password=PASSPHRASE)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    card, _ = a.card()
    partner, _ = read_card(card)
    assert partner.ssh_public_key.startswith(line + " ")


def test_key_file_readable_by_others_is_refused(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    kid = a.store.ring().keys_valid_at(T0, SIGNING)[0].kid
    os.chmod(a.home.keys / f"{kid}.age", 0o640)
    fresh = KeyStore(a.home, passphrase=passphrase, clock=a.clock)
    with pytest.raises(ConfigError) as ei:
        fresh.signers()
    assert ei.value.code == "key.permissions"


def test_wrong_passphrase_is_a_config_error(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    fresh = KeyStore(a.home, passphrase=lambda p, confirm=False: b"nope", clock=a.clock)
    with pytest.raises(ConfigError) as ei:
        fresh.signers()
    assert ei.value.code == "passphrase.wrong"


def test_init_twice_and_bad_party_are_refused(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    with pytest.raises(ConfigError):
        a.store.init("LA:919", "Again")
    s = KeyStore(a.home.__class__(tmp_path / "x"), passphrase=passphrase, work_factor=WORK_FACTOR)
    with pytest.raises(UsageError):
        s.init("919", "No prefix")


def test_x25519_and_mldsa_options(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council", encryption_alg=ALG_X25519, mldsa=True)
    ring = a.store.ring()
    assert {k.alg for k in ring.keys} == {"x25519", "ed25519", "ml-dsa-65"}
    assert ring.required_signature_algorithms == ["ed25519", "ml-dsa-65"]
    assert {s.alg for s in a.store.signers()} == {"ed25519", "ml-dsa-65"}


def test_card_fingerprint_required_and_must_match(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School")
    card, fpr = a.card()
    with pytest.raises(UsageError) as ei:
        b.directory.add(card)
    assert ei.value.code == "card.fingerprint-required"
    other = make_party(tmp_path, "LA:920", "Other")
    _, wrong = other.card()
    with pytest.raises(SecurityError) as ei:
        b.directory.add(card, fingerprint=wrong)
    assert ei.value.code == "card.fingerprint-mismatch"
    assert b.directory.get_optional("LA:919") is None
    partner, outcome = b.directory.add(card, fingerprint=fpr.lower().replace("-", " "))
    assert outcome == "added" and partner.fingerprint == fpr
    assert normalise_fingerprint(fpr.replace("-", "")) == fpr


def test_partner_exposes_transport_fields(tmp_path):
    fp = "SHA256:" + "A" * 43
    a = make_party(tmp_path, "LA:919", "Example Council", sftp_url="sftp://la919@127.0.0.1:2222/inbox",
                   host_key_fingerprints=[fp])
    b = make_party(tmp_path, "URN:123456", "Example School")
    b.trust(a)
    p = PartnerDirectory(b.home).get("LA:919")
    assert p.sftp_url == "sftp://la919@127.0.0.1:2222/inbox"
    assert p.host_key_fingerprints == [fp]
    assert [x.party for x in b.directory.list()] == ["LA:919"]
    b.directory.remove("LA:919")
    with pytest.raises(ConfigError):
        b.directory.get("LA:919")


def test_tampered_card_is_refused(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    card, _fpr = a.card()
    import base64
    import json

    payload = json.loads(base64.b64decode(card["payload"]))
    payload["name"] = "Evil Council"
    forged = copy.deepcopy(card)
    forged["payload"] = base64.b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).decode()
    with pytest.raises(SecurityError) as ei:
        read_card(forged)
    assert ei.value.code == "card.invalid"


def test_changed_key_card_is_refused_but_rotation_is_accepted(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School", clock=a.clock)
    card, fpr = a.card()
    b.directory.add(card, fingerprint=fpr)
    # An impostor makes a card for LA:919 with its own keys: refused, with or without the old fingerprint.
    impostor = make_party(tmp_path / "evil", "LA:919", "Example Council")
    evil, evil_fpr = impostor.card()
    with pytest.raises(SecurityError) as ei:
        b.directory.add(evil)
    assert ei.value.code == "card.changed"
    with pytest.raises(SecurityError) as ei:
        b.directory.add(evil, fingerprint=fpr)
    assert ei.value.code == "card.changed"
    assert b.directory.get("LA:919").fingerprint == fpr
    # A genuine rotation is signed by the old key during the overlap: accepted without a fingerprint.
    a.clock.advance(days=1)
    a.store.rotate(overlap_days=30)
    rotated, rfpr = a.card()
    partner, outcome = b.directory.add(rotated)
    assert outcome == "rotated" and partner.fingerprint == rfpr
    assert len(partner.keys_valid_at(a.clock.now(), ENCRYPTION)) == 2
    assert len(partner.keys_valid_at(a.clock.now() + dt.timedelta(days=31), ENCRYPTION)) == 1
    # Explicit re-add of a changed card with its own confirmed fingerprint is allowed.
    _, outcome = b.directory.add(evil, fingerprint=evil_fpr)
    assert outcome == "replaced"


def test_rotation_archives_old_keys_and_revocation_is_recorded(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    old = a.store.ring().keys_valid_at(T0, ENCRYPTION)[0]
    a.clock.advance(days=1)
    a.store.rotate(overlap_days=10)
    assert (a.home.keys / "archive" / f"{old.kid}.age").exists()
    assert not (a.home.keys / f"{old.kid}.age").exists()
    fresh = KeyStore(a.home, passphrase=passphrase, clock=a.clock)
    assert isinstance(fresh.identity(old.kid), age.HybridIdentity)
    new_sign = fresh.ring().keys_valid_at(a.clock.now(), SIGNING)[0]
    info = fresh.revoke(new_sign.kid, "key-compromise")
    assert info.revoked_at == timefmt.fmt(a.clock.now()) and info.revocation_reason == "key-compromise"
    assert fresh.ring().find_key(new_sign.kid).status_at(a.clock.now()) == "revoked"
    with pytest.raises(UsageError):
        fresh.revoke(new_sign.kid, "again")
    with pytest.raises(UsageError):
        fresh.revoke("0" * 32, "no such key")


def test_card_cannot_drop_a_known_revocation(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council", mldsa=False)
    b = make_party(tmp_path, "URN:123456", "Example School", clock=a.clock)
    a.clock.advance(days=1)
    a.store.rotate(overlap_days=30)
    old_sign = next(k for k in a.store.ring().keys if k.use == SIGNING)
    a.store.revoke(old_sign.kid, "superseded")
    card, fpr = a.card()
    b.directory.add(card, fingerprint=fpr)
    assert b.directory.get("LA:919").find_key(old_sign.kid).revoked_at is not None


def test_dsse_pae_vector():
    # From the DSSE specification (protocol.md), "Test vector".
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_card_issued_in_the_future_is_refused(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School")
    a.clock.advance(hours=1)
    card, fpr = a.card()
    b.clock.advance(hours=-1)
    with pytest.raises(SecurityError) as ei:
        b.directory.add(card, fingerprint=fpr)
    assert ei.value.code == "card.invalid" and "future" in ei.value.message


# -- rotation cards must prove themselves (findings of the 2026-11-24 security review) -------------

def _thief_card(a, now, *, keep_mldsa_policy: bool):
    """A card for A signed with A's stolen Ed25519 key plus a thief's new Ed25519 key."""
    import copy

    from cryptography.hazmat.primitives.asymmetric import ed25519

    from laxchange import dsse
    from laxchange._util import timefmt
    from laxchange.trust import card_from
    from laxchange.trust.keystore import SIGNING, KeyInfo, compute_kid

    stolen = next(s for s in a.store.signers(now) if s.alg == dsse.ED25519)
    sk = ed25519.Ed25519PrivateKey.generate()
    pub = sk.public_key().public_bytes_raw()
    kid = compute_kid("ed25519", pub)
    ring = copy.deepcopy(a.store.ring())
    ring.keys = [k for k in ring.keys if k.use != SIGNING or k.alg != "ed25519"] + [
        KeyInfo(kid, SIGNING, "ed25519", dsse.b64(pub), timefmt.fmt(now), None)]
    if not keep_mldsa_policy:
        ring.required_signature_algorithms = ["ed25519"]
    card, _ = card_from(ring, now, [dsse.Ed25519Signer(kid, sk), stolen])
    return card


@pytest.mark.parametrize("keep_policy", [False, True])
def test_rotation_needs_every_required_algorithm(tmp_path: Path, keep_policy: bool) -> None:
    from laxchange.clock import FixedClock
    from laxchange.errors import SecurityError
    from tests.support.parties import T0, make_party

    clock = FixedClock(T0)
    a = make_party(tmp_path, "LA:919", "Example Council", clock, mldsa=True)
    c = make_party(tmp_path, "LA:920", "Other Council", clock)
    c.trust(a)
    before = c.directory.get("LA:919").fingerprint
    with pytest.raises(SecurityError) as exc:
        c.directory.add(_thief_card(a, clock.now(), keep_mldsa_policy=keep_policy))
    if keep_policy:  # the card's own policy then demands the ML-DSA signature the thief lacks
        assert exc.value.code in ("card.invalid", "card.changed")
    else:
        assert exc.value.code == "card.changed" and "ml-dsa-65" in exc.value.message
    c.directory._cache.clear()
    assert c.directory.get("LA:919").fingerprint == before


def test_rotation_cannot_postpone_a_revocation(tmp_path: Path) -> None:
    import copy
    import dataclasses

    from laxchange.clock import FixedClock
    from laxchange.errors import SecurityError
    from laxchange.trust import card_from
    from laxchange.trust.keystore import SIGNING
    from tests.support.parties import T0, make_party

    clock = FixedClock(T0)
    a = make_party(tmp_path, "LA:919", "Example Council", clock)
    c = make_party(tmp_path, "LA:920", "Other Council", clock)
    old_kid = next(k.kid for k in a.store.ring().keys if k.use == SIGNING)
    a.store.rotate()
    a.store.revoke(old_kid, "key-compromise")
    c.trust(a)
    ring = copy.deepcopy(a.store.ring())
    ring.keys = [dataclasses.replace(k, revoked_at="2099-01-01T00:00:00Z") if k.kid == old_kid else k
                 for k in ring.keys]
    card, _ = card_from(ring, clock.now(), a.store.card_signers())
    with pytest.raises(SecurityError) as exc:
        c.directory.add(card)
    assert "revocation" in exc.value.message


def test_retired_signing_keys_are_destroyed_decryption_keys_archived(tmp_path: Path) -> None:
    import datetime as dt

    from laxchange.clock import FixedClock
    from laxchange.trust.keystore import ENCRYPTION, SIGNING
    from tests.support.parties import T0, make_party

    clock = FixedClock(T0)
    a = make_party(tmp_path, "LA:919", "Example Council", clock)
    old = {k.use: k.kid for k in a.store.ring().keys}
    a.store.rotate(overlap_days=7)
    keys_dir = a.home.keys
    assert (keys_dir / f"{old[SIGNING]}.age").exists(), "the old signing key co-signs cards during the overlap"
    assert (keys_dir / "archive" / f"{old[ENCRYPTION]}.age").exists()
    clock.advance(days=8)
    assert [g["kid"] for g in a.store.prune()] == [old[SIGNING]]
    assert not (keys_dir / f"{old[SIGNING]}.age").exists()
    assert not (keys_dir / "archive" / f"{old[SIGNING]}.age").exists()
    assert (keys_dir / "archive" / f"{old[ENCRYPTION]}.age").exists(), "old packages must still open"
    new_sig = next(k.kid for k in a.store.ring().keys if k.use == SIGNING and k.kid != old[SIGNING])
    a.store.revoke(new_sig, "key-compromise", at=clock.now() - dt.timedelta(seconds=1))
    assert (keys_dir / f"{new_sig}.age").exists(), "revoking destroys nothing (issue 10)"
    assert [g["kid"] for g in a.store.prune()] == [new_sig], "prune destroys a revoked signing key at once"
    assert not (keys_dir / f"{new_sig}.age").exists()


def test_a_card_whose_sftp_url_climbs_out_is_refused(tmp_path):
    """Issue 10: `sftp://user@127.0.0.1:22/../../` on a card was accepted by `partners add`."""
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School")
    b.store.ring().sftp_url = "sftp://user@127.0.0.1:22/../../"  # as a hostile or broken exporter would
    card, fpr = b.card()
    with pytest.raises(SecurityError) as exc:
        a.directory.add(card, fingerprint=fpr)
    assert exc.value.code == "card.invalid" and "'..'" in exc.value.message
    assert a.directory.get_optional("URN:123456") is None


@pytest.mark.parametrize("party,says,suggests", [
    ("URN:99431", "6 digits", None),
    ("URN:9943111", "6 digits", None),
    ("LA:9190", "3 digits", None),
    ("urn:994311", "upper case", "URN:994311"),
    ("La:919", "upper case", "LA:919"),
    (" LA:919", "spaces", "LA:919"),
    ("LA919", "LA:NNN or URN:NNNNNN", "LA:919"),
    ("URN:12345a", "digits", None),
    ("SCH:123456", "LA:NNN or URN:NNNNNN", None),
    # the attack: a card (or an area directory's school) whose id is a look-alike in other Unicode digits
    ("LA:\uff19\uff11\uff19", "not all digits", None),
    ("URN:\u0661\u0662\u0663\u0664\u0665\u0666", "not all digits", None),
])
def test_check_party_says_what_is_wrong(party, says, suggests):
    """Issue 10: a malformed id was reported as "not in the partner directory"."""
    from laxchange.trust import check_party

    with pytest.raises(UsageError) as exc:
        check_party(party)
    assert exc.value.code == "party.invalid" and says in exc.value.message, exc.value.message
    if suggests:
        assert suggests in (exc.value.hint or ""), exc.value.hint


def test_directory_get_checks_the_format_first_and_suggests_a_near_partner(tmp_path):
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School")
    a.trust(b)
    with pytest.raises(UsageError) as exc:
        a.directory.get("URN:12345")
    assert exc.value.code == "party.invalid" and "6 digits" in exc.value.message
    with pytest.raises(UsageError) as exc:
        a.directory.get("urn:123456")
    assert "URN:123456" in (exc.value.hint or "")
    with pytest.raises(ConfigError) as exc:
        a.directory.get("URN:123465")
    assert exc.value.code == "partner.unknown" and "did you mean URN:123456" in (exc.value.hint or "")
    with pytest.raises(ConfigError) as exc:
        a.directory.get("LA:301")
    assert exc.value.code == "partner.unknown" and "did you mean" not in (exc.value.hint or "")
    assert a.directory.get("URN:123456").party == "URN:123456"
    with pytest.raises(UsageError) as exc:  # `send --to` resolves the endpoint first: the same check
        DirectoryEndpoints(a.home).resolve("URN:99431")
    assert exc.value.code == "party.invalid" and "6 digits" in exc.value.message
