"""A local folder with the same contract as SFTP: for tests and single-machine setups."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from laxchange._util.fs import fsync_each
from laxchange.errors import TransientTransportError, TransportError
from laxchange.transport.base import (
    BACKGROUND_BYTES,
    PART_MARKER,
    PROBE_BYTES,
    SINK_BATCH,
    DoneResults,
    GetItem,
    GetResults,
    Listing,
    LocalSink,
    Progress,
    PutItem,
    PutResults,
    RemoteFile,
    aside_name,
    check_folder,
    check_name,
    commit_sinks,
    delete_each,
    fsync_dir,
    move_each,
    name_problem,
    probe_name,
    safe_label,
    sha256_file,
)
from laxchange.transport.endpoints import Endpoint

CHUNK = 1 << 20
#: What `get_many` has fetched so far: a verified file not yet published, or the error in its place.
_Fetched = list[LocalSink | TransportError]
_NOT_REGULAR_HINT = "only regular files are collected; remove the link or special file from the drop folder"


class LocalFolderTransport:
    """`file:///path`: files are written to a hidden temporary name, fsync'd, then hard-linked
    into place (which, unlike rename, can never overwrite)."""

    def __init__(self, endpoint: Endpoint) -> None:
        url = endpoint.parsed
        if url.scheme != "file":
            raise ValueError("LocalFolderTransport needs a file:// endpoint")
        self.endpoint = endpoint
        self.base = Path(url.path)
        self._moved: set[Path] = set()  # folders a move changed, fsynced once at close()

    def __enter__(self) -> LocalFolderTransport:
        self.open()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        if not self.base.is_dir():
            raise TransportError(f"drop folder {self.base} for {self.endpoint.party} does not exist",
                                  code="remote.missing", hint="create it or fix the file:// URL")

    def close(self) -> None:
        """Make the moves durable: each folder they changed is fsynced once, here, not at each move
        (nothing waits on a move's durability: the file moved was saved at our end before it moved,
        and one a crash puts back where it was is collected again, a duplicate)."""
        moved, self._moved = sorted(self._moved), set()
        for d in moved:
            fsync_dir(d)

    def _dir(self, folder: str) -> Path:
        return self.base / check_folder(folder) if folder else self.base

    def _oserror(self, what: str, exc: OSError) -> TransportError:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return TransportError(f"{what}: permission denied", code="remote.permission",
                                   hint="check the folder's permissions")
        if exc.errno == errno.ENOENT:
            return TransportError(f"{what}: {exc.filename or 'the file or folder'} does not exist",
                                  code="remote.missing", hint="check the folder in the file:// URL exists")
        return TransportError(f"{what}: {exc.strerror or exc}", code="remote.failure",
                               hint="the disk may be full or the folder not writable")

    def list(self, folder: str = "") -> Listing:
        out = Listing()
        try:
            entries = list(os.scandir(self._dir(folder)))
        except OSError as exc:
            raise self._oserror(f"listing {self.endpoint.party}", exc) from exc
        for e in entries:
            name = e.name
            if name.startswith(".") and name_problem(name) == "hidden or temporary name":
                continue
            problem = name_problem(name)
            st = e.stat(follow_symlinks=False)
            if problem is None and stat.S_ISLNK(st.st_mode):
                problem = "symbolic link"
            if problem is None and stat.S_ISDIR(st.st_mode):
                out.folders.append(name)
                continue
            if problem is None and not stat.S_ISREG(st.st_mode):
                problem = "not a regular file"
            if problem:
                out.skipped.append((safe_label(name), problem))
                continue
            out.files.append(RemoteFile(name, st.st_size, int(st.st_mtime)))
        out.files.sort(key=lambda f: f.name)
        out.folders.sort()
        return out

    def get_many(self, items: Sequence[GetItem], *, folder: str = "") -> GetResults:
        """Each file fetched and fsynced, and each local folder fsynced once, before any is reported saved."""
        out: _Fetched = []
        saved: GetResults = []
        try:
            for it in items:
                try:
                    out.append(self._fetch(it.name, it.local, folder=folder, sha256=it.sha256, progress=it.progress))
                except TransientTransportError:
                    self._publish(out)
                    self._sync({it.local.parent for it in items})
                    raise
                except TransportError as exc:
                    out.append(exc)
                if len(out) >= SINK_BATCH:
                    saved += self._publish(out)
        except BaseException:
            for s in out:
                if isinstance(s, LocalSink):
                    s.abort()
            raise
        saved += self._publish(out)
        self._sync({it.local.parent for it in items})
        return saved

    @staticmethod
    def _publish(fetched: _Fetched) -> GetResults:
        """Every fetched file made durable (the fsyncs issued together: `commit_sinks`) and put in place;
        `fetched` is emptied (nothing of it is left to abort)."""
        copy = [*fetched]
        del fetched[:]
        saved = iter(commit_sinks([s for s in copy if isinstance(s, LocalSink)]))
        return [next(saved) if isinstance(s, LocalSink) else s for s in copy]

    def put_many(self, items: Sequence[PutItem], *, folder: str = "") -> PutResults:
        """Each file uploaded and fsynced, and the folder fsynced once, before any is reported delivered.
        The files of a group (`PUT_GROUP`) are written, then fsynced together (`fsync_each`: the journal
        commits them at once), then each published: one fsync at a time cost a council's night a
        disk round trip per package."""
        if not items:
            return []
        d = self._dir(folder)
        out: PutResults = []
        try:
            for start in range(0, len(items), PUT_GROUP):
                staged: list[_Staged | TransportError] = []
                try:
                    for it in items[start:start + PUT_GROUP]:
                        try:
                            staged.append(self._stage(it.local, it.name, d, it.sha256, it.progress))
                        except TransientTransportError:
                            raise
                        except TransportError as exc:
                            staged.append(exc)
                    synced = iter(fsync_each([s.fd for s in staged if isinstance(s, _Staged)]))
                    for s in staged:
                        if not isinstance(s, _Staged):
                            out.append(s)
                            continue
                        failed = next(synced)
                        if failed is None:
                            try:
                                out.append(self._link(s))
                            except TransportError as exc:
                                out.append(exc)
                        elif isinstance(failed, OSError):
                            out.append(self._oserror(s.what, failed))
                        else:
                            raise failed
                finally:
                    for s in staged:
                        if isinstance(s, _Staged):
                            s.discard()
        finally:
            self._sync({d})
        return out

    @staticmethod
    def _sync(folders: set[Path]) -> None:
        for d in sorted(folders):
            fsync_dir(d)

    def put(self, local: Path, name: str, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> RemoteFile:
        d = self._dir(folder)
        s = self._stage(local, name, d, sha256, progress)
        try:
            try:
                os.fsync(s.fd)
            except OSError as exc:
                raise self._oserror(s.what, exc) from exc
            return self._link(s, sync_dir=True)
        finally:
            s.discard()

    def _stage(self, local: Path, name: str, d: Path, sha256: str | None, progress: Progress | None) -> _Staged:
        """`local` copied to a hidden temporary name in `d` and checked (hash, size); not yet fsynced
        or published, its descriptor left open for the fsync."""
        check_name(name)
        size = local.stat().st_size
        what = f"upload of {name} to {self.endpoint.party}"
        tmp = d / f".{name}{PART_MARKER}{os.urandom(6).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise self._oserror(what, exc) from exc
        staged = _Staged(name, tmp, d / name, fd, size, "", what)
        try:
            h = hashlib.sha256()
            with local.open("rb") as src:
                done = 0
                while data := src.read(CHUNK):
                    h.update(data)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    done += len(data)
                    if progress:
                        progress(done, size)
            if sha256 and h.hexdigest() != sha256.lower():
                raise TransportError(f"{local} does not match the expected SHA-256", code="verify.local-hash",
                                      hint="rebuild the package")
            if os.fstat(fd).st_size != size:
                raise TransientTransportError(f"{what}: size changed during copy", code="verify.size",
                                              hint="the file changed while it was copied; it will be retried")
            staged.digest = h.hexdigest()
        except BaseException as exc:
            staged.discard()
            if isinstance(exc, OSError):
                raise self._oserror(what, exc) from exc
            raise
        return staged

    def _link(self, s: _Staged, *, sync_dir: bool = False) -> RemoteFile:
        """Hard-link a staged, fsynced upload under its name (never over another file); the same
        file already there (a retry) is success."""
        try:
            try:
                os.link(s.tmp, s.final)
            except FileExistsError:
                st = s.final.lstat()
                if not (stat.S_ISREG(st.st_mode) and st.st_size == s.size and sha256_file(s.final) == s.digest):
                    raise TransportError(f"{s.name} already exists at {self.endpoint.party} with different content",
                                          code="remote.exists",
                                          hint="each package has a unique name; do not reuse names") from None
            if sync_dir:
                fsync_dir(s.final.parent)
        except OSError as exc:
            raise self._oserror(s.what, exc) from exc
        return RemoteFile(s.name, s.size)

    def get(self, name: str, local: Path, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> int:
        return self._get(name, local, folder=folder, sha256=sha256, progress=progress)

    def _get(self, name: str, local: Path, *, folder: str = "", sha256: str | None = None,
             progress: Progress | None = None, sync_dir: bool = True) -> int:
        sink = self._fetch(name, local, folder=folder, sha256=sha256, progress=progress)
        try:
            sink.sync()
            return sink.publish(sync_dir=sync_dir)
        except BaseException:
            sink.abort()
            raise

    def _fetch(self, name: str, local: Path, *, folder: str = "", sha256: str | None = None,
               progress: Progress | None = None) -> LocalSink:
        """The file copied into a verified `LocalSink` (size and hash checked), not yet durable or published."""
        check_name(name)
        src = self._dir(folder) / name
        what = f"download of {name} from {self.endpoint.party}"
        try:
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise TransportError(f"{what}: not a regular file", code="remote.not-regular",
                                     hint=_NOT_REGULAR_HINT) from exc
            raise self._oserror(what, exc) from exc
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise TransportError(f"{what}: not a regular file", code="remote.not-regular", hint=_NOT_REGULAR_HINT)
            sink = LocalSink(local, st.st_size, sha256, background=st.st_size >= BACKGROUND_BYTES)
            try:
                while data := fh.read(CHUNK):
                    sink.write(data)
                    if progress:
                        progress(sink.written, st.st_size)
                sink.verify()
                return sink
            except BaseException:
                sink.abort()
                raise

    def move(self, name: str, to_folder: str, *, folder: str = "") -> None:
        check_name(name)
        check_name(to_folder)
        src, dst_dir = self._dir(folder) / name, self._dir(folder) / to_folder
        try:
            dst_dir.mkdir(mode=0o700, exist_ok=True)
            target = dst_dir / name
            try:
                os.link(src, target, follow_symlinks=False)
            except FileExistsError:
                if not src.exists():
                    return
                digest = sha256_file(src)
                if sha256_file(target) != digest:  # a different file of the same name: keep both
                    aside = dst_dir / aside_name(name, digest)
                    try:
                        os.link(src, aside, follow_symlinks=False)
                    except FileExistsError:
                        if sha256_file(aside) != digest:
                            raise TransportError(f"{to_folder}/{aside.name} already exists at "
                                                  f"{self.endpoint.party}", code="remote.exists",
                                                  hint="remove the old copy") from None
            except FileNotFoundError:
                if (dst_dir / name).exists():
                    return
                raise
            src.unlink()
            self._moved |= {dst_dir, src.parent}
        except OSError as exc:
            raise self._oserror(f"moving {name} to {to_folder}/", exc) from exc

    def move_many(self, names: Sequence[str], to_folder: str, *, folder: str = "") -> DoneResults:
        """One after another: each move is a few system calls, with nothing to wait on to overlap
        (the folders' fsyncs are once, at `close`)."""
        return move_each(self, names, to_folder, folder)

    def delete_many(self, names: Sequence[str], *, folder: str = "") -> DoneResults:
        return delete_each(self, names, folder)

    def delete(self, name: str, *, folder: str = "") -> None:
        check_name(name)
        try:
            (self._dir(folder) / name).unlink(missing_ok=True)
        except OSError as exc:
            raise self._oserror(f"deleting {name}", exc) from exc

    def probe(self, folder: str = "") -> int | None:
        d = self._dir(folder)
        path = d / probe_name()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, PROBE_BYTES)
                mtime = os.fstat(fd).st_mtime
            finally:
                os.close(fd)
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._oserror(f"writing a test file into {self.endpoint.party}'s folder {d}", exc) from exc
        return int(mtime)


#: How many uploads `put_many` writes before fsyncing them together.
PUT_GROUP = 32


@dataclass
class _Staged:
    """An upload written to its hidden temporary name and checked, its descriptor open until `discard`."""

    name: str
    tmp: Path
    final: Path
    fd: int
    size: int
    digest: str
    what: str
    closed: bool = False

    def discard(self) -> None:
        """Close the descriptor and remove the temporary name (the published name, a hard link, stays)."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                os.close(self.fd)
        with contextlib.suppress(OSError):
            self.tmp.unlink()
