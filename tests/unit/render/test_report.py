"""The morning report as HTML, from the dictionaries `run --json` and `status --json` print: escaping, what
each section shows, ids only, and the deadlines section present or "not computed"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from laxchange.errors import CODES
from laxchange.exchange.run import RunReport
from laxchange.exchange.status import ledger_status
from laxchange.ledger.db import Ledger
from laxchange.render import render_run_report_html, render_status_html
from laxchange.render.report import code_spans
from tests.support import reports
from tests.support.htmlparse import parse, table
from tests.support.records import HOSTILE_NAME
from tests.support.reports import (
    APPLIED,
    CHILD_IN_MESSAGE,
    COUNCIL,
    DELIVERED,
    DOWN,
    HOSTILE_PARTNER,
    HOSTILE_REASON,
    OTHER,
    OTHER_NAME,
    OVERDUE,
    QUARANTINED,
    RECEIVED,
    SCHOOL,
    SENT,
    UNCOLLECTED,
    UNMATCHED,
    run_dict,
    tid,
)


def _rows(html: str, table_id: str) -> dict[str, list[str]]:
    """A table's body rows keyed by their first cell."""
    return {r[0]: r[1:] for r in table(html, table_id)[1:]}


def test_every_transfer_of_the_run_is_on_the_page_by_id() -> None:
    data = run_dict()
    html = render_run_report_html(data)
    shown = {SENT, DELIVERED, APPLIED, RECEIVED, QUARANTINED, tid(23), UNCOLLECTED, OVERDUE, UNMATCHED, tid(30)}
    assert shown <= set(re.findall(r"[0-9a-f]{32}", json.dumps(data))), "the sample carries them all"
    for t in shown:
        assert t in html, t


def test_the_per_partner_table_counts_what_tonights_run_did() -> None:
    html = render_run_report_html(run_dict())
    head, *_ = table(html, "partners")
    assert head == ["Partner", "Sent", "Delivered", "Applied", "Received", "Duplicates", "Quarantined", "Overdue",
                    "Uncollected", "Failed"]
    rows = _rows(html, "partners")
    assert rows[f"{HOSTILE_PARTNER} ({SCHOOL})"] == ["1", "1", "1", "1", "0", "0", "1", "1", "0"]
    assert rows[f"{OTHER_NAME} ({OTHER})"] == ["0", "0", "0", "0", "0", "2", "0", "0", "0"]
    assert rows[DOWN] == ["0"] * 8 + ["1"]
    assert "outbound: 1 applied, 1 delivered, 2 sent, 1 uncollected" in html, "the ledger's totals per partner"


def test_what_needs_a_look_has_a_status_word_a_reason_and_a_hint_each() -> None:
    html = render_run_report_html(run_dict())
    rows = table(html, "attention")
    assert rows[0] == ["Status", "Partner", "Transfer or file", "Reason", "What to do"]
    by_status = {(r[0], r[2]): r for r in rows[1:]}
    assert set(by_status) == {("FAILED", "listing our folder on its server"), ("QUARANTINED", QUARANTINED),
                              ("QUARANTINED", tid(23)), ("RECEIPT NOT APPLIED", UNMATCHED),
                              ("UNCOLLECTED", UNCOLLECTED), ("OVERDUE", OVERDUE)}
    assert all(r[3] and r[4] and r[4] != "-" for r in rows[1:]), rows
    failed = by_status[("FAILED", "listing our folder on its server")]
    assert failed[1] == DOWN and HOSTILE_REASON in failed[3] and "ssh.connect-failed" in failed[3]
    assert "did not apply: it names no transfer we sent" in by_status[("RECEIPT NOT APPLIED", UNMATCHED)][3]
    assert "6 days" in by_status[("UNCOLLECTED", UNCOLLECTED)][3]
    assert "72 hours" in by_status[("OVERDUE", OVERDUE)][3]
    assert "Needs a look:" in html and "6 items below (the run exits 10)" in html


def test_a_message_about_a_packages_content_is_never_shown_its_code_and_paths_are() -> None:
    data = run_dict()
    assert CHILD_IN_MESSAGE not in json.dumps(data), "nor does the JSON report (LaxError.to_dict(redact=True))"
    html = render_run_report_html(data)
    assert CHILD_IN_MESSAGE not in html
    bad = next(r for r in table(html, "attention") if r[2] == QUARANTINED)
    assert bad[3] == f"{CODES['record.invalid']} (record.invalid); at $.record.child.legal_name [schema]"
    signature = next(r for r in table(html, "attention") if r[2] == tid(23))
    assert "a signature does not verify (package.bad-signature)" in signature[3], "other messages are shown"


def test_hostile_partner_names_and_reasons_are_text() -> None:
    html = render_run_report_html(run_dict(deadlines=True))
    page = parse(html)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "img" not in tags
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs), "an event handler attribute"
    text = "".join(page.text)
    assert HOSTILE_PARTNER in text and HOSTILE_REASON in text and f"PEP review {HOSTILE_NAME}" in text


def test_nothing_is_loaded_from_anywhere_and_the_page_is_structured() -> None:
    html = render_run_report_html(run_dict(deadlines=True))
    page = parse(html)
    assert page.tags[0] == ("html", {"lang": "en-GB"})
    for tag, attrs in page.tags:
        assert "src" not in attrs and "href" not in attrs and tag not in ("link", "script", "iframe"), tag
    assert "url(" not in html and "@import" not in html
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and csp.startswith("default-src 'none'; style-src 'sha256-")
    headings = [t for t, _ in page.tags if t in ("h1", "h2")]
    assert headings.count("h1") == 1 and headings.count("h2") == 4
    ths = [a for t, a in page.tags if t == "th"]
    assert ths and all(a.get("scope") in ("col", "row") for a in ths)
    assert "@page" in html and "size: A4" in html and "@media print" in html


def test_deadlines_are_shown_by_group_when_the_report_has_them() -> None:
    html = render_run_report_html(run_dict(deadlines=True))
    overdue = table(html, "deadlines-overdue")
    assert overdue[0] == ["Deadline", "Record", "Due", "State", "Source"]
    assert overdue[1] == [f"PEP review {HOSTILE_NAME} [rule-1]", tid(41), "Friday 20 November 2026", "OVERDUE",
                          "statutory guidance §5.3 (fictional)"]
    soon = table(html, "deadlines-due-soon")
    assert [r[2] for r in soon[1:]] == ["Wednesday 25 November 2026", "Friday 27 November 2026"], "soonest first"
    assert [r[3] for r in soon[1:]] == ["DUE SOON", "DUE SOON"]
    met = table(html, "deadlines-met")
    assert met[0][3] == "Met by" and met[1][3] == "out.delivered"
    assert "approximate" in html and "Deadlines not computed" not in html


def test_without_deadlines_the_page_says_they_were_not_computed() -> None:
    html = render_run_report_html(run_dict(deadlines=False))
    assert "Deadlines not computed." in html and 'id="deadlines-overdue"' not in html
    data = run_dict()
    data["deadlines"] = None
    assert "Deadlines not computed." in render_run_report_html(data)
    data["deadlines"] = {"overdue": [], "due_soon": [], "met": [], "approximate": False}
    html = render_run_report_html(data)
    assert "Deadlines not computed." not in html and "approximate" not in html
    assert table(html, "deadlines-due-soon")[1] == ["none"]


def test_a_quiet_night_is_all_good() -> None:
    html = render_run_report_html(RunReport(started="2026-11-24T02:30:00Z").to_dict())
    assert "All good:" in html and "Nothing needs a look." in html and "No transfers yet." in html
    assert "Tuesday 24 November 2026, 02:30 UTC" in html
    assert "No transfer expired; no key pruned or about to expire." in html


def test_a_night_that_needs_a_look_only_for_an_overdue_deadline_says_so() -> None:
    """The run exits 10 for an overdue statutory deadline alone: the page must not read "0 items
    below" and "Nothing needs a look" (a walk-through found both, on a run that exited 10)."""
    report = RunReport(started="2026-11-24T02:30:00Z")
    report.deadlines = {"overdue": [reports.deadline(1, "overdue", "2026-11-20")], "due_soon": [], "met": [],
                        "approximate": False}
    assert not report.ok
    html = render_run_report_html(report.to_dict())
    def text_of(element_id: str) -> str:
        m = re.search(rf'<p id="{element_id}"[^>]*>(.*?)</p>', html, re.S)
        assert m is not None, element_id
        return re.sub(r"<[^>]+>", "", m.group(1))

    assert text_of("overall") == ("Needs a look: 0 items below, and 1 statutory deadline overdue (Deadlines) "
                                  "(the run exits 10).")
    assert "Nothing needs a look." not in html
    assert "what needs a look is the overdue deadlines" in text_of("attention")


def test_housekeeping_lists_expired_transfers_and_expiring_keys() -> None:
    rows = table(render_run_report_html(run_dict()), "housekeeping")
    assert [r[0] for r in rows[1:]] == ["EXPIRED", "KEY EXPIRES"]
    assert rows[2][2] == "sign key k-sign-2025" and rows[2][4] == "run laxchange keys rotate before then"


def test_same_report_same_bytes() -> None:
    assert render_run_report_html(run_dict(deadlines=True)) == render_run_report_html(run_dict(deadlines=True))


def test_backticked_commands_become_code_and_stay_escaped() -> None:
    assert str(code_spans("run `laxchange keys rotate` now")) == "run <code>laxchange keys rotate</code> now"
    assert str(code_spans("`<b>` & <i>")) == "<code>&lt;b&gt;</code> &amp; &lt;i&gt;"
    assert str(code_spans("one ` only <b>")) == "one ` only &lt;b&gt;"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return reports.status_ledger(tmp_path / "ledger.sqlite3")


def test_the_status_page_shows_the_ledger_per_partner(ledger: Ledger) -> None:
    with ledger:
        data = ledger_status(ledger)
    html = render_status_html(data)
    assert "Status report" in html and "Monday 23 November 2026, 02:30 UTC" in html
    rows = _rows(html, "partners")
    assert table(html, "partners")[0] == ["Partner", "Sent", "Delivered", "Applied", "Received", "Quarantined",
                                          "Overdue", "Uncollected"]
    assert rows[SCHOOL] == ["1", "0", "1", "0", "0", "1", "1"]
    assert rows[COUNCIL] == ["0", "0", "0", "1", "1", "0", "0"]
    assert "1 rejected (outbound)" in html and "1 queued (outbound)" in html, "the states without a column"
    attention = {(r[0], r[2][:32]): r for r in table(html, "attention")[1:]}
    assert set(attention) == {("OVERDUE", tid(1)), ("REJECTED", tid(3)), ("QUARANTINED", tid(6)),
                              ("UNCOLLECTED", tid(8)), ("RECEIPT NOT APPLIED", tid(7))}
    assert attention[("OVERDUE", tid(1))][2] == f"{tid(1)} (record {'a' * 32})", "the pseudonymous record ref"
    assert attention[("QUARANTINED", tid(6))][3] == f"{CODES['package.bad-signature']} (package.bad-signature)"
    assert attention[("REJECTED", tid(3))][3] == f"{CODES['record.invalid']} (record.invalid)"
    transfers = table(html, "transfers")
    assert [r[6] for r in transfers[1:]] == [t["transfer_id"] for t in data["transfers"]] and len(transfers) == 1 + 7
    assert transfers[1] == ["20 Nov 2026 02:30 UTC", "outbound", "sent", SCHOOL, "-", "a" * 32, tid(1)]
    assert "Deadlines not computed." in html
    assert "Only the transfers the command's options selected" not in html
    assert "Only the transfers the command's options selected" in render_status_html(data, filtered=True)


def test_an_empty_ledger_is_all_good(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite3") as lg:
        html = render_status_html(ledger_status(lg))
    assert "All good:" in html and "No transfers yet." in html


def test_the_sample_is_the_shape_run_really_reports() -> None:
    """Guards the sample: its dictionary is `RunReport.to_dict()`'s, key for key."""
    assert set(run_dict()) == set(RunReport(started="x").to_dict()) - {"deadlines"}
    assert reports.run_report().to_dict()["import"] is not None
