"""The openssh SFTP backend's own promises: a post-quantum key exchange where the server has one,
our key never on disk, the previous key during a rotation, and the home's choice of backend."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

from laxchange.errors import TransportError
from laxchange.exchange.endpoints import ConfigEndpoints, DirectoryEndpoints
from laxchange.home import Home
from laxchange.transport import Endpoint, OpenSshTransport, SftpSettings, SftpTransport
from laxchange.transport.openssh import PQ_KEX, kex_preference, supported_kex
from laxchange.transport.ops import sftp_class
from tests.support.sshd import ClientKey, Sshd, keygen
from tests.support.transport_fixtures import embedded_server

FAST = SftpSettings(timeout=5.0)


def test_a_post_quantum_key_exchange_is_offered_first_and_negotiated_with_openssh(tmp_path: Path,
                                                                                 client_key: ClientKey,
                                                                                 sshd: Sshd) -> None:
    offered = kex_preference()
    assert offered[0] in PQ_KEX and set(offered) <= set(supported_kex())
    with OpenSshTransport(Endpoint("LA:1", sshd.url(tmp_path), (sshd.fingerprint,)), lambda: client_key.key,
                          FAST) as t:
        assert t.list().names() == []
    assert t.kex in PQ_KEX and t.cipher == FAST.ciphers[0]
    assert t.host_key_fingerprint == sshd.fingerprint


def test_a_server_without_one_gets_a_classical_key_exchange(tmp_path: Path, client_key: ClientKey) -> None:
    (tmp_path / "drop").mkdir()
    with embedded_server(tmp_path, client_key.key, tmp_path) as srv, OpenSshTransport(
            Endpoint("LA:1", f"sftp://u@127.0.0.1:{srv.port}/drop", (srv.fingerprint,)), lambda: client_key.key,
            FAST) as t:
        assert t.list().names() == []
    assert t.kex is not None and t.kex not in PQ_KEX


def test_the_key_never_reaches_the_disk_and_the_private_folder_goes(tmp_path: Path, client_key: ClientKey,
                                                                   sshd: Sshd) -> None:
    t = OpenSshTransport(Endpoint("LA:1", sshd.url(tmp_path), (sshd.fingerprint,)), lambda: client_key.key, FAST)
    t.open()
    link = t._link
    assert isinstance(link, object) and link is not None
    work: Path = link.work  # type: ignore[attr-defined]
    assert work.stat().st_mode & 0o777 == 0o700
    secret = client_key.path.read_bytes()
    assert sorted(os.listdir(work)) == ["empty", "known-hosts.sh", "pins", "presented", "ssh.log"]  # no agent socket
    assert all(b"PRIVATE KEY" not in (work / n).read_bytes() and secret not in (work / n).read_bytes()
               for n in os.listdir(work))
    t.close()
    assert not work.exists()


def test_the_previous_key_is_used_when_the_server_has_only_that(tmp_path: Path, sshd: Sshd,
                                                                client_key: ClientKey) -> None:
    new = paramiko.Ed25519Key(filename=str(keygen(tmp_path / "new")))
    ep = Endpoint("LA:1", sshd.url(tmp_path), (sshd.fingerprint,))
    with OpenSshTransport(ep, lambda: new, FAST, previous_identity=lambda: client_key.key) as t:
        assert "new" in t.list().names()
    assert t.used_previous_identity
    with OpenSshTransport(ep, lambda: client_key.key, FAST, previous_identity=lambda: new) as t:
        t.list()
    assert not t.used_previous_identity


def test_the_backend_comes_from_the_endpoint_else_config_json(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.root.mkdir()
    config = ConfigEndpoints(home)
    fpr = ("SHA256:" + "A" * 43,)
    config.add(Endpoint("LA:1", "sftp://u@h/x", fpr))
    config.add(Endpoint("LA:2", "sftp://u@h/x", fpr, backend="paramiko", ssh_config=tmp_path / "ssh_config"))
    endpoints = DirectoryEndpoints(home)
    assert sftp_class(endpoints.resolve("LA:1")) is SftpTransport
    data = json.loads(home.config_file.read_text())
    assert data["endpoints"]["LA:2"]["backend"] == "paramiko"
    data["sftp_backend"] = "openssh"
    home.config_file.write_text(json.dumps(data))
    assert sftp_class(endpoints.resolve("LA:1")) is OpenSshTransport
    assert sftp_class(endpoints.resolve("LA:2")) is SftpTransport
    assert endpoints.resolve("LA:2").ssh_config == tmp_path / "ssh_config"


def test_an_opted_in_ssh_config_is_read_but_cannot_loosen_the_pin(tmp_path: Path, client_key: ClientKey,
                                                                  sshd: Sshd) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host lax-test-alias\n  HostName 127.0.0.1\n  StrictHostKeyChecking no\n"
                      "  UserKnownHostsFile ~/.ssh/known_hosts\n")
    url = f"sftp://{sshd.user}@lax-test-alias:{sshd.port}{tmp_path}"
    with OpenSshTransport(Endpoint("LA:1", url, (sshd.fingerprint,), ssh_config=config), lambda: client_key.key,
                          FAST) as t:
        assert "ssh_config" in t.list().names()  # the alias resolved through the file
    wrong = Endpoint("LA:1", url, ("SHA256:" + "A" * 43,), ssh_config=config)
    with pytest.raises(TransportError) as e:
        OpenSshTransport(wrong, lambda: client_key.key, FAST).open()
    assert e.value.code == "host-key.mismatch" and e.value.details["presented"] == sshd.fingerprint


def test_rekeying_mid_transfer_keeps_the_pinned_connection(tmp_path: Path, client_key: ClientKey, sshd: Sshd) -> None:
    """ssh re-exchanges keys every 1 MB here (an opted-in ssh_config): the host key is checked
    against the first one, the pins' command is not needed again, and the transfer goes on."""
    config = tmp_path / "ssh_config"
    config.write_text("RekeyLimit 1M\n")
    data = os.urandom(6 * 1024 * 1024)
    src = tmp_path / "big.lax"
    src.write_bytes(data)
    remote = tmp_path / "drop"
    remote.mkdir()
    ep = Endpoint("LA:1", sshd.url(remote), (sshd.fingerprint,), ssh_config=config)
    with OpenSshTransport(ep, lambda: client_key.key, FAST) as t:
        t.put(src, "big.lax")
        t.get("big.lax", tmp_path / "back.lax")
        log = (t._link.work / "ssh.log").read_text()  # type: ignore[union-attr]
    assert (remote / "big.lax").read_bytes() == data and (tmp_path / "back.lax").read_bytes() == data
    assert log.count("SSH2_MSG_KEXINIT sent") >= 4  # the first exchange and at least three rekeys


@pytest.mark.parametrize("option", ["NoHostAuthenticationForLocalhost yes", "StrictHostKeyChecking accept-new",
                                    "VerifyHostKeyDNS yes"])
def test_an_opted_in_ssh_config_cannot_switch_off_host_key_checking_for_localhost(
        tmp_path: Path, client_key: ClientKey, sshd: Sshd, option: str) -> None:
    """The attack: an operator's ssh_config (or one it Includes) says NoHostAuthenticationForLocalhost
    yes, and ssh accepts any key from 127.0.0.1 or ::1 without asking the pins' command: whatever
    listens on the port (another user's process on the host, a tunnel) got our signature and the
    packages. The pin must hold whatever the file says."""
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  {option}\n")
    wrong = Endpoint("LA:1", sshd.url(tmp_path), ("SHA256:" + "A" * 43,), ssh_config=config)
    with pytest.raises(TransportError) as e:
        OpenSshTransport(wrong, lambda: client_key.key, FAST).open()
    assert e.value.code == "host-key.mismatch" and e.value.details["presented"] == sshd.fingerprint


@pytest.mark.parametrize("url", ["sftp://-oProxyCommand%3Dtouch%20%2Ftmp%2Fpwned@127.0.0.1:22/x",
                                 "sftp://a%3Btouch%20x@127.0.0.1:22/x", "sftp://a%24(id)@127.0.0.1:22/x",
                                 "sftp://a%0Ab@127.0.0.1:22/x", "sftp://a%20-oX@127.0.0.1:22/x",
                                 "sftp://u@-oproxycommand=x:22/x", "sftp://u@a$(id):22/x", "sftp://u@a b:22/x",
                                 "sftp://u@a;b:22/x", "sftp://u@a`id`:22/x"])
def test_a_user_or_host_name_ssh_would_expand_into_a_command_is_refused_before_ssh_starts(
        client_key: ClientKey, url: str) -> None:
    """The attack: a partner's card (or a mistyped config) gives a user or host name with shell
    characters or a leading '-'. An operator's ssh_config ProxyCommand or Match exec puts it, via
    %r or %h, into a shell command (CVE-2023-51385 for ssh before 9.6). Newer ssh refuses such a
    name on stderr nobody reads, and laxchange reported a transient handshake failure, retried
    every night. It is refused here, for good, saying which name and why."""
    t = OpenSshTransport(Endpoint("LA:1", url, ("SHA256:" + "A" * 43,)), lambda: client_key.key, FAST)
    with pytest.raises(TransportError) as e:
        t.open()
    assert e.value.code == "url.invalid" and not e.value.transient
    assert "ssh" in e.value.message and e.value.hint


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_an_ssh_config_others_may_write_is_refused_before_ssh_reads_it(tmp_path: Path, client_key: ClientKey,
                                                                      sshd: Sshd, mode: int) -> None:
    """The attack: the endpoint's ssh_config is writable by another local user (a shared folder, a
    loose umask), who adds `ProxyCommand` or `PKCS11Provider` and runs code as laxchange's user, with
    its keys. ssh refuses such a ~/.ssh/config ("Bad owner or permissions") but not a -F file."""
    config = tmp_path / "ssh_config"
    config.write_text("RekeyLimit 1M\n")
    config.chmod(mode)
    ep = Endpoint("LA:1", sshd.url(tmp_path), (sshd.fingerprint,), ssh_config=config)
    with pytest.raises(TransportError) as e:
        OpenSshTransport(ep, lambda: client_key.key, FAST).open()
    assert e.value.code == "endpoint.ssh-config-unsafe" and not e.value.transient
    assert str(config) in e.value.message and "chmod" in (e.value.hint or "")
    config.chmod(0o644)
    with OpenSshTransport(ep, lambda: client_key.key, FAST) as t:
        assert "ssh_config" in t.list().names()


def test_an_ssh_config_owned_by_another_user_is_refused(tmp_path: Path, client_key: ClientKey, sshd: Sshd) -> None:
    """The same attack by the file's owner: a file another user owns is theirs to change."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    config = tmp_path / "ssh_config"
    config.write_text("RekeyLimit 1M\n")
    config.chmod(0o644)
    os.chown(config, 65534, 65534)
    ep = Endpoint("LA:1", sshd.url(tmp_path), (sshd.fingerprint,), ssh_config=config)
    with pytest.raises(TransportError) as e:
        OpenSshTransport(ep, lambda: client_key.key, FAST).open()
    assert e.value.code == "endpoint.ssh-config-unsafe" and "owned by" in e.value.message


_AGENT_IN_ITS_OWN_PID_NAMESPACE = """
import sys, time
from pathlib import Path
import paramiko
from laxchange.transport.openssh import _Agent
key = paramiko.Ed25519Key(filename=sys.argv[2])
_Agent(Path(sys.argv[1]), (lambda: key,)).start()  # as _spawn starts it: before ssh (and its pid) exists
print("listening", flush=True)
time.sleep(2)
"""


def test_the_agent_answers_no_one_before_it_knows_which_ssh_it_serves(tmp_path: Path, client_key: ClientKey) -> None:
    """The attack: the agent starts listening before ssh is started, and until then the pid it lets in
    is 0, which is also what SO_PEERCRED says of a peer in a pid namespace the agent cannot see (a
    container sharing /tmp with laxchange's uid, or the host seen from a containerised laxchange).
    Such a process, woken by inotify when the socket appears, asked for our key and could have had
    any data signed with it: a login as us to a partner's SFTP server."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "-r", "true"],
                                                         capture_output=True, check=False).returncode:
        pytest.skip("needs unshare and a new pid namespace")
    path = tmp_path / "agent"
    agent = subprocess.Popen(["unshare", "--pid", "--fork", sys.executable, "-c", _AGENT_IN_ITS_OWN_PID_NAMESPACE,
                              str(path), str(client_key.path)], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert agent.stdout is not None and agent.stdout.readline() == b"listening\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(4)
            s.connect(os.fspath(path))
            s.sendall(struct.pack(">I", 1) + bytes([11]))  # SSH_AGENTC_REQUEST_IDENTITIES
            try:
                reply = s.recv(64)
            except (TimeoutError, ConnectionResetError):
                reply = b""
        assert reply == b"", "the agent answered a process that is not its ssh"
    finally:
        agent.kill()
        agent.wait()


def test_an_ssh_config_choosing_md5_fingerprints_does_not_turn_the_pin_into_an_alarm(
        tmp_path: Path, client_key: ClientKey, sshd: Sshd) -> None:
    """An opted-in ssh_config with `FingerprintHash md5` (an old habit) made ssh hand the pins'
    command an MD5 fingerprint, so the pinned server was reported as `host-key.mismatch`, "the server
    may have been replaced or attacked": a false alarm, and a real one made to look routine."""
    config = tmp_path / "ssh_config"
    config.write_text("FingerprintHash md5\n")
    ep = Endpoint("LA:1", sshd.url(tmp_path), (sshd.fingerprint,), ssh_config=config)
    with OpenSshTransport(ep, lambda: client_key.key, FAST) as t:
        assert "ssh_config" in t.list().names()
    assert t.host_key_fingerprint == sshd.fingerprint
