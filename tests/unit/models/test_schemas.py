"""Published schemas: immutable once released, generated from the models, valid draft 2020-12."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from laxchange import samples
from laxchange.cli import main
from laxchange.errors import ConfigError, UsageError
from laxchange.models import messages, schemagen, schemastore
from laxchange.models.migrations import REGISTRY, Migrations
from laxchange.validate import validate_document

NAMES = ["common", "education-record", "placement-notification", "pep-transfer", "exclusion-notice", "receipt"]


def test_every_required_schema_is_published_at_1_0_0() -> None:
    published = {(s.name, s.version) for s in schemastore.list_schemas()}
    for name in NAMES:
        assert (name, "1.0.0") in published


def test_released_files_match_the_lock() -> None:
    assert schemastore.check_lock() == []
    lock = schemastore.read_lock()
    assert {f"{n}/1.0.0.json" for n in NAMES} <= set(lock)


def test_a_changed_released_file_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "schemas"
    shutil.copytree(schemastore.schema_dir(), root)
    target = root / "education-record" / "1.0.0.json"
    doc = json.loads(target.read_text())
    doc["description"] += " (edited)"
    target.write_text(json.dumps(doc, indent=2) + "\n")
    problems = schemastore.check_lock(root)
    assert problems and "education-record/1.0.0.json" in problems[0] and "changed" in problems[0]


def test_a_deleted_or_unlocked_file_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "schemas"
    shutil.copytree(schemastore.schema_dir(), root)
    (root / "receipt" / "1.0.0.json").unlink()
    (root / "receipt" / "1.9.0.json").write_text("{}\n")
    problems = " ".join(schemastore.check_lock(root))
    assert "receipt/1.0.0.json: released schema file is missing" in problems
    assert "receipt/1.9.0.json: not in" in problems


def test_build_refuses_to_rewrite_a_released_file(tmp_path: Path) -> None:
    root = tmp_path / "schemas"
    shutil.copytree(schemastore.schema_dir(), root)
    lock = json.loads((root / schemastore.LOCK_NAME).read_text())
    # as if the models had drifted from the release of the version they generate
    lock["files"][f"pep-transfer/{messages.VERSION}.json"] = "0" * 64
    (root / schemastore.LOCK_NAME).write_text(json.dumps(lock))
    with pytest.raises(ConfigError) as exc:
        schemastore.build(root)
    assert exc.value.code == "schema.released-changed"


def test_committed_files_equal_what_the_models_generate() -> None:
    generated = schemagen.build_all()
    assert set(generated) == set(NAMES)
    for name, doc in generated.items():
        version = doc["x-laxchange-version"]
        committed = schemastore.load(name, version)
        assert committed == doc, f"schemas/{name}/{version}.json differs from the models: run `laxchange schema build`"


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12_with_stable_id(name: str) -> None:
    doc = schemastore.load(name, "1.0.0")
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"https://laxchange.example/schemas/{name}/1.0.0"


def test_record_schema_covers_the_design() -> None:
    text = json.dumps(schemastore.load("education-record", "1.0.0"))
    for field in ["upn_unknown_reason", "uln", "legal_status", "placing_la", "host_la", "urn", "laestab",
                  "designated_teacher", "chronology", "reason_for_change", "current_arrangements",
                  "planned_changes", "short_term_targets", "long_term_targets", "aspirations",
                  "leisure_interests", "child_voice", "pupil_premium_plus", "actions", "vsh_contact",
                  "need_types", "maintaining_la", "annual_review_due", "attainment", "attendance",
                  "exclusions", "social_worker", "iro", "carer"]:
        assert f'"{field}"' in text, field


def test_pep_requires_vsh_contact_in_the_published_schema() -> None:
    defs = schemastore.load("education-record", "1.0.0")["$defs"]
    assert "vsh_contact" in defs["Pep"]["required"]


def test_schema_cli_list_show_export_check(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["--json", "schema", "list"])
    assert listed.exit_code == 0
    rows = json.loads(listed.output)["schemas"]
    assert {(r["name"], r["version"], r["released"]) for r in rows} >= {(n, "1.0.0", True) for n in NAMES}

    shown = runner.invoke(main, ["schema", "show", "receipt@1.0.0"])
    assert shown.exit_code == 0 and json.loads(shown.output)["$id"].endswith("/receipt/1.0.0")

    missing = runner.invoke(main, ["schema", "show", "receipt@9.9.9"])
    assert missing.exit_code == 2 and "does not exist" in missing.output and "Traceback" not in missing.output

    out = tmp_path / "export"
    exported = runner.invoke(main, ["schema", "export", str(out)])
    assert exported.exit_code == 0
    assert json.loads((out / "pep-transfer" / "1.0.0.json").read_text())["$id"].endswith("pep-transfer/1.0.0")
    assert schemastore.check_lock(out) == []
    again = runner.invoke(main, ["schema", "export", str(out)])
    assert again.exit_code == 2

    checked = runner.invoke(main, ["schema", "check"])
    assert checked.exit_code == 0


# -- migrations --------------------------------------------------------------------------------

def test_every_major_step_has_a_migration() -> None:
    assert REGISTRY.missing() == []


def _fake_versions(name: str) -> list[str]:
    return ["1.0.0", "1.1.0", "2.0.0"] if name == "receipt" else schemastore.versions(name)


def test_a_missing_major_migration_is_reported() -> None:
    registry = Migrations(versions=_fake_versions)
    assert registry.missing() == ["receipt: no migration from 1.x to 2.x"]


def test_major_migration_runs_and_sets_the_schema_id() -> None:
    registry = Migrations(versions=_fake_versions)

    @registry.register("receipt", 1, "2.0.0")
    def _rename(doc: dict) -> dict:
        doc["outcome"] = doc.pop("status")
        return doc

    assert registry.missing() == []
    doc = samples.receipt(3)
    upgraded = registry.upgrade(doc)
    assert upgraded["schema"].endswith("/receipt/2.0.0")
    assert upgraded["outcome"] == doc["status"] and "status" not in upgraded
    assert doc["schema"] == messages.RECEIPT_ID, "the input is not modified"
    with pytest.raises(UsageError):
        registry.upgrade(upgraded, "1.0.0")


def test_migration_must_go_to_the_next_major() -> None:
    with pytest.raises(ValueError):
        Migrations().register("receipt", 1, "3.0.0")


def test_migrate_cli_to_current_version_validates(tmp_path: Path) -> None:
    src = tmp_path / "r.json"
    src.write_text(json.dumps(samples.education_record(2)))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["schema", "migrate", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert validate_document(json.loads(out.read_text())).ok
    # a child's record: private, whatever the umask (a walk-through found it 0644), and not overwritten
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    before = out.read_bytes()
    again = CliRunner().invoke(main, ["--json", "schema", "migrate", str(src), "-o", str(out)])
    assert again.exit_code == 2 and json.loads(again.output)["error"] == "output.exists" and out.read_bytes() == before
    assert CliRunner().invoke(main, ["schema", "migrate", str(src), "-o", str(out), "--force"]).exit_code == 0


def test_spelled_out_schema_ids_equal_schema_id() -> None:
    # The models spell the $id literals out (so type checkers see Literal types); they must not drift.
    from laxchange.models import messages, record
    from laxchange.models.common import schema_id

    assert schema_id(record.NAME, record.VERSION) == record.ID
    assert schema_id("placement-notification", messages.VERSION) == messages.PLACEMENT_NOTIFICATION_ID
    assert schema_id("pep-transfer", messages.VERSION) == messages.PEP_TRANSFER_ID
    assert schema_id("exclusion-notice", messages.VERSION) == messages.EXCLUSION_NOTICE_ID
    assert schema_id("receipt", messages.RECEIPT_VERSION) == messages.RECEIPT_ID
    for name, (version, model, _) in schemagen.CURRENT.items():
        if model is not None:
            assert model.model_fields["schema_"].default == schema_id(name, version)
