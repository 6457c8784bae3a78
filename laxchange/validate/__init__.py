"""Validation of laxchange documents: strict JSON, then the JSON Schema, then domain rules.

`validate_document` is the library entry point other programs (and `pack`/`open`) call;
`validate_file` adds strict parsing so that a duplicate key or a NaN is a finding with a rule
id like any other, not a crash.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from laxchange._util import fs, jsonio
from laxchange.clock import Clock, SystemClock
from laxchange.errors import InvalidData
from laxchange.models import schemastore
from laxchange.validate import domain, structural
from laxchange.validate.report import Finding, Report, json_path

__all__ = ["Finding", "Report", "json_path", "validate_bytes", "validate_document", "validate_file"]


def validate_document(
    doc: Any,
    expected_type: str | None = None,
    *,
    source: str = "<input>",
    clock: Clock | None = None,
) -> Report:
    """Validate a parsed document against the schema it names (or `expected_type`).

    `expected_type` is a schema name (`pep-transfer`) or `name@version`; when given, the
    document's own `schema` field must agree with it. Domain rules run only when the
    document is structurally valid, so every domain finding is about meaning, not shape.
    """
    report = Report(source=source)
    try:
        name, version = schemastore.identify(doc, source)
    except InvalidData as exc:
        report.findings.append(Finding("error", "$.schema", exc.code, exc.message, exc.hint or ""))
        return report
    if expected_type is not None:
        want_name, want_version = schemastore.parse_ref(expected_type)
        if want_name != name or (want_version is not None and want_version != version):
            newer = (want_name == name and want_version is not None and version in schemastore.versions(name)
                     and want_version in schemastore.versions(name)
                     and schemastore.version_key(version) > schemastore.version_key(want_version))
            report.findings.append(Finding(
                "error", "$.schema", "schema.unexpected-type",
                f"document is a {name}@{version}, expected {expected_type}"
                + (f" (a newer version: a {want_version} reader refuses it)" if newer else ""),
                f"drop @{want_version} to validate it as {version}, or make a {want_version} document"
                if newer else "pass the right --type, or check you picked the right file"))
            return report
    if version not in schemastore.versions(name):
        report.findings.append(_unknown_version(name, version))
        return report
    report.schema = f"{name}@{version}"
    report.findings.extend(structural.check(doc, name, version))
    if report.ok:
        report.findings.extend(domain.check(doc, name, version, clock=clock or SystemClock()))
    return report


def _unknown_version(name: str, version: str) -> Finding:
    """A version this laxchange has no schema file for: newer than it reads (docs/schemas.md), or unknown."""
    known = schemastore.versions(name)
    key = schemastore.version_key(version)
    same_major = [v for v in known if schemastore.version_key(v)[0] == key[0]]
    if same_major and key > schemastore.version_key(same_major[-1]):
        return Finding(
            "error", "$.schema", "schema.newer-version",
            f"{name} {version} is a newer minor version: this laxchange reads {name} up to {same_major[-1]}",
            f"upgrade laxchange to read {name} {version}, or ask the sender for {name} {same_major[-1]}; "
            "a newer minor may carry members this version does not know, so it is refused, not guessed at")
    if known and key > schemastore.version_key(known[-1]):
        return Finding(
            "error", "$.schema", "schema.newer-version",
            f"{name} {version} is a newer major version: this laxchange reads {name} up to {known[-1]}",
            f"upgrade laxchange to read {name} {version}, or ask the sender for {name} {known[-1]}")
    return Finding(
        "error", "$.schema", "schema.unknown-version",
        f"schema {name} has no version {version} (known: {', '.join(known) or 'none'})",
        "upgrade laxchange, or ask the sender which version they used")


def validate_bytes(data: bytes, *, source: str = "<input>", expected_type: str | None = None,
                   clock: Clock | None = None) -> Report:
    """Strictly parse then validate; JSON problems become `json.*` findings."""
    try:
        doc = jsonio.loads_strict(data, source=source)
    except InvalidData as exc:
        message = exc.message.removeprefix(f"{source}: ")
        return Report(source=source, findings=[
            Finding("error", str(exc.details.get("path") or "$"), exc.code, message, exc.hint or "")])
    return validate_document(doc, expected_type, source=source, clock=clock)


def validate_file(path: Path | str, *, expected_type: str | None = None, clock: Clock | None = None,
                  max_bytes: int = jsonio.MAX_JSON_BYTES) -> Report:
    """Validate one file. A missing or unreadable file raises (it is not a finding)."""
    p = Path(path)
    with fs.open_regular(p) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fs.read_bounded(fh, max_bytes)
    if data is None:
        return Report(source=str(p), findings=[Finding(
            "error", "$", "json.too-large",
            f"{max(size, max_bytes + 1)} bytes is larger than the {max_bytes}-byte limit",
            "split the input; education records are normally a few kilobytes")])
    return validate_bytes(data, source=str(p), expected_type=expected_type, clock=clock)
