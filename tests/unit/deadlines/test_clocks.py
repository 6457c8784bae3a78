"""Each rule of the policy on fictional children: a case that meets it, one that misses it by one day, and one
across a bank holiday or a term break (the example term dates in docs/examples/). Due dates are worked out by
hand in the comments; the calendar itself is checked against numpy in test_calendar.py."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from laxchange import samples
from laxchange.deadlines import (
    ENGLAND,
    Calendar,
    Deadline,
    LedgerEvent,
    Sources,
    default_policy,
    evaluate,
    load_policy,
    load_term_dates,
)
from tests.support.parties import REPO

EXAMPLES = REPO / "docs" / "examples"
TERMS = Calendar(load_term_dates(EXAMPLES / "term-dates.csv"))
PLAIN = Calendar()
REF = samples.education_record(11)["record_id"]
URN = samples.education_record(11)["school"]["urn"]


def record(**changes: Any) -> dict[str, Any]:
    """Seed 11 (a secondary school, one suspension) with `changes` as dotted paths: {"pep.pep_date": ...}."""
    rec = copy.deepcopy(samples.education_record(11))
    rec["exclusions"] = []
    rec["placement"].pop("emergency_placement", None)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = rec
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return rec


def clocks(*versions: dict[str, Any], now: dt.date, rule: str, cal: Calendar = TERMS, me: str | None = None,
           events: tuple[LedgerEvent, ...] = (), policy: Any = None) -> list[Deadline]:
    sources = Sources(me=me)
    for n, v in enumerate(versions):
        sources.add_document(v, origin=f"records/v{n}.json")
    assert sources.warnings == []
    sources.events.extend(events)
    at = dt.datetime.combine(now, dt.time(12), tzinfo=ENGLAND)
    found = evaluate(policy or default_policy(), sources.histories(), cal, now=at, me=sources.me)
    return [d for d in found if d.rule.id == rule]


def one(found: list[Deadline]) -> Deadline:
    assert len(found) == 1, [d.to_item() for d in found]
    return found[0]


def summary(d: Deadline) -> tuple[str, str, bool]:
    return d.due.iso(), d.state, d.late


# -- dt-informed: 2 working days (the guidance's 48 hours) ------------------------------------------------

FRIDAY = "2026-08-28"  # Monday 31 August 2026 is the Late Summer bank holiday: due Wednesday 2 September


def _placed_friday(**more: Any) -> dict[str, Any]:
    return record(placement__placement_start=FRIDAY, school__start_date=FRIDAY, **more)


def _delivered(at: str, party: str = f"URN:{URN}", event: str = "out.delivered") -> LedgerEvent:
    return LedgerEvent(dt.datetime.fromisoformat(at), event, "ab" * 16, party, "pep-transfer", REF)


def test_dt_informed_across_a_bank_holiday_monday() -> None:
    d = one(clocks(_placed_friday(), now=dt.date(2026, 9, 1), rule="dt-informed"))
    assert summary(d) == ("2026-09-02", "due-soon", False) and d.met is None
    assert one(clocks(_placed_friday(), now=dt.date(2026, 9, 3), rule="dt-informed")).state == "overdue"


def test_dt_informed_met_by_the_delivered_pep_and_late_by_a_day() -> None:
    on_time = one(clocks(_placed_friday(), now=dt.date(2026, 9, 3), rule="dt-informed",
                         events=(_delivered("2026-09-02T16:00:00+00:00"),)))
    assert summary(on_time) == ("2026-09-02", "met", False)
    assert on_time.met is not None and on_time.met.by == f"pep-transfer {'ab' * 16} to URN:{URN}: delivered receipt"
    late = one(clocks(_placed_friday(), now=dt.date(2026, 9, 4), rule="dt-informed",
                      events=(_delivered("2026-09-03T08:00:00+00:00"),)))
    assert summary(late) == ("2026-09-02", "met", True)
    # 23:30 UTC on the 2nd is already the 3rd in England (BST)
    assert one(clocks(_placed_friday(), now=dt.date(2026, 9, 4), rule="dt-informed",
                      events=(_delivered("2026-09-02T23:30:00+00:00"),))).late


def test_dt_informed_only_by_the_records_school() -> None:
    elsewhere = (_delivered("2026-09-01T10:00:00+00:00", party="URN:100002"),
                 _delivered("2026-09-01T10:00:00+00:00", event="out.sent"),
                 _delivered("2026-07-01T10:00:00+00:00"))  # eight weeks before: for something else
    assert one(clocks(_placed_friday(), now=dt.date(2026, 9, 3), rule="dt-informed", events=elsewhere)).state \
        == "overdue"
    # the school's own home: the PEP it imported is the Designated Teacher being told
    imported = LedgerEvent(dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC), "in.imported", "cd" * 16, "LA:318",
                           "pep-transfer", REF)
    assert one(clocks(_placed_friday(), now=dt.date(2026, 9, 3), rule="dt-informed", me=f"URN:{URN}",
                      events=(imported,))).state == "met"
    assert one(clocks(_placed_friday(), now=dt.date(2026, 9, 3), rule="dt-informed", me="URN:100002",
                      events=(imported,))).state == "overdue"


def test_dt_informed_is_not_kept_by_a_host_council_that_only_received_the_record() -> None:
    """The host council's virtual school is told of the placement; telling the Designated Teacher
    is the placing council's duty, met by receipts only it gets: at the host the clock could never
    be met (a walk-through found its run exiting 10 every night for it)."""
    def received(me: str, events: tuple[LedgerEvent, ...] = ()) -> list[Deadline]:
        sources = Sources(me=me)
        sources.add_document(_placed_friday(), origin="received/x/record.json",
                             at=dt.datetime(2026, 8, 28, 15, tzinfo=dt.UTC), transfer_id="ef" * 16)
        sources.events.extend(events)
        at = dt.datetime.combine(dt.date(2026, 9, 3), dt.time(12), tzinfo=ENGLAND)
        return [d for d in evaluate(default_policy(), sources.histories(), TERMS, now=at, me=sources.me)
                if d.rule.id == "dt-informed"]

    assert received("LA:881") == []
    # where it is ours the clock stays, overdue when nothing was delivered: the school's own home,
    # a council that sent the record on, and the placing council's own records folder
    assert one(received(f"URN:{URN}")).state == "overdue"
    sent = _delivered("2026-09-01T10:00:00+00:00", party="URN:100002", event="out.sent")
    assert one(received("LA:881", (sent,))).state == "overdue"
    assert one(clocks(_placed_friday(), now=dt.date(2026, 9, 3), rule="dt-informed", me="LA:881")).state \
        == "overdue"


def test_a_new_placement_supersedes_the_old_clock() -> None:
    old = record(as_of="2026-05-01", placement__placement_start="2026-05-01", school__start_date="2026-05-01")
    new = _placed_friday(as_of="2026-08-28")
    assert [d.start.day for d in clocks(old, new, now=dt.date(2026, 9, 3), rule="dt-informed")] == [
        dt.date(2026, 8, 28)]


# -- pep-emergency: 10 (calendar) days -------------------------------------------------------------------

def _emergency(pep: str, start: str = "2026-12-18", emergency: bool | None = True) -> dict[str, Any]:
    return record(placement__placement_start=start, placement__emergency_placement=emergency, pep__pep_date=pep,
                  pep__next_review_due="2027-03-01", as_of=pep)


def test_pep_emergency_counts_calendar_days_over_christmas() -> None:
    # 18 December + 10 calendar days = 28 December (a bank holiday, the substitute for Boxing Day: still due)
    assert summary(one(clocks(_emergency("2026-12-28"), now=dt.date(2027, 1, 5), rule="pep-emergency"))) == (
        "2026-12-28", "met", False)
    assert summary(one(clocks(_emergency("2026-12-29"), now=dt.date(2027, 1, 5), rule="pep-emergency"))) == (
        "2026-12-28", "met", True)
    assert one(clocks(_emergency("2026-12-10"), now=dt.date(2026, 12, 29), rule="pep-emergency")).state == "overdue"
    assert clocks(_emergency("2026-12-28", emergency=False), now=dt.date(2027, 1, 5), rule="pep-emergency") == []
    assert clocks(_emergency("2026-12-28", emergency=None), now=dt.date(2027, 1, 5), rule="pep-emergency") == []


@pytest.mark.parametrize("rule", ["pep-emergency", "school-place"])
def test_the_placing_councils_clocks_are_not_kept_by_those_that_only_received_the_record(rule: str) -> None:
    """Initiating the PEP after an emergency placement, and finding a school place, are the placing
    council's to do (policy `duty`): a school or host council that only received the record cannot
    meet them (a walk-through found both their runs exiting 10 each night on the VSH's clock)."""
    placeless = {"since": "2026-11-02", "interim_provision": "tuition at home"}
    rec = _emergency("2026-12-10") if rule == "pep-emergency" else record(as_of="2026-12-01", school=None,
                                                                          no_school_place=placeless)

    def received(me: str, events: tuple[LedgerEvent, ...] = ()) -> list[Deadline]:
        sources = Sources(me=me)
        sources.add_document(rec, origin="received/x/record.json", at=dt.datetime(2026, 12, 11, 15, tzinfo=dt.UTC),
                             transfer_id="ef" * 16)
        assert sources.warnings == []
        sources.events.extend(events)
        at = dt.datetime.combine(dt.date(2026, 12, 29), dt.time(12), tzinfo=ENGLAND)
        return [d for d in evaluate(default_policy(), sources.histories(), TERMS, now=at, me=sources.me)
                if d.rule.id == rule]

    placing = f"LA:{rec['placement']['placing_la']}"
    assert placing != "LA:881"
    assert received(f"URN:{URN}") == [] and received("LA:881") == []
    # sending something about the child makes no one its placing council: the school's exclusion
    # notice, the host passing the record on (review: the first version counted any send)
    notice = LedgerEvent(dt.datetime(2026, 12, 14, 10, tzinfo=dt.UTC), "out.sent", "ab" * 16, "LA:318",
                         "exclusion-notice", REF)
    assert received(f"URN:{URN}", (notice,)) == []
    assert received("LA:881", (_delivered("2026-12-11T10:00:00+00:00", event="out.sent"),)) == []
    # the placing council's (the record says which), wherever it holds the record; and with no party given
    assert one(received(placing)).state == "overdue"
    assert one(clocks(rec, now=dt.date(2026, 12, 29), rule=rule, me=placing)).state == "overdue"
    assert one(clocks(rec, now=dt.date(2026, 12, 29), rule=rule)).state == "overdue"


# -- pep-new-school: 14 school days ----------------------------------------------------------------------

def _joined(pep: str) -> tuple[dict[str, Any], dict[str, Any]]:
    before = record(as_of="2026-10-23", school__start_date="2026-10-23", pep__pep_date="2026-09-10",
                    pep__next_review_due="2026-12-10")
    after = record(as_of=pep, school__start_date="2026-10-23", pep__pep_date=pep, pep__next_review_due="2027-02-01")
    return before, after


def test_pep_new_school_skips_the_half_term() -> None:
    # joined Friday 23 October 2026; half term 26-30 October; 14 school days: 2-6, 9-13, 16-19 November
    met = one(clocks(*_joined("2026-11-19"), now=dt.date(2026, 11, 25), rule="pep-new-school"))
    assert summary(met) == ("2026-11-19", "met", False) and not met.approximate
    assert summary(one(clocks(*_joined("2026-11-20"), now=dt.date(2026, 11, 25), rule="pep-new-school"))) == (
        "2026-11-19", "met", True)
    assert one(clocks(_joined("x")[0], now=dt.date(2026, 11, 20), rule="pep-new-school")).state == "overdue"
    # without term dates: working days, marked approximate (the half term counted as school days)
    rough = one(clocks(*_joined("2026-11-19"), now=dt.date(2026, 11, 25), rule="pep-new-school", cal=PLAIN))
    assert rough.due.iso() == "2026-11-12" and rough.approximate and rough.late


# -- pep-review: on the date the PEP sets, met by a later PEP -----------------------------------------------

def _reviewed(later: str | None, due: str = "2026-12-10") -> list[dict[str, Any]]:
    first = record(as_of="2026-09-10", pep__pep_date="2026-09-10", pep__next_review_due=due)
    if later is None:
        return [first]
    return [first, record(as_of=later, pep__pep_date=later, pep__next_review_due="2027-03-10")]


def test_pep_review_on_the_date_the_pep_sets() -> None:
    found = clocks(*_reviewed("2026-12-10"), now=dt.date(2026, 12, 11), rule="pep-review")
    assert [summary(d) for d in found] == [("2026-12-10", "met", False), ("2027-03-10", "open", False)]
    late = clocks(*_reviewed("2026-12-11"), now=dt.date(2026, 12, 12), rule="pep-review")[0]
    assert summary(late) == ("2026-12-10", "met", True)
    assert summary(one(clocks(*_reviewed(None), now=dt.date(2026, 12, 11), rule="pep-review"))) == (
        "2026-12-10", "overdue", False)
    assert one(clocks(*_reviewed(None), now=dt.date(2026, 12, 3), rule="pep-review")).state == "due-soon"
    assert one(clocks(*_reviewed(None), now=dt.date(2026, 12, 2), rule="pep-review")).state == "open"
    # on a bank holiday it stays where the PEP put it (a calendar date, not a count)
    assert one(clocks(*_reviewed(None, due="2026-12-25"), now=dt.date(2026, 12, 1), rule="pep-review")).due.iso() \
        == "2026-12-25"


# -- pep-review-suspensions: 5 school days after the third suspension in a school year ----------------------

def _suspension(start: str, sessions: int = 2, **more: Any) -> dict[str, Any]:
    return {"kind": "suspension", "start_date": start, "sessions": sessions, "reason_code": "PD", **more}


def _suspended(*starts: str, pep: str = "2026-09-10") -> dict[str, Any]:
    return record(as_of="2026-11-20", pep__pep_date=pep, pep__next_review_due="2027-01-15",
                  exclusions=[_suspension(s) for s in starts])


def test_third_suspension_raises_a_pep_review_across_the_half_term() -> None:
    # third on Thursday 22 October; 5 school days: Friday 23, then 2-5 November (half term 26-30 October)
    three = ("2026-09-14", "2026-10-05", "2026-10-22")
    d = one(clocks(_suspended(*three), now=dt.date(2026, 11, 4), rule="pep-review-suspensions"))
    assert summary(d) == ("2026-11-05", "due-soon", False) and d.start.day == dt.date(2026, 10, 22)
    termly = one(clocks(_suspended(*three), now=dt.date(2026, 11, 4), rule="pep-review"))
    assert d.due.deadline() < termly.due.deadline(), "the review comes sooner than the termly one"
    assert summary(one(clocks(_suspended(*three, pep="2026-11-05"), now=dt.date(2026, 11, 20),
                              rule="pep-review-suspensions"))) == ("2026-11-05", "met", False)
    assert summary(one(clocks(_suspended(*three, pep="2026-11-06"), now=dt.date(2026, 11, 20),
                              rule="pep-review-suspensions"))) == ("2026-11-05", "met", True)
    assert one(clocks(_suspended(*three), now=dt.date(2026, 11, 6), rule="pep-review-suspensions")).state \
        == "overdue"
    assert clocks(_suspended(*three[:2]), now=dt.date(2026, 11, 6), rule="pep-review-suspensions") == []
    # two in 2025/26 and one in 2026/27 are not three in a school year
    assert clocks(_suspended("2026-06-01", "2026-07-01", "2026-09-14"), now=dt.date(2026, 11, 6),
                  rule="pep-review-suspensions") == []


# -- school-place: 20 working days -------------------------------------------------------------------------

def _placeless(found_on: str | None, school_start: str = "2027-01-18") -> list[dict[str, Any]]:
    without = record(as_of="2026-12-14", school=None, no_school_place={"since": "2026-12-14",
                                                                        "interim_provision": "tuition at home"})
    if found_on is None:
        return [without]
    return [without, record(as_of=found_on, school__start_date=school_start)]


def test_school_place_over_christmas_and_new_year() -> None:
    # from Monday 14 December 2026, 20 working days skip 25 and 28 December and 1 January: 14 January 2027
    assert summary(one(clocks(*_placeless("2027-01-14"), now=dt.date(2027, 1, 20), rule="school-place"))) == (
        "2027-01-14", "met", False)
    assert summary(one(clocks(*_placeless("2027-01-15"), now=dt.date(2027, 1, 20), rule="school-place"))) == (
        "2027-01-14", "met", True)
    assert one(clocks(*_placeless(None), now=dt.date(2027, 1, 15), rule="school-place")).state == "overdue"
    assert one(clocks(*_placeless("2027-01-10", school_start="2026-11-01"), now=dt.date(2027, 1, 15),
                      rule="school-place")).state == "overdue", "a school from before is not a new place"


# -- reintegration-meeting: 5 school days from the return -------------------------------------------------

def _reintegration(meeting: str | None, phase: str = "primary", sessions: int = 2) -> dict[str, Any]:
    ex = _suspension("2026-10-22", sessions, **({"reintegration_meeting": meeting} if meeting else {}))
    return record(school__phase=phase, exclusions=[ex])


def test_reintegration_meeting_after_the_half_term() -> None:
    # a one-day suspension on Thursday 22 October: back Friday 23; 5 school days after: 2-6 November
    d = one(clocks(_reintegration("2026-11-06"), now=dt.date(2026, 11, 10), rule="reintegration-meeting"))
    assert summary(d) == ("2026-11-06", "met", False) and d.start.day == dt.date(2026, 10, 23)
    assert summary(one(clocks(_reintegration("2026-11-09"), now=dt.date(2026, 11, 10),
                              rule="reintegration-meeting"))) == ("2026-11-06", "met", True)
    assert one(clocks(_reintegration(None), now=dt.date(2026, 11, 9), rule="reintegration-meeting")).state \
        == "overdue"
    # a secondary school: only for a suspension of more than 5 school days (10 sessions)
    assert clocks(_reintegration(None, "secondary", 10), now=dt.date(2026, 11, 9), rule="reintegration-meeting") == []
    # 12 sessions from Thursday 22 October: 22, 23 October, 2-5 November; back Friday 6; due Friday 13 November
    assert one(clocks(_reintegration(None, "secondary", 12), now=dt.date(2026, 11, 9),
                      rule="reintegration-meeting")).due.iso() == "2026-11-13"


# -- governors-meeting: 15 school days ----------------------------------------------------------------------

def _excluded(meeting: str | None) -> dict[str, Any]:
    ex = {"kind": "permanent-exclusion", "start_date": "2026-12-10", "reason_code": "PA",
          **({"governors_meeting": meeting} if meeting else {})}
    return record(exclusions=[ex])


def test_governors_meeting_over_the_christmas_holiday() -> None:
    # from Thursday 10 December: 11, 14-18 December (6), then the spring term: 5-8 (10), 11-15 January (15)
    assert summary(one(clocks(_excluded("2027-01-15"), now=dt.date(2027, 1, 20), rule="governors-meeting"))) == (
        "2027-01-15", "met", False)
    assert summary(one(clocks(_excluded("2027-01-18"), now=dt.date(2027, 1, 20), rule="governors-meeting"))) == (
        "2027-01-15", "met", True)
    assert one(clocks(_excluded(None), now=dt.date(2027, 1, 18), rule="governors-meeting")).state == "overdue"
    assert one(clocks(_excluded(None), now=dt.date(2027, 1, 15), rule="governors-meeting")).state == "due-soon"


# -- a local rule: Hertfordshire's first PEP within 14 working days -----------------------------------------

@pytest.mark.parametrize(("pep", "state", "late"), [("2026-09-10", "met", False), ("2026-09-11", "met", True)])
def test_a_local_rule_first_pep_over_the_bank_holiday(pep: str, state: str, late: bool) -> None:
    # looked after from Thursday 20 August 2026: 21, 24-28 August, (31st a bank holiday), 1-4, 7-10 September
    herts = load_policy(EXAMPLES / "deadline-policy-hertfordshire.json")
    rec = record(placement__period_of_care_start="2026-08-20", pep__pep_date=pep, pep__next_review_due="2026-12-01")
    d = one(clocks(rec, now=dt.date(2026, 9, 20), rule="pep-first", policy=herts))
    assert summary(d) == ("2026-09-10", state, late)
    assert clocks(rec, now=dt.date(2026, 9, 20), rule="pep-first") == [], "not a default rule"


def test_items_carry_the_report_contract_and_no_personal_data() -> None:
    rec = _placed_friday()
    d = one(clocks(rec, now=dt.date(2026, 9, 3), rule="dt-informed"))
    item = d.to_item()
    assert list(item)[:7] == ["rule", "title", "record_ref", "due", "state", "met_by", "source"]
    assert item["record_ref"] == REF and item["state"] == "overdue" and item["met_by"] is None
    text = repr(item)
    for personal in (rec["child"]["legal_name"]["family"], rec["child"]["upn"], rec["child"]["date_of_birth"]):
        assert personal not in text
    again = one(clocks(rec, now=dt.date(2026, 9, 10), rule="dt-informed"))
    assert again.uid == d.uid and again.uid != one(clocks(record(), now=dt.date(2026, 9, 3), rule="dt-informed")).uid


def test_record_facts_keep_the_placing_council_and_read_a_cache_from_before_it() -> None:
    """The clocks cache keeps `placement.placing_la` now; an entry written before has three
    placement facts, and reads with none (the records folder then says whose the record is)."""
    from laxchange.deadlines.facts import RecordFacts
    from laxchange.models.record import EducationRecord

    rec = samples.education_record(5)
    facts = RecordFacts.of(EducationRecord.model_validate(rec))
    assert facts.placement.placing_la == rec["placement"]["placing_la"]
    assert RecordFacts.from_json(facts.to_json()) == facts
    old = facts.to_json()
    old["placement"] = old["placement"][:3]
    assert RecordFacts.from_json(old).placement.placing_la is None
