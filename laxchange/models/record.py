"""The transferable education record of a child looked after (schema `education-record`).

Field choices follow the statutory guidance for PEPs and the DfE data standards: see
docs/schemas.md for the mapping from guidance to fields.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field, model_validator

from laxchange.models.common import (
    AcademicYear,
    Contact,
    ExclusionReason,
    Gender,
    LaCode,
    Laestab,
    Name,
    OfstedRating,
    PersonName,
    SchoolPhase,
    SenNeedType,
    SenProvision,
    Ssda903CategoryOfNeed,
    Ssda903LegalStatus,
    Ssda903PlacementProvider,
    Ssda903PlacementType,
    Ssda903ReasonPlacementChange,
    Strict,
    Text,
    Uln,
    Upn,
    UpnUnknownReason,
    Urn,
)

NAME = "education-record"
VERSION = "1.0.0"
#: Spelled out (not `schema_id(NAME, VERSION)`) so type checkers see the literal the `schema_` field demands;
#: tests/unit/models/test_schemas.py checks it equals schema_id(NAME, VERSION).
ID: Final = "https://laxchange.example/schemas/education-record/1.0.0"


class Child(Strict):
    """Who the child is. Exactly one of `upn` and `upn_unknown_reason` is given."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["upn"]}, {"required": ["upn_unknown_reason"]}]})

    legal_name: PersonName
    preferred_name: Name | None = None
    date_of_birth: dt.date
    gender: Gender
    upn: Upn | None = None
    upn_unknown_reason: UpnUnknownReason | None = None
    former_upns: list[Upn] = Field(default_factory=list, max_length=20)
    uln: Uln | None = None
    home_la: LaCode
    local_child_id: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    first_language: Name | None = None

    @model_validator(mode="after")
    def _one_upn(self) -> Child:
        if (self.upn is None) == (self.upn_unknown_reason is None):
            raise ValueError("give exactly one of upn and upn_unknown_reason")
        return self


class Placement(Strict):
    """The care placement (SSDA903 codes) and the councils involved."""

    legal_status: Ssda903LegalStatus
    category_of_need: Ssda903CategoryOfNeed | None = None
    period_of_care_start: dt.date
    placement_type: Ssda903PlacementType
    placement_provider: Ssda903PlacementProvider | None = None
    placement_start: dt.date
    reason_for_change: Ssda903ReasonPlacementChange | None = None
    placing_la: LaCode
    host_la: LaCode


class PlacementSchool(Strict):
    """The school the child attends (or will attend) in the placement."""

    urn: Urn
    laestab: Laestab | None = None
    name: Name
    la_code: LaCode
    phase: SchoolPhase
    start_date: dt.date
    ofsted_rating: OfstedRating | None = None
    designated_teacher: Contact


class EducationHistoryEntry(Strict):
    """One setting in the child's education chronology, with why it changed."""

    setting_name: Name
    urn: Urn | None = None
    start: dt.date
    end: dt.date | None = None
    reason_for_change: Text | None = None


class TargetStatus(str, Enum):
    not_started = "not-started"
    in_progress = "in-progress"
    achieved = "achieved"
    not_achieved = "not-achieved"


class Target(Strict):
    """A SMART target: specific description, measure of success, owner and date."""

    description: Text
    measure: Text
    owner: Name
    due: dt.date
    status: TargetStatus = TargetStatus.not_started


class Action(Strict):
    """An action agreed in the PEP, with who does it and by when."""

    description: Text
    owner: Name
    by: dt.date


class PupilPremiumPlus(Strict):
    """Pupil Premium Plus: how much, for which year, and how it is used."""

    academic_year: AcademicYear
    allocation_gbp: Annotated[float, Field(ge=0, le=100_000)]
    planned_use: Text
    spent_to_date_gbp: Annotated[float, Field(ge=0, le=100_000)] | None = None


class Pep(Strict):
    """The Personal Education Plan. The VSH contact is mandatory (statutory guidance)."""

    pep_date: dt.date
    next_review_due: dt.date
    chronology: list[EducationHistoryEntry] = Field(min_length=1, max_length=100)
    current_arrangements: Text
    planned_changes: Text | None = None
    short_term_targets: list[Target] = Field(min_length=1, max_length=50)
    long_term_targets: list[Target] = Field(default_factory=list, max_length=50)
    aspirations: Text
    leisure_interests: list[Name] = Field(default_factory=list, max_length=50)
    child_voice: Text
    pupil_premium_plus: PupilPremiumPlus | None = None
    actions: list[Action] = Field(default_factory=list, max_length=100)
    vsh_contact: Contact


class Ehcp(Strict):
    """Education, health and care plan dates and the council that maintains it."""

    maintaining_la: LaCode
    request_date: dt.date | None = None
    issued_date: dt.date
    last_annual_review: dt.date | None = None
    annual_review_due: dt.date


class Sen(Strict):
    """Special educational needs: provision N/K/E, types of need, and the EHCP when E."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"provision": {"const": "E"}}, "required": ["provision"]},
        "then": {"required": ["ehcp"]},
    })

    provision: SenProvision
    need_types: list[SenNeedType] = Field(default_factory=list, max_length=5)
    primary_need: SenNeedType | None = None
    ehcp: Ehcp | None = None

    @model_validator(mode="after")
    def _ehcp_when_e(self) -> Sen:
        if self.provision == SenProvision.E.value and self.ehcp is None:
            raise ValueError("provision E (EHC plan) needs the ehcp details")
        return self


class AssessmentKind(str, Enum):
    scaled_score = "scaled-score"        # KS2 tests, 80–120
    gcse_grade = "gcse-grade"            # 9–1, U
    teacher_assessment = "teacher-assessment"
    phonics_mark = "phonics-mark"        # phonics screening check, 0–40
    eyfs = "eyfs"                        # EYFS profile early learning goal


class AssessmentResult(Strict):
    """One attainment result. Value ranges depend on `kind` (rule attainment.range)."""

    stage: Literal["EYFS", "PHONICS", "KS1", "KS2", "KS3", "KS4", "KS5"]
    subject: Name
    kind: AssessmentKind
    value: Annotated[str, Field(min_length=1, max_length=10)]
    date: dt.date


class AttendancePeriod(Strict):
    """Attendance over a period, in half-day sessions."""

    start: dt.date
    end: dt.date
    sessions_possible: Annotated[int, Field(ge=0, le=1000)]
    sessions_attended: Annotated[int, Field(ge=0, le=1000)]
    authorised_absence: Annotated[int, Field(ge=0, le=1000)]
    unauthorised_absence: Annotated[int, Field(ge=0, le=1000)]


class ExclusionKind(str, Enum):
    suspension = "suspension"
    permanent = "permanent-exclusion"


class Exclusion(Strict):
    """A suspension or permanent exclusion, as the school recorded it."""

    kind: ExclusionKind
    start_date: dt.date
    sessions: Annotated[int, Field(ge=1, le=90)] | None = None
    reason_code: ExclusionReason
    reason_description: Text | None = None
    school_urn: Urn | None = None


class Contacts(Strict):
    """Who else works with the child: the social worker is required."""

    social_worker: Contact
    iro: Contact | None = None
    carer: Contact | None = None
    others: list[Contact] = Field(default_factory=list, max_length=20)


class EducationRecord(Strict):
    """The whole transferable education record."""

    schema_: Literal["https://laxchange.example/schemas/education-record/1.0.0"] = Field(alias="schema", default=ID)
    record_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    as_of: dt.date
    child: Child
    placement: Placement
    school: PlacementSchool | None = None
    pep: Pep
    sen: Sen
    attainment: list[AssessmentResult] = Field(default_factory=list, max_length=200)
    attendance: list[AttendancePeriod] = Field(default_factory=list, max_length=50)
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=100)
    contacts: Contacts
