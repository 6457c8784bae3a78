"""An import whose inbox/opened/ is removed while it runs (someone clearing old packages away by
hand during the nightly run): `_Filed.folder` makes each folder once an import, so a folder gone
since must not break the filing of what comes after."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from laxchange.exchange.inbound import import_inbox
from tests.support.parties import drop_pair, record


def test_opened_removed_mid_import_does_not_break_the_import(tmp_path: Path) -> None:
    a, b = drop_pair(tmp_path)
    me = b.keystore.ring().party
    inbox = b.home.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    a.pack(record(1), message_type="pep-transfer", recipient=me, out=inbox / "a.lax")
    shutil.copyfile(inbox / "a.lax", inbox / "b.lax")  # the same package again: ends the first batch
    a.pack(record(2), message_type="pep-transfer", recipient=me, out=inbox / "c.lax")
    pages: list[int] = []

    def render(rec: dict[str, Any]) -> str:
        pages.append(1)
        if len(pages) == 2:  # c.lax's page: a.lax and b.lax are in inbox/opened/ by now
            shutil.rmtree(inbox / "opened")
        return "<p>fictional</p>"

    report = import_inbox(b, collect=False, render=render)
    assert len(pages) == 2
    assert [(i.result, i.error.code if i.error else None) for i in report.items] == [
        ("imported", None), ("duplicate", None), ("imported", None)]
    assert sorted(p.name for p in (inbox / "opened").iterdir()) == ["c.lax"]
    assert not list(inbox.glob("*.lax"))
