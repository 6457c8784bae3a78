"""docs/operations.md: the systemd units and the cron line parse, and run what `laxchange` and `laxchange run`
accept."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

from laxchange.cli import COMMANDS, load_command, main

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(DOC.read_text(encoding="utf-8")) if kind == lang]


def _units() -> dict[str, configparser.ConfigParser]:
    out = {}
    for body in _blocks("ini"):
        first = body.splitlines()[0]
        assert first.startswith("# /etc/systemd/system/"), first
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
        cp.read_string(body)
        out[first.rsplit("/", 1)[1]] = cp
    return out


def _check_laxchange_args(argv: list[str]) -> None:
    """The arguments after the program name are a valid `laxchange ... run ...` command line."""
    assert argv[0].endswith("/laxchange")
    rest = argv[1:]
    assert "run" in rest
    main.make_context("laxchange", [*rest[:rest.index("run")], "run"])  # the root options before `run` exist
    run = load_command(COMMANDS["run"][0])
    known = {o for p in run.params for o in p.opts}
    for arg in rest[rest.index("run") + 1:]:
        if arg.startswith("-"):
            assert arg in known, f"`laxchange run` has no option {arg}"
    run.make_context("run", rest[rest.index("run") + 1:])


def test_service_and_timer_parse_with_the_required_keys() -> None:
    units = _units()
    assert set(units) == {"laxchange-nightly.service", "laxchange-nightly.timer"}
    svc = units["laxchange-nightly.service"]
    assert svc["Service"]["Type"] == "oneshot"
    assert svc["Service"]["User"] == "laxchange" and svc["Service"]["UMask"] == "0077"
    text = DOC.read_text(encoding="utf-8")  # Environment= repeats; strict=False keeps only the last
    assert "Environment=LAXCHANGE_PASSPHRASE_FILE=/etc/laxchange/passphrase" in text
    assert "Environment=LAXCHANGE_HOME=" in text
    _check_laxchange_args(shlex.split(svc["Service"]["ExecStart"]))
    timer = units["laxchange-nightly.timer"]
    assert timer["Timer"]["OnCalendar"]
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "laxchange-nightly.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_cron_line() -> None:
    (body,) = _blocks("cron")
    (line,) = [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]
    fields = line.split(None, 6)
    assert len(fields) == 7 and fields[5] == "laxchange", "five schedule fields, then the user"
    assert all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields[:5])
    command = fields[6]
    assert "%" not in command, "cron turns % into a newline"
    assert command.startswith("umask 077;")
    words = shlex.split(command.split(";", 1)[1].split(">>")[0])
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    assert set(env) == {"LAXCHANGE_HOME", "LAXCHANGE_PASSPHRASE_FILE"}
    _check_laxchange_args([w for w in words if "=" not in w])
