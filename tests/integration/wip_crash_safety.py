"""Crash safety of the nightly job, tested for real (issue 9 #9). NOT COLLECTED YET (no test_ prefix).

It fails on main today, and finds a real bug: a crash after the ledger records an inbound
transfer `imported` but before its `received/.incoming-*` folder is renamed into
`received/<transfer id>/` is never finished. The next run finds the package still in the inbox,
no `received/<id>`, and quarantines it as a replay (`package.replayed`); no delivered receipt is
sent, so the sender's transfer stays `sent`. Fix that (a staging folder findable by transfer,
then finish the import on the package's return instead of quarantining it), then rename this
file to test_crash_safety.py so pytest runs it as the regression test.

Council A and school B, each with its own drop folder on a real loopback OpenSSH sshd (named on
its card, host key pinned). `laxchange run` runs as a separate process and is killed with SIGKILL
at random points (a seeded RNG over the run's measured duration), alternately on A and on B, while
PEPs keep being queued on A. Then both run cleanly until quiet, and: every PEP is imported exactly
once on B, every A transfer is `delivered` (its receipt matched, no warning left), every package is
accounted for (in B's `inbox/opened/` and the drop folder's `processed/`, none vanished), every
ledger row is in a legal state, no half-filled folder is left, and `audit verify` passes on both sides.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from laxchange.cli import main
from laxchange.clock import FixedClock
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import Inbound, Outbound
from tests.support.parties import PASSPHRASE, REPO, Party, make_party, record
from tests.support.sshd import Sshd

A, B = "LA:919", "URN:123456"
KILLS = 24
SEED = 9
FORK = multiprocessing.get_context("fork")


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def _cmd(p: Party, *args: str) -> list[str]:
    return [sys.executable, "-m", "laxchange", "--home", str(p.home.root), *args]


def _child(args: list[str], out: str) -> None:
    """The forked process: `laxchange ARGS` with its stdout in `out`, then exit with its code."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ["LAXCHANGE_PASSPHRASE"] = PASSPHRASE.decode()
    try:
        main(args, prog_name="laxchange")
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    os._exit(0)


def _start(p: Party, out: Path) -> Any:
    """`laxchange run` in its own process, forked from this one (already imported: no start-up cost,
    so the kills land in the job's work, not in the interpreter's start)."""
    proc = FORK.Process(target=_child, args=(["--home", str(p.home.root), "--json", "run", "--timeout", "5",
                                              "--retries", "1"], str(out)))
    proc.start()
    return proc


def _run(p: Party) -> dict[str, Any]:
    out = p.home.root.parent / f"run-{p.party.replace(':', '_')}.json"
    proc = _start(p, out)
    proc.join(60)
    assert proc.exitcode in (0, 10), (proc.exitcode, out.read_text())
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _killed_run(p: Party, delay: float) -> bool:
    """Start a run and SIGKILL it after `delay` seconds; False if it finished first."""
    proc = _start(p, p.home.root.parent / "killed.out")
    proc.join(delay)
    if proc.exitcode is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    return True


def _queue(p: Party, tmp: Path, n: int) -> str:
    src = tmp / f"pep-{n}.json"
    src.write_text(json.dumps(record(n)))
    r = subprocess.run(_cmd(p, "--json", "pack", str(src), "--type", "pep-transfer", "--to", B,
                            "-o", str(p.home.outbox / f"pep-{n}.lax")),
                       env=_env(), capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    tid: str = json.loads(r.stdout)["manifest"]["transfer_id"]
    return tid


def _audit(p: Party) -> list[dict[str, Any]]:
    with Ledger(p.home.ledger_db) as ledger:
        return ledger.audit_entries()


def test_sigkill_at_random_points_loses_nothing_and_imports_once(tmp_path: Path, sshd: Sshd) -> None:
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    drops = {A: tmp_path / "drop-council", B: tmp_path / "drop-school"}
    parties = {}
    for who, name in ((A, "Example Council (fictional)"), (B, "Example School (fictional)")):
        drops[who].mkdir()
        parties[who] = make_party(tmp_path, who, name, clock, sftp_url=sshd.url(drops[who]),
                                  host_key_fingerprints=[sshd.fingerprint])
        with sshd.authorized.open("a") as fh:
            fh.write(Path(str(parties[who].home.ssh_client_key) + ".pub").read_text())
    a, b = parties[A], parties[B]
    a.trust(b)
    b.trust(a)

    rng = random.Random(SEED)
    tids = [_queue(a, tmp_path, n) for n in range(3)]
    started = time.monotonic()
    _run(a)
    duration = {A: time.monotonic() - started, B: 0.0}
    started = time.monotonic()
    _run(b)
    duration[B] = time.monotonic() - started
    print("DUR", duration)
    tids += [_queue(a, tmp_path, n) for n in range(3, 6)]

    kills = 0
    attempts = 0
    while kills < KILLS:
        attempts += 1
        assert attempts < KILLS * 3, "runs kept finishing before the kill"
        if attempts % 4 == 0:
            tids.append(_queue(a, tmp_path, 100 + attempts))
        p = a if attempts % 2 else b
        kills += _killed_run(p, rng.uniform(0.2, 1.0) * duration[p.party])

    print("KILLPHASE", time.monotonic() - started, attempts)
    for _ in range(4):  # clean runs, both sides, until quiet
        ra, rb = _run(a), _run(b)
    ra = _run(a)
    assert ra["complete"] is True, json.dumps({k: ra[k] for k in ("failures", "receipt_warnings", "overdue", "import")})
    assert ra["receipt_warnings"] == [] and ra["failures"] == [] and rb["failures"] == []

    # every PEP imported exactly once on B
    imported = collections.Counter((e["data"].get("party"), e["data"].get("transfer_id"))
                                   for e in _audit(b) if e["event"] == "in.imported")
    assert {k: v for k, v in imported.items() if v != 1} == {}
    assert sorted(t for _, t in imported) == sorted(tids)
    received = b.home.root / "received"
    assert sorted(os.listdir(received)) == sorted(tids), (sorted(os.listdir(received)), sorted(tids))
    for tid in tids:
        assert (received / tid / "record.json").is_file()
        # nothing lost: the package is in B's opened inbox and the drop folder's processed/
        assert (b.home.inbox / "opened" / f"{tid}.lax").is_file()
        assert (drops[B] / "processed" / f"{tid}.lax").is_file()
    assert not list(b.home.quarantine.glob("*.lax")), "nothing quarantined"

    # every A transfer delivered, every ledger row legal
    with Ledger(a.home.ledger_db) as ledger:
        out = {t.transfer_id: t.state for t in ledger.transfers(direction="out")}
    assert out == dict.fromkeys(tids, "delivered")
    for p, legal in ((a, {*Outbound, *Inbound}), (b, {*Outbound, *Inbound})):
        with Ledger(p.home.ledger_db) as ledger:
            assert {t.state for t in ledger.transfers()} <= {str(s) for s in legal}
            assert ledger.verify_audit() == []
        v = subprocess.run(_cmd(p, "audit", "verify"), env=_env(), capture_output=True, text=True,
                           timeout=60, check=False)
        assert v.returncode == 0, v.stdout + v.stderr
