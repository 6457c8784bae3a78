"""Which temporary upload files this home may have left on its partners' servers.

An upload goes to `.NAME.part-<random>` and is renamed to NAME once complete (docs/transport.md).
One that dies (a dropped connection, a killed process) leaves that file on the partner's server.
Finding such files by listing the folder costs as much as the folder is long, and a partner's
drop folder is shared by every sender and holds every file not yet collected: in a national run
the schools spent more of their nights listing the council's folder than sending to it. So each
connection writes the temporary names it makes to a log of its own, before it makes them, and a
later connection removes by name what an ended one left unresolved: no listing at all.

A log is held with an exclusive `flock` while its connection lives (the kernel lets go when the
process dies); a log nobody holds belongs to a connection that ended with files unresolved.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["MAX_LOG_BYTES", "Orphan", "PartJournal", "PartLog"]

#: a log longer than this is read no further (it lists one line a temporary file a connection made)
MAX_LOG_BYTES = 8 * 1024 * 1024
_SUFFIX = ".log"
_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class PartLog:
    """One connection's log: each temporary file it makes, until it is published or removed."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self._open: set[str] = set()

    def add(self, remote_path: str) -> None:
        """Note `remote_path` before it is created. Not fsynced: a process that is killed has its
        write kept by the kernel; only a machine that loses power can lose the line."""
        if self._fd is None:
            raise ValueError("the log is closed")
        os.write(self._fd, json.dumps(remote_path).encode("utf-8") + b"\n")
        self._open.add(remote_path)

    def resolved(self, remote_path: str) -> None:
        """`remote_path` is gone from the server (renamed to its final name, or removed)."""
        self._open.discard(remote_path)

    @property
    def unresolved(self) -> frozenset[str]:
        return frozenset(self._open)

    def close(self) -> None:
        """Remove the log if every file in it was resolved; else leave it for a later connection."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if not self._open:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # and the lock with it


class Orphan:
    """A log no live connection holds, locked by this process until `settle`."""

    def __init__(self, path: Path, fd: int, parts: list[str]) -> None:
        self.path = path
        self._fd: int | None = fd
        self.parts = parts

    def settle(self, removed: Iterable[str]) -> None:
        """Drop the files now `removed` from the log (the log goes when none is left); release it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        gone = set(removed)
        left = [p for p in self.parts if p not in gone]
        try:
            if not left:
                self.path.unlink(missing_ok=True)
            elif len(left) != len(self.parts):
                os.ftruncate(fd, 0)
                os.pwrite(fd, b"".join(json.dumps(p).encode("utf-8") + b"\n" for p in left), 0)
        finally:
            os.close(fd)


class PartJournal:
    """The logs of one home (`HOME/cache/sftp-parts/`), one folder of them per endpoint URL."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, endpoint_url: str) -> Path:
        return self.root / hashlib.sha256(endpoint_url.encode("utf-8")).hexdigest()[:20]

    def open(self, endpoint_url: str) -> PartLog:
        """A new log for one connection to `endpoint_url`, locked before it is given its name
        (a log seen unlocked under its name is never one still being made)."""
        folder = self._folder(endpoint_url)
        _private_folders(folder)
        token = os.urandom(10).hex()
        making = folder / f".{token}.new"
        fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
            path = folder / f"{token}{_SUFFIX}"
            os.rename(making, path)
        except BaseException:
            os.close(fd)
            making.unlink(missing_ok=True)
            raise
        return PartLog(path, fd)

    def orphans(self, endpoint_url: str) -> list[Orphan]:
        """The logs for `endpoint_url` that no live connection holds, each locked for the caller,
        who must `settle` every one."""
        folder = self._folder(endpoint_url)
        try:
            names = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found: list[Orphan] = []
        for name in names:
            if not name.endswith(_SUFFIX) or name.startswith("."):
                continue
            path = folder / name
            try:
                fd = os.open(path, os.O_RDWR | _FLAGS)
            except OSError:  # gone meanwhile (its connection ended cleanly), or not a plain file
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its connection is still at work
                os.close(fd)
                continue
            if os.fstat(fd).st_nlink == 0:  # removed by its owner after we listed the folder
                os.close(fd)
                continue
            found.append(Orphan(path, fd, _read_parts(fd)))
        return found


def _private_folders(folder: Path) -> None:
    """Make `folder` and any missing parent, each 0700 (`mkdir(parents=True)` would give the
    parents the umask's mode)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)


def _read_parts(fd: int) -> list[str]:
    """The remote paths a log lists, in order, once each; a torn or foreign line is skipped."""
    data = os.pread(fd, MAX_LOG_BYTES, 0)
    out: dict[str, None] = {}
    for line in data.split(b"\n"):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, str) and value:
                out[value] = None
    return list(out)
