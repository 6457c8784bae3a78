"""The ledger: every transfer's state, the replay history and the audit log (embedded SQLite).

States change only along the transition table in `laxchange.ledger.states`.
"""

from laxchange.ledger.db import Ledger, Transfer

__all__ = ["Ledger", "Transfer"]
