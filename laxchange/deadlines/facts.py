"""What the clocks are computed from: record versions, exclusion notices and ledger events, per record.

Where each comes from (docs/deadlines.md, "Where the facts come from"):

- **records**: every education record we can read, in any version: the messages in
  `HOME/received/` (the receiver's side: a school's PEP transfers, a host council's placement
  notifications), and the council's own records folder (config.json `deadlines.records`, or
  `--records DIR`: the JSON files the VSH hands to `notify-placement`). laxchange keeps no
  readable copy of what it sends (the outbox holds packages only the recipient can open), so a
  sender's record facts come from that folder;
- **exclusion notices** in `HOME/received/`: they name the child but carry no record id, so each
  is matched, in memory only, to a record by UPN (or local child id and date of birth); one that
  matches no record is kept under `transfer:<its transfer id>`;
- **the ledger**: the audit entries of transfers that carry a record reference (sent, delivered,
  applied, imported), which say when the PEP reached the school.

Everything is keyed by the record's pseudonymous `record_id` (models.wrap.record_ref); no name,
UPN or date of birth leaves this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from laxchange._util import jsonio, timefmt
from laxchange.deadlines.errors import DeadlinesConfigError
from laxchange.errors import LaxError
from laxchange.ledger.db import Ledger
from laxchange.models import schemastore, wrap
from laxchange.models.messages import ExclusionNotice
from laxchange.models.migrations import REGISTRY
from laxchange.models.record import EducationRecord, Exclusion, ExclusionKind

__all__ = ["MAX_RECORD_FILES", "History", "LedgerEvent", "Notice", "RecordFacts", "Sources", "Version", "ledger_events"]

#: A records folder with more files than this is refused (it is not one council's looked-after children).
MAX_RECORD_FILES = 100_000

#: Ledger events that can start or stop a clock.
_EVENTS = frozenset({"out.sent", "out.delivered", "out.applied", "in.imported"})


@dataclass(frozen=True)
class ChildKeys:
    """What matches an exclusion notice to a record (kept in memory only; never written out but in
    the clocks' cache beside the record it came from)."""

    date_of_birth: dt.date
    upn: str | None
    former_upns: tuple[str, ...]
    local_child_id: str | None


@dataclass(frozen=True)
class PlacementFacts:
    period_of_care_start: dt.date
    placement_start: dt.date
    emergency_placement: bool | None
    #: the council that looks after the child (its DfE code); None in a cache written before it was kept
    placing_la: str | None = None


@dataclass(frozen=True)
class SchoolFacts:
    urn: str
    start_date: dt.date
    phase: str


@dataclass(frozen=True)
class PepFacts:
    pep_date: dt.date
    next_review_due: dt.date


@dataclass(frozen=True)
class NoPlaceFacts:
    since: dt.date


@dataclass(frozen=True)
class RecordFacts:
    """The part of a validated education record the clocks read (the same attribute names), small
    enough to keep between runs: a school's received/ folder grows for years, and validating every
    record it ever received each night costs in proportion to that, not to what is new."""

    record_id: str
    as_of: dt.date
    child: ChildKeys
    placement: PlacementFacts
    school: SchoolFacts | None
    pep: PepFacts
    no_school_place: NoPlaceFacts | None
    exclusions: tuple[Exclusion, ...]

    @classmethod
    def of(cls, r: EducationRecord) -> RecordFacts:
        c, p = r.child, r.placement
        return cls(r.record_id, r.as_of, ChildKeys(c.date_of_birth, c.upn, tuple(c.former_upns), c.local_child_id),
                   PlacementFacts(p.period_of_care_start, p.placement_start, p.emergency_placement, p.placing_la),
                   SchoolFacts(r.school.urn, r.school.start_date, str(r.school.phase)) if r.school else None,
                   PepFacts(r.pep.pep_date, r.pep.next_review_due),
                   NoPlaceFacts(r.no_school_place.since) if r.no_school_place else None, tuple(r.exclusions))

    def to_json(self) -> dict[str, Any]:
        c, p, s = self.child, self.placement, self.school
        return {"record_id": self.record_id, "as_of": self.as_of.isoformat(),
                "child": [c.date_of_birth.isoformat(), c.upn, list(c.former_upns), c.local_child_id],
                "placement": [p.period_of_care_start.isoformat(), p.placement_start.isoformat(),
                              p.emergency_placement, p.placing_la],
                "school": [s.urn, s.start_date.isoformat(), s.phase] if s else None,
                "pep": [self.pep.pep_date.isoformat(), self.pep.next_review_due.isoformat()],
                "no_school_place": self.no_school_place.since.isoformat() if self.no_school_place else None,
                "exclusions": [e.model_dump(mode="json", exclude_none=True) for e in self.exclusions]}

    @classmethod
    def from_json(cls, d: Any) -> RecordFacts:
        """The facts `to_json` wrote; ValueError (or KeyError, TypeError) if `d` is not such a thing."""
        day = dt.date.fromisoformat
        c, p, s = d["child"], d["placement"], d["school"]
        if not isinstance(d["record_id"], str) or not isinstance(c[2], list) or p[2] not in (None, True, False):
            raise ValueError("not record facts")
        try:
            exclusions = tuple(Exclusion.model_validate(e) for e in d["exclusions"])
        except pydantic.ValidationError as exc:
            raise ValueError("not record facts") from exc
        return cls(d["record_id"], day(d["as_of"]),
                   ChildKeys(day(c[0]), _opt_str(c[1]), tuple(str(u) for u in c[2]), _opt_str(c[3])),
                   PlacementFacts(day(p[0]), day(p[1]), p[2], _opt_str(p[3]) if len(p) > 3 else None),
                   SchoolFacts(str(s[0]), day(s[1]), str(s[2])) if s is not None else None,
                   PepFacts(day(d["pep"][0]), day(d["pep"][1])),
                   NoPlaceFacts(day(d["no_school_place"])) if d["no_school_place"] is not None else None,
                   exclusions)


def _opt_str(v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise ValueError("not record facts")
    return v


@dataclass(frozen=True)
class Version:
    """One version of a record as we hold it, and where it came from."""

    record: RecordFacts
    origin: str
    at: dt.datetime | None = None  # when it arrived (received/); None for the records folder


@dataclass(frozen=True)
class Notice:
    """A received exclusion notice."""

    notice: ExclusionNotice
    origin: str
    transfer_id: str


@dataclass(frozen=True)
class LedgerEvent:
    """An audit entry about a transfer carrying a record."""

    at: dt.datetime
    event: str
    transfer_id: str
    party: str
    message_type: str | None
    record_ref: str


@dataclass
class History:
    """Everything we know about one record (one child), oldest version first."""

    ref: str
    versions: list[Version] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    events: list[LedgerEvent] = field(default_factory=list)

    @property
    def current(self) -> RecordFacts | None:
        return self.versions[-1].record if self.versions else None

    def exclusions(self) -> list[Exclusion]:
        """Every exclusion, once each (by kind and start date), from the versions and the notices;
        a meeting date recorded anywhere is kept (the newest version's wins)."""
        merged: dict[tuple[bool, dt.date], Exclusion] = {}
        found = [e for v in self.versions for e in v.record.exclusions] + [n.notice.exclusion for n in self.notices]
        for n in self.notices:  # a notice may carry the reintegration meeting beside the exclusion
            if n.notice.reintegration_meeting is not None and n.notice.exclusion.reintegration_meeting is None:
                found.append(n.notice.exclusion.model_copy(
                    update={"reintegration_meeting": n.notice.reintegration_meeting}))
        for e in found:
            key = (e.kind == ExclusionKind.permanent, e.start_date)
            old = merged.get(key)
            if old is None:
                merged[key] = e
                continue
            updates = {k: getattr(e, k) for k in ("reintegration_meeting", "governors_meeting", "appeal_date",
                                                  "sessions") if getattr(e, k) is not None}
            merged[key] = old.model_copy(update=updates)
        return sorted(merged.values(), key=lambda e: (e.start_date, e.kind == ExclusionKind.permanent))


class Sources:
    """The records, notices and ledger events the clocks are computed from; `histories()` groups them."""

    def __init__(self, *, me: str | None = None) -> None:
        self.me = me
        self.versions: list[Version] = []
        self.notices: list[Notice] = []
        self.events: list[LedgerEvent] = []
        self.warnings: list[str] = []

    def add_document(self, doc: Any, *, origin: str, at: dt.datetime | None = None,
                     transfer_id: str | None = None, owned: bool = False) -> None:
        """A verified message or record (a received/ folder's record.json, a records-folder file).
        Documents that carry no record and are no exclusion notice (a receipt) are ignored.
        `owned`: `doc` was read for this call alone, so it may be upgraded in place, not copied."""
        self.add(read_document(doc, origin=origin, at=at, transfer_id=transfer_id, owned=owned))

    def add(self, fact: Fact) -> None:
        """What `read_document` made of a document (kept by a caller between runs, or just read)."""
        if isinstance(fact, Version):
            self.versions.append(fact)
        elif isinstance(fact, Notice):
            self.notices.append(fact)
        elif isinstance(fact, str):
            self.warnings.append(fact)

    def add_records_folder(self, folder: Path) -> None:
        """Every `*.json` file under `folder` (hidden files and folders skipped)."""
        if not folder.is_dir():
            raise DeadlinesConfigError(f"records folder {folder} does not exist or is not a folder",
                                       code="deadlines.records",
                                       hint="set deadlines.records in config.json (or --records) to the folder of "
                                            "education-record JSON files, or remove it")
        files = sorted(p for p in folder.rglob("*.json")
                       if not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if len(files) > MAX_RECORD_FILES:
            raise DeadlinesConfigError(f"records folder {folder} holds more than {MAX_RECORD_FILES} JSON files",
                                       code="deadlines.records", hint="point deadlines.records at the right folder")
        for path in files:
            origin = f"records/{path.relative_to(folder)}"
            try:
                doc = jsonio.load_file(path)
            except LaxError as exc:
                self.warnings.append(f"{origin}: cannot be read ({exc.message}); skipped")
                continue
            self.add_document(doc, origin=origin, owned=True)

    def add_ledger(self, ledger: Ledger) -> None:
        self.events.extend(ledger_events(ledger))

    def histories(self) -> list[History]:
        """One History per record reference, versions in order of `as_of` (then arrival)."""
        out: dict[str, History] = {}
        for v in self.versions:
            out.setdefault(v.record.record_id, History(v.record.record_id)).versions.append(v)
        for h in out.values():
            h.versions.sort(key=lambda v: (v.record.as_of, v.at or dt.datetime.min.replace(tzinfo=dt.UTC)))
        for e in self.events:
            if e.record_ref in out:
                out[e.record_ref].events.append(e)
        for n in self.notices:
            ref = _match(n.notice, out.values())
            if ref is None:
                ref = f"transfer:{n.transfer_id}"
                out.setdefault(ref, History(ref))
            out[ref].notices.append(n)
        return [out[k] for k in sorted(out)]


#: What one document gives the clocks: a record's version, an exclusion notice, a warning (why it
#: was skipped), or None (it carries neither, as a receipt).
Fact = Version | Notice | str | None


def read_document(doc: Any, *, origin: str, at: dt.datetime | None = None, transfer_id: str | None = None,
                  owned: bool = False) -> Fact:
    """`Sources.add_document`'s reading of one document, without adding it anywhere."""
    try:
        name, _version = schemastore.identify(doc, origin)
        if name == "exclusion-notice":
            notice = ExclusionNotice.model_validate(REGISTRY.upgrade(doc, in_place=owned))
            return Notice(notice, origin, transfer_id or origin)
        inner = doc.get("record") if name != "education-record" else doc
        if not isinstance(inner, dict):
            return None
        record = EducationRecord.model_validate(REGISTRY.upgrade(inner, in_place=owned))
    except LaxError as exc:
        return f"{origin}: not a document laxchange can read ({exc.message}); skipped"
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "$"
        return f"{origin}: not a valid education record ({where}: {first.get('msg')}); skipped"
    return Version(RecordFacts.of(record), origin, at)


def _match(notice: ExclusionNotice, histories: Iterable[History]) -> str | None:
    """The record a notice is about: the same UPN, else the same local child id and date of birth."""
    child = notice.child
    for h in histories:
        rec = h.current
        if rec is None:
            continue
        c = rec.child
        if child.upn is not None and c.upn is not None:
            if child.upn == c.upn or child.upn in c.former_upns:
                return h.ref
            continue
        if child.local_child_id and child.local_child_id == c.local_child_id and child.date_of_birth == c.date_of_birth:
            return h.ref
    return None


def ledger_events(ledger: Ledger) -> list[LedgerEvent]:
    """The audit entries that carry a record reference and can start or stop a clock, oldest first."""
    out = []
    for e in ledger.audit_entries(_EVENTS):
        data: Mapping[str, Any] = e["data"]
        ref = data.get("record_ref")
        if e["event"] not in _EVENTS or not isinstance(ref, str) or wrap.record_ref({"record_id": ref}) is None:
            continue
        out.append(LedgerEvent(timefmt.parse(e["at"]), e["event"], str(data.get("transfer_id")),
                               str(data.get("party")), data.get("message_type"), ref))
    return out
