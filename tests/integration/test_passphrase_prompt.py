"""A person at a terminal who, at a passphrase prompt, presses Ctrl-C or Ctrl-D, or whose session
is stopped (SIGTERM): the exit code and message say which, as anywhere else in the CLI. Click
makes all three "Aborted!" and exit 1, which is the documented code for invalid data."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from laxchange.errors import ExitCode
from tests.support.parties import PASSPHRASE, REPO, make_party
from tests.support.terminal import in_a_terminal


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAXCHANGE_PASSPHRASE")}
    return {**env, "LAXCHANGE_NEW_PASSPHRASE": "", "PYTHONPATH": str(REPO)}


def _sigterm(pid: int, _fd: int) -> None:
    os.kill(pid, signal.SIGTERM)


def _key(key: bytes) -> Callable[[int, int], None]:
    def press(_pid: int, fd: int) -> None:
        os.write(fd, key)
    return press


def _then(first: bytes, respond: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """Type `first` at the first prompt, then `respond` at the next."""
    prompts = 0

    def at(pid: int, fd: int) -> None:
        nonlocal prompts
        prompts += 1
        if prompts == 1:
            os.write(fd, first + b"\n")
        else:
            respond(pid, fd)
    return at


@pytest.mark.parametrize(("respond", "code", "said"), [
    (_sigterm, ExitCode.TERMINATED, "stopped by SIGTERM"),
    (_key(b"\x03"), ExitCode.INTERRUPTED, "interrupted"),  # Ctrl-C: the terminal sends SIGINT
    (_key(b"\x04"), ExitCode.CONFIG, "the input ended at the prompt"),  # Ctrl-D on an empty line
    (_then(PASSPHRASE, _key(b"\x03")), ExitCode.INTERRUPTED, "interrupted"),  # at "New passphrase"
], ids=["sigterm", "ctrl-c", "ctrl-d", "ctrl-c-at-the-new-one"])
def test_leaving_a_passphrase_prompt_exits_with_its_own_code_and_says_why(
        tmp_path: Path, respond: Callable[[int, int], None], code: int, said: str) -> None:
    p = make_party(tmp_path, "LA:919", "Example Council (fictional)")
    rc, shown = in_a_terminal([sys.executable, "-m", "laxchange", "--home", str(p.home.root), "keys", "passphrase"],
                              _env(), respond, timeout=60)
    assert rc == code, shown
    assert said in shown and "Aborted!" not in shown and "Traceback" not in shown, shown
