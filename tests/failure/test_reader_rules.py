"""The reader rules docs/format.md §6.2 states, each refused as it says: a package that breaks one is
refused even when every signature the policy needs is good. Each of these was accepted before the rule
was written down (the forgeries below opened)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from laxchange import age, dsse
from laxchange._util import jsonio
from laxchange.errors import InvalidData, SecurityError
from laxchange.package import FORMAT, FORMAT_LINE, MANIFEST_PAYLOAD_TYPE
from laxchange.trust.keystore import ENCRYPTION
from tests.support.forge import forge, statement_for
from tests.support.parties import T0, Party, record, world

Parties = tuple[Party, Party, Party]


@pytest.fixture()
def abc(tmp_path: Path) -> Parties:
    return world(tmp_path)


def _statement(**kw: Any) -> dict[str, Any]:
    return statement_for("LA:919", "URN:123456", record(), created=T0, expires=T0 + dt.timedelta(days=1), **kw)


def _package(b: Party, plaintext: bytes, manifest_signers: list[dsse.Signer], st: dict[str, Any], *,
             recipients: list[Any] | None = None, **manifest_changes: Any) -> bytes:
    """A package of `plaintext` to B, its manifest (with `manifest_changes`) signed by `manifest_signers`."""
    key = b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION)[0]
    payload = age.encrypt_bytes(recipients or [key.recipient()], plaintext)
    manifest = {"format": FORMAT, "transfer_id": st["transfer_id"], "sender": st["sender"],
                "recipient": st["recipient"], "created": st["created"], "expires": st["expires"],
                "sender_key_ids": [s.keyid for s in manifest_signers], "recipient_key_id": key.kid,
                "encryption": f"age-v1/{key.alg}", "payload_size": len(payload),
                "payload_sha256": hashlib.sha256(payload).hexdigest(), **manifest_changes}
    menv = dsse.sign(MANIFEST_PAYLOAD_TYPE, jsonio.dumps_canonical(manifest), manifest_signers)
    return FORMAT_LINE + menv.to_json() + b"\n" + payload


def _inner(st: dict[str, Any], signers: list[dsse.Signer]) -> bytes:
    return dsse.sign("application/vnd.laxchange.pep-transfer+json; version=" + st["schema_version"],
                     json.dumps(st, separators=(",", ":")).encode(), signers).to_json() + b"\n"


def _refused(b: Party, data: bytes, code: str) -> None:
    with pytest.raises(SecurityError) as ei:
        b.open(data)
    assert ei.value.code == code, ei.value


def test_the_honest_baseline_opens(abc: Parties) -> None:
    a, b, _ = abc
    st = _statement()
    assert b.open(_package(b, _inner(st, a.store.signers()), a.store.signers(), st)).document == record()


@pytest.mark.parametrize("ids", [[], ["00" * 16], "both"])
def test_sender_key_ids_must_be_the_manifest_signature_key_ids(abc: Parties, ids: Any) -> None:
    a, b, _ = abc
    st = _statement()
    signers = a.store.signers()
    if ids == "both":
        ids = [signers[0].keyid, "00" * 16]
    _refused(b, _package(b, _inner(st, signers), signers, st, sender_key_ids=ids), "package.tampered")


def test_the_statement_must_be_signed_by_the_keys_the_manifest_lists(abc: Parties) -> None:
    """The manifest carries A's signature and C's (a key B does not hold for A, so ignored there); the
    statement only A's: the two envelopes name different signers."""
    a, b, c = abc
    st = _statement()
    _refused(b, _package(b, _inner(st, a.store.signers()), [*a.store.signers(), *c.store.signers()], st),
             "package.tampered")


def test_a_repeated_key_id_is_refused(abc: Parties) -> None:
    a, b, _ = abc
    st = _statement()
    data = _package(b, _inner(st, a.store.signers()), a.store.signers(), st)
    head, line, rest = data.split(b"\n", 2)
    env = dsse.parse_canonical(line)
    assert env is not None
    doubled = dataclasses.replace(env, signatures=env.signatures * 2)
    _refused(b, head + b"\n" + doubled.to_json() + b"\n" + rest, "package.tampered")


def test_a_signature_by_a_key_of_the_sender_that_does_not_verify_is_refused(abc: Parties) -> None:
    """During a rotation overlap A has two valid Ed25519 keys on its card; one good signature does not
    excuse a bad one by the other (it was altered, not made by a key B does not know)."""
    a, b, _ = abc
    a.store.rotate()
    b.trust(a)  # the rotated card, signed by the old key
    both = a.store.card_signers()
    assert len(both) == 2
    st = _statement()
    data = _package(b, _inner(st, both), both, st)
    assert b.open(data).document == record()  # both good: fine
    head, line, rest = data.split(b"\n", 2)
    env = dsse.parse_canonical(line)
    assert env is not None
    (k1, s1), (k2, s2) = env.signatures
    broken = dataclasses.replace(env, signatures=((k1, s1), (k2, bytes([s2[0] ^ 1]) + s2[1:])))
    _refused(b, head + b"\n" + broken.to_json() + b"\n" + rest, "package.bad-signature")


@pytest.mark.parametrize("encryption", ["age-v1/x25519", "age-v1/scrypt", "age-v1/MLKEM768X25519"])
def test_encryption_must_name_the_recipient_key_type(abc: Parties, encryption: str) -> None:
    a, b, _ = abc
    st = _statement()
    _refused(b, _package(b, _inner(st, a.store.signers()), a.store.signers(), st, encryption=encryption),
             "package.tampered")


def test_the_age_header_must_hold_exactly_one_stanza_of_that_type(abc: Parties) -> None:
    a, b, c = abc
    st = _statement()
    ours = b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION)[0].recipient()
    other = c.store.ring().keys_valid_at(c.clock.now(), ENCRYPTION)[0].recipient()
    _refused(b, _package(b, _inner(st, a.store.signers()), a.store.signers(), st, recipients=[ours, other]),
             "package.tampered")


def test_recipient_key_id_must_be_a_key_id(abc: Parties) -> None:
    a, b, _ = abc
    st = _statement()
    kid = b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION)[0].kid
    _refused(b, _package(b, _inner(st, a.store.signers()), a.store.signers(), st, recipient_key_id=kid.upper()),
             "package.tampered")


@pytest.mark.parametrize("change", [{"index": False}, {"size": True}, {"sha256": "UPPER"}, {"index": 0.0},
                                    {"size": 1.0}])
def test_attachment_descriptions_have_exact_types(abc: Parties, change: dict[str, Any]) -> None:
    """Index from 0, size in bytes, SHA-256 in lower-case hex: `false` is not 0, `true` not 1, `1.0`
    not 1 (each compared equal before)."""
    a, b, _ = abc
    body = b"x"
    att = {"index": 0, "name": "a.txt", "size": 1, "sha256": hashlib.sha256(body).hexdigest()}
    if change.get("sha256") == "UPPER":
        change = {"sha256": att["sha256"].upper()}
    st = _statement()
    good = {**st, "attachments": [att]}
    assert b.open(forge(good, signers=a.store.signers(), encrypt_to=b,
                        plaintext=_inner(good, a.store.signers()) + body)).attachments == [att]
    bad = {**st, "attachments": [{**att, **change}]}
    with pytest.raises(InvalidData) as ei:
        b.open(forge(bad, signers=a.store.signers(), encrypt_to=b, plaintext=_inner(bad, a.store.signers()) + body))
    assert ei.value.code == "statement.malformed"


@pytest.mark.parametrize("digits", ["\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",  # fullwidth
                                    "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"])  # Arabic-Indic
def test_timestamps_are_ascii_digits_only(abc: Parties, digits: str) -> None:
    """§1.2: timestamps are exactly YYYY-MM-DDTHH:MM:SSZ. The attack: `created` spelt with other
    Unicode decimal digits (same string in manifest and statement, so they agree) read as the same
    instant here (`\\d` and int() take any decimal digit), while a reader following the spec, or a
    comparison of the strings, sees something else: one package, two meanings."""
    a, b, _ = abc
    st = _statement()
    st["created"] = st["created"].translate(str.maketrans("0123456789", digits))
    _refused(b, _package(b, _inner(st, a.store.signers()), a.store.signers(), st), "package.tampered")


@pytest.mark.parametrize("spelling", ["spaces", "unsorted", "carriage-return", "escaped-slash"])
def test_the_statement_envelope_line_must_be_canonical_json(abc: Parties, spelling: str) -> None:
    """§1.1: the statement envelope line is canonical JSON, and a reader MUST refuse signed canonical
    JSON whose bytes are not its JCS form, as it does the manifest line. The attack: the same signed
    statement in another spelling of its envelope (one package, several byte strings; a reader that
    hashes or compares the line sees different packages) was read through the general JSON path."""
    a, b, _ = abc
    st = _statement()
    env = json.loads(_inner(st, a.store.signers()))
    if spelling == "spaces":
        line = json.dumps(env, sort_keys=True).encode()
    elif spelling == "unsorted":
        line = json.dumps({k: env[k] for k in ("signatures", "payloadType", "payload")}, separators=(",", ":")).encode()
    elif spelling == "carriage-return":
        line = json.dumps(env, sort_keys=True, separators=(",", ":")).encode() + b"\r"
    else:
        line = json.dumps(env, sort_keys=True, separators=(",", ":")).encode().replace(b"/", b"\\/")
    assert line != dsse.parse(env).to_json() and json.loads(line) == env
    _refused(b, _package(b, line + b"\n", a.store.signers(), st), "package.tampered")
