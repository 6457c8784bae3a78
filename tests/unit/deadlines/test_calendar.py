"""Calendar arithmetic against an independent calculation (numpy's busday_offset / busday_count with the
same bank holidays), across 2021-2028: Easters, Christmases with substitute days, the 2022 jubilee and
state funeral. And the term-dates files, ICS and CSV, with their errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laxchange.deadlines import ENGLAND, Calendar, Due, TermDatesError, Unit, load_term_dates
from laxchange.deadlines.calendar import Period, TermDates
from laxchange.errors import ConfigError, ExitCode
from tests.support.parties import REPO

CAL = Calendar()
YEARS = range(2021, 2029)
BANK = [np.datetime64(d) for d in CAL.bank_holidays(range(2020, 2031))]
FIRST, LAST = dt.date(2021, 1, 1), dt.date(2028, 12, 31)
EXAMPLES = REPO / "docs" / "examples"

days = st.dates(min_value=FIRST, max_value=LAST)


def test_bank_holidays_include_substitute_days_and_one_offs() -> None:
    hols = set(CAL.bank_holidays(YEARS))
    assert dt.date(2026, 12, 28) in hols, "Boxing Day 2026 is a Saturday: Monday 28th is the substitute"
    assert {dt.date(2027, 12, 27), dt.date(2027, 12, 28)} <= hols, "Christmas and Boxing Day 2027 at a weekend"
    assert {dt.date(2022, 6, 3), dt.date(2022, 9, 19)} <= hols, "the platinum jubilee and the state funeral"
    assert {dt.date(2026, 4, 3), dt.date(2026, 4, 6), dt.date(2027, 3, 26), dt.date(2027, 3, 29)} <= hols, "Easter"
    assert dt.date(2026, 12, 25) in hols and dt.date(2026, 12, 26) in hols
    assert not CAL.is_working_day(dt.date(2026, 12, 28)) and CAL.is_working_day(dt.date(2026, 12, 29))


@settings(max_examples=200, deadline=None)
@given(start=days, n=st.integers(min_value=1, max_value=80))
def test_working_days_agree_with_numpy(start: dt.date, n: int) -> None:
    # the nth working day after `start`; numpy rolls a non-working start back to the working day before it,
    # from which the first step is the first working day after `start` too
    want = np.busday_offset(np.datetime64(start), n, roll="backward", holidays=BANK).astype(dt.date)
    due, approximate = CAL.offset(start, n, Unit.WORKING_DAYS)
    assert due == want and not approximate
    assert CAL.add(start, n, Unit.WORKING_DAYS) == Due(want)


@settings(max_examples=200, deadline=None)
@given(start=days, span=st.integers(min_value=0, max_value=400))
def test_working_day_count_agrees_with_numpy(start: dt.date, span: int) -> None:
    end = start + dt.timedelta(days=span)
    one = np.timedelta64(1, "D")
    want = int(np.busday_count(np.datetime64(start) + one, np.datetime64(end) + one, holidays=BANK))
    assert CAL.count(start, end, Unit.WORKING_DAYS) == (want, False)


@st.composite
def term_dates(draw: st.DrawFn) -> TermDates:
    """A random school year: terms with breaks inside them, gaps between them."""
    day = draw(st.dates(min_value=dt.date(2021, 8, 1), max_value=dt.date(2027, 8, 1)))
    periods = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        day += dt.timedelta(days=draw(st.integers(min_value=0, max_value=20)))
        length = draw(st.integers(min_value=10, max_value=90))
        periods.append(Period("term", day, day + dt.timedelta(days=length), "term"))
        brk = day + dt.timedelta(days=draw(st.integers(min_value=0, max_value=length)))
        periods.append(Period("break", brk, brk + dt.timedelta(days=draw(st.integers(0, 9))), "break"))
        day += dt.timedelta(days=length + 1)
    return TermDates(tuple(periods), "generated")


def _not_school(t: TermDates) -> list[np.datetime64]:
    """Every day the term dates close, as numpy holidays (independently of Calendar.is_school_day)."""
    out = []
    day = t.first
    while day <= t.last:
        in_term = any(p.start <= day <= p.end for p in t.periods if p.kind == "term")
        in_break = any(p.start <= day <= p.end for p in t.periods if p.kind == "break")
        if not in_term or in_break:
            out.append(np.datetime64(day))
        day += dt.timedelta(days=1)
    return out


@settings(max_examples=200, deadline=None)
@given(t=term_dates(), offset=st.integers(min_value=-30, max_value=200), n=st.integers(min_value=1, max_value=40))
def test_school_days_agree_with_numpy(t: TermDates, offset: int, n: int) -> None:
    cal = Calendar(t)
    start = t.first + dt.timedelta(days=offset)
    holidays = BANK + _not_school(t)
    want = np.busday_offset(np.datetime64(start), n, roll="backward", holidays=holidays).astype(dt.date)
    due, approximate = cal.offset(start, n, Unit.SCHOOL_DAYS)
    assert due == want
    counted = np.arange(np.datetime64(start) + 1, np.datetime64(want) + 1)
    outside = [d for d in counted.astype(dt.date) if not t.first <= d <= t.last and np.is_busday(d, holidays=BANK)]
    assert approximate == bool(outside), "approximate exactly when a counted working day lies outside the file"
    count, approx_count = cal.count(start, due, Unit.SCHOOL_DAYS)
    assert (count, approx_count) == (n, approximate)


def test_a_friday_before_a_bank_holiday_monday() -> None:
    friday = dt.date(2026, 8, 28)  # Late Summer bank holiday: Monday 31 August 2026
    assert CAL.add(friday, 2, Unit.WORKING_DAYS).at == dt.date(2026, 9, 2)
    assert CAL.add(friday, 2, Unit.CALENDAR_DAYS).at == dt.date(2026, 8, 30)
    assert CAL.add(dt.date(2026, 8, 29), 2, Unit.WORKING_DAYS).at == dt.date(2026, 9, 2), "a Saturday: Tue is day 1"
    assert CAL.add(dt.date(2026, 12, 24), 1, Unit.WORKING_DAYS).at == dt.date(2026, 12, 29), "Christmas 2026"
    assert CAL.add(dt.date(2027, 3, 25), 1, Unit.WORKING_DAYS).at == dt.date(2027, 3, 30), "Easter 2027"


def test_hours_run_from_the_start_of_the_day_in_england() -> None:
    due = CAL.add(dt.date(2026, 8, 28), 48, Unit.HOURS)
    assert due.at == dt.datetime(2026, 8, 29, 23, 0, tzinfo=dt.UTC), "midnight BST on the Sunday"
    sent = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)
    assert CAL.add(sent, 48, Unit.HOURS).at == dt.datetime(2026, 12, 3, 15, 30, tzinfo=dt.UTC)
    assert Due(dt.date(2026, 7, 1)).deadline() == dt.datetime(2026, 7, 2, tzinfo=ENGLAND)
    assert Due(dt.date(2026, 7, 1)).iso() == "2026-07-01" and due.iso() == "2026-08-29T23:00:00Z"


def test_term_dates_ics_and_csv_say_the_same() -> None:
    ics, csv = load_term_dates(EXAMPLES / "term-dates.ics"), load_term_dates(EXAMPLES / "term-dates.csv")
    assert [(p.kind, p.start, p.end) for p in ics.periods] == [(p.kind, p.start, p.end) for p in csv.periods]
    assert len(ics.periods) == 7, "the parents' evening is not a term or a break"
    cal = Calendar(ics)
    assert cal.is_school_day(dt.date(2026, 9, 3)) is True
    assert cal.is_school_day(dt.date(2026, 10, 27)) is False, "half term"
    assert cal.is_school_day(dt.date(2026, 12, 21)) is False, "between terms"
    assert cal.is_school_day(dt.date(2026, 12, 28)) is False, "a bank holiday, whatever the file says"
    assert cal.is_school_day(dt.date(2027, 9, 6)) is None, "beyond the file: unknown"
    # 14 school days from Friday 23 October 2026 skip the half term: 2-6, 9-13, 16-19 November
    assert cal.add(dt.date(2026, 10, 23), 14, Unit.SCHOOL_DAYS) == Due(dt.date(2026, 11, 19))
    assert Calendar().add(dt.date(2026, 10, 23), 14, Unit.SCHOOL_DAYS) == Due(dt.date(2026, 11, 12), True)


@pytest.mark.parametrize(("name", "text", "says"), [
    ("t.csv", "start,end\n2026-09-01,2026-12-01\n", "header kind,start,end"),
    ("t.csv", "kind,start,end,name\nterm,2026-09-01\n", "row 2: expected kind,start,end"),
    ("t.csv", "kind,start,end,name\nholidays,2026-09-01,2026-09-02,x\n", "row 2: kind 'holidays'"),
    ("t.csv", "kind,start,end,name\nterm,1 Sept 2026,2026-12-01,x\n", "row 2: start '1 Sept 2026'"),
    ("t.csv", "kind,start,end,name\nterm,2026-12-01,2026-09-01,x\n", "ends (2026-09-01) before it starts"),
    ("t.csv", "kind,start,end,name\n", "lists no terms or breaks"),
    ("t.ics", "not a calendar", "not a valid iCalendar file"),
    ("t.ics", ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Autumn term\nDTSTART:20260901T090000Z\nEND:VEVENT\n"
               "END:VCALENDAR\n"), "is a date and time"),
    ("t.txt", "kind,start,end\n", "neither .ics nor .csv"),
])
def test_bad_term_dates_files_say_where(tmp_path: Path, name: str, text: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TermDatesError) as info:
        load_term_dates(path)
    assert says in info.value.message and str(path) in info.value.message
    assert info.value.exit_code == ExitCode.CONFIG and info.value.code == "deadlines.term-dates" and info.value.hint


def test_a_missing_term_dates_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_term_dates(tmp_path / "nope.ics")
    assert info.value.code == "file.missing" and "term-dates file" in info.value.message
