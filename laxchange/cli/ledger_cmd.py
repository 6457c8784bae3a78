"""`laxchange status` and `laxchange audit`: what was sent and received, and the audit chain."""

from __future__ import annotations

import click

from laxchange.cli.app import App, json_option
from laxchange.errors import SecurityError
from laxchange.exchange.receipts import receipt_warnings
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import Inbound, Outbound


@click.command("status")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None)
@click.option("--state", default=None, help="Only transfers in this state (e.g. sent, imported).",
              type=click.Choice(sorted({s.value for s in (*Outbound, *Inbound)})))
@json_option
@click.pass_obj
def status_cmd(app: App, direction: str | None, state: str | None) -> None:
    """Transfers in the ledger and their state (ids and parties only, no personal data)."""
    app.home.require()
    with Ledger(app.home.ledger_db) as ledger:
        rows = ledger.transfers(direction=direction, state=state)
        warnings = receipt_warnings(ledger)
    for w in warnings if not app.json else []:  # on stderr, so the table stays one row per transfer
        app.warn(f"warning: {w['at']} a receipt from {w['party']} for transfer {w['in_reply_to']} did not apply: "
                 f"{w['why']} ({w['event']})")
    app.emit({"transfers": [r.to_dict() for r in rows], "warnings": warnings}, lambda: "\n".join(
        f"{r.updated}  {r.direction:<3} {r.state:<12} {r.party:<12} {r.transfer_id}" for r in rows)
        or ("no transfers in that state" if state or direction else "no transfers yet"))


@click.group("audit")
def audit_group() -> None:
    """The append-only, hash-chained audit log of every share."""


@audit_group.command("list")
@json_option
@click.pass_obj
def audit_list(app: App) -> None:
    """Print the audit log."""
    app.home.require()
    with Ledger(app.home.ledger_db) as ledger:
        entries = ledger.audit_entries()
    app.emit({"entries": entries}, lambda: "\n".join(
        f"{e['seq']:>5} {e['at']} {e['event']:<16} " + " ".join(f"{k}={v}" for k, v in sorted(e["data"].items()))
        for e in entries) or "audit log is empty")


@audit_group.command("verify")
@json_option
@click.pass_obj
def audit_verify(app: App) -> None:
    """Check the hash chain; exit 3 if any past entry was changed, removed or reordered."""
    app.home.require()
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
