"""age STREAM payload encryption: ChaCha20-Poly1305 over 64 KiB chunks, constant memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from laxchange.age.errors import HeaderError, PayloadError
from laxchange.age.format import hkdf

CHUNK = 64 * 1024
TAG = 16
NONCE_SIZE = 16
_MAX_COUNTER = (1 << 88) - 1


def payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return hkdf(file_key, nonce, b"payload")


def _nonce(counter: int, last: bool) -> bytes:
    if counter > _MAX_COUNTER:
        raise PayloadError("payload too long for STREAM")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _read_full(src: IO[bytes], n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        piece = src.read(n - len(buf))
        if not piece:
            break
        buf += piece
    return bytes(buf)


def encrypt_stream(
    file_key: bytes,
    nonce: bytes,
    src: IO[bytes],
    dst: IO[bytes],
    on_chunk: Callable[[bytes], None] | None = None,
) -> int:
    """Encrypt `src` to `dst` (nonce first). Returns the number of plaintext bytes."""
    aead = ChaCha20Poly1305(payload_key(file_key, nonce))
    dst.write(nonce)
    if on_chunk:
        on_chunk(nonce)
    counter = 0
    total = 0
    chunk = _read_full(src, CHUNK)
    while True:
        nxt = _read_full(src, CHUNK) if len(chunk) == CHUNK else b""
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


def decrypt_stream(file_key: bytes, src: IO[bytes], dst: IO[bytes]) -> int:
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
    while True:
        chunk = _read_full(src, size)
        if len(chunk) < TAG:
            if not chunk and counter > 0:
                raise PayloadError("payload truncated: the final chunk is missing")
            raise PayloadError("payload chunk missing or too short")
        if len(chunk) < size:
            last = True
            pt = _open(aead, counter, True, chunk)
        else:
            # A full-size chunk may be the final one: age tries "not last" first, then "last".
            try:
                pt = aead.decrypt(_nonce(counter, False), chunk, None)
                last = False
            except InvalidTag:
                pt = _open(aead, counter, True, chunk)
                last = True
        if last and not pt and counter > 0:
            raise PayloadError("empty final chunk after a full chunk")
        dst.write(pt)
        total += len(pt)
        if last:
            if src.read(1):
                raise PayloadError("trailing data after the final payload chunk")
            return total
        counter += 1


def _open(aead: ChaCha20Poly1305, counter: int, last: bool, chunk: bytes) -> bytes:
    try:
        return aead.decrypt(_nonce(counter, last), chunk, None)
    except InvalidTag:
        raise PayloadError("payload chunk failed authentication (tampered, truncated or extended)") from None
