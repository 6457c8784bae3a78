"""The age v1 header (c2sp.org/age): strict parsing and canonical encoding."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import IO

from laxchange._util.b64 import decode_canonical
from laxchange.age.errors import HeaderError, HMACError

INTRO = b"age-encryption.org/v1\n"
STANZA_PREFIX = b"-> "
MAC_PREFIX = b"---"
COLUMNS = 64
#: A header larger than this is refused before any cryptography (hybrid stanzas are ~1.6 KB).
MAX_HEADER_BYTES = 1 << 20


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode_canonical(text: str) -> bytes:
    """Unpadded standard base64 whose encoding is unique (no padding, zero trailing bits)."""
    if "=" in text or "\r" in text or "\n" in text:
        raise HeaderError("base64 must be unpadded")
    if text.isascii():
        data = decode_canonical(text.encode("ascii"), padded=False)
        if data is not None:
            return data
    # Refused: find out why, for the message.
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise HeaderError("invalid base64") from None
    if b64encode(data) != text:
        raise HeaderError("non-canonical base64")
    return data  # not reached: decode_canonical accepts every canonical encoding (tests/unit/age)


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_SHA256_BLOCK = 64


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA-256 (RFC 2104) over hashlib's SHA-256: the same bytes as `hmac.digest(key, msg,
    "sha256")` (tests/unit/age), in half its time here (OpenSSL 3 looks the digest up again on
    every one-shot HMAC call; a package makes ten of them)."""
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD) + msg).digest()
    return hashlib.sha256(key.translate(_OPAD) + inner).digest()


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA-256 (RFC 5869), written out over `hmac_sha256`: the same bytes as cryptography's
    HKDF (tests/unit/age), without building its objects, which cost several times the two HMACs
    (four derivations per package). An empty salt is HMAC's empty key, as the RFC's zeros are."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA-256 output length out of range")
    prk = hmac_sha256(salt, ikm)
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac_sha256(prk, block + info + bytes((i,)))
        out += block
    return out[:length]


@dataclass
class Stanza:
    type: str
    args: list[str] = field(default_factory=list)
    body: bytes = b""

    def encode(self) -> bytes:
        line = " ".join([self.type, *self.args]).encode("ascii")
        out = [STANZA_PREFIX + line + b"\n"]
        text = b64encode(self.body).encode("ascii")
        for i in range(0, len(text), COLUMNS):
            out.append(text[i : i + COLUMNS] + b"\n")
        if len(text) % COLUMNS == 0:
            out.append(b"\n")
        return b"".join(out)


@dataclass
class Header:
    stanzas: list[Stanza]
    mac: bytes
    #: The exact bytes the MAC covers: everything up to and including "---".
    mac_input: bytes


_VCHARS = re.compile(rb"[\x21-\x7e]+")


def _vchar_ok(arg: bytes) -> bool:
    return _VCHARS.fullmatch(arg) is not None


def _readline(stream: IO[bytes], budget: list[int]) -> bytes:
    line = stream.readline(budget[0] + 1)
    budget[0] -= len(line)
    if budget[0] < 0:
        raise HeaderError("header too large")
    if not line.endswith(b"\n"):
        raise HeaderError("unexpected end of header")
    return line


def parse_header(stream: IO[bytes]) -> Header:
    """Read and strictly parse a header, leaving `stream` at the first payload byte."""
    budget = [MAX_HEADER_BYTES]
    consumed: list[bytes] = []
    intro = stream.readline(len(INTRO) + 1)
    if intro != INTRO:
        raise HeaderError("not an age v1 file (unsupported version line)")
    consumed.append(intro)
    stanzas: list[Stanza] = []
    line = _readline(stream, budget)
    while True:
        if line.startswith(MAC_PREFIX):
            break
        if not line.startswith(STANZA_PREFIX):
            raise HeaderError("malformed header line")
        consumed.append(line)
        parts = line[len(STANZA_PREFIX) : -1].split(b" ")
        if not parts or not all(_vchar_ok(p) for p in parts):
            raise HeaderError("malformed stanza argument line")
        body_text = []
        while True:
            bl = _readline(stream, budget)
            consumed.append(bl)
            content = bl[:-1]
            if len(content) > COLUMNS:
                raise HeaderError("stanza body line too long")
            body_text.append(content.decode("ascii", "replace"))
            if len(content) < COLUMNS:
                break
        try:
            body = b64decode_canonical("".join(body_text))
        except HeaderError:
            raise HeaderError("malformed stanza body") from None
        stanzas.append(Stanza(parts[0].decode("ascii"), [p.decode("ascii") for p in parts[1:]], body))
        line = _readline(stream, budget)
    if not stanzas:
        raise HeaderError("header has no recipient stanzas")
    if not line.startswith(b"--- ") or len(line) != 4 + 43 + 1:
        raise HeaderError("malformed header MAC line")
    mac = b64decode_canonical(line[4:-1].decode("ascii", "replace"))
    if len(mac) != 32:
        raise HeaderError("malformed header MAC")
    mac_input = b"".join(consumed) + MAC_PREFIX
    return Header(stanzas, mac, mac_input)


def encode_header_without_mac(stanzas: list[Stanza]) -> bytes:
    return INTRO + b"".join(s.encode() for s in stanzas) + MAC_PREFIX


def header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac_sha256(hkdf(file_key, b"", b"header"), mac_input)


def verify_mac(file_key: bytes, header: Header) -> None:
    if not hmac.compare_digest(header_mac(file_key, header.mac_input), header.mac):
        raise HMACError("header MAC mismatch")
