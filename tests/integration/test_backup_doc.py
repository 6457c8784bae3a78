"""docs/operators.md, "Backups and the restore check", run as written.

A school's home with an imported PEP (over the embedded server, as in real use) is backed up by
the page's script (paths given through the variables it reads), then restored and checked by the
page's restore commands (paths moved into the test's folder). The archive must be an age file with
no plaintext of the record in it; the restored home must verify with the head hash written beside
the archive, open its keys with the passphrase, and hold the received record byte for byte. The
script must refuse to run while the home's run lock is held, and write nothing then.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from laxchange.cli import main
from tests.support.drop_server import two_homes
from tests.support.parties import PASSPHRASE, record

DOC = Path(__file__).resolve().parents[2] / "docs" / "operators.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
REPO = Path(__file__).resolve().parents[2]


def _block(first_line: str) -> str:
    found = [body for _, body in BLOCK.findall(DOC.read_text(encoding="utf-8")) if body.startswith(first_line)]
    assert len(found) == 1, f"docs/operators.md should have one block starting {first_line!r}"
    return found[0]


def _env(tmp: Path) -> dict[str, str]:
    """The environment the page's commands run in: laxchange (this checkout's) on PATH, the passphrase."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "laxchange"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m laxchange \"$@\"\n", encoding="utf-8")
    shim.chmod(0o755)
    pass_file = tmp / "passphrase"
    pass_file.write_bytes(PASSPHRASE + b"\n")
    pass_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAXCHANGE_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", PYTHONPATH=str(REPO), LAXCHANGE_PASSPHRASE_FILE=str(pass_file))
    return env


def test_backup_script_and_restore_check_as_written(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with two_homes(tmp_path) as w:
        doc = record(9)
        src = tmp_path / "pep.json"
        src.write_text(json.dumps(doc), encoding="utf-8")
        pkg = tmp_path / "pep.lax"
        lax = CliRunner(env={"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()})
        r = lax.invoke(main, ["--home", str(w.a.home.root), "--json", "pack", str(src), "--type", "pep-transfer",
                              "--to", w.b.party, "-o", str(pkg)])
        assert r.exit_code == 0, r.output
        tid = json.loads(r.stdout)["manifest"]["transfer_id"]
        assert lax.invoke(main, ["--home", str(w.a.home.root), "send", str(pkg), "--to", w.b.party]).exit_code == 0
        r = lax.invoke(main, ["--home", str(w.b.home.root), "import"])
        assert r.exit_code == 0, r.output
    home = w.b.home.root
    received = home / "received" / tid / "record.json"
    assert received.is_file()

    identity = tmp_path / "backup-identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipients = tmp_path / "backup-recipients.txt"
    recipients.write_text(subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True,
                                         text=True).stdout, encoding="utf-8")
    dest = tmp_path / "backups"
    dest.mkdir()
    script = tmp_path / "laxchange-backup"
    script.write_text(_block("#!/bin/bash\n# /usr/local/sbin/laxchange-backup"), encoding="utf-8")
    script.chmod(0o755)
    run_env = {**env, "LAXCHANGE_HOME": str(home), "BACKUP_DIR": str(dest), "BACKUP_RECIPIENTS": str(recipients)}

    # while a run holds the lock, the script refuses and writes nothing
    with (home / "run.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = subprocess.run([str(script)], env=run_env, capture_output=True, text=True, timeout=120, check=False)
        fcntl.flock(held, fcntl.LOCK_UN)
    assert busy.returncode == 75 and "try again later" in busy.stderr, busy.stderr
    assert list(dest.iterdir()) == []

    reader = sqlite3.connect(home / "ledger.sqlite3")  # another command reading: the -wal and -shm files are live
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert (home / "ledger.sqlite3-wal").exists() and (home / "ledger.sqlite3-shm").exists()
        done = subprocess.run([str(script)], env=run_env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        reader.close()
    assert done.returncode == 0, done.stderr
    archives = sorted(dest.glob("*.tar.age"))
    assert len(archives) == 1 and done.stdout.strip().endswith(str(archives[0]))
    assert sorted(p.name for p in dest.iterdir()) == sorted([archives[0].name,
                                                             archives[0].name.replace(".tar.age", ".audit.json")])
    data = archives[0].read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n")
    name = doc["record"]["child"]["legal_name"]["family"].encode()
    assert name in received.read_bytes() and name not in data, "the archive holds no plaintext of the record"
    listing = subprocess.run(["bash", "-c", f"age -d -i {identity} {archives[0]} | tar -tf -"], check=True,
                             capture_output=True, text=True).stdout.split()
    assert sorted(m for m in listing if m.endswith("ledger.sqlite3")) == ["ledger.sqlite3"]  # SQLite's copy, once
    assert not any(m.endswith(("run.lock", "-wal", "-shm")) for m in listing)
    assert f"./received/{tid}/record.json" in listing and f"./keys/{w.b.store.ring().keys[0].kid}.age" in listing
    audit_at_backup = json.loads(archives[0].with_name(archives[0].name.replace(".tar.age", ".audit.json")).read_text())
    assert audit_at_backup["ok"] is True

    # the restore check as the page gives it, in one shell, with its paths moved here
    scratch = tmp_path / "restore-check"
    moves = {"/srv/restore-check": str(scratch), "backup-identity.txt": str(identity),
             "laxchange-20261201T041500Z.tar.age": str(archives[0])}
    lines = []
    for line in _block("# restore check").splitlines():
        if line.strip() and not line.startswith("#"):
            for old, new in moves.items():
                line = line.replace(old, new)
            lines.append(line)
    *check, cleanup = lines
    assert shlex.split(cleanup) == ["rm", "-rf", str(scratch)], "the check ends by removing the restored records"
    marked = "".join(f"echo '@@@ {i}'\n{line}\n" for i, line in enumerate(check))
    got = subprocess.run(["bash", "-c", "set -euo pipefail\n" + marked], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, check=False)
    assert got.returncode == 0, got.stderr
    outputs = dict(zip(check, re.split(r"^@@@ \d+\n", got.stdout, flags=re.M)[1:], strict=True))
    by_cmd = {line.split(str(scratch), 1)[1].strip(): out for line, out in outputs.items()
              if "laxchange --home" in line}
    verified = json.loads(by_cmd["--json audit verify"])
    assert verified["ok"] is True and verified["head"] == audit_at_backup["head"]
    assert "missing" not in by_cmd["keys list"] and "present" in by_cmd["keys list"]
    assert w.a.party in by_cmd["partners list"]
    assert tid in by_cmd["received list"]
    restored = scratch / "received" / tid / "record.json"
    assert restored.read_bytes() == received.read_bytes()
    assert oct(scratch.stat().st_mode & 0o777) == "0o700" and oct(restored.stat().st_mode & 0o777) == "0o600"
    assert subprocess.run(["bash", "-c", cleanup], check=False).returncode == 0
    assert not scratch.exists()
