"""`laxchange import`, `laxchange received` and `laxchange receipt`: the receiving party's job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from laxchange.cli.app import App, output_options
from laxchange.cli.transport_cmd import _connection_options, _party
from laxchange.errors import ExitCode, UsageError
from laxchange.exchange.inbound import (
    ImportItem,
    ImportReport,
    SentReceipt,
    counts_text,
    export_received,
    find_received,
    import_inbox,
    list_received,
    send_applied,
)
from laxchange.exchange.party import shown_error, shown_name
from laxchange.render import render_record_html
from laxchange.render.deadlines import ChildClocks


def _item_line(app: App, i: ImportItem) -> str:
    where = f"{app.home.root / 'received' / i.folder}" if i.folder else ""
    if i.result == "imported":
        return f"imported    {i.schema} from {i.sender} (transfer {i.transfer_id}) into {where}"
    if i.result == "duplicate":
        return (f"duplicate   {i.file}: transfer {i.transfer_id} from {i.sender} was already imported into {where}"
                + ("" if str(i.schema).startswith("receipt@") else "; acknowledged again"))
    if i.result == "receipt" and i.receipt is not None:
        if i.receipt.refused:
            return "REJECTED    " + i.receipt.describe()
        return ("receipt     " if not i.receipt.warning else "WARNING     ") + i.receipt.describe()
    if i.result == "skipped":
        return f"skipped     {i.file}: another laxchange run is opening it"
    err = i.error
    label = "QUARANTINED" if i.result == "quarantined" else "FAILED     "
    return f"{label} {i.file}: {err.safe_message if err else 'no detail'}" + (f" [{err.code}]" if err else "")


def _receipt_line(s: SentReceipt) -> str:
    what = f"{s.stage} receipt ({s.status})" if s.stage else "receipt packed earlier"
    about = f" for transfer {s.in_reply_to}" if s.in_reply_to else ""
    if s.error is None:
        return f"sent        {what}{about} to {s.to} as {s.transfer_id}.lax"
    return f"NOT SENT    {what}{about} to {s.to}: {s.error.message} [{s.error.code}]" + (
        f"\n  hint: {s.error.hint}" if s.error.hint else "")


def _human(app: App, report: ImportReport) -> str:
    lines = []
    for r in report.collected:
        if r.error is not None:
            lines.append(f"NOT COLLECTED from {r.party}: {r.error.message} [{r.error.code}]"
                         + (f"\n  hint: {r.error.hint}" if r.error.hint else ""))
        else:
            n = sum(1 for f in r.files if f.error is None)
            lines.append(f"collected   {n} file(s) from our drop folder ({r.party})")
            lines += [f"NOT COLLECTED {shown_name(f.name)}: {shown_error(f.name, f.error).message} [{f.error.code}]"
                      for f in r.files if f.error]
            lines += [f"warning: {w}" for w in r.warnings]
    lines += [_item_line(app, i) for i in report.items]
    lines += [f"  warning: {w}" for i in report.items for w in i.warnings]
    lines += [_receipt_line(s) for s in report.receipts_sent]
    lines += [f"warning: {w}" for w in report.warnings]
    counts = report.counts()
    summary = counts_text(counts) or "nothing in the inbox"
    sent = sum(1 for s in report.receipts_sent if s.error is None)
    if sent:  # receipts owed from before (an interrupted run) go out with an empty inbox too
        summary += f"; {sent} receipt{'s' if sent != 1 else ''} sent"
    lines.append(f"{'done' if report.ok else 'needs a look (exit 10)'}: {summary}")
    return "\n".join(lines)


@click.command("import")
@click.option("--no-collect", is_flag=True, help="Do not collect first; import only what is already in the inbox.")
@_connection_options
@output_options
@click.pass_context
def import_cmd(ctx: click.Context, no_collect: bool, timeout: float, retries: int) -> None:
    """Collect from our drop folder, verify, write each message into HOME/received/ and send receipts."""
    app: App = ctx.obj
    with _party(app, timeout, retries) as me, app.progress() as bar:
        clocks = ChildClocks(me)  # the child's statutory clocks on its page
        report = import_inbox(me, collect=not no_collect, progress=bar,
                              render=lambda record: render_record_html(record, clock=me.clock,
                                                                       deadlines=clocks(record)))
    data = report.to_dict()
    if app.json:
        app.write_json({"ok": report.ok, **data})
    else:
        app.report(_human(app, report), ok=report.ok)
    if not report.ok:
        ctx.exit(ExitCode.PARTIAL)


@click.group("received")
def received_group() -> None:
    """Imported transfers in HOME/received/: list, show, export (the package is not opened again)."""


@received_group.command("list")
@output_options
@click.pass_obj
def received_list(app: App) -> None:
    """List imported transfers (ids, sender, schema, receipts sent; no personal data)."""
    items = list_received(app.home)

    def row(m: dict[str, Any]) -> str:
        stages = ",".join(f"{e.get('stage')}{'' if e.get('sent') else '(not sent)'}" for e in m.get("receipts", []))
        return (f"{m.get('received_at')}  {m.get('transfer_id')}  {m.get('sender'):<11} {m.get('schema')}  "
                f"receipts: {stages or '-'}")

    app.emit({"received": [{"path": str(r.path), **r.manifest} for r in items]},
             lambda: "\n".join(row(r.manifest) for r in items) or "nothing imported yet")


@received_group.command("show")
@click.argument("transfer")
@click.option("--from", "sender", metavar="PARTY", default=None,
              help="The sender, when more than one partner used this transfer id.")
@output_options
@click.pass_obj
def received_show(app: App, transfer: str, sender: str | None) -> None:
    """Show what arrived in TRANSFER: its manifest (ids, hashes, file names)."""
    found = find_received(app.home, transfer, sender)
    app.emit({"path": str(found.path), **found.manifest},
             lambda: f"{found.path}\n" + json.dumps(found.manifest, indent=2, ensure_ascii=False))


@received_group.command("export")
@click.argument("transfer")
@click.option("--to", "dest", required=True, type=click.Path(path_type=Path),
              help="A new folder to copy the record, CSV, HTML and attachments into.")
@click.option("--from", "sender", metavar="PARTY", default=None,
              help="The sender, when more than one partner used this transfer id.")
@output_options
@click.pass_obj
def received_export(app: App, transfer: str, dest: Path, sender: str | None) -> None:
    """Copy TRANSFER's files (record, CSV, HTML, attachments) into a new folder."""
    written = export_received(app.home, transfer, dest, sender)
    app.emit({"path": str(dest), "written": [str(p) for p in written]},
             f"exported transfer {transfer} into {dest} ({len(written)} files)")


@click.command("receipt")
@click.argument("transfer")
@click.option("--applied", is_flag=True, help="The record is in our MIS: send the second-stage `applied` receipt.")
@click.option("--from", "sender", metavar="PARTY", default=None,
              help="The sender, when more than one partner used this transfer id.")
@_connection_options
@output_options
@click.pass_context
def receipt_cmd(ctx: click.Context, transfer: str, applied: bool, sender: str | None, timeout: float,
                retries: int) -> None:
    """Send the signed second-stage receipt for an imported TRANSFER (--applied: it is in our MIS)."""
    app: App = ctx.obj
    if not applied:
        raise UsageError("say which receipt to send: --applied", code="receipt.stage-missing",
                         hint="`laxchange import` sends the delivered receipt itself; `laxchange receipt "
                              f"{transfer} --applied` says the record is now in your MIS")
    with _party(app, timeout, retries) as me:
        sent = send_applied(me, transfer, sender)
    if sent.error is not None:
        if app.json:
            app.write_json({"ok": False, "receipt": sent.to_dict(), "error": sent.error.to_dict()})
            ctx.exit(sent.error.exit_code)
        if sent.transfer_id is None:  # it could not be packed (a key, the passphrase): there is no file to send
            raise sent.error.annotated(f"(no receipt was made, so none is waiting to be sent: run `laxchange receipt "
                                       f"{transfer} --applied` again once this is put right)")
        raise sent.error.annotated("(the receipt is kept in the outbox; the next `laxchange import` or "
                                   f"`laxchange receipt {transfer} --applied` sends it)")
    if sent.already_sent:
        named = f" as {sent.transfer_id}.lax" if sent.transfer_id else ""
        app.emit({"receipt": sent.to_dict()},
                 f"the applied receipt for transfer {transfer} was already sent to {sent.to}{named}; nothing sent "
                 f"now (`laxchange received show {transfer}` lists the receipts sent)")
        return
    app.emit({"receipt": sent.to_dict()},
             f"sent the applied receipt for transfer {transfer} to {sent.to} as {sent.transfer_id}.lax")
