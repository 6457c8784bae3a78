"""`laxchange render` as its users run it: a record or a package in, a private HTML page out, nothing overwritten."""

from __future__ import annotations

import fnmatch
import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange._util import jsonio
from tests.support.parties import PASSPHRASE, REPO, record
from tests.support.records import rich_record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "LAXCHANGE_PASSPHRASE_FILE": ""}


def run(*args: str, cwd: Path | None = None):
    from laxchange.cli import main

    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, list(args), env=ENV, catch_exceptions=False)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner.invoke(main, list(args), env=ENV, catch_exceptions=False)
    finally:
        os.chdir(old)


def init(home: Path, party: str, name: str) -> str:
    r = run("--home", str(home), "init", "--party", party, "--name", name, "--kdf-work-factor", "10")
    assert r.exit_code == 0, r.output
    r = run("--home", str(home), "keys", "export-card", "-o", str(home.parent / f"{home.name}-card.json"), "--json")
    assert r.exit_code == 0, r.output
    return str(json.loads(r.output)["fingerprint"])


@pytest.fixture()
def rec_file(tmp_path: Path) -> Path:
    p = tmp_path / "record.json"
    p.write_text(jsonio.dumps_pretty(rich_record()))
    return p


def test_render_a_record_to_a_private_file(tmp_path: Path, rec_file: Path) -> None:
    out = tmp_path / "pep.html"
    r = run("render", str(rec_file), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert f"Wrote {out}" in r.output
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and rich_record()["pep"]["vsh_contact"]["name"] in html
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds personal data


def test_default_name_is_the_record_id_never_the_child(tmp_path: Path, rec_file: Path) -> None:
    r = run("--json", "render", str(rec_file), cwd=tmp_path)
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    rid = rich_record()["record_id"]
    assert got["path"] == f"pep-{rid}.html" and (tmp_path / got["path"]).is_file()
    child = rich_record()["child"]
    assert child["legal_name"]["family"] not in r.output and child["upn"] not in r.output


def test_an_existing_file_is_never_overwritten_without_force(tmp_path: Path, rec_file: Path) -> None:
    out = tmp_path / "pep.html"
    out.write_text("keep me")
    r = run("--json", "render", str(rec_file), "-o", str(out))
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "render.output-exists"
    assert out.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pep.html", "record.json"]  # no temp file left
    r = run("render", str(rec_file), "-o", str(out), "--force")
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_bad_inputs_fail_clearly_and_write_nothing(tmp_path: Path, rec_file: Path) -> None:
    receipt = tmp_path / "receipt.json"
    receipt.write_text(jsonio.dumps_pretty(record(1, "receipt")))
    r = run("render", str(receipt), "-o", str(tmp_path / "a.html"))
    assert r.exit_code == 2 and "carries no education record" in r.output and "Traceback" not in r.output
    bad = rich_record()
    del bad["pep"]["vsh_contact"]
    (tmp_path / "bad.json").write_text(jsonio.dumps_pretty(bad))
    r = run("render", str(tmp_path / "bad.json"), "-o", str(tmp_path / "b.html"))
    assert r.exit_code == 1 and "vsh_contact" in r.output
    r = run("render", str(rec_file), "-o", str(tmp_path / "no" / "c.html"))
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "d.html").mkdir()
    r = run("render", str(rec_file), "-o", str(tmp_path / "d.html"))
    assert r.exit_code == 2
    assert not any(p.suffix == ".html" and p.is_file() for p in tmp_path.rglob("*"))


def test_render_a_message_that_carries_the_record(tmp_path: Path) -> None:
    msg = tmp_path / "pep-transfer.json"
    msg.write_text(jsonio.dumps_pretty(record(5)))
    r = run("render", str(msg), "-o", str(tmp_path / "pep.html"))
    assert r.exit_code == 0, r.output
    assert record(5)["record"]["pep"]["child_voice"].replace("'", "&#39;") in (tmp_path / "pep.html").read_text()


def test_render_a_package_verifies_it_and_leaves_no_trace(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    fa, fb = init(a, "LA:919", "Example Council"), init(b, "URN:123456", "Example School")
    init(c, "LA:920", "Other Council")
    assert run("--home", str(a), "partners", "add", str(tmp_path / "b-card.json"), "--fingerprint", fb).exit_code == 0
    assert run("--home", str(b), "partners", "add", str(tmp_path / "a-card.json"), "--fingerprint", fa).exit_code == 0
    src = tmp_path / "record.json"
    src.write_text(jsonio.dumps_pretty(record(11)))
    lax = tmp_path / "out.lax"
    assert run("--home", str(a), "pack", str(src), "--type", "pep-transfer", "--to", "URN:123456",
               "-o", str(lax)).exit_code == 0
    before = sorted(p.relative_to(b) for p in b.rglob("*"))
    r = run("--home", str(b), "--json", "render", str(lax), "-o", str(tmp_path / "pep.html"))
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["sender"] == "LA:919" and got["record_id"] == record(11)["record"]["record_id"]
    assert record(11)["record"]["pep"]["vsh_contact"]["name"] in (tmp_path / "pep.html").read_text()
    assert sorted(p.relative_to(b) for p in b.rglob("*")) == before  # no ledger row, no quarantine
    # rendering again works (it is a view, not an import)
    assert run("--home", str(b), "render", str(lax), "-o", str(tmp_path / "again.html")).exit_code == 0
    # not for us: refused, exit 3, nothing written
    r = run("--home", str(c), "render", str(lax), "-o", str(tmp_path / "c.html"))
    assert r.exit_code == 3 and "not LA:920" in r.output and not (tmp_path / "c.html").exists()
    # tampered: refused, exit 3, nothing written
    data = bytearray(lax.read_bytes())
    data[len(data) // 2] ^= 0x20
    (tmp_path / "bad.lax").write_bytes(bytes(data))
    r = run("--home", str(b), "render", str(tmp_path / "bad.lax"), "-o", str(tmp_path / "bad.html"))
    assert r.exit_code == 3 and "package rejected" in r.output and not (tmp_path / "bad.html").exists()
    # a package needs a home
    r = run("--home", str(tmp_path / "nohome"), "render", str(lax), "-o", str(tmp_path / "n.html"))
    assert r.exit_code == 5 and not (tmp_path / "n.html").exists()


def test_every_template_file_is_shipped_as_package_data() -> None:
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["laxchange"]
    pkg = REPO / "laxchange"
    files = [p.relative_to(pkg).as_posix() for p in (pkg / "render" / "templates").iterdir()]
    assert files
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
