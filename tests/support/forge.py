"""Build packages by hand (for attacks the normal `pack` refuses to make)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from laxchange import age, dsse
from laxchange._util import jsonio, timefmt
from laxchange.models import messages
from laxchange.package import FORMAT, FORMAT_LINE, MANIFEST_PAYLOAD_TYPE, STATEMENT_TYPE, payload_type_for
from laxchange.trust.keystore import ENCRYPTION
from tests.support.parties import Party


def statement_for(sender: str, recipient: str, doc: dict[str, Any], *, transfer_id: str | None = None,
                  created: dt.datetime, expires: dt.datetime) -> dict[str, Any]:
    return {"_type": STATEMENT_TYPE, "transfer_id": transfer_id or os.urandom(16).hex(), "sender": sender,
            "recipient": recipient, "created": timefmt.fmt(created), "expires": timefmt.fmt(expires),
            "schema": doc["schema"], "message_type": "pep-transfer",
            "schema_version": doc["schema"].rsplit("/", 1)[1], "document": doc,
            "attachments": []}


def forge(
    statement: dict[str, Any] | bytes,
    *,
    signers: Sequence[dsse.Signer],
    manifest_signers: Sequence[dsse.Signer] | None = None,
    encrypt_to: Party,
    manifest_sender: str | None = None,
    manifest_recipient: str | None = None,
    payload_type: str = payload_type_for("pep-transfer", messages.VERSION),
    plaintext: bytes | None = None,
) -> bytes:
    """A package of `statement` signed by `signers`; `plaintext` replaces the whole age plaintext
    (the envelope line and what follows), for payloads no writer would make."""
    raw = statement if isinstance(statement, bytes) else json.dumps(statement, separators=(",", ":")).encode()
    st = statement if isinstance(statement, dict) else json.loads(statement)
    inner = dsse.sign(payload_type, raw, signers)
    key = encrypt_to.store.ring().keys_valid_at(encrypt_to.clock.now(), ENCRYPTION)[0]
    if plaintext is None:
        plaintext = jsonio.dumps_canonical(inner.to_dict()) + b"\n"
    payload = age.encrypt_bytes([key.recipient()], plaintext)
    manifest = {
        "format": FORMAT, "transfer_id": st["transfer_id"], "sender": manifest_sender or st["sender"],
        "recipient": manifest_recipient or st["recipient"], "created": st["created"], "expires": st["expires"],
        "sender_key_ids": [s.keyid for s in manifest_signers or signers], "recipient_key_id": key.kid,
        "encryption": f"age-v1/{key.alg}", "payload_size": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    menv = dsse.sign(MANIFEST_PAYLOAD_TYPE, jsonio.dumps_canonical(manifest), manifest_signers or signers)
    return FORMAT_LINE + jsonio.dumps_canonical(menv.to_dict()) + b"\n" + payload
