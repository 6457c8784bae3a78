"""The ledger's schema versions (`PRAGMA user_version`) and the steps between them.

`MIGRATIONS[n]` takes a database from version n to n + 1; opening a ledger runs the pending
steps in one transaction, so a crash or a failed step leaves the old version intact. Steps are
frozen once released: a later change is a new step, never an edit to an old one (a database in
the field may already have run it).

Version 0 is a database without a user_version: one written before versioning, or a file just
created. The first step creates that original schema if absent, so both take the same path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    to_version: int
    why: str
    statements: tuple[str, ...]


#: The schema the ledger had before versioning, verbatim (so a new file becomes a version-0 database).
_V0 = (
    """CREATE TABLE IF NOT EXISTS transfers (
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
)""",
    """CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    event   TEXT NOT NULL,
    data    TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
)""",
)

#: Version 1: the final state vocabulary (laxchange.ledger.states), enforced by the database.
#: SQLite cannot add a CHECK to an existing table, so the table is rebuilt and the old names
#: renamed (`packed` → `queued`, `acknowledged` → `delivered`). The audit table is left as it
#: is: its old event names are hashed into the chain.
_V1 = (
    """CREATE TABLE transfers_v1 (
    transfer_id    TEXT NOT NULL,
    direction      TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    party          TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (
        (direction = 'out' AND state IN ('queued', 'sent', 'delivered', 'applied', 'rejected', 'expired',
                                         'uncollected'))
        OR (direction = 'in' AND state IN ('received', 'verified', 'imported', 'quarantined'))),
    created        TEXT,
    expires        TEXT,
    payload_sha256 TEXT,
    updated        TEXT NOT NULL,
    detail         TEXT,
    PRIMARY KEY (transfer_id, direction, party)
)""",
    """INSERT INTO transfers_v1 (transfer_id, direction, party, state, created, expires, payload_sha256, updated,
                              detail)
    SELECT transfer_id, direction, party,
           CASE WHEN direction = 'out' AND state = 'packed' THEN 'queued'
                WHEN direction = 'out' AND state = 'acknowledged' THEN 'delivered'
                ELSE state END,
           created, expires, payload_sha256, updated, detail
    FROM transfers""",
    "DROP TABLE transfers",
    "ALTER TABLE transfers_v1 RENAME TO transfers",
)

#: Version 2: what a transfer carried, so "what did we share about this child, and with whom?" can be
#: answered: the message type and a pseudonymous record reference (the record's random `record_id`,
#: never a name, UPN or anything derived from personal data). Rows from before stay NULL.
_V2 = (
    "ALTER TABLE transfers ADD COLUMN message_type TEXT",
    "ALTER TABLE transfers ADD COLUMN record_ref TEXT",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "state vocabulary of laxchange.ledger.states, enforced by a CHECK constraint", _V0 + _V1),
    Migration(2, "message type and pseudonymous record reference of each transfer", _V2),
)

#: The version this code writes and reads; a newer database is refused (`ledger.too-new`).
SCHEMA_VERSION = len(MIGRATIONS)
