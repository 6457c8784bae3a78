"""`LinkShare`: endpoints on one server under one login share one SSH connection (the nightly run's
own drop folder and a partner's), on each SFTP backend, against a real sshd; a link that failed or
was closed is never handed out again, and what differs in the pinned keys or login is not shared."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import ClassVar

import paramiko
import pytest

from laxchange.errors import TransportError
from laxchange.transport import Endpoint, LinkShare, RetryingTransport, RetryPolicy, SftpSettings, SftpTransport
from laxchange.transport.server import ChrootSftp
from tests.support.sshd import ClientKey, Sshd, fingerprint_of, keygen
from tests.support.transport_fixtures import SFTP_BACKENDS, embedded_server

FAST = SftpSettings(timeout=5.0)


@pytest.fixture(params=sorted(SFTP_BACKENDS))
def sftp_cls(request: pytest.FixtureRequest) -> type[SftpTransport]:
    return SFTP_BACKENDS[request.param]


def _logins(server: Sshd) -> int:
    return server.log.read_text().count("Accepted publickey")


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    own, partner = tmp_path / "own", tmp_path / "partner"
    own.mkdir()
    partner.mkdir()
    return own, partner


def test_two_folders_on_one_login_share_one_connection_until_both_close(
        sftp_cls: type[SftpTransport], tmp_path: Path, client_key: ClientKey) -> None:
    own, partner = _folders(tmp_path)
    (own / "a.lax").write_bytes(b"for us")
    f = tmp_path / "r.lax"
    f.write_bytes(b"for them")
    with Sshd(tmp_path / "sshd", [client_key.pub]) as server:
        links = LinkShare()
        ours = sftp_cls(Endpoint("URN:100001", server.url(own), (server.fingerprint,)), lambda: client_key.key, FAST)
        theirs = sftp_cls(Endpoint("LA:919", server.url(partner), (server.fingerprint,)), lambda: client_key.key,
                          FAST)
        ours.share(links)
        theirs.share(links)
        ours.open()
        assert [r.name for r in ours.list().files] == ["a.lax"]
        theirs.open()
        assert theirs.host_key_fingerprint == ours.host_key_fingerprint == server.fingerprint
        theirs.put(f, "r.lax")
        assert (partner / "r.lax").read_bytes() == b"for them", "each keeps its own folder"
        assert links.connects == 1 and _logins(server) == 1
        theirs.close()
        assert [r.name for r in ours.list().files] == ["a.lax"], "the other holder's link lives on"
        again = sftp_cls(Endpoint("LA:919", server.url(partner), (server.fingerprint,)), lambda: client_key.key,
                         FAST)
        again.share(links)
        again.open()  # a closed link is never handed out again: a fresh one
        assert links.connects == 2 and _logins(server) == 2
        assert [r.name for r in again.list().files] == ["r.lax"]
        ours.close()
        again.close()


def test_other_pins_are_not_shared(sftp_cls: type[SftpTransport], tmp_path: Path, client_key: ClientKey) -> None:
    own, partner = _folders(tmp_path)
    other = keygen(tmp_path / "other_host_key", "other")
    with Sshd(tmp_path / "sshd", [client_key.pub]) as server:
        links = LinkShare()
        ours = sftp_cls(Endpoint("URN:100001", server.url(own), (server.fingerprint,)), lambda: client_key.key, FAST)
        ours.share(links)
        ours.open()
        wrong = sftp_cls(Endpoint("LA:919", server.url(partner), (fingerprint_of(Path(str(other) + ".pub")),)),
                         lambda: client_key.key, FAST)
        wrong.share(links)
        with pytest.raises(TransportError) as e:
            wrong.open()  # its own handshake, which finds the server's key is not the one it pinned
        assert "host" in e.value.code, e.value.code
        assert links.connects == 1
        ours.close()


def test_a_shared_link_that_died_is_reconnected(sftp_cls: type[SftpTransport], tmp_path: Path,
                                                client_key: ClientKey) -> None:
    own, partner = _folders(tmp_path)
    first = Sshd(tmp_path / "sshd", [client_key.pub]).start()
    servers = [first]
    links = LinkShare()

    def factory(folder: Path, party: str) -> SftpTransport:
        t = sftp_cls(Endpoint(party, first.url(folder), (first.fingerprint,)), lambda: client_key.key, FAST)
        t.share(links)
        return t

    def restart(delay: float) -> None:
        if servers[-1] is first:
            servers.append(Sshd(tmp_path / "sshd2", [client_key.pub], host_key=first.host_key,
                                port=first.port).start())

    try:
        ours = RetryingTransport(lambda: factory(own, "URN:100001"), RetryPolicy(attempts=3), sleep=restart,
                                 rng=random.Random(1))
        theirs = RetryingTransport(lambda: factory(partner, "LA:919"), RetryPolicy(attempts=3), sleep=restart,
                                   rng=random.Random(1))
        ours.list()
        theirs.list()
        assert links.connects == 1
        first.kill()
        assert theirs.list().files == [], "reconnected after the server came back"
        assert theirs.connects == 2
        assert ours.list().files == [], "the other holder finds its link dead, and takes the new one"
        assert links.connects == 2, "one new connection for both"
        ours.close()
        theirs.close()
    finally:
        for s in servers:
            s.stop()


class _StallsOnce(ChrootSftp):
    """Takes 3 s to answer one LSTAT (of `slow.lax`), once: a server stuck on one request."""

    stalled: ClassVar[list[bool]] = []

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        if path.endswith("/slow.lax") and not self.stalled:
            self.stalled.append(True)
            time.sleep(3)
        return super().lstat(path)


def test_a_link_given_up_with_a_reply_owed_is_not_kept_by_the_other_holder(
        sftp_cls: type[SftpTransport], tmp_path: Path, client_key: ClientKey) -> None:
    """One endpoint times out waiting for a reply and its connection is dropped (the retry's way):
    the shared link itself must end, or the other endpoint's next request waits behind the owed
    reply on it and times out too, where a connection of its own would have answered at once."""
    root = tmp_path / "root"
    for d in ("own", "partner"):
        (root / d).mkdir(parents=True)
    (root / "own" / "slow.lax").write_bytes(b"x")
    (root / "partner" / "r.lax").write_bytes(b"y")
    _StallsOnce.stalled.clear()
    settings = SftpSettings(timeout=1.0)
    links = LinkShare()
    with embedded_server(root, client_key.key, tmp_path, _StallsOnce, folders=("own", "partner")) as srv:

        def factory(folder: str, party: str) -> SftpTransport:
            t = sftp_cls(Endpoint(party, f"sftp://u@127.0.0.1:{srv.port}/{folder}", (srv.fingerprint,)),
                         lambda: client_key.key, settings)
            t.share(links)
            return t

        retried: list[str] = []
        ours = RetryingTransport(lambda: factory("own", "URN:100001"), RetryPolicy(attempts=1), sleep=lambda s: None,
                                 rng=random.Random(1))
        theirs = RetryingTransport(lambda: factory("partner", "LA:919"), RetryPolicy(attempts=3),
                                   sleep=lambda s: None, rng=random.Random(1),
                                   on_retry=lambda n, exc, delay: retried.append(exc.code))
        assert [f.name for f in theirs.list().files] == ["r.lax"]
        with pytest.raises(TransportError) as e:
            ours.get("slow.lax", tmp_path / "slow.lax")
        assert e.value.code == "ssh.timeout"
        assert [f.name for f in theirs.list().files] == ["r.lax"]
        ours.close()
        theirs.close()
    assert "ssh.timeout" not in retried, f"waited behind the other endpoint's owed reply: {retried}"
