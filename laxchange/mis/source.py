"""Where an export's record comes from: a record file, validated here, or a message carrying one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from laxchange._util import jsonio
from laxchange.clock import Clock
from laxchange.errors import InvalidData, UsageError
from laxchange.mis.flat_csv import record_of_message
from laxchange.validate import validate_document

__all__ = ["MAX_RECORD_BYTES", "load_record", "record_of"]

#: As `pack` allows: an education record is a few kilobytes.
MAX_RECORD_BYTES = 16 * 1024 * 1024


def record_of(document: Any, *, source: str) -> Mapping[str, Any]:
    """The education record `document` is or carries, or a UsageError (a receipt, an exclusion notice)."""
    rec = record_of_message(document) if isinstance(document, Mapping) else None
    if rec is None:
        schema = document.get("schema") if isinstance(document, Mapping) else None
        raise UsageError(f"{source} carries no education record (schema {schema}); nothing was written",
                         code="export.no-record",
                         hint="export an education-record, pep-transfer or placement-notification")
    return rec


def load_record(path: Path, *, clock: Clock) -> tuple[Any, Mapping[str, Any]]:
    """(the document, its education record) from a JSON file, refused unless it validates.

    The same checks as `laxchange validate` (strict JSON, the schema, the domain rules); an export
    of an invalid record would carry its mistakes into a school's MIS.
    """
    document = jsonio.load_file(path, max_bytes=MAX_RECORD_BYTES)
    report = validate_document(document, source=str(path), clock=clock)
    if not report.ok:
        first = report.errors[0]
        raise InvalidData(f"{path} is not a valid record ({len(report.errors)} error(s); first: {first.path}: "
                          f"{first.message} [{first.rule}]); nothing was written", code="record.invalid",
                          hint=f"`laxchange validate {path}` lists every problem and what to do")
    return document, record_of(document, source=str(path))
