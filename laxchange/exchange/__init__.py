"""What a party does: pack and send, notify, collect and open, quarantine, receipts.

The CLI, the demo and the nightly run all go through `Party`, so they share one implementation
of the bookkeeping around the package format and the transport.
"""

from laxchange.exchange.endpoints import ConfigEndpoints, DirectoryEndpoints
from laxchange.exchange.notify import (
    BatchResult,
    NotifyResult,
    Placement,
    notify_exclusion,
    notify_placement,
    notify_placements,
    read_placements,
)
from laxchange.exchange.party import InboxResult, Party, open_from, pack_to
from laxchange.exchange.quarantine import Quarantined, entries, quarantine

__all__ = ["BatchResult", "ConfigEndpoints", "DirectoryEndpoints", "InboxResult", "NotifyResult", "Party",
           "Placement", "Quarantined", "entries", "notify_exclusion", "notify_placement", "notify_placements",
           "open_from", "pack_to", "quarantine", "read_placements"]
