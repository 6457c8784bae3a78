"""Issue 15's acceptance, as the users would run it: council A sends a PEP over the embedded SFTP
server; school B imports it (the received folder now has the table CSVs too) and exports a
partial CTF 25 for its MIS and the CSV tables; a virtual school turns a 20-row spreadsheet with
two bad rows into 18 records and a report of the two."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from laxchange import samples
from laxchange.cli import main
from laxchange.mis import TABLES, record_to_row
from laxchange.mis.from_csv import COLUMNS
from tests.support.drop_server import B, two_homes
from tests.support.parties import PASSPHRASE, Party, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def lax(p: Party | None, *args: str) -> Result:
    pre = ["--home", str(p.home.root)] if p else []
    return CliRunner().invoke(main, [*pre, *args], env=ENV)


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[tuple[Party, Party]]:
    with two_homes(tmp_path) as w:
        yield (w.a, w.b)


def test_a_school_imports_a_pep_and_exports_a_ctf_and_csv(homes: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = homes
    pep = record(11)  # an EHC plan, KS2 results, a suspension
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(pep))
    r = lax(a, "--json", "pack", str(src), "--type", "pep-transfer", "--to", B, "-o", str(tmp_path / "pep.lax"))
    assert r.exit_code == 0, r.output
    tid = json.loads(r.stdout)["manifest"]["transfer_id"]
    assert lax(a, "send", str(tmp_path / "pep.lax"), "--to", B).exit_code == 0
    r = lax(b, "--json", "import")
    assert r.exit_code == 0, r.output

    folder = b.home.root / "received" / tid
    manifest = json.loads((folder / "manifest.json").read_text())
    csvs = [f["name"] for f in manifest["files"] if f["kind"] == "csv"]
    assert csvs == ["record.csv", *TABLES]
    targets = list(csv.DictReader(io.StringIO((folder / "targets.csv").read_text(), newline="")))
    assert {t["transfer_id"] for t in targets} == {tid}
    assert len(targets) == len(pep["record"]["pep"]["short_term_targets"] + pep["record"]["pep"]["long_term_targets"])

    # the Designated Teacher makes the file for the school's MIS
    out = tmp_path / "x.xml"
    r = lax(b, "export", tid, "--ctf", "-o", str(out))
    assert r.exit_code == 0, r.output
    rec = pep["record"]
    root = ET.fromstring(out.read_bytes())  # noqa: S314 - our own output
    assert root.findtext("Header/DocumentQualifier") == "partial" and root.findtext("Header/CTFversion") == "25.0"
    p = root.find("CTFpupilData/Pupil")
    assert p is not None
    assert p.findtext("LookedAfter/InCare") == "true"
    assert p.findtext("LookedAfter/CareAuthority") == rec["placement"]["placing_la"]
    assert p.findtext("SENhistory/SEN/SENprovision") == rec["sen"]["provision"]
    assert p.findtext("SENhistory/SENneeds/SENneed/SENtype") == rec["sen"]["primary_need"]  # rank 1 first
    assert p.findtext("Attendance/YearData/SessionsPossible") == str(rec["attendance"][0]["sessions_possible"])
    assert [s.findtext("Result") for s in p.findall("StageAssessments/KeyStage/StageAssessment")] == [
        a["value"] for a in rec["attainment"] if a["stage"] == "KS2"]
    assert [c.findtext("Email") for c in p.findall("Contacts/Contact")] == [
        rec["contacts"]["social_worker"]["email"], rec["pep"]["vsh_contact"]["email"]]

    r = lax(b, "--json", "export", tid, "--csv", "-o", str(tmp_path / "csv"))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["transfer_id"] == tid
    for name in ("record.csv", *TABLES):
        assert (tmp_path / "csv" / name).read_bytes() == (folder / name).read_bytes(), name

    # `received export` copies the table CSVs too (they are in the manifest)
    assert lax(b, "received", "export", tid, "--to", str(tmp_path / "copy")).exit_code == 0
    assert all((tmp_path / "copy" / name).is_file() for name in TABLES)


def test_a_virtual_school_turns_twenty_rows_with_two_bad_into_eighteen_records(tmp_path: Path) -> None:
    rows = [record_to_row(samples.education_record(seed)) for seed in range(101, 121)]
    rows[6]["date_of_birth"] = "2015-13-01"  # spreadsheet row 8
    rows[15]["placing_la"] = "999"           # row 17: no such council
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([c.name for c in COLUMNS])
    w.writerows([[r[c.name] for c in COLUMNS] for r in rows])
    path = tmp_path / "epep-export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    out = tmp_path / "records"
    r = lax(None, "records", "from-csv", str(path), "-o", str(out))
    assert r.exit_code == 10, r.output
    assert len(list(out.glob("row-*.json"))) == 18
    assert "row 8, column date_of_birth:" in r.stdout and "row 17, column placing_la:" in r.stdout
    assert "2 row(s) not written" in r.stdout
    r = lax(None, "validate", str(out))
    assert r.exit_code == 0, r.output
