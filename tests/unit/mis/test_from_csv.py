"""Records from the spreadsheet template: the shipped sample, the documented columns, row-by-row
validation with `validate`'s rule ids and hints, per-row and per-column reports, nothing written
for a failing row, and the 20-rows-with-2-bad acceptance case."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from laxchange import samples
from laxchange.clock import FixedClock
from laxchange.errors import UsageError
from laxchange.mis import build_records, read_rows, record_to_row, records_from_csv, template_csv, template_text
from laxchange.mis.from_csv import COLUMN_PATTERNS, COLUMNS
from laxchange.validate import validate_document, validate_file

REPO = Path(__file__).resolve().parents[3]
CLOCK = FixedClock(dt.datetime(2026, 10, 2, 9, 0, tzinfo=dt.UTC))
#: The fictional children in the shipped template (laxchange/mis/template.csv).
TEMPLATE_SEEDS = (3, 7, 11)


def _csv(rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    cols = columns or [c.name for c in COLUMNS]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(cols)
    w.writerows([[r.get(c, "") for c in cols] for r in rows])
    return buf.getvalue()


def _ids() -> Any:
    n = iter(range(1, 10_000))
    return lambda: f"{next(n):032x}"


def test_the_shipped_template_is_the_sample_children_and_every_row_is_valid(tmp_path: Path) -> None:
    text = template_text()
    assert text == template_csv([samples.education_record(s) for s in TEMPLATE_SEEDS]), \
        "regenerate laxchange/mis/template.csv with template_csv() over TEMPLATE_SEEDS"
    assert "@" in text and all(m.endswith(".example") for m in re.findall(r"@([a-z0-9.-]+)", text))
    assert re.findall(r"01632 960\d{3}", text) and "SYNTH-" in text
    path = tmp_path / "t.csv"
    path.write_text(text)
    results = build_records(read_rows(path), clock=CLOCK, new_id=_ids())
    assert [r.row for r in results] == [2, 3, 4] and all(r.ok for r in results), [r.errors for r in results]


def test_the_columns_are_documented_in_order() -> None:
    text = (REPO / "docs" / "records-csv.md").read_text()
    section = text.split("## The columns", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `([a-z_N0-9]+)` \|", section, flags=re.M) == COLUMN_PATTERNS


def test_a_row_comes_back_as_the_record_it_was_made_from(tmp_path: Path) -> None:
    rec = samples.education_record(11)
    path = tmp_path / "one.csv"
    path.write_text(_csv([record_to_row(rec)]))
    [result] = build_records(read_rows(path), clock=CLOCK)
    assert result.ok and result.record is not None
    got = result.record
    for key in ("record_id", "as_of", "child", "placement", "sen", "attendance", "exclusions"):
        assert got[key] == rec[key], key
    assert got["school"] == rec["school"]
    assert got["pep"]["short_term_targets"] == rec["pep"]["short_term_targets"]
    assert got["pep"]["vsh_contact"] == rec["pep"]["vsh_contact"]
    assert got["contacts"] == rec["contacts"]
    assert got["pep"]["pupil_premium_plus"]["allocation_pence"] == round(
        rec["pep"]["pupil_premium_plus"]["allocation_gbp"] * 100)


def _twenty(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    rows = [record_to_row(samples.education_record(seed)) for seed in range(1, 21)]
    good = rows[3]["upn"]
    rows[3]["upn"] = good[:-1] + ("A" if good[-1] != "A" else "B")  # spreadsheet row 5: a wrong check letter
    rows[10]["date_of_birth"] = "31/02/2015"                          # row 12: no such date
    rows[10]["vsh_email"] = rows[10]["vsh_phone"] = ""                # ... and no way to reach the VSH
    path = tmp_path / "epep-export.csv"
    path.write_text(_csv(rows))
    return path, rows


def test_twenty_rows_with_two_bad_give_eighteen_records_and_a_report(tmp_path: Path) -> None:
    path, rows = _twenty(tmp_path)
    out = tmp_path / "records"
    report = records_from_csv(path, out, clock=CLOCK)
    assert len(report.rows) == 20 and len(report.written) == 18
    assert [r.row for r in report.failed] == [5, 12]
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"row-{n:03d}.json" for n in range(2, 22) if n not in (5, 12)]
    for f in files:  # each written record passes `laxchange validate` as it is
        assert validate_file(out / f, clock=CLOCK).ok
    blob = " ".join(files)
    for r in rows:  # no personal data in a file name
        assert r["legal_family_name"] not in blob and r["upn"] not in blob
    row5, row12 = report.failed
    assert [(f.column, f.rule) for f in row5.errors] == [("upn", "upn.check-letter")]
    assert [(f.column, f.rule) for f in row12.errors] == [("date_of_birth", "schema.format"),
                                                          ("vsh_email / vsh_phone", "schema.anyOf")]
    assert "'31/02/2015'" in row12.errors[0].message  # as the user typed it
    assert all(f.hint for f in row5.errors + row12.errors)
    assert "row 5, column upn:" in row5.errors[0].format()
    data = report.to_dict()
    assert data["counts"] == {"rows": 20, "written": 18, "failed": 2}
    assert [f["row"] for f in data["failed"]] == [5, 12]


def test_the_rule_ids_and_hints_are_those_of_validate(tmp_path: Path) -> None:
    path, _rows = _twenty(tmp_path)
    results = build_records(read_rows(path), clock=CLOCK)
    for r in (x for x in results if not x.ok):
        assert r.record is not None
        expected = {(f.path, f.rule, f.hint) for f in validate_document(r.record, clock=CLOCK).errors}
        assert {(f.path, f.rule, f.hint) for f in r.errors} == expected


def test_a_missing_value_in_a_numbered_item_names_its_column(tmp_path: Path) -> None:
    row = record_to_row(samples.education_record(3))
    row["target_2_description"], row["target_2_measure"] = "Read every night", ""
    row["target_2_owner"], row["target_2_due"] = "carer", "2026-12-01"
    row["vsh_name"] = row["vsh_email"] = row["vsh_phone"] = row["vsh_organisation"] = ""
    path = tmp_path / "x.csv"
    path.write_text(_csv([row]))
    [r] = build_records(read_rows(path), clock=CLOCK)
    columns = {f.column: f.rule for f in r.errors}
    assert columns.get("target_2_measure") == "schema.required"
    assert any(c.startswith("vsh_name") for c in columns)


def test_spreadsheet_dates_own_columns_and_blank_rows_are_understood(tmp_path: Path) -> None:
    row = record_to_row(samples.education_record(3))
    y, m, d = row["date_of_birth"].split("-")
    row["date_of_birth"] = f"{int(d)}/{int(m)}/{y}"
    cols = [c.name for c in COLUMNS] + ["_our_notes"]
    text = _csv([{**row, "_our_notes": "checked by J. Example"}], cols) + ",,,\r\n\r\n"
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # Excel's "CSV UTF-8" starts with a BOM
    [r] = build_records(read_rows(path), clock=CLOCK)
    assert r.ok and r.record is not None and r.record["child"]["date_of_birth"] == f"{y}-{m}-{d}"


@pytest.mark.parametrize(("header_change", "code"), [
    (lambda cols: [*cols, "date_of_brith"], "csv.unknown-column"),
    (lambda cols: [c for c in cols if c != "date_of_birth"], "csv.missing-column"),
    (lambda cols: [*cols, "upn"], "csv.duplicate-column"),
])
def test_a_bad_header_fails_the_whole_file_and_writes_nothing(tmp_path: Path, header_change: Any,
                                                              code: str) -> None:
    cols = header_change([c.name for c in COLUMNS])
    path = tmp_path / "x.csv"
    path.write_text(_csv([record_to_row(samples.education_record(3))], cols))
    with pytest.raises(UsageError) as exc:
        records_from_csv(path, tmp_path / "out", clock=CLOCK)
    assert exc.value.code == code
    if code == "csv.unknown-column":
        assert "did you mean date_of_birth?" in exc.value.message
    assert not (tmp_path / "out").exists()


def test_nothing_is_written_when_no_row_is_valid(tmp_path: Path) -> None:
    row = record_to_row(samples.education_record(3))
    row["placing_la"] = "999"
    path = tmp_path / "x.csv"
    path.write_text(_csv([row, dict(row, record_id="")]))
    report = records_from_csv(path, tmp_path / "out", clock=CLOCK)
    assert report.written == [] and report.dest is None and not (tmp_path / "out").exists()
    assert {f.column for r in report.failed for f in r.errors} == {"placing_la"}


def test_the_same_record_id_twice_is_an_error_on_the_later_row(tmp_path: Path) -> None:
    row = record_to_row(samples.education_record(3))
    path = tmp_path / "x.csv"
    path.write_text(_csv([row, row]))
    report = records_from_csv(path, tmp_path / "out", clock=CLOCK)
    assert [r.row for r in report.written] == [2]
    assert [(f.column, f.rule) for f in report.failed[0].errors] == [("record_id", "csv.duplicate-record-id")]
    assert json.loads((tmp_path / "out" / "row-002.json").read_text())["record_id"] == row["record_id"]


def test_files_that_are_not_a_template_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes("record_id,as_of\r\nabc,caf\xe9\r\n".encode("cp1252"))
    with pytest.raises(UsageError) as exc:
        read_rows(path)
    assert exc.value.code == "csv.encoding" and "CSV UTF-8" in (exc.value.hint or "")
    path.write_text("")
    with pytest.raises(UsageError) as exc:
        read_rows(path)
    assert exc.value.code == "csv.empty"
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.json").write_text("{}")
    path.write_text(template_text())
    with pytest.raises(UsageError) as exc:
        records_from_csv(path, out, clock=CLOCK)
    assert exc.value.code == "output.exists" and sorted(p.name for p in out.iterdir()) == ["keep.json"]
