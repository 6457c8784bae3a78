"""Write `mldsa65.json`: an ML-DSA-65 DSSE vector (fixed key, fixed statement, one signature).

    PYTHONPATH=. .venv/bin/python -m tests.vectors.mldsa65

The key's 32-byte seed is derived from a public label (`derive.seed`), so it protects nothing. ML-DSA
signing is randomised (hedged), so rerunning writes a different, equally valid signature; the test
(`tests/integration/test_mldsa_vector.py`) checks it with an independent implementation, @noble/post-quantum.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import mldsa

from laxchange import dsse
from laxchange._util import jsonio
from laxchange.trust.keystore import compute_kid
from tests.vectors.derive import seed

HERE = Path(__file__).resolve().parent
PAYLOAD_TYPE = "application/vnd.laxchange.manifest+json; version=1"
#: A manifest payload (docs/format.md §2), canonical JSON, as in the package vector; `sender_key_ids` is
#: that package's Ed25519 key and this ML-DSA-65 key (a sender whose policy requires both).
STATEMENT = {"created": "2026-11-24T12:00:00Z", "encryption": "age-v1/mlkem768x25519",
             "expires": "2026-12-24T12:00:00Z", "format": "laxchange/1",
             "payload_sha256": "ddcb66610751129940fd564b344c975cfc1a5a7b1cf7334377fa6acf22b7f43f",
             "payload_size": 8198, "recipient": "URN:123456", "recipient_key_id": "6b834aff363f58211ed72ebea3e754b7",
             "sender": "LA:919", "transfer_id": "11220dc85bfaf14bbc3362ee18b90c05"}


def main() -> None:
    key_seed = seed("LA:919", "signing ml-dsa-65")
    sk = mldsa.MLDSA65PrivateKey.from_seed_bytes(key_seed)
    public = sk.public_key().public_bytes_raw()
    kid = compute_kid(dsse.MLDSA65, public)
    payload = jsonio.dumps_canonical({**STATEMENT, "sender_key_ids": ["ca070ee01b19833a1e291482de7077c0", kid]})
    env = dsse.sign(PAYLOAD_TYPE, payload, [dsse.MLDSA65Signer(kid, sk)])
    vector = {
        "about": "ML-DSA-65 (FIPS 204, pure, empty context) over the DSSE PAE of a laxchange manifest payload; "
                 "the seed is public (tests/vectors/derive.py), never use it",
        "seed_hex": key_seed.hex(), "public_b64": dsse.b64(public), "kid": kid,
        "payload_type": PAYLOAD_TYPE, "payload_b64": dsse.b64(payload),
        "pae_sha256": hashlib.sha256(dsse.pae(PAYLOAD_TYPE, payload)).hexdigest(),
        "sig_b64": dsse.b64(env.signatures[0][1]), "envelope": env.to_dict(),
    }
    (HERE / "mldsa65.json").write_text(json.dumps(vector, indent=2) + "\n")


if __name__ == "__main__":
    main()
