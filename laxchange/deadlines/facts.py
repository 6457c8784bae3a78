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

__all__ = ["MAX_RECORD_FILES", "History", "LedgerEvent", "Notice", "Sources", "Version", "ledger_events"]

#: A records folder with more files than this is refused (it is not one council's looked-after children).
MAX_RECORD_FILES = 100_000

#: Ledger events that can start or stop a clock.
_EVENTS = frozenset({"out.sent", "out.delivered", "out.applied", "in.imported"})


@dataclass(frozen=True)
class Version:
    """One version of a record as we hold it, and where it came from."""

    record: EducationRecord
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
    def current(self) -> EducationRecord | None:
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
        try:
            name, _version = schemastore.identify(doc, origin)
            if name == "exclusion-notice":
                notice = ExclusionNotice.model_validate(REGISTRY.upgrade(doc, in_place=owned))
                self.notices.append(Notice(notice, origin, transfer_id or origin))
                return
            inner = doc.get("record") if name != "education-record" else doc
            if not isinstance(inner, dict):
                return
            record = EducationRecord.model_validate(REGISTRY.upgrade(inner, in_place=owned))
        except LaxError as exc:
            self.warnings.append(f"{origin}: not a document laxchange can read ({exc.message}); skipped")
            return
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "$"
            self.warnings.append(f"{origin}: not a valid education record ({where}: {first.get('msg')}); skipped")
            return
        self.versions.append(Version(record, origin, at))

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
