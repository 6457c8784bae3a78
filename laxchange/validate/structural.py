"""Structural validation: the published JSON Schemas, with formats checked."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

import jsonschema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .. import schemastore
from .report import Finding, json_path

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
    elif kind == "additionalProperties":
        message = "unexpected field(s): " + ", ".join(sorted(set(err.instance) - set(err.schema.get("properties", {}))))
    elif kind == "pattern":
        message = f"{_short(err.instance)} does not have the required format"
    elif kind == "format":
        message = f"{_short(err.instance)} is not a valid {err.validator_value}"
    elif kind in ("oneOf", "anyOf"):
        message = f"does not match exactly one allowed shape ({kind}); " + "; ".join(
            sorted({c.message for c in err.context})[:3])
    elif len(message) > 200:
        message = message[:199] + "…"
    return Finding("error", json_path(parts), f"schema.{kind}", message, _HINTS.get(kind, "see `laxchange schema show`"))


def check(doc: Any, name: str, version: str) -> Iterator[Finding]:
    v = validator(name, version)
    errors = sorted(v.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)))
    for err in errors:
        yield _finding(err)
