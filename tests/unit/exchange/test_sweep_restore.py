"""The nightly run's sweep of never-queued outbox packages (`run._sweep_unqueued`) and a ledger restored from backup."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from laxchange.exchange import Party, notify_placement
from laxchange.exchange.run import UNQUEUED, UNQUEUED_AFTER, run_nightly
from laxchange.ledger.db import Ledger
from tests.support.parties import T0, passphrase, placement_world

PURPOSE = "statutory duty to share the PEP with the new school"


def test_a_ledger_restored_from_backup_does_not_cost_the_outbox_its_sent_packages(tmp_path: Path) -> None:
    """`doctor` says of a damaged ledger "restore from backup". A ledger
    restored from last night's backup has no row for what was queued and sent since; those
    packages are still in the outbox (which "keeps every package sent, for years") under their
    `<transfer id>.lax` names. The sweep meant for a notify interrupted before its commit cannot
    tell them apart, and deleted every one of them, the only local copy of what was sent: they are
    set aside instead (outbox/unqueued/), byte for byte, and never sent from there."""
    vsh, hvs, school, rec = placement_world(tmp_path)
    for p in (hvs, school):
        (tmp_path / "drop" / p.party.replace(":", "_")).mkdir(parents=True, exist_ok=True)
    me = Party.from_home(vsh.home, passphrase=passphrase, clock=vsh.clock, keystore=vsh.store,
                         directory=vsh.directory)
    with me:
        me.ledger.notes([])  # the ledger exists, as last night's backup of it
    backup = tmp_path / "ledger-backup.db"
    with sqlite3.connect(vsh.home.ledger_db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    with Party.from_home(vsh.home, passphrase=passphrase, clock=vsh.clock, keystore=vsh.store,
                         directory=vsh.directory) as me:
        result = notify_placement(me, rec, to=[hvs.party, school.party], reason="new-placement", purpose=PURPOSE)
    sent = [n.path for n in result.packages]
    assert sent and all(p.is_file() for p in sent)
    with Ledger(vsh.home.ledger_db) as ledger:
        assert {t.state for t in ledger.transfers(direction="out")} == {"sent"}
    # the ledger is damaged and restored from the backup (the outbox is as it was)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{vsh.home.ledger_db}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(backup) as src, sqlite3.connect(vsh.home.ledger_db) as dst:
        src.backup(dst)
    kept = {p.name: p.read_bytes() for p in sent}
    for p in sent:  # the next night
        os.utime(p, ((T0 - UNQUEUED_AFTER - dt.timedelta(hours=2)).timestamp(),) * 2)
    with Party.from_home(vsh.home, passphrase=passphrase, clock=vsh.clock, keystore=vsh.store,
                         directory=vsh.directory) as me:
        run_nightly(me, collect=False)
    assert all(p.is_file() or (p.parent / UNQUEUED / p.name).read_bytes() == kept[p.name] for p in sent), \
        "the run deleted packages that were sent"
