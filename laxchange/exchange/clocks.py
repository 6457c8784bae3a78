"""The statutory clocks of one home: its ledger, `HOME/received/` and records folder, handed to
`laxchange.deadlines` (docs/deadlines.md, "Where the facts come from").

Used by `laxchange deadlines`, `status` and the nightly run, so all three show the same clocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from laxchange import deadlines
from laxchange._util import jsonio, timefmt
from laxchange.errors import LaxError
from laxchange.exchange.inbound import RECORD_JSON, list_received
from laxchange.home import Home
from laxchange.ledger.db import Ledger

__all__ = ["RECORD_MESSAGES", "home_deadlines", "home_sources"]

#: Received message types whose record.json can start or stop a clock.
RECORD_MESSAGES = frozenset({"education-record", "pep-transfer", "placement-notification", "exclusion-notice"})


def home_sources(home: Home, ledger: Ledger, *, me: str | None, settings: deadlines.Settings) -> deadlines.Sources:
    """Every fact the clocks can use in `home`: received messages, the records folder, the ledger."""
    sources = deadlines.Sources(me=me)
    for r in list_received(home, skip=_receipts_only(ledger)):
        if r.manifest.get("message_type") not in RECORD_MESSAGES:
            continue
        origin = f"received/{r.path.name}"
        try:
            doc = jsonio.load_file(r.path / RECORD_JSON)
            at = timefmt.parse(r.manifest.get("received_at"))
        except (LaxError, ValueError) as exc:
            sources.warnings.append(f"{origin}: cannot be read ({getattr(exc, 'message', exc)}); skipped")
            continue
        sources.add_document(doc, origin=origin, at=at, transfer_id=str(r.manifest.get("transfer_id")), owned=True)
    if settings.records is not None:
        sources.add_records_folder(settings.records)
    sources.add_ledger(ledger)
    return sources


def _receipts_only(ledger: Ledger) -> Callable[[str], bool]:
    """Is the received folder of this name (`<transfer id>`) one of a receipt, by the ledger? Such a
    folder is skipped unread: a council receives a receipt or two per transfer it sends, every night,
    for years, and no receipt starts or stops a clock. A folder the ledger does not say all about
    (another sender's `<id>-<sender>`, a transfer id also used by a record) is read as before."""
    kinds: dict[str, set[str | None]] = {}
    for t in ledger.transfers(direction="in"):
        kinds.setdefault(t.transfer_id, set()).add(t.message_type)
    return lambda name: kinds.get(name) == {"receipt"}


def home_deadlines(home: Home, ledger: Ledger, *, me: str | None, now: dt.datetime,
                   settings: deadlines.Settings | None = None) -> deadlines.Result:
    """The clocks of `home` at `now`, with the settings of its config.json unless given."""
    settings = settings or deadlines.Settings.from_home(home)
    return deadlines.compute(home_sources(home, ledger, me=me, settings=settings), settings, now=now)
