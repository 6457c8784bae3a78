"""`laxchange records`: education records from the spreadsheet template a virtual school fills."""

from __future__ import annotations

from pathlib import Path

import click

from laxchange.cli.app import App, needs_home, output_options
from laxchange.clock import SystemClock
from laxchange.errors import ExitCode
from laxchange.mis import FromCsvReport, records_from_csv, template_text
from laxchange.mis.from_csv import COLUMNS


@needs_home("none")  # CSV in, records out: no home
@click.group("records")
def records_group() -> None:
    """Education records from a spreadsheet (CSV): the template, and from-csv."""


@records_group.command("template")
@output_options
@click.pass_obj
def template_cmd(app: App) -> None:
    """Print the CSV template with three fictional children (docs/records-csv.md explains every column)."""
    text = template_text()
    if app.json:
        app.write_json({"ok": True, "columns": [c.name for c in COLUMNS], "template": text})
    else:
        app.say(text, nl=False)


def _human(report: FromCsvReport) -> str:
    lines = []
    for r in report.failed:
        lines.append(f"NOT WRITTEN row {r.row}: {len(r.errors)} problem(s) to fix")
        lines += ["  " + f.format().replace("\n", "\n  ") for f in r.errors]
    for r in report.written:
        lines.append(f"written     row {r.row} -> {report.dest / str(r.file) if report.dest else r.file} "
                     f"(record {r.record.get('record_id') if r.record else ''})")
        lines += ["  " + f.format().replace("\n", "\n  ") for f in r.warnings]
    n, bad = len(report.rows), len(report.failed)
    if not bad:
        lines.append(f"done: {n} row(s), {n} record(s) written into {report.dest}")
    elif report.written:
        lines.append(f"needs a look (exit 10): {n} rows, {n - bad} records written into {report.dest}, {bad} row(s) "
                     "not written; fix them and run again with a new -o folder for those rows")
    else:
        lines.append(f"nothing written (exit 1): none of the {n} row(s) is a valid record")
    return "\n".join(lines)


@records_group.command("from-csv")
@click.argument("template", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "dest", required=True, type=click.Path(path_type=Path),
              help="A new (or empty) folder for the records, one row-NNN.json per valid row.")
@output_options
@click.pass_context
def from_csv_cmd(ctx: click.Context, template: Path, dest: Path) -> None:
    """Build education records from TEMPLATE.csv, one per row; rows with errors are reported, not written.

    Every row is validated as `laxchange validate` does; problems are listed by spreadsheet row
    (the header is row 1) and column. Exit 0: every row written; 10: some rows not written (the
    others are); 1: no row valid, nothing written.
    """
    app: App = ctx.obj
    report = records_from_csv(template, dest, clock=SystemClock())
    ok = not report.failed
    if app.json:
        app.write_json({"ok": ok, **report.to_dict()})
    else:
        app.say(_human(report), err=not ok and not report.written)
    if report.failed:
        ctx.exit(ExitCode.PARTIAL if report.written else ExitCode.INVALID_DATA)
