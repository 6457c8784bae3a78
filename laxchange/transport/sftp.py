"""SFTP transport over paramiko: pinned host key, key auth, bounded timeouts, atomic uploads.

paramiko is driven by hand (Transport, not SSHClient) so that the host key is checked before
authentication and every phase has a timeout. Throughput comes from a large SSH window,
pipelined 255 KiB writes and prefetched reads (paramiko's 32 KiB requests are the main reason
its defaults are slow), a receive buffer that does not copy on every read, and small files
overlapped across files (`put_many`, `get_many`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import re
import socket
import stat
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Generic, Protocol, TypeVar

import paramiko
from paramiko.buffered_pipe import BufferedPipe
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_EXTENDED,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_LSTAT,
    CMD_OPEN,
    CMD_READ,
    CMD_REMOVE,
    CMD_RENAME,
    CMD_STATUS,
    CMD_WRITE,
    SFTP_EOF,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_READ,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTPError,
    int64,
)

from laxchange._util.fs import BackgroundSha256
from laxchange.errors import ConfigError, LaxError, TransientTransportError, TransportError
from laxchange.logs import log_event
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
    get_each,
    move_each,
    name_problem,
    probe_name,
    put_each,
    safe_label,
    sha256_file,
)
from laxchange.transport.endpoints import Endpoint
from laxchange.transport.hostkeys import verify_host_key
from laxchange.transport.identity import IdentityLoader
from laxchange.transport.parts import PartJournal, PartLog

#: OpenSSH's sftp-server accepts up to 256 KiB messages; this leaves room for the header.
CHUNK = 255 * 1024


@dataclass(frozen=True)
class SftpSettings:
    """Timeouts (seconds) apply to each phase: TCP connect, banner, key exchange, auth,
    channel open, and any single read or write that stalls."""

    timeout: float = 15.0
    keepalive: int = 10
    window_size: int = 64 * 1024 * 1024
    max_packet_size: int = 256 * 1024
    chunk_size: int = CHUNK
    prefetch_requests: int = 32
    #: temporary upload files older than this (seconds) are debris of a failed upload
    stale_part_age: float = 600.0
    #: refuse to download a file larger than this: a hostile or broken server cannot fill the disk
    max_file_bytes: int = 4 * 1024**3
    #: a transfer slower than this (bytes/s, after `timeout` of grace) is abandoned: no trickling forever
    min_rate: float = 32 * 1024
    #: an upload larger than this first looks whether the name already holds the file (a retry
    #: after a lost reply), rather than send it again to find out when the rename is refused
    look_first_bytes: int = 1024 * 1024
    #: small files `put_many` keeps in flight at once (each at most `look_first_bytes`, in memory)
    pipeline_files: int = 16
    #: the SSH client for endpoints that name none: "paramiko" (in-process) or "openssh" (`ssh`)
    backend: str = "paramiko"
    ciphers: tuple[str, ...] = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")


_LOST_HINT = ("the connection dropped; it was retried. Run the command again: a file already delivered or "
              "collected is not transferred twice")
_NO_SFTP_HINT = "the server must offer the SFTP subsystem to this login; ask the partner to check its set-up"
_SHORT_HINT = "the file shrank or the connection dropped while it was read; it will be retried"
_PROTOCOL_HINT = "the server answered something laxchange did not expect; if it persists, report it to the partner"

#: exceptions that mean the connection itself is gone or stalled
_LINK_FAILURES = (socket.timeout, TimeoutError, EOFError, ConnectionError, paramiko.SSHException)

#: OPEN flags of an upload's temporary file: create it, and fail if the name exists
_CREATE_EXCL = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC | SFTP_FLAG_EXCL
_REQUEST_NAMES = {CMD_OPEN: "open", CMD_WRITE: "write", CMD_CLOSE: "close", CMD_RENAME: "rename", CMD_READ: "read",
                  CMD_LSTAT: "lstat", CMD_FSTAT: "fstat", CMD_REMOVE: "remove"}
#: the OpenSSH extension `posix-rename` (rename(2), which replaces a target: checked absent first)
_POSIX_RENAME = "posix-rename@openssh.com"

#: put_many's results so far (None: not yet published), and its small files: (index, contents)
_Results = list[RemoteFile | TransportError | None]
_Small = list[tuple[int, bytes]]
#: get_many's results so far (None: not yet fetched)
_Fetched = list[int | TransportError | None]

#: final name -> temporary files left for it (a type alias: `list` is a method name below)
_PartIndex = dict[str, list[str]]

#: what `_Pipeline.run` starts a file from: put_many's (index, bytes), get_many's index
_T = TypeVar("_T")
_log = logging.getLogger(__name__)
#: an upload's temporary name (`_new_part`): `.NAME.part-` and 48 random bits in hex
_PART_NAME = re.compile(r"\.[^/]+" + re.escape(PART_MARKER) + r"[0-9a-f]{12}")


class _ReceiveBuffer(BufferedPipe):  # type: ignore[type-arg]  # generic in the stubs only
    """paramiko's channel receive buffer on a bytearray instead of an `array('B')`.

    BufferedPipe trims what it hands out from the front of its array, which moves everything
    still buffered on every read (5 ms to trim 32 KiB off 64 MiB here); a bytearray drops its
    front without moving the rest (0.1 us). Same locking, same interface: only the storage
    helpers are replaced (private paramiko API; see the pin in pyproject.toml). Bulk downloads
    went from 0.43x to 0.96x OpenSSH (median of 7 pairs; docs/benchmarks-history.md).
    """

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()  # private paramiko attribute (see the pin)

    def _buffer_frombytes(self, data: bytes) -> None:
        self._buffer += data

    def _buffer_tobytes(self, limit: int | None = None) -> bytes:
        with memoryview(self._buffer) as view, view[:limit] as part:
            return bytes(part)


class SftpLink(Protocol):
    """What the SFTP request logic needs from a connection, whichever SSH client made it: the
    SFTP client over it, whether it still lives, and how to end it. Only setting up a link
    differs between backends (paramiko here, the system's OpenSSH client in `openssh`)."""

    sftp: paramiko.SFTPClient

    def alive(self) -> bool: ...

    def close(self) -> None: ...


@dataclass
class _ParamikoLink:
    """An SFTP session on a paramiko channel."""

    ssh: paramiko.Transport
    sftp: paramiko.SFTPClient

    def alive(self) -> bool:
        # paramiko raises a bare OSError from a write on a channel that died a moment ago, while its
        # transport thread may not yet have marked the link inactive: the channel's flags tell at once
        chan = self.sftp.get_channel()
        return self.ssh.is_active() and chan is not None and not chan.closed and not chan.eof_received

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead link must not mask the real error
            self.sftp.close()
        self.ssh.close()


class _Sink(Protocol):
    written: int

    def write(self, data: bytes) -> int: ...


class _HashSink:
    """Hashes what a read returns, to compare a remote file with a local one."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.written += len(data)
        return len(data)


def _send_write(sftp: paramiko.SFTPClient, collector: type, handle: bytes, offset: int, data: bytes) -> int:
    """Send one SFTP WRITE (its reply goes to `collector`): the header, then `data` unchanged.

    The numbering and bookkeeping are paramiko's own `_async_request`'s (private API; see the
    pin in pyproject.toml); only the packing differs, to spare the copies."""
    with sftp._lock:  # type: ignore[attr-defined]  # private paramiko API (see the pin)
        num: int = sftp.request_number
        sftp._expecting[num] = collector  # type: ignore[attr-defined]
        sftp.request_number += 1
    head = struct.pack(">IBII", 1 + 4 + 4 + len(handle) + 8 + 4 + len(data), CMD_WRITE, num, len(handle))
    sftp._write_all(head + handle + struct.pack(">QI", offset, len(data)))  # type: ignore[attr-defined]
    _send_all(sftp.sock, data)
    return num


def _send_all(sock: paramiko.Channel, data: bytes) -> None:
    """`sock.send` until all of `data` is gone, through a memoryview: paramiko's `_write_all`
    copies what is left after each partial send (`out[n:]`), and a paramiko channel to OpenSSH
    sends at most 32 KiB a time, so a 255 KiB WRITE's data was copied about four times over."""
    with memoryview(data) as view:
        at = 0
        while at < len(view):
            n = sock.send(view[at:])  # type: ignore[arg-type]  # paramiko's Message.add_string takes a memoryview as it is
            if n <= 0:
                raise EOFError()
            at += n


def _read_exact(sock: paramiko.Channel, n: int) -> bytes:
    """`n` bytes from the link, copied once: paramiko's `_read_all` adds each piece to what it has
    (`out += x`), and a paramiko channel hands a 255 KiB DATA reply over in 32 KiB SSH packets
    when the reader keeps up, so each reply was copied about four times over. (The openssh
    backend's pipe returns all `n` at once.)"""
    got = sock.recv(n)
    if len(got) == n:
        return got
    parts, have = [got], len(got)
    while have < n:
        if not parts[-1]:
            raise EOFError()
        parts.append(sock.recv(n - have))
        have += len(parts[-1])
    return b"".join(parts)


def _next_reply(sftp: paramiko.SFTPClient) -> tuple[int, int, bytes | paramiko.Message]:
    """Read one SFTP reply: (type, request id, body). A DATA reply's body is its data as received,
    not copied twice more on the way (paramiko slices the packet, then reads the string out of
    a BytesIO); any other reply's is a Message positioned as `_read_response` leaves it."""
    try:
        size, t, num = struct.unpack(">IBI", sftp._read_all(9))  # type: ignore[attr-defined]  # private paramiko API (see the pin)
        if size >> 24 or size < 5:
            raise SFTPError("Garbage packet received")
        if t == CMD_DATA:
            n = struct.unpack(">I", sftp._read_all(4))[0]  # type: ignore[attr-defined]
            if n != size - 9:
                raise SFTPError("DATA reply of inconsistent length")
            body: bytes | paramiko.Message = _read_exact(sftp.sock, n) if n else b""
        else:
            body = paramiko.Message(sftp._read_all(size - 5) if size > 5 else b"")  # type: ignore[attr-defined]
    except EOFError as exc:  # the link, not an SFTP end-of-file status: as `_read_response` says it
        raise paramiko.SSHException(f"Server connection dropped: {exc}") from exc
    with sftp._lock:  # type: ignore[attr-defined]
        sftp._expecting.pop(num, None)  # type: ignore[attr-defined]
    return t, num, body


def _await_reply(sftp: paramiko.SFTPClient, num: int,
                 early: dict[int, tuple[int, paramiko.Message]]) -> tuple[int, bytes | paramiko.Message]:
    """The reply to request `num`; replies to others that come first are kept in `early` for them."""
    if num in early:
        t, msg = early.pop(num)
        return (t, msg.get_string()) if t == CMD_DATA else (t, msg)
    while True:
        t, got, body = _next_reply(sftp)
        if got == num:
            return t, body
        if isinstance(body, bytes):  # a reply out of order (rare): as a Message, like the others
            m = paramiko.Message()
            m.add_string(body)
            m.rewind()
            body = m
        early[got] = (t, body)


@dataclass(eq=False)
class _Job:
    """One file in a `_Pipeline`: its index in the caller's items, how many of its requests are
    still unanswered, and whether any reply was not the plain answer."""

    index: int
    waiting: int = field(default=0, kw_only=True)
    failed: bool = field(default=False, kw_only=True)


@dataclass(eq=False)
class _Up(_Job):
    """A small upload in `put_many`: its temporary name and its bytes."""

    tmp: str
    data: bytes


@dataclass(eq=False)
class _Down(_Job):
    """A small download in `get_many`: what its LSTAT said, and the bytes read."""

    path: str
    size: int = 0
    mtime: int | None = None
    data: bytes = b""


#: Requests smaller than this are held by `_Corked` and sent together; larger writes go straight on.
CORK_BYTES = 32 * 1024


class _Corked:
    """The SFTP session's link while a `_Pipeline` runs: small writes (the requests of many files)
    are held and sent together once a read would wait, or once they reach `CORK_BYTES`, so the
    requests that the replies already in hand call for go as one write (one or two SSH packets),
    not one packet and syscall each (paramiko sends each SFTP message as its own packet). Bytes
    leave in the order they were written; a large write first sends what is held, then goes on
    unchanged (not copied).
    Nothing waits for the server while a request is held: a read that could wait sends first
    (a link that cannot say whether a read would wait is always sent first)."""

    def __init__(self, link: paramiko.Channel) -> None:
        self.link = link
        self._held: list[bytes] = []
        self._size = 0
        self._failed: BaseException | None = None  # a flush that failed: every later use fails so

    def send(self, data: bytes | memoryview) -> int:
        self._check()
        n = len(data)
        if n + self._size <= CORK_BYTES:
            self._held.append(bytes(data))
            self._size += n
            if self._size >= CORK_BYTES:
                self.flush()
            return n
        self.flush()
        return self.link.send(data)  # type: ignore[arg-type]  # a memoryview is sent as it is

    def recv(self, n: int) -> bytes:
        self._check()
        if self._held and not self._ready():
            self.flush()
        return self.link.recv(n)

    def _check(self) -> None:
        """Fail as the failed flush did: its requests (other files' too) never left, so no reply to
        them will come, even where the caller let that error pass (a best-effort clean-up)."""
        if self._failed is not None:
            raise EOFError(f"the link failed earlier in this batch: {self._failed}")

    def _ready(self) -> bool:
        """Whether the link has bytes for us already (a reply's rest follows without our requests)."""
        ready = getattr(self.link, "recv_ready", None)
        return bool(ready()) if ready is not None else False

    def flush(self) -> None:
        self._check()
        if self._held:
            data, self._held, self._size = b"".join(self._held), [], 0
            try:
                _send_all(self.link, data)
            except BaseException as exc:
                self._failed = exc
                raise

    def __getattr__(self, name: str) -> object:  # anything else (timeouts, closed) is the channel's
        return getattr(self.link, name)


@dataclass(eq=False)
class _Move(_Job):
    """A file in `move_many` or `delete_many`: where it is and, for a move, where it goes."""

    src: str
    dst: str = ""


_J = TypeVar("_J", bound=_Job)


class _Pipeline(Generic[_J]):
    """Several files' requests in flight on one SFTP session (`put_many`, `get_many`): up to
    `pipeline_files` files at once, replies taken in the order their requests were sent, each
    handed with its file to the caller's `reply`, which may send the file's next requests and
    says when the file is done; then the next file starts.

    Replies are matched by request id (paramiko's private `_async_request`/`_read_response`;
    see the pin), so a server answering out of order is handled. Each reply has the channel
    timeout; the whole has `timeout` plus `volume` bytes at `min_rate`, so a server trickling
    replies cannot hold a run."""

    def __init__(self, transport: SftpTransport, volume: int, too_slow: str, hint: str) -> None:
        s = transport.settings
        self._sftp = transport.sftp
        self._counts = transport.requests_sent
        self._depth = s.pipeline_files
        self._deadline = time.monotonic() + s.timeout + volume / s.min_rate
        self._too_slow, self._hint = too_slow, hint
        self._early: dict[int, tuple[int, paramiko.Message]] = {}
        self._queue: deque[tuple[int, _J, str]] = deque()

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        """paramiko hands a reply to a request sent with `_async_request` here."""
        self._early[num] = (t, msg)

    def send(self, job: _J, what: str, cmd: int, *args: object, kind: str = "") -> None:
        """Send one request for `job`; its reply reaches `reply` with `what`. `kind` names an
        extended request in `requests_sent`."""
        num = self._sftp._async_request(self, cmd, *args)  # type: ignore[attr-defined]  # private paramiko API (see the pin)
        self._counts[kind or _REQUEST_NAMES[cmd]] += 1
        job.waiting += 1
        self._queue.append((num, job, what))

    def run(self, todo: deque[_T], start: Callable[[_T], None],
            reply: Callable[[_J, str, int, paramiko.Message], bool]) -> None:
        """`start(item)` sends an item's first request; `reply(job, what, type, message)` returns
        True once that file is done (no request of it left unanswered)."""
        link = self._sftp.sock
        corked = _Corked(link)
        self._sftp.sock = corked  # type: ignore[assignment]  # paramiko only calls send and recv on it
        try:
            self._run(todo, start, reply)
            corked.flush()
        finally:  # after a failure, what is still held is dropped with the session's state
            self._sftp.sock = link

    def _run(self, todo: deque[_T], start: Callable[[_T], None],
             reply: Callable[[_J, str, int, paramiko.Message], bool]) -> None:
        active = 0

        def fill() -> None:
            nonlocal active
            while todo and active < self._depth:
                start(todo.popleft())
                active += 1

        fill()
        while self._queue:
            if time.monotonic() > self._deadline:
                raise TransientTransportError(self._too_slow, code="ssh.timeout", hint=self._hint)
            num, job, what = self._queue.popleft()
            while num not in self._early:
                self._sftp._read_response()  # type: ignore[attr-defined]  # private paramiko API (see the pin)
            t, msg = self._early.pop(num)
            job.waiting -= 1
            if reply(job, what, t, msg):
                active -= 1
                fill()


@dataclass
class _Held:
    """A link in a `LinkShare`, how many transports hold it, and what its handshake found."""

    link: SftpLink
    holders: int
    host_key_fingerprint: str | None
    used_previous_identity: bool


class LinkShare:
    """SSH connections shared by endpoints that differ only in their folder: the same backend, user,
    host, port, pinned host keys (or known_hosts file), identity and ssh_config. A school's nightly
    run collects from its own drop folder and sends its receipts to the council's; when both are on
    one server under one login, that is one handshake instead of two (~0.1 s of CPU each).

    Only for transports used one at a time (the nightly run's, `run._OneConnection`): an SFTP
    session's requests and replies are not safe across threads. Opening from several threads at
    once is safe (one connects, the others wait for it). A link is handed out only while it lives;
    a transport that closes its link (at the end, or to reconnect after a failure) takes it out
    of the share, so the next one to open connects afresh, and the link ends when its last holder
    closes it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[object, ...], threading.Lock] = {}
        self._held: dict[tuple[object, ...], _Held] = {}
        #: links made (handshakes): what a test counts
        self.connects = 0

    def acquire(self, key: tuple[object, ...], connect: Callable[[], SftpLink],
                facts: Callable[[], tuple[str | None, bool]]) -> _Held:
        with self._lock:
            lock = self._keys.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                held = self._held.get(key)
                if held is not None and held.link.alive():
                    held.holders += 1
                    return held
            link = connect()
            held = _Held(link, 1, *facts())
            with self._lock:
                self._held[key] = held
                self.connects += 1
            return held

    def release(self, key: tuple[object, ...], held: _Held) -> None:
        with self._lock:
            if self._held.get(key) is held:
                del self._held[key]  # never handed out again
            held.holders -= 1
            last = held.holders == 0
        if last:
            held.link.close()


class SftpTransport:
    """One SSH connection and SFTP session to one endpoint (paramiko's SSH; see `openssh` for the other)."""

    backend = "paramiko"

    def __init__(self, endpoint: Endpoint, identity: IdentityLoader, settings: SftpSettings | None = None, *,
                 previous_identity: IdentityLoader | None = None, parts: PartJournal | None = None) -> None:
        url = endpoint.parsed
        if url.scheme != "sftp":
            raise ValueError("SftpTransport needs an sftp:// endpoint")
        self.endpoint = endpoint
        self.url = url
        self.identity = identity
        #: Our SSH key before `keys rotate --ssh`, tried when the server refuses the new one (the overlap).
        self.previous_identity = previous_identity
        #: Set when the server accepted only the previous key: the partner has not added the new line yet.
        self.used_previous_identity = False
        self.settings = settings or SftpSettings()
        self._link: SftpLink | None = None
        #: set by `share`: the link comes from (and goes back to) a `LinkShare`
        self._links: LinkShare | None = None
        self._held: _Held | None = None
        self.host_key_fingerprint: str | None = None
        self._posix_rename = True
        self._parts: dict[str, _PartIndex] = {}
        #: where this home logs the temporary files it makes (`parts`); None: find leftovers by listing
        self._journal = parts
        self._part_log: PartLog | None = None
        #: the link whose first upload removed what earlier connections left (`_sweep_logged`)
        self._swept_on: SftpLink | None = None
        #: target folders of `move_many` seen or made on this connection (a move into one that has
        #: gone since fails, and then goes `move`'s way, which makes it again)
        self._targets: set[str] = set()
        #: requests the overlapped paths sent, by kind (paramiko logs the others): what a test counts
        self.requests_sent: Counter[str] = Counter()

    # -- connection -------------------------------------------------------------------------
    def __enter__(self) -> SftpTransport:
        self.open()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _handshake(self) -> paramiko.Transport:
        """TCP connect and SSH key exchange, then the host-key check: nothing of ours is sent
        before the server has shown the pinned key. The caller closes the transport returned."""
        s = self.settings
        where = f"{self.url.host}:{self.url.port}"
        deadline = time.monotonic() + 4 * s.timeout

        def left() -> float:
            return max(0.1, min(s.timeout, deadline - time.monotonic()))

        try:
            sock = socket.create_connection((self.url.host, self.url.port), timeout=s.timeout)
        except OSError as exc:
            raise TransientTransportError(f"cannot connect to {self.endpoint.party} at {where}: {exc}",
                                  code="ssh.connect-failed",
                                  hint="check the endpoint URL and that the server is up") from exc
        ssh = paramiko.Transport(sock, default_window_size=s.window_size,
                                 default_max_packet_size=s.max_packet_size)
        try:
            ssh.banner_timeout = left()
            ssh.handshake_timeout = left()
            ssh.auth_timeout = s.timeout
            ssh.channel_timeout = s.timeout
            opts = ssh.get_security_options()
            preferred = [c for c in s.ciphers if c in opts.ciphers]
            if preferred:
                opts.ciphers = tuple(preferred)
            try:
                ssh.start_client(timeout=left())
                # start_client returns quietly when its timeout expires: no host key means no handshake.
                if not ssh.is_active() or ssh.host_key is None:
                    raise paramiko.SSHException(f"no key exchange within {s.timeout:g}s")
                server_key = ssh.get_remote_server_key()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise TransientTransportError(f"SSH handshake with {where} failed: {exc or type(exc).__name__}",
                                      code="ssh.handshake-failed",
                                      hint="the server did not answer in time or closed the connection") from exc
            self.host_key_fingerprint = verify_host_key(self.endpoint, self.url.host, self.url.port, server_key)
        except BaseException:
            ssh.close()
            raise
        return ssh

    def verify_host(self) -> str:
        """Connect, check the server presents its pinned host key, and disconnect without
        authenticating (so no passphrase is needed): `laxchange doctor`. Returns the fingerprint."""
        self._handshake().close()
        assert self.host_key_fingerprint is not None  # noqa: S101  narrowing only: _handshake sets it or raises
        return self.host_key_fingerprint

    def share(self, links: LinkShare) -> None:
        """Take this transport's connection from `links`, shared with other endpoints of the same
        server and login (`LinkShare`); before `open` only."""
        self._links = links

    def _share_key(self) -> tuple[object, ...]:
        """What a shared link must have in common: everything the handshake and login depend on."""
        e = self.endpoint
        return (type(self), self.url.user, self.url.host, self.url.port, tuple(sorted(e.host_key_fingerprints)),
                e.known_hosts_file, e.identity, e.ssh_config, self.previous_identity is not None)

    def open(self) -> None:
        if self._link is not None:
            return
        if self._links is None:
            self._link = self._connect()
            return
        held = self._links.acquire(self._share_key(), self._connect,
                                   lambda: (self.host_key_fingerprint, self.used_previous_identity))
        self._held, self._link = held, held.link
        self.host_key_fingerprint, self.used_previous_identity = held.host_key_fingerprint, held.used_previous_identity

    def _connect(self) -> SftpLink:
        """Handshake, pinned host key, authentication, SFTP session: the one part a backend replaces."""
        s = self.settings
        where = f"{self.url.host}:{self.url.port}"
        ssh = self._handshake()
        try:
            key = self.identity()
            auth_started = time.monotonic()
            try:
                try:
                    ssh.auth_publickey(self.url.user, key)
                except paramiko.AuthenticationException:
                    if self.previous_identity is None or time.monotonic() - auth_started >= ssh.auth_timeout:
                        raise
                    auth_started = time.monotonic()
                    ssh.auth_publickey(self.url.user, self.previous_identity())
                    self.used_previous_identity = True
            except paramiko.AuthenticationException as exc:
                # paramiko raises the same class for "refused" and "no answer in auth_timeout": tell
                # them apart by the clock, not by its message text.
                if time.monotonic() - auth_started >= ssh.auth_timeout:
                    raise TransientTransportError(f"{where} did not answer our authentication in {s.timeout:g}s",
                                          code="ssh.auth-timeout",
                                          hint="the server is slow or overloaded; it will be retried") from exc
                raise TransportError(f"{where} refused our SSH key for user {self.url.user!r}",
                                      code="ssh.auth-refused",
                                      hint="send the partner the public key from `laxchange endpoints ssh-key` "
                                           "for their authorized_keys") from exc
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise TransientTransportError(f"authentication with {where} failed: {exc or type(exc).__name__}",
                                      code="ssh.auth-failed", hint=_LOST_HINT) from exc
            ssh.set_keepalive(s.keepalive)
            try:
                # SFTPClient.from_transport, with our receive buffer swapped in before any data arrives
                chan = ssh.open_session(window_size=s.window_size, max_packet_size=s.max_packet_size)
                chan.in_buffer = _ReceiveBuffer()
                chan.invoke_subsystem("sftp")
                sftp = paramiko.SFTPClient(chan)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise TransientTransportError(f"{where} did not open an SFTP session: {exc or type(exc).__name__}",
                                      code="ssh.no-sftp", hint=_NO_SFTP_HINT) from exc
            chan.settimeout(s.timeout)
        except BaseException:
            ssh.close()
            raise
        return _ParamikoLink(ssh, sftp)

    def close(self) -> None:
        link, self._link = self._link, None
        held, self._held = self._held, None
        try:
            if held is not None and self._links is not None:
                self._links.release(self._share_key(), held)
            elif link is not None:
                link.close()
        finally:
            log, self._part_log = self._part_log, None
            if log is not None:
                try:
                    log.close()
                except OSError:  # it stays: a later connection settles it, as any ended one's
                    log_event(_log, "sftp.part-log-kept", logging.WARNING, code="home.unwritable")

    def _abandon(self) -> None:
        """Give the connection up because replies are still owed on it (a stall, a trickle, a link
        that failed mid-request): the link itself ends, not only this transport's hold on it, or
        another endpoint sharing it (`LinkShare`) would send its next request behind those replies
        and wait out a timeout of its own, where a fresh connection answers at once."""
        link = self._link
        self.close()
        if link is not None:
            link.close()  # nothing more if `close` ended it (its last holder)

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._link is None:
            self.open()
        assert self._link is not None  # noqa: S101  narrowing only: open() sets _link or raises
        return self._link.sftp

    # -- helpers ----------------------------------------------------------------------------
    def _path(self, folder: str, name: str = "") -> str:
        parts = [self.url.path]
        if folder:
            parts.append(check_folder(folder))
        if name:
            parts.append(name)
        return posixpath.join(*parts)

    @contextmanager
    def _errors(self, what: str, path: str = "") -> Iterator[None]:
        """Translate paramiko and socket failures; decide what is worth retrying. `path` is the
        remote path concerned, named in the message when the server says it is missing. A
        failure of the link itself gives the link up (`_abandoned_if_lost`)."""
        with self._abandoned_if_lost(), self._translated(what, path):
            yield

    @contextmanager
    def _translated(self, what: str, path: str) -> Iterator[None]:
        where = f"{self.url.host}:{self.url.port}"
        try:
            yield
        except LaxError:
            raise
        except UnicodeDecodeError as exc:
            raise TransportError(f"{what}: the server listed a file name that is not UTF-8", code="remote.bad-name",
                                  hint="laxchange cannot name such a file safely; ask the partner to remove or "
                                       "rename it") from exc
        except TimeoutError as exc:
            raise TransientTransportError(f"{what}: timed out after {self.settings.timeout:g}s", code="ssh.timeout",
                                          hint="the server stalled; it will be retried") from exc
        except (EOFError, paramiko.SSHException, ConnectionError) as exc:
            raise TransientTransportError(f"{what}: connection lost ({exc or type(exc).__name__})",
                                          code="ssh.connection-lost", hint=_LOST_HINT) from exc
        except SFTPError as exc:
            raise TransientTransportError(f"{what}: unexpected SFTP reply ({exc})", code="ssh.protocol-error",
                                          hint=_PROTOCOL_HINT) from exc
        except OSError as exc:
            if self._link_lost(settle=exc.errno is None):
                raise TransientTransportError(f"{what}: connection lost ({exc})", code="ssh.connection-lost",
                                              hint=_LOST_HINT) from exc
            if exc.errno == errno.EACCES:
                raise TransportError(f"{what}: permission denied on the server for {path or 'that path'} "
                                     f"at {where}", code="remote.permission",
                                      hint="ask the partner to check the folder's permissions, and that the URL "
                                           "names the drop folder they gave you") from exc
            if exc.errno == errno.ENOENT:
                raise TransportError(f"{what}: {path or 'the file or folder'} does not exist on the server at "
                                     f"{where}", code="remote.missing",
                                      hint="check the folder in the endpoint URL with the partner (the server may "
                                           "not have created it yet)") from exc
            raise TransportError(f"{what}: the server reported a failure for {path or 'that path'} ({exc})",
                                 code="remote.failure",
                                  hint="the remote disk may be full or the folder not writable") from exc

    @contextmanager
    def _abandoned_if_lost(self) -> Iterator[None]:
        """A timeout, a lost link or a garbled reply leaves the session unusable (a reply owed, or
        the stream out of step): `_abandon` it, whoever else holds it."""
        try:
            yield
        except TransientTransportError as exc:
            if exc.code.startswith("ssh."):
                self._abandon()
            raise

    @contextmanager
    def _overlapped(self, what: str, folder: str) -> Iterator[None]:
        """Around a `_Pipeline`: failures translated as `_errors` does, and the connection closed
        on any of them, since the replies still owed cannot be waited for on it."""
        with self._errors(what, self._path(folder)):
            try:
                yield
            except BaseException:
                self._abandon()
                raise

    def _link_lost(self, *, settle: bool) -> bool:
        """Is the connection gone (so the failure is worth a retry), rather than the server refusing?

        paramiko raises a bare OSError ("Socket is closed") from a write on a link that died a
        moment ago; the link's `alive` tells at once. With `settle`, an errno-less error (which a
        dying link and a server's generic failure share) also waits briefly for it to notice.
        """
        deadline = time.monotonic() + (1.0 if settle else 0.0)
        while True:
            link = self._link
            if link is None or not link.alive():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    @contextmanager
    def _remote_file(self, path: str, mode: str) -> Iterator[paramiko.SFTPFile]:
        """Open a remote file; if the link stalls or drops, abandon the connection rather than
        wait one more timeout for a close that cannot be answered."""
        fh = self.sftp.open(path, mode, bufsize=0)
        try:
            yield fh
        except BaseException as exc:
            if isinstance(exc, _LINK_FAILURES):
                self._abandon()
            else:
                with contextlib.suppress(Exception):  # the original error matters more than the close
                    fh.close()
            raise
        fh.close()

    def _lstat(self, path: str) -> paramiko.SFTPAttributes | None:
        try:
            return self.sftp.lstat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise

    def _rename(self, src: str, dst: str) -> None:
        """posix-rename when the server has it (we check the target is absent first), else plain
        SFTP rename, which never overwrites."""
        if self._posix_rename:
            try:
                self.sftp.posix_rename(src, dst)
                return
            except OSError as exc:
                if exc.errno is not None:
                    raise
                # No errno: the server said "unsupported" or a generic failure (paramiko maps both to
                # the same error, differing only in text). Plain rename, which never overwrites, tells
                # them apart: it fails too on a real failure; if it works the server lacks the extension.
                self.sftp.rename(src, dst)
                self._posix_rename = False
                return
        self.sftp.rename(src, dst)

    # -- the contract -----------------------------------------------------------------------
    def list(self, folder: str = "") -> Listing:
        out = Listing()
        with self._errors(f"listing {self.endpoint.party}", self._path(folder)):
            entries = self.sftp.listdir_attr(self._path(folder))
        for a in entries:
            name = a.filename
            if name.startswith(".") and name_problem(name) == "hidden or temporary name":
                continue
            problem = name_problem(name)
            mode = a.st_mode or 0
            if problem is None and stat.S_ISLNK(mode):
                problem = "symbolic link"
            if problem is None and stat.S_ISDIR(mode):
                out.folders.append(name)
                continue
            if problem is None and not stat.S_ISREG(mode):
                problem = "not a regular file"
            if problem:
                out.skipped.append((safe_label(name), problem))
                continue
            out.files.append(RemoteFile(name, int(a.st_size or 0), int(a.st_mtime) if a.st_mtime else None))
        out.files.sort(key=lambda f: f.name)
        out.folders.sort()
        return out

    def put(self, local: Path, name: str, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> RemoteFile:
        """OPEN (exclusive, unpredictable temporary name), WRITE(s), CLOSE, RENAME: four requests.

        Plain SFTP rename never replaces an existing file (the protocol makes that an error;
        OpenSSH's server and ours hard-link then unlink), so it is the check that the final name
        is free, with no race, and no LSTAT before or after is needed. Only when it fails do we
        look: the same bytes already there (a retry after a lost reply) is success, different
        bytes is `remote.exists`. A large file is looked for first, so such a retry does not
        send it again; for a small one the lookup would cost more than the rare wasted upload.
        No STAT of the temporary file: every WRITE's status and the CLOSE are checked, and the
        file was created by us (O_EXCL) under a name nobody can guess.
        """
        check_name(name)
        size = local.stat().st_size
        final = self._path(folder, name)
        label = f"upload of {name} to {self.endpoint.party}"
        with self._errors(label, self._path(folder)):
            if size > self.settings.look_first_bytes:
                existing = self._lstat(final)
                if existing is not None:
                    return self._already_there(local, name, folder, existing, sha256)
            self._leftover_parts(folder)
            tmp = self._new_part(folder, name)
            try:
                digest = self._upload(local, tmp, size, progress, digest=bool(sha256))
                if sha256 and digest != sha256.lower():
                    raise TransportError(f"{local} changed or does not match the expected SHA-256",
                                          code="verify.local-hash", hint="rebuild the package")
                try:
                    self.sftp.rename(tmp, final)
                except OSError:
                    existing = self._lstat(final)
                    if existing is None:
                        raise
                    self._discard(tmp)
                    return self._already_there(local, name, folder, existing, digest)
                self._published(tmp)
            except BaseException:
                self._discard(tmp)
                raise
            self._clean_parts(folder, name)
        return RemoteFile(name, size)

    def put_many(self, items: Sequence[PutItem], *, folder: str = "") -> PutResults:
        """Small files overlapped on the one connection: up to `pipeline_files` in flight.

        Each file is still OPEN (exclusive, random temporary name), WRITE(s), CLOSE, RENAME (see
        `put`), and its RENAME is sent only once its WRITEs and CLOSE are acknowledged: a server
        may reorder requests on different paths, and the final name must never show a partial
        or failed file. Large files, and any small file this path cannot finish (a refused
        rename, a refused open, a local file that changed), go through `put` afterwards, so
        each result is exactly what `put` would give. OpenSSH's `sftp -b` waits for each reply.
        """
        results: _Results = [None] * len(items)
        small: _Small = []
        for i, it in enumerate(items):
            try:
                check_name(it.name)
            except TransportError as exc:
                results[i] = exc
                continue
            with contextlib.suppress(OSError):  # unreadable: `put` below reports it as it always has
                if it.local.stat().st_size <= self.settings.look_first_bytes:
                    data = it.local.read_bytes()
                    if len(data) <= self.settings.look_first_bytes and (
                            not it.sha256 or it.sha256.lower() == hashlib.sha256(data).hexdigest()):
                        small.append((i, data))
        if small:
            with self._overlapped(f"uploads to {self.endpoint.party}", folder):
                self._pipelined_puts(items, small, folder, results)
        # what the overlapped part did not publish goes the one-file way, with `put`'s own results
        return [res if res is not None else put_each(self, [it], folder)[0]
                for it, res in zip(items, results, strict=True)]

    def _pipelined_puts(self, items: Sequence[PutItem], small: _Small, folder: str, results: _Results) -> None:
        """The overlapped part of `put_many`: fills `results[i]` for each file it published."""
        chunk = self.settings.chunk_size
        self._leftover_parts(folder)
        total = sum(len(d) for _, d in small)
        pipe: _Pipeline[_Up] = _Pipeline(self, total, f"the uploads were slower than "
                                         f"{self.settings.min_rate / 1024:g} KiB/s",
                                         "the server is very slow; the upload will be retried")

        def start(job: tuple[int, bytes]) -> None:
            i, data = job
            up = _Up(i, self._new_part(folder, items[i].name), data)
            pipe.send(up, "open", CMD_OPEN, up.tmp, _CREATE_EXCL, paramiko.SFTPAttributes())

        def finish(up: _Up) -> bool:
            if up.failed:
                self._discard(up.tmp)  # and leave the file to `put`, which says what is wrong
                return True
            it = items[up.index]
            results[up.index] = RemoteFile(it.name, len(up.data))
            self._published(up.tmp)
            self._clean_parts(folder, it.name)
            if it.progress:
                it.progress(len(up.data), len(up.data))
            return True

        def reply(up: _Up, what: str, t: int, msg: paramiko.Message) -> bool:
            if what == "open":
                if t != CMD_HANDLE:
                    up.failed = True
                    return finish(up)
                handle = msg.get_binary()
                for at in range(0, len(up.data), chunk):
                    pipe.send(up, "write", CMD_WRITE, handle, int64(at), up.data[at:at + chunk])
                pipe.send(up, "close", CMD_CLOSE, handle)
                return False
            if t != CMD_STATUS or msg.get_int() != SFTP_OK:
                up.failed = True
            if up.waiting:
                return False
            if what != "rename" and not up.failed:  # the WRITEs and CLOSE all acknowledged: publish
                pipe.send(up, "rename", CMD_RENAME, up.tmp, self._path(folder, items[up.index].name))
                return False
            return finish(up)

        pipe.run(deque(small), start, reply)

    def _upload(self, local: Path, tmp: str, size: int, progress: Progress | None, *, digest: bool) -> str | None:
        """WRITEs of `chunk_size`, up to `prefetch_requests` unacknowledged, every status read (a
        failed write in the middle, a full disk say, must not leave a hole with the right size).

        Each WRITE is sent as its header then the chunk as read from the file: paramiko's own
        writer copies every byte four times on the way (message, packet, frame, slice), which at
        bulk rates costs as much as the SSH layer under it. With `digest`, returns the SHA-256 of
        the bytes sent, taken on a thread of its own beside the writes (`BackgroundSha256`);
        without, nothing hashes them: `put` needs the digest only to check the caller's."""
        sftp = self.sftp
        chunk, depth = self.settings.chunk_size, self.settings.prefetch_requests
        done = 0
        deadline = time.monotonic() + self.settings.timeout + size / self.settings.min_rate
        early: dict[int, tuple[int, paramiko.Message]] = {}

        class _Collector:
            @staticmethod
            def _async_response(t: int, msg: paramiko.Message, num: int) -> None:
                early[num] = (t, msg)

        inflight: deque[int] = deque()

        def in_time() -> None:
            if time.monotonic() > deadline:  # a server acknowledging at a trickle cannot hold us
                self._abandon()
                raise TransientTransportError(f"the upload was slower than {self.settings.min_rate / 1024:g} KiB/s",
                                              code="ssh.timeout", hint="the server is very slow; "
                                              "the upload will be retried")

        def acknowledged() -> None:
            num = inflight.popleft()
            while num not in early:
                in_time()
                sftp._read_response()  # type: ignore[attr-defined]  # private paramiko API (see the pin)
            t, msg = early.pop(num)
            if t != CMD_STATUS:
                raise TransientTransportError("unexpected reply to a write", code="ssh.protocol-error",
                                              hint=_PROTOCOL_HINT)
            if msg.get_int() != SFTP_OK:
                msg.rewind()
                msg.get_int()  # the request id, then the status _convert_status reads
                sftp._convert_status(msg)  # type: ignore[attr-defined]  # raises the server's error (see the pin)

        with (BackgroundSha256() if digest else contextlib.nullcontext()) as h, \
                local.open("rb", buffering=0) as src, self._remote_file(tmp, "wbx") as dst:
            handle: bytes = dst.handle  # type: ignore[assignment]  # bytes at run time; the stubs say SFTPHandle
            while data := src.read(chunk):
                in_time()
                if h is not None:
                    h.update(data)
                inflight.append(_send_write(sftp, _Collector, handle, done, data))
                done += len(data)
                while len(inflight) >= depth:
                    acknowledged()
                if progress:
                    progress(done, size)
            while inflight:
                acknowledged()
            return h.hexdigest() if h is not None else None

    def _already_there(self, local: Path, name: str, folder: str, attrs: paramiko.SFTPAttributes,
                       sha256: str | None) -> RemoteFile:
        """A retry after a lost acknowledgement finds its own file: same bytes means delivered."""
        size = local.stat().st_size
        if stat.S_ISREG(attrs.st_mode or 0) and attrs.st_size == size:
            sink = _HashSink()
            with self._remote_file(self._path(folder, name), "rb") as fh:
                self._pipelined_read(fh, size, sink, None)
            want = (sha256 or "").lower() or sha256_file(local)
            if sink.hash.hexdigest() == want:
                self._clean_parts(folder, name)
                return RemoteFile(name, size)
        raise TransportError(f"{name} already exists at {self.endpoint.party} with different content",
                              code="remote.exists", hint="each package has a unique name; do not reuse names")

    def _discard(self, path: str) -> None:
        if self._link is None or not self._link.alive():
            return
        with contextlib.suppress(Exception):  # best effort; what is left is the next connection's (below)
            with contextlib.suppress(FileNotFoundError):  # never made (a refused OPEN): gone all the same
                self.sftp.remove(path)
            self._published(path)

    def _new_part(self, folder: str, name: str) -> str:
        """A new temporary name for an upload of `name`, logged (with a journal) before it is made."""
        tmp = self._path(folder, f".{name}{PART_MARKER}{os.urandom(6).hex()}")
        if self._journal is not None:
            journal = self._journal

            def note() -> None:
                if self._part_log is None:
                    self._part_log = journal.open(self.endpoint.url)
                self._part_log.add(tmp)

            self._home_call(note)  # ours, not the server's: never reported as a remote failure
        return tmp

    def _published(self, tmp: str) -> None:
        """The temporary file `tmp` is gone from the server: renamed to its name, or removed."""
        if self._part_log is not None:
            self._part_log.resolved(tmp)

    def _sweep_logged(self) -> None:
        """Remove, by name, the temporary files that ended connections of this home left on this
        endpoint (their logs, `parts`; an earlier link of this transport's among them): once per link.

        A file found absent counts as gone only in a log older than `stale_part_age`: requests of a
        connection that has only just ended may still be on their way to the server."""
        if self._journal is None:
            return
        self.open()
        link = self._link
        if link is None or self._swept_on is link:
            return
        self._swept_on = link
        journal = self._journal
        orphans = self._home_call(lambda: journal.orphans(self.endpoint.url))
        removed: set[str] = set()
        absent: set[str] = set()
        swept = False
        try:
            for tmp in dict.fromkeys(p for o in orphans for p in o.parts):
                if not self._is_our_part(tmp):
                    continue
                outcome = self._remove_part(tmp)
                if outcome == "removed":
                    removed.add(tmp)
                elif outcome == "absent":
                    absent.add(tmp)
            swept = True
        finally:
            failed: OSError | None = None
            for o in orphans:
                try:
                    o.settle(removed | absent if o.age >= self.settings.stale_part_age else removed)
                except OSError as exc:  # the others are settled all the same
                    failed = failed or exc
            if failed is not None:
                if swept:  # else the link's own failure, on its way out, is the one to report
                    raise self._home_error(failed) from failed
                log_event(_log, "sftp.part-log-kept", logging.WARNING, code="home.unwritable")

    def _home_call(self, call: Callable[[], _T]) -> _T:
        """`call` on this home's own files (the part logs): a failure there is the home's, never
        reported as the server's."""
        try:
            return call()
        except OSError as exc:
            raise self._home_error(exc) from exc

    def _home_error(self, exc: OSError) -> ConfigError:
        root = self._journal.root if self._journal is not None else "the home"
        return ConfigError(f"cannot read or update the log of temporary uploads under {root}: {exc}",
                           code="home.unwritable",
                           hint="the home folder must be writable by the user that runs laxchange")

    def _is_our_part(self, path: str) -> bool:
        """A temporary upload name in this endpoint's folder or one under it, as `_path` makes
        them (a log is ours, but is checked all the same). The login's own folder (a URL with no
        path) is ".", and its paths are "./NAME"."""
        base = self._path("")
        prefix = "./" if base in ("", ".") else base.rstrip("/") + "/"
        if not path.startswith(prefix):
            return False
        steps = path[len(prefix):].split("/")
        return (all(p not in ("", ".", "..") for p in steps)
                and _PART_NAME.fullmatch(steps[-1]) is not None)

    def _remove_part(self, path: str) -> str:
        """Remove one leftover: "removed", "absent", or "refused" (kept in its log, tried again by a
        later connection). A lost or stalled link is raised."""
        try:
            self.sftp.remove(path)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
                return "absent"
            if isinstance(exc, TimeoutError) or self._link_lost(settle=exc.errno is None):
                raise  # a stall or a lost link: not the server's answer
            return "refused"  # FAILURE, PERMISSION_DENIED...: the server's answer; tried again next time
        return "removed"

    def _leftover_parts(self, folder: str) -> _PartIndex:
        """Temporary files left by uploads that died, by the name they were meant to get.

        With a journal (`parts`, every home's transports), what this home's connections left is
        removed by name and the folder is never listed: a partner's drop folder holds every other
        sender's files too. Without one, the folder is listed once per folder per connection
        (listing per file would make small files slow): those older than `stale_part_age` are
        removed at once; younger ones are removed when the same name is delivered, so a
        concurrent upload of another name is never disturbed.
        """
        if self._journal is not None:
            self._sweep_logged()
            return self._parts.setdefault(folder, {})
        if folder in self._parts:
            return self._parts[folder]
        index: _PartIndex = {}
        cutoff = time.time() - self.settings.stale_part_age
        try:
            entries = self.sftp.listdir_attr(self._path(folder))
        except OSError:
            entries = []
        for a in entries:
            fn = a.filename
            if not (fn.startswith(".") and PART_MARKER in fn and stat.S_ISREG(a.st_mode or 0)):
                continue
            if (a.st_mtime or 0) <= cutoff:
                self._discard(self._path(folder, fn))
            else:
                index.setdefault(fn[1:fn.rindex(PART_MARKER)], []).append(fn)
        self._parts[folder] = index
        return index

    def _clean_parts(self, folder: str, name: str) -> None:
        for fn in self._leftover_parts(folder).pop(name, []):
            self._discard(self._path(folder, fn))

    def get(self, name: str, local: Path, *, folder: str = "", sha256: str | None = None,
            progress: Progress | None = None) -> int:
        check_name(name)
        src = self._path(folder, name)
        label = f"download of {name} from {self.endpoint.party}"
        with self._errors(label, src):
            attrs = self.sftp.lstat(src)
            if not stat.S_ISREG(attrs.st_mode or 0):
                raise TransportError(f"{label}: not a regular file", code="remote.not-regular",
                                     hint="only regular files are collected; ask the partner to remove the link "
                                          "or special file")
            if attrs.st_size is None:
                raise TransportError(f"{label}: the server did not say how large the file is", code="remote.no-size",
                                      hint="laxchange needs the size to verify the download; report it to the partner")
            size = int(attrs.st_size)
            if size > self.settings.max_file_bytes:
                raise TransportError(f"{label}: {size} bytes is over the {self.settings.max_file_bytes}-byte limit",
                                      code="remote.too-large", hint="ask the partner what this file is; "
                                      "raise the limit only if it is expected")
            sink = LocalSink(local, size, sha256, background=size >= BACKGROUND_BYTES)
            deadline = time.monotonic() + self.settings.timeout + size / self.settings.min_rate
            try:
                with self._remote_file(src, "rb") as fh:
                    self._pipelined_read(fh, size, sink, progress, deadline)
                    self._check_unchanged(fh, attrs, size)
                return sink.commit()
            except BaseException:
                sink.abort()
                raise

    def get_many(self, items: Sequence[GetItem], *, folder: str = "") -> GetResults:
        """Small files overlapped: up to `pipeline_files` in flight on the one connection.

        Each file is LSTAT (a regular file, not a link: OPEN would follow one), OPEN, then in one
        go READ of the whole file, READ past its end (must be end-of-file), FSTAT (size and
        mtime unchanged: not still being written) and CLOSE: the checks `get` makes, in three
        round trips, overlapped across files. Larger files, and any file whose replies are not
        the plain answer (a refusal, a short read, a change), go through `get`, so each result
        is exactly what `get` gives.
        """
        results: _Fetched = [None] * len(items)
        todo: deque[int] = deque()
        for i, it in enumerate(items):
            try:
                check_name(it.name)
            except TransportError as exc:
                results[i] = exc
                continue
            todo.append(i)
        if todo:
            with self._overlapped(f"downloads from {self.endpoint.party}", folder):
                self._pipelined_gets(items, todo, folder, results)
        return [res if res is not None else get_each(self, [it], folder)[0]
                for it, res in zip(items, results, strict=True)]

    def _pipelined_gets(self, items: Sequence[GetItem], todo: deque[int], folder: str,
                        results: _Fetched) -> None:
        limit = min(self.settings.chunk_size, self.settings.max_file_bytes)
        synced: set[Path] = set()  # folders whose fsync is owed before we return
        ready: list[tuple[int, LocalSink]] = []  # fetched and verified, not yet durable or in place
        pipe: _Pipeline[_Down] = _Pipeline(self, len(todo) * limit, "the server stopped answering downloads",
                                           "the server is very slow; it will be retried")

        def publish() -> None:
            """Every file of `ready` durable, its fsync issued with the others' (`commit_sinks`), and in place."""
            batch = ready[:]
            del ready[:]
            for (i, _), saved in zip(batch, commit_sinks([sink for _, sink in batch]), strict=True):
                results[i] = saved
                it = items[i]
                synced.add(it.local.parent)
                if it.progress and isinstance(saved, int):
                    it.progress(saved, saved)

        def start(i: int) -> None:
            d = _Down(i, self._path(folder, items[i].name))
            pipe.send(d, "lstat", CMD_LSTAT, d.path)

        def finish(d: _Down) -> bool:
            if d.failed:
                return True  # left to `get`, which says what is wrong
            it = items[d.index]
            sink = LocalSink(it.local, d.size, it.sha256)
            try:
                sink.write(d.data)
                sink.verify()  # made durable and published with the others, once the pipeline is done
                ready.append((d.index, sink))
                d.data = b""
                if len(ready) >= SINK_BATCH:
                    publish()
            except TransientTransportError:
                sink.abort()  # left to `get`
            except TransportError as exc:
                sink.abort()
                results[d.index] = exc
            except BaseException:
                sink.abort()
                raise
            return True

        def reply(d: _Down, what: str, t: int, msg: paramiko.Message) -> bool:
            if what == "lstat":
                attrs = paramiko.SFTPAttributes._from_msg(msg) if t == CMD_ATTRS else None  # type: ignore[attr-defined]  # private paramiko API (see the pin)
                if (attrs is None or not stat.S_ISREG(attrs.st_mode or 0) or attrs.st_size is None
                        or attrs.st_size > limit):
                    d.failed = True
                    return finish(d)
                d.size, d.mtime = int(attrs.st_size), attrs.st_mtime
                pipe.send(d, "open", CMD_OPEN, d.path, SFTP_FLAG_READ, paramiko.SFTPAttributes())
                return False
            if what == "open":
                if t != CMD_HANDLE:
                    d.failed = True
                    return finish(d)
                handle = msg.get_binary()
                if d.size:
                    pipe.send(d, "data", CMD_READ, handle, int64(0), d.size)
                pipe.send(d, "end", CMD_READ, handle, int64(d.size), 1)
                pipe.send(d, "fstat", CMD_FSTAT, handle)
                pipe.send(d, "close", CMD_CLOSE, handle)
                return False
            if what == "data":
                d.data = msg.get_string() if t == CMD_DATA else b""
                d.failed = d.failed or len(d.data) != d.size
            elif what == "end":
                d.failed = d.failed or not (t == CMD_STATUS and msg.get_int() == SFTP_EOF)
            elif what == "fstat":
                now = paramiko.SFTPAttributes._from_msg(msg) if t == CMD_ATTRS else None  # type: ignore[attr-defined]  # private paramiko API (see the pin)
                d.failed = d.failed or now is None or now.st_size != d.size or bool(
                    d.mtime and now.st_mtime != d.mtime)
            return d.waiting == 0 and finish(d)

        try:
            pipe.run(todo, start, reply)
        except BaseException:
            for _, sink in ready:
                sink.abort()
            raise
        publish()
        for folder_path in synced:  # their names, once per folder
            fsync_dir(folder_path)

    def _check_unchanged(self, fh: paramiko.SFTPFile, attrs: paramiko.SFTPAttributes, size: int) -> None:
        """The file must end where its size said and not have changed while we read it: a sender
        still writing in place must not give us (and processed/) a truncated copy."""
        try:
            t, msg = self.sftp._request(CMD_READ, fh.handle, int64(size), 1)  # type: ignore[attr-defined]  # private paramiko API (see the pin)
        except EOFError:  # the SFTP end-of-file status: exactly what we expect
            t, msg = CMD_STATUS, None
        if t == CMD_DATA and msg is not None and msg.get_string():
            raise TransientTransportError("the file grew while it was downloaded", code="verify.size",
                                  hint="the sender may still be writing it; it will be retried")
        now = fh.stat()
        if now.st_size != attrs.st_size or (attrs.st_mtime and now.st_mtime != attrs.st_mtime):
            raise TransientTransportError("the file changed while it was downloaded", code="verify.size",
                                  hint="the sender may still be writing it; it will be retried")

    def _pipelined_read(self, fh: paramiko.SFTPFile, size: int, sink: _Sink,
                        progress: Progress | None, deadline: float | None = None) -> None:
        """Keep `prefetch_requests` reads in flight and consume replies in order.

        paramiko's own prefetch runs a thread and scans a dict per read; issuing requests here
        and writing each reply straight to the sink is markedly faster. Short reads (a server
        with a smaller read limit) are completed synchronously.
        """
        sftp = self.sftp
        chunk, depth = self.settings.chunk_size, self.settings.prefetch_requests
        early: dict[int, tuple[int, paramiko.Message]] = {}

        class _Collector:
            @staticmethod
            def _async_response(t: int, msg: paramiko.Message, num: int) -> None:
                early[num] = (t, msg)

        inflight: deque[tuple[int, int, int]] = deque()
        offset = 0

        def issue() -> None:
            nonlocal offset
            while offset < size and len(inflight) < depth:
                length = min(chunk, size - offset)
                num = sftp._async_request(_Collector, CMD_READ, fh.handle, int64(offset), int(length))  # type: ignore[attr-defined]  # private paramiko API (see the pin)
                inflight.append((num, offset, length))
                offset += length

        issue()
        try:
            self._consume(fh, inflight, early, sink, size, progress, issue, deadline)
        except EOFError:  # an SFTP end-of-file status: the file shrank under us
            raise TransientTransportError("the server ended the file early", code="verify.size",
                                          hint=_SHORT_HINT) from None

    def _consume(self, fh: paramiko.SFTPFile, inflight: deque[tuple[int, int, int]],
                 early: dict[int, tuple[int, paramiko.Message]], sink: _Sink, size: int,
                 progress: Progress | None, issue: Callable[[], None], deadline: float | None = None) -> None:
        sftp = self.sftp

        def in_time() -> None:
            if deadline is not None and time.monotonic() > deadline:
                self._abandon()  # outstanding replies cannot be waited for on this connection
                raise TransportError(f"the download was slower than {self.settings.min_rate / 1024:g} KiB/s",
                                      code="ssh.timeout", hint="the server is trickling data; try again later")

        while inflight:
            in_time()
            num, at, length = inflight.popleft()
            t, reply = _await_reply(sftp, num, early)
            if t == CMD_STATUS:
                assert isinstance(reply, paramiko.Message)  # noqa: S101  narrowing only: only DATA comes as bytes
                sftp._convert_status(reply)  # type: ignore[attr-defined]  # private paramiko API (see the pin)
                raise TransientTransportError("the server ended the file early", code="verify.size", hint=_SHORT_HINT)
            if t != CMD_DATA or not isinstance(reply, bytes):
                raise TransientTransportError("unexpected reply to a read", code="ssh.protocol-error",
                                              hint=_PROTOCOL_HINT)
            data = reply
            if not data:
                raise TransientTransportError("the server ended the file early", code="verify.size", hint=_SHORT_HINT)
            if len(data) > length:
                raise TransportError("the server sent more than was asked for", code="ssh.protocol-error",
                                     hint=_PROTOCOL_HINT)
            sink.write(data)
            while len(data) < length:  # short read: fetch the rest of this chunk before moving on
                in_time()
                at, length = at + len(data), length - len(data)
                t, msg = sftp._request(CMD_READ, fh.handle, int64(at), int(length))  # type: ignore[attr-defined]  # private paramiko API (see the pin)
                data = msg.get_string() if t == CMD_DATA else b""
                if not data:
                    raise TransientTransportError("the server ended the file early", code="verify.size",
                                                  hint=_SHORT_HINT)
                if len(data) > length:
                    raise TransportError("the server sent more than was asked for", code="ssh.protocol-error",
                                     hint=_PROTOCOL_HINT)
                sink.write(data)
            if progress:
                progress(sink.written, size)
            issue()

    def move(self, name: str, to_folder: str, *, folder: str = "") -> None:
        check_name(name)
        check_name(to_folder)
        target = posixpath.join(self._path(folder), to_folder)
        src, dst = self._path(folder, name), posixpath.join(target, name)
        with self._errors(f"moving {name} to {to_folder}/ at {self.endpoint.party}", src):
            self._make_folder(target)
            there = self._lstat(dst)
            if there is not None:
                here = self._lstat(src)
                if here is None:
                    return
                digest = self._remote_sha256(src, here)
                if digest is None:
                    raise TransportError(f"{dst} already exists at {self.endpoint.party}",
                                          code="remote.exists", hint="remove the old copy on the server")
                if self._remote_sha256(dst, there) == digest:  # delivered again after it was collected
                    self.sftp.remove(src)
                    return
                dst = posixpath.join(target, aside_name(name, digest))  # a different file of that name: keep both
                aside = self._lstat(dst)
                if aside is not None:
                    if self._remote_sha256(dst, aside) != digest:
                        raise TransportError(f"{dst} already exists at {self.endpoint.party}",
                                              code="remote.exists", hint="remove the old copy on the server")
                    self.sftp.remove(src)
                    return
            self._rename(src, dst)

    def _make_folder(self, target: str) -> None:
        if self._lstat(target) is None:
            try:
                self.sftp.mkdir(target, 0o700)
            except OSError:
                if self._lstat(target) is None:
                    raise

    def move_many(self, names: Sequence[str], to_folder: str, *, folder: str = "") -> DoneResults:
        """Moves overlapped: up to `pipeline_files` files in flight on the one connection, the target
        folder looked for (and made) once per connection rather than once per file.

        Each file is LSTAT of its target name, then, only if the server says no such file,
        posix-rename (`move`'s own guard: rename(2) replaces a target, so it must be absent), so two
        requests a file where `move` makes three, and none waits for another file's reply. A file
        whose target exists (the collision cases: same bytes, different bytes, the move already
        done) or whose replies are not the plain answer goes through `move` afterwards, so each
        result is what `move` gives.
        """
        target = self._path(folder, to_folder) if name_problem(to_folder) is None else ""
        todo: deque[int] = deque(i for i, name in enumerate(names) if name_problem(name) is None)
        done: set[int] = set()
        if target and todo:
            try:
                with self._errors(f"moving files to {to_folder}/ at {self.endpoint.party}", target):
                    if target not in self._targets:
                        self._make_folder(target)
                        self._targets.add(target)
            except TransientTransportError:
                raise
            except TransportError:
                todo.clear()  # each file says so through `move`
        if target and todo:
            with self._overlapped(f"moving files to {to_folder}/ at {self.endpoint.party}", folder):
                self._pipelined_moves(names, todo, folder, target, done)
        # a bad name, a collision, a refusal: the one-file way, with `move`'s own result
        return [None if i in done else move_each(self, [name], to_folder, folder)[0] for i, name in enumerate(names)]

    def _pipelined_moves(self, names: Sequence[str], todo: deque[int], folder: str, target: str,
                         done: set[int]) -> None:
        """The overlapped part of `move_many`: adds to `done` each file it moved."""
        pipe: _Pipeline[_Move] = _Pipeline(self, 512 * len(todo), "the server stopped answering moves",
                                           "the server is very slow; it will be retried")

        def start(i: int) -> None:
            m = _Move(i, self._path(folder, names[i]), posixpath.join(target, names[i]))
            pipe.send(m, "lstat", CMD_LSTAT, m.dst)

        def reply(m: _Move, what: str, t: int, msg: paramiko.Message) -> bool:
            status = msg.get_int() if t == CMD_STATUS else None
            if what == "lstat":
                if status != SFTP_NO_SUCH_FILE:
                    return True  # the target name is taken (or the server would not say): left to `move`
                if self._posix_rename:
                    pipe.send(m, "rename", CMD_EXTENDED, _POSIX_RENAME, m.src, m.dst, kind="posix-rename")
                else:
                    pipe.send(m, "rename", CMD_RENAME, m.src, m.dst)  # plain rename never replaces
                return False
            if status == SFTP_OK:
                done.add(m.index)
            return True  # refused (the source gone, no posix-rename, ...): left to `move`

        pipe.run(todo, start, reply)

    def _remote_sha256(self, path: str, attrs: paramiko.SFTPAttributes) -> str | None:
        """The SHA-256 of a regular remote file (None for anything else, which matches nothing)."""
        if not stat.S_ISREG(attrs.st_mode or 0):
            return None
        sink = _HashSink()
        with self._remote_file(path, "rb") as fh:
            self._pipelined_read(fh, int(attrs.st_size or 0), sink, None)
        return sink.hash.hexdigest()

    def probe(self, folder: str = "") -> int | None:
        d = self._path(folder)
        path = self._path(folder, probe_name())
        with self._errors(f"writing a test file into {self.endpoint.party}'s folder {d}", d):
            with self._remote_file(path, "wbx") as fh:
                fh.write(PROBE_BYTES)
            try:
                mtime = self.sftp.lstat(path).st_mtime
            finally:
                self.sftp.remove(path)
        return int(mtime) if mtime is not None else None

    def delete_many(self, names: Sequence[str], *, folder: str = "") -> DoneResults:
        """Removals overlapped: one REMOVE a file, up to `pipeline_files` in flight; a file already
        gone counts as deleted, and any other refusal goes through `delete` for its own result."""
        todo: deque[int] = deque(i for i, name in enumerate(names) if name_problem(name) is None)
        done: set[int] = set()
        if todo:
            pipe: _Pipeline[_Move] = _Pipeline(self, 512 * len(todo), "the server stopped answering removals",
                                               "the server is very slow; it will be retried")

            def start(i: int) -> None:
                pipe.send(_Move(i, self._path(folder, names[i])), "remove", CMD_REMOVE, self._path(folder, names[i]))

            def reply(m: _Move, what: str, t: int, msg: paramiko.Message) -> bool:
                if t == CMD_STATUS and msg.get_int() in (SFTP_OK, SFTP_NO_SUCH_FILE):
                    done.add(m.index)
                return True

            with self._overlapped(f"deleting files at {self.endpoint.party}", folder):
                pipe.run(todo, start, reply)
        return [None if i in done else delete_each(self, [name], folder)[0] for i, name in enumerate(names)]

    def delete(self, name: str, *, folder: str = "") -> None:
        check_name(name)
        with self._errors(f"deleting {name} at {self.endpoint.party}", self._path(folder, name)):
            try:
                self.sftp.remove(self._path(folder, name))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise


__all__ = ["SftpLink", "SftpSettings", "SftpTransport", "TransportError"]
