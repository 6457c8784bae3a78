"""What a school's or council's MIS can load: the flat CSV row (`flat_csv`).

The formats here only read and write documents already validated elsewhere; they know nothing of
parties, packages or the ledger (layer 3, beside `validate/`), so `exchange/` (the `import` job)
and the CLI can both use them.
"""

from __future__ import annotations

from laxchange.mis.flat_csv import COLUMNS, FORMULA_START, csv_cell, record_of_message, record_row, write_csv

__all__ = ["COLUMNS", "FORMULA_START", "csv_cell", "record_of_message", "record_row", "write_csv"]
