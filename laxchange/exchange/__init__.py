"""What a party does: pack and send, notify, collect and open, quarantine, receipts.

The CLI, the demo and the nightly run all go through `Party`, so they share one implementation
of the bookkeeping around the package format and the transport.
"""

from laxchange.exchange.endpoints import ConfigEndpoints, DirectoryEndpoints
from laxchange.exchange.notify import NotifyResult, notify_exclusion, notify_placement
from laxchange.exchange.party import InboxResult, Party, open_from, pack_to
from laxchange.exchange.quarantine import Quarantined, entries, quarantine

__all__ = ["ConfigEndpoints", "DirectoryEndpoints", "InboxResult", "NotifyResult", "Party", "Quarantined", "entries",
           "notify_exclusion", "notify_placement", "open_from", "pack_to", "quarantine"]
