"""The bytearray receive buffer swapped into paramiko's channel behaves as paramiko's own."""

from __future__ import annotations

import random
import threading

import pytest
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

from laxchange.transport.sftp import _read_exact, _ReceiveBuffer


def test_same_reads_as_paramikos_buffer_for_random_feeds() -> None:
    rng = random.Random(16)
    ours, theirs = _ReceiveBuffer(), BufferedPipe()  # type: ignore[var-annotated]
    for _ in range(2000):
        if rng.random() < 0.5:
            data = rng.randbytes(rng.randrange(0, 5000))
            ours.feed(data)
            theirs.feed(data)
        elif len(theirs):
            n = rng.randrange(1, 7000)
            got = ours.read(n, 0.1)
            assert isinstance(got, bytes)
            assert got == theirs.read(n, 0.1)
        assert len(ours) == len(theirs)
        assert ours.read_ready() == theirs.read_ready()
    assert ours.empty() == theirs.empty()


def test_read_waits_for_data_times_out_and_sees_close() -> None:
    buf = _ReceiveBuffer()
    with pytest.raises(PipeTimeout):
        buf.read(10, 0.05)
    threading.Timer(0.05, buf.feed, args=(b"hello",)).start()
    assert buf.read(10, 5.0) == b"hello"
    buf.feed(b"tail")
    buf.close()
    assert buf.read(2) == b"ta"
    assert buf.read(10) == b"il"
    assert buf.read(10) == b""


def test_read_exact_joins_the_pieces_a_channel_hands_over() -> None:
    """A paramiko channel returns what it has; `_read_exact` waits for all `n` and joins once."""
    chan = _ReceiveBuffer()
    pieces = [bytes([i]) * 32768 for i in range(7)] + [b"tail"]

    def feed() -> None:
        for p in pieces:
            chan.feed(p)

    feeder = threading.Thread(target=feed)
    feeder.start()

    class _Chan:  # the one call `_read_exact` makes of a channel, on a real receive buffer
        @staticmethod
        def recv(n: int) -> bytes:
            return bytes(chan.read(n, 5))

    assert _read_exact(_Chan, sum(map(len, pieces))) == b"".join(pieces)  # type: ignore[arg-type]
    feeder.join()
    chan.feed(b"short")
    chan.close()  # the link ends before the reply does
    with pytest.raises(EOFError):
        _read_exact(_Chan, 100)  # type: ignore[arg-type]
