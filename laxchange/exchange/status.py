"""What `laxchange status` reports: the ledger's transfers (filtered) and the receipts that did not apply.

One function builds the dictionary, so the CLI's text, its `--json` and the HTML morning report
(`laxchange.render.report`) all show the same data. It reads the ledger only: no keys, no
passphrase, nothing changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from laxchange._util import timefmt
from laxchange.errors import LaxError
from laxchange.exchange.receipts import receipt_warnings
from laxchange.ledger.db import Ledger
from laxchange.trust.directory import PartnerDirectory

__all__ = ["ledger_status"]


def ledger_status(ledger: Ledger, *, direction: str | None = None, state: str | None = None,
                  party: str | None = None, record_ref: str | None = None, since: dt.datetime | None = None,
                  overdue: bool = False, directory: PartnerDirectory | None = None) -> dict[str, Any]:
    """The transfers matching every filter given (as `Ledger.transfers`), every receipt warning,
    when (`as_of`, the ledger's clock), and which of the transfers shown are overdue (sent 48 hours
    ago or more with no delivered receipt: the `--overdue` definition, `Ledger.overdue`). With a
    `directory`, also `partners`: each party shown, with its organisation's name from its card."""
    rows = ledger.transfers(direction=direction, state=state, party=party, record_ref=record_ref, since=since,
                            overdue=overdue)
    late = {(t.transfer_id, t.party) for t in ledger.overdue()}
    out: dict[str, Any] = {
        "as_of": timefmt.fmt(ledger.clock.now()), "transfers": [r.to_dict() for r in rows],
        "warnings": receipt_warnings(ledger),
        "overdue": [{"transfer_id": r.transfer_id, "party": r.party, "sent": r.updated} for r in rows
                    if r.direction == "out" and (r.transfer_id, r.party) in late]}
    if directory is not None:
        out["partners"] = {p: _name(directory, p) for p in sorted({r.party for r in rows})}
    return out


def _name(directory: PartnerDirectory, party: str) -> str | None:
    """The name on the party's card; None without one, or when it cannot be read (`doctor` reports that)."""
    try:
        p = directory.get_optional(party)
    except LaxError:
        return None
    return p.name if p is not None else None
