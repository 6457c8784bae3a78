"""The deadline policy as data: the shipped defaults, and a council's local policy on top.

`policy.json` beside this module holds one rule per clock of the guidance (DESIGN.md §10), each
with the event that starts it, what satisfies it, its length and unit, the seed and section it
comes from, and how laxchange reads it. A council's local policy file (config.json
`deadlines.policy`, or `--policy FILE`) has the same shape and may, per rule:

- tighten a default: the same `id` with a shorter `length` (and/or a stricter `unit`); nothing
  else of a statutory rule can change, and a longer deadline is refused (`deadlines.policy-looser`),
  because the guidance is the floor;
- add a rule of its own: a new `id` with every field (e.g. Hertfordshire's first PEP within 14
  working days of becoming looked after; docs/deadlines.md).

The words a rule may use for `starts` and `satisfied_by` are the events laxchange can see
(`STARTS`, `SATISFIERS`); each is explained there and in docs/deadlines.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from laxchange._util import jsonio
from laxchange.deadlines.calendar import Unit
from laxchange.deadlines.errors import PolicyError
from laxchange.errors import LaxError

__all__ = ["FORMAT", "SATISFIERS", "STARTS", "Policy", "Rule", "default_policy", "load_policy"]

FORMAT = "laxchange-deadline-policy/1"

#: What can start a clock: the facts of a record (any version we hold) that laxchange reads.
STARTS: Mapping[str, str] = MappingProxyType({
    "looked-after": "the child became looked after (placement.period_of_care_start)",
    "placement-start": "the placement started (placement.placement_start)",
    "emergency-placement": "an emergency placement started (placement.placement_start, with "
                           "placement.emergency_placement true)",
    "placement-or-school": "the child was placed or joined the school, whichever is later (placement.placement_start, "
                           "school.start_date); only when the record names a school",
    "school-joined": "the child joined the school (school.start_date)",
    "pep-review-due": "the review date a PEP sets (pep.next_review_due)",
    "no-school-place": "the child has had no school place since (no_school_place.since)",
    "suspension": "a suspension started (exclusions[].start_date)",
    "suspension-return": "the first school day after a suspension, for a child at a primary school or suspended for "
                         "more than 5 school days (10 sessions)",
    "third-suspension": "the third suspension in one school year (1 September to 31 August) started",
    "permanent-exclusion": "a permanent exclusion started (exclusions[].start_date)",
})

#: What can satisfy a clock.
SATISFIERS: Mapping[str, str] = MappingProxyType({
    "pep-on-or-after": "a PEP dated on or after the day the clock started (pep.pep_date, in any version we hold)",
    "later-pep": "a PEP dated after the one that set the review date",
    "pep-delivered-to-school": "the PEP delivered to the record's school: a pep-transfer to URN:<school.urn> with a "
                               "delivered receipt (the sender's ledger), or imported by that school (its own ledger)",
    "school-place": "a version of the record names a school the child starts at on or after the clock started",
    "reintegration-meeting": "the suspension's reintegration_meeting date",
    "governors-meeting": "the permanent exclusion's governors_meeting date",
})

#: Satisfiers that only make sense after some starts (the rest go with any start).
_ONLY_AFTER: Mapping[str, frozenset[str]] = MappingProxyType({
    "later-pep": frozenset({"pep-review-due"}),
    "pep-delivered-to-school": frozenset({"placement-or-school", "school-joined"}),
    "reintegration-meeting": frozenset({"suspension", "suspension-return", "third-suspension"}),
    "governors-meeting": frozenset({"permanent-exclusion"}),
})

#: For "stricter": the same count of these units never ends later than the next one's.
_DAY_RANK = {Unit.CALENDAR_DAYS: 0, Unit.WORKING_DAYS: 1, Unit.SCHOOL_DAYS: 2}
_MAX_LENGTH = {Unit.HOURS: 24 * 400, Unit.CALENDAR_DAYS: 400, Unit.WORKING_DAYS: 300, Unit.SCHOOL_DAYS: 200}
_ID = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_FIELDS = ("id", "title", "starts", "satisfied_by", "length", "unit", "source", "reading", "duty")
#: Whose action meets a rule: "placing-council", the council that looks after the child (its clocks
#: are kept only where the record is ours or we sent it: a school or host council that only received
#: the record cannot meet them, and would be told each night they are overdue), or "shared".
DUTIES = ("shared", "placing-council")
_TIGHTEN = frozenset({"id", "length", "unit", "reading"})


@dataclass(frozen=True)
class Rule:
    """One clock: `length` `unit`s after `starts`, met by `satisfied_by`; `source` says where it comes from."""

    id: str
    title: str
    starts: str
    satisfied_by: str
    length: int
    unit: Unit
    source: str
    reading: str = ""
    #: "default", "tightened" (by the local policy) or "local" (added by it)
    origin: str = "default"
    #: whose action meets it (`DUTIES`)
    duty: str = "shared"

    def length_text(self) -> str:
        if self.length == 0:
            return "on the day"
        word = str(self.unit).replace("-", " ")
        return f"{self.length} {word[:-1] if self.length == 1 else word}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "starts": self.starts, "satisfied_by": self.satisfied_by,
                "length": self.length, "unit": str(self.unit), "source": self.source, "reading": self.reading,
                "origin": self.origin, "duty": self.duty}


@dataclass(frozen=True)
class Policy:
    """The rules in force, in order, and which files they came from."""

    rules: tuple[Rule, ...]
    sources: tuple[str, ...]

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "rules": [r.to_dict() for r in self.rules]}


def _fail(where: str, what: str, hint: str, code: str = "deadlines.policy-invalid") -> PolicyError:
    return PolicyError(f"deadline policy {where}: {what}", code=code, hint=hint)


def _text(where: str, entry: Mapping[str, Any], key: str, limit: int) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _fail(where, f"{key} must be a non-empty string of at most {limit} characters",
                    f"give the rule's {key}")
    return value.strip()


def _unit(where: str, entry: Mapping[str, Any]) -> Unit:
    try:
        return Unit(str(entry.get("unit")))
    except ValueError:
        raise _fail(where, f"unit {entry.get('unit')!r} is not one of {', '.join(Unit)}",
                    "say how the length is counted") from None


def _length(where: str, entry: Mapping[str, Any], unit: Unit) -> int:
    value = entry.get("length")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_LENGTH[unit]:
        raise _fail(where, f"length must be a whole number from 0 to {_MAX_LENGTH[unit]} {unit}, not {value!r}",
                    "give the deadline's length as a whole number")
    return value


def _parse_rule(where: str, entry: Any, origin: str) -> Rule:
    if not isinstance(entry, dict):
        raise _fail(where, "a rule must be a JSON object", "see docs/deadlines.md for a rule's fields")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise _fail(where, f"unknown field {unknown[0]!r}", f"a rule's fields are: {', '.join(_FIELDS)}")
    starts, satisfied_by = str(entry.get("starts")), str(entry.get("satisfied_by"))
    if starts not in STARTS:
        raise _fail(where, f"starts {entry.get('starts')!r} is not an event laxchange can see",
                    f"use one of: {', '.join(STARTS)}")
    if satisfied_by not in SATISFIERS:
        raise _fail(where, f"satisfied_by {entry.get('satisfied_by')!r} is not an event laxchange can see",
                    f"use one of: {', '.join(SATISFIERS)}")
    allowed = _ONLY_AFTER.get(satisfied_by)
    if allowed is not None and starts not in allowed:
        raise _fail(where, f"satisfied_by {satisfied_by} cannot follow starts {starts}",
                    f"{satisfied_by} goes with starts {', '.join(sorted(allowed))}")
    unit = _unit(where, entry)
    reading = entry.get("reading", "")
    if not isinstance(reading, str) or len(reading) > 2000:
        raise _fail(where, "reading must be a string of at most 2000 characters", "explain how the rule is read")
    duty = entry.get("duty", "shared")
    if duty not in DUTIES:
        raise _fail(where, f"duty {duty!r} is not one laxchange knows", f"use one of: {', '.join(DUTIES)}")
    return Rule(id=_rule_id(where, entry), title=_text(where, entry, "title", 120), starts=starts,
                satisfied_by=satisfied_by, length=_length(where, entry, unit), unit=unit,
                source=_text(where, entry, "source", 200), reading=reading, origin=origin, duty=duty)


def _rule_id(where: str, entry: Mapping[str, Any]) -> str:
    rid = entry.get("id")
    if not isinstance(rid, str) or not _ID.fullmatch(rid) or len(rid) > 60:
        raise _fail(where, f"id {rid!r} must be lower-case words joined by hyphens (e.g. pep-first)",
                    "give each rule a short id")
    return rid


def _no_later(old: Rule, unit: Unit, length: int) -> bool:
    """Does `length` `unit` never end after `old`'s deadline, whatever day the clock starts?"""
    if unit is Unit.HOURS and old.unit is Unit.HOURS:
        return length <= old.length
    if unit is Unit.HOURS:  # h hours from the start of the day, against the end of day n (or later)
        return length <= 24 * (old.length + 1)
    if old.unit is Unit.HOURS:
        return unit is Unit.CALENDAR_DAYS and 24 * (length + 1) <= old.length
    return _DAY_RANK[unit] <= _DAY_RANK[old.unit] and length <= old.length


def _tighten(where: str, old: Rule, entry: Mapping[str, Any], name: str) -> Rule:
    changed = sorted(set(entry) - _TIGHTEN)
    if changed:
        raise _fail(where, f"a local policy may only tighten rule {old.id}'s length and unit, not its "
                           f"{changed[0]}", "to track another event, add a rule with an id of its own")
    unit = _unit(where, {"unit": entry.get("unit", str(old.unit))})
    length = _length(where, {"length": entry.get("length", old.length)}, unit)
    if not _no_later(old, unit, length):
        raise _fail(where, f"rule {old.id} would be looser: {length} {unit} can end after the "
                           f"{old.length_text()} of {old.source}",
                    "a local policy may shorten a statutory deadline, never lengthen it; a count in a stricter "
                    "unit (calendar days before working days before school days) or fewer of them is tighter",
                    code="deadlines.policy-looser")
    reading = entry.get("reading", old.reading)
    if not isinstance(reading, str) or len(reading) > 2000:
        raise _fail(where, "reading must be a string of at most 2000 characters", "explain how the rule is read")
    return replace(old, length=length, unit=unit, reading=reading, source=f"{old.source}; tightened by {name}",
                   origin="tightened")


def _parse_file(doc: Any, where: str) -> tuple[str, list[Any]]:
    if not isinstance(doc, dict):
        raise _fail(where, "it must be a JSON object", f'write {{"format": "{FORMAT}", "rules": [...]}}')
    if doc.get("format") != FORMAT:
        raise _fail(where, f"format must be {FORMAT!r}, not {doc.get('format')!r}",
                    f'start the file with "format": "{FORMAT}"')
    unknown = sorted(set(doc) - {"format", "name", "rules"})
    if unknown:
        raise _fail(where, f"unknown field {unknown[0]!r}", "a policy file has format, name and rules")
    rules = doc.get("rules")
    if not isinstance(rules, list):
        raise _fail(where, "rules must be a list", "list the rules to tighten or add")
    name = doc.get("name", where)
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise _fail(where, "name must be a short non-empty string", "name the council whose policy it is")
    return name.strip(), rules


def _build(doc: Any, where: str, base: Policy | None) -> Policy:
    name, entries = _parse_file(doc, where)
    rules: dict[str, Rule] = {r.id: r for r in base.rules} if base is not None else {}
    seen: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        at = f"{where}, rule {n}"
        rid = _rule_id(at, entry if isinstance(entry, dict) else {})
        if rid in seen:
            raise _fail(at, f"rule {rid} is given twice", "give each rule once")
        seen.add(rid)
        if base is not None and rid in rules:
            rules[rid] = _tighten(f"{at} ({rid})", rules[rid], entry, name)
        else:
            rules[rid] = _parse_rule(f"{at} ({rid})", entry, "local" if base is not None else "default")
    return Policy(tuple(rules.values()), (*(base.sources if base is not None else ()), where))


def default_policy() -> Policy:
    """The shipped defaults (`policy.json` in this package)."""
    text = resources.files("laxchange.deadlines").joinpath("policy.json").read_bytes()
    return _build(jsonio.loads_strict(text, source="policy.json"), "laxchange defaults (policy.json)", None)


def load_policy(path: Path | None) -> Policy:
    """The defaults, tightened and extended by the local policy file at `path` (if any)."""
    base = default_policy()
    if path is None:
        return base
    try:
        doc = jsonio.load_file(path)
    except LaxError as exc:
        raise PolicyError(f"deadline policy {path} cannot be read: {exc.message}", code="deadlines.policy-invalid",
                          hint=exc.hint or "fix the file, or remove deadlines.policy from config.json") from exc
    return _build(doc, str(path), base)
