"""age v1 (c2sp.org/age) in pure Python over `cryptography`: X25519, mlkem768x25519 and scrypt.

Streaming in both directions: memory stays at one 64 KiB chunk whatever the payload size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import IO

from laxchange.age.errors import AgeError, HeaderError, HMACError, NoMatchError, PayloadError
from laxchange.age.format import Stanza, b64encode, encode_header_without_mac, header_mac, parse_header, verify_mac
from laxchange.age.recipients import (
    SCRYPT_TYPE,
    HybridIdentity,
    HybridRecipient,
    Identity,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    X25519Recipient,
    parse_identity,
    parse_recipient,
)
from laxchange.age.stream import Sink, Source, decrypt_stream, encrypt_stream

__all__ = [
    "AgeError",
    "HMACError",
    "HeaderError",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "NoMatchError",
    "PayloadError",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "decrypt",
    "decrypt_bytes",
    "encrypt",
    "encrypt_bytes",
    "parse_identity",
    "parse_recipient",
]


def encrypt(
    recipients: Sequence[Recipient],
    src: Source,
    dst: Sink,
    *,
    random: Callable[[int], bytes] = os.urandom,
    on_bytes: Callable[[bytes], None] | None = None,
) -> int:
    """Encrypt `src` to `dst` for `recipients`. Returns the plaintext length.

    `on_bytes` sees every ciphertext byte written (for hashing while streaming).
    """
    if not recipients:
        raise ValueError("at least one recipient is needed")
    kinds = {type(r) for r in recipients}
    if ScryptRecipient in kinds and len(recipients) != 1:
        raise ValueError("a passphrase recipient must be the only recipient")
    if HybridRecipient in kinds and X25519Recipient in kinds:
        raise ValueError("do not mix post-quantum and X25519 recipients in one file")
    file_key = random(16)
    stanzas: list[Stanza] = []
    for r in recipients:
        stanzas.extend(r.wrap(file_key))
    head = encode_header_without_mac(stanzas)
    head += b" " + b64encode(header_mac(file_key, head)).encode("ascii") + b"\n"
    dst.write(head)
    if on_bytes:
        on_bytes(head)
    return encrypt_stream(file_key, random(16), src, dst, on_bytes)


def unwrap_file_key(src: IO[bytes], identities: Sequence[Identity], *, only: str | None = None) -> bytes:
    """Parse the header from `src`, find the file key and check the MAC. With `only` (a stanza
    type), the header must hold exactly one stanza, of that type (a laxchange package's rule)."""
    header = parse_header(src)
    types = [s.type for s in header.stanzas]
    if SCRYPT_TYPE in types and len(types) != 1:
        raise HeaderError("a scrypt stanza must be the only stanza")
    if only is not None and types != [only]:
        raise HeaderError(f"the header must hold exactly one {only} stanza, not {', '.join(types)}")
    for ident in identities:
        fk = ident.unwrap(header.stanzas)
        if fk is not None:
            verify_mac(fk, header)
            return fk
    raise NoMatchError("no identity matched any recipient stanza")


def decrypt(identities: Sequence[Identity], src: IO[bytes], dst: Sink, *, only: str | None = None) -> int:
    """Decrypt `src` into `dst`. Plaintext is released chunk by chunk once authenticated, so a
    caller that needs all-or-nothing must write `dst` somewhere it can discard on error. `only`:
    as for `unwrap_file_key`."""
    fk = unwrap_file_key(src, identities, only=only)
    return decrypt_stream(fk, src, dst)


def encrypt_bytes(recipients: Sequence[Recipient], data: bytes) -> bytes:
    out = io.BytesIO()
    encrypt(recipients, io.BytesIO(data), out)
    return out.getvalue()


def decrypt_bytes(identities: Sequence[Identity], data: bytes) -> bytes:
    out = io.BytesIO()
    decrypt(identities, io.BytesIO(data), out)
    return out.getvalue()
