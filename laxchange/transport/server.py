"""An embedded SFTP server (paramiko's server side) for demos and single-machine setups.

Key authentication only, loopback by default, and every path is confined to one root folder:
paths are resolved under the root, symbolic links are refused rather than followed, renames
never overwrite (except posix-rename, which by definition replaces).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import posixpath
import socket
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_OP_UNSUPPORTED, SFTP_PERMISSION_DENIED

from laxchange.errors import ConfigError
from laxchange.transport.hostkeys import fingerprint
from laxchange.transport.identity import create_ssh_identity


def read_authorized_keys(path: Path) -> list[paramiko.PKey]:
    """Public keys from an OpenSSH authorized_keys file (options prefixes are not supported)."""
    keys: list[paramiko.PKey] = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read authorized keys {path}: {exc.strerror}", code="server.authorized-keys",
                          hint="pass --authorized-keys with the clients' .pub lines") from exc
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            keys.append(paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1])))
        except Exception as exc:
            raise ConfigError(f"{path}:{n}: not a public key line", code="server.authorized-keys",
                              hint="each line is `ssh-ed25519 AAAA... comment`") from exc
    if not keys:
        raise ConfigError(f"{path} has no keys", code="server.authorized-keys", hint="add the clients' public keys")
    return keys


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


class ChrootSftp(paramiko.SFTPServerInterface):
    """SFTP operations confined to `root`."""

    def __init__(self, server: paramiko.ServerInterface, *, root: Path, **_: Any) -> None:
        super().__init__(server)
        self.root = root.resolve()

    def _real(self, path: str) -> Path:
        """Map a client path to a path under root, refusing any symbolic link on the way."""
        rel = posixpath.normpath("/" + path).lstrip("/")
        real = self.root
        for part in [p for p in rel.split("/") if p and p != "."]:
            real = real / part
            if real.is_symlink():
                raise _Refused()
        return real

    def canonicalize(self, path: str) -> str:
        return posixpath.normpath("/" + path)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        try:
            d = self._real(path)
            out = []
            for e in os.scandir(d):
                # A name that is not UTF-8 (surrogate-escaped here) goes out as its raw bytes, as
                # OpenSSH's sftp-server sends it: paramiko would fail to encode it and answer the
                # whole listing with a bare failure, which hides what is wrong.
                name: str | bytes = e.name if _is_utf8(e.name) else os.fsencode(e.name)
                attr = paramiko.SFTPAttributes.from_stat(e.stat(follow_symlinks=False), name)  # type: ignore[arg-type]
                out.append(attr)
            return out
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        return self.lstat(path)

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.lstat(self._real(path)))
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        try:
            real = self._real(path)
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
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def remove(self, path: str) -> int:
        try:
            real = self._real(path)
            if stat.S_ISDIR(os.lstat(real).st_mode):
                return SFTP_FAILURE
            os.unlink(real)
            return SFTP_OK
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def rename(self, oldpath: str, newpath: str) -> int:
        """Plain SFTP rename never replaces an existing file (hard link, then unlink)."""
        try:
            old, new = self._real(oldpath), self._real(newpath)
            os.link(old, new, follow_symlinks=False)
            os.unlink(old)
            return SFTP_OK
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        try:
            os.replace(self._real(oldpath), self._real(newpath))
            return SFTP_OK
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        try:
            os.mkdir(self._real(path), 0o700)
            return SFTP_OK
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def rmdir(self, path: str) -> int:
        try:
            os.rmdir(self._real(path))
            return SFTP_OK
        except _Refused:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _status(exc)

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> str | int:
        return SFTP_OP_UNSUPPORTED


class _KeyOnly(paramiko.ServerInterface):
    def __init__(self, authorized: Sequence[paramiko.PKey]) -> None:
        self._allowed = {k.asbytes() for k in authorized}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return AUTH_SUCCESSFUL if key.asbytes() in self._allowed else AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class EmbeddedSftpServer:
    """Serves `root` over SFTP on host:port until `stop()`; each connection runs in paramiko threads."""

    def __init__(self, root: Path, host_key: paramiko.PKey, authorized: Sequence[paramiko.PKey], *,
                 host: str = "127.0.0.1", port: int = 0,
                 sftp_interface: type[paramiko.SFTPServerInterface] = ChrootSftp,
                 window_size: int = 64 * 1024 * 1024, max_packet_size: int = 256 * 1024,
                 auth_grace: float = 30.0) -> None:
        if not root.is_dir():
            raise ConfigError(f"server root {root} is not a folder", code="server.root", hint="create it first")
        self.root = root
        self.auth_grace = auth_grace
        self.host_key = host_key
        self.authorized = authorized
        self.sftp_interface = sftp_interface
        self.window_size = window_size
        self.max_packet_size = max_packet_size
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.5)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.host_key)

    def start(self) -> EmbeddedSftpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="laxchange-sftpd", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.settimeout(None)
            threading.Thread(target=self._handle, args=(conn,), name="laxchange-sftpd-conn", daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        """Handshake in its own thread, so a client that stalls cannot block the accept loop."""
        t = paramiko.Transport(conn, default_window_size=self.window_size,
                               default_max_packet_size=self.max_packet_size)
        t.add_server_key(self.host_key)
        t.set_subsystem_handler("sftp", paramiko.SFTPServer, sftp_si=self.sftp_interface, root=self.root)
        with self._lock:
            self._transports = [x for x in self._transports if x.is_active()] + [t]
        try:
            t.start_server(server=_KeyOnly(self.authorized))
        except (paramiko.SSHException, EOFError, OSError):
            t.close()
            return
        # A client that has not authenticated within the grace time is dropped, so idle
        # connections cannot pile up threads and descriptors.
        deadline = time.monotonic() + self.auth_grace
        while t.is_active() and not t.is_authenticated() and time.monotonic() < deadline:
            time.sleep(0.1)
        if t.is_active() and not t.is_authenticated():
            t.close()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() at once
        self._sock.close()
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
