"""`laxchange notify-placement`, `notify-batch`, `notify-exclusion`: parse, call `laxchange.exchange.notify`, print."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from laxchange import package
from laxchange._util import jsonio
from laxchange.cli.app import App, output_options
from laxchange.cli.transport_cmd import _connection_options, _party
from laxchange.errors import UsageError
from laxchange.exchange.notify import (
    EXCLUSION_FACTS,
    REASONS,
    BatchResult,
    Notified,
    NotifyResult,
    notify_exclusion,
    notify_placement,
    notify_placements,
    read_placements,
)

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _iso(value: dt.datetime | None) -> str | None:
    return value.date().isoformat() if value is not None else None


def _say_package(app: App, p: Notified, what: str, *, queued: str) -> None:
    """One package's line: sent, queued, or not sent and still queued (why)."""
    if p.state == "sent":
        app.say(f"{what}: sent")
    elif p.error is None:
        app.say(f"{what}: {queued}")
    else:
        app.say(f"{what}: NOT SENT ({p.error.code}); still queued in {p.path}")


def _report(ctx: click.Context, app: App, result: NotifyResult) -> None:
    """Print what was made and where it went; exit with the first send error (the packages stay queued)."""
    for w in result.warnings:
        if not app.json:
            app.warn(f"laxchange: warning: {w}")
    if not app.json:
        for p in result.packages:
            _say_package(app, p, f"{p.message_type} for {p.recipient} ({p.role}): transfer {p.transfer_id}",
                         queued=f"queued in {p.path} (the nightly run, or `laxchange send`, delivers it)")
    err = result.first_error()
    if err is None:
        app.emit(result.to_dict())
        return
    failed = next(p for p in result.packages if p.error is not None)
    if app.json:
        app.write_json({"ok": False, **result.to_dict(), "error": err.to_dict()})
        ctx.exit(err.exit_code)
    raise err.annotated(f"(the package stays queued in the outbox as {failed.path.name}; re-run "
                        f"`laxchange send {failed.path} --to {failed.recipient}` or let the nightly run retry it)",
                        prefix="" if failed.recipient in err.message else f"{failed.recipient}: ")


@click.command("notify-placement")
@click.argument("record", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "to", multiple=True, required=True,
              help="Recipient: the host council (LA:NNN) and/or the placement school (URN:NNNNNN). Repeatable.")
@click.option("--reason", required=True, type=click.Choice(REASONS), help="Why the placement is notified.")
@click.option("--purpose", required=True,
              help="Purpose and lawful basis of the share, for the audit log and the message (no child's details).")
@click.option("--attach", "attachments", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file sent with the PEP to the school, e.g. the signed PEP PDF (repeatable).")
@click.option("--message", help="A note for the recipients, sent with the purpose.")
@click.option("--respond-by", type=_DATE,
              help="Date (YYYY-MM-DD, today or later) the host virtual school is asked to respond by.")
@click.option("--queue-only", is_flag=True, help="Queue in the outbox for the nightly run; send nothing now.")
@_connection_options
@output_options
@click.pass_context
def notify_placement_cmd(ctx: click.Context, record: Path, to: tuple[str, ...], reason: str, purpose: str,
                         attachments: tuple[Path, ...], message: str | None, respond_by: dt.datetime | None,
                         queue_only: bool, timeout: float, retries: int) -> None:
    """Notify a placement: the host virtual school and the school each get only what they need.

    From one education RECORD: a placement-notification for the host council's virtual school
    (LA:NNN, which must be the record's placement.host_la) and a pep-transfer, with any --attach
    files, for the placement school (URN:NNNNNN, which must be the record's school.urn). Each
    carries the record through its recipient's data-minimisation profile (docs/minimisation.md).
    The packages are queued in the outbox as TRANSFER_ID.lax and sent now unless --queue-only.
    """
    app: App = ctx.obj
    doc = package.read_record(record)
    with _party(app, timeout, retries) as me:
        result = notify_placement(me, doc, to=to, reason=reason, purpose=purpose, attachments=attachments,
                                  send=not queue_only, message=message,
                                  respond_by=respond_by.date() if respond_by else None, source=str(record))
    _report(ctx, app, result)


@click.command("notify-exclusion")
@click.argument("record", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "to", help="The responsible VSH (LA:NNN); default: the record's placing council.")
@click.option("--facts", "facts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"JSON file with the exclusion's facts ({', '.join(EXCLUSION_FACTS)}); options override it.")
@click.option("--kind", type=click.Choice(["suspension", "permanent-exclusion"]), help="Suspension or permanent.")
@click.option("--start", type=_DATE, help="First day of the exclusion (YYYY-MM-DD).")
@click.option("--sessions", type=click.IntRange(1, 90), help="Length in half-day sessions.")
@click.option("--reason-code", help="School census reason code, e.g. PD.")
@click.option("--reason-description", help="The reason in words.")
@click.option("--reintegration-meeting", type=_DATE, help="Date of the reintegration meeting (YYYY-MM-DD).")
@click.option("--parents-carers-notified/--parents-carers-not-notified", "notified", default=None,
              help="Whether the parents/carers have been told.")
@click.option("--given-name", help="Without a RECORD: the child's given name.")
@click.option("--family-name", help="Without a RECORD: the child's family name.")
@click.option("--date-of-birth", type=_DATE, help="Without a RECORD: the child's date of birth.")
@click.option("--upn", help="Without a RECORD: the child's UPN.")
@click.option("--local-child-id", help="The responsible council's id for the child.")
@click.option("--responsible-la", help="Without a RECORD: the responsible council's LA code (NNN).")
@click.option("--contact-name", help="Who reports it (default: the record's Designated Teacher).")
@click.option("--contact-role", default="Designated Teacher", show_default=True, help="Their role.")
@click.option("--contact-email", help="Their e-mail address.")
@click.option("--contact-phone", help="Their phone number.")
@click.option("--purpose", default="statutory duty: tell the responsible virtual school head of a looked-after "
                                    "child's suspension or exclusion", show_default=True,
              help="Purpose and lawful basis, for the audit log (no child's details).")
@click.option("--queue-only", is_flag=True, help="Queue in the outbox for the nightly run; send nothing now.")
@_connection_options
@output_options
@click.pass_context
def notify_exclusion_cmd(ctx: click.Context, record: Path | None, to: str | None, facts_file: Path | None,
                         kind: str | None, start: dt.datetime | None, sessions: int | None, reason_code: str | None,
                         reason_description: str | None, reintegration_meeting: dt.datetime | None,
                         notified: bool | None, given_name: str | None, family_name: str | None,
                         date_of_birth: dt.datetime | None, upn: str | None, local_child_id: str | None,
                         responsible_la: str | None, contact_name: str | None, contact_role: str,
                         contact_email: str | None, contact_phone: str | None, purpose: str, queue_only: bool,
                         timeout: float, retries: int) -> None:
    """A school reports a looked-after child's suspension or exclusion to the responsible VSH.

    The child comes from RECORD (an education record, or a received PEP transfer or placement
    notification) or from --given-name, --family-name and --date-of-birth; the exclusion's facts
    from the options or --facts FILE. The notice goes to --to, else the record's placing council;
    a recipient that is not the record's responsible council is warned about.
    """
    app: App = ctx.obj
    facts: dict[str, Any] = {}
    if facts_file is not None:
        loaded = jsonio.load_file(facts_file)
        if not isinstance(loaded, dict):
            raise UsageError(f"{facts_file} must hold a JSON object of the exclusion's facts", code="exclusion.facts",
                             hint=f"keys: {', '.join(EXCLUSION_FACTS)}")
        facts.update(loaded)
    given = {"kind": kind, "start_date": _iso(start), "sessions": sessions, "reason_code": reason_code,
             "reason_description": reason_description, "reintegration_meeting": _iso(reintegration_meeting),
             "notified_parents_carers": notified}
    facts.update({k: v for k, v in given.items() if v is not None})
    child_opts = {"given_name": given_name, "family_name": family_name, "date_of_birth": _iso(date_of_birth),
                  "upn": upn, "local_child_id": local_child_id}
    child = {k: v for k, v in child_opts.items() if v is not None} or None
    if record is None and child is not None and not all(child.get(k) for k in ("given_name", "family_name",
                                                                                  "date_of_birth")):
        raise UsageError("without a RECORD, give --given-name, --family-name and --date-of-birth",
                         code="exclusion.no-child")
    contact: dict[str, Any] | None = None
    if contact_name or contact_email or contact_phone:
        contact = {"name": contact_name or "", "role": contact_role,
                   **({"email": contact_email} if contact_email else {}),
                   **({"phone": contact_phone} if contact_phone else {})}
        if not contact_name or not (contact_email or contact_phone):
            raise UsageError("the reporting contact needs --contact-name and --contact-email or --contact-phone",
                             code="exclusion.no-contact")
    doc = package.read_record(record) if record is not None else None
    with _party(app, timeout, retries) as me:
        result = notify_exclusion(me, facts=facts, record=doc, child=child, responsible_la=responsible_la, to=to,
                                  reported_by=contact, purpose=purpose, send=not queue_only,
                                  source=str(record) if record else "record")
    _report(ctx, app, result)


#: How many refused lines the last line of notify-batch names (all are named above it, one by one).
REFUSED_LISTED = 20


def _batch_report(ctx: click.Context, app: App, result: BatchResult) -> None:
    """Each placement's line and what became of it, then the count; exit with the first refusal's code
    (or the first send error's) when not everything was queued and sent."""
    if not app.json:
        for item in result.items:
            for w in item.warnings:
                app.warn(f"laxchange: warning: line {item.line}: {w}")
            if item.error is not None:
                app.error(f"laxchange: {item.error.message} ({item.error.code})"  # shown with -q too
                         + (f"\n  hint: {item.error.hint}" if item.error.hint else ""))
                continue
            for p in item.packages:
                _say_package(app, p, f"line {item.line}: {p.message_type} for {p.recipient}: transfer {p.transfer_id}",
                             queued="queued")
        queued = len(result.items) - len(result.refused)
        app.say(f"{queued} of {len(result.items)} placements queued ({len(result.packages)} packages)")
    refused = result.refused
    err = refused[0].error if refused else next((p.error for p in result.packages if p.error is not None), None)
    if err is None:
        app.emit(result.to_dict())
        return
    if app.json:
        app.write_json({"ok": False, **result.to_dict(), "error": err.to_dict()})
        ctx.exit(err.exit_code)
    if refused:  # each was named above, with its hint: the last line counts them, not the first again
        shown = ", ".join(str(i.line) for i in refused[:REFUSED_LISTED])
        more = f" and {len(refused) - REFUSED_LISTED} more" if len(refused) > REFUSED_LISTED else ""
        rest = "none is queued" if len(refused) == len(result.items) else "the others are queued"
        raise err.restated(f"{len(refused)} of {len(result.items)} placements refused (line"
                           f"{'s' * (len(refused) > 1)} {shown}{more}, each named above); {rest}",
                           hint="correct the refused lines and submit only those again")
    raise err.annotated("(the packages not sent stay queued in the outbox; the nightly run, or `laxchange send`, "
                        "retries them)")


@click.command("notify-batch")
@click.argument("placements", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--queue-only", is_flag=True, help="Queue in the outbox for the nightly run; send nothing now.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, metavar="N",
              help="Check and pack the placements in N processes (one core each; a large batch on a "
                   "multi-core machine). The results, and the one commit, are the same.")
@_connection_options
@output_options
@click.pass_context
def notify_batch_cmd(ctx: click.Context, placements: Path, queue_only: bool, jobs: int, timeout: float,
                     retries: int) -> None:
    """Notify many placements at once from a JSON Lines file: each line checked, all queued together.

    One placement a line (docs/integrators.md), an object: the record (`record`, or `record_file`
    relative to the file), `to` (a recipient or a list), `reason`, `purpose`, and optionally
    `message` and `respond_by`.
    Each placement is checked on its own, as notify-placement checks one: a bad line is refused,
    naming its line, and the others go ahead. Their packages are queued together, in one ledger
    commit (all or none), and sent now unless --queue-only.
    """
    app: App = ctx.obj
    with _party(app, timeout, retries) as me:
        result = notify_placements(me, read_placements(placements), send=not queue_only, jobs=jobs)
    _batch_report(ctx, app, result)
