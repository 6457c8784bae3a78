"""DSSE envelopes (github.com/secure-systems-lab/dsse): PAE, signing, strict verification.

Signatures are Ed25519 and, optionally, ML-DSA-65 (FIPS 204) as a second, post-quantum one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from laxchange._util.b64 import decode_canonical
from laxchange._util.b64 import encode as b64encode

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
    return b64encode(data).decode("ascii")


def b64decode_strict(text: Any, what: str) -> bytes:
    """Standard padded base64 whose encoding is unique; anything else is refused."""
    if not isinstance(text, str):
        raise DSSEError(f"{what} must be a base64 string")
    if text.isascii():
        data = decode_canonical(text.encode("ascii"))
        if data is not None:
            return data
    # Refused: find out why, the slow way, for the message.
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DSSEError(f"{what} is not valid base64") from None
    if b64(data) != text:
        raise DSSEError(f"{what} is not canonical base64")
    return data  # not reached: b64.decode_canonical accepts every canonical encoding (tests/unit/test_dsse.py)


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

    def to_json(self) -> bytes:
        """The canonical JSON of `to_dict()` (sorted keys, compact, UTF-8), written directly:
        base64 needs no JSON escaping, so the payload is encoded once and never scanned again."""
        return b"".join(self.json_parts())

    def json_parts(self) -> list[bytes]:
        """`to_json()` in pieces, not joined: the base64 payload is one of them, so a caller that
        streams the envelope (packing) never copies it."""
        sigs = b",".join(b'{"keyid":%b,"sig":"%b"}' % (_json_str(k), b64encode(s)) for k, s in self.signatures)
        return [b'{"payload":"', b64encode(self.payload),
                b'","payloadType":%b,"signatures":[%b]}' % (_json_str(self.payload_type), sigs)]


def _json_str(text: str) -> bytes:
    """`text` as JSON, exactly as json.dumps(..., ensure_ascii=False) writes a string, in UTF-8."""
    return json.encoder.encode_basestring(text).encode("utf-8")


def sign(payload_type: str, payload: bytes, signers: Sequence[Signer]) -> Envelope:
    if not signers:
        raise ValueError("at least one signer is needed")
    message = pae(payload_type, payload)
    return Envelope(payload_type, payload, tuple((s.keyid, s.sign(message)) for s in signers))


MAX_SIGNATURES = 8

_CANONICAL_HEAD = b'{"payload":"'
#: A JSON string that needs no escaping and is plain ASCII, so its text is its value.
_PLAIN = rb'[\x20\x21\x23-\x5b\x5d-\x7e]'
_SIG = rb'\{"keyid":"(' + _PLAIN + rb'*)","sig":"([A-Za-z0-9+/=]*)"\}'
_SIG_NC = rb'\{"keyid":"' + _PLAIN + rb'*","sig":"[A-Za-z0-9+/=]*"\}'
_CANONICAL_TAIL = re.compile(rb'","payloadType":"(' + _PLAIN + rb'+)","signatures":\[(' + _SIG_NC + rb'(?:,'
                             + _SIG_NC + rb')*)\]\}')
_SIG_RE = re.compile(_SIG)


def parse_canonical(raw: bytes, stop: int | None = None) -> Envelope | None:
    """The envelope whose canonical JSON (`Envelope.to_json`) is exactly `raw[:stop]`, or None.

    A fast path for reading what laxchange writes: the JSON is not parsed, the base64 not
    re-encoded and `raw` not copied. It accepts only bytes that `parse` accepts, giving the same
    envelope; on None the caller takes the general path (strict JSON, then `parse`), which accepts
    or refuses as before and says why."""
    stop = len(raw) if stop is None else stop
    if not raw.startswith(_CANONICAL_HEAD):
        return None
    end = raw.find(b'"', len(_CANONICAL_HEAD), stop)
    tail = _CANONICAL_TAIL.fullmatch(raw, end, stop) if end > 0 else None
    if tail is None:
        return None
    payload = decode_canonical(memoryview(raw)[len(_CANONICAL_HEAD):end])
    if payload is None:
        return None
    sigs = []
    for keyid, sig_text in _SIG_RE.findall(tail[2]):
        sig = decode_canonical(sig_text)
        if sig is None:
            return None
        sigs.append((keyid.decode("ascii"), sig))
    if not 1 <= len(sigs) <= MAX_SIGNATURES or len({k for k, _ in sigs}) != len(sigs):
        return None
    return Envelope(tail[1].decode("ascii"), payload, tuple(sigs))


def parse(obj: Any) -> Envelope:
    """Strictly read an envelope dict: exactly the three DSSE fields, canonical base64, 1 to
    MAX_SIGNATURES signatures with distinct keyids (a repeated one is ambiguous: which verdict counts?)."""
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
    if len({k for k, _ in out}) != len(out):
        raise DSSEError("two signatures have the same keyid (each key signs once)")
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
