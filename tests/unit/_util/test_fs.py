"""`fs.write_new_atomic`: a new file complete, mode 0600, never over an existing one, no temporary file left."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from laxchange import render
from laxchange._util import fs
from laxchange.errors import UsageError


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


def _specials(tmp_path: Path) -> list[Path]:
    """A FIFO, and where we may make one (root), a character device like /dev/null."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = [fifo]
    if os.geteuid() == 0:
        dev = tmp_path / "null"
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out.append(dev)
    return out


def test_atomic_writes_never_replace_a_device_or_fifo(tmp_path: Path) -> None:
    # A rename over /dev/null replaced it with a regular file when a command ran as root with -o /dev/null.
    for special in _specials(tmp_path):
        kind = stat.S_IFMT(special.lstat().st_mode)
        for write in (fs.write_atomic, fs.write_new_atomic):
            with pytest.raises(UsageError) as info:
                write(special, b"{}")
            assert info.value.code == "output.not-regular"
            assert str(special) in str(info.value)
        for check in (lambda p: fs.check_output(p, overwrite=True), lambda p: render.check_output(p, force=True)):
            with pytest.raises(UsageError) as info:
                check(special)
            assert info.value.code == "output.not-regular"
        assert stat.S_IFMT(special.lstat().st_mode) == kind
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_sample_refuses_a_fifo_as_its_output(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "laxchange", "sample", "education-record", "-o", str(fifo)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "is a FIFO, not a file" in proc.stderr and "Traceback" not in proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
