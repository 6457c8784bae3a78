"""`laxchange status` and `laxchange audit`: what was sent and received, and the audit chain."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from laxchange._util.fs import check_output, write_new_atomic
from laxchange._util.jsonio import loads_strict
from laxchange.cli.app import App, needs_home, output_options
from laxchange.errors import ConfigError, SecurityError, UsageError
from laxchange.exchange import transparency
from laxchange.exchange.party import Party
from laxchange.exchange.status import ledger_status
from laxchange.ledger.db import Ledger
from laxchange.ledger.states import Inbound, Outbound
from laxchange.trust import check_party
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
@output_options
@click.pass_obj
def status_cmd(app: App, direction: str | None, state: str | None, record_ref: str | None, party: str | None,
               since: str | None, overdue: bool, html_path: Path | None, force: bool) -> None:
    """Transfers in the ledger: state, message type and pseudonymous record ref (no personal data).

    "What did we share about this child, and with whom?": `laxchange status --record REF`, with
    REF the record's record_id (shown in the REF column and in the record itself).
    """
    from laxchange.cli.deadlines_cmd import (  # holidays, icalendar: only when asked
        check_record_ref,
        deadline_summary,
        summary_line,
    )

    if party is not None:  # a mistyped filter matches nothing, and would look like "nothing here"
        check_party(party)
    if record_ref is not None:
        check_record_ref(record_ref)
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


def _since(text: str, option: str = "--since") -> dt.datetime:
    """`--since` (or `--from`, `--to`): an ISO date (midnight UTC) or date and time (UTC if it names no offset)."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r} is not an ISO date or date and time", code="usage.bad-value",
                         hint=f"give e.g. {option} 2026-11-24 or {option} 2026-11-24T09:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@click.group("audit")
def audit_group() -> None:
    """The append-only audit log of every share: hash chain, Merkle tree, signed checkpoints."""


@audit_group.command("list")
@click.option("--record", "record_ref", default=None, metavar="REF",
              help="Only entries about this record (its record_id, as in `status`).")
@output_options
@click.pass_obj
def audit_list(app: App, record_ref: str | None) -> None:
    """Print the audit log."""
    if record_ref is not None:
        from laxchange.cli.deadlines_cmd import check_record_ref

        check_record_ref(record_ref)
    with Ledger(app.home.ledger_db) as ledger:
        entries = ledger.audit_entries()
    if record_ref is not None:
        entries = [e for e in entries if e["data"].get("record_ref") == record_ref]
    app.emit({"entries": entries}, lambda: "\n".join(
        f"{e['seq']:>5} {e['at']} {e['event']:<16} " + " ".join(f"{k}={v}" for k, v in sorted(e["data"].items()))
        for e in entries) or ("no audit entries about that record" if record_ref is not None else "audit log is empty"))


_RESTORE = "restore the ledger from backup and investigate who changed it"
_VERIFY_HINT = {
    "checkpoint.partner-inconsistent": "that partner's audit log was changed: tell its IT contact, and keep the "
                                       "checkpoint files under HOME/checkpoints/partners/ as evidence; once it is "
                                       "in hand, `laxchange audit acknowledge PARTY KEPT --ref TICKET` "
                                       "(`--json` lists each party and kept file)",
    "checkpoint.refused": "that partner signed into a package or receipt a checkpoint of its log that does not "
                          "verify: tell its IT contact, and keep the file under "
                          "HOME/checkpoints/partners/PARTY/refused/ as evidence; once it is in hand, "
                          "`laxchange audit acknowledge PARTY KEPT --ref TICKET` (`--json` lists each party and "
                          "kept file)",
    "checkpoint.bad-signature": "a kept checkpoint file was altered: restore HOME/checkpoints/ from backup",
    "checkpoint.malformed": "a kept checkpoint file was damaged: restore HOME/checkpoints/ from backup",
}


def _party(app: App) -> Party:
    return Party.from_home(app.home, clock=app.clock)


@audit_group.command("checkpoint")
@output_options
@click.pass_obj
def audit_checkpoint(app: App) -> None:
    """Sign a checkpoint of the audit log now (kept under HOME/checkpoints/own/) and print it."""
    with _party(app) as party:
        made = transparency.make_checkpoint(party)
    app.emit(made.to_dict(), lambda: made.note.rstrip("\n") + f"\n(kept as {made.path})")


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also check against this checkpoint of our log (e.g. the one a partner holds). Repeatable.")
@output_options
@click.pass_obj
def audit_verify(app: App, checkpoints: tuple[Path, ...]) -> None:
    """Check the hash chain, the Merkle tree and every checkpoint of our log; exit 3 if entries were
    changed, removed, reordered or cut off the end."""
    presented = [(f"checkpoint file {p}", p.read_bytes()) for p in checkpoints]
    with _party(app) as party:
        result = transparency.verify(party, presented)
        entries = party.ledger.audit_entries()
    if result.problems:
        first = result.problems[0]
        raise SecurityError("audit log does not verify: " + "; ".join(p.message for p in result.problems),
                            code=first.code, details=result.to_dict(), hint=_VERIFY_HINT.get(first.code, _RESTORE))
    head = entries[-1]["hash"] if entries else None
    data = {**result.to_dict(), "head": head}
    app.emit(data, lambda: (f"audit log intact: {result.entries} entries, head {head}\n"
                            f"tree root {data['root']}; {len(result.checked)} checkpoint(s) of it verified"
                            + ("" if result.checked else
                               "\n(no checkpoint yet: `laxchange audit checkpoint` makes one; partners keep them)")
                            + "".join(f"\nacknowledged {a['at']} ({a['ref']}), still kept: {a['party']} {a['kept']}: "
                                      f"{a['message']}" for a in result.acknowledged)))


@audit_group.command("acknowledge")
@click.argument("party", metavar="PARTY")
@click.argument("kept", metavar="KEPT")
@click.option("--ref", required=True, metavar="TICKET",
              help="Your ticket or incident number for it (letters, digits, . _ / # : -; no description).")
@output_options
@click.pass_obj
def audit_acknowledge(app: App, party: str, kept: str, ref: str) -> None:
    """Record that a partner's checkpoint evidence `audit verify` reports is being dealt with, so
    verify passes again; the file stays kept. KEPT is the file as `audit verify --json` names it."""
    who = check_party(party)
    with _party(app) as me:
        data = transparency.acknowledge(me, who, kept, ref)
    app.emit(data, f"acknowledged {who} {kept} ({ref}): the file stays under "
                   f"HOME/checkpoints/partners/; `audit verify` lists it and passes")


@audit_group.command("prove")
@click.argument("entry", type=click.IntRange(min=1))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the proof to FILE (never replaced) instead of printing it.")
@output_options
@click.pass_obj
def audit_prove(app: App, entry: int, output: Path | None) -> None:
    """Print an inclusion proof of audit ENTRY (its number in `audit list`) that another party can check."""
    if output is not None:
        check_output(output)
    with _party(app) as party:
        doc = transparency.prove(party, entry)
    text = json.dumps(doc, indent=2) + "\n"
    if output is None:
        app.emit(doc, text.rstrip("\n"))
        return
    write_new_atomic(output, text.encode())
    app.emit({"path": str(output), "tree_size": doc["tree_size"]},
             f"inclusion proof of entry {entry} in a log of {doc['tree_size']} entries written to {output}")


@audit_group.command("check-proof")
@click.argument("proof", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output_options
@click.pass_obj
def audit_check_proof(app: App, proof: Path) -> None:
    """Check a proof from `audit prove`: signed by that party's key (from its card), entry included."""
    doc = loads_strict(proof.read_bytes(), source=str(proof))
    with _party(app) as party:
        found = transparency.check_proof(party, doc)
    app.emit(found, f"proof verified: entry {found['seq']} ({found['event']}, {found['at']}) is entry "
                    f"{found['leaf_index'] + 1} of {found['tree_size']} in {found['party']}'s signed audit log")


@audit_group.command("held")
@click.argument("party", metavar="PARTY")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the checkpoint to FILE (never replaced) instead of printing it.")
@output_options
@click.pass_obj
def audit_held(app: App, party: str, output: Path | None) -> None:
    """The newest checkpoint PARTY sent us of its audit log, to hand back for its `audit verify --checkpoint`."""
    who = check_party(party)
    if output is not None:
        check_output(output)
    with _party(app) as me:
        path = transparency.held(me, who)
        kept = len(transparency.partner_store(me, who).paths())
    if path is None:
        raise ConfigError(f"we hold no checkpoint of {who}'s audit log", code="checkpoint.none-held",
                          hint=f"a partner's checkpoints arrive in its receipts (receipt 1.2.0): none has come "
                               f"from {who} yet (`laxchange partners list` shows whom we trust)")
    note = path.read_text(encoding="utf-8")
    if output is not None:
        write_new_atomic(output, note.encode())
    data = {"party": who, "note": note, "kept": kept, "path": str(output) if output else None}
    app.emit(data, f"{who}'s checkpoint written to {output}" if output else note.rstrip("\n"))


@audit_group.command("export")
@click.option("--from", "start", default=None, metavar="DATE", help="Entries written at or after DATE (ISO).")
@click.option("--to", "end", default=None, metavar="DATE",
              help="Entries written at or before DATE (ISO; a date alone means the end of that day).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write to FILE (never replaced) instead of printing.")
@output_options
@click.pass_obj
def audit_export(app: App, start: str | None, end: str | None, fmt: str, output: Path | None) -> None:
    """Export audit entries for a data protection officer (ids, states, hashes: no personal data)."""
    t0 = _since(start, "--from") if start is not None else None
    t1 = _since(end, "--to") if end is not None else None
    if t1 is not None and end is not None and len(end) == 10:
        t1 = t1 + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    if t0 is not None and t1 is not None and t1 < t0:
        raise UsageError(f"--to {end} is before --from {start}", code="usage.bad-value",
                         hint="give the earlier date as --from")
    if output is not None:
        check_output(output)
    with Ledger(app.home.ledger_db) as ledger:
        text = transparency.export(ledger, start=t0, end=t1, fmt=fmt)
    if output is None:
        app.emit(loads_strict(text) if fmt == "json" else {"csv": text}, text.rstrip("\n"))
        return
    write_new_atomic(output, text.encode())
    app.emit({"path": str(output), "format": fmt}, f"audit entries written to {output}")
