"""Shared CLI state and output helpers.

Every command prints through its `App` (`emit`, `say`, `warn`, `write_json`), never with bare
`click.echo`/`print`, so tests and library callers can hand in their own `out` and `err` streams.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

from laxchange.clock import Clock, SystemClock
from laxchange.home import Home


def _stdout() -> TextIO:
    # Looked up when the App is made, not at import, so CliRunner's and pytest's swaps are seen.
    # (click.get_text_stream is deprecated from click 8.5; click.echo does the same with sys.stdout.)
    return sys.stdout


def _stderr() -> TextIO:
    return sys.stderr


@dataclass
class App:
    """What every command gets: the home directory, the output mode, the output streams and the clock."""

    home: Home
    json: bool = False
    verbose: bool = False
    out: TextIO = field(default_factory=_stdout)
    err: TextIO = field(default_factory=_stderr)
    extra: dict[str, Any] = field(default_factory=dict)
    #: The clock commands run by. Only a program can set another one (`main.main(args, obj=App(..., clock=...))`,
    #: as the tests do): there is deliberately no option or variable that moves it, since expiry depends on it.
    clock: Clock = field(default_factory=SystemClock)

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
        click.echo(text, file=self.err if err else self.out, nl=nl)

    def warn(self, text: str) -> None:
        """A line on `err`: warnings, progress notes, error messages."""
        click.echo(text, file=self.err)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` accepted after the command name too (`laxchange validate --json FILE`)."""

    def _set(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        app = ctx.find_object(App)
        if value and app is not None:
            app.json = True
        return value

    return click.option("--json", "json_flag", is_flag=True, expose_value=False, is_eager=True,
                        callback=_set, help="Machine-readable JSON output.")(f)
