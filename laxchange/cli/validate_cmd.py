"""`laxchange validate`: structural and domain validation of one or more files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from laxchange.cli.app import App, needs_home, output_options
from laxchange.errors import UsageError
from laxchange.validate import Report, validate_bytes, validate_file


def _human(report: Report, strict: bool) -> str:
    status = "valid" if report.passed(strict) else "INVALID"
    head = f"{report.source}: {status}"
    if report.schema:
        head += f" ({report.schema})"
    counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    lines = [f"{head}: {counts}" if report.findings else head]
    lines += ["  " + f.format().replace("\n", "\n  ") for f in report.findings]
    return "\n".join(lines)


@needs_home("none")
@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--type", "expected_type", metavar="NAME[@VERSION]",
              help="Require this schema (else the document's own `schema` field decides).")
@click.option("--strict", is_flag=True, help="Warnings fail validation too (exit 1).")
@output_options
@click.pass_obj
def validate_command(app: App, files: tuple[str, ...], expected_type: str | None, strict: bool) -> None:
    """Validate records and messages: JSON Schema, then domain rules.

    Prints every finding with its JSON path, rule id, message and a hint. Exits 1 if any
    file has an error (or, with --strict, a warning); 0 otherwise. Use `-` for stdin; a
    directory means every *.json file in it.
    """
    reports = []
    names: list[str] = []
    for name in files:
        if name != "-" and Path(name).is_dir():
            found = sorted(str(p) for p in Path(name).glob("*.json") if p.is_file())
            if not found:
                raise UsageError(f"{name}: no .json files in this directory", code="validate.empty-dir",
                                 hint="name the files to validate")
            names.extend(found)
        else:
            names.append(name)
    for name in names:
        if name == "-":
            reports.append(validate_bytes(sys.stdin.buffer.read(), source="<stdin>", expected_type=expected_type))
        else:
            reports.append(validate_file(name, expected_type=expected_type))
    passed = all(r.passed(strict) for r in reports)
    if app.json:
        app.write_json({"ok": passed, "strict": strict, "reports": [r.to_dict() for r in reports]})
    else:
        for r in reports:
            app.say(_human(r, strict), err=not r.passed(strict))
    if not passed:
        click.get_current_context().exit(1)
