"""The readable PEP that `import` writes lists the child's statutory clocks (issue 14 #1, with issue 13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from laxchange.exchange.inbound import import_inbox
from laxchange.render import render_record_html
from laxchange.render.deadlines import ChildClocks
from tests.unit.exchange.test_inbound import B, _send_pep, pair  # noqa: F401 (the two-party fixture)


def _page(b: Any, tid: str) -> str:
    return (b.home.root / "received" / tid / "pep.html").read_text(encoding="utf-8")


def test_the_imported_pep_lists_the_childs_clocks(pair: Any, tmp_path: Path) -> None:  # noqa: F811
    a, b = pair
    tid, _ = _send_pep(a, tmp_path)
    clocks = ChildClocks(b)
    report = import_inbox(b, render=lambda record: render_record_html(record, clock=b.clock, deadlines=clocks(record)))
    assert report.ok, report.to_dict()
    page = _page(b, tid)
    assert 'id="deadlines"' in page and "PEP reviewed" in page, "the termly review clock of this child"


def test_clocks_that_cannot_be_computed_leave_the_page_without_them_and_the_import_goes_on(pair: Any,  # noqa: F811
                                                                                       tmp_path: Path) -> None:
    a, b = pair
    b.home.config_file.write_text(json.dumps({"deadlines": {"term_dates": "no-such-file.ics"}}))
    tid, _ = _send_pep(a, tmp_path)
    clocks = ChildClocks(b)
    report = import_inbox(b, render=lambda record: render_record_html(record, clock=b.clock, deadlines=clocks(record)))
    assert report.ok and [i.result for i in report.items] == ["imported"]
    page = _page(b, tid)
    assert 'id="deadlines"' not in page and page.startswith("<!DOCTYPE html>")
