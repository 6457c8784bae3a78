"""Shared fixtures: SSH keys, one real OpenSSH sshd per session (started here, stopped by PID), and one
headless Chromium per session for the HTML tests (tests/support/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from hypothesis import settings

from tests.support import browser as chromium
from tests.support.sshd import ClientKey, Sshd, keygen

# No per-example time limit for property tests: a stall of this process on a busy 2-core CI
# machine (GC, another test's fsync, CPU steal) must not fail an example that is correct.
settings.register_profile("laxchange", deadline=None)
settings.load_profile("laxchange")


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> ClientKey:
    d = tmp_path_factory.mktemp("client")
    path = keygen(d / "id_ed25519", "client")
    return ClientKey(path, Path(str(path) + ".pub"), paramiko.Ed25519Key(filename=str(path)))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory, client_key: ClientKey) -> Iterator[Sshd]:
    """A loopback sshd shared by the session. It must start: failing to start fails the tests."""
    server = Sshd(tmp_path_factory.mktemp("sshd"), [client_key.pub]).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's chromium + chromium-driver); fails, never skips, without it."""
    with chromium.start() as driver:
        yield driver
