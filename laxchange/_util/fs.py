"""Files on disk, one copy of each helper: atomic writes, directory fsync, SHA-256 of a file,
opening a file someone else named.

Everything that writes a file laxchange must not lose or half-write goes through `open_atomic`;
every hash of a file on disk through `sha256_file`; every read of a file a user or partner
named through `open_regular`, which refuses FIFOs, devices and sockets (they block or never end)
without ever blocking itself.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from laxchange.errors import InvalidData, LaxError, UsageError

__all__ = ["check_output", "digest_file", "digest_stream", "fsync_dir", "open_atomic", "open_regular",
           "read_bounded", "sha256_file", "write_atomic"]

_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket"}


def open_regular(path: str | os.PathLike[str], *, what: str = "file", follow_symlinks: bool = True,
                 error: type[LaxError] = InvalidData) -> io.BufferedReader:
    """Open a file someone named for reading, refusing anything that is not a regular file.

    The open itself cannot block (O_NONBLOCK: a FIFO with no writer opens at once), the type is
    checked on the opened descriptor (so no rename between a check and the open can swap the
    file), then the descriptor is made blocking again for ordinary reads. With
    `follow_symlinks=False` a symbolic link as the last component is refused (O_NOFOLLOW).
    Problems raise `error` (InvalidData by default) with a `file.*` code, naming `what` and `path`.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} {path}: no such file", code="file.missing", hint="check the path") from None
    except PermissionError:
        raise error(f"{what} {path}: permission denied", code="file.permission",
                    hint="check the file's permissions") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise error(f"{what} {path} is a symbolic link", code="file.symlink",
                        hint="pass the real file, not a link to it") from None
        if exc.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
            raise error(f"{what} {path} is not a regular file (a socket or device)", code="file.not-regular",
                        hint="name an ordinary file") from None
        raise error(f"{what} {path}: cannot read: {exc.strerror}", code="file.unreadable",
                    hint="check the path and the file's permissions") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{what} {path} is a directory, not a file", code="file.directory", hint="name a file")
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
            raise error(f"{what} {path} is not a regular file ({kind})", code="file.not-regular",
                        hint="name an ordinary file: laxchange does not read pipes, devices or sockets")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(fh: BinaryIO, max_bytes: int) -> bytes | None:
    """All of `fh` if it holds at most `max_bytes` (checked on its size first, then on what is
    read, in case it grows); None if it is larger. Never reads more than `max_bytes + 1`."""
    try:
        if os.fstat(fh.fileno()).st_size > max_bytes:
            return None
    except (OSError, io.UnsupportedOperation):  # a stream without a descriptor: the read decides
        pass
    data = fh.read(max_bytes + 1)
    return None if len(data) > max_bytes else data


def digest_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Hex SHA-256 and size of a file from one read, in 1 MiB chunks (memory stays flat).

    Only a regular file is read (`open_regular`), so hashing a FIFO or a device fails at once."""
    with open_regular(path) as fh:
        return digest_stream(fh)


def digest_stream(fh: BinaryIO) -> tuple[str, int]:
    """Hex SHA-256 and size of what is left in `fh`, in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
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


def write_new(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Create `path` (never over an existing file), write and fsync it; no rename, no directory fsync.

    For files in a private staging folder that is itself renamed into place: the caller fsyncs the
    folder once before that rename, instead of a temporary file and a directory fsync per file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Write via a temporary file, fsync, then rename: no partial output is ever visible."""
    with open_atomic(path, mode=mode) as fh:
        fh.write(data)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_output(path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = (),
                 overwrite: bool = False, what: str = "output file") -> None:
    """Refuse to write `path` if it is one of `inputs` (same file by device and inode, so another
    name or a link to it counts too), even with `overwrite`; or if it exists and not `overwrite`.

    Call it before any work is done, so a refusal costs nothing and writes nothing.
    """
    p = Path(path)
    for src in inputs:
        if _same_file(p, Path(src)):
            raise UsageError(f"{what} {p} is the input file {src}; refusing to write over it",
                             code="output.is-input",
                             hint="choose another output file name (--force never replaces an input)")
    if os.path.lexists(p):
        if overwrite and not p.is_dir():
            return
        if p.is_dir():
            raise UsageError(f"{what} {p} is a directory", code="file.directory", hint="name a file to write")
        raise UsageError(f"{what} {p} already exists; nothing was written", code="output.exists",
                         hint="choose another name, or pass --force to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        # Not created for the user: a mistyped folder would put a child's record somewhere unexpected.
        what_is = "is not a folder" if parent.exists() else "does not exist"
        raise UsageError(f"the folder {parent} for {what} {p.name} {what_is}; nothing was written",
                         code="output.no-folder", hint=f"create it first (mkdir -p {parent}) or choose another path")
