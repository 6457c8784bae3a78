"""Files on disk, one copy of each helper: atomic writes, directory fsync, SHA-256 of a file,
opening a file someone else named.

Everything that writes a file laxchange must not lose or half-write goes through `open_atomic`;
every hash of a file on disk through `sha256_file`; every read of a file a user or partner
named through `open_regular`, which refuses FIFOs, devices and sockets (they block or never end)
without ever blocking itself.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import queue
import re
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from laxchange.errors import InvalidData, LaxError, UsageError

__all__ = [
    "SHARED_TEMPORARY",
    "BackgroundSha256",
    "BackgroundWriteback",
    "Spool",
    "check_new_folder",
    "check_output",
    "digest_file",
    "digest_stream",
    "fsync_all",
    "fsync_dir",
    "fsync_each",
    "fsync_files",
    "open_atomic",
    "open_regular",
    "output_stream_kind",
    "private_dirs",
    "read_bounded",
    "sha256_file",
    "write_atomic",
    "write_atomic_many",
    "write_new",
    "write_new_atomic",
    "write_new_files",
    "write_new_folder",
]

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


class BackgroundSha256:
    """SHA-256 of the chunks fed to it, computed on a thread of its own, so a sender's loop does
    not wait for it: hashlib releases the GIL for buffers over 2 KiB, so hashing overlaps the
    sending (an upload hashed in line spent 0.3-0.4 s of a 2.3 s 500 MB transfer on it).

    `update` queues a chunk (at most `depth` wait; the chunk must not change afterwards);
    `hexdigest` waits for those queued; `close` stops the thread (for a sender that gives up).
    """

    def __init__(self, depth: int = 64) -> None:
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=depth)
        self._hash = hashlib.sha256()
        self._open = True
        self._thread = threading.Thread(target=self._run, name="laxchange-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def update(self, chunk: bytes | memoryview) -> None:
        if not self._open:
            raise ValueError("update after hexdigest or close")
        self._queue.put(chunk)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._queue.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()

    def __enter__(self) -> BackgroundSha256:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundWriteback:
    """Writes a growing file's data back to disk while it is still being written, so the fsync
    that makes it durable at the end finds little left to do: every `step` bytes (`wrote`), a
    thread of its own fdatasyncs the file (the GIL is released meanwhile). A 500 MB download's
    final fsync took 0.25-0.37 s here, with this about 0.1 s (docs/transport.md).

    It only moves work earlier: the caller still fsyncs at the end. `close` stops the thread and
    returns the error of a background fdatasync, if one failed: Linux reports a lost writeback to
    one fsync only, so the caller's own fsync could succeed with the data gone ("fsyncgate").
    The descriptor must stay open until `close` has returned.
    """

    def __init__(self, fd: int, step: int = 8 * 1024 * 1024) -> None:
        self._fd, self._step = fd, step
        self._due = step
        self._error: OSError | None = None
        self._stop = self._pending = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="laxchange-writeback", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._pending:  # asked for before `close`: done, so its error is never lost
                self._pending = False
                try:
                    os.fdatasync(self._fd)
                except OSError as exc:
                    self._error = exc
                    return
            if self._stop:
                return

    def wrote(self, total: int) -> None:
        """`total` bytes are written so far: past the next step, wake the thread (requests never queue up)."""
        if total >= self._due:
            self._due = total + self._step
            self._pending = True
            self._wake.set()

    def close(self) -> OSError | None:
        if not self._stop:
            self._stop = True
            self._wake.set()
            self._thread.join()
        return self._error


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    return digest_file(path)[0]


def file_signature(path: str | os.PathLike[str]) -> list[int] | None:
    """Which file `path` is and how it was last written (inode, size, modification and change times,
    in ns), for a cache to tell the file it read from any other since; None if there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


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


def move_new(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Move `src` to `dest` in the same filesystem, never over a file already at `dest`
    (FileExistsError then, `src` untouched): link, fsync `dest`'s folder, then unlink `src`. A
    crash between leaves both names on one file, never none."""
    os.link(src, dest)
    fsync_dir(Path(dest).parent)
    os.unlink(src)


def output_stream_kind(p: Path, what: str = "output file") -> str | None:
    """What kind of stream `p` names when it is not a file or folder: "a character device" or
    "a FIFO" (written straight into, e.g. /dev/null, /dev/stdout, a pipe), else None.

    A block device or socket is refused: the rename that makes a write atomic would replace it
    with a regular file (as root, a rename onto /dev/null removes the device)."""
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None
    kind = _KINDS.get(stat.S_IFMT(st.st_mode))
    if kind in ("a character device", "a FIFO"):
        return kind
    if kind is not None:
        raise UsageError(f"{what} {p} is {kind}, not a file; nothing was written", code="output.not-regular",
                         hint="name a regular file (or a character device such as /dev/null)")
    return None


def _open_stream(p: Path, kind: str, what: str) -> BinaryIO:
    """Open a device or FIFO to write into, never blocking: a FIFO nobody reads is refused."""
    try:
        fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
        raise UsageError(f"{what} {p} is {kind} that nobody is reading; nothing was written",
                         code="output.not-regular", hint="start the reader first, or name a regular file") from None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "wb")


@contextmanager
def open_atomic(path: str | os.PathLike[str], *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A file that appears at `path` complete or not at all (temp file, fsync, rename).

    The temporary file is created with O_EXCL under an unpredictable name and the final mode is
    set on the open descriptor, so nobody else can plant, pre-open or widen it; on any failure it
    is removed and an existing `path` is left untouched.
    """
    p = Path(path)
    kind = output_stream_kind(p)
    if kind is not None:  # nothing to replace and nothing to fsync: the bytes go straight in
        with _open_stream(p, kind, "output file") as out:
            yield out
        return
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


def private_dirs(folder: str | os.PathLike[str]) -> None:
    """Make `folder` and any missing parent, each 0700: `mkdir(mode=0o700, parents=True)` gives
    the parents it makes the umask's mode (0755 under the usual 022), and doctor's permission
    check rightly fails a home folder that others can list."""
    missing = []
    d = Path(folder)
    while not d.is_dir():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        with contextlib.suppress(FileExistsError):
            m.mkdir(mode=0o700)


def write_new(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, sync: bool = True) -> None:
    """Create `path` (never over an existing file), write and fsync it; no rename, no directory fsync.

    For files in a private staging folder that is itself renamed into place: the caller fsyncs the
    folder once before that rename, instead of a temporary file and a directory fsync per file.
    `sync=False`: not fsynced here either; the caller fsyncs it (`fsync_files`) before that rename."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


#: How many fsyncs `fsync_each` has in flight at once (its pool's threads).
FSYNC_THREADS = 8
#: (the process that made it, the pool): a pool is never used across fork(), whose child has no threads
_FSYNC_POOL: list[tuple[int, ThreadPoolExecutor]] = []


def fsync_all(fds: Sequence[int]) -> None:
    """fsync every descriptor, all at once: each is durable when this returns, as after its own
    fsync, but the filesystem's journal commits them together (ext4 here: 8 small files in 2-7 ms
    instead of 10-30 ms one after another). The first failure is raised once all have finished."""
    errors = [e for e in fsync_each(fds) if e is not None]
    if errors:
        raise errors[0]


def fsync_each(fds: Sequence[int]) -> list[BaseException | None]:
    """fsync every descriptor, all at once; what each raised (None: durable), once all have finished."""
    if len(fds) <= 1:
        return _fsync_slice(fds)
    if not _FSYNC_POOL or _FSYNC_POOL[0][0] != os.getpid():
        _FSYNC_POOL[:] = [(os.getpid(), ThreadPoolExecutor(max_workers=FSYNC_THREADS,
                                                           thread_name_prefix="laxchange-fsync"))]
    # one task per thread, each fsyncing every FSYNC_THREADS-th descriptor in turn: as many in flight
    # as one task per descriptor gave (the pool's threads), without a future, a lock and a condition
    # per file (an import's batch fsyncs ~100 files; the nightly council's receipts ~4 a receipt)
    n = min(FSYNC_THREADS, len(fds))
    done = [_FSYNC_POOL[0][1].submit(_fsync_slice, fds[k::n]) for k in range(n)]
    out: list[BaseException | None] = [None] * len(fds)
    for k, f in enumerate(done):
        out[k::n] = f.result()
    return out


#: A file (or folder) changed this recently is not trusted to show its next change in its times: a
#: second write within the file system's timestamp granularity of the first could leave them as they
#: were (git's "racily clean" index entries). Caches keyed on times skip what is this new.
RACY_NS = 2_000_000_000


def _fsync_slice(fds: Sequence[int]) -> list[BaseException | None]:
    """fsync each of `fds` in turn (one task of `fsync_each`); what each raised, None if durable."""
    out: list[BaseException | None] = []
    for fd in fds:
        try:
            os.fsync(fd)
            out.append(None)
        except OSError as exc:
            out.append(exc)
    return out


#: The hidden temporary name `write_new_files(shared=True)` writes a file under before linking it to its
#: own: one a kill left behind is either never published or a second name of a file that is.
SHARED_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")


def write_new_files(folder: str | os.PathLike[str], files: Mapping[str, bytes], *, mode: int = 0o600,
                    sync: bool = True, folder_too: bool = False, shared: bool = False) -> None:
    """`write_new` for several files of one folder, all fsynced together (`fsync_all`). None may
    exist yet (nothing is ever replaced); on any failure, Ctrl-C included, every file and name
    made here is removed.
    `shared`: others list the folder by name (the outbox: the run's housekeeping, `withdraw`), so
    each file appears complete or not at all. It is written under a hidden temporary name
    (`.<name>.<random>.tmp`), fsynced, then hard-linked to its name (which fails if the name
    exists) and the temporary name removed. A Ctrl-C there once left an empty `<transfer id>.lax`
    that the next run set aside as a package never queued; a kill now leaves at most a hidden
    temporary file, which nothing reads. Without it (a private folder renamed into place whole:
    an import's staging, `write_new_folder`) the files are written under their names directly,
    with no link and unlink each.
    `sync=False`: not fsynced here; the caller fsyncs them (`fsync_files`) with others, before use.
    `folder_too`: the folder is fsynced too, so the names are durable when this returns (after
    the links, for `shared`; else in the same group as the files)."""
    base = Path(folder)
    names = [base / name for name in files]
    paths = [base / f".{p.name}.{secrets.token_hex(6)}.tmp" for p in names] if shared else names  # SHARED_TEMPORARY
    made: list[Path] = []  # every name this call created, to remove on any failure
    fds: list[int] = []
    try:
        for path, data in zip(paths, files.values(), strict=True):
            made.append(path)  # named before it exists: an interrupt just after the open still removes it
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
            except OSError:
                made.pop()  # not made here: the name (if it exists) is not ours
                raise
            fds.append(fd)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        if sync and folder_too and not shared:
            _fsync_with_folder(fds, base)
        elif sync:
            fsync_all(fds)
        while fds:  # closed here, not in a `finally`: an interrupt at any call of this still removes them all
            os.close(fds.pop())
        if shared:
            for name, tmp in zip(names, paths, strict=True):
                made.append(name)  # as the temporary file: an interrupt just after the link still removes it
                try:
                    os.link(tmp, name)
                except OSError:
                    made.pop()
                    raise
            for tmp in paths:
                tmp.unlink()
                made.remove(tmp)
            if sync and folder_too:
                _fsync_folder(base)
    except BaseException:
        for fd in fds:
            os.close(fd)
        for path in made:
            path.unlink(missing_ok=True)
        raise


def _fsync_with_folder(fds: Sequence[int], folder: str | os.PathLike[str]) -> None:
    """fsync `fds` and `folder` in one group. A filesystem that refuses fsync on a folder (EINVAL)
    is let off as `fsync_dir` lets it off: the files are then fsynced on their own."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        fsync_all([*fds, dir_fd])
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        fsync_all(fds)
    finally:
        os.close(dir_fd)


def _fsync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync `folder`, raising a failure; a filesystem that refuses fsync on a folder (EINVAL) is
    let off, as `fsync_dir` lets it off."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(dir_fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Write via a temporary file, fsync, then rename: no partial output is ever visible."""
    with open_atomic(path, mode=mode) as fh:
        fh.write(data)


def write_atomic_many(files: Mapping[Path, bytes], *, mode: int = 0o600) -> None:
    """`write_atomic` for many files: each written to a temporary file, all fsynced together, each
    renamed into place, then each folder fsynced (together). A failure before the renames leaves
    every file as it was; one during them, each file either old or new (never half-written)."""
    temps: list[tuple[Path, Path, int]] = []
    try:
        for path, data in files.items():
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((path, Path(tmp_name), fd))
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        fsync_all([fd for _, _, fd in temps])
        for path, staged, _ in temps:
            os.replace(staged, path)
    except BaseException:
        for _, staged, _ in temps:
            staged.unlink(missing_ok=True)
        raise
    finally:
        for _, _, fd in temps:
            os.close(fd)
    fsync_dirs({path.parent for path in files})


def fsync_files(paths: Iterable[str | os.PathLike[str]], *, dirs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """fsync the files at `paths` (written and closed by us, not yet synced), all at once
    (`fsync_all`): each is durable when this returns. Unlike `fsync_dirs`, a failure to open or
    to sync one is raised. The folders `dirs` are fsynced in the same group (one wait, not two,
    where neither has to be durable before the other), best effort, as `fsync_dirs`."""
    fds: list[int] = []
    folders: list[int] = []
    try:
        for f in paths:
            fds.append(os.open(f, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)))
        for d in dirs:
            with contextlib.suppress(OSError):
                folders.append(os.open(d, os.O_RDONLY))
        errors = [e for e in fsync_each([*fds, *folders])[:len(fds)] if e is not None]
        if errors:
            raise errors[0]
    finally:
        for fd in (*fds, *folders):
            os.close(fd)


def fsync_dirs(paths: Iterable[str | os.PathLike[str]]) -> None:
    """`fsync_dir` for several folders, all at once (`fsync_all`). Best effort, as `fsync_dir`."""
    dirs: list[int] = []
    try:
        for d in paths:
            with contextlib.suppress(OSError):
                dirs.append(os.open(d, os.O_RDONLY))
        with contextlib.suppress(OSError):
            fsync_all(dirs)
    finally:
        for fd in dirs:
            os.close(fd)


def write_new_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Write a file that must not exist yet, visible complete or not at all; FileExistsError if it does.

    The data goes to a temporary file (fsynced, `mode` set on the descriptor) that is then
    hard-linked to `path`: the link fails if the name exists, even if the file appeared a moment
    ago, so an existing file is never replaced (`write_atomic` replaces; this never does). Unlike
    `write_new` (for a private staging folder renamed into place later), a reader never sees the
    file half-written, so it suits a file written straight where the user asked.
    """
    p = Path(path)
    kind = output_stream_kind(p)
    if kind is not None:  # a device or pipe is written into, not replaced (nor refused as existing)
        with _open_stream(p, kind, "output file") as out:
            out.write(data)
        return
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, p)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(p.parent)


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
    if output_stream_kind(p, what) is not None:
        return  # written into, never replaced
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


def check_new_folder(path: str | os.PathLike[str], *, what: str = "output folder") -> None:
    """Refuse an output folder that is a file, holds anything, or has no parent folder.

    An empty existing folder is fine (`write_new_folder` replaces it). Call it before any work.
    """
    p = Path(path)
    if os.path.lexists(p):
        if not p.is_dir() or p.is_symlink():
            raise UsageError(f"{what} {p} exists and is not a folder; nothing was written", code="output.exists",
                             hint="name a new folder")
        if any(p.iterdir()):
            raise UsageError(f"{what} {p} is not empty; nothing was written", code="output.exists",
                             hint="name a new (or empty) folder, so no earlier output is mixed in or replaced")
        return
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"the folder {parent} for {what} {p.name} does not exist; nothing was written",
                         code="output.no-folder", hint=f"create it first (mkdir -p {parent}) or choose another path")


def write_new_folder(path: str | os.PathLike[str], files: Mapping[str, bytes], *, mode: int = 0o600,
                     what: str = "output folder") -> list[Path]:
    """Write `files` (plain name -> bytes) into a folder that appears complete or not at all.

    They go into a hidden sibling folder (0700, each file fsynced, mode `mode`), which is then
    renamed to `path`; rename(2) replaces only an empty folder, so nothing is ever overwritten.
    """
    p = Path(path)
    check_new_folder(p, what=what)
    for name in files:
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"not a plain file name: {name!r}")
    tmp = Path(tempfile.mkdtemp(dir=p.parent if str(p.parent) else ".", prefix=f".{p.name}.", suffix=".tmp"))
    try:
        write_new_files(tmp, files, mode=mode)  # each file fsynced; the folder once, before its rename
        fsync_dir(tmp)
        try:
            os.rename(tmp, p)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise UsageError(f"{what} {p} appeared while it was being written; nothing was written",
                                 code="output.exists", hint="name a new folder") from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(p.parent if str(p.parent) else ".")
    return [p / name for name in files]


class Spool:
    """Bytes written in order, held in memory up to `max_size` bytes and beyond that in an
    unlinked 0600 temporary file in `dir` (like tempfile.SpooledTemporaryFile, without its copies:
    in memory the written chunks are kept as they are and joined once, when read)."""

    def __init__(self, max_size: int, dir: str | os.PathLike[str] | None = None) -> None:
        self._max, self._dir = max_size, dir
        self._chunks: list[bytes] = []
        self._size = 0
        self._file: BinaryIO | None = None

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        n = len(data)
        if self._file is None and self._size + n > self._max:
            self._file = tempfile.TemporaryFile(dir=self._dir)  # noqa: SIM115 - closed by close()
            self._file.writelines(self._chunks)
            self._chunks = []
        if self._file is None:
            self._chunks.append(bytes(data))
        else:
            self._file.write(data)
        self._size += n
        return n

    def __len__(self) -> int:
        return self._size

    def getvalue(self) -> bytes | None:
        """Everything written, as one bytes object, or None once it has gone to a file."""
        return self._joined() if self._file is None else None

    def _joined(self) -> bytes:
        if len(self._chunks) != 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]

    def reader(self) -> BinaryIO:
        """A stream over everything written, from the start (in memory: no copy is made)."""
        if self._file is None:
            return io.BytesIO(self._joined())
        self._file.flush()
        self._file.seek(0)
        return self._file

    def copy_to(self, dst: BinaryIO) -> None:
        """Write everything written to `dst`."""
        if self._file is None:
            dst.writelines(self._chunks)
            return
        self._file.flush()
        self._file.seek(0)
        shutil.copyfileobj(self._file, dst, 256 * 1024)

    def close(self) -> None:
        self._chunks = []
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
