"""pydantic models: the one source of truth the JSON Schemas in schemas/ are generated from."""

from laxchange.models.common import COMMON_ID, SCHEMA_BASE, Contact, PersonName, schema_id
from laxchange.models.messages import ExclusionNotice, PepTransfer, PlacementNotification, Receipt
from laxchange.models.record import EducationRecord

__all__ = [
    "COMMON_ID",
    "SCHEMA_BASE",
    "Contact",
    "EducationRecord",
    "ExclusionNotice",
    "PepTransfer",
    "PersonName",
    "PlacementNotification",
    "Receipt",
    "schema_id",
]
