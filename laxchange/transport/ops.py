"""Send and collect: the library calls behind `laxchange send` and `laxchange collect`.

One connection per partner per run (a RetryingTransport that reconnects only after a transient
failure), several partners in parallel with a small bound. A collected file is moved to
processed/ (or deleted) on the server only after the local copy is fsync'd and renamed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from laxchange._util.threads import thread_pool
from laxchange.errors import InternalError, LaxError, TransientTransportError, TransportError
from laxchange.home import Home
from laxchange.passphrase import PassphraseSource
from laxchange.transport.base import (
    PART_MARKER,
    GetItem,
    Listing,
    Progress,
    PutItem,
    RemoteFile,
    Transport,
    aside_name,
    check_name,
    folder_sender,
    sha256_file,
)
from laxchange.transport.endpoints import Endpoint, EndpointResolver
from laxchange.transport.identity import IdentityLoader, identity_loader
from laxchange.transport.local import LocalFolderTransport
from laxchange.transport.openssh import OpenSshTransport
from laxchange.transport.parts import PartJournal
from laxchange.transport.retry import OnRetry, RetryingTransport, RetryPolicy
from laxchange.transport.sftp import LinkShare, SftpSettings, SftpTransport

T = TypeVar("T")
TransportFactory = Callable[[Endpoint], Transport]
#: progress(party, file name, bytes done, bytes total)
PartyProgress = Callable[[str, str, int, int], None]

PROCESSED = "processed"
MAX_PARALLEL = 4
#: files handed to one `put_many` or `get_many`: overlapped on the wire, and what a reconnect repeats
SEND_BATCH = 64


def part_journal(home: Home) -> PartJournal:
    """The logs of the temporary files this home's uploads make (`transport.parts`)."""
    return PartJournal(home.root / "cache" / "sftp-parts")


def transport_factory(home: Home, passphrase: PassphraseSource,
                      settings: SftpSettings | None = None) -> TransportFactory:
    """Build the transport an endpoint's URL asks for, with this home's SSH identity."""

    loaders: dict[Path, IdentityLoader] = {}
    lock = threading.Lock()
    parts = part_journal(home)  # what our uploads may leave: removed by name

    def make(endpoint: Endpoint) -> Transport:
        url = endpoint.parsed
        if url.scheme == "file":
            return LocalFolderTransport(endpoint)
        key = endpoint.identity or home.ssh_client_key
        # During an SSH key rotation's overlap (`keys rotate --ssh`) the previous key is tried too.
        prev = home.ssh_client_key.with_name(home.ssh_client_key.name + ".previous")
        with lock:  # one unlocked key per run, however many partners and reconnects
            loader = loaders.setdefault(key, identity_loader(key, passphrase))
            fallback = loaders.setdefault(prev, identity_loader(prev, passphrase)) \
                if endpoint.identity is None and prev.exists() else None
        return sftp_class(endpoint, settings)(endpoint, loader, settings, previous_identity=fallback, parts=parts)

    return make


def sharing(factory: TransportFactory, links: LinkShare) -> TransportFactory:
    """`factory`, its SFTP transports taking their connections from `links` (`LinkShare`), so
    endpoints on one server under one login share one SSH connection. For transports used one
    at a time only (the nightly run's)."""

    def make(endpoint: Endpoint) -> Transport:
        t = factory(endpoint)
        if isinstance(t, SftpTransport):
            t.share(links)
        return t

    return make


def sftp_class(endpoint: Endpoint, settings: SftpSettings | None = None) -> type[SftpTransport]:
    """The SFTP backend for `endpoint`: its own choice, else the settings' (paramiko by default)."""
    backend = endpoint.backend or (settings or SftpSettings()).backend
    return OpenSshTransport if backend == "openssh" else SftpTransport


def check_endpoint(endpoint: Endpoint, settings: SftpSettings | None = None) -> str | None:
    """Can we reach `endpoint`, and does it show its pinned host key? (`laxchange doctor`)

    SFTP: connect, check the host key, and disconnect without authenticating, so no passphrase is
    needed and the server sees nothing of ours; returns the host key's fingerprint. A file://
    folder: it exists; returns None. Raises TransportError (transient for a server that is down)."""
    if endpoint.parsed.scheme == "file":
        LocalFolderTransport(endpoint).open()
        return None
    return sftp_class(endpoint, settings)(endpoint, _no_identity, settings).verify_host()


def _no_identity() -> NoReturn:
    raise InternalError("check_endpoint never authenticates", code="internal.error")


@dataclass
class Runner:
    """How to reach partners: resolver, transport factory, retry policy and injectable time."""

    resolver: EndpointResolver
    factory: TransportFactory
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    on_retry: Callable[[str, int, TransportError, float], None] | None = None
    max_parallel: int = MAX_PARALLEL

    def connect(self, party: str) -> RetryingTransport:
        endpoint = self.resolver.resolve(party)
        hook: OnRetry | None = None
        if self.on_retry is not None:
            cb = self.on_retry

            def hook(n: int, exc: TransportError, delay: float) -> None:
                cb(party, n, exc, delay)

        return RetryingTransport(lambda: self.factory(endpoint), self.policy, sleep=self.sleep,
                                 rng=self.rng, on_retry=hook)

    def each_party(self, parties: Iterable[str], work: Callable[[str], T]) -> dict[str, T | LaxError]:
        """Run `work` for each party, at most `max_parallel` at once; errors are returned per party."""
        parties = list(dict.fromkeys(parties))

        def guarded(party: str) -> T | LaxError:
            try:
                return work(party)
            except LaxError as exc:
                return exc
            except Exception as exc:  # one partner's surprise must not abort the others' transfers
                return InternalError(f"{party}: unexpected failure: {type(exc).__name__}: {exc}",
                                     hint="other partners were processed; this is a bug in laxchange, please "
                                          "report it with this message")

        if len(parties) <= 1:
            return {p: guarded(p) for p in parties}
        with thread_pool(min(self.max_parallel, len(parties))) as pool:
            return dict(zip(parties, pool.map(guarded, parties), strict=False))


@dataclass
class FileResult:
    name: str
    size: int = 0
    sha256: str | None = None
    error: LaxError | None = None
    #: for a collected file: the sub-folder of the drop folder it came from ("" for the top)
    folder: str = ""
    #: ... and the party whose sub-folder that is (whose login alone can write there)
    sender: str | None = None
    #: for a sent file uploaded under another name: the local file's name; for a collected file
    #: saved under another name (the inbox already held different bytes of that name): the inbox name
    local: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "size": self.size, "ok": self.error is None}
        if self.sha256:
            out["sha256"] = self.sha256
        if self.folder:
            out["folder"] = self.folder
        if self.sender:
            out["sender_folder_of"] = self.sender
        if self.local:
            out["local"] = self.local
        if self.error:
            out["error"] = self.error.to_dict()
        return out


@dataclass
class PartyResult:
    party: str
    files: list[FileResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: LaxError | None = None
    #: the server accepted only our previous SSH key (`RetryingTransport.used_previous_identity`); carried
    #: here so a collection in a child process (`exchange.background`) tells the run
    used_previous_identity: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and all(f.error is None for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"party": self.party, "ok": self.ok, "files": [f.to_dict() for f in self.files],
                               "warnings": self.warnings}
        if self.error:
            out["error"] = self.error.to_dict()
        if self.used_previous_identity:
            out["used_previous_ssh_key"] = True
        return out

    def first_error(self) -> LaxError | None:
        """The party-level error, else the first file's, else None."""
        return self.error or next((f.error for f in self.files if f.error is not None), None)


def _bind(progress: PartyProgress | None, party: str, name: str) -> Progress | None:
    if progress is None:
        return None
    cb = progress

    def inner(done: int, total: int) -> None:
        cb(party, name, done, total)

    return inner


def send(runner: Runner, party: str, files: list[Path], *, hashes: dict[Path, str] | None = None,
         names: dict[Path, str] | None = None, progress: PartyProgress | None = None,
         on_batch: Callable[[list[FileResult]], None] | None = None) -> PartyResult:
    """Deliver files to one partner over one connection; a failure on one file does not stop the rest.

    Each file is uploaded under `names[file]` if given (a package under `<transfer id>.lax`, so
    two senders' or two runs' files cannot collide), else under its own name. `on_batch` is told
    each batch's results once they are final (published on the server, or failed), so a caller
    can record them before the next batch: a send stopped part-way then has its finished batches
    on record, and the next run does not upload them again."""
    result = PartyResult(party)
    remote = {f: (names or {}).get(f, f.name) for f in files}
    for f in files:
        check_name(remote[f])
    digests = {f: (hashes or {}).get(f) or sha256_file(f) for f in files}
    conn = runner.connect(party)
    try:
        with conn as t:
            for at in range(0, len(files), SEND_BATCH):
                batch = files[at:at + SEND_BATCH]
                done = t.put_many([PutItem(f, remote[f], digests[f], _bind(progress, party, remote[f]))
                                   for f in batch])
                told = len(result.files)
                for f, rf in zip(batch, done, strict=True):
                    local = f.name if remote[f] != f.name else None
                    if isinstance(rf, TransportError):
                        result.files.append(FileResult(remote[f], error=rf, local=local))
                    else:
                        result.files.append(FileResult(remote[f], rf.size, digests[f], local=local))
                if on_batch is not None:
                    on_batch(result.files[told:])
    except TransportError as exc:
        result.error = exc
    result.used_previous_identity = conn.used_previous_identity
    return result


def collect(runner: Runner, party: str, inbox: Path, *, delete: bool = False,
            progress: PartyProgress | None = None,
            on_batch: Callable[[list[FileResult]], None] | None = None) -> PartyResult:
    """Fetch every file left for us at a partner's endpoint, or in our own drop folder, into
    `inbox`, then move it to processed/ (or delete it) where it was.

    Files at the top of the folder are collected, then those in each sender's sub-folder
    (`LA_919/`, `URN_123456/`: how `serve-sftp` and a ChrootDirectory set-up lay out a drop
    folder), each moved to that sub-folder's own processed/. Each result says which sub-folder
    (and so which sender's login) a file came from. `on_batch` is told each batch's results as
    soon as they are final (its files durable in the inbox, and moved on the server or not), so a
    caller can import them while the rest are fetched (`exchange.background`).
    """
    result = PartyResult(party)
    inbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = inbox.resolve()
    conn = runner.connect(party)
    try:
        with conn as t:
            listing = t.list()
            _collect_folder(t, result, party, "", listing, root, delete, progress, on_batch)
            for sub in listing.folders:
                if folder_sender(sub) is not None:
                    _collect_folder(t, result, party, sub, t.list(sub), root, delete, progress, on_batch)
    except TransportError as exc:
        result.error = exc
    result.used_previous_identity = conn.used_previous_identity
    return result


def _collect_folder(t: Transport, result: PartyResult, party: str, folder: str, listing: Listing, root: Path,
                    delete: bool, progress: PartyProgress | None,
                    on_batch: Callable[[list[FileResult]], None] | None = None) -> None:
    where = f"{party} ({folder}/)" if folder else party
    # an entry's name is its sender's choice, and may name the child: said by what is wrong, not by name
    for _label, why in listing.skipped:
        result.warnings.append(f"skipped remote entry in {where}: {why}; it stays there, never collected "
                               "(its name is not shown)")
    wanted: list[tuple[RemoteFile, Path]] = []
    for rf in listing.files:
        dest = (root / check_name(rf.name))
        if dest.parent != root:
            result.warnings.append(f"skipped remote entry in {where}: its name resolves outside the inbox; it stays "
                                   "there, never collected (its name is not shown)")
            continue
        wanted.append((rf, dest))
    for at in range(0, len(wanted), SEND_BATCH):
        batch = wanted[at:at + SEND_BATCH]
        got = t.get_many([GetItem(rf.name, dest, progress=_bind(progress, party, rf.name)) for rf, dest in batch],
                         folder=folder)
        files: list[FileResult] = []
        for (rf, dest), res in zip(batch, got, strict=True):
            try:
                if isinstance(res, TransportError):
                    if res.code != "local.exists":
                        raise res
                    # The inbox holds different bytes of this name (two senders' `pep.lax`): keep both.
                    dest = root / aside_name(rf.name, _remote_digest(t, rf.name, folder, root))
                    res = t.get(rf.name, dest, folder=folder, progress=_bind(progress, party, rf.name))
                files.append(FileResult(rf.name, res, folder=folder, sender=folder_sender(folder),
                                        local=dest.name if dest.name != rf.name else None))
            except TransientTransportError:
                raise
            except TransportError as exc:
                files.append(FileResult(rf.name, error=exc, folder=folder, sender=folder_sender(folder)))
        # Only now, with the local copies fsync'd and renamed into place, is the server's touched:
        # the batch's moves (or removals) together, overlapped on the wire.
        fetched = [f for f in files if f.error is None]
        names = [f.name for f in fetched]
        try:
            moved = t.delete_many(names, folder=folder) if delete else t.move_many(names, PROCESSED, folder=folder)
        except TransientTransportError:
            # Which of the batch left the server is not known, but each is durable in the inbox:
            # reported fetched (the audit log's `collect.fetched`, the import's sender folder), not
            # dropped; one still there is fetched (the same bytes) and moved next time.
            result.files.extend(files)
            if on_batch is not None:
                on_batch(files)
            raise
        for f, err in zip(fetched, moved, strict=True):
            if err is not None:
                f.size, f.local, f.error = 0, None, err
        result.files.extend(files)
        if on_batch is not None:
            on_batch(files)


def _remote_digest(t: Transport, name: str, folder: str, root: Path) -> str:
    """The SHA-256 of a remote file, read through a temporary download next to the inbox."""
    tmp = root / f".{name}{PART_MARKER}digest"
    tmp.unlink(missing_ok=True)
    try:
        t.get(name, tmp, folder=folder)
        return sha256_file(tmp)
    finally:
        tmp.unlink(missing_ok=True)
