"""age recipient types: X25519, mlkem768x25519 (post-quantum hybrid) and scrypt passphrases.

Identities unwrap the 16-byte file key from a stanza of their type; recipients wrap it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from laxchange.age import bech32
from laxchange.age.errors import HeaderError
from laxchange.age.format import Stanza, b64decode_canonical, b64encode, hkdf

FILE_KEY_SIZE = 16
_ZERO_NONCE = bytes(12)

X25519_TYPE = "X25519"
X25519_LABEL = b"age-encryption.org/v1/X25519"
HYBRID_TYPE = "mlkem768x25519"
HYBRID_LABEL = b"age-encryption.org/mlkem768x25519"
SCRYPT_TYPE = "scrypt"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"

#: Refuse to spend more than this on a passphrase stanza (age's own limit): 2**22.
MAX_SCRYPT_WORK_FACTOR = 22
DEFAULT_SCRYPT_WORK_FACTOR = 18

HYBRID_ENC_SIZE = 1088 + 32
HYBRID_PK_SIZE = 1184 + 32

_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class Recipient(Protocol):
    def wrap(self, file_key: bytes) -> list[Stanza]: ...


class Identity(Protocol):
    def unwrap(self, stanzas: list[Stanza]) -> bytes | None: ...


def _aead_wrap(key: bytes, file_key: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def _aead_unwrap(key: bytes, body: bytes) -> bytes | None:
    if len(body) != FILE_KEY_SIZE + 16:
        raise HeaderError("wrapped file key has the wrong length")
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


_P25519 = 2**255 - 19
#: u-coordinates of the points of order dividing 8 on Curve25519 and its twist, and their
#: non-canonical spellings (p, p + 1), as 32 little-endian bytes with the top bit clear (X25519
#: ignores it). X25519 with a clamped scalar gives the all-zero secret for these inputs and no
#: others (RFC 7748 §6.1; tests/unit/age/test_building_blocks.py checks it against `exchange`).
LOW_ORDER_POINTS = frozenset(u.to_bytes(32, "little") for u in (
    0, 1, _P25519 - 1, _P25519, _P25519 + 1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
))


def _refuse_low_order(share: bytes) -> None:
    """The all-zero X25519 check of `_x25519`, for a share the KEM itself will use: the same
    verdict without a second scalar multiplication."""
    if len(share) != 32 or share[:31] + bytes([share[31] & 0x7F]) in LOW_ORDER_POINTS:
        raise HeaderError("X25519 share is a low-order point (all-zero shared secret)")


def _x25519(secret: x25519.X25519PrivateKey, share: bytes) -> bytes:
    try:
        shared = secret.exchange(x25519.X25519PublicKey.from_public_bytes(share))
    except ValueError:
        raise HeaderError("X25519 share is a low-order point (all-zero shared secret)") from None
    if shared == bytes(32):
        raise HeaderError("X25519 share is a low-order point (all-zero shared secret)")
    return shared


# --- X25519 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class X25519Recipient:
    public: bytes

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        hrp, data = bech32.decode(text)
        if hrp != "age" or len(data) != 32 or text != text.lower():
            raise ValueError("not an age X25519 recipient (age1...)")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode("age", self.public)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        eph = x25519.X25519PrivateKey.generate()
        share = eph.public_key().public_bytes_raw()
        shared = eph.exchange(x25519.X25519PublicKey.from_public_bytes(self.public))
        key = hkdf(shared, share + self.public, X25519_LABEL)
        return [Stanza(X25519_TYPE, [b64encode(share)], _aead_wrap(key, file_key))]


@dataclass(frozen=True)
class X25519Identity:
    secret: bytes

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(x25519.X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        hrp, data = bech32.decode(text)
        if hrp != "age-secret-key-" or len(data) != 32:
            raise ValueError("not an age X25519 identity (Bech32 with the AGE-SECRET-KEY- prefix)")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode("age-secret-key-", self.secret).upper()

    def recipient(self) -> X25519Recipient:
        return X25519Recipient(x25519.X25519PrivateKey.from_private_bytes(self.secret).public_key().public_bytes_raw())

    def unwrap(self, stanzas: list[Stanza]) -> bytes | None:
        sk = x25519.X25519PrivateKey.from_private_bytes(self.secret)
        own = sk.public_key().public_bytes_raw()
        for s in stanzas:
            if s.type != X25519_TYPE:
                continue
            if len(s.args) != 1:
                raise HeaderError("X25519 stanza must have exactly one argument")
            share = b64decode_canonical(s.args[0])
            if len(share) != 32:
                raise HeaderError("X25519 share has the wrong length")
            if len(s.body) != FILE_KEY_SIZE + 16:
                raise HeaderError("X25519 stanza body has the wrong length")
            shared = _x25519(sk, share)
            fk = _aead_unwrap(hkdf(shared, share + own, X25519_LABEL), s.body)
            if fk is not None:
                return fk
        return None


# --- mlkem768x25519 (X-Wing / MLKEM768-X25519 in HPKE) --------------------------------------


def _expand_hybrid_seed(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    """The decapsulation keys a seed stands for (ML-KEM-768 expansion: ~0.1 ms). Not cached here:
    an identity keeps its own (`HybridIdentity._hpke_key`), and lives as long as its owner keeps it
    (the key store: until the key is destroyed), not in a module-wide cache of secrets."""
    expanded = hashlib.shake_256(seed).digest(96)
    return (mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
            x25519.X25519PrivateKey.from_private_bytes(expanded[64:96]))


@dataclass(frozen=True)
class HybridRecipient:
    public: bytes  # ML-KEM-768 encapsulation key (1184) || X25519 public key (32)

    @classmethod
    def parse(cls, text: str) -> HybridRecipient:
        hrp, data = bech32.decode(text)
        if hrp != "age1pq" or len(data) != HYBRID_PK_SIZE or text != text.lower():
            raise ValueError("not an age post-quantum recipient (age1pq1...)")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode("age1pq", self.public)

    @functools.cached_property
    def _hpke_key(self) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(self.public[:1184]),
            x25519.X25519PublicKey.from_public_bytes(self.public[1184:]),
        )

    def wrap(self, file_key: bytes) -> list[Stanza]:
        sealed = _SUITE.encrypt(file_key, self._hpke_key, info=HYBRID_LABEL)
        enc, body = sealed[:HYBRID_ENC_SIZE], sealed[HYBRID_ENC_SIZE:]
        return [Stanza(HYBRID_TYPE, [b64encode(enc)], body)]


@dataclass(frozen=True)
class HybridIdentity:
    seed: bytes  # the 32-byte MLKEM768-X25519 decapsulation seed

    @classmethod
    def generate(cls) -> HybridIdentity:
        return cls(os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> HybridIdentity:
        hrp, data = bech32.decode(text)
        if hrp != "age-secret-key-pq-" or len(data) != 32:
            raise ValueError("not an age post-quantum identity (AGE-SECRET-KEY-PQ-1...)")
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode("age-secret-key-pq-", self.seed).upper()

    @functools.cached_property
    def _hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        """The expanded decapsulation key, made once per identity (expanding the seed and building
        the HPKE key took ~0.13 ms, as much as the decapsulation itself)."""
        return hpke.MLKEM768X25519PrivateKey(*_expand_hybrid_seed(self.seed))

    def recipient(self) -> HybridRecipient:
        m, x = _expand_hybrid_seed(self.seed)
        return HybridRecipient(m.public_key().public_bytes_raw() + x.public_key().public_bytes_raw())

    def unwrap(self, stanzas: list[Stanza]) -> bytes | None:
        priv = self._hpke_key
        for s in stanzas:
            if s.type != HYBRID_TYPE:
                continue
            if len(s.args) != 1:
                raise HeaderError("mlkem768x25519 stanza must have exactly one argument")
            enc = b64decode_canonical(s.args[0])
            if len(enc) != HYBRID_ENC_SIZE:
                raise HeaderError("mlkem768x25519 enc has the wrong length")
            if len(s.body) != FILE_KEY_SIZE + 16:
                raise HeaderError("mlkem768x25519 stanza body has the wrong length")
            # cryptography's hybrid decapsulation accepts an all-zero X25519 shared secret;
            # the age spec requires rejecting it, so check the X25519 half ourselves.
            _refuse_low_order(enc[1088:])
            try:
                fk = _SUITE.decrypt(enc + s.body, priv, info=HYBRID_LABEL)
            except (InvalidTag, ValueError):
                continue
            if len(fk) != FILE_KEY_SIZE:
                raise HeaderError("wrapped file key has the wrong length")
            return fk
        return None


# --- scrypt passphrases -----------------------------------------------------------------------

_WORK_FACTOR_RE = re.compile(r"[1-9][0-9]{0,1}")


def _scrypt_key(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    return Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1).derive(passphrase)


@dataclass(frozen=True)
class ScryptRecipient:
    passphrase: bytes
    work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR

    def wrap(self, file_key: bytes) -> list[Stanza]:
        if not 1 <= self.work_factor <= MAX_SCRYPT_WORK_FACTOR:
            raise ValueError("scrypt work factor out of range")
        salt = os.urandom(16)
        key = _scrypt_key(self.passphrase, salt, self.work_factor)
        return [Stanza(SCRYPT_TYPE, [b64encode(salt), str(self.work_factor)], _aead_wrap(key, file_key))]


@dataclass(frozen=True)
class ScryptIdentity:
    passphrase: bytes
    max_work_factor: int = MAX_SCRYPT_WORK_FACTOR

    def unwrap(self, stanzas: list[Stanza]) -> bytes | None:
        for s in stanzas:
            if s.type != SCRYPT_TYPE:
                continue
            if len(s.args) != 2:
                raise HeaderError("scrypt stanza must have exactly two arguments")
            salt = b64decode_canonical(s.args[0])
            if len(salt) != 16:
                raise HeaderError("scrypt salt has the wrong length")
            if not _WORK_FACTOR_RE.fullmatch(s.args[1]):
                raise HeaderError("scrypt work factor is not a plain decimal")
            wf = int(s.args[1])
            if wf > self.max_work_factor:
                raise HeaderError(f"scrypt work factor 2^{wf} exceeds the limit 2^{self.max_work_factor}")
            if len(s.body) != FILE_KEY_SIZE + 16:
                raise HeaderError("scrypt stanza body has the wrong length")
            fk = _aead_unwrap(_scrypt_key(self.passphrase, salt, wf), s.body)
            if fk is not None:
                return fk
        return None


@functools.lru_cache(maxsize=256)
def parse_recipient(text: str) -> X25519Recipient | HybridRecipient:
    """An `age1...` or `age1pq1...` recipient string."""
    if text.startswith("age1pq1"):
        return HybridRecipient.parse(text)
    return X25519Recipient.parse(text)


def parse_identity(text: str) -> Identity:
    """An age identity string: X25519 (prefix AGE-SECRET-KEY-) or hybrid (prefix AGE-SECRET-KEY-PQ-)."""
    if text.upper().startswith("AGE-SECRET-KEY-PQ-1"):
        return HybridIdentity.parse(text)
    return X25519Identity.parse(text)
