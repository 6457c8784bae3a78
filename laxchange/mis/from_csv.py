"""Education records from a spreadsheet: the template a virtual school fills from its ePEP or
case-management export (`laxchange records from-csv`; docs/records-csv.md).

One row is one child. Every column is listed in `COLUMNS` (a test keeps docs/records-csv.md
equal to it); repeating items (targets, actions, results...) have numbered columns
(`target_1_description`, `target_2_description`, ...). A row becomes an education-record 1.1.0
and is validated exactly as `laxchange validate` does (the JSON Schema, then the domain rules),
so a problem has the same rule id and hint, reported with the spreadsheet row and the column it
came from. A row with an error is not written; the others are, each into `row-NNN.json` (the
spreadsheet row number: no personal data in a file name). Nothing is written at all when no row
is valid, and the output folder appears complete or not at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from laxchange._util import fs, jsonio
from laxchange.clock import Clock
from laxchange.errors import UsageError
from laxchange.models import record as record_model
from laxchange.validate import Finding, validate_document

__all__ = ["COLUMNS", "COLUMN_PATTERNS", "MAX_CSV_BYTES", "MAX_ROWS", "Column", "FromCsvReport", "RowFinding",
           "RowResult", "build_records", "read_rows", "record_to_row", "records_from_csv", "template_csv",
           "template_text"]

MAX_CSV_BYTES = 32 * 1024 * 1024
MAX_ROWS = 10_000
#: Columns the user keeps for themselves (notes, their own ids) start with this; they are ignored.
OWN_COLUMN_PREFIX = "_"
_TEMPLATE = "template.csv"
_SPREADSHEET_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


@dataclass(frozen=True)
class Column:
    """One template column: where its value goes in the record, and how the cell is read.

    `kind`: text (as written), code (upper-cased), choice (lower-cased), date (YYYY-MM-DD or
    DD/MM/YYYY), int, bool (yes/no/true/false), list (separated by ";"), codes (a list, upper-cased),
    pence (an integer number of pence, also written as pounds where the schema has a pounds field).
    """

    name: str
    path: tuple[str, ...]
    kind: str
    required: bool
    help: str


@dataclass(frozen=True)
class _Group:
    """Numbered columns `{prefix}{n}_{field}` for n in 1..count, one list item each (`count` 1: no number)."""

    prefix: str
    count: int
    path: tuple[str, ...]
    fields: tuple[tuple[str, tuple[str, ...], str, bool, str], ...]
    fixed: tuple[tuple[str, Any], ...] = ()

    def column(self, n: int, suffix: str) -> str:
        return f"{self.prefix}{n}_{suffix}" if self.count > 1 else f"{self.prefix}{suffix}"


def _c(name: str, path: str, kind: str = "text", required: bool = False, help: str = "") -> Column:
    return Column(name, tuple(path.split(".")), kind, required, help)


_SINGLES: tuple[Column, ...] = (
    _c("record_id", "record_id", help="32 lower-case hex digits; leave empty and laxchange makes a new one"),
    _c("as_of", "as_of", "date", True, "the date the record describes"),
    _c("cohort", "cohort", "choice", help="looked-after (the default), previously-looked-after, child-in-need, "
                                          "child-protection"),
    _c("legal_given_name", "child.legal_name.given", required=True, help="legal given name"),
    _c("legal_middle_names", "child.legal_name.middle", help="legal middle names"),
    _c("legal_family_name", "child.legal_name.family", required=True, help="legal family name"),
    _c("preferred_name", "child.preferred_name", help="the name the child uses"),
    _c("date_of_birth", "child.date_of_birth", "date", True, "date of birth"),
    _c("gender", "child.gender", "choice", True, "male, female, other or not-known"),
    _c("upn", "child.upn", "code", help="Unique Pupil Number (13 characters); give it or upn_unknown_reason"),
    _c("upn_unknown_reason", "child.upn_unknown_reason", "code", help="UN1-UN5 when the child has no UPN"),
    _c("former_upns", "child.former_upns", "codes", help="earlier UPNs, separated by ;"),
    _c("uln", "child.uln", help="Unique Learner Number (10 digits; format the column as text)"),
    _c("home_la", "child.home_la", required=True, help="the child's home council (3-digit DfE LA code)"),
    _c("local_child_id", "child.local_child_id", help="the council's own id for the child"),
    _c("first_language", "child.first_language", help="first language"),
    _c("legal_status", "placement.legal_status", "code", True, "SSDA903 legal status, e.g. C2"),
    _c("category_of_need", "placement.category_of_need", "code", help="SSDA903 category of need, e.g. N1"),
    _c("period_of_care_start", "placement.period_of_care_start", "date", True, "start of the period of care"),
    _c("placement_type", "placement.placement_type", "code", True, "SSDA903 placement type, e.g. U4"),
    _c("placement_provider", "placement.placement_provider", "code", help="SSDA903 provider, e.g. PR1"),
    _c("placement_start", "placement.placement_start", "date", True, "start of the current placement"),
    _c("placement_change_reason", "placement.reason_for_change", "code",
       help="SSDA903 reason for the placement change, e.g. CARPL"),
    _c("placing_la", "placement.placing_la", required=True, help="the responsible (placing) council's LA code"),
    _c("host_la", "placement.host_la", required=True, help="the council the child lives in (LA code)"),
    _c("emergency_placement", "placement.emergency_placement", "bool", help="yes or no"),
    _c("school_urn", "school.urn", help="the school's URN (6 digits); leave every school_ column empty when the "
                                        "child has no school place"),
    _c("school_laestab", "school.laestab", help="the school's DfE number (7 digits)"),
    _c("school_name", "school.name", help="the school's name"),
    _c("school_la", "school.la_code", help="the school's council (LA code)"),
    _c("school_phase", "school.phase", "choice", help="primary, secondary, special, all-through, ..."),
    _c("school_start_date", "school.start_date", "date", help="when the child started at the school"),
    _c("school_ofsted_rating", "school.ofsted_rating", "choice", help="outstanding, good, requires-improvement, "
                                                                       "inadequate, not-yet-inspected"),
    _c("school_move_reason", "pep.chronology.-1.reason_for_change",
       help="why the child moved to this school (the last entry of the education history)"),
    _c("dt_name", "school.designated_teacher.name", help="the school's Designated Teacher"),
    _c("dt_organisation", "school.designated_teacher.organisation", help="usually the school's name"),
    _c("dt_email", "school.designated_teacher.email", help="their e-mail (or dt_phone)"),
    _c("dt_phone", "school.designated_teacher.phone", help="their phone (or dt_email)"),
    _c("pep_date", "pep.pep_date", "date", True, "date of the PEP"),
    _c("pep_next_review_due", "pep.next_review_due", "date", True, "next PEP review"),
    _c("current_arrangements", "pep.current_arrangements", required=True, help="current education arrangements"),
    _c("planned_changes", "pep.planned_changes", help="planned changes"),
    _c("aspirations", "pep.aspirations", required=True, help="the child's aspirations"),
    _c("child_voice", "pep.child_voice", required=True, help="the child's views, in their words"),
    _c("leisure_interests", "pep.leisure_interests", "list", help="separated by ;"),
    _c("pp_plus_academic_year", "pep.pupil_premium_plus.academic_year", help="e.g. 2026/27"),
    _c("pp_plus_allocation_pence", "pep.pupil_premium_plus.allocation_pence", "pence",
       help="Pupil Premium Plus allocation in pence (263000 is 2,630.00 pounds)"),
    _c("pp_plus_planned_use", "pep.pupil_premium_plus.planned_use", help="how it will be used"),
    _c("pp_plus_spent_pence", "pep.pupil_premium_plus.spent_to_date_pence", "pence", help="spent so far, in pence"),
    _c("vsh_name", "pep.vsh_contact.name", required=True, help="the Virtual School Head contact (statutory)"),
    _c("vsh_organisation", "pep.vsh_contact.organisation", help="e.g. the council's Virtual School"),
    _c("vsh_email", "pep.vsh_contact.email", help="their e-mail (or vsh_phone)"),
    _c("vsh_phone", "pep.vsh_contact.phone", help="their phone (or vsh_email)"),
    _c("sen_provision", "sen.provision", "code", True, "N (none), K (SEN support) or E (EHC plan)"),
    _c("sen_need_types", "sen.need_types", "codes", help="SEN type of need codes, separated by ;, e.g. SEMH;SLCN"),
    _c("sen_primary_need", "sen.primary_need", "code", help="the primary need (one of sen_need_types)"),
    _c("ehcp_maintaining_la", "sen.ehcp.maintaining_la", help="with provision E: the council maintaining the plan"),
    _c("ehcp_request_date", "sen.ehcp.request_date", "date", help="when the assessment was requested"),
    _c("ehcp_issued_date", "sen.ehcp.issued_date", "date", help="with provision E: when the plan was issued"),
    _c("ehcp_last_annual_review", "sen.ehcp.last_annual_review", "date", help="the last annual review"),
    _c("ehcp_annual_review_due", "sen.ehcp.annual_review_due", "date", help="with provision E: next annual review"),
    _c("sw_name", "contacts.social_worker.name", required=True, help="the child's social worker"),
    _c("sw_organisation", "contacts.social_worker.organisation", help="their team or council"),
    _c("sw_email", "contacts.social_worker.email", help="their e-mail (or sw_phone)"),
    _c("sw_phone", "contacts.social_worker.phone", help="their phone (or sw_email)"),
    _c("iro_name", "contacts.iro.name", help="the Independent Reviewing Officer"),
    _c("iro_organisation", "contacts.iro.organisation", help="their team or council"),
    _c("iro_email", "contacts.iro.email", help="their e-mail (or iro_phone)"),
    _c("iro_phone", "contacts.iro.phone", help="their phone (or iro_email)"),
    _c("carer_name", "contacts.carer.name", help="the carer"),
    _c("carer_role", "contacts.carer.role", help="e.g. Foster carer, Kinship carer (default Carer)"),
    _c("carer_organisation", "contacts.carer.organisation", help="e.g. the fostering agency"),
    _c("carer_email", "contacts.carer.email", help="their e-mail (or carer_phone)"),
    _c("carer_phone", "contacts.carer.phone", help="their phone (or carer_email)"),
)

_GROUPS: tuple[_Group, ...] = (
    _Group("previous_setting_", 2, ("pep", "chronology"), (
        ("name", ("setting_name",), "text", False, "an earlier school or setting, oldest first"),
        ("urn", ("urn",), "text", False, "its URN"),
        ("start", ("start",), "date", False, "when the child started there"),
        ("end", ("end",), "date", False, "when the child left"),
        ("reason", ("reason_for_change",), "text", False, "why the child left"))),
    _Group("target_", 3, ("pep", "short_term_targets"), (
        ("description", ("description",), "text", False, "a SMART short-term target (at least one is needed)"),
        ("measure", ("measure",), "text", False, "how success is measured"),
        ("owner", ("owner",), "text", False, "who owns it"),
        ("due", ("due",), "date", False, "by when"),
        ("status", ("status",), "choice", False, "not-started (default), in-progress, achieved, not-achieved"))),
    _Group("long_term_target_", 2, ("pep", "long_term_targets"), (
        ("description", ("description",), "text", False, "a long-term target"),
        ("measure", ("measure",), "text", False, "how success is measured"),
        ("owner", ("owner",), "text", False, "who owns it"),
        ("due", ("due",), "date", False, "by when"),
        ("status", ("status",), "choice", False, "as for target_N_status"))),
    _Group("action_", 3, ("pep", "actions"), (
        ("description", ("description",), "text", False, "an action agreed at the PEP meeting"),
        ("owner", ("owner",), "text", False, "who does it"),
        ("by", ("by",), "date", False, "by when"))),
    _Group("result_", 4, ("attainment",), (
        ("stage", ("stage",), "code", False, "EYFS, PHONICS, KS1 ... KS5"),
        ("subject", ("subject",), "text", False, "e.g. Mathematics, Reading"),
        ("kind", ("kind",), "choice", False, "scaled-score, gcse-grade, teacher-assessment, phonics-mark, eyfs"),
        ("value", ("value",), "text", False, "the result, e.g. 104"),
        ("date", ("date",), "date", False, "when it was awarded"))),
    _Group("attendance_", 1, ("attendance",), (
        ("start", ("start",), "date", False, "start of the attendance period"),
        ("end", ("end",), "date", False, "its end"),
        ("sessions_possible", ("sessions_possible",), "int", False, "half-day sessions possible"),
        ("sessions_attended", ("sessions_attended",), "int", False, "sessions attended"),
        ("authorised_absence", ("authorised_absence",), "int", False, "sessions of authorised absence"),
        ("unauthorised_absence", ("unauthorised_absence",), "int", False, "sessions of unauthorised absence"))),
    _Group("exclusion_", 2, ("exclusions",), (
        ("kind", ("kind",), "choice", False, "suspension or permanent-exclusion"),
        ("start_date", ("start_date",), "date", False, "first day"),
        ("sessions", ("sessions",), "int", False, "length in sessions"),
        ("reason_code", ("reason_code",), "code", False, "school census reason code, e.g. PD"),
        ("reason_description", ("reason_description",), "text", False, "the reason in words"),
        ("school_urn", ("school_urn",), "text", False, "the URN of the school that excluded"))),
)

#: Objects given a fixed member once any of their columns has a value.
_FIXED: dict[tuple[str, ...], dict[str, str]] = {
    ("school", "designated_teacher"): {"role": "Designated Teacher"},
    ("pep", "vsh_contact"): {"role": "Virtual School Head"},
    ("contacts", "social_worker"): {"role": "Social worker"},
    ("contacts", "iro"): {"role": "Independent Reviewing Officer"},
    ("contacts", "carer"): {"role": "Carer"},
}
#: A pence column -> the pounds field the schema also requires, beside it.
_POUNDS = {"allocation_pence": "allocation_gbp", "spent_to_date_pence": "spent_to_date_gbp"}


def _expand() -> list[Column]:
    cols = list(_SINGLES)
    for g in _GROUPS:
        for n in range(1, g.count + 1):
            cols += [Column(g.column(n, suffix), (*g.path, str(n), *sub), kind, required, help)
                     for suffix, sub, kind, required, help in g.fields]
    return cols


#: Every column of the template, in the template's order.
COLUMNS: list[Column] = _expand()
_BY_NAME = {c.name: c for c in COLUMNS}
#: The documented names: a group's columns once, with N for the number (docs/records-csv.md).
COLUMN_PATTERNS: list[str] = [c.name for c in _SINGLES] + [
    g.column(0, suffix).replace("_0_", "_N_") if g.count > 1 else g.column(1, suffix)
    for g in _GROUPS for suffix, *_ in g.fields]


@dataclass(frozen=True)
class RowFinding:
    """A problem with one row: the spreadsheet row, the column (empty for the whole row) and the finding."""

    row: int
    column: str
    path: str
    rule: str
    message: str
    hint: str
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "path": self.path, "rule": self.rule,
                "message": self.message, "hint": self.hint, "severity": self.severity}

    def format(self) -> str:
        where = f"column {self.column}" if self.column else "the row"
        text = f"row {self.row}, {where}: {self.message} [{self.rule}]"
        return text + (f"\n    hint: {self.hint}" if self.hint else "")


@dataclass
class RowResult:
    """One row: the record it made (when valid), what was wrong, and the file it went to."""

    row: int
    record: dict[str, Any] | None = None
    errors: list[RowFinding] = field(default_factory=list)
    warnings: list[RowFinding] = field(default_factory=list)
    file: str | None = None

    @property
    def ok(self) -> bool:
        return self.record is not None and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "ok": self.ok, "file": self.file,
                "record_id": self.record.get("record_id") if self.record and self.ok else None,
                "errors": [f.to_dict() for f in self.errors], "warnings": [f.to_dict() for f in self.warnings]}


@dataclass
class FromCsvReport:
    """What `records_from_csv` did: every row's result and the folder written (None when nothing was)."""

    source: str
    rows: list[RowResult] = field(default_factory=list)
    dest: Path | None = None

    @property
    def written(self) -> list[RowResult]:
        return [r for r in self.rows if r.ok]

    @property
    def failed(self) -> list[RowResult]:
        return [r for r in self.rows if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dest": str(self.dest) if self.dest else None,
                "counts": {"rows": len(self.rows), "written": len(self.written), "failed": len(self.failed)},
                "written": [r.to_dict() for r in self.written], "failed": [r.to_dict() for r in self.failed]}


# -- reading the file ------------------------------------------------------------------------------
def read_rows(path: Path) -> list[tuple[int, dict[str, str], list[RowFinding]]]:
    """(spreadsheet row number, column -> cell, row-level problems) for every non-blank data row.

    The header is row 1. A problem with the header itself (an unknown, repeated or missing
    required column) fails the whole file with a UsageError: every row would be wrong the same way.
    """
    with fs.open_regular(path, error=UsageError) as fh:
        data = fs.read_bounded(fh, MAX_CSV_BYTES)
    if data is None:
        raise UsageError(f"{path} is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB", code="csv.too-large",
                         hint=f"split it into files of at most {MAX_ROWS} rows")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 (byte {exc.start} cannot be read)", code="csv.encoding",
                         hint="save it from the spreadsheet as \"CSV UTF-8 (comma delimited)\"") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        table = list(reader)
    except csv.Error as exc:
        raise UsageError(f"{path}: not a readable CSV file near line {reader.line_num} ({exc})", code="csv.syntax",
                         hint="check the quotes on that line; save it again as CSV from the spreadsheet") from None
    if not table or not any(cell.strip() for cell in table[0]):
        raise UsageError(f"{path} is empty: no header row", code="csv.empty",
                         hint="start from `laxchange records template`")
    header = [h.strip().lower() for h in table[0]]
    _check_header(path, header)
    out = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue  # spreadsheets write blank rows at the end
        problems = []
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            problems.append(RowFinding(number, "", "", "csv.row-length",
                                       f"the row has {len(cells)} cells but the header names {len(header)} columns",
                                       "check for a comma inside a value that is not in quotes"))
        row = {h: c.strip() for h, c in zip(header, cells, strict=False)
               if h and not h.startswith(OWN_COLUMN_PREFIX) and c.strip()}
        out.append((number, row, problems))
    if len(out) > MAX_ROWS:
        raise UsageError(f"{path} has {len(out)} rows, more than {MAX_ROWS}", code="csv.too-large",
                         hint=f"split it into files of at most {MAX_ROWS} rows")
    return out


def _check_header(path: Path, header: list[str]) -> None:
    names = [h for h in header if h and not h.startswith(OWN_COLUMN_PREFIX)]
    unknown = [h for h in names if h not in _BY_NAME]
    if unknown:
        guesses = {h: difflib.get_close_matches(h, list(_BY_NAME), n=1) for h in unknown}
        said = ", ".join(f"{h} (did you mean {g[0]}?)" if g else h for h, g in guesses.items())
        raise UsageError(f"{path}: unknown column(s): {said}; nothing was written", code="csv.unknown-column",
                         hint="use the column names of `laxchange records template` (docs/records-csv.md); start "
                              f"your own columns' names with {OWN_COLUMN_PREFIX} and they are ignored")
    repeated = sorted({h for h in names if names.count(h) > 1})
    if repeated:
        raise UsageError(f"{path}: column(s) named twice: {', '.join(repeated)}; nothing was written",
                         code="csv.duplicate-column", hint="keep one column of each name")
    missing = [c.name for c in _SINGLES if c.required and c.name not in names]
    if missing:
        raise UsageError(f"{path}: the header has no column {', '.join(missing)}, which every record needs; "
                         "nothing was written", code="csv.missing-column",
                         hint="add the column(s), or start from `laxchange records template`")


# -- one row into a record ---------------------------------------------------------------------------
def _cell(kind: str, text: str) -> Any:
    """The value a cell stands for; a cell that cannot be read is kept as written, for the schema to report."""
    if kind == "code":
        return text.upper()
    if kind == "choice":
        return text.lower()
    if kind == "date":  # a spreadsheet's 15/09/2026 is 2026-09-15; anything else goes to the schema as written
        m = _SPREADSHEET_DATE.fullmatch(text)
        try:
            return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1))).isoformat() if m else text
        except ValueError:
            return text
    if kind in ("int", "pence"):
        return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else text
    if kind == "bool":
        return {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}.get(text.lower(), text)
    if kind in ("list", "codes"):
        parts = [part.strip() for part in text.split(";") if part.strip()]
        return [part.upper() for part in parts] if kind == "codes" else parts
    return text


def _set(doc: dict[str, Any], path: Sequence[str], value: Any) -> None:
    cur = doc
    for key in path[:-1]:
        cur = cur.setdefault(key, {})
    cur[path[-1]] = value


def _json_path(parts: Iterable[str | int]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _build(row: Mapping[str, str], new_id: Callable[[], str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the record, JSON path -> the column its value came from)."""
    doc: dict[str, Any] = {"schema": record_model.ID}
    origin: dict[str, str] = {}
    for g in _GROUPS:  # list items first, compacted: only the numbers that have a value
        items = []
        for n in range(1, g.count + 1):
            item: dict[str, Any] = {}
            for suffix, sub, kind, _req, _help in g.fields:
                name = g.column(n, suffix)
                if name in row:
                    item[sub[0]] = _cell(kind, row[name])
            if item:
                items.append((n, item))
        if not items and g.path != ("pep", "chronology"):
            continue
        target: dict[str, Any] = doc
        for key in g.path[:-1]:
            target = target.setdefault(key, {})
        lst = target.setdefault(g.path[-1], [])
        for n, item in items:
            index = len(lst)
            lst.append(item)
            base = _json_path([*g.path, index])
            origin[base] = g.column(n, g.fields[0][0])
            # every member, given or not, so a finding about a missing one names its column
            origin.update({f"{base}.{sub[0]}": g.column(n, suffix) for suffix, sub, *_ in g.fields})
    if "school_name" in row or "school_urn" in row or "school_start_date" in row:
        lst = doc.setdefault("pep", {}).setdefault("chronology", [])
        entry = {k: v for k, v in (("setting_name", row.get("school_name")), ("urn", row.get("school_urn")),
                                   ("start", _cell("date", row.get("school_start_date", ""))))
                 if v}
        base = _json_path(["pep", "chronology", len(lst)])
        origin.update({base: "school_name", f"{base}.setting_name": "school_name", f"{base}.urn": "school_urn",
                       f"{base}.start": "school_start_date", f"{base}.reason_for_change": "school_move_reason"})
        lst.append(entry)
    for col in _SINGLES:
        if col.name not in row:
            continue
        value = _cell(col.kind, row[col.name])
        if col.path[:3] == ("pep", "chronology", "-1"):
            chronology = doc.get("pep", {}).get("chronology") or []
            if chronology:
                chronology[-1][col.path[3]] = value
            continue
        _set(doc, col.path, value)
        origin[_json_path(col.path)] = col.name
        if col.kind == "pence" and isinstance(value, int):
            parent = col.path[:-1]
            _set(doc, (*parent, _POUNDS[col.path[-1]]), value / 100)
            origin[_json_path((*parent, _POUNDS[col.path[-1]]))] = col.name
    for path, members in _FIXED.items():
        cur: Any = doc
        for key in path:
            cur = cur.get(key) if isinstance(cur, dict) else None
        if isinstance(cur, dict):
            for k, v in members.items():
                cur.setdefault(k, v)
    if "record_id" not in doc:
        doc["record_id"] = new_id()
    return doc, origin


#: Static JSON path of every single column (and the pounds field a pence column fills), for findings
#: about absent values.
_STATIC = {_json_path(c.path): c.name for c in _SINGLES if "-1" not in c.path} | {
    _json_path((*c.path[:-1], _POUNDS[c.path[-1]])): c.name for c in _SINGLES if c.kind == "pence"}


def _column_for(path: str, origin: Mapping[str, str], message: str = "") -> str:
    """The column a finding at `path` is about (best effort; empty when it is about the whole row)."""
    choice = re.search(r" of: ([a-z_]+(?:, [a-z_]+)*)$", message)  # "give at least one of: email, phone"
    if choice:
        named = [_column_for(f"{path}.{name}", origin) for name in choice.group(1).split(", ")]
        if all(named):
            return " / ".join(named)
    if path in origin:
        return origin[path]
    if path in _STATIC:
        return _STATIC[path]
    item = re.match(r".*?\[\d+\]", path)
    if item and item.group(0) in origin:  # something inside a list item: that item's column
        return origin[item.group(0)]
    for g in _GROUPS:  # an empty list: its first column
        if path == _json_path(g.path):
            return g.column(1, g.fields[0][0])
    under = [name for p, name in _STATIC.items() if p.startswith(path + ".")]
    if under:
        return " / ".join(under[:4]) + (" ..." if len(under) > 4 else "")
    best = max((p for p in _STATIC if path.startswith((p + ".", p + "["))), key=len, default=None)
    return _STATIC[best] if best else ""


def _row_finding(row: int, f: Finding, origin: Mapping[str, str]) -> RowFinding:
    return RowFinding(row, _column_for(f.path, origin, f.message), f.path, f.rule, f.message, f.hint, f.severity)


def build_records(rows: Iterable[tuple[int, Mapping[str, str], list[RowFinding]]], *, clock: Clock,
                  new_id: Callable[[], str] = lambda: secrets.token_hex(16)) -> list[RowResult]:
    """Each row as a record, validated as `laxchange validate` does; nothing is written here."""
    results = []
    seen: dict[str, int] = {}
    for number, row, problems in rows:
        doc, origin = _build(row, new_id)
        report = validate_document(doc, "education-record", source=f"row {number}", clock=clock)
        result = RowResult(number, record=doc, errors=list(problems))
        for f in report.findings:
            (result.errors if f.severity == "error" else result.warnings).append(_row_finding(number, f, origin))
        rid = doc.get("record_id")
        if isinstance(rid, str) and rid in seen:
            result.errors.append(RowFinding(number, "record_id", "$.record_id", "csv.duplicate-record-id",
                                            f"row {seen[rid]} has the same record_id",
                                            "give each child's record its own id, or leave record_id empty"))
        elif isinstance(rid, str):
            seen[rid] = number
        results.append(result)
    return results


def records_from_csv(path: Path, dest: Path, *, clock: Clock,
                     new_id: Callable[[], str] = lambda: secrets.token_hex(16)) -> FromCsvReport:
    """Read the template at `path`, build and validate every row, write the valid ones into `dest`.

    `dest` must be new or empty; it is written complete or not at all, and not at all when no row
    is valid. Each record is `row-NNN.json`, NNN its spreadsheet row.
    """
    fs.check_new_folder(dest, what="records folder")
    report = FromCsvReport(str(path), build_records(read_rows(path), clock=clock, new_id=new_id))
    if not report.rows:
        raise UsageError(f"{path} has a header but no rows", code="csv.empty",
                         hint="add one row per child under the header")
    files: dict[str, bytes] = {}
    for r in report.written:
        r.file = f"row-{r.row:03d}.json"
        files[r.file] = (jsonio.dumps_pretty(r.record) + "\n").encode("utf-8")
    if files:
        fs.write_new_folder(dest, files, what="records folder")
        report.dest = dest
    return report


# -- the other way: a record as a template row (the shipped sample, tests) -----------------------
def record_to_row(record: Mapping[str, Any]) -> dict[str, str]:
    """The template row for `record` (the columns the template has; everything else is left out)."""
    row: dict[str, str] = {}

    def get(path: Sequence[str | int]) -> Any:
        cur: Any = record
        for key in path:
            if isinstance(key, int):
                cur = cur[key] if isinstance(cur, list) and len(cur) > key else None
            else:
                cur = cur.get(key) if isinstance(cur, Mapping) else None
        return cur

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list):
            return ";".join(str(v) for v in value)
        return "" if value is None else str(value)

    chronology = list(get(("pep", "chronology")) or [])
    has_school = isinstance(record.get("school"), Mapping)
    earlier = chronology[:-1] if has_school and chronology else chronology
    for col in _SINGLES:
        if col.path[:3] == ("pep", "chronology", "-1"):
            value = chronology[-1].get(col.path[3]) if has_school and chronology else None
        else:
            value = get(col.path)
        if col.kind == "pence" and value is None:
            pounds = get((*col.path[:-1], _POUNDS[col.path[-1]]))
            value = round(pounds * 100) if isinstance(pounds, int | float) else None
        row[col.name] = text(value)
    for g in _GROUPS:
        items = earlier if g.path == ("pep", "chronology") else list(get(g.path) or [])
        for n in range(1, g.count + 1):
            item = items[n - 1] if n <= len(items) else {}
            for suffix, sub, *_ in g.fields:
                row[g.column(n, suffix)] = text(item.get(sub[0]) if isinstance(item, Mapping) else None)
    return row


def template_csv(records: Iterable[Mapping[str, Any]]) -> str:
    """The template file: the header and one row per record (RFC 4180, CRLF)."""
    buf = io.StringIO()
    w = csv.writer(buf, dialect="excel", lineterminator="\r\n")
    w.writerow([c.name for c in COLUMNS])
    for rec in records:
        r = record_to_row(rec)
        w.writerow([r[c.name] for c in COLUMNS])
    return buf.getvalue()


def template_text() -> str:
    """The sample template shipped with laxchange (`laxchange records template`): fictional children only."""
    return resources.files("laxchange.mis").joinpath(_TEMPLATE).read_bytes().decode("utf-8")  # CRLF kept
