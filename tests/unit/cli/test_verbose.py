"""An internal error exits 70 with one message; --verbose (or legacy LAXCHANGE_DEBUG) adds the traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from laxchange import samples
from laxchange.cli import main


@pytest.fixture()
def broken(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(samples, "generate", boom)


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, [*args, "sample", "education-record"], env={"LAXCHANGE_DEBUG": "", **(env or {})})


def test_internal_error_has_no_traceback_and_points_at_verbose(broken: None) -> None:
    r = _run()
    assert r.exit_code == 70
    assert "Traceback" not in r.output
    assert "laxchange: error: internal error: RuntimeError: simulated bug" in r.stderr
    assert "re-run with --verbose" in r.stderr


@pytest.mark.parametrize("flag", ["--verbose", "-v"])
def test_verbose_prints_the_traceback_and_still_exits_70(broken: None, flag: str) -> None:
    r = _run(flag)
    assert r.exit_code == 70
    assert r.exception is None or isinstance(r.exception, SystemExit)  # nothing re-raised
    assert r.stderr.startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError("simulated bug")' in r.stderr
    assert r.stderr.rstrip().endswith("hint: this is a bug in laxchange; please report it with the traceback above")
    assert r.stdout == ""


def test_legacy_env_variable_works_like_verbose(broken: None) -> None:
    r = _run(env={"LAXCHANGE_DEBUG": "1"})
    assert r.exit_code == 70
    assert "Traceback (most recent call last):" in r.stderr


def test_verbose_with_json_keeps_stdout_one_json_object(broken: None) -> None:
    r = _run("--verbose", "--json")
    assert r.exit_code == 70
    info = json.loads(r.stdout)
    assert info["ok"] is False and info["error"].startswith("internal") and info["exit_code"] == 70
    assert "Traceback" in r.stderr


def test_verbose_is_documented_and_debug_variable_is_not_advertised() -> None:
    r = CliRunner().invoke(main, ["--help"])
    assert "-v, --verbose" in r.output
    assert "re-run with --verbose" in r.output
    assert "LAXCHANGE_DEBUG" not in r.output


def test_verbose_does_not_change_a_normal_run() -> None:
    quiet = CliRunner().invoke(main, ["sample", "education-record", "--seed", "1"])
    loud = CliRunner().invoke(main, ["-v", "sample", "education-record", "--seed", "1"])
    assert quiet.exit_code == loud.exit_code == 0 and quiet.output == loud.output
