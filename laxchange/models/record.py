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
#: 1.1.0 added optional members only (docs/schemas.md, "education-record 1.1.0"): what the school must be
#: told, the PEP's own content, the facts the statutory clocks need, the cohort, and money in pence.
VERSION = "1.1.0"
#: Spelled out (not `schema_id(NAME, VERSION)`) so type checkers see the literal the `schema_` field demands;
#: tests/unit/models/test_schemas.py checks it equals schema_id(NAME, VERSION).
ID: Final = "https://laxchange.example/schemas/education-record/1.1.0"
#: Pupil Premium Plus amounts are capped at £100,000 (10,000,000 pence), as in 1.0.0.
_MAX_PENCE = 10_000_000


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
    emergency_placement: bool | None = Field(
        default=None, description="The placement was made in an emergency (the PEP is then initiated within 10 "
                                  "days). Absent means not known. Added in 1.1.0.")


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
    """Pupil Premium Plus: how much, for which year, and how it is used.

    Since 1.1.0 the amounts are also given exactly, in integer pence (`allocation_pence`,
    `spent_to_date_pence`); when both are present the pence win and the two must agree to the penny
    (rule pp-plus.pence-mismatch). The `_gbp` floats stay (required, as a minor version cannot remove
    them) and are deprecated: a 1.0.0 float maps to round-half-up(value x 100) pence.
    """

    academic_year: AcademicYear
    allocation_gbp: Annotated[float, Field(ge=0, le=100_000, description=(
        "Allocation in pounds. Deprecated since 1.1.0: allocation_pence wins when present."))]
    planned_use: Text
    spent_to_date_gbp: Annotated[float, Field(ge=0, le=100_000, description=(
        "Spent so far in pounds. Deprecated since 1.1.0: spent_to_date_pence wins when present."))] | None = None
    allocation_pence: Annotated[int, Field(ge=0, le=_MAX_PENCE, description=(
        "Allocation in whole pence (263000 is 2,630.00 pounds). Added in 1.1.0."))] | None = None
    spent_to_date_pence: Annotated[int, Field(ge=0, le=_MAX_PENCE, description=(
        "Spent so far in whole pence. Added in 1.1.0."))] | None = None


class Achievement(Strict):
    """Something the child achieved, academic or otherwise (the PEP's achievement record)."""

    description: Text
    kind: Literal["academic", "other"]
    date: dt.date | None = None


class IncorporatedPlan(Strict):
    """A school-based plan the PEP incorporates, e.g. an SEN Support Plan."""

    kind: Name = Field(description="e.g. SEN Support Plan, pastoral support plan, behaviour plan")
    date: dt.date | None = None
    summary: Text | None = None


class Confidentiality(Strict):
    """Agreed boundaries of confidentiality: which staff may know the child is looked after, and the child's wishes."""

    staff_who_may_know: list[Name] = Field(default_factory=list, max_length=50)
    child_wishes: Text | None = None
    agreed: Text | None = None


class DistributionRecipient(str, Enum):
    """Who a completed PEP was sent to."""

    child = "child"
    parent = "parent"
    carer = "carer"
    iro = "iro"
    social_worker = "social-worker"
    designated_teacher = "designated-teacher"
    virtual_school = "virtual-school"
    other = "other"


class Distribution(Strict):
    """One copy of the completed PEP: to whom and when."""

    recipient: DistributionRecipient
    name: Name | None = None
    date: dt.date


class PepState(str, Enum):
    draft = "draft"
    complete = "complete"
    quality_assured = "quality-assured"


class Rag(str, Enum):
    """The virtual school's quality-assurance rating of a PEP."""

    red = "red"
    amber = "amber"
    green = "green"


class PepStatus(Strict):
    """Where the PEP is: draft, complete, or quality-assured by the virtual school (with date and RAG)."""

    state: PepState
    completed_on: dt.date | None = None
    quality_assured_on: dt.date | None = None
    quality_assured_by: Name | None = None
    rag: Rag | None = None


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
    # -- added in 1.1.0 (all optional) --
    developmental_needs: list[Text] = Field(
        default_factory=list, max_length=50, description="Developmental needs, including attachment. Added in 1.1.0.")
    educational_needs: list[Text] = Field(
        default_factory=list, max_length=50, description="Educational needs, apart from developmental ones. "
                                                         "Added in 1.1.0.")
    achievements: list[Achievement] = Field(
        default_factory=list, max_length=100, description="The achievement record. Added in 1.1.0.")
    disruption_before_care: Text | None = Field(
        default=None, description="The extent of disruption to education before entering care. Added in 1.1.0.")
    incorporated_plans: list[IncorporatedPlan] = Field(
        default_factory=list, max_length=10, description="School-based plans incorporated in the PEP. Added in 1.1.0.")
    named_person: Contact | None = Field(
        default=None, description="Who manages the PEP day to day. Added in 1.1.0.")
    communication: Text | None = Field(
        default=None, description="Who contacts whom about the PEP, and how. Added in 1.1.0.")
    confidentiality: Confidentiality | None = Field(default=None, description="Added in 1.1.0.")
    next_meeting: dt.date | None = Field(
        default=None, description="Date of the next PEP meeting, when booked. Added in 1.1.0.")
    distribution: list[Distribution] = Field(
        default_factory=list, max_length=20, description="Who the completed PEP was sent to. Added in 1.1.0.")
    status: PepStatus | None = Field(default=None, description="Added in 1.1.0.")


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
    reintegration_meeting: dt.date | None = Field(default=None, description="Added in 1.1.0.")
    governors_meeting: dt.date | None = Field(
        default=None, description="Permanent exclusion only: the governors' meeting to consider it. Added in 1.1.0.")
    appeal_date: dt.date | None = Field(
        default=None, description="Permanent exclusion only: the independent review (appeal). Added in 1.1.0.")


class Contacts(Strict):
    """Who else works with the child: the social worker is required."""

    social_worker: Contact
    iro: Contact | None = None
    carer: Contact | None = None
    others: list[Contact] = Field(default_factory=list, max_length=20)


class Cohort(str, Enum):
    """Which of the virtual school's duties the child falls under (absent: looked after, as in 1.0.0)."""

    looked_after = "looked-after"
    previously_looked_after = "previously-looked-after"
    child_in_need = "child-in-need"
    child_protection = "child-protection"


class ParentalResponsibility(Strict):
    """Someone who holds parental responsibility."""

    holder: Name = Field(description="a person's name, or the council under a care order")
    relationship: Name = Field(description="e.g. birth mother, special guardian, local authority (care order)")
    notes: Text | None = None


class ContactArrangement(Strict):
    """Contact with a birth parent or someone with parental responsibility, as the school needs to know it."""

    with_whom: Name
    relationship: Name
    arrangement: Text = Field(description="how often, where, supervised or not")
    school_involvement: Text | None = Field(default=None, description="e.g. collected from school on Fridays")
    restrictions: Text | None = Field(default=None, description="e.g. must not collect the child from school")


class DelegatedAuthority(Strict):
    """One everyday decision, and whether the carer may take it (e.g. sign a school trip form)."""

    decision: Name = Field(description="e.g. school trips, residential trips, photographs, after-school clubs")
    carer_may_decide: bool
    otherwise: Name | None = Field(default=None, description="who decides when the carer may not")


class CareArrangements(Strict):
    """The care arrangements and the levels of authority delegated to the carer."""

    summary: Text
    delegated_authority: list[DelegatedAuthority] = Field(default_factory=list, max_length=50)


class NoSchoolPlace(Strict):
    """The child has no school place: since when, and what they have meanwhile."""

    since: dt.date
    interim_provision: Text


class ExtendedAbsence(Strict):
    """An absence from school of more than 10 school days (the social worker liaises with the school)."""

    start: dt.date
    end: dt.date | None = None
    school_days: Annotated[int, Field(ge=11, le=400)]
    reason: Text | None = None


class EducationRecord(Strict):
    """The whole transferable education record."""

    schema_: Literal["https://laxchange.example/schemas/education-record/1.1.0"] = Field(alias="schema", default=ID)
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
    # -- added in 1.1.0 (all optional) --
    cohort: Cohort | None = Field(default=None, description="Absent means looked-after. Added in 1.1.0.")
    parental_responsibility: list[ParentalResponsibility] = Field(
        default_factory=list, max_length=10, description="Who holds parental responsibility. Added in 1.1.0.")
    contact_arrangements: list[ContactArrangement] = Field(
        default_factory=list, max_length=20, description="Contact with birth parents and those with parental "
                                                         "responsibility. Added in 1.1.0.")
    care_arrangements: CareArrangements | None = Field(default=None, description="Added in 1.1.0.")
    no_school_place: NoSchoolPlace | None = Field(default=None, description="Added in 1.1.0.")
    extended_absences: list[ExtendedAbsence] = Field(
        default_factory=list, max_length=50, description="Absences of more than 10 school days. Added in 1.1.0.")
