"""How many SFTP requests an upload costs, against the real sshd: each one is a round trip, and
for small packages round trips are the whole cost. Counted from paramiko's own request log."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from laxchange.transport import Endpoint, SftpTransport
from tests.support.sshd import ClientKey, Sshd

_OPS = ("open(", "close(", "rename(", "posix_rename(", "stat(", "lstat(", "listdir(", "remove(")


def _ops(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = []
    for r in caplog.records:
        text = r.getMessage().removeprefix("[chan 0] ")
        if " -> " not in text and text.startswith(_OPS):
            out.append(text.split("(", 1)[0])
    caplog.clear()
    return out


def test_a_small_upload_is_open_write_close_rename(tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    src = tmp_path / "p.lax"
    src.write_bytes(os.urandom(4096))
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with SftpTransport(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        t.put(src, "first.lax")  # the first upload into a folder also lists it once, for leftovers
        _ops(caplog)
        t.put(src, "second.lax")
        assert _ops(caplog) == ["open", "close", "rename"]  # the WRITE is pipelined, not logged
        t.put(src, "second.lax")  # a retry: the refused rename finds the same bytes there, then cleans up
        assert _ops(caplog) == ["open", "close", "rename", "lstat", "remove", "open", "close"]
    assert sorted(os.listdir(remote)) == ["first.lax", "second.lax"]


def test_a_large_retry_is_not_sent_again(tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                         caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    src = tmp_path / "big.lax"
    src.write_bytes(os.urandom(2 * 1024 * 1024))
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with SftpTransport(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        t.put(src, "big.lax")
        _ops(caplog)
        t.put(src, "big.lax")
        ops = _ops(caplog)
    assert ops[0] == "lstat" and "rename" not in ops, ops
    assert os.listdir(remote) == ["big.lax"]
