"""The `laxchange` command: a thin click shell over the library API.

Each command family lives in its own module here as module-level click commands, which only
parse arguments, call the library and print through the `App` (`laxchange.cli.app`). The root
group imports a command's module only when that command is used. Errors from the library
(`LaxError`) become a one-paragraph message and the documented exit code; any other exception
is exit 70, with its traceback only under `--verbose`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from laxchange import __version__
from laxchange.cli.app import App, guard_home
from laxchange.errors import EXIT_CODE_TABLE, ExitCode, Interrupted, LaxError, Terminated
from laxchange.home import ENV_HOME, Home, default_home
from laxchange.logs import ROOT as LOG_ROOT
from laxchange.logs import log_event, open_log_file

# Start-up speed: `laxchange --help` and `--version` must not pay for paramiko, cryptography,
# jsonschema or pydantic. So this module names the commands without importing them, and a command's
# module (with the library it needs) is imported only when that command is looked up to run or to
# show its own help. These lazy imports are for speed only, not to dodge layering: the CLI sits on
# top of everything and may import any of it.

#: Every top-level command: name -> ("module:attribute" of a module-level click command or group,
#: its one-line help). The help is the first line of the command's docstring, kept here so the
#: root --help can list commands without importing them; tests/unit/cli/test_lazy.py checks they
#: agree. One line per command; one module per command family keeps merges easy.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("laxchange.cli.validate_cmd:validate_command",
                 "Validate records and messages: JSON Schema, then domain rules."),
    "schema": ("laxchange.cli.schema_cmd:schema_group",
               "The versioned JSON Schemas (draft 2020-12) that define every record and message."),
    "sample": ("laxchange.cli.sample_cmd:sample_command",
               "Generate TYPE: fictional children, real code lists, valid check letters."),
    "demo": ("laxchange.cli.demo_cmd:demo_command",
             "Run the demo with fictional children: notify a placement, import the PEP, receipts, refuse tampering."),
    "send": ("laxchange.cli.transport_cmd:send_cmd",
             "Deliver package files to a partner's drop folder (atomically; retried safely)."),
    "withdraw": ("laxchange.cli.transport_cmd:withdraw_cmd",
                 "Take back a queued package before it is sent: never sent, kept in outbox/withdrawn/."),
    "collect": ("laxchange.cli.transport_cmd:collect_cmd",
                ("Fetch files partners left for us into the inbox; remote copies move to processed/ once ours is "
                 "safe.")),
    "serve-sftp": ("laxchange.cli.transport_cmd:serve_sftp_cmd",
                   ("Run an embedded SFTP server (key auth only, each partner confined to its own folder) "
                    "until interrupted.")),
    "endpoints": ("laxchange.cli.transport_cmd:endpoints",
                  "Partners' drop folders and pinned host keys: from their cards, or overrides in config.json."),
    "init": ("laxchange.cli.keys_cmd:init",
             "Create this party's keys (encryption, signing, SSH) in the home directory."),
    "keys": ("laxchange.cli.keys_cmd:keys",
             "Our own keys: list, rotate, revoke, prune, change the passphrase, export our card."),
    "partners": ("laxchange.cli.keys_cmd:partners",
                 "The partner directory: cards we trust."),
    "pack": ("laxchange.cli.package_cmd:pack_cmd",
             "Validate RECORD, sign it and encrypt it for one partner into a .lax package."),
    "open": ("laxchange.cli.package_cmd:open_cmd",
             "Verify and decrypt a .lax package addressed to us; write the record only if all checks pass."),
    "quarantine": ("laxchange.cli.package_cmd:quarantine_group",
                   "Packages that failed verification: kept with the reason, never deleted, never imported."),
    "inspect": ("laxchange.cli.package_cmd:inspect_cmd",
                "Show a package's routing manifest without decrypting it."),
    "status": ("laxchange.cli.ledger_cmd:status_cmd",
               "Transfers in the ledger: state, message type and pseudonymous record ref (no personal data)."),
    "audit": ("laxchange.cli.ledger_cmd:audit_group",
              "The append-only audit log of every share: hash chain, Merkle tree, signed checkpoints."),
    "import": ("laxchange.cli.inbound_cmd:import_cmd",
               "Collect from our drop folder, verify, write each message into HOME/received/ and send receipts."),
    "received": ("laxchange.cli.inbound_cmd:received_group",
                 "Imported transfers in HOME/received/: list, show, export (the package is not opened again)."),
    "receipt": ("laxchange.cli.inbound_cmd:receipt_cmd",
                "Send the signed second-stage receipt for an imported TRANSFER (--applied: it is in our MIS)."),
    "run": ("laxchange.cli.run_cmd:run_cmd",
            "The nightly job: housekeeping, send what is queued, import, receipts, deadlines, report."),
    "export": ("laxchange.cli.export_cmd:export_cmd",
               "Export a record as a school MIS loads it: a partial CTF (--ctf) or CSV tables (--csv)."),
    "records": ("laxchange.cli.records_cmd:records_group",
                "Education records from a spreadsheet (CSV): the template, and from-csv."),
    "doctor": ("laxchange.cli.doctor_cmd:doctor_cmd",
               "Check the home: permissions, expiring keys, partners' servers, our drop folder, ledger, disk, clock."),
    "render": ("laxchange.cli.render_cmd:render_cmd",
               "Write a readable, printable HTML PEP from a record (JSON) or a .lax package (verified first)."),
    "deadlines": ("laxchange.cli.deadlines_cmd:deadlines_group",
                  "Statutory deadlines per child (pseudonymous record refs): due, met, overdue, due soon."),
    "notify-placement": ("laxchange.cli.notify_cmd:notify_placement_cmd",
                         "Notify a placement: the host virtual school and the school each get only what they need."),
    "notify-batch": ("laxchange.cli.notify_cmd:notify_batch_cmd",
                     "Notify many placements at once from a JSON Lines file: each line checked, all queued together."),
    "notify-exclusion": ("laxchange.cli.notify_cmd:notify_exclusion_cmd",
                         "A school reports a looked-after child's suspension or exclusion to the responsible VSH."),
}


def load_command(spec: str) -> click.Command:
    """Import "module:attribute" and return the click command it names, guarded (`guard_home`)."""
    module, _, attr = spec.partition(":")
    cmd = getattr(importlib.import_module(module), attr)
    if not isinstance(cmd, click.Command):
        raise TypeError(f"{spec} is not a click command")
    return guard_home(cmd)  # each command refuses a missing or uninitialised home unless it says otherwise


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented LazyGroup pattern).

    `lazy_commands` maps a name to ("module:attribute", one-line help). Listing the commands
    (`--help`) uses the one-line help and imports nothing; looking one up imports its module.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, tuple[str, str]] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(load_command(self.lazy_commands[cmd_name][0]), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's own, but a command not yet imported is shown from its one-line help."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None and name in self.lazy_commands:
                # A stand-in, so click shortens the text exactly as it would the real command's.
                cmd = click.Command(name, help=self.lazy_commands[name][1])
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


_EXIT_HELP = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODE_TABLE)

EPILOG = f"""\b
Exit codes:
{_EXIT_HELP}

\b
State directory: --home DIR, else ${ENV_HOME}, else ~/.local/share/laxchange.
Every command accepts --json, -q and -v before the command or at the end of it (`laxchange run -q`).
Colour only on a terminal, never with --no-color or NO_COLOR set; progress bars only on a terminal.
--log-file appends ids-only JSON events (docs/operations.md, "Logs") for a SIEM.
"""


#: Legacy spelling of --verbose, still honoured (set to any non-empty value).
ENV_DEBUG = "LAXCHANGE_DEBUG"


class LaxGroup(LazyGroup):
    """Maps LaxError (and any unexpected exception) to a message and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            rv = super().invoke(ctx)
        except LaxError as exc:
            _report_error(ctx, exc.to_dict(), exc.exit_code)
        except click.exceptions.Exit as exc:
            _log_finished(ctx, exc.exit_code)
            raise
        except click.ClickException as exc:
            better = _misplaced_root_option(ctx, exc) if isinstance(exc, click.NoSuchOption) else None
            _log_finished(ctx, exc.exit_code, _click_error(exc)["error"])
            if better is not None:
                raise better from None
            raise
        except click.exceptions.Abort:
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (`Terminated`, from `_terminate`)
            if signal.getsignal(signal.SIGTERM) is _terminate:  # a second SIGTERM now ends it at once
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            kind = exc if isinstance(exc, Interrupted) else Interrupted()
            notes = getattr(exc, "__notes__", [])
            info = {"error": kind.code, "kind": type(kind).__name__,
                    "message": "stopped by SIGTERM" if isinstance(kind, Terminated) else "interrupted",
                    "hint": " ".join(notes) if notes else
                    "what was done is kept; run the command again, or let the next nightly run finish it",
                    "exit_code": kind.exit_code}
            _report_error(ctx, info, kind.exit_code)
        except Exception as exc:  # no traceback unless asked for with --verbose; exit 70 either way
            app = _app(ctx)
            verbose = app.verbose or bool(ctx.params.get("verbose")) or bool(os.environ.get(ENV_DEBUG))
            if verbose:
                import traceback

                app.error("".join(traceback.format_exception(exc)).rstrip("\n"))
            info = {
                "error": "internal.error",
                "kind": type(exc).__name__,
                "message": f"internal error: {type(exc).__name__}: {exc}",
                "hint": ("this is a bug in laxchange; please report it with the traceback above" if verbose else
                         "this is a bug in laxchange; re-run with --verbose and report the traceback"),
                "exit_code": ExitCode.INTERNAL,
            }
            _report_error(ctx, info, ExitCode.INTERNAL)
        _log_finished(ctx, 0)
        return rv

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """As click's, but with --json anywhere on the line a parser error (missing option, bad value,
        unknown command or option, no such file) is one JSON object on stdout, exit 2, nothing else."""
        argv = list(sys.argv[1:] if args is None else args)
        if args is None and threading.current_thread() is threading.main_thread():
            # the real command line (not a caller's or a test's in-process call)
            _handle_sigterm()
            try:
                return self._main(argv, prog_name, complete_var, standalone_mode, **extra)
            except SystemExit as exc:
                if exc.code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
                    _exit_now(int(exc.code))
                raise
        return self._main(argv, prog_name, complete_var, standalone_mode, **extra)

    def _main(self, argv: list[str], prog_name: str | None, complete_var: str | None, standalone_mode: bool,
              **extra: Any) -> Any:
        if not _wants_json(argv):
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            obj = extra.get("obj")
            out = obj.out if isinstance(obj, App) else sys.stdout
            click.echo(json.dumps({"ok": False, **_click_error(exc)}, ensure_ascii=False), file=out)
            rv = exc.exit_code
        except click.exceptions.Abort:
            if standalone_mode:
                click.echo("Aborted!", file=sys.stderr)
            rv = 1
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _exit_now(code: int) -> None:
    """End an interrupted command at once, once it has unwound and said so: not waiting, as the
    interpreter's exit would, for worker threads still in a network step (a handshake with a
    silent server holds one for its whole timeout). What they leave is what a kill leaves, which
    the next run finishes (docs/import.md, "Crash safety")."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@functools.cache
def _children_default() -> None:
    """Once per process: forked children get the default SIGTERM back (`_handle_sigterm`)."""
    os.register_at_fork(after_in_child=_default_sigterm)


def _handle_sigterm() -> None:
    """SIGTERM raises `Terminated` in this (the main) thread: a service stop unwinds as Ctrl-C does,
    says so, logs `command.finished` (exit 143) and leaves what was half done as Ctrl-C would. Our
    forked children (workers, the background collector) go back to the default, ending at once:
    what they hold is the parent's to clean up, as before. A second SIGTERM while unwinding
    interrupts the unwinding; SIGKILL remains the last word, and crash safety its answer."""
    signal.signal(signal.SIGTERM, _terminate)
    _children_default()


#: Click's parser errors as reason codes, most specific class first (MissingParameter is a BadParameter).
_CLICK_CODES: list[tuple[type[click.ClickException], str]] = [
    (click.MissingParameter, "usage.missing-parameter"),
    (click.NoSuchOption, "usage.unknown-option"),
    (click.BadOptionUsage, "usage.bad-option"),
    (click.BadArgumentUsage, "usage.bad-argument"),
    (click.BadParameter, "usage.bad-value"),
]


#: Plain click.UsageErrors told apart by the start of click's message (no class of their own).
_MESSAGE_CODES: dict[str, str] = {"No such command": "usage.unknown-command",
                                  "Missing command": "usage.missing-command"}


#: Root options also accepted after a command's own name (`output_options`).
_ANYWHERE = frozenset(("--json", "-q", "--quiet", "-v", "--verbose"))


def _misplaced_root_option(root: click.Context, exc: click.NoSuchOption) -> click.NoSuchOption | None:
    """A root option given after a command's name where that command does not take it
    (`laxchange partners --json list`, `laxchange status --home DIR`): say where it goes, instead
    of click's "No such option" (and, for --home, its "Did you mean '--help'?")."""
    name, ctx = exc.option_name, exc.ctx
    if ctx is None or ctx.parent is None:
        return None
    if not any(name in p.opts or name in p.secondary_opts for p in root.command.params):
        return None
    prog, path = root.command_path, ctx.command_path
    rest = path[len(prog):].strip() + (" COMMAND ..." if isinstance(ctx.command, click.Group) else " ...")
    value = "" if name in _ANYWHERE else " ..."
    where = f"right after `{prog}`, as in `{prog} {name}{value} {rest}`"
    if name in _ANYWHERE and isinstance(ctx.command, click.Group):
        where += f", or at the end: `{prog} {rest} {name}`"
    return click.NoSuchOption(name, f"{name} is an option of `{prog}` itself, not of `{path}`: put it {where}",
                              ctx=ctx)


def _wants_json(argv: list[str]) -> bool:
    """--json anywhere before a `--` (root option or the command's own)."""
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


def _click_error(exc: click.ClickException) -> dict[str, Any]:
    """A click parser error in the same shape as a LaxError's `to_dict()`."""
    code = next((c for cls, c in _CLICK_CODES if isinstance(exc, cls)), "usage.invalid")
    message = exc.format_message()
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group run with nothing after it: click's message is its help
        message = "Missing command."
    if code == "usage.invalid":
        code = next((c for start, c in _MESSAGE_CODES.items() if message.startswith(start)), code)
    ctx = getattr(exc, "ctx", None)
    info: dict[str, Any] = {"error": code, "kind": "UsageError", "message": message, "exit_code": exc.exit_code,
                            "hint": f"see `{ctx.command_path} --help`" if ctx is not None else "see `laxchange --help`"}
    param = getattr(exc, "param", None)
    if param is not None and param.name:
        info["details"] = {"parameter": param.name}
    return info


def _app(ctx: click.Context) -> App:
    """The command's App; a default one (standard streams) if the failure came before it existed."""
    app = ctx.find_object(App)
    return app if app is not None else App(home=Home(default_home()))


def _report_error(ctx: click.Context, info: dict[str, Any], code: int) -> None:
    app = _app(ctx)
    if app.json:
        app.write_json({"ok": False, **info})
    else:
        app.error(f"laxchange: error: {info['message']}" + (f"\n  hint: {info['hint']}" if info.get("hint") else ""))
    _log_finished(ctx, code, info.get("error"))
    ctx.exit(code)


_log = logging.getLogger("laxchange.cli")


def _log_finished(ctx: click.Context, exit_code: int | None, code: object = None) -> None:
    """The `command.finished` log event (ids only: the command's name, exit code and reason code)."""
    log_event(_log, "command.finished", logging.INFO if not exit_code else logging.WARNING,
              command=ctx.invoked_subcommand, exit_code=exit_code or 0, code=code)


def _log_file(ctx: click.Context, app: App, path: Path) -> None:
    """--log-file: every log event of this command appended to `path` as JSON lines, until it ends."""
    handler = open_log_file(path)
    logger = logging.getLogger(LOG_ROOT)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(logging.INFO, logger.getEffectiveLevel()))

    def close() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()

    ctx.call_on_close(close)


@click.group(cls=LaxGroup, lazy_commands=COMMANDS, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="laxchange")
@click.option("--home", "home", type=click.Path(file_okay=False, path_type=str), default=None,
              help=f"State directory (default ${ENV_HOME} or ~/.local/share/laxchange).")
@click.option("--json", "json_out", is_flag=True, default=False, help="Machine-readable JSON output.")
@click.option("-v", "--verbose", is_flag=True, default=False,
              help="On an internal error (exit 70), also print the traceback.")
@click.option("-q", "--quiet", is_flag=True, default=False,
              help="Only errors and the result (a `run` with nothing to look at prints nothing); not with -v.")
@click.option("--no-color", is_flag=True, default=False,
              help="No colour (also when NO_COLOR is set; there is none unless the output is a terminal).")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="PATH",
              help="Append JSON log events (ids only, never personal data) to PATH, created 0600.")
@click.pass_context
def main(ctx: click.Context, home: str | None, json_out: bool, verbose: bool, quiet: bool, no_color: bool,
         log_file: Path | None) -> None:
    """laxchange: send a looked-after child's education record securely between councils and schools."""
    if quiet and verbose:
        raise click.BadOptionUsage("quiet", "-q/--quiet and -v/--verbose cannot be used together: choose one",
                                   ctx=ctx)
    # paramiko logs dropped connections at ERROR; without a handler Python would print them to stderr
    # next to laxchange's own one-line message. (Naming the logger does not import paramiko.)
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    app = App(home=Home(Path(home) if home else default_home()), json=json_out, verbose=verbose, quiet=quiet,
              no_color=no_color)
    if isinstance(ctx.obj, App):  # a caller's App (`main.main(args, obj=App(...))`) brings its streams, terminal
        app.out, app.err, app.env, app.isatty = ctx.obj.out, ctx.obj.err, ctx.obj.env, ctx.obj.isatty  # and clock
        app.clock = ctx.obj.clock
    ctx.obj = app
    if log_file is not None:
        _log_file(ctx, app, log_file)
        log_event(_log, "command.started", command=ctx.invoked_subcommand)



def run() -> None:  # pragma: no cover - convenience for `python -m laxchange`
    sys.exit(main())
