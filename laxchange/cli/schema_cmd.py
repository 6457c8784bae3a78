"""`laxchange schema`: list, show, export and (for maintainers) build the published schemas."""

from __future__ import annotations

import json
from pathlib import Path

import click

from laxchange._util import jsonio
from laxchange._util.fs import check_output
from laxchange.cli.app import App, needs_home, output_options
from laxchange.errors import ConfigError, UsageError
from laxchange.models import schemastore
from laxchange.validate.migrate import migrate_document


@needs_home("none")
@click.group("schema")
def schema_group() -> None:
    """The versioned JSON Schemas (draft 2020-12) that define every record and message."""


@schema_group.command("list")
@output_options
@click.pass_obj
def list_command(app: App) -> None:
    """Every schema with its versions; released versions are locked by hash."""
    lock = schemastore.read_lock()
    rows = [{"name": s.name, "version": s.version, "id": s.id,
             "released": f"{s.name}/{s.version}.json" in lock} for s in schemastore.list_schemas()]
    app.emit({"schemas": rows}, lambda: "\n".join(
        f"{r['name']:<24} {r['version']:<8} {'released' if r['released'] else 'draft   '}  {r['id']}" for r in rows))


@schema_group.command("show")
@click.argument("ref", metavar="NAME[@VERSION]")
@output_options
@click.pass_obj
def show_command(app: App, ref: str) -> None:
    """Print one schema (the latest version unless @VERSION is given)."""
    name, version = schemastore.parse_ref(ref)
    doc = schemastore.load(name, version)
    if app.json:
        app.emit({"schema": doc})
    else:
        app.say(json.dumps(doc, indent=2, ensure_ascii=False))


@schema_group.command("export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@output_options
@click.pass_obj
def export_command(app: App, dest: Path) -> None:
    """Copy every schema version and the lock file into DEST (for partners' own tools)."""
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty", code="schema.export-not-empty",
                         hint="export into a new or empty directory")
    paths = schemastore.export(dest)
    app.emit({"exported": [str(p) for p in paths], "dest": str(dest)},
             f"exported {len(paths)} schema file(s) to {dest}")


@schema_group.command("check")
@output_options
@click.pass_obj
def check_command(app: App) -> None:
    """Verify released schema files against schemas.lock.json (exit 5 if any changed)."""
    problems = schemastore.check_lock()
    if problems:
        raise ConfigError("released schema files do not match the lock: " + "; ".join(problems),
                          code="schema.lock-mismatch",
                          hint="restore the released files; changes go in a new version")
    app.emit({"released": len(schemastore.read_lock())}, "all released schema files match the lock")


@schema_group.command("build")
@click.option("--release", is_flag=True, help="Also lock the generated files as released.")
@output_options
@click.pass_obj
def build_command(app: App, release: bool) -> None:
    """(Maintainers) regenerate schema files from the pydantic models; never alters released files."""
    written = schemastore.build(release=release)
    app.emit({"written": written, "released": release},
             "\n".join(f"wrote {w}" for w in written) or "schemas are up to date")


@schema_group.command("migrate")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "to_version", default=None, metavar="VERSION", help="Target version (default latest).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists (never SOURCE).")
@output_options
@click.pass_obj
def migrate_command(app: App, source: Path, to_version: str | None, output: Path, force: bool) -> None:
    """Upgrade a document to a newer schema version, then validate the result.

    OUTPUT is a child's record: written private (0600), as every record laxchange writes, and
    never over an existing file unless --force."""
    check_output(output, inputs=[source], overwrite=force, what="output file")
    upgraded, report = migrate_document(jsonio.load_file(source), to_version, source=str(output))
    jsonio.write_atomic(output, jsonio.dumps_pretty(upgraded).encode("utf-8"), mode=0o600)
    app.emit({"output": str(output), "schema": upgraded["schema"]}, f"wrote {output} ({report.schema})")
