"""The `laxchange` command: a thin click shell over the library API.

Each command group lives in its own module here and only parses arguments, calls the library
and prints. Errors from the library (`LaxError`) become a one-paragraph message and the
documented exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from typing import Any

import click

from laxchange import __version__
from laxchange.cli.app import App
from laxchange.errors import EXIT_CODE_TABLE, ExitCode, LaxError
from laxchange.home import ENV_HOME, Home, default_home

#: Every top-level command: name -> "module:attribute" of a module-level click command or group.
#: One line per command; one module per command family keeps merges easy.
COMMANDS: dict[str, str] = {
    "validate": "laxchange.cli.validate_cmd:validate_command",
    "schema": "laxchange.cli.schema_cmd:schema_group",
    "sample": "laxchange.cli.sample_cmd:sample_command",
    "demo": "laxchange.cli.demo_cmd:demo_command",
    "send": "laxchange.cli.transport_cmd:send_cmd",
    "collect": "laxchange.cli.transport_cmd:collect_cmd",
    "serve-sftp": "laxchange.cli.transport_cmd:serve_sftp_cmd",
    "endpoints": "laxchange.cli.transport_cmd:endpoints",
    "init": "laxchange.cli.keys_cmd:init",
    "keys": "laxchange.cli.keys_cmd:keys",
    "partners": "laxchange.cli.keys_cmd:partners",
    "pack": "laxchange.cli.package_cmd:pack_cmd",
    "open": "laxchange.cli.package_cmd:open_cmd",
    "quarantine": "laxchange.cli.package_cmd:quarantine_group",
    "inspect": "laxchange.cli.package_cmd:inspect_cmd",
    "status": "laxchange.cli.ledger_cmd:status_cmd",
    "audit": "laxchange.cli.ledger_cmd:audit_group",
}

_EXIT_HELP = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODE_TABLE)

EPILOG = f"""\b
Exit codes:
{_EXIT_HELP}

\b
State directory: --home DIR, else ${ENV_HOME}, else ~/.local/share/laxchange.
Every command accepts --json (before or after the command name) for machine-readable output.
"""


class LaxGroup(click.Group):
    """Maps LaxError (and any unexpected exception) to a message and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LaxError as exc:
            _report_error(ctx, exc.to_dict(), exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("laxchange: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # no traceback for users, ever
            if os.environ.get("LAXCHANGE_DEBUG"):
                raise
            info = {
                "error": "internal",
                "kind": type(exc).__name__,
                "message": f"internal error: {type(exc).__name__}: {exc}",
                "hint": "this is a bug in laxchange; re-run with LAXCHANGE_DEBUG=1 and report the traceback",
                "exit_code": ExitCode.INTERNAL,
            }
            _report_error(ctx, info, ExitCode.INTERNAL)


def _report_error(ctx: click.Context, info: dict[str, Any], code: int) -> None:
    app = ctx.find_object(App)
    if app is not None and app.json:
        click.echo(json.dumps({"ok": False, **info}, ensure_ascii=False))
    else:
        click.echo(f"laxchange: error: {info['message']}", err=True)
        if info.get("hint"):
            click.echo(f"  hint: {info['hint']}", err=True)
    ctx.exit(code)


@click.group(cls=LaxGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="laxchange")
@click.option("--home", "home", type=click.Path(file_okay=False, path_type=str), default=None,
              help=f"State directory (default ${ENV_HOME} or ~/.local/share/laxchange).")
@click.option("--json", "json_out", is_flag=True, default=False, help="Machine-readable JSON output.")
@click.pass_context
def main(ctx: click.Context, home: str | None, json_out: bool) -> None:
    """laxchange: send a looked-after child's education record securely between councils and schools."""
    from pathlib import Path

    ctx.obj = App(home=Home(Path(home) if home else default_home()), json=json_out)


def _load(spec: str) -> click.Command:
    module, _, attr = spec.partition(":")
    cmd = getattr(importlib.import_module(module), attr)
    if not isinstance(cmd, click.Command):
        raise TypeError(f"{spec} is not a click command")
    return cmd


for _name, _spec in COMMANDS.items():
    main.add_command(_load(_spec), _name)

# paramiko logs dropped connections at ERROR; without a handler Python would print them to stderr
# next to laxchange's own one-line message. (Naming the logger does not import paramiko.)
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def run() -> None:  # pragma: no cover - convenience for `python -m laxchange`
    sys.exit(main())
