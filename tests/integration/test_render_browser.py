"""The readable PEP in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

One browser for the session (the `browser` fixture; helpers in tests/support/browser.py). Each page
is checked for console errors (the browser log, through goog:loggingPrefs), key fields visible,
hostile content inert (every payload would set a marker on <html> and log an error), text contrast,
and the print layout: Chromium's own print-to-PDF, A4 pages, nothing wider than the page. These
tests never skip: scripts/setup installs the browser, and without it they fail saying so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from laxchange import samples
from laxchange.render import render_record_html
from tests.support.browser import CONTRAST, all_a4, marker, pdf_pages, print_pdf, print_width, show, text_of
from tests.support.records import HOSTILE_NAME, HOSTILE_VOICE, hostile_record, rich_record

pytestmark = pytest.mark.browser


def records() -> dict[str, dict[str, Any]]:
    no_school = samples.education_record(3)
    del no_school["school"]
    del no_school["contacts"]["iro"]
    no_school["attainment"] = []
    return {"rich": rich_record(), "seed-3-no-school": no_school, "seed-0": samples.education_record(0)}


@pytest.mark.parametrize("name", list(records()))
def test_sample_records_render_cleanly(browser: Any, tmp_path: Path, name: str) -> None:
    rec = records()[name]
    log = show(browser, tmp_path / "pep.html", render_record_html(rec))
    assert log == [], "console messages: " + "; ".join(str(e.get("message")) for e in log)
    legal = rec["child"]["legal_name"]
    assert text_of(browser, "legal-name") == f"{legal['given']} {legal['family']}"
    contacts = text_of(browser, "contacts")
    assert "Virtual School Head" in contacts and rec["pep"]["vsh_contact"]["name"] in contacts
    assert rec["contacts"]["social_worker"]["name"] in contacts
    assert rec["pep"]["child_voice"] in text_of(browser, "child-voice")
    assert rec["pep"]["short_term_targets"][0]["description"] in text_of(browser, "short-term-targets")
    if rec.get("school"):
        assert rec["school"]["designated_teacher"]["name"] in contacts
        assert text_of(browser, "school-name") == rec["school"]["name"]
    else:
        assert "No school place recorded" in text_of(browser, "school")
    assert browser.execute_script(CONTRAST) == []
    shot = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes().startswith(b"\x89PNG")


def test_hostile_content_is_shown_as_text_and_never_runs(browser: Any, tmp_path: Path) -> None:
    log = show(browser, tmp_path / "hostile.html", render_record_html(hostile_record()))
    assert marker(browser) is None, "a payload ran"
    assert log == [], "console messages: " + "; ".join(str(e.get("message")) for e in log)
    assert browser.execute_script("return document.querySelectorAll('body script, body img, body iframe').length") == 0
    assert text_of(browser, "child-name") == HOSTILE_NAME
    assert HOSTILE_VOICE.strip() in text_of(browser, "child-voice")
    assert browser.title.startswith("Personal Education Plan: <img")


def test_the_payload_detector_would_see_a_payload_run(browser: Any, tmp_path: Path) -> None:
    """The check above can fail: the same payload, unescaped, is seen (CSP or not)."""
    page = render_record_html(rich_record())
    broken = page.replace('<span id="child-name">', f'<span id="child-name">{HOSTILE_NAME}', 1)
    log = show(browser, tmp_path / "csp.html", broken)  # the page's CSP blocks it, and says so on the console
    assert marker(browser) is None and any(e["level"] == "SEVERE" for e in log), log
    no_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", broken)
    log = show(browser, tmp_path / "raw.html", no_csp)
    assert marker(browser) == "1" and any("payload ran" in str(e.get("message")) for e in log), log


def test_print_layout_is_a4_and_nothing_is_wider_than_the_page(browser: Any, tmp_path: Path) -> None:
    rec = rich_record()
    long_word = "x" * 400  # an unbroken string must wrap, not push the page wider than A4
    rec["pep"]["child_voice"] = f"{rec['pep']['child_voice']} {long_word}"
    rec["pep"]["short_term_targets"][0]["description"] = long_word
    rec["contacts"]["social_worker"]["organisation"] = long_word[:200]
    assert show(browser, tmp_path / "print.html", render_record_html(rec)) == []
    pdf = print_pdf(browser)
    (tmp_path / "pep.pdf").write_bytes(pdf)
    pages = pdf_pages(pdf)
    assert 1 <= len(pages) <= 6, pages
    assert all_a4(pages), pages
    scroll, viewport = print_width(browser)
    assert scroll <= viewport, (scroll, viewport)
