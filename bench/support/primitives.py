"""The bare operations one package needs, straight on `cryptography` and `hashlib`: the physical
ceiling of packing and opening it (DESIGN.md §12), whatever the code around them.

A package's shape (`shape_of`, read from a real one) gives the byte counts those operations work
on; `Bare` then does them on random bytes of those sizes, with throwaway keys of the same kinds:

- packing: the ML-KEM-768+X25519 HPKE seal of age's mlkem768x25519 stanza, age's key schedule
  (HKDF of the header key and HMAC-SHA-256 of the header, HKDF of the payload key), each signature
  algorithm's signature of the statement and then of the manifest (their PAE bytes),
  ChaCha20-Poly1305 over the age plaintext in 64 KiB chunks, SHA-256 of the age file (the
  manifest's payload_sha256);
- opening: SHA-256 of the age file, each manifest signature checked, the HPKE open, the key
  schedule, ChaCha20-Poly1305 back over the chunks, each statement signature checked.

Everything else (JSON, base64, the age header's text, checks, key lookups, file objects) is what a
ratio to these charges to laxchange.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from laxchange import age, dsse, package
from laxchange.age.format import hkdf, hmac_sha256
from laxchange.trust.keystore import KeyStore

#: age's STREAM chunk
CHUNK = 64 * 1024
_LABEL = b"age-encryption.org/mlkem768x25519"


def shape_of(data: bytes, opener: KeyStore) -> dict[str, int]:
    """The byte counts the primitives work on, read from the package `data` (`opener` holds the
    recipient's key): the manifest's and the statement's PAE, what the age header MAC covers, the
    age plaintext, the age file."""
    buf = io.BytesIO(data)
    manifest, menv = package.read_manifest(buf)
    plain = io.BytesIO()
    age.decrypt([opener.identity(manifest.recipient_key_id)], buf, plain)
    senv = dsse.parse(json.loads(plain.getvalue().split(b"\n", 1)[0]))
    buf.seek(len(package.FORMAT_LINE))
    buf.readline()  # the manifest
    age_header = buf.read().index(b"\n--- ") + 4  # up to and including "---"
    return {"manifest_pae": len(dsse.pae(menv.payload_type, menv.payload)),
            "statement_pae": len(dsse.pae(senv.payload_type, senv.payload)),
            "age_header": age_header, "age_plaintext": len(plain.getvalue()), "age_file": manifest.payload_size}


@dataclass
class Sealed:
    """What a bare pack made, for the bare open."""

    stanza: bytes
    signatures: list[tuple[bytes, bytes, Any]]  # (statement's, manifest's, public key) per algorithm
    chunks: list[bytes]


class Bare:
    """The bare operations of one package of `shape`, signed with `algs` (dsse.ED25519, dsse.MLDSA65)."""

    def __init__(self, shape: dict[str, int], algs: list[str]) -> None:
        self.suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
        m, x = mlkem.MLKEM768PrivateKey.generate(), x25519.X25519PrivateKey.generate()
        self.priv = hpke.MLKEM768X25519PrivateKey(m, x)
        self.pub = hpke.MLKEM768X25519PublicKey(m.public_key(), x.public_key())
        self.keys: list[tuple[Any, Any]] = []
        for alg in algs:
            sk = ed25519.Ed25519PrivateKey.generate() if alg == dsse.ED25519 else mldsa.MLDSA65PrivateKey.generate()
            self.keys.append((sk, sk.public_key()))
        self.m_msg, self.s_msg = os.urandom(shape["manifest_pae"]), os.urandom(shape["statement_pae"])
        plain = memoryview(os.urandom(shape["age_plaintext"]))
        self.plain = [plain[i:i + CHUNK] for i in range(0, len(plain), CHUNK)] or [plain]
        self.aead = ChaCha20Poly1305(ChaCha20Poly1305.generate_key())
        self.nonce = bytes(12)
        self.age_file = os.urandom(shape["age_file"])
        self.header = os.urandom(shape["age_header"])
        self.file_key, self.payload_nonce = os.urandom(16), os.urandom(16)

    def _key_schedule(self) -> None:
        """age's keys from the file key: the header's MAC key and MAC, the payload key. HKDF and
        HMAC written out over hashlib (`age.format.hkdf`), the fastest way found to make them:
        10.6-14.0 µs a side against 14.2-18.5 with cryptography's HKDF and `hmac.digest`
        (2026-12-03), so the ceiling is not slowed by the way it is computed."""
        hmac_sha256(hkdf(self.file_key, b"", b"header"), self.header)
        hkdf(self.file_key, self.payload_nonce, b"payload")

    def pack(self) -> Sealed:
        stanza = self.suite.encrypt(b"k" * 16, self.pub, info=_LABEL)  # wrap the file key
        self._key_schedule()
        sigs = [(sk.sign(self.s_msg), sk.sign(self.m_msg), pk) for sk, pk in self.keys]  # statement, then manifest
        chunks = [self.aead.encrypt(self.nonce, c, None) for c in self.plain]  # STREAM
        hashlib.sha256(self.age_file).digest()  # the manifest's payload_sha256
        return Sealed(stanza, sigs, chunks)

    def open(self, sealed: Sealed) -> None:
        hashlib.sha256(self.age_file).digest()  # check it
        for _s_sig, m_sig, pk in sealed.signatures:
            pk.verify(m_sig, self.m_msg)
        self.suite.decrypt(sealed.stanza, self.priv, info=_LABEL)
        self._key_schedule()
        for c in sealed.chunks:
            self.aead.decrypt(self.nonce, c, None)
        for s_sig, _m_sig, pk in sealed.signatures:
            pk.verify(s_sig, self.s_msg)
