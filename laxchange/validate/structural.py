"""Structural validation: the published JSON Schemas, with formats checked.

Two independent validators: jsonschema-rs (Rust) answers "valid?" fast, which is the common
case (a nightly run may validate tens of thousands of records); python-jsonschema explains
what is wrong when it is not. If they disagree on an invalid document, the Rust validator's
own errors are reported, so a document is never accepted that either of them rejects.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from laxchange.models import schemastore
from laxchange.validate.report import Finding, json_path

_HINTS = {
    "required": "add the missing field",
    "additionalProperties": "remove the field, or check its spelling against `laxchange schema show`",
    "pattern": "check the format of the value",
    "format": "use the stated format (dates are YYYY-MM-DD)",
    "type": "use the type the schema expects",
    "enum": "use one of the allowed values",
    "const": "use the exact value the schema requires",
    "minItems": "add at least the required number of entries",
    "maxItems": "remove entries",
    "minLength": "the value cannot be empty",
    "maxLength": "shorten the value",
    "minimum": "the value is too small",
    "maximum": "the value is too large",
}


@lru_cache(maxsize=1)
def registry() -> Registry:
    resources = []
    for s in schemastore.list_schemas():
        doc = schemastore.load(s.name, s.version)
        resources.append((doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=64)
def validator(name: str, version: str) -> Draft202012Validator:
    schema = schemastore.load(name, version)
    return Draft202012Validator(schema, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


#: Field-specific advice where the generic hint would not tell a user what the guidance requires.
_FIELD_HINTS = {
    "pep.vsh_contact": "statutory guidance: every PEP names the Virtual School Head contact; add pep.vsh_contact "
                       "(name, role, organisation and an e-mail or phone)",
    "pep.next_review_due": "add the date of the next PEP review (PEPs are reviewed each term)",
    "contacts.social_worker": "add the child's social worker (name, role, organisation, e-mail or phone)",
    "school.designated_teacher": "add the school's Designated Teacher for looked-after children",
}


def _hint(kind: str, parts: list[str | int]) -> str:
    dotted = ".".join(str(p) for p in parts if not isinstance(p, int))
    for suffix, hint in _FIELD_HINTS.items():
        if dotted == suffix or dotted.endswith("." + suffix):
            return hint
    return _HINTS.get(kind, "see `laxchange schema show`")


@lru_cache(maxsize=64)
def fast_validator(name: str, version: str) -> Any:
    """The jsonschema-rs validator for one schema, resolving $refs offline from schemas/ only."""
    resources = [(s.id, schemastore.load(s.name, s.version)) for s in schemastore.list_schemas()]
    return jsonschema_rs.validator_for(schemastore.load(name, version), validate_formats=True,
                                       registry=jsonschema_rs.Registry(resources))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finding(err: jsonschema.ValidationError) -> Finding:
    parts = list(err.absolute_path)
    kind = str(err.validator)
    message = err.message
    if kind == "required":
        missing = err.message.split("'")[1] if "'" in err.message else "?"
        parts.append(missing)
        message = "required field is missing"
    elif kind == "additionalProperties" and isinstance(err.instance, dict) and isinstance(err.schema, Mapping):
        # (always a dict instance and a schema object for additionalProperties; the checks narrow the stub types)
        message = "unexpected field(s): " + ", ".join(sorted(set(err.instance) - set(err.schema.get("properties", {}))))
    elif kind == "pattern":
        message = f"{_short(err.instance)} does not have the required format"
    elif kind == "format":
        message = f"{_short(err.instance)} is not a valid {err.validator_value}"
    elif (kind in ("oneOf", "anyOf") and isinstance(branches := err.validator_value, list)
          and all(set(b) == {"required"} for b in branches)):
        names = [b["required"][0] for b in branches]
        given = [n for n in names if isinstance(err.instance, Mapping) and n in err.instance]
        if kind == "anyOf":  # at least one (a contact's email or phone): it fails only when none is given
            message, hint = f"give at least one of: {', '.join(names)}", f"add the {' or the '.join(names)}"
        else:
            message = f"give exactly one of: {', '.join(names)}"
            hint = ("a child without a UPN needs an SSDA903 reason (UN1-UN5) in upn_unknown_reason"
                    if "upn" in names and not given else "remove one of them")
        return Finding("error", json_path(parts), f"schema.{kind}", message, hint)
    elif kind in ("oneOf", "anyOf"):
        message = f"does not match exactly one allowed shape ({kind}); " + "; ".join(
            sorted({c.message for c in err.context})[:3])
    elif len(message) > 200:
        message = message[:199] + "…"
    return Finding("error", json_path(parts), f"schema.{kind}", message, _hint(kind, parts))


def _rs_finding(err: Any) -> Finding:
    kind = str(err.schema_path[-1]) if err.schema_path else "schema"
    return Finding("error", json_path(err.instance_path), f"schema.{kind}", _short(err.message, 200),
                   _hint(kind, list(err.instance_path)))


def check(doc: Any, name: str, version: str) -> list[Finding]:
    """Every structural finding (empty if the document is valid)."""
    fast = fast_validator(name, version)
    if fast.is_valid(doc):
        return []
    v = validator(name, version)
    errors = sorted(v.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)))
    findings = [_finding(err) for err in errors]
    return findings or [_rs_finding(err) for err in fast.iter_errors(doc)]
