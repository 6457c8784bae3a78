"""Throwaway keys for the committed vectors, derived from public labels (never stored as files).

Anyone can re-derive them: they protect nothing and exist only so the vectors can be opened.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography.hazmat.primitives.asymmetric import ed25519

from laxchange import age, dsse
from laxchange._util import timefmt
from laxchange.trust.keystore import ALG_HYBRID, ENCRYPTION, SIGNING, KeyInfo, Keyring, compute_kid, role_for

ISSUED = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
NOT_AFTER = ISSUED + dt.timedelta(days=730)
PARTIES = {"LA:919": "Vector Council (fictional)", "URN:123456": "Vector School (fictional)"}


def seed(party: str, use: str) -> bytes:
    return hashlib.sha256(f"laxchange public test-vector key: {party} {use}".encode()).digest()


def hybrid_identity(party: str) -> age.HybridIdentity:
    return age.HybridIdentity(seed(party, "encryption"))


def signer(party: str) -> dsse.Ed25519Signer:
    sk = ed25519.Ed25519PrivateKey.from_private_bytes(seed(party, "signing"))
    pub = sk.public_key().public_bytes_raw()
    return dsse.Ed25519Signer(compute_kid(dsse.ED25519, pub), sk)


def ring(party: str) -> Keyring:
    ident = hybrid_identity(party)
    rec = ident.recipient()
    s = signer(party)
    nb, na = timefmt.fmt(ISSUED), timefmt.fmt(NOT_AFTER)
    keys = [
        KeyInfo(compute_kid(ALG_HYBRID, rec.public), ENCRYPTION, ALG_HYBRID, str(rec), nb, na),
        KeyInfo(s.keyid, SIGNING, dsse.ED25519, dsse.b64(s.key.public_key().public_bytes_raw()), nb, na),
    ]
    return Keyring(party, PARTIES[party], role_for(party), keys)
