"""The statutory clock end to end (issue 13), as a VSH and a Designated Teacher would run it.

Council A (the placing VSH, LA:919) and school B (URN:123456) over the embedded SFTP server. A keeps
its records in a folder named in config.json, with the council's term dates. A fictional child is
placed (an emergency) on Friday 28 August 2026, before the Late Summer bank holiday Monday, and joins
B the same day: `deadlines` shows the 48-hour Designated Teacher deadline on Wednesday 2 September,
the emergency PEP on 7 September and the new-school PEP on 22 September (14 school days of the autumn
term, which starts on 3 September). A sends the PEP, B imports it and acknowledges it: the first
deadline is met, on both sides. The PEP's review was due on 1 October: `deadlines --overdue` and the
nightly run list it, and the run exits 10. B reports three suspensions: the third raises a PEP review
deadline. `deadlines --ics` writes a calendar that parses back, with pseudonymous references only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import icalendar
import pytest
from click.testing import CliRunner, Result

from laxchange import samples
from laxchange.cli import main
from laxchange.errors import ExitCode
from tests.support.drop_server import two_homes
from tests.support.parties import PASSPHRASE, REPO, Party

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
A, B = "LA:919", "URN:123456"
TERMS = REPO / "docs" / "examples" / "term-dates.ics"


def lax(p: Party, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(p.home.root), *args], env=ENV)


def child() -> dict[str, Any]:
    rec = samples.education_record(21)
    rec["as_of"] = "2026-08-28"
    rec["placement"].update(placing_la="919", placement_start="2026-08-28", emergency_placement=True)
    rec["school"].update(urn="123456", start_date="2026-08-28", phase="secondary")
    rec["pep"].update(pep_date="2026-08-10", next_review_due="2026-10-01")
    rec["exclusions"] = []
    return rec


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Party, Party, dict[str, Any]]]:
    with two_homes(tmp_path) as w:
        records = w.a.home.root / "records"
        records.mkdir()
        rec = child()
        (records / "child-1.json").write_text(json.dumps(rec))
        w.a.home.config_file.write_text(json.dumps({"deadlines": {"records": "records", "term_dates": str(TERMS)}}))
        yield w.a, w.b, rec


def _deadlines(p: Party, *args: str) -> dict[str, Any]:
    r = lax(p, "--json", "deadlines", *args)
    assert r.exit_code == 0, r.output
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def _by_rule(data: dict[str, Any], ref: str) -> dict[str, dict[str, Any]]:
    return {d["rule"]: d for d in data["deadlines"] if d["record_ref"] == ref}


def test_the_statutory_clock_from_placement_to_suspensions(homes: tuple[Party, Party, dict[str, Any]],
                                                          tmp_path: Path) -> None:
    a, b, rec = homes
    ref = rec["record_id"]

    # the placement: Friday 28 August 2026, bank holiday on Monday 31st; autumn term from 3 September
    got = _by_rule(_deadlines(a), ref)
    assert {k: (v["due"], v["state"]) for k, v in got.items()} == {
        "dt-informed": ("2026-09-02", "overdue"),        # 2 working days: Tue 1, Wed 2 September
        "pep-emergency": ("2026-09-07", "overdue"),      # 10 calendar days
        "pep-new-school": ("2026-09-22", "overdue"),     # 14 school days: 3-4, 7-11, 14-18, 21-22 September
        "pep-review": ("2026-10-01", "overdue"),         # the review date the PEP set
    }
    assert not any(d["approximate"] for d in got.values()), "the term dates cover these days"
    text = lax(a, "deadlines", "--record", ref)
    assert text.exit_code == 0 and "2026-09-02" in text.output and "dt-informed" in text.output

    # A sends the PEP to the school; B imports it and acknowledges it; A takes the receipt
    path = tmp_path / "record.json"
    path.write_text(json.dumps(rec))
    r = lax(a, "--json", "notify-placement", str(path), "--to", B, "--reason", "new-placement",
            "--purpose", "statutory duty: new placement")
    assert r.exit_code == 0, r.output
    tid = json.loads(r.stdout)["packages"][0]["transfer_id"]
    assert lax(b, "import").exit_code == 0
    assert lax(a, "import").exit_code == 0
    got = _by_rule(_deadlines(a), ref)
    assert got["dt-informed"]["state"] == "met" and tid in got["dt-informed"]["met_by"]
    assert got["dt-informed"]["late"] is True, "sent in December for a placement in August"
    assert got["pep-review"]["state"] == "overdue", "delivering the PEP is not reviewing it"
    # the school sees its own side: the PEP it imported is the Designated Teacher being told
    school = _by_rule(_deadlines(b), ref)
    assert school["dt-informed"]["state"] == "met" and "imported here" in school["dt-informed"]["met_by"]

    # the PEP review past due: in `deadlines --overdue`, and in the nightly run (exit 10)
    overdue = _deadlines(a, "--overdue")
    assert {d["rule"] for d in overdue["deadlines"]} == {"pep-emergency", "pep-new-school", "pep-review"}
    run = lax(a, "--json", "run", "--timeout", "2", "--retries", "1")
    assert run.exit_code == ExitCode.PARTIAL, run.output
    report = json.loads(run.stdout)
    assert set(report["deadlines"]) == {"overdue", "due_soon", "met", "approximate"}
    review = next(d for d in report["deadlines"]["overdue"] if d["rule"] == "pep-review")
    assert {k: review[k] for k in ("record_ref", "due", "state", "met_by")} == {
        "record_ref": ref, "due": "2026-10-01", "state": "overdue", "met_by": None}
    assert review["title"] and review["source"] == "seed 000 §2, §9; seed 003"
    assert [d["rule"] for d in report["deadlines"]["met"]] == ["dt-informed"], "met within the last 7 days"
    assert report["failures"] == [] and report["overdue"] == [], "only the statutory clock needs a look"
    human = lax(a, "run", "--timeout", "2", "--retries", "1")
    assert human.exit_code == ExitCode.PARTIAL
    assert f"DEADLINE    PEP reviewed (every school term) for record {ref}: due 2026-10-01, OVERDUE" in human.output
    status = lax(a, "--json", "status")
    assert json.loads(status.stdout)["deadlines"]["counts"]["overdue"] == 3
    assert "deadlines: 3 overdue" in lax(a, "status").output

    # three suspensions reported by the school: the third raises a PEP review (5 school days after it)
    received = b.home.root / "received" / tid / "record.json"
    assert _by_rule(_deadlines(a), ref).get("pep-review-suspensions") is None
    for start in ("2026-11-02", "2026-11-09", "2026-11-16"):
        r = lax(b, "notify-exclusion", str(received), "--kind", "suspension", "--start", start, "--sessions", "2",
                "--reason-code", "PD", "--parents-carers-notified")
        assert r.exit_code == 0, r.output
    assert lax(a, "import").exit_code == 0
    got = _by_rule(_deadlines(a), ref)
    assert (got["pep-review-suspensions"]["started"], got["pep-review-suspensions"]["due"]) == (
        "2026-11-16", "2026-11-23")  # 17, 18, 19, 20, 23 November
    assert "third suspension" in got["pep-review-suspensions"]["starts"]

    # the calendar a VSH team subscribes to: parses back, stable UIDs, pseudonymous references only
    ics = tmp_path / "deadlines.ics"
    r = lax(a, "--json", "deadlines", "--ics", str(ics))
    assert r.exit_code == 0, r.output
    listed = {d["uid"]: d for d in json.loads(r.stdout)["deadlines"] if d["state"] != "met"}
    cal = icalendar.Calendar.from_ical(ics.read_bytes())
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == set(listed) and len(events) >= 4
    for uid, e in events.items():
        assert e.decoded("DTSTART").isoformat() == listed[uid]["due"]
        assert ref[:8] in str(e["SUMMARY"]) and listed[uid]["rule"] in str(e["DESCRIPTION"])
    text = ics.read_text()
    for personal in (rec["child"]["legal_name"]["family"], rec["child"]["legal_name"]["given"], rec["child"]["upn"],
                     rec["child"]["date_of_birth"]):
        assert personal not in text
    again = lax(a, "deadlines", "--ics", str(ics))
    assert again.exit_code == ExitCode.USAGE and "already exists" in again.output, "never overwritten unasked"
    assert lax(a, "deadlines", "--ics", str(ics), "--force").exit_code == 0
    assert {str(e["UID"]) for e in icalendar.Calendar.from_ical(ics.read_bytes()).walk("VEVENT")} == set(events)
