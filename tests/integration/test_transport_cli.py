"""`laxchange endpoints/send/collect/serve-sftp` end to end, as a new user would run them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest
from click.testing import CliRunner, Result

from laxchange import samples
from laxchange.cli import main
from tests.support.parties import PASSPHRASE, Party, make_party, record
from tests.support.sshd import ClientKey, Sshd, keygen

PASS = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def lax(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], env={**PASS, **(env or {})})


def _home_with_key(tmp: Path, name: str, sshd: Sshd) -> Path:
    """A home whose new, encrypted SSH key is authorized on the test sshd."""
    home = tmp / name
    r = lax(home, "endpoints", "ssh-key")
    assert r.exit_code == 0, r.output
    line = r.stdout.strip()  # stderr says this home has no party id yet
    assert line.startswith("ssh-ed25519 ")
    with sshd.authorized.open("a") as fh:
        fh.write(line + "\n")
    return home


def _parties(tmp: Path, sshd: Sshd | None = None, council: str = "LA:919",
             school: str = "URN:123456") -> tuple[Party, Party]:
    """A fictional council and school that trust each other, their SSH keys authorized on `sshd`."""
    a = make_party(tmp / "homes", council, "Example Council (fictional)")
    b = make_party(tmp / "homes", school, "Example School (fictional)")
    a.trust(b)
    b.trust(a)
    if sshd is not None:
        with sshd.authorized.open("a") as fh:
            for p in (a, b):
                fh.write(Path(str(p.home.ssh_client_key) + ".pub").read_text())
    return a, b


def _package(p: Party, to: str, out: Path, attachment_bytes: int = 100_000) -> str:
    """`laxchange pack` of a fictional PEP with an attachment of random bytes, into `out`; its transfer id."""
    src, att = out.with_suffix(".json"), out.with_suffix(".pdf")
    src.write_text(json.dumps(record(3)))
    with att.open("wb") as fh:
        for at in range(0, attachment_bytes, 1_000_000):
            fh.write(os.urandom(min(1_000_000, attachment_bytes - at)))
    r = lax(p.home.root, "--json", "pack", str(src), "--type", "pep-transfer", "--to", to, "--attach", str(att),
            "-o", str(out))
    assert r.exit_code == 0, r.output
    tid: str = json.loads(r.stdout)["manifest"]["transfer_id"]
    return tid


def test_endpoints_add_and_list(tmp_path: Path) -> None:
    home = tmp_path / "h"
    fpr = "SHA256:" + "A" * 43
    r = lax(home, "endpoints", "add", "LA:919", "sftp://la@127.0.0.1:2222/inbox", "--host-key-fingerprint", fpr)
    assert r.exit_code == 0, r.output
    r = lax(home, "--json", "endpoints", "list")
    data = json.loads(r.output)
    assert data["endpoints"] == [{"party": "LA:919", "url": "sftp://la@127.0.0.1:2222/inbox",
                                  "host_key_fingerprints": [fpr], "source": "config", "backend": "paramiko"}]


@pytest.mark.parametrize("args", [
    ["sftp://la@127.0.0.1:2222/inbox"],  # no pinned host key
    ["sftp://la@127.0.0.1:2222/inbox", "--host-key-fingerprint", "MD5:ab:cd"],
    ["ftp://la@127.0.0.1/inbox", "--host-key-fingerprint", "SHA256:" + "A" * 43],
    ["sftp://la:secret@127.0.0.1/inbox", "--host-key-fingerprint", "SHA256:" + "A" * 43],
])
def test_endpoints_add_refuses_bad_input(tmp_path: Path, args: list[str]) -> None:
    r = lax(tmp_path / "h", "endpoints", "add", "LA:919", *args)
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_ssh_key_is_encrypted_private_and_checked(tmp_path: Path) -> None:
    home = tmp_path / "h"
    r = lax(home, "endpoints", "ssh-key")
    assert r.exit_code == 0, r.output
    key = home / "keys" / "ssh_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key
    with pytest.raises(TypeError):  # OpenSSH format, and unreadable without the passphrase
        load_ssh_private_key(key.read_bytes(), password=None)
    with pytest.raises(paramiko.PasswordRequiredException):
        paramiko.Ed25519Key(filename=str(key))
    again = lax(home, "endpoints", "ssh-key")
    assert again.output == r.output
    wrong = lax(home, "endpoints", "ssh-key", env={"LAXCHANGE_PASSPHRASE": "wrong"})
    assert wrong.exit_code == 5
    key.chmod(0o640)
    loose = lax(home, "endpoints", "ssh-key")
    assert loose.exit_code == 5 and "chmod 600" in loose.output


def test_send_and_collect_between_two_homes(tmp_path: Path, sshd: Sshd) -> None:
    drop = tmp_path / "drop-for-school"
    drop.mkdir()
    a, b = _parties(tmp_path, sshd)
    council, school = a.home.root, b.home.root
    url = sshd.url(drop)
    added = lax(council, "endpoints", "add", "URN:123456", url, "--host-key-fingerprint", sshd.fingerprint)
    assert added.exit_code == 0
    assert lax(school, "endpoints", "add", "LA:919", url, "--host-key-fingerprint", sshd.fingerprint).exit_code == 0
    pkgs, tids = [], []
    for i in range(3):
        p = tmp_path / f"pkg-{i}.lax"
        tids.append(_package(a, "URN:123456", p, 100_000 + i))
        pkgs.append(p)
    logins = sshd.log.read_text().count("Accepted publickey")
    r = lax(council, "--json", "send", *map(str, pkgs), "--to", "URN:123456")
    assert r.exit_code == 0, r.output
    assert sshd.log.read_text().count("Accepted publickey") == logins + 1  # one connection for three files
    sent = json.loads(r.output)
    names = [f"{t}.lax" for t in tids]  # a package goes up as <transfer id>.lax, whatever it is called here
    assert sent["ok"] and [f["name"] for f in sent["parties"][0]["files"]] == names
    assert [f["local"] for f in sent["parties"][0]["files"]] == ["pkg-0.lax", "pkg-1.lax", "pkg-2.lax"]
    r = lax(school, "collect", "--from", "LA:919")
    assert r.exit_code == 0, r.output
    assert f"collected {names[0]}" in r.output
    for p, n in zip(pkgs, names, strict=True):
        assert (school / "inbox" / n).read_bytes() == p.read_bytes()
    assert sorted(os.listdir(drop / "processed")) == sorted(names)
    assert [n for n in os.listdir(drop) if n != "processed"] == []
    r = lax(school, "--json", "collect", "--from", "LA:919")
    assert r.exit_code == 0 and json.loads(r.output)["parties"][0]["files"] == []


def test_a_record_in_plain_text_is_refused_by_send_and_nothing_is_uploaded(tmp_path: Path, sshd: Sshd) -> None:
    """`send record.json` by mistake would put a child's details unencrypted in the partner's folder
    (a user walk-through did it: `sent rec.json`, exit 0). So would any other file that is not a
    package (a later walk-through sent the MIS's CSV and the PEP's PDF, exit 0; the school's
    laxchange quarantined them unopened): they are refused too, and only packages go."""
    drop = tmp_path / "drop"
    drop.mkdir()
    a, _b = _parties(tmp_path, sshd)
    council = a.home.root
    assert lax(council, "endpoints", "add", "URN:123456", sshd.url(drop),
               "--host-key-fingerprint", sshd.fingerprint).exit_code == 0
    rec = tmp_path / "rec.json"
    rec.write_text(json.dumps(samples.education_record(3), indent=2))
    other = tmp_path / "record.csv"
    other.write_text("upn,name\nA123456789012,Sorrel Fictional\n")
    pkg = tmp_path / "pep.lax"
    tid = _package(a, "URN:123456", pkg)
    r = lax(council, "send", str(pkg), str(rec), "--to", "URN:123456")
    assert r.exit_code == 2, r.output
    assert "rec.json is a laxchange document in plain text, not a package" in r.output
    assert "laxchange pack rec.json" in r.output
    assert "Traceback" not in r.output
    assert os.listdir(drop) == [], "nothing uploaded, not even the package"
    r = lax(council, "--json", "send", str(other), "--to", "URN:123456")
    refused = json.loads(r.stdout)
    assert r.exit_code == 2 and refused["error"] == "send.not-a-package", r.output
    assert "--attach record.csv" in refused["hint"]
    assert os.listdir(drop) == []
    r = lax(council, "send", str(pkg), "--to", "URN:123456")
    assert r.exit_code == 0, r.output
    assert os.listdir(drop) == [f"{tid}.lax"]


def test_changed_host_key_exits_4(tmp_path: Path, sshd: Sshd, client_key: ClientKey) -> None:
    home = _home_with_key(tmp_path, "council", sshd)
    impostor = Sshd(tmp_path / "impostor", [client_key.pub], host_key=keygen(tmp_path / "hk")).start()
    try:
        impostor.authorized.write_text(sshd.authorized.read_text())
        drop = tmp_path / "drop"
        drop.mkdir()
        lax(home, "endpoints", "add", "URN:1", impostor.url(drop), "--host-key-fingerprint", sshd.fingerprint)
        (drop / "p.lax").write_bytes(b"x")
        r = lax(home, "collect", "--from", "URN:1")  # the connection is refused before it is made
        assert r.exit_code == 4
        assert "host key" in r.output and "refusing" in r.output and "Traceback" not in r.output
        assert os.listdir(drop) == ["p.lax"] and not (home / "inbox" / "p.lax").exists()
        r = lax(home, "--json", "collect", "--from", "URN:1")
        assert r.exit_code == 4 and json.loads(r.output)["error"]["error"] == "host-key.mismatch"
    finally:
        impostor.stop()


def test_unknown_party_is_config_error(tmp_path: Path) -> None:
    assert lax(tmp_path / "h", "endpoints", "add", "LA:1", f"file://{tmp_path}").exit_code == 0
    r = lax(tmp_path / "h", "collect", "--from", "LA:999")
    assert r.exit_code == 5 and "endpoints add" in r.output, r.output


def test_local_folder_endpoint_end_to_end(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    council, school = _parties(tmp_path)
    a, b = council.home.root, school.home.root
    lax(a, "endpoints", "add", "URN:123456", f"file://{drop}")
    lax(b, "endpoints", "add", "LA:919", f"file://{drop}")
    pkg = tmp_path / "p.lax"
    tid = _package(council, "URN:123456", pkg)
    assert lax(a, "send", str(pkg), "--to", "URN:123456").exit_code == 0
    r = lax(b, "collect", "--delete", "--from", "LA:919")
    assert r.exit_code == 0, r.output
    assert (b / "inbox" / f"{tid}.lax").read_bytes() == pkg.read_bytes()
    assert os.listdir(drop) == []


@contextmanager
def _serve_sftp(tmp_path: Path, auth: Path, *folders: str, log_file: Path) -> Iterator[tuple[str, str]]:
    """`laxchange serve-sftp` as an operator starts it, under tmp_path/root: yields (port, host-key fingerprint)."""
    args = [arg for folder in folders for arg in ("--drop-folder", folder)]
    proc = subprocess.Popen([sys.executable, "-m", "laxchange", "serve-sftp", "--root", str(tmp_path / "root"),
                             "--port", "0", *args, "--authorized-keys", str(auth),
                             "--host-key", str(tmp_path / "hostkey"), "--log-file", str(log_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", first)
        assert m, first + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        fpr = second.split()[-1]
        assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fpr)
        yield m.group(1), fpr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_sftp_command(tmp_path: Path) -> None:
    """Issue 10: serve-sftp creates the folders it serves (0700), logs connections, logins and
    file operations (names only, never content) to --log-file, and confines each key's party."""
    client = keygen(tmp_path / "client")
    auth = tmp_path / "authorized_keys"
    auth.write_text(" ".join(Path(str(client) + ".pub").read_text().split()[:2]) + " LA:919\n")
    root = tmp_path / "root"
    log_file = tmp_path / "sftpd.log"
    with _serve_sftp(tmp_path, auth, "inbox=URN:123456", "mine=LA:919", log_file=log_file) as (port, fpr):
        for d in (root, root / "inbox", root / "mine"):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        council, _school = _parties(tmp_path)
        home = council.home.root
        lax(home, "endpoints", "add", "URN:123456", f"sftp://any@127.0.0.1:{port}/inbox",
            "--host-key-fingerprint", fpr, "--identity", str(client))
        pkg = tmp_path / "p.lax"
        tid = _package(council, "URN:123456", pkg)
        r = lax(home, "send", str(pkg), "--to", "URN:123456")
        assert r.exit_code == 0, r.output
        # LA:919 is a sender at inbox/: its file lands in its own sub-folder
        assert (root / "inbox" / "LA_919" / f"{tid}.lax").read_bytes() == pkg.read_bytes()
        assert stat.S_IMODE((root / "inbox" / "LA_919").stat().st_mode) == 0o700
        # a folder nobody serves is refused, and the error names the path
        lax(home, "endpoints", "add", "URN:123456", f"sftp://any@127.0.0.1:{port}/elsewhere",
            "--host-key-fingerprint", fpr, "--identity", str(client))
        r = lax(home, "send", str(pkg), "--to", "URN:123456")
        assert r.exit_code == 4 and "/elsewhere" in r.output, r.output
        # A URL that climbs out is refused when it is added (issue 10); the server's own
        # confinement of `..` is tested in tests/failure (ChrootSftp).
        escape = lax(home, "endpoints", "add", "LA:3", f"sftp://any@127.0.0.1:{port}/../..",
                     "--host-key-fingerprint", fpr, "--identity", str(client))
        assert escape.exit_code == 2 and "'..'" in escape.output, escape.output
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    text = log_file.read_text()
    assert re.search(r"conn #1 from 127\.0\.0\.1:\d+", text), text
    assert "conn #1 authenticated as LA:919" in text, text
    assert re.search(rf"LA:919 rename to {tid}\.lax inbox/LA_919/\.{tid}\.lax\.part-[0-9a-f]+: ok", text), text
    assert re.search(rf"LA:919 write /elsewhere/\.{tid}\.lax\.part-[0-9a-f]+ \(not a folder it may use\): refused",
                     text), text
    assert "Sorrel" not in text and "record" not in text


def test_the_ssh_key_line_works_as_it_is_in_serve_sftp_authorized_keys(tmp_path: Path) -> None:
    """`endpoints ssh-key` ends its line with our party id, the comment serve-sftp reads as whose key it is:
    the line pasted as it is lets the council deliver into its own folder of the school's drop folder."""
    council, _school = _parties(tmp_path, council="LA:887")
    home = council.home.root
    r = lax(home, "endpoints", "ssh-key")
    assert r.exit_code == 0, r.output
    line = r.stdout.strip()
    kind, blob, comment = line.split()
    assert comment == "LA:887" and r.stderr == ""
    assert [kind, blob] == (home / "keys" / "ssh_ed25519.pub").read_text().split()[:2]
    as_json = json.loads(lax(home, "--json", "endpoints", "ssh-key").stdout)
    assert as_json["public_key"] == line and as_json["party"] == "LA:887"
    auth = tmp_path / "authorized_keys"
    auth.write_text(line + "\n")
    log_file = tmp_path / "sftpd.log"
    with _serve_sftp(tmp_path, auth, "inbox=URN:123456", log_file=log_file) as (port, fpr):
        added = lax(home, "endpoints", "add", "URN:123456", f"sftp://school@127.0.0.1:{port}/inbox",
                    "--host-key-fingerprint", fpr)
        assert added.exit_code == 0, added.output
        pkg = tmp_path / "p.lax"
        tid = _package(council, "URN:123456", pkg)
        sent = lax(home, "send", str(pkg), "--to", "URN:123456")
        assert sent.exit_code == 0, sent.output
    assert (tmp_path / "root" / "inbox" / "LA_887" / f"{tid}.lax").read_bytes() == pkg.read_bytes()
    assert "authenticated as LA:887" in log_file.read_text()


def test_ssh_key_of_a_home_without_a_party_says_what_to_put_at_the_end(tmp_path: Path) -> None:
    r = lax(tmp_path / "h", "endpoints", "ssh-key")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().split()[2] == "laxchange"
    assert "no party id yet" in r.stderr and "serve-sftp" in r.stderr


def test_serve_sftp_refuses_a_key_without_a_party_id(tmp_path: Path) -> None:
    client = keygen(tmp_path / "client")
    auth = tmp_path / "authorized_keys"
    auth.write_text(Path(str(client) + ".pub").read_text())  # comment "test", not a party id
    r = lax(tmp_path / "h", "serve-sftp", "--root", str(tmp_path / "root"), "--drop-folder", "inbox=URN:123456",
            "--authorized-keys", str(auth), "--host-key", str(tmp_path / "hk"))
    assert r.exit_code == 5, r.output
    assert "authorized_keys:1" in r.output and "not a party id" in r.output and "LA:919" in r.output
    assert not (tmp_path / "root").exists(), "nothing is created for a server that cannot start"


def test_server_killed_during_100mb_send_then_next_run_delivers_once(tmp_path: Path, client_key: ClientKey) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    server = Sshd(tmp_path / "sshd", [client_key.pub]).start()
    council, _school = _parties(tmp_path, server)
    home = council.home.root
    big = tmp_path / "big.lax"
    tid = _package(council, "URN:123456", big, 100_000_000)
    lax(home, "endpoints", "add", "URN:123456", server.url(drop), "--host-key-fingerprint", server.fingerprint)
    stop = threading.Event()

    def kill_when_a_fifth_is_uploaded() -> None:
        while not stop.is_set():
            for p in drop.glob(f".{tid}.lax.part-*"):
                if p.stat().st_size >= 20_000_000:
                    server.kill()
                    return
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_when_a_fifth_is_uploaded)
    watcher.start()
    try:
        r = lax(home, "send", str(big), "--to", "URN:123456", "--retries", "1")
        stop.set()
        watcher.join()
        assert r.exit_code == 4, r.output
        assert [n for n in os.listdir(drop) if not n.startswith(".")] == []
        assert len(list((home / "cache" / "sftp-parts").rglob("*.log"))) == 1  # what the dead upload made
        authorized = server.authorized.read_text()
        server = Sshd(tmp_path / "sshd", [], host_key=server.host_key, port=server.port)
        server.authorized.write_text(authorized)
        server = server.start()
        r = lax(home, "send", str(big), "--to", "URN:123456")
        assert r.exit_code == 0, r.output
        r = lax(home, "send", str(big), "--to", "URN:123456")
        assert r.exit_code == 0, r.output
        # the dead upload's temporary file removed, by the name it logged
        assert os.listdir(drop) == [f"{tid}.lax"]
        assert list((home / "cache" / "sftp-parts").rglob("*.log")) == []
        assert hashlib.sha256((drop / f"{tid}.lax").read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    finally:
        stop.set()
        server.stop()


def test_collect_from_several_partners_at_once(tmp_path: Path, sshd: Sshd) -> None:
    home = _home_with_key(tmp_path, "school", sshd)
    for party in ("LA:1", "LA:2", "LA:3"):
        drop = tmp_path / party.replace(":", "-")
        drop.mkdir()
        (drop / f"from-{party[3:]}.lax").write_bytes(party.encode())
        lax(home, "endpoints", "add", party, sshd.url(drop), "--host-key-fingerprint", sshd.fingerprint)
    lax(home, "endpoints", "add", "LA:4", f"sftp://nobody@127.0.0.1:{sshd.port}/x",
        "--host-key-fingerprint", "SHA256:" + "B" * 43)
    r = lax(home, "--json", "collect", *(a for p in ("LA:1", "LA:2", "LA:3", "LA:4") for a in ("--from", p)))
    assert r.exit_code == 4
    data = json.loads(r.output)
    by_party = {p["party"]: p for p in data["parties"]}
    assert by_party["LA:4"]["error"]["error"] == "host-key.mismatch"
    assert all(by_party[p]["ok"] for p in ("LA:1", "LA:2", "LA:3"))
    assert sorted(os.listdir(home / "inbox")) == ["from-1.lax", "from-2.lax", "from-3.lax"]


def test_serve_sftp_on_a_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    """Exit 5 with the port named (a walk-through got 2, the code for a bad command line)."""
    client = keygen(tmp_path / "client")
    auth = tmp_path / "authorized_keys"
    auth.write_text(" ".join(Path(str(client) + ".pub").read_text().split()[:2]) + " LA:919\n")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = lax(tmp_path / "h", "--json", "serve-sftp", "--root", str(tmp_path / "root"), "--port", str(port),
                "--drop-folder", "inbox=URN:123456", "--authorized-keys", str(auth),
                "--host-key", str(tmp_path / "hk"))
    assert r.exit_code == 5 and json.loads(r.stdout)["error"] == "server.listen", r.output
    assert str(port) in json.loads(r.stdout)["message"]
