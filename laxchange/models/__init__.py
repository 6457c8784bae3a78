"""pydantic models: the one source of truth the JSON Schemas in schemas/ are generated from."""

from .common import COMMON_ID, SCHEMA_BASE, Contact, PersonName, schema_id
from .messages import ExclusionNotice, PepTransfer, PlacementNotification, Receipt
from .record import EducationRecord

__all__ = [
    "COMMON_ID", "SCHEMA_BASE", "Contact", "PersonName", "schema_id",
    "EducationRecord", "PlacementNotification", "PepTransfer", "ExclusionNotice", "Receipt",
]
