"""`laxchange export`: a record as a school MIS loads it, a CTF (XML) or CSV tables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from laxchange.cli.app import App, needs_home, output_options
from laxchange.clock import SystemClock
from laxchange.errors import UsageError
from laxchange.exchange.inbound import find_received, received_record
from laxchange.mis import CTF_VERSIONS, CURRENT_VERSION, build_ctf, load_record, write_csv_folder, write_ctf

_TRANSFER_ID = re.compile(r"[0-9a-f]{32}")


def _source(app: App, source: str, sender: str | None) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    """(record, flat-CSV transfer columns, input files) from a record file or an imported transfer id."""
    path = Path(source)
    if path.exists():
        _document, record = load_record(path, clock=SystemClock())
        return dict(record), {}, [path]
    if _TRANSFER_ID.fullmatch(source):
        app.home.require("initialised")
        found = find_received(app.home, source, sender)
        record, meta = received_record(found)
        return record, meta, [found.path / "record.json"]
    raise UsageError(f"{source} is neither a file nor an imported transfer id", code="export.source",
                     hint="give a record file (JSON), or a transfer id from `laxchange received list`")


@needs_home("none")  # a record file needs no home; a transfer id an initialised one (above)
@click.command("export")
@click.argument("source", metavar="TRANSFER|RECORD")
@click.option("--ctf", "as_ctf", is_flag=True, help="A partial Common Transfer File (XML) for the school's MIS.")
@click.option("--csv", "as_csv", is_flag=True,
              help="record.csv plus one CSV per table (targets, actions, attainment, attendance, exclusions).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="The CTF file to write (--ctf), or a new folder for the CSV files (--csv).")
@click.option("--ctf-version", type=click.Choice(CTF_VERSIONS), default=CURRENT_VERSION, show_default=True,
              help="CTF version: the current one, or the one before for an MIS not yet updated.")
@click.option("--laestab", metavar="NNNNNNN", default=None,
              help="The school's DfE number (LA code + establishment number), when the record lacks it.")
@click.option("--from", "sender", metavar="PARTY", default=None,
              help="The sender, when more than one partner used this transfer id.")
@click.option("--force", is_flag=True, help="Replace the CTF file if it exists (never an input).")
@output_options
@click.pass_obj
def export_cmd(app: App, source: str, as_ctf: bool, as_csv: bool, output: Path | None, ctf_version: str,
               laestab: str | None, sender: str | None, force: bool) -> None:
    """Export a record as a school MIS loads it: a partial CTF (--ctf) or CSV tables (--csv).

    TRANSFER is an imported transfer id (`laxchange received list`), RECORD a record file. The
    files hold personal data (mode 0600): keep them safe. docs/ctf.md says what the CTF holds.
    """
    if as_ctf == as_csv:
        raise UsageError("say which export: --ctf or --csv", code="export.format",
                         hint="--ctf -o FILE.xml for a school MIS, --csv -o DIR for spreadsheets and loaders")
    record, meta, inputs = _source(app, source, sender)
    if as_csv:
        if output is None:
            raise UsageError("name a new folder for the CSV files with -o DIR", code="export.no-output",
                             hint=f"e.g. -o csv-{record['record_id'][:8]}")
        written = write_csv_folder(output, record, meta)
        app.emit({"format": "csv", "path": str(output), "written": [str(p) for p in written],
                  "record_id": record["record_id"], "transfer_id": meta.get("transfer_id")},
                 f"Wrote {len(written)} CSV files into {output} for record {record['record_id']}; "
                 "they hold personal data, keep them safe")
        return
    ctf = build_ctf(record, clock=SystemClock(), version=ctf_version, laestab=laestab)
    if output is None:
        raise UsageError("name the CTF file to write with -o FILE.xml", code="export.no-output",
                         hint=f"MIS expect names like -o {ctf.suggested_name} (source and destination "
                              "LA+establishment, then a number)")
    write_ctf(output, ctf, force=force, inputs=inputs)

    def human() -> str:
        lines = [(f"Wrote {output}: a partial CTF {ctf.version} for record {ctf.record_id} (school URN "
                  f"{ctf.school_urn}); it holds personal data, keep it safe")]
        if output.name != ctf.suggested_name:
            lines.append(f"  note: MIS usually expect the name {ctf.suggested_name}")
        lines += [f"  note: {n}" for n in ctf.notes]
        lines += [f"  not in the CTF: {o}" for o in ctf.omitted]
        return "\n".join(lines)

    app.emit({"format": "ctf", "path": str(output), "ctf_version": ctf.version, "record_id": ctf.record_id,
              "school_urn": ctf.school_urn, "suggested_name": ctf.suggested_name, "notes": ctf.notes,
              "omitted": ctf.omitted, "transfer_id": meta.get("transfer_id")}, human)
