"""`laxchange run`'s text and its HTML morning report count the same things per partner.

A walk-through found them "showing different counts": the text's only per-partner block was the
ledger's totals (every transfer ever, receipts included) while the page's table counts what that
run did. The text now prints tonight's counts from the code that fills the page's table, and labels
the ledger's totals as such. Built on the sample run of tests/support/reports.py.
"""

from __future__ import annotations

import re
from typing import Any

from laxchange.cli.run_cmd import human
from laxchange.exchange.inbound import ImportItem
from laxchange.render import render_run_report_html
from tests.support.htmlparse import table
from tests.support.reports import DOWN, OTHER, RECEIVED, SCHOOL, run_dict, tid


def _page_counts(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    head, *rows = table(render_run_report_html(data), "partners")
    out = {}
    for label, *cells in rows:
        party = next(p for p in (SCHOOL, OTHER, DOWN, "unknown sender") if label.endswith((p, f"({p})")))
        out[party] = {h.lower(): int(c) for h, c in zip(head[1:], cells, strict=True) if int(c)}
    return out


def _text_counts(text: str) -> dict[str, dict[str, int]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("tonight, by partner"))
    out = {}
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        party, _, rest = line.strip().partition("  ")
        out[party] = {("duplicates" if k == "duplicate" else k): int(n) for n, k in re.findall(r"(\d+) (\w+)", rest)}
    return out


def test_the_text_counts_per_partner_what_the_morning_reports_table_counts() -> None:
    data = run_dict()
    text = human(data)
    assert _text_counts(text) == _page_counts(data)
    assert _text_counts(text)[SCHOOL]["sent"] == 1, "tonight's one package, not the ledger's 2 sent"


def test_the_ledgers_totals_are_labelled_as_the_ledgers() -> None:
    text = human(run_dict())
    ledger = text.split("in the ledger, by partner", 1)[1]
    assert f"{SCHOOL}  in 1 imported; out 1 applied, 1 delivered, 2 sent, 1 uncollected" in ledger


def test_a_failure_counting_tonight_costs_the_text_only_that_block() -> None:
    """The report's view builder runs for every `run` now, not only with --report: a bug in it is
    named in one line, and the rest of the text (failures, the ledger's totals) is still printed."""
    def broken(_data: dict[str, Any]) -> dict[str, dict[str, int]]:
        raise KeyError("party")

    text = human(run_dict(), count_tonight=broken)
    assert "(not counted: KeyError, a bug in laxchange;" in text
    whole = human(run_dict())
    assert text.split("tonight, by partner")[0] == whole.split("tonight, by partner")[0], "the lines above kept"
    assert text.split("in the ledger, by partner")[1] == whole.split("in the ledger, by partner")[1], "and below"


def test_a_package_or_receipt_delivered_again_is_a_duplicate_not_received() -> None:
    """A walk-through's morning report counted a package delivered twice (a sender re-sent it after its
    link died: docs/operations.md) as received twice. Its import's `duplicate` (set aside, acknowledged
    again, nothing new imported) has its own column, on the page and in the text, as in the JSON's counts."""
    data = run_dict()
    again = [ImportItem(f"{RECEIVED}.lax", "duplicate", RECEIVED, SCHOOL, "pep-transfer@1.1.0", f"received/{RECEIVED}"),
             ImportItem(f"{tid(24)}.lax", "duplicate", tid(24), SCHOOL, "receipt@1.1.0", f"received/{tid(24)}")]
    data["import"]["items"] += [i.to_dict() for i in again]
    data["import"]["counts"]["duplicate"] = 2
    page, text = _page_counts(data), _text_counts(human(data))
    assert page[SCHOOL]["received"] == 1 and page[SCHOOL]["duplicates"] == 2, "the one import, and two duplicates"
    assert text == page
    assert "imported    2 duplicates, 1 imported, " in human(data), "the import's line says the same"


def test_one_duplicate_and_one_checkpoint_entry_read_as_such() -> None:
    data = run_dict()
    data["import"]["items"].append(ImportItem(f"{RECEIVED}.lax", "duplicate", RECEIVED, SCHOOL, "pep-transfer@1.1.0",
                                              f"received/{RECEIVED}").to_dict())
    data["checkpoint"] = {**(data.get("checkpoint") or {"root": "ab" * 32}), "size": 1}
    text = human(data)
    assert re.search(rf"  {re.escape(SCHOOL)} .*\b1 duplicate\b(?!s)", text), text
    assert "checkpoint signed: 1 entry, root" in text
