"""Issue 10, item 9: an authorised key is one partner's, confined to its own sub-folder.

Party X (LA:919) and party Y (LA:920) both deliver to the school's (URN:123456) drop folder.
X must not be able to list, read, rename or delete Y's files, on the embedded server (which
tells them apart by key) and on a real OpenSSH sshd (per-user `Match User` + `ChrootDirectory`).
The owner collects from every sender's sub-folder and learns which one each file came from.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from laxchange.errors import TransportError
from laxchange.transport import Endpoint, Runner, SftpSettings, SftpTransport, StaticEndpoints, collect
from laxchange.transport.base import folder_sender, sender_folder
from laxchange.transport.server import ServerAccess
from tests.support.sshd import Sshd, keygen
from tests.support.transport_fixtures import SFTP_BACKENDS, embedded_server


@pytest.fixture(params=sorted(SFTP_BACKENDS))
def sftp_cls(request: pytest.FixtureRequest) -> type[SftpTransport]:
    """Each SFTP backend in turn: every test here runs on each."""
    return SFTP_BACKENDS[request.param]


FAST = SftpSettings(timeout=5.0)
SCHOOL, X, Y = "URN:123456", "LA:919", "LA:920"


def _key(tmp: Path, name: str) -> paramiko.PKey:
    return paramiko.Ed25519Key(filename=str(keygen(tmp / name, name)))


def _file(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / "out" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    return p


def _raw(port: int, user: str, key: paramiko.PKey) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    t = paramiko.Transport(("127.0.0.1", port))
    t.connect(username=user, pkey=key)
    sftp = paramiko.SFTPClient.from_transport(t)
    assert sftp is not None
    return t, sftp


def _attempts(sftp: paramiko.SFTPClient, y_paths: list[str], own: str) -> dict[str, Callable[[], object]]:
    """Every way X might reach a file of Y's, by each path that could lead to it."""
    out: dict[str, Callable[[], object]] = {}
    for p in y_paths:
        folder = p.rsplit("/", 1)[0] or "/"
        out[f"list {folder}"] = lambda f=folder: sftp.listdir(f)
        out[f"read {p}"] = lambda p=p: sftp.open(p, "rb").read()
        out[f"stat {p}"] = lambda p=p: sftp.lstat(p)
        out[f"rename {p}"] = lambda p=p: sftp.rename(p, f"{own}/stolen.lax")
        out[f"posix-rename {p}"] = lambda p=p: sftp.posix_rename(p, f"{own}/stolen.lax")
        out[f"delete {p}"] = lambda p=p: sftp.remove(p)
        out[f"overwrite {p}"] = lambda p=p: sftp.open(p, "wb").write(b"X was here")
    return out


def _assert_all_refused(attempts: dict[str, Callable[[], object]]) -> None:
    allowed = []
    for what, attempt in attempts.items():
        try:
            attempt()
        except OSError:
            continue
        allowed.append(what)
    assert allowed == [], f"party X could: {allowed}"


def test_sender_folder_names_round_trip() -> None:
    from laxchange.transport.base import PARTY_ID_RE
    from laxchange.trust.keystore import PARTY_RE

    assert PARTY_ID_RE.pattern == PARTY_RE.pattern, "the transport's copy of the party id pattern drifted"
    assert sender_folder("LA:919") == "LA_919" and folder_sender("LA_919") == "LA:919"
    assert sender_folder("URN:123456") == "URN_123456" and folder_sender("URN_123456") == "URN:123456"
    assert folder_sender("processed") is None and folder_sender("LA_91") is None
    with pytest.raises(ValueError):
        sender_folder("../x")


def test_embedded_server_confines_each_key_to_its_partys_own_folder(sftp_cls: type[SftpTransport],
                                                                    tmp_path: Path) -> None:
    kx, ky, ks = _key(tmp_path, "x"), _key(tmp_path, "y"), _key(tmp_path, "school")
    root = tmp_path / "root"
    access = ServerAccess.build([(X, kx), (Y, ky), (SCHOOL, ks)], {"school": SCHOOL})
    with embedded_server(root, ks, tmp_path, access=access) as srv:
        card_url = f"sftp://school@127.0.0.1:{srv.port}/school"  # what every sender uses, unchanged
        ep = Endpoint(SCHOOL, card_url, (srv.fingerprint,))
        with sftp_cls(ep, lambda: ky, FAST) as ty:
            ty.put(_file(tmp_path, "y.lax", b"Y's package"), "y.lax")
        with sftp_cls(ep, lambda: kx, FAST) as tx:
            tx.put(_file(tmp_path, "x.lax", b"X's package"), "x.lax")
            listing = tx.list()
            assert (listing.names(), listing.folders) == (["x.lax"], [])  # only its own files
            with pytest.raises(TransportError) as exc:
                tx.get("y.lax", tmp_path / "stolen.lax")
            assert exc.value.code == "remote.missing" and "/school/y.lax" in exc.value.message
        assert (root / "school" / "LA_920" / "y.lax").read_bytes() == b"Y's package"
        assert (root / "school" / "LA_919" / "x.lax").read_bytes() == b"X's package"

        t, sftp = _raw(srv.port, "school", kx)  # X as a raw client that ignores laxchange's own checks
        try:
            y_paths = ["/school/LA_920/y.lax", "/school/../school/LA_920/y.lax", "/LA_920/y.lax",
                       "/school/LA_920/../LA_920/y.lax", "//school/LA_920/y.lax"]
            _assert_all_refused(_attempts(sftp, y_paths, "/school"))
            _assert_all_refused({"list /": lambda: sftp.listdir("/"),
                                 "mkdir": lambda: sftp.mkdir("/school/LA_920"),
                                 "mkdir own": lambda: sftp.mkdir("/school/sub"),
                                 "rmdir": lambda: sftp.rmdir("/school/LA_920")})
            # what a sender needs: list, read back, rename and remove its own files
            assert sftp.listdir("/school") == ["x.lax"]
            assert sftp.open("/school/x.lax", "rb").read() == b"X's package"
            sftp.rename("/school/x.lax", "/school/x2.lax")
            sftp.rename("/school/x2.lax", "/school/x.lax")
        finally:
            t.close()
        assert (root / "school" / "LA_920" / "y.lax").read_bytes() == b"Y's package"
        assert sorted(os.listdir(root / "school" / "LA_920")) == ["y.lax"]

        # the owner sees everything, collects from every sender's folder, and learns whose it was
        runner = Runner(StaticEndpoints({SCHOOL: ep}), lambda e: sftp_cls(e, lambda: ks, FAST))
        result = collect(runner, SCHOOL, tmp_path / "inbox")
        assert result.ok, result.to_dict()
        assert sorted((f.name, f.folder, f.sender) for f in result.files) == [
            ("x.lax", "LA_919", X), ("y.lax", "LA_920", Y)]
        assert result.to_dict()["files"][0]["sender_folder_of"] == X
        assert (root / "school" / "LA_919" / "processed" / "x.lax").exists()
        assert (root / "school" / "LA_920" / "processed" / "y.lax").exists()
        with sftp_cls(ep, lambda: kx, FAST) as tx:
            assert tx.list().names() == []  # collected: X can see its delivery is no longer waiting


# -- the same confinement with OpenSSH ----------------------------------------------------------

#: Two existing system accounts stand in for the two partners' logins (sshd looks users up in
#: /etc/passwd; the test creates none).
USERS = {X: "daemon", Y: "bin"}


@contextlib.contextmanager
def _chroot_base() -> Iterator[Path]:
    """ChrootDirectory wants every component root-owned and not group/other-writable, which rules
    out /tmp (mode 1777): the tree is made under /run, and removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="laxchange-chroot-", dir="/run"))
    try:
        base.chmod(0o755)  # partners' sshd sessions read their authorized_keys under here
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_sshd_chroot_per_partner_confines_each_partner(sftp_cls: type[SftpTransport], tmp_path: Path) -> None:
    assert os.geteuid() == 0, "sshd's ChrootDirectory needs root (the tests run sshd as root)"
    with _chroot_base() as base:
        keys = {party: keygen(base / f"key-{party.replace(':', '_')}", party) for party in (X, Y, SCHOOL)}
        ak = base / "authorized_keys"
        ak.mkdir(mode=0o755)
        for party, user in USERS.items():
            (ak / user).write_text(Path(f"{keys[party]}.pub").read_text())
        (ak / "root").write_text(Path(f"{keys[SCHOOL]}.pub").read_text())  # the school's own login
        for f in ak.iterdir():
            f.chmod(0o644)
        drop = base / "drop" / "school"  # the school's drop folder: root-owned, 0711 (no listing)
        drop.mkdir(parents=True)
        drop.parent.chmod(0o755)
        drop.chmod(0o711)
        blocks = ""
        for party, user in USERS.items():
            sub = drop / sender_folder(party)
            sub.mkdir(mode=0o700)
            pw = pwd.getpwnam(user)
            os.chown(sub, pw.pw_uid, pw.pw_gid)
            blocks += (f"Match User {user}\n    ChrootDirectory {drop}\n"
                       f"    ForceCommand internal-sftp -d /{sender_folder(party)}\n"
                       "    AllowTcpForwarding no\n    X11Forwarding no\n")
        server = Sshd(base / "sshd", [], authorized_keys_file=f"{ak}/%u", match_blocks=blocks).start()
        try:
            pkeys = {p: paramiko.Ed25519Key(filename=str(k)) for p, k in keys.items()}

            def endpoint(party: str) -> Endpoint:
                folder = sender_folder(party)
                return Endpoint(SCHOOL, f"sftp://{USERS[party]}@127.0.0.1:{server.port}/{folder}",
                                (server.fingerprint,))

            with sftp_cls(endpoint(Y), lambda: pkeys[Y], FAST) as ty:
                ty.put(_file(tmp_path, "y.lax", b"Y's package"), "y.lax")
            with sftp_cls(endpoint(X), lambda: pkeys[X], FAST) as tx:
                tx.put(_file(tmp_path, "x.lax", b"X's package"), "x.lax")
                assert tx.list().names() == ["x.lax"]
            assert (drop / "LA_920" / "y.lax").read_bytes() == b"Y's package"

            t, sftp = _raw(server.port, USERS[X], pkeys[X])
            try:
                y_paths = ["/LA_920/y.lax", "/../LA_920/y.lax", "/../../../LA_920/y.lax",
                           f"{drop}/LA_920/y.lax", "/LA_919/../LA_920/y.lax"]
                _assert_all_refused(_attempts(sftp, y_paths, "/LA_919"))
                _assert_all_refused({"list /": lambda: sftp.listdir("/"),
                                     "list outside": lambda: sftp.listdir(str(base))})
                assert sftp.listdir("/LA_919") == ["x.lax"]
            finally:
                t.close()
            assert (drop / "LA_920" / "y.lax").read_bytes() == b"Y's package"
            assert sorted(os.listdir(drop / "LA_920")) == ["y.lax"]

            # the school logs in without a chroot and collects from every partner's sub-folder
            own = Endpoint(SCHOOL, f"sftp://root@127.0.0.1:{server.port}{drop}", (server.fingerprint,))
            runner = Runner(StaticEndpoints({SCHOOL: own}), lambda e: sftp_cls(e, lambda: pkeys[SCHOOL], FAST))
            result = collect(runner, SCHOOL, tmp_path / "inbox")
            assert result.ok, result.to_dict()
            assert sorted((f.name, f.sender) for f in result.files) == [("x.lax", X), ("y.lax", Y)]
            assert (drop / "LA_919" / "processed" / "x.lax").exists()
        finally:
            server.stop()
