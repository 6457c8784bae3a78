"""DSSE envelopes (github.com/secure-systems-lab/dsse): PAE, signing, strict verification.

Signatures are Ed25519 and, optionally, ML-DSA-65 (FIPS 204) as a second, post-quantum one.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

ED25519 = "ed25519"
MLDSA65 = "ml-dsa-65"
SIGNATURE_ALGORITHMS = (ED25519, MLDSA65)


class DSSEError(ValueError):
    """A malformed envelope (not a failed signature: that is reported by `verify`)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: Any, what: str) -> bytes:
    """Standard padded base64 whose encoding is unique; anything else is refused."""
    if not isinstance(text, str):
        raise DSSEError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DSSEError(f"{what} is not valid base64") from None
    if b64(data) != text:
        raise DSSEError(f"{what} is not canonical base64")
    return data


class Signer(Protocol):
    @property
    def keyid(self) -> str: ...

    @property
    def alg(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class Ed25519Signer:
    keyid: str
    key: ed25519.Ed25519PrivateKey
    alg: str = ED25519

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)


@dataclass(frozen=True)
class MLDSA65Signer:
    keyid: str
    key: mldsa.MLDSA65PrivateKey
    alg: str = MLDSA65

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)


@functools.lru_cache(maxsize=256)
def _public_key(alg: str, public: bytes) -> Any:
    if alg == ED25519:
        return ed25519.Ed25519PublicKey.from_public_bytes(public)
    if alg == MLDSA65:
        return mldsa.MLDSA65PublicKey.from_public_bytes(public)
    raise ValueError(f"unknown signature algorithm {alg}")


def verify_raw(alg: str, public: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` over `message` verifies under the raw public key."""
    try:
        _public_key(alg, public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, sig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": k, "sig": b64(s)} for k, s in self.signatures],
        }


def sign(payload_type: str, payload: bytes, signers: Sequence[Signer]) -> Envelope:
    if not signers:
        raise ValueError("at least one signer is needed")
    message = pae(payload_type, payload)
    return Envelope(payload_type, payload, tuple((s.keyid, s.sign(message)) for s in signers))


MAX_SIGNATURES = 8


def parse(obj: Any) -> Envelope:
    """Strictly read an envelope dict: exactly the three DSSE fields, canonical base64."""
    if not isinstance(obj, dict) or set(obj) != {"payload", "payloadType", "signatures"}:
        raise DSSEError("not a DSSE envelope (needs exactly payload, payloadType, signatures)")
    ptype = obj["payloadType"]
    if not isinstance(ptype, str) or not ptype:
        raise DSSEError("payloadType must be a non-empty string")
    payload = b64decode_strict(obj["payload"], "payload")
    sigs = obj["signatures"]
    if not isinstance(sigs, list) or not 1 <= len(sigs) <= MAX_SIGNATURES:
        raise DSSEError(f"signatures must be a list of 1 to {MAX_SIGNATURES} entries")
    out = []
    for s in sigs:
        if not isinstance(s, dict) or set(s) != {"keyid", "sig"} or not isinstance(s["keyid"], str):
            raise DSSEError("each signature needs exactly keyid and sig")
        out.append((s["keyid"], b64decode_strict(s["sig"], "sig")))
    return Envelope(ptype, payload, tuple(out))


@dataclass(frozen=True)
class PublicKey:
    keyid: str
    alg: str
    public: bytes


def verify(envelope: Envelope, keys: Mapping[str, PublicKey]) -> list[PublicKey]:
    """The keys (from `keys`, by keyid) whose signatures verify. Unknown keyids are ignored."""
    message = pae(envelope.payload_type, envelope.payload)
    good: list[PublicKey] = []
    for keyid, sig in envelope.signatures:
        key = keys.get(keyid)
        if key is not None and key not in good and verify_raw(key.alg, key.public, message, sig):
            good.append(key)
    return good
