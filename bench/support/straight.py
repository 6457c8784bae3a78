"""The package format written straight through: what plain Python must spend on it at the least.

A reference for bench/package.py, not an implementation: `StraightLine.pack` makes the bytes a
real package has (laxchange's `open_package` opens them, and `StraightLine.open` opens what
`package.pack` makes, both checked when the case is set up), for one record to one
mlkem768x25519 recipient, with the sender's real keys. It does each step once, in one function,
with the fastest tools there are (orjson, pybase64, a regular expression for the two envelopes)
and none of what makes a package safe to receive: no key lookups in a directory or keyring, no
key status or expiry, no replay check, no field or type checks, no canonical-form checks, no
error messages. Its ratio to the bare primitives is how close any Python code for this format
could come to them; laxchange's own ratio is measured against both in the same rounds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from typing import Any

import orjson
import pybase64
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from laxchange import dsse, package
from laxchange._util import timefmt
from laxchange.age.format import hkdf, hmac_sha256
from laxchange.age.recipients import _SUITE, HYBRID_ENC_SIZE, HYBRID_LABEL, HybridIdentity, HybridRecipient

_CHUNK = 64 * 1024
_MANIFEST_TYPE = package.MANIFEST_PAYLOAD_TYPE.encode()
_HEAD = b'{"payload":"'
_TAIL = re.compile(rb'","payloadType":"([^"\\]*)","signatures":\[(.*)\]\}')
_SIGNATURE = re.compile(rb'\{"keyid":"([^"\\]*)","sig":"([A-Za-z0-9+/=]*)"\}')


def _unpadded(data: bytes) -> bytes:
    return pybase64.b64encode(data).rstrip(b"=")


def _unpad_decode(text: bytes) -> bytes:
    return pybase64.b64decode(text + b"=" * (-len(text) % 4), validate=True)


def _envelope(payload_type: bytes, payload: bytes, signers: Sequence[tuple[bytes, Any]], end: bytes = b"") -> bytes:
    pae = b"DSSEv1 %d %b %d %b" % (len(payload_type), payload_type, len(payload), payload)
    sigs = b",".join(b'{"keyid":"%b","sig":"%b"}' % (kid, pybase64.b64encode(key.sign(pae))) for kid, key in signers)
    return b'{"payload":"%b","payloadType":"%b","signatures":[%b]}%b' % (pybase64.b64encode(payload), payload_type,
                                                                         sigs, end)


def _open_envelope(raw: bytes, start: int, stop: int, public: dict[bytes, Any]) -> bytes:
    """The payload of the envelope `raw[start:stop]` (not copied), its signatures checked."""
    assert raw.startswith(_HEAD, start)
    quote = raw.index(b'"', start + len(_HEAD), stop)
    m = _TAIL.fullmatch(raw, quote, stop)
    assert m is not None
    payload = pybase64.b64decode(memoryview(raw)[start + len(_HEAD):quote], validate=True)
    pae = b"DSSEv1 %d %b %d %b" % (len(m[1]), m[1], len(payload), payload)
    for kid, sig in _SIGNATURE.findall(m[2]):
        public[kid].verify(pybase64.b64decode(sig, validate=True), pae)  # raises InvalidSignature
    return payload


class StraightLine:
    """Pack and open one record between two fixed parties, straight through (module docstring)."""

    def __init__(self, *, sender: str, recipient: str, signers: Sequence[dsse.Signer], recipient_key: str,
                 recipient_public: HybridRecipient, identity: HybridIdentity, message_type: str, version: str) -> None:
        self.sender, self.recipient = sender, recipient
        self.signers = [(s.keyid.encode(), s.key) for s in signers]  # type: ignore[attr-defined]
        self.public = {kid: key.public_key() for kid, key in self.signers}
        self.recipient_key = recipient_key
        self.hpke_public = recipient_public._hpke_key
        self.hpke_private = identity._hpke_key
        self.message_type, self.version = message_type, version
        self.payload_type = package.payload_type_for(message_type, version).encode()

    def pack(self, document: dict[str, Any], now: dt.datetime, expires_in: dt.timedelta) -> bytes:
        created, expires = timefmt.fmt(now), timefmt.fmt(now + expires_in)
        transfer_id = os.urandom(16).hex()
        statement = {"_type": package.STATEMENT_TYPE, "transfer_id": transfer_id, "sender": self.sender,
                     "recipient": self.recipient, "created": created, "expires": expires,
                     "schema": document["schema"], "message_type": self.message_type,
                     "schema_version": self.version, "document": document, "attachments": []}
        plain = memoryview(_envelope(self.payload_type, orjson.dumps(statement), self.signers, b"\n"))
        file_key = os.urandom(16)
        sealed = _SUITE.encrypt(file_key, self.hpke_public, info=HYBRID_LABEL)
        body = _unpadded(sealed[HYBRID_ENC_SIZE:])
        # the stanza body (a 32-byte wrapped key) is one base64 line shorter than age's 64 columns
        head = b"age-encryption.org/v1\n-> mlkem768x25519 %b\n%b\n---" % (_unpadded(sealed[:HYBRID_ENC_SIZE]), body)
        nonce = os.urandom(16)
        aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
        parts = [head, b" ", _unpadded(hmac_sha256(hkdf(file_key, b"", b"header"), head)), b"\n", nonce]
        last = max(0, (len(plain) - 1) // _CHUNK)
        for i in range(last + 1):
            parts.append(aead.encrypt(i.to_bytes(11, "big") + (b"\x01" if i == last else b"\x00"),
                                      plain[i * _CHUNK:(i + 1) * _CHUNK], None))
        age_file = b"".join(parts)
        manifest = {"created": created, "encryption": "age-v1/mlkem768x25519", "expires": expires,
                    "format": package.FORMAT, "payload_sha256": hashlib.sha256(age_file).hexdigest(),
                    "payload_size": len(age_file), "recipient": self.recipient,
                    "recipient_key_id": self.recipient_key, "sender": self.sender,
                    "sender_key_ids": [kid.decode() for kid, _ in self.signers], "transfer_id": transfer_id}
        return b"".join((package.FORMAT_LINE, _envelope(_MANIFEST_TYPE, orjson.dumps(manifest), self.signers), b"\n",
                         age_file))

    def open(self, data: bytes) -> Any:
        first = data.index(b"\n")
        end = data.index(b"\n", first + 1)
        manifest = orjson.loads(_open_envelope(data, first + 1, end, self.public))
        age_file = memoryview(data)[end + 1:]
        assert len(age_file) == manifest["payload_size"]
        assert hashlib.sha256(age_file).hexdigest() == manifest["payload_sha256"]
        intro, stanza, body, rest = bytes(age_file[:4096]).split(b"\n", 3)
        mac_input_len = len(intro) + len(stanza) + len(body) + 6
        file_key = _SUITE.decrypt(_unpad_decode(stanza.split(b" ")[2]) + _unpad_decode(body),
                                  self.hpke_private, info=HYBRID_LABEL)
        mac = hmac_sha256(hkdf(file_key, b"", b"header"), bytes(age_file[:mac_input_len]))
        assert hmac.compare_digest(mac, _unpad_decode(rest[4:47]))
        start = mac_input_len + 45
        aead = ChaCha20Poly1305(hkdf(file_key, bytes(age_file[start:start + 16]), b"payload"))
        sealed = age_file[start + 16:]
        last = max(0, (len(sealed) - 1) // (_CHUNK + 16))
        plain = b"".join(aead.decrypt(i.to_bytes(11, "big") + (b"\x01" if i == last else b"\x00"),
                                      sealed[i * (_CHUNK + 16):(i + 1) * (_CHUNK + 16)], None)
                         for i in range(last + 1))
        statement = orjson.loads(_open_envelope(plain, 0, plain.index(b"\n"), self.public))
        return statement["document"]
