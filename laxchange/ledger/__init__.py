"""The ledger: every transfer's state, the replay history and the audit log (embedded SQLite).

States change only along the transition table in `laxchange.ledger.states`.
"""

from laxchange.ledger.db import Ledger, LedgerHealth, Transfer, inspect_ledger
from laxchange.ledger.errors import AlreadyReceived, IllegalTransition, LedgerBusy, LedgerError
from laxchange.ledger.lock import RunLock, RunLocked
from laxchange.ledger.states import Direction, Inbound, Outbound, check_transition

__all__ = ["AlreadyReceived", "Direction", "IllegalTransition", "Inbound", "Ledger", "LedgerBusy", "LedgerError",
           "LedgerHealth", "Outbound", "RunLock", "RunLocked", "Transfer", "check_transition", "inspect_ledger"]
