"""The partner directory: who our partners are, which keys to trust when, and every card they ever presented.

Cards (`laxchange.trust.cards`) are added only with a fingerprint confirmed out of band. A later card for the same
partner is accepted only when it is signed by a key of that partner valid now (a rotation, or an update that keeps
the keys), or re-added with its fingerprint. Nothing is ever forgotten: `<home>/partners/<PARTY>.json` keeps, append
only, every card version the partner presented with how and when we confirmed it, and its removal, so a package
signed decades ago can still be checked against the keys that were valid then (`as_of`, `open --archive`).

A school may also be *introduced* by a council we confirmed directly, from that council's signed area directory
(`introduce`, `laxchange.trust.area`): recorded as such, limited to the council's own area, withdrawn when the council
withdraws it or is removed, and always outranked by a fingerprint we confirm ourselves.
"""

from __future__ import annotations

import builtins
import datetime as dt
import difflib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from laxchange import dsse
from laxchange._util import jsonio, timefmt
from laxchange.clock import Clock, SystemClock
from laxchange.errors import ConfigError, SecurityError, UsageError
from laxchange.home import Home, json_object, load_home_file
from laxchange.trust.area import Area, check_contact, peek_introducer, read_area
from laxchange.trust.cards import (
    CARD_CLOCK_SKEW,
    Partner,
    _bad_card,
    legacy_fingerprint_of,
    normalise_fingerprint,
    read_card,
)
from laxchange.trust.keystore import (
    SIGNING,
    KeyInfo,
    check_party,
)

#: The `format` of a partner file since issue 12 (before it there was no `format`: one card and its fingerprint).
RECORD_FORMAT = "laxchange-partner/2"
#: What happened in a history entry: a card taken in (how, see `CardVersion.confirmed`), the partner removed by
#: us, or (a school we were introduced to) withdrawn because its introducer withdrew it or was removed.
CARD_EVENTS = ("added", "rotated", "updated", "replaced", "introduced", "confirmed")
REMOVED = "removed"
WITHDRAWN = "withdrawn"
ENDS = (REMOVED, WITHDRAWN)
WITHDRAW_REASONS = ("withdrawn-by-introducer", "introducer-removed")
_AREA_REF = {"introducer", "issued", "sha256"}


@dataclass(frozen=True)
class CardVersion:
    """One entry of a partner's history: a card it presented and how we confirmed it, or its removal.

    `confirmed` says why we trusted the card: `{"by": "fingerprint", "fingerprint": F, "fingerprint_version": 1|2}`
    (F read out of band and matched; version 1 only in records from before issue 12), or
    `{"by": "signature", "signed_by": [key ids]}` (a rotation or update signed by keys of the version before), or
    `{"by": "introduction", "introducer", "introducer_fingerprint", "signed_by", "area": {introducer, issued, sha256}}`
    (taken from that council's area directory). A `withdrawn` entry has `withdrawal`: `{"by", "reason", "area"}`."""

    seq: int
    at: str
    event: str
    partner: Partner | None = None
    confirmed: dict[str, Any] | None = None
    #: Read from a partner file written before issue 12 (rewritten in the new format on its next change).
    migrated: bool = False
    designated_teacher: dict[str, str] | None = None
    withdrawal: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"seq": self.seq, "at": self.at, "event": self.event}
        if self.withdrawal is not None:
            d.update(self.withdrawal)
        if self.event == "introduced":
            d["designated_teacher"] = self.designated_teacher
        if self.partner is not None:
            p = self.partner
            d.update(fingerprint=p.fingerprint, confirmed=self.confirmed, issued=p.issued, name=p.name,
                     sftp_url=p.sftp_url, required_signature_algorithms=p.required_signature_algorithms,
                     keys=[k.to_dict() for k in p.keys])
        if self.migrated:
            d["migrated"] = True
        return d


@dataclass(frozen=True)
class PartnerAsOf:
    """What we know of a partner for a package it signed at `at` (archive verification).

    `partner` is the card version in force then (the newest issued at or before `at`, else the
    oldest we hold), its policy deciding which signature algorithms are required, but carrying
    every key any version ever listed, each with the most restrictive validity any version gave
    it (latest not_before, earliest not_after, earliest revocation): a later card can shorten a
    key's life or revoke it, never lengthen or un-revoke it."""

    partner: Partner
    at: dt.datetime
    removed_at: str | None
    versions: int


def _file_for(party: str) -> str:
    return party.replace(":", "_") + ".json"


def _parse_event(e: Any, seq: int, party: str, *, verify: bool) -> CardVersion:
    """One stored history entry, checked; with `verify`, its card's self-signatures and fingerprints too."""
    e = json_object(e)
    if e.get("seq") != seq:
        raise ValueError(f"history entry {seq} is numbered {e.get('seq')!r}: the history is not append-only")
    timefmt.parse(e["at"])
    event = e["event"]
    if event == REMOVED:
        if set(e) != {"seq", "at", "event"}:
            raise ValueError(f"history entry {seq} ({REMOVED}) has unexpected fields")
        return CardVersion(seq, e["at"], REMOVED)
    if event == WITHDRAWN:
        if set(e) != {"seq", "at", "event", "by", "reason", "area"} or e["reason"] not in WITHDRAW_REASONS \
                or not (e["area"] is None or (isinstance(e["area"], dict) and set(e["area"]) == _AREA_REF)):
            raise ValueError(f"history entry {seq} ({WITHDRAWN}) is malformed")
        check_party(e["by"])
        return CardVersion(seq, e["at"], WITHDRAWN,
                           withdrawal={"by": e["by"], "reason": e["reason"], "area": e["area"]})
    fields = {"seq", "at", "event", "fingerprint", "confirmed", "card"} | (
        {"designated_teacher"} if event == "introduced" else set())
    if event not in CARD_EVENTS or set(e) != fields:
        raise ValueError(f"history entry {seq} is not a card version")
    confirmed = json_object(e["confirmed"])
    contact = check_contact(e.get("designated_teacher"), f"history entry {seq}")
    if confirmed.get("by") == "fingerprint":
        if set(confirmed) != {"by", "fingerprint", "fingerprint_version"} \
                or confirmed["fingerprint_version"] not in (1, 2):
            raise ValueError(f"history entry {seq}: malformed fingerprint confirmation")
    elif confirmed.get("by") == "signature":
        if set(confirmed) != {"by", "signed_by"} or not isinstance(confirmed["signed_by"], list) \
                or not all(isinstance(k, str) for k in confirmed["signed_by"]):
            raise ValueError(f"history entry {seq}: malformed signature confirmation")
    elif confirmed.get("by") == "introduction" and event == "introduced":
        if set(confirmed) != {"by", "introducer", "introducer_fingerprint", "signed_by", "area"} \
                or not isinstance(confirmed["area"], dict) or set(confirmed["area"]) != _AREA_REF:
            raise ValueError(f"history entry {seq}: malformed introduction")
        check_party(confirmed["introducer"])
    else:
        raise ValueError(f"history entry {seq}: unknown confirmation {confirmed.get('by')!r}")
    if not verify:
        return CardVersion(seq, e["at"], event, None, confirmed, designated_teacher=contact)
    partner, env = read_card(e["card"])
    consistent = partner.party == party and e["fingerprint"] == partner.fingerprint
    if confirmed["by"] == "fingerprint":
        want = partner.fingerprint if confirmed["fingerprint_version"] == 2 else legacy_fingerprint_of(env.payload)
        consistent = consistent and confirmed["fingerprint"] == want
    if not consistent:
        raise ConfigError(f"partner file {_file_for(party)}: history entry {seq} does not match its card",
                          code="partner.damaged",
                          hint=f"restore it from your backup of the home, or remove {party} and add its card again")
    return CardVersion(seq, e["at"], event, partner, confirmed, designated_teacher=contact)


@dataclass
class _Record:
    """A partner file as stored: its history entries (raw) and whether it is still in the old format."""

    party: str
    events: list[dict[str, Any]]
    legacy: bool = False
    _last: Partner | None = None

    @property
    def removed(self) -> bool:
        return self.events[-1]["event"] in ENDS

    def last_card_index(self) -> int:
        return max(i for i, e in enumerate(self.events) if e["event"] not in ENDS)

    def basis(self) -> dict[str, Any]:
        """The entry our trust in the newest card rests on: walking back over rotations and updates (signed by
        the card before) to the card confirmed by a fingerprint or an introduction."""
        i = self.last_card_index()
        while self.events[i]["event"] in ENDS or self.events[i]["confirmed"]["by"] == "signature":
            i -= 1
        return self.events[i]

    def trust(self) -> tuple[dict[str, Any], dict[str, str] | None]:
        """(`Partner.trust`, `Partner.designated_teacher`) for the newest card."""
        e = self.basis()
        c = e["confirmed"]
        if c["by"] == "introduction":
            return {"by": "introduction", "introducer": c["introducer"], "area": c["area"], "at": e["at"]}, \
                e.get("designated_teacher")
        return {"by": "fingerprint", "at": e["at"]}, None

    def introduced_by(self) -> str | None:
        c = self.basis()["confirmed"]
        return str(c["introducer"]) if c["by"] == "introduction" else None

    def append(self, event: dict[str, Any]) -> _Record:
        return _Record(self.party, [*self.events, {"seq": len(self.events) + 1, **event}])

    def version(self, i: int, *, verify: bool = True) -> CardVersion:
        v = _parse_event(self.events[i], i + 1, self.party, verify=verify)
        return replace(v, migrated=True) if self.legacy else v

    def last_card(self) -> Partner:
        """The newest card in the history (the one in use, unless the partner was removed since), verified."""
        if self._last is None:
            self._last = self.version(self.last_card_index()).partner
            if self._last is None:
                raise ValueError("the newest card version has no card")
        return self._last

    def to_json(self) -> dict[str, Any]:
        return {"format": RECORD_FORMAT, "party": self.party, "events": self.events}


def _parse_record(party: str, data: Any) -> _Record:
    """A stored partner file: the history format, or the one-card format of releases before issue 12,
    read as a history of one version confirmed with its version-1 fingerprint (never rewritten by reading)."""
    data = json_object(data)
    if "format" not in data:  # before issue 12: {"fingerprint", "added", "card"}
        if not {"fingerprint", "card"} <= set(data) <= {"fingerprint", "added", "card"} \
                or not isinstance(data["fingerprint"], str):
            raise ValueError("it is not an object with a fingerprint and a card")
        partner, _ = read_card(data["card"])
        at = data.get("added") or partner.issued
        event = {"seq": 1, "at": at, "event": "added", "fingerprint": partner.fingerprint,
                 "confirmed": {"by": "fingerprint", "fingerprint": data["fingerprint"], "fingerprint_version": 1},
                 "card": data["card"]}
        rec = _Record(party, [event], legacy=True)
    else:
        if data["format"] != RECORD_FORMAT or set(data) != {"format", "party", "events"} \
                or data["party"] != party:
            raise ValueError(f"it is not a {RECORD_FORMAT} file for {party}")
        events = data["events"]
        if not isinstance(events, list) or not events or events[0].get("event") in ENDS:
            raise ValueError("its history is empty or does not start with a card")
        rec = _Record(party, events)
    for i in range(len(rec.events)):  # shapes and numbering of every entry; the last card fully
        rec.version(i, verify=False)
    rec.last_card()
    return rec


def _refuser(party: str) -> Any:
    def refuse(why: str) -> SecurityError:
        return SecurityError(f"card for {party} {why}", code="card.changed",
                             hint="refused; if the partner really changed this, confirm the new fingerprint out of "
                                  "band and re-add with --fingerprint")
    return refuse


def _check_keys_only_shrink(old: Partner, new: Partner) -> None:
    """For every change of a card, however it was confirmed: a key we already hold may not be
    un-revoked, have its revocation postponed, be changed under its id, or have its life extended.
    (A genuine laxchange never does any of these; a replayed old card or a thief would.)"""
    refuse = _refuser(new.party)
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


def _check_rotation(old: Partner, new: Partner, env: dsse.Envelope, now: dt.datetime) -> list[str]:
    """A changed card without a newly confirmed fingerprint is a rotation (or an update), and must prove it.

    It must carry a good signature for every algorithm the stored card's policy requires, each
    by a stored key valid now (so a stolen Ed25519 key alone cannot replace a partner that also
    signs with ML-DSA); it may not drop an algorithm from that policy; and it may not undo or
    postpone a revocation, nor extend the life of a key we already hold. Returns the key ids of
    the stored keys whose signatures proved it.
    """
    refuse = _refuser(new.party)
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
    _check_keys_only_shrink(old, new)
    for k in old.keys:  # a rotation may not silently forget a revoked key either
        if k.revoked_at is not None and new.find_key(k.kid) is None:
            raise refuse(f"drops the revoked key {k.kid}")
    return sorted(k.keyid for k in good)


def _merge_key(a: KeyInfo, b: KeyInfo) -> KeyInfo:
    """The most restrictive of two versions of one key: latest start, earliest end, earliest revocation."""
    def later(x: str, y: str) -> str:
        return x if timefmt.parse(x) >= timefmt.parse(y) else y

    def earlier(x: str | None, y: str | None) -> str | None:
        if x is None or y is None:
            return x if y is None else y
        return x if timefmt.parse(x) <= timefmt.parse(y) else y

    out = replace(a, not_before=later(a.not_before, b.not_before), not_after=earlier(a.not_after, b.not_after))
    revoked = earlier(a.revoked_at, b.revoked_at)
    if revoked is not None:
        reason = a.revocation_reason if revoked == a.revoked_at else b.revocation_reason
        out = replace(out, revoked_at=revoked, revocation_reason=reason)
    return out


class PartnerDirectory:
    """The partners we trust, one history file each in `<home>/partners/` (the newest card is the one in use)."""

    def __init__(self, home: Home, *, clock: Clock | None = None) -> None:
        self.home = home
        self.clock = clock or SystemClock()
        self._cache: dict[str, Partner] = {}

    def _path(self, party: str) -> Path:
        return self.home.partners / _file_for(party)

    def _load(self, party: str) -> _Record | None:
        """The stored history of `party` (removed or not), or None if we never held a card for it."""
        path = self._path(party)
        if not os.path.lexists(path):
            return None
        return load_home_file(path, lambda data: _parse_record(party, data), what="partner record",
                              hint=f"restore {path.name} from your backup of the home, or remove "
                                   f"it and add {party}'s card again with --fingerprint")

    def add(self, card: Any, *, fingerprint: str | None = None) -> tuple[Partner, str]:
        """Trust `card`. Returns (partner, outcome): added, unchanged, rotated (new keys), updated
        (same keys, e.g. a new SFTP address or just a re-export) or replaced.

        New (or removed) partner: `fingerprint` must match. Known partner with a different card:
        accepted when signed by the stored card's signing keys valid now (a rotation or update),
        or when `fingerprint` matches the new card (explicit re-add). Anything else is refused,
        and a refusal never says what the fingerprint should have been. Every accepted change is
        appended to the partner's history; nothing in it is ever rewritten."""
        partner, env = read_card(card)
        want = normalise_fingerprint(fingerprint) if fingerprint else None
        now = self.clock.now()
        if timefmt.parse(partner.issued) > now + CARD_CLOCK_SKEW:
            raise _bad_card(f"issued in the future ({partner.issued})")
        rec = self._load(partner.party)
        last = rec.last_card() if rec is not None else None
        known = last is not None and rec is not None and not rec.removed
        same = last is not None and env.to_dict()["payload"] == last.envelope["payload"]
        if want is not None and want != partner.fingerprint:
            if not known or same:
                raise SecurityError(f"the card for {partner.party} ({partner.name}) does not match the fingerprint "
                                    "you confirmed", code="card.fingerprint-mismatch",
                                    hint="do not add this card: compare, character by character, what you typed "
                                         f"({want}) with what the partner reads out from `laxchange keys export-card`"
                                         "; if they match, the card file is not the partner's")
            raise SecurityError(f"card for {partner.party} has changed and does not match the fingerprint you "
                                "confirmed", code="card.changed",
                                hint=f"refused: compare what you typed ({want}) with what the partner reads out; "
                                     "if they match, this card is not the partner's")
        confirmed: dict[str, Any] = {"by": "fingerprint", "fingerprint": partner.fingerprint,
                                     "fingerprint_version": 2}
        if last is None or not known:
            if want is None:
                raise UsageError(f"adding partner {partner.party} needs --fingerprint, confirmed out of band",
                                 code="card.fingerprint-required",
                                 hint=f"phone {partner.name} and compare the fingerprint they read out")
            outcome = "added"
            if last is not None:  # removed once: what we learnt of its keys still stands
                _check_keys_only_shrink(last, partner)
        elif same:
            if want is None or rec is None or rec.introduced_by() is None:
                return self._standing(rec) or last, "unchanged"
            outcome = "confirmed"  # the card an introduction gave us, now confirmed by us: direct from here on
        elif want is not None:
            outcome = "replaced"
            _check_keys_only_shrink(last, partner)
        elif timefmt.parse(partner.issued) < timefmt.parse(last.issued):
            raise SecurityError(f"card for {partner.party} is older than the one we hold", code="card.changed",
                                hint="ask the partner for their current card")
        else:
            signed_by = _check_rotation(last, partner, env, now)
            outcome = "updated" if partner.fingerprint == last.fingerprint else "rotated"
            confirmed = {"by": "signature", "signed_by": signed_by}
        events = rec.events if rec is not None else []
        events = [*events, {"seq": len(events) + 1, "at": timefmt.fmt(now), "event": outcome,
                            "fingerprint": partner.fingerprint, "confirmed": confirmed, "card": env.to_dict()}]
        new = _Record(partner.party, events)
        self._write(new)
        return self._standing(new) or partner, outcome

    def _write(self, rec: _Record) -> None:
        self.home.partners.mkdir(mode=0o700, parents=True, exist_ok=True)
        jsonio.write_atomic(self._path(rec.party), jsonio.dumps_pretty(rec.to_json()).encode("utf-8"))
        self._cache.clear()  # a school's standing can depend on its introducer's

    # -- introductions (issue 12 #6) ------------------------------------------------------------------------------

    def _direct_introducer(self, party: str) -> Partner:
        """`party` as an introducer: a council in our directory whose card we confirmed ourselves."""
        intro = self.get(party)
        if intro.role != "local-authority" or intro.introduced_by is not None:
            raise SecurityError(f"{party} cannot introduce schools to us: "
                                + ("it is not a council" if intro.role != "local-authority"
                                   else f"it was itself introduced (by {intro.introduced_by}), not confirmed by us"),
                                code="introduction.introducer-untrusted",
                                hint=f"only a council whose fingerprint you confirmed yourself can introduce its "
                                     f"schools: `laxchange partners add CARD.json --fingerprint FPR` for {party}")
        return intro

    def _area_path(self, introducer: str) -> Path:
        return self.home.partners / "areas" / _file_for(introducer)

    def held_area(self, introducer: str) -> dict[str, str] | None:
        """The newest area directory version of `introducer` we took in (`Area.ref()`), if any."""
        path = self._area_path(introducer)
        if not os.path.lexists(path):
            return None

        def parse(data: Any) -> dict[str, str]:
            d = json_object(data)
            if set(d) != _AREA_REF | {"envelope"} or d["introducer"] != introducer:
                raise ValueError("it is not a held area directory")
            timefmt.parse(d["issued"])
            return {k: str(d[k]) for k in sorted(_AREA_REF)}
        return load_home_file(path, parse, what="area directory",
                              hint=f"restore {path.name} from your backup, or delete it and take in "
                                   f"{introducer}'s current area directory again")

    def _verified_area(self, envelope: Any, introducer: str, now: dt.datetime) -> tuple[Area, bool]:
        """The area directory, verified with the introducer's current keys; and whether it is newer than the one
        we hold (an older one, or another with the same time, is refused: it could undo a withdrawal)."""
        trusted = self._direct_introducer(introducer)
        claimed = peek_introducer(envelope)
        if claimed != introducer:  # say so before its signature is checked against the wrong keys
            raise SecurityError(f"this area directory is {claimed}'s, not {introducer}'s",
                                code="area.introducer-mismatch",
                                hint=f"use --introduced-by {claimed} if you trust that council, "
                                     f"or ask {introducer} for its own area directory")
        area = read_area(envelope, trusted, now)
        held = self.held_area(introducer)
        if held is None:
            return area, True
        if held["sha256"] == area.sha256:
            return area, False
        if timefmt.parse(area.issued) <= timefmt.parse(held["issued"]):
            raise SecurityError(f"this area directory of {introducer} (issued {area.issued}) is not newer than the "
                                f"one we hold (issued {held['issued']})", code="area.stale",
                                hint=f"ask {introducer} for its current area directory")
        return area, True

    def _take_area(self, area: Area, now: dt.datetime) -> dict[str, builtins.list[str]]:
        """Apply `area` to the schools its introducer introduced to us, then hold it as the introducer's current
        one (last, so an interrupted run is redone by taking the same file again): a school no longer in it (or
        no longer in its area) is withdrawn; one with a newer card takes it, unless that card would lengthen or
        un-revoke a key we hold (`refused`, the card we hold kept); an older card than ours changes nothing."""
        report: dict[str, builtins.list[str]] = {"withdrawn": [], "updated": [], "refused": []}
        for party in self._known():
            rec = self._load(party)
            if rec is None or rec.removed or rec.introduced_by() != area.introducer:
                continue
            school = area.schools.get(party)
            held = rec.last_card()
            if school is None or not area.in_area(school):
                self._write(rec.append({"at": timefmt.fmt(now), "event": WITHDRAWN, "by": area.introducer,
                                        "reason": "withdrawn-by-introducer", "area": area.ref()}))
                report["withdrawn"].append(party)
            elif school.partner.envelope["payload"] != held.envelope["payload"] \
                    and timefmt.parse(school.partner.issued) > timefmt.parse(held.issued):
                try:
                    self._introduce_one(rec, area, party, now)
                    report["updated"].append(party)
                except SecurityError:
                    report["refused"].append(party)
        self._area_path(area.introducer).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        jsonio.write_atomic(self._area_path(area.introducer),
                            jsonio.dumps_pretty({**area.ref(), "envelope": area.envelope}).encode("utf-8"))
        self._cache.clear()
        return report

    def _introduce_one(self, rec: _Record | None, area: Area, party: str, now: dt.datetime) -> None:
        school = area.schools[party]
        if rec is not None:
            _check_keys_only_shrink(rec.last_card(), school.partner)
        intro = self.get(area.introducer)
        event = {"at": timefmt.fmt(now), "event": "introduced", "fingerprint": school.partner.fingerprint,
                 "confirmed": {"by": "introduction", "introducer": area.introducer,
                               "introducer_fingerprint": intro.fingerprint, "signed_by": list(area.signed_by),
                               "area": area.ref()},
                 "card": school.partner.envelope, "designated_teacher": school.designated_teacher}
        self._write(rec.append(event) if rec is not None else _Record(party, [{"seq": 1, **event}]))

    def introduce(self, area_envelope: Any, party: str, *, introduced_by: str) -> tuple[Partner, str]:
        """Add the school `party` from the area directory of `introduced_by`, a council we confirmed directly.

        The area directory must be signed by that council's current keys, list `party` with the council's own
        LA code, and be no older than the one we hold of it (a newer one is applied: see `refresh_area`).
        Outcomes: `introduced`, `unchanged` (already introduced, this card or a newer) or `kept-direct` (we confirmed
        its fingerprint ourselves: an introduction never replaces that)."""
        check_party(party)
        now = self.clock.now()
        area, newer = self._verified_area(area_envelope, check_party(introduced_by), now)
        school = area.schools.get(party)
        if school is None:
            raise UsageError(f"{party} is not in {introduced_by}'s area directory (issued {area.issued})",
                             code="introduction.not-listed",
                             hint=f"check the URN; if it is one of {introduced_by}'s schools, ask {introduced_by} "
                                  "to confirm its card and publish its area directory again")
        if not area.in_area(school):
            raise SecurityError(f"{party} is not in {introduced_by}'s area: its area directory gives its LA as "
                                f"{school.la_code}, and a council can introduce only its own schools",
                                code="introduction.outside-area",
                                hint=f"refused; add {party} from its own council's area directory, or confirm its "
                                     "fingerprint with the school directly (`partners add CARD.json --fingerprint`)")
        if newer:
            self._take_area(area, now)
        rec = self._load(party)
        if rec is not None and not rec.removed:
            if rec.introduced_by() is None:
                return self.get(party), "kept-direct"
            held = rec.last_card()
            if rec.introduced_by() == area.introducer and self.get_optional(party) is not None and (
                    held.envelope["payload"] == school.partner.envelope["payload"]
                    or timefmt.parse(held.issued) > timefmt.parse(school.partner.issued)):
                return self.get(party), "unchanged"  # this card, or a newer one the school sent us itself
        self._introduce_one(rec, area, party, now)
        return self.get(party), "introduced"

    def refresh_area(self, area_envelope: Any) -> tuple[Area, dict[str, builtins.list[str]]]:
        """Take in a newer area directory of a council we confirmed directly: schools it introduced to us that it
        no longer lists are withdrawn, newer cards taken. Returns (area, {"withdrawn"|"updated"|"refused": [...]})."""
        now = self.clock.now()
        area, newer = self._verified_area(area_envelope, peek_introducer(area_envelope), now)
        return area, (self._take_area(area, now) if newer else {"withdrawn": [], "updated": [], "refused": []})

    def area_entries(self, own: str, schools: builtins.list[tuple[str, str, dict[str, str] | None]]) \
            -> tuple[builtins.list[tuple[Partner, str, dict[str, str] | None]], dict[str, str]]:
        """Which of `schools` (party, LA code, Designated Teacher) our area directory can carry: those in our LA
        whose card we confirmed ourselves. Returns (entries, {party: why left out}); one in another LA is refused."""
        la = own.removeprefix("LA:")
        entries, left_out = [], {}
        for party, la_code, contact in schools:
            if la_code != la:
                raise UsageError(f"{party} is in LA {la_code}, not ours ({la}): an area directory lists only our "
                                 "own schools", code="area.school-outside",
                                 hint="remove it from the schools list (its own council introduces it)")
            p = self.get_optional(party)
            if p is None:
                left_out[party] = "not in our partner directory (confirm its card first)"
            elif p.introduced_by is not None:
                left_out[party] = f"introduced to us by {p.introduced_by}, not confirmed by us"
            else:
                entries.append((p, la_code, contact))
        return entries, left_out

    def get_optional(self, party: str) -> Partner | None:
        """The partner's current card, or None if it is not (or no longer) in the directory."""
        if party in self._cache:
            return self._cache[party]
        try:
            check_party(party)
        except UsageError:
            return None
        partner = self._standing(self._load(party))
        if partner is not None:
            self._cache[party] = partner
        return partner

    def _standing(self, rec: _Record | None) -> Partner | None:
        """The newest card of `rec` with how we trust it, or None if removed, withdrawn, or introduced by a
        council that is no longer a partner we confirmed ourselves."""
        if rec is None or rec.removed:
            return None
        trust, contact = rec.trust()
        introducer = rec.introduced_by()
        if introducer is not None:
            intro = self.get_optional(introducer)
            if intro is None or intro.introduced_by is not None:
                return None
        return replace(rec.last_card(), trust=trust, designated_teacher=contact)

    def get(self, party: str) -> Partner:
        """The partner `party`: UsageError (exit 2) for a malformed id, ConfigError (exit 5) when
        not in the directory, suggesting the nearest known partner if one is close."""
        p = self.get_optional(check_party(party))
        if p is None:
            raise self._unknown(party)
        return p

    def _known(self) -> builtins.list[str]:
        """Party ids with a partner file (removed ones too)."""
        return [f.stem.replace("_", ":") for f in sorted(self.home.partners.glob("*.json"))] \
            if self.home.partners.is_dir() else []

    def _unknown(self, party: str) -> ConfigError:
        rec = self._load(party) if party in self._known() else None
        if rec is not None and rec.events[-1]["event"] == WITHDRAWN:
            e = rec.events[-1]
            why = ("withdrew it from its area directory" if e["reason"] == "withdrawn-by-introducer"
                   else "was removed from our partner directory")
            return ConfigError(f"{party} was withdrawn at {e['at']}: it was introduced by {e['by']}, which {why}",
                               code="partner.withdrawn",
                               hint="confirm its fingerprint with the school directly (`laxchange partners add "
                                    "CARD.json --fingerprint FPR`), or add it again from a current area directory")
        if rec is not None and not rec.removed and rec.introduced_by() is not None:
            return ConfigError(f"{party} was introduced by {rec.introduced_by()}, which is no longer a partner we "
                               "confirmed ourselves", code="partner.withdrawn",
                               hint="confirm the school's fingerprint with it directly (`laxchange partners add "
                                    "CARD.json --fingerprint FPR`)")
        if rec is not None and rec.removed:
            return ConfigError(f"{party} was removed from the partner directory at {rec.events[-1]['at']}",
                               code="partner.unknown",
                               hint=f"to trust it again, add its card with --fingerprint; its card history is kept "
                                    f"(`laxchange partners history {party}`)")
        near = difflib.get_close_matches(party, self._known(), n=1, cutoff=0.7)
        hint = "add their card: laxchange partners add CARD.json --fingerprint FPR"
        if near:
            hint = f"did you mean {near[0]}? Otherwise {hint}"
        return ConfigError(f"{party} is not in the partner directory", code="partner.unknown", hint=hint)

    def list(self) -> builtins.list[Partner]:
        """Partners in the directory now (not removed ones)."""
        out = []
        for party in self._known():
            p = self.get_optional(party)
            if p is not None:
                out.append(p)
        return out

    def remove(self, party: str) -> builtins.list[str]:
        """Stop trusting `party`. Its history stays (with the removal appended), so packages it
        sent can still be verified as archives; adding it again needs its fingerprint. Schools it
        introduced to us are withdrawn (returned), each with an entry in its own history."""
        rec = self._load(check_party(party))
        if rec is None or rec.removed:
            raise self._unknown(party)
        at = timefmt.fmt(self.clock.now())
        self._write(rec.append({"at": at, "event": REMOVED}))
        withdrawn = []
        for other in self._known():
            orec = self._load(other)
            if orec is not None and not orec.removed and orec.introduced_by() == party:
                self._write(orec.append({"at": at, "event": WITHDRAWN, "by": party, "reason": "introducer-removed",
                                         "area": None}))
                withdrawn.append(other)
        return withdrawn

    def history(self, party: str) -> builtins.list[CardVersion]:
        """Every card version `party` presented, oldest first, each verified again, and any removals."""
        rec = self._load(check_party(party))
        if rec is None:
            raise self._unknown(party)
        return [rec.version(i) for i in range(len(rec.events))]

    def as_of(self, party: str, at: dt.datetime) -> PartnerAsOf | None:
        """What we know of `party` for a package it signed at `at` (see `PartnerAsOf`), from its whole
        history, removed or not; None if we never held a card for it."""
        try:
            rec = self._load(check_party(party))
        except UsageError:
            return None
        if rec is None:
            return None
        cards = [v.partner for v in (rec.version(i) for i in range(len(rec.events))) if v.partner is not None]
        issued_by = [p for p in cards if timefmt.parse(p.issued) <= at]
        in_force = issued_by[-1] if issued_by else cards[0]
        keys: dict[str, KeyInfo] = {}
        for p in cards:
            for k in p.keys:
                keys[k.kid] = _merge_key(keys[k.kid], k) if k.kid in keys else k
        return PartnerAsOf(replace(in_force, keys=builtins.list(keys.values())), at,
                           rec.events[-1]["at"] if rec.removed else None, len(cards))

    def keys_valid_at(self, party: str, t: dt.datetime, use: str | None = None) -> builtins.list[KeyInfo]:
        """Which keys were valid for `party` at time `t`."""
        return self.get(party).keys_valid_at(t, use)
