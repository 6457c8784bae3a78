"""`inspect_ledger` (for `laxchange doctor`): integrity, schema version and the audit chain, read-only."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import pytest

from laxchange.clock import FixedClock
from laxchange.ledger import LedgerError, inspect_ledger
from laxchange.ledger.db import Ledger
from laxchange.ledger.schema import SCHEMA_VERSION
from laxchange.ledger.states import IMPORT_PATH

CLOCK = FixedClock(dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC))


def _ledger(path: Path) -> None:
    with Ledger(path, clock=CLOCK) as ledger:
        ledger.advance("in", "a" * 32, "LA:919", *IMPORT_PATH)
        CLOCK.advance(minutes=5)
        ledger.advance("in", "b" * 32, "LA:919", *IMPORT_PATH)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sound_ledger_reports_no_problems_and_its_newest_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _ledger(path)
    before = _digest(path)
    health = inspect_ledger(path)
    assert health.integrity == [] and health.audit_problems == []
    assert (health.schema_version, health.current_version, health.migrations_pending) == (SCHEMA_VERSION,) * 2 + (0,)
    assert health.audit_entries == 2 * len(IMPORT_PATH)
    assert health.newest == "2026-11-24T12:05:00Z"
    with Ledger(path) as ledger:
        assert health.audit_head == ledger.audit_entries()[-1]["hash"]
    assert _digest(path) == before


def test_an_old_ledger_is_reported_with_migrations_pending_and_left_unmigrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _ledger(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    db.commit()
    db.close()
    health = inspect_ledger(path)
    assert health.schema_version == SCHEMA_VERSION - 1 and health.migrations_pending == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1


def test_a_changed_audit_entry_is_found(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _ledger(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE audit SET data = '{}' WHERE seq = 2")
    db.commit()
    db.close()
    health = inspect_ledger(path)
    assert health.integrity == []  # SQLite's own structure is fine: only the chain shows it
    assert health.audit_problems and "entry 2: its contents were changed" in health.audit_problems[0]


def test_damaged_pages_are_reported_and_a_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _ledger(path)
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as f:  # keep page 1 (header and schema), wreck the rest
        f.seek(page)
        f.write(b"\xa5" * (path.stat().st_size - page))
    with pytest.raises(LedgerError) as e:
        inspect_ledger(path)
    assert e.value.code == "ledger.corrupt" and "backup" in (e.value.hint or "")
    missing = tmp_path / "nope.sqlite3"
    with pytest.raises(LedgerError):
        inspect_ledger(missing)
    assert not missing.exists()
