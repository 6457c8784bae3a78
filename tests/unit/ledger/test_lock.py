"""The run lock, with real processes: one holder at a time, and a SIGKILLed holder never blocks the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from laxchange.errors import ExitCode
from laxchange.ledger.lock import RunLock, RunLocked
from tests.support.parties import REPO

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from laxchange.ledger.lock import RunLock
    lock = RunLock(Path(sys.argv[1]))
    lock.acquire()
    print("held", flush=True)
    time.sleep(120)
""")


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    proc = _holder(path)
    try:
        with pytest.raises(RunLocked) as exc:
            RunLock(path).acquire()
        assert exc.value.code == "run.locked" and exc.value.exit_code == ExitCode.CONFIG
        assert f"pid {proc.pid}" in exc.value.message and exc.value.hint
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    proc = _holder(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert path.exists(), "the dead holder's file is still there"
    with RunLock(path) as lock:
        assert lock.held
    assert (path.stat().st_mode & 0o777) == 0o600


def test_release_lets_the_next_run_in(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    # a second lock in the same process is refused too (flock is per open file, not per process)
    with RunLock(path), pytest.raises(RunLocked):
        RunLock(path).acquire()
    with RunLock(path) as again:
        assert again.held
    assert path.read_text() == "", "a released lock keeps no holder details"
