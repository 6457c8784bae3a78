"""Generate the published JSON Schemas (draft 2020-12) from the pydantic models.

The models are the single source of truth; `laxchange schema build` writes schemas/ from them and
a test proves the committed files equal what the models produce. Shared definitions are moved into
the `common` schema and referenced by absolute `$id`, so other implementers get one contract.
"""

from __future__ import annotations

import copy
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from laxchange.models import common, messages, record

DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: Current version of each message schema and the model it is generated from.
CURRENT: dict[str, tuple[str, type[BaseModel] | None, str]] = {
    "common": (common.COMMON_VERSION, None, "Shared definitions: identifiers, contacts, parties, dates, code lists."),
    "education-record": (record.VERSION, record.EducationRecord,
                         "The transferable education record of a child looked after."),
    "placement-notification": (messages.VERSION, messages.PlacementNotification,
                               "Placing council's VSH tells the host virtual school and the school of a placement."),
    "pep-transfer": (messages.VERSION, messages.PepTransfer, "Hands over a child's PEP and education record."),
    "exclusion-notice": (messages.VERSION, messages.ExclusionNotice,
                         "A school tells the responsible VSH of a suspension or permanent exclusion."),
    "receipt": (messages.RECEIPT_VERSION, messages.Receipt, "Signed acknowledgement or rejection of one transfer."),
}

_COMMON_NAMES = {m.__name__ for m in common.COMMON_MODELS} | {e.__name__ for e in common.COMMON_ENUMS}
#: Definitions of the education-record schema that messages reference instead of copying.
_RECORD_NAMES = {
    n for n, v in vars(record).items()
    if isinstance(v, type) and issubclass(v, (BaseModel, Enum)) and v.__module__ == record.__name__
}


def _common_def_name(name: str) -> str:
    return name[0].lower() + name[1:]


def _tidy(node: Any, *, in_common: bool, in_record: bool = True) -> Any:
    """Drop pydantic noise (titles, null branches of optional fields), point shared defs at common."""
    if isinstance(node, list):
        return [_tidy(n, in_common=in_common, in_record=in_record) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "properties":
            out[key] = {k: _tidy(v, in_common=in_common, in_record=in_record) for k, v in value.items()}
            continue
        out[key] = _tidy(value, in_common=in_common, in_record=in_record)
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.split("/")[-1]
        if name in _COMMON_NAMES:
            local_ref = f"#/$defs/{_common_def_name(name)}"
            out["$ref"] = local_ref if in_common else f"{common.COMMON_ID}{local_ref}"
        elif name in _RECORD_NAMES and not in_record:
            out["$ref"] = record.ID if name == "EducationRecord" else f"{record.ID}#/$defs/{name}"
    if in_common and isinstance(ref, str) and ref.startswith(common.COMMON_ID + "#"):
        out["$ref"] = ref[len(common.COMMON_ID):]
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of and out.get("default", ...) is None:
        rest = [b for b in any_of if b != {"type": "null"}]
        out.pop("anyOf")
        out.pop("default", None)
        if len(rest) == 1:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
    if out.get("default", ...) == [] and out.get("type") == "array":
        out.pop("default")
    return out


def _header(name: str, version: str, description: str) -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "$id": common.schema_id(name, version),
        "title": f"laxchange {name} {version}",
        "description": description,
        "x-laxchange-version": version,
    }


def build_common() -> dict[str, Any]:
    _, defs = models_json_schema([(m, "validation") for m in common.COMMON_MODELS], by_alias=True)
    all_defs: dict[str, Any] = {k: copy.deepcopy(v) for k, v in common.COMMON_DEFS.items()}
    for name, schema in defs.get("$defs", {}).items():
        all_defs[_common_def_name(name)] = schema
    for enum in common.COMMON_ENUMS:
        all_defs[_common_def_name(enum.__name__)] = {
            "type": "string", "enum": enum_values(enum), "description": (enum.__doc__ or "").strip()}
    version, _, description = CURRENT["common"]
    doc = _header("common", version, description)
    doc["$defs"] = _tidy(dict(sorted(all_defs.items())), in_common=True)
    return doc


def build(name: str) -> dict[str, Any]:
    """The schema document for the current version of `name`."""
    if name == "common":
        return build_common()
    version, model, description = CURRENT[name]
    if model is None:  # unreachable: only "common" has no model, and it is built above
        raise RuntimeError(f"schema {name!r} has no model")
    raw = model.model_json_schema(by_alias=True, mode="validation")
    raw.pop("title", None)
    raw.pop("description", None)
    defs = raw.pop("$defs", {})
    in_record = name == "education-record"
    local = {k: v for k, v in defs.items() if k not in _COMMON_NAMES and (in_record or k not in _RECORD_NAMES)}
    doc = _header(name, version, description)
    body = _tidy(raw, in_common=False, in_record=in_record)
    body.setdefault("required", [])
    if "schema" not in body["required"]:
        body["required"].insert(0, "schema")
    body["properties"]["schema"] = {"const": common.schema_id(name, version),
                                    "description": "The $id of this schema: names the message type and version."}
    doc.update(body)
    if local:
        doc["$defs"] = _tidy(dict(sorted(local.items())), in_common=False, in_record=in_record)
    return doc


def build_all() -> dict[str, dict[str, Any]]:
    return {name: build(name) for name in CURRENT}


def enum_values(enum: type[Enum]) -> list[str]:
    return [e.value for e in enum]
