"""Our age implementation against the C2SP CCTV vectors (../shared/vectors/cctv-age).

Every non-armoured vector must succeed or fail exactly as its `expect` header says, and the
plaintext released before a payload failure must match the `payload` hash. The vectors are
read from the shared directory next to the repository; their absence is a failure, not a skip.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import pytest

from laxchange import age
from laxchange.age import format as age_format
from tests.support.parties import SHARED

CCTV = SHARED / "vectors" / "cctv-age"


def _vectors() -> list[Path]:
    if not CCTV.is_dir():
        return [CCTV / "MISSING"]
    return sorted(p for p in CCTV.iterdir() if p.is_file() and not p.name.startswith("README"))


def _load(path: Path) -> tuple[dict[str, str], list[tuple[str, str]], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    meta: dict[str, str] = {}
    secrets: list[tuple[str, str]] = []
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        if key in ("identity", "passphrase"):
            secrets.append((key, value))
        else:
            meta[key] = value
    if meta.get("compressed") == "zlib":
        body = zlib.decompress(body)
    return meta, secrets, body


def test_vectors_present():
    assert CCTV.is_dir(), f"C2SP CCTV age vectors missing at {CCTV}"
    names = {p.name for p in _vectors()}
    assert len(names) >= 140
    assert sum(n.startswith("hybrid") for n in names) >= 18


@pytest.mark.parametrize("path", _vectors(), ids=lambda p: p.name)
def test_cctv_vector(path: Path):
    assert path.exists(), f"missing CCTV vector directory {CCTV}"
    meta, secrets, body = _load(path)
    if meta.get("armored") == "yes":
        # Armour is outside laxchange's format; the armoured vectors must still be recognised as such.
        assert body.lstrip().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----") or meta["expect"] == "armor failure"
        return
    identities = [age.parse_identity(v) if k == "identity" else age.ScryptIdentity(v.encode()) for k, v in secrets]
    out = io.BytesIO()
    try:
        age.decrypt(identities, io.BytesIO(body), out)
        got = "success"
    except age.AgeError as exc:
        got = exc.kind
    assert got == meta["expect"]
    if got in ("success", "payload failure"):
        assert hashlib.sha256(out.getvalue()).hexdigest() == meta["payload"]


@pytest.mark.parametrize("path", [p for p in _vectors() if p.exists()], ids=lambda p: p.name)
def test_header_round_trip(path: Path):
    # Any vector that is not a header failure must re-encode to the same header bytes.
    meta, _, body = _load(path)
    if meta.get("armored") == "yes" or meta["expect"] == "header failure":
        return
    src = io.BytesIO(body)
    header = age_format.parse_header(src)
    encoded = age_format.encode_header_without_mac(header.stanzas)
    assert encoded == header.mac_input
    assert body.startswith(encoded + b" " + age_format.b64encode(header.mac).encode() + b"\n")


@pytest.mark.parametrize("name", ["hybrid_identity", "hybrid_low_order"])
def test_hybrid_all_zero_x25519_share_is_rejected_by_us_not_by_cryptography(name):
    # cryptography's MLKEM768-X25519 decapsulation goes ahead with an all-zero X25519 shared
    # secret and only fails later at the AEAD (InvalidTag, which looks like "no match"); the age
    # spec wants a header failure, so we check the X25519 half ourselves before HPKE.
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hpke

    from laxchange.age import recipients

    meta, secrets, body = _load(CCTV / name)
    assert meta["expect"] == "header failure"
    ident = age.parse_identity(secrets[0][1])
    header = age_format.parse_header(io.BytesIO(body))
    m, x = recipients._expand_hybrid_seed(ident.seed)
    stanza = header.stanzas[0]
    enc = age_format.b64decode_canonical(stanza.args[0])
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    with pytest.raises(InvalidTag):
        suite.decrypt(enc + stanza.body, hpke.MLKEM768X25519PrivateKey(m, x), info=recipients.HYBRID_LABEL)
    with pytest.raises(age.HeaderError, match="low-order"):
        ident.unwrap(header.stanzas)


def test_encrypt_round_trips_across_chunk_boundaries():
    ident = age.X25519Identity.generate()
    for n in (0, 1, 65535, 65536, 65537, 3 * 65536):
        data = bytes(i % 251 for i in range(n))
        assert age.decrypt_bytes([ident], age.encrypt_bytes([ident.recipient()], data)) == data


def test_encrypt_refuses_mixing_pq_and_classic():
    with pytest.raises(ValueError):
        age.encrypt_bytes([age.HybridIdentity.generate().recipient(), age.X25519Identity.generate().recipient()], b"x")


def test_bech32_round_trip_and_checksum():
    from laxchange.age import bech32

    h = age.HybridIdentity.generate()
    text = str(h.recipient())
    assert text.startswith("age1pq1") and len(text) > 1900
    assert age.HybridRecipient.parse(text).public == h.recipient().public
    broken = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(bech32.Bech32Error):
        bech32.decode(broken)
    with pytest.raises(bech32.Bech32Error):
        bech32.decode(text[:10].upper() + text[10:])
