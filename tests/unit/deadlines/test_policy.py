"""The deadline policy as data: the shipped defaults cite their sources; a local policy may tighten or add
rules, never loosen one, and every mistake in it is named with where it is and what to do."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from laxchange.deadlines import SATISFIERS, STARTS, PolicyError, Unit, default_policy, load_policy
from laxchange.errors import ExitCode
from tests.support.parties import REPO, SHARED

DESIGN = SHARED / "DESIGN.md"
EXAMPLE = REPO / "docs" / "examples" / "deadline-policy-hertfordshire.json"


def _local(tmp_path: Path, *rules: dict[str, Any], **top: Any) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"format": "laxchange-deadline-policy/1", "name": "Testshire (fictional)",
                                "rules": list(rules), **top}))
    return path


def test_the_defaults_are_the_guidance_each_with_its_source() -> None:
    p = default_policy()
    got = {r.id: (r.starts, r.satisfied_by, r.length, r.unit) for r in p.rules}
    assert got == {
        "dt-informed": ("placement-or-school", "pep-delivered-to-school", 2, Unit.WORKING_DAYS),
        "pep-emergency": ("emergency-placement", "pep-on-or-after", 10, Unit.CALENDAR_DAYS),
        "pep-new-school": ("school-joined", "pep-on-or-after", 14, Unit.SCHOOL_DAYS),
        "pep-review": ("pep-review-due", "later-pep", 0, Unit.CALENDAR_DAYS),
        "pep-review-suspensions": ("third-suspension", "pep-on-or-after", 5, Unit.SCHOOL_DAYS),
        "school-place": ("no-school-place", "school-place", 20, Unit.WORKING_DAYS),
        "reintegration-meeting": ("suspension-return", "reintegration-meeting", 5, Unit.SCHOOL_DAYS),
        "governors-meeting": ("permanent-exclusion", "governors-meeting", 15, Unit.SCHOOL_DAYS),
    }
    for r in p.rules:
        assert re.fullmatch(r"seed \d{3} §[\d.]+.*", r.source), r.source
        assert r.starts in STARTS and r.satisfied_by in SATISFIERS and r.origin == "default"
    assert "48 hours" in p.rule("dt-informed").reading  # type: ignore[union-attr]


def test_each_default_source_is_a_row_of_design_section_10() -> None:
    """The sections cited are the ones DESIGN.md §10 gives."""
    table = DESIGN.read_text().split("## 10.")[1].split("## 11.")[0]
    for r in default_policy().rules:
        for seed, sections in re.findall(r"seed (\d{3}) (§[\d.]+(?:, §[\d.]+)*)", r.source):
            assert f"{seed} {sections}" in table, (r.id, seed, sections)


def test_the_hertfordshire_example_adds_a_rule_and_tightens_one() -> None:
    p = load_policy(EXAMPLE)
    first = p.rule("pep-first")
    assert first is not None and first.origin == "local" and (first.length, first.unit) == (14, Unit.WORKING_DAYS)
    tightened = p.rule("pep-new-school")
    assert tightened is not None and tightened.origin == "tightened" and tightened.length == 10
    assert tightened.source == "seed 000 §5.3; tightened by Hertfordshire virtual school (example local policy)"
    assert [r.id for r in p.rules][-1] == "pep-first" and len(p.rules) == len(default_policy().rules) + 1
    assert p.sources == ("laxchange defaults (policy.json)", str(EXAMPLE))


@pytest.mark.parametrize(("rule", "ok"), [
    ({"id": "dt-informed", "length": 1}, True),
    ({"id": "dt-informed", "length": 48, "unit": "hours"}, True),
    ({"id": "dt-informed", "length": 2, "unit": "calendar-days"}, True),
    ({"id": "dt-informed", "length": 3}, False),
    ({"id": "dt-informed", "length": 2, "unit": "school-days"}, False),
    ({"id": "dt-informed", "length": 73, "unit": "hours"}, False),
    ({"id": "pep-emergency", "length": 10, "unit": "working-days"}, False),
    ({"id": "pep-new-school", "length": 14, "unit": "working-days"}, True),
    ({"id": "pep-new-school", "length": 15}, False),
])
def test_a_local_policy_may_tighten_but_never_loosen(tmp_path: Path, rule: dict[str, Any], ok: bool) -> None:
    path = _local(tmp_path, rule)
    if ok:
        got = load_policy(path).rule(rule["id"])
        assert got is not None and got.length == rule["length"] and got.origin == "tightened"
        return
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.code == "deadlines.policy-looser" and info.value.exit_code == ExitCode.CONFIG
    assert f"rule {rule['id']} would be looser" in info.value.message and str(path) in info.value.message


NEW = {"id": "pep-first", "title": "First PEP", "starts": "looked-after", "satisfied_by": "pep-on-or-after",
       "length": 14, "unit": "working-days", "source": "Testshire local rule"}


@pytest.mark.parametrize(("doc", "says"), [
    ({"format": "other/1", "rules": []}, "format must be 'laxchange-deadline-policy/1'"),
    ({"format": "laxchange-deadline-policy/1", "rules": {}}, "rules must be a list"),
    ({"format": "laxchange-deadline-policy/1", "rules": [], "extra": 1}, "unknown field 'extra'"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "starts": "birthday"}]},
     "rule 1 (pep-first): starts 'birthday' is not an event laxchange can see"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "satisfied_by": "governors-meeting"}]},
     "satisfied_by governors-meeting cannot follow starts looked-after"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "unit": "fortnights"}]},
     "unit 'fortnights' is not one of"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "length": -1}]}, "length must be a whole number"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "length": True}]}, "length must be a whole number"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{k: v for k, v in NEW.items() if k != "source"}]},
     "source must be a non-empty string"),
    ({"format": "laxchange-deadline-policy/1", "rules": [NEW, NEW]}, "rule 2: rule pep-first is given twice"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "id": "PEP First"}]}, "id 'PEP First' must be"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{"id": "pep-review", "starts": "school-joined"}]},
     "may only tighten rule pep-review's length and unit, not its starts"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "colour": "red"}]}, "unknown field 'colour'"),
    ({"format": "laxchange-deadline-policy/1", "rules": [{**NEW, "duty": "school"}]},
     "duty 'school' is not one laxchange knows"),
    ([], "it must be a JSON object"),
])
def test_mistakes_in_a_local_policy_are_named(tmp_path: Path, doc: Any, says: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert says in info.value.message and str(path) in info.value.message, info.value.message
    assert info.value.code == "deadlines.policy-invalid" and info.value.hint


def test_a_policy_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"format": "laxchange-deadline-policy/1", "rules": [')
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.code == "deadlines.policy-invalid" and "cannot be read" in info.value.message


DOC = REPO / "docs" / "deadlines.md"


def test_the_docs_table_is_the_shipped_policy() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| ([^|]+) \| [^|]+ \| ([^|]+) \|$", text, re.M)
    assert [(rid, length.strip(), source.strip()) for rid, length, source in rows] == [
        (r.id, r.length_text(), r.source) for r in default_policy().rules]


def test_the_docs_example_policy_is_the_example_file() -> None:
    block = DOC.read_text(encoding="utf-8").split("```json\n")[1].split("```")[0]
    shown, shipped = json.loads(block), json.loads(EXAMPLE.read_text())
    for rule in shipped["rules"]:
        rule.pop("reading", None)
    assert shown == shipped
