"""Schema versions: an old database is migrated in one transaction, a newer one is refused, and the
database itself refuses a state name it does not know."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.home import Home
from laxchange.ledger import schema
from laxchange.ledger.db import Ledger
from laxchange.ledger.errors import LedgerError
from laxchange.ledger.states import STATES, Direction
from tests.support.parties import initialise

# The schema and the writes of the ledger before versioning, as it wrote them (no user_version).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id  TEXT NOT NULL,
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    party        TEXT NOT NULL,
    state        TEXT NOT NULL,
    created      TEXT,
    expires      TEXT,
    payload_sha256 TEXT,
    updated      TEXT NOT NULL,
    detail       TEXT,
    PRIMARY KEY (transfer_id, direction, party)
);
CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    event   TEXT NOT NULL,
    data    TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
"""
OLD_ROWS = [  # transfer_id, direction, party, state
    ("1" * 32, "out", "URN:123456", "packed"),
    ("2" * 32, "out", "URN:123456", "sent"),
    ("3" * 32, "out", "URN:123456", "acknowledged"),
    ("4" * 32, "out", "LA:920", "rejected"),
    ("5" * 32, "in", "LA:919", "imported"),
]
AT = "2026-11-24T12:00:00Z"


def _old_ledger(path: Path) -> list[tuple[str, str, str]]:
    """A version-0 ledger made with raw SQL as the code before versioning did; returns its audit (event, data, hash)."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    prev, audit = "0" * 64, []
    for tid, direction, party, state in OLD_ROWS:
        db.execute("INSERT INTO transfers (transfer_id, direction, party, state, created, expires, payload_sha256,"
                   " updated, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (tid, direction, party, state, AT, "2026-12-08T12:00:00Z", "a" * 64, AT,
                    "bad-data" if state == "rejected" else None))
        event, data = f"{direction}.{state}", json.dumps({"party": party, "transfer_id": tid}, separators=(",", ":"))
        digest = hashlib.sha256(json.dumps([prev, AT, event, data], separators=(",", ":")).encode()).hexdigest()
        db.execute("INSERT INTO audit (at, event, data, prev, hash) VALUES (?, ?, ?, ?, ?)", (AT, event, data, prev,
                                                                                              digest))
        audit.append((event, data, digest))
        prev = digest
    db.commit()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()
    return audit


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_version_0_ledger_is_migrated_keeping_its_rows_and_audit_chain(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    audit = _old_ledger(path)
    with Ledger(path) as ledger:
        assert ledger.schema_version == schema.SCHEMA_VERSION == 2
        states = {t.transfer_id[0]: t.state for t in ledger.transfers()}
        assert states == {"1": "queued", "2": "sent", "3": "delivered", "4": "rejected", "5": "imported"}
        kept = ledger.get("4" * 32, "out", "LA:920")
        assert kept and (kept.created, kept.payload_sha256, kept.detail) == (AT, "a" * 64, "bad-data")
        assert ledger.seen("5" * 32, "LA:919"), "the replay history survives"
        # the audit log is not rewritten: old event names stay, hashed into the chain
        assert [(e["event"], json.dumps(e["data"], separators=(",", ":")), e["hash"])
                for e in ledger.audit_entries()] == audit
        assert ledger.verify_audit() == []
        # and the migrated rows move on along the table
        assert ledger.advance("out", "1" * 32, "URN:123456", "sent").state == "sent"
        assert ledger.advance("out", "3" * 32, "URN:123456", "applied").state == "applied"
        assert ledger.verify_audit() == []
    assert _raw(path, "PRAGMA user_version") == [(2,)]
    assert _raw(path, "SELECT name FROM sqlite_master WHERE name LIKE 'transfers%'") == [("transfers",)]


def _v1_ledger(path: Path) -> list[tuple[str, str, str]]:
    """A version-1 ledger: the version-0 one after the released step 1, exactly as that code left it."""
    audit = _old_ledger(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for sql in schema.MIGRATIONS[0].statements:
        db.execute(sql)
    db.execute("PRAGMA user_version = 1")
    db.execute("COMMIT")
    db.close()
    return audit


def test_a_version_1_ledger_gains_message_type_and_record_ref_as_null(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    audit = _v1_ledger(path)
    with Ledger(path) as ledger:
        assert ledger.schema_version == 2
        rows = ledger.transfers()
        assert len(rows) == len(OLD_ROWS) and {(t.message_type, t.record_ref) for t in rows} == {(None, None)}
        assert ledger.seen("5" * 32, "LA:919")
        assert [e["hash"] for e in ledger.audit_entries()] == [h for _, _, h in audit]
        # an old row learns them on its next step (an inbound row learns them only once opened)
        t = ledger.advance("out", "1" * 32, "URN:123456", "sent", message_type="pep-transfer", record_ref="c" * 32)
        assert (t.message_type, t.record_ref) == ("pep-transfer", "c" * 32)
        assert ledger.audit_entries()[-1]["data"]["record_ref"] == "c" * 32
        # and a later step without them keeps them
        t = ledger.advance("out", "1" * 32, "URN:123456", "delivered")
        assert (t.message_type, t.record_ref) == ("pep-transfer", "c" * 32)
        assert ledger.verify_audit() == []
    assert _raw(path, "PRAGMA user_version") == [(2,)]


def test_a_new_file_gets_the_current_version(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        assert ledger.schema_version == schema.SCHEMA_VERSION
    assert len(schema.MIGRATIONS) == schema.SCHEMA_VERSION
    assert [m.to_version for m in schema.MIGRATIONS] == list(range(1, schema.SCHEMA_VERSION + 1))


def test_opening_a_current_ledger_takes_no_write_lock(tmp_path: Path) -> None:
    """`status` must work while another run is writing: opening only reads the version."""
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another run's write transaction (RESERVED lock)
    try:
        with Ledger(path, timeout=0) as ledger:
            assert ledger.transfers() == []
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_failing_migration_leaves_the_old_version_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.sqlite3"
    _old_ledger(path)
    broken = schema.Migration(1, "half", (*schema.MIGRATIONS[0].statements, "INSERT INTO no_such_table VALUES (1)"))
    monkeypatch.setattr("laxchange.ledger.db.MIGRATIONS", (broken,))
    with pytest.raises(sqlite3.OperationalError):
        Ledger(path)
    assert _raw(path, "PRAGMA user_version") == [(0,)]
    assert sorted(r[0] for r in _raw(path, "SELECT state FROM transfers")) == sorted(r[3] for r in OLD_ROWS)
    monkeypatch.undo()
    with Ledger(path) as ledger:  # and the real migration still works afterwards
        assert ledger.get("1" * 32, "out", "URN:123456").state == "queued"


def test_a_ledger_from_a_newer_laxchange_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError) as exc:
        Ledger(path)
    err = exc.value
    assert err.code == "ledger.too-new" and err.exit_code == 5 and "upgrade laxchange" in (err.hint or "")
    assert f"version {schema.SCHEMA_VERSION + 1}" in err.message
    assert path.read_bytes() == before

    home = tmp_path
    initialise(Home(home))
    r = CliRunner().invoke(main, ["--home", str(home), "--json", "status"])
    assert r.exit_code == 5 and json.loads(r.output)["error"] == "ledger.too-new" and "Traceback" not in r.output


def test_the_database_accepts_exactly_the_states_of_the_table(tmp_path: Path) -> None:
    """If a state is added to states.py without a migration, this fails: the CHECK would refuse it."""
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    db = sqlite3.connect(path)
    insert = ("INSERT INTO transfers (transfer_id, direction, party, state, updated) VALUES (?, ?, 'LA:919', ?, ?)")
    for d in Direction:
        for i, state in enumerate(STATES[d]):
            db.execute(insert, (f"{i:032x}", str(d), str(state), AT))
    other = {Direction.OUT: Direction.IN, Direction.IN: Direction.OUT}
    for d in Direction:
        for state in (*STATES[other[d]], "packed", "acknowledged", "bogus", ""):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                db.execute(insert, ("f" * 32, str(d), str(state), AT))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute("UPDATE transfers SET state = 'packed' WHERE direction = 'out'")
    db.close()


def test_a_check_violation_surfaces_as_a_bug_not_a_corrupt_ledger(tmp_path: Path) -> None:
    from laxchange.ledger.errors import IllegalTransition

    with Ledger(tmp_path / "ledger.sqlite3") as ledger, pytest.raises(IllegalTransition):
        ledger._db.execute("INSERT INTO transfers (transfer_id, direction, party, state, updated)"
                           " VALUES ('x', 'out', 'LA:919', 'packed', 'now')")
