"""The flat CSV a school's or council's MIS loads (`import` writes it): one header row, one row per record.

Columns are fixed and documented in docs/import.md (`COLUMNS` is the list; a test keeps the two
equal). RFC 4180: comma-separated, fields quoted when they hold a comma, quote or line break,
CRLF line ends, UTF-8 without a byte-order mark. Against CSV formula injection (OWASP), a cell
that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with a single quote,
so a spreadsheet shows it as text instead of running it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["COLUMNS", "FORMULA_START", "attendance_pct", "csv_bytes", "csv_cell", "record_of_message", "record_row",
           "write_csv"]

#: A cell starting with one of these is prefixed with "'" (spreadsheets would treat it as a formula).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _get(doc: Mapping[str, Any], *path: str) -> Any:
    cur: Any = doc
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _latest_attendance(rec: Mapping[str, Any]) -> Mapping[str, Any]:
    rows = [a for a in rec.get("attendance") or [] if isinstance(a, Mapping)]
    return max(rows, key=lambda a: str(a.get("end") or ""), default={})


def attendance_pct(period: Mapping[str, Any]) -> str:
    """Sessions attended / possible x 100, one decimal; empty when not known."""
    possible, attended = period.get("sessions_possible"), period.get("sessions_attended")
    if isinstance(possible, int) and isinstance(attended, int) and possible > 0:
        return f"{100 * attended / possible:.1f}"
    return ""


Column = tuple[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Any]]


def _r(*path: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    return lambda rec, _meta: _get(rec, *path)


def _m(key: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    return lambda _rec, meta: meta.get(key)


def _att(key: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    return lambda rec, _meta: _latest_attendance(rec).get(key)


_COLUMNS: list[Column] = [
    ("transfer_id", _m("transfer_id")),
    ("sender", _m("sender")),
    ("message_type", _m("message_type")),
    ("received_at", _m("received_at")),
    ("transfer_reason", _m("transfer_reason")),
    ("record_id", _r("record_id")),
    ("as_of", _r("as_of")),
    ("upn", _r("child", "upn")),
    ("local_child_id", _r("child", "local_child_id")),
    ("legal_given_name", _r("child", "legal_name", "given")),
    ("legal_family_name", _r("child", "legal_name", "family")),
    ("preferred_name", _r("child", "preferred_name")),
    ("date_of_birth", _r("child", "date_of_birth")),
    ("gender", _r("child", "gender")),
    ("home_la", _r("child", "home_la")),
    ("legal_status", _r("placement", "legal_status")),
    ("category_of_need", _r("placement", "category_of_need")),
    ("period_of_care_start", _r("placement", "period_of_care_start")),
    ("placement_type", _r("placement", "placement_type")),
    ("placement_provider", _r("placement", "placement_provider")),
    ("placement_start", _r("placement", "placement_start")),
    ("placing_la", _r("placement", "placing_la")),
    ("host_la", _r("placement", "host_la")),
    ("school_urn", _r("school", "urn")),
    ("school_laestab", _r("school", "laestab")),
    ("school_name", _r("school", "name")),
    ("school_start_date", _r("school", "start_date")),
    ("pep_date", _r("pep", "pep_date")),
    ("pep_next_review_due", _r("pep", "next_review_due")),
    ("sen_provision", _r("sen", "provision")),
    ("attendance_start", _att("start")),
    ("attendance_end", _att("end")),
    ("sessions_possible", _att("sessions_possible")),
    ("sessions_attended", _att("sessions_attended")),
    ("authorised_absence", _att("authorised_absence")),
    ("unauthorised_absence", _att("unauthorised_absence")),
    ("attendance_pct", lambda rec, _meta: attendance_pct(_latest_attendance(rec))),
    ("exclusions_count", lambda rec, _meta: len(rec.get("exclusions") or [])),
    ("attachments_count", _m("attachments_count")),
]

#: The header row, in order.
COLUMNS: list[str] = [name for name, _ in _COLUMNS]


def csv_cell(value: Any) -> str:
    """One cell's text: empty for a missing value, a formula-looking text prefixed with "'"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def record_of_message(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The education record a message carries (or the record itself), else None (a receipt)."""
    schema = str(document.get("schema", ""))
    if "/education-record/" in schema:
        return document
    rec = document.get("record")
    return rec if isinstance(rec, Mapping) and "/education-record/" in str(rec.get("schema", "")) else None


def record_row(record: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    return [csv_cell(get(record, meta)) for _, get in _COLUMNS]


def csv_bytes(header: list[str], rows: Iterable[list[str]]) -> bytes:
    """An RFC 4180 file: the header, then `rows` (cells already made with `csv_cell`), CRLF, UTF-8, no BOM."""
    buf = io.StringIO()
    w = csv.writer(buf, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write_csv(record: Mapping[str, Any], meta: Mapping[str, Any]) -> bytes:
    """The CSV file (header and one row) for `record`; `meta` gives the transfer's columns."""
    return csv_bytes(COLUMNS, [record_row(record, meta)])
