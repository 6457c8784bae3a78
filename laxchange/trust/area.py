"""Area directories: a host council's signed list of its own schools' cards (introductions, issue 12 #6).

No placing council can phone every school in England to confirm its fingerprint. A host council
that has confirmed its own schools' cards publishes them, with each school's Designated Teacher,
as one DSSE envelope signed by its own signing keys; a council that has confirmed *the host
council's* fingerprint can then add a school from it (`PartnerDirectory.introduce`), limited to
schools whose LA code is the introducer's. The DfE data shipped with laxchange has no URN→LA
table, so each entry carries the school's LA code as the host council states it (from its own
list of schools), and the receiving side checks it against the introducer's LA. docs/format.md §8.1.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any

from laxchange import dsse
from laxchange._util import jsonio, timefmt
from laxchange.errors import InvalidData, SecurityError, UsageError
from laxchange.trust.cards import CARD_CLOCK_SKEW, Partner, read_card
from laxchange.trust.keystore import SIGNING, KeyStore, check_party

AREA_PAYLOAD_TYPE = "application/vnd.laxchange.area+json; version=1"
AREA_TYPE = "laxchange-area"
#: Room for a large county's few hundred schools (a card is a few kilobytes).
MAX_AREA_BYTES = 32 * 1024 * 1024
_CONTACT_FIELDS = ("name", "role", "organisation", "email", "phone")


@dataclass(frozen=True)
class AreaSchool:
    """One school of an area directory: its card (verified), LA code as stated, Designated Teacher."""

    partner: Partner
    la_code: str
    designated_teacher: dict[str, str] | None


@dataclass(frozen=True)
class Area:
    """A verified area directory. `sha256` (of its payload) and `issued` name this version of it."""

    introducer: str
    issued: str
    sha256: str
    schools: dict[str, AreaSchool]
    envelope: dict[str, Any]
    #: The introducer's key ids whose signatures on it were good.
    signed_by: tuple[str, ...] = ()

    def ref(self) -> dict[str, str]:
        """How a history entry names this version: who published it, when, and the hash of its payload."""
        return {"introducer": self.introducer, "issued": self.issued, "sha256": self.sha256}

    def in_area(self, school: AreaSchool) -> bool:
        return school.la_code == self.introducer.removeprefix("LA:")


def _bad(msg: str) -> SecurityError:
    return SecurityError(f"area directory rejected: {msg}", code="area.invalid",
                         hint="ask the host council to publish it again (`laxchange partners publish-area`) and send "
                              "the file unchanged")


def check_contact(c: Any, where: str) -> dict[str, str] | None:
    """A Designated Teacher contact: strings among name, role, organisation, email, phone; a name and a way to reach."""
    if c is None:
        return None
    if not isinstance(c, dict) or not set(c) <= set(_CONTACT_FIELDS) or not all(
            isinstance(v, str) and v.strip() for v in c.values()) or "name" not in c \
            or not ({"email", "phone"} & set(c)):
        raise ValueError(f"{where}: a Designated Teacher needs a name and an email or phone (strings)")
    return dict(c)


def peek_introducer(envelope: Any) -> str:
    """Who an area directory says published it, before anything is verified (to know whose keys to check it with)."""
    try:
        env = dsse.parse(envelope)
        p = jsonio.loads_strict(env.payload, source="area directory payload", max_bytes=MAX_AREA_BYTES)
        return check_party(p["introducer"])
    except (dsse.DSSEError, InvalidData, UsageError, KeyError, TypeError) as exc:
        raise _bad(exc.message if isinstance(exc, (InvalidData, UsageError)) else str(exc)) from None


def read_area(envelope: Any, introducer: Partner, now: dt.datetime) -> Area:
    """Parse an area directory strictly and check it was signed, for every algorithm `introducer`'s policy
    requires, by a key of `introducer` valid now; every card in it must be a school's, self-signed, with the
    fingerprint stated. Whether an entry is in the introducer's area is left to the caller (`Area.in_area`)."""
    try:
        env = dsse.parse(envelope)
    except dsse.DSSEError as exc:
        raise _bad(str(exc)) from None
    if env.payload_type != AREA_PAYLOAD_TYPE:
        raise _bad(f"unexpected payloadType {env.payload_type!r}")
    trusted = {k.kid: k.dsse_key() for k in introducer.keys_valid_at(now, SIGNING)}
    verified = dsse.verify(env, trusted)
    missing = set(introducer.required_signature_algorithms) - {k.alg for k in verified}
    if missing:
        raise SecurityError(f"area directory is not signed by {introducer.party}'s current "
                            f"{', '.join(sorted(missing))} key", code="area.signature",
                            hint=f"it was not published by {introducer.party} (or was changed since): do not use it; "
                                 f"ask {introducer.party} for its current area directory")
    try:
        p = jsonio.loads_strict(env.payload, source="area directory payload", max_bytes=MAX_AREA_BYTES)
    except InvalidData as exc:
        raise _bad(exc.message) from None
    if not isinstance(p, dict) or set(p) != {"type", "area_version", "introducer", "issued", "schools"} \
            or p["type"] != AREA_TYPE or p["area_version"] != 1:
        raise _bad("not a version-1 laxchange area directory")
    if not jsonio.is_canonical(p, env.payload):
        raise _bad("payload is not canonical JSON")
    if p["introducer"] != introducer.party:
        raise SecurityError(f"area directory is {p['introducer']!r}'s, not {introducer.party}'s",
                            code="area.introducer-mismatch",
                            hint=f"use --introduced-by {p['introducer']} if you trust that council, "
                                 f"or ask {introducer.party} for its own area directory")
    schools: dict[str, AreaSchool] = {}
    try:
        issued = timefmt.parse(p["issued"])
        if issued > now + CARD_CLOCK_SKEW:
            raise ValueError(f"issued in the future ({p['issued']})")
        if not isinstance(p["schools"], list):
            raise ValueError("schools must be a list")
        for i, s in enumerate(p["schools"]):
            where = f"schools[{i}]"
            if not isinstance(s, dict) or set(s) != {"party", "la_code", "fingerprint", "card", "designated_teacher"}:
                raise ValueError(f"{where} must have party, la_code, fingerprint, card, designated_teacher")
            party = check_party(s["party"])
            if not party.startswith("URN:") or party in schools:
                raise ValueError(f"{where}: {party} is not a school or is listed twice")
            if not isinstance(s["la_code"], str) or not re.fullmatch(r"[0-9]{3}", s["la_code"]):
                raise ValueError(f"{where}: la_code must be 3 digits")
            partner, _ = read_card(s["card"])
            if partner.party != party or partner.fingerprint != s["fingerprint"]:
                raise ValueError(f"{where}: the card is not {party}'s or does not match its fingerprint")
            schools[party] = AreaSchool(partner, s["la_code"], check_contact(s["designated_teacher"], where))
    except SecurityError as exc:
        raise _bad(exc.message) from None
    except (UsageError, ValueError, KeyError, TypeError) as exc:
        raise _bad(exc.message if isinstance(exc, UsageError) else str(exc)) from None
    return Area(p["introducer"], p["issued"], hashlib.sha256(env.payload).hexdigest(), schools, env.to_dict(),
                tuple(sorted(k.keyid for k in verified)))


def build_area(store: KeyStore, schools: list[tuple[Partner, str, dict[str, str] | None]]) -> dict[str, Any]:
    """Our area directory: `schools` as (card held, LA code, Designated Teacher), signed by every signing key
    valid now. Choosing which schools (confirmed directly, in our LA) is `PartnerDirectory.area_entries`' job."""
    ring = store.ring()
    entries = [{"party": p.party, "la_code": la, "fingerprint": p.fingerprint, "card": p.envelope,
                "designated_teacher": dt_}
               for p, la, dt_ in sorted(schools, key=lambda s: s[0].party)]
    payload = {"type": AREA_TYPE, "area_version": 1, "introducer": ring.party,
               "issued": timefmt.fmt(store.clock.now()), "schools": entries}
    return dsse.sign(AREA_PAYLOAD_TYPE, jsonio.dumps_canonical(payload), store.card_signers()).to_dict()


#: Columns of the schools list `partners publish-area --schools` reads (docs/format.md §8.1).
SCHOOLS_COLUMNS = ("urn", "la_code", "dt_name", "dt_email", "dt_phone")


def read_schools_csv(data: bytes, *, source: str) -> list[tuple[str, str, dict[str, str] | None]]:
    """A council's list of its schools (a GIAS extract with its Designated Teachers): rows of (party, LA code,
    Designated Teacher or None). `urn` and `la_code` are required; `dt_name` with `dt_email` or `dt_phone`."""
    def bad(msg: str) -> InvalidData:
        return InvalidData(f"{source}: {msg}", code="area.schools-file",
                           hint=f"a CSV with a header row: {', '.join(SCHOOLS_COLUMNS)} (the dt_ columns optional)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    cols = reader.fieldnames or []
    if not {"urn", "la_code"} <= set(cols) or not set(cols) <= set(SCHOOLS_COLUMNS):
        raise bad(f"the header is {', '.join(cols) or 'missing'}")
    out: list[tuple[str, str, dict[str, str] | None]] = []
    seen: set[str] = set()
    for n, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise bad(f"line {n} has the wrong number of fields")
        urn = row["urn"].strip().removeprefix("URN:")
        if not re.fullmatch(r"[0-9]{6}", urn) or f"URN:{urn}" in seen:
            raise bad(f"line {n}: urn {row['urn']!r} is not a 6-digit URN, or is listed twice")
        la = row["la_code"].strip()
        if not re.fullmatch(r"[0-9]{3}", la):
            raise bad(f"line {n}: la_code {la!r} is not a 3-digit LA code")
        contact = {k: row.get(f"dt_{k}", "").strip() for k in ("name", "email", "phone")}
        contact = {k: v for k, v in contact.items() if v}
        try:
            dt_ = check_contact({**contact, "role": "Designated Teacher"}, f"line {n}") if contact else None
        except ValueError as exc:
            raise bad(str(exc)) from None
        seen.add(f"URN:{urn}")
        out.append((f"URN:{urn}", la, dt_))
    if not out:
        raise bad("it lists no schools")
    return out
