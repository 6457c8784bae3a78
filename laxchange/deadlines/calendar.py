"""Calendar arithmetic for the statutory clocks: calendar, working and school days (docs/deadlines.md).

Working days are Monday to Friday except English bank holidays (the `holidays` package,
subdivision ENG, substitute days included: Boxing Day on a Saturday moves to the Monday or
Tuesday). School days are working days in term: the council's term dates come from a file (ICS
or CSV, `load_term_dates`). A school-day count that runs outside the dates the file covers, or
with no file at all, counts working days instead and says so (`approximate`), because a wrong
date shown as certain is worse than a right one marked approximate.

"Within N days of E" is counted from the day after E: the deadline is the Nth counted day after
E's date (E's own day never counts; if E fell on a non-working day, the first working day after
it is day one). A deadline in hours runs from the start of E's day in England (records give
dates, not times) or from E's timestamp.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import holidays
import icalendar

from laxchange._util import timefmt
from laxchange._util.fs import open_regular
from laxchange._util.timefmt import ENGLAND
from laxchange.deadlines.errors import TermDatesError
from laxchange.errors import ConfigError

__all__ = ["ENGLAND", "Calendar", "Due", "Period", "TermDates", "Unit", "load_term_dates"]


#: A term-dates file larger than this is not a term-dates file.
MAX_TERM_FILE = 1_000_000


class Unit(StrEnum):
    """How a deadline's length is counted."""

    HOURS = "hours"
    CALENDAR_DAYS = "calendar-days"
    WORKING_DAYS = "working-days"
    SCHOOL_DAYS = "school-days"


@dataclass(frozen=True)
class Period:
    """A run of days (both ends included) from a term-dates file: a term (school open) or a break."""

    kind: str  # "term" | "break"
    start: dt.date
    end: dt.date
    name: str

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class TermDates:
    """A council's term dates: which days are in term, over the span the file covers.

    A day is a school day when it is a working day, inside a term (if the file lists any terms)
    and inside no break. Outside `first`..`last` nothing is known.
    """

    periods: tuple[Period, ...]
    source: str

    @property
    def first(self) -> dt.date:
        return min(p.start for p in self.periods)

    @property
    def last(self) -> dt.date:
        return max(p.end for p in self.periods)

    def covers(self, day: dt.date) -> bool:
        return self.first <= day <= self.last

    def in_term(self, day: dt.date) -> bool:
        """Known to be a day the school is open (weekends and bank holidays aside)."""
        terms = [p for p in self.periods if p.kind == "term"]
        if terms and not any(day in p for p in terms):
            return False
        return not any(day in p for p in self.periods if p.kind == "break")


@dataclass(frozen=True)
class Due:
    """When a deadline falls: a date (the end of that day in England) or an instant (hours)."""

    at: dt.date | dt.datetime
    approximate: bool = False

    def deadline(self) -> dt.datetime:
        """The first instant that is late: the next midnight in England after a due date."""
        if isinstance(self.at, dt.datetime):
            return self.at
        return dt.datetime.combine(self.at + dt.timedelta(days=1), dt.time(), tzinfo=ENGLAND)

    def iso(self) -> str:
        if isinstance(self.at, dt.datetime):
            return timefmt.fmt(self.at)
        return self.at.isoformat()


class Calendar:
    """Working and school days in England, with the council's term dates if it has given them."""

    def __init__(self, terms: TermDates | None = None) -> None:
        self.terms = terms
        self._bank = holidays.country_holidays("GB", subdiv="ENG")  # expands year by year as asked
        # offset() by its arguments: thousands of children's clocks start on the same few hundred days,
        # and counting school days one at a time was most of evaluating them
        self._offsets: dict[tuple[dt.date, int, Unit], tuple[dt.date, bool]] = {}

    def bank_holidays(self, years: Iterable[int]) -> list[dt.date]:
        """English bank holidays (with substitute days) in `years`, in order."""
        found = holidays.country_holidays("GB", subdiv="ENG", years=list(years))
        return sorted(found)

    def is_bank_holiday(self, day: dt.date) -> bool:
        return day in self._bank

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._bank

    def is_school_day(self, day: dt.date) -> bool | None:
        """True or False where the term dates say; None where they say nothing (no file, or outside it)."""
        if not self.is_working_day(day):
            return False
        if self.terms is None or not self.terms.covers(day):
            return None
        return self.terms.in_term(day)

    def add(self, start: dt.date | dt.datetime, length: int, unit: Unit | str) -> Due:
        """The deadline `length` `unit`s after `start` (see the module docstring for how days count)."""
        unit = Unit(unit)
        if length < 0:
            raise ValueError("a deadline's length cannot be negative")
        if unit is Unit.HOURS:
            begin = start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time(),
                                                                                     tzinfo=ENGLAND)
            return Due((begin + dt.timedelta(hours=length)).astimezone(dt.UTC))
        day = start.astimezone(ENGLAND).date() if isinstance(start, dt.datetime) else start
        due, approximate = self.offset(day, length, unit)
        return Due(due, approximate)

    def offset(self, day: dt.date, length: int, unit: Unit | str) -> tuple[dt.date, bool]:
        """The `length`th calendar, working or school day after `day`, and whether it is approximate."""
        unit = Unit(unit)
        if unit is Unit.HOURS:
            raise ValueError("offset() counts days; use add() for hours")
        if unit is Unit.CALENDAR_DAYS:
            return day + dt.timedelta(days=length), False
        key = (day, length, unit)
        if key not in self._offsets:
            self._offsets[key] = self._count_off(day, length, unit)
        return self._offsets[key]

    def _count_off(self, day: dt.date, length: int, unit: Unit) -> tuple[dt.date, bool]:
        approximate = False
        counted = 0
        while counted < length:
            day += dt.timedelta(days=1)
            if unit is Unit.WORKING_DAYS:
                counts = self.is_working_day(day)
            else:
                school = self.is_school_day(day)
                if school is None:
                    approximate = True
                    school = self.is_working_day(day)
                counts = school
            counted += counts
        return day, approximate

    def count(self, start: dt.date, end: dt.date, unit: Unit | str) -> tuple[int, bool]:
        """How many `unit` days lie after `start` up to and including `end` (0 if end <= start),
        and whether the count is approximate."""
        unit = Unit(unit)
        if unit is Unit.HOURS:
            raise ValueError("count() counts days")
        n, approximate, day = 0, False, start
        while day < end:
            day += dt.timedelta(days=1)
            if unit is Unit.CALENDAR_DAYS:
                n += 1
            elif unit is Unit.WORKING_DAYS:
                n += self.is_working_day(day)
            else:
                school = self.is_school_day(day)
                approximate |= school is None
                n += school is not False
        return n, approximate


# -- term-dates files ------------------------------------------------------------------------------

_BREAK_WORDS = re.compile(r"\b(holiday|holidays|half[- ]?term|break|closed|closure|inset)\b", re.IGNORECASE)
_TERM_WORDS = re.compile(r"\bterm\b", re.IGNORECASE)
_KINDS = {"term": "term", "break": "break", "holiday": "break"}


def _read(path: Path) -> bytes:
    with open_regular(path, what="term-dates file", error=ConfigError) as fh:
        data = fh.read(MAX_TERM_FILE + 1)
    if len(data) > MAX_TERM_FILE:
        raise TermDatesError(f"term-dates file {path} is larger than {MAX_TERM_FILE} bytes",
                             hint="a term-dates file lists a few terms and breaks a year; is this the right file?")
    return data


def load_term_dates(path: Path) -> TermDates:
    """Read a term-dates file: `.ics` (iCalendar) or `.csv` (docs/deadlines.md gives both formats)."""
    data = _read(path)
    suffix = path.suffix.lower()
    if suffix in (".ics", ".ical", ".ifb"):
        periods = _from_ics(path, data)
    elif suffix == ".csv":
        periods = _from_csv(path, data)
    else:
        raise TermDatesError(f"term-dates file {path} is neither .ics nor .csv",
                             hint="give an iCalendar file (.ics) or a CSV file (.csv) as docs/deadlines.md shows")
    if not periods:
        raise TermDatesError(f"term-dates file {path} lists no terms or breaks",
                             hint="see docs/deadlines.md for what a term or a break looks like in the file")
    return TermDates(tuple(sorted(periods, key=lambda p: (p.start, p.end, p.kind))), str(path))


def _from_csv(path: Path, data: bytes) -> list[Period]:
    """`kind,start,end,name`: kind `term` or `break`, ISO dates, both ends included; `#` lines are comments."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TermDatesError(f"term-dates file {path} is not UTF-8 text", hint="save it as UTF-8 CSV") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if not rows or [c.strip().lower() for c in rows[0][:3]] != ["kind", "start", "end"]:
        raise TermDatesError(f"term-dates file {path}: the first line must be the header kind,start,end,name",
                             hint="see docs/deadlines.md for the CSV format")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        where = f"term-dates file {path}, row {n}"
        if len(row) < 3:
            raise TermDatesError(f"{where}: expected kind,start,end[,name], got {len(row)} fields",
                                 hint="one term or break a row")
        kind = _KINDS.get(row[0].strip().lower())
        if kind is None:
            raise TermDatesError(f"{where}: kind {row[0].strip()!r} is not term or break",
                                 hint="write term (the school is open) or break (a holiday, half term, INSET)")
        start, end = (_iso(where, field, value) for field, value in (("start", row[1]), ("end", row[2])))
        out.append(_period(where, kind, start, end, row[3].strip() if len(row) > 3 else kind))
    return out


def _iso(where: str, field: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise TermDatesError(f"{where}: {field} {value.strip()!r} is not an ISO date (YYYY-MM-DD)",
                             hint="write dates as e.g. 2026-09-03") from None


def _period(where: str, kind: str, start: dt.date, end: dt.date, name: str) -> Period:
    if end < start:
        raise TermDatesError(f"{where}: ends ({end}) before it starts ({start})", hint="swap the two dates")
    if (end - start).days > 366:
        raise TermDatesError(f"{where}: runs for more than a year ({start} to {end})",
                             hint="list each term and break on its own")
    return Period(kind, start, end, name[:200])


def _from_ics(path: Path, data: bytes) -> list[Period]:
    """VEVENTs with all-day dates. CATEGORIES `term` or `break`/`holiday` say which each is; without
    them the SUMMARY decides (holiday, half term, break, closed, INSET: a break; else "term": a term);
    other events (a parents' evening) are ignored. DTEND is exclusive, as RFC 5545 says."""
    try:
        cal = icalendar.Calendar.from_ical(data)
    except (ValueError, KeyError, IndexError) as exc:
        raise TermDatesError(f"term-dates file {path} is not a valid iCalendar file: {exc}",
                             hint="export the term dates again as .ics, or write them as CSV") from None
    out = []
    for n, ev in enumerate(cal.walk("VEVENT"), start=1):
        summary = str(ev.get("SUMMARY", "")).strip()
        where = f"term-dates file {path}, event {n} ({summary or 'no summary'})"
        kind = _ics_kind(ev, summary)
        if kind is None:
            continue
        start = _ics_date(where, "DTSTART", ev.get("DTSTART"))
        if ev.get("DTEND") is not None:
            end = _ics_date(where, "DTEND", ev.get("DTEND")) - dt.timedelta(days=1)
        elif ev.get("DURATION") is not None:
            end = start + ev.decoded("DURATION") - dt.timedelta(days=1)
        else:
            end = start  # RFC 5545: an all-day event without an end lasts one day
        out.append(_period(where, kind, start, max(start, end), summary or kind))
    return out


def _ics_kind(ev: Any, summary: str) -> str | None:
    cats: list[str] = []
    raw = ev.get("CATEGORIES")
    for c in raw if isinstance(raw, list) else [raw] if raw is not None else []:
        cats += [str(x).strip().lower() for x in getattr(c, "cats", [c])]
    for c in cats:
        if c in _KINDS:
            return _KINDS[c]
    if _BREAK_WORDS.search(summary):
        return "break"
    if _TERM_WORDS.search(summary):
        return "term"
    return None


def _ics_date(where: str, name: str, prop: Any) -> dt.date:
    value = getattr(prop, "dt", None)
    if isinstance(value, dt.datetime):
        raise TermDatesError(f"{where}: {name} is a date and time; terms and breaks are whole days",
                             hint=f"make the event all-day ({name};VALUE=DATE:YYYYMMDD)")
    if not isinstance(value, dt.date):
        raise TermDatesError(f"{where}: {name} is missing or not a date", hint="give every event a DTSTART date")
    return value
