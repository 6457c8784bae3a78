"""The package format written straight through: what plain Python must spend on it at the least.

A reference for bench/package.py, not an implementation. `StraightLine.pack` makes the bytes a
real package has (laxchange's `open_package` opens them, and `StraightLine.open` opens what
`package.pack` makes: `Case.straight` checks both, and tests/unit/test_bench_scripts.py). It
packs one record to one mlkem768x25519 recipient with the sender's real keys, each step once,
in one function a side, with the fastest tools there are (orjson, pybase64, one regular
expression per envelope, laxchange's own HKDF and canonical-base64 helpers).

Its reader makes the checks the format requires of a reader (docs/format.md), inline:
- the format line, both envelopes in canonical form with canonical base64, their payload types;
- the manifest as canonical JSON (strict: a duplicate key or any other spelling is refused),
  its fields and their types, `sender_key_ids` against the signatures, addressed to us, to our
  key, with our key's encryption, created no later than five minutes from now, not expired;
- the payload's size and SHA-256; an age header of exactly one mlkem768x25519 stanza, its
  lengths, a low-order X25519 share refused, its MAC; the STREAM chunks, the last one marked;
- the statement as compact JSON read strictly (orjson's own writing, so no duplicate key), its
  fields, matching the manifest, addressed to us, its record's schema and the payload type;
- every signature, of both envelopes, by the sender's keys.

What it leaves out is what laxchange does around those checks: finding the sender and our key
in a partner directory and a keyring and judging their status and dates, the replay check,
attachments, error messages that say what is wrong, and streaming (it holds the whole package
in memory). Failing a check is an AssertionError or cryptography's exception. Its ratio to the
bare primitives is therefore a bound, from above, on how close a conforming Python reader and
writer of this format could come to them.
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
from laxchange._util.b64 import decode_canonical
from laxchange.age.format import hkdf, hmac_sha256
from laxchange.age.recipients import (
    _SUITE,
    FILE_KEY_SIZE,
    HYBRID_ENC_SIZE,
    HYBRID_LABEL,
    LOW_ORDER_POINTS,
    HybridIdentity,
    HybridRecipient,
)

_CHUNK = 64 * 1024
_ENCRYPTION = "age-v1/mlkem768x25519"
_MANIFEST_TYPE = package.MANIFEST_PAYLOAD_TYPE.encode()
_HEAD = b'{"payload":"'
_TAIL = re.compile(rb'","payloadType":"([\x20\x21\x23-\x5b\x5d-\x7e]+)","signatures":\[(.*)\]\}')
_SIGNATURE = re.compile(rb'\{"keyid":"([\x20\x21\x23-\x5b\x5d-\x7e]*)","sig":"([A-Za-z0-9+/=]*)"\}')
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_MANIFEST_STR = ("created", "encryption", "expires", "format", "payload_sha256", "recipient", "recipient_key_id",
                 "sender", "transfer_id")
_STATEMENT_FIELDS = frozenset(package.STATEMENT_FIELDS)
_SHARED = ("transfer_id", "sender", "recipient", "created", "expires")


def _unpadded(data: bytes) -> bytes:
    return pybase64.b64encode(data).rstrip(b"=")


def _canonical(text: bytes | memoryview, padded: bool = True) -> bytes:
    data = decode_canonical(text, padded=padded)
    assert data is not None, "not canonical base64"
    return data


def _envelope(payload_type: bytes, payload: bytes, signers: Sequence[tuple[bytes, Any]], end: bytes = b"") -> bytes:
    pae = b"DSSEv1 %d %b %d %b" % (len(payload_type), payload_type, len(payload), payload)
    sigs = b",".join(b'{"keyid":"%b","sig":"%b"}' % (kid, pybase64.b64encode(key.sign(pae))) for kid, key in signers)
    return b'{"payload":"%b","payloadType":"%b","signatures":[%b]}%b' % (pybase64.b64encode(payload), payload_type,
                                                                         sigs, end)


def _open_envelope(raw: bytes, start: int, stop: int, payload_type: bytes, public: dict[bytes, Any],
                   keyids: list[bytes]) -> bytes:
    """The payload of the canonical envelope `raw[start:stop]` (not copied), of `payload_type`,
    signed by exactly `keyids` in that order, every signature checked."""
    assert raw.startswith(_HEAD, start)
    quote = raw.index(b'"', start + len(_HEAD), stop)
    m = _TAIL.fullmatch(raw, quote, stop)
    assert m is not None and m[1] == payload_type
    payload = _canonical(memoryview(raw)[start + len(_HEAD):quote])
    pae = b"DSSEv1 %d %b %d %b" % (len(m[1]), m[1], len(payload), payload)
    sigs = _SIGNATURE.findall(m[2])
    assert b",".join(b'{"keyid":"%b","sig":"%b"}' % s for s in sigs) == m[2], "not a canonical signature list"
    assert [kid for kid, _ in sigs] == keyids
    for kid, sig in sigs:
        public[kid].verify(_canonical(sig), pae)  # raises InvalidSignature
    return payload


class StraightLine:
    """Pack and open one record between two fixed parties, straight through (module docstring)."""

    def __init__(self, *, sender: str, recipient: str, signers: Sequence[dsse.Signer], recipient_key: str,
                 recipient_public: HybridRecipient, identity: HybridIdentity, schema: str, message_type: str,
                 version: str) -> None:
        self.sender, self.recipient = sender, recipient
        self.signers = [(s.keyid.encode(), s.key) for s in signers]  # type: ignore[attr-defined]
        self.public = {kid: key.public_key() for kid, key in self.signers}
        self.keyids = [kid for kid, _ in self.signers]
        self.recipient_key = recipient_key
        self.hpke_public = recipient_public._hpke_key
        self.hpke_private = identity._hpke_key
        self.schema, self.message_type, self.version = schema, message_type, version
        self.payload_type = package.payload_type_for(message_type, version).encode()

    def pack(self, document: dict[str, Any], now: dt.datetime, expires_in: dt.timedelta) -> bytes:
        created, expires = timefmt.fmt(now), timefmt.fmt(now + expires_in)
        transfer_id = os.urandom(16).hex()
        statement = {"_type": package.STATEMENT_TYPE, "transfer_id": transfer_id, "sender": self.sender,
                     "recipient": self.recipient, "created": created, "expires": expires,
                     "schema": document["schema"], "message_type": self.message_type,
                     "schema_version": self.version, "document": document, "attachments": []}
        body = orjson.dumps(statement)
        assert package._orjson_writes_as_stdlib(statement), "a value orjson writes otherwise (NaN, a UUID...)"
        plain = memoryview(_envelope(self.payload_type, body, self.signers, b"\n"))
        file_key = os.urandom(FILE_KEY_SIZE)
        sealed = _SUITE.encrypt(file_key, self.hpke_public, info=HYBRID_LABEL)
        # the stanza body (a 32-byte wrapped key) is one base64 line shorter than age's 64 columns
        head = b"age-encryption.org/v1\n-> mlkem768x25519 %b\n%b\n---" % (_unpadded(sealed[:HYBRID_ENC_SIZE]),
                                                                        _unpadded(sealed[HYBRID_ENC_SIZE:]))
        nonce = os.urandom(16)
        aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
        parts = [head, b" ", _unpadded(hmac_sha256(hkdf(file_key, b"", b"header"), head)), b"\n", nonce]
        last = max(0, (len(plain) - 1) // _CHUNK)
        for i in range(last + 1):
            parts.append(aead.encrypt(i.to_bytes(11, "big") + (b"\x01" if i == last else b"\x00"),
                                      plain[i * _CHUNK:(i + 1) * _CHUNK], None))
        age_file = b"".join(parts)
        manifest = {"created": created, "encryption": _ENCRYPTION, "expires": expires,
                    "format": package.FORMAT, "payload_sha256": hashlib.sha256(age_file).hexdigest(),
                    "payload_size": len(age_file), "recipient": self.recipient,
                    "recipient_key_id": self.recipient_key, "sender": self.sender,
                    "sender_key_ids": [kid.decode() for kid in self.keyids], "transfer_id": transfer_id}
        return b"".join((package.FORMAT_LINE, _envelope(_MANIFEST_TYPE, orjson.dumps(manifest), self.signers), b"\n",
                         age_file))

    def open(self, data: bytes, now: dt.datetime) -> Any:
        assert data.startswith(package.FORMAT_LINE)
        first = len(package.FORMAT_LINE) - 1
        end = data.index(b"\n", first + 1, first + 1 + package.MAX_MANIFEST_BYTES)
        payload = _open_envelope(data, first + 1, end, _MANIFEST_TYPE, self.public, self.keyids)
        m = orjson.loads(payload)
        assert type(m) is dict and orjson.dumps(m, option=orjson.OPT_SORT_KEYS) == payload, "not canonical"
        assert m.keys() == package.MANIFEST_FIELDS and m["format"] == package.FORMAT
        assert all(type(m[k]) is str for k in _MANIFEST_STR) and type(m["payload_size"]) is int
        assert package._TRANSFER_ID.fullmatch(m["transfer_id"]) and _TIME.fullmatch(m["created"]) \
            and _TIME.fullmatch(m["expires"])
        assert m["sender_key_ids"] == [kid.decode() for kid in self.keyids] and m["sender"] == self.sender
        assert m["recipient"] == self.recipient and m["recipient_key_id"] == self.recipient_key
        assert m["encryption"] == _ENCRYPTION
        assert m["created"] <= timefmt.fmt(now + package.CLOCK_SKEW) and timefmt.fmt(now) < m["expires"]
        age_file = memoryview(data)[end + 1:]
        assert len(age_file) == m["payload_size"] and hashlib.sha256(age_file).hexdigest() == m["payload_sha256"]
        intro, stanza, body, rest = bytes(age_file[:4096]).split(b"\n", 3)
        assert intro == b"age-encryption.org/v1" and rest.startswith(b"--- ") and rest[47:48] == b"\n"
        arrow, stanza_type, enc_text = stanza.split(b" ")  # one argument; the next line "---": one stanza
        assert arrow == b"->" and stanza_type == b"mlkem768x25519" and len(body) < 64
        enc, wrapped = _canonical(enc_text, padded=False), _canonical(body, padded=False)
        assert len(enc) == HYBRID_ENC_SIZE and len(wrapped) == FILE_KEY_SIZE + 16
        share = enc[1088:]
        assert share[:31] + bytes([share[31] & 0x7F]) not in LOW_ORDER_POINTS, "low-order X25519 share"
        file_key = _SUITE.decrypt(enc + wrapped, self.hpke_private, info=HYBRID_LABEL)
        assert len(file_key) == FILE_KEY_SIZE
        mac_input_len = len(intro) + len(stanza) + len(body) + 6  # three newlines and "---"
        mac = hmac_sha256(hkdf(file_key, b"", b"header"), bytes(age_file[:mac_input_len]))
        assert hmac.compare_digest(mac, _canonical(rest[4:47], padded=False)), "header MAC"
        start = mac_input_len + 45
        aead = ChaCha20Poly1305(hkdf(file_key, bytes(age_file[start:start + 16]), b"payload"))
        sealed = age_file[start + 16:]
        last = max(0, (len(sealed) - 1) // (_CHUNK + 16))
        plain = b"".join(aead.decrypt(i.to_bytes(11, "big") + (b"\x01" if i == last else b"\x00"),
                                      sealed[i * (_CHUNK + 16):(i + 1) * (_CHUNK + 16)], None)
                         for i in range(last + 1))
        line = plain.index(b"\n", 0, package.MAX_STATEMENT_BYTES + 1)
        assert line == len(plain) - 1, "no attachments in these packages"
        payload = _open_envelope(plain, 0, line, self.payload_type, self.public, self.keyids)
        st = orjson.loads(payload)
        assert type(st) is dict and orjson.dumps(st) == payload, "not read strictly"
        assert st.keys() == _STATEMENT_FIELDS and st["_type"] == package.STATEMENT_TYPE
        assert all(st[k] == m[k] for k in _SHARED)
        doc = st["document"]
        assert st["message_type"] == self.message_type and st["schema_version"] == self.version
        assert type(doc) is dict and st["schema"] == doc["schema"] == self.schema and st["attachments"] == []
        return doc
