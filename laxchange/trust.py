"""Partner cards and the partner directory: who our partners are and which keys to trust when.

A *card* is a DSSE envelope whose payload describes a party (keys with validity, SFTP endpoint,
host-key fingerprints, signature policy), signed by that party's own signing keys. Its
*fingerprint* (a hash of the payload) is read out of band (phone, letter) before a partner is
added: there is no trust on first use. A later card for the same partner is accepted only when
it is signed by a key of that partner valid now (rotation), or re-added with its fingerprint.
"""

from __future__ import annotations

import base64
import builtins
import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dsse, jsonio, timefmt
from .clock import Clock, SystemClock
from .errors import ConfigError, InvalidData, SecurityError, UsageError
from .home import Home
from .keys import (ENCRYPTION, SIGNING, KeyInfo, Keyring, KeyStore, check_host_fingerprint, check_party,
                   check_sftp_url)

CARD_PAYLOAD_TYPE = "application/vnd.laxchange.card+json; version=1"
CARD_TYPE = "laxchange-card"
MAX_CARD_BYTES = 256 * 1024
CARD_CLOCK_SKEW = dt.timedelta(minutes=5)


def fingerprint_of(payload: bytes) -> str:
    """160 bits of SHA-256 over the card payload, base32 in groups of four, easy to read aloud."""
    digest = hashlib.sha256(b"laxchange-card-v1\x00" + payload).digest()[:20]
    text = base64.b32encode(digest).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalise_fingerprint(text: str) -> str:
    raw = re.sub(r"[\s-]", "", text).upper()
    if not re.fullmatch(r"[A-Z2-7]{32}", raw):
        raise UsageError(f"{text!r} is not a card fingerprint (32 base32 characters, dashes optional)",
                         code="fingerprint.malformed", hint="copy it from `laxchange keys export-card`")
    return "-".join(raw[i : i + 4] for i in range(0, 32, 4))


@dataclass
class Partner:
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

    def find_key(self, kid: str) -> KeyInfo | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def keys_valid_at(self, t: dt.datetime, use: str | None = None) -> list[KeyInfo]:
        """Keys (optionally of one use) valid at time `t`, newest first."""
        ks = [k for k in self.keys if (use is None or k.use == use) and k.valid_at(t)]
        return sorted(ks, key=lambda k: k.not_before, reverse=True)

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
                "keys": [k.to_dict() for k in self.keys]}


def build_card(store: KeyStore) -> tuple[dict[str, Any], str]:
    """Our own card, signed by every signing key valid now. Returns (envelope dict, fingerprint)."""
    return card_from(store.ring(), store.clock.now(), store.card_signers())


def card_from(ring: Keyring, issued: dt.datetime, signers: list[dsse.Signer]) -> tuple[dict[str, Any], str]:
    """A card for `ring`, issued at `issued`, signed by `signers`."""
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
        "policy": {"required_signature_algorithms": list(ring.required_signature_algorithms)},
    }
    raw = jsonio.dumps_canonical(payload)
    env = dsse.sign(CARD_PAYLOAD_TYPE, raw, signers)
    return env.to_dict(), fingerprint_of(raw)


def _bad_card(msg: str) -> SecurityError:
    return SecurityError(f"card rejected: {msg}", code="bad-card",
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
    if not isinstance(p, dict) or set(p) != expected or p["type"] != CARD_TYPE or p["card_version"] != 1:
        raise _bad_card("not a version-1 laxchange card")
    if jsonio.dumps_canonical(p) != env.payload:
        raise _bad_card("payload is not canonical JSON")
    try:
        check_party(p["party"])
        issued = timefmt.parse(p["issued"])
        keys = [KeyInfo.from_dict(k) for k in p["keys"]]
        sftp = p["sftp"]
        if not isinstance(sftp, dict) or set(sftp) != {"url", "host_key_fingerprints"}:
            raise ValueError("sftp must have url and host_key_fingerprints")
        check_sftp_url(sftp["url"])
        fprs = [check_host_fingerprint(f) for f in sftp["host_key_fingerprints"]]
        policy = p["policy"]
        algs = policy["required_signature_algorithms"]
        if not algs or not set(algs) <= set(dsse.SIGNATURE_ALGORITHMS) or dsse.ED25519 not in algs:
            raise ValueError("required_signature_algorithms must include ed25519")
        if not isinstance(p["name"], str) or not isinstance(p["role"], str):
            raise ValueError("name and role must be strings")
        ssh = p["ssh_public_key"]
        if ssh is not None and (not isinstance(ssh, str) or not re.fullmatch(r"ssh-ed25519 [A-Za-z0-9+/]+=* ?[^\n]*", ssh)):
            raise ValueError("ssh_public_key must be one ssh-ed25519 public key line")
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
                      p["issued"], fingerprint_of(env.payload), env.to_dict())
    return partner, env


def _file_for(party: str) -> str:
    return party.replace(":", "_") + ".json"


def _check_rotation(old: Partner, new: Partner, env: dsse.Envelope, now: dt.datetime) -> None:
    """A changed card without a newly confirmed fingerprint is a rotation, and must prove it.

    It must carry a good signature for every algorithm the stored card's policy requires, each
    by a stored key valid now (so a stolen Ed25519 key alone cannot replace a partner that also
    signs with ML-DSA); it may not drop an algorithm from that policy; and it may not undo or
    postpone a revocation, nor extend the life of a key we already hold.
    """
    def refuse(why: str) -> SecurityError:
        return SecurityError(f"card for {new.party} {why}", code="card-changed",
                             hint="refused; if the partner really changed this, confirm the new fingerprint out of "
                                  "band and re-add with --fingerprint")

    trusted = {k.kid: k.dsse_key() for k in old.keys_valid_at(now, SIGNING)}
    good = dsse.verify(env, trusted)
    if not good:
        raise refuse("has changed keys and is not signed by a key we trust for them")
    missing = set(old.required_signature_algorithms) - {k.alg for k in good}
    if missing:
        raise refuse(f"has changed but lacks a signature by its current {', '.join(sorted(missing))} key, "
                     "which its policy requires")
    dropped = set(old.required_signature_algorithms) - set(new.required_signature_algorithms)
    if dropped:
        raise refuse(f"drops {', '.join(sorted(dropped))} from its required signature algorithms")
    for k in old.keys:
        nk = new.find_key(k.kid)
        if nk is None:
            continue
        if k.revoked_at is not None and (nk.revoked_at is None
                                         or timefmt.parse(nk.revoked_at) > timefmt.parse(k.revoked_at)):
            raise refuse(f"drops or postpones the revocation of key {k.kid}")
        if (nk.public, nk.use, nk.alg) != (k.public, k.use, k.alg):
            raise refuse(f"changes key {k.kid} under the same key id")
        if nk.not_before != k.not_before or (
                k.not_after is not None and (nk.not_after is None
                                             or timefmt.parse(nk.not_after) > timefmt.parse(k.not_after))):
            raise refuse(f"extends the validity of key {k.kid}")
    for k in old.keys:  # a rotation may not silently forget a revoked key either
        if k.revoked_at is not None and new.find_key(k.kid) is None:
            raise refuse(f"drops the revoked key {k.kid}")


class PartnerDirectory:
    """The partners we trust, one verified card each, in `<home>/partners/`."""

    def __init__(self, home: Home, *, clock: Clock | None = None) -> None:
        self.home = home
        self.clock = clock or SystemClock()
        self._cache: dict[str, Partner] = {}

    def _path(self, party: str) -> Path:
        return self.home.partners / _file_for(party)

    def add(self, card: Any, *, fingerprint: str | None = None) -> tuple[Partner, str]:
        """Trust `card`. Returns (partner, outcome) with outcome added/unchanged/rotated/replaced.

        New partner: `fingerprint` must match. Known partner with a different card: accepted when
        signed by one of the stored card's signing keys valid now (a rotation), or when
        `fingerprint` matches the new card (explicit re-add). Anything else is refused."""
        partner, env = read_card(card)
        want = normalise_fingerprint(fingerprint) if fingerprint else None
        if timefmt.parse(partner.issued) > self.clock.now() + CARD_CLOCK_SKEW:
            raise _bad_card(f"issued in the future ({partner.issued})")
        old = self.get_optional(partner.party)
        if old is None:
            if want is None:
                raise UsageError(f"adding partner {partner.party} needs --fingerprint, confirmed out of band",
                                 code="fingerprint.required",
                                 hint=f"phone {partner.name} and compare the fingerprint they read out")
            if want != partner.fingerprint:
                raise SecurityError(f"card fingerprint {partner.fingerprint} does not match the confirmed {want}",
                                    code="fingerprint-mismatch",
                                    hint="do not add this card: confirm the fingerprint with the partner again")
            outcome = "added"
        elif old.fingerprint == partner.fingerprint:
            return old, "unchanged"
        elif want is not None:
            if want != partner.fingerprint:
                raise SecurityError(
                    f"card for {partner.party} has changed (fingerprint {partner.fingerprint}) and does not match "
                    f"the confirmed {want}", code="card-changed",
                    hint="refused: confirm the new fingerprint with the partner out of band")
            outcome = "replaced"
        else:
            if timefmt.parse(partner.issued) < timefmt.parse(old.issued):
                raise SecurityError(f"card for {partner.party} is older than the one we hold", code="card-changed",
                                    hint="ask the partner for their current card")
            _check_rotation(old, partner, env, self.clock.now())
            outcome = "rotated"
        self.home.partners.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {"fingerprint": partner.fingerprint, "added": timefmt.fmt(self.clock.now()), "card": env.to_dict()}
        jsonio.write_atomic(self._path(partner.party), jsonio.dumps_pretty(record).encode("utf-8"))
        self._cache.pop(partner.party, None)
        return partner, outcome

    def get_optional(self, party: str) -> Partner | None:
        if party in self._cache:
            return self._cache[party]
        try:
            check_party(party)
        except UsageError:
            return None
        path = self._path(party)
        if not path.is_file():
            return None
        record = jsonio.load_file(path)
        partner, _ = read_card(record["card"])
        if partner.party != party or partner.fingerprint != record.get("fingerprint"):
            raise ConfigError(f"partner file {path} is inconsistent", code="partner.damaged",
                              hint="remove and re-add the partner")
        self._cache[party] = partner
        return partner

    def get(self, party: str) -> Partner:
        """The partner `party`; ConfigError (exit 5) when not in the directory."""
        p = self.get_optional(party)
        if p is None:
            raise ConfigError(f"{party} is not in the partner directory", code="partner.unknown",
                              hint="add their card: laxchange partners add CARD.json --fingerprint FPR")
        return p

    def list(self) -> list[Partner]:
        if not self.home.partners.is_dir():
            return []
        out = []
        for f in sorted(self.home.partners.glob("*.json")):
            p = self.get_optional(f.stem.replace("_", ":"))
            if p is not None:
                out.append(p)
        return out

    def remove(self, party: str) -> None:
        path = self._path(check_party(party))
        if not path.is_file():
            raise ConfigError(f"{party} is not in the partner directory", code="partner.unknown")
        os.unlink(path)
        self._cache.pop(party, None)

    def keys_valid_at(self, party: str, t: dt.datetime, use: str | None = None) -> builtins.list[KeyInfo]:
        """Which keys were valid for `party` at time `t`."""
        return self.get(party).keys_valid_at(t, use)
