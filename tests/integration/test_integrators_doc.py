"""docs/integrators.md: the example program runs as written, between a council and a school.

The program is taken from the page and run as its own process (only `import laxchange`, the
public API), over the embedded SFTP server each home's card points to: the council sends an
education record as a PEP transfer; the school receives it, verified, with the ledger and audit
log as the command line would leave them; a record with a wrong UPN check letter is refused with
its finding and exit 1, nothing sent; and a second `receive` finds nothing new.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import laxchange
from laxchange.cli import main
from tests.support import pyast
from tests.support.drop_server import two_homes
from tests.support.parties import PASSPHRASE, record

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrators.md"
REPO = Path(__file__).resolve().parents[2]


def example_program() -> str:
    (body,) = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)
    return str(body)


def test_the_example_uses_only_the_public_api() -> None:
    tree = pyast.parse(example_program())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    assert imported <= {"annotations", "json", "sys", "Path", "laxchange"}
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "laxchange"}
    assert used and used <= set(laxchange.__all__), used - set(laxchange.__all__)


def _run(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAXCHANGE_")}
    env.update(PYTHONPATH=str(REPO), LAXCHANGE_PASSPHRASE=PASSPHRASE.decode())
    return subprocess.run([sys.executable, str(program), *args], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


def _status(home: Path) -> list[dict[str, str]]:
    r = CliRunner().invoke(main, ["--home", str(home), "--json", "status"])
    assert r.exit_code == 0, r.output
    return list(json.loads(r.stdout)["transfers"])


def test_the_example_sends_a_pep_and_the_school_receives_it(tmp_path: Path) -> None:
    program = tmp_path / "pep_exchange.py"
    program.write_text(example_program(), encoding="utf-8")
    doc = record(5, "education-record")
    rec = tmp_path / "record.json"
    rec.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    bad = tmp_path / "bad.json"
    broken = json.loads(json.dumps(doc))
    upn = broken["child"]["upn"]
    broken["child"]["upn"] = ("B" if upn[0] != "B" else "C") + upn[1:]
    bad.write_text(json.dumps(broken), encoding="utf-8")
    with two_homes(tmp_path) as w:
        a, b = w.a.home.root, w.b.home.root

        refused = _run(program, "send", str(a), str(bad), w.b.party)
        assert refused.returncode == 1 and "[upn.check-letter]" in refused.stderr, refused.stderr
        assert _status(a) == []

        sent = _run(program, "send", str(a), str(rec), w.b.party)
        assert sent.returncode == 0, sent.stderr
        said = re.fullmatch(r"sent transfer ([0-9a-f]{32}) to URN:123456\n", sent.stdout)
        assert said is not None, sent.stdout
        tid = said.group(1)
        assert [(t["direction"], t["state"], t["transfer_id"]) for t in _status(a)] == [("out", "sent", tid)]
        assert (a / "outbox" / f"{tid}.lax").is_file()

        out = tmp_path / "received"
        got = _run(program, "receive", str(b), str(out))
        assert got.returncode == 0, got.stderr
        assert got.stdout == f"received transfer {tid} from LA:919: pep-transfer@1.1.0 in {out / tid}.json\n"
        message = json.loads((out / f"{tid}.json").read_text(encoding="utf-8"))
        assert message["record"] == doc and message["transfer_reason"] == "new-placement"
        assert [(t["direction"], t["state"], t["transfer_id"]) for t in _status(b)] == [("in", "imported", tid)]
        assert (b / "inbox" / "opened" / f"{tid}.lax").is_file()
        r = CliRunner().invoke(main, ["--home", str(b), "audit", "verify"])
        assert r.exit_code == 0, r.output

        again = _run(program, "receive", str(b), str(out))
        assert again.returncode == 0 and again.stdout == "", again.stderr
