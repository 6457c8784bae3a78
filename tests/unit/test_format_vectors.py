"""The committed format vectors (tests/vectors): cards, one package, PAE.

Part of the check is an independent verifier: raw `cryptography` Ed25519, a PAE written here,
and the npm age-encryption package for decryption, so that the format is checked against the
spec (docs/format.md) and not only against laxchange's own reader.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from laxchange import package
from laxchange._util import jsonio
from laxchange.clock import FixedClock
from laxchange.errors import SecurityError
from laxchange.home import Home
from laxchange.trust import PartnerDirectory, card_from, read_card
from tests.support.parties import REPO, node_oracle
from tests.vectors import derive

VEC = REPO / "tests" / "vectors"

EXPECTED = json.loads((VEC / "expected.json").read_text())


def _pae(ptype: str, payload: bytes) -> bytes:
    t = ptype.encode()
    return b"DSSEv1 " + str(len(t)).encode() + b" " + t + b" " + str(len(payload)).encode() + b" " + payload


def _verify_independently(envelope: dict, card: dict) -> bytes:
    """DSSE verification with nothing from laxchange: returns the payload when a signature verifies."""
    card_payload = json.loads(base64.b64decode(card["payload"]))
    keys = {k["kid"]: base64.b64decode(k["public"]) for k in card_payload["keys"] if k["alg"] == "ed25519"}
    payload = base64.b64decode(envelope["payload"])
    message = _pae(envelope["payloadType"], payload)
    good = 0
    for sig in envelope["signatures"]:
        ed25519.Ed25519PublicKey.from_public_bytes(keys[sig["keyid"]]).verify(base64.b64decode(sig["sig"]), message)
        good += 1
    assert good >= 1
    return payload


def test_pae_vector():
    v = EXPECTED["pae"]
    assert _pae(v["payloadType"], v["payload"].encode()) == v["pae"].encode()
    from laxchange import dsse

    assert dsse.pae(v["payloadType"], v["payload"].encode()) == v["pae"].encode()


def test_cards_verify_and_reproduce():
    for party, name in (("LA:919", "card_LA_919.json"), ("URN:123456", "card_URN_123456.json")):
        card = json.loads((VEC / name).read_text())
        partner, _ = read_card(card)
        assert partner.party == party
        assert partner.fingerprint == EXPECTED["fingerprints"][party]
        again, fpr = card_from(derive.ring(party), derive.ISSUED, [derive.signer(party)])
        assert again == card and fpr == partner.fingerprint
        _verify_independently(card, card)


def _fingerprint_as_specified(card: dict) -> str:
    """docs/format.md §8 written out again without laxchange: the lines, SHA-256, 20 bytes, base32, groups of 4."""
    p = json.loads(base64.b64decode(card["payload"]))
    text = "laxchange-card-fingerprint-v2\n" + f"party {p['party']}\n"
    text += "policy " + ",".join(sorted(p["policy"]["required_signature_algorithms"])) + "\n"
    for k in sorted(p["keys"], key=lambda k: k["kid"]):
        text += f"key {k['kid']} {k['use']} {k['alg']} {k['public']}\n"
    b32 = base64.b32encode(hashlib.sha256(text.encode("ascii")).digest()[:20]).decode()
    return "-".join(b32[i:i + 4] for i in range(0, 32, 4))


def test_card_fingerprints_follow_the_spec_and_ignore_the_issue_time():
    for party, name in (("LA:919", "card_LA_919.json"), ("URN:123456", "card_URN_123456.json")):
        card = json.loads((VEC / name).read_text())
        assert _fingerprint_as_specified(card) == EXPECTED["fingerprints"][party]
        # Re-issued a year later (a re-export): another payload, the same fingerprint.
        later, fpr = card_from(derive.ring(party), derive.ISSUED + dt.timedelta(days=365), [derive.signer(party)])
        assert later["payload"] != card["payload"]
        assert fpr == _fingerprint_as_specified(later) == EXPECTED["fingerprints"][party]
        # The version-1 fingerprint (before issue 12) hashed the whole payload, issue time included.
        v1 = base64.b32encode(hashlib.sha256(b"laxchange-card-v1\x00" + base64.b64decode(card["payload"]))
                              .digest()[:20]).decode()
        assert "-".join(v1[i:i + 4] for i in range(0, 32, 4)) == EXPECTED["fingerprints_v1"][party]


def test_package_manifest_independently():
    data = (VEC / "package.lax").read_bytes()
    assert hashlib.sha256(data).hexdigest() == EXPECTED["package_sha256"]
    first, manifest_line, payload = data.split(b"\n", 2)
    assert first == b"LAXCHANGE/1"
    card_a = json.loads((VEC / "card_LA_919.json").read_text())
    manifest = json.loads(_verify_independently(json.loads(manifest_line), card_a))
    assert manifest == EXPECTED["manifest"]
    assert len(payload) == manifest["payload_size"]
    assert hashlib.sha256(payload).hexdigest() == manifest["payload_sha256"]
    assert package.inspect(io.BytesIO(data))["manifest"] == EXPECTED["manifest"]


def test_package_payload_independently(tmp_path):
    data = (VEC / "package.lax").read_bytes()
    payload = data.split(b"\n", 2)[2]
    (tmp_path / "payload.age").write_bytes(payload)
    node_oracle("decrypt", str(tmp_path / "payload.age"), str(tmp_path / "inner"),
          identity=str(derive.hybrid_identity("URN:123456")))
    inner = (tmp_path / "inner").read_bytes()
    envelope_line, _, rest = inner.partition(b"\n")
    assert rest == b""  # no attachments
    env = json.loads(envelope_line)
    assert env["payloadType"] == "application/vnd.laxchange.pep-transfer+json; version=1.0.0"
    card_a = json.loads((VEC / "card_LA_919.json").read_text())
    statement = json.loads(_verify_independently(env, card_a))
    m = EXPECTED["manifest"]
    for k in ("transfer_id", "sender", "recipient", "created", "expires"):
        assert statement[k] == m[k]
    assert statement["document"] == json.loads((VEC / "record.json").read_text())


class _VectorKeys:
    def __init__(self) -> None:
        self.clock = FixedClock(derive.ISSUED + dt.timedelta(hours=1))

    def ring(self):
        return derive.ring("URN:123456")

    def identity(self, kid: str):
        assert kid == derive.ring("URN:123456").keys[0].kid
        return derive.hybrid_identity("URN:123456")


def test_package_opens_with_laxchange(tmp_path):
    clock = FixedClock(derive.ISSUED + dt.timedelta(hours=1))
    directory = PartnerDirectory(Home(tmp_path), clock=clock)
    directory.add(jsonio.load_file(VEC / "card_LA_919.json"), fingerprint=EXPECTED["fingerprints"]["LA:919"])
    opened = package.open_package(VEC / "package.lax", keystore=_VectorKeys(), directory=directory,  # type: ignore[arg-type]
                                  clock=clock, out=tmp_path / "out.json", validate=False)
    assert (tmp_path / "out.json").read_text() == (VEC / "record.json").read_text()
    assert opened.manifest.to_dict() == EXPECTED["manifest"]
    # Once expired, the same vector is refused.
    late = FixedClock(derive.ISSUED + dt.timedelta(days=31))
    with pytest.raises(SecurityError) as ei:
        package.open_package(VEC / "package.lax", keystore=_VectorKeys(), directory=directory,  # type: ignore[arg-type]
                             clock=late)
    assert ei.value.code == "package.expired"
