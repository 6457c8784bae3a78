"""A private key file opens with standard tools (issue 12 #2, DESIGN.md §11): `age -d` with the passphrase
gives an age identity that decrypts a package's payload with the Debian `age` CLI (X25519) and with the npm
`age-encryption` package (post-quantum), with no laxchange code on the way."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

from laxchange import dsse
from laxchange._util import jsonio
from laxchange.trust.keystore import ALG_X25519
from tests.support.parties import PASSPHRASE, make_party, node_oracle, record


def age_cli_with_passphrase(*args: str, passphrase: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """Run the Debian `age` binary on a pseudo-terminal and type `passphrase` at its prompt
    (age reads a passphrase only from the terminal, as a person would type it)."""
    binary = shutil.which("age")
    assert binary, "the Debian `age` package is installed by ./scripts/setup"
    return on_a_terminal([binary, *args], passphrase=passphrase, timeout=timeout)


def on_a_terminal(argv: list[str], *, passphrase: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """Run `argv` with a pseudo-terminal as its controlling terminal, typing `passphrase` at the first prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        try:
            os.execv(argv[0], argv)  # noqa: S606  a fixed program and arguments
        finally:
            os._exit(127)  # never back into pytest in a forked child
    seen, typed, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal: it has finished
                break
            if not chunk:
                break
            seen += chunk
            if not typed and b"passphrase" in seen.lower():
                os.write(fd, passphrase + b"\n")
                typed = True
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen


def _payload_and_key(tmp_path: Path, **init: object) -> tuple[Path, Path, bytes]:
    """A package from A to B (B's keys made with `init`): its age payload, B's key file for it, the package."""
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School", a.clock, **init)
    a.trust(b)
    b.trust(a)
    data = a.pack(record(5), "URN:123456")
    payload = tmp_path / "payload.age"
    payload.write_bytes(data.split(b"\n", 2)[2])  # the format line, the manifest line, then plain age
    m = json.loads(dsse.parse(json.loads(data.split(b"\n", 2)[1])).payload)  # the manifest names B's key
    return payload, b.home.keys / f"{m['recipient_key_id']}.age", data


def _statement(inner: bytes) -> dict:
    return json.loads(dsse.parse(jsonio.loads_strict(inner.split(b"\n")[0])).payload)


def test_age_cli_opens_an_x25519_key_file_with_the_passphrase_and_then_the_package(tmp_path: Path) -> None:
    payload, key_file, data = _payload_and_key(tmp_path, encryption_alg=ALG_X25519)
    identity = tmp_path / "identity.txt"
    code, screen = age_cli_with_passphrase("-d", "-o", str(identity), str(key_file), passphrase=PASSPHRASE)
    assert code == 0, screen
    text = identity.read_text()
    assert text.splitlines()[-1].startswith("AGE-SECRET-KEY-1") and text.startswith("# laxchange private key: ")
    os.chmod(identity, 0o600)
    binary = shutil.which("age")
    assert binary
    r = subprocess.run([binary, "-d", "-i", str(identity), "-o", str(tmp_path / "inner"), str(payload)],
                       capture_output=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert _statement((tmp_path / "inner").read_bytes())["document"] == record(5)
    # The one command keys/README.md shows, exactly, in bash (age asks for the passphrase on the terminal).
    readme = (Path(__file__).resolve().parents[2] / "keys" / "README.md").read_text()
    command = "tail -n +3 FILE.lax | age -d -i <(age -d keys/<kid>.age)"
    assert command in readme
    bash = shutil.which("bash")
    assert bash
    pkg = tmp_path / "FILE.lax"
    pkg.write_bytes(data)
    line = command.replace("FILE.lax", str(pkg)).replace("keys/<kid>.age", str(key_file))
    code, screen = on_a_terminal([bash, "-c", f"{line} > {tmp_path / 'inner2'}"], passphrase=PASSPHRASE)
    assert code == 0, screen
    assert (tmp_path / "inner2").read_bytes() == (tmp_path / "inner").read_bytes()
    # The wrong passphrase opens nothing.
    code, _ = age_cli_with_passphrase("-d", "-o", str(tmp_path / "no.txt"), str(key_file),
                                      passphrase=b"not the passphrase")
    assert code != 0 and not (tmp_path / "no.txt").exists()


def test_npm_age_opens_a_post_quantum_key_file_with_the_passphrase_and_then_the_package(tmp_path: Path) -> None:
    payload, key_file, _ = _payload_and_key(tmp_path)
    identity = tmp_path / "identity.txt"
    node_oracle("decrypt-passphrase", str(key_file), str(identity), env_extra={"AGE_PASSPHRASE": PASSPHRASE.decode()})
    assert identity.read_text().splitlines()[-1].startswith("AGE-SECRET-KEY-PQ-1")
    node_oracle("decrypt-identity-file", str(payload), str(tmp_path / "inner"),
                env_extra={"AGE_IDENTITY_FILE": str(identity)})
    assert _statement((tmp_path / "inner").read_bytes())["document"] == record(5)
