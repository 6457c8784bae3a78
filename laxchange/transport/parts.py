"""Which temporary upload files this home may have left on its partners' servers.

An upload goes to `.NAME.part-<random>` and is renamed to NAME once complete (docs/transport.md).
One that dies (a dropped connection, a killed process) leaves that file on the partner's server.
Finding such files by listing the folder costs as much as the folder is long, and a partner's
drop folder is shared by every sender and holds every file not yet collected: in a national run
the schools spent more of their nights listing the council's folder than sending to it. So each
connection writes the temporary names it makes to a log of its own, before it makes them, and a
later connection removes by name what an ended one left unresolved: no listing at all.

A log is held with an exclusive `flock` while its connection lives (the kernel lets go when the
process dies); a log nobody holds belongs to a connection that ended with files unresolved. A
`flock` belongs to the open file, which a forked child shares: so a child closes its copies of
every log as it starts (`_held`, `os.register_at_fork`), and a log is free as soon as its own
connection ends, however long a child forked meanwhile lives. The child cannot use the log (nor
the parent's connection). Only a fork from another thread in the instant a log is being opened
can still carry one over: that log then waits for the child to exit, nothing worse.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from laxchange._util.fs import private_dirs

__all__ = ["MAX_LOG_BYTES", "ROTATE_LINES", "Leftovers", "Orphan", "PartJournal", "PartLog"]

#: a log is read no further than this: no log of ours comes near it (`ROTATE_LINES`); one that
#: does is not ours, or damaged, and is never removed, so nothing past it is forgotten
MAX_LOG_BYTES = 8 * 1024 * 1024
#: a connection starts a new log after this many lines (carrying over what is unresolved)
ROTATE_LINES = 4096
_SUFFIX = ".log"
#: in each endpoint's folder: the endpoint URL the folder is for (its name is only a hash of it)
_URL_FILE = "endpoint-url"
_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


#: a `.new` file (a log not yet named) older than this is a crash's leftover, not one being made
_UNNAMED_AGE = 60.0


class _Holder:
    """Something holding a log's descriptor (and so its lock) in `_fd`."""

    _fd: int | None


#: every log this process holds open: a forked child closes its copies (`_let_go_in_child`)
_held: weakref.WeakSet[_Holder] = weakref.WeakSet()


def _let_go_in_child() -> None:
    """In a newly forked child: close the inherited log descriptors, so the lock each holds ends
    with its owner in the parent, not with the last of its children. Never unlinks anything."""
    for holder in list(_held):
        fd, holder._fd = holder._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_let_go_in_child)


def _line(remote_path: str) -> bytes:
    """One name, on a line of its own even after a line a failed write cut short."""
    return b"\n" + json.dumps(remote_path).encode("utf-8") + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` until every byte is written: a nearly full disk can take part of a write."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, "no byte of the log line was written")
        view = view[n:]


class PartLog(_Holder):
    """One connection's log: each temporary file it makes, until it is published or removed."""

    def __init__(self, journal: PartJournal, endpoint_url: str) -> None:
        self._journal = journal
        self._url = endpoint_url
        self.path, self._fd = journal.new_file(endpoint_url)
        _held.add(self)
        self._lines = 0
        self._open: set[str] = set()

    def add(self, remote_path: str) -> None:
        """Note `remote_path` before it is created. Not fsynced: a process that is killed has its
        write kept by the kernel; only a machine that loses power can lose the line."""
        if self._fd is None:
            raise ValueError("the log is closed")
        if self._lines >= self._journal.rotate_lines:
            self._rotate()
        assert self._fd is not None  # noqa: S101  narrowing only: _rotate leaves a file open or raises
        _write_all(self._fd, _line(remote_path))
        self._lines += 1
        self._open.add(remote_path)

    def _rotate(self) -> None:
        """A new file holding what is unresolved, then the old one removed (a crash between leaves
        both, naming the same files: harmless)."""
        path, fd = self._journal.new_file(self._url)
        try:
            _write_all(fd, b"".join(_line(p) for p in sorted(self._open)))
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        old_path, old_fd = self.path, self._fd
        self.path, self._fd, self._lines = path, fd, len(self._open)
        try:
            old_path.unlink(missing_ok=True)
        finally:
            if old_fd is not None:
                os.close(old_fd)

    def resolved(self, remote_path: str) -> None:
        """`remote_path` is gone from the server (renamed to its final name, or removed)."""
        self._open.discard(remote_path)

    @property
    def unresolved(self) -> frozenset[str]:
        return frozenset(self._open)

    def close(self) -> None:
        """Remove the log if every file in it was resolved; else leave it for a later connection,
        holding only the unresolved names (a later sweep sends one REMOVE a name it holds)."""
        if self._fd is None:
            return
        try:
            if self._open and self._lines > len(self._open):
                self._rotate()
        finally:
            fd, self._fd = self._fd, None
            try:
                if not self._open:
                    self.path.unlink(missing_ok=True)
            finally:
                if fd is not None:
                    os.close(fd)  # and the lock with it


class Orphan(_Holder):
    """A log no live connection holds, locked by this process until `settle`."""

    def __init__(self, path: Path, fd: int, parts: list[str], age: float, complete: bool) -> None:
        self.path = path
        self._fd = fd
        _held.add(self)
        self.parts = parts
        #: seconds since the log was last written
        self.age = age
        #: False when the log is longer than `MAX_LOG_BYTES` (then it is never removed)
        self.complete = complete

    def settle(self, gone: Iterable[str]) -> None:
        """Release the log; remove it if every file it names is `gone`. It is never rewritten (a
        rewrite cut short would forget names): a name already gone costs a later sweep one REMOVE."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.complete and set(self.parts) <= set(gone):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Let the log go as it is."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True)
class Leftovers:
    """What ended connections left unresolved at one endpoint (`PartJournal.leftovers`)."""

    #: the endpoint URL, or None for a folder made before folders recorded it
    url: str | None
    folder: Path
    #: temporary files still named in its logs: on the server unless removed by other means
    names: int
    logs: int


class PartJournal:
    """The logs of one home (`HOME/cache/sftp-parts/`), one folder of them per endpoint URL."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time, *,
                 rotate_lines: int = ROTATE_LINES, max_log_bytes: int = MAX_LOG_BYTES) -> None:
        self.root = root
        self._clock = clock
        self.rotate_lines = rotate_lines
        self.max_log_bytes = max_log_bytes

    def _folder(self, endpoint_url: str) -> Path:
        return self.root / _folder_name(endpoint_url)

    def open(self, endpoint_url: str) -> PartLog:
        """A new log for one connection to `endpoint_url`."""
        return PartLog(self, endpoint_url)

    def new_file(self, endpoint_url: str) -> tuple[Path, int]:
        """A new log file, locked before it is given its name (a log seen unlocked under its name
        is never one still being made)."""
        folder = self._folder(endpoint_url)
        private_dirs(folder)
        _note_url(folder, endpoint_url)
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
        return path, fd

    def orphans(self, endpoint_url: str) -> list[Orphan]:
        """The logs for `endpoint_url` that no live connection holds, each locked for the caller,
        who must `settle` every one."""
        folder = self._folder(endpoint_url)
        try:
            names = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found: list[Orphan] = []
        try:
            for name in names:
                if name.startswith(".") and name.endswith(".new"):
                    self._drop_unnamed(folder / name)
                    continue
                if not name.endswith(_SUFFIX) or name.startswith("."):
                    continue
                orphan = self._claim(folder / name)
                if orphan is not None:
                    found.append(orphan)
        except BaseException:
            for o in found:
                o.release()
            raise
        return found

    def leftovers(self) -> list[Leftovers]:
        """Each endpoint folder holding logs no live connection holds, with the URL it is for: a
        later connection to that URL sweeps them, but one to a URL no longer in use never comes
        (`laxchange doctor` names those). Each log is locked only while it is read."""
        try:
            folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink())
        except FileNotFoundError:
            return []
        out: list[Leftovers] = []
        for folder in folders:
            names: set[str] = set()
            logs = 0
            for entry in sorted(folder.iterdir()):
                if not entry.name.endswith(_SUFFIX) or entry.name.startswith("."):
                    continue
                orphan = self._claim(entry)
                if orphan is not None:
                    logs += 1
                    names.update(orphan.parts)
                    orphan.release()
            if logs:
                out.append(Leftovers(_read_url(folder), folder, len(names), logs))
        return out

    def _drop_unnamed(self, path: Path) -> None:
        """A log file left before it got its name (a crash inside `new_file`): nothing was ever
        written to it, so it goes once nobody holds it and it is a minute old (younger, it may be
        between its maker's open and lock)."""
        orphan = self._claim(path)
        if orphan is not None:
            try:
                if not orphan.parts and orphan.age >= _UNNAMED_AGE:
                    path.unlink(missing_ok=True)
            finally:
                orphan.release()

    def _claim(self, path: Path) -> Orphan | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _FLAGS)
        except OSError:  # gone meanwhile (its connection ended cleanly), or a symlink
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: its connection is still at work
                os.close(fd)
                return None
            st = os.fstat(fd)
            if st.st_nlink == 0 or not stat.S_ISREG(st.st_mode):  # removed by its owner since; or not a log
                os.close(fd)
                return None
            data = os.pread(fd, self.max_log_bytes + 1, 0)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        parts = _parse(data[:self.max_log_bytes])
        return Orphan(path, fd, parts, max(0.0, self._clock() - st.st_mtime), len(data) <= self.max_log_bytes)


def _folder_name(endpoint_url: str) -> str:
    return hashlib.sha256(endpoint_url.encode("utf-8")).hexdigest()[:20]


def _note_url(folder: Path, endpoint_url: str) -> None:
    """Record once which URL `folder` is for (made whole under a temporary name, then linked: a
    reader never sees half of it, and the first writer's stands)."""
    target = folder / _URL_FILE
    if target.exists():
        return
    tmp = folder / f".{os.urandom(6).hex()}.url"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FLAGS, 0o600)
    try:
        try:
            _write_all(fd, endpoint_url.encode("utf-8") + b"\n")
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _read_url(folder: Path) -> str | None:
    """The URL `folder` is for, if it says and it matches the folder's name; else None."""
    try:
        fd = os.open(folder / _URL_FILE, os.O_RDONLY | os.O_NONBLOCK | _FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 4097)
    finally:
        os.close(fd)
    try:
        url = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if not url or _folder_name(url) != folder.name:
        return None
    return url


def _parse(data: bytes) -> list[str]:
    """The remote paths a log lists, in order, once each; a torn or foreign line is skipped."""
    out: dict[str, None] = {}
    for line in data.split(b"\n"):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, str) and value:
                out[value] = None
    return list(out)
