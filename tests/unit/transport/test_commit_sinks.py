"""`commit_sinks`: a batch of verified downloads made durable together, then put in place."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from laxchange._util.fs import BackgroundWriteback
from laxchange.errors import TransportError
from laxchange.transport.base import LocalSink, commit_sinks

DATA = b"a verified download\n"


class _UnsyncableSink(LocalSink):
    """A sink whose file cannot be fsynced (a pipe: EINVAL), and which counts fsyncs asked again."""

    def __init__(self, dest: Path) -> None:
        super().__init__(dest, len(DATA), hashlib.sha256(DATA).hexdigest())
        self.resynced = 0
        self.real = self.fh
        r, w = os.pipe()
        os.close(r)
        self.fh = os.fdopen(w, "wb")

    def sync(self) -> None:
        self.resynced += 1
        super().sync()

    def abort(self) -> None:
        self.real.close()
        super().abort()


class _InterruptedSink(LocalSink):
    """Ctrl-C while it is being put in place."""

    def publish(self, *, sync_dir: bool = True) -> int:
        raise KeyboardInterrupt


def _sink(dest: Path) -> LocalSink:
    s = LocalSink(dest, len(DATA), hashlib.sha256(DATA).hexdigest())
    s.write(DATA)
    s.verify()
    return s


def test_a_failed_fsync_is_the_file_s_error_and_never_asked_again(tmp_path: Path) -> None:
    """FAILING TEST (review4). After a failed fsync, Linux reports the lost writeback once: a
    second fsync of the file returns success with the data not on disk. `commit_sinks` answered a
    failure in the group by fsyncing every file again, one by one, and published any that passed."""
    good = _sink(tmp_path / "good.lax")
    bad = _UnsyncableSink(tmp_path / "bad.lax")
    saved = commit_sinks([good, bad])
    assert saved[0] == len(DATA) and (tmp_path / "good.lax").read_bytes() == DATA
    assert isinstance(saved[1], TransportError) and saved[1].code == "local.io"
    assert bad.resynced == 0, "the failed fsync was tried again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.lax"]


def test_an_interrupted_commit_leaves_no_temporary_file(tmp_path: Path) -> None:
    """FAILING TEST (review4). `get_many` hands its verified sinks to `commit_sinks` and forgets them;
    an interrupt there (Ctrl-C during the fsync wait or a publication) left every unpublished one's
    `.NAME.part-*` file (a whole package) in the inbox, for good."""
    first = _sink(tmp_path / "first.lax")
    stop = _InterruptedSink(tmp_path / "stop.lax", len(DATA), hashlib.sha256(DATA).hexdigest())
    stop.write(DATA)
    stop.verify()
    last = _sink(tmp_path / "last.lax")
    with pytest.raises(KeyboardInterrupt):
        commit_sinks([first, stop, last])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.lax"]


def test_a_failed_background_writeback_fails_the_download(tmp_path: Path) -> None:
    """The error of a background fdatasync is not lost (Linux reports a lost writeback to one fsync
    only): `verify` fails with local.io and nothing is left."""
    sink = LocalSink(tmp_path / "a.lax", len(DATA), None, background=True)
    sink._settle()  # its thread, replaced by one on a descriptor that cannot be synced (a pipe: EINVAL)
    r, w = os.pipe()
    try:
        sink._writeback = BackgroundWriteback(w, step=1)
        sink.write(DATA)
        with pytest.raises(TransportError) as e:
            sink.verify()
        assert e.value.code == "local.io"
        sink.abort()
    finally:
        os.close(r)
        os.close(w)
    assert os.listdir(tmp_path) == []


def test_without_a_digest_nothing_is_hashed_and_an_existing_file_is_still_compared(tmp_path: Path) -> None:
    for background in (False, True):
        dest = tmp_path / f"b{background}.lax"
        sink = LocalSink(dest, len(DATA), None, background=background)
        sink.write(DATA)
        assert sink._hash is None
        assert sink.commit() == len(DATA)
        again = LocalSink(dest, len(DATA), None, background=background)
        again.write(DATA)
        assert again.commit() == len(DATA)  # the same bytes already there: done
        other = LocalSink(dest, len(DATA), None, background=background)
        other.write(DATA.upper())
        with pytest.raises(TransportError) as e:
            other.commit()
        assert e.value.code == "local.exists"
        other.abort()
        assert dest.read_bytes() == DATA
    assert sorted(os.listdir(tmp_path)) == ["bFalse.lax", "bTrue.lax"]
