"""Interoperability with independent implementations, both directions:
pyrage (X25519 age), the npm age-encryption package (post-quantum age), Debian's age binary
(X25519), and securesystemslib (DSSE)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pyrage
import pytest

from laxchange import age, dsse
from laxchange._util import jsonio
from laxchange.trust.keystore import SIGNING
from tests.support.parties import node_oracle, record, world

DATA = bytes(range(256)) * 700  # 179,200 bytes: three STREAM chunks


def test_pyrage_decrypts_ours():
    ident = age.X25519Identity.generate()
    ct = age.encrypt_bytes([ident.recipient()], DATA)
    assert pyrage.decrypt(ct, [pyrage.x25519.Identity.from_str(str(ident))]) == DATA


def test_we_decrypt_pyrage():
    py_ident = pyrage.x25519.Identity.generate()
    ct = pyrage.encrypt(DATA, [py_ident.to_public()])
    ours = age.X25519Identity.parse(str(py_ident))
    assert str(ours.recipient()) == str(py_ident.to_public())
    assert age.decrypt_bytes([ours], ct) == DATA


def test_pyrage_passphrase_both_ways():
    ct = age.encrypt_bytes([age.ScryptRecipient(b"pw-123", 10)], DATA)
    assert pyrage.passphrase.decrypt(ct, "pw-123") == DATA
    ct2 = pyrage.passphrase.encrypt(b"hello", "pw-456")
    assert age.decrypt_bytes([age.ScryptIdentity(b"pw-456")], ct2) == b"hello"


def test_node_decrypts_our_pq(tmp_path):
    ident = age.HybridIdentity.generate()
    (tmp_path / "ct").write_bytes(age.encrypt_bytes([ident.recipient()], DATA))
    node_oracle("decrypt", str(tmp_path / "ct"), str(tmp_path / "pt"), identity=str(ident))
    assert (tmp_path / "pt").read_bytes() == DATA


def test_we_decrypt_node_pq(tmp_path):
    keys = json.loads(node_oracle("gen-hybrid"))
    ours = age.HybridIdentity.parse(keys["identity"])
    assert str(ours.recipient()) == keys["recipient"]
    (tmp_path / "pt").write_bytes(DATA)
    node_oracle("encrypt", keys["recipient"], str(tmp_path / "pt"), str(tmp_path / "ct"))
    ct = (tmp_path / "ct").read_bytes()
    assert b"\n-> mlkem768x25519 " in ct
    assert age.decrypt_bytes([ours], ct) == DATA


def test_node_derives_the_same_pq_recipient():
    ident = age.HybridIdentity.generate()
    assert node_oracle("recipient", identity=str(ident)).strip() == str(ident.recipient())


def test_debian_age_binary_both_ways(tmp_path):
    binary = shutil.which("age")
    assert binary, "the Debian `age` package is installed by ./scripts/setup"
    ident = age.X25519Identity.generate()
    (tmp_path / "key.txt").write_text(str(ident) + "\n")
    os.chmod(tmp_path / "key.txt", 0o600)
    (tmp_path / "ct").write_bytes(age.encrypt_bytes([ident.recipient()], DATA))
    subprocess.run([binary, "-d", "-i", str(tmp_path / "key.txt"), "-o", str(tmp_path / "pt"), str(tmp_path / "ct")],
                   check=True, timeout=60)
    assert (tmp_path / "pt").read_bytes() == DATA
    (tmp_path / "in").write_bytes(DATA)
    subprocess.run([binary, "-r", str(ident.recipient()), "-o", str(tmp_path / "ct2"), str(tmp_path / "in")],
                   check=True, timeout=60)
    assert age.decrypt_bytes([ident], (tmp_path / "ct2").read_bytes()) == DATA


def test_our_package_payload_opens_with_node_given_the_recipient_key(tmp_path):
    # The age part of a .lax file is plain age: a standard tool with B's identity can open it.
    a, b, _ = world(tmp_path)
    data = a.pack(record(), "URN:123456")
    payload = data.split(b"\n", 2)[2]
    (tmp_path / "payload.age").write_bytes(payload)
    import io

    from laxchange import package

    kid = package.inspect(io.BytesIO(data))["manifest"]["recipient_key_id"]
    ident = b.store.identity(kid)
    node_oracle("decrypt", str(tmp_path / "payload.age"), str(tmp_path / "inner"), identity=str(ident))
    inner = (tmp_path / "inner").read_bytes()
    env = dsse.parse(jsonio.loads_strict(inner.split(b"\n")[0]))
    assert json.loads(env.payload)["document"] == record()


def _sslib_key(pk: dsse.PublicKey):
    from securesystemslib.signer import SSlibKey

    return SSlibKey(pk.keyid, "ed25519", "ed25519", {"public": pk.public.hex()})


def test_securesystemslib_verifies_our_dsse(tmp_path):
    from securesystemslib.dsse import Envelope

    a, _, _ = world(tmp_path)
    signer = a.store.signers()[0]
    env = dsse.sign("application/vnd.laxchange.test+json", b'{"hello":"world"}', [signer])
    theirs = Envelope.from_dict(env.to_dict())
    info = a.store.ring().find_key(signer.keyid)
    keys = theirs.verify([_sslib_key(info.dsse_key())], 1)
    assert signer.keyid in keys
    assert theirs.pae() == dsse.pae(env.payload_type, env.payload)


def test_we_verify_securesystemslib_dsse():
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    sk = ed25519.Ed25519PrivateKey.generate()
    signer = CryptoSigner(sk)
    env = Envelope(b'{"a":1}', "application/vnd.example+json", {})
    env.sign(signer)
    ours = dsse.parse(env.to_dict())
    pub = sk.public_key().public_bytes_raw()
    key = dsse.PublicKey(signer.public_key.keyid, "ed25519", pub)
    assert dsse.verify(ours, {key.keyid: key}) == [key]
    other = dsse.PublicKey(key.keyid, "ed25519", ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    assert dsse.verify(ours, {key.keyid: other}) == []


def test_signing_keys_in_card_are_raw_ed25519(tmp_path):
    a, _, _ = world(tmp_path)
    k = next(k for k in a.store.ring().keys if k.use == SIGNING)
    assert len(k.public_bytes()) == 32
    with pytest.raises(dsse.DSSEError):
        dsse.b64decode_strict(k.public + "=", "x")
