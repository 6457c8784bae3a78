"""Partner cards: a party's signed description of itself (keys, SFTP endpoint, policy).

A *card* is a DSSE envelope whose payload describes a party (keys with validity, SFTP endpoint,
host-key fingerprints, signature policy), signed by that party's own signing keys. Its
*fingerprint* is read out of band (phone, letter) before a partner is added: there is no trust
on first use. The fingerprint (version 2) covers only the party id, its signature policy and
its public keys, so re-exporting a card (a new `issued` time, a new SFTP address) keeps it, and
it changes exactly when the keys do; everything else on the card is bound to those keys by the
card's self-signature. docs/format.md §8 gives its input byte by byte.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from laxchange import dsse
from laxchange._util import jsonio, timefmt
from laxchange.errors import ConfigError, InvalidData, SecurityError, UsageError
from laxchange.models import schemastore
from laxchange.transport.endpoints import check_fingerprint
from laxchange.trust.keystore import (
    ENCRYPTION,
    SIGNING,
    KeyInfo,
    Keyring,
    KeySet,
    KeyStore,
    check_party,
    check_sftp_url,
)

CARD_PAYLOAD_TYPE = "application/vnd.laxchange.card+json; version=1"
CARD_TYPE = "laxchange-card"
MAX_CARD_BYTES = 256 * 1024
CARD_CLOCK_SKEW = dt.timedelta(minutes=5)


#: The package format this release reads (docs/format.md §4.1: 1.1 added the statement's `checkpoint`),
#: advertised on our card as `policy.reads.format` so a partner writes nothing we would refuse.
READS_FORMAT = "1.1"
_FORMAT_VERSION = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")
_SCHEMA_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")
_SCHEMA_VERSION = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")
#: Bounds on what a card may advertise (a card is at most MAX_CARD_BYTES anyway).
_MAX_READS = 64


def format_key(version: str) -> tuple[int, int]:
    """(major, minor) of a package format version `M.N`, for comparing."""
    m = _FORMAT_VERSION.fullmatch(version)
    if m is None:
        raise ValueError(f"{version!r} is not a package format version (MAJOR.MINOR)")
    return int(m[1]), int(m[2])


def our_reads() -> dict[str, Any]:
    """What this release reads, for our card's `policy.reads` (docs/format.md §8.2): the package
    format version and, for each message schema, every version we validate and open."""
    schemas: dict[str, list[str]] = {}
    for sf in schemastore.list_schemas():
        if sf.name != "common":
            schemas.setdefault(sf.name, []).append(sf.version)
    return {"format": READS_FORMAT, "schemas": schemas}


def _check_reads(reads: Any) -> dict[str, Any]:
    """A card's `policy.reads`, checked strictly; members we do not know are dropped (later
    advertisements a reader may ignore)."""
    if not isinstance(reads, dict):
        raise ValueError("policy.reads must be an object")
    out: dict[str, Any] = {}
    if "format" in reads:
        if not isinstance(reads["format"], str):
            raise ValueError("policy.reads.format must be a string MAJOR.MINOR")
        format_key(reads["format"])
        out["format"] = reads["format"]
    if "schemas" in reads:
        schemas = reads["schemas"]
        if not isinstance(schemas, dict) or len(schemas) > _MAX_READS:
            raise ValueError(f"policy.reads.schemas must be an object of at most {_MAX_READS} schema names")
        for name, versions in schemas.items():
            if not _SCHEMA_NAME.fullmatch(name) or not isinstance(versions, list) or not versions \
                    or len(versions) > _MAX_READS \
                    or not all(isinstance(v, str) and _SCHEMA_VERSION.fullmatch(v) for v in versions):
                raise ValueError(f"policy.reads.schemas.{name} must be a list of 1 to {_MAX_READS} versions "
                                 "MAJOR.MINOR.PATCH")
        out["schemas"] = {name: list(versions) for name, versions in schemas.items()}
    return out


#: The first line of the version-2 fingerprint's input (docs/format.md §8).
FINGERPRINT_DOMAIN = b"laxchange-card-fingerprint-v2"


def _readable(digest: bytes) -> str:
    """The first 160 bits of `digest`, base32 (RFC 4648, A-Z 2-7, 32 characters) in groups of four."""
    text = base64.b32encode(digest[:20]).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def fingerprint_input(party: str, required_signature_algorithms: list[str], keys: list[KeyInfo]) -> bytes:
    """The bytes the version-2 fingerprint hashes: who the party is and which keys speak for it.

    Lines of ASCII, each ended by LF: the domain line, `party <id>`, `policy <algorithms, sorted,
    joined by commas>`, then `key <kid> <use> <alg> <public>` for every key on the card (retired
    and revoked ones too) in ascending key-id order. Validity times, names and endpoints are not
    in it: they are bound to these keys by the card's self-signature instead."""
    lines = [FINGERPRINT_DOMAIN, f"party {party}".encode("ascii"),
             ("policy " + ",".join(sorted(required_signature_algorithms))).encode("ascii")]
    lines += [f"key {k.kid} {k.use} {k.alg} {k.public}".encode("ascii") for k in sorted(keys, key=lambda k: k.kid)]
    return b"".join(line + b"\n" for line in lines)


def key_fingerprint(party: str, required_signature_algorithms: list[str], keys: list[KeyInfo]) -> str:
    """The card fingerprint (version 2): SHA-256 of `fingerprint_input`, first 160 bits, base32 in groups of four."""
    return _readable(hashlib.sha256(fingerprint_input(party, required_signature_algorithms, keys)).digest())


def legacy_fingerprint_of(payload: bytes) -> str:
    """The version-1 fingerprint (releases before issue 12): SHA-256 over `laxchange-card-v1` 0x00 and the
    whole card payload, so it changed with every re-export. Only checked against partner records stored
    with it; `partners add` no longer accepts it."""
    return _readable(hashlib.sha256(b"laxchange-card-v1\x00" + payload).digest())


def normalise_fingerprint(text: str) -> str:
    raw = re.sub(r"[\s-]", "", text).upper()
    if not re.fullmatch(r"[A-Z2-7]{32}", raw):
        raise UsageError(f"{text!r} is not a card fingerprint (32 base32 characters, dashes optional)",
                         code="card.fingerprint-malformed", hint="copy it from `laxchange keys export-card`")
    return "-".join(raw[i : i + 4] for i in range(0, 32, 4))


@dataclass
class Partner(KeySet):
    """A verified card, as the directory hands it out."""

    party: str
    name: str
    role: str
    keys: list[KeyInfo]
    sftp_url: str | None
    host_key_fingerprints: list[str]
    ssh_public_key: str | None
    required_signature_algorithms: list[str]
    issued: str
    fingerprint: str
    envelope: dict[str, Any] = field(repr=False, default_factory=dict)
    #: After the partner rotated its SSH key: the previous public key and until when it is kept.
    ssh_previous_public_key: str | None = None
    ssh_previous_until: str | None = None
    #: Why we trust this card, set by the directory: `{"by": "fingerprint"}` (confirmed out of band, itself or a
    #: card before it that signed this one) or `{"by": "introduction", "introducer", "area", "at"}` (an area directory).
    trust: dict[str, Any] | None = None
    #: The school's Designated Teacher, as the introducing council's area directory gave it.
    designated_teacher: dict[str, str] | None = None
    #: What the partner's card says it reads (`policy.reads`, docs/format.md §8.2), None if it says nothing
    #: (a release before negotiation: package format 1.0, and the message versions of that time).
    reads: dict[str, Any] | None = None

    def reads_format(self, version: str) -> bool:
        """Does the partner read package format `version` (e.g. "1.1")? A card that says nothing reads 1.0."""
        said = (self.reads or {}).get("format", "1.0")
        return format_key(said) >= format_key(version)

    def reads_versions(self, name: str) -> list[str] | None:
        """The versions of message schema `name` the partner's card says it reads, None if it says nothing."""
        schemas = (self.reads or {}).get("schemas")
        return list(schemas[name]) if isinstance(schemas, dict) and name in schemas else None

    @property
    def introduced_by(self) -> str | None:
        """The council that introduced this partner, or None if we confirmed it directly."""
        return self.trust.get("introducer") if self.trust and self.trust.get("by") == "introduction" else None

    def encryption_key_at(self, t: dt.datetime) -> KeyInfo:
        ks = self.keys_valid_at(t, ENCRYPTION)
        if not ks:
            raise ConfigError(f"partner {self.party} has no encryption key valid at {timefmt.fmt(t)}",
                              code="partner.no-key", hint="ask the partner for a fresh card")
        return ks[0]

    def to_summary(self) -> dict[str, Any]:
        return {"party": self.party, "name": self.name, "role": self.role, "fingerprint": self.fingerprint,
                "issued": self.issued, "sftp_url": self.sftp_url,
                "host_key_fingerprints": self.host_key_fingerprints,
                "required_signature_algorithms": self.required_signature_algorithms,
                "ssh_public_key": self.ssh_public_key,
                "ssh_previous": ({"public_key": self.ssh_previous_public_key, "until": self.ssh_previous_until}
                                 if self.ssh_previous_public_key else None),
                "keys": [k.to_dict() for k in self.keys], "trust": self.trust,
                "designated_teacher": self.designated_teacher, "reads": self.reads}


def build_card(store: KeyStore) -> tuple[dict[str, Any], str]:
    """Our own card, signed by every signing key valid now. Returns (envelope dict, fingerprint)."""
    return card_from(store.ring(), store.clock.now(), store.card_signers(), reads=our_reads())


def card_from(ring: Keyring, issued: dt.datetime, signers: list[dsse.Signer], *,
              reads: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """A card for `ring`, issued at `issued`, signed by `signers`, saying it `reads` what that says
    (`our_reads()`; None: a card that says nothing, as releases before negotiation made)."""
    payload = {
        "type": CARD_TYPE,
        "card_version": 1,
        "party": ring.party,
        "name": ring.name,
        "role": ring.role,
        "issued": timefmt.fmt(issued),
        "keys": [k.to_dict() for k in ring.keys],
        "sftp": {"url": ring.sftp_url, "host_key_fingerprints": list(ring.host_key_fingerprints)},
        "ssh_public_key": ring.ssh_public_key,
        "policy": {"required_signature_algorithms": list(ring.required_signature_algorithms),
                   **({"reads": reads} if reads is not None else {})},
    }
    # Only during an SSH key rotation's overlap, so every other card reads as before.
    if ring.ssh_previous_public_key and ring.ssh_previous_until and timefmt.parse(ring.ssh_previous_until) > issued:
        payload["ssh_previous"] = {"public_key": ring.ssh_previous_public_key, "until": ring.ssh_previous_until}
    raw = jsonio.dumps_canonical(payload)
    env = dsse.sign(CARD_PAYLOAD_TYPE, raw, signers)
    return env.to_dict(), key_fingerprint(ring.party, list(ring.required_signature_algorithms), ring.keys)


def _bad_card(msg: str) -> SecurityError:
    return SecurityError(f"card rejected: {msg}", code="card.invalid",
                         hint="ask the partner to export the card again and send it unchanged")


def read_card(envelope: Any) -> tuple[Partner, dsse.Envelope]:
    """Parse a card strictly and check its self-signatures (every required algorithm, by a key
    of the card valid when it was issued). Does not decide trust: see PartnerDirectory.add."""
    try:
        env = dsse.parse(envelope)
    except dsse.DSSEError as exc:
        raise _bad_card(str(exc)) from None
    if env.payload_type != CARD_PAYLOAD_TYPE:
        raise _bad_card(f"unexpected payloadType {env.payload_type!r}")
    try:
        p = jsonio.loads_strict(env.payload, source="card payload", max_bytes=MAX_CARD_BYTES)
    except InvalidData as exc:
        raise _bad_card(exc.message) from None
    expected = {"type", "card_version", "party", "name", "role", "issued", "keys", "sftp", "ssh_public_key", "policy"}
    if not isinstance(p, dict) or not expected <= set(p) <= expected | {"ssh_previous"} or p["type"] != CARD_TYPE \
            or p["card_version"] != 1:
        raise _bad_card("not a version-1 laxchange card")
    if not jsonio.is_canonical(p, env.payload):
        raise _bad_card("payload is not canonical JSON")
    try:
        check_party(p["party"])
        issued = timefmt.parse(p["issued"])
        keys = [KeyInfo.from_dict(k) for k in p["keys"]]
        sftp = p["sftp"]
        if not isinstance(sftp, dict) or set(sftp) != {"url", "host_key_fingerprints"}:
            raise ValueError("sftp must have url and host_key_fingerprints")
        check_sftp_url(sftp["url"])
        fprs = [check_fingerprint(f) for f in sftp["host_key_fingerprints"]]
        policy = p["policy"]
        if not isinstance(policy, dict):
            raise ValueError("policy must be an object")
        algs = policy["required_signature_algorithms"]
        reads = _check_reads(policy["reads"]) if "reads" in policy else None
        if not algs or not set(algs) <= set(dsse.SIGNATURE_ALGORITHMS) or dsse.ED25519 not in algs:
            raise ValueError("required_signature_algorithms must include ed25519")
        if not isinstance(p["name"], str) or not isinstance(p["role"], str):
            raise ValueError("name and role must be strings")
        ssh = p["ssh_public_key"]
        if ssh is not None and (
                not isinstance(ssh, str) or not re.fullmatch(r"ssh-ed25519 [A-Za-z0-9+/]+=* ?[^\n]*", ssh)):
            raise ValueError("ssh_public_key must be one ssh-ed25519 public key line")
        prev = p.get("ssh_previous")
        if prev is not None:
            if not isinstance(prev, dict) or set(prev) != {"public_key", "until"} or not isinstance(
                    prev["public_key"], str) or not re.fullmatch(r"ssh-ed25519 [A-Za-z0-9+/]+=* ?[^\n]*",
                                                                 prev["public_key"]):
                raise ValueError("ssh_previous must be {public_key: one ssh-ed25519 line, until: a time}")
            timefmt.parse(prev["until"])
    except (InvalidData, UsageError, ValueError, KeyError, TypeError) as exc:
        msg = exc.message if isinstance(exc, (InvalidData, UsageError)) else str(exc)
        raise _bad_card(msg) from None
    if len({k.kid for k in keys}) != len(keys):
        raise _bad_card("duplicate key ids")
    signing = {k.kid: k.dsse_key() for k in keys if k.use == SIGNING and k.valid_at(issued)}
    good = {k.alg for k in dsse.verify(env, signing)}
    missing = set(algs) - good
    if missing:
        raise _bad_card(f"not self-signed with a valid {', '.join(sorted(missing))} key")
    partner = Partner(p["party"], p["name"], p["role"], keys, sftp["url"], fprs, p["ssh_public_key"], list(algs),
                      p["issued"], key_fingerprint(p["party"], list(algs), keys), env.to_dict(),
                      ssh_previous_public_key=prev["public_key"] if prev else None,
                      ssh_previous_until=prev["until"] if prev else None, reads=reads)
    return partner, env


