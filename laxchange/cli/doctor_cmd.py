"""`laxchange doctor`: parse, call `laxchange.doctor.run_checks`, print one line per check."""

from __future__ import annotations

from typing import Any

import click

from laxchange.cli.app import App, needs_home, output_options
from laxchange.doctor import run_checks
from laxchange.passphrase import default_passphrase_source

_MARK = {"info": "ok  ", "warning": "WARN", "error": "FAIL"}


def human(data: dict[str, Any]) -> str:
    """The report as text, from the same dictionary `--json` prints: one line per check, and under
    each problem the fix."""
    width = max(len(c["id"]) for c in data["checks"])
    lines = [f"laxchange doctor: {data['home']}"]
    for c in data["checks"]:
        lines.append(f"{_MARK[c['severity']] if not c['ok'] else _MARK['info']}  {c['id']:<{width}}  {c['message']}")
        if not c["ok"] and c["hint"]:
            lines.append(f"{'':6}{'':<{width}}  fix: {c['hint']}")
    n = data["errors"] + data["warnings"]
    if n == 0:
        lines.append(f"all {len(data['checks'])} checks passed")
    else:
        lines.append(f"{n} problem{'s' if n != 1 else ''} ({data['errors']} error{'s' if data['errors'] != 1 else ''}, "
                     f"{data['warnings']} warning{'s' if data['warnings'] != 1 else ''}): exit {data['exit_code']}")
    return "\n".join(lines)


@needs_home("none")  # a missing or uninitialised home is its first check (and exit 5)
@click.command("doctor")
@click.option("--timeout", type=click.FloatRange(0.5, 60), default=5.0, show_default=True,
              help="Seconds allowed for each step of connecting to a partner's server (all are checked at once).")
@output_options
@click.pass_context
def doctor_cmd(ctx: click.Context, timeout: float) -> None:
    """Check the home: permissions, expiring keys, partners' servers, our drop folder, ledger, disk, clock.

    One line per check, with the fix under each problem. Partners' servers are checked in parallel:
    reachable, and presenting the host key pinned from their card (no login, so no passphrase is
    needed for them). Our own drop folder gets a hidden test file, removed at once (that login uses
    our SSH key: LAXCHANGE_PASSPHRASE / LAXCHANGE_PASSPHRASE_FILE, else a prompt). The ledger is
    opened read-only. Exit 0 when every check passes, 10 when any found a problem (a warning such
    as a key expiring within 30 days too), 5 when there is no initialised home to check.
    """
    app: App = ctx.obj
    report = run_checks(app.home, passphrase=default_passphrase_source(), timeout=timeout)
    data = report.to_dict()
    if app.json:
        app.write_json({"ok": report.ok, **data})
    else:
        app.say(human(data))
    if report.exit_code:
        ctx.exit(report.exit_code)
