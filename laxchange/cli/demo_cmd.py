"""`laxchange demo`: the main job end to end on embedded defaults."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from laxchange import demo
from laxchange.cli.app import App, needs_home, output_options
from laxchange.transport.server import EmbeddedSftpServer


@needs_home("none")  # it makes its own homes
@click.command("demo")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Working directory for the demo's homes and files (default: a new temporary one).")
@click.option("--keep", is_flag=True,
              help="Leave the embedded SFTP server running at the end, so the homes can be explored "
                   "(`laxchange run` works against it); Ctrl-C stops it.")
@output_options
@click.pass_obj
def demo_command(app: App, workdir: Path | None, keep: bool) -> None:
    """Run the demo with fictional children: notify a placement, import the PEP, receipts, refuse tampering.

    Three fictional parties with their own homes exchange packages over an embedded SFTP
    server on 127.0.0.1. Everything is written under --dir (default: a new temporary folder).
    """
    say = (lambda _s: None) if app.json else app.say

    def wait(server: EmbeddedSftpServer) -> None:
        app.say(f"the SFTP server stays up on 127.0.0.1:{server.port} (host key {server.fingerprint}); "
                "Ctrl-C stops it", err=app.json)
        try:
            # Woken twice a second: Ctrl-C's SIGINT may be delivered to one of the server's
            # threads, which does not interrupt a wait without a timeout in this one (it hung).
            while not threading.Event().wait(0.5):
                pass
        except KeyboardInterrupt:
            app.say("stopped", err=app.json)

    results = demo.run(workdir, say=say, keep=wait if keep else None)
    app.emit(results)
