"""`fs`: new files complete, mode 0600, never over an existing one, no temporary file left; fsyncs together."""

from __future__ import annotations

import os
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
