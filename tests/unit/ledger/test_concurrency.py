"""Real processes racing the same transition: exactly one wins each round, the rest are refused.

A barrier releases the workers together each round (no sleeps). Two races per round: the import
path of a new inbound transfer (the double-import bug: two opens of one package) and an outbound
`sent → delivered` (two runs applying the same receipt), which would be won by everyone if the
current state were read outside the writing transaction.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

from laxchange.errors import LaxError
from laxchange.ledger.db import Ledger
from laxchange.ledger.errors import IllegalTransition
from laxchange.ledger.states import IMPORT_PATH, Outbound

WORKERS = 4
ROUNDS = 20


def _worker(path: str, barrier: Any, results: Any) -> None:
    try:
        with Ledger(Path(path), timeout=60) as ledger:
            for r in range(ROUNDS):
                for race, step in (("import", lambda r=r: ledger.advance("in", f"{r:032x}", "LA:919", *IMPORT_PATH)),
                                   ("deliver", lambda r=r: ledger.advance("out", f"{r:032x}", "URN:123456",
                                                                          Outbound.DELIVERED))):
                    barrier.wait(timeout=60)
                    try:
                        step()
                        results.put((race, r, "won"))
                    except IllegalTransition:
                        results.put((race, r, "refused"))
                    except LaxError as exc:  # reported, so the test says what went wrong
                        results.put((race, r, f"{type(exc).__name__}: {exc}"))
    except BaseException as exc:
        results.put(("worker", -1, f"crashed: {exc!r}"))
        barrier.abort()
        raise


def test_racing_processes_exactly_one_wins_each_transition(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger:
        for r in range(ROUNDS):
            ledger.advance("out", f"{r:032x}", "URN:123456", Outbound.QUEUED, Outbound.SENT)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(path), barrier, results)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    got = []
    try:
        while len(got) < WORKERS * ROUNDS * 2:
            item = results.get(timeout=120)
            assert item[0] != "worker", item
            got.append(item)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)

    outcomes = Counter((race, r, outcome) for race, r, outcome in got)
    unexpected = [k for k in outcomes if k[2] not in ("won", "refused")]
    assert not unexpected, unexpected
    for race in ("import", "deliver"):
        for r in range(ROUNDS):
            assert (outcomes[(race, r, "won")], outcomes[(race, r, "refused")]) == (1, WORKERS - 1), (race, r)

    with Ledger(path) as ledger:
        assert ledger.verify_audit() == [], "concurrent appends still form one chain"
        events = Counter(e["event"] for e in ledger.audit_entries())
        assert {s.state for s in ledger.transfers(direction="in")} == {"imported"}
        assert {s.state for s in ledger.transfers(direction="out")} == {"delivered"}
    assert events == {"out.queued": ROUNDS, "out.sent": ROUNDS, "out.delivered": ROUNDS,
                      "in.received": ROUNDS, "in.verified": ROUNDS, "in.imported": ROUNDS}
