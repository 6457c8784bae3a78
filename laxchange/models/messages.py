"""The messages that carry records between parties (one schema each)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Literal

from pydantic import Field

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
    schema_id,
)
from laxchange.models.record import EducationRecord, Exclusion

VERSION = "1.0.0"
PLACEMENT_NOTIFICATION_ID = schema_id("placement-notification", VERSION)
PEP_TRANSFER_ID = schema_id("pep-transfer", VERSION)
EXCLUSION_NOTICE_ID = schema_id("exclusion-notice", VERSION)
RECEIPT_ID = schema_id("receipt", VERSION)


class NotificationReason(str, Enum):
    new_placement = "new-placement"
    placement_change = "placement-change"
    school_change = "school-change"
    placement_ended = "placement-ended"


class PlacementNotification(Strict):
    """Placing council's VSH → host council's virtual school and the new school's Designated Teacher."""

    schema_: Literal["https://laxchange.example/schemas/placement-notification/1.0.0"] = Field(
        alias="schema", default=PLACEMENT_NOTIFICATION_ID)
    notification_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    reason: NotificationReason
    placing_la: LaCode  # type: ignore[valid-type]
    host_la: LaCode  # type: ignore[valid-type]
    placement_start: dt.date
    notified_by: Contact
    recipients: list[PartyId] = Field(min_length=1, max_length=10)  # type: ignore[valid-type]
    respond_by: dt.date | None = None
    message: Text | None = None
    record: EducationRecord


class Attachment(Strict):
    """A document sent with a PEP (e.g. a signed PEP PDF), carried beside the message and bound by hash."""

    filename: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")]
    media_type: Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256Hex  # type: ignore[valid-type]
    description: Name | None = None


class PepTransfer(Strict):
    """Hands over the child's current PEP and record to a school or virtual school."""

    schema_: Literal["https://laxchange.example/schemas/pep-transfer/1.0.0"] = Field(alias="schema", default=PEP_TRANSFER_ID)
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
    upn: Upn | None = None  # type: ignore[valid-type]
    local_child_id: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] | None = None


class ExclusionNotice(Strict):
    """A school tells the responsible VSH of a suspension or permanent exclusion."""

    schema_: Literal["https://laxchange.example/schemas/exclusion-notice/1.0.0"] = Field(
        alias="schema", default=EXCLUSION_NOTICE_ID)
    school_urn: Urn  # type: ignore[valid-type]
    school_name: Name
    responsible_la: LaCode  # type: ignore[valid-type]
    child: ExcludedChild
    exclusion: Exclusion
    reported_by: Contact
    notified_parents_carers: bool
    reintegration_meeting: dt.date | None = None


class ReceiptStatus(str, Enum):
    accepted = "accepted"
    rejected = "rejected"


class Receipt(Strict):
    """Signed acknowledgement (or rejection) of one transfer."""

    schema_: Literal["https://laxchange.example/schemas/receipt/1.0.0"] = Field(alias="schema", default=RECEIPT_ID)
    in_reply_to: TransferId  # type: ignore[valid-type]
    payload_sha256: Sha256Hex  # type: ignore[valid-type]
    status: ReceiptStatus
    received_at: dt.datetime
    processed_at: dt.datetime | None = None
    reason_code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9.-]{1,60}$")] | None = None
    reason: Text | None = None
