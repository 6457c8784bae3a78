"""One transfer is imported once: real processes opening copies of one package at the same time.

Each round a barrier releases the workers together (no sleeps); every worker opens its own copy
of the round's package (`open` of copies), and two of them open one inbox file. Exactly one
import per transfer: one success, one record written, one `in.imported` audit entry; every
other open is refused with `package.replayed` (exit 3), or for the inbox file, while the winner
holds the home's run lock, `run.locked` (exit 5), and writes nothing. Also: a crash after
the reservation, a tampered copy and a failure that is not the package's all leave a state
from which the genuine package is still imported.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from laxchange import package
from laxchange.clock import FixedClock
from laxchange.errors import LaxError
from laxchange.exchange import Party
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from tests.support.parties import PASSPHRASE, REPO, T0, make_party, passphrase, record

WORKERS = 4
ROUNDS = 10


def _party(home: str) -> Party:
    return Party.from_home(Home(Path(home)), passphrase=passphrase, clock=FixedClock(T0))


def _worker(home: str, tmp: str, index: int, barrier: Any, results: Any) -> None:
    try:
        with _party(home) as me:
            for r in range(ROUNDS):
                jobs = [("copies", Path(tmp) / f"r{r}-copy{index}.lax", Path(tmp) / f"r{r}-out{index}.json"),
                        ("inbox", me.home.inbox / f"r{r}.lax", Path(tmp) / f"r{r}-inbox{index}.json")]
                for race, src, out in jobs:
                    barrier.wait(timeout=30)
                    if race == "inbox" and index >= 2:
                        continue  # two openers of one inbox file
                    try:
                        me.open(src, out=out)
                        results.put((race, r, index, 0, ""))
                    except LaxError as exc:
                        results.put((race, r, index, exc.exit_code, exc.code))
    except BaseException as exc:
        results.put(("worker", -1, index, -1, f"crashed: {exc!r}"))
        barrier.abort()
        raise


def test_concurrent_opens_of_one_transfer_import_it_exactly_once(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School")
    a.trust(b)
    b.trust(a)
    b.home.inbox.mkdir(parents=True, exist_ok=True)
    tids = {}
    for race in ("copies", "inbox"):
        for r in range(ROUNDS):
            data = a.pack(record(r + 1), "URN:123456")
            tids[race, r] = package.read_manifest(io.BytesIO(data))[0].transfer_id
            if race == "inbox":
                (b.home.inbox / f"r{r}.lax").write_bytes(data)
            else:
                for i in range(WORKERS):
                    (tmp_path / f"r{r}-copy{i}.lax").write_bytes(data)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(b.home.root), str(tmp_path), i, barrier, results))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    got = []
    try:
        while len(got) < ROUNDS * (WORKERS + 2):
            item = results.get(timeout=60)
            assert item[0] != "worker", item
            got.append(item)
    finally:
        for p in procs:
            p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)

    with Ledger(b.home.ledger_db) as ledger:
        imported = [e["data"]["transfer_id"] for e in ledger.audit_entries() if e["event"] == "in.imported"]
        assert ledger.verify_audit() == []
        rows = {t.transfer_id: t.state for t in ledger.transfers(direction="in")}
    for race, n in (("copies", WORKERS), ("inbox", 2)):
        for r in range(ROUNDS):
            outcome = sorted((code, why) for rc, rr, _i, code, why in got if (rc, rr) == (race, r))
            assert len(outcome) == n
            # two opens of one inbox file: the other waits on neither lock; it is refused as a replay,
            # or, while the winner holds the home's run lock (`Party.open` of an inbox file), `run.locked`
            refusals = {(3, "package.replayed")} | ({(5, "run.locked")} if race == "inbox" else set())
            assert outcome[0] == (0, "") and set(outcome[1:]) <= refusals, (race, r, outcome)
            winner = next(i for rc, rr, i, code, _ in got if (rc, rr) == (race, r) and code == 0)
            stem = "out" if race == "copies" else "inbox"
            written = sorted(p.name for p in tmp_path.glob(f"r{r}-{stem}*.json"))
            assert written == [f"r{r}-{stem}{winner}.json"], "a refused open wrote nothing"
            assert imported.count(tids[race, r]) == 1, "exactly one in.imported per transfer"
            assert rows[tids[race, r]] == "imported"


def test_copies_opened_through_the_cli_at_once_exit_0_once_and_3_otherwise(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))  # the CLI uses the real clock
    a = make_party(tmp_path, "LA:919", "Example Council", clock)
    b = make_party(tmp_path, "URN:123456", "Example School", clock)
    a.trust(b)
    b.trust(a)
    data = a.pack(record(7), "URN:123456")
    for i in range(WORKERS):
        (tmp_path / f"copy{i}.lax").write_bytes(data)
    env = {**os.environ, "LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "laxchange", "--home", str(b.home.root), "--json", "open",
                               str(tmp_path / f"copy{i}.lax"), "-o", str(tmp_path / f"out{i}.json")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(WORKERS)]
    outs = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in procs]
    assert sorted(rc for rc, _ in outs) == [0, 3, 3, 3], outs
    for rc, out in outs:
        if rc == 3:
            assert json.loads(out)["error"] == "package.replayed"
    assert len(list(tmp_path.glob("out*.json"))) == 1
    with Ledger(b.home.ledger_db) as ledger:
        assert [e["event"] for e in ledger.audit_entries()].count("in.imported") == 1


def _crash_after_reservation(home: str, src: str, out: str) -> None:
    def die(*_a: Any, **_k: Any) -> None:
        os._exit(9)  # the process dies holding the reservation, before writing

    package.jsonio.write_atomic = die  # type: ignore[assignment]
    with _party(home) as me:
        me.open(Path(src), out=Path(out))


def test_a_crash_after_the_reservation_leaves_the_transfer_importable(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School")
    a.trust(b)
    b.trust(a)
    pkg = tmp_path / "p.lax"
    pkg.write_bytes(a.pack(record(8), "URN:123456"))
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_crash_after_reservation, args=(str(b.home.root), str(pkg), str(tmp_path / "x.json")))
    p.start()
    p.join(timeout=120)
    assert p.exitcode == 9
    with Ledger(b.home.ledger_db) as ledger:
        assert [t.state for t in ledger.transfers(direction="in")] == ["received"]
    assert not (tmp_path / "x.json").exists()
    with _party(str(b.home.root)) as me:
        me.open(pkg, out=tmp_path / "y.json")
        events = [(e["event"], e["data"].get("after")) for e in me.ledger.audit_entries()]
    assert events == [("in.received", None), ("in.received", "unfinished open"), ("in.verified", None),
                      ("in.imported", None)]


def test_a_tampered_copy_then_the_genuine_package(tmp_path: Path) -> None:
    """A damaged payload behind a genuine manifest fails after the reservation: the transfer goes
    to `quarantined`, the file named by hand stays where it was, and the genuine package opens."""
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School")
    a.trust(b)
    b.trust(a)
    data = a.pack(record(9), "URN:123456")
    bad = bytearray(data)
    bad[-50] ^= 1
    (tmp_path / "bad.lax").write_bytes(bytes(bad))
    (tmp_path / "good.lax").write_bytes(data)
    with _party(str(b.home.root)) as me:
        with pytest.raises(LaxError) as exc:
            me.open(tmp_path / "bad.lax", out=tmp_path / "bad.json")
        assert exc.value.code == "package.tampered" and exc.value.exit_code == 3
        assert (tmp_path / "bad.lax").read_bytes() == bytes(bad) and not (tmp_path / "bad.json").exists()
        assert not b.home.quarantine.exists() or not any(b.home.quarantine.iterdir()), "never copied"
        assert [t.state for t in me.ledger.transfers(direction="in")] == ["quarantined"]
        # a failure that is not the package's (here: the output exists) releases the reservation
        (tmp_path / "taken.json").write_text("{}")
        with pytest.raises(LaxError) as exc:
            me.open(tmp_path / "good.lax", out=tmp_path / "taken.json")
        assert exc.value.code == "output.exists"
        me.open(tmp_path / "good.lax", out=tmp_path / "good.json")
        assert [t.state for t in me.ledger.transfers(direction="in")] == ["imported"]
        with pytest.raises(LaxError) as exc:
            me.open(tmp_path / "good.lax", out=tmp_path / "again.json")
        assert exc.value.code == "package.replayed" and not (tmp_path / "again.json").exists()


def test_a_reservation_is_live_from_the_moment_its_row_is_committed(tmp_path: Path) -> None:
    """Another thread of this process asking for abandoned reservations just after a reservation's
    commit must not see it as left over (`finish_quarantines` would then take a row an open is still
    working on): the token is live before the row names it."""
    seen: list[list[str]] = []
    watcher = Ledger(tmp_path / "ledger.sqlite3", clock=FixedClock(T0))

    def just_committed(events: tuple[str, ...]) -> None:
        seen.append([t.transfer_id for t, _ in watcher.abandoned_reservations()])

    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=FixedClock(T0), on_commit=just_committed)
    token = ledger.reserve("ab" * 16, "LA:919")
    assert seen == [[]], "held by a live open, not abandoned"
    ledger.release("ab" * 16, "LA:919", token)
