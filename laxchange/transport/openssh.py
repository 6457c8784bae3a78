"""SFTP over the system's OpenSSH client: `ssh -s ... sftp`, spoken over a socketpair.

The SSH layer (key exchange, ciphers, ssh_config proxies and jump hosts when the operator opts
in) is OpenSSH's, in C; the SFTP requests are the very ones `SftpTransport` sends (paramiko's
`SFTPClient` on our end of the socketpair), so the atomic upload, the pipelining and the error
mapping exist once. What differs is only how the link is set up:

- the host key is pinned inside ssh itself: `StrictHostKeyChecking=yes`, no known_hosts files,
  and a `KnownHostsCommand` that declares the presented key known only when its fingerprint is
  one of the endpoint's pins; ssh checks it after key exchange and before authenticating;
- our SSH key never reaches the disk: ssh authenticates through an agent socket answered by
  this process (in a 0700 private folder), which unlocks the key only when ssh first asks for
  it, that is after the host key was accepted;
- a post-quantum key exchange is offered first when the local ssh has one.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from laxchange.errors import LaxError, TransientTransportError, TransportError
from laxchange.transport.endpoints import Endpoint
from laxchange.transport.hostkeys import check_presented, pinned_fingerprints
from laxchange.transport.identity import IdentityLoader
from laxchange.transport.sftp import SftpLink, SftpTransport

#: post-quantum hybrids, most preferred first (ML-KEM from OpenSSH 9.9, sntrup761 from 8.5)
PQ_KEX = ("mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com")
#: classical exchanges after them, for servers (paramiko's among them) without a PQ one
CLASSICAL_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384",
                 "ecdh-sha2-nistp521", "diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512",
                 "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256")

_AGENT_FAILURE, _REQUEST_IDENTITIES, _IDENTITIES_ANSWER, _SIGN_REQUEST, _SIGN_RESPONSE = 5, 11, 12, 13, 14
#: how long a connection to the agent waits for ssh's pid to be known (Popen returning) before it is refused
_AGENT_WAIT = 10.0
_LOST_HINT = "the server did not answer in time or closed the connection; it will be retried"

#: the KnownHostsCommand (argv: reason, fingerprint, key type, key): prints the presented key as
#: known iff its fingerprint is pinned, and records what was presented (for the error message).
#: Every argument is made by ssh from the key itself, none from the URL, so a strange host name
#: cannot shift them; the line's host pattern is `*` (this file serves this one connection).
#: Always exits 0: ssh drops the connection on a failing command; an unknown key must read as a
#: mismatch.
_KNOWN_HOSTS_SH = """\
[ "$1" = ORDER ] && exit 0
printf '%s\\n' "$2" >> {presented}
if grep -qxF -e "$2" {pins}; then printf '* %s %s\\n' "$3" "$4"; fi
exit 0
"""


#: what ssh (9.6 on) refuses in a command-line user or host name, because ssh_config's ProxyCommand and
#: Match exec paste them (%r, %h) into a shell command; whitespace and control characters too.
_SHELL_CHARS = frozenset("'`\"$\\;&<>|(){}")


def check_ssh_endpoint(endpoint: Endpoint, *, error: type[LaxError] = TransportError) -> None:
    """What the openssh backend refuses for good, before ssh starts: a user or host name an
    ssh_config could turn into a command or an option, and an ssh_config another user could change.

    One check for both places it matters: connecting (`TransportError`, not retried) and
    `laxchange endpoints add` (`error=UsageError`, so nothing unusable is saved), same codes."""
    url = endpoint.parsed
    _check_names(url.user, url.host, error)
    if endpoint.ssh_config is not None:
        _check_ssh_config(endpoint.ssh_config, error)


def _check_names(user: str, host: str, error: type[LaxError]) -> None:
    """Refuse, before ssh starts and for good, a user or host name that an ssh_config could turn into
    a command or an option: an older ssh would run it, a newer one refuses it out of our sight."""
    for what, name in (("user", user), ("host", host)):
        bad = sorted({c for c in name if c in _SHELL_CHARS or c.isspace() or not c.isprintable()})
        if name.startswith("-") or bad:
            why = f"it holds {', '.join(repr(c) for c in bad)}" if bad else "it starts with '-'"
            raise error(f"the endpoint's SSH {what} name {name!r} cannot be given to ssh: {why}",
                        code="url.invalid",
                        hint="check the sftp:// URL in the endpoint or the partner's card; a user or host "
                             "name has no shell characters, spaces or leading '-'")


#: ssh's own limit on nested Include (readconf.c READCONF_MAX_DEPTH)
_MAX_INCLUDE_DEPTH = 16
#: an ssh_config is a few lines; one larger than this is not read (nor given to ssh)
_MAX_SSH_CONFIG_BYTES = 1 << 20
_INCLUDE = re.compile(r"\s*include(?:\s*=\s*|\s+)(.*)", re.IGNORECASE)


def _check_ssh_config(path: Path, error: type[LaxError]) -> None:
    """Refuse an ssh_config another user could change (ssh's own rule for ~/.ssh/config, which it does
    not apply to a -F file): whoever can edit it runs code as us (ProxyCommand, PKCS11Provider...).

    Every file it `Include`s is held to the same rule, to ssh's depth: ssh refuses a loose included
    file only when it connects, with "Bad owner or permissions", which reads as a failed connection
    night after night; this names the file at `endpoints add` and at once."""
    _check_config_file(path, error, included_by=None, depth=0)


def _check_config_file(path: Path, error: type[LaxError], *, included_by: Path | None, depth: int) -> None:
    what = "ssh_config" if included_by is None else f"ssh_config {included_by}, which includes"

    def refuse(why: str, hint: str) -> LaxError:
        return error(f"the endpoint's {what} {path}: {why}", code="endpoint.ssh-config-unsafe", hint=hint)

    if depth > _MAX_INCLUDE_DEPTH:
        raise refuse(f"Include is nested more than {_MAX_INCLUDE_DEPTH} deep (ssh's limit)",
                     "look for an Include that includes itself")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise refuse(f"cannot read it: {exc.strerror}",
                     "fix the path with `laxchange endpoints add ... --ssh-config FILE`") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        owner_ok = st.st_uid in (0, os.geteuid())
        if not (stat.S_ISREG(st.st_mode) and owner_ok and not st.st_mode & 0o022):
            why = ("it is not a regular file" if not stat.S_ISREG(st.st_mode)
                   else f"it is owned by uid {st.st_uid}, not this account or root" if not owner_ok
                   else f"other users may change it (mode {stat.S_IMODE(st.st_mode):o})")
            raise refuse(f"{why}; ssh would run what it says as this account",
                         f"chmod go-w {path} (and chown it to this account), after checking what it says")
        text = fh.read(_MAX_SSH_CONFIG_BYTES + 1)
    if len(text) > _MAX_SSH_CONFIG_BYTES:
        raise refuse(f"it is larger than {_MAX_SSH_CONFIG_BYTES >> 20} MiB", "give ssh a config of a few lines")
    for lineno, line in enumerate(text.decode("utf-8", "replace").splitlines(), 1):
        m = _INCLUDE.match(line)
        if m is None:
            continue
        try:
            names = shlex.split(m.group(1), comments=True)
        except ValueError:
            raise refuse(f"its Include on line {lineno} cannot be read (unbalanced quotes)",
                         "quote each Include path once") from None
        for name in names:
            if "%" in name or "$" in name:  # expanded by ssh in ways we cannot check beforehand: fail closed
                raise refuse(f"its Include on line {lineno} uses %-tokens or environment variables",
                             "name the included files plainly (glob wildcards and ~ are fine)")
            for found in _included(name):
                _check_config_file(found, error, included_by=path, depth=depth + 1)


def _included(name: str) -> list[Path]:
    """The files ssh reads for `Include name` in a user configuration (as -F files are): ~ is this
    account's home, a relative name is under ~/.ssh, wildcards expand in lexical order, and a
    pattern matching nothing is skipped, as ssh skips it."""
    home = pwd.getpwuid(os.geteuid()).pw_dir
    if name == "~" or name.startswith("~/"):
        name = home + name[1:]
    elif name.startswith("~"):
        name = os.path.expanduser(name)
    elif not name.startswith("/"):
        name = os.path.join(home, ".ssh", name)
    return [Path(p) for p in sorted(glob.glob(name))]


def ssh_binary() -> str | None:
    """The OpenSSH client on PATH, if any (`laxchange doctor` reports it)."""
    return shutil.which("ssh")


@functools.cache
def ssh_version() -> str | None:
    """`ssh -V`'s first line, e.g. "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026"."""
    ssh = ssh_binary()
    if ssh is None:
        return None
    out = subprocess.run([ssh, "-V"], capture_output=True, text=True, check=False, timeout=10)
    return (out.stderr or out.stdout).strip().splitlines()[0] if (out.stderr or out.stdout).strip() else None


@functools.cache
def supported_kex() -> tuple[str, ...]:
    """The key exchanges the local ssh implements (`ssh -Q kex`), asked once per process."""
    ssh = ssh_binary()
    if ssh is None:
        return ()
    out = subprocess.run([ssh, "-Q", "kex"], capture_output=True, text=True, check=False, timeout=10)
    return tuple(out.stdout.split())


def kex_preference() -> tuple[str, ...]:
    """Post-quantum hybrids first, then classical ones, each only if the local ssh has it."""
    have = set(supported_kex())
    return tuple(k for k in PQ_KEX + CLASSICAL_KEX if k in have)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


@dataclass
class _Agent:
    """An SSH agent answered by this process on a socket in our private folder, for one ssh.

    It offers our key(s) and signs with them; nothing else. The key is unlocked on ssh's first
    request, which ssh makes only once the host key has been accepted, so a wrong server never
    costs a passphrase prompt; a failure to unlock is kept to be raised in place of ssh's
    "permission denied". Only the ssh we started may connect (checked by SO_PEERCRED): nobody is
    answered before `serve(pid)` names it, and never a peer whose pid is 0 (SO_PEERCRED's answer for
    a process in a pid namespace we cannot see).
    """

    path: Path
    identities: tuple[IdentityLoader, ...]
    pid: int = 0
    error: LaxError | None = None
    signed_with: int | None = None
    _keys: list[paramiko.PKey] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _known: threading.Event = field(default_factory=threading.Event)

    def start(self) -> _Agent:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.fspath(self.path))
        os.chmod(self.path, 0o600)
        sock.listen(4)
        sock.settimeout(0.2)
        self._sock = sock
        threading.Thread(target=self._serve, name="laxchange-ssh-agent", daemon=True).start()
        return self

    def serve(self, pid: int) -> None:
        """Answer the process `pid` (the ssh just started) from now on; connections made before wait."""
        self.pid = pid
        self._known.set()

    def stop(self) -> None:
        self._stop.set()
        self._known.set()
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None  # noqa: S101  narrowing only: start() sets it
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
                self._known.wait(_AGENT_WAIT)  # the peer's pid is fixed at connect(); ssh's may be set yet
                if pid > 0 and pid == self.pid and not self._stop.is_set():
                    with contextlib.suppress(OSError, EOFError, struct.error):
                        self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        while True:
            head = _recv_exact(conn, 4)
            body = _recv_exact(conn, struct.unpack(">I", head)[0])
            reply = self._reply(body)
            conn.sendall(_string(reply))

    def _loaded(self) -> list[paramiko.PKey]:
        if not self._keys and self.error is None:
            try:
                self._keys = [load() for load in self.identities]
            except LaxError as exc:
                self.error = exc
        return self._keys

    def _reply(self, body: bytes) -> bytes:
        if not body:
            return bytes([_AGENT_FAILURE])
        if body[0] == _REQUEST_IDENTITIES:
            keys = self._loaded()
            return (bytes([_IDENTITIES_ANSWER]) + struct.pack(">I", len(keys))
                    + b"".join(_string(k.asbytes()) + _string(b"laxchange") for k in keys))
        if body[0] == _SIGN_REQUEST:
            msg = paramiko.Message(body[1:])
            blob, data = msg.get_binary(), msg.get_binary()
            for i, key in enumerate(self._loaded()):
                if key.asbytes() == blob:
                    self.signed_with = i  # the server accepts this key: ssh signs only after PK_OK
                    return bytes([_SIGN_RESPONSE]) + _string(key.sign_ssh_data(data).asbytes())
        return bytes([_AGENT_FAILURE])


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = conn.recv(n - len(buf))
        if not part:
            raise EOFError
        buf += part
    return bytes(buf)


class _Pipe:
    """Our end of the socketpair to ssh, shaped like the paramiko channel `SFTPClient` expects.

    The socket stays blocking and the timeout is the kernel's (SO_RCVTIMEO, SO_SNDTIMEO), so
    `recv(n)` can wait for all `n` bytes in one call (MSG_WAITALL): paramiko asks for one whole
    SFTP message at a time, and gets it in one buffer instead of pieces joined in Python.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False
        self._timeout: float | None = None
        sock.setblocking(True)

    def send(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:  # SO_SNDTIMEO expired
            raise TimeoutError(f"no progress sending to ssh in {self._timeout}s") from None

    def recv(self, n: int) -> bytes:
        try:
            return self.sock.recv(n, socket.MSG_WAITALL)  # short only at EOF, a signal or the timeout
        except BlockingIOError:  # SO_RCVTIMEO expired
            raise TimeoutError(f"nothing from ssh in {self._timeout}s") from None

    def recv_ready(self) -> bool:
        """Whether a read would return at once (bytes waiting, or the end). A peek, not select():
        select() refuses a descriptor numbered 1024 or more, which a council's run with many
        partners' connections open can reach."""
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True  # the read itself will say what is wrong
        return True

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        whole = int(timeout or 0)
        tv = struct.pack("ll", whole, int(((timeout or 0) - whole) * 1e6))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, blocking: bool) -> None:
        if not blocking:  # SO_RCVTIMEO 0 would mean "wait for ever", the opposite
            raise ValueError("the pipe to ssh is always blocking, with a timeout")
        self.settimeout(None)

    def get_name(self) -> str:
        return "openssh"

    def close(self) -> None:
        self.closed = True
        self.sock.close()


@dataclass
class _OpenSshLink:
    """One `ssh -s sftp` process, our end of its socketpair, and its private folder."""

    proc: subprocess.Popen[bytes]
    pipe: _Pipe
    work: Path
    sftp: paramiko.SFTPClient

    def alive(self) -> bool:
        return self.proc.poll() is None and not self.pipe.closed

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead link must not mask the real error
            self.sftp.close()
        _end(self.proc, self.work)


def _stop(proc: subprocess.Popen[bytes], pipe: _Pipe) -> None:
    """End a failed ssh: close our end (it sees EOF), give it a moment to log why, then kill it."""
    pipe.close()
    try:
        proc.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _end(proc: subprocess.Popen[bytes], work: Path) -> None:
    """Let ssh leave on the EOF it was just sent; kill it if it lingers (a stalled server would hold
    it, and it holds nothing of ours: the SFTP state is all on this side); remove our folder."""
    try:
        proc.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(work, ignore_errors=True)


class OpenSshTransport(SftpTransport):
    """`SftpTransport` whose SSH connection is made by the system's OpenSSH client."""

    backend = "openssh"
    #: the key exchange and cipher ssh negotiated (from its log), e.g. "sntrup761x25519-sha512"
    kex: str | None = None
    cipher: str | None = None

    def _argv(self, ssh: str, work: Path, *, subsystem: bool = True) -> list[str]:
        s, url = self.settings, self.url
        script = work / "known-hosts.sh"
        config = self.endpoint.ssh_config
        empty = os.fspath(work / "empty")  # not /dev/null: what ssh reads must not depend on the host's /dev/null
        argv = [ssh, "-v", "-E", os.fspath(work / "ssh.log"), "-F", os.fspath(config) if config else empty,
                "-a", "-x", "-T", "-p", str(url.port), "-l", url.user,
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={empty}", "-o", f"GlobalKnownHostsFile={empty}",
                "-o", f"KnownHostsCommand=/bin/sh {shlex.quote(os.fspath(script))} %I \"%f\" %t %K",
                "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no", "-o", "VerifyHostKeyDNS=no",
                # else an ssh_config saying yes skips every host-key check (the pins' too) for 127.0.0.1/::1
                "-o", "NoHostAuthenticationForLocalhost=no",
                "-o", "FingerprintHash=sha256",  # %f is what the pins are: an ssh_config saying md5 is not obeyed
                "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "PermitLocalCommand=no",
                "-o", "ClearAllForwardings=yes", "-o", "ForwardAgent=no", "-o", "AddKeysToAgent=no",
                "-o", "PreferredAuthentications=publickey", "-o", "PubkeyAuthentication=yes",
                "-o", f"IdentityAgent={work / 'agent'}", "-o", "IdentityFile=none", "-o", "IdentitiesOnly=no",
                "-o", f"ConnectTimeout={max(1, round(s.timeout))}",
                "-o", f"ServerAliveInterval={max(1, s.keepalive)}", "-o", "ServerAliveCountMax=3",
                "-o", "Ciphers=" + ",".join(s.ciphers)]
        if kex := kex_preference():
            argv += ["-o", "KexAlgorithms=" + ",".join(kex)]
        return [*argv, *(["-s"] if subsystem else []), "--", url.host, "sftp"]

    def _prepare(self) -> tuple[str, Path]:
        """Pins (raising before anything is sent if there are none), ssh, our private folder."""
        check_ssh_endpoint(self.endpoint)
        pins = pinned_fingerprints(self.endpoint, self.url.host, self.url.port)
        ssh = ssh_binary()
        if ssh is None:
            raise TransportError("the OpenSSH client `ssh` is not on PATH", code="ssh.no-client",
                                 hint='install openssh-client, or set "sftp_backend": "paramiko" in config.json')
        work = Path(tempfile.mkdtemp(prefix="laxchange-ssh-"))  # 0700
        (work / "empty").write_bytes(b"")
        (work / "pins").write_text("".join(f"{p}\n" for p in sorted(pins)))
        (work / "known-hosts.sh").write_text(_KNOWN_HOSTS_SH.format(
            presented=shlex.quote(os.fspath(work / "presented")), pins=shlex.quote(os.fspath(work / "pins"))))
        return ssh, work

    def _spawn(self, identities: tuple[IdentityLoader, ...], *, subsystem: bool = True
               ) -> tuple[subprocess.Popen[bytes], socket.socket, Path, _Agent]:
        ssh, work = self._prepare()
        agent: _Agent | None = None
        try:
            agent = _Agent(work / "agent", identities).start()
            ours, theirs = socket.socketpair()
            for sock in (ours, theirs):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
            with theirs:
                proc = subprocess.Popen(self._argv(ssh, work, subsystem=subsystem), stdin=theirs.fileno(),
                                        stdout=theirs.fileno(), stderr=subprocess.DEVNULL, env=env, close_fds=True)
            agent.serve(proc.pid)
        except BaseException:
            if agent is not None:
                agent.stop()
            shutil.rmtree(work, ignore_errors=True)
            raise
        return proc, ours, work, agent

    def _log(self, work: Path) -> str:
        try:
            return (work / "ssh.log").read_text(errors="replace")
        except OSError:
            return ""

    def _presented(self, work: Path) -> str | None:
        try:
            lines = (work / "presented").read_text().split()
        except OSError:
            return None
        return lines[-1] if lines else None

    def _failure(self, work: Path, agent: _Agent, exc: BaseException | None) -> LaxError:
        """Why ssh gave up, from what it presented and logged: the same codes paramiko's path raises."""
        where = f"{self.url.host}:{self.url.port}"
        log = self._log(work)
        presented = self._presented(work)
        if presented is not None:
            check_presented(self.endpoint, self.url.host, self.url.port, presented)  # raises on a mismatch
            self.host_key_fingerprint = presented
        if agent.error is not None:
            return agent.error
        if presented is None:
            if re.search(r"connect to host .* port \d+: |Could not resolve hostname", log):
                reason = log.rsplit("connect to host", 1)[-1].strip().splitlines()[0] if "connect to host" in log \
                    else "could not resolve the host name"
                return TransientTransportError(f"cannot connect to {self.endpoint.party} at {where}: {reason}",
                                               code="ssh.connect-failed",
                                               hint="check the endpoint URL and that the server is up")
            return TransientTransportError(f"SSH handshake with {where} failed: {_last_error(log, exc)}",
                                           code="ssh.handshake-failed", hint=_LOST_HINT)
        if "Permission denied" in log:
            return TransportError(f"{where} refused our SSH key for user {self.url.user!r}", code="ssh.auth-refused",
                                  hint="send the partner the public key from `laxchange endpoints ssh-key` "
                                       "for their authorized_keys")
        if "Authenticated to" not in log:
            return TransientTransportError(f"{where} did not answer our authentication in time",
                                           code="ssh.auth-timeout",
                                           hint="the server is slow or overloaded; it will be retried")
        return TransientTransportError(f"{where} did not open an SFTP session: {_last_error(log, exc)}",
                                       code="ssh.no-sftp", hint="the server must offer the SFTP subsystem to this "
                                                                "login; ask the partner to check its set-up")

    def _note_negotiated(self, work: Path) -> None:
        log = self._log(work)
        if m := re.search(r"kex: algorithm: (\S+)", log):
            self.kex = m.group(1)
        if m := re.search(r"kex: server->client cipher: (\S+)", log):
            self.cipher = m.group(1)

    def _connect(self) -> SftpLink:
        identities = (self.identity,) + ((self.previous_identity,) if self.previous_identity else ())
        proc, ours, work, agent = self._spawn(identities)
        pipe = _Pipe(ours)
        try:
            pipe.settimeout(4 * self.settings.timeout)  # key exchange, authentication and the SFTP version
            try:
                sftp = paramiko.SFTPClient(pipe)  # type: ignore[arg-type]  # takes any channel-shaped object
            except (EOFError, OSError, paramiko.SSHException) as exc:
                _stop(proc, pipe)
                raise self._failure(work, agent, exc) from exc
            finally:
                agent.stop()  # authentication is over either way: nobody may ask for a signature again
            pipe.settimeout(self.settings.timeout)
            sftp.logger = paramiko.util.get_logger("paramiko.transport.sftp")  # the paramiko backend's, for one log
            self.host_key_fingerprint = self._presented(work)
            self.used_previous_identity = agent.signed_with == 1
            self._note_negotiated(work)
        except BaseException:
            _stop(proc, pipe)
            shutil.rmtree(work, ignore_errors=True)
            raise
        return _OpenSshLink(proc, pipe, work, sftp)

    def verify_host(self) -> str:
        """Connect with no key to offer: ssh checks the pinned host key, then fails to authenticate."""
        proc, ours, work, agent = self._spawn(())
        try:
            with ours:
                ours.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + 4 * self.settings.timeout
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            agent.stop()
            presented = self._presented(work)
            if presented is None:
                raise self._failure(work, agent, None)
            self.host_key_fingerprint = check_presented(self.endpoint, self.url.host, self.url.port, presented)
            self._note_negotiated(work)
            return presented
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _last_error(log: str, exc: BaseException | None) -> str:
    """ssh's last non-debug line (its own summary of what went wrong), else the exception's name."""
    lines = [ln for ln in log.splitlines() if ln.strip() and not ln.startswith("debug")]
    return lines[-1].strip() if lines else (str(exc) or type(exc).__name__ if exc else "ssh exited")


__all__ = ["CLASSICAL_KEX", "PQ_KEX", "OpenSshTransport", "check_ssh_endpoint", "kex_preference", "ssh_binary",
           "ssh_version", "supported_kex"]
