"""The table CSVs beside the flat row: documented columns, one row per item, keys to join on,
formula injection guarded, and a folder written complete or not at all."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from laxchange.errors import UsageError
from laxchange.mis import COLUMNS, FLAT_FILE, TABLES, table_files, write_csv_folder
from tests.support.records import rich_record

REPO = Path(__file__).resolve().parents[3]
TID = "ab" * 16


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_the_table_columns_are_documented_in_order() -> None:
    text = (REPO / "docs" / "import.md").read_text()
    section = text.split("## The table CSVs", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `([a-z]+\.csv)` \| (.+) \|$", section, flags=re.M))
    assert list(documented) == list(TABLES)
    for name, cols in TABLES.items():
        assert re.findall(r"`([a-z_]+)`", documented[name]) == cols, name


def test_one_row_per_item_keyed_by_transfer_and_record() -> None:
    rec = rich_record()
    files = table_files(rec, {"transfer_id": TID})
    assert list(files) == list(TABLES)
    targets = _rows(files["targets.csv"])
    pep = rec["pep"]
    assert [t["description"] for t in targets] == [t["description"] for t in
                                                     pep["short_term_targets"] + pep["long_term_targets"]]
    assert [t["horizon"] for t in targets] == (["short-term"] * len(pep["short_term_targets"])
                                               + ["long-term"] * len(pep["long_term_targets"]))
    assert {(t["transfer_id"], t["record_id"]) for t in targets} == {(TID, rec["record_id"])}
    assert [t["row"] for t in targets] == [str(n) for n in range(1, len(targets) + 1)]
    results = _rows(files["attainment.csv"])
    assert [(r["stage"], r["subject"], r["value"]) for r in results] == [
        (a["stage"], a["subject"], a["value"]) for a in rec["attainment"]]
    attendance = _rows(files["attendance.csv"])[0]
    a = rec["attendance"][0]
    assert attendance["attendance_pct"] == f"{100 * a['sessions_attended'] / a['sessions_possible']:.1f}"
    assert _rows(files["exclusions.csv"])[0]["reason_code"] == rec["exclusions"][0]["reason_code"]


def test_an_empty_list_is_a_header_only_file_and_cells_are_guarded() -> None:
    rec = rich_record()
    rec["exclusions"] = []
    rec["pep"]["actions"][0]["owner"] = "=HYPERLINK(\"http://x.example\")"
    files = table_files(rec, {})
    assert files["exclusions.csv"] == (",".join(TABLES["exclusions.csv"]) + "\r\n").encode()
    assert _rows(files["actions.csv"])[0]["owner"].startswith("'=")
    assert _rows(files["actions.csv"])[0]["transfer_id"] == ""


def test_the_folder_is_written_whole_and_never_over_anything(tmp_path: Path) -> None:
    rec = rich_record()
    out = tmp_path / "csv"
    written = write_csv_folder(out, rec, {"transfer_id": TID})
    assert sorted(p.name for p in written) == sorted([FLAT_FILE, *TABLES])
    assert sorted(p.name for p in out.iterdir()) == sorted([FLAT_FILE, *TABLES])
    assert next(csv.reader(io.StringIO((out / FLAT_FILE).read_text()))) == COLUMNS
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in out.iterdir())
    with pytest.raises(UsageError) as exc:
        write_csv_folder(out, rec, {})
    assert exc.value.code == "output.exists"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_csv_folder(empty, rec, {})
    assert len(list(empty.iterdir())) == 6
    with pytest.raises(UsageError) as exc:
        write_csv_folder(tmp_path / "no" / "such", rec, {})
    assert exc.value.code == "output.no-folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csv", "empty"]  # no staging folder left
