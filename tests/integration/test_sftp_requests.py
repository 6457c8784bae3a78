"""How many SFTP requests an upload costs, against the real sshd: each one is a round trip, and
for small packages round trips are the whole cost. Counted from paramiko's own request log."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path

import pytest

from laxchange.errors import ConfigError
from laxchange.transport import Endpoint, SftpTransport
from laxchange.transport.base import GetItem, PutItem, RemoteFile
from laxchange.transport.parts import PartJournal
from tests.support.sshd import ClientKey, Sshd
from tests.support.transport_fixtures import SFTP_BACKENDS


@pytest.fixture(params=sorted(SFTP_BACKENDS))
def sftp_cls(request: pytest.FixtureRequest) -> type[SftpTransport]:
    """Each SFTP backend in turn: every test here runs on each."""
    return SFTP_BACKENDS[request.param]


_OPS = ("open(", "close(", "rename(", "posix_rename(", "stat(", "lstat(", "listdir(", "remove(", "mkdir(")


def _ops(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = []
    for r in caplog.records:
        text = re.sub(r"^\[chan [^]]*\] ", "", r.getMessage())  # "[chan 0] " (paramiko), "[chan openssh] "
        if " -> " not in text and text.startswith(_OPS):
            out.append(text.split("(", 1)[0])
    caplog.clear()
    return out


def test_a_small_upload_is_open_write_close_rename(sftp_cls: type[SftpTransport],
                                                   tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    src = tmp_path / "p.lax"
    src.write_bytes(os.urandom(4096))
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        t.put(src, "first.lax")  # the first upload into a folder also lists it once, for leftovers
        _ops(caplog)
        t.put(src, "second.lax")
        assert _ops(caplog) == ["open", "close", "rename"]  # the WRITE is pipelined, not logged
        t.put(src, "second.lax")  # a retry: the refused rename finds the same bytes there, then cleans up
        assert _ops(caplog) == ["open", "close", "rename", "lstat", "remove", "open", "close"]
    assert sorted(os.listdir(remote)) == ["first.lax", "second.lax"]


def test_a_large_retry_is_not_sent_again(sftp_cls: type[SftpTransport],
                                         tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                         caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    src = tmp_path / "big.lax"
    src.write_bytes(os.urandom(2 * 1024 * 1024))
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        t.put(src, "big.lax")
        _ops(caplog)
        t.put(src, "big.lax")
        ops = _ops(caplog)
    assert ops[0] == "lstat" and "rename" not in ops, ops
    assert os.listdir(remote) == ["big.lax"]


def _small_files(folder: Path, n: int) -> list[Path]:
    """`n` local packages of 3,000 bytes and more, each of its own length and random bytes."""
    files = []
    for i in range(n):
        p = folder / f"p{i}.lax"
        p.write_bytes(os.urandom(3000 + i))
        files.append(p)
    return files


def test_put_many_overlaps_four_requests_per_small_file(sftp_cls: type[SftpTransport],
                                                        tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    files = _small_files(tmp_path, 40)
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        t.put(files[0], "warm.lax")  # lists the folder once, for leftovers
        _ops(caplog)
        done = t.put_many([PutItem(p, p.name) for p in files])
        assert _ops(caplog) == []  # nothing went the one-at-a-time way
        assert dict(t.requests_sent) == {"open": 40, "write": 40, "close": 40, "rename": 40}
    assert [r.size for r in done if isinstance(r, RemoteFile)] == [p.stat().st_size for p in files]
    assert sorted(os.listdir(remote)) == sorted([p.name for p in files] + ["warm.lax"])
    assert all((remote / p.name).read_bytes() == p.read_bytes() for p in files)


def test_get_many_overlaps_small_downloads(sftp_cls: type[SftpTransport],
                                           tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                           caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    inbox = tmp_path / "in"
    inbox.mkdir()
    for i in range(30):
        (remote / f"p{i}.lax").write_bytes(os.urandom(4000 + i))
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        got = t.get_many([GetItem(f"p{i}.lax", inbox / f"p{i}.lax") for i in range(30)])
        assert _ops(caplog) == []  # nothing went the one-at-a-time way
        assert dict(t.requests_sent) == {"lstat": 30, "open": 30, "read": 60, "fstat": 30, "close": 30}
    assert got == [4000 + i for i in range(30)]
    assert all((inbox / f"p{i}.lax").read_bytes() == (remote / f"p{i}.lax").read_bytes() for i in range(30))


class _CountingLink:
    """The SFTP session's link, counting the writes that reach it (one each an SSH packet or more)."""

    def __init__(self, link: object) -> None:
        self.link = link
        self.sends = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        return self.link.send(data)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self.link, name)


def test_many_files_requests_leave_together_not_one_write_each(sftp_cls: type[SftpTransport],
                                                               tmp_path: Path, sshd: Sshd,
                                                               client_key: ClientKey) -> None:
    """One message a write, 40 uploads reached the link in 160 writes and 30 downloads in 180:
    the pipeline sends what the replies in hand call for together."""
    remote = tmp_path / "drop"
    remote.mkdir()
    inbox = tmp_path / "in"
    inbox.mkdir()
    files = _small_files(tmp_path, 40)
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        t.put(files[0], "warm.lax")  # connected, and the folder listed once
        counting = _CountingLink(t.sftp.sock)
        t.sftp.sock = counting  # type: ignore[assignment]
        t.put_many([PutItem(p, p.name) for p in files])
        up = counting.sends
        counting.sends = 0
        got = t.get_many([GetItem(p.name, inbox / p.name) for p in files[:30]])
        down = counting.sends
        after: object = t.sftp.sock
        assert after is counting  # the pipeline gave the link back
    assert 0 < up <= 120, up  # 105 if every read had to wait; 160 one message a write
    assert 0 < down <= 100, down  # 75 if every read had to wait; 180 one message a write
    assert all((remote / p.name).read_bytes() == p.read_bytes() for p in files)
    assert got == [p.stat().st_size for p in files[:30]]
    assert all((inbox / p.name).read_bytes() == p.read_bytes() for p in files[:30])


def test_move_many_overlaps_two_requests_per_file(sftp_cls: type[SftpTransport],
                                                  tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A collected batch's moves: the target folder looked for (and made) once per connection, then
    per file LSTAT of the target name and posix-rename, overlapped; `move` one at a time would
    log LSTAT, LSTAT, posix-rename for every file, each waiting for the one before."""
    remote = tmp_path / "drop"
    remote.mkdir()
    for i in range(50):
        (remote / f"p{i}.lax").write_bytes(os.urandom(100 + i))
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        assert t.move_many([f"p{i}.lax" for i in range(30)], "processed") == [None] * 30
        assert _ops(caplog) == ["lstat", "mkdir"]  # the target folder, once
        assert dict(t.requests_sent) == {"lstat": 30, "posix-rename": 30}
        assert t.move_many([f"p{i}.lax" for i in range(30, 50)], "processed") == [None] * 20
        assert _ops(caplog) == []  # nothing went the one-at-a-time way, the folder not looked for again
        assert dict(t.requests_sent) == {"lstat": 50, "posix-rename": 50}
        t.move("p0.lax", "processed")  # already moved: `move` alone makes three requests for it
        assert _ops(caplog) == ["lstat", "lstat", "lstat"]
    assert os.listdir(remote) == ["processed"]
    assert sorted(os.listdir(remote / "processed")) == sorted(f"p{i}.lax" for i in range(50))


def test_move_many_sends_only_a_collision_the_careful_way(sftp_cls: type[SftpTransport],
                                                         tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    (remote / "processed").mkdir(parents=True)
    for i in range(10):
        (remote / f"p{i}.lax").write_bytes(b"new %d" % i)
    (remote / "processed" / "p4.lax").write_bytes(b"old 4")
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        assert t.move_many([f"p{i}.lax" for i in range(10)], "processed") == [None] * 10
        ops = _ops(caplog)
        assert dict(t.requests_sent) == {"lstat": 10, "posix-rename": 9}
    # the target folder, then p4 alone through `move`: folder, target, source, both read, aside, rename
    assert ops[0] == "lstat" and ops.count("posix_rename") == 1 and ops.count("open") == 2, ops
    aside = f"p4-{hashlib.sha256(b'new 4').hexdigest()[:12]}.lax"
    assert (remote / "processed" / "p4.lax").read_bytes() == b"old 4"
    assert (remote / "processed" / aside).read_bytes() == b"new 4"
    assert os.listdir(remote) == ["processed"]


def test_delete_many_is_one_overlapped_remove_per_file(sftp_cls: type[SftpTransport],
                                                       tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    for i in range(20):
        (remote / f"p{i}.lax").write_bytes(b"x")
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key) as t:
        assert t.delete_many([f"p{i}.lax" for i in range(21)]) == [None] * 21  # p20 was never there
        assert _ops(caplog) == []
        assert dict(t.requests_sent) == {"remove": 21}
    assert os.listdir(remote) == []


def test_with_a_journal_an_upload_never_lists_the_partners_folder(sftp_cls: type[SftpTransport],
                                                                  tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A partner's drop folder holds every other sender's files until it collects them: listing it
    for our own leftovers made each night as slow as that folder was long. With a journal (every
    home's transports) nothing is listed, and other senders' files are not ours to touch."""
    remote = tmp_path / "drop"
    remote.mkdir()
    others = [remote / f"other-{i}.lax" for i in range(5)] + [remote / ".theirs.lax.part-0011aa22bb33"]
    for p in others:
        p.write_bytes(b"someone else's")
        os.utime(p, (1, 1))  # old enough to be anyone's debris
    files = _small_files(tmp_path, 20)
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    journal = PartJournal(tmp_path / "home" / "cache" / "sftp-parts")
    with sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key,
                  parts=journal) as t:
        t.put(files[0], "first.lax")
        t.put_many([PutItem(p, p.name) for p in files[1:]])
        assert "listdir" not in _ops(caplog)
    assert all(p.exists() for p in others)
    assert sorted(n for n in os.listdir(remote) if not n.startswith(("other-", ".theirs"))) == \
        sorted(["first.lax", *(p.name for p in files[1:])])
    assert journal.orphans(sshd.url(remote)) == []  # every temporary file was published: no log is left


def test_what_an_ended_connection_left_is_removed_by_name(sftp_cls: type[SftpTransport],
                                                          tmp_path: Path, sshd: Sshd, client_key: ClientKey,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    url = sshd.url(remote)
    journal = PartJournal(tmp_path / "cache" / "sftp-parts", clock=lambda: time.time() + 3600)  # logs long ended
    ended = journal.open(url)  # a connection that died mid-upload: its log stays, unresolved
    left = remote / ".p.lax.part-0123456789ab"
    left.write_bytes(b"half a package")
    ended.add(str(left))
    ended.add(str(remote / ".q.lax.part-ba9876543210"))  # logged, never made
    ended.close()
    live = journal.open(url)  # another connection of this home, still at work
    busy = remote / ".r.lax.part-00ff00ff00ff"
    busy.write_bytes(b"being written")
    live.add(str(busy))
    src = tmp_path / "s.lax"
    src.write_bytes(os.urandom(4096))
    caplog.set_level(logging.DEBUG, logger="paramiko.transport.sftp")
    with sftp_cls(Endpoint("LA:1", url, (sshd.fingerprint,)), lambda: client_key.key, parts=journal) as t:
        t.put(src, "s.lax")
        ops = _ops(caplog)
    assert "listdir" not in ops and ops.count("remove") == 2, ops
    assert sorted(os.listdir(remote)) == [".r.lax.part-00ff00ff00ff", "s.lax"]
    assert journal.orphans(url) == []  # the ended log is settled and gone; the live one is held
    live.close()
    assert [o.parts for o in journal.orphans(url)] == [[str(busy)]]


def test_a_name_found_absent_in_a_log_just_ended_is_kept_for_later(sftp_cls: type[SftpTransport],
                                                                   tmp_path: Path, sshd: Sshd,
                                                                   client_key: ClientKey) -> None:
    """A connection that has only just ended may have requests still on their way to the server:
    an OPEN that lands after the sweep would make a file no log names. So a name found absent
    counts as gone only in a log older than `stale_part_age`."""
    remote = tmp_path / "drop"
    remote.mkdir()
    url = sshd.url(remote)
    now = [time.time()]
    journal = PartJournal(tmp_path / "parts", clock=lambda: now[0])
    ended = journal.open(url)
    ended.add(str(remote / ".q.lax.part-ba9876543210"))
    ended.close()
    src = tmp_path / "s.lax"
    src.write_bytes(b"x" * 100)
    ep = Endpoint("LA:1", url, (sshd.fingerprint,))
    with sftp_cls(ep, lambda: client_key.key, parts=journal) as t:
        t.put(src, "s.lax")
    [kept] = journal.orphans(url)
    kept.settle(())
    now[0] += 601
    (remote / ".q.lax.part-ba9876543210").write_bytes(b"landed late")
    with sftp_cls(ep, lambda: client_key.key, parts=journal) as t:
        t.put(src, "t.lax")
    assert sorted(os.listdir(remote)) == ["s.lax", "t.lax"]  # the late one was removed
    assert journal.orphans(url) == []


def test_a_log_that_cannot_be_written_is_the_homes_failure_not_the_servers(sftp_cls: type[SftpTransport],
                                                                           tmp_path: Path, sshd: Sshd,
                                                                           client_key: ClientKey) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    src = tmp_path / "s.lax"
    src.write_bytes(b"x" * 100)
    journal = PartJournal(tmp_path / "cache" / "sftp-parts")
    with pytest.raises(ConfigError) as e, \
            sftp_cls(Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,)), lambda: client_key.key,
                     parts=journal) as t:
        t.put(src, "s.lax")
    assert e.value.code == "home.unwritable" and "log of temporary uploads" in str(e.value)
    assert os.listdir(remote) == []  # nothing was made that no log names


def test_a_leftover_the_server_refuses_to_remove_does_not_stop_the_upload(sftp_cls: type[SftpTransport],
                                                                           tmp_path: Path, sshd: Sshd,
                                                                           client_key: ClientKey) -> None:
    """A FAILURE status (here: a folder where the temporary file was) is the server's answer, not a
    lost link: the upload goes on, and the name stays in its log for a later connection."""
    remote = tmp_path / "drop"
    remote.mkdir()
    url = sshd.url(remote)
    journal = PartJournal(tmp_path / "parts", clock=lambda: time.time() + 3600)
    stuck = remote / ".p.lax.part-0123456789ab"
    (stuck / "inside").mkdir(parents=True)
    journal_log = journal.open(url)
    journal_log.add(str(stuck))
    journal_log.close()
    src = tmp_path / "s.lax"
    src.write_bytes(b"x" * 100)
    with sftp_cls(Endpoint("LA:1", url, (sshd.fingerprint,)), lambda: client_key.key, parts=journal) as t:
        t.put(src, "s.lax")
    assert (remote / "s.lax").read_bytes() == src.read_bytes()
    assert [o.parts for o in journal.orphans(url)] == [[str(stuck)]]
