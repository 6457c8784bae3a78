"""education-record 1.1.0 (issue 11): old documents still read, new ones validate, an old reader refuses clearly."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from laxchange import samples
from laxchange._util import jsonio
from laxchange.cli import main
from laxchange.clock import FixedClock
from laxchange.errors import InvalidData
from laxchange.models import messages, record, schemastore, wrap
from laxchange.models.migrations import REGISTRY
from laxchange.validate import domain, structural, validate_document
from laxchange.validate.migrate import migrate_document
from tests.support.parties import REPO, world

VECTORS = REPO / "tests" / "vectors" / "samples-1.0.0"
CLOCK = FixedClock(dt.datetime(2026, 10, 2, 9, 0, tzinfo=dt.UTC))
MESSAGES = ("education-record", "placement-notification", "pep-transfer", "exclusion-notice")


def _check(doc: dict[str, Any]) -> list[str]:
    return [f.rule for f in validate_document(doc, clock=CLOCK).findings]


def _errors(doc: dict[str, Any]) -> list[str]:
    return [f.rule for f in validate_document(doc, clock=CLOCK).errors]


def filled(seed: int = 3) -> dict[str, Any]:
    doc = samples.education_record(seed)
    assert "cohort" in doc, "this seed should carry the 1.1.0 facts"
    return doc


# -- 1.0.0 still validates and opens -------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(VECTORS.glob("*.json")), ids=lambda p: p.name)
def test_documents_from_the_previous_release_still_validate(path: Path) -> None:
    doc = jsonio.load_file(path)
    assert doc["schema"].endswith("/1.0.0")
    report = validate_document(doc, clock=CLOCK)
    assert report.ok, report.findings
    assert report.schema.endswith("@1.0.0")


def test_a_1_0_0_pep_transfer_still_packs_and_opens(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    doc = jsonio.load_file(VECTORS / "pep-transfer-3.json")
    opened = b.open(a.pack(doc, "URN:123456"))
    assert opened.document == doc and opened.schema == "pep-transfer@1.0.0"


def test_a_1_1_0_pep_transfer_packs_and_opens(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    doc = samples.pep_transfer(3)
    opened = b.open(a.pack(doc, "URN:123456"))
    assert opened.document == doc and opened.schema == f"pep-transfer@{messages.VERSION}"


@pytest.mark.parametrize("kind", MESSAGES)
def test_sample_1_0_0_is_byte_identical_to_the_previous_release(kind: str) -> None:
    for seed in (0, 3, 7, 1234):
        result = CliRunner().invoke(main, ["sample", kind, "--seed", str(seed), "--schema-version", "1.0.0"])
        assert result.exit_code == 0, result.output
        assert result.output == (VECTORS / f"{kind}-{seed}.json").read_text(encoding="utf-8"), (kind, seed)


def test_sample_1_0_0_is_byte_identical_with_as_of_and_count() -> None:
    runner = CliRunner()
    one = runner.invoke(main, ["sample", "education-record", "--seed", "5", "--as-of", "2025-03-15",
                               "--schema-version", "1.0.0"])
    assert one.output == (VECTORS / "education-record-5-2025-03-15.json").read_text(encoding="utf-8")
    many = runner.invoke(main, ["sample", "education-record", "--seed", "10", "--count", "3",
                                "--schema-version", "1.0.0"])
    assert many.output == (VECTORS / "education-record-10-count3.jsonl").read_text(encoding="utf-8")


# -- 1.1.0 validates; samples carry the new facts for some children -----------------------------

@pytest.mark.parametrize("kind", [*MESSAGES, "receipt"])
def test_samples_are_the_newest_version_by_default_and_validate(kind: str) -> None:
    for seed in range(40):
        doc = samples.generate(kind, seed)[0]
        assert doc["schema"].endswith("/" + (messages.RECEIPT_VERSION if kind == "receipt" else "1.1.0"))
        assert _errors(doc) == [], (kind, seed)


def test_some_sample_children_have_the_new_facts_and_some_do_not() -> None:
    docs = samples.generate("education-record", 0, 30)
    with_facts = [d for d in docs if "care_arrangements" in d]
    assert 5 < len(with_facts) < 25
    assert all("allocation_pence" in d["pep"]["pupil_premium_plus"] for d in docs)
    states = {d["pep"]["status"]["state"] for d in with_facts}
    assert states == {"complete", "quality-assured"}
    assert {d["placement"]["emergency_placement"] for d in with_facts} == {True, False}
    notices = samples.generate("exclusion-notice", 0, 40)
    cohorts = {n.get("cohort") for n in notices}
    assert None in cohorts and "looked-after" in cohorts and cohorts & {"child-in-need", "child-protection"}


def test_acceptance_seed_3_via_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    runner = CliRunner()
    assert runner.invoke(main, ["sample", "education-record", "--seed", "3", "-o", str(out)]).exit_code == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == record.ID
    assert doc["care_arrangements"]["delegated_authority"]
    assert doc["contact_arrangements"] and doc["pep"]["named_person"]["email"]
    assert isinstance(doc["placement"]["emergency_placement"], bool)
    result = runner.invoke(main, ["validate", str(out)])
    assert result.exit_code == 0 and "valid (education-record@1.1.0)" in result.output


def test_sample_refuses_a_version_it_cannot_write() -> None:
    result = CliRunner().invoke(main, ["sample", "education-record", "--schema-version", "1.7.0"])
    assert result.exit_code == 2
    assert "cannot write sample education-record documents at schema version 1.7.0" in result.output
    assert "1.0.0, 1.1.0" in result.output


# -- a 1.0.0 reader and a 1.1.0 document ------------------------------------------------------

def test_the_1_0_0_schema_file_refuses_a_1_1_0_document() -> None:
    """What another implementation holding only the 1.0.0 file does: closed objects refuse new members."""
    doc = filled()
    doc["schema"] = record.ID.replace("1.1.0", "1.0.0")  # even with the id rewritten
    schema = schemastore.load("education-record", "1.0.0")
    errors = list(Draft202012Validator(schema, registry=structural.registry()).iter_errors(doc))
    assert {e.validator for e in errors} == {"additionalProperties"}
    findings = structural.check(doc, "education-record", "1.0.0")
    unexpected = " ".join(f.message for f in findings if f.rule == "schema.additionalProperties")
    for member in ("care_arrangements", "contact_arrangements", "cohort", "named_person", "emergency_placement"):
        assert member in unexpected
    untouched = filled()
    assert [f.rule for f in structural.check(untouched, "education-record", "1.0.0")].count("schema.const") == 1


def test_type_pinned_to_1_0_0_refuses_a_1_1_0_document() -> None:
    result = CliRunner().invoke(main, ["validate", "--type", "education-record@1.0.0", "-"],
                                input=json.dumps(filled()))
    assert result.exit_code == 1 and "schema.unexpected-type" in result.output
    assert "expected education-record@1.0.0 (a newer version: a 1.0.0 reader refuses it)" in result.output


@pytest.fixture()
def old_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A laxchange from before issue 11: the same schema folder without the record 1.1.0 files."""
    root = tmp_path / "schemas"
    shutil.copytree(schemastore.schema_dir(), root)
    for name in MESSAGES:
        (root / name / "1.1.0.json").unlink()
    monkeypatch.setenv("LAXCHANGE_SCHEMA_DIR", str(root))
    return root


@pytest.mark.parametrize("kind", MESSAGES)
def test_a_1_0_0_reader_refuses_a_1_1_0_document_saying_why(old_reader: Path, kind: str) -> None:
    doc = samples.generate(kind, 3)[0]
    [finding] = validate_document(doc, clock=CLOCK).findings
    assert finding.rule == "schema.newer-version" and finding.path == "$.schema"
    assert finding.message == f"{kind} 1.1.0 is a newer minor version: this laxchange reads {kind} up to 1.0.0"
    assert "upgrade laxchange" in finding.hint
    assert validate_document(jsonio.load_file(VECTORS / f"{kind}-3.json"), clock=CLOCK).ok


def test_a_1_0_0_reader_refuses_from_the_cli(old_reader: Path, tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    path.write_text(json.dumps(filled()))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "newer minor version: this laxchange reads education-record up to 1.0.0" in result.output
    assert "Traceback" not in result.output


def test_a_1_0_0_reader_refuses_a_1_1_0_package(old_reader: Path, tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    data = _pack_with_full_schemas(a, samples.pep_transfer(3), old_reader)
    with pytest.raises(InvalidData) as info:
        b.open(data)
    assert info.value.code == "record.invalid"
    assert "newer minor version: this laxchange reads pep-transfer up to 1.0.0" in info.value.message


def _pack_with_full_schemas(sender: Any, doc: dict[str, Any], old_root: Path) -> bytes:
    """The sender runs the new laxchange; only the receiver is old."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAXCHANGE_SCHEMA_DIR", str(REPO / "schemas"))
        data: bytes = sender.pack(doc, "URN:123456")
    assert (old_root / "pep-transfer" / "1.0.0.json").exists()
    return data


# -- migration from 1.0.0 ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", MESSAGES)
def test_a_1_0_0_document_migrates_to_1_1_0_with_its_embedded_record(kind: str) -> None:
    old = jsonio.load_file(VECTORS / f"{kind}-7.json")
    new, report = migrate_document(old, "1.1.0", clock=CLOCK)
    assert report.ok and new["schema"].endswith(f"/{kind}/1.1.0")
    if "record" in new:
        assert new["record"]["schema"] == record.ID
        assert old["record"]["schema"].endswith("/1.0.0"), "the input is not modified"
        assert {k: v for k, v in new["record"].items() if k != "schema"} == \
            {k: v for k, v in old["record"].items() if k != "schema"}
    assert REGISTRY.upgrade(old)["schema"] == new["schema"]
    mine = copy.deepcopy(old)  # a document the caller gives up is moved up itself, to the same result
    assert REGISTRY.upgrade(mine, in_place=True) is mine and mine == REGISTRY.upgrade(old)
    assert old["schema"].endswith("/1.0.0"), "without in_place the input is not modified"


# -- money -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("gbp", "pence"), [(2630.0, 263000), (0.1, 10), (12.345, 1235), (0.005, 1),
                                            (99999.99, 9999999), (0.0, 0), (1e-7, 0)])
def test_a_1_0_0_float_maps_to_pence_half_up(gbp: float, pence: int) -> None:
    assert domain.pence_from_gbp(gbp) == pence


def test_pence_win_over_the_float_for_overspending() -> None:
    doc = filled()
    ppp = doc["pep"]["pupil_premium_plus"]
    ppp.update(allocation_gbp=100.0, allocation_pence=10000, spent_to_date_gbp=100.004, spent_to_date_pence=10000)
    assert "pp-plus.overspent" not in _errors(doc)
    ppp.update(spent_to_date_gbp=100.01, spent_to_date_pence=10001)
    assert _errors(doc) == ["pp-plus.overspent"]


# -- domain rules for the new facts ------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _status(state: str, **extra: Any) -> Mutation:
    def go(r: dict[str, Any]) -> None:
        r["pep"]["status"] = {"state": state, **extra}
    return go


def _set(path: str, value: Any) -> Mutation:
    def go(r: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = r
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    return go


def _drop(path: str) -> Mutation:
    def go(r: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = r
        for p in parents:
            node = node[p]
        del node[last]
    return go


def _permanent(**dates: str) -> Mutation:
    def go(r: dict[str, Any]) -> None:
        r["exclusions"] = [{"kind": "permanent-exclusion", "start_date": "2026-09-10", "reason_code": "PA",
                            "school_urn": r["school"]["urn"], **dates}]
    return go


def _suspension(**dates: str) -> Mutation:
    def go(r: dict[str, Any]) -> None:
        r["exclusions"] = [{"kind": "suspension", "start_date": "2026-09-10", "sessions": 4, "reason_code": "PD",
                            **dates}]
    return go


RECORD_CASES: list[tuple[str, Mutation, str]] = [
    ("emergency placement, not looked after",
     lambda r: (_set("cohort", "child-in-need")(r), _set("placement.emergency_placement", True)(r)),
     "cohort.placement-duties"),
    ("complete PEP, no named person", _drop("pep.named_person"), "pep.complete-named-person"),
    ("complete PEP, no distribution", _drop("pep.distribution"), "pep.complete-distribution"),
    ("quality-assured without date", _status("quality-assured"), "pep.status-dates"),
    ("completed before the PEP", _status("complete", completed_on="2020-01-01"), "pep.status-dates"),
    ("completed after as_of", _status("complete", completed_on="2026-10-05"), "pep.status-dates"),
    ("QA before completion", _status("quality-assured", completed_on="2026-09-30", quality_assured_on="2026-09-29"),
     "pep.status-dates"),
    ("RAG on a draft", _status("draft", rag="green"), "pep.status-rag"),
    ("next meeting before the PEP", _set("pep.next_meeting", "2026-08-01"), "pep.next-meeting-order"),
    ("distributed after as_of", _set("pep.distribution.0.date", "2026-10-09"), "pep.distribution-date"),
    ("pence disagree with pounds", _set("pep.pupil_premium_plus.allocation_pence", 263001), "pp-plus.pence-mismatch"),
    ("no school place in the future",
     lambda r: (_drop("school")(r), _set("no_school_place", {"since": "2026-11-01", "interim_provision": "tutor"})(r)),
     "no-place.dates"),
    ("no school place but attending",
     _set("no_school_place", {"since": "2020-01-01", "interim_provision": "tutor"}), "no-place.school"),
    ("absence starting after as_of",
     _set("extended_absences", [{"start": "2026-10-05", "school_days": 12}]), "absence.dates"),
    ("absence longer than its dates",
     _set("extended_absences", [{"start": "2026-09-01", "end": "2026-09-12", "school_days": 20}]), "absence.dates"),
    ("appeal on a suspension", _suspension(appeal_date="2026-09-20"), "exclusion.permanent-dates"),
    ("governors before the exclusion", _permanent(governors_meeting="2026-09-01"), "exclusion.dates-order"),
    ("appeal before governors", _permanent(governors_meeting="2026-09-20", appeal_date="2026-09-15"),
     "exclusion.dates-order"),
    ("reintegration before the suspension", _suspension(reintegration_meeting="2026-09-01"),
     "exclusion.reintegration-order"),
]


@pytest.mark.parametrize(("what", "mutate", "rule"), RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_each_new_record_rule_fires(what: str, mutate: Mutation, rule: str) -> None:
    doc = filled()
    doc["pep"]["status"] = {"state": "complete", "completed_on": doc["pep"]["distribution"][0]["date"]}
    assert _errors(doc) == []
    mutate(doc)
    assert rule in _errors(doc), what
    finding = next(f for f in validate_document(doc, clock=CLOCK).errors if f.rule == rule)
    assert finding.path.startswith("$.") and finding.hint


def test_a_late_next_meeting_is_a_warning() -> None:
    doc = filled()
    review = dt.date.fromisoformat(doc["pep"]["next_review_due"])
    doc["pep"]["next_meeting"] = (review + dt.timedelta(days=3)).isoformat()
    assert "pep.next-meeting-late" in _check(doc) and _errors(doc) == []


def test_valid_new_facts_raise_nothing() -> None:
    doc = filled()
    _permanent(governors_meeting="2026-09-20", appeal_date="2026-09-28")(doc)
    doc["extended_absences"] = [{"start": "2026-09-01", "end": "2026-09-20", "school_days": 14, "reason": "illness"}]
    doc["pep"]["status"] = {"state": "draft"}
    del doc["pep"]["named_person"], doc["pep"]["distribution"]
    assert _errors(doc) == []


def test_a_placement_notification_is_for_a_child_looked_after() -> None:
    doc = samples.placement_notification(3)
    assert _errors(doc) == []
    doc["record"]["cohort"] = "previously-looked-after"
    assert _errors(doc) == ["cohort.placement-duties"]


def _notice(seed: int = 3) -> dict[str, Any]:
    doc = samples.exclusion_notice(seed, version=messages.VERSION)
    doc.pop("cohort", None), doc.pop("social_worker", None), doc.pop("designated_safeguarding_lead", None)
    return doc


def test_a_notice_for_a_child_with_a_social_worker_names_them_and_the_dsl() -> None:
    doc = _notice()
    doc["cohort"] = "child-protection"
    assert "exclusion.cohort-contacts" in _check(doc) and _errors(doc) == []
    doc["social_worker"] = doc["reported_by"]
    doc["designated_safeguarding_lead"] = doc["reported_by"]
    assert "exclusion.cohort-contacts" not in _check(doc)


def test_a_notice_gives_one_reintegration_date() -> None:
    doc = _notice()
    doc["exclusion"]["reintegration_meeting"] = doc["reintegration_meeting"]
    assert _errors(doc) == []
    doc["exclusion"]["reintegration_meeting"] = "2026-09-30"
    assert _errors(doc) == ["exclusion.reintegration-mismatch"]


def test_permanent_exclusion_notice_dates() -> None:
    doc = _notice()
    exclusion = copy.deepcopy(doc["exclusion"])
    exclusion.update(kind="permanent-exclusion", governors_meeting=exclusion["start_date"])
    doc["exclusion"] = exclusion
    assert _errors(doc) == []
    exclusion["appeal_date"] = (dt.date.fromisoformat(exclusion["start_date"]) - dt.timedelta(days=1)).isoformat()
    assert set(_errors(doc)) == {"exclusion.dates-order"}


# -- packing a record from the previous release: wrapped in the message version that embeds it ---------

@pytest.mark.parametrize("want", ["pep-transfer", "placement-notification"])
def test_a_1_0_0_record_is_wrapped_in_a_1_0_0_message(want: str) -> None:
    old = jsonio.load_file(VECTORS / "education-record-3.json")
    doc, _ = wrap.prepare(old, want, sender="LA:919", recipient=f"LA:{old['placement']['host_la']}",
                          reason="new-placement")
    assert doc["schema"].endswith(f"/{want}/1.0.0")
    assert validate_document(doc, clock=CLOCK).ok
    new, _ = wrap.prepare(samples.education_record(3), want, sender="LA:919",
                          recipient=f"LA:{old['placement']['host_la']}", reason="new-placement")
    assert new["schema"] == schemastore.load(want)["$id"] and validate_document(new, clock=CLOCK).ok


def test_a_1_0_0_record_from_the_previous_release_packs_wrapped(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    doc = jsonio.load_file(VECTORS / "education-record-3.json")
    wrapped, kind = wrap.prepare(doc, "pep-transfer", sender="LA:919", recipient="URN:123456", reason="new-placement")
    opened = b.open(a.pack(wrapped, "URN:123456", message_type=kind))
    assert opened.schema == "pep-transfer@1.0.0" and opened.document["record"] == doc
