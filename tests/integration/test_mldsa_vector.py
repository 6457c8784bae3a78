"""The ML-DSA-65 vector (tests/vectors/mldsa65.json): laxchange's signature over a DSSE PAE verifies with an
independent implementation, @noble/post-quantum, which also derives the same public key from the seed; and
securesystemslib's ML-DSA scheme does not verify it (it signs a TAP 21 pre-hash, not the PAE), which is why
docs/format.md §3 claims securesystemslib interoperability for Ed25519 only."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature, SSlibKey

from laxchange import dsse
from tests.support.parties import NODE_DIR, REPO

VECTOR = REPO / "tests" / "vectors" / "mldsa65.json"


def _vector() -> dict[str, str]:
    v: dict[str, str] = json.loads(VECTOR.read_text())
    return v


def _noble(vector: Path) -> dict[str, object]:
    assert shutil.which("node"), "node is required for the post-quantum interop tests"
    assert (NODE_DIR / "node_modules" / "@noble" / "post-quantum").is_dir(), "run npm ci in tests/interop/node"
    r = subprocess.run(["node", str(NODE_DIR / "mldsa_verify.mjs"), str(vector)], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


def test_noble_post_quantum_verifies_the_vector_and_derives_its_key() -> None:
    v = _vector()
    pae = dsse.pae(v["payload_type"], base64.b64decode(v["payload_b64"]))
    assert hashlib.sha256(pae).hexdigest() == v["pae_sha256"]
    got = _noble(VECTOR)
    assert got == {"public_from_seed": True, "verifies": True, "altered_verifies": False,
                   "pae_sha256": v["pae_sha256"]}


def test_noble_refuses_a_signature_that_is_not_the_vectors(tmp_path: Path) -> None:
    v = _vector()
    sig = bytearray(base64.b64decode(v["sig_b64"]))
    sig[100] ^= 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**v, "sig_b64": base64.b64encode(bytes(sig)).decode()}))
    assert _noble(bad)["verifies"] is False


def test_laxchange_and_cryptography_agree_with_the_vector() -> None:
    v = _vector()
    public = base64.b64decode(v["public_b64"])
    assert mldsa.MLDSA65PrivateKey.from_seed_bytes(bytes.fromhex(v["seed_hex"])).public_key().public_bytes_raw() \
        == public
    env = dsse.parse(v["envelope"])  # type: ignore[arg-type]
    assert env.signatures == ((v["kid"], base64.b64decode(v["sig_b64"])),)
    assert dsse.verify(env, {v["kid"]: dsse.PublicKey(v["kid"], dsse.MLDSA65, public)})
    assert json.loads(env.payload)["sender_key_ids"][1] == v["kid"]


def test_securesystemslib_ml_dsa_does_not_verify_it() -> None:
    """securesystemslib's `ml-dsa-65` scheme verifies over b"tuf" || 0x01 || SHA-512(PAE) (TAP 21), so a
    signature over the PAE itself, as DSSE and laxchange make it, is refused there; the reverse holds too."""
    v = _vector()
    public = base64.b64decode(v["public_b64"])
    sk = mldsa.MLDSA65PrivateKey.from_seed_bytes(bytes.fromhex(v["seed_hex"]))
    pem = sk.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert mldsa.MLDSA65PublicKey.from_public_bytes(public).public_bytes_raw() == public
    key = SSlibKey(v["kid"], "ml-dsa", "ml-dsa-65/1", {"public": pem.decode("ascii")})
    pae = dsse.pae(v["payload_type"], base64.b64decode(v["payload_b64"]))
    # The key is read right: a TAP 21 signature by the same seed over the same PAE verifies there.
    tap21 = sk.sign(b"tuf\x01" + hashlib.sha512(pae).digest())
    key.verify_signature(Signature(v["kid"], tap21.hex()), pae)
    try:
        key.verify_signature(Signature(v["kid"], base64.b64decode(v["sig_b64"]).hex()), pae)
    except UnverifiedSignatureError:
        return
    raise AssertionError("securesystemslib verified a pure ML-DSA signature over the PAE: update docs/format.md §3")
