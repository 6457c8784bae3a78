"""The clocks' sources skip the received folders the ledger says are receipts, unread."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from laxchange import deadlines
from laxchange.clock import FixedClock
from laxchange.errors import ConfigError
from laxchange.exchange.clocks import home_sources
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import IMPORT_PATH

CLOCK = FixedClock(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC))


def test_a_receipts_folder_is_not_read_and_any_other_is(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)
    receipt, record = "ab" * 16, "cd" * 16
    ledger.advance("in", receipt, "URN:123456", *IMPORT_PATH, message_type="receipt")
    for tid in (receipt, record):
        (home.root / "received" / tid).mkdir(parents=True)
        (home.root / "received" / tid / "manifest.json").write_text("{not json")  # read, it would fail
    with pytest.raises(ConfigError):  # the ledger knows nothing of `record`: its manifest is read
        home_sources(home, ledger, me="LA:919", settings=deadlines.Settings())
    ledger.advance("in", record, "URN:123456", *IMPORT_PATH, message_type="receipt")
    sources = home_sources(home, ledger, me="LA:919", settings=deadlines.Settings())
    assert sources.warnings == []
