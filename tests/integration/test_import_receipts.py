"""`import` and two-stage receipts end to end (issue 9 #3, #4, #7), as the two users would run them.

Council A and school B in two homes, over the embedded SFTP server (each party confined to its
own sub-folder of the other's drop folder): A packs and sends a PEP; `import` on B writes the
JSON, CSV, attachment and manifest and sends a delivered receipt; `import` on A shows the transfer
delivered; `receipt --applied` on B makes it applied on A; the same package delivered twice is
imported once and acknowledged again; a tampered package is quarantined on B and rejected on A;
`audit verify` passes on both sides.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from laxchange import package
from laxchange._util import jsonio
from laxchange.cli import main
from laxchange.mis import COLUMNS
from tests.support.drop_server import two_homes
from tests.support.parties import PASSPHRASE, Party, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
A, B = "LA:919", "URN:123456"


def lax(p: Party, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(p.home.root), *args], env=ENV)


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Party, Party, Path]]:
    with two_homes(tmp_path) as w:
        yield (w.a, w.b, w.root)


def _state(p: Party, tid: str) -> str:
    r = lax(p, "--json", "status", "--direction", "out")
    assert r.exit_code == 0, r.output
    return next(t["state"] for t in json.loads(r.stdout)["transfers"] if t["transfer_id"] == tid)


def _import(p: Party, code: int = 0) -> dict[str, object]:
    r = lax(p, "--json", "import")
    assert r.exit_code == code, r.output
    out: dict[str, object] = json.loads(r.stdout)
    return out


def test_import_receipts_duplicate_and_tampering(homes: tuple[Party, Party, Path], tmp_path: Path) -> None:
    a, b, server = homes
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(record(4)))
    pdf = tmp_path / "pep-signed.pdf"
    pdf.write_bytes(b"%PDF-1.4 fictional signed PEP\n")
    pkg = tmp_path / "pep.lax"
    r = lax(a, "--json", "pack", str(src), "--type", "pep-transfer", "--to", B,
            "-o", str(pkg), "--attach", str(pdf))
    assert r.exit_code == 0, r.output
    tid = json.loads(r.stdout)["manifest"]["transfer_id"]
    assert lax(a, "send", str(pkg), "--to", B).exit_code == 0
    assert (server / "school" / "LA_919" / f"{tid}.lax").is_file(), "uploaded under its transfer id"

    # B imports: JSON, CSV, attachment, HTML, manifest; a delivered receipt goes back
    report = _import(b)
    assert report["counts"] == {"imported": 1}
    folder = b.home.root / "received" / tid
    assert json.loads((folder / "record.json").read_text()) == json.loads(src.read_text())
    for name in ("record.json", "manifest.json"):  # the standard library's pretty JSON, byte for byte
        raw = (folder / name).read_bytes()
        assert raw == jsonio.dumps_pretty(json.loads(raw)).encode("utf-8"), name
    rows = list(csv.reader(io.StringIO((folder / "record.csv").read_text(encoding="utf-8"), newline="")))
    assert rows[0] == COLUMNS and len(rows) == 2
    assert dict(zip(COLUMNS, rows[1], strict=True))["upn"] == record(4)["record"]["child"]["upn"]
    assert (folder / "attachments" / "attachment-1.pdf").read_bytes() == pdf.read_bytes()
    assert (folder / "pep.html").read_text().startswith("<!DOCTYPE html>")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sender"] == A and manifest["sender_folder"] == A
    # the manifest lists every file of the folder (the import fsyncs them by that list)
    assert {p.name for p in folder.iterdir() if p.is_file()} == \
        {f["name"] for f in manifest["files"] if f["kind"] != "attachment"} | {"manifest.json"}
    assert manifest["payload_sha256"] == package.inspect(pkg)["manifest"]["payload_sha256"]
    assert [f["original_name"] for f in manifest["files"] if f["kind"] == "attachment"] == ["pep-signed.pdf"]
    assert [(e["stage"], e["status"], e["sent"]) for e in manifest["receipts"]] == [("delivered", "accepted", True)]
    assert not list(b.home.inbox.glob("*.lax")) and (b.home.inbox / "opened" / f"{tid}.lax").is_file()
    assert _import(b)["counts"] == {}, "a re-run finds nothing and trips no replay check"

    # A imports the receipt: the transfer is delivered
    report = _import(a)
    assert report["counts"] == {"receipt": 1}
    assert _state(a, tid) == "delivered"

    # the school puts the record in its MIS: applied. A wrong passphrase first: nothing can be packed, and
    # it says so (it used to say the receipt was kept in the outbox for the next import, which sent nothing)
    wrong = CliRunner().invoke(main, ["--home", str(b.home.root), "receipt", tid, "--applied"],
                               env={"LAXCHANGE_PASSPHRASE": "not the passphrase"})
    assert wrong.exit_code == 5, wrong.output
    assert "no receipt was made, so none is waiting to be sent" in wrong.output
    assert "kept in the outbox" not in wrong.output
    assert not list((b.home.outbox / "receipts").glob("*applied*"))
    r = lax(b, "--json", "receipt", tid, "--applied")
    assert r.exit_code == 0, r.output
    first_applied = json.loads(r.stdout)["receipt"]
    assert first_applied["already_sent"] is False and first_applied["sent"] is True
    uploaded = sorted(str(p.relative_to(server)) for p in server.rglob("*.lax"))
    again = lax(b, "--json", "receipt", tid, "--applied")
    assert again.exit_code == 0, again.output  # asked twice: true already, so not an error
    said = json.loads(again.stdout)["receipt"]
    assert said["already_sent"] is True and said["transfer_id"] == first_applied["transfer_id"]
    assert sorted(str(p.relative_to(server)) for p in server.rglob("*.lax")) == uploaded, "sent once"
    plain = lax(b, "receipt", tid, "--applied")
    assert plain.exit_code == 0 and "already sent" in plain.output and "nothing sent now" in plain.output
    _import(a)
    assert _state(a, tid) == "applied"

    # the same package delivered twice: imported once, acknowledged again (and harmless on A)
    assert lax(a, "send", str(pkg), "--to", B).exit_code == 0
    first = json.loads((folder / "manifest.json").read_text())["receipts"][0]["transfer_id"]
    report = _import(b)
    assert report["counts"] == {"duplicate": 1}
    assert [d.name for d in (b.home.root / "received").iterdir()] == [tid]
    again = report["receipts_sent"]
    assert [(s["stage"], s["transfer_id"], s["sent"]) for s in again] == [("delivered", first, True)], \
        "the same receipt file again, not a second receipt"  # type: ignore[index]
    assert _import(a)["counts"] == {"duplicate": 1}, "A already holds that receipt"
    assert _state(a, tid) == "applied"

    # a tampered package: quarantined on B (exit 10), rejected on A
    src2 = tmp_path / "pep2.json"
    src2.write_text(json.dumps(record(5)))
    pkg2 = tmp_path / "pep2.lax"
    r = lax(a, "--json", "pack", str(src2), "--type", "pep-transfer", "--to", B,
            "-o", str(pkg2))
    tid2 = json.loads(r.stdout)["manifest"]["transfer_id"]
    data = bytearray(pkg2.read_bytes())
    data[-50] ^= 0x01
    pkg2.write_bytes(bytes(data))
    assert lax(a, "send", str(pkg2), "--to", B).exit_code == 0
    report = _import(b, code=10)
    assert report["ok"] is False and report["counts"] == {"quarantined": 1}
    assert [(s["stage"], s["status"]) for s in report["receipts_sent"]] == [("delivered", "rejected")]  # type: ignore[index]
    assert not (b.home.root / "received" / tid2).exists()
    # A's import of B's refusal needs a look (exit 10), once: the PEP never reached the school
    report = _import(a, code=10)
    assert report["ok"] is False and report["counts"] == {"receipt": 1}
    assert [(i["ok"], i["receipt"]["refused"]) for i in report["items"]] == [(False, True)]  # type: ignore[index]
    assert _state(a, tid2) == "rejected"
    assert _import(a)["counts"] == {}, "the refusal was reported once; a re-run finds nothing"
    r = lax(a, "--json", "status")
    assert json.loads(r.stdout)["warnings"] == []

    for p in (a, b):
        r = lax(p, "audit", "verify")
        assert r.exit_code == 0, r.output

    # received list / show / export get it out again without the package
    r = lax(b, "--json", "received", "list")
    assert [x["transfer_id"] for x in json.loads(r.stdout)["received"]] == [tid]
    out = tmp_path / "export"
    r = lax(b, "received", "export", tid, "--to", str(out))
    assert r.exit_code == 0, r.output
    assert (out / "record.csv").read_bytes() == (folder / "record.csv").read_bytes()
    assert (out / "attachments" / "attachment-1.pdf").is_file()
    assert lax(b, "received", "export", tid, "--to", str(out)).exit_code == 2, "never overwrites"
