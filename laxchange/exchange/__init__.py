"""What a party does: pack and send, collect and open, quarantine, receipts.

The CLI, the demo and the nightly run all go through this layer, so they share one implementation
of the bookkeeping around the package format and the transport.
"""

from laxchange.exchange.endpoints import ConfigEndpoints, DirectoryEndpoints
from laxchange.exchange.party import open_from, pack_to, record_sent
from laxchange.exchange.quarantine import Quarantined, entries, quarantine

__all__ = ["ConfigEndpoints", "DirectoryEndpoints", "Quarantined", "entries", "open_from", "pack_to", "quarantine",
           "record_sent"]
