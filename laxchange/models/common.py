"""Shared definitions (the `common` schema): identifiers, contacts, parties, dates, code lists.

Each named definition lives once, in COMMON_DEFS; the pydantic types below enforce the same
pattern and emit a `$ref` into the common schema, so the JSON files and the models cannot drift.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator

SCHEMA_BASE = "https://laxchange.example/schemas"
COMMON_VERSION = "1.0.0"


def schema_id(name: str, version: str) -> str:
    """The stable `$id` of a schema: its name and version are in it."""
    return f"{SCHEMA_BASE}/{name}/{version}"


COMMON_ID = schema_id("common", COMMON_VERSION)

#: The common schema's named string definitions. Keys are the `$defs` names.
COMMON_DEFS: dict[str, dict[str, Any]] = {}


def common_ref(name: str) -> dict[str, Any]:
    return {"$ref": f"{COMMON_ID}#/$defs/{name}"}


def _string_def(name: str, pattern: str, description: str, **extra: Any) -> tuple[StringConstraints, WithJsonSchema]:
    """Register `name` in COMMON_DEFS; return the metadata for `Annotated[str, *_string_def(...)]`.

    The alias is spelled out as `Annotated[str, ...]` at each definition so type checkers see a `str`.
    """
    COMMON_DEFS[name] = {"type": "string", "pattern": pattern, "description": description, **extra}
    return StringConstraints(pattern=pattern), WithJsonSchema(common_ref(name))


Upn = Annotated[str, *_string_def(
    "upn", r"^[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]$",
    "Unique Pupil Number: check letter, LA, establishment, year, serial (temporary UPNs end in a letter). "
    "The check letter is verified by domain rule upn.check-letter.")]
UpnUnknownReason = Annotated[str, *_string_def(
    "upnUnknownReason", r"^UN[1-5]$", "SSDA903 reason a child has no UPN (UN1–UN5).")]
Uln = Annotated[str, *_string_def(
    "uln", r"^[0-9]{10}$", "Unique Learner Number (10 digits; check digit verified by rule uln.check-digit).")]
LaCode = Annotated[str, *_string_def(
    "laCode", r"^[0-9]{3}$", "DfE local authority code (3 digits; must exist: rule la.code).")]
Urn = Annotated[str, *_string_def("urn", r"^[0-9]{6}$", "School unique reference number (6 digits).")]
Laestab = Annotated[str, *_string_def(
    "laestab", r"^[0-9]{7}$", "DfE number: 3-digit LA code + 4-digit establishment number.")]
PartyId = Annotated[str, *_string_def(
    "partyId", r"^(LA:[0-9]{3}|URN:[0-9]{6})$",
    "An exchanging party: a council's virtual school (LA:NNN) or a school (URN:NNNNNN).")]
Ssda903LegalStatus = Annotated[str, *_string_def(
    "ssda903LegalStatus", r"^[A-Z][0-9]$", "SSDA903 legal status code (rule code.legal-status).")]
Ssda903PlacementType = Annotated[str, *_string_def(
    "ssda903PlacementType", r"^[A-Z][0-9]{1,2}$", "SSDA903 placement type code (rule code.placement-type).")]
Ssda903PlacementProvider = Annotated[str, *_string_def(
    "ssda903PlacementProvider", r"^PR[0-9]$", "SSDA903 placement provider code.")]
Ssda903CategoryOfNeed = Annotated[str, *_string_def(
    "ssda903CategoryOfNeed", r"^N[0-9]$", "SSDA903 category of need code.")]
Ssda903ReasonPlacementChange = Annotated[str, *_string_def(
    "ssda903ReasonPlacementChange", r"^[A-Z]{5,6}$", "SSDA903 reason for placement change code.")]
SenNeedType = Annotated[str, *_string_def(
    "senNeedType", r"^[A-Z]{2,4}$", "SEN type of need code (SEN2/school census, rule code.sen-need).")]
ExclusionReason = Annotated[str, *_string_def(
    "exclusionReason", r"^[A-Z]{2,3}$", "School census suspension/exclusion reason code, as recorded by the school.")]
TransferId = Annotated[str, *_string_def(
    "transferId", r"^[0-9a-f]{32}$", "Random 128-bit identifier of one transfer, lower-case hex.")]
Sha256Hex = Annotated[str, *_string_def("sha256", r"^[0-9a-f]{64}$", "SHA-256 digest, lower-case hex.")]
Phone = Annotated[str, *_string_def(
    "phone", r"^\+?[0-9][0-9 ()-]{5,20}[0-9]$", "Telephone number (digits, spaces, brackets, dashes).")]
AcademicYear = Annotated[str, *_string_def("academicYear", r"^20[0-9]{2}/[0-9]{2}$", "Academic year, e.g. 2025/26.")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Strict(BaseModel):
    """Base for every schema object: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True)


class SenProvision(str, Enum):
    """SEN provision (school census): N none, K SEN support, E EHC plan."""

    N = "N"
    K = "K"
    E = "E"


class Gender(str, Enum):
    male = "male"
    female = "female"
    other = "other"
    not_known = "not-known"


class OfstedRating(str, Enum):
    outstanding = "outstanding"
    good = "good"
    requires_improvement = "requires-improvement"
    inadequate = "inadequate"
    not_yet_inspected = "not-yet-inspected"


class SchoolPhase(str, Enum):
    nursery = "nursery"
    primary = "primary"
    middle = "middle"
    secondary = "secondary"
    all_through = "all-through"
    special = "special"
    alternative_provision = "alternative-provision"
    post_16 = "post-16"


class PersonName(Strict):
    """A person's name as recorded; `given` and `family` are required."""

    given: Name
    family: Name
    middle: Name | None = None


class Contact(Strict):
    """A professional contact. At least one of email and phone is required."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["email"]}, {"required": ["phone"]}]})

    name: Name
    role: Name
    organisation: Name | None = None
    email: Annotated[
        str, Field(json_schema_extra={"format": "email"}, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    ] | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not self.email and not self.phone:
            raise ValueError("a contact needs an email or a phone number")
        return self


class DateRange(Strict):
    start: dt.date
    end: dt.date | None = None


COMMON_MODELS: list[type[BaseModel]] = [PersonName, Contact, DateRange]
COMMON_ENUMS: list[type[Enum]] = [SenProvision, Gender, OfstedRating, SchoolPhase]
