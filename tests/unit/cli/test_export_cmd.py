"""`laxchange export` and `laxchange records` as their users run them: the files written, exit
codes, refusals with nothing written, and --json."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner, Result

from laxchange import samples
from laxchange.cli import main
from laxchange.mis import TABLES, record_to_row, template_text
from laxchange.mis.from_csv import COLUMNS
from tests.support.parties import make_party


def lax(*args: str, home: Path | None = None) -> Result:
    pre = ["--home", str(home)] if home else []
    return CliRunner().invoke(main, [*pre, *args])


def _record(tmp_path: Path, seed: int = 11) -> Path:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(samples.education_record(seed)))
    return path


def test_export_ctf_from_a_record_file(tmp_path: Path) -> None:
    src = _record(tmp_path)
    rec = json.loads(src.read_text())
    out = tmp_path / "x.xml"
    r = lax("export", str(src), "--ctf", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert f"partial CTF 25 for record {rec['record_id']}" in r.stdout
    assert f"MIS usually expect the name {rec['school']['laestab']}_CTF_" in r.stdout
    assert "not in the CTF: $.exclusions" in r.stdout
    root = ET.fromstring(out.read_bytes())  # noqa: S314 - our own output
    assert root.findtext("CTFpupilData/Pupil/LookedAfter/CareAuthority") == rec["placement"]["placing_la"]
    assert rec["child"]["legal_name"]["family"] not in r.stdout, "no personal data on the terminal"


def test_export_json_and_the_preceding_version(tmp_path: Path) -> None:
    src = _record(tmp_path)
    out = tmp_path / "x.xml"
    r = lax("--json", "export", str(src), "--ctf", "--ctf-version", "24", "-o", str(out))
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["ok"] and data["ctf_version"] == "24" and data["path"] == str(out)
    assert any(o.startswith("$.pep:") for o in data["omitted"])
    assert b"<Gender>" in out.read_bytes() and b"<Sex>" not in out.read_bytes()


def test_export_csv_writes_the_flat_row_and_every_table(tmp_path: Path) -> None:
    src = _record(tmp_path)
    out = tmp_path / "csv"
    r = lax("export", str(src), "--csv", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted(["record.csv", *TABLES])
    rows = list(csv.DictReader(io.StringIO((out / "attainment.csv").read_text(), newline="")))
    assert len(rows) == len(samples.education_record(11)["attainment"])


def test_export_refusals_write_nothing(tmp_path: Path) -> None:
    src = _record(tmp_path)
    rec = json.loads(src.read_text())
    r = lax("--json", "export", str(src), "--ctf")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "export.no-output"
    assert f"{rec['school']['laestab']}_CTF_{rec['school']['laestab']}_001.xml" in json.loads(r.stdout)["hint"]
    r = lax("--json", "export", str(src), "--ctf", "--csv", "-o", str(tmp_path / "x"))
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "export.format"
    r = lax("--json", "export", "no-such-thing", "--ctf", "-o", str(tmp_path / "x.xml"))
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "export.source"
    r = lax("--json", "export", str(src), "--ctf", "-o", str(src), "--force")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "output.is-input"
    bad = dict(rec, as_of="2099-01-01")
    src.write_text(json.dumps(bad))
    r = lax("--json", "export", str(src), "--ctf", "-o", str(tmp_path / "x.xml"))
    assert r.exit_code == 1 and json.loads(r.stdout)["error"] == "record.invalid"
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(samples.receipt(1)))
    r = lax("--json", "export", str(receipt), "--csv", "-o", str(tmp_path / "c"))
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "export.no-record"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["receipt.json", "record.json"]


def test_an_unknown_transfer_says_how_to_find_one(tmp_path: Path) -> None:
    school = make_party(tmp_path, "URN:123456", "Example School")
    r = lax("--json", "export", "ab" * 16, "--ctf", "-o", str(tmp_path / "x.xml"), home=school.home.root)
    assert r.exit_code == 2 and not (tmp_path / "x.xml").exists()
    out = json.loads(r.stdout)
    assert out["error"] == "received.not-found" and "laxchange received list" in out["hint"]


def test_records_template_prints_the_shipped_template() -> None:
    r = lax("records", "template")
    assert r.exit_code == 0 and r.stdout.splitlines() == template_text().splitlines()
    assert r.stdout.splitlines()[0].split(",") == [c.name for c in COLUMNS]


def _template(tmp_path: Path, seeds: range, break_rows: dict[int, tuple[str, str]]) -> Path:
    rows = [record_to_row(samples.education_record(s)) for s in seeds]
    for index, (column, value) in break_rows.items():
        rows[index][column] = value
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([c.name for c in COLUMNS])
    w.writerows([[r[c.name] for c in COLUMNS] for r in rows])
    path = tmp_path / "epep.csv"
    path.write_text(buf.getvalue())
    return path


def test_records_from_csv_partial_success_is_exit_10_with_a_clear_report(tmp_path: Path) -> None:
    path = _template(tmp_path, range(1, 21), {3: ("upn", "A123"), 10: ("sen_provision", "X")})
    out = tmp_path / "records"
    r = lax("records", "from-csv", str(path), "-o", str(out))
    assert r.exit_code == 10, r.output
    assert "NOT WRITTEN row 5" in r.stdout and "row 5, column upn:" in r.stdout
    assert "row 12, column sen_provision:" in r.stdout and "hint:" in r.stdout
    assert "18 records written" in r.stdout
    assert len(list(out.iterdir())) == 18
    r = lax("--json", "records", "from-csv", str(path), "-o", str(tmp_path / "again"))
    assert r.exit_code == 10
    data = json.loads(r.stdout)
    assert data["ok"] is False and data["counts"] == {"rows": 20, "written": 18, "failed": 2}
    assert [(f["row"], [e["column"] for e in f["errors"]]) for f in data["failed"]] == [
        (5, ["upn"]), (12, ["sen_provision"])]


def test_records_from_csv_all_good_is_0_and_none_good_is_1(tmp_path: Path) -> None:
    good = _template(tmp_path, range(1, 4), {})
    r = lax("records", "from-csv", str(good), "-o", str(tmp_path / "ok"))
    assert r.exit_code == 0 and "3 record(s) written" in r.stdout
    bad = _template(tmp_path, range(1, 3), {0: ("home_la", "000"), 1: ("home_la", "000")})
    r = lax("records", "from-csv", str(bad), "-o", str(tmp_path / "none"))
    assert r.exit_code == 1 and "nothing written" in r.stderr and not (tmp_path / "none").exists()
