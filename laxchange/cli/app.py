"""Shared CLI state and output helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from laxchange.home import Home


@dataclass
class App:
    """What every command gets: the home directory and the output mode."""

    home: Home
    json: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def emit(self, data: dict[str, Any], human: str | Callable[[], str] | None = None) -> None:
        """Print `data` as one JSON object with --json, else the human text."""
        if self.json:
            click.echo(json.dumps({"ok": True, **data}, ensure_ascii=False, default=str))
        elif human is not None:
            text = human() if callable(human) else human
            if text:
                click.echo(text)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` accepted after the command name too (`laxchange validate --json FILE`)."""

    def _set(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        app = ctx.find_object(App)
        if value and app is not None:
            app.json = True
        return value

    return click.option("--json", "json_flag", is_flag=True, expose_value=False, is_eager=True,
                        callback=_set, help="Machine-readable JSON output.")(f)
