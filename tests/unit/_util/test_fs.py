"""`fs`: new files complete, mode 0600, never over an existing one, no temporary file left; fsyncs together."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from laxchange import render
from laxchange._util import fs
from laxchange.errors import UsageError
from tests.support.signals import ctrl_c_after_call


def test_write_new_atomic_writes_a_private_file(tmp_path: Path) -> None:
    target = tmp_path / "out.xml"
    fs.write_new_atomic(target, b"<a/>")
    assert target.read_bytes() == b"<a/>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xml"]


def test_write_new_atomic_never_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.xml"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        fs.write_new_atomic(target, b"new")
    assert target.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xml"]


def test_atomic_writes_write_into_a_character_device_never_replace_it(tmp_path: Path) -> None:
    # The rename that makes a write atomic replaced /dev/null with a regular file when the operators'
    # restore check (`keys export-card -o /dev/null`) ran as root. A device is written into.
    devices = [Path(os.devnull)]
    if os.geteuid() == 0:
        devices.append(tmp_path / "null")
        os.mknod(devices[-1], 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    for dev in devices:
        before = dev.stat()
        fs.write_atomic(dev, b"{}")
        fs.write_new_atomic(dev, b"{}")  # "new" means never replacing: a device is not replaced
        fs.check_output(dev)  # not "already exists": nothing would be replaced
        render.check_output(dev)
        render.write_html(dev, "<p>x</p>")
        after = dev.stat()
        assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_fifo_nobody_reads_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for write in (fs.write_atomic, fs.write_new_atomic):
        with pytest.raises(UsageError) as info:
            write(fifo, b"{}")
        assert info.value.code == "output.not-regular" and "nobody is reading" in str(info.value)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_fifo_with_a_reader_gets_the_bytes(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        for _ in range(200):  # until cat has the FIFO open for reading
            try:
                fs.write_atomic(fifo, b"through the pipe")
                break
            except UsageError:
                time.sleep(0.01)
        else:
            pytest.fail("cat never opened the FIFO")
        out, _ = reader.communicate(timeout=10)
    finally:
        reader.kill()
    assert out == b"through the pipe"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_socket_is_refused_as_an_output(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        for check in (lambda: fs.write_atomic(path, b"{}"), lambda: fs.check_output(path, overwrite=True)):
            with pytest.raises(UsageError) as info:
                check()
            assert info.value.code == "output.not-regular" and "is a socket" in str(info.value)
        assert stat.S_ISSOCK(path.lstat().st_mode)


def test_sample_to_dev_null_leaves_it_a_device() -> None:
    before = os.stat(os.devnull)
    proc = subprocess.run([sys.executable, "-m", "laxchange", "sample", "education-record", "-o", os.devnull],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_write_new_files_writes_each_file_private_and_complete(tmp_path: Path) -> None:
    files = {f"f{n}.csv": bytes([n]) * (n * 7_001) for n in range(10)}
    fs.write_new_files(tmp_path, files)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {0o600}


def test_write_new_files_never_replaces_a_file_and_leaves_none_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        fs.write_new_files(tmp_path, {"a.csv": b"1", "b.csv": b"2", "c.csv": b"3"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.csv"]
    assert (tmp_path / "b.csv").read_bytes() == b"keep me"


def test_fsync_all_raises_the_failure_of_any_descriptor(tmp_path: Path) -> None:
    good = os.open(tmp_path / "a", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError):
            fs.fsync_all([good, 987_654])  # not an open descriptor
        fs.fsync_all([good, good])
    finally:
        os.close(good)


def test_fsync_each_reports_each_descriptor_at_its_own_place(tmp_path: Path) -> None:
    """More descriptors than the pool has threads: every result is the one of its own descriptor."""
    n = fs.FSYNC_THREADS * 2 + 3
    good = [os.open(tmp_path / f"f{k}", os.O_WRONLY | os.O_CREAT, 0o600) for k in range(n)]
    bad = {3, 8, n - 1}  # places that get a descriptor that is not open
    try:
        fds = [987_654 + k if k in bad else fd for k, fd in enumerate(good)]
        got = fs.fsync_each(fds)
        assert len(got) == n
        assert {k for k, e in enumerate(got) if e is not None} == bad
        assert all(isinstance(got[k], OSError) for k in bad)
        assert fs.fsync_each(good[:1]) == [None]
        assert fs.fsync_each([]) == []
    finally:
        for fd in good:
            os.close(fd)


def test_unsynced_files_are_written_alike_and_fsynced_later_together(tmp_path: Path) -> None:
    files = {f"f{n}.csv": bytes([n]) * (n * 3_001) for n in range(5)}
    fs.write_new_files(tmp_path, files, sync=False)
    fs.write_new(tmp_path / "record.json", b"{}\n", sync=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {**files, "record.json": b"{}\n"}
    open_fds = len(os.listdir("/proc/self/fd"))
    fs.fsync_files(sorted(tmp_path.iterdir()))
    with pytest.raises(FileNotFoundError):  # a file that is not there is an error, not skipped
        fs.fsync_files([tmp_path / "f1.csv", tmp_path / "missing"])
    assert len(os.listdir("/proc/self/fd")) == open_fds, "every descriptor is closed, after a failure too"


def test_write_atomic_many_replaces_each_file_complete_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    folders = [tmp_path / "a", tmp_path / "b"]
    for d in folders:
        d.mkdir()
        (d / "manifest.json").write_bytes(b"old")
    files = {d / "manifest.json": d.name.encode() * 50_000 for d in folders} | {tmp_path / "new.json": b"{}"}
    fs.write_atomic_many(files)
    assert {p: p.read_bytes() for p in files} == files
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "a/manifest.json", "b/manifest.json", "new.json"]
    with pytest.raises(FileNotFoundError):  # a folder that is not there: nothing is replaced
        fs.write_atomic_many({folders[0] / "manifest.json": b"x", tmp_path / "gone" / "m.json": b"y"})
    assert (folders[0] / "manifest.json").read_bytes() == files[folders[0] / "manifest.json"]
    assert sorted(p.name for p in folders[0].iterdir()) == ["manifest.json"]


def test_background_sha256_is_the_sha256_of_every_chunk_in_order() -> None:
    chunks = [os.urandom(n) for n in (0, 1, 2047, 2048, 300_000, 5)] * 30  # more than its queue holds
    h = fs.BackgroundSha256(depth=4)
    for c in chunks:
        h.update(c)
    assert h.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert h.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()  # asking again: the same
    with pytest.raises(ValueError):
        h.update(b"late")


def test_background_sha256_closed_early_stops_its_thread() -> None:
    with fs.BackgroundSha256() as h:
        h.update(b"abc" * 1000)
    assert not h._thread.is_alive()
    assert h.hexdigest() == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_background_writeback_syncs_once_each_step_and_keeps_its_error() -> None:
    """On a pipe fdatasync fails (EINVAL): so an error shows the thread synced, and `close` hands it on."""
    r, w = os.pipe()
    try:
        wb = fs.BackgroundWriteback(w, step=100)
        wb.wrote(99)  # not a whole step yet: nothing synced
        assert wb.close() is None
        wb = fs.BackgroundWriteback(w, step=100)
        wb.wrote(100)
        err = wb.close()
        assert isinstance(err, OSError) and not wb._thread.is_alive()
        assert wb.close() is err  # asked again: the same
    finally:
        os.close(r)
        os.close(w)


def test_background_writeback_of_a_file(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        wb = fs.BackgroundWriteback(f.fileno(), step=1024)
        for _ in range(8):
            f.write(b"x" * 1024)
            f.flush()
            wb.wrote(f.tell())
        assert wb.close() is None and not wb._thread.is_alive()
    assert (tmp_path / "f").stat().st_size == 8 * 1024


def test_fsync_files_syncs_folders_in_the_same_group_best_effort(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    fs.write_new_files(tmp_path / "a", {"x.csv": b"x"}, sync=False)
    open_fds = len(os.listdir("/proc/self/fd"))
    fs.fsync_files([tmp_path / "a" / "x.csv"], dirs=[tmp_path / "a", tmp_path / "no-such-folder"])  # passed over
    with pytest.raises(FileNotFoundError):  # a file that is not there is still an error
        fs.fsync_files([tmp_path / "a" / "missing"], dirs=[tmp_path / "a"])
    assert len(os.listdir("/proc/self/fd")) == open_fds, "every descriptor is closed, after a failure too"


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "private"])
def test_write_new_files_stopped_at_any_call_leaves_nothing(tmp_path: Path, shared: bool) -> None:
    """Ctrl-C as each call `write_new_files` makes returns, in turn: nothing is then left, no file and
    no temporary file. One that came just after a file was created used to leave it empty under its
    own name (in the outbox: a package no ledger row queues, which the next run set aside as never
    queued)."""
    files = {"a.lax": b"a" * 70_000, "b.lax": b"b" * 10}
    step = 0
    while True:
        step += 1
        d = tmp_path / f"try{step}"
        d.mkdir()
        if not ctrl_c_after_call(fs.write_new_files.__code__, step,
                                 functools.partial(fs.write_new_files, d, files, folder_too=True, shared=shared)):
            break
        assert sorted(p.name for p in d.iterdir()) == [], step
    assert {p.name: p.read_bytes() for p in d.iterdir()} == files
    assert step > 10, "interrupted at each call, then not at all"
