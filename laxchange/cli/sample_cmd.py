"""`laxchange sample`: synthetic, obviously fictional records and messages for demos and tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from laxchange import samples
from laxchange._util import jsonio
from laxchange.cli.app import App, needs_home, output_options
from laxchange.errors import UsageError


@needs_home("none")
@click.command("sample")
@click.argument("kind", metavar="TYPE", type=click.Choice(sorted(samples.GENERATORS)))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Same seed, same output.")
@click.option("--count", type=click.IntRange(min=1, max=1_000_000), default=1, show_default=True)
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help=f"Date the records describe (default {samples.DEFAULT_AS_OF}).")
@click.option("--schema-version", "schema_version", default=None, metavar="VERSION",
              help="Schema version to write (default: the newest; 1.0.0 is what laxchange wrote before 1.1.0).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="A file (count 1) or a directory (count > 1; one file per record). Default: stdout.")
@output_options
@click.pass_obj
def sample_command(app: App, kind: str, seed: int, count: int, as_of: dt.datetime | None,
                   schema_version: str | None, output: Path | None) -> None:
    """Generate TYPE: fictional children, real code lists, valid check letters.

    With --count > 1 and no -o, prints one JSON document per line.
    """
    day = as_of.date() if as_of else samples.DEFAULT_AS_OF
    docs = samples.generate(kind, seed, count, as_of=day, version=schema_version)
    if output is None:
        if count == 1:
            app.say(jsonio.dumps_pretty(docs[0]), nl=False)
        else:
            for d in docs:
                app.say(json.dumps(d, ensure_ascii=False))
        return
    written: list[str] = []
    if count == 1:
        if output.is_dir():
            raise UsageError(f"{output} is a directory", code="sample.output-dir",
                             hint="give a file name, or use --count > 1 to fill a directory")
        jsonio.write_atomic(output, jsonio.dumps_pretty(docs[0]).encode("utf-8"), mode=0o644)
        written.append(str(output))
    else:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output} is a file", code="sample.output-file",
                             hint="with --count > 1, -o names a directory")
        output.mkdir(parents=True, exist_ok=True)
        for i, d in enumerate(docs):
            target = output / f"{kind}-{seed + i:06d}.json"
            jsonio.write_atomic(target, jsonio.dumps_pretty(d).encode("utf-8"), mode=0o644)
            written.append(str(target))
    app.emit({"written": written, "type": kind, "seed": seed, "count": count,
              "schema_version": schema_version or samples.VERSIONS[kind][-1]},
             f"wrote {len(written)} fictional {kind} document(s)" + (f" to {output}" if output else ""))
