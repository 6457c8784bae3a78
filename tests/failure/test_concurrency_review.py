"""Review of the forked processes (`_util.workers.ordered_map`, `exchange.background`): what they
do when the process that forked them is killed, and what a child's own surprise looks like.

Real processes throughout: a run or a batch in a subprocess killed with SIGKILL (the OOM killer,
`kill -9`, a scheduler's timeout), and the children it forked watched through /proc.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from laxchange._util.workers import fork_available
from laxchange.exchange.party import Party as LibParty
from laxchange.exchange.run import run_nightly
from laxchange.ledger.lock import RunLock, RunLocked
from laxchange.transport import (
    Endpoint,
    Listing,
    LocalFolderTransport,
    RetryPolicy,
    Runner,
    SftpSettings,
    StaticEndpoints,
)
from tests.support.parties import (
    PASSPHRASE,
    REPO,
    council_and_school,
    drop_world,
    over_drops,
    passphrase,
    record,
)
from tests.support.sshd import Sshd
from tests.support.terminal import in_a_terminal, typing

pytestmark = pytest.mark.skipif(not fork_available(), reason="no fork on this platform")

A, B = "LA:919", "URN:123456"


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path}


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _killed_with_children(script: str, *args: str) -> list[int]:
    """Run `script` in a fresh interpreter, which prints its children's pids then kills itself
    (its last argument: a path in the test's folder)."""
    out, err = Path(args[-1]).parent / "pids.out", Path(args[-1]).parent / "script.err"
    with out.open("wb") as o, err.open("wb") as e:  # files, not pipes: a child left holding a pipe open
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], env=_env(), stdout=o,
                              stderr=e, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, err.read_text()
    pids = [int(p) for p in out.read_text().split()]
    assert pids, err.read_text()
    return pids


def _gone(pids: list[int], within: float) -> list[int]:
    """The pids still running after `within` seconds (each then killed: the test started them)."""
    deadline = time.monotonic() + within
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _running(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


def test_a_killed_run_leaves_no_collecting_child_holding_the_run_lock(tmp_path: Path) -> None:
    """`run --jobs 2` killed before its import stage: the child forked at the start must go too.
    It inherited the run lock's flock (an open file description shared across fork), so while it
    lives every later run of the home fails `run.locked`, naming the dead parent's pid."""
    drop, inbox, lock = tmp_path / "drop", tmp_path / "inbox", tmp_path / "run.lock"
    drop.mkdir()
    pids = _killed_with_children("""
        import multiprocessing, os, signal, sys
        from pathlib import Path
        from laxchange.exchange.background import BackgroundCollect
        from laxchange.ledger.lock import RunLock
        from laxchange.transport import Endpoint, LocalFolderTransport, Runner, StaticEndpoints
        drop, inbox, lock = map(Path, sys.argv[1:4])
        with RunLock(lock):
            runner = Runner(StaticEndpoints({"LA:919": Endpoint("LA:919", f"file://{drop}")}), LocalFolderTransport)
            child = BackgroundCollect(runner, "LA:919", inbox)  # the run's sending stage would be under way
            print(*[p.pid for p in multiprocessing.active_children()], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """, str(drop), str(inbox), str(lock))
    left = _gone(pids, 15)
    assert not left, "the collecting child outlived the run that forked it"
    try:
        RunLock(lock).acquire()
    except RunLocked as exc:  # pragma: no cover - the failure being tested
        pytest.fail(f"the next run cannot start: {exc.message}")


def test_the_workers_of_a_killed_batch_go_too(tmp_path: Path) -> None:
    """`notify-batch --jobs 2` killed mid-batch: its workers (each holding the unlocked signing and
    decryption keys they inherited) must not wait for work from a parent that is gone."""
    pids = _killed_with_children("""
        import multiprocessing, os, signal, time
        from laxchange._util.workers import ordered_map

        def slow(state, item):
            time.sleep(0.01)
            return item

        out = ordered_map(slow, range(1000), state=None, jobs=2, chunk=4)
        for _ in range(80):  # past the first item and into the workers' results
            next(out)
        print(*[p.pid for p in multiprocessing.active_children()], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """, str(tmp_path / "here"))
    assert len(pids) == 2
    left = _gone(pids, 15)
    assert not left, "the workers outlived the batch that forked them"


def test_a_collecting_child_dead_before_the_import_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    """The child forked at the run's start dies before the import stage tells it to go (the OOM
    killer during a long sending stage): reported as the collection failing (`collect.background`,
    as a child dying mid-collect is), the rest of the run done; not the whole run ending in exit 70
    with a BrokenPipeError and no report."""
    a, b, drops = drop_world(tmp_path)
    with over_drops(a, drops) as council:
        for i in range(3):
            council.pack(record(i + 1), message_type="pep-transfer", recipient=B, out=a.home.outbox / f"p{i}.lax")
        assert len(run_nightly(council).sent) == 3

    stages: list[str] = []

    def on_stage(name: str) -> None:
        stages.append(name)
        if name == "import":
            children = multiprocessing.active_children()
            assert len(children) == 1, "the collecting child, forked as the run started"
            os.kill(children[0].pid or 0, signal.SIGKILL)
            children[0].join(10)

    with over_drops(b, drops) as school:
        first = run_nightly(school, jobs=2, on_stage=on_stage)
        assert "collect.background" in [f.error.code for f in first.failures], first.to_dict()
        assert stages[-1] == "report", "the run went on to its report"
        second = run_nightly(school, jobs=2)
        assert second.failures == [], second.to_dict()
        assert second.imported is not None and second.imported.counts() == {"imported": 3}
    assert not multiprocessing.active_children()


class _Buggy(LocalFolderTransport):
    """A drop folder whose listing meets a bug (not a LaxError): what one process reports as
    `internal.error` ('unexpected failure: RuntimeError: ...'), a child must report the same."""

    def list(self, folder: str = "") -> Listing:
        raise RuntimeError("an invariant broke (a bug, for this test)")


def test_a_collecting_childs_own_bug_is_reported_as_in_one_process_without_a_traceback(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    _a, b, drops = drop_world(tmp_path)
    endpoints = StaticEndpoints({k: Endpoint(k, f"file://{v}") for k, v in drops.items()})

    def lib(factory: type[LocalFolderTransport]) -> LibParty:
        return LibParty(home=b.home, keystore=b.store, directory=b.directory, clock=b.clock,
                        transports=Runner(endpoints, factory, RetryPolicy(attempts=1)))

    with lib(_Buggy) as school:
        one = run_nightly(school)
    with lib(_Buggy) as school:
        two = run_nightly(school, jobs=2)
    err = capfd.readouterr().err
    want = [(f.step, f.error.code, f.error.message) for f in one.failures]
    assert want and want[0][1] == "internal.error" and "RuntimeError" in want[0][2], want
    assert [(f.step, f.error.code, f.error.message) for f in two.failures] == want
    assert "Traceback" not in err, err


def test_run_jobs_2_at_a_terminal_asks_for_the_ssh_key_passphrase_as_one_process_does(tmp_path: Path) -> None:
    """A VSH runs `laxchange run --jobs 2` at a terminal, no passphrase in the environment: with one
    process the SSH key's passphrase is asked for; the collecting child must be able to ask too
    (multiprocessing gives a child /dev/null for stdin), not fail `passphrase.unavailable`."""
    with Sshd(tmp_path / "sshd", []) as server:
        a, b, _drops = council_and_school(tmp_path, server, council=A, school=B)
        with LibParty.from_home(a.home, passphrase=passphrase, clock=a.clock, keystore=a.store,
                                directory=a.directory, sftp=SftpSettings(timeout=10),
                                retry=RetryPolicy(attempts=2)) as council:
            council.pack(record(1), message_type="pep-transfer", recipient=B, out=a.home.outbox / "pep.lax")
            assert len(run_nightly(council).sent) == 1
        env = {k: v for k, v in _env().items() if not k.startswith("LAXCHANGE_PASSPHRASE")}
        rc, shown = in_a_terminal([sys.executable, "-m", "laxchange", "--home", str(b.home.root), "run",
                                    "--jobs", "2", "--timeout", "10"], env, typing(PASSPHRASE))
        assert "passphrase.unavailable" not in shown, shown
        assert rc in (0, 10) and "FAILED" not in shown, shown  # (10: the sample record's statutory dates)
        assert "imported    1 imported" in shown, shown
        with LibParty.from_home(b.home, passphrase=passphrase, clock=b.clock, keystore=b.store,
                                directory=b.directory) as school:
            assert school.ledger.counts()[A]["in"] == {"imported": 1}
