"""The messages that carry records between parties (one schema each)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from laxchange.models.common import (
    Contact,
    LaCode,
    Name,
    PartyId,
    Sha256Hex,
    Strict,
    Text,
    TransferId,
    Upn,
    Urn,
)
from laxchange.models.record import Cohort, EducationRecord, Exclusion

#: 1.1.0: the three messages that carry a record embed education-record 1.1.0; the exclusion notice also
#: gained the cohort and the social worker / designated safeguarding lead it goes to (docs/schemas.md).
VERSION = "1.1.0"
#: Spelled out (not `schema_id(name, VERSION)`) so type checkers see the literals the `schema_` fields demand;
#: tests/unit/models/test_schemas.py checks each equals schema_id(name, VERSION).
PLACEMENT_NOTIFICATION_ID: Final = "https://laxchange.example/schemas/placement-notification/1.1.0"
PEP_TRANSFER_ID: Final = "https://laxchange.example/schemas/pep-transfer/1.1.0"
EXCLUSION_NOTICE_ID: Final = "https://laxchange.example/schemas/exclusion-notice/1.1.0"
#: The receipt moved on alone: 1.1.0 added the optional `stage` (two-stage receipts, DESIGN.md §6), 1.2.0 the
#: optional `checkpoint` (a signed checkpoint of the sender's audit log, docs/ledger.md).
RECEIPT_VERSION = "1.2.0"
RECEIPT_ID: Final = "https://laxchange.example/schemas/receipt/1.2.0"
#: A checkpoint note is about 200 bytes; the bound leaves room for a few signatures, none for a document.
CHECKPOINT_MAX = 4096


class NotificationReason(str, Enum):
    new_placement = "new-placement"
    placement_change = "placement-change"
    school_change = "school-change"
    placement_ended = "placement-ended"


class PlacementNotification(Strict):
    """Placing council's VSH → host council's virtual school and the new school's Designated Teacher."""

    schema_: Literal["https://laxchange.example/schemas/placement-notification/1.1.0"] = Field(
        alias="schema", default=PLACEMENT_NOTIFICATION_ID)
    notification_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    reason: NotificationReason
    placing_la: LaCode
    host_la: LaCode
    placement_start: dt.date
    notified_by: Contact
    recipients: list[PartyId] = Field(min_length=1, max_length=10)
    respond_by: dt.date | None = None
    message: Text | None = None
    record: EducationRecord


class Attachment(Strict):
    """A document sent with a PEP (e.g. a signed PEP PDF), carried beside the message and bound by hash."""

    filename: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")]
    media_type: Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256Hex
    description: Name | None = None


class PepTransfer(Strict):
    """Hands over the child's current PEP and record to a school or virtual school."""

    schema_: Literal["https://laxchange.example/schemas/pep-transfer/1.1.0"] = Field(
        alias="schema", default=PEP_TRANSFER_ID)
    transfer_reason: NotificationReason
    sent_by: Contact
    message: Text | None = None
    record: EducationRecord
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


class ExcludedChild(Strict):
    """Minimum identification of the child in an exclusion notice."""

    given_name: Name
    family_name: Name
    date_of_birth: dt.date
    upn: Upn | None = None
    local_child_id: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] | None = None


class ExclusionNotice(Strict):
    """A school tells the responsible VSH of a suspension or permanent exclusion."""

    schema_: Literal["https://laxchange.example/schemas/exclusion-notice/1.1.0"] = Field(
        alias="schema", default=EXCLUSION_NOTICE_ID)
    school_urn: Urn
    school_name: Name
    responsible_la: LaCode
    child: ExcludedChild
    exclusion: Exclusion
    reported_by: Contact
    notified_parents_carers: bool
    reintegration_meeting: dt.date | None = None
    # -- added in 1.1.0 (all optional) --
    cohort: Cohort | None = Field(
        default=None, description="Absent means looked-after. A notice for a child with a social worker (child in "
                                  "need, child protection) goes to the social worker and the designated "
                                  "safeguarding lead rather than the VSH. Added in 1.1.0.")
    social_worker: Contact | None = Field(default=None, description="Added in 1.1.0.")
    designated_safeguarding_lead: Contact | None = Field(default=None, description="Added in 1.1.0.")


class ReceiptStatus(str, Enum):
    accepted = "accepted"
    rejected = "rejected"


class ReceiptStage(str, Enum):
    """Which of the two receipts this is: the package arrived and verified, or the record is in use."""

    delivered = "delivered"
    applied = "applied"


class Receipt(Strict):
    """Signed acknowledgement (or rejection) of one transfer.

    Two stages, like AS2's MDN but split in two because a transport acknowledgement is no proof
    that anyone can use the record: `delivered` when the package arrived and verified, `applied`
    when the receiver says the record is in its system (e.g. the school's MIS). A receipt without
    `stage` (all of 1.0.0) is a `delivered` one.
    """

    schema_: Literal["https://laxchange.example/schemas/receipt/1.2.0"] = Field(alias="schema", default=RECEIPT_ID)
    in_reply_to: TransferId
    payload_sha256: Sha256Hex
    status: ReceiptStatus
    stage: ReceiptStage | None = Field(
        default=None, description="delivered (arrived and verified) or applied (in the receiver's system); "
                                  "absent means delivered. Added in 1.1.0.")
    received_at: dt.datetime
    processed_at: dt.datetime | None = None
    reason_code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9.-]{1,60}$")] | None = None
    reason: Text | None = None
    checkpoint: Annotated[str, StringConstraints(min_length=1, max_length=CHECKPOINT_MAX)] | None = Field(
        default=None, description="A checkpoint of the sender's audit log when it sent this receipt: a C2SP "
                                  "tlog-checkpoint signed note (Ed25519) by the sender's signing key, which the "
                                  "receiver keeps (docs/ledger.md). Added in 1.2.0.")
