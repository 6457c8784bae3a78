"""`fs.write_new_atomic`: a new file complete, mode 0600, never over an existing one, no temporary file left."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from laxchange._util import fs


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
