"""The CLI shell: help text documents exit codes; errors never show a traceback."""

from __future__ import annotations

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
