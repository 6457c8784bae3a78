"""age STREAM payload encryption: ChaCha20-Poly1305 over 64 KiB chunks, constant memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from laxchange.age.errors import HeaderError, PayloadError
from laxchange.age.format import hkdf

CHUNK = 64 * 1024
TAG = 16
NONCE_SIZE = 16
_MAX_COUNTER = (1 << 88) - 1


class Source(Protocol):
    """Where plaintext comes from: anything with read() (bytes, or a memoryview of them)."""

    def read(self, size: int = -1, /) -> bytes | memoryview | None: ...


class Sink(Protocol):
    """Where output goes: anything with write()."""

    def write(self, data: bytes, /) -> object: ...


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return hkdf(file_key, nonce, b"payload")


def _nonce(counter: int, last: bool) -> bytes:
    if counter > _MAX_COUNTER:
        raise PayloadError("payload too long for STREAM")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _read_full(src: IO[bytes] | Source, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        piece = src.read(n - len(buf))
        if not piece:
            break
        buf += piece
    return bytes(buf)


def _read_chunk(src: IO[bytes] | Source, n: int) -> bytes | memoryview:
    """Up to `n` bytes: fewer only at the end of `src`. One read, as the source gives it (a
    memoryview is not copied); only a source that returns short reads (a pipe, the end of one
    part of a chain) is read again, and the pieces joined."""
    data = src.read(n) or b""
    if len(data) == n or not data:
        return data
    rest = _read_full(src, n - len(data))
    return b"".join((data, rest)) if rest else data


def encrypt_stream(
    file_key: bytes,
    nonce: bytes,
    src: Source,
    dst: Sink,
    on_chunk: Callable[[bytes], None] | None = None,
) -> int:
    """Encrypt `src` to `dst` (nonce first). Returns the number of plaintext bytes."""
    aead = ChaCha20Poly1305(payload_key(file_key, nonce))
    dst.write(nonce)
    if on_chunk:
        on_chunk(nonce)
    counter = 0
    total = 0
    chunk = _read_chunk(src, CHUNK)
    while True:
        nxt = _read_chunk(src, CHUNK) if len(chunk) == CHUNK else b""  # last if nothing follows it
        last = not nxt
        ct = aead.encrypt(_nonce(counter, last), chunk, None)
        dst.write(ct)
        if on_chunk:
            on_chunk(ct)
        total += len(chunk)
        if last:
            return total
        counter += 1
        chunk = nxt


def decrypt_stream(file_key: bytes, src: IO[bytes], dst: Sink) -> int:
    """Decrypt a STREAM payload from `src` into `dst`, releasing each chunk once authenticated.

    Raises PayloadError for truncation, trailing data, a missing final chunk or a bad tag.
    """
    nonce = _read_full(src, NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise HeaderError("payload nonce missing or short")
    aead = ChaCha20Poly1305(payload_key(file_key, nonce))
    counter = 0
    total = 0
    size = CHUNK + TAG
    chunk = _read_chunk(src, size)
    while True:
        n = len(chunk)
        if n < TAG:
            if not n and counter > 0:
                raise PayloadError("payload truncated: the final chunk is missing")
            raise PayloadError("payload chunk missing or too short")
        if n < size:  # a short chunk is the last one
            pt = _open(aead, counter, True, chunk)
            if not pt and counter > 0:
                raise PayloadError("empty final chunk after a full chunk")
            dst.write(pt)
            total += len(pt)
            if src.read(1):
                raise PayloadError("trailing data after the final payload chunk")
            return total
        nxt = _read_chunk(src, size)
        # A full-size chunk may be the last one; age tries "not last" first, then "last". Knowing
        # what follows, try the likely one first; the other is tried only to say what went wrong.
        if not nxt:
            try:
                pt = aead.decrypt(_nonce(counter, True), chunk, None)
            except InvalidTag:
                dst.write(_open(aead, counter, False, chunk))
                raise PayloadError("payload truncated: the final chunk is missing") from None
            dst.write(pt)
            return total + len(pt)
        try:
            pt = aead.decrypt(_nonce(counter, False), chunk, None)
        except InvalidTag:
            dst.write(_open(aead, counter, True, chunk))
            raise PayloadError("trailing data after the final payload chunk") from None
        dst.write(pt)
        total += len(pt)
        counter += 1
        chunk = nxt


def _open(aead: ChaCha20Poly1305, counter: int, last: bool, chunk: bytes | memoryview) -> bytes:
    try:
        return aead.decrypt(_nonce(counter, last), chunk, None)
    except InvalidTag:
        raise PayloadError("payload chunk failed authentication (tampered, truncated or extended)") from None
