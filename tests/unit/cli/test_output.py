"""Colour, progress and -q (issue 14 #4), decided by the App's `isatty` and `env`, handed in here.

Council A and school B on local drop folders; the commands run through `main` with an App whose
streams are StringIO objects that say they are (or are not) a terminal.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from laxchange.cli import main
from laxchange.cli.app import App
from laxchange.cli.progress import Progress
from laxchange.cli.run_cmd import human
from laxchange.home import Home
from tests.support.parties import PASSPHRASE, make_party, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
A, B = "LA:919", "URN:123456"
SGR = re.compile(r"\x1b\[[0-9;]*m")  # a colour or weight: what NO_COLOR forbids (cursor moves are not colour)


class Run:
    """One command's exit code and what it wrote to the App's streams."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def lax(home: Path | str, *args: str, tty: bool = False, env: Mapping[str, str] | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    app = App(home=Home(Path(home)), out=out, err=err, env=dict(env or {}), isatty=lambda _stream: tty)
    r = CliRunner().invoke(main, ["--home", str(home), *args], obj=app, env=ENV)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return Run(r.exit_code, out.getvalue(), err.getvalue())


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path, dict[str, Path]]:
    a = make_party(tmp_path, A, "Example Council (fictional)")
    b = make_party(tmp_path, B, "Example School (fictional)", a.clock)
    a.trust(b)
    b.trust(a)
    drops = {A: tmp_path / "drop-a", B: tmp_path / "drop-b"}
    for party, folder in drops.items():
        folder.mkdir()
        for home in (a.home.root, b.home.root):
            assert lax(home, "endpoints", "add", party, f"file://{folder}").code == 0
    return a.home.root, b.home.root, drops


def _queue(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "pep.json"
    src.write_text(json.dumps(record(4)))
    r = lax(home, "pack", str(src), "--type", "pep-transfer", "--to", B, "-o", str(home / "outbox" / "pep.lax"))
    assert r.code == 0, r.err


# -- colour ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("tty", "env", "flags", "coloured"), [
    (False, {}, [], False),
    (True, {}, [], True),
    (True, {"NO_COLOR": "1"}, [], False),
    (True, {"NO_COLOR": ""}, [], True),  # no-color.org: present *and non-empty*
    (True, {}, ["--no-color"], False),
    (True, {"TERM": "dumb"}, [], False),
])
def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path, tty: bool, env: dict[str, str],
                                                          flags: list[str], coloured: bool) -> None:
    r = lax(tmp_path / "missing", *flags, "status", tty=tty, env=env)
    plain = lax(tmp_path / "missing", "status")
    assert r.code == plain.code == 5 and r.out == ""
    assert bool(SGR.search(r.err)) is coloured
    assert click.unstyle(r.err) == plain.err  # the text reads the same without colour
    assert plain.err.startswith("laxchange: error: laxchange home")


def test_json_is_never_coloured_even_on_a_terminal(tmp_path: Path) -> None:
    r = lax(tmp_path / "missing", "--json", "status", tty=True)
    assert r.code == 5 and r.err == "" and not SGR.search(r.out)
    assert json.loads(r.out)["exit_code"] == 5


def test_only_the_markers_of_lines_that_need_a_look_are_coloured(homes: tuple[Path, Path, dict[str, Path]],
                                                                 tmp_path: Path) -> None:
    a, _b, drops = homes
    _queue(a, tmp_path)
    drops[B].rmdir()  # the school's server is "down": the run needs a look
    r = lax(a, "--json", "run", "--retries", "1")
    assert r.code == 10
    text = human(json.loads(r.out))
    app = App(home=Home(a), env={}, isatty=lambda _stream: True)
    painted = app.paint(text, io.StringIO())
    assert click.unstyle(painted) == text
    styled = re.findall(r"\x1b\[[0-9;]*m([^\x1b]*)\x1b\[0m", painted)
    assert styled and set(styled) == {"FAILED", "needs a look"}


# -- quiet ----------------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [["-q", "-v"], ["--verbose", "--quiet"]])
def test_quiet_and_verbose_together_are_a_usage_error(tmp_path: Path, flags: list[str]) -> None:
    r = CliRunner().invoke(main, [*flags, "sample", "education-record"])
    assert r.exit_code == 2 and r.stdout == ""
    assert "-q/--quiet and -v/--verbose cannot be used together" in r.stderr
    j = CliRunner().invoke(main, ["--json", *flags, "sample", "education-record"])
    assert j.exit_code == 2 and json.loads(j.stdout)["error"] == "usage.bad-option"
    after = CliRunner().invoke(main, ["sample", *flags, "education-record"])
    assert after.exit_code == 2 and after.stdout == "" and "cannot be used together" in after.stderr
    split = CliRunner().invoke(main, [flags[0], "sample", flags[1], "education-record"])
    assert split.exit_code == 2 and split.stdout == "" and "cannot be used together" in split.stderr


@pytest.mark.parametrize("args", [["-q", "run"], ["run", "-q"], ["run", "--quiet"]])
def test_a_quiet_run_with_nothing_to_look_at_prints_nothing(homes: tuple[Path, Path, dict[str, Path]],
                                                            tmp_path: Path, args: list[str]) -> None:
    """-q before the command or after it (as cron lines are often written)."""
    a, _b, _drops = homes
    _queue(a, tmp_path)
    r = lax(a, *args, tty=True)
    assert (r.code, r.out, r.err) == (0, "", "")
    loud = lax(a, "run")  # the same home, not quiet: a report
    assert loud.code == 0 and loud.out.rstrip().endswith("done: all good")


def test_a_quiet_run_that_needs_a_look_prints_only_that(homes: tuple[Path, Path, dict[str, Path]],
                                                        tmp_path: Path) -> None:
    a, _b, drops = homes
    _queue(a, tmp_path)
    drops[B].rmdir()
    r = lax(a, "-q", "run", "--retries", "1")
    assert r.code == 10 and r.err == ""
    lines = r.out.splitlines()
    assert lines[0].startswith("FAILED      list (URN:123456): drop folder") and "[remote.missing]" in lines[0]
    assert lines[1].startswith("  hint: ")
    assert lines[2:] == ["needs a look (exit 10): see the lines in capitals above"]


def test_quiet_drops_warnings_but_never_errors(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    app = App(home=Home(tmp_path), quiet=True, out=out, err=err, env={})
    app.warn("laxchange: warning: a key expires soon")
    app.error("laxchange: error: no such partner")
    app.say("packed it")
    assert (out.getvalue(), err.getvalue()) == ("packed it\n", "laxchange: error: no such partner\n")


# -- progress -------------------------------------------------------------------------------
def _package(a: Path, tmp_path: Path) -> tuple[Path, str]:
    """A PEP package with a 300 KB attachment (big enough for a bar), and its transfer id."""
    src, scan, pkg = tmp_path / "pep.json", tmp_path / "scan.pdf", tmp_path / "pep.lax"
    src.write_text(json.dumps(record(4)))
    scan.write_bytes(b"%PDF-1.4 fictional\n" + b"x" * 300_000)
    r = lax(a, "--json", "pack", str(src), "--type", "pep-transfer", "--to", B, "--attach", str(scan), "-o", str(pkg))
    assert r.code == 0, r.err
    return pkg, json.loads(r.out)["manifest"]["transfer_id"]


def _send(a: Path, tmp_path: Path, *flags: str, tty: bool, env: dict[str, str] | None = None) -> Run:
    pkg = tmp_path / "pep.lax"
    if not pkg.exists():
        _package(a, tmp_path)
    return lax(a, *flags, "send", str(pkg), "--to", B, tty=tty, env=env)


def test_send_draws_a_bar_on_a_terminal_only(homes: tuple[Path, Path, dict[str, Path]], tmp_path: Path) -> None:
    a, _b, _drops = homes
    pkg, tid = _package(a, tmp_path)
    shown = _send(a, tmp_path, tty=True)
    assert shown.code == 0 and f"URN:123456 {tid}.lax" in shown.err and SGR.search(shown.err)
    assert shown.out == f"sent pep.lax as {tid}.lax ({pkg.stat().st_size} bytes) to URN:123456\n"
    hidden = _send(a, tmp_path, tty=False)
    assert (hidden.code, hidden.err, hidden.out) == (0, "", shown.out)


@pytest.mark.parametrize("flags", [["--json"], ["-q"]])
def test_no_bar_with_json_or_quiet(homes: tuple[Path, Path, dict[str, Path]], tmp_path: Path,
                                   flags: list[str]) -> None:
    a, _b, _drops = homes
    r = _send(a, tmp_path, *flags, tty=True)
    assert r.code == 0 and r.err == ""


def test_the_bar_has_no_colour_with_no_color(homes: tuple[Path, Path, dict[str, Path]], tmp_path: Path) -> None:
    a, _b, _drops = homes
    r = _send(a, tmp_path, tty=True, env={"NO_COLOR": "1"})
    assert r.code == 0 and "URN:123456 " in r.err and ".lax" in r.err
    assert not SGR.search(r.err)


def test_run_shows_a_line_per_stage_on_a_terminal(homes: tuple[Path, Path, dict[str, Path]], tmp_path: Path) -> None:
    a, _b, _drops = homes
    _queue(a, tmp_path)
    r = lax(a, "run", tty=True)
    assert r.code == 0
    done = re.findall(r"run (\d)/5 ([a-z]+): done \(\d+\.\ds\)", click.unstyle(r.err))
    assert done == [("1", "housekeeping"), ("2", "partners"), ("3", "import"), ("4", "deadlines"), ("5", "report")]
    assert "done: all good" in r.out and "run 1/5" not in r.out
    assert lax(a, "run").err == ""  # not a terminal: nothing on stderr


def test_a_senders_file_name_cannot_reach_the_terminal_as_control_codes() -> None:
    err = io.StringIO()
    with Progress(err, enabled=True, color=False) as bar:
        bar("URN:123456", "evil\x1b]0;owned\x07.lax", 1, 10)
    assert "\x1b]0;" not in err.getvalue() and "evil?]0;owned?.lax" in err.getvalue()

