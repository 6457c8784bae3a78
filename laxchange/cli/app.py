"""Shared CLI state and output helpers.

Every command prints through its `App` (`emit`, `say`, `report`, `warn`, `write_json`), never with
bare `click.echo`/`print`, so tests and library callers can hand in their own `out` and `err`
streams, and so the global output options (`--json`, `-q`, `-v`, `--no-color`; set once, in the
root command) mean the same in every command:

- colour only on a terminal, never with `--no-color`, `--json`, a non-empty `NO_COLOR`
  (https://no-color.org) or `TERM=dumb`; only the markers of lines that need a look are coloured
  (`FAILED`, `QUARANTINED`, `laxchange: error:`, `warning:`, ...), so the text reads the same without;
- progress bars (`progress()`) only when stderr is a terminal, and never with `--json` or `-q`;
- `-q`: errors and the result only (`warn` is silent, a `report` keeps only what needs a look).

Whether a stream is a terminal and what the environment says are asked of `isatty` and `env`,
which tests hand in.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO, TypeVar

import click

from laxchange.cli.progress import Progress
from laxchange.clock import Clock, SystemClock
from laxchange.home import Home


def _stdout() -> TextIO:
    # Looked up when the App is made, not at import, so CliRunner's and pytest's swaps are seen.
    # (click.get_text_stream is deprecated from click 8.5; click.echo does the same with sys.stdout.)
    return sys.stdout


def _stderr() -> TextIO:
    return sys.stderr


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream is no terminal
        return False


#: Markers that need a look, in the order they are tried: (pattern whose group 1 is the marker, style).
_ERROR = {"fg": "red", "bold": True}
_WARNING = {"fg": "yellow", "bold": True}
_MARKERS: list[tuple[re.Pattern[str], dict[str, Any]]] = [
    (re.compile(r"^(laxchange: error:|error:|FAILED|QUARANTINED|NOT SENT|NOT COLLECTED)"), _ERROR),
    (re.compile(r"^.*?: (INVALID|NOT SENT)\b"), _ERROR),
    (re.compile(r"^\s*(laxchange: warning:|warning:|WARNING|UNCOLLECTED|OVERDUE|KEY EXPIRES|SSH KEY|"
                r"RECEIPT|needs a look)"), _WARNING),
]


def _marker(line: str) -> tuple[re.Match[str], dict[str, Any]] | None:
    for pattern, style in _MARKERS:
        m = pattern.match(line)
        if m is not None:
            return m, style
    return None


def _needing_a_look(lines: Iterable[str]) -> list[str]:
    """The marked lines, each with the indented lines under it (its hint)."""
    out: list[str] = []
    keep = False
    for line in lines:
        if _marker(line) is not None:
            keep = True
        elif not line[:1].isspace():
            keep = False
        if keep:
            out.append(line)
    return out


@dataclass
class App:
    """What every command gets: the home directory, the output options, the output streams and the clock."""

    home: Home
    json: bool = False
    verbose: bool = False
    out: TextIO = field(default_factory=_stdout)
    err: TextIO = field(default_factory=_stderr)
    extra: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False
    no_color: bool = False
    #: the environment (NO_COLOR, TERM) and the terminal test; tests hand in their own
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    isatty: Callable[[TextIO], bool] = _isatty
    _live: Progress | None = field(default=None, init=False, repr=False)
    #: The clock commands run by. Only a program can set another one (`main.main(args, obj=App(..., clock=...))`,
    #: as the tests do): there is deliberately no option or variable that moves it, since expiry depends on it.
    clock: Clock = field(default_factory=SystemClock)

    def color(self, stream: TextIO) -> bool:
        """Colour on `stream`? Only on a terminal, and never with --json, --no-color, NO_COLOR or TERM=dumb."""
        return (not self.json and not self.no_color and not self.env.get("NO_COLOR")
                and self.env.get("TERM") != "dumb" and self.isatty(stream))

    def paint(self, text: str, stream: TextIO) -> str:
        """`text` with the marker of each line that needs a look coloured, when `stream` takes colour."""
        if not self.color(stream):
            return text
        lines = []
        for line in text.split("\n"):
            found = _marker(line)
            if found is not None:
                m, style = found
                a, b = m.span(1)
                line = line[:a] + click.style(line[a:b], **style) + line[b:]
            lines.append(line)
        return "\n".join(lines)

    def emit(self, data: dict[str, Any], human: str | Callable[[], str] | None = None) -> None:
        """Print `data` as one JSON object with --json, else the human text."""
        if self.json:
            self.write_json({"ok": True, **data})
        elif human is not None:
            text = human() if callable(human) else human
            if text:
                self.say(text)

    def write_json(self, obj: dict[str, Any]) -> None:
        """One JSON object on one line of `out`, exactly as given (no "ok" added)."""
        click.echo(json.dumps(obj, ensure_ascii=False, default=str), file=self.out)

    def say(self, text: str, *, nl: bool = True, err: bool = False) -> None:
        """Human text on `out` (or on `err` with err=True)."""
        stream = self.err if err else self.out
        if err and self._live is not None and nl:
            self._live.print(self.paint(text, stream))
            return
        click.echo(self.paint(text, stream), file=stream, nl=nl, color=self.color(stream))

    def report(self, text: str, *, ok: bool) -> None:
        """A multi-line report on `out` whose last line says how it went. With -q: nothing when `ok`,
        else only the lines that need a look (with their hints) and the last line."""
        if self.quiet:
            if ok:
                return
            lines = text.splitlines()
            text = "\n".join([*_needing_a_look(lines[:-1]), *lines[-1:]])
        self.say(text)

    def warn(self, text: str) -> None:
        """A warning or a note on `err` (a retry, a key about to expire); silent with -q."""
        if not self.quiet:
            self.say(text, err=True)

    def error(self, text: str) -> None:
        """An error message on `err`, whatever the options."""
        self.say(text, err=True)

    @property
    def shows_progress(self) -> bool:
        """Progress bars only on a terminal's stderr, and never with --json or -q."""
        return not self.json and not self.quiet and self.isatty(self.err)

    @contextlib.contextmanager
    def progress(self, *, stages: int = 0) -> Iterator[Progress]:
        """A progress display for a `with` block: call it as a transport `progress` callback, and its
        `stage` as a run's `on_stage` (`stages`: how many). Draws nothing unless `shows_progress`;
        `warn` and `error` go through it while it is drawn, so bars and lines do not tear each other."""
        with Progress(self.err, enabled=self.shows_progress, color=self.color(self.err), stages=stages) as bar:
            self._live = bar if bar.enabled else None
            try:
                yield bar
            finally:
                self._live = None


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json`, `-q/--quiet` and `-v/--verbose` accepted after the command name too (`laxchange run -q`,
    `laxchange validate --json FILE`): people put them at the end, and cron lines are written that way."""

    def _flag(name: str) -> Callable[[click.Context, click.Parameter, bool], bool]:
        def _set(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
            app = ctx.find_object(App)
            if value and app is not None:
                setattr(app, name, True)
                if app.quiet and app.verbose:
                    raise click.BadOptionUsage("quiet", "-q/--quiet and -v/--verbose cannot be used together: "
                                               "choose one", ctx=ctx)
            return value
        return _set

    f = click.option("-v", "--verbose", "verbose_flag", is_flag=True, expose_value=False, is_eager=True,
                     callback=_flag("verbose"), help="On an internal error (exit 70), also print the traceback.")(f)
    f = click.option("-q", "--quiet", "quiet_flag", is_flag=True, expose_value=False, is_eager=True,
                     callback=_flag("quiet"), help="Only errors and the result; not with -v.")(f)
    return click.option("--json", "json_flag", is_flag=True, expose_value=False, is_eager=True,
                        callback=_flag("json"), help="Machine-readable JSON output.")(f)


# -- what a command needs of the home ---------------------------------------------------------
#
# A command that reads a home must refuse a missing or uninitialised one (exit 5, with a hint)
# rather than report it "empty": a mistyped --home must not look like a home with no partners.
# So that no command can forget, this is checked in one place, `guard_home`, which `load_command`
# applies to every command before it runs. A command needs an initialised home unless it says
# otherwise with `@needs_home(...)`.

#: "initialised": `laxchange init` made its keyring (the default); "set-up": a transport-only home
#: is enough (config.json endpoints or the SSH client key, without our package keys); "none": the
#: command makes the home, or uses none, or checks it itself (`init`, `validate`, `doctor`, ...).
HomeNeed = Literal["initialised", "set-up", "none"]
_NEED = "_laxchange_home_need"
_GUARDED = "_laxchange_home_guarded"
F = TypeVar("F", bound=Callable[..., Any])


def needs_home(level: HomeNeed) -> Callable[[F], F]:
    """Declare what a command needs of the home (on its function, or on the click command)."""

    def mark(f: F) -> F:
        target = f.callback if isinstance(f, click.Command) else f
        setattr(target, _NEED, level)
        return f

    return mark


def home_needs(cmd: click.Command, name: str | None = None,
               inherited: HomeNeed = "initialised") -> list[tuple[str, click.Command, HomeNeed]]:
    """Every command in `cmd` (itself, or a group's commands all the way down) with its name
    ("keys list") and what it needs of the home: its own `needs_home`, else its group's, else
    "initialised". A group that runs by itself too (`invoke_without_command`) is one of them."""
    level: HomeNeed = getattr(cmd.callback, _NEED, inherited)
    path = name or cmd.name or ""
    if not isinstance(cmd, click.Group):
        return [(path, cmd, level)]
    own = [(path, cmd, level)] if cmd.invoke_without_command else []
    return own + [row for sub_name, sub in sorted(cmd.commands.items())
                  for row in home_needs(sub, f"{path} {sub_name}", level)]


def guard_home(cmd: click.Command) -> click.Command:
    """Make every command in `cmd` (a command, or a group and all below it) check the home with
    `Home.require` before it runs. After argument parsing, so a usage error is still exit 2."""
    for _, leaf, level in home_needs(cmd):
        _guard(leaf, level)
    return cmd


def _guard(cmd: click.Command, level: HomeNeed) -> None:
    callback = cmd.callback
    if callback is None or level == "none" or getattr(callback, _GUARDED, False):
        return

    @functools.wraps(callback)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        app = ctx.find_object(App)
        # a group's own callback also runs before each of its commands, which are guarded themselves
        if app is not None and not (isinstance(cmd, click.Group) and ctx.invoked_subcommand is not None):
            app.home.require(level)
        return callback(*args, **kwargs)

    setattr(guarded, _GUARDED, True)
    cmd.callback = guarded
