"""Open each transport implementation on a fresh remote folder, for the shared contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko

from laxchange.transport import Endpoint, LocalFolderTransport, OpenSshTransport, SftpSettings, SftpTransport, Transport
from laxchange.transport.server import EmbeddedSftpServer, ServerAccess
from tests.support.sshd import Sshd, keygen

#: Every SFTP backend, by name: each transport contract and fault test runs on each.
SFTP_BACKENDS: dict[str, type[SftpTransport]] = {"paramiko": SftpTransport, "openssh": OpenSshTransport}

#: The party the tests' client key belongs to on the embedded server; it owns the drop folders.
OWNER = "LA:100"


@contextmanager
def embedded_server(root: Path, key: paramiko.PKey, tmp: Path,
                    interface: type[paramiko.SFTPServerInterface] | None = None, *,
                    folders: tuple[str, ...] = ("drop",),
                    access: ServerAccess | None = None) -> Iterator[EmbeddedSftpServer]:
    """An embedded server on `root` where `key` is OWNER's and OWNER owns `folders` (or `access`)."""
    host_key = paramiko.Ed25519Key(filename=str(keygen(tmp / "embedded_host_key", "host")))
    kwargs = {"sftp_interface": interface} if interface else {}
    access = access or ServerAccess.build([(OWNER, key)], dict.fromkeys(folders, OWNER))
    server = EmbeddedSftpServer(root, host_key, access, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def open_transport(kind: str, remote: Path, tmp: Path, key: paramiko.PKey, sshd: Sshd | None = None,
                   settings: SftpSettings | None = None) -> Iterator[Transport]:
    """`kind` is "local", "embedded" or "sshd", the last two optionally with "-openssh" for that SFTP
    backend (paramiko otherwise); the remote folder is `remote` in every case."""
    kind, _, backend = kind.partition("-")
    SftpTransport = SFTP_BACKENDS[backend or "paramiko"]
    if kind == "local":
        with LocalFolderTransport(Endpoint("LA:1", f"file://{remote}")) as t:
            yield t
    elif kind == "embedded":
        root = remote.parent
        with embedded_server(root, key, tmp, folders=(remote.name,)) as srv:
            ep = Endpoint("LA:1", f"sftp://u@127.0.0.1:{srv.port}/{remote.name}", (srv.fingerprint,))
            with SftpTransport(ep, lambda: key, settings) as t:
                yield t
    else:
        assert sshd is not None
        ep = Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,))
        with SftpTransport(ep, lambda: key, settings) as t:
            yield t
