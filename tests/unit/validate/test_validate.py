"""Validation: every acceptance case of bad input, each domain rule, and the CLI contract."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange import samples
from laxchange.cli import main
from laxchange.clock import FixedClock
from laxchange.exchange.receipts import build_receipt
from laxchange.models import record as rec_model
from laxchange.validate import domain, structural, validate_document
from tests.support.parties import REPO

CLOCK = FixedClock(dt.datetime(2026, 10, 2, 12, 0))


def record(seed: int = 7) -> dict[str, Any]:
    doc = samples.education_record(seed)
    assert "upn" in doc["child"]
    return doc


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# -- acceptance: a new user's bad inputs -----------------------------------------------------------

def test_sample_then_validate_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert run_cli("sample", "education-record", "--seed", "7", "-o", str(out)).exit_code == 0
    result = run_cli("validate", str(out))
    assert result.exit_code == 0, result.output
    assert f"valid (education-record@{rec_model.VERSION})" in result.output


def _flip_check_letter(d: dict[str, Any]) -> None:
    upn = d["child"]["upn"]
    d["child"]["upn"] = ("B" if upn[0] == "A" else "A") + upn[1:]


def _unknown_la(d: dict[str, Any]) -> None:
    d["placement"]["host_la"] = "999"


def _no_vsh(d: dict[str, Any]) -> None:
    del d["pep"]["vsh_contact"]


def _review_before_pep(d: dict[str, Any]) -> None:
    d["pep"]["next_review_due"] = (dt.date.fromisoformat(d["pep"]["pep_date"]) - dt.timedelta(days=3)).isoformat()


@pytest.mark.parametrize("mutate,path,rule", [
    (_flip_check_letter, "$.child.upn", "upn.check-letter"),
    (_unknown_la, "$.placement.host_la", "la.code"),
    (_no_vsh, "$.pep.vsh_contact", "schema.required"),
    (_review_before_pep, "$.pep.next_review_due", "pep.review-date-order"),
])
def test_bad_record_exits_1_naming_path_and_rule(tmp_path: Path, mutate: Callable, path: str, rule: str) -> None:
    doc = record()
    mutate(doc)
    result = run_cli("validate", write(tmp_path, "bad.json", json.dumps(doc, indent=2)))
    assert result.exit_code == 1
    assert path in result.output and f"[{rule}]" in result.output and "hint:" in result.output
    assert "Traceback" not in result.output


def _text() -> str:
    return json.dumps(record(), indent=2)


@pytest.mark.parametrize("make,path,rule", [
    (lambda: _text().replace('{\n  "schema"', '{\n  "as_of": "2026-01-01",\n  "schema"', 1), "$.as_of",
     "json.duplicate-key"),
    (lambda: _text().replace('"sessions_possible": ', '"sessions_possible": NaN, "x": ', 1),
     "$.attendance[0].sessions_possible", "json.non-finite"),
    (lambda: _text()[: len(_text()) // 2], "$", "json.truncated"),
    (lambda: _text()[: len(_text()) - 2], "$", "json.truncated"),
    (lambda: "\ufeff" + _text(), "$", "json.bom"),
    (lambda: "", "$", "json.empty"),
    (lambda: "[1, 2", "$", "json.truncated"),
    (lambda: '{"a": 1} {"b": 2}', "$", "json.syntax"),
])
def test_bad_json_exits_1_naming_path_and_rule(tmp_path: Path, make: Callable[[], str], path: str, rule: str) -> None:
    result = run_cli("validate", write(tmp_path, "bad.json", make()))
    assert result.exit_code == 1, result.output
    assert f"error: {path}:" in result.output and f"[{rule}]" in result.output
    assert "Traceback" not in result.output


def test_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(9 * 1024 * 1024)
    result = run_cli("validate", str(big))
    assert result.exit_code == 1 and "[json.too-large]" in result.output


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope.json"))
    assert result.exit_code == 1 and "no such file" in result.output and "Traceback" not in result.output


def test_json_output_is_machine_readable(tmp_path: Path) -> None:
    good, bad = record(), record()
    _flip_check_letter(bad)
    result = run_cli("validate", "--json", write(tmp_path, "good.json", json.dumps(good)),
                     write(tmp_path, "bad.json", json.dumps(bad)))
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["ok"] is False
    first, second = out["reports"]
    assert first["valid"] is True and first["schema"] == f"education-record@{rec_model.VERSION}"
    assert second["valid"] is False
    finding = second["findings"][0]
    assert finding == {**finding, "severity": "error", "path": "$.child.upn", "rule": "upn.check-letter"}
    assert finding["message"] and finding["hint"]


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    doc = record()
    doc["school"]["ofsted_rating"] = "inadequate"
    path = write(tmp_path, "w.json", json.dumps(doc))
    relaxed = run_cli("validate", path)
    assert relaxed.exit_code == 0 and "[school.ofsted-inadequate]" in relaxed.output
    strict = run_cli("validate", "--strict", path)
    assert strict.exit_code == 1


def test_expected_type_must_match(tmp_path: Path) -> None:
    path = write(tmp_path, "r.json", json.dumps(record()))
    result = run_cli("validate", "--type", "pep-transfer", path)
    assert result.exit_code == 1 and "[schema.unexpected-type]" in result.output


def test_unknown_schema_version_is_a_finding() -> None:
    doc = record()
    doc["schema"] = doc["schema"].replace(rec_model.VERSION, "0.9.0")
    report = validate_document(doc)
    assert [f.rule for f in report.errors] == ["schema.unknown-version"]


def test_a_newer_major_version_says_so() -> None:
    doc = record()
    doc["schema"] = doc["schema"].replace(rec_model.VERSION, "7.0.0")
    [finding] = validate_document(doc).errors
    assert finding.rule == "schema.newer-version"
    assert finding.message == (f"education-record 7.0.0 is a newer major version: this laxchange reads "
                               f"education-record up to {rec_model.VERSION}")


def test_stdin_is_accepted() -> None:
    result = CliRunner().invoke(main, ["validate", "-"], input=json.dumps(record()))
    assert result.exit_code == 0, result.output


# -- domain rules, one by one ------------------------------------------------------------------------

def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        node: Any = d
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node[p]
        node[parts[-1]] = value
    return mutate


def _school_ofsted(d: dict[str, Any]) -> None:
    d["school"]["ofsted_rating"] = "inadequate"


def _pp_overspent(d: dict[str, Any]) -> None:
    d["pep"]["pupil_premium_plus"] = {"academic_year": "2026/27", "allocation_gbp": 2570, "planned_use": "tutoring",
                                      "spent_to_date_gbp": 3000}


def _ehcp_order(d: dict[str, Any]) -> None:
    d["sen"] = {"provision": "E", "need_types": ["SEMH"], "primary_need": "SEMH",
                "ehcp": {"maintaining_la": "919", "request_date": "2024-05-01", "issued_date": "2024-03-01",
                         "annual_review_due": "2025-03-01"}}


def _ehcp_without_e(d: dict[str, Any]) -> None:
    d["sen"] = {"provision": "K", "need_types": ["SEMH"],
                "ehcp": {"maintaining_la": "919", "issued_date": "2024-03-01", "annual_review_due": "2025-03-01"}}


def _dob_after(d: dict[str, Any]) -> None:
    d["child"]["date_of_birth"] = d["pep"]["pep_date"]


def _attendance_sum(d: dict[str, Any]) -> None:
    d["attendance"] = [{"start": "2025-09-01", "end": "2026-07-20", "sessions_possible": 380,
                        "sessions_attended": 300, "authorised_absence": 10, "unauthorised_absence": 10}]


def _attendance_impossible(d: dict[str, Any]) -> None:
    """A walk-through's sample: 198 sessions possible from 30 September to 2 December (46 weekdays)."""
    d["attendance"] = [{"start": "2026-09-30", "end": "2026-12-02", "sessions_possible": 198,
                        "sessions_attended": 190, "authorised_absence": 4, "unauthorised_absence": 4}]


def _attendance_low(d: dict[str, Any]) -> None:
    d["attendance"] = [{"start": "2025-09-01", "end": "2026-07-20", "sessions_possible": 380,
                        "sessions_attended": 300, "authorised_absence": 40, "unauthorised_absence": 40}]


def _scaled(d: dict[str, Any]) -> None:
    d["attainment"] = [{"stage": "KS2", "subject": "Reading", "kind": "scaled-score", "value": "121",
                        "date": "2026-07-01"}]


def _gcse(d: dict[str, Any]) -> None:
    d["attainment"] = [{"stage": "KS4", "subject": "History", "kind": "gcse-grade", "value": "A*",
                        "date": "2026-08-20"}]


def _chronology(d: dict[str, Any]) -> None:
    d["pep"]["chronology"] = [
        {"setting_name": "Second Fictional School", "start": "2024-09-01"},
        {"setting_name": "First Fictional School", "start": "2022-09-01", "end": "2024-07-20"},
    ]


@pytest.mark.parametrize("mutate,severity,path,rule", [
    (_set("child.upn", "A00180001701Z"), "error", "$.child.upn", "upn.check-letter"),
    (_set("child.uln", "1234567890"), "error", "$.child.uln", "uln.check-digit"),
    (_set("child.home_la", "000"), "error", "$.child.home_la", "la.code"),
    (_set("placement.legal_status", "Z9"), "error", "$.placement.legal_status", "code.legal-status"),
    (_set("placement.placement_type", "Q1"), "error", "$.placement.placement_type", "code.placement-type"),
    (_set("placement.reason_for_change", "WRONG"), "error", "$.placement.reason_for_change",
     "code.reason-placement-change"),
    (_set("placement.category_of_need", "N9"), "error", "$.placement.category_of_need", "code.category-of-need"),
    (_set("school.laestab", "1234567"), "error", "$.school.laestab", "school.laestab-la"),
    (_school_ofsted, "warning", "$.school.ofsted_rating", "school.ofsted-inadequate"),
    (_set("pep.pep_date", "2026-03-01"), "warning", "$.pep.pep_date", "pep.stale"),
    (_set("pep.pep_date", "2026-12-01"), "error", "$.pep.pep_date", "pep.date-after-as-of"),
    (_set("as_of", "2027-01-01"), "error", "$.as_of", "record.as-of-future"),
    (_pp_overspent, "error", "$.pep.pupil_premium_plus.spent_to_date_gbp", "pp-plus.overspent"),
    (_ehcp_order, "error", "$.sen.ehcp.issued_date", "ehcp.dates-order"),
    (_ehcp_without_e, "error", "$.sen.ehcp", "sen.ehcp-provision"),
    (_set("sen", {"provision": "N", "need_types": ["ASD"]}), "error", "$.sen.need_types", "sen.provision-needs"),
    (_set("sen", {"provision": "K", "need_types": ["ASD"], "primary_need": "MLD"}), "error",
     "$.sen.primary_need", "sen.primary-need"),
    (_set("sen", {"provision": "K", "need_types": ["XYZ"]}), "error", "$.sen.need_types[0]", "code.sen-need"),
    (_dob_after, "error", "$.placement.period_of_care_start", "date.before-birth"),
    (_attendance_sum, "error", "$.attendance[0].sessions_possible", "attendance.sum"),
    (_attendance_low, "warning", "$.attendance[0].sessions_attended", "attendance.persistent-absence"),
    (_attendance_impossible, "warning", "$.attendance[0].sessions_possible", "attendance.possible"),
    (_scaled, "error", "$.attainment[0].value", "attainment.range"),
    (_gcse, "error", "$.attainment[0].value", "attainment.range"),
    (_chronology, "error", "$.pep.chronology[1].start", "pep.chronology-order"),
])
def test_domain_rule(mutate: Callable, severity: str, path: str, rule: str) -> None:
    doc = record()
    clean = validate_document(doc, clock=CLOCK)
    assert clean.ok and not any(f.rule == rule for f in clean.findings)
    mutate(doc)
    report = validate_document(doc, clock=CLOCK)
    hits = [f for f in report.findings if f.rule == rule]
    assert hits, [f.format() for f in report.findings]
    assert hits[0].severity == severity and hits[0].path == path
    assert hits[0].message and hits[0].hint
    assert rule in domain.RULES or rule.startswith("schema.")


def test_as_of_future_depends_on_the_injected_clock() -> None:
    doc = record()
    doc["as_of"] = "2026-11-01"
    early = validate_document(doc, clock=FixedClock(dt.datetime(2026, 10, 2)))
    late = validate_document(doc, clock=FixedClock(dt.datetime(2026, 11, 1)))
    assert "record.as-of-future" in {f.rule for f in early.errors}
    assert "record.as-of-future" not in {f.rule for f in late.findings}


def test_message_rules() -> None:
    note = samples.placement_notification(4)
    note["host_la"] = note["placing_la"]
    rules = {f.rule for f in validate_document(note, clock=CLOCK).findings}
    assert {"notification.record-mismatch", "placement.same-la"} <= rules

    receipt = samples.receipt(4)
    receipt["status"] = "rejected"
    receipt.pop("reason_code", None)
    assert "receipt.reason-missing" in {f.rule for f in validate_document(receipt, clock=CLOCK).errors}

    notice = samples.exclusion_notice(4)
    notice["exclusion"]["school_urn"] = "999999" if notice["school_urn"] != "999999" else "999998"
    assert "exclusion.school" in {f.rule for f in validate_document(notice, clock=CLOCK).errors}


def test_every_rule_is_documented() -> None:
    text = (REPO / "docs" / "validation.md").read_text()
    for rule in domain.RULES:
        assert f"`{rule}`" in text, f"docs/validation.md does not describe {rule}"


# -- samples and the two schema validators ---------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(samples.GENERATORS))
def test_samples_are_valid_and_deterministic(kind: str) -> None:
    for seed in range(40):
        doc = samples.generate(kind, seed)[0]
        report = validate_document(doc, clock=CLOCK)
        assert report.ok, (seed, [f.format() for f in report.errors])
    assert samples.generate(kind, 11) == samples.generate(kind, 11)
    assert samples.generate(kind, 11) != samples.generate(kind, 12)


def test_samples_are_obviously_fictional() -> None:
    for seed in range(30):
        doc = samples.education_record(seed)
        assert doc["child"]["local_child_id"].startswith("SYNTH-")
        text = json.dumps(doc)
        emails = [w for w in text.replace('"', " ").split() if "@" in w]
        assert emails and all(e.rstrip(",").endswith(".example") for e in emails)
        assert "01632 960" in text  # Ofcom's range for drama


def _mutations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Structural damage of many kinds, for comparing the two validators."""
    out = []
    for path, value in [("child.date_of_birth", "2020-02-30"), ("child.upn", "I12"), ("child.gender", "x"),
                        ("contacts.social_worker.email", "not-an-email"), ("pep.chronology", []),
                        ("placement.placing_la", 919), ("school.urn", "12345"), ("sen.provision", "Q"),
                        ("record_id", "XYZ"), ("pep.pep_date", "01/02/2026"), ("extra_field", 1)]:
        d = copy.deepcopy(doc)
        _set(path, value)(d)
        out.append(d)
    d = copy.deepcopy(doc)
    del d["contacts"]
    out.append(d)
    return out


def test_rust_and_python_validators_agree() -> None:
    """jsonschema-rs (fast path) and python-jsonschema are independent: they must agree."""
    fast = structural.fast_validator("education-record", "1.0.0")
    slow = structural.validator("education-record", "1.0.0")
    for seed in range(25):
        doc = record(seed) if "upn" in samples.education_record(seed)["child"] else samples.education_record(seed)
        for d in [doc, *_mutations(doc)]:
            assert fast.is_valid(d) == slow.is_valid(d), json.dumps(d)[:200]


def test_sample_cli_count_writes_a_directory(tmp_path: Path) -> None:
    out = tmp_path / "many"
    result = run_cli("--json", "sample", "receipt", "--seed", "3", "--count", "4", "-o", str(out))
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [f"receipt-{i:06d}.json" for i in range(3, 7)]
    assert json.loads(result.output)["written"]
    assert run_cli("validate", *map(str, sorted(out.iterdir()))).exit_code == 0
    lines = run_cli("sample", "receipt", "--seed", "3", "--count", "2").output.splitlines()
    assert [json.loads(x) for x in lines] == samples.generate("receipt", 3, 2)


def test_a_directory_means_its_json_files(tmp_path: Path) -> None:
    for seed in (1, 2):
        (tmp_path / f"r{seed}.json").write_text(json.dumps(samples.education_record(seed)))
    result = run_cli("--json", "validate", str(tmp_path))
    assert result.exit_code == 0
    assert [r["source"] for r in json.loads(result.output)["reports"]] == [str(tmp_path / "r1.json"),
                                                                           str(tmp_path / "r2.json")]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("validate", str(empty)).exit_code == 2


def test_an_impossible_date_time_is_refused_so_the_format_checker_is_really_installed() -> None:
    """`date-time` is only checked when rfc3339-validator is importable; without it this passes silently."""
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    doc = build_receipt(in_reply_to="a" * 32, payload_sha256="b" * 64, received_at=now, processed_at=now)
    assert validate_document(doc).ok
    doc["received_at"] = "2026-13-45T99:00:00Z"
    report = validate_document(doc)
    assert not report.ok and [f.rule for f in report.errors] == ["schema.format"]


def test_validation_does_not_load_a_grammar_compiler_at_start_up() -> None:
    """rfc3987-syntax (pulled in by jsonschema's format extras) compiles lark grammars on import:
    over a second on every command's start. Our schemas need none of its formats."""
    code = "import sys, laxchange.validate; print(sorted(m for m in ('lark', 'rfc3987_syntax') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert r.stdout.strip() == "[]"


def test_a_contact_with_neither_email_nor_phone_is_told_to_add_one() -> None:
    doc = record()
    del doc["pep"]["vsh_contact"]["email"], doc["pep"]["vsh_contact"]["phone"]
    [f] = validate_document(doc, clock=CLOCK).errors
    assert (f.path, f.rule, f.message, f.hint) == (
        "$.pep.vsh_contact", "schema.anyOf", "give at least one of: email, phone", "add the email or the phone")


def test_upn_and_its_unknown_reason_together_are_told_to_drop_one() -> None:
    doc = record()
    doc["child"]["upn_unknown_reason"] = "UN2"
    [f] = validate_document(doc, clock=CLOCK).errors
    assert (f.path, f.rule, f.hint) == ("$.child", "schema.oneOf", "remove one of them")
    del doc["child"]["upn"], doc["child"]["upn_unknown_reason"]
    [f] = validate_document(doc, clock=CLOCK).errors
    assert f.rule == "schema.oneOf" and "UN1-UN5" in f.hint
