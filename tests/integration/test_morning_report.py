"""`laxchange run --report FILE` and `laxchange status --html FILE`, as council IT would use them.

Council A and school B over the embedded SFTP server (tests/support/drop_server.py). The page is
written from the same dictionary `--json` prints, never over an existing file without `--force`
(checked before the run changes anything), and a page that cannot be written after the run is an
error on stderr and exit 10, with the run's own report still printed and its work kept.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from laxchange.cli import main
from laxchange.errors import ExitCode
from laxchange.render import render_run_report_html, render_status_html
from tests.support.drop_server import two_homes
from tests.support.htmlparse import table
from tests.support.parties import PASSPHRASE, Party, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
B = "URN:123456"
SCHOOL_NAME = "Example School (fictional)"  # on B's card (tests/support/drop_server.py)


def lax(p: Party, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(p.home.root), *args], env=ENV)


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Party, Party]]:
    with two_homes(tmp_path, overdue_deadlines_fail_run=False) as w:
        yield w.a, w.b


def _queue(p: Party, tmp_path: Path, name: str) -> str:
    src = tmp_path / f"{name}.json"
    src.write_text(json.dumps(record(4)))
    r = lax(p, "--json", "pack", str(src), "--type", "pep-transfer", "--to", B,
            "-o", str(p.home.outbox / f"{name}.lax"))
    assert r.exit_code == 0, r.output
    tid: str = json.loads(r.stdout)["manifest"]["transfer_id"]
    return tid


def _state(p: Party, tid: str) -> str:
    r = lax(p, "--json", "status", "--direction", "out")
    return str(next(t["state"] for t in json.loads(r.stdout)["transfers"] if t["transfer_id"] == tid))


def _run(p: Party, *args: str) -> Result:
    return lax(p, "--json", "run", "--timeout", "2", "--retries", "1", *args)


def test_run_writes_the_morning_report_from_the_json_it_prints(homes: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = homes
    tid = _queue(a, tmp_path, "pep")
    page = tmp_path / "report.html"
    r = _run(a, "--report", str(page))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["html"] == {"path": str(page), "written": True} and out["ok"] is True
    assert f"wrote the morning report to {page}" in r.stderr
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    data = {k: v for k, v in out.items() if k not in ("ok", "html")}
    assert page.read_text(encoding="utf-8") == render_run_report_html(data), "the page is the JSON, rendered"
    assert table(page.read_text(), "partners")[1] == [f"{SCHOOL_NAME} ({B})", "1", *["0"] * 8]
    assert tid in page.read_text()

    r = lax(b, "run", "--timeout", "2", "--retries", "1", "--report", str(tmp_path / "school.html"))
    assert r.exit_code == 0, r.output
    assert "done: all good" in r.stdout, "the text report still prints"
    assert tid in (tmp_path / "school.html").read_text(), "received, on the school's report"


def test_an_existing_report_is_refused_before_the_run_changes_anything(homes: tuple[Party, Party],
                                                                      tmp_path: Path) -> None:
    a, _b = homes
    page = tmp_path / "report.html"
    page.write_text("yesterday's report")
    tid = _queue(a, tmp_path, "pep")
    r = _run(a, "--report", str(page))
    assert r.exit_code == ExitCode.USAGE, r.output
    err = json.loads(r.stdout)
    assert err["error"] == "render.output-exists" and "--report" in err["hint"] and "--force" in err["hint"]
    assert page.read_text() == "yesterday's report" and _state(a, tid) == "queued", "nothing ran"
    assert lax(a, "run", "--report", str(tmp_path / "no" / "such" / "folder.html")).exit_code == ExitCode.USAGE
    assert _state(a, tid) == "queued"

    r = _run(a, "--report", str(page), "--force")
    assert r.exit_code == 0, r.output
    assert _state(a, tid) == "sent" and "Morning report" in page.read_text()


def test_a_report_that_cannot_be_written_after_the_run_is_exit_10_and_the_run_is_kept(
        homes: tuple[Party, Party], tmp_path: Path) -> None:
    a, _b = homes
    tid = _queue(a, tmp_path, "pep")
    page = tmp_path / "report.html"
    os.symlink(tmp_path / "elsewhere.html", page)  # dangling: not there when checked, in the way when written
    r = _run(a, "--report", str(page))
    assert r.exit_code == ExitCode.PARTIAL, r.output
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["complete"] is True, "the run itself was fine"
    assert out["html"]["written"] is False and out["html"]["error"]["error"] == "render.output-exists"
    assert [s["file"] for s in out["sent"]] == [f"{tid}.lax"] and _state(a, tid) == "sent", "the run's work is kept"
    assert "the run completed, but its HTML report was not written" in r.stderr and "render.output-exists" in r.stderr
    assert not (tmp_path / "elsewhere.html").exists(), "the link is not followed"

    text = lax(a, "run", "--timeout", "2", "--retries", "1", "--report", str(page))
    assert text.exit_code == ExitCode.PARTIAL
    assert "done: all good" in text.stdout and "hint:" in text.stderr


def test_status_writes_the_same_data_as_its_json(homes: tuple[Party, Party], tmp_path: Path) -> None:
    a, _b = homes
    tid = _queue(a, tmp_path, "pep")
    page = tmp_path / "status.html"
    r = lax(a, "--json", "status", "--html", str(page))
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    del data["ok"]
    html = page.read_text(encoding="utf-8")
    assert html == render_status_html(data), "the page is the JSON, rendered"
    assert tid in html and "1 queued (outbound)" in html and f"{SCHOOL_NAME} ({B})" in html
    assert data["partners"] == {B: SCHOOL_NAME}
    assert f"wrote the status report to {page}" in r.stderr

    again = lax(a, "status", "--html", str(page))
    assert again.exit_code == ExitCode.USAGE and again.stdout == "", "no partial output"
    assert "render.output-exists" in again.stderr or "already exists" in again.stderr
    r = lax(a, "status", "--party", B, "--html", str(page), "--force")
    assert r.exit_code == 0 and tid in r.stdout, "the table prints too"
    assert "Only the transfers the command's options selected" in page.read_text()

