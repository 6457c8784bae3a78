"""docs/sftp-server.md, run as written: the sshd_config blocks and the set-up commands against a real sshd.

The page's `install` commands are run (as root, as the page says) with its paths moved under a
folder in /run (a ChrootDirectory path must be root-owned all the way up, which rules out /tmp) and
its accounts mapped to existing system accounts (the tests create none): the partners `la_887` and
`la_855` are `daemon` and `bin`, the owner `laxchange` is `sys` (and its group `sys`). The page's
`Match` blocks, mapped the same way, are appended to a test sshd whose `Subsystem` is Debian's
default external sftp-server, as the page says to leave it. Then each partner delivers through
laxchange's own SFTP client, is refused every way into the other's files, and the owner collects
both with `collect`, learning whose login delivered each.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from laxchange.transport import Endpoint, Runner, SftpSettings, SftpTransport, StaticEndpoints, collect
from tests.support.sshd import SSHD, Sshd, keygen
from tests.support.transport_fixtures import SFTP_BACKENDS


@pytest.fixture(params=sorted(SFTP_BACKENDS))
def sftp_cls(request: pytest.FixtureRequest) -> type[SftpTransport]:
    """Each SFTP backend in turn: every test here runs on each."""
    return SFTP_BACKENDS[request.param]


DOC = Path(__file__).resolve().parents[2] / "docs" / "sftp-server.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
USERS = {"la_887": "daemon", "la_855": "bin", "laxchange": "sys"}
GROUPS = {"laxchange": "sys", "root": "root"}
PARTIES = {"la_887": "LA:887", "la_855": "LA:855"}
SCHOOL = "URN:994311"
FAST = SftpSettings(timeout=5.0)
DEBIAN_SFTP = "/usr/lib/openssh/sftp-server"


def _block(first_line: str) -> str:
    """The page's code block whose first line starts with `first_line`."""
    found = [body for _, body in BLOCK.findall(DOC.read_text(encoding="utf-8")) if body.startswith(first_line)]
    assert len(found) == 1, f"docs/sftp-server.md should have one block starting {first_line!r}"
    return found[0]


def sshd_blocks() -> str:
    return _block("# /etc/ssh/sshd_config")


def setup_commands() -> list[list[str]]:
    body = _block("# accounts: no password, no shell, no home")
    return [shlex.split(line) for line in body.splitlines() if line.strip() and not line.startswith("#")]


def _moved(path: str, base: Path) -> str:
    for top in ("/srv/", "/etc/ssh/"):
        if path.startswith(top):
            return str(base) + path
    raise AssertionError(f"the page uses a path outside /srv and /etc/ssh: {path}")


def _mapped_blocks(base: Path) -> str:
    text = sshd_blocks()
    for doc_user, user in USERS.items():
        text = re.sub(rf"(?m)^Match User {doc_user}$", f"Match User {user}", text)
    return re.sub(r"(ChrootDirectory|AuthorizedKeysFile) (/\S+)", lambda m: f"{m.group(1)} {_moved(m.group(2), base)}",
                  text)


@contextlib.contextmanager
def _run_base() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="laxchange-sftp-doc-", dir="/run"))
    try:
        base.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_setup(base: Path) -> list[str]:
    """Run the page's commands, moved under `base`; the accounts it creates are returned instead."""
    accounts = []
    for argv in setup_commands():
        if argv[0] == "useradd":
            accounts.append(argv[-1])
            continue
        assert argv[0] == "install", f"the test knows how to run only useradd and install: {argv}"
        out, i = ["install"], 1
        while i < len(argv):
            if argv[i] in ("-o", "-g"):
                names = USERS if argv[i] == "-o" else GROUPS
                out += [argv[i], names.get(argv[i + 1], argv[i + 1])]
                i += 2
            elif argv[i] == "-m":
                out += argv[i:i + 2]
                i += 2
            elif argv[i] == "-d":
                out.append("-d")
                i += 1
            else:
                out.append(argv[i] if argv[i] == "/dev/null" else _moved(argv[i], base))
                i += 1
        subprocess.run(out, check=True)
    return accounts


def test_the_blocks_pass_sshd_t_after_debians_default_subsystem_line(tmp_path: Path) -> None:
    """The page says: append the blocks, keep Debian's `Subsystem` line. `sshd -t` accepts that, and
    `sshd -T` shows the chroot and forced command each account gets, the owner's own included."""
    host_key = keygen(tmp_path / "host", "host")
    with contextlib.suppress(PermissionError):
        os.makedirs("/run/sshd", exist_ok=True)
    config = tmp_path / "sshd_config"
    config.write_text(f"HostKey {host_key}\nSubsystem sftp {DEBIAN_SFTP}\n" + sshd_blocks(), encoding="utf-8")
    checked = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and checked.stdout == "", checked.stderr
    expected = {"la_887": ("/srv/laxchange/inbox", "internal-sftp -d /LA_887 -u 0027"),
                "la_855": ("/srv/laxchange/inbox", "internal-sftp -d /LA_855 -u 0027"),
                "laxchange": ("/srv/laxchange", "internal-sftp -d /inbox -u 0027"),
                "someone-else": ("none", "none")}
    for user, (chroot, command) in expected.items():
        dump = subprocess.run([SSHD, "-T", "-C", f"user={user},host=x,addr=192.0.2.1", "-f", str(config)],
                              capture_output=True, text=True, check=True).stdout
        settings = dict(line.split(" ", 1) for line in dump.splitlines() if " " in line)
        assert (settings["chrootdirectory"], settings["forcecommand"]) == (chroot, command), user
        if user != "someone-else":
            assert settings["authenticationmethods"] == "publickey"
            assert settings["allowtcpforwarding"] == "no" and settings["permittty"] == "no"
    doubled = tmp_path / "doubled"
    doubled.write_text(f"HostKey {host_key}\nSubsystem sftp {DEBIAN_SFTP}\nSubsystem sftp internal-sftp\n",
                       encoding="utf-8")
    refused = subprocess.run([SSHD, "-t", "-f", str(doubled)], capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "already defined" in refused.stderr  # why the page says not to add one


def _raw(port: int, user: str, key: paramiko.PKey) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    t = paramiko.Transport(("127.0.0.1", port))
    t.connect(username=user, pkey=key)
    sftp = paramiko.SFTPClient.from_transport(t)
    assert sftp is not None
    return t, sftp


def _refused(attempts: dict[str, Callable[[], object]]) -> list[str]:
    allowed = []
    for what, attempt in attempts.items():
        try:
            attempt()
        except OSError:
            continue
        allowed.append(what)
    return allowed


def test_the_set_up_confines_each_partner_and_the_owner_collects(sftp_cls: type[SftpTransport], tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the page's set-up is run as root (chroot, chown), as the tests run sshd"
    assert os.path.exists(DEBIAN_SFTP), "openssh-server's sftp-server binary (Debian's default Subsystem)"
    with _run_base() as base:
        assert sorted(_run_setup(base)) == ["la_855", "la_887"]  # the page makes each partner's account
        drop = base / "srv" / "laxchange" / "inbox"
        assert oct(drop.stat().st_mode & 0o7777) == "0o751"
        keys = {doc_user: keygen(tmp_path / doc_user, doc_user) for doc_user in USERS}
        for doc_user, key in keys.items():  # root writes the one line into the file the page made
            (base / "etc" / "ssh" / "authorized_keys" / USERS[doc_user]).write_text(
                Path(f"{key}.pub").read_text(), encoding="utf-8")
        server = Sshd(base / "sshd", [], match_blocks=_mapped_blocks(base), sftp_subsystem=DEBIAN_SFTP).start()
        try:
            pkeys = {u: paramiko.Ed25519Key(filename=str(k)) for u, k in keys.items()}

            def partner_endpoint(doc_user: str) -> Endpoint:  # what the page's `endpoints add` sets
                folder = PARTIES[doc_user].replace(":", "_")
                return Endpoint(SCHOOL, f"sftp://{USERS[doc_user]}@127.0.0.1:{server.port}/{folder}",
                                (server.fingerprint,))

            for doc_user, data in (("la_887", b"LA:887's package"), ("la_855", b"LA:855's package")):
                src = tmp_path / f"{doc_user}.lax"
                src.write_bytes(data)
                with sftp_cls(partner_endpoint(doc_user), lambda u=doc_user: pkeys[u], FAST) as t:
                    t.put(src, "p.lax")
                    assert t.list().names() == ["p.lax"]  # what the nightly run's uncollected check sees
            uploaded = drop / "LA_887" / "p.lax"
            assert uploaded.read_bytes() == b"LA:887's package"
            st = uploaded.stat()
            assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == (
                "0o640", pwd.getpwnam("daemon").pw_uid, pwd.getpwnam("sys").pw_gid)  # -u 0027 and the 2770 folder

            t, sftp = _raw(server.port, "daemon", pkeys["la_887"])  # LA:887 as a raw client, ignoring our checks
            try:
                other = ["/LA_855/p.lax", "/../LA_855/p.lax", "/LA_887/../LA_855/p.lax", f"{drop}/LA_855/p.lax"]
                attempts: dict[str, Callable[[], object]] = {
                    "list /": lambda: sftp.listdir("/"), "list /LA_855": lambda: sftp.listdir("/LA_855"),
                    "list outside": lambda: sftp.listdir(str(base)), "mkdir /x": lambda: sftp.mkdir("/x"),
                    "write /x": lambda: sftp.open("/x.lax", "wb").write(b"x")}
                for p in other:
                    attempts[f"read {p}"] = lambda p=p: sftp.open(p, "rb").read()
                    attempts[f"stat {p}"] = lambda p=p: sftp.stat(p)
                    attempts[f"rename {p}"] = lambda p=p: sftp.rename(p, "/LA_887/stolen.lax")
                    attempts[f"delete {p}"] = lambda p=p: sftp.remove(p)
                    attempts[f"overwrite {p}"] = lambda p=p: sftp.open(p, "wb").write(b"x")
                assert _refused(attempts) == []
                assert sftp.listdir("/LA_887") == ["p.lax"]
                assert sftp.normalize(".") == "/LA_887"  # `-d`: it starts in its own sub-folder
            finally:
                t.close()
            tt, _ = _raw(server.port, "daemon", pkeys["la_887"])  # a command runs internal-sftp instead
            try:
                chan = tt.open_session()
                chan.settimeout(5)
                chan.exec_command("id; cat /etc/passwd")
                chan.shutdown_write()
                out = b""
                with contextlib.suppress(TimeoutError):
                    while chunk := chan.recv(4096):
                        out += chunk
                assert b"uid=" not in out and b"root:" not in out
            finally:
                tt.close()
            assert (drop / "LA_855" / "p.lax").read_bytes() == b"LA:855's package"

            # the owner, chrooted to /srv/laxchange, collects from /inbox: the URL on the school's card
            own = Endpoint(SCHOOL, f"sftp://sys@127.0.0.1:{server.port}/inbox", (server.fingerprint,))
            runner = Runner(StaticEndpoints({SCHOOL: own}),
                            lambda e: sftp_cls(e, lambda: pkeys["laxchange"], FAST))
            result = collect(runner, SCHOOL, tmp_path / "inbox")
            assert result.ok, result.to_dict()
            assert sorted((f.folder, f.sender) for f in result.files) == [("LA_855", "LA:855"), ("LA_887", "LA:887")]
            assert sorted(p.read_bytes() for p in (tmp_path / "inbox").iterdir()) == [
                b"LA:855's package", b"LA:887's package"]
            assert (drop / "LA_887" / "processed" / "p.lax").exists()
            with sftp_cls(partner_endpoint("la_887"), lambda: pkeys["la_887"], FAST) as t:
                assert t.list().names() == []  # collected: LA:887 sees its delivery is no longer waiting

            # a partner's key is not the owner's: the school's card URL refuses it
            with pytest.raises(paramiko.AuthenticationException):
                _raw(server.port, "sys", pkeys["la_887"])
        finally:
            server.stop()
