"""The test sshd harness: a port someone else holds is never mistaken for our server."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.support.sshd import ClientKey, Sshd, free_port


def test_a_forced_port_already_held_by_another_sshd_is_refused(tmp_path: Path, sshd: Sshd,
                                                               client_key: ClientKey) -> None:
    """Connecting to the port would reach the session's sshd and look ready; the log says otherwise."""
    other = Sshd(tmp_path / "second", [client_key.pub], port=sshd.port)
    with pytest.raises(RuntimeError, match="could not bind"):
        other.start(timeout=5)
    assert other.proc is None


def test_a_chosen_port_taken_before_sshd_binds_it_is_chosen_again(tmp_path: Path, client_key: ClientKey) -> None:
    """`free_port` then bind is a race: the first pick is held here, so sshd must move to another."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        picks = iter([taken])
        server = Sshd(tmp_path / "s", [client_key.pub], pick_port=lambda: next(picks, None) or free_port())
        assert server.port == taken
        started = server.start(timeout=5)
        assert started.proc is not None
        pid = started.proc.pid
        with started:
            assert server.port != taken
            assert f"Server listening on 127.0.0.1 port {server.port}." in server._log()
            assert server.proc is not None and server.proc.pid == pid, "entering does not start a second sshd"
        assert not _alive(pid), "the sshd started is the one stopped: none is left running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
