"""Files on disk, one copy of each helper: atomic writes, directory fsync, SHA-256 of a file.

Everything that writes a file laxchange must not lose or half-write goes through `open_atomic`;
every hash of a file on disk through `sha256_file`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["digest_file", "fsync_dir", "open_atomic", "sha256_file", "write_atomic"]


def digest_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Hex SHA-256 and size of a file from one read, in 1 MiB chunks (memory stays flat)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    return digest_file(path)[0]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in `path` durable. Best effort: some filesystems refuse fsync on a directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def open_atomic(path: str | os.PathLike[str], *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A file that appears at `path` complete or not at all (temp file, fsync, rename).

    The temporary file is created with O_EXCL under an unpredictable name and the final mode is
    set on the open descriptor, so nobody else can plant, pre-open or widen it; on any failure it
    is removed and an existing `path` is left untouched.
    """
    p = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(p.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Write via a temporary file, fsync, then rename: no partial output is ever visible."""
    with open_atomic(path, mode=mode) as fh:
        fh.write(data)
