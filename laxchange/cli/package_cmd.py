"""`laxchange pack`, `laxchange open`, `laxchange inspect`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from laxchange import package
from laxchange._util.fs import check_output
from laxchange.cli.app import App, needs_home, output_options
from laxchange.errors import LaxError
from laxchange.exchange.party import default_attachments_dir, open_from, pack_to
from laxchange.exchange.quarantine import entries
from laxchange.models.wrap import REASONS
from laxchange.trust import PartnerDirectory


@click.command("pack")
@click.argument("record", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "message_type", default=None, metavar="TYPE",
              help="Check the document is this message type (it names its own schema); for an education "
                   "record, pep-transfer or placement-notification wraps it in that message (needs --reason).")
@click.option("--reason", type=click.Choice(REASONS), default=None,
              help="Why the record is sent, when --type wraps an education record.")
@click.option("--message", default=None, help="A short note in the wrapping message (optional).")
@click.option("--to", "recipient", required=True, help="Recipient party id (must be in the partner directory).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists (never the record or an attachment).")
@click.option("--expires-in-days", type=click.IntRange(1, 366), default=30, show_default=True)
@click.option("--attach", "attachments", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file to carry with the record (repeatable).")
@output_options
@click.pass_obj
def pack_cmd(app: App, record: Path, message_type: str | None, reason: str | None, message: str | None,
             recipient: str, output: Path, force: bool, expires_in_days: int, attachments: tuple[Path, ...]) -> None:
    """Validate RECORD, sign it and encrypt it for one partner into a .lax package."""
    check_output(output, inputs=[record, *attachments], overwrite=force, what="package file")
    doc = package.read_record(record)
    result = pack_to(app.home, doc, message_type=message_type, recipient=recipient, out=output,
                     expires_in=dt.timedelta(days=expires_in_days), attachments=attachments, reason=reason,
                     message=message, source=record, overwrite=force, clock=app.clock)
    m = result.manifest
    app.emit({"path": str(output), "schema": result.schema, "manifest": m.to_dict()},
             f"Packed {result.schema} for {m.recipient} into {output}\n  transfer {m.transfer_id}, "
             f"expires {m.expires}, {m.payload_size} bytes encrypted ({m.encryption})")


@click.command("open")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the verified record (JSON).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists (never the package itself).")
@click.option("--attachments-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write attachments, if the package has any (default: OUTPUT's name with "
                   "'.attachments' instead of its extension, beside it).")
@click.option("--archive", is_flag=True,
              help="Archive verification of a kept package, years on: was it genuinely sent by its sender to us "
                   "at its creation time with keys valid then? Expiry and replay are not checked; a key revoked "
                   "since is reported, not fatal; nothing is imported.")
@output_options
@click.pass_obj
def open_cmd(app: App, file: Path, output: Path, force: bool, attachments_dir: Path | None, archive: bool) -> None:
    """Verify and decrypt a .lax package addressed to us; write the record only if all checks pass.

    Plain `open` applies today's rules (expiry, replay, current key validity) and records the
    import. `--archive` checks the package as of its `created` time against the sender's whole
    card history instead (docs/format.md §6.1); it never changes import state.
    """
    opened = open_from(app.home, file, out=output, attachments_dir=attachments_dir, overwrite=force,
                       clock=app.clock, archive=archive)
    m = opened.manifest
    if not app.json:
        for w in opened.warnings:
            app.warn(f"laxchange: warning: {w['message']}")
    verified = (f"Verified as an archive: {opened.schema} sent by {m.sender} to {m.recipient} at {m.created}"
                if archive else f"Verified {opened.schema} from {m.sender}")
    app.emit({"path": str(output), "schema": opened.schema, "manifest": m.to_dict(), "archive": archive,
              "warnings": opened.warnings, "attachments": opened.attachments,
              "written": [str(p) for p in opened.written]},
             f"{verified} (transfer {m.transfer_id}); wrote {output}" + (
                 f"\n  and {len(opened.attachments)} attachment{'s' if len(opened.attachments) != 1 else ''} "
                 f"into {attachments_dir or default_attachments_dir(output)}" if opened.attachments else "")
             + ("\n  (archive verification: nothing was imported)" if archive else ""))


@click.group("quarantine")
def quarantine_group() -> None:
    """Packages that failed verification: kept with the reason, never deleted, never imported."""


@quarantine_group.command("list")
@output_options
@click.pass_obj
def quarantine_list(app: App) -> None:
    """List quarantined packages with the reason each was refused."""
    items = entries(app.home)
    app.emit({"quarantined": [{"path": str(q.path), **q.record} for q in items]},
             lambda: "\n".join(f"{q.path.name}  {q.record['quarantined_at']}  {q.record['reason']}{_whose(q.record)}"
                               + "".join(f"  {f['path']} [{f['rule']}]" for f in q.record.get("findings", []))
                               for q in items) or "quarantine is empty")


@quarantine_group.command("release")
@click.argument("name")
@output_options
@click.pass_obj
def quarantine_release(app: App, name: str) -> None:
    """Move a quarantined package back into the inbox, for the next import to check it again.

    For a package refused for a reason now put right: its sender's new card added, a clock set
    right. The next `laxchange import` or `run` verifies it from the start, and imports and
    receipts it if it passes (or quarantines it again). Its record is kept in quarantine/released/.
    Do not `laxchange open` a quarantined package instead: that records it imported with no
    received folder and no receipt."""
    from laxchange.exchange.party import Party
    from laxchange.passphrase import default_passphrase_source

    with Party.from_home(app.home, passphrase=default_passphrase_source()) as me:
        path = me.release_quarantined(name)
    app.emit({"released": str(path)}, f"moved {name} back into the inbox as {path.name}: the next `laxchange import` "
                                      "or `run` checks it again")


def _whose(record: dict[str, Any]) -> str:
    """Whom a quarantined file is from, as far as its record knows: the authenticated sender and
    transfer, else the login whose folder it was collected from (which only says who uploaded it)."""
    if record.get("sender") and record.get("transfer_id"):
        return f"  from {record['sender']} (transfer {record['transfer_id']})"
    if record.get("delivered_into_folder_of"):
        return f"  delivered into {record['delivered_into_folder_of']}'s folder (sender not verified)"
    return ""


@needs_home("none")  # the partner directory is used if there is one
@click.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output_options
@click.pass_obj
def inspect_cmd(app: App, file: Path) -> None:
    """Show a package's routing manifest without decrypting it."""
    directory = PartnerDirectory(app.home, clock=app.clock) if app.home.partners.is_dir() else None
    try:
        info = package.inspect(file, directory)
    except LaxError as exc:  # which file, as `open` says: several may be inspected in a loop
        raise exc.annotated(prefix=f"{file}: ") from exc
    m = info["manifest"]
    app.emit(info, "\n".join(f"{k:17} {v}" for k, v in m.items()) + f"\n{'signature':17} {info['signature']}")
