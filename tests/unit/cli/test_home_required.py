"""Every command that reads a home refuses a missing or uninitialised one (exit 5, with a hint)
instead of reporting it empty: walked over every registered command, so a new one cannot forget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from laxchange.cli import COMMANDS, load_command, main
from laxchange.cli.app import HomeNeed, home_needs

ENV = {"LAXCHANGE_PASSPHRASE": "correct horse battery staple"}


def _all() -> list[tuple[str, click.Command, HomeNeed]]:
    return [row for name, (spec, _) in sorted(COMMANDS.items()) for row in home_needs(load_command(spec), name)]


ALL = _all()

#: Commands that need no home, each for a reason: they make one (init, endpoints add, endpoints
#: ssh-key, demo), use none (validate, schema, sample, serve-sftp, records), use one only if present
#: or only for some inputs, checked by the command (inspect: the partner directory; render: a
#: package; export: a transfer id; deadlines policy: config.json), or report on it themselves
#: (doctor). Adding one here is a decision a reviewer sees.
NO_HOME = {"deadlines policy", "demo", "doctor", "endpoints add", "endpoints ssh-key", "export", "init", "inspect",
           "records from-csv", "records template", "render", "sample", "schema build", "schema check",
           "schema export", "schema list", "schema migrate", "schema show", "serve-sftp", "validate"}
#: A home without our package keys will do for these: a transport-only one (config.json endpoints,
#: an SSH key), or for deadlines and status one whose config.json names a records folder.
SET_UP = {"collect", "deadlines", "endpoints list", "endpoints remove", "send", "status"}


def test_the_exemptions_are_the_reviewed_ones() -> None:
    assert {name for name, _, need in ALL if need == "none"} == NO_HOME
    assert {name for name, _, need in ALL if need == "set-up"} == SET_UP
    assert len(ALL) > len(NO_HOME) + len(SET_UP) + 20  # the walk found the commands below groups too


def _value(param: click.Parameter, tmp: Path) -> str:
    """A value the parser accepts; the home check comes before the command uses it."""
    kind = param.type
    if isinstance(kind, click.Path):
        if not kind.exists:
            return str(tmp / "new-output")
        return str(tmp) if not kind.file_okay else str(_input(tmp))
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.IntRange | click.FloatRange):
        return str(kind.min if kind.min is not None else 1)
    if isinstance(kind, click.DateTime):
        return "2026-11-24"
    return "LA:919"


def _input(tmp: Path) -> Path:
    path = tmp / "input.json"
    path.write_text("{}\n")
    return path


def _args(cmd: click.Command, tmp: Path) -> list[str]:
    args: list[str] = []
    for p in cmd.params:
        if isinstance(p, click.Argument) and p.required:
            args.append(_value(p, tmp))
        elif isinstance(p, click.Option) and p.required:
            args += [p.opts[0], _value(p, tmp)]
    return args


def _run(home: Path, name: str, cmd: click.Command, tmp: Path) -> tuple[int, dict[str, Any]]:
    r = CliRunner().invoke(main, ["--json", "--home", str(home), *name.split(), *_args(cmd, tmp)], env=ENV)
    return r.exit_code, json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}


NEEDING = [(name, cmd) for name, cmd, need in ALL if need != "none"]


@pytest.mark.parametrize(("name", "cmd"), NEEDING, ids=[n for n, _ in NEEDING])
def test_a_missing_home_is_refused_and_not_created(name: str, cmd: click.Command, tmp_path: Path) -> None:
    home = tmp_path / "mistyped-home"
    code, out = _run(home, name, cmd, tmp_path)
    assert code == 5 and out["error"] == "home.missing", out
    assert str(home) in out["message"] and "--home" in out["hint"]
    assert not home.exists()


@pytest.mark.parametrize(("name", "cmd"), NEEDING, ids=[n for n, _ in NEEDING])
def test_a_folder_that_is_not_a_home_is_refused_and_left_empty(name: str, cmd: click.Command, tmp_path: Path) -> None:
    home = tmp_path / "some-folder"
    home.mkdir()
    code, out = _run(home, name, cmd, tmp_path)
    assert code == 5 and out["error"] == "keyring.missing", out
    assert "init" in out["hint"] and "--home" in out["hint"]
    assert list(home.iterdir()) == []


INITIALISED = [(name, cmd) for name, cmd, need in ALL if need == "initialised"]


@pytest.mark.parametrize(("name", "cmd"), INITIALISED, ids=[n for n, _ in INITIALISED])
def test_a_transport_only_home_is_refused_where_our_keys_are_needed(name: str, cmd: click.Command,
                                                                    tmp_path: Path) -> None:
    home = tmp_path / "transport-only"
    home.mkdir()
    (home / "config.json").write_text('{"endpoints": {}}\n')
    code, out = _run(home, name, cmd, tmp_path)
    assert code == 5 and out["error"] == "keyring.missing" and "not an initialised" in out["message"], out
    assert sorted(p.name for p in home.iterdir()) == ["config.json"]


def test_a_transport_only_home_is_enough_for_the_transport_commands(tmp_path: Path) -> None:
    home = tmp_path / "transport-only"
    r = CliRunner().invoke(main, ["--home", str(home), "endpoints", "add", "LA:919", f"file://{tmp_path}"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["--json", "--home", str(home), "endpoints", "list"])
    assert r.exit_code == 0 and json.loads(r.stdout)["endpoints"][0]["party"] == "LA:919"


def test_without_json_the_refusal_is_a_message_and_a_hint(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["--home", str(tmp_path / "nope"), "partners", "list"])
    assert r.exit_code == 5 and r.stdout == ""
    assert r.stderr.startswith(f"laxchange: error: laxchange home {tmp_path / 'nope'} does not exist\n  hint: ")
    assert "No partners" not in r.output
