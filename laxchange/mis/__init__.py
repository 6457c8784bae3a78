"""What a school's MIS, a council's spreadsheet or an ePEP system can load or give us.

    ctf = build_ctf(record, clock=SystemClock())            # a partial CTF 25 (docs/ctf.md)
    write_ctf(Path("9372001_CTF_9372001_001.xml"), ctf)     # 0600, never over a file without force
    write_csv_folder(Path("out"), record, meta)             # record.csv + one CSV per list (docs/import.md)
    report = records_from_csv(Path("epep.csv"), Path("records"), clock=SystemClock())
                                                            # the template, row by row (docs/records-csv.md)

The formats here only read and write records; they know nothing of parties, packages or the
ledger (layer 3, beside `validate/`, which `records_from_csv` uses), so `exchange/` (the
`import` job) and the CLI can both use them.
"""

from __future__ import annotations

from laxchange.mis.csv_tables import FLAT_FILE, TABLES, table_files, write_csv_folder
from laxchange.mis.ctf import CTF_VERSIONS, CURRENT_VERSION, Ctf, academic_year, build_ctf, ctf_file_name, write_ctf
from laxchange.mis.flat_csv import COLUMNS, FORMULA_START, csv_cell, record_of_message, record_row, write_csv
from laxchange.mis.from_csv import (
    FromCsvReport,
    RowFinding,
    RowResult,
    build_records,
    read_rows,
    record_to_row,
    records_from_csv,
    template_csv,
    template_text,
)
from laxchange.mis.source import load_record, record_of

__all__ = ["COLUMNS", "CTF_VERSIONS", "CURRENT_VERSION", "FLAT_FILE", "FORMULA_START", "TABLES", "Ctf",
           "FromCsvReport", "RowFinding", "RowResult", "academic_year", "build_ctf", "build_records", "csv_cell",
           "ctf_file_name", "load_record", "read_rows", "record_of", "record_of_message", "record_row",
           "record_to_row", "records_from_csv", "table_files", "template_csv", "template_text", "write_csv",
           "write_csv_folder", "write_ctf"]
