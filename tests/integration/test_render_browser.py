"""The readable PEP in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

One browser for the module. Each page is checked for console errors (the browser log, through
goog:loggingPrefs), key fields visible, hostile content inert (every payload would set a marker on
<html> and log an error), text contrast, and the print layout: Chromium's own print-to-PDF, A4 pages,
nothing wider than the page. These tests never skip: scripts/setup installs the browser, and
without it they fail saying so.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from laxchange import samples
from laxchange.render import render_record_html
from tests.support.records import HOSTILE_NAME, HOSTILE_VOICE, hostile_record, rich_record

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = ("the browser tests need Debian's chromium and chromium-driver (and the selenium test extra): "
           "run ./scripts/setup, or `apt-get install chromium chromium-driver`")

#: A4 in PDF points, and how far a PDF's MediaBox may differ from it
A4 = (595.28, 841.89)
#: the A4 width less the page's CSS margins (13 mm each side), in CSS pixels (96 per inch)
A4_CONTENT_PX = int((210 - 26) / 25.4 * 96)

CONTRAST = """
function lum(c) {
  const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
  const p = m[1].split(',').map(Number); if (p.length > 3 && p[3] === 0) return null;
  const [r, g, b] = p.slice(0, 3).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function bg(el) {
  for (; el; el = el.parentElement) { const l = lum(getComputedStyle(el).backgroundColor); if (l !== null) return l; }
  return 1;
}
const bad = [];
for (const el of document.body.querySelectorAll('*')) {
  if (el.closest('svg')) continue;
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const fg = lum(getComputedStyle(el).color), b = bg(el);
  const ratio = (Math.max(fg, b) + 0.05) / (Math.min(fg, b) + 0.05);
  if (ratio < 4.5) bad.push(el.tagName + ' ' + ratio.toFixed(2) + ' ' + el.textContent.slice(0, 40));
}
return bad;
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(MISSING)
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail(MISSING)
    options = Options()
    options.binary_location = CHROMIUM  # with both paths given, selenium never tries to download a browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--window-size=1000,1400", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def show(browser: Any, path: Path, html: str) -> list[dict[str, Any]]:
    """Load a page from a file; return what it logged to the console (the log is emptied by reading it)."""
    browser.get_log("browser")
    path.write_text(html, encoding="utf-8")
    browser.get(path.as_uri())
    browser.execute_script("return document.readyState")
    return list(browser.get_log("browser"))


def marker(browser: Any) -> Any:
    return browser.execute_script("return document.documentElement.dataset.pwned")


def text_of(browser: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    el = browser.find_element(By.ID, element_id)
    assert el.is_displayed(), element_id
    return str(el.text)


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """(width, height) in points of every page: pdfinfo when set-up installed it, else a small parse."""
    if shutil.which("pdfinfo"):
        out = subprocess.run(["pdfinfo", "-f", "1", "-l", "999", "-"], input=pdf, capture_output=True, check=True)
        sizes = re.findall(rb"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", out.stdout)
        return [(float(w), float(h)) for w, h in sizes]
    pages = re.findall(rb"/Type\s*/Page\b(?!s).*?/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf, re.S)
    return [(float(w), float(h)) for w, h in pages]


def print_pdf(browser: Any) -> bytes:
    """Chromium's own print-to-PDF, with the page's CSS @page size and margins, no browser header."""
    result = browser.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True,
                                                         "displayHeaderFooter": False})
    return base64.b64decode(result["data"])


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
    pages = pdf_pages(print_pdf(browser))
    (tmp_path / "pep.pdf").write_bytes(print_pdf(browser))
    assert 1 <= len(pages) <= 6, pages
    assert all(abs(w - A4[0]) < 2 and abs(h - A4[1]) < 2 for w, h in pages), pages
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": A4_CONTENT_PX, "height": 1100,
                                                                       "deviceScaleFactor": 1, "mobile": False})
        widths = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
        assert widths[0] <= widths[1], widths
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
