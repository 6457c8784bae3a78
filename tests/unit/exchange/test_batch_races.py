"""An import batch's transaction (`OpenBatch`) and another run opening the same inbox package."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from laxchange.errors import LaxError
from laxchange.exchange import Party
from laxchange.exchange.inbound import import_inbox
from laxchange.exchange.party import OpenBatch
from laxchange.ledger.db import Ledger
from laxchange.ledger.lock import RunLock, RunLocked
from tests.support.parties import drop_pair, record

A, B = "LA:919", "URN:123456"


def _delivered(tmp_path: Path, name: str, seed: int, attachments: Sequence[Path] = ()) -> tuple[Party, Party]:
    """A council and a school trusting each other over local drop folders, and one PEP from the
    council (with `attachments`) collected into the school's inbox."""
    pa, pb = drop_pair(tmp_path)
    pa.pack(record(seed), message_type="pep-transfer", recipient=B, out=tmp_path / name, attachments=attachments)
    assert pa.send(B, [tmp_path / name]).ok and pb.collect([B])[0].ok
    return pa, pb


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Party, Party]:
    return _delivered(tmp_path, "pep1.lax", 1)


def _other(b: Party, **kw: Any) -> Party:
    """Another run on `b`'s home: its own ledger connection, as another process has."""
    return Party(home=b.home, keystore=b.keystore, directory=b.directory, clock=b.clock, transports=b.transports,
                 ledger=Ledger(b.home.ledger_db, clock=b.clock, **kw))


def test_an_open_that_waited_on_a_batch_does_not_quarantine_the_batch_s_package(pair: tuple[Party, Party],
                                                                                 tmp_path: Path) -> None:
    """Since the batch's reservations joined its transaction (review4's finding), an open of the same
    inbox package while the batch was open waited on the batch's write lock and woke at its commit,
    when the row is `imported` but the import has not yet filed the package (`_file_staged` fsyncs
    first): it was refused as a replay and moved to quarantine from under the import. An open of
    an inbox file now takes the home's run lock, which the import holds: refused at once, nothing
    touched."""
    _, b = pair
    [inbox] = b.home.inbox.glob("*.lax")
    lock = RunLock(b.home.run_lock, clock=b.clock)
    lock.acquire()  # as `import` and the nightly run hold it
    batch = OpenBatch(b, hold=60)
    b.open(inbox, out=tmp_path / "first.json", batch=batch)
    errors: list[LaxError] = []

    def race() -> None:  # `laxchange open` of the inbox package, started while the batch is open
        other = _other(b, timeout=10)
        try:
            other.open(inbox, out=tmp_path / "second.json")
        except LaxError as exc:
            errors.append(exc)
        finally:
            other.ledger.close()

    t = threading.Thread(target=race)
    t.start()
    time.sleep(1.0)  # the other open is waiting on the batch's lock
    assert batch.commit() == [None]
    t.join(20)
    lock.release()
    assert not t.is_alive() and len(errors) == 1 and errors[0].code == "run.locked"
    assert inbox.exists(), f"the batch's package was moved away by the other open: {errors[0].message}"
    assert not (tmp_path / "second.json").exists()
    assert not b.home.quarantine.exists() or not any(b.home.quarantine.iterdir())


def test_an_import_survives_its_package_being_refused_by_another_run_before_filing(pair: tuple[Party, Party],
                                                                                    tmp_path: Path) -> None:
    """The consequence of the race above for `laxchange import`: the other
    run's refusal moves the inbox package to quarantine right after the batch's commit, and the
    import's `_file_staged` then moves the package to inbox/opened/ with `Path.replace`: a bare
    FileNotFoundError, a traceback, the rest of the run (receipts) not done."""
    _, b = pair
    done: list[str] = []

    def other_run_wakes(events: tuple[str, ...]) -> None:  # the waiting open proceeds as the lock is freed
        if "in.imported" in events and not done:
            done.append("x")
            other = _other(b)
            try:
                other.open_inbox(tmp_path / "other-out")
            except RunLocked:  # the import holds the run lock: the other run touches nothing
                done.append("locked")
            finally:
                other.ledger.close()

    hooked = Party(home=b.home, keystore=b.keystore, directory=b.directory, clock=b.clock,
                   transports=b.transports, ledger=Ledger(b.home.ledger_db, clock=b.clock, on_commit=other_run_wakes))
    report = import_inbox(hooked, collect=False)
    hooked.ledger.close()
    assert done == ["x", "locked"] and [(i.result, i.error) for i in report.items] == [("imported", None)]


def test_a_large_package_s_open_does_not_hold_the_ledger_s_write_lock_throughout(tmp_path: Path) -> None:
    """(review4's finding, fixed) `Party.open(batch=...)` begins the batch's transaction (BEGIN
    IMMEDIATE) before `open_package`, which reserves and then hashes, decrypts and writes the whole
    package (up to SFTP's 4 GB limit) with the write lock held; `OpenBatch.hold` is looked at only
    after the open. Meanwhile every other writer of the ledger (`notify`, `send`, another `open`)
    waits, and past its busy timeout fails `ledger.busy`, where before it waited for a short commit."""
    big = tmp_path / "scan.pdf"
    big.write_bytes(os.urandom(256 * 1024 * 1024))  # about 1 s to open on a fast machine (128 MiB: 0.55 s)
    _pa, pb = _delivered(tmp_path, "big.lax", 2, [big])
    [inbox] = pb.home.inbox.glob("*.lax")
    busy: list[str] = []
    stop = threading.Event()

    def another_writer() -> None:  # e.g. the VSH's `laxchange notify`, with a short busy timeout
        # 0.3 s: less than half what the open takes (1-2 s), twice the 0.15 s it was, for a
        # commit whose fsync stalls on a busy disk
        with Ledger(pb.home.ledger_db, clock=pb.clock, timeout=0.3) as ledger:
            while not stop.is_set():
                try:
                    with ledger.batch():  # a write transaction (BEGIN IMMEDIATE), as any writer's
                        pass
                except LaxError as exc:
                    busy.append(exc.code)
                time.sleep(0.01)

    t = threading.Thread(target=another_writer)
    t.start()
    try:
        started = time.monotonic()
        batch = OpenBatch(pb)
        pb.open(inbox, out=tmp_path / "big.json", batch=batch)
        took = time.monotonic() - started
        assert batch.commit() == [None]
    finally:
        stop.set()
        t.join(10)
    assert took > 0.6, f"the open took {took:.2f}s: too quick to show anything"
    assert busy == [], f"another writer failed busy {len(busy)} times during a {took:.1f}s open"
