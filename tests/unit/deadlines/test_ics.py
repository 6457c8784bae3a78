"""The calendar file and the run report's section, from clocks evaluated in memory."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import icalendar

from laxchange import samples
from laxchange.deadlines import ENGLAND, Calendar, Result, Settings, Sources, evaluate, load_policy, report, to_ics
from laxchange.exchange.run import RunReport

NOW = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)


def _sources() -> Sources:
    rec = copy.deepcopy(samples.education_record(11))
    rec["placement"].update(placement_start="2026-08-28", emergency_placement=True)
    rec["school"]["start_date"] = "2026-08-28"
    rec["pep"].update(pep_date="2026-08-01", next_review_due="2026-08-31")
    s = Sources()
    s.add_document(rec, origin="records/a.json")
    return s


def test_a_deadline_in_hours_is_a_timed_event_and_days_are_all_day(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"format": "laxchange-deadline-policy/1", "name": "Clock hours (fictional)",
                                  "rules": [{"id": "dt-informed", "length": 48, "unit": "hours"}]}))
    found = evaluate(load_policy(policy), _sources().histories(), Calendar(), now=NOW)
    events = {str(e["CATEGORIES"].cats[1]): e
              for e in icalendar.Calendar.from_ical(to_ics(found, now=NOW, name="t")).walk("VEVENT")}
    # 48 hours from the start of Friday 28 August in England (BST): 23:00 UTC on Saturday 29th
    assert events["dt-informed"].decoded("DTSTART") == dt.datetime(2026, 8, 29, 23, 0, tzinfo=dt.UTC)
    assert events["pep-emergency"].decoded("DTSTART") == dt.date(2026, 9, 7)
    assert events["pep-emergency"].decoded("DTEND") == dt.date(2026, 9, 8)
    assert str(events["dt-informed"]["SUMMARY"]).startswith("OVERDUE: Designated Teacher informed")


def test_the_run_report_section_and_what_makes_the_run_need_a_look() -> None:
    s = _sources()
    found = evaluate(load_policy(None), s.histories(), Calendar(), now=NOW)
    section = report(Result(found, load_policy(None), Calendar(), Settings(), NOW))
    assert set(section) == {"overdue", "due_soon", "met", "approximate"}
    assert [d["rule"] for d in section["overdue"]] == ["pep-review"]  # due 31 August
    assert [d["rule"] for d in section["due_soon"]] == ["dt-informed", "pep-emergency"]
    assert section["met"] == [] and section["approximate"] is False, "pep-new-school is open: not in the report"
    run = RunReport(started="2026-09-01T09:00:00Z")
    assert run.ok and run.to_dict()["deadlines"] == {"overdue": [], "due_soon": [], "met": [], "approximate": False}
    run.deadlines = section
    assert not run.ok and run.to_dict()["deadlines"] is section
    run.deadlines_exit = False
    assert run.ok, "run_exit_on_overdue false: reported, not a reason to exit 10"
    run.deadlines = {**section, "overdue": []}
    run.deadlines_exit = True
    assert run.ok, "due soon is news, not a fault"
    assert ENGLAND.key == "Europe/London"
