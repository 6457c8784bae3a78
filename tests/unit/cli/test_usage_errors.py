"""Issue 10 item 17: with --json (before or after the command name), a parser error is one JSON object on stdout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.cli.app import App
from laxchange.errors import CODES
from laxchange.home import Home

CASES = [
    (["open", "{tmp}/x.lax"], "usage.missing-parameter", "-o"),        # missing option
    (["sample", "no-such-type"], "usage.bad-value", "no-such-type"),    # bad choice
    (["no-such-command"], "usage.unknown-command", "no-such-command"),  # unknown command
    (["keys", "no-such-command"], "usage.unknown-command", "no-such-command"),
    (["open", "/no/such/file.lax", "-o", "out.json"], "usage.bad-value", "/no/such/file.lax"),  # click.Path
    (["status", "--no-such-option"], "usage.unknown-option", "--no-such-option"),
    (["--no-such-option", "status"], "usage.unknown-option", "--no-such-option"),
    (["send", "--timeout", "abc", "x"], "usage.bad-value", "abc"),
    (["keys", "revoke", "KID"], "usage.missing-parameter", "--reason"),
]


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(("args", "code", "mentions"), CASES)
def test_parser_errors_with_json_are_one_json_object(tmp_path: Path, where: str, args: list[str], code: str,
                                                     mentions: str) -> None:
    (tmp_path / "x.lax").write_bytes(b"")
    args = [a.format(tmp=tmp_path) for a in args]
    argv = ["--json", *args] if where == "before" else [*args, "--json"]
    r = CliRunner().invoke(main, ["--home", str(tmp_path), *argv], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    data = json.loads(lines[0])
    assert data["ok"] is False and data["error"] == code and data["exit_code"] == 2
    assert mentions in data["message"] and data["hint"]
    assert code in CODES


@pytest.mark.parametrize(("args", "code", "mentions"), CASES)
def test_parser_errors_without_json_stay_plain(tmp_path: Path, args: list[str], code: str, mentions: str) -> None:
    (tmp_path / "x.lax").write_bytes(b"")
    args = [a.format(tmp=tmp_path) for a in args]
    r = CliRunner().invoke(main, ["--home", str(tmp_path), *args], catch_exceptions=False)
    assert r.exit_code == 2
    assert r.stdout == "" and "Error:" in r.stderr and "{" not in r.stderr


@pytest.mark.parametrize("args", [["--json"], ["--json", "keys"]])
def test_a_group_without_a_command_is_one_json_object(args: list[str]) -> None:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and r.stderr == ""
    data = json.loads(r.stdout)
    assert data["error"] == "usage.missing-command" and data["message"] == "Missing command."


def test_a_callers_app_gets_the_json_error_on_its_stream(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    app = App(home=Home(tmp_path), out=out, err=err)
    (tmp_path / "x.lax").write_bytes(b"")
    code = main.main(["--json", "open", str(tmp_path / "x.lax")], obj=app, standalone_mode=False)
    assert code == 2 and err.getvalue() == ""
    assert json.loads(out.getvalue())["error"] == "usage.missing-parameter"


def test_help_and_success_are_unchanged_with_json(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["--json", "--help"])
    assert r.exit_code == 0 and "Usage:" in r.stdout
    r = CliRunner().invoke(main, ["--json", "schema", "check"])
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True


def test_status_with_an_unknown_state_is_a_usage_error_naming_the_states(tmp_path: Path) -> None:
    """Issue 9 #8: `status --state bogus` said "no transfers yet" instead of refusing the word."""
    from laxchange.cli import main

    result = CliRunner().invoke(main, ["--home", str(tmp_path), "--json", "status", "--state", "bogus"])
    assert result.exit_code == 2
    out = json.loads(result.output)
    assert out["error"] == "usage.bad-value" and "bogus" in out["message"] and "delivered" in out["message"]


@pytest.mark.parametrize(("args", "option", "says"), [
    (["partners", "-q", "list"], "-q", "or at the end: `laxchange partners COMMAND ... -q`"),
    (["keys", "--json", "list"], "--json", "as in `laxchange --json keys COMMAND ...`"),
    (["partners", "--home", "/elsewhere", "list"], "--home", "as in `laxchange --home ... partners COMMAND ...`"),
    (["status", "--home", "/elsewhere"], "--home", "as in `laxchange --home ... status ...`"),
])
def test_a_root_option_after_a_command_says_where_it_goes(tmp_path: Path, args: list[str], option: str,
                                                          says: str) -> None:
    """Not click's "No such option" (for --home, "Did you mean '--help'?"): where the option goes."""
    if option != "--json":  # (--json anywhere asks for the error as JSON)
        r = CliRunner().invoke(main, ["--home", str(tmp_path), *args], prog_name="laxchange", catch_exceptions=False)
        assert r.exit_code == 2 and r.stdout == ""
        assert f"{option} is an option of `laxchange` itself" in r.stderr and says in r.stderr, r.stderr
        assert "Did you mean" not in r.stderr
    r = CliRunner().invoke(main, ["--home", str(tmp_path), *args, "--json"], prog_name="laxchange",
                           catch_exceptions=False)
    data = json.loads(r.stdout)
    assert r.exit_code == 2 and data["error"] == "usage.unknown-option" and says in data["message"]


def test_an_option_nobody_has_is_still_no_such_option(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["--home", str(tmp_path), "partners", "--nope", "list"], catch_exceptions=False)
    assert r.exit_code == 2 and "No such option '--nope'" in r.stderr
