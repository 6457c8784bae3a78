"""Headless Chromium for the HTML tests (Debian's chromium + chromium-driver, driven by selenium).

`start()` opens one browser (the `browser` fixture in tests/conftest.py holds it for the session);
`show` loads a page from a file and returns what it logged to the console; `marker` says whether a
hostile payload ran (each payload in tests/support/records.py sets it and logs an error); `CONTRAST`
lists text below WCAG AA contrast; `print_pdf` and `pdf_pages` are Chromium's own print-to-PDF and
its page sizes; `fits_print_width` checks nothing is wider than an A4 page's content. The browser
tests never skip: scripts/setup installs the browser, and without it they fail saying so.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = ("the browser tests need Debian's chromium and chromium-driver (and the selenium test extra): "
           "run ./scripts/setup, or `apt-get install chromium chromium-driver`")

#: A4 in PDF points, and how far a PDF's MediaBox may differ from it
A4 = (595.28, 841.89)
#: the A4 width less the pages' CSS margins (13 mm each side), in CSS pixels (96 per inch)
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


@contextmanager
def start() -> Iterator[Any]:
    """One headless Chromium with its console log captured; fails (never skips) when it is not installed."""
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


def show(browser: Any, path: Path, html: str | None = None) -> list[dict[str, Any]]:
    """Load a page from a file (written first when `html` is given); return what it logged to the
    console (the log is emptied by reading it)."""
    browser.get_log("browser")
    if html is not None:
        path.write_text(html, encoding="utf-8")
    browser.get(path.as_uri())
    browser.execute_script("return document.readyState")
    return list(browser.get_log("browser"))


def console(log: list[dict[str, Any]]) -> str:
    """The console messages, for an assertion's explanation."""
    return "console messages: " + "; ".join(str(e.get("message")) for e in log)


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


def all_a4(pages: list[tuple[float, float]]) -> bool:
    return bool(pages) and all(abs(w - A4[0]) < 2 and abs(h - A4[1]) < 2 for w, h in pages)


def print_width(browser: Any) -> tuple[int, int]:
    """(the page's scroll width, the viewport's width) with print styles at an A4 page's content width:
    the first larger than the second means something is wider than the printed page."""
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": A4_CONTENT_PX, "height": 1100,
                                                                       "deviceScaleFactor": 1, "mobile": False})
        widths = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
        return int(widths[0]), int(widths[1])
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
