"""`laxchange deadlines`: the statutory clocks per child (docs/deadlines.md). Parses, calls
`laxchange.exchange.clocks` and `laxchange.deadlines`, prints."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import click

from laxchange import deadlines
from laxchange._util.fs import check_output, write_atomic
from laxchange.cli.app import App, needs_home, output_options
from laxchange.clock import SystemClock
from laxchange.errors import LaxError, UsageError
from laxchange.exchange.clocks import home_deadlines
from laxchange.ledger.db import Ledger
from laxchange.trust.keystore import KeyStore

_PERIOD = re.compile(r"(\d{1,4})([dwh]?)")
_REF = re.compile(r"[0-9a-f]{32}|transfer:[0-9a-f]{32}")
_LABEL = {"overdue": "OVERDUE", "due-soon": "due soon", "met": "met", "open": "open"}
_ORDER = {"overdue": 0, "due-soon": 1, "open": 2, "met": 3}


def parse_period(text: str, option: str = "--due-within") -> dt.timedelta:
    """`7d`, `2w`, `48h`, or a bare number of days."""
    m = _PERIOD.fullmatch(text.strip().lower())
    if m is None:
        raise UsageError(f"{option} {text!r} is not a period", code="usage.bad-value",
                         hint=f"give e.g. {option} 7d (days), 2w (weeks) or 48h (hours)")
    n, unit = int(m.group(1)), m.group(2) or "d"
    return {"d": dt.timedelta(days=n), "w": dt.timedelta(weeks=n), "h": dt.timedelta(hours=n)}[unit]


def _as_of(text: str | None) -> dt.datetime:
    if text is None:
        return SystemClock().now()
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--as-of {text!r} is not an ISO date or date and time", code="usage.bad-value",
                         hint="give e.g. --as-of 2026-09-03 (midday in England that day) or 2026-09-03T09:00Z"
                         ) from None
    if len(text.strip()) == 10:  # a date: its middle, in England
        return dt.datetime.combine(when.date(), dt.time(12), tzinfo=deadlines.ENGLAND)
    return when if when.tzinfo else when.replace(tzinfo=deadlines.ENGLAND)


def _me(app: App) -> str | None:
    """Our party id (which school we are, for the PEPs we imported); None in a home without keys."""
    store = KeyStore(app.home)
    return store.ring().party if store.exists() else None


def _paths(records: Path | None, term_dates: Path | None, policy: Path | None, app: App,
           window: dt.timedelta | None = None) -> deadlines.Settings:
    return deadlines.Settings.from_home(app.home, records=records, term_dates=term_dates, policy=policy,
                                        window=window)


def _line(d: dict[str, Any]) -> str:
    tail = f"met by {d['met_by']} on {d['met_at'][:10]}" + (" (LATE)" if d["late"] else "") if d["met_by"] \
        else d["starts"]
    approx = "~" if d["approximate"] else " "
    return (f"{_LABEL[d['state']]:<9} {d['due']:<20}{approx} {d['rule']:<23} {d['record_ref']:<32}  {d['title']} "
            f"({d['length']}; {tail}; {d['source']})")


def human(data: dict[str, Any], *, filtered: bool) -> str:
    items = sorted(data["deadlines"], key=lambda d: (_ORDER[d["state"]], d["due"], d["rule"], d["record_ref"]))
    lines = [_line(d) for d in items]
    c = data["counts"]
    if not items:
        lines.append("no deadlines match" if filtered else
                     "no deadlines: no records here yet (laxchange reads HOME/received/ and the records folder: "
                     "config.json deadlines.records or --records DIR)")
    lines.append(f"{c['overdue']} overdue, {c['due-soon']} due within {data['settings']['due_soon_days']} days, "
                 f"{c['open']} open, {c['met']} met (all records)")
    if not data["term_dates"]:
        lines.append("no term dates: school days are counted as working days (~ marks a date that is approximate); "
                     "set config.json deadlines.term_dates or --term-dates")
    elif data["approximate"]:
        lines.append("~ marks a date counted partly beyond the term dates given (as working days)")
    return "\n".join(lines)


_file = click.Path(dir_okay=False, path_type=Path)


@needs_home("set-up")  # HOME/received/ and the ledger; a records folder in config.json will do without keys
@click.group("deadlines", invoke_without_command=True)
@click.option("--overdue", is_flag=True, help="Only deadlines that have passed unmet.")
@click.option("--due-within", "due_within", metavar="PERIOD", default=None,
              help="Only deadlines not met and due within PERIOD (e.g. 7d, 2w, 48h), overdue ones included.")
@click.option("--record", "record_ref", metavar="REF", default=None,
              help="Only the deadlines of this record (its record_id, as in `status`).")
@click.option("--ics", "ics", type=_file, default=None, metavar="FILE",
              help="Also write the deadlines shown that are not met as an iCalendar file (pseudonymous refs only).")
@click.option("--force", is_flag=True, help="Replace the --ics file if it exists.")
@click.option("--as-of", "as_of", metavar="DATE", default=None,
              help="Show the states as they will be (or were) at DATE (ISO date or date and time) instead of now.")
@click.option("--records", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="The folder of education-record JSON files [default: config.json deadlines.records].")
@click.option("--term-dates", "term_dates", type=_file, default=None, metavar="FILE",
              help="Term dates, .ics or .csv [default: config.json deadlines.term_dates].")
@click.option("--policy", type=_file, default=None, metavar="FILE",
              help="A local deadline policy [default: config.json deadlines.policy].")
@output_options
@click.pass_context
def deadlines_group(ctx: click.Context, overdue: bool, due_within: str | None, record_ref: str | None,
                    ics: Path | None, force: bool, as_of: str | None, records: Path | None, term_dates: Path | None,
                    policy: Path | None) -> None:
    """Statutory deadlines per child (pseudonymous record refs): due, met, overdue, due soon."""
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    within = parse_period(due_within) if due_within is not None else None
    if record_ref is not None:
        check_record_ref(record_ref)
    now = _as_of(as_of)
    if ics is not None:
        check_output(ics, overwrite=force, what="calendar file")
    settings = _paths(records, term_dates, policy, app)
    with Ledger(app.home.ledger_db) as ledger:
        result = home_deadlines(app.home, ledger, me=_me(app), now=now, settings=settings)
    shown = result.select(record=record_ref, overdue=overdue, within=within)
    if ics is not None:
        write_atomic(ics, deadlines.to_ics(shown, now=now, name=f"laxchange deadlines ({_me(app) or app.home.root})"))
    data = result.to_dict(shown)
    if ics is not None:
        data["ics"] = {"file": str(ics), "events": sum(d.met is None for d in shown)}
    for w in result.warnings if not app.json else []:
        app.warn(f"laxchange: warning: {w}")
    filtered = any((overdue, within, record_ref))
    app.emit(data, lambda: human(data, filtered=filtered) + (
        f"\nwrote {data['ics']['events']} events to {ics}" if ics is not None else ""))


@needs_home("none")  # the policy in force; a home's config.json is used if there is one
@deadlines_group.command("policy")
@click.option("--policy", type=_file, default=None, metavar="FILE",
              help="A local deadline policy [default: config.json deadlines.policy].")
@click.option("--term-dates", "term_dates", type=_file, default=None, metavar="FILE",
              help="Term dates, .ics or .csv [default: config.json deadlines.term_dates].")
@output_options
@click.pass_obj
def policy_cmd(app: App, policy: Path | None, term_dates: Path | None) -> None:
    """Print the deadline policy in force: each rule, what starts and meets it, its length and source."""
    settings = _paths(None, term_dates, policy, app) if app.home.root.is_dir() else deadlines.Settings(
        term_dates=term_dates, policy=policy)
    rules, calendar = settings.load()
    terms = calendar.terms
    data: dict[str, Any] = {**rules.to_dict(), "starts": dict(deadlines.STARTS),
                            "satisfied_by": dict(deadlines.SATISFIERS),
                            "term_dates": {"file": terms.source, "from": terms.first.isoformat(),
                                           "to": terms.last.isoformat(), "periods": len(terms.periods)}
                            if terms is not None else None}
    app.emit(data, lambda: _policy_text(rules, data))


def _policy_text(rules: deadlines.Policy, data: dict[str, Any]) -> str:
    lines = [f"deadline policy from: {'; '.join(rules.sources)}"]
    for r in rules.rules:
        mark = {"default": "", "tightened": " [tightened locally]", "local": " [local rule]"}[r.origin]
        lines += [f"{r.id}{mark}: {r.title}",
                  (f"  on: {deadlines.STARTS[r.starts]}" if r.length == 0 else
                   f"  within {r.length_text()} of: {deadlines.STARTS[r.starts]}"),
                  f"  met by: {deadlines.SATISFIERS[r.satisfied_by]}",
                  f"  source: {r.source}"]
        if r.reading:
            lines.append(f"  reading: {r.reading}")
    t = data["term_dates"]
    lines.append(f"term dates: {t['file']} ({t['periods']} terms and breaks, {t['from']} to {t['to']})" if t else
                 "term dates: none (school days are counted as working days and marked approximate)")
    lines.append("transfer clocks (laxchange run, per transfer, not per child): a delivered receipt within 48 hours "
                 "of sending; uncollected after 5 days (config.json run.uncollected_after_days)")
    return "\n".join(lines)


def check_record_ref(ref: str) -> str:
    """A `--record REF` as written, or a UsageError: a mistyped one would match nothing, and look
    like "nothing here"."""
    if not _REF.fullmatch(ref):
        raise UsageError(f"--record {ref!r} is not a record reference", code="usage.bad-value",
                         hint="give the record's record_id: 32 hex digits, as in `laxchange status` and the record")
    return ref


def deadline_summary(app: App, ledger: Ledger, record_ref: str | None) -> tuple[dict[str, Any] | None,
                                                                                 dict[str, Any] | None]:
    """For `status`: the run report's deadlines section (`deadlines.report`, plus `counts` of every state)
    for the home's records (one record's with --record), or None and the error that stopped it."""
    try:
        result = home_deadlines(app.home, ledger, me=_me(app), now=SystemClock().now())
    except LaxError as exc:
        return None, exc.to_dict()
    result.deadlines = result.select(record=record_ref)
    return {**deadlines.report(result), "counts": result.counts(), "due_soon_days": result.settings.window.days}, None


def summary_line(summary: dict[str, Any] | None, error: dict[str, Any] | None) -> str:
    if summary is None:
        return f"deadlines: cannot be worked out: {error['message'] if error else 'unknown error'}"
    c = summary["counts"]
    if not sum(c.values()):
        return "deadlines: none (no records with clocks here)"
    return (f"deadlines: {c['overdue']} overdue, {c['due-soon']} due within {summary['due_soon_days']} days, "
            f"{c['open']} open, {c['met']} met" + (" (some approximate)" if summary["approximate"] else "")
            + "; `laxchange deadlines` lists them")
