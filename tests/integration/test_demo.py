"""The demo tells the whole story through the users' jobs: every step really happens, and its outcome is checked."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from laxchange import demo
from laxchange._util import jsonio
from laxchange.ledger.db import Ledger
from laxchange.validate import validate_document
from tests.support.browser import console, show, text_of
from tests.support.signals import interruptible

REPO = Path(__file__).resolve().parents[2]


def test_demo_end_to_end(tmp_path: Path, browser: Any) -> None:
    lines: list[str] = []
    results = demo.run(tmp_path / "d", say=lines.append, work_factor=10)
    assert results["validated"] == 125
    assert results["broken_rules"] == ["upn.check-letter"]
    assert sorted(results["delivered"].values()) == ["delivered", "delivered"]
    assert results["applied"] == "applied"
    assert results["quarantined"] == ["package.tampered"]
    assert results["tampered"] == "rejected", "the signed rejection came back to the sender"
    homes = tmp_path / "d" / "homes"
    for slug in ("host-vs", "school"):
        folders = list((homes / slug / "received").iterdir())
        assert len(folders) == 1 and not folders[0].name.startswith("."), folders
        assert validate_document(jsonio.load_file(folders[0] / "record.json")).ok
    pep = next((homes / "school" / "received").iterdir())
    assert (pep / "pep.html").read_text().startswith("<!DOCTYPE html>")
    assert (pep / "record.csv").is_file() and (pep / "attachments" / "attachment-1.pdf").is_file()
    assert results["pep_html"] == str(pep / "pep.html")
    quarantined = list((homes / "school" / "quarantine").glob("*.json"))
    assert len(quarantined) == 1 and json.loads(quarantined[0].read_text())["reason"] == "package.tampered"
    inbox = homes / "school" / "inbox"
    assert not [p for p in inbox.iterdir() if p.is_file()], "nothing left half-processed in the inbox"
    assert len(list((inbox / "opened").glob("*.lax"))) == 1, "the opened PEP is kept, out of the inbox's way"
    # over the confined server, each delivery sat in its sender's own sub-folder (issue 10)
    server = tmp_path / "d" / "sftp-server"
    placing = results["parties"]["placing-vs"].replace(":", "_")
    assert len(list((server / "school" / placing / "processed").glob("*.lax"))) == 2
    assert len(list((server / "host-vs" / placing / "processed").glob("*.lax"))) == 1
    text = "\n".join(lines)
    assert "notify-placement" in text and "receipt" in text and "quarantined it (package.tampered)" in text
    assert any(line.strip().startswith("export LAXCHANGE_PASSPHRASE=") for line in results["explore"])
    for slug in ("placing-vs", "host-vs", "school"):
        with Ledger(homes / slug / "ledger.sqlite3") as ledger:
            assert ledger.verify_audit() == []
    # the deadlines and the morning report: the 48-hour Designated Teacher clock met by the delivered receipt
    assert results["deadlines"]["met"] >= 1 and results["deadlines"]["overdue"] == 0
    assert "Designated Teacher informed" in text and "morning report" in text
    # both pages the demo leaves render in a real browser without a console message
    for page, key in ((Path(results["pep_html"]), "child"), (Path(results["morning_report"]), "overall")):
        log = show(browser, page)
        assert log == [], console(log)
        assert text_of(browser, key).strip(), f"{page.name}: #{key} is empty"
        browser.save_screenshot(str(tmp_path / f"{page.stem}.png"))
    assert "All good" in text_of(browser, "overall") or "Needs a look" in text_of(browser, "overall")
    with Ledger(homes / "school" / "ledger.sqlite3") as ledger:
        events = [e["event"] for e in ledger.audit_entries()]
    assert events.count("in.imported") == 1 and events.count("in.quarantined") == 1


def test_demo_keep_leaves_a_server_the_homes_can_run_against(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = interruptible([sys.executable, "-m", "laxchange", "demo", "--dir", str(tmp_path / "d"), "--keep"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded: the demo prints about 30 lines, then waits
            seen.append(line)
            if "Ctrl-C stops it" in line:
                break
        assert "Ctrl-C stops it" in seen[-1], "".join(seen)
        home = tmp_path / "d" / "homes" / "school"
        r = subprocess.run([sys.executable, "-m", "laxchange", "--home", str(home), "--json", "run"],
                           env={**env, "LAXCHANGE_PASSPHRASE": demo.DEMO_PASSPHRASE.decode()},
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["complete"] is True
    finally:
        try:
            to_another = _interrupt_another_thread(proc.pid)
            out, _ = proc.communicate(timeout=30)
        except BaseException:  # never leave the demo and its SFTP server running
            proc.kill()
            out, _ = proc.communicate(timeout=10)
            raise AssertionError("the demo did not stop within 30 s of Ctrl-C; it printed:\n"
                                 + ("".join(seen) + out)[-4000:]) from None
    assert proc.returncode == 0 and "stopped" in out
    assert to_another or _TGKILL is None, "the SIGINT went to the main thread: the test did not test the bug"


def _tgkill() -> Any:
    """tgkill(pid, tid, sig), a signal to one thread of another process: glibc's own (2.30 and
    later), else the raw system call on x86-64 and arm64, else None (then plain SIGINT is sent)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "tgkill"):
        return libc.tgkill
    number = {"x86_64": 234, "aarch64": 131}.get(platform.machine())
    return None if number is None else (lambda pid, tid, sig: libc.syscall(number, pid, tid, sig))


_TGKILL = _tgkill()


def _interrupt_another_thread(pid: int) -> bool:
    """SIGINT to one of the process's threads other than its main one, as the kernel may choose
    for a Ctrl-C (the demo once waited on for ever when that happened). True if it went to one;
    False if there was none to send it to (then it goes to the process, as a plain SIGINT)."""
    if _TGKILL is not None:
        for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid):
            if _TGKILL(pid, tid, signal.SIGINT) == 0:
                return True
            if ctypes.get_errno() != errno.ESRCH:  # ESRCH: that thread has just ended; try the next
                raise OSError(ctypes.get_errno(), "tgkill failed")
    os.kill(pid, signal.SIGINT)
    return False


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_a_service_stop_sigterm_unwinds_reports_and_logs_as_ctrl_c_does(tmp_path: Path, json_out: bool) -> None:
    """SIGTERM (systemd's stop) mid-run: the command unwinds as for Ctrl-C (the demo's SFTP server
    is stopped in its `finally`), says it was stopped (with --json, as the one JSON object), exits
    143 with no traceback, and the log has its `command.finished` line (alert rules read it); it
    used to end at once, silently."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = tmp_path / "events.jsonl"
    flags = ["--json"] if json_out else []
    proc = subprocess.Popen([sys.executable, "-m", "laxchange", "--log-file", str(log), *flags, "demo", "--dir",
                             str(tmp_path / "d")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().count("\n") >= 2) and time.monotonic() < deadline:
            time.sleep(0.05)  # well into the demo: it has logged its first steps
        assert proc.poll() is None, "the demo ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 143, (out, err)
    assert "Traceback" not in err + out, err
    if json_out:
        data = json.loads(out)
        assert data["ok"] is False and data["error"] == "run.terminated" and data["exit_code"] == 143
    else:
        assert "laxchange: error: stopped by SIGTERM" in err, err
    finished = [json.loads(line) for line in log.read_text().splitlines() if '"command.finished"' in line]
    assert [(e.get("exit_code"), e.get("code")) for e in finished] == [(143, "run.terminated")], finished
