"""An embedded SFTP server (paramiko's server side) for demos and single-machine setups.

Key authentication only, loopback by default. Every key belongs to one party (the party id is
the key's comment in the authorized_keys file) and every drop folder to one owner (`folders`):

- the owner of a drop folder sees all of it: one sub-folder per sender (`LA_919/`,
  `URN_123456/`), each with its own `processed/`;
- any other authorised party that opens the drop folder's path sees only its own sub-folder
  there (a virtual view: `/school/x.lax` is `school/LA_919/x.lax` on disk). It may upload, list,
  read back and remove its own files and nothing else: no sub-folders, no other party's files,
  nothing outside the drop folders.

Paths are resolved under the root, symbolic links are refused rather than followed, plain
renames never overwrite (posix-rename, by definition, replaces), files are created 0600, and
connections, authentication results and file operations are logged (ids and names only, never
content) to the `laxchange.sftpd` logger.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import itertools
import logging
import os
import posixpath
import re
import socket
import stat
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_OP_UNSUPPORTED, SFTP_PERMISSION_DENIED

from laxchange.errors import ConfigError
from laxchange.transport.base import PARTY_ID_RE, name_problem, safe_label, sender_folder
from laxchange.transport.hostkeys import fingerprint
from laxchange.transport.identity import create_ssh_identity

#: Where the server logs; `laxchange serve-sftp` sends it to stderr or --log-file.
log = logging.getLogger("laxchange.sftpd")

_KEY_EXAMPLE = "ssh-ed25519 AAAA... LA:919"


@dataclass(frozen=True)
class ServerAccess:
    """Who may log in, and who owns which drop folder.

    `keys` maps a public key's blob to the one party it belongs to; `folders` maps a drop folder
    (a plain name directly under the root) to the party that owns it and collects from it.
    """

    keys: Mapping[bytes, str]
    folders: Mapping[str, str]

    @classmethod
    def build(cls, keys: Iterable[tuple[str, paramiko.PKey]], folders: Mapping[str, str]) -> ServerAccess:
        """Check and combine (party, key) pairs and {folder: owner}; raise ConfigError on a mistake."""
        by_blob: dict[bytes, str] = {}
        for party, key in keys:
            _check_party(party, "the key's party")
            other = by_blob.setdefault(key.asbytes(), party)
            if other != party:
                raise ConfigError(f"the SSH key {fingerprint(key)} is listed for both {other} and {party}",
                                  code="server.authorized-keys",
                                  hint="each partner has its own key: remove the line that names the wrong party")
        if not by_blob:
            raise ConfigError("no authorised keys: nobody could log in", code="server.authorized-keys",
                              hint="list each partner's public key with its party id as the comment, "
                                   f"e.g. `{_KEY_EXAMPLE}`")
        for folder, owner in folders.items():
            problem = name_problem(folder)
            if problem:
                raise ConfigError(f"drop folder name {safe_label(folder)!r}: {problem}", code="server.folder",
                                  hint="name each drop folder plainly, e.g. --drop-folder inbox=URN:123456")
            # An owner without a key is allowed: it may collect on this machine with file:///root/folder.
            _check_party(owner, f"the owner of drop folder {folder!r}")
        if not folders:
            raise ConfigError("no drop folders to serve", code="server.folder",
                              hint="name each drop folder and its owner, e.g. --drop-folder inbox=URN:123456")
        return cls(by_blob, dict(folders))

    def party_for(self, key: paramiko.PKey) -> str | None:
        return self.keys.get(key.asbytes())


def _check_party(party: str, what: str) -> str:
    if not isinstance(party, str) or not PARTY_ID_RE.fullmatch(party):
        raise ConfigError(f"{what} is {party!r}, which is not a party id", code="server.party",
                          hint="a council is LA:919 (its DfE LA code), a school URN:123456")
    return party


#: The comment `laxchange init` writes on the SSH key it makes (`laxchange-LA-919`), also on the card.
_INIT_COMMENT_RE = re.compile(r"laxchange-(LA|URN)-(\d+)")


def _party_of_comment(comment: str) -> str:
    """The party id a key line's comment names: `LA:919`, or the `laxchange-LA-919` that init
    writes, so a partner's .pub line or card line can be pasted as it is."""
    m = _INIT_COMMENT_RE.fullmatch(comment)
    return f"{m.group(1)}:{m.group(2)}" if m else comment


def read_authorized_keys(path: Path) -> list[tuple[str, paramiko.PKey]]:
    """(party, key) pairs from an OpenSSH authorized_keys file whose comments are party ids.

    One key per line, `ssh-ed25519 AAAA... LA:919`: the comment says which partner the key is.
    Options prefixes (`restrict,...`) are not supported.
    """
    pairs: list[tuple[str, paramiko.PKey]] = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read authorized keys {path}: {why}", code="server.authorized-keys",
                          hint="pass --authorized-keys with the partners' public key lines") from exc
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            key = paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
        except Exception as exc:
            raise ConfigError(f"{path}:{n}: not a public key line", code="server.authorized-keys",
                              hint=f"each line is `{_KEY_EXAMPLE}`: key type, key, and the partner's party id "
                                   "(options prefixes are not supported)") from exc
        party = _party_of_comment(" ".join(parts[2:]))
        if not PARTY_ID_RE.fullmatch(party):
            raise ConfigError(f"{path}:{n}: the key's comment {safe_label(party)!r} is not a party id",
                              code="server.authorized-keys",
                              hint=f"end the line with the partner's party id, e.g. `{_KEY_EXAMPLE}`: it says "
                                   "whose key it is and so which folder it may use")
        pairs.append((party, key))
    if not pairs:
        raise ConfigError(f"{path} has no keys", code="server.authorized-keys",
                          hint=f"add the partners' public keys, one a line: `{_KEY_EXAMPLE}`")
    return pairs


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    """An ed25519 host key; created (0600, unencrypted, as sshd's are) when the file is missing."""
    if not path.exists():
        create_ssh_identity(path, None, comment="laxchange-serve-sftp")
    try:
        return paramiko.Ed25519Key(filename=os.fspath(path))
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"cannot read host key {path}: {exc}", code="server.host-key",
                          hint="use an unencrypted ed25519 OpenSSH key (ssh-keygen -t ed25519 -N '')") from exc


def _status(exc: OSError) -> int:
    return {errno.ENOENT: SFTP_NO_SUCH_FILE, errno.EACCES: SFTP_PERMISSION_DENIED,
            errno.EPERM: SFTP_PERMISSION_DENIED, errno.ELOOP: SFTP_PERMISSION_DENIED}.get(exc.errno or 0, SFTP_FAILURE)


class _Refused(Exception):
    pass


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class OperationGate:
    """File operations pass while the server runs; `close` bars new ones and waits, bounded, for
    those under way. A connection's handler thread may still hold requests it read before the
    stop, and a stopped server must change nothing more on disk."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._busy = 0

    def enter(self) -> bool:
        """True if the operation may go ahead (then `leave` when it is done)."""
        with self._cond:
            if not self._open:
                return False
            self._busy += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Bars new operations; True once none is under way, False if one still is after `timeout`."""
        with self._cond:
            self._open = False
            return self._cond.wait_for(lambda: self._busy == 0, timeout)


class _Handle(paramiko.SFTPHandle):
    def __init__(self, fh: Any, flags: int) -> None:
        super().__init__(flags)
        self.readfile = fh
        self.writefile = fh

    def stat(self) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return _status(exc)


#: How deep a path lies inside the caller's own sub-folder: OWNER for the folder's owner (no limit).
OWNER = -1


class ChrootSftp(paramiko.SFTPServerInterface):
    """SFTP operations confined to the drop folders under `root`, as the logged-in party may see them."""

    def __init__(self, server: paramiko.ServerInterface, *, root: Path, gate: OperationGate | None = None,
                 **_: Any) -> None:
        super().__init__(server)
        self.root = root.resolve()
        self.gate = gate
        self.party: str | None = getattr(server, "party", None)
        self.access: ServerAccess | None = getattr(server, "access", None)
        self.conn: str = getattr(server, "conn", "?")

    # -- confinement -------------------------------------------------------------------------
    def _map(self, path: str) -> tuple[Path, int]:
        """The real path for a client path, and how deep it lies in the caller's own sub-folder
        (0 the folder, 1 a file in it; OWNER for the folder's owner). Refuses anything outside a
        drop folder, deeper than a sender may go, or passing through a symbolic link."""
        parts = [p for p in posixpath.normpath("/" + path.lstrip("/")).split("/") if p and p != "."]
        owner = self.access.folders.get(parts[0]) if self.access and parts else None
        if owner is None or self.party is None:
            raise _Refused()
        if owner == self.party:
            real_parts, depth = parts, OWNER
        else:
            if len(parts) > 2:
                raise _Refused()
            real_parts, depth = [parts[0], sender_folder(self.party), *parts[1:]], len(parts) - 1
        real = self.root
        for i, part in enumerate(real_parts):
            real = real / part
            if real.is_symlink():
                raise _Refused()
            if i == 1 and depth != OWNER:  # the sender's own sub-folder appears on first use
                with contextlib.suppress(FileExistsError):
                    os.mkdir(real, 0o700)
                if real.is_symlink() or not real.is_dir():
                    raise _Refused()
        return real, depth

    def _real(self, path: str) -> Path:
        return self._map(path)[0]

    def _file(self, path: str) -> Path:
        """A file the caller may open, remove or rename: any for the owner, its own for a sender."""
        real, depth = self._map(path)
        if depth not in (OWNER, 1):
            raise _Refused()
        return real

    def _note(self, op: str, real: Path | str, outcome: int | str = SFTP_OK) -> None:
        """Log one operation: the path on disk relative to the root, or for a refused client path
        that path as asked for."""
        where = (safe_label(real.relative_to(self.root).as_posix(), 120) if isinstance(real, Path)
                 else f"{safe_label(posixpath.normpath('/' + real.lstrip('/')), 120)} (not a folder it may use)")
        result = {SFTP_OK: "ok", SFTP_PERMISSION_DENIED: "refused", SFTP_NO_SUCH_FILE: "no such file"}.get(
            outcome, str(outcome)) if isinstance(outcome, int) else outcome
        log.info("conn %s %s %s %s: %s", self.conn, self.party, op, where, result)

    def _run(self, op: str, path: str, action: Any, mapper: Any = None) -> Any:
        """Map `path`, run `action(real)`, translate refusals and OSErrors, and log the outcome;
        once the server is stopping, refuse (the gate)."""
        real: Path | str = path
        if self.gate is not None and not self.gate.enter():
            self._note(op, real, "refused: the server is stopping")
            return SFTP_FAILURE
        try:
            real = (mapper or self._file)(path)
            out = action(real)
        except _Refused:
            self._note(op, real, SFTP_PERMISSION_DENIED)
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            status = _status(exc)
            self._note(op, real, status)
            return status
        finally:
            if self.gate is not None:
                self.gate.leave()
        self._note(op, real, out if isinstance(out, int) else SFTP_OK)
        return out

    # -- operations ------------------------------------------------------------------------
    def canonicalize(self, path: str) -> str:
        return posixpath.normpath("/" + path)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        sender = [False]

        def mapper(p: str) -> Path:
            real, depth = self._map(p)
            sender[0] = depth != OWNER
            return real

        def action(d: Path) -> list[paramiko.SFTPAttributes]:
            out = []
            for e in os.scandir(d):
                st = e.stat(follow_symlinks=False)
                if sender[0] and stat.S_ISDIR(st.st_mode):
                    continue  # a sender sees its files only, not the owner's processed/
                # A name that is not UTF-8 (surrogate-escaped here) goes out as its raw bytes, as
                # OpenSSH's sftp-server sends it: paramiko would fail to encode it and answer the
                # whole listing with a bare failure, which hides what is wrong.
                name: str | bytes = e.name if _is_utf8(e.name) else os.fsencode(e.name)
                out.append(paramiko.SFTPAttributes.from_stat(st, name))  # type: ignore[arg-type]
            return out

        return self._run("list", path, action, mapper)  # type: ignore[no-any-return]

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        return self.lstat(path)

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.lstat(self._real(path)))
        except _Refused:
            self._note("stat", path, SFTP_PERMISSION_DENIED)
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        def action(real: Path) -> paramiko.SFTPHandle | int:
            # The client's requested mode is ignored: files are the server owner's, private (0600),
            # never setuid or world-writable whatever an authenticated client asks for.
            fd = os.open(real, flags | os.O_NOFOLLOW | getattr(os, "O_BINARY", 0), 0o600)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return SFTP_PERMISSION_DENIED
            acc = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
            fmode = "rb" if acc == os.O_RDONLY else ("wb" if acc == os.O_WRONLY else "r+b")
            if flags & os.O_APPEND:
                fmode = "ab"
            return _Handle(os.fdopen(fd, fmode), flags)

        acc = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        return self._run("read" if acc == os.O_RDONLY else "write", path, action)  # type: ignore[no-any-return]

    def remove(self, path: str) -> int:
        def action(real: Path) -> int:
            if stat.S_ISDIR(os.lstat(real).st_mode):
                return SFTP_FAILURE
            os.unlink(real)
            return SFTP_OK

        return self._run("remove", path, action)  # type: ignore[no-any-return]

    def rename(self, oldpath: str, newpath: str) -> int:
        """Plain SFTP rename never replaces an existing file (hard link, then unlink)."""
        def action(old: Path) -> int:
            new = self._file(newpath)
            os.link(old, new, follow_symlinks=False)
            os.unlink(old)
            return SFTP_OK

        return self._run(f"rename to {safe_label(posixpath.basename(newpath))}", oldpath, action)  # type: ignore[no-any-return]

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        def action(old: Path) -> int:
            os.replace(old, self._file(newpath))
            return SFTP_OK

        return self._run(f"posix-rename to {safe_label(posixpath.basename(newpath))}", oldpath, action)  # type: ignore[no-any-return]

    def _owned(self, path: str) -> Path:
        """Folders are made and removed by the drop folder's owner only."""
        real, depth = self._map(path)
        if depth != OWNER:
            raise _Refused()
        return real

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        def action(real: Path) -> int:
            os.mkdir(real, 0o700)
            return SFTP_OK

        return self._run("mkdir", path, action, self._owned)  # type: ignore[no-any-return]

    def rmdir(self, path: str) -> int:
        def action(real: Path) -> int:
            os.rmdir(real)
            return SFTP_OK

        return self._run("rmdir", path, action, self._owned)  # type: ignore[no-any-return]

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> str | int:
        return SFTP_OP_UNSUPPORTED


class _KeyOnly(paramiko.ServerInterface):
    """One connection's authentication: public keys only; remembers which party logged in."""

    def __init__(self, access: ServerAccess, conn: str) -> None:
        self.access = access
        self.conn = conn
        #: the party of the key last checked; paramiko checks the key, then its signature, then
        #: answers, and ignores requests once authenticated, so after success it is the caller's.
        self.party: str | None = None
        self._announced = threading.Lock()

    def announce(self) -> None:
        """Log the successful login, once (from the first channel request, or the server's wait)."""
        if self._announced.acquire(blocking=False):
            log.info("conn %s authenticated as %s", self.conn, self.party)

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.party = self.access.party_for(key)
        if self.party is None:
            log.info("conn %s key %s refused: not an authorised key", self.conn, fingerprint(key))
            return AUTH_FAILED
        return AUTH_SUCCESSFUL

    def check_auth_password(self, username: str, password: str) -> int:
        log.info("conn %s password authentication refused (keys only)", self.conn)
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        self.announce()  # paramiko asks only once authenticated
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def _serve_folder(path: Path, what: str) -> None:
    """Create a folder the server serves (0700), or check the existing one is a real folder."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {exc.strerror}", code="server.root",
                          hint="choose a folder this account can create and write") from exc
    if path.is_symlink() or not path.is_dir():
        raise ConfigError(f"{what} {path} is not a folder", code="server.root",
                          hint="remove what is in the way, or choose another --root")


class EmbeddedSftpServer:
    """Serves the drop folders under `root` over SFTP on host:port until `stop()`; each connection
    runs in paramiko threads. The root and each drop folder are created (0700) if missing."""

    def __init__(self, root: Path, host_key: paramiko.PKey, access: ServerAccess, *,
                 host: str = "127.0.0.1", port: int = 0,
                 sftp_interface: type[paramiko.SFTPServerInterface] = ChrootSftp,
                 window_size: int = 64 * 1024 * 1024, max_packet_size: int = 256 * 1024,
                 auth_grace: float = 30.0) -> None:
        _serve_folder(root, "server root")
        for folder in access.folders:
            _serve_folder(root / folder, "drop folder")
        self.root = root
        self.auth_grace = auth_grace
        self.host_key = host_key
        self.access = access
        self.sftp_interface = sftp_interface
        self.window_size = window_size
        self.max_packet_size = max_packet_size
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.5)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._gate = OperationGate()
        self._thread: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.host_key)

    def start(self) -> EmbeddedSftpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="laxchange-sftpd", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        log.info("serving SFTP on %s:%s, root %s, drop folders %s", self.host, self.port, self.root,
                 ", ".join(f"{f} ({o})" for f, o in sorted(self.access.folders.items())))
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.settimeout(None)
            cid = f"#{next(self._ids)}"
            log.info("conn %s from %s:%s", cid, *peer[:2])
            threading.Thread(target=self._handle, args=(conn, cid), name="laxchange-sftpd-conn", daemon=True).start()

    def _handle(self, conn: socket.socket, cid: str = "?") -> None:
        """Handshake in its own thread, so a client that stalls cannot block the accept loop."""
        t = paramiko.Transport(conn, default_window_size=self.window_size,
                               default_max_packet_size=self.max_packet_size)
        t.add_server_key(self.host_key)
        t.set_subsystem_handler("sftp", paramiko.SFTPServer, sftp_si=self.sftp_interface, root=self.root,
                                gate=self._gate)
        with self._lock:
            self._transports = [x for x in self._transports if x.is_active()] + [t]
        who = _KeyOnly(self.access, cid)
        try:
            t.start_server(server=who)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.info("conn %s handshake failed: %s", cid, type(exc).__name__)
            t.close()
            return
        # A client that has not authenticated within the grace time is dropped, so idle
        # connections cannot pile up threads and descriptors.
        deadline = time.monotonic() + self.auth_grace
        while t.is_active() and not t.is_authenticated() and time.monotonic() < deadline:
            time.sleep(0.1)
        # (the auth handler remembers success after a quick client has already closed again)
        if t.is_authenticated() or (t.auth_handler is not None and t.auth_handler.is_authenticated()):
            who.announce()
        elif t.is_active():
            log.info("conn %s dropped: not authenticated within %gs", cid, self.auth_grace)
            t.close()
        else:
            log.info("conn %s closed before authenticating", cid)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() at once
        self._sock.close()
        if not self._gate.close(timeout=5):
            log.warning("stopping with a file operation still under way after 5s")
        with self._lock:
            transports = list(self._transports)
        for t in transports:
            t.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EmbeddedSftpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
