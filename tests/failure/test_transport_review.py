"""Regressions for the 2026-11-24 transport security review: each was a working attack before."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import paramiko
import pytest

from laxchange.errors import TransportError
from laxchange.transport import Endpoint, SftpSettings, SftpTransport
from laxchange.transport.base import name_problem
from laxchange.transport.hostkeys import verify_host_key
from laxchange.transport.server import ChrootSftp, OperationGate
from tests.support.sshd import ClientKey, Sshd
from tests.support.transport_fixtures import SFTP_BACKENDS, embedded_server, open_transport


@pytest.fixture(params=sorted(SFTP_BACKENDS))
def sftp_cls(request: pytest.FixtureRequest) -> type[SftpTransport]:
    """Each SFTP backend in turn: every test here runs on each."""
    return SFTP_BACKENDS[request.param]


def test_embedded_server_ignores_the_clients_file_mode(tmp_path: Path, client_key: ClientKey) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with embedded_server(root, client_key.key, tmp_path) as srv:
        t = paramiko.Transport(("127.0.0.1", srv.port))
        t.connect(username="u", pkey=client_key.key)
        sftp = paramiko.SFTPClient.from_transport(t)
        assert sftp is not None
        attrs = paramiko.SFTPAttributes()
        attrs.st_mode = 0o4777
        handle = sftp._request(paramiko.sftp.CMD_OPEN, "/drop/suid.bin",
                               paramiko.sftp.SFTP_FLAG_WRITE | paramiko.sftp.SFTP_FLAG_CREATE, attrs)
        assert handle
        t.close()
    assert stat.S_IMODE((root / "drop" / "suid.bin").stat().st_mode) == 0o600


def test_embedded_server_confines_dot_dot_to_its_root(tmp_path: Path, client_key: ClientKey) -> None:
    """The client refuses `..` in a URL; the server must confine a raw client that sends one anyway."""
    root = tmp_path / "srv" / "root"
    root.mkdir(parents=True)
    with embedded_server(root, client_key.key, tmp_path) as srv:
        t = paramiko.Transport(("127.0.0.1", srv.port))
        t.connect(username="u", pkey=client_key.key)
        sftp = paramiko.SFTPClient.from_transport(t)
        assert sftp is not None
        with sftp.open("/../../drop/p.lax", "wb") as fh:
            fh.write(b"x")
        t.close()
    assert (root / "drop" / "p.lax").exists() and not (tmp_path / "p.lax").exists()
    assert not (tmp_path / "srv" / "p.lax").exists()


def test_embedded_server_drops_clients_that_never_authenticate(tmp_path: Path, client_key: ClientKey) -> None:
    from laxchange.transport.server import EmbeddedSftpServer, ServerAccess, load_or_create_host_key

    root = tmp_path / "root"
    root.mkdir()
    access = ServerAccess.build([("LA:100", client_key.key)], {"drop": "LA:100"})
    srv = EmbeddedSftpServer(root, load_or_create_host_key(tmp_path / "hk"), access, auth_grace=0.5).start()
    try:
        t = paramiko.Transport(("127.0.0.1", srv.port))
        t.start_client(timeout=10)
        deadline = time.monotonic() + 10
        while t.is_active() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not t.is_active(), "an unauthenticated connection must not be held open"
    finally:
        srv.stop()


def test_a_request_read_before_stop_is_not_carried_out_after_it(tmp_path: Path, client_key: ClientKey) -> None:
    """stop() means the server changes nothing more on disk: a move it had read and was still
    handling when stop() was called is refused, not made after stop() has returned (a stopped
    demo server went on renaming files in a folder the next run had taken over)."""
    root = tmp_path / "root"
    (root / "drop" / "processed").mkdir(parents=True)
    (root / "drop" / "p.lax").write_bytes(b"pep")
    reached, release, finished = threading.Event(), threading.Event(), threading.Event()
    answers: list[int] = []

    class Slow(ChrootSftp):
        def posix_rename(self, oldpath: str, newpath: str) -> int:
            reached.set()
            release.wait(10)
            try:
                answers.append(super().posix_rename(oldpath, newpath))
                return answers[-1]
            finally:
                finished.set()

    with embedded_server(root, client_key.key, tmp_path, Slow) as srv:
        t = paramiko.Transport(("127.0.0.1", srv.port))
        t.connect(username="u", pkey=client_key.key)
        sftp = paramiko.SFTPClient.from_transport(t)
        assert sftp is not None
        sftp._async_request(type(None), paramiko.sftp.CMD_EXTENDED, "posix-rename@openssh.com",
                            "/drop/p.lax", "/drop/processed/p.lax")
        assert reached.wait(10)
        srv.stop()
        release.set()
        assert finished.wait(10)
        t.close()
    assert answers == [paramiko.sftp.SFTP_FAILURE]
    assert (root / "drop" / "p.lax").read_bytes() == b"pep"
    assert not (root / "drop" / "processed" / "p.lax").exists()


def test_the_gate_waits_for_operations_under_way_and_then_bars_new_ones() -> None:
    gate = OperationGate()
    assert gate.enter()
    closed: list[bool] = []
    closer = threading.Thread(target=lambda: closed.append(gate.close(10.0)))
    closer.start()
    closer.join(0.2)
    assert closer.is_alive() and not closed, "close() returned while an operation was under way"
    assert not gate.enter(), "a new operation passed a closing gate"
    gate.leave()
    closer.join(10)
    assert closed == [True]
    assert not gate.enter()
    stuck = OperationGate()
    assert stuck.enter()
    assert stuck.close(0.05) is False  # bounded: an operation that never ends does not hold stop() up


@pytest.mark.parametrize("kind", ["embedded", "sshd", "embedded-openssh", "sshd-openssh"])
def test_a_file_over_the_size_limit_is_not_downloaded(tmp_path: Path, client_key: ClientKey, sshd: Sshd,
                                                      kind: str) -> None:
    remote = tmp_path / "drop"
    remote.mkdir()
    (remote / "big.lax").write_bytes(os.urandom(4096))
    settings = SftpSettings(max_file_bytes=1024)
    with (open_transport(kind, remote, tmp_path, client_key.key, sshd, settings) as t,
          pytest.raises(TransportError) as exc):
        t.get("big.lax", tmp_path / "big.lax")
    assert exc.value.code == "remote.too-large" and not exc.value.transient
    assert not (tmp_path / "big.lax").exists()


@pytest.mark.parametrize("kind", ["embedded", "sshd", "embedded-openssh", "sshd-openssh"])
def test_a_non_utf8_name_is_a_clear_transport_error(tmp_path: Path, client_key: ClientKey, sshd: Sshd,
                                                    kind: str) -> None:
    """Issue 10: the embedded server failed the whole listing (remote.failure); it must send the
    name's bytes as OpenSSH's sftp-server does, so the client reports remote.bad-name either way."""
    remote = tmp_path / "srv" / "drop"
    remote.mkdir(parents=True)
    (remote / "good.lax").write_bytes(b"x")
    with open(os.path.join(os.fsencode(remote), b"caf\xe9.lax"), "wb") as fh:
        fh.write(b"y")
    with open_transport(kind, remote, tmp_path, client_key.key, sshd) as t, pytest.raises(TransportError) as exc:
        t.list()
    assert exc.value.code == "remote.bad-name", exc.value.to_dict()
    assert not exc.value.transient


def test_known_hosts_markers_fail_closed(tmp_path: Path, client_key: ClientKey) -> None:
    key = client_key.key
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@revoked [sftp.example]:2222 {key.get_name()} {key.get_base64()}\n"
                  f"[sftp.example]:2222 {key.get_name()} {key.get_base64()}\n")
    ep = Endpoint("LA:1", "sftp://u@sftp.example:2222/drop", known_hosts_file=kh)
    with pytest.raises(TransportError) as exc:
        verify_host_key(ep, "sftp.example", 2222, key)
    assert exc.value.code == "host-key.known-hosts"


def test_names_leave_room_for_the_local_temporary_name() -> None:
    assert name_problem("a" * 200 + ".lax") == "name too long"
    assert name_problem("a" * 190 + ".lax") is None


class _Trickle(ChrootSftp):
    """A hostile server: drop/slow.lax is 100 bytes, served one byte per 0.1 s."""

    def open(self, path, flags, attr):  # type: ignore[no-untyped-def]
        handle = super().open(path, flags, attr)
        if isinstance(handle, int) or not path.endswith("slow.lax"):
            return handle
        inner_read = handle.read

        def read(offset: int, length: int) -> bytes | int:
            time.sleep(0.1)
            data = inner_read(offset, 1)
            return data

        handle.read = read  # type: ignore[method-assign]
        return handle


def test_a_trickling_server_is_abandoned_in_bounded_time(sftp_cls: type[SftpTransport],
                                                         tmp_path: Path, client_key: ClientKey) -> None:
    root = tmp_path / "root"
    (root / "drop").mkdir(parents=True)
    (root / "drop" / "slow.lax").write_bytes(b"x" * 100)
    # 100 bytes may take 2 + 0.1 s (the trickle needs 10); 2 s, not less, as the same timeout also
    # bounds connecting, which a loaded CI machine can slow to a few hundred ms
    settings = SftpSettings(timeout=2.0, min_rate=1000)
    with embedded_server(root, client_key.key, tmp_path, _Trickle) as srv:
        ep = Endpoint("LA:1", f"sftp://u@127.0.0.1:{srv.port}/drop", (srv.fingerprint,))
        t0 = time.monotonic()
        with sftp_cls(ep, lambda: client_key.key, settings) as t, pytest.raises(TransportError) as exc:
            t.get("slow.lax", tmp_path / "slow.lax")
        elapsed = time.monotonic() - t0
    assert exc.value.code == "ssh.timeout" and elapsed < 8, elapsed
    assert not (tmp_path / "slow.lax").exists()


def test_local_write_failures_are_not_blamed_on_the_server(tmp_path: Path) -> None:
    from laxchange.transport.base import LocalSink

    not_a_dir = tmp_path / "inbox"
    not_a_dir.write_bytes(b"")  # a file where the inbox folder should be
    with pytest.raises(TransportError) as exc:
        LocalSink(not_a_dir / "a.lax", 10, None)
    assert exc.value.code == "local.io" and "inbox" in (exc.value.hint or "")


class _SlowWrites(ChrootSftp):
    """A server that acknowledges each write after 0.3 s: never stalled, never finished."""

    def open(self, path, flags, attr):  # type: ignore[no-untyped-def]
        handle = super().open(path, flags, attr)
        if isinstance(handle, int):
            return handle
        inner_write = handle.write

        def write(offset: int, data: bytes) -> int:
            time.sleep(0.3)
            return inner_write(offset, data)

        handle.write = write  # type: ignore[method-assign]
        return handle


def test_an_upload_to_a_server_acknowledging_at_a_trickle_is_bounded(sftp_cls: type[SftpTransport],
                                                                     tmp_path: Path, client_key: ClientKey) -> None:
    root = tmp_path / "root"
    (root / "drop").mkdir(parents=True)
    src = tmp_path / "a.lax"
    src.write_bytes(os.urandom(512 * 1024))  # 32 writes of 16 KiB: about 10 s at this server's pace
    settings = SftpSettings(timeout=2.0, min_rate=512 * 1024, chunk_size=16 * 1024)  # 2 s: as above
    with embedded_server(root, client_key.key, tmp_path, _SlowWrites) as srv:
        ep = Endpoint("LA:1", f"sftp://u@127.0.0.1:{srv.port}/drop", (srv.fingerprint,))
        t0 = time.monotonic()
        with sftp_cls(ep, lambda: client_key.key, settings) as t, pytest.raises(TransportError) as exc:
            t.put(src, "a.lax")
        elapsed = time.monotonic() - t0
    assert exc.value.code == "ssh.timeout" and elapsed < 8, elapsed
    assert [n for n in os.listdir(root / "drop") if not n.startswith(".")] == []
