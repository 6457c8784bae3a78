"""The CLI shell: help text documents exit codes; errors never show a traceback."""

from __future__ import annotations

import click
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.errors import EXIT_CODE_TABLE


def test_help_lists_every_exit_code() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for code, text in EXIT_CODE_TABLE:
        assert f"{code:>3}  {text.split(':')[0]}" in result.output


def test_unknown_command_is_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def _leaf_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every leaf command, through click's public API (so a lazily loading group is walked too)."""
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        if isinstance(cmd, click.Group):
            out += _leaf_commands(cmd, f"{prefix}{name} ")
        else:
            out.append((f"{prefix}{name}", cmd))
    return out


def test_every_command_accepts_json_after_its_name() -> None:
    commands = _leaf_commands(main)
    assert len(commands) >= 25
    missing = [name for name, cmd in commands if not any("--json" in p.opts for p in cmd.params)]
    assert missing == []


def test_help_of_every_command_works() -> None:
    for name, _cmd in _leaf_commands(main):
        result = CliRunner().invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, name
