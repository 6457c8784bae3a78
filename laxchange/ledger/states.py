"""The transfer states and the one table of legal changes between them (DESIGN.md §6).

Drawn, with what causes each edge, in docs/states.md; a test parses that file and compares it
with this module, so the two cannot drift. Any change not in the table is a bug and raises
`IllegalTransition`. The database enforces the state names too (a CHECK constraint written in
the v1 migration in `laxchange.ledger.db`), so adding a state here needs a migration there; a
test fails until it is written.

Why these edges (the ones that are not obvious):

- `queued → delivered | rejected`: a verified receipt is proof of arrival even when our `sent`
  was never recorded (a crash between the upload and the ledger write, or a file carried by
  hand); refusing it would leave the transfer stuck in `queued` after the crash.
- `sent → sent`: re-uploading the same file with the same transfer id is idempotent (the
  partner's replay check refuses a second import), so a retried `send` is legal and is audited
  again, because the file really was put on the partner's server again.
- `uncollected → sent | delivered | rejected | expired`: `uncollected` is a warning (still in
  the partner's drop folder after N days), not an end: the partner may still collect it, or we
  re-upload it.
- `expired → delivered | rejected`: a late receipt; the partner opened it before it expired and
  its receipt arrived after the expiry sweep. The receipt is the better evidence.
- `delivered → applied | rejected`: the optional second receipt says the record is in the
  school's MIS, or that it could not be used.
- `quarantined → received`: the same transfer id arriving again must not be blocked by a
  quarantined copy (a re-upload after damage in transit, or the genuine package after a forgery
  that claimed its id). Only `imported` counts for the replay check.
- `received → received`: `received` is a reservation held by one opener (`Ledger.reserve`); an
  open that crashed or failed for a reason that is not the package's leaves it unfinished, and
  the next open takes it over once its holder is gone (docs/states.md, "Reservations").
- Not legal: `delivered → delivered` (a duplicate receipt is noted, not a state change) and a
  second `received` for an imported transfer (a replay: the double-import bug).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from laxchange.ledger.errors import IllegalTransition


class Direction(StrEnum):
    OUT = "out"
    IN = "in"


class Outbound(StrEnum):
    """States of a transfer we send."""

    QUEUED = "queued"            # packed, in our outbox, not yet uploaded
    SENT = "sent"                # uploaded to the partner's drop folder
    DELIVERED = "delivered"      # a verified "received" receipt came back
    APPLIED = "applied"          # second receipt: the record is in the school's MIS
    REJECTED = "rejected"        # a verified receipt said "rejected"
    EXPIRED = "expired"          # its expiry passed with no receipt
    UNCOLLECTED = "uncollected"  # still in the partner's drop folder after N days


class Inbound(StrEnum):
    """States of a transfer we receive."""

    RECEIVED = "received"        # manifest verified and the transfer reserved by one opener
    VERIFIED = "verified"        # signature, decryption and trust checks passed
    IMPORTED = "imported"        # the document was written out; counts for the replay check
    QUARANTINED = "quarantined"  # refused after its manifest verified; may be received again


State = Outbound | Inbound

_O, _I = Outbound, Inbound

#: Every state by direction.
STATES: Mapping[Direction, tuple[State, ...]] = MappingProxyType({
    Direction.OUT: tuple(Outbound),
    Direction.IN: tuple(Inbound),
})

#: The states a new row may start in.
ENTRY: Mapping[Direction, frozenset[State]] = MappingProxyType({
    Direction.OUT: frozenset({_O.QUEUED}),
    Direction.IN: frozenset({_I.RECEIVED}),
})

#: Legal changes: direction → from-state → the states it may go to. A state with no entry is terminal.
EDGES: Mapping[Direction, Mapping[State, frozenset[State]]] = MappingProxyType({
    Direction.OUT: MappingProxyType({
        _O.QUEUED: frozenset({_O.SENT, _O.DELIVERED, _O.REJECTED, _O.EXPIRED}),
        _O.SENT: frozenset({_O.SENT, _O.DELIVERED, _O.REJECTED, _O.UNCOLLECTED, _O.EXPIRED}),
        _O.UNCOLLECTED: frozenset({_O.SENT, _O.DELIVERED, _O.REJECTED, _O.EXPIRED}),
        _O.EXPIRED: frozenset({_O.DELIVERED, _O.REJECTED}),
        _O.DELIVERED: frozenset({_O.APPLIED, _O.REJECTED}),
    }),
    Direction.IN: MappingProxyType({
        _I.RECEIVED: frozenset({_I.RECEIVED, _I.VERIFIED, _I.QUARANTINED}),
        _I.VERIFIED: frozenset({_I.IMPORTED, _I.QUARANTINED}),
        _I.QUARANTINED: frozenset({_I.RECEIVED}),
    }),
})

#: States with no way out.
TERMINAL: Mapping[Direction, frozenset[State]] = MappingProxyType({
    d: frozenset(s for s in STATES[d] if not EDGES[d].get(s)) for d in Direction
})

#: The whole path of an inbound import: `received` (the reservation, `Ledger.reserve`), then
#: `FINISH_PATH` in one transaction once every check has passed and the record is written.
IMPORT_PATH: tuple[Inbound, ...] = (_I.RECEIVED, _I.VERIFIED, _I.IMPORTED)
FINISH_PATH: tuple[Inbound, ...] = (_I.VERIFIED, _I.IMPORTED)


def audit_event(direction: Direction | str, state: State | str) -> str:
    """The audit event name of entering `state`: `out.queued`, `in.imported`, …"""
    return f"{direction}.{state}"


#: Audit events written on a state change. Final: they are hashed into audit logs forever.
TRANSITION_EVENTS: frozenset[str] = frozenset(audit_event(d, s) for d in Direction for s in STATES[d])

#: Audit events that are not a state change (`Ledger.note`). Final, like the above.
NOTE_EVENTS: frozenset[str] = frozenset({
    "in.quarantined",         # an inbox package refused before its transfer id could be trusted (no row)
    "in.refused",             # a package named on the command line refused before that (left where it was)
    "receipt.unmatched",      # a verified receipt names no outbound transfer of ours to its sender
    "receipt.hash-mismatch",  # ... names one, but not the payload we sent
    "receipt.out-of-state",   # ... matches, but the transfer is in a state it cannot change from
    "key.destroyed",          # `keys prune` destroyed the private half of one of our retired keys
    "collect.fetched",        # `collect` brought a file into the inbox (unverified: ids and hash only)
    "in.resumed",             # an import a crash interrupted after `in.imported` was finished from the package
    "in.archive-opened",      # `open --archive` verified a (possibly long expired) package as of its creation
    "checkpoint.refused",     # a verified receipt or package carried its sender's audit checkpoint; it did not verify
    "checkpoint.partner-inconsistent",  # ... one that verified, of the size of one we hold with another root
    "checkpoint.acknowledged",  # an operator dealt with one of those (`audit acknowledge`): the file stays kept
    "in.released",            # `quarantine release` put a quarantined package back in the inbox, to be checked again
})


def _fail(direction: str, old: str | None, new: str, why: str, transfer_id: str | None) -> IllegalTransition:
    which = f"{direction} transfer {transfer_id}" if transfer_id else f"{direction} transfer"
    frm = "a new row" if old is None else f"'{old}'"
    return IllegalTransition(f"{which}: {frm} → '{new}' is not allowed ({why})",
                             hint="this is a bug in laxchange (or a race another run won); the ledger is unchanged",
                             details={"direction": direction, "from": old, "to": new,
                                      **({"transfer_id": transfer_id} if transfer_id else {})})


def check_transition(direction: str, old: str | None, new: str, *, transfer_id: str | None = None) -> State:
    """Return `new` as a state if `old → new` is in the table (`old` None: creating the row); else raise."""
    try:
        d = Direction(direction)
    except ValueError:
        raise _fail(direction, old, new, "unknown direction", transfer_id) from None
    target = next((s for s in STATES[d] if s == new), None)
    if target is None:
        raise _fail(direction, old, new, f"not a state of an {d} transfer", transfer_id)
    if old is None:
        if target not in ENTRY[d]:
            raise _fail(d, old, new, f"a new {d} transfer starts in {_names(ENTRY[d])}", transfer_id)
        return target
    source = next((s for s in STATES[d] if s == old), None)
    if source is None:
        raise _fail(d, old, new, f"'{old}' is not a state of an {d} transfer", transfer_id)
    allowed = EDGES[d].get(source, frozenset())
    if target not in allowed:
        why = f"from '{old}' it may go to {_names(allowed)}" if allowed else f"'{old}' is final"
        raise _fail(d, old, new, why, transfer_id)
    return target


def can_transition(direction: str, old: str | None, new: str) -> bool:
    """`check_transition` as a question, for callers deciding between a change and a note."""
    try:
        check_transition(direction, old, new)
    except IllegalTransition:
        return False
    return True


def _names(states: frozenset[State]) -> str:
    return ", ".join(sorted(states)) or "nothing"
