"""`laxchange run`: the nightly job (docs/operations.md). Parses, calls `run_nightly`, prints its report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from laxchange import render
from laxchange.cli.app import App, output_options
from laxchange.cli.transport_cmd import _connection_options, _party
from laxchange.errors import ConfigError, ExitCode, LaxError
from laxchange.exchange.inbound import counts_text
from laxchange.exchange.run import DEFAULT_UNCOLLECTED_AFTER, STAGES, run_nightly
from laxchange.home import Home, json_object, load_home_file
from laxchange.render.deadlines import ChildClocks
from laxchange.render.report import run_partner_counts

#: config.json: {"run": {"uncollected_after_days": N}}
CONFIG_KEY = "uncollected_after_days"


def _configured_days(home: Home) -> int | None:
    if not home.config_file.is_file():
        return None
    section = load_home_file(home.config_file, json_object, what="config").get("run", {})
    value = section.get(CONFIG_KEY) if isinstance(section, dict) else None
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 90:
        raise ConfigError(f"{home.config_file}: run.{CONFIG_KEY} must be a whole number of days, 1 to 90",
                          code="config.invalid", hint=f"set it to e.g. 5, or remove it (default "
                                                      f"{DEFAULT_UNCOLLECTED_AFTER.days})")
    return value


def _contact(c: dict[str, Any]) -> str:
    return f"{c.get('name') or 'unknown partner'} ({c['party']})"


def human(data: dict[str, Any], *,
          count_tonight: Callable[[dict[str, Any]], dict[str, dict[str, int]]] = run_partner_counts) -> str:
    """The report as text, from the same dictionary `--json` prints. `count_tonight`: the morning
    report's per-partner counts (given by the tests of what happens when it fails)."""
    lines = [f"laxchange run at {data['started']}"]
    lines += [f"expired     transfer {e['transfer_id']} to {e['party']} (was {e['was']}, expired {e['expires']})"
              for e in data["expired"]]
    lines += [f"pruned      {k['use']} key {k['kid']} ({k['reason']})" for k in data["keys_pruned"]]
    lines += [f"KEY EXPIRES {k['use']} key {k['kid']} on {k['not_after']}: run `laxchange keys rotate` before then"
              for k in data["keys_expiring"]]
    ssh = data.get("ssh_previous_key_only") or []
    lines += [f"SSH KEY     {w['message']} [{w['code']}]\n  hint: {w['hint']}" for w in ssh]
    lines += [f"sent        {s['file']} to {s['party']} ({s['size']} bytes)" for s in data["sent"]]
    imp = data["import"] or {}
    counts = imp.get("counts") or {}
    if imp:
        lines.append("imported    " + (counts_text(counts) or "nothing new"))
        lines += [f"receipt     {r['stage']} ({r['status']}) to {r['to']} for transfer {r['in_reply_to']}"
                  for r in imp.get("receipts_sent", []) if r["sent"]]
        lines += [f"WARNING     {w}" for w in imp.get("warnings", [])]
        lines += [f"WARNING     {w}" for r in imp.get("collected", []) for w in r.get("warnings", [])]
    lines += [f"REJECTED    transfer {r['in_reply_to']}: {r['party']} refused it ({r['stage']} receipt); "
              f"`laxchange status --party {r['party']} --state rejected --json` gives its reason code"
              for r in (i["receipt"] for i in imp.get("items", []) if i.get("receipt")) if r.get("refused")]
    for f in data["failures"]:
        what = f" {f['file']}" if f.get("file") else ""
        who = f["party"] if f["party"] != "?" else "sender unknown"
        lines.append(f"FAILED      {f['step']}{what} ({who}): {f['message']} [{f['code']}]"
                     + (f"\n  hint: {f['hint']}" if f.get("hint") else ""))
    lines += [f"RECEIPT     {r['stage']} receipt from {r['party']} for transfer {r['in_reply_to']} did not apply "
              f"({r['result']})" for r in data["receipt_warnings"]]
    lines += [f"UNCOLLECTED transfer {u['transfer_id']}: still in {u['party']}'s drop folder after {u['days']} days; "
              f"contact {_contact(u['contact'])}" for u in data["uncollected"]]
    lines += [f"OVERDUE     transfer {o['transfer_id']}: collected by {o['party']} but no delivered receipt after "
              f"{o['hours']} hours; contact {_contact(o['contact'])}" for o in data["overdue"]]
    clocks = data.get("deadlines") or {}
    lines += [f"DEADLINE    {d['title']} for record {d['record_ref']}: due {d['due']}, OVERDUE ({d['rule']}, "
              f"{d['source']})" for d in clocks.get("overdue", [])]
    lines += [f"deadline    {d['title']} for record {d['record_ref']}: due {d['due']} ({d['rule']})"
              for d in clocks.get("due_soon", [])]
    lines += [f"deadline    met: {d['title']} for record {d['record_ref']}, by {d['met_by']}"
              + (" (late)" if d.get("late") else "") for d in clocks.get("met", [])]
    if clocks.get("approximate"):
        lines.append("deadline    some dates count school days as working days (no term dates for them: "
                     "config.json deadlines.term_dates)")
    # what this run did, counted by the code that fills the morning report's per-partner table
    lines.append("tonight, by partner (transfers; as the morning report's table):")
    try:  # the report's view builder, which ran only with --report before: a bug there must not cost the text
        tonight = count_tonight(data)
    except Exception as exc:  # the rest of the report is still worth printing
        lines.append(f"  (not counted: {type(exc).__name__}, a bug in laxchange; the lines above and the ledger's "
                     "totals below are complete)")
    else:
        lines += [f"  {who:<11}  " + ", ".join(f"{n} {'duplicate' if what == 'duplicates' and n == 1 else what}"
                                               for what, n in counts.items())
                  for who, counts in tonight.items()]
        if not tonight:
            lines.append("  nothing")
    lines.append("in the ledger, by partner (every transfer so far, receipts included):")
    for who, dirs in sorted(data["counts"].items()):
        parts = [f"{d} " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
                 for d, states in sorted(dirs.items())]
        lines.append(f"  {who:<11} " + "; ".join(parts))
    if not data["counts"]:
        lines.append("  no transfers yet")
    cp = data.get("checkpoint")
    if cp:
        lines.append(f"audit       checkpoint signed: {cp['size']} entr{'y' if cp['size'] == 1 else 'ies'}, "
                     f"root {cp['root']}")
    if not data["complete"]:
        lines.append("needs a look (exit 10): see the lines in capitals above")
    elif ssh:  # working tonight, but not for long: "all good" would hide it
        lines.append("done: nothing failed, but see the SSH KEY warnings above before the previous key is pruned")
    else:
        lines.append("done: all good")
    return "\n".join(lines)


def write_report(app: App, path: Path, data: dict[str, Any], *, force: bool) -> dict[str, Any]:
    """Write the HTML morning report of a run that has happened, from the dictionary `--json` prints.

    A failure to write it (disk full, the file appeared meanwhile, no permission) is reported on
    stderr and in the JSON's `"html"`, never raised: the run already changed the ledger, and its
    own report must still print. The caller exits 10 (needs a look), as for any other problem."""
    try:
        render.write_html(path, render.render_run_report_html(data), force=force, option="--report")
    except LaxError as exc:
        app.error(f"error: the run completed, but its HTML report was not written: {exc.message} [{exc.code}]"
                 + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return {"path": str(path), "written": False, "error": exc.to_dict()}
    app.warn(f"wrote the morning report to {path}")
    return {"path": str(path), "written": True}


@click.command("run")
@click.option("--uncollected-after-days", type=click.IntRange(1, 90), default=None,
              help="Days a sent package may wait in a partner's drop folder before it is reported uncollected "
                   f"[default: config.json run.{CONFIG_KEY}, else {DEFAULT_UNCOLLECTED_AFTER.days}].")
@click.option("--no-collect", is_flag=True, help="Do not collect our drop folder; import only what is in the inbox.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Also write the report as a printable HTML page (the morning report) to FILE.")
@click.option("--force", is_flag=True, default=False, help="Replace the --report FILE if it exists.")
@click.option("--jobs", type=click.IntRange(1, 2), default=1, show_default=True, metavar="N",
              help="2: collect our drop folder in a second process while this one imports what has come "
                   "(two cores; a council with many packages a night). The ledger and the report are the same.")
@_connection_options
@output_options
@click.pass_context
def run_cmd(ctx: click.Context, uncollected_after_days: int | None, no_collect: bool, report_path: Path | None,
            force: bool, jobs: int, timeout: float, retries: int) -> None:
    """The nightly job: housekeeping, send what is queued, import, receipts, deadlines, report."""
    app: App = ctx.obj
    if report_path is not None:
        render.check_output(report_path, force=force, option="--report")  # before the run changes anything
    days = uncollected_after_days or _configured_days(app.home) or DEFAULT_UNCOLLECTED_AFTER.days
    with _party(app, timeout, retries) as me, app.progress(stages=len(STAGES)) as bar:
        clocks = ChildClocks(me)  # the child's statutory clocks on its page
        report = run_nightly(me, collect=not no_collect, uncollected_after=dt.timedelta(days=days),
                             render=lambda record: render.render_record_html(record, clock=me.clock,
                                                                             deadlines=clocks(record)),
                             on_stage=bar.stage, progress=bar, jobs=jobs)
    data = report.to_dict()
    html = write_report(app, report_path, data, force=force) if report_path is not None else None
    ok = report.ok and (html is None or html["written"])
    if app.json:
        app.write_json({"ok": ok, **data, **({"html": html} if html is not None else {})})
    else:  # with -q, the warnings that have a date (a key expiring, a server on our previous SSH key) still show
        app.report(human(data), ok=ok and not data["keys_expiring"] and not data.get("ssh_previous_key_only"))
    if not ok:
        ctx.exit(ExitCode.PARTIAL)
