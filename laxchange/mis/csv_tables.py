"""One CSV per repeating table of a record, beside the flat row (`record.csv`, in `flat_csv`).

A spreadsheet or an MIS loads a flat table, so each list in a record (targets, actions,
attainment, attendance, exclusions) gets a file of its own: one row per item, keyed by
`transfer_id`, `record_id` and `row` (the item's place in the record's list, from 1), so rows
from many transfers can be appended to one table and joined to `record.csv` on `transfer_id`.
Columns are fixed, in order, and documented in docs/import.md ("The table CSVs"; a test keeps
the two equal); a file with no items is written with its header only, so a loader always finds
every file. Cells are made by `flat_csv.csv_cell` (formula injection guarded the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from laxchange._util import fs
from laxchange.mis.flat_csv import attendance_pct, csv_bytes, csv_cell, write_csv

__all__ = ["FLAT_FILE", "TABLES", "table_files", "write_csv_folder"]

#: The flat row's file name, as `import` writes it.
FLAT_FILE = "record.csv"
_KEYS = ["transfer_id", "record_id", "row"]


def _items(path: tuple[str, ...], **extra: str) -> Callable[[Mapping[str, Any]], Iterator[dict[str, Any]]]:
    """The list at `path` in the record, each item with `extra` columns added."""
    def get(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cur: Any = record
        for key in path:
            cur = cur.get(key) if isinstance(cur, Mapping) else None
        for item in cur or []:
            if isinstance(item, Mapping):
                yield {**item, **extra}
    return get


def _targets(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield from _items(("pep", "short_term_targets"), horizon="short-term")(record)
    yield from _items(("pep", "long_term_targets"), horizon="long-term")(record)


def _attendance(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for item in _items(("attendance",))(record):
        yield {**item, "attendance_pct": attendance_pct(item)}


#: File name -> (its columns after the keys, where its items come from). The order is the docs' order.
_TABLES: dict[str, tuple[list[str], Callable[[Mapping[str, Any]], Iterator[dict[str, Any]]]]] = {
    "targets.csv": (["horizon", "description", "measure", "owner", "due", "status"], _targets),
    "actions.csv": (["description", "owner", "by"], _items(("pep", "actions"))),
    "attainment.csv": (["stage", "subject", "kind", "value", "date"], _items(("attainment",))),
    "attendance.csv": (["start", "end", "sessions_possible", "sessions_attended", "authorised_absence",
                        "unauthorised_absence", "attendance_pct"], _attendance),
    "exclusions.csv": (["kind", "start_date", "sessions", "reason_code", "reason_description", "school_urn",
                        "reintegration_meeting", "governors_meeting", "appeal_date"], _items(("exclusions",))),
}

#: File name -> its header row, in order.
TABLES: dict[str, list[str]] = {name: [*_KEYS, *cols] for name, (cols, _) in _TABLES.items()}


def table_files(record: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, bytes]:
    """Every table CSV of `record` (file name -> bytes); `meta["transfer_id"]` keys the rows when known."""
    out: dict[str, bytes] = {}
    keys = {"transfer_id": meta.get("transfer_id"), "record_id": record.get("record_id")}
    for name, (cols, items) in _TABLES.items():
        rows = [[csv_cell(v) for v in (keys["transfer_id"], keys["record_id"], n)]
                + [csv_cell(item.get(c)) for c in cols]
                for n, item in enumerate(items(record), start=1)]
        out[name] = csv_bytes(TABLES[name], rows)
    return out


def write_csv_folder(dest: Path, record: Mapping[str, Any], meta: Mapping[str, Any]) -> list[Path]:
    """`record.csv` and every table CSV into `dest`, a new (or empty) folder that appears complete or not at all."""
    files = {FLAT_FILE: write_csv(record, meta), **table_files(record, meta)}
    return fs.write_new_folder(dest, files, what="CSV folder")
