"""`laxchange deadlines` and `deadlines policy` as a VSH runs them, and every way to get them wrong:
a clear message, the documented exit code, no traceback, no partial output, nothing written."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import icalendar
import pytest
from click.testing import CliRunner, Result

from laxchange import samples
from laxchange.cli import main
from laxchange.errors import ExitCode
from laxchange.exchange.notify import build_exclusion_notice
from tests.support.parties import REPO

EXAMPLES = REPO / "docs" / "examples"


def lax(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args])


def _record(seed: int, **pep: str) -> dict[str, Any]:
    rec = copy.deepcopy(samples.education_record(seed))
    rec["exclusions"] = []
    rec["placement"].update(placement_start="2026-08-28", period_of_care_start="2026-01-05")
    rec["school"]["start_date"] = "2026-08-28"
    rec["pep"].update({"pep_date": "2026-09-01", "next_review_due": "2026-12-10", **pep})
    return rec


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    (root / "records").mkdir(parents=True)
    (root / "records" / "a.json").write_text(json.dumps(_record(1)))
    (root / "records" / "b.json").write_text(json.dumps(_record(2, next_review_due="2027-01-20")))
    (root / "config.json").write_text(json.dumps({"deadlines": {"records": "records",
                                                                "term_dates": str(EXAMPLES / "term-dates.csv")}}))
    return root


def _json(r: Result) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_lists_filters_and_as_of(home: Path) -> None:
    a, b = _record(1)["record_id"], _record(2)["record_id"]
    every = _json(lax(home, "--json", "deadlines", "--as-of", "2026-12-07"))
    assert every["ok"] and every["term_dates"] and not every["approximate"] and every["warnings"] == []
    by = {(d["record_ref"], d["rule"]): d["state"] for d in every["deadlines"]}
    assert by[(a, "pep-review")] == "due-soon" and by[(b, "pep-review")] == "open"
    assert by[(a, "pep-new-school")] == "met", "a PEP dated 1 September, on or after joining on 28 August"
    assert every["counts"] == {s: sum(v == s for v in by.values()) for s in ("overdue", "due-soon", "met", "open")}
    soon = _json(lax(home, "--json", "deadlines", "--as-of", "2026-12-07", "--due-within", "7d"))
    assert {(d["record_ref"], d["rule"]) for d in soon["deadlines"]} == {
        k for k, v in by.items() if v in ("due-soon", "overdue")}
    edge = _json(lax(home, "--json", "deadlines", "--as-of", "2026-12-07", "--due-within", "3d", "--record", a))
    assert [d["due"] for d in edge["deadlines"] if d["state"] != "overdue"] == ["2026-12-10"], "3 days is within 3d"
    assert [d for d in _json(lax(home, "--json", "deadlines", "--as-of", "2026-12-07", "--due-within", "2d",
                                 "--record", a))["deadlines"] if d["state"] != "overdue"] == []
    later = _json(lax(home, "--json", "deadlines", "--as-of", "2026-12-11", "--overdue"))
    assert [(d["record_ref"], d["rule"]) for d in later["deadlines"] if d["rule"] == "pep-review"] == [
        (a, "pep-review")]
    assert {d["state"] for d in later["deadlines"]} == {"overdue"}
    one = _json(lax(home, "--json", "deadlines", "--record", b, "--as-of", "2026-12-11"))
    assert {d["record_ref"] for d in one["deadlines"]} == {b}
    text = lax(home, "deadlines", "--as-of", "2026-12-11", "--record", a)
    assert text.exit_code == 0 and "OVERDUE   2026-12-10" in text.output and a in text.output
    assert "met by PEP dated 2026-09-01" in text.output
    none = lax(home, "deadlines", "--record", "f" * 32)
    assert none.exit_code == 0 and "no deadlines match" in none.output


def test_without_term_dates_school_days_are_approximate(home: Path) -> None:
    (home / "config.json").write_text(json.dumps({"deadlines": {"records": "records"}}))
    data = _json(lax(home, "--json", "deadlines", "--as-of", "2026-09-01"))
    assert data["approximate"] and not data["term_dates"]
    new_school = [d for d in data["deadlines"] if d["rule"] == "pep-new-school"]
    assert new_school and all(d["approximate"] for d in new_school)
    text = lax(home, "deadlines", "--as-of", "2026-09-01")
    assert "no term dates: school days are counted as working days" in text.output and "~" in text.output


def test_ics_is_pseudonymous_and_parses_back(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "cal.ics"
    r = lax(home, "--json", "deadlines", "--as-of", "2026-12-11", "--overdue", "--ics", str(out))
    assert r.exit_code == 0, r.output
    data = _json(r)
    events = list(icalendar.Calendar.from_ical(out.read_bytes()).walk("VEVENT"))
    assert data["ics"]["events"] == len(events) == len(data["deadlines"]) > 0
    assert {str(e["UID"]) for e in events} == {d["uid"] for d in data["deadlines"]}
    assert all(str(e["SUMMARY"]).startswith("OVERDUE: ") for e in events)
    for rec in (_record(1), _record(2)):
        for personal in (rec["child"]["legal_name"]["family"], rec["child"]["upn"]):
            assert personal not in out.read_text()


def test_policy_in_force_text_and_json(home: Path) -> None:
    text = lax(home, "deadlines", "policy")
    assert text.exit_code == 0, text.output
    assert "dt-informed: Designated Teacher informed" in text.output and "within 2 working days" in text.output
    assert "48 hours" in text.output and "seed 000 §3.1, §5.1" in text.output
    assert "term dates: " + str(EXAMPLES / "term-dates.csv") in text.output
    local = _json(lax(home, "--json", "deadlines", "policy", "--policy",
                      str(EXAMPLES / "deadline-policy-hertfordshire.json")))
    origins = {r["id"]: r["origin"] for r in local["rules"]}
    assert origins["pep-first"] == "local" and origins["pep-new-school"] == "tightened"
    assert origins["dt-informed"] == "default" and set(local["starts"]) >= {"looked-after", "third-suspension"}
    marked = lax(home, "deadlines", "policy", "--policy", str(EXAMPLES / "deadline-policy-hertfordshire.json"))
    assert "pep-first [local rule]: First PEP in place" in marked.output


def test_a_notice_that_matches_no_record_is_kept_under_its_transfer(home: Path) -> None:
    rec = _record(1)
    child = {"given_name": "Ashley", "family_name": "Fictional", "date_of_birth": "2014-02-03"}
    notice = build_exclusion_notice(school_urn="123456", school_name="Example School (fictional)",
                                    responsible_la="919", child=child, reported_by=rec["pep"]["vsh_contact"],
                                    facts={"kind": "permanent-exclusion", "start_date": "2026-11-02",
                                           "reason_code": "PA", "notified_parents_carers": True})
    tid = "ab" * 16
    folder = home / "received" / tid
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(notice))
    (folder / "manifest.json").write_text(json.dumps({"transfer_id": tid, "message_type": "exclusion-notice",
                                                      "received_at": "2026-11-03T09:00:00Z", "files": []}))
    data = _json(lax(home, "--json", "deadlines", "--record", f"transfer:{tid}", "--as-of", "2026-11-04"))
    assert [(d["rule"], d["due"]) for d in data["deadlines"]] == [("governors-meeting", "2026-11-23")]
    assert "Ashley" not in json.dumps(data) and "Fictional" not in json.dumps(data)


def test_a_broken_record_is_a_warning_not_a_failure(home: Path) -> None:
    (home / "records" / "broken.json").write_text(json.dumps({"schema": _record(1)["schema"], "record_id": "x"}))
    (home / "records" / "not-json.json").write_text("{")
    r = lax(home, "deadlines")
    assert r.exit_code == 0
    assert "warning: records/broken.json: not a valid education record" in r.stderr
    assert "warning: records/not-json.json: cannot be read" in r.stderr
    assert len(_json(lax(home, "--json", "deadlines"))["warnings"]) == 2


@pytest.mark.parametrize(("args", "code", "error", "says"), [
    (["--due-within", "soon"], ExitCode.USAGE, "usage.bad-value", "--due-within 'soon' is not a period"),
    (["--record", "Jane Doe"], ExitCode.USAGE, "usage.bad-value", "is not a record reference"),
    (["--as-of", "next week"], ExitCode.USAGE, "usage.bad-value", "--as-of 'next week' is not an ISO date"),
    (["--records", "nowhere"], ExitCode.CONFIG, "deadlines.records", "records folder nowhere does not exist"),
    (["--term-dates", "missing.ics"], ExitCode.CONFIG, "file.missing", "term-dates file missing.ics"),
])
def test_bad_options_are_refused_cleanly(home: Path, tmp_path: Path, args: list[str], code: int, error: str,
                                         says: str) -> None:
    out = tmp_path / "never.ics"
    r = lax(home, "--json", "deadlines", "--ics", str(out), *args)
    assert r.exit_code == code, r.output
    err = _json(r)
    assert err["ok"] is False and err["error"] == error and says in err["message"] and err["hint"]
    assert not out.exists(), "nothing written"
    assert "Traceback" not in r.output


def test_a_looser_local_policy_is_refused_with_where_and_why(home: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"format": "laxchange-deadline-policy/1", "name": "Testshire",
                                  "rules": [{"id": "pep-new-school", "length": 20}]}))
    cfg = json.loads((home / "config.json").read_text())
    cfg["deadlines"]["policy"] = str(policy)
    (home / "config.json").write_text(json.dumps(cfg))
    for args in (["deadlines"], ["deadlines", "policy"]):
        r = lax(home, *args)
        assert r.exit_code == ExitCode.CONFIG
        assert f"deadline policy {policy}, rule 1 (pep-new-school): rule pep-new-school would be looser" in r.stderr
        assert r.stdout == "", "no partial output"
    status = lax(home, "--json", "status")
    assert status.exit_code == 0, "status still shows the transfers"
    assert _json(status)["deadlines"] is None, "the morning report says: deadlines not computed"
    assert _json(status)["deadlines_error"]["error"] == "deadlines.policy-looser"
    assert "deadlines: cannot be worked out: deadline policy" in lax(home, "status").stderr


@pytest.mark.parametrize(("section", "says"), [
    ({"colour": "red"}, "deadlines.colour is not a setting"),
    ({"records": 3}, "deadlines.records must be a path"),
    ({"due_soon_days": "7"}, "due_soon_days must be a whole number of days"),
    ({"run_exit_on_overdue": "no"}, "run_exit_on_overdue must be true or false"),
])
def test_bad_settings_in_config_json(home: Path, section: dict[str, Any], says: str) -> None:
    (home / "config.json").write_text(json.dumps({"deadlines": section}))
    r = lax(home, "--json", "deadlines")
    assert r.exit_code == ExitCode.CONFIG
    assert _json(r)["error"] == "config.invalid" and says in _json(r)["message"]


def test_status_shows_a_deadlines_line(home: Path) -> None:
    r = lax(home, "status")
    assert r.exit_code == 0 and "no transfers yet" in r.stdout
    assert "deadlines: " in r.stderr and "`laxchange deadlines` lists them" in r.stderr
    data = _json(lax(home, "--json", "status"))
    assert set(data["deadlines"]) >= {"overdue", "due_soon", "met", "approximate"}, "the run report's shape"
    assert set(data["deadlines"]["counts"]) == {"overdue", "due-soon", "met", "open"}
    assert sum(data["deadlines"]["counts"].values()) == len(_json(lax(home, "--json", "deadlines"))["deadlines"])


def test_a_home_that_does_not_exist(tmp_path: Path) -> None:
    r = lax(tmp_path / "nope", "--json", "deadlines")
    assert r.exit_code == ExitCode.CONFIG and _json(r)["error"] == "home.missing"
