"""`laxchange render`: the readable PEP as a printable HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from laxchange import render
from laxchange.cli.app import App, needs_home, output_options
from laxchange.exchange import Party


@needs_home("none")  # a record needs no home; a package needs an initialised one (below)
@click.command("render")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the page (default: pep-RECORD_ID.html here; never named after the child).")
@click.option("--force", is_flag=True, default=False, help="Replace OUTPUT if it exists.")
@output_options
@click.pass_obj
def render_cmd(app: App, source: Path, output: Path | None, force: bool) -> None:
    """Write a readable, printable HTML PEP from a record (JSON) or a .lax package (verified first)."""
    if output is not None:
        render.check_output(output, force=force)  # before any decryption
    if render.is_package(source):
        app.home.require("initialised")
        with Party.from_home(app.home) as party:
            page = render.render_package(party, source)
    else:
        page = render.render_file(source)
    out = output if output is not None else Path(page.suggested_name)
    render.write_html(out, page.html, force=force)
    where = f" from {page.sender} (transfer {page.transfer_id}, verified)" if page.sender else ""
    app.emit({"path": str(out), "record_id": page.record_id, "schema": page.schema, "sender": page.sender,
              "transfer_id": page.transfer_id},
             f"Wrote {out}: the PEP of record {page.record_id}{where}; it holds personal data, keep it safe")
