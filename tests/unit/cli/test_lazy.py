"""The root group lists commands without importing them, and its table cannot drift from them."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from laxchange.cli import COMMANDS, LazyGroup, load_command, main

HEAVY = ("paramiko", "cryptography", "jsonschema", "jsonschema_rs", "pydantic", "rich")

_PROBE = """
import json, runpy, sys
sys.argv = ["laxchange", *sys.argv[1:]]
try:
    runpy.run_module("laxchange", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_table_help_is_the_commands_docstring_first_line(name: str) -> None:
    spec, short = COMMANDS[name]
    cmd = load_command(spec)
    assert cmd.name == name
    assert cmd.help is not None
    assert short == cmd.help.splitlines()[0]


def test_table_lists_every_command_the_modules_define() -> None:
    """A command added to a module but not to the table would be unreachable."""
    modules = {spec.partition(":")[0] for spec, _ in COMMANDS.values()}
    specs = {spec for spec, _ in COMMANDS.values()}
    for module in modules:
        mod = sys.modules.get(module) or __import__(module, fromlist=["_"])
        # a group's subcommand may share a top-level name (`received export` and `export`)
        sub = {id(c) for obj in vars(mod).values() if isinstance(obj, click.Group) for c in obj.commands.values()}
        top = {f"{module}:{attr}" for attr, obj in vars(mod).items()
               if isinstance(obj, click.Command) and obj.name in COMMANDS and id(obj) not in sub}
        assert top <= specs, top - specs


def _commands_section(group: click.Group) -> str:
    ctx = click.Context(group, info_name="laxchange")
    formatter = ctx.make_formatter()
    group.format_commands(ctx, formatter)
    return formatter.getvalue()


def test_listing_is_the_same_before_and_after_loading() -> None:
    lazy = LazyGroup("laxchange", lazy_commands=COMMANDS)
    before = _commands_section(lazy)
    assert lazy.commands == {}  # listing imported nothing
    ctx = click.Context(lazy)
    for name in lazy.list_commands(ctx):
        assert lazy.get_command(ctx, name) is not None
    assert set(lazy.commands) == set(COMMANDS)
    assert _commands_section(lazy) == before
    assert all(f"  {name} " in before for name in COMMANDS)


def test_root_group_is_lazy() -> None:
    assert main.list_commands(click.Context(main)) == sorted(COMMANDS)


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_no_heavy_library(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=False,
                          timeout=60)
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    assert info["code"] in (0, None), proc.stderr
    assert "laxchange" in proc.stdout
    loaded = [m for m in info["modules"] if m.split(".")[0] in HEAVY]
    assert loaded == []
    commands = [m for m in info["modules"] if m.startswith("laxchange.cli.") and m.endswith("_cmd")]
    assert commands == []


def test_a_command_imports_only_its_own_module() -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE, "schema", "--help"], capture_output=True, text=True,
                          check=False, timeout=60)
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    assert info["code"] in (0, None), proc.stderr
    commands = [m for m in info["modules"] if m.startswith("laxchange.cli.") and m.endswith("_cmd")]
    assert commands == ["laxchange.cli.schema_cmd"]
