"""`run_nightly(jobs=2)`: our drop folder collected in a forked child while this process imports each
batch as it comes (exchange.background), over a real OpenSSH sshd; and a child that dies mid-collect.

What the ledger and the report say must be what one process gives: every package imported once,
every receipt applied, each file's `collect.fetched` audit entry before its import's, no child left.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from laxchange import package
from laxchange.exchange.background import BackgroundCollect, fork_available
from laxchange.exchange.party import Party as LibParty
from laxchange.exchange.run import run_nightly
from laxchange.transport import Endpoint, LocalFolderTransport, RetryPolicy, Runner, SftpSettings, StaticEndpoints
from laxchange.transport.base import DoneResults
from laxchange.trust.keystore import ENCRYPTION
from tests.support.parties import Party, council_and_school, passphrase, record
from tests.support.sshd import Sshd

pytestmark = pytest.mark.skipif(not fork_available(), reason="no fork on this platform")

A, B = "LA:919", "URN:123456"
N = 150  # more than two batches of 64


def _lib(p: Party) -> LibParty:
    return LibParty.from_home(p.home, passphrase=passphrase, clock=p.clock, keystore=p.store, directory=p.directory,
                              sftp=SftpSettings(timeout=10), retry=RetryPolicy(attempts=2))


def _fetched_before_imported(p: LibParty) -> None:
    entries = p.ledger.audit_entries()
    fetched = {e["data"]["claimed_transfer_id"]: n for n, e in enumerate(entries) if e["event"] == "collect.fetched"}
    received = {e["data"]["transfer_id"]: n for n, e in enumerate(entries) if e["event"] == "in.received"}
    assert received and set(received) <= set(fetched)
    assert all(fetched[t] < n for t, n in received.items())


def test_a_night_with_the_collect_in_a_child_imports_and_receipts_as_one_process(tmp_path: Path) -> None:
    with Sshd(tmp_path / "sshd", []) as server:
        a, b, _drops = council_and_school(tmp_path, server)
        with _lib(a) as council:
            for i in range(N):
                council.pack(record(i + 1), message_type="pep-transfer", recipient=B,
                             out=a.home.outbox / f"pep{i:03d}.lax")
            assert len(run_nightly(council).sent) == N
        with _lib(b) as school:
            report = run_nightly(school, jobs=2)
            assert report.failures == [], report.to_dict()
            assert report.imported is not None and report.imported.counts() == {"imported": N}
            assert [r.error for r in report.imported.receipts_sent] == [None] * N
            assert sum(len(r.files) for r in report.imported.collected) == N
            assert school.ledger.counts()[A]["in"] == {"imported": N}
            _fetched_before_imported(school)
        assert not multiprocessing.active_children(), "the collecting child is gone after the run"
        with _lib(a) as council:
            back = run_nightly(council, jobs=2)
            assert back.failures == [], back.to_dict()
            assert back.imported is not None and back.imported.counts() == {"receipt": N}
            assert council.ledger.counts()[B]["out"] == {"delivered": N}
            again = run_nightly(council, jobs=2)  # nothing left to collect: nothing twice
            assert again.imported is not None and again.imported.items == [] and again.failures == []
        assert not multiprocessing.active_children()


class _DiesAtTheSecondBatch(LocalFolderTransport):
    """A transport whose second batch of moves kills the process it runs in, if that is not the
    test's own: the collecting child dying in the middle of the night (the OOM killer, kill -9),
    its second batch fetched into the inbox but not moved on the server, the third not fetched."""

    parent = os.getpid()
    moves = 0

    def move_many(self, names: Sequence[str], to_folder: str, *, folder: str = "") -> DoneResults:
        if os.getpid() != self.parent:
            type(self).moves += 1
            if type(self).moves == 2:
                os._exit(9)
        return super().move_many(names, to_folder, folder=folder)


def test_a_collecting_child_that_dies_loses_nothing_and_the_next_run_collects_the_rest(tmp_path: Path) -> None:
    a, b, drops = council_and_school(tmp_path)
    endpoints = StaticEndpoints({k: Endpoint(k, f"file://{v}") for k, v in drops.items()})

    def lib(p: Party, factory: type[LocalFolderTransport]) -> LibParty:
        return LibParty(home=p.home, keystore=p.store, directory=p.directory, clock=p.clock,
                        transports=Runner(endpoints, factory, RetryPolicy(attempts=1)))

    with lib(a, LocalFolderTransport) as council:
        for i in range(N):
            council.pack(record(i + 1), message_type="pep-transfer", recipient=B, out=a.home.outbox / f"p{i:03d}.lax")
        assert len(run_nightly(council).sent) == N
    _DiesAtTheSecondBatch.moves = 0
    with lib(b, _DiesAtTheSecondBatch) as school:
        first = run_nightly(school, jobs=2)
        codes = [f.error.code for f in first.failures]
        assert "collect.background" in codes, first.to_dict()
        assert first.imported is not None
        done = first.imported.counts().get("imported", 0)
        assert done == 128, "the batch told of, and the one in the inbox the child never told of, are imported"
        assert not multiprocessing.active_children()
    with lib(b, LocalFolderTransport) as school:
        second = run_nightly(school)
        assert second.imported is not None
        # the third batch, never fetched, now; the second again (not moved when the child died): the
        # same bytes, so duplicates, nothing imported twice
        assert second.imported.counts() == {"imported": N - 128, "duplicate": 64}, second.to_dict()
        assert school.ledger.counts()[A]["in"] == {"imported": N}, "each package imported once"


def test_a_child_never_started_goes_when_the_run_ends(tmp_path: Path) -> None:
    """A run that ends before its import (here: at once) leaves no child waiting."""
    a, _b, drops = council_and_school(tmp_path)
    runner = Runner(StaticEndpoints({A: Endpoint(A, f"file://{drops[A]}")}), LocalFolderTransport)
    with BackgroundCollect(runner, A, a.home.inbox) as child:
        assert multiprocessing.active_children()
    assert child.result is None
    assert not multiprocessing.active_children()


def _tamper_one(drop: Path) -> bytes:
    """Flip one payload byte of one package waiting in `drop`; its new bytes."""
    path = sorted(drop.rglob("*.lax"))[3]
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    return bytes(data)


def _local(p: Party, drops: dict[str, Path]) -> LibParty:
    endpoints = StaticEndpoints({k: Endpoint(k, f"file://{v}") for k, v in drops.items()})
    return LibParty(home=p.home, keystore=p.store, directory=p.directory, clock=p.clock,
                    transports=Runner(endpoints, LocalFolderTransport, RetryPolicy(attempts=1)))


def test_the_child_verifies_ahead_what_it_fetched_but_never_what_fails(tmp_path: Path) -> None:
    """Given `verify`, each package the child fetched comes back verified with its batch (the SHA-256
    of its bytes in the inbox), except the one that fails verification: that one is left to the import."""
    a, b, drops = council_and_school(tmp_path)
    with _local(a, drops) as council:
        for i in range(70):
            council.pack(record(i + 1), message_type="pep-transfer", recipient=B, out=a.home.outbox / f"p{i:03d}.lax")
        assert len(run_nightly(council).sent) == 70
    bad = _tamper_one(drops[B])
    for info in b.store.ring().keys_valid_at(b.clock.now(), ENCRYPTION):
        b.store.identity(info.kid)  # unlocked before the fork, as the run does

    def verify(path: Path) -> package.Verified | None:
        return package.verify_package(path, keystore=b.store, directory=b.directory, clock=b.clock)

    runner = Runner(StaticEndpoints({B: Endpoint(B, f"file://{drops[B]}")}), LocalFolderTransport)
    with BackgroundCollect(runner, B, b.home.inbox, verify=verify) as child:
        child.start()
        fetched = [f.local or f.name for batch in child.batches() for f in batch if f.error is None]
    assert len(fetched) == 70 and len(child.verified) == 69 and set(child.verified) < set(fetched)
    for name, v in child.verified.items():
        assert v.package_sha256 == hashlib.sha256((b.home.inbox / name).read_bytes()).hexdigest()
    assert hashlib.sha256(bad).hexdigest() not in {v.package_sha256 for v in child.verified.values()}


def test_a_night_with_packages_verified_ahead_still_refuses_the_bad_one_here(tmp_path: Path) -> None:
    """`run_nightly(jobs=2)` (the child verifies ahead): the good packages are imported and receipted as
    in one process, the tampered one quarantined with its own code, and the audit keeps its order."""
    a, b, drops = council_and_school(tmp_path)
    with _local(a, drops) as council:
        for i in range(N):
            council.pack(record(i + 1), message_type="pep-transfer", recipient=B, out=a.home.outbox / f"p{i:03d}.lax")
        assert len(run_nightly(council).sent) == N
    _tamper_one(drops[B])
    with _local(b, drops) as school:
        report = run_nightly(school, jobs=2)
        assert report.imported is not None
        assert report.imported.counts() == {"imported": N - 1, "quarantined": 1}, report.to_dict()
        [refused] = [i for i in report.imported.items if i.result == "quarantined"]
        assert refused.error is not None and refused.error.code == "package.tampered"
        assert school.ledger.counts()[A]["in"] == {"imported": N - 1, "quarantined": 1}
        _fetched_before_imported(school)
    with _local(a, drops) as council:
        back = run_nightly(council, jobs=2)
        assert back.imported is not None and back.imported.counts() == {"receipt": N}, back.to_dict()
        assert council.ledger.counts()[B]["out"] == {"delivered": N - 1, "rejected": 1}
