"""age failures, in the four classes the C2SP test vectors distinguish."""

from __future__ import annotations


class AgeError(Exception):
    """Any failure to decrypt or parse an age file."""

    kind = "age"


class HeaderError(AgeError):
    """The header (or a recipient stanza, or the payload nonce) is malformed."""

    kind = "header failure"


class NoMatchError(AgeError):
    """The header parsed, but none of our identities unwraps a stanza."""

    kind = "no match"


class HMACError(AgeError):
    """A file key was unwrapped, but the header MAC does not match."""

    kind = "HMAC failure"


class PayloadError(AgeError):
    """The STREAM-encrypted payload is truncated, extended or tampered with."""

    kind = "payload failure"
