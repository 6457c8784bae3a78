"""SQLite failures reach the user as ledger errors with a code, an exit status and a hint, never a traceback."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.clock import FixedClock
from laxchange.errors import ConfigError, ExitCode
from laxchange.ledger import db as ledger_db
from laxchange.ledger.db import Ledger
from laxchange.ledger.errors import LedgerBusy, LedgerError
from tests.support.parties import PASSPHRASE, record, world

CLOCK = FixedClock(dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC))


def _make(path: Path, n: int = 3) -> None:
    with Ledger(path, clock=CLOCK) as ledger:
        for i in range(n):
            ledger.note("receipt.unmatched", {"in_reply_to": f"{i:032x}", "party": "LA:919"})


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A real ledger whose lock another connection holds (BEGIN EXCLUSIVE) for the whole test."""
    path = tmp_path / "ledger.sqlite3"
    _make(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    yield path
    other.execute("ROLLBACK")
    other.close()


def test_a_ledger_another_run_is_writing_opens_and_a_write_is_a_clear_retryable_error(locked: Path) -> None:
    ledger = Ledger(locked, clock=CLOCK, timeout=0.2)  # the write-ahead log lets readers in (status during a run)
    assert len(ledger.audit_entries()) == 3
    started = time.monotonic()
    with pytest.raises(LedgerBusy) as exc:
        ledger.note("receipt.unmatched", {"in_reply_to": "f" * 32, "party": "LA:919"})
    assert time.monotonic() - started < 5, "the busy wait is bounded by the timeout"
    err = exc.value
    assert isinstance(err, ConfigError) and err.exit_code == ExitCode.CONFIG == 5
    assert err.code == "ledger.busy" and err.transient
    assert "another laxchange run" in (err.hint or "") and str(locked) in err.message
    ledger.close()


def test_a_write_to_a_ledger_locked_after_opening_fails_cleanly_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _make(path)
    ledger = Ledger(path, clock=CLOCK, timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(LedgerBusy):
        ledger.note("receipt.unmatched", {"in_reply_to": "f" * 32, "party": "LA:919"})
    assert len(ledger.audit_entries()) == 3, "readers still see the last committed state"
    other.execute("ROLLBACK")
    other.close()
    assert len(ledger.audit_entries()) == 3 and ledger.verify_audit() == []
    ledger.note("receipt.unmatched", {"in_reply_to": "f" * 32, "party": "LA:919"})  # usable again
    assert len(ledger.audit_entries()) == 4


def test_the_ledger_uses_a_write_ahead_log_whose_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path, clock=CLOCK) as ledger:
        ledger.note("receipt.unmatched", {"in_reply_to": "e" * 32, "party": "LA:919"})
        assert ledger_db_mode(path) == "wal"
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            assert side.exists() and side.stat().st_mode & 0o777 == 0o600, suffix


def ledger_db_mode(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return str(con.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        con.close()


def test_the_cli_says_busy_with_exit_5_no_traceback_and_leaves_no_package(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_db, "DEFAULT_TIMEOUT", 0.2)
    a, b, _ = world(tmp_path)
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(record(1)))
    with Ledger(a.home.ledger_db, clock=CLOCK):
        pass
    other = sqlite3.connect(a.home.ledger_db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        env = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
        r = CliRunner().invoke(main, ["--home", str(a.home.root), "status"], env=env)
        assert r.exit_code == 0, "status reads while another run writes"
        out = tmp_path / "pep.lax"
        r = CliRunner().invoke(main, ["--home", str(a.home.root), "pack", str(src), "--type", "pep-transfer",
                                      "--to", b.party, "-o", str(out)], env=env)
        assert r.exit_code == 5, r.output
        assert "locked" in r.output and "another laxchange run" in r.output and "Traceback" not in r.output
        assert not out.exists(), "no package left behind that the ledger does not know"
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_busy_timeout_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Ledger(tmp_path / "l.sqlite3", timeout=ledger_db.MAX_TIMEOUT + 1)
    assert not (tmp_path / "l.sqlite3").exists(), "refused before anything is created"


def test_a_file_that_is_not_a_database_is_reported_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(LedgerError) as exc:
        Ledger(path)
    assert exc.value.code == "ledger.corrupt" and exc.value.exit_code == 5
    assert "backup" in (exc.value.hint or "")


def test_damage_found_after_opening_is_reported_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _make(path, n=50)
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as f:  # keep page 1 (header and schema), wreck the table pages
        f.seek(page)
        f.write(b"\xa5" * (path.stat().st_size - page))
    ledger = Ledger(path)
    with pytest.raises(LedgerError) as exc:
        ledger.audit_entries()
    assert exc.value.code == "ledger.corrupt"
    ledger.close()


def test_a_read_only_ledger_is_an_io_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    _make(path)
    ledger = Ledger(path)
    ledger._db.execute("PRAGMA query_only = ON")  # SQLite's own read-only refusal, as for a read-only file
    with pytest.raises(LedgerError) as exc:
        ledger.note("receipt.unmatched", {"in_reply_to": "f" * 32, "party": "LA:919"})
    assert exc.value.code == "ledger.io" and exc.value.exit_code == 5 and "permissions" in (exc.value.hint or "")
    ledger.close()


def test_a_path_that_cannot_be_a_file_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite3").mkdir()
    with pytest.raises(LedgerError) as exc:
        Ledger(tmp_path / "ledger.sqlite3")
    assert exc.value.code == "ledger.io"


def test_bugs_in_our_own_sql_are_not_disguised_as_user_errors(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite3") as ledger, pytest.raises(sqlite3.OperationalError):
        ledger._db.execute("SELEC 1")
