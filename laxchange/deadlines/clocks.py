"""Each rule of the policy applied to each record's history: when it started, when it is due, whether it is met.

A clock starts at an event of the record (`policy.STARTS`) and is met by another
(`policy.SATISFIERS`). Its state, at the time asked:

- `met`: the satisfying event happened (`late` if after the due date; it stays met);
- `overdue`: not met and the due date (or instant) has passed;
- `due-soon`: not met and due within the window asked for (default 7 days);
- `open`: not met and due later.

A clock of a placement, a school or a lack of one is superseded by a later start of the same
rule (a new placement's 48 hours replace the old one's); an unmet superseded clock is dropped,
since nothing can now be done about it. Each exclusion keeps its own clocks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from laxchange._util import timefmt
from laxchange.deadlines.calendar import ENGLAND, Calendar, Due, Unit
from laxchange.deadlines.facts import History, LedgerEvent
from laxchange.deadlines.policy import Policy, Rule
from laxchange.models.common import SchoolPhase
from laxchange.models.record import Exclusion, ExclusionKind

__all__ = ["DEFAULT_WINDOW", "PLANNED_MOVE", "Deadline", "Met", "Start", "due_within", "evaluate", "state_of"]

#: "Due soon" means within this long, unless asked otherwise (`--due-within`, config due_soon_days).
DEFAULT_WINDOW = dt.timedelta(days=7)
#: A PEP delivered to the school this long before the placement or school start counts (a planned move
#: is notified ahead); one delivered earlier was for something else.
PLANNED_MOVE = dt.timedelta(days=28)
#: A suspension longer than this many sessions (5 school days) needs a reintegration meeting at any school.
_LONG_SUSPENSION = 10
#: Starts whose later occurrence supersedes an earlier one of the same rule.
_SINGULAR = frozenset({"looked-after", "placement-start", "emergency-placement", "placement-or-school",
                       "school-joined", "no-school-place"})

STATES = ("overdue", "due-soon", "met", "open")


@dataclass(frozen=True)
class Start:
    """One occurrence of a rule's starting event."""

    day: dt.date
    what: str  # e.g. "placement started 2026-05-01 (school URN:123456)"
    key: str  # stable, for the calendar UID: the facts that make this occurrence this one
    school: str | None = None  # URN, for pep-delivered-to-school
    pep_date: dt.date | None = None  # for later-pep
    exclusion: Exclusion | None = None
    approximate: bool = False


@dataclass(frozen=True)
class Met:
    at: dt.date | dt.datetime
    by: str

    def day(self) -> dt.date:
        return self.at.astimezone(ENGLAND).date() if isinstance(self.at, dt.datetime) else self.at

    def iso(self) -> str:
        if isinstance(self.at, dt.datetime):
            return timefmt.fmt(self.at)
        return self.at.isoformat()


@dataclass(frozen=True)
class Deadline:
    """One clock of one record, evaluated at `now`."""

    rule: Rule
    record_ref: str
    start: Start
    due: Due
    met: Met | None
    state: str

    @property
    def approximate(self) -> bool:
        return self.due.approximate or self.start.approximate

    @property
    def late(self) -> bool:
        if self.met is None:
            return False
        if isinstance(self.due.at, dt.datetime) and isinstance(self.met.at, dt.datetime):
            return self.met.at > self.due.at
        due_day = self.due.at.astimezone(ENGLAND).date() if isinstance(self.due.at, dt.datetime) else self.due.at
        return self.met.day() > due_day

    @property
    def uid(self) -> str:
        """Stable across runs and machines: the same rule, record and starting facts give the same id."""
        digest = hashlib.sha256(f"{self.rule.id}|{self.record_ref}|{self.start.key}".encode()).hexdigest()
        return f"{digest[:32]}@deadlines.laxchange"

    def to_item(self) -> dict[str, Any]:
        """The item of the run report and `--json` (the first seven keys are the report's contract)."""
        return {"rule": self.rule.id, "title": self.rule.title, "record_ref": self.record_ref, "due": self.due.iso(),
                "state": self.state, "met_by": self.met.by if self.met is not None else None,
                "source": self.rule.source,
                "started": self.start.day.isoformat(), "starts": self.start.what,
                "length": self.rule.length_text(), "met_at": self.met.iso() if self.met is not None else None,
                "late": self.late, "approximate": self.approximate, "uid": self.uid}


def due_within(due: Due, now: dt.datetime, window: dt.timedelta) -> bool:
    """Is `due` at most `window` away (or past)? A due date counts in whole days from today in England."""
    if isinstance(due.at, dt.datetime):
        return due.at - now <= window
    return (due.at - now.astimezone(ENGLAND).date()).days <= window.days


def state_of(due: Due, met: Met | None, now: dt.datetime, window: dt.timedelta) -> str:
    if met is not None:
        return "met"
    if now >= due.deadline():
        return "overdue"
    return "due-soon" if due_within(due, now, window) else "open"


# -- the events that start a clock ------------------------------------------------------------------------

def _suspensions(h: History) -> list[Exclusion]:
    return [e for e in h.exclusions() if e.kind == ExclusionKind.suspension]


def _school_year(day: dt.date) -> int:
    return day.year if day.month >= 9 else day.year - 1


def _starts(kind: str, h: History, cal: Calendar) -> Iterator[Start]:
    seen: set[str] = set()
    vs = [v.record for v in h.versions]

    def once(s: Start) -> Iterator[Start]:
        if s.key not in seen:
            seen.add(s.key)
            yield s

    if kind in ("looked-after", "placement-start", "emergency-placement"):
        for r in vs:
            p = r.placement
            if kind == "looked-after":
                yield from once(Start(p.period_of_care_start, f"looked after from {p.period_of_care_start}",
                                      f"care:{p.period_of_care_start}"))
            elif kind == "placement-start" or p.emergency_placement:
                word = "emergency placement" if kind == "emergency-placement" else "placement"
                yield from once(Start(p.placement_start, f"{word} started {p.placement_start}",
                                      f"placement:{p.placement_start}"))
    elif kind in ("placement-or-school", "school-joined"):
        for r in vs:
            if r.school is None:
                continue
            s = r.school
            if kind == "school-joined":
                yield from once(Start(s.start_date, f"joined school URN:{s.urn} on {s.start_date}",
                                      f"school:{s.urn}:{s.start_date}", school=s.urn))
            else:
                day = max(r.placement.placement_start, s.start_date)
                what = (f"placed {r.placement.placement_start} (school URN:{s.urn})"
                        if day == r.placement.placement_start else f"joined school URN:{s.urn} on {s.start_date}")
                yield from once(Start(day, what, f"school:{s.urn}:{day}", school=s.urn))
    elif kind == "pep-review-due":
        for r in vs:
            yield from once(Start(r.pep.next_review_due, f"PEP of {r.pep.pep_date} due for review "
                                                         f"{r.pep.next_review_due}",
                                  f"pep:{r.pep.pep_date}:{r.pep.next_review_due}", pep_date=r.pep.pep_date))
    elif kind == "no-school-place":
        for r in vs:
            if r.no_school_place is not None:
                since = r.no_school_place.since
                yield from once(Start(since, f"no school place since {since}", f"no-place:{since}"))
    elif kind in ("suspension", "suspension-return"):
        primary = _primary(h)
        for e in _suspensions(h):
            if kind == "suspension":
                yield from once(Start(e.start_date, f"suspended from {e.start_date}", f"suspension:{e.start_date}",
                                      exclusion=e))
            elif primary or (e.sessions or 0) > _LONG_SUSPENSION:
                days = -(-(e.sessions or 1) // 2)  # sessions are half days; the first day is the start date
                last, approx_last = cal.offset(e.start_date - dt.timedelta(days=1), days, Unit.SCHOOL_DAYS)
                back, approx_back = cal.offset(last, 1, Unit.SCHOOL_DAYS)
                yield from once(Start(back, f"back from a suspension of {e.start_date} on {back}",
                                      f"suspension:{e.start_date}", exclusion=e,
                                      approximate=approx_last or approx_back))
    elif kind == "third-suspension":
        by_year: dict[int, list[Exclusion]] = {}
        for e in _suspensions(h):
            by_year.setdefault(_school_year(e.start_date), []).append(e)
        for year, es in sorted(by_year.items()):
            if len(es) >= 3:
                e = es[2]
                yield from once(Start(e.start_date, f"third suspension in {year}/{str(year + 1)[2:]} on "
                                                    f"{e.start_date}", f"third-suspension:{e.start_date}",
                                      exclusion=e))
    elif kind == "permanent-exclusion":
        for e in h.exclusions():
            if e.kind == ExclusionKind.permanent:
                yield from once(Start(e.start_date, f"permanently excluded {e.start_date}",
                                      f"exclusion:{e.start_date}", exclusion=e))


def _primary(h: History) -> bool:
    rec = h.current
    return rec is not None and rec.school is not None and rec.school.phase == SchoolPhase.primary


# -- what satisfies it ------------------------------------------------------------------------------------

def _delivered(events: Iterable[LedgerEvent], urn: str, me: str | None, since: dt.datetime) -> Met | None:
    school = f"URN:{urn}"
    for e in sorted(events, key=lambda e: e.at):
        if e.message_type != "pep-transfer" or e.at < since:
            continue
        if e.event in ("out.delivered", "out.applied") and e.party == school:
            return Met(e.at, f"pep-transfer {e.transfer_id} to {school}: delivered receipt")
        if e.event == "in.imported" and me == school:
            return Met(e.at, f"pep-transfer {e.transfer_id} from {e.party}: imported here")
    return None


def _satisfied(rule: Rule, start: Start, h: History, me: str | None) -> Met | None:
    kind = rule.satisfied_by
    peps = sorted({v.record.pep.pep_date for v in h.versions})
    if kind == "pep-on-or-after":
        day = next((d for d in peps if d >= start.day), None)
        return Met(day, f"PEP dated {day}") if day is not None else None
    if kind == "later-pep":
        anchor = start.pep_date or start.day
        day = next((d for d in peps if d > anchor), None)
        return Met(day, f"PEP dated {day}") if day is not None else None
    if kind == "pep-delivered-to-school" and start.school is not None:
        since = dt.datetime.combine(start.day, dt.time(), tzinfo=ENGLAND) - PLANNED_MOVE
        return _delivered(h.events, start.school, me, since)
    if kind == "school-place":
        for v in h.versions:
            s = v.record.school
            if s is not None and s.start_date >= start.day:
                day = max(v.record.as_of, start.day)
                return Met(day, f"school URN:{s.urn} from {s.start_date} (record of {v.record.as_of})")
        return None
    e = start.exclusion
    if kind == "reintegration-meeting" and e is not None and e.reintegration_meeting is not None:
        return Met(e.reintegration_meeting, f"reintegration meeting {e.reintegration_meeting}")
    if kind == "governors-meeting" and e is not None and e.governors_meeting is not None:
        return Met(e.governors_meeting, f"governors' meeting {e.governors_meeting}")
    return None


def _tells_the_school(h: History, me: str | None, start: Start) -> bool:
    """Is telling this record's school ours to do, or to see done? Not for a party that is not the
    school and only ever received the record, sending nothing of it (the host council's virtual
    school, told of a placement): informing the Designated Teacher is the placing council's duty,
    met by receipts only the placing council gets, so there the clock could never be met and
    would be overdue for ever. Kept with no `me`, at the school, and wherever the record is our
    own (the records folder) or we sent it."""
    if me is None or start.school is None or me == f"URN:{start.school}":
        return True
    return any(v.at is None for v in h.versions) or any(e.event.startswith("out.") for e in h.events)


def _placing_council(h: History, me: str) -> bool:
    """Are we, for this record, the council that looks after the child? The record says which
    (`placement.placing_la`); where it does not (a clocks cache from before it was kept), a record
    in our own records folder is taken as ours. Sending something about the child is no sign: a
    school sends exclusion notices about it."""
    current = h.current
    placing = current.placement.placing_la if current is not None else None
    if placing is not None:
        return me == f"LA:{placing}"
    return any(v.at is None for v in h.versions)


def _ours(rule: Rule, h: History, me: str | None, start: Start) -> bool:
    """Is this clock one this home can meet, or must see met (`Rule.duty`)?"""
    if rule.satisfied_by == "pep-delivered-to-school":
        return _tells_the_school(h, me, start)
    return rule.duty != "placing-council" or me is None or _placing_council(h, me)


def evaluate(policy: Policy, histories: Iterable[History], calendar: Calendar, *, now: dt.datetime,
             window: dt.timedelta = DEFAULT_WINDOW, me: str | None = None) -> list[Deadline]:
    """Every clock of every record, ordered by due date (then rule and record)."""
    out: list[Deadline] = []
    for h in histories:
        for rule in policy.rules:
            found: list[Deadline] = []
            for start in _starts(rule.starts, h, calendar):
                if not _ours(rule, h, me, start):
                    continue
                due = calendar.add(start.day, rule.length, rule.unit)
                met = _satisfied(rule, start, h, me)
                found.append(Deadline(rule, h.ref, start, due, met, state_of(due, met, now, window)))
            if rule.starts in _SINGULAR and found:
                latest = max(d.start.day for d in found)
                found = [d for d in found if d.met is not None or d.start.day == latest]
            out.extend(found)
    return sorted(out, key=lambda d: (d.due.deadline(), d.rule.id, d.record_ref))
