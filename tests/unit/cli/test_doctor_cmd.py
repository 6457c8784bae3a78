"""`laxchange doctor` on the command line: a line per check, the fix under each problem, --json, exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner

from laxchange.cli import main
from laxchange.clock import FixedClock
from laxchange.exchange import ConfigEndpoints
from laxchange.transport import Endpoint
from tests.support.parties import PASSPHRASE, make_party

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def lax(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), env=ENV)
    return r.exit_code, r.stdout, r.stderr


def test_a_healthy_home_says_all_passed_and_exits_0(tmp_path: Path) -> None:
    me = make_party(tmp_path, "LA:919", "Example Council (fictional)",
                    FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    drop = tmp_path / "drop"
    drop.mkdir()
    ConfigEndpoints(me.home).add(Endpoint("LA:919", f"file://{drop}"))
    code, out, err = lax("--home", str(me.home.root), "doctor")
    lines = out.splitlines()
    assert code == 0 and err == "", out
    assert lines[0] == f"laxchange doctor: {me.home.root}"
    assert all(line.startswith("ok    ") for line in lines[1:-1]) and len(lines) == 18
    assert lines[-1] == "all 16 checks passed" and "fix:" not in out


def test_a_missing_home_is_one_failing_line_with_its_fix_and_exit_5(tmp_path: Path) -> None:
    code, out, _ = lax("--home", str(tmp_path / "typo"), "doctor")
    assert code == 5
    assert out.splitlines()[1:] == [
        f"FAIL  home  laxchange home {tmp_path / 'typo'} does not exist",
        (f"            fix: run `laxchange --home DIR init --party LA:NNN --name ...` first, or check --home / "
         f"$LAXCHANGE_HOME (is {tmp_path / 'typo'} the right folder?)"),
        "1 problem (1 error, 0 warnings): exit 5"]
    code, out, _ = lax("--json", "--home", str(tmp_path / "typo"), "doctor")
    data = json.loads(out)
    assert code == 5 and data["ok"] is False and data["exit_code"] == 5 and data["errors"] == 1
    assert [(c["id"], c["details"]["code"]) for c in data["checks"]] == [("home", "home.missing")]
    assert not (tmp_path / "typo").exists()


def test_the_timeout_is_bounded(tmp_path: Path) -> None:
    code, out, _ = lax("--json", "--home", str(tmp_path), "doctor", "--timeout", "0")
    assert code == 2 and json.loads(out)["error"] == "usage.bad-value"


def test_an_openssh_endpoint_without_ssh_on_path_is_named_with_its_fix(tmp_path: Path) -> None:
    me = make_party(tmp_path, "LA:919", "Example Council (fictional)",
                    FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    ConfigEndpoints(me.home).add(Endpoint("URN:123456", "sftp://u@127.0.0.1:1/x", ("SHA256:" + "A" * 43,),
                                          backend="openssh"))
    r = CliRunner().invoke(main, ["--home", str(me.home.root), "doctor", "--json"],
                           env={**ENV, "PATH": str(tmp_path / "no-ssh-here")})
    (check,) = [c for c in json.loads(r.stdout)["checks"] if c["id"] == "ssh-client"]
    assert r.exit_code != 0 and not check["ok"] and check["details"]["openssh_endpoints"] == ["URN:123456"]
    assert "`ssh` is not on PATH" in check["message"] and "openssh-client" in check["hint"]
