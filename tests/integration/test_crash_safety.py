"""Crash safety of the nightly job, tested for real (issue 9 #9).

Council A and school B, each with its own drop folder on a real loopback OpenSSH sshd (named on
its card, host key pinned). `laxchange run` runs as a separate process and is killed with SIGKILL:

- at random points (a seeded RNG over the run's measured duration), alternately on A and on B,
  while PEPs keep being queued on A;
- at every kind of ledger transition the job makes, on each side, right after it commits (the
  ledger's injected `on_commit` hook kills the process; the test fails if a kill point is never
  reached).

Then both run cleanly until quiet, and: every PEP is imported exactly once on B, every A transfer
is `delivered` (its receipt matched, no warning left), every package is accounted for (in B's
`inbox/opened/` and the drop folder's `processed/`, none vanished), every ledger row is in a legal
state, no half-filled folder is left, and `audit verify` passes on both sides.

It found a real bug when first written: a crash between `in.imported` and the filing of
`received/<transfer id>/` left the package to be quarantined as a replay on the next run, with no
receipt ever sent (fixed by `Party.reopen_imported`; see docs/states.md, `in.resumed`).
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
from laxchange.exchange.party import Party as ExchangeParty
from laxchange.exchange.run import run_nightly
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import Inbound, Outbound
from laxchange.render import render_record_html
from laxchange.transport import RetryPolicy, SftpSettings
from tests.support.parties import PASSPHRASE, REPO, Party, make_party, record
from tests.support.sshd import Sshd

A, B = "LA:919", "URN:123456"
KILLS = 20
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
    sys.stdout = sys.stderr = open(1, "w", closefd=False)  # noqa: SIM115 (pytest's capture replaced them)
    os.environ["LAXCHANGE_PASSPHRASE"] = PASSPHRASE.decode()
    try:
        main(args, prog_name="laxchange")
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    sys.stdout.flush()
    os._exit(0)


def _hooked_child(root: str, event: str) -> None:
    """The forked process: the nightly job with a ledger that kills this process (SIGKILL) right after
    the first transaction that writes `event` commits."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.environ["LAXCHANGE_PASSPHRASE"] = PASSPHRASE.decode()

    def crash(events: tuple[str, ...]) -> None:
        if event in events:
            os.kill(os.getpid(), signal.SIGKILL)

    home = Home(Path(root))
    party = ExchangeParty.from_home(home, sftp=SftpSettings(timeout=5), retry=RetryPolicy(attempts=1),
                                    ledger=Ledger(home.ledger_db, on_commit=crash))
    run_nightly(party, render=render_record_html)
    os._exit(0)


def _killed_at(p: Party, event: str) -> bool:
    """Run the job on `p` and kill it at the first commit of `event`; False if it finished without one."""
    proc = FORK.Process(target=_hooked_child, args=(str(p.home.root), event))
    proc.start()
    proc.join(60)
    assert proc.exitcode in (0, -signal.SIGKILL), proc.exitcode
    return proc.exitcode == -signal.SIGKILL


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
    assert proc.exitcode in (0, 10, -signal.SIGKILL), proc.exitcode  # it may have finished just before the kill
    return proc.exitcode == -signal.SIGKILL


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


def _two_parties(tmp_path: Path, sshd: Sshd) -> tuple[Party, Party, dict[str, Path]]:
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
    return a, b, drops


def test_sigkill_at_random_points_loses_nothing_and_imports_once(tmp_path: Path, sshd: Sshd) -> None:
    a, b, drops = _two_parties(tmp_path, sshd)
    rng = random.Random(SEED)
    tids = [_queue(a, tmp_path, n) for n in range(3)]
    started = time.monotonic()
    _run(a)
    duration = {A: time.monotonic() - started, B: 0.0}
    started = time.monotonic()
    _run(b)
    duration[B] = time.monotonic() - started
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

    _settle_and_check(a, b, drops, tids)


#: Every kind of ledger commit the nightly job makes in this exchange, by side: A sends PEPs and
#: applies receipts, B imports PEPs and sends receipts.
#: A kill at `in.imported` leaves an interrupted import, which the next run finishes (`in.resumed`).
KILL_POINTS = [
    (A, "out.sent"), (B, "collect.fetched"), (B, "in.received"), (B, "in.imported"), (B, "in.resumed"),
    (B, "out.queued"), (B, "out.sent"), (A, "collect.fetched"), (A, "in.received"), (A, "in.imported"),
    (A, "in.resumed"), (A, "out.delivered"),
]


def test_sigkill_at_every_ledger_transition_loses_nothing(tmp_path: Path, sshd: Sshd) -> None:
    a, b, drops = _two_parties(tmp_path, sshd)
    parties = {A: a, B: b}
    tids: list[str] = []
    for n, (side, event) in enumerate(KILL_POINTS):
        tids.append(_queue(a, tmp_path, 200 + n))
        other = b if side == A else a
        for _ in range(4):  # until the job on `side` reaches the kill point; the other side makes work for it
            if _killed_at(parties[side], event):
                break
            _run(other)
        else:
            raise AssertionError(f"the job on {side} never committed {event}: the kill point was not reached")
    _settle_and_check(a, b, drops, tids)
    resumed = [e for p in (a, b) for e in _audit(p) if e["event"] == "in.resumed"]
    assert resumed, "an interrupted import was finished from the package"


def test_sigkill_at_one_commit_of_several_imports_resumes_each(tmp_path: Path, sshd: Sshd) -> None:
    """An import records the `imported` of a batch of packages in one commit (`OpenBatch`): killed right
    after it, every one of them is `imported` and none filed, and the next runs file each exactly once."""
    a, b, drops = _two_parties(tmp_path, sshd)
    tids = [_queue(a, tmp_path, 300 + n) for n in range(3)]
    _run(a)
    assert _killed_at(b, "in.imported"), "the import never committed in.imported"
    with Ledger(b.home.ledger_db) as ledger:
        rows = {t.transfer_id: t.state for t in ledger.transfers(direction="in")}
    assert rows == dict.fromkeys(tids, "imported"), rows  # one commit recorded all three
    filed = [d for d in os.listdir(b.home.root / "received") if not d.startswith(".")]
    assert filed == [], filed
    _settle_and_check(a, b, drops, tids)
    resumed = sorted(e["data"]["transfer_id"] for e in _audit(b) if e["event"] == "in.resumed")
    assert resumed == sorted(tids)


def _settle_and_check(a: Party, b: Party, drops: dict[str, Path], tids: list[str]) -> None:
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
