"""Ctrl-C or a service stop (`systemctl stop`: the CLI raises both as KeyboardInterrupt) in the
middle of a step: what was finished stays on record, nothing is lost, and nothing is done twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from laxchange.exchange.party import Party as LibParty
from laxchange.exchange.run import run_nightly
from laxchange.ledger.db import Ledger
from laxchange.transport import Endpoint, LocalFolderTransport, RetryPolicy, Runner, StaticEndpoints
from laxchange.transport.base import DoneResults, PutItem
from laxchange.transport.ops import SEND_BATCH
from tests.support.parties import Party, council_and_school, record

A, B = "LA:919", "URN:123456"


class _StoppedAtTheSecondBatch(LocalFolderTransport):
    """Uploads its first batch, then is stopped as the second begins."""

    batches = 0

    def put_many(self, items: Sequence[PutItem], *, folder: str = "") -> DoneResults:
        type(self).batches += 1
        if type(self).batches == 2:
            raise KeyboardInterrupt
        return super().put_many(items, folder=folder)


def _lib(p: Party, drops: dict[str, Path], factory: type[LocalFolderTransport] = LocalFolderTransport,
         ledger: Ledger | None = None) -> LibParty:
    endpoints = StaticEndpoints({k: Endpoint(k, f"file://{v}") for k, v in drops.items()})
    return LibParty(home=p.home, keystore=p.store, directory=p.directory, clock=p.clock, ledger=ledger,
                    transports=Runner(endpoints, factory, RetryPolicy(attempts=1)))


def test_a_send_stopped_part_way_keeps_its_finished_batches_sent_and_the_next_run_sends_only_the_rest(
        tmp_path: Path) -> None:
    """Each batch is recorded `sent` once it is published: the next run sends what was left, and
    nothing twice (which both sides' morning reports would count). It used to record the whole
    partner's uploads at the end, so a stopped send uploaded every one of them again."""
    a, _b, drops = council_and_school(tmp_path)
    n = SEND_BATCH + 6
    with _lib(a, drops) as council:
        files = [a.home.outbox / f"pep{i:03d}.lax" for i in range(n)]
        for i, f in enumerate(files):
            council.pack(record(i + 1), message_type="pep-transfer", recipient=B, out=f)
    _StoppedAtTheSecondBatch.batches = 0
    with _lib(a, drops, _StoppedAtTheSecondBatch) as council, pytest.raises(KeyboardInterrupt):
        council.send(B, files)
    uploaded = {p.name for p in drops[B].rglob("*.lax")}
    assert len(uploaded) == SEND_BATCH
    with _lib(a, drops) as council:
        assert council.ledger.counts()[B]["out"] == {"sent": SEND_BATCH, "queued": 6}
        rest = run_nightly(council)
        assert rest.failures == [], rest.to_dict()
        assert len(rest.sent) == 6 and not {s["file"] for s in rest.to_dict()["sent"]} & uploaded
        assert council.ledger.counts()[B]["out"] == {"sent": n}
    assert len(list(drops[B].rglob("*.lax"))) == n


def test_an_open_stopped_just_after_its_commit_keeps_the_record_it_imported(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A signal that comes during SQLite's COMMIT is raised once it returns: the transfer is then
    `imported` and cannot be opened again (a replay), so the record written must stay, the import
    is logged as any other, and the interrupt says where the record is. It used to be removed,
    which lost the record."""
    caplog.set_level(logging.INFO, logger="laxchange")
    a, b, drops = council_and_school(tmp_path)
    pkg = tmp_path / "pep.lax"
    with _lib(a, drops) as council:
        council.pack(record(7), message_type="pep-transfer", recipient=B, out=pkg)

    def stop_after_the_commit(events: tuple[str, ...]) -> None:
        if "in.imported" in events:
            raise KeyboardInterrupt

    out = tmp_path / "pep.json"
    ledger = Ledger(b.home.ledger_db, clock=b.clock, on_commit=stop_after_the_commit)
    with _lib(b, drops, ledger=ledger) as school, pytest.raises(KeyboardInterrupt) as stopped:
        school.open(pkg, out=out)
    assert out.is_file() and out.stat().st_size > 0, "the imported record is kept"
    assert any("was imported before the interrupt" in n and str(out) in n for n in stopped.value.__notes__)
    assert [r.getMessage() for r in caplog.records].count("open.imported") == 1
    with _lib(b, drops) as school:
        assert school.ledger.counts()[A]["in"] == {"imported": 1}


class _StoppedAfterANestedBatch(Ledger):
    """A ledger whose batch inside a caller's batch is followed at once by an interrupt."""

    @contextmanager
    def batch(self) -> Iterator[None]:
        nested = self.in_batch
        with super().batch():
            yield
        if nested:
            raise KeyboardInterrupt


def test_an_open_inside_a_callers_batch_stopped_after_its_own_part_leaves_nothing(tmp_path: Path) -> None:
    """A library caller's own `ledger.batch()` around `open` commits only when it ends: an interrupt
    after the open's part of it rolls the whole batch back, so the record must go too (a record on
    disk that the ledger and its audit log do not show), and the package opens again later."""
    a, b, drops = council_and_school(tmp_path)
    pkg = tmp_path / "pep.lax"
    with _lib(a, drops) as council:
        council.pack(record(8), message_type="pep-transfer", recipient=B, out=pkg)
    out = tmp_path / "pep.json"
    ledger = _StoppedAfterANestedBatch(b.home.ledger_db, clock=b.clock)
    with _lib(b, drops, ledger=ledger) as school, pytest.raises(KeyboardInterrupt), ledger.batch():
        school.open(pkg, out=out)
    assert not out.exists(), "nothing the rolled-back batch recorded is left on disk"
    with _lib(b, drops) as school:
        assert A not in school.ledger.counts()
        school.open(pkg, out=out)
        assert school.ledger.counts()[A]["in"] == {"imported": 1}
