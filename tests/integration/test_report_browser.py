"""The morning report in a real browser (headless Chromium; the `browser` fixture, tests/support/browser.py).

Pages from `run --report` and `status --html` (made by the real commands over the embedded SFTP
server, and from the sample reports of tests/support/reports.py, whose partner names and reasons
carry hostile markup): no console messages, the key fields visible, every payload inert, text
contrast at least WCAG AA, a screenshot, and the print layout (Chromium's print-to-PDF: A4 pages,
a bounded page count, nothing wider than the page).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.exchange.run import RunReport
from laxchange.exchange.status import ledger_status
from laxchange.render import render_run_report_html, render_status_html
from tests.support import reports
from tests.support.browser import CONTRAST, all_a4, console, marker, pdf_pages, print_pdf, print_width, show, text_of
from tests.support.drop_server import two_homes
from tests.support.parties import PASSPHRASE, record
from tests.support.records import HOSTILE_NAME
from tests.support.reports import HOSTILE_PARTNER, HOSTILE_REASON, OVERDUE, QUARANTINED, UNCOLLECTED, run_dict, tid

pytestmark = pytest.mark.browser


def _main_text(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.TAG_NAME, "main").text)


def _screenshot(browser: Any, path: Path) -> None:
    assert browser.save_screenshot(str(path)) and path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("deadlines", [True, False], ids=["with-deadlines", "deadlines-not-computed"])
def test_the_run_report_renders_cleanly_and_hostile_text_stays_text(browser: Any, tmp_path: Path,
                                                                    deadlines: bool) -> None:
    log = show(browser, tmp_path / "report.html", render_run_report_html(run_dict(deadlines=deadlines)))
    assert log == [], console(log)
    assert marker(browser) is None, "a payload ran"
    assert browser.execute_script("return document.querySelectorAll('body script, body img, body iframe').length") == 0
    assert text_of(browser, "overall").startswith("Needs a look: 6 items")
    attention = text_of(browser, "attention")
    for needed in ("UNCOLLECTED", UNCOLLECTED, "OVERDUE", OVERDUE, "QUARANTINED", QUARANTINED, HOSTILE_REASON,
                   HOSTILE_PARTNER, "What to do"):
        assert needed in attention, needed
    assert HOSTILE_PARTNER in text_of(browser, "partners")
    if deadlines:
        assert f"PEP review {HOSTILE_NAME}" in text_of(browser, "deadlines-overdue")
        assert "DUE SOON" in text_of(browser, "deadlines-due-soon")
    else:
        assert text_of(browser, "deadlines") == "Deadlines not computed."
    assert browser.execute_script(CONTRAST) == []
    _screenshot(browser, tmp_path / "report.png")


def test_the_payload_detector_would_see_a_payload_run_in_a_report(browser: Any, tmp_path: Path) -> None:
    """The checks above can fail: the same payload, unescaped and without the page's CSP, runs and is seen."""
    page = render_run_report_html(run_dict())
    raw = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    raw = raw.replace('<p id="overall"', f"{HOSTILE_NAME}<p id=\"overall\"", 1)
    log = show(browser, tmp_path / "raw.html", raw)
    assert marker(browser) == "1" and any("payload ran" in str(e.get("message")) for e in log), log


def test_the_status_report_renders_cleanly(browser: Any, tmp_path: Path) -> None:
    with reports.status_ledger(tmp_path / "ledger.sqlite3") as lg:
        html = render_status_html(ledger_status(lg))
    log = show(browser, tmp_path / "status.html", html)
    assert log == [], console(log)
    assert text_of(browser, "overall").startswith("Needs a look: 5 items")
    assert "REJECTED" in text_of(browser, "attention") and tid(3) in text_of(browser, "attention")
    assert tid(4) in text_of(browser, "transfers"), "every transfer is listed"
    assert browser.execute_script(CONTRAST) == []
    _screenshot(browser, tmp_path / "status.png")


def test_a_quiet_night_is_all_good_on_screen(browser: Any, tmp_path: Path) -> None:
    log = show(browser, tmp_path / "quiet.html", render_run_report_html(RunReport(started="2026-11-24T02:30:00Z")
                                                                        .to_dict()))
    assert log == [], console(log)
    assert text_of(browser, "overall") == "All good: nothing needs a look."
    assert browser.execute_script(CONTRAST) == []


def _busy_night() -> dict[str, Any]:
    """Twelve partners, sixty uncollected transfers, twenty deadlines in each group, an unbroken long reason."""
    data = run_dict(deadlines=True)
    data["uncollected"] = [{"transfer_id": tid(100 + n), "party": f"URN:1000{n % 12:02d}", "state": "uncollected",
                            "sent": "2026-11-18T02:30:00Z", "days": 6,
                            "contact": {"party": f"URN:1000{n % 12:02d}",
                                        "name": "Fictional Community School of St Example"}}
                           for n in range(60)]
    data["failures"][0]["message"] = "y" * 400  # an unbroken string must wrap, not push the page wider than A4
    for key in ("overdue", "due_soon", "met"):
        data["deadlines"][key] = [reports.deadline(n, key, f"2026-11-{10 + n % 19:02d}") for n in range(20)]
    return data


@pytest.mark.parametrize(("name", "pages_at_most"), [("sample", 3), ("busy", 15)])
def test_the_report_prints_on_a4_and_nothing_is_wider_than_the_page(browser: Any, tmp_path: Path, name: str,
                                                                    pages_at_most: int) -> None:
    data = run_dict(deadlines=True) if name == "sample" else _busy_night()
    assert show(browser, tmp_path / f"{name}.html", render_run_report_html(data)) == []
    pdf = print_pdf(browser)
    (tmp_path / f"{name}.pdf").write_bytes(pdf)
    pages = pdf_pages(pdf)
    assert 1 <= len(pages) <= pages_at_most, len(pages)
    assert all_a4(pages), pages
    scroll, viewport = print_width(browser)
    assert scroll <= viewport, (scroll, viewport)


def test_the_pages_the_commands_write_render_cleanly(browser: Any, tmp_path: Path) -> None:
    """As a council's IT would open them in the morning: the files `run --report` and `status --html` wrote."""
    env = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
    with two_homes(tmp_path) as w:
        def lax(*args: str) -> Any:
            r = CliRunner().invoke(main, ["--home", str(w.a.home.root), *args], env=env)
            assert r.exit_code == 0, r.output
            return r

        src = tmp_path / "pep.json"
        src.write_text(json.dumps(record(4)))
        packed = lax("--json", "pack", str(src), "--type", "pep-transfer", "--to", w.b.party,
                     "-o", str(w.a.home.outbox / "pep.lax"))
        tid_sent = json.loads(packed.stdout)["manifest"]["transfer_id"]
        lax("run", "--timeout", "2", "--retries", "1", "--report", str(tmp_path / "report.html"))
        lax("status", "--html", str(tmp_path / "status.html"))
    for page in ("report.html", "status.html"):
        log = show(browser, tmp_path / page)
        assert log == [], console(log)
        assert text_of(browser, "overall") == "All good: nothing needs a look."
        text = _main_text(browser)
        assert tid_sent in text and "Example School (fictional) (URN:123456)" in text
        assert browser.execute_script(CONTRAST) == []
        _screenshot(browser, tmp_path / f"{page}.png")
        assert all_a4(pdf_pages(print_pdf(browser)))
