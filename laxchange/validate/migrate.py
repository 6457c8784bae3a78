"""Migrate then validate: the policy behind `laxchange schema migrate`.

A migrated document is only useful if it is valid under the version it now names, so the
upgrade (`laxchange.models.migrations`) is always followed by full validation, and an invalid
result is an error rather than a file. This sits in `validate/` rather than next to the
migrations in `models/` because it needs the validator, one layer up.
"""

from __future__ import annotations

from typing import Any

from laxchange.clock import Clock
from laxchange.errors import InvalidData
from laxchange.models.migrations import REGISTRY, Migrations
from laxchange.validate import validate_document
from laxchange.validate.report import Report


def migrate_document(
    doc: dict[str, Any],
    to_version: str | None = None,
    *,
    source: str = "<migrated>",
    registry: Migrations = REGISTRY,
    clock: Clock | None = None,
) -> tuple[dict[str, Any], Report]:
    """A copy of `doc` upgraded to `to_version` (default: latest), and its validation report.

    Raises what `Migrations.upgrade` raises (unknown version, downgrade, missing migration), and
    `InvalidData` (`migrate.invalid-result`, naming the first error) when the upgraded document
    does not validate. `source` names the result in the report (the CLI passes the output path).
    """
    upgraded = registry.upgrade(doc, to_version)
    report = validate_document(upgraded, source=source, clock=clock)
    if not report.ok:
        first = report.errors[0]
        raise InvalidData(f"the migrated document is not valid: {first.path}: {first.message} [{first.rule}]",
                          code="migrate.invalid-result", hint=first.hint)
    return upgraded, report
