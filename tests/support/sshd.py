"""A real OpenSSH sshd on 127.0.0.1 for tests and the benchmark, with its own config and keys.

Started from a temporary folder and stopped by PID. If it cannot start, `start()` raises with
sshd's log, so tests fail loudly instead of being skipped.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, comment: str = "test") -> Path:
    """An unencrypted ed25519 key pair made by OpenSSH's ssh-keygen."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdout=subprocess.DEVNULL)
    return path


def fingerprint_of(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


class _PortTaken(Exception):
    """sshd exited because its port was already bound by another process."""


class Sshd:
    """One sshd instance. `host_key` may be shared between instances to simulate a restart."""

    def __init__(self, base: Path, authorized_pubs: list[Path], *, host_key: Path | None = None,
                 port: int | None = None, read_only: bool = False, authorized_keys_file: str | None = None,
                 match_blocks: str = "", sftp_subsystem: str | None = None,
                 pick_port: Callable[[], int] = free_port) -> None:
        """`authorized_keys_file` replaces the one shared file (e.g. `/dir/%u` for one per user);
        `match_blocks` is appended to the config (sshd wants `Match` sections last); `sftp_subsystem`
        replaces `internal-sftp` (e.g. Debian's default `/usr/lib/openssh/sftp-server`); `pick_port`
        chooses a port when none is given (and again if it is taken before sshd binds it)."""
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.host_key = host_key or keygen(base / "ssh_host_ed25519_key", "host")
        self.pick_port = pick_port
        self.port = port or pick_port()
        self._port_forced = port is not None
        self.user = getpass.getuser()
        self.authorized = base / "authorized_keys"
        self.authorized.write_text("".join(p.read_text() for p in authorized_pubs))
        self.config = base / "sshd_config"
        self.log = base / "sshd.log"
        self.pidfile = base / "sshd.pid"
        self.read_only = read_only
        self.authorized_keys_file = authorized_keys_file or str(self.authorized)
        self.match_blocks = match_blocks
        self.sftp_subsystem = sftp_subsystem
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(Path(str(self.host_key) + ".pub"))

    def url(self, path: Path) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 10.0) -> Sshd:
        """Start sshd and wait until it listens. A port chosen by `free_port` can be taken by another
        process before sshd binds it: then sshd exits, and (the port not being forced) another is
        tried, up to three times. Ready means this sshd's own log says it listens: a connection
        alone could reach whatever else holds the port."""
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                if self._port_forced or attempt == 2:
                    raise RuntimeError(f"sshd could not bind 127.0.0.1:{self.port}: {self._log()}") from None
                self.port = self.pick_port()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> Sshd:
        with contextlib.suppress(PermissionError):
            os.makedirs("/run/sshd", exist_ok=True)
        sftp = self.sftp_subsystem or ("internal-sftp -R" if self.read_only else "internal-sftp")
        self.config.write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.authorized_keys_file}\nPidFile {self.pidfile}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PermitRootLogin prohibit-password\nLogLevel VERBOSE\nMaxStartups 50\n"
            f"Subsystem sftp {sftp}\n" + self.match_blocks)
        self.log.write_bytes(b"")  # this attempt's log only: "listening" must be this process's
        self.proc = subprocess.Popen([SSHD, "-f", str(self.config), "-E", str(self.log), "-D"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        listening = f"Server listening on 127.0.0.1 port {self.port}."
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self._log()
                self.proc = None
                if "Address already in use" in log + err or "Cannot bind any address" in log + err:
                    raise _PortTaken
                raise RuntimeError(f"sshd exited: {err} {log}")
            if listening in self._log():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                        s.settimeout(2)
                        if s.recv(4).startswith(b"SSH-"):
                            return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not start listening on 127.0.0.1:{self.port}: {self._log()}")

    def _log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _tree(self) -> list[int]:
        assert self.proc is not None
        pids = [self.proc.pid]
        i = 0
        while i < len(pids):
            pids.extend(_children(pids[i]))
            i += 1
        return pids

    def _signal_sessions(self, sig: int) -> None:
        for pid in reversed(self._tree()[1:]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def freeze(self) -> None:
        """SIGSTOP every session process: connections stay open but nothing answers."""
        if self.proc is not None:
            self._signal_sessions(signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL the listener and every session process it forked: the server dies mid-transfer."""
        if self.proc is None:
            return
        self._signal_sessions(signal.SIGKILL)
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.kill()

    def __enter__(self) -> Sshd:
        """Start it, unless `start()` already did (`with server.start(timeout=5):` starts one sshd, not two)."""
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ClientKey:
    """An SSH client key made for the tests: its path, public-key file and paramiko key."""

    path: Path
    pub: Path
    key: paramiko.PKey
