"""The pipeline's corked link (`_Corked`): requests held until a read would wait, in order."""

from __future__ import annotations

import os
import resource
import socket

import pytest

from laxchange.transport.openssh import _Pipe
from laxchange.transport.sftp import CORK_BYTES, _Corked


class _Link:
    """A link that records each write and says whether a reply is waiting."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.ready = False
        self.reads = 0

    def send(self, data: bytes | memoryview) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def recv(self, n: int) -> bytes:
        self.reads += 1
        return b"r" * n

    def recv_ready(self) -> bool:
        return self.ready

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout


def test_small_writes_are_held_and_leave_together_when_a_read_would_wait() -> None:
    link = _Link()
    c = _Corked(link)  # type: ignore[arg-type]
    assert c.send(b"open1") == 5 and c.send(b"open2") == 5
    assert link.writes == []
    link.ready = True  # a reply is in hand: reading it cannot wait, so nothing is sent yet
    assert c.recv(3) == b"rrr"
    assert link.writes == []
    link.ready = False
    c.recv(3)
    assert link.writes == [b"open1open2"]
    c.recv(3)  # nothing held: nothing sent
    assert link.writes == [b"open1open2"] and link.reads == 3


def test_a_large_write_sends_what_is_held_first_and_goes_on_unchanged() -> None:
    link = _Link()
    c = _Corked(link)  # type: ignore[arg-type]
    c.send(b"head")
    big = b"x" * (CORK_BYTES + 1)
    assert c.send(memoryview(big)) == len(big)
    assert link.writes == [b"head", big]


def test_held_writes_leave_once_they_reach_the_limit() -> None:
    link = _Link()
    c = _Corked(link)  # type: ignore[arg-type]
    part = b"y" * (CORK_BYTES // 2)
    c.send(part)
    assert link.writes == []
    c.send(part)
    assert link.writes == [part + part]


def test_a_link_that_cannot_say_is_always_sent_to_before_a_read() -> None:
    class Plain:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def send(self, data: bytes) -> int:
            self.writes.append(data)
            return len(data)

        def recv(self, n: int) -> bytes:
            return b""

    link = Plain()
    c = _Corked(link)  # type: ignore[arg-type]
    c.send(b"a")
    c.recv(1)
    assert link.writes == [b"a"]


def test_anything_else_is_the_links_own() -> None:
    link = _Link()
    c = _Corked(link)  # type: ignore[arg-type]
    c.settimeout(5.0)  # type: ignore[operator]  # reached through __getattr__
    assert link.timeout == 5.0


def test_after_a_failed_flush_every_later_use_fails_at_once() -> None:
    """A flush that failed lost other files' requests with it: a caller that let the error pass
    (a best-effort clean-up) must not then wait for replies that can never come."""

    class Broken(_Link):
        def send(self, data: bytes | memoryview) -> int:
            raise TimeoutError("no progress")

    link = Broken()
    c = _Corked(link)  # type: ignore[arg-type]
    c.send(b"write-of-file-1")
    c.send(b"close-of-file-2")
    with pytest.raises(TimeoutError):
        c.recv(4)
    with pytest.raises(EOFError, match="failed earlier"):
        c.recv(4)
    with pytest.raises(EOFError, match="failed earlier"):
        c.send(b"rename-of-file-1")
    assert link.reads == 0


def test_the_openssh_pipe_says_ready_on_a_descriptor_above_1024() -> None:
    """select() refuses descriptors from 1024 up; a council's run with many partners open reaches them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"this machine allows only {hard} open files")
    if soft != resource.RLIM_INFINITY and soft < 1100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1100, hard))
    a, b = socket.socketpair()
    high = os.dup2(a.fileno(), 1050)
    a.close()
    pipe = _Pipe(socket.socket(fileno=high))
    try:
        assert pipe.sock.fileno() >= 1024
        assert pipe.recv_ready() is False
        b.sendall(b"reply")
        assert pipe.recv_ready() is True
        assert pipe.recv(5) == b"reply"  # the peek took nothing
        b.close()
        assert pipe.recv_ready() is True  # the end: a read returns at once
    finally:
        pipe.close()
        if soft != resource.RLIM_INFINITY and soft < 1100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
