"""docs/format.md §10, run as written: a package freshly packed by laxchange is opened step by step with
standard tools only (openssl, the age CLI or npm age-encryption, Python's standard library, rfc8785 and
securesystemslib), each step a subprocess running the block the document shows, and the record comes out
byte for byte as `laxchange open` writes it. The blocks are read from the document, so it cannot drift."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from laxchange._util import jsonio
from laxchange.trust.keystore import ALG_X25519
from tests.integration.test_key_files_standard_tools import on_a_terminal
from tests.support.parties import NODE_DIR, PASSPHRASE, REPO, make_party, record

DOC = REPO / "docs" / "format.md"


def recipe() -> dict[str, str]:
    """The `sh` blocks of §10, by their label (`helper`, `step-1`, …), dedented as rendered."""
    text = DOC.read_text()
    section = text[text.index("## 10. "):text.index("## 11. ")]
    blocks = {m.group(2): textwrap.dedent(m.group(3)) for m in
              re.finditer(r"^( *)```sh ([a-z0-9-]+)\n(.*?)^\1```$", section, re.S | re.M)}
    assert set(blocks) == {"helper", "step-1", "step-2", "step-3", "step-4", "step-5-x25519", "step-5-pq", "step-6",
                           "step-6-mldsa", "step-7"}, sorted(blocks)
    return blocks


def _run(blocks: dict[str, str], step: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = "set -euo pipefail\n" + blocks["helper"] + "\n" + blocks[step]
    return subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize("kind", ["x25519", "pq", "pq-mldsa"])
def test_the_documented_recipe_opens_a_fresh_package(tmp_path: Path, kind: str) -> None:
    for tool in ("openssl", "age", "python3", "bash", "node"):
        assert shutil.which(tool), f"{tool} is installed by ./scripts/setup"
    init = {"encryption_alg": ALG_X25519} if kind == "x25519" else {}
    a = make_party(tmp_path, "LA:919", "Example Council", mldsa=kind == "pq-mldsa")
    b = make_party(tmp_path, "URN:123456", "Example School", a.clock, **init)
    a.trust(b)
    b.trust(a)
    att = tmp_path / "letter.txt"
    att.write_bytes(b"A fictional letter.\n")
    data = a.pack(record(7), "URN:123456", attachments=[att])
    want = tmp_path / "want.json"
    b.open(data, out=want)
    work = tmp_path / "work"
    work.mkdir()
    pkg, card = tmp_path / "FILE.lax", tmp_path / "card.json"
    pkg.write_bytes(data)
    card.write_bytes(jsonio.dumps_pretty(a.card()[0]).encode())  # as `keys export-card -o` writes it
    manifest = b.open(data).manifest
    key = b.home.keys / f"{manifest.recipient_key_id}.age"
    # python3 is this virtualenv's, which has rfc8785 and securesystemslib (the test extras), as the document says.
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path), "PKG": str(pkg),
           "KEY": str(key), "CARD": str(card), "PASSPHRASE": PASSPHRASE.decode(), "LC_ALL": "C.UTF-8"}
    blocks = recipe()

    for step in ("step-1", "step-2", "step-3", "step-4"):
        r = _run(blocks, step, work, env)
        assert r.returncode == 0, (step, r.stdout, r.stderr)
        if step == "step-3":  # the Ed25519 signature (an ML-DSA-65 one is step 6's)
            assert r.stdout.count("Signature Verified Successfully") == 1
        if step == "step-4":
            assert r.stdout.split() == [manifest.sender, manifest.recipient, manifest.created, manifest.expires,
                                        manifest.encryption, manifest.recipient_key_id]
    if kind == "x25519":
        script = f"set -euo pipefail\nKEY={shlex.quote(str(key))}\n" + blocks["helper"] + blocks["step-5-x25519"]
        code, screen = on_a_terminal([shutil.which("bash") or "bash", "-c", f"cd {work} && {{ {script}\n}}"],
                                     passphrase=PASSPHRASE)
        assert code == 0, screen
    (work / "node_modules").symlink_to(NODE_DIR / "node_modules")  # `npm install age-encryption` here
    if kind != "x25519":
        r = _run(blocks, "step-5-pq", work, env)
        assert r.returncode == 0, r.stderr
    r = _run(blocks, "step-6", work, env)
    assert r.returncode == 0, r.stderr
    ed25519 = sorted(k.kid for k in a.store.ring().keys if k.use == "signing" and k.alg == "ed25519")
    assert r.stdout.count("Signature Verified Successfully") == 1 and ed25519[0] in manifest.sender_key_ids
    assert r.stdout.splitlines()[-1] == ed25519[0]  # securesystemslib's verdict: the Ed25519 key's
    r = _run(blocks, "step-6-mldsa", work, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ML-DSA-65 signature verified") == (2 if kind == "pq-mldsa" else 0)
    r = _run(blocks, "step-7", work, env)
    assert r.returncode == 0, r.stderr
    assert (work / "record.json").read_bytes() == want.read_bytes()
    assert (work / "letter.txt").read_bytes() == att.read_bytes()

    # Each check can fail: a changed byte in what was signed, a payload that is not the manifest's, a
    # manifest line that is not canonical JSON.
    pae = work / "m.pae"
    pae.write_bytes(pae.read_bytes()[:-1] + b"?")
    verify_only = blocks["step-3"].replace("unpack manifest.json m\n", "")
    bad = subprocess.run(["bash", "-c", "set -euo pipefail\n" + blocks["helper"] + "\n" + verify_only], cwd=work,
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode != 0 and "Signature Verification Failure" in bad.stdout + bad.stderr
    if kind == "pq-mldsa":
        assert _run(blocks, "step-6-mldsa", work, env).returncode != 0  # m.pae was altered above
    with (work / "payload.age").open("ab") as fh:
        fh.write(b"x")
    assert _run(blocks, "step-4", work, env).returncode != 0
    first, line, rest = data.split(b"\n", 2)
    other = tmp_path / "other.lax"
    other.write_bytes(first + b"\n" + line.replace(b'{"payload"', b'{ "payload"', 1) + b"\n" + rest)
    assert _run(blocks, "step-1", work, {**env, "PKG": str(other)}).returncode != 0
