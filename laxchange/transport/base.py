"""The transport contract every backend (SFTP, local folder) satisfies.

A transport moves whole files between this party and one partner's drop folder. The rules that
make delivery safe live here so every backend enforces the same ones: names are single, plain
path components (a hostile server cannot steer a download outside the inbox), a file appears
under its final name only when complete, and sizes and hashes are checked after each copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

from laxchange._util.fs import BackgroundSha256, BackgroundWriteback, fsync_each
from laxchange._util.fs import fsync_dir as fsync_dir  # re-exported: local, ops and sftp import them from here
from laxchange._util.fs import sha256_file as sha256_file
from laxchange.errors import TransientTransportError, TransportError

#: progress(bytes_done, bytes_total): called from the transferring thread.
Progress = Callable[[int, int], None]

#: Prefix and marker of temporary upload names; such files are hidden from listings.
PART_MARKER = ".part-"
#: What `Transport.probe` writes (and removes at once): a hidden name with the temporary-upload
#: marker, so no listing shows it, no collect takes it, and a copy left by a dropped link is
#: cleaned up like any upload that died.
PROBE_PREFIX = ".laxchange-probe"
PROBE_BYTES = b"laxchange doctor: a test that this folder is writable; safe to delete\n"


def probe_name() -> str:
    return f"{PROBE_PREFIX}{PART_MARKER}{os.urandom(6).hex()}"


#: Leaves room for the local temporary name `.NAME.part-<12 hex>` within the usual 255-byte limit.
MAX_NAME_LEN = 200
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(name: str) -> str | None:
    """Why `name` is not a safe remote file name, or None when it is."""
    if not name:
        return "empty name"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_LEN:
        return "name too long"
    if name in (".", ".."):
        return "relative path component"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    # ASCII (every name laxchange itself writes): Cc is exactly 0-31 and 127, and ASCII has no Cf or Cs, so a
    # compiled search says what the per-character check says, without a call per character
    if _ASCII_CONTROL.search(name) if name.isascii() else any(unicodedata.category(c) in ("Cc", "Cf", "Cs")
                                                               for c in name):
        return "contains control or format characters"
    if name.startswith("."):
        return "hidden or temporary name"
    if ".." in name:
        return "contains '..'"
    return None


#: A party id as cards spell it (the same pattern as laxchange.trust.keystore.PARTY_RE; a test
#: keeps them equal: the transport layer may not import trust).
PARTY_ID_RE = re.compile(r"(LA:[0-9]{3}|URN:[0-9]{6})")
_SENDER_FOLDER_RE = re.compile(r"(LA_[0-9]{3}|URN_[0-9]{6})")


def sender_folder(party: str) -> str:
    """The sub-folder of a drop folder that holds what `party` sent: `LA:919` -> `LA_919`
    (':' is awkward in paths on some systems)."""
    if not PARTY_ID_RE.fullmatch(party):
        raise ValueError(f"not a party id: {party!r}")
    return party.replace(":", "_")


def folder_sender(name: str) -> str | None:
    """The party whose sub-folder `name` is (`URN_123456` -> `URN:123456`), or None."""
    return name.replace("_", ":", 1) if _SENDER_FOLDER_RE.fullmatch(name) else None


def safe_label(name: str, limit: int = 60) -> str:
    """A printable, bounded rendering of an untrusted name for warnings and logs."""
    text = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


def aside_name(name: str, sha256: str) -> str:
    """Where a file goes when `name` is already taken by different bytes: `pep.lax` ->
    `pep-<first 12 hex of its SHA-256>.lax`. Derived from the content, so a retry picks the same name."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = f"-{sha256[:12]}" + (f".{ext}" if ext else "")
    room = MAX_NAME_LEN - len(suffix.encode("utf-8"))
    while len(stem.encode("utf-8", "surrogatepass")) > room:
        stem = stem[:-1]
    return stem + suffix


def check_name(name: str) -> str:
    """Return `name` if it is a safe single path component, else raise TransportError."""
    problem = name_problem(name)
    if problem:
        raise TransportError(f"refusing remote file name {safe_label(name)!r}: {problem}", code="name.invalid",
                              hint="file names must be plain names without '/', '..', control characters "
                                   "or a leading dot")
    return name


@dataclass(frozen=True)
class RemoteFile:
    """One regular file in a remote folder."""

    name: str
    size: int
    mtime: int | None = None


@dataclass
class Listing:
    """Files that passed the name and type checks, and what was skipped and why."""

    files: list[RemoteFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: sub-folders with safe names (not symbolic links), e.g. each sender's folder and processed/
    folders: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return [f.name for f in self.files]


#: `put_many`'s answer: per file, what `put` returns or the permanent error it raises (an alias:
#: `list` is a method name in the transport classes)
PutResults = list[RemoteFile | TransportError]


@dataclass(frozen=True)
class PutItem:
    """One file for `Transport.put_many`: the local file, its remote name, and optionally its
    expected SHA-256 and a progress callback (as for `put`)."""

    local: Path
    name: str
    sha256: str | None = None
    progress: Progress | None = None


#: `get_many`'s answer: per file, its size or the permanent error `get` would raise
GetResults = list[int | TransportError]

#: `move_many`'s and `delete_many`'s answer: per file, None (done) or the permanent error `move` or
#: `delete` would raise
DoneResults = list[TransportError | None]


@dataclass(frozen=True)
class GetItem:
    """One file for `Transport.get_many`: its remote name, the local path, as for `get`."""

    name: str
    local: Path
    sha256: str | None = None
    progress: Progress | None = None


class Transport(Protocol):
    """One open connection to one partner's drop folder. Folders are single names below the base."""

    def __enter__(self) -> Transport: ...

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def open(self) -> None:
        """Connect (idempotent)."""

    def close(self) -> None:
        """Disconnect (idempotent)."""

    def list(self, folder: str = "") -> Listing:
        """Regular, validly named, non-hidden files in `folder`."""

    def put(self, local: Path, name: str, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> RemoteFile:
        """Upload atomically. If `name` already holds the same bytes this is a no-op (retries are safe)."""

    def put_many(self, items: Sequence[PutItem], *, folder: str = "") -> PutResults:
        """`put` each item, in any order or overlapped; one result per item, in order: what `put`
        would return, or the permanent TransportError it would raise. A transient failure (the
        link) is raised for the whole call, which is then safe to repeat."""

    def get(self, name: str, local: Path, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> int:
        """Download to `local` via an fsync'd temporary file and rename; return the size."""

    def get_many(self, items: Sequence[GetItem], *, folder: str = "") -> GetResults:
        """`get` each item, possibly overlapped; one result per item, in order, as for `put_many`."""

    def move(self, name: str, to_folder: str, *, folder: str = "") -> None:
        """Move a file from `folder` into its sub-folder `to_folder` (created if missing), never
        overwriting: `move("a.lax", "processed", folder="LA_919")` -> `LA_919/processed/a.lax`.

        If `to_folder` already holds `name`: with the same bytes the move is done (the source is
        removed); with different bytes the file goes beside it as `aside_name(name, its SHA-256)`.
        A move that already happened (the source is gone, the target there) is not an error."""

    def move_many(self, names: Sequence[str], to_folder: str, *, folder: str = "") -> DoneResults:
        """`move` each file, possibly overlapped; one result per name, in order: None once moved, or
        the permanent TransportError `move` would raise for it. A transient failure is raised for the
        whole call, which is then safe to repeat (a file already moved is found done)."""

    def delete(self, name: str, *, folder: str = "") -> None:
        """Remove a file; a file already gone is not an error (retries are safe)."""

    def delete_many(self, names: Sequence[str], *, folder: str = "") -> DoneResults:
        """`delete` each file, possibly overlapped; one result per name, as for `move_many`."""

    def probe(self, folder: str = "") -> int | None:
        """Create a hidden file in `folder` and remove it again: proof that we may write there
        (`laxchange doctor`). Returns its modification time as the server saw it (seconds since
        the epoch), for comparing the server's clock with ours; None if the server gave none."""


def put_each(t: Transport, items: Sequence[PutItem], folder: str = "") -> PutResults:
    """`put_many` one file after another: for backends with nothing to overlap."""
    out: PutResults = []
    for it in items:
        try:
            out.append(t.put(it.local, it.name, folder=folder, sha256=it.sha256, progress=it.progress))
        except TransientTransportError:
            raise
        except TransportError as exc:
            out.append(exc)
    return out


def get_each(t: Transport, items: Sequence[GetItem], folder: str = "") -> GetResults:
    """`get_many` one file after another."""
    out: GetResults = []
    for it in items:
        try:
            out.append(t.get(it.name, it.local, folder=folder, sha256=it.sha256, progress=it.progress))
        except TransientTransportError:
            raise
        except TransportError as exc:
            out.append(exc)
    return out


def move_each(t: Transport, names: Sequence[str], to_folder: str, folder: str = "") -> DoneResults:
    """`move_many` one file after another."""
    return _each(names, lambda name: t.move(name, to_folder, folder=folder))


def delete_each(t: Transport, names: Sequence[str], folder: str = "") -> DoneResults:
    """`delete_many` one file after another."""
    return _each(names, lambda name: t.delete(name, folder=folder))


def _each(names: Sequence[str], op: Callable[[str], None]) -> DoneResults:
    out: DoneResults = []
    for name in names:
        try:
            op(name)
        except TransientTransportError:
            raise
        except TransportError as exc:
            out.append(exc)
        else:
            out.append(None)
    return out


def check_folder(folder: str) -> str:
    """Folders are "" (the base) or one safe name such as "processed"."""
    return folder if folder == "" else check_name(folder)


def local_temp_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}{PART_MARKER}{os.urandom(6).hex()}")


#: A download expected to be at least this large is hashed (if a digest is to be checked) and
#: written back to disk on threads of their own beside the reads (`LocalSink(background=True)`).
BACKGROUND_BYTES = 16 * 1024 * 1024


class LocalSink:
    """Writes a download to a temporary file next to `dest`, hashing it if `sha256` is given.

    `commit()` checks size and hash, fsyncs, and renames into place (refusing to overwrite);
    `abort()` removes the temporary file. The final name is never seen half-written. With no
    `sha256` nothing is hashed as it arrives (nothing to compare it with): only if `dest`
    already exists is the saved file hashed, from disk, to compare with it.

    `background=True` (a large download; `write`'s data must then never change afterwards):
    the hash is taken on a thread of its own, and the file written back to disk as it grows
    (`BackgroundWriteback`), so neither the hashing nor the final fsync holds up the reads.
    """

    def __init__(self, dest: Path, expected_size: int, sha256: str | None, *, background: bool = False) -> None:
        self.dest = dest
        self.expected_size = expected_size
        self.sha256 = sha256.lower() if sha256 else None
        self.tmp = local_temp_path(dest)
        self.written = 0
        self._digest: str | None = None
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise TransportError(f"cannot create a file in {dest.parent}: {exc.strerror}", code="local.io",
                                  hint="check the local inbox exists and is writable") from exc
        self.fh: BinaryIO = os.fdopen(fd, "wb")
        self._hash: hashlib._Hash | BackgroundSha256 | None = None
        if self.sha256:
            self._hash = BackgroundSha256() if background else hashlib.sha256()
        self._writeback = BackgroundWriteback(fd) if background else None

    def write(self, data: bytes) -> int:
        try:
            self.fh.write(data)
        except OSError as exc:  # our disk, not the server's: say so
            raise TransportError(f"cannot write {self.dest.name} into {self.dest.parent}: {exc.strerror}",
                                  code="local.io", hint="check free space and permissions of the local inbox") from exc
        self.written += len(data)
        if self._hash is not None:
            self._hash.update(data)
        if self._writeback is not None:
            self._writeback.wrote(self.written)
        return len(data)

    def _settle(self) -> OSError | None:
        """Stop the helper threads (the descriptor outlives them); the error of a background fdatasync."""
        wb, self._writeback = self._writeback, None
        if isinstance(self._hash, BackgroundSha256):
            self._hash.close()
        return wb.close() if wb is not None else None

    def commit(self, *, sync_dir: bool = True) -> int:
        """`sync_dir=False` leaves the folder's fsync to the caller, who must do it before
        reporting the file saved (`get_many` does it once for all the files it fetched)."""
        self.verify()
        self.sync()
        return self.publish(sync_dir=sync_dir)

    def verify(self) -> None:
        """Flush, and check the size and hash (the file stays open and unpublished)."""
        try:
            failed = self._settle()
            if failed is not None:
                raise failed
            self.fh.flush()
        except OSError as exc:
            raise self._save_error(exc) from exc
        if self.written != self.expected_size:
            raise TransientTransportError(
                f"download of {self.dest.name} is {self.written} bytes, the server said {self.expected_size}",
                code="verify.size", hint="the connection may have dropped; try again")
        if self._hash is not None:
            self._digest = self._hash.hexdigest()
        if self.sha256 and self._digest != self.sha256:
            raise TransportError(f"download of {self.dest.name} does not match its SHA-256",
                                  code="verify.hash", hint="the remote file is corrupt or was replaced; "
                                                           "ask the sender to send it again")

    def sync(self) -> None:
        try:
            os.fsync(self.fh.fileno())
        except OSError as exc:
            raise self._save_error(exc) from exc

    def _save_error(self, exc: OSError) -> TransportError:
        return TransportError(f"cannot save {self.dest.name} into {self.dest.parent}: {exc.strerror}",
                              code="local.io", hint="check free space and permissions of the local inbox")

    def publish(self, *, sync_dir: bool = True) -> int:
        """Once verified and durable (`verify`, then `sync` or `commit_sinks`): the final name, never over
        a different file."""
        try:
            self.fh.close()
        except OSError as exc:
            raise self._save_error(exc) from exc
        try:
            os.link(self.tmp, self.dest)
        except FileExistsError:
            if sha256_file(self.dest) != (self._digest or sha256_file(self.tmp)):
                raise TransportError(f"{self.dest} already exists with different content",
                                      code="local.exists", hint="move the existing file away first") from None
        self.tmp.unlink()
        if sync_dir:
            fsync_dir(self.dest.parent)
        return self.written

    def abort(self) -> None:
        self._settle()
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


#: At most this many downloads are kept open, verified, before `commit_sinks` makes them durable
#: together (a caller may ask for thousands of files in one `get_many`: one descriptor each).
SINK_BATCH = 64


def commit_sinks(sinks: Sequence[LocalSink]) -> list[int | TransportError]:
    """Publish verified sinks (`LocalSink.verify`) with their fsyncs issued at once (`fsync_each`),
    not one after another: each is durable before its final name appears, as with `commit`. The
    folders are not fsynced (the caller does that once). A sink whose fsync failed is aborted and
    its error returned in its place: never fsynced again, since after a failed fsync Linux reports
    the lost writeback once and a second fsync of the file succeeds with the data gone (fsync(2),
    "fsyncgate"). Interrupted, every sink not yet published is aborted (no temporary file left)."""
    done: list[int | TransportError] = []
    try:
        synced = fsync_each([s.fh.fileno() for s in sinks])
        for s, failed in zip(sinks, synced, strict=True):
            try:
                if failed is not None:
                    raise s._save_error(failed) if isinstance(failed, OSError) else failed
                done.append(s.publish(sync_dir=False))
            except TransportError as exc:
                s.abort()
                done.append(exc)
    except BaseException:
        for s in sinks[len(done):]:
            s.abort()
        raise
    return done
