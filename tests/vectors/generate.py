#!/usr/bin/env python3
"""Regenerate the committed vectors: two public cards and one package LA:919 -> URN:123456.

    .venv/bin/python -m tests.vectors.generate

The package is not byte-reproducible (HPKE draws its own ephemeral key), so regenerating
changes package.lax and expected.json together; the cards are reproducible byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
from pathlib import Path

from laxchange import package, samples
from laxchange._util import jsonio
from laxchange.clock import FixedClock
from laxchange.home import Home
from laxchange.trust import PartnerDirectory, card_from, legacy_fingerprint_of
from tests.vectors.derive import ISSUED, ring, signer

HERE = Path(__file__).resolve().parent


class VectorKeys:
    """Just enough of KeyStore for `package.pack`: the ring and its signer."""

    def __init__(self, party: str) -> None:
        self.party = party
        self.clock = FixedClock(ISSUED)

    def ring(self):
        return ring(self.party)

    def signers(self, at=None):
        return [signer(self.party)]


def main() -> None:
    cards = {}
    for party, fname in (("LA:919", "card_LA_919.json"), ("URN:123456", "card_URN_123456.json")):
        card, fpr = card_from(ring(party), ISSUED, [signer(party)])
        (HERE / fname).write_text(jsonio.dumps_pretty(card))
        cards[party] = (card, fpr)
    doc = samples.generate("pep-transfer", 42, 1)[0]
    (HERE / "record.json").write_text(jsonio.dumps_pretty(doc))
    counter = iter(range(1, 1 << 30))

    def rand(n: int) -> bytes:
        return hashlib.sha256(b"vector randomness %d" % next(counter)).digest()[:n]

    with tempfile.TemporaryDirectory() as tmp:
        directory = PartnerDirectory(Home(Path(tmp)), clock=FixedClock(ISSUED))
        directory.add(cards["URN:123456"][0], fingerprint=cards["URN:123456"][1])
        buf = io.BytesIO()
        result = package.pack(doc, message_type="pep-transfer", recipient="URN:123456",
                              keystore=VectorKeys("LA:919"), directory=directory, out=buf,  # type: ignore[arg-type]
                              clock=FixedClock(ISSUED), random=rand, validate=False)
    (HERE / "package.lax").write_bytes(buf.getvalue())
    expected = {
        "fingerprints": {p: f for p, (_, f) in cards.items()},
        # The version-1 fingerprints (whole payload, issue time included) of the same cards: partner files
        # written before issue 12 hold these, and must go on loading.
        "fingerprints_v1": {p: legacy_fingerprint_of(base64.b64decode(c["payload"])) for p, (c, _) in cards.items()},
        "manifest": result.manifest.to_dict(),
        "package_sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
        "pae": {"payloadType": "http://example.com/HelloWorld", "payload": "hello world",
                "pae": "DSSEv1 29 http://example.com/HelloWorld 11 hello world"},
    }
    (HERE / "expected.json").write_text(jsonio.dumps_pretty(expected))
    print("wrote", ", ".join(sorted(p.name for p in HERE.iterdir() if p.suffix in (".json", ".lax"))))


if __name__ == "__main__":
    main()
