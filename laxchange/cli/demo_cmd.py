"""`laxchange demo`: the main job end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import click

from laxchange import demo
from laxchange.cli.app import App, json_option


@click.command("demo")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Working directory for the demo's homes and files (default: a new temporary one).")
@json_option
@click.pass_obj
def demo_command(app: App, workdir: Path | None) -> None:
    """Run the demo with fictional children: validate, then notify, send a PEP, acknowledge and refuse tampering.

    Three fictional parties with their own homes exchange packages over an embedded SFTP
    server on 127.0.0.1. Everything is written under --dir (default: a new temporary folder).
    """
    say = (lambda _s: None) if app.json else app.say
    results = demo.run(workdir, say=say)
    app.emit(results)
