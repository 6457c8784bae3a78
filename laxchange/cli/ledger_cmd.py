"""`laxchange status` and `laxchange audit`: what was sent and received, and the audit chain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from laxchange.cli.app import App, json_option, needs_home
from laxchange.errors import SecurityError, UsageError
from laxchange.exchange.status import ledger_status
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import Inbound, Outbound
from laxchange.trust.directory import PartnerDirectory


@needs_home("set-up")  # like `deadlines`: a records-only home (config.json) shows its deadlines
@click.command("status")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None)
@click.option("--state", default=None, help="Only transfers in this state (e.g. sent, imported).",
              type=click.Choice(sorted({s.value for s in (*Outbound, *Inbound)})))
@click.option("--record", "record_ref", default=None, metavar="REF",
              help="Only transfers of this record (its record_id, the pseudonymous REF column).")
@click.option("--party", default=None, metavar="PARTY", help="Only transfers to or from this party, e.g. URN:123456.")
@click.option("--since", default=None, metavar="DATE",
              help="Only transfers changed at or after DATE (ISO date, or date and time; UTC unless it says).")
@click.option("--overdue", is_flag=True, help="Only transfers sent 48 hours ago or more with no delivered receipt.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also write what is shown as a printable HTML page (the morning report) to FILE.")
@click.option("--force", is_flag=True, default=False, help="Replace the --html FILE if it exists.")
@json_option
@click.pass_obj
def status_cmd(app: App, direction: str | None, state: str | None, record_ref: str | None, party: str | None,
               since: str | None, overdue: bool, html_path: Path | None, force: bool) -> None:
    """Transfers in the ledger: state, message type and pseudonymous record ref (no personal data).

    "What did we share about this child, and with whom?": `laxchange status --record REF`, with
    REF the record's record_id (shown in the REF column and in the record itself).
    """
    from laxchange.cli.deadlines_cmd import deadline_summary, summary_line  # holidays, icalendar: only when asked

    after = _since(since) if since is not None else None
    if html_path is not None:
        from laxchange import render  # only for --html: jinja2 and the record models are slow to import

        render.check_output(html_path, force=force, option="--html")
    with Ledger(app.home.ledger_db) as ledger:
        data = ledger_status(ledger, direction=direction, state=state, party=party, record_ref=record_ref,
                             since=after, overdue=overdue, directory=PartnerDirectory(app.home))
        clocks, clocks_error = deadline_summary(app, ledger, record_ref)
    data["deadlines"] = clocks
    if clocks_error:
        data["deadlines_error"] = clocks_error
    filtered = any(f for f in (direction, state, record_ref, party, since, overdue))
    if html_path is not None:  # written before anything is printed: a failure leaves no partial output
        render.write_html(html_path, render.render_status_html(data, filtered=filtered), force=force,
                          option="--html")
        app.warn(f"wrote the status report to {html_path}")
    for w in data["warnings"] if not app.json else []:  # on stderr, so the table stays one row per transfer
        app.warn(f"warning: {w['at']} a receipt from {w['party']} for transfer {w['in_reply_to']} did not apply: "
                 f"{w['why']} ({w['event']})")
    if not app.json:  # on stderr too: the statutory clocks of the records these transfers carry
        app.warn(summary_line(clocks, clocks_error))
    empty = "no transfers match" if filtered else "no transfers yet"
    app.emit(data, lambda: _status_table(data["transfers"]) or empty)


def _status_table(rows: list[dict[str, Any]]) -> str:
    """One line per transfer under a header (empty when there are none)."""
    if not rows:
        return ""
    line = "{:<20}  {:<3} {:<12} {:<12} {:<24} {:<32} {}"
    out = [line.format("UPDATED", "DIR", "STATE", "PARTY", "MESSAGE", "RECORD REF", "TRANSFER")]
    out += [line.format(r["updated"], r["direction"], r["state"], r["party"], r["message_type"] or "-",
                        r["record_ref"] or "-", r["transfer_id"]) for r in rows]
    return "\n".join(out)


def _since(text: str) -> dt.datetime:
    """`--since`: an ISO date (midnight UTC) or date and time (UTC if it names no offset)."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is not an ISO date or date and time", code="usage.bad-value",
                         hint="give e.g. --since 2026-11-24 or --since 2026-11-24T09:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@click.group("audit")
def audit_group() -> None:
    """The append-only, hash-chained audit log of every share."""


@audit_group.command("list")
@click.option("--record", "record_ref", default=None, metavar="REF",
              help="Only entries about this record (its record_id, as in `status`).")
@json_option
@click.pass_obj
def audit_list(app: App, record_ref: str | None) -> None:
    """Print the audit log."""
    with Ledger(app.home.ledger_db) as ledger:
        entries = ledger.audit_entries()
    if record_ref is not None:
        entries = [e for e in entries if e["data"].get("record_ref") == record_ref]
    app.emit({"entries": entries}, lambda: "\n".join(
        f"{e['seq']:>5} {e['at']} {e['event']:<16} " + " ".join(f"{k}={v}" for k, v in sorted(e["data"].items()))
        for e in entries) or ("no audit entries about that record" if record_ref is not None else "audit log is empty"))


@audit_group.command("verify")
@json_option
@click.pass_obj
def audit_verify(app: App) -> None:
    """Check the hash chain; exit 3 if any past entry was changed, removed or reordered."""
    with Ledger(app.home.ledger_db) as ledger:
        problems = ledger.verify_audit()
        entries = ledger.audit_entries()
    if problems:
        raise SecurityError("audit log does not verify: " + "; ".join(problems), code="audit.broken",
                            hint="restore the ledger from backup and investigate who changed it")
    head = entries[-1]["hash"] if entries else None
    app.emit({"entries": len(entries), "head": head},
             f"audit log intact: {len(entries)} entries, head {head}\n"
             "(keep the head hash elsewhere: truncating the log's newest entries is only detectable against it)")
