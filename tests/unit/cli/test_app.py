"""Commands print through the App's streams, so a caller can capture them without CliRunner."""

from __future__ import annotations

import io
import json
from pathlib import Path

from laxchange.cli import main
from laxchange.cli.app import App
from laxchange.home import Home


def _run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    app = App(home=Home(tmp_path / "unused"), out=out, err=err)
    code = main.main(list(args), obj=app, standalone_mode=False)
    return code or 0, out.getvalue(), err.getvalue()


def test_output_goes_to_the_given_out_stream(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "sample", "education-record", "--seed", "3")
    assert code == 0 and err == ""
    assert "/education-record/" in json.loads(out)["schema"]


def test_json_result_goes_to_out(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "--json", "schema", "check")
    assert code == 0 and err == ""
    assert json.loads(out)["ok"] is True


def test_errors_go_to_the_given_err_stream(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "--home", str(tmp_path / "missing"), "status")
    assert code == 5 and out == ""
    assert err.startswith("laxchange: error: laxchange home") and "\n  hint: " in err


def test_json_errors_go_to_out(tmp_path: Path) -> None:
    code, out, err = _run(tmp_path, "--json", "--home", str(tmp_path / "missing"), "status")
    assert code == 5 and err == ""
    assert json.loads(out)["ok"] is False and json.loads(out)["exit_code"] == 5


def test_validation_findings_go_to_err_and_pass_lines_to_out(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, out, err = _run(tmp_path, "validate", str(bad))
    assert code == 1 and out == "" and "INVALID" in err
