"""Standard base64 (RFC 4648 §4), and the check that a text is the one canonical encoding of
its bytes, done without encoding them again.

DSSE (padded) and age (unpadded) both refuse any other spelling of the same bytes: two spellings
of one value are how signed data gets misread. Decoding once and checking the form is enough:
strict decoding admits only the alphabet with padding at the end; the length must be the one the
data needs; and the unused low bits of the last character must be zero.

pybase64 (SIMD libbase64) does the work: a package's statement is base64 inside its envelope,
and at 1 MB the standard library's codec (~500 MB/s here) costs more than the signatures.
"""

from __future__ import annotations

import binascii

import pybase64

__all__ = ["decode_canonical", "encode"]


def encode(data: bytes | bytearray | memoryview) -> bytes:
    """Standard padded base64, no line breaks (what base64.b64encode gives)."""
    return pybase64.b64encode(data)

#: The last character before the padding of a canonical encoding: its unused low bits are zero
#: (2 bits before one "=", 4 bits before "==").
_TAIL_ONE_PAD = frozenset(b"AEIMQUYcgkosw048")
_TAIL_TWO_PAD = frozenset(b"AQgw")
_PAD = (b"", b"", b"==", b"=")


def decode_canonical(raw: bytes | bytearray | memoryview, *, padded: bool = True) -> bytes | None:
    """The bytes `raw` encodes if it is their standard base64 (RFC 4648 §4, padded with "=" unless
    `padded` is false, when there must be no "="), or None for any other text."""
    if not padded:
        if b"=" in raw:
            return None
        raw = bytes(raw) + _PAD[len(raw) % 4]
    try:  # strict: the alphabet only, "=" only as the last one or two of a multiple of four
        data = pybase64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    n = len(data)
    if len(raw) != (n + 2) // 3 * 4:
        return None
    rest = n % 3
    if (rest == 1 and raw[-3] not in _TAIL_TWO_PAD) or (rest == 2 and raw[-2] not in _TAIL_ONE_PAD):
        return None
    return data
