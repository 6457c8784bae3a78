"""The partner directory: who our partners are and which keys to trust when.

Cards (`laxchange.trust.cards`) are added only with a fingerprint confirmed out of band. A later card for the same
partner is accepted only when it is signed by a key of that partner valid now (rotation), or re-added with its
fingerprint.
"""

from __future__ import annotations

import builtins
import datetime as dt
import difflib
import os
from pathlib import Path
from typing import Any

from laxchange import dsse
from laxchange._util import jsonio, timefmt
from laxchange.clock import Clock, SystemClock
from laxchange.errors import ConfigError, SecurityError, UsageError
from laxchange.home import Home, load_home_file
from laxchange.trust.cards import (
    CARD_CLOCK_SKEW,
    Partner,
    _bad_card,
    normalise_fingerprint,
    read_card,
)
from laxchange.trust.keystore import (
    SIGNING,
    KeyInfo,
    check_party,
)


def _read_record(record: Any) -> tuple[Partner, Any]:
    """A stored partner record: its verified card and the fingerprint it was added with."""
    if not isinstance(record, dict) or not isinstance(record["fingerprint"], str):
        raise ValueError("it is not an object with a fingerprint and a card")
    partner, _ = read_card(record["card"])
    return partner, record["fingerprint"]


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
        return SecurityError(f"card for {new.party} {why}", code="card.changed",
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
                                 code="card.fingerprint-required",
                                 hint=f"phone {partner.name} and compare the fingerprint they read out")
            if want != partner.fingerprint:
                raise SecurityError(f"card fingerprint {partner.fingerprint} does not match the confirmed {want}",
                                    code="card.fingerprint-mismatch",
                                    hint="do not add this card: confirm the fingerprint with the partner again")
            outcome = "added"
        elif old.fingerprint == partner.fingerprint:
            return old, "unchanged"
        elif want is not None:
            if want != partner.fingerprint:
                raise SecurityError(
                    f"card for {partner.party} has changed (fingerprint {partner.fingerprint}) and does not match "
                    f"the confirmed {want}", code="card.changed",
                    hint="refused: confirm the new fingerprint with the partner out of band")
            outcome = "replaced"
        else:
            if timefmt.parse(partner.issued) < timefmt.parse(old.issued):
                raise SecurityError(f"card for {partner.party} is older than the one we hold", code="card.changed",
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
        if not os.path.lexists(path):
            return None
        partner, fingerprint = load_home_file(path, _read_record, what="partner record",
                                              hint=f"restore {path.name} from your backup of the home, or remove "
                                                   f"it and add {party}'s card again with --fingerprint")
        if partner.party != party or partner.fingerprint != fingerprint:
            raise ConfigError(f"partner file {path} is inconsistent", code="partner.damaged",
                              hint="remove and re-add the partner")
        self._cache[party] = partner
        return partner

    def get(self, party: str) -> Partner:
        """The partner `party`: UsageError (exit 2) for a malformed id, ConfigError (exit 5) when
        not in the directory, suggesting the nearest known partner if one is close."""
        p = self.get_optional(check_party(party))
        if p is None:
            raise self._unknown(party)
        return p

    def _unknown(self, party: str) -> ConfigError:
        known = [f.stem.replace("_", ":") for f in self.home.partners.glob("*.json")] \
            if self.home.partners.is_dir() else []
        near = difflib.get_close_matches(party, known, n=1, cutoff=0.7)
        hint = "add their card: laxchange partners add CARD.json --fingerprint FPR"
        if near:
            hint = f"did you mean {near[0]}? Otherwise {hint}"
        return ConfigError(f"{party} is not in the partner directory", code="partner.unknown", hint=hint)

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
            raise self._unknown(party)
        os.unlink(path)
        self._cache.pop(party, None)

    def keys_valid_at(self, party: str, t: dt.datetime, use: str | None = None) -> builtins.list[KeyInfo]:
        """Which keys were valid for `party` at time `t`."""
        return self.get(party).keys_valid_at(t, use)
