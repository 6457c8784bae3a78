"""The age building blocks rewritten for speed give the same bytes and verdicts as the plain
definitions: the canonical base64 check against decode-and-re-encode, the STREAM reader against a
straightforward reader (age's spec: try "not last", then "last") on every chunk-boundary length
and on damaged ciphertexts, and the low-order share list against X25519 itself."""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import example, given, settings
from hypothesis import strategies as st

from laxchange.age import format as age_format
from laxchange.age import recipients, stream
from laxchange.age.errors import AgeError, HeaderError, PayloadError

CHUNK, TAG = stream.CHUNK, stream.TAG


def _reference_unpadded(text: str) -> bytes | None:
    if "=" in text or "\r" in text or "\n" in text:
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data).decode().rstrip("=") == text else None


@settings(max_examples=1000)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n é", max_size=13))
@example("QR")
@example("QUI")
@example("Q")
@example("")
def test_unpadded_base64_check_matches_the_definition(text: str) -> None:
    expected = _reference_unpadded(text)
    if expected is None:
        with pytest.raises(HeaderError):
            age_format.b64decode_canonical(text)
    else:
        assert age_format.b64decode_canonical(text) == expected


def _reference_decrypt(file_key: bytes, src: io.BytesIO, dst: io.BytesIO) -> int:
    """A direct reading of c2sp.org/age's payload section, one read() at a time."""
    nonce = src.read(16)
    if len(nonce) != 16:
        raise HeaderError("payload nonce missing or short")
    aead = ChaCha20Poly1305(stream.payload_key(file_key, nonce))
    counter = total = 0
    while True:
        chunk = src.read(CHUNK + TAG)
        if len(chunk) < TAG:
            if not chunk and counter > 0:
                raise PayloadError("payload truncated: the final chunk is missing")
            raise PayloadError("payload chunk missing or too short")
        last = len(chunk) < CHUNK + TAG
        try:
            if last:
                raise InvalidTag
            pt = aead.decrypt(counter.to_bytes(11, "big") + b"\x00", chunk, None)
        except InvalidTag:
            try:
                pt = aead.decrypt(counter.to_bytes(11, "big") + b"\x01", chunk, None)
            except InvalidTag:
                raise PayloadError("payload chunk failed authentication (tampered, truncated or extended)") from None
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


def _outcome(fn, file_key: bytes, data: bytes) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    try:
        fn(file_key, io.BytesIO(data), out)
    except AgeError as exc:
        return f"{type(exc).__name__}: {exc}", out.getvalue()
    return "ok", out.getvalue()


class _Trickle(io.RawIOBase):
    """A source that returns at most 1000 bytes a call (pipes and sockets do)."""

    def __init__(self, data: bytes) -> None:
        self.src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def, override]
        return self.src.readinto(memoryview(b)[:1000])


class _ReadOnly:
    """A source with read() and nothing else."""

    def __init__(self, data: bytes) -> None:
        self.src = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.src.read(min(n, 777) if n >= 0 else n)


SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 5, 3 * CHUNK]


@pytest.mark.parametrize("size", SIZES)
def test_stream_round_trip_at_chunk_boundaries(size: int) -> None:
    key, nonce = os.urandom(16), os.urandom(16)
    plain = os.urandom(size)
    for source in (io.BytesIO(plain), _Trickle(plain), _ReadOnly(plain)):
        ct = io.BytesIO()
        seen: list[bytes] = []
        assert stream.encrypt_stream(key, nonce, source, ct, seen.append) == size  # type: ignore[arg-type]
        assert b"".join(seen) == ct.getvalue()
        assert len(ct.getvalue()) == 16 + size + TAG * max(1, -(-size // CHUNK))
        assert _outcome(_reference_decrypt, key, ct.getvalue()) == ("ok", plain)
        for reader in (io.BytesIO, _Trickle, _ReadOnly):
            out = io.BytesIO()
            assert stream.decrypt_stream(key, reader(ct.getvalue()), out) == size  # type: ignore[arg-type]
            assert out.getvalue() == plain


def _seal(key: bytes, nonce: bytes, chunks: list[tuple[bytes, bool]]) -> bytes:
    aead = ChaCha20Poly1305(stream.payload_key(key, nonce))
    return nonce + b"".join(aead.encrypt(i.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), c, None)
                            for i, (c, last) in enumerate(chunks))


@pytest.mark.parametrize("shape", [
    [(CHUNK, False)],                            # cut after a full chunk: final chunk missing
    [(CHUNK, True), (10, True)],                 # data after a full final chunk
    [(CHUNK, False), (CHUNK, True), (1, True)],  # the same, one chunk later
    [(CHUNK, False), (0, True)],                 # empty final chunk after a full one
    [(CHUNK, True)],                             # a full final chunk: fine
    [(10, False)],                               # a short chunk not marked last
    [(0, True)],                                 # an empty file: fine
    [(CHUNK, False), (CHUNK, False)],
])
def test_stream_verdicts_match_the_reference(shape: list[tuple[int, bool]]) -> None:
    key, nonce = os.urandom(16), os.urandom(16)
    data = _seal(key, nonce, [(os.urandom(n), last) for n, last in shape])
    for cut in (data, data[:-1], data[:-TAG], data + b"x", data[:16 + CHUNK + TAG + 3]):
        assert _outcome(stream.decrypt_stream, key, cut) == _outcome(_reference_decrypt, key, cut)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3 * CHUNK + 40), st.integers(0, 4 * CHUNK), st.sampled_from(["flip", "cut", "add"]))
def test_damaged_streams_fail_as_the_reference_does(size: int, at: int, how: str) -> None:
    key, nonce = b"\x01" * 16, b"\x02" * 16
    ct = io.BytesIO()
    stream.encrypt_stream(key, nonce, io.BytesIO(bytes(size)), ct)
    data = ct.getvalue()
    at = min(at, len(data))
    if how == "flip" and at < len(data):
        data = data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]
    elif how == "cut":
        data = data[:at]
    else:
        data = data[:at] + b"\x00" * 7 + data[at:]
    assert _outcome(stream.decrypt_stream, key, data) == _outcome(_reference_decrypt, key, data)


def _zero_secret(secret: x25519.X25519PrivateKey, share: bytes) -> bool:
    try:
        return secret.exchange(x25519.X25519PublicKey.from_public_bytes(share)) == bytes(32)
    except ValueError:  # OpenSSL refuses an all-zero result
        return True


def _refused(share: bytes) -> bool:
    try:
        recipients._refuse_low_order(share)
    except HeaderError:
        return True
    return False


def test_low_order_list_is_exactly_the_all_zero_inputs() -> None:
    secret = x25519.X25519PrivateKey.generate()
    p = 2**255 - 19
    candidates = [*range(3000), *range(p - 3000, 2**255)]
    for u in candidates:
        share = u.to_bytes(32, "little")
        high = share[:31] + bytes([share[31] | 0x80])
        assert _refused(share) == _zero_secret(secret, share) == _refused(high), u
    for share in recipients.LOW_ORDER_POINTS:
        assert _zero_secret(secret, share)
    for _ in range(2000):
        share = os.urandom(32)
        assert _refused(share) == _zero_secret(secret, share)


def test_low_order_check_agrees_with_the_exchange_check() -> None:
    secret = x25519.X25519PrivateKey.generate()
    for share in [*recipients.LOW_ORDER_POINTS, os.urandom(32)]:
        via_exchange = True
        try:
            recipients._x25519(secret, share)
            via_exchange = False
        except HeaderError:
            pass
        assert _refused(share) == via_exchange


@settings(max_examples=200, deadline=None)
@given(ikm=st.binary(max_size=80), salt=st.binary(max_size=80), info=st.binary(max_size=40),
       length=st.integers(min_value=1, max_value=200))
@example(ikm=b"", salt=b"", info=b"header", length=32)
@example(ikm=b"\x0b" * 22, salt=bytes(range(13)), info=bytes(range(0xf0, 0xfa)), length=42)  # RFC 5869 A.1
def test_hkdf_over_hmac_is_cryptographys_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> None:
    want = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)
    assert age_format.hkdf(ikm, salt, info, length) == want


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), msg=st.binary(max_size=300))
@example(key=b"", msg=b"")
@example(key=b"k" * 64, msg=b"m")
@example(key=b"k" * 65, msg=b"m")
def test_hmac_sha256_is_the_standard_librarys(key: bytes, msg: bytes) -> None:
    assert age_format.hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256")


def test_hkdf_rfc5869_case_1() -> None:
    okm = age_format.hkdf(b"\x0b" * 22, bytes(range(13)), bytes(range(0xf0, 0xfa)), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_hkdf_refuses_lengths_out_of_range() -> None:
    for n in (0, 255 * 32 + 1):
        with pytest.raises(ValueError):
            age_format.hkdf(b"k", b"", b"i", n)


def test_hybrid_identity_expands_its_key_once() -> None:
    ident = recipients.HybridIdentity.generate()
    assert ident._hpke_key is ident._hpke_key
    assert recipients.HybridIdentity(ident.seed)._hpke_key is not ident._hpke_key  # per identity, no global cache
