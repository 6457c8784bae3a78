"""migrate_document: upgrade, then validate; an invalid result is an error, never a document."""

from __future__ import annotations

import pytest

from laxchange import samples
from laxchange.errors import InvalidData, UsageError
from laxchange.models import schemastore
from laxchange.models.migrations import Migrations
from laxchange.validate.migrate import migrate_document


def test_valid_document_to_latest_is_returned_with_its_report() -> None:
    doc = samples.education_record(2)
    upgraded, report = migrate_document(doc, source="out.json")
    assert report.ok and report.source == "out.json"
    assert report.schema == f"education-record@{schemastore.versions('education-record')[-1]}"
    assert upgraded == doc and upgraded is not doc


def test_invalid_result_raises_with_the_first_error() -> None:
    doc = samples.receipt(3)
    del doc["status"]
    with pytest.raises(InvalidData) as info:
        migrate_document(doc)
    assert info.value.code == "migrate.invalid-result" and info.value.exit_code == 1
    assert info.value.message.startswith("the migrated document is not valid: ")


def test_migration_to_a_version_the_validator_does_not_know_is_refused() -> None:
    registry = Migrations(versions=lambda name: ["1.0.0", "2.0.0"] if name == "receipt" else [])
    registry.register("receipt", 1, "2.0.0")(lambda d: d)
    with pytest.raises(InvalidData) as info:
        migrate_document(samples.receipt(3), registry=registry)
    assert info.value.code == "migrate.invalid-result" and "[schema.newer-version]" in info.value.message


def test_upgrade_errors_pass_through() -> None:
    with pytest.raises(UsageError) as info:
        migrate_document(samples.receipt(3), "9.9.9")
    assert info.value.code == "migrate.unknown-version"
