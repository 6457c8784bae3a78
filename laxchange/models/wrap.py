"""Which message a document is packed as, and wrapping an education record in one.

A document names its own schema, so `laxchange pack` needs no `--type`; when one is given it is
a check. The exception is an education record asked for as a `pep-transfer` or a
`placement-notification`: those messages carry a record, and every header field but the reason
can be filled from the record itself, the recipient and our own party, so the record is wrapped.
A field that cannot be derived is asked for by name (`--reason`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from laxchange._util.jsonio import copy_tree
from laxchange.errors import UsageError
from laxchange.models import messages, schemastore
from laxchange.models.common import schema_id

__all__ = ["REASONS", "WRAPPERS", "prepare", "record_ref", "wrap_record"]

#: Messages an education record can be wrapped in.
WRAPPERS = ("pep-transfer", "placement-notification")
#: The values of the messages' reason field (`transfer_reason`, `reason`).
REASONS = tuple(r.value for r in messages.NotificationReason)
RECORD = "education-record"


_RECORD_ID = re.compile(r"[0-9a-f]{32}")


def record_ref(document: Any) -> str | None:
    """The pseudonymous reference the ledger and audit log keep for the record `document` is or
    carries: its `record_id`, 32 random hex digits made when the record was created, so never
    derived from a name, UPN or date of birth. None for a message without a record (a receipt).
    Anything not shaped like a record id is ignored, so personal data cannot arrive this way."""
    for doc in (document, document.get("record") if isinstance(document, dict) else None):
        ref = doc.get("record_id") if isinstance(doc, dict) else None
        if isinstance(ref, str) and _RECORD_ID.fullmatch(ref):
            return ref
    return None


def prepare(document: Any, message_type: str | None, *, sender: str, recipient: str, reason: str | None = None,
            message: str | None = None, source: str = "record",
            random: Callable[[int], bytes] = os.urandom) -> tuple[Any, str]:
    """The document to pack and the message type to pack it as.

    `message_type` None: the document as it is, under the schema it names. Otherwise it must
    be the document's own type (a check), or a message in `WRAPPERS` for an education record
    (which is wrapped). `reason` and `message` are for wrapping only.
    """
    name, version = schemastore.identify(document, source)
    wrapping = message_type is not None and name == RECORD and schemastore.parse_ref(message_type)[0] in WRAPPERS
    if not wrapping and (reason is not None or message is not None):
        raise UsageError("--reason and --message are for wrapping an education record in a message",
                         code="pack.type-mismatch",
                         hint=f"{source} is a {name}@{version}: drop them, or pack an education record with "
                              "--type pep-transfer or --type placement-notification")
    if message_type is None:
        return document, name
    want, want_version = schemastore.parse_ref(message_type)
    if want == name:
        if want_version is not None and want_version != version:
            raise UsageError(f"{source} is a {name}@{version}, not {message_type}", code="pack.type-mismatch",
                             hint="drop --type (the document names its own schema), or migrate it with "
                                  "`laxchange schema migrate`")
        return document, message_type
    if wrapping:
        return wrap_record(document, want, sender=sender, recipient=recipient, reason=reason, message=message,
                           random=random), message_type
    known = sorted({sf.name for sf in schemastore.list_schemas()} - {"common"})
    if want not in known:
        raise UsageError(f"unknown message type {message_type!r}", code="type.unknown",
                         hint=f"use one of: {', '.join(known)}, or drop --type (the document names its own schema)")
    hint = "drop --type: the document names its own schema"
    if want in WRAPPERS:
        hint += f"; only an education record can be wrapped in a {want}"
    raise UsageError(f"{source} is a {name}@{version}, not a {want}", code="pack.type-mismatch", hint=hint)


def wrap_record(rec: dict[str, Any], want: str, *, sender: str, recipient: str, reason: str | None,
                message: str | None = None, random: Callable[[int], bytes] = os.urandom,
                recipients: Sequence[str] | None = None, notification_id: str | None = None,
                owned: bool = False) -> dict[str, Any]:
    """The one way an education record becomes a `pep-transfer` or `placement-notification`.

    Used by `pack --type` and by `notify-placement`; `recipients` (everyone notified, default
    just `recipient`) and `notification_id` are the placement notification's. The message holds
    a copy of `rec`, unless `owned`: the caller hands over a copy of its own (notify's profiled
    record, made for this message and shared with nothing), which the message then holds as it is.
    """
    if reason is None:
        raise UsageError(f"wrapping an education record in a {want} needs the reason for it, which the record "
                         "does not hold", code="pack.reason-missing",
                         hint=f"add --reason with one of: {', '.join(REASONS)}")
    if reason not in REASONS:
        raise UsageError(f"--reason {reason!r} is not one of {', '.join(REASONS)}", code="pack.reason-missing",
                         hint=f"use one of: {', '.join(REASONS)}")
    if not owned:
        rec = copy_tree(rec)
    contact = _our_contact(rec, sender)
    placement: dict[str, Any] = rec["placement"] if isinstance(rec.get("placement"), dict) else {}
    out: dict[str, Any]
    schema = _wrapper_id(want, rec.get("schema"))
    if want == "pep-transfer":
        out = {"schema": schema, "transfer_reason": reason, "sent_by": contact}
    else:
        out = {"schema": schema, "notification_id": notification_id or random(16).hex(), "reason": reason,
               "placing_la": placement.get("placing_la"), "host_la": placement.get("host_la"),
               "placement_start": placement.get("placement_start"), "notified_by": contact,
               "recipients": list(recipients) if recipients is not None else [recipient]}
    if message is not None:
        out["message"] = message
    out["record"] = rec
    if want == "pep-transfer":
        out["attachments"] = []
    # A field the record lacks stays absent, so validation names the record's own missing field.
    return {k: v for k, v in out.items() if v is not None}


def _wrapper_id(want: str, record_id: Any) -> str:
    """The newest version of message `want` that embeds a record of `record_id`'s version.

    A 1.0.0 record goes into a 1.0.0 message (1.1.0 messages embed education-record 1.1.0), so
    records from the previous release still pack; an unknown record id gets the newest message,
    and validation then names the record's `schema`.
    """
    if isinstance(record_id, str):  # the usual case, once per schema folder (its files are immutable,
        return _wrapper_id_in(str(schemastore.schema_dir()), want, record_id)  # as list_schemas has it)
    return _wrapper_id_read(want, record_id)


@lru_cache(maxsize=64)
def _wrapper_id_in(_root: str, want: str, record_id: str) -> str:
    """`_wrapper_id_read`, once per schema folder, message and record schema: a batch of placements
    asked it per message, reading and checking a schema file each time."""
    return _wrapper_id_read(want, record_id)


def _wrapper_id_read(want: str, record_id: Any) -> str:
    for version in reversed(schemastore.versions(want)):
        if schemastore.load(want, version).get("properties", {}).get("record", {}).get("$ref") == record_id:
            return schema_id(want, version)
    return schema_id(want, schemastore.latest(want))


def _our_contact(rec: dict[str, Any], sender: str) -> Any:
    """Who sends: the school's Designated Teacher when we are the record's school, else the
    Virtual School Head named in the PEP (the statutory contact for a looked-after child)."""
    school = rec.get("school")
    if isinstance(school, dict) and sender == f"URN:{school.get('urn')}" and school.get("designated_teacher"):
        return copy_tree(school["designated_teacher"])
    pep = rec.get("pep")
    return copy_tree(pep.get("vsh_contact")) if isinstance(pep, dict) else None
